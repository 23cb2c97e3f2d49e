//! SPEC.md §15.9 (the per-group store, its rules and caps) and §15.11 (its
//! saved state).

use serde_json::{Value, json};

use super::message::read_message;
use super::ratchet::{jump, message_key};
use super::receiver::Receiver;
use crate::hex::hex;
use crate::model::codec::{Layout, Reader};
use crate::model::error::{Refusal, refusal};
use crate::model::primitives::{MAX_STATE, VERSION};

/// §15.10 `MAX_CHAINS_PER_SENDER`.
pub const MAX_CHAINS_PER_SENDER: usize = 4;
/// §15.10 `MAX_UNAUTHENTICATED_CHAINS_PER_OWNER`.
pub const MAX_UNAUTH_PER_OWNER: usize = 4;
/// §15.10 `MAX_UNAUTHENTICATED_GROUP_CHAINS`.
pub const MAX_UNAUTH: usize = 256;
/// §15.10 `MAX_GROUP_RECEIVERS`.
pub const MAX_RECEIVERS: usize = 1024;

/// The outcome of an insert (§15.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A new chain.
    Added,
    /// A held chain moved forward.
    Advanced,
    /// A held chain became authenticated.
    Upgraded,
    /// Nothing changed.
    Unchanged,
}

impl Outcome {
    /// As the vectors spell it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Added => "Added",
            Self::Advanced => "Advanced",
            Self::Upgraded => "Upgraded",
            Self::Unchanged => "Unchanged",
        }
    }
}

/// The store of one group: receivers oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Store {
    /// §10.1 generation.
    pub generation: u64,
    /// The group id.
    pub group: [u8; 32],
    /// Receivers, oldest first.
    pub entries: Vec<Receiver>,
}

/// The result of an insert: its outcome and the chains deleted to make
/// room (rule 3), oldest first.
pub type Inserted = (Outcome, Vec<[u8; 32]>);

impl Store {
    /// An empty store.
    pub fn new(group: [u8; 32]) -> Self {
        Self {
            generation: 0,
            group,
            entries: Vec::new(),
        }
    }

    fn bump(&mut self) {
        self.generation = self.generation.saturating_add(1);
    }

    /// §15.9 insertion, its rules in order; all or nothing.
    ///
    /// # Errors
    ///
    /// `GroupMismatch`, `GroupChainConflict`, `GroupStoreFull`.
    pub fn insert(&mut self, r: Receiver) -> Result<Inserted, Refusal> {
        // Rule 1.
        if r.group != self.group {
            return Err(refusal("GroupMismatch"));
        }
        // Rule 2.
        if let Some(pos) = self.entries.iter().position(|h| h.chain == r.chain) {
            let h = &self.entries[pos];
            // 2.1.
            if h.owner != r.owner {
                return Err(refusal("GroupChainConflict"));
            }
            // 2.2 and 2.3: an import changes nothing held.
            if !r.authenticated {
                return Ok((Outcome::Unchanged, Vec::new()));
            }
            let outcome = if h.authenticated {
                // 2.4: the owner's distribution again.
                if !consistent(h, &r) {
                    return Err(refusal("GroupChainConflict"));
                }
                if r.next() <= h.next() {
                    return Ok((Outcome::Unchanged, Vec::new()));
                }
                let h = &mut self.entries[pos];
                h.levels = r.levels;
                h.window.next = r.window.next;
                Outcome::Advanced
            } else {
                // 2.5: the upgrade.
                let h = &mut self.entries[pos];
                let p = r.next().max(h.read);
                let mut levels = r.levels;
                let mut at = r.next();
                let mut cache = std::collections::BTreeMap::new();
                for (&c, k) in &h.window.cache {
                    if c < r.next() {
                        cache.insert(c, *k);
                    } else if c < p {
                        jump(at, &mut levels, c);
                        at = c;
                        cache.insert(c, message_key(&levels));
                    }
                }
                let mut ratchet = r.levels;
                jump(r.next(), &mut ratchet, p);
                h.levels = ratchet;
                h.window.next = p;
                h.window.cache = cache;
                h.authenticated = true;
                Outcome::Upgraded
            };
            let h = &mut self.entries[pos];
            h.generation = h.generation.saturating_add(1);
            self.bump();
            return Ok((outcome, Vec::new()));
        }
        // Rule 3.
        let mut next = self.clone();
        let evicted = next.add(r)?;
        next.bump();
        *self = next;
        Ok((Outcome::Added, evicted))
    }

    /// Rule 3: the caps, then `R` appended as the newest.
    fn add(&mut self, r: Receiver) -> Result<Vec<[u8; 32]>, Refusal> {
        let mut evicted = Vec::new();
        let mut delete = |s: &mut Self, pos: usize| evicted.push(s.entries.remove(pos).chain);
        let oldest = |s: &Self, f: &dyn Fn(&Receiver) -> bool| s.entries.iter().position(f);
        if r.authenticated {
            let own = |h: &Receiver| h.authenticated && h.owner == r.owner;
            if self.entries.iter().filter(|h| own(h)).count() >= MAX_CHAINS_PER_SENDER {
                let pos = oldest(self, &own).expect("counted");
                delete(self, pos);
            }
            if self.entries.len() >= MAX_RECEIVERS {
                let pos = oldest(self, &|h| !h.authenticated).unwrap_or(0);
                delete(self, pos);
            }
        } else {
            let claimed = |h: &Receiver| !h.authenticated && h.owner == r.owner;
            if self.entries.iter().filter(|h| claimed(h)).count() >= MAX_UNAUTH_PER_OWNER {
                let pos = oldest(self, &claimed).expect("counted");
                delete(self, pos);
            }
            let unauth = |h: &Receiver| !h.authenticated;
            if self.entries.iter().filter(|h| unauth(h)).count() >= MAX_UNAUTH {
                let pos = oldest(self, &unauth).expect("counted");
                delete(self, pos);
            }
            if self.entries.len() >= MAX_RECEIVERS {
                let Some(pos) = oldest(self, &unauth) else {
                    return Err(refusal("GroupStoreFull"));
                };
                delete(self, pos);
            }
        }
        self.entries.push(r);
        Ok(evicted)
    }

