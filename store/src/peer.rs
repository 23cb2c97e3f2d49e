//! Users and devices through the session layer (SPEC.md §16, §17.3 `peer/`
//! and `own`): a peer record per user, the own record for the local user's
//! other devices, each operation one transaction that writes the record,
//! the device when an accepted prekey message changed it, and the entries
//! it made.

use sotto::sessions::{
    Content, DeviceId, DeviceInfo, DeviceListChanges, Expired, GroupSession, PeerRecord, RetryHint,
    SendPlan, Unusable, UserId,
};
use sotto::{Device, IdentityKey, Message, PreKeyBundle};

use crate::device::DEVICE;
use crate::error::{Error, Result};
use crate::group::group_name;
use crate::mailbox::{Incoming, IncomingKind, Outgoing, OutgoingKind, hint_bytes};
use crate::store::{NewOutgoing, Op, Store, hex};

/// The own record's name (SPEC §17.3).
pub(crate) const OWN: &str = "own";

/// The prefix of every peer record's name (SPEC §17.3).
pub(crate) const PEER_PREFIX: &str = "peer/";

/// The record name of `user`'s peer record.
pub(crate) fn peer_name(user: &UserId) -> String {
    format!("{PEER_PREFIX}{}", hex(user.as_bytes()))
}

/// What the store reports about the record of a user.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct PeerStatus {
    /// The record's generation (SPEC §10.1).
    pub generation: u64,
    /// Its devices, in id order.
    pub devices: Vec<DeviceInfo>,
}

/// What an encryption to every device of a user made.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
#[non_exhaustive]
pub struct SentToUser {
    /// One committed outbox entry per device that got a message.
    pub outgoing: Vec<Outgoing>,
    /// The listed devices that got none, and why (fetch a bundle,
    /// acknowledge an identity change).
    pub unusable: Vec<Unusable>,
}

/// What a message from a device turned out to be, once committed.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Delivered {
    /// An application payload, in the inbox.
    Message(Incoming),
    /// A sender key distribution, installed in the group's session.
    Distribution {
        /// The group.
        group: [u8; 32],
    },
    /// The peer could not decrypt the message this hint names: resend it
    /// with [`Store::resend_to_device`] if the application still has it,
    /// then acknowledge the inbox entry that keeps the request until then.
    RetryRequest {
        /// The message the peer asks for.
        hint: RetryHint,
        /// The committed inbox entry ([`IncomingKind::RetryRequest`]).
        entry: Incoming,
    },
    /// The peer asked for the local device's distribution of a group; the
    /// answer is in the outbox if the peer is a member.
    DistributionRequest {
        /// The group.
        group: [u8; 32],
        /// The committed answer, if any.
        answer: Option<Outgoing>,
    },
}

/// What a committed receive made, before its entries have ids.
enum Got {
    Message,
    Distribution([u8; 32]),
    RetryRequest(RetryHint),
    DistributionRequest([u8; 32]),
}

/// The account set in the database, as the session layer's types.
pub(crate) fn account(op: &Op<'_>) -> Result<Option<(UserId, DeviceId)>> {
    match op.account_raw()? {
        Some((user, device)) => Ok(Some((
            UserId::new(&user).map_err(|_| Error::DatabaseCorrupt)?,
            DeviceId(device),
        ))),
        None => Ok(None),
    }
}

/// The record of `user`: the own record for the account's user.
pub(crate) fn load_record(op: &mut Op<'_>, user: &UserId) -> Result<Option<(String, PeerRecord)>> {
    let name = record_name(op, user)?;
    Ok(op.load::<PeerRecord>(&name)?.map(|r| (name, r)))
}

fn record_name(op: &mut Op<'_>, user: &UserId) -> Result<String> {
    Ok(match account(op)? {
        Some((own, _)) if own == *user => OWN.to_owned(),
        _ => peer_name(user),
    })
}

pub(crate) fn require_record(op: &mut Op<'_>, user: &UserId) -> Result<(String, PeerRecord)> {
    load_record(op, user)?.ok_or_else(|| Error::NotFound {
        record: peer_name(user),
    })
}

