//! A chat client: one user's device with its own SQLite store, talking to
//! the relay. Every message goes through one store operation: encrypted and
//! committed (in the outbox) before it is sent, decrypted and committed (in
//! the inbox) before it is shown or acknowledged to the relay. A client
//! killed at any point loses nothing: on restart it sends its outbox and
//! shows its inbox again, and the relay sends again what it did not
//! acknowledge.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, BufRead};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver};
use std::time::{SystemTime, UNIX_EPOCH};

use sotto::PreKeyBundle;
use sotto_store::{Error, Outgoing, OutgoingKind, Store, StoreKey};

use crate::wire::{Frame, kind};

/// One-time prekeys of each kind kept on the relay.
const ONE_TIME_PREKEYS: usize = 20;
const ONE_TIME_KEM_PREKEYS: usize = 10;
/// The one device of each user.
const DEVICE: u32 = 1;

/// Kind bytes of the chat's own plaintexts.
const DIRECT: u8 = b'D';
const GROUP: u8 = b'G';

enum Event {
    Line(String),
    Frame(Frame),
    Closed,
}

/// A running client.
pub(crate) struct Client {
    user: String,
    store: Store,
    relay: TcpStream,
    events: Receiver<Event>,
    /// Events that arrived while waiting for a reply.
    held: VecDeque<Event>,
    groups: BTreeMap<String, Vec<String>>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// The store's key, kept in `DB.key` beside the database (an app keeps it
/// in the platform keystore); made on first use.
fn store_key(db: &Path) -> io::Result<StoreKey> {
    let mut path = db.as_os_str().to_owned();
    path.push(".key");
    let path = PathBuf::from(path);
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
    /// to `relay` and publishes what the outbox holds.
    ///
    /// # Errors
    ///
    /// Store and I/O errors.
    pub(crate) fn start(relay: &str, db: &Path, user: &str) -> io::Result<Self> {
        let mut store = Store::open(db, &store_key(db)?).map_err(other)?;
        if matches!(store.device_status(), Err(Error::NotFound { .. })) {
            store.create_device(now()).map_err(other)?;
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
        let mut client = Self {
            user: user.to_owned(),
            store,
            relay: stream,
            events,
            held: VecDeque::new(),
            groups: BTreeMap::new(),
        };
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
            client.show(&entry.source, &entry.plaintext, " (from the inbox)");
            client.store.ack_read(entry.id).map_err(other)?;
        }
        let identity = client.store.device_status().map_err(other)?.identity;
        let fp: String = identity.fingerprint().as_bytes()[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        println!("[{user}] ready (identity {fp})");
        Ok(client)
    }

    fn write(&mut self, frame: &Frame) -> io::Result<()> {
        frame.write(&mut self.relay)
    }

    /// Waits for the relay's answer to a request, holding other frames.
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

    /// Sends one committed outbox entry and acknowledges it once the relay
    /// has it.
    fn send_out(&mut self, out: &Outgoing) -> io::Result<()> {
        let reference = out.id.to_be_bytes().to_vec();
        let frame = match out.kind {
            OutgoingKind::PreKeys => Frame::new(kind::UPLOAD, vec![out.payload.clone()]),
            _ => Frame::new(
                kind::SEND,
                vec![
                    out.destination.clone(),
                    out.device.unwrap_or(DEVICE).to_be_bytes().to_vec(),
                    out.payload.clone(),
                    reference.clone(),
                ],
            ),
        };
        self.write(&frame)?;
        let is_upload = out.kind == OutgoingKind::PreKeys;
        self.reply(|f| f.kind == kind::OK && (is_upload || f.fields.first() == Some(&reference)))?;
        self.store.ack_sent(out.id).map_err(other)?;
        Ok(())
    }

    fn show(&self, from: &[u8], plaintext: &[u8], note: &str) {
        let from = String::from_utf8_lossy(from);
        match plaintext.split_first() {
            Some((&DIRECT, text)) => {
                println!(
                    "[{}] {from}: {}{note}",
                    self.user,
                    String::from_utf8_lossy(text)
                );
            }
            Some((&GROUP, rest)) => {
                let (name, text) = split_group(rest);
                println!("[{}] #{name} {from}: {}{note}", self.user, text);
            }
            _ => println!("[{}] {from}: (unreadable){note}", self.user),
        }
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
                Event::Frame(f) if f.kind == kind::DELIVER => self.deliver(&f)?,
                Event::Frame(_) => {}
                Event::Closed => return Ok(()),
            }
        }
    }

