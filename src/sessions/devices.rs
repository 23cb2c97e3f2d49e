//! Device lists and identity changes (SPEC.md §16.2).

use alloc::collections::BTreeSet;
use alloc::vec::Vec;

use super::address::DeviceId;
use super::record::{DeletedDevice, PeerDevice, PeerRecord};
use super::{MAX_DELETED_DEVICES, MAX_DEVICES_PER_USER, MAX_STALE_DEVICE_AGE, passed};
use crate::error::{Error, Result};
use crate::keys::{Fingerprint, IdentityKey};
use crate::sealed;

/// What a device list changed (SPEC §16.2).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
#[non_exhaustive]
pub struct DeviceListChanges {
    /// Devices the record did not hold nor remember, now held with the
    /// identity the list gave (trust on first use: compare safety numbers).
    pub added: Vec<DeviceId>,
    /// Stale devices that are listed again (with another identity than the
    /// trusted one, they are in [`DeviceListChanges::identity_changes`] too,
    /// or already have it pending), and deleted devices the record
    /// remembered, listed again with their remembered identity (they come
    /// back without sessions).
    pub relisted: Vec<DeviceId>,
    /// Devices no longer listed: now stale (nothing is sent to them, their
    /// late messages on the sessions they have still decrypt, they cannot
    /// start a new session; deleted after
    /// [`MAX_STALE_DEVICE_AGE`](super::MAX_STALE_DEVICE_AGE)).
    pub removed: Vec<DeviceId>,
    /// Stale devices deleted to make room for added ones, oldest first. The
    /// record remembers each one's identity and pin until
    /// [`MAX_STALE_DEVICE_AGE`](super::MAX_STALE_DEVICE_AGE) after it left
    /// the list: listed again with another key, it is an identity change.
    pub deleted: Vec<DeviceId>,
    /// Devices listed with another identity than the trusted (or, for a
    /// deleted device, the remembered) one. Each must be acknowledged ([`PeerRecord::acknowledge_identity`]) before the
    /// device is used again.
    pub identity_changes: Vec<IdentityChange>,
    /// Pending identity changes withdrawn: the list shows the trusted
    /// identity again.
    pub withdrawn: Vec<DeviceId>,
    /// For the own record: how the list showed the local device.
    pub local: Option<LocalListing>,
}

impl DeviceListChanges {
    /// Whether the list changed nothing in the record.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.relisted.is_empty()
            && self.removed.is_empty()
            && self.deleted.is_empty()
            && self.identity_changes.is_empty()
            && self.withdrawn.is_empty()
    }
}

/// A device listed with a new identity (SPEC §16.2).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct IdentityChange {
    /// The device.
    pub device: DeviceId,
    /// The fingerprint of its trusted identity.
    pub old: Fingerprint,
    /// The fingerprint of the identity the list gave.
    pub new: Fingerprint,
    /// The identity the list gave, to pass to
    /// [`PeerRecord::acknowledge_identity`] once the user accepted it.
    pub new_identity: IdentityKey,
}

/// How the own record's device list showed the local device (SPEC §16.2).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LocalListing {
    /// Listed with the local identity.
    Listed,
    /// Not listed: the server no longer lists this device.
    Missing,
    /// Listed with another identity (its fingerprint): the server's entry
    /// is not this device.
    OtherIdentity(Fingerprint),
}

