//! The SQLite store (`sotto-store`, SPEC §17): the local device, a peer
//! record per contact, group sessions, the inbox and the outbox, each
//! operation one committed transaction. Not in the WebAssembly package:
//! SQLite does not build for `wasm32-unknown-unknown`.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use sotto::sessions::DeviceId;
use sotto_bindings_common::{BindingError, ErrorCode, OsRng};
use sotto_store as store;
use zeroize::Zeroizing;

use crate::error::{Result, SottoError};
use crate::keys::{IdentityKey, PreKeyBundle, PublishedPreKey};
use crate::sessions::{
    Action, DecryptFailure, DeviceEntry, DeviceListChanges, PeerDeviceInfo, RetryHint, SendPlan,
    Unusable, user_id,
};

/// The code of a store error: the store's own (200 and up), the protocol's
/// for a wrapped protocol or session-layer error.
fn store_code(error: &store::Error) -> ErrorCode {
    use store::Error as E;
    match error {
        E::WrongKey => ErrorCode::WrongKey,
        E::DatabaseCorrupt => ErrorCode::DatabaseCorrupt,
        E::DiskFull => ErrorCode::DiskFull,
        E::Busy => ErrorCode::Busy,
        E::Conflict { .. } => ErrorCode::Conflict,
        E::TruncatedValue { .. } => ErrorCode::TruncatedValue,
        E::CorruptValue { .. } => ErrorCode::CorruptValue,
        E::MisplacedValue { .. } => ErrorCode::MisplacedValue,
        E::NotFound { .. } => ErrorCode::NotFound,
        E::AlreadyExists { .. } => ErrorCode::AlreadyExists,
        E::UnsupportedSchema { .. } => ErrorCode::UnsupportedSchema,
        // The same mistake as the C ABI's and the other bindings' unusable
        // arguments (an empty or overlong name).
        E::InvalidInput => ErrorCode::InvalidArgument,
        E::Database { .. } => ErrorCode::Database,
        E::Protocol(e) => ErrorCode::from_core(e),
        E::Session(failure) => ErrorCode::from_core(&failure.error),
        // The store's error is non-exhaustive: a variant added later has
        // the generic code until it gets one of its own (in the C ABI).
        _ => ErrorCode::ProtocolOther,
    }
}

impl From<store::Error> for SottoError {
    fn from(error: store::Error) -> Self {
        // The store's messages carry record names, ids and result codes,
        // never a secret (SPEC §17.6).
        BindingError::new(store_code(&error), error.to_string()).into()
    }
}

fn array32(bytes: &[u8], what: &str) -> Result<[u8; 32]> {
    bytes.try_into().map_err(|_| {
        BindingError::invalid(format!("{what} must be 32 bytes, got {}", bytes.len())).into()
    })
}

fn store_key(bytes: &[u8]) -> Result<store::StoreKey> {
    let key = Zeroizing::new(array32(bytes, "store key")?);
    Ok(store::StoreKey::from_bytes(*key))
}

fn unknown_kind(what: &str) -> SottoError {
    BindingError::new(
        ErrorCode::ProtocolOther,
        format!("{what} of a kind this binding does not know"),
    )
    .into()
}

/// A fresh random 32-byte key for [`Store::open`]. Keep it in the
/// platform's key store (Android Keystore, the iOS keychain), never next to
/// the database.
///
/// # Errors
///
/// `Randomness`.
#[uniffi::export]
pub fn generate_store_key() -> Result<Vec<u8>> {
    let mut key = Zeroizing::new([0u8; 32]);
    rand_core::TryRng::try_fill_bytes(&mut OsRng, &mut *key)
        .map_err(|_| BindingError::new(ErrorCode::Randomness, "the OS RNG failed"))?;
    Ok(key.to_vec())
}

/// What an outbox entry carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum OutboxKind {
    /// Public prekeys to upload to the server (`prekey_upload_from_bytes`).
    PreKeys,
    /// A pairwise message for one device of a contact.
    Message,
    /// A group message for every member.
    GroupMessage,
}

/// A committed outbox entry: send it, then `Store.ack_sent` it. It stays in
/// `Store.outbox` until then, across crashes; sending it twice is harmless.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct OutboxEntry {
    /// The entry's id, never reused in this database.
    pub id: u64,
    /// What it carries.
    pub kind: OutboxKind,
    /// The user or group it goes to (empty for prekeys).
    pub destination: Vec<u8>,
    /// The destination's device, where it goes to one device.
    pub device: Option<u32>,
    /// The group it is about (a group message, or a distribution): if the
    /// peer asks for it again, answer with `Store.distribute_group`.
    pub group: Option<Vec<u8>>,
    /// The bytes to send.
    pub payload: Vec<u8>,
    /// The application's reference given to the operation.
    pub app_ref: Option<u64>,
}

