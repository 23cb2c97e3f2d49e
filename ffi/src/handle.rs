//! Opaque typed handles.
//!
//! Every handle is a heap-allocated [`Handle<T>`] whose first field is a
//! 64-bit magic number naming its type. `#[repr(C)]` puts that field at
//! offset 0 for every `T`, so a pointer to any live handle can be read as a
//! `u64` before its type is known: a handle of the wrong type is refused
//! instead of being reinterpreted. The `state` field guards against
//! concurrent use and records poisoning after an internal panic.
//!
//! What cannot be detected: a pointer that never was a handle, or a handle
//! that was already freed (its memory may have been reused). `_free` clears
//! the magic before releasing the memory, which catches many use-after-free
//! bugs in practice but is not a guarantee.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU8, Ordering};

use sotto::group::{GroupReceiver, GroupSender};
use sotto::{Device, Session};
use zeroize::Zeroize;

use crate::error::{FfiError, FfiResult, SottoError};

/// A device: identity key pair, signed prekeys and one-time prekey secrets.
/// Create with `sotto_device_generate` or `sotto_device_from_bytes`;
/// release with `sotto_device_free`.
pub struct SottoDevice {
    _opaque: [u8; 0],
}

/// A pairwise session with one peer device. Create with
/// `sotto_session_initiate`, `sotto_session_accept` or
/// `sotto_session_from_bytes`; release with `sotto_session_free`.
pub struct SottoSession {
    _opaque: [u8; 0],
}

/// A member's own sending chain in one group. Create with
/// `sotto_group_sender_new` or restore; release with
/// `sotto_group_sender_free`.
pub struct SottoGroupSender {
    _opaque: [u8; 0],
}

/// Another member's sending chain, installed from its distribution. Create
/// with `sotto_group_receiver_accept`,
/// `sotto_group_receiver_import_unauthenticated` or restore; release with
/// `sotto_group_receiver_free`.
pub struct SottoGroupReceiver {
    _opaque: [u8; 0],
}

const IDLE: u8 = 0;
const BUSY: u8 = 1;
const POISONED: u8 = 2;

/// Written over the magic just before the memory is released (by
/// zeroizing it).
const FREED_MAGIC: u64 = 0;

#[repr(C)]
pub(crate) struct Handle<T> {
    magic: u64,
    state: AtomicU8,
    value: UnsafeCell<T>,
}

/// A Rust type that travels behind a handle.
pub(crate) trait HandleType: Sized {
    /// Unique per type; never 0.
    const MAGIC: u64;
    /// Used in error messages.
    const NAME: &'static str;
    /// The opaque type C sees.
    type Opaque;
}

impl HandleType for Device {
    const MAGIC: u64 = u64::from_be_bytes(*b"sotoDEV1");
    const NAME: &'static str = "device";
    type Opaque = SottoDevice;
}

impl HandleType for Session {
    const MAGIC: u64 = u64::from_be_bytes(*b"sotoSES1");
    const NAME: &'static str = "session";
    type Opaque = SottoSession;
}

impl HandleType for GroupSender {
    const MAGIC: u64 = u64::from_be_bytes(*b"sotoGSN1");
    const NAME: &'static str = "group sender";
    type Opaque = SottoGroupSender;
}

impl HandleType for GroupReceiver {
    const MAGIC: u64 = u64::from_be_bytes(*b"sotoGRC1");
    const NAME: &'static str = "group receiver";
    type Opaque = SottoGroupReceiver;
}

fn name_of(magic: u64) -> &'static str {
    match magic {
        <Device as HandleType>::MAGIC => "a device handle",
        <Session as HandleType>::MAGIC => "a session handle",
        <GroupSender as HandleType>::MAGIC => "a group sender handle",
        <GroupReceiver as HandleType>::MAGIC => "a group receiver handle",
        FREED_MAGIC => "a freed handle",
        _ => "not a sotto handle",
    }
}

/// Boxes `value` and returns the pointer C holds.
pub(crate) fn into_raw<T: HandleType>(value: T) -> *mut T::Opaque {
    let handle = Box::new(Handle {
        magic: T::MAGIC,
        state: AtomicU8::new(IDLE),
        value: UnsafeCell::new(value),
    });
    Box::into_raw(handle).cast::<T::Opaque>()
}

