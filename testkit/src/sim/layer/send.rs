//! What an application does on its own initiative: send to a user (every
//! device, and its own other devices), start sessions from bundles, keep
//! its device lists current, and run its group.

use std::collections::BTreeSet;

use sotto::Error;
use sotto::Message;
use sotto::sessions::{DeviceId, Fanout, GroupSession, LocalListing, PeerRecord, RetryHint};

use super::app::{App, Resendable};
use super::world::World;
use super::{Envelope, Expect, GROUP, Slot};

/// How long an application waits before asking a device again for its
/// distribution.
const ASK_AGAIN: u64 = 1800;

impl World {
    /// A device writes to one of the users its user talks to (now and then
    /// a note to itself, which reaches its own other devices only). One
    /// time in ten the other side writes back in the same instant.
    pub(super) fn send_text(&mut self) {
        let Some(a) = self.pick_online() else {
            return;
        };
        let u = self.slots[a].user;
        let peers: Vec<usize> = (0..self.users.len())
            .filter(|v| self.talks(u, *v))
            .collect();
        let v = peers[self.below(peers.len())];
        self.with_app_lossy(a, |w, app| w.send_payload(a, app, v));
        if self.chance(10) {
            let others: Vec<usize> = self.users[v]
                .slots
                .iter()
                .copied()
                .filter(|s| *s != a && self.slots[*s].offline_until <= self.now)
                .collect();
            if !others.is_empty() {
                let b = others[self.below(others.len())];
                self.stats.concurrent_sends += 1;
                self.with_app_lossy(b, |w, app| w.send_payload(b, app, u));
            }
        }
    }

    fn payload(&mut self, slot: Slot, to: &str) -> Vec<u8> {
        let id = self.next_app_id;
        self.next_app_id += 1;
        let mut payload = format!("m{id} from {slot} to {to} ").into_bytes();
        payload.resize(payload.len() + self.below(40), b'.');
        payload
    }

    /// One payload to every device of user `v` and to the sender's own
    /// other devices, starting sessions where the plan asks.
    pub(super) fn send_payload(&mut self, slot: Slot, app: &mut App, v: usize) {
        let own = self.slots[slot].user;
        let payload = self.payload(slot, &format!("user {v}"));
        let mut users = vec![v];
        if v != own {
            users.push(own);
        }
        for user in users {
            self.ensure_sessions(slot, app, user);
            let sent = app
                .records
                .get_mut(&user)
                .unwrap()
                .encrypt(&payload, &mut app.rng)
                .unwrap();
            for unusable in &sent.unusable {
                match unusable.error {
                    Error::NoSession => self.stats.unusable_no_session += 1,
                    Error::IdentityChangePending => self.stats.unusable_pending += 1,
                    e => panic!("unusable device: {e:?}"),
                }
            }
            for o in sent.messages {
                self.emit(
                    slot,
                    app,
                    user,
                    o.device,
                    o.message,
                    Expect::Payload(payload.clone()),
                );
            }
        }
    }

    /// One payload to one device (delivery resumed): the message's ledger
    /// entry and the payload's application id, or `None` if no session could
    /// be made.
    pub(super) fn send_to(&mut self, a: Slot, b: Slot) -> Option<(u64, u64)> {
        let (u, d) = (self.slots[b].user, self.slots[b].device);
        let id = self.next_app_id;
        let payload = self.payload(a, &format!("device {b}"));
        self.with_app(a, |w, app| {
            if !w.ensure_session(a, app, u, d) {
                return None;
            }
            let message = app
                .records
                .get_mut(&u)
                .unwrap()
                .encrypt_to(d, &payload, &mut app.rng)
                .ok()?;
            Some((w.emit(a, app, u, d, message, Expect::Payload(payload)), id))
        })
        .flatten()
    }

    /// Puts a message from `slot` to device `device` of user `user` on the
    /// network, with its ledger entry; returns the entry.
    pub(super) fn emit(
        &mut self,
        slot: Slot,
        app: &mut App,
        user: usize,
        device: DeviceId,
        message: Message,
        expect: Expect,
    ) -> u64 {
        let target = self.slot_of[&(user, device)];
        let identity = app.records[&user].device(device).unwrap().identity;
        let to = self.inc_of(target, &identity);
        let from = self.current(slot);
        let hint = RetryHint::for_message(&message);
        match &expect {
            Expect::Payload(bytes) => {
                self.stats.payloads += 1;
                app.log_sent(to, hint, Resendable::Payload(bytes.clone()));
            }
            Expect::Distribution => {
                self.stats.distributions += 1;
                app.log_sent(to, hint, Resendable::Distribution);
            }
            Expect::Retry(_) => self.stats.retry_requests += 1,
            Expect::DistributionRequest => self.stats.distribution_requests += 1,
        }
        let wire = self
            .ledger
            .wire(from, to, *app.device.identity_key(), expect);
        self.stats.messages += 1;
        self.stats.pairwise += 1;
        self.post(Envelope {
            from,
            to,
            bytes: message.into_bytes(),
            group: false,
            wire: Some(wire),
            ready_at: 0,
        });
        wire
    }

