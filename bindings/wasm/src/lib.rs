//! # sotto-wasm
//!
//! The WebAssembly package of [`sotto`] for browsers and Node.js
//! (`wasm-bindgen`, target `wasm32-unknown-unknown`): devices and prekeys,
//! bundles, PQXDH sessions, group senders and stores, saved and sealed
//! states.
//!
//! - Bytes are `Uint8Array`s (identity keys too: 34 bytes); times and
//!   generations are `BigInt`s.
//! - Every failure throws an `Error` whose `name` is `"SottoError"`, whose
//!   `code` is the C ABI's number and whose `kind` is the error's name
//!   (`"AuthenticationFailed"`, ...); a call that throws changed nothing.
//! - Randomness comes from `crypto.getRandomValues`; time from the caller.
//!
//! - With the `sessions` feature (the package `build.sh` makes second), the
//!   session layer (SPEC §16): `PeerRecord`, `GroupSession`; a message
//!   it cannot decrypt throws a `SottoError` whose `action` is the step to
//!   take (`{type: "Ignore" | "RetryLater", reason}` or `{type:
//!   "RequestRetry" | "StartNewSession", hint}`).
//!
//! The SQLite store is not part of this package (bindings/README.md).

use sotto::group::{GroupMessage, GroupReceivers};
use sotto::{KemPreKey, KeyAgreementPolicy, Message, OneTimePreKey, PreKeyMessage, SignedPreKey};
use sotto_bindings_common::{BindingError, OsRng, group_id, storage_key};
use wasm_bindgen::prelude::*;
use zeroize::Zeroizing;

#[cfg(feature = "sessions")]
mod sessions;

#[cfg(feature = "sessions")]
pub use sessions::{GroupSession, PeerRecord, PeerRecords, Received};

/// The JavaScript `Error` a failure throws: `name` `"SottoError"`, `code`
/// the C ABI's number, `kind` the error's name.
fn js_error(error: BindingError) -> JsValue {
    let js = js_sys::Error::new(&format!("{}: {}", error.code().name(), error.message()));
    js.set_name("SottoError");
    let object: &JsValue = js.as_ref();
    // Setting a property on a fresh Error object cannot fail; if it did, the
    // error would still be thrown, without the property.
    let _ = js_sys::Reflect::set(object, &"code".into(), &error.code().code().into());
    let _ = js_sys::Reflect::set(object, &"kind".into(), &error.code().name().into());
    js.into()
}

/// Every fallible call's result, its error already a JavaScript `Error`.
type JsResult<T> = Result<T, JsValue>;

trait IntoJs<T> {
    fn js(self) -> JsResult<T>;
}

impl<T> IntoJs<T> for sotto::Result<T> {
    fn js(self) -> JsResult<T> {
        self.map_err(|e| js_error(e.into()))
    }
}

impl<T> IntoJs<T> for Result<T, BindingError> {
    fn js(self) -> JsResult<T> {
        self.map_err(js_error)
    }
}

fn identity(bytes: &[u8]) -> JsResult<sotto::IdentityKey> {
    sotto::IdentityKey::from_bytes(bytes).js()
}

fn key(bytes: &[u8]) -> JsResult<sotto::StorageKey> {
    storage_key(bytes).js()
}

/// The 32-byte fingerprint of an encoded identity key, for users to compare
/// out of band.
///
/// # Errors
///
/// The parse errors of an identity key.
#[wasm_bindgen(js_name = identityKeyFingerprint)]
pub fn identity_key_fingerprint(identity_key: &[u8]) -> JsResult<Vec<u8>> {
    Ok(identity(identity_key)?.fingerprint().as_bytes().to_vec())
}

/// The id of an encoded prekey of any kind.
///
/// # Errors
///
/// The parse errors; `WrongType` if it is no prekey.
#[wasm_bindgen(js_name = prekeyId)]
pub fn prekey_id(prekey: &[u8]) -> JsResult<u32> {
    let wrong = |e: &sotto::Error| matches!(e, sotto::Error::WrongType { .. });
    match SignedPreKey::from_bytes(prekey) {
        Ok(spk) => Ok(spk.id()),
        Err(e) if wrong(&e) => match OneTimePreKey::from_bytes(prekey) {
            Ok(opk) => Ok(opk.id()),
            Err(e) if wrong(&e) => KemPreKey::from_bytes(prekey).map(|k| k.id()).js(),
            Err(e) => Err(js_error(e.into())),
        },
        Err(e) => Err(js_error(e.into())),
    }
}

