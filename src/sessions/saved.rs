//! The peer record's saved form, type 0x25 (SPEC.md §16.11): one blob per
//! user, versioned, strict, generation-counted, sealable with a context.

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::vec::Vec;

use rand_core::TryCryptoRng;
use zeroize::Zeroizing;

use super::address::{DeviceId, UserId};
use super::framing::RetryHint;
use super::record::{DeletedDevice, PeerDevice, PeerRecord, SessionEntry};
use super::{
    MAX_ARCHIVED_SESSIONS, MAX_DELETED_DEVICES, MAX_DEVICES_PER_USER,
    MAX_RETRY_REQUESTS_PER_INTERVAL,
};
use crate::codec::{Codec, Count, Reader, Sink, tag};
use crate::error::{Error, Result};
use crate::keys::IdentityKey;
use crate::ratchet::{KeyAgreement, Session};
use crate::sealed::{self, SavedState, StorageKey};

const DEVICES: Count = Count::u8(MAX_DEVICES_PER_USER);
const ARCHIVED: Count = Count::u8(MAX_ARCHIVED_SESSIONS);
const DELETED: Count = Count::u8(MAX_DELETED_DEVICES);
/// Flag bits of a device entry.
const PINNED: u8 = 0x01;
const CLASSICAL_ALLOWED: u8 = 0x02;

impl PeerRecord {
    /// The plain encoding (it contains secret keys), in a buffer zeroized on
    /// drop. See SPEC.md §16.11 for the layout.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        <Self as SavedState>::to_bytes(self)
    }

    /// Restores [`PeerRecord::to_bytes`] strictly (the same as
    /// [`SavedState::from_bytes`]).
    ///
    /// # Errors
    ///
    /// As [`SavedState::from_bytes`]: each embedded session by its own rules
    /// (SPEC §10.2) within its length; [`Error::InvalidEncoding`] for the
    /// rules of §16.11 (a user id of the wrong length, a count over its
    /// bound, device ids not increasing or naming the local device, deleted
    /// device ids not increasing or naming the local device or a held one,
    /// a pending identity equal to the trusted one, unknown flag bits, a
    /// retry count over its bound, a flagged active session; after
    /// [`Error::TrailingBytes`], a session of another identity, two sessions
    /// of a device with one base key, a PQXDH session on a device that is
    /// not pinned, or a session marked as lost to a base key not smaller
    /// than its own).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        <Self as SavedState>::from_bytes(bytes)
    }

    /// The record encrypted at rest under `key`, bound to `context` (the
    /// record's key in the application's store; draws 32 bytes of salt).
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

    /// Opens and restores [`PeerRecord::seal`]'s output.
    ///
    /// # Errors
    ///
    /// As [`SavedState::unseal`], then as [`PeerRecord::from_bytes`].
    pub fn unseal(sealed: &[u8], key: &StorageKey, context: &[u8]) -> Result<Self> {
        <Self as SavedState>::unseal(sealed, key, context)
    }

    /// The rules that relate fields across the encoding, checked after the
    /// whole record was read (SPEC §4 step 4, §16.11).
    fn check(&self) -> Result<()> {
        for d in self.devices.values() {
            let mut bases = BTreeSet::new();
            for (_, e) in d.slots() {
                let s = &e.session;
                if *s.local_identity() != self.local_identity
                    || *s.remote_identity() != d.identity
                    || !bases.insert(s.base_key_bytes())
                    || (s.key_agreement() == KeyAgreement::Pqxdh && !d.pinned)
                    || e.lost_to.is_some_and(|w| w >= s.base_key_bytes())
                {
                    return Err(Error::InvalidEncoding);
                }
            }
        }
        Ok(())
    }
}

impl sealed::Sealed for PeerRecord {}

impl SavedState for PeerRecord {
    const TYPE_TAG: u8 = tag::PEER_RECORD_STATE;

    fn generation(&self) -> u64 {
        self.generation
    }

    fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        sealed::to_plain(Self::TYPE_TAG, self)
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let record: Self = sealed::from_plain(Self::TYPE_TAG, bytes)?;
        record.check()?;
        Ok(record)
    }
}