    fn emit_fanout(&mut self, slot: Slot, app: &mut App, fanout: Fanout) {
        for (id, sent) in fanout.users {
            let user = self.user_index(&id);
            self.stats.unusable_no_session += sent
                .unusable
                .iter()
                .filter(|u| u.error == Error::NoSession)
                .count() as u64;
            for o in sent.messages {
                self.emit(slot, app, user, o.device, o.message, Expect::Distribution);
            }
        }
    }

    /// Starts a session from a fetched bundle with every listed device of
    /// `user` that the plan says needs one.
    pub(super) fn ensure_sessions(&mut self, slot: Slot, app: &mut App, user: usize) {
        let plan = app.records[&user].plan_send(self.clock(slot));
        for device in plan.needs_bundle {
            self.add_bundle(slot, app, user, device);
        }
    }

    /// Whether `device` of `user` has a usable session, starting one if the
    /// plan asks.
    pub(super) fn ensure_session(
        &mut self,
        slot: Slot,
        app: &mut App,
        user: usize,
        device: DeviceId,
    ) -> bool {
        let plan = app.records[&user].plan_send(self.clock(slot));
        if plan.needs_bundle.contains(&device) {
            return self.add_bundle(slot, app, user, device);
        }
        plan.ready.contains(&device)
    }

    fn add_bundle(&mut self, slot: Slot, app: &mut App, user: usize, device: DeviceId) -> bool {
        let target = self.slot_of[&(user, device)];
        // A device the server no longer has: the next list says so.
        let Some(bundle) = self.bundle(target) else {
            return false;
        };
        let record = app.records.get_mut(&user).unwrap();
        match record.add_bundle(&app.device, device, bundle, self.clock(slot), &mut app.rng) {
            Ok(()) => {
                self.stats.bundles += 1;
                true
            }
            // Reinstalled under a new identity: the next list reports it.
            Err(Error::IdentityMismatch) => {
                self.stats.bundle_stale_identity += 1;
                false
            }
            Err(e) => panic!("add_bundle: {e:?}"),
        }
    }

    /// Feeds the server's device list of user `u` to its record; the
    /// application acknowledges identity changes (at once when `ack_all`,
    /// else mostly), rotates its group chain when a member's device left,
    /// and hands it to a member's new devices.
    pub(super) fn refresh(&mut self, slot: Slot, app: &mut App, u: usize, ack_all: bool) {
        let mut list = self.list(u);
        // Now and then the server leaves a device out (never the asking
        // one); the next list has it again.
        if self.faults && list.len() > 1 && self.chance(1) {
            let at = self.below(list.len());
            if list[at].0 != self.slots[slot].device || u != self.slots[slot].user {
                list.remove(at);
                self.stats.list_glitches += 1;
            }
        }
        let record = app.records.get_mut(&u).unwrap();
        let changes = record.update_devices(&list, self.clock(slot)).unwrap();
        self.stats.list_refreshes += 1;
        self.stats.relisted += changes.relisted.len() as u64;
        if let Some(local) = changes.local {
            assert_eq!(local, LocalListing::Listed, "the server lists this device");
        }
        self.stats.identity_events += changes.identity_changes.len() as u64;
        let pending: Vec<_> = record
            .devices()
            .filter_map(|d| d.pending_identity.map(|k| (d.device, k)))
            .collect();
        let mut welcome = changes.added.clone();
        for (device, identity) in pending {
            if ack_all || self.chance(70) {
                record.acknowledge_identity(device, &identity).unwrap();
                self.stats.identity_acks += 1;
                welcome.push(device);
            }
        }
        let in_group = app.in_group && self.members.contains(&u);
        if in_group && !(changes.removed.is_empty() && changes.deleted.is_empty()) {
            self.rotate_group(slot, app);
        }
        if in_group {
            for device in welcome {
                self.distribute_to(slot, app, u, device);
            }
        }
    }

