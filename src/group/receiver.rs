//! The receiving side of one sender chain: installing a distribution
//! (SPEC.md §15.7), receiving (§15.8) and its saved state (§15.11).

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;

use ed25519_dalek::VerifyingKey;
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::distribution::SenderKeyDistribution;
use super::message::{AeadParts, GroupMessage};
use super::ratchet::{MessageKey, RATCHET_LEN, Ratchet};
use super::{
    GROUP_SKIP_WINDOW, GroupId, GroupPlaintext, MAX_GROUP_JUMP, MAX_GROUP_SKIPPED_KEYS, Sender,
};
use crate::codec::{self, Codec, Count, Reader, Sink, tag};
use crate::crypto::{self, label};
use crate::error::{Error, Result};
use crate::keys::IDENTITY_KEY_LEN;
use crate::ratchet::Session;
use crate::sealed::{self, SavedState, StorageKey};

/// The saved cache of skipped keys.
const SKIPPED_KEYS: Count = Count::u16(MAX_GROUP_SKIPPED_KEYS);

/// One member's view of another member's sender chain: the chain's signing
/// public key, the ratchet at the next index it expects, and a bounded cache
/// of keys for indices it skipped.
///
/// Holds no key for any index it already decrypted, nor the ratchet at any
/// earlier index: once a message is read (or its key evicted from the
/// cache) this state cannot read it again.
///
/// Decrypting moves the state forward, so the caller persists it
/// ([`GroupReceiver::to_bytes`] or [`GroupReceiver::seal`]) before it shows
/// the plaintext.
pub struct GroupReceiver {
    group_id: GroupId,
    chain_id: u32,
    signing_key: VerifyingKey,
    sender: Sender,
    /// At the next index not yet reached.
    ratchet: Box<Ratchet>,
    /// Keys of skipped indices, all below the ratchet's index.
    /// Boxed so that the map's node moves never copy a key.
    skipped: BTreeMap<u32, Box<MessageKey>>,
}

impl GroupReceiver {
    /// Largest length of [`GroupReceiver::to_bytes`].
    pub const MAX_ENCODED_LEN: usize =
        2 + 32 + 4 + 32 + 1 + IDENTITY_KEY_LEN + RATCHET_LEN + 2 + MAX_GROUP_SKIPPED_KEYS * 36;

    /// Installs a sender key distribution that arrived as the plaintext of a
    /// message decrypted by `delivered_by`. The chain is attributed to that
    /// session's remote identity: pass the session that decrypted these very
    /// bytes, and check its identity against the group's membership.
    ///
    /// The bytes hold the chain's ratchet secret, and `Session::decrypt`
    /// returned them in a plain `Vec`: wipe them after this call (for example
    /// by holding them in `zeroize::Zeroizing`).
    ///
    /// # Errors
    ///
    /// As [`SenderKeyDistribution::from_bytes`].
    pub fn accept(distribution: &[u8], delivered_by: &Session) -> Result<Self> {
        let distribution = SenderKeyDistribution::from_bytes(distribution)?;
        Ok(Self::from_distribution(
            distribution,
            Sender::Authenticated(*delivered_by.remote_identity()),
        ))
    }

    /// Installs a sender key distribution whose origin sotto cannot vouch for
    /// (a key backup, a forwarded key). Every message it decrypts is marked
    /// [`Sender::Unauthenticated`]: anyone who saw the distribution can have
    /// written it.
    ///
    /// # Errors
    ///
    /// As [`SenderKeyDistribution::from_bytes`].
    pub fn import_unauthenticated(distribution: &[u8]) -> Result<Self> {
        let distribution = SenderKeyDistribution::from_bytes(distribution)?;
        Ok(Self::from_distribution(
            distribution,
            Sender::Unauthenticated,
        ))
    }

    fn from_distribution(distribution: SenderKeyDistribution, sender: Sender) -> Self {
        let (group_id, chain_id, ratchet, signing_key) = distribution.into_parts();
        Self {
            group_id,
            chain_id,
            signing_key,
            sender,
            ratchet,
            skipped: BTreeMap::new(),
        }
    }

    /// Verifies and decrypts a message of this chain. All or nothing: on any
    /// error the state is exactly as it was.
    ///
    /// # Errors
    ///
    /// Checks in this order (SPEC §15.8): group and chain id ([`Error::UnknownGroupChain`]),
    /// the signature, strictly ([`Error::InvalidSignature`]), the index
    /// (already read or evicted: [`Error::DuplicateMessage`]; more than
    /// [`MAX_GROUP_JUMP`] ahead or `u32::MAX`:
    /// [`Error::GroupIndexOutOfRange`]), then the AEAD tag
    /// ([`Error::AuthenticationFailed`]). No key is derived before the
    /// signature verified.
    pub fn decrypt(&mut self, message: &GroupMessage) -> Result<GroupPlaintext> {
        if message.group_id() != &self.group_id || message.chain_id() != self.chain_id {
            return Err(Error::UnknownGroupChain);
        }
        let (signed, signature) = message.signed_parts();
        crypto::verify(
            &self.signing_key,
            label::GROUP_SIGNATURE,
            &[signed],
            signature,
        )?;
        let parts = message.aead_parts().ok_or(Error::Truncated)?;
        let index = message.index();

        if let Some(key) = self.skipped.get(&index) {
            let plaintext = open(&parts, key)?;
            self.skipped.remove(&index);
            return Ok(self.output(plaintext, index));
        }
        let next = self.ratchet.index();
        if index < next {
            return Err(Error::DuplicateMessage);
        }
        let after = index
            .checked_add(1)
            .ok_or(Error::GroupIndexOutOfRange { index })?;
        if index - next > MAX_GROUP_JUMP {
            return Err(Error::GroupIndexOutOfRange { index });
        }

        // Keep keys only for the indices just below the target, which are
        // the ones most likely still in flight.
        let mut ratchet: Ratchet = (*self.ratchet).clone();
        let first_cached = index.saturating_sub(GROUP_SKIP_WINDOW).max(next);
        ratchet.advance_to(first_cached);
        // Empty (no allocation) for an in-order message.
        let mut skipped = Vec::with_capacity(usize::try_from(index - first_cached).unwrap_or(0));
        while ratchet.index() < index {
            skipped.push((ratchet.index(), Box::new(ratchet.message_key())));
            ratchet.advance_to(ratchet.index().saturating_add(1));
        }
        let plaintext = open(&parts, &ratchet.message_key())?;
        ratchet.advance_to(after);

        *self.ratchet = ratchet;
        self.skipped.extend(skipped);
        while self.skipped.len() > MAX_GROUP_SKIPPED_KEYS {
            self.skipped.pop_first();
        }
        Ok(self.output(plaintext, index))
    }

