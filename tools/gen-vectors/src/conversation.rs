//! conversation.json: a scripted PQXDH conversation (SPEC.md §7, §8) with
//! every intermediate key: out-of-order delivery, skipped keys used later,
//! ratchet turns, late messages on closed chains, and two messages never
//! delivered. Each step carries the model's trace.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use testkit::hex::hex;

use crate::agreement::{KemChoice, identity, setup};
use crate::rec::{Rec, file, out};

const LABEL: &str = "sotto v2 vectors conversation";

#[derive(Clone, Copy)]
enum Ev {
    Send(usize, &'static str),
    Recv(usize, &'static str),
    Drop(&'static str),
}

const NAMES: [&str; 2] = ["alice", "bob"];

const SCRIPT: &[Ev] = {
    use Ev::{Drop, Recv, Send};
    &[
        Send(0, "A1"),
        Send(0, "A2"),
        Send(0, "A3"),
        Recv(1, "A2"),
        Recv(1, "A1"),
        Send(1, "B1"),
        Send(1, "B2"),
        Send(1, "B3"),
        Send(1, "B4"),
        Recv(0, "B3"),
        Recv(0, "B1"),
        Send(0, "A4"),
        Send(0, "A5"),
        Recv(1, "A5"),
        Recv(1, "A3"),
        Recv(0, "B4"),
        Send(1, "B5"),
        Send(1, "B6"),
        Send(1, "B7"),
        Recv(0, "B6"),
        Send(0, "A6"),
        Send(0, "A7"),
        Send(0, "A8"),
        Send(0, "A9"),
        Recv(1, "A9"),
        Recv(1, "A6"),
        Recv(1, "A4"),
        Recv(0, "B5"),
        Recv(0, "B7"),
        Send(1, "B8"),
        Send(1, "B9"),
        Recv(0, "B9"),
        Recv(0, "B8"),
        Recv(1, "A8"),
        Send(0, "A10"),
        Recv(1, "A10"),
        Send(1, "B10"),
        Recv(0, "B10"),
        Drop("A7"),
        Drop("B2"),
    ]
};

/// The conversation's script, ending with both sessions explained.
pub(crate) fn script() -> Rec {
    let mut r = Rec::new(LABEL);
    r.traced = true;
    let bundle = setup(&mut r, true, KemChoice::OneTime);
    r.ok(json!({
        "op": "initiate", "device": "alice", "session": "alice_session", "bundle": hex(&bundle),
        "expected": hex(&identity(&r, "bob")), "policy": "PostQuantumRequired",
    }));
    let mut sent = BTreeMap::new();
    let mut accepted = false;
    for (i, ev) in SCRIPT.iter().enumerate() {
        match *ev {
            Ev::Send(p, id) => {
                let pt = format!("{id}: message {i} from {}", NAMES[p]);
                let o = r.ok(json!({
                    "op": "encrypt", "session": format!("{}_session", NAMES[p]),
                    "plaintext": hex(pt.as_bytes()), "message_id": id, "plaintext_text": pt,
                }));
                sent.insert(id, out(&o, "message"));
            }
            Ev::Recv(p, id) => {
                let message = hex(&sent[id]);
                if p == 1 && !accepted {
                    accepted = true;
                    r.ok(json!({
                        "op": "accept", "device": "bob", "session": "bob_session",
                        "message": message, "policy": "PostQuantumRequired", "message_id": id,
                    }));
                } else {
                    r.ok(json!({
                        "op": "decrypt", "session": format!("{}_session", NAMES[p]),
                        "message": message, "message_id": id,
                    }));
                }
            }
            Ev::Drop(id) => {
                // Never delivered: a note in the script, not a step.
                r.last()["then_dropped"] = id.into();
            }
        }
    }
    r.ok(json!({ "op": "explain", "state": "alice_session" }));
    r.ok(json!({ "op": "explain", "state": "bob_session" }));
    r
}

pub(crate) fn generate() -> Value {
    let r = script();
    file(
        "conversation",
        "A scripted PQXDH conversation with every intermediate key: out-of-order delivery, skipped keys, ratchet turns, late messages on closed chains, two messages never delivered (A7, B2).",
        LABEL,
        vec![json!({ "name": "conversation", "steps": r.into_steps() })],
    )
}
