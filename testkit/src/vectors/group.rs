//! group.json: the ratchet at listed indices, the scripted session, saved
//! states, negative vectors and the store, replayed through sotto; every
//! ratchet value, key, ciphertext and signature recomputed with the model
//! (SPEC.md §15).

use std::collections::BTreeMap;

use serde_json::Value;
use sha2::{Digest, Sha256};
use sotto::group::{
    GroupId, GroupMessage, GroupReceiver, GroupReceivers, GroupSender, MAX_GROUP_JUMP, Sender,
};
use sotto::{Error, IdentityKey, Session, StorageKey};

use super::Res;
use super::json::{
    api, b, b32, draws, embedded, eq, label, levels, model, s, same_error, state_matches, u, u32_of,
};
use super::persistence::check_seal_keys;
use crate::hex::{hex, unhex};
use crate::model::group::message::{
    L_MESSAGE_KEYS, L_SIGNATURE, read_message, signed_data, unsigned,
};
use crate::model::group::ratchet::{
    L_DERIVE, L_KEY, L_STEP, closed_form, flat, key_at, message_key,
};
use crate::model::group::window::{MAX_SKIPPED, SKIP_WINDOW, Window};
use crate::model::group::{GReceiver, GSender, Levels};
use crate::model::keys::identity_key_bytes;
use crate::model::primitives::{ed25519_public, verify as verify_signature};
use crate::rng::ReplayRng;

pub(super) fn verify(fixtures: &Value, v: &Value) -> Res {
    match s(v, "kind")? {
        "ratchet" => verify_ratchet(v),
        "session" => verify_session(v),
        "group_sender" | "group_receiver" => verify_state(v),
        "negative" => super::negative::verify(fixtures, v),
        "store" => verify_store(v),
        other => Err(format!("unknown kind {other:?}")),
    }
}

/// The labels a vector lists are the specification's (§15.2).
fn check_labels(labels: &Value) -> Res {
    label(labels, "step", L_STEP)?;
    label(labels, "derive", L_DERIVE)?;
    label(labels, "key", L_KEY)?;
    label(labels, "message_keys", L_MESSAGE_KEYS)?;
    label(labels, "signature", L_SIGNATURE)
}

/// The model's sender of a chain at index `index`.
fn sender_at(
    group: [u8; 32],
    chain_id: u32,
    initial: &Levels,
    seed: [u8; 32],
    index: u32,
) -> GSender {
    GSender {
        group,
        chain_id,
        index,
        levels: closed_form(initial, index),
        seed,
    }
}

/// A receiver state at index `next` with an empty cache (§15.11).
fn receiver_state_at(
    group: [u8; 32],
    chain_id: u32,
    signing: [u8; 32],
    next: u32,
    levels: Levels,
) -> Vec<u8> {
    GReceiver {
        group,
        chain_id,
        signing,
        identity: None,
        levels,
        window: Window::at(next),
    }
    .encode()
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
        &ed25519_public(&seed),
        &b(e, "signing_public")?,
    )?;
    eq(
        "sotto signing key",
        &sender.signing_key_bytes(),
        &b(e, "signing_public")?,
    )?;
    eq("sender_state", &sender.to_bytes(), &b(e, "sender_state")?)
}

/// Every value of one sent group message, recomputed (§15.5).
fn check_message(e: &Value, chain: &GSender) -> Res {
    let salt: [u8; 16] = b(e, "salt")?
        .try_into()
        .map_err(|_| "salt is not 16 bytes")?;
    let (message, trace) = chain.encrypt_with(&salt, &b(e, "plaintext")?);
    for field in [
        "message_key",
        "aes_key",
        "nonce",
        "header",
        "ciphertext",
        "signed_data",
        "signature",
    ] {
        eq(field, &b(&trace, field)?, &b(e, field)?)?;
    }
    eq("message", &message, &b(e, "message")?)?;
    let body = unsigned(&message);
    model(
        "strict signature",
        verify_signature(&chain.public(), &signed_data(body), &message[body.len()..]),
    )
}

/// The message of a chain at its index, recomputed with the message's own
/// salt (§15.5).
fn check_message_bytes(message: &[u8], chain: &GSender, pt: &[u8]) -> Res {
    let (h, _) = model("parse", read_message(message))?;
    eq("message", message, &chain.encrypt_with(&h.salt, pt).0)
}

