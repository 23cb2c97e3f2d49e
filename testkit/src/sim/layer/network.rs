//! The network: messages in flight with a time they may arrive from, so
//! that most arrive within seconds, some after an hour and a few after
//! days; delivery mostly oldest first, with overtaking.

use rand_chacha::ChaCha20Rng;
use sotto::rand_core::Rng;

use super::Envelope;

/// Messages in flight, in the order they were sent, and the last honest
/// pairwise messages delivered, for the attacker to replay.
#[derive(Default, Clone)]
pub(super) struct Network {
    flight: Vec<Envelope>,
    archive: Vec<Envelope>,
}

/// How many delivered messages the attacker remembers.
const ARCHIVE_LEN: usize = 256;

/// A number in `0..n` (`n > 0`).
pub(super) fn below(rng: &mut ChaCha20Rng, n: u64) -> u64 {
    rng.next_u64() % n
}

impl Network {
    pub(super) fn push(&mut self, envelope: Envelope) {
        self.flight.push(envelope);
    }

    /// A delay: seconds mostly, an hour now and then, days rarely. Whether
    /// it is long (over a minute) is returned too.
    pub(super) fn delay(rng: &mut ChaCha20Rng) -> (u64, bool) {
        match below(rng, 100) {
            0..=87 => (below(rng, 20), false),
            88..=97 => (60 + below(rng, 3600), true),
            _ => (3600 + below(rng, 2 * 86_400), true),
        }
    }

    /// Remembers a delivered message (replacing a random one when full).
    pub(super) fn remember(&mut self, envelope: &Envelope, rng: &mut ChaCha20Rng) {
        if self.archive.len() < ARCHIVE_LEN {
            self.archive.push(envelope.clone());
        } else {
            let at = below(rng, ARCHIVE_LEN as u64) as usize;
            self.archive[at] = envelope.clone();
        }
    }

    /// A delivered message, to replay.
    pub(super) fn archived(&self, rng: &mut ChaCha20Rng) -> Option<Envelope> {
        if self.archive.is_empty() {
            return None;
        }
        Some(self.archive[below(rng, self.archive.len() as u64) as usize].clone())
    }

    /// Holds every message to `slot` until at least `until`.
    pub(super) fn hold(&mut self, slot: usize, until: u64) {
        for e in self.flight.iter_mut().filter(|e| e.to.slot == slot) {
            e.ready_at = e.ready_at.max(until);
        }
    }

    pub(super) fn len(&self) -> usize {
        self.flight.len()
    }

    /// How many may arrive at `now`.
    pub(super) fn ready(&self, now: u64) -> usize {
        self.flight.iter().filter(|e| e.ready_at <= now).count()
    }

    /// One that may arrive at `now`: mostly the oldest, else any.
    pub(super) fn take(&mut self, now: u64, rng: &mut ChaCha20Rng) -> Option<Envelope> {
        let first = self.flight.iter().position(|e| e.ready_at <= now)?;
        if below(rng, 10) < 7 {
            return Some(self.flight.remove(first));
        }
        let ready: Vec<usize> = (first..self.flight.len())
            .filter(|&i| self.flight[i].ready_at <= now)
            .collect();
        let pick = ready[below(rng, ready.len() as u64) as usize];
        Some(self.flight.remove(pick))
    }

    /// Everything, in the order sent (delivery resumed: nothing waits).
    pub(super) fn take_all(&mut self) -> Vec<Envelope> {
        std::mem::take(&mut self.flight)
    }
}
