//! group.json: group messaging (SPEC.md §15). The one-way ratchet at
//! chosen indices (every block boundary of every level), a scripted group
//! session (installs of all three kinds, out-of-order reads, jumps across
//! carries and of exactly MAX_GROUP_JUMP, cache overflow, rotation), and
//! the forwarded-distribution attack with the one-call install's
//! all-or-nothing rule. Sender states at chosen indices are `load` steps:
//! the sender as it would be after as many encrypts, built from the closed
//! form.

use serde_json::{Value, json};
use testkit::hex::hex;
use testkit::model::Dev;
use testkit::model::group::ratchet::{closed_form, jump, levels_json, message_key};
use testkit::model::group::{Levels, Sender};

use crate::common::{device, distribution, pair, send};
use crate::rec::{Rec, file, out};

const LABEL: &str = "sotto v2 vectors group";
pub(crate) const GROUP: [u8; 32] = [0x67; 32];

/// The indices of the ratchet vector: every carry of every level, and
/// others.
pub(crate) const INDICES: &[u32] = &[
    0, 1, 14, 15, 16, 17, 31, 32, 0xF0, 0xFF, 0x100, 0x101, 0xFFF, 0x1000, 0x1001, 0xFFFF, 0x10000,
    0xFFFFF, 0x100000, 0x123456, 0xFFFFFF, 0x1000000, 0x1000001, 0xFFFFFFF, 0x10000000, 0x12345678,
    0x9ABCDEF0, 0xDEADBEEF, 0xEFFFFFFF, 0xF0000000, 0xFFFFFFF0, 0xFFFFFFFE, 0xFFFFFFFF,
];

/// A sender state moved to index `i` without sending (closed form).
pub(crate) fn sender_at(r: &Rec, name: &str, initial: &Levels, i: u32) -> Vec<u8> {
    let mut s = Sender::decode(&r.state(name)).unwrap();
    s.levels = closed_form(initial, i);
    s.index = i;
    s.encode()
}

/// The initial levels of a sender made by the step `group_sender_new`
/// (its first 256 drawn bytes).
pub(crate) fn initial_levels(step: &Value) -> Levels {
    let draws: Vec<u8> = step["rng_draws"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| testkit::hex::unhex(d.as_str().unwrap()).unwrap())
        .collect();
    testkit::model::group::ratchet::split_levels(&draws[..256])
}

fn ratchet() -> Value {
    let mut r = Rec::new(&format!("{LABEL} ratchet"));
    r.traced = true;
    device(&mut r, "alice");
    r.ok(json!({ "op": "group_sender_new", "sender": "sender", "group_id": hex(&GROUP), "device": "alice" }));
    let initial = initial_levels(r.steps.last().unwrap());
    let mut states = Vec::new();
    let mut prev_dist: Option<Vec<u8>> = None;
    let dist0 = distribution(&mut r, "sender");
    for &i in INDICES {
        let levels = closed_form(&initial, i);
        let mut from0 = initial;
        let cost = jump(0, &mut from0, i);
        assert_eq!(from0, levels);
        states.push(json!({
            "index": i, "levels": levels_json(&levels), "message_key": hex(&message_key(&levels)),
            "jump_from_0": { "steps": cost.steps, "derives": cost.derives },
        }));
        let state = sender_at(&r, "sender", &initial, i);
        r.ok(json!({ "op": "load", "name": "sender_at", "state": hex(&state) }));
        let dist = distribution(&mut r, "sender_at");
        let pt = format!("index {i:#x}");
        let step = json!({ "op": "group_encrypt", "sender": "sender_at", "plaintext": hex(pt.as_bytes()) });
        let Ok(o) = r.step(step) else {
            assert_eq!(i, u32::MAX);
            continue;
        };
        let message = out(&o, "message");
        r.ok(json!({ "op": "receiver_import", "receiver": "at_0", "group_id": hex(&GROUP), "distribution": hex(&dist0) }));
        let _ = r.step(
            json!({ "op": "receiver_decrypt", "receiver": "at_0", "message": hex(&message) }),
        );
        if let Some(p) = &prev_dist {
            r.ok(json!({ "op": "receiver_import", "receiver": "at_previous", "group_id": hex(&GROUP), "distribution": hex(p) }));
            let _ = r.step(json!({ "op": "receiver_decrypt", "receiver": "at_previous", "message": hex(&message) }));
        }
        prev_dist = Some(dist);
    }
    json!({
        "name": "ratchet", "kind": "ratchet",
        "description": "The ratchet (§15.4) at every carry of every level and other indices: levels and message key by the closed form, with the cost of one jump from index 0 (at most 120 steps and 28 derivations). The script loads the sender at each index (its state as after that many encrypts), encrypts there (at 2^32 - 1: ChainExhausted), and a receiver installed at index 0 and one at the previous listed index decrypt it (or refuse it: GroupIndexOutOfRange past MAX_GROUP_JUMP).",
        "initial_levels": levels_json(&initial),
        "states": states,
        "steps": r.into_steps(),
    })
}

