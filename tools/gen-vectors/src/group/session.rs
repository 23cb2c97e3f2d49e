//! The `group_session` vector: a scripted session (Alice's chain read by
//! Bob over a pairwise session and by Carol from an unauthenticated
//! import, jumps, rollovers, cache eviction, a rotation) with every
//! intermediate value. It also yields the saved states and fixtures of the
//! state and negative vectors.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sotto::Session;
use sotto::group::{GroupMessage, GroupReceiver, GroupSender};
use testkit::hex::{hex, hex_list};
use testkit::model::group::ratchet::jump;
use testkit::model::group::window::MAX_JUMP;
use testkit::model::group::{GReceiver, GSender, levels_json, parse_message};
use testkit::rng::{Draws, RecordingRng, named_seed};

use super::{INLINE_STATE_MAX, Snd, create, labels, receiver_decoded, sender_decoded};
use crate::lockstep::{Started, new_party, same, same_stream, send, start, state_json, streams};

/// The scripted session and what the state and negative vectors need.
pub(crate) struct Run {
    pub(crate) vector: Value,
    /// (name, kind, plain state, decoded).
    pub(crate) snapshots: Vec<(&'static str, &'static str, Vec<u8>, Value)>,
    pub(crate) fixtures: Vec<(&'static str, Vec<u8>)>,
    /// Messages by id.
    pub(crate) sent: BTreeMap<String, Vec<u8>>,
    /// Alice's first chain, at its last index.
    pub(crate) alice_old: GSender,
    /// Alice's chain after the rotation.
    pub(crate) alice_new: GSender,
    pub(crate) m: Draws,
}

/// A receiver on both sides.
struct Rcv {
    m: GReceiver,
    s: GroupReceiver,
}

struct Script<'a> {
    m: &'a mut Draws,
    r: &'a mut RecordingRng,
    events: Vec<Value>,
    sent: BTreeMap<String, Vec<u8>>,
    count: usize,
}

