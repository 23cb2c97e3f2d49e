//! The group store (`GroupReceivers`, SPEC §15.9): every sender chain a
//! member can read in one group, installed only from a session's decrypt
//! (authenticated as that session's peer) or by an explicit unauthenticated
//! import, and decrypted by chain.
//!
//! There is no standalone receiver in the C ABI: a chain lives in one store
//! once, so a forwarded distribution can neither become a second receiver
//! nor be credited to the member who forwarded it.

use sotto::group::{ChainId, GroupReceivers, InsertOutcome};
use sotto::{IdentityKey, Message, Plaintext, Session};

use crate::buffer::{SottoBuffer, input, out_buffer, out_value};
use crate::error::{FfiError, FfiResult, SottoError, ffi_call};
use crate::group::{group_id, group_message};
use crate::handle::{
    SottoGroupStore, SottoPlaintext, SottoSession, free, into_raw, out_handle, with_mut, with_ref,
};
use crate::persist;

/// What installing a distribution did to a store. (Code 4, `Replaced`, was
/// retired with the store rules that never rewind a chain; it is not reused.)
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SottoInsertOutcome {
    /// A chain the store did not hold was added.
    Added = 1,
    /// A held chain moved forward to the distribution's later index.
    Advanced = 2,
    /// A held unauthenticated chain became authenticated.
    Upgraded = 3,
    /// The store already held this chain as far or further, with the same
    /// mark; nothing changed.
    Unchanged = 5,
}

impl From<InsertOutcome> for SottoInsertOutcome {
    fn from(outcome: InsertOutcome) -> Self {
        match outcome {
            InsertOutcome::Added => Self::Added,
            InsertOutcome::Advanced => Self::Advanced,
            InsertOutcome::Upgraded => Self::Upgraded,
            InsertOutcome::Unchanged => Self::Unchanged,
        }
    }
}

fn chain_id(bytes: &[u8]) -> FfiResult<ChainId> {
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| {
        FfiError::invalid(format!("chain_id must be 32 bytes, got {}", bytes.len()))
    })?;
    Ok(ChainId::from_bytes(&bytes)?)
}

/// Creates an empty store for a group (`group_id`: 32 bytes).
///
/// # Safety
///
/// `group_id` must be NULL or `group_id_len` readable bytes; `out` NULL or a
/// writable `SottoGroupStore *` set to NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_store_new(
    group_id_ptr: *const u8,
    group_id_len: usize,
    out: *mut *mut SottoGroupStore,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees the pointer/length pair.
        let id = group_id(unsafe { input(group_id_ptr, group_id_len, "group_id") }?)?;
        // SAFETY: the caller guarantees `out` is NULL or a valid slot.
        let out = unsafe { out_handle(out, "out") }?;
        *out = into_raw(GroupReceivers::new(id));
        Ok(())
    })
}

/// The store's group id (`SOTTO_GROUP_ID_LEN` bytes), which is also the
/// group id of every receiver in it.
///
/// # Safety
///
/// `out` must be NULL or point to an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_store_group_id(
    store: *const SottoGroupStore,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        let id = with_ref::<GroupReceivers, _>(store, "store", |s| Ok(*s.group_id().as_bytes()))?;
        out.set(id.to_vec());
        Ok(())
    })
}

