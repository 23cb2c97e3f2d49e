//! bounds.json (SPEC.md §8.7): receiving chain and skipped key eviction at
//! the real limits, and what late messages get afterwards. The model and
//! sotto run every step in lockstep.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sotto::{Message, Session};
use testkit::hex::{hex, hex_list};
use testkit::layout;
use testkit::model::{self, Sess};
use testkit::rng::{Draws, RecordingRng};

use crate::lockstep::{
    Party, Started, file, new_party, same, same_result, send, start, state_json, streams,
};

/// States longer than this are written as their SHA-256.
const INLINE_STATE_MAX: usize = 2048;

const NAMES: [&str; 2] = ["alice", "bob"];
const A: usize = 0;
const B: usize = 1;

/// A two-party session script with compact events.
struct Bounds<'a> {
    alice: Party,
    bob: Party,
    sessions: [Option<(Sess, Session)>; 2],
    m: &'a mut Draws,
    r: &'a mut RecordingRng,
    sent: BTreeMap<String, Vec<u8>>,
    events: Vec<Value>,
}

impl Bounds<'_> {
    fn send(&mut self, p: usize, id: &str) {
        let what = format!("bounds send {id}");
        let pt = format!("{id} from {}", NAMES[p]).into_bytes();
        let (ms, ss) = self.sessions[p].as_mut().expect("a session");
        let (msg, ev) = send(&what, ms, ss, self.m, self.r, &pt);
        self.events.push(json!({
            "type": "send", "from": NAMES[p], "message_id": id, "rng_draws": ev["rng_draws"],
            "plaintext": hex(&pt), "message_number": ev["message_number"], "message": hex(&msg),
        }));
        self.sent.insert(id.to_owned(), msg);
    }

    /// The sending chain moves `count` steps without sending: the model
    /// steps its chain key; sotto's saved state gets the same `cks` and
    /// `ns` (SPEC.md §10.2) and is restored.
    fn advance(&mut self, p: usize, count: u32) {
        let what = format!("bounds advance {}", NAMES[p]);
        let (ms, ss) = self.sessions[p].as_mut().expect("a session");
        ms.advance(count);
        let s = ms.sending.as_ref().expect("a sending chain");
        let mut state = ss.to_bytes().to_vec();
        let l = layout::session_state(&state);
        l.put(&mut state, "cks", &s.ck);
        l.put_u32(&mut state, "ns", s.next);
        let next = s.next;
        *ss = Session::from_bytes(&state).expect("restore");
        same(&what, &ss.to_bytes(), &ms.encode());
        self.events.push(
            json!({ "type": "advance", "from": NAMES[p], "count": count, "next_after": next }),
        );
    }

    /// Starts a new sending chain with a message that is never delivered,
    /// then moves it `count - 1` further: the next message has number
    /// `count`.
    fn advance_new_chain(&mut self, p: usize, count: u32) {
        let id = format!("{}_new_chain_{}", NAMES[p], self.events.len());
        self.send(p, &id);
        self.advance(p, count - 1);
    }

    fn receive(&mut self, p: usize, id: &str) {
        let what = format!("bounds receive {id}");
        let msg = self.sent[id].clone();
        let message = Message::from_bytes(&msg).expect("parses");
        let mut ev = json!({ "type": "receive", "to": NAMES[p], "message_id": id });
        match (&mut self.sessions[p], &message) {
            (None, Message::PreKey(pm)) => {
                let device = if p == A {
                    &mut self.alice
                } else {
                    &mut self.bob
                };
                let (ms, pt, _, _) = model::accept(&mut device.model, &msg);
                let (ss, spt) = Session::accept(&mut device.sotto, pm).expect("accept");
                same(&what, &spt, &pt);
                ev["via"] = "accept".into();
                ev["error"] = Value::Null;
                ev["plaintext"] = hex(&pt).into();
                ev["evicted"] = json!({ "chains": [], "keys": [] });
                self.sessions[p] = Some((ms, ss));
            }
            (Some((ms, ss)), _) => {
                let before = ss.to_bytes().to_vec();
                let mr = ms.try_decrypt(&msg);
                let sr = ss.decrypt(&message);
                ev["via"] = "decrypt".into();
                ev["error"] = same_result(&what, &sr, &mr);
                match (sr, mr) {
                    (Ok(spt), Ok((pt, _, evicted))) => {
                        same(&what, &spt, &pt);
                        ev["plaintext"] = hex(&pt).into();
                        ev["evicted"] = evicted;
                    }
                    _ => same(&format!("{what}: unchanged"), &ss.to_bytes(), &before),
                }
            }
            _ => panic!("{what}: bad script"),
        }
        let (ms, ss) = self.sessions[p].as_ref().expect("a session");
        let state = ss.to_bytes().to_vec();
        same(&format!("{what}: state"), &state, &ms.encode());
        ev["skipped_keys_after"] = ms.skipped_count().into();
        ev["receiving_chains_after"] = ms.recv.chains.len().into();
        state_json(&mut ev, "state_after", &state, INLINE_STATE_MAX);
        self.events.push(ev);
    }
}

