//! §16.3 sending and §16.4 the key-agreement policy of a device.

use serde_json::{Value, json};

use super::frame::{KIND_PAYLOAD, frame};
use super::record::{Entry, PeerDevice, Record};
use super::{FANOUT_DRAW, MAX_PAYLOAD_LEN, MAX_UNANSWERED_SESSION_AGE, elapsed};
use crate::hex::hex;
use crate::model::device::Dev;
use crate::model::error::{Refusal, refusal};
use crate::model::keys::Bundle;
use crate::model::pqxdh::{self, Policy};
use crate::model::rand::Source;

/// `plan_send`'s sorting of the listed devices.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Usable now.
    pub ready: Vec<u32>,
    /// A bundle must be fetched.
    pub needs_bundle: Vec<u32>,
    /// A pending identity.
    pub blocked: Vec<u32>,
}

impl Plan {
    /// As the vectors spell it.
    pub fn json(&self) -> Value {
        json!({ "ready": self.ready, "needs_bundle": self.needs_bundle, "blocked": self.blocked })
    }
}

/// A fan-out: one message per device, and the listed devices that got none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sent {
    /// (device, message), in device order.
    pub messages: Vec<(u32, Vec<u8>)>,
    /// (device, error), in device order.
    pub unusable: Vec<(u32, Refusal)>,
}

impl Sent {
    /// As the vectors spell it.
    pub fn json(&self) -> Value {
        json!({
            "messages": self.messages.iter().map(|(d, m)| json!({ "device_id": d, "message": hex(m) })).collect::<Vec<_>>(),
            "unusable": self.unusable.iter().map(|(d, e)| json!({ "device_id": d, "error": e })).collect::<Vec<_>>(),
        })
    }
}

/// One device's 48 bytes of a fan-out as a session's randomness: a 32-byte
/// draw takes bytes 0..32, a 16-byte draw bytes 32..48.
struct FanoutBytes([u8; FANOUT_DRAW]);

impl Source for FanoutBytes {
    fn fill(&mut self, out: &mut [u8]) {
        match out.len() {
            32 => out.copy_from_slice(&self.0[..32]),
            16 => out.copy_from_slice(&self.0[32..]),
            n => panic!("a session draws 32 or 16 bytes, not {n}"),
        }
    }
}

/// §16.3: an active session of ours with no reply for
/// `MAX_UNANSWERED_SESSION_AGE` asks for a new bundle.
fn needs_bundle(d: &PeerDevice, now: u64) -> bool {
    d.active
        .as_ref()
        .is_none_or(|a| a.unanswered() && elapsed(now, a.created) >= MAX_UNANSWERED_SESSION_AGE)
}

/// §16.4: the policy of a key agreement with the device.
pub fn policy(d: &PeerDevice) -> Policy {
    if d.classical && !d.pinned {
        Policy::ClassicalAllowed
    } else {
        Policy::PostQuantumRequired
    }
}

