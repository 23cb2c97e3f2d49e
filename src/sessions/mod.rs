//! Sessions with users and devices (SPEC.md §16): the layer every messenger
//! builds around [`Session`](crate::Session), made exact and testable.
//!
//! A [`PeerRecord`] holds everything about one user: each of the user's
//! devices with its trusted identity, one active session and a bounded list
//! of archived ones. The local user's own other devices are a record too
//! ([`PeerRecord::new_own`]). The layer:
//!
//! - takes the device lists the application's server returns and answers
//!   what changed; an identity change is never accepted silently
//!   ([`PeerRecord::update_devices`], [`PeerRecord::acknowledge_identity`]);
//! - plans which bundles to fetch and encrypts one message per device
//!   ([`PeerRecord::plan_send`], [`PeerRecord::add_bundle`],
//!   [`PeerRecord::encrypt`]);
//! - routes every incoming message to the session it belongs to, promotes
//!   the one that decrypts, and settles simultaneous initiation with a
//!   tie-break both sides compute ([`PeerRecord::decrypt`]);
//! - maps every failure to one [`Action`]: ignore, retry later, request a
//!   retry, or start a new session, with rate limits so that forged
//!   messages can neither make a device drop a working session nor drain
//!   the peer's prekeys;
//! - expires what is old by the caller's clock ([`PeerRecord::expire`]);
//! - saves a record as one blob (type 0x25) and a group as one blob (type
//!   0x26), both versioned, strict, generation-counted and sealable;
//! - fans group distributions out to every device of every member and
//!   removes a member in one call ([`GroupSession`]);
//! - computes per-user safety numbers over all of a user's devices
//!   ([`SafetyNumber`]).
//!
//! It is sans-IO like the core: the caller supplies the time (`now`, a
//! `u64`, for example seconds since the Unix epoch) and the randomness, and
//! sends and stores what the layer returns. Every call is all-or-nothing:
//! on an error nothing changed, and a call that changes a record adds 1 to
//! its generation.
//!
//! ```
//! use rand_chacha::ChaCha20Rng;
//! use rand_core::SeedableRng;
//! use sotto::sessions::{Content, DeviceId, PeerRecord, UserId};
//! use sotto::{Device, PreKeyBundle};
//!
//! # fn main() -> Result<(), sotto::Error> {
//! let mut rng = ChaCha20Rng::from_seed([3; 32]); // an OS RNG in an app
//! let now = 1_700_000_000;
//! let mut alice = Device::generate(&mut rng, now)?;
//! let mut bob = Device::generate(&mut rng, now)?;
//! let (alice_id, bob_id) = (UserId::new(b"alice")?, UserId::new(b"bob")?);
//!
//! // Each keeps a record of the other, fed with the device list its server returned.
//! let mut at_alice = PeerRecord::new(bob_id, *alice.identity_key());
//! at_alice.update_devices(&[(DeviceId(1), *bob.identity_key())], now)?;
//! let mut at_bob = PeerRecord::new(alice_id, *bob.identity_key());
//! at_bob.update_devices(&[(DeviceId(7), *alice.identity_key())], now)?;
//!
//! // Alice fetches the bundles the plan asks for, then encrypts once per device.
//! for device in at_alice.plan_send(now).needs_bundle {
//!     let bundle = PreKeyBundle::new(*bob.identity_key(), bob.signed_prekey(), None,
//!                                    Some(bob.last_resort_kem_prekey()));
//!     at_alice.add_bundle(&alice, device, bundle, now, &mut rng)?;
//! }
//! let sent = at_alice.encrypt(b"hello Bob", &mut rng)?;
//!
//! // Bob routes the message to its session (here: a new one).
//! let received = at_bob.decrypt(&mut bob, DeviceId(7), &sent.messages[0].message, now)
//!     .map_err(|failure| failure.error)?;
//! let Content::Payload(payload) = received.content() else { unreachable!() };
//! assert_eq!(&**payload, b"hello Bob");
//! # let _ = &mut alice;
//! # Ok(())
//! # }
//! ```

mod address;
mod devices;
mod expiry;
mod framing;
mod group;
mod receive;
mod record;
mod recovery;
mod safety;
mod saved;
mod send;

#[cfg(test)]
mod tests;

pub use address::{DeviceId, UserId};
pub use devices::{DeviceListChanges, IdentityChange, LocalListing};
pub use expiry::Expired;
pub use framing::{Content, Distribution, Payload, Received, RetryHint};
pub use group::{Fanout, GroupSession};
pub use record::{DeviceInfo, PeerRecord};
pub use recovery::{Action, Failure, Ignore, RetryLater};
pub use safety::{SafetyNumber, UserFingerprint};
pub use send::{Outgoing, SendPlan, Sent, Unusable};

/// Longest user id, in bytes (SPEC §16.1).
pub const MAX_USER_ID_LEN: usize = 64;
/// Most devices one record holds, listed or stale (SPEC §16.1). A device
/// list longer than this is refused.
pub const MAX_DEVICES_PER_USER: usize = 16;
/// Most archived sessions per device (SPEC §16.1); past it the oldest goes.
pub const MAX_ARCHIVED_SESSIONS: usize = 4;
/// A stale device is deleted this long after it left the device list:
/// 30 days, in the caller's time unit (seconds) (SPEC §16.7). A device
/// deleted earlier (to make room) keeps its identity and pin in the record
/// until this long after it left the list (SPEC §16.2).
pub const MAX_STALE_DEVICE_AGE: u64 = 30 * 24 * 3600;
/// Most devices deleted to make room whose identity and pin a record
/// remembers (SPEC §16.2): a whole device list replaced twice within
/// [`MAX_STALE_DEVICE_AGE`]. A device list that would need more is refused.
pub const MAX_DELETED_DEVICES: usize = 2 * MAX_DEVICES_PER_USER;
/// An archived session on which nothing decrypted for this long is deleted
/// (SPEC §16.7).
pub const MAX_ARCHIVED_SESSION_AGE: u64 = 30 * 24 * 3600;
/// An active session we started that got no reply for this long asks for a
/// new bundle (SPEC §16.3).
pub const MAX_UNANSWERED_SESSION_AGE: u64 = 30 * 24 * 3600;
/// At most one new session started for recovery per device in this time
/// (SPEC §16.6).
pub const MIN_RECOVERY_INTERVAL: u64 = 3600;
/// At most this many retry requests per device in each
/// [`MIN_RECOVERY_INTERVAL`] (SPEC §16.6).
pub const MAX_RETRY_REQUESTS_PER_INTERVAL: u8 = 8;
/// Most members of a [`GroupSession`], the local user included
/// (SPEC §16.8).
pub const MAX_GROUP_MEMBERS: usize = 1000;
/// Chains a [`GroupSession`] remembers having dropped from its store, so as
/// never to install them again (SPEC §16.8); past it the oldest is
/// forgotten.
pub const MAX_DROPPED_CHAINS: usize = 1024;
/// Largest payload: one byte of every plaintext is the layer's framing
/// (SPEC §16.10).
pub const MAX_PAYLOAD_LEN: usize = crate::MAX_PLAINTEXT_LEN - 1;

/// Whether `bound` has passed between the stored time `since` and `now`
/// (SPEC §16.1): `|now - since| >= bound`. A clock that went back by less
/// than `bound` counts as no time elapsed; a stored time `bound` or more in
/// the future (written under a wrong clock) counts as passed, so that one
/// bad `now` can hold no limit and keep no entry for ever.
pub(crate) fn passed(since: u64, now: u64, bound: u64) -> bool {
    now.abs_diff(since) >= bound
}
