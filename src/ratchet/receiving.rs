//! The receiving side of the Double Ratchet: the peer's chains as we see
//! them, the bounded store of skipped message keys, and decryption planned
//! in full before anything changes (SPEC.md §8.6, bounds §8.7; saved as
//! part of the session, §10.2).
//!
//! Chains are kept oldest first; only the newest (current) one keeps its
//! chain key. Keys are inserted in chain order and, within a chain, in index
//! order, so "oldest key" is always the lowest index of the oldest chain
//! that still has keys.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;

use x25519_dalek::StaticSecret;

use super::chain::{ChainKey, MessageKey};
use super::root::RootKey;
use crate::codec::{self, Codec, Count, Reader, Sink};
use crate::crypto;
use crate::error::{Error, Result};
use crate::keys::RatchetPublicKey;
use crate::wire::RatchetHeader;

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

/// The saved chains (SPEC §10.2).
const CHAINS: Count = Count::u8(MAX_RECEIVING_CHAINS);
/// The saved skipped keys of one chain; the running total is bounded too.
const SKIPPED_KEYS: Count = Count::u16(MAX_SKIPPED_KEYS_PER_CHAIN);

/// A message key in its own allocation, so that containers move a pointer
/// and never leave a copy of the key in memory they free.
type BoxedMessageKey = Box<MessageKey>;

/// One of the peer's sending chains, as seen by the receiver. Keys are boxed
/// for the reason given at [`BoxedMessageKey`].
pub(crate) struct ReceivingChain {
    ratchet_key: RatchetPublicKey,
    /// Present only while this is the current chain.
    chain_key: Option<Box<ChainKey>>,
    /// The next index the chain key would produce (for closed chains: the
    /// chain's end).
    next: u32,
    skipped: SkippedKeys,
}

/// A chain's skipped message keys, in increasing index order. A sorted
/// vector rather than a map: its buffer holds only indices and pointers to
/// boxed keys, and it has no uninitialised bytes that a move could fill with
/// a stack leftover (an empty `BTreeMap` has one), so nothing secret reaches
/// memory that is freed without being wiped.
#[derive(Default)]
struct SkippedKeys(Vec<(u32, BoxedMessageKey)>);

impl SkippedKeys {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn position(&self, index: u32) -> core::result::Result<usize, usize> {
        self.0.binary_search_by_key(&index, |(i, _)| *i)
    }

    fn contains_key(&self, index: &u32) -> bool {
        self.position(*index).is_ok()
    }

    fn get(&self, index: &u32) -> Option<&BoxedMessageKey> {
        let at = self.position(*index).ok()?;
        self.0.get(at).map(|(_, key)| key)
    }

    fn remove(&mut self, index: &u32) {
        if let Ok(at) = self.position(*index) {
            self.0.remove(at);
        }
    }

    /// Adds keys; callers add indices above every held one, in order, so
    /// this appends (an out-of-order key is placed by search all the same).
    fn extend(&mut self, keys: impl IntoIterator<Item = (u32, BoxedMessageKey)>) {
        for (index, key) in keys {
            match self.0.last() {
                Some((last, _)) if *last >= index => match self.position(index) {
                    Ok(at) => {
                        if let Some(slot) = self.0.get_mut(at) {
                            slot.1 = key;
                        }
                    }
                    Err(at) => self.0.insert(at, (index, key)),
                },
                _ => self.0.push((index, key)),
            }
        }
    }

    /// Deletes the `n` lowest-index keys (all if fewer).
    fn drop_lowest(&mut self, n: usize) {
        self.0.drain(..n.min(self.0.len()));
    }

    fn iter(&self) -> impl Iterator<Item = (&u32, &BoxedMessageKey)> {
        self.0.iter().map(|(i, k)| (i, k))
    }
}

