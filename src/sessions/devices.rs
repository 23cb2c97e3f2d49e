//! Device lists and identity changes (SPEC.md §16.2).

use alloc::collections::BTreeSet;
use alloc::vec::Vec;

use super::MAX_DEVICES_PER_USER;
use super::address::DeviceId;
use super::record::{PeerDevice, PeerRecord};
use crate::error::{Error, Result};
use crate::keys::{Fingerprint, IdentityKey};
use crate::sealed;

/// What a device list changed (SPEC §16.2).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
#[non_exhaustive]
pub struct DeviceListChanges {
    /// Devices the record did not hold, now held with the identity the list
    /// gave (trust on first use: compare safety numbers).
    pub added: Vec<DeviceId>,
    /// Stale devices that are listed again (with another identity than
    /// the trusted one, they are in [`DeviceListChanges::identity_changes`]
    /// too, or already have it pending).
    pub relisted: Vec<DeviceId>,
    /// Devices no longer listed: now stale (nothing is sent to them, their
    /// late messages still decrypt; deleted after
    /// [`MAX_STALE_DEVICE_AGE`](super::MAX_STALE_DEVICE_AGE)).
    pub removed: Vec<DeviceId>,
    /// Stale devices deleted to make room for added ones, oldest first.
    pub deleted: Vec<DeviceId>,
    /// Devices listed with another identity than the trusted one. Each must
    /// be acknowledged ([`PeerRecord::acknowledge_identity`]) before the
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
    /// All or nothing; adds 1 to the generation if anything changed.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidDeviceList`] if the list has more than
    /// [`MAX_DEVICES_PER_USER`] entries, names a device twice, gives one
    /// identity to two devices, or gives the local identity to a device
    /// other than the local one.
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
        let to_delete: Vec<DeviceId> = stale.iter().take(excess).map(|(_, id)| *id).collect();
        for id in &to_delete {
            self.devices.remove(id);
        }
        unlisted_now.retain(|id| !to_delete.contains(id));
        changes.deleted = to_delete;

        for id in unlisted_now {
            if let Some(d) = self.devices.get_mut(&id) {
                d.stale_since = Some(now);
                changes.removed.push(id);
            }
        }
        for (id, identity) in listed {
            match self.devices.get_mut(&id) {
                None => {
                    self.devices.insert(id, PeerDevice::new(identity));
                    changes.added.push(id);
                }
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
                        changes.identity_changes.push(IdentityChange {
                            device: id,
                            old: d.identity.fingerprint(),
                            new: identity.fingerprint(),
                            new_identity: identity,
                        });
                    }
                }
            }
        }
        if !changes.is_empty() {
            sealed::advance(&mut self.generation);
        }
        Ok(changes)
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
