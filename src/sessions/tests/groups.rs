//! SPEC §16.8: groups through the layer: fan-out to every device of every
//! member (own devices included), installs only from members, removal in
//! one call, a message before its distribution, and the saved form.

use super::*;
use alloc::vec;

use crate::Error;
use crate::group::{GroupId, GroupMessage, InsertOutcome};
use crate::sessions::{Action, GroupSession, Ignore, MAX_DROPPED_CHAINS, RetryLater};

const GROUP: GroupId = GroupId::from_bytes([5; 32]);

/// Alice (2 devices), Bob (2), Carol (1), every pair with a session both
/// answered; a group per device with all three users as members.
fn setup(seed: u8) -> (TestRng, Vec<Party>, Vec<GroupSession>) {
    let mut rng = TestRng::new(seed);
    let mut w = world(&mut rng, &[("alice", 2), ("bob", 2), ("carol", 1)]);
    for x in 0..w.len() {
        for y in 0..w.len() {
            if x < y {
                let m = send(&mut w, x, y, b"hi", &mut rng);
                receive(&mut w, x, y, &m).unwrap();
                let r = send(&mut w, y, x, b"hi", &mut rng);
                receive(&mut w, y, x, &r).unwrap();
            }
        }
    }
    let groups = w
        .iter()
        .map(|p| {
            let mut g = GroupSession::new(&mut rng, GROUP, p.user.clone(), &p.device).unwrap();
            for u in ["alice", "bob", "carol"] {
                g.add_member(user(u)).unwrap();
            }
            g
        })
        .collect();
    (rng, w, groups)
}

/// Every device distributes to every other device; each installs.
fn distribute_all(rng: &mut TestRng, w: &mut [Party], groups: &mut [GroupSession]) {
    for x in 0..w.len() {
        let mut records: Vec<&mut PeerRecord> = w[x].records.values_mut().collect();
        let fanout = groups[x].distribute(&mut records, rng).unwrap();
        for (u, sent) in fanout.users {
            assert!(sent.unusable.is_empty(), "{sent:?}");
            for o in sent.messages {
                let y = w
                    .iter()
                    .position(|p| p.user == u && p.id == o.device)
                    .unwrap();
                let got = receive(w, x, y, &o.message).unwrap();
                let from = w[x].user.clone();
                let outcome = groups[y].install(&w[y].records[&from], &got).unwrap();
                assert_eq!(outcome, InsertOutcome::Added);
            }
        }
    }
}

#[test]
fn distributions_reach_every_device_of_every_member_including_our_own() {
    let (mut rng, mut w, mut groups) = setup(1);
    let a1 = find(&w, "alice", 1);
    let mut records: Vec<&mut PeerRecord> = w[a1].records.values_mut().collect();
    let fanout = groups[a1].distribute(&mut records, &mut rng).unwrap();
    let reached: Vec<(UserId, DeviceId)> = fanout
        .users
        .iter()
        .flat_map(|(u, s)| s.messages.iter().map(move |o| (u.clone(), o.device)))
        .collect();
    assert_eq!(
        reached,
        [
            (user("alice"), DeviceId(2)),
            (user("bob"), DeviceId(1)),
            (user("bob"), DeviceId(2)),
            (user("carol"), DeviceId(1)),
        ]
    );
    distribute_all(&mut rng, &mut w, &mut groups);
    let message = groups[a1].encrypt(b"to the group", &mut rng).unwrap();
    for (y, g) in groups.iter_mut().enumerate() {
        if y != a1 {
            let got = g.decrypt(&w[y].records[&user("alice")], &message).unwrap();
            assert_eq!(got.as_bytes(), b"to the group");
            assert_eq!(
                got.sender().authenticated(),
                Some(w[a1].device.identity_key())
            );
        }
    }
}

#[test]
fn a_group_message_before_its_distribution_is_kept_for_later() {
    let (mut rng, w, mut groups) = setup(2);
    let (a1, b1) = (find(&w, "alice", 1), find(&w, "bob", 1));
    let message = groups[a1].encrypt(b"early", &mut rng).unwrap();
    let f = groups[b1]
        .decrypt(&w[b1].records[&user("alice")], &message)
        .unwrap_err();
    assert_eq!(
        f.action,
        Action::RetryLater(RetryLater::MissingDistribution)
    );
    assert_eq!(f.error, Error::UnknownGroupChain);
}

