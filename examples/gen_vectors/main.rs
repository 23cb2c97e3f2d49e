#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    missing_docs
)]
//! Generates `test-vectors/*.json` byte for byte from fixed seeds.
//!
//! ```text
//! cargo run --example gen_vectors -- [OUT_DIR]     (default: test-vectors)
//! ```
//!
//! Every intermediate value comes from `model.rs`, a second implementation
//! written from the protocol description with the primitive crates only.
//! sotto's public API is then driven with the same seeded RNG (through a
//! recording wrapper) and must draw the same bytes and produce the same
//! messages, plaintexts and saved states; any difference aborts with a
//! `DISAGREEMENT` message. Finally each file is checked by the verifier
//! (`tests/support/vectors.rs`) before it is written.
//!
//! To add an area (e.g. `group.json`), write one `fn() -> Value` and list it
//! in [`GENERATORS`], then add its verifier to `AREAS` in the support module.

#[path = "../../tests/support/vectors.rs"]
mod vectors;

mod extra;
mod group;
mod group_store;
mod limits;
mod model;
mod model_group;

use std::path::PathBuf;

use rand_chacha::ChaCha20Rng;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sotto::rand_core::{Infallible, Rng, SeedableRng, TryCryptoRng, TryRng};
use sotto::{
    Device, MAX_MESSAGE_LEN, MAX_PLAINTEXT_LEN, Message, PreKeyBundle, Session, StorageKey,
};

use extra::{NegativeExtra, negative_extra};
use model::{Dev, Draws, Sess, hx};
use vectors::hex;

type Generator = fn() -> Value;

/// Every vector file, in order: (area, generator).
const GENERATORS: &[(&str, Generator)] = &[
    ("kdf", kdf),
    ("x3dh", x3dh),
    ("conversation", conversation),
    ("persistence", persistence),
    ("negative", negative),
    ("group", group::group),
    ("device", limits::device),
    ("bounds", limits::bounds),
];

/// ChaCha20Rng that logs every draw, so sotto's draws can be compared with
/// the model's.
struct RecordingRng {
    inner: ChaCha20Rng,
    log: Vec<Vec<u8>>,
}

impl RecordingRng {
    fn new(seed: [u8; 32]) -> Self {
        Self {
            inner: ChaCha20Rng::from_seed(seed),
            log: Vec::new(),
        }
    }
}

impl TryRng for RecordingRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let v = self.inner.next_u32();
        self.log.push(v.to_le_bytes().to_vec());
        Ok(v)
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let v = self.inner.next_u64();
        self.log.push(v.to_le_bytes().to_vec());
        Ok(v)
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.inner.fill_bytes(dst);
        self.log.push(dst.to_vec());
        Ok(())
    }
}

impl TryCryptoRng for RecordingRng {}

/// A named seed: SHA-256 of the label.
fn seed(label: &str) -> [u8; 32] {
    Sha256::digest(label.as_bytes()).into()
}

/// The model and sotto drew the same bytes since the last check.
fn same_draws(what: &str, sotto: &mut RecordingRng, model: &[Vec<u8>]) {
    let got = std::mem::take(&mut sotto.log);
    assert!(
        got == model,
        "DISAGREEMENT in {what}: sotto drew {:?}, the model drew {:?}",
        got.iter().map(|d| hex(d)).collect::<Vec<_>>(),
        model.iter().map(|d| hex(d)).collect::<Vec<_>>()
    );
}

fn same(what: &str, sotto: &[u8], model: &[u8]) {
    assert!(
        sotto == model,
        "DISAGREEMENT in {what}:\n  sotto {}\n  model {}",
        hex(sotto),
        hex(model)
    );
}

/// Both implementations of one party.
struct Party {
    model: Dev,
    sotto: Device,
}

fn new_party(what: &str, m: &mut Draws, r: &mut RecordingRng) -> Party {
    let model = Dev::generate(m);
    let sotto = Device::generate(r);
    same_draws(what, r, &model.draws);
    same(
        &format!("{what} identity"),
        &sotto.identity_key().to_bytes(),
        &model.ik_encoded(),
    );
    same(
        &format!("{what} fingerprint"),
        sotto.identity_key().fingerprint().as_bytes(),
        &model.fingerprint(),
    );
    same(
        &format!("{what} signed prekey"),
        &sotto.signed_prekey().to_bytes(),
        &model.spk().encoded(),
    );
    same(
        &format!("{what} device state"),
        &sotto.to_bytes(),
        &model.encode(),
    );
    Party { model, sotto }
}

