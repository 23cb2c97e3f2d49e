//! Receiving (SPEC.md §16.5): routing each message to the session it
//! belongs to, promoting the one that decrypts, and the tie-break that makes
//! simultaneous initiation converge.

use super::address::DeviceId;
use super::framing::{self, Frame, Received, RetryHint};
use super::record::{PeerDevice, PeerRecord, SessionEntry, Slot, lost_to};
use super::recovery::{self, Action, Failure, Ignore, RetryLater, Severity};
use crate::device::Device;
use crate::error::Error;
use crate::ratchet::{KeyAgreement, KeyAgreementPolicy, Session};
use crate::sealed;
use crate::wire::{Message, PreKeyMessage};

impl PeerRecord {
    /// Decrypts a message that arrived from device `from` of this record's
    /// user (SPEC §16.5). A prekey message goes to the session with its base
    /// key, or starts a new one if the device is listed (accepted with
    /// `local`, which then changes: persist it before the record); any other message goes to the session
    /// that knows its ratchet key, else is tried on the active session and
    /// then the archived ones, newest first. An archived session that
    /// decrypts becomes active, unless it lost a tie-break to the session
    /// that is active now; a retry request naming the active session makes
    /// the session it came in active. All or nothing: on a failure neither
    /// the record nor `local` changed. Adds 1 to the generation on success.
    ///
    /// # Errors
    ///
    /// A [`Failure`] carrying the one [`Action`](super::Action) to take and
    /// the error that decided it (SPEC §16.6).
    pub fn decrypt(
        &mut self,
        local: &mut Device,
        from: DeviceId,
        message: &Message,
        now: u64,
    ) -> Result<Received, Failure> {
        if let Err(error) = self.check_local(local.identity_key()) {
            return Err(Failure::ignore(Ignore::WrongLocalDevice, error));
        }
        let Some(d) = self.devices.get(&from) else {
            return Err(Failure::later(
                RetryLater::UnknownDevice,
                Error::UnknownDevice,
            ));
        };
        if d.pending.is_some() {
            return Err(Failure::later(
                RetryLater::IdentityChangePending,
                Error::IdentityChangePending,
            ));
        }
        let hint = RetryHint::for_message(message);
        match message {
            Message::PreKey(m) => {
                if m.identity() != &d.identity {
                    return Err(Failure::later(
                        RetryLater::UnknownIdentity,
                        Error::IdentityMismatch,
                    ));
                }
                match d.slot_with_base_key(&m.base_key_bytes()) {
                    Some(slot) => self.decrypt_on(from, slot, message, now).map_err(|e| {
                        let owner = slot == Slot::Active;
                        self.fail(from, recovery::classify_owned(e), owner, hint, e, now)
                    }),
                    // A device off the list is outside the safety number
                    // (§16.9): it may finish what it started, not start anew.
                    None if !d.is_listed() => Err(Failure::later(
                        RetryLater::UnknownDevice,
                        Error::UnknownDevice,
                    )),
                    None => self.accept(local, from, m, hint, now),
                }
            }
            Message::Ratchet(m) => {
                if let Some(slot) = d.slot_with_ratchet_key(&m.ratchet_key_bytes()) {
                    return self.decrypt_on(from, slot, message, now).map_err(|e| {
                        let owner = slot == Slot::Active;
                        self.fail(from, recovery::classify_owned(e), owner, hint, e, now)
                    });
                }
                self.decrypt_unknown_key(from, message, hint, now)
            }
        }
    }