/// A distribution is installed only from a member's device whose trusted
/// identity owns it.
#[test]
fn only_members_distributions_are_installed() {
    let (mut rng, mut w, mut groups) = setup(3);
    let (c, b1) = (find(&w, "carol", 1), find(&w, "bob", 1));
    // Bob's group no longer has Carol (as if removed on another path).
    let mut bob_group = GroupSession::new(&mut rng, GROUP, user("bob"), &w[b1].device).unwrap();
    bob_group.add_member(user("alice")).unwrap();
    let m = {
        let mut bob_rec: Vec<&mut PeerRecord> = vec![w[c].records.get_mut(&user("bob")).unwrap()];
        let f = groups[c].distribute(&mut bob_rec, &mut rng).unwrap();
        f.users[0].1.messages[0].message.clone()
    };
    let got = receive(&mut w, c, b1, &m).unwrap();
    let carol_rec = &w[b1].records[&user("carol")];
    assert_eq!(
        bob_group.install(carol_rec, &got),
        Err(Error::NotGroupMember)
    );
    // Another member's record does not vouch for Carol's device.
    let alice_rec = &w[b1].records[&user("alice")];
    let mut member_group = GroupSession::new(&mut rng, GROUP, user("bob"), &w[b1].device).unwrap();
    member_group.add_member(user("alice")).unwrap();
    assert_eq!(
        member_group.install(alice_rec, &got),
        Err(Error::IdentityMismatch)
    );
    // A payload is not a distribution.
    let p = send(&mut w, c, b1, b"not a distribution", &mut rng);
    let got = receive(&mut w, c, b1, &p).unwrap();
    assert_eq!(
        groups[b1].install(&w[b1].records[&user("carol")], &got),
        Err(Error::InvalidEncoding)
    );
}

/// Records are checked for membership (a member, each once, exactly the
/// members for a rotation) before any is checked for being the local
/// device's: a list with a user twice is NotGroupMember even when a record
/// of another local device comes first (SPEC §16.8).
#[test]
fn membership_is_checked_before_the_local_device() {
    let (mut rng, w, groups) = setup(6);
    let (a1, b1) = (find(&w, "alice", 1), find(&w, "bob", 1));
    let copy = |r: &PeerRecord| PeerRecord::from_bytes(&r.to_bytes()).unwrap();
    let mut foreign = copy(&w[b1].records[&user("alice")]);
    let mut own = copy(&w[a1].records[&user("alice")]);
    let mut bob = copy(&w[a1].records[&user("bob")]);
    assert_eq!(
        groups[a1]
            .distribute(&mut [&mut foreign, &mut own], &mut rng)
            .err(),
        Some(Error::NotGroupMember)
    );
    // Exactly the members but one missing, the foreign record first.
    let mut g = GroupSession::from_bytes(&groups[a1].to_bytes()).unwrap();
    assert_eq!(
        g.rotate(&w[a1].device, &mut [&mut foreign, &mut bob], &mut rng)
            .err(),
        Some(Error::NotGroupMember)
    );
    assert_eq!(
        groups[a1]
            .distribute(&mut [&mut foreign, &mut bob], &mut rng)
            .err(),
        Some(Error::IdentityMismatch)
    );
}

