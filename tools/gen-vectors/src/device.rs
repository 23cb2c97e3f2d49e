//! device.json: the device operations of SPEC.md §6 at their limits and
//! the rules around prekey messages: rotation and removal of signed and
//! last-resort KEM prekeys, the one-time prekey bounds and id overflow of
//! both kinds, the replay rule (per signed prekey, for as long as it is
//! held) and its bound (`SignedPreKeyExhausted`), and reset after a
//! restore. States too long to write out are built by recipes
//! (README: "Recipes"); every state after a step shows its generation.

use serde_json::{Value, json};
use testkit::hex::hex;
use testkit::model::Dev;

use crate::common::{device, ik, send};
use crate::rec::{Rec, e, ef, file, out};

const LABEL: &str = "sotto v2 vectors device";

/// Alice's prekey message to Bob with the named prekeys (his current
/// signed prekey; `kem: None` means his current last-resort one), on a new
/// session `session`.
fn prekey_message(r: &mut Rec, session: &str, opk: Option<u32>, kem: Option<u32>) -> Vec<u8> {
    let kem = kem.unwrap_or_else(|| Dev::decode(&r.state("bob")).unwrap().last_resort_kem().id);
    let bundle = out(
        &r.ok(json!({ "op": "bundle", "device": "bob", "one_time_prekey_id": opk, "kem_prekey_id": kem })),
        "bundle",
    );
    r.ok(json!({
        "op": "initiate", "device": "alice", "session": session, "bundle": hex(&bundle),
        "expected": hex(&ik(r, "bob")), "policy": "PostQuantumRequired",
    }));
    send(r, session, session.as_bytes())
}

fn accept(message: &[u8], session: &str) -> Value {
    json!({ "op": "accept", "device": "bob", "session": session, "message": hex(message), "policy": "PostQuantumRequired" })
}

fn start(name: &str) -> Rec {
    let mut r = Rec::new(&format!("{LABEL} {name}"));
    device(&mut r, "alice");
    device(&mut r, "bob");
    r
}

fn vector(name: &str, description: &str, r: Rec) -> Value {
    json!({ "name": name, "description": description, "steps": r.into_steps() })
}

/// Puts back a saved device state (a `load` step).
fn restore(r: &mut Rec, state: &[u8]) {
    r.ok(json!({ "op": "load", "name": "bob", "state": hex(state) }));
}

fn fill(r: &mut Rec, fields: Value) {
    let mut recipe = json!({ "kind": "device_fill", "from": "bob" });
    for (k, v) in fields.as_object().unwrap() {
        recipe[k] = v.clone();
    }
    r.ok(json!({ "op": "load", "name": "bob", "recipe": recipe }));
}

fn signed_prekey_rotation() -> Value {
    let mut r = start("signed_prekey_rotation");
    let for_spk1 = prekey_message(&mut r, "a1", None, None);
    for now in [1_700_086_400u64, 1_700_172_800, 1_700_259_200] {
        r.ok(json!({ "op": "rotate_signed_prekey", "device": "bob", "now": now }));
    }
    // Signed prekey 1 is one of the three old ones: still accepted.
    let held = r.state("bob");
    r.ok(accept(&for_spk1, "b1"));
    restore(&mut r, &held);
    r.fails(
        json!({ "op": "remove_signed_prekey", "device": "bob", "id": 4 }),
        &ef("UnknownSignedPreKey", json!({ "id": 4 })),
    );
    r.fails(
        json!({ "op": "remove_signed_prekey", "device": "bob", "id": 9 }),
        &ef("UnknownSignedPreKey", json!({ "id": 9 })),
    );
    r.ok(json!({ "op": "remove_signed_prekey", "device": "bob", "id": 2 }));
    r.fails(
        json!({ "op": "remove_signed_prekey", "device": "bob", "id": 2 }),
        &ef("UnknownSignedPreKey", json!({ "id": 2 })),
    );
    r.ok(json!({ "op": "rotate_signed_prekey", "device": "bob", "now": 1_700_345_600u64 }));
    r.ok(json!({ "op": "rotate_signed_prekey", "device": "bob", "now": 1_700_432_000u64 }));
    // Signed prekeys 3, 4, 5, 6 are held; 1 was deleted by the rotation.
    r.fails(
        accept(&for_spk1, "b1"),
        &ef("UnknownSignedPreKey", json!({ "id": 1 })),
    );
    r.ok(json!({ "op": "explain", "state": "bob" }));
    vector(
        "signed_prekey_rotation",
        "Signed prekey 1 is accepted while it is one of the MAX_SIGNED_PREKEYS - 1 = 3 old keys. Removing the current key (4) or one not held (9) is UnknownSignedPreKey; removing old key 2 works (once). Two more rotations: keys 3..=6 are held, and the message for key 1 is UnknownSignedPreKey. (A load step then puts back the device as it was before that accept.)",
        r,
    )
}

