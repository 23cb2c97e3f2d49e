//! A chat client: one user's device with its own SQLite store, talking to
//! the relay through the session layer (SPEC.md §16): a record per contact
//! with its devices, sessions started from the relay's bundles, failures
//! answered with retry requests or new sessions, and groups whose sender
//! keys are fanned out to every member device. Every message goes through
//! one store operation: encrypted and committed (in the outbox) before it
//! is sent, decrypted and committed (in the inbox) before it is shown or
//! acknowledged to the relay. A client killed at any point loses nothing:
//! on restart it sends its outbox and shows its inbox again, and the relay
//! sends again what it did not acknowledge.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, BufRead, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver};
use std::time::{SystemTime, UNIX_EPOCH};

use sotto::PreKeyBundle;
use sotto::sessions::{Action, DeviceId, UserId};
use sotto_store::{
    Delivered, Error, Incoming, IncomingKind, Outgoing, OutgoingKind, Store, StoreKey,
};

use crate::wire::{Frame, kind};

/// One-time prekeys of each kind kept on the relay.
const ONE_TIME_PREKEYS: usize = 20;
const ONE_TIME_KEM_PREKEYS: usize = 10;
/// This client's device id (one device per user in this chat).
const DEVICE: u32 = 1;

/// The chat's own plaintext kinds, inside the session layer's payloads.
const DIRECT: u8 = b'D';
const INVITE: u8 = b'I';
/// Relay tags: a pairwise message, or a group message and its group.
const TAG_PAIRWISE: u8 = b'P';
const TAG_GROUP: u8 = b'G';

enum Event {
    Line(String),
    Frame(Frame),
    Closed,
}

/// A group as the chat knows it: id, name and members.
#[derive(Clone)]
struct Group {
    id: [u8; 32],
    members: Vec<String>,
}

