//! The primitive floor: each primitive sotto calls, with exactly the key,
//! salt, info, AAD and output lengths sotto uses, through the same crates.
//! `scripts/benchmarks.py` sums these into the floor of each sotto operation.
#![allow(clippy::expect_used, missing_docs)]

use std::hint::black_box;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::{Signer, SigningKey};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use sotto_bench::SIZES;
use x25519_dalek::{PublicKey, StaticSecret};

/// AEAD associated data of a pairwise message: the session AD (two 64-byte
/// identities) and the 58-byte ratchet header.
const MESSAGE_AAD_LEN: usize = 128 + 58;
/// Signed prekey signature input: 22-byte label, DH identity, id, key.
const SIGNED_PREKEY_LEN: usize = 22 + 32 + 4 + 32;

fn hmac_once(key: &[u8; 32], data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn hkdf<const N: usize>(salt: &[u8], ikm: &[u8], info: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, &mut out)
        .expect("short output");
    out
}

fn hmac_sha256(c: &mut Criterion) {
    let mut g = c.benchmark_group("hmac_sha256");
    let key = [7u8; 32];
    // One half of a chain step: 32-byte chain key, 22-byte label.
    g.bench_function("floor/chain", |b| {
        b.iter(|| hmac_once(black_box(&key), black_box(b"sotto v1 chain message")))
    });
    for size in SIZES {
        let data = vec![1u8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(format!("floor/{size}"), |b| {
            b.iter(|| hmac_once(black_box(&key), black_box(&data)))
        });
    }
    g.finish();
}

fn hkdf_sha256(c: &mut Criterion) {
    let mut g = c.benchmark_group("hkdf_sha256");
    let key = [7u8; 32];
    // Per message: 16-byte salt, message key, 21-byte info, 44 bytes out.
    g.bench_function("floor/message_keys", |b| {
        b.iter(|| {
            hkdf::<44>(
                black_box(&[3u8; 16]),
                black_box(&key),
                black_box(b"sotto v1 message keys"),
            )
        })
    });
    // Per DH ratchet step: root key salt, DH output, 13-byte info, 64 out.
    g.bench_function("floor/root", |b| {
        b.iter(|| {
            hkdf::<64>(
                black_box(&key),
                black_box(&key),
                black_box(b"sotto v1 root"),
            )
        })
    });
    // Per X3DH side: zero salt, 0xFF prefix and four DH outputs, 32 out.
    let ikm = [9u8; 5 * 32];
    g.bench_function("floor/x3dh", |b| {
        b.iter(|| {
            hkdf::<32>(
                black_box(&[0u8; 32]),
                black_box(&ikm),
                black_box(b"sotto v1 x3dh"),
            )
        })
    });
    g.finish();
}

fn aes256gcm(c: &mut Criterion) {
    // Every message has its own key, so the key schedule belongs to the floor.
    let key = [5u8; 32];
    let nonce = Nonce::from([6u8; 12]);
    let aad = [8u8; MESSAGE_AAD_LEN];
    let mut g = c.benchmark_group("aes256gcm_seal");
    for size in SIZES {
        let mut buffer = vec![0u8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(format!("floor/{size}"), |b| {
            b.iter(|| {
                let cipher = Aes256Gcm::new(black_box(&key.into()));
                cipher
                    .encrypt_inout_detached(&nonce, black_box(&aad), buffer.as_mut_slice().into())
                    .expect("short message")
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("aes256gcm_open");
    for size in SIZES {
        let mut ciphertext = vec![0u8; size];
        let tag: Tag = Aes256Gcm::new(&key.into())
            .encrypt_inout_detached(&nonce, &aad, ciphertext.as_mut_slice().into())
            .expect("short message");
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(format!("floor/{size}"), |b| {
            // Decrypting in place consumes the ciphertext: each iteration
            // gets its own copy, made outside the measurement.
            b.iter_batched_ref(
                || ciphertext.clone(),
                |buffer| {
                    Aes256Gcm::new(black_box(&key.into()))
                        .decrypt_inout_detached(
                            &nonce,
                            black_box(&aad),
                            buffer.as_mut_slice().into(),
                            &tag,
                        )
                        .expect("authentic")
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

fn x25519(c: &mut Criterion) {
    let mut g = c.benchmark_group("x25519");
    g.bench_function("floor/keygen", |b| {
        b.iter(|| PublicKey::from(&StaticSecret::from(black_box([4u8; 32]))))
    });
    let secret = StaticSecret::from([4u8; 32]);
    let public = PublicKey::from(&StaticSecret::from([2u8; 32]));
    g.bench_function("floor/dh", |b| {
        b.iter(|| black_box(&secret).diffie_hellman(black_box(&public)))
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
        b.iter(|| {
            black_box(&verifying)
                .verify_strict(black_box(&message), black_box(&signature))
                .expect("valid")
        })
    });
    g.finish();
}

criterion_group!(floor, hmac_sha256, hkdf_sha256, aes256gcm, x25519, ed25519);
criterion_main!(floor);
