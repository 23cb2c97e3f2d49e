//! The test-vector verifier, shared by `tests/vectors.rs` (cargo test),
//! `examples/verify_vectors.rs` (the auditor command) and
//! `examples/gen_vectors.rs` (which checks its own output before writing it).
//!
//! Every vector is replayed through sotto's public API. Where the public API
//! cannot reach an intermediate value (root, chain and message keys, DH
//! outputs), the value is recomputed from the primitive crates, which checks
//! the vector against the protocol description rather than against sotto.

use std::path::Path;

use hkdf::Hkdf;
use hmac::{KeyInit, Mac, SimpleHmac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sotto::rand_core::{Infallible, TryCryptoRng, TryRng};
use sotto::{
    Device, Error, IdentityKey, Message, OneTimePreKey, PreKeyBundle, PreKeyMessage, Role, Session,
    SignedPreKey, StorageKey,
};

/// The vector files this verifier knows, in the order it checks them.
pub(crate) const AREAS: &[&str] = &["kdf", "x3dh", "conversation", "persistence", "negative"];

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Strict lowercase hex to bytes.
pub(crate) fn unhex(s: &str) -> Result<Vec<u8>, String> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        _ => Err(format!("not lowercase hex: {s:?}")),
    };
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return Err(format!("odd-length hex: {s:?}"));
    }
    b.chunks(2)
        .map(|p| Ok(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

/// An RNG that hands out recorded bytes in order, so that sotto's public API
/// can be driven with the explicit private keys and salts of a vector.
pub(crate) struct ReplayRng {
    bytes: Vec<u8>,
    pos: usize,
    overrun: bool,
}

impl ReplayRng {
    pub(crate) fn new<I: IntoIterator<Item = Vec<u8>>>(draws: I) -> Self {
        Self {
            bytes: draws.into_iter().flatten().collect(),
            pos: 0,
            overrun: false,
        }
    }

    /// Fails unless exactly the recorded bytes were drawn.
    pub(crate) fn finish(self) -> Result<(), String> {
        if self.overrun {
            return Err("sotto drew more random bytes than recorded".into());
        }
        if self.pos != self.bytes.len() {
            return Err(format!(
                "sotto drew {} random bytes, {} were recorded",
                self.pos,
                self.bytes.len()
            ));
        }
        Ok(())
    }
}

impl TryRng for ReplayRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        match self.bytes.get(self.pos..self.pos + dst.len()) {
            Some(src) => {
                dst.copy_from_slice(src);
                self.pos += dst.len();
            }
            None => {
                // Zeros, never a panic: `finish` reports the overrun.
                dst.fill(0);
                self.overrun = true;
            }
        }
        Ok(())
    }
}

impl TryCryptoRng for ReplayRng {}

/// The stable name and public fields of an error, as the vectors spell them.
pub(crate) fn error_json(e: &Error) -> Value {
    let (name, fields) = match *e {
        Error::Truncated => ("Truncated", json!({})),
        Error::TrailingBytes => ("TrailingBytes", json!({})),
        Error::UnsupportedVersion { found } => ("UnsupportedVersion", json!({ "found": found })),
        Error::WrongType { expected, found } => {
            ("WrongType", json!({ "expected": expected, "found": found }))
        }
        Error::InvalidEncoding => ("InvalidEncoding", json!({})),
        Error::TooLarge => ("TooLarge", json!({})),
        Error::PlaintextTooLarge => ("PlaintextTooLarge", json!({})),
        Error::InvalidPublicKey => ("InvalidPublicKey", json!({})),
        Error::NonContributoryKey => ("NonContributoryKey", json!({})),
        Error::InvalidSignature => ("InvalidSignature", json!({})),
        Error::IdentityMismatch => ("IdentityMismatch", json!({})),
        Error::UnknownSignedPreKey { id } => ("UnknownSignedPreKey", json!({ "id": id })),
        Error::UnknownOneTimePreKey { id } => ("UnknownOneTimePreKey", json!({ "id": id })),
        Error::DuplicatePreKeyMessage => ("DuplicatePreKeyMessage", json!({})),
        Error::TooManyPreKeys => ("TooManyPreKeys", json!({})),
        Error::AuthenticationFailed => ("AuthenticationFailed", json!({})),
        Error::DuplicateMessage => ("DuplicateMessage", json!({})),
        Error::TooFarAhead { skipped } => ("TooFarAhead", json!({ "skipped": skipped })),
        Error::UnexpectedRatchetKey => ("UnexpectedRatchetKey", json!({})),
        Error::SessionMismatch => ("SessionMismatch", json!({})),
        Error::ChainExhausted => ("ChainExhausted", json!({})),
        _ => ("Unknown", json!({ "debug": format!("{e:?}") })),
    };
    json!({ "name": name, "fields": fields })
}