    /// A ratchet message whose key no session knows: each session in turn
    /// tries it as the peer's next chain (SPEC §16.5).
    fn decrypt_unknown_key(
        &mut self,
        from: DeviceId,
        message: &Message,
        hint: RetryHint,
        now: u64,
    ) -> Result<Received, Failure> {
        // The order of §16.5, computed without allocating: active, then
        // archived newest first.
        let (active, archived) = self
            .devices
            .get(&from)
            .map_or((false, 0), |d| (d.active.is_some(), d.archived.len()));
        let slots = active
            .then_some(Slot::Active)
            .into_iter()
            .chain((0..archived).map(Slot::Archived));
        let mut decisive = None;
        let mut first = None;
        for slot in slots {
            match self.decrypt_on(from, slot, message, now) {
                Ok(received) => return Ok(received),
                // It decrypted but its frame is malformed: no other session
                // can do better.
                Err(Error::InvalidEncoding) => {
                    decisive = Some(Error::InvalidEncoding);
                    break;
                }
                Err(e @ (Error::NonContributoryKey | Error::ChainExhausted)) => {
                    decisive = Some(e);
                }
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        let error = decisive.or(first).unwrap_or(Error::NoSession);
        Err(self.fail(
            from,
            recovery::classify_unknown(error),
            false,
            hint,
            error,
            now,
        ))
    }

    /// Decrypts on one session; on success commits the decrypt, the
    /// session's last-decrypt time and its promotion.
    fn decrypt_on(
        &mut self,
        from: DeviceId,
        slot: Slot,
        message: &Message,
        now: u64,
    ) -> Result<Received, Error> {
        let d = self.devices.get_mut(&from).ok_or(Error::UnknownDevice)?;
        let entry = d.slot_mut(slot).ok_or(Error::NoSession)?;
        let (plaintext, frame) = entry.session.decrypt_then(message, |p| framing::parse(p))?;
        entry.last_decrypt = Some(now);
        d.retry_outstanding = None;
        if let Slot::Archived(index) = slot {
            if names_active(d, &frame) {
                // The peer does not have our active session: the one it
                // wrote in wins.
                d.promote(index, true);
            } else if d.archived.get(index).is_some_and(|e| d.may_promote(e)) {
                d.promote(index, false);
            }
        }
        sealed::advance(&mut self.generation);
        Ok(Received::new(from, frame, plaintext))
    }

    /// A prekey message with a base key no session has: accept it and place
    /// the new session (SPEC §16.5).
    fn accept(
        &mut self,
        local: &mut Device,
        from: DeviceId,
        m: &PreKeyMessage,
        hint: RetryHint,
        now: u64,
    ) -> Result<Received, Failure> {
        let Some(d) = self.devices.get(&from) else {
            return Err(Failure::later(
                RetryLater::UnknownDevice,
                Error::UnknownDevice,
            ));
        };
        let policy = if d.pinned || !d.classical_allowed {
            KeyAgreementPolicy::PostQuantumRequired
        } else {
            KeyAgreementPolicy::ClassicalAllowed
        };
        let (session, plaintext, frame) =
            match Session::accept_then(local, m, policy, |p| framing::parse(p)) {
                Ok(accepted) => accepted,
                Err(e) => {
                    return Err(self.fail(from, recovery::classify_accept(e), false, hint, e, now));
                }
            };
        let Some(d) = self.devices.get_mut(&from) else {
            // Checked above; the device cannot have gone.
            return Err(Failure::later(
                RetryLater::UnknownDevice,
                Error::UnknownDevice,
            ));
        };
        let new_base = m.base_key_bytes();
        let pqxdh = session.key_agreement() == KeyAgreement::Pqxdh;
        let mut entry = SessionEntry::new(session, now);
        entry.last_decrypt = Some(now);
        let dead = names_active(d, &frame);
        let active = d
            .active
            .as_ref()
            .map(|a| (a.is_unanswered_initiation(), a.session.base_key_bytes()));
        d.retry_outstanding = None;
        match active {
            Some((true, active_base)) if !dead => {
                // Simultaneous initiation: both sides keep the session with
                // the smaller base key, and the other never becomes active.
                if new_base < active_base {
                    d.activate(entry, true);
                } else {
                    entry.lost_to = lost_to(active_base, &entry, true);
                    d.archive(entry);
                }
            }
            _ => d.activate(entry, dead),
        }
        if pqxdh {
            d.pinned = true;
            d.classical_allowed = false;
        }
        sealed::advance(&mut self.generation);
        Ok(Received::new(from, frame, plaintext))
    }

    /// The failure for `error` of `severity` from device `from`.
    fn fail(
        &self,
        from: DeviceId,
        severity: Severity,
        owned_by_active: bool,
        hint: RetryHint,
        error: Error,
        now: u64,
    ) -> Failure {
        match self.devices.get(&from) {
            Some(d) => match recovery::action(d, severity, owned_by_active, hint, now) {
                // A new session, for a device off the list: what decided
                // is that the device is not listed (§16.6).
                action @ Action::RetryLater(RetryLater::UnknownDevice) => {
                    Failure::new(action, Error::UnknownDevice)
                }
                action => Failure::new(action, error),
            },
            None => Failure::later(RetryLater::UnknownDevice, error),
        }
    }
}

/// Whether `frame` is a retry request naming `d`'s active session: the peer
/// cannot read it.
fn names_active(d: &PeerDevice, frame: &Frame) -> bool {
    match frame {
        Frame::RetryRequest(hint) => d.hint_names_active(hint),
        _ => false,
    }
}
