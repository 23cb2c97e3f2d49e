//! [`LayerApi`] on sotto's public API (`sotto::sessions`): every call
//! restores its records, groups and device with `from_bytes`, calls sotto,
//! and returns `to_bytes`. A call that fails must leave every object it was
//! given byte for byte as it was (else the refusal `StateChangedOnError`).

use sotto::group::{GroupMessage, InsertOutcome};
use sotto::sessions::{
    self, Action as SAction, Content as SContent, DeviceId, Failure as SFailure, GroupSession,
    Ignore, LocalListing, PeerRecord, RetryHint, RetryLater, UserFingerprint, UserId,
};
use sotto::{Device, Error, IdentityKey, PreKeyBundle};

use super::api::{Bytes, Mark, R};
use super::layer::{Decrypted, Installed, LayerApi};
use super::sotto_api::{Rng, SottoApi, changed, e, group_id, identity, mark, message};
use crate::model::group::Outcome;
use crate::model::rand::Source;
use crate::model::sessions::devices::{Changes, IdentityChange, Local};
use crate::model::sessions::group::Fanout;
use crate::model::sessions::record::Expired;
use crate::model::sessions::send::{Plan, Sent};
use crate::model::sessions::{Action, Content, Hint};

fn record(bytes: &[u8]) -> R<PeerRecord> {
    PeerRecord::from_bytes(bytes).map_err(e)
}

fn group(bytes: &[u8]) -> R<GroupSession> {
    GroupSession::from_bytes(bytes).map_err(e)
}

fn device(bytes: &[u8]) -> R<Device> {
    Device::from_bytes(bytes).map_err(e)
}

fn user(bytes: &[u8]) -> R<UserId> {
    UserId::new(bytes).map_err(e)
}

fn bundle(bytes: &[u8]) -> R<PreKeyBundle> {
    PreKeyBundle::from_bytes(bytes).map_err(e)
}

fn rec_bytes(r: &PeerRecord) -> Bytes {
    r.to_bytes().to_vec()
}

fn ids(v: &[DeviceId]) -> Vec<u32> {
    v.iter().map(|d| d.0).collect()
}

fn hint(h: &Hint) -> RetryHint {
    RetryHint {
        ratchet_key: h.ratchet_key,
        message_number: h.n,
        base_key: h.base_key,
    }
}

fn model_hint(h: &RetryHint) -> Hint {
    Hint {
        ratchet_key: h.ratchet_key,
        n: h.message_number,
        base_key: h.base_key,
    }
}

fn action(a: &SAction) -> Action {
    match a {
        SAction::Ignore(i) => Action::Ignore(match i {
            Ignore::Duplicate => "Duplicate",
            Ignore::Malformed => "Malformed",
            Ignore::Downgrade => "Downgrade",
            Ignore::RecoveryPending => "RecoveryPending",
            Ignore::WrongLocalDevice => "WrongLocalDevice",
        }),
        SAction::RetryLater(r) => Action::RetryLater(match r {
            RetryLater::UnknownDevice => "UnknownDevice",
            RetryLater::IdentityChangePending => "IdentityChangePending",
            RetryLater::UnknownIdentity => "UnknownIdentity",
            RetryLater::MissingDistribution => "MissingDistribution",
        }),
        SAction::RequestRetry(h) => Action::RequestRetry(model_hint(h)),
        SAction::StartNewSession(h) => Action::StartNewSession(model_hint(h)),
    }
}

/// A failure as the vectors spell it: the error with its action.
fn failure(f: &SFailure) -> crate::model::Refusal {
    let mut r = e(f.error);
    r["action"] = action(&f.action).json();
    r
}

