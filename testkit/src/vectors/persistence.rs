//! persistence.json: the scripts (explanations, seals with their traces,
//! openings, refusals); an opened state must be the state sealed.

use serde_json::Value;

use super::Res;
use super::api::Api;
use super::json::s;
use super::script::World;
use super::script::check_all_then;

pub(super) fn verify(api: &dyn Api, _: &World, v: &Value) -> Res {
    check_all_then(api, &v["steps"], |world, step| {
        if step["op"] == "unseal" && step["error"].is_null() {
            let opened = s(step, "state")?;
            let original = opened
                .strip_suffix("_opened")
                .ok_or("an opened state's name")?;
            if world.get(original)? != world.get(opened)? {
                return Err(format!("{opened} is not {original}"));
            }
        }
        Ok(())
    })
    .map(drop)
}
