//! The sender key distribution: everything a member needs to read one sender
//! chain from its current index on, and the two signatures that bind the
//! chain and its owner to each other (SPEC.md §15.6).
//!
//! ```text
//! SenderKeyDistribution = version(1) type=0x04 group_id(32) chain(32) owner(32)
//!                         owner_proof(64) owner_signature(64) index(u32)
//!                         R_0..R_7(8 * 32)
//! ```

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use ed25519_dalek::SigningKey;
use zeroize::Zeroizing;

use super::ratchet::{RATCHET_LEN, Ratchet};
use super::{ChainId, GroupId, OWNER_LEN, owner_bytes};
use crate::codec::{self, Codec, Reader, Sink, tag};
use crate::crypto::{self, label};
use crate::error::Result;
use crate::keys::{IdentityKey, IdentityKeyPair};

/// Length of an Ed25519 signature.
pub(crate) const PROOF_LEN: usize = 64;

/// A sender chain's key as handed to one member: the group, the chain's
/// public key, its owner, the chain's owner proof (by the chain key) and
/// owner signature (by the owner's identity key), and the ratchet at the
/// chain's current index.
///
/// It contains the ratchet secret: send it only as the plaintext of a
/// pairwise [`Session`](crate::Session) message. Never printed.
pub struct SenderKeyDistribution {
    group_id: GroupId,
    chain: ChainId,
    owner: IdentityKey,
    signatures: OwnerSignatures,
    /// Boxed, like every secret in a container or a movable value.
    ratchet: Box<Ratchet>,
}

impl SenderKeyDistribution {
    /// Length of [`SenderKeyDistribution::to_bytes`] (486 bytes).
    pub const ENCODED_LEN: usize = 2 + 32 + 32 + OWNER_LEN + 2 * PROOF_LEN + RATCHET_LEN;

    pub(crate) fn new(
        group_id: GroupId,
        chain: ChainId,
        owner: IdentityKey,
        signatures: OwnerSignatures,
        ratchet: Box<Ratchet>,
    ) -> Self {
        Self {
            group_id,
            chain,
            owner,
            signatures,
            ratchet,
        }
    }

    /// The encoding, in a buffer zeroized on drop.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        codec::to_secret_vec(tag::SENDER_KEY_DISTRIBUTION, self)
    }

    /// Decodes [`SenderKeyDistribution::to_bytes`] strictly. The owner proof
    /// and owner signature are not checked here but when the distribution is
    /// installed.
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

    /// The owner the chain's owner proof names and whose identity key made
    /// the owner signature.
    pub fn owner(&self) -> &IdentityKey {
        &self.owner
    }

    /// The first index a receiver made from this can decrypt.
    pub fn index(&self) -> u32 {
        self.ratchet.index()
    }

    /// Checks, strictly, the owner proof under the chain's key, then the
    /// owner signature under the owner's identity key (SPEC §15.6, §15.7).
    pub(crate) fn verify_owner(&self) -> Result<()> {
        crypto::verify(
            self.chain.key(),
            label::GROUP_CHAIN_OWNER,
            &[&owner_proof_message(
                &self.group_id,
                &self.chain,
                &self.owner,
            )],
            &self.signatures.proof,
        )?;
        crypto::verify(
            self.owner.verifying_key(),
            label::GROUP_OWNER_SIGNATURE,
            &[self.group_id.as_bytes(), self.chain.as_bytes()],
            &self.signatures.signature,
        )
    }

    /// Group, chain, owner, ratchet.
    pub(crate) fn into_parts(self) -> (GroupId, ChainId, IdentityKey, Box<Ratchet>) {
        (self.group_id, self.chain, self.owner, self.ratchet)
    }
}

/// The message an owner proof signs, after its label:
/// `group_id || chain || owner`.
fn owner_proof_message(group_id: &GroupId, chain: &ChainId, owner: &IdentityKey) -> Vec<u8> {
    let owner = owner_bytes(owner);
    let mut message = Vec::with_capacity(64 + owner.len());
    message.extend_from_slice(group_id.as_bytes());
    message.extend_from_slice(chain.as_bytes());
    message.extend_from_slice(&owner);
    message
}

/// A chain's two bindings to its owner (SPEC §15.6), made once when the
/// chain is created.
#[derive(Clone, Copy)]
pub(crate) struct OwnerSignatures {
    /// By the chain key: "this chain belongs to `owner`".
    pub(crate) proof: [u8; PROOF_LEN],
    /// By the owner's identity key: "`owner` created this chain".
    pub(crate) signature: [u8; PROOF_LEN],
}

impl OwnerSignatures {
    /// Signs both for a new chain of `owner` in `group_id`.
    pub(crate) fn sign(
        group_id: &GroupId,
        chain_seed: &SigningKey,
        owner: &IdentityKeyPair,
    ) -> Self {
        let chain = ChainId::from_key(chain_seed.verifying_key());
        let proof = crypto::sign(
            chain_seed,
            label::GROUP_CHAIN_OWNER,
            &[&owner_proof_message(group_id, &chain, owner.public())],
        );
        let signature = owner.sign(
            label::GROUP_OWNER_SIGNATURE,
            &[group_id.as_bytes(), chain.as_bytes()],
        );
        Self { proof, signature }
    }
}

/// The owner proof, then the owner signature, each taken as it is.
impl Codec for OwnerSignatures {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.proof.encode(out);
        self.signature.encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let proof = r.array()?;
        let signature = r.array()?;
        Ok(Self { proof, signature })
    }
}

/// Group id, chain, owner, owner proof, owner signature, then the ratchet
/// (index, R_0..R_7).
impl Codec for SenderKeyDistribution {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.group_id.encode(out);
        self.chain.encode(out);
        self.owner.encode(out);
        self.signatures.encode(out);
        self.ratchet.encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let group_id = GroupId::decode(r)?;
        let chain = ChainId::decode(r)?;
        let owner = IdentityKey::decode(r)?;
        let signatures = OwnerSignatures::decode(r)?;
        let ratchet = Ratchet::decode_boxed(r)?;
        Ok(Self {
            group_id,
            chain,
            owner,
            signatures,
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