/// Whether a pairwise message is a prekey message (give it to
/// `Device.accept` if no session has its base key yet).
///
/// # Errors
///
/// The parse errors.
#[wasm_bindgen(js_name = isPreKeyMessage)]
pub fn is_prekey_message(message: &[u8]) -> JsResult<bool> {
    Ok(matches!(
        Message::from_bytes(message).js()?,
        Message::PreKey(_)
    ))
}

/// The group id (32 bytes) a group message names, to pick the store.
///
/// # Errors
///
/// The parse errors.
#[wasm_bindgen(js_name = groupMessageGroupId)]
pub fn group_message_group_id(message: &[u8]) -> JsResult<Vec<u8>> {
    Ok(GroupMessage::from_bytes(message)
        .js()?
        .group_id()
        .as_bytes()
        .to_vec())
}

/// One device: identity key pair and prekey secrets.
#[wasm_bindgen]
pub struct Device(sotto::Device);

#[wasm_bindgen]
impl Device {
    /// A new device, its first prekeys created at `now`.
    ///
    /// # Errors
    ///
    /// `Randomness`.
    pub fn generate(now: u64) -> JsResult<Device> {
        sotto::Device::generate(&mut OsRng, now).map(Self).js()
    }

    /// Restores a device from `toBytes`.
    ///
    /// # Errors
    ///
    /// The parse errors.
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(bytes: &[u8]) -> JsResult<Device> {
        sotto::Device::from_bytes(bytes).map(Self).js()
    }

    /// Restores a device from `seal`.
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, `TooLarge`, `AuthenticationFailed`, the parse
    /// errors.
    pub fn unseal(sealed: &[u8], storage_key: &[u8], context: &[u8]) -> JsResult<Device> {
        sotto::Device::unseal(sealed, &key(storage_key)?, context)
            .map(Self)
            .js()
    }

