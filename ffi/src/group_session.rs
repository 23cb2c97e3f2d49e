//! Groups through the session layer (SPEC §16.8): members, fan-out of the
//! local chain to every device of every member through their peer records,
//! installs only from members' devices, and removal in one call.

use sotto::Device;
use sotto::sessions::{DeviceId, GroupSession, MAX_GROUP_MEMBERS, PeerRecord, Received};

use crate::buffer::{SottoBuffer, input, input_array, out_buffer, out_value};
use crate::error::{FfiError, FfiResult, SottoError, ffi_call};
use crate::group::{group_id, group_message};
use crate::handle::{
    SottoDevice, SottoGroupSession, SottoOutbox, SottoPeerRecord, SottoReceived, free, into_raw,
    out_handle, with_all_mut, with_mut, with_ref,
};
use crate::outbox::Outbox;
use crate::persist;
use crate::received::{SottoFailure, failed};
use crate::record::user_id;
use crate::rng::OsRng;
use crate::store::SottoInsertOutcome;

/// Borrows the caller's array of record handles.
///
/// # Safety
///
/// `records` must be NULL or point to `count` readable handle pointers.
unsafe fn record_list<'a>(
    records: *const *mut SottoPeerRecord,
    count: usize,
) -> FfiResult<&'a [*mut SottoPeerRecord]> {
    if count > MAX_GROUP_MEMBERS {
        // More records than a group has members: some are not members' or
        // repeat one (refused before any handle is claimed).
        return Err(sotto::Error::NotGroupMember.into());
    }
    // SAFETY: forwarded from this function's contract; a pointer's every
    // bit pattern is a value (each is checked as a handle when claimed).
    unsafe { input_array(records, count, "records") }
}

/// Creates a group `group_id` (32 bytes, the same for every member) whose
/// only member is the local user `local_user`, with a new sender chain owned
/// by `local`'s identity. Add the members, then hand the chain out with
/// `sotto_group_session_distribute`.
///
/// # Safety
///
/// `group_id` and `local_user` must be NULL or their lengths in readable
/// bytes; `out` NULL or a writable `SottoGroupSession *` set to NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_session_new(
    local: *const SottoDevice,
    group_id_ptr: *const u8,
    group_id_len: usize,
    local_user: *const u8,
    local_user_len: usize,
    out: *mut *mut SottoGroupSession,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees each pointer/length pair.
        let id = group_id(unsafe { input(group_id_ptr, group_id_len, "group_id") }?)?;
        // SAFETY: as above.
        let user = user_id(unsafe { input(local_user, local_user_len, "local_user") }?)?;
        // SAFETY: the caller guarantees `out` is NULL or a valid slot.
        let out = unsafe { out_handle(out, "out") }?;
        let group = with_ref::<Device, _>(local, "local", |d| {
            Ok(GroupSession::new(&mut OsRng, id, user, d)?)
        })?;
        *out = into_raw(group);
        Ok(())
    })
}

/// Adds `user` as a member (`*out_added`: whether it was new); then hand it
/// the local chain with `sotto_group_session_distribute`. Membership is
/// yours, from your own authenticated source: the group enforces it.
///
/// # Safety
///
/// `user` must be NULL or `user_len` readable bytes; `out_added` NULL or a
/// writable `bool`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_session_add_member(
    group: *mut SottoGroupSession,
    user: *const u8,
    user_len: usize,
    out_added: *mut bool,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees the pointer/length pair.
        let user = user_id(unsafe { input(user, user_len, "user") }?)?;
        // SAFETY: the caller guarantees `out_added` is NULL or valid.
        let out = unsafe { out_value(out_added, "out_added") }?;
        *out = with_mut::<GroupSession, _>(group, "group", |g| Ok(g.add_member(user)?))?;
        Ok(())
    })
}

/// Whether `user` is a member.
///
/// # Safety
///
/// `user` must be NULL or `user_len` readable bytes; `out` NULL or a
/// writable `bool`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_session_is_member(
    group: *const SottoGroupSession,
    user: *const u8,
    user_len: usize,
    out: *mut bool,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees the pointer/length pair.
        let user = user_id(unsafe { input(user, user_len, "user") }?)?;
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_value(out, "out") }?;
        *out = with_ref::<GroupSession, _>(group, "group", |g| Ok(g.is_member(&user)))?;
        Ok(())
    })
}

/// How many members the group has, the local user included.
///
/// # Safety
///
/// `out` must be NULL or point to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_session_member_count(
    group: *const SottoGroupSession,
    out: *mut usize,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_value(out, "out") }?;
        *out = with_ref::<GroupSession, _>(group, "group", |g| Ok(g.members().count()))?;
        Ok(())
    })
}

