//! Thin wrappers over the primitives, so that every protocol module uses them
//! one way: labelled KDFs, contributory X25519, strict Ed25519, AES-256-GCM
//! with a full tag (SPEC.md §2, the labels of §3 and §15.2), and the
//! encodings of the primitives' keys (§4: which public keys are validated).

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hkdf::Hkdf;
use hmac::Hmac;
use rand_core::TryCryptoRng;
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::codec::{Codec, Reader, Sink};
use crate::error::{Error, Result};

pub(crate) mod kem;

/// KDF, hash and signature labels (SPEC §3). Each use has its own, and no
/// signature label is a prefix of another.
pub(crate) mod label {
    pub(crate) const X3DH: &[u8] = b"sotto v2 x3dh";
    pub(crate) const PQXDH: &[u8] = b"sotto v2 pqxdh";
    pub(crate) const KEM_BINDING: &[u8] = b"sotto v2 kem binding";
    pub(crate) const ROOT: &[u8] = b"sotto v2 root";
    pub(crate) const CHAIN_MESSAGE: &[u8] = b"sotto v2 chain message";
    pub(crate) const CHAIN_NEXT: &[u8] = b"sotto v2 chain next";
    pub(crate) const MESSAGE_KEYS: &[u8] = b"sotto v2 message keys";
    pub(crate) const SIGNED_PREKEY: &[u8] = b"sotto v2 signed prekey";
    pub(crate) const KEM_PREKEY: &[u8] = b"sotto v2 kem prekey";
    pub(crate) const FINGERPRINT: &[u8] = b"sotto v2 fingerprint";
    pub(crate) const SEALED_STATE: &[u8] = b"sotto v2 sealed state";
    pub(crate) const GROUP_STEP: &[u8] = b"sotto v2 group step";
    pub(crate) const GROUP_DERIVE: &[u8] = b"sotto v2 group derive";
    pub(crate) const GROUP_MESSAGE_KEY: &[u8] = b"sotto v2 group key";
    pub(crate) const GROUP_MESSAGE_KEYS: &[u8] = b"sotto v2 group message keys";
    /// The group message signature (SPEC §15.5).
    pub(crate) const GROUP_SIGNATURE: &[u8] = b"sotto v2 group message";
    /// A chain's owner proof, by the chain key (SPEC §15.6).
    pub(crate) const GROUP_CHAIN_OWNER: &[u8] = b"sotto v2 group chain owner";
    /// The owner's signature of its chain, by the identity key (SPEC §15.6).
    pub(crate) const GROUP_OWNER_SIGNATURE: &[u8] = b"sotto v2 group owner signature";
    /// The per-user safety number's hash (SPEC §16.9).
    pub(crate) const SAFETY_NUMBER: &[u8] = b"sotto v2 safety number";
}

/// AES-256-GCM key length.
pub(crate) const AEAD_KEY_LEN: usize = 32;
/// AES-256-GCM nonce length.
pub(crate) const AEAD_NONCE_LEN: usize = 12;
/// AES-256-GCM tag length; never truncated.
pub(crate) const AEAD_TAG_LEN: usize = 16;

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 keyed with `key`, for any key length.
///
/// HMAC pads keys shorter than the 64-byte block with zeros and hashes longer
/// ones first (RFC 2104), so building the block here gives exactly HMAC and
/// cannot fail.
pub(crate) fn hmac(key: &[u8]) -> HmacSha256 {
    let mut block = Zeroizing::new([0u8; 64]);
    if key.len() > block.len() {
        let digest = Sha256::digest(key);
        for (b, d) in block.iter_mut().zip(digest.iter()) {
            *b = *d;
        }
    } else {
        for (b, k) in block.iter_mut().zip(key) {
            *b = *k;
        }
    }
    <HmacSha256 as KeyInit>::new(&(*block).into())
}

