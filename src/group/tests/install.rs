//! Installing a distribution (SPEC §15.7): the authenticated paths, their
//! check order, the all-or-nothing one-call form, and the attacks of the
//! design review built on the wire bytes: a forwarded distribution in every
//! order of arrival, and a member trying to squat another member's chain.

use alloc::vec::Vec;

use rand_chacha::ChaCha20Rng;

use super::{
    GROUP, OTHER_GROUP, chain_of, connect, device, dist, owner_field, owner_proof, receive, rng,
    send,
};
use crate::error::Error;
use crate::group::{GroupReceiver, GroupReceivers, GroupSender, InsertOutcome, Sender};
use crate::{Device, Session};

/// Alice and Mallory are members; Carol receives. Each pair has a session.
struct World {
    rng: ChaCha20Rng,
    alice: Device,
    mallory: Device,
    alice_to_carol: Session,
    carol_from_alice: Session,
    mallory_to_carol: Session,
    carol_from_mallory: Session,
    alice_chain: GroupSender,
    mallory_chain: GroupSender,
}

fn world(seed: u8) -> World {
    let mut r = rng(seed);
    let alice = device(&mut r);
    let mallory = device(&mut r);
    let mut carol = device(&mut r);
    let (alice_to_carol, carol_from_alice) = connect(&mut r, &alice, &mut carol);
    let (mallory_to_carol, carol_from_mallory) = connect(&mut r, &mallory, &mut carol);
    let alice_chain = GroupSender::new(&mut r, GROUP, &alice).unwrap();
    let mallory_chain = GroupSender::new(&mut r, GROUP, &mallory).unwrap();
    World {
        rng: r,
        alice,
        mallory,
        alice_to_carol,
        carol_from_alice,
        mallory_to_carol,
        carol_from_mallory,
        alice_chain,
        mallory_chain,
    }
}

/// Every byte of both states, to show a failed call changed neither.
fn snapshot(store: &GroupReceivers, session: &Session) -> (Vec<u8>, Vec<u8>) {
    (store.to_bytes().to_vec(), session.to_bytes().to_vec())
}

#[test]
fn authenticated_install_over_a_session() {
    let mut w = world(1);
    let mut carol = GroupReceivers::new(GROUP);
    let d = w.alice_chain.distribution().to_bytes();
    let m = send(&mut w.rng, &mut w.alice_to_carol, &d);
    assert_eq!(
        carol.receive_distribution(&mut w.carol_from_alice, &m),
        Ok(InsertOutcome::Added)
    );
    assert_eq!(carol.generation(), 1);
    let message = w.alice_chain.encrypt(&mut w.rng, b"hi all").unwrap();
    let read = carol.decrypt(&message).unwrap();
    assert_eq!(read.as_bytes(), b"hi all");
    assert_eq!(&*read, b"hi all");
    assert_eq!(
        read.sender(),
        &Sender::Authenticated(*w.alice.identity_key())
    );
    assert_eq!(read.chain(), w.alice_chain.chain());
    // The session moved on: the same pairwise message again is a duplicate.
    assert_eq!(
        carol.receive_distribution(&mut w.carol_from_alice, &m),
        Err(Error::DuplicateMessage)
    );

    // From a plaintext the application got from its session, and the
    // standalone receiver's forms.
    let m = send(&mut w.rng, &mut w.alice_to_carol, &d);
    let plaintext = receive(&mut w.carol_from_alice, &m);
    let mut other = GroupReceivers::new(GROUP);
    assert_eq!(other.install(&plaintext), Ok(InsertOutcome::Added));
    let mut standalone = GroupReceiver::install(&GROUP, &plaintext).unwrap();
    assert_eq!(
        standalone.sender(),
        &Sender::Authenticated(*w.alice.identity_key())
    );
    assert_eq!(standalone.generation(), 0);
    let m = send(&mut w.rng, &mut w.alice_to_carol, &d);
    let mut one_call =
        GroupReceiver::receive_distribution(&GROUP, &mut w.carol_from_alice, &m).unwrap();
    let next = w.alice_chain.encrypt(&mut w.rng, b"again").unwrap();
    assert_eq!(standalone.decrypt(&next).unwrap().as_bytes(), b"again");
    assert_eq!(one_call.decrypt(&next).unwrap().as_bytes(), b"again");
    assert_eq!(standalone.generation(), 1);
}

