//! Decrypt outcomes of SPEC §8.6 and what a rollback costs (§11): issue
//! 10's rollback across a ratchet-key draw, a closed chain at and past its
//! end, unknown keys, and the all-or-nothing rule on the state's bytes.

use alloc::vec::Vec;

use crate::testing::{TestRng, bundle, devices, prekey};
use crate::{Error, Message, Session};

fn bytes(session: &Session) -> Vec<u8> {
    session.to_bytes().to_vec()
}

/// Decrypts `message` and expects `error`, with the session unchanged.
fn refuses(session: &mut Session, message: &Message, error: Error) {
    let before = bytes(session);
    assert_eq!(session.decrypt(message).err(), Some(error));
    assert_eq!(
        bytes(session),
        before,
        "a failed decrypt changed the session"
    );
}

/// Alice's session, Bob's, and the RNG, after Alice's first message.
fn start(seed: u8) -> (Session, Session, TestRng) {
    let mut rng = TestRng::new(seed);
    let (alice, mut bob) = devices(&mut rng);
    let bundle = bundle(&mut bob, &mut rng, false);
    let mut to_bob = Session::initiate(&alice, &mut rng, &bundle).unwrap();
    let first = prekey(to_bob.encrypt(&mut rng, b"a0").unwrap());
    let (to_alice, plaintext) = Session::accept(&mut bob, &first).unwrap();
    assert_eq!(plaintext.as_bytes(), b"a0");
    (to_bob, to_alice, rng)
}

/// Issue 10, point 6: Alice restores a state saved before she drew a new
/// ratchet key and sends on a fresh one. Neither side can read the other
/// again, and both say so with `SessionDiverged` (SPEC §11).
#[test]
fn rollback_across_a_ratchet_key_draw_diverges_both_ways() {
    let (mut alice, mut bob, mut rng) = start(1);
    let b0 = bob.encrypt(&mut rng, b"b0").unwrap();
    assert_eq!(alice.decrypt(&b0).unwrap().as_bytes(), b"b0");
    // Alice has no sending chain now: her next encrypt draws a ratchet key.
    let saved = alice.to_bytes();
    let a1 = alice.encrypt(&mut rng, b"a1").unwrap();
    assert_eq!(bob.decrypt(&a1).unwrap().as_bytes(), b"a1");

    // Restored, Alice draws another key (her RNG is not rolled back).
    let mut restored = Session::from_bytes(&saved).unwrap();
    let a1_again = restored.encrypt(&mut rng, b"a1 again").unwrap();
    // Bob has no sending chain since a1: an unknown key cannot be honest.
    refuses(&mut bob, &a1_again, Error::SessionDiverged);

    // Bob replies on a new key; the restored Alice cannot follow it, and
    // Bob still cannot follow the restored Alice.
    let b1 = bob.encrypt(&mut rng, b"b1").unwrap();
    refuses(&mut restored, &b1, Error::SessionDiverged);
    let a2_again = restored.encrypt(&mut rng, b"a2 again").unwrap();
    refuses(&mut bob, &a2_again, Error::SessionDiverged);
    refuses(&mut bob, &a1_again, Error::SessionDiverged);
    let b2 = bob.encrypt(&mut rng, b"b2").unwrap();
    refuses(&mut restored, &b2, Error::SessionDiverged);

    // The Alice that was not rolled back still reads Bob.
    assert_eq!(alice.decrypt(&b1).unwrap().as_bytes(), b"b1");
    assert_eq!(alice.decrypt(&b2).unwrap().as_bytes(), b"b2");
}

