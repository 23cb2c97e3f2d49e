//! Device functions: generation, prekeys, bundle export, persistence.

use sotto::{Device, OneTimePreKey, PreKeyBundle};

use crate::buffer::{SottoBuffer, optional_input, out_buffer, out_value};
use crate::error::{SottoError, ffi_call};
use crate::handle::{SottoDevice, free, into_raw, out_handle, with_mut, with_ref};
use crate::persist;
use crate::rng::OsRng;

/// Generates a new device (identity key pair and first signed prekey) with
/// the operating system's randomness.
///
/// # Safety
///
/// `out` must be NULL or point to a writable `SottoDevice *` set to NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_device_generate(out: *mut *mut SottoDevice) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or a valid slot.
        let out = unsafe { out_handle(out, "out") }?;
        *out = into_raw(Device::generate(&mut OsRng));
        Ok(())
    })
}

/// Releases a device and zeroizes its secrets. NULL is accepted.
///
/// # Safety
///
/// `device` must be NULL or a live handle not in use by another thread; it
/// must not be used after this returns `SOTTO_ERROR_OK`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_device_free(device: *mut SottoDevice) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe { free::<Device>(device, "device") })
}

/// The device's public identity key (`SOTTO_IDENTITY_KEY_LEN` bytes).
///
/// # Safety
///
/// `device` must be NULL or a live handle; `out` NULL or an empty
/// `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_device_identity_key(
    device: *const SottoDevice,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        // SAFETY: the caller guarantees `device` is NULL or a live handle.
        let key = unsafe {
            with_ref::<Device, _>(device, "device", |d| Ok(d.identity_key().to_bytes()))
        }?;
        out.set(key.to_vec());
        Ok(())
    })
}

/// The device's current signed prekey (`SOTTO_SIGNED_PREKEY_LEN` bytes), to
/// publish.
///
/// # Safety
///
/// `device` must be NULL or a live handle; `out` NULL or an empty
/// `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_device_signed_prekey(
    device: *const SottoDevice,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        // SAFETY: the caller guarantees `device` is NULL or a live handle.
        let spk = unsafe {
            with_ref::<Device, _>(device, "device", |d| Ok(d.signed_prekey().to_bytes()))
        }?;
        out.set(spk);
        Ok(())
    })
}

/// Makes a new current signed prekey and returns it
/// (`SOTTO_SIGNED_PREKEY_LEN` bytes), to publish. The device keeps a few
/// previous ones for messages in flight. Save the device afterwards.
///
/// # Safety
///
/// `device` must be NULL or a live handle; `out` NULL or an empty
/// `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_device_rotate_signed_prekey(
    device: *mut SottoDevice,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        // SAFETY: the caller guarantees `device` is NULL or a live handle.
        let spk = unsafe {
            with_mut::<Device, _>(device, "device", |d| {
                Ok(d.rotate_signed_prekey(&mut OsRng)?.to_bytes())
            })
        }?;
        out.set(spk);
        Ok(())
    })
}

/// Deletes an old signed prekey's secret early. The current one cannot be
/// removed (`SOTTO_ERROR_UNKNOWN_SIGNED_PREKEY`). Save the device afterwards.
///
/// # Safety
///
/// `device` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_device_remove_signed_prekey(
    device: *mut SottoDevice,
    id: u32,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `device` is NULL or a live handle.
        unsafe { with_mut::<Device, _>(device, "device", |d| Ok(d.remove_signed_prekey(id)?)) }
    })
}

