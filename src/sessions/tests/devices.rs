//! SPEC §16.2: device lists and identity changes, and the bad lists a
//! server can send.

use super::*;
use crate::Error;
use crate::IdentityKey;
use crate::sessions::{
    LocalListing, MAX_DEVICES_PER_USER, MAX_USER_ID_LEN, SendPlan, UserFingerprint,
};

fn keys(rng: &mut TestRng, n: usize) -> Vec<IdentityKey> {
    (0..n)
        .map(|_| *Device::generate(rng, 0).unwrap().identity_key())
        .collect()
}

fn list(ids: &[u32], keys: &[IdentityKey]) -> Vec<(DeviceId, IdentityKey)> {
    ids.iter()
        .map(|i| (DeviceId(*i), keys[*i as usize]))
        .collect()
}

#[test]
fn user_ids_are_one_to_sixty_four_bytes() {
    assert_eq!(UserId::new(b"").err(), Some(Error::InvalidEncoding));
    assert!(UserId::new(&[0; MAX_USER_ID_LEN]).is_ok());
    assert_eq!(
        UserId::new(&[0; MAX_USER_ID_LEN + 1]).err(),
        Some(Error::InvalidEncoding)
    );
}

#[test]
fn a_list_adds_removes_relists_and_reports_identity_changes() {
    let mut rng = TestRng::new(1);
    let k = keys(&mut rng, 6);
    let mut r = PeerRecord::new(user("bob"), k[0]);
    let c = r.update_devices(&list(&[1, 2, 3], &k), NOW).unwrap();
    assert_eq!(c.added, [DeviceId(1), DeviceId(2), DeviceId(3)]);
    assert_eq!(r.generation(), 1);
    // The same list again changes nothing, not even the generation.
    assert!(
        r.update_devices(&list(&[3, 1, 2], &k), NOW)
            .unwrap()
            .is_empty()
    );
    assert_eq!(r.generation(), 1);

    let c = r.update_devices(&list(&[1, 3], &k), NOW + 5).unwrap();
    assert_eq!(c.removed, [DeviceId(2)]);
    assert_eq!(r.device(DeviceId(2)).unwrap().stale_since, Some(NOW + 5));
    let c = r.update_devices(&list(&[1, 2, 3], &k), NOW + 6).unwrap();
    assert_eq!(c.relisted, [DeviceId(2)]);
    assert_eq!(r.device(DeviceId(2)).unwrap().stale_since, None);

    // Device 3 shows up with key 5: pending, reported with both fingerprints.
    let mut changed = list(&[1, 2], &k);
    changed.push((DeviceId(3), k[5]));
    let c = r.update_devices(&changed, NOW).unwrap();
    assert_eq!(c.identity_changes.len(), 1);
    let ch = c.identity_changes[0];
    assert_eq!(
        (ch.device, ch.old, ch.new),
        (DeviceId(3), k[3].fingerprint(), k[5].fingerprint())
    );
    assert_eq!(
        r.device(DeviceId(3)).unwrap().identity,
        k[3],
        "not trusted silently"
    );
    assert_eq!(r.device(DeviceId(3)).unwrap().pending_identity, Some(k[5]));
    assert_eq!(r.plan_send(NOW).blocked, [DeviceId(3)]);
    // Reported once; the trusted key again withdraws it.
    assert!(r.update_devices(&changed, NOW).unwrap().is_empty());
    let c = r.update_devices(&list(&[1, 2, 3], &k), NOW).unwrap();
    assert_eq!(c.withdrawn, [DeviceId(3)]);
    r.update_devices(&changed, NOW).unwrap();
    assert_eq!(
        r.acknowledge_identity(DeviceId(3), &k[4]),
        Err(Error::IdentityMismatch)
    );
    assert_eq!(
        r.acknowledge_identity(DeviceId(9), &k[5]),
        Err(Error::UnknownDevice)
    );
    r.acknowledge_identity(DeviceId(3), &k[5]).unwrap();
    assert_eq!(r.device(DeviceId(3)).unwrap().identity, k[5]);
    assert_eq!(r.device(DeviceId(3)).unwrap().pending_identity, None);
    assert_eq!(
        r.acknowledge_identity(DeviceId(3), &k[5]),
        Err(Error::IdentityMismatch)
    );
}

