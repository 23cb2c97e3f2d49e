//! Memory under attack: the largest a session, a group receiver and a full
//! group store get under the worst inputs the bounds allow, from
//! adversarial but authentic peers (holding the keys, sending the messages
//! that skip the most keys). Heap use is measured with a counting
//! allocator; the figures are in SPEC.md §14.1 (run with `--nocapture` to
//! print them). The tests take a lock so that their measurements do not
//! overlap.
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
    Device, Error, MAX_BASE_KEYS_PER_SIGNED_PREKEY, MAX_LAST_RESORT_KEM_PREKEYS,
    MAX_ONE_TIME_KEM_PREKEYS, MAX_ONE_TIME_PREKEYS, MAX_PLAINTEXT_LEN, MAX_RECEIVING_CHAINS,
    MAX_SIGNED_PREKEYS, MAX_SKIP, MAX_SKIPPED_KEYS, Message, Session, StorageKey,
};
use testkit::fixtures::{Kem, NOW, bundle_with};
use testkit::layout;

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

/// Plain state (SPEC §10.2) of a responder session that has sent and
/// received, holding the most chains and skipped keys: header, generation,
/// role, key agreement, two identities, KEM binding, base key, no pending
/// prekey, root key, remote ratchet key, the sending chain, PN, the chain
/// count; per chain its key, flag, next and count; the current chain key;
/// and the keys.
const WORST_STATE_LEN: usize = (2 + 8 + 1 + 1 + 4 * 32 + 1 + 32 + 32 + (1 + 32 + 32 + 4) + 4 + 1)
    + MAX_RECEIVING_CHAINS * (32 + 1 + 4 + 2)
    + 32
    + MAX_SKIPPED_KEYS * (4 + 32);

/// The sealed form adds its header, salt, the tag (SPEC §10.5).
const SEAL_OVERHEAD: usize = 2 + 1 + 32 + 16;

fn send(session: &mut Session, rng: &mut ChaCha20Rng, text: &[u8]) -> Message {
    session.encrypt(rng, text).unwrap()
}

#[test]
fn session_growth_is_bounded_under_the_worst_authentic_peer() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = ChaCha20Rng::seed_from_u64(0x3e3);
    let alice_device = Device::generate(&mut rng, NOW).unwrap();
    let mut bob_device = Device::generate(&mut rng, NOW).unwrap();
    let bundle = bundle_with(&mut rng, &mut bob_device, true, Kem::OneTime);
    let mut alice = Session::initiate(&alice_device, &mut rng, &bundle.verify().unwrap()).unwrap();
    // The largest initiator state: a pending prekey with its KEM
    // ciphertext and a sending chain, before any reply.
    let pending_len = alice.to_bytes().len();
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
        .seal(&StorageKey::from_bytes([1; 32]), b"", &mut rng)
        .unwrap()
        .len();
    assert_eq!(sealed_len, state.len() + SEAL_OVERHEAD);
    println!(
        "worst session: state {} bytes, sealed {sealed_len} bytes (empty context), heap {heap} \
         bytes, peak extra heap in one decrypt {peak_decrypt} bytes; initiator with its pending \
         PQXDH prekey {pending_len} bytes",
        state.len()
    );
    // Bounds stated in SPEC §14.1.
    assert!(pending_len < WORST_STATE_LEN);
    assert!(heap < 192 * 1024, "resting heap {heap}");
    assert!(peak_decrypt < 96 * 1024, "decrypt peak {peak_decrypt}");
    assert!(sotto::MAX_STATE_LEN > sealed_len);
}

const GROUP: GroupId = GroupId::from_bytes([0x3e; 32]);

/// Heap allocated (net) while `f` runs, and the result.
fn heap_of<T>(f: impl FnOnce() -> T) -> (usize, T) {
    let before = CURRENT.load(Ordering::SeqCst);
    let out = f();
    // Net growth; a call that frees more than it keeps counts as 0.
    (CURRENT.load(Ordering::SeqCst).saturating_sub(before), out)
}

