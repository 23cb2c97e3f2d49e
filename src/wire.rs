//! Pairwise messages on the wire: ratchet messages and prekey messages.
//!
//! ```text
//! RatchetMessage = version(1) type=0x01 ratchet_key(32) previous_chain_length(u32)
//!                  message_number(u32) salt(16) ciphertext(n) tag(16)
//! PreKeyMessage  = version(1) type=0x02 identity(64) base_key(32) signed_prekey_id(u32)
//!                  has_one_time(0|1) [one_time_prekey_id(u32)] RatchetMessage
//! ```

use alloc::vec::Vec;

use x25519_dalek::PublicKey;

use crate::codec::{Reader, tag};
use crate::crypto::{self, AEAD_TAG_LEN};
use crate::error::{Error, Result};
use crate::keys::{IDENTITY_KEY_LEN, IdentityKey};

/// Largest plaintext one message may carry: 256 KiB. Larger payloads
/// (attachments) belong in a separately encrypted blob whose key travels in a
/// message.
pub const MAX_PLAINTEXT_LEN: usize = 256 * 1024;

/// Length of the per-message random salt.
pub(crate) const SALT_LEN: usize = 16;

/// Length of a ratchet message up to the ciphertext.
pub(crate) const RATCHET_HEADER_LEN: usize = 2 + 32 + 4 + 4 + SALT_LEN;

/// Longest prekey header (with a one-time prekey id), before the ratchet message.
pub(crate) const PREKEY_HEADER_MAX_LEN: usize = 2 + IDENTITY_KEY_LEN + 32 + 4 + 1 + 4;

/// Largest encoded message of either kind. Longer input is rejected before it
/// is parsed.
pub const MAX_MESSAGE_LEN: usize =
    PREKEY_HEADER_MAX_LEN + RATCHET_HEADER_LEN + MAX_PLAINTEXT_LEN + AEAD_TAG_LEN;

/// The parsed header of a ratchet message.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct RatchetHeader {
    pub(crate) ratchet_key: PublicKey,
    pub(crate) previous_chain_length: u32,
    pub(crate) message_number: u32,
    pub(crate) salt: [u8; SALT_LEN],
}

impl RatchetHeader {
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.push(crate::codec::VERSION);
        out.push(tag::RATCHET_MESSAGE);
        out.extend_from_slice(self.ratchet_key.as_bytes());
        out.extend_from_slice(&self.previous_chain_length.to_be_bytes());
        out.extend_from_slice(&self.message_number.to_be_bytes());
        out.extend_from_slice(&self.salt);
    }

    /// Parses a ratchet message's header and checks the ciphertext length.
    fn parse(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::header(bytes, tag::RATCHET_MESSAGE)?;
        let ratchet_key = crypto::x25519_public(r.array()?)?;
        let previous_chain_length = r.u32()?;
        let message_number = r.u32()?;
        let salt = r.array()?;
        let body = r.rest();
        if body.len() < AEAD_TAG_LEN {
            return Err(Error::Truncated);
        }
        if body.len() - AEAD_TAG_LEN > MAX_PLAINTEXT_LEN {
            return Err(Error::TooLarge);
        }
        Ok(Self {
            ratchet_key,
            previous_chain_length,
            message_number,
            salt,
        })
    }
}

/// A message inside an established session. Holds its encoded bytes.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RatchetMessage {
    bytes: Vec<u8>,
    header: RatchetHeader,
}

impl RatchetMessage {
    pub(crate) fn from_encoded(bytes: Vec<u8>, header: RatchetHeader) -> Self {
        Self { bytes, header }
    }

    /// Parses strictly, taking ownership of the buffer.
    pub fn from_vec(bytes: Vec<u8>) -> Result<Self> {
        if bytes.len() > MAX_MESSAGE_LEN {
            return Err(Error::TooLarge);
        }
        let header = RatchetHeader::parse(&bytes)?;
        Ok(Self { bytes, header })
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The sender's ratchet public key.
    pub fn ratchet_key_bytes(&self) -> [u8; 32] {
        self.header().ratchet_key.to_bytes()
    }

    /// Number of messages in the sender's previous sending chain.
    pub fn previous_chain_length(&self) -> u32 {
        self.header().previous_chain_length
    }

    /// This message's number in its sending chain.
    pub fn message_number(&self) -> u32 {
        self.header().message_number
    }

    pub(crate) fn header(&self) -> &RatchetHeader {
        &self.header
    }

    /// The header bytes (the AEAD associated data after the session's) and
    /// the ciphertext with its tag.
    pub(crate) fn parts(&self) -> (&[u8], &[u8]) {
        self.bytes
            .split_at(RATCHET_HEADER_LEN.min(self.bytes.len()))
    }
}

/// The prekey header an initiator puts before its messages until the first
/// reply arrives.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct PreKeyHeader {
    pub(crate) identity: IdentityKey,
    pub(crate) base_key: [u8; 32],
    pub(crate) signed_prekey_id: u32,
    pub(crate) one_time_prekey_id: Option<u32>,
}

