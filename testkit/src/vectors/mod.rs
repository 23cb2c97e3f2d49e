//! The test-vector verifier, used by the tests, the auditor's command
//! (`cargo run --example verify_vectors`) and the generator (which checks
//! its output before writing it). One module per vector file.
//!
//! Most of a vector is a script ([`script`]): SPEC.md operations on named
//! states, replayed through an implementation of [`api::Api`] with the
//! recorded random draws. What no API shows (DH outputs, root, chain and
//! message keys, ratchet levels) is recomputed with the reference model
//! ([`crate::model`]), which checks the vector against the specification.

mod agreement;
pub mod api;
mod bounds;
mod conversation;
mod device;
mod divergence;
mod group;
pub mod json;
mod kdf;
pub mod layer;
mod layer_model;
mod layer_sotto;
pub mod model_api;
pub mod mutants;
mod negative;
mod persistence;
pub mod recipes;
pub mod script;
pub mod sotto_api;
pub mod trace;

use std::path::Path;

use serde_json::{Value, json};
use sotto::Error;

use self::api::Api;

/// The vector files this verifier knows, in the order it checks them.
pub const AREAS: &[&str] = &[
    "kdf",
    "agreement",
    "conversation",
    "persistence",
    "device",
    "bounds",
    "divergence",
    "negative",
    "group",
    "group_store",
    "group_negative",
    "sessions",
    "sessions_negative",
];

/// The version of the vector files' format.
pub const FORMAT: u64 = 2;

/// The outcome of one vector: `Err` says what disagreed.
pub type Res = Result<(), String>;

/// One verified vector.
pub struct Outcome {
    /// `area/name`.
    pub name: String,
    /// What the verifier found.
    pub result: Res,
}

type Check = fn(&dyn Api, &script::World, &Value) -> Res;

/// A vector that is a script and nothing else.
fn steps_only(api: &dyn Api, _: &script::World, v: &Value) -> Res {
    script::check_all(api, &v["steps"]).map(drop)
}

fn checker(area: &str) -> Option<Check> {
    Some(match area {
        "kdf" => kdf::verify,
        "agreement" => agreement::verify,
        "conversation" => conversation::verify,
        "persistence" => persistence::verify,
        "device" => device::verify,
        "bounds" => bounds::verify,
        "divergence" => divergence::verify,
        "negative" => negative::verify,
        "group" => group::verify,
        "group_store" => steps_only,
        "group_negative" => negative::verify,
        "sessions" => persistence::verify,
        "sessions_negative" => negative::verify,
        _ => return None,
    })
}

/// The implementations the verifier drives: the reference model and sotto.
pub fn implementations() -> Vec<Box<dyn Api>> {
    vec![Box::new(model_api::ModelApi), Box::new(sotto_api::SottoApi)]
}

/// Verifies every known vector file in `dir`. A missing file is a failure.
pub fn verify_dir(dir: &Path) -> Vec<Outcome> {
    let mut out = Vec::new();
    for area in AREAS {
        let path = dir.join(format!("{area}.json"));
        let parsed = std::fs::read_to_string(&path)
            .map_err(|e| format!("{}: {e}", path.display()))
            .and_then(|s| serde_json::from_str::<Value>(&s).map_err(|e| e.to_string()));
        match parsed {
            Ok(v) => out.extend(verify_file(area, &v)),
            Err(e) => out.push(Outcome {
                name: format!("{area}/<file>"),
                result: Err(e),
            }),
        }
    }
    out
}

/// Verifies every vector of one parsed file on every implementation.
pub fn verify_file(area: &str, file: &Value) -> Vec<Outcome> {
    let apis = implementations();
    verify_file_with(
        area,
        file,
        &apis.iter().map(AsRef::as_ref).collect::<Vec<_>>(),
    )
}

