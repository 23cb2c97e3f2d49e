//! Group messaging (sender keys): several members, jumps and limits,
//! tampering, chain ownership and the store's rules (SPEC §15.7, §15.9),
//! save and restore, and random delivery schedules checked against the
//! model's receiver rules. Senders at any index and forged messages are
//! made on the saved states' and messages' bytes (SPEC §15.5, §15.11).

use std::collections::BTreeSet;

use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use sotto::group::{
    GROUP_SKIP_WINDOW, GroupId, GroupMessage, GroupReceiver, GroupReceivers, GroupSender,
    InsertOutcome, MAX_CHAINS_PER_SENDER, MAX_GROUP_JUMP, MAX_GROUP_MESSAGE_LEN,
    MAX_GROUP_SKIPPED_KEYS, Sender, SenderKeyDistribution,
};
use sotto::{Error, Session, StorageKey};
use testkit::fixtures::{
    Member, chain_seed, connect, deliver_distribution, device, rng, sender_at, sender_levels, wire,
};
use testkit::fuzz::{sign_group, unsigned};
use testkit::hex::hex;
use testkit::layout::{self, Layout};
use testkit::model::group::Window;
use testkit::model::group::ratchet::{closed_form, message_key};
use testkit::model::group::window::Step;
use testkit::points::ED25519_SMALL_ORDER;

const GROUP: GroupId = GroupId::from_bytes([0x47; 32]);
const OTHER_GROUP: GroupId = GroupId::from_bytes([0x48; 32]);
/// Bytes a group message adds to its plaintext (SPEC §15.5).
const OVERHEAD: usize = 166;

// ---------------------------------------------------------------------------
// Senders placed at any index through the reference model's closed form of
// SPEC §15.4 (`testkit::fixtures::sender_at`, not the library's increment
// and jump code), and messages re-signed with a chain's seed read from its
// saved state.

/// Signs `body` (a message without its signature) with the chain's seed.
fn resign(chain: &GroupSender, body: &[u8]) -> GroupMessage {
    GroupMessage::from_vec(sign_group(&chain_seed(chain), body)).unwrap()
}

/// A message's bytes with some fields changed through its layout (SPEC
/// §15.5), without its signature.
fn edited(message: &GroupMessage, edit: impl FnOnce(&mut Vec<u8>, &Layout)) -> Vec<u8> {
    let mut bytes = message.as_bytes().to_vec();
    let l = layout::group_message(&bytes);
    edit(&mut bytes, &l);
    unsigned(&bytes).to_vec()
}

fn import(sender: &GroupSender) -> GroupReceiver {
    GroupReceiver::import_unauthenticated(sender.group_id(), &sender.distribution().to_bytes())
        .unwrap()
}

/// Decrypt must fail with `expected` and leave the state byte-for-byte as it was.
fn rejects(receiver: &mut GroupReceiver, message: &GroupMessage, expected: Error) {
    let before = receiver.to_bytes();
    assert_eq!(receiver.decrypt(message).err(), Some(expected));
    assert_eq!(receiver.to_bytes(), before);
}

fn contains(haystack: &[u8], needle: &[u8; 32]) -> bool {
    haystack.windows(32).any(|w| w == needle)
}

fn new_sender(rng: &mut ChaCha20Rng, group: GroupId) -> GroupSender {
    let owner = device(rng);
    GroupSender::new(rng, group, &owner).unwrap()
}

// ---------------------------------------------------------------------------
// Pairwise sessions between members.

/// Sends `sender`'s distribution over `from`, installs it from `to`.
fn deliver(
    rng: &mut ChaCha20Rng,
    sender: &GroupSender,
    from: &mut Session,
    to: &mut Session,
) -> GroupReceiver {
    deliver_distribution(rng, sender, from, to)
}

type Sessions = Vec<Vec<Option<Session>>>;

/// Delivers `from`'s distribution to each member in `to` over their
/// sessions, installed in one call (decrypt and install).
fn distribute(
    rng: &mut ChaCha20Rng,
    members: &mut [Member],
    sessions: &mut Sessions,
    from: usize,
    to: &[usize],
) {
    for &j in to {
        let (a, b) = if from < j {
            let (l, r) = sessions.split_at_mut(j);
            (l[from][j].as_mut().unwrap(), r[0][from].as_mut().unwrap())
        } else {
            let (l, r) = sessions.split_at_mut(from);
            (r[0][j].as_mut().unwrap(), l[j][from].as_mut().unwrap())
        };
        let carried = wire(a, rng, &members[from].sender.distribution().to_bytes());
        let outcome = members[j].store.receive_distribution(b, &carried).unwrap();
        assert_eq!(outcome, InsertOutcome::Added);
        let held = members[j].store.get(members[from].sender.chain()).unwrap();
        assert_eq!(
            held.sender(),
            &Sender::Authenticated(members[from].identity())
        );
    }
}

// ---------------------------------------------------------------------------