/// A pairwise message for `device` of `user`; `group` for one that hands
/// out the local chain of that group.
fn message_out(
    user: &UserId,
    device: DeviceId,
    message: Message,
    app_ref: Option<u64>,
    group: Option<[u8; 32]>,
) -> NewOutgoing {
    NewOutgoing {
        kind: OutgoingKind::Message,
        destination: user.as_bytes().to_vec(),
        device: Some(device.0),
        payload: message.into_bytes(),
        app_ref,
        group,
    }
}

impl Store {
    /// Records the local user and this device's id, and makes the own
    /// record (for the user's other devices). Once per database.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] without a device; [`Error::AlreadyExists`] if an
    /// account is set; database errors.
    pub fn set_account(&mut self, user: &UserId, device: DeviceId) -> Result<()> {
        self.run("set-account", |op| {
            if account(op)?.is_some() || op.exists(OWN)? {
                return Err(Error::AlreadyExists {
                    record: OWN.to_owned(),
                });
            }
            let local: Device = op.require(DEVICE)?;
            let own = PeerRecord::new_own(user.clone(), device, *local.identity_key());
            op.put(OWN, &own)?;
            op.set_account_raw(user.as_bytes(), device.0);
            Ok(())
        })
        .map(drop)
    }

    /// The local user and device, once set.
    ///
    /// # Errors
    ///
    /// Database errors.
    pub fn account(&self) -> Result<Option<(UserId, DeviceId)>> {
        self.read(|op| account(op))
    }

    /// Gives `user`'s device list as the server returned it (SPEC §16.2),
    /// making the record on first use; the local user's own list goes to
    /// the own record.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] without a device; the core's
    /// `InvalidDeviceList`; database errors.
    pub fn update_devices(
        &mut self,
        user: &UserId,
        list: &[(DeviceId, IdentityKey)],
        now: u64,
    ) -> Result<DeviceListChanges> {
        let (changes, _) = self.run("update-devices", |op| {
            let (name, mut record) = match load_record(op, user)? {
                Some(found) => found,
                None => {
                    let local: Device = op.require(DEVICE)?;
                    let name = record_name(op, user)?;
                    (name, PeerRecord::new(user.clone(), *local.identity_key()))
                }
            };
            let before = record.generation();
            let changes = record.update_devices(list, now)?;
            if record.generation() != before || !op.exists(&name)? {
                op.put(&name, &record)?;
            }
            Ok(changes)
        })?;
        Ok(changes)
    }

    /// Trusts the new identity the server announced for `device` of `user`
    /// (after the user compared safety numbers).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`]; the core's `UnknownDevice`, `IdentityMismatch`.
    pub fn acknowledge_identity(
        &mut self,
        user: &UserId,
        device: DeviceId,
        identity: &IdentityKey,
    ) -> Result<()> {
        self.run("acknowledge-identity", |op| {
            let (name, mut record) = require_record(op, user)?;
            record.acknowledge_identity(device, identity)?;
            op.put(&name, &record)
        })
        .map(drop)
    }

    /// Which of `user`'s devices are ready, need a bundle, or are blocked
    /// (SPEC §16.3). Changes nothing.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`]; record and database errors.
    pub fn plan_send(&self, user: &UserId, now: u64) -> Result<SendPlan> {
        self.read(|op| Ok(require_record(op, user)?.1.plan_send(now)))
    }

    /// Starts a session with `device` of `user` from its bundle (SPEC §16.3).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`]; the core's errors of `PeerRecord::add_bundle`.
    pub fn add_bundle(
        &mut self,
        user: &UserId,
        device: DeviceId,
        bundle: PreKeyBundle,
        now: u64,
    ) -> Result<()> {
        self.run("add-bundle", |op| {
            let local: Device = op.require(DEVICE)?;
            let (name, mut record) = require_record(op, user)?;
            record.add_bundle(&local, device, bundle.clone(), now, &mut crate::rng::OsRng)?;
            op.put(&name, &record)
        })
        .map(drop)
    }