/// Removal is one call: the removed user's chains stop decrypting, the
/// local chain rotates, and the new distribution goes to every remaining
/// device; the removed user can read nothing new.
#[test]
fn removing_a_member_is_one_call() {
    let (mut rng, mut w, mut groups) = setup(4);
    distribute_all(&mut rng, &mut w, &mut groups);
    let (a1, a2, b1, b2, c) = (
        find(&w, "alice", 1),
        find(&w, "alice", 2),
        find(&w, "bob", 1),
        find(&w, "bob", 2),
        find(&w, "carol", 1),
    );
    let from_carol = groups[c].encrypt(b"still here?", &mut rng).unwrap();
    let old_chain = *groups[a1].sender().chain();
    // The remaining members' records must be exactly given.
    {
        let local = &mut w[a1];
        let mut some: Vec<&mut PeerRecord> = vec![local.records.get_mut(&user("bob")).unwrap()];
        assert_eq!(
            groups[a1]
                .remove_member(&local.device, &user("carol"), &mut some, &mut rng)
                .err(),
            Some(Error::NotGroupMember)
        );
    }
    let before = groups[a1].to_bytes();
    let local = &mut w[a1];
    let mut records: Vec<&mut PeerRecord> = local
        .records
        .iter_mut()
        .filter(|(u, _)| **u != user("carol"))
        .map(|(_, r)| r)
        .collect();
    assert_eq!(
        groups[a1]
            .remove_member(&local.device, &user("alice"), &mut records, &mut rng)
            .err(),
        Some(Error::NotGroupMember),
        "not the local user"
    );
    assert_eq!(*groups[a1].to_bytes(), *before);
    let fanout = groups[a1]
        .remove_member(&local.device, &user("carol"), &mut records, &mut rng)
        .unwrap();
    assert!(!groups[a1].is_member(&user("carol")));
    assert_ne!(*groups[a1].sender().chain(), old_chain);
    // Carol is no longer a member, and her chain is gone.
    let f = groups[a1]
        .decrypt(&w[a1].records[&user("carol")], &from_carol)
        .unwrap_err();
    assert_eq!(
        (f.action, f.error),
        (Action::Ignore(Ignore::Malformed), Error::NotGroupMember)
    );
    let f = groups[a1]
        .decrypt(&w[a1].records[&user("bob")], &from_carol)
        .unwrap_err();
    assert_eq!(
        f.action,
        Action::RetryLater(RetryLater::MissingDistribution)
    );
    let reached: usize = fanout.users.iter().map(|(_, s)| s.messages.len()).sum();
    assert_eq!(reached, 3, "Alice 2, Bob 1 and 2");
    for (u, sent) in fanout.users {
        for o in sent.messages {
            let y = w
                .iter()
                .position(|p| p.user == u && p.id == o.device)
                .unwrap();
            let got = receive(&mut w, a1, y, &o.message).unwrap();
            let rec = &w[y].records[&user("alice")];
            assert_eq!(groups[y].install(rec, &got).unwrap(), InsertOutcome::Added);
        }
    }
    let message = groups[a1].encrypt(b"without carol", &mut rng).unwrap();
    for y in [a2, b1, b2] {
        assert_eq!(
            groups[y]
                .decrypt(&w[y].records[&user("alice")], &message)
                .unwrap()
                .as_bytes(),
            b"without carol"
        );
    }
    let f = groups[c]
        .decrypt(&w[c].records[&user("alice")], &message)
        .unwrap_err();
    assert_eq!(
        f.action,
        Action::RetryLater(RetryLater::MissingDistribution)
    );
    // A duplicate is ignored.
    let f = groups[b1]
        .decrypt(&w[b1].records[&user("alice")], &message)
        .unwrap_err();
    assert_eq!(f.action, Action::Ignore(Ignore::Duplicate));
}

/// Bob's device `b` rotates; Alice's device `a` decrypts the new chain's
/// distribution (not installed yet).
fn rotated_to(
    rng: &mut TestRng,
    w: &mut [Party],
    groups: &mut [GroupSession],
    b: usize,
    a: usize,
) -> Received {
    let local = &mut w[b];
    let mut records: Vec<&mut PeerRecord> = local.records.values_mut().collect();
    let fanout = groups[b].rotate(&local.device, &mut records, rng).unwrap();
    let alice = w[a].user.clone();
    let (_, sent) = fanout.users.iter().find(|(u, _)| *u == alice).unwrap();
    let o = sent.messages.iter().find(|o| o.device == w[a].id).unwrap();
    receive(w, b, a, &o.message).unwrap()
}

/// Bob's device `b` rotates and hands the new chain to Alice's device
/// `a`, which installs it.
fn rotate_to(rng: &mut TestRng, w: &mut [Party], groups: &mut [GroupSession], b: usize, a: usize) {
    let got = rotated_to(rng, w, groups, b, a);
    let rec = &w[a].records[&w[b].user];
    assert_eq!(groups[a].install(rec, &got), Ok(InsertOutcome::Added));
}

