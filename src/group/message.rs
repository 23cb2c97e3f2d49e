//! Group messages on the wire.
//!
//! ```text
//! GroupMessage = version(1) type=0x03 group_id(32) chain_id(u32) index(u32) salt(16)
//!                ciphertext(n) tag(16) signature(64)
//! ```

use alloc::vec::Vec;

use super::GroupId;
use crate::codec::{Reader, tag};
use crate::crypto::AEAD_TAG_LEN;
use crate::error::{Error, Result};
use crate::wire::{MAX_PLAINTEXT_LEN, SALT_LEN};

/// Length of a group message up to the ciphertext; these bytes are the AEAD
/// associated data.
pub(crate) const GROUP_HEADER_LEN: usize = 2 + 32 + 4 + 4 + SALT_LEN;
/// Length of the Ed25519 signature that ends every group message.
pub(crate) const SIGNATURE_LEN: usize = 64;
/// Largest encoded group message. Longer input is rejected before it is parsed.
pub const MAX_GROUP_MESSAGE_LEN: usize =
    GROUP_HEADER_LEN + MAX_PLAINTEXT_LEN + AEAD_TAG_LEN + SIGNATURE_LEN;

/// A message from one member to the whole group, encrypted under the
/// sender's chain and signed with the chain's signing key. Holds its
/// encoded bytes.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct GroupMessage {
    bytes: Vec<u8>,
    group_id: GroupId,
    chain_id: u32,
    index: u32,
}

impl GroupMessage {
    /// Parses strictly.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_GROUP_MESSAGE_LEN {
            return Err(Error::TooLarge);
        }
        Self::from_vec(bytes.to_vec())
    }

    /// Parses strictly, taking ownership of the buffer (no copy).
    pub fn from_vec(bytes: Vec<u8>) -> Result<Self> {
        if bytes.len() > MAX_GROUP_MESSAGE_LEN {
            return Err(Error::TooLarge);
        }
        let mut r = Reader::header(&bytes, tag::GROUP_MESSAGE)?;
        let group_id = GroupId::from_bytes(r.array()?);
        let chain_id = r.u32()?;
        let index = r.u32()?;
        r.take(SALT_LEN)?;
        if r.rest().len() < AEAD_TAG_LEN + SIGNATURE_LEN {
            return Err(Error::Truncated);
        }
        Ok(Self {
            bytes,
            group_id,
            chain_id,
            index,
        })
    }

    pub(crate) fn from_encoded(
        bytes: Vec<u8>,
        group_id: GroupId,
        chain_id: u32,
        index: u32,
    ) -> Self {
        Self {
            bytes,
            group_id,
            chain_id,
            index,
        }
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
        &self.group_id
    }

    /// The sender chain that encrypted it.
    pub fn chain_id(&self) -> u32 {
        self.chain_id
    }

    /// Its index in the sender chain.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The signed bytes (everything before the signature) and the signature.
    pub(crate) fn signed_parts(&self) -> (&[u8], &[u8; SIGNATURE_LEN]) {
        match self.bytes.split_last_chunk::<SIGNATURE_LEN>() {
            Some((signed, signature)) => (signed, signature),
            // Parsing guarantees the length; an empty message fails to verify.
            None => (&[], &[0u8; SIGNATURE_LEN]),
        }
    }

    /// The salt, and the header (AEAD associated data), ciphertext and tag.
    pub(crate) fn aead_parts(&self) -> Option<AeadParts<'_>> {
        let (signed, _) = self.signed_parts();
        let (header, body) = signed.split_at_checked(GROUP_HEADER_LEN)?;
        let (ciphertext, tag) = body.split_last_chunk::<AEAD_TAG_LEN>()?;
        let salt = header.last_chunk::<SALT_LEN>()?;
        Some(AeadParts {
            header,
            salt,
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
