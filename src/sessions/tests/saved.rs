//! SPEC §16.11: the record's saved form (type 0x25), read by hand from the
//! bytes, strict in every rule, sealable with a context; and §16.7 expiry.

use super::*;
use crate::sessions::{MAX_ARCHIVED_SESSION_AGE, MAX_DEVICES_PER_USER, MAX_STALE_DEVICE_AGE};
use crate::{Error, SavedState, StorageKey};

/// Offsets of one device entry's fields in a record with one device, walked
/// from the layout of §16.11.
struct Layout {
    device_id: usize,
    pending_flag: usize,
    flags: usize,
    retry_count: usize,
    active_flag: usize,
    active_lost: usize,
    active_len: usize,
    archived_count: usize,
}

fn walk(bytes: &[u8]) -> Layout {
    assert_eq!(&bytes[..2], [2, 0x25]);
    let user_len = usize::from(bytes[42]);
    let mut at = 43 + user_len;
    at += if bytes[at] == 1 { 5 } else { 1 }; // local device
    assert_eq!(bytes[at], 1, "one device");
    let device_id = at + 1;
    let pending_flag = device_id + 4 + 32;
    assert_eq!(bytes[pending_flag], 0);
    let stale = pending_flag + 1;
    assert_eq!(bytes[stale], 0);
    let flags = stale + 1;
    let recovery = flags + 1;
    assert_eq!(bytes[recovery], 0);
    let retry_count = recovery + 1 + 8;
    let outstanding = retry_count + 1;
    assert_eq!(bytes[outstanding], 0);
    let active_flag = outstanding + 1;
    assert_eq!(bytes[active_flag], 1);
    let entry = active_flag + 1;
    let ld = entry + 8;
    let active_lost = ld + if bytes[ld] == 1 { 9 } else { 1 };
    let active_len = active_lost + 1;
    let len = u32::from_be_bytes(bytes[active_len..active_len + 4].try_into().unwrap());
    let archived_count = active_len + 4 + len as usize;
    assert_eq!(
        &bytes[active_len + 4..active_len + 6],
        [2, 0x20],
        "a whole session state"
    );
    Layout {
        device_id,
        pending_flag,
        flags,
        retry_count,
        active_flag,
        active_lost,
        active_len,
        archived_count,
    }
}

fn talking() -> (TestRng, Vec<Party>, usize, usize) {
    let mut rng = TestRng::new(1);
    let mut w = world(&mut rng, &[("alice", 1), ("bob", 1)]);
    let (a, b) = (find(&w, "alice", 1), find(&w, "bob", 1));
    let m = send(&mut w, a, b, b"hi", &mut rng);
    receive(&mut w, a, b, &m).unwrap();
    (rng, w, a, b)
}

#[test]
fn a_record_saves_restores_and_seals_under_its_context() {
    let (mut rng, mut w, a, b) = talking();
    let rec = record(&mut w, b, a);
    let bytes = rec.to_bytes();
    assert_eq!(bytes.capacity(), bytes.len());
    assert_eq!(
        u64::from_be_bytes(bytes[2..10].try_into().unwrap()),
        rec.generation()
    );
    assert_eq!(&bytes[10..42], rec.local_identity().as_bytes());
    assert_eq!(&bytes[42..49], b"\x05alice\x00");
    let back = PeerRecord::from_bytes(&bytes).unwrap();
    assert_eq!(*back.to_bytes(), *bytes);
    let key = StorageKey::from_bytes([7; 32]);
    let sealed = rec.seal(&key, b"record/alice", &mut rng).unwrap();
    assert_eq!(&sealed[..3], [2, 0x30, 0x25]);
    assert_eq!(
        *PeerRecord::unseal(&sealed, &key, b"record/alice")
            .unwrap()
            .to_bytes(),
        *bytes
    );
    assert_eq!(
        PeerRecord::unseal(&sealed, &key, b"record/bob").err(),
        Some(Error::AuthenticationFailed)
    );
    assert_eq!(<PeerRecord as SavedState>::TYPE_TAG, 0x25);
    // The restored record goes on where the original was.
    let mut back = back;
    let m = send(&mut w, a, b, b"again", &mut rng);
    let got = back
        .decrypt(&mut w[b].device, DeviceId(1), &m, NOW)
        .unwrap();
    assert_eq!(payload(&got), b"again");
}

