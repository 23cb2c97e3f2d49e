//! Groups through the layer (SPEC.md §16.8): a group's members, the local
//! sender chain and the receivers of the others' chains, with distributions
//! fanned out to every device of every member, installs only from members,
//! and removal in one call. Its saved form is type 0x26.

use alloc::collections::{BTreeSet, VecDeque};
use alloc::vec::Vec;
use core::fmt;

use rand_core::TryCryptoRng;
use zeroize::Zeroizing;

use super::address::{DeviceId, UserId};
use super::framing::{Content, KIND_DISTRIBUTION, KIND_DISTRIBUTION_REQUEST, Received};
use super::record::PeerRecord;
use super::recovery::{Failure, Ignore, RetryLater};
use super::send::{PreDrawn, Sent};
use super::{MAX_DROPPED_CHAINS, MAX_GROUP_MEMBERS, MAX_PAYLOAD_LEN};
use crate::codec::{self, Codec, Count, Reader, Sink, tag, write_header};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::group::{
    GroupId, GroupMessage, GroupPlaintext, GroupReceiver, GroupReceivers, GroupSender,
    InsertOutcome,
};
use crate::keys::IdentityKey;
use crate::ratchet::Plaintext;
use crate::sealed::{self, SavedState, StorageKey};
use crate::wire::Message;

const MEMBERS: Count = Count::u16(MAX_GROUP_MEMBERS).at_least(1);
const DROPPED: Count = Count::u16(MAX_DROPPED_CHAINS);

/// One group as the local device takes part in it (SPEC §16.8): the member
/// list (user ids, the local user included), the local device's sender
/// chain, and the chains of the other members' devices.
///
/// Membership is the application's (from its own authenticated source); the
/// layer enforces it: distributions go to members' devices only, are
/// installed only from members' devices, and removing a member removes
/// every chain not owned by a remaining member's device, rotates the local
/// chain and hands out the new one, in one call.
///
/// Every call that changes the group adds 1 to its generation; persist it
/// after every such call (and the records a call changed), before sending
/// or showing anything.
pub struct GroupSession {
    generation: u64,
    local_user: UserId,
    members: BTreeSet<UserId>,
    sender: GroupSender,
    receivers: GroupReceivers,
    /// Chains that left the store (evicted by a newer one, or removed),
    /// with their owners, oldest first, at most [`MAX_DROPPED_CHAINS`]:
    /// never installed again, since a late copy of a distribution would make
    /// what they read readable again (§15.9).
    dropped: VecDeque<DroppedChain>,
}

/// A chain that left a group's store, and the identity that owned it
/// (authenticated or claimed). The owner decides which entry a full list
/// forgets (SPEC §16.8).
#[derive(Clone, Copy)]
struct DroppedChain {
    chain: [u8; 32],
    owner: [u8; 32],
}

impl DroppedChain {
    /// The entry for a chain the store holds.
    fn of(receiver: &GroupReceiver) -> Self {
        Self {
            chain: *receiver.chain().as_bytes(),
            owner: *receiver.sender().owner().as_bytes(),
        }
    }
}

/// What a distribution fan-out returned: per record given, in that order,
/// its user and what was sent to its devices.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
#[non_exhaustive]
pub struct Fanout {
    /// Per record: the user, the messages for its devices and the devices
    /// that got none.
    pub users: Vec<(UserId, Sent)>,
}

impl GroupSession {
    /// A new group `group_id` whose only member is the local user
    /// `local_user`, with a new sender chain owned by `local`'s identity.
    /// Draws as [`GroupSender::new`]. Generation 0.
    ///
    /// # Errors
    ///
    /// [`Error::RandomnessUnavailable`] if `rng` fails.
    pub fn new<R: TryCryptoRng + ?Sized>(
        rng: &mut R,
        group_id: GroupId,
        local_user: UserId,
        local: &Device,
    ) -> Result<Self> {
        let sender = GroupSender::new(rng, group_id, local)?;
        let mut members = BTreeSet::new();
        members.insert(local_user.clone());
        Ok(Self {
            generation: 0,
            local_user,
            members,
            sender,
            receivers: GroupReceivers::new(group_id),
            dropped: VecDeque::new(),
        })
    }

