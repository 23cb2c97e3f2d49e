//! [`Api`] on sotto's public API: every call restores its states with
//! `from_bytes`, calls sotto, and returns `to_bytes`. A call that fails
//! must leave its objects byte for byte as they were; if it does not, the
//! call returns the refusal `StateChangedOnError`, which no vector expects.
//!
//! sotto has no accessor for the public half of a one-time prekey or of a
//! KEM prekey other than the current last-resort one after they were made,
//! so [`Api::bundle`] takes those halves from the model (the device's
//! secrets and seeds); sotto's own outputs when it made them are compared
//! with the model's in the steps that made them.

use sotto::group::{
    GroupId, GroupMessage, GroupReceiver, GroupReceivers, GroupSender, InsertOutcome,
    SenderKeyDistribution,
};
use sotto::rand_core::{Infallible, TryCryptoRng, TryRng};
use sotto::sessions::{GroupSession, PeerRecord};
use sotto::{
    Device, IdentityKey, KemPreKey, KeyAgreementPolicy, Message, OneTimePreKey, PreKeyBundle,
    SavedState, Session, SignedPreKey, StorageKey,
};

use super::api::{AcceptedInstall, Api, Bytes, DeviceCall, Mark, R};
use super::error_json;
use crate::model::group::Outcome;
use crate::model::rand::Source;
use crate::model::{Dev, Policy, Refusal, refusal};

/// sotto behind [`Api`].
pub struct SottoApi;

/// A model [`Source`] as sotto's RNG.
pub(super) struct Rng<'a>(pub(super) &'a mut dyn Source);

impl TryRng for Rng<'_> {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.0.fill(&mut b);
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.0.fill(&mut b);
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.0.fill(dst);
        Ok(())
    }
}

impl TryCryptoRng for Rng<'_> {}

/// sotto's error as the vectors spell it.
pub(super) fn e(err: sotto::Error) -> Refusal {
    error_json(&err)
}

pub(super) fn changed() -> Refusal {
    refusal("StateChangedOnError")
}

fn policy(p: Policy) -> KeyAgreementPolicy {
    match p {
        Policy::PostQuantumRequired => KeyAgreementPolicy::PostQuantumRequired,
        Policy::ClassicalAllowed => KeyAgreementPolicy::ClassicalAllowed,
    }
}

fn outcome(o: InsertOutcome) -> Outcome {
    match o {
        InsertOutcome::Added => Outcome::Added,
        InsertOutcome::Advanced => Outcome::Advanced,
        InsertOutcome::Upgraded => Outcome::Upgraded,
        InsertOutcome::Unchanged => Outcome::Unchanged,
    }
}

/// Runs `f` on `state`; on an error, `state` must encode as it did.
fn unchanged<S: SavedState, T>(
    state: &mut S,
    f: impl FnOnce(&mut S) -> Result<T, sotto::Error>,
) -> R<T> {
    let before = state.to_bytes().to_vec();
    match f(state) {
        Ok(t) => Ok(t),
        Err(err) if state.to_bytes().as_slice() == before.as_slice() => Err(e(err)),
        Err(_) => Err(changed()),
    }
}

pub(super) fn message(bytes: &[u8]) -> R<Message> {
    Message::from_bytes(bytes).map_err(e)
}

pub(super) fn identity(bytes: &[u8]) -> R<IdentityKey> {
    IdentityKey::from_bytes(bytes).map_err(e)
}

pub(super) fn group_id(group: &[u8; 32]) -> GroupId {
    GroupId::from_bytes(*group)
}

fn store_key(key: &[u8; 32]) -> StorageKey {
    StorageKey::from_bytes(*key)
}

pub(super) fn mark(sender: &sotto::group::Sender) -> Mark {
    (
        sender.owner().to_bytes().to_vec(),
        sender.is_authenticated(),
    )
}

