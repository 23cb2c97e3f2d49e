//! `sotto_last_error_message`: the calling thread's last error, handed to C
//! in an owned buffer. Kept apart from `error.rs` so that the error module
//! stays below `buffer.rs`.

use std::panic::catch_unwind;

use crate::buffer::{SottoBuffer, out_buffer};
use crate::error::{FfiError, SottoError, last_error_message};

/// Copies the message of the calling thread's most recent failed call into
/// `*out` (UTF-8, not NUL-terminated). If the most recent call succeeded, the
/// message is empty (`{NULL, 0}`). Reading the message does not change it.
///
/// # Safety
///
/// `out` must be NULL or point to a writable `SottoBuffer`, which must be
/// empty (`{NULL, 0}`); release the result with `sotto_buffer_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_last_error_message(out: *mut SottoBuffer) -> SottoError {
    let result = catch_unwind(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid; `out_buffer`
        // checks NULL, alignment and emptiness.
        let out = unsafe { out_buffer(out, "out") }?;
        out.set(last_error_message().into_bytes());
        Ok::<(), FfiError>(())
    });
    // Not routed through `ffi_call`: reading the message must not replace it.
    match result {
        Ok(Ok(())) => SottoError::Ok,
        Ok(Err(e)) => e.code(),
        Err(_) => SottoError::Panic,
    }
}