#[test]
fn install_checks_in_order() {
    let mut w = world(2);
    let good = w.alice_chain.distribution().to_bytes().to_vec();
    let other_group = GroupSender::new(&mut w.rng, OTHER_GROUP, &w.alice)
        .unwrap()
        .distribution()
        .to_bytes()
        .to_vec();
    let mut bad_proof = good.clone();
    bad_proof[dist::PROOF + 5] ^= 0x10;
    let mut bad_signature = good.clone();
    bad_signature[dist::SIGNATURE + 5] ^= 0x10;
    let mut other_group_bad_proof = other_group.clone();
    other_group_bad_proof[dist::PROOF + 5] ^= 0x10;

    let cases: [(&[u8], bool, Error); 10] = [
        (b"hello", true, Error::UnsupportedVersion { found: b'h' }),
        (&good[..good.len() - 1], true, Error::Truncated),
        (&other_group, true, Error::GroupMismatch),
        // The group is checked before the owner, the owner before the proof.
        (&other_group_bad_proof, false, Error::GroupMismatch),
        (&good, false, Error::GroupOwnerMismatch),
        (&bad_proof, false, Error::GroupOwnerMismatch),
        (&bad_proof, true, Error::InvalidSignature),
        (&bad_signature, false, Error::GroupOwnerMismatch),
        (&bad_signature, true, Error::InvalidSignature),
        (&good, true, Error::GroupMismatch),
    ];
    for (n, (bytes, from_alice, expected)) in cases.into_iter().enumerate() {
        // The last case installs into a store of another group.
        let mut store = GroupReceivers::new(if n == 9 { OTHER_GROUP } else { GROUP });
        let (to, from) = if from_alice {
            (&mut w.alice_to_carol, &mut w.carol_from_alice)
        } else {
            (&mut w.mallory_to_carol, &mut w.carol_from_mallory)
        };
        let m = send(&mut w.rng, to, bytes);
        let before = snapshot(&store, from);
        assert_eq!(
            store.receive_distribution(from, &m),
            Err(expected),
            "case {n}"
        );
        assert_eq!(snapshot(&store, from), before, "case {n}");
        // Nothing was committed: the message fails the same way again.
        assert_eq!(
            store.receive_distribution(from, &m),
            Err(expected),
            "case {n}"
        );
        let group = *store.group_id();
        assert_eq!(
            GroupReceiver::receive_distribution(&group, from, &m).err(),
            Some(expected),
            "case {n}"
        );
        let plaintext = receive(from, &m);
        assert_eq!(store.install(&plaintext), Err(expected), "case {n}");
        assert_eq!(
            GroupReceiver::install(&group, &plaintext).err(),
            Some(expected),
            "case {n}"
        );
    }
    // Unauthenticated: parse, group, proof.
    let mut store = GroupReceivers::new(GROUP);
    assert_eq!(
        store.import_unauthenticated(&other_group_bad_proof),
        Err(Error::GroupMismatch)
    );
    for bad in [&bad_proof, &bad_signature] {
        assert_eq!(
            store.import_unauthenticated(bad),
            Err(Error::InvalidSignature)
        );
        assert_eq!(
            GroupReceiver::import_unauthenticated(&GROUP, bad).err(),
            Some(Error::InvalidSignature)
        );
    }
    assert!(store.is_empty());
    assert_eq!(store.generation(), 0);
}

/// A pairwise message that does not decrypt changes neither state.
#[test]
fn a_failed_decrypt_changes_neither_state() {
    let mut w = world(3);
    let mut store = GroupReceivers::new(GROUP);
    let d = w.alice_chain.distribution().to_bytes();
    let m = send(&mut w.rng, &mut w.alice_to_carol, &d);
    let mut bytes = m.as_bytes().to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let tampered = crate::Message::from_bytes(&bytes).unwrap();
    let before = snapshot(&store, &w.carol_from_alice);
    // Alice's message opens a new sending chain, so a tampered one fails the
    // trial ratchet step: SessionDiverged (SPEC §8.6).
    assert_eq!(
        store.receive_distribution(&mut w.carol_from_alice, &tampered),
        Err(Error::SessionDiverged)
    );
    assert_eq!(snapshot(&store, &w.carol_from_alice), before);
    // Delivered over the wrong session, it does not decrypt either.
    let before = snapshot(&store, &w.carol_from_mallory);
    assert!(
        store
            .receive_distribution(&mut w.carol_from_mallory, &m)
            .is_err()
    );
    assert_eq!(snapshot(&store, &w.carol_from_mallory), before);
    assert_eq!(
        store.receive_distribution(&mut w.carol_from_alice, &m),
        Ok(InsertOutcome::Added)
    );
}