fn session() -> Value {
    let mut r = Rec::new(&format!("{LABEL} session"));
    r.traced = true;
    for d in ["alice", "bob", "carol", "dave"] {
        device(&mut r, d);
    }
    pair(&mut r, "alice", "bob");
    r.ok(json!({ "op": "group_sender_new", "sender": "sender", "group_id": hex(&GROUP), "device": "alice" }));
    let initial = initial_levels(r.steps.last().unwrap());
    for s in ["bob_store", "carol_store", "dave_store"] {
        r.ok(json!({ "op": "store_new", "store": s, "group_id": hex(&GROUP) }));
    }
    // Bob: the one-call install over his session with Alice.
    let d0 = distribution(&mut r, "sender");
    let carried = send(&mut r, "alice_bob", &d0);
    r.ok(json!({ "op": "store_receive_distribution", "store": "bob_store", "session": "bob_alice", "message": hex(&carried) }));
    let mut g = Vec::new();
    for i in 0..4u8 {
        g.push(out(&r.ok(json!({ "op": "group_encrypt", "sender": "sender", "plaintext": hex(&[b'g', b'0' + i]) })), "message"));
    }
    let dec = |r: &mut Rec, store: &str, m: &[u8]| {
        r.step(json!({ "op": "store_decrypt", "store": store, "message": hex(m) }))
            .map(drop)
    };
    dec(&mut r, "bob_store", &g[1]).unwrap();
    dec(&mut r, "bob_store", &g[0]).unwrap();
    dec(&mut r, "bob_store", &g[0]).unwrap_err();
    // Carol: the distribution at index 4 in a prekey message (accept, then
    // install from its plaintext).
    let d4 = distribution(&mut r, "sender");
    let kem = Dev::decode(&r.state("carol")).unwrap().last_resort_kem().id;
    let bundle = out(&r.ok(json!({ "op": "bundle", "device": "carol", "one_time_prekey_id": null, "kem_prekey_id": kem })), "bundle");
    r.ok(json!({ "op": "initiate", "device": "alice", "session": "alice_carol", "bundle": hex(&bundle), "expected": null, "policy": "PostQuantumRequired" }));
    let to_carol = send(&mut r, "alice_carol", &d4);
    r.ok(json!({ "op": "store_install_accepted", "store": "carol_store", "device": "carol", "session": "carol_alice", "message": hex(&to_carol), "policy": "PostQuantumRequired" }));
    // Dave: an unauthenticated import (a backup) of the same distribution.
    r.ok(json!({ "op": "store_import", "store": "dave_store", "distribution": hex(&d4) }));
    dec(&mut r, "carol_store", &g[3]).unwrap_err();
    let g4 = out(
        &r.ok(json!({ "op": "group_encrypt", "sender": "sender", "plaintext": hex(b"g4") })),
        "message",
    );
    for s in ["bob_store", "carol_store", "dave_store"] {
        dec(&mut r, s, &g4).unwrap();
    }
    // Across the carry 0xFFFF -> 0x10000.
    r.ok(json!({ "op": "load", "name": "sender", "state": hex(&sender_at(&r, "sender", &initial, 0xFFF0)) }));
    let mut carry = Vec::new();
    for _ in 0..20 {
        carry.push(out(
            &r.ok(json!({ "op": "group_encrypt", "sender": "sender", "plaintext": hex(b"carry") })),
            "message",
        ));
    }
    dec(&mut r, "bob_store", &carry[19]).unwrap();
    dec(&mut r, "bob_store", &carry[14]).unwrap();
    dec(&mut r, "carol_store", &carry[16]).unwrap();
    dec(&mut r, "dave_store", &carry[15]).unwrap();
    // A jump of exactly MAX_GROUP_JUMP for Bob (next = 0x10004), and one
    // more for Carol (next = 0x10001).
    let far = 0x10004 + (1 << 24);
    r.ok(json!({ "op": "load", "name": "sender", "state": hex(&sender_at(&r, "sender", &initial, far)) }));
    let m_far = out(
        &r.ok(json!({ "op": "group_encrypt", "sender": "sender", "plaintext": hex(b"far") })),
        "message",
    );
    dec(&mut r, "bob_store", &m_far).unwrap();
    dec(&mut r, "carol_store", &m_far).unwrap_err();
    // Nine jumps of 40: the cache holds 256 keys, the lowest go.
    let mut cached = Vec::new();
    for k in 0..9u32 {
        let at = far + 1 + 40 * k;
        r.ok(json!({ "op": "load", "name": "sender", "state": hex(&sender_at(&r, "sender", &initial, at + 39)) }));
        let m = out(
            &r.ok(
                json!({ "op": "group_encrypt", "sender": "sender", "plaintext": hex(b"window") }),
            ),
            "message",
        );
        dec(&mut r, "bob_store", &m).unwrap();
        if k == 0 || k == 8 {
            r.ok(json!({ "op": "load", "name": "sender", "state": hex(&sender_at(&r, "sender", &initial, at + 30)) }));
            cached.push(out(
                &r.ok(
                    json!({ "op": "group_encrypt", "sender": "sender", "plaintext": hex(b"late") }),
                ),
                "message",
            ));
        }
    }
    // The first jump's keys were evicted; the last one's is cached.
    dec(&mut r, "bob_store", &cached[0]).unwrap_err();
    dec(&mut r, "bob_store", &cached[1]).unwrap();
    // Alice rotates; Bob installs the new chain and reads both.
    r.ok(json!({ "op": "group_sender_rotate", "sender": "sender", "device": "alice" }));
    let d_new = distribution(&mut r, "sender");
    let carried = send(&mut r, "alice_bob", &d_new);
    r.ok(json!({ "op": "store_receive_distribution", "store": "bob_store", "session": "bob_alice", "message": hex(&carried) }));
    let n0 = out(
        &r.ok(json!({ "op": "group_encrypt", "sender": "sender", "plaintext": hex(b"new chain") })),
        "message",
    );
    dec(&mut r, "bob_store", &n0).unwrap();
    for s in ["bob_store", "carol_store", "dave_store"] {
        r.ok(json!({ "op": "explain", "state": s }));
    }
    r.ok(json!({ "op": "explain", "state": "sender" }));
    json!({
        "name": "session", "kind": "session",
        "description": "Alice's chain: Bob installs it with the one-call form over his session with her (authenticated), Carol from the plaintext of Alice's prekey message (authenticated), Dave by an unauthenticated import (every plaintext is marked). Out-of-order reads and a duplicate; reads across the carry 0xFFFF -> 0x10000 (the sender loaded at 0xFFF0); Bob jumps exactly MAX_GROUP_JUMP = 2^24, Carol one more (GroupIndexOutOfRange); nine jumps of 40 overflow Bob's cache (256 keys, lowest evicted: a late message of the first jump is DuplicateMessage, one of the last decrypts); Alice rotates and Bob reads her new chain.",
        "initial_levels": levels_json(&initial),
        "steps": r.into_steps(),
    })
}

