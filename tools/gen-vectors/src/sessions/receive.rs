//! §16.5 receiving: routes (a new session, the session with the base key,
//! the session that knows the ratchet key, active then archived newest
//! first), promotion and the lost-to mark, simultaneous initiation on both
//! sides, the archive bound, and §16.10 framing from a peer that writes
//! its frames by hand.

use serde_json::{Value, json};
use testkit::hex::hex;
use testkit::model::sessions::Record;

use super::Net;
use crate::agreement::NOW;
use crate::rec::out;

fn explain(n: &mut Net, state: &str) {
    n.ok(json!({ "op": "explain", "state": state }));
}

/// The base key of a device's active session in a record.
fn active_base(n: &Net, record: &str, id: u32) -> [u8; 32] {
    Record::decode(&n.save(record)).unwrap().devices[&id]
        .active
        .as_ref()
        .unwrap()
        .session
        .base
}

fn pair(n: &mut Net) {
    n.devices(&["a1", "b1"]);
    n.record("a1_bob", "bob", "a1", None);
    n.list("a1_bob", &[(1, "b1")], NOW).unwrap();
    n.record("b1_alice", "alice", "b1", None);
    n.list("b1_alice", &[(1, "a1")], NOW).unwrap();
}

fn routing() -> Value {
    let mut n = Net::new("routing");
    pair(&mut n);
    // Session S1: two prekey messages, delivered out of order. The second
    // starts Bob's session; the first goes to it by its base key.
    n.connect("a1_bob", "a1", 1, "b1", NOW);
    let m1 = n.send("a1_bob", "m1");
    let m2 = n.send("a1_bob", "m2");
    n.recv_ok("b1_alice", "b1", 1, &m2[&1], NOW + 1);
    n.recv_ok("b1_alice", "b1", 1, &m1[&1], NOW + 2);
    n.recv_fails("b1_alice", "b1", 1, &m1[&1], NOW + 3);
    let r1 = n.send_to("b1_alice", 1, "r1");
    n.recv_ok("a1_bob", "a1", 1, &r1, NOW + 4);
    // Bob writes r2 on S1; before it arrives Alice starts S2 (S1 archived).
    let r2 = n.send_to("b1_alice", 1, "r2");
    n.connect("a1_bob", "a1", 1, "b1", NOW + 5);
    let m3 = n.send("a1_bob", "m3");
    let m3b = n.send("a1_bob", "m3b");
    // Bob's active S1 is not his own: S2 becomes active, S1 archived
    // without a mark.
    n.recv_ok("b1_alice", "b1", 1, &m3[&1], NOW + 6);
    explain(&mut n, "b1_alice");
    // r2 is on a chain Alice's archived S1 knows: it decrypts there and S1
    // is active again at Alice.
    n.recv_ok("a1_bob", "a1", 1, &r2, NOW + 7);
    explain(&mut n, "a1_bob");
    // Alice answers on S1 with a new ratchet key no session of Bob's knows:
    // it is tried on his active S2 (no sending chain: it cannot be the
    // peer's next chain), then on S1, which decrypts and is promoted.
    let m4 = n.send("a1_bob", "m4");
    n.recv_ok("b1_alice", "b1", 1, &m4[&1], NOW + 8);
    explain(&mut n, "b1_alice");
    // A late prekey message of S2 goes to archived S2 by its base key and
    // promotes it (S2 did not lose to S1).
    n.recv_ok("b1_alice", "b1", 1, &m3b[&1], NOW + 9);
    explain(&mut n, "b1_alice");
    n.vector(
        "routing",
        "§16.5: a prekey message starts a session; another prekey message of it goes to it by its base key (out of order), a third time is Ignore(Duplicate); a new session from the peer archives the active one (no mark: it was not ours and unanswered); a message on a chain an archived session knows decrypts there and promotes it; a message with a ratchet key no session knows is tried on the active session, then the archived ones newest first, and the one that decrypts is promoted; a late prekey message goes to the archived session with its base key and promotes it; the records explained after each move.",
    )
}

