//! SPEC.md §10.5: sealed state, bound to a context.

use serde_json::json;

use super::codec::{Layout, Reader};
use super::error::{Refusal, refusal, refusal_with};
use super::primitives::{L_SEALED, MAX_SEAL_CONTEXT, MAX_STATE, VERSION, key_nonce, open, seal};
use super::rand::Source;

/// Length of the sealed header (version, type, inner type, salt).
pub const HEADER_LEN: usize = 35;
/// What sealing adds to a plain state: the header and the tag.
pub const OVERHEAD: usize = HEADER_LEN + 16;

/// The associated data: the header, then `u16(len(context)) || context`.
pub fn aad(header: &[u8], context: &[u8]) -> Vec<u8> {
    let mut aad = header.to_vec();
    aad.extend(u16::try_from(context.len()).expect("bounded").to_be_bytes());
    aad.extend(context);
    aad
}

/// A sealed state and how it was made.
#[derive(Clone, Debug)]
pub struct Sealed {
    /// The sealed bytes.
    pub bytes: Vec<u8>,
    /// The drawn salt.
    pub salt: [u8; 32],
    /// The AES key.
    pub key: [u8; 32],
    /// The nonce.
    pub nonce: [u8; 12],
    /// The associated data.
    pub aad: Vec<u8>,
}

/// Seals a plain state: `TooLarge` for a context over
/// `MAX_SEAL_CONTEXT_LEN` (checked first) or a sealed form over
/// `MAX_STATE_LEN`, then draws the 32-byte salt.
///
/// # Errors
///
/// `TooLarge`.
pub fn seal_state(
    storage: &[u8; 32],
    context: &[u8],
    plain: &[u8],
    rng: &mut dyn Source,
) -> Result<Sealed, Refusal> {
    if context.len() > MAX_SEAL_CONTEXT || plain.len() + OVERHEAD > MAX_STATE {
        return Err(refusal("TooLarge"));
    }
    let salt = rng.draw::<32>();
    Ok(seal_with(storage, context, plain, &salt))
}

/// Seals with a given salt.
pub fn seal_with(storage: &[u8; 32], context: &[u8], plain: &[u8], salt: &[u8; 32]) -> Sealed {
    let mut out = vec![VERSION, 0x30, plain[1]];
    out.extend(salt);
    let (key, nonce) = key_nonce(salt, storage, L_SEALED);
    let aad = aad(&out, context);
    let ct = seal(&key, &nonce, &aad, plain);
    out.extend(ct);
    Sealed {
        bytes: out,
        salt: *salt,
        key,
        nonce,
        aad,
    }
}

/// Opens a sealed state whose inner type must be `inner`, in §10.5's
/// order; returns the plain state (not yet decoded, which is the last
/// check) and the layout.
///
/// # Errors
///
/// The model's refusal: the SPEC.md error of the first check the input
/// fails, in the order SPEC.md fixes.
pub fn open_state(
    sealed: &[u8],
    storage: &[u8; 32],
    context: &[u8],
    inner: u8,
) -> Result<(Vec<u8>, Layout), Refusal> {
    if context.len() > MAX_SEAL_CONTEXT || sealed.len() > MAX_STATE {
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
    let plain = open(
        &key,
        &nonce,
        &aad(&sealed[..HEADER_LEN], context),
        ciphertext,
    )
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
