//! The pairwise hot path: sotto's Double Ratchet, PQXDH and classical
//! X3DH, and (with the `vodozemac` feature) Olm doing the same work, in the
//! same groups.
//!
//! Each group also measures the operation's floor (the primitives it cannot
//! avoid, see benches/NOTES.md) right next to it, so that load changes on a
//! shared machine move both alike.
//!
//! Decrypting consumes state (a message decrypts once), so decrypt
//! benchmarks restore the receiver from a snapshot in an untimed setup.
#![allow(
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sotto::{Device, Message, Session};
use sotto_bench::floor::{self, MESSAGE_AAD_LEN, SIGNED_PREKEY_LEN};
use sotto_bench::{
    Kem, Pair, SIZES, SKIPPED, SMALL, established, handshake_with, parse, policy, rng, storage_key,
};

const CHAIN_KEY: [u8; 32] = [7; 32];
const AAD: [u8; MESSAGE_AAD_LEN] = [8; MESSAGE_AAD_LEN];

fn encrypt(c: &mut Criterion) {
    let mut g = c.benchmark_group("encrypt");
    let mut rng = rng(1);
    let Pair { mut alice, .. } = established(&mut rng);
    #[cfg(feature = "vodozemac")]
    let (mut olm_alice, _) = sotto_bench::olm::established();
    for size in SIZES {
        let plaintext = vec![0x33; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(format!("sotto/{size}"), |b| {
            b.iter(|| {
                alice
                    .encrypt(&mut rng, black_box(&plaintext))
                    .expect("encrypt")
            })
        });
        let mut buffer = plaintext.clone();
        g.bench_function(format!("floor/{size}"), |b| {
            b.iter(|| floor::send(black_box(&CHAIN_KEY), &AAD, &mut buffer))
        });
        // Raw AES-256-GCM alone, for the large-message throughput goal.
        g.bench_function(format!("aes256gcm/{size}"), |b| {
            b.iter(|| floor::seal(black_box(&CHAIN_KEY), &[6; 12], &AAD, &mut buffer))
        });
        #[cfg(feature = "vodozemac")]
        g.bench_function(format!("vodozemac/{size}"), |b| {
            b.iter(|| olm_alice.encrypt(black_box(&plaintext)).expect("encrypt"))
        });
    }
    g.finish();
}

fn decrypt(c: &mut Criterion) {
    let mut g = c.benchmark_group("decrypt");
    let mut rng = rng(2);
    let Pair { mut alice, bob, .. } = established(&mut rng);
    let snapshot = bob.to_bytes();
    #[cfg(feature = "vodozemac")]
    let (mut olm_alice, olm_bob) = sotto_bench::olm::established();
    for size in SIZES {
        let plaintext = vec![0x33; size];
        let message = parse(alice.encrypt(&mut rng, &plaintext).expect("encrypt"));
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(format!("sotto/{size}"), |b| {
            b.iter_batched_ref(
                || Session::from_bytes(&snapshot).expect("restore"),
                |bob| bob.decrypt(black_box(&message)).expect("decrypt"),
                BatchSize::LargeInput,
            )
        });
        let mut ciphertext = plaintext.clone();
        let tag = floor::send(&CHAIN_KEY, &AAD, &mut ciphertext);
        g.bench_function(format!("floor/{size}"), |b| {
            b.iter_batched_ref(
                || ciphertext.clone(),
                |buffer| floor::receive(black_box(&CHAIN_KEY), &AAD, buffer, &tag),
                BatchSize::LargeInput,
            )
        });
        #[cfg(feature = "vodozemac")]
        {
            let message = olm_alice.encrypt(&plaintext).expect("encrypt");
            g.bench_function(format!("vodozemac/{size}"), |b| {
                b.iter_batched_ref(
                    || vodozemac::olm::Session::from_pickle(olm_bob.pickle()),
                    |bob| bob.decrypt(black_box(&message)).expect("decrypt"),
                    BatchSize::LargeInput,
                )
            });
        }
    }
    g.finish();
}

/// One round trip per iteration, each message on a new ratchet key: the
/// sender generates a ratchet key pair and does one DH, the receiver one DH.
fn pingpong(c: &mut Criterion) {
    let mut g = c.benchmark_group("pingpong");
    let mut rng = rng(3);
    let Pair { mut alice, mut bob } = established(&mut rng);
    let plaintext = [0x33; SMALL];
    g.bench_function("sotto/round_trip", |b| {
        b.iter(|| {
            let m = alice.encrypt(&mut rng, &plaintext).expect("encrypt");
            bob.decrypt(black_box(&m)).expect("decrypt");
            let m = bob.encrypt(&mut rng, &plaintext).expect("encrypt");
            alice.decrypt(black_box(&m)).expect("decrypt")
        })
    });
    // Per message: the sender's new ratchet key pair and DH, the receiver's
    // DH, a root step on each side, and the message itself.
    let (peer_secret, peer_public) = floor::keygen([2; 32]);
    let mut buffer = plaintext;
    let turn = |buffer: &mut [u8; SMALL]| {
        let (secret, public) = floor::keygen(black_box([4; 32]));
        let sent = floor::root(&CHAIN_KEY, &floor::dh(&secret, &peer_public));
        let received = floor::root(&CHAIN_KEY, &floor::dh(&peer_secret, &public));
        let tag = floor::send(&CHAIN_KEY, &AAD, buffer);
        floor::receive(&CHAIN_KEY, &AAD, buffer, &tag);
        (sent, received)
    };
    g.bench_function("floor/round_trip", |b| {
        b.iter(|| (turn(&mut buffer), turn(&mut buffer)))
    });
    // The reference for a turn: one key generation and two DH.
    let asymmetric = || {
        let (secret, public) = floor::keygen(black_box([4; 32]));
        (
            floor::dh(&secret, &peer_public),
            floor::dh(&peer_secret, &public),
        )
    };
    g.bench_function("floor/asymmetric", |b| {
        b.iter(|| (asymmetric(), asymmetric()))
    });
    #[cfg(feature = "vodozemac")]
    {
        let (mut alice, mut bob) = sotto_bench::olm::established();
        g.bench_function("vodozemac/round_trip", |b| {
            b.iter(|| {
                let m = alice.encrypt(plaintext).expect("encrypt");
                bob.decrypt(black_box(&m)).expect("decrypt");
                let m = bob.encrypt(plaintext).expect("encrypt");
                alice.decrypt(black_box(&m)).expect("decrypt")
            })
        });
    }
    g.finish();
}

/// Stand-ins for the floors' keys: one signer for the bundle's signatures,
/// one X25519 key pair every DH is made with.
struct FloorKeys {
    verifying: ed25519_dalek::VerifyingKey,
    spk_data: [u8; SIGNED_PREKEY_LEN],
    spk_signature: ed25519_dalek::Signature,
    kem_data: Vec<u8>,
    kem_signature: ed25519_dalek::Signature,
    secret: x25519_dalek::StaticSecret,
    public: x25519_dalek::PublicKey,
}

impl FloorKeys {
    fn new() -> Self {
        use ed25519_dalek::Signer;
        let signer = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
        let spk_data = [3u8; SIGNED_PREKEY_LEN];
        let kem_data = vec![3u8; floor::KEM_PREKEY_LEN];
        let (secret, _) = floor::keygen([2; 32]);
        let (_, public) = floor::keygen([6; 32]);
        Self {
            verifying: signer.verifying_key(),
            spk_signature: signer.sign(&spk_data),
            spk_data,
            kem_signature: signer.sign(&kem_data),
            kem_data,
            secret,
            public,
        }
    }

    /// DH1-DH4 of one side, into the KDF input after the 32 bytes of 0xFF.
    fn four_dh(&self, secret: &x25519_dalek::StaticSecret, ikm: &mut [u8]) {
        for part in ikm.chunks_exact_mut(32).skip(1).take(4) {
            part.copy_from_slice(&floor::dh(secret, black_box(&self.public)));
        }
    }
}

/// The associated data of a first message: the session AD (96 bytes),
/// then every byte of the prekey message before its ciphertext.
fn first_message_aad(first: &sotto::PreKeyMessage) -> Vec<u8> {
    vec![8u8; 96 + first.as_bytes().len() - (SMALL + 16)]
}

/// PQXDH with a one-time prekey and a one-time KEM prekey. Initiate:
/// verify the bundle (signed prekey and KEM prekey signatures), the key
/// agreement, the first encrypt (100 B). Accept: the key agreement and the
/// first decrypt, from the parsed prekey message. `floor/*` is what each
/// cannot avoid with these crates (benches/NOTES.md), measured next to it.
fn pqxdh(c: &mut Criterion) {
    let mut g = c.benchmark_group("pqxdh");
    let mut rng = rng(7);
    let setup = handshake_with(&mut rng, Kem::OneTime);
    let plaintext = [0x41; SMALL];
    g.bench_function("sotto/initiate", |b| {
        b.iter(|| {
            let bundle = black_box(&setup.bundle).clone().verify().expect("verify");
            let mut session = Session::initiate(&setup.alice, &mut rng, &bundle).expect("initiate");
            session.encrypt(&mut rng, &plaintext).expect("encrypt")
        })
    });
    let keys = FloorKeys::new();
    let seed = [7u8; 64];
    let ek_bytes = floor::kem_public(&seed);
    let ek = floor::kem_ek(&ek_bytes);
    let aad = first_message_aad(&setup.first);
    let mut buffer = plaintext;
    g.bench_function("floor/initiate", |b| {
        b.iter(|| {
            floor::verify(
                &keys.verifying,
                black_box(&keys.spk_data),
                &keys.spk_signature,
            );
            floor::verify(
                &keys.verifying,
                black_box(&keys.kem_data),
                &keys.kem_signature,
            );
            let (base, _) = floor::keygen(black_box([4; 32]));
            let mut ikm = [0xffu8; floor::PQXDH_IKM_LEN];
            keys.four_dh(&base, &mut ikm);
            let (_ct, ss) = floor::kem_encaps(black_box(&ek), &[9; 32]);
            ikm[160..].copy_from_slice(&ss);
            let kem_binding = floor::kem_binding(black_box(&ek_bytes));
            let secret_key = floor::pqxdh(&ikm);
            // The first encrypt: a fresh ratchet key, a DH, a root step.
            let (ratchet, _) = floor::keygen(black_box([5; 32]));
            let root = floor::root(&secret_key, &floor::dh(&ratchet, &keys.public));
            (
                kem_binding,
                root,
                floor::send(&CHAIN_KEY, &aad, &mut buffer),
            )
        })
    });
    let bob = setup.bob.to_bytes();
    g.bench_function("sotto/accept", |b| {
        b.iter_batched_ref(
            || Device::from_bytes(&bob).expect("restore"),
            |bob| Session::accept(bob, black_box(&setup.first)).expect("accept"),
            BatchSize::LargeInput,
        )
    });
    let ct = *setup.first.kem_ciphertext().expect("a KEM ciphertext");
    let mut ciphertext = plaintext;
    let tag = floor::send(&CHAIN_KEY, &aad, &mut ciphertext);
    g.bench_function("floor/accept", |b| {
        b.iter_batched_ref(
            || ciphertext,
            |buffer| {
                // The stored seed expanded, its key encoded for the KEM
                // binding, the ciphertext decapsulated.
                let dk = floor::kem_keygen(black_box(&seed));
                let kem_binding = floor::kem_binding(&floor::kem_ek_bytes(&dk));
                let mut ikm = [0xffu8; floor::PQXDH_IKM_LEN];
                ikm[160..].copy_from_slice(&floor::kem_decaps(&dk, black_box(&ct)));
                keys.four_dh(&keys.secret, &mut ikm);
                let secret_key = floor::pqxdh(&ikm);
                let root = floor::root(&secret_key, &floor::dh(&keys.secret, &keys.public));
                floor::receive(&CHAIN_KEY, &aad, buffer, &tag);
                (kem_binding, root)
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// The classical handshake, X3DH under the per-call opt-in (SPEC §7.1), with
/// a one-time prekey: the same operations as [`pqxdh`] without the KEM, its
/// floor, the asymmetric reference for the whole handshake, and
/// (with the `vodozemac` feature) Olm's.
fn x3dh_classical(c: &mut Criterion) {
    let mut g = c.benchmark_group("x3dh_classical");
    let mut rng = rng(4);
    let setup = handshake_with(&mut rng, Kem::Classical);
    let allowed = policy(Kem::Classical);
    let plaintext = [0x41; SMALL];
    g.bench_function("sotto/initiate", |b| {
        b.iter(|| {
            let bundle = black_box(&setup.bundle).clone().verify().expect("verify");
            let mut session =
                Session::initiate_with_policy(&setup.alice, &mut rng, &bundle, allowed)
                    .expect("initiate");
            session.encrypt(&mut rng, &plaintext).expect("encrypt")
        })
    });
    let keys = FloorKeys::new();
    let aad = first_message_aad(&setup.first);
    let mut buffer = plaintext;
    g.bench_function("floor/initiate", |b| {
        b.iter(|| {
            floor::verify(
                &keys.verifying,
                black_box(&keys.spk_data),
                &keys.spk_signature,
            );
            let (base, _) = floor::keygen(black_box([4; 32]));
            let mut ikm = [0xffu8; 160];
            keys.four_dh(&base, &mut ikm);
            let secret_key = floor::x3dh(&ikm);
            let (ratchet, _) = floor::keygen(black_box([5; 32]));
            let root = floor::root(&secret_key, &floor::dh(&ratchet, &keys.public));
            (root, floor::send(&CHAIN_KEY, &aad, &mut buffer))
        })
    });
    let bob = setup.bob.to_bytes();
    g.bench_function("sotto/accept", |b| {
        b.iter_batched_ref(
            || Device::from_bytes(&bob).expect("restore"),
            |bob| {
                Session::accept_with_policy(bob, black_box(&setup.first), allowed).expect("accept")
            },
            BatchSize::LargeInput,
        )
    });
    let mut ciphertext = plaintext;
    let tag = floor::send(&CHAIN_KEY, &aad, &mut ciphertext);
    g.bench_function("floor/accept", |b| {
        b.iter_batched_ref(
            || ciphertext,
            |buffer| {
                let mut ikm = [0xffu8; 160];
                keys.four_dh(&keys.secret, &mut ikm);
                let secret_key = floor::x3dh(&ikm);
                let root = floor::root(&secret_key, &floor::dh(&keys.secret, &keys.public));
                floor::receive(&CHAIN_KEY, &aad, buffer, &tag);
                root
            },
            BatchSize::LargeInput,
        )
    });
    // The reference for the whole classical handshake: the
    // signature check, two key generations and ten DH, nothing symmetric.
    g.bench_function("floor/asymmetric", |b| {
        b.iter(|| {
            floor::verify(
                &keys.verifying,
                black_box(&keys.spk_data),
                &keys.spk_signature,
            );
            let (a, _) = floor::keygen(black_box([4; 32]));
            let (b2, _) = floor::keygen(black_box([5; 32]));
            let mut out = [0u8; 32];
            for secret in [&a, &a, &a, &a, &b2] {
                out = floor::dh(secret, black_box(&keys.public));
            }
            for _ in 0..5 {
                out = floor::dh(&keys.secret, black_box(&keys.public));
            }
            out
        })
    });
    #[cfg(feature = "vodozemac")]
    {
        use vodozemac::olm::{Account, OlmMessage, SessionConfig};
        let mut setup = sotto_bench::olm::handshake();
        let one_time = sotto_bench::olm::one_time_key(&mut setup.bob);
        let bob_key = setup.bob.curve25519_key();
        g.bench_function("vodozemac/initiate", |b| {
            b.iter(|| {
                let mut session = setup
                    .alice
                    .create_outbound_session(SessionConfig::version_1(), bob_key, one_time)
                    .expect("outbound");
                session.encrypt(plaintext).expect("encrypt")
            })
        });
        let OlmMessage::PreKey(first) = &setup.first else {
            panic!("the first message is a pre-key message");
        };
        let alice_key = setup.alice.curve25519_key();
        g.bench_function("vodozemac/accept", |b| {
            b.iter_batched_ref(
                || Account::from_pickle(setup.bob.pickle()),
                |bob| {
                    bob.create_inbound_session(
                        SessionConfig::version_1(),
                        alice_key,
                        black_box(first),
                    )
                    .expect("inbound")
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

/// Decrypts a message whose key was stored when a later one arrived first.
fn skipped(c: &mut Criterion) {
    let mut g = c.benchmark_group("skipped_decrypt");
    let mut rng = rng(5);
    let Pair { mut alice, mut bob } = established(&mut rng);
    let plaintext = [0x33; SMALL];
    let messages: Vec<Message> = (0..=SKIPPED)
        .map(|_| alice.encrypt(&mut rng, &plaintext).expect("encrypt"))
        .collect();
    let (last, early) = (&messages[SKIPPED as usize], &messages[SKIPPED as usize / 2]);
    bob.decrypt(last).expect("decrypt");
    let snapshot = bob.to_bytes();
    g.bench_function(format!("sotto/{SKIPPED}"), |b| {
        b.iter_batched_ref(
            || Session::from_bytes(&snapshot).expect("restore"),
            |bob| bob.decrypt(black_box(early)).expect("decrypt"),
            BatchSize::LargeInput,
        )
    });
    let mut ciphertext = plaintext;
    let (key, nonce) = floor::message_keys(&[3; 16], &CHAIN_KEY);
    let tag = floor::seal(&key, &nonce, &AAD, &mut ciphertext);
    g.bench_function(format!("floor/{SKIPPED}"), |b| {
        b.iter_batched_ref(
            || ciphertext,
            |buffer| {
                let (key, nonce) = floor::message_keys(&[3; 16], black_box(&CHAIN_KEY));
                floor::open(&key, &nonce, &AAD, buffer, &tag)
            },
            BatchSize::LargeInput,
        )
    });
    #[cfg(feature = "vodozemac")]
    {
        let (mut alice, mut bob) = sotto_bench::olm::established();
        let messages: Vec<_> = (0..=SKIPPED)
            .map(|_| alice.encrypt(plaintext).expect("encrypt"))
            .collect();
        let (last, early) = (&messages[SKIPPED as usize], &messages[SKIPPED as usize / 2]);
        bob.decrypt(last).expect("decrypt");
        g.bench_function(format!("vodozemac/{SKIPPED}"), |b| {
            b.iter_batched_ref(
                || vodozemac::olm::Session::from_pickle(bob.pickle()),
                |bob| bob.decrypt(black_box(early)).expect("decrypt"),
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

/// Save and restore an established session (with no skipped keys).
fn persist(c: &mut Criterion) {
    let mut g = c.benchmark_group("session_state");
    let mut rng = rng(6);
    let Pair { alice, .. } = established(&mut rng);
    let key = storage_key();
    let plain = alice.to_bytes();
    let sealed = alice.seal(&key, b"session", &mut rng).expect("seal");
    g.throughput(Throughput::Bytes(plain.len() as u64));
    g.bench_function("sotto/to_bytes", |b| {
        b.iter(|| black_box(&alice).to_bytes())
    });
    g.bench_function("sotto/from_bytes", |b| {
        b.iter(|| Session::from_bytes(black_box(&plain)).expect("restore"))
    });
    g.throughput(Throughput::Bytes(sealed.len() as u64));
    g.bench_function("sotto/seal", |b| {
        b.iter(|| {
            black_box(&alice)
                .seal(&key, b"session", &mut rng)
                .expect("seal")
        })
    });
    g.bench_function("sotto/unseal", |b| {
        b.iter(|| Session::unseal(black_box(&sealed), &key, b"session").expect("unseal"))
    });
    #[cfg(feature = "vodozemac")]
    {
        use vodozemac::olm::{Session as OlmSession, SessionPickle};
        let (alice, _) = sotto_bench::olm::established();
        let key = [0x5a; 32];
        let sealed = alice.pickle().encrypt(&key);
        g.throughput(Throughput::Bytes(sealed.len() as u64));
        g.bench_function("vodozemac/seal", |b| {
            b.iter(|| black_box(&alice).pickle().encrypt(&key))
        });
        g.bench_function("vodozemac/unseal", |b| {
            b.iter(|| {
                OlmSession::from_pickle(
                    SessionPickle::from_encrypted(black_box(&sealed), &key).expect("unseal"),
                )
            })
        });
    }
    g.finish();
}

criterion_group!(
    pairwise,
    encrypt,
    decrypt,
    pingpong,
    pqxdh,
    x3dh_classical,
    skipped,
    persist
);
criterion_main!(pairwise);