#[test]
fn garbage_device_lists_change_nothing() {
    let mut rng = TestRng::new(2);
    let k = keys(&mut rng, MAX_DEVICES_PER_USER + 3);
    let mut r = PeerRecord::new(user("bob"), k[0]);
    r.update_devices(&list(&[1, 2], &k), NOW).unwrap();
    let before = r.to_bytes();
    let too_long: Vec<u32> = (1..=u32::try_from(MAX_DEVICES_PER_USER).unwrap() + 1).collect();
    let dup_id = [(DeviceId(1), k[1]), (DeviceId(1), k[2])];
    let dup_key = [(DeviceId(1), k[1]), (DeviceId(2), k[1])];
    let ours = [(DeviceId(3), k[0])];
    for bad in [
        list(&too_long, &k),
        dup_id.to_vec(),
        dup_key.to_vec(),
        ours.to_vec(),
    ] {
        assert_eq!(r.update_devices(&bad, NOW), Err(Error::InvalidDeviceList));
        assert_eq!(*r.to_bytes(), *before);
    }
    // The empty list is a list: every device goes stale.
    let c = r.update_devices(&[], NOW).unwrap();
    assert_eq!(c.removed, [DeviceId(1), DeviceId(2)]);
    assert_eq!(r.plan_send(NOW), SendPlan::default());
}

/// A server cannot make two listed devices share one trusted key (which
/// would leave the fingerprint and safety number uncomputable): a list that
/// gives a device the trusted key of a device it lists with a new key is
/// refused, whether the key goes to a new device or to a held one whose own
/// change would be acknowledged. A key that moves from a device the list
/// leaves out (a device re-registered under a new id) is accepted.
#[test]
fn a_list_cannot_give_one_trusted_key_to_two_listed_devices() {
    let mut rng = TestRng::new(6);
    let k = keys(&mut rng, 6);
    let mut r = PeerRecord::new(user("bob"), k[0]);
    r.update_devices(&list(&[1, 2], &k), NOW).unwrap();
    let fingerprint = r.fingerprint().unwrap();
    let before = r.to_bytes();
    for bad in [
        [(DeviceId(1), k[5]), (DeviceId(3), k[1])],
        [(DeviceId(1), k[5]), (DeviceId(2), k[1])],
    ] {
        assert_eq!(r.update_devices(&bad, NOW), Err(Error::InvalidDeviceList));
        assert_eq!(*r.to_bytes(), *before);
        assert_eq!(r.fingerprint().unwrap(), fingerprint);
    }
    // Device 1's key on a new device 3, device 1 left out: accepted.
    let c = r
        .update_devices(&[(DeviceId(2), k[2]), (DeviceId(3), k[1])], NOW)
        .unwrap();
    assert_eq!(
        (&c.added[..], &c.removed[..]),
        (&[DeviceId(3)][..], &[DeviceId(1)][..])
    );
    let fingerprint = r.fingerprint().unwrap();
    assert_eq!(
        fingerprint,
        UserFingerprint::new(&user("bob"), &[k[1], k[2]]).unwrap()
    );
}

