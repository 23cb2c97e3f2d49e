//! SPEC §16.6: every failure maps to one action; recoveries bring the pair
//! back to a working session; rate limits bound what forged messages cost.

use super::*;
use crate::sessions::framing::KIND_RETRY_REQUEST;
use crate::sessions::{
    Action, Ignore, MAX_RETRY_REQUESTS_PER_INTERVAL, MIN_RECOVERY_INTERVAL, RetryHint, RetryLater,
};
use crate::{Error, RatchetMessage};

/// Alice and Bob, one device each, with a session both have answered.
fn talking(seed: u8) -> (TestRng, Vec<Party>, usize, usize) {
    let mut rng = TestRng::new(seed);
    let mut w = world(&mut rng, &[("alice", 1), ("bob", 1)]);
    let (a, b) = (find(&w, "alice", 1), find(&w, "bob", 1));
    let m = send(&mut w, a, b, b"hi", &mut rng);
    receive(&mut w, a, b, &m).unwrap();
    let r = send(&mut w, b, a, b"hi back", &mut rng);
    receive(&mut w, b, a, &r).unwrap();
    (rng, w, a, b)
}

/// Carries out `failure`'s action as an application would, on `at` (the
/// receiver of the failed message from `peer`), returning what it sends.
fn act(
    w: &mut [Party],
    at: usize,
    peer: usize,
    failure: &Failure,
    rng: &mut TestRng,
) -> Option<Message> {
    match failure.action {
        Action::RequestRetry(hint) => {
            let id = w[peer].id;
            Some(
                record(w, at, peer)
                    .request_retry(id, &hint, NOW, rng)
                    .unwrap(),
            )
        }
        Action::StartNewSession(hint) => {
            let b = bundle(&mut w[peer], rng, true);
            let (p, q) = pair(w, at, peer);
            let rec = p.records.get_mut(&q.user).unwrap();
            Some(
                rec.start_new_session(&p.device, q.id, b, &hint, NOW, rng)
                    .unwrap(),
            )
        }
        _ => None,
    }
}

/// A rollback across a ratchet-key draw (§11) gives `SessionDiverged` on
/// a key no session knows. Alice first asks over her session; Bob cannot
/// read that either and asks back; Alice, whose question got no answer,
/// starts a new session that asks again for the first lost message; Bob
/// resends it, and both end on the new session.
#[test]
fn a_rollback_is_answered_by_a_new_session_and_a_resend() {
    let (mut rng, mut w, a, b) = talking(1);
    let m = send(&mut w, a, b, b"m1", &mut rng);
    receive(&mut w, a, b, &m).unwrap();
    let backup = record(&mut w, b, a).to_bytes();
    let r1 = send(&mut w, b, a, b"r1", &mut rng);
    receive(&mut w, b, a, &r1).unwrap();
    // Bob's record rolls back (the application did not notice) and he
    // writes on a new ratchet key.
    *record(&mut w, b, a) = PeerRecord::from_bytes(&backup).unwrap();
    let r2 = send(&mut w, b, a, b"r2", &mut rng);
    let before = record(&mut w, a, b).to_bytes();
    let f = receive(&mut w, b, a, &r2).unwrap_err();
    assert_eq!(f.error, Error::SessionDiverged);
    let Action::RequestRetry(hint) = f.action else {
        panic!("{f:?}")
    };
    assert!(hint.matches(&r2));
    assert_eq!(
        *record(&mut w, a, b).to_bytes(),
        *before,
        "a failure changes nothing"
    );
    let ask = act(&mut w, a, b, &f, &mut rng).unwrap();
    let f = receive(&mut w, a, b, &ask).unwrap_err();
    assert!(matches!(f.action, Action::RequestRetry(_)), "{f:?}");
    let ask_back = act(&mut w, b, a, &f, &mut rng).unwrap();
    let f = receive(&mut w, b, a, &ask_back).unwrap_err();
    assert_eq!(
        f.action,
        Action::StartNewSession(hint),
        "escalates, asking for r2"
    );

    let fix = act(&mut w, a, b, &f, &mut rng).unwrap();
    let got = receive(&mut w, a, b, &fix).unwrap();
    let Content::RetryRequest(asked) = got.content() else {
        panic!()
    };
    assert_eq!(*asked, hint);
    assert_eq!(active_base(&w, a, b), active_base(&w, b, a));
    // Bob resends what the hint names.
    let again = record(&mut w, b, a)
        .encrypt_to(DeviceId(1), b"r2", &mut rng)
        .unwrap();
    assert_eq!(payload(&receive(&mut w, b, a, &again).unwrap()), b"r2");
    let m = send(&mut w, a, b, b"after", &mut rng);
    assert_eq!(payload(&receive(&mut w, a, b, &m).unwrap()), b"after");

    // Forged messages now cost at most retry requests: the new session is
    // answered, a second new session within the interval is refused.
    let mut rng2 = TestRng::new(99);
    for _ in 0..3 {
        let forged = forged_ratchet(&mut rng2);
        let f = receive(&mut w, b, a, &forged).unwrap_err();
        match f.action {
            Action::RequestRetry(_) => {
                act(&mut w, a, b, &f, &mut rng).unwrap();
            }
            other => assert_eq!(other, Action::Ignore(Ignore::RecoveryPending)),
        }
    }
}

