//! Failures and recovery (SPEC.md §16.6): every failure maps to one action,
//! retry requests and new sessions answer the ones that need it, and rate
//! limits keep forged messages from costing more than a bounded amount.

use core::fmt;

use rand_core::TryCryptoRng;

use super::address::DeviceId;
use super::framing::{KIND_RETRY_REQUEST, RetryHint, retry_body};
use super::record::{PeerDevice, PeerRecord};
use super::{MAX_RETRY_REQUESTS_PER_INTERVAL, MIN_RECOVERY_INTERVAL, passed};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::keys::PreKeyBundle;
use crate::sealed;
use crate::wire::Message;

/// What to do about a message that did not decrypt (SPEC §16.6).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Action {
    /// Drop the message.
    Ignore(Ignore),
    /// Keep the message and give it again after the named step.
    RetryLater(RetryLater),
    /// The sessions still work but this message is lost: call
    /// [`PeerRecord::request_retry`] with this hint and send what it returns.
    RequestRetry(RetryHint),
    /// The peer uses a session this device does not have, or one that can no
    /// longer work: fetch the device's bundle, call
    /// [`PeerRecord::start_new_session`] with this hint and send what it
    /// returns.
    StartNewSession(RetryHint),
}

/// Why a message is dropped.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Ignore {
    /// Decrypted before (or its key is gone).
    Duplicate,
    /// Nothing an honest peer sends: a malformed frame, an impossible
    /// header, a low-order key; or a group message whose chain the given
    /// record does not vouch for (its owner is no device's trusted identity
    /// there, or the user is not a member).
    Malformed,
    /// A classical prekey message from a device pinned to post-quantum key
    /// agreement: a downgrade attempt.
    Downgrade,
    /// A recovery would help, but one was made for this device too recently
    /// (SPEC §16.6 rate limits).
    RecoveryPending,
    /// The local device given is not this record's (for a group message:
    /// the record given is not the local device's).
    WrongLocalDevice,
}

/// Why a message is kept for later.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RetryLater {
    /// The record does not hold the sending device, or holds it only as
    /// stale (no longer listed) and the message would start a new session,
    /// or the recovery needs a new session with a stale device: refresh the
    /// device list.
    UnknownDevice,
    /// The device (for a group message, the device owning the chain) has a
    /// pending identity change: acknowledge it first.
    IdentityChangePending,
    /// A prekey message under an identity that is neither the device's
    /// trusted one nor its pending one: refresh the device list, which will
    /// report the change.
    UnknownIdentity,
    /// A group message whose chain this member does not hold yet: install
    /// the sender's distribution first.
    MissingDistribution,
}

/// A message that did not decrypt: the action to take and the error that
/// decided it. Nothing changed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct Failure {
    /// What to do.
    pub action: Action,
    /// The error that decided the action.
    pub error: Error,
}

impl Failure {
    pub(crate) fn new(action: Action, error: Error) -> Self {
        Self { action, error }
    }

    pub(crate) fn ignore(reason: Ignore, error: Error) -> Self {
        Self::new(Action::Ignore(reason), error)
    }

    pub(crate) fn later(reason: RetryLater, error: Error) -> Self {
        Self::new(Action::RetryLater(reason), error)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} ({})", self.action, self.error)
    }
}

impl core::error::Error for Failure {}

impl From<Failure> for Error {
    fn from(failure: Failure) -> Self {
        failure.error
    }
}

/// How serious a failure is, before the rate limits (SPEC §16.6 table).
pub(crate) enum Severity {
    Ignore(Ignore),
    /// The session still works; only this message is lost.
    Lost,
    /// The peer uses a session we cannot follow.
    Broken,
}

