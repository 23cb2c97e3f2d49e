//! conversation.json: the script, with its traces and explanations.

use serde_json::Value;

use super::Res;
use super::api::Api;
use super::script::World;
use super::script::check_all;

pub(super) fn verify(api: &dyn Api, _: &World, v: &Value) -> Res {
    check_all(api, &v["steps"]).map(drop)
}
