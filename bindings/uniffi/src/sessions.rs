//! The session layer (SPEC §16): a record per user with its devices and
//! their sessions, routing and recovery, group sessions over every device
//! of every member, and safety numbers.

use std::sync::{Arc, Mutex, MutexGuard};

use sotto::Message;
use sotto::group::GroupMessage;
use sotto::sessions::{self as core, DeviceId, UserId};
use sotto_bindings_common::{BindingError, ErrorCode, OsRng, group_id, storage_key};

use crate::device::Device;
use crate::error::{Result, SottoError, lock};
use crate::group::{GroupPlaintext, InsertOutcome};
use crate::keys::{IdentityKey, PreKeyBundle};

fn user_id(bytes: &[u8]) -> Result<UserId> {
    Ok(UserId::new(bytes)?)
}

/// One entry of a device list as the application's server returns it.
#[derive(Debug, Clone, uniffi::Record)]
pub struct DeviceEntry {
    /// The device id.
    pub device: u32,
    /// Its identity key.
    pub identity: Arc<IdentityKey>,
}

/// A device whose identity key changed: not used until the application
/// acknowledges the new identity (`PeerRecord.acknowledge_identity`).
#[derive(Debug, Clone, uniffi::Record)]
pub struct IdentityChange {
    /// The device.
    pub device: u32,
    /// The new identity key.
    pub new_identity: Arc<IdentityKey>,
}

/// What a device list changed in a record.
#[derive(Debug, Clone, uniffi::Record)]
pub struct DeviceListChanges {
    /// Devices new to the record.
    pub added: Vec<u32>,
    /// Stale devices listed again.
    pub relisted: Vec<u32>,
    /// Devices no longer listed (kept, stale, for messages in flight).
    pub removed: Vec<u32>,
    /// Devices deleted for good.
    pub deleted: Vec<u32>,
    /// Devices whose identity changed.
    pub identity_changes: Vec<IdentityChange>,
    /// Devices whose pending identity change the list withdrew.
    pub withdrawn: Vec<u32>,
}

/// What a record tells about one of its devices.
#[derive(Debug, Clone, uniffi::Record)]
pub struct PeerDeviceInfo {
    /// The device id.
    pub device: u32,
    /// Its trusted identity key.
    pub identity: Arc<IdentityKey>,
    /// A new identity not yet acknowledged.
    pub pending_identity: Option<Arc<IdentityKey>>,
    /// Since when it is off the device list, if it is.
    pub stale_since: Option<u64>,
    /// Whether it may only ever use PQXDH.
    pub post_quantum_pinned: bool,
    /// The base key of its active session (32 bytes), if it has one.
    pub active_base_key: Option<Vec<u8>>,
    /// Whether the active session is one this side started that got no
    /// reply yet.
    pub awaiting_reply: bool,
    /// How many archived sessions it has.
    pub archived_sessions: u64,
}

/// Which devices a message can go to now.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SendPlan {
    /// Devices with a usable session.
    pub ready: Vec<u32>,
    /// Devices to fetch a bundle for (`PeerRecord.add_bundle`).
    pub needs_bundle: Vec<u32>,
    /// Devices with a pending identity change.
    pub blocked: Vec<u32>,
}

/// One encrypted message for one device.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Outgoing {
    /// The device.
    pub device: u32,
    /// The message (a pairwise message).
    pub message: Vec<u8>,
}

/// A device that got no message, and why.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Unusable {
    /// The device.
    pub device: u32,
    /// The C ABI's code of the reason.
    pub code: i32,
    /// The reason, without secrets.
    pub detail: String,
}

/// What an encryption to every device of a user produced.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Sent {
    /// One message per device reached.
    pub messages: Vec<Outgoing>,
    /// The devices not reached.
    pub unusable: Vec<Unusable>,
}

impl From<core::Sent> for Sent {
    fn from(sent: core::Sent) -> Self {
        Self {
            messages: sent
                .messages
                .into_iter()
                .map(|o| Outgoing {
                    device: o.device.0,
                    message: o.message.into_bytes(),
                })
                .collect(),
            unusable: sent
                .unusable
                .into_iter()
                .map(|u| {
                    let e = BindingError::from(u.error);
                    Unusable {
                        device: u.device.0,
                        code: e.code().code(),
                        detail: e.message().to_owned(),
                    }
                })
                .collect(),
        }
    }
}