/// Both devices start a session and send before either message arrives;
/// `label` is chosen so that Alice's base key is the smaller (`true`) or
/// the larger.
fn simultaneous(alice_wins: bool) -> Value {
    let mut k = 0;
    let (n, label) = loop {
        let label = format!("simultaneous initiation {k}");
        let mut n = Net::new(&label);
        pair(&mut n);
        n.connect("a1_bob", "a1", 1, "b1", NOW);
        n.connect("b1_alice", "b1", 1, "a1", NOW);
        if (active_base(&n, "a1_bob", 1) < active_base(&n, "b1_alice", 1)) == alice_wins {
            break (n, label);
        }
        k += 1;
    };
    let mut n = n;
    let _ = label;
    let ma = n.send("a1_bob", "from Alice");
    let ma2 = n.send("a1_bob", "from Alice, again");
    let mb = n.send("b1_alice", "from Bob");
    let mb2 = n.send("b1_alice", "from Bob, again");
    // Both sides keep the session with the smaller base key; the other is
    // archived as having lost to it.
    n.recv_ok("a1_bob", "a1", 1, &mb[&1], NOW + 1);
    n.recv_ok("b1_alice", "b1", 1, &ma[&1], NOW + 1);
    explain(&mut n, "a1_bob");
    explain(&mut n, "b1_alice");
    // The second messages: on the loser's side the late message of the
    // losing session decrypts on it and moves nothing.
    n.recv_ok("a1_bob", "a1", 1, &mb2[&1], NOW + 2);
    n.recv_ok("b1_alice", "b1", 1, &ma2[&1], NOW + 2);
    // Then both write on the winner, which each side routes to its active
    // session.
    let a = n.send("a1_bob", "converged A");
    n.recv_ok("b1_alice", "b1", 1, &a[&1], NOW + 3);
    let b = n.send("b1_alice", "converged B");
    n.recv_ok("a1_bob", "a1", 1, &b[&1], NOW + 3);
    explain(&mut n, "a1_bob");
    explain(&mut n, "b1_alice");
    let who = if alice_wins { "alice" } else { "bob" };
    n.vector(
        &format!("simultaneous_initiation_{who}_wins"),
        &format!(
            "§16.5: both devices start a session and send before either message arrives. Each side's accept sees its own active session unanswered and keeps the one with the smaller base key (here {who}'s), archiving the other as having lost to it; both sides agree. A late message of the losing session decrypts on it without promoting it; then both write on the winner."
        ),
    )
}

fn archive_bound() -> Value {
    let mut n = Net::new("archive bound");
    pair(&mut n);
    for i in 0..6 {
        n.connect("a1_bob", "a1", 1, "b1", NOW + i);
    }
    explain(&mut n, "a1_bob");
    n.vector(
        "archive_bound",
        "§16.3: each new bundle makes a new active session and archives the previous one as the newest; past MAX_ARCHIVED_SESSIONS = 4 the oldest is deleted (six sessions made, five kept).",
    )
}

/// A bare session of `a1` with `b1` (core operations), for frames written
/// by hand.
fn bare(n: &mut Net) {
    let b = n.bundle("b1");
    n.ok(json!({
        "op": "initiate", "device": "a1", "session": "a1_bare", "bundle": hex(&b),
        "expected": null, "policy": "PostQuantumRequired",
    }));
}

fn bare_send(n: &mut Net, plaintext: &[u8]) -> Vec<u8> {
    out(
        &n.ok(json!({ "op": "encrypt", "session": "a1_bare", "plaintext": hex(plaintext) })),
        "message",
    )
}

