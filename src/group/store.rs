//! The receivers of one group, looked up by chain, and the rules that insert
//! a chain (SPEC.md §15.9) and save the store (§15.11).

use alloc::collections::{BTreeSet, VecDeque};
use alloc::vec::Vec;

use rand_core::TryCryptoRng;
use zeroize::Zeroizing;

use super::message::GroupMessage;
use super::ratchet::Ratchet;
use super::receiver::GroupReceiver;
use super::{
    ChainId, Generation, GroupId, GroupPlaintext, InsertOutcome, MAX_CHAINS_PER_SENDER,
    MAX_GROUP_RECEIVERS, MAX_UNAUTHENTICATED_CHAINS_PER_OWNER, MAX_UNAUTHENTICATED_GROUP_CHAINS,
    check_group,
};
use crate::codec::{Codec, Count, Reader, Sink, tag, write_header};
use crate::error::{Error, Result};
use crate::keys::IdentityKey;
use crate::ratchet::{Plaintext, Session};
use crate::sealed::{self, SavedState, StorageKey};
use crate::wire::Message;

/// The count of receivers in the saved store.
const RECEIVERS: Count = Count::u16(MAX_GROUP_RECEIVERS);

/// Every sender chain this member can read in one group (SPEC §15.9).
///
/// A chain is held once, with one owner. Only the owner's own distribution
/// (installed from the owner's session) changes a held chain: it moves an
/// authenticated chain forward if it is on the same ratchet (another ratchet
/// is refused), and it replaces the ratchet of an unauthenticated one, which
/// it makes authenticated, never moving it back past an index it read. An
/// import never changes a held chain. Owners keep at most
/// [`MAX_CHAINS_PER_SENDER`] authenticated and
/// [`MAX_UNAUTHENTICATED_CHAINS_PER_OWNER`] unauthenticated chains (after a
/// rotation the older ones still read late messages, then the oldest goes),
/// the store at most [`MAX_UNAUTHENTICATED_GROUP_CHAINS`] unauthenticated and
/// [`MAX_GROUP_RECEIVERS`] chains in all; an unauthenticated chain never
/// evicts an authenticated one.
///
/// Every call that changes the store adds 1 to its generation; persist it
/// ([`GroupReceivers::to_bytes`] or [`GroupReceivers::seal`]) after every
/// successful call, before showing a plaintext.
#[derive(Debug)]
pub struct GroupReceivers {
    generation: Generation,
    group_id: GroupId,
    /// Oldest first.
    receivers: VecDeque<GroupReceiver>,
}

impl GroupReceivers {
    /// An empty store for `group_id`, at generation 0.
    pub fn new(group_id: GroupId) -> Self {
        Self {
            generation: Generation::default(),
            group_id,
            receivers: VecDeque::new(),
        }
    }

    /// The group.
    pub fn group_id(&self) -> &GroupId {
        &self.group_id
    }

    /// The generation (SPEC §10.1, §15.9).
    pub fn generation(&self) -> u64 {
        self.generation.get()
    }

    /// Installs the sender key distribution carried by a decrypted pairwise
    /// plaintext, as authenticated by the session's peer (SPEC §15.7), then
    /// applies the store's rules (§15.9). All or nothing.
    ///
    /// # Errors
    ///
    /// In this order: the errors of
    /// [`SenderKeyDistribution::from_bytes`](super::SenderKeyDistribution::from_bytes);
    /// [`Error::GroupMismatch`]; [`Error::GroupOwnerMismatch`] if the owner
    /// is not the session's peer; [`Error::InvalidSignature`] for the owner
    /// proof, then the owner signature; [`Error::GroupChainConflict`] (the
    /// chain is held with another owner, or held authenticated on another
    /// ratchet).
    pub fn install(&mut self, plaintext: &Plaintext) -> Result<InsertOutcome> {
        let receiver = GroupReceiver::install(&self.group_id, plaintext)?;
        self.insert(receiver)
    }

