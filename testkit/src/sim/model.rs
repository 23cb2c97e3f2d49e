//! The shapes the simulation's oracles track, with the reference model's
//! rules and no cryptography: a pairwise session's receiving side (SPEC.md
//! §8.6, §8.7) and a group store (§15.8, §15.9).
//!
//! The model's store rules are still those of version 1 (chains numbered,
//! a re-delivery that is not newer refused); for what the simulation does
//! (every chain authenticated by its only owner, honest ratchets) they
//! decide the same as §15.9, with "not newer" read as `Unchanged`.

use crate::model::group::window::{Step, Window};
use crate::model::group::{GStore, Held};
use crate::model::receiving::{Plan, Receiving};

use super::{GroupHonest, PairwiseHonest};

/// One side of a pairwise session, as far as receiving goes.
pub struct SessionShape {
    /// The receiving chains: ratchet keys, next indices, skipped indices.
    pub receiving: Receiving<()>,
    /// Our current sending ratchet key; `None` until the next encrypt.
    pub sending: Option<[u8; 32]>,
    /// The newest ratchet key received from the peer: our next chain uses it.
    pub remote: [u8; 32],
}

impl SessionShape {
    /// The initiator's side, before anything is received: its chains will
    /// use the responder's signed prekey.
    pub fn new(remote: [u8; 32]) -> Self {
        Self {
            receiving: Receiving::default(),
            sending: None,
            remote,
        }
    }

    /// The responder's side after accepting `h`, if it must accept it.
    pub fn accepted(h: &PairwiseHonest) -> Option<Self> {
        let mut shape = Self::new(h.ratchet_key);
        // The signed prekey acts as the responder's sending ratchet key.
        shape.sending = Some(h.dh_with);
        shape.receive(h).then_some(shape)
    }

    /// Skipped keys held.
    pub fn skipped(&self) -> usize {
        self.receiving.skipped_count()
    }

    /// Receiving chains remembered.
    pub fn chains(&self) -> usize {
        self.receiving.chains.len()
    }

    /// Must the session decrypt this honest message? Applies it if so.
    pub fn receive(&mut self, h: &PairwiseHonest) -> bool {
        // A new chain derived from a sending key we no longer hold fails
        // the tag, whatever the bounds say.
        if !self.receiving.knows(&h.ratchet_key) && self.sending != Some(h.dh_with) {
            return false;
        }
        let Ok(plan) = self.receiving.plan(
            &h.ratchet_key,
            h.previous_chain_length,
            h.message_number,
            self.sending.is_some(),
        ) else {
            return false;
        };
        let new_chain = matches!(plan, Plan::NewChain { .. });
        self.receiving
            .apply(&plan, &h.ratchet_key, new_chain.then_some(()));
        self.receiving.enforce_bounds();
        if new_chain {
            self.sending = None;
            self.remote = h.ratchet_key;
        }
        true
    }
}

/// A chain in a store, without its ratchet.
#[derive(Clone)]
pub struct ReceiverShape {
    /// The group id.
    pub group: [u8; 32],
    /// The model's number for the chain.
    pub chain_id: u32,
    /// The chain (its Ed25519 public key, SPEC §15.1): also what the
    /// model's store calls the signing key.
    pub chain: [u8; 32],
    /// The owner's identity key, padded to the model's 64-byte sender mark
    /// (`None` for an unauthenticated import, which the simulation never
    /// makes).
    pub sender: Option<[u8; 64]>,
    /// Next index and cached indices.
    pub window: Window<()>,
}

impl Held for ReceiverShape {
    fn group(&self) -> [u8; 32] {
        self.group
    }

    fn chain_id(&self) -> u32 {
        self.chain_id
    }

    fn signing(&self) -> [u8; 32] {
        self.chain
    }

    fn sender(&self) -> Option<[u8; 64]> {
        self.sender
    }

    fn next(&self) -> u32 {
        self.window.next
    }

    fn take_ratchet(&mut self, newer: Self) {
        self.window.next = newer.window.next;
    }
}

/// A store's shape.
pub type StoreShape = GStore<ReceiverShape>;

/// Must the store decrypt this honest group message? Applies it if so.
pub fn store_receive(store: &mut StoreShape, h: &GroupHonest) -> bool {
    let Some(r) = store.get_mut(h.chain_id) else {
        return false;
    };
    match r.window.plan(h.index) {
        Ok(Step::Cached) => {
            r.window.cache.remove(&h.index);
            true
        }
        Ok(Step::Ratchet { skip_from }) => {
            r.window
                .commit(h.index, (skip_from..h.index).map(|i| (i, ())));
            true
        }
        Err(_) => false,
    }
}
