//! sotto and the reference model driven in lockstep: every draw, message
//! and state must agree byte for byte, else the generator aborts with a
//! `DISAGREEMENT` message.

use serde_json::Value;
use sha2::{Digest, Sha256};
use sotto::{Device, OneTimePreKey, PreKeyBundle, Session};
use testkit::hex::{hex, hex_list};
use testkit::model::keys::one_time_prekey_bytes;
use testkit::model::{Dev, Refusal, Sess, X3dh, initiate};
use testkit::rng::{Draws, RecordingRng, named_seed};
use testkit::vectors::error_json;

/// The model's and sotto's randomness, from the same named seed.
pub(crate) fn streams(label: &str) -> (Draws, RecordingRng) {
    (
        Draws::new(named_seed(label)),
        RecordingRng::new(named_seed(label)),
    )
}

/// The model and sotto drew the same bytes since the last check.
pub(crate) fn same_draws(what: &str, sotto: &mut RecordingRng, model: &[Vec<u8>]) {
    let got = sotto.take();
    assert!(
        got == model,
        "DISAGREEMENT in {what}: sotto drew {:?}, the model drew {:?}",
        got.iter().map(|d| hex(d)).collect::<Vec<_>>(),
        model.iter().map(|d| hex(d)).collect::<Vec<_>>()
    );
}

/// The same bytes were drawn, however they were split into draws (the
/// model draws 256 ratchet bytes at once where sotto fills 32 at a time;
/// the stream is what is specified).
pub(crate) fn same_stream(what: &str, sotto: &mut RecordingRng, model: &[Vec<u8>]) {
    let got: Vec<u8> = sotto.take().concat();
    same(
        &format!("{what}: random bytes drawn"),
        &got,
        &model.concat(),
    );
}

/// sotto's bytes equal the model's.
pub(crate) fn same(what: &str, sotto: &[u8], model: &[u8]) {
    assert!(
        sotto == model,
        "DISAGREEMENT in {what}:\n  sotto {}\n  model {}",
        hex(sotto),
        hex(model)
    );
}

/// Both results agree; returns the JSON error, or `null`.
pub(crate) fn same_result<T, U>(
    what: &str,
    sotto: &Result<T, sotto::Error>,
    model: &Result<U, Refusal>,
) -> Value {
    let s = sotto.as_ref().err().map(error_json);
    let m = model.as_ref().err().cloned();
    assert!(s == m, "DISAGREEMENT in {what}: sotto {s:?}, model {m:?}");
    m.unwrap_or(Value::Null)
}

/// A state written in full, or as its SHA-256 (`<key>_sha256`) when it is
/// longer than `inline_max`.
pub(crate) fn state_json(step: &mut Value, key: &str, state: &[u8], inline_max: usize) {
    if state.len() > inline_max {
        step[format!("{key}_sha256")] = hex(&Sha256::digest(state)).into();
    } else {
        step[key] = hex(state).into();
    }
}

/// Both implementations of one party.
pub(crate) struct Party {
    pub(crate) model: Dev,
    pub(crate) sotto: Device,
}