fn script(name: &str, description: &str, steps: impl FnOnce(&mut Bounds<'_>)) -> Value {
    let (mut m, mut r) = streams(&format!("sotto vectors bounds {name}"));
    let alice = new_party("alice", &mut m, &mut r);
    let bob = new_party("bob", &mut m, &mut r);
    let Started {
        model: am,
        sotto: asess,
        draws: init_draws,
        ..
    } = start(&alice, &bob, None, &mut m, &mut r);
    let devices = json!({
        "alice": { "rng_draws": hex_list(&alice.model.draws), "identity_key": hex(&alice.model.ik_encoded()) },
        "bob": { "rng_draws": hex_list(&bob.model.draws), "identity_key": hex(&bob.model.ik_encoded()) },
    });
    let mut b = Bounds {
        alice,
        bob,
        sessions: [Some((am, asess)), None],
        m: &mut m,
        r: &mut r,
        sent: BTreeMap::new(),
        events: Vec::new(),
    };
    steps(&mut b);
    json!({
        "name": name, "description": description,
        "alice": devices["alice"], "bob": devices["bob"],
        "initiate_rng_draws": hex_list(&init_draws),
        "events": b.events,
    })
}

pub(crate) fn generate() -> Value {
    let chains = script(
        "receiving_chain_eviction",
        "Seven DH ratchet turns, each leaving one message of Alice's chain undelivered: Bob keeps MAX_RECEIVING_CHAINS chains, so late messages of the two oldest turns fail and those of the five newest decrypt.",
        |b| {
            b.send(A, "a0");
            b.receive(B, "a0");
            for t in 1..=7 {
                b.send(B, &format!("b{t}"));
                b.receive(A, &format!("b{t}"));
                b.send(A, &format!("x{t}"));
                b.send(A, &format!("y{t}"));
                b.receive(B, &format!("y{t}"));
            }
            // Bob has no sending chain: a forgotten ratchet key is unexpected.
            b.receive(B, "x2");
            b.send(B, "b8");
            // With a sending chain, a trial ratchet step fails the tag.
            b.receive(B, "x1");
            b.receive(B, "x3");
            b.receive(B, "x7");
        },
    );
    let keys = script(
        "skipped_key_eviction",
        "Gaps of MAX_SKIP keys: one chain past MAX_SKIPPED_KEYS_PER_CHAIN (its lowest 100 keys go), then the session past MAX_SKIPPED_KEYS (the lowest key of the oldest chain goes); late messages on both sides of each boundary.",
        |b| {
            b.send(A, "a0");
            b.receive(B, "a0");
            b.send(A, "a1");
            b.advance(A, 99);
            for id in ["a101", "a102", "a103"] {
                b.send(A, id);
            }
            b.advance(A, 897);
            b.send(A, "a1001");
            b.receive(B, "a1001");
            b.advance(A, 100);
            b.send(A, "a1102");
            b.receive(B, "a1102");
            b.receive(B, "a1");
            b.receive(B, "a101");
            b.send(B, "b0");
            b.receive(A, "b0");
            b.advance_new_chain(A, 1000);
            b.send(A, "c1000");
            b.receive(B, "c1000");
            b.send(B, "b1");
            b.receive(A, "b1");
            b.advance_new_chain(A, 2);
            b.send(A, "d2");
            b.receive(B, "d2");
            b.receive(B, "a102");
            b.receive(B, "a103");
        },
    );
    file(
        "bounds",
        "Session bounds (SPEC.md section 8.7) at their real values: receiving chain and skipped key eviction, and what late messages get afterwards.",
        "sotto vectors bounds <name>",
        vec![chains, keys],
    )
}
