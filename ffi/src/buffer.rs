//! Borrowed inputs and owned, self-checking output buffers.
//!
//! Every non-empty output is one allocation: a 16-byte header (a tag and the
//! buffer's id) followed by the data; `ptr` points at the data. The id is
//! also in the `SottoBuffer` struct, and a registry maps the id of every
//! live buffer to its address and length. `sotto_buffer_free` frees only a
//! buffer whose id is registered with exactly that `ptr` and `len`, then
//! deregisters it and clears the tag: a second free through a copy of the
//! struct finds no registered id and is refused, without reading the freed
//! memory. Ids are never reused, so a stale copy cannot free a newer buffer
//! that the allocator placed at the same address.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use zeroize::Zeroize;

use crate::error::{FfiError, FfiResult, SottoError, ffi_call};

/// Bytes owned by the library and handed to the caller.
///
/// Release with [`sotto_buffer_free`], exactly once; it resets the struct to
/// `{NULL, 0, 0}`. An empty result is `{NULL, 0, 0}`. Output parameters of
/// type `SottoBuffer *` must point to an empty buffer, so that a forgotten
/// free is reported instead of leaked. Copy the struct only whole, and never
/// change its fields.
#[repr(C)]
#[derive(Debug)]
pub struct SottoBuffer {
    /// The first byte, or NULL when `len` is 0.
    pub ptr: *mut u8,
    /// Number of bytes.
    pub len: usize,
    /// Identifies the allocation, so that a free of a stale copy is refused;
    /// 0 for an empty buffer.
    pub id: u64,
}

/// Header bytes before the data: the live tag, then the id (little endian).
const HEADER_LEN: usize = 16;
/// The first 8 header bytes of a live buffer; zeroized on free.
const LIVE_TAG: [u8; 8] = *b"sotoBUF2";

struct Registry {
    next_id: u64,
    /// id -> (address of the header, bitwise negated; data length). The
    /// address is stored negated so that a leak checker scanning this map
    /// does not take it for a pointer: a buffer the caller leaks is reported
    /// as lost, not as still reachable.
    live: BTreeMap<u64, (usize, usize)>,
}

static BUFFERS: Mutex<Registry> = Mutex::new(Registry {
    next_id: 1,
    live: BTreeMap::new(),
});

fn registry() -> MutexGuard<'static, Registry> {
    // Nothing panics while the lock is held; if something did, the map is
    // still consistent (every update is a single insert or remove).
    BUFFERS.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SottoBuffer {
    const EMPTY: Self = Self {
        ptr: core::ptr::null_mut(),
        len: 0,
        id: 0,
    };

    fn is_empty(&self) -> bool {
        self.ptr.is_null() && self.len == 0 && self.id == 0
    }

    /// Stores a copy of `bytes` in a new registered allocation. Callers
    /// holding secrets pass a slice of a buffer that zeroizes itself.
    pub(crate) fn set_from(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            *self = Self::EMPTY;
            return;
        }
        let mut block = vec![0u8; HEADER_LEN + bytes.len()].into_boxed_slice();
        let (header, data) = block.split_at_mut(HEADER_LEN);
        let (tag, id_bytes) = header.split_at_mut(LIVE_TAG.len());
        tag.copy_from_slice(&LIVE_TAG);
        data.copy_from_slice(bytes);
        let mut registry = registry();
        let id = registry.next_id;
        // 2^64 allocations do not happen; wrapping keeps 0 (empty) unused.
        registry.next_id = id.wrapping_add(1).max(1);
        id_bytes.copy_from_slice(&id.to_le_bytes());
        let base = Box::into_raw(block).cast::<u8>();
        registry.live.insert(id, (!base.addr(), bytes.len()));
        drop(registry);
        *self = Self {
            ptr: base.wrapping_add(HEADER_LEN),
            len: bytes.len(),
            id,
        };
    }

    /// Stores a non-secret byte vector.
    pub(crate) fn set(&mut self, bytes: Vec<u8>) {
        self.set_from(&bytes);
    }
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

