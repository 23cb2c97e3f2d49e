//! The session layer (SPEC §16) against the bare `Session` calls it makes,
//! on the same session states byte for byte (taken out of the saved
//! records): in each group `sotto/...` is the layer and `floor/...` the bare
//! reference, measured right after it.
//!
//! - `sessions_encrypt`: to one device, `PeerRecord::encrypt_to` (`to`) and
//!   the fan-out `PeerRecord::encrypt` to a user with one device
//!   (`fanout`), against `Session::encrypt` of the same framed plaintext.
//! - `sessions_decrypt`: a message on the active session, against
//!   `Session::decrypt`.
//! - `sessions_promote`: a message on an archived session under a ratchet
//!   key no session knows: the active session's failed try, then the
//!   archived one's decrypt and its promotion, against the same failed
//!   `Session::decrypt` plus the decrypt that succeeds.
//!
//! Decrypting consumes state, so decrypt benchmarks restore from a snapshot
//! in an untimed setup.
#![allow(clippy::expect_used, clippy::indexing_slicing, missing_docs)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use sotto::Session;
use sotto::sessions::PeerRecord;
use sotto_bench::layer::{self, DEVICE, Layer, Promotion, active_session, framed};
use sotto_bench::{SMALL, parse, rng};

const NOW: u64 = 1_700_000_000;

fn encrypt(c: &mut Criterion) {
    let mut g = c.benchmark_group("sessions_encrypt");
    let mut rng = rng(21);
    let Layer { mut at_alice, .. } = layer::established(&mut rng);
    let mut bare = active_session(&at_alice);
    let payload = [0x33; SMALL];
    let plaintext = framed(&payload);
    g.bench_function("sotto/to", |b| {
        b.iter(|| {
            at_alice
                .encrypt_to(DEVICE, black_box(&payload), &mut rng)
                .expect("encrypt")
        })
    });
    g.bench_function("floor/to", |b| {
        b.iter(|| {
            bare.encrypt(&mut rng, black_box(&plaintext))
                .expect("encrypt")
        })
    });
    g.bench_function("sotto/fanout", |b| {
        b.iter(|| {
            at_alice
                .encrypt(black_box(&payload), &mut rng)
                .expect("encrypt")
        })
    });
    g.bench_function("floor/fanout", |b| {
        b.iter(|| {
            bare.encrypt(&mut rng, black_box(&plaintext))
                .expect("encrypt")
        })
    });
    g.finish();
}

fn decrypt(c: &mut Criterion) {
    let mut g = c.benchmark_group("sessions_decrypt");
    let mut rng = rng(22);
    let Layer {
        mut at_alice,
        mut bob,
        at_bob,
        ..
    } = layer::established(&mut rng);
    let snapshot = at_bob.to_bytes();
    let bare = active_session(&at_bob).to_bytes();
    let message = parse(
        at_alice
            .encrypt_to(DEVICE, &[0x33; SMALL], &mut rng)
            .expect("encrypt"),
    );
    g.bench_function("sotto/active", |b| {
        b.iter_batched_ref(
            || PeerRecord::from_bytes(&snapshot).expect("restore"),
            |record| {
                record
                    .decrypt(&mut bob, DEVICE, black_box(&message), NOW)
                    .expect("decrypt")
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("floor/active", |b| {
        b.iter_batched_ref(
            || Session::from_bytes(&bare).expect("restore"),
            |session| session.decrypt(black_box(&message)).expect("decrypt"),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn promote(c: &mut Criterion) {
    let mut g = c.benchmark_group("sessions_promote");
    let mut rng = rng(23);
    let Promotion {
        mut bob,
        record,
        message,
        active,
        archived,
    } = layer::promotion(&mut rng);
    g.bench_function("sotto/archived", |b| {
        b.iter_batched_ref(
            || PeerRecord::from_bytes(&record).expect("restore"),
            |record| {
                record
                    .decrypt(&mut bob, DEVICE, black_box(&message), NOW)
                    .expect("decrypt")
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("floor/archived", |b| {
        b.iter_batched_ref(
            || {
                (
                    Session::from_bytes(&active).expect("restore"),
                    Session::from_bytes(&archived).expect("restore"),
                )
            },
            |(a, x)| {
                let refused = a.decrypt(black_box(&message)).is_err();
                (refused, x.decrypt(black_box(&message)).expect("decrypt"))
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, encrypt, decrypt, promote);
criterion_main!(benches);
