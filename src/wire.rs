//! Pairwise messages on the wire: ratchet messages and prekey messages
//! (SPEC.md §9; their limits in §8.7).
//!
//! ```text
//! RatchetMessage = version(1) type=0x01 ratchet_key(32) previous_chain_length(u32)
//!                  message_number(u32) salt(16) ciphertext(n) tag(16)
//! PreKeyMessage  = version(1) type=0x02 identity(32) base_key(32) signed_prekey_id(u32)
//!                  has_one_time(0|1) [one_time_prekey_id(u32)]
//!                  has_kem(0|1) [kem_prekey_id(u32) kem_ciphertext(1568)] RatchetMessage
//! ```

use alloc::boxed::Box;
use alloc::vec::Vec;

use x25519_dalek::PublicKey;

use crate::codec::{self, Codec, Reader, Sink, tag, write_header};
use crate::crypto::AEAD_TAG_LEN;
use crate::crypto::kem::CT_LEN;
use crate::error::{Error, Result};
use crate::keys::{IDENTITY_KEY_LEN, IdentityKey, RatchetPublicKey};

/// Largest plaintext one message may carry: 256 KiB. Larger payloads
/// (attachments) belong in a separately encrypted blob whose key travels in a
/// message.
pub const MAX_PLAINTEXT_LEN: usize = 256 * 1024;

/// Length of the per-message random salt.
pub(crate) const SALT_LEN: usize = 16;

/// Length of a ratchet message up to the ciphertext.
pub(crate) const RATCHET_HEADER_LEN: usize = 2 + 32 + 4 + 4 + SALT_LEN;

/// Longest prekey header (with a one-time prekey id and a KEM ciphertext),
/// before the ratchet message: 1648 bytes.
pub(crate) const PREKEY_HEADER_MAX_LEN: usize =
    2 + IDENTITY_KEY_LEN + 32 + 4 + 1 + 4 + 1 + 4 + CT_LEN;

/// Largest encoded message of either kind. Longer input is rejected before it
/// is parsed.
pub const MAX_MESSAGE_LEN: usize =
    PREKEY_HEADER_MAX_LEN + RATCHET_HEADER_LEN + MAX_PLAINTEXT_LEN + AEAD_TAG_LEN;

/// The header of a ratchet message: every byte before the ciphertext,
/// version and type included (SPEC §9.1).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct RatchetHeader {
    pub(crate) ratchet_key: RatchetPublicKey,
    pub(crate) previous_chain_length: u32,
    pub(crate) message_number: u32,
    pub(crate) salt: [u8; SALT_LEN],
}

impl Codec for RatchetHeader {
    fn encode<S: Sink>(&self, out: &mut S) {
        write_header(out, tag::RATCHET_MESSAGE);
        self.ratchet_key.encode(out);
        self.previous_chain_length.encode(out);
        self.message_number.encode(out);
        self.salt.encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        r.expect_header(tag::RATCHET_MESSAGE)?;
        let ratchet_key = RatchetPublicKey::decode(r)?;
        let previous_chain_length = u32::decode(r)?;
        let message_number = u32::decode(r)?;
        let salt = r.array()?;
        Ok(Self {
            ratchet_key,
            previous_chain_length,
            message_number,
            salt,
        })
    }
}

