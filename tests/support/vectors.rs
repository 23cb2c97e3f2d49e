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
use sotto::group::{
    GroupId, GroupMessage, GroupReceiver, GroupReceivers, GroupSender, MAX_GROUP_JUMP, Sender,
    SenderKeyDistribution,
};
use sotto::rand_core::{Infallible, TryCryptoRng, TryRng};
use sotto::{
    Device, Error, IdentityKey, Message, OneTimePreKey, PreKeyBundle, PreKeyMessage, Role, Session,
    SignedPreKey, StorageKey,
};

/// The vector files this verifier knows, in the order it checks them.
pub(crate) const AREAS: &[&str] = &[
    "kdf",
    "x3dh",
    "conversation",
    "persistence",
    "negative",
    "group",
    "device",
    "bounds",
];

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
        Error::UnknownGroupChain => ("UnknownGroupChain", json!({})),
        Error::GroupIndexOutOfRange { index } => {
            ("GroupIndexOutOfRange", json!({ "index": index }))
        }
        Error::GroupMismatch => ("GroupMismatch", json!({})),
        Error::GroupChainConflict => ("GroupChainConflict", json!({})),
        Error::GroupChainNotNewer => ("GroupChainNotNewer", json!({})),
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
        "group" => verify_group,
        "device" => verify_device,
        "bounds" => verify_bounds,
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
        "GroupMessage::from_bytes" => GroupMessage::from_bytes(&input(v)?).map(drop),
        "SenderKeyDistribution::from_bytes" => {
            SenderKeyDistribution::from_bytes(&input(v)?).map(drop)
        }
        "GroupSender::from_bytes" => GroupSender::from_bytes(&input(v)?).map(drop),
        "GroupReceiver::from_bytes" => GroupReceiver::from_bytes(&input(v)?).map(drop),
        "GroupSender::unseal" => {
            GroupSender::unseal(&input(v)?, &StorageKey::from_bytes(b32(v, "storage_key")?))
                .map(drop)
        }
        "GroupReceiver::unseal" => {
            GroupReceiver::unseal(&input(v)?, &StorageKey::from_bytes(b32(v, "storage_key")?))
                .map(drop)
        }
        "GroupReceiver::decrypt" => {
            let state = fixture(fixtures, v, "receiver")?;
            let mut receiver = api("receiver", GroupReceiver::from_bytes(&state))?;
            let message = api("parse", GroupMessage::from_bytes(&input(v)?))?;
            let r = receiver.decrypt(&message).map(drop);
            unchanged(&state, &receiver.to_bytes())?;
            r
        }
        "GroupSender::encrypt" => {
            let state = fixture(fixtures, v, "sender")?;
            let mut sender = api("sender", GroupSender::from_bytes(&state))?;
            let mut rng = ReplayRng::new([]);
            let r = sender.encrypt(&mut rng, &input(v)?).map(drop);
            unchanged(&state, &sender.to_bytes())?;
            rng.finish()?;
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

/// R_0 .. R_7 of a group ratchet.
type Levels = [[u8; 32]; 8];

fn labelled_sha256(label: &str, data: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update(label)
        .chain_update(data)
        .finalize()
        .into()
}

fn levels(v: &Value, key: &str) -> Result<Levels, String> {
    let list = v
        .get(key)
        .and_then(Value::as_array)
        .filter(|l| l.len() == 8)
        .ok_or_else(|| format!("{key:?} is not a list of 8 levels"))?;
    let mut out = [[0u8; 32]; 8];
    for (o, l) in out.iter_mut().zip(list) {
        *o = unhex(l.as_str().ok_or("level is not a string")?)?
            .try_into()
            .map_err(|_| "level is not 32 bytes")?;
    }
    Ok(out)
}

fn flat(l: &Levels) -> Vec<u8> {
    l.concat()
}

fn u32_of(v: &Value, key: &str) -> Result<u32, String> {
    u32::try_from(u(v, key)?).map_err(|e| e.to_string())
}

/// SPEC §15.4 closed form: R_k(i) = Step^{d_k(i)}(B_k(i)).
fn closed_form(labels: &Value, initial: &Levels, i: u32) -> Result<Levels, String> {
    let (step, derive) = (s(labels, "step")?, s(labels, "derive")?);
    let digit = |k: usize| (i >> (4 * (7 - k))) & 0xF;
    let mut out = [[0u8; 32]; 8];
    for k in 0..8 {
        let mut r = if (0..k).all(|a| digit(a) == 0) {
            initial[k]
        } else {
            labelled_sha256(derive, &out[k - 1])
        };
        for _ in 0..digit(k) {
            r = labelled_sha256(step, &r);
        }
        out[k] = r;
    }
    Ok(out)
}

fn group_key(labels: &Value, l: &Levels) -> Result<[u8; 32], String> {
    Ok(labelled_sha256(s(labels, "key")?, &l[7]))
}

fn signing_public(seed: &[u8; 32]) -> [u8; 32] {
    ed25519_dalek::SigningKey::from_bytes(seed)
        .verifying_key()
        .to_bytes()
}

/// A new chain's draws (chain id, R_0..R_7, Ed25519 seed) against the
/// event's fields and the sender sotto made from them.
fn check_new_chain(e: &Value, drawn: &[Vec<u8>], sender: &GroupSender) -> Res {
    let [chain, r, seed] = drawn else {
        return Err("a new chain draws three values".into());
    };
    let chain: [u8; 4] = chain.as_slice().try_into().map_err(|_| "chain id draw")?;
    if u64::from(u32::from_be_bytes(chain)) != u(e, "chain_id")?
        || sender.chain_id() != u32_of(e, "chain_id")?
    {
        return Err("chain_id".into());
    }
    eq("levels", &flat(&levels(e, "levels")?), r)?;
    eq("signing_seed", &b(e, "signing_seed")?, seed)?;
    let seed: [u8; 32] = seed.as_slice().try_into().map_err(|_| "seed draw")?;
    eq(
        "signing_public",
        &signing_public(&seed),
        &b(e, "signing_public")?,
    )?;
    eq(
        "sotto signing key",
        &sender.signing_key_bytes(),
        &b(e, "signing_public")?,
    )?;
    eq("sender_state", &sender.to_bytes(), &b(e, "sender_state")?)
}

/// Every value of one group message, recomputed from the primitives (§15.5).
fn check_group_message(labels: &Value, e: &Value, initial: &Levels, seed: &[u8; 32]) -> Res {
    use aes_gcm::aead::AeadInOut;
    let index = u32_of(e, "index")?;
    let l = closed_form(labels, initial, index)?;
    let k = group_key(labels, &l)?;
    eq("message_key", &k, &b(e, "message_key")?)?;
    let salt = b(e, "salt")?;
    let okm = hkdf_sha256(&salt, &k, s(labels, "message_keys")?.as_bytes(), 44);
    eq("aes_key", &okm[..32], &b(e, "aes_key")?)?;
    eq("nonce", &okm[32..], &b(e, "nonce")?)?;
    let message = b(e, "message")?;
    if message.len() < 138 {
        return Err("message too short".into());
    }
    let header = &message[..58];
    eq("header", header, &b(e, "header")?)?;
    eq("header index", &header[38..42], &index.to_be_bytes())?;
    eq("header salt", &header[42..], &salt)?;
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(&okm[..32]).map_err(|e| e.to_string())?;
    let nonce = aes_gcm::Nonce::try_from(&okm[32..]).map_err(|_| "nonce length")?;
    let mut buf = b(e, "plaintext")?;
    let tag = cipher
        .encrypt_inout_detached(&nonce, header, buf.as_mut_slice().into())
        .map_err(|e| e.to_string())?;
    buf.extend_from_slice(&tag);
    eq("ciphertext", &buf, &b(e, "ciphertext")?)?;
    eq("message body", &message[58..message.len() - 64], &buf)?;
    let (unsigned, signature) = message.split_at(message.len() - 64);
    let mut signed = s(labels, "signature")?.as_bytes().to_vec();
    signed.extend(unsigned);
    eq("signed_data", &signed, &b(e, "signed_data")?)?;
    eq("signature", signature, &b(e, "signature")?)?;
    use ed25519_dalek::Signer;
    let key = ed25519_dalek::SigningKey::from_bytes(seed);
    eq(
        "signature recomputed",
        &key.sign(&signed).to_bytes(),
        signature,
    )?;
    let sig = ed25519_dalek::Signature::from_slice(signature).map_err(|e| e.to_string())?;
    key.verifying_key()
        .verify_strict(&signed, &sig)
        .map_err(|e| format!("signature does not verify: {e}"))
}

/// A receiver state, given in full or as its SHA-256.
fn check_receiver_state(e: &Value, key: &str, state: &[u8]) -> Res {
    match e.get(key) {
        Some(_) => eq(key, state, &b(e, key)?),
        None => eq(
            key,
            &Sha256::digest(state),
            &b(e, &format!("{key}_sha256"))?,
        ),
    }
}

/// The sender's state (§15.11) at index `to`: its group and chain, the
/// closed-form levels, its signing seed.
fn sender_state_at(
    sender: &GroupSender,
    to: u32,
    labels: &Value,
    initial: &Levels,
    seed: &[u8; 32],
) -> Result<Vec<u8>, String> {
    let mut out = vec![1, 0x22];
    out.extend(sender.group_id().as_bytes());
    out.extend(sender.chain_id().to_be_bytes());
    out.extend(to.to_be_bytes());
    out.extend(flat(&closed_form(labels, initial, to)?));
    out.extend(seed);
    Ok(out)
}

/// A receiver state at index `next` with an empty cache, encoded per §15.11.
fn receiver_state_at(group: &[u8], chain: u32, public: &[u8], next: u32, l: &Levels) -> Vec<u8> {
    let mut out = vec![1, 0x23];
    out.extend(group);
    out.extend(chain.to_be_bytes());
    out.extend(public);
    out.push(0);
    out.extend(next.to_be_bytes());
    out.extend(flat(l));
    out.extend([0, 0]);
    out
}

fn verify_group(fixtures: &Value, v: &Value) -> Res {
    match s(v, "kind")? {
        "ratchet" => verify_group_ratchet(v),
        "session" => verify_group_session(v),
        "group_sender" | "group_receiver" => verify_group_state(v),
        "negative" => verify_negative(fixtures, v),
        "store" => verify_group_store(v),
        other => Err(format!("unknown kind {other:?}")),
    }
}

/// The ratchet at each listed index: the closed form from the initial
/// levels; sotto's sender restored there encrypts the recorded message and
/// increments to the closed form of the next index; sotto's receivers jump
/// to it from index 0 and from the previous listed index.
fn verify_group_ratchet(v: &Value) -> Res {
    let labels = &v["labels"];
    let c = &v["sender"];
    let drawn = draws(c, "rng_draws")?;
    let mut rng = ReplayRng::new(drawn.clone());
    let group = b32(c, "group_id")?;
    let sender = GroupSender::new(&mut rng, GroupId::from_bytes(group));
    rng.finish()?;
    check_new_chain(c, &drawn, &sender)?;
    let initial = levels(c, "levels")?;
    let seed = b32(c, "signing_seed")?;
    let public = b(c, "signing_public")?;
    let chain = sender.chain_id();
    let dist = b(v, "distribution")?;
    eq("distribution", &sender.distribution().to_bytes(), &dist)?;
    let at0 = receiver_state_at(&group, chain, &public, 0, &initial);
    eq(
        "receiver at 0",
        &api("import", GroupReceiver::import_unauthenticated(&dist))?.to_bytes(),
        &at0,
    )?;
    let mut prev: Option<(u32, Levels)> = None;
    for st in v["states"].as_array().ok_or("states")? {
        let t = u32_of(st, "index")?;
        let at = |r: Res| r.map_err(|m| format!("index {t}: {m}"));
        let l = levels(st, "levels")?;
        at(eq(
            "levels (closed form)",
            &flat(&closed_form(labels, &initial, t)?),
            &flat(&l),
        ))?;
        at(eq(
            "message_key",
            &group_key(labels, &l)?,
            &b(st, "message_key")?,
        ))?;
        let mut state = vec![1, 0x22];
        state.extend(group);
        state.extend(chain.to_be_bytes());
        state.extend(t.to_be_bytes());
        state.extend(flat(&l));
        state.extend(seed);
        let mut s = api("GroupSender::from_bytes", GroupSender::from_bytes(&state))?;
        let pt = b(st, "plaintext")?;
        if st["message"].is_null() {
            let r = s.encrypt(&mut ReplayRng::new([]), &pt);
            if t != u32::MAX || r.as_ref().err() != Some(&Error::ChainExhausted) {
                return at(Err("only the last index has no message".into()));
            }
            prev = Some((t, l));
            continue;
        }
        let mut rng = ReplayRng::new([b(st, "salt")?]);
        let wire = api("encrypt", s.encrypt(&mut rng, &pt))?;
        at(rng.finish())?;
        let message = b(st, "message")?;
        at(eq("message", wire.as_bytes(), &message))?;
        at(check_message_bytes(labels, &message, &l, &pt, &seed))?;
        let after = s.to_bytes();
        at(eq(
            "increment (closed form)",
            &after[42..298],
            &flat(&closed_form(labels, &initial, t + 1)?),
        ))?;
        at(eq(
            "incremented index",
            &after[38..42],
            &(t + 1).to_be_bytes(),
        ))?;
        let parsed = api("parse", GroupMessage::from_bytes(&message))?;
        let mut starts = vec![(0u32, initial)];
        starts.extend(prev);
        for (from, fl) in starts {
            if t - from > MAX_GROUP_JUMP {
                continue;
            }
            let state = receiver_state_at(&group, chain, &public, from, &fl);
            let mut r = api("receiver", GroupReceiver::from_bytes(&state))?;
            let got = api("decrypt", r.decrypt(&parsed))?;
            at(eq(
                &format!("plaintext after a jump from {from}"),
                &got.plaintext,
                &pt,
            ))?;
        }
        prev = Some((t, l));
    }
    Ok(())
}

/// Ciphertext and signature of a message at the levels `l`, recomputed.
fn check_message_bytes(
    labels: &Value,
    message: &[u8],
    l: &Levels,
    pt: &[u8],
    seed: &[u8; 32],
) -> Res {
    use aes_gcm::aead::AeadInOut;
    use ed25519_dalek::Signer;
    if message.len() != 138 + pt.len() {
        return Err("message length".into());
    }
    let k = group_key(labels, l)?;
    let okm = hkdf_sha256(
        &message[42..58],
        &k,
        s(labels, "message_keys")?.as_bytes(),
        44,
    );
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(&okm[..32]).map_err(|e| e.to_string())?;
    let nonce = aes_gcm::Nonce::try_from(&okm[32..]).map_err(|_| "nonce length")?;
    let mut buf = pt.to_vec();
    let tag = cipher
        .encrypt_inout_detached(&nonce, &message[..58], buf.as_mut_slice().into())
        .map_err(|e| e.to_string())?;
    buf.extend_from_slice(&tag);
    eq("ciphertext", &message[58..message.len() - 64], &buf)?;
    let mut signed = s(labels, "signature")?.as_bytes().to_vec();
    signed.extend(&message[..message.len() - 64]);
    let sig = ed25519_dalek::SigningKey::from_bytes(seed).sign(&signed);
    eq("signature", &message[message.len() - 64..], &sig.to_bytes())
}

/// The scripted session, replayed event by event through sotto.
fn verify_group_session(v: &Value) -> Res {
    use std::collections::BTreeMap;
    let labels = &v["labels"];
    let group = GroupId::from_bytes(b32(v, "group_id")?);
    let mut alice: Option<GroupSender> = None;
    // Initial levels and signing seed per chain id.
    let mut chains: BTreeMap<u32, (Levels, [u8; 32])> = BTreeMap::new();
    let mut receivers: BTreeMap<String, GroupReceiver> = BTreeMap::new();
    let mut sent: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (i, e) in v["events"]
        .as_array()
        .ok_or("no events")?
        .iter()
        .enumerate()
    {
        let at = |r: Res| r.map_err(|m| format!("event {i}: {m}"));
        let ty = s(e, "type")?;
        if ty == "create" || ty == "rotate" {
            let drawn = draws(e, "rng_draws")?;
            let mut rng = ReplayRng::new(drawn.clone());
            let sender = if ty == "create" {
                eq("group_id", group.as_bytes(), &b(e, "group_id")?)?;
                GroupSender::new(&mut rng, group)
            } else {
                let mut sender = alice.take().ok_or("rotate before create")?;
                let d = sender.rotate(&mut rng);
                at(eq("distribution", &d.to_bytes(), &b(e, "distribution")?))?;
                sender
            };
            at(rng.finish())?;
            at(check_new_chain(e, &drawn, &sender))?;
            chains.insert(
                sender.chain_id(),
                (levels(e, "levels")?, b32(e, "signing_seed")?),
            );
            alice = Some(sender);
            continue;
        }
        let sender = alice.as_mut().ok_or("no sender yet")?;
        let (initial, seed) = *chains.get(&sender.chain_id()).ok_or("unknown chain")?;
        match ty {
            "distribution" => {
                let d = b(e, "distribution")?;
                at(eq("distribution", &sender.distribution().to_bytes(), &d))?;
                if u64::from(sender.index()) != u(e, "index")? || d.len() != 330 {
                    return at(Err("distribution index".into()));
                }
                at(eq(
                    "distribution levels",
                    &d[42..298],
                    &flat(&closed_form(labels, &initial, sender.index())?),
                ))?;
            }
            "install" => {
                let d = b(e, "distribution")?;
                let receiver = match s(e, "via")? {
                    "accept" => {
                        let session = api("session", Session::from_bytes(&b(e, "delivered_by")?))?;
                        api("accept", GroupReceiver::accept(&d, &session))?
                    }
                    "import_unauthenticated" => {
                        api("import", GroupReceiver::import_unauthenticated(&d))?
                    }
                    other => return at(Err(format!("unknown via {other:?}"))),
                };
                at(eq("receiver state", &receiver.to_bytes(), &b(e, "state")?))?;
                receivers.insert(s(e, "to")?.to_owned(), receiver);
            }
            "send" => {
                at(check_group_message(labels, e, &initial, &seed))?;
                let mut rng = ReplayRng::new(draws(e, "rng_draws")?);
                let pt = b(e, "plaintext")?;
                let wire = api("encrypt", sender.encrypt(&mut rng, &pt))?;
                at(rng.finish())?;
                at(eq("message", wire.as_bytes(), &b(e, "message")?))?;
                at(eq(
                    "sender state after",
                    &sender.to_bytes(),
                    &sender_state_at(sender, u32_of(e, "index")? + 1, labels, &initial, &seed)?,
                ))?;
                sent.insert(s(e, "message_id")?.to_owned(), wire.into_bytes());
            }
            "advance" => {
                let to = u32_of(e, "to")?;
                if to < sender.index() {
                    return at(Err("advance backwards".into()));
                }
                let state = sender_state_at(sender, to, labels, &initial, &seed)?;
                *sender = api("restore", GroupSender::from_bytes(&state))?;
            }
            "receive" => {
                let to = s(e, "to")?;
                let receiver = receivers.get_mut(to).ok_or("unknown receiver")?;
                let message = sent.get(s(e, "message_id")?).ok_or("receive before send")?;
                at(check_receiver_state(
                    e,
                    "state_before",
                    &receiver.to_bytes(),
                ))?;
                if u64::from(receiver.next_index()) != u(e, "next_before")? {
                    return at(Err("next_before".into()));
                }
                let parsed = api("parse", GroupMessage::from_bytes(message))?;
                let cached_before = receiver.skipped_key_count();
                let got = api("decrypt", receiver.decrypt(&parsed))?;
                at(eq("plaintext", &got.plaintext, &b(e, "plaintext")?))?;
                let index = u32_of(e, "index")?;
                let chain = u32_of(e, "chain_id")?;
                if got.index != index || got.chain_id != chain {
                    return at(Err("index or chain id".into()));
                }
                let identity = got.sender.identity().map(|id| hex(&id.to_bytes()[2..]));
                if identity.as_deref() != e["sender"].as_str() {
                    return at(Err("sender".into()));
                }
                at(check_receiver_state(e, "state_after", &receiver.to_bytes()))?;
                if receiver.skipped_key_count() as u64 != u(e, "skipped_keys_after")?
                    || u64::from(receiver.next_index()) != u(e, "next_after")?
                {
                    return at(Err("skipped key count or next index".into()));
                }
                let (initial, _) = chains.get(&chain).ok_or("unknown chain")?;
                let key_of =
                    |j: u32| closed_form(labels, initial, j).and_then(|l| group_key(labels, &l));
                at(eq("message_key", &key_of(index)?, &b(e, "message_key")?))?;
                let cached = e["skipped_cached"].as_array().ok_or("skipped_cached")?;
                if s(e, "key_source")? == "ratchet" {
                    let next = u32_of(e, "next_before")?;
                    let from = next.max(index.saturating_sub(32));
                    let evicted = e["evicted"].as_array().ok_or("evicted")?.len();
                    if u64::from(from) != u(e, "skip_from")?
                        || cached.len() as u64 != u64::from(index - from)
                        || u64::from(index) + 1 != u(e, "next_after")?
                        || evicted != (cached_before + cached.len()).saturating_sub(256)
                    {
                        return at(Err("jump bounds or evictions".into()));
                    }
                } else if !cached.is_empty() {
                    return at(Err("a cached key stores no keys".into()));
                }
                let first = u32_of(e, "skip_from").unwrap_or(index);
                for (j, c) in (first..).zip(cached) {
                    let c = unhex(c.as_str().ok_or("cached key is not a string")?)?;
                    at(eq(&format!("cached key {j}"), &key_of(j)?, &c))?;
                }
            }
            other => return at(Err(format!("unknown event {other:?}"))),
        }
    }
    let finals = &v["final_states"];
    let alice = alice.ok_or("no sender")?;
    eq("final alice", &alice.to_bytes(), &b(finals, "alice")?)?;
    for (name, r) in &receivers {
        check_receiver_state(finals, name, &r.to_bytes())?;
    }
    Ok(())
}

/// group_sender / group_receiver: decoded, re-encoded from the decoded
/// fields per §15.11, sealed with the recorded salt and unsealed.
fn verify_group_state(v: &Value) -> Res {
    let state = b(v, "state")?;
    let d = &v["decoded"];
    let key = StorageKey::from_bytes(b32(v, "storage_key")?);
    let sealed = b(v, "sealed")?;
    let mut rng = ReplayRng::new([b(v, "seal_salt")?]);
    let mut spec = vec![1];
    let group = b(d, "group_id")?;
    let chain = u32_of(d, "chain_id")?;
    if s(v, "kind")? == "group_sender" {
        let sender = api("GroupSender::from_bytes", GroupSender::from_bytes(&state))?;
        eq("re-encoded", &sender.to_bytes(), &state)?;
        spec.push(0x22);
        spec.extend(&group);
        spec.extend(chain.to_be_bytes());
        spec.extend(u32_of(d, "index")?.to_be_bytes());
        spec.extend(flat(&levels(d, "levels")?));
        let seed = b32(d, "signing_seed")?;
        spec.extend(seed);
        eq(
            "signing_public",
            &sender.signing_key_bytes(),
            &b(d, "signing_public")?,
        )?;
        eq(
            "signing_public from seed",
            &signing_public(&seed),
            &b(d, "signing_public")?,
        )?;
        if sender.chain_id() != chain || u64::from(sender.index()) != u(d, "index")? {
            return Err("chain id or index".into());
        }
        eq(
            "sealed",
            &api("seal", sender.seal(&key, &mut rng))?,
            &sealed,
        )?;
        let opened = api("unseal", GroupSender::unseal(&sealed, &key))?;
        eq("unsealed", &opened.to_bytes(), &state)?;
    } else {
        let receiver = api(
            "GroupReceiver::from_bytes",
            GroupReceiver::from_bytes(&state),
        )?;
        eq("re-encoded", &receiver.to_bytes(), &state)?;
        spec.push(0x23);
        spec.extend(&group);
        spec.extend(chain.to_be_bytes());
        spec.extend(b(d, "signing_public")?);
        match d["sender_identity"].as_str() {
            Some(id) => {
                spec.push(1);
                spec.extend(unhex(id)?);
            }
            None => spec.push(0),
        }
        spec.extend(u32_of(d, "next")?.to_be_bytes());
        spec.extend(flat(&levels(d, "levels")?));
        let skipped = d["skipped"].as_array().ok_or("skipped")?;
        spec.extend(
            u16::try_from(skipped.len())
                .map_err(|e| e.to_string())?
                .to_be_bytes(),
        );
        for k in skipped {
            spec.extend(u32_of(k, "index")?.to_be_bytes());
            spec.extend(b(k, "message_key")?);
        }
        let identity = receiver
            .sender()
            .identity()
            .map(|id| hex(&id.to_bytes()[2..]));
        if identity.as_deref() != d["sender_identity"].as_str()
            || receiver.chain_id() != chain
            || u64::from(receiver.next_index()) != u(d, "next")?
            || receiver.skipped_key_count() != skipped.len()
        {
            return Err("decoded fields".into());
        }
        eq(
            "signing_public",
            &receiver.signing_key_bytes(),
            &b(d, "signing_public")?,
        )?;
        eq(
            "sealed",
            &api("seal", receiver.seal(&key, &mut rng))?,
            &sealed,
        )?;
        let opened = api("unseal", GroupReceiver::unseal(&sealed, &key))?;
        eq("unsealed", &opened.to_bytes(), &state)?;
    }
    eq("state from the decoded fields", &spec, &state)?;
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

/// The error of a step (`null` for success) must be the one recorded.
fn same_error(result: Result<(), Error>, want: &Value) -> Res {
    match result {
        Ok(()) if want.is_null() => Ok(()),
        Ok(()) => Err(format!("succeeded, want {want}")),
        Err(e) if error_json(&e) == *want => Ok(()),
        Err(e) => Err(format!("got {}, want {want}", error_json(&e))),
    }
}

/// An identity as a vector spells it (64 bytes, or `null` for an
/// unauthenticated sender).
fn sender_of(v: &Value) -> Result<Sender, String> {
    match v.as_str() {
        None => Ok(Sender::Unauthenticated),
        Some(id) => {
            let mut bytes = vec![1, 0x10];
            bytes.extend(unhex(id)?);
            Ok(Sender::Authenticated(api(
                "identity",
                IdentityKey::from_bytes(&bytes),
            )?))
        }
    }
}

/// group.json `store`: a `GroupReceivers` driven through the steps; after
/// each, the error and the store's contents, oldest first.
fn verify_group_store(v: &Value) -> Res {
    let mut store = GroupReceivers::new(GroupId::from_bytes(b32(v, "group_id")?));
    let receivers = &v["receivers"];
    let steps = v["steps"].as_array().ok_or("no steps")?;
    for (i, st) in steps.iter().enumerate() {
        let at = |r: Res| r.map_err(|m| format!("step {i}: {m}"));
        let result = match s(st, "op")? {
            "insert" => {
                let state = b(receivers, s(st, "receiver")?)?;
                let receiver = api(
                    "GroupReceiver::from_bytes",
                    GroupReceiver::from_bytes(&state),
                )?;
                at(eq("receiver re-encoded", &receiver.to_bytes(), &state))?;
                store.insert(receiver)
            }
            "decrypt" => {
                let message = api("parse", GroupMessage::from_bytes(&b(st, "message")?))?;
                match store.decrypt(&message) {
                    Ok(p) => {
                        at(eq("plaintext", &p.plaintext, &b(st, "plaintext")?))?;
                        if u64::from(p.chain_id) != u(st, "chain_id")?
                            || u64::from(p.index) != u(st, "index")?
                        {
                            return Err(format!("step {i}: chain id or index"));
                        }
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            "remove_sender" => {
                let removed = store.remove_sender(&sender_of(&st["sender"])?);
                if removed as u64 != u(st, "removed")? {
                    return Err(format!("step {i}: removed {removed}"));
                }
                Ok(())
            }
            other => return Err(format!("step {i}: unknown op {other:?}")),
        };
        at(same_error(result, &st["error"]))?;
        let want = st["held_after"].as_array().ok_or("no held_after")?;
        if store.len() != want.len() {
            return Err(format!("step {i}: store holds {} chains", store.len()));
        }
        for (got, w) in store.iter().zip(want) {
            let sender = got.sender().identity().map(|id| hex(&id.to_bytes()[2..]));
            if u64::from(got.chain_id()) != u(w, "chain_id")?
                || sender.as_deref() != w["sender"].as_str()
                || u64::from(got.next_index()) != u(w, "next")?
                || got.skipped_key_count() as u64 != u(w, "cached")?
            {
                return Err(format!("step {i}: held chain {}", got.chain_id()));
            }
            at(eq(
                "held state sha256",
                &Sha256::digest(got.to_bytes()),
                &b(w, "state_sha256")?,
            ))?;
        }
    }
    Ok(())
}

/// `state` equals the vector's `key`, or its SHA-256 `key_sha256`.
fn state_matches(v: &Value, key: &str, state: &[u8]) -> Res {
    match v.get(format!("{key}_sha256")) {
        Some(_) => eq(
            &format!("{key} sha256"),
            &Sha256::digest(state),
            &b(v, &format!("{key}_sha256"))?,
        ),
        None => eq(key, state, &b(v, key)?),
    }
}

/// device.json: a device restored from `initial_state`, then each step with
/// its recorded draws; the error (`null` for success), what the call
/// returned, and the state after it (unchanged after an error).
fn verify_device(_: &Value, v: &Value) -> Res {
    let initial = b(v, "initial_state")?;
    let mut device = api("Device::from_bytes", Device::from_bytes(&initial))?;
    eq("initial state re-encoded", &device.to_bytes(), &initial)?;
    let steps = v["steps"].as_array().ok_or("no steps")?;
    for (i, st) in steps.iter().enumerate() {
        let at = |r: Res| r.map_err(|m| format!("step {i}: {m}"));
        let before = device.to_bytes().to_vec();
        let mut rng = ReplayRng::new(draws(st, "rng_draws").unwrap_or_default());
        let result = match s(st, "op")? {
            "rotate_signed_prekey" => match device.rotate_signed_prekey(&mut rng) {
                Ok(spk) => {
                    at(eq(
                        "signed_prekey",
                        &spk.to_bytes(),
                        &b(st, "signed_prekey")?,
                    ))?;
                    at(eq(
                        "current",
                        &device.signed_prekey().to_bytes(),
                        &spk.to_bytes(),
                    ))?;
                    at(api("signature", spk.verify(device.identity_key())))?;
                    Ok(())
                }
                Err(e) => Err(e),
            },
            "generate_one_time_prekeys" => {
                let count = usize::try_from(u(st, "count")?).map_err(|e| e.to_string())?;
                match device.generate_one_time_prekeys(&mut rng, count) {
                    Ok(made) => {
                        let want = st["one_time_prekeys"]
                            .as_array()
                            .ok_or("no one_time_prekeys")?;
                        if made.len() != want.len() {
                            return Err(format!("step {i}: made {} keys", made.len()));
                        }
                        for (k, w) in made.iter().zip(want) {
                            at(eq(
                                "one-time prekey",
                                &k.to_bytes(),
                                &unhex(w.as_str().ok_or("key")?)?,
                            ))?;
                        }
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            "accept" => {
                let m = api("parse", PreKeyMessage::from_vec(b(st, "message")?))?;
                match Session::accept(&mut device, &m) {
                    Ok((session, pt)) => {
                        at(eq("plaintext", &pt, &b(st, "plaintext")?))?;
                        at(eq("session", &session.to_bytes(), &b(st, "session")?))?;
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            other => return Err(format!("step {i}: unknown op {other:?}")),
        };
        at(rng.finish())?;
        let failed = result.is_err();
        at(same_error(result, &st["error"]))?;
        if failed {
            at(eq("state after the error", &device.to_bytes(), &before))?;
        }
        at(state_matches(st, "state_after", &device.to_bytes()))?;
    }
    Ok(())
}

/// Moves a session's sending chain `count` chain steps forward, through its
/// saved state (SPEC.md §10.2 layout, §8.3 chain step).
fn advance_sending_chain(session: &Session, count: u32) -> Result<Session, String> {
    let mut state = session.to_bytes().to_vec();
    let pending = match state.get(163) {
        Some(1) => 1 + 4 + 1 + if state.get(168) == Some(&1) { 4 } else { 0 },
        Some(0) => 1,
        _ => return Err("bad pending flag".into()),
    };
    let flag = 163 + pending + 32 + 32;
    if state.get(flag) != Some(&1) {
        return Err("advance without a sending chain".into());
    }
    let ck_at = flag + 1 + 32;
    let mut ck = state.get(ck_at..ck_at + 32).ok_or("short state")?.to_vec();
    for _ in 0..count {
        ck = hmac_sha256(&ck, b"sotto v1 chain next");
    }
    let ns = u32::from_be_bytes(state[ck_at + 32..ck_at + 36].try_into().map_err(|_| "ns")?);
    let ns = ns.checked_add(count).ok_or("message number overflows")?;
    state[ck_at..ck_at + 32].copy_from_slice(&ck);
    state[ck_at + 32..ck_at + 36].copy_from_slice(&ns.to_be_bytes());
    api("Session::from_bytes", Session::from_bytes(&state))
}

/// bounds.json: two devices from their draws, a session without a one-time
/// prekey, then the events; every receive's error (`null` for success),
/// plaintext, key and chain counts, and the receiver's state after it.
fn verify_bounds(_: &Value, v: &Value) -> Res {
    let mut devices = Vec::new();
    for name in ["alice", "bob"] {
        let d = &v[name];
        let mut rng = ReplayRng::new(draws(d, "rng_draws")?);
        let device = Device::generate(&mut rng);
        rng.finish()?;
        eq(
            &format!("{name} identity"),
            &device.identity_key().to_bytes(),
            &b(d, "identity_key")?,
        )?;
        devices.push(device);
    }
    let bundle = PreKeyBundle::new(*devices[1].identity_key(), devices[1].signed_prekey(), None);
    let verified = api("bundle verify", bundle.verify())?;
    let mut rng = ReplayRng::new(draws(v, "initiate_rng_draws")?);
    let mut sessions = [
        Some(api(
            "initiate",
            Session::initiate(&devices[0], &mut rng, &verified),
        )?),
        None,
    ];
    rng.finish()?;
    let mut sent: std::collections::BTreeMap<String, Vec<u8>> = Default::default();
    let party = |name: &str| match name {
        "alice" => Ok(0usize),
        "bob" => Ok(1),
        other => Err(format!("unknown party {other:?}")),
    };
    for (i, e) in v["events"]
        .as_array()
        .ok_or("no events")?
        .iter()
        .enumerate()
    {
        let at = |r: Res| r.map_err(|m| format!("event {i}: {m}"));
        match s(e, "type")? {
            "send" => {
                let p = party(s(e, "from")?)?;
                let session = sessions[p].as_mut().ok_or("sender has no session")?;
                let mut rng = ReplayRng::new(draws(e, "rng_draws")?);
                let wire = api("encrypt", session.encrypt(&mut rng, &b(e, "plaintext")?))?;
                at(rng.finish())?;
                at(eq("message", wire.as_bytes(), &b(e, "message")?))?;
                sent.insert(s(e, "message_id")?.to_owned(), wire.into_bytes());
            }
            "advance" => {
                let p = party(s(e, "from")?)?;
                let session = sessions[p].as_ref().ok_or("no session")?;
                let count = u32::try_from(u(e, "count")?).map_err(|e| e.to_string())?;
                let moved = advance_sending_chain(session, count)?;
                sessions[p] = Some(moved);
            }
            "receive" => {
                let p = party(s(e, "to")?)?;
                let wire = sent.get(s(e, "message_id")?).ok_or("receive before send")?;
                let message = api("parse", Message::from_bytes(wire))?;
                let result = match (&mut sessions[p], &message, s(e, "via")?) {
                    (None, Message::PreKey(m), "accept") => Session::accept(&mut devices[p], m)
                        .map(|(session, pt)| {
                            sessions[p] = Some(session);
                            pt
                        }),
                    (Some(session), _, "decrypt") => {
                        let before = session.to_bytes().to_vec();
                        let r = session.decrypt(&message);
                        if r.is_err() {
                            at(eq("state after the error", &session.to_bytes(), &before))?;
                        }
                        r
                    }
                    _ => return Err(format!("event {i}: cannot receive this way")),
                };
                let result = match result {
                    Ok(pt) => at(eq("plaintext", &pt, &b(e, "plaintext")?)).map(|()| Ok(()))?,
                    Err(err) => Err(err),
                };
                at(same_error(result, &e["error"]))?;
                let session = sessions[p].as_ref().ok_or("no session")?;
                if session.skipped_key_count() as u64 != u(e, "skipped_keys_after")?
                    || session.receiving_chain_count() as u64 != u(e, "receiving_chains_after")?
                {
                    return Err(format!("event {i}: key or chain count"));
                }
                at(state_matches(e, "state_after", &session.to_bytes()))?;
            }
            other => return Err(format!("event {i}: unknown type {other:?}")),
        }
    }
    Ok(())
}
