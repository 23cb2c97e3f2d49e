//! Stateless functions over encoded keys, bundles and messages.

use sotto::{IdentityKey, KemPreKey, Message, OneTimePreKey, PreKeyBundle, SignedPreKey};

use crate::buffer::{SottoBuffer, input, optional_input, out_buffer, out_value};
use crate::error::{SottoError, ffi_call};

/// The kind of a pairwise message, from `sotto_message_type`. The values are
/// the wire type tags.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SottoMessageType {
    /// A message inside an established session: decrypt it with that
    /// session.
    Ratchet = 1,
    /// A session's first messages, carrying the key-agreement header:
    /// decrypt with the session whose base key matches, or else start one
    /// with `sotto_session_accept`.
    Prekey = 2,
}

/// Assembles a prekey bundle from published parts (what a server does): an
/// identity key, a signed prekey, a one-time prekey unless `(NULL, 0)`, and
/// a KEM prekey (one-time while the server has any, else the last-resort
/// one) unless `(NULL, 0)`. A bundle without a KEM prekey starts a session
/// only through `sotto_session_initiate_allow_classical`. The parts are
/// parsed strictly; the signatures are checked later, by
/// `sotto_bundle_verify` or `sotto_session_initiate`.
///
/// # Safety
///
/// Each input must be NULL or point to its length in readable bytes; `out`
/// NULL or an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_bundle_new(
    identity_key: *const u8,
    identity_key_len: usize,
    signed_prekey: *const u8,
    signed_prekey_len: usize,
    one_time_prekey: *const u8,
    one_time_prekey_len: usize,
    kem_prekey: *const u8,
    kem_prekey_len: usize,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees each pointer/length pair.
        let identity = unsafe { input(identity_key, identity_key_len, "identity_key") }?;
        // SAFETY: as above.
        let spk = unsafe { input(signed_prekey, signed_prekey_len, "signed_prekey") }?;
        // SAFETY: as above.
        let opk =
            unsafe { optional_input(one_time_prekey, one_time_prekey_len, "one_time_prekey") }?;
        // SAFETY: as above.
        let kem = unsafe { optional_input(kem_prekey, kem_prekey_len, "kem_prekey") }?;
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        let bundle = PreKeyBundle::new(
            IdentityKey::from_bytes(identity)?,
            SignedPreKey::from_bytes(spk)?,
            opk.map(OneTimePreKey::from_bytes).transpose()?,
            kem.map(KemPreKey::from_bytes).transpose()?,
        );
        out.set(bundle.to_bytes());
        Ok(())
    })
}

/// Imports a prekey bundle: parses it strictly, verifies its signed prekey
/// and KEM prekey signatures strictly, and returns the bundle's identity
/// key (`SOTTO_IDENTITY_KEY_LEN` bytes), for example to show its
/// fingerprint before starting a session. `*out_has_kem_prekey` tells
/// whether it offers post-quantum key agreement.
///
/// # Safety
///
/// `bundle` must be NULL or `bundle_len` readable bytes; `out_identity_key`
/// NULL or an empty `SottoBuffer`; `out_has_kem_prekey` NULL or a writable
/// `bool`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_bundle_verify(
    bundle: *const u8,
    bundle_len: usize,
    out_identity_key: *mut SottoBuffer,
    out_has_kem_prekey: *mut bool,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees the pointer/length pair.
        let bundle = unsafe { input(bundle, bundle_len, "bundle") }?;
        // SAFETY: the caller guarantees `out_identity_key` is NULL or valid.
        let out = unsafe { out_buffer(out_identity_key, "out_identity_key") }?;
        // SAFETY: the caller guarantees `out_has_kem_prekey` is NULL or valid.
        let has_kem = unsafe { out_value(out_has_kem_prekey, "out_has_kem_prekey") }?;
        let verified = PreKeyBundle::from_bytes(bundle)?.verify()?;
        *has_kem = verified.bundle().kem_prekey().is_some();
        out.set(verified.bundle().identity().to_bytes().to_vec());
        Ok(())
    })
}

