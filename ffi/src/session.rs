//! Session functions: initiate, accept, encrypt, decrypt, persistence.

use sotto::{Device, IdentityKey, Message, PreKeyBundle, PreKeyMessage, Session};
use zeroize::Zeroizing;

use crate::buffer::{SottoBuffer, input, optional_input, out_buffer, out_value};
use crate::error::{SottoError, ffi_call};
use crate::handle::{SottoDevice, SottoSession, free, into_raw, out_handle, with_mut, with_ref};
use crate::persist;
use crate::rng::OsRng;

/// Starts a session with the owner of `bundle` (from `sotto_device_bundle`
/// or `sotto_bundle_new`). The bundle's signature is verified strictly
/// first. If `expected_identity_key` is not `(NULL, 0)`, the bundle must
/// also belong to that identity (`SOTTO_ERROR_IDENTITY_MISMATCH` otherwise).
/// The device is not changed.
///
/// # Safety
///
/// `device` must be NULL or a live handle; each input NULL or its length in
/// readable bytes; `out` NULL or a writable `SottoSession *` set to NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_session_initiate(
    device: *const SottoDevice,
    bundle: *const u8,
    bundle_len: usize,
    expected_identity_key: *const u8,
    expected_identity_key_len: usize,
    out: *mut *mut SottoSession,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees each pointer/length pair.
        let bundle = unsafe { input(bundle, bundle_len, "bundle") }?;
        // SAFETY: as above.
        let expected = unsafe {
            optional_input(
                expected_identity_key,
                expected_identity_key_len,
                "expected_identity_key",
            )
        }?;
        // SAFETY: the caller guarantees `out` is NULL or a valid slot.
        let out = unsafe { out_handle(out, "out") }?;
        let bundle = PreKeyBundle::from_bytes(bundle)?;
        let verified = match expected {
            Some(expected) => bundle.verify_for(&IdentityKey::from_bytes(expected)?)?,
            None => bundle.verify()?,
        };
        // SAFETY: the caller guarantees `device` is NULL or a live handle.
        let session = unsafe {
            with_ref::<Device, _>(device, "device", |d| {
                Ok(Session::initiate(d, &mut OsRng, &verified)?)
            })
        }?;
        *out = into_raw(session);
        Ok(())
    })
}

/// Accepts a prekey message: starts the responder's session and decrypts
/// the message into `out_plaintext`. Deletes the one-time prekey the message
/// used from `device`; save both the device and the new session. A ratchet
/// message fails with `SOTTO_ERROR_WRONG_TYPE`. On error nothing changes.
///
/// # Safety
///
/// `device` must be NULL or a live handle; `message` NULL or `message_len`
/// readable bytes; `out_session` NULL or a writable `SottoSession *` set to
/// NULL; `out_plaintext` NULL or an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_session_accept(
    device: *mut SottoDevice,
    message: *const u8,
    message_len: usize,
    out_session: *mut *mut SottoSession,
    out_plaintext: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees the pointer/length pair.
        let message = unsafe { input(message, message_len, "message") }?;
        // SAFETY: the caller guarantees `out_session` is NULL or a valid slot.
        let out_session = unsafe { out_handle(out_session, "out_session") }?;
        // SAFETY: the caller guarantees `out_plaintext` is NULL or valid.
        let out_plaintext = unsafe { out_buffer(out_plaintext, "out_plaintext") }?;
        if message.len() > sotto::MAX_MESSAGE_LEN {
            return Err(sotto::Error::TooLarge.into());
        }
        let message = PreKeyMessage::from_vec(message.to_vec())?;
        // SAFETY: the caller guarantees `device` is NULL or a live handle.
        let (session, plaintext) = unsafe {
            with_mut::<Device, _>(device, "device", |d| Ok(Session::accept(d, &message)?))
        }?;
        let plaintext = Zeroizing::new(plaintext);
        out_plaintext.set_from(&plaintext);
        *out_session = into_raw(session);
        Ok(())
    })
}

/// Encrypts `plaintext` (up to `SOTTO_MAX_PLAINTEXT_LEN` bytes; empty is
/// allowed) into a message to send. Save the session before sending.
///
/// # Safety
///
/// `session` must be NULL or a live handle; `plaintext` NULL or
/// `plaintext_len` readable bytes; `out_message` NULL or an empty
/// `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_session_encrypt(
    session: *mut SottoSession,
    plaintext: *const u8,
    plaintext_len: usize,
    out_message: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees the pointer/length pair.
        let plaintext = unsafe { input(plaintext, plaintext_len, "plaintext") }?;
        // SAFETY: the caller guarantees `out_message` is NULL or valid.
        let out = unsafe { out_buffer(out_message, "out_message") }?;
        // SAFETY: the caller guarantees `session` is NULL or a live handle.
        let message = unsafe {
            with_mut::<Session, _>(
                session,
                "session",
                |s| Ok(s.encrypt(&mut OsRng, plaintext)?),
            )
        }?;
        out.set(message.into_bytes());
        Ok(())
    })
}

