//! # sotto-store
//!
//! A store for [sotto](https://docs.rs/sotto-protocol) on SQLite (bundled:
//! a fresh machine needs nothing installed), specified in SPEC.md §17.
//!
//! - **The session layer on disk.** The local device, one peer record per
//!   user (every device of the user, its sessions and recovery state;
//!   `sotto::sessions`, SPEC §16), the own record for the user's other
//!   devices, and one group session per group.
//! - **One transaction per protocol operation.** Each loads what it needs,
//!   runs the pure core, writes the new state and commits, and only then
//!   returns the ciphertext or plaintext: there is no way to get an
//!   operation's output before its commit.
//! - **Inbox and outbox.** A decrypted plaintext goes into the inbox and a
//!   ciphertext (or a prekey upload) into the outbox in the same
//!   transaction, so a crash after the commit loses nothing: the
//!   application shows the inbox and sends the outbox, and acknowledges
//!   each entry when done. A peer's retry request waits in the inbox too.
//! - **Restores.** [`Store::high_water_mark`], recorded outside the
//!   database, tells a restored copy; [`Store::after_restore`] then resets
//!   the prekeys, the sessions and the group chains in one transaction.
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
//! use sotto::sessions::{DeviceId, UserId};
//! use sotto_store::{Delivered, PreKeyUpload, Store, StoreKey};
//!
//! # fn main() -> Result<(), sotto_store::Error> {
//! # let dir = std::env::temp_dir().join(format!("sotto-store-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).map_err(|_| sotto_store::Error::InvalidInput)?;
//! let now = 1_700_000_000;
//! let (a, b) = (UserId::new(b"alice")?, UserId::new(b"bob")?);
//! let mut alice = Store::open(dir.join("alice.db"), &StoreKey::from_bytes([1; 32]))?;
//! let mut bob = Store::open(dir.join("bob.db"), &StoreKey::from_bytes([2; 32]))?;
//! let alice_up = alice.create_device(now)?;
//! alice.set_account(&a, DeviceId(1))?;
//! let bob_up = bob.create_device(now)?;
//! bob.set_account(&b, DeviceId(1))?;
//! bob.ack_sent(bob_up.id)?; // "uploaded"
//!
//! // Alice's server hands her Bob's device list and a bundle built from
//! // his upload.
//! let up = PreKeyUpload::from_bytes(&bob_up.payload)?;
//! alice.update_devices(&b, &[(DeviceId(1), up.identity)], now)?;
//! let bundle = sotto::PreKeyBundle::new(
//!     up.identity,
//!     up.signed_prekey.ok_or(sotto_store::Error::InvalidInput)?,
//!     None,
//!     up.last_resort_kem_prekey,
//! );
//! alice.add_bundle(&b, DeviceId(1), bundle, now)?;
//!
//! // Committed to the outbox before it is returned; sent, then acknowledged.
//! let sent = alice.send_to_user(&b, b"hello Bob", None)?;
//! let out = &sent.outgoing[0];
//! alice.ack_sent(out.id)?;
//!
//! // Bob's server told him Alice's devices too.
//! let alice_identity = PreKeyUpload::from_bytes(&alice_up.payload)?.identity;
//! bob.update_devices(&a, &[(DeviceId(1), alice_identity)], now)?;
//! let Delivered::Message(got) = bob.receive_from(&a, DeviceId(1), &out.payload, now)? else {
//!     unreachable!("a payload");
//! };
//! assert_eq!(&got.plaintext[..], b"hello Bob"); // committed to the inbox
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
mod restore;
mod rng;
mod store;
mod upload;

pub use device::DeviceStatus;
pub use error::{Error, Result};
pub use group::{GroupStatus, GroupUpdate};
pub use key::StoreKey;
pub use mailbox::{Incoming, IncomingKind, Outgoing, OutgoingKind};
pub use peer::{Delivered, PeerStatus, SentToUser};
pub use points::Point;
pub use restore::{MAX_GENERATION_STEPS_PER_OPERATION, Restored};
pub use store::{MAX_ROW_LEN, Options, SCHEMA_VERSION, Stats, Store};
pub use upload::PreKeyUpload;
