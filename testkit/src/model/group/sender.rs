//! SPEC.md §15.5, §15.11 and §15.12: the sending side of a chain.

use serde_json::{Value, json};

use super::message::{L_MESSAGE_KEYS, signed_data};
use super::ratchet::{Levels, flat, increment, message_key, split_levels};
use crate::hex::hex;
use crate::model::codec::{Layout, Reader};
use crate::model::error::{Refusal, refusal};
use crate::model::primitives::{MAX_PLAINTEXT, MAX_STATE, ed25519_public, key_nonce, seal, sign};
use crate::rng::Draws;

/// The sending side of a chain.
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
    /// Draws 4 (chain id, big-endian), 256 (R_0..R_7), 32 (Ed25519 seed).
    pub fn new(rng: &mut Draws, group: [u8; 32]) -> Self {
        let chain_id = u32::from_be_bytes(rng.draw::<4>());
        let levels = split_levels(&rng.draw::<256>());
        let seed = rng.draw::<32>();
        Self {
            group,
            chain_id,
            index: 0,
            levels,
            seed,
        }
    }

    /// The chain's Ed25519 public key.
    pub fn public(&self) -> [u8; 32] {
        ed25519_public(&self.seed)
    }

    /// GroupSender state (type 0x22).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![1, 0x22];
        out.extend(self.group);
        out.extend(self.chain_id.to_be_bytes());
        out.extend(self.index.to_be_bytes());
        out.extend(flat(&self.levels));
        out.extend(self.seed);
        out
    }

    /// §15.11 decoder.
    ///
    /// # Errors
    ///
    /// The model's refusal: the SPEC.md error of the first check the input
    /// fails, in the order SPEC.md fixes.
    pub fn parse(b: &[u8]) -> Result<Self, Refusal> {
        Self::read(b).map(|(s, _)| s)
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
        let mut r = Reader::header(b, 0x22)?;
        let group = r.a32("group_id")?;
        let chain_id = r.u32("chain_id")?;
        let index = r.u32("index")?;
        let levels = split_levels(r.take("levels", 256)?);
        let seed = r.a32("signing_seed")?;
        r.end()?;
        let s = Self {
            group,
            chain_id,
            index,
            levels,
            seed,
        };
        Ok((s, r.into_layout()))
    }

    /// SenderKeyDistribution (type 0x04) at the current index.
    pub fn distribution(&self) -> Vec<u8> {
        let mut out = vec![1, 0x04];
        out.extend(self.group);
        out.extend(self.chain_id.to_be_bytes());
        out.extend(self.index.to_be_bytes());
        out.extend(flat(&self.levels));
        out.extend(self.public());
        out
    }

    /// Encrypts at the current index (draws a 16-byte salt) and increments.
    ///
    /// # Errors
    ///
    /// The model's refusal: the SPEC.md error of the first check the input
    /// fails, in the order SPEC.md fixes.
    pub fn encrypt(&mut self, rng: &mut Draws, pt: &[u8]) -> Result<(Vec<u8>, Value), Refusal> {
        if pt.len() > MAX_PLAINTEXT {
            return Err(refusal("PlaintextTooLarge"));
        }
        if self.index == u32::MAX {
            return Err(refusal("ChainExhausted"));
        }
        let salt = rng.draw::<16>();
        let (msg, trace) = self.encrypt_with(&salt, pt);
        self.index = increment(self.index, &mut self.levels);
        Ok((msg, trace))
    }

    /// The message at the current index with a given salt (no state change).
    pub fn encrypt_with(&self, salt: &[u8; 16], pt: &[u8]) -> (Vec<u8>, Value) {
        let k = message_key(&self.levels);
        let (key, nonce) = key_nonce(salt, &k, L_MESSAGE_KEYS);
        let mut header = vec![1, 0x03];
        header.extend(self.group);
        header.extend(self.chain_id.to_be_bytes());
        header.extend(self.index.to_be_bytes());
        header.extend(salt);
        let ct = seal(&key, &nonce, &header, pt);
        let mut msg = header.clone();
        msg.extend(&ct);
        let signed = signed_data(&msg);
        let sig = sign(&self.seed, &signed);
        msg.extend(sig);
        let trace = json!({
            "index": self.index, "message_key": hex(&k), "salt": hex(salt), "aes_key": hex(&key), "nonce": hex(&nonce),
            "header": hex(&header), "ciphertext": hex(&ct), "signed_data": hex(&signed),
            "signature": hex(&sig), "message": hex(&msg),
        });
        (msg, trace)
    }

    /// Signs bytes (everything before a signature) with this chain's key
    /// and appends the signature.
    pub fn sign(&self, unsigned: &[u8]) -> Vec<u8> {
        let mut msg = unsigned.to_vec();
        msg.extend(sign(&self.seed, &signed_data(unsigned)));
        msg
    }
}
