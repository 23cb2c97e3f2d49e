//! The version 1 store rules (chains numbered, a re-delivery that is not
//! newer refused) that the simulation's store shape (`testkit::sim::model`)
//! still builds on: not a model of SPEC.md v2, and nothing of the model or
//! the vectors uses them. Delete this module when the simulation moves to
//! the v2 store, [`super::Store`] (§15.9).

use crate::model::error::{Refusal, refusal};

/// What the v1 store's rules look at in a receiver.
pub trait Held: Sized {
    /// The group id.
    fn group(&self) -> [u8; 32];
    /// The chain id.
    fn chain_id(&self) -> u32;
    /// The chain's signing key.
    fn signing(&self) -> [u8; 32];
    /// The sender mark: an identity, or `None` for unauthenticated imports.
    fn sender(&self) -> Option<[u8; 64]>;
    /// The next index.
    fn next(&self) -> u32;
    /// Takes `newer`'s ratchet, keeping its own cache (and place).
    fn take_ratchet(&mut self, newer: Self);
}

/// How an insert succeeded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inserted {
    /// A new chain, after deleting these chain ids to make room.
    Added(Vec<u32>),
    /// A held chain moved forward.
    Advanced,
}

/// The store, oldest first.
#[derive(Clone, Debug)]
pub struct GStore<R> {
    /// The group id.
    pub group: [u8; 32],
    /// Receivers, oldest first.
    pub held: Vec<R>,
}

impl<R: Held> GStore<R> {
    /// An empty store.
    pub fn new(group: [u8; 32]) -> Self {
        Self {
            group,
            held: Vec::new(),
        }
    }

    /// §15.9 insertion, its rules in order.
    ///
    /// # Errors
    ///
    /// The model's refusal: the SPEC.md error of the first check the input
    /// fails, in the order SPEC.md fixes.
    pub fn insert(&mut self, r: R) -> Result<Inserted, Refusal> {
        if r.group() != self.group {
            return Err(refusal("GroupMismatch"));
        }
        let same = |h: &R| {
            h.chain_id() == r.chain_id() && h.signing() == r.signing() && h.sender() == r.sender()
        };
        if self
            .held
            .iter()
            .any(|h| (h.chain_id() == r.chain_id() || h.signing() == r.signing()) && !same(h))
        {
            return Err(refusal("GroupChainConflict"));
        }
        if let Some(h) = self.held.iter_mut().find(|h| same(h)) {
            if r.next() <= h.next() {
                return Err(refusal("GroupChainNotNewer"));
            }
            h.take_ratchet(r);
            return Ok(Inserted::Advanced);
        }
        let mut evicted = Vec::new();
        let own = self
            .held
            .iter()
            .filter(|h| h.sender() == r.sender())
            .count();
        if own >= 4
            && let Some(i) = self.held.iter().position(|h| h.sender() == r.sender())
        {
            evicted.push(self.held.remove(i).chain_id());
        }
        if self.held.len() >= 1024 {
            evicted.push(self.held.remove(0).chain_id());
        }
        self.held.push(r);
        Ok(Inserted::Added(evicted))
    }

    /// The receiver of a chain.
    pub fn get_mut(&mut self, chain_id: u32) -> Option<&mut R> {
        self.held.iter_mut().find(|r| r.chain_id() == chain_id)
    }

    /// Deletes every chain of a sender; returns how many.
    pub fn remove_sender(&mut self, sender: Option<[u8; 64]>) -> usize {
        let before = self.held.len();
        self.held.retain(|r| r.sender() != sender);
        before - self.held.len()
    }
}