/// A stale device listed again with another identity is relisted and its
/// change reported; listed again with the identity already pending, it is
/// still relisted: the record changed, so the generation moves (a record
/// that changes under an unchanged generation defeats rollback detection,
/// SPEC §10.1).
#[test]
fn a_stale_device_with_a_new_identity_is_relisted() {
    let mut rng = TestRng::new(6);
    let k = keys(&mut rng, 5);
    let mut r = PeerRecord::new(user("bob"), k[0]);
    r.update_devices(&list(&[1, 2], &k), NOW).unwrap();
    r.update_devices(&list(&[1], &k), NOW + 1).unwrap();
    let changed = [(DeviceId(1), k[1]), (DeviceId(2), k[4])];
    let c = r.update_devices(&changed, NOW + 2).unwrap();
    assert_eq!(c.relisted, [DeviceId(2)]);
    assert_eq!(c.identity_changes.len(), 1);
    // Stale again with the change pending, then listed with the same key.
    r.update_devices(&list(&[1], &k), NOW + 3).unwrap();
    let generation = r.generation();
    let c = r.update_devices(&changed, NOW + 4).unwrap();
    assert_eq!(c.relisted, [DeviceId(2)]);
    assert!(c.identity_changes.is_empty());
    assert_eq!(r.device(DeviceId(2)).unwrap().stale_since, None);
    assert_eq!(r.generation(), generation + 1);
}

/// A record holds at most MAX_DEVICES_PER_USER devices: stale ones make
/// room, oldest first.
#[test]
fn stale_devices_make_room_oldest_first() {
    let mut rng = TestRng::new(3);
    let k = keys(&mut rng, 40);
    let mut r = PeerRecord::new(user("bob"), k[0]);
    let first: Vec<u32> = (1..=16).collect();
    r.update_devices(&list(&first, &k), NOW).unwrap();
    r.update_devices(&list(&first[..8], &k), NOW + 1).unwrap(); // 9..16 stale at +1
    r.update_devices(&list(&first[..4], &k), NOW + 2).unwrap(); // 5..8 stale at +2
    let mut next: Vec<u32> = first[..4].to_vec();
    next.extend(20..30);
    let c = r.update_devices(&list(&next, &k), NOW + 3).unwrap();
    assert_eq!(c.added.len(), 10);
    // 4 listed + 12 stale + 10 new = 26: the 10 oldest stale ones go.
    let deleted: Vec<u32> = c.deleted.iter().map(|d| d.0).collect();
    assert_eq!(deleted, [9, 10, 11, 12, 13, 14, 15, 16, 5, 6]);
    assert_eq!(r.devices().count(), MAX_DEVICES_PER_USER);
}

/// The own record takes the local device out of the list and says how it
/// was listed; a list without it, or with another key for it, is reported.
#[test]
fn the_own_record_watches_the_local_device() {
    let mut rng = TestRng::new(4);
    let k = keys(&mut rng, 4);
    let mut r = PeerRecord::new_own(user("alice"), DeviceId(1), k[1]);
    let c = r.update_devices(&list(&[1, 2, 3], &k), NOW).unwrap();
    assert_eq!(c.local, Some(LocalListing::Listed));
    assert_eq!(c.added, [DeviceId(2), DeviceId(3)]);
    assert!(r.device(DeviceId(1)).is_none());
    let c = r.update_devices(&list(&[2, 3], &k), NOW).unwrap();
    assert_eq!(c.local, Some(LocalListing::Missing));
    let c = r
        .update_devices(&[(DeviceId(1), k[0]), (DeviceId(2), k[2])], NOW)
        .unwrap();
    assert_eq!(
        c.local,
        Some(LocalListing::OtherIdentity(k[0].fingerprint()))
    );
    assert_eq!(c.removed, [DeviceId(3)]);
    // The local identity on another device id is refused.
    assert_eq!(
        r.update_devices(&[(DeviceId(2), k[1])], NOW),
        Err(Error::InvalidDeviceList)
    );
}

