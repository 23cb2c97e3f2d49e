//! §16.6 failures and recovery (every severity's action, the rate limits,
//! retry requests and their handling, new sessions for recovery) and §16.7
//! expiry and restores.

use serde_json::{Value, json};
use testkit::hex::hex;
use testkit::layout;
use testkit::model::sessions::Record;
use testkit::model::wire::ratchet_message;

use super::{HOUR, MONTH, Net, action_hint, stranger};
use crate::agreement::NOW;
use crate::rec::out;

fn pair(n: &mut Net) {
    n.devices(&["a1", "b1"]);
    n.record("a1_bob", "bob", "a1", None);
    n.list("a1_bob", &[(1, "b1")], NOW).unwrap();
    n.record("b1_alice", "alice", "b1", None);
    n.list("b1_alice", &[(1, "a1")], NOW).unwrap();
}

/// Alice starts a session, Bob accepts and answers, Alice reads it.
fn talk(n: &mut Net) {
    n.connect("a1_bob", "a1", 1, "b1", NOW);
    let m = n.send("a1_bob", "first");
    n.recv_ok("b1_alice", "b1", 1, &m[&1], NOW);
    let r = n.send_to("b1_alice", 1, "reply");
    n.recv_ok("a1_bob", "a1", 1, &r, NOW);
}

/// A copy of a message with the last byte of its ciphertext changed.
fn tamper(m: &[u8]) -> Vec<u8> {
    let mut t = m.to_vec();
    let last = t.len() - 1;
    t[last] ^= 1;
    t
}

fn retry_requests() -> Value {
    let mut n = Net::new("retry requests");
    pair(&mut n);
    talk(&mut n);
    let m2 = n.send_to("a1_bob", 1, "m2");
    let m3 = n.send_to("a1_bob", 1, "m3");
    n.recv_ok("b1_alice", "b1", 1, &m2, NOW + 10);
    // m3 arrives damaged: its chain is known (the owner is the active
    // session), AuthenticationFailed: the message is lost, ask for it.
    let f = n.recv_fails("b1_alice", "b1", 1, &tamper(&m3), NOW + 10);
    let hint = action_hint(&f);
    let rr = out(
        &n.request_retry("b1_alice", 1, &hint, NOW + 10).unwrap(),
        "message",
    );
    // Alice reads the request: its hint names m3 (she matches it against
    // what she sent) and her active session, on which it came.
    n.recv_ok("a1_bob", "a1", 1, &rr, NOW + 11);
    let again = n.send_to("a1_bob", 1, "m3");
    // Any message from Alice that decrypts clears the unanswered hint.
    n.recv_ok("b1_alice", "b1", 1, &again, NOW + 12);
    // The window: MAX_RETRY_REQUESTS_PER_INTERVAL requests per
    // MIN_RECOVERY_INTERVAL; then RecoveryRateLimited, and failures that
    // would ask are Ignore(RecoveryPending).
    for i in 0..7 {
        n.request_retry("b1_alice", 1, &hint, NOW + 20 + i).unwrap();
    }
    n.fails(
        json!({ "op": "request_retry", "record": "b1_alice", "device_id": 1, "hint": hint.json(), "now": NOW + HOUR + 9 }),
        "RecoveryRateLimited",
    );
    n.recv_fails("b1_alice", "b1", 1, &tamper(&m3), NOW + HOUR + 9);
    // The window started at NOW + 10: at NOW + 10 + MIN_RECOVERY_INTERVAL it
    // restarts.
    n.recv_fails("b1_alice", "b1", 1, &tamper(&m3), NOW + HOUR + 10);
    n.request_retry("b1_alice", 1, &hint, NOW + HOUR + 10)
        .unwrap();
    n.ok(json!({ "op": "explain", "state": "b1_alice" }));
    n.vector(
        "retry_requests",
        "§16.6: a damaged message on a known chain (AuthenticationFailed from the owner: lost) asks for a retry naming it; request_retry sends the hint in the active session and starts the window; the peer reads it as a retry request and resends; the next message that decrypts clears the unanswered hint; eight requests per MIN_RECOVERY_INTERVAL, then RecoveryRateLimited and Ignore(RecoveryPending) until the window (from its first request) has run, when it restarts.",
    )
}

