//! SPEC §16.5: routing, promotion, simultaneous initiation, and the
//! framing check that undoes a decrypt (§16.10), on wire bytes.

use super::*;
use crate::sessions::framing::{KIND_PAYLOAD, KIND_RETRY_REQUEST};
use crate::sessions::{Action, Ignore, RetryHint, RetryLater};
use crate::{Error, Session};

#[test]
fn a_first_message_starts_the_active_session_and_the_reply_answers_it() {
    let mut rng = TestRng::new(1);
    let mut w = world(&mut rng, &[("alice", 1), ("bob", 1)]);
    let (a, b) = (find(&w, "alice", 1), find(&w, "bob", 1));
    let m = send(&mut w, a, b, b"hi", &mut rng);
    assert!(matches!(m, Message::PreKey(_)));
    let got = receive(&mut w, a, b, &m).unwrap();
    assert_eq!(payload(&got), b"hi");
    assert_eq!(got.device(), DeviceId(1));
    assert_eq!(active_base(&w, b, a), active_base(&w, a, b));
    assert!(
        record(&mut w, a, b)
            .device(DeviceId(1))
            .unwrap()
            .awaiting_reply
    );

    let r = send(&mut w, b, a, b"hello", &mut rng);
    assert!(matches!(r, Message::Ratchet(_)));
    assert_eq!(payload(&receive(&mut w, b, a, &r).unwrap()), b"hello");
    assert!(
        !record(&mut w, a, b)
            .device(DeviceId(1))
            .unwrap()
            .awaiting_reply
    );
    // Both records moved: one generation per change.
    assert!(record(&mut w, a, b).generation() >= 3);
}

/// The plaintext inside the session is the frame: the kind byte, then the
/// payload (SPEC §16.10), read with the bare core API.
#[test]
fn the_session_plaintext_is_the_framed_payload() {
    let mut rng = TestRng::new(2);
    let mut w = world(&mut rng, &[("alice", 1), ("bob", 1)]);
    let (a, b) = (find(&w, "alice", 1), find(&w, "bob", 1));
    let m = send(&mut w, a, b, b"payload", &mut rng);
    let mut bob_copy = Device::from_bytes(&w[b].device.to_bytes()).unwrap();
    let Message::PreKey(first) = &m else { panic!() };
    let (_, plaintext) = Session::accept(&mut bob_copy, first).unwrap();
    assert_eq!(
        plaintext.as_bytes(),
        [&[KIND_PAYLOAD][..], b"payload"].concat()
    );
}

#[test]
fn repeated_prekey_messages_reach_one_session_in_any_order() {
    let mut rng = TestRng::new(3);
    let mut w = world(&mut rng, &[("alice", 1), ("bob", 1)]);
    let (a, b) = (find(&w, "alice", 1), find(&w, "bob", 1));
    let m1 = send(&mut w, a, b, b"one", &mut rng);
    let m2 = send(&mut w, a, b, b"two", &mut rng);
    assert!(matches!(m2, Message::PreKey(_)));
    assert_eq!(payload(&receive(&mut w, a, b, &m2).unwrap()), b"two");
    assert_eq!(payload(&receive(&mut w, a, b, &m1).unwrap()), b"one");
    let info = record(&mut w, b, a).device(DeviceId(1)).unwrap();
    assert_eq!(info.archived_sessions, 0);
    // And each exactly once.
    for m in [&m1, &m2] {
        let before = record(&mut w, b, a).to_bytes();
        let f = receive(&mut w, a, b, m).unwrap_err();
        assert_eq!(f.action, Action::Ignore(Ignore::Duplicate));
        assert_eq!(*record(&mut w, b, a).to_bytes(), *before);
    }
}