/// A restored sender re-sends on a chain the receiver already closed: at or
/// past the chain's end the receiver answers `SessionDiverged`; a skipped
/// index still decrypts once, and a read one is a duplicate (SPEC §8.6
/// 1.1, 1.3, 1.4).
#[test]
fn a_closed_chain_at_or_past_its_end_diverges() {
    let (mut alice, mut bob, mut rng) = start(2);
    let a1 = alice.encrypt(&mut rng, b"a1").unwrap();
    let saved = alice.to_bytes();
    let b0 = bob.encrypt(&mut rng, b"b0").unwrap();
    alice.decrypt(&b0).unwrap();
    // Alice's new chain closes her first one at PN = 2 for Bob.
    let a2 = alice.encrypt(&mut rng, b"a2").unwrap();
    assert_eq!(bob.decrypt(&a2).unwrap().as_bytes(), b"a2");

    let mut restored = Session::from_bytes(&saved).unwrap();
    let at_end = restored.encrypt(&mut rng, b"index 2").unwrap();
    let past_end = restored.encrypt(&mut rng, b"index 3").unwrap();
    assert!(
        matches!(at_end, Message::PreKey(_)),
        "still awaiting a reply"
    );
    refuses(&mut bob, &at_end, Error::SessionDiverged);
    refuses(&mut bob, &past_end, Error::SessionDiverged);
    // Index 1 was skipped when the chain closed; index 0 was read.
    assert_eq!(bob.decrypt(&a1).unwrap().as_bytes(), b"a1");
    refuses(&mut bob, &a1, Error::DuplicateMessage);
}

/// On the current chain a bad tag is `AuthenticationFailed`; on an unknown
/// key it is `SessionDiverged`, since nothing authenticates the claim that
/// the key is the peer's next one (SPEC §8.6 2.4).
#[test]
fn forgeries_fail_without_changing_anything() {
    let (mut alice, mut bob, mut rng) = start(3);
    let a1 = alice.encrypt(&mut rng, b"a1").unwrap();
    let mut tampered = a1.as_bytes().to_vec();
    *tampered.last_mut().unwrap() ^= 1;
    refuses(
        &mut bob,
        &Message::from_bytes(&tampered).unwrap(),
        Error::AuthenticationFailed,
    );
    // Bob replies, so that he has a sending chain and a new key of Alice's
    // is plausible; a message on an unknown key that does not decrypt:
    let b0 = bob.encrypt(&mut rng, b"b0").unwrap();
    alice.decrypt(&b0).unwrap();
    let a2 = alice.encrypt(&mut rng, b"a2").unwrap();
    let mut tampered = a2.as_bytes().to_vec();
    *tampered.last_mut().unwrap() ^= 1;
    refuses(
        &mut bob,
        &Message::from_bytes(&tampered).unwrap(),
        Error::SessionDiverged,
    );
    assert_eq!(bob.decrypt(&a2).unwrap().as_bytes(), b"a2");
    assert_eq!(bob.decrypt(&a1).unwrap().as_bytes(), b"a1");
}

/// Generations move by one on every successful encrypt and decrypt only.
#[test]
fn generations_count_successful_calls() {
    let (mut alice, mut bob, mut rng) = start(4);
    assert_eq!((alice.generation(), bob.generation()), (1, 0));
    let b0 = bob.encrypt(&mut rng, b"b0").unwrap();
    assert_eq!(alice.decrypt(&b0).unwrap().as_bytes(), b"b0");
    assert_eq!((alice.generation(), bob.generation()), (2, 1));
    refuses(&mut alice, &b0, Error::DuplicateMessage);
    assert_eq!(alice.generation(), 2);
}

/// A ratchet message with every field chosen, and a 16-byte body.
fn crafted(key: [u8; 32], pn: u32, n: u32) -> Message {
    let mut bytes = Vec::from([2u8, 1]);
    bytes.extend_from_slice(&key);
    bytes.extend_from_slice(&pn.to_be_bytes());
    bytes.extend_from_slice(&n.to_be_bytes());
    bytes.extend_from_slice(&[0; 16 + 16]);
    Message::from_bytes(&bytes).unwrap()
}