#[test]
fn three_members_interleaved_then_removal_and_rotation() {
    let mut rng = rng(1);
    let mut members: Vec<Member> = (0..3).map(|_| Member::new(&mut rng, GROUP)).collect();
    // sessions[i][j]: i's session with j.
    let mut sessions: Sessions = (0..3).map(|_| vec![None, None, None]).collect();
    for i in 0..3 {
        for j in i + 1..3 {
            let (left, right) = members.split_at_mut(j);
            let (ij, ji) = connect(&mut rng, &left[i].device, &mut right[0].device);
            sessions[i][j] = Some(ij);
            sessions[j][i] = Some(ji);
        }
    }
    distribute(&mut rng, &mut members, &mut sessions, 0, &[1, 2]);
    distribute(&mut rng, &mut members, &mut sessions, 1, &[0, 2]);
    distribute(&mut rng, &mut members, &mut sessions, 2, &[0, 1]);

    let mut sent: Vec<(usize, GroupMessage, Vec<u8>)> = Vec::new();
    for round in 0..6u8 {
        for from in [2, 0, 1] {
            let text = vec![round, from as u8];
            let message = members[from].sender.encrypt(&mut rng, &text).unwrap();
            sent.push((from, message, text));
        }
    }
    // Bob reads in order; Carol and Alice read in reverse.
    for (from, message, text) in &sent {
        if *from != 1 {
            let read = members[1].store.decrypt(message).unwrap();
            assert_eq!(read.as_bytes(), &text[..]);
            assert_eq!(
                *read.sender(),
                Sender::Authenticated(members[*from].identity())
            );
        }
    }
    for (from, message, text) in sent.iter().rev() {
        for reader in [0, 2] {
            if reader != *from {
                let read = members[reader].store.decrypt(message).unwrap();
                assert_eq!(read.as_bytes(), &text[..]);
                assert_eq!(read.index(), message.index());
            }
        }
    }
    // Nobody reads their own messages or anything twice.
    for (from, message, _) in &sent {
        for reader in 0..3 {
            let expected = if reader == *from {
                Error::UnknownGroupChain
            } else {
                Error::DuplicateMessage
            };
            assert_eq!(members[reader].store.decrypt(message).err(), Some(expected));
        }
    }

    // Carol (2) is removed: Alice and Bob rotate and re-distribute to each other only.
    let carol = members[2].identity();
    for m in &mut members[..2] {
        assert_eq!(m.store.remove_owner(&carol), 1);
    }
    let old_alice_chain = *members[0].sender.chain();
    for who in 0..2 {
        let Member { sender, device, .. } = &mut members[who];
        sender.rotate(&mut rng, device).unwrap();
    }
    assert_ne!(*members[0].sender.chain(), old_alice_chain);
    distribute(&mut rng, &mut members, &mut sessions, 0, &[1]);
    distribute(&mut rng, &mut members, &mut sessions, 1, &[0]);
    for who in 0..2 {
        let message = members[who]
            .sender
            .encrypt(&mut rng, b"after carol")
            .unwrap();
        let reader = 1 - who;
        assert_eq!(
            members[reader].store.decrypt(&message).unwrap().as_bytes(),
            b"after carol"
        );
        let carol_before = members[2].store.to_bytes();
        assert_eq!(
            members[2].store.decrypt(&message).err(),
            Some(Error::UnknownGroupChain)
        );
        // Carol's old receiver for this member cannot read it either.
        let old = members[2]
            .store
            .iter()
            .find(|r| r.sender() == &Sender::Authenticated(members[who].identity()))
            .unwrap();
        let mut old = GroupReceiver::from_bytes(&old.to_bytes()).unwrap();
        assert_eq!(old.decrypt(&message).err(), Some(Error::UnknownGroupChain));
        assert_eq!(carol_before, members[2].store.to_bytes());
    }
    // Both remember their old chains for late messages.
    assert_eq!(members[1].store.len(), 2);
}

#[test]
fn closed_form_is_the_ratchet() {
    // The test's own ratchet (from SPEC §15.4) agrees with sotto's at every
    // index a sender reaches by encrypting, across block boundaries.
    let mut rng = rng(17);
    let mut sender = new_sender(&mut rng, GROUP);
    let initial = sender_levels(&sender);
    for i in 0..300u32 {
        assert_eq!(
            sender_levels(&sender),
            closed_form(&initial, i),
            "index {i}"
        );
        sender.encrypt(&mut rng, b"").unwrap();
    }
}

#[test]
fn jumps_up_to_the_limit() {
    let mut rng = rng(2);
    let fresh = new_sender(&mut rng, GROUP);
    for n in [1, 255, 256, 65_535, 65_536, MAX_GROUP_JUMP] {
        let mut receiver = import(&fresh);
        let message = sender_at(&fresh, n).encrypt(&mut rng, b"far").unwrap();
        assert_eq!(message.index(), n);
        let read = receiver.decrypt(&message).unwrap();
        assert_eq!((read.as_bytes(), read.index()), (&b"far"[..], n));
        assert_eq!(receiver.next_index(), n + 1);
        let cached = n.min(GROUP_SKIP_WINDOW);
        assert_eq!(receiver.skipped_key_count(), cached as usize);
        // The nearest skipped indices are cached; the ones before are gone.
        let last_skipped = sender_at(&fresh, n - 1).encrypt(&mut rng, b"late").unwrap();
        assert_eq!(receiver.decrypt(&last_skipped).unwrap().as_bytes(), b"late");
        let first_cached = sender_at(&fresh, n - cached)
            .encrypt(&mut rng, b"late")
            .unwrap();
        if cached > 1 {
            assert_eq!(receiver.decrypt(&first_cached).unwrap().as_bytes(), b"late");
        }
        if n > GROUP_SKIP_WINDOW {
            let lost = sender_at(&fresh, n - cached - 1)
                .encrypt(&mut rng, b"lost")
                .unwrap();
            rejects(&mut receiver, &lost, Error::DuplicateMessage);
        }
    }
}

#[test]
fn jump_past_the_limit_is_rejected() {
    let mut rng = rng(3);
    let mut fresh = new_sender(&mut rng, GROUP);
    let mut receiver = import(&fresh);
    let too_far = sender_at(&fresh, MAX_GROUP_JUMP + 1)
        .encrypt(&mut rng, b"x")
        .unwrap();
    rejects(
        &mut receiver,
        &too_far,
        Error::GroupIndexOutOfRange {
            index: MAX_GROUP_JUMP + 1,
        },
    );
    // The limit counts from the receiver's next index.
    let first = fresh.encrypt(&mut rng, b"0").unwrap();
    receiver.decrypt(&first).unwrap();
    assert_eq!(receiver.decrypt(&too_far).unwrap().as_bytes(), b"x");
    assert_eq!(receiver.next_index(), MAX_GROUP_JUMP + 2);
}

