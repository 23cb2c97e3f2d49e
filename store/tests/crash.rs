//! Crash safety (SPEC.md §17.8): a chat between two stores through the
//! session layer (peer records, a retry request answered by a resend, a
//! group with sender keys: created, a member removed and added back, chains
//! handed out again and rotated), run step by
//! step in a child process that kills itself with SIGKILL at a chosen kill
//! point (inside the store's transaction path, and in the application after
//! a call returned), and killed by this parent at random times; after every
//! restart the parent checks that every record opens, no (ratchet key,
//! message number) pair and no salt was ever sent twice, no message the
//! network took was lost, no prekey id was published twice, and the
//! conversation goes on.
//!
//! `SOTTO_CRASH_RANDOM` sets the number of random-time kills (default 60).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sotto::group::GroupMessage;
use sotto::sessions::{Action, DeviceId, Ignore, RetryHint, UserId};
use sotto::{Message, PreKeyBundle};
use sotto_store::{Delivered, Error, OutgoingKind, Point, PreKeyUpload, Store, StoreKey};

const PARTIES: [&str; 2] = ["alice", "bob"];
const NOW: u64 = 1_700_000_000;
/// The group both parties are in, its id agreed out of band.
const GROUP: [u8; 32] = [0x47; 32];
/// Every party's one device.
const DEVICE: DeviceId = DeviceId(1);
/// The message the network damages (Alice's second in round 6, on a chain
/// Bob already follows, so the session still works): Bob asks for
/// it again, and Alice sends it again under this reference plus
/// [`RESEND`].
const DAMAGED: u64 = 21;
/// Added to a message's reference for its resend.
const RESEND: u64 = 1_000_000;

fn uid(who: &str) -> UserId {
    UserId::new(who.as_bytes()).unwrap()
}

fn key_of(who: &str) -> StoreKey {
    StoreKey::from_bytes([if who == "alice" { 1 } else { 2 }; 32])
}

fn other(who: &str) -> &'static str {
    if who == "alice" { "bob" } else { "alice" }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// One step of the script; every step can run again after a crash.
