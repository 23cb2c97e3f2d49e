//! The root chain: KDF_RK, fed by each Diffie-Hellman ratchet step
//! (SPEC.md §8.2).

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::chain::ChainKey;
use crate::codec::{Codec, Reader, Sink};
use crate::crypto::{self, label};
use crate::error::Result;

/// The root key. Zeroized on drop; never printed or compared.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct RootKey([u8; 32]);

impl RootKey {
    pub(crate) fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// All zero: a placeholder in a new state's box, overwritten there
    /// before the state is used.
    pub(crate) fn zero() -> Self {
        Self([0; 32])
    }

    /// Overwrites the key with `bytes` where it is.
    pub(crate) fn set(&mut self, bytes: &[u8; 32]) {
        self.0.copy_from_slice(bytes);
    }

    #[cfg(test)]
    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// KDF_RK: HKDF-SHA256(salt = root key, IKM = DH output,
    /// info = "sotto v2 root", L = 64) split into the next root key (first
    /// 32 bytes) and a new chain key (last 32 bytes).
    pub(crate) fn step(&self, dh_output: &[u8; 32]) -> (RootKey, ChainKey) {
        let okm = crypto::hkdf::<64>(&self.0, dh_output, label::ROOT);
        let mut root = [0u8; 32];
        let mut chain = [0u8; 32];
        let (r, c) = okm.split_at(32);
        root.copy_from_slice(r);
        chain.copy_from_slice(c);
        (RootKey(root), ChainKey::from_bytes(chain))
    }
}

impl Codec for RootKey {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.0.encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        r.array().map(Self)
    }
}
