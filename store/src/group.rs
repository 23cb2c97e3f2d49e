//! Groups through the session layer (SPEC.md §16.8, §17.3 `group/`): a
//! group session per group, its distributions fanned out to every device of
//! every member in the same transaction that writes the group and the
//! members' records.

use sotto::Device;
use sotto::group::{GroupId, GroupMessage};
use sotto::sessions::{DeviceId, Fanout, GroupSession, PeerRecord, Unusable, UserId};

use crate::device::DEVICE;
use crate::error::{Error, Result};
use crate::mailbox::{Incoming, IncomingKind, Outgoing, OutgoingKind};
use crate::peer::{first, require_record};
use crate::store::{NewOutgoing, Op, Store, hex};

/// The prefix of every group's record name (SPEC §17.3).
pub(crate) const GROUP_PREFIX: &str = "group/";

/// The record name of a group.
pub(crate) fn group_name(id: &GroupId) -> String {
    format!("{GROUP_PREFIX}{}", hex(id.as_bytes()))
}

/// What a group operation committed: the group, and its distribution for
/// every member device, in the outbox.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct GroupUpdate {
    /// The group.
    pub group: [u8; 32],
    /// The distribution messages, one per member device with a session.
    pub outgoing: Vec<Outgoing>,
    /// Member devices that got none, and why.
    pub unusable: Vec<(UserId, Unusable)>,
}

/// What the store reports about a group.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct GroupStatus {
    /// The group session's generation (SPEC §10.1).
    pub generation: u64,
    /// The members, the local user included, in order.
    pub members: Vec<UserId>,
}

/// Loads the records of `users` (the own record for the local user).
fn records(op: &mut Op<'_>, users: &[UserId]) -> Result<Vec<(String, PeerRecord)>> {
    users.iter().map(|u| require_record(op, u)).collect()
}

/// Puts the fan-out's messages in the outbox and the records back.
fn commit_fanout(
    op: &mut Op<'_>,
    group: &[u8; 32],
    records: Vec<(String, PeerRecord)>,
    fanout: Fanout,
) -> Result<Vec<(UserId, Unusable)>> {
    let mut unusable = Vec::new();
    for (user, sent) in fanout.users {
        for out in sent.messages {
            op.send(NewOutgoing {
                kind: OutgoingKind::Message,
                destination: user.as_bytes().to_vec(),
                device: Some(out.device.0),
                payload: out.message.into_bytes(),
                app_ref: None,
                group: Some(*group),
            });
        }
        unusable.extend(sent.unusable.into_iter().map(|u| (user.clone(), u)));
    }
    for (name, record) in &records {
        op.put(name, record)?;
    }
    Ok(unusable)
}

fn group_id(bytes: &[u8; 32]) -> GroupId {
    GroupId::from_bytes(*bytes)
}

/// The update a committed fan-out made.
fn update(
    group: &[u8; 32],
    unusable: Vec<(UserId, Unusable)>,
    outgoing: Vec<Outgoing>,
) -> GroupUpdate {
    GroupUpdate {
        group: *group,
        outgoing,
        unusable,
    }
}

impl Store {
    /// Makes (or joins) group `group` with `members` (user ids, the local
    /// user included or not) and hands the local device's new chain to every
    /// device of every member, the local user's other devices included.
    /// `group` is a new random id for a new group, or the id the creator
    /// sent in its invitation.
    ///
    /// # Errors
    ///
    /// [`Error::AlreadyExists`] if the group exists; [`Error::NotFound`]
    /// without an account, a device or a member's record; the core's
    /// `TooManyGroupMembers`.
    pub fn create_group(&mut self, group: &[u8; 32], members: &[UserId]) -> Result<GroupUpdate> {
        let id = group_id(group);
        let name = group_name(&id);
        let (unusable, receipt) = self.run("create-group", |op| {
            let (me, _) = crate::peer::account(op)?.ok_or(Error::NotFound {
                record: "account".into(),
            })?;
            if op.exists(&name)? {
                return Err(Error::AlreadyExists {
                    record: name.clone(),
                });
            }
            let local: Device = op.require(DEVICE)?;
            let mut session = GroupSession::new(&mut crate::rng::OsRng, id, me.clone(), &local)?;
            let mut users = vec![me.clone()];
            for m in members.iter().filter(|m| **m != me) {
                if session.add_member(m.clone())? {
                    users.push(m.clone());
                }
            }
            let mut loaded = records(op, &users)?;
            let fanout = {
                let mut refs: Vec<&mut PeerRecord> = loaded.iter_mut().map(|(_, r)| r).collect();
                session.distribute(&mut refs, &mut crate::rng::OsRng)?
            };
            op.put(&name, &session)?;
            commit_fanout(op, group, loaded, fanout)
        })?;
        Ok(GroupUpdate {
            group: *group,
            outgoing: receipt.outbox,
            unusable,
        })
    }

