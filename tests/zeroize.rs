//! Proof that secrets are wiped before their heap memory is freed.
//!
//! A global allocator scans every block on `dealloc` (and, through the
//! default `realloc`, every block a growing buffer leaves behind) for any
//! registered secret, before handing it back to the system. Secrets are
//! registered from the plain state layouts (`to_bytes`, read with the
//! layouts of SPEC §10.2, §10.3 and §15.11 by `testkit::layout::secrets`:
//! root, chain and message keys, ratchet secrets, identity seeds, prekey
//! secrets, KEM prekey seeds `d || z`, group chain seeds and ratchet levels
//! with the key of their index, cached group keys), so the test does not
//! trust `#[derive(ZeroizeOnDrop)]`: it watches the bytes.
//!
//! What this covers: every heap block sotto allocates for sessions, devices,
//! skipped-key stores, group senders, receivers, stores and distributions,
//! and saved-state buffers, at the moment it is freed.
//! What it does not cover: copies on the stack or in registers (moves of a
//! `Session` or `Device` value, temporaries inside the primitives), memory
//! the caller owns (a `Vec<Session>` that reallocates moves the secrets a
//! session holds inline), swap and core dumps.
#![allow(
    unsafe_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sotto::group::{
    GroupId, GroupMessage, GroupReceiver, GroupReceivers, GroupSender, Sender,
    SenderKeyDistribution,
};
use sotto::{Device, Message, Session, StorageKey};
use testkit::fixtures::{Kem, NOW, bundle_with, deliver_distribution};
use zeroize::Zeroizing;

/// The secret fields of a plain saved state or distribution (SPEC §10.2,
/// §10.3, §15.6, §15.11), 32 bytes each, found by name through the
/// testkit's layouts (and the message key of each ratchet's current index).
fn secrets(state: &[u8]) -> Vec<[u8; 32]> {
    testkit::layout::secrets(state)
}

const TABLE_LEN: usize = 16_384;

/// Registered secrets, sorted by their first eight bytes. Written only while
/// the scanner is disarmed; read by `dealloc` while armed.
struct Table {
    prefixes: UnsafeCell<[u64; TABLE_LEN]>,
    len: AtomicUsize,
}

// SAFETY: writes happen only while `ARMED` is false and under `SERIAL`;
// `dealloc` reads only while `ARMED` is true.
unsafe impl Sync for Table {}

static TABLE: Table = Table {
    prefixes: UnsafeCell::new([0; TABLE_LEN]),
    len: AtomicUsize::new(0),
};
static ARMED: AtomicBool = AtomicBool::new(false);
static LEAKED_BLOCKS: AtomicUsize = AtomicUsize::new(0);
static SCANNED_BLOCKS: AtomicUsize = AtomicUsize::new(0);
static SERIAL: Mutex<()> = Mutex::new(());

struct Scanner;

impl Scanner {
    fn holds_secret(block: &[u8]) -> bool {
        // SAFETY: only read while armed, when nothing writes the table.
        let table = unsafe { &*TABLE.prefixes.get() };
        let table = &table[..TABLE.len.load(Ordering::SeqCst)];
        block.windows(8).any(|w| {
            table
                .binary_search(&u64::from_le_bytes(w.try_into().unwrap()))
                .is_ok()
        })
    }
}

