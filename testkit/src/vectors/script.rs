//! Scripts: most vectors are a list of steps, each one SPEC.md operation
//! ([`Api`]) on named states, with its recorded random draws and its
//! recorded error or outputs and states after. [`execute`] runs one step's
//! operation on any implementation; [`check`] compares what it did with
//! what the step recorded. The generator records steps with the same
//! [`execute`] on the model.
//!
//! A step is an object: `op`; its arguments (names of states in the
//! script's world, hex byte strings, numbers); `rng_draws` (hex, in draw
//! order) for an operation that draws; `error` (`null` or
//! `{"name", "fields"}`); on success `out` (its outputs) and `states` (each
//! state it wrote, by name: hex, or `{"sha256", "length"}` when long).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::api::{Api, Bytes, DeviceCall, R};
use super::json::{b, opt_b, s, u};
use super::recipes;
use crate::hex::hex;
use crate::model::Policy;
use crate::model::rand::{Replay, Source};

/// States longer than this are written as their SHA-256.
pub const INLINE_MAX: usize = 4096;

/// The named states of a script.
#[derive(Clone, Debug, Default)]
pub struct World {
    /// By name.
    pub states: BTreeMap<String, Vec<u8>>,
}

impl World {
    /// A state by name.
    ///
    /// # Errors
    ///
    /// A message if there is none.
    pub fn get(&self, name: &str) -> Result<&[u8], String> {
        self.states
            .get(name)
            .map(Vec::as_slice)
            .ok_or_else(|| format!("no state named {name:?}"))
    }
}

/// What a successful step produced.
#[derive(Clone, Debug, Default)]
pub struct Output {
    /// Its outputs, as the step records them.
    pub out: Map<String, Value>,
    /// The states it wrote, by name.
    pub states: Vec<(String, Bytes)>,
}

/// A state as a step records it.
pub fn state_value(bytes: &[u8]) -> Value {
    if bytes.len() > INLINE_MAX {
        json!({ "sha256": hex(&Sha256::digest(bytes)), "length": bytes.len() })
    } else {
        hex(bytes).into()
    }
}

/// Whether `bytes` is the state `recorded` (hex or hash).
fn same_state(recorded: &Value, bytes: &[u8]) -> bool {
    match recorded {
        Value::String(h) => *h == hex(bytes),
        Value::Object(o) => {
            o.get("sha256") == Some(&Value::from(hex(&Sha256::digest(bytes))))
                && o.get("length") == Some(&Value::from(bytes.len()))
        }
        _ => false,
    }
}

fn policy(step: &Value) -> Result<Policy, String> {
    Policy::from_name(s(step, "policy")?).ok_or_else(|| "unknown policy".into())
}

fn group_id(step: &Value) -> Result<[u8; 32], String> {
    b(step, "group_id")?
        .try_into()
        .map_err(|_| "group_id is not 32 bytes".into())
}

fn u32_arg(step: &Value, key: &str) -> Result<u32, String> {
    u32::try_from(u(step, key)?).map_err(|e| e.to_string())
}

fn device_call(op: &str, step: &Value) -> Result<Option<DeviceCall>, String> {
    Ok(Some(match op {
        "rotate_signed_prekey" => DeviceCall::RotateSignedPreKey(u(step, "now")?),
        "remove_signed_prekey" => DeviceCall::RemoveSignedPreKey(u32_arg(step, "id")?),
        "generate_one_time_prekeys" => DeviceCall::GenerateOneTimePreKeys(u32_arg(step, "count")?),
        "rotate_kem_prekey" => DeviceCall::RotateKemPreKey(u(step, "now")?),
        "remove_kem_prekey" => DeviceCall::RemoveKemPreKey(u32_arg(step, "id")?),
        "generate_kem_prekeys" => DeviceCall::GenerateKemPreKeys(u32_arg(step, "count")?),
        "reset_prekeys" => DeviceCall::ResetPreKeys(u(step, "now")?, u(step, "last_generation")?),
        _ => return Ok(None),
    }))
}

/// Whether an operation draws random bytes (its step has `rng_draws`).
pub fn draws(op: &str) -> bool {
    matches!(
        op,
        "device_new"
            | "rotate_signed_prekey"
            | "generate_one_time_prekeys"
            | "rotate_kem_prekey"
            | "generate_kem_prekeys"
            | "reset_prekeys"
            | "initiate"
            | "encrypt"
            | "seal"
            | "group_sender_new"
            | "group_sender_rotate"
            | "group_encrypt"
    ) || super::layer::draws(op)
}

