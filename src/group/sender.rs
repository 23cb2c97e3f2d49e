//! The sending side of a sender chain: creating and rotating it with its
//! owner proof and owner signature (SPEC.md §15.6, draws §15.12), encrypting (§15.5) and its saved
//! state (§15.11).

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use ed25519_dalek::SigningKey;
use rand_core::TryCryptoRng;
use zeroize::Zeroizing;

use super::distribution::{OwnerSignatures, PROOF_LEN, SenderKeyDistribution};
use super::message::{GROUP_HEADER_LEN, GroupHeader, GroupMessage, SIGNATURE_LEN};
use super::ratchet::{RATCHET_LEN, Ratchet};
use super::{ChainId, Generation, GroupId, OWNER_LEN};
use crate::codec::{Codec, Reader, Sink, tag};
use crate::crypto::{self, AEAD_TAG_LEN, label};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::keys::IdentityKey;
use crate::sealed::{self, SavedState, StorageKey};
use crate::wire::{MAX_PLAINTEXT_LEN, SALT_LEN};

/// This member's sender chain in one group: a one-way hash ratchet and an
/// Ed25519 chain key of its own, whose public half names the chain. When the
/// chain was created the chain key signed the proof that it belongs to
/// `owner`, and `owner`'s identity key signed that it created the chain
/// (SPEC §15.6).
///
/// Encrypting moves the ratchet forward, so the caller persists the state
/// ([`GroupSender::to_bytes`] or [`GroupSender::seal`]) before it sends the
/// message. To rotate (after a member is removed, or on a schedule, or after
/// restoring an older saved state) call [`GroupSender::rotate`] and send the
/// new distribution to the remaining members only.
pub struct GroupSender {
    generation: Generation,
    group_id: GroupId,
    owner: IdentityKey,
    // Boxed so that moving the sender moves pointers, not secrets.
    seed: Box<SigningKey>,
    chain: ChainId,
    signatures: OwnerSignatures,
    ratchet: Box<Ratchet>,
}

/// A new chain's secrets and signatures, drawn and signed before any state
/// changes.
struct Fresh {
    seed: Box<SigningKey>,
    chain: ChainId,
    signatures: OwnerSignatures,
    ratchet: Box<Ratchet>,
}

impl Fresh {
    /// Draws 256 bytes (R_0..R_7), then 32 bytes (the chain seed), then
    /// makes the owner proof with the chain seed and the owner signature
    /// with `owner`'s identity key (SPEC §15.12).
    fn draw<R: TryCryptoRng + ?Sized>(
        rng: &mut R,
        group_id: &GroupId,
        owner: &Device,
    ) -> Result<Self> {
        let ratchet = Ratchet::random(rng)?;
        let mut seed = Zeroizing::new([0u8; 32]);
        crypto::draw(rng, seed.as_mut())?;
        let seed = Box::new(SigningKey::from_bytes(&seed));
        let chain = ChainId::from_key(seed.verifying_key());
        let signatures = OwnerSignatures::sign(group_id, &seed, owner.identity_pair());
        Ok(Self {
            seed,
            chain,
            signatures,
            ratchet,
        })
    }
}

impl GroupSender {
    /// Length of [`GroupSender::to_bytes`] (494 bytes).
    pub const ENCODED_LEN: usize = 2 + 8 + 32 + OWNER_LEN + 32 + 2 * PROOF_LEN + RATCHET_LEN;

    /// A new chain at index 0 owned by `owner` (this member's device, whose
    /// identity key signs the chain), at generation 0. Draws 256 bytes for
    /// R_0..R_7, then 32 bytes for the chain seed; then signs the owner
    /// proof with the chain key and the owner signature with the identity
    /// key. `owner` is not changed.
    ///
    /// # Errors
    ///
    /// [`Error::RandomnessUnavailable`] if the RNG fails.
    pub fn new<R: TryCryptoRng + ?Sized>(
        rng: &mut R,
        group_id: GroupId,
        owner: &Device,
    ) -> Result<Self> {
        let fresh = Fresh::draw(rng, &group_id, owner)?;
        Ok(Self {
            generation: Generation::default(),
            group_id,
            owner: *owner.identity_key(),
            seed: fresh.seed,
            chain: fresh.chain,
            signatures: fresh.signatures,
            ratchet: fresh.ratchet,
        })
    }

