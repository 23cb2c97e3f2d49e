//! Saved state: the [`SavedState`] trait every stateful type implements, the
//! `MAX_STATE_LEN` bound on plain and sealed states (SPEC.md §10.1), and the
//! sealed envelope that encrypts a state at rest, bound to a context (§10.5).
//!
//! The plain encodings themselves live beside their types: the session in
//! `ratchet/session.rs` (§10.2), the device in `device.rs` (§10.3), the
//! group states in `group/` (§15.11).

use alloc::vec::Vec;
use core::fmt;

use rand_core::TryCryptoRng;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::codec::{self, Codec, Reader, tag, write_header};
use crate::crypto::{self, AEAD_TAG_LEN, label};
use crate::error::{Error, Result};

/// Largest saved state (plain or sealed) that will be parsed: 16 MiB. Every
/// state this library writes is smaller; see SPEC.md for the exact bounds.
pub const MAX_STATE_LEN: usize = 1 << 24;

/// Longest context a sealed state may be bound to (SPEC §10.5).
pub const MAX_SEAL_CONTEXT_LEN: usize = 1024;

/// Length of the random salt in a sealed state.
const SEALED_SALT_LEN: usize = 32;

/// Length of a sealed state's associated data: version, type 0x30, the inner
/// type tag and the salt.
const SEALED_AAD_LEN: usize = 3 + SEALED_SALT_LEN;

/// A 32-byte key for sealing saved state, supplied by the caller (for
/// example from the platform keystore). Zeroized on drop; never printed.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct StorageKey([u8; 32]);

impl StorageKey {
    /// Wraps 32 key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl fmt::Debug for StorageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StorageKey(..)")
    }
}

mod private {
    /// Keeps [`SavedState`](super::SavedState) implemented by sotto's types
    /// only: its encodings are specified, not open to extension.
    pub trait Sealed {}
}

pub(crate) use private::Sealed;

/// A state the caller stores between calls: [`Session`](crate::Session),
/// [`Device`](crate::Device), [`GroupSender`](crate::group::GroupSender)
/// and [`GroupReceiver`](crate::group::GroupReceiver).
///
/// Each has a plain encoding, which contains secret keys, and a sealed one,
/// encrypted under a [`StorageKey`] (SPEC §10). Every type also has inherent
/// methods of the same names, so the trait need only be imported by code
/// that is generic over the state type. Only sotto implements it.
pub trait SavedState: Sized + Sealed {
    /// The type tag of the plain encoding (its second byte), which is also
    /// the inner type of the sealed encoding (SPEC §4).
    const TYPE_TAG: u8;

    /// The plain encoding, in a buffer zeroized on drop. See SPEC.md for the
    /// layout of each type.
    fn to_bytes(&self) -> Zeroizing<Vec<u8>>;

    /// Restores [`SavedState::to_bytes`]'s output strictly.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] for input longer than [`MAX_STATE_LEN`], then the
    /// first failing check of SPEC §4 in field order:
    /// [`Error::Truncated`], [`Error::UnsupportedVersion`],
    /// [`Error::WrongType`], [`Error::InvalidEncoding`] (a flag, count,
    /// order or value the layout forbids), [`Error::InvalidPublicKey`],
    /// [`Error::TrailingBytes`].
    fn from_bytes(bytes: &[u8]) -> Result<Self>;

    /// The state encrypted at rest under `key`, bound to `context` (the
    /// record's key in the caller's store; SPEC §10.5). Draws 32 bytes of
    /// salt.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] for a context longer than
    /// [`MAX_SEAL_CONTEXT_LEN`], checked before anything is drawn; then
    /// [`Error::RandomnessUnavailable`] if the RNG fails.
    fn seal<R: TryCryptoRng + ?Sized>(
        &self,
        key: &StorageKey,
        context: &[u8],
        rng: &mut R,
    ) -> Result<Vec<u8>> {
        seal(key, context, rng, Self::TYPE_TAG, &self.to_bytes())
    }

