//! Saving and restoring any handle type, plain or sealed: the four exported
//! functions of each type (`_to_bytes`, `_from_bytes`, `_seal`, `_unseal`)
//! are thin wrappers over the generic functions here.

use sotto::group::{GroupReceiver, GroupSender};
use sotto::{Device, Session, StorageKey};
use zeroize::Zeroizing;

use crate::buffer::{SottoBuffer, input, out_buffer};
use crate::error::{FfiError, FfiResult};
use crate::handle::{HandleType, into_raw, out_handle, with_ref};
use crate::rng::OsRng;

/// A handle type whose state sotto can save and restore.
pub(crate) trait Persistent: HandleType {
    fn save_plain(&self) -> Zeroizing<Vec<u8>>;
    fn load_plain(bytes: &[u8]) -> sotto::Result<Self>;
    fn save_sealed(&self, key: &StorageKey) -> sotto::Result<Vec<u8>>;
    fn load_sealed(sealed: &[u8], key: &StorageKey) -> sotto::Result<Self>;
}

macro_rules! persistent {
    ($($t:ty),*) => {$(
        impl Persistent for $t {
            fn save_plain(&self) -> Zeroizing<Vec<u8>> {
                self.to_bytes()
            }
            fn load_plain(bytes: &[u8]) -> sotto::Result<Self> {
                <$t>::from_bytes(bytes)
            }
            fn save_sealed(&self, key: &StorageKey) -> sotto::Result<Vec<u8>> {
                self.seal(key, &mut OsRng)
            }
            fn load_sealed(sealed: &[u8], key: &StorageKey) -> sotto::Result<Self> {
                <$t>::unseal(sealed, key)
            }
        }
    )*};
}

persistent!(Device, Session, GroupSender, GroupReceiver);

/// Reads a 32-byte storage key.
///
/// # Safety
///
/// As for [`input`].
pub(crate) unsafe fn storage_key(ptr: *const u8, len: usize) -> FfiResult<StorageKey> {
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
/// `handle` must be NULL or a live handle; `out` NULL or an empty
/// `SottoBuffer`.
pub(crate) unsafe fn to_bytes<T: Persistent>(
    handle: *const T::Opaque,
    what: &str,
    out: *mut SottoBuffer,
) -> FfiResult<()> {
    // SAFETY: forwarded from this function's contract.
    let out = unsafe { out_buffer(out, "out") }?;
    // SAFETY: as above.
    let state = unsafe { with_ref::<T, _>(handle, what, |v| Ok(v.save_plain())) }?;
    out.set_from(&state);
    Ok(())
}

/// Restores a plain saved state into a new handle in `out`.
///
/// # Safety
///
/// `bytes` must be NULL or `len` readable bytes; `out` NULL or a writable
/// handle slot set to NULL.
pub(crate) unsafe fn from_bytes<T: Persistent>(
    bytes: *const u8,
    len: usize,
    out: *mut *mut T::Opaque,
) -> FfiResult<()> {
    // SAFETY: forwarded from this function's contract.
    let bytes = unsafe { input(bytes, len, "bytes") }?;
    // SAFETY: as above.
    let out = unsafe { out_handle(out, "out") }?;
    *out = into_raw(T::load_plain(bytes)?);
    Ok(())
}

/// The handle's saved state sealed under a storage key, into `out`.
///
/// # Safety
///
/// `handle` must be NULL or a live handle; `key` NULL or `key_len` readable
/// bytes; `out` NULL or an empty `SottoBuffer`.
pub(crate) unsafe fn seal<T: Persistent>(
    handle: *const T::Opaque,
    what: &str,
    key: *const u8,
    key_len: usize,
    out: *mut SottoBuffer,
) -> FfiResult<()> {
    // SAFETY: forwarded from this function's contract.
    let key = unsafe { storage_key(key, key_len) }?;
    // SAFETY: as above.
    let out = unsafe { out_buffer(out, "out") }?;
    // SAFETY: as above.
    let sealed = unsafe { with_ref::<T, _>(handle, what, |v| Ok(v.save_sealed(&key)?)) }?;
    out.set(sealed);
    Ok(())
}

/// Opens a sealed saved state into a new handle in `out`.
///
/// # Safety
///
/// `sealed` and `key` must be NULL or point to their lengths in readable
/// bytes; `out` NULL or a writable handle slot set to NULL.
pub(crate) unsafe fn unseal<T: Persistent>(
    sealed: *const u8,
    sealed_len: usize,
    key: *const u8,
    key_len: usize,
    out: *mut *mut T::Opaque,
) -> FfiResult<()> {
    // SAFETY: forwarded from this function's contract.
    let sealed = unsafe { input(sealed, sealed_len, "sealed") }?;
    // SAFETY: as above.
    let key = unsafe { storage_key(key, key_len) }?;
    // SAFETY: as above.
    let out = unsafe { out_handle(out, "out") }?;
    *out = into_raw(T::load_sealed(sealed, &key)?);
    Ok(())
}