    /// A message from the relay: committed to the inbox, shown, and only
    /// then acknowledged (the relay keeps it until then).
    fn deliver(&mut self, f: &Frame) -> io::Result<()> {
        let seq = f.u64(0)?;
        let from = f.field(1)?.to_vec();
        match self.store.receive(&from, f.field(3)?) {
            Ok(entry) => {
                self.show(&entry.source, &entry.plaintext, "");
                self.store.ack_read(entry.id).map_err(other)?;
            }
            // Committed before a crash: already in the inbox, shown at start.
            Err(Error::Protocol(sotto::Error::DuplicateMessage)) => {}
            Err(e) => println!(
                "[{}] dropped a message from {}: {e}",
                self.user,
                String::from_utf8_lossy(&from)
            ),
        }
        self.write(&Frame::new(kind::ACK, vec![seq.to_be_bytes().to_vec()]))?;
        // Prekeys used up by new sessions are replaced.
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
            (Some("/group"), Some(name), Some(members)) => {
                let members: Vec<String> = members.split(',').map(str::to_owned).collect();
                println!(
                    "[{}] #{name} created with {}",
                    self.user,
                    members.join(", ")
                );
                self.groups.insert(name.to_owned(), members);
            }
            (Some("/g"), Some(name), Some(text)) => {
                let members = self.groups.get(name).cloned().unwrap_or_default();
                let Ok(len) = u8::try_from(name.len()) else {
                    println!("[{}] group names are at most 255 bytes", self.user);
                    return Ok(true);
                };
                let mut plaintext = vec![GROUP, len];
                plaintext.extend_from_slice(name.as_bytes());
                plaintext.extend_from_slice(text.as_bytes());
                for member in &members {
                    self.send_to(member, &plaintext)?;
                }
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

    /// Encrypts to `to` (starting a session from a fetched bundle if there
    /// is none), then sends the committed message.
    fn send_to(&mut self, to: &str, plaintext: &[u8]) -> io::Result<()> {
        if self
            .store
            .session_status(to.as_bytes())
            .map_err(other)?
            .is_none()
        {
            let bundle = self.fetch(to)?;
            self.store
                .start_session(to.as_bytes(), &bundle, None)
                .map_err(other)?;
        }
        let out = self
            .store
            .encrypt(to.as_bytes(), plaintext, None)
            .map_err(other)?;
        self.send_out(&out)
    }

    fn fetch(&mut self, user: &str) -> io::Result<PreKeyBundle> {
        self.write(&Frame::new(kind::FETCH, vec![user.as_bytes().to_vec()]))?;
        let reply = self.reply(|f| {
            f.kind == kind::BUNDLES && f.fields.first().map(Vec::as_slice) == Some(user.as_bytes())
        })?;
        let bytes = reply
            .field(2)
            .map_err(|_| other(format!("{user} has no device")))?;
        PreKeyBundle::from_bytes(bytes).map_err(other)
    }
}

fn split_group(rest: &[u8]) -> (String, String) {
    let Some((&len, rest)) = rest.split_first() else {
        return (String::new(), String::new());
    };
    let len = usize::from(len).min(rest.len());
    let (name, text) = rest.split_at(len);
    (
        String::from_utf8_lossy(name).into_owned(),
        String::from_utf8_lossy(text).into_owned(),
    )
}
