//! The receiving side of one sender chain: installing a distribution
//! (SPEC.md §15.7), receiving (§15.8) and its saved state (§15.11).

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;

use rand_core::TryCryptoRng;
use zeroize::Zeroizing;

use super::distribution::SenderKeyDistribution;
use super::message::{AeadParts, GroupMessage};
use super::ratchet::{MessageKey, RATCHET_LEN, Ratchet};
use super::{
    ChainId, GROUP_SKIP_WINDOW, Generation, GroupId, GroupPlaintext, MAX_GROUP_JUMP,
    MAX_GROUP_SKIPPED_KEYS, OWNER_LEN, Sender, check_group,
};
use crate::codec::{self, Codec, Count, Reader, Sink, tag};
use crate::crypto::{self, label};
use crate::error::{Error, Result};
use crate::ratchet::{Plaintext, Session};
use crate::sealed::{self, SavedState, StorageKey};
use crate::wire::Message;

/// The saved cache of skipped keys.
const SKIPPED_KEYS: Count = Count::u16(MAX_GROUP_SKIPPED_KEYS);

/// One member's view of another member's sender chain: the chain, its owner
/// and whether that is authenticated, the ratchet at the next index it
/// expects, and a bounded cache of keys for indices it skipped.
///
/// Holds no key for any index it already decrypted, nor the ratchet at any
/// earlier index: once a message is read (or its key evicted from the
/// cache) this state cannot read it again.
///
/// Standalone receivers are not de-duplicated: two receivers for one chain
/// each decrypt a message once. Use a [`GroupReceivers`](super::GroupReceivers)
/// store, which also applies the rules of SPEC §15.9.
///
/// Decrypting moves the state forward, so the caller persists it
/// ([`GroupReceiver::to_bytes`] or [`GroupReceiver::seal`]) before it shows
/// the plaintext.
pub struct GroupReceiver {
    generation: Generation,
    group_id: GroupId,
    chain: ChainId,
    sender: Sender,
    /// At the next index not yet reached.
    ratchet: Box<Ratchet>,
    /// Keys of skipped indices, all below the ratchet's index.
    /// Boxed so that the map's node moves never copy a key.
    skipped: BTreeMap<u32, Box<MessageKey>>,
}

impl GroupReceiver {
    /// Largest length of [`GroupReceiver::to_bytes`] (9,585 bytes).
    pub const MAX_ENCODED_LEN: usize =
        2 + 8 + 32 + 32 + OWNER_LEN + 1 + RATCHET_LEN + 2 + MAX_GROUP_SKIPPED_KEYS * (4 + 32);

    /// Installs, for group `group_id`, the sender key distribution carried by
    /// a decrypted pairwise plaintext, marked as authenticated by the
    /// session's peer (SPEC §15.7). The receiver starts at generation 0.
    ///
    /// # Errors
    ///
    /// In this order: the errors of [`SenderKeyDistribution::from_bytes`]
    /// (the plaintext must be exactly a distribution);
    /// [`Error::GroupMismatch`] if it is for another group;
    /// [`Error::GroupOwnerMismatch`] if its owner is not the session's peer;
    /// [`Error::InvalidSignature`] if the owner proof does not verify.
    pub fn install(group_id: &GroupId, plaintext: &Plaintext) -> Result<Self> {
        let distribution = SenderKeyDistribution::from_bytes(plaintext.as_bytes())?;
        check_group(group_id, distribution.group_id())?;
        if distribution.owner() != plaintext.sender() {
            return Err(Error::GroupOwnerMismatch);
        }
        distribution.verify_owner_proof()?;
        Ok(Self::from_distribution(distribution, true))
    }

    /// Decrypts `message` with `session` and installs the distribution it
    /// carries, as [`GroupReceiver::install`], in one call: if anything fails
    /// the session is unchanged. The caller persists the session afterwards.
    ///
    /// # Errors
    ///
    /// The errors of [`Session::decrypt`], then those of
    /// [`GroupReceiver::install`].
    pub fn receive_distribution(
        group_id: &GroupId,
        session: &mut Session,
        message: &Message,
    ) -> Result<Self> {
        let (_plaintext, receiver) =
            session.decrypt_then(message, |plaintext| Self::install(group_id, plaintext))?;
        Ok(receiver)
    }

