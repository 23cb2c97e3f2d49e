//! Traces: the intermediate values of a step that no API shows (DH outputs,
//! the KEM secret, SK, root, chain and message keys, AES keys and nonces,
//! ratchet levels), computed by the model from the states before the step
//! and its recorded draws. A step may carry one as `trace`; the verifier
//! recomputes it and compares.

use serde_json::{Value, json};

use super::json::{b, hex_items, opt_b, s};
use super::script::World;
use crate::hex::hex;
use crate::model::group::{Receiver, Sender, Store};
use crate::model::keys::{read_bundle, read_identity_key};
use crate::model::primitives::x_pub;
use crate::model::rand::Replay;
use crate::model::{Dev, Policy, Sess, pqxdh, sealed};

fn draws(step: &Value) -> Result<Replay, String> {
    Ok(Replay::new(match step.get("rng_draws") {
        Some(_) => hex_items(step, "rng_draws")?,
        None => Vec::new(),
    }))
}

fn policy(step: &Value) -> Result<Policy, String> {
    Policy::from_name(s(step, "policy")?).ok_or_else(|| "unknown policy".into())
}

fn m<T>(r: Result<T, crate::model::Refusal>) -> Result<T, String> {
    r.map_err(|e| format!("the model fails the step: {e}"))
}

/// The model's trace of a successful step, from the world before it;
/// `None` for an operation without one.
///
/// # Errors
///
/// A message if the step does not run on the model.
pub fn of(world: &World, step: &Value) -> Result<Option<Value>, String> {
    let state = |key: &str| world.get(s(step, key)?);
    let t = match s(step, "op")? {
        "initiate" => {
            let d = m(Dev::decode(state("device")?))?;
            let (bundle, _) = m(read_bundle(&b(step, "bundle")?))?;
            if let Some(e) = opt_b(step, "expected")? {
                let (ik, _) = m(read_identity_key(&e))?;
                m(bundle.verify(Some(&ik)))?;
            }
            let (sess, made) = m(pqxdh::initiate(
                &d,
                &bundle,
                policy(step)?,
                &mut draws(step)?,
            ))?;
            let mut t = made.agreement.json();
            t["base_key_private"] = hex(&made.base_private).into();
            t["base_key_public"] = hex(&x_pub(&made.base_private)).into();
            t["kem_m"] = made.m.map(|x| hex(&x)).into();
            t["kem_ciphertext"] = made.ct.map(|x| hex(&x)).into();
            t["associated_data"] = hex(&sess.ad()).into();
            t
        }
        "accept" => {
            let mut d = m(Dev::decode(state("device")?))?;
            let (sess, _, agreement, receive) =
                m(pqxdh::accept(&mut d, &b(step, "message")?, policy(step)?))?;
            let mut t = agreement.json();
            t["associated_data"] = hex(&sess.ad()).into();
            t["receive"] = receive;
            t
        }
        "encrypt" => {
            let mut sess = m(Sess::decode(state("session")?))?;
            m(sess.encrypt(&mut draws(step)?, &b(step, "plaintext")?))?.1
        }
        "decrypt" => {
            let mut sess = m(Sess::decode(state("session")?))?;
            let (_, mut t, evicted) = m(sess.decrypt(&b(step, "message")?))?;
            t["evicted"] = evicted;
            t
        }
        "seal" => {
            let plain = match step.get("input") {
                Some(_) => b(step, "input")?,
                None => state("state")?.to_vec(),
            };
            let key: [u8; 32] = b(step, "storage_key")?
                .try_into()
                .map_err(|_| "storage_key")?;
            let sealed = m(sealed::seal_state(
                &key,
                &b(step, "context")?,
                &plain,
                &mut draws(step)?,
            ))?;
            json!({
                "salt": hex(&sealed.salt), "aes_key": hex(&sealed.key),
                "nonce": hex(&sealed.nonce), "aad": hex(&sealed.aad),
            })
        }
        "group_encrypt" => {
            let mut sender = m(Sender::decode(state("sender")?))?;
            let levels = sender.levels;
            let (_, mut t) = m(sender.encrypt(&mut draws(step)?, &b(step, "plaintext")?))?;
            t["levels"] = crate::model::group::levels_json(&levels);
            t
        }
        "receiver_decrypt" => {
            let mut r = m(Receiver::decode(state("receiver")?))?;
            m(r.decrypt(&b(step, "message")?))?.1
        }
        "store_decrypt" => {
            let mut st = m(Store::decode(state("store")?))?;
            m(st.decrypt(&b(step, "message")?))?.2
        }
        _ => return Ok(None),
    };
    Ok(Some(t))
}

/// Checks a step's `trace`, if it has one, against the model's: every
/// field the step records (a vector may record only some).
///
/// # Errors
///
/// What differs.
pub fn check(world: &World, step: &Value) -> Result<(), String> {
    let Some(want) = step.get("trace") else {
        return Ok(());
    };
    let got = of(world, step)?.ok_or("a trace on an operation without one")?;
    let (Some(g), Some(w)) = (got.as_object(), want.as_object()) else {
        return Err(format!("trace {got}, want {want}"));
    };
    if w.is_empty() {
        return Err("an empty trace".into());
    }
    for (k, v) in w {
        if g.get(k) != Some(v) {
            return Err(format!(
                "trace {k:?} is {}, want {v}",
                g.get(k).unwrap_or(&Value::Null)
            ));
        }
    }
    Ok(())
}

/// Every field of an encoded state, bundle or distribution, as the model
/// decodes it (an `explain` step's `decoded`).
///
/// # Errors
///
/// A message if the model does not decode it.
pub fn explain(bytes: &[u8]) -> Result<Value, String> {
    Ok(match bytes.get(1) {
        Some(0x20) => m(Sess::decode(bytes))?.decoded_json(),
        Some(0x21) => m(Dev::decode(bytes))?.decoded_json(),
        Some(0x22) => m(Sender::decode(bytes))?.decoded_json(),
        Some(0x23) => m(Receiver::decode(bytes))?.decoded_json(),
        Some(0x24) => m(Store::decode(bytes))?.decoded_json(),
        Some(0x25) => m(crate::model::sessions::Record::decode(bytes))?.decoded_json(),
        Some(0x26) => m(crate::model::sessions::Group::decode(bytes))?.decoded_json(),
        Some(0x13) => m(read_bundle(bytes))?.0.json(),
        Some(0x04) => m(crate::model::group::read_distribution(bytes))?.0.json(),
        other => return Err(format!("nothing to explain for type {other:?}")),
    })
}
