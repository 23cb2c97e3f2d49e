//! The session layer through the store (SPEC.md §16, §17): peer records
//! with their devices, an accepted prekey message committing the device and
//! the record together, failures that change nothing, and a group whose
//! distributions, messages and removal go through one transaction each.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::{NOW, TempDir, bundle, key, with_device};
use sotto::sessions::{Action, DeviceId, Ignore, UserId};
use sotto_store::{Delivered, Error, OutgoingKind, Store};

const D1: DeviceId = DeviceId(1);

fn uid(name: &str) -> UserId {
    UserId::new(name.as_bytes()).unwrap()
}

/// A user with a device, an account and its first upload.
fn user(dir: &TempDir, name: &str, byte: u8) -> (Store, sotto_store::PreKeyUpload) {
    let (mut store, first) = with_device(&dir.file(&format!("{name}.db")), byte);
    store.set_account(&uid(name), D1).unwrap();
    (store, first)
}

/// `a` knows `b`'s device and has a session with it.
fn introduce(a: &mut Store, b_name: &str, b_first: &sotto_store::PreKeyUpload) {
    a.update_devices(&uid(b_name), &[(D1, b_first.identity)], NOW)
        .unwrap();
    a.add_bundle(&uid(b_name), D1, bundle(b_first, None, None), NOW)
        .unwrap();
}

fn deliver(to: &mut Store, from: &str, out: &sotto_store::Outgoing) -> Delivered {
    assert_eq!(out.kind, OutgoingKind::Message);
    to.receive_from(&uid(from), DeviceId(out.device.unwrap()), &out.payload, NOW)
        .unwrap()
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
    introduce(&mut alice, "bob", &bob_first);
    bob.update_devices(&uid("alice"), &[(D1, alice_first.identity)], NOW)
        .unwrap();

    let sent = alice.send_to_user(&uid("bob"), b"hello", Some(7)).unwrap();
    assert_eq!(sent.outgoing.len(), 1);
    assert_eq!(sent.outgoing[0].app_ref, Some(7));
    let device_before = bob.device_status().unwrap();
    let Delivered::Message(got) = deliver(&mut bob, "alice", &sent.outgoing[0]) else {
        panic!("not a message");
    };
    assert_eq!(&got.plaintext[..], b"hello");
    assert_eq!(got.device, Some(1));
    // The accept changed the device in the same transaction.
    assert!(bob.device_status().unwrap().generation > device_before.generation);

    // A duplicate is a failure with its action, and changes nothing.
    let device_now = bob.device_status().unwrap();
    match bob.receive_from(&uid("alice"), D1, &sent.outgoing[0].payload, NOW) {
        Err(Error::Session(f)) => assert_eq!(f.action, Action::Ignore(Ignore::Duplicate)),
        other => panic!("{other:?}"),
    }
    assert_eq!(bob.device_status().unwrap(), device_now);
    assert_eq!(bob.inbox().unwrap().len(), 1);

    let reply = bob.send_to_user(&uid("alice"), b"hi", None).unwrap();
    let Delivered::Message(got) = deliver(&mut alice, "bob", &reply.outgoing[0]) else {
        panic!("not a message");
    };
    assert_eq!(&got.plaintext[..], b"hi");
    // Every record opens: device, own record, one peer record each.
    assert_eq!(alice.verify().unwrap(), 3);
    assert_eq!(bob.verify().unwrap(), 3);
    // A message from a user without a record is NotFound, nothing changes.
    assert!(matches!(
        bob.receive_from(&uid("carol"), D1, &reply.outgoing[0].payload, NOW),
        Err(Error::NotFound { .. })
    ));
    drop(key(0));
}

#[test]
fn a_group_through_the_store() {
    let dir = TempDir::new("group");
    let (mut alice, alice_first) = user(&dir, "alice", 1);
    let (mut bob, bob_first) = user(&dir, "bob", 2);
    let (mut carol, carol_first) = user(&dir, "carol", 3);
    introduce(&mut alice, "bob", &bob_first);
    introduce(&mut alice, "carol", &carol_first);
    introduce(&mut bob, "carol", &carol_first);
    for s in [&mut bob, &mut carol] {
        s.update_devices(&uid("alice"), &[(D1, alice_first.identity)], NOW)
            .unwrap();
    }
    carol
        .update_devices(&uid("bob"), &[(D1, bob_first.identity)], NOW)
        .unwrap();
    let members = [uid("alice"), uid("bob"), uid("carol")];
    let id = [9u8; 32];

    let made = alice.create_group(&id, &members).unwrap();
    assert_eq!(made.outgoing.len(), 2);
    // A distribution for a group not joined yet changes nothing.
    let to_bob = made.outgoing.iter().find(|o| o.destination == b"bob").unwrap();
    let before = bob.device_status().unwrap();
    assert!(matches!(
        bob.receive_from(&uid("alice"), D1, &to_bob.payload, NOW),
        Err(Error::NotFound { .. })
    ));
    assert_eq!(bob.device_status().unwrap(), before);
    for (store, name) in [(&mut bob, "bob"), (&mut carol, "carol")] {
        store.create_group(&id, &members).unwrap();
        let out = made.outgoing.iter().find(|o| o.destination == name.as_bytes()).unwrap();
        assert_eq!(
            deliver(store, "alice", out),
            Delivered::Distribution { group: id }
        );
    }
    let message = alice.group_send(&id, b"to all", Some(1)).unwrap();
    assert_eq!(message.kind, OutgoingKind::GroupMessage);
    for store in [&mut bob, &mut carol] {
        let got = store.group_receive(&id, &uid("alice"), &message.payload).unwrap();
        assert_eq!(&got.plaintext[..], b"to all");
        assert_eq!(got.group, Some(id));
        // Claimed as another member's: refused.
        assert!(store.group_receive(&id, &uid("bob"), &message.payload).is_err());
    }

    // Removing Carol: one transaction rotates Alice's chain and hands it to
    // Bob only.
    let removed = alice.remove_from_group(&id, &uid("carol")).unwrap();
    assert!(removed.outgoing.iter().all(|o| o.destination == b"bob"));
    for out in &removed.outgoing {
        deliver(&mut bob, "alice", out);
    }
    let after = alice.group_send(&id, b"without carol", None).unwrap();
    assert_eq!(
        &bob.group_receive(&id, &uid("alice"), &after.payload).unwrap().plaintext[..],
        b"without carol"
    );
    assert!(carol.group_receive(&id, &uid("alice"), &after.payload).is_err());
    assert_eq!(
        alice.group_members(&id).unwrap(),
        vec![uid("alice"), uid("bob")]
    );
    for s in [&alice, &bob, &carol] {
        s.verify().unwrap();
    }
}
