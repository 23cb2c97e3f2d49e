//! The layer's framing inside pairwise sessions (SPEC.md §16.10): every
//! plaintext is one kind byte and a body, so that an application message, a
//! sender key distribution and a retry request can never be taken for one
//! another.

use core::fmt;
use core::ops::Deref;

use super::address::DeviceId;
use crate::codec::{Codec, Reader, Sink};
use crate::crypto;
use crate::error::{Error, Result};
use crate::group::{GroupId, SenderKeyDistribution};
use crate::keys::IdentityKey;
use crate::ratchet::Plaintext;
use crate::wire::Message;

/// Kind byte of an application payload.
pub(crate) const KIND_PAYLOAD: u8 = 0x01;
/// Kind byte of a sender key distribution (§15.6).
pub(crate) const KIND_DISTRIBUTION: u8 = 0x02;
/// Kind byte of a retry request.
pub(crate) const KIND_RETRY_REQUEST: u8 = 0x03;
/// Kind byte of a distribution request.
pub(crate) const KIND_DISTRIBUTION_REQUEST: u8 = 0x04;

/// Length of a retry request's body without and with a base key.
pub(crate) const RETRY_HINT_LEN: usize = 32 + 4 + 1;
const RETRY_HINT_MAX_LEN: usize = RETRY_HINT_LEN + 32;

/// Names a message that could not be decrypted (SPEC §16.6): its ratchet
/// key and message number, and for a prekey message its base key. The peer
/// that receives it in a retry request resends what it sent under that
/// name; if the base key is its active session's, that session is one the
/// requester does not have.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct RetryHint {
    /// The message's ratchet key (of the embedded ratchet message for a
    /// prekey message).
    pub ratchet_key: [u8; 32],
    /// Its message number.
    pub message_number: u32,
    /// For a prekey message, its base key.
    pub base_key: Option<[u8; 32]>,
}

impl RetryHint {
    /// The hint that names `message`.
    pub fn for_message(message: &Message) -> Self {
        match message {
            Message::PreKey(m) => Self {
                ratchet_key: m.ratchet_key_bytes(),
                message_number: m.message_number(),
                base_key: Some(m.base_key_bytes()),
            },
            Message::Ratchet(m) => Self {
                ratchet_key: m.ratchet_key_bytes(),
                message_number: m.message_number(),
                base_key: None,
            },
        }
    }

    /// Whether this hint names `message` (what an application checks
    /// against the messages it sent, to find the one to resend).
    pub fn matches(&self, message: &Message) -> bool {
        *self == Self::for_message(message)
    }
}

/// `ratchet_key (32) || u32(message_number) || has_base_key || [base_key
/// (32)]`; both keys canonical X25519 encodings.
impl Codec for RetryHint {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.ratchet_key.encode(out);
        self.message_number.encode(out);
        out.put(&[u8::from(self.base_key.is_some())]);
        if let Some(base_key) = &self.base_key {
            base_key.encode(out);
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let ratchet_key = canonical(r)?;
        let message_number = r.u32()?;
        let base_key = if r.flag()? { Some(canonical(r)?) } else { None };
        Ok(Self {
            ratchet_key,
            message_number,
            base_key,
        })
    }
}

fn canonical(r: &mut Reader<'_>) -> Result<[u8; 32]> {
    let key: [u8; 32] = r.array()?;
    if !crypto::is_canonical_x25519(&key) {
        return Err(Error::InvalidPublicKey);
    }
    Ok(key)
}

/// A retry request's body (37 or 69 bytes).
pub(crate) fn retry_body(hint: &RetryHint) -> alloc::vec::Vec<u8> {
    let mut out = alloc::vec::Vec::with_capacity(RETRY_HINT_MAX_LEN);
    hint.encode(&mut out);
    out
}

/// What a plaintext's frame says, parsed strictly before the decrypt that
/// produced it commits (a malformed frame undoes the decrypt).
pub(crate) enum Frame {
    Payload,
    /// The group and the chain.
    Distribution(GroupId, [u8; 32]),
    RetryRequest(RetryHint),
    DistributionRequest(GroupId),
}

