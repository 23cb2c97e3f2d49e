//! The shapes the simulation's oracles track: a pairwise session's
//! receiving side with the reference model's rules and no cryptography
//! (SPEC.md §8.6, §8.7), and a group store, which is the reference model's
//! v2 store itself (§15.7 to §15.9, §15.11).

use crate::model::group::Store;
use crate::model::receiving::{Plan, Receiving};

use super::PairwiseHonest;

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

/// A store's shape: the reference model's own store (SPEC.md §15.9), with
/// its receivers' ratchets and cached keys. Unlike a session's shape it
/// does the cryptography (the signature, the ratchet, the AEAD), so it
/// decides every delivery and install exactly as §15.7 to §15.9 say, and
/// sotto's saved store must equal its encoding (§15.11) byte for byte.
pub type StoreShape = Store;