    /// The plain saved state (secret: prefer `seal`).
    #[wasm_bindgen(js_name = toBytes)]
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.to_bytes().to_vec()
    }

    /// The saved state encrypted under a 32-byte key, bound to `context`.
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, `TooLarge`, `Randomness`.
    pub fn seal(&self, storage_key: &[u8], context: &[u8]) -> JsResult<Vec<u8>> {
        self.0.seal(&key(storage_key)?, context, &mut OsRng).js()
    }

    /// 0 when new, one more after every change.
    pub fn generation(&self) -> u64 {
        self.0.generation()
    }

    /// The encoded identity key (34 bytes).
    #[wasm_bindgen(js_name = identityKey)]
    pub fn identity_key(&self) -> Vec<u8> {
        self.0.identity_key().to_bytes().to_vec()
    }

    /// The current signed prekey, encoded.
    #[wasm_bindgen(js_name = signedPrekey)]
    pub fn signed_prekey(&self) -> Vec<u8> {
        self.0.signed_prekey().to_bytes()
    }

    /// A new current signed prekey, created at `now`.
    ///
    /// # Errors
    ///
    /// `Randomness`, `TooManyPrekeys`.
    #[wasm_bindgen(js_name = rotateSignedPrekey)]
    pub fn rotate_signed_prekey(&mut self, now: u64) -> JsResult<Vec<u8>> {
        Ok(self
            .0
            .rotate_signed_prekey(&mut OsRng, now)
            .js()?
            .to_bytes())
    }

    /// Deletes an old signed prekey.
    ///
    /// # Errors
    ///
    /// `UnknownSignedPrekey`.
    #[wasm_bindgen(js_name = removeSignedPrekey)]
    pub fn remove_signed_prekey(&mut self, id: u32) -> JsResult<()> {
        self.0.remove_signed_prekey(id).js()
    }

    /// `count` new one-time prekeys, encoded.
    ///
    /// # Errors
    ///
    /// `TooManyPrekeys`, `Randomness`.
    #[wasm_bindgen(js_name = generateOneTimePrekeys)]
    pub fn generate_one_time_prekeys(&mut self, count: u32) -> JsResult<Vec<js_sys::Uint8Array>> {
        let count = sotto_bindings_common::count(count).js()?;
        let prekeys = self.0.generate_one_time_prekeys(&mut OsRng, count).js()?;
        Ok(prekeys
            .iter()
            .map(|p| js_sys::Uint8Array::from(p.to_bytes().as_slice()))
            .collect())
    }

    /// How many one-time prekeys are unused.
    #[wasm_bindgen(js_name = oneTimePrekeyCount)]
    pub fn one_time_prekey_count(&self) -> u32 {
        u32::try_from(self.0.one_time_prekey_count()).unwrap_or(u32::MAX)
    }

    /// The current last-resort KEM prekey, encoded.
    #[wasm_bindgen(js_name = lastResortKemPrekey)]
    pub fn last_resort_kem_prekey(&self) -> Vec<u8> {
        self.0.last_resort_kem_prekey().to_bytes()
    }

    /// A new current last-resort KEM prekey, created at `now`.
    ///
    /// # Errors
    ///
    /// `Randomness`, `TooManyPrekeys`.
    #[wasm_bindgen(js_name = rotateLastResortKemPrekey)]
    pub fn rotate_last_resort_kem_prekey(&mut self, now: u64) -> JsResult<Vec<u8>> {
        Ok(self
            .0
            .rotate_last_resort_kem_prekey(&mut OsRng, now)
            .js()?
            .to_bytes())
    }

    /// Deletes an old last-resort KEM prekey.
    ///
    /// # Errors
    ///
    /// `UnknownKemPrekey`.
    #[wasm_bindgen(js_name = removeLastResortKemPrekey)]
    pub fn remove_last_resort_kem_prekey(&mut self, id: u32) -> JsResult<()> {
        self.0.remove_last_resort_kem_prekey(id).js()
    }

    /// `count` new one-time KEM prekeys, encoded.
    ///
    /// # Errors
    ///
    /// `TooManyPrekeys`, `Randomness`.
    #[wasm_bindgen(js_name = generateOneTimeKemPrekeys)]
    pub fn generate_one_time_kem_prekeys(
        &mut self,
        count: u32,
    ) -> JsResult<Vec<js_sys::Uint8Array>> {
        let count = sotto_bindings_common::count(count).js()?;
        let prekeys = self
            .0
            .generate_one_time_kem_prekeys(&mut OsRng, count)
            .js()?;
        Ok(prekeys
            .iter()
            .map(|p| js_sys::Uint8Array::from(p.to_bytes().as_slice()))
            .collect())
    }

    /// After restoring an older state: replaces every prekey and moves the
    /// generation past `lastGeneration`. Publish the new signed and KEM
    /// prekeys (`signedPrekey`, `lastResortKemPrekey`).
    ///
    /// # Errors
    ///
    /// `Randomness`, `TooManyPrekeys`.
    #[wasm_bindgen(js_name = resetPrekeysAfterRestore)]
    pub fn reset_prekeys_after_restore(&mut self, now: u64, last_generation: u64) -> JsResult<()> {
        self.0
            .reset_prekeys_after_restore(&mut OsRng, now, last_generation)
            .js()
            .map(|_| ())
    }

    /// Starts a PQXDH session from a verified bundle.
    ///
    /// # Errors
    ///
    /// `PostQuantumRequired`, `NonContributoryKey`, `Randomness`.
    pub fn initiate(&self, bundle: &VerifiedPreKeyBundle) -> JsResult<Session> {
        self.initiate_with(bundle, KeyAgreementPolicy::PostQuantumRequired)
    }

    /// As `initiate`, falling back to classical X3DH for a bundle without a
    /// KEM prekey (only for peers known not to support ML-KEM).
    ///
    /// # Errors
    ///
    /// `NonContributoryKey`, `Randomness`.
    #[wasm_bindgen(js_name = initiateAllowClassical)]
    pub fn initiate_allow_classical(&self, bundle: &VerifiedPreKeyBundle) -> JsResult<Session> {
        self.initiate_with(bundle, KeyAgreementPolicy::ClassicalAllowed)
    }

    /// Accepts a PQXDH prekey message: the new session and the first
    /// plaintext. Check the plaintext's sender.
    ///
    /// # Errors
    ///
    /// The parse errors, `PostQuantumRequired`, `UnknownSignedPrekey`,
    /// `UnknownOneTimePrekey`, `UnknownKemPrekey`, `DuplicatePrekeyMessage`,
    /// `SignedPrekeyExhausted`, `NonContributoryKey`,
    /// `AuthenticationFailed`.
    pub fn accept(&mut self, message: &[u8]) -> JsResult<Accepted> {
        self.accept_with(message, KeyAgreementPolicy::PostQuantumRequired)
    }

    /// As `accept`, and accepts classical X3DH too.
    ///
    /// # Errors
    ///
    /// As `accept`, without `PostQuantumRequired`.
    #[wasm_bindgen(js_name = acceptAllowClassical)]
    pub fn accept_allow_classical(&mut self, message: &[u8]) -> JsResult<Accepted> {
        self.accept_with(message, KeyAgreementPolicy::ClassicalAllowed)
    }
}