#[test]
fn chain_ends_before_the_last_index() {
    let mut rng = rng(4);
    let fresh = new_sender(&mut rng, GROUP);
    let mut last = sender_at(&fresh, u32::MAX);
    let before = last.to_bytes();
    assert_eq!(
        last.encrypt(&mut rng, b"x").unwrap_err(),
        Error::ChainExhausted
    );
    assert_eq!(last.to_bytes(), before);

    let mut near_end = sender_at(&fresh, u32::MAX - 3);
    let mut receiver = import(&near_end);
    let mut final_message = None;
    for _ in 0..3 {
        final_message = Some(near_end.encrypt(&mut rng, b"end").unwrap());
    }
    let final_message = final_message.unwrap();
    assert_eq!(final_message.index(), u32::MAX - 1);
    receiver.decrypt(&final_message).unwrap();
    assert_eq!(receiver.next_index(), u32::MAX);
    // A correctly signed message at u32::MAX (which no sender produces).
    let bytes = edited(&final_message, |b, l| l.put_u32(b, "index", u32::MAX));
    let forged_end = resign(&near_end, &bytes);
    rejects(
        &mut receiver,
        &forged_end,
        Error::GroupIndexOutOfRange { index: u32::MAX },
    );
}

#[test]
fn every_byte_flip_is_rejected_without_state_change() {
    let mut rng = rng(5);
    let mut sender = new_sender(&mut rng, GROUP);
    let mut receiver = import(&sender);
    let skipped = sender.encrypt(&mut rng, b"skipped").unwrap();
    let message = sender.encrypt(&mut rng, b"tamper with me").unwrap();
    let original = message.as_bytes().to_vec();
    for at in 0..original.len() {
        for flip in [0x01u8, 0x80] {
            let mut bytes = original.clone();
            bytes[at] ^= flip;
            // Either parsing or decryption fails, and nothing changes.
            if let Ok(tampered) = GroupMessage::from_vec(bytes.clone()) {
                let before = receiver.to_bytes();
                assert!(receiver.decrypt(&tampered).is_err(), "flip at byte {at}");
                assert_eq!(receiver.to_bytes(), before);
                // Re-signed by the chain's own key, past the signature: the
                // header and the AEAD still refuse it.
                if at < original.len() - 64 {
                    let resigned = resign(&sender, unsigned(&bytes));
                    assert!(receiver.decrypt(&resigned).is_err(), "re-signed {at}");
                    assert_eq!(receiver.to_bytes(), before);
                }
            }
        }
    }
    // Truncations and extensions too.
    for len in 0..original.len() {
        if let Ok(short) = GroupMessage::from_bytes(&original[..len]) {
            rejects(&mut receiver, &short, Error::InvalidSignature);
        }
    }
    let mut longer = original.clone();
    longer.push(0);
    rejects(
        &mut receiver,
        &GroupMessage::from_vec(longer).unwrap(),
        Error::InvalidSignature,
    );
    assert_eq!(
        receiver.decrypt(&message).unwrap().as_bytes(),
        b"tamper with me"
    );
    assert_eq!(receiver.decrypt(&skipped).unwrap().as_bytes(), b"skipped");
}

/// Alice's chain, relabelled for another group (the owner proof is not
/// re-verified when a sender loads).
fn alice_in(alice: &GroupSender, group: GroupId) -> GroupSender {
    let mut state = alice.to_bytes().to_vec();
    layout::sender_state(&state).put(&mut state, "group_id", group.as_bytes());
    GroupSender::from_bytes(&state).unwrap()
}

#[test]
fn signature_is_checked_before_anything_else() {
    let mut rng = rng(6);
    let mut alice = new_sender(&mut rng, GROUP);
    let mut receiver = import(&alice);

    // Mallory's message relabelled with Alice's chain, as sent or re-signed
    // with Mallory's own key: the signature fails.
    let mut mallory = new_sender(&mut rng, GROUP);
    let mallory_fresh = GroupSender::from_bytes(&mallory.to_bytes()).unwrap();
    let hers = mallory.encrypt(&mut rng, b"I am Alice").unwrap();
    let body = edited(&hers, |b, l| l.put(b, "chain", alice.chain().as_bytes()));
    let mut sent_as_is = body.clone();
    sent_as_is.extend_from_slice(&hers.as_bytes()[hers.as_bytes().len() - 64..]);
    for forged in [
        GroupMessage::from_vec(sent_as_is).unwrap(),
        resign(&mallory, &body),
    ] {
        assert_eq!(forged.chain(), alice.chain());
        rejects(&mut receiver, &forged, Error::InvalidSignature);
    }
    // Even a forgery far out of range fails on its signature first.
    let far = sender_at(&mallory_fresh, 5)
        .encrypt(&mut rng, b"x")
        .unwrap();
    let far = edited(&far, |b, l| {
        l.put(b, "chain", alice.chain().as_bytes());
        l.put_u32(b, "index", MAX_GROUP_JUMP + 10);
    });
    rejects(
        &mut receiver,
        &resign(&mallory, &far),
        Error::InvalidSignature,
    );

    // Another group with the same chain: unknown chain.
    let mut other = alice_in(&alice, OTHER_GROUP);
    let wrong_group = other.encrypt(&mut rng, b"wrong group").unwrap();
    rejects(&mut receiver, &wrong_group, Error::UnknownGroupChain);

    // A correctly signed message whose ciphertext is bad: the AEAD fails.
    let good = alice.encrypt(&mut rng, b"good").unwrap();
    let bytes = edited(&good, |b, l| l.flip(b, "ciphertext", 0, 1));
    let bad_aead = resign(&alice, &bytes);
    rejects(&mut receiver, &bad_aead, Error::AuthenticationFailed);
    assert_eq!(receiver.decrypt(&good).unwrap().as_bytes(), b"good");
    // Replays are rejected.
    rejects(&mut receiver, &good, Error::DuplicateMessage);
}