impl TryFrom<store::Outgoing> for OutboxEntry {
    type Error = SottoError;

    fn try_from(o: store::Outgoing) -> Result<Self> {
        let kind = match o.kind {
            store::OutgoingKind::PreKeys => OutboxKind::PreKeys,
            store::OutgoingKind::Message => OutboxKind::Message,
            store::OutgoingKind::GroupMessage => OutboxKind::GroupMessage,
            _ => return Err(unknown_kind("an outbox entry")),
        };
        Ok(Self {
            id: o.id,
            kind,
            destination: o.destination,
            device: o.device,
            group: o.group.map(|g| g.to_vec()),
            payload: o.payload,
            app_ref: o.app_ref,
        })
    }
}

fn outbox_entries(entries: Vec<store::Outgoing>) -> Result<Vec<OutboxEntry>> {
    entries.into_iter().map(OutboxEntry::try_from).collect()
}

/// What an inbox entry carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum InboxKind {
    /// A decrypted payload, pairwise or from a group.
    Message,
    /// A peer's retry request: resend what `retry_hint` names
    /// (`Store.resend_to_device`), then acknowledge the entry.
    RetryRequest,
}

/// A committed inbox entry: show it, then `Store.ack_read` it. It stays in
/// `Store.inbox` until then, across crashes; its plaintext is sealed in
/// the database.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct InboxEntry {
    /// The entry's id, never reused in this database.
    pub id: u64,
    /// What it carries.
    pub kind: InboxKind,
    /// The user it came from.
    pub source: Vec<u8>,
    /// The sending device, where known.
    pub device: Option<u32>,
    /// The group, for a group message.
    pub group: Option<Vec<u8>>,
    /// The decrypted bytes (for a retry request, its hint's encoding).
    pub plaintext: Vec<u8>,
    /// For a retry request, the message it asks for.
    pub retry_hint: Option<RetryHint>,
}

impl TryFrom<store::Incoming> for InboxEntry {
    type Error = SottoError;

    fn try_from(i: store::Incoming) -> Result<Self> {
        let kind = match i.kind {
            store::IncomingKind::Message => InboxKind::Message,
            store::IncomingKind::RetryRequest => InboxKind::RetryRequest,
            _ => return Err(unknown_kind("an inbox entry")),
        };
        Ok(Self {
            id: i.id,
            kind,
            retry_hint: i.retry_hint().map(RetryHint::from),
            source: i.source.clone(),
            device: i.device,
            group: i.group.map(|g| g.to_vec()),
            plaintext: i.plaintext.to_vec(),
        })
    }
}

/// What a message given to `Store.receive_from` or `Store.group_receive`
/// turned out to be. Everything but `Undecryptable` is committed.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum Delivered {
    /// An application payload, in the inbox.
    Message {
        /// The inbox entry.
        entry: InboxEntry,
    },
    /// A sender key distribution, installed in the group's session.
    Distribution {
        /// The group.
        group: Vec<u8>,
    },
    /// The peer could not decrypt the message `hint` names: resend it with
    /// `Store.resend_to_device`, then acknowledge `entry`.
    RetryRequest {
        /// The message the peer asks for.
        hint: RetryHint,
        /// The inbox entry that keeps the request until then.
        entry: InboxEntry,
    },
    /// The peer asked for the local device's chain of a group; the answer
    /// is in the outbox if the peer is a member.
    DistributionRequest {
        /// The group.
        group: Vec<u8>,
        /// The committed answer, if any.
        answer: Option<OutboxEntry>,
    },
    /// The session layer could not decrypt the message (SPEC §16.6):
    /// nothing was committed; take `action`. `code` is the protocol's own
    /// (the C ABI's), as in `DecryptFailure`.
    Undecryptable {
        /// What to do.
        action: Action,
        /// The C ABI's code of the error that decided it.
        code: i32,
        /// The error's name (`"DuplicateMessage"`, ...).
        kind: String,
        /// What failed, without secrets.
        detail: String,
    },
}

impl TryFrom<store::Delivered> for Delivered {
    type Error = SottoError;

    fn try_from(d: store::Delivered) -> Result<Self> {
        Ok(match d {
            store::Delivered::Message(entry) => Self::Message {
                entry: entry.try_into()?,
            },
            store::Delivered::Distribution { group } => Self::Distribution {
                group: group.to_vec(),
            },
            store::Delivered::RetryRequest { hint, entry } => Self::RetryRequest {
                hint: hint.into(),
                entry: entry.try_into()?,
            },
            store::Delivered::DistributionRequest { group, answer } => Self::DistributionRequest {
                group: group.to_vec(),
                answer: answer.map(OutboxEntry::try_from).transpose()?,
            },
            _ => return Err(unknown_kind("a delivery")),
        })
    }
}

