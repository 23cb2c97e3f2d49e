//! Saved state: the [`SavedState`] trait every stateful type implements,
//! generations (SPEC.md §10.1), the `MAX_STATE_LEN` bound on plain and
//! sealed states, and the sealed envelope that encrypts a state at rest,
//! bound to the caller's context (§10.5).
//!
//! The plain encodings themselves live beside their types: the session in
//! `ratchet/state.rs` (§10.2), the device in `device.rs` (§10.3), the
//! group states in `group/` (§15.11).

use alloc::vec::Vec;
use core::fmt;

use rand_core::TryCryptoRng;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::codec::{self, Codec, Reader, tag, write_header};
use crate::crypto::{self, AEAD_TAG_LEN, label};
use crate::error::{Error, Result};

/// Largest saved state (plain or sealed) that will be parsed: 16 MiB. Every
/// state this library writes is far smaller.
pub const MAX_STATE_LEN: usize = 16 * 1024 * 1024;

/// Longest context a state can be sealed under (SPEC §10.5).
pub const MAX_SEAL_CONTEXT_LEN: usize = 1024;

/// Length of the random salt in a sealed state.
const SEALED_SALT_LEN: usize = 32;

/// Length of a sealed state's header: version, type 0x30, the inner type
/// tag and the salt. The associated data is the header, then the context.
const SEALED_HEADER_LEN: usize = 3 + SEALED_SALT_LEN;

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
/// [`Device`](crate::Device) and the group states.
///
/// Each has a plain encoding, which contains secret keys, and a sealed one,
/// encrypted under a [`StorageKey`] and bound to the record it is stored
/// under (SPEC §10). Every type also has inherent methods of the same
/// names, so the trait need only be imported by code that is generic over
/// the state type. Only sotto implements it.
pub trait SavedState: Sized + Sealed {
    /// The type tag of the plain encoding (its second byte), which is also
    /// the inner type of the sealed encoding (SPEC §4).
    const TYPE_TAG: u8;

    /// The state's generation (SPEC §10.1): 0 for a new object, plus 1 for
    /// every call that changed it. An application keeps the generation of
    /// the last blob it wrote for each record where an attacker cannot roll
    /// it back, and refuses a blob with a lower one.
    fn generation(&self) -> u64;

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

    /// The state encrypted at rest under `key`, bound to `context`: the
    /// record's key in the application's store (for example
    /// `b"session/alice/3"`), at most [`MAX_SEAL_CONTEXT_LEN`] bytes. The
    /// blob opens only with the same context. Draws 32 bytes of salt.
    ///
    /// # Errors
    ///
    /// In this order, before anything is drawn: [`Error::TooLarge`] for a
    /// context over [`MAX_SEAL_CONTEXT_LEN`], then for a state whose sealed
    /// form would be longer than [`MAX_STATE_LEN`] (which
    /// [`SavedState::unseal`] would refuse; no state sotto writes comes
    /// near); then [`Error::RandomnessUnavailable`] if `rng` fails.
    fn seal<R: TryCryptoRng + ?Sized>(
        &self,
        key: &StorageKey,
        context: &[u8],
        rng: &mut R,
    ) -> Result<Vec<u8>> {
        // The context first, before the state is even encoded (SPEC §10.5).
        check_context(context)?;
        seal(key, context, rng, Self::TYPE_TAG, &self.to_bytes())
    }

    /// Opens and restores [`SavedState::seal`]'s output, sealed under the
    /// same `context`.
    ///
    /// # Errors
    ///
    /// In this order (SPEC §10.5): [`Error::TooLarge`] for a context over
    /// [`MAX_SEAL_CONTEXT_LEN`], then for input longer than
    /// [`MAX_STATE_LEN`]; [`Error::Truncated`],
    /// [`Error::UnsupportedVersion`] or [`Error::WrongType`] for the
    /// envelope's header, whose inner type must be
    /// [`SavedState::TYPE_TAG`]; [`Error::Truncated`] without the salt and
    /// a full tag; [`Error::AuthenticationFailed`] for the wrong key, the
    /// wrong context or altered bytes; then the errors of
    /// [`SavedState::from_bytes`].
    fn unseal(sealed: &[u8], key: &StorageKey, context: &[u8]) -> Result<Self> {
        Self::from_bytes(&unseal(key, context, Self::TYPE_TAG, sealed)?)
    }
}

