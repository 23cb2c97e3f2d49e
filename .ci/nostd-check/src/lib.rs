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

/// Runs a whole PQXDH handshake and one message each way, seals and opens
/// both states, so every code path of the core is linked into the library.
#[unsafe(no_mangle)]
pub extern "C" fn sotto_nostd_check() -> i32 {
    let mut rng = CountingRng(0);
    let Ok(alice) = sotto::Device::generate(&mut rng, 0) else { return 1 };
    let Ok(mut bob) = sotto::Device::generate(&mut rng, 0) else { return 1 };
    let Ok(kem) = bob.generate_one_time_kem_prekeys(&mut rng, 1) else { return 1 };
    let bundle = sotto::PreKeyBundle::new(
        *bob.identity_key(),
        bob.signed_prekey(),
        None,
        kem.into_iter().next(),
    );
    let Ok(verified) = bundle.verify() else { return 1 };
    let Ok(mut session) = sotto::Session::initiate(&alice, &mut rng, &verified) else { return 2 };
    let Ok(message) = session.encrypt(&mut rng, b"no_std") else { return 3 };
    let Ok(parsed) = sotto::Message::from_bytes(message.as_bytes()) else { return 4 };
    let sotto::Message::PreKey(first) = parsed else { return 5 };
    let Ok((mut reply_session, _)) = sotto::Session::accept(&mut bob, &first) else { return 6 };
    let Ok(reply) = reply_session.encrypt(&mut rng, b"reply") else { return 7 };
    if session.decrypt(&reply).is_err() {
        return 8;
    }
    let key = sotto::StorageKey::from_bytes([7; 32]);
    let Ok(sealed) = reply_session.seal(&key, b"session", &mut rng) else { return 9 };
    let Ok(device) = bob.seal(&key, b"device", &mut rng) else { return 9 };
    let restored = sotto::Session::unseal(&sealed, &key, b"session").is_ok()
        && sotto::Device::unseal(&device, &key, b"device").is_ok();
    i32::from(!restored)
}
