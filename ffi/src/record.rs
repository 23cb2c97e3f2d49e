//! The session layer's peer records (SPEC §16): one per user, with every
//! device of that user, routing, recovery, expiry, persistence and safety
//! numbers.

use sotto::sessions::{
    DeviceId, DeviceInfo, DeviceListChanges, Expired, LocalListing, PeerRecord, SendPlan, UserId,
};
use sotto::{Device, IdentityKey, Message, PreKeyBundle};

use crate::buffer::{SottoBuffer, input, input_array, out_array, out_buffer, out_value};
use crate::error::{FfiError, FfiResult, SottoError, ffi_call};
use crate::group::group_id;
use crate::handle::{
    SottoDevice, SottoOutbox, SottoPeerRecord, SottoReceived, free, into_raw, out_handle, with_mut,
    with_ref,
};
use crate::outbox::Outbox;
use crate::received::{SottoFailure, SottoRetryHint, failed, hint_input};
use crate::rng::OsRng;
use crate::{SOTTO_IDENTITY_KEY_LEN, SOTTO_MAX_DEVICES_PER_USER, persist};

/// One entry of a device list: a device id and its encoded identity key.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SottoDeviceListEntry {
    /// The device's id (the number the app's server gave it).
    pub device: u32,
    /// Its identity key, encoded (`SOTTO_IDENTITY_KEY_LEN` bytes).
    pub identity_key: [u8; SOTTO_IDENTITY_KEY_LEN],
}

/// A device listed with another identity than the trusted one: never
/// accepted silently. Show both fingerprints; once the user accepts, pass
/// `new_identity_key` to `sotto_peer_record_acknowledge_identity`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SottoIdentityChange {
    /// The device.
    pub device: u32,
    /// The fingerprint of its trusted identity.
    pub old_fingerprint: [u8; 32],
    /// The fingerprint of the identity the list gave.
    pub new_fingerprint: [u8; 32],
    /// The identity the list gave, encoded.
    pub new_identity_key: [u8; SOTTO_IDENTITY_KEY_LEN],
}

/// How the own record's device list showed the local device.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SottoLocalListing {
    /// Not the own record (a record of another user).
    NotOwnRecord = 0,
    /// Listed with the local identity.
    Listed = 1,
    /// Not listed: the server no longer lists this device.
    Missing = 2,
    /// Listed with another identity (`local_other_fingerprint`): the
    /// server's entry is not this device.
    OtherIdentity = 3,
}

/// What a device list changed (SPEC §16.2). Each list holds `_count`
/// device ids, in device order.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SottoDeviceListChanges {
    /// How many devices were added.
    pub added_count: usize,
    /// Devices the record did not hold, now held with the listed identity
    /// (trust on first use: compare safety numbers).
    pub added: [u32; SOTTO_MAX_DEVICES_PER_USER],
    /// How many stale devices were listed again.
    pub relisted_count: usize,
    /// Stale devices listed again with their trusted identity.
    pub relisted: [u32; SOTTO_MAX_DEVICES_PER_USER],
    /// How many devices left the list.
    pub removed_count: usize,
    /// Devices no longer listed: stale now (nothing is sent to them, their
    /// late messages still decrypt; deleted after
    /// `SOTTO_MAX_STALE_DEVICE_AGE`).
    pub removed: [u32; SOTTO_MAX_DEVICES_PER_USER],
    /// How many stale devices were deleted.
    pub deleted_count: usize,
    /// Stale devices deleted to make room for added ones.
    pub deleted: [u32; SOTTO_MAX_DEVICES_PER_USER],
    /// How many pending identity changes were withdrawn.
    pub withdrawn_count: usize,
    /// Devices whose pending identity change was withdrawn: the list shows
    /// the trusted identity again.
    pub withdrawn: [u32; SOTTO_MAX_DEVICES_PER_USER],
    /// How many identity changes the list reported.
    pub identity_change_count: usize,
    /// Devices listed with a new identity: each must be acknowledged before
    /// the device is used again.
    pub identity_changes: [SottoIdentityChange; SOTTO_MAX_DEVICES_PER_USER],
    /// For the own record, how the list showed the local device.
    pub local: SottoLocalListing,
    /// With `SOTTO_LOCAL_LISTING_OTHER_IDENTITY`, that identity's
    /// fingerprint; else zeros.
    pub local_other_fingerprint: [u8; 32],
}