impl Script<'_> {
    fn send(&mut self, alice: &mut Snd, id: &str) {
        let what = format!("group send {id}");
        let pt = format!("{id}: group message {}", self.count).into_bytes();
        self.count += 1;
        let (msg, mut ev) = alice.m.encrypt(self.m, &pt).expect("model encrypt");
        let draws = self.m.take();
        let wire = alice.s.encrypt(self.r, &pt).expect("encrypt");
        same_stream(&what, self.r, &draws);
        same(&what, wire.as_bytes(), &msg);
        same(
            &format!("{what}: sender state"),
            &alice.s.to_bytes(),
            &alice.m.encode(),
        );
        ev["type"] = "send".into();
        ev["from"] = "alice".into();
        ev["message_id"] = id.into();
        ev["rng_draws"] = hex_list(&draws);
        ev["plaintext"] = hex(&pt).into();
        ev["plaintext_text"] = String::from_utf8(pt).expect("text").into();
        self.sent.insert(id.to_owned(), msg);
        self.events.push(ev);
    }

    fn receive(&mut self, to: &str, rc: &mut Rcv, id: &str) {
        let what = format!("group receive {id} at {to}");
        let msg = &self.sent[id];
        let before = rc.m.encode();
        same(&format!("{what}: before"), &rc.s.to_bytes(), &before);
        let (pt, mut ev) = rc.m.decrypt(msg).expect("model decrypt");
        let got =
            rc.s.decrypt(&GroupMessage::from_bytes(msg).expect("parses"))
                .unwrap_or_else(|e| panic!("DISAGREEMENT in {what}: sotto failed with {e:?}"));
        same(&what, &got.plaintext, &pt);
        let after = rc.m.encode();
        same(&format!("{what}: after"), &rc.s.to_bytes(), &after);
        let h = parse_message(msg).expect("parses");
        assert_eq!((got.index, got.chain_id), (h.index, h.chain_id));
        let sender = got.sender.identity().map(|i| {
            let b = i.to_bytes();
            testkit::layout::identity_key(&b)
                .slice(&b, "identity")
                .to_vec()
        });
        assert!(
            sender == rc.m.identity.map(|i| i.to_vec()),
            "DISAGREEMENT in {what}: sender mark"
        );
        let sender = sender.map(|i| hex(&i));
        ev["type"] = "receive".into();
        ev["to"] = to.into();
        ev["message_id"] = id.into();
        ev["chain_id"] = h.chain_id.into();
        ev["index"] = h.index.into();
        ev["sender"] = sender.into();
        ev["plaintext"] = hex(&pt).into();
        ev["skipped_keys_after"] = rc.m.window.cache.len().into();
        state_json(&mut ev, "state_before", &before, INLINE_STATE_MAX);
        state_json(&mut ev, "state_after", &after, INLINE_STATE_MAX);
        self.events.push(ev);
    }

    fn distribution(&mut self, alice: &Snd) -> Vec<u8> {
        let d = alice.m.distribution();
        same("distribution", &alice.s.distribution().to_bytes(), &d);
        self.events.push(json!({
            "type": "distribution", "from": "alice", "index": alice.m.index, "distribution": hex(&d),
        }));
        d
    }

    fn install(&mut self, to: &str, d: &[u8], via: Option<(&Session, [u8; 64])>) -> Rcv {
        let (m, s, delivered) = match via {
            Some((session, identity)) => (
                GReceiver::install(d, Some(identity)).expect("install"),
                GroupReceiver::accept(d, session).expect("accept"),
                Value::from(hex(&session.to_bytes())),
            ),
            None => (
                GReceiver::install(d, None).expect("install"),
                GroupReceiver::import_unauthenticated(d).expect("import"),
                Value::Null,
            ),
        };
        same(&format!("install at {to}"), &s.to_bytes(), &m.encode());
        self.events.push(json!({
            "type": "install", "to": to,
            "via": if via.is_some() { "accept" } else { "import_unauthenticated" },
            "delivered_by": delivered, "distribution": hex(d), "state": hex(&m.encode()),
        }));
        Rcv { m, s }
    }

    /// The sender's ratchet moves to `to` without sending: its state saved
    /// at `to`, restored.
    fn advance(&mut self, alice: &mut Snd, to: u32) {
        let mut levels = alice.m.levels;
        jump(alice.m.index, &mut levels, to);
        alice.m.index = to;
        alice.m.levels = levels;
        alice.s = GroupSender::from_bytes(&alice.m.encode()).expect("restore");
        same("advance", &alice.s.to_bytes(), &alice.m.encode());
        self.events
            .push(json!({ "type": "advance", "from": "alice", "to": to }));
    }
}