fn new_session() -> Value {
    let mut n = Net::new("new session");
    pair(&mut n);
    let bob_before = n.save("b1_alice");
    talk(&mut n);
    let last = Record::decode(&n.save("b1_alice")).unwrap().generation;
    // Bob's record comes back from a backup older than the session; he
    // calls after_restore with the generation he recorded: nothing to
    // delete here, but the generation moves past it.
    n.load("b1_alice", &bob_before);
    n.ok(json!({ "op": "after_restore", "record": "b1_alice", "last_generation": last }));
    let m2 = n.send_to("a1_bob", 1, "m2");
    let m3 = n.send_to("a1_bob", 1, "m3");
    // No session: a new session whose first message asks for m2.
    let f = n.recv_fails("b1_alice", "b1", 1, &m2, NOW + 10);
    let hint = action_hint(&f);
    let bundle = n.bundle("a1");
    let first = out(
        &n.start_new_session("b1_alice", "b1", 1, &bundle, &hint, NOW + 10)
            .unwrap(),
        "message",
    );
    // Within MIN_RECOVERY_INTERVAL a second one is refused, and a failure
    // that would start one is Ignore(RecoveryPending).
    n.fails(
        json!({
            "op": "start_new_session", "record": "b1_alice", "device": "b1", "device_id": 1,
            "bundle": hex(&bundle), "hint": hint.json(), "now": NOW + 10 + HOUR - 1,
        }),
        "RecoveryRateLimited",
    );
    // m3, from Alice's old session, reaches Bob's new session, which is his
    // own and unanswered: the retry travels in it.
    n.recv_fails("b1_alice", "b1", 1, &m3, NOW + 11);
    // Alice: the request names her active session (its ratchet key is her
    // sending key), so the new session wins over it.
    n.recv_ok("a1_bob", "a1", 1, &first, NOW + 12);
    n.ok(json!({ "op": "explain", "state": "a1_bob" }));
    let again = n.send_to("a1_bob", 1, "m2");
    n.recv_ok("b1_alice", "b1", 1, &again, NOW + 13);
    // Now answered: m3 again asks with a retry (the peer writes on a
    // session we lack).
    n.recv_fails("b1_alice", "b1", 1, &m3, NOW + 14);
    n.vector(
        "new_session",
        "§16.6, §16.7: a record restored from a backup older than its session (after_restore moves the generation past the recorded one) cannot read the peer: NoSession, StartNewSession naming the message; start_new_session makes a session whose first message is the retry request; a second one within MIN_RECOVERY_INTERVAL is RecoveryRateLimited; a message of the peer's old session is RequestRetry while the new session is ours and unanswered; the peer accepts the new session, which wins because the request names its active session, and resends; then the same old message asks with a retry.",
    )
}

