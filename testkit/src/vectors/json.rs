//! Reading vector fields, and comparing.

use serde_json::Value;

use super::Res;
use crate::hex::{hex, unhex};
use crate::model::group::Levels;

/// A hex field; if the vector has `<key>_pad_to`, zero-padded to that
/// length (for inputs too long to write out).
///
/// # Errors
///
/// A message naming the field.
pub fn b(v: &Value, key: &str) -> Result<Vec<u8>, String> {
    let s = v
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing hex field {key:?}"))?;
    let mut bytes = unhex(s)?;
    if let Some(len) = v.get(format!("{key}_pad_to")).and_then(Value::as_u64) {
        let len = usize::try_from(len).map_err(|e| e.to_string())?;
        if len < bytes.len() {
            return Err(format!("{key}_pad_to is below the length of {key}"));
        }
        bytes.resize(len, 0);
    }
    Ok(bytes)
}

/// A hex field that may be `null` or absent.
///
/// # Errors
///
/// A message naming the field.
pub fn opt_b(v: &Value, key: &str) -> Result<Option<Vec<u8>>, String> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => b(v, key).map(Some),
    }
}

/// A 32-byte hex field.
///
/// # Errors
///
/// A message naming the field.
pub fn b32(v: &Value, key: &str) -> Result<[u8; 32], String> {
    b(v, key)?
        .try_into()
        .map_err(|_| format!("{key:?} is not 32 bytes"))
}

/// A 64-byte hex field.
///
/// # Errors
///
/// A message naming the field.
pub fn b64(v: &Value, key: &str) -> Result<[u8; 64], String> {
    b(v, key)?
        .try_into()
        .map_err(|_| format!("{key:?} is not 64 bytes"))
}

/// An integer field.
///
/// # Errors
///
/// A message naming the field.
pub fn u(v: &Value, key: &str) -> Result<u64, String> {
    v.get(key)
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("missing integer field {key:?}"))
}

/// A u32 field.
///
/// # Errors
///
/// A message naming the field.
pub fn u32_of(v: &Value, key: &str) -> Result<u32, String> {
    u32::try_from(u(v, key)?).map_err(|e| e.to_string())
}

/// A string field.
///
/// # Errors
///
/// A message naming the field.
pub fn s<'a>(v: &'a Value, key: &str) -> Result<&'a str, String> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing string field {key:?}"))
}

/// A list field.
///
/// # Errors
///
/// A message naming the field.
pub fn list<'a>(v: &'a Value, key: &str) -> Result<&'a Vec<Value>, String> {
    v.get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("missing list {key:?}"))
}

/// A list of hex strings.
///
/// # Errors
///
/// A message naming the field.
pub fn hex_items(v: &Value, key: &str) -> Result<Vec<Vec<u8>>, String> {
    list(v, key)?
        .iter()
        .map(|d| unhex(d.as_str().ok_or("an item is not a string")?))
        .collect()
}

/// Eight hex levels R_0 .. R_7.
///
/// # Errors
///
/// A message naming the field.
pub fn levels(v: &Value, key: &str) -> Result<Levels, String> {
    let items = hex_items(v, key)?;
    if items.len() != 8 {
        return Err(format!("{key:?} is not a list of 8 levels"));
    }
    let mut out = [[0u8; 32]; 8];
    for (o, l) in out.iter_mut().zip(items) {
        *o = l.try_into().map_err(|_| "a level is not 32 bytes")?;
    }
    Ok(out)
}

/// Bytes equal, or a message with both in hex.
///
/// # Errors
///
/// What differs.
pub fn eq(what: &str, got: &[u8], want: &[u8]) -> Res {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {}, want {}", hex(got), hex(want)))
    }
}

/// A hex field equals `got`.
///
/// # Errors
///
/// What differs.
pub fn field(v: &Value, key: &str, got: &[u8]) -> Res {
    eq(key, got, &b(v, key)?)
}

/// JSON values equal.
///
/// # Errors
///
/// What differs.
pub fn same(what: &str, got: &Value, want: &Value) -> Res {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got}, want {want}"))
    }
}

/// A label field equals the specification's label.
///
/// # Errors
///
/// What differs.
pub fn label(v: &Value, key: &str, spec: &str) -> Res {
    if s(v, key)? == spec {
        Ok(())
    } else {
        Err(format!("label {key:?} is not {spec:?}"))
    }
}

/// A model result that must succeed.
///
/// # Errors
///
/// The model's refusal, as a message.
pub fn model<T>(what: &str, r: Result<T, crate::model::Refusal>) -> Result<T, String> {
    r.map_err(|e| format!("{what} (model) failed: {e}"))
}
