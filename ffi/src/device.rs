//! Device functions: generation, signed prekeys, one-time prekeys, KEM
//! prekeys (last-resort and one-time), reset after a restore, bundle export,
//! persistence.

use sotto::{Device, KemPreKey, KemPreKeyKind, Message, OneTimePreKey, PreKeyBundle, Session};

use crate::buffer::{SottoBuffer, optional_input, out_array, out_buffer, out_value};
use crate::error::{FfiError, FfiResult, SottoError, ffi_call};
use crate::handle::{SottoDevice, free, into_raw, out_handle, with_mut, with_ref};
use crate::persist;
use crate::rng::OsRng;

/// One signed prekey a device holds (`sotto_device_signed_prekeys`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SottoSignedPrekeyInfo {
    /// The signed prekey id.
    pub id: u32,
    /// Its creation time: the `now` passed when it was made.
    pub created: u64,
    /// How many base keys of replayable prekey messages it recorded. At
    /// `SOTTO_MAX_BASE_KEYS_PER_SIGNED_PREKEY` it accepts no more
    /// (`SOTTO_ERROR_SIGNED_PREKEY_EXHAUSTED`): rotate before.
    pub base_key_count: usize,
}

/// One last-resort KEM prekey a device holds
/// (`sotto_device_last_resort_kem_prekeys`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SottoKemPrekeyInfo {
    /// The KEM prekey id.
    pub id: u32,
    /// Its creation time: the `now` passed when it was made.
    pub created: u64,
}

/// Generates a new device: an identity key pair, signed prekey 1 and
/// last-resort KEM prekey 1, both created at `now` (the caller's clock, for
/// example seconds since the Unix epoch; sotto only stores it).
///
/// # Safety
///
/// `out` must be NULL or point to a writable `SottoDevice *` set to NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_device_generate(now: u64, out: *mut *mut SottoDevice) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or a valid slot.
        let out = unsafe { out_handle(out, "out") }?;
        *out = into_raw(Device::generate(&mut OsRng, now)?);
        Ok(())
    })
}

/// The device's public identity key (`SOTTO_IDENTITY_KEY_LEN` bytes).
///
/// # Safety
///
/// `out` must be NULL or point to an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_device_identity_key(
    device: *const SottoDevice,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        let key = with_ref::<Device, _>(device, "device", |d| Ok(d.identity_key().to_bytes()))?;
        out.set(key.to_vec());
        Ok(())
    })
}

/// The device's current signed prekey (`SOTTO_SIGNED_PREKEY_LEN` bytes), to
/// publish.
///
/// # Safety
///
/// `out` must be NULL or point to an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_device_signed_prekey(
    device: *const SottoDevice,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        let spk = with_ref::<Device, _>(device, "device", |d| Ok(d.signed_prekey().to_bytes()))?;
        out.set(spk);
        Ok(())
    })
}

/// Every signed prekey the device holds, oldest first (the last is the
/// current one), into the caller's array of `capacity` entries;
/// `*out_count` receives their number. An array of
/// `SOTTO_MAX_SIGNED_PREKEYS` entries is always large enough; a smaller one
/// that does not fit them fails with `SOTTO_ERROR_INVALID_ARGUMENT`.
///
/// # Safety
///
/// `out` must be NULL or point to `capacity` writable entries; `out_count`
/// NULL or a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_device_signed_prekeys(
    device: *const SottoDevice,
    out: *mut SottoSignedPrekeyInfo,
    capacity: usize,
    out_count: *mut usize,
) -> SottoError {
    ffi_call(|| {
        let infos = with_ref::<Device, _>(device, "device", |d| {
            Ok(d.signed_prekeys()
                .map(|info| SottoSignedPrekeyInfo {
                    id: info.prekey.id(),
                    created: info.created,
                    base_key_count: info.base_key_count,
                })
                .collect::<Vec<_>>())
        })?;
        // SAFETY: the caller guarantees the array, its capacity and
        // `out_count`.
        unsafe { out_array(out, capacity, out_count, &infos, "out") }
    })
}

