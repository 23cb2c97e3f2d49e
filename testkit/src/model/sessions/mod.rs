//! SPEC.md §16: sessions with users and devices, written from the
//! specification alone (no sotto code): peer records and their saved form
//! (§16.1, §16.11), device lists (§16.2), sending (§16.3, §16.4),
//! receiving and placement (§16.5), failures and recovery (§16.6), expiry
//! and restores (§16.7), groups through the layer (§16.8), safety numbers
//! (§16.9) and framing (§16.10).
//!
//! Every operation works on a copy and commits at the end, so a failure
//! changes nothing. Errors are §12 names ([`Refusal`](super::Refusal)); a failed decrypt
//! is a [`Failure`]: the action of §16.6 and the error that decided it.

pub mod devices;
pub mod frame;
pub mod group;
pub mod receive;
pub mod record;
pub mod recovery;
pub mod safety;
pub mod send;

pub use frame::{Content, Hint};
pub use group::{Dropped, Group};
pub use record::{Entry, PeerDevice, Record, Remembered};
pub use recovery::{Action, Failure};

use super::primitives::MAX_PLAINTEXT;

/// §16.1 `MAX_USER_ID_LEN`.
pub const MAX_USER_ID_LEN: usize = 64;
/// §16.1 `MAX_DEVICES_PER_USER`.
pub const MAX_DEVICES_PER_USER: usize = 16;
/// §16.1 `MAX_ARCHIVED_SESSIONS`.
pub const MAX_ARCHIVED_SESSIONS: usize = 4;
/// §16.1 `MAX_STALE_DEVICE_AGE`.
pub const MAX_STALE_DEVICE_AGE: u64 = 2_592_000;
/// §16.1 `MAX_DELETED_DEVICES`.
pub const MAX_DELETED_DEVICES: usize = 2 * MAX_DEVICES_PER_USER;
/// §16.1 `MAX_ARCHIVED_SESSION_AGE`.
pub const MAX_ARCHIVED_SESSION_AGE: u64 = 2_592_000;
/// §16.1 `MAX_UNANSWERED_SESSION_AGE`.
pub const MAX_UNANSWERED_SESSION_AGE: u64 = 2_592_000;
/// §16.1 `MIN_RECOVERY_INTERVAL`.
pub const MIN_RECOVERY_INTERVAL: u64 = 3_600;
/// §16.1 `MAX_RETRY_REQUESTS_PER_INTERVAL`.
pub const MAX_RETRY_REQUESTS_PER_INTERVAL: u8 = 8;
/// §16.1 `MAX_GROUP_MEMBERS`.
pub const MAX_GROUP_MEMBERS: usize = 1_000;
/// §16.1 `MAX_DROPPED_CHAINS`.
pub const MAX_DROPPED_CHAINS: usize = 1_024;
/// §16.1 `MAX_PAYLOAD_LEN`.
pub const MAX_PAYLOAD_LEN: usize = MAX_PLAINTEXT - 1;
/// §16.3: bytes drawn per device of a fan-out.
pub const FANOUT_DRAW: usize = 48;

/// §16.1 "Elapsed time": the distance `|now - since|`, so that a stored
/// time far in the future counts as passed as well.
pub fn elapsed(now: u64, since: u64) -> u64 {
    now.abs_diff(since)
}

/// A user id of §16.1: 1 to `MAX_USER_ID_LEN` bytes.
///
/// # Errors
///
/// `InvalidEncoding` for another length.
pub fn check_user(user: &[u8]) -> Result<(), super::Refusal> {
    if user.is_empty() || user.len() > MAX_USER_ID_LEN {
        Err(super::refusal("InvalidEncoding"))
    } else {
        Ok(())
    }
}