    /// Installs, for group `group_id`, a sender key distribution whose origin
    /// sotto cannot vouch for (a key backup, a forwarded key). Every message
    /// it decrypts is marked [`Sender::Unauthenticated`] with the owner the
    /// distribution claims.
    ///
    /// # Errors
    ///
    /// In this order: the errors of [`SenderKeyDistribution::from_bytes`];
    /// [`Error::GroupMismatch`]; [`Error::InvalidSignature`] if the owner
    /// proof does not verify.
    pub fn import_unauthenticated(group_id: &GroupId, distribution: &[u8]) -> Result<Self> {
        let distribution = SenderKeyDistribution::from_bytes(distribution)?;
        check_group(group_id, distribution.group_id())?;
        distribution.verify_owner_proof()?;
        Ok(Self::from_distribution(distribution, false))
    }

    fn from_distribution(distribution: SenderKeyDistribution, authenticated: bool) -> Self {
        let (group_id, chain, owner, ratchet) = distribution.into_parts();
        let sender = if authenticated {
            Sender::Authenticated(owner)
        } else {
            Sender::Unauthenticated { claimed: owner }
        };
        Self {
            generation: Generation::default(),
            group_id,
            chain,
            sender,
            ratchet,
            skipped: BTreeMap::new(),
        }
    }

    /// Verifies and decrypts a message of this chain (SPEC §15.8), then adds
    /// 1 to the generation. All or nothing: on any error the state is exactly
    /// as it was.
    ///
    /// # Errors
    ///
    /// In this order: [`Error::UnknownGroupChain`] for another group or
    /// chain; [`Error::InvalidSignature`] (strict verification; no key is
    /// derived before it succeeds); for a cached index
    /// [`Error::AuthenticationFailed`]; [`Error::DuplicateMessage`] for an
    /// index already read or evicted; [`Error::GroupIndexOutOfRange`] for
    /// more than [`MAX_GROUP_JUMP`] ahead or `u32::MAX`;
    /// [`Error::AuthenticationFailed`].
    pub fn decrypt(&mut self, message: &GroupMessage) -> Result<GroupPlaintext> {
        if message.group_id() != &self.group_id || message.chain() != &self.chain {
            return Err(Error::UnknownGroupChain);
        }
        let (signed, signature) = message.signed_parts();
        crypto::verify(
            self.chain.key(),
            label::GROUP_SIGNATURE,
            &[signed],
            signature,
        )?;
        let parts = message.aead_parts().ok_or(Error::Truncated)?;
        let index = message.index();

        if let Some(key) = self.skipped.get(&index) {
            let plaintext = open(&parts, key)?;
            self.skipped.remove(&index);
            self.generation.bump();
            return Ok(self.output(plaintext, index));
        }
        let next = self.ratchet.index();
        if index < next {
            return Err(Error::DuplicateMessage);
        }
        if index == u32::MAX || index - next > MAX_GROUP_JUMP {
            return Err(Error::GroupIndexOutOfRange { index });
        }

        // Keep keys only for the skipped indices just below the message,
        // the ones most likely still in flight.
        let first_cached = index.saturating_sub(GROUP_SKIP_WINDOW).max(next);
        let mut ratchet = self.ratchet.boxed();
        ratchet.advance_to(first_cached);
        // Empty (no allocation) for an in-order message.
        let mut skipped = Vec::with_capacity(usize::try_from(index - first_cached).unwrap_or(0));
        while ratchet.index() < index {
            skipped.push((ratchet.index(), ratchet.message_key()));
            ratchet.increment();
        }
        let plaintext = open(&parts, &ratchet.message_key())?;
        ratchet.increment();

        self.ratchet = ratchet;
        self.skipped.extend(skipped);
        while self.skipped.len() > MAX_GROUP_SKIPPED_KEYS {
            self.skipped.pop_first();
        }
        self.generation.bump();
        Ok(self.output(plaintext, index))
    }

    fn output(&self, plaintext: Vec<u8>, index: u32) -> GroupPlaintext {
        GroupPlaintext {
            plaintext,
            chain: self.chain,
            index,
            sender: self.sender,
        }
    }