/// A ratchet message with a random key and no valid tag, as anyone can
/// make.
fn forged_ratchet(rng: &mut TestRng) -> Message {
    let mut key = [0u8; 32];
    rand_core::TryRng::try_fill_bytes(rng, &mut key).unwrap();
    key[31] &= 0x7f;
    forged_on(key, 0, 1)
}

/// Forged messages can make the victim send a bounded number of retry
/// requests and start at most one new session per interval, and never
/// delete a session: the working session stays, still decrypts, and is
/// promoted back when the peer writes on it.
#[test]
fn forged_messages_never_cost_a_working_session() {
    let (mut rng, mut w, a, b) = talking(2);
    let old = active_base(&w, a, b).unwrap();
    let in_flight = send(&mut w, b, a, b"on the old session", &mut rng);
    let mut sent = Vec::new();
    let (mut retries, mut new_sessions) = (0, 0);
    for _ in 0..40 {
        let forged = forged_ratchet(&mut rng);
        let before = record(&mut w, a, b).to_bytes();
        let f = receive(&mut w, b, a, &forged).unwrap_err();
        assert_eq!(*record(&mut w, a, b).to_bytes(), *before);
        match f.action {
            Action::RequestRetry(_) => retries += 1,
            Action::StartNewSession(_) => new_sessions += 1,
            other => assert_eq!(other, Action::Ignore(Ignore::RecoveryPending)),
        }
        sent.extend(act(&mut w, a, b, &f, &mut rng));
    }
    assert_eq!(new_sessions, 1);
    assert_eq!(retries, usize::from(MAX_RETRY_REQUESTS_PER_INTERVAL));
    assert_ne!(active_base(&w, a, b), Some(old));
    let b_user = w[b].user.clone();
    let bundle_b = bundle(&mut w[b], &mut rng, false);
    let (pa, _) = pair(&mut w, a, b);
    let rec = pa.records.get_mut(&b_user).unwrap();
    let hint = RetryHint::for_message(&in_flight);
    assert_eq!(
        rec.start_new_session(&pa.device, DeviceId(1), bundle_b, &hint, NOW, &mut rng)
            .unwrap_err(),
        Error::RecoveryRateLimited
    );
    // Bob's message on the old session still decrypts and brings it back.
    assert_eq!(
        payload(&receive(&mut w, b, a, &in_flight).unwrap()),
        b"on the old session"
    );
    assert_eq!(active_base(&w, a, b), Some(old));
    // Bob then gets what Alice sent and they settle within a round trip.
    for m in &sent {
        let _ = receive(&mut w, a, b, m);
    }
    let x = send(&mut w, b, a, b"x", &mut rng);
    receive(&mut w, b, a, &x).unwrap();
    let y = send(&mut w, a, b, b"y", &mut rng);
    assert_eq!(payload(&receive(&mut w, a, b, &y).unwrap()), b"y");
    assert_eq!(active_base(&w, a, b), active_base(&w, b, a));
}

/// A message on a known chain that does not authenticate asks for a retry,
/// at most MAX_RETRY_REQUESTS_PER_INTERVAL times per interval; the window
/// opens again after MIN_RECOVERY_INTERVAL (and not if the clock goes back
/// by less than that).
#[test]
fn retry_requests_are_budgeted_per_interval() {
    let (mut rng, mut w, a, b) = talking(3);
    let real = send(&mut w, b, a, b"real", &mut rng);
    let Message::Ratchet(r) = &real else { panic!() };
    let mut bytes = r.as_bytes().to_vec();
    *bytes.last_mut().unwrap() ^= 1;
    let tampered = Message::Ratchet(RatchetMessage::from_vec(bytes).unwrap());
    let id = w[b].id;
    for i in 0..=MAX_RETRY_REQUESTS_PER_INTERVAL {
        let f = receive(&mut w, b, a, &tampered).unwrap_err();
        assert_eq!(f.error, Error::AuthenticationFailed);
        if i < MAX_RETRY_REQUESTS_PER_INTERVAL {
            let Action::RequestRetry(hint) = f.action else {
                panic!("{f:?}")
            };
            assert!(hint.matches(&real));
            record(&mut w, a, b)
                .request_retry(id, &hint, NOW, &mut rng)
                .unwrap();
        } else {
            assert_eq!(f.action, Action::Ignore(Ignore::RecoveryPending));
            let hint = RetryHint::for_message(&real);
            assert_eq!(
                record(&mut w, a, b)
                    .request_retry(id, &hint, NOW, &mut rng)
                    .unwrap_err(),
                Error::RecoveryRateLimited
            );
            assert_eq!(
                record(&mut w, a, b)
                    .request_retry(id, &hint, NOW - 1, &mut rng)
                    .unwrap_err(),
                Error::RecoveryRateLimited
            );
            record(&mut w, a, b)
                .request_retry(id, &hint, NOW + MIN_RECOVERY_INTERVAL, &mut rng)
                .unwrap();
        }
    }
    // The real message still decrypts.
    assert_eq!(payload(&receive(&mut w, b, a, &real).unwrap()), b"real");
}

