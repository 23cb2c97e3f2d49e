//! Unit tests of the session layer (SPEC.md §16), one file per concept, on
//! a small world of users and devices with a bundle server.

mod devices;
mod groups;
mod receive;
mod recovery;
mod safety;
mod saved;
mod send;

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::{Content, DeviceId, Failure, PeerRecord, Received, UserId};
use crate::testing::TestRng;
use crate::{Device, Message, PreKeyBundle};

/// A clock well past 0, so that saturating subtractions are exercised.
pub(super) const NOW: u64 = 1_700_000_000;

/// One device of a user with its records: one per user of the world, the
/// own record for its own user.
pub(super) struct Party {
    pub(super) user: UserId,
    pub(super) id: DeviceId,
    pub(super) device: Device,
    pub(super) records: BTreeMap<UserId, PeerRecord>,
}

pub(super) fn user(name: &str) -> UserId {
    UserId::new(name.as_bytes()).unwrap()
}

/// Devices for `users` (name, device count), each with a record of every
/// user, fed the full device lists. Device ids are 1, 2, ... per user.
pub(super) fn world(rng: &mut TestRng, users: &[(&str, u32)]) -> Vec<Party> {
    let mut parties = Vec::new();
    for (name, count) in users {
        for i in 1..=*count {
            parties.push(Party {
                user: user(name),
                id: DeviceId(i),
                device: Device::generate(rng, NOW).unwrap(),
                records: BTreeMap::new(),
            });
        }
    }
    let lists: BTreeMap<UserId, Vec<(DeviceId, crate::IdentityKey)>> =
        parties.iter().fold(BTreeMap::new(), |mut m, p| {
            m.entry(p.user.clone())
                .or_insert_with(Vec::new)
                .push((p.id, *p.device.identity_key()));
            m
        });
    for p in &mut parties {
        for (u, list) in &lists {
            let mut record = if *u == p.user {
                PeerRecord::new_own(u.clone(), p.id, *p.device.identity_key())
            } else {
                PeerRecord::new(u.clone(), *p.device.identity_key())
            };
            record.update_devices(list, NOW).unwrap();
            p.records.insert(u.clone(), record);
        }
    }
    parties
}

/// A PQXDH bundle of `p` with its last-resort KEM prekey and, if asked, a
/// new one-time prekey.
pub(super) fn bundle(p: &mut Party, rng: &mut TestRng, one_time: bool) -> PreKeyBundle {
    let opk = if one_time {
        p.device.generate_one_time_prekeys(rng, 1).unwrap().pop()
    } else {
        None
    };
    PreKeyBundle::new(
        *p.device.identity_key(),
        p.device.signed_prekey(),
        opk,
        Some(p.device.last_resort_kem_prekey()),
    )
}

/// Index of the party (user, device).
pub(super) fn find(parties: &[Party], name: &str, id: u32) -> usize {
    parties
        .iter()
        .position(|p| p.user == user(name) && p.id == DeviceId(id))
        .unwrap()
}

/// Two distinct parties, mutably.
pub(super) fn pair(parties: &mut [Party], a: usize, b: usize) -> (&mut Party, &mut Party) {
    assert_ne!(a, b);
    if a < b {
        let (x, y) = parties.split_at_mut(b);
        (&mut x[a], &mut y[0])
    } else {
        let (x, y) = parties.split_at_mut(a);
        (&mut y[0], &mut x[b])
    }
}

/// `from` makes sure it has a session with `to` (fetching `to`'s bundle if
/// the plan asks), then encrypts `payload` for `to` alone.
pub(super) fn send(
    parties: &mut [Party],
    from: usize,
    to: usize,
    payload: &[u8],
    rng: &mut TestRng,
) -> Message {
    let (f, t) = pair(parties, from, to);
    let record = f.records.get_mut(&t.user).unwrap();
    if record.plan_send(NOW).needs_bundle.contains(&t.id) {
        let b = bundle(t, rng, false);
        record.add_bundle(&f.device, t.id, b, NOW, rng).unwrap();
    }
    record.encrypt_to(t.id, payload, rng).unwrap()
}

/// `to` decrypts `message` from `from`.
pub(super) fn receive(
    parties: &mut [Party],
    from: usize,
    to: usize,
    message: &Message,
) -> Result<Received, Failure> {
    let (f, t) = pair(parties, from, to);
    let record = t.records.get_mut(&f.user).unwrap();
    record.decrypt(&mut t.device, f.id, message, NOW)
}

/// The payload bytes of a received message.
pub(super) fn payload(received: &Received) -> Vec<u8> {
    match received.content() {
        Content::Payload(p) => p.to_vec(),
        other => panic!("expected a payload, got {other:?}"),
    }
}

/// The base key of `of`'s active session with `with`.
pub(super) fn active_base(parties: &[Party], of: usize, with: usize) -> Option<[u8; 32]> {
    let w = &parties[with];
    parties[of].records[&w.user]
        .device(w.id)
        .unwrap()
        .active_base_key
}

/// The record of `of` about `with`'s user.
pub(super) fn record(parties: &mut [Party], of: usize, with: usize) -> &mut PeerRecord {
    let u = parties[with].user.clone();
    parties[of].records.get_mut(&u).unwrap()
}