/// The group's id (`SOTTO_GROUP_ID_LEN` bytes).
///
/// # Safety
///
/// `out` must be NULL or point to an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_session_group_id(
    group: *const SottoGroupSession,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        let id = with_ref::<GroupSession, _>(group, "group", |g| Ok(*g.group_id().as_bytes()))?;
        out.set(id.to_vec());
        Ok(())
    })
}

/// Encrypts the local chain's distribution for every listed device with a
/// session of each of the `count` records (members' records, each user once;
/// the own record reaches the local user's other devices), into a new
/// outbox whose record indices are positions in `records`. All randomness
/// is drawn first. The group does not change; the records do: save them,
/// then send.
///
/// # Safety
///
/// `records` must be NULL or point to `count` readable handle pointers;
/// `out` NULL or a writable `SottoOutbox *` set to NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_session_distribute(
    group: *const SottoGroupSession,
    records: *const *mut SottoPeerRecord,
    count: usize,
    out: *mut *mut SottoOutbox,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: forwarded from this function's contract.
        let records = unsafe { record_list(records, count) }?;
        // SAFETY: the caller guarantees `out` is NULL or a valid slot.
        let out = unsafe { out_handle(out, "out") }?;
        let fanout =
            with_ref::<GroupSession, _>(group, "group", |g| {
                with_all_mut::<PeerRecord, _>(records, "records", |rs| {
                    Ok(g.distribute(rs, &mut OsRng)?)
                })
            })?;
        *out = into_raw(Outbox::from_fanout(fanout));
        Ok(())
    })
}

/// Encrypts the local chain's distribution for `device` of `record`'s user
/// alone: a new device, or the answer to a distribution request. Save the
/// record, then send.
///
/// # Safety
///
/// `out_message` must be NULL or an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_session_distribute_to(
    group: *const SottoGroupSession,
    record: *mut SottoPeerRecord,
    device: u32,
    out_message: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out_message` is NULL or valid.
        let out = unsafe { out_buffer(out_message, "out_message") }?;
        let message = with_ref::<GroupSession, _>(group, "group", |g| {
            with_mut::<PeerRecord, _>(record, "record", |r| {
                Ok(g.distribute_to(r, DeviceId(device), &mut OsRng)?)
            })
        })?;
        out.set(message.into_bytes());
        Ok(())
    })
}

/// Installs a distribution that `record` decrypted (`received`, of kind
/// `SOTTO_CONTENT_KIND_DISTRIBUTION`) (SPEC §16.8): only from a member's
/// device with no pending identity change, and only as that device's own
/// chain. Save the group afterwards.
///
/// # Safety
///
/// `out_outcome` must be NULL or point to a writable `SottoInsertOutcome`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_session_install(
    group: *mut SottoGroupSession,
    record: *const SottoPeerRecord,
    received: *const SottoReceived,
    out_outcome: *mut SottoInsertOutcome,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out_outcome` is NULL or valid.
        let out = unsafe { out_value(out_outcome, "out_outcome") }?;
        let outcome = with_mut::<GroupSession, _>(group, "group", |g| {
            with_ref::<PeerRecord, _>(record, "record", |r| {
                with_ref::<Received, _>(received, "received", |rc| Ok(g.install(r, rc)?))
            })
        })?;
        *out = outcome.into();
        Ok(())
    })
}

/// Encrypts `payload` once for the whole group on the local chain. Save the
/// group, then send the message to every member's devices.
///
/// # Safety
///
/// `payload` must be NULL or `payload_len` readable bytes; `out_message`
/// NULL or an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_session_encrypt(
    group: *mut SottoGroupSession,
    payload: *const u8,
    payload_len: usize,
    out_message: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees the pointer/length pair.
        let payload = unsafe { input(payload, payload_len, "payload") }?;
        // SAFETY: the caller guarantees `out_message` is NULL or valid.
        let out = unsafe { out_buffer(out_message, "out_message") }?;
        let message =
            with_mut::<GroupSession, _>(group, "group", |g| Ok(g.encrypt(payload, &mut OsRng)?))?;
        out.set(message.into_bytes());
        Ok(())
    })
}

