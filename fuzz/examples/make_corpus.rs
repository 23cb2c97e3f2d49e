//! Writes the seed corpora, made of real messages and states, to
//! `fuzz/seeds/<target>/` (committed; the fixtures are deterministic, so a
//! rerun writes the same bytes). Run from the repository root:
//! `cargo run --manifest-path fuzz/Cargo.toml --example make_corpus`.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;

use sotto::{Device, IdentityKey, OneTimePreKey, PreKeyBundle};
use sotto_fuzz::{fixture, rng};

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join(target);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(name), bytes).unwrap();
}

fn main() {
    let f = fixture();
    let messages: Vec<&[u8]> = f
        .to_alice
        .iter()
        .chain(&f.to_bob)
        .map(|p| p.bytes.as_slice())
        .collect();
    for (i, m) in messages.iter().enumerate() {
        write("parse_message", &format!("message-{i}"), m);
        write("decrypt", &format!("message-{i}"), m);
    }
    let bundle = PreKeyBundle::from_bytes(&f.bundle).unwrap();
    let no_one_time = PreKeyBundle::new(*bundle.identity(), *bundle.signed_prekey(), None);
    write("parse_keys", "bundle", &f.bundle);
    write("parse_keys", "bundle-no-one-time", &no_one_time.to_bytes());
    write("parse_keys", "identity", &bundle.identity().to_bytes());
    write(
        "parse_keys",
        "signed-prekey",
        &bundle.signed_prekey().to_bytes(),
    );
    let one_time: OneTimePreKey = *bundle.one_time_prekey().unwrap();
    write("parse_keys", "one-time-prekey", &one_time.to_bytes());
    let fresh = Device::generate(&mut rng(3));
    let identity: IdentityKey = *fresh.identity_key();
    write("parse_keys", "identity-fresh", &identity.to_bytes());
    write("unseal", "session", &f.sealed_session);
    write("unseal", "device", &f.sealed_device);
    for (name, state) in [
        ("alice", &f.alice),
        ("bob", &f.bob),
        ("alice-device", &f.alice_device),
        ("bob-device", &f.bob_device),
    ] {
        write("restore_use", name, state);
    }
    write("restore_use", "fresh-device", &fresh.to_bytes());
    // Conversations: a byte pattern that sends and delivers in turn, and a
    // pseudo-random one.
    let mut pattern = Vec::new();
    for i in 0..200u8 {
        pattern.extend_from_slice(&[i % 9, i % 3, (i / 3) % 2, 40, 50, 60, 70]);
    }
    write("conversation", "turns", &pattern);
    let mut x: u32 = 0x1234_5678;
    let noise: Vec<u8> = (0..2048)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_be_bytes()[0]
        })
        .collect();
    write("conversation", "noise", &noise);
}