/// Bob's device `b1` hands its chain to Alice's device `a1` twice; she
/// installs the first copy and decrypts `payload` on it; then Bob rotates
/// `MAX_CHAINS_PER_SENDER` times, so her store drops that chain. Returns
/// the late second copy and the message she read.
fn bob_chain_dropped_with_a_late_copy(
    rng: &mut TestRng,
    w: &mut [Party],
    groups: &mut [GroupSession],
    b1: usize,
    a1: usize,
    payload: &[u8],
) -> (Message, GroupMessage) {
    let [first, late] = [0, 1].map(|_| {
        groups[b1]
            .distribute_to(record(w, b1, a1), DeviceId(1), rng)
            .unwrap()
    });
    let got = receive(w, b1, a1, &first).unwrap();
    let rec = &w[a1].records[&user("bob")];
    assert_eq!(groups[a1].install(rec, &got), Ok(InsertOutcome::Added));
    let read = groups[b1].encrypt(payload, rng).unwrap();
    assert_eq!(
        groups[a1]
            .decrypt(&w[a1].records[&user("bob")], &read)
            .unwrap()
            .as_bytes(),
        payload
    );
    for _ in 0..crate::group::MAX_CHAINS_PER_SENDER {
        rotate_to(rng, w, groups, b1, a1);
    }
    (late, read)
}

/// A chain the store dropped (its owner's oldest past
/// `MAX_CHAINS_PER_SENDER`, or a removed member's) is never installed
/// again: a late copy of its distribution would make the messages it had
/// read decrypt a second time (§15.9). (Found by the session-layer
/// simulation: a distribution delayed past four rotations of its owner
/// re-opened the chain, and a duplicate of a message read before decrypted
/// again.)
#[test]
fn a_dropped_chain_is_never_installed_again() {
    let (mut rng, mut w, mut groups) = setup(7);
    let (a1, b1, c) = (
        find(&w, "alice", 1),
        find(&w, "bob", 1),
        find(&w, "carol", 1),
    );
    // Bob's chain reaches Alice twice, the second copy late; four new
    // chains of Bob's: Alice's store drops his first.
    let (late_copy, once) =
        bob_chain_dropped_with_a_late_copy(&mut rng, &mut w, &mut groups, b1, a1, b"once");
    let late = receive(&mut w, b1, a1, &late_copy).unwrap();
    let before = groups[a1].to_bytes();
    let rec = &w[a1].records[&user("bob")];
    assert_eq!(groups[a1].install(rec, &late), Ok(InsertOutcome::Unchanged));
    assert_eq!(*groups[a1].to_bytes(), *before);
    assert_eq!(
        groups[a1]
            .decrypt(&w[a1].records[&user("bob")], &once)
            .unwrap_err()
            .error,
        Error::UnknownGroupChain
    );
    // The saved form keeps the dropped chains (§16.11), strictly: the last
    // field is their count, then each chain's id and owner.
    let bytes = groups[a1].to_bytes();
    let back = GroupSession::from_bytes(&bytes).unwrap();
    assert_eq!(*back.to_bytes(), *bytes);
    let n = bytes.len();
    assert_eq!(bytes[n - 66..n - 64], [0, 1]);
    assert_eq!(bytes[n - 32..], *w[b1].device.identity_key().as_bytes());
    let first = bytes[n - 64..].to_vec();
    let held = *groups[a1]
        .receivers()
        .iter()
        .next()
        .unwrap()
        .chain()
        .as_bytes();
    let twice = [&bytes[..n - 66], &[0, 2], &first, &first].concat();
    let in_store = [&bytes[..n - 64], &held[..], &bytes[n - 32..]].concat();
    let over = [&bytes[..n - 66], &[0x04, 0x01]].concat();
    for (v, why) in [
        (twice, "twice"),
        (in_store, "held"),
        (over, "over the bound"),
    ] {
        assert_eq!(
            GroupSession::from_bytes(&v).err(),
            Some(Error::InvalidEncoding),
            "{why}"
        );
    }

    // A removed member's chains go the same way: after Carol is removed
    // and added again, her old chain's late distribution changes nothing.
    let copies = [0, 1].map(|_| {
        groups[c]
            .distribute_to(record(&mut w, c, a1), DeviceId(1), &mut rng)
            .unwrap()
    });
    let got = receive(&mut w, c, a1, &copies[0]).unwrap();
    let rec = &w[a1].records[&user("carol")];
    assert_eq!(groups[a1].install(rec, &got), Ok(InsertOutcome::Added));
    let hers = groups[c].encrypt(b"hers", &mut rng).unwrap();
    assert_eq!(
        groups[a1]
            .decrypt(&w[a1].records[&user("carol")], &hers)
            .unwrap()
            .as_bytes(),
        b"hers"
    );
    let local = &mut w[a1];
    let mut records: Vec<&mut PeerRecord> = local
        .records
        .iter_mut()
        .filter(|(u, _)| **u != user("carol"))
        .map(|(_, r)| r)
        .collect();
    groups[a1]
        .remove_member(&local.device, &user("carol"), &mut records, &mut rng)
        .unwrap();
    assert!(groups[a1].add_member(user("carol")).unwrap());
    let late = receive(&mut w, c, a1, &copies[1]).unwrap();
    let rec = &w[a1].records[&user("carol")];
    assert_eq!(groups[a1].install(rec, &late), Ok(InsertOutcome::Unchanged));
    assert_eq!(
        groups[a1]
            .decrypt(&w[a1].records[&user("carol")], &hers)
            .unwrap_err()
            .error,
        Error::UnknownGroupChain
    );
    // Her new chain is taken.
    rotate_to(&mut rng, &mut w, &mut groups, c, a1);
}

