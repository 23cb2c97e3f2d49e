//! group.json: the scripts, and for the ratchet vector every state
//! recomputed four ways (closed form; one jump from 0, with its cost; one
//! jump from the previous listed index; increments from it where it is
//! at most 70,000 below), tied to the senders the script loads.

use serde_json::Value;

use super::Res;
use super::api::Api;
use super::json::{b, hex_items, levels, list, u, u32_of};
use super::script::World;
use super::script::check_all_then;
use crate::hex::hex;
use crate::model::group::Sender;
use crate::model::group::ratchet::{closed_form, increment, jump, message_key, split_levels};

fn ratchet_states(v: &Value) -> Res {
    let steps = list(v, "steps")?;
    let new = steps
        .iter()
        .find(|s| s["op"] == "group_sender_new")
        .ok_or("no group_sender_new step")?;
    let drawn: Vec<u8> = hex_items(new, "rng_draws")?.concat();
    let initial = split_levels(drawn.get(..256).ok_or("too few draws")?);
    if levels(v, "initial_levels")? != initial {
        return Err("initial_levels are not the first 256 bytes drawn".into());
    }
    let mut prev: Option<(u32, crate::model::group::Levels)> = None;
    for st in list(v, "states")? {
        let i = u32_of(st, "index")?;
        let want = levels(st, "levels")?;
        let closed = closed_form(&initial, i);
        if closed != want {
            return Err(format!("index {i:#x}: levels are not the closed form"));
        }
        let mut from0 = initial;
        let cost = jump(0, &mut from0, i);
        if from0 != want
            || u64::from(cost.steps) != u(&st["jump_from_0"], "steps")?
            || u64::from(cost.derives) != u(&st["jump_from_0"], "derives")?
        {
            return Err(format!("index {i:#x}: jump from 0"));
        }
        if cost.steps > 120 || cost.derives > 28 {
            return Err(format!(
                "index {i:#x}: jump costs more than 120 steps and 28 derivations"
            ));
        }
        if let Some((p, pl)) = prev {
            let mut from_prev = pl;
            jump(p, &mut from_prev, i);
            if from_prev != want {
                return Err(format!("index {i:#x}: jump from {p:#x}"));
            }
            if i - p <= 70_000 {
                let mut inc = pl;
                let mut at = p;
                while at < i {
                    at = increment(at, &mut inc);
                }
                if inc != want {
                    return Err(format!("index {i:#x}: increments from {p:#x}"));
                }
            }
        }
        if b(st, "message_key")? != message_key(&want) {
            return Err(format!("index {i:#x}: message key"));
        }
        prev = Some((i, want));
    }
    Ok(())
}

pub(super) fn verify(api: &dyn Api, _: &World, v: &Value) -> Res {
    let initial = match v.get("initial_levels") {
        Some(_) => Some(levels(v, "initial_levels")?),
        None => None,
    };
    check_all_then(api, &v["steps"], |world, step| {
        // A sender loaded at an index holds the closed form there.
        if step["op"] == "load"
            && let (Some(initial), Some(name)) = (initial, step["name"].as_str())
            && name.starts_with("sender")
        {
            let s = Sender::decode(world.get(name)?).map_err(|e| e.to_string())?;
            if s.levels != closed_form(&initial, s.index) {
                return Err(format!(
                    "the sender loaded at index {:#x} is not the closed form ({})",
                    s.index,
                    hex(&s.levels[0])
                ));
            }
        }
        Ok(())
    })?;
    if v["kind"] == "ratchet" {
        ratchet_states(v)?;
    }
    Ok(())
}
