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

/// Expiry and the unanswered age count the distance from `now` (SPEC
/// §16.1): a clock that goes back a little keeps everything, and times
/// stored under a clock far ahead keep neither a stale device nor an
/// unanswered session for ever.
#[test]
fn a_wrong_clock_keeps_nothing_for_ever() {
    let (mut rng, mut w, a, b) = talking();
    let far = NOW + 100 * 365 * 24 * 3600;
    let bb = bundle(&mut w[b], &mut rng, false);
    let (pa, _) = pair(&mut w, a, b);
    let rec = pa.records.get_mut(&user("bob")).unwrap();
    // A new session under the far clock: unanswered, created far ahead.
    rec.add_bundle(&pa.device, DeviceId(1), bb, far, &mut rng)
        .unwrap();
    assert_eq!(rec.plan_send(far - 10).ready, [DeviceId(1)]);
    assert_eq!(rec.plan_send(NOW + 1).needs_bundle, [DeviceId(1)]);
    // Then a device list under the far clock: device 1 stale since then.
    rec.update_devices(&[], far).unwrap();
    let mut back = PeerRecord::from_bytes(&rec.to_bytes()).unwrap();
    let kept = back.expire(far - 10);
    assert!(kept.devices.is_empty());
    assert_eq!(back.expire(NOW + 1).devices, [DeviceId(1)]);
}

/// The deleted devices a record remembers are saved after its devices, as
/// §16.11 lays them out, and read strictly: ids increasing, never a held
/// device or the local one, a pinned flag of 0 or 1, at most
/// MAX_DELETED_DEVICES.
#[test]
fn remembered_deleted_devices_are_saved_strictly() {
    use crate::sessions::MAX_DELETED_DEVICES;
    let mut rng = TestRng::new(3);
    let keys: Vec<crate::IdentityKey> = (0..20)
        .map(|_| *Device::generate(&mut rng, 0).unwrap().identity_key())
        .collect();
    let sixteen: Vec<(DeviceId, crate::IdentityKey)> =
        (2..18).map(|i| (DeviceId(i), keys[i as usize])).collect();
    for own in [false, true] {
        let mut r = if own {
            PeerRecord::new_own(user("bob"), DeviceId(50), keys[0])
        } else {
            PeerRecord::new(user("bob"), keys[0])
        };
        r.update_devices(&[(DeviceId(1), keys[1])], NOW).unwrap();
        assert_eq!(
            r.update_devices(&sixteen, NOW + 7).unwrap().deleted,
            [DeviceId(1)]
        );
        let bytes = r.to_bytes();
        assert_eq!(*PeerRecord::from_bytes(&bytes).unwrap().to_bytes(), *bytes);
        // count || id || identity || pinned || left, at the end.
        let at = bytes.len() - 46;
        assert_eq!(bytes[at], 1);
        assert_eq!(bytes[at + 1..at + 5], 1u32.to_be_bytes());
        assert_eq!(bytes[at + 5..at + 37], *keys[1].as_bytes());
        assert_eq!(bytes[at + 37], 0, "not pinned");
        assert_eq!(bytes[at + 38..], (NOW + 7).to_be_bytes());
        let bad = |edit: &dyn Fn(&mut Vec<u8>)| {
            let mut v = bytes.to_vec();
            edit(&mut v);
            PeerRecord::from_bytes(&v).err()
        };
        assert_eq!(bad(&|v| v[at + 37] = 2), Some(Error::InvalidEncoding));
        assert_eq!(
            bad(&|v| v[at + 1..at + 5].copy_from_slice(&2u32.to_be_bytes())),
            Some(Error::InvalidEncoding),
            "a held device"
        );
        if own {
            assert_eq!(
                bad(&|v| v[at + 1..at + 5].copy_from_slice(&50u32.to_be_bytes())),
                Some(Error::InvalidEncoding),
                "the local device"
            );
        }
        assert_eq!(
            bad(&|v| v[at] = u8::try_from(MAX_DELETED_DEVICES + 1).unwrap()),
            Some(Error::InvalidEncoding)
        );
        assert_eq!(
            bad(&|v| {
                v[at] = 2;
                let entry = v[at + 1..].to_vec();
                v.extend_from_slice(&entry);
            }),
            Some(Error::InvalidEncoding),
            "ids not increasing"
        );
        assert_eq!(bad(&|v| v.truncate(v.len() - 1)), Some(Error::Truncated));
    }
}

/// A session is only ever marked as lost to a smaller base key (SPEC
/// §16.5), and a saved record whose mark is not smaller than the marked
/// session's own base key is refused.
#[test]
fn a_lost_to_mark_must_name_a_smaller_base_key() {
    let (mut rng, mut w, a, b) = talking();
    let bb = bundle(&mut w[b], &mut rng, false);
    let (pa, _) = pair(&mut w, a, b);
    let rec = pa.records.get_mut(&user("bob")).unwrap();
    rec.add_bundle(&pa.device, DeviceId(1), bb, NOW, &mut rng)
        .unwrap();
    let d = rec.devices.get_mut(&DeviceId(1)).unwrap();
    let own = d.archived[0].session.base_key_bytes();
    let mut smaller = own;
    let last = smaller.iter().rposition(|b| *b > 0).unwrap();
    smaller[last] -= 1;
    for (mark, ok) in [(smaller, true), (own, false), ([0xff; 32], false)] {
        let d = rec.devices.get_mut(&DeviceId(1)).unwrap();
        d.archived[0].lost_to = Some(mark);
        let bytes = rec.to_bytes();
        assert_eq!(
            PeerRecord::from_bytes(&bytes).is_ok(),
            ok,
            "{:?}",
            PeerRecord::from_bytes(&bytes).err()
        );
        if !ok {
            assert_eq!(
                PeerRecord::from_bytes(&bytes).err(),
                Some(Error::InvalidEncoding)
            );
        }
    }
}