/// Makes `count` one-time prekeys on both sides; returns (sotto public
/// halves, their JSON).
fn one_time_prekeys(
    what: &str,
    p: &mut Party,
    m: &mut Draws,
    r: &mut RecordingRng,
    count: u32,
) -> (Vec<sotto::OneTimePreKey>, Value) {
    let made = p.model.gen_opks(m, count);
    let sotto = p
        .sotto
        .generate_one_time_prekeys(r, count as usize)
        .unwrap();
    same_draws(what, r, &m.take());
    let mut list = Vec::new();
    for ((id, private, public), s) in made.iter().zip(&sotto) {
        let mut enc = vec![1, 0x12];
        enc.extend(id.to_be_bytes());
        enc.extend(public);
        same(&format!("{what} one-time prekey {id}"), &s.to_bytes(), &enc);
        list.push(json!({
            "id": id, "private": hex(private), "public": hex(public), "encoded": hex(&enc),
        }));
    }
    (sotto, Value::Array(list))
}

/// Alice fetches Bob's bundle and starts a session on both sides.
fn start(
    alice: &Party,
    bob: &Party,
    opk: Option<sotto::OneTimePreKey>,
    m: &mut Draws,
    r: &mut RecordingRng,
) -> (Sess, Session, model::X3dh, Vec<u8>, Vec<Vec<u8>>) {
    let bundle = PreKeyBundle::new(*bob.sotto.identity_key(), bob.sotto.signed_prekey(), opk);
    let opk_m = opk.map(|o| (o.id(), o.key_bytes()));
    let bundle_bytes = bob.model.bundle(opk_m);
    same("bundle", &bundle.to_bytes(), &bundle_bytes);
    let verified = bundle.verify().unwrap();
    let base = m.draw::<32>();
    let draws = m.take();
    let sotto = Session::initiate(&alice.sotto, r, &verified).unwrap();
    same_draws("initiate", r, &draws);
    let spk = bob.model.spk();
    let (model, x) = model::initiate(
        &alice.model,
        &bob.model.ik(),
        (spk.id, spk.public),
        opk_m,
        &base,
    );
    same("base key", &sotto.base_key_bytes(), &model.base);
    same("initiator state", &sotto.to_bytes(), &model.encode().0);
    (model, sotto, x, bundle_bytes, draws)
}

/// One encrypt on both sides; returns the message and the send trace.
fn send(
    what: &str,
    model: &mut Sess,
    sotto: &mut Session,
    m: &mut Draws,
    r: &mut RecordingRng,
    pt: &[u8],
) -> (Vec<u8>, Value) {
    let (msg, mut ev) = model.encrypt(m, pt);
    let draws = m.take();
    let wire = sotto.encrypt(r, pt).unwrap();
    same_draws(what, r, &draws);
    same(what, wire.as_bytes(), &msg);
    same(
        &format!("{what}: sender state"),
        &sotto.to_bytes(),
        &model.encode().0,
    );
    ev["rng_draws"] = hx(&draws);
    ev["plaintext"] = hex(pt).into();
    (msg, ev)
}

fn kdf() -> Value {
    let mut m = Draws::new(seed("sotto vectors kdf"));
    let mut vectors = Vec::new();
    for i in 0..3 {
        let rk = m.draw::<32>();
        let dh = m.draw::<32>();
        let (new_rk, ck) = model::kdf_rk(&rk, &dh);
        vectors.push(json!({
            "name": format!("root_step_{i}"), "kind": "root_step", "info": model::L_ROOT,
            "root_key": hex(&rk), "dh_output": hex(&dh),
            "new_root_key": hex(&new_rk), "chain_key": hex(&ck),
        }));
    }
    let mut ck = m.draw::<32>();
    for i in 0..3 {
        let (mk, next) = model::kdf_ck(&ck);
        vectors.push(json!({
            "name": format!("chain_step_{i}"), "kind": "chain_step",
            "info": model::L_CHAIN_MESSAGE, "next_info": model::L_CHAIN_NEXT,
            "chain_key": hex(&ck), "message_key": hex(&mk), "next_chain_key": hex(&next),
        }));
        ck = next;
    }
    for i in 0..3 {
        let mk = m.draw::<32>();
        let salt = m.draw::<16>();
        let (key, nonce) = model::key_nonce(&salt, &mk, model::L_MESSAGE_KEYS);
        vectors.push(json!({
            "name": format!("message_keys_{i}"), "kind": "message_keys", "info": model::L_MESSAGE_KEYS,
            "ikm": hex(&mk), "salt": hex(&salt), "aes_key": hex(&key), "nonce": hex(&nonce),
        }));
    }
    for i in 0..2 {
        let storage = m.draw::<32>();
        let salt = m.draw::<32>();
        let (key, nonce) = model::key_nonce(&salt, &storage, model::L_SEALED);
        vectors.push(json!({
            "name": format!("sealed_state_keys_{i}"), "kind": "sealed_state_keys", "info": model::L_SEALED,
            "ikm": hex(&storage), "salt": hex(&salt), "aes_key": hex(&key), "nonce": hex(&nonce),
        }));
    }
    file(
        "kdf",
        "Key derivation steps exactly as sotto uses them, with their labels.",
        "sotto vectors kdf",
        vectors,
    )
}

