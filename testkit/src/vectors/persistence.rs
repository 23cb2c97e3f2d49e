//! persistence.json: plain states decoded and re-encoded byte for byte,
//! checked against the decoded fields the public API exposes; sealed
//! forms re-sealed with the recorded salt and unsealed with the storage
//! key. Also the sealed-state check group.json's saved states share.

use serde_json::Value;
use sotto::{Device, Role, Session, StorageKey};

use super::Res;
use super::json::{api, b, b32, embedded, eq, label, s};
use crate::model::primitives::{L_SEALED, key_nonce};
use crate::rng::ReplayRng;

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
        &embedded(session.local_identity()),
        &b(d, "local_identity")?,
    )?;
    eq(
        "remote identity",
        &embedded(session.remote_identity()),
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

/// The sealing key and nonce of a vector's seal (§10.4), recomputed.
pub(super) fn check_seal_keys(v: &Value) -> Res {
    label(v, "seal_info", L_SEALED)?;
    let (key, nonce) = key_nonce(&b(v, "seal_salt")?, &b(v, "storage_key")?, L_SEALED);
    eq("seal aes_key", &key, &b(v, "seal_aes_key")?)?;
    eq("seal nonce", &nonce, &b(v, "seal_nonce")?)
}

pub(super) fn verify(_: &Value, v: &Value) -> Res {
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
    check_seal_keys(v)
}
