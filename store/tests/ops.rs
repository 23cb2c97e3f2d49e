//! The device operations through the store (SPEC.md §17.5): prekey ids in
//! sequence and never reused, one-time prekeys deleted exactly once, a
//! restored database made safe, and the inbox and outbox across reopens.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{
    NOW, TempDir, bundle, introduce, key, knows, receive, refuse, send, uid, upload, user,
};
use sotto::sessions::{Action, Ignore};
use sotto_store::{Error, OutgoingKind, Store};

#[test]
fn prekey_ids_run_in_sequence_and_each_one_time_key_is_used_once() {
    let dir = TempDir::new("prekeys");
    let (mut alice, alice_first) = user(&dir, "alice", 1);
    let (mut bob, first) = user(&dir, "bob", 2);
    assert_eq!(first.signed_prekey.unwrap().id(), 1);
    assert_eq!(first.last_resort_kem_prekey.as_ref().unwrap().id(), 1);
    assert_eq!(
        bob.create_device(NOW).unwrap_err(),
        Error::AlreadyExists {
            record: "device".into()
        }
    );

    let out = bob.replenish_prekeys(5, 3).unwrap().unwrap();
    let up = upload(&out);
    let ids: Vec<u32> = up.one_time_prekeys.iter().map(|k| k.id()).collect();
    assert_eq!(ids, [1, 2, 3, 4, 5]);
    let kem_ids: Vec<u32> = up.one_time_kem_prekeys.iter().map(|k| k.id()).collect();
    assert_eq!(kem_ids, [2, 3, 4]);
    for key in &up.one_time_kem_prekeys {
        key.verify(&up.identity).unwrap();
    }
    assert!(bob.replenish_prekeys(5, 3).unwrap().is_none());
    assert_eq!(bob.outbox().unwrap(), vec![out.clone()]);
    bob.ack_sent(out.id).unwrap();
    assert_eq!(
        upload(&bob.rotate_signed_prekey(NOW).unwrap())
            .signed_prekey
            .unwrap()
            .id(),
        2
    );
    assert_eq!(
        upload(&bob.rotate_last_resort_kem_prekey(NOW).unwrap())
            .last_resort_kem_prekey
            .unwrap()
            .id(),
        5
    );

    // Alice uses one-time prekey 1 and one-time KEM prekey 2 (signed
    // prekey 1 is still held as an old one).
    introduce(
        &mut alice,
        "bob",
        &first,
        bundle(
            &first,
            Some(up.one_time_prekeys[0]),
            Some(up.one_time_kem_prekeys[0].clone()),
        ),
    );
    knows(&mut bob, "alice", &alice_first);
    let hello = send(&mut alice, "bob", b"hello");
    receive(&mut bob, "alice", &hello);
    let status = bob.device_status().unwrap();
    assert_eq!(
        (status.one_time_prekeys, status.one_time_kem_prekeys),
        (4, 2)
    );
    // Again from the same device: the session's duplicate.
    match refuse(&mut bob, "alice", &hello.payload) {
        Error::Session(f) => assert_eq!(f.action, Action::Ignore(Ignore::Duplicate)),
        e => panic!("{e:?}"),
    }
    // Again as another user's device with the same identity: no session
    // has it, and the one-time prekey is gone.
    knows(&mut bob, "mallory", &alice_first);
    match refuse(&mut bob, "mallory", &hello.payload) {
        Error::Session(f) => assert_eq!(
            f.error,
            sotto::Error::UnknownOneTimePreKey { id: 1 },
            "{f:?}"
        ),
        e => panic!("{e:?}"),
    }
    assert_eq!(bob.device_status().unwrap(), status);
    // Replenishing continues after the highest id ever issued.
    let up = upload(&bob.replenish_prekeys(5, 3).unwrap().unwrap());
    assert_eq!(up.one_time_prekeys[0].id(), 6);
    assert_eq!(up.one_time_kem_prekeys[0].id(), 6);
}

