//! §16.2 device lists and identity changes, §16.4 `allow_classical`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::record::{PeerDevice, Record, Remembered};
use super::{MAX_DELETED_DEVICES, MAX_DEVICES_PER_USER, MAX_STALE_DEVICE_AGE, elapsed};
use crate::hex::hex;
use crate::model::error::{Refusal, refusal};
use crate::model::keys::{fingerprint, identity_key_bytes};

/// How the own record's list showed the local device (§16.2 step 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Local {
    /// With the local identity.
    Listed,
    /// Not at all.
    Missing,
    /// With another identity: its fingerprint.
    OtherIdentity([u8; 32]),
}

/// A reported identity change: the device, the fingerprints of the trusted
/// and the new identity, and the new identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityChange {
    /// The device.
    pub device: u32,
    /// Fingerprint of the trusted identity.
    pub old: [u8; 32],
    /// Fingerprint of the new identity.
    pub new: [u8; 32],
    /// The new identity.
    pub identity: [u8; 32],
}

/// What a device list changed (§16.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Devices added.
    pub added: Vec<u32>,
    /// Stale devices listed again.
    pub relisted: Vec<u32>,
    /// Devices that became stale.
    pub removed: Vec<u32>,
    /// Devices deleted to make room, in deletion order.
    pub deleted: Vec<u32>,
    /// Identity changes.
    pub identity_changes: Vec<IdentityChange>,
    /// Pending identities withdrawn.
    pub withdrawn: Vec<u32>,
    /// For the own record.
    pub local: Option<Local>,
}

impl Changes {
    /// Whether anything in the record changed.
    pub fn changed(&self) -> bool {
        !(self.added.is_empty()
            && self.relisted.is_empty()
            && self.removed.is_empty()
            && self.deleted.is_empty()
            && self.identity_changes.is_empty()
            && self.withdrawn.is_empty())
    }

    /// As the vectors spell it.
    pub fn json(&self) -> Value {
        json!({
            "added": self.added, "relisted": self.relisted, "removed": self.removed,
            "deleted": self.deleted, "withdrawn": self.withdrawn,
            "identity_changes": self.identity_changes.iter().map(|c| json!({
                "device_id": c.device, "old_fingerprint": hex(&c.old),
                "new_fingerprint": hex(&c.new), "new_identity": hex(&identity_key_bytes(&c.identity)),
            })).collect::<Vec<_>>(),
            "local": match &self.local {
                None => Value::Null,
                Some(Local::Listed) => json!({ "kind": "Listed" }),
                Some(Local::Missing) => json!({ "kind": "Missing" }),
                Some(Local::OtherIdentity(f)) => json!({ "kind": "OtherIdentity", "fingerprint": hex(f) }),
            },
        })
    }
}