/// The severity of an error from the session that owns the message (it
/// knows the message's ratchet key, or has its base key).
pub(crate) fn classify_owned(error: Error) -> Severity {
    match error {
        Error::DuplicateMessage | Error::DuplicatePreKeyMessage => {
            Severity::Ignore(Ignore::Duplicate)
        }
        Error::AuthenticationFailed => Severity::Lost,
        Error::SessionDiverged | Error::TooFarAhead { .. } => Severity::Broken,
        _ => Severity::Ignore(Ignore::Malformed),
    }
}

/// The severity of an error from accepting a prekey message no session has.
/// A base key the device already accepted, with no session holding it any
/// more (deleted after a restore, evicted, expired), is a session the peer
/// may still use and we cannot: as broken as an unknown prekey.
pub(crate) fn classify_accept(error: Error) -> Severity {
    match error {
        Error::PostQuantumRequired => Severity::Ignore(Ignore::Downgrade),
        Error::DuplicatePreKeyMessage
        | Error::UnknownSignedPreKey { .. }
        | Error::UnknownOneTimePreKey { .. }
        | Error::UnknownKemPreKey { .. }
        | Error::SignedPreKeyExhausted { .. }
        | Error::AuthenticationFailed
        | Error::TooFarAhead { .. } => Severity::Broken,
        _ => Severity::Ignore(Ignore::Malformed),
    }
}

/// The severity when no session knows the message's ratchet key and none
/// decrypted it as the peer's next chain.
pub(crate) fn classify_unknown(error: Error) -> Severity {
    match error {
        Error::NonContributoryKey | Error::ChainExhausted | Error::InvalidEncoding => {
            Severity::Ignore(Ignore::Malformed)
        }
        _ => Severity::Broken,
    }
}

/// The action for a failure of `severity` on device `d`, after the rate
/// limits (SPEC §16.6). `owned_by_active`: the active session itself refused
/// the message on a chain it knows.
pub(crate) fn action(
    d: &PeerDevice,
    severity: Severity,
    owned_by_active: bool,
    hint: RetryHint,
    now: u64,
) -> Action {
    let retry = || {
        if retry_allowed(d, now) {
            Action::RequestRetry(hint)
        } else {
            Action::Ignore(Ignore::RecoveryPending)
        }
    };
    let new_session = || {
        if !d.is_listed() {
            // No session can be started with a device off the list
            // (§16.3): ask the server again, and keep the message for when
            // the device is listed again.
            Action::RetryLater(RetryLater::UnknownDevice)
        } else if recovery_allowed(d, now) {
            Action::StartNewSession(hint)
        } else {
            Action::Ignore(Ignore::RecoveryPending)
        }
    };
    match severity {
        Severity::Ignore(reason) => Action::Ignore(reason),
        // A retry request needs a session to travel in.
        Severity::Lost if d.active.is_some() => retry(),
        Severity::Lost => new_session(),
        Severity::Broken => match &d.active {
            None => new_session(),
            // The active session itself cannot follow the peer.
            Some(_) if owned_by_active => new_session(),
            // Our new session has not reached the peer yet: it is the fix,
            // and the retry request travels in it.
            Some(e) if e.is_unanswered_initiation() => retry(),
            // We asked over the active session and nothing came back: a new
            // session, or, while the interval holds one back, ask again (the
            // request may have been lost).
            Some(_) if d.retry_outstanding.is_some() => {
                let first = d.retry_outstanding.unwrap_or(hint);
                if !d.is_listed() {
                    Action::RetryLater(RetryLater::UnknownDevice)
                } else if recovery_allowed(d, now) {
                    Action::StartNewSession(first)
                } else {
                    retry()
                }
            }
            // The peer writes on a session we do not have; ask over ours,
            // which it can read (and will switch to, §16.5).
            Some(_) => retry(),
        },
    }
}

/// Whether a retry request may be sent to `d` at `now`.
fn retry_allowed(d: &PeerDevice, now: u64) -> bool {
    window_expired(d, now) || d.retry_count < MAX_RETRY_REQUESTS_PER_INTERVAL
}

fn window_expired(d: &PeerDevice, now: u64) -> bool {
    passed(d.retry_window, now, MIN_RECOVERY_INTERVAL)
}

