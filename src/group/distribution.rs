//! The sender key distribution: everything a member needs to read one sender
//! chain from its current index on, and the chain's proof of its owner
//! (SPEC.md §15.6).
//!
//! ```text
//! SenderKeyDistribution = version(1) type=0x04 group_id(32) chain(32) owner(32)
//!                         owner_proof(64) index(u32) R_0..R_7(8 * 32)
//! ```

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use zeroize::Zeroizing;

use super::ratchet::{RATCHET_LEN, Ratchet};
use super::{ChainId, GroupId, OWNER_LEN, owner_bytes};
use crate::codec::{self, Codec, Reader, Sink, tag};
use crate::crypto::{self, label};
use crate::error::Result;
use crate::keys::IdentityKey;

/// Length of an Ed25519 signature.
pub(crate) const PROOF_LEN: usize = 64;

/// A sender chain's key as handed to one member: the group, the chain's
/// public key, its owner and the chain's owner proof, and the ratchet at the
/// chain's current index.
///
/// It contains the ratchet secret: send it only as the plaintext of a
/// pairwise [`Session`](crate::Session) message. Never printed.
pub struct SenderKeyDistribution {
    group_id: GroupId,
    chain: ChainId,
    owner: IdentityKey,
    owner_proof: [u8; PROOF_LEN],
    /// Boxed, like every secret in a container or a movable value.
    ratchet: Box<Ratchet>,
}

impl SenderKeyDistribution {
    /// Length of [`SenderKeyDistribution::to_bytes`] (422 bytes).
    pub const ENCODED_LEN: usize = 2 + 32 + 32 + OWNER_LEN + PROOF_LEN + RATCHET_LEN;

    pub(crate) fn new(
        group_id: GroupId,
        chain: ChainId,
        owner: IdentityKey,
        owner_proof: [u8; PROOF_LEN],
        ratchet: Box<Ratchet>,
    ) -> Self {
        Self {
            group_id,
            chain,
            owner,
            owner_proof,
            ratchet,
        }
    }

    /// The encoding, in a buffer zeroized on drop.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        codec::to_secret_vec(tag::SENDER_KEY_DISTRIBUTION, self)
    }

    /// Decodes [`SenderKeyDistribution::to_bytes`] strictly. The owner proof
    /// is not checked here but when the distribution is installed.
    ///
    /// # Errors
    ///
    /// The first failing check of SPEC §15.6, field by field (there is no
    /// length check up front): [`Error::Truncated`],
    /// [`Error::UnsupportedVersion`], [`Error::WrongType`],
    /// [`Error::InvalidPublicKey`] (the chain, then the owner),
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
    pub fn chain(&self) -> &ChainId {
        &self.chain
    }

    /// The owner the chain's owner proof names.
    pub fn owner(&self) -> &IdentityKey {
        &self.owner
    }

    /// The first index a receiver made from this can decrypt.
    pub fn index(&self) -> u32 {
        self.ratchet.index()
    }

    /// Checks the owner proof strictly under the chain's key (SPEC §15.6).
    pub(crate) fn verify_owner_proof(&self) -> Result<()> {
        verify_owner_proof(&self.group_id, &self.chain, &self.owner, &self.owner_proof)
    }

    /// Group, chain, owner, ratchet.
    pub(crate) fn into_parts(self) -> (GroupId, ChainId, IdentityKey, Box<Ratchet>) {
        (self.group_id, self.chain, self.owner, self.ratchet)
    }
}

/// The message an owner proof signs, after its label:
/// `group_id || chain || owner`.
pub(crate) fn owner_proof_message(
    group_id: &GroupId,
    chain: &ChainId,
    owner: &IdentityKey,
) -> Vec<u8> {
    let owner = owner_bytes(owner);
    let mut message = Vec::with_capacity(64 + owner.len());
    message.extend_from_slice(group_id.as_bytes());
    message.extend_from_slice(chain.as_bytes());
    message.extend_from_slice(&owner);
    message
}

/// `Verify(chain, "sotto v2 group chain owner" || group_id || chain || owner,
/// proof)`: `InvalidSignature` unless it holds.
pub(crate) fn verify_owner_proof(
    group_id: &GroupId,
    chain: &ChainId,
    owner: &IdentityKey,
    proof: &[u8; PROOF_LEN],
) -> Result<()> {
    crypto::verify(
        chain.key(),
        label::GROUP_CHAIN_OWNER,
        &[&owner_proof_message(group_id, chain, owner)],
        proof,
    )
}

/// Group id, chain, owner, owner proof, then the ratchet (index, R_0..R_7).
impl Codec for SenderKeyDistribution {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.group_id.encode(out);
        self.chain.encode(out);
        self.owner.encode(out);
        self.owner_proof.encode(out);
        self.ratchet.encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let group_id = GroupId::decode(r)?;
        let chain = ChainId::decode(r)?;
        let owner = IdentityKey::decode(r)?;
        let owner_proof = r.array()?;
        let ratchet = Ratchet::decode_boxed(r)?;
        Ok(Self {
            group_id,
            chain,
            owner,
            owner_proof,
            ratchet,
        })
    }
}

impl fmt::Debug for SenderKeyDistribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SenderKeyDistribution")
            .field("group_id", &self.group_id)
            .field("chain", &self.chain)
            .field("owner", &self.owner)
            .field("index", &self.ratchet.index())
            .finish_non_exhaustive()
    }
}