/// A receive's result: the session layer's failure becomes
/// [`Delivered::Undecryptable`], every other error an exception.
fn delivered(result: store::Result<store::Delivered>) -> Result<Delivered> {
    match result {
        Ok(d) => d.try_into(),
        Err(store::Error::Session(failure)) => {
            let DecryptFailure::Failed {
                action,
                code,
                kind,
                detail,
            } = DecryptFailure::from(failure);
            Ok(Delivered::Undecryptable {
                action,
                code,
                kind,
                detail,
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// Public prekeys to publish, as the store puts them in the outbox
/// (`OutboxKind.PreKeys`): what the application uploads to its server, and
/// what a server assembles bundles from.
#[derive(Debug, Clone, uniffi::Record)]
pub struct PreKeyUpload {
    /// The device's identity, under which every signature verifies.
    pub identity: Arc<IdentityKey>,
    /// The server drops every prekey it holds for the device first (a reset
    /// after a restore).
    pub replace: bool,
    /// A new current signed prekey.
    pub signed_prekey: Option<PublishedPreKey>,
    /// A new current last-resort KEM prekey.
    pub last_resort_kem_prekey: Option<PublishedPreKey>,
    /// New one-time prekeys, ids ascending.
    pub one_time_prekeys: Vec<PublishedPreKey>,
    /// New one-time KEM prekeys, ids ascending.
    pub one_time_kem_prekeys: Vec<PublishedPreKey>,
}

/// Parses the payload of a `PreKeys` outbox entry.
///
/// # Errors
///
/// The parse errors (`Truncated`, `TrailingBytes`, `WrongType`,
/// `InvalidEncoding`, `InvalidPublicKey`, ...).
#[uniffi::export]
pub fn prekey_upload_from_bytes(bytes: Vec<u8>) -> Result<PreKeyUpload> {
    let up = store::PreKeyUpload::from_bytes(&bytes)?;
    Ok(PreKeyUpload {
        identity: IdentityKey::arc(&up.identity),
        replace: up.replace,
        signed_prekey: up.signed_prekey.as_ref().map(PublishedPreKey::signed),
        last_resort_kem_prekey: up.last_resort_kem_prekey.as_ref().map(PublishedPreKey::kem),
        one_time_prekeys: up
            .one_time_prekeys
            .iter()
            .map(PublishedPreKey::one_time)
            .collect(),
        one_time_kem_prekeys: up
            .one_time_kem_prekeys
            .iter()
            .map(PublishedPreKey::kem)
            .collect(),
    })
}

/// What the store reports about the local device.
#[derive(Debug, Clone, uniffi::Record)]
pub struct DeviceStatus {
    /// The device's identity.
    pub identity: Arc<IdentityKey>,
    /// Its generation (SPEC §10.1).
    pub generation: u64,
    /// The current signed prekey's id.
    pub signed_prekey_id: u32,
    /// The current last-resort KEM prekey's id.
    pub last_resort_kem_prekey_id: u32,
    /// Unused one-time prekeys held.
    pub one_time_prekeys: u64,
    /// Unused one-time KEM prekeys held.
    pub one_time_kem_prekeys: u64,
}

/// The user and device id set with `Store.set_account`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Account {
    /// The local user's id.
    pub user: Vec<u8>,
    /// This device's id.
    pub device: u32,
}

/// What the store reports about a user's record.
#[derive(Debug, Clone, uniffi::Record)]
pub struct PeerStatus {
    /// The record's generation.
    pub generation: u64,
    /// Its devices, in id order.
    pub devices: Vec<PeerDeviceInfo>,
}

/// What an encryption to every device of a user committed.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SentToUser {
    /// One outbox entry per device that got a message.
    pub outgoing: Vec<OutboxEntry>,
    /// The listed devices that got none, and why.
    pub unusable: Vec<Unusable>,
}

/// A member device that got no distribution, and why.
#[derive(Debug, Clone, uniffi::Record)]
pub struct MemberUnusable {
    /// The member.
    pub user: Vec<u8>,
    /// The device and the reason.
    pub unusable: Unusable,
}

/// What a group operation committed: the local chain's distribution for
/// every member device, in the outbox.
#[derive(Debug, Clone, uniffi::Record)]
pub struct GroupUpdate {
    /// The group.
    pub group: Vec<u8>,
    /// One outbox entry per member device with a session.
    pub outgoing: Vec<OutboxEntry>,
    /// Member devices that got none, and why.
    pub unusable: Vec<MemberUnusable>,
}

impl TryFrom<store::GroupUpdate> for GroupUpdate {
    type Error = SottoError;

    fn try_from(u: store::GroupUpdate) -> Result<Self> {
        Ok(Self {
            group: u.group.to_vec(),
            outgoing: outbox_entries(u.outgoing)?,
            unusable: u
                .unusable
                .into_iter()
                .map(|(user, unusable)| MemberUnusable {
                    user: user.as_bytes().to_vec(),
                    unusable: unusable.into(),
                })
                .collect(),
        })
    }
}

/// What the store reports about a group.
#[derive(Debug, Clone, uniffi::Record)]
pub struct GroupStatus {
    /// The group session's generation.
    pub generation: u64,
    /// The members, the local user included.
    pub members: Vec<Vec<u8>>,
}

/// What `Store.expire` deleted in one user's record.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ExpiredUser {
    /// The user.
    pub user: Vec<u8>,
    /// Stale devices deleted, with their sessions.
    pub devices: Vec<u32>,
    /// Archived sessions deleted (of the devices that stay).
    pub sessions: u64,
}

/// What `Store.after_restore` did to a stale database.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Restored {
    /// The prekey upload replacing everything the server holds for the
    /// device, committed to the outbox.
    pub upload: OutboxEntry,
    /// Records whose sessions were all deleted.
    pub records: u64,
    /// Groups whose local chain was replaced: distribute it again.
    pub groups: Vec<Vec<u8>>,
}

/// What this store handle saw.
#[derive(Debug, Clone, uniffi::Record)]
pub struct StoreStats {
    /// Operations committed.
    pub committed: u64,
    /// Attempts that found a record changed under them and were retried.
    pub conflicts: u64,
    /// Operations that ended in the locked attempt.
    pub locked_attempts: u64,
    /// Attempts that met a busy database and were retried.
    pub busy_retries: u64,
}

/// A sotto store on one SQLite database file (SPEC §17). Every operation
/// is one transaction that commits before it returns; what it makes waits
/// in the outbox and the inbox until acknowledged. Several processes may
/// open the same file.
#[derive(Debug, uniffi::Object)]
pub struct Store(Mutex<Option<store::Store>>);

impl Store {
    fn with<T>(&self, f: impl FnOnce(&mut store::Store) -> store::Result<T>) -> Result<T> {
        let mut guard = self.lock()?;
        let inner = guard
            .as_mut()
            .ok_or_else(|| BindingError::invalid("the store is closed"))?;
        Ok(f(inner)?)
    }

    fn lock(&self) -> Result<MutexGuard<'_, Option<store::Store>>> {
        crate::error::lock(&self.0, "store")
    }
}

