//! Memory under attack: the largest a session gets under the worst inputs
//! the bounds allow, from an adversarial but authentic peer (one holding
//! the session keys, who sends the message that skips the most keys on
//! every chain). Heap use is measured with a counting allocator; figures go
//! to spec-parts/memory.md (run with `--nocapture` to print them).
#![allow(
    unsafe_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sotto::{
    Device, MAX_RECEIVING_CHAINS, MAX_SKIP, MAX_SKIPPED_KEYS, Message, PreKeyBundle, Session,
};

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

struct Counting;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
        PEAK.fetch_max(now, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Plain state of a session that has sent and received, holding the most
/// chains and skipped keys: header and fixed fields, the sending chain, then
/// per chain key, flag, next and count, the current chain key, and the keys.
const WORST_STATE_LEN: usize = (2 + 1 + 64 + 64 + 32 + 1 + 32 + 32 + 1 + 68 + 4 + 1)
    + MAX_RECEIVING_CHAINS * (32 + 1 + 4 + 2)
    + 32
    + MAX_SKIPPED_KEYS * (4 + 32);

fn send(session: &mut Session, rng: &mut ChaCha20Rng, text: &[u8]) -> Message {
    session.encrypt(rng, text).unwrap()
}

#[test]
fn session_growth_is_bounded_under_the_worst_authentic_peer() {
    let mut rng = ChaCha20Rng::seed_from_u64(0x3e3);
    let alice_device = Device::generate(&mut rng);
    let mut bob_device = Device::generate(&mut rng);
    let bundle = PreKeyBundle::new(*bob_device.identity_key(), bob_device.signed_prekey(), None);
    let mut alice = Session::initiate(&alice_device, &mut rng, &bundle.verify().unwrap()).unwrap();
    let Message::PreKey(first) = send(&mut alice, &mut rng, b"hi") else {
        panic!("prekey message expected");
    };
    let (mut bob, _) = Session::accept(&mut bob_device, &first).unwrap();
    let reply = send(&mut bob, &mut rng, b"reply");
    alice.decrypt(&reply).unwrap();

    let mut largest_state = 0;
    let mut peak_decrypt = 0;
    // More rounds than chains, so eviction runs at the bound.
    for round in 0..MAX_RECEIVING_CHAINS + 3 {
        // Alice's chain: MAX_SKIP + 1 messages; only the last one arrives, so
        // Bob derives and stores MAX_SKIP keys for it.
        let mut last = None;
        for _ in 0..=MAX_SKIP {
            last = Some(send(&mut alice, &mut rng, b"x"));
        }
        let before = CURRENT.load(Ordering::SeqCst);
        PEAK.store(before, Ordering::SeqCst);
        bob.decrypt(last.as_ref().unwrap()).unwrap();
        peak_decrypt = peak_decrypt.max(PEAK.load(Ordering::SeqCst) - before);
        let state = bob.to_bytes();
        assert!(bob.skipped_key_count() <= MAX_SKIPPED_KEYS);
        assert!(bob.receiving_chain_count() <= MAX_RECEIVING_CHAINS);
        largest_state = largest_state.max(state.len());
        println!(
            "round {round}: {} chains, {} skipped keys, state {} bytes",
            bob.receiving_chain_count(),
            bob.skipped_key_count(),
            state.len()
        );
        // Turn the ratchet so Alice's next chain is new.
        let r = send(&mut bob, &mut rng, b"r");
        alice.decrypt(&r).unwrap();
        // Now with a sending chain too: the largest state.
        largest_state = largest_state.max(bob.to_bytes().len());
    }
    assert_eq!(bob.skipped_key_count(), MAX_SKIPPED_KEYS);
    assert_eq!(bob.receiving_chain_count(), MAX_RECEIVING_CHAINS);
    assert_eq!(largest_state, WORST_STATE_LEN);

    // One past the bound is refused without any change.
    let mut last = None;
    for _ in 0..=MAX_SKIP + 1 {
        last = Some(send(&mut alice, &mut rng, b"y"));
    }
    let state = bob.to_bytes();
    assert!(matches!(
        bob.decrypt(last.as_ref().unwrap()),
        Err(sotto::Error::TooFarAhead { .. })
    ));
    assert_eq!(*bob.to_bytes(), *state);

    // The resting heap of the worst session, restored on its own.
    let state = bob.to_bytes();
    let before = CURRENT.load(Ordering::SeqCst);
    let worst = Session::from_bytes(&state).unwrap();
    let heap = CURRENT.load(Ordering::SeqCst) - before;
    assert_eq!(worst.skipped_key_count(), MAX_SKIPPED_KEYS);
    drop(worst);
    let sealed_len = bob
        .seal(&sotto::StorageKey::from_bytes([1; 32]), &mut rng)
        .unwrap()
        .len();
    println!(
        "worst session: state {} bytes, sealed {sealed_len} bytes, heap {heap} bytes, \
         peak extra heap in one decrypt {peak_decrypt} bytes",
        state.len()
    );
    // Bounds stated in spec-parts/memory.md.
    assert!(heap < 192 * 1024, "resting heap {heap}");
    assert!(peak_decrypt < 96 * 1024, "decrypt peak {peak_decrypt}");
    assert!(sotto::MAX_STATE_LEN > sealed_len);
}