fn signed_prekey_id_overflow() -> Value {
    let mut r = start("signed_prekey_id_overflow");
    fill(&mut r, json!({ "next_spk_id": u32::MAX - 1 }));
    r.ok(json!({ "op": "rotate_signed_prekey", "device": "bob", "now": 1 }));
    r.fails(
        json!({ "op": "rotate_signed_prekey", "device": "bob", "now": 2 }),
        &e("TooManyPreKeys"),
    );
    r.fails(
        json!({ "op": "reset_prekeys", "device": "bob", "now": 2, "last_generation": 0 }),
        &e("TooManyPreKeys"),
    );
    vector(
        "signed_prekey_id_overflow",
        "Next signed prekey id 2^32 - 2 (a recipe edit): assigned; then, with the next id at 2^32 - 1, rotation and reset are TooManyPreKeys and draw nothing.",
        r,
    )
}

fn one_time_prekey_limits() -> Value {
    let mut r = start("one_time_prekey_limits");
    fill(&mut r, json!({ "one_time_prekeys": 998 }));
    r.fails(
        json!({ "op": "generate_one_time_prekeys", "device": "bob", "count": 3 }),
        &e("TooManyPreKeys"),
    );
    r.ok(json!({ "op": "generate_one_time_prekeys", "device": "bob", "count": 0 }));
    r.ok(json!({ "op": "generate_one_time_prekeys", "device": "bob", "count": 2 }));
    r.fails(
        json!({ "op": "generate_one_time_prekeys", "device": "bob", "count": 1 }),
        &e("TooManyPreKeys"),
    );
    vector(
        "one_time_prekey_limits",
        "998 one-time prekeys held (recipe): 3 more is TooManyPreKeys; 0 succeeds and changes nothing (the generation stays); 2 reach MAX_ONE_TIME_PREKEYS = 1000; 1 more fails.",
        r,
    )
}

fn one_time_prekey_id_overflow() -> Value {
    let mut r = start("one_time_prekey_id_overflow");
    fill(&mut r, json!({ "next_opk_id": u32::MAX - 2 }));
    r.fails(
        json!({ "op": "generate_one_time_prekeys", "device": "bob", "count": 3 }),
        &e("TooManyPreKeys"),
    );
    r.ok(json!({ "op": "generate_one_time_prekeys", "device": "bob", "count": 2 }));
    r.fails(
        json!({ "op": "generate_one_time_prekeys", "device": "bob", "count": 1 }),
        &e("TooManyPreKeys"),
    );
    r.ok(json!({ "op": "generate_one_time_prekeys", "device": "bob", "count": 0 }));
    vector(
        "one_time_prekey_id_overflow",
        "Next one-time prekey id 2^32 - 3 (recipe): 3 fail, 2 get ids 2^32 - 3 and 2^32 - 2, 1 fails, 0 succeeds.",
        r,
    )
}