fn group32(group: &[u8]) -> Result<[u8; 32]> {
    array32(group, "group id")
}

fn users(users: &[Vec<u8>]) -> Result<Vec<sotto::sessions::UserId>> {
    users.iter().map(|u| user_id(u)).collect()
}

#[uniffi::export]
impl Store {
    /// Opens the database at `path`, creating it if it does not exist,
    /// under the 32-byte `store_key` (`generate_store_key`).
    ///
    /// # Errors
    ///
    /// `InvalidArgument` (key length), `WrongKey`, `DatabaseCorrupt`,
    /// `UnsupportedSchema`, `Busy`, `Database`.
    #[uniffi::constructor]
    pub fn open(path: String, store_key: Vec<u8>) -> Result<Arc<Self>> {
        let store_key = Zeroizing::new(store_key);
        let store = store::Store::open(path, &self::store_key(&store_key)?)?;
        Ok(Arc::new(Self(Mutex::new(Some(store)))))
    }

    /// As `open`, with the busy timeout and the attempts an operation makes
    /// against other connections (defaults: 5,000 ms, 3, true).
    ///
    /// # Errors
    ///
    /// As `open`.
    #[uniffi::constructor]
    pub fn open_with(
        path: String,
        store_key: Vec<u8>,
        busy_timeout_ms: u64,
        optimistic_attempts: u32,
        locked_fallback: bool,
    ) -> Result<Arc<Self>> {
        let store_key = Zeroizing::new(store_key);
        let options = store::Options::default()
            .with_busy_timeout(Duration::from_millis(busy_timeout_ms))
            .with_attempts(optimistic_attempts, locked_fallback);
        let store = store::Store::open_with(path, &self::store_key(&store_key)?, options)?;
        Ok(Arc::new(Self(Mutex::new(Some(store)))))
    }

    /// Closes the database now (the object is closed when freed anyway);
    /// every later call fails with `InvalidArgument`.
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn close_database(&self) -> Result<()> {
        drop(self.lock()?.take());
        Ok(())
    }