    /// The group.
    pub fn group_id(&self) -> &GroupId {
        self.sender.group_id()
    }

    /// The local user.
    pub fn local_user(&self) -> &UserId {
        &self.local_user
    }

    /// The members, the local user included, in byte order.
    pub fn members(&self) -> impl Iterator<Item = &UserId> {
        self.members.iter()
    }

    /// Whether `user` is a member.
    pub fn is_member(&self, user: &UserId) -> bool {
        self.members.contains(user)
    }

    /// The generation (SPEC §10.1).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The local sender chain.
    pub fn sender(&self) -> &GroupSender {
        &self.sender
    }

    /// The other members' chains.
    pub fn receivers(&self) -> &GroupReceivers {
        &self.receivers
    }

    /// Adds `user` as a member; then hand it the local chain with
    /// [`GroupSession::distribute`]. Returns whether it was new (adds 1 to
    /// the generation if so).
    ///
    /// # Errors
    ///
    /// [`Error::TooManyGroupMembers`] if the group has
    /// [`MAX_GROUP_MEMBERS`] members.
    pub fn add_member(&mut self, user: UserId) -> Result<bool> {
        if self.members.contains(&user) {
            return Ok(false);
        }
        if self.members.len() >= MAX_GROUP_MEMBERS {
            return Err(Error::TooManyGroupMembers);
        }
        self.members.insert(user);
        sealed::advance(&mut self.generation);
        Ok(true)
    }

    /// Encrypts the local chain's distribution for every listed device with
    /// a session in each of `records` (members' records; the own record
    /// reaches the local user's other devices) (SPEC §16.8). Draws 48 bytes
    /// per such device, records in the order given, before any session
    /// changes. The group does not change; the records do (persist them).
    ///
    /// # Errors
    ///
    /// [`Error::NotGroupMember`] if a record's user is not a member or two
    /// records are of one user; [`Error::IdentityMismatch`] if a record is
    /// not the local device's; [`Error::RandomnessUnavailable`].
    pub fn distribute<R: TryCryptoRng + ?Sized>(
        &self,
        records: &mut [&mut PeerRecord],
        rng: &mut R,
    ) -> Result<Fanout> {
        self.check_records(records, None)?;
        let distribution = self.sender.distribution().to_bytes();
        let mut draws = draw_all(records, rng)?;
        Ok(fan_out(records, &distribution, &mut draws))
    }

    /// Encrypts the local chain's distribution for `device` alone (a new
    /// device, or the answer to a distribution request).
    ///
    /// # Errors
    ///
    /// [`Error::NotGroupMember`]; [`Error::IdentityMismatch`]; then as
    /// [`PeerRecord::encrypt_to`].
    pub fn distribute_to<R: TryCryptoRng + ?Sized>(
        &self,
        record: &mut PeerRecord,
        device: DeviceId,
        rng: &mut R,
    ) -> Result<Message> {
        self.check_record(record)?;
        let distribution = self.sender.distribution().to_bytes();
        record.encrypt_one(device, KIND_DISTRIBUTION, &distribution, rng)
    }

