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

/// The session layer (SPEC §16) without std: two records, a first message
/// each way, the saved form, a safety number and a group.
#[unsafe(no_mangle)]
pub extern "C" fn sotto_nostd_check_sessions() -> i32 {
    use sotto::sessions::{DeviceId, GroupSession, PeerRecord, UserId};
    let mut rng = CountingRng(0);
    let Ok(mut alice) = sotto::Device::generate(&mut rng, 0) else { return 1 };
    let Ok(mut bob) = sotto::Device::generate(&mut rng, 0) else { return 1 };
    let (Ok(alice_id), Ok(bob_id)) = (UserId::new(b"alice"), UserId::new(b"bob")) else { return 1 };
    let mut at_alice = PeerRecord::new(bob_id.clone(), *alice.identity_key());
    let mut at_bob = PeerRecord::new(alice_id.clone(), *bob.identity_key());
    let mut own = PeerRecord::new_own(alice_id.clone(), DeviceId(1), *alice.identity_key());
    if at_alice.update_devices(&[(DeviceId(1), *bob.identity_key())], 0).is_err()
        || at_bob.update_devices(&[(DeviceId(1), *alice.identity_key())], 0).is_err()
        || own.update_devices(&[(DeviceId(1), *alice.identity_key())], 0).is_err()
    {
        return 2;
    }
    let bundle = sotto::PreKeyBundle::new(
        *bob.identity_key(),
        bob.signed_prekey(),
        None,
        Some(bob.last_resort_kem_prekey()),
    );
    if at_alice.add_bundle(&alice, DeviceId(1), bundle, 0, &mut rng).is_err() {
        return 3;
    }
    let Ok(sent) = at_alice.encrypt(b"no_std", &mut rng) else { return 4 };
    let Some(first) = sent.messages.first() else { return 4 };
    if at_bob.decrypt(&mut bob, DeviceId(1), &first.message, 0).is_err() {
        return 5;
    }
    let Ok(reply) = at_bob.encrypt_to(DeviceId(1), b"reply", &mut rng) else { return 6 };
    if at_alice.decrypt(&mut alice, DeviceId(1), &reply, 0).is_err() {
        return 7;
    }
    if PeerRecord::from_bytes(&at_alice.to_bytes()).is_err() || at_alice.safety_number(&own).is_err() {
        return 8;
    }
    let group_id = sotto::group::GroupId::from_bytes([1; 32]);
    let Ok(mut group) = GroupSession::new(&mut rng, group_id, alice_id, &alice) else { return 9 };
    if group.add_member(bob_id).is_err() || group.encrypt(b"group", &mut rng).is_err() {
        return 9;
    }
    let mut records = [&mut at_alice, &mut own];
    i32::from(group.distribute(&mut records, &mut rng).is_err())
}