    /// Creates the local device and commits its first prekey upload to the
    /// outbox.
    ///
    /// # Errors
    ///
    /// `AlreadyExists`, `Randomness`, the store's errors.
    pub fn create_device(&self, now: u64) -> Result<OutboxEntry> {
        self.with(|s| s.create_device(now))?.try_into()
    }

    /// The local device's identity, generation and prekey counts.
    ///
    /// # Errors
    ///
    /// `NotFound` (no device yet), the store's errors.
    pub fn device_status(&self) -> Result<DeviceStatus> {
        let d = self.with(|s| s.device_status())?;
        Ok(DeviceStatus {
            identity: IdentityKey::arc(&d.identity),
            generation: d.generation,
            signed_prekey_id: d.signed_prekey_id,
            last_resort_kem_prekey_id: d.last_resort_kem_prekey_id,
            one_time_prekeys: d.one_time_prekeys as u64,
            one_time_kem_prekeys: d.one_time_kem_prekeys as u64,
        })
    }

    /// Rotates the signed prekey; the upload is in the outbox.
    ///
    /// # Errors
    ///
    /// `NotFound`, `TooManyPrekeys`, `Randomness`, the store's errors.
    pub fn rotate_signed_prekey(&self, now: u64) -> Result<OutboxEntry> {
        self.with(|s| s.rotate_signed_prekey(now))?.try_into()
    }

    /// Rotates the last-resort KEM prekey; the upload is in the outbox.
    ///
    /// # Errors
    ///
    /// As `rotate_signed_prekey`.
    pub fn rotate_last_resort_kem_prekey(&self, now: u64) -> Result<OutboxEntry> {
        self.with(|s| s.rotate_last_resort_kem_prekey(now))?
            .try_into()
    }

    /// Tops the one-time prekeys up to `one_time` and the one-time KEM
    /// prekeys up to `one_time_kem`; `None` if nothing was missing.
    ///
    /// # Errors
    ///
    /// As `rotate_signed_prekey`.
    pub fn replenish_prekeys(
        &self,
        one_time: u32,
        one_time_kem: u32,
    ) -> Result<Option<OutboxEntry>> {
        let one_time = sotto_bindings_common::count(one_time)?;
        let one_time_kem = sotto_bindings_common::count(one_time_kem)?;
        self.with(|s| s.replenish_prekeys(one_time, one_time_kem))?
            .map(OutboxEntry::try_from)
            .transpose()
    }

    /// Records the local user and this device's id (once per database).
    ///
    /// # Errors
    ///
    /// `InvalidEncoding` (empty or overlong user id), `AlreadyExists`,
    /// `NotFound` (no device), the store's errors.
    pub fn set_account(&self, user: Vec<u8>, device: u32) -> Result<()> {
        let user = user_id(&user)?;
        self.with(|s| s.set_account(&user, DeviceId(device)))
    }

    /// The account set with `set_account`, if any.
    ///
    /// # Errors
    ///
    /// The store's errors.
    pub fn account(&self) -> Result<Option<Account>> {
        Ok(self.with(|s| s.account())?.map(|(user, device)| Account {
            user: user.as_bytes().to_vec(),
            device: device.0,
        }))
    }

    /// Takes `user`'s device list as the server returned it at `now`
    /// (creating the user's record the first time).
    ///
    /// # Errors
    ///
    /// `InvalidDeviceList`, the store's errors.
    pub fn update_devices(
        &self,
        user: Vec<u8>,
        list: Vec<DeviceEntry>,
        now: u64,
    ) -> Result<DeviceListChanges> {
        let user = user_id(&user)?;
        let list: Vec<_> = list
            .iter()
            .map(|e| (DeviceId(e.device), e.identity.0))
            .collect();
        Ok(self.with(|s| s.update_devices(&user, &list, now))?.into())
    }

    /// Trusts the new identity of `user`'s `device` once the user accepted
    /// it.
    ///
    /// # Errors
    ///
    /// `NotFound`, `UnknownDevice`, `IdentityMismatch`, the store's errors.
    pub fn acknowledge_identity(
        &self,
        user: Vec<u8>,
        device: u32,
        identity: Arc<IdentityKey>,
    ) -> Result<()> {
        let user = user_id(&user)?;
        self.with(|s| s.acknowledge_identity(&user, DeviceId(device), &identity.0))
    }

    /// Which of `user`'s devices a message can reach now, and which need a
    /// bundle (`add_bundle`).
    ///
    /// # Errors
    ///
    /// `NotFound`, the store's errors.
    pub fn plan_send(&self, user: Vec<u8>, now: u64) -> Result<SendPlan> {
        let user = user_id(&user)?;
        Ok(self.with(|s| s.plan_send(&user, now))?.into())
    }