    /// Installs a distribution that arrived over `record` (SPEC §16.8):
    /// `received` must be what `record` decrypted, from a member's device
    /// with no pending identity change, and its owner must be that device's
    /// trusted identity (§15.7). A chain this group dropped from its store
    /// (evicted by its owner's newer chains, or removed) is not installed
    /// again: [`InsertOutcome::Unchanged`]. Adds 1 to the generation unless
    /// the outcome is [`InsertOutcome::Unchanged`].
    ///
    /// # Errors
    ///
    /// In this order: [`Error::InvalidEncoding`] if `received` is not a
    /// distribution; [`Error::NotGroupMember`] if `record`'s user is not a
    /// member; [`Error::IdentityMismatch`] if `record` is not the local
    /// device's or its device's trusted identity is not the sender;
    /// [`Error::IdentityChangePending`]; [`Error::UnknownDevice`] if that
    /// device is stale (off the device list); then as
    /// [`GroupReceivers::install`].
    pub fn install(&mut self, record: &PeerRecord, received: &Received) -> Result<InsertOutcome> {
        let Content::Distribution(distribution) = received.content() else {
            return Err(Error::InvalidEncoding);
        };
        self.check_record(record)?;
        let d = record
            .devices
            .get(&received.device())
            .ok_or(Error::IdentityMismatch)?;
        if d.identity != *distribution.sender() {
            return Err(Error::IdentityMismatch);
        }
        if d.pending.is_some() {
            return Err(Error::IdentityChangePending);
        }
        // Off the device list: it may not add a chain, as it may not start
        // a session (§16.5).
        if !d.is_listed() {
            return Err(Error::UnknownDevice);
        }
        if self.is_dropped(distribution.chain()) {
            return Ok(InsertOutcome::Unchanged);
        }
        let plaintext = Plaintext::new(
            Zeroizing::new(distribution.body().to_vec()),
            *distribution.sender(),
        );
        let held: Vec<DroppedChain> = self.receivers.iter().map(DroppedChain::of).collect();
        let outcome = self.receivers.install(&plaintext)?;
        if outcome == InsertOutcome::Added {
            // The store may have evicted a chain to make room (§15.9 rule 3).
            let now: BTreeSet<[u8; 32]> = self
                .receivers
                .iter()
                .map(|r| *r.chain().as_bytes())
                .collect();
            self.drop_chains(
                held.into_iter()
                    .filter(|entry| !now.contains(&entry.chain))
                    .collect(),
            );
        }
        if outcome != InsertOutcome::Unchanged {
            sealed::advance(&mut self.generation);
        }
        Ok(outcome)
    }

    /// Encrypts `payload` on the local chain (§15.5). Adds 1 to the
    /// generation.
    ///
    /// # Errors
    ///
    /// As [`GroupSender::encrypt`].
    pub fn encrypt<R: TryCryptoRng + ?Sized>(
        &mut self,
        payload: &[u8],
        rng: &mut R,
    ) -> Result<GroupMessage> {
        let message = self.sender.encrypt(rng, payload)?;
        sealed::advance(&mut self.generation);
        Ok(message)
    }

    /// Decrypts a group message (§15.8) that arrived from the user whose
    /// record is `record` (SPEC §16.8). The chain's owner must be the trusted
    /// identity of one of `record`'s devices at the time of the decrypt, so
    /// that once an identity change is acknowledged (or a device deleted)
    /// the chains of the old key are refused, before any rotation, and a
    /// message is only ever shown as from `record`'s user. A message on a
    /// chain not held yet is [`RetryLater::MissingDistribution`]: keep it,
    /// and ask its sender for its distribution
    /// ([`PeerRecord::request_distribution`]) if it does not come. Adds 1 to
    /// the generation on success.
    ///
    /// # Errors
    ///
    /// A [`Failure`], nothing changed, in this order:
    /// [`Ignore::WrongLocalDevice`] ([`Error::IdentityMismatch`]) if `record`
    /// is not the local device's; [`Ignore::Malformed`]
    /// ([`Error::NotGroupMember`]) if its user is not a member; for a chain
    /// the group holds, [`Ignore::Malformed`] ([`Error::IdentityMismatch`])
    /// if its owner is no device's trusted identity in `record`, and
    /// [`RetryLater::IdentityChangePending`] if that device has a pending
    /// identity change; then [`RetryLater::MissingDistribution`] for
    /// [`Error::UnknownGroupChain`], [`Ignore::Duplicate`] for
    /// [`Error::DuplicateMessage`], [`Ignore::Malformed`] for anything else.
    pub fn decrypt(
        &mut self,
        record: &PeerRecord,
        message: &GroupMessage,
    ) -> Result<GroupPlaintext, Failure> {
        if let Err(e) = record.check_local(self.sender.owner()) {
            return Err(Failure::ignore(Ignore::WrongLocalDevice, e));
        }
        if !self.members.contains(&record.user) {
            return Err(Failure::ignore(Ignore::Malformed, Error::NotGroupMember));
        }
        if let Some(receiver) = self.receivers.get(message.chain()) {
            let owner = receiver.sender().owner();
            match record.devices.values().find(|d| d.identity == *owner) {
                None => return Err(Failure::ignore(Ignore::Malformed, Error::IdentityMismatch)),
                Some(d) if d.pending.is_some() => {
                    return Err(Failure::later(
                        RetryLater::IdentityChangePending,
                        Error::IdentityChangePending,
                    ));
                }
                Some(_) => {}
            }
        }
        match self.receivers.decrypt(message) {
            Ok(plaintext) => {
                sealed::advance(&mut self.generation);
                Ok(plaintext)
            }
            Err(e @ Error::UnknownGroupChain) => {
                Err(Failure::later(RetryLater::MissingDistribution, e))
            }
            Err(e @ Error::DuplicateMessage) => Err(Failure::ignore(Ignore::Duplicate, e)),
            Err(e) => Err(Failure::ignore(Ignore::Malformed, e)),
        }
    }

