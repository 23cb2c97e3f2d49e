//! sotto-store: the commit time of each protocol operation (through the
//! session layer: peer records, group sessions) on a database on disk (WAL,
//! `synchronous=FULL`), as p50 and p99 of every timed call, and messages
//! per second through the store next to the in-memory core.
//!
//! `SOTTO_STORE_BENCH_DIR=/dev/shm` puts the databases on a RAM disk, which
//! leaves out the disk's fsync and shows the store's own cost.
//!
//! Each call is timed alone inside criterion's `iter_custom`, with its
//! setup (a fresh prekey message, say) outside the timing; the percentiles
//! are printed after the groups and written to
//! `target/criterion/store-percentiles.txt`.
#![allow(
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sotto::sessions::{DeviceId, UserId};
use sotto::{Message, PreKeyBundle};
use sotto_bench::{established, rng};
use sotto_store::{Delivered, Incoming, Outgoing, PreKeyUpload, Store, StoreKey};

const NOW: u64 = 1_700_000_000;

/// Every timed call, per operation.
static SAMPLES: Mutex<BTreeMap<&'static str, Vec<Duration>>> = Mutex::new(BTreeMap::new());

fn record(op: &'static str, d: Duration) {
    SAMPLES
        .lock()
        .expect("samples")
        .entry(op)
        .or_default()
        .push(d);
}