    /// Starts a session with `user`'s `device` from its bundle.
    ///
    /// # Errors
    ///
    /// `NotFound`, `IdentityMismatch`, `UnknownDevice`,
    /// `IdentityChangePending`, `InvalidSignature`, `PostQuantumRequired`,
    /// `Randomness`, the store's errors.
    pub fn add_bundle(
        &self,
        user: Vec<u8>,
        device: u32,
        bundle: Arc<PreKeyBundle>,
        now: u64,
    ) -> Result<()> {
        let user = user_id(&user)?;
        self.with(|s| s.add_bundle(&user, DeviceId(device), bundle.0.clone(), now))
    }

    /// Encrypts `payload` for every device of `user` with a session and
    /// commits the messages to the outbox.
    ///
    /// # Errors
    ///
    /// `NotFound`, `PlaintextTooLarge`, `Randomness`, the store's errors.
    pub fn send_to_user(
        &self,
        user: Vec<u8>,
        payload: Vec<u8>,
        app_ref: Option<u64>,
    ) -> Result<SentToUser> {
        let user = user_id(&user)?;
        let payload = Zeroizing::new(payload);
        let sent = self.with(|s| s.send_to_user(&user, &payload, app_ref))?;
        Ok(SentToUser {
            outgoing: outbox_entries(sent.outgoing)?,
            unusable: sent.unusable.into_iter().map(Unusable::from).collect(),
        })
    }

    /// Encrypts `payload` for `user`'s `device` alone (the answer to a
    /// retry request).
    ///
    /// # Errors
    ///
    /// `NotFound`, `UnknownDevice`, `NoSession`, `IdentityChangePending`,
    /// `PlaintextTooLarge`, `Randomness`, the store's errors.
    pub fn resend_to_device(
        &self,
        user: Vec<u8>,
        device: u32,
        payload: Vec<u8>,
        app_ref: Option<u64>,
    ) -> Result<OutboxEntry> {
        let user = user_id(&user)?;
        let payload = Zeroizing::new(payload);
        self.with(|s| s.resend_to_device(&user, DeviceId(device), &payload, app_ref))?
            .try_into()
    }

    /// Decrypts a pairwise message from `user`'s `device` and commits what
    /// it was. A message the session layer cannot decrypt is
    /// `Delivered.Undecryptable` (nothing committed), not an exception.
    ///
    /// # Errors
    ///
    /// `NotFound` (no record of `user`), the parse errors of `message`, the
    /// store's errors.
    pub fn receive_from(
        &self,
        user: Vec<u8>,
        device: u32,
        message: Vec<u8>,
        now: u64,
    ) -> Result<Delivered> {
        let user = user_id(&user)?;
        let mut guard = self.lock()?;
        let inner = guard
            .as_mut()
            .ok_or_else(|| BindingError::invalid("the store is closed"))?;
        delivered(inner.receive_from(&user, DeviceId(device), &message, now))
    }

    /// What the store holds about `user`, if anything.
    ///
    /// # Errors
    ///
    /// The store's errors.
    pub fn peer_status(&self, user: Vec<u8>) -> Result<Option<PeerStatus>> {
        let user = user_id(&user)?;
        Ok(self.with(|s| s.peer_status(&user))?.map(|p| PeerStatus {
            generation: p.generation,
            devices: p.devices.iter().map(PeerDeviceInfo::from).collect(),
        }))
    }

    /// Deletes old stale devices and archived sessions in every record.
    ///
    /// # Errors
    ///
    /// The store's errors.
    pub fn expire(&self, now: u64) -> Result<Vec<ExpiredUser>> {
        Ok(self
            .with(|s| s.expire(now))?
            .into_iter()
            .map(|(user, e)| ExpiredUser {
                user: user.as_bytes().to_vec(),
                devices: e.devices.into_iter().map(|d| d.0).collect(),
                sessions: e.sessions as u64,
            })
            .collect())
    }

    /// Asks `user`'s `device` to resend what `hint` names (the answer to
    /// `Action.RequestRetry`); the request is in the outbox.
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, `NotFound`, `UnknownDevice`, `NoSession`,
    /// `RecoveryRateLimited`, `Randomness`, the store's errors.
    pub fn request_retry(
        &self,
        user: Vec<u8>,
        device: u32,
        hint: RetryHint,
        now: u64,
    ) -> Result<OutboxEntry> {
        let user = user_id(&user)?;
        let hint = hint.to_core()?;
        self.with(|s| s.request_retry(&user, DeviceId(device), &hint, now))?
            .try_into()
    }