impl ReceivingChain {
    /// Ratchet key, chain key if current, next index, skipped keys.
    fn encode<S: Sink>(&self, out: &mut S) {
        self.ratchet_key.encode(out);
        self.chain_key.encode(out);
        self.next.encode(out);
        SKIPPED_KEYS.write(out, self.skipped.len());
        for (index, key) in self.skipped.iter() {
            index.encode(out);
            key.encode(out);
        }
    }

    /// Reads a saved chain: `is_current` says whether it must have its chain
    /// key, and at most `budget` skipped keys remain under
    /// [`MAX_SKIPPED_KEYS`].
    fn decode(r: &mut Reader<'_>, is_current: bool, budget: usize) -> Result<Self> {
        // Not validated (SPEC §4): a saved ratchet key is compared, never
        // used in an exchange.
        let ratchet_key = RatchetPublicKey::from_unvalidated_bytes(r.array()?);
        // Checked as soon as the flag is read (SPEC §4).
        let has_chain_key = r.flag()?;
        if has_chain_key != is_current {
            return Err(Error::InvalidEncoding);
        }
        let chain_key = if has_chain_key {
            Some(Box::<ChainKey>::decode(r)?)
        } else {
            None
        };
        let next = u32::decode(r)?;
        let mut keys = Vec::new();
        codec::read_sorted(r, SKIPPED_KEYS.at_most(budget), next, |r, index| {
            keys.push((index, BoxedMessageKey::decode(r)?));
            Ok(())
        })?;
        let skipped = SkippedKeys(keys);
        Ok(Self {
            ratchet_key,
            chain_key,
            next,
            skipped,
        })
    }
}

/// The receiving chains, oldest first.
#[derive(Default)]
pub(crate) struct ReceivingChains {
    chains: VecDeque<ReceivingChain>,
}

/// A receiving chain that a new peer ratchet key opens, with the key of the
/// message that opened it and the root key after the step.
pub(crate) struct OpenedChain {
    pub(crate) root_key: RootKey,
    pub(crate) chain: ReceivingChain,
    pub(crate) message_key: MessageKey,
}

/// Opens the chain a message on a new ratchet key starts (SPEC §8.6 steps
/// 2.2 and 2.3; the responder's first step, §7.2, with nothing closing):
/// bounds the work, takes the root step over `our_secret`'s exchange with
/// the message's key, and walks the new chain to the message's index.
/// `closing` is how many keys the closing chain will add.
pub(crate) fn open_chain(
    root_key: &RootKey,
    our_secret: &StaticSecret,
    header: &RatchetHeader,
    closing: u32,
) -> Result<OpenedChain> {
    let index = header.message_number;
    let total = u64::from(closing) + u64::from(index);
    if total > u64::from(MAX_SKIP) {
        return Err(Error::TooFarAhead { skipped: total });
    }
    let next = index.checked_add(1).ok_or(Error::ChainExhausted)?;
    let dh = crypto::x25519(our_secret, header.ratchet_key.key())?;
    let (root_key, chain_key) = root_key.step(&dh);
    let (skipped, message_key, next_chain_key) = derive_until(&chain_key, 0, index);
    Ok(OpenedChain {
        root_key,
        chain: ReceivingChain {
            ratchet_key: header.ratchet_key,
            chain_key: Some(Box::new(next_chain_key)),
            next,
            skipped: SkippedKeys(skipped),
        },
        message_key,
    })
}

/// A decrypt worked out before anything changes: which key decrypts the
/// message, and what to commit if it does.
pub(crate) enum Plan {
    /// Use and delete a stored skipped key.
    Skipped { chain: usize, index: u32 },
    /// Move a receiving chain forward.
    Advance {
        chain: usize,
        message_key: MessageKey,
        chain_key: ChainKey,
        next: u32,
        skipped: Vec<(u32, BoxedMessageKey)>,
    },
    /// A Diffie-Hellman ratchet step: close the current chain, open a new one.
    Ratchet {
        opened: OpenedChain,
        closing_end: u32,
        closing: Vec<(u32, BoxedMessageKey)>,
    },
}