unsafe impl GlobalAlloc for Scanner {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ARMED.load(Ordering::SeqCst) {
            // SAFETY: the block is live and `layout.size()` bytes long.
            let block = unsafe { std::slice::from_raw_parts(ptr, layout.size()) };
            SCANNED_BLOCKS.fetch_add(1, Ordering::SeqCst);
            if Self::holds_secret(block) {
                LEAKED_BLOCKS.fetch_add(1, Ordering::SeqCst);
            }
        } else {
            // Disarmed, every freed block is wiped: finding the secrets
            // (the test decodes the states) leaves copies in freed blocks,
            // which sotto may be handed again and free while armed without
            // ever having written them.
            // SAFETY: the block is live and `layout.size()` bytes long.
            unsafe { std::ptr::write_bytes(ptr, 0, layout.size()) };
        }
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Scanner = Scanner;

/// Registers secrets (disarmed) and arms the scanner.
fn arm(secrets: &[[u8; 32]]) {
    assert!(!ARMED.load(Ordering::SeqCst));
    let mut prefixes: Vec<u64> = secrets
        .iter()
        .map(|s| u64::from_le_bytes(s[..8].try_into().unwrap()))
        .collect();
    prefixes.sort_unstable();
    prefixes.dedup();
    assert!(prefixes.len() <= TABLE_LEN);
    // SAFETY: disarmed, and SERIAL is held by the caller.
    let table = unsafe { &mut *TABLE.prefixes.get() };
    table[..prefixes.len()].copy_from_slice(&prefixes);
    TABLE.len.store(prefixes.len(), Ordering::SeqCst);
    drop(prefixes);
    LEAKED_BLOCKS.store(0, Ordering::SeqCst);
    SCANNED_BLOCKS.store(0, Ordering::SeqCst);
    ARMED.store(true, Ordering::SeqCst);
}

/// Disarms; returns (blocks scanned, blocks that still held a secret).
fn disarm() -> (usize, usize) {
    ARMED.store(false, Ordering::SeqCst);
    (
        SCANNED_BLOCKS.load(Ordering::SeqCst),
        LEAKED_BLOCKS.load(Ordering::SeqCst),
    )
}

fn message(session: &mut Session, rng: &mut ChaCha20Rng, text: &[u8]) -> Message {
    session.encrypt(rng, text).unwrap()
}

#[test]
fn freed_heap_blocks_hold_no_secrets() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = ChaCha20Rng::seed_from_u64(0x2e20);
    let alice_device = Box::new(Device::generate(&mut rng, NOW).unwrap());
    let mut bob_device = Box::new(Device::generate(&mut rng, NOW).unwrap());
    bob_device.generate_one_time_prekeys(&mut rng, 40).unwrap();
    bob_device
        .generate_one_time_kem_prekeys(&mut rng, 5)
        .unwrap();
    bob_device.rotate_signed_prekey(&mut rng, NOW).unwrap();
    bob_device.rotate_signed_prekey(&mut rng, NOW).unwrap();
    bob_device
        .rotate_last_resort_kem_prekey(&mut rng, NOW)
        .unwrap();
    let bundle = bundle_with(&mut rng, &mut bob_device, true, Kem::OneTime);
    let mut alice =
        Box::new(Session::initiate(&alice_device, &mut rng, &bundle.verify().unwrap()).unwrap());
    let Message::PreKey(first) = message(&mut alice, &mut rng, b"hello") else {
        panic!("prekey message expected");
    };
    let (bob, _) = Session::accept(&mut bob_device, &first).unwrap();
    let mut bob = Box::new(bob);

    // Build up state: several chains, each with skipped keys (messages held
    // back), so that the skipped-key store spans many tree nodes.
    let mut held_back = Vec::new();
    for round in 0..4 {
        let batch: Vec<Message> = (0..60)
            .map(|i| message(&mut alice, &mut rng, &[round, i]))
            .collect();
        for (i, m) in batch.into_iter().enumerate() {
            if i % 3 == 2 {
                bob.decrypt(&m).unwrap();
            } else {
                held_back.push(m);
            }
        }
        let reply = message(&mut bob, &mut rng, b"reply");
        alice.decrypt(&reply).unwrap();
    }
    assert!(bob.skipped_key_count() > 100);

    let mut registered_secrets = secrets(&bob.to_bytes());
    registered_secrets.extend(secrets(&alice.to_bytes()));
    registered_secrets.extend(secrets(&bob_device.to_bytes()));
    registered_secrets.extend(secrets(&alice_device.to_bytes()));
    let registered = registered_secrets.len();
    arm(&registered_secrets);