/// A new device on both sides.
pub(crate) fn new_party(what: &str, m: &mut Draws, r: &mut RecordingRng) -> Party {
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

/// A device restored on both sides from a state the model built (for
/// states that would take too long to reach by calls).
pub(crate) fn restored_party(state: &[u8]) -> Party {
    Party {
        model: Dev::decode(state).expect("model state"),
        sotto: Device::from_bytes(state).expect("sotto restores the model's state"),
    }
}

/// Makes `count` one-time prekeys on both sides; returns sotto's public
/// halves and their JSON.
pub(crate) fn one_time_prekeys(
    what: &str,
    p: &mut Party,
    m: &mut Draws,
    r: &mut RecordingRng,
    count: u32,
) -> (Vec<OneTimePreKey>, Value) {
    let made = p.model.gen_opks(m, count);
    let sotto = p
        .sotto
        .generate_one_time_prekeys(r, count as usize)
        .expect("one-time prekeys");
    same_draws(what, r, &m.take());
    let mut list = Vec::new();
    for ((id, private, public), s) in made.iter().zip(&sotto) {
        let enc = one_time_prekey_bytes(*id, public);
        same(&format!("{what} one-time prekey {id}"), &s.to_bytes(), &enc);
        list.push(serde_json::json!({
            "id": id, "private": hex(private), "public": hex(public), "encoded": hex(&enc),
        }));
    }
    (sotto, Value::Array(list))
}

/// A session started on both sides: Alice fetches Bob's bundle.
pub(crate) struct Started {
    pub(crate) model: Sess,
    pub(crate) sotto: Session,
    pub(crate) x3dh: X3dh,
    pub(crate) bundle: Vec<u8>,
    pub(crate) draws: Vec<Vec<u8>>,
}

/// Alice fetches Bob's bundle and starts a session on both sides.
pub(crate) fn start(
    alice: &Party,
    bob: &Party,
    opk: Option<OneTimePreKey>,
    m: &mut Draws,
    r: &mut RecordingRng,
) -> Started {
    let bundle = PreKeyBundle::new(*bob.sotto.identity_key(), bob.sotto.signed_prekey(), opk);
    let opk_m = opk.map(|o| (o.id(), o.key_bytes()));
    let bundle_bytes = bob.model.bundle(opk_m);
    same("bundle", &bundle.to_bytes(), &bundle_bytes);
    let verified = bundle.verify().expect("own bundle");
    let base = m.draw::<32>();
    let draws = m.take();
    let sotto = Session::initiate(&alice.sotto, r, &verified).expect("initiate");
    same_draws("initiate", r, &draws);
    let spk = bob.model.spk();
    let (model, x3dh) = initiate(
        &alice.model,
        &bob.model.ik(),
        (spk.id, spk.public),
        opk_m,
        &base,
    );
    same("base key", &sotto.base_key_bytes(), &model.base);
    same("initiator state", &sotto.to_bytes(), &model.encode());
    Started {
        model,
        sotto,
        x3dh,
        bundle: bundle_bytes,
        draws,
    }
}

/// One encrypt on both sides; returns the message and the send trace.
pub(crate) fn send(
    what: &str,
    model: &mut Sess,
    sotto: &mut Session,
    m: &mut Draws,
    r: &mut RecordingRng,
    pt: &[u8],
) -> (Vec<u8>, Value) {
    let (msg, mut ev) = model.encrypt(m, pt);
    let draws = m.take();
    let wire = sotto.encrypt(r, pt).expect("encrypt");
    same_draws(what, r, &draws);
    same(what, wire.as_bytes(), &msg);
    same(
        &format!("{what}: sender state"),
        &sotto.to_bytes(),
        &model.encode(),
    );
    ev["rng_draws"] = hex_list(&draws);
    ev["plaintext"] = hex(pt).into();
    (msg, ev)
}

/// Bob accepts a prekey message on both sides.
pub(crate) fn accept(what: &str, bob: &mut Party, msg: &[u8]) -> (Sess, Session, Vec<u8>) {
    let (model, pt, _, _) = testkit::model::accept(&mut bob.model, msg);
    let parsed = sotto::PreKeyMessage::from_vec(msg.to_vec()).expect("a prekey message");
    let (sotto, spt) = Session::accept(&mut bob.sotto, &parsed).expect("accept");
    same(&format!("{what}: plaintext"), &spt, &pt);
    same(
        &format!("{what}: session"),
        &sotto.to_bytes(),
        &model.encode(),
    );
    (model, sotto, pt)
}

/// One vector file.
pub(crate) fn file(area: &str, description: &str, seed_label: &str, vectors: Vec<Value>) -> Value {
    serde_json::json!({
        "area": area, "format": 1, "description": description,
        // The command of the first generator, kept so the files stay byte
        // for byte as they were; the tool is `cargo run -p sotto-gen-vectors`.
        "generator": "cargo run --example gen_vectors",
        "seed_label": seed_label, "seed": hex(&named_seed(seed_label)),
        "vectors": vectors,
    })
}
