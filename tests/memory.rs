//! Memory under attack: the largest a session, a group receiver and a full
//! group store get under the worst inputs the bounds allow, from
//! adversarial but authentic peers (holding the keys, sending the messages
//! that skip the most keys). Heap use is measured with a counting
//! allocator; figures go to spec-parts/memory.md and
//! spec-parts/memory-group.md (run with `--nocapture` to print them). The
//! tests take a lock so that their measurements do not overlap.
#![allow(
    unsafe_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use sotto::group::{
    GROUP_SKIP_WINDOW, GroupId, GroupMessage, GroupReceiver, GroupReceivers, GroupSender,
    MAX_CHAINS_PER_SENDER, MAX_GROUP_JUMP, MAX_GROUP_RECEIVERS, MAX_GROUP_SKIPPED_KEYS,
};
use sotto::{
    Device, Error, MAX_PLAINTEXT_LEN, MAX_RECEIVING_CHAINS, MAX_SKIP, MAX_SKIPPED_KEYS, Message,
    PreKeyBundle, Session,
};
use testkit::layout;
use testkit::model::group::ratchet::split_levels;
use testkit::model::group::{GReceiver, Window};

static SERIAL: Mutex<()> = Mutex::new(());

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
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
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
        Err(Error::TooFarAhead { .. })
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

const GROUP: GroupId = GroupId::from_bytes([0x3e; 32]);

/// Heap allocated (net) while `f` runs, and the result.
fn heap_of<T>(f: impl FnOnce() -> T) -> (usize, T) {
    let before = CURRENT.load(Ordering::SeqCst);
    let out = f();
    (CURRENT.load(Ordering::SeqCst) - before, out)
}

/// Peak extra heap while `f` runs, and the result.
fn peak_of<T>(f: impl FnOnce() -> T) -> (usize, T) {
    let before = CURRENT.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    let out = f();
    (PEAK.load(Ordering::SeqCst) - before, out)
}

/// A receiver state (SPEC §15.11) with an authenticated sender and a full
/// cache, built directly: what a store holds at worst.
fn worst_receiver_state(
    chain_id: u32,
    signing_key: [u8; 32],
    identity: &[u8],
    rng: &mut ChaCha20Rng,
) -> Vec<u8> {
    let next = 1_000_000u32;
    let mut levels = [0u8; 256];
    rng.fill_bytes(&mut levels);
    let mut window = Window::at(next);
    for i in 0..MAX_GROUP_SKIPPED_KEYS {
        let index = next - 1 - u32::try_from(MAX_GROUP_SKIPPED_KEYS - i).unwrap();
        let mut key = [0u8; 32];
        rng.fill_bytes(&mut key);
        window.cache.insert(index, key);
    }
    GReceiver {
        group: *GROUP.as_bytes(),
        chain_id,
        signing: signing_key,
        identity: Some(identity.try_into().unwrap()),
        levels: split_levels(&levels),
        window,
    }
    .encode()
}

