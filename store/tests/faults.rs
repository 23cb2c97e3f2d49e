//! Every fault of SPEC.md §17.6 gives its typed error, writes nothing, and
//! leaves the process working: a wrong key, a corrupt page, a truncated,
//! altered or misplaced value, a full disk, a locked database, a conflict.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    NOW, TempDir, bundle, introduce, key, pair, peer_name, raw, receive, send, uid, user,
    with_device,
};
use sotto_store::{Error, Options, Point, Store};

/// Alice encrypts to Bob and Bob decrypts: the conversation still works.
fn still_talks(alice: &mut Store, bob: &mut Store, text: &[u8]) {
    let out = send(alice, "bob", text);
    alice.ack_sent(out.id).unwrap();
    let got = receive(bob, "alice", &out);
    assert_eq!(&got.plaintext[..], text);
    bob.ack_read(got.id).unwrap();
}

#[test]
fn a_wrong_key_is_a_clear_error_and_the_right_one_still_opens() {
    let dir = TempDir::new("wrong-key");
    let path = dir.file("a.db");
    let (store, _) = with_device(&path, 1);
    drop(store);
    assert_eq!(Store::open(&path, &key(9)).unwrap_err(), Error::WrongKey);
    let store = Store::open(&path, &key(1)).unwrap();
    assert_eq!(store.verify().unwrap(), 1);
}

