//! Sending (SPEC.md §16.3): which devices need a bundle, starting sessions
//! from bundles, and one message per device with every random byte drawn
//! before any session changes.

use alloc::vec::Vec;
use core::fmt;

use rand_core::{TryCryptoRng, TryRng};
use zeroize::Zeroize;

use super::address::DeviceId;
use super::framing::KIND_PAYLOAD;
use super::record::{PeerDevice, PeerRecord, SessionEntry};
use super::{MAX_PAYLOAD_LEN, MAX_UNANSWERED_SESSION_AGE, passed};
use crate::crypto;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::keys::{PreKeyBundle, VerifiedPreKeyBundle};
use crate::ratchet::{KeyAgreement, KeyAgreementPolicy, Session};
use crate::sealed;
use crate::wire::Message;

/// Bytes drawn per device by a fan-out encrypt: a possible new ratchet
/// secret, then the salt (SPEC §16.3).
pub(crate) const FANOUT_DRAW_LEN: usize = 48;

/// Which devices can be sent to now (SPEC §16.3).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
#[non_exhaustive]
pub struct SendPlan {
    /// Listed devices with a usable active session.
    pub ready: Vec<DeviceId>,
    /// Listed devices that need a bundle: no active session, or one we
    /// started that got no reply for [`MAX_UNANSWERED_SESSION_AGE`]. Fetch
    /// each device's bundle and give it to [`PeerRecord::add_bundle`].
    pub needs_bundle: Vec<DeviceId>,
    /// Listed devices with a pending identity change: acknowledge it first.
    pub blocked: Vec<DeviceId>,
}

/// One message for one device.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct Outgoing {
    /// The device to deliver it to.
    pub device: DeviceId,
    /// The message.
    pub message: Message,
}

/// A listed device that got no message, and why.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct Unusable {
    /// The device.
    pub device: DeviceId,
    /// [`Error::NoSession`] (fetch a bundle), [`Error::IdentityChangePending`]
    /// (acknowledge the change), or the session's encrypt error
    /// ([`Error::ChainExhausted`], [`Error::NonContributoryKey`]: fetch a
    /// bundle and start a new session).
    pub error: Error,
}

/// What an encrypt to every device returned (SPEC §16.3).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
#[non_exhaustive]
pub struct Sent {
    /// One message per device that has a usable session, in device order.
    pub messages: Vec<Outgoing>,
    /// The listed devices that got none.
    pub unusable: Vec<Unusable>,
}

impl PeerRecord {
    /// Which listed devices are ready, which need a bundle fetched, and which
    /// are blocked by a pending identity change (SPEC §16.3). Changes
    /// nothing.
    pub fn plan_send(&self, now: u64) -> SendPlan {
        let mut plan = SendPlan::default();
        for (id, d) in self.devices.iter().filter(|(_, d)| d.is_listed()) {
            if d.pending.is_some() {
                plan.blocked.push(*id);
            } else if needs_bundle(d, now) {
                plan.needs_bundle.push(*id);
            } else {
                plan.ready.push(*id);
            }
        }
        plan
    }

    /// Starts a session with `device` from its `bundle` and makes it the
    /// active session (the previous one is archived) (SPEC §16.3). The
    /// bundle must be the device's, under its trusted identity; PQXDH is
    /// required unless the bundle has no KEM prekey, the device is not
    /// pinned and the application allowed classical key agreement for it. A
    /// bundle with a KEM prekey pins the device. Draws as
    /// [`Session::initiate_with_policy`]; `local` does not change. Adds 1 to
    /// the generation.
    ///
    /// # Errors
    ///
    /// In this order: [`Error::IdentityMismatch`] if `local` is not this
    /// record's device; [`Error::UnknownDevice`] if the record does not hold
    /// `device` or it is stale; [`Error::IdentityChangePending`];
    /// [`Error::IdentityMismatch`] if the bundle is under another identity;
    /// [`Error::InvalidSignature`] if it does not verify;
    /// [`Error::PostQuantumRequired`]; then the errors of
    /// [`Session::initiate_with_policy`].
    pub fn add_bundle<R: TryCryptoRng + ?Sized>(
        &mut self,
        local: &Device,
        device: DeviceId,
        bundle: PreKeyBundle,
        now: u64,
        rng: &mut R,
    ) -> Result<()> {
        let session = self.initiate(local, device, bundle, rng)?;
        self.install_initiated(device, session, now);
        Ok(())
    }

