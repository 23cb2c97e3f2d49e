//! device.json (SPEC.md §6: rotation, the one-time prekey and recent base
//! key limits, id overflow) and bounds.json (§8.7: receiving chain and
//! skipped key eviction at the real limits, and late messages after it).
//! The model (`model.rs`) and sotto run every step in lockstep and must
//! agree on every error, message and state.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sotto::rand_core::Rng;
use sotto::{Device, Message, Session};

use crate::model::{self, Dev, Draws, Sess, hx};
use crate::model_group::Err;
use crate::vectors::{error_json, hex};
use crate::{Party, RecordingRng, file, new_party, same, same_draws, seed, send, start};

/// States longer than this are written as their SHA-256.
const INLINE_STATE_MAX: usize = 2048;

fn state_json(step: &mut Value, key: &str, state: &[u8]) {
    if state.len() > INLINE_STATE_MAX {
        step[format!("{key}_sha256")] = hex(&Sha256::digest(state)).into();
    } else {
        step[key] = hex(state).into();
    }
}

/// Both results, which must agree; the JSON error or `null`.
fn same_result<T, U>(what: &str, s: &Result<T, sotto::Error>, m: &Result<U, Err>) -> Value {
    let s = s.as_ref().err().map(error_json);
    let m = m.as_ref().err().cloned();
    assert!(s == m, "DISAGREEMENT in {what}: sotto {s:?}, model {m:?}");
    m.unwrap_or(Value::Null)
}

/// A device driven step by step on both sides.
struct DeviceScript<'a> {
    bob: Party,
    m: &'a mut Draws,
    r: &'a mut RecordingRng,
    initial: Vec<u8>,
    steps: Vec<Value>,
}

impl<'a> DeviceScript<'a> {
    fn new(bob: Party, m: &'a mut Draws, r: &'a mut RecordingRng) -> Self {
        let initial = bob.sotto.to_bytes().to_vec();
        same("initial device", &initial, &bob.model.encode());
        Self {
            bob,
            m,
            r,
            initial,
            steps: Vec::new(),
        }
    }

    /// A device from a state built by the model (for states that would
    /// take too long to reach by calls, or that need ids near 2^32).
    fn from_model(dev: Dev, m: &'a mut Draws, r: &'a mut RecordingRng) -> Self {
        let state = dev.encode();
        let sotto = Device::from_bytes(&state).unwrap();
        let model = Dev::decode(&state).unwrap();
        Self::new(Party { model, sotto }, m, r)
    }

    fn finish_step(&mut self, what: &str, mut step: Value) {
        let state = self.bob.sotto.to_bytes().to_vec();
        same(&format!("{what}: device"), &state, &self.bob.model.encode());
        state_json(&mut step, "state_after", &state);
        self.steps.push(step);
    }

    fn rotate(&mut self) {
        let what = format!("device step {}", self.steps.len());
        let mr = self.bob.model.rotate(self.m);
        let draws = self.m.take();
        let sr = self.bob.sotto.rotate_signed_prekey(self.r);
        same_draws(&what, self.r, &draws);
        let error = same_result(&what, &sr, &mr);
        let mut step =
            json!({ "op": "rotate_signed_prekey", "rng_draws": hx(&draws), "error": error });
        if let Ok(spk) = sr {
            same(&what, &spk.to_bytes(), &self.bob.model.spk().encoded());
            step["signed_prekey"] = hex(&spk.to_bytes()).into();
        }
        self.finish_step(&what, step);
    }