/// HKDF-SHA256 (RFC 5869) with `N` bytes of output.
pub(crate) fn hkdf<const N: usize>(salt: &[u8], ikm: &[u8], info: &[u8]) -> Zeroizing<[u8; N]> {
    const { assert!(N <= 255 * 32, "HKDF-SHA256 output is at most 8160 bytes") };
    let mut out = Zeroizing::new([0u8; N]);
    let expanded = Hkdf::<Sha256>::new(Some(salt), ikm).expand(info, out.as_mut());
    // The only failure is an output over 8160 bytes, ruled out at compile time.
    debug_assert!(expanded.is_ok());
    out
}

/// HKDF-SHA256(salt, ikm, info, 44) split into an AES-256 key and a nonce.
pub(crate) fn aead_key_nonce(
    salt: &[u8],
    ikm: &[u8],
    info: &[u8],
) -> (Zeroizing<[u8; AEAD_KEY_LEN]>, [u8; AEAD_NONCE_LEN]) {
    let okm = hkdf::<{ AEAD_KEY_LEN + AEAD_NONCE_LEN }>(salt, ikm, info);
    let mut key = Zeroizing::new([0u8; AEAD_KEY_LEN]);
    let mut nonce = [0u8; AEAD_NONCE_LEN];
    let (k, n) = okm.split_at(AEAD_KEY_LEN);
    key.copy_from_slice(k);
    nonce.copy_from_slice(n);
    (key, nonce)
}

/// Draws `out.len()` bytes from the caller's RNG (SPEC §1). Every caller
/// draws before it changes anything, so a failure,
/// `RandomnessUnavailable`, leaves every state as it was.
pub(crate) fn draw<R: TryCryptoRng + ?Sized>(rng: &mut R, out: &mut [u8]) -> Result<()> {
    rng.try_fill_bytes(out)
        .map_err(|_| Error::RandomnessUnavailable)
}

/// Draws an X25519 secret: 32 bytes, kept unclamped as drawn.
pub(crate) fn draw_x25519<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<StaticSecret> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    draw(rng, bytes.as_mut())?;
    Ok(StaticSecret::from(*bytes))
}

/// SHA-256 over the concatenation of `parts`.
pub(crate) fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// X25519 that rejects the all-zero output of a low-order peer key.
pub(crate) fn x25519(secret: &StaticSecret, public: &PublicKey) -> Result<Zeroizing<[u8; 32]>> {
    let shared = secret.diffie_hellman(public);
    if !shared.was_contributory() {
        return Err(Error::NonContributoryKey);
    }
    Ok(Zeroizing::new(shared.to_bytes()))
}

/// Whether 32 bytes are the canonical encoding of an X25519 u-coordinate:
/// top bit clear and value below 2^255 - 19.
pub(crate) fn is_canonical_x25519(bytes: &[u8; 32]) -> bool {
    let [first, middle @ .., last] = bytes;
    if *last & 0x80 != 0 {
        return false;
    }
    // Values in [p, 2^255) are ed..ff, ff x30, 7f in little-endian.
    let at_least_p = *first >= 0xed && middle.iter().all(|b| *b == 0xff) && *last == 0x7f;
    !at_least_p
}

/// Decodes an X25519 public key, rejecting non-canonical encodings.
pub(crate) fn x25519_public(bytes: [u8; 32]) -> Result<PublicKey> {
    if is_canonical_x25519(&bytes) {
        Ok(PublicKey::from(bytes))
    } else {
        Err(Error::InvalidPublicKey)
    }
}

/// Decodes an Ed25519 public key, rejecting invalid points, non-canonical
/// encodings and small-order points.
pub(crate) fn ed25519_public(bytes: &[u8; 32]) -> Result<VerifyingKey> {
    let key = VerifyingKey::from_bytes(bytes).map_err(|_| Error::InvalidPublicKey)?;
    // The x-sign bit aside, an encoding is canonical iff y < p, the same byte
    // test as for X25519; the only other non-canonical form (x = 0 with the
    // sign bit set) is a small-order point, which `is_weak` rejects.
    let mut y = *bytes;
    if let Some(last) = y.last_mut() {
        *last &= 0x7f;
    }
    if key.is_weak() || !is_canonical_x25519(&y) {
        return Err(Error::InvalidPublicKey);
    }
    Ok(key)
}