#[test]
fn a_restored_database_is_made_safe_in_one_transaction() {
    let dir = TempDir::new("restore");
    let (mut alice, alice_first) = user(&dir, "alice", 1);
    let (mut bob, bob_first) = user(&dir, "bob", 2);
    knows(&mut bob, "alice", &alice_first);
    let group = [5u8; 32];
    bob.create_group(&group, &[uid("bob")]).unwrap();
    // A current database is left alone.
    let mark = bob.high_water_mark().unwrap();
    assert_eq!(bob.after_restore(NOW, mark).unwrap(), None);
    assert_eq!(bob.high_water_mark().unwrap(), mark);
    drop(bob);
    // The backup: the database file right after Bob's device was made.
    std::fs::copy(dir.file("bob.db"), dir.file("backup.db")).unwrap();
    let mut bob = Store::open(dir.file("bob.db"), &key(2)).unwrap();
    let up = upload(&bob.replenish_prekeys(2, 0).unwrap().unwrap());
    introduce(
        &mut alice,
        "bob",
        &bob_first,
        bundle(&bob_first, Some(up.one_time_prekeys[0]), None),
    );
    let hello = send(&mut alice, "bob", b"hello");
    receive(&mut bob, "alice", &hello);
    let recorded = bob.high_water_mark().unwrap();
    let generation = bob.device_status().unwrap().generation;
    drop(bob);

    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.file(&format!("bob.db{suffix}")));
    }
    std::fs::copy(dir.file("backup.db"), dir.file("bob.db")).unwrap();
    let mut bob = Store::open(dir.file("bob.db"), &key(2)).unwrap();
    assert!(bob.high_water_mark().unwrap() < recorded);
    let restored = bob.after_restore(NOW + 1, recorded).unwrap().unwrap();
    let reset = upload(&restored.upload);
    assert!(reset.replace);
    assert_eq!(reset.signed_prekey.unwrap().id(), 2);
    assert_eq!(restored.records, 2); // Alice's record and the own record
    assert_eq!(restored.groups, vec![group]);
    assert!(bob.high_water_mark().unwrap() > recorded);
    assert_eq!(bob.after_restore(NOW + 1, recorded).unwrap(), None);
    assert!(bob.device_status().unwrap().generation > generation);
    // The prekey message made before the reset is never accepted again.
    match refuse(&mut bob, "alice", &hello.payload) {
        Error::Session(f) => assert_eq!(
            f.error,
            sotto::Error::UnknownSignedPreKey { id: 1 },
            "{f:?}"
        ),
        e => panic!("{e:?}"),
    }
}

#[test]
fn the_inbox_and_outbox_survive_a_reopen_until_acknowledged() {
    let dir = TempDir::new("mailbox");
    let (mut alice, mut bob) = common::pair(&dir);
    let a = alice
        .send_to_user(&uid("bob"), b"one", Some(41))
        .unwrap()
        .outgoing[0]
        .clone();
    let b = alice
        .send_to_user(&uid("bob"), b"two", Some(42))
        .unwrap()
        .outgoing[0]
        .clone();
    assert!(b.id > a.id);
    assert_eq!((a.app_ref, a.kind), (Some(41), OutgoingKind::Message));
    drop(alice);
    let mut alice = Store::open(dir.file("alice.db"), &key(1)).unwrap();
    assert_eq!(alice.outbox().unwrap(), vec![a.clone(), b.clone()]);
    assert!(alice.ack_sent(a.id).unwrap());
    assert!(!alice.ack_sent(a.id).unwrap());
    assert_eq!(alice.outbox().unwrap(), vec![b.clone()]);

    let got_a = receive(&mut bob, "alice", &a);
    let got_b = receive(&mut bob, "alice", &b);
    drop(bob);
    let mut bob = Store::open(dir.file("bob.db"), &key(2)).unwrap();
    let inbox = bob.inbox().unwrap();
    assert_eq!(inbox, vec![got_a.clone(), got_b.clone()]);
    assert_eq!(&inbox[1].plaintext[..], b"two");
    assert_eq!(inbox[1].source, b"alice");
    assert_eq!(inbox[1].device, Some(1));
    assert!(bob.ack_read(got_a.id).unwrap());
    assert_eq!(bob.inbox().unwrap(), vec![got_b]);

    // An inbox entry moved to another source no longer opens.
    let conn = common::raw(&dir.file("bob.db"));
    conn.execute("UPDATE inbox SET source = x'6d616c6c6f7279'", [])
        .unwrap();
    assert!(matches!(
        bob.inbox().unwrap_err(),
        Error::CorruptValue { .. }
    ));
}