    /// Encrypts `payload` once for every listed device of `user` with a
    /// session (SPEC §16.3); every message is committed to the outbox
    /// before it is returned.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`]; the core's `PlaintextTooLarge`,
    /// `RandomnessUnavailable`.
    pub fn send_to_user(
        &mut self,
        user: &UserId,
        payload: &[u8],
        app_ref: Option<u64>,
    ) -> Result<SentToUser> {
        let (unusable, receipt) = self.run("send-to-user", |op| {
            let (name, mut record) = require_record(op, user)?;
            let sent = record.encrypt(payload, &mut crate::rng::OsRng)?;
            if !sent.messages.is_empty() {
                op.put(&name, &record)?;
            }
            for out in sent.messages {
                op.send(message_out(user, out.device, out.message, app_ref, None));
            }
            Ok(sent.unusable)
        })?;
        Ok(SentToUser {
            outgoing: receipt.outbox,
            unusable,
        })
    }

    /// Encrypts `payload` for `device` of `user` alone (a resend answering
    /// a retry request) (SPEC §16.3).
    ///
    /// # Errors
    ///
    /// As [`PeerRecord::encrypt_to`].
    pub fn resend_to_device(
        &mut self,
        user: &UserId,
        device: DeviceId,
        payload: &[u8],
        app_ref: Option<u64>,
    ) -> Result<Outgoing> {
        let ((), receipt) = self.run("resend-to-device", |op| {
            let (name, mut record) = require_record(op, user)?;
            let message = record.encrypt_to(device, payload, &mut crate::rng::OsRng)?;
            op.put(&name, &record)?;
            op.send(message_out(user, device, message, app_ref, None));
            Ok(())
        })?;
        first(receipt.outbox)
    }

    /// Decrypts a message from `device` of `user` through the session layer
    /// (SPEC §16.5) and commits what it was: a payload goes to the inbox, a
    /// distribution into its group, a distribution request is answered.
    /// An accepted prekey message changes the device in the same
    /// transaction.
    ///
    /// # Errors
    ///
    /// [`Error::Session`] with the layer's [`Failure`](sotto::sessions::Failure)
    /// and the action to take; [`Error::NotFound`] for a record, or for a
    /// distribution of a group not joined yet (the message stays with the
    /// relay: give it again after joining); the core's errors of
    /// `Message::from_bytes` and `GroupSession::install`. Nothing changed.
    pub fn receive_from(
        &mut self,
        user: &UserId,
        device: DeviceId,
        message: &[u8],
        now: u64,
    ) -> Result<Delivered> {
        let message = Message::from_bytes(message)?;
        let (what, receipt) = self.run("receive-from", |op| {
            let mut local: Device = op.require(DEVICE)?;
            let (name, mut record) = require_record(op, user)?;
            let before = local.generation();
            let received = record
                .decrypt(&mut local, device, &message, now)
                .map_err(Error::Session)?;
            if local.generation() != before {
                op.put(DEVICE, &local)?;
            }
            let what = match received.content() {
                Content::Payload(payload) => {
                    op.deliver(
                        IncomingKind::Message,
                        user.as_bytes(),
                        Some(device.0),
                        None,
                        &payload[..],
                    );
                    Got::Message
                }
                Content::Distribution(d) => {
                    let group_id = *d.group_id();
                    let gname = group_name(&group_id);
                    let mut group: GroupSession = op.require(&gname)?;
                    group.install(&record, &received)?;
                    op.put(&gname, &group)?;
                    Got::Distribution(*group_id.as_bytes())
                }
                Content::RetryRequest(hint) => {
                    op.deliver(
                        IncomingKind::RetryRequest,
                        user.as_bytes(),
                        Some(device.0),
                        None,
                        &hint_bytes(hint),
                    );
                    Got::RetryRequest(*hint)
                }
                Content::DistributionRequest(group_id) => {
                    let gname = group_name(group_id);
                    let group: Option<GroupSession> = op.load(&gname)?;
                    if let Some(group) = group.filter(|g| g.is_member(user)) {
                        let answer =
                            group.distribute_to(&mut record, device, &mut crate::rng::OsRng)?;
                        op.send(message_out(
                            user,
                            device,
                            answer,
                            None,
                            Some(*group_id.as_bytes()),
                        ));
                    }
                    Got::DistributionRequest(*group_id.as_bytes())
                }
            };
            op.put(&name, &record)?;
            Ok(what)
        })?;
        Ok(match what {
            Got::Message => Delivered::Message(first(receipt.inbox)?),
            Got::Distribution(group) => Delivered::Distribution { group },
            Got::RetryRequest(hint) => Delivered::RetryRequest {
                hint,
                entry: first(receipt.inbox)?,
            },
            Got::DistributionRequest(group) => Delivered::DistributionRequest {
                group,
                answer: receipt.outbox.into_iter().next(),
            },
        })
    }

