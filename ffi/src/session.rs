//! Session functions: initiate, accept, encrypt, decrypt, persistence.
//!
//! Post-quantum key agreement (PQXDH) is the default; classical X3DH only
//! through the functions named `_allow_classical`, per call.

use sotto::{
    Device, IdentityKey, KeyAgreement, KeyAgreementPolicy, Message, PreKeyBundle, PreKeyMessage,
    Session,
};
use zeroize::Zeroizing;

use crate::buffer::{SottoBuffer, input, optional_input, out_buffer, out_value};
use crate::error::{FfiError, FfiResult, SottoError, ffi_call};
use crate::handle::{
    SottoDevice, SottoPlaintext, SottoSession, free, into_raw, out_handle, with_mut, with_ref,
};
use crate::persist;
use crate::rng::OsRng;

/// Which key agreement started a session (`sotto_session_key_agreement`).
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SottoKeyAgreement {
    /// Classical X3DH: only through an `_allow_classical` function, with a
    /// peer that offered no KEM prekey.
    X3dh = 1,
    /// X3DH with an ML-KEM-1024 encapsulation: the default.
    Pqxdh = 2,
}

/// Parses a prekey message, checking its size before copying it.
pub(crate) fn prekey_message(bytes: &[u8]) -> FfiResult<PreKeyMessage> {
    if bytes.len() > sotto::MAX_MESSAGE_LEN {
        return Err(sotto::Error::TooLarge.into());
    }
    Ok(PreKeyMessage::from_vec(bytes.to_vec())?)
}

/// # Safety
///
/// As for [`sotto_session_initiate`].
unsafe fn initiate(
    device: *const SottoDevice,
    bundle: (*const u8, usize),
    expected: (*const u8, usize),
    out: *mut *mut SottoSession,
    policy: KeyAgreementPolicy,
) -> FfiResult<()> {
    // SAFETY: the caller guarantees each pointer/length pair.
    let bundle = unsafe { input(bundle.0, bundle.1, "bundle") }?;
    // SAFETY: as above.
    let expected = unsafe { optional_input(expected.0, expected.1, "expected_identity_key") }?;
    // SAFETY: the caller guarantees `out` is NULL or a valid slot.
    let out = unsafe { out_handle(out, "out") }?;
    let bundle = PreKeyBundle::from_bytes(bundle)?;
    let verified = match expected {
        Some(expected) => bundle.verify_for(&IdentityKey::from_bytes(expected)?)?,
        None => bundle.verify()?,
    };
    let session = with_ref::<Device, _>(device, "device", |d| {
        Ok(Session::initiate_with_policy(
            d, &mut OsRng, &verified, policy,
        )?)
    })?;
    *out = into_raw(session);
    Ok(())
}

/// Starts a session with the owner of `bundle` (from `sotto_device_bundle`
/// or `sotto_bundle_new`) by PQXDH. The bundle's signatures are verified
/// strictly first. A bundle without a KEM prekey is refused with
/// `SOTTO_ERROR_POST_QUANTUM_REQUIRED`.
///
/// `expected_identity_key` is `(NULL, 0)`, or the **encoded** identity key
/// you already know for this contact: the `SOTTO_IDENTITY_KEY_LEN` (34)
/// bytes that `sotto_device_identity_key`, `sotto_bundle_verify` or
/// `sotto_session_remote_identity_key` return (not the 32-byte raw key, and
/// not a fingerprint). The bundle must then belong to it
/// (`SOTTO_ERROR_IDENTITY_MISMATCH` otherwise). The device is not changed.
///
/// # Safety
///
/// Each input must be NULL or its length in readable bytes; `out` NULL or a
/// writable `SottoSession *` set to NULL.
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
        // SAFETY: forwarded from this function's contract.
        unsafe {
            initiate(
                device,
                (bundle, bundle_len),
                (expected_identity_key, expected_identity_key_len),
                out,
                KeyAgreementPolicy::PostQuantumRequired,
            )
        }
    })
}