    /// Removes `user` from the group in one call (SPEC §16.8): every chain
    /// not owned by the local device or by a device the remaining members'
    /// `records` hold is removed (so every chain of the removed user's
    /// devices), the local chain is replaced by a new one, and its
    /// distribution is encrypted for every listed device with a session of
    /// every remaining member, the local user's other devices included.
    /// `records` must be exactly the remaining members' records (the own
    /// record for the local user). Draws the new chain (as
    /// [`GroupSender::new`]), then 48 bytes per device as
    /// [`GroupSession::distribute`], before anything changes. Adds 1 to the
    /// generation.
    ///
    /// # Errors
    ///
    /// In this order: [`Error::IdentityMismatch`] if `local` is not the
    /// device that owns the local chain; [`Error::NotGroupMember`] if `user`
    /// is not a member or is the local user, or `records` are not exactly
    /// the remaining members'; [`Error::IdentityMismatch`] if a record is not
    /// the local device's; [`Error::RandomnessUnavailable`].
    pub fn remove_member<R: TryCryptoRng + ?Sized>(
        &mut self,
        local: &Device,
        user: &UserId,
        records: &mut [&mut PeerRecord],
        rng: &mut R,
    ) -> Result<Fanout> {
        self.check_local(local)?;
        if !self.members.contains(user) || *user == self.local_user {
            return Err(Error::NotGroupMember);
        }
        self.rotate_for(local, Some(user), records, rng)
    }

    /// Replaces the local chain by a new one and hands it to every remaining
    /// device, removing the chains of devices no record holds, exactly as
    /// [`GroupSession::remove_member`] without removing a member: for a
    /// device that left a member's device list, on a schedule, or after a
    /// restore. `records` must be exactly the members' records.
    ///
    /// # Errors
    ///
    /// As [`GroupSession::remove_member`].
    pub fn rotate<R: TryCryptoRng + ?Sized>(
        &mut self,
        local: &Device,
        records: &mut [&mut PeerRecord],
        rng: &mut R,
    ) -> Result<Fanout> {
        self.check_local(local)?;
        self.rotate_for(local, None, records, rng)
    }

    fn rotate_for<R: TryCryptoRng + ?Sized>(
        &mut self,
        local: &Device,
        removed: Option<&UserId>,
        records: &mut [&mut PeerRecord],
        rng: &mut R,
    ) -> Result<Fanout> {
        self.check_records(records, Some(removed))?;
        let owner = *self.sender.owner();
        let sender = GroupSender::new(rng, *self.sender.group_id(), local)?;
        let distribution = sender.distribution().to_bytes();
        let mut draws = draw_all(records, rng)?;
        // Commit: nothing below fails.
        let mut keep: BTreeSet<[u8; 32]> = BTreeSet::new();
        keep.insert(*owner.as_bytes());
        for record in records.iter() {
            keep.extend(record.devices.values().map(|d| *d.identity.as_bytes()));
        }
        let mut gone: Vec<IdentityKey> = self
            .receivers
            .iter()
            .map(|r| *r.sender().owner())
            .filter(|o| !keep.contains(o.as_bytes()))
            .collect();
        gone.sort_unstable_by_key(|o| *o.as_bytes());
        gone.dedup();
        let dropped: Vec<DroppedChain> = self
            .receivers
            .iter()
            .filter(|r| gone.contains(r.sender().owner()))
            .map(DroppedChain::of)
            .collect();
        for identity in &gone {
            self.receivers.remove_owner(identity);
        }
        self.drop_chains(dropped);
        if let Some(user) = removed {
            self.members.remove(user);
        }
        self.sender = sender;
        sealed::advance(&mut self.generation);
        Ok(fan_out(records, &distribution, &mut draws))
    }