/// Verifies every vector of one parsed file on the given implementations.
pub fn verify_file_with(area: &str, file: &Value, apis: &[&dyn Api]) -> Vec<Outcome> {
    let whole = |e: String| {
        vec![Outcome {
            name: format!("{area}/<file>"),
            result: Err(e),
        }]
    };
    let Some(check) = checker(area) else {
        return whole("no verifier for this area".into());
    };
    if file["area"] != area || file["format"] != FORMAT {
        return whole("wrong \"area\" or \"format\"".into());
    }
    // A table's fixtures (`load` steps) are built once per implementation.
    let mut worlds = Vec::new();
    for api in apis {
        let world = match file.get("fixtures") {
            Some(f) => match script::check_all(*api, f) {
                Ok(w) => w,
                Err(e) => return whole(format!("fixtures on {}: {e}", api.name())),
            },
            None => script::World::default(),
        };
        worlds.push(world);
    }
    let Some(vectors) = file["vectors"].as_array().filter(|v| !v.is_empty()) else {
        return whole("no vectors".into());
    };
    vectors
        .iter()
        .map(|v| Outcome {
            name: format!("{area}/{}", v["name"].as_str().unwrap_or("<unnamed>")),
            result: apis
                .iter()
                .zip(&worlds)
                .try_for_each(|(api, world)| check(*api, world, v)),
        })
        .collect()
}

/// The stable name and public fields of sotto's error, as the vectors
/// spell them (SPEC.md §12).
pub fn error_json(e: &Error) -> Value {
    let (name, fields) = match *e {
        Error::Truncated => ("Truncated", json!({})),
        Error::TrailingBytes => ("TrailingBytes", json!({})),
        Error::UnsupportedVersion { found } => ("UnsupportedVersion", json!({ "found": found })),
        Error::WrongType { expected, found } => {
            ("WrongType", json!({ "expected": expected, "found": found }))
        }
        Error::InvalidEncoding => ("InvalidEncoding", json!({})),
        Error::TooLarge => ("TooLarge", json!({})),
        Error::PlaintextTooLarge => ("PlaintextTooLarge", json!({})),
        Error::InvalidPublicKey => ("InvalidPublicKey", json!({})),
        Error::NonContributoryKey => ("NonContributoryKey", json!({})),
        Error::InvalidSignature => ("InvalidSignature", json!({})),
        Error::IdentityMismatch => ("IdentityMismatch", json!({})),
        Error::RandomnessUnavailable => ("RandomnessUnavailable", json!({})),
        Error::PostQuantumRequired => ("PostQuantumRequired", json!({})),
        Error::UnknownSignedPreKey { id } => ("UnknownSignedPreKey", json!({ "id": id })),
        Error::UnknownOneTimePreKey { id } => ("UnknownOneTimePreKey", json!({ "id": id })),
        Error::UnknownKemPreKey { id } => ("UnknownKemPreKey", json!({ "id": id })),
        Error::DuplicatePreKeyMessage => ("DuplicatePreKeyMessage", json!({})),
        Error::SignedPreKeyExhausted { id } => ("SignedPreKeyExhausted", json!({ "id": id })),
        Error::TooManyPreKeys => ("TooManyPreKeys", json!({})),
        Error::AuthenticationFailed => ("AuthenticationFailed", json!({})),
        Error::DuplicateMessage => ("DuplicateMessage", json!({})),
        Error::TooFarAhead { skipped } => ("TooFarAhead", json!({ "skipped": skipped })),
        Error::SessionDiverged => ("SessionDiverged", json!({})),
        Error::SessionMismatch => ("SessionMismatch", json!({})),
        Error::ChainExhausted => ("ChainExhausted", json!({})),
        Error::UnknownGroupChain => ("UnknownGroupChain", json!({})),
        Error::GroupIndexOutOfRange { index } => {
            ("GroupIndexOutOfRange", json!({ "index": index }))
        }
        Error::GroupMismatch => ("GroupMismatch", json!({})),
        Error::GroupOwnerMismatch => ("GroupOwnerMismatch", json!({})),
        Error::GroupChainConflict => ("GroupChainConflict", json!({})),
        Error::GroupStoreFull => ("GroupStoreFull", json!({})),
        Error::InvalidDeviceList => ("InvalidDeviceList", json!({})),
        Error::UnknownDevice => ("UnknownDevice", json!({})),
        Error::IdentityChangePending => ("IdentityChangePending", json!({})),
        Error::NoSession => ("NoSession", json!({})),
        Error::RecoveryRateLimited => ("RecoveryRateLimited", json!({})),
        Error::NotGroupMember => ("NotGroupMember", json!({})),
        Error::TooManyGroupMembers => ("TooManyGroupMembers", json!({})),
        _ => ("Unknown", json!({ "debug": format!("{e:?}") })),
    };
    json!({ "name": name, "fields": fields })
}
