//! SPEC.md §9: ratchet messages (type 0x01) and prekey messages (type
//! 0x02), decoded in the order §4 and §9 fix, and built.

use super::codec::{Layout, Reader};
use super::error::{Refusal, refusal, refusal_with};
use super::primitives::{CT_LEN, MAX_MESSAGE, MAX_PLAINTEXT, VERSION};

/// Length of a ratchet message header (version, type, K, PN, N, salt).
pub const RATCHET_HEADER_LEN: usize = 58;
/// Length of the AEAD tag.
pub const TAG_LEN: usize = 16;

/// The header of a ratchet message (§9.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RatchetHeader {
    /// K: the sender's ratchet public key.
    pub ratchet_key: [u8; 32],
    /// PN: length of the sender's previous sending chain.
    pub pn: u32,
    /// N: the message number.
    pub n: u32,
    /// The per-message salt.
    pub salt: [u8; 16],
}

impl RatchetHeader {
    /// The 58 header bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut h = vec![VERSION, 0x01];
        h.extend(self.ratchet_key);
        h.extend(self.pn.to_be_bytes());
        h.extend(self.n.to_be_bytes());
        h.extend(self.salt);
        h
    }
}

/// The prekey header of a prekey message (§9.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreKeyHeader {
    /// IK_A: the initiator's identity key.
    pub identity: [u8; 32],
    /// EK.pub: the base key.
    pub base_key: [u8; 32],
    /// The signed prekey id.
    pub spk_id: u32,
    /// The one-time prekey id, if any.
    pub opk_id: Option<u32>,
    /// The KEM prekey id and ciphertext, if any.
    pub kem: Option<(u32, Vec<u8>)>,
}

impl PreKeyHeader {
    /// The 72, 76, 1644 or 1648 prekey header bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![VERSION, 0x02];
        out.extend(self.identity);
        out.extend(self.base_key);
        out.extend(self.spk_id.to_be_bytes());
        out.push(u8::from(self.opk_id.is_some()));
        if let Some(id) = self.opk_id {
            out.extend(id.to_be_bytes());
        }
        out.push(u8::from(self.kem.is_some()));
        if let Some((id, ct)) = &self.kem {
            out.extend(id.to_be_bytes());
            out.extend(ct);
        }
        out
    }
}

/// A decoded message of either kind.
#[derive(Clone, Debug)]
pub struct WireMessage {
    /// The prekey header, for a prekey message.
    pub prekey: Option<PreKeyHeader>,
    /// The (embedded) ratchet message's header.
    pub header: RatchetHeader,
    /// Every byte before the ciphertext (§8.4): the prekey header, if any,
    /// then the ratchet header.
    pub prefix: Vec<u8>,
    /// Ciphertext and tag.
    pub ciphertext: Vec<u8>,
}

/// Decodes a message (§4, §9): `TooLarge`, the version, then a dispatch on
/// byte 1. Fields of a prekey message's embedded ratchet message are named
/// `ratchet.*` in the layout.
///
/// # Errors
///
/// The model's refusal: the SPEC.md error of the first check the input
/// fails, in the order SPEC.md fixes.
pub fn read_message(b: &[u8]) -> Result<(WireMessage, Layout), Refusal> {
    if b.len() > MAX_MESSAGE {
        return Err(refusal("TooLarge"));
    }
    let mut r = Reader::new(b);
    let v = r.u8("version")?;
    if v != VERSION {
        return Err(refusal_with(
            "UnsupportedVersion",
            serde_json::json!({ "found": v }),
        ));
    }
    let ty = r.u8("type")?;
    let prekey = match ty {
        0x02 => {
            let identity = r.ik("identity")?;
            let base_key = r.x("base_key")?;
            let spk_id = r.u32("spk_id")?;
            let opk_id = if r.flag("has_opk")? {
                Some(r.u32("opk_id")?)
            } else {
                None
            };
            let kem = if r.flag("has_kem")? {
                Some((r.u32("kem_id")?, r.take("ct", CT_LEN)?.to_vec()))
            } else {
                None
            };
            r.enter("ratchet");
            r.version_and_type(0x01)?;
            Some(PreKeyHeader {
                identity,
                base_key,
                spk_id,
                opk_id,
                kem,
            })
        }
        0x01 => None,
        found => {
            return Err(refusal_with(
                "WrongType",
                serde_json::json!({ "expected": 1, "found": found }),
            ));
        }
    };
    let ratchet_key = r.x("ratchet_key")?;
    let pn = r.u32("pn")?;
    let n = r.u32("n")?;
    let salt = r.take("salt", 16)?.try_into().expect("16");
    if r.remaining() < TAG_LEN {
        return Err(refusal("Truncated"));
    }
    if r.remaining() > MAX_PLAINTEXT + TAG_LEN {
        return Err(refusal("TooLarge"));
    }
    let prefix_len = b.len() - r.remaining();
    let ciphertext = r.rest("ciphertext").to_vec();
    if prekey.is_some() {
        r.leave();
    }
    let message = WireMessage {
        prekey,
        header: RatchetHeader {
            ratchet_key,
            pn,
            n,
            salt,
        },
        prefix: b[..prefix_len].to_vec(),
        ciphertext,
    };
    Ok((message, r.into_layout()))
}

/// The layout of a message's ratchet part, named as in a ratchet message
/// (`version`, `type`, `ratchet_key`, `pn`, `n`, `salt`, `ciphertext`) with
/// offsets into the whole message, for either kind of message.
pub fn ratchet_part(layout: &Layout) -> Layout {
    let inner = layout.scoped("ratchet.");
    if inner.is_empty() {
        layout.clone()
    } else {
        inner
    }
}

/// A ratchet message with the given header, a zero salt and an empty
/// ciphertext with a zero tag (which no key opens).
pub fn ratchet_message(key: &[u8; 32], pn: u32, n: u32) -> Vec<u8> {
    let mut b = RatchetHeader {
        ratchet_key: *key,
        pn,
        n,
        salt: [0; 16],
    }
    .encode();
    b.extend([0u8; TAG_LEN]);
    b
}