    fn output(&self, plaintext: Vec<u8>, index: u32) -> GroupPlaintext {
        GroupPlaintext {
            plaintext,
            chain_id: self.chain_id,
            index,
            sender: self.sender,
        }
    }

    /// The group.
    pub fn group_id(&self) -> &GroupId {
        &self.group_id
    }

    /// The sender chain.
    pub fn chain_id(&self) -> u32 {
        self.chain_id
    }

    /// Who sent the distribution, as far as sotto can tell.
    pub fn sender(&self) -> &Sender {
        &self.sender
    }

    /// The chain's Ed25519 signing public key.
    pub fn signing_key_bytes(&self) -> [u8; 32] {
        self.signing_key.to_bytes()
    }

    /// The lowest index not yet reached; lower indices decrypt only from the
    /// skipped-key cache.
    pub fn next_index(&self) -> u32 {
        self.ratchet.index()
    }

    /// How many skipped message keys are cached.
    pub fn skipped_key_count(&self) -> usize {
        self.skipped.len()
    }

    /// The chain's signing key, which a store keeps unique.
    pub(crate) fn signing_key(&self) -> &VerifyingKey {
        &self.signing_key
    }

    /// Moves this chain's ratchet to `newer`'s, a receiver of the same
    /// chain at a later index; the cached keys stay.
    pub(crate) fn catch_up(&mut self, newer: Self) {
        debug_assert!(newer.next_index() > self.next_index());
        self.ratchet = newer.ratchet;
    }

    /// The plain encoding (it contains secret keys): version, type 0x23,
    /// group id, chain id, signing key, authenticated flag and identity if
    /// set, next index, R_0..R_7, then a u16 count of (index, key) pairs in
    /// increasing index order.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        <Self as SavedState>::to_bytes(self)
    }

    /// Restores [`GroupReceiver::to_bytes`] strictly (the same as
    /// [`SavedState::from_bytes`]).
    ///
    /// # Errors
    ///
    /// As [`SavedState::from_bytes`] (SPEC §15.11), with
    /// [`Error::InvalidPublicKey`] for the signing key or the identity and
    /// [`Error::InvalidEncoding`] for the flag, a count over
    /// [`MAX_GROUP_SKIPPED_KEYS`], or cached indices out of order or not
    /// below the next index.
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

    /// Opens and restores [`GroupReceiver::seal`]'s output.
    ///
    /// # Errors
    ///
    /// As [`SavedState::unseal`], then as [`GroupReceiver::from_bytes`].
    pub fn unseal(sealed: &[u8], key: &StorageKey) -> Result<Self> {
        <Self as SavedState>::unseal(sealed, key)
    }
}

impl sealed::Sealed for GroupReceiver {}

impl SavedState for GroupReceiver {
    const TYPE_TAG: u8 = tag::GROUP_RECEIVER_STATE;

    fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        sealed::to_plain(Self::TYPE_TAG, self)
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self> {
        sealed::from_plain(Self::TYPE_TAG, bytes)
    }
}

/// SPEC §15.11: group id, chain id, signing key, sender, the ratchet, then
/// the cached keys in increasing index order, all below the next index.
impl Codec for GroupReceiver {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.group_id.encode(out);
        self.chain_id.encode(out);
        self.signing_key.encode(out);
        self.sender.encode(out);
        self.ratchet.encode(out);
        codec::write_map(out, SKIPPED_KEYS, &self.skipped);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let group_id = GroupId::decode(r)?;
        let chain_id = u32::decode(r)?;
        let signing_key = VerifyingKey::decode(r)?;
        let sender = Sender::decode(r)?;
        let ratchet = Box::<Ratchet>::decode(r)?;
        let skipped = codec::read_map(r, SKIPPED_KEYS, ratchet.index())?;
        Ok(Self {
            group_id,
            chain_id,
            signing_key,
            sender,
            ratchet,
            skipped,
        })
    }
}

fn open(parts: &AeadParts<'_>, key: &MessageKey) -> Result<Vec<u8>> {
    let (aead_key, nonce) =
        crypto::aead_key_nonce(parts.salt, key.as_bytes(), label::GROUP_MESSAGE_KEYS);
    let mut plaintext = parts.ciphertext.to_vec();
    crypto::aead_open(&aead_key, &nonce, parts.header, &mut plaintext, parts.tag)?;
    Ok(plaintext)
}

impl fmt::Debug for GroupReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupReceiver")
            .field("group_id", &self.group_id)
            .field("chain_id", &self.chain_id)
            .field("sender", &self.sender)
            .field("next_index", &self.ratchet.index())
            .field("skipped_keys", &self.skipped.len())
            .finish_non_exhaustive()
    }
}