    /// Decrypts `message` with `session` and installs the distribution it
    /// carries, as [`GroupReceivers::install`], in one call: if anything
    /// fails, neither the session nor the store changes. Persist the store,
    /// then the session, before acting on the outcome.
    ///
    /// # Errors
    ///
    /// The errors of [`Session::decrypt`], then those of
    /// [`GroupReceivers::install`].
    pub fn receive_distribution(
        &mut self,
        session: &mut Session,
        message: &Message,
    ) -> Result<InsertOutcome> {
        let (_plaintext, outcome) =
            session.decrypt_then(message, |plaintext| self.install(plaintext))?;
        Ok(outcome)
    }

    /// Imports a distribution that did not come out of its owner's session
    /// (a key backup, a forwarded key), marked [`Sender::Unauthenticated`]
    /// with its owner, under the store's rules: a chain the store already
    /// holds is left as it is. All or nothing.
    ///
    /// [`Sender::Unauthenticated`]: super::Sender::Unauthenticated
    ///
    /// # Errors
    ///
    /// In this order: the errors of
    /// [`SenderKeyDistribution::from_bytes`](super::SenderKeyDistribution::from_bytes);
    /// [`Error::GroupMismatch`]; [`Error::InvalidSignature`] for the owner
    /// proof, then the owner signature; [`Error::GroupChainConflict`] if the
    /// chain is held with another owner; [`Error::GroupStoreFull`] when the
    /// store holds [`MAX_GROUP_RECEIVERS`] authenticated chains.
    pub fn import_unauthenticated(&mut self, distribution: &[u8]) -> Result<InsertOutcome> {
        let receiver = GroupReceiver::import_unauthenticated(&self.group_id, distribution)?;
        self.insert(receiver)
    }

    /// SPEC §15.9, rules 1 to 3, in order.
    fn insert(&mut self, incoming: GroupReceiver) -> Result<InsertOutcome> {
        check_group(&self.group_id, incoming.group_id())?;
        let Some(position) = self.position(incoming.chain()) else {
            self.add(incoming)?;
            return Ok(InsertOutcome::Added);
        };
        let held = self
            .receivers
            .get_mut(position)
            .ok_or(Error::GroupChainConflict)?;
        if held.sender().owner() != incoming.sender().owner() {
            return Err(Error::GroupChainConflict);
        }
        let outcome = match (
            held.sender().is_authenticated(),
            incoming.sender().is_authenticated(),
        ) {
            // Rules 2.2 and 2.3: an import never changes a held chain.
            (_, false) => InsertOutcome::Unchanged,
            // Rule 2.4: the owner sent its distribution again.
            (true, true) => {
                if !same_chain(held.ratchet(), incoming.ratchet()) {
                    return Err(Error::GroupChainConflict);
                }
                if incoming.next_index() > held.next_index() {
                    held.advance(incoming.into_ratchet());
                    InsertOutcome::Advanced
                } else {
                    InsertOutcome::Unchanged
                }
            }
            // Rule 2.5: the owner's own copy replaces an import's ratchet.
            (false, true) => {
                held.upgrade(incoming.ratchet());
                InsertOutcome::Upgraded
            }
        };
        if outcome != InsertOutcome::Unchanged {
            self.generation.bump();
        }
        Ok(outcome)
    }

    /// Rule 3: a new chain, appended as the newest after the evictions its
    /// kind allows.
    fn add(&mut self, incoming: GroupReceiver) -> Result<()> {
        if incoming.sender().is_authenticated() {
            self.add_authenticated(incoming);
            Ok(())
        } else {
            self.add_unauthenticated(incoming)
        }
    }

    fn add_authenticated(&mut self, incoming: GroupReceiver) {
        let owner = *incoming.sender().owner();
        if self.count(|r| r.sender().authenticated() == Some(&owner)) >= MAX_CHAINS_PER_SENDER {
            self.remove_first(|r| r.sender().authenticated() == Some(&owner));
        }
        if self.receivers.len() >= MAX_GROUP_RECEIVERS
            && !self.remove_first(|r| !r.sender().is_authenticated())
        {
            self.receivers.pop_front();
        }
        self.receivers.push_back(incoming);
        self.generation.bump();
    }

