//! [`LayerApi`] on the reference model (`crate::model::sessions`).

use super::api::{Bytes, Mark, R};
use super::layer::{Decrypted, Installed, LayerApi};
use super::model_api::ModelApi;
use crate::model::Dev;
use crate::model::group::read_message as read_group_message;
use crate::model::keys::{identity_key_bytes, read_bundle, read_identity_key};
use crate::model::rand::Source;
use crate::model::sessions::devices::Changes;
use crate::model::sessions::group::Fanout;
use crate::model::sessions::record::Expired;
use crate::model::sessions::send::{Plan, Sent};
use crate::model::sessions::{Content, Group, Hint, Record, check_user, safety};
use crate::model::wire::read_message;

fn identity(encoded: &[u8]) -> R<[u8; 32]> {
    read_identity_key(encoded).map(|(ik, _)| ik)
}

fn records(all: &[Bytes]) -> R<Vec<Record>> {
    all.iter().map(|r| Record::decode(r)).collect()
}

impl LayerApi for ModelApi {
    fn record_new(&self, user: &[u8], device: &[u8], local_device: Option<u32>) -> R<Bytes> {
        check_user(user)?;
        let d = Dev::decode(device)?;
        Ok(Record::new(user.to_vec(), d.ik, local_device).encode())
    }

    fn update_devices(
        &self,
        record: &[u8],
        list: &[(u32, Bytes)],
        now: u64,
    ) -> R<(Bytes, Changes)> {
        let mut r = Record::decode(record)?;
        let list = list
            .iter()
            .map(|(id, k)| Ok((*id, identity(k)?)))
            .collect::<R<Vec<_>>>()?;
        let ch = r.update_devices(&list, now)?;
        Ok((r.encode(), ch))
    }

    fn acknowledge_identity(&self, record: &[u8], device: u32, id: &[u8]) -> R<Bytes> {
        let mut r = Record::decode(record)?;
        r.acknowledge_identity(device, &identity(id)?)?;
        Ok(r.encode())
    }

    fn allow_classical(&self, record: &[u8], device: u32, allowed: bool) -> R<Bytes> {
        let mut r = Record::decode(record)?;
        r.allow_classical(device, allowed)?;
        Ok(r.encode())
    }

    fn plan_send(&self, record: &[u8], now: u64) -> R<Plan> {
        Ok(Record::decode(record)?.plan_send(now))
    }

    fn add_bundle(
        &self,
        record: &[u8],
        local: &[u8],
        device: u32,
        bundle: &[u8],
        now: u64,
        rng: &mut dyn Source,
    ) -> R<Bytes> {
        let mut r = Record::decode(record)?;
        let d = Dev::decode(local)?;
        let (b, _) = read_bundle(bundle)?;
        r.add_bundle(&d, device, &b, now, rng)?;
        Ok(r.encode())
    }

    fn record_encrypt(
        &self,
        record: &[u8],
        payload: &[u8],
        rng: &mut dyn Source,
    ) -> R<(Bytes, Sent)> {
        let mut r = Record::decode(record)?;
        let sent = r.encrypt(payload, rng)?;
        Ok((r.encode(), sent))
    }

    fn encrypt_to(
        &self,
        record: &[u8],
        device: u32,
        payload: &[u8],
        rng: &mut dyn Source,
    ) -> R<(Bytes, Bytes)> {
        let mut r = Record::decode(record)?;
        let m = r.encrypt_to(device, payload, rng)?;
        Ok((r.encode(), m))
    }

    fn record_decrypt(
        &self,
        record: &[u8],
        local: &[u8],
        from: u32,
        message: &[u8],
        now: u64,
    ) -> R<Decrypted> {
        let mut r = Record::decode(record)?;
        let mut d = Dev::decode(local)?;
        read_message(message)?;
        let content = r
            .decrypt(&mut d, from, message, now)
            .map_err(|f| f.refusal())?;
        Ok((r.encode(), d.encode(), content))
    }

    fn request_retry(
        &self,
        record: &[u8],
        device: u32,
        hint: &Hint,
        now: u64,
        rng: &mut dyn Source,
    ) -> R<(Bytes, Bytes)> {
        let mut r = Record::decode(record)?;
        let m = r.request_retry(device, hint, now, rng)?;
        Ok((r.encode(), m))
    }

    fn start_new_session(
        &self,
        record: &[u8],
        local: &[u8],
        device: u32,
        bundle: &[u8],
        hint: &Hint,
        now: u64,
        rng: &mut dyn Source,
    ) -> R<(Bytes, Bytes)> {
        let mut r = Record::decode(record)?;
        let d = Dev::decode(local)?;
        let (b, _) = read_bundle(bundle)?;
        let m = r.start_new_session(&d, device, &b, hint, now, rng)?;
        Ok((r.encode(), m))
    }

    fn request_distribution(
        &self,
        record: &[u8],
        device: u32,
        group: &[u8; 32],
        rng: &mut dyn Source,
    ) -> R<(Bytes, Bytes)> {
        let mut r = Record::decode(record)?;
        let m = r.request_distribution(device, group, rng)?;
        Ok((r.encode(), m))
    }

