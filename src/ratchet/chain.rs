//! Symmetric chains: KDF_CK (SPEC.md §8.3), and the message keys it yields
//! with the per-message key expansion and AEAD (§8.4).

use alloc::vec::Vec;

use hmac::Mac;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::codec::{Codec, Reader, Sink};
use crate::crypto::{self, AEAD_TAG_LEN, label};
use crate::error::{Error, Result};
use crate::wire::{PREKEY_HEADER_MAX_LEN, RATCHET_HEADER_LEN, SALT_LEN};
use crate::x3dh::ASSOCIATED_DATA_LEN;

/// A chain key. Zeroized on drop; never printed or compared.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct ChainKey([u8; 32]);

impl ChainKey {
    pub(crate) fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    #[cfg(test)]
    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// KDF_CK: message key = HMAC-SHA256(ck, "sotto v2 chain message"),
    /// next chain key = HMAC-SHA256(ck, "sotto v2 chain next").
    pub(crate) fn step(&self) -> (MessageKey, ChainKey) {
        // Both MACs share the keyed state, so the key is absorbed once.
        let keyed = crypto::hmac(&self.0);
        let mut message = keyed.clone();
        message.update(label::CHAIN_MESSAGE);
        let mut next = keyed;
        next.update(label::CHAIN_NEXT);
        (
            MessageKey(message.finalize().into_bytes().into()),
            ChainKey(next.finalize().into_bytes().into()),
        )
    }
}

impl Codec for ChainKey {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.0.encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        r.array().map(Self)
    }
}

/// One message's key, before expansion. Zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct MessageKey([u8; 32]);

impl MessageKey {
    #[cfg(test)]
    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Encrypts `body` in place and returns the tag. The AES-256-GCM key and
    /// nonce are HKDF-SHA256(salt = the message's random salt, IKM = message
    /// key, info = "sotto v2 message keys", L = 44), key first; the salt
    /// makes the pair fresh even if a restored state reuses the message key.
    /// The associated data is the session's, then `prefix`: every message
    /// byte before the ciphertext.
    pub(crate) fn seal(
        &self,
        salt: &[u8; SALT_LEN],
        associated_data: &[u8; ASSOCIATED_DATA_LEN],
        prefix: &[u8],
        body: &mut [u8],
    ) -> Result<[u8; AEAD_TAG_LEN]> {
        let (key, nonce) = crypto::aead_key_nonce(salt, &self.0, label::MESSAGE_KEYS);
        let aad = Aad::new(associated_data, prefix);
        crypto::aead_seal(&key, &nonce, aad.as_bytes(), body)
    }

    /// Decrypts `body` (ciphertext then tag) of a message sealed by
    /// [`MessageKey::seal`] with the same salt, associated data and prefix.
    pub(crate) fn open(
        &self,
        salt: &[u8; SALT_LEN],
        associated_data: &[u8; ASSOCIATED_DATA_LEN],
        prefix: &[u8],
        body: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let (ciphertext, tag) = body
            .split_last_chunk::<AEAD_TAG_LEN>()
            .ok_or(Error::Truncated)?;
        let (key, nonce) = crypto::aead_key_nonce(salt, &self.0, label::MESSAGE_KEYS);
        let aad = Aad::new(associated_data, prefix);
        // Exact capacity, decrypted in place: the plaintext is never copied.
        let mut plaintext = Zeroizing::new(ciphertext.to_vec());
        crypto::aead_open(&key, &nonce, aad.as_bytes(), &mut plaintext, tag)?;
        Ok(plaintext)
    }
}

impl Codec for MessageKey {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.0.encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        r.array().map(Self)
    }
}

/// AEAD associated data: the session's AD followed by every message byte
/// before the ciphertext (the prekey header, if any, and the ratchet
/// header). On the stack, so that a message costs no allocation for it.
struct Aad {
    buffer: [u8; ASSOCIATED_DATA_LEN + PREKEY_HEADER_MAX_LEN + RATCHET_HEADER_LEN],
    len: usize,
}

impl Aad {
    fn new(associated_data: &[u8; ASSOCIATED_DATA_LEN], prefix: &[u8]) -> Self {
        let mut buffer = [0u8; ASSOCIATED_DATA_LEN + PREKEY_HEADER_MAX_LEN + RATCHET_HEADER_LEN];
        let (a, rest) = buffer.split_at_mut(ASSOCIATED_DATA_LEN);
        a.copy_from_slice(associated_data);
        let mut len = ASSOCIATED_DATA_LEN;
        for (dst, src) in rest.iter_mut().zip(prefix) {
            *dst = *src;
            len += 1;
        }
        Self { buffer, len }
    }

    fn as_bytes(&self) -> &[u8] {
        self.buffer.get(..self.len).unwrap_or_default()
    }
}