/// Which listed devices can be sent to now (SPEC §16.3).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SottoSendPlan {
    /// How many devices are ready.
    pub ready_count: usize,
    /// Listed devices with a usable active session.
    pub ready: [u32; SOTTO_MAX_DEVICES_PER_USER],
    /// How many devices need a bundle.
    pub needs_bundle_count: usize,
    /// Listed devices without a session, or whose session we started got
    /// no reply for `SOTTO_MAX_UNANSWERED_SESSION_AGE`: fetch each one's
    /// bundle and call `sotto_peer_record_add_bundle`.
    pub needs_bundle: [u32; SOTTO_MAX_DEVICES_PER_USER],
    /// How many devices are blocked.
    pub blocked_count: usize,
    /// Listed devices with a pending identity change: acknowledge it first.
    pub blocked: [u32; SOTTO_MAX_DEVICES_PER_USER],
}

/// What `sotto_peer_record_expire` deleted.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SottoExpired {
    /// How many stale devices were deleted.
    pub device_count: usize,
    /// The stale devices deleted, with their sessions.
    pub devices: [u32; SOTTO_MAX_DEVICES_PER_USER],
    /// How many archived sessions of the remaining devices were deleted.
    pub sessions: usize,
}

/// What a record holds about one device (`sotto_peer_record_devices`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SottoDeviceInfo {
    /// The device.
    pub device: u32,
    /// Its trusted identity, encoded.
    pub identity_key: [u8; SOTTO_IDENTITY_KEY_LEN],
    /// Whether a new identity was announced and not yet acknowledged.
    pub has_pending_identity: bool,
    /// That identity, encoded; zeros if none.
    pub pending_identity_key: [u8; SOTTO_IDENTITY_KEY_LEN],
    /// Whether it is off the device list.
    pub is_stale: bool,
    /// Since when, if it is; else 0.
    pub stale_since: u64,
    /// Whether it may only ever use PQXDH.
    pub post_quantum_pinned: bool,
    /// Whether it has an active session.
    pub has_active_session: bool,
    /// The active session's base key; zeros if none.
    pub active_base_key: [u8; 32],
    /// Whether the active session is one we started that got no reply yet.
    pub awaiting_reply: bool,
    /// How many archived sessions it has.
    pub archived_sessions: usize,
}

/// Ids into a fixed list. The core bounds every list of a record by
/// `MAX_DEVICES_PER_USER`, the length of these arrays.
fn id_list(ids: &[DeviceId]) -> (usize, [u32; SOTTO_MAX_DEVICES_PER_USER]) {
    let mut out = [0; SOTTO_MAX_DEVICES_PER_USER];
    for (slot, id) in out.iter_mut().zip(ids) {
        *slot = id.0;
    }
    (ids.len().min(SOTTO_MAX_DEVICES_PER_USER), out)
}

const NO_CHANGE: SottoIdentityChange = SottoIdentityChange {
    device: 0,
    old_fingerprint: [0; 32],
    new_fingerprint: [0; 32],
    new_identity_key: [0; SOTTO_IDENTITY_KEY_LEN],
};

impl From<&DeviceListChanges> for SottoDeviceListChanges {
    fn from(c: &DeviceListChanges) -> Self {
        let (added_count, added) = id_list(&c.added);
        let (relisted_count, relisted) = id_list(&c.relisted);
        let (removed_count, removed) = id_list(&c.removed);
        let (deleted_count, deleted) = id_list(&c.deleted);
        let (withdrawn_count, withdrawn) = id_list(&c.withdrawn);
        let mut identity_changes = [NO_CHANGE; SOTTO_MAX_DEVICES_PER_USER];
        for (slot, change) in identity_changes.iter_mut().zip(&c.identity_changes) {
            *slot = SottoIdentityChange {
                device: change.device.0,
                old_fingerprint: *change.old.as_bytes(),
                new_fingerprint: *change.new.as_bytes(),
                new_identity_key: change.new_identity.to_bytes(),
            };
        }
        let (local, local_other_fingerprint) = match c.local {
            None => (SottoLocalListing::NotOwnRecord, [0; 32]),
            Some(LocalListing::Listed) => (SottoLocalListing::Listed, [0; 32]),
            Some(LocalListing::Missing) => (SottoLocalListing::Missing, [0; 32]),
            Some(LocalListing::OtherIdentity(fingerprint)) => {
                (SottoLocalListing::OtherIdentity, *fingerprint.as_bytes())
            }
        };
        Self {
            added_count,
            added,
            relisted_count,
            relisted,
            removed_count,
            removed,
            deleted_count,
            deleted,
            withdrawn_count,
            withdrawn,
            identity_change_count: c.identity_changes.len().min(SOTTO_MAX_DEVICES_PER_USER),
            identity_changes,
            local,
            local_other_fingerprint,
        }
    }
}