/// A full list of dropped chains forgets the oldest chain of the owner with
/// the most entries (§16.8), so a member's own rotations cannot flush
/// another member's dropped chain: after Carol hands Alice more new chains
/// than the list holds, a late copy of Bob's dropped chain's distribution
/// is still refused, and a replay of a message it read does not decrypt a
/// second time. (Review finding: with oldest-first forgetting, the late
/// copy installed Bob's chain again at index 0 and the replay decrypted.)
#[test]
fn a_members_rotations_do_not_flush_another_members_dropped_chain() {
    let (mut rng, mut w, mut groups) = setup(11);
    let (a1, b1, c) = (
        find(&w, "alice", 1),
        find(&w, "bob", 1),
        find(&w, "carol", 1),
    );
    let (late_copy, once) =
        bob_chain_dropped_with_a_late_copy(&mut rng, &mut w, &mut groups, b1, a1, b"pay 100");
    // Carol: one chain per rotation, each evicting one of her older ones.
    for _ in 0..MAX_DROPPED_CHAINS + 8 {
        rotate_to(&mut rng, &mut w, &mut groups, c, a1);
    }
    // The saved list is full: Bob's one chain, and Carol's latest.
    let bytes = groups[a1].to_bytes();
    let entries = &bytes[bytes.len() - MAX_DROPPED_CHAINS * 64..];
    let count = &bytes[bytes.len() - MAX_DROPPED_CHAINS * 64 - 2..][..2];
    assert_eq!(
        usize::from(u16::from_be_bytes([count[0], count[1]])),
        MAX_DROPPED_CHAINS
    );
    let owners: Vec<&[u8]> = entries.chunks(64).map(|e| &e[32..]).collect();
    let bob = w[b1].device.identity_key().as_bytes().as_slice();
    let carol = w[c].device.identity_key().as_bytes().as_slice();
    assert_eq!(owners.iter().filter(|o| **o == bob).count(), 1);
    assert_eq!(
        owners.iter().filter(|o| **o == carol).count(),
        MAX_DROPPED_CHAINS - 1
    );

    let late = receive(&mut w, b1, a1, &late_copy).unwrap();
    let before = groups[a1].to_bytes();
    let rec = &w[a1].records[&user("bob")];
    assert_eq!(groups[a1].install(rec, &late), Ok(InsertOutcome::Unchanged));
    assert_eq!(*groups[a1].to_bytes(), *before);
    let replay = groups[a1]
        .decrypt(&w[a1].records[&user("bob")], &once)
        .unwrap_err();
    assert_eq!(replay.error, Error::UnknownGroupChain);
}