    /// Replaces this chain with a new one (a new chain key, ratchet at index
    /// 0, owner proof and owner signature, drawn and signed as
    /// [`GroupSender::new`] with `owner`, which must be the device of this
    /// chain's owner; the group and owner stay, the generation goes up by 1)
    /// and returns its distribution. The old chain's keys are gone; members
    /// that do not receive the new distribution cannot read what follows.
    ///
    /// # Errors
    ///
    /// In this order, each leaving the sender unchanged:
    /// [`Error::GroupOwnerMismatch`] if `owner`'s identity is not this
    /// chain's owner (nothing is drawn); [`Error::RandomnessUnavailable`] if
    /// the RNG fails.
    pub fn rotate<R: TryCryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        owner: &Device,
    ) -> Result<SenderKeyDistribution> {
        if owner.identity_key() != &self.owner {
            return Err(Error::GroupOwnerMismatch);
        }
        let fresh = Fresh::draw(rng, &self.group_id, owner)?;
        self.seed = fresh.seed;
        self.chain = fresh.chain;
        self.signatures = fresh.signatures;
        self.ratchet = fresh.ratchet;
        self.generation.bump();
        Ok(self.distribution())
    }

    /// The distribution at the current index: a member that installs it can
    /// read this chain's messages from now on, not earlier ones.
    pub fn distribution(&self) -> SenderKeyDistribution {
        SenderKeyDistribution::new(
            self.group_id,
            self.chain,
            self.owner,
            self.signatures,
            self.ratchet.boxed(),
        )
    }

    /// Encrypts and signs `plaintext` at the current index, then moves to the
    /// next index and adds 1 to the generation. Draws 16 bytes of salt. The
    /// last index, `u32::MAX`, is never used.
    ///
    /// # Errors
    ///
    /// In this order (SPEC §15.12), each leaving the sender unchanged:
    /// [`Error::PlaintextTooLarge`] over
    /// [`MAX_PLAINTEXT_LEN`](crate::MAX_PLAINTEXT_LEN);
    /// [`Error::ChainExhausted`] at index `u32::MAX` (nothing is drawn);
    /// [`Error::RandomnessUnavailable`] if the RNG fails.
    pub fn encrypt<R: TryCryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        plaintext: &[u8],
    ) -> Result<GroupMessage> {
        if plaintext.len() > MAX_PLAINTEXT_LEN {
            return Err(Error::PlaintextTooLarge);
        }
        let index = self.ratchet.index();
        if index == u32::MAX {
            return Err(Error::ChainExhausted);
        }
        let mut salt = [0u8; SALT_LEN];
        crypto::draw(rng, &mut salt)?;

        let header = GroupHeader {
            group_id: self.group_id,
            chain: self.chain,
            index,
            salt,
        };
        let mut out =
            Vec::with_capacity(GROUP_HEADER_LEN + plaintext.len() + AEAD_TAG_LEN + SIGNATURE_LEN);
        header.encode(&mut out);
        debug_assert_eq!(out.len(), GROUP_HEADER_LEN);
        out.extend_from_slice(plaintext);

        let message_key = self.ratchet.message_key();
        let (key, nonce) =
            crypto::aead_key_nonce(&salt, message_key.as_bytes(), label::GROUP_MESSAGE_KEYS);
        let (aad, body) = out.split_at_mut(GROUP_HEADER_LEN);
        let tag = crypto::aead_seal(&key, &nonce, aad, body)?;
        out.extend_from_slice(&tag);
        let signature = crypto::sign(&self.seed, label::GROUP_SIGNATURE, &[&out]);
        out.extend_from_slice(&signature);

        self.ratchet.increment();
        self.generation.bump();
        Ok(GroupMessage::from_encoded(out, header))
    }

    /// The group.
    pub fn group_id(&self) -> &GroupId {
        &self.group_id
    }

    /// This chain's name, its Ed25519 public key.
    pub fn chain(&self) -> &ChainId {
        &self.chain
    }

    /// The identity the chain's owner proof names and whose key made the
    /// owner signature.
    pub fn owner(&self) -> &IdentityKey {
        &self.owner
    }

    /// The index the next message will use.
    pub fn index(&self) -> u32 {
        self.ratchet.index()
    }

    /// The generation (SPEC §10.1): 0 when created, 1 more after every
    /// encrypt and rotation.
    pub fn generation(&self) -> u64 {
        self.generation.get()
    }

    /// The plain encoding (it contains secret keys): version, type 0x22,
    /// generation, group id, owner, chain seed, owner proof, owner
    /// signature, index, R_0..R_7 (SPEC §15.11).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        <Self as SavedState>::to_bytes(self)
    }

    /// Restores [`GroupSender::to_bytes`] strictly (the same as
    /// [`SavedState::from_bytes`]). The chain key is recomputed from the
    /// seed; the owner proof and owner signature are taken as stored.
    ///
    /// # Errors
    ///
    /// As [`SavedState::from_bytes`] (SPEC §15.11), with
    /// [`Error::InvalidPublicKey`] for the owner.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        <Self as SavedState>::from_bytes(bytes)
    }

    /// The state encrypted at rest under `key`, bound to `context` (draws
    /// 32 bytes of salt).
    ///
    /// # Errors
    ///
    /// As [`SavedState::seal`].
    pub fn seal<R: TryCryptoRng + ?Sized>(
        &self,
        key: &StorageKey,
        context: &[u8],
        rng: &mut R,
    ) -> Result<Vec<u8>> {
        <Self as SavedState>::seal(self, key, context, rng)
    }

    /// Opens and restores [`GroupSender::seal`]'s output.
    ///
    /// # Errors
    ///
    /// As [`SavedState::unseal`], then as [`GroupSender::from_bytes`].
    pub fn unseal(sealed: &[u8], key: &StorageKey, context: &[u8]) -> Result<Self> {
        <Self as SavedState>::unseal(sealed, key, context)
    }

    /// Moves the chain to `index` without encrypting, for tests that need
    /// states far along a chain.
    #[cfg(test)]
    pub(crate) fn advance_for_test(&mut self, index: u32) {
        self.ratchet.advance_to(index);
    }
}

