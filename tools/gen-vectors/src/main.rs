//! Generates `test-vectors/*.json` (protocol version 2) byte for byte from
//! fixed seeds.
//!
//! ```text
//! cargo run -p sotto-gen-vectors -- [OUT_DIR]     (default: test-vectors)
//! cargo run -p sotto-gen-vectors -- --mutants [DIR]  (the verifier rejects altered copies)
//! cargo run -p sotto-gen-vectors -- --only AREA [OUT_DIR]  (one file, while writing it)
//! ```
//!
//! Every value comes from the reference model (`testkit::model`, written
//! from SPEC.md with the primitive crates only). Most vectors are scripts
//! of SPEC.md operations ([`rec::Rec`]) recorded on the model through
//! `testkit::vectors::model_api`; each step is replayed at once through
//! every other implementation the verifier knows (sotto's public API),
//! with the recorded draws, and any byte of difference aborts with a
//! `DISAGREEMENT` message. Negative vectors are tables whose errors the
//! model must give. Finally each file is checked by the verifier
//! (`testkit::vectors`) before it is written.
//!
//! One module per vector file; to add a file, write its module, list it in
//! [`GENERATORS`], and add its verifier to `testkit::vectors`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    missing_docs
)]

mod agreement;
mod bounds;
mod common;
mod conversation;
mod device;
mod divergence;
mod forgery;
mod group;
mod group_negative;
mod group_store;
mod kdf;
mod negative;
mod persistence;
mod rec;
mod sessions;
mod sessions_negative;
mod table;

use std::path::PathBuf;

use serde_json::Value;
use testkit::vectors;

type Generator = fn() -> Value;

/// Every vector file, in order: (area, generator).
const GENERATORS: &[(&str, Generator)] = &[
    ("kdf", kdf::generate),
    ("agreement", agreement::generate),
    ("conversation", conversation::generate),
    ("persistence", persistence::generate),
    ("device", device::generate),
    ("bounds", bounds::generate),
    ("divergence", divergence::generate),
    ("negative", negative::generate),
    ("group", group::generate),
    ("group_store", group_store::generate),
    ("group_negative", group_negative::generate),
    ("sessions", sessions::generate),
    ("sessions_negative", sessions_negative::generate),
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "--mutants") {
        // `gen-vectors --mutants DIR`: the verifier must reject a copy of
        // each file with one recorded value changed, of every kind.
        let dir = PathBuf::from(args.get(1).map_or("test-vectors", String::as_str));
        for area in vectors::AREAS {
            let text = std::fs::read_to_string(dir.join(format!("{area}.json"))).unwrap();
            let file: Value = serde_json::from_str(&text).unwrap();
            let n = vectors::mutants::check(area, &file).unwrap_or_else(|e| panic!("{e}"));
            println!("{area}: the verifier rejected all {n} mutants");
        }
        return;
    }
    let (only, args) = match args.first().map(String::as_str) {
        Some("--only") => (
            args.get(1).cloned(),
            args.get(2..).unwrap_or_default().to_vec(),
        ),
        _ => (None, args),
    };
    let out = PathBuf::from(args.first().map_or("test-vectors", String::as_str));
    std::fs::create_dir_all(&out).unwrap();
    for (area, generate) in GENERATORS {
        if only.as_deref().is_some_and(|o| o != *area) {
            continue;
        }
        let value = generate();
        let failures: Vec<_> = vectors::verify_file(area, &value)
            .into_iter()
            .filter_map(|o| o.result.err().map(|e| format!("{}: {e}", o.name)))
            .collect();
        assert!(
            failures.is_empty(),
            "generated {area}.json fails verification:\n{}",
            failures.join("\n")
        );
        let mut text = serde_json::to_string_pretty(&value).unwrap();
        text.push('\n');
        std::fs::write(out.join(format!("{area}.json")), text).unwrap();
        println!("wrote {}", out.join(format!("{area}.json")).display());
    }
    if only.is_some() {
        return;
    }
    // The written files, read back, verify too.
    let outcomes = vectors::verify_dir(&out);
    let failed: Vec<_> = outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().err().map(|e| format!("{}: {e}", o.name)))
        .collect();
    assert!(
        failed.is_empty(),
        "written vectors fail verification:\n{}",
        failed.join("\n")
    );
    println!("{} vectors verified", outcomes.len());
}