#[test]
fn a_distribution_request_is_answered_with_the_current_chain() {
    let (mut rng, mut w, mut groups) = setup(5);
    let (a1, b1) = (find(&w, "alice", 1), find(&w, "bob", 1));
    let early = groups[a1].encrypt(b"early", &mut rng).unwrap();
    let ask = record(&mut w, b1, a1)
        .request_distribution(DeviceId(1), &GROUP, &mut rng)
        .unwrap();
    let got = receive(&mut w, b1, a1, &ask).unwrap();
    let Content::DistributionRequest(group) = got.content() else {
        panic!()
    };
    assert_eq!(*group, GROUP);
    let answer = groups[a1]
        .distribute_to(record(&mut w, a1, b1), DeviceId(1), &mut rng)
        .unwrap();
    let got = receive(&mut w, a1, b1, &answer).unwrap();
    let rec = &w[b1].records[&user("alice")];
    groups[b1].install(rec, &got).unwrap();
    // The distribution is at the current index: the earlier message is not
    // readable (§15.6), later ones are.
    let from_alice = &w[b1].records[&user("alice")];
    assert!(groups[b1].decrypt(from_alice, &early).is_err());
    let later = groups[a1].encrypt(b"later", &mut rng).unwrap();
    assert_eq!(
        groups[b1].decrypt(from_alice, &later).unwrap().as_bytes(),
        b"later"
    );
}

#[test]
fn a_group_saves_strictly_and_after_a_restore_starts_a_new_chain() {
    let (mut rng, mut w, mut groups) = setup(6);
    distribute_all(&mut rng, &mut w, &mut groups);
    let g = &mut groups[0];
    let device = &w[0].device;
    let bytes = g.to_bytes();
    assert_eq!(&bytes[..2], [2, 0x26]);
    let back = GroupSession::from_bytes(&bytes).unwrap();
    assert_eq!(*back.to_bytes(), *bytes);
    // Members out of order, or a local user that is not one.
    let mut v = bytes.to_vec();
    let at = 10 + 1 + 5 + 2; // generation, "alice", member count
    assert_eq!(&v[at..at + 6], b"\x05alice");
    v[at + 1] = b'z';
    assert_eq!(
        GroupSession::from_bytes(&v).err(),
        Some(Error::InvalidEncoding)
    );
    let mut v = bytes.to_vec();
    v[11] = b'z';
    assert_eq!(
        GroupSession::from_bytes(&v).err(),
        Some(Error::InvalidEncoding)
    );
    let mut v = bytes.to_vec();
    v[at - 1] = 0;
    v[at - 2] = 0;
    assert_eq!(
        GroupSession::from_bytes(&v).err(),
        Some(Error::InvalidEncoding),
        "no members"
    );

    let generation = g.generation();
    let chain = *g.sender().chain();
    assert!(!g.after_restore(device, generation, &mut rng).unwrap());
    assert_eq!(*g.sender().chain(), chain);
    assert!(!g.receivers().is_empty());
    assert!(g.after_restore(device, generation + 10, &mut rng).unwrap());
    assert_ne!(*g.sender().chain(), chain);
    assert!(g.receivers().is_empty());
    assert_eq!(g.generation(), generation + 11);
}

/// Removal draws the new chain and every device's randomness before it
/// changes anything: a failing RNG leaves the group and every record as
/// they were.
#[test]
fn removal_fails_cleanly_at_every_draw() {
    let snapshot = |(w, groups): &(Vec<Party>, Vec<GroupSession>)| {
        let mut bytes = groups[0].to_bytes().to_vec();
        for r in w[0].records.values() {
            bytes.extend_from_slice(&r.to_bytes());
        }
        bytes
    };
    let draws = crate::testing::fails_cleanly_at_every_draw(
        || {
            let (mut rng, mut w, mut groups) = setup(7);
            distribute_all(&mut rng, &mut w, &mut groups);
            (w, groups)
        },
        snapshot,
        |(w, groups), rng| {
            let local = &mut w[0];
            let mut records: Vec<&mut PeerRecord> = local
                .records
                .iter_mut()
                .filter(|(u, _)| **u != user("carol"))
                .map(|(_, r)| r)
                .collect();
            groups[0].remove_member(&local.device, &user("carol"), &mut records, rng)
        },
    );
    // The new chain (256 + 32), then 48 per remaining device: Alice 2, Bob 1
    // and 2, in record order (alice, bob).
    assert_eq!(draws, [256, 32, 48, 48, 48]);
}