    /// `decrypt` through the store: dispatched on `group_id` and `chain`.
    /// Returns the plaintext, the sender mark and the receiver's trace.
    ///
    /// # Errors
    ///
    /// The model's refusal: the SPEC.md error of the first check the input
    /// fails, in the order SPEC.md fixes.
    pub fn decrypt(&mut self, msg: &[u8]) -> Result<(Vec<u8>, Value, Value), Refusal> {
        let (h, _) = read_message(msg)?;
        let entry = self
            .entries
            .iter_mut()
            .find(|r| h.group == r.group && h.chain == r.chain)
            .ok_or_else(|| refusal("UnknownGroupChain"))?;
        let (pt, trace) = entry.decrypt(msg)?;
        let mark = entry.mark();
        self.bump();
        Ok((pt, mark, trace))
    }

    /// `remove_owner`: deletes every chain whose owner or claimed owner is
    /// `identity`; returns how many.
    pub fn remove_owner(&mut self, identity: &[u8; 32]) -> usize {
        let before = self.entries.len();
        self.entries.retain(|r| r.owner != *identity);
        let removed = before - self.entries.len();
        if removed > 0 {
            self.bump();
        }
        removed
    }

    /// The receiver of a chain.
    pub fn get(&self, chain: &[u8; 32]) -> Option<&Receiver> {
        self.entries.iter().find(|r| r.chain == *chain)
    }

    /// §15.11 encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![VERSION, 0x24];
        out.extend(self.generation.to_be_bytes());
        out.extend(self.group);
        out.extend(
            u16::try_from(self.entries.len())
                .expect("bounded")
                .to_be_bytes(),
        );
        for r in &self.entries {
            let state = r.encode();
            out.extend(u16::try_from(state.len()).expect("bounded").to_be_bytes());
            out.extend(state);
        }
        out
    }

    /// §15.11 decoder.
    ///
    /// # Errors
    ///
    /// The model's refusal: the SPEC.md error of the first check the input
    /// fails, in the order SPEC.md fixes.
    pub fn decode(b: &[u8]) -> Result<Self, Refusal> {
        Self::read(b).map(|(s, _)| s)
    }

    /// §15.11 decoder, with the state's layout (each receiver's fields under
    /// `entries[i].`).
    ///
    /// # Errors
    ///
    /// The model's refusal: the SPEC.md error of the first check the input
    /// fails, in the order SPEC.md fixes.
    pub fn read(b: &[u8]) -> Result<(Self, Layout), Refusal> {
        let bad = || refusal("InvalidEncoding");
        if b.len() > MAX_STATE {
            return Err(refusal("TooLarge"));
        }
        let mut r = Reader::header(b, 0x24)?;
        let generation = r.u64("generation")?;
        let group = r.a32("group_id")?;
        let count = usize::from(r.u16("count")?);
        if count > MAX_RECEIVERS {
            return Err(bad());
        }
        let mut entries = Vec::with_capacity(count);
        for i in 0..count {
            r.enter(format!("entries[{i}]"));
            let len = usize::from(r.u16("length")?);
            let offset = r.pos();
            let state = r.take("state", len)?;
            let (receiver, inner) = Receiver::read(state)?;
            r.adopt(offset, &inner);
            r.leave();
            entries.push(receiver);
        }
        r.end()?;
        let chains: Vec<&[u8; 32]> = entries.iter().map(|e| &e.chain).collect();
        let count_of = |f: &dyn Fn(&Receiver) -> bool| entries.iter().filter(|e| f(e)).count();
        let over = entries.iter().any(|e| {
            let limit = if e.authenticated {
                MAX_CHAINS_PER_SENDER
            } else {
                MAX_UNAUTH_PER_OWNER
            };
            count_of(&|x| x.authenticated == e.authenticated && x.owner == e.owner) > limit
        });
        if entries.iter().any(|e| e.group != group)
            || chains
                .iter()
                .enumerate()
                .any(|(i, c)| chains[..i].contains(c))
            || over
            || count_of(&|x| !x.authenticated) > MAX_UNAUTH
        {
            return Err(bad());
        }
        let store = Self {
            generation,
            group,
            entries,
        };
        Ok((store, r.into_layout()))
    }

    /// Every field of the saved state, for the vectors.
    pub fn decoded_json(&self) -> Value {
        json!({
            "generation": self.generation, "group_id": hex(&self.group),
            "receivers": self.entries.iter().map(Receiver::decoded_json).collect::<Vec<_>>(),
        })
    }

    /// The store's chains oldest first, as the vectors list them.
    pub fn held_json(&self) -> Value {
        self.entries
            .iter()
            .map(|r| {
                json!({
                    "chain": hex(&r.chain), "owner": hex(&r.owner),
                    "authenticated": r.authenticated, "next": r.next(),
                    "cached": r.window.cache.len(), "generation": r.generation,
                })
            })
            .collect()
    }
}

/// The lineage check of rule 2.4: `lo`'s ratchet jumped to `hi`'s next
/// index equals `hi`'s.
pub fn consistent(a: &Receiver, b: &Receiver) -> bool {
    let (lo, hi) = if a.next() <= b.next() { (a, b) } else { (b, a) };
    let mut levels = lo.levels;
    jump(lo.next(), &mut levels, hi.next());
    levels == hi.levels
}