    /// `local` is the device whose identity owns the local chain (SPEC
    /// §16.1): a call that takes it checks it first, so that a new chain is
    /// never owned by another identity.
    fn check_local(&self, local: &Device) -> Result<()> {
        if local.identity_key() == self.sender.owner() {
            Ok(())
        } else {
            Err(Error::IdentityMismatch)
        }
    }

    /// Whether `chain` is a dropped chain.
    fn is_dropped(&self, chain: &[u8; 32]) -> bool {
        self.dropped.iter().any(|d| d.chain == *chain)
    }

    /// Remembers that chains left the store, one at a time in the order
    /// given. A full list first forgets the oldest entry of the owner with
    /// the most entries (SPEC §16.8), so one owner's own rotations forget
    /// its own chains before anyone else's. The counts are taken once and
    /// kept up to date: a removal can drop a whole store's chains.
    fn drop_chains(&mut self, entries: Vec<DroppedChain>) {
        if entries.is_empty() {
            return;
        }
        // (owner, entries in the list), in byte order of the owners.
        let mut counts: Vec<([u8; 32], usize)> = Vec::new();
        for d in &self.dropped {
            count_owner(&mut counts, &d.owner, true);
        }
        for entry in entries {
            if self.dropped.len() >= MAX_DROPPED_CHAINS {
                let most = counts.iter().map(|(_, n)| *n).max().unwrap_or(0);
                let first = self
                    .dropped
                    .iter()
                    .position(|d| owner_count(&counts, &d.owner) == most);
                if let Some(gone) = first.and_then(|at| self.dropped.remove(at)) {
                    count_owner(&mut counts, &gone.owner, false);
                }
            }
            count_owner(&mut counts, &entry.owner, true);
            self.dropped.push_back(entry);
        }
    }

    /// A record of a member, kept by the local device.
    fn check_record(&self, record: &PeerRecord) -> Result<()> {
        if !self.members.contains(&record.user) {
            return Err(Error::NotGroupMember);
        }
        record.check_local(self.sender.owner())
    }

    /// Records of distinct members; with `Some(removed)`, exactly the
    /// members but `removed`.
    fn check_records(
        &self,
        records: &[&mut PeerRecord],
        exactly_but: Option<Option<&UserId>>,
    ) -> Result<()> {
        // Every membership check before any identity check (SPEC §16.8).
        let mut users = BTreeSet::new();
        for record in records {
            if !self.members.contains(&record.user) || !users.insert(&record.user) {
                return Err(Error::NotGroupMember);
            }
        }
        if let Some(removed) = exactly_but {
            let expected = self.members.len() - usize::from(removed.is_some());
            if users.len() != expected || removed.is_some_and(|u| users.contains(u)) {
                return Err(Error::NotGroupMember);
            }
            // The local user's record is the own record (§16.8).
            if records
                .iter()
                .any(|r| r.user == self.local_user && r.local_device.is_none())
            {
                return Err(Error::NotGroupMember);
            }
        }
        for record in records {
            self.check_record(record)?;
        }
        Ok(())
    }

