//! bounds.json: two devices from their draws, a session without a
//! one-time prekey, then the events; every receive's error (`null` for
//! success), plaintext, key and chain counts, and the receiver's state
//! after it.

use std::collections::BTreeMap;

use serde_json::Value;
use sotto::{Device, Message, PreKeyBundle, Session};

use super::Res;
use super::json::{api, b, draws, eq, model, s, same_error, state_matches, u};
use crate::model::Sess;
use crate::rng::ReplayRng;

/// Moves a session's sending chain `count` chain steps forward, through its
/// saved state (§10.2) and the model's chain step (§8.3).
fn advance_sending_chain(session: &Session, count: u32) -> Result<Session, String> {
    let mut s = model("decode", Sess::decode(&session.to_bytes()))?;
    let sending = s
        .sending
        .as_ref()
        .ok_or("advance without a sending chain")?;
    sending
        .next
        .checked_add(count)
        .ok_or("message number overflows")?;
    s.advance(count);
    api("Session::from_bytes", Session::from_bytes(&s.encode()))
}

pub(super) fn verify(_: &Value, v: &Value) -> Res {
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
    let mut sent: BTreeMap<String, Vec<u8>> = BTreeMap::new();
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
                let moved =
                    advance_sending_chain(session, count).map_err(|m| format!("event {i}: {m}"))?;
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