impl Device {
    fn initiate_with(
        &self,
        bundle: &VerifiedPreKeyBundle,
        policy: KeyAgreementPolicy,
    ) -> JsResult<Session> {
        sotto::Session::initiate_with_policy(&self.0, &mut OsRng, &bundle.0, policy)
            .map(Session)
            .js()
    }

    fn accept_with(&mut self, message: &[u8], policy: KeyAgreementPolicy) -> JsResult<Accepted> {
        let message = PreKeyMessage::from_vec(message.to_vec()).js()?;
        let (session, plaintext) =
            sotto::Session::accept_with_policy(&mut self.0, &message, policy).js()?;
        Ok(Accepted {
            session: Some(Session(session)),
            plaintext: Some(Plaintext(plaintext)),
        })
    }
}

/// A session just accepted and its first plaintext; take each once.
#[wasm_bindgen]
pub struct Accepted {
    session: Option<Session>,
    plaintext: Option<Plaintext>,
}

#[wasm_bindgen]
impl Accepted {
    /// The new session (once).
    ///
    /// # Errors
    ///
    /// `InvalidArgument` if already taken.
    #[wasm_bindgen(js_name = takeSession)]
    pub fn take_session(&mut self) -> JsResult<Session> {
        self.session
            .take()
            .ok_or_else(|| js_error(BindingError::invalid("the session was already taken")))
    }

    /// The first plaintext (once).
    ///
    /// # Errors
    ///
    /// `InvalidArgument` if already taken.
    #[wasm_bindgen(js_name = takePlaintext)]
    pub fn take_plaintext(&mut self) -> JsResult<Plaintext> {
        self.plaintext
            .take()
            .ok_or_else(|| js_error(BindingError::invalid("the plaintext was already taken")))
    }
}

/// A prekey bundle as a server hands it out, not yet verified.
#[wasm_bindgen]
pub struct PreKeyBundle(sotto::PreKeyBundle);

#[wasm_bindgen]
impl PreKeyBundle {
    /// Assembles a bundle from encoded parts; pass `undefined` for a
    /// missing one-time or KEM prekey.
    ///
    /// # Errors
    ///
    /// The parse errors of each part.
    #[wasm_bindgen(constructor)]
    pub fn new(
        identity_key: &[u8],
        signed_prekey: &[u8],
        one_time_prekey: Option<Vec<u8>>,
        kem_prekey: Option<Vec<u8>>,
    ) -> JsResult<PreKeyBundle> {
        let signed = SignedPreKey::from_bytes(signed_prekey).js()?;
        let one_time = one_time_prekey
            .map(|b| OneTimePreKey::from_bytes(&b))
            .transpose()
            .js()?;
        let kem = kem_prekey
            .map(|b| KemPreKey::from_bytes(&b))
            .transpose()
            .js()?;
        Ok(Self(sotto::PreKeyBundle::new(
            identity(identity_key)?,
            signed,
            one_time,
            kem,
        )))
    }

    /// Parses an encoded bundle.
    ///
    /// # Errors
    ///
    /// The parse errors.
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(bytes: &[u8]) -> JsResult<PreKeyBundle> {
        sotto::PreKeyBundle::from_bytes(bytes).map(Self).js()
    }

    /// The encoded bundle.
    #[wasm_bindgen(js_name = toBytes)]
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.to_bytes()
    }

    /// Checks every signature strictly.
    ///
    /// # Errors
    ///
    /// `InvalidSignature`.
    pub fn verify(&self) -> JsResult<VerifiedPreKeyBundle> {
        self.0.clone().verify().map(VerifiedPreKeyBundle).js()
    }

    /// As `verify`, and the identity must be `expected` (34 bytes).
    ///
    /// # Errors
    ///
    /// The parse errors of `expected`, `IdentityMismatch`,
    /// `InvalidSignature`.
    #[wasm_bindgen(js_name = verifyFor)]
    pub fn verify_for(&self, expected: &[u8]) -> JsResult<VerifiedPreKeyBundle> {
        let expected = identity(expected)?;
        self.0
            .clone()
            .verify_for(&expected)
            .map(VerifiedPreKeyBundle)
            .js()
    }
}