/// The id of an encoded signed prekey, one-time prekey or KEM prekey (to
/// remove an old one, or to track which ones a server handed out).
///
/// # Safety
///
/// `prekey` must be NULL or `prekey_len` readable bytes; `out` NULL or a
/// writable `uint32_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_prekey_id(
    prekey: *const u8,
    prekey_len: usize,
    out: *mut u32,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees the pointer/length pair.
        let bytes = unsafe { input(prekey, prekey_len, "prekey") }?;
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_value(out, "out") }?;
        let is_wrong_type = |e: &sotto::Error| matches!(e, sotto::Error::WrongType { .. });
        *out = match SignedPreKey::from_bytes(bytes) {
            Ok(spk) => spk.id(),
            Err(e) if is_wrong_type(&e) => match OneTimePreKey::from_bytes(bytes) {
                Ok(opk) => opk.id(),
                Err(e) if is_wrong_type(&e) => KemPreKey::from_bytes(bytes)?.id(),
                Err(e) => return Err(e.into()),
            },
            Err(e) => return Err(e.into()),
        };
        Ok(())
    })
}

/// The fingerprint of an identity key (`SOTTO_FINGERPRINT_LEN` bytes), for
/// users to compare out of band.
///
/// # Safety
///
/// `identity_key` must be NULL or `identity_key_len` readable bytes; `out`
/// NULL or an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_identity_key_fingerprint(
    identity_key: *const u8,
    identity_key_len: usize,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees the pointer/length pair.
        let key = unsafe { input(identity_key, identity_key_len, "identity_key") }?;
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        let fingerprint = IdentityKey::from_bytes(key)?.fingerprint();
        out.set(fingerprint.as_bytes().to_vec());
        Ok(())
    })
}

/// The fingerprint of an identity key as text to display: lowercase hex in
/// eight groups of eight digits separated by spaces (71 ASCII bytes, not
/// NUL-terminated).
///
/// # Safety
///
/// `identity_key` must be NULL or `identity_key_len` readable bytes; `out`
/// NULL or an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_identity_key_fingerprint_text(
    identity_key: *const u8,
    identity_key_len: usize,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees the pointer/length pair.
        let key = unsafe { input(identity_key, identity_key_len, "identity_key") }?;
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        let fingerprint = IdentityKey::from_bytes(key)?.fingerprint();
        out.set(fingerprint.to_string().into_bytes());
        Ok(())
    })
}

/// Parses a pairwise message strictly and reports its kind.
///
/// # Safety
///
/// `message` must be NULL or `message_len` readable bytes; `out` NULL or a
/// writable `SottoMessageType`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_message_type(
    message: *const u8,
    message_len: usize,
    out: *mut SottoMessageType,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees the pointer/length pair.
        let message = unsafe { input(message, message_len, "message") }?;
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_value(out, "out") }?;
        *out = match Message::from_bytes(message)? {
            Message::PreKey(_) => SottoMessageType::Prekey,
            Message::Ratchet(_) => SottoMessageType::Ratchet,
        };
        Ok(())
    })
}

/// The base key (`SOTTO_BASE_KEY_LEN` bytes) a prekey message names, to find
/// the session it belongs to (compare with `sotto_session_base_key`).
/// A ratchet message fails with `SOTTO_ERROR_WRONG_TYPE`.
///
/// # Safety
///
/// `message` must be NULL or `message_len` readable bytes; `out` NULL or an
/// empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_prekey_message_base_key(
    message: *const u8,
    message_len: usize,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees the pointer/length pair.
        let message = unsafe { input(message, message_len, "message") }?;
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        let message = crate::session::prekey_message(message)?;
        out.set(message.base_key_bytes().to_vec());
        Ok(())
    })
}