impl From<&SendPlan> for SottoSendPlan {
    fn from(plan: &SendPlan) -> Self {
        let (ready_count, ready) = id_list(&plan.ready);
        let (needs_bundle_count, needs_bundle) = id_list(&plan.needs_bundle);
        let (blocked_count, blocked) = id_list(&plan.blocked);
        Self {
            ready_count,
            ready,
            needs_bundle_count,
            needs_bundle,
            blocked_count,
            blocked,
        }
    }
}

impl From<&Expired> for SottoExpired {
    fn from(expired: &Expired) -> Self {
        let (device_count, devices) = id_list(&expired.devices);
        Self {
            device_count,
            devices,
            sessions: expired.sessions,
        }
    }
}

impl From<&DeviceInfo> for SottoDeviceInfo {
    fn from(d: &DeviceInfo) -> Self {
        Self {
            device: d.device.0,
            identity_key: d.identity.to_bytes(),
            has_pending_identity: d.pending_identity.is_some(),
            pending_identity_key: d
                .pending_identity
                .map_or([0; SOTTO_IDENTITY_KEY_LEN], |k| k.to_bytes()),
            is_stale: d.stale_since.is_some(),
            stale_since: d.stale_since.unwrap_or(0),
            post_quantum_pinned: d.post_quantum_pinned,
            has_active_session: d.active_base_key.is_some(),
            active_base_key: d.active_base_key.unwrap_or_default(),
            awaiting_reply: d.awaiting_reply,
            archived_sessions: d.archived_sessions,
        }
    }
}

/// A user id: 1 to `SOTTO_MAX_USER_ID_LEN` bytes (else
/// `SOTTO_ERROR_INVALID_ENCODING`).
pub(crate) fn user_id(bytes: &[u8]) -> FfiResult<UserId> {
    Ok(UserId::new(bytes)?)
}

/// Creates an empty record for the user `user` (the app's account id, 1 to
/// `SOTTO_MAX_USER_ID_LEN` bytes), kept by `local`: the record belongs to
/// that device, and every call that takes a device checks it is this one.
/// Feed it the user's device list next (`sotto_peer_record_update_devices`).
///
/// # Safety
///
/// `user` must be NULL or `user_len` readable bytes; `out` NULL or a
/// writable `SottoPeerRecord *` set to NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_peer_record_new(
    user: *const u8,
    user_len: usize,
    local: *const SottoDevice,
    out: *mut *mut SottoPeerRecord,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees the pointer/length pair.
        let user = user_id(unsafe { input(user, user_len, "user") }?)?;
        // SAFETY: the caller guarantees `out` is NULL or a valid slot.
        let out = unsafe { out_handle(out, "out") }?;
        let identity = with_ref::<Device, _>(local, "local", |d| Ok(*d.identity_key()))?;
        *out = into_raw(PeerRecord::new(user, identity));
        Ok(())
    })
}

/// Creates the **own record**: the local user's other devices. `user` is the
/// local user, `local_device` the local device's id on the server (it never
/// appears in the record) and `local` the local device. Its device lists are
/// the local user's; its devices get every message and distribution this
/// device sends, like any peer's.
///
/// # Safety
///
/// As for `sotto_peer_record_new`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_peer_record_new_own(
    user: *const u8,
    user_len: usize,
    local_device: u32,
    local: *const SottoDevice,
    out: *mut *mut SottoPeerRecord,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees the pointer/length pair.
        let user = user_id(unsafe { input(user, user_len, "user") }?)?;
        // SAFETY: the caller guarantees `out` is NULL or a valid slot.
        let out = unsafe { out_handle(out, "out") }?;
        let identity = with_ref::<Device, _>(local, "local", |d| Ok(*d.identity_key()))?;
        *out = into_raw(PeerRecord::new_own(user, DeviceId(local_device), identity));
        Ok(())
    })
}