fn forwarding() -> Value {
    let mut r = Rec::new(&format!("{LABEL} forwarding"));
    r.traced = true;
    for d in ["alice", "bob", "mallory"] {
        device(&mut r, d);
    }
    pair(&mut r, "alice", "bob");
    pair(&mut r, "mallory", "bob");
    r.ok(json!({ "op": "group_sender_new", "sender": "sender", "group_id": hex(&GROUP), "device": "alice" }));
    r.ok(json!({ "op": "store_new", "store": "bob_store", "group_id": hex(&GROUP) }));
    let d = distribution(&mut r, "sender");
    // Mallory forwards Alice's distribution over her own session.
    let forwarded = send(&mut r, "mallory_bob", &d);
    r.step(json!({ "op": "store_receive_distribution", "store": "bob_store", "session": "bob_mallory", "message": hex(&forwarded) })).unwrap_err();
    // Neither changed: the same message then decrypts as a plain message.
    r.ok(json!({ "op": "decrypt", "session": "bob_mallory", "message": hex(&forwarded) }));
    r.ok(json!({ "op": "receiver_import", "receiver": "standalone", "group_id": hex(&GROUP), "distribution": hex(&d) }));
    let carried = send(&mut r, "alice_bob", &d);
    r.ok(json!({ "op": "store_receive_distribution", "store": "bob_store", "session": "bob_alice", "message": hex(&carried) }));
    // Forwarded again after Alice's own copy: still refused.
    let again = send(&mut r, "mallory_bob", &d);
    r.step(json!({ "op": "store_receive_distribution", "store": "bob_store", "session": "bob_mallory", "message": hex(&again) })).unwrap_err();
    r.step(json!({ "op": "receiver_receive_distribution", "receiver": "bob_receiver", "group_id": hex(&GROUP), "session": "bob_mallory", "message": hex(&again) })).unwrap_err();
    let m = out(
        &r.ok(
            json!({ "op": "group_encrypt", "sender": "sender", "plaintext": hex(b"from alice") }),
        ),
        "message",
    );
    r.ok(json!({ "op": "store_decrypt", "store": "bob_store", "message": hex(&m) }));
    r.ok(json!({ "op": "receiver_decrypt", "receiver": "standalone", "message": hex(&m) }));
    json!({
        "name": "forwarding", "kind": "session",
        "description": "Mallory forwards Alice's distribution to Bob over her own session: GroupOwnerMismatch, before and after Alice's own copy, for the store and a standalone receiver; the one-call install that failed left Bob's session unchanged (the same message then decrypts). An unauthenticated import of the same bytes is marked unauthenticated; the store's copy, from Alice's session, is marked authenticated.",
        "steps": r.into_steps(),
    })
}

pub(crate) fn generate() -> Value {
    file(
        "group",
        "Group messaging (SPEC.md §15): the one-way ratchet at chosen indices, a scripted group session, and the forwarded-distribution attack. Scripts with the model's traces.",
        LABEL,
        vec![ratchet(), session(), forwarding()],
    )
}
