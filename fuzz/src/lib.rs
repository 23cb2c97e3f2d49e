//! Deterministic fixtures shared by the fuzz targets and the seed-corpus
//! generator: two devices, a live session with skipped keys on both sides,
//! and messages each side has not yet received.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::OnceLock;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sotto::{Device, Message, PreKeyBundle, Session, StorageKey};

/// The key every fixture state is sealed under.
pub const STORAGE_KEY: [u8; 32] = [0x5a; 32];

/// A message one side has not received yet, and its plaintext.
pub struct Pending {
    pub bytes: Vec<u8>,
    pub plaintext: Vec<u8>,
}

/// Saved states and in-flight messages of a two-party conversation.
pub struct Fixture {
    pub alice_device: Vec<u8>,
    pub bob_device: Vec<u8>,
    /// Alice initiated; she has received Bob's reply and started a new chain.
    pub alice: Vec<u8>,
    /// Bob accepted Alice's first message and replied.
    pub bob: Vec<u8>,
    pub to_alice: Vec<Pending>,
    /// Includes a prekey message whose key Bob skipped, and Alice's new chain.
    pub to_bob: Vec<Pending>,
    /// Bob's bundle with one remaining one-time prekey.
    pub bundle: Vec<u8>,
    pub sealed_session: Vec<u8>,
    pub sealed_device: Vec<u8>,
}

/// A deterministic RNG for targets that need randomness.
pub fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

fn send(session: &mut Session, rng: &mut ChaCha20Rng, text: &str) -> Pending {
    let message = session.encrypt(rng, text.as_bytes()).unwrap();
    Pending {
        bytes: message.into_bytes(),
        plaintext: text.as_bytes().to_vec(),
    }
}

fn receive(session: &mut Session, pending: &Pending) {
    let plaintext = session
        .decrypt(&Message::from_bytes(&pending.bytes).unwrap())
        .unwrap();
    assert_eq!(plaintext, pending.plaintext);
}

fn build() -> Fixture {
    let mut rng = rng(42);
    let alice_device = Device::generate(&mut rng);
    let mut bob_device = Device::generate(&mut rng);
    let one_time = bob_device.generate_one_time_prekeys(&mut rng, 2).unwrap();
    let bundle = PreKeyBundle::new(
        *bob_device.identity_key(),
        bob_device.signed_prekey(),
        one_time.first().copied(),
    );
    let mut alice = Session::initiate(&alice_device, &mut rng, &bundle.verify().unwrap()).unwrap();
    let p0 = send(&mut alice, &mut rng, "p0");
    let p1 = send(&mut alice, &mut rng, "p1 skipped by Bob");
    let p2 = send(&mut alice, &mut rng, "p2");
    let Message::PreKey(first) = Message::from_bytes(&p0.bytes).unwrap() else {
        unreachable!("the first message is a prekey message")
    };
    let (mut bob, hello) = Session::accept(&mut bob_device, &first).unwrap();
    assert_eq!(hello, p0.plaintext);
    receive(&mut bob, &p2);
    let r0 = send(&mut bob, &mut rng, "r0 skipped by Alice");
    let r1 = send(&mut bob, &mut rng, "r1 in flight");
    let r2 = send(&mut bob, &mut rng, "r2");
    receive(&mut alice, &r2);
    let n0 = send(&mut alice, &mut rng, "n0 new chain");
    let n1 = send(&mut alice, &mut rng, "n1 new chain");
    let second = PreKeyBundle::new(
        *bob_device.identity_key(),
        bob_device.signed_prekey(),
        one_time.get(1).copied(),
    );
    let key = StorageKey::from_bytes(STORAGE_KEY);
    Fixture {
        alice_device: alice_device.to_bytes().to_vec(),
        bob_device: bob_device.to_bytes().to_vec(),
        alice: alice.to_bytes().to_vec(),
        bob: bob.to_bytes().to_vec(),
        to_alice: vec![r0, r1],
        to_bob: vec![p1, n0, n1],
        bundle: second.to_bytes(),
        sealed_session: bob.seal(&key, &mut rng).unwrap(),
        sealed_device: bob_device.seal(&key, &mut rng).unwrap(),
    }
}

/// The fixture, built once per process.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(build)
}

/// Where a message's ratchet part starts (after a prekey header, if any).
pub fn ratchet_part(bytes: &[u8]) -> &[u8] {
    const WITHOUT_ONE_TIME: usize = 2 + 64 + 32 + 4 + 1;
    let start = match (bytes.get(1), bytes.get(WITHOUT_ONE_TIME - 1)) {
        (Some(&0x02), Some(&1)) => WITHOUT_ONE_TIME + 4,
        (Some(&0x02), _) => WITHOUT_ONE_TIME,
        _ => 0,
    };
    bytes.get(start..).unwrap_or_default()
}

/// Decrypts `message` on a copy of `state`. On failure the state must be
/// unchanged; on success the message must be one of `pending` (its
/// authenticated ratchet part, at least) with the same plaintext, and a
/// second decrypt must fail. Returns the session after the attempt.
pub fn check_decrypt(state: &[u8], message: &Message, pending: &[Pending]) -> Session {
    let mut session = Session::from_bytes(state).unwrap();
    match session.decrypt(message) {
        Ok(plaintext) => {
            let part = ratchet_part(message.as_bytes());
            assert!(
                pending
                    .iter()
                    .any(|p| ratchet_part(&p.bytes) == part && p.plaintext == plaintext),
                "a message that was never sent decrypted"
            );
            let after = session.to_bytes();
            assert!(session.decrypt(message).is_err(), "decrypted twice");
            assert_eq!(*session.to_bytes(), *after);
        }
        Err(_) => assert_eq!(*session.to_bytes(), *state, "failed decrypt changed state"),
    }
    session
}
