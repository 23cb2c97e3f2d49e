//! negative.json (and the other tables): each row runs on the fixtures,
//! which a row never changes, and must give exactly its error.

use serde_json::Value;

use super::Res;
use super::api::Api;
use super::json::s;
use super::script::{check, check_all};

/// Runs one row of a table on the fixtures (`load` steps).
pub(super) fn verify(api: &dyn Api, fixtures: &Value, v: &Value) -> Res {
    let mut world = check_all(api, fixtures).map_err(|e| format!("fixtures: {e}"))?;
    s(v, "mutation")?;
    check(api, &mut world, v)
}
