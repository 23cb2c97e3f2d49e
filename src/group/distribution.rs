//! The sender key distribution message: everything a member needs to read
//! one sender chain from its current index on (SPEC.md §15.6).
//!
//! ```text
//! SenderKeyDistribution = version(1) type=0x04 group_id(32) chain_id(u32) index(u32)
//!                         R_0..R_7(8 * 32) signing_public_key(32)
//! ```

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use ed25519_dalek::VerifyingKey;
use zeroize::Zeroizing;

use super::GroupId;
use super::ratchet::{RATCHET_LEN, Ratchet};
use crate::codec::{self, Codec, Reader, Sink, tag};
use crate::error::Result;

/// A sender chain's key as handed to one member: group id, chain id, the
/// ratchet at the chain's current index and the chain's signing public key.
///
/// It contains the ratchet secret: send it only as the plaintext of a
/// pairwise [`Session`](crate::Session) message. Never printed.
pub struct SenderKeyDistribution {
    group_id: GroupId,
    chain_id: u32,
    /// Boxed, like every secret in a container or a movable value.
    ratchet: Box<Ratchet>,
    signing_key: VerifyingKey,
}

impl SenderKeyDistribution {
    /// Length of [`SenderKeyDistribution::to_bytes`].
    pub const ENCODED_LEN: usize = 2 + 32 + 4 + RATCHET_LEN + 32;

    pub(crate) fn new(
        group_id: GroupId,
        chain_id: u32,
        ratchet: Box<Ratchet>,
        signing_key: VerifyingKey,
    ) -> Self {
        Self {
            group_id,
            chain_id,
            ratchet,
            signing_key,
        }
    }

    /// Group id, chain id, ratchet, signing key.
    pub(crate) fn into_parts(self) -> (GroupId, u32, Box<Ratchet>, VerifyingKey) {
        (self.group_id, self.chain_id, self.ratchet, self.signing_key)
    }

    /// The encoding, in a buffer zeroized on drop.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        codec::to_secret_vec(tag::SENDER_KEY_DISTRIBUTION, self)
    }

    /// Decodes [`SenderKeyDistribution::to_bytes`] strictly (the signing key
    /// must be a valid Ed25519 point, not of small order).
    ///
    /// # Errors
    ///
    /// The first failing check of SPEC §15.6, field by field (there is no
    /// length check up front): [`Error::Truncated`],
    /// [`Error::UnsupportedVersion`], [`Error::WrongType`],
    /// [`Error::InvalidPublicKey`] (the signing key),
    /// [`Error::TrailingBytes`].
    ///
    /// [`Error::Truncated`]: crate::Error::Truncated
    /// [`Error::UnsupportedVersion`]: crate::Error::UnsupportedVersion
    /// [`Error::WrongType`]: crate::Error::WrongType
    /// [`Error::InvalidPublicKey`]: crate::Error::InvalidPublicKey
    /// [`Error::TrailingBytes`]: crate::Error::TrailingBytes
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        codec::from_slice(tag::SENDER_KEY_DISTRIBUTION, bytes)
    }

    /// The group.
    pub fn group_id(&self) -> &GroupId {
        &self.group_id
    }

    /// The sender chain.
    pub fn chain_id(&self) -> u32 {
        self.chain_id
    }

    /// The first index a receiver made from this can decrypt.
    pub fn index(&self) -> u32 {
        self.ratchet.index()
    }

    /// The chain's Ed25519 signing public key.
    pub fn signing_key_bytes(&self) -> [u8; 32] {
        self.signing_key.to_bytes()
    }
}

/// Group id, chain id, the ratchet at the current index, signing key.
impl Codec for SenderKeyDistribution {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.group_id.encode(out);
        self.chain_id.encode(out);
        self.ratchet.encode(out);
        self.signing_key.encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let group_id = GroupId::decode(r)?;
        let chain_id = u32::decode(r)?;
        let ratchet = Box::<Ratchet>::decode(r)?;
        let signing_key = VerifyingKey::decode(r)?;
        Ok(Self {
            group_id,
            chain_id,
            ratchet,
            signing_key,
        })
    }
}

impl fmt::Debug for SenderKeyDistribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SenderKeyDistribution")
            .field("group_id", &self.group_id)
            .field("chain_id", &self.chain_id)
            .field("index", &self.ratchet.index())
            .finish_non_exhaustive()
    }
}
