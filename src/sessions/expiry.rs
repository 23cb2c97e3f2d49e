//! Expiry by the caller's clock, and what a record does after it was
//! restored from an older copy (SPEC.md §16.7).

use alloc::vec::Vec;

use super::address::DeviceId;
use super::record::PeerRecord;
use super::{MAX_ARCHIVED_SESSION_AGE, MAX_STALE_DEVICE_AGE, passed};
use crate::sealed;

/// What [`PeerRecord::expire`] deleted.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
#[non_exhaustive]
pub struct Expired {
    /// Stale devices deleted, with their sessions.
    pub devices: Vec<DeviceId>,
    /// Archived sessions deleted (of the devices that stay).
    pub sessions: usize,
}

impl PeerRecord {
    /// Deletes what is old at `now` (SPEC §16.7): devices stale for
    /// [`MAX_STALE_DEVICE_AGE`] (and what the record remembers of devices
    /// deleted earlier that left the list that long ago), and archived
    /// sessions on which nothing decrypted for [`MAX_ARCHIVED_SESSION_AGE`]
    /// (counted from their creation if nothing ever did). An age has passed
    /// when the stored time is that far from `now` in either direction
    /// (SPEC §16.1), so a time stored under a clock far ahead keeps nothing
    /// for ever. Active sessions are never expired. Adds 1 to the generation
    /// if anything was deleted or forgotten.
    pub fn expire(&mut self, now: u64) -> Expired {
        let mut expired = Expired::default();
        let old = |since: u64, age: u64| passed(since, now, age);
        self.devices.retain(|id, d| {
            let keep = d.stale_since.is_none_or(|t| !old(t, MAX_STALE_DEVICE_AGE));
            if !keep {
                expired.devices.push(*id);
            }
            keep
        });
        let remembered = self.deleted.len();
        self.deleted
            .retain(|_, d| !old(d.left, MAX_STALE_DEVICE_AGE));
        let forgotten = remembered - self.deleted.len();
        for d in self.devices.values_mut() {
            let before = d.archived.len();
            d.archived.retain(|e| {
                !old(
                    e.last_decrypt.unwrap_or(e.created),
                    MAX_ARCHIVED_SESSION_AGE,
                )
            });
            expired.sessions += before - d.archived.len();
        }
        if !expired.devices.is_empty() || expired.sessions > 0 || forgotten > 0 {
            sealed::advance(&mut self.generation);
        }
        expired
    }

    /// Makes a record restored from an older copy safe to use (SPEC §16.7),
    /// where `last_generation` is the highest generation the application
    /// recorded for it outside the backup (0 if none): if the record's
    /// generation is below it, every session is deleted, since a restored
    /// session would decrypt again messages it already decrypted and reuse
    /// message numbers the peer already consumed; devices, identities, pins
    /// and rate limits stay. Either way the generation becomes
    /// `max(generation, last_generation) + 1`. Returns how many sessions
    /// were deleted. New sessions are then made as for any device without
    /// one ([`PeerRecord::plan_send`]), and the peers' messages on the
    /// deleted sessions are answered by recovery (SPEC §16.6).
    pub fn after_restore(&mut self, last_generation: u64) -> usize {
        let mut deleted = 0;
        if self.generation < last_generation {
            for d in self.devices.values_mut() {
                deleted += d.session_count();
                d.active = None;
                d.archived.clear();
            }
        }
        self.generation = self.generation.max(last_generation);
        sealed::advance(&mut self.generation);
        deleted
    }
}