/// Whether a new session may be started for recovery with `d` at `now`.
fn recovery_allowed(d: &PeerDevice, now: u64) -> bool {
    d.last_recovery
        .is_none_or(|t| passed(t, now, MIN_RECOVERY_INTERVAL))
}

impl PeerRecord {
    /// Sends a retry request for the message `hint` names to `device`, over
    /// its active session (SPEC §16.6): the answer to
    /// [`Action::RequestRetry`]. At most
    /// [`MAX_RETRY_REQUESTS_PER_INTERVAL`] per device in each
    /// [`MIN_RECOVERY_INTERVAL`]. Draws as [`Session::encrypt`](crate::Session::encrypt).
    /// Adds 1 to the generation.
    ///
    /// # Errors
    ///
    /// In this order: [`Error::UnknownDevice`] if the record does not hold
    /// `device`; [`Error::IdentityChangePending`]; [`Error::NoSession`];
    /// [`Error::RecoveryRateLimited`]; then the errors of
    /// [`Session::encrypt`](crate::Session::encrypt).
    pub fn request_retry<R: TryCryptoRng + ?Sized>(
        &mut self,
        device: DeviceId,
        hint: &RetryHint,
        now: u64,
        rng: &mut R,
    ) -> Result<Message> {
        let d = self.devices.get_mut(&device).ok_or(Error::UnknownDevice)?;
        if d.pending.is_some() {
            return Err(Error::IdentityChangePending);
        }
        let entry = d.active.as_mut().ok_or(Error::NoSession)?;
        let expired = passed(d.retry_window, now, MIN_RECOVERY_INTERVAL);
        if !expired && d.retry_count >= MAX_RETRY_REQUESTS_PER_INTERVAL {
            return Err(Error::RecoveryRateLimited);
        }
        let message = entry
            .session
            .encrypt_framed(rng, KIND_RETRY_REQUEST, &retry_body(hint))?;
        if expired {
            d.retry_window = now;
            d.retry_count = 0;
        }
        d.retry_count = d.retry_count.saturating_add(1);
        if d.retry_outstanding.is_none() {
            d.retry_outstanding = Some(*hint);
        }
        sealed::advance(&mut self.generation);
        Ok(message)
    }

    /// Starts a new session with `device` from its `bundle`, whose first
    /// message is a retry request for the message `hint` names (SPEC
    /// §16.6): the answer to [`Action::StartNewSession`]. The new session
    /// becomes active; the old ones stay archived and keep decrypting. At
    /// most one per device in each [`MIN_RECOVERY_INTERVAL`]. Draws as
    /// [`PeerRecord::add_bundle`], then as
    /// [`Session::encrypt`](crate::Session::encrypt). Adds 1 to the
    /// generation.
    ///
    /// # Errors
    ///
    /// As [`PeerRecord::add_bundle`], with [`Error::RecoveryRateLimited`]
    /// checked after [`Error::IdentityChangePending`]; then the errors of
    /// [`Session::encrypt`](crate::Session::encrypt).
    pub fn start_new_session<R: TryCryptoRng + ?Sized>(
        &mut self,
        local: &Device,
        device: DeviceId,
        bundle: PreKeyBundle,
        hint: &RetryHint,
        now: u64,
        rng: &mut R,
    ) -> Result<Message> {
        self.check_local(local.identity_key())?;
        let d = self.sendable(device)?;
        if !recovery_allowed(d, now) {
            return Err(Error::RecoveryRateLimited);
        }
        let mut session = self.initiate(local, device, bundle, rng)?;
        let message = session.encrypt_framed(rng, KIND_RETRY_REQUEST, &retry_body(hint))?;
        self.install_initiated(device, session, now);
        if let Some(d) = self.devices.get_mut(&device) {
            d.last_recovery = Some(now);
            d.retry_outstanding = None;
        }
        Ok(message)
    }
}
