//! device.json (SPEC.md §6): signed prekey rotation, the one-time prekey
//! and recent base key limits, id overflow. The model and sotto run every
//! step in lockstep and must agree on every error, key and state.

use serde_json::{Value, json};
use sotto::Session;
use testkit::hex::{hex, hex_list};
use testkit::model::keys::one_time_prekey_bytes;
use testkit::model::primitives::MAX_RECENT;
use testkit::model::{self, Dev};
use testkit::rng::{Draws, RecordingRng, named_seed};

use crate::lockstep::{
    Party, Started, file, new_party, restored_party, same, same_draws, same_result, send, start,
    state_json, streams,
};

/// States longer than this are written as their SHA-256.
const INLINE_STATE_MAX: usize = 2048;

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
    fn from_model(dev: &Dev, m: &'a mut Draws, r: &'a mut RecordingRng) -> Self {
        Self::new(restored_party(&dev.encode()), m, r)
    }

    fn finish_step(&mut self, what: &str, mut step: Value) {
        let state = self.bob.sotto.to_bytes().to_vec();
        same(&format!("{what}: device"), &state, &self.bob.model.encode());
        state_json(&mut step, "state_after", &state, INLINE_STATE_MAX);
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
            json!({ "op": "rotate_signed_prekey", "rng_draws": hex_list(&draws), "error": error });
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
            "op": "generate_one_time_prekeys", "count": count, "rng_draws": hex_list(&draws), "error": error,
        });
        if let (Ok(s), Ok(made)) = (&sr, &mr) {
            let mut list = Vec::new();
            for (o, (id, _, public)) in s.iter().zip(made) {
                let enc = one_time_prekey_bytes(*id, public);
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
        let pm = sotto::PreKeyMessage::from_vec(msg.to_vec()).expect("a prekey message");
        let mr = model::try_accept(&mut self.bob.model, msg);
        let sr = Session::accept(&mut self.bob.sotto, &pm);
        let error = same_result(&what, &sr, &mr);
        let mut step = json!({ "op": "accept", "message": hex(msg), "error": error });
        if let (Ok((ss, spt)), Ok((ms, mpt, _, _))) = (&sr, &mr) {
            same(&what, spt, mpt);
            same(&format!("{what}: session"), &ss.to_bytes(), &ms.encode());
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
    let Started {
        model: mut am,
        sotto: mut asess,
        ..
    } = start(alice, bob, None, m, r);
    send("prekey message", &mut am, &mut asess, m, r, pt).0
}

/// A new device made by the model alone, to be edited into a state that
/// calls would take too long to reach; sotto's stream skips its draws.
fn model_device(label: &str) -> (Dev, Draws, RecordingRng) {
    let (mut m, mut r) = streams(label);
    let dev = Dev::generate(&mut m);
    m.take();
    r.skip(96);
    (dev, m, r)
}

/// Extra state bytes, drawn from their own stream.
fn filler(label: &str) -> Draws {
    Draws::new(named_seed(label))
}

fn rotation() -> Value {
    let (mut m, mut r) = streams("sotto vectors device rotation");
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
    let (mut dev, mut m, mut r) = model_device("sotto vectors device signed prekey id overflow");
    dev.next_spk = u32::MAX - 1;
    let mut d = DeviceScript::from_model(&dev, &mut m, &mut r);
    d.rotate();
    d.rotate();
    d.vector(
        "signed_prekey_id_overflow",
        "Next signed prekey id 2^32 - 2: one rotation assigns it, the next fails (id 2^32 - 1 is never assigned).",
    )
}

fn opk_limits() -> Value {
    let (mut dev, mut m, mut r) = model_device("sotto vectors device one-time prekey limit");
    let mut f = filler("sotto vectors device one-time prekey filler");
    for id in 1..=998 {
        dev.opks.insert(id, f.draw::<32>());
    }
    dev.next_opk = 999;
    let mut d = DeviceScript::from_model(&dev, &mut m, &mut r);
    d.generate(3);
    d.generate(2);
    d.generate(1);
    d.vector(
        "one_time_prekey_limit",
        "A device holding 998 one-time prekeys: 3 more fail, 2 more reach MAX_ONE_TIME_PREKEYS, then 1 more fails.",
    )
}

fn opk_id_overflow() -> Value {
    let (mut dev, mut m, mut r) = model_device("sotto vectors device one-time prekey id overflow");
    dev.next_opk = u32::MAX - 2;
    let mut d = DeviceScript::from_model(&dev, &mut m, &mut r);
    d.generate(3);
    d.generate(2);
    d.generate(1);
    d.vector(
        "one_time_prekey_id_overflow",
        "Next one-time prekey id 2^32 - 3: 3 keys fail, 2 keys get ids 2^32 - 3 and 2^32 - 2, then 1 more fails.",
    )
}

fn recent_base_keys() -> Value {
    let (mut m, mut r) = streams("sotto vectors device recent base keys");
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
    assert_eq!(bob.model.recent.len(), MAX_RECENT);
    let mut d = DeviceScript::from_model(&bob.model, &mut m, &mut r);
    d.accept(&first);
    d.accept(&second);
    d.accept(&first);
    d.accept(&second);
    d.vector(
        "recent_base_key_limit",
        "A device remembering MAX_RECENT_BASE_KEYS base keys, the oldest from `first`: `first` is a duplicate until one more accept pushes it out, then it is accepted again.",
    )
}

pub(crate) fn generate() -> Value {
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