/// Makes a new current signed prekey created at `now` and returns it
/// (`SOTTO_SIGNED_PREKEY_LEN` bytes), to publish. The device keeps up to
/// `SOTTO_MAX_SIGNED_PREKEYS - 1` previous ones for prekey messages in
/// flight. Save the device afterwards.
///
/// # Safety
///
/// `out` must be NULL or point to an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_device_rotate_signed_prekey(
    device: *mut SottoDevice,
    now: u64,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        let spk = with_mut::<Device, _>(device, "device", |d| {
            Ok(d.rotate_signed_prekey(&mut OsRng, now)?.to_bytes())
        })?;
        out.set(spk);
        Ok(())
    })
}

/// Deletes an old signed prekey, with its recorded base keys, before
/// rotation would. The current one and an id not held fail with
/// `SOTTO_ERROR_UNKNOWN_SIGNED_PREKEY`. Save the device afterwards.
#[unsafe(no_mangle)]
pub extern "C" fn sotto_device_remove_signed_prekey(
    device: *mut SottoDevice,
    id: u32,
) -> SottoError {
    ffi_call(|| with_mut::<Device, _>(device, "device", |d| Ok(d.remove_signed_prekey(id)?)))
}

/// Makes `count` one-time prekeys and returns their public halves, to
/// publish: `count` encodings of `SOTTO_ONE_TIME_PREKEY_LEN` bytes each,
/// back to back (`count` = 0 returns `{NULL, 0, 0}` and changes nothing).
/// Fails without change if the device would hold more than
/// `SOTTO_MAX_ONE_TIME_PREKEYS`. Save the device afterwards.
///
/// # Safety
///
/// `out` must be NULL or point to an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_device_generate_one_time_prekeys(
    device: *mut SottoDevice,
    count: usize,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        let keys = with_mut::<Device, _>(device, "device", |d| {
            Ok(d.generate_one_time_prekeys(&mut OsRng, count)?)
        })?;
        out.set(keys.iter().flat_map(OneTimePreKey::to_bytes).collect());
        Ok(())
    })
}

/// How many one-time prekeys are still unused.
///
/// # Safety
///
/// `out` must be NULL or point to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_device_one_time_prekey_count(
    device: *const SottoDevice,
    out: *mut usize,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_value(out, "out") }?;
        *out = with_ref::<Device, _>(device, "device", |d| Ok(d.one_time_prekey_count()))?;
        Ok(())
    })
}

/// The device's current last-resort KEM prekey (`SOTTO_KEM_PREKEY_LEN`
/// bytes), to publish: servers hand it out once the one-time KEM prekeys
/// are gone.
///
/// # Safety
///
/// `out` must be NULL or point to an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_device_last_resort_kem_prekey(
    device: *const SottoDevice,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        let kem = with_ref::<Device, _>(device, "device", |d| {
            Ok(d.last_resort_kem_prekey().to_bytes())
        })?;
        out.set(kem);
        Ok(())
    })
}

/// Every last-resort KEM prekey the device holds, oldest first (the last
/// is the current one), into the caller's array of `capacity` entries;
/// `*out_count` receives their number. An array of
/// `SOTTO_MAX_LAST_RESORT_KEM_PREKEYS` entries is always large enough.
///
/// # Safety
///
/// `out` must be NULL or point to `capacity` writable entries; `out_count`
/// NULL or a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_device_last_resort_kem_prekeys(
    device: *const SottoDevice,
    out: *mut SottoKemPrekeyInfo,
    capacity: usize,
    out_count: *mut usize,
) -> SottoError {
    ffi_call(|| {
        let infos = with_ref::<Device, _>(device, "device", |d| {
            Ok(d.last_resort_kem_prekeys()
                .map(|info| SottoKemPrekeyInfo {
                    id: info.id,
                    created: info.created,
                })
                .collect::<Vec<_>>())
        })?;
        // SAFETY: the caller guarantees the array, its capacity and
        // `out_count`.
        unsafe { out_array(out, capacity, out_count, &infos, "out") }
    })
}

