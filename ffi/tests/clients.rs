//! Runs the C and Python clients against the libraries cargo built for this
//! test run.
//!
//! Building the lib for integration tests makes all its crate types; with
//! staticlib and cdylib in the list cargo writes them to the profile's
//! `deps/` without a hash (a plain `cargo build` also copies them one level
//! up). Calling `cargo build` from here instead would deadlock on the build
//! directory lock that `cargo test` holds.
#![allow(clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The artifact `name` built alongside this test binary.
fn artifact(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let deps = exe.parent().expect("deps directory");
    let candidates = [
        deps.join(name),
        deps.parent().expect("profile directory").join(name),
    ];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| panic!("{name} not found in {candidates:?}"))
}

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn check(what: &str, output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn assert_transcript(stdout: &str, lines: &[&str]) {
    for line in lines {
        assert!(
            stdout.lines().any(|l| l == *line),
            "missing line {line:?} in:\n{stdout}"
        );
    }
}

#[test]
fn c_client_conversation() {
    let lib = artifact("libsotto_ffi.a");
    let exe = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sotto-ffi-conversation");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let compile = Command::new(&cc)
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I"])
        .arg(manifest_dir().join("include"))
        .arg(manifest_dir().join("tests/c/conversation.c"))
        .arg(&lib)
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&exe)
        .output()
        .unwrap_or_else(|e| panic!("running {cc}: {e}"));
    check("compiling conversation.c", &compile);

    let run = Command::new(&exe).output().expect("running the C client");
    let stdout = check("the C client", &run);
    assert_transcript(
        &stdout,
        &[
            "alice -> bob: hello Bob",
            "bob -> alice: hi Alice",
            "bob -> alice (out of order): three",
            "alice -> bob (restored): still here",
            "alice -> bob (rotated prekey): again",
            "alice -> group: hello group",
            "bob -> group: hi everyone",
            "bob -> group (restored): me too",
            "alice -> group (rotated): rotated",
            "error ok: SOTTO_ERROR_UNKNOWN_GROUP_CHAIN -> 122",
            "error ok: SOTTO_ERROR_INVALID_SIGNATURE -> 110",
            "error ok: SOTTO_ERROR_AUTHENTICATION_FAILED -> 116",
            "error ok: SOTTO_ERROR_WRONG_HANDLE -> 3",
            "error ok: SOTTO_ERROR_NULL_POINTER -> 1",
            "error ok: SOTTO_ERROR_INVALID_ARGUMENT -> 2",
            "conversation ok",
        ],
    );
    let checked_errors = stdout
        .lines()
        .filter(|l| l.starts_with("error ok:"))
        .count();
    assert!(
        checked_errors >= 40,
        "only {checked_errors} error paths ran"
    );
}

#[test]
fn python_client_conversation() {
    let lib = artifact("libsotto_ffi.so");
    let run = Command::new("python3")
        .arg(manifest_dir().join("tests/python/conversation.py"))
        .arg(&lib)
        .output()
        .expect("running python3");
    let stdout = check("the Python client", &run);
    assert_transcript(
        &stdout,
        &[
            "alice -> bob: hello Bob",
            "bob -> alice: hi Alice",
            "bob -> alice: after restore",
            "error ok: WRONG_HANDLE -> 3 (device must be a device handle, got a session handle)",
            "group: alice, bob and carol hold each other's sender keys",
            "carol -> group: hey both",
            "alice -> carol (out of order): part 3",
            "bob -> group (restored): me too",
            "alice -> group (rotated): without carol",
            "error ok: UNKNOWN_GROUP_CHAIN -> 122 (unknown group or sender chain)",
            "carol (removed) cannot read: without carol",
            "error ok: INVALID_SIGNATURE -> 110 (signature verification failed)",
            "error ok: WRONG_HANDLE -> 3 (sender must be a group sender handle, got a group receiver handle)",
            "error ok: NULL_POINTER -> 1 (delivered_by is NULL)",
            "error ok: PLAINTEXT_TOO_LARGE -> 107 (plaintext is larger than the maximum)",
            "bob (after errors): do not show this",
            "python conversation ok",
        ],
    );
    let checked_errors = stdout
        .lines()
        .filter(|l| l.starts_with("error ok:"))
        .count();
    assert!(
        checked_errors >= 60,
        "only {checked_errors} error paths ran"
    );
}

/// The error table in README.md lists every code of the header, with the
/// same value.
#[test]
fn readme_error_table_matches_header() {
    let header = std::fs::read_to_string(manifest_dir().join("include/sotto.h")).expect("header");
    let readme = std::fs::read_to_string(manifest_dir().join("README.md")).expect("README");
    let mut codes = 0;
    for line in header.lines() {
        let Some((name, value)) = line.trim().trim_end_matches(',').split_once(" = ") else {
            continue;
        };
        if !name.starts_with("SOTTO_ERROR_") {
            continue;
        }
        codes += 1;
        let row = format!("| {value} | `{name}` |");
        assert!(readme.contains(&row), "README.md lacks the row {row:?}");
    }
    assert!(codes >= 30, "found only {codes} codes in the header");
}
