//! §16.6 failures and recovery: every failed decrypt's action, the rate
//! limits, `request_retry` and `start_new_session`.

use serde_json::{Value, json};

use super::frame::{Hint, KIND_RETRY_REQUEST, frame};
use super::record::{Entry, PeerDevice, Record};
use super::{MAX_RETRY_REQUESTS_PER_INTERVAL, MIN_RECOVERY_INTERVAL, elapsed};
use crate::model::device::Dev;
use crate::model::error::{Refusal, refusal};
use crate::model::keys::Bundle;
use crate::model::rand::Source;

/// The action of a failure (§16.6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Drop the message: `Duplicate`, `Malformed`, `Downgrade`,
    /// `RecoveryPending`, `WrongLocalDevice`.
    Ignore(&'static str),
    /// Keep it: `UnknownDevice`, `IdentityChangePending`, `UnknownIdentity`,
    /// `MissingDistribution`.
    RetryLater(&'static str),
    /// Send a retry request for the hint.
    RequestRetry(Hint),
    /// Start a new session whose first message asks for the hint.
    StartNewSession(Hint),
}

impl Action {
    /// As the vectors spell it.
    pub fn json(&self) -> Value {
        match self {
            Self::Ignore(r) => json!({ "kind": "Ignore", "reason": r }),
            Self::RetryLater(r) => json!({ "kind": "RetryLater", "reason": r }),
            Self::RequestRetry(h) => json!({ "kind": "RequestRetry", "hint": h.json() }),
            Self::StartNewSession(h) => json!({ "kind": "StartNewSession", "hint": h.json() }),
        }
    }
}

/// A failed decrypt: the action and the error that decided it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// What to do.
    pub action: Action,
    /// The deciding error.
    pub error: Refusal,
}

impl Failure {
    /// A failure with an error of no fields.
    pub fn new(action: Action, error: &str) -> Self {
        Self {
            action,
            error: refusal(error),
        }
    }

    /// As the vectors spell a failed step's error: the error with its
    /// action beside its name and fields.
    pub fn refusal(&self) -> Refusal {
        let mut e = self.error.clone();
        e["action"] = self.action.json();
        e
    }
}

/// Where the deciding error came from (§16.6's table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The session that owns the message; whether it is the active one.
    Owner(bool),
    /// The accept of a prekey message.
    Accept,
    /// No session knew a ratchet message's key.
    NoOwner,
}