pub(crate) fn run(label: &str) -> Run {
    let (mut m, mut r) = streams(label);
    let group = named_seed("sotto vectors group id");
    // The pairwise session that delivers Alice's distribution to Bob.
    let alice_p = new_party("alice", &mut m, &mut r);
    let mut bob_p = new_party("bob", &mut m, &mut r);
    let Started {
        model: mut am,
        sotto: mut asess,
        ..
    } = start(&alice_p, &bob_p, None, &mut m, &mut r);
    let (first, _) = send(
        "pairwise",
        &mut am,
        &mut asess,
        &mut m,
        &mut r,
        b"pairwise set-up",
    );
    let (_, bsess, _) = crate::lockstep::accept("pairwise bob session", &mut bob_p, &first);
    let alice_identity = alice_p.model.ik();

    let (mut alice, created) = create("alice sender", group, &mut m, &mut r);
    let mut snapshots = vec![(
        "alice_sender_new",
        "group_sender",
        alice.m.encode(),
        sender_decoded(&alice.m),
    )];
    let mut fixtures = Vec::new();
    let mut ev0 = created;
    ev0["type"] = "create".into();
    ev0["from"] = "alice".into();
    let mut sc = Script {
        m: &mut m,
        r: &mut r,
        events: vec![ev0],
        sent: BTreeMap::new(),
        count: 0,
    };
    let d0 = sc.distribution(&alice);
    let mut bob = sc.install("bob", &d0, Some((&bsess, alice_identity)));
    for id in ["m0", "m1", "m2", "m3"] {
        sc.send(&mut alice, id);
    }
    sc.receive("bob", &mut bob, "m0");
    sc.receive("bob", &mut bob, "m3");
    sc.receive("bob", &mut bob, "m1");
    fixtures.push(("bob_receiver", bob.m.encode()));
    snapshots.push((
        "bob_receiver_with_cache",
        "group_receiver",
        bob.m.encode(),
        receiver_decoded(&bob.m),
    ));
    let d4 = sc.distribution(&alice);
    let mut carol = sc.install("carol", &d4, None);
    sc.send(&mut alice, "m4");
    snapshots.push((
        "alice_sender_after_sends",
        "group_sender",
        alice.m.encode(),
        sender_decoded(&alice.m),
    ));
    fixtures.push(("alice_sender", alice.m.encode()));
    sc.receive("carol", &mut carol, "m4");
    snapshots.push((
        "carol_receiver_unauthenticated",
        "group_receiver",
        carol.m.encode(),
        receiver_decoded(&carol.m),
    ));
    sc.receive("bob", &mut bob, "m4");
    // Across the 0xFFFF -> 0x10000 rollover.
    sc.advance(&mut alice, 65535);
    for id in ["m5", "m6", "m7"] {
        sc.send(&mut alice, id);
    }
    sc.receive("bob", &mut bob, "m7");
    sc.receive("bob", &mut bob, "m5");
    sc.receive("carol", &mut carol, "m6");
    fixtures.push(("carol_receiver", carol.m.encode()));
    // Exactly MAX_GROUP_JUMP ahead of Bob (one more than Carol accepts).
    sc.advance(&mut alice, bob.m.next() + MAX_JUMP);
    sc.send(&mut alice, "m8");
    sc.receive("bob", &mut bob, "m8");
    // Jumps of 40 until the cache overflows and its lowest keys go.
    for n in 0..7 {
        let id = format!("e{n}");
        let to = alice.m.index + 39;
        sc.advance(&mut alice, to);
        if n == 6 {
            sc.send(&mut alice, "late");
        }
        sc.send(&mut alice, &id);
        sc.receive("bob", &mut bob, &id);
    }
    fixtures.push(("bob_receiver_evicted", bob.m.encode()));
    sc.receive("bob", &mut bob, "late");
    let alice_old = alice.m.clone();
    // Rotation: a new chain, sent to Bob only.
    let rot_m = GSender::new(sc.m, group);
    let draws = sc.m.take();
    let rot_d = alice.s.rotate(sc.r).to_bytes();
    same_stream("rotate", sc.r, &draws);
    alice.m = rot_m;
    same(
        "rotate: sender state",
        &alice.s.to_bytes(),
        &alice.m.encode(),
    );
    same("rotate: distribution", &rot_d, &alice.m.distribution());
    sc.events.push(json!({
        "type": "rotate", "from": "alice", "rng_draws": hex_list(&draws), "chain_id": alice.m.chain_id,
        "levels": levels_json(&alice.m.levels), "signing_seed": hex(&alice.m.seed),
        "signing_public": hex(&alice.m.public()), "sender_state": hex(&alice.m.encode()),
        "distribution": hex(&rot_d),
    }));
    snapshots.push((
        "alice_sender_rotated",
        "group_sender",
        alice.m.encode(),
        sender_decoded(&alice.m),
    ));
    let mut bob2 = sc.install("bob_2", &rot_d, Some((&bsess, alice_identity)));
    sc.send(&mut alice, "r0");
    sc.send(&mut alice, "r1");
    sc.receive("bob_2", &mut bob2, "r1");
    snapshots.push((
        "bob_receiver_rotated_chain",
        "group_receiver",
        bob2.m.encode(),
        receiver_decoded(&bob2.m),
    ));
    let events = std::mem::take(&mut sc.events);
    let sent = std::mem::take(&mut sc.sent);
    let mut finals = json!({ "alice": hex(&alice.m.encode()) });
    for (name, rc) in [("bob", &bob), ("carol", &carol), ("bob_2", &bob2)] {
        state_json(&mut finals, name, &rc.m.encode(), INLINE_STATE_MAX);
    }
    let vector = json!({
        "name": "group_session", "kind": "session",
        "labels": labels(),
        "group_id": hex(&group),
        "events": events,
        "final_states": finals,
    });
    Run {
        vector,
        snapshots,
        fixtures,
        sent,
        alice_old,
        alice_new: alice.m,
        m,
    }
}