    /// Opens and restores [`SavedState::seal`]'s output.
    ///
    /// # Errors
    ///
    /// In this order (SPEC §10.5): [`Error::TooLarge`] for a context longer
    /// than [`MAX_SEAL_CONTEXT_LEN`], then for input longer than
    /// [`MAX_STATE_LEN`]; [`Error::Truncated`], [`Error::UnsupportedVersion`]
    /// or [`Error::WrongType`] for the envelope's header, whose inner type
    /// must be [`SavedState::TYPE_TAG`]; [`Error::Truncated`] without the
    /// salt and a full tag; [`Error::AuthenticationFailed`] for the wrong
    /// key, the wrong context or altered bytes; then the errors of
    /// [`SavedState::from_bytes`].
    fn unseal(sealed: &[u8], key: &StorageKey, context: &[u8]) -> Result<Self> {
        Self::from_bytes(&unseal(key, context, Self::TYPE_TAG, sealed)?)
    }
}

/// A plain state encoding: version, `tag`, then `state`'s fields, in a
/// buffer zeroized on drop.
pub(crate) fn to_plain<T: Codec>(tag: u8, state: &T) -> Zeroizing<Vec<u8>> {
    codec::to_secret_vec(tag, state)
}

/// Decodes a plain state: `TooLarge` first (SPEC §10.1), then the fields.
pub(crate) fn from_plain<T: Codec>(tag: u8, bytes: &[u8]) -> Result<T> {
    if bytes.len() > MAX_STATE_LEN {
        return Err(Error::TooLarge);
    }
    codec::from_slice(tag, bytes)
}

/// The associated data of a sealed state: its first 35 bytes, then the
/// context with a u16 length (SPEC §10.5). The context is bounded by
/// [`MAX_SEAL_CONTEXT_LEN`] before this is called.
fn sealed_aad(header: &[u8], context: &[u8]) -> Vec<u8> {
    let len = u16::try_from(context.len()).unwrap_or(u16::MAX);
    let mut aad = Vec::with_capacity(header.len() + 2 + context.len());
    aad.extend_from_slice(header);
    aad.extend_from_slice(&len.to_be_bytes());
    aad.extend_from_slice(context);
    aad
}

