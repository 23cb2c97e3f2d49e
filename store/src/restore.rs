//! A database restored from an older copy (SPEC.md §17.7): the application
//! keeps the store's high-water mark outside the database, and after a
//! restore one transaction makes every state safe again (§6 for the device,
//! §16.7 for the peer records, §16.8 for the groups).

use sotto::Device;
use sotto::sessions::{GroupSession, PeerRecord};

use crate::device::{DEVICE, only, upload};
use crate::error::Result;
use crate::group::GROUP_PREFIX;
use crate::mailbox::Outgoing;
use crate::peer::{OWN, PEER_PREFIX};
use crate::store::Store;
use crate::upload::PreKeyUpload;

/// The most any one operation of the store advances one state's
/// generation (SPEC §17.7; the most today is 2: replenishing both kinds of
/// one-time prekeys, or a decrypt that answers a distribution request).
/// After a restore every state's generation moves past what it can have
/// reached before: by this much per commit the restored copy missed.
pub const MAX_GENERATION_STEPS_PER_OPERATION: u64 = 4;

/// What [`Store::after_restore`] did to a stale database.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct Restored {
    /// The prekey upload replacing everything the server holds for the
    /// device (its `replace` flag set), committed to the outbox. Replenish
    /// the one-time prekeys after it.
    pub upload: Outgoing,
    /// Peer records (the own record included) whose sessions were all
    /// deleted: new sessions are made as for a device without one
    /// ([`Store::plan_send`]), and the peers' messages on the old sessions
    /// are answered by recovery (SPEC §16.6).
    pub records: usize,
    /// Groups whose receivers were deleted and whose local chain was
    /// replaced: hand the new chain out with [`Store::distribute_group`]
    /// once sessions exist, and ask the members for theirs
    /// ([`Store::request_distribution`]) as their messages come in.
    pub groups: Vec<[u8; 32]>,
}

impl Store {
    /// The database's high-water mark: a counter that every committed
    /// change raises (SPEC §17.3 `seq`). Record it outside the database
    /// (where a backup does not roll it back) after every operation, and
    /// give the last value recorded to [`Store::after_restore`] whenever
    /// the database may have been restored.
    ///
    /// # Errors
    ///
    /// Database errors.
    pub fn high_water_mark(&self) -> Result<u64> {
        self.read(|op| op.seq())
    }

    /// Makes a database restored from an older copy safe to use, in one
    /// transaction. `recorded` is the last [`Store::high_water_mark`] the
    /// application recorded outside the database. If the database's own
    /// mark is not below it, the database is not older than the
    /// application knew and nothing changes (`None`). Otherwise every
    /// state may repeat what it already did, so: every state's generation
    /// moves past any it had before the restore
    /// ([`MAX_GENERATION_STEPS_PER_OPERATION`]), the device's prekeys are
    /// reset (SPEC §6; every prekey message made before is refused, and
    /// the upload replacing the server's prekeys goes to the outbox), every
    /// session of every peer record is deleted (§16.7), every group drops
    /// its receivers and replaces its local chain (§16.8), and the mark
    /// moves past `recorded`.
    ///
    /// # Errors
    ///
    /// [`crate::Error::NotFound`] without a device; the core's
    /// `TooManyPreKeys` or `RandomnessUnavailable`; record and database
    /// errors. Nothing changed.
    pub fn after_restore(&mut self, now: u64, recorded: u64) -> Result<Option<Restored>> {
        let (found, receipt) = self.run("after-restore", |op| {
            let seq = op.seq()?;
            if seq >= recorded {
                return Ok(None);
            }
            // Every state's generation moves past any it had before the
            // restore: each missed commit advanced it by at most the bound.
            let missed = (recorded - seq).saturating_mul(MAX_GENERATION_STEPS_PER_OPERATION);
            let mut device: Device = op.require(DEVICE)?;
            let bump = device.generation().saturating_add(missed);
            let (spk, kem) =
                device.reset_prekeys_after_restore(&mut crate::rng::OsRng, now, bump)?;
            let mut up = PreKeyUpload::new(*device.identity_key());
            up.replace = true;
            up.signed_prekey = Some(spk);
            up.last_resort_kem_prekey = Some(kem);
            op.put(DEVICE, &device)?;
            upload(op, &up);

            let mut names = op.names(PEER_PREFIX)?;
            if op.exists(OWN)? {
                names.push(OWN.to_owned());
            }
            for name in &names {
                let mut record: PeerRecord = op.require(name)?;
                let bump = record.generation().saturating_add(missed);
                record.after_restore(bump);
                op.put(name, &record)?;
            }
            let mut groups = Vec::new();
            for name in op.names(GROUP_PREFIX)? {
                let mut group: GroupSession = op.require(&name)?;
                let bump = group.generation().saturating_add(missed);
                group.after_restore(&device, bump, &mut crate::rng::OsRng)?;
                op.put(&name, &group)?;
                groups.push(*group.group_id().as_bytes());
            }
            op.raise_seq(recorded);
            Ok(Some((names.len(), groups)))
        })?;
        match found {
            None => Ok(None),
            Some((records, groups)) => Ok(Some(Restored {
                upload: only(receipt.outbox)?,
                records,
                groups,
            })),
        }
    }
}