fn file(area: &str, description: &str, seed_label: &str, vectors: Vec<Value>) -> Value {
    json!({
        "area": area, "format": 1, "description": description,
        "generator": "cargo run --example gen_vectors",
        "seed_label": seed_label, "seed": hex(&seed(seed_label)),
        "vectors": vectors,
    })
}

fn x3dh_case(name: &str, with_opk: bool) -> Value {
    let label = format!("sotto vectors x3dh {name}");
    let (mut m, mut r) = (Draws::new(seed(&label)), RecordingRng::new(seed(&label)));
    let alice = new_party("alice", &mut m, &mut r);
    let mut bob = new_party("bob", &mut m, &mut r);
    let (opks, opks_json) = if with_opk {
        one_time_prekeys("bob one-time prekeys", &mut bob, &mut m, &mut r, 1)
    } else {
        (Vec::new(), json!([]))
    };
    let (mut am, mut asotto, x, bundle, base_draws) =
        start(&alice, &bob, opks.first().copied(), &mut m, &mut r);
    let pt = format!("first message, {name}").into_bytes();
    let (msg, ev) = send("first message", &mut am, &mut asotto, &mut m, &mut r, &pt);

    let mut bob_model = bob.model;
    let (bm, pt_m, x_b, _) = model::accept(&mut bob_model, &msg);
    same("responder SK", &x_b.sk, &x.sk);
    same("responder plaintext (model)", &pt_m, &pt);
    let Message::PreKey(pm) = Message::from_bytes(&msg).unwrap() else {
        panic!("not a prekey message")
    };
    let (bs, pt_s) = Session::accept(&mut bob.sotto, &pm).unwrap();
    same("responder plaintext", &pt_s, &pt);
    same("responder state", &bs.to_bytes(), &bm.encode().0);
    same(
        "responder device after accept",
        &bob.sotto.to_bytes(),
        &bob_model.encode(),
    );

    let mut bob_json = bob_model.json();
    bob_json["one_time_prekeys"] = opks_json;
    let r_ev = &ev["dh_ratchet"];
    let mut v = json!({
        "name": name,
        "alice": alice.model.json(),
        "bob": bob_json,
        "bundle": hex(&bundle),
        "base_key": { "private": hex(&base_draws[0]), "public": hex(&am.base) },
        "associated_data": hex(&am.ad),
        "first_message": {
            "plaintext": hex(&pt),
            "ratchet_private": r_ev["ratchet_private"], "salt": ev["salt"],
            "dh_output": r_ev["dh_output"], "root_info": model::L_ROOT,
            "root_key": r_ev["root_key_out"], "chain_key": r_ev["chain_key_out"],
            "message_key": ev["message_key"], "aes_key": ev["aes_key"], "nonce": ev["nonce"],
            "message": hex(&msg),
        },
    });
    for (k, val) in x.json().as_object().unwrap() {
        v[k] = val.clone();
    }
    v
}

fn x3dh() -> Value {
    file(
        "x3dh",
        "X3DH with and without a one-time prekey: every key, DH1..DH4, the KDF input, SK, AD and the first message.",
        "sotto vectors x3dh <name>",
        vec![
            x3dh_case("with_one_time_prekey", true),
            x3dh_case("without_one_time_prekey", false),
        ],
    )
}

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
struct Snapshot {
    name: &'static str,
    kind: &'static str,
    state: Vec<u8>,
    decoded: Value,
}

struct Conversation {
    json: Value,
    snapshots: Vec<Snapshot>,
}

