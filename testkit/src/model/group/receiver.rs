//! SPEC.md §15.7 (installing a distribution), §15.8 (receiving) and §15.11
//! (the receiver's saved state).

use serde_json::{Value, json};

use super::message::{
    Dist, HEADER_LEN, L_MESSAGE_KEYS, SIGNATURE_LEN, read_distribution, read_message, signed_data,
};
use super::ratchet::{Levels, flat, increment, jump, message_key, split_levels};
use super::window::{MAX_SKIPPED, Step, Window};
use crate::hex::hex;
use crate::model::codec::{Layout, Reader};
use crate::model::error::{Refusal, refusal};
use crate::model::primitives::{MAX_STATE, VERSION, key_nonce, open, verify};

/// Length of a receiver state with an empty cache.
pub const FIXED_LEN: usize = 373;

/// The receiving side of a chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receiver {
    /// §10.1 generation.
    pub generation: u64,
    /// The group id.
    pub group: [u8; 32],
    /// The chain's public key.
    pub chain: [u8; 32],
    /// The owner (authenticated) or claimed owner.
    pub owner: [u8; 32],
    /// `Sender::Authenticated(owner)` or `Sender::Unauthenticated`.
    pub authenticated: bool,
    /// 0, or 1 + the highest index decrypted (§15.8).
    pub read: u32,
    /// The ratchet at `window.next`.
    pub levels: Levels,
    /// Next index and cached keys.
    pub window: Window<[u8; 32]>,
}

/// The sender mark of a plaintext, as the vectors spell it.
pub fn mark_json(owner: &[u8; 32], authenticated: bool) -> Value {
    json!({ "owner": hex(owner), "authenticated": authenticated })
}

/// §15.7 checks after the parse: `GroupMismatch`, then (authenticated
/// installs) `GroupOwnerMismatch`, then the owner proof.
///
/// # Errors
///
/// `GroupMismatch`, `GroupOwnerMismatch`, `InvalidSignature`.
pub fn check_install(d: &Dist, group: &[u8; 32], peer: Option<&[u8; 32]>) -> Result<(), Refusal> {
    if d.group != *group {
        return Err(refusal("GroupMismatch"));
    }
    if peer.is_some_and(|p| *p != d.owner) {
        return Err(refusal("GroupOwnerMismatch"));
    }
    d.verify_proof()
}

impl Receiver {
    /// A receiver from a checked distribution, at its index, generation 0.
    pub fn from_distribution(d: &Dist, authenticated: bool) -> Self {
        Self {
            generation: 0,
            group: d.group,
            chain: d.chain,
            owner: d.owner,
            authenticated,
            read: 0,
            levels: d.levels,
            window: Window::at(d.index),
        }
    }

    /// §15.7 for a standalone receiver: the plaintext (or imported bytes)
    /// must be exactly a distribution for `group`; `peer` is the identity
    /// of the session it came out of, `None` for an unauthenticated import.
    ///
    /// # Errors
    ///
    /// The distribution's parse errors, `GroupMismatch`,
    /// `GroupOwnerMismatch`, `InvalidSignature`.
    pub fn install(
        bytes: &[u8],
        group: &[u8; 32],
        peer: Option<&[u8; 32]>,
    ) -> Result<Self, Refusal> {
        let (d, _) = read_distribution(bytes)?;
        check_install(&d, group, peer)?;
        Ok(Self::from_distribution(&d, peer.is_some()))
    }

    /// The next index.
    pub fn next(&self) -> u32 {
        self.window.next
    }

    /// The mark, as the vectors spell it.
    pub fn mark(&self) -> Value {
        mark_json(&self.owner, self.authenticated)
    }

    /// Every field of the saved state, for the vectors.
    pub fn decoded_json(&self) -> Value {
        json!({
            "generation": self.generation, "group_id": hex(&self.group), "chain": hex(&self.chain),
            "owner": hex(&self.owner), "authenticated": self.authenticated, "next": self.next(),
            "read": self.read,
            "levels": super::ratchet::levels_json(&self.levels),
            "cache": self.window.cache.iter().map(|(i, k)| json!({ "index": i, "key": hex(k) })).collect::<Vec<_>>(),
        })
    }

    /// §15.11 encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![VERSION, 0x23];
        out.extend(self.generation.to_be_bytes());
        out.extend(self.group);
        out.extend(self.chain);
        out.extend(self.owner);
        out.push(u8::from(self.authenticated));
        out.extend(self.window.next.to_be_bytes());
        out.extend(self.read.to_be_bytes());
        out.extend(flat(&self.levels));
        let count = u16::try_from(self.window.cache.len()).expect("bounded");
        out.extend(count.to_be_bytes());
        for (i, k) in &self.window.cache {
            out.extend(i.to_be_bytes());
            out.extend(k);
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
        Self::read(b).map(|(r, _)| r)
    }

