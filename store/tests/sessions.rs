//! The session layer through the store (SPEC.md §16, §17): peer records
//! with their devices, an accepted prekey message committing the device and
//! the record together, failures that change nothing, recovery (retry
//! requests, new sessions after a restore), the own record, expiry, and a
//! group whose distributions, messages, additions, rotations and removal
//! go through one transaction each.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{
    D1, NOW, TempDir, bundle, introduce, knows, receive, refuse, send, uid, upload, user,
    with_device,
};
use sotto::sessions::{Action, DeviceId, Ignore, RetryLater, UserId};
use sotto_store::{Delivered, Error, IncomingKind, Outgoing, OutgoingKind, PreKeyUpload, Store};

fn deliver(to: &mut Store, from: &str, out: &Outgoing) -> Delivered {
    assert_eq!(out.kind, OutgoingKind::Message);
    to.receive_from(&uid(from), DeviceId(out.device.unwrap()), &out.payload, NOW)
        .unwrap()
}

fn action(e: Error) -> Action {
    match e {
        Error::Session(f) => f.action,
        e => panic!("not a session failure: {e:?}"),
    }
}

#[test]
fn a_conversation_through_peer_records() {
    let dir = TempDir::new("peers");
    let (mut alice, alice_first) = user(&dir, "alice", 1);
    let (mut bob, bob_first) = user(&dir, "bob", 2);
    assert_eq!(
        alice.set_account(&uid("alice"), D1).unwrap_err(),
        Error::AlreadyExists {
            record: "own".into()
        }
    );
    assert_eq!(alice.account().unwrap(), Some((uid("alice"), D1)));
    // Without a record there is nothing to send to.
    assert!(matches!(
        alice.plan_send(&uid("bob"), NOW),
        Err(Error::NotFound { .. })
    ));
    knows(&mut alice, "bob", &bob_first);
    assert_eq!(
        alice.plan_send(&uid("bob"), NOW).unwrap().needs_bundle,
        [D1]
    );
    let nothing = alice.send_to_user(&uid("bob"), b"too early", None).unwrap();
    assert!(nothing.outgoing.is_empty());
    assert_eq!(nothing.unusable.len(), 1);
    assert!(alice.outbox().unwrap().is_empty());
    alice
        .add_bundle(&uid("bob"), D1, bundle(&bob_first, None, None), NOW)
        .unwrap();
    knows(&mut bob, "alice", &alice_first);

    let sent = alice.send_to_user(&uid("bob"), b"hello", Some(7)).unwrap();
    assert_eq!(sent.outgoing.len(), 1);
    assert_eq!(sent.outgoing[0].app_ref, Some(7));
    assert_eq!(sent.outgoing[0].destination, b"bob");
    let device_before = bob.device_status().unwrap();
    let Delivered::Message(got) = deliver(&mut bob, "alice", &sent.outgoing[0]) else {
        panic!("not a message");
    };
    assert_eq!(&got.plaintext[..], b"hello");
    assert_eq!(got.device, Some(1));
    // The accept changed the device in the same transaction.
    assert!(bob.device_status().unwrap().generation > device_before.generation);
    let status = bob.peer_status(&uid("alice")).unwrap().unwrap();
    assert!(status.devices[0].active_base_key.is_some());

    // A duplicate is a failure with its action, and changes nothing.
    let device_now = bob.device_status().unwrap();
    assert_eq!(
        action(refuse(&mut bob, "alice", &sent.outgoing[0].payload)),
        Action::Ignore(Ignore::Duplicate)
    );
    assert_eq!(bob.device_status().unwrap(), device_now);
    assert_eq!(bob.peer_status(&uid("alice")).unwrap().unwrap(), status);
    assert_eq!(bob.inbox().unwrap().len(), 1);

    let reply = send(&mut bob, "alice", b"hi");
    assert_eq!(&receive(&mut alice, "bob", &reply).plaintext[..], b"hi");
    // Every record opens: device, own record, one peer record each.
    assert_eq!(alice.verify().unwrap(), 3);
    assert_eq!(bob.verify().unwrap(), 3);
    // A message from a user without a record is NotFound, nothing changes.
    assert!(matches!(
        refuse(&mut bob, "carol", &reply.payload),
        Error::NotFound { .. }
    ));
}