/// A running client.
pub(crate) struct Client {
    user: String,
    store: Store,
    relay: TcpStream,
    events: Receiver<Event>,
    /// Events that arrived while waiting for a reply.
    held: VecDeque<Event>,
    /// Messages that need a group not joined or a chain not installed yet.
    waiting: Vec<Frame>,
    /// Group names, kept beside the database (`DB.groups`).
    groups: BTreeMap<String, Group>,
    groups_file: PathBuf,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

fn uid(name: &str) -> io::Result<UserId> {
    UserId::new(name.as_bytes()).map_err(other)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (0..s.len() / 2)
        .map(|i| {
            s.get(2 * i..2 * i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

/// `DB` + `suffix`.
fn beside(db: &Path, suffix: &str) -> PathBuf {
    let mut path = db.as_os_str().to_owned();
    path.push(suffix);
    PathBuf::from(path)
}

/// The store's key, kept in `DB.key` beside the database (an app keeps it
/// in the platform keystore); made on first use.
fn store_key(db: &Path) -> io::Result<StoreKey> {
    let path = beside(db, ".key");
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mut bytes = vec![0u8; 32];
            getrandom::fill(&mut bytes).map_err(other)?;
            std::fs::write(&path, &bytes)?;
            bytes
        }
        Err(e) => return Err(e),
    };
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|_| other("the key file is not 32 bytes"))?;
    Ok(StoreKey::from_bytes(key))
}

impl Client {
    /// Opens the store at `db` (making the device on first run), connects
    /// to `relay` and sends what the outbox holds.
    ///
    /// # Errors
    ///
    /// Store and I/O errors.
    pub(crate) fn start(relay: &str, db: &Path, user: &str) -> io::Result<Self> {
        let mut store = Store::open(db, &store_key(db)?).map_err(other)?;
        if matches!(store.device_status(), Err(Error::NotFound { .. })) {
            store.create_device(now()).map_err(other)?;
        }
        if store.account().map_err(other)?.is_none() {
            store
                .set_account(&uid(user)?, DeviceId(DEVICE))
                .map_err(other)?;
        }
        store
            .replenish_prekeys(ONE_TIME_PREKEYS, ONE_TIME_KEM_PREKEYS)
            .map_err(other)?;
        let stream = TcpStream::connect(relay)?;
        stream.set_nodelay(true)?;
        let (tx, events) = mpsc::channel();
        let mut reader = stream.try_clone()?;
        let frames = tx.clone();
        std::thread::spawn(move || {
            while let Ok(Some(frame)) = Frame::read(&mut reader) {
                if frames.send(Event::Frame(frame)).is_err() {
                    return;
                }
            }
            let _ = frames.send(Event::Closed);
        });
        std::thread::spawn(move || {
            for line in io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if tx.send(Event::Line(line)).is_err() {
                    return;
                }
            }
            let _ = tx.send(Event::Closed);
        });
        let groups_file = beside(db, ".groups");
        let mut client = Self {
            user: user.to_owned(),
            store,
            relay: stream,
            events,
            held: VecDeque::new(),
            waiting: Vec::new(),
            groups: BTreeMap::new(),
            groups_file,
        };
        client.load_groups();
        client.write(&Frame::new(
            kind::HELLO,
            vec![user.as_bytes().to_vec(), DEVICE.to_be_bytes().to_vec()],
        ))?;
        // What a crash left: uploads and messages not yet sent, plaintexts
        // not yet shown.
        for out in client.store.outbox().map_err(other)? {
            client.send_out(&out)?;
        }
        for entry in client.store.inbox().map_err(other)? {
            client.handle(&entry, " (from the inbox)")?;
        }
        let identity = client.store.device_status().map_err(other)?.identity;
        let fp = hex(identity
            .fingerprint()
            .as_bytes()
            .get(..4)
            .unwrap_or_default());
        println!("[{user}] ready (identity {fp})");
        Ok(client)
    }

    fn load_groups(&mut self) {
        let text = std::fs::read_to_string(&self.groups_file).unwrap_or_default();
        for line in text.lines() {
            let mut parts = line.split(' ');
            if let (Some(id), Some(name), Some(members)) =
                (parts.next(), parts.next(), parts.next())
                && let Some(id) = unhex(id).and_then(|v| <[u8; 32]>::try_from(v).ok())
            {
                let members = members.split(',').map(str::to_owned).collect();
                self.groups.insert(name.to_owned(), Group { id, members });
            }
        }
    }

    /// Records a group's name before the store joins it, so that a crash in
    /// between leaves a name for a group the store may not have yet (the
    /// join is then redone), never the reverse.
    fn remember_group(&mut self, name: &str, group: &Group) -> io::Result<()> {
        if self.groups.contains_key(name) {
            return Ok(());
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.groups_file)?;
        writeln!(f, "{} {name} {}", hex(&group.id), group.members.join(","))?;
        f.sync_data()?;
        self.groups.insert(name.to_owned(), group.clone());
        Ok(())
    }

    fn group_name(&self, id: &[u8; 32]) -> String {
        self.groups
            .iter()
            .find(|(_, g)| g.id == *id)
            .map_or_else(|| hex(id.get(..4).unwrap_or_default()), |(n, _)| n.clone())
    }

    fn write(&mut self, frame: &Frame) -> io::Result<()> {
        frame.write(&mut self.relay)
    }

    /// Waits for the relay's answer to a request, holding other events.
    fn reply(&mut self, want: impl Fn(&Frame) -> bool) -> io::Result<Frame> {
        loop {
            match self.events.recv().map_err(other)? {
                Event::Frame(f) if f.kind == kind::ERROR => {
                    return Err(other(f.text(0).unwrap_or_default()));
                }
                Event::Frame(f) if want(&f) => return Ok(f),
                Event::Closed => return Err(other("relay closed")),
                event => self.held.push_back(event),
            }
        }
    }

    fn send_frame(
        &mut self,
        to: &str,
        device: Option<u32>,
        payload: &[u8],
        reference: &[u8],
        tag: Vec<u8>,
    ) -> io::Result<()> {
        let device = device.map(|d| d.to_be_bytes().to_vec()).unwrap_or_default();
        self.write(&Frame::new(
            kind::SEND,
            vec![
                to.as_bytes().to_vec(),
                device,
                payload.to_vec(),
                reference.to_vec(),
                tag,
            ],
        ))?;
        self.reply(|f| {
            f.kind == kind::OK && f.fields.first().map(Vec::as_slice) == Some(reference)
        })?;
        Ok(())
    }

    /// Sends one committed outbox entry and acknowledges it once the relay
    /// has it.
    fn send_out(&mut self, out: &Outgoing) -> io::Result<()> {
        let reference = out.id.to_be_bytes().to_vec();
        match out.kind {
            OutgoingKind::PreKeys => {
                self.write(&Frame::new(kind::UPLOAD, vec![out.payload.clone()]))?;
                self.reply(|f| f.kind == kind::OK)?;
            }
            OutgoingKind::GroupMessage => {
                let id: [u8; 32] = out
                    .destination
                    .clone()
                    .try_into()
                    .map_err(|_| other("group id"))?;
                let members = self
                    .store
                    .group_status(&id)
                    .map_err(other)?
                    .ok_or_else(|| other("no such group"))?
                    .members;
                let mut tag = vec![TAG_GROUP];
                tag.extend_from_slice(&id);
                for member in members {
                    let name = String::from_utf8_lossy(member.as_bytes()).into_owned();
                    if name != self.user {
                        self.send_frame(&name, None, &out.payload, &reference, tag.clone())?;
                    }
                }
            }
            _ => {
                let to = String::from_utf8_lossy(&out.destination).into_owned();
                self.send_frame(
                    &to,
                    out.device,
                    &out.payload,
                    &reference,
                    vec![TAG_PAIRWISE],
                )?;
            }
        }
        self.store.ack_sent(out.id).map_err(other)?;
        Ok(())
    }

    fn send_all(&mut self, outgoing: &[Outgoing]) -> io::Result<()> {
        for out in outgoing {
            self.send_out(out)?;
        }
        Ok(())
    }

    /// Shows (or acts on) an inbox entry, then acknowledges it.
    fn handle(&mut self, entry: &Incoming, note: &str) -> io::Result<()> {
        let from = String::from_utf8_lossy(&entry.source).into_owned();
        if entry.kind == IncomingKind::RetryRequest {
            // This small chat keeps no history of what it sent, so it has
            // nothing to send again; an app would resend the message the
            // entry's hint names, then acknowledge.
            println!("[{}] {from} asked for a message again{note}", self.user);
        } else if let Some(group) = entry.group {
            let name = self.group_name(&group);
            println!(
                "[{}] #{name} {from}: {}{note}",
                self.user,
                String::from_utf8_lossy(&entry.plaintext)
            );
        } else {
            match entry.plaintext.split_first() {
                Some((&DIRECT, text)) => {
                    println!(
                        "[{}] {from}: {}{note}",
                        self.user,
                        String::from_utf8_lossy(text)
                    );
                }
                Some((&INVITE, rest)) => self.join(&from, rest)?,
                _ => println!("[{}] {from}: (unreadable){note}", self.user),
            }
        }
        self.store.ack_read(entry.id).map_err(other)?;
        Ok(())
    }

    /// An invitation: `group id (32) || name len || name || members`.
    fn join(&mut self, from: &str, rest: &[u8]) -> io::Result<()> {
        let (id, rest) = rest
            .split_at_checked(32)
            .ok_or_else(|| other("bad invite"))?;
        let (&len, rest) = rest.split_first().ok_or_else(|| other("bad invite"))?;
        let (name, members) = rest
            .split_at_checked(usize::from(len))
            .ok_or_else(|| other("bad invite"))?;
        let name = String::from_utf8_lossy(name).into_owned();
        let members: Vec<String> = String::from_utf8_lossy(members)
            .split(',')
            .map(str::to_owned)
            .collect();
        let group = Group {
            id: id.try_into().map_err(other)?,
            members: members.clone(),
        };
        self.remember_group(&name, &group)?;
        println!("[{}] joined #{name} (invited by {from})", self.user);
        self.create_group(&group)
    }

    /// Joins or makes a group in the store and sends the local chain to
    /// every member device.
    fn create_group(&mut self, group: &Group) -> io::Result<()> {
        let mut ids = Vec::new();
        for m in &group.members {
            if *m != self.user {
                self.ensure_sessions(m)?;
            }
            ids.push(uid(m)?);
        }
        match self.store.create_group(&group.id, &ids) {
            Ok(update) => self.send_all(&update.outgoing)?,
            Err(Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(other(e)),
        }
        self.retry_waiting()
    }

    /// Runs until stdin or the relay closes.
    ///
    /// # Errors
    ///
    /// I/O errors.
    pub(crate) fn run(mut self) -> io::Result<()> {
        loop {
            let event = match self.held.pop_front() {
                Some(event) => event,
                None => self.events.recv().map_err(other)?,
            };
            match event {
                Event::Line(line) => {
                    if !self.command(line.trim())? {
                        return Ok(());
                    }
                }
                Event::Frame(f) if f.kind == kind::DELIVER => {
                    if !self.deliver(&f)? {
                        self.waiting.push(f);
                    }
                }
                Event::Frame(_) => {}
                Event::Closed => return Ok(()),
            }
        }
    }

    /// Gives the messages that waited for a group or a chain another try.
    fn retry_waiting(&mut self) -> io::Result<()> {
        for f in std::mem::take(&mut self.waiting) {
            if !self.deliver(&f)? {
                self.waiting.push(f);
            }
        }
        Ok(())
    }

    /// A message from the relay: committed to the inbox, shown, and only
    /// then acknowledged (the relay keeps it until then). `false` if it
    /// must wait (a group not joined or a chain not installed yet).
    fn deliver(&mut self, f: &Frame) -> io::Result<bool> {
        let seq = f.u64(0)?;
        let from = f.text(1)?;
        let device = DeviceId(f.u32(2)?);
        let payload = f.field(3)?.to_vec();
        let tag = f.fields.get(4).cloned().unwrap_or_default();
        let done = match tag.split_first() {
            Some((&TAG_GROUP, id)) => {
                let id: [u8; 32] = id.try_into().map_err(other)?;
                self.group_message(&from, &id, &payload)?
            }
            _ => self.pairwise(&from, device, &payload, true)?,
        };
        if done {
            self.write(&Frame::new(kind::ACK, vec![seq.to_be_bytes().to_vec()]))?;
            self.replenish()?;
        }
        Ok(done)
    }

    fn group_message(&mut self, from: &str, id: &[u8; 32], payload: &[u8]) -> io::Result<bool> {
        match self.store.group_receive(id, &uid(from)?, payload) {
            Ok(entry) => self.handle(&entry, "")?,
            // Its chain or its group is not here yet: keep it.
            Err(Error::Session(f)) if matches!(f.action, Action::RetryLater(_)) => {
                return Ok(false);
            }
            Err(Error::NotFound { record }) if record.starts_with("group/") => return Ok(false),
            Err(e) => println!("[{}] dropped a group message from {from}: {e}", self.user),
        }
        Ok(true)
    }

    fn pairwise(
        &mut self,
        from: &str,
        device: DeviceId,
        payload: &[u8],
        first: bool,
    ) -> io::Result<bool> {
        let user = uid(from)?;
        match self.store.receive_from(&user, device, payload, now()) {
            Ok(Delivered::Message(entry)) => self.handle(&entry, "")?,
            Ok(Delivered::Distribution { group }) => {
                println!(
                    "[{}] #{} {from}'s sender key installed",
                    self.user,
                    self.group_name(&group)
                );
                self.retry_waiting()?;
            }
            Ok(Delivered::DistributionRequest {
                answer: Some(out), ..
            }) => self.send_out(&out)?,
            Ok(Delivered::RetryRequest { entry, .. }) => self.handle(&entry, "")?,
            Ok(_) => {}
            // A contact or device not known yet: ask the relay, then again.
            Err(Error::NotFound { record }) if record.starts_with("peer/") && first => {
                self.refresh_devices(from)?;
                return self.pairwise(from, device, payload, false);
            }
            Err(Error::NotFound { record }) if record.starts_with("group/") => return Ok(false),
            Err(Error::Session(f)) => match f.action {
                Action::RetryLater(_) if first => {
                    self.refresh_devices(from)?;
                    return self.pairwise(from, device, payload, false);
                }
                Action::RequestRetry(hint) => {
                    let out = self
                        .store
                        .request_retry(&user, device, &hint, now())
                        .map_err(other)?;
                    self.send_out(&out)?;
                }
                Action::StartNewSession(hint) => {
                    let bundles = self.fetch(from)?;
                    if let Some((_, bundle)) = bundles.into_iter().find(|(d, _)| *d == device) {
                        let out = self
                            .store
                            .start_new_session(&user, device, bundle, &hint, now())
                            .map_err(other)?;
                        self.send_out(&out)?;
                    }
                }
                _ => {}
            },
            Err(e) => println!("[{}] dropped a message from {from}: {e}", self.user),
        }
        Ok(true)
    }

    fn replenish(&mut self) -> io::Result<()> {
        let status = self.store.device_status().map_err(other)?;
        let low = status.one_time_prekeys < ONE_TIME_PREKEYS / 2
            || status.one_time_kem_prekeys < ONE_TIME_KEM_PREKEYS / 2;
        if low
            && let Some(out) = self
                .store
                .replenish_prekeys(ONE_TIME_PREKEYS, ONE_TIME_KEM_PREKEYS)
                .map_err(other)?
        {
            self.send_out(&out)?;
        }
        Ok(())
    }

    /// Runs one command line; `false` to quit.
    fn command(&mut self, line: &str) -> io::Result<bool> {
        let mut words = line.splitn(3, ' ');
        match (words.next(), words.next(), words.next()) {
            (Some("/msg"), Some(to), Some(text)) => {
                let mut plaintext = vec![DIRECT];
                plaintext.extend_from_slice(text.as_bytes());
                self.send_to(to, &plaintext)?;
                println!("[{}] -> {to}: {text}", self.user);
            }
            (Some("/group"), Some(name), Some(members)) => self.new_group(name, members)?,
            (Some("/g"), Some(name), Some(text)) => {
                let Some(group) = self.groups.get(name).cloned() else {
                    println!("[{}] no group #{name}", self.user);
                    return Ok(true);
                };
                let out = self
                    .store
                    .group_send(&group.id, text.as_bytes(), None)
                    .map_err(other)?;
                self.send_out(&out)?;
                println!("[{}] -> #{name}: {text}", self.user);
            }
            (Some("/quit"), ..) => return Ok(false),
            _ => println!(
                "[{}] commands: /msg USER TEXT, /group NAME USER,USER, /g NAME TEXT, /quit",
                self.user
            ),
        }
        Ok(true)
    }

    /// Invites `members` to a new group `name`, then makes it and hands out
    /// the local chain: the invitation travels first on each pairwise
    /// session, so each member joins before the chain arrives.
    fn new_group(&mut self, name: &str, members: &str) -> io::Result<()> {
        let Ok(len) = u8::try_from(name.len()) else {
            println!("[{}] group names are at most 255 bytes", self.user);
            return Ok(());
        };
        let mut all: Vec<String> = members.split(',').map(str::to_owned).collect();
        all.push(self.user.clone());
        all.sort();
        all.dedup();
        let mut id = [0u8; 32];
        getrandom::fill(&mut id).map_err(other)?;
        let group = Group {
            id,
            members: all.clone(),
        };
        self.remember_group(name, &group)?;
        let mut invite = vec![INVITE];
        invite.extend_from_slice(&id);
        invite.push(len);
        invite.extend_from_slice(name.as_bytes());
        invite.extend_from_slice(all.join(",").as_bytes());
        let me = self.user.clone();
        for m in all.iter().filter(|m| **m != me) {
            self.send_to(m, &invite)?;
        }
        self.create_group(&group)?;
        println!("[{}] #{name} created with {}", self.user, all.join(", "));
        Ok(())
    }

    /// Sessions with every device of `to`: its device list and bundles from
    /// the relay when the record needs them.
    fn ensure_sessions(&mut self, to: &str) -> io::Result<()> {
        let user = uid(to)?;
        let needs = match self.store.plan_send(&user, now()) {
            Ok(plan) => !plan.needs_bundle.is_empty() || plan.ready.is_empty(),
            Err(Error::NotFound { .. }) => true,
            Err(e) => return Err(other(e)),
        };
        if needs {
            let bundles = self.refresh_devices(to)?;
            let plan = self.store.plan_send(&user, now()).map_err(other)?;
            for device in plan.needs_bundle {
                if let Some((_, bundle)) = bundles.iter().find(|(d, _)| *d == device) {
                    self.store
                        .add_bundle(&user, device, bundle.clone(), now())
                        .map_err(other)?;
                }
            }
        }
        Ok(())
    }

    /// Fetches `user`'s bundles and gives the store its device list.
    fn refresh_devices(&mut self, user: &str) -> io::Result<Vec<(DeviceId, PreKeyBundle)>> {
        let bundles = self.fetch(user)?;
        let list: Vec<_> = bundles.iter().map(|(d, b)| (*d, *b.identity())).collect();
        self.store
            .update_devices(&uid(user)?, &list, now())
            .map_err(other)?;
        Ok(bundles)
    }

    /// Encrypts to every device of `to`, then sends each committed message.
    fn send_to(&mut self, to: &str, plaintext: &[u8]) -> io::Result<()> {
        self.ensure_sessions(to)?;
        let sent = self
            .store
            .send_to_user(&uid(to)?, plaintext, None)
            .map_err(other)?;
        self.send_all(&sent.outgoing)
    }

    fn fetch(&mut self, user: &str) -> io::Result<Vec<(DeviceId, PreKeyBundle)>> {
        self.write(&Frame::new(kind::FETCH, vec![user.as_bytes().to_vec()]))?;
        let reply = self.reply(|f| {
            f.kind == kind::BUNDLES && f.fields.first().map(Vec::as_slice) == Some(user.as_bytes())
        })?;
        let mut out = Vec::new();
        let mut i = 1;
        while i + 1 < reply.fields.len() {
            let device = DeviceId(reply.u32(i)?);
            out.push((
                device,
                PreKeyBundle::from_bytes(reply.field(i + 1)?).map_err(other)?,
            ));
            i += 2;
        }
        if out.is_empty() {
            return Err(other(format!("{user} has no device")));
        }
        Ok(out)
    }
}