impl PreKeyHeader {
    pub(crate) fn encoded_len(&self) -> usize {
        if self.one_time_prekey_id.is_some() {
            PREKEY_HEADER_MAX_LEN
        } else {
            PREKEY_HEADER_MAX_LEN - 4
        }
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.push(crate::codec::VERSION);
        out.push(tag::PREKEY_MESSAGE);
        self.identity.write(out);
        out.extend_from_slice(&self.base_key);
        out.extend_from_slice(&self.signed_prekey_id.to_be_bytes());
        crate::codec::write_flag(out, self.one_time_prekey_id.is_some());
        if let Some(id) = self.one_time_prekey_id {
            out.extend_from_slice(&id.to_be_bytes());
        }
    }
}

/// The first messages of a session, from initiator to responder: the X3DH
/// header followed by a ratchet message.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PreKeyMessage {
    bytes: Vec<u8>,
    header: PreKeyHeader,
    base_key: PublicKey,
    inner_offset: usize,
    inner_header: RatchetHeader,
}

impl PreKeyMessage {
    pub(crate) fn from_encoded(
        bytes: Vec<u8>,
        header: PreKeyHeader,
        inner_header: RatchetHeader,
    ) -> Self {
        let inner_offset = header.encoded_len();
        Self {
            bytes,
            base_key: PublicKey::from(header.base_key),
            header,
            inner_offset,
            inner_header,
        }
    }

    /// Parses strictly, taking ownership of the buffer.
    pub fn from_vec(bytes: Vec<u8>) -> Result<Self> {
        if bytes.len() > MAX_MESSAGE_LEN {
            return Err(Error::TooLarge);
        }
        let mut r = Reader::header(&bytes, tag::PREKEY_MESSAGE)?;
        let identity = IdentityKey::read(&mut r)?;
        let base_key = crypto::x25519_public(r.array()?)?;
        let signed_prekey_id = r.u32()?;
        let one_time_prekey_id = if r.flag()? { Some(r.u32()?) } else { None };
        let inner = r.rest();
        let inner_header = RatchetHeader::parse(inner)?;
        let inner_offset = bytes.len() - inner.len();
        let header = PreKeyHeader {
            identity,
            base_key: base_key.to_bytes(),
            signed_prekey_id,
            one_time_prekey_id,
        };
        Ok(Self {
            bytes,
            header,
            base_key,
            inner_offset,
            inner_header,
        })
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The initiator's identity key.
    pub fn identity(&self) -> &IdentityKey {
        &self.header.identity
    }

    /// The initiator's ephemeral (base) key, which names the session.
    pub fn base_key_bytes(&self) -> [u8; 32] {
        self.header.base_key
    }

    /// The responder's signed prekey this message used.
    pub fn signed_prekey_id(&self) -> u32 {
        self.header.signed_prekey_id
    }

    /// The responder's one-time prekey this message used, if any.
    pub fn one_time_prekey_id(&self) -> Option<u32> {
        self.header.one_time_prekey_id
    }

    /// The initiator's ratchet public key (of the embedded ratchet message).
    pub fn ratchet_key_bytes(&self) -> [u8; 32] {
        self.inner_header.ratchet_key.to_bytes()
    }

    /// The embedded ratchet message's number in the initiator's first chain.
    pub fn message_number(&self) -> u32 {
        self.inner_header.message_number
    }

    pub(crate) fn prekey_header(&self) -> &PreKeyHeader {
        &self.header
    }

    pub(crate) fn base_key(&self) -> &PublicKey {
        &self.base_key
    }

    pub(crate) fn inner_header(&self) -> &RatchetHeader {
        &self.inner_header
    }

    /// Every byte before the ciphertext (prekey header and ratchet header),
    /// which the AEAD authenticates, and the ciphertext with its tag.
    pub(crate) fn parts(&self) -> (&[u8], &[u8]) {
        let prefix = self.inner_offset + RATCHET_HEADER_LEN;
        self.bytes.split_at(prefix.min(self.bytes.len()))
    }
}

/// Any pairwise message.
// Prekey messages are the rare first ones; boxing them would add an
// allocation to each.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Message {
    /// Starts a session (and repeats its X3DH header until the first reply).
    PreKey(PreKeyMessage),
    /// A message in an established session.
    Ratchet(RatchetMessage),
}

impl Message {
    /// Parses either kind strictly, dispatching on the type tag.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_MESSAGE_LEN {
            return Err(Error::TooLarge);
        }
        Self::from_vec(bytes.to_vec())
    }

    /// Parses either kind strictly, taking ownership of the buffer (no copy).
    pub fn from_vec(bytes: Vec<u8>) -> Result<Self> {
        match bytes.get(1) {
            Some(&tag::PREKEY_MESSAGE) => PreKeyMessage::from_vec(bytes).map(Self::PreKey),
            Some(&tag::RATCHET_MESSAGE) | None => {
                RatchetMessage::from_vec(bytes).map(Self::Ratchet)
            }
            Some(&found) => {
                // Report a bad version before a bad type.
                Reader::header(&bytes, tag::RATCHET_MESSAGE)?;
                Err(Error::WrongType {
                    expected: tag::RATCHET_MESSAGE,
                    found,
                })
            }
        }
    }

    /// The encoded bytes, to send.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::PreKey(m) => m.as_bytes(),
            Self::Ratchet(m) => m.as_bytes(),
        }
    }

    /// The encoded bytes, to send, without a copy.
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Self::PreKey(m) => m.bytes,
            Self::Ratchet(m) => m.bytes,
        }
    }
}