    fn generate(&mut self, count: u32) {
        let what = format!("device step {}", self.steps.len());
        let mr = self.bob.model.try_gen_opks(self.m, count);
        let draws = self.m.take();
        let sr = self
            .bob
            .sotto
            .generate_one_time_prekeys(self.r, count as usize);
        same_draws(&what, self.r, &draws);
        let error = same_result(&what, &sr, &mr);
        let mut step = json!({
            "op": "generate_one_time_prekeys", "count": count, "rng_draws": hx(&draws), "error": error,
        });
        if let (Ok(s), Ok(made)) = (&sr, &mr) {
            let mut list = Vec::new();
            for (o, (id, _, public)) in s.iter().zip(made) {
                let mut enc = vec![1, 0x12];
                enc.extend(id.to_be_bytes());
                enc.extend(public);
                same(&what, &o.to_bytes(), &enc);
                list.push(Value::from(hex(&enc)));
            }
            assert_eq!(list.len(), count as usize);
            step["one_time_prekeys"] = list.into();
        }
        self.finish_step(&what, step);
    }

    fn accept(&mut self, msg: &[u8]) {
        let what = format!("device step {}", self.steps.len());
        let Message::PreKey(pm) = Message::from_bytes(msg).unwrap() else {
            panic!("{what}: not a prekey message")
        };
        let mr = model::try_accept(&mut self.bob.model, msg);
        let sr = Session::accept(&mut self.bob.sotto, &pm);
        let error = same_result(&what, &sr, &mr);
        let mut step = json!({ "op": "accept", "message": hex(msg), "error": error });
        if let (Ok((ss, spt)), Ok((ms, mpt, _, _))) = (&sr, &mr) {
            same(&what, spt, mpt);
            same(&format!("{what}: session"), &ss.to_bytes(), &ms.encode().0);
            step["plaintext"] = hex(mpt).into();
            step["session"] = hex(&ss.to_bytes()).into();
        }
        self.finish_step(&what, step);
    }

    fn vector(self, name: &str, description: &str) -> Value {
        json!({
            "name": name, "description": description,
            "initial_state": hex(&self.initial), "steps": self.steps,
        })
    }
}

/// A prekey message from a fresh initiator to the device's current bundle
/// (no one-time prekey).
fn prekey_message(
    alice: &Party,
    bob: &Party,
    m: &mut Draws,
    r: &mut RecordingRng,
    pt: &[u8],
) -> Vec<u8> {
    let (mut am, mut asess, _, _, _) = start(alice, bob, None, m, r);
    send("prekey message", &mut am, &mut asess, m, r, pt).0
}

/// A new device made by the model alone, to be edited into a state that
/// calls would take too long to reach; sotto's stream skips its draws.
fn model_device(label: &str) -> (Dev, Draws, RecordingRng) {
    let (mut m, mut r) = (Draws::new(seed(label)), RecordingRng::new(seed(label)));
    let dev = Dev::generate(&mut m);
    m.take();
    let mut skip = [0u8; 96];
    r.fill_bytes(&mut skip);
    r.log.clear();
    (dev, m, r)
}

/// Extra state bytes, drawn from their own stream.
fn filler(label: &str) -> Draws {
    Draws::new(seed(label))
}

fn rotation() -> Value {
    let label = "sotto vectors device rotation";
    let (mut m, mut r) = (Draws::new(seed(label)), RecordingRng::new(seed(label)));
    let alice = new_party("alice", &mut m, &mut r);
    let bob = new_party("bob", &mut m, &mut r);
    let to_spk1_a = prekey_message(&alice, &bob, &mut m, &mut r, b"to signed prekey 1, first");
    let to_spk1_b = prekey_message(&alice, &bob, &mut m, &mut r, b"to signed prekey 1, second");
    let mut d = DeviceScript::new(bob, &mut m, &mut r);
    d.rotate();
    let to_spk2 = prekey_message(&alice, &d.bob, d.m, d.r, b"to signed prekey 2");
    d.rotate();
    d.rotate();
    d.accept(&to_spk1_a);
    d.rotate();
    d.accept(&to_spk1_b);
    d.accept(&to_spk2);
    d.vector(
        "signed_prekey_rotation",
        "Four rotations: signed prekey 1 is accepted while it is one of the three old keys, then forgotten; key 2 is still accepted.",
    )
}