#[test]
fn a_lost_message_is_asked_for_and_sent_again() {
    let dir = TempDir::new("retry");
    let (mut alice, mut bob) = common::pair(&dir);
    let first = send(&mut alice, "bob", b"first");
    receive(&mut bob, "alice", &first);
    // The next message arrives damaged: its session still works, so Bob
    // asks for it again.
    let lost = send(&mut alice, "bob", b"lost in transit");
    let mut damaged = lost.payload.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 0x40;
    let Action::RequestRetry(hint) = action(refuse(&mut bob, "alice", &damaged)) else {
        panic!("no retry request");
    };
    let request = bob.request_retry(&uid("alice"), D1, &hint, NOW).unwrap();
    assert_eq!(bob.outbox().unwrap(), vec![request.clone()]);
    let Delivered::RetryRequest { hint: asked, entry } = deliver(&mut alice, "bob", &request)
    else {
        panic!("not a retry request");
    };
    assert_eq!(asked, hint);
    // The request is kept in the inbox until the resend is made: a crash
    // in between loses nothing.
    drop(alice);
    let mut alice = Store::open(dir.file("alice.db"), &common::key(1)).unwrap();
    let kept = alice.inbox().unwrap();
    assert_eq!(kept, vec![entry.clone()]);
    assert_eq!(kept[0].kind, IncomingKind::RetryRequest);
    assert_eq!(kept[0].retry_hint(), Some(hint));
    // Alice finds the message by its hint and sends it again.
    assert!(asked.matches(&sotto::Message::from_bytes(&lost.payload).unwrap()));
    let again = alice
        .resend_to_device(&uid("bob"), D1, b"lost in transit", None)
        .unwrap();
    assert!(alice.ack_read(entry.id).unwrap());
    assert_eq!(
        &receive(&mut bob, "alice", &again).plaintext[..],
        b"lost in transit"
    );
}

#[test]
fn a_restored_peer_starts_new_sessions_and_nothing_is_read_twice() {
    let dir = TempDir::new("restored");
    let (mut alice, alice_first, bob, _) = common::pair_with_uploads(&dir);
    drop(bob);
    std::fs::copy(dir.file("bob.db"), dir.file("backup.db")).unwrap();
    let mut bob = Store::open(dir.file("bob.db"), &common::key(2)).unwrap();
    for i in 0..3 {
        let out = send(&mut alice, "bob", format!("before {i}").as_bytes());
        receive(&mut bob, "alice", &out);
    }
    let recorded = bob.high_water_mark().unwrap();
    drop(bob);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.file(&format!("bob.db{suffix}")));
    }
    std::fs::copy(dir.file("backup.db"), dir.file("bob.db")).unwrap();
    let mut bob = Store::open(dir.file("bob.db"), &common::key(2)).unwrap();
    let restored = bob.after_restore(NOW, recorded).unwrap().unwrap();
    assert_eq!(restored.records, 2);
    let reset = upload(&restored.upload);
    let status = bob.peer_status(&uid("alice")).unwrap().unwrap();
    assert_eq!(status.devices[0].active_base_key, None);

    // Alice writes on the old session: Bob has none, and starts a new one
    // from Alice's bundle, asking for the message in it.
    let out = send(&mut alice, "bob", b"after");
    let Action::StartNewSession(hint) = action(refuse(&mut bob, "alice", &out.payload)) else {
        panic!("no new session");
    };
    let fresh = bob
        .start_new_session(
            &uid("alice"),
            D1,
            bundle(&alice_first, None, None),
            &hint,
            NOW,
        )
        .unwrap();
    let Delivered::RetryRequest { hint: asked, .. } = deliver(&mut alice, "bob", &fresh) else {
        panic!("not a retry request");
    };
    assert_eq!(asked, hint);
    let again = alice
        .resend_to_device(&uid("bob"), D1, b"after", None)
        .unwrap();
    assert_eq!(&receive(&mut bob, "alice", &again).plaintext[..], b"after");
    // Alice's side needs Bob's new prekeys for nothing: the new session is
    // Bob's, and it is active on both sides now.
    let reply = send(&mut bob, "alice", b"back");
    assert_eq!(&receive(&mut alice, "bob", &reply).plaintext[..], b"back");
    assert!(reset.replace);
    // What Bob read before the restore, he never reads again.
    assert!(
        bob.inbox()
            .unwrap()
            .iter()
            .all(|e| !e.plaintext.starts_with(b"before"))
    );
}

