//! The session-layer simulation with the store underneath, on disk (SPEC.md
//! §16, §17.8): three users, one of them with two devices, each device a
//! store in its own database file, talking pairwise and in one group over a
//! network that loses, duplicates and reorders messages, while devices are
//! restarted, backed up and restored from a stale backup. The applications
//! act as SPEC §16.6 says: they send what the outbox holds and show what the
//! inbox holds, answer retry requests with resends, start new sessions from
//! the server's bundles, ask for missing group chains, and after a restore
//! call `after_restore` with the high-water mark they recorded outside the
//! database, then hand their new group chain out.
//!
//! Checked throughout: no message is ever decrypted twice by one device (a
//! ledger outside the databases, which a restore does not roll back), every
//! record of every database opens, and no (ratchet key, number) pair or
//! salt is ever sent twice. At the end, once the network is reliable again:
//! every pair of devices exchanges a round trip, after which a message each
//! way decrypts; and after a group message from every device (which makes
//! members missing a chain ask for it), the next one from every device
//! reaches every other member device.
//!
//! At the end, convergence is checked an hour after the network turned
//! reliable (past the recovery rate limits, SPEC §16.6), within at most
//! [`MAX_ROUNDS`] rounds, each an hour after the last.
//!
//! `SOTTO_SIM_SEED` and `SOTTO_SIM_STEPS` choose the runs; a run's choices
//! are seeded, while the stores draw their keys from the OS.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::PathBuf;

use common::TempDir;
use sotto::group::GroupMessage;
use sotto::sessions::{Action, DeviceId, Ignore, RetryHint, RetryLater, UserId};
use sotto::{IdentityKey, KemPreKey, Message, OneTimePreKey, PreKeyBundle, SignedPreKey};
use sotto_store::{Delivered, Error, IncomingKind, OutgoingKind, PreKeyUpload, Store, StoreKey};

/// Users and their devices.
const USERS: [(&str, u32); 3] = [("alice", 2), ("bob", 1), ("carol", 1)];
/// The group every user is in.
const GROUP: [u8; 32] = [0x53; 32];
const START: u64 = 1_700_000_000;
/// A chain still missing is asked for again after this long.
const ASK_AGAIN_AFTER: u64 = 600;
/// A group message waits this long for its chain, then is given up (its
/// sender may no longer have that chain: it was restored).
const MAX_WAIT: u64 = 6 * 3600;
/// Rounds of round trips (each an hour after the last, past the rate
/// limits) within which every pair of devices must converge.
const MAX_ROUNDS: u32 = 3;
/// Most messages the network loses, and duplicates, in a run.
const MAX_DROPS: u32 = 12;
const MAX_DUPS: u32 = 12;

/// A seeded xorshift: the run's choices.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % n as u64).unwrap()
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

#[derive(Clone)]
struct Envelope {
    from: usize,
    to: usize,
    group: bool,
    payload: Vec<u8>,
}

/// What the server holds for one device: its identity, its current
/// signed and last-resort KEM prekeys, and one-time prekeys handed out
/// once each.
#[derive(Default)]
struct Directory {
    identity: Option<IdentityKey>,
    signed: Option<SignedPreKey>,
    kem: Option<KemPreKey>,
    one_time: VecDeque<OneTimePreKey>,
}

/// One device: its store and its application's books, which live outside
/// the database (a restore does not roll them back).
struct Dev {
    user: usize,
    id: DeviceId,
    path: PathBuf,
    key: [u8; 32],
    store: Option<Store>,
    /// The last high-water mark recorded.
    mark: u64,
    /// Messages this device sent: the hint naming each copy, its recipient,
    /// and its text to send again on a retry request (`None` for a
    /// distribution, answered with the current one).
    sent: Vec<(RetryHint, usize, Option<Vec<u8>>)>,
    /// Message ids decrypted.
    ledger: HashSet<String>,
    /// Group messages waiting for their chain.
    waiting: Vec<Envelope>,
    /// When each group message that had to wait first came.
    since: std::collections::HashMap<Vec<u8>, u64>,
    /// When each chain was last asked for, by sending device and chain.
    asked: BTreeMap<(usize, [u8; 32]), u64>,
    counter: u64,
    backup: Option<PathBuf>,
}