/// Checks that `ptr` is a handle of type `T` and returns it.
///
/// # Safety
///
/// `ptr` must be NULL or point to a live handle made by [`into_raw`] (of any
/// type), not freed concurrently.
unsafe fn check<'a, T: HandleType>(ptr: *const T::Opaque, what: &str) -> FfiResult<&'a Handle<T>> {
    if ptr.is_null() {
        return Err(FfiError::null(what));
    }
    let ptr = ptr.cast::<Handle<T>>();
    // Every handle type has the same alignment requirement of its first
    // field (u64), so this also rejects pointers that cannot be handles.
    if !ptr.cast::<u64>().is_aligned() || !ptr.is_aligned() {
        return Err(FfiError::new(
            SottoError::WrongHandle,
            format!("{what} is not a sotto handle (misaligned)"),
        ));
    }
    // SAFETY: the caller guarantees `ptr` points to a live `Handle<U>` for
    // some handle type U. All are `repr(C)` with `magic: u64` first, so the
    // first 8 bytes are an initialized u64 whatever U is, and the pointer is
    // aligned for u64 (checked above). `magic` is never written while the
    // handle is live.
    let magic = unsafe { ptr.cast::<u64>().read() };
    if magic != T::MAGIC {
        return Err(FfiError::new(
            SottoError::WrongHandle,
            format!(
                "{what} must be a {} handle, got {}",
                T::NAME,
                name_of(magic)
            ),
        ));
    }
    // SAFETY: the magic says this is a live `Handle<T>`; `Handle` is only
    // accessed through shared references (mutation of `value` goes through
    // `UnsafeCell` under the `state` lock), so a shared reference is sound.
    Ok(unsafe { &*ptr })
}

/// Marks the handle idle again when the borrow ends, or poisoned when it
/// ends by unwinding with a mutable borrow.
struct Release<'a> {
    state: &'a AtomicU8,
    mutable: bool,
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        let next = if self.mutable && std::thread::panicking() {
            POISONED
        } else {
            IDLE
        };
        self.state.store(next, Ordering::Release);
    }
}

fn lock<'a, T: HandleType>(
    handle: &'a Handle<T>,
    what: &str,
    mutable: bool,
) -> FfiResult<Release<'a>> {
    match handle
        .state
        .compare_exchange(IDLE, BUSY, Ordering::Acquire, Ordering::Acquire)
    {
        Ok(_) => Ok(Release {
            state: &handle.state,
            mutable,
        }),
        Err(POISONED) => Err(FfiError::new(
            SottoError::HandlePoisoned,
            format!(
                "{what} is poisoned by an earlier internal error; free it and restore from saved state"
            ),
        )),
        Err(_) => Err(FfiError::new(
            SottoError::HandleBusy,
            format!("{what} is in use by another call"),
        )),
    }
}

/// Runs `f` with shared access to the handle's value.
///
/// # Safety
///
/// As for [`check`].
pub(crate) unsafe fn with_ref<T: HandleType, R>(
    ptr: *const T::Opaque,
    what: &str,
    f: impl FnOnce(&T) -> FfiResult<R>,
) -> FfiResult<R> {
    // SAFETY: forwarded from this function's contract.
    let handle = unsafe { check::<T>(ptr, what) }?;
    let _release = lock(handle, what, false)?;
    // SAFETY: holding the lock (state BUSY, won by our compare-exchange)
    // means no other reference to `value` exists until `_release` drops.
    f(unsafe { &*handle.value.get() })
}

/// Runs `f` with exclusive access to the handle's value. If `f` panics the
/// handle is poisoned: every later call on it except `_free` fails.
///
/// # Safety
///
/// As for [`check`].
pub(crate) unsafe fn with_mut<T: HandleType, R>(
    ptr: *mut T::Opaque,
    what: &str,
    f: impl FnOnce(&mut T) -> FfiResult<R>,
) -> FfiResult<R> {
    // SAFETY: forwarded from this function's contract.
    let handle = unsafe { check::<T>(ptr, what) }?;
    let _release = lock(handle, what, true)?;
    // SAFETY: holding the lock means this is the only reference to `value`
    // until `_release` drops.
    f(unsafe { &mut *handle.value.get() })
}

