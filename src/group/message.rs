//! Group messages on the wire (SPEC.md §15.5).
//!
//! ```text
//! GroupMessage = version(1) type=0x03 group_id(32) chain(32) index(u32) salt(16)
//!                ciphertext(n) tag(16) signature(64)
//! ```

use alloc::vec::Vec;

use super::{ChainId, GroupId};
use crate::codec::{Codec, Reader, Sink, tag, write_header};
use crate::crypto::AEAD_TAG_LEN;
use crate::error::{Error, Result};
use crate::wire::{MAX_PLAINTEXT_LEN, SALT_LEN};

/// Length of a group message up to the ciphertext; these bytes are the AEAD
/// associated data.
pub(crate) const GROUP_HEADER_LEN: usize = 2 + 32 + 32 + 4 + SALT_LEN;
/// Length of the Ed25519 signature that ends every group message.
pub(crate) const SIGNATURE_LEN: usize = 64;
/// Largest encoded group message. Longer input is rejected before it is parsed.
pub const MAX_GROUP_MESSAGE_LEN: usize =
    GROUP_HEADER_LEN + MAX_PLAINTEXT_LEN + AEAD_TAG_LEN + SIGNATURE_LEN;

/// The header of a group message: every byte before the ciphertext,
/// version and type included, which is the AEAD associated data.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct GroupHeader {
    pub(crate) group_id: GroupId,
    pub(crate) chain: ChainId,
    pub(crate) index: u32,
    pub(crate) salt: [u8; SALT_LEN],
}

impl Codec for GroupHeader {
    fn encode<S: Sink>(&self, out: &mut S) {
        write_header(out, tag::GROUP_MESSAGE);
        self.group_id.encode(out);
        self.chain.encode(out);
        self.index.encode(out);
        self.salt.encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        r.expect_header(tag::GROUP_MESSAGE)?;
        let group_id = GroupId::decode(r)?;
        let chain = ChainId::decode(r)?;
        let index = u32::decode(r)?;
        let salt = r.array()?;
        Ok(Self {
            group_id,
            chain,
            index,
            salt,
        })
    }
}

/// A message from one member to the whole group, encrypted under the
/// sender's chain and signed with the chain's key. Holds its encoded bytes.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct GroupMessage {
    bytes: Vec<u8>,
    header: GroupHeader,
}

impl GroupMessage {
    /// Parses strictly.
    ///
    /// # Errors
    ///
    /// As [`GroupMessage::from_vec`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_GROUP_MESSAGE_LEN {
            return Err(Error::TooLarge);
        }
        Self::from_vec(bytes.to_vec())
    }

    /// Parses strictly, taking ownership of the buffer (no copy).
    ///
    /// # Errors
    ///
    /// In this order (SPEC §15.5): [`Error::TooLarge`] for input longer than
    /// [`MAX_GROUP_MESSAGE_LEN`]; [`Error::Truncated`],
    /// [`Error::UnsupportedVersion`] or [`Error::WrongType`] for the version
    /// and type; [`Error::Truncated`] or [`Error::InvalidPublicKey`] for the
    /// chain; [`Error::Truncated`] for input shorter than 166 bytes.
    pub fn from_vec(bytes: Vec<u8>) -> Result<Self> {
        if bytes.len() > MAX_GROUP_MESSAGE_LEN {
            return Err(Error::TooLarge);
        }
        let mut r = Reader::new(&bytes);
        let header = GroupHeader::decode(&mut r)?;
        if r.rest().len() < AEAD_TAG_LEN + SIGNATURE_LEN {
            return Err(Error::Truncated);
        }
        Ok(Self { bytes, header })
    }

    pub(crate) fn from_encoded(bytes: Vec<u8>, header: GroupHeader) -> Self {
        Self { bytes, header }
    }

    /// The encoded bytes, to send.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The encoded bytes, to send, without a copy.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The group this message is for.
    pub fn group_id(&self) -> &GroupId {
        &self.header.group_id
    }

    /// The sender chain that encrypted and signed it.
    pub fn chain(&self) -> &ChainId {
        &self.header.chain
    }

    /// Its index in the sender chain.
    pub fn index(&self) -> u32 {
        self.header.index
    }

    /// The random salt its AEAD key and nonce were expanded with.
    pub fn salt(&self) -> [u8; 16] {
        self.header.salt
    }

    /// The signed bytes (everything before the signature) and the signature.
    pub(crate) fn signed_parts(&self) -> (&[u8], &[u8; SIGNATURE_LEN]) {
        match self.bytes.split_last_chunk::<SIGNATURE_LEN>() {
            Some((signed, signature)) => (signed, signature),
            // Parsing guarantees the length; an empty message fails to verify.
            None => (&[], &[0u8; SIGNATURE_LEN]),
        }
    }

    /// The header (AEAD associated data), ciphertext and tag.
    pub(crate) fn aead_parts(&self) -> Option<AeadParts<'_>> {
        let (signed, _) = self.signed_parts();
        let (header, body) = signed.split_at_checked(GROUP_HEADER_LEN)?;
        let (ciphertext, tag) = body.split_last_chunk::<AEAD_TAG_LEN>()?;
        Some(AeadParts {
            header,
            salt: &self.header.salt,
            ciphertext,
            tag,
        })
    }
}

/// Borrowed pieces of a group message for decryption.
pub(crate) struct AeadParts<'a> {
    pub(crate) header: &'a [u8],
    pub(crate) salt: &'a [u8; SALT_LEN],
    pub(crate) ciphertext: &'a [u8],
    pub(crate) tag: &'a [u8; AEAD_TAG_LEN],
}