/// Under `SOTTO_STORE_BENCH_DIR` (a RAM disk, say, to leave the disk's
/// fsync out), else the temp directory.
fn dir() -> PathBuf {
    let base =
        std::env::var_os("SOTTO_STORE_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let dir = base.join(format!("sotto-store-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

fn open(path: PathBuf, byte: u8) -> Store {
    Store::open(path, &StoreKey::from_bytes([byte; 32])).expect("open")
}

/// Every user's one device.
const D1: DeviceId = DeviceId(1);
/// The group of the group benchmarks.
const GROUP: [u8; 32] = [0x47; 32];

fn uid(name: &str) -> UserId {
    UserId::new(name.as_bytes()).expect("user id")
}

/// A user's store with its device and account, and its first upload.
fn user(dir: &std::path::Path, name: &str, byte: u8) -> (Store, PreKeyUpload) {
    let mut store = open(dir.join(format!("{name}.db")), byte);
    let out = store.create_device(NOW).expect("device");
    store.ack_sent(out.id).expect("ack");
    store.set_account(&uid(name), D1).expect("account");
    (
        store,
        PreKeyUpload::from_bytes(&out.payload).expect("upload"),
    )
}

fn bundle(up: &PreKeyUpload) -> PreKeyBundle {
    PreKeyBundle::new(
        up.identity,
        up.signed_prekey.expect("signed prekey"),
        None,
        up.last_resort_kem_prekey.clone(),
    )
}

/// `from`'s message to `to`'s one device, committed.
fn send(from: &mut Store, to: &str, plaintext: &[u8]) -> Outgoing {
    let sent = from.send_to_user(&uid(to), plaintext, None).expect("send");
    sent.outgoing.into_iter().next().expect("one message")
}

fn receive(to: &mut Store, from: &str, out: &Outgoing) -> Incoming {
    match to
        .receive_from(&uid(from), D1, &out.payload, NOW)
        .expect("receive")
    {
        Delivered::Message(entry) => entry,
        other => panic!("{other:?}"),
    }
}

/// Alice and Bob with sessions both ways and a group of the two, every
/// entry acknowledged.
fn pair(dir: &std::path::Path) -> (Store, Store) {
    let (mut alice, alice_first) = user(dir, "alice", 1);
    let (mut bob, bob_first) = user(dir, "bob", 2);
    alice
        .update_devices(&uid("bob"), &[(D1, bob_first.identity)], NOW)
        .expect("devices");
    alice
        .add_bundle(&uid("bob"), D1, bundle(&bob_first), NOW)
        .expect("bundle");
    bob.update_devices(&uid("alice"), &[(D1, alice_first.identity)], NOW)
        .expect("devices");
    let out = send(&mut alice, "bob", b"hi");
    receive(&mut bob, "alice", &out);
    let back = send(&mut bob, "alice", b"hi");
    receive(&mut alice, "bob", &back);
    let both = [uid("alice"), uid("bob")];
    let made = alice.create_group(&GROUP, &both).expect("group");
    bob.create_group(&GROUP, &both).expect("group");
    for out in &made.outgoing {
        bob.receive_from(&uid("alice"), D1, &out.payload, NOW)
            .expect("distribution");
    }
    for store in [&mut alice, &mut bob] {
        for out in store.outbox().expect("outbox") {
            store.ack_sent(out.id).expect("ack");
        }
        for entry in store.inbox().expect("inbox") {
            store.ack_read(entry.id).expect("ack");
        }
    }
    (alice, bob)
}

fn commit(c: &mut Criterion) {
    let dir = dir();
    let (mut alice, mut bob) = pair(&dir);
    let plaintext = [0x42u8; 100];
    let mut g = c.benchmark_group("store-commit");
    g.sample_size(30);

    g.bench_function("encrypt", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t = Instant::now();
                let out = send(&mut alice, "bob", &plaintext);
                let d = t.elapsed();
                record("encrypt to a user (peer record + outbox)", d);
                total += d;
                alice.ack_sent(out.id).expect("ack");
                let got = receive(&mut bob, "alice", &out);
                bob.ack_read(got.id).expect("ack");
            }
            total
        });
    });

    g.bench_function("receive", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let out = send(&mut alice, "bob", &plaintext);
                alice.ack_sent(out.id).expect("ack");
                let t = Instant::now();
                let got = receive(&mut bob, "alice", &out);
                let d = t.elapsed();
                record("decrypt from a device (device + peer record + inbox)", d);
                total += d;
                bob.ack_read(got.id).expect("ack");
            }
            total
        });
    });

    g.bench_function("ack", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let out = send(&mut alice, "bob", &plaintext);
                let t = Instant::now();
                alice.ack_sent(out.id).expect("ack");
                let d = t.elapsed();
                record("acknowledge an outbox entry", d);
                total += d;
                let got = receive(&mut bob, "alice", &out);
                bob.ack_read(got.id).expect("ack");
            }
            total
        });
    });

    // Accepting a prekey message writes the device and Carol's record of
    // Dave: Dave starts a new session from Carol's bundle each time (under
    // the last-resort KEM prekey; the signed prekey is rotated, untimed,
    // before its base-key record fills).
    let (mut carol, carol_first) = user(&dir, "carol", 3);
    let (mut dave, dave_first) = user(&dir, "dave", 4);
    dave.update_devices(&uid("carol"), &[(D1, carol_first.identity)], NOW)
        .expect("devices");
    carol
        .update_devices(&uid("dave"), &[(D1, dave_first.identity)], NOW)
        .expect("devices");
    let mut current = bundle(&carol_first);
    let mut n = 0u64;
    g.bench_function("accept", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                if n.is_multiple_of(500) {
                    let out = carol.rotate_signed_prekey(NOW).expect("rotate");
                    carol.ack_sent(out.id).expect("ack");
                    let up = PreKeyUpload::from_bytes(&out.payload).expect("upload");
                    current = PreKeyBundle::new(
                        carol_first.identity,
                        up.signed_prekey.expect("signed prekey"),
                        None,
                        carol_first.last_resort_kem_prekey.clone(),
                    );
                }
                dave.add_bundle(&uid("carol"), D1, current.clone(), NOW)
                    .expect("bundle");
                let out = send(&mut dave, "carol", &plaintext);
                dave.ack_sent(out.id).expect("ack");
                let t = Instant::now();
                let got = receive(&mut carol, "dave", &out);
                let d = t.elapsed();
                record("accept a prekey message (device + peer record + inbox)", d);
                total += d;
                carol.ack_read(got.id).expect("ack");
            }
            total
        });
    });

    g.bench_function("group-send", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t = Instant::now();
                let out = alice
                    .group_send(&GROUP, &plaintext, None)
                    .expect("group send");
                let d = t.elapsed();
                record("group encrypt (group session + outbox)", d);
                total += d;
                alice.ack_sent(out.id).expect("ack");
                let got = bob
                    .group_receive(&GROUP, &uid("alice"), &out.payload)
                    .expect("group receive");
                bob.ack_read(got.id).expect("ack");
            }
            total
        });
    });

    g.bench_function("group-receive", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let out = alice
                    .group_send(&GROUP, &plaintext, None)
                    .expect("group send");
                alice.ack_sent(out.id).expect("ack");
                let t = Instant::now();
                let got = bob
                    .group_receive(&GROUP, &uid("alice"), &out.payload)
                    .expect("group receive");
                let d = t.elapsed();
                record(
                    "group decrypt (group session + peer record read + inbox)",
                    d,
                );
                total += d;
                bob.ack_read(got.id).expect("ack");
            }
            total
        });
    });

    g.bench_function("rotate-signed-prekey", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t = Instant::now();
                let out = bob.rotate_signed_prekey(NOW).expect("rotate");
                let d = t.elapsed();
                record("rotate the signed prekey (device + outbox)", d);
                total += d;
                bob.ack_sent(out.id).expect("ack");
            }
            total
        });
    });
    g.finish();
    drop((alice, bob, carol, dave));
    let _ = std::fs::remove_dir_all(&dir);
}

