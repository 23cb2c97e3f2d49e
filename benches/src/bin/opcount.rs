//! Runs one operation N times after its setup, for instruction counting
//! under `valgrind --tool=callgrind` (load-independent, unlike wall time):
//! `cargo run --release -p sotto-bench --bin opcount -- <op> <n>`;
//! the cost of one operation is (Ir(n) - Ir(0)) / n.
#![allow(clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;

use ed25519_dalek::{Signer, SigningKey};
use sotto::{Device, Session};
use sotto_bench::floor;
use sotto_bench::{Kem, Pair, SMALL, established, handshake_with, policy, rng};
use x25519_dalek::{PublicKey, StaticSecret};

/// The handshake of an operation name: `*_classical` is X3DH under the
/// opt-in, anything else PQXDH with a one-time KEM prekey.
fn kem_of(op: &str) -> Kem {
    if op.ends_with("_classical") {
        Kem::Classical
    } else {
        Kem::OneTime
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let op = args.next().expect("operation");
    let n: usize = args.next().expect("count").parse().expect("number");
    let mut rng = rng(1);
    let plaintext = [0x33; SMALL];
    match op.as_str() {
        "dh" => {
            let secret = StaticSecret::from([4u8; 32]);
            let public = PublicKey::from(&StaticSecret::from([2u8; 32]));
            for _ in 0..n {
                black_box(black_box(&secret).diffie_hellman(black_box(&public)));
            }
        }
        "keygen" => {
            for _ in 0..n {
                black_box(PublicKey::from(&StaticSecret::from(black_box([4u8; 32]))));
            }
        }
        "accept" | "accept_classical" => {
            let kem = kem_of(&op);
            let setup = handshake_with(&mut rng, kem);
            let bob = setup.bob.to_bytes();
            let mut devices: Vec<Device> = (0..n)
                .map(|_| Device::from_bytes(&bob).expect("restore"))
                .collect();
            for d in &mut devices {
                black_box(
                    Session::accept_with_policy(d, &setup.first, policy(kem)).expect("accept"),
                );
            }
        }
        "initiate" | "initiate_classical" => {
            let kem = kem_of(&op);
            let setup = handshake_with(&mut rng, kem);
            for _ in 0..n {
                let bundle = setup.bundle.clone().verify().expect("verify");
                let mut s =
                    Session::initiate_with_policy(&setup.alice, &mut rng, &bundle, policy(kem))
                        .expect("initiate");
                black_box(s.encrypt(&mut rng, &plaintext).expect("encrypt"));
            }
        }
        "kem_keygen" => {
            for _ in 0..n {
                black_box(floor::kem_keygen(black_box(&[7; 64])));
            }
        }
        "kem_encaps" => {
            let ek = floor::kem_ek(&floor::kem_public(&[7; 64]));
            for _ in 0..n {
                black_box(floor::kem_encaps(black_box(&ek), &[9; 32]));
            }
        }
        "kem_decaps" => {
            let dk = floor::kem_keygen(&[7; 64]);
            let (ct, _) = floor::kem_encaps(&floor::kem_ek(&floor::kem_public(&[7; 64])), &[9; 32]);
            for _ in 0..n {
                black_box(floor::kem_decaps(black_box(&dk), black_box(&ct)));
            }
        }
        "sizes" => sizes(),
        "pingpong" => {
            let Pair { mut alice, mut bob } = established(&mut rng);
            for _ in 0..n {
                let m = alice.encrypt(&mut rng, &plaintext).expect("encrypt");
                bob.decrypt(&m).expect("decrypt");
                let m = bob.encrypt(&mut rng, &plaintext).expect("encrypt");
                alice.decrypt(&m).expect("decrypt");
            }
        }
        "encrypt_64k" => {
            let Pair { mut alice, .. } = established(&mut rng);
            let big = vec![0x33; 65536];
            for _ in 0..n {
                black_box(alice.encrypt(&mut rng, &big).expect("encrypt"));
            }
        }
        "seal_64k" => {
            use aes_gcm::aead::{AeadInOut, KeyInit};
            let mut buffer = vec![0x33; 65536];
            let nonce = aes_gcm::Nonce::from([6u8; 12]);
            for _ in 0..n {
                let cipher = aes_gcm::Aes256Gcm::new(&black_box([5u8; 32]).into());
                black_box(
                    cipher
                        .encrypt_inout_detached(&nonce, &[8u8; 186], buffer.as_mut_slice().into())
                        .expect("short"),
                );
            }
        }
        "verify" | "verify_kem" => {
            // A signed prekey's or a KEM prekey's signature input.
            let len = if op == "verify" {
                floor::SIGNED_PREKEY_LEN
            } else {
                floor::KEM_PREKEY_LEN
            };
            let signer = SigningKey::from_bytes(&[1; 32]);
            let data = vec![3u8; len];
            let signature = signer.sign(&data);
            let key = signer.verifying_key();
            for _ in 0..n {
                floor::verify(black_box(&key), black_box(&data), &signature);
            }
        }
        "device_restore" | "device_restore_classical" => {
            let setup = handshake_with(&mut rng, kem_of(&op));
            let bob = setup.bob.to_bytes();
            let devices: Vec<Device> = (0..n)
                .map(|_| Device::from_bytes(&bob).expect("restore"))
                .collect();
            black_box(devices);
        }
        op if op.starts_with("layer_") || op.starts_with("bare_") => layer(op, n),
        _ => panic!("unknown operation {op}"),
    }
}

/// Prints the sizes of the encodings the benchmarks use, one
/// `name<TAB>bytes` line each, for `scripts/benchmarks.py`.
fn sizes() {
    use sotto::group::{GroupId, GroupSender};
    let mut rng = rng(2);
    let key = sotto_bench::storage_key();
    let mut lines: Vec<(String, usize)> = Vec::new();
    for kem in [Kem::OneTime, Kem::LastResort, Kem::Classical] {
        let name = match kem {
            Kem::OneTime => "PQXDH (one-time KEM prekey)",
            Kem::LastResort => "PQXDH (last-resort KEM prekey)",
            Kem::Classical => "X3DH (classical opt-in)",
        };
        let setup = handshake_with(&mut rng, kem);
        lines.push((
            format!("bundle, {name}, with a one-time prekey"),
            setup.bundle.to_bytes().len(),
        ));
        lines.push((
            format!("prekey message, {name}, 100 B plaintext"),
            setup.first.as_bytes().len(),
        ));
    }
    let Pair { mut alice, .. } = established(&mut rng);
    let message = alice.encrypt(&mut rng, &[0x33; SMALL]).expect("encrypt");
    lines.push((
        "ratchet message, 100 B plaintext".into(),
        message.as_bytes().len(),
    ));
    lines.push((
        "session state (PQXDH, established)".into(),
        alice.to_bytes().len(),
    ));
    lines.push((
        "session state sealed".into(),
        alice.seal(&key, b"session", &mut rng).expect("seal").len(),
    ));
    let mut device = Device::generate(&mut rng, 0).expect("device");
    lines.push(("device state, new".into(), device.to_bytes().len()));
    device
        .generate_one_time_prekeys(&mut rng, 100)
        .expect("prekeys");
    device
        .generate_one_time_kem_prekeys(&mut rng, 10)
        .expect("KEM prekeys");
    lines.push((
        "device state, 100 one-time prekeys and 10 one-time KEM prekeys".into(),
        device.to_bytes().len(),
    ));
    lines.push((
        "device state sealed, the same".into(),
        device.seal(&key, b"device", &mut rng).expect("seal").len(),
    ));
    let sender = GroupSender::new(&mut rng, GroupId::from_bytes([9; 32]), &device).expect("sender");
    lines.push((
        "sender key distribution".into(),
        sender.distribution().to_bytes().len(),
    ));
    lines.push(("group sender state".into(), sender.to_bytes().len()));
    for (name, len) in lines {
        println!("{name}\t{len}");
    }
}

/// The session layer against the bare session calls it makes, on the same
/// states (`benches/benches/sessions.rs`): `layer_to`, `layer_fanout` and
/// `bare_encrypt` encrypt n times; `*_decrypt` and `*_promote` do n times
/// what `*_decrypt_base` and `*_promote_base` set up without the decrypt.
fn layer(op: &str, n: usize) {
    use sotto::sessions::PeerRecord;
    use sotto_bench::layer::{self, DEVICE, Layer, Promotion, active_session, framed};
    const NOW: u64 = 1_700_000_000;
    let mut rng = rng(21);
    let payload = [0x33; SMALL];
    let Layer {
        mut at_alice,
        mut bob,
        at_bob,
        ..
    } = layer::established(&mut rng);
    let mut bare_alice = active_session(&at_alice);
    // A restored session computes its sending public key at its first
    // encrypt (once): done here, in the setup, as the record's was.
    bare_alice
        .encrypt(&mut rng, &payload)
        .expect("first encrypt");
    let bare_bob = active_session(&at_bob).to_bytes();
    match op {
        "layer_to" => {
            for _ in 0..n {
                black_box(
                    at_alice
                        .encrypt_to(DEVICE, &payload, &mut rng)
                        .expect("encrypt"),
                );
            }
        }
        "layer_fanout" => {
            for _ in 0..n {
                black_box(at_alice.encrypt(&payload, &mut rng).expect("encrypt"));
            }
        }
        "bare_encrypt" => {
            let plaintext = framed(&payload);
            for _ in 0..n {
                black_box(bare_alice.encrypt(&mut rng, &plaintext).expect("encrypt"));
            }
        }
        "layer_decrypt" | "layer_decrypt_base" | "bare_decrypt" | "bare_decrypt_base" => {
            // n messages in order on the active session, then n decrypts.
            let messages: Vec<_> = (0..n)
                .map(|_| {
                    at_alice
                        .encrypt_to(DEVICE, &payload, &mut rng)
                        .expect("encrypt")
                })
                .collect();
            let mut record = PeerRecord::from_bytes(&at_bob.to_bytes()).expect("restore");
            let mut session = Session::from_bytes(&bare_bob).expect("restore");
            match op {
                "layer_decrypt" => {
                    for m in &messages {
                        black_box(record.decrypt(&mut bob, DEVICE, m, NOW).expect("decrypt"));
                    }
                }
                "bare_decrypt" => {
                    for m in &messages {
                        black_box(session.decrypt(m).expect("decrypt"));
                    }
                }
                _ => {}
            }
            black_box((record, session));
        }
        "layer_promote" | "layer_promote_base" | "bare_promote" | "bare_promote_base" => {
            let Promotion {
                mut bob,
                record,
                message,
                active,
                archived,
            } = layer::promotion(&mut rng);
            let records: Vec<PeerRecord> = (0..n)
                .map(|_| PeerRecord::from_bytes(&record).expect("restore"))
                .collect();
            let sessions: Vec<(Session, Session)> = (0..n)
                .map(|_| {
                    (
                        Session::from_bytes(&active).expect("restore"),
                        Session::from_bytes(&archived).expect("restore"),
                    )
                })
                .collect();
            match op {
                "layer_promote" => {
                    for mut r in records {
                        black_box(r.decrypt(&mut bob, DEVICE, &message, NOW).expect("decrypt"));
                    }
                }
                "bare_promote" => {
                    for (mut a, mut x) in sessions {
                        black_box(a.decrypt(&message).is_err());
                        black_box(x.decrypt(&message).expect("decrypt"));
                    }
                }
                _ => {
                    black_box((records, sessions));
                }
            }
        }
        _ => panic!("unknown operation {op}"),
    }
}