impl Record {
    /// §16.3 `plan_send`.
    pub fn plan_send(&self, now: u64) -> Plan {
        let mut plan = Plan::default();
        for (id, d) in self.devices.iter().filter(|(_, d)| d.listed()) {
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

    /// The checks of `add_bundle` up to `IdentityChangePending`.
    pub(super) fn sendable(&self, local: &Dev, device: u32) -> Result<&PeerDevice, Refusal> {
        if local.ik != self.local_identity {
            return Err(refusal("IdentityMismatch"));
        }
        let d = self
            .devices
            .get(&device)
            .filter(|d| d.listed())
            .ok_or_else(|| refusal("UnknownDevice"))?;
        if d.pending.is_some() {
            return Err(refusal("IdentityChangePending"));
        }
        Ok(d)
    }

    /// The rest of `add_bundle`'s checks and its draws: the new session.
    pub(super) fn start(
        d: &PeerDevice,
        local: &Dev,
        bundle: &Bundle,
        rng: &mut dyn Source,
    ) -> Result<crate::model::Sess, Refusal> {
        bundle.verify(Some(&d.identity))?;
        if bundle.kem.is_none() && policy(d) == Policy::PostQuantumRequired {
            return Err(refusal("PostQuantumRequired"));
        }
        Ok(pqxdh::initiate(local, bundle, policy(d), rng)?.0)
    }

    /// §16.3 `add_bundle` (the bundle decoded by the caller).
    ///
    /// # Errors
    ///
    /// In §16.3's order.
    pub fn add_bundle(
        &mut self,
        local: &Dev,
        device: u32,
        bundle: &Bundle,
        now: u64,
        rng: &mut dyn Source,
    ) -> Result<(), Refusal> {
        let d = self.sendable(local, device)?;
        let session = Self::start(d, local, bundle, rng)?;
        let d = self.devices.get_mut(&device).expect("checked");
        if session.pq {
            d.pin();
        }
        d.install(Entry::new(session, now));
        self.bump();
        Ok(())
    }

    /// The fan-out draws of §16.3: 48 bytes per listed device with an
    /// active session and no pending identity, in device order.
    pub fn draw_fanout(&self, rng: &mut dyn Source) -> Vec<[u8; FANOUT_DRAW]> {
        self.devices
            .values()
            .filter(|d| d.listed() && d.active.is_some() && d.pending.is_none())
            .map(|_| rng.draw::<FANOUT_DRAW>())
            .collect()
    }

    /// The fan-out of a plaintext with its draws (from [`Record::draw_fanout`]).
    pub fn fanout(&mut self, plaintext: &[u8], draws: &[[u8; FANOUT_DRAW]]) -> Sent {
        let mut sent = Sent::default();
        let mut draws = draws.iter();
        for (id, d) in self.devices.iter_mut().filter(|(_, d)| d.listed()) {
            if d.pending.is_some() {
                sent.unusable.push((*id, refusal("IdentityChangePending")));
                continue;
            }
            let Some(active) = d.active.as_mut() else {
                sent.unusable.push((*id, refusal("NoSession")));
                continue;
            };
            let bytes = *draws.next().expect("one draw per device");
            let mut s = active.session.clone();
            match s.encrypt(&mut FanoutBytes(bytes), plaintext) {
                Ok((m, _)) => {
                    active.session = s;
                    sent.messages.push((*id, m));
                }
                Err(e) => sent.unusable.push((*id, e)),
            }
        }
        if !sent.messages.is_empty() {
            self.bump();
        }
        sent
    }

    /// §16.3 `encrypt`.
    ///
    /// # Errors
    ///
    /// `PlaintextTooLarge`.
    pub fn encrypt(&mut self, payload: &[u8], rng: &mut dyn Source) -> Result<Sent, Refusal> {
        if payload.len() > MAX_PAYLOAD_LEN {
            return Err(refusal("PlaintextTooLarge"));
        }
        let draws = self.draw_fanout(rng);
        Ok(self.fanout(&frame(KIND_PAYLOAD, payload), &draws))
    }

    /// `encrypt_to` of any frame: `UnknownDevice` (not held, or stale),
    /// `IdentityChangePending`, `NoSession`, then the session's encrypt.
    ///
    /// # Errors
    ///
    /// As above.
    pub fn encrypt_frame(
        &mut self,
        device: u32,
        plaintext: &[u8],
        rng: &mut dyn Source,
    ) -> Result<Vec<u8>, Refusal> {
        let d = self
            .devices
            .get_mut(&device)
            .filter(|d| d.listed())
            .ok_or_else(|| refusal("UnknownDevice"))?;
        if d.pending.is_some() {
            return Err(refusal("IdentityChangePending"));
        }
        let active = d.active.as_mut().ok_or_else(|| refusal("NoSession"))?;
        let mut s = active.session.clone();
        let (m, _) = s.encrypt(rng, plaintext)?;
        active.session = s;
        self.bump();
        Ok(m)
    }

    /// §16.3 `encrypt_to`.
    ///
    /// # Errors
    ///
    /// `PlaintextTooLarge`, then as [`Record::encrypt_frame`].
    pub fn encrypt_to(
        &mut self,
        device: u32,
        payload: &[u8],
        rng: &mut dyn Source,
    ) -> Result<Vec<u8>, Refusal> {
        if payload.len() > MAX_PAYLOAD_LEN {
            return Err(refusal("PlaintextTooLarge"));
        }
        self.encrypt_frame(device, &frame(KIND_PAYLOAD, payload), rng)
    }
}