/// Mallory holds Alice's distribution (Alice sent it to her) and forwards it
/// to Carol over Mallory's own session: refused, before or after Alice's own
/// copy, at Alice's index or a later one.
#[test]
fn a_forwarded_distribution_fails_in_every_order() {
    for order in 0..3 {
        let mut w = world(10 + order);
        let alice = *w.alice.identity_key();
        let mut carol = GroupReceivers::new(GROUP);
        let at_mallory = w.alice_chain.distribution().to_bytes();
        let _ = w.alice_chain.encrypt(&mut w.rng, b"early").unwrap();
        let later = w.alice_chain.distribution().to_bytes();
        let forwarded = send(&mut w.rng, &mut w.mallory_to_carol, &at_mallory);
        let forwarded_later = send(&mut w.rng, &mut w.mallory_to_carol, &later);
        let own = send(&mut w.rng, &mut w.alice_to_carol, &at_mallory);

        let forward = |carol: &mut GroupReceivers, w: &mut World, m: &crate::Message| {
            let before = snapshot(carol, &w.carol_from_mallory);
            assert_eq!(
                carol.receive_distribution(&mut w.carol_from_mallory, m),
                Err(Error::GroupOwnerMismatch),
                "order {order}"
            );
            assert_eq!(snapshot(carol, &w.carol_from_mallory), before);
        };
        match order {
            0 => {
                forward(&mut carol, &mut w, &forwarded);
                forward(&mut carol, &mut w, &forwarded_later);
                assert_eq!(
                    carol.receive_distribution(&mut w.carol_from_alice, &own),
                    Ok(InsertOutcome::Added)
                );
            }
            1 => {
                assert_eq!(
                    carol.receive_distribution(&mut w.carol_from_alice, &own),
                    Ok(InsertOutcome::Added)
                );
                forward(&mut carol, &mut w, &forwarded);
                forward(&mut carol, &mut w, &forwarded_later);
            }
            _ => {
                forward(&mut carol, &mut w, &forwarded_later);
                assert_eq!(
                    carol.receive_distribution(&mut w.carol_from_alice, &own),
                    Ok(InsertOutcome::Added)
                );
                forward(&mut carol, &mut w, &forwarded);
            }
        }
        let m = w.alice_chain.encrypt(&mut w.rng, b"mine").unwrap();
        assert_eq!(
            carol.decrypt(&m).unwrap().sender,
            Sender::Authenticated(alice)
        );
        assert_eq!(carol.len(), 1);
    }
}