    /// §15.11 decoder, with the state's layout.
    ///
    /// # Errors
    ///
    /// The model's refusal: the SPEC.md error of the first check the input
    /// fails, in the order SPEC.md fixes.
    pub fn read(b: &[u8]) -> Result<(Self, Layout), Refusal> {
        if b.len() > MAX_STATE {
            return Err(refusal("TooLarge"));
        }
        let mut r = Reader::header(b, 0x23)?;
        let generation = r.u64("generation")?;
        let group = r.a32("group_id")?;
        let chain = r.ed("chain")?;
        let owner = r.ed("owner")?;
        let authenticated = r.flag("authenticated")?;
        let next = r.u32("next")?;
        let read = r.u32("read")?;
        if read > next {
            return Err(refusal("InvalidEncoding"));
        }
        let levels = split_levels(r.take("levels", 256)?);
        let count = usize::from(r.u16("count")?);
        if count > MAX_SKIPPED {
            return Err(refusal("InvalidEncoding"));
        }
        let mut window = Window::at(next);
        for i in 0..count {
            r.enter(format!("cache[{i}]"));
            let index = r.u32("index")?;
            if window
                .cache
                .last_key_value()
                .is_some_and(|(&p, _)| index <= p)
                || index >= next
            {
                return Err(refusal("InvalidEncoding"));
            }
            window.cache.insert(index, r.a32("key")?);
            r.leave();
        }
        r.end()?;
        let receiver = Self {
            generation,
            group,
            chain,
            owner,
            authenticated,
            read,
            levels,
            window,
        };
        Ok((receiver, r.into_layout()))
    }

    /// §15.8, all or nothing: the plaintext and a trace.
    ///
    /// # Errors
    ///
    /// The model's refusal: the SPEC.md error of the first check the input
    /// fails, in the order SPEC.md fixes.
    pub fn decrypt(&mut self, msg: &[u8]) -> Result<(Vec<u8>, Value), Refusal> {
        let (h, _) = read_message(msg)?;
        // Step 1.
        if h.group != self.group || h.chain != self.chain {
            return Err(refusal("UnknownGroupChain"));
        }
        // Step 2.
        let (unsigned, sig) = msg.split_at(msg.len() - SIGNATURE_LEN);
        verify(&self.chain, &signed_data(unsigned), sig)?;
        let j = h.index;
        let open_with = |k: &[u8; 32]| {
            let (key, nonce) = key_nonce(&h.salt, k, L_MESSAGE_KEYS);
            open(
                &key,
                &nonce,
                &unsigned[..HEADER_LEN],
                &unsigned[HEADER_LEN..],
            )
            .ok_or_else(|| refusal("AuthenticationFailed"))
        };
        let next_before = self.window.next;
        // Steps 3 to 5.
        let (pt, trace) = match self.window.plan(j)? {
            Step::Cached => {
                let k = self.window.cache[&j];
                let pt = open_with(&k)?;
                self.window.cache.remove(&j);
                let trace = json!({
                    "key_source": "cache", "message_key": hex(&k), "next_before": next_before,
                    "skip_from": null, "skipped_cached": [], "evicted": [], "next_after": next_before,
                });
                (pt, trace)
            }
            Step::Ratchet { skip_from } => {
                // Step 6, on a copy.
                let mut levels = self.levels;
                jump(next_before, &mut levels, skip_from);
                let mut i = skip_from;
                let mut skipped = Vec::new();
                while i < j {
                    skipped.push((i, message_key(&levels)));
                    i = increment(i, &mut levels);
                }
                let k = message_key(&levels);
                let pt = open_with(&k)?;
                // Step 7.
                increment(j, &mut levels);
                self.levels = levels;
                let evicted = self.window.commit(j, skipped.iter().copied());
                let trace = json!({
                    "key_source": "ratchet", "message_key": hex(&k), "next_before": next_before,
                    "skip_from": skip_from,
                    "skipped_cached": skipped.iter().map(|(_, k)| hex(k)).collect::<Vec<_>>(),
                    "evicted": evicted, "next_after": self.window.next,
                });
                (pt, trace)
            }
        };
        self.read = self.read.max(j + 1);
        self.generation = self.generation.saturating_add(1);
        Ok((pt, trace))
    }
}