    /// Starts a new session with `user`'s `device` from its bundle and asks
    /// it to resend what `hint` names (the answer to
    /// `Action.StartNewSession`).
    ///
    /// # Errors
    ///
    /// As `add_bundle` and `request_retry`.
    pub fn start_new_session(
        &self,
        user: Vec<u8>,
        device: u32,
        bundle: Arc<PreKeyBundle>,
        hint: RetryHint,
        now: u64,
    ) -> Result<OutboxEntry> {
        let user = user_id(&user)?;
        let hint = hint.to_core()?;
        self.with(|s| s.start_new_session(&user, DeviceId(device), bundle.0.clone(), &hint, now))?
            .try_into()
    }

    /// Makes (or joins) the group with `members` and hands the local chain
    /// to every member device.
    ///
    /// # Errors
    ///
    /// `InvalidArgument` (group id), `AlreadyExists`, `NotFound`,
    /// `TooManyGroupMembers`, the store's errors.
    pub fn create_group(&self, group: Vec<u8>, members: Vec<Vec<u8>>) -> Result<GroupUpdate> {
        let group = group32(&group)?;
        let members = users(&members)?;
        self.with(|s| s.create_group(&group, &members))?.try_into()
    }

    /// The group's generation and members, if the store holds it.
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, the store's errors.
    pub fn group_status(&self, group: Vec<u8>) -> Result<Option<GroupStatus>> {
        let group = group32(&group)?;
        Ok(self.with(|s| s.group_status(&group))?.map(|g| GroupStatus {
            generation: g.generation,
            members: g.members.iter().map(|u| u.as_bytes().to_vec()).collect(),
        }))
    }

    /// Encrypts `payload` for the group; the message is in the outbox.
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, `NotFound`, `PlaintextTooLarge`,
    /// `ChainExhausted`, the store's errors.
    pub fn group_send(
        &self,
        group: Vec<u8>,
        payload: Vec<u8>,
        app_ref: Option<u64>,
    ) -> Result<OutboxEntry> {
        let group = group32(&group)?;
        let payload = Zeroizing::new(payload);
        self.with(|s| s.group_send(&group, &payload, app_ref))?
            .try_into()
    }

    /// Decrypts a group message from `from`: `Delivered.Message` (in the
    /// inbox) or `Delivered.Undecryptable` (nothing committed; for a chain
    /// not installed yet, keep the message and give it again).
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, `NotFound`, `IdentityMismatch`, the parse errors,
    /// the store's errors.
    pub fn group_receive(
        &self,
        group: Vec<u8>,
        from: Vec<u8>,
        message: Vec<u8>,
    ) -> Result<Delivered> {
        let group = group32(&group)?;
        let from = user_id(&from)?;
        let mut guard = self.lock()?;
        let inner = guard
            .as_mut()
            .ok_or_else(|| BindingError::invalid("the store is closed"))?;
        delivered(
            inner
                .group_receive(&group, &from, &message)
                .map(store::Delivered::Message),
        )
    }

    /// Removes `user` from the group, replaces the local chain and hands
    /// it to the remaining members.
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, `NotFound`, `NotGroupMember`, the store's errors.
    pub fn remove_from_group(&self, group: Vec<u8>, user: Vec<u8>) -> Result<GroupUpdate> {
        let group = group32(&group)?;
        let user = user_id(&user)?;
        self.with(|s| s.remove_from_group(&group, &user))?
            .try_into()
    }

    /// Adds `user` to the group and hands it the local chain.
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, `NotFound`, `TooManyGroupMembers`, the store's
    /// errors.
    pub fn add_to_group(&self, group: Vec<u8>, user: Vec<u8>) -> Result<GroupUpdate> {
        let group = group32(&group)?;
        let user = user_id(&user)?;
        self.with(|s| s.add_to_group(&group, &user))?.try_into()
    }

    /// Hands the local chain again to every device of `to` (members).
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, `NotFound`, `NotGroupMember`, the store's errors.
    pub fn distribute_group(&self, group: Vec<u8>, to: Vec<Vec<u8>>) -> Result<GroupUpdate> {
        let group = group32(&group)?;
        let to = users(&to)?;
        self.with(|s| s.distribute_group(&group, &to))?.try_into()
    }

    /// Replaces the local chain and hands the new one to every member.
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, `NotFound`, the store's errors.
    pub fn rotate_group(&self, group: Vec<u8>) -> Result<GroupUpdate> {
        let group = group32(&group)?;
        self.with(|s| s.rotate_group(&group))?.try_into()
    }

    /// Asks `user`'s `device` for its chain of the group.
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, `NotFound`, `NotGroupMember`, `NoSession`, the
    /// store's errors.
    pub fn request_distribution(
        &self,
        group: Vec<u8>,
        user: Vec<u8>,
        device: u32,
    ) -> Result<OutboxEntry> {
        let group = group32(&group)?;
        let user = user_id(&user)?;
        self.with(|s| s.request_distribution(&group, &user, DeviceId(device)))?
            .try_into()
    }