/// Acknowledging a change deletes the device's sessions (they belong to the
/// old key) and keeps its post-quantum pin.
#[test]
fn acknowledging_a_change_deletes_the_sessions_and_keeps_the_pin() {
    let mut rng = TestRng::new(5);
    let mut w = world(&mut rng, &[("alice", 1), ("bob", 1)]);
    let (a, b) = (find(&w, "alice", 1), find(&w, "bob", 1));
    let m = send(&mut w, a, b, b"x", &mut rng);
    receive(&mut w, a, b, &m).unwrap();
    let new = *Device::generate(&mut rng, NOW).unwrap().identity_key();
    let rec = record(&mut w, a, b);
    assert!(rec.device(DeviceId(1)).unwrap().post_quantum_pinned);
    rec.update_devices(&[(DeviceId(1), new)], NOW).unwrap();
    assert_eq!(
        rec.encrypt_to(DeviceId(1), b"x", &mut rng),
        Err(Error::IdentityChangePending)
    );
    rec.acknowledge_identity(DeviceId(1), &new).unwrap();
    let info = rec.device(DeviceId(1)).unwrap();
    assert_eq!((info.active_base_key, info.archived_sessions), (None, 0));
    assert!(info.post_quantum_pinned);
    assert_eq!(
        rec.allow_classical(DeviceId(1), true),
        Err(Error::PostQuantumRequired)
    );
    assert_eq!(rec.plan_send(NOW).needs_bundle, [DeviceId(1)]);
}

/// The ids 2..=17 with fresh keys: a list of MAX_DEVICES_PER_USER devices
/// that leaves out every device held before.
fn sixteen_new(rng: &mut TestRng, first: u32) -> Vec<(DeviceId, IdentityKey)> {
    let count = u32::try_from(MAX_DEVICES_PER_USER).unwrap();
    let k = keys(rng, MAX_DEVICES_PER_USER);
    (first..first + count).map(DeviceId).zip(k).collect()
}

/// A server cannot launder an identity change through deletion: a list of
/// sixteen new devices leaves device 1 out, so the room rule deletes it;
/// the next list gives device 1 Mallory's key. The record remembered device
/// 1's identity and pin, so this is an identity change (not an addition),
/// the device stays pinned, and Mallory's prekey message from device 1 (as
/// wire bytes) is kept until the change is acknowledged, nothing changed.
/// Listed again with its own key, a deleted device comes back pinned,
/// without an identity change.
#[test]
fn a_deleted_device_keeps_its_identity_and_pin() {
    let mut rng = TestRng::new(7);
    let mut w = world(&mut rng, &[("alice", 1), ("bob", 1)]);
    let (a, b) = (find(&w, "alice", 1), find(&w, "bob", 1));
    let m = send(&mut w, a, b, b"x", &mut rng);
    receive(&mut w, a, b, &m).unwrap();
    let bob = *w[b].device.identity_key();
    let mut mallory = Device::generate(&mut rng, NOW).unwrap();
    let fresh = sixteen_new(&mut rng, 2);
    let rec = record(&mut w, a, b);
    assert!(rec.device(DeviceId(1)).unwrap().post_quantum_pinned);
    let c = rec.update_devices(&fresh, NOW).unwrap();
    assert_eq!(c.deleted, [DeviceId(1)]);
    assert!(rec.device(DeviceId(1)).is_none());
    let deleted_state = rec.to_bytes();
    let c = rec
        .update_devices(&[(DeviceId(1), *mallory.identity_key())], NOW + 1)
        .unwrap();
    assert!(c.added.is_empty(), "{c:?}");
    assert_eq!(c.identity_changes.len(), 1);
    let ch = c.identity_changes[0];
    assert_eq!(
        (ch.device, ch.old, ch.new),
        (
            DeviceId(1),
            bob.fingerprint(),
            mallory.identity_key().fingerprint()
        )
    );
    let info = rec.device(DeviceId(1)).unwrap();
    assert_eq!(info.identity, bob);
    assert_eq!(info.pending_identity, Some(*mallory.identity_key()));
    assert!(info.post_quantum_pinned);
    assert_eq!(rec.plan_send(NOW + 1).blocked, [DeviceId(1)]);

    // Mallory, as device 1, starts a session: kept for later, nothing changed.
    let alice = w[a].device.identity_key();
    let mut at_mallory = PeerRecord::new(user("alice"), *mallory.identity_key());
    at_mallory
        .update_devices(&[(DeviceId(1), *alice)], NOW)
        .unwrap();
    let ab = bundle(&mut w[a], &mut rng, false);
    at_mallory
        .add_bundle(&mallory, DeviceId(1), ab, NOW, &mut rng)
        .unwrap();
    let sent = at_mallory
        .encrypt_to(DeviceId(1), b"it's bob, new phone", &mut rng)
        .unwrap();
    let wire = Message::from_bytes(sent.as_bytes()).unwrap();
    let pa = &mut w[a];
    let rec = pa.records.get_mut(&user("bob")).unwrap();
    let before = (rec.to_bytes(), crate::SavedState::to_bytes(&pa.device));
    let f = rec
        .decrypt(&mut pa.device, DeviceId(1), &wire, NOW + 2)
        .unwrap_err();
    assert_eq!(
        f.action,
        crate::sessions::Action::RetryLater(crate::sessions::RetryLater::IdentityChangePending)
    );
    assert_eq!(
        (rec.to_bytes(), crate::SavedState::to_bytes(&pa.device)),
        before
    );

    // From the same deleted state, device 1 listed with Bob's own key comes
    // back pinned, relisted, with no identity change.
    let mut again = PeerRecord::from_bytes(&deleted_state).unwrap();
    let c = again
        .update_devices(&[(DeviceId(1), bob)], NOW + 1)
        .unwrap();
    assert_eq!(c.relisted, [DeviceId(1)]);
    assert!(c.added.is_empty() && c.identity_changes.is_empty());
    let info = again.device(DeviceId(1)).unwrap();
    assert!(info.post_quantum_pinned && info.active_base_key.is_none());
    let _ = &mut mallory;
}

