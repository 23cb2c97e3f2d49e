//! §16.10: the frame of every plaintext the layer sends in a pairwise
//! session, and the retry hint.

use serde_json::{Value, json};

use crate::hex::hex;
use crate::model::codec::Reader;
use crate::model::error::{Refusal, refusal};
use crate::model::group::read_distribution;
use crate::model::keys::identity_key_bytes;
use crate::model::wire::WireMessage;

/// Frame kind of an application payload.
pub const KIND_PAYLOAD: u8 = 0x01;
/// Frame kind of a sender key distribution.
pub const KIND_DISTRIBUTION: u8 = 0x02;
/// Frame kind of a retry request.
pub const KIND_RETRY_REQUEST: u8 = 0x03;
/// Frame kind of a distribution request.
pub const KIND_DISTRIBUTION_REQUEST: u8 = 0x04;

/// A retry hint: names one message (§16.10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hint {
    /// The (embedded) ratchet message's ratchet key.
    pub ratchet_key: [u8; 32],
    /// Its message number.
    pub n: u32,
    /// For a prekey message, its base key.
    pub base_key: Option<[u8; 32]>,
}

impl Hint {
    /// The hint naming a parsed message.
    pub fn of(m: &WireMessage) -> Self {
        Self {
            ratchet_key: m.header.ratchet_key,
            n: m.header.n,
            base_key: m.prekey.as_ref().map(|p| p.base_key),
        }
    }

    /// `ratchet_key || u32(n) || has_base_key || [base_key]`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.ratchet_key.to_vec();
        out.extend(self.n.to_be_bytes());
        out.push(u8::from(self.base_key.is_some()));
        if let Some(b) = self.base_key {
            out.extend(b);
        }
        out
    }

    /// Reads a hint's fields (both keys canonical X25519 encodings).
    ///
    /// # Errors
    ///
    /// `Truncated`, `InvalidPublicKey`, `InvalidEncoding` (the flag).
    pub fn read(r: &mut Reader<'_>) -> Result<Self, Refusal> {
        let ratchet_key = r.x("ratchet_key")?;
        let n = r.u32("message_number")?;
        let base_key = if r.flag("has_base_key")? {
            Some(r.x("base_key")?)
        } else {
            None
        };
        Ok(Self {
            ratchet_key,
            n,
            base_key,
        })
    }

    /// As the vectors spell it.
    pub fn json(&self) -> Value {
        json!({
            "ratchet_key": hex(&self.ratchet_key), "message_number": self.n,
            "base_key": self.base_key.map(|b| hex(&b)),
        })
    }

    /// From the vectors' spelling.
    ///
    /// # Errors
    ///
    /// A message naming the field.
    pub fn from_json(v: &Value) -> Result<Self, String> {
        use crate::vectors::json::{b32, opt_b, u32_of};
        Ok(Self {
            ratchet_key: b32(v, "ratchet_key")?,
            n: u32_of(v, "message_number")?,
            base_key: opt_b(v, "base_key")?
                .map(|b| b.try_into().map_err(|_| "base_key is not 32 bytes"))
                .transpose()?,
        })
    }
}

/// What a decrypted frame carried (§16.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    /// An application payload and the sender's trusted identity.
    Payload(Vec<u8>, [u8; 32]),
    /// A distribution (its bytes and group) and the identity of the session
    /// that delivered it.
    Distribution(Vec<u8>, [u8; 32], [u8; 32]),
    /// A retry request.
    RetryRequest(Hint),
    /// A distribution request for a group.
    DistributionRequest([u8; 32]),
}

impl Content {
    /// As the vectors spell it (a distribution: its group and sender; its
    /// bytes are what a later install pins).
    pub fn json(&self) -> Value {
        match self {
            Self::Payload(p, sender) => json!({
                "kind": "payload", "payload": hex(p), "sender": hex(&identity_key_bytes(sender)),
            }),
            Self::Distribution(_, group, sender) => json!({
                "kind": "distribution", "group_id": hex(group),
                "sender": hex(&identity_key_bytes(sender)),
            }),
            Self::RetryRequest(h) => json!({ "kind": "retry_request", "hint": h.json() }),
            Self::DistributionRequest(g) => {
                json!({ "kind": "distribution_request", "group_id": hex(g) })
            }
        }
    }
}

/// `u8(kind) || body`.
pub fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend(body);
    out
}

/// Parses a plaintext's frame; `sender` is the identity of the session it
/// came out of.
///
/// # Errors
///
/// `InvalidEncoding` for anything §16.10 calls malformed.
pub fn parse(pt: &[u8], sender: &[u8; 32]) -> Result<Content, Refusal> {
    let bad = || refusal("InvalidEncoding");
    let (&kind, body) = pt.split_first().ok_or_else(bad)?;
    match kind {
        KIND_PAYLOAD => Ok(Content::Payload(body.to_vec(), *sender)),
        KIND_DISTRIBUTION => {
            let (d, _) = read_distribution(body).map_err(|_| bad())?;
            Ok(Content::Distribution(body.to_vec(), d.group, *sender))
        }
        KIND_RETRY_REQUEST => {
            let mut r = Reader::new(body);
            let h = Hint::read(&mut r).map_err(|_| bad())?;
            r.end().map_err(|_| bad())?;
            Ok(Content::RetryRequest(h))
        }
        KIND_DISTRIBUTION_REQUEST => {
            let g: [u8; 32] = body.try_into().map_err(|_| bad())?;
            Ok(Content::DistributionRequest(g))
        }
        _ => Err(bad()),
    }
}