/// One verified vector.
pub(crate) struct Outcome {
    pub(crate) name: String,
    pub(crate) result: Result<(), String>,
}

/// Verifies every known vector file in `dir`. A missing file is a failure.
pub(crate) fn verify_dir(dir: &Path) -> Vec<Outcome> {
    let mut out = Vec::new();
    for area in AREAS {
        let path = dir.join(format!("{area}.json"));
        let parsed = std::fs::read_to_string(&path)
            .map_err(|e| format!("{}: {e}", path.display()))
            .and_then(|s| serde_json::from_str::<Value>(&s).map_err(|e| e.to_string()));
        match parsed {
            Ok(v) => out.extend(verify_file(area, &v)),
            Err(e) => out.push(Outcome {
                name: format!("{area}/<file>"),
                result: Err(e),
            }),
        }
    }
    out
}

/// Verifies every vector of one parsed file.
pub(crate) fn verify_file(area: &str, file: &Value) -> Vec<Outcome> {
    let check: fn(&Value, &Value) -> Res = match area {
        "kdf" => verify_kdf,
        "x3dh" => verify_x3dh,
        "conversation" => verify_conversation,
        "persistence" => verify_persistence,
        "negative" => verify_negative,
        _ => {
            return vec![Outcome {
                name: format!("{area}/<file>"),
                result: Err("no verifier for this area".into()),
            }];
        }
    };
    if file["area"] != area || file["format"] != 1 {
        return vec![Outcome {
            name: format!("{area}/<file>"),
            result: Err("wrong \"area\" or \"format\"".into()),
        }];
    }
    let empty = json!({});
    let fixtures = file.get("fixtures").unwrap_or(&empty);
    let Some(vectors) = file["vectors"].as_array().filter(|v| !v.is_empty()) else {
        return vec![Outcome {
            name: format!("{area}/<file>"),
            result: Err("no vectors".into()),
        }];
    };
    vectors
        .iter()
        .map(|v| Outcome {
            name: format!("{area}/{}", v["name"].as_str().unwrap_or("<unnamed>")),
            result: check(fixtures, v),
        })
        .collect()
}

type Res = Result<(), String>;

fn b(v: &Value, key: &str) -> Result<Vec<u8>, String> {
    let s = v
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing hex field {key:?}"))?;
    unhex(s)
}

fn b32(v: &Value, key: &str) -> Result<[u8; 32], String> {
    b(v, key)?
        .try_into()
        .map_err(|_| format!("{key:?} is not 32 bytes"))
}

fn u(v: &Value, key: &str) -> Result<u64, String> {
    v.get(key)
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("missing integer field {key:?}"))
}

fn s<'a>(v: &'a Value, key: &str) -> Result<&'a str, String> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing string field {key:?}"))
}

fn draws(v: &Value, key: &str) -> Result<Vec<Vec<u8>>, String> {
    v.get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("missing array {key:?}"))?
        .iter()
        .map(|d| unhex(d.as_str().ok_or("draw is not a string")?))
        .collect()
}

fn eq(what: &str, got: &[u8], want: &[u8]) -> Res {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {}, want {}", hex(got), hex(want)))
    }
}

fn api<T>(what: &str, r: Result<T, Error>) -> Result<T, String> {
    r.map_err(|e| format!("{what} failed: {e:?}"))
}

