//! group.json: sender keys (SPEC.md §15). Every value comes from
//! `model_group.rs`; sotto's public API is driven in lockstep and must agree
//! byte for byte.

use serde_json::{Value, json};
use sha2::Digest;
use sotto::group::{GroupId, GroupMessage, GroupReceiver, GroupSender, MAX_GROUP_MESSAGE_LEN};
use sotto::{MAX_PLAINTEXT_LEN, MAX_STATE_LEN, Message, Session, StorageKey};

use crate::model::{self, Draws, hx};
use crate::model_group::{self as mg, GReceiver, GSender};
use crate::vectors::hex;
use crate::{ED25519_L, RecordingRng, file, model_seal, new_party, same, same_draws, seed, start};

/// Receiver states longer than this are written as their SHA-256.
const INLINE_STATE_MAX: usize = 1024;

/// Indices whose ratchet state is written out.
const RATCHET_INDICES: &[u32] = &[
    0,
    1,
    15,
    16,
    255,
    256,
    1000,
    4095,
    4096,
    65535,
    65536,
    0x0012_3456,
    0x00ff_ffff,
    0x0100_0000,
    0x0fff_ffff,
    0x1000_0000,
    0x1234_5678,
    0x9abc_def0,
    0xdead_beef,
    0xffff_fffe,
    0xffff_ffff,
];

/// sotto and the model drew the same bytes (the model draws 256 bytes at
/// once where sotto fills 32 at a time; the stream is what is specified).
fn same_stream(what: &str, r: &mut RecordingRng, model: &[Vec<u8>]) {
    let got: Vec<u8> = std::mem::take(&mut r.log).concat();
    same(
        &format!("{what}: random bytes drawn"),
        &got,
        &model.concat(),
    );
}

/// A sender on both sides.
pub(crate) struct Snd {
    pub(crate) m: GSender,
    s: GroupSender,
}

/// A new sender chain on both sides.
pub(crate) fn create_sender(
    what: &str,
    group: [u8; 32],
    m: &mut Draws,
    r: &mut RecordingRng,
) -> Snd {
    create(what, group, m, r).0
}

/// One message on both sides, which must agree.
pub(crate) fn send_on(c: &mut Snd, m: &mut Draws, r: &mut RecordingRng) -> Vec<u8> {
    let pt = format!("message {} of chain {}", c.m.index, c.m.chain_id).into_bytes();
    let (msg, _) = c.m.encrypt(m, &pt).unwrap();
    let draws = m.take();
    let wire = c.s.encrypt(r, &pt).unwrap();
    same_stream("store send", r, &draws);
    same("store send", wire.as_bytes(), &msg);
    msg
}

fn create(what: &str, group: [u8; 32], m: &mut Draws, r: &mut RecordingRng) -> (Snd, Value) {
    let gm = GSender::new(m, group);
    let draws = m.take();
    let gs = GroupSender::new(r, GroupId::from_bytes(group));
    same_stream(what, r, &draws);
    same(
        &format!("{what}: sender state"),
        &gs.to_bytes(),
        &gm.encode(),
    );
    let ev = json!({
        "rng_draws": hx(&draws), "group_id": hex(&group), "chain_id": gm.chain_id,
        "levels": mg::levels_json(&gm.levels), "signing_seed": hex(&gm.seed),
        "signing_public": hex(&gm.public()), "sender_state": hex(&gm.encode()),
    });
    (Snd { m: gm, s: gs }, ev)
}

/// A receiver on both sides.
struct Rcv {
    m: GReceiver,
    s: GroupReceiver,
}

fn receiver_state(key: &str, state: &[u8]) -> (String, Value) {
    if state.len() > INLINE_STATE_MAX {
        (
            format!("{key}_sha256"),
            hex(&sha2::Sha256::digest(state)).into(),
        )
    } else {
        (key.to_owned(), hex(state).into())
    }
}