impl PeerRecord {
    /// Applies the device list the application's server returned for this
    /// record's user: `(device, identity)` pairs, in any order (SPEC §16.2).
    /// For the own record the list is the local user's, and the local
    /// device is taken out of it first (the outcome says how it was
    /// listed). Then, by device id: a device not held is added; a held one
    /// with its trusted identity stays (and is listed again if it was
    /// stale, and any pending change is withdrawn); one with another
    /// identity gets that identity as pending and is reported, never
    /// trusted silently; a held device not listed becomes stale at `now`.
    /// A device deleted to make room is remembered (its identity and pin)
    /// until [`MAX_STALE_DEVICE_AGE`](super::MAX_STALE_DEVICE_AGE) after it
    /// left the list: listed again in that time, it comes back with that
    /// identity as its trusted one, so another key is an identity change.
    /// All or nothing; adds 1 to the generation if anything changed.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidDeviceList`] if the list has more than
    /// [`MAX_DEVICES_PER_USER`] entries, names a device twice, gives one
    /// identity to two devices, gives the local identity to a device other
    /// than the local one, gives a device the trusted identity of another
    /// device it lists with a new identity, or would need the record to
    /// remember more than [`MAX_DELETED_DEVICES`] deleted devices.
    pub fn update_devices(
        &mut self,
        list: &[(DeviceId, IdentityKey)],
        now: u64,
    ) -> Result<DeviceListChanges> {
        if list.len() > MAX_DEVICES_PER_USER {
            return Err(Error::InvalidDeviceList);
        }
        let mut ids = BTreeSet::new();
        let mut identities = BTreeSet::new();
        for (device, identity) in list {
            let own_entry = Some(*device) == self.local_device;
            if !ids.insert(*device)
                || !identities.insert(*identity.as_bytes())
                || (*identity == self.local_identity && !own_entry)
            {
                return Err(Error::InvalidDeviceList);
            }
        }
        // A listed device keeps its trusted identity (or, deleted, comes back
        // with the one remembered) when the list gives it another one,
        // pending until acknowledged: no other listed device may be given
        // that trusted key, or two listed devices would share one (the
        // fingerprint would fail, §16.9).
        for (device, identity) in list {
            if let Some(trusted) = self.trusted_identity(*device)
                && trusted != *identity
                && identities.contains(trusted.as_bytes())
            {
                return Err(Error::InvalidDeviceList);
            }
        }
        let mut changes = DeviceListChanges::default();
        if let Some(local) = self.local_device {
            changes.local = Some(match list.iter().find(|(d, _)| *d == local) {
                None => LocalListing::Missing,
                Some((_, identity)) if *identity == self.local_identity => LocalListing::Listed,
                Some((_, identity)) => LocalListing::OtherIdentity(identity.fingerprint()),
            });
        }
        let listed: Vec<(DeviceId, IdentityKey)> = {
            let mut v: Vec<_> = list
                .iter()
                .filter(|(d, _)| Some(*d) != self.local_device)
                .copied()
                .collect();
            v.sort_unstable_by_key(|(d, _)| *d);
            v
        };

        // Room for the new devices: stale ones go first, oldest first. The
        // list holds at most MAX_DEVICES_PER_USER, so this always succeeds.
        let new_count = listed
            .iter()
            .filter(|(d, _)| !self.devices.contains_key(d))
            .count();
        let mut stale: Vec<(u64, DeviceId)> = self
            .devices
            .iter()
            .filter(|(id, d)| !d.is_listed() && !ids.contains(id))
            .filter_map(|(id, d)| d.stale_since.map(|t| (t, *id)))
            .collect();
        stale.sort_unstable();
        let mut unlisted_now = self
            .devices
            .iter()
            .filter(|(id, d)| d.is_listed() && !ids.contains(id))
            .map(|(id, _)| *id)
            .collect::<Vec<_>>();
        // Devices that become stale by this list are the newest stale ones.
        stale.extend(unlisted_now.iter().map(|id| (now, *id)));
        let excess = (self.devices.len() + new_count).saturating_sub(MAX_DEVICES_PER_USER);
        let to_delete: Vec<(u64, DeviceId)> = stale.into_iter().take(excess).collect();

        // What the record remembers of deleted devices afterwards: listed
        // ones come back, deleted ones are added. Past the bound, those
        // whose age has passed are forgotten; if that is not enough, the
        // list is refused (an honest server never deletes that many devices
        // within MAX_STALE_DEVICE_AGE; forgetting one would let a later
        // list give it another key without an identity change).
        let mut deleted = self.deleted.clone();
        deleted.retain(|id, _| !ids.contains(id));
        for (left, id) in &to_delete {
            if let Some(d) = self.devices.get(id) {
                let remembered = DeletedDevice {
                    identity: d.identity,
                    pinned: d.pinned,
                    left: *left,
                };
                deleted.insert(*id, remembered);
            }
        }
        if deleted.len() > MAX_DELETED_DEVICES {
            deleted.retain(|_, d| !passed(d.left, now, MAX_STALE_DEVICE_AGE));
            if deleted.len() > MAX_DELETED_DEVICES {
                return Err(Error::InvalidDeviceList);
            }
        }

        // Commit: nothing below fails.
        let remembered = core::mem::replace(&mut self.deleted, deleted);
        for (_, id) in &to_delete {
            self.devices.remove(id);
        }
        unlisted_now.retain(|id| !to_delete.iter().any(|(_, d)| d == id));
        changes.deleted = to_delete.into_iter().map(|(_, id)| id).collect();

        for id in unlisted_now {
            if let Some(d) = self.devices.get_mut(&id) {
                d.stale_since = Some(now);
                changes.removed.push(id);
            }
        }
        for (id, identity) in listed {
            match self.devices.get_mut(&id) {
                None => match remembered.get(&id) {
                    None => {
                        self.devices.insert(id, PeerDevice::new(identity));
                        changes.added.push(id);
                    }
                    Some(r) => {
                        let mut d = PeerDevice::new(r.identity);
                        d.pinned = r.pinned;
                        if identity == r.identity {
                            changes.relisted.push(id);
                        } else {
                            d.pending = Some(identity);
                            changes
                                .identity_changes
                                .push(change(id, &r.identity, identity));
                        }
                        self.devices.insert(id, d);
                    }
                },
                Some(d) => {
                    // Every device that stops being stale is reported, with
                    // its trusted identity or not: the record changed, so the
                    // generation must move.
                    if d.stale_since.take().is_some() {
                        changes.relisted.push(id);
                    }
                    if identity == d.identity {
                        if d.pending.take().is_some() {
                            changes.withdrawn.push(id);
                        }
                    } else if d.pending != Some(identity) {
                        d.pending = Some(identity);
                        changes
                            .identity_changes
                            .push(change(id, &d.identity, identity));
                    }
                }
            }
        }
        if !changes.is_empty() {
            sealed::advance(&mut self.generation);
        }
        Ok(changes)
    }

