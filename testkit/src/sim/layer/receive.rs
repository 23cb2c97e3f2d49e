//! What an application does with a message that arrives: decrypt it
//! through the record of the sender's user, check the outcome against the
//! ledger, and react as SPEC §16.5, §16.6 and §16.8 say.

use sotto::group::{GroupMessage, InsertOutcome};
use sotto::sessions::{
    Action, Content, DeviceId, Failure, Ignore, Received, RetryHint, RetryLater,
};
use sotto::{Error, Message};

use super::app::{App, Kept, MAX_KEPT, Resendable};
use super::ledger::{Reader, check_failure, check_group_failure};
use super::world::World;
use super::{Envelope, Expect, Slot};

/// How many times a kept message is tried again before it is dropped.
const MAX_TRIES: u8 = 6;

/// The local chain's distribution for `device` of `user`, if `app` is in a
/// group.
fn distribute_to(app: &mut App, user: usize, device: DeviceId) -> sotto::Result<Message> {
    let group = app.group.as_ref().ok_or(Error::NotGroupMember)?;
    let record = app.records.get_mut(&user).unwrap();
    group.distribute_to(record, device, &mut app.rng)
}

/// The application id in a payload (`m<id> ...`).
fn app_id(payload: &[u8]) -> Option<u64> {
    let rest = payload.strip_prefix(b"m")?;
    let end = rest.iter().position(|b| *b == b' ')?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

impl World {
    /// `envelope` arrives at `slot` (`tries`: `None` the first time, else
    /// how often it was kept and tried again). Returns whether it
    /// decrypted.
    pub(super) fn receive(
        &mut self,
        slot: Slot,
        app: &mut App,
        envelope: &Envelope,
        tries: Option<u8>,
    ) -> bool {
        let me = self.current(slot);
        let from_slot = envelope.from.slot;
        let (from_user, from_device) = (self.slots[from_slot].user, self.slots[from_slot].device);
        let Ok(message) = Message::from_bytes(&envelope.bytes) else {
            assert!(envelope.wire.is_none(), "an honest message did not parse");
            self.stats.unparsable += 1;
            return false;
        };
        let base = RetryHint::for_message(&message).base_key;
        let sample = self.below(32) == 0;
        let record = app.records.get_mut(&from_user).unwrap();
        let simultaneous = base.is_some()
            && record.device(from_device).is_some_and(|d| {
                d.awaiting_reply && d.active_base_key.is_some() && d.active_base_key != base
            });
        let generations = (record.generation(), app.device.generation());
        let snapshot = sample.then(|| (record.to_bytes(), app.device.to_bytes()));
        match record.decrypt(&mut app.device, from_device, &message, self.clock(slot)) {
            Ok(received) => {
                if simultaneous {
                    let active = record.device(from_device).unwrap().active_base_key;
                    self.stats.simultaneous[usize::from(active != base)] += 1;
                }
                let id = match received.content() {
                    Content::Payload(p) => app_id(p),
                    _ => None,
                };
                if self
                    .ledger
                    .check_decrypt(me, envelope, from_device, &received, id)
                {
                    self.stats.resent_seen += 1;
                }
                self.stats.decrypted += 1;
                if tries.is_some() {
                    self.stats.decrypted_kept += 1;
                }
                self.react(slot, app, envelope, from_user, from_device, &received);
                true
            }
            Err(failure) => {
                assert_eq!(
                    (record.generation(), app.device.generation()),
                    generations,
                    "a failed decrypt moved a generation"
                );
                if let Some((r, d)) = snapshot {
                    assert!(
                        *record.to_bytes() == *r && *app.device.to_bytes() == *d,
                        "a failed decrypt changed the record or the device"
                    );
                }
                check_failure(&failure, &message);
                if envelope.to == me && envelope.wire.is_some_and(|w| !self.ledger.is_decrypted(w))
                {
                    self.stats.honest_failed += 1;
                }
                self.act(slot, app, envelope, &message, failure, tries);
                false
            }
        }
    }

    /// What the application does with what decrypted.
    fn react(
        &mut self,
        slot: Slot,
        app: &mut App,
        envelope: &Envelope,
        from_user: usize,
        from_device: DeviceId,
        received: &Received,
    ) {
        match received.content() {
            Content::Payload(_) => {}
            Content::RetryRequest(hint) => match app.find_sent(envelope.from, hint) {
                Some(Resendable::Payload(bytes)) => {
                    let expect = Expect::Payload(bytes.clone());
                    let sent = self.answer(slot, app, from_user, from_device, expect, |app| {
                        let record = app.records.get_mut(&from_user).unwrap();
                        record.encrypt_to(from_device, &bytes, &mut app.rng)
                    });
                    self.stats.resends += u64::from(sent);
                }
                Some(Resendable::Distribution) => {
                    let sent = self.answer(
                        slot,
                        app,
                        from_user,
                        from_device,
                        Expect::Distribution,
                        |app| distribute_to(app, from_user, from_device),
                    );
                    self.stats.resends += u64::from(sent);
                }
                None => self.stats.retries_unmatched += 1,
            },
            Content::Distribution(_) => {
                let Some(group) = app.group.as_mut() else {
                    self.stats.installs_refused += 1;
                    return;
                };
                match group.install(&app.records[&from_user], received) {
                    Ok(InsertOutcome::Added) => {
                        self.stats.installs_added += 1;
                        self.retry_kept_group(slot, app);
                    }
                    Ok(InsertOutcome::Advanced) => {
                        self.stats.installs_advanced += 1;
                        self.retry_kept_group(slot, app);
                    }
                    Ok(_) => self.stats.installs_unchanged += 1,
                    Err(_) => self.stats.installs_refused += 1,
                }
            }
            Content::DistributionRequest(_) => {
                let member = app
                    .group
                    .as_ref()
                    .is_some_and(|g| g.is_member(&self.users[from_user].id));
                if member {
                    self.answer(
                        slot,
                        app,
                        from_user,
                        from_device,
                        Expect::Distribution,
                        |app| distribute_to(app, from_user, from_device),
                    );
                }
            }
        }
    }

    /// Sends what `make` encrypts for `device` of `user`, answering it. If
    /// the record does not list the device (`UnknownDevice`: a list that
    /// left it out), the application asks the server for the user's devices
    /// and tries once more. Returns whether it sent.
    fn answer(
        &mut self,
        slot: Slot,
        app: &mut App,
        user: usize,
        device: DeviceId,
        expect: Expect,
        make: impl Fn(&mut App) -> sotto::Result<Message>,
    ) -> bool {
        let mut made = make(app);
        if matches!(made, Err(Error::UnknownDevice)) {
            self.refresh(slot, app, user, false);
            made = make(app);
        }
        match made {
            Ok(message) => {
                self.emit(slot, app, user, device, message, expect);
                true
            }
            Err(_) => false,
        }
    }

    /// The application carries out the failure's action (SPEC §16.6).
    fn act(
        &mut self,
        slot: Slot,
        app: &mut App,
        envelope: &Envelope,
        message: &Message,
        failure: Failure,
        tries: Option<u8>,
    ) {
        let from_slot = envelope.from.slot;
        let (from_user, from_device) = (self.slots[from_slot].user, self.slots[from_slot].device);
        match failure.action {
            Action::Ignore(reason) => match reason {
                Ignore::Duplicate => self.stats.ignore_duplicate += 1,
                Ignore::Malformed => self.stats.ignore_malformed += 1,
                Ignore::Downgrade => self.stats.ignore_downgrade += 1,
                Ignore::RecoveryPending => self.stats.ignore_recovery_pending += 1,
                Ignore::WrongLocalDevice => unreachable!("checked"),
            },
            Action::RetryLater(reason) => {
                match reason {
                    RetryLater::UnknownDevice => self.stats.later_unknown_device += 1,
                    RetryLater::IdentityChangePending => self.stats.later_identity_pending += 1,
                    RetryLater::UnknownIdentity => self.stats.later_unknown_identity += 1,
                    RetryLater::MissingDistribution => unreachable!("checked"),
                }
                match tries {
                    // Ask the server for the user's devices, then try again.
                    None => {
                        self.refresh(slot, app, from_user, false);
                        self.receive(slot, app, envelope, Some(0));
                    }
                    Some(t) => self.keep(app, envelope, t, false),
                }
            }
            Action::RequestRetry(hint) => {
                self.stats.request_retry += 1;
                let record = app.records.get_mut(&from_user).unwrap();
                let m = record
                    .request_retry(from_device, &hint, self.clock(slot), &mut app.rng)
                    .unwrap_or_else(|e| panic!("the action allowed a retry request: {e:?}"));
                self.emit(slot, app, from_user, from_device, m, Expect::Retry(hint));
            }
            Action::StartNewSession(hint) => {
                self.stats.start_new_session += 1;
                let Some(bundle) = self.bundle(from_slot) else {
                    self.stats.new_session_no_bundle += 1;
                    return;
                };
                let record = app.records.get_mut(&from_user).unwrap();
                match record.start_new_session(
                    &app.device,
                    from_device,
                    bundle,
                    &hint,
                    self.clock(slot),
                    &mut app.rng,
                ) {
                    Ok(m) => {
                        self.stats.new_sessions += 1;
                        self.emit(slot, app, from_user, from_device, m, Expect::Retry(hint));
                    }
                    // The device was reinstalled: the list tells.
                    Err(Error::IdentityMismatch) => {
                        self.stats.new_session_stale_identity += 1;
                        self.refresh(slot, app, from_user, false);
                    }
                    Err(e) => panic!(
                        "the action allowed a new session: {e:?} ({message:?} from {from_slot})"
                    ),
                }
            }
        }
    }

    fn keep(&mut self, app: &mut App, envelope: &Envelope, tries: u8, group: bool) {
        if tries >= MAX_TRIES {
            self.stats.kept_dropped += 1;
            return;
        }
        let queue = if group {
            &mut app.kept_group
        } else {
            &mut app.kept
        };
        if queue.len() == MAX_KEPT {
            queue.pop_front();
            self.stats.kept_dropped += 1;
        }
        self.stats.kept += 1;
        queue.push_back(Kept {
            envelope: envelope.clone(),
            tries: tries + 1,
        });
    }

    /// Tries every kept pairwise message again.
    pub(super) fn retry_kept(&mut self, slot: Slot, app: &mut App) {
        for kept in std::mem::take(&mut app.kept) {
            self.receive(slot, app, &kept.envelope, Some(kept.tries));
        }
    }

    /// Tries every kept group message again.
    pub(super) fn retry_kept_group(&mut self, slot: Slot, app: &mut App) {
        for kept in std::mem::take(&mut app.kept_group) {
            self.receive_group(slot, app, &kept.envelope, Some(kept.tries));
        }
    }

    /// A group message arrives at `slot`. Returns whether it decrypted.
    pub(super) fn receive_group(
        &mut self,
        slot: Slot,
        app: &mut App,
        envelope: &Envelope,
        tries: Option<u8>,
    ) -> bool {
        let me = self.current(slot);
        let from_user = self.slots[envelope.from.slot].user;
        let (Some(group), Some(record)) = (app.group.as_mut(), app.records.get(&from_user)) else {
            self.stats.group_no_session += 1;
            return false;
        };
        let Ok(message) = GroupMessage::from_bytes(&envelope.bytes) else {
            assert!(
                envelope.wire.is_none(),
                "an honest group message did not parse"
            );
            self.stats.unparsable += 1;
            return false;
        };
        let generation = group.generation();
        match group.decrypt(record, &message) {
            Ok(plaintext) => {
                let user = self.slots[slot].user;
                let born = self.slots[slot].born[me.n];
                let sender = self.slots[envelope.from.slot].user;
                self.ledger.check_group_decrypt(
                    Reader { at: me, user, born },
                    envelope,
                    &plaintext,
                    &self.members,
                    sender,
                );
                self.stats.group_decrypted += 1;
                if tries.is_some() {
                    self.stats.decrypted_kept += 1;
                }
                true
            }
            Err(failure) => {
                assert_eq!(group.generation(), generation, "a failed group decrypt");
                check_group_failure(&failure);
                match failure.action {
                    Action::RetryLater(_) => {
                        self.stats.later_missing_distribution += 1;
                        self.keep(app, envelope, tries.unwrap_or(0), true);
                        let sender = envelope.from.slot;
                        let member = app
                            .group
                            .as_ref()
                            .is_some_and(|g| g.is_member(&self.users[self.slots[sender].user].id));
                        if member && self.slots[sender].app.is_some() {
                            self.request_distribution(slot, app, sender);
                        }
                    }
                    Action::Ignore(Ignore::Duplicate) => self.stats.group_ignore_duplicate += 1,
                    _ => self.stats.group_ignore_malformed += 1,
                }
                false
            }
        }
    }
}
