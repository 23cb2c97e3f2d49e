//! The session layer of SPEC.md §16 as the vectors drive it: records
//! (type 0x25) and groups (type 0x26) go in and out as their saved forms,
//! like every other state ([`LayerApi`]); the script operations that call
//! it ([`dispatch`]).
//!
//! A failed record or group decrypt is an error that carries its §16.6
//! action beside its name and fields (`{"name", "fields", "action"}`);
//! every other failure is a plain error. Outputs are the model's plain
//! data types ([`Changes`], [`Plan`], [`Sent`], [`Expired`], [`Content`]),
//! which both implementations fill and which spell themselves as JSON.

use serde_json::{Value, json};

use super::api::{Bytes, Mark, R};
use super::json::{b, s, u};
use super::script::{Output, World};
use crate::hex::hex;
use crate::model::group::Outcome;
use crate::model::rand::Source;
use crate::model::sessions::devices::Changes;
use crate::model::sessions::group::{Fanout, fanout_json};
use crate::model::sessions::record::Expired;
use crate::model::sessions::safety::display;
use crate::model::sessions::send::{Plan, Sent};
use crate::model::sessions::{Content, Hint};

/// What a record decrypt gave: (record, device, content).
pub type Decrypted = (Bytes, Bytes, Content);

/// What `group_install` gave: the record and device after the decrypt, what
/// it decrypted, and the install's result (the group and outcome, or its
/// error).
pub type Installed = (Bytes, Bytes, Content, R<(Bytes, Outcome)>);

/// The operations of §16 on encoded values.
pub trait LayerApi {
    /// A new record of `user` for the local device `device` (its saved
    /// state); the own record with `local_device`.
    ///
    /// # Errors
    ///
    /// `InvalidEncoding` for a user id of the wrong length.
    fn record_new(&self, user: &[u8], device: &[u8], local_device: Option<u32>) -> R<Bytes>;

    /// §16.2 `update_devices` (identities encoded as §5.1).
    ///
    /// # Errors
    ///
    /// The identities' decoding errors, then `InvalidDeviceList`.
    fn update_devices(&self, record: &[u8], list: &[(u32, Bytes)], now: u64)
    -> R<(Bytes, Changes)>;

    /// §16.2 `acknowledge_identity`.
    ///
    /// # Errors
    ///
    /// `UnknownDevice`, `IdentityMismatch`.
    fn acknowledge_identity(&self, record: &[u8], device: u32, identity: &[u8]) -> R<Bytes>;

    /// §16.4 `allow_classical`.
    ///
    /// # Errors
    ///
    /// `UnknownDevice`, `PostQuantumRequired`.
    fn allow_classical(&self, record: &[u8], device: u32, allowed: bool) -> R<Bytes>;

    /// §16.3 `plan_send`.
    ///
    /// # Errors
    ///
    /// None that SPEC.md names.
    fn plan_send(&self, record: &[u8], now: u64) -> R<Plan>;

    /// §16.3 `add_bundle` (`local` is the local device's saved state).
    ///
    /// # Errors
    ///
    /// The bundle's decoding errors, then §16.3's.
    fn add_bundle(
        &self,
        record: &[u8],
        local: &[u8],
        device: u32,
        bundle: &[u8],
        now: u64,
        rng: &mut dyn Source,
    ) -> R<Bytes>;

    /// §16.3 `encrypt`.
    ///
    /// # Errors
    ///
    /// `PlaintextTooLarge`.
    fn record_encrypt(
        &self,
        record: &[u8],
        payload: &[u8],
        rng: &mut dyn Source,
    ) -> R<(Bytes, Sent)>;

    /// §16.3 `encrypt_to`: (record, message).
    ///
    /// # Errors
    ///
    /// In §16.3's order.
    fn encrypt_to(
        &self,
        record: &[u8],
        device: u32,
        payload: &[u8],
        rng: &mut dyn Source,
    ) -> R<(Bytes, Bytes)>;

    /// §16.5 `decrypt`.
    ///
    /// # Errors
    ///
    /// The message's parse errors; then the failure (with its action).
    fn record_decrypt(
        &self,
        record: &[u8],
        local: &[u8],
        from: u32,
        message: &[u8],
        now: u64,
    ) -> R<Decrypted>;