impl ReceivingChains {
    /// The chains after the responder's first receive step.
    pub(crate) fn first(chain: ReceivingChain) -> Self {
        let mut chains = Self::default();
        chains.start_chain(0, Vec::new(), chain);
        chains
    }

    /// The current chain's ratchet key, if there is a chain.
    pub(crate) fn current_ratchet_key(&self) -> Option<&RatchetPublicKey> {
        self.chains.back().map(|c| &c.ratchet_key)
    }

    /// Whether two chains have the same ratchet key (a saved state that
    /// breaks SPEC §10.2).
    pub(crate) fn has_repeated_ratchet_key(&self) -> bool {
        self.chains.iter().enumerate().any(|(i, a)| {
            self.chains
                .iter()
                .skip(i + 1)
                .any(|b| a.ratchet_key == b.ratchet_key)
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.chains.len()
    }

    /// Whether a remembered chain has the ratchet key `key`.
    pub(crate) fn has_chain(&self, key: &[u8; 32]) -> bool {
        self.chains.iter().any(|c| c.ratchet_key.to_bytes() == *key)
    }

    pub(crate) fn total_skipped(&self) -> usize {
        self.chains.iter().map(|c| c.skipped.len()).sum()
    }

    /// Works out which key decrypts the message with `header` and what to
    /// change if it does (SPEC §8.6), without changing anything. A new
    /// ratchet key needs our current ratchet secret, `our_secret`.
    pub(crate) fn plan(
        &self,
        header: &RatchetHeader,
        root_key: &RootKey,
        our_secret: Option<&StaticSecret>,
    ) -> Result<Plan> {
        let index = header.message_number;
        if let Some(position) = self
            .chains
            .iter()
            .position(|c| c.ratchet_key == header.ratchet_key)
        {
            let chain = self.chains.get(position).ok_or(Error::DuplicateMessage)?;
            if chain.skipped.contains_key(&index) {
                return Ok(Plan::Skipped {
                    chain: position,
                    index,
                });
            }
            let chain_key = match &chain.chain_key {
                _ if index < chain.next => return Err(Error::DuplicateMessage),
                Some(chain_key) => chain_key,
                // At or past the end of a chain the peer closed: an honest
                // peer never sends there, a rolled-back one does (§8.6 1.3).
                None => return Err(Error::SessionDiverged),
            };
            let gap = index - chain.next;
            if gap > MAX_SKIP {
                return Err(Error::TooFarAhead {
                    skipped: u64::from(gap),
                });
            }
            let next = index.checked_add(1).ok_or(Error::ChainExhausted)?;
            let (skipped, message_key, chain_key) = derive_until(chain_key, chain.next, index);
            return Ok(Plan::Advance {
                chain: position,
                message_key,
                chain_key,
                next,
                skipped,
            });
        }

        // A new ratchet key: an honest peer starts one only after a message
        // on a new key of ours, which needs a sending chain (§8.6 2.1).
        let our_secret = our_secret.ok_or(Error::SessionDiverged)?;
        let closing_end = header.previous_chain_length;
        let (closing_from, closing_key) = match self.chains.back() {
            Some(ReceivingChain {
                chain_key: Some(chain_key),
                next,
                ..
            }) => (*next, Some(chain_key)),
            _ => (closing_end, None),
        };
        let opened = open_chain(
            root_key,
            our_secret,
            header,
            closing_end.saturating_sub(closing_from),
        )?;
        let closing = closing_key
            .map(|ck| walk(ck, closing_from, closing_end).0)
            .unwrap_or_default();
        Ok(Plan::Ratchet {
            opened,
            closing_end,
            closing,
        })
    }

    /// The key that decrypts the planned message.
    pub(crate) fn message_key<'a>(&'a self, plan: &'a Plan) -> Result<&'a MessageKey> {
        match plan {
            Plan::Skipped { chain, index } => self
                .chains
                .get(*chain)
                .and_then(|c| c.skipped.get(index))
                .map(|key| &**key)
                .ok_or(Error::DuplicateMessage),
            Plan::Advance { message_key, .. } => Ok(message_key),
            Plan::Ratchet { opened, .. } => Ok(&opened.message_key),
        }
    }

    /// Commits a plan whose message decrypted, then enforces the bounds
    /// (SPEC §8.7). Returns the new root key if the plan was a ratchet step.
    pub(crate) fn commit(&mut self, plan: Plan) -> Option<RootKey> {
        match plan {
            Plan::Skipped { chain, index } => {
                if let Some(c) = self.chains.get_mut(chain) {
                    c.skipped.remove(&index);
                }
                None
            }
            Plan::Advance {
                chain,
                chain_key,
                next,
                skipped,
                ..
            } => {
                if let Some(c) = self.chains.get_mut(chain) {
                    match &mut c.chain_key {
                        Some(current) => **current = chain_key,
                        None => c.chain_key = Some(Box::new(chain_key)),
                    }
                    c.next = next;
                    c.skipped.extend(skipped);
                }
                self.enforce_bounds();
                None
            }
            Plan::Ratchet {
                opened,
                closing_end,
                closing,
            } => {
                self.start_chain(closing_end, closing, opened.chain);
                Some(opened.root_key)
            }
        }
    }

    /// Closes the current chain (keeping the keys skipped up to its end) and
    /// makes `new` the current chain.
    fn start_chain(
        &mut self,
        closing_end: u32,
        closing: Vec<(u32, BoxedMessageKey)>,
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
            let over = c.skipped.len().saturating_sub(MAX_SKIPPED_KEYS_PER_CHAIN);
            c.skipped.drop_lowest(over);
        }
        let mut excess = self.total_skipped().saturating_sub(MAX_SKIPPED_KEYS);
        for c in &mut self.chains {
            let n = excess.min(c.skipped.len());
            c.skipped.drop_lowest(n);
            excess -= n;
        }
    }
}

/// A count of chains, oldest first; exactly the last has a chain key, and
/// the skipped keys stay within [`MAX_SKIPPED_KEYS`] in total (SPEC §10.2).
impl Codec for ReceivingChains {
    fn encode<S: Sink>(&self, out: &mut S) {
        CHAINS.write(out, self.chains.len());
        for chain in &self.chains {
            chain.encode(out);
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let count = CHAINS.read(r)?;
        let mut chains = VecDeque::with_capacity(count);
        let mut total = 0usize;
        for i in 0..count {
            let budget = MAX_SKIPPED_KEYS.saturating_sub(total);
            let chain = ReceivingChain::decode(r, i + 1 == count, budget)?;
            total += chain.skipped.len();
            chains.push_back(chain);
        }
        Ok(Self { chains })
    }
}

/// Walks a chain from index `from` to `to`: the keys for `from..to` (to be
/// stored as skipped), the key for `to`, and the chain key for `to + 1`.
/// The caller has bounded `to - from` by [`MAX_SKIP`].
fn derive_until(
    chain_key: &ChainKey,
    from: u32,
    to: u32,
) -> (Vec<(u32, BoxedMessageKey)>, MessageKey, ChainKey) {
    let (skipped, at_to) = walk(chain_key, from, to);
    let (message_key, next) = at_to.as_ref().unwrap_or(chain_key).step();
    (skipped, message_key, next)
}

/// The message keys for `from..to` and the chain key at `to` (`None` when
/// the range is empty: the chain key is still `chain_key`).
fn walk(
    chain_key: &ChainKey,
    from: u32,
    to: u32,
) -> (Vec<(u32, BoxedMessageKey)>, Option<ChainKey>) {
    let mut keys = Vec::with_capacity(to.saturating_sub(from) as usize);
    let mut current: Option<ChainKey> = None;
    for index in from..to {
        let (message_key, next) = current.as_ref().unwrap_or(chain_key).step();
        keys.push((index, Box::new(message_key)));
        current = Some(next);
    }
    (keys, current)
}