/// As `sotto_session_initiate`, but a bundle without a KEM prekey starts a
/// session by classical X3DH, which a future quantum computer could break.
/// Use it for one call with a peer known not to support ML-KEM, never for a
/// peer that once offered a KEM prekey (a server that strips KEM prekeys
/// would otherwise downgrade you). A bundle with a KEM prekey still gives
/// PQXDH.
///
/// # Safety
///
/// As for `sotto_session_initiate`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_session_initiate_allow_classical(
    device: *const SottoDevice,
    bundle: *const u8,
    bundle_len: usize,
    expected_identity_key: *const u8,
    expected_identity_key_len: usize,
    out: *mut *mut SottoSession,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: forwarded from this function's contract.
        unsafe {
            initiate(
                device,
                (bundle, bundle_len),
                (expected_identity_key, expected_identity_key_len),
                out,
                KeyAgreementPolicy::ClassicalAllowed,
            )
        }
    })
}

/// # Safety
///
/// As for [`sotto_session_accept`].
unsafe fn accept(
    device: *mut SottoDevice,
    message: (*const u8, usize),
    out_session: *mut *mut SottoSession,
    out_plaintext: *mut *mut SottoPlaintext,
    policy: KeyAgreementPolicy,
) -> FfiResult<()> {
    // SAFETY: the caller guarantees the pointer/length pair.
    let message = unsafe { input(message.0, message.1, "message") }?;
    // Compared before any reference to either slot exists.
    if !out_session.is_null() && core::ptr::addr_eq(out_session, out_plaintext) {
        return Err(FfiError::invalid(
            "out_session and out_plaintext are the same slot",
        ));
    }
    // SAFETY: the caller guarantees `out_session` is NULL or a valid slot.
    let out_session = unsafe { out_handle(out_session, "out_session") }?;
    // SAFETY: the caller guarantees `out_plaintext` is NULL or a valid slot,
    // distinct from `out_session` (checked above).
    let out_plaintext = unsafe { out_handle(out_plaintext, "out_plaintext") }?;
    let message = prekey_message(message)?;
    let (session, plaintext) = with_mut::<Device, _>(device, "device", |d| {
        Ok(Session::accept_with_policy(d, &message, policy)?)
    })?;
    *out_session = into_raw(session);
    *out_plaintext = into_raw(plaintext);
    Ok(())
}

/// Accepts a PQXDH prekey message: starts the responder's session and
/// decrypts the message into a plaintext handle, whose sender
/// (`sotto_plaintext_sender_identity_key`) is the initiator's identity:
/// check it against the contact you expect (whoever holds your device
/// state could claim any identity). Deletes the one-time prekeys the
/// message used from `device`, or records its base key so it is never
/// accepted twice; save the device, then the new session, before showing
/// the plaintext. A message without a KEM ciphertext fails with
/// `SOTTO_ERROR_POST_QUANTUM_REQUIRED`, a ratchet message with
/// `SOTTO_ERROR_WRONG_TYPE`. On error nothing changes.
///
/// # Safety
///
/// `message` must be NULL or `message_len` readable bytes; `out_session`
/// NULL or a writable `SottoSession *` set to NULL; `out_plaintext` NULL or
/// a writable `SottoPlaintext *` set to NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_session_accept(
    device: *mut SottoDevice,
    message: *const u8,
    message_len: usize,
    out_session: *mut *mut SottoSession,
    out_plaintext: *mut *mut SottoPlaintext,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: forwarded from this function's contract.
        unsafe {
            accept(
                device,
                (message, message_len),
                out_session,
                out_plaintext,
                KeyAgreementPolicy::PostQuantumRequired,
            )
        }
    })
}

