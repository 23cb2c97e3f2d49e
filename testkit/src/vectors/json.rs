//! Reading vector fields, and comparing.

use serde_json::Value;


use sotto::{Error, IdentityKey};

use super::{Res, error_json};
use crate::hex::{hex, unhex};
use crate::layout;
use crate::model::group::Levels;

/// A hex field.
pub(super) fn b(v: &Value, key: &str) -> Result<Vec<u8>, String> {
    let s = v
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing hex field {key:?}"))?;
    unhex(s)
}

/// A 32-byte hex field.
pub(super) fn b32(v: &Value, key: &str) -> Result<[u8; 32], String> {
    b(v, key)?
        .try_into()
        .map_err(|_| format!("{key:?} is not 32 bytes"))
}

/// An integer field.
pub(super) fn u(v: &Value, key: &str) -> Result<u64, String> {
    v.get(key)
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("missing integer field {key:?}"))
}

/// A u32 field.
pub(super) fn u32_of(v: &Value, key: &str) -> Result<u32, String> {
    u32::try_from(u(v, key)?).map_err(|e| e.to_string())
}

/// A string field.
pub(super) fn s<'a>(v: &'a Value, key: &str) -> Result<&'a str, String> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing string field {key:?}"))
}

/// A list of hex draws.
pub(super) fn draws(v: &Value, key: &str) -> Result<Vec<Vec<u8>>, String> {
    v.get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("missing array {key:?}"))?
        .iter()
        .map(|d| unhex(d.as_str().ok_or("draw is not a string")?))
        .collect()
}

/// Eight hex levels R_0 .. R_7.
pub(super) fn levels(v: &Value, key: &str) -> Result<Levels, String> {
    let list = v
        .get(key)
        .and_then(Value::as_array)
        .filter(|l| l.len() == 8)
        .ok_or_else(|| format!("{key:?} is not a list of 8 levels"))?;
    let mut out = [[0u8; 32]; 8];
    for (o, l) in out.iter_mut().zip(list) {
        *o = unhex(l.as_str().ok_or("level is not a string")?)?
            .try_into()
            .map_err(|_| "level is not 32 bytes")?;
    }
    Ok(out)
}

/// Bytes equal, or a message with both in hex.
pub(super) fn eq(what: &str, got: &[u8], want: &[u8]) -> Res {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {}, want {}", hex(got), hex(want)))
    }
}

/// A label field equals the specification's label.
pub(super) fn label(v: &Value, key: &str, spec: &str) -> Res {
    if s(v, key)? == spec {
        Ok(())
    } else {
        Err(format!("label {key:?} is not {spec:?}"))
    }
}

/// A sotto call that must succeed.
pub(super) fn api<T>(what: &str, r: Result<T, Error>) -> Result<T, String> {
    r.map_err(|e| format!("{what} failed: {e:?}"))
}

/// A model result that must succeed.
pub(super) fn model<T>(what: &str, r: Result<T, crate::model::Refusal>) -> Result<T, String> {
    r.map_err(|e| format!("{what} (model) failed: {e}"))
}

/// The error of a step (`null` for success) must be the one recorded.
pub(super) fn same_error(result: Result<(), Error>, want: &Value) -> Res {
    match result {
        Ok(()) if want.is_null() => Ok(()),
        Ok(()) => Err(format!("succeeded, want {want}")),
        Err(e) if error_json(&e) == *want => Ok(()),
        Err(e) => Err(format!("got {}, want {want}", error_json(&e))),
    }
}

/// `state` equals the vector's `key`, or its SHA-256 `key_sha256`.
pub(super) fn state_matches(v: &Value, key: &str, state: &[u8]) -> Res {
    use sha2::{Digest, Sha256};
    match v.get(format!("{key}_sha256")) {
        Some(_) => eq(
            &format!("{key} sha256"),
            &Sha256::digest(state),
            &b(v, &format!("{key}_sha256"))?,
        ),
        None => eq(key, state, &b(v, key)?),
    }
}

/// The 64-byte embedded form of an identity key (§5.1).
pub(super) fn embedded(id: &IdentityKey) -> Vec<u8> {
    let bytes = id.to_bytes();
    layout::identity_key(&bytes)
        .slice(&bytes, "identity")
        .to_vec()
}

/// The input bytes of a negative vector: `input`, zero-padded to `pad_to`
/// when given (for over-limit lengths too large to spell out).
pub(super) fn input(v: &Value) -> Result<Vec<u8>, String> {
    let mut bytes = b(v, "input")?;
    if let Some(len) = v.get("pad_to").and_then(Value::as_u64) {
        bytes.resize(usize::try_from(len).map_err(|e| e.to_string())?, 0);
    }
    Ok(bytes)
}