    fn expire(&self, record: &[u8], now: u64) -> R<(Bytes, Expired)> {
        let mut r = Record::decode(record)?;
        let ex = r.expire(now);
        Ok((r.encode(), ex))
    }

    fn after_restore(&self, record: &[u8], last_generation: u64) -> R<(Bytes, u64)> {
        let mut r = Record::decode(record)?;
        let n = r.after_restore(last_generation);
        Ok((r.encode(), n as u64))
    }

    fn fingerprint(&self, record: &[u8]) -> R<String> {
        Record::decode(record)?.fingerprint()
    }

    fn safety_number(&self, record: &[u8], own: &[u8]) -> R<String> {
        Record::decode(record)?.safety_number(&Record::decode(own)?)
    }

    fn user_fingerprint(&self, user: &[u8], identities: &[Bytes]) -> R<String> {
        check_user(user)?;
        let keys = identities
            .iter()
            .map(|k| identity(k))
            .collect::<R<Vec<_>>>()?;
        safety::fingerprint(user, &keys)
    }

    fn group_new(
        &self,
        group: &[u8; 32],
        user: &[u8],
        local: &[u8],
        rng: &mut dyn Source,
    ) -> R<Bytes> {
        check_user(user)?;
        let d = Dev::decode(local)?;
        Ok(Group::new(rng, *group, user.to_vec(), &d).encode())
    }

    fn group_add_member(&self, group: &[u8], user: &[u8]) -> R<(Bytes, bool)> {
        let mut g = Group::decode(group)?;
        let added = g.add_member(user)?;
        Ok((g.encode(), added))
    }

    fn group_distribute(
        &self,
        group: &[u8],
        all: &[Bytes],
        rng: &mut dyn Source,
    ) -> R<(Vec<Bytes>, Fanout)> {
        let g = Group::decode(group)?;
        let mut rs = records(all)?;
        let f = g.distribute(&mut rs, rng)?;
        Ok((rs.iter().map(Record::encode).collect(), f))
    }

    fn group_distribute_to(
        &self,
        group: &[u8],
        record: &[u8],
        device: u32,
        rng: &mut dyn Source,
    ) -> R<(Bytes, Bytes)> {
        let g = Group::decode(group)?;
        let mut r = Record::decode(record)?;
        let m = g.distribute_to(&mut r, device, rng)?;
        Ok((r.encode(), m))
    }

    fn group_install(
        &self,
        group: &[u8],
        record: &[u8],
        local: &[u8],
        from: u32,
        message: &[u8],
        now: u64,
        install_record: Option<&[u8]>,
    ) -> R<Installed> {
        let mut g = Group::decode(group)?;
        let mut r = Record::decode(record)?;
        let mut d = Dev::decode(local)?;
        let other = install_record.map(Record::decode).transpose()?;
        read_message(message)?;
        let content: Content = r
            .decrypt(&mut d, from, message, now)
            .map_err(|f| f.refusal())?;
        let installed = g
            .install(other.as_ref().unwrap_or(&r), from, &content)
            .map(|o| (g.encode(), o));
        Ok((r.encode(), d.encode(), content, installed))
    }

    fn group_session_encrypt(
        &self,
        group: &[u8],
        payload: &[u8],
        rng: &mut dyn Source,
    ) -> R<(Bytes, Bytes)> {
        let mut g = Group::decode(group)?;
        let m = g.encrypt(payload, rng)?;
        Ok((g.encode(), m))
    }

    fn group_session_decrypt(
        &self,
        group: &[u8],
        record: &[u8],
        message: &[u8],
    ) -> R<(Bytes, Bytes, Mark)> {
        let r = Record::decode(record)?;
        let mut g = Group::decode(group)?;
        read_group_message(message)?;
        let (pt, owner, authenticated) = g.decrypt(&r, message).map_err(|f| f.refusal())?;
        Ok((g.encode(), pt, (identity_key_bytes(&owner), authenticated)))
    }

    fn group_rotate(
        &self,
        group: &[u8],
        local: &[u8],
        removed: Option<&[u8]>,
        all: &[Bytes],
        rng: &mut dyn Source,
    ) -> R<(Bytes, Vec<Bytes>, Fanout)> {
        let mut g = Group::decode(group)?;
        let d = Dev::decode(local)?;
        if let Some(u) = removed {
            check_user(u)?;
        }
        let mut rs = records(all)?;
        let f = g.rotate_for(&d, removed, &mut rs, rng)?;
        Ok((g.encode(), rs.iter().map(Record::encode).collect(), f))
    }

    fn group_after_restore(
        &self,
        group: &[u8],
        local: &[u8],
        last_generation: u64,
        rng: &mut dyn Source,
    ) -> R<(Bytes, bool)> {
        let mut g = Group::decode(group)?;
        let d = Dev::decode(local)?;
        let stale = g.after_restore(&d, last_generation, rng)?;
        Ok((g.encode(), stale))
    }
}