    /// Hands the local chain to one device of a member.
    fn distribute_to(&mut self, slot: Slot, app: &mut App, user: usize, device: DeviceId) {
        if !self.ensure_session(slot, app, user, device) {
            return;
        }
        let Some(group) = app.group.as_ref() else {
            return;
        };
        let record = app.records.get_mut(&user).unwrap();
        if let Ok(message) = group.distribute_to(record, device, &mut app.rng) {
            self.emit(slot, app, user, device, message, Expect::Distribution);
        }
    }

    /// The member users of `app`'s group, as indices.
    fn group_users(&self, app: &App) -> Vec<usize> {
        app.group
            .as_ref()
            .map(|g| g.members().map(|id| self.user_index(id)).collect())
            .unwrap_or_default()
    }

    /// A new local chain, handed to every member's devices (after a
    /// member's device left, or on a schedule).
    pub(super) fn rotate_group(&mut self, slot: Slot, app: &mut App) {
        if !app.in_group || app.group.is_none() {
            return;
        }
        let users = self.group_users(app);
        for u in &users {
            self.ensure_sessions(slot, app, *u);
        }
        let App {
            group,
            records,
            device,
            rng,
            ..
        } = app;
        let mut records: Vec<&mut PeerRecord> = records
            .iter_mut()
            .filter(|(u, _)| users.contains(u))
            .map(|(_, r)| r)
            .collect();
        let fanout = group
            .as_mut()
            .unwrap()
            .rotate(device, &mut records, rng)
            .unwrap();
        self.stats.rotations += 1;
        self.emit_fanout(slot, app, fanout);
    }

    /// The local chain, to every device of the members `users`.
    fn distribute(&mut self, slot: Slot, app: &mut App, users: &[usize]) {
        for u in users {
            self.ensure_sessions(slot, app, *u);
        }
        let App {
            group,
            records,
            rng,
            ..
        } = app;
        let Some(group) = group.as_ref() else {
            return;
        };
        let mut records: Vec<&mut PeerRecord> = records
            .iter_mut()
            .filter(|(u, _)| users.contains(u))
            .map(|(_, r)| r)
            .collect();
        let fanout = group.distribute(&mut records, rng).unwrap();
        self.emit_fanout(slot, app, fanout);
    }

    /// Asks device `target` for its chain, unless asked recently.
    pub(super) fn request_distribution(&mut self, slot: Slot, app: &mut App, target: Slot) {
        if app
            .asked
            .get(&target)
            .is_some_and(|t| self.clock(slot).saturating_sub(*t) < ASK_AGAIN)
        {
            return;
        }
        let (u, d) = (self.slots[target].user, self.slots[target].device);
        if !self.ensure_session(slot, app, u, d) {
            return;
        }
        let record = app.records.get_mut(&u).unwrap();
        if let Ok(message) = record.request_distribution(d, &GROUP, &mut app.rng) {
            app.asked.insert(target, self.clock(slot));
            self.emit(slot, app, u, d, message, Expect::DistributionRequest);
        }
    }

    /// A new group session for a member device (installed, or restored
    /// without one): every member added, the chain handed out, the members'
    /// chains asked for.
    pub(super) fn join_group(&mut self, slot: Slot, app: &mut App) {
        let user = self.slots[slot].user;
        let id = self.users[user].id.clone();
        let mut group = GroupSession::new(&mut app.rng, GROUP, id, &app.device).unwrap();
        if app.keystore.group > 0 {
            // It replaces an earlier group in storage: its generations go on
            // from there, so a backup of the earlier one is seen as stale.
            group
                .after_restore(&app.device, app.keystore.group, &mut app.rng)
                .unwrap();
        }
        for m in &self.members {
            group.add_member(self.users[*m].id.clone()).unwrap();
        }
        app.group = Some(group);
        app.in_group = true;
        app.kept_group.clear();
        app.note_generations();
        let users: Vec<usize> = self.members.iter().copied().collect();
        self.distribute(slot, app, &users);
        self.request_all(slot, app);
    }

    /// Asks every other member device for its chain.
    fn request_all(&mut self, slot: Slot, app: &mut App) {
        let targets: Vec<Slot> = self
            .members
            .iter()
            .flat_map(|m| self.users[*m].slots.clone())
            .filter(|s| *s != slot)
            .collect();
        for target in targets {
            self.request_distribution(slot, app, target);
        }
    }