/// A peer floods retry requests (made directly with its session, past its
/// own layer's budget): each is one decrypt, reported, and the record does
/// not grow.
#[test]
fn a_retry_request_flood_is_bounded_work_without_state_growth() {
    let (mut rng, mut w, a, b) = talking(4);
    let body = crate::sessions::framing::retry_body(&RetryHint {
        ratchet_key: [9; 32],
        message_number: 7,
        base_key: active_base(&w, a, b),
    });
    let mut sizes = Vec::new();
    for i in 0..300 {
        let m = {
            let rec = record(&mut w, b, a);
            let d = rec.devices.get_mut(&DeviceId(1)).unwrap();
            let s = &mut d.active.as_mut().unwrap().session;
            s.encrypt_framed(&mut rng, KIND_RETRY_REQUEST, &body)
                .unwrap()
        };
        let got = receive(&mut w, b, a, &m).unwrap();
        assert!(matches!(got.content(), Content::RetryRequest(_)));
        if i % 100 == 99 {
            sizes.push(record(&mut w, a, b).to_bytes().len());
        }
    }
    assert!(sizes.windows(2).all(|s| s[0] == s[1]), "{sizes:?}");
    let info = record(&mut w, a, b).device(DeviceId(1)).unwrap();
    assert_eq!(info.archived_sessions, 0);
}

/// After a restore the record's sessions are gone (§16.7): the peer's old
/// messages can never decrypt twice, and the first one that fails starts
/// the recovery that brings the pair back.
#[test]
fn a_restored_record_forgets_its_sessions_and_recovers() {
    let (mut rng, mut w, a, b) = talking(5);
    let backup = record(&mut w, b, a).to_bytes();
    let m1 = send(&mut w, a, b, b"m1", &mut rng);
    receive(&mut w, a, b, &m1).unwrap();
    let recorded = record(&mut w, b, a).generation();
    *record(&mut w, b, a) = PeerRecord::from_bytes(&backup).unwrap();
    assert_eq!(record(&mut w, b, a).after_restore(recorded), 1);
    assert_eq!(record(&mut w, b, a).generation(), recorded + 1);
    // m1 again (a duplicate in the network): not decrypted a second time.
    let f = receive(&mut w, a, b, &m1).unwrap_err();
    let Action::StartNewSession(_) = f.action else {
        panic!("{f:?}")
    };
    let fix = act(&mut w, b, a, &f, &mut rng).unwrap();
    let got = receive(&mut w, b, a, &fix).unwrap();
    assert!(matches!(got.content(), Content::RetryRequest(h) if h.matches(&m1)));
    let m2 = send(&mut w, a, b, b"m2", &mut rng);
    assert_eq!(payload(&receive(&mut w, a, b, &m2).unwrap()), b"m2");
    assert_eq!(active_base(&w, a, b), active_base(&w, b, a));
}