/// Names a message that could not be decrypted, for a retry request or a
/// new session.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RetryHint {
    /// The message's ratchet key (32 bytes).
    pub ratchet_key: Vec<u8>,
    /// Its message number.
    pub message_number: u32,
    /// For a prekey message, its base key (32 bytes).
    pub base_key: Option<Vec<u8>>,
}

impl From<core::RetryHint> for RetryHint {
    fn from(hint: core::RetryHint) -> Self {
        Self {
            ratchet_key: hint.ratchet_key.to_vec(),
            message_number: hint.message_number,
            base_key: hint.base_key.map(|k| k.to_vec()),
        }
    }
}

impl RetryHint {
    fn to_core(&self) -> Result<core::RetryHint> {
        let key = |bytes: &[u8], what: &str| -> Result<[u8; 32]> {
            bytes.try_into().map_err(|_| {
                BindingError::invalid(format!("{what} must be 32 bytes, got {}", bytes.len()))
                    .into()
            })
        };
        Ok(core::RetryHint {
            ratchet_key: key(&self.ratchet_key, "ratchet key")?,
            message_number: self.message_number,
            base_key: self
                .base_key
                .as_deref()
                .map(|k| key(k, "base key"))
                .transpose()?,
        })
    }
}

/// Why a message is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum IgnoreReason {
    /// Decrypted before (or its key is gone).
    Duplicate,
    /// Nothing an honest peer sends.
    Malformed,
    /// A classical prekey message from a device pinned to PQXDH.
    Downgrade,
    /// A recovery was made for this device too recently.
    RecoveryPending,
    /// The local device given is not this record's.
    WrongLocalDevice,
    /// A reason this version of the bindings does not know.
    Other,
}

/// Why a message is kept for later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum RetryLaterReason {
    /// Refresh the device list: the sending device is unknown.
    UnknownDevice,
    /// Acknowledge the device's identity change first.
    IdentityChangePending,
    /// Refresh the device list: an identity neither trusted nor pending.
    UnknownIdentity,
    /// Install the sender's distribution first (group messages).
    MissingDistribution,
    /// A reason this version of the bindings does not know.
    Other,
}

/// What to do about a message that did not decrypt (SPEC §16.6).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum Action {
    /// Drop the message.
    Ignore {
        /// Why.
        reason: IgnoreReason,
    },
    /// Keep it and give it again after the named step.
    RetryLater {
        /// Which step.
        reason: RetryLaterReason,
    },
    /// Call `PeerRecord.request_retry` with the hint and send its result.
    RequestRetry {
        /// The message's name.
        hint: RetryHint,
    },
    /// Fetch the device's bundle, call `PeerRecord.start_new_session` with
    /// the hint and send its result.
    StartNewSession {
        /// The message's name.
        hint: RetryHint,
    },
}

impl From<core::Action> for Action {
    fn from(action: core::Action) -> Self {
        use core::{Ignore as I, RetryLater as L};
        match action {
            core::Action::Ignore(reason) => Self::Ignore {
                reason: match reason {
                    I::Duplicate => IgnoreReason::Duplicate,
                    I::Malformed => IgnoreReason::Malformed,
                    I::Downgrade => IgnoreReason::Downgrade,
                    I::RecoveryPending => IgnoreReason::RecoveryPending,
                    I::WrongLocalDevice => IgnoreReason::WrongLocalDevice,
                    #[allow(unreachable_patterns)]
                    _ => IgnoreReason::Other,
                },
            },
            core::Action::RetryLater(reason) => Self::RetryLater {
                reason: match reason {
                    L::UnknownDevice => RetryLaterReason::UnknownDevice,
                    L::IdentityChangePending => RetryLaterReason::IdentityChangePending,
                    L::UnknownIdentity => RetryLaterReason::UnknownIdentity,
                    L::MissingDistribution => RetryLaterReason::MissingDistribution,
                    #[allow(unreachable_patterns)]
                    _ => RetryLaterReason::Other,
                },
            },
            core::Action::RequestRetry(hint) => Self::RequestRetry { hint: hint.into() },
            core::Action::StartNewSession(hint) => Self::StartNewSession { hint: hint.into() },
        }
    }
}

