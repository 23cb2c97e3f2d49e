//! conversation.json: a scripted two-party conversation with DH ratchet
//! turns, reordering and drops (SPEC.md §8), every value written out. Its
//! saved states are persistence.json's inputs.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sotto::{Message, Session};
use testkit::hex::{hex, hex_list};
use testkit::model::Sess;
use testkit::model::primitives::{L_CHAIN_MESSAGE, L_CHAIN_NEXT, L_MESSAGE_KEYS, L_ROOT};

use crate::lockstep::{Started, file, new_party, one_time_prekeys, same, send, start, streams};

#[derive(Clone, Copy)]
enum Step {
    Send(usize, &'static str),
    Recv(usize, &'static str),
    Drop(&'static str),
}

const NAMES: [&str; 2] = ["alice", "bob"];

const SCRIPT: &[Step] = {
    use Step::{Drop, Recv, Send};
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

/// A saved state taken during the conversation.
pub(crate) struct Snapshot {
    pub(crate) name: &'static str,
    pub(crate) kind: &'static str,
    pub(crate) state: Vec<u8>,
    pub(crate) decoded: Value,
}

/// The vector file and the states taken along the way.
pub(crate) struct Conversation {
    pub(crate) json: Value,
    pub(crate) snapshots: Vec<Snapshot>,
}

pub(crate) fn run() -> Conversation {
    let label = "sotto vectors conversation";
    let (mut m, mut r) = streams(label);
    let alice = new_party("alice", &mut m, &mut r);
    let mut bob = new_party("bob", &mut m, &mut r);
    let (opks, opks_json) = one_time_prekeys("bob one-time prekeys", &mut bob, &mut m, &mut r, 2);
    let Started {
        model: am,
        sotto: asotto,
        draws: init_draws,
        ..
    } = start(&alice, &bob, opks.first().copied(), &mut m, &mut r);
    let mut snapshots = vec![Snapshot {
        name: "alice_device",
        kind: "device",
        state: alice.sotto.to_bytes().to_vec(),
        decoded: alice.model.decoded_json(),
    }];
    let alice_json = alice.model.json();
    let mut bob_json = bob.model.json();
    bob_json["one_time_prekeys"] = opks_json;
    let mut devices = [alice, bob];
    let mut sessions: [Option<(Sess, Session)>; 2] = [Some((am, asotto)), None];
    let mut sent = BTreeMap::new();
    let mut events = Vec::new();
    for (i, step) in SCRIPT.iter().enumerate() {
        let what = format!("conversation step {i}");
        match *step {
            Step::Send(p, id) => {
                let pt = format!("{id}: message {i} from {}", NAMES[p]).into_bytes();
                let (ms, ss) = sessions[p].as_mut().expect("a session");
                let (msg, mut ev) = send(&what, ms, ss, &mut m, &mut r, &pt);
                ev["type"] = "send".into();
                ev["from"] = NAMES[p].into();
                ev["message_id"] = id.into();
                ev["plaintext_text"] = String::from_utf8(pt).expect("text").into();
                sent.insert(id, msg);
                events.push(ev);
            }
            Step::Recv(p, id) => {
                let msg = &sent[id];
                let message = Message::from_bytes(msg).expect("parses");
                let (pt, mut trace, via) = match (&mut sessions[p], &message) {
                    (None, Message::PreKey(pm)) => {
                        let (ms, pt, _, trace) = testkit::model::accept(&mut devices[p].model, msg);
                        let (ss, pts) = Session::accept(&mut devices[p].sotto, pm).expect("accept");
                        same(&format!("{what}: plaintext"), &pts, &pt);
                        same(
                            &format!("{what}: device"),
                            &devices[p].sotto.to_bytes(),
                            &devices[p].model.encode(),
                        );
                        snapshots.push(Snapshot {
                            name: "bob_device_after_accept",
                            kind: "device",
                            state: devices[p].sotto.to_bytes().to_vec(),
                            decoded: devices[p].model.decoded_json(),
                        });
                        sessions[p] = Some((ms, ss));
                        (pt, trace, "accept")
                    }
                    (Some((ms, ss)), _) => {
                        let (pt, trace) = ms.decrypt(msg);
                        let pts = ss.decrypt(&message).unwrap_or_else(|e| {
                            panic!("DISAGREEMENT in {what}: sotto failed with {e:?}")
                        });
                        same(&format!("{what}: plaintext"), &pts, &pt);
                        (pt, trace, "decrypt")
                    }
                    _ => panic!("{what}: bad script"),
                };
                let (ms, ss) = sessions[p].as_ref().expect("a session");
                same(
                    &format!("{what}: receiver state"),
                    &ss.to_bytes(),
                    &ms.encode(),
                );
                trace["type"] = "receive".into();
                trace["to"] = NAMES[p].into();
                trace["message_id"] = id.into();
                trace["via"] = via.into();
                trace["plaintext"] = hex(&pt).into();
                trace["skipped_keys_after"] = ms.skipped_count().into();
                events.push(trace);
            }
            Step::Drop(id) => {
                assert!(sent.contains_key(id));
                events.push(json!({ "type": "drop", "message_id": id }));
            }
        }
        if i == 2 {
            let (ms, ss) = sessions[0].as_ref().expect("a session");
            snapshots.push(Snapshot {
                name: "alice_session_awaiting_reply",
                kind: "session",
                state: ss.to_bytes().to_vec(),
                decoded: ms.decoded_json(),
            });
        }
    }
    let mut finals = json!({});
    for (p, name) in NAMES.iter().enumerate() {
        let (ms, ss) = sessions[p].as_ref().expect("a session");
        finals[name] = hex(&ss.to_bytes()).into();
        snapshots.push(Snapshot {
            name: if p == 0 {
                "alice_session_final"
            } else {
                "bob_session_final"
            },
            kind: "session",
            state: ss.to_bytes().to_vec(),
            decoded: ms.decoded_json(),
        });
    }
    let vector = json!({
        "name": "two_party_conversation",
        "labels": {
            "root": L_ROOT, "chain_message": L_CHAIN_MESSAGE,
            "chain_next": L_CHAIN_NEXT, "message_keys": L_MESSAGE_KEYS,
        },
        "alice": alice_json,
        "bob": bob_json,
        "initiate_rng_draws": hex_list(&init_draws),
        "events": events,
        "final_states": finals,
    });
    Conversation {
        json: file(
            "conversation",
            "A scripted two-party conversation with DH ratchet turns, out-of-order and dropped messages.",
            label,
            vec![vector],
        ),
        snapshots,
    }
}

pub(crate) fn generate() -> Value {
    run().json
}