/// Both start a session before either message arrives: both keep the one
/// with the smaller base key, the other is archived and never promoted.
#[test]
fn simultaneous_initiation_converges_on_the_smaller_base_key() {
    for seed in 10..16 {
        let mut rng = TestRng::new(seed);
        let mut w = world(&mut rng, &[("alice", 1), ("bob", 1)]);
        let (a, b) = (find(&w, "alice", 1), find(&w, "bob", 1));
        let from_a = send(&mut w, a, b, b"a1", &mut rng);
        let from_b = send(&mut w, b, a, b"b1", &mut rng);
        let (base_a, base_b) = (
            active_base(&w, a, b).unwrap(),
            active_base(&w, b, a).unwrap(),
        );
        // A second message of each on its own session, still in flight.
        let late_a = send(&mut w, a, b, b"a2", &mut rng);
        let late_b = send(&mut w, b, a, b"b2", &mut rng);
        assert_eq!(payload(&receive(&mut w, b, a, &from_b).unwrap()), b"b1");
        assert_eq!(payload(&receive(&mut w, a, b, &from_a).unwrap()), b"a1");
        let winner = base_a.min(base_b);
        assert_eq!(active_base(&w, a, b), Some(winner), "seed {seed}");
        assert_eq!(active_base(&w, b, a), Some(winner), "seed {seed}");
        // Late messages on the losing session decrypt without promoting it.
        assert_eq!(payload(&receive(&mut w, b, a, &late_b).unwrap()), b"b2");
        assert_eq!(payload(&receive(&mut w, a, b, &late_a).unwrap()), b"a2");
        assert_eq!(active_base(&w, a, b), Some(winner));
        assert_eq!(active_base(&w, b, a), Some(winner));
        // One round trip on the winner, each way.
        for (x, y) in [(a, b), (b, a), (a, b)] {
            let m = send(&mut w, x, y, b"x", &mut rng);
            assert_eq!(payload(&receive(&mut w, x, y, &m).unwrap()), b"x");
            assert_eq!(active_base(&w, x, y), Some(winner));
            assert_eq!(active_base(&w, y, x), Some(winner));
        }
    }
}

/// A session that decrypts is promoted (Sesame): a new session from the
/// peer becomes active, then a late message on the old one brings it back,
/// and the peer follows within a round trip.
#[test]
fn the_session_that_decrypts_becomes_active() {
    let mut rng = TestRng::new(4);
    let mut w = world(&mut rng, &[("alice", 1), ("bob", 1)]);
    let (a, b) = (find(&w, "alice", 1), find(&w, "bob", 1));
    let m = send(&mut w, a, b, b"1", &mut rng);
    receive(&mut w, a, b, &m).unwrap();
    let r = send(&mut w, b, a, b"2", &mut rng);
    receive(&mut w, b, a, &r).unwrap();
    let old = active_base(&w, a, b).unwrap();
    let late = send(&mut w, a, b, b"late on old", &mut rng);

    // Alice starts over (as after a bundle refresh).
    let bb = bundle(&mut w[b], &mut rng, true);
    let (pa, _) = pair(&mut w, a, b);
    let rec = pa.records.get_mut(&user("bob")).unwrap();
    rec.add_bundle(&pa.device, DeviceId(1), bb, NOW, &mut rng)
        .unwrap();
    let new = active_base(&w, a, b).unwrap();
    assert_ne!(new, old);
    let n = send(&mut w, a, b, b"new", &mut rng);
    receive(&mut w, a, b, &n).unwrap();
    assert_eq!(active_base(&w, b, a), Some(new));
    receive(&mut w, a, b, &late).unwrap();
    assert_eq!(
        active_base(&w, b, a),
        Some(old),
        "the old session decrypted"
    );
    let back = send(&mut w, b, a, b"on old", &mut rng);
    receive(&mut w, b, a, &back).unwrap();
    assert_eq!(active_base(&w, a, b), Some(old), "Alice follows");
}