fn content(c: &SContent) -> Content {
    match c {
        SContent::Payload(p) => Content::Payload(p.as_bytes().to_vec(), *p.sender().as_bytes()),
        SContent::Distribution(d) => {
            Content::Distribution(Vec::new(), *d.group_id().as_bytes(), *d.sender().as_bytes())
        }
        SContent::RetryRequest(h) => Content::RetryRequest(model_hint(h)),
        SContent::DistributionRequest(g) => Content::DistributionRequest(*g.as_bytes()),
    }
}

fn sent(s: &sessions::Sent) -> Sent {
    Sent {
        messages: s
            .messages
            .iter()
            .map(|m| (m.device.0, m.message.as_bytes().to_vec()))
            .collect(),
        unusable: s
            .unusable
            .iter()
            .map(|u| (u.device.0, e(u.error)))
            .collect(),
    }
}

fn fanout(f: &sessions::Fanout) -> Fanout {
    f.users
        .iter()
        .map(|(u, s)| (u.as_bytes().to_vec(), sent(s)))
        .collect()
}

fn outcome(o: InsertOutcome) -> Outcome {
    match o {
        InsertOutcome::Added => Outcome::Added,
        InsertOutcome::Advanced => Outcome::Advanced,
        InsertOutcome::Upgraded => Outcome::Upgraded,
        InsertOutcome::Unchanged => Outcome::Unchanged,
    }
}

/// Runs `f` on a record; on an error the record must encode as it did.
fn on_record<T>(r: &mut PeerRecord, f: impl FnOnce(&mut PeerRecord) -> Result<T, Error>) -> R<T> {
    let before = rec_bytes(r);
    match f(r) {
        Ok(t) => Ok(t),
        Err(err) if rec_bytes(r) == before => Err(e(err)),
        Err(_) => Err(changed()),
    }
}

/// Runs `f` on a group and records; on an error none may change.
fn on_group<T>(
    g: &mut GroupSession,
    rs: &mut [PeerRecord],
    f: impl FnOnce(&mut GroupSession, &mut [&mut PeerRecord]) -> Result<T, Error>,
) -> R<T> {
    let before: Vec<Bytes> = rs.iter().map(rec_bytes).collect();
    let g_before = g.to_bytes().to_vec();
    let mut refs: Vec<&mut PeerRecord> = rs.iter_mut().collect();
    match f(g, &mut refs) {
        Ok(t) => Ok(t),
        Err(err)
            if g.to_bytes().as_slice() == g_before.as_slice()
                && rs.iter().map(rec_bytes).collect::<Vec<_>>() == before =>
        {
            Err(e(err))
        }
        Err(_) => Err(changed()),
    }
}

fn records(all: &[Bytes]) -> R<Vec<PeerRecord>> {
    all.iter().map(|r| record(r)).collect()
}

/// `PeerRecord::decrypt`, all or nothing, with the failure as a refusal.
fn decrypt(
    r: &mut PeerRecord,
    d: &mut Device,
    from: u32,
    msg: &[u8],
    now: u64,
) -> R<sessions::Received> {
    let m = message(msg)?;
    let (rb, db) = (rec_bytes(r), d.to_bytes().to_vec());
    match r.decrypt(d, DeviceId(from), &m, now) {
        Ok(x) => Ok(x),
        Err(f) if rec_bytes(r) == rb && d.to_bytes().as_slice() == db.as_slice() => {
            Err(failure(&f))
        }
        Err(_) => Err(changed()),
    }
}

impl LayerApi for SottoApi {
    fn record_new(&self, u: &[u8], local: &[u8], local_device: Option<u32>) -> R<Bytes> {
        let u = user(u)?;
        let d = device(local)?;
        let r = match local_device {
            Some(id) => PeerRecord::new_own(u, DeviceId(id), *d.identity_key()),
            None => PeerRecord::new(u, *d.identity_key()),
        };
        Ok(rec_bytes(&r))
    }