    // Use everything: delete skipped keys, turn the ratchet, save, seal,
    // restore, accept a new session, then drop it all.
    for m in held_back.drain(..).rev() {
        let _ = bob.decrypt(&m);
    }
    drop(held_back);
    let reply = message(&mut bob, &mut rng, b"turn");
    alice.decrypt(&reply).unwrap();
    let storage = StorageKey::from_bytes([9; 32]);
    for _ in 0..3 {
        let plain = bob.to_bytes();
        let sealed = bob.seal(&storage, b"bob", &mut rng).unwrap();
        bob = Box::new(Session::unseal(&sealed, &storage, b"bob").unwrap());
        let restored = Box::new(Session::from_bytes(&plain).unwrap());
        drop(plain);
        drop(restored);
        let sealed_device = bob_device.seal(&storage, b"device", &mut rng).unwrap();
        bob_device = Box::new(Device::unseal(&sealed_device, &storage, b"device").unwrap());
    }
    let carol_device = Box::new(Device::generate(&mut rng, NOW).unwrap());
    // Carol's PQXDH handshake uses one of the registered one-time KEM
    // prekeys, which the accept deletes.
    let kem = bob_device
        .generate_one_time_kem_prekeys(&mut rng, 0)
        .unwrap();
    assert!(kem.is_empty());
    let bundle = bundle_with(&mut rng, &mut bob_device, true, Kem::LastResort);
    let mut carol =
        Box::new(Session::initiate(&carol_device, &mut rng, &bundle.verify().unwrap()).unwrap());
    let Message::PreKey(first) = message(&mut carol, &mut rng, b"hi") else {
        panic!("prekey message expected");
    };
    let (to_carol, _) = Session::accept(&mut bob_device, &first).unwrap();
    bob_device.generate_one_time_prekeys(&mut rng, 100).unwrap();
    // Rotation and reset delete registered prekey secrets and KEM seeds.
    for _ in 0..sotto::MAX_LAST_RESORT_KEM_PREKEYS {
        bob_device
            .rotate_last_resort_kem_prekey(&mut rng, NOW)
            .unwrap();
        bob_device.rotate_signed_prekey(&mut rng, NOW).unwrap();
    }
    let generation = bob_device.generation();
    bob_device
        .reset_prekeys_after_restore(&mut rng, NOW, generation)
        .unwrap();
    drop((Box::new(to_carol), carol));
    drop((alice, bob, alice_device, bob_device, carol_device));
    let (scanned, leaked) = disarm();
    println!(
        "registered {registered} secrets, scanned {scanned} freed blocks, {leaked} held a secret"
    );
    assert!(scanned > 100, "the scanner saw too little");
    assert_eq!(leaked, 0, "{leaked} freed heap blocks still held a secret");
}

#[test]
fn scanner_detects_an_unwiped_secret() {
    // The control: a plain Vec holding a registered secret is freed unwiped,
    // a Zeroizing one is wiped.
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let secret = [0x42u8; 32];
    arm(&[secret]);
    drop(std::hint::black_box(secret.to_vec()));
    let (_, leaked) = disarm();
    assert_eq!(leaked, 1);
    arm(&[secret]);
    drop(std::hint::black_box(Zeroizing::new(secret.to_vec())));
    let (_, leaked) = disarm();
    assert_eq!(leaked, 0);
}

const GROUP: GroupId = GroupId::from_bytes([0x2e; 32]);

/// The secrets of a store, from its saved form.
fn store_secrets(store: &GroupReceivers) -> Vec<[u8; 32]> {
    secrets(&store.to_bytes())
}

fn group_send(sender: &mut GroupSender, rng: &mut ChaCha20Rng, i: u32) -> GroupMessage {
    sender.encrypt(rng, &i.to_be_bytes()).unwrap()
}