/// A severity of §16.6.
enum Severity {
    Ignore(&'static str),
    Lost,
    Broken,
}

fn severity(from: Origin, error: &str) -> Severity {
    match from {
        Origin::Owner(_) => match error {
            "DuplicateMessage" | "DuplicatePreKeyMessage" => Severity::Ignore("Duplicate"),
            "AuthenticationFailed" => Severity::Lost,
            "SessionDiverged" | "TooFarAhead" => Severity::Broken,
            _ => Severity::Ignore("Malformed"),
        },
        Origin::Accept => match error {
            "PostQuantumRequired" => Severity::Ignore("Downgrade"),
            "DuplicatePreKeyMessage"
            | "UnknownSignedPreKey"
            | "UnknownOneTimePreKey"
            | "UnknownKemPreKey"
            | "SignedPreKeyExhausted"
            | "AuthenticationFailed"
            | "TooFarAhead" => Severity::Broken,
            _ => Severity::Ignore("Malformed"),
        },
        Origin::NoOwner => match error {
            "InvalidEncoding" | "NonContributoryKey" | "ChainExhausted" => {
                Severity::Ignore("Malformed")
            }
            _ => Severity::Broken,
        },
    }
}

/// The retry window allows a retry request at `now`.
pub fn window_allows(d: &PeerDevice, now: u64) -> bool {
    elapsed(now, d.retry_window) >= MIN_RECOVERY_INTERVAL
        || d.retry_count < MAX_RETRY_REQUESTS_PER_INTERVAL
}

/// The recovery interval allows a new session at `now`.
pub fn interval_allows(d: &PeerDevice, now: u64) -> bool {
    d.last_recovery
        .is_none_or(|t| elapsed(now, t) >= MIN_RECOVERY_INTERVAL)
}

/// §16.6: the failure of a decrypt from `d` at `now`, given the deciding
/// error, where it came from, and the hint of the message. A new session
/// with a stale device is `RetryLater(UnknownDevice)` with the error
/// `UnknownDevice`.
pub fn failure(d: &PeerDevice, now: u64, from: Origin, error: Refusal, hint: Hint) -> Failure {
    let name = error["name"].as_str().unwrap_or("").to_owned();
    let stale = || Failure::new(Action::RetryLater("UnknownDevice"), "UnknownDevice");
    let retry = |h: Hint| {
        if window_allows(d, now) {
            Action::RequestRetry(h)
        } else {
            Action::Ignore("RecoveryPending")
        }
    };
    let new_session = |h: Hint| {
        if !d.listed() {
            None
        } else if interval_allows(d, now) {
            Some(Action::StartNewSession(h))
        } else {
            Some(Action::Ignore("RecoveryPending"))
        }
    };
    let action = match severity(from, &name) {
        Severity::Ignore(r) => Some(Action::Ignore(r)),
        Severity::Lost => {
            if d.active.is_some() {
                Some(retry(hint))
            } else {
                new_session(hint)
            }
        }
        Severity::Broken => match &d.active {
            None => new_session(hint),
            Some(_) if from == Origin::Owner(true) => new_session(hint),
            Some(a) if a.unanswered() => Some(retry(hint)),
            Some(_) => match d.unanswered {
                // The unanswered request may have been lost: while the
                // interval holds a new session back, ask again.
                Some(h) => match new_session(h) {
                    Some(Action::Ignore(_)) => Some(retry(hint)),
                    other => other,
                },
                None => Some(retry(hint)),
            },
        },
    };
    match action {
        Some(action) => Failure { action, error },
        None => stale(),
    }
}

impl Record {
    /// §16.6 `request_retry`.
    ///
    /// # Errors
    ///
    /// `UnknownDevice`, `IdentityChangePending`, `NoSession`,
    /// `RecoveryRateLimited`, then the session's encrypt.
    pub fn request_retry(
        &mut self,
        device: u32,
        hint: &Hint,
        now: u64,
        rng: &mut dyn Source,
    ) -> Result<Vec<u8>, Refusal> {
        let d = self
            .devices
            .get_mut(&device)
            .ok_or_else(|| refusal("UnknownDevice"))?;
        if d.pending.is_some() {
            return Err(refusal("IdentityChangePending"));
        }
        if d.active.is_none() {
            return Err(refusal("NoSession"));
        }
        if !window_allows(d, now) {
            return Err(refusal("RecoveryRateLimited"));
        }
        let active = d.active.as_mut().expect("checked");
        let mut s = active.session.clone();
        let (m, _) = s.encrypt(rng, &frame(KIND_RETRY_REQUEST, &hint.encode()))?;
        active.session = s;
        if elapsed(now, d.retry_window) >= MIN_RECOVERY_INTERVAL {
            d.retry_window = now;
            d.retry_count = 0;
        }
        d.retry_count += 1;
        d.unanswered = d.unanswered.or(Some(*hint));
        self.bump();
        Ok(m)
    }

    /// §16.6 `start_new_session` (the bundle decoded by the caller).
    ///
    /// # Errors
    ///
    /// As `add_bundle`, with `RecoveryRateLimited` after
    /// `IdentityChangePending`; then the session's encrypt.
    pub fn start_new_session(
        &mut self,
        local: &Dev,
        device: u32,
        bundle: &Bundle,
        hint: &Hint,
        now: u64,
        rng: &mut dyn Source,
    ) -> Result<Vec<u8>, Refusal> {
        let d = self.sendable(local, device)?;
        if !interval_allows(d, now) {
            return Err(refusal("RecoveryRateLimited"));
        }
        let mut session = Self::start(d, local, bundle, rng)?;
        let (m, _) = session.encrypt(rng, &frame(KIND_RETRY_REQUEST, &hint.encode()))?;
        let d = self.devices.get_mut(&device).expect("checked");
        if session.pq {
            d.pin();
        }
        d.install(Entry::new(session, now));
        d.last_recovery = Some(now);
        d.unanswered = None;
        self.bump();
        Ok(m)
    }
}