/// A message the session layer could not decrypt: the action to take, and
/// the error (with the C ABI's code) that decided it. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Error)]
pub enum DecryptFailure {
    /// The one failure kind.
    Failed {
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

impl DecryptFailure {
    fn new(action: Action, error: BindingError) -> Self {
        Self::Failed {
            action,
            code: error.code().code(),
            kind: error.code().name().to_owned(),
            detail: error.message().to_owned(),
        }
    }
}

impl From<core::Failure> for DecryptFailure {
    fn from(failure: core::Failure) -> Self {
        Self::new(failure.action.into(), failure.error.into())
    }
}

/// An argument that is no message: dropped as malformed.
impl From<SottoError> for DecryptFailure {
    fn from(error: SottoError) -> Self {
        let code = ErrorCode::ALL
            .into_iter()
            .find(|c| c.code() == error.code())
            .unwrap_or(ErrorCode::ProtocolOther);
        Self::new(
            Action::Ignore {
                reason: IgnoreReason::Malformed,
            },
            BindingError::new(code, error.detail()),
        )
    }
}

impl std::fmt::Display for DecryptFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self::Failed {
            action,
            code,
            kind,
            detail,
        } = self;
        write!(f, "{kind} ({code}): {detail}; {action:?}")
    }
}

impl std::error::Error for DecryptFailure {}

/// What the kind of a decrypted message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ContentKind {
    /// An application payload (`Received.payload`).
    Payload,
    /// A group distribution: give it to the group's `GroupSession.install`.
    Distribution,
    /// The peer asks to resend the message `Received.retry_hint` names.
    RetryRequest,
    /// The peer asks for the local chain of group `Received.group_id`.
    DistributionRequest,
}

/// A message the session layer decrypted.
#[derive(Debug, uniffi::Object)]
pub struct Received(pub(crate) core::Received);

#[uniffi::export]
impl Received {
    /// The device it came from.
    pub fn device(&self) -> u32 {
        self.0.device().0
    }

    /// What it carried.
    pub fn kind(&self) -> ContentKind {
        match self.0.content() {
            core::Content::Payload(_) => ContentKind::Payload,
            core::Content::Distribution(_) => ContentKind::Distribution,
            core::Content::RetryRequest(_) => ContentKind::RetryRequest,
            core::Content::DistributionRequest(_) => ContentKind::DistributionRequest,
        }
    }

    /// The payload of a payload message.
    pub fn payload(&self) -> Option<Vec<u8>> {
        match self.0.content() {
            core::Content::Payload(p) => Some(p.as_bytes().to_vec()),
            _ => None,
        }
    }

    /// The identity of the device whose session decrypted it (payloads and
    /// distributions).
    pub fn sender(&self) -> Option<Arc<IdentityKey>> {
        match self.0.content() {
            core::Content::Payload(p) => Some(IdentityKey::arc(p.sender())),
            core::Content::Distribution(d) => Some(IdentityKey::arc(d.sender())),
            _ => None,
        }
    }

    /// The group of a distribution or distribution request (32 bytes).
    pub fn group_id(&self) -> Option<Vec<u8>> {
        match self.0.content() {
            core::Content::Distribution(d) => Some(d.group_id().as_bytes().to_vec()),
            core::Content::DistributionRequest(g) => Some(g.as_bytes().to_vec()),
            _ => None,
        }
    }

    /// The hint of a retry request.
    pub fn retry_hint(&self) -> Option<RetryHint> {
        match self.0.content() {
            core::Content::RetryRequest(hint) => Some((*hint).into()),
            _ => None,
        }
    }
}

/// Everything about one user: each of its devices with its trusted
/// identity and sessions. Save it (sealed) after every call that changed
/// it, before sending or showing anything. Every call is all or nothing.
#[derive(Debug, uniffi::Object)]
pub struct PeerRecord(pub(crate) Mutex<core::PeerRecord>);

impl PeerRecord {
    fn wrap(record: core::PeerRecord) -> Arc<Self> {
        Arc::new(Self(Mutex::new(record)))
    }

