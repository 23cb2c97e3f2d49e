//! Lowercase hex, as the vectors write bytes.

use serde_json::Value;

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Strict lowercase hex to bytes.
///
/// # Errors
///
/// A message naming the input if it is not even-length lowercase hex.
pub fn unhex(s: &str) -> Result<Vec<u8>, String> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        _ => Err(format!("not lowercase hex: {s:?}")),
    };
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return Err(format!("odd-length hex: {s:?}"));
    }
    b.chunks(2)
        .map(|p| Ok(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

/// A JSON list of hex strings.
pub fn hex_list(items: &[Vec<u8>]) -> Value {
    items.iter().map(|d| Value::from(hex(d))).collect()
}