/// Decrypts a message of this session (ratchet or prekey). All or nothing:
/// on error the session is unchanged. Save the session before showing the
/// plaintext.
///
/// # Safety
///
/// `session` must be NULL or a live handle; `message` NULL or `message_len`
/// readable bytes; `out_plaintext` NULL or an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_session_decrypt(
    session: *mut SottoSession,
    message: *const u8,
    message_len: usize,
    out_plaintext: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees the pointer/length pair.
        let message = unsafe { input(message, message_len, "message") }?;
        // SAFETY: the caller guarantees `out_plaintext` is NULL or valid.
        let out = unsafe { out_buffer(out_plaintext, "out_plaintext") }?;
        let message = Message::from_bytes(message)?;
        // SAFETY: the caller guarantees `session` is NULL or a live handle.
        let plaintext =
            unsafe { with_mut::<Session, _>(session, "session", |s| Ok(s.decrypt(&message)?)) }?;
        let plaintext = Zeroizing::new(plaintext);
        out.set_from(&plaintext);
        Ok(())
    })
}

/// Releases a session and zeroizes its secrets. NULL is accepted.
///
/// # Safety
///
/// `session` must be NULL or a live handle not in use by another thread; it
/// must not be used after this returns `SOTTO_ERROR_OK`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_session_free(session: *mut SottoSession) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe { free::<Session>(session, "session") })
}

/// The peer's identity key (`SOTTO_IDENTITY_KEY_LEN` bytes). Compare its
/// fingerprint out of band to rule out a man in the middle.
///
/// # Safety
///
/// `session` must be NULL or a live handle; `out` NULL or an empty
/// `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_session_remote_identity_key(
    session: *const SottoSession,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        // SAFETY: the caller guarantees `session` is NULL or a live handle.
        let key = unsafe {
            with_ref::<Session, _>(session, "session", |s| Ok(s.remote_identity().to_bytes()))
        }?;
        out.set(key.to_vec());
        Ok(())
    })
}

/// The initiator's base key (`SOTTO_BASE_KEY_LEN` bytes), which names the
/// session: prekey messages with this base key belong to it.
///
/// # Safety
///
/// `session` must be NULL or a live handle; `out` NULL or an empty
/// `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_session_base_key(
    session: *const SottoSession,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        // SAFETY: the caller guarantees `session` is NULL or a live handle.
        let key =
            unsafe { with_ref::<Session, _>(session, "session", |s| Ok(s.base_key_bytes())) }?;
        out.set(key.to_vec());
        Ok(())
    })
}

/// Whether this session's messages still carry the X3DH header (initiator,
/// before the first reply decrypted).
///
/// # Safety
///
/// `session` must be NULL or a live handle; `out` NULL or a writable `bool`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_session_is_awaiting_reply(
    session: *const SottoSession,
    out: *mut bool,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_value(out, "out") }?;
        // SAFETY: the caller guarantees `session` is NULL or a live handle.
        *out =
            unsafe { with_ref::<Session, _>(session, "session", |s| Ok(s.is_awaiting_reply())) }?;
        Ok(())
    })
}

/// The session's plain saved state. It contains secret keys: store it
/// encrypted, or use `sotto_session_seal`.
///
/// # Safety
///
/// `session` must be NULL or a live handle; `out` NULL or an empty
/// `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_session_to_bytes(
    session: *const SottoSession,
    out: *mut SottoBuffer,
) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe { persist::to_bytes::<Session>(session, "session", out) })
}

/// Restores `sotto_session_to_bytes` output into a new handle.
///
/// # Safety
///
/// `bytes` must be NULL or `len` readable bytes; `out` NULL or a writable
/// `SottoSession *` set to NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_session_from_bytes(
    bytes: *const u8,
    len: usize,
    out: *mut *mut SottoSession,
) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe { persist::from_bytes::<Session>(bytes, len, out) })
}

/// The session's saved state encrypted under a 32-byte storage key.
///
/// # Safety
///
/// `session` must be NULL or a live handle; `key` NULL or `key_len` readable
/// bytes; `out` NULL or an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_session_seal(
    session: *const SottoSession,
    key: *const u8,
    key_len: usize,
    out: *mut SottoBuffer,
) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe { persist::seal::<Session>(session, "session", key, key_len, out) })
}

/// Opens `sotto_session_seal` output into a new handle.
///
/// # Safety
///
/// `sealed` and `key` must be NULL or point to their lengths in readable
/// bytes; `out` NULL or a writable `SottoSession *` set to NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_session_unseal(
    sealed: *const u8,
    sealed_len: usize,
    key: *const u8,
    key_len: usize,
    out: *mut *mut SottoSession,
) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe { persist::unseal::<Session>(sealed, sealed_len, key, key_len, out) })
}
