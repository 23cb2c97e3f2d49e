//! SPEC.md §15.5, §15.6, §15.11 and §15.12: the sending side of a chain.

use serde_json::{Value, json};

use super::message::{Dist, HEADER_LEN, L_MESSAGE_KEYS, owner_proof, owner_signature, signed_data};
use super::ratchet::{Levels, flat, increment, message_key, split_levels};
use crate::hex::hex;
use crate::model::codec::{Layout, Reader};
use crate::model::error::{Refusal, refusal};
use crate::model::primitives::{
    MAX_PLAINTEXT, MAX_STATE, VERSION, ed25519_public, key_nonce, seal, sign,
};
use crate::model::rand::Source;

/// Length of the sender state.
pub const STATE_LEN: usize = 494;

/// The sending side of a chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sender {
    /// §10.1 generation.
    pub generation: u64,
    /// The group id.
    pub group: [u8; 32],
    /// The owner's identity key.
    pub owner: [u8; 32],
    /// The chain's Ed25519 seed.
    pub seed: [u8; 32],
    /// The owner proof, as made.
    pub proof: [u8; 64],
    /// The owner signature, as made.
    pub signature: [u8; 64],
    /// The next index.
    pub index: u32,
    /// R_0 .. R_7 at `index`.
    pub levels: Levels,
}

impl Sender {
    /// `GroupSender::new` from the owner's device (its identity seed):
    /// draws 256 bytes (R_0 .. R_7), then the 32-byte chain seed; makes the
    /// owner proof and the owner signature.
    pub fn new(rng: &mut dyn Source, group: [u8; 32], identity_seed: &[u8; 32]) -> Self {
        let mut levels = [0u8; 256];
        rng.fill(&mut levels);
        let seed = rng.draw::<32>();
        let chain = ed25519_public(&seed);
        let owner = ed25519_public(identity_seed);
        Self {
            generation: 0,
            group,
            owner,
            seed,
            proof: owner_proof(&seed, &group, &chain, &owner),
            signature: owner_signature(identity_seed, &group, &chain),
            index: 0,
            levels: split_levels(&levels),
        }
    }

    /// `rotate` with the owner's device: a new chain for the same group and
    /// owner, generation + 1.
    ///
    /// # Errors
    ///
    /// `GroupOwnerMismatch` (nothing drawn) for a device that is not the
    /// owner.
    pub fn rotate(
        &mut self,
        rng: &mut dyn Source,
        identity_seed: &[u8; 32],
    ) -> Result<(), Refusal> {
        if ed25519_public(identity_seed) != self.owner {
            return Err(refusal("GroupOwnerMismatch"));
        }
        let generation = self.generation.saturating_add(1);
        *self = Self::new(rng, self.group, identity_seed);
        self.generation = generation;
        Ok(())
    }

    /// The chain's public key.
    pub fn chain(&self) -> [u8; 32] {
        ed25519_public(&self.seed)
    }

    /// The distribution at the current index.
    pub fn distribution(&self) -> Dist {
        Dist {
            group: self.group,
            chain: self.chain(),
            owner: self.owner,
            proof: self.proof,
            signature: self.signature,
            index: self.index,
            levels: self.levels,
        }
    }

    /// §15.11 encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![VERSION, 0x22];
        out.extend(self.generation.to_be_bytes());
        out.extend(self.group);
        out.extend(self.owner);
        out.extend(self.seed);
        out.extend(self.proof);
        out.extend(self.signature);
        out.extend(self.index.to_be_bytes());
        out.extend(flat(&self.levels));
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
        let generation = r.u64("generation")?;
        let group = r.a32("group_id")?;
        let owner = r.ed("owner")?;
        let seed = r.a32("chain_seed")?;
        let proof = r.take("owner_proof", 64)?.try_into().expect("64");
        let signature = r.take("owner_signature", 64)?.try_into().expect("64");
        let index = r.u32("index")?;
        let levels = split_levels(r.take("levels", 256)?);
        r.end()?;
        let s = Self {
            generation,
            group,
            owner,
            seed,
            proof,
            signature,
            index,
            levels,
        };
        Ok((s, r.into_layout()))
    }

    /// §15.12 encrypt: `PlaintextTooLarge`, then `ChainExhausted`, then the
    /// 16-byte salt; increments and adds 1 to the generation.
    ///
    /// # Errors
    ///
    /// `PlaintextTooLarge`, `ChainExhausted` (nothing drawn).
    pub fn encrypt(
        &mut self,
        rng: &mut dyn Source,
        pt: &[u8],
    ) -> Result<(Vec<u8>, Value), Refusal> {
        if pt.len() > MAX_PLAINTEXT {
            return Err(refusal("PlaintextTooLarge"));
        }
        if self.index == u32::MAX {
            return Err(refusal("ChainExhausted"));
        }
        let salt = rng.draw::<16>();
        let (msg, trace) = self.encrypt_with(&salt, pt);
        self.index = increment(self.index, &mut self.levels);
        self.generation = self.generation.saturating_add(1);
        Ok((msg, trace))
    }

    /// The message at the current index with a given salt (no state change).
    pub fn encrypt_with(&self, salt: &[u8; 16], pt: &[u8]) -> (Vec<u8>, Value) {
        let k = message_key(&self.levels);
        let (key, nonce) = key_nonce(salt, &k, L_MESSAGE_KEYS);
        let mut header = vec![VERSION, 0x03];
        header.extend(self.group);
        header.extend(self.chain());
        header.extend(self.index.to_be_bytes());
        header.extend(salt);
        debug_assert_eq!(header.len(), HEADER_LEN);
        let ct = seal(&key, &nonce, &header, pt);
        let mut msg = header.clone();
        msg.extend(&ct);
        let signed = signed_data(&msg);
        let sig = sign(&self.seed, &signed);
        msg.extend(sig);
        let trace = json!({
            "index": self.index, "message_key": hex(&k), "salt": hex(salt), "aes_key": hex(&key),
            "nonce": hex(&nonce), "header": hex(&header), "ciphertext": hex(&ct),
            "signed_data": hex(&signed), "signature": hex(&sig), "message": hex(&msg),
        });
        (msg, trace)
    }

    /// Every field of the saved state, for the vectors.
    pub fn decoded_json(&self) -> Value {
        json!({
            "generation": self.generation, "group_id": hex(&self.group), "owner": hex(&self.owner),
            "chain_seed": hex(&self.seed), "chain": hex(&self.chain()), "owner_proof": hex(&self.proof), "owner_signature": hex(&self.signature),
            "index": self.index, "levels": super::ratchet::levels_json(&self.levels),
            "message_key": hex(&message_key(&self.levels)),
        })
    }

    /// Signs bytes (everything before a signature) with this chain's key
    /// and appends the signature.
    pub fn sign(&self, unsigned: &[u8]) -> Vec<u8> {
        let mut msg = unsigned.to_vec();
        msg.extend(sign(&self.seed, &signed_data(unsigned)));
        msg
    }
}
