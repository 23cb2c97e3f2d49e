//! x3dh.json: both devices rebuilt from their draws, the bundle encoded
//! and verified, the session started with the explicit base key, and the
//! first message encrypted and accepted. DH outputs, KDF input, SK and AD
//! are recomputed with the model.

use serde_json::Value;
use sotto::{Device, Message, OneTimePreKey, PreKeyBundle, Session};

use super::Res;
use super::json::{api, b, b32, draws, embedded, eq, label, u};
use crate::model::keys::{fingerprint, spk_signed_data};
use crate::model::primitives::{L_FINGERPRINT, L_ROOT, L_SPK, L_X3DH, kdf_rk, try_dh, x_pub};
use crate::model::x3dh::X3dh;
use crate::rng::ReplayRng;

fn dh(private: &[u8; 32], public: &[u8; 32]) -> Result<[u8; 32], String> {
    try_dh(private, public).map_err(|e| format!("DH: {e}"))
}

/// A device rebuilt from its recorded draws, checked against the vector.
pub(super) fn device_from_draws(v: &Value) -> Result<Device, String> {
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
        &x_pub(&b32(v, "x25519_private")?),
        &b(v, "x25519_public")?,
    )?;
    label(v, "fingerprint_info", L_FINGERPRINT)?;
    let ik: [u8; 64] = embedded(id).try_into().map_err(|_| "identity length")?;
    eq(
        "fingerprint recomputed",
        &fingerprint(&ik),
        &b(v, "fingerprint")?,
    )?;
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
    label(spk, "signature_info", L_SPK)?;
    let id_ = u32::try_from(u(spk, "id")?).map_err(|e| e.to_string())?;
    eq(
        "signed_prekey signed_data",
        &spk_signed_data(&b32(v, "x25519_public")?, id_, &b32(spk, "public")?),
        &b(spk, "signed_data")?,
    )?;
    Ok(device)
}

/// The device's one-time prekeys, made from their recorded draws.
pub(super) fn one_time_prekeys(
    device: &mut Device,
    v: &Value,
) -> Result<Vec<OneTimePreKey>, String> {
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

pub(super) fn verify(_: &Value, v: &Value) -> Res {
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

    // The X3DH values, recomputed.
    let ek = b32(base, "private")?;
    let a_ik = b32(&v["alice"], "x25519_private")?;
    let b_ik = b32(&v["bob"], "x25519_public")?;
    let spk = b32(&v["bob"]["signed_prekey"], "public")?;
    let mut dhs = Vec::new();
    for (name, d) in [
        ("dh1", dh(&a_ik, &spk)?),
        ("dh2", dh(&ek, &b_ik)?),
        ("dh3", dh(&ek, &spk)?),
    ] {
        eq(name, &d, &b(v, name)?)?;
        dhs.push(d);
    }
    match opk {
        Some(opk) => {
            let dh4 = dh(&ek, &opk.key_bytes())?;
            eq("dh4", &dh4, &b(v, "dh4")?)?;
            dhs.push(dh4);
        }
        None if v["dh4"].is_null() => {}
        None => return Err("dh4 given without a one-time prekey".into()),
    }
    eq("kdf_salt", &[0u8; 32], &b(v, "kdf_salt")?)?;
    label(v, "info", L_X3DH)?;
    let x = X3dh::new(dhs);
    eq("kdf_input", &x.ikm, &b(v, "kdf_input")?)?;
    eq("sk", &x.sk, &b(v, "sk")?)?;
    let mut ad = embedded(alice.identity_key());
    ad.extend(embedded(bob.identity_key()));
    eq("associated_data", &ad, &b(v, "associated_data")?)?;

    let first = &v["first_message"];
    let mut rng = ReplayRng::new([b(first, "ratchet_private")?, b(first, "salt")?]);
    let plaintext = b(first, "plaintext")?;
    let wire = api("encrypt", session.encrypt(&mut rng, &plaintext))?;
    rng.finish()?;
    eq("first message", wire.as_bytes(), &b(first, "message")?)?;
    let d = dh(&b32(first, "ratchet_private")?, &spk)?;
    eq("first ratchet dh_output", &d, &b(first, "dh_output")?)?;
    label(first, "root_info", L_ROOT)?;
    let (rk, ck) = kdf_rk(&x.sk, &d);
    eq("first root_key", &rk, &b(first, "root_key")?)?;
    eq("first chain_key", &ck, &b(first, "chain_key")?)?;

    let Message::PreKey(m) = api("parse", Message::from_bytes(wire.as_bytes()))? else {
        return Err("first message is not a prekey message".into());
    };
    let (_, got) = api("accept", Session::accept(&mut bob, &m))?;
    eq("accepted plaintext", &got, &plaintext)
}
