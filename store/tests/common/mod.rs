//! Helpers shared by the store's integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use sotto::PreKeyBundle;
use sotto::sessions::{DeviceId, UserId};
use sotto_store::{
    Delivered, Error, Incoming, Outgoing, OutgoingKind, PreKeyUpload, Store, StoreKey,
};

/// A directory removed when dropped.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    /// Under /dev/shm where it exists (Linux), else the temp directory:
    /// these tests are about what is in the files and when, not about the
    /// disk's fsync, whose few milliseconds per commit would dominate.
    pub(crate) fn new(name: &str) -> Self {
        let shm = Path::new("/dev/shm");
        if shm.is_dir() {
            Self::under(shm, name)
        } else {
            Self::on_disk(name)
        }
    }

    /// In the temp directory, on the disk.
    pub(crate) fn on_disk(name: &str) -> Self {
        Self::under(&std::env::temp_dir(), name)
    }

    fn under(base: &Path, name: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = base.join(format!("sotto-store-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    pub(crate) fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) const NOW: u64 = 1_700_000_000;

pub(crate) fn key(byte: u8) -> StoreKey {
    StoreKey::from_bytes([byte; 32])
}

/// A store with a device whose first upload was "sent".
pub(crate) fn with_device(path: &Path, key_byte: u8) -> (Store, PreKeyUpload) {
    let mut store = Store::open(path, &key(key_byte)).unwrap();
    let out = store.create_device(NOW).unwrap();
    store.ack_sent(out.id).unwrap();
    (store, PreKeyUpload::from_bytes(&out.payload).unwrap())
}

/// A bundle from a device's first upload, with a one-time prekey of each
/// kind if given.
pub(crate) fn bundle(
    first: &PreKeyUpload,
    one_time: Option<sotto::OneTimePreKey>,
    kem: Option<sotto::KemPreKey>,
) -> PreKeyBundle {
    PreKeyBundle::new(
        first.identity,
        first.signed_prekey.unwrap(),
        one_time,
        kem.or(first.last_resort_kem_prekey.clone()),
    )
}

/// The upload in a committed prekey operation's outbox entry.
pub(crate) fn upload(out: &Outgoing) -> PreKeyUpload {
    assert_eq!(out.kind, OutgoingKind::PreKeys);
    PreKeyUpload::from_bytes(&out.payload).unwrap()
}

/// Every test's one device per user.
pub(crate) const D1: DeviceId = DeviceId(1);

pub(crate) fn uid(name: &str) -> UserId {
    UserId::new(name.as_bytes()).unwrap()
}

/// A user's store with a device, its account (`name`, device 1) and its
/// first upload "sent".
pub(crate) fn user(dir: &TempDir, name: &str, key_byte: u8) -> (Store, PreKeyUpload) {
    let (mut store, first) = with_device(&dir.file(&format!("{name}.db")), key_byte);
    store.set_account(&uid(name), D1).unwrap();
    (store, first)
}

/// `a` learns that `b` has device 1 under `b_first`'s identity.
pub(crate) fn knows(a: &mut Store, b: &str, b_first: &PreKeyUpload) {
    a.update_devices(&uid(b), &[(D1, b_first.identity)], NOW)
        .unwrap();
}

/// `a` knows `b` and starts a session with its device from `bundle`.
pub(crate) fn introduce(a: &mut Store, b: &str, b_first: &PreKeyUpload, bundle: PreKeyBundle) {
    knows(a, b, b_first);
    a.add_bundle(&uid(b), D1, bundle, NOW).unwrap();
}

/// `from` encrypts `text` to `to`'s one device; the committed entry.
pub(crate) fn send(from: &mut Store, to: &str, text: &[u8]) -> Outgoing {
    let sent = from.send_to_user(&uid(to), text, None).unwrap();
    assert_eq!(sent.outgoing.len(), 1, "{:?}", sent.unusable);
    sent.outgoing.into_iter().next().unwrap()
}

/// `to` decrypts a message from `from`; the inbox entry.
pub(crate) fn receive(to: &mut Store, from: &str, out: &Outgoing) -> Incoming {
    match to.receive_from(&uid(from), D1, &out.payload, NOW).unwrap() {
        Delivered::Message(entry) => entry,
        other => panic!("not a message: {other:?}"),
    }
}

/// The error of `to` decrypting a message from `from`.
pub(crate) fn refuse(to: &mut Store, from: &str, payload: &[u8]) -> Error {
    to.receive_from(&uid(from), D1, payload, NOW).unwrap_err()
}

/// Alice and Bob, each knowing the other, with a session each way: Alice
/// started it from Bob's bundle, and Bob accepted her first message.
pub(crate) fn pair(dir: &TempDir) -> (Store, Store) {
    let (alice, _, bob, _) = pair_with_uploads(dir);
    (alice, bob)
}

/// [`pair`], with each one's first upload.
pub(crate) fn pair_with_uploads(dir: &TempDir) -> (Store, PreKeyUpload, Store, PreKeyUpload) {
    let (mut alice, alice_first) = user(dir, "alice", 1);
    let (mut bob, bob_first) = user(dir, "bob", 2);
    introduce(
        &mut alice,
        "bob",
        &bob_first,
        bundle(&bob_first, None, None),
    );
    knows(&mut bob, "alice", &alice_first);
    let out = send(&mut alice, "bob", b"hello");
    alice.ack_sent(out.id).unwrap();
    let got = receive(&mut bob, "alice", &out);
    bob.ack_read(got.id).unwrap();
    (alice, alice_first, bob, bob_first)
}

/// Opens a raw connection to a store's database, for tests that alter it.
pub(crate) fn raw(path: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    conn
}

/// The record name of the peer record of `user`.
pub(crate) fn peer_name(user: &str) -> String {
    let hex: String = user.bytes().map(|b| format!("{b:02x}")).collect();
    format!("peer/{hex}")
}