#[test]
fn receiver_state_cannot_read_consumed_or_evicted_messages() {
    let mut rng = rng(7);
    let fresh = new_sender(&mut rng, GROUP);
    let initial = sender_levels(&fresh);
    let mut sender = GroupSender::from_bytes(&fresh.to_bytes()).unwrap();
    let mut receiver = import(&sender);
    let messages: Vec<GroupMessage> = (0..120u32)
        .map(|i| sender.encrypt(&mut rng, &i.to_be_bytes()).unwrap())
        .collect();
    for m in &messages[..6] {
        receiver.decrypt(m).unwrap();
    }
    // Out of order: 50 first, then 40.
    receiver.decrypt(&messages[50]).unwrap();
    receiver.decrypt(&messages[40]).unwrap();
    let saved = receiver.to_bytes().to_vec();
    let mut copy = GroupReceiver::from_bytes(&saved).unwrap();

    // Consumed (0..=5, 40, 50) and never-cached (6..18) indices fail...
    for i in (0..18).chain([40, 50]) {
        rejects(&mut copy, &messages[i], Error::DuplicateMessage);
        // ...and no level of the ratchet at their index, nor their key, is
        // in the state's bytes.
        let levels = closed_form(&initial, i as u32);
        assert!(!contains(&saved, &message_key(&levels)), "key {i} kept");
        for (k, level) in levels.iter().enumerate() {
            // Levels that have not moved since are shared with the state.
            if closed_form(&initial, 51)[k] != *level {
                assert!(!contains(&saved, level), "R_{k} at index {i} kept");
            }
        }
    }
    // The installed index's ratchet is not kept either (SPEC §15.8).
    assert!(!contains(&saved, &closed_form(&initial, 0)[7]));
    // Cached indices 18..50 except 40 still work once each.
    for i in (18..50).filter(|i| *i != 40) {
        assert_eq!(copy.decrypt(&messages[i]).unwrap().index(), i as u32);
        rejects(&mut copy, &messages[i], Error::DuplicateMessage);
    }
    assert_eq!(copy.skipped_key_count(), 0);
    for m in &messages[51..] {
        copy.decrypt(m).unwrap();
    }
}

#[test]
fn skipped_key_cache_is_bounded() {
    let mut rng = rng(8);
    let fresh = new_sender(&mut rng, GROUP);
    let mut receiver = import(&fresh);
    let jumps = MAX_GROUP_SKIPPED_KEYS as u32 / GROUP_SKIP_WINDOW + 2;
    for j in 1..=jumps {
        let m = sender_at(&fresh, j * 100).encrypt(&mut rng, b"j").unwrap();
        receiver.decrypt(&m).unwrap();
        let expected = (j * GROUP_SKIP_WINDOW).min(MAX_GROUP_SKIPPED_KEYS as u32);
        assert_eq!(receiver.skipped_key_count(), expected as usize);
    }
    // A full cache is the largest state (SPEC §14.1).
    assert_eq!(GroupReceiver::MAX_ENCODED_LEN, 9589);
    assert_eq!(receiver.to_bytes().len(), GroupReceiver::MAX_ENCODED_LEN);
    // The lowest indices went first.
    let evicted = sender_at(&fresh, 100 - 1).encrypt(&mut rng, b"e").unwrap();
    rejects(&mut receiver, &evicted, Error::DuplicateMessage);
    let kept = sender_at(&fresh, jumps * 100 - 1)
        .encrypt(&mut rng, b"k")
        .unwrap();
    assert_eq!(receiver.decrypt(&kept).unwrap().as_bytes(), b"k");
}

#[test]
fn joiner_reads_only_from_the_current_index() {
    let mut rng = rng(9);
    let mut sender = new_sender(&mut rng, GROUP);
    let history: Vec<GroupMessage> = (0..5)
        .map(|_| sender.encrypt(&mut rng, b"old").unwrap())
        .collect();
    let distribution = sender.distribution();
    assert_eq!(distribution.index(), 5);
    let mut joiner =
        GroupReceiver::import_unauthenticated(&GROUP, &distribution.to_bytes()).unwrap();
    for m in &history {
        rejects(&mut joiner, m, Error::DuplicateMessage);
    }
    let now = sender.encrypt(&mut rng, b"new").unwrap();
    assert_eq!(joiner.decrypt(&now).unwrap().as_bytes(), b"new");
}

#[test]
fn installed_distribution_is_bound_to_its_owner_and_the_delivering_session() {
    let mut rng = rng(10);
    let alice = device(&mut rng);
    let mut bob = device(&mut rng);
    let mallory = device(&mut rng);
    let (mut a_to_b, mut b_to_a) = connect(&mut rng, &alice, &mut bob);
    let (mut m_to_b, mut b_to_m) = connect(&mut rng, &mallory, &mut bob);
    let mut sender = GroupSender::new(&mut rng, GROUP, &alice).unwrap();
    let mut accepted = deliver(&mut rng, &sender, &mut a_to_b, &mut b_to_a);
    let by_alice = Sender::Authenticated(*alice.identity_key());
    assert_eq!(accepted.sender(), &by_alice);
    assert_eq!(
        accepted.sender().authenticated(),
        Some(alice.identity_key())
    );
    let mut imported = import(&sender);
    let claimed = Sender::Unauthenticated {
        claimed: *alice.identity_key(),
    };
    assert_eq!(imported.sender(), &claimed);
    assert_eq!(imported.sender().authenticated(), None);
    assert_eq!(imported.sender().owner(), alice.identity_key());

    // Mallory forwards Alice's distribution over her own session: its owner
    // is not the session's peer, in either form of install, and the
    // session does not move in the one-call form.
    let forwarded = wire(&mut m_to_b, &mut rng, &sender.distribution().to_bytes());
    let before = b_to_m.to_bytes();
    assert_eq!(
        GroupReceiver::receive_distribution(&GROUP, &mut b_to_m, &forwarded).err(),
        Some(Error::GroupOwnerMismatch)
    );
    assert_eq!(*b_to_m.to_bytes(), *before);
    let plaintext = b_to_m.decrypt(&forwarded).unwrap();
    assert_eq!(
        GroupReceiver::install(&GROUP, &plaintext).err(),
        Some(Error::GroupOwnerMismatch)
    );
    // An owner proof or owner signature that does not verify (SPEC
    // §15.6), and another group.
    for field in ["owner_proof", "owner_signature"] {
        let mut bad = sender.distribution().to_bytes().to_vec();
        layout::distribution(&bad).flip(&mut bad, field, 2, 1);
        let carried = wire(&mut a_to_b, &mut rng, &bad);
        assert_eq!(
            GroupReceiver::receive_distribution(&GROUP, &mut b_to_a, &carried).err(),
            Some(Error::InvalidSignature)
        );
    }
    let carried = wire(&mut a_to_b, &mut rng, &sender.distribution().to_bytes());
    assert_eq!(
        GroupReceiver::receive_distribution(&OTHER_GROUP, &mut b_to_a, &carried).err(),
        Some(Error::GroupMismatch)
    );
    // A plaintext that is not exactly a distribution.
    let carried = wire(&mut a_to_b, &mut rng, b"hello");
    assert!(GroupReceiver::receive_distribution(&GROUP, &mut b_to_a, &carried).is_err());

    let m = sender.encrypt(&mut rng, b"m").unwrap();
    assert_eq!(*accepted.decrypt(&m).unwrap().sender(), by_alice);
    assert_eq!(*imported.decrypt(&m).unwrap().sender(), claimed);
    // The marker survives persistence.
    let restored = GroupReceiver::from_bytes(&imported.to_bytes()).unwrap();
    assert_eq!(restored.sender(), &claimed);
    let restored = GroupReceiver::from_bytes(&accepted.to_bytes()).unwrap();
    assert_eq!(restored.sender(), &by_alice);
}