    /// After this group was restored from an older copy (SPEC §16.8): if its
    /// generation is below `last_generation` (the highest the application
    /// recorded outside the backup), the restored receivers would decrypt
    /// again what they already decrypted, and the restored sender would
    /// reuse indices, so every receiver is deleted and the local chain is
    /// replaced (draws as [`GroupSender::new`]). Either way the generation
    /// becomes `max(generation, last_generation) + 1`. Returns whether the
    /// copy was stale; if so, hand out the new chain
    /// ([`GroupSession::distribute`]) and ask the members' devices for
    /// theirs ([`PeerRecord::request_distribution`]).
    ///
    /// # Errors
    ///
    /// [`Error::IdentityMismatch`] if `local` is not the device that owns
    /// the local chain; [`Error::RandomnessUnavailable`]; nothing changed.
    pub fn after_restore<R: TryCryptoRng + ?Sized>(
        &mut self,
        local: &Device,
        last_generation: u64,
        rng: &mut R,
    ) -> Result<bool> {
        self.check_local(local)?;
        let stale = self.generation < last_generation;
        if stale {
            let sender = GroupSender::new(rng, *self.sender.group_id(), local)?;
            self.sender = sender;
            self.receivers = GroupReceivers::new(*self.sender.group_id());
        }
        self.generation = self.generation.max(last_generation);
        sealed::advance(&mut self.generation);
        Ok(stale)
    }

    /// The plain encoding (it contains secret keys). See SPEC.md §16.11.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        <Self as SavedState>::to_bytes(self)
    }

    /// Restores [`GroupSession::to_bytes`] strictly.
    ///
    /// # Errors
    ///
    /// As [`SavedState::from_bytes`]: the embedded sender and store by their
    /// own rules (§15.11); [`Error::InvalidEncoding`] for a member count out
    /// of bounds, members not strictly increasing or too many dropped
    /// chains, and after [`Error::TrailingBytes`] for a local user that is
    /// not a member, a store of another group than the sender's, a chain
    /// dropped twice, or a dropped chain the store holds.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        <Self as SavedState>::from_bytes(bytes)
    }

    /// The group encrypted at rest under `key`, bound to `context`.
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

    /// Opens and restores [`GroupSession::seal`]'s output.
    ///
    /// # Errors
    ///
    /// As [`SavedState::unseal`], then as [`GroupSession::from_bytes`].
    pub fn unseal(sealed: &[u8], key: &StorageKey, context: &[u8]) -> Result<Self> {
        <Self as SavedState>::unseal(sealed, key, context)
    }
}

impl PeerRecord {
    /// Asks `device` for its current distribution of group `group_id`, over
    /// its active session (SPEC §16.8): for a group message that stays
    /// [`RetryLater::MissingDistribution`], or after a group was restored.
    /// The peer's layer reports it as [`Content::DistributionRequest`].
    /// Draws as [`Session::encrypt`](crate::Session::encrypt). Adds 1 to
    /// the generation.
    ///
    /// # Errors
    ///
    /// As [`PeerRecord::encrypt_to`].
    pub fn request_distribution<R: TryCryptoRng + ?Sized>(
        &mut self,
        device: DeviceId,
        group_id: &GroupId,
        rng: &mut R,
    ) -> Result<Message> {
        self.encrypt_one(device, KIND_DISTRIBUTION_REQUEST, group_id.as_bytes(), rng)
    }
}

/// Draws the fan-out randomness of every record, in order.
fn draw_all<R: TryCryptoRng + ?Sized>(
    records: &[&mut PeerRecord],
    rng: &mut R,
) -> Result<Vec<Vec<PreDrawn>>> {
    records.iter().map(|r| r.draw_fan_out(rng)).collect()
}

fn fan_out(records: &mut [&mut PeerRecord], body: &[u8], draws: &mut [Vec<PreDrawn>]) -> Fanout {
    debug_assert!(body.len() <= MAX_PAYLOAD_LEN);
    let users = records
        .iter_mut()
        .zip(draws.iter_mut())
        .map(|(record, draws)| {
            let sent = record.fan_out_drawn(KIND_DISTRIBUTION, body, draws);
            (record.user.clone(), sent)
        })
        .collect();
    Fanout { users }
}