/// Adds 1 to a saved state's generation after a change (SPEC §10.1),
/// saturating at `u64::MAX`, which no honest state reaches.
pub(crate) fn advance(generation: &mut u64) {
    *generation = generation.saturating_add(1);
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

/// Seals a plain state encoding whose type tag is `inner_tag` (SPEC §10.5):
/// version, type 0x30, the inner type tag, 32 random salt bytes, then the
/// AES-256-GCM ciphertext and tag. Key and nonce are HKDF-SHA256(salt,
/// storage key, "sotto v2 sealed state", 44); the associated data is the
/// 35 bytes before the ciphertext, then `u16(len(context)) || context`,
/// whose length the caller checked.
fn seal<R: TryCryptoRng + ?Sized>(
    key: &StorageKey,
    context: &[u8],
    rng: &mut R,
    inner_tag: u8,
    plain: &[u8],
) -> Result<Vec<u8>> {
    debug_assert_eq!(plain.get(1), Some(&inner_tag));
    debug_assert!(
        context.len() <= MAX_SEAL_CONTEXT_LEN,
        "checked by the caller"
    );
    // Never write what unseal refuses (SPEC §10.5); checked before the draw.
    let sealed_len = SEALED_HEADER_LEN + plain.len() + AEAD_TAG_LEN;
    if sealed_len > MAX_STATE_LEN {
        return Err(Error::TooLarge);
    }
    let mut salt = [0u8; SEALED_SALT_LEN];
    crypto::draw(rng, &mut salt)?;
    // Exact capacity: the plain state is encrypted in place in this buffer.
    let mut out = Vec::with_capacity(sealed_len);
    write_header(&mut out, tag::SEALED_STATE);
    out.push(inner_tag);
    out.extend_from_slice(&salt);
    out.extend_from_slice(plain);
    let (aead_key, nonce) = crypto::aead_key_nonce(&salt, &key.0, label::SEALED_STATE);
    let (header, body) = out.split_at_mut(SEALED_HEADER_LEN);
    let aad = associated_data(header, context);
    let tag = crypto::aead_seal(&aead_key, &nonce, &aad, body)?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Opens [`seal`]'s output, checking that it holds a state of type
/// `expected`, in the order of SPEC §10.5.
fn unseal(
    key: &StorageKey,
    context: &[u8],
    expected: u8,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    check_context(context)?;
    if sealed.len() > MAX_STATE_LEN {
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
    let header = sealed.get(..SEALED_HEADER_LEN).ok_or(Error::Truncated)?;
    let aad = associated_data(header, context);
    let (aead_key, nonce) = crypto::aead_key_nonce(&salt, &key.0, label::SEALED_STATE);
    let mut plain = Zeroizing::new(ciphertext.to_vec());
    crypto::aead_open(&aead_key, &nonce, &aad, &mut plain, tag)?;
    Ok(plain)
}

fn check_context(context: &[u8]) -> Result<()> {
    if context.len() > MAX_SEAL_CONTEXT_LEN {
        return Err(Error::TooLarge);
    }
    Ok(())
}

/// The sealed header, then the context with its `u16` length (SPEC §10.5).
fn associated_data(header: &[u8], context: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + 2 + context.len());
    aad.extend_from_slice(header);
    // At most MAX_SEAL_CONTEXT_LEN, checked by the callers.
    aad.extend_from_slice(
        &u16::try_from(context.len())
            .unwrap_or(u16::MAX)
            .to_be_bytes(),
    );
    aad.extend_from_slice(context);
    aad
}

#[cfg(test)]
mod tests {
    //! SPEC §10.1 (generations, `MAX_STATE_LEN`) and §10.5 (sealing with a
    //! context), checked on the blob's bytes with the published label.

    use alloc::vec;

    use hkdf::Hkdf;
    use sha2::Sha256;

    use super::*;
    use crate::testing::{TestRng, sessions};
    use crate::{Device, Session};

    const CONTEXT: &[u8] = b"session/alice/3";
    /// Every saved state starts with its version, type and u64 generation
    /// (SPEC §10.1).
    const GENERATION: core::ops::Range<usize> = 2..10;

    /// Opens a sealed blob the way SPEC §10.5 says, with the primitives
    /// and the published label only.
    fn open_by_hand(sealed: &[u8], key: &[u8; 32], context: &[u8]) -> Option<Vec<u8>> {
        let l = testkit::layout::sealed(sealed);
        let (header, rest) = sealed.split_at(l.end_of("salt"));
        let (ciphertext, tag) = rest.split_at(rest.len() - 16);
        let mut okm = [0u8; 44];
        Hkdf::<Sha256>::new(Some(l.slice(sealed, "salt")), key)
            .expand(b"sotto v2 sealed state", &mut okm)
            .unwrap();
        let mut aad = header.to_vec();
        aad.extend_from_slice(&u16::try_from(context.len()).unwrap().to_be_bytes());
        aad.extend_from_slice(context);
        let mut plain = ciphertext.to_vec();
        let (k, n) = okm.split_at(32);
        crypto::aead_open(
            k.try_into().unwrap(),
            n.try_into().unwrap(),
            &aad,
            &mut plain,
            tag.try_into().unwrap(),
        )
        .ok()?;
        Some(plain)
    }

    /// What every saved state promises, checked through the trait alone.
    fn check<T: SavedState>(state: &T, rng: &mut TestRng) {
        let plain = state.to_bytes();
        assert_eq!(
            plain.get(..GENERATION.start),
            Some(&[codec::VERSION, T::TYPE_TAG][..])
        );
        let generation: [u8; 8] = plain[GENERATION].try_into().unwrap();
        assert_eq!(u64::from_be_bytes(generation), state.generation());
        let restored = T::from_bytes(&plain).unwrap();
        assert_eq!(*restored.to_bytes(), *plain);

        let key = StorageKey::from_bytes([3; 32]);
        let sealed = state.seal(&key, CONTEXT, rng).unwrap();
        assert_eq!(sealed.len(), 35 + plain.len() + AEAD_TAG_LEN);
        assert_eq!(sealed.capacity(), sealed.len());
        let l = testkit::layout::sealed(&sealed);
        assert_eq!(sealed[..l.start("salt")], [2, 0x30, T::TYPE_TAG]);
        assert_eq!(
            open_by_hand(&sealed, &[3; 32], CONTEXT).as_deref(),
            Some(&plain[..])
        );
        assert_eq!(
            *T::unseal(&sealed, &key, CONTEXT).unwrap().to_bytes(),
            *plain
        );
        // Another record's key, the empty context, another storage key.
        for (key, context) in [
            (&key, &b"session/alice/4"[..]),
            (&key, &b""[..]),
            (&StorageKey::from_bytes([4; 32]), CONTEXT),
        ] {
            assert_eq!(
                T::unseal(&sealed, key, context).err(),
                Some(Error::AuthenticationFailed)
            );
        }
        let sealed = state.seal(&key, b"", rng).unwrap();
        assert_eq!(
            open_by_hand(&sealed, &[3; 32], b"").as_deref(),
            Some(&plain[..])
        );
        assert!(T::unseal(&sealed, &key, b"").is_ok());

        // The longest context, and one byte more: refused first, drawing
        // nothing.
        let longest = vec![7u8; MAX_SEAL_CONTEXT_LEN];
        let sealed = state.seal(&key, &longest, rng).unwrap();
        assert!(T::unseal(&sealed, &key, &longest).is_ok());
        let too_long = vec![7u8; MAX_SEAL_CONTEXT_LEN + 1];
        let draws = rng.draws.len();
        assert_eq!(
            state.seal(&key, &too_long, rng).err(),
            Some(Error::TooLarge)
        );
        assert_eq!(rng.draws.len(), draws);
        assert_eq!(T::unseal(&[], &key, &too_long).err(), Some(Error::TooLarge));
    }

    #[test]
    fn every_state_type_saves_and_seals_through_the_trait() {
        let mut rng = TestRng::new(5);
        let (mut alice, bob) = sessions(6);
        alice.encrypt(&mut rng, b"two").unwrap();
        assert_eq!(alice.generation(), 2);
        let device = Device::generate(&mut rng, 0).unwrap();
        check(&device, &mut rng);
        check(&alice, &mut rng);
        check(&bob, &mut rng);
        // The group states are checked in group/ (SPEC §15.11).
        assert_eq!([Device::TYPE_TAG, Session::TYPE_TAG], [0x21, 0x20]);
    }

    /// A rolled-back blob of the same record opens: its generation tells
    /// (SPEC §10.1).
    #[test]
    fn a_rolled_back_blob_shows_a_lower_generation() {
        let mut rng = TestRng::new(7);
        let key = StorageKey::from_bytes([9; 32]);
        let (mut alice, _) = sessions(8);
        let old = alice.seal(&key, CONTEXT, &mut rng).unwrap();
        alice.encrypt(&mut rng, b"later").unwrap();
        let new = alice.seal(&key, CONTEXT, &mut rng).unwrap();
        let old = Session::unseal(&old, &key, CONTEXT).unwrap();
        let new = Session::unseal(&new, &key, CONTEXT).unwrap();
        assert_eq!(old.generation() + 1, new.generation());
    }

    /// Sealing never writes a blob that opening refuses (SPEC §10.5): the
    /// largest plain state that seals gives a blob of exactly
    /// `MAX_STATE_LEN` bytes, which opens; one byte more is `TooLarge`
    /// before anything is drawn.
    #[test]
    fn sealing_refuses_what_opening_would() {
        let key = StorageKey::from_bytes([2; 32]);
        let mut rng = TestRng::new(9);
        let mut plain = vec![0u8; MAX_STATE_LEN - 51];
        plain[..GENERATION.start].copy_from_slice(&[codec::VERSION, tag::SESSION_STATE]);
        let sealed = seal(&key, CONTEXT, &mut rng, tag::SESSION_STATE, &plain).unwrap();
        assert_eq!(sealed.len(), MAX_STATE_LEN);
        assert_eq!(
            unseal(&key, CONTEXT, tag::SESSION_STATE, &sealed)
                .unwrap()
                .as_slice(),
            &plain[..]
        );
        plain.push(0);
        let draws = rng.draws.len();
        assert_eq!(
            seal(&key, CONTEXT, &mut rng, tag::SESSION_STATE, &plain).err(),
            Some(Error::TooLarge)
        );
        assert_eq!(rng.draws.len(), draws);
    }

    /// Opening checks, in SPEC §10.5's order.
    #[test]
    fn opening_checks_in_order() {
        let key = StorageKey::from_bytes([1; 32]);
        let open = |bytes: &[u8]| Session::unseal(bytes, &key, CONTEXT).err();
        assert_eq!(open(&vec![2; MAX_STATE_LEN + 1]), Some(Error::TooLarge));
        assert_eq!(open(&[]), Some(Error::Truncated));
        assert_eq!(open(&[1]), Some(Error::UnsupportedVersion { found: 1 }));
        assert_eq!(open(&[2]), Some(Error::Truncated));
        assert_eq!(
            open(&[2, 0x20]),
            Some(Error::WrongType {
                expected: 0x30,
                found: 0x20
            })
        );
        assert_eq!(open(&[2, 0x30]), Some(Error::Truncated));
        // A sealed device opened as a session names both inner types.
        assert_eq!(
            open(&[2, 0x30, 0x21]),
            Some(Error::WrongType {
                expected: 0x20,
                found: 0x21
            })
        );
        let mut bytes = vec![2, 0x30, 0x20];
        bytes.extend_from_slice(&[0; 31]);
        assert_eq!(open(&bytes), Some(Error::Truncated));
        bytes.extend_from_slice(&[0; 16]);
        assert_eq!(open(&bytes), Some(Error::Truncated), "salt and 15 bytes");
        bytes.push(0);
        assert_eq!(open(&bytes), Some(Error::AuthenticationFailed));
        assert_eq!(
            Session::from_bytes(&vec![2; MAX_STATE_LEN + 1]).err(),
            Some(Error::TooLarge)
        );
    }
}
