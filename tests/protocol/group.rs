//! Group messaging (sender keys): several members, jumps and limits,
//! tampering, the store's rules, save and restore, and random delivery
//! schedules checked against the model.

use std::collections::BTreeSet;

use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use sotto::group::{
    GROUP_SKIP_WINDOW, GroupId, GroupMessage, GroupReceiver, GroupReceivers, GroupSender,
    MAX_CHAINS_PER_SENDER, MAX_GROUP_JUMP, MAX_GROUP_MESSAGE_LEN, MAX_GROUP_SKIPPED_KEYS, Sender,
    SenderKeyDistribution,
};
use sotto::{Device, Error, Session, StorageKey};
use testkit::fixtures::{Member, connect, deliver_distribution, rng};
use testkit::hex::hex;
use testkit::layout;
use testkit::model::group::message::{OVERHEAD, unsigned};
use testkit::model::group::ratchet::closed_form;
use testkit::model::group::window::Step;
use testkit::model::group::{GReceiver, GSender, Levels, Window, message_key};
use testkit::points::ED25519_SMALL_ORDER;

const GROUP: GroupId = GroupId::from_bytes([0x47; 32]);
const OTHER_GROUP: GroupId = GroupId::from_bytes([0x48; 32]);

// ---------------------------------------------------------------------------
// Senders placed at any index, and messages re-signed, through the model
// (its closed form of the ratchet, SPEC §15.4, not the library's
// increment and jump code).

/// A saved sender, decoded by the model.
fn model_sender(sender: &GroupSender) -> GSender {
    GSender::parse(&sender.to_bytes()).unwrap()
}

/// The initial levels of a sender at index 0.
fn initial_levels(fresh: &GroupSender) -> Levels {
    let m = model_sender(fresh);
    assert_eq!(m.index, 0);
    m.levels
}

/// The same chain as `fresh` (a sender at index 0), moved to index `n`.
fn sender_at(fresh: &GroupSender, n: u32) -> GroupSender {
    let m = GSender {
        index: n,
        levels: closed_form(&initial_levels(fresh), n),
        ..model_sender(fresh)
    };
    let sender = GroupSender::from_bytes(&m.encode()).unwrap();
    assert_eq!(sender.index(), n);
    sender
}

/// Re-signs `bytes` (a message without its signature) with the chain's key.
fn resign(chain: &GroupSender, bytes: &[u8]) -> GroupMessage {
    GroupMessage::from_vec(model_sender(chain).sign(bytes)).unwrap()
}

/// A message's bytes with one field changed, without its signature.
fn edited(message: &GroupMessage, edit: impl FnOnce(&layout::Layout, &mut Vec<u8>)) -> Vec<u8> {
    let mut bytes = message.as_bytes().to_vec();
    let l = layout::group_message(&bytes);
    edit(&l, &mut bytes);
    unsigned(&bytes).to_vec()
}

fn import(sender: &GroupSender) -> GroupReceiver {
    GroupReceiver::import_unauthenticated(&sender.distribution().to_bytes()).unwrap()
}

/// Decrypt must fail with `expected` and leave the state byte-for-byte as it was.
fn rejects(receiver: &mut GroupReceiver, message: &GroupMessage, expected: Error) {
    let before = receiver.to_bytes();
    assert_eq!(receiver.decrypt(message), Err(expected));
    assert_eq!(receiver.to_bytes(), before);
}