impl Api for SottoApi {
    fn name(&self) -> &'static str {
        "sotto"
    }

    fn decode(&self, encoding: &str, b: &[u8]) -> R<()> {
        let r = match encoding {
            "Message" => Message::from_bytes(b).map(drop),
            "IdentityKey" => IdentityKey::from_bytes(b).map(drop),
            "SignedPreKey" => SignedPreKey::from_bytes(b).map(drop),
            "OneTimePreKey" => OneTimePreKey::from_bytes(b).map(drop),
            "KemPreKey" => KemPreKey::from_bytes(b).map(drop),
            "PreKeyBundle" => PreKeyBundle::from_bytes(b).map(drop),
            "Session" => Session::from_bytes(b).map(drop),
            "Device" => Device::from_bytes(b).map(drop),
            "GroupMessage" => GroupMessage::from_bytes(b).map(drop),
            "SenderKeyDistribution" => SenderKeyDistribution::from_bytes(b).map(drop),
            "GroupSender" => GroupSender::from_bytes(b).map(drop),
            "GroupReceiver" => GroupReceiver::from_bytes(b).map(drop),
            "GroupReceivers" => GroupReceivers::from_bytes(b).map(drop),
            "PeerRecord" => PeerRecord::from_bytes(b).map(drop),
            "GroupSession" => GroupSession::from_bytes(b).map(drop),
            other => panic!("no encoding {other}"),
        };
        r.map_err(e)
    }

    fn verify_bundle(&self, bundle: &[u8], expected: Option<&[u8]>) -> R<()> {
        let b = PreKeyBundle::from_bytes(bundle).map_err(e)?;
        match expected {
            Some(x) => b.verify_for(&identity(x)?).map(drop).map_err(e),
            None => b.verify().map(drop).map_err(e),
        }
    }

    fn device_new(&self, now: u64, rng: &mut dyn Source) -> R<Bytes> {
        let d = Device::generate(&mut Rng(rng), now).map_err(e)?;
        Ok(d.to_bytes().to_vec())
    }

    fn device_call(
        &self,
        device: &[u8],
        call: DeviceCall,
        rng: &mut dyn Source,
    ) -> R<(Bytes, Vec<Bytes>)> {
        let mut d = Device::from_bytes(device).map_err(e)?;
        let mut rng = Rng(rng);
        let made: Vec<Bytes> = unchanged(&mut d, |d| {
            Ok(match call {
                DeviceCall::RotateSignedPreKey(now) => {
                    vec![d.rotate_signed_prekey(&mut rng, now)?.to_bytes()]
                }
                DeviceCall::RemoveSignedPreKey(id) => {
                    d.remove_signed_prekey(id)?;
                    vec![]
                }
                DeviceCall::GenerateOneTimePreKeys(count) => d
                    .generate_one_time_prekeys(&mut rng, count as usize)?
                    .iter()
                    .map(OneTimePreKey::to_bytes)
                    .collect(),
                DeviceCall::RotateKemPreKey(now) => {
                    vec![d.rotate_last_resort_kem_prekey(&mut rng, now)?.to_bytes()]
                }
                DeviceCall::RemoveKemPreKey(id) => {
                    d.remove_last_resort_kem_prekey(id)?;
                    vec![]
                }
                DeviceCall::GenerateKemPreKeys(count) => d
                    .generate_one_time_kem_prekeys(&mut rng, count as usize)?
                    .iter()
                    .map(KemPreKey::to_bytes)
                    .collect(),
                DeviceCall::ResetPreKeys(now, last) => {
                    let (s, k) = d.reset_prekeys_after_restore(&mut rng, now, last)?;
                    vec![s.to_bytes(), k.to_bytes()]
                }
            })
        })?;
        Ok((d.to_bytes().to_vec(), made))
    }

    fn bundle(&self, device: &[u8], opk: Option<u32>, kem: Option<u32>) -> R<Bytes> {
        let d = Device::from_bytes(device).map_err(e)?;
        let m = Dev::decode(device)?;
        let opk = opk
            .map(|id| {
                if !m.opks.contains_key(&id) {
                    return Err(refusal("UnknownOneTimePreKey"));
                }
                OneTimePreKey::from_bytes(&m.opk_encoded(id)).map_err(e)
            })
            .transpose()?;
        let current = d.last_resort_kem_prekey();
        let kem = kem
            .map(|id| {
                if id == current.id() {
                    return Ok(current.clone());
                }
                let k = m.kem(id).ok_or_else(|| refusal("UnknownKemPreKey"))?;
                KemPreKey::from_bytes(&k.public().encoded()).map_err(e)
            })
            .transpose()?;
        let b = PreKeyBundle::new(*d.identity_key(), d.signed_prekey(), opk, kem);
        Ok(b.to_bytes())
    }

    fn initiate(
        &self,
        device: &[u8],
        bundle: &[u8],
        expected: Option<&[u8]>,
        p: Policy,
        rng: &mut dyn Source,
    ) -> R<Bytes> {
        let d = Device::from_bytes(device).map_err(e)?;
        let b = PreKeyBundle::from_bytes(bundle).map_err(e)?;
        let verified = match expected {
            Some(x) => b.verify_for(&identity(x)?),
            None => b.verify(),
        }
        .map_err(e)?;
        let s =
            Session::initiate_with_policy(&d, &mut Rng(rng), &verified, policy(p)).map_err(e)?;
        if d.to_bytes().as_slice() != device {
            return Err(changed());
        }
        Ok(s.to_bytes().to_vec())
    }

    fn accept(&self, device: &[u8], msg: &[u8], p: Policy) -> R<(Bytes, Bytes, Bytes)> {
        let mut d = Device::from_bytes(device).map_err(e)?;
        let Message::PreKey(pm) = message(msg)? else {
            return Err(e(sotto::Error::WrongType {
                expected: 2,
                found: 1,
            }));
        };
        let (s, pt) = unchanged(&mut d, |d| Session::accept_with_policy(d, &pm, policy(p)))?;
        Ok((d.to_bytes().to_vec(), s.to_bytes().to_vec(), pt.to_vec()))
    }

    fn encrypt(&self, session: &[u8], plaintext: &[u8], rng: &mut dyn Source) -> R<(Bytes, Bytes)> {
        let mut s = Session::from_bytes(session).map_err(e)?;
        let mut rng = Rng(rng);
        let m = unchanged(&mut s, |s| s.encrypt(&mut rng, plaintext))?;
        Ok((s.to_bytes().to_vec(), m.as_bytes().to_vec()))
    }

    fn decrypt(&self, session: &[u8], msg: &[u8]) -> R<(Bytes, Bytes)> {
        let mut s = Session::from_bytes(session).map_err(e)?;
        let m = message(msg)?;
        let pt = unchanged(&mut s, |s| s.decrypt(&m))?;
        Ok((s.to_bytes().to_vec(), pt.to_vec()))
    }

    fn seal(&self, state: &[u8], key: &[u8; 32], context: &[u8], rng: &mut dyn Source) -> R<Bytes> {
        let k = store_key(key);
        let mut rng = Rng(rng);
        let r = match state.get(1) {
            Some(0x20) => Session::from_bytes(state).and_then(|s| s.seal(&k, context, &mut rng)),
            Some(0x21) => Device::from_bytes(state).and_then(|s| s.seal(&k, context, &mut rng)),
            Some(0x22) => {
                GroupSender::from_bytes(state).and_then(|s| s.seal(&k, context, &mut rng))
            }
            Some(0x23) => {
                GroupReceiver::from_bytes(state).and_then(|s| s.seal(&k, context, &mut rng))
            }
            Some(0x24) => {
                GroupReceivers::from_bytes(state).and_then(|s| s.seal(&k, context, &mut rng))
            }
            Some(0x25) => PeerRecord::from_bytes(state).and_then(|s| s.seal(&k, context, &mut rng)),
            Some(0x26) => {
                GroupSession::from_bytes(state).and_then(|s| s.seal(&k, context, &mut rng))
            }
            other => panic!("no saved state of type {other:?}"),
        };
        r.map_err(e)
    }

    fn unseal(&self, sealed: &[u8], key: &[u8; 32], context: &[u8], inner: u8) -> R<Bytes> {
        let k = store_key(key);
        let r = match inner {
            0x20 => Session::unseal(sealed, &k, context).map(|s| s.to_bytes().to_vec()),
            0x21 => Device::unseal(sealed, &k, context).map(|s| s.to_bytes().to_vec()),
            0x22 => GroupSender::unseal(sealed, &k, context).map(|s| s.to_bytes().to_vec()),
            0x23 => GroupReceiver::unseal(sealed, &k, context).map(|s| s.to_bytes().to_vec()),
            0x24 => GroupReceivers::unseal(sealed, &k, context).map(|s| s.to_bytes().to_vec()),
            0x25 => PeerRecord::unseal(sealed, &k, context).map(|s| s.to_bytes().to_vec()),
            0x26 => GroupSession::unseal(sealed, &k, context).map(|s| s.to_bytes().to_vec()),
            other => panic!("no saved state of type {other:#04x}"),
        };
        r.map_err(e)
    }

    fn group_sender_new(&self, group: &[u8; 32], device: &[u8], rng: &mut dyn Source) -> R<Bytes> {
        let d = Device::from_bytes(device).map_err(e)?;
        let s = GroupSender::new(&mut Rng(rng), group_id(group), &d).map_err(e)?;
        Ok(s.to_bytes().to_vec())
    }

    fn group_sender_rotate(&self, sender: &[u8], device: &[u8], rng: &mut dyn Source) -> R<Bytes> {
        let mut s = GroupSender::from_bytes(sender).map_err(e)?;
        let d = Device::from_bytes(device).map_err(e)?;
        let mut rng = Rng(rng);
        unchanged(&mut s, |s| s.rotate(&mut rng, &d))?;
        Ok(s.to_bytes().to_vec())
    }

    fn group_encrypt(
        &self,
        sender: &[u8],
        plaintext: &[u8],
        rng: &mut dyn Source,
    ) -> R<(Bytes, Bytes)> {
        let mut s = GroupSender::from_bytes(sender).map_err(e)?;
        let mut rng = Rng(rng);
        let m = unchanged(&mut s, |s| s.encrypt(&mut rng, plaintext))?;
        Ok((s.to_bytes().to_vec(), m.as_bytes().to_vec()))
    }

    fn group_distribution(&self, sender: &[u8]) -> R<Bytes> {
        let s = GroupSender::from_bytes(sender).map_err(e)?;
        Ok(s.distribution().to_bytes().to_vec())
    }

    fn store_new(&self, group: &[u8; 32]) -> R<Bytes> {
        Ok(GroupReceivers::new(group_id(group)).to_bytes().to_vec())
    }

    fn store_import(&self, store: &[u8], distribution: &[u8]) -> R<(Bytes, Outcome)> {
        let mut st = GroupReceivers::from_bytes(store).map_err(e)?;
        let o = unchanged(&mut st, |st| st.import_unauthenticated(distribution))?;
        Ok((st.to_bytes().to_vec(), outcome(o)))
    }

    fn store_receive_distribution(
        &self,
        store: &[u8],
        session: &[u8],
        msg: &[u8],
    ) -> R<(Bytes, Bytes, Outcome)> {
        let mut st = GroupReceivers::from_bytes(store).map_err(e)?;
        let mut se = Session::from_bytes(session).map_err(e)?;
        let m = message(msg)?;
        let o = unchanged(&mut st, |st| st.receive_distribution(&mut se, &m));
        if o.is_err() && se.to_bytes().as_slice() != session {
            return Err(changed());
        }
        Ok((st.to_bytes().to_vec(), se.to_bytes().to_vec(), outcome(o?)))
    }

    fn store_install_accepted(
        &self,
        store: &[u8],
        device: &[u8],
        msg: &[u8],
        p: Policy,
    ) -> R<AcceptedInstall> {
        let mut st = GroupReceivers::from_bytes(store).map_err(e)?;
        let mut d = Device::from_bytes(device).map_err(e)?;
        let Message::PreKey(pm) = message(msg)? else {
            return Err(e(sotto::Error::WrongType {
                expected: 2,
                found: 1,
            }));
        };
        let (se, pt) = unchanged(&mut d, |d| Session::accept_with_policy(d, &pm, policy(p)))?;
        let installed =
            unchanged(&mut st, |st| st.install(&pt)).map(|o| (st.to_bytes().to_vec(), outcome(o)));
        Ok((d.to_bytes().to_vec(), se.to_bytes().to_vec(), installed))
    }

    fn store_decrypt(&self, store: &[u8], msg: &[u8]) -> R<(Bytes, Bytes, Mark)> {
        let mut st = GroupReceivers::from_bytes(store).map_err(e)?;
        let m = GroupMessage::from_bytes(msg).map_err(e)?;
        let pt = unchanged(&mut st, |st| st.decrypt(&m))?;
        Ok((
            st.to_bytes().to_vec(),
            pt.as_bytes().to_vec(),
            mark(pt.sender()),
        ))
    }

    fn store_remove_owner(&self, store: &[u8], owner: &[u8]) -> R<(Bytes, u64)> {
        let mut st = GroupReceivers::from_bytes(store).map_err(e)?;
        let n = st.remove_owner(&identity(owner)?);
        Ok((st.to_bytes().to_vec(), n as u64))
    }

    fn receiver_receive_distribution(
        &self,
        group: &[u8; 32],
        session: &[u8],
        msg: &[u8],
    ) -> R<(Bytes, Bytes)> {
        let mut se = Session::from_bytes(session).map_err(e)?;
        let m = message(msg)?;
        let r = unchanged(&mut se, |se| {
            GroupReceiver::receive_distribution(&group_id(group), se, &m)
        })?;
        Ok((r.to_bytes().to_vec(), se.to_bytes().to_vec()))
    }

    fn receiver_import(&self, group: &[u8; 32], distribution: &[u8]) -> R<Bytes> {
        let r = GroupReceiver::import_unauthenticated(&group_id(group), distribution).map_err(e)?;
        Ok(r.to_bytes().to_vec())
    }

    fn receiver_decrypt(&self, receiver: &[u8], msg: &[u8]) -> R<(Bytes, Bytes, Mark)> {
        let mut r = GroupReceiver::from_bytes(receiver).map_err(e)?;
        let m = GroupMessage::from_bytes(msg).map_err(e)?;
        let pt = unchanged(&mut r, |r| r.decrypt(&m))?;
        Ok((
            r.to_bytes().to_vec(),
            pt.as_bytes().to_vec(),
            mark(pt.sender()),
        ))
    }
}