/// A plaintext that is not a frame is refused and the decrypt undone: the
/// record and the device are exactly as they were (prekey and ratchet
/// message).
#[test]
fn a_malformed_frame_undoes_the_decrypt() {
    let mut rng = TestRng::new(5);
    let mut w = world(&mut rng, &[("alice", 1), ("bob", 1)]);
    let (a, b) = (find(&w, "alice", 1), find(&w, "bob", 1));
    let bb = bundle(&mut w[b], &mut rng, true);
    let (pa, _) = pair(&mut w, a, b);
    let rec = pa.records.get_mut(&user("bob")).unwrap();
    rec.add_bundle(&pa.device, DeviceId(1), bb, NOW, &mut rng)
        .unwrap();
    let raw = |w: &mut Vec<Party>, plaintext: &[u8], rng: &mut TestRng| {
        let rec = record(w, a, b);
        let d = rec.devices.get_mut(&DeviceId(1)).unwrap();
        d.active
            .as_mut()
            .unwrap()
            .session
            .encrypt(rng, plaintext)
            .unwrap()
    };
    let bad: [&[u8]; 4] = [
        b"",
        &[0x09, 1],
        &[KIND_RETRY_REQUEST, 1, 2],
        &[0x02, 0x02, 0x04],
    ];
    for plaintext in bad {
        let m = raw(&mut w, plaintext, &mut rng);
        assert!(matches!(m, Message::PreKey(_)));
        let (rb, db) = (record(&mut w, b, a).to_bytes(), w[b].device.to_bytes());
        let f = receive(&mut w, a, b, &m).unwrap_err();
        assert_eq!(f.action, Action::Ignore(Ignore::Malformed), "{plaintext:?}");
        assert_eq!(f.error, Error::InvalidEncoding);
        assert_eq!(*record(&mut w, b, a).to_bytes(), *rb);
        assert_eq!(*w[b].device.to_bytes(), *db);
    }
    let ok = send(&mut w, a, b, b"fine", &mut rng);
    receive(&mut w, a, b, &ok).unwrap();
    let r = send(&mut w, b, a, b"reply", &mut rng);
    receive(&mut w, b, a, &r).unwrap();
    let m = raw(&mut w, &[0x7f], &mut rng);
    assert!(matches!(m, Message::Ratchet(_)));
    let rb = record(&mut w, b, a).to_bytes();
    let f = receive(&mut w, a, b, &m).unwrap_err();
    assert_eq!(f.action, Action::Ignore(Ignore::Malformed));
    assert_eq!(*record(&mut w, b, a).to_bytes(), *rb);
    // The message is still readable by a decrypt that does not check frames:
    // its key was not consumed.
    let rec = record(&mut w, b, a);
    let d = rec.devices.get_mut(&DeviceId(1)).unwrap();
    assert_eq!(
        d.active
            .as_mut()
            .unwrap()
            .session
            .decrypt(&m)
            .unwrap()
            .as_bytes(),
        [0x7f]
    );
}

#[test]
fn messages_from_devices_the_record_cannot_use_are_kept_for_later() {
    let mut rng = TestRng::new(6);
    let mut w = world(&mut rng, &[("alice", 1), ("bob", 2)]);
    let (a, b1, b2) = (find(&w, "alice", 1), find(&w, "bob", 1), find(&w, "bob", 2));
    let m0 = send(&mut w, b2, a, b"first", &mut rng);
    receive(&mut w, b2, a, &m0).unwrap();
    let m = send(&mut w, b2, a, b"from 2", &mut rng);
    // Alice's record no longer lists device 2 ... then drops it entirely.
    let bob1 = (DeviceId(1), *w[b1].device.identity_key());
    let rec = record(&mut w, a, b2);
    rec.update_devices(&[bob1], NOW).unwrap();
    // Stale: its messages on the sessions it has still decrypt.
    let (pb2, pa) = pair(&mut w, b2, a);
    let got = pa.records.get_mut(&user("bob")).unwrap();
    assert_eq!(
        payload(&got.decrypt(&mut pa.device, DeviceId(2), &m, NOW).unwrap()),
        b"from 2"
    );
    let m2 = pb2
        .records
        .get_mut(&user("alice"))
        .unwrap()
        .encrypt_to(DeviceId(1), b"x", &mut rng);
    let m2 = m2.unwrap();
    got.expire(NOW + crate::sessions::MAX_STALE_DEVICE_AGE);
    let f = got
        .decrypt(&mut pa.device, DeviceId(2), &m2, NOW)
        .unwrap_err();
    assert_eq!(f.action, Action::RetryLater(RetryLater::UnknownDevice));

    // A pending identity change blocks the device both ways.
    let other = Device::generate(&mut rng, NOW).unwrap();
    let m3 = send(&mut w, b1, a, b"x", &mut rng);
    let rec = record(&mut w, a, b1);
    rec.update_devices(&[(DeviceId(1), *other.identity_key())], NOW)
        .unwrap();
    let f = receive(&mut w, b1, a, &m3).unwrap_err();
    assert_eq!(
        f.action,
        Action::RetryLater(RetryLater::IdentityChangePending)
    );
    assert_eq!(f.error, Error::IdentityChangePending);
}

