//! State compromise: what an attacker holding a copy of a party's saved
//! session (its `to_bytes`) can and cannot decrypt.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sotto::{Device, Error, Message, PreKeyBundle, Session};

struct Pair {
    rng: ChaCha20Rng,
    alice: Session,
    bob: Session,
}

fn wire(session: &mut Session, rng: &mut ChaCha20Rng, text: &[u8]) -> Message {
    let bytes = session.encrypt(rng, text).unwrap().into_bytes();
    Message::from_bytes(&bytes).unwrap()
}

/// Alice initiates, Bob accepts and replies, Alice answers on a new chain
/// and Bob receives it: both sides have turned the ratchet once.
fn established(seed: u64) -> Pair {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let alice_device = Device::generate(&mut rng);
    let mut bob_device = Device::generate(&mut rng);
    let bundle = PreKeyBundle::new(*bob_device.identity_key(), bob_device.signed_prekey(), None);
    let mut alice = Session::initiate(&alice_device, &mut rng, &bundle.verify().unwrap()).unwrap();
    let Message::PreKey(first) = wire(&mut alice, &mut rng, b"hello") else {
        panic!("first message is a prekey message");
    };
    let (mut bob, _) = Session::accept(&mut bob_device, &first).unwrap();
    let reply = wire(&mut bob, &mut rng, b"reply");
    alice.decrypt(&reply).unwrap();
    let answer = wire(&mut alice, &mut rng, b"answer");
    bob.decrypt(&answer).unwrap();
    Pair { rng, alice, bob }
}

#[test]
fn stale_copy_follows_the_current_chain_only_until_a_ratchet_round_trip() {
    let Pair {
        mut rng,
        mut alice,
        mut bob,
    } = established(1);
    let stolen = bob.to_bytes();
    let mut copy = Session::from_bytes(&stolen).unwrap();

    // The limitation: the copy holds Bob's current receiving chain key.
    let m1 = wire(&mut alice, &mut rng, b"still on the compromised chain");
    assert_eq!(
        copy.decrypt(&m1).unwrap(),
        b"still on the compromised chain"
    );
    assert_eq!(bob.decrypt(&m1).unwrap(), b"still on the compromised chain");

    // Bob replies with a fresh ratchet key; Alice answers on a new chain.
    let r = wire(&mut bob, &mut rng, b"new ratchet key");
    alice.decrypt(&r).unwrap();
    let m2 = wire(&mut alice, &mut rng, b"after the round trip");
    let m3 = wire(&mut alice, &mut rng, b"and after that");

    // The copy never learned Bob's new ratchet secret.
    let before = copy.to_bytes();
    assert_eq!(copy.decrypt(&m2), Err(Error::UnexpectedRatchetKey));
    assert_eq!(*copy.to_bytes(), *before);
    // Nor does turning its own ratchet (with the attacker's randomness) help.
    let mut attacker_rng = ChaCha20Rng::seed_from_u64(666);
    let mut turned = Session::from_bytes(&stolen).unwrap();
    let forged = wire(&mut turned, &mut attacker_rng, b"forged by the attacker");
    for m in [&m2, &m3] {
        assert_eq!(turned.decrypt(m), Err(Error::AuthenticationFailed));
    }
    // Bob reads both, and Alice, healed, rejects what the copy makes.
    assert_eq!(bob.decrypt(&m3).unwrap(), b"and after that");
    assert_eq!(bob.decrypt(&m2).unwrap(), b"after the round trip");
    let before = alice.to_bytes();
    assert_eq!(alice.decrypt(&forged), Err(Error::AuthenticationFailed));
    assert_eq!(*alice.to_bytes(), *before);
}

#[test]
fn copy_taken_after_receipt_cannot_read_received_messages() {
    let Pair {
        mut rng,
        mut alice,
        mut bob,
    } = established(2);
    let m0 = wire(&mut alice, &mut rng, b"m0");
    let m1 = wire(&mut alice, &mut rng, b"m1");
    let m2 = wire(&mut alice, &mut rng, b"m2");
    // Out of order: m2 first (m0 and m1 keys skipped and stored), then m0.
    bob.decrypt(&m2).unwrap();
    bob.decrypt(&m0).unwrap();
    let copy_bytes = bob.to_bytes();
    let mut copy = Session::from_bytes(&copy_bytes).unwrap();
    assert_eq!(copy.decrypt(&m0), Err(Error::DuplicateMessage));
    assert_eq!(copy.decrypt(&m2), Err(Error::DuplicateMessage));
    // m1's key is still stored (not yet received): the copy can read it.
    // That is the documented cost of tolerating reordering.
    assert_eq!(copy.decrypt(&m1).unwrap(), b"m1");

    // After Bob turns the ratchet, a copy cannot read the old chain at all.
    bob.decrypt(&m1).unwrap();
    let r = wire(&mut bob, &mut rng, b"r");
    alice.decrypt(&r).unwrap();
    let n0 = wire(&mut alice, &mut rng, b"n0");
    bob.decrypt(&n0).unwrap();
    let mut later = Session::from_bytes(&bob.to_bytes()).unwrap();
    for m in [&m0, &m1, &m2, &n0] {
        let before = later.to_bytes();
        assert_eq!(later.decrypt(m), Err(Error::DuplicateMessage));
        assert_eq!(*later.to_bytes(), *before);
    }
}

#[test]
fn copy_cannot_read_messages_of_evicted_chains() {
    let Pair {
        mut rng,
        mut alice,
        mut bob,
    } = established(3);
    let old = wire(&mut alice, &mut rng, b"old");
    bob.decrypt(&old).unwrap();
    // Enough round trips that the chain of `old` is forgotten entirely.
    for _ in 0..sotto::MAX_RECEIVING_CHAINS + 1 {
        let r = wire(&mut bob, &mut rng, b"r");
        alice.decrypt(&r).unwrap();
        let a = wire(&mut alice, &mut rng, b"a");
        bob.decrypt(&a).unwrap();
    }
    let mut copy = Session::from_bytes(&bob.to_bytes()).unwrap();
    assert_eq!(copy.decrypt(&old), Err(Error::UnexpectedRatchetKey));
    let _ = wire(&mut copy, &mut rng, b"turn");
    assert_eq!(copy.decrypt(&old), Err(Error::AuthenticationFailed));
}