/// A device off the list (stale) cannot be given a new session (§16.3:
/// nothing is sent to it), so a failure that calls for one says to ask the
/// server again and keep the message: once the device is listed again, the
/// same message starts the recovery. (Found by the session-layer
/// simulation: a server that left a device out of one list made the layer
/// ask for a new session that `start_new_session` then refused.)
#[test]
fn a_stale_device_is_listed_again_before_a_new_session() {
    let (mut rng, mut w, a, b) = talking(6);
    let backup = record(&mut w, b, a).to_bytes();
    let m1 = send(&mut w, a, b, b"m1", &mut rng);
    receive(&mut w, a, b, &m1).unwrap();
    let recorded = record(&mut w, b, a).generation();
    *record(&mut w, b, a) = PeerRecord::from_bytes(&backup).unwrap();
    record(&mut w, b, a).after_restore(recorded);
    // One list without Alice's device: it is stale at Bob.
    let listed = [(w[a].id, *w[a].device.identity_key())];
    let changes = record(&mut w, b, a).update_devices(&[], NOW).unwrap();
    assert_eq!(changes.removed, [w[a].id]);
    let m2 = send(&mut w, a, b, b"m2", &mut rng);
    let before = record(&mut w, b, a).to_bytes();
    let f = receive(&mut w, a, b, &m2).unwrap_err();
    assert_eq!(f.action, Action::RetryLater(RetryLater::UnknownDevice));
    assert_eq!(f.error, Error::UnknownDevice);
    assert_eq!(*record(&mut w, b, a).to_bytes(), *before);
    // What a new session would meet.
    let bundle = bundle(&mut w[a], &mut rng, true);
    let (p, q) = pair(&mut w, b, a);
    let hint = RetryHint::for_message(&m2);
    let rec = p.records.get_mut(&q.user).unwrap();
    assert_eq!(
        rec.start_new_session(&p.device, q.id, bundle, &hint, NOW, &mut rng),
        Err(Error::UnknownDevice)
    );
    // The next list has Alice again: the kept message starts the recovery.
    let changes = record(&mut w, b, a).update_devices(&listed, NOW).unwrap();
    assert_eq!(changes.relisted, [w[a].id]);
    let f = receive(&mut w, a, b, &m2).unwrap_err();
    let fix = act(&mut w, b, a, &f, &mut rng).unwrap();
    let got = receive(&mut w, b, a, &fix).unwrap();
    assert!(matches!(got.content(), Content::RetryRequest(h) if h.matches(&m2)));
    let m3 = send(&mut w, a, b, b"m3", &mut rng);
    assert_eq!(payload(&receive(&mut w, a, b, &m3).unwrap()), b"m3");
    assert_eq!(active_base(&w, a, b), active_base(&w, b, a));
}

/// The peer's device was reset after a restore (§6): Alice's unanswered
/// prekey messages fail there; Bob's new session names her session in its
/// retry request, so it wins even the tie-break it would lose. Then the
/// other way: Bob already has an unanswered session, so the retry request
/// travels in it, and Alice switches when it arrives.
#[test]
fn a_peer_that_cannot_accept_our_session_makes_us_switch() {
    let mut both_orders = [false; 2];
    for seed in 20..40 {
        let mut rng = TestRng::new(seed);
        let mut w = world(&mut rng, &[("alice", 1), ("bob", 1)]);
        let (a, b) = (find(&w, "alice", 1), find(&w, "bob", 1));
        let x = send(&mut w, a, b, b"x", &mut rng);
        // Bob restores and resets his device before x arrives.
        let generation = w[b].device.generation();
        w[b].device
            .reset_prekeys_after_restore(&mut rng, NOW, generation)
            .unwrap();
        let bob_first = seed % 2 == 0;
        let mut bob_session = None;
        if bob_first {
            bob_session = Some(send(&mut w, b, a, b"from bob", &mut rng));
        }
        let f = receive(&mut w, a, b, &x).unwrap_err();
        assert!(
            matches!(f.error, Error::UnknownSignedPreKey { .. }),
            "{f:?}"
        );
        let fix = act(&mut w, b, a, &f, &mut rng).unwrap();
        if bob_first {
            assert!(matches!(f.action, Action::RequestRetry(h) if h.matches(&x)));
            let first = bob_session.unwrap();
            receive(&mut w, b, a, &first).unwrap();
            let alice_won = active_base(&w, a, b) != active_base(&w, b, a);
            both_orders[usize::from(alice_won)] = true;
        } else {
            assert!(matches!(f.action, Action::StartNewSession(h) if h.matches(&x)));
        }
        let got = receive(&mut w, b, a, &fix).unwrap();
        assert!(matches!(got.content(), Content::RetryRequest(h) if h.matches(&x)));
        assert_eq!(active_base(&w, a, b), active_base(&w, b, a), "seed {seed}");
        let again = send(&mut w, a, b, b"x again", &mut rng);
        assert_eq!(payload(&receive(&mut w, a, b, &again).unwrap()), b"x again");
        let reply = send(&mut w, b, a, b"ok", &mut rng);
        assert_eq!(payload(&receive(&mut w, b, a, &reply).unwrap()), b"ok");
    }
    assert_eq!(
        both_orders,
        [true, true],
        "both tie-break outcomes were exercised"
    );
}

