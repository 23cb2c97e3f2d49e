//! Replays fuzz inputs under `cargo test`: the committed seeds
//! (fuzz/seeds/<target>/) and every input a fuzz campaign ever crashed on
//! (fuzz/regressions/<target>/, copied there from fuzz/artifacts/). Each
//! input goes through every parser and restore path with the targets'
//! checks: whatever parses re-encodes to exactly the input, and using a
//! restored state never panics and never changes it on failure.

use std::fs;
use std::path::Path;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sotto::group::{
    GroupMessage, GroupReceiver, GroupReceivers, GroupSender, SenderKeyDistribution,
};
use sotto::sessions::{GroupSession, PeerRecord};
use sotto::{
    Device, IdentityKey, KemPreKey, Message, OneTimePreKey, PreKeyBundle, Session, SignedPreKey,
    StorageKey,
};
use testkit::fuzz::{CONTEXT, STORAGE_KEY};

const SIGNATURE_LEN: usize = 64;

fn replay(data: &[u8]) -> usize {
    let mut parsed = 0;
    if let Ok(m) = Message::from_bytes(data) {
        assert_eq!(m.as_bytes(), data);
        parsed += 1;
    }
    if let Ok(b) = PreKeyBundle::from_bytes(data) {
        assert_eq!(b.to_bytes(), data);
        let _ = b.verify();
        parsed += 1;
    }
    if let Ok(k) = IdentityKey::from_bytes(data) {
        assert_eq!(k.to_bytes().as_slice(), data);
        parsed += 1;
    }
    if let Ok(k) = SignedPreKey::from_bytes(data) {
        assert_eq!(k.to_bytes(), data);
        parsed += 1;
    }
    if let Ok(k) = OneTimePreKey::from_bytes(data) {
        assert_eq!(k.to_bytes(), data);
        parsed += 1;
    }
    if let Ok(k) = KemPreKey::from_bytes(data) {
        assert_eq!(k.to_bytes(), data);
        parsed += 1;
    }
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    if let Ok(mut s) = Session::from_bytes(data) {
        assert_eq!(*s.to_bytes(), *data);
        let before = s.to_bytes();
        if s.encrypt(&mut rng, b"replay").is_err() {
            assert_eq!(*s.to_bytes(), *before);
        }
        parsed += 1;
    }
    if let Ok(mut d) = Device::from_bytes(data) {
        assert_eq!(*d.to_bytes(), *data);
        let _ = d.generate_one_time_prekeys(&mut rng, 1);
        let _ = d.rotate_last_resort_kem_prekey(&mut rng, 1);
        parsed += 1;
    }
    if let Ok(m) = GroupMessage::from_bytes(data) {
        assert_eq!(m.as_bytes(), data);
        parsed += 1;
    }
    if let Ok(d) = SenderKeyDistribution::from_bytes(data) {
        assert_eq!(*d.to_bytes(), *data);
        if let Ok(mut r) = GroupReceiver::import_unauthenticated(d.group_id(), data) {
            // Another chain of the same group: its messages are not this
            // receiver's.
            let owner = Device::generate(&mut rng, 0).unwrap();
            let mut sender = GroupSender::new(&mut rng, *d.group_id(), &owner).unwrap();
            let m = sender.encrypt(&mut rng, b"replay").unwrap();
            assert!(r.decrypt(&m).is_err());
        }
        parsed += 1;
    }
    if let Ok(mut s) = GroupSender::from_bytes(data) {
        assert_eq!(*s.to_bytes(), *data);
        let before = s.to_bytes();
        if s.encrypt(&mut rng, b"replay").is_err() {
            assert_eq!(*s.to_bytes(), *before);
        }
        parsed += 1;
    }
    if let Ok(r) = GroupReceiver::from_bytes(data) {
        assert_eq!(*r.to_bytes(), *data);
        parsed += 1;
    }
    if let Ok(s) = GroupReceivers::from_bytes(data) {
        assert_eq!(*s.to_bytes(), *data);
        parsed += 1;
    }
    if let Ok(r) = PeerRecord::from_bytes(data) {
        assert_eq!(*r.to_bytes(), *data);
        let _ = r.plan_send(0);
        parsed += 1;
    }
    if let Ok(g) = GroupSession::from_bytes(data) {
        assert_eq!(*g.to_bytes(), *data);
        assert!(g.is_member(g.local_user()));
        parsed += 1;
    }
    // The key and context the fuzz fixtures seal under.
    let key = StorageKey::from_bytes(STORAGE_KEY);
    if Session::unseal(data, &key, CONTEXT).is_ok()
        || Device::unseal(data, &key, CONTEXT).is_ok()
        || GroupSender::unseal(data, &key, CONTEXT).is_ok()
        || GroupReceiver::unseal(data, &key, CONTEXT).is_ok()
        || GroupReceivers::unseal(data, &key, CONTEXT).is_ok()
    {
        parsed += 1;
    }
    parsed
}

/// `group_decrypt` inputs start with a mode byte: 0 for a whole message,
/// 1..=3 for a body the target signs. Returns what `replay` should see: the
/// message, or the body with a placeholder signature.
fn group_decrypt_input(data: &[u8]) -> Vec<u8> {
    match data.split_first() {
        Some((0, message)) => message.to_vec(),
        Some((_, body)) => [body, &[0u8; SIGNATURE_LEN]].concat(),
        None => Vec::new(),
    }
}

fn inputs(dir: &str) -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut out = Vec::new();
    let Ok(targets) = fs::read_dir(&root) else {
        return out;
    };
    for target in targets {
        for file in fs::read_dir(target.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            out.push((path.display().to_string(), fs::read(&path).unwrap()));
        }
    }
    out
}

#[test]
fn seeds_and_crash_inputs_replay_cleanly() {
    let seeds = inputs("fuzz/seeds");
    assert!(seeds.len() >= 20, "seed corpus missing");
    // Every seed but the conversation scripts is a real encoding.
    for (name, data) in &seeds {
        let parsed = if name.contains("group_decrypt") {
            replay(&group_decrypt_input(data))
        } else {
            replay(data)
        };
        assert!(
            parsed > 0 || name.contains("conversation"),
            "{name} did not parse"
        );
    }
    for (name, data) in inputs("fuzz/regressions") {
        if name.contains("group_decrypt") {
            replay(&group_decrypt_input(&data));
        }
        replay(&data);
    }
}