#[test]
fn every_rule_of_the_layout_is_checked() {
    let (_, mut w, a, b) = talking();
    let good = record(&mut w, b, a).to_bytes().to_vec();
    let l = walk(&good);
    let parse = |bytes: &[u8]| PeerRecord::from_bytes(bytes).err();
    let with = |at: usize, value: u8| {
        let mut v = good.clone();
        v[at] = value;
        v
    };
    assert_eq!(parse(&good), None);
    assert_eq!(
        parse(&with(42, 0)),
        Some(Error::InvalidEncoding),
        "empty user id"
    );
    assert_eq!(
        parse(&with(42, 65)),
        Some(Error::InvalidEncoding),
        "user id too long"
    );
    assert_eq!(
        parse(&with(48, 2)),
        Some(Error::InvalidEncoding),
        "local-device flag"
    );
    assert_eq!(
        parse(&with(49, u8::try_from(MAX_DEVICES_PER_USER).unwrap() + 1)),
        Some(Error::InvalidEncoding),
        "device count"
    );
    assert_eq!(
        parse(&with(l.pending_flag, 2)),
        Some(Error::InvalidEncoding)
    );
    for flags in [0x04, 0x03, 0x80] {
        assert_eq!(
            parse(&with(l.flags, flags)),
            Some(Error::InvalidEncoding),
            "{flags}"
        );
    }
    assert_eq!(parse(&with(l.retry_count, 9)), Some(Error::InvalidEncoding));
    assert_eq!(
        parse(&with(l.active_lost, 1)),
        Some(Error::InvalidEncoding),
        "flagged active"
    );
    assert_eq!(parse(&with(l.active_lost, 2)), Some(Error::InvalidEncoding));
    assert_eq!(
        parse(&with(l.archived_count, 5)),
        Some(Error::InvalidEncoding)
    );
    // Unpinned with a PQXDH session (checked after the whole record).
    assert_eq!(parse(&with(l.flags, 0)), Some(Error::InvalidEncoding));
    // The pending identity may not be the trusted one.
    let mut v = good.clone();
    v[l.pending_flag] = 1;
    let identity = v[l.device_id + 4..l.device_id + 36].to_vec();
    v.splice(l.pending_flag + 1..l.pending_flag + 1, identity);
    assert_eq!(parse(&v), Some(Error::InvalidEncoding));
    // The session's length must be exactly its own: one more byte is its
    // trailing byte; one less, its truncation.
    let len_at = l.active_len + 3;
    assert_eq!(
        parse(&with(len_at, good[len_at] + 1)),
        Some(Error::TrailingBytes)
    );
    assert_eq!(
        parse(&with(len_at, good[len_at] - 1)),
        Some(Error::Truncated)
    );
    assert_eq!(
        parse(&[&good[..], &[0]].concat()),
        Some(Error::TrailingBytes)
    );
    assert_eq!(parse(&good[..good.len() - 1]), Some(Error::Truncated));
    assert_eq!(
        parse(&with(1, 0x20)),
        Some(Error::WrongType {
            expected: 0x25,
            found: 0x20
        })
    );
    assert_eq!(
        parse(&with(0, 1)),
        Some(Error::UnsupportedVersion { found: 1 })
    );
    let _ = l.active_flag;
}