    fn update_devices(&self, rb: &[u8], list: &[(u32, Bytes)], now: u64) -> R<(Bytes, Changes)> {
        let mut r = record(rb)?;
        let list = list
            .iter()
            .map(|(id, k)| Ok((DeviceId(*id), identity(k)?)))
            .collect::<R<Vec<_>>>()?;
        let c = on_record(&mut r, |r| r.update_devices(&list, now))?;
        let changes = Changes {
            added: ids(&c.added),
            relisted: ids(&c.relisted),
            removed: ids(&c.removed),
            deleted: ids(&c.deleted),
            identity_changes: c
                .identity_changes
                .iter()
                .map(|x| IdentityChange {
                    device: x.device.0,
                    old: *x.old.as_bytes(),
                    new: *x.new.as_bytes(),
                    identity: *x.new_identity.as_bytes(),
                })
                .collect(),
            withdrawn: ids(&c.withdrawn),
            local: c.local.as_ref().map(|l| match l {
                LocalListing::Listed => Local::Listed,
                LocalListing::Missing => Local::Missing,
                LocalListing::OtherIdentity(f) => Local::OtherIdentity(*f.as_bytes()),
            }),
        };
        Ok((rec_bytes(&r), changes))
    }

    fn acknowledge_identity(&self, rb: &[u8], id: u32, key: &[u8]) -> R<Bytes> {
        let mut r = record(rb)?;
        let k = identity(key)?;
        on_record(&mut r, |r| r.acknowledge_identity(DeviceId(id), &k))?;
        Ok(rec_bytes(&r))
    }

    fn allow_classical(&self, rb: &[u8], id: u32, allowed: bool) -> R<Bytes> {
        let mut r = record(rb)?;
        on_record(&mut r, |r| r.allow_classical(DeviceId(id), allowed))?;
        Ok(rec_bytes(&r))
    }

    fn plan_send(&self, rb: &[u8], now: u64) -> R<Plan> {
        let p = record(rb)?.plan_send(now);
        Ok(Plan {
            ready: ids(&p.ready),
            needs_bundle: ids(&p.needs_bundle),
            blocked: ids(&p.blocked),
        })
    }

    fn add_bundle(
        &self,
        rb: &[u8],
        local: &[u8],
        id: u32,
        b: &[u8],
        now: u64,
        rng: &mut dyn Source,
    ) -> R<Bytes> {
        let mut r = record(rb)?;
        let d = device(local)?;
        let b = bundle(b)?;
        on_record(&mut r, |r| {
            r.add_bundle(&d, DeviceId(id), b, now, &mut Rng(rng))
        })?;
        if d.to_bytes().as_slice() != local {
            return Err(changed());
        }
        Ok(rec_bytes(&r))
    }

    fn record_encrypt(&self, rb: &[u8], payload: &[u8], rng: &mut dyn Source) -> R<(Bytes, Sent)> {
        let mut r = record(rb)?;
        let s = on_record(&mut r, |r| r.encrypt(payload, &mut Rng(rng)))?;
        Ok((rec_bytes(&r), sent(&s)))
    }

    fn encrypt_to(
        &self,
        rb: &[u8],
        id: u32,
        payload: &[u8],
        rng: &mut dyn Source,
    ) -> R<(Bytes, Bytes)> {
        let mut r = record(rb)?;
        let m = on_record(&mut r, |r| {
            r.encrypt_to(DeviceId(id), payload, &mut Rng(rng))
        })?;
        Ok((rec_bytes(&r), m.as_bytes().to_vec()))
    }

    fn record_decrypt(
        &self,
        rb: &[u8],
        local: &[u8],
        from: u32,
        msg: &[u8],
        now: u64,
    ) -> R<Decrypted> {
        let mut r = record(rb)?;
        let mut d = device(local)?;
        let got = decrypt(&mut r, &mut d, from, msg, now)?;
        if got.device().0 != from {
            return Err(crate::model::refusal("WrongDevice"));
        }
        Ok((rec_bytes(&r), d.to_bytes().to_vec(), content(got.content())))
    }

