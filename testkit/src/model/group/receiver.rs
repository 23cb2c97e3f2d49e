//! SPEC.md §15.7, §15.8 and §15.11: the receiving side of a chain.

use serde_json::{Value, json};

use super::message::{
    HEADER_LEN, L_MESSAGE_KEYS, SIGNATURE_LEN, parse_distribution, read_message, signed_data,
};
use super::ratchet::{Levels, flat, increment, jump, message_key, split_levels};
use super::store::Held;
use super::window::{MAX_SKIPPED, Step, Window};
use crate::hex::hex;
use crate::model::codec::{Layout, Reader};
use crate::model::error::{Refusal, refusal};
use crate::model::primitives::{MAX_STATE, key_nonce, open, verify};

/// The receiving side of a chain.
#[derive(Clone, Debug)]
pub struct GReceiver {
    /// The group id.
    pub group: [u8; 32],
    /// The chain id.
    pub chain_id: u32,
    /// The chain's Ed25519 public key.
    pub signing: [u8; 32],
    /// Ed25519 || X25519 of the sender, if authenticated.
    pub identity: Option<[u8; 64]>,
    /// The ratchet at `window.next`.
    pub levels: Levels,
    /// Next index and cached keys.
    pub window: Window<[u8; 32]>,
}

impl GReceiver {
    /// §15.7: a receiver from a distribution, attributed to `identity`
    /// (`None` for an unauthenticated import).
    ///
    /// # Errors
    ///
    /// The model's refusal: the SPEC.md error of the first check the input
    /// fails, in the order SPEC.md fixes.
    pub fn install(dist: &[u8], identity: Option<[u8; 64]>) -> Result<Self, Refusal> {
        let d = parse_distribution(dist)?;
        Ok(Self {
            group: d.group,
            chain_id: d.chain_id,
            signing: d.signing,
            identity,
            levels: d.levels,
            window: Window::at(d.index),
        })
    }

    /// The next index.
    pub fn next(&self) -> u32 {
        self.window.next
    }

    /// GroupReceiver state (type 0x23).
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

    /// §15.11 decoder.
    ///
    /// # Errors
    ///
    /// The model's refusal: the SPEC.md error of the first check the input
    /// fails, in the order SPEC.md fixes.
    pub fn parse(b: &[u8]) -> Result<Self, Refusal> {
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
        let group = r.a32("group_id")?;
        let chain_id = r.u32("chain_id")?;
        let signing = r.ed("signing_key")?;
        let identity = if r.flag("authenticated")? {
            Some(r.ik("identity")?)
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
            group,
            chain_id,
            signing,
            identity,
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
        if h.group != self.group || h.chain_id != self.chain_id {
            return Err(refusal("UnknownGroupChain"));
        }
        let (unsigned, sig) = msg.split_at(msg.len() - SIGNATURE_LEN);
        verify(&self.signing, &signed_data(unsigned), sig)?;
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
        match self.window.plan(j)? {
            Step::Cached => {
                let k = self.window.cache[&j];
                let pt = open_with(&k)?;
                self.window.cache.remove(&j);
                let trace = json!({
                    "key_source": "cache", "message_key": hex(&k), "next_before": next_before,
                    "skip_from": null, "skipped_cached": [], "evicted": [], "next_after": next_before,
                });
                Ok((pt, trace))
            }
            Step::Ratchet { skip_from } => {
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
                increment(j, &mut levels);
                self.levels = levels;
                let evicted = self.window.commit(j, skipped.iter().copied());
                let trace = json!({
                    "key_source": "ratchet", "message_key": hex(&k), "next_before": next_before,
                    "skip_from": skip_from,
                    "skipped_cached": skipped.iter().map(|(_, k)| hex(k)).collect::<Vec<_>>(),
                    "evicted": evicted, "next_after": self.window.next,
                });
                Ok((pt, trace))
            }
        }
    }
}

impl Held for GReceiver {
    fn group(&self) -> [u8; 32] {
        self.group
    }

    fn chain_id(&self) -> u32 {
        self.chain_id
    }

    fn signing(&self) -> [u8; 32] {
        self.signing
    }

    fn sender(&self) -> Option<[u8; 64]> {
        self.identity
    }

    fn next(&self) -> u32 {
        self.window.next
    }

    fn take_ratchet(&mut self, newer: Self) {
        self.window.next = newer.window.next;
        self.levels = newer.levels;
    }
}