/// SPEC §16.11: generation, local identity, user, the local device for the
/// own record, the devices in increasing id order, then the deleted devices
/// the record remembers, in increasing id order.
impl Codec for PeerRecord {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.generation.encode(out);
        self.local_identity.encode(out);
        self.user.encode(out);
        self.local_device.encode(out);
        DEVICES.write(out, self.devices.len());
        for (id, d) in &self.devices {
            id.encode(out);
            d.encode(out);
        }
        DELETED.write(out, self.deleted.len());
        for (id, d) in &self.deleted {
            id.encode(out);
            d.identity.encode(out);
            out.put(&[u8::from(d.pinned)]);
            d.left.encode(out);
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let generation = u64::decode(r)?;
        let local_identity = IdentityKey::decode(r)?;
        let user = UserId::decode(r)?;
        let local_device = Option::<DeviceId>::decode(r)?;
        let count = DEVICES.read(r)?;
        let mut devices = BTreeMap::new();
        let mut previous: Option<DeviceId> = None;
        for _ in 0..count {
            let id = DeviceId::decode(r)?;
            if previous.is_some_and(|p| id <= p) || Some(id) == local_device {
                return Err(Error::InvalidEncoding);
            }
            previous = Some(id);
            devices.insert(id, PeerDevice::decode(r)?);
        }
        let count = DELETED.read(r)?;
        let mut deleted = BTreeMap::new();
        let mut previous: Option<DeviceId> = None;
        for _ in 0..count {
            let id = DeviceId::decode(r)?;
            if previous.is_some_and(|p| id <= p)
                || Some(id) == local_device
                || devices.contains_key(&id)
            {
                return Err(Error::InvalidEncoding);
            }
            previous = Some(id);
            let identity = IdentityKey::decode(r)?;
            let pinned = r.flag()?;
            let left = u64::decode(r)?;
            deleted.insert(
                id,
                DeletedDevice {
                    identity,
                    pinned,
                    left,
                },
            );
        }
        Ok(Self {
            generation,
            user,
            local_identity,
            local_device,
            devices,
            deleted,
        })
    }
}

impl Codec for PeerDevice {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.identity.encode(out);
        self.pending.encode(out);
        self.stale_since.encode(out);
        let flags = if self.pinned { PINNED } else { 0 }
            | if self.classical_allowed {
                CLASSICAL_ALLOWED
            } else {
                0
            };
        flags.encode(out);
        self.last_recovery.encode(out);
        self.retry_window.encode(out);
        self.retry_count.encode(out);
        self.retry_outstanding.encode(out);
        self.active.encode(out);
        ARCHIVED.write(out, self.archived.len());
        for e in &self.archived {
            e.encode(out);
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let identity = IdentityKey::decode(r)?;
        let pending = Option::<IdentityKey>::decode(r)?;
        if pending == Some(identity) {
            return Err(Error::InvalidEncoding);
        }
        let stale_since = Option::<u64>::decode(r)?;
        let flags = r.u8()?;
        if flags & !(PINNED | CLASSICAL_ALLOWED) != 0 || flags == PINNED | CLASSICAL_ALLOWED {
            return Err(Error::InvalidEncoding);
        }
        let last_recovery = Option::<u64>::decode(r)?;
        let retry_window = u64::decode(r)?;
        let retry_count = r.u8()?;
        if retry_count > MAX_RETRY_REQUESTS_PER_INTERVAL {
            return Err(Error::InvalidEncoding);
        }
        let retry_outstanding = Option::<RetryHint>::decode(r)?;
        let active = if r.flag()? {
            Some(SessionEntry::decode_as(r, true)?)
        } else {
            None
        };
        let count = ARCHIVED.read(r)?;
        let mut archived = VecDeque::with_capacity(count);
        for _ in 0..count {
            archived.push_back(SessionEntry::decode_as(r, false)?);
        }
        Ok(Self {
            identity,
            pending,
            stale_since,
            pinned: flags & PINNED != 0,
            classical_allowed: flags & CLASSICAL_ALLOWED != 0,
            last_recovery,
            retry_window,
            retry_count,
            retry_outstanding,
            active,
            archived,
        })
    }
}

/// Created, last decrypt, the session it lost to, then the session's whole plain
/// state (version and type included) with its `u32` length.
impl Codec for SessionEntry {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.created.encode(out);
        self.last_decrypt.encode(out);
        self.lost_to.encode(out);
        // A session state is far below 4 GiB (SPEC §16.11 gives its bound).
        let len = u32::try_from(self.session.encoded_len()).unwrap_or(u32::MAX);
        len.encode(out);
        self.session.encode_into(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Self::decode_as(r, false)
    }
}

impl SessionEntry {
    /// Reads an entry; the active one may not have lost a tie-break (checked
    /// as soon as its flag is read).
    fn decode_as(r: &mut Reader<'_>, active: bool) -> Result<Self> {
        let created = u64::decode(r)?;
        let last_decrypt = Option::<u64>::decode(r)?;
        let lost_to = if r.flag()? {
            if active {
                return Err(Error::InvalidEncoding);
            }
            Some(r.array()?)
        } else {
            None
        };
        let len = usize::try_from(r.u32()?).map_err(|_| Error::Truncated)?;
        let session = Session::from_bytes(r.take(len)?)?;
        Ok(Self {
            session,
            created,
            last_decrypt,
            lost_to,
        })
    }
}
