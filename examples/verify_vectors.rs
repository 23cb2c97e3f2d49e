//! Verifies a test-vector directory through sotto's public API and prints
//! one PASS/FAIL line per vector; exits non-zero on any failure.
//!
//! ```text
//! cargo run --example verify_vectors -- test-vectors/
//! ```
//!
//! The verifier itself is `testkit::vectors` (one module per vector file).
#![allow(missing_docs)]

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "test-vectors".into()),
    );
    let outcomes = testkit::vectors::verify_dir(&dir);
    let mut failed = 0usize;
    for o in &outcomes {
        match &o.result {
            Ok(()) => println!("PASS {}", o.name),
            Err(e) => {
                failed += 1;
                println!("FAIL {}: {e}", o.name);
            }
        }
    }
    println!(
        "{} vectors, {} passed, {failed} failed",
        outcomes.len(),
        outcomes.len() - failed
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