fn kem_prekeys() -> Value {
    let mut r = start("kem_prekeys");
    r.ok(json!({ "op": "generate_kem_prekeys", "device": "bob", "count": 2 }));
    let for_lr1 = prekey_message(&mut r, "a1", None, Some(1));
    let for_otk2 = prekey_message(&mut r, "a2", None, Some(2));
    for now in [10u64, 20, 30] {
        r.ok(json!({ "op": "rotate_kem_prekey", "device": "bob", "now": now }));
    }
    // Last-resort KEM prekeys 1, 4, 5, 6 are held (ids shared with the
    // one-time KEM prekeys 2 and 3).
    r.fails(
        json!({ "op": "remove_kem_prekey", "device": "bob", "id": 6 }),
        &ef("UnknownKemPreKey", json!({ "id": 6 })),
    );
    r.fails(
        json!({ "op": "remove_kem_prekey", "device": "bob", "id": 2 }),
        &ef("UnknownKemPreKey", json!({ "id": 2 })),
    );
    r.ok(json!({ "op": "accept", "device": "bob", "session": "b1", "message": hex(&for_lr1), "policy": "PostQuantumRequired" }));
    r.ok(json!({ "op": "accept", "device": "bob", "session": "b2", "message": hex(&for_otk2), "policy": "PostQuantumRequired" }));
    // The one-time KEM prekey was deleted at the accept.
    let again = prekey_message(&mut r, "a3", None, Some(3));
    r.ok(json!({ "op": "accept", "device": "bob", "session": "b3", "message": hex(&again), "policy": "PostQuantumRequired" }));
    r.ok(json!({ "op": "remove_kem_prekey", "device": "bob", "id": 1 }));
    r.fails(
        json!({ "op": "remove_kem_prekey", "device": "bob", "id": 1 }),
        &ef("UnknownKemPreKey", json!({ "id": 1 })),
    );
    r.ok(json!({ "op": "rotate_kem_prekey", "device": "bob", "now": 40 }));
    r.ok(json!({ "op": "explain", "state": "bob" }));
    // One-time KEM prekeys at their bound, then KEM id overflow.
    fill(&mut r, json!({ "kem_prekeys": 98 }));
    r.fails(
        json!({ "op": "generate_kem_prekeys", "device": "bob", "count": 3 }),
        &e("TooManyPreKeys"),
    );
    r.ok(json!({ "op": "generate_kem_prekeys", "device": "bob", "count": 2 }));
    r.fails(
        json!({ "op": "generate_kem_prekeys", "device": "bob", "count": 1 }),
        &e("TooManyPreKeys"),
    );
    r.ok(json!({ "op": "generate_kem_prekeys", "device": "bob", "count": 0 }));
    fill(&mut r, json!({ "next_kem_id": u32::MAX - 1 }));
    r.ok(json!({ "op": "rotate_kem_prekey", "device": "bob", "now": 50 }));
    r.fails(
        json!({ "op": "rotate_kem_prekey", "device": "bob", "now": 60 }),
        &e("TooManyPreKeys"),
    );
    r.fails(
        json!({ "op": "reset_prekeys", "device": "bob", "now": 60, "last_generation": 0 }),
        &e("TooManyPreKeys"),
    );
    vector(
        "kem_prekeys",
        "One-time KEM prekeys 2 and 3 take ids from the KEM counter after last-resort prekey 1. Three rotations: last-resort prekeys 1, 4, 5, 6 held. Removing the current (6) or a one-time KEM prekey (2) is UnknownKemPreKey. Messages for last-resort 1 and one-time 2 are accepted (one-time 2 is then deleted), and one for one-time 3. Removing old last-resort 1 works once. Then 98 one-time KEM prekeys are added (recipe): 3 more fail, 2 reach MAX_ONE_TIME_KEM_PREKEYS = 100, 1 fails, 0 succeeds. With the next KEM id at 2^32 - 2: one rotation, then TooManyPreKeys for rotation and reset.",
        r,
    )
}

fn replay_rule() -> Value {
    let mut r = start("replay_rule");
    r.ok(json!({ "op": "generate_one_time_prekeys", "device": "bob", "count": 1 }));
    r.ok(json!({ "op": "generate_kem_prekeys", "device": "bob", "count": 1 }));
    let replayable = prekey_message(&mut r, "a1", None, None);
    let with_opk = prekey_message(&mut r, "a2", Some(1), None);
    let with_kem_otk = prekey_message(&mut r, "a3", None, Some(2));
    r.ok(accept(&replayable, "b1"));
    r.ok(accept(&with_opk, "b2"));
    r.ok(accept(&with_kem_otk, "b3"));
    r.ok(json!({ "op": "explain", "state": "bob" }));
    r.fails(accept(&replayable, "b1"), &e("DuplicatePreKeyMessage"));
    r.fails(
        accept(&with_opk, "b2"),
        &ef("UnknownOneTimePreKey", json!({ "id": 1 })),
    );
    r.fails(
        accept(&with_kem_otk, "b3"),
        &ef("UnknownKemPreKey", json!({ "id": 2 })),
    );
    // Whatever else happens, while signed prekey 1 is held.
    r.ok(json!({ "op": "rotate_kem_prekey", "device": "bob", "now": 5 }));
    for now in [10u64, 20, 30] {
        r.ok(json!({ "op": "rotate_signed_prekey", "device": "bob", "now": now }));
    }
    r.fails(accept(&replayable, "b1"), &e("DuplicatePreKeyMessage"));
    r.ok(json!({ "op": "rotate_signed_prekey", "device": "bob", "now": 40 }));
    r.fails(
        accept(&replayable, "b1"),
        &ef("UnknownSignedPreKey", json!({ "id": 1 })),
    );
    vector(
        "replay_rule",
        "A replayable prekey message (no one-time prekey of either kind) is recorded under its signed prekey and refused (DuplicatePreKeyMessage) after a KEM rotation and three signed prekey rotations, then UnknownSignedPreKey once signed prekey 1 is gone. Messages that used a one-time prekey or a one-time KEM prekey are refused because the key is gone.",
        r,
    )
}