/// Decrypts `message` with `session` and installs the sender key
/// distribution it carries, in one call: the chain is marked as owned by
/// the session's peer, and only if the distribution names that peer as its
/// owner (`SOTTO_ERROR_GROUP_OWNER_MISMATCH` otherwise, for example a
/// member forwarding another member's key) and its owner proof verifies.
/// If anything fails, neither the session nor the store changes (a message
/// that is not a distribution can then be decrypted as usual). Install only
/// from sessions with current members. Save the store, then the session,
/// before acting on `*out_outcome`.
///
/// # Safety
///
/// `message` must be NULL or `message_len` readable bytes; `out_outcome`
/// NULL or a writable `SottoInsertOutcome`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_store_receive_distribution(
    store: *mut SottoGroupStore,
    session: *mut SottoSession,
    message: *const u8,
    message_len: usize,
    out_outcome: *mut SottoInsertOutcome,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees the pointer/length pair.
        let message = unsafe { input(message, message_len, "message") }?;
        // SAFETY: the caller guarantees `out_outcome` is NULL or valid.
        let out = unsafe { out_value(out_outcome, "out_outcome") }?;
        let message = Message::from_bytes(message)?;
        let outcome = with_mut::<GroupReceivers, _>(store, "store", |st| {
            with_mut::<Session, _>(session, "session", |se| {
                Ok(st.receive_distribution(se, &message)?)
            })
        })?;
        *out = outcome.into();
        Ok(())
    })
}