#[test]
fn the_own_record_reaches_the_users_other_devices() {
    let dir = TempDir::new("own");
    let (mut phone, phone_first) = user(&dir, "alice", 1);
    let (mut laptop, laptop_first) = with_device(&dir.file("laptop.db"), 3);
    laptop.set_account(&uid("alice"), DeviceId(2)).unwrap();
    let (mut bob, bob_first) = user(&dir, "bob", 2);
    // Alice's own list, as her server returns it, on both of her devices.
    let list = [
        (D1, phone_first.identity),
        (DeviceId(2), laptop_first.identity),
    ];
    phone.update_devices(&uid("alice"), &list, NOW).unwrap();
    laptop.update_devices(&uid("alice"), &list, NOW).unwrap();
    assert_eq!(phone.verify().unwrap(), 2); // device and own record
    phone
        .add_bundle(
            &uid("alice"),
            DeviceId(2),
            bundle(&laptop_first, None, None),
            NOW,
        )
        .unwrap();
    introduce(
        &mut phone,
        "bob",
        &bob_first,
        bundle(&bob_first, None, None),
    );
    bob.update_devices(&uid("alice"), &list, NOW).unwrap();

    // A message to Bob, and its copy to the laptop (the own record).
    let to_bob = send(&mut phone, "bob", b"hi Bob");
    let copy = send(&mut phone, "alice", b"hi Bob");
    assert_eq!(copy.device, Some(2));
    receive(&mut bob, "alice", &to_bob);
    let Delivered::Message(got) = laptop
        .receive_from(&uid("alice"), D1, &copy.payload, NOW)
        .unwrap()
    else {
        panic!("not a message");
    };
    assert_eq!(&got.plaintext[..], b"hi Bob");
    assert_eq!(got.source, b"alice");
}

#[test]
fn old_stale_devices_expire() {
    let dir = TempDir::new("expire");
    let (mut alice, _) = user(&dir, "alice", 1);
    let (_, bob_first) = user(&dir, "bob", 2);
    let (_, other) = with_device(&dir.file("other.db"), 3);
    alice
        .update_devices(
            &uid("bob"),
            &[(D1, bob_first.identity), (DeviceId(2), other.identity)],
            NOW,
        )
        .unwrap();
    assert!(alice.expire(NOW).unwrap().is_empty());
    let changes = alice
        .update_devices(&uid("bob"), &[(D1, bob_first.identity)], NOW)
        .unwrap();
    assert!(!changes.is_empty());
    let month = sotto::sessions::MAX_STALE_DEVICE_AGE;
    let gone = alice.expire(NOW + month).unwrap();
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].0, uid("bob"));
    assert_eq!(gone[0].1.devices, [DeviceId(2)]);
    let status = alice.peer_status(&uid("bob")).unwrap().unwrap();
    assert_eq!(status.devices.len(), 1);
    assert!(alice.expire(NOW + month).unwrap().is_empty());
}

/// Alice, Bob and Carol, each with sessions to the other two.
fn three(dir: &TempDir) -> [Store; 3] {
    let names = ["alice", "bob", "carol"];
    let mut made: Vec<(Store, PreKeyUpload)> = names
        .iter()
        .zip(1u8..)
        .map(|(n, k)| user(dir, n, k))
        .collect();
    let firsts: Vec<PreKeyUpload> = made.iter().map(|(_, f)| f.clone()).collect();
    for (i, (store, _)) in made.iter_mut().enumerate() {
        for (j, first) in firsts.iter().enumerate() {
            if i < j {
                introduce(store, names[j], first, bundle(first, None, None));
            } else if i > j {
                knows(store, names[j], first);
            }
        }
    }
    let mut stores: Vec<Store> = made.into_iter().map(|(s, _)| s).collect();
    // The first messages make the sessions both ways.
    for i in 0..3 {
        for j in i + 1..3 {
            let out = send(&mut stores[i], names[j], b"hello");
            let (a, b) = stores.split_at_mut(j);
            receive(&mut b[0], names[i], &out);
            let back = send(&mut b[0], names[i], b"hello back");
            receive(&mut a[i], names[j], &back);
        }
    }
    stores.try_into().unwrap()
}

fn members(names: &[&str]) -> Vec<UserId> {
    names.iter().map(|n| uid(n)).collect()
}

fn hand_out(stores: &mut [Store; 3], from: usize, outgoing: &[Outgoing], group: [u8; 32]) {
    let names = ["alice", "bob", "carol"];
    for out in outgoing {
        let to = names
            .iter()
            .position(|n| n.as_bytes() == out.destination.as_slice())
            .unwrap();
        assert_eq!(
            deliver(&mut stores[to], names[from], out),
            Delivered::Distribution { group }
        );
    }
}