fn key32(step: &Value, key: &str) -> Result<[u8; 32], String> {
    b(step, key)?
        .try_into()
        .map_err(|_| format!("{key} is not 32 bytes"))
}

fn bytes_out(v: &[u8]) -> Value {
    hex(v).into()
}

fn mark_out(m: &(Bytes, bool)) -> Value {
    json!({ "owner": hex(&m.0), "authenticated": m.1 })
}

impl Output {
    fn put(&mut self, key: &str, v: Value) {
        self.out.insert(key.to_owned(), v);
    }

    fn state(&mut self, name: &str, bytes: Bytes) {
        self.states.push((name.to_owned(), bytes));
    }
}

/// Runs a step's operation on `api` with `rng`; `Err(String)` for a step
/// this interpreter cannot read.
///
/// # Errors
///
/// A message for a malformed step.
pub fn execute(
    api: &dyn Api,
    world: &World,
    step: &Value,
    rng: &mut dyn Source,
) -> Result<R<Output>, String> {
    let mut o = Output::default();
    Ok(dispatch(api, world, step, rng, &mut o)?.map(|()| o))
}

/// `Ok(Err(e))` ends a step with the API's error `e`.
macro_rules! call {
    ($e:expr) => {
        match $e {
            Ok(x) => x,
            Err(e) => return Ok(Err(e)),
        }
    };
}

