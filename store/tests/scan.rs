//! The database and its WAL hold no plaintext secret (SPEC.md §17.7): every
//! 16-byte window of every state's plain encoding, at every step of a
//! conversation, and every message plaintext, searched for in the files'
//! bytes; windows that are public (in a wire message or an upload) or of
//! low entropy are left out, and a control shows the search finds a state
//! stored in the clear.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::HashSet;
use std::path::Path;

use common::{D1, NOW, TempDir, bundle, introduce, knows, receive, send, uid, upload, user};
use sotto_store::{Delivered, Store};

const WINDOW: usize = 16;

/// The files of a database: the main file, the WAL and the shared memory.
fn files(path: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        if let Ok(bytes) = std::fs::read(&name) {
            all.extend_from_slice(&bytes);
        }
    }
    all
}

fn windows(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes.windows(WINDOW).filter(|w| {
        // Counts, flags and zero runs match anything; a 16-byte window of a
        // secret has about 15 distinct bytes.
        w.iter().collect::<HashSet<_>>().len() >= 12
    })
}

struct Scan {
    secrets: HashSet<Vec<u8>>,
    public: HashSet<Vec<u8>>,
    /// Plain encodings already taken apart.
    seen: HashSet<Vec<u8>>,
}

impl Scan {
    fn record(&mut self, store: &Store) {
        for (_, plain) in store.plain_records().unwrap() {
            if !self.seen.insert(plain.to_vec()) {
                continue;
            }
            for w in windows(&plain) {
                self.secrets.insert(w.to_vec());
            }
        }
    }

    fn public(&mut self, bytes: &[u8]) {
        for w in windows(bytes) {
            self.public.insert(w.to_vec());
        }
    }

    /// The secret windows found in `haystack`.
    fn found(&self, haystack: &[u8]) -> usize {
        let present: HashSet<&[u8]> = haystack.windows(WINDOW).collect();
        self.secrets
            .iter()
            .filter(|s| !self.public.contains(*s) && present.contains(s.as_slice()))
            .count()
    }
}

#[test]
fn no_state_secret_or_plaintext_is_in_the_files() {
    let dir = TempDir::new("scan");
    let mut scan = Scan {
        secrets: HashSet::new(),
        public: HashSet::new(),
        seen: HashSet::new(),
    };
    let (mut alice, alice_first) = user(&dir, "alice", 1);
    let (mut bob, bob_first) = user(&dir, "bob", 2);
    scan.public(&alice_first.to_bytes());
    scan.public(&bob_first.to_bytes());
    let up = bob.replenish_prekeys(10, 5).unwrap().unwrap();
    scan.public(&up.payload);
    let up = upload(&up);
    scan.record(&alice);
    scan.record(&bob);

    introduce(
        &mut alice,
        "bob",
        &bob_first,
        bundle(
            &bob_first,
            Some(up.one_time_prekeys[0]),
            Some(up.one_time_kem_prekeys[0].clone()),
        ),
    );
    knows(&mut bob, "alice", &alice_first);
    let group = [7u8; 32];
    let mut plaintexts = Vec::new();
    for i in 0..30u32 {
        if i == 4 {
            // A group: each hands its chain to the other.
            let members = [uid("alice"), uid("bob")];
            let from_alice = alice.create_group(&group, &members).unwrap();
            let from_bob = bob.create_group(&group, &members).unwrap();
            for (outs, to, name) in [
                (&from_alice.outgoing, &mut bob, "alice"),
                (&from_bob.outgoing, &mut alice, "bob"),
            ] {
                for out in outs {
                    scan.public(&out.payload);
                    let got = to.receive_from(&uid(name), D1, &out.payload, NOW).unwrap();
                    assert_eq!(got, Delivered::Distribution { group });
                }
            }
            scan.record(&alice);
            scan.record(&bob);
        }
        if i >= 4 && i % 4 == 1 {
            let text: Vec<u8> = (0..40u32)
                .map(|j| u8::try_from((i * 71 + j * 13 + 3) % 251).unwrap())
                .collect();
            let out = alice.group_send(&group, &text, None).unwrap();
            scan.public(&out.payload);
            let got = bob
                .group_receive(&group, &uid("alice"), &out.payload)
                .unwrap();
            assert_eq!(&got.plaintext[..], &text[..]);
            plaintexts.push(text);
        }
        let text: Vec<u8> = (0..32u32)
            .map(|j| u8::try_from((i * 131 + j * 29 + 7) % 251).unwrap())
            .collect();
        let (from, to, name) = if i % 3 == 2 {
            (&mut bob, &mut alice, "bob")
        } else {
            (&mut alice, &mut bob, "alice")
        };
        let other = if name == "bob" { "alice" } else { "bob" };
        let out = send(from, other, &text);
        scan.public(&out.payload);
        let got = receive(to, name, &out);
        assert_eq!(&got.plaintext[..], &text[..]);
        // Half the plaintexts stay in the inbox, half are acknowledged.
        if i % 2 == 0 {
            to.ack_read(got.id).unwrap();
        }
        plaintexts.push(text);
        scan.record(&alice);
        scan.record(&bob);
        if i == 10 {
            let out = bob.rotate_signed_prekey(NOW + 1).unwrap();
            scan.public(&out.payload);
            scan.record(&bob);
        }
    }
    let searched = scan.secrets.difference(&scan.public).count();
    assert!(searched > 5_000, "{searched}");

    // While open: the WAL holds the recent pages.
    for path in [dir.file("alice.db"), dir.file("bob.db")] {
        let bytes = files(&path);
        assert!(bytes.len() > 50_000);
        assert_eq!(scan.found(&bytes), 0, "{path:?} (open)");
        for text in &plaintexts {
            assert!(!bytes.windows(text.len()).any(|w| w == text.as_slice()));
        }
    }
    drop((alice, bob));
    // Closed: checkpointed into the main file.
    for path in [dir.file("alice.db"), dir.file("bob.db")] {
        let bytes = files(&path);
        assert_eq!(scan.found(&bytes), 0, "{path:?} (closed)");
        for text in &plaintexts {
            assert!(!bytes.windows(text.len()).any(|w| w == text.as_slice()));
        }
    }

    // The control: a state written in the clear is found.
    let store = Store::open(dir.file("bob.db"), &common::key(2)).unwrap();
    let (_, plain) = store.plain_records().unwrap().remove(0);
    let control = dir.file("control.db");
    let conn = rusqlite::Connection::open(&control).unwrap();
    conn.execute_batch("CREATE TABLE t (v BLOB)").unwrap();
    conn.execute("INSERT INTO t VALUES (?1)", [plain.as_slice()])
        .unwrap();
    drop(conn);
    assert!(scan.found(&files(&control)) > 100);
}