    fn lock(&self) -> Result<MutexGuard<'_, core::PeerRecord>> {
        lock(&self.0, "peer record")
    }
}

#[uniffi::export]
impl PeerRecord {
    /// A record of the user `user` (1 to 64 bytes) as seen by the local
    /// device with identity `local_identity`; no devices yet.
    ///
    /// # Errors
    ///
    /// `InvalidEncoding` for an empty or too long user id.
    #[uniffi::constructor]
    pub fn new(user: Vec<u8>, local_identity: Arc<IdentityKey>) -> Result<Arc<Self>> {
        Ok(Self::wrap(core::PeerRecord::new(
            user_id(&user)?,
            local_identity.0,
        )))
    }

    /// The local user's own record (its other devices), for the local
    /// device `local_device`.
    ///
    /// # Errors
    ///
    /// `InvalidEncoding` for an empty or too long user id.
    #[uniffi::constructor]
    pub fn new_own(
        user: Vec<u8>,
        local_device: u32,
        local_identity: Arc<IdentityKey>,
    ) -> Result<Arc<Self>> {
        Ok(Self::wrap(core::PeerRecord::new_own(
            user_id(&user)?,
            DeviceId(local_device),
            local_identity.0,
        )))
    }

    /// Restores a record from `PeerRecord.to_bytes`.
    ///
    /// # Errors
    ///
    /// The parse errors.
    #[uniffi::constructor]
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Arc<Self>> {
        Ok(Self::wrap(core::PeerRecord::from_bytes(&bytes)?))
    }

    /// Restores a record from `PeerRecord.seal`.
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, `TooLarge`, `AuthenticationFailed`, then the parse
    /// errors.
    #[uniffi::constructor]
    pub fn unseal(sealed: Vec<u8>, storage_key: Vec<u8>, context: Vec<u8>) -> Result<Arc<Self>> {
        let key = self::storage_key(&storage_key)?;
        Ok(Self::wrap(core::PeerRecord::unseal(
            &sealed, &key, &context,
        )?))
    }