#[test]
fn a_corrupt_page_is_a_typed_error_and_other_databases_keep_working() {
    let dir = TempDir::new("corrupt-page");
    let (mut alice, mut bob) = pair(&dir);
    still_talks(&mut alice, &mut bob, b"before");
    let root: i64 = raw(&dir.file("alice.db"))
        .query_row(
            "SELECT rootpage FROM sqlite_master WHERE name = 'records'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    drop(alice);
    // Closing the last connection checkpoints the WAL into the file.
    let path = dir.file("alice.db");
    let mut bytes = std::fs::read(&path).unwrap();
    let page = 4096 * usize::try_from(root - 1).unwrap();
    for (i, b) in bytes[page..page + 4096].iter_mut().enumerate() {
        *b = u8::try_from(i * 37 % 251).unwrap();
    }
    std::fs::write(&path, &bytes).unwrap();

    let mut alice = Store::open(&path, &key(1)).unwrap();
    assert_eq!(alice.verify().unwrap_err(), Error::DatabaseCorrupt);
    assert_eq!(
        alice.send_to_user(&uid("bob"), b"x", None).unwrap_err(),
        Error::DatabaseCorrupt
    );
    assert_eq!(alice.device_status().unwrap_err(), Error::DatabaseCorrupt);
    // Bob's database, in the same process, is untouched: the device, the
    // own record and Alice's.
    assert_eq!(bob.verify().unwrap(), 3);

    // A file whose header is garbage is not a database.
    let other = dir.file("garbage.db");
    std::fs::write(&other, vec![0x5a; 8192]).unwrap();
    assert_eq!(
        Store::open(&other, &key(1)).unwrap_err(),
        Error::DatabaseCorrupt
    );
}

/// Replaces a record's columns by SQL, as an attacker or a bad disk would.
fn tamper(path: &std::path::Path, sql: &str, name: &str) {
    let n = raw(path).execute(sql, [name]).unwrap();
    assert_eq!(n, 1, "{sql}");
}

#[test]
fn truncated_altered_and_misplaced_values_are_told_apart() {
    let dir = TempDir::new("values");
    let (mut alice, mut bob) = pair(&dir);
    let path = dir.file("alice.db");
    let bob_record = peer_name("bob");
    let conn = raw(&path);
    let saved: (Vec<u8>, Vec<u8>) = conn
        .query_row(
            "SELECT value, mac FROM records WHERE name = ?1",
            [&bob_record],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let restore = |conn: &rusqlite::Connection| {
        conn.execute(
            "UPDATE records SET value = ?1, mac = ?2 WHERE name = ?3",
            rusqlite::params![saved.0, saved.1, bob_record],
        )
        .unwrap();
    };

    tamper(
        &path,
        "UPDATE records SET value = substr(value, 1, length(value) - 40) WHERE name = ?1",
        &bob_record,
    );
    assert_eq!(
        alice.send_to_user(&uid("bob"), b"x", None).unwrap_err(),
        Error::TruncatedValue {
            record: bob_record.clone()
        }
    );
    restore(&conn);
    still_talks(&mut alice, &mut bob, b"after truncation");

    let saved_now: (Vec<u8>, Vec<u8>) = conn
        .query_row(
            "SELECT value, mac FROM records WHERE name = ?1",
            [&bob_record],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let mut altered = saved_now.0.clone();
    let mid = altered.len() / 2;
    altered[mid] ^= 1;
    conn.execute(
        "UPDATE records SET value = ?1 WHERE name = ?2",
        rusqlite::params![altered, bob_record],
    )
    .unwrap();
    assert_eq!(
        alice.send_to_user(&uid("bob"), b"x", None).unwrap_err(),
        Error::CorruptValue {
            record: bob_record.clone()
        }
    );
    // Altering the generation column alone is caught too.
    conn.execute(
        "UPDATE records SET value = ?1, generation = generation + 1 WHERE name = ?2",
        rusqlite::params![saved_now.0, bob_record],
    )
    .unwrap();
    assert!(matches!(
        alice.send_to_user(&uid("bob"), b"x", None).unwrap_err(),
        Error::CorruptValue { .. }
    ));
    conn.execute(
        "UPDATE records SET generation = generation - 1 WHERE name = ?1",
        [&bob_record],
    )
    .unwrap();
    still_talks(&mut alice, &mut bob, b"after alteration");

    // A record of Carol, then the record of Bob copied over it.
    let (mut carol, carol_first) = user(&dir, "carol", 3);
    introduce(
        &mut alice,
        "carol",
        &carol_first,
        bundle(&carol_first, None, None),
    );
    let alice_identity = alice.device_status().unwrap().identity;
    carol
        .update_devices(&uid("alice"), &[(common::D1, alice_identity)], NOW)
        .unwrap();
    let carol_record = peer_name("carol");
    let copy = "UPDATE records SET (kind, generation, version, len, value, mac) =
        (SELECT kind, generation, version, len, value, mac FROM records WHERE name = ?2)
        WHERE name = ?1";
    let carol_saved: (i64, i64, i64, i64, Vec<u8>, Vec<u8>) = conn
        .query_row(
            "SELECT kind, generation, version, len, value, mac FROM records WHERE name = ?1",
            [&carol_record],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        )
        .unwrap();
    conn.execute(copy, [&carol_record, &bob_record]).unwrap();
    assert_eq!(
        alice.send_to_user(&uid("carol"), b"x", None).unwrap_err(),
        Error::MisplacedValue {
            record: carol_record.clone()
        }
    );
    // The device row in the record's place: another type.
    conn.execute(copy, [&carol_record, "device"]).unwrap();
    assert_eq!(
        alice.send_to_user(&uid("carol"), b"x", None).unwrap_err(),
        Error::MisplacedValue {
            record: carol_record.clone()
        }
    );
    conn.execute(
        "UPDATE records SET (kind, generation, version, len, value, mac) = (?1, ?2, ?3, ?4, ?5, ?6)
         WHERE name = ?7",
        rusqlite::params![
            carol_saved.0,
            carol_saved.1,
            carol_saved.2,
            carol_saved.3,
            carol_saved.4,
            carol_saved.5,
            carol_record
        ],
    )
    .unwrap();
    let out = send(&mut alice, "carol", b"to carol");
    assert_eq!(
        &receive(&mut carol, "alice", &out).plaintext[..],
        b"to carol"
    );

    // A device row from another database under the same key: it is bound
    // to its own database's id.
    let (other, _) = with_device(&dir.file("other.db"), 1);
    drop(other);
    let other_row: (i64, i64, i64, i64, Vec<u8>, Vec<u8>) = raw(&dir.file("other.db"))
        .query_row(
            "SELECT kind, generation, version, len, value, mac FROM records WHERE name = 'device'",
            [],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        )
        .unwrap();
    conn.execute(
        "UPDATE records SET (kind, generation, version, len, value, mac) = (?1, ?2, ?3, ?4, ?5, ?6)
         WHERE name = 'device'",
        rusqlite::params![
            other_row.0,
            other_row.1,
            other_row.2,
            other_row.3,
            other_row.4,
            other_row.5
        ],
    )
    .unwrap();
    assert_eq!(
        alice.device_status().unwrap_err(),
        Error::MisplacedValue {
            record: "device".into()
        }
    );
    // Sending does not need the device: Alice still writes to Bob.
    let out = send(&mut alice, "bob", b"still");
    assert_eq!(&receive(&mut bob, "alice", &out).plaintext[..], b"still");
}

#[test]
fn a_value_over_the_row_limit_is_refused_unread() {
    let dir = TempDir::new("too-big");
    let (mut alice, mut bob) = pair(&dir);
    let path = dir.file("alice.db");
    let conn = raw(&path);
    let name = peer_name("bob");
    let saved: Vec<u8> = conn
        .query_row("SELECT value FROM records WHERE name = ?1", [&name], |r| {
            r.get(0)
        })
        .unwrap();
    let huge = vec![0x5au8; sotto_store::MAX_ROW_LEN + 1];
    conn.execute(
        "UPDATE records SET value = ?1 WHERE name = ?2",
        rusqlite::params![huge, name],
    )
    .unwrap();
    assert_eq!(
        alice.send_to_user(&uid("bob"), b"x", None).unwrap_err(),
        Error::DatabaseCorrupt
    );
    conn.execute(
        "UPDATE records SET value = ?1 WHERE name = ?2",
        rusqlite::params![saved, name],
    )
    .unwrap();
    still_talks(&mut alice, &mut bob, b"after");
}

#[test]
fn a_full_disk_writes_nothing_and_the_next_call_succeeds() {
    let dir = TempDir::new("disk-full");
    let (mut alice, mut bob) = pair(&dir);
    let before = bob.device_status().unwrap();
    let pages: i64 = raw(&dir.file("bob.db"))
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    bob.set_page_limit(u64::try_from(pages).unwrap()).unwrap();
    // 100 one-time KEM prekeys need pages the limit does not allow.
    assert_eq!(bob.replenish_prekeys(0, 100).unwrap_err(), Error::DiskFull);
    assert_eq!(bob.device_status().unwrap(), before);
    assert!(bob.outbox().unwrap().is_empty());
    // Receiving still works within the pages there are.
    still_talks(&mut alice, &mut bob, b"while full");
    bob.set_page_limit(1 << 30).unwrap();
    let out = bob.replenish_prekeys(0, 100).unwrap().unwrap();
    assert_eq!(common::upload(&out).one_time_kem_prekeys.len(), 100);
    assert_eq!(bob.device_status().unwrap().one_time_kem_prekeys, 100);
    still_talks(&mut alice, &mut bob, b"after");
}

#[test]
fn a_locked_database_is_busy_and_nothing_changes() {
    let dir = TempDir::new("busy");
    let (alice, mut bob) = pair(&dir);
    drop(alice);
    let options = Options::default().with_busy_timeout(Duration::from_millis(100));
    let mut alice = Store::open_with(dir.file("alice.db"), &key(1), options).unwrap();
    let before = alice.peer_status(&uid("bob")).unwrap().unwrap();
    let other = raw(&dir.file("alice.db"));
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let start = Instant::now();
    assert_eq!(
        alice.send_to_user(&uid("bob"), b"x", None).unwrap_err(),
        Error::Busy
    );
    assert!(start.elapsed() >= Duration::from_millis(100));
    // Readers are not blocked in WAL mode.
    assert_eq!(alice.peer_status(&uid("bob")).unwrap().unwrap(), before);
    other.execute_batch("ROLLBACK").unwrap();
    assert!(alice.outbox().unwrap().is_empty());
    still_talks(&mut alice, &mut bob, b"after the lock");
    assert_eq!(
        alice.peer_status(&uid("bob")).unwrap().unwrap().generation,
        before.generation + 1
    );
}

/// A store whose hook, at `at` of its first `op`, runs `interfere` once.
fn interfering(
    path: &std::path::Path,
    options: Options,
    at: &'static str,
    interfere: impl FnMut() + Send + 'static,
) -> Store {
    let mut store = Store::open_with(path, &key(1), options).unwrap();
    let interfere = Arc::new(Mutex::new(Some(interfere)));
    store.set_point_hook(Box::new(move |p: Point| {
        if p.at == at
            && p.op == "send-to-user"
            && let Some(mut f) = interfere.lock().unwrap().take()
        {
            f();
        }
    }));
    store
}

#[test]
fn a_stale_copy_gets_a_conflict_and_the_retry_loses_no_update() {
    let dir = TempDir::new("conflict");
    let (alice, mut bob) = pair(&dir);
    drop(alice);
    let path = dir.file("alice.db");
    let sent = Arc::new(Mutex::new(Vec::new()));

    // The other handle encrypts between this one's load and its write.
    let other_sent = Arc::clone(&sent);
    let other_path = path.clone();
    let mut alice = interfering(&path, Options::default(), "computed", move || {
        let mut other = Store::open(&other_path, &key(1)).unwrap();
        let out = send(&mut other, "bob", b"from the other handle");
        other_sent.lock().unwrap().push(out);
    });
    let mine = send(&mut alice, "bob", b"from this handle");
    assert_eq!(alice.stats().conflicts, 1);
    let theirs = sent.lock().unwrap().pop().unwrap();
    // Both messages decrypt: neither update was lost.
    for out in [&theirs, &mine] {
        receive(&mut bob, "alice", out);
    }
    let numbers: Vec<u32> = [&theirs, &mine]
        .iter()
        .map(|o| match sotto::Message::from_bytes(&o.payload).unwrap() {
            sotto::Message::Ratchet(m) => m.message_number(),
            sotto::Message::PreKey(m) => m.message_number(),
        })
        .collect();
    assert_ne!(numbers[0], numbers[1]);

    // Without retries the stale writer sees the typed conflict, and wrote
    // nothing: only the other handle's message is in the outbox.
    drop(alice);
    let before = raw(&path)
        .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get::<_, i64>(0))
        .unwrap();
    let other_path = path.clone();
    let options = Options::default().with_attempts(1, false);
    let mut alice = interfering(&path, options, "computed", move || {
        let mut other = Store::open(&other_path, &key(1)).unwrap();
        send(&mut other, "bob", b"again");
    });
    assert_eq!(
        alice.send_to_user(&uid("bob"), b"stale", None).unwrap_err(),
        Error::Conflict {
            record: peer_name("bob")
        }
    );
    let after = raw(&path)
        .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get::<_, i64>(0))
        .unwrap();
    assert_eq!(after, before + 1);
    // The next call works.
    send(&mut alice, "bob", b"fresh");
}

#[test]
fn output_exists_only_once_committed() {
    let dir = TempDir::new("commit-order");
    let (alice, _bob) = pair(&dir);
    drop(alice);
    let path = dir.file("alice.db");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut alice = Store::open(&path, &key(1)).unwrap();
    let observer = Store::open(&path, &key(1)).unwrap();
    let log = Arc::clone(&seen);
    let observer = Mutex::new(observer);
    alice.set_point_hook(Box::new(move |p: Point| {
        if p.op == "send-to-user" {
            let o = observer.lock().unwrap();
            let entries = o.outbox().unwrap().len();
            let generation = o.peer_status(&uid("bob")).unwrap().unwrap().generation;
            log.lock().unwrap().push((p.at, entries, generation));
        }
    }));
    let out = send(&mut alice, "bob", b"x");
    let seen = seen.lock().unwrap().clone();
    let at = |name: &str| seen.iter().find(|(a, _, _)| *a == name).copied().unwrap();
    let (_, entries, generation) = at("before-commit");
    assert_eq!(
        entries, 0,
        "another connection saw the entry before the commit"
    );
    let (_, entries_after, generation_after) = at("committed");
    assert_eq!((entries_after, generation_after), (1, generation + 1));
    assert_eq!(alice.outbox().unwrap(), vec![out]);
    let _ = NOW;
}
