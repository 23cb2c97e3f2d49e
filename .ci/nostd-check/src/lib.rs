//! A `#![no_std]` static library that calls sotto. If sotto or any of its
//! dependencies linked `std`, this crate would fail to build with a duplicate
//! `panic_impl` lang item.
#![no_std]

extern crate alloc;

use core::alloc::{GlobalAlloc, Layout};
use core::convert::Infallible;

use rand_core::{TryCryptoRng, TryRng};

/// An allocator that never allocates: this crate is only linked, never run.
struct NoAlloc;

// SAFETY: returning null is a valid "allocation failed" answer; dealloc is
// never reached because nothing is ever allocated.
unsafe impl GlobalAlloc for NoAlloc {
    unsafe fn alloc(&self, _layout: Layout) -> *mut u8 {
        core::ptr::null_mut()
    }
    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}
}

#[global_allocator]
static ALLOCATOR: NoAlloc = NoAlloc;

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}

/// A deterministic stand-in RNG; the check only needs the code to link.
struct CountingRng(u8);

impl TryRng for CountingRng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        self.0 = self.0.wrapping_add(1);
        Ok(u32::from(self.0))
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        self.0 = self.0.wrapping_add(1);
        Ok(u64::from(self.0))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for b in dst {
            self.0 = self.0.wrapping_add(1);
            *b = self.0;
        }
        Ok(())
    }
}

impl TryCryptoRng for CountingRng {}

/// Runs a whole handshake and one message each way, so every code path of
/// the core is linked into the library.
#[unsafe(no_mangle)]
pub extern "C" fn sotto_nostd_check() -> i32 {
    let mut rng = CountingRng(0);
    let alice = sotto::Device::generate(&mut rng);
    let bob = sotto::Device::generate(&mut rng);
    let bundle = sotto::PreKeyBundle::new(*bob.identity_key(), bob.signed_prekey(), None);
    let Ok(verified) = bundle.verify() else { return 1 };
    let Ok(mut session) = sotto::Session::initiate(&alice, &mut rng, &verified) else { return 2 };
    let Ok(message) = session.encrypt(&mut rng, b"no_std") else { return 3 };
    let Ok(parsed) = sotto::Message::from_bytes(message.as_bytes()) else { return 4 };
    let mut bob = bob;
    let sotto::Message::PreKey(first) = parsed else { return 5 };
    match sotto::Session::accept(&mut bob, &first) {
        Ok((restored, _)) => i32::from(sotto::Session::from_bytes(&restored.to_bytes()).is_err()),
        Err(_) => 6,
    }
}