/// Makes a new current last-resort KEM prekey created at `now` and returns
/// it (`SOTTO_KEM_PREKEY_LEN` bytes), to publish. Up to
/// `SOTTO_MAX_LAST_RESORT_KEM_PREKEYS - 1` previous ones are kept for
/// prekey messages in flight. Save the device afterwards.
///
/// # Safety
///
/// `out` must be NULL or point to an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_device_rotate_last_resort_kem_prekey(
    device: *mut SottoDevice,
    now: u64,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        let kem = with_mut::<Device, _>(device, "device", |d| {
            Ok(d.rotate_last_resort_kem_prekey(&mut OsRng, now)?.to_bytes())
        })?;
        out.set(kem);
        Ok(())
    })
}

/// Deletes an old last-resort KEM prekey before rotation would. The
/// current one and an id not held fail with
/// `SOTTO_ERROR_UNKNOWN_KEM_PREKEY`. Save the device afterwards.
#[unsafe(no_mangle)]
pub extern "C" fn sotto_device_remove_last_resort_kem_prekey(
    device: *mut SottoDevice,
    id: u32,
) -> SottoError {
    ffi_call(|| {
        with_mut::<Device, _>(device, "device", |d| {
            Ok(d.remove_last_resort_kem_prekey(id)?)
        })
    })
}

/// Makes `count` one-time KEM prekeys and returns them signed, to publish:
/// `count` encodings of `SOTTO_KEM_PREKEY_LEN` bytes each, back to back
/// (`count` = 0 returns `{NULL, 0, 0}` and changes nothing). Fails without
/// change if the device would hold more than `SOTTO_MAX_ONE_TIME_KEM_PREKEYS`.
/// Save the device afterwards.
///
/// # Safety
///
/// `out` must be NULL or point to an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_device_generate_one_time_kem_prekeys(
    device: *mut SottoDevice,
    count: usize,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        let keys = with_mut::<Device, _>(device, "device", |d| {
            Ok(d.generate_one_time_kem_prekeys(&mut OsRng, count)?)
        })?;
        out.set(keys.iter().flat_map(KemPreKey::to_bytes).collect());
        Ok(())
    })
}

/// How many one-time KEM prekeys are still unused.
///
/// # Safety
///
/// `out` must be NULL or point to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_device_one_time_kem_prekey_count(
    device: *const SottoDevice,
    out: *mut usize,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_value(out, "out") }?;
        *out = with_ref::<Device, _>(device, "device", |d| Ok(d.one_time_kem_prekey_count()))?;
        Ok(())
    })
}

/// Makes a device restored from a backup safe to accept prekey messages
/// again (SPEC §6). Call it after restoring a device from any copy that may
/// be older than its latest state, before accepting any prekey message.
/// `last_generation` is the highest generation you recorded for this device
/// (0 if none). It makes a new signed prekey and a new last-resort KEM
/// prekey (created at `now`) and deletes every other prekey of every kind,
/// so every prekey message made before is refused; the generation becomes
/// `max(generation, last_generation) + 1`. Returns the two new prekeys to
/// publish (publish new one-time prekeys too). Save the device afterwards.
/// On error (`SOTTO_ERROR_TOO_MANY_PREKEYS`, `SOTTO_ERROR_RANDOMNESS`)
/// nothing changed and no output is written.
///
/// # Safety
///
/// `out_signed_prekey` and `out_kem_prekey` must be NULL or point to empty
/// `SottoBuffer`s.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_device_reset_prekeys_after_restore(
    device: *mut SottoDevice,
    now: u64,
    last_generation: u64,
    out_signed_prekey: *mut SottoBuffer,
    out_kem_prekey: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // Compared before any reference to either buffer exists.
        if !out_signed_prekey.is_null() && core::ptr::eq(out_signed_prekey, out_kem_prekey) {
            return Err(FfiError::invalid(
                "out_signed_prekey and out_kem_prekey are the same buffer",
            ));
        }
        // SAFETY: the caller guarantees each output is NULL or valid, and
        // the two buffers are distinct (checked above).
        let out_spk = unsafe { out_buffer(out_signed_prekey, "out_signed_prekey") }?;
        // SAFETY: as above.
        let out_kem = unsafe { out_buffer(out_kem_prekey, "out_kem_prekey") }?;
        let (spk, kem) = with_mut::<Device, _>(device, "device", |d| {
            Ok(d.reset_prekeys_after_restore(&mut OsRng, now, last_generation)?)
        })?;
        out_spk.set(spk.to_bytes());
        out_kem.set(kem.to_bytes());
        Ok(())
    })
}

