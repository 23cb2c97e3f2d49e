//! Sending and receiving chains: KDF_CK and the per-message key expansion.

use hmac::Mac;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::crypto::{self, AEAD_KEY_LEN, AEAD_NONCE_LEN, label};
use crate::wire::SALT_LEN;

/// A chain key. Zeroized on drop; never printed or compared.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct ChainKey([u8; 32]);

impl ChainKey {
    pub(crate) fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// KDF_CK: message key = HMAC-SHA256(ck, "sotto v1 chain message"),
    /// next chain key = HMAC-SHA256(ck, "sotto v1 chain next").
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

/// One message's key, before expansion. Zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct MessageKey([u8; 32]);

impl MessageKey {
    pub(crate) fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The AES-256-GCM key and nonce: HKDF-SHA256(salt = the message's random
    /// salt, IKM = message key, info = "sotto v1 message keys", L = 44), key
    /// first. The salt makes the pair fresh even if a restored state reuses
    /// the message key.
    pub(crate) fn aead_key_nonce(
        &self,
        salt: &[u8; SALT_LEN],
    ) -> (Zeroizing<[u8; AEAD_KEY_LEN]>, [u8; AEAD_NONCE_LEN]) {
        crypto::aead_key_nonce(salt, &self.0, label::MESSAGE_KEYS)
    }
}
