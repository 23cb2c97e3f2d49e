//! The README's first command, as a test: the scripted chat runs to the
//! end, and the restarted client saw every message once.
#![allow(clippy::unwrap_used)]

#[test]
fn the_scripted_chat_runs_and_loses_nothing_across_a_kill() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sotto-chat"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("(bob killed)"));
    assert!(stdout.contains("[bob] alice: four, while you are away"));
    assert!(stdout.contains("exactly once"));
    assert!(stdout.contains("== done"));
}

#[test]
fn a_client_without_its_arguments_prints_the_usage() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sotto-chat"))
        .args(["client", "--relay", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage:"));
}