fn framing() -> Value {
    let mut n = Net::new("framing");
    pair(&mut n);
    bare(&mut n);
    // A prekey message whose plaintext has no kind byte: the accept is
    // undone (Bob's device unchanged), Ignore(Malformed).
    let empty = bare_send(&mut n, b"");
    n.recv_fails("b1_alice", "b1", 1, &empty, NOW);
    let kind5 = bare_send(&mut n, &[5, 1, 2]);
    n.recv_fails("b1_alice", "b1", 1, &kind5, NOW);
    let first = bare_send(&mut n, &[1, b'h', b'i']);
    n.recv_ok("b1_alice", "b1", 1, &first, NOW);
    // Bob's frames, read by the bare session: 0x01 || payload.
    let reply = n.send_to("b1_alice", 1, "hello");
    n.ok(json!({ "op": "decrypt", "session": "a1_bare", "message": hex(&reply) }));
    // Ratchet messages on the session Bob now has (the owner).
    let k = [0x09u8; 32];
    let mut hint = k.to_vec();
    hint.extend(7u32.to_be_bytes());
    let hint_no_base = [hint.clone(), vec![0]].concat();
    let hint_base = [hint.clone(), vec![1], [0x11u8; 32].to_vec()].concat();
    let mut high = k;
    high[31] = 0x80;
    let mut hint_high = high.to_vec();
    hint_high.extend(7u32.to_be_bytes());
    hint_high.push(0);
    let malformed: [(&str, Vec<u8>); 12] = [
        ("kind 0x00", vec![0]),
        ("kind 0x05", vec![5]),
        (
            "a distribution of 485 bytes",
            [vec![2], vec![0u8; 485]].concat(),
        ),
        (
            "a distribution of 486 zero bytes",
            [vec![2], vec![0u8; 486]].concat(),
        ),
        (
            "a retry hint of 36 bytes",
            [vec![3], hint_no_base[..36].to_vec()].concat(),
        ),
        (
            "a retry hint of 38 bytes",
            [vec![3], hint_no_base.clone(), vec![0]].concat(),
        ),
        (
            "a retry hint whose flag is 2",
            [vec![3], hint.clone(), vec![2]].concat(),
        ),
        (
            "a retry hint with a base key flag and no key",
            [vec![3], hint.clone(), vec![1]].concat(),
        ),
        (
            "a retry hint of 70 bytes",
            [vec![3], hint_base.clone(), vec![0]].concat(),
        ),
        (
            "a retry hint with a non-canonical ratchet key",
            [vec![3], hint_high].concat(),
        ),
        (
            "a distribution request of 31 bytes",
            [vec![4], vec![0x22u8; 31]].concat(),
        ),
        (
            "a distribution request of 33 bytes",
            [vec![4], vec![0x22u8; 33]].concat(),
        ),
    ];
    for (what, pt) in &malformed {
        let m = bare_send(&mut n, pt);
        n.recv_fails("b1_alice", "b1", 1, &m, NOW + 1);
        n.r.last()["frame"] = (*what).into();
    }
    // Well-formed frames of every kind.
    let ok: [(&str, Vec<u8>); 4] = [
        ("an empty payload", vec![1]),
        (
            "a retry request without a base key",
            [vec![3], hint_no_base].concat(),
        ),
        (
            "a retry request with a base key",
            [vec![3], hint_base].concat(),
        ),
        (
            "a distribution request",
            [vec![4], vec![0x22u8; 32]].concat(),
        ),
    ];
    for (what, pt) in &ok {
        let m = bare_send(&mut n, pt);
        n.recv_ok("b1_alice", "b1", 1, &m, NOW + 2);
        n.r.last()["frame"] = (*what).into();
    }
    // Bob's own frames of the other kinds, read by the bare session.
    let hint_json = json!({ "ratchet_key": hex(&k), "message_number": 7, "base_key": null });
    let rr = out(
        &n.ok(json!({ "op": "request_retry", "record": "b1_alice", "device_id": 1, "hint": hint_json, "now": NOW + 3 })),
        "message",
    );
    n.ok(json!({ "op": "decrypt", "session": "a1_bare", "message": hex(&rr) }));
    let dr = out(
        &n.ok(json!({ "op": "request_distribution", "record": "b1_alice", "device_id": 1, "group_id": hex(&[0x33u8; 32]) })),
        "message",
    );
    n.ok(json!({ "op": "decrypt", "session": "a1_bare", "message": hex(&dr) }));
    n.vector(
        "framing",
        "§16.10: a peer writes its plaintexts by hand on a bare session. A prekey message without a kind byte or of kind 0x05 is undone (the accept too) and Ignore(Malformed); then every malformed body on the owner session (kinds 0x00 and 0x05, a distribution of 485 bytes or that does not parse, retry hints of the wrong length, flag or key, distribution requests of 31 and 33 bytes), each Ignore(Malformed) with InvalidEncoding and nothing changed; well-formed frames of each kind; and the layer's own frames (payload, retry request, distribution request) as the bare session reads them. Each frame's `frame` note says what it is.",
    )
}

