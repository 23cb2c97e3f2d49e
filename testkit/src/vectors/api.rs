//! What a vector asks of an implementation: SPEC.md's operations on
//! encoded values. States go in and out as their saved forms (§10, §15.11),
//! so that every implementation is driven the same way and compared byte
//! for byte; a failing call returns only its error (the state it was given
//! is then the state after, and an implementation checks that it did not
//! change it).
//!
//! [`ModelApi`](super::model_api::ModelApi) implements it with the
//! reference model; the library implementation drives sotto's public API.

use super::layer::LayerApi;
use crate::model::Policy;
use crate::model::Refusal;
use crate::model::group::Outcome;
use crate::model::rand::Source;

/// Bytes out.
pub type Bytes = Vec<u8>;
/// A result with a SPEC.md error.
pub type R<T> = Result<T, Refusal>;

/// A device operation of §6 that changes the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceCall {
    /// Rotate signed prekey (`now`).
    RotateSignedPreKey(u64),
    /// Remove signed prekey (`id`).
    RemoveSignedPreKey(u32),
    /// Generate one-time prekeys (`count`).
    GenerateOneTimePreKeys(u32),
    /// Rotate last-resort KEM prekey (`now`).
    RotateKemPreKey(u64),
    /// Remove last-resort KEM prekey (`id`).
    RemoveKemPreKey(u32),
    /// Generate one-time KEM prekeys (`count`).
    GenerateKemPreKeys(u32),
    /// Reset prekeys after a restore (`now`, `last_generation`).
    ResetPreKeys(u64, u64),
}

/// What accepting a prekey message and installing its plaintext gave: the
/// device, the session, and the install's result (store and outcome, or
/// its error).
pub type AcceptedInstall = (Bytes, Bytes, R<(Bytes, Outcome)>);

/// A plaintext's sender mark (§15.7): the owner's identity key (encoded,
/// 34 bytes) and whether the chain is authenticated.
pub type Mark = (Bytes, bool);

/// The operations of SPEC.md on encoded values (those of §16 in
/// [`LayerApi`]).
pub trait Api: LayerApi {
    /// For messages: "model" or "sotto".
    fn name(&self) -> &'static str;

    /// Decodes `input` as `encoding` (`Message`, `IdentityKey`,
    /// `SignedPreKey`, `OneTimePreKey`, `KemPreKey`, `PreKeyBundle`,
    /// `Session`, `Device`, `GroupMessage`, `SenderKeyDistribution`,
    /// `GroupSender`, `GroupReceiver`, `GroupReceivers`, `PeerRecord`,
    /// `GroupSession`).
    ///
    /// # Errors
    ///
    /// The decoding error.
    fn decode(&self, encoding: &str, input: &[u8]) -> R<()>;

    /// Decodes and verifies a bundle (§5.7), against an expected encoded
    /// identity key if given.
    ///
    /// # Errors
    ///
    /// The decoding or verification error.
    fn verify_bundle(&self, bundle: &[u8], expected: Option<&[u8]>) -> R<()>;

    /// §6 new device.
    ///
    /// # Errors
    ///
    /// None that SPEC.md names (an RNG failure aside).
    fn device_new(&self, now: u64, rng: &mut dyn Source) -> R<Bytes>;

    /// A §6 operation: the device after it and the public prekeys it made
    /// (encoded, in id order; the signed then the KEM prekey for a reset).
    ///
    /// # Errors
    ///
    /// The operation's error.
    fn device_call(
        &self,
        device: &[u8],
        call: DeviceCall,
        rng: &mut dyn Source,
    ) -> R<(Bytes, Vec<Bytes>)>;

    /// The device's bundle with its current signed prekey and the named
    /// one-time and KEM prekeys (the vectors' construction; SPEC.md has
    /// no operation for it).
    ///
    /// # Errors
    ///
    /// A prekey the device does not hold.
    fn bundle(&self, device: &[u8], opk: Option<u32>, kem: Option<u32>) -> R<Bytes>;

    /// §5.7 then §7.2: verifies the bundle and starts a session.
    ///
    /// # Errors
    ///
    /// The verification or initiate error.
    fn initiate(
        &self,
        device: &[u8],
        bundle: &[u8],
        expected: Option<&[u8]>,
        policy: Policy,
        rng: &mut dyn Source,
    ) -> R<Bytes>;

    /// §7.3: (device, session, plaintext).
    ///
    /// # Errors
    ///
    /// The parse or accept error.
    fn accept(&self, device: &[u8], message: &[u8], policy: Policy) -> R<(Bytes, Bytes, Bytes)>;