    /// The record of `user` (the own record for the local user), if any.
    ///
    /// # Errors
    ///
    /// Record and database errors.
    pub fn peer_status(&self, user: &UserId) -> Result<Option<PeerStatus>> {
        self.read(|op| {
            Ok(load_record(op, user)?.map(|(_, r)| PeerStatus {
                generation: r.generation(),
                devices: r.devices().collect(),
            }))
        })
    }

    /// Deletes, in every peer record and the own record, what is old at
    /// `now` (SPEC §16.7): devices stale for long enough, and archived
    /// sessions nothing decrypted on for long enough. One transaction;
    /// returns what went, by user.
    ///
    /// # Errors
    ///
    /// Record and database errors.
    pub fn expire(&mut self, now: u64) -> Result<Vec<(UserId, Expired)>> {
        let (expired, _) = self.run("expire", |op| {
            let mut names = op.names(PEER_PREFIX)?;
            if op.exists(OWN)? {
                names.push(OWN.to_owned());
            }
            let mut expired = Vec::new();
            for name in names {
                let mut record: PeerRecord = op.require(&name)?;
                let done = record.expire(now);
                if !done.devices.is_empty() || done.sessions > 0 {
                    op.put(&name, &record)?;
                    expired.push((record.user().clone(), done));
                }
            }
            Ok(expired)
        })?;
        Ok(expired)
    }

    /// Sends a retry request for the message `hint` names to `device` of
    /// `user` (SPEC §16.6, [`Action::RequestRetry`](sotto::sessions::Action)).
    ///
    /// # Errors
    ///
    /// As [`PeerRecord::request_retry`].
    pub fn request_retry(
        &mut self,
        user: &UserId,
        device: DeviceId,
        hint: &RetryHint,
        now: u64,
    ) -> Result<Outgoing> {
        let ((), receipt) = self.run("request-retry", |op| {
            let (name, mut record) = require_record(op, user)?;
            let message = record.request_retry(device, hint, now, &mut crate::rng::OsRng)?;
            op.put(&name, &record)?;
            op.send(message_out(user, device, message, None, None));
            Ok(())
        })?;
        first(receipt.outbox)
    }

    /// Starts a new session with `device` of `user` from its bundle, whose
    /// first message asks for the message `hint` names (SPEC §16.6,
    /// [`Action::StartNewSession`](sotto::sessions::Action)).
    ///
    /// # Errors
    ///
    /// As [`PeerRecord::start_new_session`].
    pub fn start_new_session(
        &mut self,
        user: &UserId,
        device: DeviceId,
        bundle: PreKeyBundle,
        hint: &RetryHint,
        now: u64,
    ) -> Result<Outgoing> {
        let ((), receipt) = self.run("start-new-session", |op| {
            let local: Device = op.require(DEVICE)?;
            let (name, mut record) = require_record(op, user)?;
            let message = record.start_new_session(
                &local,
                device,
                bundle.clone(),
                hint,
                now,
                &mut crate::rng::OsRng,
            )?;
            op.put(&name, &record)?;
            op.send(message_out(user, device, message, None, None));
            Ok(())
        })?;
        first(receipt.outbox)
    }
}

pub(crate) fn first<T>(items: Vec<T>) -> Result<T> {
    items.into_iter().next().ok_or(Error::NotFound {
        record: "entry".to_owned(),
    })
}