fn replay_bound() -> Value {
    let mut r = start("replay_bound");
    r.ok(json!({ "op": "generate_one_time_prekeys", "device": "bob", "count": 1 }));
    fill(&mut r, json!({ "base_keys": 999 }));
    let last = prekey_message(&mut r, "a1", None, None);
    let over = prekey_message(&mut r, "a2", None, None);
    let with_opk = prekey_message(&mut r, "a3", Some(1), None);
    r.ok(accept(&last, "b1"));
    r.fails(
        accept(&over, "b2"),
        &ef("SignedPreKeyExhausted", json!({ "id": 1 })),
    );
    // Step 3 before step 6.
    r.fails(accept(&last, "b1"), &e("DuplicatePreKeyMessage"));
    r.ok(accept(&with_opk, "b3"));
    r.ok(json!({ "op": "rotate_signed_prekey", "device": "bob", "now": 99 }));
    // Still refused: it names signed prekey 1.
    r.fails(
        accept(&over, "b2"),
        &ef("SignedPreKeyExhausted", json!({ "id": 1 })),
    );
    let fresh = prekey_message(&mut r, "a4", None, None);
    r.ok(accept(&fresh, "b4"));
    vector(
        "replay_bound",
        "Signed prekey 1 with 999 recorded base keys (recipe): one more replayable message is accepted (1000 = MAX_BASE_KEYS_PER_SIGNED_PREKEY); the next is SignedPreKeyExhausted {id: 1}, a repeat of the last one DuplicatePreKeyMessage (checked first), and a message with a one-time prekey is accepted. After a rotation, the refused message is still refused and a replayable message for signed prekey 2 is accepted.",
        r,
    )
}

fn reset_after_restore() -> Value {
    let mut r = start("reset_after_restore");
    r.ok(json!({ "op": "generate_one_time_prekeys", "device": "bob", "count": 2 }));
    let backup = r.state("bob");
    let with_opk = prekey_message(&mut r, "a1", Some(1), None);
    let replayable = prekey_message(&mut r, "a2", None, None);
    r.ok(accept(&with_opk, "b1"));
    r.ok(accept(&replayable, "b2"));
    r.ok(json!({ "op": "rotate_signed_prekey", "device": "bob", "now": 50 }));
    r.ok(json!({ "op": "rotate_kem_prekey", "device": "bob", "now": 50 }));
    let for_spk2 = prekey_message(&mut r, "a3", None, None);
    let latest = Dev::decode(&r.state("bob")).unwrap().generation;
    // A backup from before: it would accept both messages again.
    restore(&mut r, &backup);
    r.ok(accept(&with_opk, "b1"));
    r.ok(accept(&replayable, "b2"));
    restore(&mut r, &backup);
    r.ok(json!({ "op": "reset_prekeys", "device": "bob", "now": 60, "last_generation": latest }));
    r.ok(json!({ "op": "explain", "state": "bob" }));
    r.fails(
        accept(&with_opk, "b1"),
        &ef("UnknownSignedPreKey", json!({ "id": 1 })),
    );
    r.fails(
        accept(&replayable, "b2"),
        &ef("UnknownSignedPreKey", json!({ "id": 1 })),
    );
    // Signed prekey id 2 is issued again, with another key.
    r.fails(accept(&for_spk2, "b3"), &e("AuthenticationFailed"));
    let fresh = prekey_message(&mut r, "a4", None, None);
    r.ok(accept(&fresh, "b4"));
    r.ok(json!({ "op": "reset_prekeys", "device": "bob", "now": 70, "last_generation": u64::MAX }));
    r.ok(json!({ "op": "reset_prekeys", "device": "bob", "now": 80, "last_generation": 0 }));
    vector(
        "reset_after_restore",
        "Bob accepts a message with one-time prekey 1 and a replayable one, then rotates to signed prekey 2 and last-resort KEM prekey 2. Restored from a backup made before, his device accepts both again (shown, then the backup is loaded again). Reset after the restore with the latest recorded generation: generation = max(generation, last_generation) + 1; every other prekey is gone; both messages are UnknownSignedPreKey {id: 1}; a message for the lost signed prekey 2 and KEM prekey 2 names the new keys with those ids and fails the tag; a new message is accepted. Reset with last_generation = 2^64 - 1 saturates.",
        r,
    )
}

pub(crate) fn generate() -> Value {
    file(
        "device",
        "Device operations at their limits (SPEC.md §6): rotation and removal, one-time prekey bounds and id overflow for both kinds, the replay rule and its bound, reset after a restore.",
        LABEL,
        vec![
            signed_prekey_rotation(),
            signed_prekey_id_overflow(),
            one_time_prekey_limits(),
            one_time_prekey_id_overflow(),
            kem_prekeys(),
            replay_rule(),
            replay_bound(),
            reset_after_restore(),
        ],
    )
}