/// Decrypts a group message that came from the user whose record is
/// `record` (as the server says; SPEC §16.8): the plaintext, its chain's
/// owner (`SOTTO_IDENTITY_KEY_LEN` bytes) and whether that owner is
/// authenticated. The chain's owner must be the trusted identity of one of
/// `record`'s devices. On failure nothing changed and `*out_failure` says
/// what to do, as for `sotto_peer_record_decrypt`: a chain not installed
/// yet is `SOTTO_ACTION_RETRY_LATER` /
/// `SOTTO_ACTION_REASON_MISSING_DISTRIBUTION` (keep the message), an owner
/// device with a pending identity change `SOTTO_ACTION_RETRY_LATER` /
/// `SOTTO_ACTION_REASON_IDENTITY_CHANGE_PENDING`, a replay
/// `SOTTO_ACTION_IGNORE` / `SOTTO_ACTION_REASON_DUPLICATE`, another user's
/// record `SOTTO_ACTION_IGNORE` / `SOTTO_ACTION_REASON_WRONG_LOCAL_DEVICE`
/// (not the local device's) or `SOTTO_ACTION_REASON_MALFORMED` (a
/// non-member, `NOT_GROUP_MEMBER`; a chain of no device of `record`,
/// `IDENTITY_MISMATCH`), anything else (bytes that do not parse included)
/// `SOTTO_ACTION_IGNORE` / `SOTTO_ACTION_REASON_MALFORMED`. Save the group
/// before showing the plaintext.
///
/// # Safety
///
/// `message` must be NULL or `message_len` readable bytes; `out_plaintext`
/// and `out_sender` NULL or distinct empty `SottoBuffer`s;
/// `out_authenticated` NULL or a writable `bool`; `out_failure` NULL or a
/// writable `SottoFailure`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_session_decrypt(
    group: *mut SottoGroupSession,
    record: *const SottoPeerRecord,
    message: *const u8,
    message_len: usize,
    out_plaintext: *mut SottoBuffer,
    out_sender: *mut SottoBuffer,
    out_authenticated: *mut bool,
    out_failure: *mut SottoFailure,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out_failure` is NULL or valid.
        let out_failure = unsafe { out_value(out_failure, "out_failure") }?;
        *out_failure = SottoFailure::NONE;
        // SAFETY: the caller guarantees the pointer/length pair.
        let message = unsafe { input(message, message_len, "message") }?;
        // Compared before any reference to either buffer exists.
        if !out_plaintext.is_null() && core::ptr::eq(out_plaintext, out_sender) {
            return Err(FfiError::invalid(
                "out_plaintext and out_sender are the same buffer",
            ));
        }
        // SAFETY: the caller guarantees each output is NULL or valid, and
        // the two buffers are distinct (checked above).
        let out_plaintext = unsafe { out_buffer(out_plaintext, "out_plaintext") }?;
        // SAFETY: as above.
        let out_sender = unsafe { out_buffer(out_sender, "out_sender") }?;
        // SAFETY: as above.
        let out_authenticated = unsafe { out_value(out_authenticated, "out_authenticated") }?;
        let message = group_message(message).inspect_err(|_| {
            *out_failure = SottoFailure::MALFORMED;
        })?;
        let read = with_mut::<GroupSession, _>(group, "group", |g| {
            with_ref::<PeerRecord, _>(record, "record", |r| {
                g.decrypt(r, &message)
                    .map_err(|failure| failed(&failure, out_failure))
            })
        })?;
        let sender = *read.sender();
        let plaintext = read.into_bytes();
        out_plaintext.set_from(&plaintext);
        out_sender.set(sender.owner().to_bytes().to_vec());
        *out_authenticated = sender.is_authenticated();
        Ok(())
    })
}

/// Removes `user` in one call (SPEC §16.8): every chain not owned by the
/// local device or by a device of the remaining members' `records` is
/// dropped (so every chain of the removed user), the local chain is
/// replaced, and its distribution is encrypted for every listed device with
/// a session of the remaining members, into a new outbox. `records` must be
/// exactly the remaining members' records, each once (the own record for the
/// local user). A removed member can read nothing sent afterwards, and
/// nothing it sends is accepted. Save the group and the records, then send.
///
/// # Safety
///
/// `user` must be NULL or `user_len` readable bytes; `records` NULL or
/// `count` readable handle pointers; `out` NULL or a writable
/// `SottoOutbox *` set to NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_session_remove_member(
    group: *mut SottoGroupSession,
    local: *const SottoDevice,
    user: *const u8,
    user_len: usize,
    records: *const *mut SottoPeerRecord,
    count: usize,
    out: *mut *mut SottoOutbox,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees the pointer/length pair.
        let user = user_id(unsafe { input(user, user_len, "user") }?)?;
        // SAFETY: forwarded from this function's contract.
        let records = unsafe { record_list(records, count) }?;
        // SAFETY: the caller guarantees `out` is NULL or a valid slot.
        let out = unsafe { out_handle(out, "out") }?;
        let fanout = with_mut::<GroupSession, _>(group, "group", |g| {
            with_ref::<Device, _>(local, "local", |d| {
                with_all_mut::<PeerRecord, _>(records, "records", |rs| {
                    Ok(g.remove_member(d, &user, rs, &mut OsRng)?)
                })
            })
        })?;
        *out = into_raw(Outbox::from_fanout(fanout));
        Ok(())
    })
}

/// Replaces the local chain and hands the new one to every member's
/// devices, dropping chains of devices no record holds, as
/// `sotto_group_session_remove_member` without removing anyone: on a
/// schedule, or after a device left a member's list. `records` must be
/// exactly every other member's record and the own record.
///
/// # Safety
///
/// As for `sotto_group_session_remove_member`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_session_rotate(
    group: *mut SottoGroupSession,
    local: *const SottoDevice,
    records: *const *mut SottoPeerRecord,
    count: usize,
    out: *mut *mut SottoOutbox,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: forwarded from this function's contract.
        let records = unsafe { record_list(records, count) }?;
        // SAFETY: the caller guarantees `out` is NULL or a valid slot.
        let out = unsafe { out_handle(out, "out") }?;
        let fanout = with_mut::<GroupSession, _>(group, "group", |g| {
            with_ref::<Device, _>(local, "local", |d| {
                with_all_mut::<PeerRecord, _>(records, "records", |rs| {
                    Ok(g.rotate(d, rs, &mut OsRng)?)
                })
            })
        })?;
        *out = into_raw(Outbox::from_fanout(fanout));
        Ok(())
    })
}

/// Makes a group restored from a backup safe (SPEC §16.8); call it after
/// every restore with the highest generation you recorded for it (0 if
/// none). If the copy was stale (`*out_stale`), the local chain was replaced
/// and every other member's chain dropped: hand out the new chain
/// (`sotto_group_session_distribute`) and ask the members' devices for
/// theirs (`sotto_peer_record_request_distribution`).
///
/// # Safety
///
/// `out_stale` must be NULL or point to a writable `bool`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_session_after_restore(
    group: *mut SottoGroupSession,
    local: *const SottoDevice,
    last_generation: u64,
    out_stale: *mut bool,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out_stale` is NULL or valid.
        let out = unsafe { out_value(out_stale, "out_stale") }?;
        *out = with_mut::<GroupSession, _>(group, "group", |g| {
            with_ref::<Device, _>(local, "local", |d| {
                Ok(g.after_restore(d, last_generation, &mut OsRng)?)
            })
        })?;
        Ok(())
    })
}

