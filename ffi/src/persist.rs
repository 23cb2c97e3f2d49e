//! Saving and restoring any state handle, plain or sealed, and its
//! generation: the exported functions of each type (`_to_bytes`,
//! `_from_bytes`, `_seal`, `_unseal`, `_generation`) are thin wrappers over
//! the functions here, generic over the core's [`SavedState`].

use sotto::{SavedState, StorageKey};
use zeroize::Zeroizing;

use crate::buffer::{SottoBuffer, input, out_buffer, out_value};
use crate::error::{FfiError, FfiResult};
use crate::handle::{HandleType, into_raw, out_handle, with_ref};
use crate::rng::OsRng;

/// Reads a 32-byte storage key.
///
/// # Safety
///
/// As for [`input`].
unsafe fn storage_key(ptr: *const u8, len: usize) -> FfiResult<StorageKey> {
    // SAFETY: forwarded from this function's contract.
    let bytes = unsafe { input(ptr, len, "storage_key") }?;
    let bytes: Zeroizing<[u8; 32]> = Zeroizing::new(
        bytes
            .try_into()
            .map_err(|_| FfiError::invalid(format!("storage_key must be 32 bytes, got {len}")))?,
    );
    Ok(StorageKey::from_bytes(*bytes))
}

/// The handle's plain saved state into `out`.
///
/// # Safety
///
/// `out` must be NULL or point to an empty `SottoBuffer`.
pub(crate) unsafe fn to_bytes<T: HandleType + SavedState>(
    handle: *const T::Opaque,
    what: &str,
    out: *mut SottoBuffer,
) -> FfiResult<()> {
    // SAFETY: forwarded from this function's contract.
    let out = unsafe { out_buffer(out, "out") }?;
    let state = with_ref::<T, _>(handle, what, |v| Ok(v.to_bytes()))?;
    out.set_from(&state);
    Ok(())
}

/// Restores a plain saved state into a new handle in `out`.
///
/// # Safety
///
/// `bytes` must be NULL or `len` readable bytes; `out` NULL or a writable
/// handle slot set to NULL.
pub(crate) unsafe fn from_bytes<T: HandleType + SavedState>(
    bytes: *const u8,
    len: usize,
    out: *mut *mut T::Opaque,
) -> FfiResult<()> {
    // SAFETY: forwarded from this function's contract.
    let bytes = unsafe { input(bytes, len, "bytes") }?;
    // SAFETY: as above.
    let out = unsafe { out_handle(out, "out") }?;
    *out = into_raw(T::from_bytes(bytes)?);
    Ok(())
}

/// The handle's saved state sealed under a storage key and bound to
/// `context`, into `out`.
///
/// # Safety
///
/// `key` and `context` must be NULL or their lengths in readable bytes;
/// `out` NULL or an empty `SottoBuffer`.
pub(crate) unsafe fn seal<T: HandleType + SavedState>(
    handle: *const T::Opaque,
    what: &str,
    key: (*const u8, usize),
    context: (*const u8, usize),
    out: *mut SottoBuffer,
) -> FfiResult<()> {
    // SAFETY: forwarded from this function's contract.
    let key = unsafe { storage_key(key.0, key.1) }?;
    // SAFETY: as above.
    let context = unsafe { input(context.0, context.1, "context") }?;
    // SAFETY: as above.
    let out = unsafe { out_buffer(out, "out") }?;
    let sealed = with_ref::<T, _>(handle, what, |v| Ok(v.seal(&key, context, &mut OsRng)?))?;
    out.set(sealed);
    Ok(())
}

/// Opens a sealed saved state, sealed under `context`, into a new handle
/// in `out`.
///
/// # Safety
///
/// `sealed`, `key` and `context` must be NULL or their lengths in readable
/// bytes; `out` NULL or a writable handle slot set to NULL.
pub(crate) unsafe fn unseal<T: HandleType + SavedState>(
    sealed: (*const u8, usize),
    key: (*const u8, usize),
    context: (*const u8, usize),
    out: *mut *mut T::Opaque,
) -> FfiResult<()> {
    // SAFETY: forwarded from this function's contract.
    let sealed = unsafe { input(sealed.0, sealed.1, "sealed") }?;
    // SAFETY: as above.
    let key = unsafe { storage_key(key.0, key.1) }?;
    // SAFETY: as above.
    let context = unsafe { input(context.0, context.1, "context") }?;
    // SAFETY: as above.
    let out = unsafe { out_handle(out, "out") }?;
    *out = into_raw(T::unseal(sealed, &key, context)?);
    Ok(())
}

/// The handle's generation (SPEC §10.1) into `*out`.
///
/// # Safety
///
/// `out` must be NULL or point to a writable `uint64_t`.
pub(crate) unsafe fn generation<T: HandleType + SavedState>(
    handle: *const T::Opaque,
    what: &str,
    out: *mut u64,
) -> FfiResult<()> {
    // SAFETY: forwarded from this function's contract.
    let out = unsafe { out_value(out, "out") }?;
    *out = with_ref::<T, _>(handle, what, |v| Ok(v.generation()))?;
    Ok(())
}
