//! The end of a run: the faults stop, everything in flight is delivered,
//! and rounds of quiet traffic follow (an hour apart, so no rate limit
//! holds a recovery back) until every pair of current devices of users who
//! talk exchanges a message both ways and every member device reads every
//! other member device's group message, each at its first delivery. A pair
//! that still cannot after the last round is wedged.

use sotto::sessions::MIN_RECOVERY_INTERVAL;

use super::world::World;
use super::{Inc, Slot};

/// Passes over the network before reactions must have stopped.
const MAX_PASSES: usize = 64;

/// What the end of a run found.
#[derive(Clone, Debug, Default)]
pub struct Settled {
    /// Pairs of current devices whose users talk, each checked both ways.
    pub pairs: usize,
    /// Ordered pairs of current member devices, each checked with one group
    /// message.
    pub group_pairs: usize,
    /// Rounds of quiet traffic it took (at most the bound given).
    pub rounds: usize,
    /// Pairs that could not exchange a message both ways after the last
    /// round (device slots).
    pub wedged: Vec<(usize, usize)>,
    /// (sender, receiver) member devices where a group message did not
    /// decrypt after the last round.
    pub group_wedged: Vec<(usize, usize)>,
    /// Per round: pairs and group pairs still wedged after it.
    pub history: Vec<(usize, usize)>,
    /// Messages sent while settling.
    pub messages: u64,
}

impl World {
    /// Stops the faults, delivers everything and runs at most `max_rounds`
    /// rounds of quiet traffic, stopping at the first round after which
    /// nothing is wedged.
    ///
    /// In a round, for each pair (in a random order of its two devices),
    /// the first device writes to the second with nothing coming back but
    /// the layer's reactions (retry requests, new sessions, resends): that
    /// message must be read (itself or its resend), and the next must
    /// decrypt at its first delivery. Then the other way. Then each member device writes to the group twice,
    /// and its second message must decrypt at every other member device at
    /// its first delivery (a missing chain is kept, asked for, installed).
    pub fn settle(&mut self, max_rounds: usize) -> Settled {
        self.faults = false;
        for slot in &mut self.slots {
            slot.offline_until = 0;
        }
        let before = self.stats.messages;
        self.drain();
        let mut settled = Settled::default();
        for round in 1..=max_rounds {
            self.now += MIN_RECOVERY_INTERVAL;
            for slot in self.alive() {
                self.with_app(slot, |w, app| w.housekeeping(slot, app, true));
                self.drain();
            }
            let pairs = self.pairs();
            settled.rounds = round;
            settled.pairs = pairs.len();
            settled.wedged.clear();
            for (a, b) in pairs {
                let (x, y) = if self.chance(50) { (a, b) } else { (b, a) };
                if !(self.one_way(x, y) && self.one_way(y, x)) {
                    settled.wedged.push((x, y));
                }
            }
            let members = self.member_slots();
            settled.group_pairs = members.len() * (members.len() - 1);
            settled.group_wedged = self.group_probe(&members);
            settled
                .history
                .push((settled.wedged.len(), settled.group_wedged.len()));
            if settled.wedged.is_empty() && settled.group_wedged.is_empty() {
                break;
            }
        }
        settled.messages = self.stats.messages - before;
        settled
    }

    /// `a` writes to `b` once (with every reaction delivered), then again:
    /// whether the first was read (itself, or resent when a retry request
    /// named it) and the second decrypts at its first delivery.
    fn one_way(&mut self, a: Slot, b: Slot) -> bool {
        let first = self.send_to(a, b);
        self.drain();
        let at = self.current(b);
        let read = first.is_some_and(|(_, id)| self.ledger.was_read(id, at));
        self.probe(a, b) && read
    }

    /// Delivers everything in flight, and what that causes, in order.
    fn drain(&mut self) {
        for _ in 0..MAX_PASSES {
            let batch = self.net.take_all();
            if batch.is_empty() {
                return;
            }
            for envelope in batch {
                self.deliver(envelope);
            }
        }
        panic!("reactions did not stop: {} in flight", self.net.len());
    }

    /// Pairs of current devices whose users talk.
    fn pairs(&self) -> Vec<(Slot, Slot)> {
        let alive = self.alive();
        let mut pairs = Vec::new();
        for (i, &a) in alive.iter().enumerate() {
            for &b in &alive[i + 1..] {
                if self.talks(self.slots[a].user, self.slots[b].user) {
                    pairs.push((a, b));
                }
            }
        }
        pairs
    }

    fn member_slots(&self) -> Vec<Slot> {
        self.alive()
            .into_iter()
            .filter(|s| self.members.contains(&self.slots[*s].user))
            .collect()
    }

    /// Whether a message from `a` decrypts at `b` at its first delivery.
    fn probe(&mut self, a: Slot, b: Slot) -> bool {
        let Some((wire, _)) = self.send_to(a, b) else {
            self.drain();
            return false;
        };
        let mut batch = self.net.take_all();
        assert_eq!(batch.len(), 1, "a probe is one message");
        self.deliver(batch.remove(0));
        self.drain();
        self.ledger.is_decrypted(wire)
    }

    /// Every member device writes to the group once (every reaction
    /// delivered), then again: returns the (sender, receiver) pairs where
    /// the second did not decrypt at its first delivery.
    fn group_probe(&mut self, members: &[Slot]) -> Vec<(Slot, Slot)> {
        let mut wedged = Vec::new();
        for &s in members {
            self.with_app(s, |w, app| w.group_send_from(s, app));
            self.drain();
            let wire = self
                .with_app(s, |w, app| w.group_send_from(s, app))
                .flatten();
            for envelope in self.net.take_all() {
                self.deliver(envelope);
            }
            for &r in members {
                let at: Inc = self.current(r);
                if r != s && !wire.is_some_and(|w| self.ledger.is_group_decrypted(at, w)) {
                    wedged.push((s, r));
                }
            }
            self.drain();
        }
        wedged
    }
}
