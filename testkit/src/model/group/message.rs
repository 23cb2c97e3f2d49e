//! SPEC.md §15.5 (GroupMessage) and §15.6 (SenderKeyDistribution).

use super::ratchet::{Levels, split_levels};
use crate::model::codec::{Layout, Reader};
use crate::model::error::{Refusal, refusal};
use crate::model::primitives::MAX_PLAINTEXT;

/// §15.2 AEAD key and nonce label.
pub const L_MESSAGE_KEYS: &str = "sotto v1 group message keys";
/// §15.2 signature label.
pub const L_SIGNATURE: &str = "sotto v1 group signature";
/// Header length (version, type, group id, chain id, index, salt).
pub const HEADER_LEN: usize = 58;
/// Signature length.
pub const SIGNATURE_LEN: usize = 64;
/// Length of a message with an empty plaintext.
pub const OVERHEAD: usize = HEADER_LEN + 16 + SIGNATURE_LEN;
/// §15.10 `MAX_GROUP_MESSAGE_LEN`.
pub const MAX_MESSAGE: usize = OVERHEAD + MAX_PLAINTEXT;

/// A decoded GroupMessage header.
#[derive(Clone, Debug)]
pub struct MsgHeader {
    /// The group id.
    pub group: [u8; 32],
    /// The chain id.
    pub chain_id: u32,
    /// The index.
    pub index: u32,
    /// The salt.
    pub salt: [u8; 16],
}

/// Decodes a group message (§15.5): `TooLarge`, version and type, then
/// `Truncated` below 138 bytes.
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
    if b.len() < OVERHEAD {
        return Err(refusal("Truncated"));
    }
    let group = r.a32("group_id")?;
    let chain_id = r.u32("chain_id")?;
    let index = r.u32("index")?;
    let salt = r.take("salt", 16)?.try_into().expect("16");
    let body = r.remaining() - 16 - SIGNATURE_LEN;
    r.take("ciphertext", body)?;
    r.take("tag", 16)?;
    r.take("signature", SIGNATURE_LEN)?;
    let header = MsgHeader {
        group,
        chain_id,
        index,
        salt,
    };
    Ok((header, r.into_layout()))
}

/// Decodes a group message header.
///
/// # Errors
///
/// The model's refusal: the SPEC.md error of the first check the input
/// fails, in the order SPEC.md fixes.
pub fn parse_message(b: &[u8]) -> Result<MsgHeader, Refusal> {
    read_message(b).map(|(h, _)| h)
}

/// What the signature covers: the label and every byte before it.
pub fn signed_data(unsigned: &[u8]) -> Vec<u8> {
    let mut d = L_SIGNATURE.as_bytes().to_vec();
    d.extend(unsigned);
    d
}

/// A message without its signature.
pub fn unsigned(message: &[u8]) -> &[u8] {
    &message[..message.len() - SIGNATURE_LEN]
}

/// A decoded SenderKeyDistribution.
#[derive(Clone, Debug)]
pub struct Dist {
    /// The group id.
    pub group: [u8; 32],
    /// The chain id.
    pub chain_id: u32,
    /// The sender's next index.
    pub index: u32,
    /// R_0 .. R_7 at that index.
    pub levels: Levels,
    /// The chain's Ed25519 public key.
    pub signing: [u8; 32],
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
    let chain_id = r.u32("chain_id")?;
    let index = r.u32("index")?;
    let levels = split_levels(r.take("levels", 256)?);
    let signing = r.ed("signing_key")?;
    r.end()?;
    let d = Dist {
        group,
        chain_id,
        index,
        levels,
        signing,
    };
    Ok((d, r.into_layout()))
}

/// Decodes a distribution.
///
/// # Errors
///
/// The model's refusal: the SPEC.md error of the first check the input
/// fails, in the order SPEC.md fixes.
pub fn parse_distribution(b: &[u8]) -> Result<Dist, Refusal> {
    read_distribution(b).map(|(d, _)| d)
}