    /// Checks and starts a session with `device` from `bundle`, changing
    /// nothing (`add_bundle` and `start_new_session` commit it).
    pub(crate) fn initiate<R: TryCryptoRng + ?Sized>(
        &mut self,
        local: &Device,
        device: DeviceId,
        bundle: PreKeyBundle,
        rng: &mut R,
    ) -> Result<Session> {
        self.check_local(local.identity_key())?;
        let d = self.sendable(device)?;
        let verified = bundle.verify_for(&d.identity)?;
        let policy = policy(d, &verified)?;
        Session::initiate_with_policy(local, rng, &verified, policy)
    }

    /// Commits a session started by [`PeerRecord::initiate`].
    pub(crate) fn install_initiated(&mut self, device: DeviceId, session: Session, now: u64) {
        if let Some(d) = self.devices.get_mut(&device) {
            if session.key_agreement() == KeyAgreement::Pqxdh {
                d.pinned = true;
                d.classical_allowed = false;
            }
            d.activate(SessionEntry::new(session, now), false);
            sealed::advance(&mut self.generation);
        }
    }

    /// Encrypts `payload` once for every listed device that has an active
    /// session and no pending identity change, in device order (SPEC
    /// §16.3). First draws 48 bytes per such device, in device order (32
    /// for a new ratchet key, used only if that session starts a sending
    /// chain, then 16 of salt), so that a failing RNG changes nothing. A
    /// device whose session cannot encrypt is reported with its error and
    /// gets no message; so is every listed device without a session or
    /// with a pending identity change. Adds 1 to the generation if any
    /// message was made.
    ///
    /// # Errors
    ///
    /// [`Error::PlaintextTooLarge`] for a payload over
    /// [`MAX_PAYLOAD_LEN`]; [`Error::RandomnessUnavailable`] if `rng`
    /// fails.
    pub fn encrypt<R: TryCryptoRng + ?Sized>(
        &mut self,
        payload: &[u8],
        rng: &mut R,
    ) -> Result<Sent> {
        self.fan_out(KIND_PAYLOAD, payload, rng)
    }

    /// Encrypts `payload` for `device` alone (a resend answering a retry
    /// request, or a message meant for one device) (SPEC §16.3). Draws as
    /// [`Session::encrypt`]. Adds 1 to the generation.
    ///
    /// # Errors
    ///
    /// In this order: [`Error::PlaintextTooLarge`];
    /// [`Error::UnknownDevice`] if the record does not hold `device` or it is
    /// stale; [`Error::IdentityChangePending`]; [`Error::NoSession`] if it
    /// has no active session; then the errors of [`Session::encrypt`].
    pub fn encrypt_to<R: TryCryptoRng + ?Sized>(
        &mut self,
        device: DeviceId,
        payload: &[u8],
        rng: &mut R,
    ) -> Result<Message> {
        self.encrypt_one(device, KIND_PAYLOAD, payload, rng)
    }

    /// One framed message for one device, drawing directly from `rng`.
    pub(crate) fn encrypt_one<R: TryCryptoRng + ?Sized>(
        &mut self,
        device: DeviceId,
        kind: u8,
        body: &[u8],
        rng: &mut R,
    ) -> Result<Message> {
        if body.len() > MAX_PAYLOAD_LEN {
            return Err(Error::PlaintextTooLarge);
        }
        let d = self.sendable(device)?;
        let entry = d.active.as_mut().ok_or(Error::NoSession)?;
        let message = entry.session.encrypt_framed(rng, kind, body)?;
        sealed::advance(&mut self.generation);
        Ok(message)
    }

    /// The fan-out of [`PeerRecord::encrypt`], for any kind of frame.
    pub(crate) fn fan_out<R: TryCryptoRng + ?Sized>(
        &mut self,
        kind: u8,
        body: &[u8],
        rng: &mut R,
    ) -> Result<Sent> {
        if body.len() > MAX_PAYLOAD_LEN {
            return Err(Error::PlaintextTooLarge);
        }
        let mut draws = self.draw_fan_out(rng)?;
        Ok(self.fan_out_drawn(kind, body, &mut draws))
    }

    /// How many devices a fan-out encrypts for.
    pub(crate) fn fan_out_count(&self) -> usize {
        self.devices
            .values()
            .filter(|d| d.is_listed() && d.pending.is_none() && d.active.is_some())
            .count()
    }

