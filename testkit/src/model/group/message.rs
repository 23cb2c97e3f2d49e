//! SPEC.md §15.5 (GroupMessage) and §15.6 (SenderKeyDistribution, owner
//! proofs).

use super::ratchet::{Levels, flat, split_levels};
use crate::model::codec::{Layout, Reader};
use crate::model::error::{Refusal, refusal};
use crate::model::primitives::{MAX_PLAINTEXT, VERSION, sign, verify};

/// §3 AEAD key and nonce label.
pub const L_MESSAGE_KEYS: &str = "sotto v2 group message keys";
/// §3 message signature label.
pub const L_SIGNATURE: &str = "sotto v2 group message";
/// §3 owner proof label (signed by the chain key).
pub const L_OWNER: &str = "sotto v2 group chain owner";
/// §3 owner signature label (signed by the owner's identity key).
pub const L_OWNER_SIGNATURE: &str = "sotto v2 group owner signature";
/// Header length (version, type, group id, chain, index, salt): the AAD.
pub const HEADER_LEN: usize = 86;
/// Signature length.
pub const SIGNATURE_LEN: usize = 64;
/// Length of a message with an empty plaintext.
pub const OVERHEAD: usize = HEADER_LEN + 16 + SIGNATURE_LEN;
/// §15.10 `MAX_GROUP_MESSAGE_LEN`.
pub const MAX_MESSAGE: usize = OVERHEAD + MAX_PLAINTEXT;
/// Length of a distribution.
pub const DISTRIBUTION_LEN: usize = 486;

/// A decoded GroupMessage header.
#[derive(Clone, Debug)]
pub struct MsgHeader {
    /// The group id.
    pub group: [u8; 32],
    /// The chain (its Ed25519 public key).
    pub chain: [u8; 32],
    /// The index.
    pub index: u32,
    /// The salt.
    pub salt: [u8; 16],
}

/// Decodes a group message (§15.5): `TooLarge`, version and type, group id
/// and `chain` (`InvalidPublicKey`), then `Truncated` below 166 bytes.
///
/// # Errors
///
/// The model's refusal: the SPEC.md error of the first check the input
/// fails, in the order SPEC.md fixes.
pub fn read_message(b: &[u8]) -> Result<(MsgHeader, Layout), Refusal> {
    if b.len() > MAX_MESSAGE {
        return Err(refusal("TooLarge"));
    }
    let mut r = Reader::header(b, 0x03)?;
    let group = r.a32("group_id")?;
    let chain = r.ed("chain")?;
    if b.len() < OVERHEAD {
        return Err(refusal("Truncated"));
    }
    let index = r.u32("index")?;
    let salt = r.take("salt", 16)?.try_into().expect("16");
    let body = r.remaining() - 16 - SIGNATURE_LEN;
    r.take("ciphertext", body)?;
    r.take("tag", 16)?;
    r.take("signature", SIGNATURE_LEN)?;
    let header = MsgHeader {
        group,
        chain,
        index,
        salt,
    };
    Ok((header, r.into_layout()))
}

/// What a message signature covers: the label and every byte before it.
pub fn signed_data(unsigned: &[u8]) -> Vec<u8> {
    let mut d = L_SIGNATURE.as_bytes().to_vec();
    d.extend(unsigned);
    d
}

/// A message without its signature.
pub fn unsigned(message: &[u8]) -> &[u8] {
    &message[..message.len() - SIGNATURE_LEN]
}

/// What an owner proof covers (§15.6).
pub fn owner_proof_data(group: &[u8; 32], chain: &[u8; 32], owner: &[u8; 32]) -> Vec<u8> {
    let mut d = L_OWNER.as_bytes().to_vec();
    d.extend(group);
    d.extend(chain);
    d.extend(owner);
    d
}

/// `owner_proof = Sign(chain seed, ...)`.
pub fn owner_proof(
    seed: &[u8; 32],
    group: &[u8; 32],
    chain: &[u8; 32],
    owner: &[u8; 32],
) -> [u8; 64] {
    sign(seed, &owner_proof_data(group, chain, owner))
}

/// What an owner signature covers (§15.6).
pub fn owner_signature_data(group: &[u8; 32], chain: &[u8; 32]) -> Vec<u8> {
    let mut d = L_OWNER_SIGNATURE.as_bytes().to_vec();
    d.extend(group);
    d.extend(chain);
    d
}

/// `owner_signature = Sign(IK_owner_seed, ...)`.
pub fn owner_signature(identity_seed: &[u8; 32], group: &[u8; 32], chain: &[u8; 32]) -> [u8; 64] {
    sign(identity_seed, &owner_signature_data(group, chain))
}

/// A decoded SenderKeyDistribution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dist {
    /// The group id.
    pub group: [u8; 32],
    /// The chain's public key.
    pub chain: [u8; 32],
    /// The owner's identity key.
    pub owner: [u8; 32],
    /// The owner proof.
    pub proof: [u8; 64],
    /// The owner signature.
    pub signature: [u8; 64],
    /// The sender's next index.
    pub index: u32,
    /// R_0 .. R_7 at that index.
    pub levels: Levels,
}

impl Dist {
    /// The encoding (§15.6).
    pub fn encoded(&self) -> Vec<u8> {
        let mut out = vec![VERSION, 0x04];
        out.extend(self.group);
        out.extend(self.chain);
        out.extend(self.owner);
        out.extend(self.proof);
        out.extend(self.signature);
        out.extend(self.index.to_be_bytes());
        out.extend(flat(&self.levels));
        out
    }

    /// Every field, for the vectors.
    pub fn json(&self) -> serde_json::Value {
        use crate::hex::hex;
        serde_json::json!({
            "group_id": hex(&self.group), "chain": hex(&self.chain), "owner": hex(&self.owner),
            "owner_proof": hex(&self.proof),
            "owner_proof_data": hex(&owner_proof_data(&self.group, &self.chain, &self.owner)),
            "owner_signature": hex(&self.signature),
            "owner_signature_data": hex(&owner_signature_data(&self.group, &self.chain)),
            "index": self.index, "levels": super::ratchet::levels_json(&self.levels),
        })
    }

    /// Verifies the owner proof, then the owner signature (§15.7).
    ///
    /// # Errors
    ///
    /// `InvalidSignature`.
    pub fn verify_proof(&self) -> Result<(), Refusal> {
        verify(
            &self.chain,
            &owner_proof_data(&self.group, &self.chain, &self.owner),
            &self.proof,
        )?;
        verify(
            &self.owner,
            &owner_signature_data(&self.group, &self.chain),
            &self.signature,
        )
    }
}

/// Decodes a distribution (§15.6).
///
/// # Errors
///
/// The model's refusal: the SPEC.md error of the first check the input
/// fails, in the order SPEC.md fixes.
pub fn read_distribution(b: &[u8]) -> Result<(Dist, Layout), Refusal> {
    let mut r = Reader::header(b, 0x04)?;
    let group = r.a32("group_id")?;
    let chain = r.ed("chain")?;
    let owner = r.ed("owner")?;
    let proof = r.take("owner_proof", 64)?.try_into().expect("64");
    let signature = r.take("owner_signature", 64)?.try_into().expect("64");
    let index = r.u32("index")?;
    let levels = split_levels(r.take("levels", 256)?);
    r.end()?;
    let d = Dist {
        group,
        chain,
        owner,
        proof,
        signature,
        index,
        levels,
    };
    Ok((d, r.into_layout()))
}