    /// The plain saved state (secret: prefer `seal`).
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        Ok(self.lock()?.to_bytes().to_vec())
    }

    /// The saved state encrypted under a 32-byte storage key, bound to
    /// `context`.
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, `TooLarge`, `Randomness`.
    pub fn seal(&self, storage_key: Vec<u8>, context: Vec<u8>) -> Result<Vec<u8>> {
        let key = self::storage_key(&storage_key)?;
        Ok(self.lock()?.seal(&key, &context, &mut OsRng)?)
    }

    /// 0 when new, one more after every call that changed the record.
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn generation(&self) -> Result<u64> {
        Ok(self.lock()?.generation())
    }

    /// The user's id.
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn user(&self) -> Result<Vec<u8>> {
        Ok(self.lock()?.user().as_bytes().to_vec())
    }

    /// Every device the record holds, listed or stale.
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn devices(&self) -> Result<Vec<PeerDeviceInfo>> {
        Ok(self
            .lock()?
            .devices()
            .map(|d| PeerDeviceInfo {
                device: d.device.0,
                identity: IdentityKey::arc(&d.identity),
                pending_identity: d.pending_identity.as_ref().map(IdentityKey::arc),
                stale_since: d.stale_since,
                post_quantum_pinned: d.post_quantum_pinned,
                active_base_key: d.active_base_key.map(|k| k.to_vec()),
                awaiting_reply: d.awaiting_reply,
                archived_sessions: d.archived_sessions as u64,
            })
            .collect())
    }

    /// Takes the device list the server returned at `now`.
    ///
    /// # Errors
    ///
    /// `InvalidDeviceList`.
    pub fn update_devices(&self, list: Vec<DeviceEntry>, now: u64) -> Result<DeviceListChanges> {
        let list: Vec<_> = list
            .iter()
            .map(|e| (DeviceId(e.device), e.identity.0))
            .collect();
        let changes = self.lock()?.update_devices(&list, now)?;
        let ids = |v: Vec<DeviceId>| v.into_iter().map(|d| d.0).collect();
        Ok(DeviceListChanges {
            added: ids(changes.added),
            relisted: ids(changes.relisted),
            removed: ids(changes.removed),
            deleted: ids(changes.deleted),
            identity_changes: changes
                .identity_changes
                .iter()
                .map(|c| IdentityChange {
                    device: c.device.0,
                    new_identity: IdentityKey::arc(&c.new_identity),
                })
                .collect(),
            withdrawn: ids(changes.withdrawn),
        })
    }

    /// Trusts the new identity of `device` once the user accepted it; its
    /// old sessions are deleted.
    ///
    /// # Errors
    ///
    /// `UnknownDevice`, `IdentityMismatch`.
    pub fn acknowledge_identity(&self, device: u32, identity: Arc<IdentityKey>) -> Result<()> {
        Ok(self
            .lock()?
            .acknowledge_identity(DeviceId(device), &identity.0)?)
    }

    /// Allows (or again forbids) classical X3DH with a device that never
    /// used PQXDH.
    ///
    /// # Errors
    ///
    /// `UnknownDevice`, `PostQuantumRequired` (the device is pinned).
    pub fn allow_classical(&self, device: u32, allowed: bool) -> Result<()> {
        Ok(self.lock()?.allow_classical(DeviceId(device), allowed)?)
    }

    /// Which devices a message can reach now, and which need a bundle.
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn plan_send(&self, now: u64) -> Result<SendPlan> {
        let plan = self.lock()?.plan_send(now);
        let ids = |v: Vec<DeviceId>| v.into_iter().map(|d| d.0).collect();
        Ok(SendPlan {
            ready: ids(plan.ready),
            needs_bundle: ids(plan.needs_bundle),
            blocked: ids(plan.blocked),
        })
    }

    /// Starts a session with `device` from its bundle (verified against the
    /// device's trusted identity).
    ///
    /// # Errors
    ///
    /// `IdentityMismatch`, `UnknownDevice`, `IdentityChangePending`,
    /// `InvalidSignature`, `PostQuantumRequired`, `Randomness`.
    pub fn add_bundle(
        &self,
        local: Arc<Device>,
        device: u32,
        bundle: Arc<PreKeyBundle>,
        now: u64,
    ) -> Result<()> {
        let local = lock(&local.0, "device")?;
        Ok(self
            .lock()?
            .add_bundle(&local, DeviceId(device), bundle.0.clone(), now, &mut OsRng)?)
    }

    /// Encrypts `payload` once for every device with a usable session.
    ///
    /// # Errors
    ///
    /// `PlaintextTooLarge`, `Randomness`.
    pub fn encrypt(&self, payload: Vec<u8>) -> Result<Sent> {
        let payload = zeroize::Zeroizing::new(payload);
        Ok(self.lock()?.encrypt(&payload, &mut OsRng)?.into())
    }

    /// Encrypts `payload` for `device` alone (a resend after a retry
    /// request).
    ///
    /// # Errors
    ///
    /// `UnknownDevice`, `IdentityChangePending`, `NoSession`,
    /// `PlaintextTooLarge`, `Randomness`.
    pub fn encrypt_to(&self, device: u32, payload: Vec<u8>) -> Result<Vec<u8>> {
        let payload = zeroize::Zeroizing::new(payload);
        Ok(self
            .lock()?
            .encrypt_to(DeviceId(device), &payload, &mut OsRng)?
            .into_bytes())
    }

    /// Routes a message from `from` to the session it belongs to (a new
    /// one for a prekey message) and decrypts it.
    ///
    /// # Errors
    ///
    /// `DecryptFailure.Failed`: the action to take and the error; nothing
    /// changed.
    pub fn decrypt(
        &self,
        local: Arc<Device>,
        from: u32,
        message: Vec<u8>,
        now: u64,
    ) -> Result<Arc<Received>, DecryptFailure> {
        let message = Message::from_vec(message).map_err(SottoError::from)?;
        let mut local = lock(&local.0, "device")?;
        let received = self
            .lock()?
            .decrypt(&mut local, DeviceId(from), &message, now)?;
        Ok(Arc::new(Received(received)))
    }

    /// Asks `device` to resend the message `hint` names (the answer to
    /// `Action.RequestRetry`).
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, `UnknownDevice`, `IdentityChangePending`,
    /// `NoSession`, `RecoveryRateLimited`, `Randomness`.
    pub fn request_retry(&self, device: u32, hint: RetryHint, now: u64) -> Result<Vec<u8>> {
        let hint = hint.to_core()?;
        Ok(self
            .lock()?
            .request_retry(DeviceId(device), &hint, now, &mut OsRng)?
            .into_bytes())
    }

    /// Starts a new session with `device` from its bundle and asks it to
    /// resend what `hint` names (the answer to `Action.StartNewSession`).
    ///
    /// # Errors
    ///
    /// As `add_bundle`, and `RecoveryRateLimited`.
    pub fn start_new_session(
        &self,
        local: Arc<Device>,
        device: u32,
        bundle: Arc<PreKeyBundle>,
        hint: RetryHint,
        now: u64,
    ) -> Result<Vec<u8>> {
        let hint = hint.to_core()?;
        let local = lock(&local.0, "device")?;
        Ok(self
            .lock()?
            .start_new_session(
                &local,
                DeviceId(device),
                bundle.0.clone(),
                &hint,
                now,
                &mut OsRng,
            )?
            .into_bytes())
    }

    /// Asks `device` for its chain of group `group_id`.
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, then as `encrypt_to`.
    pub fn request_distribution(&self, device: u32, group_id: Vec<u8>) -> Result<Vec<u8>> {
        let group = self::group_id(&group_id)?;
        Ok(self
            .lock()?
            .request_distribution(DeviceId(device), &group, &mut OsRng)?
            .into_bytes())
    }

    /// Deletes stale devices and archived sessions that are too old at
    /// `now`; returns how many devices were deleted.
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn expire(&self, now: u64) -> Result<u64> {
        Ok(self.lock()?.expire(now).devices.len() as u64)
    }

    /// After restoring an older copy: moves the generation past
    /// `last_generation`; returns how many sessions were archived.
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn after_restore(&self, last_generation: u64) -> Result<u64> {
        Ok(self.lock()?.after_restore(last_generation) as u64)
    }

    /// The user's fingerprint over all of its listed devices (30 digits).
    ///
    /// # Errors
    ///
    /// `InvalidDeviceList` (no listed device).
    pub fn fingerprint(&self) -> Result<String> {
        Ok(self.lock()?.fingerprint()?.to_string())
    }

    /// The safety number of the local user (own record `own`) and this
    /// record's user (60 digits), for the users to compare.
    ///
    /// # Errors
    ///
    /// `InvalidArgument` (the same object twice), `IdentityMismatch`,
    /// `InvalidDeviceList`.
    pub fn safety_number(&self, own: Arc<PeerRecord>) -> Result<String> {
        if std::ptr::eq(self, &*own) {
            return Err(BindingError::invalid("own is this record").into());
        }
        let own = own.lock()?;
        Ok(self.lock()?.safety_number(&own)?.to_string())
    }
}

