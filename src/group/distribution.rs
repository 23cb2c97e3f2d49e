//! The sender key distribution message: everything a member needs to read
//! one sender chain from its current index on.
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
use crate::codec::{Reader, tag, write_header};
use crate::crypto;
use crate::error::Result;

/// A sender chain's key as handed to one member: group id, chain id, the
/// ratchet at the chain's current index and the chain's signing public key.
///
/// It contains the ratchet secret: send it only as the plaintext of a
/// pairwise [`Session`](crate::Session) message. Never printed.
pub struct SenderKeyDistribution {
    pub(crate) group_id: GroupId,
    pub(crate) chain_id: u32,
    /// Boxed, like every secret in a container or a movable value.
    pub(crate) ratchet: Box<Ratchet>,
    pub(crate) signing_key: VerifyingKey,
}

impl SenderKeyDistribution {
    /// Length of [`SenderKeyDistribution::to_bytes`].
    pub const ENCODED_LEN: usize = 2 + 32 + 4 + RATCHET_LEN + 32;

    /// The encoding, in a buffer zeroized on drop.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(Self::ENCODED_LEN));
        write_header(&mut out, tag::SENDER_KEY_DISTRIBUTION);
        out.extend_from_slice(self.group_id.as_bytes());
        out.extend_from_slice(&self.chain_id.to_be_bytes());
        self.ratchet.write(&mut out);
        out.extend_from_slice(self.signing_key.as_bytes());
        out
    }

    /// Decodes [`SenderKeyDistribution::to_bytes`] strictly (the signing key
    /// must be a valid Ed25519 point, not of small order).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::header(bytes, tag::SENDER_KEY_DISTRIBUTION)?;
        let group_id = GroupId::from_bytes(r.array()?);
        let chain_id = r.u32()?;
        let ratchet = Ratchet::read(&mut r)?;
        let signing_key = crypto::ed25519_public(&r.array()?)?;
        r.finish()?;
        Ok(Self {
            group_id,
            chain_id,
            ratchet: Box::new(ratchet),
            signing_key,
        })
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

impl fmt::Debug for SenderKeyDistribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SenderKeyDistribution")
            .field("group_id", &self.group_id)
            .field("chain_id", &self.chain_id)
            .field("index", &self.ratchet.index())
            .finish_non_exhaustive()
    }
}