fn contains(haystack: &[u8], needle: &[u8; 32]) -> bool {
    haystack.windows(32).any(|w| w == needle)
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

/// Delivers `from`'s distribution to each member in `to` over their sessions.
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
        let receiver = deliver(rng, &members[from].sender, a, b);
        assert_eq!(
            receiver.sender(),
            &Sender::Authenticated(members[from].identity())
        );
        members[j].store.insert(receiver).unwrap();
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
            assert_eq!(&read.plaintext, text);
            assert_eq!(
                read.sender,
                Sender::Authenticated(members[*from].identity())
            );
        }
    }
    for (from, message, text) in sent.iter().rev() {
        for reader in [0, 2] {
            if reader != *from {
                let read = members[reader].store.decrypt(message).unwrap();
                assert_eq!(&read.plaintext, text);
                assert_eq!(read.index, message.index());
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
            assert_eq!(members[reader].store.decrypt(message), Err(expected));
        }
    }

    // Carol (2) is removed: Alice and Bob rotate and re-distribute to each other only.
    let carol = Sender::Authenticated(members[2].identity());
    for m in &mut members[..2] {
        assert_eq!(m.store.remove_sender(&carol), 1);
    }
    let old_alice_chain = members[0].sender.chain_id();
    for who in 0..2 {
        members[who].sender.rotate(&mut rng);
    }
    assert_ne!(members[0].sender.chain_id(), old_alice_chain);
    distribute(&mut rng, &mut members, &mut sessions, 0, &[1]);
    distribute(&mut rng, &mut members, &mut sessions, 1, &[0]);
    for who in 0..2 {
        let message = members[who]
            .sender
            .encrypt(&mut rng, b"after carol")
            .unwrap();
        let reader = 1 - who;
        assert_eq!(
            members[reader].store.decrypt(&message).unwrap().plaintext,
            b"after carol"
        );
        let carol_before: Vec<Vec<u8>> = members[2]
            .store
            .iter()
            .map(|r| r.to_bytes().to_vec())
            .collect();
        assert_eq!(
            members[2].store.decrypt(&message),
            Err(Error::UnknownGroupChain)
        );
        // Carol's old receiver for this member cannot read it either.
        let old = members[2]
            .store
            .iter()
            .find(|r| r.sender() == &Sender::Authenticated(members[who].identity()))
            .unwrap();
        let mut old = GroupReceiver::from_bytes(&old.to_bytes()).unwrap();
        assert_eq!(old.decrypt(&message), Err(Error::UnknownGroupChain));
        let carol_after: Vec<Vec<u8>> = members[2]
            .store
            .iter()
            .map(|r| r.to_bytes().to_vec())
            .collect();
        assert_eq!(carol_before, carol_after);
    }
    // Both remember their old chains for late messages.
    assert_eq!(members[1].store.len(), 2);
}

