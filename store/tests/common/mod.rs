//! Helpers shared by the store's integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use sotto::PreKeyBundle;
use sotto_store::{Outgoing, OutgoingKind, PreKeyUpload, Store, StoreKey};

/// A directory removed when dropped.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> Self {
        Self::under(&std::env::temp_dir(), name)
    }

    /// Under /dev/shm where it exists (Linux), else the temp directory.
    pub(crate) fn in_ram(name: &str) -> Self {
        let shm = Path::new("/dev/shm");
        if shm.is_dir() {
            Self::under(shm, name)
        } else {
            Self::new(name)
        }
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

/// Alice and Bob with a session each way: Alice started it from Bob's
/// bundle, and Bob accepted her first message.
pub(crate) fn pair(dir: &TempDir) -> (Store, Store) {
    let (mut alice, _) = with_device(&dir.file("alice.db"), 1);
    let (mut bob, bob_first) = with_device(&dir.file("bob.db"), 2);
    alice
        .start_session(
            b"bob",
            &bundle(&bob_first, None, None),
            Some(&bob_first.identity),
        )
        .unwrap();
    let out = alice.encrypt(b"bob", b"hello", None).unwrap();
    alice.ack_sent(out.id).unwrap();
    let got = bob.receive(b"alice", &out.payload).unwrap();
    bob.ack_read(got.id).unwrap();
    (alice, bob)
}

/// Opens a raw connection to a store's database, for tests that alter it.
pub(crate) fn raw(path: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    conn
}

/// The record name of the session with `contact`.
pub(crate) fn session_name(contact: &[u8]) -> String {
    let hex: String = contact.iter().map(|b| format!("{b:02x}")).collect();
    format!("session/{hex}")
}
