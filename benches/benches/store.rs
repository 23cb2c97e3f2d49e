//! sotto-store: the commit time of each protocol operation on a database on
//! disk (WAL, `synchronous=FULL`), as p50 and p99 of every timed call, and
//! messages per second through the store next to the in-memory core.
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
use sotto::{Message, PreKeyBundle};
use sotto_bench::{established, rng};
use sotto_store::{PreKeyUpload, Store, StoreKey};

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

/// A device's store and its first upload.
fn device(path: PathBuf, byte: u8) -> (Store, PreKeyUpload) {
    let mut store = open(path, byte);
    let out = store.create_device(NOW).expect("device");
    store.ack_sent(out.id).expect("ack");
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

/// Alice and Bob with sessions both ways.
fn pair(dir: &std::path::Path) -> (Store, Store) {
    let (mut alice, _) = device(dir.join("alice.db"), 1);
    let (mut bob, first) = device(dir.join("bob.db"), 2);
    alice
        .start_session(b"bob", &bundle(&first), None)
        .expect("start");
    let out = alice.encrypt(b"bob", b"hi", None).expect("encrypt");
    let got = bob.receive(b"alice", &out.payload).expect("receive");
    bob.ack_read(got.id).expect("ack");
    alice.ack_sent(out.id).expect("ack");
    let back = bob.encrypt(b"alice", b"hi", None).expect("encrypt");
    alice.receive(b"bob", &back.payload).expect("receive");
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
                let out = alice.encrypt(b"bob", &plaintext, None).expect("encrypt");
                let d = t.elapsed();
                record("encrypt (session + outbox)", d);
                total += d;
                alice.ack_sent(out.id).expect("ack");
                bob.receive(b"alice", &out.payload).expect("receive");
            }
            total
        });
    });

    g.bench_function("receive", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let out = alice.encrypt(b"bob", &plaintext, None).expect("encrypt");
                let t = Instant::now();
                let got = bob.receive(b"alice", &out.payload).expect("receive");
                let d = t.elapsed();
                record("receive (session + inbox)", d);
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
                let out = alice.encrypt(b"bob", &plaintext, None).expect("encrypt");
                let t = Instant::now();
                alice.ack_sent(out.id).expect("ack");
                let d = t.elapsed();
                record("acknowledge an outbox entry", d);
                total += d;
            }
            total
        });
    });

    // Accepting a prekey message writes the device and a new session: a
    // new initiator each time, under the last-resort KEM prekey (the signed
    // prekey is rotated, untimed, before its base-key record fills).
    let (mut carol, carol_first) = device(dir.join("carol.db"), 3);
    let mut initiators = open(dir.join("initiators.db"), 4);
    initiators.create_device(NOW).expect("device");
    let mut current = bundle(&carol_first);
    let mut n = 0u64;
    g.bench_function("accept", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                if n.is_multiple_of(500) {
                    let out = carol.rotate_signed_prekey(NOW).expect("rotate");
                    let up = PreKeyUpload::from_bytes(&out.payload).expect("upload");
                    current = PreKeyBundle::new(
                        carol_first.identity,
                        up.signed_prekey.expect("signed prekey"),
                        None,
                        carol_first.last_resort_kem_prekey.clone(),
                    );
                }
                let name = format!("i{n}");
                initiators
                    .start_session(name.as_bytes(), &current, None)
                    .expect("start");
                let out = initiators
                    .encrypt(name.as_bytes(), &plaintext, None)
                    .expect("encrypt");
                let t = Instant::now();
                let got = carol
                    .receive(name.as_bytes(), &out.payload)
                    .expect("accept");
                let d = t.elapsed();
                record("accept a prekey message (device + session + inbox)", d);
                total += d;
                carol.ack_read(got.id).expect("ack");
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
    drop((alice, bob, carol, initiators));
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
            let out = alice.encrypt(b"bob", &plaintext, None).expect("encrypt");
            alice.ack_sent(out.id).expect("ack");
            let got = bob.receive(b"alice", &out.payload).expect("receive");
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