/// Ed25519 signature over `label || message`.
pub(crate) fn sign(key: &SigningKey, label: &[u8], message: &[&[u8]]) -> [u8; 64] {
    let data = signed_data(label, message);
    key.sign(&data).to_bytes()
}

/// Strict Ed25519 verification (RFC 8032 with canonical S and no small-order
/// components) of a signature over `label || message`.
pub(crate) fn verify(
    key: &VerifyingKey,
    label: &[u8],
    message: &[&[u8]],
    signature: &[u8; 64],
) -> Result<()> {
    let signature = Signature::from_bytes(signature);
    let data = signed_data(label, message);
    key.verify_strict(&data, &signature)
        .map_err(|_| Error::InvalidSignature)
}

fn signed_data(label: &[u8], message: &[&[u8]]) -> alloc::vec::Vec<u8> {
    let len = label.len() + message.iter().map(|m| m.len()).sum::<usize>();
    let mut data = alloc::vec::Vec::with_capacity(len);
    data.extend_from_slice(label);
    for m in message {
        data.extend_from_slice(m);
    }
    data
}

/// Encrypts `buffer` in place with AES-256-GCM and returns the 16-byte tag.
pub(crate) fn aead_seal(
    key: &[u8; AEAD_KEY_LEN],
    nonce: &[u8; AEAD_NONCE_LEN],
    aad: &[u8],
    buffer: &mut [u8],
) -> Result<[u8; AEAD_TAG_LEN]> {
    let cipher = Aes256Gcm::new(&(*key).into());
    let nonce = Nonce::from(*nonce);
    let tag = cipher
        .encrypt_inout_detached(&nonce, aad, buffer.into())
        .map_err(|_| Error::PlaintextTooLarge)?;
    Ok(tag.into())
}

/// Checks `tag` in constant time, then decrypts `buffer` (ciphertext without
/// tag) in place with AES-256-GCM.
pub(crate) fn aead_open(
    key: &[u8; AEAD_KEY_LEN],
    nonce: &[u8; AEAD_NONCE_LEN],
    aad: &[u8],
    buffer: &mut [u8],
    tag: &[u8; AEAD_TAG_LEN],
) -> Result<()> {
    let cipher = Aes256Gcm::new(&(*key).into());
    let nonce = Nonce::from(*nonce);
    let tag = Tag::from(*tag);
    cipher
        .decrypt_inout_detached(&nonce, aad, buffer.into(), &tag)
        .map_err(|_| Error::AuthenticationFailed)
}

/// An X25519 public key: canonical (SPEC §4), else `InvalidPublicKey`.
impl Codec for PublicKey {
    fn encode<S: Sink>(&self, out: &mut S) {
        out.put(self.as_bytes());
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        x25519_public(r.array()?)
    }
}

/// An X25519 secret, stored unclamped as drawn (SPEC §10.2).
impl Codec for StaticSecret {
    fn encode<S: Sink>(&self, out: &mut S) {
        out.put(self.as_bytes());
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self::from(r.array::<32>()?))
    }
}

/// An Ed25519 public key: valid, canonical, not of small order (SPEC §4),
/// else `InvalidPublicKey`.
impl Codec for VerifyingKey {
    fn encode<S: Sink>(&self, out: &mut S) {
        out.put(self.as_bytes());
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        ed25519_public(&r.array()?)
    }
}

/// An Ed25519 signing key, as its 32-byte seed.
impl Codec for SigningKey {
    fn encode<S: Sink>(&self, out: &mut S) {
        out.put(self.as_bytes());
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let seed = Zeroizing::new(r.array::<32>()?);
        Ok(Self::from_bytes(&seed))
    }
}

#[cfg(test)]
mod tests;
