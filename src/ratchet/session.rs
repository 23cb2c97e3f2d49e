//! The pairwise session's public API: PQXDH (or, by explicit choice, X3DH)
//! to start one (SPEC.md §7), then the Double Ratchet (§8, in the sibling
//! modules) to encrypt and decrypt, and its saved state (§10.2, encoded by
//! `state.rs`).

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use rand_core::TryCryptoRng;
use x25519_dalek::PublicKey;
use zeroize::Zeroizing;

use super::plaintext::Plaintext;
use super::state::{Agreed, KeyAgreement, KeyAgreementPolicy, Role, SessionState};
use crate::codec::{Codec, Reader, Sink, tag};
use crate::crypto::{self, kem};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::keys::{IdentityKey, VerifiedPreKeyBundle};
use crate::sealed::{self, SavedState, StorageKey};
use crate::wire::{KemCiphertext, Message, PreKeyMessage};
use crate::x3dh::KeyMaterial;

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
    /// Starts a PQXDH session from a verified bundle (SPEC §7.2); a bundle
    /// without a KEM prekey is refused. The same as
    /// [`Session::initiate_with_policy`] with
    /// [`KeyAgreementPolicy::PostQuantumRequired`].
    ///
    /// # Errors
    ///
    /// As [`Session::initiate_with_policy`].
    pub fn initiate<R: TryCryptoRng + ?Sized>(
        device: &Device,
        rng: &mut R,
        bundle: &VerifiedPreKeyBundle,
    ) -> Result<Self> {
        Self::initiate_with_policy(device, rng, bundle, KeyAgreementPolicy::PostQuantumRequired)
    }

    /// Starts a session from a verified bundle under `policy` (SPEC §7.1,
    /// §7.2): PQXDH if the bundle has a KEM prekey, whatever the policy;
    /// classical X3DH only if it has none and `policy` allows it. Draws 32
    /// bytes for the base key, then, with a KEM prekey, 32 bytes for the
    /// encapsulation. The first message carries the prekey header (and the
    /// KEM ciphertext); so does every message until a reply decrypts.
    /// `device` is never changed.
    ///
    /// # Errors
    ///
    /// In this order: [`Error::PostQuantumRequired`] for a bundle without a
    /// KEM prekey under [`KeyAgreementPolicy::PostQuantumRequired`];
    /// [`Error::RandomnessUnavailable`] if `rng` fails;
    /// [`Error::NonContributoryKey`] if an exchange with the bundle's keys
    /// gives the all-zero output (a low-order key).
    pub fn initiate_with_policy<R: TryCryptoRng + ?Sized>(
        device: &Device,
        rng: &mut R,
        bundle: &VerifiedPreKeyBundle,
        policy: KeyAgreementPolicy,
    ) -> Result<Self> {
        let bundle = bundle.bundle();
        let kem_prekey = bundle.kem_prekey();
        if kem_prekey.is_none() && policy == KeyAgreementPolicy::PostQuantumRequired {
            return Err(Error::PostQuantumRequired);
        }
        let base = crypto::draw_x25519(rng)?;
        let encapsulation = match kem_prekey {
            Some(kem_prekey) => {
                let mut m = Zeroizing::new([0u8; kem::M_LEN]);
                crypto::draw(rng, m.as_mut())?;
                Some((kem_prekey, m))
            }
            None => None,
        };
        let material = KeyMaterial::initiator(
            device.identity_pair(),
            &base,
            bundle.identity(),
            bundle.signed_prekey().key(),
            bundle.one_time_prekey().map(|opk| opk.key()),
        )?;
        let (agreed, kem) = match encapsulation {
            Some((kem_prekey, m)) => {
                let (ciphertext, shared) = kem::encapsulate(kem_prekey.key(), &m);
                let agreed = Agreed::new(material, Some((kem_prekey.key(), &shared)));
                let kem = KemCiphertext {
                    kem_prekey_id: kem_prekey.id(),
                    ciphertext,
                };
                (agreed, Some(kem))
            }
            None => (Agreed::new(material, None), None),
        };
        Ok(Self(SessionState::initiator(
            *device.identity_key(),
            bundle,
            PublicKey::from(&base).to_bytes(),
            agreed,
            kem,
        )))
    }

    /// Accepts a PQXDH prekey message; one without a KEM ciphertext is
    /// refused. The same as [`Session::accept_with_policy`] with
    /// [`KeyAgreementPolicy::PostQuantumRequired`].
    ///
    /// # Errors
    ///
    /// As [`Session::accept_with_policy`].
    pub fn accept(device: &mut Device, message: &PreKeyMessage) -> Result<(Self, Plaintext)> {
        Self::accept_with_policy(device, message, KeyAgreementPolicy::PostQuantumRequired)
    }

    /// Accepts a prekey message under `policy` (SPEC §7.1, §7.3): runs the
    /// responder's side of the key agreement, decrypts the message, and only
    /// then commits to `device`: deletes the one-time prekey and one-time
    /// KEM prekey it used or, if it used neither, records its base key under
    /// its signed prekey, so that it is never accepted twice (SPEC §6). On
    /// error neither `device` nor anything else changes. The plaintext's
    /// [`sender`](Plaintext::sender) is the initiator's identity.
    ///
    /// The caller persists `device`, then the new session, and only then
    /// shows the plaintext.
    ///
    /// # Errors
    ///
    /// In this order (SPEC §7.3): [`Error::PostQuantumRequired`] for a
    /// message without a KEM ciphertext under
    /// [`KeyAgreementPolicy::PostQuantumRequired`];
    /// [`Error::UnknownSignedPreKey`];
    /// [`Error::DuplicatePreKeyMessage`] if its signed prekey recorded this
    /// base key; [`Error::UnknownOneTimePreKey`];
    /// [`Error::UnknownKemPreKey`]; [`Error::SignedPreKeyExhausted`] for a
    /// replayable message once its signed prekey recorded
    /// [`MAX_BASE_KEYS_PER_SIGNED_PREKEY`](crate::MAX_BASE_KEYS_PER_SIGNED_PREKEY)
    /// base keys; [`Error::NonContributoryKey`] for a low-order key;
    /// [`Error::TooFarAhead`] if the message number is over
    /// [`MAX_SKIP`](crate::MAX_SKIP); [`Error::AuthenticationFailed`] if the
    /// message does not decrypt (also for a KEM ciphertext not made for the
    /// named KEM prekey).
    pub fn accept_with_policy(
        device: &mut Device,
        message: &PreKeyMessage,
        policy: KeyAgreementPolicy,
    ) -> Result<(Self, Plaintext)> {
        Self::accept_then(device, message, policy, |_| Ok(()))
            .map(|(session, plaintext, ())| (session, plaintext))
    }

    /// Accepts as [`Session::accept_with_policy`], then runs `then` on the
    /// plaintext before `device` changes; the device commits only if `then`
    /// returns `Ok`, so a caller can make reading the first message and
    /// acting on it one all-or-nothing step (the session layer, SPEC §16.5).
    pub(crate) fn accept_then<T>(
        device: &mut Device,
        message: &PreKeyMessage,
        policy: KeyAgreementPolicy,
        then: impl FnOnce(&Plaintext) -> Result<T>,
    ) -> Result<(Self, Plaintext, T)> {
        let header = message.prekey_header();
        if header.kem.is_none() && policy == KeyAgreementPolicy::PostQuantumRequired {
            return Err(Error::PostQuantumRequired);
        }
        let prekeys = device.prekeys_for(header)?;
        let material = KeyMaterial::responder(
            device.identity_pair(),
            prekeys.signed_prekey,
            prekeys.one_time_prekey,
            &header.identity,
            &header.base_key,
        )?;
        let agreed = match prekeys.kem_prekey.zip(header.kem.as_ref()) {
            Some((seed, kem)) => {
                let (shared, key) = kem::decapsulate(seed, &kem.ciphertext);
                Agreed::new(material, Some((&key, &shared)))
            }
            None => Agreed::new(material, None),
        };
        let (state, plaintext) = SessionState::accept(
            *device.identity_key(),
            message,
            agreed,
            prekeys.signed_prekey,
        )?;
        let outcome = then(&plaintext)?;
        let replayable = prekeys.replayable;
        device.consume(header, replayable);
        Ok((Self(state), plaintext, outcome))
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
    pub fn encrypt<R: TryCryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        plaintext: &[u8],
    ) -> Result<Message> {
        self.0.encrypt(rng, &[plaintext])
    }

    /// Encrypts the plaintext `kind || body` without assembling it first
    /// (the session layer's framing, SPEC §16.10); otherwise as
    /// [`Session::encrypt`].
    pub(crate) fn encrypt_framed<R: TryCryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        kind: u8,
        body: &[u8],
    ) -> Result<Message> {
        self.0.encrypt(rng, &[&[kind], body])
    }

    /// Whether one of the receiving chains has the ratchet key `key`: a
    /// message on it can only be decrypted, or refused, by this session.
    pub(crate) fn knows_ratchet_key(&self, key: &[u8; 32]) -> bool {
        self.0.knows_ratchet_key(key)
    }

    /// The ratchet public key of the current sending chain, if there is one:
    /// a retry request that names it says the peer cannot read this
    /// session's messages (SPEC §16.5).
    pub(crate) fn sending_ratchet_key(&self) -> Option<[u8; 32]> {
        self.0.sending_ratchet_key()
    }

    /// The length of the plain encoding (SPEC §10.2), measured without
    /// writing it.
    pub(crate) fn encoded_len(&self) -> usize {
        2 + crate::codec::encoded_len(self)
    }

    /// Writes the plain encoding (version, type, fields) into `out`, for
    /// states that embed a session (SPEC §16.11), so that its secrets are
    /// never copied through a buffer of their own.
    pub(crate) fn encode_into<S: Sink>(&self, out: &mut S) {
        crate::codec::write_header(out, tag::SESSION_STATE);
        Codec::encode(self, out);
    }

    /// Decrypts a message of this session. All or nothing: on any error the
    /// session is exactly as it was. Never draws randomness. The plaintext's
    /// [`sender`](Plaintext::sender) is this session's remote identity.
    ///
    /// # Errors
    ///
    /// In the order of SPEC §8.6. For a prekey message first
    /// [`Error::IdentityMismatch`] (another identity) and
    /// [`Error::SessionMismatch`] (not our responder session). Then, on a
    /// known chain: [`Error::AuthenticationFailed`] (a skipped key's tag);
    /// [`Error::TooFarAhead`] (more than [`MAX_SKIP`](crate::MAX_SKIP) keys
    /// to skip), [`Error::ChainExhausted`] (the last message number) and
    /// [`Error::AuthenticationFailed`] on the current chain;
    /// [`Error::SessionDiverged`] at or past the end of a closed chain;
    /// [`Error::DuplicateMessage`] below it (already decrypted, or its key
    /// deleted). On a ratchet key this session does not know:
    /// [`Error::SessionDiverged`] without a sending chain,
    /// [`Error::TooFarAhead`], [`Error::NonContributoryKey`] (a low-order
    /// key), and [`Error::SessionDiverged`] if it does not decrypt.
    ///
    /// `SessionDiverged` means the two sides no longer share the ratchet,
    /// usually because one restored an older state (SPEC §11): this session
    /// cannot read the peer's new chains again and must be replaced by a new
    /// one. It is not authenticated (a forgery gives it too): keep the
    /// session for the messages it can still decrypt.
    pub fn decrypt(&mut self, message: &Message) -> Result<Plaintext> {
        self.decrypt_then(message, |_| Ok(()))
            .map(|(plaintext, ())| plaintext)
    }

    /// Decrypts as [`Session::decrypt`], then runs `then` on the plaintext
    /// before the session changes; the session commits only if `then`
    /// returns `Ok`, so a caller can make acting on a message and reading it
    /// one all-or-nothing step (the group store's one-call install, SPEC
    /// §15.7).
    pub(crate) fn decrypt_then<T>(
        &mut self,
        message: &Message,
        then: impl FnOnce(&Plaintext) -> Result<T>,
    ) -> Result<(Plaintext, T)> {
        self.0.decrypt(message, then)
    }

    /// The generation (SPEC §10.1): 0 for a new session, plus 1 for every
    /// successful encrypt or decrypt.
    pub fn generation(&self) -> u64 {
        self.0.generation()
    }

    /// Which key agreement started this session (SPEC §7.1).
    pub fn key_agreement(&self) -> KeyAgreement {
        self.0.key_agreement()
    }

    /// Which side of the key agreement this session was.
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

    /// The session encrypted at rest under `key`, bound to `context` (the
    /// record's key in the application's store; draws 32 bytes of salt).
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

    /// Opens and restores [`Session::seal`]'s output, sealed under `context`.
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

    fn generation(&self) -> u64 {
        self.0.generation()
    }

    fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        sealed::to_plain(Self::TYPE_TAG, self)
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let session: Self = sealed::from_plain(Self::TYPE_TAG, bytes)?;
        session.0.check()?;
        Ok(session)
    }
}

/// The state's fields (SPEC §10.2), decoded straight into its box.
impl Codec for Session {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.0.encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        SessionState::decode_boxed(r).map(Self)
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("generation", &self.0.generation())
            .field("key_agreement", &self.0.key_agreement())
            .field("role", &self.0.role())
            .field("remote_identity", self.0.remote_identity())
            .field("awaiting_reply", &self.0.is_awaiting_reply())
            .field("skipped_keys", &self.0.receiving().total_skipped())
            .finish_non_exhaustive()
    }
}