/// The record's user id.
///
/// # Safety
///
/// `out` must be NULL or point to an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_peer_record_user(
    record: *const SottoPeerRecord,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        let user =
            with_ref::<PeerRecord, _>(record, "record", |r| Ok(r.user().as_bytes().to_vec()))?;
        out.set(user);
        Ok(())
    })
}

/// Applies the device list the app's server returned for the record's user
/// (`count` entries, any order) and writes what changed to `*out_changes`
/// (SPEC §16.2). A device listed with a new identity is reported and
/// blocked until acknowledged; a device that left the list becomes stale.
/// For the own record, the local device's entry is taken out first and
/// `out_changes->local` says how it was listed. Save the record afterwards.
///
/// # Safety
///
/// `list` must be NULL or point to `count` readable entries; `out_changes`
/// NULL or a writable `SottoDeviceListChanges`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_peer_record_update_devices(
    record: *mut SottoPeerRecord,
    list: *const SottoDeviceListEntry,
    count: usize,
    now: u64,
    out_changes: *mut SottoDeviceListChanges,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out_changes` is NULL or valid.
        let out = unsafe { out_value(out_changes, "out_changes") }?;
        if count > SOTTO_MAX_DEVICES_PER_USER {
            // Refused before the list is read, as the core refuses it.
            return Err(sotto::Error::InvalidDeviceList.into());
        }
        // SAFETY: the caller guarantees `count` readable entries (integers
        // only: every bit pattern is a value).
        let list = unsafe { input_array(list, count, "list") }?;
        let list = list
            .iter()
            .map(|e| {
                Ok((
                    DeviceId(e.device),
                    IdentityKey::from_bytes(&e.identity_key)?,
                ))
            })
            .collect::<FfiResult<Vec<_>>>()?;
        let changes =
            with_mut::<PeerRecord, _>(record, "record", |r| Ok(r.update_devices(&list, now)?))?;
        *out = (&changes).into();
        Ok(())
    })
}

/// Trusts the new identity of `device` that a device list reported
/// (`SottoIdentityChange.new_identity_key`), once the user accepted it. The
/// device's sessions, which belong to the old identity, are deleted. Save
/// the record afterwards.
///
/// # Safety
///
/// `identity_key` must be NULL or `identity_key_len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_peer_record_acknowledge_identity(
    record: *mut SottoPeerRecord,
    device: u32,
    identity_key: *const u8,
    identity_key_len: usize,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees the pointer/length pair.
        let key = unsafe { input(identity_key, identity_key_len, "identity_key") }?;
        let key = IdentityKey::from_bytes(key)?;
        with_mut::<PeerRecord, _>(record, "record", |r| {
            Ok(r.acknowledge_identity(DeviceId(device), &key)?)
        })
    })
}

/// Allows `device` to use classical X3DH when its bundles or prekey
/// messages carry no KEM part, or takes that back (SPEC §16.4). A device
/// that once used PQXDH is pinned and can never be allowed
/// (`SOTTO_ERROR_POST_QUANTUM_REQUIRED`).
///
/// # Safety
///
/// None beyond the handle, which is checked.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_peer_record_allow_classical(
    record: *mut SottoPeerRecord,
    device: u32,
    allowed: bool,
) -> SottoError {
    ffi_call(|| {
        with_mut::<PeerRecord, _>(record, "record", |r| {
            Ok(r.allow_classical(DeviceId(device), allowed)?)
        })
    })
}

/// The record's devices, in id order, into the caller's array of
/// `capacity` entries (`SOTTO_MAX_DEVICES_PER_USER` always fits); their
/// number into `*out_count`.
///
/// # Safety
///
/// `out` must be NULL or point to `capacity` writable entries; `out_count`
/// NULL or a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_peer_record_devices(
    record: *const SottoPeerRecord,
    out: *mut SottoDeviceInfo,
    capacity: usize,
    out_count: *mut usize,
) -> SottoError {
    ffi_call(|| {
        let devices = with_ref::<PeerRecord, _>(record, "record", |r| {
            Ok(r.devices()
                .map(|d| SottoDeviceInfo::from(&d))
                .collect::<Vec<_>>())
        })?;
        // SAFETY: forwarded from this function's contract.
        unsafe { out_array(out, capacity, out_count, &devices, "out") }
    })
}