/// Peak extra heap while `f` runs, and the result.
fn peak_of<T>(f: impl FnOnce() -> T) -> (usize, T) {
    let before = CURRENT.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    let out = f();
    (PEAK.load(Ordering::SeqCst) - before, out)
}

/// A random valid Ed25519 public key (a chain or an owner).
fn ed25519_key(rng: &mut ChaCha20Rng) -> [u8; 32] {
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes()
}

/// A receiver state (SPEC §15.11) with an authenticated owner and a full
/// cache, built byte by byte: what a store holds at worst.
fn worst_receiver_state(chain: &[u8; 32], owner: &[u8; 32], rng: &mut ChaCha20Rng) -> Vec<u8> {
    let next = 1_000_000u32;
    let mut state = vec![0x02, 0x23];
    state.extend_from_slice(&0u64.to_be_bytes());
    state.extend_from_slice(GROUP.as_bytes());
    state.extend_from_slice(chain);
    state.extend_from_slice(owner);
    state.push(1);
    state.extend_from_slice(&next.to_be_bytes());
    // Read: every index below next (SPEC §15.11).
    state.extend_from_slice(&next.to_be_bytes());
    let mut levels = [0u8; 256];
    rng.fill_bytes(&mut levels);
    state.extend_from_slice(&levels);
    state.extend_from_slice(&u16::try_from(MAX_GROUP_SKIPPED_KEYS).unwrap().to_be_bytes());
    for i in 0..MAX_GROUP_SKIPPED_KEYS {
        let index = next - u32::try_from(MAX_GROUP_SKIPPED_KEYS - i).unwrap();
        state.extend_from_slice(&index.to_be_bytes());
        let mut key = [0u8; 32];
        rng.fill_bytes(&mut key);
        state.extend_from_slice(&key);
    }
    assert_eq!(state.len(), GroupReceiver::MAX_ENCODED_LEN);
    state
}