fn ratchet(label: &str) -> Value {
    let (mut m, mut r) = (Draws::new(seed(label)), RecordingRng::new(seed(label)));
    let group = seed("sotto vectors group id ratchet");
    let (snd, created) = create("ratchet sender", group, &mut m, &mut r);
    let initial = snd.m.levels;
    let dist0 = snd.m.distribution();
    let at0_m = GReceiver::install(&dist0, None).unwrap();
    let at0_s = GroupReceiver::import_unauthenticated(&dist0).unwrap();
    same("ratchet receiver at 0", &at0_s.to_bytes(), &at0_m.encode());
    let mut states = Vec::new();
    let (mut prev_i, mut prev) = (0u32, initial);
    for &t in RATCHET_INDICES {
        let what = format!("ratchet index {t}");
        let closed = mg::closed_form(&initial, t);
        let mut from0 = initial;
        mg::jump(0, &mut from0, t);
        let mut from_prev = prev;
        mg::jump(prev_i, &mut from_prev, t);
        // Increments over the last stretch, which crosses t's rollovers.
        let (mut i, mut inc) = if t - prev_i <= 70_000 {
            (prev_i, prev)
        } else {
            let start = t - 300;
            let mut l = initial;
            mg::jump(0, &mut l, start);
            (start, l)
        };
        while i < t {
            i = mg::increment(i, &mut inc);
        }
        assert!(
            closed == from0 && closed == from_prev && closed == inc,
            "model: ratchet procedures disagree at {t}"
        );
        let sender = GSender {
            index: t,
            levels: closed,
            ..snd.m.clone()
        };
        let mut s = GroupSender::from_bytes(&sender.encode()).unwrap();
        same(&what, &s.to_bytes(), &sender.encode());
        let pt = format!("index {t}").into_bytes();
        let mut st = json!({
            "index": t, "levels": mg::levels_json(&closed),
            "message_key": hex(&mg::message_key(&closed)), "plaintext": hex(&pt),
        });
        if t == u32::MAX {
            let e = s.encrypt(&mut r, &pt).unwrap_err();
            assert_eq!(e, sotto::Error::ChainExhausted, "DISAGREEMENT in {what}");
            st["salt"] = Value::Null;
            st["message"] = Value::Null;
        } else {
            let mut ms = sender.clone();
            let (msg, _) = ms.encrypt(&mut m, &pt).unwrap();
            let salt = m.take();
            let wire = s.encrypt(&mut r, &pt).unwrap();
            same_stream(&what, &mut r, &salt);
            same(&what, wire.as_bytes(), &msg);
            same(&format!("{what}: incremented"), &s.to_bytes(), &ms.encode());
            same(
                &format!("{what}: increment = closed form"),
                &ms.encode(),
                &GSender {
                    index: t + 1,
                    levels: mg::closed_form(&initial, t + 1),
                    ..snd.m.clone()
                }
                .encode(),
            );
            if t <= mg::MAX_JUMP {
                // sotto's receiver jumps from index 0 to t.
                let mut rm = at0_m.clone();
                let (pt_m, _) = rm.decrypt(&msg).unwrap();
                let mut rs = GroupReceiver::from_bytes(&at0_s.to_bytes()).unwrap();
                let got = rs
                    .decrypt(&GroupMessage::from_bytes(&msg).unwrap())
                    .unwrap();
                same(&format!("{what}: jump from 0"), &got.plaintext, &pt_m);
                same(&format!("{what}: receiver"), &rs.to_bytes(), &rm.encode());
            }
            st["salt"] = hex(&salt[0]).into();
            st["message"] = hex(&msg).into();
        }
        states.push(st);
        (prev_i, prev) = (t, closed);
    }
    json!({
        "name": "ratchet_levels", "kind": "ratchet",
        "labels": labels(),
        "sender": created,
        "distribution": hex(&dist0),
        "states": states,
    })
}

fn labels() -> Value {
    json!({
        "step": mg::L_STEP, "derive": mg::L_DERIVE, "key": mg::L_KEY,
        "message_keys": mg::L_MESSAGE_KEYS, "signature": mg::L_SIGNATURE,
    })
}

/// The scripted session and what the state and negative vectors need.
struct Run {
    vector: Value,
    /// (name, kind, plain state, decoded).
    snapshots: Vec<(&'static str, &'static str, Vec<u8>, Value)>,
    fixtures: Vec<(&'static str, Vec<u8>)>,
    /// Messages by id.
    sent: std::collections::BTreeMap<String, Vec<u8>>,
    alice_old: GSender,
    alice_new: GSender,
    m: Draws,
}

fn sender_decoded(g: &GSender) -> Value {
    json!({
        "group_id": hex(&g.group), "chain_id": g.chain_id, "index": g.index,
        "levels": mg::levels_json(&g.levels), "signing_seed": hex(&g.seed),
        "signing_public": hex(&g.public()),
    })
}

fn receiver_decoded(g: &GReceiver) -> Value {
    json!({
        "group_id": hex(&g.group), "chain_id": g.chain_id, "signing_public": hex(&g.signing),
        "sender_identity": g.identity.map(|i| hex(&i)), "next": g.next,
        "levels": mg::levels_json(&g.levels),
        "skipped": g.cache.iter().map(|(i, k)| json!({ "index": i, "message_key": hex(k) })).collect::<Vec<_>>(),
    })
}

struct Script<'a> {
    m: &'a mut Draws,
    r: &'a mut RecordingRng,
    events: Vec<Value>,
    sent: std::collections::BTreeMap<String, Vec<u8>>,
    count: usize,
}