/// Sorts the listed devices into ready, needs a bundle and blocked (SPEC
/// §16.3). Changes nothing.
///
/// # Safety
///
/// `out_plan` must be NULL or point to a writable `SottoSendPlan`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_peer_record_plan_send(
    record: *const SottoPeerRecord,
    now: u64,
    out_plan: *mut SottoSendPlan,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out_plan` is NULL or valid.
        let out = unsafe { out_value(out_plan, "out_plan") }?;
        let plan = with_ref::<PeerRecord, _>(record, "record", |r| Ok(r.plan_send(now)))?;
        *out = (&plan).into();
        Ok(())
    })
}

/// Starts a session with `device` from its `bundle` (what the server
/// returned for it) and makes it the device's active session; the previous
/// one is archived (SPEC §16.3). The bundle must be under the device's
/// trusted identity and verify; PQXDH is required unless the bundle has no
/// KEM prekey and the device is allowed classical. `local` must be the
/// record's device; it does not change. Save the record afterwards.
///
/// # Safety
///
/// `bundle` must be NULL or `bundle_len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_peer_record_add_bundle(
    record: *mut SottoPeerRecord,
    local: *const SottoDevice,
    device: u32,
    bundle: *const u8,
    bundle_len: usize,
    now: u64,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees the pointer/length pair.
        let bundle = PreKeyBundle::from_bytes(unsafe { input(bundle, bundle_len, "bundle") }?)?;
        with_mut::<PeerRecord, _>(record, "record", |r| {
            with_ref::<Device, _>(local, "local", |d| {
                Ok(r.add_bundle(d, DeviceId(device), bundle, now, &mut OsRng)?)
            })
        })
    })
}

/// Encrypts `payload` (up to `SOTTO_MAX_PAYLOAD_LEN` bytes) once for every
/// listed device with an active session and no pending identity change, in
/// device order, into a new outbox: one message per device, and the listed
/// devices that got none with the reason (SPEC §16.3). For the own record
/// these are the local user's other devices. All randomness is drawn
/// before any session changes. Save the record, then send.
///
/// # Safety
///
/// `payload` must be NULL or `payload_len` readable bytes; `out` NULL or a
/// writable `SottoOutbox *` set to NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_peer_record_encrypt(
    record: *mut SottoPeerRecord,
    payload: *const u8,
    payload_len: usize,
    out: *mut *mut SottoOutbox,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees the pointer/length pair.
        let payload = unsafe { input(payload, payload_len, "payload") }?;
        // SAFETY: the caller guarantees `out` is NULL or a valid slot.
        let out = unsafe { out_handle(out, "out") }?;
        let sent =
            with_mut::<PeerRecord, _>(record, "record", |r| Ok(r.encrypt(payload, &mut OsRng)?))?;
        *out = into_raw(Outbox::from_sent(sent));
        Ok(())
    })
}

/// Encrypts `payload` for `device` alone: a resend answering a retry
/// request, or a message meant for one device. Save the record, then send.
///
/// # Safety
///
/// `payload` must be NULL or `payload_len` readable bytes; `out_message`
/// NULL or an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_peer_record_encrypt_to(
    record: *mut SottoPeerRecord,
    device: u32,
    payload: *const u8,
    payload_len: usize,
    out_message: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees the pointer/length pair.
        let payload = unsafe { input(payload, payload_len, "payload") }?;
        // SAFETY: the caller guarantees `out_message` is NULL or valid.
        let out = unsafe { out_buffer(out_message, "out_message") }?;
        let message = with_mut::<PeerRecord, _>(record, "record", |r| {
            Ok(r.encrypt_to(DeviceId(device), payload, &mut OsRng)?)
        })?;
        out.set(message.into_bytes());
        Ok(())
    })
}