/// The group's plain saved state (type 0x26, SPEC §16.11). It contains
/// secret keys: store it encrypted, or use `sotto_group_session_seal`.
///
/// # Safety
///
/// `out` must be NULL or point to an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_session_to_bytes(
    group: *const SottoGroupSession,
    out: *mut SottoBuffer,
) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe { persist::to_bytes::<GroupSession>(group, "group", out) })
}

/// Restores `sotto_group_session_to_bytes` output into a new handle. Then
/// call `sotto_group_session_after_restore`.
///
/// # Safety
///
/// `bytes` must be NULL or `len` readable bytes; `out` NULL or a writable
/// `SottoGroupSession *` set to NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_session_from_bytes(
    bytes: *const u8,
    len: usize,
    out: *mut *mut SottoGroupSession,
) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe { persist::from_bytes::<GroupSession>(bytes, len, out) })
}

/// The group's saved state encrypted under a 32-byte storage key and bound
/// to `context`; as `sotto_session_seal`.
///
/// # Safety
///
/// `key` and `context` must be NULL or their lengths in readable bytes;
/// `out` NULL or an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_session_seal(
    group: *const SottoGroupSession,
    key: *const u8,
    key_len: usize,
    context: *const u8,
    context_len: usize,
    out: *mut SottoBuffer,
) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe {
        persist::seal::<GroupSession>(group, "group", (key, key_len), (context, context_len), out)
    })
}

/// Opens `sotto_group_session_seal` output, sealed under the same
/// `context`, into a new handle; as `sotto_session_unseal`. Then call
/// `sotto_group_session_after_restore`.
///
/// # Safety
///
/// `sealed`, `key` and `context` must be NULL or their lengths in readable
/// bytes; `out` NULL or a writable `SottoGroupSession *` set to NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_session_unseal(
    sealed: *const u8,
    sealed_len: usize,
    key: *const u8,
    key_len: usize,
    context: *const u8,
    context_len: usize,
    out: *mut *mut SottoGroupSession,
) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe {
        persist::unseal::<GroupSession>(
            (sealed, sealed_len),
            (key, key_len),
            (context, context_len),
            out,
        )
    })
}

/// The group's generation: 1 more after every call that changed it.
///
/// # Safety
///
/// `out` must be NULL or point to a writable `uint64_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_session_generation(
    group: *const SottoGroupSession,
    out: *mut u64,
) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe { persist::generation::<GroupSession>(group, "group", out) })
}

/// Releases a group session and zeroizes its secrets. NULL is accepted;
/// refused as the other `_free` functions are.
///
/// # Safety
///
/// The pointer is checked against the live handles before any use. Do not
/// use it after this returns `SOTTO_ERROR_OK`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_session_free(group: *mut SottoGroupSession) -> SottoError {
    ffi_call(|| free::<GroupSession>(group, "group"))
}