impl Script<'_> {
    fn send(&mut self, alice: &mut Snd, id: &str) {
        let what = format!("group send {id}");
        let pt = format!("{id}: group message {}", self.count).into_bytes();
        self.count += 1;
        let (msg, mut ev) = alice.m.encrypt(self.m, &pt).unwrap();
        let draws = self.m.take();
        let wire = alice.s.encrypt(self.r, &pt).unwrap();
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
        ev["rng_draws"] = hx(&draws);
        ev["plaintext"] = hex(&pt).into();
        ev["plaintext_text"] = String::from_utf8(pt).unwrap().into();
        self.sent.insert(id.to_owned(), msg);
        self.events.push(ev);
    }

    fn receive(&mut self, to: &str, rc: &mut Rcv, id: &str) {
        let what = format!("group receive {id} at {to}");
        let msg = &self.sent[id];
        let before = rc.m.encode();
        same(&format!("{what}: before"), &rc.s.to_bytes(), &before);
        let (pt, mut ev) = rc.m.decrypt(msg).unwrap();
        let got =
            rc.s.decrypt(&GroupMessage::from_bytes(msg).unwrap())
                .unwrap_or_else(|e| panic!("DISAGREEMENT in {what}: sotto failed with {e:?}"));
        same(&what, &got.plaintext, &pt);
        let after = rc.m.encode();
        same(&format!("{what}: after"), &rc.s.to_bytes(), &after);
        let h = mg::parse_message(msg).unwrap();
        assert_eq!(got.index, h.index);
        assert_eq!(got.chain_id, h.chain_id);
        let sender = got.sender.identity().map(|i| i.to_bytes()[2..].to_vec());
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
        ev["skipped_keys_after"] = rc.m.cache.len().into();
        let (k, v) = receiver_state("state_before", &before);
        ev[k] = v;
        let (k, v) = receiver_state("state_after", &after);
        ev[k] = v;
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
                GReceiver::install(d, Some(identity)).unwrap(),
                GroupReceiver::accept(d, session).unwrap(),
                Value::from(hex(&session.to_bytes())),
            ),
            None => (
                GReceiver::install(d, None).unwrap(),
                GroupReceiver::import_unauthenticated(d).unwrap(),
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

    /// The sender's ratchet moves to `to` without sending: its state saved at
    /// `to`, restored.
    fn advance(&mut self, alice: &mut Snd, to: u32) {
        let mut levels = alice.m.levels;
        mg::jump(alice.m.index, &mut levels, to);
        alice.m.index = to;
        alice.m.levels = levels;
        alice.s = GroupSender::from_bytes(&alice.m.encode()).unwrap();
        same("advance", &alice.s.to_bytes(), &alice.m.encode());
        self.events
            .push(json!({ "type": "advance", "from": "alice", "to": to }));
    }
}

