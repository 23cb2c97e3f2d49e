//! Group sender functions (create, distribute, encrypt, rotate, persist)
//! and the parsing of group messages. Receiving is in `store.rs`.

use sotto::Device;
use sotto::group::{GroupId, GroupMessage, GroupSender};

use crate::buffer::{SottoBuffer, input, out_buffer, out_value};
use crate::error::{FfiError, FfiResult, SottoError, ffi_call};
use crate::handle::{
    SottoDevice, SottoGroupSender, free, into_raw, out_handle, with_mut, with_ref,
};
use crate::persist;
use crate::rng::OsRng;

/// A 32-byte group id.
pub(crate) fn group_id(bytes: &[u8]) -> FfiResult<GroupId> {
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| {
        FfiError::invalid(format!("group_id must be 32 bytes, got {}", bytes.len()))
    })?;
    Ok(GroupId::from_bytes(bytes))
}

/// A group message, parsed strictly (`TooLarge` before the copy).
pub(crate) fn group_message(bytes: &[u8]) -> FfiResult<GroupMessage> {
    Ok(GroupMessage::from_bytes(bytes)?)
}

/// Creates this member's sending chain for a group (`group_id`: 32 bytes the
/// app chooses, the same for every member), owned by `device`'s identity:
/// the chain carries a proof, made with its own key, that names that
/// identity as its owner. Send its distribution
/// (`sotto_group_sender_distribution`) to each member over your pairwise
/// session with them. The device is not changed.
///
/// # Safety
///
/// `group_id` must be NULL or `group_id_len` readable bytes; `out` NULL or a
/// writable `SottoGroupSender *` set to NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_sender_new(
    device: *const SottoDevice,
    group_id_ptr: *const u8,
    group_id_len: usize,
    out: *mut *mut SottoGroupSender,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees the pointer/length pair.
        let id = group_id(unsafe { input(group_id_ptr, group_id_len, "group_id") }?)?;
        // SAFETY: the caller guarantees `out` is NULL or a valid slot.
        let out = unsafe { out_handle(out, "out") }?;
        let sender = with_ref::<Device, _>(device, "device", |d| {
            Ok(GroupSender::new(&mut OsRng, id, d)?)
        })?;
        *out = into_raw(sender);
        Ok(())
    })
}

/// The sender key distribution at the current index
/// (`SOTTO_SENDER_KEY_DISTRIBUTION_LEN` bytes, secret: it lets the holder
/// read this chain from now on). Send it only inside pairwise sessions, to
/// current members; they install it with
/// `sotto_group_store_receive_distribution`.
///
/// # Safety
///
/// `out` must be NULL or point to an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_sender_distribution(
    sender: *const SottoGroupSender,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        let distribution =
            with_ref::<GroupSender, _>(sender, "sender", |s| Ok(s.distribution().to_bytes()))?;
        out.set_from(&distribution);
        Ok(())
    })
}

/// Replaces the chain with a new one (same group and owner) and returns its
/// distribution. Do this when a member leaves (and on a schedule, and after
/// restoring an older saved sender), and send the new distribution to the
/// remaining members only. Save the sender afterwards.
///
/// # Safety
///
/// `out` must be NULL or point to an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_sender_rotate(
    sender: *mut SottoGroupSender,
    device: *const SottoDevice,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        let distribution = with_ref::<Device, _>(device, "device", |d| {
            with_mut::<GroupSender, _>(sender, "sender", |s| {
                Ok(s.rotate(&mut OsRng, d)?.to_bytes())
            })
        })?;
        out.set_from(&distribution);
        Ok(())
    })
}

/// Encrypts and signs `plaintext` for the whole group. Save the sender
/// before sending.
///
/// # Safety
///
/// `plaintext` must be NULL or `plaintext_len` readable bytes;
/// `out_message` NULL or an empty `SottoBuffer`.
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
        let message =
            with_mut::<GroupSender, _>(
                sender,
                "sender",
                |s| Ok(s.encrypt(&mut OsRng, plaintext)?),
            )?;
        out.set(message.into_bytes());
        Ok(())
    })
}

/// The identity key (`SOTTO_IDENTITY_KEY_LEN` bytes) the chain's owner
/// proof names: the device that created the sender.
///
/// # Safety
///
/// `out` must be NULL or point to an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_sender_owner_identity_key(
    sender: *const SottoGroupSender,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        let owner = with_ref::<GroupSender, _>(sender, "sender", |s| Ok(s.owner().to_bytes()))?;
        out.set(owner.to_vec());
        Ok(())
    })
}

/// The sender's group id (`SOTTO_GROUP_ID_LEN` bytes).
///
/// # Safety
///
/// `out` must be NULL or point to an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_sender_group_id(
    sender: *const SottoGroupSender,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        let id = with_ref::<GroupSender, _>(sender, "sender", |s| Ok(*s.group_id().as_bytes()))?;
        out.set(id.to_vec());
        Ok(())
    })
}

/// The current chain's id (`SOTTO_CHAIN_ID_LEN` bytes: the chain's public
/// key). It changes with every rotation.
///
/// # Safety
///
/// `out` must be NULL or point to an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_sender_chain_id(
    sender: *const SottoGroupSender,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        let chain = with_ref::<GroupSender, _>(sender, "sender", |s| Ok(*s.chain().as_bytes()))?;
        out.set(chain.to_vec());
        Ok(())
    })
}