#[test]
fn store_rules() {
    let mut rng = rng(11);
    let alice = device(&mut rng);
    let mut bob = device(&mut rng);
    let mallory = device(&mut rng);
    let (mut a_to_b, mut b_to_a) = connect(&mut rng, &alice, &mut bob);
    let (mut m_to_b, mut b_to_m) = connect(&mut rng, &mallory, &mut bob);
    let mut sender = GroupSender::new(&mut rng, GROUP, &alice).unwrap();
    let mut store = GroupReceivers::new(GROUP);
    assert!(store.is_empty());
    let mut send = |rng: &mut ChaCha20Rng, s: &GroupSender, to_bob: bool| {
        let d = s.distribution().to_bytes();
        if to_bob {
            wire(&mut a_to_b, rng, &d)
        } else {
            wire(&mut m_to_b, rng, &d)
        }
    };

    let first = send(&mut rng, &sender, true);
    assert_eq!(
        store.receive_distribution(&mut b_to_a, &first),
        Ok(InsertOutcome::Added)
    );
    // The same chain again, not ahead: unchanged, nothing moves back.
    let generation = store.generation();
    let again = send(&mut rng, &sender, true);
    assert_eq!(
        store.receive_distribution(&mut b_to_a, &again),
        Ok(InsertOutcome::Unchanged)
    );
    assert_eq!(store.generation(), generation);
    let m0 = sender.encrypt(&mut rng, b"0").unwrap();
    let m1 = sender.encrypt(&mut rng, b"1").unwrap();
    store.decrypt(&m1).unwrap();
    // Ahead: the ratchet moves forward and keeps the cached key for 0.
    let m2 = sender.encrypt(&mut rng, b"2").unwrap();
    let ahead = send(&mut rng, &sender, true);
    assert_eq!(
        store.receive_distribution(&mut b_to_a, &ahead),
        Ok(InsertOutcome::Advanced)
    );
    assert_eq!(store.get(sender.chain()).unwrap().next_index(), 3);
    assert_eq!(store.decrypt(&m0).unwrap().as_bytes(), b"0");
    assert_eq!(store.decrypt(&m2).err(), Some(Error::DuplicateMessage));

    // Mallory re-delivers Alice's chain: not hers, and the store and the
    // session are unchanged.
    let copied = send(&mut rng, &sender, false);
    let (store_before, session_before) = (store.to_bytes(), b_to_m.to_bytes());
    assert_eq!(
        store.receive_distribution(&mut b_to_m, &copied),
        Err(Error::GroupOwnerMismatch)
    );
    assert_eq!(
        (store.to_bytes(), b_to_m.to_bytes()),
        (store_before, session_before)
    );
    // An unauthenticated copy of a held chain, behind it: unchanged.
    assert_eq!(
        store.import_unauthenticated(&sender.distribution().to_bytes()),
        Ok(InsertOutcome::Unchanged)
    );
    // An unauthenticated copy of the chain on another ratchet (the owner
    // proof covers only the group, chain and owner): refused, the
    // authenticated chain stays.
    let mut tampered = sender.distribution().to_bytes().to_vec();
    layout::distribution(&tampered).flip(&mut tampered, "levels", 0, 1);
    let before = store.to_bytes();
    assert_eq!(
        store.import_unauthenticated(&tampered),
        Ok(InsertOutcome::Unchanged)
    );
    assert_eq!(store.to_bytes(), before);
    // Another group: mismatch. Unknown chain.
    let elsewhere = new_sender(&mut rng, OTHER_GROUP).distribution().to_bytes();
    assert_eq!(
        store.import_unauthenticated(&elsewhere),
        Err(Error::GroupMismatch)
    );
    let stranger = new_sender(&mut rng, GROUP).encrypt(&mut rng, b"?").unwrap();
    assert_eq!(
        store.decrypt(&stranger).err(),
        Some(Error::UnknownGroupChain)
    );

    // Rotations: at most MAX_CHAINS_PER_SENDER chains per owner, oldest dropped.
    let mut late = Vec::new();
    for _ in 0..MAX_CHAINS_PER_SENDER {
        late.push((*sender.chain(), sender.encrypt(&mut rng, b"late").unwrap()));
        sender.rotate(&mut rng, &alice).unwrap();
        let r = send(&mut rng, &sender, true);
        assert_eq!(
            store.receive_distribution(&mut b_to_a, &r),
            Ok(InsertOutcome::Added)
        );
    }
    assert_eq!(store.len(), MAX_CHAINS_PER_SENDER);
    assert_eq!(
        store.decrypt(&late[0].1).err(),
        Some(Error::UnknownGroupChain)
    );
    for (chain, m) in &late[1..] {
        let read = store.decrypt(m).unwrap();
        assert_eq!(read.chain(), chain);
        assert_eq!(*read.sender(), Sender::Authenticated(*alice.identity_key()));
    }
    let oldest_first: Vec<_> = store.iter().map(|r| *r.chain()).collect();
    assert_eq!(oldest_first[..3], [late[1].0, late[2].0, late[3].0]);

    // Removing the owner deletes its chains.
    assert_eq!(
        store.remove_owner(alice.identity_key()),
        MAX_CHAINS_PER_SENDER
    );
    assert!(store.is_empty());
    assert_eq!(store.remove_owner(alice.identity_key()), 0);
}