/// Locks every record once, in address order (so two calls never wait on
/// each other), and gives them back in the order given.
fn lock_all(records: &[Arc<PeerRecord>]) -> Result<Vec<MutexGuard<'_, core::PeerRecord>>> {
    let mut order: Vec<(usize, &Arc<PeerRecord>)> = records.iter().enumerate().collect();
    order.sort_by_key(|(_, r)| Arc::as_ptr(r) as usize);
    if order.windows(2).any(|w| match w {
        [(_, a), (_, b)] => Arc::ptr_eq(a, b),
        _ => false,
    }) {
        return Err(BindingError::invalid("a record is given twice").into());
    }
    let mut guards = Vec::with_capacity(order.len());
    for (i, record) in order {
        guards.push((i, record.lock()?));
    }
    guards.sort_by_key(|(i, _)| *i);
    Ok(guards.into_iter().map(|(_, g)| g).collect())
}

/// What a fan-out sent to each user's devices.
#[derive(Debug, Clone, uniffi::Record)]
pub struct UserSent {
    /// The user.
    pub user: Vec<u8>,
    /// What went to its devices.
    pub sent: Sent,
}

fn fanout(fanout: core::Fanout) -> Vec<UserSent> {
    fanout
        .users
        .into_iter()
        .map(|(user, sent)| UserSent {
            user: user.as_bytes().to_vec(),
            sent: sent.into(),
        })
        .collect()
}

