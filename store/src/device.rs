//! The local device's operations (SPEC.md §17.5): each one transaction that
//! loads the device, runs the core, writes the device and the prekey upload,
//! and returns the upload only once committed. Prekey ids are therefore
//! never published before the counter that assigned them is on disk, and
//! never reused across crashes.

use sotto::{Device, IdentityKey};

use crate::error::Result;
use crate::mailbox::{Outgoing, OutgoingKind};
use crate::store::{NewOutgoing, Op, Store};
use crate::upload::PreKeyUpload;

/// The local device's record name (SPEC §17.3).
pub(crate) const DEVICE: &str = "device";

/// What the store reports about the local device.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct DeviceStatus {
    /// The device's identity.
    pub identity: IdentityKey,
    /// Its generation (SPEC §10.1).
    pub generation: u64,
    /// The current signed prekey's id.
    pub signed_prekey_id: u32,
    /// The current last-resort KEM prekey's id.
    pub last_resort_kem_prekey_id: u32,
    /// Unused one-time prekeys held.
    pub one_time_prekeys: usize,
    /// Unused one-time KEM prekeys held.
    pub one_time_kem_prekeys: usize,
}

pub(crate) fn upload(op: &mut Op<'_>, upload: &PreKeyUpload) {
    op.send(NewOutgoing {
        kind: OutgoingKind::PreKeys,
        destination: Vec::new(),
        device: None,
        payload: upload.to_bytes(),
        app_ref: None,
        group: None,
    });
}

/// The one outbox entry of a committed prekey operation.
pub(crate) fn only(outbox: Vec<Outgoing>) -> Result<Outgoing> {
    outbox.into_iter().next().ok_or(crate::Error::NotFound {
        record: "outbox".to_owned(),
    })
}

impl Store {
    /// Creates the local device (SPEC §6 "New device") and puts its first
    /// upload in the outbox: identity, signed prekey and last-resort KEM
    /// prekey. Add one-time prekeys with [`Store::replenish_prekeys`].
    ///
    /// # Errors
    ///
    /// [`crate::Error::AlreadyExists`] if the database has a device; the
    /// core's `RandomnessUnavailable`; database errors.
    pub fn create_device(&mut self, now: u64) -> Result<Outgoing> {
        let ((), receipt) = self.run("create-device", |op| {
            if op.exists(DEVICE)? {
                return Err(crate::Error::AlreadyExists {
                    record: DEVICE.to_owned(),
                });
            }
            let device = Device::generate(&mut crate::rng::OsRng, now)?;
            let mut up = PreKeyUpload::new(*device.identity_key());
            up.signed_prekey = Some(device.signed_prekey());
            up.last_resort_kem_prekey = Some(device.last_resort_kem_prekey());
            op.put(DEVICE, &device)?;
            upload(op, &up);
            Ok(())
        })?;
        only(receipt.outbox)
    }

    /// The local device's status.
    ///
    /// # Errors
    ///
    /// [`crate::Error::NotFound`] before [`Store::create_device`]; the
    /// record errors of [`Store::verify`]; database errors.
    pub fn device_status(&self) -> Result<DeviceStatus> {
        self.read(|op| {
            let device: Device = op.require(DEVICE)?;
            Ok(DeviceStatus {
                identity: *device.identity_key(),
                generation: device.generation(),
                signed_prekey_id: device.signed_prekey().id(),
                last_resort_kem_prekey_id: device.last_resort_kem_prekey().id(),
                one_time_prekeys: device.one_time_prekey_count(),
                one_time_kem_prekeys: device.one_time_kem_prekey_count(),
            })
        })
    }

    /// Makes a new current signed prekey (SPEC §6) and puts it in the
    /// outbox.
    ///
    /// # Errors
    ///
    /// [`crate::Error::NotFound`]; the core's `TooManyPreKeys` or
    /// `RandomnessUnavailable`; database errors.
    pub fn rotate_signed_prekey(&mut self, now: u64) -> Result<Outgoing> {
        let ((), receipt) = self.run("rotate-signed-prekey", |op| {
            let mut device: Device = op.require(DEVICE)?;
            let key = device.rotate_signed_prekey(&mut crate::rng::OsRng, now)?;
            let mut up = PreKeyUpload::new(*device.identity_key());
            up.signed_prekey = Some(key);
            op.put(DEVICE, &device)?;
            upload(op, &up);
            Ok(())
        })?;
        only(receipt.outbox)
    }

    /// Makes a new current last-resort KEM prekey (SPEC §6) and puts it in
    /// the outbox.
    ///
    /// # Errors
    ///
    /// As [`Store::rotate_signed_prekey`].
    pub fn rotate_last_resort_kem_prekey(&mut self, now: u64) -> Result<Outgoing> {
        let ((), receipt) = self.run("rotate-kem-prekey", |op| {
            let mut device: Device = op.require(DEVICE)?;
            let key = device.rotate_last_resort_kem_prekey(&mut crate::rng::OsRng, now)?;
            let mut up = PreKeyUpload::new(*device.identity_key());
            up.last_resort_kem_prekey = Some(key);
            op.put(DEVICE, &device)?;
            upload(op, &up);
            Ok(())
        })?;
        only(receipt.outbox)
    }

    /// Tops the unused one-time prekeys up to `one_time` and the unused
    /// one-time KEM prekeys up to `one_time_kem` (each at most the core's
    /// bound), and puts the new ones in the outbox. `None` if both were
    /// full: nothing changed.
    ///
    /// # Errors
    ///
    /// As [`Store::rotate_signed_prekey`].
    pub fn replenish_prekeys(
        &mut self,
        one_time: usize,
        one_time_kem: usize,
    ) -> Result<Option<Outgoing>> {
        let ((), receipt) = self.run("replenish-prekeys", |op| {
            let mut device: Device = op.require(DEVICE)?;
            let mut up = PreKeyUpload::new(*device.identity_key());
            let missing = one_time
                .min(sotto::MAX_ONE_TIME_PREKEYS)
                .saturating_sub(device.one_time_prekey_count());
            up.one_time_prekeys =
                device.generate_one_time_prekeys(&mut crate::rng::OsRng, missing)?;
            let missing = one_time_kem
                .min(sotto::MAX_ONE_TIME_KEM_PREKEYS)
                .saturating_sub(device.one_time_kem_prekey_count());
            up.one_time_kem_prekeys =
                device.generate_one_time_kem_prekeys(&mut crate::rng::OsRng, missing)?;
            if !up.is_empty() {
                op.put(DEVICE, &device)?;
                upload(op, &up);
            }
            Ok(())
        })?;
        Ok(receipt.outbox.into_iter().next())
    }
}