/// Exports the device's prekey bundle: its identity key, its current signed
/// prekey, the one-time prekey `one_time_prekey` unless `(NULL, 0)` (one
/// `SOTTO_ONE_TIME_PREKEY_LEN` encoding from
/// `sotto_device_generate_one_time_prekeys`), and the KEM prekey
/// `kem_prekey` (one `SOTTO_KEM_PREKEY_LEN` encoding from
/// `sotto_device_generate_one_time_kem_prekeys`), or, if `(NULL, 0)`, the
/// current last-resort KEM prekey.
///
/// The prekeys must be ones this device issued and still holds: a one-time
/// prekey never issued or already used fails with
/// `SOTTO_ERROR_UNKNOWN_ONE_TIME_PREKEY`, a KEM prekey never issued, used,
/// or not the current last-resort one with `SOTTO_ERROR_UNKNOWN_KEM_PREKEY`
/// (also when the id is held under another key). To check this the device
/// runs one PQXDH handshake with itself per one-time key, on a copy of its
/// state: the device is not changed.
///
/// # Safety
///
/// `one_time_prekey` and `kem_prekey` must be NULL or their lengths in
/// readable bytes; `out` NULL or an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_device_bundle(
    device: *const SottoDevice,
    one_time_prekey: *const u8,
    one_time_prekey_len: usize,
    kem_prekey: *const u8,
    kem_prekey_len: usize,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees each pointer/length pair.
        let opk =
            unsafe { optional_input(one_time_prekey, one_time_prekey_len, "one_time_prekey") }?;
        // SAFETY: as above.
        let kem = unsafe { optional_input(kem_prekey, kem_prekey_len, "kem_prekey") }?;
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        let opk = opk.map(OneTimePreKey::from_bytes).transpose()?;
        let kem = kem.map(KemPreKey::from_bytes).transpose()?;
        let bundle = with_ref::<Device, _>(device, "device", |d| {
            let last_resort = d.last_resort_kem_prekey();
            let kem = match kem {
                Some(kem) if kem.kind() == KemPreKeyKind::LastResort && kem != last_resort => {
                    return Err(FfiError::new(
                        SottoError::UnknownKemPrekey,
                        format!(
                            "KEM prekey {} is not this device's current last-resort KEM prekey",
                            kem.id()
                        ),
                    ));
                }
                Some(kem) => kem,
                None => last_resort.clone(),
            };
            if let Some(opk) = opk {
                probe(d, Some(opk), last_resort)?;
            }
            if kem.kind() == KemPreKeyKind::OneTime {
                probe(d, None, kem.clone())?;
            }
            let bundle = PreKeyBundle::new(*d.identity_key(), d.signed_prekey(), opk, Some(kem));
            Ok(bundle.to_bytes())
        })?;
        out.set(bundle);
        Ok(())
    })
}