fn session(label: &str) -> Run {
    let (mut m, mut r) = (Draws::new(seed(label)), RecordingRng::new(seed(label)));
    let group = seed("sotto vectors group id");
    // The pairwise session that delivers Alice's distribution to Bob.
    let alice_p = new_party("alice", &mut m, &mut r);
    let mut bob_p = new_party("bob", &mut m, &mut r);
    let (mut am, mut asess, _, _, _) = start(&alice_p, &bob_p, None, &mut m, &mut r);
    let (first, _) = crate::send(
        "pairwise",
        &mut am,
        &mut asess,
        &mut m,
        &mut r,
        b"pairwise set-up",
    );
    let (bm, _, _, _) = model::accept(&mut bob_p.model, &first);
    let Message::PreKey(pm) = Message::from_bytes(&first).unwrap() else {
        panic!("not a prekey message")
    };
    let (bsess, _) = Session::accept(&mut bob_p.sotto, &pm).unwrap();
    same("pairwise bob session", &bsess.to_bytes(), &bm.encode().0);
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
        sent: Default::default(),
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
    sc.advance(&mut alice, bob.m.next + mg::MAX_JUMP);
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
        "type": "rotate", "from": "alice", "rng_draws": hx(&draws), "chain_id": alice.m.chain_id,
        "levels": mg::levels_json(&alice.m.levels), "signing_seed": hex(&alice.m.seed),
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
        let (k, v) = receiver_state(name, &rc.m.encode());
        finals[k] = v;
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

fn with(bytes: &[u8], f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut b = bytes.to_vec();
    f(&mut b);
    b
}

pub(crate) fn group() -> Value {
    let label = "sotto vectors group";
    let mut vectors = vec![ratchet("sotto vectors group ratchet")];
    let mut run = session(label);
    vectors.push(run.vector.clone());

    // Saved states, plain and sealed.
    let storage = run.m.draw::<32>();
    let mut seal_rng = RecordingRng::new(seed("sotto vectors group seal"));
    let mut seal_m = Draws::new(seed("sotto vectors group seal"));
    let key = StorageKey::from_bytes(storage);
    for (name, kind, state, decoded) in &run.snapshots {
        let salt = seal_m.draw::<32>();
        let draws = seal_m.take();
        let (sealed_m, aes_key, nonce) = model_seal(&storage, &salt, state);
        let sealed_s = match *kind {
            "group_sender" => GroupSender::from_bytes(state)
                .unwrap()
                .seal(&key, &mut seal_rng)
                .unwrap(),
            _ => GroupReceiver::from_bytes(state)
                .unwrap()
                .seal(&key, &mut seal_rng)
                .unwrap(),
        };
        same_draws(&format!("seal {name}"), &mut seal_rng, &draws);
        same(&format!("sealed {name}"), &sealed_s, &sealed_m);
        vectors.push(json!({
            "name": name, "kind": kind, "state": hex(state), "decoded": decoded,
            "storage_key": hex(&storage), "seal_salt": hex(&salt), "seal_info": model::L_SEALED,
            "seal_aes_key": hex(&aes_key), "seal_nonce": hex(&nonce), "sealed": hex(&sealed_m),
        }));
    }
    vectors.extend(negatives(&mut run, &storage));
    vectors.push(crate::group_store::store("sotto vectors group store"));
    let mut f = file(
        "group",
        "Group messaging (sender keys, SPEC.md section 15): the ratchet at chosen indices, a scripted session with every intermediate value, saved states, and inputs that must be rejected with their exact errors.",
        label,
        vectors,
    );
    f["fixtures"] = run
        .fixtures
        .iter()
        .map(|(n, s)| (n.to_string(), Value::from(hex(s))))
        .collect::<serde_json::Map<_, _>>()
        .into();
    f
}

/// Negative vectors; the expected error comes from the model and must be the
/// one intended.
fn negatives(run: &mut Run, storage: &[u8; 32]) -> Vec<Value> {
    let fx = |name: &str| {
        run.fixtures
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap()
            .1
            .clone()
    };
    let bob = fx("bob_receiver");
    let carol = fx("carol_receiver");
    let evicted = fx("bob_receiver_evicted");
    let sender = fx("alice_sender");
    let old = &run.alice_old;
    let new = &run.alice_new;
    let msg = |id: &str| run.sent[id].clone();
    let m0 = msg("m0");
    let m2 = msg("m2");
    let d = old.distribution();
    let unsigned = |b: &[u8]| b[..b.len() - 64].to_vec();
    // Exhausted: the old chain at index 2^32 - 1.
    let mut levels = old.levels;
    mg::jump(old.index, &mut levels, u32::MAX);
    let exhausted = GSender {
        index: u32::MAX,
        levels,
        ..old.clone()
    };
    let key = *storage;
    let other_key = run.m.draw::<32>();
    let seal_salt = run.m.draw::<32>();
    let (sealed_sender, _, _) = model_seal(&key, &seal_salt, &sender);
    let (sealed_receiver, _, _) = model_seal(&key, &seal_salt, &bob);
    let small_order = {
        let mut k = [0u8; 32];
        k[0] = 1;
        k
    };
    // y = p (non-canonical encoding of y = 0... which is a valid point).
    let non_canonical = {
        let mut k = [0xffu8; 32];
        k[0] = 0xed;
        k[31] = 0x7f;
        k
    };
    // A receiver installed from the exhausted sender's distribution.
    let receiver_at_last = GReceiver::install(&exhausted.distribution(), None)
        .unwrap()
        .encode();
    same(
        "receiver at the last index",
        &GroupReceiver::import_unauthenticated(&exhausted.distribution())
            .unwrap()
            .to_bytes(),
        &receiver_at_last,
    );
    let fixtures_extra = [
        ("exhausted_sender", exhausted.encode()),
        ("receiver_at_last_index", receiver_at_last.clone()),
    ];

    let mut out = Vec::new();
    let mut add = |name: &str,
                   op: &str,
                   input: &[u8],
                   intended: Value,
                   extra: Value,
                   model_result: Result<(), Value>| {
        let got = model_result.expect_err(&format!("model accepts negative vector {name}"));
        assert_eq!(
            got, intended,
            "model: {name} fails differently than intended"
        );
        let mut x = json!({ "name": name, "kind": "negative", "operation": op, "input": hex(input), "error": got });
        for (k, val) in extra.as_object().unwrap() {
            x[k] = val.clone();
        }
        out.push(x);
    };
    let e = |n: &str| mg::err(n);
    let ef = |n: &str, f: Value| json!({ "name": n, "fields": f });
    let none = json!({});
    let pad = |n: usize| json!({ "pad_to": n });
    let pm = |b: &[u8]| mg::parse_message(b).map(drop);
    let pd = |b: &[u8]| mg::parse_distribution(b).map(drop);
    let ps = |b: &[u8]| GSender::parse(b).map(drop);
    let pr = |b: &[u8]| GReceiver::parse(b).map(drop);
    let dec = |fixture: &[u8], b: &[u8]| {
        let mut r = GReceiver::parse(fixture).unwrap();
        pm(b)?;
        let res = r.decrypt(b).map(drop);
        assert!(
            res.is_ok() || r.encode() == fixture,
            "model changed state on error"
        );
        res
    };

    let gm = "GroupMessage::from_bytes";
    add(
        "message_empty",
        gm,
        &[],
        e("Truncated"),
        none.clone(),
        pm(&[]),
    );
    add(
        "message_version_only",
        gm,
        &[1],
        e("Truncated"),
        none.clone(),
        pm(&[1]),
    );
    let b = with(&m0, |b| b[0] = 2);
    add(
        "message_unknown_version",
        gm,
        &b,
        ef("UnsupportedVersion", json!({"found": 2})),
        none.clone(),
        pm(&b),
    );
    let b = with(&m0[..20], |b| b[0] = 0);
    add(
        "message_short_unknown_version",
        gm,
        &b,
        ef("UnsupportedVersion", json!({"found": 0})),
        none.clone(),
        pm(&b),
    );
    let b = with(&m0, |b| b[1] = 0x01);
    add(
        "message_wrong_type",
        gm,
        &b,
        ef("WrongType", json!({"expected": 3, "found": 1})),
        none.clone(),
        pm(&b),
    );
    add(
        "message_given_distribution",
        gm,
        &d,
        ef("WrongType", json!({"expected": 3, "found": 4})),
        none.clone(),
        pm(&d),
    );
    add(
        "message_one_byte_short",
        gm,
        &m0[..137],
        e("Truncated"),
        none.clone(),
        pm(&m0[..137]),
    );
    add(
        "message_header_only",
        gm,
        &m0[..58],
        e("Truncated"),
        none.clone(),
        pm(&m0[..58]),
    );
    let b = with(&[1, 3], |b| b.resize(MAX_GROUP_MESSAGE_LEN + 1, 0));
    add(
        "message_over_max_len",
        gm,
        &[1, 3],
        e("TooLarge"),
        pad(MAX_GROUP_MESSAGE_LEN + 1),
        pm(&b),
    );

    let sd = "SenderKeyDistribution::from_bytes";
    add(
        "distribution_truncated",
        sd,
        &d[..329],
        e("Truncated"),
        none.clone(),
        pd(&d[..329]),
    );
    let b = with(&d, |b| b.push(0));
    add(
        "distribution_trailing_byte",
        sd,
        &b,
        e("TrailingBytes"),
        none.clone(),
        pd(&b),
    );
    let b = with(&d, |b| b[0] = 0);
    add(
        "distribution_unknown_version",
        sd,
        &b,
        ef("UnsupportedVersion", json!({"found": 0})),
        none.clone(),
        pd(&b),
    );
    add(
        "distribution_given_sender_state",
        sd,
        &sender,
        ef("WrongType", json!({"expected": 4, "found": 0x22})),
        none.clone(),
        pd(&sender),
    );
    let b = with(&d, |b| b[298..].copy_from_slice(&small_order));
    add(
        "distribution_small_order_signing_key",
        sd,
        &b,
        e("InvalidPublicKey"),
        none.clone(),
        pd(&b),
    );
    let b = with(&d, |b| b[298..].copy_from_slice(&non_canonical));
    add(
        "distribution_non_canonical_signing_key",
        sd,
        &b,
        e("InvalidPublicKey"),
        none.clone(),
        pd(&b),
    );
    let b = with(&d, |b| b.resize(MAX_STATE_LEN + 1, 0));
    add(
        "distribution_far_oversized",
        sd,
        &d,
        e("TrailingBytes"),
        pad(MAX_STATE_LEN + 1),
        pd(&b),
    );

    let sf = "GroupSender::from_bytes";
    add(
        "sender_state_truncated",
        sf,
        &sender[..329],
        e("Truncated"),
        none.clone(),
        ps(&sender[..329]),
    );
    let b = with(&sender, |b| b.push(0));
    add(
        "sender_state_trailing_byte",
        sf,
        &b,
        e("TrailingBytes"),
        none.clone(),
        ps(&b),
    );
    let b = with(&sender, |b| b[0] = 2);
    add(
        "sender_state_unknown_version",
        sf,
        &b,
        ef("UnsupportedVersion", json!({"found": 2})),
        none.clone(),
        ps(&b),
    );
    add(
        "sender_state_given_receiver_state",
        sf,
        &bob,
        ef("WrongType", json!({"expected": 0x22, "found": 0x23})),
        none.clone(),
        ps(&bob),
    );
    let b = with(&sender, |b| b.resize(MAX_STATE_LEN + 1, 0));
    add(
        "sender_state_over_max_state_len",
        sf,
        &sender,
        e("TooLarge"),
        pad(MAX_STATE_LEN + 1),
        ps(&b),
    );

    let rf = "GroupReceiver::from_bytes";
    // Layout offsets in Bob's (authenticated) receiver state.
    let flag_at = 2 + 32 + 4 + 32;
    let next_at = flag_at + 1 + 64;
    let count_at = next_at + 4 + 256;
    add(
        "receiver_state_truncated",
        rf,
        &bob[..bob.len() - 1],
        e("Truncated"),
        none.clone(),
        pr(&bob[..bob.len() - 1]),
    );
    let b = with(&bob, |b| b.push(0));
    add(
        "receiver_state_trailing_byte",
        rf,
        &b,
        e("TrailingBytes"),
        none.clone(),
        pr(&b),
    );
    let b = with(&bob, |b| b[0] = 0);
    add(
        "receiver_state_unknown_version",
        rf,
        &b,
        ef("UnsupportedVersion", json!({"found": 0})),
        none.clone(),
        pr(&b),
    );
    add(
        "receiver_state_given_sender_state",
        rf,
        &sender,
        ef("WrongType", json!({"expected": 0x23, "found": 0x22})),
        none.clone(),
        pr(&sender),
    );
    let b = with(&bob, |b| b[flag_at] = 2);
    add(
        "receiver_state_bad_flag",
        rf,
        &b,
        e("InvalidEncoding"),
        none.clone(),
        pr(&b),
    );
    let b = with(&bob, |b| b[38..70].copy_from_slice(&small_order));
    add(
        "receiver_state_small_order_signing_key",
        rf,
        &b,
        e("InvalidPublicKey"),
        none.clone(),
        pr(&b),
    );
    let b = with(&bob, |b| {
        b[flag_at + 1 + 32..next_at].copy_from_slice(&non_canonical)
    });
    add(
        "receiver_state_non_canonical_identity_dh_key",
        rf,
        &b,
        e("InvalidPublicKey"),
        none.clone(),
        pr(&b),
    );
    let b = with(&bob, |b| {
        b[count_at..count_at + 2].copy_from_slice(&257u16.to_be_bytes())
    });
    add(
        "receiver_state_too_many_cached_keys",
        rf,
        &b,
        e("InvalidEncoding"),
        none.clone(),
        pr(&b),
    );
    // Bob's cache holds index 2 and next is 4: claim next = 2.
    let b = with(&bob, |b| {
        b[next_at..next_at + 4].copy_from_slice(&2u32.to_be_bytes())
    });
    add(
        "receiver_state_cached_index_not_below_next",
        rf,
        &b,
        e("InvalidEncoding"),
        none.clone(),
        pr(&b),
    );
    // §4: the index is checked as soon as it is read, before its key.
    let b = with(&bob, |b| {
        b[next_at..next_at + 4].copy_from_slice(&2u32.to_be_bytes());
        b.truncate(count_at + 2 + 4);
    });
    add(
        "receiver_state_cached_index_not_below_next_ends_after_index",
        rf,
        &b,
        e("InvalidEncoding"),
        none.clone(),
        pr(&b),
    );
    // Two cached keys with the same index.
    let b = with(&bob, |b| {
        let entry = b[count_at + 2..count_at + 2 + 36].to_vec();
        b[count_at..count_at + 2].copy_from_slice(&2u16.to_be_bytes());
        b.extend(entry);
    });
    add(
        "receiver_state_cached_indices_not_increasing",
        rf,
        &b,
        e("InvalidEncoding"),
        none.clone(),
        pr(&b),
    );
    let b = with(&bob, |b| b.resize(MAX_STATE_LEN + 1, 0));
    add(
        "receiver_state_over_max_state_len",
        rf,
        &bob,
        e("TooLarge"),
        pad(MAX_STATE_LEN + 1),
        pr(&b),
    );

    let sk = json!({ "storage_key": hex(&key) });
    let open = |sealed: &[u8], k: &[u8; 32], ty: u8| -> Result<(), Value> {
        // Sealed state (§10.4) opened by the model.
        let mut r = sealed.to_vec();
        if r.len() < 35 + 16 {
            return Err(e("Truncated"));
        }
        if r[2] != ty {
            return Err(ef("WrongType", json!({ "expected": ty, "found": r[2] })));
        }
        let (aes, nonce) = model::key_nonce(&r[3..35], k, model::L_SEALED);
        let body = r.split_off(35);
        model::open(&aes, &nonce, &r, &body)
            .map(drop)
            .ok_or(e("AuthenticationFailed"))
    };
    add(
        "sealed_receiver_opened_as_sender",
        "GroupSender::unseal",
        &sealed_receiver,
        ef("WrongType", json!({"expected": 0x22, "found": 0x23})),
        sk.clone(),
        open(&sealed_receiver, &key, 0x22),
    );
    add(
        "sealed_sender_opened_as_receiver",
        "GroupReceiver::unseal",
        &sealed_sender,
        ef("WrongType", json!({"expected": 0x23, "found": 0x22})),
        sk.clone(),
        open(&sealed_sender, &key, 0x23),
    );
    let b = with(&sealed_sender, |b| *b.last_mut().unwrap() ^= 1);
    add(
        "sealed_sender_tampered",
        "GroupSender::unseal",
        &b,
        e("AuthenticationFailed"),
        sk.clone(),
        open(&b, &key, 0x22),
    );
    add(
        "sealed_receiver_wrong_storage_key",
        "GroupReceiver::unseal",
        &sealed_receiver,
        e("AuthenticationFailed"),
        json!({ "storage_key": hex(&other_key) }),
        open(&sealed_receiver, &other_key, 0x23),
    );

    let gd = "GroupReceiver::decrypt";
    let at_bob = json!({ "receiver": "bob_receiver" });
    let m4 = msg("m4");
    add(
        "replay_read_message",
        gd,
        &m0,
        e("DuplicateMessage"),
        at_bob.clone(),
        dec(&bob, &m0),
    );
    add(
        "replay_message_read_from_cache",
        gd,
        &msg("m1"),
        e("DuplicateMessage"),
        at_bob.clone(),
        dec(&bob, &msg("m1")),
    );
    let b = with(&m4, |b| b[2] ^= 1);
    add(
        "wrong_group",
        gd,
        &b,
        e("UnknownGroupChain"),
        at_bob.clone(),
        dec(&bob, &b),
    );
    let r0 = msg("r0");
    add(
        "unknown_chain",
        gd,
        &r0,
        e("UnknownGroupChain"),
        at_bob.clone(),
        dec(&bob, &r0),
    );
    // Rotated chain's key signs a message naming the old chain.
    let b = new.sign(&unsigned(&m4));
    add(
        "forged_signature_other_chain_key",
        gd,
        &b,
        e("InvalidSignature"),
        at_bob.clone(),
        dec(&bob, &b),
    );
    let b = with(&m4, |b| *b.last_mut().unwrap() ^= 1);
    add(
        "signature_bit_flipped",
        gd,
        &b,
        e("InvalidSignature"),
        at_bob.clone(),
        dec(&bob, &b),
    );
    let mut b = m4.clone();
    let s_at = b.len() - 32;
    let mut carry = 0u16;
    for (i, l) in ED25519_L.iter().enumerate() {
        let sum = u16::from(b[s_at + i]) + u16::from(*l) + carry;
        b[s_at + i] = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0);
    add(
        "signature_s_plus_l",
        gd,
        &b,
        e("InvalidSignature"),
        at_bob.clone(),
        dec(&bob, &b),
    );
    let b = with(&m4, |b| b[60] ^= 1);
    add(
        "tampered_ciphertext_unsigned",
        gd,
        &b,
        e("InvalidSignature"),
        at_bob.clone(),
        dec(&bob, &b),
    );
    let b = old.sign(&with(&unsigned(&m4), |b| b[60] ^= 1));
    add(
        "tampered_ciphertext_resigned",
        gd,
        &b,
        e("AuthenticationFailed"),
        at_bob.clone(),
        dec(&bob, &b),
    );
    let b = old.sign(&with(&unsigned(&m4), |b| b[45] ^= 1));
    add(
        "tampered_salt_resigned",
        gd,
        &b,
        e("AuthenticationFailed"),
        at_bob.clone(),
        dec(&bob, &b),
    );
    let b = old.sign(&with(&unsigned(&m2), |b| b[60] ^= 1));
    add(
        "tampered_cached_index_resigned",
        gd,
        &b,
        e("AuthenticationFailed"),
        at_bob.clone(),
        dec(&bob, &b),
    );
    let b = old.sign(&with(&unsigned(&m4), |b| {
        b[38..42].copy_from_slice(&9u32.to_be_bytes())
    }));
    add(
        "index_changed_resigned",
        gd,
        &b,
        e("AuthenticationFailed"),
        at_bob.clone(),
        dec(&bob, &b),
    );
    let b = with(&m4, |b| b.push(0));
    add(
        "trailing_byte_breaks_signature",
        gd,
        &b,
        e("InvalidSignature"),
        at_bob.clone(),
        dec(&bob, &b),
    );
    let b = old.sign(&with(&unsigned(&m4), |b| {
        b[38..42].copy_from_slice(&u32::MAX.to_be_bytes())
    }));
    add(
        "last_index",
        gd,
        &b,
        ef("GroupIndexOutOfRange", json!({"index": u32::MAX})),
        at_bob.clone(),
        dec(&bob, &b),
    );
    let m8 = msg("m8");
    let idx = u32::from_be_bytes(m8[38..42].try_into().unwrap());
    add(
        "jump_past_max",
        gd,
        &m8,
        ef("GroupIndexOutOfRange", json!({"index": idx})),
        json!({ "receiver": "carol_receiver" }),
        dec(&carol, &m8),
    );
    add(
        "evicted_key",
        gd,
        &m2,
        e("DuplicateMessage"),
        json!({ "receiver": "bob_receiver_evicted" }),
        dec(&evicted, &m2),
    );

    let ge = "GroupSender::encrypt";
    let exhausted_state = exhausted.encode();
    add(
        "encrypt_at_last_index",
        ge,
        b"late",
        e("ChainExhausted"),
        json!({ "sender": "exhausted_sender" }),
        {
            let mut s = GSender::parse(&exhausted_state).unwrap();
            s.encrypt(&mut Draws::new([0; 32]), b"late").map(drop)
        },
    );
    add(
        "encrypt_plaintext_over_max",
        ge,
        &[],
        e("PlaintextTooLarge"),
        json!({ "sender": "alice_sender", "pad_to": MAX_PLAINTEXT_LEN + 1 }),
        {
            let mut s = GSender::parse(&sender).unwrap();
            s.encrypt(&mut Draws::new([0; 32]), &vec![0; MAX_PLAINTEXT_LEN + 1])
                .map(drop)
        },
    );
    // §15.8: the signature is checked before the cache, duplicate and range
    // checks, so these fail with InvalidSignature, not with the error their
    // index would give.
    let flip = |b: &[u8]| {
        with(b, |b| {
            let at = b.len() - 64;
            b[at] ^= 1;
        })
    };
    let last = old.sign(&with(&unsigned(&m4), |b| {
        b[38..42].copy_from_slice(&u32::MAX.to_be_bytes())
    }));
    for (name, fixture, at, m) in [
        ("last_index_bad_signature", &bob, "bob_receiver", last),
        (
            "replay_read_message_bad_signature",
            &bob,
            "bob_receiver",
            m0.clone(),
        ),
        (
            "replay_message_read_from_cache_bad_signature",
            &bob,
            "bob_receiver",
            msg("m1"),
        ),
        (
            "jump_past_max_bad_signature",
            &carol,
            "carol_receiver",
            msg("m8"),
        ),
        (
            "evicted_key_bad_signature",
            &evicted,
            "bob_receiver_evicted",
            m2.clone(),
        ),
    ] {
        let b = flip(&m);
        add(
            name,
            gd,
            &b,
            e("InvalidSignature"),
            json!({ "receiver": at }),
            dec(fixture, &b),
        );
    }
    // §2 Verify step 3: R is the identity point and [S]B - [k]A = R, so
    // only the small-order check on R rejects it.
    let b = {
        let u = unsigned(&m4);
        let sig = crate::extra::sign_small_order_r(&old.seed, &mg::signed_data(&u));
        with(&u, |b| b.extend(sig))
    };
    add(
        "signature_small_order_r",
        gd,
        &b,
        e("InvalidSignature"),
        at_bob.clone(),
        dec(&bob, &b),
    );
    // §15.12: PlaintextTooLarge is checked before ChainExhausted.
    add(
        "encrypt_at_last_index_plaintext_over_max",
        ge,
        &[],
        e("PlaintextTooLarge"),
        json!({ "sender": "exhausted_sender", "pad_to": MAX_PLAINTEXT_LEN + 1 }),
        {
            let mut s = GSender::parse(&exhausted_state).unwrap();
            s.encrypt(&mut Draws::new([0; 32]), &vec![0; MAX_PLAINTEXT_LEN + 1])
                .map(drop)
        },
    );
    // §15.6 / §15.11: a distribution (so a receiver) may carry index
    // 2^32 - 1; such a receiver decrypts nothing.
    let b = with(&m4, |b| b.truncate(b.len() - 64));
    let b = exhausted.sign(&with(&b, |b| {
        b[38..42].copy_from_slice(&u32::MAX.to_be_bytes())
    }));
    add(
        "receiver_at_last_index",
        gd,
        &b,
        ef("GroupIndexOutOfRange", json!({"index": u32::MAX})),
        json!({ "receiver": "receiver_at_last_index" }),
        dec(&receiver_at_last, &b),
    );
    // §15.11 / §10.4: the size bound applies to the sealed input.
    let over = |b: &[u8]| {
        let b = with(b, |b| b.resize(MAX_STATE_LEN + 1, 0));
        if b.len() > mg::MAX_STATE {
            Err(e("TooLarge"))
        } else {
            Ok(())
        }
    };
    let sk = json!({ "storage_key": hex(&key), "pad_to": MAX_STATE_LEN + 1 });
    add(
        "sealed_sender_over_max_state_len",
        "GroupSender::unseal",
        &sealed_sender[..35],
        e("TooLarge"),
        sk.clone(),
        over(&sealed_sender[..35]),
    );
    add(
        "sealed_receiver_over_max_state_len",
        "GroupReceiver::unseal",
        &sealed_receiver[..35],
        e("TooLarge"),
        sk,
        over(&sealed_receiver[..35]),
    );
    for (n, s) in fixtures_extra {
        run.fixtures.push((n, s));
    }
    out
}