    /// Brings a member device's group to the membership (a device whose
    /// user is not a member does nothing: it was not told).
    pub(super) fn reconcile_group(&mut self, slot: Slot, app: &mut App) {
        let user = self.slots[slot].user;
        if !self.members.contains(&user) {
            return;
        }
        if app.group.is_none() {
            self.join_group(slot, app);
            return;
        }
        if !app.in_group {
            // Rejoined: the same group goes on (its store remembers what it
            // read and dropped), with the membership brought up to date, a
            // new chain, and the members' chains asked for.
            app.in_group = true;
            self.sync_members(slot, app);
            self.rotate_group(slot, app);
            self.request_all(slot, app);
            return;
        }
        self.sync_members(slot, app);
    }

    /// Removes from `app`'s group who left (one call each: their chains go,
    /// the local chain rotates), adds who joined and hands them the chain.
    fn sync_members(&mut self, slot: Slot, app: &mut App) {
        let have: BTreeSet<usize> = self.group_users(app).into_iter().collect();
        for gone in have.difference(&self.members.clone()) {
            let remaining = self.group_users(app);
            for u in &remaining {
                if u != gone {
                    self.ensure_sessions(slot, app, *u);
                }
            }
            let id = self.users[*gone].id.clone();
            let App {
                group,
                records,
                device,
                rng,
                ..
            } = app;
            let mut records: Vec<&mut PeerRecord> = records
                .iter_mut()
                .filter(|(u, _)| remaining.contains(u) && *u != gone)
                .map(|(_, r)| r)
                .collect();
            let fanout = group
                .as_mut()
                .unwrap()
                .remove_member(device, &id, &mut records, rng)
                .unwrap();
            self.emit_fanout(slot, app, fanout);
        }
        let joined: Vec<usize> = self.members.difference(&have).copied().collect();
        for u in &joined {
            let id = self.users[*u].id.clone();
            app.group.as_mut().unwrap().add_member(id).unwrap();
        }
        if !joined.is_empty() {
            self.distribute(slot, app, &joined);
        }
    }

    /// After a stale group was restored (a new chain, no receivers): bring
    /// it to the membership, hand the new chain out, ask for the others.
    pub(super) fn group_restored(&mut self, slot: Slot, app: &mut App) {
        self.reconcile_group(slot, app);
        if app.in_group && self.members.contains(&self.slots[slot].user) {
            let users = self.group_users(app);
            self.distribute(slot, app, &users);
            self.request_all(slot, app);
        }
    }

    /// A device sends to the group: a member, or now and then a removed
    /// member whose group was never told; the message goes to every other
    /// device. Returns its ledger entry.
    pub(super) fn group_send(&mut self) {
        let Some(slot) = self.pick_online() else {
            return;
        };
        self.with_app_lossy(slot, |w, app| {
            w.group_send_from(slot, app);
        });
    }

    pub(super) fn group_send_from(&mut self, slot: Slot, app: &mut App) -> Option<u64> {
        let member = app.in_group && self.members.contains(&self.slots[slot].user);
        if app.group.is_none() || (!member && !self.chance(20)) {
            return None;
        }
        if !member {
            self.stats.outsider_sends += 1;
        }
        let id = self.next_app_id;
        self.next_app_id += 1;
        let mut payload = format!("g{id} from {slot} ").into_bytes();
        payload.resize(payload.len() + self.below(40), b'.');
        let message = app
            .group
            .as_mut()
            .unwrap()
            .encrypt(&payload, &mut app.rng)
            .unwrap();
        let from = self.current(slot);
        self.seq += 1;
        let wire = self.ledger.group_wire(
            from,
            *app.device.identity_key(),
            payload,
            self.members.clone(),
            self.seq,
        );
        self.stats.messages += 1;
        self.stats.group_messages += 1;
        let bytes = message.into_bytes();
        for r in self.alive() {
            if r != slot {
                let to = self.current(r);
                self.post(Envelope {
                    from,
                    to,
                    bytes: bytes.clone(),
                    group: true,
                    wire: Some(wire),
                    ready_at: 0,
                });
            }
        }
        Some(wire)
    }

    /// What an application does now and then: asks the server for every
    /// device list, acknowledges identity changes, expires what is old,
    /// keeps its prekeys stocked, and retries what it kept.
    pub(super) fn housekeeping(&mut self, slot: Slot, app: &mut App, ack_all: bool) {
        for u in 0..self.users.len() {
            self.refresh(slot, app, u, ack_all);
        }
        let now = self.clock(slot);
        for record in app.records.values_mut() {
            let expired = record.expire(now);
            self.stats.expired_devices += expired.devices.len() as u64;
            self.stats.expired_sessions += expired.sessions as u64;
        }
        self.maintain_prekeys(slot, app);
        self.retry_kept(slot, app);
        self.retry_kept_group(slot, app);
    }
}