#[test]
fn authenticated_copy_upgrades_an_unauthenticated_one() {
    let mut rng = rng(18);
    let alice = device(&mut rng);
    let mut bob = device(&mut rng);
    let (mut a_to_b, mut b_to_a) = connect(&mut rng, &alice, &mut bob);
    let mut sender = GroupSender::new(&mut rng, GROUP, &alice).unwrap();
    let early = sender.distribution().to_bytes();
    let m0 = sender.encrypt(&mut rng, b"0").unwrap();

    // A genuine backup arrives first, unauthenticated; the owner's own copy
    // (behind it) upgrades it in place.
    let mut store = GroupReceivers::new(GROUP);
    assert_eq!(
        store.import_unauthenticated(&early),
        Ok(InsertOutcome::Added)
    );
    assert_eq!(store.decrypt(&m0).unwrap().sender().authenticated(), None);
    let carried = wire(&mut a_to_b, &mut rng, &early);
    assert_eq!(
        store.receive_distribution(&mut b_to_a, &carried),
        Ok(InsertOutcome::Upgraded)
    );
    let m1 = sender.encrypt(&mut rng, b"1").unwrap();
    assert_eq!(
        *store.decrypt(&m1).unwrap().sender(),
        Sender::Authenticated(*alice.identity_key())
    );
    assert_eq!(store.decrypt(&m0).err(), Some(Error::DuplicateMessage));

    // A tampered import (another ratchet under the real chain) arrives
    // first: the owner's copy upgrades it, replacing its ratchet, and reads
    // what the forgery could not.
    let mut store = GroupReceivers::new(GROUP);
    let mut tampered = sender.distribution().to_bytes().to_vec();
    // A byte of R_7, which the next key comes from (SPEC §15.6: R at 230).
    tampered[230 + 7 * 32 + 5] ^= 0x40;
    assert_eq!(
        store.import_unauthenticated(&tampered),
        Ok(InsertOutcome::Added)
    );
    let m2 = sender.encrypt(&mut rng, b"2").unwrap();
    assert!(store.decrypt(&m2).is_err());
    let mut back = GroupSender::from_bytes(&sender.to_bytes()).unwrap();
    let carried = wire(&mut a_to_b, &mut rng, &back.distribution().to_bytes());
    assert_eq!(
        store.receive_distribution(&mut b_to_a, &carried),
        Ok(InsertOutcome::Upgraded)
    );
    let m3 = back.encrypt(&mut rng, b"3").unwrap();
    assert_eq!(store.decrypt(&m3).unwrap().as_bytes(), b"3");
}

#[test]
fn save_and_restore_mid_stream() {
    let mut rng = rng(12);
    let key = StorageKey::from_bytes([3; 32]);
    let wrong = StorageKey::from_bytes([4; 32]);
    let mut sender = new_sender(&mut rng, GROUP);
    let mut receiver = import(&sender);
    let early: Vec<GroupMessage> = (0..4)
        .map(|_| sender.encrypt(&mut rng, b"early").unwrap())
        .collect();
    receiver.decrypt(&early[3]).unwrap();
    let mut store = GroupReceivers::new(GROUP);
    store
        .import_unauthenticated(&sender.distribution().to_bytes())
        .unwrap();

    let sealed_sender = sender.seal(&key, b"sender", &mut rng).unwrap();
    let sealed_receiver = receiver.seal(&key, b"receiver", &mut rng).unwrap();
    let sealed_store = store.seal(&key, b"store", &mut rng).unwrap();
    assert_eq!(
        GroupSender::unseal(&sealed_sender, &wrong, b"sender").unwrap_err(),
        Error::AuthenticationFailed
    );
    assert_eq!(
        GroupSender::unseal(&sealed_sender, &key, b"receiver").unwrap_err(),
        Error::AuthenticationFailed
    );
    assert_eq!(
        GroupReceiver::unseal(&sealed_sender, &key, b"sender").unwrap_err(),
        Error::WrongType {
            expected: 0x23,
            found: 0x22
        }
    );
    assert_eq!(
        GroupReceivers::unseal(&sealed_receiver, &key, b"receiver").unwrap_err(),
        Error::WrongType {
            expected: 0x24,
            found: 0x23
        }
    );
    let mut sender = GroupSender::unseal(&sealed_sender, &key, b"sender").unwrap();
    let mut receiver = GroupReceiver::unseal(&sealed_receiver, &key, b"receiver").unwrap();
    let mut store = GroupReceivers::unseal(&sealed_store, &key, b"store").unwrap();
    assert_eq!(sender.index(), 4);
    assert_eq!(receiver.next_index(), 4);
    assert_eq!(receiver.skipped_key_count(), 3);
    let later = sender.encrypt(&mut rng, b"later").unwrap();
    assert_eq!(receiver.decrypt(&later).unwrap().as_bytes(), b"later");
    assert_eq!(store.decrypt(&later).unwrap().as_bytes(), b"later");
    for m in &early[..3] {
        assert_eq!(receiver.decrypt(m).unwrap().as_bytes(), b"early");
    }
    rejects(&mut receiver, &early[3], Error::DuplicateMessage);
    // Plain encodings round-trip exactly; generations count the changes.
    assert_eq!(
        GroupSender::from_bytes(&sender.to_bytes())
            .unwrap()
            .to_bytes(),
        sender.to_bytes()
    );
    assert_eq!(
        GroupReceiver::from_bytes(&receiver.to_bytes())
            .unwrap()
            .to_bytes(),
        receiver.to_bytes()
    );
    assert_eq!(
        GroupReceivers::from_bytes(&store.to_bytes())
            .unwrap()
            .to_bytes(),
        store.to_bytes()
    );
    assert_eq!(sender.generation(), 5);
    assert_eq!(receiver.generation(), 5);
    assert_eq!(store.generation(), 2);
}