/// A forged prekey message (random keys, a real identity) maps to a new
/// session at most once per interval; a duplicate of an accepted one is
/// ignored.
#[test]
fn forged_and_replayed_prekey_messages() {
    let (mut rng, mut w, a, b) = talking(6);
    let mut forger = Party {
        user: user("alice"),
        id: DeviceId(1),
        device: Device::generate(&mut rng, NOW).unwrap(),
        records: BTreeMap::new(),
    };
    let bb = bundle(&mut w[b], &mut rng, false);
    // A prekey message made with a stranger's key, relabelled as Alice's.
    let mut rec = PeerRecord::new(user("bob"), *forger.device.identity_key());
    rec.update_devices(&[(DeviceId(1), *w[b].device.identity_key())], NOW)
        .unwrap();
    rec.add_bundle(&forger.device, DeviceId(1), bb, NOW, &mut rng)
        .unwrap();
    let Message::PreKey(p) = rec.encrypt_to(DeviceId(1), b"x", &mut rng).unwrap() else {
        panic!()
    };
    let mut bytes = p.as_bytes().to_vec();
    bytes[2..34].copy_from_slice(w[a].device.identity_key().as_bytes());
    let forged = Message::from_vec(bytes).unwrap();
    let before = (record(&mut w, b, a).to_bytes(), w[b].device.to_bytes());
    let f = receive(&mut w, a, b, &forged).unwrap_err();
    assert_eq!(f.error, Error::AuthenticationFailed);
    // Bob's session with Alice works: he asks over it rather than costing
    // her a prekey.
    assert!(matches!(f.action, Action::RequestRetry(_)), "{f:?}");
    assert_eq!(*record(&mut w, b, a).to_bytes(), *before.0);
    assert_eq!(*w[b].device.to_bytes(), *before.1);
    forger.records.clear();
}

/// A retry request that names our active session by its current sending
/// key, arriving in another session, says the peer cannot read our active
/// one: the session it came in becomes active. The other is marked as lost
/// to it only if the new one has the smaller base key (SPEC §16.5), so late
/// messages on it bring it back only when it is the smaller; either way the
/// pair is on one session after a round trip. One that names anything else
/// is an ordinary first message.
#[test]
fn a_retry_request_naming_the_active_session_switches_to_its_carrier() {
    let mut orders = [false; 2];
    for seed in 7..40 {
        for names_it in [true, false] {
            let (mut rng, mut w, a, b) = talking(seed);
            let x = active_base(&w, a, b).unwrap();
            let m = send(&mut w, a, b, b"unread", &mut rng);
            let late_on_x = send(&mut w, b, a, b"late", &mut rng);
            let hint = if names_it {
                RetryHint::for_message(&m)
            } else {
                RetryHint {
                    ratchet_key: [3; 32],
                    message_number: 0,
                    base_key: None,
                }
            };
            assert_eq!(hint.base_key, None);
            // Bob (as if he could not read m) starts a new session that asks.
            let fix = {
                let ab = bundle(&mut w[a], &mut rng, false);
                let (pb, pa) = pair(&mut w, b, a);
                let rec = pb.records.get_mut(&pa.user).unwrap();
                rec.start_new_session(&pb.device, pa.id, ab, &hint, NOW, &mut rng)
                    .unwrap()
            };
            let y = active_base(&w, b, a).unwrap();
            receive(&mut w, b, a, &fix).unwrap();
            assert_eq!(active_base(&w, a, b), Some(y));
            receive(&mut w, b, a, &late_on_x).unwrap();
            let marked = names_it && y < x;
            let expected = if marked { y } else { x };
            assert_eq!(
                active_base(&w, a, b),
                Some(expected),
                "seed {seed}, names it: {names_it}"
            );
            if names_it {
                orders[usize::from(marked)] = true;
            }
            // The saved record keeps the mark, which the read rule accepts.
            let saved = record(&mut w, a, b).to_bytes();
            assert_eq!(*PeerRecord::from_bytes(&saved).unwrap().to_bytes(), *saved);
            let there = send(&mut w, a, b, b"there", &mut rng);
            assert_eq!(payload(&receive(&mut w, a, b, &there).unwrap()), b"there");
            let back = send(&mut w, b, a, b"back", &mut rng);
            assert_eq!(payload(&receive(&mut w, b, a, &back).unwrap()), b"back");
            assert_eq!(active_base(&w, a, b), active_base(&w, b, a));
        }
        if orders == [true, true] {
            return;
        }
    }
    panic!("both base-key orders: {orders:?}");
}

/// A retry request from another user's device, naming our session with
/// Bob, touches only the record it arrived through.
#[test]
fn a_retry_request_cannot_reach_across_records() {
    let mut rng = TestRng::new(8);
    let mut w = world(&mut rng, &[("alice", 1), ("bob", 1), ("mallory", 1)]);
    let (a, b, m) = (
        find(&w, "alice", 1),
        find(&w, "bob", 1),
        find(&w, "mallory", 1),
    );
    for (x, y) in [(a, b), (b, a), (m, a), (a, m)] {
        let msg = send(&mut w, x, y, b"hi", &mut rng);
        receive(&mut w, x, y, &msg).unwrap();
    }
    let to_bob = send(&mut w, a, b, b"to bob", &mut rng);
    let before = record(&mut w, a, b).to_bytes();
    let hint = RetryHint::for_message(&to_bob);
    let r = record(&mut w, m, a)
        .request_retry(DeviceId(1), &hint, NOW, &mut rng)
        .unwrap();
    let got = receive(&mut w, m, a, &r).unwrap();
    assert!(matches!(got.content(), Content::RetryRequest(h) if *h == hint));
    assert_eq!(*record(&mut w, a, b).to_bytes(), *before);
    assert_eq!(payload(&receive(&mut w, a, b, &to_bob).unwrap()), b"to bob");
}