fn actions() -> Value {
    let mut n = Net::new("failure actions");
    n.devices(&["a1", "b1", "b2", "c1"]);
    n.record("a1_bob", "bob", "a1", None);
    n.list("a1_bob", &[(1, "b1")], NOW).unwrap();
    n.record("b1_alice", "alice", "b1", None);
    n.list("b1_alice", &[(1, "a1")], NOW).unwrap();
    talk(&mut n);
    let m2 = n.send_to("a1_bob", 1, "m2");
    n.recv_ok("b1_alice", "b1", 1, &m2, NOW + 1);
    // Step 1 of §16.5: the wrong local device, a device not held.
    n.recv_fails("b1_alice", "b2", 1, &m2, NOW + 2);
    n.recv_fails("b1_alice", "b1", 7, &m2, NOW + 2);
    // A prekey message from another identity claiming device 1.
    n.record("c1_bob", "bob", "c1", None);
    n.list("c1_bob", &[(1, "b1")], NOW).unwrap();
    n.connect("c1_bob", "c1", 1, "b1", NOW);
    let from_carol = n.send("c1_bob", "not Alice");
    n.recv_fails("b1_alice", "b1", 1, &from_carol[&1], NOW + 2);
    // A known chain past its end (owner: the active session):
    // SessionDiverged, broken, a new session.
    let m2l = layout::ratchet_part(&m2);
    let first_key = Record::decode(&n.save("b1_alice")).unwrap().devices[&1]
        .active
        .as_ref()
        .unwrap()
        .session
        .recv
        .chains[0]
        .ratchet_key;
    let mut past_end = m2.clone();
    m2l.put(&mut past_end, "ratchet_key", &first_key);
    m2l.put_u32(&mut past_end, "n", 5);
    n.recv_fails("b1_alice", "b1", 1, &past_end, NOW + 3);
    // A ratchet key no session knows, while Bob's session has no sending
    // chain (it cannot be the peer's next chain): SessionDiverged, broken;
    // Bob's active session is not his own: RequestRetry.
    let k = testkit::model::primitives::x_pub(&[0x42u8; 32]);
    let unknown = ratchet_message(&k, 0, 0);
    n.recv_fails("b1_alice", "b1", 1, &unknown, NOW + 3);
    // Bob writes (a sending chain). A ratchet key of small order: the try
    // gives NonContributoryKey, Ignore(Malformed).
    n.send_to("b1_alice", 1, "r2");
    let zero = ratchet_message(&[0u8; 32], 0, 0);
    n.recv_fails("b1_alice", "b1", 1, &zero, NOW + 3);
    // The unknown key again: a new chain that does not decrypt,
    // SessionDiverged, RequestRetry.
    let f = n.recv_fails("b1_alice", "b1", 1, &unknown, NOW + 3);
    // After the request, a second such failure starts a new session asking
    // for the first message (the request went unanswered).
    n.request_retry("b1_alice", 1, &action_hint(&f), NOW + 3)
        .unwrap();
    let k2 = testkit::model::primitives::x_pub(&[0x43u8; 32]);
    n.recv_fails("b1_alice", "b1", 1, &ratchet_message(&k2, 0, 1), NOW + 4);
    // A prekey message naming a signed prekey Bob does not hold (accept:
    // broken) while the request is unanswered: a new session too.
    let mut odd = from_carol[&1].clone();
    let l = layout::message(&odd);
    l.put(&mut odd, "identity", &n.ik("a1")[2..]);
    l.put_u32(&mut odd, "spk_id", 77);
    n.recv_fails("b1_alice", "b1", 1, &odd, NOW + 4);
    // The first prekey message again, after Bob's sessions were deleted
    // (after_restore below the recorded generation): the base key is
    // recorded, DuplicatePreKeyMessage, broken, no active session.
    let last = Record::decode(&n.save("b1_alice")).unwrap().generation + 5;
    n.ok(json!({ "op": "after_restore", "record": "b1_alice", "last_generation": last }));
    let first =
        n.r.steps
            .iter()
            .find(|s| s["op"] == "record_encrypt")
            .map(|s| {
                s["out"]["sent"]["messages"][0]["message"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .unwrap();
    n.recv_fails(
        "b1_alice",
        "b1",
        1,
        &testkit::hex::unhex(&first).unwrap(),
        NOW + 5,
    );
    // A pending identity holds every message back.
    let x = stranger("failure actions new identity");
    n.list_keys("b1_alice", &[(1, x)], NOW + 6).unwrap();
    n.recv_fails("b1_alice", "b1", 1, &m2, NOW + 6);
    n.vector(
        "failure_actions",
        "§16.5 step 1 and §16.6: Ignore(WrongLocalDevice) (IdentityMismatch), RetryLater(UnknownDevice), RetryLater(UnknownIdentity) (IdentityMismatch: a prekey message under another identity), SessionDiverged from the active owner (a closed chain past its end: a new session), an unknown key while no session has a sending chain (SessionDiverged, no owner: a retry, since the active session is not ours), a key of small order (NonContributoryKey: Ignore(Malformed)), the unknown key once Bob has a sending chain (a new chain that does not decrypt: SessionDiverged, a retry), then with that request unanswered a new session naming the request's message; an accept naming an unknown signed prekey (broken); an old prekey message whose session was deleted (DuplicatePreKeyMessage: no active session, a new session); RetryLater(IdentityChangePending).",
    )
}

fn lost_without_active() -> Value {
    let mut n = Net::new("lost without an active session");
    pair(&mut n);
    talk(&mut n);
    let m2 = n.send_to("a1_bob", 1, "m2");
    let m3 = n.send_to("a1_bob", 1, "m3");
    n.recv_ok("b1_alice", "b1", 1, &m2, NOW + 1);
    // A saved form no call makes but the format allows: the session
    // archived, no active one.
    let mut rec = Record::decode(&n.save("b1_alice")).unwrap();
    let d = rec.devices.get_mut(&1).unwrap();
    let a = d.active.take().unwrap();
    d.archive(a);
    n.load("b1_alice", &rec.encode());
    // Lost on the archived owner, no active session: a new session.
    n.recv_fails("b1_alice", "b1", 1, &tamper(&m3), NOW + 2);
    // A message that decrypts on it makes it active.
    n.recv_ok("b1_alice", "b1", 1, &m3, NOW + 3);
    n.ok(json!({ "op": "explain", "state": "b1_alice" }));
    n.vector(
        "lost_without_active",
        "§16.5, §16.6 with a record whose only session is archived (loaded: the saved form allows it): a lost message on it is StartNewSession (no active session to ask in); a message that decrypts on it makes it the active session.",
    )
}

fn retry_on_archived() -> Value {
    let mut n = Net::new("retry on an archived session");
    pair(&mut n);
    // Alice: S1 then S2; Bob answers on S1 late, so Alice's active is S1
    // while Bob's is S2.
    n.connect("a1_bob", "a1", 1, "b1", NOW);
    let m1 = n.send("a1_bob", "m1");
    n.recv_ok("b1_alice", "b1", 1, &m1[&1], NOW + 1);
    let r1 = n.send_to("b1_alice", 1, "r1 on S1");
    n.connect("a1_bob", "a1", 1, "b1", NOW + 2);
    let m2 = n.send("a1_bob", "m2 on S2");
    n.recv_ok("b1_alice", "b1", 1, &m2[&1], NOW + 3);
    n.recv_ok("a1_bob", "a1", 1, &r1, NOW + 4);
    // Bob writes on S2 (a new chain); it arrives damaged at Alice: no
    // session knows its key, and S2, which would follow it, cannot decrypt
    // it (SessionDiverged, no owner): she asks, over her active S1.
    let r2 = n.send_to("b1_alice", 1, "r2 on S2");
    let f = n.recv_fails("a1_bob", "a1", 1, &tamper(&r2), NOW + 5);
    let rr = out(
        &n.request_retry("a1_bob", 1, &action_hint(&f), NOW + 5)
            .unwrap(),
        "message",
    );
    // Bob reads the request on his archived S1; it names his active S2 (its
    // ratchet key is S2's sending key): S1 becomes active, S2 archived as
    // having lost to it.
    n.recv_ok("b1_alice", "b1", 1, &rr, NOW + 6);
    n.ok(json!({ "op": "explain", "state": "b1_alice" }));
    let again = n.send_to("b1_alice", 1, "r2 on S2");
    n.recv_ok("a1_bob", "a1", 1, &again, NOW + 7);
    // Both on S1.
    let m3 = n.send("a1_bob", "m3 on S1");
    n.recv_ok("b1_alice", "b1", 1, &m3[&1], NOW + 8);
    n.vector(
        "retry_on_archived",
        "§16.5: a retry request that arrives on an archived session and names the active one (no base key: its ratchet key is the active session's sending key) makes the archived session active and archives the other as having lost to it; the peer resends there, and both write on it.",
    )
}

fn one_time_prekey_desync() -> Value {
    let mut n = Net::new("one-time prekey desync");
    n.devices(&["a1", "b1", "b2"]);
    n.ok(json!({ "op": "generate_one_time_prekeys", "device": "a1", "count": 1 }));
    n.record("a1_bob", "bob", "a1", None);
    n.list("a1_bob", &[(1, "b1"), (2, "b2")], NOW).unwrap();
    n.record("b1_alice", "alice", "b1", None);
    n.list("b1_alice", &[(1, "a1")], NOW).unwrap();
    n.record("b2_alice", "alice", "b2", None);
    n.list("b2_alice", &[(1, "a1")], NOW).unwrap();
    // The server handed Alice's one-time prekey 1 to both of Bob's devices.
    let kem = testkit::model::Dev::decode(&n.save("a1"))
        .unwrap()
        .last_resort_kem()
        .id;
    let b = n.bundle_with("a1", Some(1), Some(kem));
    n.add_bundle("b2_alice", "b2", 1, &b, NOW).unwrap();
    n.add_bundle("b1_alice", "b1", 1, &b, NOW).unwrap();
    let from_b2 = n.send("b2_alice", "from b2");
    let from_b1 = n.send("b1_alice", "from b1");
    n.recv_ok("a1_bob", "a1", 2, &from_b2[&1], NOW + 1);
    // Its key is gone: UnknownOneTimePreKey, broken, no session with b1: a
    // new session asking for that message (its hint has the base key).
    let f = n.recv_fails("a1_bob", "a1", 1, &from_b1[&1], NOW + 1);
    let bundle = n.bundle("b1");
    let first = out(
        &n.start_new_session("a1_bob", "a1", 1, &bundle, &action_hint(&f), NOW + 1)
            .unwrap(),
        "message",
    );
    // Bob's active session is his own and unanswered, but the request names
    // it: no tie-break, Alice's session wins and Bob's lost to it.
    n.recv_ok("b1_alice", "b1", 1, &first, NOW + 2);
    n.ok(json!({ "op": "explain", "state": "b1_alice" }));
    let again = n.send_to("b1_alice", 1, "from b1");
    n.recv_ok("a1_bob", "a1", 1, &again, NOW + 3);
    n.vector(
        "one_time_prekey_desync",
        "§16.5, §16.6: a one-time prekey handed to two devices; the second prekey message is UnknownOneTimePreKey (accept: broken) with no session: StartNewSession naming it by its base key; the new session's retry request names the sender's own unanswered session, so the accept skips the tie-break: the new session is active and the other lost to it; the sender resends.",
    )
}

/// A retry request from a stale device (§16.5, §16.6): it decrypts and is
/// reported, but nothing but retry requests is sent off the list, so the
/// resend is refused until the device is listed again.
fn stale_retry_request() -> Value {
    let mut n = Net::new("stale device retry request");
    pair(&mut n);
    talk(&mut n);
    let m2 = n.send_to("a1_bob", 1, "m2");
    let f = n.recv_fails("b1_alice", "b1", 1, &tamper(&m2), NOW + 1);
    let rr = out(
        &n.request_retry("b1_alice", 1, &action_hint(&f), NOW + 1)
            .unwrap(),
        "message",
    );
    // Bob's device leaves Alice's list before the request arrives.
    n.list("a1_bob", &[], NOW + 2).unwrap();
    let o = n.recv_ok("a1_bob", "a1", 1, &rr, NOW + 2);
    assert_eq!(o.out["content"]["kind"], "retry_request");
    n.fails(
        json!({ "op": "encrypt_to", "record": "a1_bob", "device_id": 1, "payload": hex(b"m2") }),
        "UnknownDevice",
    );
    // Listed again: the resend goes, and Bob reads it.
    n.list("a1_bob", &[(1, "b1")], NOW + 3).unwrap();
    let again = n.send_to("a1_bob", 1, "m2");
    n.recv_ok("b1_alice", "b1", 1, &again, NOW + 3);
    n.vector(
        "stale_device_retry_request",
        "§16.5, §16.6, §16.2 step 3: Bob's device asks Alice to resend a message it could not read (a retry request in their session); before it arrives, Alice's record no longer lists Bob's device (stale). The request decrypts on the session (a stale device's messages on its sessions still decrypt) and is reported as a retry request, but the resend with encrypt_to is refused (UnknownDevice: nothing but retry requests is sent to a stale device); once the device is listed again, encrypt_to resends and Bob reads it.",
    )
}

/// What acknowledge_identity and after_restore keep (§16.2, §16.7): only
/// sessions go.
fn device_state_kept() -> Value {
    let mut n = Net::new("device state kept");
    pair(&mut n);
    // Classical allowed and an X3DH session (so not pinned); a new session
    // for recovery (last_recovery); a retry request unanswered (the window,
    // its count and the hint).
    n.ok(json!({ "op": "allow_classical", "record": "a1_bob", "device_id": 1, "allowed": true }));
    let classical = n.bundle_with("b1", None, None);
    n.add_bundle("a1_bob", "a1", 1, &classical, NOW).unwrap();
    let unknown = |b: u8| ratchet_message(&testkit::model::primitives::x_pub(&[b; 32]), 0, 0);
    let f = n.recv_fails("a1_bob", "a1", 1, &unknown(0x51), NOW + 1);
    let classical = n.bundle_with("b1", None, None);
    n.start_new_session("a1_bob", "a1", 1, &classical, &action_hint(&f), NOW + 1)
        .unwrap();
    let f = n.recv_fails("a1_bob", "a1", 1, &unknown(0x52), NOW + 2);
    n.request_retry("a1_bob", 1, &action_hint(&f), NOW + 2)
        .unwrap();
    // A new key for the device, then the device leaves the list: pending
    // and stale.
    let key = stranger("device state kept new key");
    n.list_keys("a1_bob", &[(1, key.clone())], NOW + 3).unwrap();
    n.list("a1_bob", &[], NOW + 4).unwrap();
    let backup = n.save("a1_bob");
    let d = Record::decode(&backup).unwrap().devices[&1].clone();
    assert!(d.classical && !d.pinned && d.retry_count == 1 && d.pending.is_some());
    assert!(d.active.is_some() && d.archived.len() == 1);
    n.ok(json!({ "op": "explain", "state": "a1_bob" }));
    n.ok(json!({ "op": "acknowledge_identity", "record": "a1_bob", "device_id": 1, "identity": hex(&key) }));
    let d = Record::decode(&n.save("a1_bob")).unwrap().devices[&1].clone();
    assert!(d.active.is_none() && d.archived.is_empty());
    assert!(d.unanswered.is_some() && d.last_recovery.is_some() && d.stale_since.is_some());
    assert!(d.classical && d.retry_count == 1 && d.pending.is_none());
    n.ok(json!({ "op": "explain", "state": "a1_bob" }));
    // The copy from before the acknowledgement, restored below the
    // recorded generation: its sessions go, nothing else.
    let g = Record::decode(&n.save("a1_bob")).unwrap().generation;
    n.load("a1_bob_copy", &backup);
    n.ok(json!({ "op": "after_restore", "record": "a1_bob_copy", "last_generation": g }));
    n.ok(json!({ "op": "explain", "state": "a1_bob_copy" }));
    n.vector(
        "device_state_kept",
        "§16.2 acknowledge_identity, §16.7 after_restore: only sessions go. Alice's device 1 of Bob has classical allowed with an X3DH session (not pinned), a new session started for recovery (last_recovery), a retry request sent and unanswered (window, count, hint), then a pending identity and, left out of a list, a stale time. Acknowledging the new key deletes the device's two sessions and keeps everything else (stale time, classical flag, last_recovery, window, count and unanswered hint). A copy from before the acknowledgement, restored below the recorded generation: after_restore deletes its sessions and keeps everything else, the pending identity and the unanswered hint included.",
    )
}

fn expiry() -> Value {
    let mut n = Net::new("expiry");
    n.devices(&["a1", "b1", "b2"]);
    n.record("a1_bob", "bob", "a1", None);
    n.list("a1_bob", &[(1, "b1"), (2, "b2")], NOW).unwrap();
    n.record("b1_alice", "alice", "b1", None);
    n.list("b1_alice", &[(1, "a1")], NOW).unwrap();
    // Three sessions with device 1 (two archived), one with device 2.
    n.connect("a1_bob", "a1", 1, "b1", NOW);
    let m = n.send("a1_bob", "s1");
    n.connect("a1_bob", "a1", 1, "b1", NOW + 100);
    n.connect("a1_bob", "a1", 1, "b1", NOW + 200);
    n.connect("a1_bob", "a1", 2, "b2", NOW);
    // Bob answers on the oldest: it decrypts at NOW + 300 (promoted), then
    // Alice's newest is made active again by a new bundle.
    n.recv_ok("b1_alice", "b1", 1, &m[&1], NOW + 300);
    let r = n.send_to("b1_alice", 1, "reply");
    n.recv_ok("a1_bob", "a1", 1, &r, NOW + 300);
    n.connect("a1_bob", "a1", 1, "b1", NOW + 400);
    // Device 2 leaves the list at NOW + 500.
    n.list("a1_bob", &[(1, "b1")], NOW + 500).unwrap();
    n.ok(json!({ "op": "explain", "state": "a1_bob" }));
    let expire = |now: u64| json!({ "op": "expire", "record": "a1_bob", "now": now });
    // A clock that went back: nothing is old.
    n.ok(expire(NOW - 1000));
    n.ok(expire(NOW + 100 + MONTH - 1));
    // The session made at NOW + 100 (never decrypted) goes at its age.
    n.ok(expire(NOW + 100 + MONTH));
    n.ok(expire(NOW + 200 + MONTH));
    // The session that decrypted at NOW + 300 is counted from then.
    n.ok(expire(NOW + 300 + MONTH - 1));
    n.ok(expire(NOW + 300 + MONTH));
    // The stale device.
    n.ok(expire(NOW + 500 + MONTH - 1));
    n.ok(expire(NOW + 500 + MONTH));
    // The active session never expires.
    n.ok(expire(NOW + 10 * MONTH));
    n.ok(json!({ "op": "explain", "state": "a1_bob" }));
    // after_restore: a record at or above the recorded generation keeps its
    // sessions; one below loses them all (pins and rate limits stay).
    let g = Record::decode(&n.save("a1_bob")).unwrap().generation;
    n.ok(json!({ "op": "after_restore", "record": "a1_bob", "last_generation": g }));
    n.ok(json!({ "op": "after_restore", "record": "a1_bob", "last_generation": g + 10 }));
    n.ok(json!({ "op": "explain", "state": "a1_bob" }));
    n.ok(json!({ "op": "plan_send", "record": "a1_bob", "now": NOW + 10 * MONTH }));
    n.ok(json!({ "op": "after_restore", "record": "a1_bob", "last_generation": u64::MAX }));
    n.vector(
        "expiry_and_restore",
        "§16.7: expire at a clock that went back (nothing), archived sessions at MAX_ARCHIVED_SESSION_AGE - 1 and at it, counted from creation or from the last decrypt, a stale device at MAX_STALE_DEVICE_AGE - 1 and at it, active sessions never (the generation moves only when something is deleted); after_restore at the recorded generation (nothing deleted) and below it (every session deleted, devices, pins and rate limits kept), the generation becoming max + 1, saturating at 2^64 - 1.",
    )
}

/// §16.6 with a request unanswered while the recovery interval holds a new
/// session back (a retry), the interval and window measured as distances
/// (§16.1), and a recovery that needs a new session with a stale device.
fn interval_holds() -> Value {
    let mut n = Net::new("recovery interval holds");
    pair(&mut n);
    talk(&mut n);
    let unknown =
        |b: u8, i: u32| ratchet_message(&testkit::model::primitives::x_pub(&[b; 32]), 0, i);
    // A first failure asks; a second, with the request unanswered, starts
    // a new session (the interval allows it).
    let f = n.recv_fails("b1_alice", "b1", 1, &unknown(0x41, 0), NOW + 1);
    n.request_retry("b1_alice", 1, &action_hint(&f), NOW + 1)
        .unwrap();
    let f = n.recv_fails("b1_alice", "b1", 1, &unknown(0x42, 0), NOW + 2);
    let bundle = n.bundle("a1");
    let p = out(
        &n.start_new_session("b1_alice", "b1", 1, &bundle, &action_hint(&f), NOW + 2)
            .unwrap(),
        "message",
    );
    n.recv_ok("a1_bob", "a1", 1, &p, NOW + 3);
    let r = n.send_to("a1_bob", 1, "answer on the new session");
    n.recv_ok("b1_alice", "b1", 1, &r, NOW + 3);
    // Failures on the answered session: a retry, sent and unanswered.
    let f = n.recv_fails("b1_alice", "b1", 1, &unknown(0x43, 0), NOW + 4);
    n.request_retry("b1_alice", 1, &action_hint(&f), NOW + 4)
        .unwrap();
    // The interval (from NOW + 2) holds a new session back: a retry again.
    n.recv_fails("b1_alice", "b1", 1, &unknown(0x44, 0), NOW + 5);
    n.recv_fails("b1_alice", "b1", 1, &unknown(0x44, 0), NOW + 2 + HOUR - 1);
    // The interval has passed: a new session naming the first lost message.
    n.recv_fails("b1_alice", "b1", 1, &unknown(0x44, 0), NOW + 2 + HOUR);
    // A clock gone back: less than the interval is no time, an hour or
    // more is as much time passed.
    n.recv_fails("b1_alice", "b1", 1, &unknown(0x44, 0), NOW + 3 - HOUR);
    n.recv_fails("b1_alice", "b1", 1, &unknown(0x44, 0), NOW + 2 - HOUR);
    // The retry window started at NOW + 4: an hour earlier it restarts.
    n.request_retry("b1_alice", 1, &action_hint(&f), NOW + 4 - HOUR)
        .unwrap();
    n.ok(json!({ "op": "explain", "state": "b1_alice" }));
    // Alice's device leaves Bob's list: the new session the recovery needs
    // cannot be started with it (RetryLater(UnknownDevice)); a retry
    // request may still be sent to it.
    n.list("b1_alice", &[], NOW + 2 + HOUR).unwrap();
    n.recv_fails("b1_alice", "b1", 1, &unknown(0x45, 0), NOW + 2 + HOUR);
    n.request_retry("b1_alice", 1, &action_hint(&f), NOW + 2 + HOUR)
        .unwrap();
    n.vector(
        "recovery_interval_holds",
        "§16.6, §16.1: with a retry request unanswered, a broken failure starts a new session naming the request's message if the recovery interval allows it, else it is a retry (the request may have been lost), not Ignore(RecoveryPending); the interval and the retry window are distances |now - t|, so a clock gone back by less than MIN_RECOVERY_INTERVAL is no time and one gone back by it or more counts as passed; with the device stale, the new session is RetryLater(UnknownDevice) (UnknownDevice) while a retry request may still be sent.",
    )
}

/// A server hands each side one stale bundle of the other (its signed
/// prekey since removed): each active session is an unanswered one the
/// peer cannot accept.
fn stale_bundles_both_sides() -> Value {
    let mut n = Net::new("stale bundles on both sides");
    pair(&mut n);
    let stale = |n: &mut Net, d: &str| {
        let b = n.bundle(d);
        let id = testkit::model::Dev::decode(&n.save(d))
            .unwrap()
            .spks
            .last()
            .unwrap()
            .id;
        n.ok(json!({ "op": "rotate_signed_prekey", "device": d, "now": NOW }));
        n.ok(json!({ "op": "remove_signed_prekey", "device": d, "id": id }));
        b
    };
    let of_a = stale(&mut n, "a1");
    let of_b = stale(&mut n, "b1");
    n.add_bundle("a1_bob", "a1", 1, &of_b, NOW).unwrap();
    n.add_bundle("b1_alice", "b1", 1, &of_a, NOW).unwrap();
    let from_a = n.send("a1_bob", "from alice");
    // Bob cannot accept it (broken); no request is unanswered: a retry,
    // which travels in his own unanswered session.
    let f = n.recv_fails("b1_alice", "b1", 1, &from_a[&1], NOW + 1);
    let ask = out(
        &n.request_retry("b1_alice", 1, &action_hint(&f), NOW + 1)
            .unwrap(),
        "message",
    );
    // Alice cannot accept Bob's session either: a retry in hers.
    let f = n.recv_fails("a1_bob", "a1", 1, &ask, NOW + 2);
    let ask = out(
        &n.request_retry("a1_bob", 1, &action_hint(&f), NOW + 2)
            .unwrap(),
        "message",
    );
    // Bob's request is unanswered, which comes before his own unanswered
    // session: a new session from an honest bundle.
    let f = n.recv_fails("b1_alice", "b1", 1, &ask, NOW + 3);
    let bundle = n.bundle("a1");
    let p = out(
        &n.start_new_session("b1_alice", "b1", 1, &bundle, &action_hint(&f), NOW + 3)
            .unwrap(),
        "message",
    );
    n.recv_ok("a1_bob", "a1", 1, &p, NOW + 4);
    let r = n.send_to("a1_bob", 1, "answer");
    n.recv_ok("b1_alice", "b1", 1, &r, NOW + 4);
    n.vector(
        "stale_bundles_both_sides",
        "§16.6: both active sessions were made from stale bundles (signed prekeys since removed) and neither side can accept the other's; each first failure is a retry in the side's own unanswered session, and the second failure, with a request unanswered, starts a new session (the unanswered request is weighed before the unanswered session), which the peer accepts.",
    )
}

pub(super) fn vectors() -> Vec<Value> {
    vec![
        retry_requests(),
        new_session(),
        actions(),
        interval_holds(),
        stale_bundles_both_sides(),
        lost_without_active(),
        retry_on_archived(),
        one_time_prekey_desync(),
        expiry(),
        stale_retry_request(),
        device_state_kept(),
    ]
}
