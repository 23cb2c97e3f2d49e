//! The peer record (SPEC.md §16.1): everything about one user, per device
//! its trusted identity, one active session and a bounded list of archived
//! ones.

use alloc::collections::{BTreeMap, VecDeque};
use core::fmt;

use super::MAX_ARCHIVED_SESSIONS;
use super::address::{DeviceId, UserId};
use super::framing::RetryHint;
use crate::error::{Error, Result};
use crate::keys::IdentityKey;
use crate::ratchet::{Role, Session};
use crate::sealed;

/// Everything the local device knows about one user: per device of that
/// user, its trusted identity (and a pending one the application has not
/// acknowledged), whether it is still listed, whether it is post-quantum
/// pinned, and its sessions (SPEC §16.1).
///
/// The local user's own other devices are a record too, made with
/// [`PeerRecord::new_own`]. A record belongs to one local device: every call
/// that takes the local [`Device`](crate::Device) checks that it is that
/// device.
///
/// Every call that changes the record adds 1 to its generation; persist it
/// ([`PeerRecord::to_bytes`] or [`PeerRecord::seal`]) after every such call,
/// before sending what it returned or showing what it decrypted. When a
/// call also changed the [`Device`](crate::Device) (a prekey message was
/// accepted), persist the device first.
pub struct PeerRecord {
    pub(crate) generation: u64,
    pub(crate) user: UserId,
    pub(crate) local_identity: IdentityKey,
    /// For the own record: the local device's id, which never appears in it.
    pub(crate) local_device: Option<DeviceId>,
    pub(crate) devices: BTreeMap<DeviceId, PeerDevice>,
    /// Devices deleted to make room before
    /// [`MAX_STALE_DEVICE_AGE`](super::MAX_STALE_DEVICE_AGE) passed since
    /// they left the list: never a held device, at most
    /// [`MAX_DELETED_DEVICES`](super::MAX_DELETED_DEVICES).
    pub(crate) deleted: BTreeMap<DeviceId, DeletedDevice>,
}

/// What a record remembers of a device it deleted to make room (SPEC
/// §16.2): listed again, the device comes back with this identity as its
/// trusted one (another key is an identity change) and with its pin.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct DeletedDevice {
    pub(crate) identity: IdentityKey,
    pub(crate) pinned: bool,
    /// When it left the device list.
    pub(crate) left: u64,
}

/// One device of the record's user.
pub(crate) struct PeerDevice {
    pub(crate) identity: IdentityKey,
    /// A new identity the server announced, not yet acknowledged.
    pub(crate) pending: Option<IdentityKey>,
    /// Since when the device is no longer on the device list.
    pub(crate) stale_since: Option<u64>,
    /// Once it offered a KEM prekey or used PQXDH: never classical again.
    pub(crate) pinned: bool,
    /// The application allowed classical key agreement (only while not
    /// pinned).
    pub(crate) classical_allowed: bool,
    /// When the last new session for recovery was started.
    pub(crate) last_recovery: Option<u64>,
    /// The current retry-request window: its start and how many were sent.
    pub(crate) retry_window: u64,
    pub(crate) retry_count: u8,
    /// The hint of a retry request sent when nothing from the device has
    /// decrypted since: if the next failure is serious too, the active
    /// session is taken as broken, and the new session asks for this
    /// message again (§16.6).
    pub(crate) retry_outstanding: Option<RetryHint>,
    pub(crate) active: Option<SessionEntry>,
    /// Newest first, at most [`MAX_ARCHIVED_SESSIONS`].
    pub(crate) archived: VecDeque<SessionEntry>,
}

/// A session with the times and flag the layer keeps for it.
pub(crate) struct SessionEntry {
    pub(crate) session: Session,
    pub(crate) created: u64,
    pub(crate) last_decrypt: Option<u64>,
    /// The base key of the session this one lost to (§16.5), always smaller
    /// than this session's own: while that session is active, decrypting on
    /// this one does not make it active.
    pub(crate) lost_to: Option<[u8; 32]>,
}

impl SessionEntry {
    pub(crate) fn new(session: Session, created: u64) -> Self {
        Self {
            session,
            created,
            last_decrypt: None,
            lost_to: None,
        }
    }

    /// A session we started whose peer has not answered yet.
    pub(crate) fn is_unanswered_initiation(&self) -> bool {
        self.session.role() == Role::Initiator && self.session.is_awaiting_reply()
    }
}