/// A bundle whose signatures verified.
#[wasm_bindgen]
pub struct VerifiedPreKeyBundle(sotto::VerifiedPreKeyBundle);

#[wasm_bindgen]
impl VerifiedPreKeyBundle {
    /// The verified identity key (34 bytes).
    #[wasm_bindgen(js_name = identityKey)]
    pub fn identity_key(&self) -> Vec<u8> {
        self.0.bundle().identity().to_bytes().to_vec()
    }

    /// Whether it carries a KEM prekey.
    #[wasm_bindgen(js_name = hasKemPrekey)]
    pub fn has_kem_prekey(&self) -> bool {
        self.0.bundle().kem_prekey().is_some()
    }
}

/// A decrypted pairwise message with its sender's identity; the proof
/// `GroupStore.install` takes.
#[wasm_bindgen]
pub struct Plaintext(sotto::Plaintext);

#[wasm_bindgen]
impl Plaintext {
    /// The plaintext bytes.
    pub fn bytes(&self) -> Vec<u8> {
        self.0.as_bytes().to_vec()
    }

    /// The sender's identity key (34 bytes).
    pub fn sender(&self) -> Vec<u8> {
        self.0.sender().to_bytes().to_vec()
    }
}

/// A session with one peer device. Save it after every change.
#[wasm_bindgen]
pub struct Session(sotto::Session);

#[wasm_bindgen]
impl Session {
    /// Restores a session from `toBytes`.
    ///
    /// # Errors
    ///
    /// The parse errors.
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(bytes: &[u8]) -> JsResult<Session> {
        sotto::Session::from_bytes(bytes).map(Self).js()
    }

    /// Restores a session from `seal`.
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, `TooLarge`, `AuthenticationFailed`, the parse
    /// errors.
    pub fn unseal(sealed: &[u8], storage_key: &[u8], context: &[u8]) -> JsResult<Session> {
        sotto::Session::unseal(sealed, &key(storage_key)?, context)
            .map(Self)
            .js()
    }

    /// The plain saved state (secret: prefer `seal`).
    #[wasm_bindgen(js_name = toBytes)]
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.to_bytes().to_vec()
    }

    /// The saved state encrypted under a 32-byte key, bound to `context`.
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, `TooLarge`, `Randomness`.
    pub fn seal(&self, storage_key: &[u8], context: &[u8]) -> JsResult<Vec<u8>> {
        self.0.seal(&key(storage_key)?, context, &mut OsRng).js()
    }

    /// 0 when new, one more after every change.
    pub fn generation(&self) -> u64 {
        self.0.generation()
    }

    /// Encrypts one message.
    ///
    /// # Errors
    ///
    /// `PlaintextTooLarge`, `ChainExhausted`, `Randomness`.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> JsResult<Vec<u8>> {
        Ok(self.0.encrypt(&mut OsRng, plaintext).js()?.into_bytes())
    }

    /// Decrypts one message.
    ///
    /// # Errors
    ///
    /// The parse errors, `AuthenticationFailed`, `DuplicateMessage`,
    /// `TooFarAhead`, `SessionDiverged`, `SessionMismatch`.
    pub fn decrypt(&mut self, message: &[u8]) -> JsResult<Plaintext> {
        let message = Message::from_bytes(message).js()?;
        self.0.decrypt(&message).map(Plaintext).js()
    }

    /// The peer's identity key (34 bytes).
    #[wasm_bindgen(js_name = remoteIdentityKey)]
    pub fn remote_identity_key(&self) -> Vec<u8> {
        self.0.remote_identity().to_bytes().to_vec()
    }

    /// The base key naming the session (32 bytes).
    #[wasm_bindgen(js_name = baseKey)]
    pub fn base_key(&self) -> Vec<u8> {
        self.0.base_key_bytes().to_vec()
    }

    /// Whether this side wrote first and has had no reply yet.
    #[wasm_bindgen(js_name = isAwaitingReply)]
    pub fn is_awaiting_reply(&self) -> bool {
        self.0.is_awaiting_reply()
    }

    /// Whether the session started with PQXDH (else classical X3DH).
    #[wasm_bindgen(js_name = isPostQuantum)]
    pub fn is_post_quantum(&self) -> bool {
        self.0.key_agreement() == sotto::KeyAgreement::Pqxdh
    }
}