/// Every call that takes the local `Device` checks it first (SPEC §16.1):
/// rotating, removing or restoring with another device's `Device` fails
/// with nothing changed (the group's and the records' saved bytes), so the
/// local chain is never re-owned by a foreign identity.
#[test]
fn a_foreign_local_device_is_refused_by_every_group_call() {
    let (mut rng, mut w, mut groups) = setup(8);
    distribute_all(&mut rng, &mut w, &mut groups);
    let foreign = Device::generate(&mut rng, NOW).unwrap();
    let a1 = find(&w, "alice", 1);
    let snapshot = |w: &[Party], g: &GroupSession| {
        let mut bytes = g.to_bytes().to_vec();
        for r in w[a1].records.values() {
            bytes.extend_from_slice(&r.to_bytes());
        }
        bytes
    };
    let before = snapshot(&w, &groups[a1]);
    let generation = groups[a1].generation();
    let mut records: Vec<&mut PeerRecord> = w[a1].records.values_mut().collect();
    assert_eq!(
        groups[a1].rotate(&foreign, &mut records, &mut rng).err(),
        Some(Error::IdentityMismatch)
    );
    let mut records: Vec<&mut PeerRecord> = w[a1]
        .records
        .iter_mut()
        .filter(|(u, _)| **u != user("carol"))
        .map(|(_, r)| r)
        .collect();
    assert_eq!(
        groups[a1]
            .remove_member(&foreign, &user("carol"), &mut records, &mut rng)
            .err(),
        Some(Error::IdentityMismatch)
    );
    assert_eq!(
        groups[a1]
            .after_restore(&foreign, generation + 10, &mut rng)
            .err(),
        Some(Error::IdentityMismatch)
    );
    assert_eq!(snapshot(&w, &groups[a1]), before);
    // The right device still works, and the chain stays the local identity's.
    let local = &w[a1].device;
    assert!(
        groups[a1]
            .after_restore(local, generation + 10, &mut rng)
            .unwrap()
    );
    assert_eq!(groups[a1].sender().owner(), local.identity_key());
}

