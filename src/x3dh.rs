//! Key agreement: the four X3DH Diffie-Hellman exchanges, the ML-KEM shared
//! secret of PQXDH, the KDF over them, the KEM binding and the associated
//! data (SPEC.md §7).

use alloc::vec::Vec;

use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::codec::Codec;
use crate::crypto::kem::{EncapsulationKey, SS_LEN};
use crate::crypto::{self, label};
use crate::error::Result;
use crate::keys::{IDENTITY_KEY_LEN, IdentityKey, IdentityKeyPair};

/// Length of a KEM binding `KB` (SPEC §7.4).
pub(crate) const KEM_BINDING_LEN: usize = 32;

/// Length of the associated data: initiator identity, responder identity,
/// KEM binding.
pub(crate) const ASSOCIATED_DATA_LEN: usize = 2 * IDENTITY_KEY_LEN + KEM_BINDING_LEN;

/// The 32 bytes of 0xFF that prefix the KDF input, so that it can never be a
/// valid X25519 output sequence used elsewhere.
const KDF_PREFIX: [u8; 32] = [0xff; 32];

/// The KDF input of SPEC §7.2 step 5,
/// `0xFF^32 || DH1 || DH2 || DH3 [|| DH4] [|| SS]`, in one buffer allocated
/// for its largest size, so that it never reallocates; zeroized on drop.
pub(crate) struct KeyMaterial(Zeroizing<Vec<u8>>);

impl KeyMaterial {
    fn new(dh1: &[u8; 32], dh2: &[u8; 32], dh3: &[u8; 32], dh4: Option<&[u8; 32]>) -> Self {
        let mut ikm = Zeroizing::new(Vec::with_capacity(5 * 32 + SS_LEN));
        for part in [&KDF_PREFIX, dh1, dh2, dh3].into_iter().chain(dh4) {
            ikm.extend_from_slice(part);
        }
        Self(ikm)
    }

    /// The initiator's exchanges, in this order: DH1 = DH(IdX(IK_A), SPK_B),
    /// DH2 = DH(EK, IdU(IK_B)), DH3 = DH(EK, SPK_B), DH4 = DH(EK, OPK_B).
    pub(crate) fn initiator(
        identity: &IdentityKeyPair,
        base: &StaticSecret,
        responder: &IdentityKey,
        signed_prekey: &PublicKey,
        one_time_prekey: Option<&PublicKey>,
    ) -> Result<Self> {
        let dh1 = crypto::x25519(identity.dh(), signed_prekey)?;
        let dh2 = crypto::x25519(base, responder.dh())?;
        let dh3 = crypto::x25519(base, signed_prekey)?;
        let dh4 = one_time_prekey
            .map(|opk| crypto::x25519(base, opk))
            .transpose()?;
        Ok(Self::new(&dh1, &dh2, &dh3, dh4.as_deref()))
    }

    /// The responder's side of the same exchanges, in the same order
    /// (SPEC §7.3 step 7).
    pub(crate) fn responder(
        identity: &IdentityKeyPair,
        signed_prekey: &StaticSecret,
        one_time_prekey: Option<&StaticSecret>,
        initiator: &IdentityKey,
        base: &PublicKey,
    ) -> Result<Self> {
        let dh1 = crypto::x25519(signed_prekey, initiator.dh())?;
        let dh2 = crypto::x25519(identity.dh(), base)?;
        let dh3 = crypto::x25519(signed_prekey, base)?;
        let dh4 = one_time_prekey
            .map(|opk| crypto::x25519(opk, base))
            .transpose()?;
        Ok(Self::new(&dh1, &dh2, &dh3, dh4.as_deref()))
    }

    /// `SK = HKDF(salt = 0^32, ikm, info, 32)`, with the KEM shared secret
    /// `SS` appended and `info = "sotto v2 pqxdh"` for PQXDH, and
    /// `info = "sotto v2 x3dh"` without it.
    pub(crate) fn shared_secret(
        mut self,
        kem_secret: Option<&[u8; SS_LEN]>,
    ) -> Zeroizing<[u8; 32]> {
        let info = match kem_secret {
            Some(ss) => {
                self.0.extend_from_slice(ss);
                label::PQXDH
            }
            None => label::X3DH,
        };
        crypto::hkdf::<32>(&[0u8; 32], &self.0, info)
    }
}

/// `KB = SHA256("sotto v2 kem binding" || EncodeKEM(ek))` for a PQXDH
/// session, `SHA256("sotto v2 kem binding" || 0x00)` for an X3DH one
/// (SPEC §7.4).
pub(crate) fn kem_binding(key: Option<&EncapsulationKey>) -> [u8; KEM_BINDING_LEN] {
    match key {
        Some(key) => {
            let mut encoded = Vec::with_capacity(1 + key.as_bytes().len());
            key.encode(&mut encoded);
            crypto::sha256(&[label::KEM_BINDING, &encoded])
        }
        None => crypto::sha256(&[label::KEM_BINDING, &[0]]),
    }
}

/// AD = IK_initiator || IK_responder || KB (SPEC §7.2 step 6).
pub(crate) fn associated_data(
    initiator: &IdentityKey,
    responder: &IdentityKey,
    kem_binding: &[u8; KEM_BINDING_LEN],
) -> [u8; ASSOCIATED_DATA_LEN] {
    let mut ad = [0u8; ASSOCIATED_DATA_LEN];
    let (a, rest) = ad.split_at_mut(IDENTITY_KEY_LEN);
    let (b, kb) = rest.split_at_mut(IDENTITY_KEY_LEN);
    a.copy_from_slice(initiator.as_bytes());
    b.copy_from_slice(responder.as_bytes());
    kb.copy_from_slice(kem_binding);
    ad
}