/// Makes `count` one-time prekeys and returns their public halves, to
/// publish: `count` encodings of `SOTTO_ONE_TIME_PREKEY_LEN` bytes each,
/// back to back. Fails without change if the device would hold more than
/// `SOTTO_MAX_ONE_TIME_PREKEYS`. Save the device afterwards.
///
/// # Safety
///
/// `device` must be NULL or a live handle; `out` NULL or an empty
/// `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_device_generate_one_time_prekeys(
    device: *mut SottoDevice,
    count: usize,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        // SAFETY: the caller guarantees `device` is NULL or a live handle.
        let keys = unsafe {
            with_mut::<Device, _>(device, "device", |d| {
                Ok(d.generate_one_time_prekeys(&mut OsRng, count)?)
            })
        }?;
        out.set(keys.iter().flat_map(OneTimePreKey::to_bytes).collect());
        Ok(())
    })
}

/// How many one-time prekeys are still unused.
///
/// # Safety
///
/// `device` must be NULL or a live handle; `out` NULL or a writable
/// `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_device_one_time_prekey_count(
    device: *const SottoDevice,
    out: *mut usize,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_value(out, "out") }?;
        // SAFETY: the caller guarantees `device` is NULL or a live handle.
        *out =
            unsafe { with_ref::<Device, _>(device, "device", |d| Ok(d.one_time_prekey_count())) }?;
        Ok(())
    })
}

/// Exports the device's prekey bundle: its identity key, its current signed
/// prekey and, if `one_time_prekey` is not `(NULL, 0)`, that one-time prekey
/// (one `SOTTO_ONE_TIME_PREKEY_LEN` encoding from
/// `sotto_device_generate_one_time_prekeys`).
///
/// # Safety
///
/// `device` must be NULL or a live handle; `one_time_prekey` NULL or
/// `one_time_prekey_len` readable bytes; `out` NULL or an empty
/// `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_device_bundle(
    device: *const SottoDevice,
    one_time_prekey: *const u8,
    one_time_prekey_len: usize,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees the pointer/length pair.
        let opk =
            unsafe { optional_input(one_time_prekey, one_time_prekey_len, "one_time_prekey") }?;
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        let opk = opk.map(OneTimePreKey::from_bytes).transpose()?;
        // SAFETY: the caller guarantees `device` is NULL or a live handle.
        let bundle = unsafe {
            with_ref::<Device, _>(device, "device", |d| {
                Ok(PreKeyBundle::new(*d.identity_key(), d.signed_prekey(), opk).to_bytes())
            })
        }?;
        out.set(bundle);
        Ok(())
    })
}

/// The device's plain saved state. It contains secret keys: store it
/// encrypted, or use `sotto_device_seal`.
///
/// # Safety
///
/// `device` must be NULL or a live handle; `out` NULL or an empty
/// `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_device_to_bytes(
    device: *const SottoDevice,
    out: *mut SottoBuffer,
) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe { persist::to_bytes::<Device>(device, "device", out) })
}

/// Restores `sotto_device_to_bytes` output into a new handle.
///
/// # Safety
///
/// `bytes` must be NULL or `len` readable bytes; `out` NULL or a writable
/// `SottoDevice *` set to NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_device_from_bytes(
    bytes: *const u8,
    len: usize,
    out: *mut *mut SottoDevice,
) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe { persist::from_bytes::<Device>(bytes, len, out) })
}

/// The device's saved state encrypted under a 32-byte storage key (for
/// example from the platform keystore).
///
/// # Safety
///
/// `device` must be NULL or a live handle; `key` NULL or `key_len` readable
/// bytes; `out` NULL or an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_device_seal(
    device: *const SottoDevice,
    key: *const u8,
    key_len: usize,
    out: *mut SottoBuffer,
) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe { persist::seal::<Device>(device, "device", key, key_len, out) })
}

/// Opens `sotto_device_seal` output into a new handle.
///
/// # Safety
///
/// `sealed` and `key` must be NULL or point to their lengths in readable
/// bytes; `out` NULL or a writable `SottoDevice *` set to NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_device_unseal(
    sealed: *const u8,
    sealed_len: usize,
    key: *const u8,
    key_len: usize,
    out: *mut *mut SottoDevice,
) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe { persist::unseal::<Device>(sealed, sealed_len, key, key_len, out) })
}