/// The rules that relate a session to its record: its identities, and one
/// base key per session of a device.
#[test]
fn sessions_must_belong_to_their_device() {
    let (mut rng, mut w, a, b) = talking();
    let c = w.len();
    w.extend(world(&mut rng, &[("carol", 1)]));
    // Carol's session with Alice, placed under Bob's device in Alice's record.
    let m = {
        let (pc, pa) = pair(&mut w, c, a);
        let bb = bundle(pa, &mut rng, false);
        let mut rec = PeerRecord::new(user("alice"), *pc.device.identity_key());
        rec.update_devices(&[(DeviceId(1), *pa.device.identity_key())], NOW)
            .unwrap();
        rec.add_bundle(&pc.device, DeviceId(1), bb, NOW, &mut rng)
            .unwrap();
        rec.encrypt_to(DeviceId(1), b"x", &mut rng).unwrap()
    };
    let Message::PreKey(p) = &m else { panic!() };
    let (carol, _) = crate::Session::accept(&mut w[a].device, p).unwrap();
    let rec = record(&mut w, a, b);
    let d = rec.devices.get_mut(&DeviceId(1)).unwrap();
    d.archive(super::super::record::SessionEntry::new(carol, NOW));
    assert_eq!(
        PeerRecord::from_bytes(&rec.to_bytes()).err(),
        Some(Error::InvalidEncoding)
    );
    let d = rec.devices.get_mut(&DeviceId(1)).unwrap();
    d.archived.clear();
    // Two sessions with one base key.
    let copy = crate::Session::from_bytes(&d.active.as_ref().unwrap().session.to_bytes()).unwrap();
    d.archive(super::super::record::SessionEntry::new(copy, NOW));
    assert_eq!(
        PeerRecord::from_bytes(&rec.to_bytes()).err(),
        Some(Error::InvalidEncoding)
    );
}

#[test]
fn old_archived_sessions_and_stale_devices_expire() {
    let (mut rng, mut w, a, b) = talking();
    let bb = bundle(&mut w[b], &mut rng, false);
    let (pa, pb) = pair(&mut w, a, b);
    let rec = pa.records.get_mut(&user("bob")).unwrap();
    rec.add_bundle(&pa.device, DeviceId(1), bb, NOW + 10, &mut rng)
        .unwrap();
    assert_eq!(rec.device(DeviceId(1)).unwrap().archived_sessions, 1);
    let g = rec.generation();
    // The archived session was created at NOW and never decrypted.
    assert_eq!(rec.expire(NOW + MAX_ARCHIVED_SESSION_AGE - 1).sessions, 0);
    assert_eq!(rec.generation(), g);
    assert_eq!(rec.expire(NOW + MAX_ARCHIVED_SESSION_AGE).sessions, 1);
    assert_eq!(rec.generation(), g + 1);
    // Active sessions never expire; stale devices do.
    assert!(rec.expire(u64::MAX).devices.is_empty());
    assert!(rec.device(DeviceId(1)).unwrap().active_base_key.is_some());
    rec.update_devices(&[], NOW + 20).unwrap();
    assert!(
        rec.expire(NOW + 20 + MAX_STALE_DEVICE_AGE - 1)
            .devices
            .is_empty()
    );
    assert_eq!(
        rec.expire(NOW + 20 + MAX_STALE_DEVICE_AGE).devices,
        [DeviceId(1)]
    );
    let _ = pb;
}

/// A record restored from an older copy forgets its sessions only if the
/// copy is older than what the application recorded.
#[test]
fn after_restore_deletes_sessions_only_of_a_stale_copy() {
    let (_, mut w, a, b) = talking();
    let rec = record(&mut w, b, a);
    let g = rec.generation();
    assert_eq!(rec.after_restore(g), 0);
    assert_eq!(rec.generation(), g + 1);
    assert!(rec.device(DeviceId(1)).unwrap().active_base_key.is_some());
    assert_eq!(rec.after_restore(g + 5), 1);
    assert_eq!(rec.generation(), g + 6);
    assert!(rec.device(DeviceId(1)).unwrap().active_base_key.is_none());
}