/// The number of entries `owner` has in `counts` (sorted by owner).
fn owner_count(counts: &[([u8; 32], usize)], owner: &[u8; 32]) -> usize {
    counts
        .binary_search_by(|(o, _)| o.cmp(owner))
        .ok()
        .and_then(|at| counts.get(at))
        .map_or(0, |(_, n)| *n)
}

/// Adds 1 to `owner`'s count in `counts` (sorted by owner), or takes 1 away.
fn count_owner(counts: &mut Vec<([u8; 32], usize)>, owner: &[u8; 32], up: bool) {
    match counts.binary_search_by(|(o, _)| o.cmp(owner)) {
        Ok(at) => {
            if let Some((_, n)) = counts.get_mut(at) {
                *n = if up {
                    n.saturating_add(1)
                } else {
                    n.saturating_sub(1)
                };
            }
        }
        Err(at) if up => counts.insert(at, (*owner, 1)),
        Err(_) => {}
    }
}

impl sealed::Sealed for GroupSession {}

impl SavedState for GroupSession {
    const TYPE_TAG: u8 = tag::GROUP_SESSION_STATE;

    fn generation(&self) -> u64 {
        self.generation
    }

    fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        sealed::to_plain(Self::TYPE_TAG, self)
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let group: Self = sealed::from_plain(Self::TYPE_TAG, bytes)?;
        let distinct: BTreeSet<&[u8; 32]> = group.dropped.iter().map(|d| &d.chain).collect();
        if !group.members.contains(&group.local_user)
            || group.receivers.group_id() != group.sender.group_id()
            || distinct.len() != group.dropped.len()
            || group.dropped.iter().any(|d| {
                group
                    .receivers
                    .iter()
                    .any(|r| *r.chain().as_bytes() == d.chain)
            })
        {
            return Err(Error::InvalidEncoding);
        }
        Ok(group)
    }
}

/// SPEC §16.11: generation, local user, members, the sender state (494
/// bytes), the store state with its `u32` length, then the dropped chains,
/// each as its id and its owner.
impl Codec for GroupSession {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.generation.encode(out);
        self.local_user.encode(out);
        MEMBERS.write(out, self.members.len());
        for member in &self.members {
            member.encode(out);
        }
        write_header(out, tag::GROUP_SENDER_STATE);
        self.sender.encode(out);
        let len = 2 + codec::encoded_len(&self.receivers);
        // At most MAX_STATE_LEN, far below u32::MAX.
        u32::try_from(len).unwrap_or(u32::MAX).encode(out);
        write_header(out, tag::GROUP_STORE_STATE);
        self.receivers.encode(out);
        DROPPED.write(out, self.dropped.len());
        for entry in &self.dropped {
            entry.chain.encode(out);
            entry.owner.encode(out);
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let generation = u64::decode(r)?;
        let local_user = UserId::decode(r)?;
        let count = MEMBERS.read(r)?;
        let mut members = BTreeSet::new();
        let mut previous: Option<UserId> = None;
        for _ in 0..count {
            let member = UserId::decode(r)?;
            if previous.as_ref().is_some_and(|p| member <= *p) {
                return Err(Error::InvalidEncoding);
            }
            previous = Some(member.clone());
            members.insert(member);
        }
        let sender = GroupSender::from_bytes(r.take(GroupSender::ENCODED_LEN)?)?;
        let len = usize::try_from(r.u32()?).map_err(|_| Error::Truncated)?;
        let receivers = GroupReceivers::from_bytes(r.take(len)?)?;
        let count = DROPPED.read(r)?;
        let mut dropped = VecDeque::with_capacity(count);
        for _ in 0..count {
            dropped.push_back(DroppedChain {
                chain: r.array()?,
                owner: r.array()?,
            });
        }
        Ok(Self {
            generation,
            local_user,
            members,
            sender,
            receivers,
            dropped,
        })
    }
}

impl fmt::Debug for GroupSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupSession")
            .field("generation", &self.generation)
            .field("group_id", self.group_id())
            .field("members", &self.members.len())
            .field("sender", &self.sender)
            .field("receivers", &self.receivers.len())
            .finish()
    }
}