    /// The group.
    pub fn group_id(&self) -> &GroupId {
        &self.group_id
    }

    /// The sender chain.
    pub fn chain(&self) -> &ChainId {
        &self.chain
    }

    /// Who owns the chain, and whether that is authenticated.
    pub fn sender(&self) -> &Sender {
        &self.sender
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

    /// The generation (SPEC §10.1): 0 when installed, 1 more after every
    /// successful decrypt (and every change a store makes to it).
    pub fn generation(&self) -> u64 {
        self.generation.get()
    }

    pub(crate) fn ratchet(&self) -> &Ratchet {
        &self.ratchet
    }

    /// A store's rule 2.3 (SPEC §15.9): the ratchet moves to `ratchet` (if
    /// given, a later point of the same chain) and the mark becomes
    /// authenticated (if asked); the cache stays; generation + 1.
    pub(crate) fn merge(&mut self, ratchet: Option<Box<Ratchet>>, authenticate: bool) {
        if let Some(ratchet) = ratchet {
            debug_assert!(ratchet.index() > self.ratchet.index());
            self.ratchet = ratchet;
        }
        if authenticate {
            self.sender = Sender::Authenticated(*self.sender.owner());
        }
        self.generation.bump();
    }

    /// The ratchet, given up by an incoming receiver that a store merges.
    pub(crate) fn into_ratchet(self) -> Box<Ratchet> {
        let Self { ratchet, .. } = self;
        ratchet
    }

    /// The plain encoding (it contains secret keys): version, type 0x23,
    /// generation, group id, chain, owner, authenticated flag, next index,
    /// R_0..R_7, then a u16 count of (index, key) pairs in increasing index
    /// order (SPEC §15.11).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        <Self as SavedState>::to_bytes(self)
    }

    /// Restores [`GroupReceiver::to_bytes`] strictly (the same as
    /// [`SavedState::from_bytes`]).
    ///
    /// # Errors
    ///
    /// As [`SavedState::from_bytes`] (SPEC §15.11), with
    /// [`Error::InvalidPublicKey`] for the chain or the owner and
    /// [`Error::InvalidEncoding`] for the flag, a count over
    /// [`MAX_GROUP_SKIPPED_KEYS`], or cached indices out of order or not
    /// below the next index.
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

    /// Opens and restores [`GroupReceiver::seal`]'s output.
    ///
    /// # Errors
    ///
    /// As [`SavedState::unseal`], then as [`GroupReceiver::from_bytes`].
    pub fn unseal(sealed: &[u8], key: &StorageKey, context: &[u8]) -> Result<Self> {
        <Self as SavedState>::unseal(sealed, key, context)
    }
}

impl sealed::Sealed for GroupReceiver {}

impl SavedState for GroupReceiver {
    fn generation(&self) -> u64 {
        GroupReceiver::generation(self)
    }

    const TYPE_TAG: u8 = tag::GROUP_RECEIVER_STATE;

    fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        sealed::to_plain(Self::TYPE_TAG, self)
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self> {
        sealed::from_plain(Self::TYPE_TAG, bytes)
    }
}

/// SPEC §15.11: generation, group id, chain, owner and flag, the ratchet,
/// then the cached keys in increasing index order, all below the next index.
impl Codec for GroupReceiver {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.generation.encode(out);
        self.group_id.encode(out);
        self.chain.encode(out);
        self.sender.encode(out);
        self.ratchet.encode(out);
        codec::write_map(out, SKIPPED_KEYS, &self.skipped);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let generation = Generation::decode(r)?;
        let group_id = GroupId::decode(r)?;
        let chain = ChainId::decode(r)?;
        let sender = Sender::decode(r)?;
        let ratchet = Ratchet::decode_boxed(r)?;
        let skipped = codec::read_map(r, SKIPPED_KEYS, ratchet.index())?;
        Ok(Self {
            generation,
            group_id,
            chain,
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
            .field("generation", &self.generation.get())
            .field("group_id", &self.group_id)
            .field("chain", &self.chain)
            .field("sender", &self.sender)
            .field("next_index", &self.ratchet.index())
            .field("skipped_keys", &self.skipped.len())
            .finish_non_exhaustive()
    }
}