impl sealed::Sealed for GroupSender {}

impl SavedState for GroupSender {
    fn generation(&self) -> u64 {
        GroupSender::generation(self)
    }

    const TYPE_TAG: u8 = tag::GROUP_SENDER_STATE;

    fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        sealed::to_plain(Self::TYPE_TAG, self)
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self> {
        sealed::from_plain(Self::TYPE_TAG, bytes)
    }
}

/// Generation, group id, owner, chain seed, owner proof, owner signature,
/// then the ratchet (index, R_0..R_7).
impl Codec for GroupSender {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.generation.encode(out);
        self.group_id.encode(out);
        self.owner.encode(out);
        self.seed.encode(out);
        self.signatures.encode(out);
        self.ratchet.encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let generation = Generation::decode(r)?;
        let group_id = GroupId::decode(r)?;
        let owner = IdentityKey::decode(r)?;
        let seed = Box::<SigningKey>::decode(r)?;
        let signatures = OwnerSignatures::decode(r)?;
        let ratchet = Ratchet::decode_boxed(r)?;
        let chain = ChainId::from_key(seed.verifying_key());
        Ok(Self {
            generation,
            group_id,
            owner,
            seed,
            chain,
            signatures,
            ratchet,
        })
    }
}

impl fmt::Debug for GroupSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupSender")
            .field("generation", &self.generation.get())
            .field("group_id", &self.group_id)
            .field("chain", &self.chain)
            .field("owner", &self.owner)
            .field("index", &self.ratchet.index())
            .finish_non_exhaustive()
    }
}
