//! The pairwise session's public API: X3DH to start one (SPEC.md §7), then
//! the Double Ratchet (§8, in the sibling modules) to encrypt and decrypt,
//! and its saved state (§10.2, encoded by `state.rs`).

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use rand_core::{CryptoRng, TryCryptoRng};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::plaintext::Plaintext;
use super::root::RootKey;
use super::state::{Role, SessionState};
use crate::codec::tag;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::keys::{IdentityKey, VerifiedPreKeyBundle};
use crate::sealed::{self, SavedState, StorageKey};
use crate::wire::{Message, PreKeyMessage};
use crate::x3dh;

/// A pairwise end-to-end encrypted session.
///
/// Every method that takes `&mut self` either succeeds and moves the state
/// forward, or fails and leaves it exactly as it was. After a success the
/// caller persists the state ([`Session::to_bytes`] or [`Session::seal`])
/// before it sends the message or shows the plaintext.
///
/// The state lives in one heap allocation that never moves, so moving a
/// `Session` leaves no copies of its secrets behind.
pub struct Session(Box<SessionState>);

impl Session {
    /// Starts a session from a verified bundle (draws 32 bytes for the X3DH
    /// ephemeral key). The first message carries the X3DH header; so does
    /// every message until a reply decrypts.
    ///
    /// # Errors
    ///
    /// [`Error::NonContributoryKey`] if an exchange with the bundle's keys
    /// gives the all-zero output (a low-order key); `device` is never
    /// changed.
    pub fn initiate<R: CryptoRng + ?Sized>(
        device: &Device,
        rng: &mut R,
        bundle: &VerifiedPreKeyBundle,
    ) -> Result<Self> {
        let bundle = bundle.bundle();
        let base = StaticSecret::random_from_rng(rng);
        let signed_prekey = bundle.signed_prekey();
        let one_time = bundle.one_time_prekey();
        let secret = x3dh::initiator_secret(
            device.identity_pair(),
            &base,
            bundle.identity(),
            signed_prekey.key(),
            one_time.map(|opk| opk.key()),
        )?;
        Ok(Self(Box::new(SessionState::initiator(
            *device.identity_key(),
            bundle,
            PublicKey::from(&base).to_bytes(),
            RootKey::from_bytes(*secret),
        ))))
    }

    /// Accepts a prekey message: runs the responder's side of X3DH, decrypts
    /// the message, and only then deletes the one-time prekey it used from
    /// `device`. On error neither `device` nor anything else changes.
    ///
    /// The caller persists both the new session and `device`.
    ///
    /// # Errors
    ///
    /// In this order (SPEC §7.2): [`Error::DuplicatePreKeyMessage`] if
    /// `device` accepted this base key before;
    /// [`Error::UnknownSignedPreKey`] or [`Error::UnknownOneTimePreKey`] for
    /// a prekey `device` does not hold; [`Error::NonContributoryKey`] for a
    /// low-order key; [`Error::TooFarAhead`] if the message number is over
    /// [`MAX_SKIP`](crate::MAX_SKIP); [`Error::AuthenticationFailed`] if the
    /// message does not decrypt.
    pub fn accept(device: &mut Device, message: &PreKeyMessage) -> Result<(Self, Vec<u8>)> {
        let prekey = message.prekey_header();
        let base_key = prekey.base_key.to_bytes();
        if device.has_seen_base_key(&base_key) {
            return Err(Error::DuplicatePreKeyMessage);
        }
        let signed_prekey = device.signed_prekey_secret(prekey.signed_prekey_id)?;
        let one_time = prekey
            .one_time_prekey_id
            .map(|id| device.one_time_prekey_secret(id))
            .transpose()?;
        let secret = x3dh::responder_secret(
            device.identity_pair(),
            signed_prekey,
            one_time,
            &prekey.identity,
            &prekey.base_key,
        )?;
        let (state, plaintext) = SessionState::accept(
            *device.identity_key(),
            message,
            &RootKey::from_bytes(*secret),
            signed_prekey,
        )?;
        device.consume(prekey.one_time_prekey_id, base_key);
        Ok((Self(Box::new(state)), plaintext))
    }