/// The index the next message will use.
///
/// # Safety
///
/// `out` must be NULL or point to a writable `uint32_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_sender_index(
    sender: *const SottoGroupSender,
    out: *mut u32,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_value(out, "out") }?;
        *out = with_ref::<GroupSender, _>(sender, "sender", |s| Ok(s.index()))?;
        Ok(())
    })
}

/// Parses a group message strictly and returns the group it is for
/// (`SOTTO_GROUP_ID_LEN` bytes), to pick the store that decrypts it.
///
/// # Safety
///
/// `message` must be NULL or `message_len` readable bytes; `out` NULL or an
/// empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_message_group_id(
    message: *const u8,
    message_len: usize,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees the pointer/length pair.
        let message = group_message(unsafe { input(message, message_len, "message") }?)?;
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        out.set(message.group_id().as_bytes().to_vec());
        Ok(())
    })
}

/// Parses a group message strictly and returns the sender chain it names
/// (`SOTTO_CHAIN_ID_LEN` bytes). Unauthenticated until decrypted.
///
/// # Safety
///
/// `message` must be NULL or `message_len` readable bytes; `out` NULL or an
/// empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_message_chain_id(
    message: *const u8,
    message_len: usize,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees the pointer/length pair.
        let message = group_message(unsafe { input(message, message_len, "message") }?)?;
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        out.set(message.chain().as_bytes().to_vec());
        Ok(())
    })
}

/// Parses a group message strictly and returns its index in its chain.
/// Unauthenticated until decrypted.
///
/// # Safety
///
/// `message` must be NULL or `message_len` readable bytes; `out` NULL or a
/// writable `uint32_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_message_index(
    message: *const u8,
    message_len: usize,
    out: *mut u32,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees the pointer/length pair.
        let message = group_message(unsafe { input(message, message_len, "message") }?)?;
        // SAFETY: the caller guarantees `out` is NULL or valid.
        *unsafe { out_value(out, "out") }? = message.index();
        Ok(())
    })
}

/// The sender's plain saved state. It contains secret keys: store it
/// encrypted, or use `sotto_group_sender_seal`.
///
/// # Safety
///
/// `out` must be NULL or point to an empty `SottoBuffer`.
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

/// The sender's saved state encrypted under a 32-byte storage key (from the
/// platform keystore) and bound to `context`: the record's key in the app's
/// store (for example `"group/9f3a/sender"`), at most `SOTTO_MAX_SEAL_CONTEXT_LEN`
/// bytes (`SOTTO_ERROR_TOO_LARGE` otherwise). The blob opens only under the
/// same context, so a blob copied into another record is refused.
///
/// # Safety
///
/// `key` and `context` must be NULL or their lengths in readable bytes;
/// `out` NULL or an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_sender_seal(
    sender: *const SottoGroupSender,
    key: *const u8,
    key_len: usize,
    context: *const u8,
    context_len: usize,
    out: *mut SottoBuffer,
) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe {
        persist::seal::<GroupSender>(
            sender,
            "sender",
            (key, key_len),
            (context, context_len),
            out,
        )
    })
}

/// Opens `sotto_group_sender_seal` output, sealed under the same `context`, into a
/// new handle. The wrong key, the wrong context or altered bytes fail with
/// `SOTTO_ERROR_AUTHENTICATION_FAILED`. Compare the restored generation
/// with the one you recorded to detect a rolled-back blob.
///
/// # Safety
///
/// `sealed`, `key` and `context` must be NULL or their lengths in readable
/// bytes; `out` NULL or a writable `SottoGroupSender *` set to NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_sender_unseal(
    sealed: *const u8,
    sealed_len: usize,
    key: *const u8,
    key_len: usize,
    context: *const u8,
    context_len: usize,
    out: *mut *mut SottoGroupSender,
) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe {
        persist::unseal::<GroupSender>(
            (sealed, sealed_len),
            (key, key_len),
            (context, context_len),
            out,
        )
    })
}

/// The sender's generation: 0 when new, 1 more after every call that
/// changed it (SPEC §10.1). Record it, after every save, where an attacker
/// cannot roll it back; a restored state with a lower generation is a
/// rollback.
///
/// # Safety
///
/// `out` must be NULL or point to a writable `uint64_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_sender_generation(
    sender: *const SottoGroupSender,
    out: *mut u64,
) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe { persist::generation::<GroupSender>(sender, "sender", out) })
}

/// Releases a sender and zeroizes its secrets. NULL is accepted. Refused
/// with `SOTTO_ERROR_HANDLE_BUSY` while another call uses it (nothing is
/// freed), and with `SOTTO_ERROR_WRONG_HANDLE` if it is not a live sender
/// handle (for example already freed).
///
/// # Safety
///
/// The pointer is checked against the live handles before any use. Do not
/// use it after this returns `SOTTO_ERROR_OK`: once the allocator gives its
/// address to a new sender, a stale pointer would reach that one.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_sender_free(sender: *mut SottoGroupSender) -> SottoError {
    ffi_call(|| free::<GroupSender>(sender, "sender"))
}