/// A group over the session layer: its members (users), the local chain,
/// and the chains of every device of every member. Save it after every
/// call that changed it (and the records the call changed).
#[derive(Debug, uniffi::Object)]
pub struct GroupSession(Mutex<core::GroupSession>);

impl GroupSession {
    fn wrap(group: core::GroupSession) -> Arc<Self> {
        Arc::new(Self(Mutex::new(group)))
    }

    fn lock(&self) -> Result<MutexGuard<'_, core::GroupSession>> {
        lock(&self.0, "group session")
    }
}

#[uniffi::export]
impl GroupSession {
    /// A new group `group_id` (32 bytes) whose only member is the local
    /// user, with a new chain of `local`.
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, `InvalidEncoding` (user id), `Randomness`.
    #[uniffi::constructor]
    pub fn new(group_id: Vec<u8>, local_user: Vec<u8>, local: Arc<Device>) -> Result<Arc<Self>> {
        let group = self::group_id(&group_id)?;
        let user = user_id(&local_user)?;
        let local = lock(&local.0, "device")?;
        Ok(Self::wrap(core::GroupSession::new(
            &mut OsRng, group, user, &local,
        )?))
    }

    /// Restores a group from `GroupSession.to_bytes`.
    ///
    /// # Errors
    ///
    /// The parse errors.
    #[uniffi::constructor]
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Arc<Self>> {
        Ok(Self::wrap(core::GroupSession::from_bytes(&bytes)?))
    }

    /// Restores a group from `GroupSession.seal`.
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, `TooLarge`, `AuthenticationFailed`, then the parse
    /// errors.
    #[uniffi::constructor]
    pub fn unseal(sealed: Vec<u8>, storage_key: Vec<u8>, context: Vec<u8>) -> Result<Arc<Self>> {
        let key = self::storage_key(&storage_key)?;
        Ok(Self::wrap(core::GroupSession::unseal(
            &sealed, &key, &context,
        )?))
    }

