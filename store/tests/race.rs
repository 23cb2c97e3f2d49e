//! Two processes on one database (SPEC.md §17.8): an app and its
//! notification extension both open Bob's store and race through the same
//! mailbox of messages from Alice, each decrypting every message it can and
//! answering some, for thousands of operations. Afterwards: every message
//! is in the inbox exactly once, every answer decrypts at Alice with no
//! (ratchet key, number) pair twice, and the session's generation counts
//! every committed operation: no update was lost.
//!
//! `SOTTO_RACE_MESSAGES` sets the mailbox size (default 1200).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{TempDir, key, pair};
use sotto::Message;
use sotto_store::{Error, Store};

/// The racing process: `role` 1 or 2.
fn child(dir: &Path, role: u64) {
    let mailbox: Vec<Vec<u8>> = std::fs::read_to_string(dir.join("mailbox"))
        .unwrap()
        .lines()
        .map(unhex)
        .collect();
    let mut bob = Store::open(dir.join("bob.db"), &key(2)).unwrap();
    while !dir.join("go").exists() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let (mut decrypted, mut duplicates, mut answers) = (0u64, 0u64, 0u64);
    for (i, message) in mailbox.iter().enumerate() {
        match bob.receive(b"alice", message) {
            Ok(_) => {
                decrypted += 1;
                if decrypted % 3 == 0 {
                    let text = format!("answer {role}/{i}");
                    bob.encrypt(b"alice", text.as_bytes(), Some(role * 1_000_000 + i as u64))
                        .unwrap();
                    answers += 1;
                }
            }
            Err(Error::Protocol(sotto::Error::DuplicateMessage)) => duplicates += 1,
            Err(e) => panic!("process {role}, message {i}: {e:?}"),
        }
    }
    let stats = bob.stats();
    std::fs::write(
        dir.join(format!("result.{role}")),
        format!(
            "{decrypted} {duplicates} {answers} {} {} {} {}",
            stats.committed, stats.conflicts, stats.locked_attempts, stats.busy_retries
        ),
    )
    .unwrap();
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn parent() {
    let started = Instant::now();
    let n: usize = std::env::var("SOTTO_RACE_MESSAGES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1200);
    let dir = TempDir::new("race");
    let (mut alice, mut bob) = pair(&dir);
    let reply = bob.encrypt(b"alice", b"ready", None).unwrap();
    alice.receive(b"bob", &reply.payload).unwrap();
    bob.ack_sent(reply.id).unwrap();
    for entry in bob.inbox().unwrap() {
        bob.ack_read(entry.id).unwrap();
    }
    let generation_before = bob.session_status(b"alice").unwrap().unwrap().generation;
    drop(bob);

    let mut mailbox = String::new();
    for i in 0..n {
        let out = alice
            .encrypt(b"bob", format!("message {i}").as_bytes(), None)
            .unwrap();
        mailbox.push_str(&hex(&out.payload));
        mailbox.push('\n');
    }
    std::fs::write(dir.file("mailbox"), mailbox).unwrap();

    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = [1u64, 2]
        .iter()
        .map(|role| {
            Command::new(&exe)
                .env("SOTTO_RACE_CHILD", dir.path())
                .env("SOTTO_RACE_ROLE", role.to_string())
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    std::fs::write(dir.file("go"), b"").unwrap();
    let race_started = Instant::now();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let race_time = race_started.elapsed();

    let results: Vec<Vec<u64>> = [1, 2]
        .iter()
        .map(|role| {
            std::fs::read_to_string(dir.file(&format!("result.{role}")))
                .unwrap()
                .split_whitespace()
                .map(|x| x.parse().unwrap())
                .collect()
        })
        .collect();
    let decrypted: u64 = results.iter().map(|r| r[0]).sum();
    let answers: u64 = results.iter().map(|r| r[2]).sum();
    let attempts: u64 = results.iter().map(|r| r[0] + r[1] + r[2]).sum();
    let conflicts: u64 = results.iter().map(|r| r[4]).sum();
    let locked: u64 = results.iter().map(|r| r[5]).sum();
    let busy: u64 = results.iter().map(|r| r[6]).sum();

    // Every message decrypted exactly once: once in the inbox, and the two
    // processes' successes add up to the mailbox.
    let bob = Store::open(dir.file("bob.db"), &key(2)).unwrap();
    bob.verify().unwrap();
    let inbox = bob.inbox().unwrap();
    let texts: HashSet<Vec<u8>> = inbox.iter().map(|e| e.plaintext.to_vec()).collect();
    assert_eq!(inbox.len(), n);
    assert_eq!(texts.len(), n);
    assert_eq!(decrypted, n as u64);
    for i in 0..n {
        assert!(texts.contains(format!("message {i}").as_bytes()));
    }
    // No update lost: the session moved once per committed decrypt and
    // encrypt, and every answer decrypts at Alice, each under its own
    // (ratchet key, number).
    let generation = bob.session_status(b"alice").unwrap().unwrap().generation;
    assert_eq!(generation, generation_before + decrypted + answers);
    let outbox = bob.outbox().unwrap();
    assert_eq!(outbox.len() as u64, answers);
    let mut pairs = HashSet::new();
    for out in &outbox {
        let (key, number) = match Message::from_bytes(&out.payload).unwrap() {
            Message::Ratchet(m) => (m.ratchet_key_bytes(), m.message_number()),
            Message::PreKey(m) => (m.ratchet_key_bytes(), m.message_number()),
        };
        assert!(pairs.insert((key, number)));
        alice.receive(b"bob", &out.payload).unwrap();
    }
    println!(
        "race: 2 processes, {attempts} operations in {:.2}s ({n} messages each tried by both, \
         {decrypted} decrypted, {answers} answers), {conflicts} conflicts retried, \
         {locked} locked attempts, {busy} busy retries, 0 lost updates; total {:.1}s",
        race_time.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    println!("test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out");
}

fn main() {
    match std::env::var_os("SOTTO_RACE_CHILD") {
        Some(dir) => child(
            Path::new(&dir),
            std::env::var("SOTTO_RACE_ROLE").unwrap().parse().unwrap(),
        ),
        None => parent(),
    }
}
