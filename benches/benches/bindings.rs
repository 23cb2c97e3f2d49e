//! The Rust side of the bindings' call overhead (bindings/bench/run.sh):
//! a 100-byte encrypt on an established session, and a call that does
//! almost nothing (`generation`), each directly on sotto and through
//! `sotto-uniffi`'s wrapper called from Rust (its mutex and byte vectors,
//! without the foreign-language side). Randomness from the operating
//! system, as in the bindings. Python, Kotlin and WebAssembly time the same
//! calls with their own timers in the same run.
//!
//! Measured twice: in wall time (group `bindings`), and in the thread's CPU
//! time (group `bindings-cpu`), which the other languages also report and
//! which a shared machine's load does not inflate.
#![allow(clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use sotto_bindings_common::OsRng;

const PLAINTEXT_LEN: usize = 100;
const NOW: u64 = 1_700_000_000;

/// Alice's session after one round trip: her messages are ratchet messages.
fn established_direct() -> sotto::Session {
    let mut rng = OsRng;
    let alice = sotto::Device::generate(&mut rng, NOW).expect("alice");
    let mut bob = sotto::Device::generate(&mut rng, NOW).expect("bob");
    let bundle = sotto::PreKeyBundle::new(
        *bob.identity_key(),
        bob.signed_prekey(),
        None,
        Some(bob.last_resort_kem_prekey()),
    )
    .verify()
    .expect("verify");
    let mut to_bob = sotto::Session::initiate(&alice, &mut rng, &bundle).expect("initiate");
    let sotto::Message::PreKey(first) = to_bob.encrypt(&mut rng, b"hi").expect("encrypt") else {
        panic!("the first message is a prekey message")
    };
    let (mut to_alice, _) = sotto::Session::accept(&mut bob, &first).expect("accept");
    let reply = to_alice.encrypt(&mut rng, b"hello").expect("reply");
    to_bob.decrypt(&reply).expect("decrypt");
    to_bob
}

/// The same through the uniffi wrapper's Rust API.
fn established_uniffi() -> std::sync::Arc<sotto_uniffi::Session> {
    let alice = sotto_uniffi::Device::generate(NOW).expect("alice");
    let bob = sotto_uniffi::Device::generate(NOW).expect("bob");
    let bundle = sotto_uniffi::PreKeyBundle::new(
        bob.identity_key().expect("identity"),
        bob.signed_prekey().expect("spk").bytes,
        None,
        Some(bob.last_resort_kem_prekey().expect("kem").bytes),
    )
    .expect("bundle")
    .verify()
    .expect("verify");
    let to_bob = alice.initiate(bundle).expect("initiate");
    let accepted = bob
        .accept(to_bob.encrypt(b"hi".to_vec()).expect("encrypt"))
        .expect("accept");
    let reply = accepted.session.encrypt(b"hello".to_vec()).expect("reply");
    to_bob.decrypt(reply).expect("decrypt");
    to_bob
}

/// The calling thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`, the clock
/// Python's `time.thread_time_ns` and the JVM's thread CPU time read).
struct ThreadCpuTime;

#[allow(unsafe_code)]
fn thread_cpu_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec for the call's duration.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(status, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    let seconds = u64::try_from(now.tv_sec).expect("non-negative");
    let nanos = u64::try_from(now.tv_nsec).expect("non-negative");
    seconds * 1_000_000_000 + nanos
}

impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_ns()
    }

    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns().saturating_sub(start)
    }

    fn add(&self, a: &u64, b: &u64) -> u64 {
        a.saturating_add(*b)
    }

    fn zero(&self) -> u64 {
        0
    }

    fn to_f64(&self, value: &u64) -> f64 {
        *value as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        &Nanoseconds
    }
}

/// Values stay in nanoseconds.
struct Nanoseconds;

impl ValueFormatter for Nanoseconds {
    fn scale_values(&self, _typical: f64, _values: &mut [f64]) -> &'static str {
        "ns (CPU)"
    }

    fn scale_throughputs(
        &self,
        _typical: f64,
        _t: &Throughput,
        _values: &mut [f64],
    ) -> &'static str {
        "ns (CPU)"
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

fn overhead<M: Measurement>(g: &mut BenchmarkGroup<'_, M>) {
    let plaintext = vec![0x42; PLAINTEXT_LEN];
    let mut direct = established_direct();
    assert!(!direct.is_awaiting_reply());
    g.bench_function("encrypt100/rust", |b| {
        b.iter(|| {
            direct
                .encrypt(&mut OsRng, black_box(&plaintext))
                .expect("encrypt")
                .into_bytes()
        })
    });
    let wrapped = established_uniffi();
    assert!(!wrapped.is_awaiting_reply().expect("state"));
    g.bench_function("encrypt100/uniffi-rust-side", |b| {
        b.iter(|| {
            wrapped
                .encrypt(black_box(plaintext.clone()))
                .expect("encrypt")
        })
    });
    g.bench_function("generation/rust", |b| {
        b.iter(|| black_box(&direct).generation())
    });
    g.bench_function("generation/uniffi-rust-side", |b| {
        b.iter(|| black_box(&wrapped).generation().expect("generation"))
    });
}

fn wall(c: &mut Criterion) {
    let mut g = c.benchmark_group("bindings");
    overhead(&mut g);
    g.finish();
}

fn cpu(c: &mut Criterion<ThreadCpuTime>) {
    let mut g = c.benchmark_group("bindings-cpu");
    overhead(&mut g);
    g.finish();
}

criterion_group!(benches, wall);
criterion_group! {
    name = cpu_benches;
    config = Criterion::default().with_measurement(ThreadCpuTime);
    targets = cpu
}
criterion_main!(benches, cpu_benches);