    fn add_unauthenticated(&mut self, incoming: GroupReceiver) -> Result<()> {
        let claimed = *incoming.sender().owner();
        let claims =
            |r: &GroupReceiver| !r.sender().is_authenticated() && r.sender().owner() == &claimed;
        let unauthenticated = |r: &GroupReceiver| !r.sender().is_authenticated();
        // The only failure, checked before anything changes: every eviction
        // below leaves the store under its bound, so a full store reaches
        // the last step unchanged, and then only an unauthenticated chain
        // may go.
        if self.receivers.len() >= MAX_GROUP_RECEIVERS && self.count(unauthenticated) == 0 {
            return Err(Error::GroupStoreFull);
        }
        if self.count(claims) >= MAX_UNAUTHENTICATED_CHAINS_PER_OWNER {
            self.remove_first(claims);
        }
        if self.count(unauthenticated) >= MAX_UNAUTHENTICATED_GROUP_CHAINS {
            self.remove_first(unauthenticated);
        }
        if self.receivers.len() >= MAX_GROUP_RECEIVERS {
            self.remove_first(unauthenticated);
        }
        self.receivers.push_back(incoming);
        self.generation.bump();
        Ok(())
    }

    fn count(&self, f: impl Fn(&GroupReceiver) -> bool) -> usize {
        self.receivers.iter().filter(|r| f(r)).count()
    }

    /// Deletes the oldest receiver matching `f`; whether there was one.
    fn remove_first(&mut self, f: impl Fn(&GroupReceiver) -> bool) -> bool {
        match self.receivers.iter().position(f) {
            Some(position) => self.receivers.remove(position).is_some(),
            None => false,
        }
    }

    fn position(&self, chain: &ChainId) -> Option<usize> {
        self.receivers.iter().position(|r| r.chain() == chain)
    }

    /// Decrypts with the receiver for the message's chain (see
    /// [`GroupReceiver::decrypt`]); on success the receiver's and the
    /// store's generations go up by 1. All or nothing.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownGroupChain`] if the message is for another group or a
    /// chain the store does not hold, else as [`GroupReceiver::decrypt`].
    pub fn decrypt(&mut self, message: &GroupMessage) -> Result<GroupPlaintext> {
        if message.group_id() != &self.group_id {
            return Err(Error::UnknownGroupChain);
        }
        let plaintext = self
            .receivers
            .iter_mut()
            .find(|r| r.chain() == message.chain())
            .ok_or(Error::UnknownGroupChain)?
            .decrypt(message)?;
        self.generation.bump();
        Ok(plaintext)
    }

    /// The receiver for `chain`.
    pub fn get(&self, chain: &ChainId) -> Option<&GroupReceiver> {
        self.receivers.iter().find(|r| r.chain() == chain)
    }

    /// Deletes every chain whose owner or claimed owner is `identity` (a
    /// member who left); returns how many.
    pub fn remove_owner(&mut self, identity: &IdentityKey) -> usize {
        let before = self.receivers.len();
        self.receivers.retain(|r| r.sender().owner() != identity);
        let removed = before - self.receivers.len();
        if removed > 0 {
            self.generation.bump();
        }
        removed
    }