#[test]
fn freed_heap_blocks_hold_no_group_secrets() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = ChaCha20Rng::seed_from_u64(0x2e21);
    let alice_device = Device::generate(&mut rng, NOW).unwrap();
    let mut bob_device = Device::generate(&mut rng, NOW).unwrap();
    let carol_device = Device::generate(&mut rng, NOW).unwrap();
    let bundle = bundle_with(&mut rng, &mut bob_device, false, Kem::LastResort);
    let mut to_bob = Session::initiate(&alice_device, &mut rng, &bundle.verify().unwrap()).unwrap();
    let Message::PreKey(first) = message(&mut to_bob, &mut rng, b"hello") else {
        panic!("prekey message expected");
    };
    let (mut from_alice, _) = Session::accept(&mut bob_device, &first).unwrap();

    let mut alice = Box::new(GroupSender::new(&mut rng, GROUP, &alice_device).unwrap());
    let mut carol = Box::new(GroupSender::new(&mut rng, GROUP, &carol_device).unwrap());
    let mut store = Box::new(GroupReceivers::new(GROUP));
    let carried = testkit::fixtures::wire(&mut to_bob, &mut rng, &alice.distribution().to_bytes());
    store
        .receive_distribution(&mut from_alice, &carried)
        .unwrap();
    let carol_distribution = carol.distribution().to_bytes();
    store.import_unauthenticated(&carol_distribution).unwrap();
    let mut lone =
        Box::new(GroupReceiver::import_unauthenticated(&GROUP, &carol_distribution).unwrap());

    // Build up cached keys across many tree nodes: of each 40 messages Bob
    // reads every fifth (the skipped ones are cached) and holds the rest.
    let mut held_back = Vec::new();
    for i in 0..200u32 {
        let a = group_send(&mut alice, &mut rng, i);
        let c = group_send(&mut carol, &mut rng, i);
        if i % 5 == 4 {
            store.decrypt(&a).unwrap();
            store.decrypt(&c).unwrap();
            lone.decrypt(&c).unwrap();
        } else {
            held_back.push(a);
            held_back.push(c);
        }
    }
    assert!(store.iter().all(|r| r.skipped_key_count() > 100));

    let mut registered_secrets = store_secrets(&store);
    registered_secrets.extend(secrets(&lone.to_bytes()));
    registered_secrets.extend(secrets(&alice.to_bytes()));
    registered_secrets.extend(secrets(&carol.to_bytes()));
    registered_secrets.extend(secrets(&carol_distribution));
    drop(carol_distribution);
    let registered = registered_secrets.len();
    arm(&registered_secrets);

    // Read the held-back messages (cache hits delete keys), jump past the
    // window and the cache bound (keys evicted), encrypt, hand out and
    // re-install distributions (the newer ratchet replaces the held one),
    // save, seal and restore everything, evict chains, rotate, then drop
    // it all.
    for m in held_back.drain(..).rev() {
        let _ = store.decrypt(&m);
        let _ = lone.decrypt(&m);
    }
    drop(held_back);
    for jump in 1..=12u32 {
        let mut last = None;
        for i in 0..=jump * 5 {
            last = Some(group_send(&mut alice, &mut rng, i));
        }
        store.decrypt(last.as_ref().unwrap()).unwrap();
    }
    let distribution = SenderKeyDistribution::from_bytes(&alice.distribution().to_bytes()).unwrap();
    drop(distribution);
    group_send(&mut alice, &mut rng, 0);
    let carried = testkit::fixtures::wire(&mut to_bob, &mut rng, &alice.distribution().to_bytes());
    store
        .receive_distribution(&mut from_alice, &carried)
        .unwrap();
    // A standalone receiver installed from the same chain, then dropped.
    drop(deliver_distribution(
        &mut rng,
        &alice,
        &mut to_bob,
        &mut from_alice,
    ));
    let storage = StorageKey::from_bytes([8; 32]);
    for _ in 0..3 {
        let plain = alice.to_bytes();
        let sealed = alice.seal(&storage, b"sender", &mut rng).unwrap();
        alice = Box::new(GroupSender::unseal(&sealed, &storage, b"sender").unwrap());
        drop(Box::new(GroupSender::from_bytes(&plain).unwrap()));
        drop(plain);
        for receiver in store.iter() {
            let sealed = receiver.seal(&storage, b"receiver", &mut rng).unwrap();
            drop(GroupReceiver::unseal(&sealed, &storage, b"receiver").unwrap());
            drop(GroupReceiver::from_bytes(&receiver.to_bytes()).unwrap());
        }
        let sealed = store.seal(&storage, b"store", &mut rng).unwrap();
        store = Box::new(GroupReceivers::unseal(&sealed, &storage, b"store").unwrap());
        drop(GroupReceivers::from_bytes(&store.to_bytes()).unwrap());
    }
    // Alice rotates four times: each new chain pushes her oldest out.
    for _ in 0..4 {
        alice.rotate(&mut rng, &alice_device).unwrap();
        let carried =
            testkit::fixtures::wire(&mut to_bob, &mut rng, &alice.distribution().to_bytes());
        store
            .receive_distribution(&mut from_alice, &carried)
            .unwrap();
    }
    assert_eq!(store.len(), 5);
    assert!(
        store
            .iter()
            .any(|r| r.sender() == &Sender::Authenticated(*alice_device.identity_key()))
    );
    assert_eq!(store.remove_owner(alice_device.identity_key()), 4);
    carol.rotate(&mut rng, &carol_device).unwrap();
    drop((alice, carol, store, lone));
    drop((to_bob, from_alice, alice_device, bob_device));
    let (scanned, leaked) = disarm();
    println!(
        "registered {registered} group secrets, scanned {scanned} freed blocks, {leaked} held a secret"
    );
    assert!(scanned > 1000, "the scanner saw too little");
    assert_eq!(
        leaked, 0,
        "{leaked} freed heap blocks still held a group secret"
    );
}
