//! persistence.json: saved states of every type (SPEC.md §10.2, §10.3,
//! §15.11), each explained field by field, then sealed under a storage key
//! and a context (§10.5) and opened again; opened with another context,
//! another key or as another type it fails. Contexts of 1024 and 1025
//! bytes pin `MAX_SEAL_CONTEXT_LEN`.

use serde_json::{Value, json};
use testkit::hex::hex;

use crate::common::{device, distribution, gsend, pair, recv, send, sender};
use crate::rec::{Rec, e, ef, file, out};

const LABEL: &str = "sotto v2 vectors persistence";
const GROUP: [u8; 32] = [0x47; 32];

/// Seal, open, and the three refusals, for the state named `state`.
fn seal_steps(r: &mut Rec, state: &str, inner: u8, context: &[u8]) {
    let storage = r.rng.draw::<32>();
    let other_storage = r.rng.draw::<32>();
    r.rng.take();
    r.ok(json!({ "op": "explain", "state": state }));
    let sealed = out(
        &r.ok(json!({
            "op": "seal", "state": state, "storage_key": hex(&storage), "context": hex(context),
        })),
        "sealed",
    );
    let unseal = |key: &[u8], context: &[u8], inner: u8| {
        json!({
            "op": "unseal", "sealed": hex(&sealed), "storage_key": hex(key),
            "context": hex(context), "inner_type": inner, "state": format!("{state}_opened"),
        })
    };
    r.ok(unseal(&storage, context, inner));
    let mut other_context = context.to_vec();
    other_context.push(b'x');
    r.fails(
        unseal(&storage, &other_context, inner),
        &e("AuthenticationFailed"),
    );
    r.fails(
        unseal(&other_storage, context, inner),
        &e("AuthenticationFailed"),
    );
    let wrong = if inner == 0x20 { 0x21 } else { 0x20 };
    r.fails(
        unseal(&storage, context, wrong),
        &ef("WrongType", json!({ "expected": wrong, "found": inner })),
    );
}

fn vector(name: &str, description: &str, r: Rec) -> Value {
    json!({ "name": name, "description": description, "steps": r.into_steps() })
}

pub(crate) fn generate() -> Value {
    let mut vectors = Vec::new();

    // Pairwise states.
    let mut r = Rec::new(&format!("{LABEL} pairwise"));
    r.traced = true;
    device(&mut r, "alice");
    device(&mut r, "bob");
    r.ok(json!({ "op": "generate_one_time_prekeys", "device": "bob", "count": 3 }));
    r.ok(json!({ "op": "generate_kem_prekeys", "device": "bob", "count": 2 }));
    pair(&mut r, "alice", "bob");
    seal_steps(&mut r, "alice_bob", 0x20, b"session/bob/1");
    seal_steps(&mut r, "bob", 0x21, b"device");
    // Two messages lost: Bob stores their keys when the third arrives.
    send(&mut r, "alice_bob", b"one");
    send(&mut r, "alice_bob", b"two");
    let m3 = send(&mut r, "alice_bob", b"three");
    recv(&mut r, "bob_alice", &m3);
    seal_steps(&mut r, "bob_alice", 0x20, b"session/alice/1");
    vectors.push(vector(
        "pairwise_states",
        "Alice's PQXDH session while it still sends prekey messages, Bob's device after an accept (one-time prekeys, one-time KEM prekeys, a recorded base key), and Bob's session holding two skipped keys: each explained, sealed under its context and opened; another context, another storage key, or another type fails.",
        r,
    ));

    // X3DH session state (has_kem = 0, KB of §7.4 over 0x00).
    let mut r = Rec::new(&format!("{LABEL} classical"));
    device(&mut r, "alice");
    device(&mut r, "bob");
    let bundle = out(
        &r.ok(json!({ "op": "bundle", "device": "bob", "one_time_prekey_id": null, "kem_prekey_id": null })),
        "bundle",
    );
    r.ok(json!({
        "op": "initiate", "device": "alice", "session": "alice_bob", "bundle": hex(&bundle),
        "expected": null, "policy": "ClassicalAllowed",
    }));
    send(&mut r, "alice_bob", b"classical");
    seal_steps(&mut r, "alice_bob", 0x20, b"");
    vectors.push(vector(
        "classical_session_state",
        "An X3DH session with its pending record (has_kem = 0), sealed with an empty context.",
        r,
    ));

    // Group states.
    let mut r = Rec::new(&format!("{LABEL} group"));
    device(&mut r, "alice");
    device(&mut r, "bob");
    pair(&mut r, "alice", "bob");
    sender(&mut r, "sender", &GROUP, "alice");
    let d = distribution(&mut r, "sender");
    let carried = send(&mut r, "alice_bob", &d);
    r.ok(json!({ "op": "store_new", "store": "store", "group_id": hex(&GROUP) }));
    r.ok(json!({ "op": "store_receive_distribution", "store": "store", "session": "bob_alice", "message": hex(&carried) }));
    r.ok(json!({ "op": "receiver_import", "receiver": "receiver", "group_id": hex(&GROUP), "distribution": hex(&d) }));
    let mut messages = Vec::new();
    for i in 0..4u8 {
        messages.push(gsend(&mut r, "sender", &[b'g', i]));
    }
    r.ok(json!({ "op": "receiver_decrypt", "receiver": "receiver", "message": hex(&messages[3]) }));
    r.ok(json!({ "op": "store_decrypt", "store": "store", "message": hex(&messages[2]) }));
    seal_steps(&mut r, "sender", 0x22, b"group/47/sender");
    seal_steps(&mut r, "receiver", 0x23, b"group/47/alice/receiver");
    seal_steps(&mut r, "store", 0x24, b"group/47/store");
    vectors.push(vector(
        "group_states",
        "A group sender after four sends, a standalone unauthenticated receiver holding three cached keys, and a store with Alice's authenticated chain holding two: explained, sealed and opened.",
        r,
    ));

    // The context bound.
    let mut r = Rec::new(&format!("{LABEL} context"));
    device(&mut r, "alice");
    let storage = r.rng.draw::<32>();
    r.rng.take();
    let at = vec![b'c'; 1024];
    let over = vec![b'c'; 1025];
    let sealed = out(
        &r.ok(json!({ "op": "seal", "state": "alice", "storage_key": hex(&storage), "context": hex(&at) })),
        "sealed",
    );
    r.ok(json!({ "op": "unseal", "sealed": hex(&sealed), "storage_key": hex(&storage), "context": hex(&at), "inner_type": 0x21, "state": "alice_opened" }));
    r.fails(
        json!({ "op": "seal", "state": "alice", "storage_key": hex(&storage), "context": hex(&over) }),
        &e("TooLarge"),
    );
    r.fails(
        json!({ "op": "unseal", "sealed": hex(&sealed), "storage_key": hex(&storage), "context": hex(&over), "inner_type": 0x21, "state": "alice_opened" }),
        &e("TooLarge"),
    );
    vectors.push(vector(
        "seal_context_bound",
        "A context of MAX_SEAL_CONTEXT_LEN = 1024 bytes seals and opens; 1025 bytes is TooLarge when sealing (before the salt is drawn) and when opening.",
        r,
    ));

    file(
        "persistence",
        "Saved states of every type, explained field by field, sealed under a storage key and a context, and opened (SPEC.md §10, §15.11).",
        LABEL,
        vectors,
    )
}
