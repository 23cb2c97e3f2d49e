//! The primitive floor: each primitive sotto calls, with exactly the key,
//! salt, info, AAD and output lengths sotto uses, through the same crates.
//! `scripts/benchmarks.py` sums these into floors where an operation's
//! group has no floor measured next to it (see `pairwise.rs`).
#![allow(clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::{Signer, SigningKey};
use sotto_bench::SIZES;
use sotto_bench::floor::{self, MESSAGE_AAD_LEN, SIGNED_PREKEY_LEN};
use testkit::model::primitives::L_CHAIN_MESSAGE;

fn hmac_sha256(c: &mut Criterion) {
    let mut g = c.benchmark_group("hmac_sha256");
    let key = [7u8; 32];
    // One half of a chain step: 32-byte chain key, 22-byte label.
    g.bench_function("floor/chain", |b| {
        b.iter(|| floor::hmac(black_box(&key), black_box(L_CHAIN_MESSAGE.as_bytes())))
    });
    for size in SIZES {
        let data = vec![1u8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(format!("floor/{size}"), |b| {
            b.iter(|| floor::hmac(black_box(&key), black_box(&data)))
        });
    }
    g.finish();
}

fn hkdf_sha256(c: &mut Criterion) {
    let mut g = c.benchmark_group("hkdf_sha256");
    let key = [7u8; 32];
    g.bench_function("floor/message_keys", |b| {
        b.iter(|| floor::message_keys(black_box(&[3u8; 16]), black_box(&key)))
    });
    g.bench_function("floor/root", |b| {
        b.iter(|| floor::root(black_box(&key), black_box(&key)))
    });
    g.bench_function("floor/x3dh", |b| {
        b.iter(|| floor::x3dh(black_box(&[9u8; 160])))
    });
    g.bench_function("floor/pqxdh", |b| {
        b.iter(|| floor::pqxdh(black_box(&[9u8; floor::PQXDH_IKM_LEN])))
    });
    g.finish();
}

fn aes256gcm(c: &mut Criterion) {
    // Every message has its own key, so the key schedule belongs to the floor.
    let key = [5u8; 32];
    let nonce = [6u8; 12];
    let aad = [8u8; MESSAGE_AAD_LEN];
    let mut g = c.benchmark_group("aes256gcm_seal");
    for size in SIZES {
        let mut buffer = vec![0u8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(format!("floor/{size}"), |b| {
            b.iter(|| floor::seal(black_box(&key), &nonce, black_box(&aad), &mut buffer))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("aes256gcm_open");
    for size in SIZES {
        let mut ciphertext = vec![0u8; size];
        let tag = floor::seal(&key, &nonce, &aad, &mut ciphertext);
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(format!("floor/{size}"), |b| {
            // Decrypting in place consumes the ciphertext: each iteration
            // gets its own copy, made outside the measurement.
            b.iter_batched_ref(
                || ciphertext.clone(),
                |buffer| floor::open(black_box(&key), &nonce, black_box(&aad), buffer, &tag),
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

/// Not a primitive: the one allocation sotto makes per message (a fresh
/// output buffer, filled once), to read the large-message rows against.
fn output_buffer(c: &mut Criterion) {
    let mut g = c.benchmark_group("output_buffer");
    for size in SIZES {
        let data = vec![1u8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(format!("floor/{size}"), |b| {
            b.iter(|| {
                let mut out = Vec::with_capacity(black_box(size) + 90);
                out.extend_from_slice(black_box(&data));
                out
            })
        });
    }
    g.finish();
}

fn x25519(c: &mut Criterion) {
    let mut g = c.benchmark_group("x25519");
    g.bench_function("floor/keygen", |b| {
        b.iter(|| floor::keygen(black_box([4u8; 32])))
    });
    let (secret, _) = floor::keygen([4u8; 32]);
    let (_, public) = floor::keygen([2u8; 32]);
    g.bench_function("floor/dh", |b| {
        b.iter(|| floor::dh(black_box(&secret), black_box(&public)))
    });
    g.finish();
}

fn ed25519(c: &mut Criterion) {
    let mut g = c.benchmark_group("ed25519");
    let key = SigningKey::from_bytes(&[1u8; 32]);
    let verifying = key.verifying_key();
    let message = [3u8; SIGNED_PREKEY_LEN];
    g.bench_function("floor/sign", |b| {
        b.iter(|| black_box(&key).sign(black_box(&message)))
    });
    let signature = key.sign(&message);
    g.bench_function("floor/verify_strict", |b| {
        b.iter(|| floor::verify(black_box(&verifying), black_box(&message), &signature))
    });
    // A KEM prekey's signature covers its 1568-byte key (SPEC §5.5).
    let kem_message = vec![3u8; floor::KEM_PREKEY_LEN];
    let kem_signature = key.sign(&kem_message);
    g.bench_function("floor/verify_strict_kem_prekey", |b| {
        b.iter(|| {
            floor::verify(
                black_box(&verifying),
                black_box(&kem_message),
                &kem_signature,
            )
        })
    });
    g.finish();
}

/// ML-KEM-1024 as PQXDH uses it (SPEC §2, §7): key generation from the
/// 64-byte seed (the responder, every accept), the FIPS 203 check of a
/// bundle's key (sotto makes it when it decodes the bundle, outside the
/// handshake benchmarks), encapsulation with a checked key (the
/// initiator), decapsulation with an expanded key (the responder), and the
/// KEM binding's SHA-256 over the encoded key (both).
fn ml_kem(c: &mut Criterion) {
    let mut g = c.benchmark_group("ml_kem1024");
    let seed = [7u8; 64];
    g.bench_function("floor/keygen", |b| {
        b.iter(|| floor::kem_keygen(black_box(&seed)))
    });
    let ek_bytes = floor::kem_public(&seed);
    g.bench_function("floor/ek_check", |b| {
        b.iter(|| floor::kem_ek(black_box(&ek_bytes)))
    });
    let ek = floor::kem_ek(&ek_bytes);
    g.bench_function("floor/encapsulate", |b| {
        b.iter(|| floor::kem_encaps(black_box(&ek), black_box(&[9; 32])))
    });
    let dk = floor::kem_keygen(&seed);
    let (ct, _) = floor::kem_encaps(&ek, &[9; 32]);
    g.bench_function("floor/decapsulate", |b| {
        b.iter(|| floor::kem_decaps(black_box(&dk), black_box(&ct)))
    });
    g.bench_function("floor/kem_binding", |b| {
        b.iter(|| floor::kem_binding(black_box(&ek_bytes)))
    });
    g.finish();
}

criterion_group!(
    floor,
    hmac_sha256,
    hkdf_sha256,
    aes256gcm,
    output_buffer,
    x25519,
    ed25519,
    ml_kem
);
criterion_main!(floor);