    /// §16.6 `request_retry`: (record, message).
    ///
    /// # Errors
    ///
    /// In §16.6's order.
    fn request_retry(
        &self,
        record: &[u8],
        device: u32,
        hint: &Hint,
        now: u64,
        rng: &mut dyn Source,
    ) -> R<(Bytes, Bytes)>;

    /// §16.6 `start_new_session`: (record, message).
    ///
    /// # Errors
    ///
    /// The bundle's decoding errors, then §16.6's.
    #[allow(clippy::too_many_arguments, reason = "the operation's own arguments")]
    fn start_new_session(
        &self,
        record: &[u8],
        local: &[u8],
        device: u32,
        bundle: &[u8],
        hint: &Hint,
        now: u64,
        rng: &mut dyn Source,
    ) -> R<(Bytes, Bytes)>;

    /// §16.8 `request_distribution`: (record, message).
    ///
    /// # Errors
    ///
    /// As `encrypt_to`.
    fn request_distribution(
        &self,
        record: &[u8],
        device: u32,
        group: &[u8; 32],
        rng: &mut dyn Source,
    ) -> R<(Bytes, Bytes)>;

    /// §16.7 `expire`.
    ///
    /// # Errors
    ///
    /// None that SPEC.md names.
    fn expire(&self, record: &[u8], now: u64) -> R<(Bytes, Expired)>;

    /// §16.7 `after_restore`: (record, sessions deleted).
    ///
    /// # Errors
    ///
    /// None that SPEC.md names.
    fn after_restore(&self, record: &[u8], last_generation: u64) -> R<(Bytes, u64)>;

    /// §16.9 the record user's fingerprint (30 digits).
    ///
    /// # Errors
    ///
    /// `InvalidDeviceList`.
    fn fingerprint(&self, record: &[u8]) -> R<String>;

    /// §16.9 the safety number (60 digits) of the own record's user and
    /// the record's.
    ///
    /// # Errors
    ///
    /// `IdentityMismatch`, `InvalidDeviceList`.
    fn safety_number(&self, record: &[u8], own: &[u8]) -> R<String>;

    /// §16.9 a fingerprint over identity keys (encoded).
    ///
    /// # Errors
    ///
    /// `InvalidEncoding` (the user id), the keys' decoding errors,
    /// `InvalidDeviceList`.
    fn user_fingerprint(&self, user: &[u8], identities: &[Bytes]) -> R<String>;

    /// §16.8 `new`.
    ///
    /// # Errors
    ///
    /// `InvalidEncoding` (the user id).
    fn group_new(
        &self,
        group: &[u8; 32],
        user: &[u8],
        local: &[u8],
        rng: &mut dyn Source,
    ) -> R<Bytes>;

    /// §16.8 `add_member`: (group, whether new).
    ///
    /// # Errors
    ///
    /// `InvalidEncoding` (the user id), `TooManyGroupMembers`.
    fn group_add_member(&self, group: &[u8], user: &[u8]) -> R<(Bytes, bool)>;

    /// §16.8 `distribute`: (records, fan-out).
    ///
    /// # Errors
    ///
    /// `NotGroupMember`, `IdentityMismatch`.
    fn group_distribute(
        &self,
        group: &[u8],
        records: &[Bytes],
        rng: &mut dyn Source,
    ) -> R<(Vec<Bytes>, Fanout)>;

    /// §16.8 `distribute_to`: (record, message).
    ///
    /// # Errors
    ///
    /// `NotGroupMember`, `IdentityMismatch`, then as `encrypt_to`.
    fn group_distribute_to(
        &self,
        group: &[u8],
        record: &[u8],
        device: u32,
        rng: &mut dyn Source,
    ) -> R<(Bytes, Bytes)>;

    /// §16.5 then §16.8 `install`: `record` decrypts `message` from
    /// `from`; the install is given `install_record` if set, else the
    /// record after the decrypt.
    ///
    /// # Errors
    ///
    /// The decrypt's parse error or failure (the install's error is
    /// inside).
    #[allow(clippy::too_many_arguments, reason = "the operation's own arguments")]
    fn group_install(
        &self,
        group: &[u8],
        record: &[u8],
        local: &[u8],
        from: u32,
        message: &[u8],
        now: u64,
        install_record: Option<&[u8]>,
    ) -> R<Installed>;

