//! The sending side of a sender chain.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use ed25519_dalek::SigningKey;
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::GroupId;
use super::distribution::SenderKeyDistribution;
use super::message::{GROUP_HEADER_LEN, GroupMessage, SIGNATURE_LEN};
use super::ratchet::{RATCHET_LEN, Ratchet};
use crate::codec::{Reader, tag, write_header};
use crate::crypto::{self, AEAD_TAG_LEN, label};
use crate::error::{Error, Result};
use crate::persist::{self, MAX_STATE_LEN, StorageKey};
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
        SenderKeyDistribution {
            group_id: self.group_id,
            chain_id: self.chain_id,
            ratchet: self.ratchet.clone(),
            signing_key: self.signing.verifying_key(),
        }
    }

    /// Encrypts and signs `plaintext` at the current index, then moves to the
    /// next index. Draws 16 bytes of salt. The last index, `u32::MAX`, is
    /// never used: at it this fails with [`Error::ChainExhausted`].
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

        let mut out =
            Vec::with_capacity(GROUP_HEADER_LEN + plaintext.len() + AEAD_TAG_LEN + SIGNATURE_LEN);
        write_header(&mut out, tag::GROUP_MESSAGE);
        out.extend_from_slice(self.group_id.as_bytes());
        out.extend_from_slice(&self.chain_id.to_be_bytes());
        out.extend_from_slice(&index.to_be_bytes());
        out.extend_from_slice(&salt);
        out.extend_from_slice(plaintext);

        let message_key = self.ratchet.message_key();
        let (key, nonce) =
            crypto::aead_key_nonce(&salt, message_key.as_bytes(), label::GROUP_MESSAGE_KEYS);
        let (header, body) = out.split_at_mut(GROUP_HEADER_LEN);
        let tag = crypto::aead_seal(&key, &nonce, header, body)?;
        out.extend_from_slice(&tag);
        let signature = crypto::sign(&self.signing, label::GROUP_SIGNATURE, &[&out]);
        out.extend_from_slice(&signature);

        self.ratchet.advance_to(next);
        Ok(GroupMessage::from_encoded(
            out,
            self.group_id,
            self.chain_id,
            index,
        ))
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
        let mut out = Zeroizing::new(Vec::with_capacity(Self::ENCODED_LEN));
        write_header(&mut out, tag::GROUP_SENDER_STATE);
        out.extend_from_slice(self.group_id.as_bytes());
        out.extend_from_slice(&self.chain_id.to_be_bytes());
        self.ratchet.write(&mut out);
        out.extend_from_slice(self.signing.as_bytes());
        out
    }

    /// Restores [`GroupSender::to_bytes`] strictly.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_STATE_LEN {
            return Err(Error::TooLarge);
        }
        let mut r = Reader::header(bytes, tag::GROUP_SENDER_STATE)?;
        let group_id = GroupId::from_bytes(r.array()?);
        let chain_id = r.u32()?;
        let ratchet = Ratchet::read(&mut r)?;
        let seed = Zeroizing::new(r.array::<32>()?);
        r.finish()?;
        Ok(Self {
            group_id,
            chain_id,
            ratchet: Box::new(ratchet),
            signing: Box::new(SigningKey::from_bytes(&seed)),
        })
    }

    /// The state encrypted at rest under `key` (draws 32 bytes of salt).
    pub fn seal<R: CryptoRng + ?Sized>(&self, key: &StorageKey, rng: &mut R) -> Result<Vec<u8>> {
        persist::seal(key, rng, &self.to_bytes())
    }

    /// Opens and restores [`GroupSender::seal`]'s output.
    pub fn unseal(sealed: &[u8], key: &StorageKey) -> Result<Self> {
        Self::from_bytes(&persist::unseal(key, tag::GROUP_SENDER_STATE, sealed)?)
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
