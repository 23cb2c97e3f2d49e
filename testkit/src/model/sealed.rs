//! SPEC.md §10.4: sealed state.

use serde_json::json;

use super::codec::{Layout, Reader};
use super::error::{Refusal, refusal, refusal_with};
use super::primitives::{L_SEALED, MAX_STATE, key_nonce, open, seal};

/// Length of the sealed header (version, type, inner type, salt): the AAD.
pub const HEADER_LEN: usize = 35;

/// Seals a plain state: (sealed bytes, AES key, nonce).
pub fn seal_state(
    storage: &[u8; 32],
    salt: &[u8; 32],
    plain: &[u8],
) -> (Vec<u8>, [u8; 32], [u8; 12]) {
    let mut out = vec![1, 0x30, plain[1]];
    out.extend(salt);
    let (key, nonce) = key_nonce(salt, storage, L_SEALED);
    let ct = seal(&key, &nonce, &out, plain);
    out.extend(ct);
    (out, key, nonce)
}

/// Opens a sealed state whose inner type must be `inner`, in §10.4's
/// order; returns the plain state (not yet decoded) and the layout.
///
/// # Errors
///
/// The model's refusal: the SPEC.md error of the first check the input
/// fails, in the order SPEC.md fixes.
pub fn open_state(
    sealed: &[u8],
    storage: &[u8; 32],
    inner: u8,
) -> Result<(Vec<u8>, Layout), Refusal> {
    if sealed.len() > MAX_STATE {
        return Err(refusal("TooLarge"));
    }
    let mut r = Reader::header(sealed, 0x30)?;
    let found = r.u8("inner_type")?;
    if found != inner {
        return Err(refusal_with(
            "WrongType",
            json!({ "expected": inner, "found": found }),
        ));
    }
    let salt = r.take("salt", 32)?;
    if r.remaining() < 16 {
        return Err(refusal("Truncated"));
    }
    let ciphertext = r.rest("ciphertext");
    let (key, nonce) = key_nonce(salt, storage, L_SEALED);
    let plain = open(&key, &nonce, &sealed[..HEADER_LEN], ciphertext)
        .ok_or_else(|| refusal("AuthenticationFailed"))?;
    Ok((plain, r.into_layout()))
}

/// The layout of a sealed state (version, type, inner type, salt,
/// ciphertext), without opening it.
///
/// # Errors
///
/// The model's refusal: the SPEC.md error of the first check the input
/// fails, in the order SPEC.md fixes.
pub fn read_layout(sealed: &[u8]) -> Result<Layout, Refusal> {
    let mut r = Reader::header(sealed, 0x30)?;
    r.u8("inner_type")?;
    r.take("salt", 32)?;
    if r.remaining() < 16 {
        return Err(refusal("Truncated"));
    }
    r.rest("ciphertext");
    Ok(r.into_layout())
}