/// Recovery calls draw all their randomness before they change anything.
#[test]
fn recovery_calls_fail_cleanly_at_every_draw() {
    let snapshot = |w: &Vec<Party>| w[0].records[&user("bob")].to_bytes().to_vec();
    let hint = RetryHint {
        ratchet_key: [9; 32],
        message_number: 1,
        base_key: None,
    };
    let draws = crate::testing::fails_cleanly_at_every_draw(
        || talking(9).1,
        snapshot,
        |w, rng| record(w, 0, 1).request_retry(DeviceId(1), &hint, NOW, rng),
    );
    assert_eq!(draws, [32, 16]);
    let draws = crate::testing::fails_cleanly_at_every_draw(
        || talking(9).1,
        snapshot,
        |w, rng| {
            let bb = bundle(&mut w[1], &mut TestRng::new(1), false);
            let (pa, pb) = pair(w, 0, 1);
            let rec = pa.records.get_mut(&pb.user).unwrap();
            rec.start_new_session(&pa.device, pb.id, bb, &hint, NOW, rng)
        },
    );
    assert_eq!(draws, [32, 32, 32, 16], "base key, KEM, ratchet key, salt");
    // After MIN_RECOVERY_INTERVAL a new session is allowed again.
    let (mut rng, mut w, a, b) = talking(10);
    for (t, ok) in [
        (NOW, true),
        (NOW + MIN_RECOVERY_INTERVAL - 1, false),
        (NOW + MIN_RECOVERY_INTERVAL, true),
    ] {
        let bb = bundle(&mut w[b], &mut rng, false);
        let (pa, pb) = pair(&mut w, a, b);
        let rec = pa.records.get_mut(&pb.user).unwrap();
        let r = rec.start_new_session(&pa.device, pb.id, bb, &hint, t, &mut rng);
        assert_eq!(r.is_ok(), ok, "at {t}");
    }
}

/// One call with a `now` far in the future (a wrong clock, a bad time
/// source), then the clock is corrected: the limits it stored hold nothing
/// for ever (SPEC §16.1, `|now - t|`). Recovery works at once at the
/// corrected time, the limits then count from it, and a record saved under
/// the wrong clock behaves the same once restored. A clock that goes back
/// by less than the interval still counts as no time elapsed; one that goes
/// back by more allows one more recovery.
#[test]
fn one_wrong_clock_holds_no_rate_limit_for_ever() {
    const YEAR: u64 = 365 * 24 * 3600;
    let (mut rng, mut w, a, b) = talking(9);
    let real = send(&mut w, b, a, b"real", &mut rng);
    let Message::Ratchet(r) = &real else { panic!() };
    let mut bytes = r.as_bytes().to_vec();
    *bytes.last_mut().unwrap() ^= 1;
    let tampered = Message::Ratchet(RatchetMessage::from_vec(bytes).unwrap());
    let hint = RetryHint::for_message(&real);
    let id = w[b].id;
    let far = NOW + 100 * YEAR;
    let new_session = |w: &mut Vec<Party>, now: u64, rng: &mut TestRng| {
        let bb = bundle(&mut w[b], rng, false);
        let (pa, pb) = pair(w, a, b);
        let rec = pa.records.get_mut(&pb.user).unwrap();
        rec.start_new_session(&pa.device, pb.id, bb, &hint, now, rng)
            .map(|_| ())
    };
    new_session(&mut w, far, &mut rng).unwrap();
    for _ in 0..MAX_RETRY_REQUESTS_PER_INTERVAL {
        record(&mut w, a, b)
            .request_retry(id, &hint, far, &mut rng)
            .unwrap();
    }
    assert_eq!(
        new_session(&mut w, far + 1, &mut rng),
        Err(Error::RecoveryRateLimited)
    );
    // The record as saved under the wrong clock, restored.
    let saved = record(&mut w, a, b).to_bytes();
    *record(&mut w, a, b) = PeerRecord::from_bytes(&saved).unwrap();

    // The clock is corrected: a failure maps to a recovery, not to
    // RecoveryPending, and both recoveries are allowed once more.
    let fixed = NOW + 3600 * 24;
    let bob = w[b].user.clone();
    let pa = &mut w[a];
    let f = pa
        .records
        .get_mut(&bob)
        .unwrap()
        .decrypt(&mut pa.device, id, &tampered, fixed)
        .unwrap_err();
    assert!(
        matches!(
            f.action,
            Action::RequestRetry(_) | Action::StartNewSession(_)
        ),
        "{f:?}"
    );
    record(&mut w, a, b)
        .request_retry(id, &hint, fixed, &mut rng)
        .unwrap();
    new_session(&mut w, fixed, &mut rng).unwrap();
    // From then on the limits count from the corrected clock.
    assert_eq!(
        new_session(&mut w, fixed + 10, &mut rng),
        Err(Error::RecoveryRateLimited)
    );
    for _ in 1..MAX_RETRY_REQUESTS_PER_INTERVAL {
        record(&mut w, a, b)
            .request_retry(id, &hint, fixed + 10, &mut rng)
            .unwrap();
    }
    assert_eq!(
        record(&mut w, a, b).request_retry(id, &hint, fixed + 10, &mut rng),
        Err(Error::RecoveryRateLimited)
    );
    // Back by less than the interval: no time elapsed.
    assert_eq!(
        new_session(&mut w, fixed - 10, &mut rng),
        Err(Error::RecoveryRateLimited)
    );
    // Back by the interval or more: the limit has passed, once.
    let back = fixed - MIN_RECOVERY_INTERVAL;
    new_session(&mut w, back, &mut rng).unwrap();
    assert_eq!(
        new_session(&mut w, back + 1, &mut rng),
        Err(Error::RecoveryRateLimited)
    );
    assert_eq!(
        new_session(&mut w, fixed - 1, &mut rng),
        Err(Error::RecoveryRateLimited)
    );
}

