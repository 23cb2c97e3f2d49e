//! agreement.json: the key agreement of SPEC.md §7 — PQXDH with a one-time
//! and with a last-resort KEM prekey, each with and without a one-time
//! X25519 prekey; X3DH under the `ClassicalAllowed` opt-in with and without
//! a one-time prekey; a KEM prekey under `ClassicalAllowed` (still PQXDH);
//! and the downgrade refusals both ways. Each vector is a script with the
//! model's traces (every DH output, the KEM values, SK, KB, AD and the
//! first messages' keys) and `explain` steps that spell out the devices and
//! the bundle.

use serde_json::{Value, json};
use testkit::hex::hex;
use testkit::layout;
use testkit::model::keys::identity_key_bytes;
use testkit::model::{Dev, with};

use crate::rec::{Rec, e, file, out};

const LABEL: &str = "sotto v2 vectors agreement";
/// The creation time every device of this file is made with.
pub(crate) const NOW: u64 = 1_700_000_000;

/// Which KEM prekey a bundle carries.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum KemChoice {
    None,
    OneTime,
    LastResort,
}

/// Alice's and Bob's devices, Bob's prekeys, and Bob's bundle; returns the
/// bundle.
pub(crate) fn setup(r: &mut Rec, opk: bool, kem: KemChoice) -> Vec<u8> {
    r.ok(json!({ "op": "device_new", "device": "alice", "now": NOW }));
    r.ok(json!({ "op": "device_new", "device": "bob", "now": NOW }));
    if opk {
        r.ok(json!({ "op": "generate_one_time_prekeys", "device": "bob", "count": 2 }));
    }
    if kem == KemChoice::OneTime {
        r.ok(json!({ "op": "generate_kem_prekeys", "device": "bob", "count": 2 }));
    }
    // The second of each kind, so that ids and counters are not all 1.
    let kem_id = match kem {
        KemChoice::None => Value::Null,
        KemChoice::OneTime => 3.into(),
        KemChoice::LastResort => 1.into(),
    };
    let o = r.ok(json!({
        "op": "bundle", "device": "bob",
        "one_time_prekey_id": if opk { Value::from(2) } else { Value::Null },
        "kem_prekey_id": kem_id,
    }));
    let bundle = out(&o, "bundle");
    r.ok(json!({ "op": "explain", "state": "alice" }));
    r.ok(json!({ "op": "explain", "state": "bob" }));
    r.ok(json!({ "op": "explain", "input": hex(&bundle) }));
    bundle
}

/// Bob's encoded identity key.
pub(crate) fn identity(r: &Rec, name: &str) -> Vec<u8> {
    identity_key_bytes(&Dev::decode(&r.state(name)).unwrap().ik)
}

/// A handshake, then a reply and one more message each way.
fn handshake(name: &str, description: &str, opk: bool, kem: KemChoice, policy: &str) -> Value {
    let mut r = Rec::new(&format!("{LABEL} {name}"));
    r.traced = true;
    let bundle = setup(&mut r, opk, kem);
    let expected = hex(&identity(&r, "bob"));
    r.ok(json!({
        "op": "initiate", "device": "alice", "session": "alice_session", "bundle": hex(&bundle),
        "expected": expected, "policy": policy,
    }));
    let m1 = out(
        &r.ok(json!({ "op": "encrypt", "session": "alice_session", "plaintext": hex(b"Hello, Bob.") })),
        "message",
    );
    r.ok(json!({
        "op": "accept", "device": "bob", "session": "bob_session", "message": hex(&m1),
        "policy": policy,
    }));
    r.ok(json!({ "op": "explain", "state": "bob" }));
    let m2 = out(
        &r.ok(json!({ "op": "encrypt", "session": "bob_session", "plaintext": hex(b"Hello, Alice.") })),
        "message",
    );
    r.ok(json!({ "op": "decrypt", "session": "alice_session", "message": hex(&m2) }));
    let m3 = out(
        &r.ok(json!({ "op": "encrypt", "session": "alice_session", "plaintext": hex(b"No prekey header now.") })),
        "message",
    );
    r.ok(json!({ "op": "decrypt", "session": "bob_session", "message": hex(&m3) }));
    r.ok(json!({ "op": "explain", "state": "alice_session" }));
    r.ok(json!({ "op": "explain", "state": "bob_session" }));
    json!({ "name": name, "description": description, "policy": policy, "steps": r.into_steps() })
}