#[derive(Clone, Copy, Debug)]
enum Step {
    Setup(&'static str),
    Start,
    Send(&'static str, u64),
    Deliver(&'static str),
    Replenish,
    RotateSigned,
    RotateKem,
    Group(&'static str),
    GroupSend(&'static str, u64),
    /// Alice removes Bob from the group (once).
    GroupRemove,
    /// Alice adds Bob back.
    GroupAdd,
    /// The party hands its chain to the other again.
    GroupDistribute(&'static str),
    /// The party replaces its chain and hands the new one out.
    GroupRotate(&'static str),
}

/// The script: set up, start, then rounds of messages both ways with prekey
/// maintenance between them.
fn script() -> Vec<Step> {
    let mut steps = vec![Step::Setup("alice"), Step::Setup("bob"), Step::Start];
    let mut k = 0;
    for round in 0..10u64 {
        for _ in 0..2 {
            k += 1;
            steps.push(Step::Send("alice", k));
        }
        steps.push(Step::Deliver("bob"));
        k += 1;
        steps.push(Step::Send("bob", k));
        steps.push(Step::Deliver("alice"));
        match round % 4 {
            0 if round == 4 => {
                // Both join the group: each hands its chain to the other.
                steps.extend([Step::Group("alice"), Step::Group("bob")]);
                steps.extend([Step::Deliver("bob"), Step::Deliver("alice")]);
            }
            1 => steps.push(Step::RotateSigned),
            2 => steps.push(Step::Replenish),
            3 => steps.push(Step::RotateKem),
            _ => {}
        }
        if round == 6 {
            steps.extend([
                Step::GroupRemove,
                Step::GroupAdd,
                Step::GroupDistribute("bob"),
                Step::Deliver("bob"),
                Step::Deliver("alice"),
            ]);
        }
        if round == 8 {
            steps.extend([Step::GroupRotate("bob"), Step::Deliver("alice")]);
        }
        if round >= 5 {
            k += 1;
            steps.push(Step::GroupSend(
                if round % 2 == 0 { "alice" } else { "bob" },
                k,
            ));
        }
    }
    // The retry request and the resend travel in these.
    steps.extend([
        Step::Deliver("bob"),
        Step::Deliver("alice"),
        Step::Deliver("bob"),
    ]);
    assert!(
        steps
            .iter()
            .any(|s| matches!(s, Step::Send("alice", DAMAGED)))
    );
    steps
}

// ---------------------------------------------------------------- the child

/// The application: two stores and the files standing for the network.
struct App {
    dir: PathBuf,
    stores: HashMap<&'static str, Store>,
}

/// Counts kill points and kills the process at the chosen one.
struct Killer {
    target: u64,
    hits: u64,
    dir: PathBuf,
}

static KILLER: std::sync::Mutex<Option<Killer>> = std::sync::Mutex::new(None);

fn hit(op: &'static str, at: &'static str) {
    let mut guard = KILLER.lock().unwrap();
    let Some(k) = guard.as_mut() else { return };
    k.hits += 1;
    if k.hits == k.target {
        std::fs::write(k.dir.join("died"), format!("{op} {at}\n")).unwrap();
        let pid = std::process::id().to_string();
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

fn append(path: &Path, line: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(line.as_bytes()).unwrap();
    f.sync_data().unwrap();
}

fn lines(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

impl App {
    fn open(dir: &Path) -> Self {
        let mut stores = HashMap::new();
        for who in PARTIES {
            let mut store = Store::open(dir.join(format!("{who}.db")), &key_of(who)).unwrap();
            store.set_point_hook(Box::new(|p: Point| hit(p.op, p.at)));
            stores.insert(who, store);
        }
        Self {
            dir: dir.to_path_buf(),
            stores,
        }
    }

    fn store(&mut self, who: &str) -> &mut Store {
        self.stores.get_mut(who).unwrap()
    }

    /// Sends every outbox entry: prekeys to the directory, messages to the
    /// network; each acknowledged only once the file has it.
    fn flush_outbox(&mut self, who: &'static str) {
        let dir = self.dir.clone();
        for out in self.store(who).outbox().unwrap() {
            match out.kind {
                OutgoingKind::PreKeys => {
                    append(
                        &dir.join("dir.log"),
                        &format!("{who} {}\n", hex(&out.payload)),
                    );
                }
                OutgoingKind::Message => {
                    let mut payload = out.payload.clone();
                    if who == "alice" && out.app_ref == Some(DAMAGED) {
                        // The network damages it: a flipped bit in the tag.
                        let last = payload.len() - 1;
                        payload[last] ^= 0x10;
                    }
                    append(
                        &dir.join("net.log"),
                        &format!(
                            "{who} {} {} {} P\n",
                            other(who),
                            out.app_ref.map_or("-".to_owned(), |r| r.to_string()),
                            hex(&payload)
                        ),
                    );
                }
                OutgoingKind::GroupMessage => append(
                    &dir.join("net.log"),
                    &format!(
                        "{who} {} {} {} G\n",
                        other(who),
                        out.app_ref.unwrap(),
                        hex(&out.payload)
                    ),
                ),
                k => panic!("{k:?}"),
            }
            hit("app", "sent");
            self.store(who).ack_sent(out.id).unwrap();
            hit("app", "acked");
        }
    }

    /// Shows every inbox entry, then acknowledges it.
    fn flush_inbox(&mut self, who: &'static str) {
        let dir = self.dir.clone();
        let ack_first = std::env::var("SOTTO_CRASH_CONTROL").is_ok();
        for entry in self.store(who).inbox().unwrap() {
            if let Some(hint) = entry.retry_hint() {
                // A retry request: resend, then acknowledge it.
                self.resend(who, &hint);
                self.store(who).ack_read(entry.id).unwrap();
                hit("app", "acked");
                continue;
            }
            if ack_first {
                // The control's mistake: acknowledged before it was shown.
                self.store(who).ack_read(entry.id).unwrap();
            }
            append(
                &dir.join("shown.log"),
                &format!("{who} {} {}\n", entry.id, hex(&entry.plaintext)),
            );
            assert_eq!(
                entry.group.is_some(),
                String::from_utf8_lossy(&entry.plaintext).contains("group")
            );
            hit("app", "shown");
            if !ack_first {
                self.store(who).ack_read(entry.id).unwrap();
            }
        }
    }

    fn recover(&mut self) {
        for who in PARTIES {
            if self.store(who).device_status().is_ok() {
                self.flush_outbox(who);
                self.flush_inbox(who);
            }
        }
    }

    fn run(&mut self, step: Step) {
        match step {
            Step::Setup(who) => {
                if self.store(who).device_status().is_err() {
                    self.store(who).create_device(NOW).unwrap();
                    hit("app", "returned");
                }
                if self.store(who).account().unwrap().is_none() {
                    self.store(who).set_account(&uid(who), DEVICE).unwrap();
                }
                if who == "bob" {
                    self.store(who).replenish_prekeys(3, 2).unwrap();
                }
                self.flush_outbox(who);
                // Bob's record of Alice, from the directory's device list.
                if who == "bob" {
                    let identity = published(&self.dir, "alice")[0].identity;
                    self.store("bob")
                        .update_devices(&uid("alice"), &[(DEVICE, identity)], NOW)
                        .unwrap();
                }
            }
            Step::Start => {
                let bob = uid("bob");
                let needs = match self.store("alice").plan_send(&bob, NOW) {
                    Ok(plan) => !plan.needs_bundle.is_empty(),
                    Err(Error::NotFound { .. }) => true,
                    Err(e) => panic!("{e:?}"),
                };
                if needs {
                    let bundle = self.claim_bundle();
                    self.store("alice")
                        .update_devices(&bob, &[(DEVICE, *bundle.identity())], NOW)
                        .unwrap();
                    self.store("alice")
                        .add_bundle(&bob, DEVICE, bundle, NOW)
                        .unwrap();
                    hit("app", "returned");
                }
            }
            Step::Group(who) => {
                match self
                    .store(who)
                    .create_group(&GROUP, &[uid("alice"), uid("bob")])
                {
                    Ok(_) => hit("app", "returned"),
                    Err(Error::AlreadyExists { .. }) => {}
                    Err(e) => panic!("{e:?}"),
                }
                self.flush_outbox(who);
            }
            Step::GroupSend(who, k) => {
                if !self.already_sent(who, k) {
                    let text = format!("{who} group {k}");
                    self.store(who)
                        .group_send(&GROUP, text.as_bytes(), Some(k))
                        .unwrap();
                    hit("app", "returned");
                }
                self.flush_outbox(who);
            }
            Step::Send(who, k) => {
                if !self.already_sent(who, k) {
                    let text = format!("{who} says {k}");
                    let sent = self
                        .store(who)
                        .send_to_user(&uid(other(who)), text.as_bytes(), Some(k))
                        .unwrap();
                    assert_eq!(sent.outgoing.len(), 1);
                    hit("app", "returned");
                }
                self.flush_outbox(who);
            }
            Step::Deliver(who) => {
                let cursor_path = self.dir.join(format!("cursor.{who}"));
                let mut cursor: usize = std::fs::read_to_string(&cursor_path)
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(0);
                let mine: Vec<Vec<String>> = lines(&self.dir.join("net.log"))
                    .into_iter()
                    .filter(|l| l[1] == who)
                    .collect();
                while cursor < mine.len() {
                    let line = &mine[cursor];
                    let from = uid(&line[0]);
                    let bytes = unhex(&line[3]);
                    let result = if line[4] == "G" {
                        self.store(who)
                            .group_receive(&GROUP, &from, &bytes)
                            .map(drop)
                    } else {
                        self.store(who)
                            .receive_from(&from, DEVICE, &bytes, NOW)
                            .map(|d| {
                                assert!(matches!(
                                    d,
                                    Delivered::Message(_)
                                        | Delivered::Distribution { .. }
                                        | Delivered::RetryRequest { .. }
                                ));
                            })
                    };
                    match result {
                        Ok(()) => hit("app", "returned"),
                        Err(Error::Session(f))
                            if matches!(
                                f.action,
                                Action::Ignore(Ignore::Duplicate | Ignore::RecoveryPending)
                            ) => {}
                        // The damaged message: ask for it again.
                        Err(Error::Session(f)) if matches!(f.action, Action::RequestRetry(_)) => {
                            let Action::RequestRetry(hint) = f.action else {
                                unreachable!()
                            };
                            self.store(who)
                                .request_retry(&from, DEVICE, &hint, NOW)
                                .unwrap();
                            hit("app", "returned");
                            self.flush_outbox(who);
                        }
                        // A distribution before this party joined: join
                        // (the group is agreed out of band), then again.
                        Err(Error::NotFound { record }) if record.starts_with("group/") => {
                            self.run(Step::Group(who));
                            continue;
                        }
                        Err(e) => panic!("{who} receiving {line:?}: {e:?}"),
                    }
                    cursor += 1;
                    let tmp = self.dir.join(format!("cursor.{who}.tmp"));
                    std::fs::write(&tmp, cursor.to_string()).unwrap();
                    std::fs::rename(&tmp, &cursor_path).unwrap();
                    hit("app", "cursor");
                }
                self.flush_inbox(who);
            }
            Step::Replenish => {
                self.store("bob").replenish_prekeys(3, 2).unwrap();
                self.flush_outbox("bob");
            }
            Step::GroupRemove => {
                // Once: a marker written after the commit, and a restart
                // between the two finds Bob gone.
                let marker = self.dir.join("removed");
                if !marker.exists() {
                    let members = self.group_members("alice");
                    if members.contains(&uid("bob")) {
                        self.store("alice")
                            .remove_from_group(&GROUP, &uid("bob"))
                            .unwrap();
                        hit("app", "returned");
                    }
                    std::fs::write(&marker, b"").unwrap();
                }
                self.flush_outbox("alice");
            }
            Step::GroupAdd => {
                if !self.group_members("alice").contains(&uid("bob")) {
                    self.store("alice")
                        .add_to_group(&GROUP, &uid("bob"))
                        .unwrap();
                    hit("app", "returned");
                }
                self.flush_outbox("alice");
            }
            Step::GroupDistribute(who) => {
                self.store(who)
                    .distribute_group(&GROUP, &[uid(other(who))])
                    .unwrap();
                hit("app", "returned");
                self.flush_outbox(who);
            }
            Step::GroupRotate(who) => {
                self.store(who).rotate_group(&GROUP).unwrap();
                hit("app", "returned");
                self.flush_outbox(who);
            }
            Step::RotateSigned => {
                self.store("bob").rotate_signed_prekey(NOW).unwrap();
                hit("app", "returned");
                self.flush_outbox("bob");
            }
            Step::RotateKem => {
                self.store("bob")
                    .rotate_last_resort_kem_prekey(NOW)
                    .unwrap();
                hit("app", "returned");
                self.flush_outbox("bob");
            }
        }
    }

    fn group_members(&mut self, who: &str) -> Vec<UserId> {
        self.store(who)
            .group_status(&GROUP)
            .unwrap()
            .unwrap()
            .members
    }

    /// Answers a retry request: finds the message the hint names among what
    /// `who` sent, and sends its text again, once.
    fn resend(&mut self, who: &'static str, hint: &RetryHint) {
        let sent = lines(&self.dir.join("net.log"));
        let Some(line) = sent.iter().find(|l| {
            l[0] == who
                && l[4] == "P"
                && Message::from_bytes(&unhex(&l[3])).is_ok_and(|m| hint.matches(&m))
        }) else {
            return;
        };
        let k: u64 = line[2].parse().unwrap();
        if !self.already_sent(who, k + RESEND) {
            let text = format!("{who} says {k}");
            self.store(who)
                .resend_to_device(&uid(other(who)), DEVICE, text.as_bytes(), Some(k + RESEND))
                .unwrap();
            hit("app", "returned");
        }
        self.flush_outbox(who);
    }

    /// Whether message `k` of `who` is in its outbox or on the network.
    fn already_sent(&mut self, who: &'static str, k: u64) -> bool {
        self.store(who)
            .outbox()
            .unwrap()
            .iter()
            .any(|o| o.app_ref == Some(k))
            || lines(&self.dir.join("net.log"))
                .iter()
                .any(|l| l[0] == who && l[2] == k.to_string())
    }

    /// Bob's bundle from the directory: the newest signed and last-resort
    /// KEM prekeys, and the lowest one-time prekey of each kind not handed
    /// out before (recorded as handed out before it is used).
    fn claim_bundle(&mut self) -> PreKeyBundle {
        let uploads = published(&self.dir, "bob");
        let claimed: HashSet<String> = lines(&self.dir.join("claimed.log"))
            .into_iter()
            .map(|l| l.join(" "))
            .collect();
        let identity = uploads[0].identity;
        let spk = uploads.iter().rev().find_map(|u| u.signed_prekey).unwrap();
        let mut kem = uploads
            .iter()
            .rev()
            .find_map(|u| u.last_resort_kem_prekey.clone());
        let opk = uploads
            .iter()
            .flat_map(|u| u.one_time_prekeys.clone())
            .find(|k| !claimed.contains(&format!("opk {}", k.id())));
        if let Some(k) = opk {
            append(&self.dir.join("claimed.log"), &format!("opk {}\n", k.id()));
        }
        if let Some(k) = uploads
            .iter()
            .flat_map(|u| u.one_time_kem_prekeys.clone())
            .find(|k| !claimed.contains(&format!("kem {}", k.id())))
        {
            append(&self.dir.join("claimed.log"), &format!("kem {}\n", k.id()));
            kem = Some(k);
        }
        PreKeyBundle::new(identity, spk, opk, kem)
    }
}

/// Every distinct upload `who` published, in order.
fn published(dir: &Path, who: &str) -> Vec<PreKeyUpload> {
    let mut seen = HashSet::new();
    lines(&dir.join("dir.log"))
        .into_iter()
        .filter(|l| l[0] == who && seen.insert(l[1].clone()))
        .map(|l| PreKeyUpload::from_bytes(&unhex(&l[1])).unwrap())
        .collect()
}

fn child(dir: &Path) {
    let from: usize = std::env::var("SOTTO_CRASH_FROM").unwrap().parse().unwrap();
    let to: usize = std::env::var("SOTTO_CRASH_TO").unwrap().parse().unwrap();
    let target: u64 = std::env::var("SOTTO_CRASH_AT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    *KILLER.lock().unwrap() = Some(Killer {
        target,
        hits: 0,
        dir: dir.to_path_buf(),
    });
    let mut app = App::open(dir);
    app.recover();
    let steps = script();
    for step in &steps[from..to.min(steps.len())] {
        app.run(*step);
    }
    if std::env::var("SOTTO_CRASH_PING").is_ok() {
        // The conversation goes on: one message each way.
        app.run(Step::Send("alice", 1000 + from as u64));
        app.run(Step::Deliver("bob"));
        app.run(Step::Send("bob", 2000 + from as u64));
        app.run(Step::Deliver("alice"));
        // A resend answering a retry request, if one was made.
        app.run(Step::Deliver("bob"));
    }
    let hits = KILLER.lock().unwrap().as_ref().unwrap().hits;
    std::fs::write(dir.join("hits"), hits.to_string()).unwrap();
}

// --------------------------------------------------------------- the parent

struct Run<'a> {
    exe: &'a Path,
    dir: &'a Path,
    /// The control: an application that acknowledges before it shows.
    control: bool,
}

impl Run<'_> {
    fn command(&self, from: usize, to: usize, kill_at: Option<u64>, ping: bool) -> Command {
        let mut cmd = Command::new(self.exe);
        if self.control {
            cmd.env("SOTTO_CRASH_CONTROL", "1");
        }
        cmd.env("SOTTO_CRASH_CHILD", self.dir)
            .env("SOTTO_CRASH_FROM", from.to_string())
            .env("SOTTO_CRASH_TO", to.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(n) = kill_at {
            cmd.env("SOTTO_CRASH_AT", n.to_string());
        }
        if ping {
            cmd.env("SOTTO_CRASH_PING", "1");
        }
        cmd
    }

    /// Runs steps `from..to` to completion; returns the kill points passed.
    fn complete(&self, from: usize, to: usize, ping: bool) -> u64 {
        let status = self.command(from, to, None, ping).status().unwrap();
        assert!(status.success(), "child failed on steps {from}..{to}");
        std::fs::read_to_string(self.dir.join("hits"))
            .unwrap()
            .parse()
            .unwrap()
    }

    /// Runs steps `from..to`, killed at kill point `n`; returns where.
    fn killed_at(&self, from: usize, to: usize, n: u64) -> String {
        let _ = std::fs::remove_file(self.dir.join("died"));
        let status = self.command(from, to, Some(n), false).status().unwrap();
        assert!(!status.success(), "child was not killed at {n}");
        std::fs::read_to_string(self.dir.join("died")).unwrap()
    }
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// What a message on the network names: its ratchet key, number and salt.
fn names(payload: &[u8], tag: &str) -> ([u8; 32], u32, [u8; 16]) {
    if tag == "G" {
        let m = GroupMessage::from_bytes(payload).unwrap();
        return (*m.chain().as_bytes(), m.index(), m.salt());
    }
    match Message::from_bytes(payload).unwrap() {
        Message::PreKey(m) => (m.ratchet_key_bytes(), m.message_number(), m.salt()),
        Message::Ratchet(m) => (m.ratchet_key_bytes(), m.message_number(), m.salt()),
    }
}

/// Every invariant of a world after a restart. `complete`: every message
/// on the network has been delivered since.
fn check(dir: &Path, complete: bool) {
    // No torn state: every record and inbox entry opens.
    for who in PARTIES {
        let path = dir.join(format!("{who}.db"));
        if path.exists() {
            Store::open(&path, &key_of(who))
                .and_then(|s| s.verify())
                .unwrap_or_else(|e| panic!("{who}: {e:?} in {dir:?}"));
        }
    }
    // No key and nonce reused: distinct messages never share a (ratchet
    // key, number) pair or a salt.
    let net = lines(&dir.join("net.log"));
    let mut payloads = BTreeSet::new();
    let mut pairs = HashSet::new();
    let mut salts = HashSet::new();
    let mut logical: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for l in &net {
        if l[2] != "-" {
            logical
                .entry((l[0].clone(), l[2].clone()))
                .or_default()
                .insert(l[3].clone());
        }
        if !payloads.insert(l[3].clone()) {
            continue; // a resend of the same bytes
        }
        let (ratchet_key, n, salt) = names(&unhex(&l[3]), &l[4]);
        assert!(pairs.insert((ratchet_key, n)), "pair sent twice in {dir:?}");
        assert!(salts.insert(salt), "salt sent twice in {dir:?}");
    }
    // One ciphertext per message the application sent.
    for (k, v) in &logical {
        assert_eq!(v.len(), 1, "message {k:?} encrypted twice in {dir:?}");
    }
    // Every message shown at most once (by inbox entry), and once the
    // network is drained, every message the network took was shown.
    let mut shown: HashMap<String, BTreeSet<(String, String)>> = HashMap::new();
    for l in lines(&dir.join("shown.log")) {
        let text = String::from_utf8(unhex(&l[2])).unwrap();
        shown
            .entry(text)
            .or_default()
            .insert((l[0].clone(), l[1].clone()));
    }
    for (text, entries) in &shown {
        assert_eq!(entries.len(), 1, "{text} decrypted twice in {dir:?}");
    }
    if complete {
        for ((from, k), payloads) in &logical {
            let group = net
                .iter()
                .any(|l| l[3] == *payloads.iter().next().unwrap() && l[4] == "G");
            let k: u64 = k.parse().unwrap();
            let k = if k >= RESEND { k - RESEND } else { k };
            let text = if group {
                format!("{from} group {k}")
            } else {
                format!("{from} says {k}")
            };
            assert!(shown.contains_key(&text), "{text} lost in {dir:?}");
        }
    }
    // No prekey id published twice.
    for who in PARTIES {
        let mut opk = HashSet::new();
        let mut kem = HashSet::new();
        let mut spk = HashSet::new();
        for up in published(dir, who) {
            for k in &up.one_time_prekeys {
                assert!(opk.insert(k.id()), "one-time prekey {} twice", k.id());
            }
            for k in up
                .one_time_kem_prekeys
                .iter()
                .chain(&up.last_resort_kem_prekey)
            {
                assert!(kem.insert(k.id()), "KEM prekey {} twice", k.id());
            }
            if let Some(k) = up.signed_prekey {
                assert!(spk.insert(k.id()), "signed prekey {} twice", k.id());
            }
        }
    }
    // The directory handed each one-time prekey out once.
    let claimed = lines(&dir.join("claimed.log"));
    let distinct: HashSet<_> = claimed.iter().collect();
    assert_eq!(distinct.len(), claimed.len());
}

/// Runs a check, naming the kill that preceded it if it fails.
fn checked(context: &str, f: impl FnOnce() + std::panic::UnwindSafe) {
    if let Err(e) = std::panic::catch_unwind(f) {
        eprintln!("after {context}");
        std::panic::resume_unwind(e);
    }
}

/// A small deterministic generator for the random kill times.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn parent() {
    let started = Instant::now();
    let exe = std::env::current_exe().unwrap();
    // SIGKILL tests the process, not the disk: a RAM disk where there is
    // one keeps the thousands of fsyncs cheap.
    let root = common::TempDir::new("crash");
    let steps = script();

    // The reference run, one step per child, keeping the world before each
    // step and how many kill points each step passes.
    let mut snapshots = Vec::new();
    let mut hits = Vec::new();
    let world = root.file("world");
    std::fs::create_dir_all(&world).unwrap();
    let run = Run {
        exe: &exe,
        dir: &world,
        control: false,
    };
    for s in 0..steps.len() {
        let snapshot = root.file(&format!("before-{s}"));
        copy_dir(&world, &snapshot);
        snapshots.push(snapshot);
        hits.push(run.complete(s, s + 1, false));
    }
    check(&world, true);

    // Every kill point of every step: restore the world before the step,
    // kill the child at the point, check, restart it on the same step and
    // a message each way, and check again.
    // Spread over the machine's cores, each worker in its own directory.
    let jobs: Vec<(usize, u64)> = hits
        .iter()
        .enumerate()
        .flat_map(|(s, &n)| (1..=n).map(move |at| (s, at)))
        .collect();
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 4));
    let swept: Vec<BTreeMap<String, u64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let scratch = root.file(&format!("scratch-{w}"));
                let (exe, jobs, next, steps, snapshots) = (&exe, &jobs, &next, &steps, &snapshots);
                scope.spawn(move || {
                    let run = Run {
                        exe,
                        dir: &scratch,
                        control: false,
                    };
                    let mut places: BTreeMap<String, u64> = BTreeMap::new();
                    while let Some(&(s, at)) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
                        copy_dir(&snapshots[s], &scratch);
                        let place = run.killed_at(s, s + 1, at);
                        *places
                            .entry(format!("{:?}: {}", step_kind(steps[s]), place.trim()))
                            .or_default() += 1;
                        let context =
                            format!("step {s} {:?}, kill point {at}: {}", steps[s], place.trim());
                        checked(&context, || check(&scratch, false));
                        run.complete(s, (s + 1).max(3), true);
                        checked(&context, || check(&scratch, true));
                    }
                    places
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut places: BTreeMap<String, u64> = BTreeMap::new();
    for (place, n) in swept.into_iter().flatten() {
        *places.entry(place).or_default() += n;
    }
    let kills = jobs.len() as u64;

    let scratch = root.file("scratch");
    let run = Run {
        exe: &exe,
        dir: &scratch,
        control: false,
    };

    // Random times, from the parent, over several steps at once.
    let random: u64 = std::env::var("SOTTO_CRASH_RANDOM")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let seed = u64::from(started.elapsed().subsec_nanos()) | 1;
    let mut lcg = Lcg(seed);
    let mut random_kills = 0u64;
    for _ in 0..random {
        let s = usize::try_from(lcg.below(steps.len() as u64)).unwrap();
        copy_dir(&snapshots[s], &scratch);
        let mut child = run
            .command(s, (s + 6).min(steps.len()), None, false)
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(1_000 + lcg.below(15_000)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            random_kills += 1;
        }
        let _ = child.wait();
        check(&scratch, false);
        run.complete(s, (s + 6).min(steps.len()), true);
        check(&scratch, true);
    }

    // The control: the same sweep over one delivery with an application
    // that acknowledges a plaintext before showing it must lose a message
    // at some kill point, and the checks must see it.
    let control = Run {
        exe: &exe,
        dir: &scratch,
        control: true,
    };
    let send = steps
        .iter()
        .position(|s| matches!(s, Step::Deliver("bob")))
        .unwrap();
    let mut caught = 0;
    for at in 1..=hits[send] {
        copy_dir(&snapshots[send], &scratch);
        control.killed_at(send, send + 1, at);
        run.complete(send, send + 1, true);
        let quiet = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        if std::panic::catch_unwind(|| check(&scratch, true)).is_err() {
            caught += 1;
        }
        std::panic::set_hook(quiet);
    }
    assert!(caught > 0, "the control lost no message the checks saw");

    println!(
        "crash: control (ack before show) caught at {caught} of {} kill points",
        hits[send]
    );
    println!(
        "crash: {} steps, {kills} kill points, {random_kills} random kills (seed {seed}), {:.1}s",
        steps.len(),
        started.elapsed().as_secs_f64()
    );
    for (place, n) in &places {
        println!("  {n:4}  {place}");
    }
    assert!(kills >= 1000, "only {kills} kill points");
    println!("test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out");
}

fn step_kind(step: Step) -> &'static str {
    match step {
        Step::Setup(_) => "setup",
        Step::Start => "start",
        Step::Send(..) => "send",
        Step::Deliver(_) => "deliver",
        Step::Replenish => "replenish",
        Step::RotateSigned => "rotate-signed",
        Step::RotateKem => "rotate-kem",
        Step::Group(_) => "group",
        Step::GroupSend(..) => "group-send",
        Step::GroupRemove => "group-remove",
        Step::GroupAdd => "group-add",
        Step::GroupDistribute(_) => "group-distribute",
        Step::GroupRotate(_) => "group-rotate",
    }
}

fn main() {
    match std::env::var_os("SOTTO_CRASH_CHILD") {
        Some(dir) => child(Path::new(&dir)),
        None => parent(),
    }
}
