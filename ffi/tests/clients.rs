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
        .arg(manifest_dir().join("tests/c/sessions.c"))
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
            "alice -> bob (before rollback): new ratchet key",
            "error ok: SOTTO_ERROR_SESSION_DIVERGED -> 130",
            "alice -> bob (rotated prekeys): again",
            "error ok: SOTTO_ERROR_DUPLICATE_PREKEY_MESSAGE -> 114",
            "bob (restored from backup, reset): replay refused",
            "error ok: SOTTO_ERROR_POST_QUANTUM_REQUIRED -> 127",
            "alice -> bob (classical, opted in): classical",
            "error ok: SOTTO_ERROR_UNKNOWN_ONE_TIME_PREKEY -> 113",
            "error ok: SOTTO_ERROR_UNKNOWN_KEM_PREKEY -> 128",
            "error ok: SOTTO_ERROR_GROUP_OWNER_MISMATCH -> 131",
            "carol refuses alice's key forwarded by bob",
            "group: alice, bob and carol hold each other's sender keys",
            "alice -> group: hello group",
            "alice -> group (rotated): rotated",
            "bob -> group (restored): me too",
            "alice -> group (carol removed): without carol",
            "carol (removed) cannot read: without carol",
            "error ok: SOTTO_ERROR_INVALID_BUFFER -> 8",
            "buffers: a copy freed twice is refused",
            "threads: concurrent calls on one session ran or were refused",
            "threads: a free racing a call is refused or ends the other thread's use",
            "error ok: SOTTO_ERROR_WRONG_HANDLE -> 3",
            "error ok: SOTTO_ERROR_NULL_POINTER -> 1",
            "error ok: SOTTO_ERROR_INVALID_ARGUMENT -> 2",
            "sessions: device lists applied (alice 1, 2; bob 1, 2)",
            "sessions: all four devices compute the same safety number",
            "alice/1 -> bob/2: hello from alice/1",
            "alice/1 -> alice/2: hello from alice/1",
            "bob/1 -> alice/2: hi from bob/1",
            "sessions: bob/1 asked alice/1 to resend: lost in transit",
            "error ok: SOTTO_ERROR_RECOVERY_RATE_LIMITED -> 137",
            "sessions: bob/2, restored from a stale backup, recovered with a new session",
            "bob/2 -> alice/1: bob/2 is back",
            "sessions: group: every device holds the three other devices' chains",
            "sessions: alice/1 -> group: hello group",
            "sessions: alice/1 -> group (bob removed): without bob",
            "sessions: bob (removed) can neither read nor write: without bob",
            "sessions: bob/2 changed identity: reported, not trusted",
            "error ok: SOTTO_ERROR_IDENTITY_CHANGE_PENDING -> 135",
            "sessions: alice/2 accepted bob/2's new identity; the safety number changed",
            "sessions: bob/2 left the list, and expired after 30 days",
            "error ok: SOTTO_ERROR_INVALID_DEVICE_LIST -> 133",
            "error ok: SOTTO_ERROR_UNKNOWN_DEVICE -> 134",
            "error ok: SOTTO_ERROR_NO_SESSION -> 136",
            "error ok: SOTTO_ERROR_NOT_GROUP_MEMBER -> 138",
            "error ok: SOTTO_ERROR_TOO_MANY_GROUP_MEMBERS -> 139",
            "sessions ok",
            "conversation ok",
        ],
    );
    let checked_errors = stdout
        .lines()
        .filter(|l| l.starts_with("error ok:"))
        .count();
    assert!(
        checked_errors >= 200,
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
            "alice -> bob (classical, opted in): classical",
            "bob (restored, reset): replay refused",
            "dave: signed prekey exhausted after 1000 replayable handshakes",
            "group: alice, bob and carol hold each other's sender keys",
            "carol reads alice's chain as alice's, never as bob's",
            "carol -> group: hey both",
            "alice -> carol (out of order): part 3",
            "bob -> group (restored): me too",
            "alice -> group (rotated): without carol",
            "carol (removed) cannot read: without carol",
            "dave: an imported key upgraded by alice's own delivery",
            "bob (after errors): do not show this",
            "erin: a store of 1024 authenticated chains refuses an import",
            "buffers: a copy freed twice is refused",
            "threads: a free racing a call is refused or ends the other thread's use",
            "sessions: all four devices compute the same safety number",
            "alice/1 -> bob/2: hello from alice/1",
            "alice/1 -> alice/2: hello from alice/1",
            "sessions: 8 retry requests read, the record did not grow",
            "sessions: forged and altered bytes changed no record",
            "sessions: bob/1 asked alice/1 to resend: lost in transit",
            "sessions: bob/2, restored from a stale backup, recovered with a new session",
            "sessions: a group message kept until its distribution came: too early",
            "sessions: alice/1 -> group (bob removed): without bob",
            "sessions: bob (removed) can neither read nor write",
            "sessions: bob/2's new identity: reported, blocked until accepted; the number changed",
            "sessions: bob/2 left alice/1's list and expired after 30 days",
            "sessions ok",
            "python conversation ok",
        ],
    );
    let checked_errors = stdout
        .lines()
        .filter(|l| l.starts_with("error ok:"))
        .count();
    assert!(
        checked_errors >= 100,
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