/// The downgrade refusals: a bundle without a KEM prekey, a classical
/// prekey message, and a PQXDH prekey message with its KEM fields removed.
fn downgrades() -> Value {
    let mut r = Rec::new(&format!("{LABEL} downgrades"));
    r.traced = true;
    let bundle = setup(&mut r, true, KemChoice::None);
    // §7.2 step 1: nothing is drawn.
    r.fails(
        json!({ "op": "initiate", "device": "alice", "session": "alice_session", "bundle": hex(&bundle), "expected": null, "policy": "PostQuantumRequired" }),
        &e("PostQuantumRequired"),
    );
    r.ok(json!({ "op": "initiate", "device": "alice", "session": "alice_session", "bundle": hex(&bundle), "expected": null, "policy": "ClassicalAllowed" }));
    let classical = out(
        &r.ok(
            json!({ "op": "encrypt", "session": "alice_session", "plaintext": hex(b"classical") }),
        ),
        "message",
    );
    // §7.3 step 1.
    r.fails(
        json!({ "op": "accept", "device": "bob", "session": "bob_session", "message": hex(&classical), "policy": "PostQuantumRequired" }),
        &e("PostQuantumRequired"),
    );
    // A PQXDH message to the same device, its KEM fields cut out: accepted
    // as X3DH under the opt-in, it does not decrypt (SK, KB and the
    // associated data all differ).
    let o = r.ok(
        json!({ "op": "bundle", "device": "bob", "one_time_prekey_id": null, "kem_prekey_id": 1 }),
    );
    r.ok(json!({ "op": "initiate", "device": "alice", "session": "alice_pq", "bundle": hex(&out(&o, "bundle")), "expected": null, "policy": "PostQuantumRequired" }));
    let pq = out(
        &r.ok(json!({ "op": "encrypt", "session": "alice_pq", "plaintext": hex(b"post-quantum") })),
        "message",
    );
    let l = layout::message(&pq);
    let stripped = with(&pq, |b| {
        b.drain(l.start("kem_id")..l.end_of("ct"));
        b[l.start("has_kem")] = 0;
    });
    r.fails(
        json!({ "op": "accept", "device": "bob", "session": "bob_session", "message": hex(&stripped), "policy": "ClassicalAllowed" }),
        &e("AuthenticationFailed"),
    );
    // The same message whole is accepted, under either policy.
    r.ok(json!({ "op": "accept", "device": "bob", "session": "bob_session", "message": hex(&pq), "policy": "ClassicalAllowed" }));
    json!({
        "name": "downgrades_refused",
        "description": "PostQuantumRequired refuses a bundle without a KEM prekey (initiate, nothing drawn) and a prekey message without a KEM ciphertext (accept); a PQXDH prekey message with has_kem set to 0 and its kem_id and ct removed fails the tag under ClassicalAllowed (AuthenticationFailed, device unchanged); the whole message is then accepted.",
        "steps": r.into_steps(),
    })
}

pub(crate) fn generate() -> Value {
    let vectors = vec![
        handshake(
            "pqxdh_one_time_kem_with_one_time_prekey",
            "PQXDH: one-time KEM prekey 3, one-time prekey 2.",
            true,
            KemChoice::OneTime,
            "PostQuantumRequired",
        ),
        handshake(
            "pqxdh_one_time_kem_without_one_time_prekey",
            "PQXDH: one-time KEM prekey 3, no one-time prekey.",
            false,
            KemChoice::OneTime,
            "PostQuantumRequired",
        ),
        handshake(
            "pqxdh_last_resort_kem_with_one_time_prekey",
            "PQXDH: last-resort KEM prekey 1, one-time prekey 2.",
            true,
            KemChoice::LastResort,
            "PostQuantumRequired",
        ),
        handshake(
            "pqxdh_last_resort_kem_without_one_time_prekey",
            "PQXDH: last-resort KEM prekey 1, no one-time prekey: a replayable prekey message, its base key recorded under signed prekey 1.",
            false,
            KemChoice::LastResort,
            "PostQuantumRequired",
        ),
        handshake(
            "x3dh_classical_with_one_time_prekey",
            "X3DH under ClassicalAllowed: no KEM prekey, one-time prekey 2.",
            true,
            KemChoice::None,
            "ClassicalAllowed",
        ),
        handshake(
            "x3dh_classical_without_one_time_prekey",
            "X3DH under ClassicalAllowed: no KEM prekey, no one-time prekey.",
            false,
            KemChoice::None,
            "ClassicalAllowed",
        ),
        handshake(
            "pqxdh_under_classical_allowed",
            "A bundle with a KEM prekey under ClassicalAllowed: still PQXDH (§7.1).",
            true,
            KemChoice::LastResort,
            "ClassicalAllowed",
        ),
        downgrades(),
    ];
    file(
        "agreement",
        "Key agreement (SPEC.md §7): PQXDH with one-time and last-resort KEM prekeys, with and without one-time prekeys; X3DH under the classical opt-in; downgrade refusals. Scripts with the model's traces.",
        LABEL,
        vectors,
    )
}
