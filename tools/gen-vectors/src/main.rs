//! Generates `test-vectors/*.json` byte for byte from fixed seeds.
//!
//! ```text
//! cargo run -p sotto-gen-vectors -- [OUT_DIR]     (default: test-vectors)
//! ```
//!
//! Every intermediate value comes from the reference model
//! (`testkit::model`, written from SPEC.md with the primitive crates only).
//! sotto's public API is then driven with the same seeded RNG (through a
//! recording wrapper) and must draw the same bytes and produce the same
//! messages, plaintexts and saved states; any difference aborts with a
//! `DISAGREEMENT` message. Negative vectors are tables whose errors the
//! model must give. Finally each file is checked by the verifier
//! (`testkit::vectors`) before it is written.
//!
//! One module per vector file; to add a file, write its module, list it in
//! [`GENERATORS`], and add its verifier to `testkit::vectors::AREAS`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    missing_docs
)]

mod bounds;
mod conversation;
mod device;
mod forgery;
mod group;
mod kdf;
mod lockstep;
mod negative;
mod persistence;
mod table;
mod x3dh;

use std::path::PathBuf;

use serde_json::Value;
use testkit::vectors;

type Generator = fn() -> Value;

/// Every vector file, in order: (area, generator).
const GENERATORS: &[(&str, Generator)] = &[
    ("kdf", kdf::generate),
    ("x3dh", x3dh::generate),
    ("conversation", conversation::generate),
    ("persistence", persistence::generate),
    ("negative", negative::generate),
    ("group", group::generate),
    ("device", device::generate),
    ("bounds", bounds::generate),
];

fn main() {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "test-vectors".into()),
    );
    std::fs::create_dir_all(&out).unwrap();
    for (area, generate) in GENERATORS {
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
    // The written files, read back, verify too.
    let outcomes = vectors::verify_dir(&out);
    assert!(
        outcomes.iter().all(|o| o.result.is_ok()),
        "written vectors fail verification"
    );
    println!("{} vectors verified", outcomes.len());
}
