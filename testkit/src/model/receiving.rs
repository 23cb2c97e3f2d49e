//! The receiving side of a Double Ratchet session (SPEC.md §8.6 and §8.7):
//! which key a message header selects, what a decrypt stores, and what the
//! bounds delete afterwards. Generic over the chain and message keys, so the
//! same rules serve the cryptographic model (`[u8; 32]` keys) and the
//! simulation's model of a session's shape (`()` keys).

use std::collections::BTreeMap;
use std::ops::Range;

use serde_json::json;

use super::error::{Refusal, refusal, refusal_with};
use super::primitives::{MAX_CHAINS, MAX_SKIP, MAX_SKIPPED_PER_CHAIN, MAX_SKIPPED_TOTAL, kdf_ck};

/// A chain key: one §8.3 chain step gives the message key at the chain's
/// index and the chain key of the next index.
pub trait ChainKey: Clone + std::fmt::Debug + Eq {
    /// The message key type.
    type MessageKey: Clone + std::fmt::Debug + Eq;
    /// §8.3: (message key, next chain key).
    fn step(&self) -> (Self::MessageKey, Self);
}

impl ChainKey for [u8; 32] {
    type MessageKey = [u8; 32];
    fn step(&self) -> ([u8; 32], [u8; 32]) {
        kdf_ck(self)
    }
}

/// Keys without cryptography: only which indices exist.
impl ChainKey for () {
    type MessageKey = ();
    fn step(&self) -> ((), ()) {
        ((), ())
    }
}

/// One receiving chain (§8.1): the peer's ratchet key, the chain key while
/// the chain is current, the next index, and the skipped message keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain<C: ChainKey> {
    /// The peer's ratchet public key that names the chain.
    pub ratchet_key: [u8; 32],
    /// Only the current (newest) chain has one.
    pub chain_key: Option<C>,
    /// The next index the chain key gives; for a closed chain, its end.
    pub next: u32,
    /// Skipped message keys by index.
    pub skipped: BTreeMap<u32, C::MessageKey>,
}

/// What a ratchet header asks of the receiving side (§8.6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Step 1.1: chain `chain` holds the skipped key of the index.
    Skipped {
        /// Position of the chain, oldest first.
        chain: usize,
        /// The index.
        n: u32,
    },
    /// Step 1.2: the current chain derives keys `from..=to`.
    Advance {
        /// The chain's next index.
        from: u32,
        /// The message's index.
        to: u32,
    },
    /// Step 2: a new chain; the current one (if any) closes over `closing`.
    NewChain {
        /// Indices of the closing chain whose keys are stored.
        closing: Range<u32>,
        /// The message's index on the new chain.
        n: u32,
    },
}

/// A message key as a decrypt stored it: (chain's ratchet key, index, key).
pub type Stored<K> = ([u8; 32], u32, K);

/// What §8.7 deleted after a commit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Evicted {
    /// Ratchet keys of the chains deleted, oldest first.
    pub chains: Vec<[u8; 32]>,
    /// (rule, chain, indices deleted): `per_chain` or `total`.
    pub keys: Vec<(&'static str, [u8; 32], Vec<u32>)>,
}

impl Evicted {
    /// As bounds.json spells it.
    pub fn json(&self) -> serde_json::Value {
        let hex = crate::hex::hex;
        json!({
            "chains": self.chains.iter().map(|k| hex(k)).collect::<Vec<_>>(),
            "keys": self.keys.iter().map(|(rule, chain, gone)| json!({
                "rule": rule, "ratchet_public": hex(chain), "count": gone.len(),
                "lowest": gone.first(), "highest": gone.last(),
            })).collect::<Vec<_>>(),
        })
    }
}

/// The receiving chains of a session, oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receiving<C: ChainKey> {
    /// Oldest first; the last one is current.
    pub chains: Vec<Chain<C>>,
}

impl<C: ChainKey> Default for Receiving<C> {
    fn default() -> Self {
        Self { chains: Vec::new() }
    }
}

impl<C: ChainKey> Receiving<C> {
    /// Skipped keys held, in all chains.
    pub fn skipped_count(&self) -> usize {
        self.chains.iter().map(|c| c.skipped.len()).sum()
    }

    /// Whether a chain with this ratchet key is remembered.
    pub fn knows(&self, ratchet_key: &[u8; 32]) -> bool {
        self.chains.iter().any(|c| c.ratchet_key == *ratchet_key)
    }

    /// The current chain: the newest, while it has its chain key.
    fn current(&self) -> Option<&Chain<C>> {
        self.chains.last().filter(|c| c.chain_key.is_some())
    }