    /// §16.8 `encrypt`: (group, message).
    ///
    /// # Errors
    ///
    /// As the sender's encrypt.
    fn group_session_encrypt(
        &self,
        group: &[u8],
        payload: &[u8],
        rng: &mut dyn Source,
    ) -> R<(Bytes, Bytes)>;

    /// §16.8 `decrypt`: (group, plaintext, mark).
    ///
    /// # Errors
    ///
    /// The message's parse errors; then the failure (with its action).
    fn group_session_decrypt(
        &self,
        group: &[u8],
        record: &[u8],
        message: &[u8],
    ) -> R<(Bytes, Bytes, Mark)>;

    /// §16.8 `remove_member` (`Some(user)`) or `rotate` (`None`): (group,
    /// records, fan-out).
    ///
    /// # Errors
    ///
    /// `InvalidEncoding` (the user id), `NotGroupMember`,
    /// `IdentityMismatch`.
    fn group_rotate(
        &self,
        group: &[u8],
        local: &[u8],
        removed: Option<&[u8]>,
        records: &[Bytes],
        rng: &mut dyn Source,
    ) -> R<(Bytes, Vec<Bytes>, Fanout)>;

    /// §16.8 `after_restore`: (group, whether the copy was stale).
    ///
    /// # Errors
    ///
    /// None that SPEC.md names.
    fn group_after_restore(
        &self,
        group: &[u8],
        local: &[u8],
        last_generation: u64,
        rng: &mut dyn Source,
    ) -> R<(Bytes, bool)>;
}

/// The layer's operations.
pub const OPS: &[&str] = &[
    "record_new",
    "update_devices",
    "acknowledge_identity",
    "allow_classical",
    "plan_send",
    "add_bundle",
    "record_encrypt",
    "encrypt_to",
    "record_decrypt",
    "request_retry",
    "start_new_session",
    "request_distribution",
    "expire",
    "after_restore",
    "fingerprint",
    "safety_number",
    "user_fingerprint",
    "group_new",
    "group_add_member",
    "group_distribute",
    "group_distribute_to",
    "group_install",
    "group_session_encrypt",
    "group_session_decrypt",
    "group_remove_member",
    "group_rotate",
    "group_after_restore",
];

/// Whether a layer operation draws random bytes.
pub fn draws(op: &str) -> bool {
    matches!(
        op,
        "add_bundle"
            | "record_encrypt"
            | "encrypt_to"
            | "request_retry"
            | "start_new_session"
            | "request_distribution"
            | "group_new"
            | "group_distribute"
            | "group_distribute_to"
            | "group_session_encrypt"
            | "group_remove_member"
            | "group_rotate"
            | "group_after_restore"
    )
}

fn u32_arg(step: &Value, key: &str) -> Result<u32, String> {
    u32::try_from(u(step, key)?).map_err(|e| e.to_string())
}

fn group_id(step: &Value) -> Result<[u8; 32], String> {
    b(step, "group_id")?
        .try_into()
        .map_err(|_| "group_id is not 32 bytes".into())
}

fn names(step: &Value, key: &str) -> Result<Vec<String>, String> {
    step.get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("missing list {key:?}"))?
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("{key} holds a non-string"))
        })
        .collect()
}

