//! agreement.json: each vector's script, with its traces and explanations,
//! and the facts its description states (the session's key agreement).

use serde_json::Value;

use super::Res;
use super::api::Api;
use super::json::list;
use super::script::World;
use super::script::check_all;

pub(super) fn verify(api: &dyn Api, _: &World, v: &Value) -> Res {
    let world = check_all(api, &v["steps"])?;
    // The key agreement each handshake ends with (§7.1).
    if let Some(policy) = v.get("policy") {
        let pq = list(v, "steps")?
            .iter()
            .any(|s| s["op"] == "bundle" && !s["kem_prekey_id"].is_null());
        let sess =
            crate::model::Sess::decode(world.get("bob_session")?).map_err(|e| e.to_string())?;
        if sess.pq != pq {
            return Err(format!("key agreement under {policy}"));
        }
    }
    Ok(())
}
