//! The sending side of a sender chain: encrypting (SPEC.md §15.5, draws
//! §15.12) and its saved state (§15.11).

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use ed25519_dalek::SigningKey;
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::GroupId;
use super::distribution::SenderKeyDistribution;
use super::message::{GROUP_HEADER_LEN, GroupHeader, GroupMessage, SIGNATURE_LEN};
use super::ratchet::{RATCHET_LEN, Ratchet};
use crate::codec::{Codec, Reader, Sink, tag};
use crate::crypto::{self, AEAD_TAG_LEN, label};
use crate::error::{Error, Result};
use crate::sealed::{self, SavedState, StorageKey};
use crate::wire::{MAX_PLAINTEXT_LEN, SALT_LEN};

/// This member's sending chain in one group: a hash ratchet and an Ed25519
/// signing key of its own.
///
/// Encrypting moves the ratchet forward, so the caller persists the state
/// ([`GroupSender::to_bytes`] or [`GroupSender::seal`]) before it sends the
/// message. To rotate (after a member is removed, or on a schedule) call
/// [`GroupSender::rotate`] and send the new distribution to the remaining
/// members only.
pub struct GroupSender {
    group_id: GroupId,
    chain_id: u32,
    // Boxed so that moving the sender moves pointers, not secrets.
    ratchet: Box<Ratchet>,
    signing: Box<SigningKey>,
}

impl GroupSender {
    /// Length of [`GroupSender::to_bytes`].
    pub const ENCODED_LEN: usize = 2 + 32 + 4 + RATCHET_LEN + 32;

    /// A new chain at index 0. Draws, in this order: 4 bytes for the chain
    /// id (big-endian), 256 bytes for R_0..R_7, 32 bytes for the Ed25519
    /// signing key seed.
    pub fn new<R: CryptoRng + ?Sized>(rng: &mut R, group_id: GroupId) -> Self {
        let mut chain_id = [0u8; 4];
        rng.fill_bytes(&mut chain_id);
        let ratchet = Ratchet::random(rng);
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(seed.as_mut());
        Self {
            group_id,
            chain_id: u32::from_be_bytes(chain_id),
            ratchet: Box::new(ratchet),
            signing: Box::new(SigningKey::from_bytes(&seed)),
        }
    }

    /// Replaces this chain with a new one (drawing as [`GroupSender::new`])
    /// and returns its distribution. The old chain's keys are gone; members
    /// that do not receive the new distribution cannot read what follows.
    pub fn rotate<R: CryptoRng + ?Sized>(&mut self, rng: &mut R) -> SenderKeyDistribution {
        *self = Self::new(rng, self.group_id);
        self.distribution()
    }

    /// The distribution at the current index: a member that installs it can
    /// read this chain's messages from now on, not earlier ones.
    pub fn distribution(&self) -> SenderKeyDistribution {
        SenderKeyDistribution::new(
            self.group_id,
            self.chain_id,
            self.ratchet.clone(),
            self.signing.verifying_key(),
        )
    }

    /// Encrypts and signs `plaintext` at the current index, then moves to the
    /// next index. Draws 16 bytes of salt. The last index, `u32::MAX`, is
    /// never used: at it this fails with [`Error::ChainExhausted`].
    ///
    /// # Errors
    ///
    /// [`Error::PlaintextTooLarge`] over
    /// [`MAX_PLAINTEXT_LEN`](crate::MAX_PLAINTEXT_LEN), then
    /// [`Error::ChainExhausted`] at the last index; nothing is drawn or
    /// changed.
    pub fn encrypt<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        plaintext: &[u8],
    ) -> Result<GroupMessage> {
        if plaintext.len() > MAX_PLAINTEXT_LEN {
            return Err(Error::PlaintextTooLarge);
        }
        let index = self.ratchet.index();
        let next = index.checked_add(1).ok_or(Error::ChainExhausted)?;
        let mut salt = [0u8; SALT_LEN];
        rng.fill_bytes(&mut salt);

        let header = GroupHeader {
            group_id: self.group_id,
            chain_id: self.chain_id,
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
        let signature = crypto::sign(&self.signing, label::GROUP_SIGNATURE, &[&out]);
        out.extend_from_slice(&signature);

        self.ratchet.advance_to(next);
        Ok(GroupMessage::from_encoded(out, header))
    }

    /// The group.
    pub fn group_id(&self) -> &GroupId {
        &self.group_id
    }

    /// This chain's id.
    pub fn chain_id(&self) -> u32 {
        self.chain_id
    }

    /// The index the next message will use.
    pub fn index(&self) -> u32 {
        self.ratchet.index()
    }

    /// The chain's Ed25519 signing public key.
    pub fn signing_key_bytes(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// The plain encoding (it contains secret keys): version, type 0x22,
    /// group id, chain id, index, R_0..R_7, signing key seed.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        <Self as SavedState>::to_bytes(self)
    }

    /// Restores [`GroupSender::to_bytes`] strictly (the same as
    /// [`SavedState::from_bytes`]).
    ///
    /// # Errors
    ///
    /// As [`SavedState::from_bytes`] (SPEC §15.11).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        <Self as SavedState>::from_bytes(bytes)
    }

    /// The state encrypted at rest under `key` (draws 32 bytes of salt).
    ///
    /// # Errors
    ///
    /// As [`SavedState::seal`].
    pub fn seal<R: CryptoRng + ?Sized>(&self, key: &StorageKey, rng: &mut R) -> Result<Vec<u8>> {
        <Self as SavedState>::seal(self, key, rng)
    }

    /// Opens and restores [`GroupSender::seal`]'s output.
    ///
    /// # Errors
    ///
    /// As [`SavedState::unseal`], then as [`GroupSender::from_bytes`].
    pub fn unseal(sealed: &[u8], key: &StorageKey) -> Result<Self> {
        <Self as SavedState>::unseal(sealed, key)
    }
}

impl sealed::Sealed for GroupSender {}

impl SavedState for GroupSender {
    const TYPE_TAG: u8 = tag::GROUP_SENDER_STATE;

    fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        sealed::to_plain(Self::TYPE_TAG, self)
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self> {
        sealed::from_plain(Self::TYPE_TAG, bytes)
    }
}

/// Group id, chain id, the ratchet (index, R_0..R_7), signing key seed.
impl Codec for GroupSender {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.group_id.encode(out);
        self.chain_id.encode(out);
        self.ratchet.encode(out);
        self.signing.encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let group_id = GroupId::decode(r)?;
        let chain_id = u32::decode(r)?;
        let ratchet = Box::<Ratchet>::decode(r)?;
        let signing = Box::<SigningKey>::decode(r)?;
        Ok(Self {
            group_id,
            chain_id,
            ratchet,
            signing,
        })
    }
}

impl fmt::Debug for GroupSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupSender")
            .field("group_id", &self.group_id)
            .field("chain_id", &self.chain_id)
            .field("index", &self.ratchet.index())
            .finish_non_exhaustive()
    }
}