#[test]
fn restored_sender_uses_fresh_salts() {
    // A sender restored from an old state reuses its indices; the random
    // salt still gives each message its own AES key and nonce.
    let mut rng = rng(13);
    let mut sender = new_sender(&mut rng, GROUP);
    let saved = sender.to_bytes();
    let a = sender.encrypt(&mut rng, b"same").unwrap();
    let b = GroupSender::from_bytes(&saved)
        .unwrap()
        .encrypt(&mut rng, b"same")
        .unwrap();
    assert_eq!(a.index(), b.index());
    let l = layout::group_message(a.as_bytes());
    for field in ["salt", "ciphertext", "tag", "signature"] {
        assert_ne!(l.slice(a.as_bytes(), field), l.slice(b.as_bytes(), field));
    }
}

#[test]
fn strict_state_and_distribution_parsing() {
    let mut rng = rng(14);
    let mut sender = new_sender(&mut rng, GROUP);
    let mut receiver = import(&sender);
    let _skip = sender.encrypt(&mut rng, b"a").unwrap();
    let _skip2 = sender.encrypt(&mut rng, b"b").unwrap();
    receiver
        .decrypt(&sender.encrypt(&mut rng, b"c").unwrap())
        .unwrap();
    // An unauthenticated receiver with two cached keys (SPEC §15.11).
    let good = receiver.to_bytes().to_vec();
    let l = layout::receiver_state(&good);
    assert_eq!(l.slice(&good, "count"), [0, 2]);
    assert_eq!(good.len(), l.end_of("cache[1].key"));

    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(
        GroupReceiver::from_bytes(&trailing).unwrap_err(),
        Error::TrailingBytes
    );
    assert_eq!(
        GroupReceiver::from_bytes(&good[..good.len() - 1]).unwrap_err(),
        Error::Truncated
    );
    let mut flag = good.clone();
    l.put_u8(&mut flag, "authenticated", 2);
    assert_eq!(
        GroupReceiver::from_bytes(&flag).unwrap_err(),
        Error::InvalidEncoding
    );
    let mut unsorted = good.clone();
    l.put(
        &mut unsorted,
        "cache[0].index",
        l.slice(&good, "cache[1].index"),
    );
    l.put(
        &mut unsorted,
        "cache[1].index",
        l.slice(&good, "cache[0].index"),
    );
    assert_eq!(
        GroupReceiver::from_bytes(&unsorted).unwrap_err(),
        Error::InvalidEncoding
    );
    let mut not_below_next = good.clone();
    l.put_u32(&mut not_below_next, "cache[1].index", 3);
    assert_eq!(
        GroupReceiver::from_bytes(&not_below_next).unwrap_err(),
        Error::InvalidEncoding
    );
    let mut many = good[..l.start("count")].to_vec();
    l.put_u32(&mut many, "next", 1000);
    let count = MAX_GROUP_SKIPPED_KEYS as u32 + 1;
    many.extend_from_slice(&(count as u16).to_be_bytes());
    for i in 0..count {
        many.extend_from_slice(&i.to_be_bytes());
        many.extend_from_slice(&[0; 32]);
    }
    assert_eq!(
        GroupReceiver::from_bytes(&many).unwrap_err(),
        Error::InvalidEncoding
    );
    // A small-order chain key, and a small-order owner.
    for field in ["chain", "owner"] {
        let mut weak_key = good.clone();
        l.put(&mut weak_key, field, &ED25519_SMALL_ORDER);
        assert_eq!(
            GroupReceiver::from_bytes(&weak_key).unwrap_err(),
            Error::InvalidPublicKey
        );
    }

    let state = sender.to_bytes().to_vec();
    assert_eq!(state.len(), GroupSender::ENCODED_LEN);
    let mut trailing = state.clone();
    trailing.push(0);
    assert_eq!(
        GroupSender::from_bytes(&trailing).unwrap_err(),
        Error::TrailingBytes
    );
    let mut version = state.clone();
    layout::sender_state(&state).put_u8(&mut version, "version", 1);
    assert_eq!(
        GroupSender::from_bytes(&version).unwrap_err(),
        Error::UnsupportedVersion { found: 1 }
    );

    let distribution = sender.distribution().to_bytes().to_vec();
    assert_eq!(distribution.len(), SenderKeyDistribution::ENCODED_LEN);
    let parsed = SenderKeyDistribution::from_bytes(&distribution).unwrap();
    assert_eq!(
        (
            parsed.group_id(),
            parsed.chain(),
            parsed.index(),
            parsed.owner()
        ),
        (&GROUP, sender.chain(), 3, sender.owner())
    );
    let import_err =
        |bytes: &[u8]| GroupReceiver::import_unauthenticated(&GROUP, bytes).unwrap_err();
    let mut trailing = distribution.clone();
    trailing.push(0);
    assert_eq!(import_err(&trailing), Error::TrailingBytes);
    assert_eq!(
        import_err(&distribution[..distribution.len() - 1]),
        Error::Truncated
    );
    let d = layout::distribution(&distribution);
    let mut wrong_type = distribution.clone();
    d.put_u8(&mut wrong_type, "type", 0x03);
    assert_eq!(
        import_err(&wrong_type),
        Error::WrongType {
            expected: 0x04,
            found: 0x03
        }
    );
    // Chain and owner keys: small order.
    for field in ["chain", "owner"] {
        let mut weak = distribution.clone();
        d.put(&mut weak, field, &ED25519_SMALL_ORDER);
        assert_eq!(import_err(&weak), Error::InvalidPublicKey);
    }
    // Another owner named: the owner proof fails.
    let mut other_owner = distribution.clone();
    d.put(
        &mut other_owner,
        "owner",
        device(&mut rng).identity_key().as_bytes(),
    );
    assert_eq!(import_err(&other_owner), Error::InvalidSignature);

    // Messages: too large before parsing, too short, wrong type.
    assert_eq!(
        GroupMessage::from_bytes(&vec![0; MAX_GROUP_MESSAGE_LEN + 1]).unwrap_err(),
        Error::TooLarge
    );
    let m = sender.encrypt(&mut rng, b"").unwrap();
    assert_eq!(m.as_bytes().len(), OVERHEAD);
    assert_eq!(
        GroupMessage::from_bytes(&m.as_bytes()[..OVERHEAD - 1]).unwrap_err(),
        Error::Truncated
    );
    let mut wrong_type = m.as_bytes().to_vec();
    layout::group_message(m.as_bytes()).put_u8(&mut wrong_type, "type", 0x01);
    assert_eq!(
        GroupMessage::from_vec(wrong_type).unwrap_err(),
        Error::WrongType {
            expected: 0x03,
            found: 0x01
        }
    );
    assert_eq!(
        sender
            .encrypt(&mut rng, &vec![0; sotto::MAX_PLAINTEXT_LEN + 1])
            .unwrap_err(),
        Error::PlaintextTooLarge
    );
    let biggest = sender
        .encrypt(&mut rng, &vec![7; sotto::MAX_PLAINTEXT_LEN])
        .unwrap();
    assert_eq!(biggest.as_bytes().len(), MAX_GROUP_MESSAGE_LEN);
    assert_eq!(
        receiver
            .decrypt(&GroupMessage::from_bytes(biggest.as_bytes()).unwrap())
            .unwrap()
            .as_bytes()
            .len(),
        sotto::MAX_PLAINTEXT_LEN
    );
}