    /// The state of `group`, if the database holds it.
    ///
    /// # Errors
    ///
    /// Record and database errors.
    pub fn group_status(&self, group: &[u8; 32]) -> Result<Option<GroupStatus>> {
        let name = group_name(&group_id(group));
        self.read(|op| {
            Ok(op.load::<GroupSession>(&name)?.map(|g| GroupStatus {
                generation: g.generation(),
                members: g.members().cloned().collect(),
            }))
        })
    }

    /// Encrypts `payload` on the local chain of `group` (SPEC §15.5); the
    /// message, for every member device, is committed to the outbox
    /// (destination: the group id).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`]; the core's errors of `GroupSession::encrypt`.
    pub fn group_send(
        &mut self,
        group: &[u8; 32],
        payload: &[u8],
        app_ref: Option<u64>,
    ) -> Result<Outgoing> {
        let name = group_name(&group_id(group));
        let ((), receipt) = self.run("group-send", |op| {
            let mut session: GroupSession = op.require(&name)?;
            let message = session.encrypt(payload, &mut crate::rng::OsRng)?;
            op.put(&name, &session)?;
            op.send(NewOutgoing {
                kind: OutgoingKind::GroupMessage,
                destination: group.to_vec(),
                device: None,
                payload: message.into_bytes(),
                app_ref,
                group: Some(*group),
            });
            Ok(())
        })?;
        first(receipt.outbox)
    }

    /// Decrypts a group message that `from` sent (SPEC §15.8): its chain's
    /// owner must be a device of `from`'s record. The plaintext goes to the
    /// inbox with the group.
    ///
    /// # Errors
    ///
    /// [`Error::Session`] with the layer's failure (a chain not installed
    /// yet: keep the message and give it again); [`Error::NotFound`]; the
    /// core's `IdentityMismatch` for a chain of another user's device.
    pub fn group_receive(
        &mut self,
        group: &[u8; 32],
        from: &UserId,
        message: &[u8],
    ) -> Result<Incoming> {
        let name = group_name(&group_id(group));
        let message = GroupMessage::from_bytes(message)?;
        let ((), receipt) = self.run("group-receive", |op| {
            let mut session: GroupSession = op.require(&name)?;
            let plaintext = session.decrypt(&message).map_err(Error::Session)?;
            let (_, record) = require_record(op, from)?;
            let owner = plaintext.sender().owner();
            let local = op.require::<Device>(DEVICE)?;
            let from_record = record.devices().any(|d| d.identity == *owner);
            let from_me = local.identity_key() == owner;
            if !from_record && !from_me {
                return Err(sotto::Error::IdentityMismatch.into());
            }
            op.put(&name, &session)?;
            op.deliver(
                IncomingKind::Message,
                from.as_bytes(),
                None,
                Some(*group),
                plaintext.as_bytes(),
            );
            Ok(())
        })?;
        first(receipt.inbox)
    }

    /// Removes `user` from `group` in one transaction (SPEC §16.8): the
    /// chains of its devices go, the local chain is replaced, and the new
    /// one is handed to every remaining member device.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`]; the core's `NotGroupMember`.
    pub fn remove_from_group(&mut self, group: &[u8; 32], user: &UserId) -> Result<GroupUpdate> {
        let name = group_name(&group_id(group));
        let (unusable, receipt) = self.run("remove-from-group", |op| {
            let local: Device = op.require(DEVICE)?;
            let mut session: GroupSession = op.require(&name)?;
            let remaining: Vec<UserId> =
                session.members().filter(|m| *m != user).cloned().collect();
            let mut loaded = records(op, &remaining)?;
            let fanout = {
                let mut refs: Vec<&mut PeerRecord> = loaded.iter_mut().map(|(_, r)| r).collect();
                session.remove_member(&local, user, &mut refs, &mut crate::rng::OsRng)?
            };
            op.put(&name, &session)?;
            commit_fanout(op, group, loaded, fanout)
        })?;
        Ok(GroupUpdate {
            group: *group,
            outgoing: receipt.outbox,
            unusable,
        })
    }

