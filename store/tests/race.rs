//! Two processes on one database (SPEC.md §17.8): an app and its
//! notification extension both open Bob's store and race through the same
//! mailbox of messages from Alice, pairwise and in a group, each decrypting
//! every message it can (through the session layer) and answering some,
//! for thousands of operations. Afterwards: every message is in the inbox
//! exactly once, every answer decrypts at Alice with no (ratchet key,
//! number) pair twice, and the generations of Bob's record of Alice and of
//! the group count every committed operation: no update was lost.
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

use common::{D1, NOW, TempDir, key, pair, receive, send, uid};
use sotto::Message;
use sotto::sessions::{Action, Ignore};
use sotto_store::{Delivered, Error, Store};

/// The group Alice and Bob are in.
const GROUP: [u8; 32] = [0x52; 32];

/// Whether mailbox line `i` is a group message.
fn is_group(i: usize) -> bool {
    i % 4 == 3
}

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
    let alice = uid("alice");
    for (i, message) in mailbox.iter().enumerate() {
        let result = if is_group(i) {
            bob.group_receive(&GROUP, &alice, message).map(drop)
        } else {
            bob.receive_from(&alice, D1, message, NOW)
                .map(|d| assert!(matches!(d, Delivered::Message(_))))
        };
        match result {
            Ok(()) => {
                decrypted += 1;
                if decrypted % 3 == 0 {
                    let text = format!("answer {role}/{i}");
                    let sent = bob
                        .send_to_user(&alice, text.as_bytes(), Some(role * 1_000_000 + i as u64))
                        .unwrap();
                    assert_eq!(sent.outgoing.len(), 1);
                    answers += 1;
                }
            }
            Err(Error::Session(f)) if f.action == Action::Ignore(Ignore::Duplicate) => {
                duplicates += 1;
            }
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
    let reply = send(&mut bob, "alice", b"ready");
    receive(&mut alice, "bob", &reply);
    bob.ack_sent(reply.id).unwrap();
    // The group: each hands its chain to the other.
    let both = [uid("alice"), uid("bob")];
    let from_alice = alice.create_group(&GROUP, &both).unwrap();
    let from_bob = bob.create_group(&GROUP, &both).unwrap();
    for out in &from_alice.outgoing {
        bob.receive_from(&uid("alice"), D1, &out.payload, NOW)
            .unwrap();
    }
    for out in &from_bob.outgoing {
        alice
            .receive_from(&uid("bob"), D1, &out.payload, NOW)
            .unwrap();
    }
    for out in bob.outbox().unwrap() {
        bob.ack_sent(out.id).unwrap();
    }
    for entry in bob.inbox().unwrap() {
        bob.ack_read(entry.id).unwrap();
    }
    let generations = |bob: &Store| {
        let record = bob.peer_status(&uid("alice")).unwrap().unwrap().generation;
        (
            record,
            bob.group_status(&GROUP).unwrap().unwrap().generation,
        )
    };
    let before = generations(&bob);
    drop(bob);

    let mut mailbox = String::new();
    for i in 0..n {
        let text = format!("message {i}");
        let payload = if is_group(i) {
            alice
                .group_send(&GROUP, text.as_bytes(), None)
                .unwrap()
                .payload
        } else {
            send(&mut alice, "bob", text.as_bytes()).payload
        };
        mailbox.push_str(&hex(&payload));
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
    let duplicates: u64 = results.iter().map(|r| r[1]).sum();
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
    let group_decrypted = (0..n).filter(|i| is_group(*i)).count() as u64;
    let (record, group) = generations(&bob);
    assert_eq!(record, before.0 + (decrypted - group_decrypted) + answers);
    assert_eq!(group, before.1 + group_decrypted);
    let outbox = bob.outbox().unwrap();
    assert_eq!(outbox.len() as u64, answers);
    let mut pairs = HashSet::new();
    for out in &outbox {
        let (key, number) = match Message::from_bytes(&out.payload).unwrap() {
            Message::Ratchet(m) => (m.ratchet_key_bytes(), m.message_number()),
            Message::PreKey(m) => (m.ratchet_key_bytes(), m.message_number()),
        };
        assert!(pairs.insert((key, number)));
        receive(&mut alice, "bob", out);
    }
    println!(
        "race: 2 processes, {attempts} operations in {:.2}s ({n} messages, {group_decrypted} of \
         them in the group, each tried by both: {decrypted} decrypted once, {duplicates} \
         duplicates refused, {answers} answers), {conflicts} conflicts retried, {locked} \
         locked attempts, {busy} busy retries, 0 lost updates, 0 decrypted twice; total {:.1}s",
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