impl RatchetHeader {
    /// Parses a ratchet message's header and checks the ciphertext length.
    fn parse(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let header = Self::decode(&mut r)?;
        let body = r.rest();
        if body.len() < AEAD_TAG_LEN {
            return Err(Error::Truncated);
        }
        if body.len() - AEAD_TAG_LEN > MAX_PLAINTEXT_LEN {
            return Err(Error::TooLarge);
        }
        Ok(header)
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
    ///
    /// # Errors
    ///
    /// In this order (SPEC §9.1): [`Error::TooLarge`] for input longer than
    /// [`MAX_MESSAGE_LEN`]; [`Error::Truncated`],
    /// [`Error::UnsupportedVersion`], [`Error::WrongType`] or
    /// [`Error::InvalidPublicKey`] for the header; [`Error::Truncated`]
    /// without a full tag; [`Error::TooLarge`] for a ciphertext longer than
    /// [`MAX_PLAINTEXT_LEN`].
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

    /// The random salt the message keys were expanded with (SPEC §8.4).
    pub fn salt(&self) -> [u8; 16] {
        self.header().salt
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

/// The KEM prekey a PQXDH prekey message names and the ciphertext
/// encapsulated to it (SPEC §9.2).
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct KemCiphertext {
    pub(crate) kem_prekey_id: u32,
    pub(crate) ciphertext: Box<[u8; CT_LEN]>,
}

/// The KEM prekey id, then the ciphertext (every 1568 bytes are one).
impl Codec for KemCiphertext {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.kem_prekey_id.encode(out);
        self.ciphertext.encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let kem_prekey_id = u32::decode(r)?;
        let ciphertext = Box::<[u8; CT_LEN]>::decode(r)?;
        Ok(Self {
            kem_prekey_id,
            ciphertext,
        })
    }
}

/// The prekey header an initiator puts before its messages until the first
/// reply arrives (SPEC §9.2, up to the embedded ratchet message).
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct PreKeyHeader {
    pub(crate) identity: IdentityKey,
    pub(crate) base_key: PublicKey,
    pub(crate) signed_prekey_id: u32,
    pub(crate) one_time_prekey_id: Option<u32>,
    pub(crate) kem: Option<KemCiphertext>,
}

impl Codec for PreKeyHeader {
    fn encode<S: Sink>(&self, out: &mut S) {
        write_header(out, tag::PREKEY_MESSAGE);
        self.identity.encode(out);
        self.base_key.encode(out);
        self.signed_prekey_id.encode(out);
        self.one_time_prekey_id.encode(out);
        self.kem.encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        r.expect_header(tag::PREKEY_MESSAGE)?;
        let identity = IdentityKey::decode(r)?;
        let base_key = PublicKey::decode(r)?;
        let signed_prekey_id = u32::decode(r)?;
        let one_time_prekey_id = Option::<u32>::decode(r)?;
        let kem = Option::<KemCiphertext>::decode(r)?;
        Ok(Self {
            identity,
            base_key,
            signed_prekey_id,
            one_time_prekey_id,
            kem,
        })
    }
}

/// The first messages of a session, from initiator to responder: the X3DH
/// header followed by a ratchet message.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PreKeyMessage {
    bytes: Vec<u8>,
    header: PreKeyHeader,
    inner_offset: usize,
    inner_header: RatchetHeader,
}

impl PreKeyMessage {
    pub(crate) fn from_encoded(
        bytes: Vec<u8>,
        header: PreKeyHeader,
        inner_header: RatchetHeader,
    ) -> Self {
        Self {
            bytes,
            inner_offset: codec::encoded_len(&header),
            header,
            inner_header,
        }
    }