    /// Adds `user` to `group` and hands the local chain to every device of
    /// that user, in one transaction (SPEC §16.8). The user's record must
    /// exist ([`Store::update_devices`]); devices without a session come
    /// back in [`GroupUpdate::unusable`]: add their bundles, then
    /// [`Store::distribute_group`] to them.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`]; [`Error::AlreadyExists`] if `user` is a member;
    /// the core's `TooManyGroupMembers`.
    pub fn add_to_group(&mut self, group: &[u8; 32], user: &UserId) -> Result<GroupUpdate> {
        let name = group_name(&group_id(group));
        let (unusable, receipt) = self.run("add-to-group", |op| {
            let mut session: GroupSession = op.require(&name)?;
            if !session.add_member(user.clone())? {
                return Err(Error::AlreadyExists {
                    record: format!("{name}/{}", hex(user.as_bytes())),
                });
            }
            let mut loaded = records(op, std::slice::from_ref(user))?;
            let fanout = {
                let mut refs: Vec<&mut PeerRecord> = loaded.iter_mut().map(|(_, r)| r).collect();
                session.distribute(&mut refs, &mut crate::rng::OsRng)?
            };
            op.put(&name, &session)?;
            commit_fanout(op, group, loaded, fanout)
        })?;
        Ok(update(group, unusable, receipt.outbox))
    }

    /// Hands the local chain of `group` again to every device with a
    /// session of the members `to` (the local user for its other devices):
    /// after sessions were added for devices a fan-out could not reach, or
    /// after [`Store::after_restore`]. One transaction.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`]; the core's `NotGroupMember` if one of `to` is
    /// not a member.
    pub fn distribute_group(&mut self, group: &[u8; 32], to: &[UserId]) -> Result<GroupUpdate> {
        let name = group_name(&group_id(group));
        let (unusable, receipt) = self.run("distribute-group", |op| {
            let session: GroupSession = op.require(&name)?;
            let mut loaded = records(op, to)?;
            let fanout = {
                let mut refs: Vec<&mut PeerRecord> = loaded.iter_mut().map(|(_, r)| r).collect();
                session.distribute(&mut refs, &mut crate::rng::OsRng)?
            };
            commit_fanout(op, group, loaded, fanout)
        })?;
        Ok(update(group, unusable, receipt.outbox))
    }

    /// Replaces the local chain of `group` and hands the new one to every
    /// member device, dropping the chains of devices no member's record
    /// holds any more (SPEC §16.8): after a device left a member's list, or
    /// on a schedule. One transaction.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`]; the core's `RandomnessUnavailable`.
    pub fn rotate_group(&mut self, group: &[u8; 32]) -> Result<GroupUpdate> {
        let name = group_name(&group_id(group));
        let (unusable, receipt) = self.run("rotate-group", |op| {
            let local: Device = op.require(DEVICE)?;
            let mut session: GroupSession = op.require(&name)?;
            let members: Vec<UserId> = session.members().cloned().collect();
            let mut loaded = records(op, &members)?;
            let fanout = {
                let mut refs: Vec<&mut PeerRecord> = loaded.iter_mut().map(|(_, r)| r).collect();
                session.rotate(&local, &mut refs, &mut crate::rng::OsRng)?
            };
            op.put(&name, &session)?;
            commit_fanout(op, group, loaded, fanout)
        })?;
        Ok(update(group, unusable, receipt.outbox))
    }

    /// Asks `device` of `user` for its chain of `group`, over its active
    /// session (SPEC §16.8): for a group message that stays
    /// [`RetryLater::MissingDistribution`](sotto::sessions::RetryLater), or
    /// after a restore. The request is committed to the outbox.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`]; the core's errors of
    /// `PeerRecord::request_distribution` (`NoSession`, ...).
    pub fn request_distribution(
        &mut self,
        group: &[u8; 32],
        user: &UserId,
        device: DeviceId,
    ) -> Result<Outgoing> {
        let id = group_id(group);
        let ((), receipt) = self.run("request-distribution", |op| {
            let (name, mut record) = require_record(op, user)?;
            let message = record.request_distribution(device, &id, &mut crate::rng::OsRng)?;
            op.put(&name, &record)?;
            op.send(NewOutgoing {
                kind: OutgoingKind::Message,
                destination: user.as_bytes().to_vec(),
                device: Some(device.0),
                payload: message.into_bytes(),
                app_ref: None,
                group: None,
            });
            Ok(())
        })?;
        first(receipt.outbox)
    }
}