    /// The trusted identity `device` has, or would have if listed again.
    fn trusted_identity(&self, device: DeviceId) -> Option<IdentityKey> {
        self.devices
            .get(&device)
            .map(|d| d.identity)
            .or_else(|| self.deleted.get(&device).map(|d| d.identity))
    }

    /// Trusts the new identity of `device` that a device list reported
    /// ([`IdentityChange::new_identity`]), once the user accepted it (SPEC
    /// §16.2): it replaces the trusted identity, the device's sessions (which
    /// belong to the old identity) are deleted, and its post-quantum pin
    /// stays. Adds 1 to the generation.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownDevice`] if the record does not hold `device`;
    /// [`Error::IdentityMismatch`] if `identity` is not its pending identity.
    pub fn acknowledge_identity(&mut self, device: DeviceId, identity: &IdentityKey) -> Result<()> {
        let d = self.devices.get_mut(&device).ok_or(Error::UnknownDevice)?;
        if d.pending != Some(*identity) {
            return Err(Error::IdentityMismatch);
        }
        d.identity = *identity;
        d.pending = None;
        d.active = None;
        d.archived.clear();
        sealed::advance(&mut self.generation);
        Ok(())
    }
}

/// The identity change of `device` from `trusted` to `new`.
fn change(device: DeviceId, trusted: &IdentityKey, new: IdentityKey) -> IdentityChange {
    IdentityChange {
        device,
        old: trusted.fingerprint(),
        new: new.fingerprint(),
        new_identity: new,
    }
}