/// Squatting attempts, each built on the wire bytes and delivered by Mallory
/// over her own session to Carol: none lets Mallory hold Alice's chain as
/// hers, nor keeps Alice's own distribution out.
#[test]
fn a_member_cannot_squat_another_members_chain() {
    let mut w = world(20);
    let alice = *w.alice.identity_key();
    let mallory = *w.mallory.identity_key();
    let genuine = w.alice_chain.distribution().to_bytes().to_vec();
    let mallory_own = w.mallory_chain.distribution().to_bytes().to_vec();
    let mallory_seed = super::seed_of(&w.mallory_chain.to_bytes());
    let group = &genuine[dist::GROUP..dist::CHAIN];
    let alice_chain = &genuine[dist::CHAIN..dist::OWNER];

    let with = |base: &[u8], at: usize, field: &[u8]| {
        let mut b = base.to_vec();
        b[at..at + field.len()].copy_from_slice(field);
        b
    };
    // 1. Alice's chain, owner swapped to Mallory, Alice's proof kept.
    let swapped = with(&genuine, dist::OWNER, &owner_field(&mallory));
    // 2. ... and the proof re-signed by Mallory with her own chain seed.
    let resigned = with(
        &swapped,
        dist::PROOF,
        &owner_proof(&mallory_seed, group, alice_chain, &owner_field(&mallory)),
    );
    // 3. Mallory's own chain with Alice's chain key copied into it.
    let copied_key = with(&mallory_own, dist::CHAIN, alice_chain);
    // 4. Alice's distribution as it is, owner Alice: a forward.
    // 5. Alice's chain key and proof with Mallory's ratchet (a bogus copy).
    let bogus_ratchet = with(&genuine, dist::INDEX, &mallory_own[dist::INDEX..]);

    let mut carol = GroupReceivers::new(GROUP);
    let attempts: [(&[u8], Error); 5] = [
        (&swapped, Error::InvalidSignature),
        (&resigned, Error::InvalidSignature),
        (&copied_key, Error::InvalidSignature),
        (&genuine, Error::GroupOwnerMismatch),
        (&bogus_ratchet, Error::GroupOwnerMismatch),
    ];
    for (n, (bytes, expected)) in attempts.into_iter().enumerate() {
        let m = send(&mut w.rng, &mut w.mallory_to_carol, bytes);
        let before = snapshot(&carol, &w.carol_from_mallory);
        assert_eq!(
            carol.receive_distribution(&mut w.carol_from_mallory, &m),
            Err(expected),
            "attempt {n}"
        );
        assert_eq!(snapshot(&carol, &w.carol_from_mallory), before);
    }
    // Offered as an unauthenticated import: the first three fail the proof;
    // the bogus copy is held as Alice's (her signatures are on it), and
    // Alice's own distribution upgrades it with her ratchet.
    for bytes in [&swapped, &resigned, &copied_key] {
        assert_eq!(
            carol.import_unauthenticated(bytes),
            Err(Error::InvalidSignature)
        );
    }
    assert_eq!(
        carol.import_unauthenticated(&bogus_ratchet),
        Ok(InsertOutcome::Added)
    );
    let m = send(&mut w.rng, &mut w.alice_to_carol, &genuine);
    assert_eq!(
        carol.receive_distribution(&mut w.carol_from_alice, &m),
        Ok(InsertOutcome::Upgraded)
    );
    let message = w.alice_chain.encrypt(&mut w.rng, b"from alice").unwrap();
    assert_eq!(
        carol.decrypt(&message).unwrap().sender(),
        &Sender::Authenticated(alice)
    );
    // Once Alice's chain is held, the bogus copy changes nothing.
    let before = carol.to_bytes();
    assert_eq!(
        carol.import_unauthenticated(&bogus_ratchet),
        Ok(InsertOutcome::Unchanged)
    );
    assert_eq!(*carol.to_bytes(), *before);

    // A chain of Mallory's own into which she copies Alice's ratchet secret,
    // with a proof naming herself, is just Mallory's chain: it never reads as
    // Alice's, nor blocks Alice's.
    let copied_ratchet = {
        let mut b = with(&mallory_own, dist::INDEX, &genuine[dist::INDEX..]);
        let proof = owner_proof(
            &mallory_seed,
            group,
            &chain_of(&mallory_seed),
            &owner_field(&mallory),
        );
        b[dist::PROOF..dist::SIGNATURE].copy_from_slice(&proof);
        b
    };
    let mut dave = GroupReceivers::new(GROUP);
    let m = send(&mut w.rng, &mut w.mallory_to_carol, &copied_ratchet);
    assert_eq!(
        dave.receive_distribution(&mut w.carol_from_mallory, &m),
        Ok(InsertOutcome::Added)
    );
    let m = send(&mut w.rng, &mut w.alice_to_carol, &genuine);
    assert_eq!(
        dave.receive_distribution(&mut w.carol_from_alice, &m),
        Ok(InsertOutcome::Added)
    );
    let from_alice = w.alice_chain.encrypt(&mut w.rng, b"alice").unwrap();
    assert_eq!(
        dave.decrypt(&from_alice).unwrap().sender(),
        &Sender::Authenticated(alice)
    );
}