#[test]
fn group_receiver_and_store_growth_is_bounded_under_the_worst_authentic_senders() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = ChaCha20Rng::seed_from_u64(0x3e4);
    let alice_device = Device::generate(&mut rng, NOW).unwrap();
    let mut bob_device = Device::generate(&mut rng, NOW).unwrap();
    let bundle = bundle_with(&mut rng, &mut bob_device, false, Kem::LastResort);
    let mut to_bob = Session::initiate(&alice_device, &mut rng, &bundle.verify().unwrap()).unwrap();
    let mut alice = GroupSender::new(&mut rng, GROUP, &alice_device).unwrap();
    let Message::PreKey(first) = send(&mut to_bob, &mut rng, &alice.distribution().to_bytes())
    else {
        panic!("prekey message expected");
    };
    // A distribution in the first (prekey) message, installed from the
    // plaintext `accept` returns.
    let (mut from_alice, distribution) = Session::accept(&mut bob_device, &first).unwrap();
    let mut bob = GroupReceiver::install(&GROUP, &distribution).unwrap();

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
    // without any change (the sender's index is set in its saved state,
    // SPEC §15.11).
    let mut far_state = alice.to_bytes().to_vec();
    let far = bob.next_index() + MAX_GROUP_JUMP + 1;
    layout::sender_state(&far_state).put_u32(&mut far_state, "index", far);
    let mut far_sender = GroupSender::from_bytes(&far_state).unwrap();
    let too_far = far_sender.encrypt(&mut rng, b"too far").unwrap();
    let state = bob.to_bytes();
    assert_eq!(
        bob.decrypt(&too_far).err(),
        Some(Error::GroupIndexOutOfRange { index: far })
    );
    assert_eq!(*bob.to_bytes(), *state);

    // The resting heap of the worst receiver, restored on its own.
    let (receiver_heap, worst) = heap_of(|| GroupReceiver::from_bytes(&state).unwrap());
    assert_eq!(worst.skipped_key_count(), MAX_GROUP_SKIPPED_KEYS);
    drop(worst);
    let sealed_len = bob
        .seal(&StorageKey::from_bytes([1; 32]), b"", &mut rng)
        .unwrap()
        .len();
    assert_eq!(sealed_len, state.len() + SEAL_OVERHEAD);
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

    // A full store in its saved form (SPEC §15.11): MAX_GROUP_RECEIVERS
    // authenticated chains with full caches, MAX_CHAINS_PER_SENDER per
    // owner.
    let mut store_state = vec![0x02, 0x24];
    store_state.extend_from_slice(&0u64.to_be_bytes());
    store_state.extend_from_slice(GROUP.as_bytes());
    store_state.extend_from_slice(&u16::try_from(MAX_GROUP_RECEIVERS).unwrap().to_be_bytes());
    let mut owner = [0u8; 32];
    for i in 0..MAX_GROUP_RECEIVERS {
        if i % MAX_CHAINS_PER_SENDER == 0 {
            owner = ed25519_key(&mut rng);
        }
        let chain = ed25519_key(&mut rng);
        let receiver = worst_receiver_state(&chain, &owner, &mut rng);
        store_state.extend_from_slice(&u16::try_from(receiver.len()).unwrap().to_be_bytes());
        store_state.extend_from_slice(&receiver);
    }
    let (store_heap, mut store) = heap_of(|| GroupReceivers::from_bytes(&store_state).unwrap());
    assert_eq!(store.len(), MAX_GROUP_RECEIVERS);
    let store_len = store.to_bytes().len();
    assert_eq!(store_len, store_state.len());
    assert_eq!(
        store_len,
        2 + 8 + 32 + 2 + MAX_GROUP_RECEIVERS * (2 + GroupReceiver::MAX_ENCODED_LEN)
    );
    let store_sealed = store
        .seal(&StorageKey::from_bytes([1; 32]), b"", &mut rng)
        .unwrap()
        .len();
    assert!(store_sealed < sotto::MAX_STATE_LEN);
    // An unauthenticated chain never evicts an authenticated one: refused,
    // nothing changes.
    let stranger = GroupSender::new(&mut rng, GROUP, &bob_device).unwrap();
    let before = store.to_bytes();
    let (refused_growth, refused) =
        heap_of(|| store.import_unauthenticated(&stranger.distribution().to_bytes()));
    assert_eq!(refused, Err(Error::GroupStoreFull));
    assert_eq!(store.to_bytes(), before);
    drop(before);
    // A new owner's authenticated chain: the oldest chain goes, the heap
    // does not grow.
    let oldest = *store.iter().next().unwrap().chain();
    let carried = send(&mut to_bob, &mut rng, &alice.distribution().to_bytes());
    drop(carried);
    alice.rotate(&mut rng, &alice_device).unwrap();
    let reply = send(&mut from_alice, &mut rng, b"reply");
    to_bob.decrypt(&reply).unwrap();
    let carried = send(&mut to_bob, &mut rng, &alice.distribution().to_bytes());
    let (growth, outcome) = heap_of(|| store.receive_distribution(&mut from_alice, &carried));
    assert_eq!(outcome, Ok(sotto::group::InsertOutcome::Added));
    assert_eq!(store.len(), MAX_GROUP_RECEIVERS);
    assert!(store.get(&oldest).is_none() && store.get(alice.chain()).is_some());
    println!(
        "worst group receiver: state {largest_state} bytes, sealed {sealed_len} bytes, heap \
         {receiver_heap} bytes, peak extra heap in one decrypt {peak_small} bytes (1-byte \
         message), {peak_decrypt} bytes (largest message, {largest_message} bytes); full store: {} \
         receivers, state {store_len} bytes, sealed {store_sealed} bytes, heap {store_heap} bytes, \
         growth after an install {growth} bytes, after a refused import {refused_growth} bytes",
        store.len(),
    );
    drop(store);
    // Bounds stated in SPEC §14.1.
    assert!(receiver_heap < 16 * 1024, "resting heap {receiver_heap}");
    assert!(peak_small < 8 * 1024, "decrypt peak {peak_small}");
    assert!(peak_decrypt < 640 * 1024, "decrypt peak {peak_decrypt}");
    assert!(store_heap < 16 * 1024 * 1024, "store heap {store_heap}");
    assert!(growth < 1024, "store grew by {growth}");
    assert!(
        refused_growth < 64,
        "a refused import grew the store by {refused_growth}"
    );
}

