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
/// expects, how far it has read, and a bounded cache of keys for indices it
/// skipped.
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
    /// 0 if nothing was decrypted, else 1 + the highest index decrypted;
    /// at most the ratchet's index (SPEC §15.8).
    read: u32,
    /// Keys of skipped indices, all below the ratchet's index.
    /// Boxed so that the map's node moves never copy a key.
    skipped: BTreeMap<u32, Box<MessageKey>>,
}

impl GroupReceiver {
    /// Largest length of [`GroupReceiver::to_bytes`] (9,589 bytes).
    pub const MAX_ENCODED_LEN: usize =
        2 + 8 + 32 + 32 + OWNER_LEN + 1 + RATCHET_LEN + 4 + 2 + MAX_GROUP_SKIPPED_KEYS * (4 + 32);

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
    /// [`Error::InvalidSignature`] if the owner proof, then the owner
    /// signature, does not verify.
    pub fn install(group_id: &GroupId, plaintext: &Plaintext) -> Result<Self> {
        let distribution = SenderKeyDistribution::from_bytes(plaintext.as_bytes())?;
        check_group(group_id, distribution.group_id())?;
        if distribution.owner() != plaintext.sender() {
            return Err(Error::GroupOwnerMismatch);
        }
        distribution.verify_owner()?;
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

    /// Installs, for group `group_id`, a sender key distribution that did
    /// not come out of its owner's session (a key backup, a forwarded key):
    /// its signatures prove that the owner created the chain, but its
    /// ratchet may have been altered or moved by whoever passed it on. Every
    /// message it decrypts is marked [`Sender::Unauthenticated`] with that
    /// owner.
    ///
    /// # Errors
    ///
    /// In this order: the errors of [`SenderKeyDistribution::from_bytes`];
    /// [`Error::GroupMismatch`]; [`Error::InvalidSignature`] if the owner
    /// proof, then the owner signature, does not verify.
    pub fn import_unauthenticated(group_id: &GroupId, distribution: &[u8]) -> Result<Self> {
        let distribution = SenderKeyDistribution::from_bytes(distribution)?;
        check_group(group_id, distribution.group_id())?;
        distribution.verify_owner()?;
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
            read: 0,
            skipped: BTreeMap::new(),
        }
    }

    /// Verifies and decrypts a message of this chain (SPEC §15.8), then
    /// records how far it has read and adds 1 to the generation. All or
    /// nothing: on any error the state is exactly as it was.
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
            self.mark_read(index);
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
        self.mark_read(index);
        self.generation.bump();
        Ok(self.output(plaintext, index))
    }

    /// `read = max(read, index + 1)`; `index` is below `u32::MAX` (step 5,
    /// or a cached index below next).
    fn mark_read(&mut self, index: u32) {
        self.read = self.read.max(index.saturating_add(1));
    }

    fn output(&self, plaintext: Zeroizing<Vec<u8>>, index: u32) -> GroupPlaintext {
        GroupPlaintext::new(plaintext, self.chain, index, self.sender)
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

    /// How far this receiver has read: 0 if it has decrypted nothing, else
    /// the highest index it has decrypted plus one (at most
    /// [`GroupReceiver::next_index`]).
    pub fn read_index(&self) -> u32 {
        self.read
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

    /// A store's rule 2.4 (SPEC §15.9): the owner's own later copy of this
    /// chain (its lineage checked by the caller). The ratchet moves forward
    /// to `ratchet`; the cache, `read` and mark stay; generation + 1.
    pub(crate) fn advance(&mut self, ratchet: Box<Ratchet>) {
        debug_assert!(ratchet.index() > self.ratchet.index());
        self.ratchet = ratchet;
        self.generation.bump();
    }

    /// A store's rule 2.5 (SPEC §15.9), the upgrade of an unauthenticated
    /// receiver by the owner's own copy `authentic`, which replaces its
    /// ratchet: the ratchet becomes `authentic` jumped to
    /// `p = max(authentic's index, read)`, so no index read here is read
    /// again; cached keys below `authentic`'s index stay (nothing can check
    /// them), those from there to `p` are recomputed from `authentic`, in
    /// increasing order with one copy, and any at or above `p` are dropped.
    /// `read` stays; the mark becomes authenticated; generation + 1.
    pub(crate) fn upgrade(&mut self, authentic: &Ratchet) {
        let from = authentic.index();
        let to = from.max(self.read);
        let mut walker = authentic.boxed();
        let mut skipped = BTreeMap::new();
        for (index, key) in core::mem::take(&mut self.skipped) {
            if index < from {
                skipped.insert(index, key);
            } else if index < to {
                walker.advance_to(index);
                skipped.insert(index, walker.message_key());
            }
        }
        walker.advance_to(to);
        self.ratchet = walker;
        self.skipped = skipped;
        self.sender = Sender::Authenticated(*self.sender.owner());
        self.generation.bump();
    }

    /// The ratchet, given up by an incoming receiver that a store merges.
    pub(crate) fn into_ratchet(self) -> Box<Ratchet> {
        let Self { ratchet, .. } = self;
        ratchet
    }

    /// The plain encoding (it contains secret keys): version, type 0x23,
    /// generation, group id, chain, owner, authenticated flag, next index,
    /// read index, R_0..R_7, then a u16 count of (index, key) pairs in
    /// increasing index order (SPEC §15.11).
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
    /// [`Error::InvalidEncoding`] for the flag, a read index above the next
    /// index, a count over [`MAX_GROUP_SKIPPED_KEYS`], or cached indices out
    /// of order or not below the next index.
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

/// SPEC §15.11: generation, group id, chain, owner and flag, the next
/// index, the read index (at most next, checked when read), R_0..R_7, then
/// the cached keys in increasing index order, all below the next index.
impl Codec for GroupReceiver {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.generation.encode(out);
        self.group_id.encode(out);
        self.chain.encode(out);
        self.sender.encode(out);
        self.ratchet.index().encode(out);
        self.read.encode(out);
        self.ratchet.encode_levels(out);
        codec::write_map(out, SKIPPED_KEYS, &self.skipped);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let generation = Generation::decode(r)?;
        let group_id = GroupId::decode(r)?;
        let chain = ChainId::decode(r)?;
        let sender = Sender::decode(r)?;
        let next = u32::decode(r)?;
        let read = u32::decode(r)?;
        if read > next {
            return Err(Error::InvalidEncoding);
        }
        let ratchet = Ratchet::decode_levels(next, r)?;
        let skipped = codec::read_map(r, SKIPPED_KEYS, next)?;
        Ok(Self {
            generation,
            group_id,
            chain,
            sender,
            ratchet,
            read,
            skipped,
        })
    }
}

/// The plaintext, in memory zeroized on drop from the start.
fn open(parts: &AeadParts<'_>, key: &MessageKey) -> Result<Zeroizing<Vec<u8>>> {
    let (aead_key, nonce) =
        crypto::aead_key_nonce(parts.salt, key.as_bytes(), label::GROUP_MESSAGE_KEYS);
    let mut plaintext = Zeroizing::new(parts.ciphertext.to_vec());
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
            .field("read_index", &self.read)
            .field("skipped_keys", &self.skipped.len())
            .finish_non_exhaustive()
    }
}