/// Parses the frame of a decrypted plaintext.
///
/// # Errors
///
/// [`Error::InvalidEncoding`] for anything that is not a frame of SPEC
/// §16.10, whatever the inner error (an unknown kind, a distribution that
/// does not parse, a retry request of the wrong length or with a
/// non-canonical key).
pub(crate) fn parse(plaintext: &[u8]) -> Result<Frame> {
    let (kind, body) = plaintext.split_first().ok_or(Error::InvalidEncoding)?;
    let frame = match *kind {
        KIND_PAYLOAD => Ok(Frame::Payload),
        KIND_DISTRIBUTION => SenderKeyDistribution::from_bytes(body)
            .map(|d| Frame::Distribution(*d.group_id(), *d.chain().as_bytes())),
        KIND_RETRY_REQUEST => {
            let mut r = Reader::new(body);
            RetryHint::decode(&mut r).and_then(|hint| {
                r.finish()?;
                Ok(Frame::RetryRequest(hint))
            })
        }
        KIND_DISTRIBUTION_REQUEST => <[u8; 32]>::try_from(body)
            .map(|id| Frame::DistributionRequest(GroupId::from_bytes(id)))
            .map_err(|_| Error::InvalidEncoding),
        _ => Err(Error::InvalidEncoding),
    };
    frame.map_err(|_| Error::InvalidEncoding)
}

/// A message that decrypted, from `device` of the record's user.
#[derive(Debug)]
pub struct Received {
    pub(crate) device: DeviceId,
    pub(crate) content: Content,
}

impl Received {
    pub(crate) fn new(device: DeviceId, frame: Frame, plaintext: Plaintext) -> Self {
        let content = match frame {
            Frame::Payload => Content::Payload(Payload(plaintext)),
            Frame::Distribution(group_id, chain) => Content::Distribution(Distribution {
                group_id,
                chain,
                plaintext,
            }),
            Frame::RetryRequest(hint) => Content::RetryRequest(hint),
            Frame::DistributionRequest(group_id) => Content::DistributionRequest(group_id),
        };
        Self { device, content }
    }

    /// The device it came from.
    pub fn device(&self) -> DeviceId {
        self.device
    }

    /// What it carried.
    pub fn content(&self) -> &Content {
        &self.content
    }

    /// What it carried, by value.
    pub fn into_content(self) -> Content {
        self.content
    }
}

/// What a decrypted message carried (SPEC §16.10).
#[derive(Debug)]
pub enum Content {
    /// An application payload.
    Payload(Payload),
    /// A sender key distribution for a group: give it to that group's
    /// [`GroupSession::install`](super::GroupSession::install).
    Distribution(Distribution),
    /// The peer could not decrypt the message this hint names: resend it
    /// (with [`PeerRecord::encrypt_to`](super::PeerRecord::encrypt_to)), if
    /// the application still has it.
    RetryRequest(RetryHint),
    /// The peer asks for the local device's current distribution of this
    /// group: answer with
    /// [`GroupSession::distribute_to`](super::GroupSession::distribute_to)
    /// if the peer is a member.
    DistributionRequest(GroupId),
}

/// An application payload with its provenance: the identity of the device
/// whose session decrypted it. Dereferences to the payload bytes, held in
/// memory zeroized on drop.
pub struct Payload(Plaintext);

impl Payload {
    /// The identity of the device that sent it (its trusted identity).
    pub fn sender(&self) -> &IdentityKey {
        self.0.sender()
    }

    /// The payload bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes().get(1..).unwrap_or_default()
    }
}

impl Deref for Payload {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Payload")
            .field("sender", self.sender())
            .field("len", &self.as_bytes().len())
            .finish()
    }
}

/// A sender key distribution that arrived over a session, not yet installed.
/// Never printed.
pub struct Distribution {
    group_id: GroupId,
    chain: [u8; 32],
    plaintext: Plaintext,
}

impl Distribution {
    /// The group it is for.
    pub fn group_id(&self) -> &GroupId {
        &self.group_id
    }

    /// The identity of the device whose session delivered it.
    pub fn sender(&self) -> &IdentityKey {
        self.plaintext.sender()
    }

    /// The chain it hands out (its id's 32 bytes).
    pub(crate) fn chain(&self) -> &[u8; 32] {
        &self.chain
    }

    /// The distribution's encoding (§15.6), without the frame byte.
    pub(crate) fn body(&self) -> &[u8] {
        self.plaintext.as_bytes().get(1..).unwrap_or_default()
    }
}

impl fmt::Debug for Distribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Distribution")
            .field("group_id", &self.group_id)
            .field("sender", self.sender())
            .finish_non_exhaustive()
    }
}