fn run_conversation() -> Conversation {
    let label = "sotto vectors conversation";
    let (mut m, mut r) = (Draws::new(seed(label)), RecordingRng::new(seed(label)));
    let alice = new_party("alice", &mut m, &mut r);
    let mut bob = new_party("bob", &mut m, &mut r);
    let (opks, opks_json) = one_time_prekeys("bob one-time prekeys", &mut bob, &mut m, &mut r, 2);
    let (am, asotto, _, _, init_draws) = start(&alice, &bob, opks.first().copied(), &mut m, &mut r);
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
    let mut sent = std::collections::BTreeMap::new();
    let mut events = Vec::new();
    for (i, step) in SCRIPT.iter().enumerate() {
        let what = format!("conversation step {i}");
        match *step {
            Step::Send(p, id) => {
                let pt = format!("{id}: message {i} from {}", NAMES[p]).into_bytes();
                let (ms, ss) = sessions[p].as_mut().unwrap();
                let (msg, mut ev) = send(&what, ms, ss, &mut m, &mut r, &pt);
                ev["type"] = "send".into();
                ev["from"] = NAMES[p].into();
                ev["message_id"] = id.into();
                ev["plaintext_text"] = String::from_utf8(pt).unwrap().into();
                sent.insert(id, msg);
                events.push(ev);
            }
            Step::Recv(p, id) => {
                let msg = &sent[id];
                let message = Message::from_bytes(msg).unwrap();
                let (pt, mut trace, via) = match (&mut sessions[p], &message) {
                    (None, Message::PreKey(pm)) => {
                        let (ms, pt, _, trace) = model::accept(&mut devices[p].model, msg);
                        let (ss, pts) = Session::accept(&mut devices[p].sotto, pm).unwrap();
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
                let (ms, ss) = sessions[p].as_ref().unwrap();
                same(
                    &format!("{what}: receiver state"),
                    &ss.to_bytes(),
                    &ms.encode().0,
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
            let (ms, ss) = sessions[0].as_ref().unwrap();
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
        let (ms, ss) = sessions[p].as_ref().unwrap();
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
            "root": model::L_ROOT, "chain_message": model::L_CHAIN_MESSAGE,
            "chain_next": model::L_CHAIN_NEXT, "message_keys": model::L_MESSAGE_KEYS,
        },
        "alice": alice_json,
        "bob": bob_json,
        "initiate_rng_draws": hx(&init_draws),
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

fn conversation() -> Value {
    run_conversation().json
}

/// Seals a plain state as the description says, independently of sotto.
fn model_seal(storage: &[u8; 32], salt: &[u8; 32], plain: &[u8]) -> (Vec<u8>, [u8; 32], [u8; 12]) {
    let mut out = vec![1, 0x30, plain[1]];
    out.extend(salt);
    let (key, nonce) = model::key_nonce(salt, storage, model::L_SEALED);
    let ct = model::seal(&key, &nonce, &out, plain);
    out.extend(ct);
    (out, key, nonce)
}

fn persistence() -> Value {
    let label = "sotto vectors persistence";
    let (mut m, mut r) = (Draws::new(seed(label)), RecordingRng::new(seed(label)));
    let storage = m.draw::<32>();
    let mut skipped = [0u8; 32];
    r.fill_bytes(&mut skipped);
    same_draws("storage key", &mut r, &m.take());
    let key = StorageKey::from_bytes(storage);
    let mut vectors = Vec::new();
    for snap in run_conversation().snapshots {
        let salt = m.draw::<32>();
        let draws = m.take();
        let (sealed_m, aes_key, nonce) = model_seal(&storage, &salt, &snap.state);
        let sealed_s = match snap.kind {
            "session" => Session::from_bytes(&snap.state)
                .unwrap()
                .seal(&key, &mut r)
                .unwrap(),
            _ => Device::from_bytes(&snap.state)
                .unwrap()
                .seal(&key, &mut r)
                .unwrap(),
        };
        same_draws(&format!("seal {}", snap.name), &mut r, &draws);
        same(&format!("sealed {}", snap.name), &sealed_s, &sealed_m);
        vectors.push(json!({
            "name": snap.name, "kind": snap.kind, "state": hex(&snap.state), "decoded": snap.decoded,
            "storage_key": hex(&storage), "seal_salt": hex(&salt), "seal_info": model::L_SEALED,
            "seal_aes_key": hex(&aes_key), "seal_nonce": hex(&nonce), "sealed": hex(&sealed_m),
        }));
    }
    file(
        "persistence",
        "Saved states (Session::to_bytes, Device::to_bytes) from the conversation, what they decode to, and their sealed forms.",
        label,
        vectors,
    )
}

fn with(bytes: &[u8], f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut b = bytes.to_vec();
    f(&mut b);
    b
}

fn ratchet_message(key: &[u8; 32], pn: u32, n: u32) -> Vec<u8> {
    let mut b = vec![1, 0x01];
    b.extend(key);
    b.extend(pn.to_be_bytes());
    b.extend(n.to_be_bytes());
    b.extend([0u8; 16 + 16]);
    b
}

/// An order-8 point (canonical encoding); its X25519 output with any
/// clamped scalar is all zeros.
const LOW_ORDER: [u8; 32] = [
    0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
    0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00,
];

/// The Ed25519 group order L, little-endian.
const ED25519_L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

fn negative() -> Value {
    let label = "sotto vectors negative";
    let (mut m, mut r) = (Draws::new(seed(label)), RecordingRng::new(seed(label)));
    let alice = new_party("alice", &mut m, &mut r);
    let mut bob = new_party("bob", &mut m, &mut r);
    let (opks, _) = one_time_prekeys("bob one-time prekeys", &mut bob, &mut m, &mut r, 2);
    let (mut am, mut asess, _, bundle, _) =
        start(&alice, &bob, opks.first().copied(), &mut m, &mut r);
    let (m1, _) = send("m1", &mut am, &mut asess, &mut m, &mut r, b"m1");
    let alice_pending = asess.to_bytes().to_vec();
    let (mut bm, _, _, _) = model::accept(&mut bob.model, &m1);
    let Message::PreKey(pm) = Message::from_bytes(&m1).unwrap() else {
        panic!()
    };
    let (mut bsess, _) = Session::accept(&mut bob.sotto, &pm).unwrap();
    let (r1, _) = send("r1", &mut bm, &mut bsess, &mut m, &mut r, b"r1");
    am.decrypt(&r1);
    asess.decrypt(&Message::from_bytes(&r1).unwrap()).unwrap();
    let alice_state = asess.to_bytes().to_vec();
    let bob_state = bsess.to_bytes().to_vec();
    let bob_device = bob.sotto.to_bytes().to_vec();
    let (m2, _) = send("m2", &mut am, &mut asess, &mut m, &mut r, b"m2");
    let storage = m.draw::<32>();
    let other_storage = m.draw::<32>();
    let seal_salt = m.draw::<32>();
    let fresh = model::x_pub(&m.draw::<32>());
    let (sealed, _, _) = model_seal(&storage, &seal_salt, &bob_state);
    let a_ik = alice.model.ik_encoded();
    let a1_key: [u8; 32] = m1[107 + 2..107 + 34].try_into().unwrap();
    let m2_key: [u8; 32] = m2[2..34].try_into().unwrap();
    let (_, chain_count_at) = bm.encode();
    same("negative fixture: bob session", &bob_state, &bm.encode().0);
    let opk_count_at = 2 + 64 + 8 + 1 + 100;

    let mut sig_plus_l = bundle.clone();
    let sig_s = 2 + 64 + 4 + 32 + 32;
    let mut carry = 0u16;
    for (i, l) in ED25519_L.iter().enumerate() {
        let sum = u16::from(sig_plus_l[sig_s + i]) + u16::from(*l) + carry;
        sig_plus_l[sig_s + i] = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0);

    let e = |name: &str, fields: Value| json!({ "name": name, "fields": fields });
    let none = json!({});
    let mut v = Vec::new();
    let mut add = |name: &str, op: &str, input: &[u8], error: Value, extra: Value| {
        let mut x = json!({ "name": name, "operation": op, "input": hex(input), "error": error });
        for (k, val) in extra.as_object().unwrap() {
            x[k] = val.clone();
        }
        v.push(x);
    };
    let msg = "Message::from_bytes";
    add(
        "message_empty",
        msg,
        &[],
        e("Truncated", none.clone()),
        none.clone(),
    );
    add(
        "message_version_only",
        msg,
        &[1],
        e("Truncated", none.clone()),
        none.clone(),
    );
    add(
        "message_unknown_version",
        msg,
        &with(&m2, |b| b[0] = 2),
        e("UnsupportedVersion", json!({ "found": 2 })),
        none.clone(),
    );
    add(
        "message_wrong_type",
        msg,
        &with(&m2, |b| b[1] = 0x20),
        e("WrongType", json!({ "expected": 1, "found": 0x20 })),
        none.clone(),
    );
    add(
        "message_truncated_tag",
        msg,
        &m2[..58 + 15],
        e("Truncated", none.clone()),
        none.clone(),
    );
    add(
        "message_non_canonical_ratchet_key",
        msg,
        &with(&m2, |b| {
            b[2..34].fill(0xff);
            b[33] = 0x7f;
        }),
        e("InvalidPublicKey", none.clone()),
        none.clone(),
    );
    add(
        "prekey_message_bad_flag",
        msg,
        &with(&m1, |b| b[102] = 2),
        e("InvalidEncoding", none.clone()),
        none.clone(),
    );
    add(
        "prekey_message_small_order_identity",
        msg,
        &with(&m1, |b| {
            b[2..34].fill(0);
            b[2] = 1;
        }),
        e("InvalidPublicKey", none.clone()),
        none.clone(),
    );
    add(
        "message_over_max_len",
        msg,
        &[1, 1],
        e("TooLarge", none.clone()),
        json!({ "pad_to": MAX_MESSAGE_LEN + 1 }),
    );
    add(
        "ratchet_ciphertext_over_max_plaintext",
        msg,
        &m2[..58],
        e("TooLarge", none.clone()),
        json!({ "pad_to": 58 + MAX_PLAINTEXT_LEN + 16 + 1 }),
    );
    add(
        "identity_key_trailing_bytes",
        "IdentityKey::from_bytes",
        &with(&a_ik, |b| b.push(0)),
        e("TrailingBytes", none.clone()),
        none.clone(),
    );
    add(
        "signed_prekey_wrong_type",
        "SignedPreKey::from_bytes",
        &a_ik,
        e("WrongType", json!({ "expected": 0x11, "found": 0x10 })),
        none.clone(),
    );
    add(
        "one_time_prekey_truncated",
        "OneTimePreKey::from_bytes",
        &opks[0].to_bytes()[..37],
        e("Truncated", none.clone()),
        none.clone(),
    );
    add(
        "bundle_truncated",
        "PreKeyBundle::from_bytes",
        &bundle[..bundle.len() - 1],
        e("Truncated", none.clone()),
        none.clone(),
    );
    add(
        "bundle_trailing_bytes",
        "PreKeyBundle::from_bytes",
        &with(&bundle, |b| b.push(0)),
        e("TrailingBytes", none.clone()),
        none.clone(),
    );
    let bv = "PreKeyBundle::verify";
    add(
        "bundle_signature_bit_flipped",
        bv,
        &with(&bundle, |b| b[sig_s - 1] ^= 1),
        e("InvalidSignature", none.clone()),
        none.clone(),
    );
    add(
        "bundle_signature_s_plus_l",
        bv,
        &sig_plus_l,
        e("InvalidSignature", none.clone()),
        none.clone(),
    );
    add(
        "bundle_signed_prekey_id_changed",
        bv,
        &with(&bundle, |b| b[2 + 64 + 3] ^= 1),
        e("InvalidSignature", none.clone()),
        none.clone(),
    );
    add(
        "bundle_signed_prekey_key_changed",
        bv,
        &with(&bundle, |b| {
            b[2 + 64 + 4..2 + 64 + 36].copy_from_slice(&fresh)
        }),
        e("InvalidSignature", none.clone()),
        none.clone(),
    );
    add(
        "bundle_identity_dh_key_changed",
        bv,
        &with(&bundle, |b| b[34..66].copy_from_slice(&fresh)),
        e("InvalidSignature", none.clone()),
        none.clone(),
    );
    add(
        "bundle_identity_signing_key_changed",
        bv,
        &with(&bundle, |b| b[2..34].copy_from_slice(&a_ik[2..34])),
        e("InvalidSignature", none.clone()),
        none.clone(),
    );
    add(
        "bundle_for_other_identity",
        "PreKeyBundle::verify_for",
        &bundle,
        e("IdentityMismatch", none.clone()),
        json!({ "expected": hex(&a_ik) }),
    );
    let sf = "Session::from_bytes";
    add(
        "session_unknown_version",
        sf,
        &with(&bob_state, |b| b[0] = 2),
        e("UnsupportedVersion", json!({ "found": 2 })),
        none.clone(),
    );
    add(
        "session_trailing_bytes",
        sf,
        &with(&bob_state, |b| b.push(0)),
        e("TrailingBytes", none.clone()),
        none.clone(),
    );
    add(
        "session_truncated",
        sf,
        &bob_state[..bob_state.len() - 1],
        e("Truncated", none.clone()),
        none.clone(),
    );
    add(
        "session_bad_role",
        sf,
        &with(&bob_state, |b| b[2] = 2),
        e("InvalidEncoding", none.clone()),
        none.clone(),
    );
    add(
        "session_too_many_receiving_chains",
        sf,
        &with(&bob_state, |b| b[chain_count_at] = 6),
        e("InvalidEncoding", none.clone()),
        none.clone(),
    );
    add(
        "session_over_max_state_len",
        sf,
        &bob_state[..2],
        e("TooLarge", none.clone()),
        json!({ "pad_to": sotto::MAX_STATE_LEN + 1 }),
    );
    add(
        "device_given_session_state",
        "Device::from_bytes",
        &bob_state,
        e("WrongType", json!({ "expected": 0x21, "found": 0x20 })),
        none.clone(),
    );
    add(
        "device_too_many_one_time_prekeys",
        "Device::from_bytes",
        &with(&bob_device, |b| {
            b[opk_count_at..opk_count_at + 2].copy_from_slice(&1001u16.to_be_bytes())
        }),
        e("InvalidEncoding", none.clone()),
        none.clone(),
    );
    add(
        "device_no_signed_prekey",
        "Device::from_bytes",
        &with(&bob_device, |b| b[74] = 0),
        e("InvalidEncoding", none.clone()),
        none.clone(),
    );
    let sk = json!({ "storage_key": hex(&storage) });
    add(
        "sealed_tampered",
        "Session::unseal",
        &with(&sealed, |b| *b.last_mut().unwrap() ^= 1),
        e("AuthenticationFailed", none.clone()),
        sk.clone(),
    );
    add(
        "sealed_salt_tampered",
        "Session::unseal",
        &with(&sealed, |b| b[3] ^= 1),
        e("AuthenticationFailed", none.clone()),
        sk.clone(),
    );
    add(
        "sealed_wrong_storage_key",
        "Session::unseal",
        &sealed,
        e("AuthenticationFailed", none.clone()),
        json!({ "storage_key": hex(&other_storage) }),
    );
    add(
        "sealed_session_opened_as_device",
        "Device::unseal",
        &sealed,
        e("WrongType", json!({ "expected": 0x21, "found": 0x20 })),
        sk.clone(),
    );
    add(
        "sealed_truncated",
        "Session::unseal",
        &sealed[..35 + 15],
        e("Truncated", none.clone()),
        sk.clone(),
    );
    add(
        "sealed_unknown_version",
        "Session::unseal",
        &with(&sealed, |b| b[0] = 0),
        e("UnsupportedVersion", json!({ "found": 0 })),
        sk.clone(),
    );
    let dec = "Session::decrypt";
    let bob_s = json!({ "session": "bob_session" });
    let alice_s = json!({ "session": "alice_session" });
    add(
        "replayed_prekey_message",
        dec,
        &m1,
        e("DuplicateMessage", none.clone()),
        bob_s.clone(),
    );
    add(
        "replayed_ratchet_message",
        dec,
        &r1,
        e("DuplicateMessage", none.clone()),
        alice_s.clone(),
    );
    add(
        "tampered_ciphertext",
        dec,
        &with(&m2, |b| *b.last_mut().unwrap() ^= 1),
        e("AuthenticationFailed", none.clone()),
        bob_s.clone(),
    );
    add(
        "tampered_salt",
        dec,
        &with(&m2, |b| b[50] ^= 1),
        e("AuthenticationFailed", none.clone()),
        bob_s.clone(),
    );
    add(
        "tampered_previous_chain_length",
        dec,
        &with(&m2, |b| b[37] ^= 1),
        e("AuthenticationFailed", none.clone()),
        bob_s.clone(),
    );
    add(
        "skip_over_max_in_current_chain",
        dec,
        &ratchet_message(&a1_key, 0, 1002),
        e("TooFarAhead", json!({ "skipped": 1001 })),
        bob_s.clone(),
    );
    add(
        "skip_over_max_in_new_chain",
        dec,
        &ratchet_message(&m2_key, 0, 1001),
        e("TooFarAhead", json!({ "skipped": 1001 })),
        bob_s.clone(),
    );
    add(
        "skip_over_max_in_closing_chain",
        dec,
        &ratchet_message(&m2_key, 1002, 0),
        e("TooFarAhead", json!({ "skipped": 1001 })),
        bob_s.clone(),
    );
    add(
        "unexpected_ratchet_key",
        dec,
        &ratchet_message(&fresh, 0, 0),
        e("UnexpectedRatchetKey", none.clone()),
        alice_s.clone(),
    );
    add(
        "low_order_ratchet_key",
        dec,
        &ratchet_message(&LOW_ORDER, 0, 0),
        e("NonContributoryKey", none.clone()),
        bob_s.clone(),
    );
    add(
        "prekey_message_other_identity",
        dec,
        &m1,
        e("IdentityMismatch", none.clone()),
        alice_s.clone(),
    );
    add(
        "prekey_message_other_base_key",
        dec,
        &with(&m1, |b| b[66..98].copy_from_slice(&fresh)),
        e("SessionMismatch", none.clone()),
        bob_s.clone(),
    );
    add(
        "encrypt_plaintext_over_max",
        "Session::encrypt",
        &[],
        e("PlaintextTooLarge", none.clone()),
        json!({ "session": "alice_session", "pad_to": MAX_PLAINTEXT_LEN + 1 }),
    );
    let acc = "Session::accept";
    let dev = json!({ "device": "bob_device" });
    let opk2 = |b: &mut Vec<u8>| b[103..107].copy_from_slice(&2u32.to_be_bytes());
    add(
        "replayed_prekey_message_to_device",
        acc,
        &m1,
        e("DuplicatePreKeyMessage", none.clone()),
        dev.clone(),
    );
    add(
        "used_one_time_prekey",
        acc,
        &with(&m1, |b| b[66..98].copy_from_slice(&fresh)),
        e("UnknownOneTimePreKey", json!({ "id": 1 })),
        dev.clone(),
    );
    add(
        "unknown_one_time_prekey",
        acc,
        &with(&m1, |b| {
            b[66..98].copy_from_slice(&fresh);
            b[103..107].copy_from_slice(&99u32.to_be_bytes());
        }),
        e("UnknownOneTimePreKey", json!({ "id": 99 })),
        dev.clone(),
    );
    add(
        "unknown_signed_prekey",
        acc,
        &with(&m1, |b| {
            b[66..98].copy_from_slice(&fresh);
            b[98..102].copy_from_slice(&7u32.to_be_bytes());
        }),
        e("UnknownSignedPreKey", json!({ "id": 7 })),
        dev.clone(),
    );
    add(
        "low_order_base_key",
        acc,
        &with(&m1, |b| {
            b[66..98].copy_from_slice(&LOW_ORDER);
            opk2(b);
        }),
        e("NonContributoryKey", none.clone()),
        dev.clone(),
    );
    add(
        "prekey_message_wrong_base_key",
        acc,
        &with(&m1, |b| {
            b[66..98].copy_from_slice(&fresh);
            opk2(b);
        }),
        e("AuthenticationFailed", none.clone()),
        dev.clone(),
    );
    add(
        "prekey_message_over_max_skip",
        acc,
        &with(&m1, |b| {
            b[66..98].copy_from_slice(&fresh);
            opk2(b);
            b[107 + 38..107 + 42].copy_from_slice(&1001u32.to_be_bytes());
        }),
        e("TooFarAhead", json!({ "skipped": 1001 })),
        dev.clone(),
    );

    // Vectors added later. Everything they need is drawn after the draws
    // above, so the vectors above stay byte for byte as they were.
    let extra = NegativeExtra {
        alice: &alice,
        bob: &mut bob,
        am: &mut am,
        asess: &mut asess,
        bm: &mut bm,
        bsess: &mut bsess,
        m: &mut m,
        r: &mut r,
        alice_pending: &alice_pending,
        bob_state: &bob_state,
        bob_device: &bob_device,
        bundle: &bundle,
        sealed: &sealed,
        storage: &storage,
        fresh: &fresh,
        a1_key: &a1_key,
        m1: &m1,
        chain_count_at,
    };
    let (more, extra_fixtures) = negative_extra(extra);
    v.extend(more);

    let mut f = file(
        "negative",
        "Inputs that must be rejected, each with the exact error (Error variant name and its public fields).",
        label,
        v,
    );
    f["fixtures"] = json!({
        "alice_session": hex(&alice_state),
        "bob_session": hex(&bob_state),
        "bob_device": hex(&bob_device),
    });
    for (name, state) in extra_fixtures {
        f["fixtures"][name] = hex(&state).into();
    }
    f
}

fn main() {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "test-vectors".into()),
    );
    std::fs::create_dir_all(&out).unwrap();
    for (area, generate) in GENERATORS {
        let value = generate();
        let failures: Vec<_> = vectors::verify_file(area, &value)
            .into_iter()
            .filter_map(|o| o.result.err().map(|e| format!("{}: {e}", o.name)))
            .collect();
        assert!(
            failures.is_empty(),
            "generated {area}.json fails verification:\n{}",
            failures.join("\n")
        );
        let mut text = serde_json::to_string_pretty(&value).unwrap();
        text.push('\n');
        std::fs::write(out.join(format!("{area}.json")), text).unwrap();
        println!("wrote {}", out.join(format!("{area}.json")).display());
    }
    // The written files, read back, verify too.
    let outcomes = vectors::verify_dir(&out);
    assert!(
        outcomes.iter().all(|o| o.result.is_ok()),
        "written vectors fail verification"
    );
    println!("{} vectors verified", outcomes.len());
}