/// A stale device's messages on its sessions decrypt; it cannot start a
/// new one until it is listed again.
fn stale_device() -> Value {
    let mut n = Net::new("stale device");
    pair(&mut n);
    n.connect("a1_bob", "a1", 1, "b1", NOW);
    let m = n.send("a1_bob", "m");
    n.recv_ok("b1_alice", "b1", 1, &m[&1], NOW);
    let r1 = n.send_to("b1_alice", 1, "r1");
    let r2 = n.send_to("b1_alice", 1, "r2");
    // Bob's device 1 leaves Alice's list.
    n.list("a1_bob", &[], NOW + 1).unwrap();
    n.recv_ok("a1_bob", "a1", 1, &r1, NOW + 2);
    // Bob starts a new session: from a stale device, RetryLater.
    n.connect("b1_alice", "b1", 1, "a1", NOW + 3);
    let p = n.send("b1_alice", "new session");
    n.recv_fails("a1_bob", "a1", 1, &p[&1], NOW + 4);
    // The old session still decrypts.
    n.recv_ok("a1_bob", "a1", 1, &r2, NOW + 4);
    // Listed again, the kept message starts the session.
    n.list("a1_bob", &[(1, "b1")], NOW + 5).unwrap();
    n.recv_ok("a1_bob", "a1", 1, &p[&1], NOW + 6);
    explain(&mut n, "a1_bob");
    n.vector(
        "stale_device_new_session",
        "§16.5 step 2: a device off the list (stale) still decrypts on the sessions it has, but a prekey message with a base key none of its sessions has is RetryLater(UnknownDevice) (UnknownDevice), changing nothing; once the device is listed again the kept message is accepted.",
    )
}

/// A retry request in a new session names Alice's active session; Alice
/// archives it marked as having lost to the new session only if the new
/// session's base key is the smaller (`marked`).
fn marks(marked: bool) -> Value {
    let hint_key = testkit::model::primitives::x_pub(&[0x61; 32]);
    let mut k = 0;
    let (mut n, late, first) = loop {
        let mut n = Net::new(&format!("marks {k}"));
        pair(&mut n);
        n.connect("a1_bob", "a1", 1, "b1", NOW);
        let m = n.send("a1_bob", "m");
        n.recv_ok("b1_alice", "b1", 1, &m[&1], NOW);
        let late = n.send_to("b1_alice", 1, "late on the first session");
        let s = active_base(&n, "a1_bob", 1);
        let hint = testkit::model::sessions::Hint {
            ratchet_key: hint_key,
            n: 0,
            base_key: Some(s),
        };
        let bundle = n.bundle("a1");
        let o = n
            .start_new_session("b1_alice", "b1", 1, &bundle, &hint, NOW + 1)
            .unwrap();
        if (active_base(&n, "b1_alice", 1) < s) == marked {
            break (n, late, out(&o, "message"));
        }
        k += 1;
    };
    n.recv_ok("a1_bob", "a1", 1, &first, NOW + 2);
    explain(&mut n, "a1_bob");
    // The late message on the first session: a session that lost to the
    // active one is not promoted; one without a mark is.
    n.recv_ok("a1_bob", "a1", 1, &late, NOW + 3);
    explain(&mut n, "a1_bob");
    let a = n.send("a1_bob", "after");
    n.recv_ok("b1_alice", "b1", 1, &a[&1], NOW + 4);
    let b = n.send("b1_alice", "after, back");
    n.recv_ok("a1_bob", "a1", 1, &b[&1], NOW + 4);
    explain(&mut n, "a1_bob");
    explain(&mut n, "b1_alice");
    let (name, what) = if marked {
        (
            "marks_smaller_base_key",
            "smaller: the first session is archived as having lost to it, and a late message on it decrypts without promoting it",
        )
    } else {
        (
            "marks_larger_base_key",
            "larger: the first session is archived without a mark (a session is only marked as having lost to a smaller base key), and a late message on it promotes it again; the pair then converges on it",
        )
    };
    n.vector(
        name,
        &format!(
            "§16.5 \"Marks\": Bob starts a new session whose first message is a retry request naming Alice's active session; Alice accepts it. The new session's base key is the {what}."
        ),
    )
}

pub(super) fn vectors() -> Vec<Value> {
    vec![
        routing(),
        simultaneous(true),
        simultaneous(false),
        archive_bound(),
        stale_device(),
        marks(true),
        marks(false),
        framing(),
    ]
}
