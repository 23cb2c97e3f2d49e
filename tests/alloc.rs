//! The per-message path allocates nothing but its output buffer: counted
//! with a global allocator that tallies allocations per thread (tests run
//! on parallel threads).
// A global allocator needs `unsafe impl GlobalAlloc`; it only forwards to `System`.
#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sotto::{Device, Message, Session};
use testkit::fixtures::{Kem, NOW, bundle_with};

struct Counting;

thread_local! {
    // Const-initialised and without a destructor, so using it inside the
    // allocator cannot allocate or recurse.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    ALLOCATIONS.with(|n| n.set(n.get() + 1));
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees carry over; counting touches only a
// thread-local integer.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
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

/// How many allocations (including reallocations) `f` makes on this thread.
fn allocations<T>(f: impl FnOnce() -> T) -> (usize, T) {
    let before = ALLOCATIONS.with(Cell::get);
    let out = f();
    (ALLOCATIONS.with(Cell::get) - before, out)
}

fn send(rng: &mut ChaCha20Rng, from: &mut Session, to: &mut Session) {
    let message = from.encrypt(rng, b"warm-up").unwrap();
    assert_eq!(to.decrypt(&message).unwrap().as_bytes(), b"warm-up");
}

/// Two sessions whose sending and receiving chains are established in both
/// directions.
fn established() -> (ChaCha20Rng, Session, Session) {
    let mut rng = ChaCha20Rng::from_seed([9; 32]);
    let alice = Device::generate(&mut rng, NOW).unwrap();
    let mut bob = Device::generate(&mut rng, NOW).unwrap();
    let bundle = bundle_with(&mut rng, &mut bob, true, Kem::LastResort);
    let mut a = Session::initiate(&alice, &mut rng, &bundle.verify().unwrap()).unwrap();
    let Message::PreKey(first) = a.encrypt(&mut rng, b"hello").unwrap() else {
        panic!("expected a prekey message");
    };
    let (mut b, _) = Session::accept(&mut bob, &first).unwrap();
    for _ in 0..2 {
        send(&mut rng, &mut b, &mut a);
        send(&mut rng, &mut a, &mut b);
    }
    (rng, a, b)
}

#[test]
fn the_counter_sees_allocations() {
    let (n, v) = allocations(|| Vec::<u8>::with_capacity(100));
    assert_eq!(n, 1);
    assert_eq!(v.capacity(), 100);
    let (n, ()) = allocations(|| ());
    assert_eq!(n, 0);
}

#[test]
fn encrypt_on_an_established_chain_allocates_only_the_message() {
    let (mut rng, mut alice, mut bob) = established();
    for len in [0, 100, 64 * 1024] {
        let plaintext = vec![0x61; len];
        let (n, message) = allocations(|| alice.encrypt(&mut rng, &plaintext).unwrap());
        assert_eq!(n, 1, "encrypt of {len} bytes");
        assert!(message.as_bytes().len() > len);
        assert_eq!(bob.decrypt(&message).unwrap().as_bytes(), plaintext);
    }
}

#[test]
fn in_order_decrypt_allocates_only_the_plaintext() {
    let (mut rng, mut alice, mut bob) = established();
    // An empty plaintext is an empty Vec, which allocates nothing at all.
    for len in [1, 100, 64 * 1024] {
        let plaintext = vec![0x62; len];
        let message =
            Message::from_bytes(alice.encrypt(&mut rng, &plaintext).unwrap().as_bytes()).unwrap();
        let (n, decrypted) = allocations(|| bob.decrypt(&message).unwrap());
        assert_eq!(n, 1, "decrypt of {len} bytes");
        assert_eq!(*decrypted, *plaintext);
    }
}

#[test]
fn decrypt_from_the_skipped_store_allocates_only_the_plaintext() {
    let (mut rng, mut alice, mut bob) = established();
    let early = alice.encrypt(&mut rng, b"early").unwrap();
    let late = alice.encrypt(&mut rng, b"late").unwrap();
    assert_eq!(bob.decrypt(&late).unwrap().as_bytes(), b"late");
    assert_eq!(bob.skipped_key_count(), 1);
    let (n, decrypted) = allocations(|| bob.decrypt(&early).unwrap());
    assert_eq!(n, 1);
    assert_eq!(decrypted.as_bytes(), b"early");
    assert_eq!(bob.skipped_key_count(), 0);
}
