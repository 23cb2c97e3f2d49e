//! The layer's per-message path does no work beyond one session call and the
//! framing (SPEC §16.3, §16.5): encrypting to one device and decrypting on
//! the active session allocate exactly what the bare `Session` calls do
//! (their output), so no state is serialised and no plaintext copied.
//! Counted with a global allocator that tallies allocations per thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sotto::sessions::{Content, DeviceId, PeerRecord, UserId};
use sotto::{Device, Message, PreKeyBundle, Session};

struct Counting;

thread_local! {
    // Const-initialised and without a destructor, so using it inside the
    // allocator cannot allocate or recurse.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees carry over; counting touches only a
// thread-local integer.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: `ptr` and `layout` come from this allocator, i.e. `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` and `layout` come from this allocator, i.e. `System`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn allocations<T>(f: impl FnOnce() -> T) -> (usize, T) {
    let before = ALLOCATIONS.with(Cell::get);
    let out = f();
    (ALLOCATIONS.with(Cell::get) - before, out)
}

const NOW: u64 = 1_700_000_000;

/// Alice's record of Bob and Bob's of Alice, one device each, with a session
/// both have answered; and a bare session pair in the same position.
fn setup() -> (
    ChaCha20Rng,
    Device,
    Device,
    PeerRecord,
    PeerRecord,
    Session,
    Session,
) {
    let mut rng = ChaCha20Rng::from_seed([8; 32]);
    let alice = Device::generate(&mut rng, NOW).unwrap();
    let mut bob = Device::generate(&mut rng, NOW).unwrap();
    let mut at_alice = PeerRecord::new(UserId::new(b"bob").unwrap(), *alice.identity_key());
    at_alice
        .update_devices(&[(DeviceId(1), *bob.identity_key())], NOW)
        .unwrap();
    let mut at_bob = PeerRecord::new(UserId::new(b"alice").unwrap(), *bob.identity_key());
    at_bob
        .update_devices(&[(DeviceId(1), *alice.identity_key())], NOW)
        .unwrap();
    let bundle = |bob: &Device| {
        PreKeyBundle::new(
            *bob.identity_key(),
            bob.signed_prekey(),
            None,
            Some(bob.last_resort_kem_prekey()),
        )
    };
    at_alice
        .add_bundle(&alice, DeviceId(1), bundle(&bob), NOW, &mut rng)
        .unwrap();
    let m = at_alice.encrypt_to(DeviceId(1), b"hi", &mut rng).unwrap();
    let mut alice_dev = alice;
    at_bob.decrypt(&mut bob, DeviceId(1), &m, NOW).unwrap();
    let r = at_bob.encrypt_to(DeviceId(1), b"hi", &mut rng).unwrap();
    at_alice
        .decrypt(&mut alice_dev, DeviceId(1), &r, NOW)
        .unwrap();

    let verified = bundle(&bob).verify().unwrap();
    let mut to_bob = Session::initiate(&alice_dev, &mut rng, &verified).unwrap();
    let Message::PreKey(first) = to_bob.encrypt(&mut rng, b"hi").unwrap() else {
        panic!()
    };
    let (mut to_alice, _) = Session::accept(&mut bob, &first).unwrap();
    let reply = to_alice.encrypt(&mut rng, b"hi").unwrap();
    to_bob.decrypt(&reply).unwrap();
    (rng, alice_dev, bob, at_alice, at_bob, to_bob, to_alice)
}

#[test]
fn encrypt_to_one_device_allocates_what_the_bare_encrypt_does() {
    let (mut rng, _, _, mut at_alice, _, mut to_bob, _) = setup();
    for len in [0usize, 100, 60_000] {
        let payload = vec![5u8; len];
        let framed = vec![5u8; len + 1];
        // Twice each: the first may start a sending chain, the second not.
        for _ in 0..2 {
            let (bare, _) = allocations(|| to_bob.encrypt(&mut rng, &framed).unwrap());
            let (layer, _) = allocations(|| {
                at_alice
                    .encrypt_to(DeviceId(1), &payload, &mut rng)
                    .unwrap()
            });
            assert_eq!(layer, bare, "payload of {len} bytes");
        }
    }
}

#[test]
fn decrypt_on_the_active_session_allocates_what_the_bare_decrypt_does() {
    let (mut rng, mut alice_dev, mut bob, mut at_alice, mut at_bob, mut to_bob, mut to_alice) =
        setup();
    for len in [0usize, 100, 60_000] {
        let payload = vec![6u8; len];
        // The bare plaintext as long as the layer's (payload and frame byte).
        let framed = vec![6u8; len + 1];
        // In order on the current chain, then a new chain (a reply first).
        for _ in 0..2 {
            let bare_message = to_alice.encrypt(&mut rng, &framed).unwrap();
            let layer_message = at_bob.encrypt_to(DeviceId(1), &payload, &mut rng).unwrap();
            let (bare, _) = allocations(|| to_bob.decrypt(&bare_message).unwrap());
            let (layer, got) = allocations(|| {
                at_alice
                    .decrypt(&mut alice_dev, DeviceId(1), &layer_message, NOW)
                    .unwrap()
            });
            assert_eq!(layer, bare, "payload of {len} bytes");
            let Content::Payload(p) = got.content() else {
                panic!()
            };
            assert_eq!(p.len(), len);
        }
        let m = at_alice.encrypt_to(DeviceId(1), b"turn", &mut rng).unwrap();
        at_bob.decrypt(&mut bob, DeviceId(1), &m, NOW).unwrap();
        let m = to_bob.encrypt(&mut rng, b"turn").unwrap();
        to_alice.decrypt(&m).unwrap();
    }
}