    /// The plain saved state (secret: prefer `seal`).
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        Ok(self.lock()?.to_bytes().to_vec())
    }

    /// The saved state encrypted under a 32-byte storage key.
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, `TooLarge`, `Randomness`.
    pub fn seal(&self, storage_key: Vec<u8>, context: Vec<u8>) -> Result<Vec<u8>> {
        let key = self::storage_key(&storage_key)?;
        Ok(self.lock()?.seal(&key, &context, &mut OsRng)?)
    }

    /// 0 when new, one more after every call that changed the group.
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn generation(&self) -> Result<u64> {
        Ok(self.lock()?.generation())
    }

    /// The members' user ids, the local user included, in byte order.
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn members(&self) -> Result<Vec<Vec<u8>>> {
        Ok(self
            .lock()?
            .members()
            .map(|u| u.as_bytes().to_vec())
            .collect())
    }

    /// How many other devices' chains the group holds.
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn receiver_count(&self) -> Result<u64> {
        Ok(self.lock()?.receivers().len() as u64)
    }

    /// Adds `user` as a member; returns whether it was new. Then hand it the
    /// local chain (`distribute`).
    ///
    /// # Errors
    ///
    /// `InvalidEncoding` (user id), `TooManyGroupMembers`.
    pub fn add_member(&self, user: Vec<u8>) -> Result<bool> {
        Ok(self.lock()?.add_member(user_id(&user)?)?)
    }

    /// Encrypts the local chain's distribution for every device with a
    /// session in each of `records` (members' records, the own one too).
    ///
    /// # Errors
    ///
    /// `InvalidArgument` (a record twice), `NotGroupMember`,
    /// `IdentityMismatch`, `Randomness`.
    pub fn distribute(&self, records: Vec<Arc<PeerRecord>>) -> Result<Vec<UserSent>> {
        let group = self.lock()?;
        let mut guards = lock_all(&records)?;
        let mut refs: Vec<&mut core::PeerRecord> = guards.iter_mut().map(|g| &mut **g).collect();
        Ok(fanout(group.distribute(&mut refs, &mut OsRng)?))
    }

    /// Encrypts the local chain's distribution for `device` of `record`'s
    /// user alone.
    ///
    /// # Errors
    ///
    /// `NotGroupMember`, `IdentityMismatch`, then as `PeerRecord.encrypt_to`.
    pub fn distribute_to(&self, record: Arc<PeerRecord>, device: u32) -> Result<Vec<u8>> {
        let group = self.lock()?;
        let mut record = record.lock()?;
        Ok(group
            .distribute_to(&mut record, DeviceId(device), &mut OsRng)?
            .into_bytes())
    }

    /// Installs a distribution that `record` decrypted.
    ///
    /// # Errors
    ///
    /// `InvalidEncoding` (no distribution), `NotGroupMember`,
    /// `IdentityMismatch`, `IdentityChangePending`, then the store's errors.
    pub fn install(
        &self,
        record: Arc<PeerRecord>,
        received: Arc<Received>,
    ) -> Result<InsertOutcome> {
        let mut group = self.lock()?;
        let record = record.lock()?;
        Ok(group.install(&record, &received.0)?.into())
    }

    /// Encrypts `payload` to the group.
    ///
    /// # Errors
    ///
    /// `PlaintextTooLarge`, `ChainExhausted`, `Randomness`.
    pub fn encrypt(&self, payload: Vec<u8>) -> Result<Vec<u8>> {
        let payload = zeroize::Zeroizing::new(payload);
        Ok(self.lock()?.encrypt(&payload, &mut OsRng)?.into_bytes())
    }

    /// Decrypts a group message.
    ///
    /// # Errors
    ///
    /// `DecryptFailure.Failed` (`RetryLater(MissingDistribution)` for a
    /// chain not held yet).
    pub fn decrypt(&self, message: Vec<u8>) -> Result<GroupPlaintext, DecryptFailure> {
        let message = GroupMessage::from_vec(message).map_err(SottoError::from)?;
        let plaintext = self.lock()?.decrypt(&message)?;
        Ok(GroupPlaintext::from_core(&plaintext))
    }

    /// Removes `user`, replaces the local chain, and hands the new one to
    /// every device of the remaining members; `records` must be exactly
    /// the remaining members' records (and the own one).
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, `InvalidEncoding`, `NotGroupMember`,
    /// `IdentityMismatch`, `Randomness`.
    pub fn remove_member(
        &self,
        local: Arc<Device>,
        user: Vec<u8>,
        records: Vec<Arc<PeerRecord>>,
    ) -> Result<Vec<UserSent>> {
        let user = user_id(&user)?;
        let local = lock(&local.0, "device")?;
        let mut group = self.lock()?;
        let mut guards = lock_all(&records)?;
        let mut refs: Vec<&mut core::PeerRecord> = guards.iter_mut().map(|g| &mut **g).collect();
        Ok(fanout(
            group.remove_member(&local, &user, &mut refs, &mut OsRng)?,
        ))
    }

    /// Replaces the local chain and hands the new one to every device of
    /// the members (`records`: exactly the members' records).
    ///
    /// # Errors
    ///
    /// As `remove_member`.
    pub fn rotate(
        &self,
        local: Arc<Device>,
        records: Vec<Arc<PeerRecord>>,
    ) -> Result<Vec<UserSent>> {
        let local = lock(&local.0, "device")?;
        let mut group = self.lock()?;
        let mut guards = lock_all(&records)?;
        let mut refs: Vec<&mut core::PeerRecord> = guards.iter_mut().map(|g| &mut **g).collect();
        Ok(fanout(group.rotate(&local, &mut refs, &mut OsRng)?))
    }

    /// After restoring an older copy: if it is stale (its generation below
    /// `last_generation`), every chain is dropped and the local one
    /// replaced; returns whether it was.
    ///
    /// # Errors
    ///
    /// `Randomness`.
    pub fn after_restore(&self, local: Arc<Device>, last_generation: u64) -> Result<bool> {
        let local = lock(&local.0, "device")?;
        Ok(self
            .lock()?
            .after_restore(&local, last_generation, &mut OsRng)?)
    }
}
