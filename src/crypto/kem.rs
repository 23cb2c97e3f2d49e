//! ML-KEM-1024 (FIPS 203) for PQXDH (SPEC.md §2, §5.5, §7), over
//! RustCrypto's `ml-kem`.
//!
//! A decapsulation key is kept only as its 64-byte seed `d || z` and
//! re-expanded when it is needed: the device state stays small and there is
//! no expanded-key encoding to validate. Randomness is drawn by the callers
//! (the seed, and `m` for an encapsulation), so a seeded RNG replays every
//! byte.

use alloc::boxed::Box;
use core::fmt;

use ml_kem::array::typenum::Unsigned;
use ml_kem::kem::{Decapsulate, Kem, KeyExport, KeyInit, KeySizeUser};
use ml_kem::{MlKem1024, Seed};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{Error, Result};

/// Length of a decapsulation key seed `d || z`.
pub(crate) const SEED_LEN: usize = 64;
/// Length of an ML-KEM-1024 encapsulation key.
pub(crate) const EK_LEN: usize = 1568;
/// Length of an ML-KEM-1024 ciphertext.
pub(crate) const CT_LEN: usize = 1568;
/// Length of the encapsulation randomness `m`.
pub(crate) const M_LEN: usize = 32;
/// Length of the shared secret.
pub(crate) const SS_LEN: usize = 32;

type InnerDk = ml_kem::DecapsulationKey<MlKem1024>;
type InnerEk = ml_kem::EncapsulationKey<MlKem1024>;

// The lengths above are the wire format; the build fails if the crate
// disagrees.
const _: () = {
    assert!(<<InnerDk as KeySizeUser>::KeySize as Unsigned>::USIZE == SEED_LEN);
    assert!(<<InnerEk as KeySizeUser>::KeySize as Unsigned>::USIZE == EK_LEN);
    assert!(<<MlKem1024 as Kem>::CiphertextSize as Unsigned>::USIZE == CT_LEN);
    assert!(<<MlKem1024 as Kem>::SharedKeySize as Unsigned>::USIZE == SS_LEN);
};

/// A decapsulation key, held as its seed `d || z` in its own heap block.
/// Zeroized on drop; never printed or compared.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct DecapsulationSeed(Box<[u8; SEED_LEN]>);

impl DecapsulationSeed {
    /// Wraps a seed (drawn, or read from saved state); every 64-byte string
    /// is one.
    pub(crate) fn new(seed: Box<[u8; SEED_LEN]>) -> Self {
        Self(seed)
    }

    /// The seed, for saved state only.
    pub(crate) fn as_bytes(&self) -> &[u8; SEED_LEN] {
        &self.0
    }

    /// The matching encapsulation key (`ML-KEM.KeyGen_internal(d, z)`).
    pub(crate) fn encapsulation_key(&self) -> EncapsulationKey {
        EncapsulationKey::from_inner(self.expand().encapsulation_key().clone())
    }

    /// The expanded key; `ml-kem` zeroizes it on drop (feature `zeroize`).
    fn expand(&self) -> InnerDk {
        let seed: &Seed = (&*self.0).into();
        <InnerDk as KeyInit>::new(seed)
    }
}

impl fmt::Debug for DecapsulationSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DecapsulationSeed(..)")
    }
}

/// An encapsulation key that passed the FIPS 203 §7.2 input check (every
/// 12-bit coefficient below q), with its encoding. Compared by its bytes.
#[derive(Clone)]
pub(crate) struct EncapsulationKey {
    inner: Box<InnerEk>,
    bytes: Box<[u8; EK_LEN]>,
}

impl EncapsulationKey {
    /// Checks a key from outside (SPEC §2).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPublicKey`] if a coefficient is q = 3329 or more (the
    /// encoding is not canonical).
    pub(crate) fn from_bytes(bytes: &[u8; EK_LEN]) -> Result<Self> {
        let key: &ml_kem::Key<InnerEk> = bytes.into();
        let inner = InnerEk::new(key).map_err(|_| Error::InvalidPublicKey)?;
        Ok(Self {
            inner: Box::new(inner),
            bytes: Box::new(*bytes),
        })
    }

    fn from_inner(inner: InnerEk) -> Self {
        let bytes = Box::new(inner.to_bytes().into());
        Self {
            inner: Box::new(inner),
            bytes,
        }
    }

    /// The key's encoding.
    pub(crate) fn as_bytes(&self) -> &[u8; EK_LEN] {
        &self.bytes
    }
}

impl PartialEq for EncapsulationKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for EncapsulationKey {}

impl fmt::Debug for EncapsulationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Public, but 1568 bytes of hex help no one; the start identifies it.
        let head = self.bytes.first_chunk::<8>().copied().unwrap_or_default();
        f.debug_struct("EncapsulationKey")
            .field("head", &head)
            .finish_non_exhaustive()
    }
}

/// `ML-KEM.Encaps_internal(ek, m)` with `m` drawn by the caller: the
/// ciphertext and the shared secret.
pub(crate) fn encapsulate(
    ek: &EncapsulationKey,
    m: &[u8; M_LEN],
) -> (Box<[u8; CT_LEN]>, Zeroizing<[u8; SS_LEN]>) {
    let (ct, mut ss) = ek.inner.encapsulate_deterministic(m.into());
    let shared = Zeroizing::new(ss.into());
    ss.zeroize();
    (Box::new(ct.into()), shared)
}

/// `ML-KEM.Decaps` with the key re-expanded from its seed, and the
/// encapsulation key of that one expansion (one key generation in all, as
/// SPEC §7.3 counts). Never fails: a ciphertext not made for this key
/// yields the implicit-rejection secret, which then fails the AEAD like any
/// wrong key.
pub(crate) fn decapsulate(
    seed: &DecapsulationSeed,
    ct: &[u8; CT_LEN],
) -> (Zeroizing<[u8; SS_LEN]>, EncapsulationKey) {
    let ct: &ml_kem::Ciphertext<MlKem1024> = ct.into();
    let dk = seed.expand();
    let mut ss = dk.decapsulate(ct);
    let shared = Zeroizing::new(ss.into());
    ss.zeroize();
    let ek = EncapsulationKey::from_inner(dk.encapsulation_key().clone());
    (shared, ek)
}

#[cfg(test)]
mod tests;