/// Decrypts a message that arrived from device `from` of the record's user
/// (SPEC §16.5): routed to the session it belongs to (a prekey message
/// with a new base key starts one, accepted with `local`, which then
/// changes: save the device, then the record, before acting on it). On
/// success `*out_received` holds what it carried.
///
/// On failure nothing changed, and `*out_failure` says what to do (SPEC
/// §16.6): ignore the message, keep it for later, request a retry
/// (`sotto_peer_record_request_retry`) or start a new session
/// (`sotto_peer_record_start_new_session`), with the reason or the hint.
/// The return code is the error that decided it. Bytes that do not parse
/// as a message are their parse error with `SOTTO_ACTION_IGNORE` /
/// `SOTTO_ACTION_REASON_MALFORMED`. `*out_failure` is written on every
/// return once `out_failure` itself is checked: `SOTTO_ACTION_NONE` on
/// success and for call errors (codes below 100).
///
/// # Safety
///
/// `message` must be NULL or `message_len` readable bytes; `out_received`
/// NULL or a writable `SottoReceived *` set to NULL; `out_failure` NULL or
/// a writable `SottoFailure`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_peer_record_decrypt(
    record: *mut SottoPeerRecord,
    local: *mut SottoDevice,
    from: u32,
    message: *const u8,
    message_len: usize,
    now: u64,
    out_received: *mut *mut SottoReceived,
    out_failure: *mut SottoFailure,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out_failure` is NULL or valid.
        let out_failure = unsafe { out_value(out_failure, "out_failure") }?;
        *out_failure = SottoFailure::NONE;
        // SAFETY: the caller guarantees the pointer/length pair.
        let message = unsafe { input(message, message_len, "message") }?;
        // SAFETY: the caller guarantees `out_received` is NULL or a valid
        // slot.
        let out = unsafe { out_handle(out_received, "out_received") }?;
        let message = Message::from_bytes(message).map_err(|e| {
            *out_failure = SottoFailure::MALFORMED;
            FfiError::from(e)
        })?;
        let received = with_mut::<PeerRecord, _>(record, "record", |r| {
            with_mut::<Device, _>(local, "local", |d| {
                r.decrypt(d, DeviceId(from), &message, now)
                    .map_err(|failure| failed(&failure, out_failure))
            })
        })?;
        *out = into_raw(received);
        Ok(())
    })
}

/// Sends a retry request for the message `hint` names to `device` over its
/// active session (SPEC §16.6): the answer to `SOTTO_ACTION_REQUEST_RETRY`.
/// At most `SOTTO_MAX_RETRY_REQUESTS_PER_INTERVAL` per device in each
/// `SOTTO_MIN_RECOVERY_INTERVAL` (`SOTTO_ERROR_RECOVERY_RATE_LIMITED`).
/// Save the record, then send the message.
///
/// # Safety
///
/// `hint` must be NULL or a readable `SottoRetryHint`; `out_message` NULL or
/// an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_peer_record_request_retry(
    record: *mut SottoPeerRecord,
    device: u32,
    hint: *const SottoRetryHint,
    now: u64,
    out_message: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `hint` is NULL or readable.
        let hint = unsafe { hint_input(hint) }?;
        // SAFETY: the caller guarantees `out_message` is NULL or valid.
        let out = unsafe { out_buffer(out_message, "out_message") }?;
        let message = with_mut::<PeerRecord, _>(record, "record", |r| {
            Ok(r.request_retry(DeviceId(device), &hint, now, &mut OsRng)?)
        })?;
        out.set(message.into_bytes());
        Ok(())
    })
}

/// Starts a new session with `device` from its `bundle`, whose first message
/// is a retry request for the message `hint` names (SPEC §16.6): the answer
/// to `SOTTO_ACTION_START_NEW_SESSION`. The old sessions stay archived and
/// keep decrypting. At most one per device in each
/// `SOTTO_MIN_RECOVERY_INTERVAL`. Checks as `sotto_peer_record_add_bundle`.
/// Save the record, then send the message.
///
/// # Safety
///
/// `bundle` must be NULL or `bundle_len` readable bytes; `hint` NULL or a
/// readable `SottoRetryHint`; `out_message` NULL or an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_peer_record_start_new_session(
    record: *mut SottoPeerRecord,
    local: *const SottoDevice,
    device: u32,
    bundle: *const u8,
    bundle_len: usize,
    hint: *const SottoRetryHint,
    now: u64,
    out_message: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees the pointer/length pair.
        let bundle = PreKeyBundle::from_bytes(unsafe { input(bundle, bundle_len, "bundle") }?)?;
        // SAFETY: the caller guarantees `hint` is NULL or readable.
        let hint = unsafe { hint_input(hint) }?;
        // SAFETY: the caller guarantees `out_message` is NULL or valid.
        let out = unsafe { out_buffer(out_message, "out_message") }?;
        let message = with_mut::<PeerRecord, _>(record, "record", |r| {
            with_ref::<Device, _>(local, "local", |d| {
                Ok(r.start_new_session(d, DeviceId(device), bundle, &hint, now, &mut OsRng)?)
            })
        })?;
        out.set(message.into_bytes());
        Ok(())
    })
}

/// Asks `device` for its current distribution of the group `group_id` (32
/// bytes), over its active session: for a group message that stays
/// `SOTTO_ACTION_REASON_MISSING_DISTRIBUTION`, or after a group was
/// restored. The peer receives a `SOTTO_CONTENT_KIND_DISTRIBUTION_REQUEST`.
/// Save the record, then send the message.
///
/// # Safety
///
/// `group_id` must be NULL or `group_id_len` readable bytes; `out_message`
/// NULL or an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_peer_record_request_distribution(
    record: *mut SottoPeerRecord,
    device: u32,
    group_id_ptr: *const u8,
    group_id_len: usize,
    out_message: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees the pointer/length pair.
        let id = group_id(unsafe { input(group_id_ptr, group_id_len, "group_id") }?)?;
        // SAFETY: the caller guarantees `out_message` is NULL or valid.
        let out = unsafe { out_buffer(out_message, "out_message") }?;
        let message = with_mut::<PeerRecord, _>(record, "record", |r| {
            Ok(r.request_distribution(DeviceId(device), &id, &mut OsRng)?)
        })?;
        out.set(message.into_bytes());
        Ok(())
    })
}

/// Deletes what is old at `now` (SPEC §16.7): devices stale for
/// `SOTTO_MAX_STALE_DEVICE_AGE`, and archived sessions on which nothing
/// decrypted for `SOTTO_MAX_ARCHIVED_SESSION_AGE`. Active sessions are never
/// expired. Save the record afterwards if anything was deleted.
///
/// # Safety
///
/// `out_expired` must be NULL or point to a writable `SottoExpired`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_peer_record_expire(
    record: *mut SottoPeerRecord,
    now: u64,
    out_expired: *mut SottoExpired,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out_expired` is NULL or valid.
        let out = unsafe { out_value(out_expired, "out_expired") }?;
        let expired = with_mut::<PeerRecord, _>(record, "record", |r| Ok(r.expire(now)))?;
        *out = (&expired).into();
        Ok(())
    })
}

