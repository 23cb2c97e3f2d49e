//! The version 1 group shapes that the simulation (`testkit::sim`) and the
//! fuzz fixtures (`testkit::fuzz`) still build: they are not a model of
//! SPEC.md v2 and nothing of the model uses them. Delete this module when
//! those move to v2 (the v2 model is [`super::Sender`], [`super::Receiver`]
//! and [`super::Store`]).

use super::ratchet::{Levels, flat, split_levels};
use super::window::{MAX_SKIPPED, Window};
use crate::model::codec::Reader;
use crate::model::error::{Refusal, refusal};
use crate::model::primitives::sign;

/// A v1 sender state.
#[derive(Clone, Debug)]
pub struct GSender {
    /// The group id.
    pub group: [u8; 32],
    /// The chain id.
    pub chain_id: u32,
    /// The next index.
    pub index: u32,
    /// R_0 .. R_7 at `index`.
    pub levels: Levels,
    /// The Ed25519 signing seed.
    pub seed: [u8; 32],
}

impl GSender {
    /// The v1 GroupSender state.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![1, 0x22];
        out.extend(self.group);
        out.extend(self.chain_id.to_be_bytes());
        out.extend(self.index.to_be_bytes());
        out.extend(flat(&self.levels));
        out.extend(self.seed);
        out
    }

    /// Appends a v1 signature to a message without one.
    pub fn sign(&self, unsigned: &[u8]) -> Vec<u8> {
        let mut data = b"sotto v1 group signature".to_vec();
        data.extend(unsigned);
        let mut msg = unsigned.to_vec();
        msg.extend(sign(&self.seed, &data));
        msg
    }
}

/// A v1 receiver state.
#[derive(Clone, Debug)]
pub struct GReceiver {
    /// The group id.
    pub group: [u8; 32],
    /// The chain id.
    pub chain_id: u32,
    /// The chain's Ed25519 public key.
    pub signing: [u8; 32],
    /// The sender's 64-byte v1 identity, if authenticated.
    pub identity: Option<[u8; 64]>,
    /// The ratchet at `window.next`.
    pub levels: Levels,
    /// Next index and cached keys.
    pub window: Window<[u8; 32]>,
}

impl GReceiver {
    /// The v1 GroupReceiver state.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![1, 0x23];
        out.extend(self.group);
        out.extend(self.chain_id.to_be_bytes());
        out.extend(self.signing);
        out.push(u8::from(self.identity.is_some()));
        if let Some(id) = self.identity {
            out.extend(id);
        }
        out.extend(self.window.next.to_be_bytes());
        out.extend(flat(&self.levels));
        let count = u16::try_from(self.window.cache.len()).expect("bounded");
        out.extend(count.to_be_bytes());
        for (i, k) in &self.window.cache {
            out.extend(i.to_be_bytes());
            out.extend(k);
        }
        out
    }

    /// Decodes a v1 GroupReceiver state (without the key checks).
    ///
    /// # Errors
    ///
    /// `Truncated`, `TrailingBytes`, `InvalidEncoding`.
    pub fn parse(b: &[u8]) -> Result<Self, Refusal> {
        let mut r = Reader::new(b);
        if r.u8("version")? != 1 || r.u8("type")? != 0x23 {
            return Err(refusal("InvalidEncoding"));
        }
        let group = r.a32("group_id")?;
        let chain_id = r.u32("chain_id")?;
        let signing = r.a32("signing_key")?;
        let identity = if r.flag("authenticated")? {
            Some(r.take("identity", 64)?.try_into().expect("64"))
        } else {
            None
        };
        let next = r.u32("next")?;
        let levels = split_levels(r.take("levels", 256)?);
        let count = usize::from(r.u16("count")?);
        if count > MAX_SKIPPED {
            return Err(refusal("InvalidEncoding"));
        }
        let mut window = Window::at(next);
        for _ in 0..count {
            let index = r.u32("index")?;
            window.cache.insert(index, r.a32("key")?);
        }
        r.end()?;
        Ok(Self {
            group,
            chain_id,
            signing,
            identity,
            levels,
            window,
        })
    }
}
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