/// Plain device state (SPEC §10.3) with every list at its bound.
const WORST_DEVICE_LEN: usize = 2
    + 8
    + 32
    + 12
    + 1
    + MAX_SIGNED_PREKEYS * (4 + 8 + 32 + 64 + 2 + MAX_BASE_KEYS_PER_SIGNED_PREKEY * 32)
    + 2
    + MAX_ONE_TIME_PREKEYS * (4 + 32)
    + 1
    + MAX_LAST_RESORT_KEM_PREKEYS * (4 + 8 + 64 + 64)
    + 2
    + MAX_ONE_TIME_KEM_PREKEYS * (4 + 64 + 64);

#[test]
fn device_state_at_every_bound() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = ChaCha20Rng::seed_from_u64(0x3e5);
    let mut device = Device::generate(&mut rng, NOW).unwrap();
    device
        .generate_one_time_prekeys(&mut rng, MAX_ONE_TIME_PREKEYS)
        .unwrap();
    device
        .generate_one_time_kem_prekeys(&mut rng, MAX_ONE_TIME_KEM_PREKEYS)
        .unwrap();
    for _ in 1..MAX_SIGNED_PREKEYS {
        device.rotate_signed_prekey(&mut rng, NOW).unwrap();
    }
    for _ in 1..MAX_LAST_RESORT_KEM_PREKEYS {
        device.rotate_last_resort_kem_prekey(&mut rng, NOW).unwrap();
    }
    // Every signed prekey's base-key record full (base keys are taken as
    // they are, SPEC §4): written into the saved state, as 4,000 replayable
    // handshakes would.
    let state = device.to_bytes();
    let l = layout::device_state(&state);
    let mut worst = state[..l.end_of("spk_count")].to_vec();
    assert_eq!(
        l.slice(&state, "spk_count"),
        [u8::try_from(MAX_SIGNED_PREKEYS).unwrap()]
    );
    for i in 0..MAX_SIGNED_PREKEYS {
        let spk = l.scoped(&format!("spks[{i}]."));
        worst.extend_from_slice(&state[spk.start("id")..spk.end_of("signature")]);
        assert_eq!(spk.slice(&state, "base_key_count"), [0, 0]);
        let count = u16::try_from(MAX_BASE_KEYS_PER_SIGNED_PREKEY).unwrap();
        worst.extend_from_slice(&count.to_be_bytes());
        for _ in 0..MAX_BASE_KEYS_PER_SIGNED_PREKEY {
            let mut key = [0u8; 32];
            rng.fill_bytes(&mut key);
            worst.extend_from_slice(&key);
        }
    }
    let last = format!("spks[{}].base_key_count", MAX_SIGNED_PREKEYS - 1);
    worst.extend_from_slice(&state[l.end_of(&last)..]);
    assert_eq!(worst.len(), WORST_DEVICE_LEN);
    let (heap, restored) = heap_of(|| Device::from_bytes(&worst).unwrap());
    assert_eq!(*restored.to_bytes(), *worst);
    assert!(
        restored
            .signed_prekeys()
            .all(|s| s.base_key_count == MAX_BASE_KEYS_PER_SIGNED_PREKEY)
    );
    let sealed_len = restored
        .seal(&StorageKey::from_bytes([1; 32]), b"", &mut rng)
        .unwrap()
        .len();
    assert_eq!(sealed_len, worst.len() + SEAL_OVERHEAD);
    // Every list refuses one more.
    let mut full = restored;
    assert_eq!(
        full.generate_one_time_prekeys(&mut rng, 1).err(),
        Some(Error::TooManyPreKeys)
    );
    assert_eq!(
        full.generate_one_time_kem_prekeys(&mut rng, 1).err(),
        Some(Error::TooManyPreKeys)
    );
    println!(
        "worst device: state {} bytes, sealed {sealed_len} bytes (empty context), heap {heap} bytes",
        worst.len()
    );
    assert!(heap < 512 * 1024, "device heap {heap}");
}