/// As the vectors spell a group decrypt's mark.
fn mark_json(m: &Mark) -> Value {
    json!({ "owner": hex(&m.0), "authenticated": m.1 })
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

/// Runs a layer operation; `Ok(None)` for an operation that is not one.
///
/// # Errors
///
/// A message for a malformed step.
#[allow(clippy::too_many_lines, reason = "one arm per operation")]
pub fn dispatch(
    api: &dyn super::api::Api,
    world: &World,
    step: &Value,
    rng: &mut dyn Source,
    o: &mut Output,
) -> Result<Option<R<()>>, String> {
    let op = s(step, "op")?;
    if !OPS.contains(&op) {
        return Ok(None);
    }
    let name = |key: &str| s(step, key);
    let state = |key: &str| world.get(s(step, key)?).map(<[u8]>::to_vec);
    let out = |o: &mut Output, k: &str, v: Value| {
        o.out.insert(k.to_owned(), v);
    };
    let put = |o: &mut Output, n: &str, bytes: Bytes| o.states.push((n.to_owned(), bytes));
    let r: R<()> = (|| -> Result<R<()>, String> {
        match op {
            "record_new" => {
                let local_device = step
                    .get("local_device")
                    .and_then(Value::as_u64)
                    .map(u32::try_from)
                    .transpose()
                    .map_err(|e| e.to_string())?;
                let rec = call!(api.record_new(&b(step, "user")?, &state("device")?, local_device));
                put(o, name("record")?, rec);
            }
            "update_devices" => {
                let list = step
                    .get("list")
                    .and_then(Value::as_array)
                    .ok_or("missing list \"list\"")?
                    .iter()
                    .map(|e| Ok((u32_arg(e, "device_id")?, b(e, "identity")?)))
                    .collect::<Result<Vec<_>, String>>()?;
                let (rec, ch) =
                    call!(api.update_devices(&state("record")?, &list, u(step, "now")?));
                put(o, name("record")?, rec);
                out(o, "changes", ch.json());
            }
            "acknowledge_identity" => {
                let rec = call!(api.acknowledge_identity(
                    &state("record")?,
                    u32_arg(step, "device_id")?,
                    &b(step, "identity")?
                ));
                put(o, name("record")?, rec);
            }
            "allow_classical" => {
                let allowed = step["allowed"].as_bool().ok_or("allowed is not a bool")?;
                let rec = call!(api.allow_classical(
                    &state("record")?,
                    u32_arg(step, "device_id")?,
                    allowed
                ));
                put(o, name("record")?, rec);
            }
            "plan_send" => {
                let plan = call!(api.plan_send(&state("record")?, u(step, "now")?));
                out(o, "plan", plan.json());
            }
            "add_bundle" => {
                let rec = call!(api.add_bundle(
                    &state("record")?,
                    &state("device")?,
                    u32_arg(step, "device_id")?,
                    &b(step, "bundle")?,
                    u(step, "now")?,
                    rng,
                ));
                put(o, name("record")?, rec);
            }
            "record_encrypt" => {
                let (rec, sent) =
                    call!(api.record_encrypt(&state("record")?, &b(step, "payload")?, rng));
                put(o, name("record")?, rec);
                out(o, "sent", sent.json());
            }
            "encrypt_to" => {
                let (rec, m) = call!(api.encrypt_to(
                    &state("record")?,
                    u32_arg(step, "device_id")?,
                    &b(step, "payload")?,
                    rng
                ));
                put(o, name("record")?, rec);
                out(o, "message", hex(&m).into());
            }
            "record_decrypt" => {
                let (rec, dev, content) = call!(api.record_decrypt(
                    &state("record")?,
                    &state("device")?,
                    u32_arg(step, "from")?,
                    &b(step, "message")?,
                    u(step, "now")?,
                ));
                put(o, name("record")?, rec);
                put(o, name("device")?, dev);
                out(o, "content", content.json());
            }
            "request_retry" => {
                let hint = Hint::from_json(step.get("hint").ok_or("missing hint")?)?;
                let (rec, m) = call!(api.request_retry(
                    &state("record")?,
                    u32_arg(step, "device_id")?,
                    &hint,
                    u(step, "now")?,
                    rng
                ));
                put(o, name("record")?, rec);
                out(o, "message", hex(&m).into());
            }
            "start_new_session" => {
                let hint = Hint::from_json(step.get("hint").ok_or("missing hint")?)?;
                let (rec, m) = call!(api.start_new_session(
                    &state("record")?,
                    &state("device")?,
                    u32_arg(step, "device_id")?,
                    &b(step, "bundle")?,
                    &hint,
                    u(step, "now")?,
                    rng,
                ));
                put(o, name("record")?, rec);
                out(o, "message", hex(&m).into());
            }
            "request_distribution" => {
                let (rec, m) = call!(api.request_distribution(
                    &state("record")?,
                    u32_arg(step, "device_id")?,
                    &group_id(step)?,
                    rng
                ));
                put(o, name("record")?, rec);
                out(o, "message", hex(&m).into());
            }
            "expire" => {
                let (rec, ex) = call!(api.expire(&state("record")?, u(step, "now")?));
                put(o, name("record")?, rec);
                out(
                    o,
                    "expired",
                    json!({ "devices": ex.devices, "sessions": ex.sessions }),
                );
            }
            "after_restore" => {
                let (rec, n) =
                    call!(api.after_restore(&state("record")?, u(step, "last_generation")?));
                put(o, name("record")?, rec);
                out(o, "deleted", n.into());
            }
            "fingerprint" => {
                let f = call!(api.fingerprint(&state("record")?));
                out(o, "fingerprint", f.into());
            }
            "safety_number" => {
                let n = call!(api.safety_number(&state("record")?, &state("own")?));
                out(o, "display", display(&n).into());
                out(o, "safety_number", n.into());
            }
            "user_fingerprint" => {
                let keys = super::json::hex_items(step, "identities")?;
                let f = call!(api.user_fingerprint(&b(step, "user")?, &keys));
                out(o, "fingerprint", f.into());
            }
            "group_new" => {
                let g = call!(api.group_new(
                    &group_id(step)?,
                    &b(step, "user")?,
                    &state("device")?,
                    rng
                ));
                put(o, name("group")?, g);
            }
            "group_add_member" => {
                let (g, added) = call!(api.group_add_member(&state("group")?, &b(step, "user")?));
                put(o, name("group")?, g);
                out(o, "added", added.into());
            }
            "group_distribute" => {
                let list = names(step, "records")?;
                let records = list
                    .iter()
                    .map(|n| world.get(n).map(<[u8]>::to_vec))
                    .collect::<Result<Vec<_>, _>>()?;
                let (after, fan) = call!(api.group_distribute(&state("group")?, &records, rng));
                for (n, r) in list.iter().zip(after) {
                    put(o, n, r);
                }
                out(o, "fanout", fanout_json(&fan));
            }
            "group_distribute_to" => {
                let (rec, m) = call!(api.group_distribute_to(
                    &state("group")?,
                    &state("record")?,
                    u32_arg(step, "device_id")?,
                    rng
                ));
                put(o, name("record")?, rec);
                out(o, "message", hex(&m).into());
            }
            "group_install" => {
                let other = match step.get("install_record") {
                    Some(Value::String(n)) => Some(world.get(n)?.to_vec()),
                    _ => None,
                };
                let (rec, dev, content, installed) = call!(api.group_install(
                    &state("group")?,
                    &state("record")?,
                    &state("device")?,
                    u32_arg(step, "from")?,
                    &b(step, "message")?,
                    u(step, "now")?,
                    other.as_deref(),
                ));
                put(o, name("record")?, rec);
                put(o, name("device")?, dev);
                out(o, "content", content.json());
                match installed {
                    Ok((g, outcome)) => {
                        put(o, name("group")?, g);
                        out(o, "outcome", outcome.name().into());
                        out(o, "install_error", Value::Null);
                    }
                    Err(e) => out(o, "install_error", e),
                }
            }
            "group_session_encrypt" => {
                let (g, m) =
                    call!(api.group_session_encrypt(&state("group")?, &b(step, "payload")?, rng));
                put(o, name("group")?, g);
                out(o, "message", hex(&m).into());
            }
            "group_session_decrypt" => {
                let (g, pt, m) = call!(api.group_session_decrypt(
                    &state("group")?,
                    &state("record")?,
                    &b(step, "message")?
                ));
                put(o, name("group")?, g);
                out(o, "plaintext", hex(&pt).into());
                out(o, "mark", mark_json(&m));
            }
            "group_remove_member" | "group_rotate" => {
                let removed = match op {
                    "group_remove_member" => Some(b(step, "user")?),
                    _ => None,
                };
                let list = names(step, "records")?;
                let records = list
                    .iter()
                    .map(|n| world.get(n).map(<[u8]>::to_vec))
                    .collect::<Result<Vec<_>, _>>()?;
                let (g, after, fan) = call!(api.group_rotate(
                    &state("group")?,
                    &state("device")?,
                    removed.as_deref(),
                    &records,
                    rng
                ));
                put(o, name("group")?, g);
                for (n, r) in list.iter().zip(after) {
                    put(o, n, r);
                }
                out(o, "fanout", fanout_json(&fan));
            }
            "group_after_restore" => {
                let (g, stale) = call!(api.group_after_restore(
                    &state("group")?,
                    &state("device")?,
                    u(step, "last_generation")?,
                    rng
                ));
                put(o, name("group")?, g);
                out(o, "stale", stale.into());
            }
            _ => return Err(format!("unknown op {op:?}")),
        }
        Ok(Ok(()))
    })()?;
    Ok(Some(r))
}