fn throughput(c: &mut Criterion) {
    let dir = dir();
    let (mut alice, mut bob) = pair(&dir);
    let plaintext = [0x42u8; 100];
    let mut g = c.benchmark_group("store-throughput");
    g.throughput(Throughput::Elements(1));
    g.sample_size(20);
    // One message through both stores, as an app handles it: encrypt
    // (committed), acknowledge the send, receive (committed), acknowledge
    // the read.
    g.bench_function("store/message", |b| {
        b.iter(|| {
            let out = send(&mut alice, "bob", &plaintext);
            alice.ack_sent(out.id).expect("ack");
            let got = receive(&mut bob, "alice", &out);
            bob.ack_read(got.id).expect("ack");
        });
    });
    // The same message through the in-memory core alone.
    let mut r = rng(9);
    let mut pair = established(&mut r);
    g.bench_function("core/message", |b| {
        b.iter(|| {
            let wire = pair
                .alice
                .encrypt(&mut r, &plaintext)
                .expect("encrypt")
                .into_bytes();
            let message = Message::from_bytes(&wire).expect("parse");
            pair.bob.decrypt(&message).expect("decrypt")
        });
    });
    g.finish();
    drop((alice, bob));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The `per_mille`-th of a sorted list, by the nearest rank.
fn percentile(sorted: &[Duration], per_mille: usize) -> Duration {
    let i = (sorted.len() - 1) * per_mille / 1000;
    sorted[i.min(sorted.len() - 1)]
}

fn report(_: &mut Criterion) {
    let samples = SAMPLES.lock().expect("samples");
    let mut text = String::from("| Operation | Calls | p50 | p99 |\n|---|---|---|---|\n");
    for (op, durations) in samples.iter() {
        let mut sorted = durations.clone();
        sorted.sort();
        if sorted.is_empty() {
            continue;
        }
        text.push_str(&format!(
            "| {op} | {} | {:.0} µs | {:.0} µs |\n",
            sorted.len(),
            percentile(&sorted, 500).as_secs_f64() * 1e6,
            percentile(&sorted, 990).as_secs_f64() * 1e6,
        ));
    }
    println!("\n{text}");
    let out =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/criterion/store-percentiles.txt");
    let _ = std::fs::create_dir_all(out.parent().expect("parent"));
    let _ = std::fs::write(out, text);
}

criterion_group!(benches, commit, throughput, report);
criterion_main!(benches);