/// A forged ratchet message as anyone can make from wire bytes: `key`
/// (taken from a real header), the given numbers, a tag no key opens.
fn forged_on(key: [u8; 32], previous: u32, number: u32) -> Message {
    Message::from_vec(testkit::model::wire::ratchet_message(
        &key, previous, number,
    ))
    .unwrap()
}

/// Two forged messages cannot split a pair (the attack of review finding
/// F8). Alice and Bob talk on X; Alice starts Y. The server forges at Alice
/// a header with Bob's ratchet key on X (X owns it: lost, so she asks over
/// Y) and at Bob a header with Alice's key on Y, read from Y's first
/// message (no session has it, so he asks over X). Each retry request names
/// the other's active session and they cross. The session each side leaves
/// is marked as lost only to a smaller base key, so the marks cannot cross:
/// one round trip later both are on one session, and both saved records
/// obey the read rule of the mark. Both orders of the two base keys.
#[test]
fn forged_headers_cannot_split_a_pair() {
    let mut orders = [false; 2];
    for seed in 40..80 {
        let (mut rng, mut w, a, b) = talking(seed);
        let x = active_base(&w, a, b).unwrap();
        let on_x = send(&mut w, b, a, b"on X", &mut rng);
        receive(&mut w, b, a, &on_x).unwrap();
        let Message::Ratchet(r) = Message::from_bytes(on_x.as_bytes()).unwrap() else {
            panic!()
        };
        // Alice starts Y; its first message is held by the server.
        let bb = bundle(&mut w[b], &mut rng, false);
        let (pa, pb) = pair(&mut w, a, b);
        let rec = pa.records.get_mut(&pb.user).unwrap();
        rec.add_bundle(&pa.device, pb.id, bb, NOW, &mut rng)
            .unwrap();
        let y = active_base(&w, a, b).unwrap();
        let y1 = send(&mut w, a, b, b"first on Y", &mut rng);
        let Message::PreKey(p) = Message::from_bytes(y1.as_bytes()).unwrap() else {
            panic!()
        };
        let forged_at_alice = forged_on(
            r.ratchet_key_bytes(),
            r.previous_chain_length(),
            r.message_number() + 5,
        );
        let f = receive(&mut w, b, a, &forged_at_alice).unwrap_err();
        assert_eq!(f.error, Error::AuthenticationFailed);
        let from_alice = act(&mut w, a, b, &f, &mut rng).unwrap();
        let forged_at_bob = forged_on(p.ratchet_key_bytes(), 0, 0);
        let f = receive(&mut w, a, b, &forged_at_bob).unwrap_err();
        assert!(matches!(f.action, Action::RequestRetry(_)), "{f:?}");
        let from_bob = act(&mut w, b, a, &f, &mut rng).unwrap();
        // Crossing.
        let got = receive(&mut w, b, a, &from_bob).unwrap();
        assert!(matches!(got.content(), Content::RetryRequest(_)));
        let got = receive(&mut w, a, b, &from_alice).unwrap();
        assert!(matches!(got.content(), Content::RetryRequest(_)));
        assert_eq!(payload(&receive(&mut w, a, b, &y1).unwrap()), b"first on Y");
        for (of, with) in [(a, b), (b, a)] {
            let saved = record(&mut w, of, with).to_bytes();
            PeerRecord::from_bytes(&saved).unwrap();
        }
        // One round trip.
        let there = send(&mut w, a, b, b"there", &mut rng);
        assert_eq!(payload(&receive(&mut w, a, b, &there).unwrap()), b"there");
        let back = send(&mut w, b, a, b"back", &mut rng);
        assert_eq!(payload(&receive(&mut w, b, a, &back).unwrap()), b"back");
        assert_eq!(
            active_base(&w, a, b),
            active_base(&w, b, a),
            "seed {seed}: split"
        );
        orders[usize::from(x < y)] = true;
        if orders == [true, true] {
            return;
        }
    }
    panic!("both base-key orders: {orders:?}");
}