/// Makes a record restored from a backup safe to use (SPEC §16.7); call it
/// after every restore, with the highest generation you recorded for this
/// record outside the backup (0 if none). If the restored generation is
/// lower, every session is deleted (they would decrypt again what they
/// decrypted, and reuse message numbers); `*out_deleted` receives how many.
/// New sessions are then made as for any device without one, and the peers'
/// messages on the deleted sessions are answered by recovery. The
/// generation becomes `max(generation, last_generation) + 1`.
///
/// # Safety
///
/// `out_deleted` must be NULL or point to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_peer_record_after_restore(
    record: *mut SottoPeerRecord,
    last_generation: u64,
    out_deleted: *mut usize,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out_deleted` is NULL or valid.
        let out = unsafe { out_value(out_deleted, "out_deleted") }?;
        *out =
            with_mut::<PeerRecord, _>(record, "record", |r| Ok(r.after_restore(last_generation)))?;
        Ok(())
    })
}

/// The record's user's fingerprint over all of its listed devices (SPEC
/// §16.9), as text: 30 digits in six groups of five
/// (`SOTTO_USER_FINGERPRINT_TEXT_LEN` bytes). A record with no listed device
/// has none (`SOTTO_ERROR_INVALID_DEVICE_LIST`).
///
/// # Safety
///
/// `out` must be NULL or point to an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_peer_record_fingerprint(
    record: *const SottoPeerRecord,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        let text =
            with_ref::<PeerRecord, _>(record, "record", |r| Ok(r.fingerprint()?.to_string()))?;
        out.set(text.into_bytes());
        Ok(())
    })
}

/// The safety number of the local user (whose own record is `own`) and the
/// record's user (SPEC §16.9), as text: 60 digits in twelve groups of five
/// (`SOTTO_SAFETY_NUMBER_TEXT_LEN` bytes). Both users see the same number
/// when they see the same device identities; compare it out of band. It
/// changes when any device identity of either user changes.
/// `SOTTO_ERROR_IDENTITY_MISMATCH` if `own` is not the own record of this
/// record's device.
///
/// # Safety
///
/// `out` must be NULL or point to an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_peer_record_safety_number(
    record: *const SottoPeerRecord,
    own: *const SottoPeerRecord,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        if core::ptr::eq(record, own) {
            return Err(FfiError::invalid("record and own are the same handle"));
        }
        let text = with_ref::<PeerRecord, _>(record, "record", |r| {
            with_ref::<PeerRecord, _>(own, "own", |o| Ok(r.safety_number(o)?.to_string()))
        })?;
        out.set(text.into_bytes());
        Ok(())
    })
}

/// The record's plain saved state (type 0x25, SPEC §16.11). It contains
/// secret keys: store it encrypted, or use `sotto_peer_record_seal`.
///
/// # Safety
///
/// `out` must be NULL or point to an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_peer_record_to_bytes(
    record: *const SottoPeerRecord,
    out: *mut SottoBuffer,
) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe { persist::to_bytes::<PeerRecord>(record, "record", out) })
}

/// Restores `sotto_peer_record_to_bytes` output into a new handle, strictly.
/// Then call `sotto_peer_record_after_restore`.
///
/// # Safety
///
/// `bytes` must be NULL or `len` readable bytes; `out` NULL or a writable
/// `SottoPeerRecord *` set to NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_peer_record_from_bytes(
    bytes: *const u8,
    len: usize,
    out: *mut *mut SottoPeerRecord,
) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe { persist::from_bytes::<PeerRecord>(bytes, len, out) })
}

/// The record's saved state encrypted under a 32-byte storage key and bound
/// to `context`, the record's key in your store (for example
/// `"record/bob"`); as `sotto_session_seal`.
///
/// # Safety
///
/// `key` and `context` must be NULL or their lengths in readable bytes;
/// `out` NULL or an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_peer_record_seal(
    record: *const SottoPeerRecord,
    key: *const u8,
    key_len: usize,
    context: *const u8,
    context_len: usize,
    out: *mut SottoBuffer,
) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe {
        persist::seal::<PeerRecord>(
            record,
            "record",
            (key, key_len),
            (context, context_len),
            out,
        )
    })
}

/// Opens `sotto_peer_record_seal` output, sealed under the same `context`,
/// into a new handle; as `sotto_session_unseal`. Then call
/// `sotto_peer_record_after_restore`.
///
/// # Safety
///
/// `sealed`, `key` and `context` must be NULL or their lengths in readable
/// bytes; `out` NULL or a writable `SottoPeerRecord *` set to NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_peer_record_unseal(
    sealed: *const u8,
    sealed_len: usize,
    key: *const u8,
    key_len: usize,
    context: *const u8,
    context_len: usize,
    out: *mut *mut SottoPeerRecord,
) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe {
        persist::unseal::<PeerRecord>(
            (sealed, sealed_len),
            (key, key_len),
            (context, context_len),
            out,
        )
    })
}

/// The record's generation: 1 more after every call that changed it.
/// Record it after every save, where an attacker cannot roll it back; pass
/// it to `sotto_peer_record_after_restore` after a restore.
///
/// # Safety
///
/// `out` must be NULL or point to a writable `uint64_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_peer_record_generation(
    record: *const SottoPeerRecord,
    out: *mut u64,
) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe { persist::generation::<PeerRecord>(record, "record", out) })
}

/// Releases a record and zeroizes its secrets. NULL is accepted; refused as
/// the other `_free` functions are.
///
/// # Safety
///
/// The pointer is checked against the live handles before any use. Do not
/// use it after this returns `SOTTO_ERROR_OK`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_peer_record_free(record: *mut SottoPeerRecord) -> SottoError {
    ffi_call(|| free::<PeerRecord>(record, "record"))
}
