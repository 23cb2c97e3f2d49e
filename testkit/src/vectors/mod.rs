//! The test-vector verifier, used by the tests (`cargo test`), the
//! auditor's command (`cargo run --example verify_vectors`) and the
//! generator (which checks its output before writing it). One module per
//! vector file.
//!
//! Every vector is replayed through sotto's public API. Where the public
//! API cannot reach an intermediate value (root, chain and message keys,
//! DH outputs, ratchet levels), it is recomputed with the reference model
//! ([`crate::model`]), which checks the vector against the specification
//! rather than against sotto.

mod bounds;
mod conversation;
mod device;
mod group;
mod json;
mod kdf;
mod negative;
mod persistence;
mod x3dh;

use std::path::Path;

use serde_json::{Value, json};
use sotto::Error;

/// The vector files this verifier knows, in the order it checks them.
pub const AREAS: &[&str] = &[
    "kdf",
    "x3dh",
    "conversation",
    "persistence",
    "negative",
    "group",
    "device",
    "bounds",
];

/// The outcome of one vector: `Err` says what disagreed.
pub type Res = Result<(), String>;

/// One verified vector.
pub struct Outcome {
    /// `area/name`.
    pub name: String,
    /// What the verifier found.
    pub result: Res,
}

/// The stable name and public fields of an error, as the vectors spell them.
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
        Error::UnknownSignedPreKey { id } => ("UnknownSignedPreKey", json!({ "id": id })),
        Error::UnknownOneTimePreKey { id } => ("UnknownOneTimePreKey", json!({ "id": id })),
        Error::DuplicatePreKeyMessage => ("DuplicatePreKeyMessage", json!({})),
        Error::TooManyPreKeys => ("TooManyPreKeys", json!({})),
        Error::AuthenticationFailed => ("AuthenticationFailed", json!({})),
        Error::DuplicateMessage => ("DuplicateMessage", json!({})),
        Error::TooFarAhead { skipped } => ("TooFarAhead", json!({ "skipped": skipped })),
        Error::UnexpectedRatchetKey => ("UnexpectedRatchetKey", json!({})),
        Error::SessionMismatch => ("SessionMismatch", json!({})),
        Error::ChainExhausted => ("ChainExhausted", json!({})),
        Error::UnknownGroupChain => ("UnknownGroupChain", json!({})),
        Error::GroupIndexOutOfRange { index } => {
            ("GroupIndexOutOfRange", json!({ "index": index }))
        }
        Error::GroupMismatch => ("GroupMismatch", json!({})),
        Error::GroupChainConflict => ("GroupChainConflict", json!({})),
        Error::GroupChainNotNewer => ("GroupChainNotNewer", json!({})),
        _ => ("Unknown", json!({ "debug": format!("{e:?}") })),
    };
    json!({ "name": name, "fields": fields })
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

/// Verifies every vector of one parsed file.
pub fn verify_file(area: &str, file: &Value) -> Vec<Outcome> {
    let check: fn(&Value, &Value) -> Res = match area {
        "kdf" => kdf::verify,
        "x3dh" => x3dh::verify,
        "conversation" => conversation::verify,
        "persistence" => persistence::verify,
        "negative" => negative::verify,
        "group" => group::verify,
        "device" => device::verify,
        "bounds" => bounds::verify,
        _ => {
            return vec![Outcome {
                name: format!("{area}/<file>"),
                result: Err("no verifier for this area".into()),
            }];
        }
    };
    if file["area"] != area || file["format"] != 1 {
        return vec![Outcome {
            name: format!("{area}/<file>"),
            result: Err("wrong \"area\" or \"format\"".into()),
        }];
    }
    let empty = json!({});
    let fixtures = file.get("fixtures").unwrap_or(&empty);
    let Some(vectors) = file["vectors"].as_array().filter(|v| !v.is_empty()) else {
        return vec![Outcome {
            name: format!("{area}/<file>"),
            result: Err("no vectors".into()),
        }];
    };
    vectors
        .iter()
        .map(|v| Outcome {
            name: format!("{area}/{}", v["name"].as_str().unwrap_or("<unnamed>")),
            result: check(fixtures, v),
        })
        .collect()
}