/// What a record remembers of deleted devices is bounded: a server that
/// churns device lists to delete more than MAX_DELETED_DEVICES devices
/// within MAX_STALE_DEVICE_AGE gets its list refused (nothing changed), so
/// it cannot make the record forget a device early. Once the age has
/// passed since a device left the list, it is forgotten (by a list that
/// needs the room, or by `expire`), and its id is then a new device.
#[test]
fn the_remembered_devices_are_bounded_and_age() {
    use crate::sessions::{MAX_DELETED_DEVICES, MAX_STALE_DEVICE_AGE};
    let mut rng = TestRng::new(8);
    let k = keys(&mut rng, 3);
    let mut r = PeerRecord::new(user("bob"), k[0]);
    r.update_devices(&[(DeviceId(1), k[1])], NOW).unwrap();
    let first = sixteen_new(&mut rng, 2);
    assert_eq!(
        r.update_devices(&first, NOW).unwrap().deleted,
        [DeviceId(1)]
    );
    let second = sixteen_new(&mut rng, 20);
    assert_eq!(r.update_devices(&second, NOW).unwrap().deleted.len(), 16);
    let third = sixteen_new(&mut rng, 40);
    let before = r.to_bytes();
    assert_eq!(
        r.update_devices(&third, NOW + 1),
        Err(Error::InvalidDeviceList),
        "{} deleted devices to remember",
        MAX_DELETED_DEVICES + 1
    );
    assert_eq!(*r.to_bytes(), *before);
    // Devices 1 to 17 left the list at NOW: at NOW + MAX_STALE_DEVICE_AGE
    // they are forgotten to make room, and the list is taken.
    let later = NOW + MAX_STALE_DEVICE_AGE;
    let c = r.update_devices(&third, later).unwrap();
    assert_eq!(c.deleted.len(), MAX_DEVICES_PER_USER);
    // `expire` forgets the others (20 to 35, left at `later`) once their
    // age has passed.
    let g = r.generation();
    r.expire(later + MAX_STALE_DEVICE_AGE - 1);
    assert_eq!(r.generation(), g);
    r.expire(later + MAX_STALE_DEVICE_AGE);
    assert_eq!(r.generation(), g + 1);
    // Forgotten: device 1 under another key is a new device now.
    let c = r
        .update_devices(&[(DeviceId(1), k[2])], later + MAX_STALE_DEVICE_AGE)
        .unwrap();
    assert_eq!(c.added, [DeviceId(1)]);
}
