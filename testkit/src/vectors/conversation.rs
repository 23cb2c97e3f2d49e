//! conversation.json: both devices rebuilt from their draws; every send
//! re-encrypted with the recorded draws and compared byte for byte, its
//! keys recomputed with the model; every receive decrypted (or accepted)
//! and its plaintext compared.

use std::collections::BTreeMap;

use serde_json::Value;
use sotto::{Message, PreKeyBundle, Session};

use super::Res;
use super::json::{api, b, b32, draws, eq, label, s, u};
use super::x3dh::{device_from_draws, one_time_prekeys};
use crate::model::primitives::{
    L_CHAIN_MESSAGE, L_CHAIN_NEXT, L_MESSAGE_KEYS, L_ROOT, kdf_ck, kdf_rk, key_nonce, seal, try_dh,
};
use crate::model::session::AD_LEN;
use crate::rng::ReplayRng;

/// The per-message values of a send event, recomputed (§8.2 to §8.4).
fn check_send_keys(e: &Value, labels: &Value) -> Res {
    label(labels, "root", L_ROOT)?;
    label(labels, "chain_message", L_CHAIN_MESSAGE)?;
    label(labels, "chain_next", L_CHAIN_NEXT)?;
    label(labels, "message_keys", L_MESSAGE_KEYS)?;
    let ck = b32(e, "chain_key")?;
    let (mk, next) = kdf_ck(&ck);
    eq("message_key", &mk, &b(e, "message_key")?)?;
    eq("next_chain_key", &next, &b(e, "next_chain_key")?)?;
    let (key, nonce) = key_nonce(&b(e, "salt")?, &mk, L_MESSAGE_KEYS);
    eq("aes_key", &key, &b(e, "aes_key")?)?;
    eq("nonce", &nonce, &b(e, "nonce")?)?;
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
    if !aad.ends_with(prefix) || aad.len() != AD_LEN + prefix.len() {
        return Err("aad is not AD || every message byte before the ciphertext".into());
    }
    eq(
        "ciphertext recomputed",
        &seal(&key, &nonce, &aad, &b(e, "plaintext")?),
        &ciphertext,
    )?;
    if let Some(r) = e.get("dh_ratchet").filter(|r| !r.is_null()) {
        let dh = try_dh(
            &b32(r, "ratchet_private")?,
            &b32(r, "remote_ratchet_public")?,
        )
        .map_err(|e| format!("DH: {e}"))?;
        eq("dh_ratchet dh_output", &dh, &b(r, "dh_output")?)?;
        let (rk, ck_out) = kdf_rk(&b32(r, "root_key_in")?, &dh);
        eq("dh_ratchet root_key_out", &rk, &b(r, "root_key_out")?)?;
        eq("dh_ratchet chain_key_out", &ck_out, &b(r, "chain_key_out")?)?;
        eq("first chain key", &ck_out, &ck)?;
    }
    Ok(())
}

pub(super) fn verify(_: &Value, v: &Value) -> Res {
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
    let mut sent: BTreeMap<String, (Vec<u8>, Vec<u8>)> = BTreeMap::new();
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
