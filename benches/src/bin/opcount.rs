//! Runs one operation N times after its setup, for instruction counting
//! under `valgrind --tool=callgrind` (load-independent, unlike wall time):
//! `cargo run --release -p sotto-bench --bin opcount -- <op> <n>`;
//! the cost of one operation is (Ir(n) - Ir(0)) / n.
#![allow(clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;

use sotto::{Device, Session};
use sotto_bench::{Pair, SMALL, established, handshake, rng};
use x25519_dalek::{PublicKey, StaticSecret};

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
        "accept" => {
            let setup = handshake(&mut rng);
            let bob = setup.bob.to_bytes();
            let mut devices: Vec<Device> = (0..n)
                .map(|_| Device::from_bytes(&bob).expect("restore"))
                .collect();
            for d in &mut devices {
                black_box(Session::accept(d, &setup.first).expect("accept"));
            }
        }
        "initiate" => {
            let setup = handshake(&mut rng);
            for _ in 0..n {
                let bundle = setup.bundle.clone().verify().expect("verify");
                let mut s = Session::initiate(&setup.alice, &mut rng, &bundle).expect("initiate");
                black_box(s.encrypt(&mut rng, &plaintext).expect("encrypt"));
            }
        }
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
        "verify" => {
            let setup = handshake(&mut rng);
            for _ in 0..n {
                black_box(setup.bundle.clone().verify().expect("verify"));
            }
        }
        "device_restore" => {
            let setup = handshake(&mut rng);
            let bob = setup.bob.to_bytes();
            let devices: Vec<Device> = (0..n)
                .map(|_| Device::from_bytes(&bob).expect("restore"))
                .collect();
            black_box(devices);
        }
        _ => panic!("unknown operation {op}"),
    }
}
