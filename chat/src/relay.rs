//! The relay: a prekey directory that hands out each one-time prekey once,
//! and a store-and-forward mailbox that deletes a message only when its
//! recipient acknowledges it, after the recipient's store committed it. It
//! sees only public keys and ciphertexts.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, MutexGuard};

use sotto::{IdentityKey, KemPreKey, OneTimePreKey, PreKeyBundle, SignedPreKey};
use sotto_store::PreKeyUpload;

use crate::wire::{Frame, kind};

/// A device's address: user and device id.
type Address = (String, u32);

/// Most messages waiting for one device; past it sends to it are refused.
const MAX_MAILBOX: usize = 10_000;

/// What the directory holds for one device.
struct Published {
    identity: IdentityKey,
    signed: SignedPreKey,
    last_resort: Option<KemPreKey>,
    one_time: VecDeque<OneTimePreKey>,
    one_time_kem: VecDeque<KemPreKey>,
}

/// A message waiting in a mailbox.
struct Waiting {
    from: Address,
    payload: Vec<u8>,
    /// What it is: the client's own tag (pairwise, or group and its id).
    tag: Vec<u8>,
}

#[derive(Default)]
struct State {
    directory: BTreeMap<Address, Published>,
    mailboxes: HashMap<Address, BTreeMap<u64, Waiting>>,
    /// The connection of each device online, by connection number.
    online: HashMap<Address, (u64, Sender<Frame>)>,
    connections: u64,
    next_seq: u64,
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> MutexGuard<'_, State> {
    // A connection thread that panicked leaves consistent data behind:
    // every change is made under one lock in one step.
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Serves on `listener` until the process ends.
///
/// # Errors
///
/// The listener's I/O errors.
pub(crate) fn serve(listener: TcpListener) -> io::Result<()> {
    let state = Shared::default();
    for stream in listener.incoming() {
        let stream = stream?;
        let state = Arc::clone(&state);
        std::thread::spawn(move || {
            if let Err(e) = connection(stream, &state) {
                eprintln!("relay: connection closed: {e}");
            }
        });
    }
    Ok(())
}

fn deliver_frame(seq: u64, w: &Waiting) -> Frame {
    Frame::new(
        kind::DELIVER,
        vec![
            seq.to_be_bytes().to_vec(),
            w.from.0.as_bytes().to_vec(),
            w.from.1.to_be_bytes().to_vec(),
            w.payload.clone(),
            w.tag.clone(),
        ],
    )
}

fn connection(stream: TcpStream, state: &Shared) -> io::Result<()> {
    let mut reader = stream.try_clone()?;
    let (tx, rx) = mpsc::channel::<Frame>();
    let mut writer = stream;
    std::thread::spawn(move || {
        for frame in rx {
            if frame.write(&mut writer).is_err() {
                break;
            }
        }
    });
    let hello = Frame::read(&mut reader)?.ok_or(io::ErrorKind::UnexpectedEof)?;
    if hello.kind != kind::HELLO {
        return Err(io::ErrorKind::InvalidData.into());
    }
    let me: Address = (hello.text(0)?, hello.u32(1)?);
    let number = {
        let mut s = lock(state);
        s.connections = s.connections.saturating_add(1);
        let number = s.connections;
        s.online.insert(me.clone(), (number, tx.clone()));
        // Everything still waiting, oldest first: the client acknowledges
        // each one after its store committed it.
        if let Some(mailbox) = s.mailboxes.get(&me) {
            for (seq, w) in mailbox {
                let _ = tx.send(deliver_frame(*seq, w));
            }
        }
        number
    };
    let result = serve_requests(&mut reader, state, &me, &tx);
    let mut s = lock(state);
    if s.online.get(&me).is_some_and(|(n, _)| *n == number) {
        s.online.remove(&me);
    }
    result
}

fn serve_requests(
    reader: &mut TcpStream,
    state: &Shared,
    me: &Address,
    tx: &Sender<Frame>,
) -> io::Result<()> {
    while let Some(frame) = Frame::read(reader)? {
        let reply = match frame.kind {
            kind::UPLOAD => upload(state, me, frame.field(0)?),
            kind::FETCH => Ok(fetch(state, &frame.text(0)?)),
            kind::SEND => {
                let user = frame.text(0)?;
                // No device: every device of the user.
                let device = match frame.field(1)? {
                    [] => None,
                    _ => Some(frame.u32(1)?),
                };
                let reference = frame.field(3)?.to_vec();
                let tag = frame.fields.get(4).cloned().unwrap_or_default();
                send(state, me, &user, device, frame.field(2)?, &tag)
                    .map(|()| Frame::new(kind::OK, vec![reference]))
            }
            kind::ACK => {
                let seq = frame.u64(0)?;
                if let Some(m) = lock(state).mailboxes.get_mut(me) {
                    m.remove(&seq);
                }
                continue;
            }
            _ => Err("unknown request".to_owned()),
        };
        let reply = reply.unwrap_or_else(|e| Frame::new(kind::ERROR, vec![e.into_bytes()]));
        if tx.send(reply).is_err() {
            break;
        }
    }
    Ok(())
}

/// Checks an upload's signatures against the device's identity and adds
/// its keys; `replace` drops what the device had first.
fn upload(state: &Shared, me: &Address, bytes: &[u8]) -> Result<Frame, String> {
    let up = PreKeyUpload::from_bytes(bytes).map_err(|e| e.to_string())?;
    let bad = |e: sotto::Error| e.to_string();
    if let Some(k) = &up.signed_prekey {
        k.verify(&up.identity).map_err(bad)?;
    }
    for k in up
        .last_resort_kem_prekey
        .iter()
        .chain(&up.one_time_kem_prekeys)
    {
        k.verify(&up.identity).map_err(bad)?;
    }
    let mut s = lock(state);
    match s.directory.get_mut(me) {
        Some(p) if p.identity != up.identity => {
            return Err("another identity for this device".into());
        }
        Some(p) => {
            if up.replace {
                p.one_time.clear();
                p.one_time_kem.clear();
            }
            if let Some(k) = up.signed_prekey {
                p.signed = k;
            }
            if let Some(k) = up.last_resort_kem_prekey {
                p.last_resort = Some(k);
            }
            p.one_time.extend(up.one_time_prekeys);
            p.one_time_kem.extend(up.one_time_kem_prekeys);
        }
        None => {
            let signed = up
                .signed_prekey
                .ok_or("a device's first upload needs a signed prekey")?;
            s.directory.insert(
                me.clone(),
                Published {
                    identity: up.identity,
                    signed,
                    last_resort: up.last_resort_kem_prekey,
                    one_time: up.one_time_prekeys.into(),
                    one_time_kem: up.one_time_kem_prekeys.into(),
                },
            );
        }
    }
    Ok(Frame::new(kind::OK, vec![Vec::new()]))
}

/// A bundle for every device of `user`, each with a one-time prekey of
/// each kind while any is left; a one-time prekey handed out is deleted.
fn fetch(state: &Shared, user: &str) -> Frame {
    let mut fields = vec![user.as_bytes().to_vec()];
    let mut s = lock(state);
    for ((u, device), p) in s.directory.iter_mut() {
        if u != user {
            continue;
        }
        let kem = p.one_time_kem.pop_front().or_else(|| p.last_resort.clone());
        let bundle = PreKeyBundle::new(p.identity, p.signed, p.one_time.pop_front(), kem);
        fields.push(device.to_be_bytes().to_vec());
        fields.push(bundle.to_bytes());
    }
    Frame::new(kind::BUNDLES, fields)
}

/// Puts a message in the mailbox of `user`'s `device`, or of every device
/// of `user` but the sender, and pushes it to those online.
fn send(
    state: &Shared,
    from: &Address,
    user: &str,
    device: Option<u32>,
    payload: &[u8],
    tag: &[u8],
) -> Result<(), String> {
    let mut s = lock(state);
    let targets: Vec<Address> = s
        .directory
        .keys()
        .filter(|(u, d)| u == user && device.is_none_or(|want| want == *d))
        .filter(|a| *a != from)
        .cloned()
        .collect();
    if targets.is_empty() {
        return Err(format!("no such device of {user}"));
    }
    if targets
        .iter()
        .any(|t| s.mailboxes.get(t).is_some_and(|m| m.len() >= MAX_MAILBOX))
    {
        return Err("mailbox full".into());
    }
    for to in targets {
        s.next_seq = s.next_seq.saturating_add(1);
        let seq = s.next_seq;
        let waiting = Waiting {
            from: from.clone(),
            payload: payload.to_vec(),
            tag: tag.to_vec(),
        };
        if let Some((_, tx)) = s.online.get(&to) {
            let _ = tx.send(deliver_frame(seq, &waiting));
        }
        s.mailboxes.entry(to).or_default().insert(seq, waiting);
    }
    Ok(())
}
