//! Decrypted pairwise plaintexts with their provenance (SPEC §15.7): only
//! `sotto_session_accept` and `sotto_session_decrypt_plaintext` make them,
//! so a C caller cannot hand `sotto_group_store_install` bytes that did not
//! come out of a session.

use sotto::Plaintext;

use crate::buffer::{SottoBuffer, out_buffer};
use crate::error::{SottoError, ffi_call};
use crate::handle::{SottoPlaintext, free, with_ref};

/// A copy of the plaintext's bytes (`{NULL, 0, 0}` for an empty message).
///
/// # Safety
///
/// `out` must be NULL or point to an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_plaintext_bytes(
    plaintext: *const SottoPlaintext,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        with_ref::<Plaintext, _>(plaintext, "plaintext", |p| {
            out.set_from(p.as_bytes());
            Ok(())
        })
    })
}

/// The identity key (`SOTTO_IDENTITY_KEY_LEN` bytes) of the peer of the
/// session that decrypted this plaintext.
///
/// # Safety
///
/// `out` must be NULL or point to an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_plaintext_sender_identity_key(
    plaintext: *const SottoPlaintext,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        let sender =
            with_ref::<Plaintext, _>(plaintext, "plaintext", |p| Ok(p.sender().to_bytes()))?;
        out.set(sender.to_vec());
        Ok(())
    })
}

/// Releases a plaintext and zeroizes its bytes. NULL is accepted; a
/// plaintext in use by another call is refused with
/// `SOTTO_ERROR_HANDLE_BUSY`, one already freed with
/// `SOTTO_ERROR_WRONG_HANDLE`.
///
/// # Safety
///
/// The pointer is checked against the live handles before any use. Do not
/// use it after this returns `SOTTO_ERROR_OK`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_plaintext_free(plaintext: *mut SottoPlaintext) -> SottoError {
    ffi_call(|| free::<Plaintext>(plaintext, "plaintext"))
}