#[allow(clippy::too_many_lines, reason = "one arm per operation")]
fn dispatch(
    api: &dyn Api,
    world: &World,
    step: &Value,
    rng: &mut dyn Source,
    o: &mut Output,
) -> Result<R<()>, String> {
    let op = s(step, "op")?;
    let name = |key: &str| s(step, key);
    let state = |key: &str| world.get(s(step, key)?).map(<[u8]>::to_vec);
    if let Some(c) = device_call(op, step)? {
        let (dev, made) = call!(api.device_call(&state("device")?, c, rng));
        o.state(name("device")?, dev);
        o.put("published", made.iter().map(|m| bytes_out(m)).collect());
        return Ok(Ok(()));
    }
    match op {
        "load" => {
            let bytes = match step.get("recipe") {
                Some(recipe) => recipes::build(recipe, world)?,
                None => b(step, "state")?,
            };
            o.state(name("name")?, bytes);
        }
        "explain" => {
            let bytes = match step.get("input") {
                Some(_) => b(step, "input")?,
                None => state("state")?,
            };
            o.put("decoded", super::trace::explain(&bytes)?);
        }
        "decode" => {
            let input = match step.get("input") {
                Some(_) => b(step, "input")?,
                None => state("state")?,
            };
            call!(api.decode(s(step, "encoding")?, &input));
        }
        "verify_bundle" => {
            call!(api.verify_bundle(&b(step, "bundle")?, opt_b(step, "expected")?.as_deref()));
        }
        "device_new" => {
            let d = call!(api.device_new(u(step, "now")?, rng));
            o.state(name("device")?, d);
        }
        "bundle" => {
            let id = |k: &str| {
                step[k]
                    .as_u64()
                    .map(u32::try_from)
                    .transpose()
                    .map_err(|e| e.to_string())
            };
            let bundle = call!(api.bundle(
                &state("device")?,
                id("one_time_prekey_id")?,
                id("kem_prekey_id")?
            ));
            o.put("bundle", bytes_out(&bundle));
        }
        "initiate" => {
            let sess = call!(api.initiate(
                &state("device")?,
                &b(step, "bundle")?,
                opt_b(step, "expected")?.as_deref(),
                policy(step)?,
                rng,
            ));
            o.state(name("session")?, sess);
        }
        "accept" => {
            let (d, sess, pt) =
                call!(api.accept(&state("device")?, &b(step, "message")?, policy(step)?));
            o.state(name("device")?, d);
            o.state(name("session")?, sess);
            o.put("plaintext", bytes_out(&pt));
        }
        "encrypt" => {
            let (sess, m) = call!(api.encrypt(&state("session")?, &b(step, "plaintext")?, rng));
            o.state(name("session")?, sess);
            o.put("message", bytes_out(&m));
        }
        "decrypt" => {
            let (sess, pt) = call!(api.decrypt(&state("session")?, &b(step, "message")?));
            o.state(name("session")?, sess);
            o.put("plaintext", bytes_out(&pt));
        }
        "seal" => {
            let plain = match step.get("input") {
                Some(_) => b(step, "input")?,
                None => state("state")?,
            };
            let sealed = call!(api.seal(
                &plain,
                &key32(step, "storage_key")?,
                &b(step, "context")?,
                rng
            ));
            o.put("sealed", bytes_out(&sealed));
        }
        "unseal" => {
            let inner = u8::try_from(u(step, "inner_type")?).map_err(|e| e.to_string())?;
            let plain = call!(api.unseal(
                &b(step, "sealed")?,
                &key32(step, "storage_key")?,
                &b(step, "context")?,
                inner
            ));
            match step.get("state") {
                Some(Value::String(n)) => o.state(n, plain),
                _ => o.put("state", bytes_out(&plain)),
            }
        }
        "group_sender_new" => {
            let st = call!(api.group_sender_new(&group_id(step)?, &state("device")?, rng));
            o.state(name("sender")?, st);
        }
        "group_sender_rotate" => {
            let st = call!(api.group_sender_rotate(&state("sender")?, &state("device")?, rng));
            o.state(name("sender")?, st);
        }
        "group_encrypt" => {
            let (st, m) = call!(api.group_encrypt(&state("sender")?, &b(step, "plaintext")?, rng));
            o.state(name("sender")?, st);
            o.put("message", bytes_out(&m));
        }
        "group_distribution" => {
            let d = call!(api.group_distribution(&state("sender")?));
            o.put("distribution", bytes_out(&d));
        }
        "store_new" => {
            let st = call!(api.store_new(&group_id(step)?));
            o.state(name("store")?, st);
        }
        "store_import" => {
            let (st, out) = call!(api.store_import(&state("store")?, &b(step, "distribution")?));
            o.state(name("store")?, st);
            o.put("outcome", out.name().into());
        }
        "store_receive_distribution" => {
            let (st, sess, out) = call!(api.store_receive_distribution(
                &state("store")?,
                &state("session")?,
                &b(step, "message")?
            ));
            o.state(name("store")?, st);
            o.state(name("session")?, sess);
            o.put("outcome", out.name().into());
        }
        "store_install_accepted" => {
            let (d, sess, installed) = call!(api.store_install_accepted(
                &state("store")?,
                &state("device")?,
                &b(step, "message")?,
                policy(step)?,
            ));
            o.state(name("device")?, d);
            o.state(name("session")?, sess);
            match installed {
                Ok((st, out)) => {
                    o.state(name("store")?, st);
                    o.put("outcome", out.name().into());
                    o.put("install_error", Value::Null);
                }
                Err(e) => o.put("install_error", e),
            }
        }
        "store_decrypt" => {
            let (st, pt, m) = call!(api.store_decrypt(&state("store")?, &b(step, "message")?));
            o.state(name("store")?, st);
            o.put("plaintext", bytes_out(&pt));
            o.put("mark", mark_out(&m));
        }
        "store_remove_owner" => {
            let (st, n) = call!(api.store_remove_owner(&state("store")?, &b(step, "owner")?));
            o.state(name("store")?, st);
            o.put("removed", n.into());
        }
        "receiver_receive_distribution" => {
            let (r, sess) = call!(api.receiver_receive_distribution(
                &group_id(step)?,
                &state("session")?,
                &b(step, "message")?
            ));
            o.state(name("receiver")?, r);
            o.state(name("session")?, sess);
        }
        "receiver_import" => {
            let r = call!(api.receiver_import(&group_id(step)?, &b(step, "distribution")?));
            o.state(name("receiver")?, r);
        }
        "receiver_decrypt" => {
            let (r, pt, m) = call!(api.receiver_decrypt(&state("receiver")?, &b(step, "message")?));
            o.state(name("receiver")?, r);
            o.put("plaintext", bytes_out(&pt));
            o.put("mark", mark_out(&m));
        }
        other => {
            return super::layer::dispatch(api, world, step, rng, o)?
                .ok_or_else(|| format!("unknown op {other:?}"));
        }
    }
    Ok(Ok(()))
}

