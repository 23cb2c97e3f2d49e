//! A device: its identity, its prekeys, and the sessions it starts and
//! accepts.

use std::sync::{Arc, Mutex};

use sotto::{KeyAgreementPolicy, PreKeyMessage};
use sotto_bindings_common::{OsRng, count, storage_key};

use crate::error::{Result, lock};
use crate::keys::{IdentityKey, PublishedPreKey, VerifiedPreKeyBundle};
use crate::session::{Plaintext, Session};

/// What a device holds of one of its signed prekeys.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SignedPreKeyInfo {
    /// The prekey id.
    pub id: u32,
    /// Its creation time: the `now` passed when it was made.
    pub created: u64,
    /// How many base keys of prekey messages without a one-time prekey it
    /// recorded (at 1000 it accepts no more: rotate before).
    pub base_key_count: u64,
}

/// What a device holds of one of its last-resort KEM prekeys.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct KemPreKeyInfo {
    /// The prekey id.
    pub id: u32,
    /// Its creation time: the `now` passed when it was made.
    pub created: u64,
}

/// The new prekeys after [`Device::reset_prekeys_after_restore`]: publish
/// both, with new one-time prekeys.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ResetPreKeys {
    /// The new signed prekey.
    pub signed_prekey: PublishedPreKey,
    /// The new last-resort KEM prekey.
    pub kem_prekey: PublishedPreKey,
}

/// A session just accepted, with the first message's plaintext.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Accepted {
    /// The new session (save it, then the device).
    pub session: Arc<Session>,
    /// The first message, with the identity of its sender.
    pub plaintext: Arc<Plaintext>,
}

/// One device of a user: its identity key pair and prekey secrets.
///
/// Randomness comes from the operating system; time (`now`, for example
/// seconds since the Unix epoch) from the caller, and is only stored and
/// reported so that the app can expire old prekeys. Every call is all or
/// nothing: when it fails, the device is as it was.
#[derive(Debug, uniffi::Object)]
pub struct Device(pub(crate) Mutex<sotto::Device>);

impl Device {
    fn new(device: sotto::Device) -> Arc<Self> {
        Arc::new(Self(Mutex::new(device)))
    }

    fn accept_with(&self, message: Vec<u8>, policy: KeyAgreementPolicy) -> Result<Accepted> {
        let message = PreKeyMessage::from_vec(message)?;
        let mut device = lock(&self.0, "device")?;
        let (session, plaintext) =
            sotto::Session::accept_with_policy(&mut device, &message, policy)?;
        Ok(Accepted {
            session: Session::new(session),
            plaintext: Arc::new(Plaintext(plaintext)),
        })
    }

    fn initiate_with(
        &self,
        bundle: &VerifiedPreKeyBundle,
        policy: KeyAgreementPolicy,
    ) -> Result<Arc<Session>> {
        let device = lock(&self.0, "device")?;
        let session = sotto::Session::initiate_with_policy(&device, &mut OsRng, &bundle.0, policy)?;
        Ok(Session::new(session))
    }
}

#[uniffi::export]
impl Device {
    /// A new device: identity key, signed prekey 1 and last-resort KEM
    /// prekey 1, created at `now`.
    ///
    /// # Errors
    ///
    /// `Randomness`.
    #[uniffi::constructor]
    pub fn generate(now: u64) -> Result<Arc<Self>> {
        Ok(Self::new(sotto::Device::generate(&mut OsRng, now)?))
    }

    /// Restores a device from [`Device::to_bytes`].
    ///
    /// # Errors
    ///
    /// The parse errors (`Truncated`, `TrailingBytes`,
    /// `UnsupportedVersion`, `WrongType`, `InvalidEncoding`, `TooLarge`,
    /// `InvalidPublicKey`).
    #[uniffi::constructor]
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Arc<Self>> {
        Ok(Self::new(sotto::Device::from_bytes(&bytes)?))
    }

    /// Restores a device from [`Device::seal`], with the same storage key
    /// and context.
    ///
    /// # Errors
    ///
    /// `InvalidArgument` (a key that is not 32 bytes), `TooLarge` (a context
    /// over 1024 bytes), `AuthenticationFailed` (altered, or another key or
    /// context), then the parse errors.
    #[uniffi::constructor]
    pub fn unseal(sealed: Vec<u8>, storage_key: Vec<u8>, context: Vec<u8>) -> Result<Arc<Self>> {
        let key = self::storage_key(&storage_key)?;
        Ok(Self::new(sotto::Device::unseal(&sealed, &key, &context)?))
    }