/// The review's `group_owner_not_signed`, on the wire: Mallory makes chains
/// of her own that name Alice as owner (she holds their seeds, so their
/// owner proofs are valid) and gets Alice's client to relay the bytes to
/// Carol over Alice's own session, or hands them over as imports. Without
/// an owner signature by Alice's identity key none is installed, whatever
/// signature Mallory puts there: her own identity's, Alice's signature of
/// Alice's real chain, or none; Alice's chain stays and reads.
#[test]
fn a_chain_alice_never_signed_is_never_hers() {
    let mut w = world(30);
    let alice = *w.alice.identity_key();
    let genuine = w.alice_chain.distribution().to_bytes().to_vec();
    let mut carol = GroupReceivers::new(GROUP);
    let m = send(&mut w.rng, &mut w.alice_to_carol, &genuine);
    carol
        .receive_distribution(&mut w.carol_from_alice, &m)
        .unwrap();
    let mallory_identity = super::identity_seed(&w.mallory);
    let alice_signature = genuine[dist::SIGNATURE..dist::INDEX].to_vec();
    for n in 0..12u8 {
        // A chain Mallory draws, with a valid owner proof naming Alice.
        let seed = [0x40 + n; 32];
        let chain = chain_of(&seed);
        let mut forged = genuine.clone();
        forged[dist::CHAIN..dist::OWNER].copy_from_slice(&chain);
        let proof = owner_proof(&seed, GROUP.as_bytes(), &chain, &owner_field(&alice));
        forged[dist::PROOF..dist::SIGNATURE].copy_from_slice(&proof);
        let signature = match n % 3 {
            0 => super::owner_signature(&mallory_identity, GROUP.as_bytes(), &chain).to_vec(),
            1 => alice_signature.clone(),
            _ => alloc::vec![0; 64],
        };
        forged[dist::SIGNATURE..dist::INDEX].copy_from_slice(&signature);

        let relayed = send(&mut w.rng, &mut w.alice_to_carol, &forged);
        let before = snapshot(&carol, &w.carol_from_alice);
        assert_eq!(
            carol.receive_distribution(&mut w.carol_from_alice, &relayed),
            Err(Error::InvalidSignature),
            "forgery {n}"
        );
        assert_eq!(snapshot(&carol, &w.carol_from_alice), before);
        let before = carol.to_bytes();
        assert_eq!(
            carol.import_unauthenticated(&forged),
            Err(Error::InvalidSignature)
        );
        assert_eq!(*carol.to_bytes(), *before);
    }
    assert_eq!(carol.len(), 1);
    let message = w.alice_chain.encrypt(&mut w.rng, b"still here").unwrap();
    assert_eq!(
        carol.decrypt(&message).unwrap().sender(),
        &Sender::Authenticated(alice)
    );
}

/// The review's `group_rewind`, on the wire: Mallory flips one bit of R_5 in
/// Alice's distribution (used only from index 0x100 on, so the copy reads
/// Alice's first messages; the review flipped R_0) and hands it to Carol as a forwarded key; the server withholds
/// Alice's own distribution, made at index 0, until Carol has read messages
/// 0 to 4, then delivers it and replays them. The upgrade takes Alice's
/// ratchet but stands past what Carol read: every replay is a duplicate,
/// and Alice's next message reads, authenticated.
#[test]
fn a_late_owner_distribution_never_reopens_what_was_read() {
    let mut w = world(40);
    let alice = *w.alice.identity_key();
    let genuine = w.alice_chain.distribution().to_bytes().to_vec();
    let withheld = send(&mut w.rng, &mut w.alice_to_carol, &genuine);
    let mut tampered = genuine.clone();
    tampered[dist::LEVELS + 5 * 32] ^= 1;
    let mut carol = GroupReceivers::new(GROUP);
    assert_eq!(
        carol.import_unauthenticated(&tampered),
        Ok(InsertOutcome::Added)
    );
    let messages: Vec<_> = (0..5)
        .map(|_| w.alice_chain.encrypt(&mut w.rng, b"alice").unwrap())
        .collect();
    for m in &messages {
        assert_eq!(
            carol.decrypt(m).unwrap().sender(),
            &Sender::Unauthenticated { claimed: alice }
        );
    }
    assert_eq!(
        carol.receive_distribution(&mut w.carol_from_alice, &withheld),
        Ok(InsertOutcome::Upgraded)
    );
    let held = carol.get(w.alice_chain.chain()).unwrap();
    assert_eq!((held.next_index(), held.read_index()), (5, 5));
    for m in &messages {
        let before = carol.to_bytes();
        assert_eq!(carol.decrypt(m).err(), Some(Error::DuplicateMessage));
        assert_eq!(*carol.to_bytes(), *before);
    }
    let next = w.alice_chain.encrypt(&mut w.rng, b"next").unwrap();
    let read = carol.decrypt(&next).unwrap();
    assert_eq!(
        (read.index(), read.sender()),
        (5, &Sender::Authenticated(alice))
    );
    // The genuine ratchet is the one held: it reads past 0x100, where the
    // tampered R_5 would first have been used.
    w.alice_chain.advance_for_test(0x100);
    let far = w.alice_chain.encrypt(&mut w.rng, b"far").unwrap();
    assert_eq!(carol.decrypt(&far).unwrap().as_bytes(), b"far");
}
