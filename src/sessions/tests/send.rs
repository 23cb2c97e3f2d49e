//! SPEC §16.3: planning, bundles, post-quantum pinning and the fan-out
//! that draws all its randomness first.

use super::*;
use crate::sessions::{Action, Ignore, MAX_PAYLOAD_LEN, MAX_UNANSWERED_SESSION_AGE, Unusable};
use crate::testing::fails_cleanly_at_every_draw;
use crate::{Error, KeyAgreement, SignedPreKey};

#[test]
fn the_plan_names_ready_missing_and_blocked_devices() {
    let mut rng = TestRng::new(1);
    let mut w = world(&mut rng, &[("alice", 1), ("bob", 3)]);
    let (a, b1, b3) = (find(&w, "alice", 1), find(&w, "bob", 1), find(&w, "bob", 3));
    send(&mut w, a, b1, b"x", &mut rng);
    let other = *Device::generate(&mut rng, NOW).unwrap().identity_key();
    let k1 = *w[b1].device.identity_key();
    let k2 = *w[find(&w, "bob", 2)].device.identity_key();
    let rec = record(&mut w, a, b1);
    rec.update_devices(
        &[(DeviceId(1), k1), (DeviceId(2), k2), (DeviceId(3), other)],
        NOW,
    )
    .unwrap();
    let plan = rec.plan_send(NOW);
    assert_eq!(plan.ready, [DeviceId(1)]);
    assert_eq!(plan.needs_bundle, [DeviceId(2)]);
    assert_eq!(plan.blocked, [DeviceId(3)]);
    // Our session with device 1 has had no reply: after
    // MAX_UNANSWERED_SESSION_AGE the plan asks for a new bundle.
    let later = rec.plan_send(NOW + MAX_UNANSWERED_SESSION_AGE);
    assert_eq!(later.needs_bundle, [DeviceId(1), DeviceId(2)]);
    assert_eq!(
        rec.plan_send(NOW + MAX_UNANSWERED_SESSION_AGE - 1).ready,
        [DeviceId(1)]
    );
    let _ = b3;
}

#[test]
fn bundles_are_checked_against_the_device() {
    let mut rng = TestRng::new(2);
    let mut w = world(&mut rng, &[("alice", 1), ("bob", 2)]);
    let (a, b1, b2) = (find(&w, "alice", 1), find(&w, "bob", 1), find(&w, "bob", 2));
    let good = bundle(&mut w[b1], &mut rng, false);
    let wrong = bundle(&mut w[b2], &mut rng, false);
    let stranger = Device::generate(&mut rng, NOW).unwrap();
    let mut tampered_sig = *good.signed_prekey().signature();
    tampered_sig[0] ^= 1;
    let tampered = PreKeyBundle::new(
        *good.identity(),
        SignedPreKey::from_parts(
            good.signed_prekey().id(),
            *good.signed_prekey().key(),
            tampered_sig,
        ),
        None,
        good.kem_prekey().cloned(),
    );
    let classical = PreKeyBundle::new(*good.identity(), *good.signed_prekey(), None, None);
    let (pa, _) = pair(&mut w, a, b1);
    let rec = pa.records.get_mut(&user("bob")).unwrap();
    let before = rec.to_bytes();
    let cases = [
        (
            &stranger,
            DeviceId(1),
            good.clone(),
            Error::IdentityMismatch,
        ),
        (&pa.device, DeviceId(7), good.clone(), Error::UnknownDevice),
        (&pa.device, DeviceId(1), wrong, Error::IdentityMismatch),
        (&pa.device, DeviceId(1), tampered, Error::InvalidSignature),
        (
            &pa.device,
            DeviceId(1),
            classical.clone(),
            Error::PostQuantumRequired,
        ),
    ];
    for (local, device, b, error) in cases {
        assert_eq!(rec.add_bundle(local, device, b, NOW, &mut rng), Err(error));
        assert_eq!(*rec.to_bytes(), *before);
    }
    // Classical only when allowed and not pinned; a KEM bundle pins for good.
    rec.allow_classical(DeviceId(1), true).unwrap();
    rec.add_bundle(&pa.device, DeviceId(1), classical.clone(), NOW, &mut rng)
        .unwrap();
    assert!(!rec.device(DeviceId(1)).unwrap().post_quantum_pinned);
    rec.add_bundle(&pa.device, DeviceId(1), good, NOW, &mut rng)
        .unwrap();
    let info = rec.device(DeviceId(1)).unwrap();
    assert!(info.post_quantum_pinned);
    assert_eq!(info.archived_sessions, 1);
    assert_eq!(
        rec.add_bundle(&pa.device, DeviceId(1), classical, NOW, &mut rng),
        Err(Error::PostQuantumRequired)
    );
}

