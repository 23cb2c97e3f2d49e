//! Runs every vector in `test-vectors/` through sotto's public API, and
//! checks that the verifier notices a vector that is wrong.

use std::path::Path;

use testkit::{rng, vectors};

use serde_json::{Value, json};

fn load(area: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("test-vectors/{area}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn check_area(area: &str) {
    let outcomes = vectors::verify_file(area, &load(area));
    assert!(
        outcomes.len() > 1 || area == "conversation",
        "{area}: too few vectors"
    );
    let failures: Vec<String> = outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().err().map(|e| format!("{}: {e}", o.name)))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn kdf_vectors() {
    check_area("kdf");
}

#[test]
fn x3dh_vectors() {
    check_area("x3dh");
}

#[test]
fn conversation_vectors() {
    check_area("conversation");
}

#[test]
fn persistence_vectors() {
    check_area("persistence");
}

#[test]
fn negative_vectors() {
    check_area("negative");
}

#[test]
fn group_vectors() {
    check_area("group");
}

#[test]
fn device_vectors() {
    check_area("device");
}

#[test]
fn bounds_vectors() {
    check_area("bounds");
}

#[test]
fn verify_dir_covers_every_area() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("test-vectors");
    let outcomes = vectors::verify_dir(&dir);
    for area in vectors::AREAS {
        assert!(
            outcomes
                .iter()
                .any(|o| o.name.starts_with(&format!("{area}/")))
        );
    }
    assert!(outcomes.iter().all(|o| o.result.is_ok()));
}

/// Flips one nibble of a hex string field.
fn corrupt(v: &mut Value) {
    let s = v.as_str().unwrap();
    let last = if s.ends_with('0') { '1' } else { '0' };
    *v = Value::from(format!("{}{last}", &s[..s.len() - 1]));
}

fn fails(area: &str, file: &Value) -> bool {
    vectors::verify_file(area, file)
        .iter()
        .any(|o| o.result.is_err())
}

#[test]
fn verifier_rejects_corrupted_vectors() {
    let mut f = load("conversation");
    corrupt(&mut f["vectors"][0]["events"][7]["message"]);
    assert!(fails("conversation", &f));

    let mut f = load("conversation");
    corrupt(&mut f["vectors"][0]["events"][3]["plaintext"]);
    assert!(fails("conversation", &f));

    let mut f = load("x3dh");
    corrupt(&mut f["vectors"][0]["sk"]);
    assert!(fails("x3dh", &f));

    let mut f = load("x3dh");
    corrupt(&mut f["vectors"][1]["base_key"]["private"]);
    assert!(fails("x3dh", &f));

    let mut f = load("kdf");
    corrupt(&mut f["vectors"][0]["chain_key"]);
    assert!(fails("kdf", &f));

    let mut f = load("persistence");
    corrupt(&mut f["vectors"][1]["sealed"]);
    assert!(fails("persistence", &f));

    let mut f = load("negative");
    f["vectors"][0]["error"]["name"] = Value::from("TrailingBytes");
    assert!(fails("negative", &f));

    let mut f = load("group");
    corrupt(&mut f["vectors"][0]["states"][5]["levels"][3]);
    assert!(fails("group", &f));

    let mut f = load("group");
    corrupt(&mut f["vectors"][0]["states"][9]["message"]);
    assert!(fails("group", &f));

    let group = load("group");
    let events = group["vectors"][1]["events"].as_array().unwrap();
    let jump = events
        .iter()
        .position(|e| e["type"] == "receive" && e["skipped_cached"].as_array().unwrap().len() == 32)
        .unwrap();
    let send = events.iter().position(|e| e["type"] == "send").unwrap();
    let mut f = group.clone();
    corrupt(&mut f["vectors"][1]["events"][jump]["skipped_cached"][31]);
    assert!(fails("group", &f));

    let mut f = group.clone();
    corrupt(&mut f["vectors"][1]["events"][send]["signed_data"]);
    assert!(fails("group", &f));

    let mut f = group.clone();
    corrupt(&mut f["vectors"][1]["events"][send]["rng_draws"][0]);
    assert!(fails("group", &f));

    let mut f = group.clone();
    let negative = f["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .position(|v| v["name"] == "jump_past_max")
        .unwrap();
    f["vectors"][negative]["error"]["fields"]["index"] = Value::from(1);
    assert!(fails("group", &f));

    // The later vectors: a step's error, a held chain, a late message.
    let mut f = load("device");
    f["vectors"][0]["steps"][5]["error"] = Value::Null;
    assert!(fails("device", &f));

    let mut f = load("device");
    corrupt(&mut f["vectors"][2]["steps"][1]["one_time_prekeys"][1]);
    assert!(fails("device", &f));

    let mut f = load("bounds");
    let late = f["vectors"][0]["events"]
        .as_array()
        .unwrap()
        .iter()
        .rposition(|e| e["type"] == "receive" && e["error"].is_null())
        .unwrap();
    f["vectors"][0]["events"][late]["error"] = json!({ "name": "DuplicateMessage", "fields": {} });
    assert!(fails("bounds", &f));

    let mut f = load("bounds");
    let advance = f["vectors"][1]["events"]
        .as_array()
        .unwrap()
        .iter()
        .position(|e| e["type"] == "advance")
        .unwrap();
    f["vectors"][1]["events"][advance]["count"] = Value::from(98);
    assert!(fails("bounds", &f));

    let mut f = group.clone();
    let store = f["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .position(|v| v["kind"] == "store")
        .unwrap();
    f["vectors"][store]["steps"][10]["held_after"][0]["cached"] = Value::from(0);
    assert!(fails("group", &f));

    let mut f = load("negative");
    f["vectors"][0]["area"] = Value::from("kdf");
    f["area"] = Value::from("kdf");
    assert!(fails("negative", &f));
}

#[test]
fn replay_rng_reports_wrong_draw_counts() {
    let mut rng = rng::ReplayRng::new([vec![1u8; 32]]);
    let _ = sotto::Device::generate(&mut rng);
    assert!(rng.finish().is_err());
    let rng = rng::ReplayRng::new([vec![1u8; 8]]);
    assert!(rng.finish().is_err());
}
