//! Every file of `test-vectors/` verified on the reference model and on
//! sotto's public API (`testkit::vectors`), and the verifier's mutants: a
//! copy of each file with one recorded value changed (a draw, an output, a
//! state, an error, a trace value, an explained field) must fail. One test
//! per file and check, so that they run in parallel and name the file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;
use testkit::vectors;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("test-vectors")
}

fn load(area: &str) -> Value {
    let path = dir().join(format!("{area}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Every vector of the file passes on both implementations, and each one
/// was checked (no vector skipped, none counted twice).
fn verify(area: &str) {
    let file = load(area);
    let outcomes = vectors::verify_file(area, &file);
    let failures: Vec<String> = outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().err().map(|e| format!("{}: {e}", o.name)))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(
        outcomes.len(),
        file["vectors"].as_array().unwrap().len(),
        "{area}: one outcome per vector"
    );
}

/// The verifier rejects every mutant of the file.
fn mutants(area: &str) {
    let n = vectors::mutants::check(area, &load(area)).unwrap_or_else(|e| panic!("{e}"));
    // At least one mutant per kind of recorded value a script has (the
    // tables have rows, not steps: draws, errors and states).
    assert!(n >= 3, "{area}: only {n} mutants");
}

macro_rules! areas {
    ($($area:ident),* $(,)?) => {
        /// The files this test file covers, in `vectors::AREAS` order.
        const TESTED: &[&str] = &[$(stringify!($area)),*];
        $(
            mod $area {
                #[test]
                fn verifies_on_the_model_and_on_sotto() {
                    super::verify(stringify!($area));
                }

                #[test]
                fn verifier_rejects_every_mutant() {
                    super::mutants(stringify!($area));
                }
            }
        )*
    };
}

areas!(
    kdf,
    agreement,
    conversation,
    persistence,
    device,
    bounds,
    divergence,
    negative,
    group,
    group_store,
    group_negative,
    sessions,
    sessions_negative,
);

#[test]
fn every_vector_file_is_verified_and_tested() {
    assert_eq!(TESTED, vectors::AREAS, "a test per verified area");
    let on_disk: BTreeSet<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter_map(|n| n.strip_suffix(".json").map(str::to_owned))
        .collect();
    let known: BTreeSet<String> = vectors::AREAS.iter().map(|a| (*a).to_owned()).collect();
    assert_eq!(on_disk, known, "every file in test-vectors/ has a verifier");
}

/// The counts in `test-vectors/README.md`'s table are the files' counts.
#[test]
fn readme_counts_are_the_files() {
    let readme = std::fs::read_to_string(dir().join("README.md")).unwrap();
    let mut listed = 0;
    for area in vectors::AREAS {
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{area}.json` |")))
            .unwrap_or_else(|| panic!("no README row for {area}.json"));
        let count: usize = row
            .split('|')
            .nth(2)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let actual = load(area)["vectors"].as_array().unwrap().len();
        assert_eq!(count, actual, "README count of {area}.json");
        listed += actual;
    }
    assert!(listed > 0);
}

/// The directory form (`cargo run --example verify_vectors`) fails on a
/// missing file rather than skipping it.
#[test]
fn verify_dir_reports_a_missing_file() {
    let empty = std::env::temp_dir().join(format!("sotto-no-vectors-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let outcomes = vectors::verify_dir(&empty);
    std::fs::remove_dir(&empty).unwrap();
    assert_eq!(outcomes.len(), vectors::AREAS.len());
    assert!(outcomes.iter().all(|o| o.result.is_err()));
}