    /// §8.5: (session, message).
    ///
    /// # Errors
    ///
    /// The encrypt error.
    fn encrypt(&self, session: &[u8], plaintext: &[u8], rng: &mut dyn Source) -> R<(Bytes, Bytes)>;

    /// §8.6: (session, plaintext).
    ///
    /// # Errors
    ///
    /// The parse or decrypt error.
    fn decrypt(&self, session: &[u8], message: &[u8]) -> R<(Bytes, Bytes)>;

    /// §10.5 seal of a plain state.
    ///
    /// # Errors
    ///
    /// `TooLarge`.
    fn seal(&self, state: &[u8], key: &[u8; 32], context: &[u8], rng: &mut dyn Source) -> R<Bytes>;

    /// §10.5 open, as the state of type `inner`: the plain state.
    ///
    /// # Errors
    ///
    /// The open or decoding error.
    fn unseal(&self, sealed: &[u8], key: &[u8; 32], context: &[u8], inner: u8) -> R<Bytes>;

    /// §15.12 `GroupSender::new` from the owner's device.
    ///
    /// # Errors
    ///
    /// None that SPEC.md names.
    fn group_sender_new(&self, group: &[u8; 32], device: &[u8], rng: &mut dyn Source) -> R<Bytes>;

    /// §15.12 `rotate` with the owner's device.
    ///
    /// # Errors
    ///
    /// `GroupOwnerMismatch` for a device that is not the owner.
    fn group_sender_rotate(&self, sender: &[u8], device: &[u8], rng: &mut dyn Source) -> R<Bytes>;

    /// §15.12 encrypt: (sender, message).
    ///
    /// # Errors
    ///
    /// `PlaintextTooLarge`, `ChainExhausted`.
    fn group_encrypt(
        &self,
        sender: &[u8],
        plaintext: &[u8],
        rng: &mut dyn Source,
    ) -> R<(Bytes, Bytes)>;

    /// §15.6 the sender's distribution.
    ///
    /// # Errors
    ///
    /// None that SPEC.md names.
    fn group_distribution(&self, sender: &[u8]) -> R<Bytes>;

    /// A new, empty store for a group.
    ///
    /// # Errors
    ///
    /// None that SPEC.md names.
    fn store_new(&self, group: &[u8; 32]) -> R<Bytes>;

    /// §15.7 unauthenticated import into a store.
    ///
    /// # Errors
    ///
    /// The parse, install or store error.
    fn store_import(&self, store: &[u8], distribution: &[u8]) -> R<(Bytes, Outcome)>;

    /// §15.7 the one-call authenticated install: decrypts `message` with the
    /// session and installs the distribution it carries; (store, session).
    ///
    /// # Errors
    ///
    /// The decrypt, parse, install or store error; then neither changed.
    fn store_receive_distribution(
        &self,
        store: &[u8],
        session: &[u8],
        message: &[u8],
    ) -> R<(Bytes, Bytes, Outcome)>;

    /// §15.7: accepts a prekey message and installs the distribution its
    /// plaintext carries (two calls): (device, session, and the install's
    /// result: the store and outcome, or its error).
    ///
    /// # Errors
    ///
    /// The accept error (the install's error is inside).
    fn store_install_accepted(
        &self,
        store: &[u8],
        device: &[u8],
        message: &[u8],
        policy: Policy,
    ) -> R<AcceptedInstall>;

    /// §15.9 decrypt through the store: (store, plaintext, mark).
    ///
    /// # Errors
    ///
    /// The parse or decrypt error.
    fn store_decrypt(&self, store: &[u8], message: &[u8]) -> R<(Bytes, Bytes, Mark)>;

    /// §15.9 `remove_owner`: (store, chains removed).
    ///
    /// # Errors
    ///
    /// An owner that is not an identity key.
    fn store_remove_owner(&self, store: &[u8], owner: &[u8]) -> R<(Bytes, u64)>;

    /// §15.7 the one-call authenticated install of a standalone receiver:
    /// (receiver, session).
    ///
    /// # Errors
    ///
    /// The decrypt, parse or install error; then the session is unchanged.
    fn receiver_receive_distribution(
        &self,
        group: &[u8; 32],
        session: &[u8],
        message: &[u8],
    ) -> R<(Bytes, Bytes)>;

    /// §15.7 unauthenticated import of a standalone receiver.
    ///
    /// # Errors
    ///
    /// The parse or install error.
    fn receiver_import(&self, group: &[u8; 32], distribution: &[u8]) -> R<Bytes>;

    /// §15.8: (receiver, plaintext, mark).
    ///
    /// # Errors
    ///
    /// The parse or decrypt error.
    fn receiver_decrypt(&self, receiver: &[u8], message: &[u8]) -> R<(Bytes, Bytes, Mark)>;
}
