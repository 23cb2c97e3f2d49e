//! # sotto-store
//!
//! A store for [sotto](https://docs.rs/sotto-protocol) on SQLite (bundled:
//! a fresh machine needs nothing installed), specified in SPEC.md §17.
//!
//! - **One transaction per protocol operation.** Each loads what it needs,
//!   runs the pure core, writes the new state and commits, and only then
//!   returns the ciphertext or plaintext: there is no way to get an
//!   operation's output before its commit.
//! - **Inbox and outbox.** A decrypted plaintext goes into the inbox and a
//!   ciphertext (or a prekey upload) into the outbox in the same
//!   transaction, so a crash after the commit loses nothing: the
//!   application shows the inbox and sends the outbox, and acknowledges
//!   each entry when done.
//! - **Several processes.** Every record has a version; a write is a
//!   compare-and-swap on it, so an operation that loaded a stale copy gets
//!   a [`Error::Conflict`] and retries, and no update is ever lost. WAL
//!   mode, `synchronous=FULL`, a busy timeout.
//! - **Sealed at rest.** Every state is sealed with sotto's own sealing
//!   (SPEC §10.5), bound to its record's name, under a key the application
//!   supplies; inbox plaintexts are sealed too. A wrong key, a truncated,
//!   altered or misplaced value, a corrupt page, a full disk and a locked
//!   database are typed errors, and nothing is half-written.
//!
//! ```
//! use sotto_store::{OutgoingKind, PreKeyUpload, Store, StoreKey};
//!
//! # fn main() -> Result<(), sotto_store::Error> {
//! # let dir = std::env::temp_dir().join(format!("sotto-store-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).map_err(|_| sotto_store::Error::InvalidInput)?;
//! let now = 1_700_000_000;
//! let mut alice = Store::open(dir.join("alice.db"), &StoreKey::from_bytes([1; 32]))?;
//! let mut bob = Store::open(dir.join("bob.db"), &StoreKey::from_bytes([2; 32]))?;
//! alice.create_device(now)?;
//! let first = bob.create_device(now)?;
//! bob.ack_sent(first.id)?; // "uploaded"
//!
//! // Bob's server hands Alice a bundle built from Bob's uploads.
//! let up = PreKeyUpload::from_bytes(&first.payload)?;
//! let bundle = sotto::PreKeyBundle::new(
//!     up.identity,
//!     up.signed_prekey.ok_or(sotto_store::Error::InvalidInput)?,
//!     None,
//!     up.last_resort_kem_prekey,
//! );
//! alice.start_session(b"bob", &bundle, Some(&up.identity))?;
//!
//! // Committed before it is returned; sent, then acknowledged.
//! let out = alice.encrypt(b"bob", b"hello Bob", None)?;
//! assert_eq!(out.kind, OutgoingKind::Message);
//! alice.ack_sent(out.id)?;
//!
//! let got = bob.receive(b"alice", &out.payload)?;
//! assert_eq!(&got.plaintext[..], b"hello Bob");
//! bob.ack_read(got.id)?;
//! # drop((alice, bob));
//! # let _ = std::fs::remove_dir_all(&dir);
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod device;
mod error;
mod group;
mod key;
mod mailbox;
mod peer;
mod points;
mod rng;
mod session;
mod store;
mod upload;

pub use device::DeviceStatus;
pub use error::{Error, Result};
pub use group::GroupUpdate;
pub use key::StoreKey;
pub use mailbox::{Incoming, Outgoing, OutgoingKind};
pub use peer::{Delivered, SentToUser};
pub use points::Point;
pub use session::{MAX_CONTACT_LEN, SessionStatus};
pub use store::{Options, SCHEMA_VERSION, Stats, Store};
pub use upload::PreKeyUpload;
