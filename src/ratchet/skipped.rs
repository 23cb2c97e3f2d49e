//! Receiving chains and the bounded store of skipped message keys.
//!
//! Chains are kept oldest first; only the newest (current) one keeps its
//! chain key. Keys are inserted in chain order and, within a chain, in index
//! order, so "oldest key" is always the lowest index of the oldest chain
//! that still has keys.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use super::chain::{ChainKey, MessageKey};

/// Most message keys one decrypt may derive and store for messages it skips
/// (the rest of the closing chain plus the gap in the new one). A message
/// that needs more is rejected with [`Error::TooFarAhead`](crate::Error::TooFarAhead).
pub const MAX_SKIP: u32 = 1000;
/// Most skipped keys kept for one receiving chain; past it the chain's
/// lowest-index keys are deleted first.
pub const MAX_SKIPPED_KEYS_PER_CHAIN: usize = 1000;
/// Most skipped keys kept in total; past it the oldest keys are deleted first.
pub const MAX_SKIPPED_KEYS: usize = 2000;
/// Most receiving chains remembered (the current one and older ones whose
/// skipped keys may still be used). Past it the oldest chain and its keys are
/// deleted.
pub const MAX_RECEIVING_CHAINS: usize = 5;

/// A stored message key. Boxed so that the map's nodes, and the vectors
/// keys pass through, only ever hold and move pointers: the key bytes stay
/// in one heap block that is wiped when the key is deleted.
pub(crate) type StoredKey = Box<MessageKey>;

/// One of the peer's sending chains, as seen by the receiver.
pub(crate) struct ReceivingChain {
    pub(crate) ratchet_key: [u8; 32],
    /// Present only while this is the current chain.
    pub(crate) chain_key: Option<ChainKey>,
    /// The next index the chain key would produce (for closed chains: the
    /// chain's end).
    pub(crate) next: u32,
    pub(crate) skipped: BTreeMap<u32, StoredKey>,
}

/// The receiving chains, oldest first.
pub(crate) struct ReceivingChains {
    pub(crate) chains: VecDeque<ReceivingChain>,
}

impl Default for ReceivingChains {
    fn default() -> Self {
        Self {
            chains: Self::buffer(),
        }
    }
}

impl ReceivingChains {
    /// Room for one chain more than the bound, so the buffer never grows:
    /// growing would copy the current chain key and free the old block
    /// unwiped.
    pub(crate) fn buffer() -> VecDeque<ReceivingChain> {
        VecDeque::with_capacity(MAX_RECEIVING_CHAINS + 1)
    }

    pub(crate) fn position(&self, ratchet_key: &[u8; 32]) -> Option<usize> {
        self.chains
            .iter()
            .position(|c| &c.ratchet_key == ratchet_key)
    }

    pub(crate) fn get(&self, index: usize) -> Option<&ReceivingChain> {
        self.chains.get(index)
    }

    pub(crate) fn current(&self) -> Option<&ReceivingChain> {
        self.chains.back()
    }

    pub(crate) fn total_skipped(&self) -> usize {
        self.chains.iter().map(|c| c.skipped.len()).sum()
    }

    /// Deletes a skipped key after it decrypted its message.
    pub(crate) fn remove_skipped(&mut self, chain: usize, index: u32) {
        if let Some(c) = self.chains.get_mut(chain) {
            c.skipped.remove(&index);
        }
    }

    /// Moves the current chain forward after a message decrypted on it.
    pub(crate) fn advance(
        &mut self,
        chain: usize,
        chain_key: ChainKey,
        next: u32,
        skipped: Vec<(u32, StoredKey)>,
    ) {
        if let Some(c) = self.chains.get_mut(chain) {
            c.chain_key = Some(chain_key);
            c.next = next;
            c.skipped.extend(skipped);
        }
        self.enforce_bounds();
    }

    /// Closes the current chain (keeping the keys skipped up to its end) and
    /// makes `new` the current chain.
    pub(crate) fn start_chain(
        &mut self,
        closing_end: u32,
        closing: Vec<(u32, StoredKey)>,
        new: ReceivingChain,
    ) {
        if let Some(c) = self.chains.back_mut() {
            c.chain_key = None;
            c.next = c.next.max(closing_end);
            c.skipped.extend(closing);
        }
        self.chains.push_back(new);
        self.enforce_bounds();
    }

    fn enforce_bounds(&mut self) {
        while self.chains.len() > MAX_RECEIVING_CHAINS {
            self.chains.pop_front();
        }
        for c in &mut self.chains {
            while c.skipped.len() > MAX_SKIPPED_KEYS_PER_CHAIN {
                c.skipped.pop_first();
            }
        }
        let mut excess = self.total_skipped().saturating_sub(MAX_SKIPPED_KEYS);
        for c in &mut self.chains {
            while excess > 0 && c.skipped.pop_first().is_some() {
                excess -= 1;
            }
        }
    }
}

/// Walks a chain from index `from` to `to`: the keys for `from..to` (to be
/// stored as skipped), the key for `to`, and the chain key for `to + 1`.
/// The caller has bounded `to - from` by [`MAX_SKIP`].
pub(crate) fn derive_until(
    chain_key: &ChainKey,
    from: u32,
    to: u32,
) -> (Vec<(u32, StoredKey)>, MessageKey, ChainKey) {
    let (skipped, at_to) = walk(chain_key, from, to);
    let (message_key, next) = at_to.as_ref().unwrap_or(chain_key).step();
    (skipped, message_key, next)
}

/// The keys for `from..to` of a chain that is being closed.
pub(crate) fn derive_skipped(chain_key: &ChainKey, from: u32, to: u32) -> Vec<(u32, StoredKey)> {
    walk(chain_key, from, to).0
}

/// The message keys for `from..to` and the chain key at `to` (`None` when
/// the range is empty: the chain key is still `chain_key`).
fn walk(chain_key: &ChainKey, from: u32, to: u32) -> (Vec<(u32, StoredKey)>, Option<ChainKey>) {
    let mut keys = Vec::with_capacity(to.saturating_sub(from) as usize);
    let mut current: Option<ChainKey> = None;
    for index in from..to {
        let (message_key, next) = current.as_ref().unwrap_or(chain_key).step();
        keys.push((index, Box::new(message_key)));
        current = Some(next);
    }
    (keys, current)
}