    /// Draws the randomness of a fan-out (SPEC §16.3): 48 bytes per device
    /// it encrypts for, in device order.
    pub(crate) fn draw_fan_out<R: TryCryptoRng + ?Sized>(
        &self,
        rng: &mut R,
    ) -> Result<Vec<PreDrawn>> {
        let count = self.fan_out_count();
        let mut draws = Vec::with_capacity(count);
        for _ in 0..count {
            draws.push(PreDrawn::draw(rng)?);
        }
        Ok(draws)
    }

    /// Encrypts with randomness drawn by [`PeerRecord::draw_fan_out`]; can
    /// fail only per device.
    pub(crate) fn fan_out_drawn(&mut self, kind: u8, body: &[u8], draws: &mut [PreDrawn]) -> Sent {
        let mut sent = Sent::default();
        let mut draws = draws.iter_mut();
        for (id, d) in self.devices.iter_mut().filter(|(_, d)| d.is_listed()) {
            let unusable = |error| Unusable { device: *id, error };
            if d.pending.is_some() {
                sent.unusable.push(unusable(Error::IdentityChangePending));
                continue;
            }
            let Some(entry) = d.active.as_mut() else {
                sent.unusable.push(unusable(Error::NoSession));
                continue;
            };
            let Some(drawn) = draws.next() else {
                // Drawn for exactly these devices; cannot happen.
                sent.unusable.push(unusable(Error::RandomnessUnavailable));
                continue;
            };
            match entry.session.encrypt_framed(drawn, kind, body) {
                Ok(message) => sent.messages.push(Outgoing {
                    device: *id,
                    message,
                }),
                Err(error) => sent.unusable.push(unusable(error)),
            }
        }
        if !sent.messages.is_empty() {
            sealed::advance(&mut self.generation);
        }
        sent
    }
}

/// Whether a listed device without a pending change needs a bundle.
fn needs_bundle(d: &PeerDevice, now: u64) -> bool {
    match &d.active {
        None => true,
        Some(e) => {
            e.is_unanswered_initiation() && passed(e.created, now, MAX_UNANSWERED_SESSION_AGE)
        }
    }
}

/// The key-agreement policy for a bundle of device `d` (SPEC §16.4).
fn policy(d: &PeerDevice, bundle: &VerifiedPreKeyBundle) -> Result<KeyAgreementPolicy> {
    if bundle.bundle().kem_prekey().is_some() {
        return Ok(KeyAgreementPolicy::PostQuantumRequired);
    }
    if d.pinned || !d.classical_allowed {
        return Err(Error::PostQuantumRequired);
    }
    Ok(KeyAgreementPolicy::ClassicalAllowed)
}

/// The 48 bytes one device's encrypt may use, drawn before anything changes:
/// a 32-byte draw gets the ratchet secret, a 16-byte draw the salt, each
/// once; anything else fails (a session never asks for more).
pub(crate) struct PreDrawn {
    bytes: [u8; FANOUT_DRAW_LEN],
    ratchet_used: bool,
    salt_used: bool,
}

impl PreDrawn {
    pub(crate) fn draw<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<Self> {
        let mut bytes = [0u8; FANOUT_DRAW_LEN];
        crypto::draw(rng, &mut bytes)?;
        Ok(Self {
            bytes,
            ratchet_used: false,
            salt_used: false,
        })
    }
}

impl Drop for PreDrawn {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

/// A session asked for bytes a fan-out did not draw.
#[derive(Debug)]
pub(crate) struct NotDrawn;

impl fmt::Display for NotDrawn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("randomness not drawn in advance")
    }
}

impl core::error::Error for NotDrawn {}

impl TryRng for PreDrawn {
    type Error = NotDrawn;

    fn try_next_u32(&mut self) -> Result<u32, NotDrawn> {
        Err(NotDrawn)
    }

    fn try_next_u64(&mut self) -> Result<u64, NotDrawn> {
        Err(NotDrawn)
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), NotDrawn> {
        let (ratchet, salt) = self.bytes.split_at(32);
        let source = match dst.len() {
            32 if !self.ratchet_used => {
                self.ratchet_used = true;
                ratchet
            }
            16 if !self.salt_used => {
                self.salt_used = true;
                salt
            }
            _ => return Err(NotDrawn),
        };
        dst.copy_from_slice(source);
        Ok(())
    }
}

impl TryCryptoRng for PreDrawn {}