#[test]
fn a_prekey_message_under_another_identity_waits_for_the_device_list() {
    let mut rng = TestRng::new(7);
    let mut w = world(&mut rng, &[("alice", 1), ("bob", 1)]);
    let (a, b) = (find(&w, "alice", 1), find(&w, "bob", 1));
    // Someone claiming to be Alice's device 1 under a key Bob does not trust.
    let imposter = Device::generate(&mut rng, NOW).unwrap();
    let bb = bundle(&mut w[b], &mut rng, false);
    let mut rec = PeerRecord::new(user("bob"), *imposter.identity_key());
    rec.update_devices(&[(DeviceId(1), *w[b].device.identity_key())], NOW)
        .unwrap();
    rec.add_bundle(&imposter, DeviceId(1), bb, NOW, &mut rng)
        .unwrap();
    let m = rec.encrypt_to(DeviceId(1), b"x", &mut rng).unwrap();
    let before = w[b].device.to_bytes();
    let f = receive(&mut w, a, b, &m).unwrap_err();
    assert_eq!(f.action, Action::RetryLater(RetryLater::UnknownIdentity));
    assert_eq!(f.error, Error::IdentityMismatch);
    assert_eq!(*w[b].device.to_bytes(), *before);
}

#[test]
fn the_wrong_local_device_is_refused_and_nothing_changes() {
    let mut rng = TestRng::new(8);
    let mut w = world(&mut rng, &[("alice", 1), ("bob", 1)]);
    let (a, b) = (find(&w, "alice", 1), find(&w, "bob", 1));
    let m = send(&mut w, a, b, b"x", &mut rng);
    let mut stranger = Device::generate(&mut rng, NOW).unwrap();
    let rec = record(&mut w, b, a);
    let f = rec
        .decrypt(&mut stranger, DeviceId(1), &m, NOW)
        .unwrap_err();
    assert_eq!(f.action, Action::Ignore(Ignore::WrongLocalDevice));
    assert_eq!(rec.generation(), 1);
    assert!(RetryHint::for_message(&m).base_key.is_some());
}

/// A device the server listed once and then unlisted is outside the
/// fingerprint (§16.9), so it cannot start a session: its prekey message
/// (as wire bytes) is kept for later, with the record and the local device
/// unchanged, even on its 29th stale day. Listed again, and so counted in
/// the fingerprint, it can.
#[test]
fn a_stale_device_cannot_start_a_session() {
    let mut rng = TestRng::new(9);
    let mut w = world(&mut rng, &[("alice", 1), ("bob", 2)]);
    let (a, b1, b2) = (find(&w, "alice", 1), find(&w, "bob", 1), find(&w, "bob", 2));
    let bob1 = (DeviceId(1), *w[b1].device.identity_key());
    let bob2 = (DeviceId(2), *w[b2].device.identity_key());
    let both = record(&mut w, a, b1).fingerprint().unwrap();
    record(&mut w, a, b1).update_devices(&[bob1], NOW).unwrap();
    let only_bob1 = record(&mut w, a, b1).fingerprint().unwrap();
    assert_ne!(both, only_bob1);
    let sent = send(&mut w, b2, a, b"hidden device", &mut rng);
    let wire = Message::from_bytes(sent.as_bytes()).unwrap();
    assert!(matches!(wire, Message::PreKey(_)));
    let day29 = NOW + 29 * 24 * 3600;
    let pa = &mut w[a];
    let rec = pa.records.get_mut(&user("bob")).unwrap();
    let before = (rec.to_bytes(), crate::SavedState::to_bytes(&pa.device));
    let f = rec
        .decrypt(&mut pa.device, DeviceId(2), &wire, day29)
        .unwrap_err();
    assert_eq!(f.action, Action::RetryLater(RetryLater::UnknownDevice));
    assert_eq!(f.error, Error::UnknownDevice);
    assert_eq!(
        (rec.to_bytes(), crate::SavedState::to_bytes(&pa.device)),
        before
    );
    // Listed again: in the fingerprint, and the message is accepted.
    let c = rec.update_devices(&[bob1, bob2], day29).unwrap();
    assert_eq!(c.relisted, [DeviceId(2)]);
    assert_eq!(rec.fingerprint().unwrap(), both);
    let got = rec
        .decrypt(&mut pa.device, DeviceId(2), &wire, day29)
        .unwrap();
    assert_eq!(payload(&got), b"hidden device");
}
