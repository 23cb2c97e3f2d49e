//! negative.json (and the other tables): each row runs on the fixtures,
//! which a row never changes, and must give exactly its error.

use serde_json::Value;

use super::Res;
use super::api::Api;
use super::json::s;
use super::script::{World, check};

/// Runs one row of a table on (a copy of) the fixtures.
pub(super) fn verify(api: &dyn Api, fixtures: &World, v: &Value) -> Res {
    s(v, "mutation")?;
    check(api, &mut fixtures.clone(), v)
}