/// As `sotto_session_accept`, but a prekey message without a KEM
/// ciphertext is accepted too, as classical X3DH. Use it for one call with
/// a peer known not to support ML-KEM.
///
/// # Safety
///
/// As for `sotto_session_accept`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_session_accept_allow_classical(
    device: *mut SottoDevice,
    message: *const u8,
    message_len: usize,
    out_session: *mut *mut SottoSession,
    out_plaintext: *mut *mut SottoPlaintext,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: forwarded from this function's contract.
        unsafe {
            accept(
                device,
                (message, message_len),
                out_session,
                out_plaintext,
                KeyAgreementPolicy::ClassicalAllowed,
            )
        }
    })
}

/// Encrypts `plaintext` (up to `SOTTO_MAX_PLAINTEXT_LEN` bytes; empty is
/// allowed) into a message to send. Save the session before sending.
///
/// # Safety
///
/// `plaintext` must be NULL or `plaintext_len` readable bytes;
/// `out_message` NULL or an empty `SottoBuffer`.
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
        let message =
            with_mut::<Session, _>(
                session,
                "session",
                |s| Ok(s.encrypt(&mut OsRng, plaintext)?),
            )?;
        out.set(message.into_bytes());
        Ok(())
    })
}

/// Decrypts a message of this session (ratchet or prekey) into bytes; the
/// sender is this session's remote identity. All or nothing: on error the
/// session is unchanged. Save the session before showing the plaintext.
///
/// `SOTTO_ERROR_SESSION_DIVERGED` means one side restored an older state:
/// this session will not read the peer's new messages again; start a new
/// one (and keep this one for messages it can still read).
///
/// # Safety
///
/// `message` must be NULL or `message_len` readable bytes; `out_plaintext`
/// NULL or an empty `SottoBuffer`.
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
        let plaintext = with_mut::<Session, _>(session, "session", |s| Ok(s.decrypt(&message)?))?;
        let plaintext: Zeroizing<Vec<u8>> = plaintext.into_bytes();
        out.set_from(&plaintext);
        Ok(())
    })
}

/// As `sotto_session_decrypt`, but returns a plaintext handle: the bytes
/// with the identity of this session's peer, which
/// `sotto_group_store_install` takes to install a sender key distribution
/// as that peer's.
///
/// # Safety
///
/// `message` must be NULL or `message_len` readable bytes; `out` NULL or a
/// writable `SottoPlaintext *` set to NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_session_decrypt_plaintext(
    session: *mut SottoSession,
    message: *const u8,
    message_len: usize,
    out: *mut *mut SottoPlaintext,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees the pointer/length pair.
        let message = unsafe { input(message, message_len, "message") }?;
        // SAFETY: the caller guarantees `out` is NULL or a valid slot.
        let out = unsafe { out_handle(out, "out") }?;
        let message = Message::from_bytes(message)?;
        let plaintext = with_mut::<Session, _>(session, "session", |s| Ok(s.decrypt(&message)?))?;
        *out = into_raw(plaintext);
        Ok(())
    })
}

/// The peer's identity key (`SOTTO_IDENTITY_KEY_LEN` bytes). Compare its
/// fingerprint out of band to rule out a man in the middle.
///
/// # Safety
///
/// `out` must be NULL or point to an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_session_remote_identity_key(
    session: *const SottoSession,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        let key =
            with_ref::<Session, _>(session, "session", |s| Ok(s.remote_identity().to_bytes()))?;
        out.set(key.to_vec());
        Ok(())
    })
}

/// The initiator's base key (`SOTTO_BASE_KEY_LEN` bytes), which names the
/// session: prekey messages with this base key belong to it.
///
/// # Safety
///
/// `out` must be NULL or point to an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_session_base_key(
    session: *const SottoSession,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        let key = with_ref::<Session, _>(session, "session", |s| Ok(s.base_key_bytes()))?;
        out.set(key.to_vec());
        Ok(())
    })
}