fn hkdf_sha256(salt: &[u8], ikm: &[u8], info: &[u8], len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, &mut out)
        .map(|()| out)
        .unwrap_or_default()
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let Ok(mut mac) = <SimpleHmac<Sha256> as KeyInit>::new_from_slice(key) else {
        return Vec::new();
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn x25519(private: &[u8; 32], public: &[u8; 32]) -> [u8; 32] {
    x25519_dalek::x25519(*private, *public)
}

fn x25519_base(private: &[u8; 32]) -> [u8; 32] {
    x25519_dalek::x25519(*private, x25519_dalek::X25519_BASEPOINT_BYTES)
}

/// kdf.json: recomputed from HKDF/HMAC directly (the crate-private sotto
/// functions are checked against this file by the unit tests in src).
fn verify_kdf(_: &Value, v: &Value) -> Res {
    let info = s(v, "info")?.as_bytes();
    match s(v, "kind")? {
        "root_step" => {
            let okm = hkdf_sha256(&b(v, "root_key")?, &b(v, "dh_output")?, info, 64);
            eq("new_root_key", &okm[..32], &b(v, "new_root_key")?)?;
            eq("chain_key", &okm[32..], &b(v, "chain_key")?)
        }
        "chain_step" => {
            let ck = b(v, "chain_key")?;
            let next_info = s(v, "next_info")?.as_bytes();
            eq(
                "message_key",
                &hmac_sha256(&ck, info),
                &b(v, "message_key")?,
            )?;
            eq(
                "next_chain_key",
                &hmac_sha256(&ck, next_info),
                &b(v, "next_chain_key")?,
            )
        }
        "message_keys" | "sealed_state_keys" => {
            let ikm = b(v, "ikm")?;
            let okm = hkdf_sha256(&b(v, "salt")?, &ikm, info, 44);
            eq("aes_key", &okm[..32], &b(v, "aes_key")?)?;
            eq("nonce", &okm[32..], &b(v, "nonce")?)
        }
        other => Err(format!("unknown kind {other:?}")),
    }
}

/// Checks a device rebuilt from its recorded RNG draws against the vector.
fn device_from_draws(v: &Value) -> Result<Device, String> {
    let mut rng = ReplayRng::new(draws(v, "rng_draws")?);
    let device = Device::generate(&mut rng);
    rng.finish()?;
    let id = device.identity_key();
    eq("identity_key", &id.to_bytes(), &b(v, "identity_key")?)?;
    eq(
        "ed25519_public",
        &id.signing_key_bytes(),
        &b(v, "ed25519_public")?,
    )?;
    eq("x25519_public", &id.dh_key_bytes(), &b(v, "x25519_public")?)?;
    eq(
        "fingerprint",
        id.fingerprint().as_bytes(),
        &b(v, "fingerprint")?,
    )?;
    eq(
        "x25519 public from private",
        &x25519_base(&b32(v, "x25519_private")?),
        &b(v, "x25519_public")?,
    )?;
    let fp = Sha256::new()
        .chain_update(s(v, "fingerprint_info")?)
        .chain_update(b(v, "ed25519_public")?)
        .chain_update(b(v, "x25519_public")?)
        .finalize();
    eq("fingerprint recomputed", &fp, &b(v, "fingerprint")?)?;
    let spk = &v["signed_prekey"];
    eq(
        "signed_prekey",
        &device.signed_prekey().to_bytes(),
        &b(spk, "encoded")?,
    )?;
    eq(
        "signed_prekey signature",
        device.signed_prekey().signature(),
        &b(spk, "signature")?,
    )?;
    let mut signed = s(spk, "signature_info")?.as_bytes().to_vec();
    signed.extend(b(v, "x25519_public")?);
    signed.extend(
        u32::try_from(u(spk, "id")?)
            .map_err(|e| e.to_string())?
            .to_be_bytes(),
    );
    signed.extend(b(spk, "public")?);
    eq(
        "signed_prekey signed_data",
        &signed,
        &b(spk, "signed_data")?,
    )?;
    Ok(device)
}

fn one_time_prekeys(device: &mut Device, v: &Value) -> Result<Vec<OneTimePreKey>, String> {
    let Some(list) = v.get("one_time_prekeys").and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for opk in list {
        let mut rng = ReplayRng::new([b(opk, "private")?]);
        let made = api(
            "generate_one_time_prekeys",
            device.generate_one_time_prekeys(&mut rng, 1),
        )?;
        rng.finish()?;
        let made = made.first().copied().ok_or("no one-time prekey made")?;
        eq("one_time_prekey", &made.to_bytes(), &b(opk, "encoded")?)?;
        if u64::from(made.id()) != u(opk, "id")? {
            return Err("one-time prekey id".into());
        }
        out.push(made);
    }
    Ok(out)
}

/// x3dh.json: both devices rebuilt from their draws, the bundle encoded and
/// verified, the session started with the explicit base key, and the first
/// message encrypted and accepted. DH outputs, KDF input, SK and AD are
/// recomputed from X25519 and HKDF.
fn verify_x3dh(_: &Value, v: &Value) -> Res {
    let alice = device_from_draws(&v["alice"])?;
    let mut bob = device_from_draws(&v["bob"])?;
    let opks = one_time_prekeys(&mut bob, &v["bob"])?;
    let opk = opks.first().copied();
    let bundle = PreKeyBundle::new(*bob.identity_key(), bob.signed_prekey(), opk);
    eq("bundle", &bundle.to_bytes(), &b(v, "bundle")?)?;
    if api("bundle decode", PreKeyBundle::from_bytes(&b(v, "bundle")?))? != bundle {
        return Err("bundle decodes differently".into());
    }
    let verified = api("bundle verify", bundle.verify())?;

    let base = &v["base_key"];
    let mut rng = ReplayRng::new([b(base, "private")?]);
    let mut session = api("initiate", Session::initiate(&alice, &mut rng, &verified))?;
    rng.finish()?;
    eq("base key", &session.base_key_bytes(), &b(base, "public")?)?;

    // Spec-level recomputation of the X3DH values.
    let ek = b32(base, "private")?;
    let a_ik = b32(&v["alice"], "x25519_private")?;
    let b_ik = b32(&v["bob"], "x25519_public")?;
    let spk = b32(&v["bob"]["signed_prekey"], "public")?;
    let mut ikm = vec![0xff; 32];
    for (name, dh) in [
        ("dh1", x25519(&a_ik, &spk)),
        ("dh2", x25519(&ek, &b_ik)),
        ("dh3", x25519(&ek, &spk)),
    ] {
        eq(name, &dh, &b(v, name)?)?;
        ikm.extend(dh);
    }
    match opk {
        Some(opk) => {
            let dh4 = x25519(&ek, &opk.key_bytes());
            eq("dh4", &dh4, &b(v, "dh4")?)?;
            ikm.extend(dh4);
        }
        None if v["dh4"].is_null() => {}
        None => return Err("dh4 given without a one-time prekey".into()),
    }
    eq("kdf_input", &ikm, &b(v, "kdf_input")?)?;
    let sk = hkdf_sha256(&b(v, "kdf_salt")?, &ikm, s(v, "info")?.as_bytes(), 32);
    eq("sk", &sk, &b(v, "sk")?)?;
    let mut ad = alice.identity_key().to_bytes()[2..].to_vec();
    ad.extend(&bob.identity_key().to_bytes()[2..]);
    eq("associated_data", &ad, &b(v, "associated_data")?)?;

    let first = &v["first_message"];
    let mut rng = ReplayRng::new([b(first, "ratchet_private")?, b(first, "salt")?]);
    let plaintext = b(first, "plaintext")?;
    let wire = api("encrypt", session.encrypt(&mut rng, &plaintext))?;
    rng.finish()?;
    eq("first message", wire.as_bytes(), &b(first, "message")?)?;
    let dh = x25519(
        &b32(first, "ratchet_private")?,
        &b32(&v["bob"]["signed_prekey"], "public")?,
    );
    eq("first ratchet dh_output", &dh, &b(first, "dh_output")?)?;
    let okm = hkdf_sha256(&sk, &dh, s(first, "root_info")?.as_bytes(), 64);
    eq("first root_key", &okm[..32], &b(first, "root_key")?)?;
    eq("first chain_key", &okm[32..], &b(first, "chain_key")?)?;

    let Message::PreKey(m) = api("parse", Message::from_bytes(wire.as_bytes()))? else {
        return Err("first message is not a prekey message".into());
    };
    let (_, got) = api("accept", Session::accept(&mut bob, &m))?;
    eq("accepted plaintext", &got, &plaintext)
}

/// The per-message values of a send event, recomputed from the primitives.
fn check_send_keys(e: &Value, labels: &Value) -> Res {
    let ck = b(e, "chain_key")?;
    let mk = hmac_sha256(&ck, s(labels, "chain_message")?.as_bytes());
    eq("message_key", &mk, &b(e, "message_key")?)?;
    eq(
        "next_chain_key",
        &hmac_sha256(&ck, s(labels, "chain_next")?.as_bytes()),
        &b(e, "next_chain_key")?,
    )?;
    let okm = hkdf_sha256(
        &b(e, "salt")?,
        &mk,
        s(labels, "message_keys")?.as_bytes(),
        44,
    );
    eq("aes_key", &okm[..32], &b(e, "aes_key")?)?;
    eq("nonce", &okm[32..], &b(e, "nonce")?)?;
    let message = b(e, "message")?;
    let header = b(e, "header")?;
    let ciphertext = b(e, "ciphertext")?;
    let mut tail = header.clone();
    tail.extend(&ciphertext);
    if !message.ends_with(&tail) {
        return Err("message does not end with header || ciphertext".into());
    }
    let aad = b(e, "aad")?;
    let prefix = &message[..message.len() - ciphertext.len()];
    if !aad.ends_with(prefix) || aad.len() != 128 + prefix.len() {
        return Err("aad is not AD || every message byte before the ciphertext".into());
    }
    use aes_gcm::aead::AeadInOut;
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(&okm[..32]).map_err(|e| e.to_string())?;
    let mut buf = b(e, "plaintext")?;
    let nonce = aes_gcm::Nonce::try_from(&okm[32..]).map_err(|_| "nonce length")?;
    let tag = cipher
        .encrypt_inout_detached(&nonce, &aad, buf.as_mut_slice().into())
        .map_err(|e| e.to_string())?;
    buf.extend_from_slice(&tag);
    eq("ciphertext recomputed", &buf, &ciphertext)?;
    if let Some(r) = e.get("dh_ratchet").filter(|r| !r.is_null()) {
        let dh = x25519(
            &b32(r, "ratchet_private")?,
            &b32(r, "remote_ratchet_public")?,
        );
        eq("dh_ratchet dh_output", &dh, &b(r, "dh_output")?)?;
        let okm = hkdf_sha256(
            &b(r, "root_key_in")?,
            &dh,
            s(labels, "root")?.as_bytes(),
            64,
        );
        eq(
            "dh_ratchet root_key_out",
            &okm[..32],
            &b(r, "root_key_out")?,
        )?;
        eq(
            "dh_ratchet chain_key_out",
            &okm[32..],
            &b(r, "chain_key_out")?,
        )?;
        eq("first chain key", &okm[32..], &ck)?;
    }
    Ok(())
}

/// conversation.json: both devices rebuilt from their draws; every send
/// re-encrypted with the recorded draws and compared byte for byte; every
/// receive decrypted (or accepted) and its plaintext compared.
fn verify_conversation(_: &Value, v: &Value) -> Res {
    let labels = &v["labels"];
    let mut alice = device_from_draws(&v["alice"])?;
    let mut bob = device_from_draws(&v["bob"])?;
    let opks = one_time_prekeys(&mut bob, &v["bob"])?;
    let bundle = PreKeyBundle::new(
        *bob.identity_key(),
        bob.signed_prekey(),
        opks.first().copied(),
    );
    let verified = api("bundle verify", bundle.verify())?;
    let mut rng = ReplayRng::new(draws(v, "initiate_rng_draws")?);
    let mut sessions = [
        Some(api(
            "initiate",
            Session::initiate(&alice, &mut rng, &verified),
        )?),
        None,
    ];
    rng.finish()?;
    let mut sent: std::collections::BTreeMap<String, (Vec<u8>, Vec<u8>)> = Default::default();
    let events = v["events"].as_array().ok_or("no events")?;
    for (i, e) in events.iter().enumerate() {
        let at = |r: Res| r.map_err(|m| format!("event {i}: {m}"));
        let party = |name: &str| match name {
            "alice" => Ok(0usize),
            "bob" => Ok(1),
            other => Err(format!("event {i}: unknown party {other:?}")),
        };
        let id = s(e, "message_id")?.to_owned();
        match s(e, "type")? {
            "send" => {
                at(check_send_keys(e, labels))?;
                let p = party(s(e, "from")?)?;
                let session = sessions[p].as_mut().ok_or("sender has no session")?;
                let mut rng = ReplayRng::new(draws(e, "rng_draws")?);
                let plaintext = b(e, "plaintext")?;
                let wire = api("encrypt", session.encrypt(&mut rng, &plaintext))?;
                at(rng.finish())?;
                at(eq("message", wire.as_bytes(), &b(e, "message")?))?;
                sent.insert(id, (wire.into_bytes(), b(e, "message_key")?));
            }
            "receive" => {
                let p = party(s(e, "to")?)?;
                let (wire, mk) = sent.get(&id).ok_or("receive before send")?;
                at(eq("message_key", mk, &b(e, "message_key")?))?;
                let message = api("parse", Message::from_bytes(wire))?;
                let got = match (&mut sessions[p], &message, s(e, "via")?) {
                    (None, Message::PreKey(m), "accept") => {
                        let device = if p == 0 { &mut alice } else { &mut bob };
                        let (session, pt) = api("accept", Session::accept(device, m))?;
                        sessions[p] = Some(session);
                        pt
                    }
                    (Some(session), _, "decrypt") => api("decrypt", session.decrypt(&message))?,
                    _ => return Err(format!("event {i}: cannot receive this way")),
                };
                at(eq("plaintext", &got, &b(e, "plaintext")?))?;
                let session = sessions[p].as_ref().ok_or("no session")?;
                if session.skipped_key_count() as u64 != u(e, "skipped_keys_after")? {
                    return Err(format!("event {i}: skipped key count"));
                }
            }
            "drop" => {
                if !sent.contains_key(&id) {
                    return Err(format!("event {i}: dropping an unsent message"));
                }
            }
            other => return Err(format!("event {i}: unknown type {other:?}")),
        }
    }
    for (p, name) in [(0, "alice"), (1, "bob")] {
        let session = sessions[p].as_ref().ok_or("no session at the end")?;
        eq(
            &format!("{name} final state"),
            &session.to_bytes(),
            &b(&v["final_states"], name)?,
        )?;
    }
    Ok(())
}

fn check_decoded_session(session: &Session, d: &Value) -> Res {
    let role = match session.role() {
        Role::Initiator => "initiator",
        Role::Responder => "responder",
    };
    if role != s(d, "role")? {
        return Err("role".into());
    }
    eq(
        "local identity",
        &session.local_identity().to_bytes()[2..],
        &b(d, "local_identity")?,
    )?;
    eq(
        "remote identity",
        &session.remote_identity().to_bytes()[2..],
        &b(d, "remote_identity")?,
    )?;
    eq("base key", &session.base_key_bytes(), &b(d, "base_key")?)?;
    if session.is_awaiting_reply() == d["pending_prekey"].is_null() {
        return Err("awaiting reply".into());
    }
    let chains = d["receiving_chains"].as_array().ok_or("receiving_chains")?;
    if session.receiving_chain_count() != chains.len() {
        return Err("receiving chain count".into());
    }
    let skipped: usize = chains
        .iter()
        .map(|c| c["skipped"].as_array().map_or(0, Vec::len))
        .sum();
    if session.skipped_key_count() != skipped {
        return Err("skipped key count".into());
    }
    Ok(())
}

fn check_decoded_device(device: &Device, d: &Value) -> Res {
    eq(
        "identity",
        &device.identity_key().to_bytes(),
        &b(d, "identity_key")?,
    )?;
    let spks = d["signed_prekeys"].as_array().ok_or("signed_prekeys")?;
    let current = spks.last().ok_or("no signed prekey")?;
    eq(
        "current signed prekey",
        &device.signed_prekey().to_bytes(),
        &b(current, "encoded")?,
    )?;
    let opks = d["one_time_prekeys"].as_array().ok_or("one_time_prekeys")?;
    if device.one_time_prekey_count() != opks.len() {
        return Err("one-time prekey count".into());
    }
    Ok(())
}

/// persistence.json: plain states decoded and re-encoded byte for byte,
/// checked against the decoded fields the public API exposes; sealed forms
/// re-sealed with the recorded salt and unsealed with the storage key.
fn verify_persistence(_: &Value, v: &Value) -> Res {
    let state = b(v, "state")?;
    let key = StorageKey::from_bytes(b32(v, "storage_key")?);
    let sealed = b(v, "sealed")?;
    let mut rng = ReplayRng::new([b(v, "seal_salt")?]);
    match s(v, "kind")? {
        "session" => {
            let session = api("Session::from_bytes", Session::from_bytes(&state))?;
            eq("re-encoded", &session.to_bytes(), &state)?;
            check_decoded_session(&session, &v["decoded"])?;
            eq(
                "sealed",
                &api("seal", session.seal(&key, &mut rng))?,
                &sealed,
            )?;
            let opened = api("unseal", Session::unseal(&sealed, &key))?;
            eq("unsealed", &opened.to_bytes(), &state)?;
        }
        "device" => {
            let device = api("Device::from_bytes", Device::from_bytes(&state))?;
            eq("re-encoded", &device.to_bytes(), &state)?;
            check_decoded_device(&device, &v["decoded"])?;
            eq(
                "sealed",
                &api("seal", device.seal(&key, &mut rng))?,
                &sealed,
            )?;
            let opened = api("unseal", Device::unseal(&sealed, &key))?;
            eq("unsealed", &opened.to_bytes(), &state)?;
        }
        other => return Err(format!("unknown kind {other:?}")),
    }
    rng.finish()?;
    let okm = hkdf_sha256(
        &b(v, "seal_salt")?,
        &b(v, "storage_key")?,
        s(v, "seal_info")?.as_bytes(),
        44,
    );
    eq("seal aes_key", &okm[..32], &b(v, "seal_aes_key")?)?;
    eq("seal nonce", &okm[32..], &b(v, "seal_nonce")?)
}

/// The input bytes of a negative vector: `input`, zero-padded to `pad_to`
/// when given (for over-limit lengths too large to spell out).
fn input(v: &Value) -> Result<Vec<u8>, String> {
    let mut bytes = b(v, "input")?;
    if let Some(len) = v.get("pad_to").and_then(Value::as_u64) {
        bytes.resize(usize::try_from(len).map_err(|e| e.to_string())?, 0);
    }
    Ok(bytes)
}

fn fixture(fixtures: &Value, v: &Value, key: &str) -> Result<Vec<u8>, String> {
    b(fixtures, s(v, key)?)
}

/// negative.json: each input must fail with exactly the named error, and a
/// failing call on a session or device must leave its state unchanged.
fn verify_negative(fixtures: &Value, v: &Value) -> Res {
    fn unchanged(before: &[u8], after: &[u8]) -> Res {
        eq("state after the error", after, before)
    }
    let result: Result<(), Error> = match s(v, "operation")? {
        "Message::from_bytes" => Message::from_bytes(&input(v)?).map(drop),
        "IdentityKey::from_bytes" => IdentityKey::from_bytes(&input(v)?).map(drop),
        "SignedPreKey::from_bytes" => SignedPreKey::from_bytes(&input(v)?).map(drop),
        "OneTimePreKey::from_bytes" => OneTimePreKey::from_bytes(&input(v)?).map(drop),
        "PreKeyBundle::from_bytes" => PreKeyBundle::from_bytes(&input(v)?).map(drop),
        "PreKeyBundle::verify" => {
            let bundle = api("bundle decode", PreKeyBundle::from_bytes(&input(v)?))?;
            bundle.verify().map(drop)
        }
        "PreKeyBundle::verify_for" => {
            let bundle = api("bundle decode", PreKeyBundle::from_bytes(&input(v)?))?;
            let expected = api("identity", IdentityKey::from_bytes(&b(v, "expected")?))?;
            bundle.verify_for(&expected).map(drop)
        }
        "Session::from_bytes" => Session::from_bytes(&input(v)?).map(drop),
        "Device::from_bytes" => Device::from_bytes(&input(v)?).map(drop),
        "Session::unseal" => {
            Session::unseal(&input(v)?, &StorageKey::from_bytes(b32(v, "storage_key")?)).map(drop)
        }
        "Device::unseal" => {
            Device::unseal(&input(v)?, &StorageKey::from_bytes(b32(v, "storage_key")?)).map(drop)
        }
        "Session::decrypt" => {
            let state = fixture(fixtures, v, "session")?;
            let mut session = api("session", Session::from_bytes(&state))?;
            let message = api("parse", Message::from_bytes(&input(v)?))?;
            let r = session.decrypt(&message).map(drop);
            unchanged(&state, &session.to_bytes())?;
            r
        }
        "Session::encrypt" => {
            let state = fixture(fixtures, v, "session")?;
            let mut session = api("session", Session::from_bytes(&state))?;
            let mut rng = ReplayRng::new([]);
            let r = session.encrypt(&mut rng, &input(v)?).map(drop);
            unchanged(&state, &session.to_bytes())?;
            r
        }
        "Session::accept" => {
            let state = fixture(fixtures, v, "device")?;
            let mut device = api("device", Device::from_bytes(&state))?;
            let m = api("parse", PreKeyMessage::from_vec(input(v)?))?;
            let r = Session::accept(&mut device, &m).map(drop);
            unchanged(&state, &device.to_bytes())?;
            r
        }
        other => return Err(format!("unknown operation {other:?}")),
    };
    match result {
        Ok(()) => Err(format!("succeeded, want {}", v["error"])),
        Err(e) if error_json(&e) == v["error"] => Ok(()),
        Err(e) => Err(format!("got {}, want {}", error_json(&e), v["error"])),
    }
}