#[test]
fn jumps_up_to_the_limit() {
    let mut rng = rng(2);
    let fresh = GroupSender::new(&mut rng, GROUP);
    for n in [1, 255, 256, 65_535, 65_536, MAX_GROUP_JUMP] {
        let mut receiver = import(&fresh);
        let message = sender_at(&fresh, n).encrypt(&mut rng, b"far").unwrap();
        assert_eq!(message.index(), n);
        let read = receiver.decrypt(&message).unwrap();
        assert_eq!((read.plaintext.as_slice(), read.index), (&b"far"[..], n));
        assert_eq!(receiver.next_index(), n + 1);
        let cached = n.min(GROUP_SKIP_WINDOW);
        assert_eq!(receiver.skipped_key_count(), cached as usize);
        // The nearest skipped indices are cached; the ones before are gone.
        let last_skipped = sender_at(&fresh, n - 1).encrypt(&mut rng, b"late").unwrap();
        assert_eq!(receiver.decrypt(&last_skipped).unwrap().plaintext, b"late");
        let first_cached = sender_at(&fresh, n - cached)
            .encrypt(&mut rng, b"late")
            .unwrap();
        if cached > 1 {
            assert_eq!(receiver.decrypt(&first_cached).unwrap().plaintext, b"late");
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
    let mut fresh = GroupSender::new(&mut rng, GROUP);
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
    assert_eq!(receiver.decrypt(&too_far).unwrap().plaintext, b"x");
    assert_eq!(receiver.next_index(), MAX_GROUP_JUMP + 2);
}

#[test]
fn chain_ends_before_the_last_index() {
    let mut rng = rng(4);
    let fresh = GroupSender::new(&mut rng, GROUP);
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
    let bytes = edited(&final_message, |l, b| l.put_u32(b, "index", u32::MAX));
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
    let mut sender = GroupSender::new(&mut rng, GROUP);
    let mut receiver = import(&sender);
    let skipped = sender.encrypt(&mut rng, b"skipped").unwrap();
    let message = sender.encrypt(&mut rng, b"tamper with me").unwrap();
    let original = message.as_bytes().to_vec();
    for at in 0..original.len() {
        for flip in [0x01u8, 0x80] {
            let mut bytes = original.clone();
            bytes[at] ^= flip;
            // Either parsing or decryption fails, and nothing changes.
            if let Ok(tampered) = GroupMessage::from_vec(bytes) {
                let before = receiver.to_bytes();
                assert!(receiver.decrypt(&tampered).is_err(), "flip at byte {at}");
                assert_eq!(receiver.to_bytes(), before);
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
        receiver.decrypt(&message).unwrap().plaintext,
        b"tamper with me"
    );
    assert_eq!(receiver.decrypt(&skipped).unwrap().plaintext, b"skipped");
}

#[test]
fn signature_is_checked_before_anything_else() {
    let mut rng = rng(6);
    let mut alice = GroupSender::new(&mut rng, GROUP);
    let mut receiver = import(&alice);

    // Mallory's chain with Alice's chain id: the signature fails.
    let mallory = GroupSender::new(&mut rng, GROUP);
    let state = GSender {
        chain_id: alice.chain_id(),
        ..model_sender(&mallory)
    }
    .encode();
    let mut mallory = GroupSender::from_bytes(&state).unwrap();
    let forged = mallory.encrypt(&mut rng, b"I am Alice").unwrap();
    assert_eq!(forged.chain_id(), alice.chain_id());
    rejects(&mut receiver, &forged, Error::InvalidSignature);
    // Even a forgery far out of range fails on its signature first.
    let far = sender_at(
        &GroupSender::from_bytes(&state).unwrap(),
        MAX_GROUP_JUMP + 10,
    )
    .encrypt(&mut rng, b"x")
    .unwrap();
    rejects(&mut receiver, &far, Error::InvalidSignature);

    // Another group with the same chain id: unknown chain.
    let mut other = alice_in(&alice, OTHER_GROUP);
    let wrong_group = other.encrypt(&mut rng, b"wrong group").unwrap();
    rejects(&mut receiver, &wrong_group, Error::UnknownGroupChain);

    // A correctly signed message whose ciphertext is bad: the AEAD fails.
    let good = alice.encrypt(&mut rng, b"good").unwrap();
    let bytes = edited(&good, |l, b| l.flip(b, "ciphertext", 0, 1));
    let bad_aead = resign(&alice, &bytes);
    rejects(&mut receiver, &bad_aead, Error::AuthenticationFailed);
    assert_eq!(receiver.decrypt(&good).unwrap().plaintext, b"good");
    // Replays are rejected.
    rejects(&mut receiver, &good, Error::DuplicateMessage);
}

/// Alice's chain, relabelled for another group.
fn alice_in(alice: &GroupSender, group: GroupId) -> GroupSender {
    let state = GSender {
        group: *group.as_bytes(),
        ..model_sender(alice)
    }
    .encode();
    GroupSender::from_bytes(&state).unwrap()
}

#[test]
fn receiver_state_cannot_read_consumed_or_evicted_messages() {
    let mut rng = rng(7);
    let fresh = GroupSender::new(&mut rng, GROUP);
    let initial = initial_levels(&fresh);
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
        // ...and neither their key nor the last level at their index is in the state.
        let levels = closed_form(&initial, i as u32);
        assert!(!contains(&saved, &message_key(&levels)), "key {i} kept");
        assert!(!contains(&saved, &levels[7]), "R_7 at index {i} kept");
    }
    // Cached indices 18..50 except 40 still work once each.
    for i in (18..50).filter(|i| *i != 40) {
        assert_eq!(copy.decrypt(&messages[i]).unwrap().index, i as u32);
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
    let fresh = GroupSender::new(&mut rng, GROUP);
    let mut receiver = import(&fresh);
    let jumps = MAX_GROUP_SKIPPED_KEYS as u32 / GROUP_SKIP_WINDOW + 2;
    for j in 1..=jumps {
        let m = sender_at(&fresh, j * 100).encrypt(&mut rng, b"j").unwrap();
        receiver.decrypt(&m).unwrap();
        let expected = (j * GROUP_SKIP_WINDOW).min(MAX_GROUP_SKIPPED_KEYS as u32);
        assert_eq!(receiver.skipped_key_count(), expected as usize);
    }
    // A full cache is the largest state (less the identity of an authenticated one).
    assert_eq!(GroupReceiver::MAX_ENCODED_LEN, 9613);
    assert_eq!(
        receiver.to_bytes().len(),
        GroupReceiver::MAX_ENCODED_LEN - 64
    );
    // The lowest indices went first.
    let evicted = sender_at(&fresh, 100 - 1).encrypt(&mut rng, b"e").unwrap();
    rejects(&mut receiver, &evicted, Error::DuplicateMessage);
    let kept = sender_at(&fresh, jumps * 100 - 1)
        .encrypt(&mut rng, b"k")
        .unwrap();
    assert_eq!(receiver.decrypt(&kept).unwrap().plaintext, b"k");
}

#[test]
fn joiner_reads_only_from_the_current_index() {
    let mut rng = rng(9);
    let mut sender = GroupSender::new(&mut rng, GROUP);
    let history: Vec<GroupMessage> = (0..5)
        .map(|_| sender.encrypt(&mut rng, b"old").unwrap())
        .collect();
    let distribution = sender.distribution();
    assert_eq!(distribution.index(), 5);
    let mut joiner = GroupReceiver::import_unauthenticated(&distribution.to_bytes()).unwrap();
    for m in &history {
        rejects(&mut joiner, m, Error::DuplicateMessage);
    }
    let now = sender.encrypt(&mut rng, b"new").unwrap();
    assert_eq!(joiner.decrypt(&now).unwrap().plaintext, b"new");
}

#[test]
fn accepted_distribution_is_bound_to_the_delivering_session() {
    let mut rng = rng(10);
    let alice = Device::generate(&mut rng);
    let mut bob = Device::generate(&mut rng);
    let (mut a_to_b, mut b_to_a) = connect(&mut rng, &alice, &mut bob);
    let mut sender = GroupSender::new(&mut rng, GROUP);
    let mut accepted = deliver(&mut rng, &sender, &mut a_to_b, &mut b_to_a);
    assert_eq!(
        accepted.sender(),
        &Sender::Authenticated(*alice.identity_key())
    );
    assert_eq!(accepted.sender().identity(), Some(alice.identity_key()));
    let mut imported = import(&sender);
    assert_eq!(imported.sender(), &Sender::Unauthenticated);
    assert_eq!(imported.sender().identity(), None);

    let m = sender.encrypt(&mut rng, b"m").unwrap();
    assert_eq!(
        accepted.decrypt(&m).unwrap().sender,
        Sender::Authenticated(*alice.identity_key())
    );
    assert_eq!(
        imported.decrypt(&m).unwrap().sender,
        Sender::Unauthenticated
    );
    // The marker survives persistence.
    let restored = GroupReceiver::from_bytes(&imported.to_bytes()).unwrap();
    assert_eq!(restored.sender(), &Sender::Unauthenticated);
    let restored = GroupReceiver::from_bytes(&accepted.to_bytes()).unwrap();
    assert_eq!(
        restored.sender(),
        &Sender::Authenticated(*alice.identity_key())
    );
}

#[test]
fn store_rules() {
    let mut rng = rng(11);
    let alice = Device::generate(&mut rng);
    let mut bob = Device::generate(&mut rng);
    let mallory = Device::generate(&mut rng);
    let (mut a_to_b, mut b_to_a) = connect(&mut rng, &alice, &mut bob);
    let (mut m_to_b, mut b_to_m) = connect(&mut rng, &mallory, &mut bob);
    let mut sender = GroupSender::new(&mut rng, GROUP);
    let mut store = GroupReceivers::new(GROUP);
    assert!(store.is_empty());

    let first = deliver(&mut rng, &sender, &mut a_to_b, &mut b_to_a);
    store.insert(first).unwrap();
    // The same chain again, not ahead: rejected, nothing moves back.
    let again = deliver(&mut rng, &sender, &mut a_to_b, &mut b_to_a);
    assert_eq!(store.insert(again), Err(Error::GroupChainNotNewer));
    let m0 = sender.encrypt(&mut rng, b"0").unwrap();
    let m1 = sender.encrypt(&mut rng, b"1").unwrap();
    store.decrypt(&m1).unwrap();
    // Ahead: the ratchet moves forward and keeps the cached key for 0.
    let m2 = sender.encrypt(&mut rng, b"2").unwrap();
    let ahead = deliver(&mut rng, &sender, &mut a_to_b, &mut b_to_a);
    store.insert(ahead).unwrap();
    assert_eq!(store.get(sender.chain_id()).unwrap().next_index(), 3);
    assert_eq!(store.decrypt(&m0).unwrap().plaintext, b"0");
    assert_eq!(store.decrypt(&m2), Err(Error::DuplicateMessage));

    // Mallory re-delivers Alice's chain as her own: conflict.
    let copied = deliver(&mut rng, &sender, &mut m_to_b, &mut b_to_m);
    assert_eq!(store.insert(copied), Err(Error::GroupChainConflict));
    // Unauthenticated import of a held chain: conflict.
    assert_eq!(
        store.insert(import(&sender)),
        Err(Error::GroupChainConflict)
    );
    // Another group: mismatch.
    let elsewhere = import(&GroupSender::new(&mut rng, OTHER_GROUP));
    assert_eq!(store.insert(elsewhere), Err(Error::GroupMismatch));
    // Unknown chain.
    let stranger = GroupSender::new(&mut rng, GROUP)
        .encrypt(&mut rng, b"?")
        .unwrap();
    assert_eq!(store.decrypt(&stranger), Err(Error::UnknownGroupChain));

    // Rotations: at most MAX_CHAINS_PER_SENDER chains per sender, oldest dropped.
    let mut late = Vec::new();
    for _ in 0..MAX_CHAINS_PER_SENDER {
        late.push((
            sender.chain_id(),
            sender.encrypt(&mut rng, b"late").unwrap(),
        ));
        sender.rotate(&mut rng);
        let r = deliver(&mut rng, &sender, &mut a_to_b, &mut b_to_a);
        store.insert(r).unwrap();
    }
    assert_eq!(store.len(), MAX_CHAINS_PER_SENDER);
    assert_eq!(store.decrypt(&late[0].1), Err(Error::UnknownGroupChain));
    for (chain, m) in &late[1..] {
        let read = store.decrypt(m).unwrap();
        assert_eq!(read.chain_id, *chain);
        assert_eq!(read.sender, Sender::Authenticated(*alice.identity_key()));
    }
    let oldest_first: Vec<u32> = store.iter().map(|r| r.chain_id()).collect();
    assert_eq!(oldest_first[..3], [late[1].0, late[2].0, late[3].0]);

    // Removing the sender deletes its chains.
    assert_eq!(
        store.remove_sender(&Sender::Authenticated(*alice.identity_key())),
        MAX_CHAINS_PER_SENDER
    );
    assert!(store.is_empty());
}

#[test]
fn save_and_restore_mid_stream() {
    let mut rng = rng(12);
    let key = StorageKey::from_bytes([3; 32]);
    let wrong = StorageKey::from_bytes([4; 32]);
    let mut sender = GroupSender::new(&mut rng, GROUP);
    let mut receiver = import(&sender);
    let early: Vec<GroupMessage> = (0..4)
        .map(|_| sender.encrypt(&mut rng, b"early").unwrap())
        .collect();
    receiver.decrypt(&early[3]).unwrap();

    let sealed_sender = sender.seal(&key, &mut rng).unwrap();
    let sealed_receiver = receiver.seal(&key, &mut rng).unwrap();
    assert_eq!(
        GroupSender::unseal(&sealed_sender, &wrong).unwrap_err(),
        Error::AuthenticationFailed
    );
    assert_eq!(
        GroupReceiver::unseal(&sealed_sender, &key).unwrap_err(),
        Error::WrongType {
            expected: 0x23,
            found: 0x22
        }
    );
    let mut sender = GroupSender::unseal(&sealed_sender, &key).unwrap();
    let mut receiver = GroupReceiver::unseal(&sealed_receiver, &key).unwrap();
    assert_eq!(sender.index(), 4);
    assert_eq!(receiver.next_index(), 4);
    assert_eq!(receiver.skipped_key_count(), 3);
    let later = sender.encrypt(&mut rng, b"later").unwrap();
    assert_eq!(receiver.decrypt(&later).unwrap().plaintext, b"later");
    for m in &early[..3] {
        assert_eq!(receiver.decrypt(m).unwrap().plaintext, b"early");
    }
    rejects(&mut receiver, &early[3], Error::DuplicateMessage);
    // Plain encodings round-trip exactly.
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
}

#[test]
fn restored_sender_uses_fresh_salts() {
    // A sender restored from an old state reuses its indices; the random
    // salt still gives each message its own AES key and nonce.
    let mut rng = rng(13);
    let mut sender = GroupSender::new(&mut rng, GROUP);
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
    let mut sender = GroupSender::new(&mut rng, GROUP);
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
    assert_eq!(l.len(), good.len());

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
    let (first, second) = (
        l.slice(&good, "cache[0].index"),
        l.slice(&good, "cache[1].index"),
    );
    l.put(&mut unsorted, "cache[0].index", second);
    l.put(&mut unsorted, "cache[1].index", first);
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
    let mut many = GReceiver::parse(&good).unwrap();
    many.window.next = 1000;
    many.window
        .cache
        .extend((0..=MAX_GROUP_SKIPPED_KEYS as u32).map(|i| (i, [0; 32])));
    let too_many = many.encode();
    assert_eq!(
        GroupReceiver::from_bytes(&too_many).unwrap_err(),
        Error::InvalidEncoding
    );
    let mut weak_key = good.clone();
    l.put(&mut weak_key, "signing_key", &ED25519_SMALL_ORDER);
    assert_eq!(
        GroupReceiver::from_bytes(&weak_key).unwrap_err(),
        Error::InvalidPublicKey
    );

    let state = sender.to_bytes().to_vec();
    assert_eq!(state.len(), GroupSender::ENCODED_LEN);
    let mut trailing = state.clone();
    trailing.push(0);
    assert_eq!(
        GroupSender::from_bytes(&trailing).unwrap_err(),
        Error::TrailingBytes
    );
    let mut version = state.clone();
    layout::sender_state(&state).put_u8(&mut version, "version", 2);
    assert_eq!(
        GroupSender::from_bytes(&version).unwrap_err(),
        Error::UnsupportedVersion { found: 2 }
    );

    let distribution = sender.distribution().to_bytes().to_vec();
    assert_eq!(distribution.len(), SenderKeyDistribution::ENCODED_LEN);
    let parsed = SenderKeyDistribution::from_bytes(&distribution).unwrap();
    assert_eq!(
        (
            parsed.group_id(),
            parsed.chain_id(),
            parsed.index(),
            parsed.signing_key_bytes()
        ),
        (&GROUP, sender.chain_id(), 3, sender.signing_key_bytes())
    );
    let mut trailing = distribution.clone();
    trailing.push(0);
    assert_eq!(
        GroupReceiver::import_unauthenticated(&trailing).unwrap_err(),
        Error::TrailingBytes
    );
    assert_eq!(
        GroupReceiver::import_unauthenticated(&distribution[..distribution.len() - 1]).unwrap_err(),
        Error::Truncated
    );
    let d = layout::distribution(&distribution);
    let mut wrong_type = distribution.clone();
    d.put_u8(&mut wrong_type, "type", 0x03);
    assert_eq!(
        GroupReceiver::import_unauthenticated(&wrong_type).unwrap_err(),
        Error::WrongType {
            expected: 0x04,
            found: 0x03
        }
    );
    let mut weak = distribution.clone();
    d.put(&mut weak, "signing_key", &[0; 32]);
    assert_eq!(
        GroupReceiver::import_unauthenticated(&weak).unwrap_err(),
        Error::InvalidPublicKey
    );

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
            .plaintext
            .len(),
        sotto::MAX_PLAINTEXT_LEN
    );
}

#[test]
fn debug_output_has_no_secrets() {
    let mut rng = rng(15);
    let sender = GroupSender::new(&mut rng, GROUP);
    let receiver = import(&sender);
    let m = model_sender(&sender);
    let (seed_hex, r0_hex) = (hex(&m.seed), hex(&m.levels[0]));
    for text in [
        format!("{sender:?}"),
        format!("{receiver:?}"),
        format!("{:?}", sender.distribution()),
    ] {
        assert!(!text.contains('['), "{text}");
        assert!(
            !text.contains(&seed_hex[..16]) && !text.contains(&r0_hex[..16]),
            "{text}"
        );
        assert!(text.contains("chain_id"), "{text}");
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
            (0..SENDERS).map(|_| GroupSender::new(&mut rng, GROUP)).collect();
        let mut store = GroupReceivers::new(GROUP);
        for s in &senders {
            store.insert(import(s)).unwrap();
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
                let saved: Vec<Vec<u8>> = store.iter().map(|r| r.to_bytes().to_vec()).collect();
                store = GroupReceivers::new(GROUP);
                for bytes in saved {
                    store.insert(GroupReceiver::from_bytes(&bytes).unwrap()).unwrap();
                }
            }
            let message = &sent[s][i as usize];
            let expected = deliver_to(&mut models[s], i);
            let before = store.get(message.chain_id()).unwrap().to_bytes();
            match store.decrypt(message) {
                Ok(read) => {
                    prop_assert!(expected);
                    prop_assert_eq!(read.plaintext, vec![s as u8, i as u8]);
                    prop_assert!(decrypted.insert((s, i)), "decrypted twice");
                }
                Err(e) => {
                    prop_assert!(!expected);
                    prop_assert_eq!(e, Error::DuplicateMessage);
                    prop_assert_eq!(store.get(message.chain_id()).unwrap().to_bytes(), before);
                }
            }
        }
    }
}
