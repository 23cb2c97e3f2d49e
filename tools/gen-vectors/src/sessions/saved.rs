//! §16.11 saved forms: a peer record with every optional field present,
//! the own record and a group session, each explained field by field,
//! sealed under a context (§10.5) and opened; another context, key or type
//! fails.

use serde_json::{Value, json};
use testkit::hex::hex;
use testkit::model::sessions::Hint;

use super::{GROUP, Net, stranger};
use crate::agreement::NOW;
use crate::rec::{e, ef, out};

fn seal_steps(n: &mut Net, state: &str, inner: u8, context: &[u8]) {
    let storage = n.r.rng.draw::<32>();
    let other_storage = n.r.rng.draw::<32>();
    n.r.rng.take();
    n.ok(json!({ "op": "explain", "state": state }));
    let sealed = out(
        &n.ok(json!({ "op": "seal", "state": state, "storage_key": hex(&storage), "context": hex(context) })),
        "sealed",
    );
    let unseal = |key: &[u8], context: &[u8], inner: u8| {
        json!({
            "op": "unseal", "sealed": hex(&sealed), "storage_key": hex(key),
            "context": hex(context), "inner_type": inner, "state": format!("{state}_opened"),
        })
    };
    n.ok(unseal(&storage, context, inner));
    let mut other_context = context.to_vec();
    other_context.push(b'x');
    n.r.fails(
        unseal(&storage, &other_context, inner),
        &e("AuthenticationFailed"),
    );
    n.r.fails(
        unseal(&other_storage, context, inner),
        &e("AuthenticationFailed"),
    );
    let wrong = if inner == 0x25 { 0x26 } else { 0x25 };
    n.r.fails(
        unseal(&storage, context, wrong),
        &ef("WrongType", json!({ "expected": wrong, "found": inner })),
    );
}

/// The states of the saved-forms vector, also the fixtures of
/// sessions_negative.json: devices `a1`, `a2`, `b1`, `b2`; records `a1_bob`
/// (every optional field), `a1_own`, `b1_alice`, `b2_alice`; groups `g_a1`
/// (one of Bob's chains) and `g_b1`.
pub(crate) fn scenario(n: &mut Net) {
    let now = NOW;
    n.devices(&["a1", "a2", "b1", "b2"]);
    let (x, y, z) = (
        stranger("saved x"),
        stranger("saved y"),
        stranger("saved z"),
    );
    n.record("a1_bob", "bob", "a1", None);
    let (b1, b2) = (n.ik("b1"), n.ik("b2"));
    n.list_keys(
        "a1_bob",
        &[
            (1, b1.clone()),
            (2, b2.clone()),
            (3, x.clone()),
            (4, y.clone()),
        ],
        now,
    )
    .unwrap();
    n.record("b1_alice", "alice", "b1", None);
    n.list("b1_alice", &[(7, "a1")], now).unwrap();
    n.record("b2_alice", "alice", "b2", None);
    n.list("b2_alice", &[(7, "a1")], now).unwrap();
    // Device 1: simultaneous initiation (an archived session with a
    // lost-to mark), then a new session for recovery (last_recovery), all
    // answered; at the end a retry request left unanswered (window, count,
    // hint with a base key).
    n.connect("a1_bob", "a1", 1, "b1", now);
    n.connect("b1_alice", "b1", 7, "a1", now);
    let ma = n.send("a1_bob", "a");
    let mb = n.send("b1_alice", "b");
    n.recv_ok("a1_bob", "a1", 1, &mb[&7], now + 1);
    n.recv_ok("b1_alice", "b1", 7, &ma[&1], now + 1);
    let hint = Hint {
        ratchet_key: testkit::model::primitives::x_pub(&[0x51; 32]),
        n: 3,
        base_key: Some(testkit::model::primitives::x_pub(&[0x52; 32])),
    };
    let bundle = n.bundle("b1");
    let first = out(
        &n.start_new_session("a1_bob", "a1", 1, &bundle, &hint, now + 2)
            .unwrap(),
        "message",
    );
    n.recv_ok("b1_alice", "b1", 7, &first, now + 3);
    let r = n.send_to("b1_alice", 7, "answered");
    n.recv_ok("a1_bob", "a1", 1, &r, now + 4);
    // Device 2: classical allowed, an X3DH session, answered.
    n.ok(json!({ "op": "allow_classical", "record": "a1_bob", "device_id": 2, "allowed": true }));
    n.ok(json!({ "op": "allow_classical", "record": "b2_alice", "device_id": 7, "allowed": true }));
    let classical = n.bundle_with("b2", None, None);
    n.add_bundle("a1_bob", "a1", 2, &classical, now + 6)
        .unwrap();
    let m = n.send_to("a1_bob", 2, "classical");
    n.recv_ok("b2_alice", "b2", 7, &m, now + 7);
    let r = n.send_to("b2_alice", 7, "classical reply");
    n.recv_ok("a1_bob", "a1", 2, &r, now + 8);
    // Device 3: a pending identity; device 4: stale.
    n.list_keys("a1_bob", &[(1, b1), (2, b2), (3, z)], now + 9)
        .unwrap();
    // The own record.
    n.record("a1_own", "alice", "a1", Some(7));
    n.list("a1_own", &[(7, "a1"), (8, "a2")], now).unwrap();
    // A group session with one chain of Bob's.
    let user = |s: &str| hex(s.as_bytes());
    n.ok(json!({ "op": "group_new", "group": "g_a1", "group_id": hex(&GROUP), "user": user("alice"), "device": "a1" }));
    n.ok(json!({ "op": "group_add_member", "group": "g_a1", "user": user("bob") }));
    n.ok(json!({ "op": "group_new", "group": "g_b1", "group_id": hex(&GROUP), "user": user("bob"), "device": "b1" }));
    n.ok(json!({ "op": "group_add_member", "group": "g_b1", "user": user("alice") }));
    let f = n.ok(json!({ "op": "group_distribute", "group": "g_b1", "records": ["b1_alice"] }));
    let d = testkit::hex::unhex(
        f.out["fanout"][0]["messages"][0]["message"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    n.ok(json!({
        "op": "group_install", "group": "g_a1", "record": "a1_bob", "device": "a1", "from": 1,
        "message": hex(&d), "now": now + 10,
    }));
    let m = out(
        &n.ok(json!({ "op": "group_session_encrypt", "group": "g_b1", "payload": hex(b"group") })),
        "message",
    );
    n.ok(json!({ "op": "group_session_decrypt", "group": "g_a1", "record": "a1_bob", "message": hex(&m) }));
    // Last, so that no later decrypt from device 1 answers it.
    n.request_retry("a1_bob", 1, &hint, now + 11).unwrap();
}

fn record_forms() -> Value {
    let mut n = Net::new("saved forms");
    scenario(&mut n);
    seal_steps(&mut n, "a1_bob", 0x25, b"records/bob");
    seal_steps(&mut n, "a1_own", 0x25, b"records/alice");
    seal_steps(&mut n, "g_a1", 0x26, b"groups/5e");
    n.vector(
        "saved_forms",
        "§16.11: a peer record whose devices show every optional field (device 1: an active session, an archived one with a lost-to mark and another without, last_recovery, the retry window and count, an unanswered hint with a base key, pinned; device 2: classical allowed and an X3DH session; device 3: a pending identity; device 4: stale), the own record (has_local_device), and a group session with one of Bob's chains: each explained field by field, sealed under a storage key and its context (inner types 0x25, 0x26) and opened; another context, another key, or the other type fails.",
    )
}

pub(super) fn vectors() -> Vec<Value> {
    vec![record_forms()]
}
