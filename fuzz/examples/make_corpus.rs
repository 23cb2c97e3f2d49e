//! Writes the seed corpora, made of real messages and states, to
//! `fuzz/seeds/<target>/` (committed; the fixtures are deterministic, so a
//! rerun writes the same bytes). Run from the repository root:
//! `cargo run --manifest-path fuzz/Cargo.toml --example make_corpus`.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;

use sotto::{Device, IdentityKey, OneTimePreKey, PreKeyBundle};
use testkit::fuzz::{fixture, group_fixture, record_fixture, rng, unsigned};

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
    let no_one_time = PreKeyBundle::new(
        *bundle.identity(),
        *bundle.signed_prekey(),
        None,
        bundle.kem_prekey().cloned(),
    );
    let classical = PreKeyBundle::new(*bundle.identity(), *bundle.signed_prekey(), None, None);
    write("parse_keys", "bundle", &f.bundle);
    write("parse_keys", "bundle-no-one-time", &no_one_time.to_bytes());
    write("parse_keys", "bundle-classical", &classical.to_bytes());
    write(
        "parse_keys",
        "kem-prekey",
        &bundle.kem_prekey().unwrap().to_bytes(),
    );
    write("parse_keys", "identity", &bundle.identity().to_bytes());
    write(
        "parse_keys",
        "signed-prekey",
        &bundle.signed_prekey().to_bytes(),
    );
    let one_time: OneTimePreKey = *bundle.one_time_prekey().unwrap();
    write("parse_keys", "one-time-prekey", &one_time.to_bytes());
    let fresh = Device::generate(&mut rng(3), 0).unwrap();
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

    let g = group_fixture();
    let group_messages: Vec<&[u8]> = g
        .to_store
        .iter()
        .chain(&g.stale)
        .map(|p| p.bytes.as_slice())
        .collect();
    // A few of each kind: the rest only repeat the same layout.
    for (i, m) in group_messages.iter().enumerate().step_by(7) {
        write("parse_group", &format!("message-{i}"), m);
        let mut whole = vec![0u8];
        whole.extend_from_slice(m);
        write("group_decrypt", &format!("message-{i}"), &whole);
    }
    // Bodies (without the signature) for the target to sign with each of the
    // three chains' keys: mode byte 1, 2 or 3.
    for (i, p) in g.to_receiver.iter().enumerate().step_by(5) {
        let body = unsigned(&p.bytes);
        for mode in 1..=3u8 {
            let mut signed = vec![mode];
            signed.extend_from_slice(body);
            write("group_decrypt", &format!("body-{i}-key-{mode}"), &signed);
        }
    }
    let mut states = vec![
        ("sender", &g.sender),
        ("receiver", &g.receiver),
        ("store", &g.store),
    ];
    for (i, d) in g.distributions.iter().enumerate() {
        states.push((["distribution-0", "distribution-1", "distribution-2"][i], d));
    }
    for (name, state) in states {
        write("parse_group", name, state);
        write("group_restore_use", name, state);
    }
    write("unseal", "group-sender", &g.sealed_sender);
    write("unseal", "group-receiver", &g.sealed_receiver);
    write("unseal", "group-store", &g.sealed_store);

    // The session layer: records, a group session, and the messages in
    // flight between the records.
    let r = record_fixture();
    write("parse_record", "alice", &r.alice);
    write("parse_record", "bob", &r.bob);
    write("record_receive", "record-alice", &r.alice);
    write("parse_group_session", "group", &r.group);
    for (i, p) in r.to_alice.iter().chain(&r.to_bob).enumerate() {
        write("record_receive", &format!("message-{i}"), &p.bytes);
    }
}