/// SPEC §16.6 (review finding F7): a forged failure that copies the header
/// of a delayed message makes the victim ask for it, and the resend and the
/// late original both decrypt: the payload arrives twice, as two distinct
/// messages, which is why applications deduplicate by their own id. Each
/// wire message still decrypts only once.
#[test]
fn a_forged_failure_can_repeat_a_delayed_payload_but_not_a_message() {
    let (mut rng, mut w, a, b) = talking(81);
    let delayed = send(&mut w, b, a, b"pay 100", &mut rng);
    let Message::Ratchet(r) = Message::from_bytes(delayed.as_bytes()).unwrap() else {
        panic!()
    };
    let forged = forged_on(
        r.ratchet_key_bytes(),
        r.previous_chain_length(),
        r.message_number(),
    );
    let f = receive(&mut w, b, a, &forged).unwrap_err();
    let Action::RequestRetry(hint) = f.action else {
        panic!("{f:?}")
    };
    assert!(hint.matches(&delayed));
    let ask = act(&mut w, a, b, &f, &mut rng).unwrap();
    let got = receive(&mut w, a, b, &ask).unwrap();
    let Content::RetryRequest(named) = got.content() else {
        panic!()
    };
    assert!(named.matches(&delayed));
    let resend = send(&mut w, b, a, b"pay 100", &mut rng);
    assert_eq!(
        payload(&receive(&mut w, b, a, &delayed).unwrap()),
        b"pay 100"
    );
    assert_eq!(
        payload(&receive(&mut w, b, a, &resend).unwrap()),
        b"pay 100"
    );
    for m in [&delayed, &resend] {
        let again = receive(&mut w, b, a, m).unwrap_err();
        assert_eq!(again.action, Action::Ignore(Ignore::Duplicate));
    }
}

/// A server that hands each side one stale bundle of the other (validly
/// signed, its signed prekey since removed) leaves both active sessions
/// unanswered ones the peer cannot accept. An unanswered retry request is
/// weighed before our own unanswered session (SPEC §16.6), so the second
/// failure starts a new session from an honest bundle and the pair
/// recovers at once; asking inside the unreadable sessions would have held
/// it until `MAX_UNANSWERED_SESSION_AGE`. (An attacker review's finding.)
#[test]
fn stale_bundles_on_both_sides_do_not_hold_recovery_back() {
    let mut rng = TestRng::new(90);
    let mut w = world(&mut rng, &[("alice", 1), ("bob", 1)]);
    let (a, b) = (find(&w, "alice", 1), find(&w, "bob", 1));
    let mut stale = |p: &mut Party| {
        let old = bundle(p, &mut rng, false);
        p.device.rotate_signed_prekey(&mut rng, NOW).unwrap();
        p.device
            .remove_signed_prekey(old.signed_prekey().id())
            .unwrap();
        old
    };
    let (of_a, of_b) = (stale(&mut w[a]), stale(&mut w[b]));
    for (at, peer, old) in [(a, b, of_b), (b, a, of_a)] {
        let (p, q) = pair(&mut w, at, peer);
        let rec = p.records.get_mut(&q.user).unwrap();
        rec.add_bundle(&p.device, q.id, old, NOW, &mut rng).unwrap();
    }
    // From here on the server is honest: each side writes once and carries
    // out every action, a new session with a fresh bundle.
    let mut queue = alloc::vec![
        (a, b, send(&mut w, a, b, b"from alice", &mut rng)),
        (b, a, send(&mut w, b, a, b"from bob", &mut rng)),
    ];
    let mut steps = 0;
    while let Some((from, to, m)) = (!queue.is_empty()).then(|| queue.remove(0)) {
        steps += 1;
        assert!(steps < 40, "no end");
        if let Err(f) = receive(&mut w, from, to, &m)
            && let Some(reply) = act(&mut w, to, from, &f, &mut rng)
        {
            queue.push((to, from, reply));
        }
    }
    assert_eq!(active_base(&w, a, b), active_base(&w, b, a));
    let m = send(&mut w, a, b, b"after", &mut rng);
    assert_eq!(payload(&receive(&mut w, a, b, &m).unwrap()), b"after");
    let m = send(&mut w, b, a, b"back", &mut rng);
    assert_eq!(payload(&receive(&mut w, b, a, &m).unwrap()), b"back");
}