/// The mark `loser` gets when it is archived for `winner`: only ever a
/// smaller base key than its own (SPEC §16.5). Both sides of a pair can
/// then never hold crossed marks (each side's active session marked as lost
/// at the other), which no round trip would undo: a forged message can make
/// each side ask the other to switch, but not split them.
pub(crate) fn lost_to(winner: [u8; 32], loser: &SessionEntry, lost: bool) -> Option<[u8; 32]> {
    (lost && winner < loser.session.base_key_bytes()).then_some(winner)
}

/// Where a session sits in a device's entry.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Slot {
    Active,
    Archived(usize),
}

impl PeerDevice {
    pub(crate) fn new(identity: IdentityKey) -> Self {
        Self {
            identity,
            pending: None,
            stale_since: None,
            pinned: false,
            classical_allowed: false,
            last_recovery: None,
            retry_window: 0,
            retry_count: 0,
            retry_outstanding: None,
            active: None,
            archived: VecDeque::new(),
        }
    }

    pub(crate) fn is_listed(&self) -> bool {
        self.stale_since.is_none()
    }

    pub(crate) fn slot_mut(&mut self, slot: Slot) -> Option<&mut SessionEntry> {
        match slot {
            Slot::Active => self.active.as_mut(),
            Slot::Archived(i) => self.archived.get_mut(i),
        }
    }

    /// Every session, active first, then archived newest first: the order in
    /// which the layer tries them (§16.5).
    pub(crate) fn slots(&self) -> impl Iterator<Item = (Slot, &SessionEntry)> {
        self.active.iter().map(|e| (Slot::Active, e)).chain(
            self.archived
                .iter()
                .enumerate()
                .map(|(i, e)| (Slot::Archived(i), e)),
        )
    }

    /// The session whose base key is `base_key`.
    pub(crate) fn slot_with_base_key(&self, base_key: &[u8; 32]) -> Option<Slot> {
        self.slots()
            .find(|(_, e)| e.session.base_key_bytes() == *base_key)
            .map(|(slot, _)| slot)
    }

    /// The session that knows the ratchet key `key`.
    pub(crate) fn slot_with_ratchet_key(&self, key: &[u8; 32]) -> Option<Slot> {
        self.slots()
            .find(|(_, e)| e.session.knows_ratchet_key(key))
            .map(|(slot, _)| slot)
    }

    /// Makes `entry` the active session; the previous active one becomes the
    /// newest archived one, marked as having lost to `entry` if
    /// `previous_lost` and `entry`'s base key is the smaller (§16.5).
    pub(crate) fn activate(&mut self, entry: SessionEntry, previous_lost: bool) {
        let winner = entry.session.base_key_bytes();
        if let Some(mut previous) = self.active.replace(entry) {
            previous.lost_to = lost_to(winner, &previous, previous_lost);
            self.archive(previous);
        }
    }

    /// Whether a retry request naming `hint` says that the peer cannot read
    /// the active session: the hint's base key is the active session's, or
    /// (for a ratchet message) its ratchet key is the active session's
    /// current sending key (§16.5).
    pub(crate) fn hint_names_active(&self, hint: &RetryHint) -> bool {
        let Some(active) = &self.active else {
            return false;
        };
        match hint.base_key {
            Some(base) => base == active.session.base_key_bytes(),
            None => active.session.sending_ratchet_key() == Some(hint.ratchet_key),
        }
    }

    /// Whether decrypting on `entry` makes it active: unless it lost to the
    /// session that is active now (§16.5).
    pub(crate) fn may_promote(&self, entry: &SessionEntry) -> bool {
        entry.lost_to.is_none()
            || entry.lost_to != self.active.as_ref().map(|a| a.session.base_key_bytes())
    }

    /// Adds `entry` as the newest archived session; past
    /// [`MAX_ARCHIVED_SESSIONS`] the oldest is deleted.
    pub(crate) fn archive(&mut self, entry: SessionEntry) {
        self.archived.push_front(entry);
        self.archived.truncate(MAX_ARCHIVED_SESSIONS);
    }

    /// Makes the archived session at `index` active, its mark cleared; the
    /// previous active one takes its place as the newest archived one.
    pub(crate) fn promote(&mut self, index: usize, previous_lost: bool) {
        if let Some(mut entry) = self.archived.remove(index) {
            entry.lost_to = None;
            self.activate(entry, previous_lost);
        }
    }

    pub(crate) fn session_count(&self) -> usize {
        usize::from(self.active.is_some()) + self.archived.len()
    }
}