    /// Parses strictly, taking ownership of the buffer.
    ///
    /// # Errors
    ///
    /// In this order (SPEC §9.2): [`Error::TooLarge`] for input longer than
    /// [`MAX_MESSAGE_LEN`]; then field by field [`Error::Truncated`],
    /// [`Error::UnsupportedVersion`], [`Error::WrongType`],
    /// [`Error::InvalidPublicKey`] (identity or base key),
    /// [`Error::InvalidEncoding`] (the one-time prekey flag, then the KEM
    /// flag); then the embedded ratchet message's errors, as
    /// [`RatchetMessage::from_vec`].
    pub fn from_vec(bytes: Vec<u8>) -> Result<Self> {
        if bytes.len() > MAX_MESSAGE_LEN {
            return Err(Error::TooLarge);
        }
        let mut r = Reader::new(&bytes);
        let header = PreKeyHeader::decode(&mut r)?;
        let inner = r.rest();
        let inner_header = RatchetHeader::parse(inner)?;
        let inner_offset = bytes.len() - inner.len();
        Ok(Self {
            bytes,
            header,
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
        self.header.base_key.to_bytes()
    }

    /// The responder's signed prekey this message used.
    pub fn signed_prekey_id(&self) -> u32 {
        self.header.signed_prekey_id
    }

    /// The responder's one-time prekey this message used, if any.
    pub fn one_time_prekey_id(&self) -> Option<u32> {
        self.header.one_time_prekey_id
    }

    /// The responder's KEM prekey this message encapsulated to, if it is a
    /// PQXDH message.
    pub fn kem_prekey_id(&self) -> Option<u32> {
        self.header.kem.as_ref().map(|kem| kem.kem_prekey_id)
    }

    /// The ML-KEM-1024 ciphertext, if it is a PQXDH message.
    pub fn kem_ciphertext(&self) -> Option<&[u8; CT_LEN]> {
        self.header.kem.as_ref().map(|kem| &*kem.ciphertext)
    }

    /// The initiator's ratchet public key (of the embedded ratchet message).
    pub fn ratchet_key_bytes(&self) -> [u8; 32] {
        self.inner_header.ratchet_key.to_bytes()
    }

    /// The embedded ratchet message's previous chain length (PN): 0 on the
    /// initiator's first sending chain, which every prekey message is on.
    pub fn previous_chain_length(&self) -> u32 {
        self.inner_header.previous_chain_length
    }

    /// The embedded ratchet message's number in the initiator's first chain.
    pub fn message_number(&self) -> u32 {
        self.inner_header.message_number
    }

    /// The embedded ratchet message's random salt (SPEC §8.4).
    pub fn salt(&self) -> [u8; 16] {
        self.inner_header.salt
    }

    pub(crate) fn prekey_header(&self) -> &PreKeyHeader {
        &self.header
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
///
/// The prekey variant is boxed so that both variants are about the same
/// size: moving a `Message` then copies no large uninitialised tail, which
/// would carry whatever the stack held before (secrets included) into the
/// caller's memory.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Message {
    /// Starts a session (and repeats its X3DH header until the first reply).
    PreKey(Box<PreKeyMessage>),
    /// A message in an established session.
    Ratchet(RatchetMessage),
}

impl Message {
    /// Parses either kind strictly, dispatching on the type tag (the input
    /// is copied once the length is checked).
    ///
    /// # Errors
    ///
    /// As [`Message::from_vec`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_MESSAGE_LEN {
            return Err(Error::TooLarge);
        }
        Self::from_vec(bytes.to_vec())
    }

    /// Parses either kind strictly, taking ownership of the buffer (no copy).
    ///
    /// # Errors
    ///
    /// In this order (SPEC §9.2): [`Error::TooLarge`] for input longer than
    /// [`MAX_MESSAGE_LEN`], whatever its type byte; [`Error::Truncated`] or
    /// [`Error::UnsupportedVersion`] for the version byte;
    /// [`Error::Truncated`] without a type byte; then by the type byte, as
    /// [`PreKeyMessage::from_vec`] for 0x02 and as
    /// [`RatchetMessage::from_vec`] for 0x01, and
    /// [`Error::WrongType`] (expecting 0x01) for any other.
    pub fn from_vec(bytes: Vec<u8>) -> Result<Self> {
        if bytes.len() > MAX_MESSAGE_LEN {
            return Err(Error::TooLarge);
        }
        let mut r = Reader::new(&bytes);
        r.expect_version()?;
        match r.u8()? {
            tag::PREKEY_MESSAGE => {
                PreKeyMessage::from_vec(bytes).map(|m| Self::PreKey(Box::new(m)))
            }
            tag::RATCHET_MESSAGE => RatchetMessage::from_vec(bytes).map(Self::Ratchet),
            found => Err(Error::WrongType {
                expected: tag::RATCHET_MESSAGE,
                found,
            }),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Session;
    use crate::testing::{Kem, TestRng, bundle_with, devices};

    /// The accessors read the fields at the offsets of SPEC §9.1 and §9.2,
    /// and the header constants are the measured header lengths.
    #[test]
    fn accessors_read_the_specified_offsets() {
        let mut rng = TestRng::new(8);
        let (alice, mut bob) = devices(&mut rng);
        let bundle = bundle_with(&mut bob, &mut rng, true, Kem::OneTime);
        let opk = *bundle.bundle().one_time_prekey().unwrap();
        let kem = bundle.bundle().kem_prekey().unwrap().id();
        let mut to_bob = Session::initiate(&alice, &mut rng, &bundle).unwrap();
        let _ = to_bob.encrypt(&mut rng, b"first").unwrap();
        let Message::PreKey(first) = to_bob.encrypt(&mut rng, b"second").unwrap() else {
            panic!("expected a prekey message");
        };
        let bytes = first.as_bytes();
        assert_eq!(
            codec::encoded_len(first.prekey_header()),
            PREKEY_HEADER_MAX_LEN
        );
        // Every field where SPEC §9 puts it, found by name through the
        // reference model's layout.
        let l = testkit::layout::message(bytes);
        let field = |name| l.slice(bytes, name);
        assert_eq!(first.identity().as_bytes(), field("identity"));
        assert_eq!(first.base_key_bytes(), field("base_key"));
        assert_eq!(first.signed_prekey_id(), bob.signed_prekey().id());
        assert_eq!(field("spk_id"), bob.signed_prekey().id().to_be_bytes());
        assert_eq!(first.one_time_prekey_id(), Some(opk.id()));
        assert_eq!(field("has_opk"), [1]);
        assert_eq!(field("opk_id"), opk.id().to_be_bytes());
        assert_eq!(first.kem_prekey_id(), Some(kem));
        assert_eq!(field("has_kem"), [1]);
        assert_eq!(field("kem_id"), kem.to_be_bytes());
        assert_eq!(first.kem_ciphertext().unwrap(), field("ct"));
        assert_eq!(l.start("ratchet.version"), PREKEY_HEADER_MAX_LEN);
        assert_eq!(first.ratchet_key_bytes(), field("ratchet.ratchet_key"));
        assert_eq!(first.previous_chain_length(), 0);
        assert_eq!(first.message_number(), 1);
        assert_eq!(field("ratchet.n"), [0, 0, 0, 1]);
        assert_eq!(first.salt(), field("ratchet.salt"));

        let (mut to_alice, _) = Session::accept(&mut bob, &first).unwrap();
        let Message::Ratchet(reply) = to_alice.encrypt(&mut rng, b"reply").unwrap() else {
            panic!("expected a ratchet message");
        };
        let bytes = reply.as_bytes();
        assert_eq!(codec::encoded_len(reply.header()), RATCHET_HEADER_LEN);
        let l = testkit::layout::message(bytes);
        let field = |name| l.slice(bytes, name);
        assert_eq!(reply.ratchet_key_bytes(), field("ratchet_key"));
        assert_eq!(reply.previous_chain_length().to_be_bytes(), field("pn"));
        assert_eq!(reply.message_number().to_be_bytes(), field("n"));
        assert_eq!(reply.salt(), field("salt"));
        assert_eq!(l.end_of("salt"), RATCHET_HEADER_LEN);
        let parsed = RatchetMessage::from_vec(bytes.to_vec()).unwrap();
        assert_eq!(parsed, reply);
    }

    /// A `Message` is no larger than a ratchet message (the prekey one is
    /// boxed): moving one copies no uninitialised tail the size of a prekey
    /// message, which carried stack leftovers, an initial root key among
    /// them, into the caller's memory (the review's `freed_secrets`).
    #[test]
    fn a_message_is_the_size_of_a_ratchet_message() {
        use core::mem::size_of;
        assert!(size_of::<PreKeyMessage>() > 2 * size_of::<RatchetMessage>());
        assert_eq!(size_of::<Message>(), size_of::<RatchetMessage>());
    }

    /// Input over `MAX_MESSAGE_LEN` is `TooLarge` whatever its first bytes,
    /// through every parse path (SPEC §9.2; issue 10 point 9); then the
    /// version, then the type byte.
    #[test]
    fn every_parse_path_checks_the_length_first() {
        for head in [
            &[0u8, 0][..],
            &[1, 1],
            &[2, 1],
            &[2, 2],
            &[2, 3],
            &[2, 0x20],
            &[9],
        ] {
            let mut bytes = alloc::vec![0u8; MAX_MESSAGE_LEN + 1];
            bytes[..head.len()].copy_from_slice(head);
            assert_eq!(Message::from_bytes(&bytes).err(), Some(Error::TooLarge));
            assert_eq!(
                Message::from_vec(bytes.clone()).err(),
                Some(Error::TooLarge)
            );
            assert_eq!(
                RatchetMessage::from_vec(bytes.clone()).err(),
                Some(Error::TooLarge)
            );
            assert_eq!(PreKeyMessage::from_vec(bytes).err(), Some(Error::TooLarge));
        }
        let parse = |bytes: &[u8]| Message::from_vec(bytes.to_vec()).err();
        assert_eq!(parse(&[]), Some(Error::Truncated));
        assert_eq!(parse(&[1]), Some(Error::UnsupportedVersion { found: 1 }));
        assert_eq!(parse(&[3, 3]), Some(Error::UnsupportedVersion { found: 3 }));
        assert_eq!(parse(&[2]), Some(Error::Truncated));
        assert_eq!(
            parse(&[2, 3]),
            Some(Error::WrongType {
                expected: 1,
                found: 3
            })
        );
        assert_eq!(parse(&[2, 1]), Some(Error::Truncated));
        assert_eq!(parse(&[2, 2]), Some(Error::Truncated));
    }
}
