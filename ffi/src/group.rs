//! Group functions: sender keys (create, distribute, encrypt, rotate) and
//! receivers (install, decrypt), with persistence.

use sotto::Session;
use sotto::group::{GroupId, GroupMessage, GroupReceiver, GroupSender};
use zeroize::Zeroizing;

use crate::buffer::{SottoBuffer, input, out_buffer, out_value};
use crate::error::{FfiError, FfiResult, SottoError, ffi_call};
use crate::handle::{
    SottoGroupReceiver, SottoGroupSender, SottoSession, free, into_raw, out_handle, with_mut,
    with_ref,
};
use crate::persist;
use crate::rng::OsRng;

fn group_id(bytes: &[u8]) -> FfiResult<GroupId> {
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| {
        FfiError::invalid(format!("group_id must be 32 bytes, got {}", bytes.len()))
    })?;
    Ok(GroupId::from_bytes(bytes))
}

fn group_message(bytes: &[u8]) -> FfiResult<GroupMessage> {
    if bytes.len() > sotto::group::MAX_GROUP_MESSAGE_LEN {
        return Err(sotto::Error::TooLarge.into());
    }
    Ok(GroupMessage::from_bytes(bytes)?)
}

/// Creates this member's sending chain for a group (`group_id`: 32 bytes the
/// app chooses, the same for every member). Send its distribution
/// (`sotto_group_sender_distribution`) to each member over your pairwise
/// session with them.
///
/// # Safety
///
/// `group_id` must be NULL or `group_id_len` readable bytes; `out` NULL or a
/// writable `SottoGroupSender *` set to NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_sender_new(
    group_id_ptr: *const u8,
    group_id_len: usize,
    out: *mut *mut SottoGroupSender,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees the pointer/length pair.
        let id = group_id(unsafe { input(group_id_ptr, group_id_len, "group_id") }?)?;
        // SAFETY: the caller guarantees `out` is NULL or a valid slot.
        let out = unsafe { out_handle(out, "out") }?;
        *out = into_raw(GroupSender::new(&mut OsRng, id));
        Ok(())
    })
}

/// The sender key distribution at the current index (secret: it lets the
/// holder read this chain from now on). Send it only inside pairwise
/// sessions.
///
/// # Safety
///
/// `sender` must be NULL or a live handle; `out` NULL or an empty
/// `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_sender_distribution(
    sender: *const SottoGroupSender,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        // SAFETY: the caller guarantees `sender` is NULL or a live handle.
        let distribution = unsafe {
            with_ref::<GroupSender, _>(sender, "sender", |s| Ok(s.distribution().to_bytes()))
        }?;
        out.set_from(&distribution);
        Ok(())
    })
}

/// Replaces the chain with a new one and returns its distribution. Do this
/// when a member leaves (and on a schedule), and send the new distribution
/// to the remaining members only. Save the sender afterwards.
///
/// # Safety
///
/// `sender` must be NULL or a live handle; `out` NULL or an empty
/// `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_sender_rotate(
    sender: *mut SottoGroupSender,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        // SAFETY: the caller guarantees `sender` is NULL or a live handle.
        let distribution = unsafe {
            with_mut::<GroupSender, _>(sender, "sender", |s| Ok(s.rotate(&mut OsRng).to_bytes()))
        }?;
        out.set_from(&distribution);
        Ok(())
    })
}

/// Encrypts and signs `plaintext` for the whole group. Save the sender
/// before sending.
///
/// # Safety
///
/// `sender` must be NULL or a live handle; `plaintext` NULL or
/// `plaintext_len` readable bytes; `out_message` NULL or an empty
/// `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_sender_encrypt(
    sender: *mut SottoGroupSender,
    plaintext: *const u8,
    plaintext_len: usize,
    out_message: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees the pointer/length pair.
        let plaintext = unsafe { input(plaintext, plaintext_len, "plaintext") }?;
        // SAFETY: the caller guarantees `out_message` is NULL or valid.
        let out = unsafe { out_buffer(out_message, "out_message") }?;
        // SAFETY: the caller guarantees `sender` is NULL or a live handle.
        let message = unsafe {
            with_mut::<GroupSender, _>(sender, "sender", |s| Ok(s.encrypt(&mut OsRng, plaintext)?))
        }?;
        out.set(message.into_bytes());
        Ok(())
    })
}