/// A device pinned to PQXDH never accepts a classical prekey message from
/// it, whatever the sender allowed.
#[test]
fn a_pinned_device_refuses_a_classical_initiation() {
    let mut rng = TestRng::new(3);
    let mut w = world(&mut rng, &[("alice", 1), ("bob", 1)]);
    let (a, b) = (find(&w, "alice", 1), find(&w, "bob", 1));
    let m = send(&mut w, a, b, b"pq", &mut rng);
    receive(&mut w, a, b, &m).unwrap();
    assert!(
        record(&mut w, b, a)
            .device(DeviceId(1))
            .unwrap()
            .post_quantum_pinned
    );
    // Alice's record is tricked (a fresh record of hers allows classical).
    let mut fresh = PeerRecord::new(user("bob"), *w[a].device.identity_key());
    fresh
        .update_devices(&[(DeviceId(1), *w[b].device.identity_key())], NOW)
        .unwrap();
    fresh.allow_classical(DeviceId(1), true).unwrap();
    let classical = PreKeyBundle::new(
        *w[b].device.identity_key(),
        w[b].device.signed_prekey(),
        None,
        None,
    );
    fresh
        .add_bundle(&w[a].device, DeviceId(1), classical, NOW, &mut rng)
        .unwrap();
    let m = fresh.encrypt_to(DeviceId(1), b"x3dh", &mut rng).unwrap();
    let f = receive(&mut w, a, b, &m).unwrap_err();
    assert_eq!(f.action, Action::Ignore(Ignore::Downgrade));
    assert_eq!(f.error, Error::PostQuantumRequired);
    // Unpinned and allowed, the same message is accepted, as X3DH.
    let rec = record(&mut w, b, a);
    let mut bytes_rec = PeerRecord::new(user("alice"), *rec.local_identity());
    bytes_rec
        .update_devices(
            &[(DeviceId(1), rec.device(DeviceId(1)).unwrap().identity)],
            NOW,
        )
        .unwrap();
    bytes_rec.allow_classical(DeviceId(1), true).unwrap();
    let got = bytes_rec
        .decrypt(&mut w[b].device, DeviceId(1), &m, NOW)
        .unwrap();
    assert_eq!(payload(&got), b"x3dh");
    let d = bytes_rec.devices.get(&DeviceId(1)).unwrap();
    assert_eq!(
        d.active.as_ref().unwrap().session.key_agreement(),
        KeyAgreement::X3dh
    );
    assert!(!d.pinned);
}

#[test]
fn a_fan_out_reports_every_listed_device_and_draws_first() {
    let mut rng = TestRng::new(4);
    let mut w = world(&mut rng, &[("alice", 1), ("bob", 4)]);
    let a = find(&w, "alice", 1);
    let ids: Vec<usize> = (1..=4).map(|i| find(&w, "bob", i)).collect();
    for &b in &ids[..3] {
        send(&mut w, a, b, b"setup", &mut rng);
    }
    let keys: Vec<_> = ids.iter().map(|&b| *w[b].device.identity_key()).collect();
    let other = *Device::generate(&mut rng, NOW).unwrap().identity_key();
    // 1, 2 have sessions; 3 has one but a pending change; 4 has none; 5 is
    // stale (not even reported).
    let rec = record(&mut w, a, ids[0]);
    rec.update_devices(
        &[
            (DeviceId(1), keys[0]),
            (DeviceId(2), keys[1]),
            (DeviceId(3), other),
            (DeviceId(4), keys[3]),
        ],
        NOW,
    )
    .unwrap();
    let sent = rec.encrypt(b"to all", &mut rng).unwrap();
    let to: Vec<DeviceId> = sent.messages.iter().map(|o| o.device).collect();
    assert_eq!(to, [DeviceId(1), DeviceId(2)]);
    assert_eq!(
        sent.unusable,
        [
            Unusable {
                device: DeviceId(3),
                error: Error::IdentityChangePending
            },
            Unusable {
                device: DeviceId(4),
                error: Error::NoSession
            },
        ]
    );
    for (o, &b) in sent.messages.iter().zip(&ids) {
        assert_eq!(
            payload(&receive(&mut w, a, b, &o.message).unwrap()),
            b"to all"
        );
    }

    // 48 bytes per device with a session, all before anything changes.
    let snapshot = |w: &Vec<Party>| w[a].records[&user("bob")].to_bytes().to_vec();
    let setup = || {
        let mut rng = TestRng::new(4);
        let mut w = world(&mut rng, &[("alice", 1), ("bob", 3)]);
        let a = find(&w, "alice", 1);
        for i in 1..=3 {
            let b = find(&w, "bob", i);
            send(&mut w, a, b, b"setup", &mut rng);
        }
        w
    };
    let draws = fails_cleanly_at_every_draw(setup, snapshot, |w, rng| {
        let a = find(w, "alice", 1);
        record(w, a, a + 1).encrypt(b"x", rng)
    });
    assert_eq!(draws, [48, 48, 48]);
}

#[test]
fn payloads_leave_room_for_the_frame() {
    let mut rng = TestRng::new(5);
    let mut w = world(&mut rng, &[("alice", 1), ("bob", 1)]);
    let (a, b) = (find(&w, "alice", 1), find(&w, "bob", 1));
    send(&mut w, a, b, b"x", &mut rng);
    let rec = record(&mut w, a, b);
    let big = alloc::vec![7u8; MAX_PAYLOAD_LEN + 1];
    assert_eq!(
        rec.encrypt(&big, &mut rng).err(),
        Some(Error::PlaintextTooLarge)
    );
    assert_eq!(
        rec.encrypt_to(DeviceId(1), &big, &mut rng).err(),
        Some(Error::PlaintextTooLarge)
    );
    let m = rec.encrypt_to(DeviceId(1), &big[1..], &mut rng).unwrap();
    assert_eq!(
        payload(&receive(&mut w, a, b, &m).unwrap()).len(),
        MAX_PAYLOAD_LEN
    );
    let rec = record(&mut w, a, b);
    assert_eq!(
        rec.encrypt_to(DeviceId(9), b"x", &mut rng).err(),
        Some(Error::UnknownDevice)
    );
}
