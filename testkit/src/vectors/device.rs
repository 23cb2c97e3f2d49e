//! device.json: a device restored from `initial_state`, then each step with
//! its recorded draws; the error (`null` for success), what the call
//! returned, and the state after it (unchanged after an error).

use serde_json::Value;
use sotto::{Device, PreKeyMessage, Session};

use super::Res;
use super::json::{api, b, draws, eq, s, same_error, state_matches, u};
use crate::hex::unhex;
use crate::rng::ReplayRng;

pub(super) fn verify(_: &Value, v: &Value) -> Res {
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
