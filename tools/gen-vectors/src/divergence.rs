//! divergence.json: `SessionDiverged` in each of its three cases (SPEC.md
//! §8.6 steps 1.3, 2.1 and 2.4) and what a rollback costs (§11), from
//! honest runs in which one side restores an older saved state; and a
//! forged message on an unknown ratchet key, which gets the same error and
//! changes nothing. Each state after a step shows its generation (§10.1).

use serde_json::{Value, json};
use testkit::model::Sess;
use testkit::model::primitives::x_pub;
use testkit::model::wire::RatchetHeader;

use crate::common::{Conv, SESSIONS};
use crate::rec::file;

const LABEL: &str = "sotto v2 vectors divergence";
const A: usize = 0;
const B: usize = 1;

fn vector(name: &str, description: &str, c: Conv) -> Value {
    json!({ "name": name, "description": description, "steps": c.r.into_steps() })
}

fn conv(name: &str) -> Conv {
    let mut c = Conv::new(&format!("{LABEL} {name}"));
    c.r.traced = true;
    c.r.trace_fields = Some(&["key_source", "dh_ratchet"]);
    c
}

fn across_a_ratchet_key_draw() -> Value {
    let mut c = conv("across_a_ratchet_key_draw");
    c.send(A, "a1");
    c.receive(B, "a1").unwrap();
    c.send(B, "b1");
    c.receive(A, "b1").unwrap();
    // Alice has no sending chain: her next encrypt draws a ratchet key.
    let saved = c.save(A);
    c.send(A, "a2");
    c.receive(B, "a2").unwrap();
    c.restore(A, &saved);
    c.send(A, "a2_again");
    // Case 2.1: Bob has no sending chain.
    c.receive(B, "a2_again").unwrap_err();
    c.send(B, "b2");
    // Case 2.4, both ways: each side's next chain does not decrypt.
    c.receive(A, "b2").unwrap_err();
    c.send(A, "a3");
    c.receive(B, "a3").unwrap_err();
    // What Bob read before stays read.
    c.receive(B, "a2").unwrap_err();
    c.r.ok(json!({ "op": "explain", "state": SESSIONS[A] }));
    c.r.ok(json!({ "op": "explain", "state": SESSIONS[B] }));
    vector(
        "across_a_ratchet_key_draw",
        "Alice restores a state saved before her next ratchet key was drawn and sends on a new key: Bob, with no sending chain, answers SessionDiverged (step 2.1); once Bob has a sending chain, each side's next chain fails the trial root step's tag: SessionDiverged both ways (step 2.4). The session cannot recover (§11). A message Bob already read is DuplicateMessage.",
        c,
    )
}

fn on_a_closed_chain() -> Value {
    let mut c = conv("on_a_closed_chain");
    c.send(A, "a1");
    let at_one = c.save(A);
    c.send(A, "a2");
    let at_two = c.save(A);
    c.receive(B, "a1").unwrap();
    c.send(B, "b1");
    c.receive(A, "b1").unwrap();
    c.send(A, "a3");
    // Bob closes Alice's first chain at PN = 2, keeping the key of a2.
    c.receive(B, "a3").unwrap();
    // Alice restores the state after a2 and sends at N = 2 of the closed
    // chain: at its end, step 1.3.
    c.restore(A, &at_two);
    c.send(A, "a2_past_end");
    c.receive(B, "a2_past_end").unwrap_err();
    // Restored to the state after a1, she sends at N = 1: below the end,
    // with the skipped key still held, it replaces the lost a2.
    c.restore(A, &at_one);
    c.send(A, "a2_substitute");
    c.receive(B, "a2_substitute").unwrap();
    c.receive(B, "a2").unwrap_err();
    c.receive(B, "a2_substitute").unwrap_err();
    vector(
        "on_a_closed_chain",
        "Bob closed Alice's first chain at PN = 2 holding the skipped key of a2. Alice restores older states and sends on that chain again: at N = 2 (its end) SessionDiverged (step 1.3); at N = 1 the new message is accepted in place of a2 (substituted, §11), after which both are DuplicateMessage.",
        c,
    )
}

fn within_the_current_chain() -> Value {
    let mut c = conv("within_the_current_chain");
    c.send(A, "a1");
    c.receive(B, "a1").unwrap();
    c.send(B, "b1");
    c.receive(A, "b1").unwrap();
    c.send(A, "a2");
    let saved = c.save(A);
    c.send(A, "a3");
    c.receive(B, "a2").unwrap();
    c.receive(B, "a3").unwrap();
    c.restore(A, &saved);
    c.send(A, "a3_again");
    c.send(A, "a4");
    c.receive(B, "a3_again").unwrap_err();
    c.receive(B, "a4").unwrap();
    vector(
        "within_the_current_chain",
        "Alice restores a state from within her current sending chain and re-sends index 1, which Bob already read: DuplicateMessage; her next message (index 2) decrypts and the session goes on. The re-sent message has a fresh salt, so no AES key and nonce repeat (§11).",
        c,
    )
}

fn forged_unknown_key() -> Value {
    let mut c = conv("forged_unknown_key");
    c.send(A, "a1");
    c.receive(B, "a1").unwrap();
    c.send(B, "b1");
    c.receive(A, "b1").unwrap();
    c.send(A, "a2");
    // A forgery: a fresh ratchet key, an arbitrary tag.
    let key = x_pub(&c.r.rng.draw::<32>());
    let salt = c.r.rng.draw::<16>();
    c.r.rng.take();
    let mut forged = RatchetHeader {
        ratchet_key: key,
        pn: 1,
        n: 0,
        salt,
    }
    .encode();
    forged.extend([0x5a; 32]);
    c.keep("forged", forged);
    // Bob has a sending chain (b1): the trial root step fails the tag.
    assert!(Sess::decode(&c.save(B)).unwrap().sending.is_some());
    c.receive(B, "forged").unwrap_err();
    c.receive(B, "a2").unwrap();
    vector(
        "forged_unknown_key",
        "A forged ratchet message on an unknown ratchet key (16 bytes of ciphertext, an arbitrary tag) gets SessionDiverged, which is not authenticated; Bob's session is unchanged and Alice's next message decrypts.",
        c,
    )
}

pub(crate) fn generate() -> Value {
    file(
        "divergence",
        "SessionDiverged in each of its three cases and what a rollback costs (SPEC.md §8.6, §11), from runs where one side restores an older state; a forged message gets the same error and changes nothing.",
        LABEL,
        vec![
            across_a_ratchet_key_draw(),
            on_a_closed_chain(),
            within_the_current_chain(),
            forged_unknown_key(),
        ],
    )
}
