//! Group messages: sotto's sender keys and (with the `vodozemac` feature)
//! Megolm, each next to its floor.
#![allow(clippy::expect_used, clippy::indexing_slicing, missing_docs)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use ed25519_dalek::{Signer, SigningKey};
use sotto::group::{GroupReceiver, MAX_GROUP_JUMP};
use sotto_bench::floor;
use sotto_bench::group::{message_at, pair};
use sotto_bench::{SMALL, rng};
use testkit::model::group::message::{HEADER_LEN, L_MESSAGE_KEYS, L_SIGNATURE};
use testkit::model::group::ratchet::{L_KEY, L_STEP};

/// Signed bytes: label, header, ciphertext, tag (SPEC §15.5).
const SIGNED_LEN: usize = L_SIGNATURE.len() + HEADER_LEN + SMALL + 16;
const LEVEL: [u8; 32] = [7; 32];

/// Per message: the message key (one SHA-256 of the last level), the
/// ratchet step (one SHA-256), the key expansion, the AEAD.
fn symmetric_send(buffer: &mut [u8]) -> aes_gcm::Tag {
    let message_key = floor::sha256(&[L_KEY.as_bytes(), black_box(&LEVEL)]);
    let _next = floor::sha256(&[L_STEP.as_bytes(), &LEVEL]);
    let okm = floor::hkdf::<44>(&[3; 16], &message_key, L_MESSAGE_KEYS.as_bytes());
    let (key, nonce) = okm.split_at(32);
    floor::seal(
        key.try_into().expect("32"),
        nonce.try_into().expect("12"),
        &[8; HEADER_LEN],
        buffer,
    )
}

fn symmetric_receive(buffer: &mut [u8], tag: &aes_gcm::Tag) {
    let message_key = floor::sha256(&[L_KEY.as_bytes(), black_box(&LEVEL)]);
    let _next = floor::sha256(&[L_STEP.as_bytes(), &LEVEL]);
    let okm = floor::hkdf::<44>(&[3; 16], &message_key, L_MESSAGE_KEYS.as_bytes());
    let (key, nonce) = okm.split_at(32);
    floor::open(
        key.try_into().expect("32"),
        nonce.try_into().expect("12"),
        &[8; HEADER_LEN],
        buffer,
        tag,
    );
}

fn group_encrypt(c: &mut Criterion) {
    let mut g = c.benchmark_group("group_encrypt");
    let mut rng = rng(7);
    let (mut sender, _) = pair(&mut rng);
    let plaintext = [0x33; SMALL];
    g.bench_function(format!("sotto/{SMALL}"), |b| {
        b.iter(|| {
            sender
                .encrypt(&mut rng, black_box(&plaintext))
                .expect("encrypt")
        })
    });
    let signer = SigningKey::from_bytes(&[1; 32]);
    let mut buffer = plaintext;
    g.bench_function(format!("floor/{SMALL}"), |b| {
        b.iter(|| {
            let tag = symmetric_send(&mut buffer);
            (tag, signer.sign(black_box(&[5u8; SIGNED_LEN])))
        })
    });
    #[cfg(feature = "vodozemac")]
    {
        use vodozemac::megolm::{GroupSession, SessionConfig};
        let mut outbound = GroupSession::new(SessionConfig::version_1());
        g.bench_function(format!("vodozemac/{SMALL}"), |b| {
            b.iter(|| outbound.encrypt(black_box(plaintext)))
        });
    }
    g.finish();
}

fn group_decrypt(c: &mut Criterion) {
    let mut g = c.benchmark_group("group_decrypt");
    let mut rng = rng(8);
    let (mut sender, receiver) = pair(&mut rng);
    let plaintext = [0x33; SMALL];
    let snapshot = receiver.to_bytes();
    let message = sender.encrypt(&mut rng, &plaintext).expect("encrypt");
    g.bench_function(format!("sotto/{SMALL}"), |b| {
        b.iter_batched_ref(
            || GroupReceiver::from_bytes(&snapshot).expect("restore"),
            |r| r.decrypt(black_box(&message)).expect("decrypt"),
            BatchSize::LargeInput,
        )
    });
    let signer = SigningKey::from_bytes(&[1; 32]);
    let verifying = signer.verifying_key();
    let signed = [5u8; SIGNED_LEN];
    let signature = signer.sign(&signed);
    let mut ciphertext = plaintext;
    let tag = symmetric_send(&mut ciphertext);
    g.bench_function(format!("floor/{SMALL}"), |b| {
        b.iter_batched_ref(
            || ciphertext,
            |buffer| {
                floor::verify(&verifying, black_box(&signed), &signature);
                symmetric_receive(buffer, &tag)
            },
            BatchSize::LargeInput,
        )
    });
    #[cfg(feature = "vodozemac")]
    {
        use vodozemac::megolm::{GroupSession, InboundGroupSession, SessionConfig};
        let mut outbound = GroupSession::new(SessionConfig::version_1());
        let inbound = InboundGroupSession::new(&outbound.session_key(), SessionConfig::version_1());
        let message = outbound.encrypt(plaintext);
        g.bench_function(format!("vodozemac/{SMALL}"), |b| {
            b.iter_batched_ref(
                || InboundGroupSession::from_pickle(inbound.pickle()),
                |r| r.decrypt(black_box(&message)).expect("decrypt"),
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

/// A receiver at index 0 decrypts one message at a later index: in order
/// (0), after 10,000 messages it never saw, after the largest jump allowed
/// (`MAX_GROUP_JUMP`), and after the jump within it that hashes the most
/// (to index 2^24 - 1: fifteen steps on six levels).
fn group_jump(c: &mut Criterion) {
    let mut g = c.benchmark_group("group_jump");
    let mut rng = rng(9);
    let (sender, receiver) = pair(&mut rng);
    let plaintext = [0x33; SMALL];
    let snapshot = receiver.to_bytes();
    for (name, target) in [
        ("0", 0),
        ("10000", 10_000),
        ("max", MAX_GROUP_JUMP),
        ("worst", MAX_GROUP_JUMP - 1),
    ] {
        let message = message_at(&mut rng, &sender, target, &plaintext);
        g.bench_function(format!("sotto/{name}"), |b| {
            b.iter_batched_ref(
                || GroupReceiver::from_bytes(&snapshot).expect("restore"),
                |r| r.decrypt(black_box(&message)).expect("decrypt"),
                BatchSize::LargeInput,
            )
        });
    }
    #[cfg(feature = "vodozemac")]
    {
        use vodozemac::megolm::{GroupSession, InboundGroupSession, SessionConfig};
        let mut outbound = GroupSession::new(SessionConfig::version_1());
        let inbound = InboundGroupSession::new(&outbound.session_key(), SessionConfig::version_1());
        for _ in 0..10_000 {
            let _ = outbound.encrypt(plaintext);
        }
        let message = outbound.encrypt(plaintext);
        g.bench_function("vodozemac/10000", |b| {
            b.iter_batched_ref(
                || InboundGroupSession::from_pickle(inbound.pickle()),
                |r| r.decrypt(black_box(&message)).expect("decrypt"),
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group!(group, group_encrypt, group_decrypt, group_jump);
criterion_main!(group);