/// A member's own sending chain in one group.
#[wasm_bindgen]
pub struct GroupSender(sotto::group::GroupSender);

#[wasm_bindgen]
impl GroupSender {
    /// A new chain for `device` in the group `groupId` (32 bytes).
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, `Randomness`.
    #[wasm_bindgen(constructor)]
    pub fn new(device: &Device, group: &[u8]) -> JsResult<GroupSender> {
        sotto::group::GroupSender::new(&mut OsRng, group_id(group).js()?, &device.0)
            .map(Self)
            .js()
    }

    /// Restores a sender from `toBytes`.
    ///
    /// # Errors
    ///
    /// The parse errors.
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(bytes: &[u8]) -> JsResult<GroupSender> {
        sotto::group::GroupSender::from_bytes(bytes).map(Self).js()
    }

    /// Restores a sender from `seal`.
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, `TooLarge`, `AuthenticationFailed`, the parse
    /// errors.
    pub fn unseal(sealed: &[u8], storage_key: &[u8], context: &[u8]) -> JsResult<GroupSender> {
        sotto::group::GroupSender::unseal(sealed, &key(storage_key)?, context)
            .map(Self)
            .js()
    }

    /// The plain saved state (secret: prefer `seal`).
    #[wasm_bindgen(js_name = toBytes)]
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.to_bytes().to_vec()
    }

    /// The saved state encrypted under a 32-byte key, bound to `context`.
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, `TooLarge`, `Randomness`.
    pub fn seal(&self, storage_key: &[u8], context: &[u8]) -> JsResult<Vec<u8>> {
        self.0.seal(&key(storage_key)?, context, &mut OsRng).js()
    }

    /// 0 when new, one more after every change.
    pub fn generation(&self) -> u64 {
        self.0.generation()
    }

    /// The distribution at the current index: send it to each member over
    /// the pairwise session (secret).
    pub fn distribution(&self) -> Vec<u8> {
        self.0.distribution().to_bytes().to_vec()
    }

    /// Encrypts one group message.
    ///
    /// # Errors
    ///
    /// `PlaintextTooLarge`, `ChainExhausted`, `Randomness`.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> JsResult<Vec<u8>> {
        Ok(self.0.encrypt(&mut OsRng, plaintext).js()?.into_bytes())
    }

    /// A new chain (after a member left); its distribution, for the
    /// remaining members only.
    ///
    /// # Errors
    ///
    /// `GroupOwnerMismatch`, `Randomness`.
    pub fn rotate(&mut self, device: &Device) -> JsResult<Vec<u8>> {
        Ok(self
            .0
            .rotate(&mut OsRng, &device.0)
            .js()?
            .to_bytes()
            .to_vec())
    }

    /// The chain id (32 bytes).
    #[wasm_bindgen(js_name = chainId)]
    pub fn chain_id(&self) -> Vec<u8> {
        self.0.chain().as_bytes().to_vec()
    }

    /// The index of the next message.
    pub fn index(&self) -> u32 {
        self.0.index()
    }
}

/// A decrypted group message.
#[wasm_bindgen]
pub struct GroupPlaintext(sotto::group::GroupPlaintext);

#[wasm_bindgen]
impl GroupPlaintext {
    /// The plaintext bytes.
    pub fn bytes(&self) -> Vec<u8> {
        self.0.as_bytes().to_vec()
    }

    /// The chain's owner (34 bytes; claimed only unless `authenticated`).
    pub fn owner(&self) -> Vec<u8> {
        self.0.sender().owner().to_bytes().to_vec()
    }

    /// Whether the chain came from its owner's own session.
    pub fn authenticated(&self) -> bool {
        self.0.sender().is_authenticated()
    }

    /// The message's index in its chain.
    pub fn index(&self) -> u32 {
        self.0.index()
    }
}

/// Every other member's chain this member can read, in one group.
#[wasm_bindgen]
pub struct GroupStore(GroupReceivers);

/// What adding a chain did: `"added"`, `"advanced"`, `"upgraded"` or
/// `"unchanged"`.
fn outcome(outcome: sotto::group::InsertOutcome) -> String {
    use sotto::group::InsertOutcome as O;
    match outcome {
        O::Added => "added",
        O::Advanced => "advanced",
        O::Upgraded => "upgraded",
        O::Unchanged => "unchanged",
    }
    .to_owned()
}