impl Record {
    /// §16.2 `update_devices`, all or nothing.
    ///
    /// # Errors
    ///
    /// `InvalidDeviceList`.
    pub fn update_devices(
        &mut self,
        list: &[(u32, [u8; 32])],
        now: u64,
    ) -> Result<Changes, Refusal> {
        let invalid = || refusal("InvalidDeviceList");
        if list.len() > MAX_DEVICES_PER_USER {
            return Err(invalid());
        }
        let mut ids = BTreeSet::new();
        let mut keys = BTreeSet::new();
        for (id, key) in list {
            if !ids.insert(*id) || !keys.insert(*key) {
                return Err(invalid());
            }
            if *key == self.local_identity && Some(*id) != self.local_device {
                return Err(invalid());
            }
        }
        // A device listed with another identity keeps its trusted one (held
        // or remembered) until the change is acknowledged: no other listed
        // device may be given that key.
        let trusted = |id: u32| {
            self.devices
                .get(&id)
                .map(|d| d.identity)
                .or_else(|| self.deleted.get(&id).map(|m| m.identity))
        };
        for (id, key) in list {
            for (other, other_key) in list {
                if other != id && trusted(*other).is_some_and(|t| t != *other_key && t == *key) {
                    return Err(invalid());
                }
            }
        }
        let mut next = self.clone();
        let mut changes = Changes::default();
        // Step 1.
        let mut listed: BTreeMap<u32, [u8; 32]> = list.iter().copied().collect();
        if let Some(local) = self.local_device {
            changes.local = Some(match listed.remove(&local) {
                None => Local::Missing,
                Some(k) if k == self.local_identity => Local::Listed,
                Some(k) => Local::OtherIdentity(fingerprint(&k)),
            });
        }
        // Step 2: room.
        let new = listed
            .keys()
            .filter(|id| !next.devices.contains_key(id))
            .count();
        let mut excess = (next.devices.len() + new).saturating_sub(MAX_DEVICES_PER_USER);
        if excess > 0 {
            let mut stale: Vec<(u64, u32)> = next
                .devices
                .iter()
                .filter(|(id, d)| !listed.contains_key(id) && d.stale_since.is_some())
                .map(|(id, d)| (d.stale_since.unwrap_or(0), *id))
                .collect();
            stale.sort_unstable();
            let left_out: Vec<u32> = next
                .devices
                .iter()
                .filter(|(id, d)| !listed.contains_key(id) && d.stale_since.is_none())
                .map(|(id, _)| *id)
                .collect();
            for id in stale.into_iter().map(|(_, id)| id).chain(left_out) {
                if excess == 0 {
                    break;
                }
                let d = next.devices.remove(&id).expect("held");
                next.deleted.insert(
                    id,
                    Remembered {
                        identity: d.identity,
                        pinned: d.pinned,
                        left: d.stale_since.unwrap_or(now),
                    },
                );
                changes.deleted.push(id);
                excess -= 1;
            }
        }
        let mut relisted: BTreeMap<u32, Remembered> = BTreeMap::new();
        for id in listed.keys() {
            if let Some(m) = next.deleted.remove(id) {
                relisted.insert(*id, m);
            }
        }
        if next.deleted.len() > MAX_DELETED_DEVICES {
            next.deleted
                .retain(|_, m| elapsed(now, m.left) < MAX_STALE_DEVICE_AGE);
            if next.deleted.len() > MAX_DELETED_DEVICES {
                return Err(invalid());
            }
        }
        // Step 3: held devices left out become stale (already stale ones
        // keep their time).
        for (id, d) in &mut next.devices {
            if !listed.contains_key(id) && d.stale_since.is_none() {
                d.stale_since = Some(now);
                changes.removed.push(*id);
            }
        }
        // Step 4.
        for (id, key) in &listed {
            match next.devices.get_mut(id) {
                None => match relisted.get(id) {
                    Some(m) => {
                        let mut d = PeerDevice::new(m.identity);
                        d.pinned = m.pinned;
                        if *key == m.identity {
                            changes.relisted.push(*id);
                        } else {
                            d.pending = Some(*key);
                            changes.identity_changes.push(IdentityChange {
                                device: *id,
                                old: fingerprint(&m.identity),
                                new: fingerprint(key),
                                identity: *key,
                            });
                        }
                        next.devices.insert(*id, d);
                    }
                    None => {
                        next.devices.insert(*id, PeerDevice::new(*key));
                        changes.added.push(*id);
                    }
                },
                Some(d) => {
                    if d.stale_since.take().is_some() {
                        changes.relisted.push(*id);
                    }
                    if *key == d.identity {
                        if d.pending.take().is_some() {
                            changes.withdrawn.push(*id);
                        }
                    } else if d.pending != Some(*key) {
                        d.pending = Some(*key);
                        changes.identity_changes.push(IdentityChange {
                            device: *id,
                            old: fingerprint(&d.identity),
                            new: fingerprint(key),
                            identity: *key,
                        });
                    }
                }
            }
        }
        if changes.changed() {
            next.bump();
        }
        *self = next;
        Ok(changes)
    }

    /// §16.2 `acknowledge_identity`.
    ///
    /// # Errors
    ///
    /// `UnknownDevice`, `IdentityMismatch`.
    pub fn acknowledge_identity(
        &mut self,
        device: u32,
        identity: &[u8; 32],
    ) -> Result<(), Refusal> {
        let d = self
            .devices
            .get_mut(&device)
            .ok_or_else(|| refusal("UnknownDevice"))?;
        if d.pending != Some(*identity) {
            return Err(refusal("IdentityMismatch"));
        }
        d.identity = *identity;
        d.pending = None;
        d.active = None;
        d.archived.clear();
        self.bump();
        Ok(())
    }

    /// §16.4 `allow_classical`.
    ///
    /// # Errors
    ///
    /// `UnknownDevice`, `PostQuantumRequired`.
    pub fn allow_classical(&mut self, device: u32, allowed: bool) -> Result<(), Refusal> {
        let d = self
            .devices
            .get_mut(&device)
            .ok_or_else(|| refusal("UnknownDevice"))?;
        if allowed && d.pinned {
            return Err(refusal("PostQuantumRequired"));
        }
        if d.classical != allowed {
            d.classical = allowed;
            self.bump();
        }
        Ok(())
    }
}
