//! The test-vector verifier (being rewritten for protocol version 2).

mod json;

use std::path::Path;

use serde_json::{Value, json};
use sotto::Error;

/// The vector files this verifier knows, in the order it checks them.
pub const AREAS: &[&str] = &[];

/// The outcome of one vector: `Err` says what disagreed.
pub type Res = Result<(), String>;

/// One verified vector.
pub struct Outcome {
    /// `area/name`.
    pub name: String,
    /// What the verifier found.
    pub result: Res,
}

/// Verifies every known vector file in `dir`.
pub fn verify_dir(_dir: &Path) -> Vec<Outcome> {
    Vec::new()
}

/// Verifies every vector of one parsed file.
pub fn verify_file(_area: &str, _file: &Value) -> Vec<Outcome> {
    Vec::new()
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