struct Sim {
    devs: Vec<Dev>,
    dirs: Vec<Directory>,
    net: Vec<Envelope>,
    rng: Rng,
    now: u64,
    /// Every (ratchet key or chain, number) pair and salt ever sent.
    pairs: HashSet<(Vec<u8>, u32)>,
    salts: HashSet<Vec<u8>>,
    payloads: HashSet<Vec<u8>>,
    stats: BTreeMap<&'static str, u64>,
    /// Rounds of round trips the convergence took.
    rounds: u32,
    _dir: TempDir,
}

fn uid(name: &str) -> UserId {
    UserId::new(name.as_bytes()).unwrap()
}

fn text_of(id: &str) -> Vec<u8> {
    id.as_bytes().to_vec()
}

impl Sim {
    fn new(seed: u64, on_disk: bool) -> Self {
        let dir = if on_disk {
            TempDir::on_disk("sim")
        } else {
            TempDir::new("sim")
        };
        let mut devs = Vec::new();
        for (u, (name, count)) in USERS.iter().enumerate() {
            for d in 1..=*count {
                let key = [u8::try_from(16 * u).unwrap() + u8::try_from(d).unwrap(); 32];
                devs.push(Dev {
                    user: u,
                    id: DeviceId(d),
                    path: dir.file(&format!("{name}-{d}.db")),
                    key,
                    store: None,
                    mark: 0,
                    sent: Vec::new(),
                    ledger: HashSet::new(),
                    waiting: Vec::new(),
                    since: std::collections::HashMap::new(),
                    asked: BTreeMap::new(),
                    counter: 0,
                    backup: None,
                });
            }
        }
        let dirs = devs.iter().map(|_| Directory::default()).collect();
        Self {
            devs,
            dirs,
            net: Vec::new(),
            rng: Rng(seed | 1),
            now: START,
            pairs: HashSet::new(),
            salts: HashSet::new(),
            payloads: HashSet::new(),
            stats: BTreeMap::new(),
            rounds: 0,
            _dir: dir,
        }
    }

    fn count(&mut self, what: &'static str) {
        if std::env::var_os("SOTTO_SIM_TRACE").is_some() {
            eprintln!("    {what}");
        }
        *self.stats.entry(what).or_default() += 1;
    }

    fn store(&mut self, i: usize) -> &mut Store {
        let d = &mut self.devs[i];
        if d.store.is_none() {
            let store = Store::open(&d.path, &StoreKey::from_bytes(d.key)).unwrap();
            d.store = Some(store);
        }
        d.store.as_mut().unwrap()
    }