/// Installs the sender key distribution carried by a decrypted plaintext
/// (from `sotto_session_accept` or `sotto_session_decrypt_plaintext`), as
/// owned by the peer of the session that decrypted it, with the checks of
/// `sotto_group_store_receive_distribution`. The plaintext must be exactly a
/// distribution. All or nothing for the store (the session already moved
/// when the plaintext was made). Save the store afterwards.
///
/// # Safety
///
/// `out_outcome` must be NULL or point to a writable `SottoInsertOutcome`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_store_install(
    store: *mut SottoGroupStore,
    plaintext: *const SottoPlaintext,
    out_outcome: *mut SottoInsertOutcome,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out_outcome` is NULL or valid.
        let out = unsafe { out_value(out_outcome, "out_outcome") }?;
        let outcome = with_mut::<GroupReceivers, _>(store, "store", |st| {
            with_ref::<Plaintext, _>(plaintext, "plaintext", |p| Ok(st.install(p)?))
        })?;
        *out = outcome.into();
        Ok(())
    })
}

/// Imports a distribution whose origin sotto cannot vouch for (a key
/// backup, a key forwarded by someone else). Its messages decrypt with
/// `*out_authenticated` false: the owner it names is only a claim. A later
/// authenticated install of the same chain upgrades it. Unauthenticated
/// chains are bounded per claimed owner and in all (older ones are dropped
/// first) and never evict authenticated ones
/// (`SOTTO_ERROR_GROUP_STORE_FULL`). Save the store afterwards.
///
/// # Safety
///
/// `distribution` must be NULL or `distribution_len` readable bytes;
/// `out_outcome` NULL or a writable `SottoInsertOutcome`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_store_import_unauthenticated(
    store: *mut SottoGroupStore,
    distribution: *const u8,
    distribution_len: usize,
    out_outcome: *mut SottoInsertOutcome,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees the pointer/length pair.
        let distribution = unsafe { input(distribution, distribution_len, "distribution") }?;
        // SAFETY: the caller guarantees `out_outcome` is NULL or valid.
        let out = unsafe { out_value(out_outcome, "out_outcome") }?;
        let outcome = with_mut::<GroupReceivers, _>(store, "store", |st| {
            Ok(st.import_unauthenticated(distribution)?)
        })?;
        *out = outcome.into();
        Ok(())
    })
}

/// Verifies and decrypts a group message with the receiver of its chain.
/// `*out_sender` receives the chain's owner (`SOTTO_IDENTITY_KEY_LEN`
/// bytes) and `*out_authenticated` whether that owner is authenticated
/// (installed from a session with them) or only claimed (imported). All or
/// nothing. Save the store before showing the plaintext.
///
/// # Safety
///
/// `message` must be NULL or `message_len` readable bytes; `out_plaintext`
/// and `out_sender` NULL or distinct empty `SottoBuffer`s;
/// `out_authenticated` NULL or a writable `bool`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_store_decrypt(
    store: *mut SottoGroupStore,
    message: *const u8,
    message_len: usize,
    out_plaintext: *mut SottoBuffer,
    out_sender: *mut SottoBuffer,
    out_authenticated: *mut bool,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees the pointer/length pair.
        let message = group_message(unsafe { input(message, message_len, "message") }?)?;
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
        let read = with_mut::<GroupReceivers, _>(store, "store", |st| Ok(st.decrypt(&message)?))?;
        let sender = *read.sender();
        let plaintext = read.into_bytes();
        out_plaintext.set_from(&plaintext);
        out_sender.set(sender.owner().to_bytes().to_vec());
        *out_authenticated = sender.is_authenticated();
        Ok(())
    })
}

/// Deletes every chain owned, or claimed, by `identity_key` (an encoded
/// identity key: a member who left); `*out_removed` receives how many. Then
/// rotate your own sender and send the new distribution to the remaining
/// members. Save the store afterwards.
///
/// # Safety
///
/// `identity_key` must be NULL or `identity_key_len` readable bytes;
/// `out_removed` NULL or a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_store_remove_owner(
    store: *mut SottoGroupStore,
    identity_key: *const u8,
    identity_key_len: usize,
    out_removed: *mut usize,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees the pointer/length pair.
        let identity = unsafe { input(identity_key, identity_key_len, "identity_key") }?;
        // SAFETY: the caller guarantees `out_removed` is NULL or valid.
        let out = unsafe { out_value(out_removed, "out_removed") }?;
        let identity = IdentityKey::from_bytes(identity)?;
        *out = with_mut::<GroupReceivers, _>(store, "store", |st| Ok(st.remove_owner(&identity)))?;
        Ok(())
    })
}

/// How many chains the store holds.
///
/// # Safety
///
/// `out` must be NULL or point to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_store_len(
    store: *const SottoGroupStore,
    out: *mut usize,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_value(out, "out") }?;
        *out = with_ref::<GroupReceivers, _>(store, "store", |st| Ok(st.len()))?;
        Ok(())
    })
}

/// The ids of the chains the store holds, oldest first:
/// `SOTTO_CHAIN_ID_LEN` bytes each, back to back (`{NULL, 0, 0}` when
/// empty).
///
/// # Safety
///
/// `out` must be NULL or point to an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_store_chain_ids(
    store: *const SottoGroupStore,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        let ids = with_ref::<GroupReceivers, _>(store, "store", |st| {
            Ok(st.iter().flat_map(|r| *r.chain().as_bytes()).collect())
        })?;
        out.set(ids);
        Ok(())
    })
}

/// The owner (`SOTTO_IDENTITY_KEY_LEN` bytes) of the receiver of chain
/// `chain_id` (`SOTTO_CHAIN_ID_LEN` bytes), whether that owner is
/// authenticated, and the lowest index the receiver has not reached. A
/// chain the store does not hold fails with
/// `SOTTO_ERROR_UNKNOWN_GROUP_CHAIN`.
///
/// # Safety
///
/// `chain_id` must be NULL or `chain_id_len` readable bytes; `out_owner`
/// NULL or an empty `SottoBuffer`; `out_authenticated` NULL or a writable
/// `bool`; `out_next_index` NULL or a writable `uint32_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_store_receiver(
    store: *const SottoGroupStore,
    chain_id_ptr: *const u8,
    chain_id_len: usize,
    out_owner: *mut SottoBuffer,
    out_authenticated: *mut bool,
    out_next_index: *mut u32,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees the pointer/length pair.
        let chain = chain_id(unsafe { input(chain_id_ptr, chain_id_len, "chain_id") }?)?;
        // SAFETY: the caller guarantees each output is NULL or valid.
        let out_owner = unsafe { out_buffer(out_owner, "out_owner") }?;
        // SAFETY: as above.
        let out_authenticated = unsafe { out_value(out_authenticated, "out_authenticated") }?;
        // SAFETY: as above.
        let out_next_index = unsafe { out_value(out_next_index, "out_next_index") }?;
        let (sender, next) = with_ref::<GroupReceivers, _>(store, "store", |st| {
            let receiver = st.get(&chain).ok_or(sotto::Error::UnknownGroupChain)?;
            Ok((*receiver.sender(), receiver.next_index()))
        })?;
        out_owner.set(sender.owner().to_bytes().to_vec());
        *out_authenticated = sender.is_authenticated();
        *out_next_index = next;
        Ok(())
    })
}