#[wasm_bindgen]
impl GroupStore {
    /// An empty store for the group `groupId` (32 bytes).
    ///
    /// # Errors
    ///
    /// `InvalidArgument`.
    #[wasm_bindgen(constructor)]
    pub fn new(group: &[u8]) -> JsResult<GroupStore> {
        Ok(Self(GroupReceivers::new(group_id(group).js()?)))
    }

    /// Restores a store from `toBytes`.
    ///
    /// # Errors
    ///
    /// The parse errors.
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(bytes: &[u8]) -> JsResult<GroupStore> {
        GroupReceivers::from_bytes(bytes).map(Self).js()
    }

    /// Restores a store from `seal`.
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, `TooLarge`, `AuthenticationFailed`, the parse
    /// errors.
    pub fn unseal(sealed: &[u8], storage_key: &[u8], context: &[u8]) -> JsResult<GroupStore> {
        GroupReceivers::unseal(sealed, &key(storage_key)?, context)
            .map(Self)
            .js()
    }

    /// The plain saved state (secret: prefer `seal`).
    #[wasm_bindgen(js_name = toBytes)]
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.to_bytes().to_vec()
    }

    /// The saved state encrypted under a 32-byte key, bound to `context`.
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, `TooLarge`, `Randomness`.
    pub fn seal(&self, storage_key: &[u8], context: &[u8]) -> JsResult<Vec<u8>> {
        self.0.seal(&key(storage_key)?, context, &mut OsRng).js()
    }

    /// 0 when new, one more after every change.
    pub fn generation(&self) -> u64 {
        self.0.generation()
    }

    /// Decrypts `message` with `session` and installs the distribution it
    /// carries, all or nothing across both.
    ///
    /// # Errors
    ///
    /// The errors of `Session.decrypt`, then the distribution's parse
    /// errors, `GroupMismatch`, `GroupOwnerMismatch`, `InvalidSignature`,
    /// `GroupChainConflict`.
    #[wasm_bindgen(js_name = receiveDistribution)]
    pub fn receive_distribution(
        &mut self,
        session: &mut Session,
        message: &[u8],
    ) -> JsResult<String> {
        let message = Message::from_bytes(message).js()?;
        self.0
            .receive_distribution(&mut session.0, &message)
            .map(outcome)
            .js()
    }

    /// Installs the distribution in a plaintext from its owner's session.
    ///
    /// # Errors
    ///
    /// As `receiveDistribution`, after the decryption.
    pub fn install(&mut self, plaintext: &Plaintext) -> JsResult<String> {
        self.0.install(&plaintext.0).map(outcome).js()
    }

    /// Imports a distribution that did not come from its owner's session,
    /// marked unauthenticated.
    ///
    /// # Errors
    ///
    /// The parse errors, `GroupMismatch`, `InvalidSignature`,
    /// `GroupChainConflict`, `GroupStoreFull`.
    #[wasm_bindgen(js_name = importUnauthenticated)]
    pub fn import_unauthenticated(&mut self, distribution: &[u8]) -> JsResult<String> {
        let distribution = Zeroizing::new(distribution.to_vec());
        self.0
            .import_unauthenticated(&distribution)
            .map(outcome)
            .js()
    }

    /// Decrypts a group message.
    ///
    /// # Errors
    ///
    /// The parse errors, `UnknownGroupChain`, `GroupIndexOutOfRange`,
    /// `InvalidSignature`, `AuthenticationFailed`, `DuplicateMessage`.
    pub fn decrypt(&mut self, message: &[u8]) -> JsResult<GroupPlaintext> {
        let message = GroupMessage::from_bytes(message).js()?;
        self.0.decrypt(&message).map(GroupPlaintext).js()
    }

    /// Deletes every chain of `owner` (34 bytes); returns how many.
    ///
    /// # Errors
    ///
    /// The parse errors of `owner`.
    #[wasm_bindgen(js_name = removeOwner)]
    pub fn remove_owner(&mut self, owner: &[u8]) -> JsResult<u32> {
        let removed = self.0.remove_owner(&identity(owner)?);
        Ok(u32::try_from(removed).unwrap_or(u32::MAX))
    }

    /// How many chains the store holds.
    #[wasm_bindgen(getter)]
    pub fn size(&self) -> u32 {
        u32::try_from(self.0.len()).unwrap_or(u32::MAX)
    }
}