    fn name(&self, i: usize) -> &'static str {
        USERS[self.devs[i].user].0
    }

    fn user_of(&self, i: usize) -> UserId {
        uid(self.name(i))
    }

    /// The device of `user` with id `device`.
    fn index(&self, user: &[u8], device: u32) -> usize {
        self.devs
            .iter()
            .position(|d| USERS[d.user].0.as_bytes() == user && d.id.0 == device)
            .unwrap()
    }

    fn devices_of(&self, user: usize) -> Vec<usize> {
        (0..self.devs.len())
            .filter(|i| self.devs[*i].user == user)
            .collect()
    }

    /// The server's device list of user `u`.
    fn list(&self, u: usize) -> Vec<(DeviceId, IdentityKey)> {
        self.devices_of(u)
            .into_iter()
            .map(|i| (self.devs[i].id, self.dirs[i].identity.unwrap()))
            .collect()
    }

    /// A bundle of device `i` from the server, with a one-time prekey if
    /// it has one left.
    fn bundle(&mut self, i: usize) -> PreKeyBundle {
        let dir = &mut self.dirs[i];
        PreKeyBundle::new(
            dir.identity.unwrap(),
            dir.signed.unwrap(),
            dir.one_time.pop_front(),
            dir.kem.clone(),
        )
    }

    /// After every operation of device `i`: records its high-water mark,
    /// sends its outbox and shows its inbox.
    fn settle(&mut self, i: usize) {
        loop {
            let outbox = self.store(i).outbox().unwrap();
            let inbox = self.store(i).inbox().unwrap();
            if outbox.is_empty() && inbox.is_empty() {
                break;
            }
            for out in outbox {
                match out.kind {
                    OutgoingKind::PreKeys => {
                        let up = PreKeyUpload::from_bytes(&out.payload).unwrap();
                        let dir = &mut self.dirs[i];
                        if up.replace {
                            dir.one_time.clear();
                        }
                        dir.identity = Some(up.identity);
                        if let Some(k) = up.signed_prekey {
                            dir.signed = Some(k);
                        }
                        if let Some(k) = up.last_resort_kem_prekey {
                            dir.kem = Some(k);
                        }
                        dir.one_time.extend(up.one_time_prekeys);
                    }
                    OutgoingKind::Message => {
                        let to = self.index(&out.destination, out.device.unwrap());
                        self.note_sent(&out.payload, false);
                        if out.group.is_some() {
                            let m = Message::from_bytes(&out.payload).unwrap();
                            self.devs[i]
                                .sent
                                .push((RetryHint::for_message(&m), to, None));
                        }
                        self.net.push(Envelope {
                            from: i,
                            to,
                            group: false,
                            payload: out.payload.clone(),
                        });
                    }
                    OutgoingKind::GroupMessage => {
                        self.note_sent(&out.payload, true);
                        for to in 0..self.devs.len() {
                            if to != i {
                                self.net.push(Envelope {
                                    from: i,
                                    to,
                                    group: true,
                                    payload: out.payload.clone(),
                                });
                            }
                        }
                    }
                    k => panic!("{k:?}"),
                }
                self.store(i).ack_sent(out.id).unwrap();
            }
            for entry in inbox {
                // Payloads were counted when they were decrypted.
                if entry.kind == IncomingKind::RetryRequest {
                    let hint = entry.retry_hint().unwrap();
                    let from = self.index(&entry.source, entry.device.unwrap());
                    self.resend(i, from, &hint);
                }
                self.store(i).ack_read(entry.id).unwrap();
            }
        }
        let mark = self.store(i).high_water_mark().unwrap();
        self.devs[i].mark = mark;
    }

    /// No (ratchet key, number) pair and no salt is ever sent twice.
    fn note_sent(&mut self, payload: &[u8], group: bool) {
        if !self.payloads.insert(payload.to_vec()) {
            return; // the same bytes again
        }
        let (key, n, salt) = if group {
            let m = GroupMessage::from_bytes(payload).unwrap();
            (m.chain().as_bytes().to_vec(), m.index(), m.salt().to_vec())
        } else {
            match Message::from_bytes(payload).unwrap() {
                Message::PreKey(m) => (
                    m.ratchet_key_bytes().to_vec(),
                    m.message_number(),
                    m.salt().to_vec(),
                ),
                Message::Ratchet(m) => (
                    m.ratchet_key_bytes().to_vec(),
                    m.message_number(),
                    m.salt().to_vec(),
                ),
            }
        };
        assert!(self.pairs.insert((key, n)), "a key and number sent twice");
        assert!(self.salts.insert(salt), "a salt sent twice");
    }

    /// Answers a retry request from `from`: sends again what the hint
    /// names, under a new id.
    fn resend(&mut self, i: usize, from: usize, hint: &RetryHint) {
        let found = self.devs[i]
            .sent
            .iter()
            .find(|(h, to, _)| h == hint && *to == from)
            .map(|(_, _, text)| text.clone());
        let Some(found) = found else {
            self.count("retry requests for nothing kept");
            return;
        };
        let Some(old) = found else {
            // A distribution: the current one instead.
            self.count("distributions sent again");
            let user = self.user_of(from);
            self.store(i).distribute_group(&GROUP, &[user]).unwrap();
            return;
        };
        self.count("resends");
        let text = self.next_text(i, &format!("resend of {}", String::from_utf8_lossy(&old)));
        let user = self.user_of(from);
        let device = self.devs[from].id;
        match self.store(i).resend_to_device(&user, device, &text, None) {
            Ok(out) => {
                let m = Message::from_bytes(&out.payload).unwrap();
                self.devs[i]
                    .sent
                    .push((RetryHint::for_message(&m), from, Some(text)));
            }
            Err(Error::Protocol(e)) => {
                self.count("resends refused");
                let _ = e;
            }
            Err(e) => panic!("{e:?}"),
        }
    }

    fn next_text(&mut self, i: usize, what: &str) -> Vec<u8> {
        self.devs[i].counter += 1;
        text_of(&format!("{i}/{} {what}", self.devs[i].counter))
    }

    /// Sessions with every device of user `u` that needs one.
    fn ensure_sessions(&mut self, i: usize, u: usize) {
        let user = uid(USERS[u].0);
        let now = self.now;
        let plan = self.store(i).plan_send(&user, now).unwrap();
        for device in plan.needs_bundle {
            let j = self.index(USERS[u].0.as_bytes(), device.0);
            let bundle = self.bundle(j);
            let now = self.now;
            self.store(i)
                .add_bundle(&user, device, bundle, now)
                .unwrap();
            self.count("bundles fetched");
        }
    }

    /// Device `i` sends a new message to every device of user `u`.
    fn send(&mut self, i: usize, u: usize) -> Vec<Vec<u8>> {
        self.ensure_sessions(i, u);
        let text = self.next_text(i, "says");
        let user = uid(USERS[u].0);
        let sent = self.store(i).send_to_user(&user, &text, None).unwrap();
        assert!(sent.unusable.is_empty(), "{:?}", sent.unusable);
        for out in &sent.outgoing {
            let to = self.index(&out.destination, out.device.unwrap());
            let m = Message::from_bytes(&out.payload).unwrap();
            self.devs[i]
                .sent
                .push((RetryHint::for_message(&m), to, Some(text.clone())));
        }
        self.count("messages sent");
        self.settle(i);
        vec![text]
    }

    fn group_send(&mut self, i: usize) -> Vec<u8> {
        let text = self.next_text(i, "to the group");
        self.store(i).group_send(&GROUP, &text, None).unwrap();
        self.count("group messages sent");
        self.settle(i);
        text
    }

    /// Records a decryption in the ledger: never twice.
    fn decrypted(&mut self, i: usize, text: &[u8]) {
        let id = String::from_utf8(text.to_vec()).unwrap();
        assert!(
            self.devs[i].ledger.insert(id.clone()),
            "device {i} decrypted {id} twice"
        );
        self.count("decrypted");
    }

    /// Device `m.to` receives `m` and does what its application does with
    /// the outcome.
    fn deliver(&mut self, m: Envelope) {
        let i = m.to;
        if std::env::var_os("SOTTO_SIM_TRACE").is_some() {
            let kind = if m.group {
                "group".to_owned()
            } else {
                match Message::from_bytes(&m.payload).unwrap() {
                    Message::PreKey(p) => format!("prekey base {:02x}", p.base_key_bytes()[0]),
                    Message::Ratchet(r) => format!(
                        "ratchet key {:02x} n {}",
                        r.ratchet_key_bytes()[0],
                        r.message_number()
                    ),
                }
            };
            eprintln!("{} -> {}: {kind} (net {})", m.from, m.to, self.net.len());
        }
        let from_user = self.user_of(m.from);
        let from_device = self.devs[m.from].id;
        let now = self.now;
        if m.group {
            match self.store(i).group_receive(&GROUP, &from_user, &m.payload) {
                Ok(entry) => self.decrypted(i, &entry.plaintext),
                Err(Error::Session(f)) => match f.action {
                    Action::RetryLater(RetryLater::MissingDistribution) => {
                        let chain = *GroupMessage::from_bytes(&m.payload)
                            .unwrap()
                            .chain()
                            .as_bytes();
                        let now = self.now;
                        let first = *self.devs[i].since.entry(m.payload.clone()).or_insert(now);
                        let last = self.devs[i].asked.get(&(m.from, chain)).copied();
                        if self.now.saturating_sub(first) > MAX_WAIT {
                            self.count("group messages given up");
                        } else {
                            if last.is_none_or(|t| self.now.saturating_sub(t) >= ASK_AGAIN_AFTER) {
                                self.ensure_sessions(i, self.devs[m.from].user);
                                self.store(i)
                                    .request_distribution(&GROUP, &from_user, from_device)
                                    .unwrap();
                                self.count("distribution requests");
                                self.devs[i].asked.insert((m.from, chain), self.now);
                            }
                            if std::env::var_os("SOTTO_SIM_TRACE").is_some() {
                                eprintln!(
                                    "    waits for chain {:02x} of {} (now {}, asked {last:?}, first {first})",
                                    chain[0], m.from, self.now
                                );
                            }
                            self.devs[i].waiting.push(m);
                        }
                    }
                    Action::Ignore(_) => self.count("group messages ignored"),
                    a => panic!("group message: {a:?}"),
                },
                Err(e) => panic!("device {i}, group message from {}: {e:?}", m.from),
            }
            self.settle(i);
            return;
        }
        match self
            .store(i)
            .receive_from(&from_user, from_device, &m.payload, now)
        {
            Ok(Delivered::Message(entry)) => self.decrypted(i, &entry.plaintext),
            Ok(Delivered::Distribution { .. }) => {
                self.count("distributions installed");
                self.settle(i);
                self.retry_waiting(i);
            }
            Ok(Delivered::RetryRequest { .. }) => self.count("retry requests"),
            Ok(Delivered::DistributionRequest { answer, .. }) => {
                if answer.is_none() {
                    self.count("distribution requests not answered");
                }
                self.count("distributions requested");
            }
            Ok(d) => panic!("{d:?}"),
            Err(Error::Session(f)) => match f.action {
                Action::Ignore(Ignore::RecoveryPending) => {
                    if std::env::var_os("SOTTO_SIM_TRACE").is_some() {
                        eprintln!("    ({})", f.error);
                    }
                    self.count("recoveries rate-limited");
                }
                Action::Ignore(_) => self.count("ignored"),
                Action::RequestRetry(hint) => {
                    self.count("retry requests sent");
                    self.store(i)
                        .request_retry(&from_user, from_device, &hint, now)
                        .unwrap();
                }
                Action::StartNewSession(hint) => {
                    self.count("new sessions for recovery");
                    let bundle = self.bundle(m.from);
                    self.store(i)
                        .start_new_session(&from_user, from_device, bundle, &hint, now)
                        .unwrap();
                }
                Action::RetryLater(r) => panic!("device {i}: retry later {r:?}"),
            },
            Err(e) => panic!("device {i}, message from {}: {e:?}", m.from),
        }
        self.settle(i);
        // Keep the one-time prekeys topped up.
        let status = self.store(i).device_status().unwrap();
        if status.one_time_prekeys < 3 {
            self.store(i).replenish_prekeys(6, 0).unwrap();
            self.settle(i);
        }
    }

    /// Gives the group messages waiting at device `i` another try.
    fn retry_waiting(&mut self, i: usize) {
        for w in std::mem::take(&mut self.devs[i].waiting) {
            self.deliver(w);
        }
    }

    fn close(&mut self, i: usize) {
        self.devs[i].store = None;
    }

    fn files(path: &std::path::Path) -> [PathBuf; 3] {
        ["", "-wal", "-shm"].map(|s| {
            let mut p = path.as_os_str().to_owned();
            p.push(s);
            PathBuf::from(p)
        })
    }

    /// A copy of device `i`'s database files, taken between operations.
    fn backup(&mut self, i: usize) {
        self.close(i);
        let to = self.devs[i].path.with_extension("backup");
        for (from, to) in Self::files(&self.devs[i].path)
            .iter()
            .zip(Self::files(&to).iter())
        {
            let _ = std::fs::remove_file(to);
            if from.exists() {
                std::fs::copy(from, to).unwrap();
            }
        }
        self.devs[i].backup = Some(to);
        self.count("backups");
    }

    /// Device `i` comes back from its backup, and its application makes it
    /// safe and hands its new group chain out.
    fn restore(&mut self, i: usize) {
        let Some(from) = self.devs[i].backup.take() else {
            return;
        };
        self.close(i);
        for (src, dst) in Self::files(&from)
            .iter()
            .zip(Self::files(&self.devs[i].path).iter())
        {
            let _ = std::fs::remove_file(dst);
            if src.exists() {
                std::fs::copy(src, dst).unwrap();
            }
        }
        let mark = self.devs[i].mark;
        let now = self.now;
        let restored = self.store(i).after_restore(now, mark).unwrap();
        self.count("restores");
        if let Some(r) = restored {
            self.count("restores found stale");
            assert_eq!(r.groups, vec![GROUP]);
            self.settle(i);
            self.store(i).replenish_prekeys(6, 0).unwrap();
            self.settle(i);
            self.hand_out_chain(i);
            // Its receivers are gone: ask every member device again.
            self.devs[i].asked.clear();
        }
    }

    /// Device `i` hands its group chain to every member device.
    fn hand_out_chain(&mut self, i: usize) {
        for u in 0..USERS.len() {
            self.ensure_sessions(i, u);
        }
        let members: Vec<UserId> = USERS.iter().map(|(n, _)| uid(n)).collect();
        let update = self.store(i).distribute_group(&GROUP, &members).unwrap();
        assert!(update.unusable.is_empty(), "{:?}", update.unusable);
        self.settle(i);
    }

    fn set_up(&mut self) {
        for i in 0..self.devs.len() {
            let now = self.now;
            self.store(i).create_device(now).unwrap();
            let user = self.user_of(i);
            let id = self.devs[i].id;
            self.store(i).set_account(&user, id).unwrap();
            self.store(i).replenish_prekeys(6, 0).unwrap();
            self.settle(i);
        }
        for i in 0..self.devs.len() {
            for (u, (name, _)) in USERS.iter().enumerate() {
                let list = self.list(u);
                let now = self.now;
                self.store(i)
                    .update_devices(&uid(name), &list, now)
                    .unwrap();
            }
        }
        let members: Vec<UserId> = USERS.iter().map(|(n, _)| uid(n)).collect();
        for i in 0..self.devs.len() {
            for u in 0..USERS.len() {
                self.ensure_sessions(i, u);
            }
            self.store(i).create_group(&GROUP, &members).unwrap();
            self.settle(i);
        }
        self.drain();
    }

    /// Delivers until the network is empty.
    fn drain(&mut self) {
        let mut steps = 0;
        while !self.net.is_empty() {
            steps += 1;
            assert!(steps < 3_000, "the network does not quiet down");
            let m = self.net.remove(0);
            self.deliver(m);
        }
    }

    fn verify_all(&mut self) {
        for i in 0..self.devs.len() {
            self.store(i).verify().unwrap();
        }
    }

    fn run(&mut self, steps: usize) {
        let (mut drops, mut dups) = (0, 0);
        for _ in 0..steps {
            self.now += 60;
            let n = self.devs.len();
            match self.rng.below(100) {
                0..=24 => {
                    let i = self.rng.below(n);
                    let u = self.rng.below(USERS.len());
                    if u != self.devs[i].user || self.devices_of(u).len() > 1 {
                        self.send(i, u);
                    }
                }
                25..=34 => {
                    let i = self.rng.below(n);
                    self.group_send(i);
                }
                35..=84 if !self.net.is_empty() => {
                    // Mostly in order, sometimes not.
                    let k = if self.rng.chance(70) {
                        0
                    } else {
                        self.rng.below(self.net.len())
                    };
                    let m = self.net.remove(k);
                    self.deliver(m);
                }
                85..=88 if !self.net.is_empty() && drops < MAX_DROPS => {
                    let k = self.rng.below(self.net.len());
                    self.net.remove(k);
                    drops += 1;
                    self.count("lost by the network");
                }
                89..=92 if !self.net.is_empty() && dups < MAX_DUPS => {
                    let k = self.rng.below(self.net.len());
                    let m = self.net[k].clone();
                    self.net.push(m);
                    dups += 1;
                    self.count("duplicated by the network");
                }
                93..=95 => {
                    let i = self.rng.below(n);
                    self.close(i);
                    self.count("restarts");
                }
                96..=97 => {
                    let i = self.rng.below(n);
                    if self.devs[i].backup.is_none() {
                        self.backup(i);
                    }
                }
                98..=99 => {
                    let i = self.rng.below(n);
                    self.restore(i);
                }
                _ => {}
            }
        }
        self.verify_all();
    }

    /// The network is reliable again: every pair of devices makes a round
    /// trip, then a message each way must decrypt at once; then a group
    /// message from every device must reach every other one.
    fn converge(&mut self) {
        let n = self.devs.len();
        let mut rounds = 0;
        loop {
            rounds += 1;
            // Past every rate limit (SPEC §16.6).
            self.now += sotto::sessions::MIN_RECOVERY_INTERVAL;
            self.drain();
            for a in 0..n {
                for b in 0..n {
                    if a != b {
                        let (ua, ub) = (self.devs[a].user, self.devs[b].user);
                        self.send(a, ub);
                        self.drain();
                        self.send(b, ua);
                        self.drain();
                    }
                }
            }
            let mut missing = Vec::new();
            for a in 0..n {
                for b in 0..n {
                    if a == b {
                        continue;
                    }
                    let ub = self.devs[b].user;
                    let text = self.send(a, ub).remove(0);
                    self.drain();
                    let id = String::from_utf8(text).unwrap();
                    missing.extend(
                        self.devices_of(ub)
                            .into_iter()
                            .filter(|j| *j != a && !self.devs[*j].ledger.contains(&id))
                            .map(|j| (id.clone(), j)),
                    );
                }
            }
            if missing.is_empty() {
                break;
            }
            assert!(
                rounds < MAX_ROUNDS,
                "after {rounds} rounds of round trips, still not delivered: {missing:?}"
            );
        }
        self.rounds = rounds;
        // A member missing a chain asks for it on the first message; the
        // chain it gets starts after that message (a distribution never
        // opens what was sent before it, SPEC §15.7), so the second is the
        // one that must arrive.
        for a in 0..n {
            self.group_send(a);
            self.drain();
        }
        for a in 0..n {
            let text = self.group_send(a);
            self.drain();
            let id = String::from_utf8(text).unwrap();
            for j in 0..n {
                if j != a {
                    assert!(
                        self.devs[j].ledger.contains(&id),
                        "group message {id} did not reach device {j}"
                    );
                }
            }
        }
        self.verify_all();
    }
}

fn simulate(on_disk: bool, default_steps: usize) -> BTreeMap<&'static str, u64> {
    let seed: u64 = std::env::var("SOTTO_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_0001);
    let steps: usize = std::env::var("SOTTO_SIM_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_steps);
    let started = std::time::Instant::now();
    let mut sim = Sim::new(seed, on_disk);
    sim.set_up();
    sim.run(steps);
    sim.converge();
    println!(
        "sim ({}, seed {seed}, {steps} steps, {:.1}s): converged after {} round(s) of round \
         trips; {:?}",
        if on_disk { "temp dir" } else { "RAM disk" },
        started.elapsed().as_secs_f64(),
        sim.rounds,
        sim.stats
    );
    sim.stats
}

/// On the disk, with every fsync: a short run.
#[test]
fn the_session_layer_on_disk() {
    simulate(true, 80);
}

/// A longer run with the files on a RAM disk (where there is one), which
/// leaves out the fsyncs and keeps the run short: several restores.
#[test]
fn the_session_layer_on_a_ram_disk_with_restores() {
    let stats = simulate(false, 600);
    assert!(stats.get("restores found stale").copied().unwrap_or(0) > 0);
}
