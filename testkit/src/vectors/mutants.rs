//! The verifier must be able to fail: copies of a vector file with one
//! recorded value changed (a random draw, an output, a state after, an
//! error, a trace value, an explained field, a table row's error, a
//! failure's action), each of which the verifier must reject.

use serde_json::Value;

use super::verify_file;

/// Changes the last hex digit of a string value.
fn flip(v: &mut Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    let Some(last) = s.chars().last() else {
        return false;
    };
    let next = if last == '0' { '1' } else { '0' };
    *v = Value::from(format!("{}{next}", &s[..s.len() - 1]));
    true
}

/// The first string leaf under `v` (depth first), changed.
fn flip_first(v: &mut Value) -> bool {
    match v {
        Value::String(_) => flip(v),
        Value::Array(items) => items.iter_mut().any(flip_first),
        Value::Object(map) => map.values_mut().any(flip_first),
        _ => false,
    }
}

/// Changes one recorded value of a step, if it has one of that kind.
type Mutation = fn(&mut Value) -> bool;

/// One mutant per kind of recorded value the file has: (what, file).
pub fn mutants(file: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let Some(vectors) = file["vectors"].as_array() else {
        return out;
    };
    // Draws only where the step succeeded: a step that fails after its
    // draws (NonContributoryKey) may fail whatever their values.
    let kinds: [(&str, Mutation); 7] = [
        ("rng_draws", |s| {
            s["error"].is_null() && s.get_mut("rng_draws").is_some_and(flip_first)
        }),
        ("out", |s| s.get_mut("out").is_some_and(flip_first)),
        ("states", |s| s.get_mut("states").is_some_and(flip_first)),
        ("trace", |s| s.get_mut("trace").is_some_and(flip_first)),
        ("error", |s| {
            let Some(e) = s.get_mut("error") else {
                return false;
            };
            *e = if e.is_null() {
                serde_json::json!({ "name": "AuthenticationFailed", "fields": {} })
            } else {
                Value::Null
            };
            true
        }),
        ("decoded", |s| {
            s["op"] == "explain" && s.get_mut("out").is_some_and(flip_first)
        }),
        // A failure's action (§16.6): another action for the same error.
        ("action", |s| {
            let Some(a) = s.get_mut("error").and_then(|e| e.get_mut("action")) else {
                return false;
            };
            *a = if a["kind"] == "Ignore" {
                serde_json::json!({ "kind": "RetryLater", "reason": "UnknownDevice" })
            } else {
                serde_json::json!({ "kind": "Ignore", "reason": "Malformed" })
            };
            true
        }),
    ];
    for (kind, mutate) in kinds {
        'found: for (i, v) in vectors.iter().enumerate() {
            // A script's steps, or a table row itself.
            let steps: Vec<usize> = match v["steps"].as_array() {
                Some(steps) => (0..steps.len()).collect(),
                None => vec![usize::MAX],
            };
            for j in steps {
                let mut f = file.clone();
                let target = if j == usize::MAX {
                    &mut f["vectors"][i]
                } else {
                    &mut f["vectors"][i]["steps"][j]
                };
                if mutate(target) {
                    out.push((format!("{kind} in vector {i} step {j}"), f));
                    break 'found;
                }
            }
        }
    }
    // Vectors that are not scripts (kdf.json): for the first vector of each
    // kind, every recorded field in turn.
    let mut kinds_seen: Vec<&Value> = Vec::new();
    for (i, v) in vectors.iter().enumerate() {
        if v.get("steps").is_some() || v.get("op").is_some() || kinds_seen.contains(&&v["kind"]) {
            continue;
        }
        kinds_seen.push(&v["kind"]);
        let keys: Vec<String> = v
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for k in keys {
            if matches!(k.as_str(), "name" | "kind" | "description") {
                continue;
            }
            let mut f = file.clone();
            if flip_first(&mut f["vectors"][i][&k]) {
                out.push((format!("{k} in vector {i}"), f));
            }
        }
    }
    out
}

/// Checks that the verifier rejects every mutant of `file`; returns how
/// many there were.
///
/// # Errors
///
/// The mutants the verifier accepted.
pub fn check(area: &str, file: &Value) -> Result<usize, String> {
    let all = mutants(file);
    let accepted: Vec<String> = all
        .iter()
        .filter(|(_, f)| verify_file(area, f).iter().all(|o| o.result.is_ok()))
        .map(|(what, _)| what.clone())
        .collect();
    if accepted.is_empty() {
        Ok(all.len())
    } else {
        Err(format!("{area}: the verifier accepted {accepted:?}"))
    }
}
