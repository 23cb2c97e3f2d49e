//! The model's refusals: SPEC.md §12 error names with their public fields,
//! spelled as the vectors spell them (`{"name": ..., "fields": {...}}`), so
//! the model, sotto and the vector files compare directly.

use serde_json::{Value, json};

/// An error of the model, as JSON: `{"name": ..., "fields": {...}}`.
pub type Refusal = Value;

/// A refusal without fields.
pub fn refusal(name: &str) -> Refusal {
    json!({ "name": name, "fields": {} })
}

/// A refusal with fields (an object).
pub fn refusal_with(name: &str, fields: Value) -> Refusal {
    json!({ "name": name, "fields": fields })
}
