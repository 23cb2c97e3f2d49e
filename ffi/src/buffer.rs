//! Borrowed inputs and owned output buffers.

use zeroize::Zeroize;

use crate::error::{FfiError, FfiResult, SottoError, ffi_call};

/// Bytes owned by the library and handed to the caller.
///
/// Release with [`sotto_buffer_free`], exactly once; it resets the struct to
/// `{NULL, 0}`, so a second call is harmless. An empty result is `{NULL, 0}`.
/// Output parameters of type `SottoBuffer *` must point to an empty buffer,
/// so that a forgotten free is reported instead of leaked.
#[repr(C)]
#[derive(Debug)]
pub struct SottoBuffer {
    /// The first byte, or NULL when `len` is 0.
    pub ptr: *mut u8,
    /// Number of bytes.
    pub len: usize,
}

impl SottoBuffer {
    fn is_empty(&self) -> bool {
        self.ptr.is_null() && self.len == 0
    }

    /// Stores `bytes` (copied into an allocation of exactly their length,
    /// so that freeing needs only `ptr` and `len`). Callers holding secrets
    /// pass a slice of a buffer that zeroizes itself.
    pub(crate) fn set_from(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            *self = Self::EMPTY;
            return;
        }
        let boxed: Box<[u8]> = Box::from(bytes);
        let len = boxed.len();
        self.ptr = Box::into_raw(boxed).cast::<u8>();
        self.len = len;
    }

    /// Stores a non-secret byte vector.
    pub(crate) fn set(&mut self, mut bytes: Vec<u8>) {
        if bytes.len() == bytes.capacity() {
            let boxed = bytes.into_boxed_slice();
            let len = boxed.len();
            self.ptr = if len == 0 {
                core::ptr::null_mut()
            } else {
                Box::into_raw(boxed).cast::<u8>()
            };
            self.len = len;
        } else {
            self.set_from(&bytes);
            bytes.zeroize();
        }
    }

    const EMPTY: Self = Self {
        ptr: core::ptr::null_mut(),
        len: 0,
    };
}

/// Borrows the caller's `(ptr, len)` input. `(NULL, 0)` is the empty input.
///
/// # Safety
///
/// Unless `ptr` is NULL, it must point to `len` readable bytes that stay
/// valid and unmodified for `'a`.
pub(crate) unsafe fn input<'a>(ptr: *const u8, len: usize, what: &str) -> FfiResult<&'a [u8]> {
    if ptr.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(FfiError::null(what))
        };
    }
    if isize::try_from(len).is_err() {
        return Err(FfiError::invalid(format!(
            "{what}: length {len} is too large"
        )));
    }
    // SAFETY: `ptr` is non-null, `len` fits in isize, and the caller
    // guarantees `len` readable bytes at `ptr` for `'a`; u8 has alignment 1.
    Ok(unsafe { core::slice::from_raw_parts(ptr, len) })
}

/// Like [`input`], but `(NULL, 0)` means "absent" rather than empty.
///
/// # Safety
///
/// As for [`input`].
pub(crate) unsafe fn optional_input<'a>(
    ptr: *const u8,
    len: usize,
    what: &str,
) -> FfiResult<Option<&'a [u8]>> {
    if ptr.is_null() && len == 0 {
        return Ok(None);
    }
    // SAFETY: forwarded from this function's contract.
    unsafe { input(ptr, len, what) }.map(Some)
}

/// Checks and borrows an output buffer slot, which must be empty.
///
/// # Safety
///
/// `out` must be NULL or point to a `SottoBuffer` that is writable and not
/// accessed by anything else for `'a`.
pub(crate) unsafe fn out_buffer<'a>(
    out: *mut SottoBuffer,
    what: &str,
) -> FfiResult<&'a mut SottoBuffer> {
    if out.is_null() {
        return Err(FfiError::null(what));
    }
    if !out.is_aligned() {
        return Err(FfiError::invalid(format!("{what} is misaligned")));
    }
    // SAFETY: non-null and aligned; the caller guarantees it is valid and
    // exclusively ours for `'a`.
    let out = unsafe { &mut *out };
    if !out.is_empty() {
        return Err(FfiError::invalid(format!(
            "{what} is not empty: free it with sotto_buffer_free or pass {{NULL, 0}}"
        )));
    }
    Ok(out)
}

/// Checks and borrows a plain output value (`size_t *`, `bool *`, ...).
///
/// # Safety
///
/// `out` must be NULL or point to a writable `T` not accessed by anything
/// else for `'a`.
pub(crate) unsafe fn out_value<'a, T>(out: *mut T, what: &str) -> FfiResult<&'a mut T> {
    if out.is_null() {
        return Err(FfiError::null(what));
    }
    if !out.is_aligned() {
        return Err(FfiError::invalid(format!("{what} is misaligned")));
    }
    // SAFETY: non-null and aligned; the caller guarantees it is valid and
    // exclusively ours for `'a`.
    Ok(unsafe { &mut *out })
}

/// Zeroizes and releases a buffer this library returned, then sets it to
/// `{NULL, 0}`. NULL and an already empty buffer are accepted and ignored.
///
/// # Safety
///
/// `buffer` must be NULL or point to a writable `SottoBuffer` that is either
/// empty or exactly as a sotto function returned it. Other pointers or
/// lengths cannot be detected in general and are undefined behaviour; the
/// mismatched forms `{NULL, n > 0}` and `{ptr, 0}` are refused with
/// `SOTTO_ERROR_INVALID_ARGUMENT`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_buffer_free(buffer: *mut SottoBuffer) -> SottoError {
    ffi_call(|| {
        if buffer.is_null() {
            return Ok(());
        }
        // SAFETY: non-null; the caller guarantees a valid, exclusive buffer.
        let buffer = unsafe { out_value(buffer, "buffer") }?;
        if buffer.is_empty() {
            return Ok(());
        }
        if buffer.ptr.is_null() || buffer.len == 0 || isize::try_from(buffer.len).is_err() {
            return Err(FfiError::invalid(
                "buffer was not returned by sotto (NULL pointer with a length, or a pointer with length 0)",
            ));
        }
        let slice = core::ptr::slice_from_raw_parts_mut(buffer.ptr, buffer.len);
        // SAFETY: a non-empty SottoBuffer is only ever made by `set`/`set_from`
        // from `Box<[u8]>::into_raw` with this exact length, and the caller
        // guarantees it was not freed or altered; we reset it below so it
        // cannot be freed twice through this struct.
        let mut boxed = unsafe { Box::from_raw(slice) };
        boxed.zeroize();
        drop(boxed);
        *buffer = SottoBuffer::EMPTY;
        Ok(())
    })
}