/// Checks an output handle slot: non-NULL and holding NULL, so that an
/// existing handle is not overwritten (and leaked).
///
/// # Safety
///
/// `out` must be NULL or point to a writable pointer slot, exclusively ours
/// for `'a`.
pub(crate) unsafe fn out_handle<'a, O>(out: *mut *mut O, what: &str) -> FfiResult<&'a mut *mut O> {
    // SAFETY: forwarded from this function's contract.
    let slot = unsafe { crate::buffer::out_value(out, what) }?;
    if !slot.is_null() {
        return Err(FfiError::invalid(format!(
            "{what} already holds a handle: free it first or pass a slot set to NULL"
        )));
    }
    Ok(slot)
}

/// Releases a handle. NULL is accepted and ignored.
///
/// # Safety
///
/// `ptr` must be NULL or a live handle (of any type) that no other thread
/// is using, and must not be used after this call succeeds.
pub(crate) unsafe fn free<T: HandleType>(ptr: *mut T::Opaque, what: &str) -> FfiResult<()> {
    if ptr.is_null() {
        return Ok(());
    }
    // SAFETY: forwarded from this function's contract.
    let handle = unsafe { check::<T>(ptr, what) }?;
    if handle.state.load(Ordering::Acquire) == BUSY {
        return Err(FfiError::new(
            SottoError::HandleBusy,
            format!("{what} is in use by another call"),
        ));
    }
    let ptr = ptr.cast::<Handle<T>>();
    // SAFETY: `ptr` came from `Box::into_raw` in `into_raw` (the magic
    // matched), the caller hands over ownership, and no borrow is active
    // (state is not BUSY). The value's own Drop zeroizes its secrets.
    let mut boxed = unsafe { Box::from_raw(ptr) };
    // A volatile write, so the store before deallocation is not elided.
    boxed.magic.zeroize();
    drop(boxed);
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use crate::rng::OsRng;

    fn code<T>(result: FfiResult<T>) -> SottoError {
        result.map_or_else(|e| e.code(), |_| SottoError::Ok)
    }

    #[test]
    fn busy_and_poisoned_handles_are_refused() {
        let device = into_raw(Device::generate(&mut OsRng));
        // SAFETY: (test) `device` is a live handle made just above.
        let handle = unsafe { check::<Device>(device, "device") }.unwrap();
        handle.state.store(BUSY, Ordering::SeqCst);
        // SAFETY: (test) as above.
        let busy = unsafe { with_ref::<Device, _>(device, "device", |_| Ok(())) };
        assert_eq!(code(busy), SottoError::HandleBusy);
        // SAFETY: (test) as above.
        let busy = unsafe { free::<Device>(device, "device") };
        assert_eq!(code(busy), SottoError::HandleBusy);
        handle.state.store(IDLE, Ordering::SeqCst);

        let unwound = std::panic::catch_unwind(|| {
            // SAFETY: (test) as above.
            unsafe { with_mut::<Device, ()>(device, "device", |_| panic!("inside")) }
        });
        assert!(unwound.is_err());
        // SAFETY: (test) as above.
        let poisoned = unsafe { with_ref::<Device, _>(device, "device", |_| Ok(())) };
        assert_eq!(code(poisoned), SottoError::HandlePoisoned);
        // SAFETY: (test) poisoned handles can still be freed; not used after.
        let freed = unsafe { free::<Device>(device, "device") };
        assert_eq!(code(freed), SottoError::Ok);
    }

    #[test]
    fn a_panic_under_a_shared_borrow_does_not_poison() {
        let device = into_raw(Device::generate(&mut OsRng));
        let unwound = std::panic::catch_unwind(|| {
            // SAFETY: (test) `device` is a live handle made just above.
            unsafe { with_ref::<Device, ()>(device, "device", |_| panic!("inside")) }
        });
        assert!(unwound.is_err());
        // SAFETY: (test) as above.
        let ok = unsafe { with_ref::<Device, _>(device, "device", |_| Ok(())) };
        assert_eq!(code(ok), SottoError::Ok);
        // SAFETY: (test) freed once, not used after.
        let freed = unsafe { free::<Device>(device, "device") };
        assert_eq!(code(freed), SottoError::Ok);
    }
}