#[test]
fn debug_output_has_no_secrets() {
    let mut rng = rng(15);
    let sender = new_sender(&mut rng, GROUP);
    let receiver = import(&sender);
    let mut store = GroupReceivers::new(GROUP);
    store
        .import_unauthenticated(&sender.distribution().to_bytes())
        .unwrap();
    let (seed_hex, r0_hex) = (hex(&chain_seed(&sender)), hex(&sender_levels(&sender)[0]));
    for text in [
        format!("{sender:?}"),
        format!("{receiver:?}"),
        format!("{:?}", sender.distribution()),
        format!("{store:?}").replace("receivers: [", "receivers: "),
    ] {
        assert!(!text.contains('['), "{text}");
        assert!(
            !text.contains(&seed_hex[..16]) && !text.contains(&r0_hex[..16]),
            "{text}"
        );
        assert!(text.contains("chain") || text.contains("group"), "{text}");
    }
}

// ---------------------------------------------------------------------------
// Delivery schedules: any order, with drops and duplicates. The reference
// model's receiver rules (SPEC §15.8) predict which deliveries decrypt; each
// message decrypts at most once.

/// Must a receiver at `window` decrypt `index`? Applies it if so.
fn deliver_to(window: &mut Window<()>, index: u32) -> bool {
    match window.plan(index) {
        Ok(Step::Cached) => window.cache.remove(&index).is_some(),
        Ok(Step::Ratchet { skip_from }) => {
            window.commit(index, (skip_from..index).map(|i| (i, ())));
            true
        }
        Err(_) => false,
    }
}

const SENDERS: usize = 3;
const PER_SENDER: u32 = 40;

proptest! {
    // Few cases: every delivery is an Ed25519 verification, slow in debug builds.
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn delivery_schedules(
        schedule in prop::collection::vec((0..SENDERS, 0..PER_SENDER), 0..100),
        restore_at in 0usize..100,
    ) {
        let mut rng = rng(16);
        let mut senders: Vec<GroupSender> =
            (0..SENDERS).map(|_| new_sender(&mut rng, GROUP)).collect();
        let mut store = GroupReceivers::new(GROUP);
        for s in &senders {
            store.import_unauthenticated(&s.distribution().to_bytes()).unwrap();
        }
        let sent: Vec<Vec<GroupMessage>> = senders
            .iter_mut()
            .enumerate()
            .map(|(s, sender)| {
                (0..PER_SENDER)
                    .map(|i| sender.encrypt(&mut rng, &[s as u8, i as u8]).unwrap())
                    .collect()
            })
            .collect();
        let mut models: Vec<Window<()>> = (0..SENDERS).map(|_| Window::at(0)).collect();
        let mut decrypted = BTreeSet::new();
        for (step, &(s, i)) in schedule.iter().enumerate() {
            if step == restore_at {
                store = GroupReceivers::from_bytes(&store.to_bytes()).unwrap();
            }
            let message = &sent[s][i as usize];
            let expected = deliver_to(&mut models[s], i);
            let before = store.to_bytes();
            match store.decrypt(message) {
                Ok(read) => {
                    prop_assert!(expected);
                    prop_assert_eq!(read.as_bytes(), vec![s as u8, i as u8]);
                    prop_assert!(decrypted.insert((s, i)), "decrypted twice");
                }
                Err(e) => {
                    prop_assert!(!expected);
                    prop_assert_eq!(e, Error::DuplicateMessage);
                    prop_assert_eq!(store.to_bytes(), before);
                }
            }
        }
    }
}