/// The store's plain saved state. It contains secret keys: store it
/// encrypted, or use `sotto_group_store_seal`.
///
/// # Safety
///
/// `out` must be NULL or point to an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_store_to_bytes(
    store: *const SottoGroupStore,
    out: *mut SottoBuffer,
) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe { persist::to_bytes::<GroupReceivers>(store, "store", out) })
}

/// Restores `sotto_group_store_to_bytes` output into a new handle.
///
/// # Safety
///
/// `bytes` must be NULL or `len` readable bytes; `out` NULL or a writable
/// `SottoGroupStore *` set to NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_store_from_bytes(
    bytes: *const u8,
    len: usize,
    out: *mut *mut SottoGroupStore,
) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe { persist::from_bytes::<GroupReceivers>(bytes, len, out) })
}

/// The store's saved state encrypted under a 32-byte storage key (from the
/// platform keystore) and bound to `context`: the record's key in the app's
/// store (for example `"group/9f3a/receivers"`), at most `SOTTO_MAX_SEAL_CONTEXT_LEN`
/// bytes (`SOTTO_ERROR_TOO_LARGE` otherwise). The blob opens only under the
/// same context, so a blob copied into another record is refused.
///
/// # Safety
///
/// `key` and `context` must be NULL or their lengths in readable bytes;
/// `out` NULL or an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_store_seal(
    store: *const SottoGroupStore,
    key: *const u8,
    key_len: usize,
    context: *const u8,
    context_len: usize,
    out: *mut SottoBuffer,
) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe {
        persist::seal::<GroupReceivers>(store, "store", (key, key_len), (context, context_len), out)
    })
}

/// Opens `sotto_group_store_seal` output, sealed under the same `context`, into a
/// new handle. The wrong key, the wrong context or altered bytes fail with
/// `SOTTO_ERROR_AUTHENTICATION_FAILED`. Compare the restored generation
/// with the one you recorded to detect a rolled-back blob.
///
/// # Safety
///
/// `sealed`, `key` and `context` must be NULL or their lengths in readable
/// bytes; `out` NULL or a writable `SottoGroupStore *` set to NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_store_unseal(
    sealed: *const u8,
    sealed_len: usize,
    key: *const u8,
    key_len: usize,
    context: *const u8,
    context_len: usize,
    out: *mut *mut SottoGroupStore,
) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe {
        persist::unseal::<GroupReceivers>(
            (sealed, sealed_len),
            (key, key_len),
            (context, context_len),
            out,
        )
    })
}

/// The store's generation: 0 when new, 1 more after every call that
/// changed it (SPEC §10.1). Record it, after every save, where an attacker
/// cannot roll it back; a restored state with a lower generation is a
/// rollback.
///
/// # Safety
///
/// `out` must be NULL or point to a writable `uint64_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_store_generation(
    store: *const SottoGroupStore,
    out: *mut u64,
) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe { persist::generation::<GroupReceivers>(store, "store", out) })
}

/// Releases a store and zeroizes its secrets. NULL is accepted. Refused
/// with `SOTTO_ERROR_HANDLE_BUSY` while another call uses it (nothing is
/// freed), and with `SOTTO_ERROR_WRONG_HANDLE` if it is not a live store
/// handle (for example already freed).
///
/// # Safety
///
/// The pointer is checked against the live handles before any use. Do not
/// use it after this returns `SOTTO_ERROR_OK`: once the allocator gives its
/// address to a new store, a stale pointer would reach that one.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_group_store_free(store: *mut SottoGroupStore) -> SottoError {
    ffi_call(|| free::<GroupReceivers>(store, "store"))
}