    /// Every outbox entry not yet acknowledged, oldest first.
    ///
    /// # Errors
    ///
    /// The store's errors.
    pub fn outbox(&self) -> Result<Vec<OutboxEntry>> {
        outbox_entries(self.with(|s| s.outbox())?)
    }

    /// Acknowledges a sent outbox entry; `false` if it was gone already.
    ///
    /// # Errors
    ///
    /// The store's errors.
    pub fn ack_sent(&self, id: u64) -> Result<bool> {
        self.with(|s| s.ack_sent(id))
    }

    /// Every inbox entry not yet acknowledged, oldest first.
    ///
    /// # Errors
    ///
    /// `CorruptValue` (an altered entry), the store's errors.
    pub fn inbox(&self) -> Result<Vec<InboxEntry>> {
        self.with(|s| s.inbox())?
            .into_iter()
            .map(InboxEntry::try_from)
            .collect()
    }

    /// Acknowledges a read inbox entry; `false` if it was gone already.
    ///
    /// # Errors
    ///
    /// The store's errors.
    pub fn ack_read(&self, id: u64) -> Result<bool> {
        self.with(|s| s.ack_read(id))
    }

    /// The database's high-water mark: record it outside the database after
    /// each operation, to tell a restored copy (`after_restore`).
    ///
    /// # Errors
    ///
    /// The store's errors.
    pub fn high_water_mark(&self) -> Result<u64> {
        self.with(|s| s.high_water_mark())
    }

    /// If the database is older than the `recorded` high-water mark (a
    /// restored backup): resets prekeys, sessions and group chains in one
    /// transaction; `None` if it is current.
    ///
    /// # Errors
    ///
    /// `Randomness`, the store's errors.
    pub fn after_restore(&self, now: u64, recorded: u64) -> Result<Option<Restored>> {
        self.with(|s| s.after_restore(now, recorded))?
            .map(|r| {
                Ok(Restored {
                    upload: r.upload.try_into()?,
                    records: r.records as u64,
                    groups: r.groups.iter().map(|g| g.to_vec()).collect(),
                })
            })
            .transpose()
    }

    /// Opens every stored value and returns how many there are: the first
    /// altered one fails with its error.
    ///
    /// # Errors
    ///
    /// `TruncatedValue`, `CorruptValue`, `MisplacedValue`, the store's
    /// errors.
    pub fn verify(&self) -> Result<u64> {
        Ok(self.with(|s| s.verify())? as u64)
    }

    /// Caps the database at `pages` pages (`DiskFull` past it); returns the
    /// cap SQLite set.
    ///
    /// # Errors
    ///
    /// The store's errors.
    pub fn set_page_limit(&self, pages: u64) -> Result<u64> {
        self.with(|s| s.set_page_limit(pages))
    }

    /// What this handle saw: commits, conflicts, retries.
    ///
    /// # Errors
    ///
    /// `InvalidArgument` (closed).
    pub fn stats(&self) -> Result<StoreStats> {
        let st = self.with(|s| Ok(s.stats()))?;
        Ok(StoreStats {
            committed: st.committed,
            conflicts: st.conflicts,
            locked_attempts: st.locked_attempts,
            busy_retries: st.busy_retries,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every store error has its own code, equal to the C ABI's, and a
    /// wrapped protocol or session-layer error keeps the protocol's code.
    #[test]
    fn store_errors_have_the_c_abis_codes() {
        use store::Error as E;
        let record = || "device".to_owned();
        let cases = [
            (E::WrongKey, 200),
            (E::DatabaseCorrupt, 201),
            (E::DiskFull, 202),
            (E::Busy, 203),
            (E::Conflict { record: record() }, 204),
            (E::TruncatedValue { record: record() }, 205),
            (E::CorruptValue { record: record() }, 206),
            (E::MisplacedValue { record: record() }, 207),
            (E::NotFound { record: record() }, 208),
            (E::AlreadyExists { record: record() }, 209),
            (E::UnsupportedSchema { found: 9 }, 210),
            (E::Database { code: 1 }, 211),
            (E::InvalidInput, 2),
            (E::Protocol(sotto::Error::AuthenticationFailed), 116),
        ];
        for (error, code) in cases {
            let name = format!("{error:?}");
            let ours = SottoError::from(error);
            assert_eq!(ours.code(), code, "{name}");
            let c_abi = ErrorCode::ALL
                .into_iter()
                .find(|c| c.code() == code)
                .map(|c| c.code());
            assert_eq!(c_abi, Some(code), "{name}");
        }
    }
}