/// Installs a distribution that arrived as the plaintext of a message
/// `delivered_by` decrypted: the chain is attributed to that session's
/// remote identity (check it against the group's membership).
///
/// # Safety
///
/// `distribution` must be NULL or `distribution_len` readable bytes;
/// `delivered_by` NULL or a live handle; `out` NULL or a writable
/// `SottoGroupReceiver *` set to NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_receiver_accept(
    distribution: *const u8,
    distribution_len: usize,
    delivered_by: *const SottoSession,
    out: *mut *mut SottoGroupReceiver,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees the pointer/length pair.
        let distribution = unsafe { input(distribution, distribution_len, "distribution") }?;
        // SAFETY: the caller guarantees `out` is NULL or a valid slot.
        let out = unsafe { out_handle(out, "out") }?;
        // SAFETY: the caller guarantees `delivered_by` is NULL or a live handle.
        let receiver = unsafe {
            with_ref::<Session, _>(delivered_by, "delivered_by", |s| {
                Ok(GroupReceiver::accept(distribution, s)?)
            })
        }?;
        *out = into_raw(receiver);
        Ok(())
    })
}

/// Installs a distribution whose origin sotto cannot vouch for (a key
/// backup, a forwarded key). `sotto_group_receiver_sender_identity_key`
/// then returns an empty buffer: anyone who saw the distribution could
/// have written its messages.
///
/// # Safety
///
/// `distribution` must be NULL or `distribution_len` readable bytes; `out`
/// NULL or a writable `SottoGroupReceiver *` set to NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_receiver_import_unauthenticated(
    distribution: *const u8,
    distribution_len: usize,
    out: *mut *mut SottoGroupReceiver,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees the pointer/length pair.
        let distribution = unsafe { input(distribution, distribution_len, "distribution") }?;
        // SAFETY: the caller guarantees `out` is NULL or a valid slot.
        let out = unsafe { out_handle(out, "out") }?;
        *out = into_raw(GroupReceiver::import_unauthenticated(distribution)?);
        Ok(())
    })
}

/// Verifies and decrypts a group message of this receiver's chain (find the
/// receiver with `sotto_group_message_chain_id`). All or nothing. Save the
/// receiver before showing the plaintext.
///
/// # Safety
///
/// `receiver` must be NULL or a live handle; `message` NULL or
/// `message_len` readable bytes; `out_plaintext` NULL or an empty
/// `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_receiver_decrypt(
    receiver: *mut SottoGroupReceiver,
    message: *const u8,
    message_len: usize,
    out_plaintext: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees the pointer/length pair.
        let message = group_message(unsafe { input(message, message_len, "message") }?)?;
        // SAFETY: the caller guarantees `out_plaintext` is NULL or valid.
        let out = unsafe { out_buffer(out_plaintext, "out_plaintext") }?;
        // SAFETY: the caller guarantees `receiver` is NULL or a live handle.
        let read = unsafe {
            with_mut::<GroupReceiver, _>(receiver, "receiver", |r| Ok(r.decrypt(&message)?))
        }?;
        let plaintext = Zeroizing::new(read.plaintext);
        out.set_from(&plaintext);
        Ok(())
    })
}

/// The identity key (`SOTTO_IDENTITY_KEY_LEN` bytes) of the member this
/// chain belongs to, or an empty buffer if it was imported unauthenticated.
///
/// # Safety
///
/// `receiver` must be NULL or a live handle; `out` NULL or an empty
/// `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_receiver_sender_identity_key(
    receiver: *const SottoGroupReceiver,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        // SAFETY: the caller guarantees `receiver` is NULL or a live handle.
        let identity = unsafe {
            with_ref::<GroupReceiver, _>(receiver, "receiver", |r| {
                Ok(r.sender().identity().map(|i| i.to_bytes()))
            })
        }?;
        out.set(identity.map(|i| i.to_vec()).unwrap_or_default());
        Ok(())
    })
}

/// The sender chain id of a receiver.
///
/// # Safety
///
/// `receiver` must be NULL or a live handle; `out` NULL or a writable
/// `uint32_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_receiver_chain_id(
    receiver: *const SottoGroupReceiver,
    out: *mut u32,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_value(out, "out") }?;
        // SAFETY: the caller guarantees `receiver` is NULL or a live handle.
        *out = unsafe { with_ref::<GroupReceiver, _>(receiver, "receiver", |r| Ok(r.chain_id())) }?;
        Ok(())
    })
}

/// Parses a group message strictly and returns the sender chain id it
/// names, to pick the receiver that decrypts it.
///
/// # Safety
///
/// `message` must be NULL or `message_len` readable bytes; `out` NULL or a
/// writable `uint32_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_message_chain_id(
    message: *const u8,
    message_len: usize,
    out: *mut u32,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees the pointer/length pair.
        let message = group_message(unsafe { input(message, message_len, "message") }?)?;
        // SAFETY: the caller guarantees `out` is NULL or valid.
        *unsafe { out_value(out, "out") }? = message.chain_id();
        Ok(())
    })
}