/// The ratchet at each listed index: the closed form from the initial
/// levels; sotto's sender restored there encrypts the recorded message and
/// increments to the closed form of the next index; sotto's receivers jump
/// to it from index 0 and from the previous listed index.
fn verify_ratchet(v: &Value) -> Res {
    check_labels(&v["labels"])?;
    let c = &v["sender"];
    let drawn = draws(c, "rng_draws")?;
    let mut rng = ReplayRng::new(drawn.clone());
    let group = b32(c, "group_id")?;
    let sender = GroupSender::new(&mut rng, GroupId::from_bytes(group));
    rng.finish()?;
    check_new_chain(c, &drawn, &sender)?;
    let initial = levels(c, "levels")?;
    let seed = b32(c, "signing_seed")?;
    let public = b32(c, "signing_public")?;
    let chain = sender.chain_id();
    let dist = b(v, "distribution")?;
    eq("distribution", &sender.distribution().to_bytes(), &dist)?;
    eq(
        "receiver at 0",
        &api("import", GroupReceiver::import_unauthenticated(&dist))?.to_bytes(),
        &receiver_state_at(group, chain, public, 0, initial),
    )?;
    let mut prev: Option<(u32, Levels)> = None;
    for st in v["states"].as_array().ok_or("states")? {
        let t = u32_of(st, "index")?;
        let at = |r: Res| r.map_err(|m| format!("index {t}: {m}"));
        let l = levels(st, "levels")?;
        let model_sender = sender_at(group, chain, &initial, seed, t);
        at(eq(
            "levels (closed form)",
            &flat(&model_sender.levels),
            &flat(&l),
        ))?;
        at(eq("message_key", &message_key(&l), &b(st, "message_key")?))?;
        let mut s = api(
            "GroupSender::from_bytes",
            GroupSender::from_bytes(&model_sender.encode()),
        )?;
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
        at(check_message_bytes(&message, &model_sender, &pt))?;
        at(eq(
            "incremented (closed form)",
            &s.to_bytes(),
            &sender_at(group, chain, &initial, seed, t + 1).encode(),
        ))?;
        let parsed = api("parse", GroupMessage::from_bytes(&message))?;
        let mut starts = vec![(0u32, initial)];
        starts.extend(prev);
        for (from, fl) in starts {
            if t - from > MAX_GROUP_JUMP {
                continue;
            }
            let state = receiver_state_at(group, chain, public, from, fl);
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

/// The scripted session, replayed event by event through sotto.
fn verify_session(v: &Value) -> Res {
    check_labels(&v["labels"])?;
    let group_id = b32(v, "group_id")?;
    let group = GroupId::from_bytes(group_id);
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
        let chain_id = sender.chain_id();
        let model_at = |index| sender_at(group_id, chain_id, &initial, seed, index);
        match ty {
            "distribution" => {
                let d = b(e, "distribution")?;
                at(eq("distribution", &sender.distribution().to_bytes(), &d))?;
                if u64::from(sender.index()) != u(e, "index")? {
                    return at(Err("distribution index".into()));
                }
                at(eq(
                    "distribution (closed form)",
                    &d,
                    &model_at(sender.index()).distribution(),
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
                let index = u32_of(e, "index")?;
                at(check_message(e, &model_at(index)))?;
                let mut rng = ReplayRng::new(draws(e, "rng_draws")?);
                let pt = b(e, "plaintext")?;
                let wire = api("encrypt", sender.encrypt(&mut rng, &pt))?;
                at(rng.finish())?;
                at(eq("message", wire.as_bytes(), &b(e, "message")?))?;
                at(eq(
                    "sender state after",
                    &sender.to_bytes(),
                    &model_at(index + 1).encode(),
                ))?;
                sent.insert(s(e, "message_id")?.to_owned(), wire.into_bytes());
            }
            "advance" => {
                let to = u32_of(e, "to")?;
                if to < sender.index() {
                    return at(Err("advance backwards".into()));
                }
                *sender = api("restore", GroupSender::from_bytes(&model_at(to).encode()))?;
            }
            "receive" => at(check_receive(e, &mut receivers, &sent, &chains))?,
            other => return at(Err(format!("unknown event {other:?}"))),
        }
    }
    let finals = &v["final_states"];
    let alice = alice.ok_or("no sender")?;
    eq("final alice", &alice.to_bytes(), &b(finals, "alice")?)?;
    for (name, r) in &receivers {
        state_matches(finals, name, &r.to_bytes())?;
    }
    Ok(())
}

/// One receive event of the session: sotto decrypts; the key, the cached
/// keys and the bounds of the jump are recomputed (§15.8).
fn check_receive(
    e: &Value,
    receivers: &mut BTreeMap<String, GroupReceiver>,
    sent: &BTreeMap<String, Vec<u8>>,
    chains: &BTreeMap<u32, (Levels, [u8; 32])>,
) -> Res {
    let receiver = receivers.get_mut(s(e, "to")?).ok_or("unknown receiver")?;
    let message = sent.get(s(e, "message_id")?).ok_or("receive before send")?;
    state_matches(e, "state_before", &receiver.to_bytes())?;
    if u64::from(receiver.next_index()) != u(e, "next_before")? {
        return Err("next_before".into());
    }
    let parsed = api("parse", GroupMessage::from_bytes(message))?;
    let cached_before = receiver.skipped_key_count();
    let got = api("decrypt", receiver.decrypt(&parsed))?;
    eq("plaintext", &got.plaintext, &b(e, "plaintext")?)?;
    let index = u32_of(e, "index")?;
    let chain = u32_of(e, "chain_id")?;
    if got.index != index || got.chain_id != chain {
        return Err("index or chain id".into());
    }
    let identity = got.sender.identity().map(|id| hex(&embedded(id)));
    if identity.as_deref() != e["sender"].as_str() {
        return Err("sender".into());
    }
    state_matches(e, "state_after", &receiver.to_bytes())?;
    if receiver.skipped_key_count() as u64 != u(e, "skipped_keys_after")?
        || u64::from(receiver.next_index()) != u(e, "next_after")?
    {
        return Err("skipped key count or next index".into());
    }
    let (initial, _) = chains.get(&chain).ok_or("unknown chain")?;
    eq(
        "message_key",
        &key_at(initial, index),
        &b(e, "message_key")?,
    )?;
    let cached = e["skipped_cached"].as_array().ok_or("skipped_cached")?;
    if s(e, "key_source")? == "ratchet" {
        let next = u32_of(e, "next_before")?;
        let from = next.max(index.saturating_sub(SKIP_WINDOW));
        let evicted = e["evicted"].as_array().ok_or("evicted")?.len();
        if u64::from(from) != u(e, "skip_from")?
            || cached.len() as u64 != u64::from(index - from)
            || u64::from(index) + 1 != u(e, "next_after")?
            || evicted != (cached_before + cached.len()).saturating_sub(MAX_SKIPPED)
        {
            return Err("jump bounds or evictions".into());
        }
    } else if !cached.is_empty() {
        return Err("a cached key stores no keys".into());
    }
    let first = u32_of(e, "skip_from").unwrap_or(index);
    for (j, c) in (first..).zip(cached) {
        let c = unhex(c.as_str().ok_or("cached key is not a string")?)?;
        eq(&format!("cached key {j}"), &key_at(initial, j), &c)?;
    }
    Ok(())
}

/// group_sender / group_receiver: decoded, re-encoded from the decoded
/// fields by the model (§15.11), sealed with the recorded salt and
/// unsealed.
fn verify_state(v: &Value) -> Res {
    let state = b(v, "state")?;
    let d = &v["decoded"];
    let key = StorageKey::from_bytes(b32(v, "storage_key")?);
    let sealed = b(v, "sealed")?;
    let mut rng = ReplayRng::new([b(v, "seal_salt")?]);
    let group = b32(d, "group_id")?;
    let chain_id = u32_of(d, "chain_id")?;
    let from_fields = if s(v, "kind")? == "group_sender" {
        let sender = api("GroupSender::from_bytes", GroupSender::from_bytes(&state))?;
        eq("re-encoded", &sender.to_bytes(), &state)?;
        let seed = b32(d, "signing_seed")?;
        eq(
            "signing_public",
            &sender.signing_key_bytes(),
            &b(d, "signing_public")?,
        )?;
        eq(
            "signing_public from seed",
            &ed25519_public(&seed),
            &b(d, "signing_public")?,
        )?;
        if sender.chain_id() != chain_id || u64::from(sender.index()) != u(d, "index")? {
            return Err("chain id or index".into());
        }
        eq(
            "sealed",
            &api("seal", sender.seal(&key, &mut rng))?,
            &sealed,
        )?;
        let opened = api("unseal", GroupSender::unseal(&sealed, &key))?;
        eq("unsealed", &opened.to_bytes(), &state)?;
        GSender {
            group,
            chain_id,
            index: u32_of(d, "index")?,
            levels: levels(d, "levels")?,
            seed,
        }
        .encode()
    } else {
        let receiver = api(
            "GroupReceiver::from_bytes",
            GroupReceiver::from_bytes(&state),
        )?;
        eq("re-encoded", &receiver.to_bytes(), &state)?;
        let identity = match d["sender_identity"].as_str() {
            Some(id) => {
                Some(<[u8; 64]>::try_from(unhex(id)?).map_err(|_| "identity is not 64 bytes")?)
            }
            None => None,
        };
        let mut window = Window::at(u32_of(d, "next")?);
        let skipped = d["skipped"].as_array().ok_or("skipped")?;
        for k in skipped {
            window
                .cache
                .insert(u32_of(k, "index")?, b32(k, "message_key")?);
        }
        let sender = receiver.sender().identity().map(|id| hex(&embedded(id)));
        if sender.as_deref() != d["sender_identity"].as_str()
            || receiver.chain_id() != chain_id
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
        GReceiver {
            group,
            chain_id,
            signing: b32(d, "signing_public")?,
            identity,
            levels: levels(d, "levels")?,
            window,
        }
        .encode()
    };
    eq("state from the decoded fields", &from_fields, &state)?;
    rng.finish()?;
    check_seal_keys(v)
}

/// An identity as a vector spells it (64 bytes, or `null` for an
/// unauthenticated sender).
fn sender_of(v: &Value) -> Result<Sender, String> {
    match v.as_str() {
        None => Ok(Sender::Unauthenticated),
        Some(id) => {
            let id: [u8; 64] = unhex(id)?
                .try_into()
                .map_err(|_| "identity is not 64 bytes")?;
            Ok(Sender::Authenticated(api(
                "identity",
                IdentityKey::from_bytes(&identity_key_bytes(&id)),
            )?))
        }
    }
}

/// group.json `store`: a `GroupReceivers` driven through the steps; after
/// each, the error and the store's contents, oldest first.
fn verify_store(v: &Value) -> Res {
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
            let sender = got.sender().identity().map(|id| hex(&embedded(id)));
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