    fn request_retry(
        &self,
        rb: &[u8],
        id: u32,
        h: &Hint,
        now: u64,
        rng: &mut dyn Source,
    ) -> R<(Bytes, Bytes)> {
        let mut r = record(rb)?;
        let m = on_record(&mut r, |r| {
            r.request_retry(DeviceId(id), &hint(h), now, &mut Rng(rng))
        })?;
        Ok((rec_bytes(&r), m.as_bytes().to_vec()))
    }

    fn start_new_session(
        &self,
        rb: &[u8],
        local: &[u8],
        id: u32,
        b: &[u8],
        h: &Hint,
        now: u64,
        rng: &mut dyn Source,
    ) -> R<(Bytes, Bytes)> {
        let mut r = record(rb)?;
        let d = device(local)?;
        let b = bundle(b)?;
        let m = on_record(&mut r, |r| {
            r.start_new_session(&d, DeviceId(id), b, &hint(h), now, &mut Rng(rng))
        })?;
        Ok((rec_bytes(&r), m.as_bytes().to_vec()))
    }

    fn request_distribution(
        &self,
        rb: &[u8],
        id: u32,
        g: &[u8; 32],
        rng: &mut dyn Source,
    ) -> R<(Bytes, Bytes)> {
        let mut r = record(rb)?;
        let m = on_record(&mut r, |r| {
            r.request_distribution(DeviceId(id), &group_id(g), &mut Rng(rng))
        })?;
        Ok((rec_bytes(&r), m.as_bytes().to_vec()))
    }

    fn expire(&self, rb: &[u8], now: u64) -> R<(Bytes, Expired)> {
        let mut r = record(rb)?;
        let x = r.expire(now);
        Ok((
            rec_bytes(&r),
            Expired {
                devices: ids(&x.devices),
                sessions: x.sessions,
            },
        ))
    }

    fn after_restore(&self, rb: &[u8], last_generation: u64) -> R<(Bytes, u64)> {
        let mut r = record(rb)?;
        let n = r.after_restore(last_generation);
        Ok((rec_bytes(&r), n as u64))
    }

    fn fingerprint(&self, rb: &[u8]) -> R<String> {
        let f = record(rb)?.fingerprint().map_err(e)?;
        Ok(String::from_utf8_lossy(f.digits()).into_owned())
    }

    fn safety_number(&self, rb: &[u8], own: &[u8]) -> R<String> {
        let n = record(rb)?.safety_number(&record(own)?).map_err(e)?;
        Ok(String::from_utf8_lossy(n.digits()).into_owned())
    }

    fn user_fingerprint(&self, u: &[u8], identities: &[Bytes]) -> R<String> {
        let u = user(u)?;
        let keys = identities
            .iter()
            .map(|k| identity(k))
            .collect::<R<Vec<IdentityKey>>>()?;
        let f = UserFingerprint::new(&u, &keys).map_err(e)?;
        Ok(String::from_utf8_lossy(f.digits()).into_owned())
    }

    fn group_new(&self, g: &[u8; 32], u: &[u8], local: &[u8], rng: &mut dyn Source) -> R<Bytes> {
        let u = user(u)?;
        let d = device(local)?;
        let gs = GroupSession::new(&mut Rng(rng), group_id(g), u, &d).map_err(e)?;
        Ok(gs.to_bytes().to_vec())
    }

    fn group_add_member(&self, gb: &[u8], u: &[u8]) -> R<(Bytes, bool)> {
        let mut g = group(gb)?;
        let u = user(u)?;
        let added = on_group(&mut g, &mut [], |g, _| g.add_member(u))?;
        Ok((g.to_bytes().to_vec(), added))
    }

    fn group_distribute(
        &self,
        gb: &[u8],
        all: &[Bytes],
        rng: &mut dyn Source,
    ) -> R<(Vec<Bytes>, Fanout)> {
        let mut g = group(gb)?;
        let mut rs = records(all)?;
        let f = on_group(&mut g, &mut rs, |g, refs| g.distribute(refs, &mut Rng(rng)))?;
        if g.to_bytes().as_slice() != gb {
            return Err(changed());
        }
        Ok((rs.iter().map(rec_bytes).collect(), fanout(&f)))
    }

