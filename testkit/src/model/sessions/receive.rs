//! §16.5 receiving: which session a message goes to, the frame check, and
//! where the session that decrypted is placed.

use super::frame::{Content, Hint, parse};
use super::record::{Entry, PeerDevice, Record};
use super::recovery::{Action, Failure, Origin, failure};
use super::send::policy;
use crate::model::device::Dev;
use crate::model::error::{Refusal, refusal};
use crate::model::pqxdh;
use crate::model::session::Sess;
use crate::model::wire::read_message;

/// Which session decrypted.
#[derive(Clone, Copy)]
enum Slot {
    Active,
    Archived(usize),
    New,
}

/// A session's decrypt with the frame check inside (§16.5 step 4): the
/// session after and the content, or the error (the session unchanged).
fn try_session(s: &Sess, msg: &[u8]) -> Result<(Sess, Content), Refusal> {
    let mut next = s.clone();
    let (pt, _, _) = next.decrypt(msg)?;
    let content = parse(&pt, &s.remote)?;
    Ok((next, content))
}

/// §16.5: a retry request names the active session `a`.
fn names(content: &Content, a: &Entry) -> bool {
    match content {
        Content::RetryRequest(h) => match h.base_key {
            Some(b) => b == a.base(),
            None => a
                .session
                .sending
                .as_ref()
                .is_some_and(|s| s.public == h.ratchet_key),
        },
        _ => false,
    }
}

impl Record {
    /// §16.5 `decrypt` of a message that parses (its parse errors come
    /// first and are not failures); the device `from` and the content. On
    /// a failure neither the record nor `local` changed.
    ///
    /// # Errors
    ///
    /// The failure of §16.6.
    pub fn decrypt(
        &mut self,
        local: &mut Dev,
        from: u32,
        msg: &[u8],
        now: u64,
    ) -> Result<Content, Failure> {
        // Step 1.
        if local.ik != self.local_identity {
            return Err(Failure::new(
                Action::Ignore("WrongLocalDevice"),
                "IdentityMismatch",
            ));
        }
        let Some(d) = self.devices.get(&from) else {
            return Err(Failure::new(
                Action::RetryLater("UnknownDevice"),
                "UnknownDevice",
            ));
        };
        if d.pending.is_some() {
            return Err(Failure::new(
                Action::RetryLater("IdentityChangePending"),
                "IdentityChangePending",
            ));
        }
        let (m, _) = read_message(msg).expect("the caller parsed the message");
        let hint = Hint::of(&m);
        let fail = |origin, e| failure(d, now, origin, e, hint);
        let sessions: Vec<(Slot, &Entry)> = d
            .active
            .iter()
            .map(|e| (Slot::Active, e))
            .chain(
                d.archived
                    .iter()
                    .enumerate()
                    .map(|(i, e)| (Slot::Archived(i), e)),
            )
            .collect();
        let mut device = local.clone();
        let (slot, session, content) = if let Some(p) = &m.prekey {
            // Step 2.
            if p.identity != d.identity {
                return Err(Failure::new(
                    Action::RetryLater("UnknownIdentity"),
                    "IdentityMismatch",
                ));
            }
            if let Some((slot, e)) = sessions.into_iter().find(|(_, e)| e.base() == p.base_key) {
                let origin = Origin::Owner(matches!(slot, Slot::Active));
                let (s, c) = try_session(&e.session, msg).map_err(|err| fail(origin, err))?;
                (slot, s, c)
            } else if !d.listed() {
                // A stale device may not start a session.
                return Err(Failure::new(
                    Action::RetryLater("UnknownDevice"),
                    "UnknownDevice",
                ));
            } else {
                let (s, pt, _, _) = pqxdh::accept(&mut device, msg, policy(d))
                    .map_err(|err| fail(Origin::Accept, err))?;
                let c = parse(&pt, &s.remote).map_err(|err| fail(Origin::Accept, err))?;
                (Slot::New, s, c)
            }
        } else {
            // Step 3.
            let k = m.header.ratchet_key;
            if let Some((slot, e)) = sessions.iter().find(|(_, e)| e.session.recv.knows(&k)) {
                let origin = Origin::Owner(matches!(slot, Slot::Active));
                let (s, c) = try_session(&e.session, msg).map_err(|err| fail(origin, err))?;
                (*slot, s, c)
            } else {
                let mut errors: Vec<Refusal> = Vec::new();
                let mut found = None;
                for (slot, e) in sessions {
                    match try_session(&e.session, msg) {
                        Ok((s, c)) => {
                            found = Some((slot, s, c));
                            break;
                        }
                        Err(err) if err["name"] == "InvalidEncoding" => {
                            return Err(fail(Origin::NoOwner, err));
                        }
                        Err(err) => errors.push(err),
                    }
                }
                match found {
                    Some(x) => x,
                    None => {
                        let err = errors
                            .iter()
                            .find(|e| {
                                e["name"] == "NonContributoryKey" || e["name"] == "ChainExhausted"
                            })
                            .or(errors.first())
                            .cloned()
                            .unwrap_or_else(|| refusal("NoSession"));
                        return Err(fail(Origin::NoOwner, err));
                    }
                }
            }
        };
        // Step 5.
        let mut next = self.clone();
        let d = next.devices.get_mut(&from).expect("held");
        d.unanswered = None;
        place(d, slot, session, &content, now);
        next.bump();
        *self = next;
        *local = device;
        Ok(content)
    }
}

/// §16.5 "Marks": `loser` is marked as having lost to `winner` only if the
/// winner's base key is smaller; otherwise it carries no mark.
fn mark(loser: &mut Entry, winner: &[u8; 32]) {
    loser.lost_to = (*winner < loser.base()).then_some(*winner);
}

/// §16.5 step 5's placement of the session that decrypted.
fn place(d: &mut PeerDevice, slot: Slot, session: Sess, content: &Content, now: u64) {
    match slot {
        Slot::Active => {
            let a = d.active.as_mut().expect("active");
            a.session = session;
            a.last_decrypt = Some(now);
        }
        Slot::Archived(i) => {
            let mut x = d.archived.remove(i);
            x.session = session;
            x.last_decrypt = Some(now);
            match d.active.take() {
                None => {
                    x.lost_to = None;
                    d.active = Some(x);
                }
                Some(mut a) if names(content, &a) => {
                    mark(&mut a, &x.base());
                    x.lost_to = None;
                    d.active = Some(x);
                    d.archive(a);
                }
                Some(a) if x.lost_to == Some(a.base()) => {
                    // It lost to the active session: nothing moves.
                    d.archived.insert(i, x);
                    d.active = Some(a);
                }
                Some(mut a) => {
                    a.lost_to = None;
                    x.lost_to = None;
                    d.active = Some(x);
                    d.archive(a);
                }
            }
        }
        Slot::New => {
            let pq = session.pq;
            let mut n = Entry::new(session, now);
            n.last_decrypt = Some(now);
            match d.active.take() {
                None => d.active = Some(n),
                Some(mut a) if a.unanswered() && !names(content, &a) => {
                    // Simultaneous initiation: the smaller base key wins.
                    if n.base() < a.base() {
                        mark(&mut a, &n.base());
                        d.active = Some(n);
                        d.archive(a);
                    } else {
                        mark(&mut n, &a.base());
                        d.active = Some(a);
                        d.archive(n);
                    }
                }
                Some(mut a) => {
                    a.lost_to = None;
                    if names(content, &a) {
                        mark(&mut a, &n.base());
                    }
                    d.active = Some(n);
                    d.archive(a);
                }
            }
            if pq {
                d.pin();
            }
        }
    }
}