/// What a record tells about one of its devices.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct DeviceInfo {
    /// The device.
    pub device: DeviceId,
    /// Its trusted identity.
    pub identity: IdentityKey,
    /// A new identity announced by the server and not yet acknowledged; the
    /// device is not used until it is.
    pub pending_identity: Option<IdentityKey>,
    /// Since when it is off the device list, if it is.
    pub stale_since: Option<u64>,
    /// Whether it may only ever use PQXDH.
    pub post_quantum_pinned: bool,
    /// The base key of its active session, if it has one.
    pub active_base_key: Option<[u8; 32]>,
    /// Whether the active session is one we started that got no reply yet.
    pub awaiting_reply: bool,
    /// How many archived sessions it has.
    pub archived_sessions: usize,
}

impl PeerRecord {
    /// An empty record for the peer user `user`, kept by the local device
    /// whose identity is `local_identity`. Generation 0.
    pub fn new(user: UserId, local_identity: IdentityKey) -> Self {
        Self {
            generation: 0,
            user,
            local_identity,
            local_device: None,
            devices: BTreeMap::new(),
            deleted: BTreeMap::new(),
        }
    }

    /// An empty record for the local user's own other devices: `user` is the
    /// local user, `local_device` and `local_identity` the local device,
    /// which never appears in the record (SPEC §16.1).
    pub fn new_own(user: UserId, local_device: DeviceId, local_identity: IdentityKey) -> Self {
        Self {
            local_device: Some(local_device),
            ..Self::new(user, local_identity)
        }
    }

    /// The record's user.
    pub fn user(&self) -> &UserId {
        &self.user
    }

    /// The identity of the local device this record belongs to.
    pub fn local_identity(&self) -> &IdentityKey {
        &self.local_identity
    }

    /// For the own record, the local device's id.
    pub fn local_device(&self) -> Option<DeviceId> {
        self.local_device
    }

    /// The generation (SPEC §10.1).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The devices, in id order.
    pub fn devices(&self) -> impl Iterator<Item = DeviceInfo> + '_ {
        self.devices.iter().map(|(id, d)| info(*id, d))
    }

    /// One device.
    pub fn device(&self, device: DeviceId) -> Option<DeviceInfo> {
        self.devices.get(&device).map(|d| info(device, d))
    }

    /// Marks `device` as allowed to use classical X3DH when its bundles or
    /// prekey messages carry no KEM part, or takes that back (SPEC §16.4).
    /// A post-quantum pinned device can never be allowed.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownDevice`] if the record does not hold `device`;
    /// [`Error::PostQuantumRequired`] to allow a pinned device.
    pub fn allow_classical(&mut self, device: DeviceId, allowed: bool) -> Result<()> {
        let entry = self.devices.get_mut(&device).ok_or(Error::UnknownDevice)?;
        if allowed && entry.pinned {
            return Err(Error::PostQuantumRequired);
        }
        if entry.classical_allowed != allowed {
            entry.classical_allowed = allowed;
            sealed::advance(&mut self.generation);
        }
        Ok(())
    }

    pub(crate) fn check_local(&self, local: &IdentityKey) -> Result<()> {
        if *local == self.local_identity {
            Ok(())
        } else {
            Err(Error::IdentityMismatch)
        }
    }

    /// A listed device without a pending identity change, for sending.
    pub(crate) fn sendable(&mut self, device: DeviceId) -> Result<&mut PeerDevice> {
        let entry = self
            .devices
            .get_mut(&device)
            .filter(|d| d.is_listed())
            .ok_or(Error::UnknownDevice)?;
        if entry.pending.is_some() {
            return Err(Error::IdentityChangePending);
        }
        Ok(entry)
    }
}

fn info(device: DeviceId, d: &PeerDevice) -> DeviceInfo {
    DeviceInfo {
        device,
        identity: d.identity,
        pending_identity: d.pending,
        stale_since: d.stale_since,
        post_quantum_pinned: d.pinned,
        active_base_key: d.active.as_ref().map(|e| e.session.base_key_bytes()),
        awaiting_reply: d
            .active
            .as_ref()
            .is_some_and(SessionEntry::is_unanswered_initiation),
        archived_sessions: d.archived.len(),
    }
}

impl fmt::Debug for PeerRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerRecord")
            .field("generation", &self.generation)
            .field("user", &self.user)
            .field("local_device", &self.local_device)
            .field("devices", &self.devices().collect::<alloc::vec::Vec<_>>())
            .field(
                "deleted",
                &self.deleted.keys().collect::<alloc::vec::Vec<_>>(),
            )
            .finish()
    }
}