    fn group_distribute_to(
        &self,
        gb: &[u8],
        rb: &[u8],
        id: u32,
        rng: &mut dyn Source,
    ) -> R<(Bytes, Bytes)> {
        let g = group(gb)?;
        let mut r = record(rb)?;
        let m = on_record(&mut r, |r| g.distribute_to(r, DeviceId(id), &mut Rng(rng)))?;
        Ok((rec_bytes(&r), m.as_bytes().to_vec()))
    }

    fn group_install(
        &self,
        gb: &[u8],
        rb: &[u8],
        local: &[u8],
        from: u32,
        msg: &[u8],
        now: u64,
        install_record: Option<&[u8]>,
    ) -> R<Installed> {
        let mut g = group(gb)?;
        let mut r = record(rb)?;
        let mut d = device(local)?;
        let other = install_record.map(record).transpose()?;
        let got = decrypt(&mut r, &mut d, from, msg, now)?;
        let installed = on_group(&mut g, &mut [], |g, _| {
            g.install(other.as_ref().unwrap_or(&r), &got)
        })
        .map(|o| (g.to_bytes().to_vec(), outcome(o)));
        Ok((
            rec_bytes(&r),
            d.to_bytes().to_vec(),
            content(got.content()),
            installed,
        ))
    }

    fn group_session_encrypt(
        &self,
        gb: &[u8],
        payload: &[u8],
        rng: &mut dyn Source,
    ) -> R<(Bytes, Bytes)> {
        let mut g = group(gb)?;
        let m = on_group(&mut g, &mut [], |g, _| g.encrypt(payload, &mut Rng(rng)))?;
        Ok((g.to_bytes().to_vec(), m.as_bytes().to_vec()))
    }

    fn group_session_decrypt(&self, gb: &[u8], rb: &[u8], msg: &[u8]) -> R<(Bytes, Bytes, Mark)> {
        let mut g = group(gb)?;
        let r = record(rb)?;
        let m = GroupMessage::from_bytes(msg).map_err(e)?;
        match g.decrypt(&r, &m) {
            Ok(pt) => Ok((
                g.to_bytes().to_vec(),
                pt.as_bytes().to_vec(),
                mark(pt.sender()),
            )),
            Err(f) if g.to_bytes().as_slice() == gb => Err(failure(&f)),
            Err(_) => Err(changed()),
        }
    }

    fn group_rotate(
        &self,
        gb: &[u8],
        local: &[u8],
        removed: Option<&[u8]>,
        all: &[Bytes],
        rng: &mut dyn Source,
    ) -> R<(Bytes, Vec<Bytes>, Fanout)> {
        let mut g = group(gb)?;
        let d = device(local)?;
        let removed = removed.map(user).transpose()?;
        let mut rs = records(all)?;
        let f = on_group(&mut g, &mut rs, |g, refs| match &removed {
            Some(u) => g.remove_member(&d, u, refs, &mut Rng(rng)),
            None => g.rotate(&d, refs, &mut Rng(rng)),
        })?;
        Ok((
            g.to_bytes().to_vec(),
            rs.iter().map(rec_bytes).collect(),
            fanout(&f),
        ))
    }

    fn group_after_restore(
        &self,
        gb: &[u8],
        local: &[u8],
        last_generation: u64,
        rng: &mut dyn Source,
    ) -> R<(Bytes, bool)> {
        let mut g = group(gb)?;
        let d = device(local)?;
        let stale = on_group(&mut g, &mut [], |g, _| {
            g.after_restore(&d, last_generation, &mut Rng(rng))
        })?;
        Ok((g.to_bytes().to_vec(), stale))
    }
}