#[test]
fn a_group_through_the_store() {
    let dir = TempDir::new("group");
    let mut s = three(&dir);
    let all = members(&["alice", "bob", "carol"]);
    let id = [9u8; 32];

    let made = s[0].create_group(&id, &all).unwrap();
    assert_eq!(made.outgoing.len(), 2);
    assert!(made.unusable.is_empty());
    // Each hands out the chain: marked with the group, to answer a retry
    // request for it with the current one.
    assert!(made.outgoing.iter().all(|o| o.group == Some(id)));
    assert_eq!(
        s[0].create_group(&id, &all).unwrap_err(),
        Error::AlreadyExists {
            record: format!("group/{}", "09".repeat(32))
        }
    );
    // A distribution for a group not joined yet changes nothing.
    let to_bob = made
        .outgoing
        .iter()
        .find(|o| o.destination == b"bob")
        .unwrap();
    let before = s[1].peer_status(&uid("alice")).unwrap();
    assert!(matches!(
        s[1].receive_from(&uid("alice"), D1, &to_bob.payload, NOW),
        Err(Error::NotFound { .. })
    ));
    assert_eq!(s[1].peer_status(&uid("alice")).unwrap(), before);
    let joined: Vec<_> = (1..3)
        .map(|i| s[i].create_group(&id, &all).unwrap())
        .collect();
    for (i, j) in (1..3).zip(&joined) {
        hand_out(&mut s, i, &j.outgoing, id);
    }
    hand_out(&mut s, 0, &made.outgoing, id);
    let message = s[0].group_send(&id, b"to all", Some(1)).unwrap();
    assert_eq!(message.kind, OutgoingKind::GroupMessage);
    assert_eq!(message.destination, id);
    for store in &mut s[1..] {
        let got = store
            .group_receive(&id, &uid("alice"), &message.payload)
            .unwrap();
        assert_eq!(&got.plaintext[..], b"to all");
        assert_eq!(got.group, Some(id));
        // Claimed as another member's: refused.
        assert!(
            store
                .group_receive(&id, &uid("bob"), &message.payload)
                .is_err()
        );
        // Again: a duplicate.
        assert_eq!(
            action(
                store
                    .group_receive(&id, &uid("alice"), &message.payload)
                    .unwrap_err()
            ),
            Action::Ignore(Ignore::Duplicate)
        );
    }

    // Removing Carol: one transaction rotates Alice's chain and hands it to
    // Bob only.
    let removed = s[0].remove_from_group(&id, &uid("carol")).unwrap();
    assert!(removed.outgoing.iter().all(|o| o.destination == b"bob"));
    hand_out(&mut s, 0, &removed.outgoing, id);
    let after = s[0].group_send(&id, b"without carol", None).unwrap();
    assert_eq!(
        &s[1]
            .group_receive(&id, &uid("alice"), &after.payload)
            .unwrap()
            .plaintext[..],
        b"without carol"
    );
    assert_eq!(
        action(
            s[2].group_receive(&id, &uid("alice"), &after.payload)
                .unwrap_err()
        ),
        Action::RetryLater(RetryLater::MissingDistribution)
    );
    assert_eq!(
        s[0].group_status(&id).unwrap().unwrap().members,
        members(&["alice", "bob"])
    );

    // Adding her back hands her the current chain alone.
    let added = s[0].add_to_group(&id, &uid("carol")).unwrap();
    assert_eq!(added.outgoing.len(), 1);
    assert_eq!(added.outgoing[0].destination, b"carol");
    assert!(matches!(
        s[0].add_to_group(&id, &uid("carol")),
        Err(Error::AlreadyExists { .. })
    ));
    hand_out(&mut s, 0, &added.outgoing, id);
    let back = s[0].group_send(&id, b"welcome back", None).unwrap();
    assert_eq!(
        &s[2]
            .group_receive(&id, &uid("alice"), &back.payload)
            .unwrap()
            .plaintext[..],
        b"welcome back"
    );

    // A rotation: a new chain for every member.
    let rotated = s[1].rotate_group(&id).unwrap();
    assert_eq!(rotated.outgoing.len(), 2);
    hand_out(&mut s, 1, &rotated.outgoing, id);
    let from_bob = s[1].group_send(&id, b"new chain", None).unwrap();
    for i in [0, 2] {
        s[i].group_receive(&id, &uid("bob"), &from_bob.payload)
            .unwrap();
    }

    // A member missing a chain asks for it; the answer comes committed.
    let again = s[1].distribute_group(&id, &members(&["carol"])).unwrap();
    assert_eq!(again.outgoing.len(), 1);
    let request = s[2].request_distribution(&id, &uid("bob"), D1).unwrap();
    let Delivered::DistributionRequest { group, answer } = deliver(&mut s[1], "carol", &request)
    else {
        panic!("not a distribution request");
    };
    assert_eq!(group, id);
    let answer = answer.unwrap();
    assert_eq!(s[1].outbox().unwrap().last(), Some(&answer));
    assert_eq!(
        deliver(&mut s[2], "bob", &answer),
        Delivered::Distribution { group: id }
    );
    for store in &s {
        store.verify().unwrap();
    }
}