/// Checks that `device` holds the secrets of `opk` (if given) and `kem`,
/// under their ids and for exactly these public keys: a copy of the device
/// accepts a prekey message the device itself makes for a bundle with
/// them. Only a held secret matching the public key lets the message
/// decrypt. The device is not changed (the copy is dropped, zeroized).
fn probe(device: &Device, opk: Option<OneTimePreKey>, kem: KemPreKey) -> FfiResult<()> {
    let (what, code, id) = match opk {
        Some(opk) => (
            "one-time prekey",
            SottoError::UnknownOneTimePrekey,
            opk.id(),
        ),
        None => ("KEM prekey", SottoError::UnknownKemPrekey, kem.id()),
    };
    let bundle = PreKeyBundle::new(
        *device.identity_key(),
        device.signed_prekey(),
        opk,
        Some(kem),
    )
    .verify()
    .map_err(|e| {
        FfiError::new(
            code,
            format!("{what} {id} was not issued by this device: {e}"),
        )
    })?;
    let mut copy = Device::from_bytes(&device.to_bytes())?;
    let message = Session::initiate(device, &mut OsRng, &bundle)?.encrypt(&mut OsRng, &[])?;
    let Message::PreKey(message) = message else {
        return Err(FfiError::new(
            SottoError::Panic,
            "a new session's first message is not a prekey message",
        ));
    };
    match Session::accept(&mut copy, &message) {
        Ok(_) => Ok(()),
        Err(sotto::Error::AuthenticationFailed) => Err(FfiError::new(
            code,
            format!("{what} {id} is not the key this device issued under that id"),
        )),
        Err(e) => Err(e.into()),
    }
}

/// The device's plain saved state. It contains secret keys: store it
/// encrypted, or use `sotto_device_seal`.
///
/// # Safety
///
/// `out` must be NULL or point to an empty `SottoBuffer`.
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

/// The device's saved state encrypted under a 32-byte storage key (from the
/// platform keystore) and bound to `context`: the record's key in the app's
/// store (for example `"device"`), at most `SOTTO_MAX_SEAL_CONTEXT_LEN`
/// bytes (`SOTTO_ERROR_TOO_LARGE` otherwise). The blob opens only under the
/// same context, so a blob copied into another record is refused.
///
/// # Safety
///
/// `key` and `context` must be NULL or their lengths in readable bytes;
/// `out` NULL or an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_device_seal(
    device: *const SottoDevice,
    key: *const u8,
    key_len: usize,
    context: *const u8,
    context_len: usize,
    out: *mut SottoBuffer,
) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe {
        persist::seal::<Device>(
            device,
            "device",
            (key, key_len),
            (context, context_len),
            out,
        )
    })
}

/// Opens `sotto_device_seal` output, sealed under the same `context`, into a
/// new handle. The wrong key, the wrong context or altered bytes fail with
/// `SOTTO_ERROR_AUTHENTICATION_FAILED`. Compare the restored generation
/// with the one you recorded to detect a rolled-back blob.
///
/// # Safety
///
/// `sealed`, `key` and `context` must be NULL or their lengths in readable
/// bytes; `out` NULL or a writable `SottoDevice *` set to NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_device_unseal(
    sealed: *const u8,
    sealed_len: usize,
    key: *const u8,
    key_len: usize,
    context: *const u8,
    context_len: usize,
    out: *mut *mut SottoDevice,
) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe {
        persist::unseal::<Device>(
            (sealed, sealed_len),
            (key, key_len),
            (context, context_len),
            out,
        )
    })
}

/// The device's generation: 0 when new, 1 more after every call that
/// changed it (SPEC §10.1). Record it, after every save, where an attacker
/// cannot roll it back; a restored state with a lower generation is a
/// rollback.
///
/// # Safety
///
/// `out` must be NULL or point to a writable `uint64_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_device_generation(
    device: *const SottoDevice,
    out: *mut u64,
) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe { persist::generation::<Device>(device, "device", out) })
}

/// Releases a device and zeroizes its secrets. NULL is accepted. Refused
/// with `SOTTO_ERROR_HANDLE_BUSY` while another call uses it (nothing is
/// freed), and with `SOTTO_ERROR_WRONG_HANDLE` if it is not a live device
/// handle (for example already freed).
///
/// # Safety
///
/// The pointer is checked against the live handles before any use. Do not
/// use it after this returns `SOTTO_ERROR_OK`: once the allocator gives its
/// address to a new device, a stale pointer would reach that one.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_device_free(device: *mut SottoDevice) -> SottoError {
    ffi_call(|| free::<Device>(device, "device"))
}