#[test]
fn group_receiver_and_store_growth_is_bounded_under_the_worst_authentic_senders() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = ChaCha20Rng::seed_from_u64(0x3e4);
    let alice_device = Device::generate(&mut rng);
    let mut bob_device = Device::generate(&mut rng);
    let bundle = PreKeyBundle::new(*bob_device.identity_key(), bob_device.signed_prekey(), None);
    let mut to_bob = Session::initiate(&alice_device, &mut rng, &bundle.verify().unwrap()).unwrap();
    let mut alice = GroupSender::new(&mut rng, GROUP);
    let Message::PreKey(first) = send(&mut to_bob, &mut rng, &alice.distribution().to_bytes())
    else {
        panic!("prekey message expected");
    };
    let (from_alice, distribution) = Session::accept(&mut bob_device, &first).unwrap();
    let mut bob = GroupReceiver::accept(&distribution, &from_alice).unwrap();

    // The worst authentic sender: every message Bob gets skips one more
    // index than the window, so each caches GROUP_SKIP_WINDOW keys, until
    // the cache is full and evicting. The last message is the largest.
    let (mut peak_small, mut peak_decrypt) = (0, 0);
    let mut largest_state = 0;
    let rounds = MAX_GROUP_SKIPPED_KEYS / GROUP_SKIP_WINDOW as usize + 3;
    for round in 0..rounds {
        let mut last = None;
        for _ in 0..=GROUP_SKIP_WINDOW {
            let text = if round == rounds - 1 {
                vec![0u8; MAX_PLAINTEXT_LEN]
            } else {
                b"x".to_vec()
            };
            last = Some(alice.encrypt(&mut rng, &text).unwrap());
        }
        let message = last.unwrap();
        let (peak, read) = peak_of(|| bob.decrypt(&message).unwrap());
        drop(read);
        if round == rounds - 1 {
            peak_decrypt = peak;
        } else {
            peak_small = peak_small.max(peak);
        }
        assert!(bob.skipped_key_count() <= MAX_GROUP_SKIPPED_KEYS);
        largest_state = largest_state.max(bob.to_bytes().len());
    }
    assert_eq!(bob.skipped_key_count(), MAX_GROUP_SKIPPED_KEYS);
    assert_eq!(largest_state, GroupReceiver::MAX_ENCODED_LEN);

    // A jump past MAX_GROUP_JUMP, signed by the real key, is refused
    // without any change (the sender is placed there by hand).
    let mut far_state = alice.to_bytes().to_vec();
    let far = bob.next_index() + MAX_GROUP_JUMP + 1;
    layout::sender_state(&alice.to_bytes()).put_u32(&mut far_state, "index", far);
    let mut far_sender = GroupSender::from_bytes(&far_state).unwrap();
    let too_far = far_sender.encrypt(&mut rng, b"too far").unwrap();
    let state = bob.to_bytes();
    assert_eq!(
        bob.decrypt(&too_far),
        Err(Error::GroupIndexOutOfRange { index: far })
    );
    assert_eq!(*bob.to_bytes(), *state);

    // The resting heap of the worst receiver, restored on its own.
    let (receiver_heap, worst) = heap_of(|| GroupReceiver::from_bytes(&state).unwrap());
    assert_eq!(worst.skipped_key_count(), MAX_GROUP_SKIPPED_KEYS);
    drop(worst);
    let sealed_len = bob
        .seal(&sotto::StorageKey::from_bytes([1; 32]), &mut rng)
        .unwrap()
        .len();
    let largest_message = GroupMessage::from_bytes(
        alice
            .encrypt(&mut rng, &vec![0u8; MAX_PLAINTEXT_LEN])
            .unwrap()
            .as_bytes(),
    )
    .unwrap()
    .as_bytes()
    .len();
    assert_eq!(largest_message, sotto::group::MAX_GROUP_MESSAGE_LEN);

    // A full store: MAX_GROUP_RECEIVERS chains, each with a full cache and an
    // authenticated sender (MAX_CHAINS_PER_SENDER chains per identity, so
    // MAX_GROUP_RECEIVERS / MAX_CHAINS_PER_SENDER members).
    let members: Vec<Vec<u8>> = (0..MAX_GROUP_RECEIVERS / MAX_CHAINS_PER_SENDER + 1)
        .map(|_| {
            let id = Device::generate(&mut rng).identity_key().to_bytes();
            layout::identity_key(&id).slice(&id, "identity").to_vec()
        })
        .collect();
    let states: Vec<Vec<u8>> = (0..MAX_GROUP_RECEIVERS + MAX_CHAINS_PER_SENDER)
        .map(|i| {
            let signing = GroupSender::new(&mut rng, GROUP).signing_key_bytes();
            let chain_id = u32::try_from(i).unwrap();
            worst_receiver_state(
                chain_id,
                signing,
                &members[i / MAX_CHAINS_PER_SENDER],
                &mut rng,
            )
        })
        .collect();
    let (store_heap, mut store) = heap_of(|| {
        let mut store = GroupReceivers::new(GROUP);
        for state in &states[..MAX_GROUP_RECEIVERS] {
            store
                .insert(GroupReceiver::from_bytes(state).unwrap())
                .unwrap();
        }
        store
    });
    assert_eq!(store.len(), MAX_GROUP_RECEIVERS);
    let encoded: usize = store.iter().map(|r| r.to_bytes().len()).sum();
    assert_eq!(
        encoded,
        MAX_GROUP_RECEIVERS * GroupReceiver::MAX_ENCODED_LEN
    );
    // One more member's chains: the oldest go, the heap does not grow.
    let (growth, ()) = heap_of(|| {
        for state in &states[MAX_GROUP_RECEIVERS..] {
            store
                .insert(GroupReceiver::from_bytes(state).unwrap())
                .unwrap();
        }
    });
    assert_eq!(store.len(), MAX_GROUP_RECEIVERS);
    assert!(store.get(0).is_none() && store.get(1024).is_some());
    println!(
        "worst group receiver: state {largest_state} bytes, sealed {sealed_len} bytes, heap \
         {receiver_heap} bytes, peak extra heap in one decrypt {peak_small} bytes (1-byte \
         message), {peak_decrypt} bytes (largest message, {largest_message} bytes); full store: {} receivers, {encoded} \
         encoded bytes, heap {store_heap} bytes, growth after {} more inserts {growth} bytes",
        store.len(),
        MAX_CHAINS_PER_SENDER
    );
    drop(store);
    // Bounds stated in spec-parts/memory-group.md.
    assert!(receiver_heap < 16 * 1024, "resting heap {receiver_heap}");
    assert!(peak_small < 8 * 1024, "decrypt peak {peak_small}");
    assert!(peak_decrypt < 640 * 1024, "decrypt peak {peak_decrypt}");
    assert!(store_heap < 16 * 1024 * 1024, "store heap {store_heap}");
    assert!(growth < 64, "store grew by {growth}");
}