    /// The receivers, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &GroupReceiver> {
        self.receivers.iter()
    }

    /// How many chains the store holds.
    pub fn len(&self) -> usize {
        self.receivers.len()
    }

    /// Whether the store holds no chain.
    pub fn is_empty(&self) -> bool {
        self.receivers.is_empty()
    }

    /// The plain encoding (it contains secret keys): version, type 0x24,
    /// generation, group id, then a u16 count of receivers, oldest first,
    /// each as a u16 length and its own saved state (SPEC §15.11).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        <Self as SavedState>::to_bytes(self)
    }

    /// Restores [`GroupReceivers::to_bytes`] strictly (the same as
    /// [`SavedState::from_bytes`]).
    ///
    /// # Errors
    ///
    /// As [`SavedState::from_bytes`] (SPEC §15.11): each receiver decoded
    /// from exactly its length by its own rules (a length too short for it
    /// gives its [`Error::Truncated`], one too long its
    /// [`Error::TrailingBytes`]), [`Error::InvalidEncoding`] for a count over
    /// [`MAX_GROUP_RECEIVERS`]; after the final [`Error::TrailingBytes`] check,
    /// [`Error::InvalidEncoding`] for a receiver of another group, a chain
    /// held twice, or an owner over the limits of §15.9.
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

    /// Opens and restores [`GroupReceivers::seal`]'s output.
    ///
    /// # Errors
    ///
    /// As [`SavedState::unseal`], then as [`GroupReceivers::from_bytes`].
    pub fn unseal(sealed: &[u8], key: &StorageKey, context: &[u8]) -> Result<Self> {
        <Self as SavedState>::unseal(sealed, key, context)
    }

    /// The saved-state rules that relate receivers to each other and to the
    /// store, checked after the whole state was read (SPEC §4 step 4,
    /// §15.11).
    fn check(&self) -> Result<()> {
        let mut chains = BTreeSet::new();
        for r in &self.receivers {
            if r.group_id() != &self.group_id || !chains.insert(*r.chain().as_bytes()) {
                return Err(Error::InvalidEncoding);
            }
            let owner = r.sender().owner();
            let kind = r.sender().is_authenticated();
            let same = self
                .count(|o| o.sender().is_authenticated() == kind && o.sender().owner() == owner);
            let bound = if kind {
                MAX_CHAINS_PER_SENDER
            } else {
                MAX_UNAUTHENTICATED_CHAINS_PER_OWNER
            };
            if same > bound {
                return Err(Error::InvalidEncoding);
            }
        }
        if self.count(|r| !r.sender().is_authenticated()) > MAX_UNAUTHENTICATED_GROUP_CHAINS {
            return Err(Error::InvalidEncoding);
        }
        Ok(())
    }
}

/// The lineage check of SPEC §15.9 rule 2.4: jump a copy of the ratchet with
/// the lower next index to the other's, then compare all 256 bytes in
/// constant time.
fn same_chain(a: &Ratchet, b: &Ratchet) -> bool {
    let (lo, hi) = if a.index() <= b.index() {
        (a, b)
    } else {
        (b, a)
    };
    let mut lo = lo.boxed();
    lo.advance_to(hi.index());
    lo.same_levels(hi)
}

impl sealed::Sealed for GroupReceivers {}

impl SavedState for GroupReceivers {
    fn generation(&self) -> u64 {
        GroupReceivers::generation(self)
    }

    const TYPE_TAG: u8 = tag::GROUP_STORE_STATE;

    fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        sealed::to_plain(Self::TYPE_TAG, self)
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let store: Self = sealed::from_plain(Self::TYPE_TAG, bytes)?;
        store.check()?;
        Ok(store)
    }
}

/// Generation, group id, then the receivers, oldest first, each as a u16
/// length and a whole receiver state (version and type included).
impl Codec for GroupReceivers {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.generation.encode(out);
        self.group_id.encode(out);
        RECEIVERS.write(out, self.receivers.len());
        for receiver in &self.receivers {
            let len = 2 + crate::codec::encoded_len(receiver);
            // At most GroupReceiver::MAX_ENCODED_LEN, far below u16::MAX.
            out.put(&u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes());
            write_header(out, tag::GROUP_RECEIVER_STATE);
            receiver.encode(out);
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let generation = Generation::decode(r)?;
        let group_id = GroupId::decode(r)?;
        let count = RECEIVERS.read(r)?;
        let mut receivers = VecDeque::with_capacity(count);
        for _ in 0..count {
            let len = usize::from(r.u16()?);
            let mut embedded = Reader::header(r.take(len)?, tag::GROUP_RECEIVER_STATE)?;
            receivers.push_back(GroupReceiver::decode(&mut embedded)?);
            // A standalone receiver state's own rule (SPEC §15.11).
            embedded.finish()?;
        }
        Ok(Self {
            generation,
            group_id,
            receivers,
        })
    }
}