/// Runs a step on `api` with its recorded draws and compares everything it
/// recorded; on success the world takes the step's states.
///
/// # Errors
///
/// What disagreed.
pub fn check(api: &dyn Api, world: &mut World, step: &Value) -> Result<(), String> {
    let op = s(step, "op")?;
    let draws = match step.get("rng_draws") {
        Some(Value::Array(list)) => list
            .iter()
            .map(|d| crate::hex::unhex(d.as_str().ok_or("a draw is not hex")?))
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err("rng_draws is not a list".into()),
        None => Vec::new(),
    };
    let mut rng = Replay::new(draws);
    let result = execute(api, world, step, &mut rng)?;
    rng.finish()
        .map_err(|e| format!("{op} on {}: {e}", api.name()))?;
    let want = step.get("error").unwrap_or(&Value::Null);
    let o = match result {
        Err(e) if e == *want => return Ok(()),
        Err(e) => return Err(format!("{op} on {}: error {e}, want {want}", api.name())),
        Ok(_) if !want.is_null() => {
            return Err(format!("{op} on {}: succeeded, want {want}", api.name()));
        }
        Ok(o) => o,
    };
    let empty = Map::new();
    let recorded_out = step.get("out").and_then(Value::as_object).unwrap_or(&empty);
    if *recorded_out != o.out {
        for (k, v) in &o.out {
            if recorded_out.get(k) != Some(v) {
                return Err(format!(
                    "{op} on {}: output {k:?} is {v}, want {}",
                    api.name(),
                    recorded_out.get(k).unwrap_or(&Value::Null)
                ));
            }
        }
        return Err(format!(
            "{op} on {}: outputs {:?}, want {:?}",
            api.name(),
            o.out.keys().collect::<Vec<_>>(),
            recorded_out.keys().collect::<Vec<_>>()
        ));
    }
    let recorded_states = step
        .get("states")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    if recorded_states.len() != o.states.len() {
        return Err(format!(
            "{op} on {}: wrote {} states, {} recorded",
            api.name(),
            o.states.len(),
            recorded_states.len()
        ));
    }
    for (n, bytes) in &o.states {
        let recorded = recorded_states
            .get(n)
            .ok_or_else(|| format!("{op}: state {n:?} not recorded"))?;
        if !same_state(recorded, bytes) {
            return Err(format!(
                "{op} on {}: state {n:?} is {}, want {recorded}",
                api.name(),
                state_value(bytes)
            ));
        }
    }
    for (n, bytes) in o.states {
        world.states.insert(n, bytes);
    }
    Ok(())
}

/// Checks every step of a script, in order, on a fresh world (with the
/// traces of the steps that carry one).
///
/// # Errors
///
/// The first step that disagreed, by position.
pub fn check_all(api: &dyn Api, steps: &Value) -> Result<World, String> {
    check_all_then(api, steps, |_, _| Ok(()))
}

/// [`check_all`], calling `after` with the world and each step once it
/// passed.
///
/// # Errors
///
/// The first step that disagreed, by position.
pub fn check_all_then(
    api: &dyn Api,
    steps: &Value,
    mut after: impl FnMut(&World, &Value) -> Result<(), String>,
) -> Result<World, String> {
    let mut world = World::default();
    let steps = steps.as_array().ok_or("steps is not a list")?;
    for (i, step) in steps.iter().enumerate() {
        let at = |e: String| format!("step {i} ({}): {e}", step["op"]);
        if step["error"].is_null() {
            super::trace::check(&world, step).map_err(at)?;
        }
        check(api, &mut world, step).map_err(at)?;
        after(&world, step).map_err(at)?;
    }
    Ok(world)
}

/// Records a step's result (as [`check`] reads it) into the step.
pub fn record(step: &mut Value, result: &R<Output>, drawn: Option<Vec<Vec<u8>>>) {
    if let Some(d) = drawn {
        step["rng_draws"] = d.iter().map(|x| Value::from(hex(x))).collect();
    }
    match result {
        Err(e) => step["error"] = e.clone(),
        Ok(o) => {
            step["error"] = Value::Null;
            if !o.out.is_empty() {
                step["out"] = Value::Object(o.out.clone());
            }
            if !o.states.is_empty() {
                step["states"] = o
                    .states
                    .iter()
                    .map(|(n, b)| (n.clone(), state_value(b)))
                    .collect::<Map<_, _>>()
                    .into();
            }
        }
    }
}