    /// §8.6 for a header `(K, PN, N)`, before any key is derived.
    /// `has_sending`: whether the session has a sending chain.
    ///
    /// # Errors
    ///
    /// The model's refusal: the SPEC.md error of the first check the input
    /// fails, in the order SPEC.md fixes.
    pub fn plan(&self, k: &[u8; 32], pn: u32, n: u32, has_sending: bool) -> Result<Plan, Refusal> {
        if let Some(chain) = self.chains.iter().position(|c| c.ratchet_key == *k) {
            let c = &self.chains[chain];
            // Step 1.1.
            if c.skipped.contains_key(&n) {
                return Ok(Plan::Skipped { chain, n });
            }
            let is_current = chain + 1 == self.chains.len() && c.chain_key.is_some();
            if n < c.next {
                // Step 1.4.
                return Err(refusal("DuplicateMessage"));
            }
            if !is_current {
                // Step 1.3: at or past the end of a closed chain.
                return Err(refusal("SessionDiverged"));
            }
            // Step 1.2.
            if n - c.next > MAX_SKIP {
                return Err(refusal_with(
                    "TooFarAhead",
                    json!({ "skipped": n - c.next }),
                ));
            }
            if n == u32::MAX {
                return Err(refusal("ChainExhausted"));
            }
            return Ok(Plan::Advance {
                from: c.next,
                to: n,
            });
        }
        // Step 2.1.
        if !has_sending {
            return Err(refusal("SessionDiverged"));
        }
        // Step 2.2: with no current chain nothing closes.
        let c = self.current().map_or(pn, |c| c.next);
        let closing = c..pn.max(c);
        let skipped = u64::from(pn.saturating_sub(c)) + u64::from(n);
        if skipped > u64::from(MAX_SKIP) {
            return Err(refusal_with("TooFarAhead", json!({ "skipped": skipped })));
        }
        Ok(Plan::NewChain { closing, n })
    }

    /// Carries out a plan: returns the message key and the keys stored, in
    /// the order they were derived. `new_chain_key` is the root step's
    /// chain key for [`Plan::NewChain`].
    pub fn apply(
        &mut self,
        plan: &Plan,
        k: &[u8; 32],
        new_chain_key: Option<C>,
    ) -> (C::MessageKey, Vec<Stored<C::MessageKey>>) {
        let mut stored = Vec::new();
        match plan {
            Plan::Skipped { chain, n } => {
                let key = self.chains[*chain]
                    .skipped
                    .remove(n)
                    .expect("planned skipped key");
                (key, stored)
            }
            Plan::Advance { from, to } => {
                let c = self.chains.last_mut().expect("a current chain");
                let ck = c.chain_key.take().expect("a chain key");
                let at_n = walk(ck, *from..*to, c, &mut stored);
                let (key_n, next) = at_n.step();
                c.chain_key = Some(next);
                c.next = to + 1;
                (key_n, stored)
            }
            Plan::NewChain { closing, n } => {
                if let Some(c) = self.chains.last_mut()
                    && let Some(ck) = c.chain_key.take()
                {
                    walk(ck, closing.clone(), c, &mut stored);
                    c.next = c.next.max(closing.end);
                }
                let mut chain = Chain {
                    ratchet_key: *k,
                    chain_key: None,
                    next: n + 1,
                    skipped: BTreeMap::new(),
                };
                let ck = new_chain_key.expect("a new chain key");
                let at_n = walk(ck, 0..*n, &mut chain, &mut stored);
                let (key_n, next) = at_n.step();
                chain.chain_key = Some(next);
                self.chains.push(chain);
                (key_n, stored)
            }
        }
    }

    /// §8.7 after a commit, in its order: receiving chains, then keys per
    /// chain, then keys in total (the oldest chain's lowest index first).
    pub fn enforce_bounds(&mut self) -> Evicted {
        let mut evicted = Evicted::default();
        let excess = self.chains.len().saturating_sub(MAX_CHAINS);
        evicted.chains = self.chains.drain(..excess).map(|c| c.ratchet_key).collect();
        for c in &mut self.chains {
            let over = c.skipped.len().saturating_sub(MAX_SKIPPED_PER_CHAIN);
            let gone = lowest(c, over);
            if !gone.is_empty() {
                evicted.keys.push(("per_chain", c.ratchet_key, gone));
            }
        }
        let mut over = self.skipped_count().saturating_sub(MAX_SKIPPED_TOTAL);
        for c in &mut self.chains {
            let gone = lowest(c, over.min(c.skipped.len()));
            over -= gone.len();
            if !gone.is_empty() {
                evicted.keys.push(("total", c.ratchet_key, gone));
            }
        }
        evicted
    }
}

/// Deletes the `count` lowest-index skipped keys of a chain.
fn lowest<C: ChainKey>(c: &mut Chain<C>, count: usize) -> Vec<u32> {
    let gone: Vec<u32> = c.skipped.keys().take(count).copied().collect();
    for i in &gone {
        c.skipped.remove(i);
    }
    gone
}

/// Derives the message keys of `range` from the chain key at its start
/// into `chain`'s skipped keys (and `stored`); returns the chain key at the
/// range's end.
fn walk<C: ChainKey>(
    mut ck: C,
    range: Range<u32>,
    chain: &mut Chain<C>,
    stored: &mut Vec<Stored<C::MessageKey>>,
) -> C {
    for i in range {
        let (key, next) = ck.step();
        chain.skipped.insert(i, key.clone());
        stored.push((chain.ratchet_key, i, key));
        ck = next;
    }
    ck
}