    /// The device's plain saved state. It holds secret keys: prefer
    /// [`Device::seal`].
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        Ok(lock(&self.0, "device")?.to_bytes().to_vec())
    }

    /// The saved state encrypted under a 32-byte storage key and bound to
    /// `context` (for example the record's name in your database).
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, `TooLarge`, `Randomness`.
    pub fn seal(&self, storage_key: Vec<u8>, context: Vec<u8>) -> Result<Vec<u8>> {
        let key = self::storage_key(&storage_key)?;
        Ok(lock(&self.0, "device")?.seal(&key, &context, &mut OsRng)?)
    }

    /// 0 when new, one more after every call that changed the device:
    /// compare it after a restore to detect a rollback.
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn generation(&self) -> Result<u64> {
        Ok(lock(&self.0, "device")?.generation())
    }

    /// The device's public identity key.
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn identity_key(&self) -> Result<Arc<IdentityKey>> {
        Ok(IdentityKey::arc(lock(&self.0, "device")?.identity_key()))
    }

    /// The current signed prekey, to publish.
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn signed_prekey(&self) -> Result<PublishedPreKey> {
        Ok(PublishedPreKey::signed(
            &lock(&self.0, "device")?.signed_prekey(),
        ))
    }

    /// Every signed prekey the device holds, the current one last.
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn signed_prekeys(&self) -> Result<Vec<SignedPreKeyInfo>> {
        Ok(lock(&self.0, "device")?
            .signed_prekeys()
            .map(|info| SignedPreKeyInfo {
                id: info.prekey.id(),
                created: info.created,
                base_key_count: info.base_key_count as u64,
            })
            .collect())
    }

    /// Makes a new current signed prekey, created at `now`; the old one is
    /// kept for messages in flight (at most 4 are kept).
    ///
    /// # Errors
    ///
    /// `Randomness`, `TooManyPrekeys` (ids used up).
    pub fn rotate_signed_prekey(&self, now: u64) -> Result<PublishedPreKey> {
        let prekey = lock(&self.0, "device")?.rotate_signed_prekey(&mut OsRng, now)?;
        Ok(PublishedPreKey::signed(&prekey))
    }

    /// Deletes an old signed prekey.
    ///
    /// # Errors
    ///
    /// `UnknownSignedPrekey` (the current one, or not held).
    pub fn remove_signed_prekey(&self, id: u32) -> Result<()> {
        Ok(lock(&self.0, "device")?.remove_signed_prekey(id)?)
    }

    /// Makes `count` one-time prekeys, to publish.
    ///
    /// # Errors
    ///
    /// `TooManyPrekeys` (more than 1000 unused), `Randomness`.
    pub fn generate_one_time_prekeys(&self, count: u32) -> Result<Vec<PublishedPreKey>> {
        let count = self::count(count)?;
        let prekeys = lock(&self.0, "device")?.generate_one_time_prekeys(&mut OsRng, count)?;
        Ok(prekeys.iter().map(PublishedPreKey::one_time).collect())
    }

    /// How many one-time prekeys are unused.
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn one_time_prekey_count(&self) -> Result<u64> {
        Ok(lock(&self.0, "device")?.one_time_prekey_count() as u64)
    }

    /// The current last-resort KEM prekey, to publish.
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn last_resort_kem_prekey(&self) -> Result<PublishedPreKey> {
        Ok(PublishedPreKey::kem(
            &lock(&self.0, "device")?.last_resort_kem_prekey(),
        ))
    }

    /// Every last-resort KEM prekey the device holds, the current one last.
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn last_resort_kem_prekeys(&self) -> Result<Vec<KemPreKeyInfo>> {
        Ok(lock(&self.0, "device")?
            .last_resort_kem_prekeys()
            .map(|info| KemPreKeyInfo {
                id: info.id,
                created: info.created,
            })
            .collect())
    }

    /// Makes a new current last-resort KEM prekey, created at `now`.
    ///
    /// # Errors
    ///
    /// `Randomness`, `TooManyPrekeys`.
    pub fn rotate_last_resort_kem_prekey(&self, now: u64) -> Result<PublishedPreKey> {
        let prekey = lock(&self.0, "device")?.rotate_last_resort_kem_prekey(&mut OsRng, now)?;
        Ok(PublishedPreKey::kem(&prekey))
    }

    /// Deletes an old last-resort KEM prekey.
    ///
    /// # Errors
    ///
    /// `UnknownKemPrekey` (the current one, or not held).
    pub fn remove_last_resort_kem_prekey(&self, id: u32) -> Result<()> {
        Ok(lock(&self.0, "device")?.remove_last_resort_kem_prekey(id)?)
    }

    /// Makes `count` one-time KEM prekeys, to publish.
    ///
    /// # Errors
    ///
    /// `TooManyPrekeys` (more than 100 unused), `Randomness`.
    pub fn generate_one_time_kem_prekeys(&self, count: u32) -> Result<Vec<PublishedPreKey>> {
        let count = self::count(count)?;
        let prekeys = lock(&self.0, "device")?.generate_one_time_kem_prekeys(&mut OsRng, count)?;
        Ok(prekeys.iter().map(PublishedPreKey::kem).collect())
    }

    /// How many one-time KEM prekeys are unused.
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn one_time_kem_prekey_count(&self) -> Result<u64> {
        Ok(lock(&self.0, "device")?.one_time_kem_prekey_count() as u64)
    }

    /// After restoring an older saved state: replaces every prekey (the
    /// server may have handed out ones this state does not know were used)
    /// and moves the generation past `last_generation`, the last one you
    /// recorded.
    ///
    /// # Errors
    ///
    /// `Randomness`, `TooManyPrekeys`.
    pub fn reset_prekeys_after_restore(
        &self,
        now: u64,
        last_generation: u64,
    ) -> Result<ResetPreKeys> {
        let (spk, kem) = lock(&self.0, "device")?.reset_prekeys_after_restore(
            &mut OsRng,
            now,
            last_generation,
        )?;
        Ok(ResetPreKeys {
            signed_prekey: PublishedPreKey::signed(&spk),
            kem_prekey: PublishedPreKey::kem(&kem),
        })
    }

    /// Starts a session with PQXDH from a verified bundle; its first
    /// messages are prekey messages until the peer replies.
    ///
    /// # Errors
    ///
    /// `PostQuantumRequired` (the bundle has no KEM prekey),
    /// `NonContributoryKey`, `Randomness`.
    pub fn initiate(&self, bundle: Arc<VerifiedPreKeyBundle>) -> Result<Arc<Session>> {
        self.initiate_with(&bundle, KeyAgreementPolicy::PostQuantumRequired)
    }

    /// As [`Device::initiate`], and falls back to classical X3DH if the
    /// bundle has no KEM prekey. Only for a peer known not to support
    /// ML-KEM, never for one that once offered a KEM prekey.
    ///
    /// # Errors
    ///
    /// `NonContributoryKey`, `Randomness`.
    pub fn initiate_allow_classical(
        &self,
        bundle: Arc<VerifiedPreKeyBundle>,
    ) -> Result<Arc<Session>> {
        self.initiate_with(&bundle, KeyAgreementPolicy::ClassicalAllowed)
    }

    /// Accepts a prekey message (PQXDH): the new session and the first
    /// plaintext. Uses up the one-time prekeys it names. Check the
    /// plaintext's sender against the contact you expect.
    ///
    /// # Errors
    ///
    /// The parse errors; `PostQuantumRequired`, `UnknownSignedPrekey`,
    /// `UnknownOneTimePrekey`, `UnknownKemPrekey`, `DuplicatePrekeyMessage`,
    /// `SignedPrekeyExhausted`, `NonContributoryKey`,
    /// `AuthenticationFailed`.
    pub fn accept(&self, message: Vec<u8>) -> Result<Accepted> {
        self.accept_with(message, KeyAgreementPolicy::PostQuantumRequired)
    }

    /// As [`Device::accept`], and accepts a classical X3DH message too.
    ///
    /// # Errors
    ///
    /// As [`Device::accept`], without `PostQuantumRequired`.
    pub fn accept_allow_classical(&self, message: Vec<u8>) -> Result<Accepted> {
        self.accept_with(message, KeyAgreementPolicy::ClassicalAllowed)
    }
}