fn spk_id_overflow() -> Value {
    let label = "sotto vectors device signed prekey id overflow";
    let (mut dev, mut m, mut r) = model_device(label);
    dev.next_spk = u32::MAX - 1;
    let mut d = DeviceScript::from_model(dev, &mut m, &mut r);
    d.rotate();
    d.rotate();
    d.vector(
        "signed_prekey_id_overflow",
        "Next signed prekey id 2^32 - 2: one rotation assigns it, the next fails (id 2^32 - 1 is never assigned).",
    )
}

fn opk_limits() -> Value {
    let label = "sotto vectors device one-time prekey limit";
    let (mut dev, mut m, mut r) = model_device(label);
    let mut f = filler("sotto vectors device one-time prekey filler");
    for id in 1..=998 {
        dev.opks.insert(id, f.draw::<32>());
    }
    dev.next_opk = 999;
    let mut d = DeviceScript::from_model(dev, &mut m, &mut r);
    d.generate(3);
    d.generate(2);
    d.generate(1);
    d.vector(
        "one_time_prekey_limit",
        "A device holding 998 one-time prekeys: 3 more fail, 2 more reach MAX_ONE_TIME_PREKEYS, then 1 more fails.",
    )
}

fn opk_id_overflow() -> Value {
    let label = "sotto vectors device one-time prekey id overflow";
    let (mut dev, mut m, mut r) = model_device(label);
    dev.next_opk = u32::MAX - 2;
    let mut d = DeviceScript::from_model(dev, &mut m, &mut r);
    d.generate(3);
    d.generate(2);
    d.generate(1);
    d.vector(
        "one_time_prekey_id_overflow",
        "Next one-time prekey id 2^32 - 3: 3 keys fail, 2 keys get ids 2^32 - 3 and 2^32 - 2, then 1 more fails.",
    )
}

fn recent_base_keys() -> Value {
    let label = "sotto vectors device recent base keys";
    let (mut m, mut r) = (Draws::new(seed(label)), RecordingRng::new(seed(label)));
    let alice = new_party("alice", &mut m, &mut r);
    let mut bob = new_party("bob", &mut m, &mut r);
    let first = prekey_message(&alice, &bob, &mut m, &mut r, b"first, replayed later");
    let second = prekey_message(&alice, &bob, &mut m, &mut r, b"second");
    // Bob accepted `first` long ago, then 999 other prekey messages.
    model::accept(&mut bob.model, &first);
    let mut f = filler("sotto vectors device recent base key filler");
    for _ in 0..999 {
        bob.model.recent.push(f.draw::<32>());
    }
    assert_eq!(bob.model.recent.len(), model::MAX_RECENT);
    let dev = bob.model.clone();
    let mut d = DeviceScript::from_model(dev, &mut m, &mut r);
    d.accept(&first);
    d.accept(&second);
    d.accept(&first);
    d.accept(&second);
    d.vector(
        "recent_base_key_limit",
        "A device remembering MAX_RECENT_BASE_KEYS base keys, the oldest from `first`: `first` is a duplicate until one more accept pushes it out, then it is accepted again.",
    )
}

pub(crate) fn device() -> Value {
    file(
        "device",
        "Device operations at their limits (SPEC.md section 6): signed prekey rotation, one-time prekey limits, id overflow, recent base keys.",
        "sotto vectors device <name>",
        vec![
            rotation(),
            spk_id_overflow(),
            opk_limits(),
            opk_id_overflow(),
            recent_base_keys(),
        ],
    )
}

/// A two-party session script with compact events (bounds.json).
struct Bounds<'a> {
    alice: Party,
    bob: Party,
    sessions: [Option<(Sess, Session)>; 2],
    m: &'a mut Draws,
    r: &'a mut RecordingRng,
    sent: BTreeMap<String, Vec<u8>>,
    events: Vec<Value>,
}

const NAMES: [&str; 2] = ["alice", "bob"];