/// The order of SPEC §8.6 step 2 for an unknown ratchet key: no sending
/// chain first, then the bound on `closing + N` in 64 bits, then the
/// exchange, then the tag.
#[test]
fn unknown_keys_are_checked_in_order() {
    let (mut alice, mut bob, mut rng) = start(5);
    let key = [9u8; 32];
    refuses(&mut bob, &crafted(key, 0, u32::MAX), Error::SessionDiverged);
    bob.encrypt(&mut rng, b"b0").unwrap();
    // Bob's current chain (Alice's first) is at next index 1.
    refuses(&mut bob, &crafted(key, 0, 1000), Error::SessionDiverged);
    refuses(
        &mut bob,
        &crafted(key, 0, 1001),
        Error::TooFarAhead { skipped: 1001 },
    );
    refuses(
        &mut bob,
        &crafted(key, 502, 500),
        Error::TooFarAhead { skipped: 501 + 500 },
    );
    refuses(&mut bob, &crafted(key, 501, 500), Error::SessionDiverged);
    refuses(
        &mut bob,
        &crafted(key, u32::MAX, u32::MAX),
        Error::TooFarAhead {
            skipped: u64::from(u32::MAX) - 1 + u64::from(u32::MAX),
        },
    );
    // A PN below the current chain's next index closes nothing.
    refuses(&mut bob, &crafted(key, 0, 0), Error::SessionDiverged);
    // A low-order key fails in the exchange, before the tag.
    refuses(&mut bob, &crafted([0; 32], 0, 0), Error::NonContributoryKey);
    // On the current chain: the gap bound, then the last index.
    let current = alice.encrypt(&mut rng, b"a1").unwrap();
    let Message::PreKey(current) = current else {
        panic!("Alice still awaits a reply");
    };
    let k = current.ratchet_key_bytes();
    refuses(
        &mut bob,
        &crafted(k, 0, 1 + 1001),
        Error::TooFarAhead { skipped: 1001 },
    );
    refuses(
        &mut bob,
        &crafted(k, 0, 1 + 1000),
        Error::AuthenticationFailed,
    );
}

/// Plaintexts carry the remote identity of the session that decrypted them
/// (SPEC §15.7), in an exact-size buffer, and never print their bytes.
#[test]
fn plaintexts_carry_their_provenance() {
    let mut rng = TestRng::new(6);
    let (alice_device, mut bob_device) = devices(&mut rng);
    let bundle = bundle(&mut bob_device, &mut rng, true);
    let mut alice = Session::initiate(&alice_device, &mut rng, &bundle).unwrap();
    let first = prekey(alice.encrypt(&mut rng, b"secret words").unwrap());
    let (mut bob, accepted) = Session::accept(&mut bob_device, &first).unwrap();
    assert_eq!(accepted.sender(), alice_device.identity_key());
    assert_eq!(&*accepted, b"secret words");
    let printed = alloc::format!("{accepted:?}");
    assert!(printed.contains("len: 12"), "{printed}");
    assert!(!printed.contains("secret"), "{printed}");
    let reply = bob.encrypt(&mut rng, b"reply").unwrap();
    let decrypted = alice.decrypt(&reply).unwrap();
    assert_eq!(decrypted.sender(), bob_device.identity_key());
    assert_eq!(decrypted.sender(), alice.remote_identity());
    let bytes = decrypted.into_bytes();
    assert_eq!((bytes.len(), bytes.capacity()), (5, 5));
}

/// `decrypt_then` commits only if the hook accepts the plaintext: a hook
/// that fails leaves the session's bytes as they were, and the message can
/// be decrypted afterwards.
#[test]
fn decrypt_then_commits_only_on_success() {
    let (mut alice, mut bob, mut rng) = start(7);
    for message in [
        bob.encrypt(&mut rng, b"first").unwrap(),
        bob.encrypt(&mut rng, b"second").unwrap(),
    ] {
        let before = bytes(&alice);
        let refused = alice.decrypt_then(&message, |p| {
            assert!(p.as_bytes().starts_with(b"first") || p.as_bytes() == b"second");
            Err::<(), _>(Error::GroupMismatch)
        });
        assert_eq!(refused.err(), Some(Error::GroupMismatch));
        assert_eq!(bytes(&alice), before);
        let (plaintext, len) = alice.decrypt_then(&message, |p| Ok(p.len())).unwrap();
        assert_eq!(plaintext.len(), len);
        assert_ne!(bytes(&alice), before);
        refuses(&mut alice, &message, Error::DuplicateMessage);
    }
}