/// Seals a plain state encoding whose type tag is `inner_tag`: version,
/// type 0x30, the inner type tag, 32 random salt bytes, then the
/// AES-256-GCM ciphertext and tag. Key and nonce are HKDF-SHA256(salt,
/// storage key, the sealed-state label, 44); the associated data is the 35
/// bytes before the ciphertext, then the context and its length.
fn seal<R: TryCryptoRng + ?Sized>(
    key: &StorageKey,
    context: &[u8],
    rng: &mut R,
    inner_tag: u8,
    plain: &[u8],
) -> Result<Vec<u8>> {
    debug_assert_eq!(plain.get(1), Some(&inner_tag));
    if context.len() > MAX_SEAL_CONTEXT_LEN {
        return Err(Error::TooLarge);
    }
    let mut salt = [0u8; SEALED_SALT_LEN];
    crypto::fill(rng, &mut salt)?;
    // Exact capacity: the plain state is encrypted in place in this buffer.
    let mut out = Vec::with_capacity(SEALED_AAD_LEN + plain.len() + AEAD_TAG_LEN);
    write_header(&mut out, tag::SEALED_STATE);
    out.push(inner_tag);
    out.extend_from_slice(&salt);
    out.extend_from_slice(plain);
    let (aead_key, nonce) = crypto::aead_key_nonce(&salt, &key.0, label::SEALED_STATE);
    let (header, body) = out.split_at_mut(SEALED_AAD_LEN);
    let aad = sealed_aad(header, context);
    let tag = crypto::aead_seal(&aead_key, &nonce, &aad, body)?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Opens [`seal`]'s output, checking that it holds a state of type `expected`.
fn unseal(
    key: &StorageKey,
    context: &[u8],
    expected: u8,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    if context.len() > MAX_SEAL_CONTEXT_LEN || sealed.len() > MAX_STATE_LEN {
        return Err(Error::TooLarge);
    }
    let mut r = Reader::header(sealed, tag::SEALED_STATE)?;
    let inner_tag = r.u8()?;
    if inner_tag != expected {
        return Err(Error::WrongType {
            expected,
            found: inner_tag,
        });
    }
    let salt: [u8; SEALED_SALT_LEN] = r.array()?;
    let (ciphertext, tag) = r
        .rest()
        .split_last_chunk::<AEAD_TAG_LEN>()
        .ok_or(Error::Truncated)?;
    let aad = sealed_aad(
        sealed.get(..SEALED_AAD_LEN).ok_or(Error::Truncated)?,
        context,
    );
    let (aead_key, nonce) = crypto::aead_key_nonce(&salt, &key.0, label::SEALED_STATE);
    let mut plain = Zeroizing::new(ciphertext.to_vec());
    crypto::aead_open(&aead_key, &nonce, &aad, &mut plain, tag)?;
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::{CryptoRng, SeedableRng};

    use super::*;
    use crate::group::{GroupId, GroupReceiver, GroupReceivers, GroupSender};
    use crate::{Device, PreKeyBundle, Session};

    /// What every saved state promises, checked through the trait alone.
    fn check<T: SavedState, R: CryptoRng>(state: &T, rng: &mut R) {
        let plain = state.to_bytes();
        assert_eq!(plain.get(..2), Some(&[codec::VERSION, T::TYPE_TAG][..]));
        let restored = T::from_bytes(&plain).unwrap();
        assert_eq!(*restored.to_bytes(), *plain);

        let key = StorageKey::from_bytes([3; 32]);
        let context = b"record/1";
        let sealed = state.seal(&key, context, rng).unwrap();
        assert_eq!(sealed.len(), SEALED_AAD_LEN + plain.len() + AEAD_TAG_LEN);
        assert_eq!(
            sealed.get(..3),
            Some(&[codec::VERSION, tag::SEALED_STATE, T::TYPE_TAG][..])
        );
        assert_eq!(
            *T::unseal(&sealed, &key, context).unwrap().to_bytes(),
            *plain
        );
        let wrong = StorageKey::from_bytes([4; 32]);
        assert_eq!(
            T::unseal(&sealed, &wrong, context).err(),
            Some(Error::AuthenticationFailed)
        );
        // Another record's slot: the blob does not open there.
        assert_eq!(
            T::unseal(&sealed, &key, b"record/2").err(),
            Some(Error::AuthenticationFailed)
        );
        let long = [b'x'; MAX_SEAL_CONTEXT_LEN + 1];
        assert_eq!(state.seal(&key, &long, rng).err(), Some(Error::TooLarge));
        assert_eq!(T::unseal(&sealed, &key, &long).err(), Some(Error::TooLarge));
    }

    #[test]
    fn every_state_type_saves_and_seals_through_the_trait() {
        let mut rng = ChaCha20Rng::from_seed([5; 32]);
        let alice = Device::generate(&mut rng);
        let bob = Device::generate(&mut rng);
        let bundle = PreKeyBundle::new(*bob.identity_key(), bob.signed_prekey(), None);
        let session = Session::initiate(&alice, &mut rng, &bundle.verify().unwrap()).unwrap();
        let group = GroupId::from_bytes([6; 32]);
        let sender = GroupSender::new(&mut rng, group, alice.identity_key()).unwrap();
        let distribution = sender.distribution().to_bytes();
        let receiver = GroupReceiver::import_unauthenticated(&group, &distribution).unwrap();
        let mut store = GroupReceivers::new(group);
        store.import_unauthenticated(&distribution).unwrap();

        check(&alice, &mut rng);
        check(&session, &mut rng);
        check(&sender, &mut rng);
        check(&receiver, &mut rng);
        check(&store, &mut rng);
        let tags = [
            Device::TYPE_TAG,
            Session::TYPE_TAG,
            GroupSender::TYPE_TAG,
            GroupReceiver::TYPE_TAG,
            GroupReceivers::TYPE_TAG,
        ];
        assert_eq!(tags, [0x21, 0x20, 0x22, 0x23, 0x24]);

        // A sealed session opened as a device names both inner types.
        let sealed = session
            .seal(&StorageKey::from_bytes([3; 32]), b"s", &mut rng)
            .unwrap();
        assert_eq!(
            Device::unseal(&sealed, &StorageKey::from_bytes([3; 32]), b"s").err(),
            Some(Error::WrongType {
                expected: 0x21,
                found: 0x20
            })
        );
    }
}