impl Bounds<'_> {
    fn send(&mut self, p: usize, id: &str) {
        let what = format!("bounds send {id}");
        let pt = format!("{id} from {}", NAMES[p]).into_bytes();
        let (ms, ss) = self.sessions[p].as_mut().unwrap();
        let (msg, ev) = send(&what, ms, ss, self.m, self.r, &pt);
        self.events.push(json!({
            "type": "send", "from": NAMES[p], "message_id": id, "rng_draws": ev["rng_draws"],
            "plaintext": hex(&pt), "message_number": ev["message_number"], "message": hex(&msg),
        }));
        self.sent.insert(id.to_owned(), msg);
    }

    /// The sending chain moves `count` steps without sending.
    fn advance(&mut self, p: usize, count: u32) {
        let what = format!("bounds advance {}", NAMES[p]);
        let (ms, ss) = self.sessions[p].as_mut().unwrap();
        let at = ms.sending_ck_at();
        ms.advance(count);
        let mut state = ss.to_bytes().to_vec();
        let s = ms.sending.as_ref().unwrap();
        state[at..at + 32].copy_from_slice(&s.ck);
        state[at + 32..at + 36].copy_from_slice(&s.next.to_be_bytes());
        let next = s.next;
        *ss = Session::from_bytes(&state).unwrap();
        same(&what, &ss.to_bytes(), &ms.encode().0);
        self.events.push(
            json!({ "type": "advance", "from": NAMES[p], "count": count, "next_after": next }),
        );
    }

    fn receive(&mut self, p: usize, id: &str) {
        let what = format!("bounds receive {id}");
        let msg = self.sent[id].clone();
        let message = Message::from_bytes(&msg).unwrap();
        let mut ev = json!({ "type": "receive", "to": NAMES[p], "message_id": id });
        match (&mut self.sessions[p], &message) {
            (None, Message::PreKey(pm)) => {
                let device = if p == 0 {
                    &mut self.alice
                } else {
                    &mut self.bob
                };
                let (ms, pt, _, _) = model::accept(&mut device.model, &msg);
                let (ss, spt) = Session::accept(&mut device.sotto, pm).unwrap();
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
        let (ms, ss) = self.sessions[p].as_ref().unwrap();
        let state = ss.to_bytes().to_vec();
        same(&format!("{what}: state"), &state, &ms.encode().0);
        ev["skipped_keys_after"] = ms.skipped_count().into();
        ev["receiving_chains_after"] = ms.recv.len().into();
        state_json(&mut ev, "state_after", &state);
        self.events.push(ev);
    }
}

fn bounds_script(name: &str, description: &str, script: impl FnOnce(&mut Bounds<'_>)) -> Value {
    let label = format!("sotto vectors bounds {name}");
    let (mut m, mut r) = (Draws::new(seed(&label)), RecordingRng::new(seed(&label)));
    let alice = new_party("alice", &mut m, &mut r);
    let bob = new_party("bob", &mut m, &mut r);
    let (am, asess, _, _, init_draws) = start(&alice, &bob, None, &mut m, &mut r);
    let devices = json!({
        "alice": { "rng_draws": hx(&alice.model.draws), "identity_key": hex(&alice.model.ik_encoded()) },
        "bob": { "rng_draws": hx(&bob.model.draws), "identity_key": hex(&bob.model.ik_encoded()) },
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
    script(&mut b);
    json!({
        "name": name, "description": description,
        "alice": devices["alice"], "bob": devices["bob"],
        "initiate_rng_draws": hx(&init_draws),
        "events": b.events,
    })
}

pub(crate) fn bounds() -> Value {
    const A: usize = 0;
    const B: usize = 1;
    let chains = bounds_script(
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
    let keys = bounds_script(
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

impl Bounds<'_> {
    /// Starts a new sending chain with a message that is never delivered,
    /// then moves it `count - 1` further: the next message has number
    /// `count`.
    fn advance_new_chain(&mut self, p: usize, count: u32) {
        let id = format!("{}_new_chain_{}", NAMES[p], self.events.len());
        self.send(p, &id);
        self.advance(p, count - 1);
    }
}