    /// Encrypts `plaintext`. Draws 32 bytes for a new ratchet key when a
    /// reply has arrived since the last encrypt, then 16 bytes of salt.
    ///
    /// # Errors
    ///
    /// In this order (SPEC §8.5), each leaving the session unchanged:
    /// [`Error::PlaintextTooLarge`] over
    /// [`MAX_PLAINTEXT_LEN`](crate::MAX_PLAINTEXT_LEN);
    /// [`Error::ChainExhausted`] when the sending chain has used every
    /// message number; [`Error::NonContributoryKey`] if the new ratchet key's
    /// exchange with the peer's gives the all-zero output.
    pub fn encrypt<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        plaintext: &[u8],
    ) -> Result<Message> {
        self.0.encrypt(rng, plaintext)
    }

    /// Decrypts a message of this session. All or nothing: on any error the
    /// session is exactly as it was.
    ///
    /// # Errors
    ///
    /// In the order of SPEC §8.6. For a prekey message first
    /// [`Error::IdentityMismatch`] (another identity) and
    /// [`Error::SessionMismatch`] (not our responder session). Then
    /// [`Error::DuplicateMessage`] (already decrypted, or its key deleted),
    /// [`Error::UnexpectedRatchetKey`] (a new chain we cannot have caused),
    /// [`Error::TooFarAhead`] (more than [`MAX_SKIP`](crate::MAX_SKIP) keys
    /// to skip), [`Error::ChainExhausted`] (the last message number),
    /// [`Error::NonContributoryKey`] (a low-order ratchet key), and
    /// [`Error::AuthenticationFailed`] (the tag does not verify).
    pub fn decrypt(&mut self, message: &Message) -> Result<Vec<u8>> {
        self.0.decrypt(message)
    }

    /// Decrypts `message`, then runs `f` on the plaintext; the session moves
    /// forward only if both succeed (SPEC §15.7: the one-call install).
    /// Stand-in on the group branch: it decrypts a copy of the state.
    pub(crate) fn decrypt_then<T>(
        &mut self,
        message: &Message,
        f: impl FnOnce(&Plaintext) -> Result<T>,
    ) -> Result<(Plaintext, T)> {
        let mut copy = <Self as SavedState>::from_bytes(&<Self as SavedState>::to_bytes(self))?;
        let bytes = copy.0.decrypt(message)?;
        let plaintext = Plaintext::new(bytes, *copy.0.remote_identity());
        let value = f(&plaintext)?;
        *self = copy;
        Ok((plaintext, value))
    }

    /// Which side of X3DH this session was.
    pub fn role(&self) -> Role {
        self.0.role()
    }

    /// Our identity.
    pub fn local_identity(&self) -> &IdentityKey {
        self.0.local_identity()
    }

    /// The peer's identity. Compare its fingerprint out of band to rule out a
    /// man in the middle.
    pub fn remote_identity(&self) -> &IdentityKey {
        self.0.remote_identity()
    }

    /// The initiator's X3DH ephemeral key, which names this session: prekey
    /// messages with this base key belong here.
    pub fn base_key_bytes(&self) -> [u8; 32] {
        self.0.base_key()
    }

    /// Whether our messages still carry the X3DH header (initiator before the
    /// first reply).
    pub fn is_awaiting_reply(&self) -> bool {
        self.0.is_awaiting_reply()
    }

    /// How many skipped message keys are stored.
    pub fn skipped_key_count(&self) -> usize {
        self.0.receiving().total_skipped()
    }

    /// How many receiving chains are remembered.
    pub fn receiving_chain_count(&self) -> usize {
        self.0.receiving().len()
    }

    /// The session's plain encoding (it contains secret keys). See SPEC.md
    /// §10.2 for the layout.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        <Self as SavedState>::to_bytes(self)
    }

    /// Restores [`Session::to_bytes`] strictly (the same as
    /// [`SavedState::from_bytes`]).
    ///
    /// # Errors
    ///
    /// As [`SavedState::from_bytes`]; [`Error::InvalidEncoding`] covers the
    /// rules of SPEC §10.2 (a role other than 0 or 1, a pending prekey on a
    /// responder, a chain key on other than the last chain, counts over
    /// their bounds, skipped indices out of order or not below the chain's
    /// next index, and last the current chain's key differing from DHr).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        <Self as SavedState>::from_bytes(bytes)
    }

    /// The session encrypted at rest under `key`, bound to `context`
    /// (draws 32 bytes of salt).
    ///
    /// # Errors
    ///
    /// As [`SavedState::seal`].
    pub fn seal<R: TryCryptoRng + ?Sized>(
        &self,
        key: &StorageKey,
        context: &[u8],
        rng: &mut R,
    ) -> Result<Vec<u8>> {
        <Self as SavedState>::seal(self, key, context, rng)
    }

    /// Opens and restores [`Session::seal`]'s output.
    ///
    /// # Errors
    ///
    /// As [`SavedState::unseal`], then as [`Session::from_bytes`].
    pub fn unseal(sealed: &[u8], key: &StorageKey, context: &[u8]) -> Result<Self> {
        <Self as SavedState>::unseal(sealed, key, context)
    }
}

impl sealed::Sealed for Session {}

impl SavedState for Session {
    const TYPE_TAG: u8 = tag::SESSION_STATE;

    fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        sealed::to_plain(Self::TYPE_TAG, &*self.0)
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let state: Box<SessionState> = sealed::from_plain(Self::TYPE_TAG, bytes)?;
        state.check()?;
        Ok(Self(state))
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("role", &self.0.role())
            .field("remote_identity", self.0.remote_identity())
            .field("awaiting_reply", &self.0.is_awaiting_reply())
            .field("skipped_keys", &self.0.receiving().total_skipped())
            .finish_non_exhaustive()
    }
}
