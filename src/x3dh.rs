//! X3DH key agreement: the four Diffie-Hellman exchanges and the KDF over
//! them, and the associated data (SPEC.md §7).

use alloc::vec::Vec;

use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::crypto::{self, label};
use crate::error::Result;
use crate::keys::{IDENTITY_KEY_LEN, IdentityKey, IdentityKeyPair};

/// Length of the associated data: initiator identity then responder identity.
pub(crate) const ASSOCIATED_DATA_LEN: usize = 2 * IDENTITY_KEY_LEN;

/// The 32 bytes of 0xFF that prefix the KDF input, so that it can never be a
/// valid X25519 output sequence used elsewhere.
const KDF_PREFIX: [u8; 32] = [0xff; 32];

/// The initiator's side: DH1 = DH(IK_A, SPK_B), DH2 = DH(EK_A, IK_B),
/// DH3 = DH(EK_A, SPK_B), DH4 = DH(EK_A, OPK_B).
pub(crate) fn initiator_secret(
    identity: &IdentityKeyPair,
    base: &StaticSecret,
    responder: &IdentityKey,
    signed_prekey: &PublicKey,
    one_time_prekey: Option<&PublicKey>,
) -> Result<Zeroizing<[u8; 32]>> {
    let dh1 = crypto::x25519(identity.dh(), signed_prekey)?;
    let dh2 = crypto::x25519(base, responder.dh())?;
    let dh3 = crypto::x25519(base, signed_prekey)?;
    let dh4 = one_time_prekey
        .map(|opk| crypto::x25519(base, opk))
        .transpose()?;
    Ok(shared_secret(&dh1, &dh2, &dh3, dh4.as_deref()))
}

/// The responder's side of the same four exchanges.
pub(crate) fn responder_secret(
    identity: &IdentityKeyPair,
    signed_prekey: &StaticSecret,
    one_time_prekey: Option<&StaticSecret>,
    initiator: &IdentityKey,
    base: &PublicKey,
) -> Result<Zeroizing<[u8; 32]>> {
    let dh1 = crypto::x25519(signed_prekey, initiator.dh())?;
    let dh2 = crypto::x25519(identity.dh(), base)?;
    let dh3 = crypto::x25519(signed_prekey, base)?;
    let dh4 = one_time_prekey
        .map(|opk| crypto::x25519(opk, base))
        .transpose()?;
    Ok(shared_secret(&dh1, &dh2, &dh3, dh4.as_deref()))
}

/// SK = HKDF-SHA256(salt = 32 zero bytes, IKM = 0xFF x 32 || DH1 || DH2 ||
/// DH3 [|| DH4], info = "sotto v2 x3dh", L = 32).
fn shared_secret(
    dh1: &[u8; 32],
    dh2: &[u8; 32],
    dh3: &[u8; 32],
    dh4: Option<&[u8; 32]>,
) -> Zeroizing<[u8; 32]> {
    let mut ikm = Zeroizing::new(Vec::with_capacity(5 * 32));
    for part in [&KDF_PREFIX, dh1, dh2, dh3].into_iter().chain(dh4) {
        ikm.extend_from_slice(part);
    }
    crypto::hkdf::<32>(&[0u8; 32], &ikm, label::X3DH)
}

/// AD = Encode(IK_initiator) || Encode(IK_responder).
pub(crate) fn associated_data(
    initiator: &IdentityKey,
    responder: &IdentityKey,
) -> [u8; ASSOCIATED_DATA_LEN] {
    let mut ad = [0u8; ASSOCIATED_DATA_LEN];
    let (a, b) = ad.split_at_mut(IDENTITY_KEY_LEN);
    a.copy_from_slice(initiator.as_bytes());
    b.copy_from_slice(responder.as_bytes());
    ad
}