/// Whether this session's messages still carry the key-agreement header
/// (initiator, before the first reply decrypted).
///
/// # Safety
///
/// `out` must be NULL or point to a writable `bool`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_session_is_awaiting_reply(
    session: *const SottoSession,
    out: *mut bool,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_value(out, "out") }?;
        *out = with_ref::<Session, _>(session, "session", |s| Ok(s.is_awaiting_reply()))?;
        Ok(())
    })
}

/// Which key agreement started this session.
///
/// # Safety
///
/// `out` must be NULL or point to a writable `SottoKeyAgreement`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_session_key_agreement(
    session: *const SottoSession,
    out: *mut SottoKeyAgreement,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_value(out, "out") }?;
        *out = with_ref::<Session, _>(session, "session", |s| {
            Ok(match s.key_agreement() {
                KeyAgreement::X3dh => SottoKeyAgreement::X3dh,
                KeyAgreement::Pqxdh => SottoKeyAgreement::Pqxdh,
            })
        })?;
        Ok(())
    })
}

/// The session's plain saved state. It contains secret keys: store it
/// encrypted, or use `sotto_session_seal`.
///
/// # Safety
///
/// `out` must be NULL or point to an empty `SottoBuffer`.
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

/// The session's saved state encrypted under a 32-byte storage key (from the
/// platform keystore) and bound to `context`: the record's key in the app's
/// store (for example `"session/alice/3"`), at most `SOTTO_MAX_SEAL_CONTEXT_LEN`
/// bytes (`SOTTO_ERROR_TOO_LARGE` otherwise). The blob opens only under the
/// same context, so a blob copied into another record is refused.
///
/// # Safety
///
/// `key` and `context` must be NULL or their lengths in readable bytes;
/// `out` NULL or an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_session_seal(
    session: *const SottoSession,
    key: *const u8,
    key_len: usize,
    context: *const u8,
    context_len: usize,
    out: *mut SottoBuffer,
) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe {
        persist::seal::<Session>(
            session,
            "session",
            (key, key_len),
            (context, context_len),
            out,
        )
    })
}

/// Opens `sotto_session_seal` output, sealed under the same `context`, into a
/// new handle. The wrong key, the wrong context or altered bytes fail with
/// `SOTTO_ERROR_AUTHENTICATION_FAILED`. Compare the restored generation
/// with the one you recorded to detect a rolled-back blob.
///
/// # Safety
///
/// `sealed`, `key` and `context` must be NULL or their lengths in readable
/// bytes; `out` NULL or a writable `SottoSession *` set to NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_session_unseal(
    sealed: *const u8,
    sealed_len: usize,
    key: *const u8,
    key_len: usize,
    context: *const u8,
    context_len: usize,
    out: *mut *mut SottoSession,
) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe {
        persist::unseal::<Session>(
            (sealed, sealed_len),
            (key, key_len),
            (context, context_len),
            out,
        )
    })
}

/// The session's generation: 0 when new, 1 more after every call that
/// changed it (SPEC §10.1). Record it, after every save, where an attacker
/// cannot roll it back; a restored state with a lower generation is a
/// rollback.
///
/// # Safety
///
/// `out` must be NULL or point to a writable `uint64_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_session_generation(
    session: *const SottoSession,
    out: *mut u64,
) -> SottoError {
    // SAFETY: forwarded from this function's contract.
    ffi_call(|| unsafe { persist::generation::<Session>(session, "session", out) })
}

/// Releases a session and zeroizes its secrets. NULL is accepted. Refused
/// with `SOTTO_ERROR_HANDLE_BUSY` while another call uses it (nothing is
/// freed), and with `SOTTO_ERROR_WRONG_HANDLE` if it is not a live session
/// handle (for example already freed).
///
/// # Safety
///
/// The pointer is checked against the live handles before any use. Do not
/// use it after this returns `SOTTO_ERROR_OK`: once the allocator gives its
/// address to a new session, a stale pointer would reach that one.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_session_free(session: *mut SottoSession) -> SottoError {
    ffi_call(|| free::<Session>(session, "session"))
}