/// Once Alice acknowledges that Bob's device 1 has a new identity, the
/// holder of the old key keeps sending on its chain: Alice's group refuses
/// those messages (as wire bytes) before any rotation, with nothing
/// changed, since decrypt checks the chain's owner against Bob's record as
/// it is now. While the change is pending they wait; a chain is never
/// accepted as another user's; Bob's other device is unaffected.
#[test]
fn a_replaced_identity_chain_is_refused_at_once() {
    let (mut rng, mut w, mut groups) = setup(9);
    distribute_all(&mut rng, &mut w, &mut groups);
    let (a1, b1, b2, c) = (
        find(&w, "alice", 1),
        find(&w, "bob", 1),
        find(&w, "bob", 2),
        find(&w, "carol", 1),
    );
    let one = groups[b1].encrypt(b"one", &mut rng).unwrap();
    let bob = &w[a1].records[&user("bob")];
    assert_eq!(groups[a1].decrypt(bob, &one).unwrap().as_bytes(), b"one");
    // Bob's device 1 shows up with a new key.
    let new = *Device::generate(&mut rng, NOW).unwrap().identity_key();
    let bob2 = (DeviceId(2), *w[b2].device.identity_key());
    let rec = w[a1].records.get_mut(&user("bob")).unwrap();
    rec.update_devices(&[(DeviceId(1), new), bob2], NOW)
        .unwrap();
    let old_key = groups[b1].encrypt(b"from the old key", &mut rng).unwrap();
    let wire = GroupMessage::from_bytes(old_key.as_bytes()).unwrap();
    let before = groups[a1].to_bytes();
    let bob = &w[a1].records[&user("bob")];
    let f = groups[a1].decrypt(bob, &wire).unwrap_err();
    assert_eq!(
        f.action,
        Action::RetryLater(RetryLater::IdentityChangePending)
    );
    // Acknowledged: the old key's chain is refused, nothing changed.
    let rec = w[a1].records.get_mut(&user("bob")).unwrap();
    rec.acknowledge_identity(DeviceId(1), &new).unwrap();
    let bob = &w[a1].records[&user("bob")];
    let f = groups[a1].decrypt(bob, &wire).unwrap_err();
    assert_eq!(
        (f.action, f.error),
        (Action::Ignore(Ignore::Malformed), Error::IdentityMismatch)
    );
    assert_eq!(*groups[a1].to_bytes(), *before);
    // Bob's other device still decrypts; not as Carol's, nor through a
    // record of another local device.
    let two = groups[b2].encrypt(b"two", &mut rng).unwrap();
    let carol = &w[a1].records[&user("carol")];
    let f = groups[a1].decrypt(carol, &two).unwrap_err();
    assert_eq!(
        (f.action, f.error),
        (Action::Ignore(Ignore::Malformed), Error::IdentityMismatch)
    );
    let not_ours = &w[c].records[&user("bob")];
    let f = groups[a1].decrypt(not_ours, &two).unwrap_err();
    assert_eq!(f.action, Action::Ignore(Ignore::WrongLocalDevice));
    assert_eq!(*groups[a1].to_bytes(), *before);
    assert_eq!(groups[a1].decrypt(bob, &two).unwrap().as_bytes(), b"two");
}

/// A device off the list (stale) may not add a chain, as it may not start
/// a session (§16.8, §16.5): Bob's device 1 leaves Alice's list of Bob, and
/// its next chain's distribution (a real pairwise message, which still
/// decrypts on its session) is refused with `UnknownDevice`, the group
/// unchanged; its chain already installed still reads what is in flight;
/// listed again, the same distribution installs.
#[test]
fn a_stale_device_cannot_add_a_chain() {
    let (mut rng, mut w, mut groups) = setup(12);
    distribute_all(&mut rng, &mut w, &mut groups);
    let (a1, b1, b2) = (find(&w, "alice", 1), find(&w, "bob", 1), find(&w, "bob", 2));
    let in_flight = groups[b1].encrypt(b"in flight", &mut rng).unwrap();
    let bob_listed = [
        (DeviceId(1), *w[b1].device.identity_key()),
        (DeviceId(2), *w[b2].device.identity_key()),
    ];
    let rec = w[a1].records.get_mut(&user("bob")).unwrap();
    rec.update_devices(&bob_listed[1..], NOW).unwrap();
    // Bob's device 1 rotates; its distribution reaches Alice's device 1.
    let got = rotated_to(&mut rng, &mut w, &mut groups, b1, a1);
    let before = groups[a1].to_bytes();
    let rec = &w[a1].records[&user("bob")];
    assert_eq!(groups[a1].install(rec, &got), Err(Error::UnknownDevice));
    assert_eq!(*groups[a1].to_bytes(), *before);
    let fresh = groups[b1].encrypt(b"on the new chain", &mut rng).unwrap();
    let f = groups[a1].decrypt(rec, &fresh).unwrap_err();
    assert_eq!(
        f.action,
        Action::RetryLater(RetryLater::MissingDistribution)
    );
    assert_eq!(
        groups[a1].decrypt(rec, &in_flight).unwrap().as_bytes(),
        b"in flight"
    );
    // Listed again: the distribution installs, and the new chain reads.
    let rec = w[a1].records.get_mut(&user("bob")).unwrap();
    rec.update_devices(&bob_listed, NOW).unwrap();
    let rec = &w[a1].records[&user("bob")];
    assert_eq!(groups[a1].install(rec, &got), Ok(InsertOutcome::Added));
    assert_eq!(
        groups[a1].decrypt(rec, &fresh).unwrap().as_bytes(),
        b"on the new chain"
    );
}