/// Borrows the caller's array of `count` elements of `T` (`(NULL, 0)` is
/// the empty array). `T` is a plain C type for which every bit pattern is a
/// value (integers and arrays of them, pointers).
///
/// # Safety
///
/// Unless `ptr` is NULL, it must point to `count` initialized `T`s that stay
/// valid and unmodified for `'a`.
pub(crate) unsafe fn input_array<'a, T>(
    ptr: *const T,
    count: usize,
    what: &str,
) -> FfiResult<&'a [T]> {
    if ptr.is_null() {
        return if count == 0 {
            Ok(&[])
        } else {
            Err(FfiError::null(what))
        };
    }
    if !ptr.is_aligned() {
        return Err(FfiError::invalid(format!("{what} is misaligned")));
    }
    if count
        .checked_mul(size_of::<T>())
        .is_none_or(|bytes| isize::try_from(bytes).is_err())
    {
        return Err(FfiError::invalid(format!(
            "{what}: {count} entries are too many"
        )));
    }
    // SAFETY: `ptr` is non-null and aligned, the array's size fits in
    // isize, and the caller guarantees `count` initialized elements at
    // `ptr` for `'a`.
    Ok(unsafe { core::slice::from_raw_parts(ptr, count) })
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
    // SAFETY: forwarded from this function's contract.
    let out = unsafe { out_value(out, what) }?;
    if !out.is_empty() {
        return Err(FfiError::invalid(format!(
            "{what} is not empty: free it with sotto_buffer_free or pass {{NULL, 0, 0}}"
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

/// Writes `items` to the caller's array of `capacity` elements and their
/// number to `*out_count`. Refuses (writing nothing) an array too small.
///
/// # Safety
///
/// `out` must be NULL or point to `capacity` writable `T`s, and `out_count`
/// NULL or a writable `size_t`, neither accessed by anything else during
/// the call.
pub(crate) unsafe fn out_array<T: Copy>(
    out: *mut T,
    capacity: usize,
    out_count: *mut usize,
    items: &[T],
    what: &str,
) -> FfiResult<()> {
    // SAFETY: forwarded from this function's contract.
    let count = unsafe { out_value(out_count, "out_count") }?;
    if out.is_null() {
        return Err(FfiError::null(what));
    }
    if !out.is_aligned() {
        return Err(FfiError::invalid(format!("{what} is misaligned")));
    }
    if items.len() > capacity {
        return Err(FfiError::invalid(format!(
            "{what} holds {capacity} entries, {} are needed",
            items.len()
        )));
    }
    for (i, item) in items.iter().enumerate() {
        let slot = out.wrapping_add(i);
        // SAFETY: `i < items.len() <= capacity`, so `slot` is inside the
        // caller's array of `capacity` writable, aligned elements; `write`
        // does not read the (possibly uninitialized) old value.
        unsafe { slot.write(*item) };
    }
    *count = items.len();
    Ok(())
}

/// Frees a buffer this library returned: checks it is live and unaltered,
/// zeroizes the data and the header (clearing the tag), releases it, and
/// resets the struct to `{NULL, 0, 0}`. NULL and an empty buffer are
/// accepted and ignored.
///
/// A buffer already freed, including through another copy of the struct,
/// is refused with `SOTTO_ERROR_INVALID_BUFFER` and nothing is freed; so
/// is a struct whose `ptr`, `len` or `id` was changed, or one this library
/// never returned.
///
/// # Safety
///
/// `buffer` must be NULL or point to a writable `SottoBuffer` not accessed
/// by anything else during the call. Do not read the bytes of a buffer
/// (through any copy) once it has been freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_buffer_free(buffer: *mut SottoBuffer) -> SottoError {
    ffi_call(|| {
        if buffer.is_null() {
            return Ok(());
        }
        // SAFETY: the caller guarantees a valid, exclusive buffer struct.
        let buffer = unsafe { out_value(buffer, "buffer") }?;
        if buffer.is_empty() {
            return Ok(());
        }
        release(buffer)?;
        *buffer = SottoBuffer::EMPTY;
        Ok(())
    })
}

fn not_live() -> FfiError {
    FfiError::new(
        SottoError::InvalidBuffer,
        "buffer is not a live sotto buffer: already freed (perhaps through a copy of the struct), \
         never returned by sotto, or its id was changed; nothing was freed",
    )
}

/// The checks and the release behind [`sotto_buffer_free`].
fn release(buffer: &SottoBuffer) -> FfiResult<()> {
    let mut registry = registry();
    let &(address, len) = registry.live.get(&buffer.id).ok_or_else(not_live)?;
    let base = buffer.ptr.wrapping_sub(HEADER_LEN);
    if base.addr() != !address || buffer.len != len {
        return Err(FfiError::new(
            SottoError::InvalidBuffer,
            "buffer's ptr or len was changed; nothing was freed",
        ));
    }
    let total = HEADER_LEN + len;
    // SAFETY: the id is registered with this header address, so `base` is
    // the start of a live `Box<[u8]>` of `total` bytes made by `set_from`;
    // a registered buffer is released only here, under the registry lock
    // we hold, so it stays allocated while we read its header.
    let header = unsafe { core::slice::from_raw_parts(base, HEADER_LEN) };
    if header.get(..8) != Some(&LIVE_TAG[..])
        || header.get(8..) != Some(&buffer.id.to_le_bytes()[..])
    {
        return Err(FfiError::new(
            SottoError::InvalidBuffer,
            "buffer's header was overwritten (a write before its first byte); nothing was freed",
        ));
    }
    registry.live.remove(&buffer.id);
    if registry.live.is_empty() {
        // Releases the map's last node, so an idle library holds no memory.
        registry.live = BTreeMap::new();
    }
    drop(registry);
    let block = core::ptr::slice_from_raw_parts_mut(base, total);
    // SAFETY: as above `block` is the whole `Box<[u8]>` allocation from
    // `Box::into_raw`; we deregistered it, so no other free can reach it,
    // and ownership comes back to us exactly once.
    let mut boxed = unsafe { Box::from_raw(block) };
    // Clears the tag and the id with the data.
    boxed.zeroize();
    drop(boxed);
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn free(buffer: &mut SottoBuffer) -> SottoError {
        // SAFETY: (test) a valid, exclusive struct.
        unsafe { sotto_buffer_free(buffer) }
    }

    #[test]
    fn a_copy_cannot_free_twice_nor_free_a_newer_buffer() {
        let mut first = SottoBuffer::EMPTY;
        first.set_from(b"secret plaintext");
        let mut copy = SottoBuffer {
            ptr: first.ptr,
            len: first.len,
            id: first.id,
        };
        assert_eq!(free(&mut first), SottoError::Ok);
        assert!(first.is_empty());
        // The allocator may hand the same block to the next buffer.
        let mut next = SottoBuffer::EMPTY;
        next.set_from(b"secret plaintext");
        assert_eq!(free(&mut copy), SottoError::InvalidBuffer);
        assert!(!copy.is_empty(), "a refused free leaves the struct alone");
        // `next` is intact and still frees once.
        // SAFETY: (test) `next` is live.
        let bytes = unsafe { core::slice::from_raw_parts(next.ptr, next.len) };
        assert_eq!(bytes, b"secret plaintext");
        assert_eq!(free(&mut next), SottoError::Ok);
    }

    #[test]
    fn altered_structs_are_refused() {
        let mut buffer = SottoBuffer::EMPTY;
        buffer.set_from(b"abc");
        let (ptr, len, id) = (buffer.ptr, buffer.len, buffer.id);
        for (p, l, i) in [
            (ptr, len + 1, id),
            (ptr.wrapping_add(1), len, id),
            (ptr, len, id + 1_000_000),
            (core::ptr::null_mut(), 5, 0),
            (ptr, 0, 0),
        ] {
            let mut altered = SottoBuffer {
                ptr: p,
                len: l,
                id: i,
            };
            assert_eq!(free(&mut altered), SottoError::InvalidBuffer);
        }
        assert_eq!(free(&mut buffer), SottoError::Ok);
        assert_eq!(free(&mut buffer), SottoError::Ok, "empty after the free");
    }

    #[test]
    fn empty_and_null_are_accepted() {
        let mut empty = SottoBuffer::EMPTY;
        empty.set_from(&[]);
        assert!(empty.is_empty());
        assert_eq!(free(&mut empty), SottoError::Ok);
        // SAFETY: (test) NULL is allowed.
        let freed = unsafe { sotto_buffer_free(core::ptr::null_mut()) };
        assert_eq!(freed, SottoError::Ok);
    }
}