/// The sender's plain saved state (it contains secret keys).
///
/// # Safety
///
/// `sender` must be NULL or a live handle; `out` NULL or an empty
/// `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_sender_to_bytes(
    sender: *const SottoGroupSender,
    out: *mut SottoBuffer,
) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe { persist::to_bytes::<GroupSender>(sender, "sender", out) })
}

/// Restores `sotto_group_sender_to_bytes` output into a new handle.
///
/// # Safety
///
/// `bytes` must be NULL or `len` readable bytes; `out` NULL or a writable
/// `SottoGroupSender *` set to NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_sender_from_bytes(
    bytes: *const u8,
    len: usize,
    out: *mut *mut SottoGroupSender,
) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe { persist::from_bytes::<GroupSender>(bytes, len, out) })
}

/// The sender's saved state encrypted under a 32-byte storage key.
///
/// # Safety
///
/// `sender` must be NULL or a live handle; `key` NULL or `key_len` readable
/// bytes; `out` NULL or an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_sender_seal(
    sender: *const SottoGroupSender,
    key: *const u8,
    key_len: usize,
    out: *mut SottoBuffer,
) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe { persist::seal::<GroupSender>(sender, "sender", key, key_len, out) })
}

/// Opens `sotto_group_sender_seal` output into a new handle.
///
/// # Safety
///
/// `sealed` and `key` must be NULL or point to their lengths in readable
/// bytes; `out` NULL or a writable `SottoGroupSender *` set to NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_sender_unseal(
    sealed: *const u8,
    sealed_len: usize,
    key: *const u8,
    key_len: usize,
    out: *mut *mut SottoGroupSender,
) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe { persist::unseal::<GroupSender>(sealed, sealed_len, key, key_len, out) })
}

/// Releases a sender and zeroizes its secrets. NULL is accepted.
///
/// # Safety
///
/// `sender` must be NULL or a live handle not in use by another thread; it
/// must not be used after this returns `SOTTO_ERROR_OK`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_sender_free(sender: *mut SottoGroupSender) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe { free::<GroupSender>(sender, "sender") })
}

/// The receiver's plain saved state (it contains secret keys).
///
/// # Safety
///
/// `receiver` must be NULL or a live handle; `out` NULL or an empty
/// `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_receiver_to_bytes(
    receiver: *const SottoGroupReceiver,
    out: *mut SottoBuffer,
) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe { persist::to_bytes::<GroupReceiver>(receiver, "receiver", out) })
}

/// Restores `sotto_group_receiver_to_bytes` output into a new handle.
///
/// # Safety
///
/// `bytes` must be NULL or `len` readable bytes; `out` NULL or a writable
/// `SottoGroupReceiver *` set to NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_receiver_from_bytes(
    bytes: *const u8,
    len: usize,
    out: *mut *mut SottoGroupReceiver,
) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe { persist::from_bytes::<GroupReceiver>(bytes, len, out) })
}

/// The receiver's saved state encrypted under a 32-byte storage key.
///
/// # Safety
///
/// `receiver` must be NULL or a live handle; `key` NULL or `key_len` readable
/// bytes; `out` NULL or an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_receiver_seal(
    receiver: *const SottoGroupReceiver,
    key: *const u8,
    key_len: usize,
    out: *mut SottoBuffer,
) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe { persist::seal::<GroupReceiver>(receiver, "receiver", key, key_len, out) })
}

/// Opens `sotto_group_receiver_seal` output into a new handle.
///
/// # Safety
///
/// `sealed` and `key` must be NULL or point to their lengths in readable
/// bytes; `out` NULL or a writable `SottoGroupReceiver *` set to NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_receiver_unseal(
    sealed: *const u8,
    sealed_len: usize,
    key: *const u8,
    key_len: usize,
    out: *mut *mut SottoGroupReceiver,
) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe { persist::unseal::<GroupReceiver>(sealed, sealed_len, key, key_len, out) })
}

/// Releases a receiver and zeroizes its secrets. NULL is accepted.
///
/// # Safety
///
/// `receiver` must be NULL or a live handle not in use by another thread; it
/// must not be used after this returns `SOTTO_ERROR_OK`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_receiver_free(
    receiver: *mut SottoGroupReceiver,
) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe { free::<GroupReceiver>(receiver, "receiver") })
}
