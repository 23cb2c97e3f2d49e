//! §16.1 peer records and their saved form (§16.11, type 0x25).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::frame::Hint;
use super::{
    MAX_ARCHIVED_SESSIONS, MAX_DELETED_DEVICES, MAX_DEVICES_PER_USER,
    MAX_RETRY_REQUESTS_PER_INTERVAL,
};
use crate::hex::hex;
use crate::model::codec::{Layout, Reader};
use crate::model::error::{Refusal, refusal};
use crate::model::keys::identity_key_bytes;
use crate::model::primitives::{MAX_STATE, VERSION};
use crate::model::session::Sess;

/// A session in a record (§16.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// When it was made.
    pub created: u64,
    /// When a message last decrypted on it.
    pub last_decrypt: Option<u64>,
    /// For an archived session, the base key of the session it lost to.
    pub lost_to: Option<[u8; 32]>,
    /// The session.
    pub session: Sess,
}

impl Entry {
    /// A session made at `now`.
    pub fn new(session: Sess, now: u64) -> Self {
        Self {
            created: now,
            last_decrypt: None,
            lost_to: None,
            session,
        }
    }

    /// Started by us, and nothing has decrypted on it (§16.3, §16.5).
    pub fn unanswered(&self) -> bool {
        self.session.initiator && self.last_decrypt.is_none()
    }

    /// The session's base key.
    pub fn base(&self) -> [u8; 32] {
        self.session.base
    }
}

/// One device of the record's user (§16.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerDevice {
    /// The trusted identity.
    pub identity: [u8; 32],
    /// An announced identity not yet acknowledged.
    pub pending: Option<[u8; 32]>,
    /// Since when the device is no longer listed.
    pub stale_since: Option<u64>,
    /// Post-quantum pinned.
    pub pinned: bool,
    /// Classical key agreement allowed.
    pub classical: bool,
    /// The last new session started for recovery.
    pub last_recovery: Option<u64>,
    /// The retry-request window's start.
    pub retry_window: u64,
    /// Retry requests sent in the window.
    pub retry_count: u8,
    /// The hint of an unanswered retry request.
    pub unanswered: Option<Hint>,
    /// The active session.
    pub active: Option<Entry>,
    /// Archived sessions, newest first.
    pub archived: Vec<Entry>,
}

impl PeerDevice {
    /// A device first listed with `identity`.
    pub fn new(identity: [u8; 32]) -> Self {
        Self {
            identity,
            pending: None,
            stale_since: None,
            pinned: false,
            classical: false,
            last_recovery: None,
            retry_window: 0,
            retry_count: 0,
            unanswered: None,
            active: None,
            archived: Vec::new(),
        }
    }

    /// Listed (not stale).
    pub fn listed(&self) -> bool {
        self.stale_since.is_none()
    }

    /// Archives `e` as the newest archived session; past the bound the
    /// oldest is deleted.
    pub fn archive(&mut self, e: Entry) {
        self.archived.insert(0, e);
        self.archived.truncate(MAX_ARCHIVED_SESSIONS);
    }

    /// A new active session; the previous one archived without a mark.
    pub fn install(&mut self, e: Entry) {
        if let Some(mut old) = self.active.replace(e) {
            old.lost_to = None;
            self.archive(old);
        }
    }

    /// Pins the device (§16.4): classical is no longer allowed.
    pub fn pin(&mut self) {
        self.pinned = true;
        self.classical = false;
    }

    /// Every session, active first, then archived newest first.
    pub fn sessions(&self) -> impl Iterator<Item = &Entry> {
        self.active.iter().chain(&self.archived)
    }

    /// How many sessions.
    pub fn session_count(&self) -> usize {
        self.sessions().count()
    }
}

/// A device deleted to make room, remembered (§16.1, §16.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Remembered {
    /// Its trusted identity.
    pub identity: [u8; 32],
    /// Whether it was post-quantum pinned.
    pub pinned: bool,
    /// When it left the device list.
    pub left: u64,
}

/// A peer record (§16.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// §10.1 generation.
    pub generation: u64,
    /// The local device's identity.
    pub local_identity: [u8; 32],
    /// The record's user.
    pub user: Vec<u8>,
    /// For the own record, the local device's id.
    pub local_device: Option<u32>,
    /// The devices by id.
    pub devices: BTreeMap<u32, PeerDevice>,
    /// The devices deleted to make room, remembered, by id.
    pub deleted: BTreeMap<u32, Remembered>,
}

fn entry_json(e: &Entry) -> Value {
    json!({
        "created": e.created, "last_decrypt": e.last_decrypt,
        "lost_to": e.lost_to.map(|b| hex(&b)),
        "session_length": e.session.encode().len(),
        "session": e.session.decoded_json(),
    })
}

impl Record {
    /// An empty record, generation 0.
    pub fn new(user: Vec<u8>, local_identity: [u8; 32], local_device: Option<u32>) -> Self {
        Self {
            generation: 0,
            local_identity,
            user,
            local_device,
            devices: BTreeMap::new(),
            deleted: BTreeMap::new(),
        }
    }

    /// Adds 1 to the generation (saturating).
    pub fn bump(&mut self) {
        self.generation = self.generation.saturating_add(1);
    }

    /// §16.11 encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![VERSION, 0x25];
        out.extend(self.generation.to_be_bytes());
        out.extend(self.local_identity);
        out.push(u8::try_from(self.user.len()).expect("bounded"));
        out.extend(&self.user);
        out.push(u8::from(self.local_device.is_some()));
        if let Some(id) = self.local_device {
            out.extend(id.to_be_bytes());
        }
        out.push(u8::try_from(self.devices.len()).expect("bounded"));
        for (id, d) in &self.devices {
            out.extend(id.to_be_bytes());
            out.extend(d.identity);
            out.push(u8::from(d.pending.is_some()));
            if let Some(p) = d.pending {
                out.extend(p);
            }
            out.push(u8::from(d.stale_since.is_some()));
            if let Some(t) = d.stale_since {
                out.extend(t.to_be_bytes());
            }
            out.push(u8::from(d.pinned) | (u8::from(d.classical) << 1));
            out.push(u8::from(d.last_recovery.is_some()));
            if let Some(t) = d.last_recovery {
                out.extend(t.to_be_bytes());
            }
            out.extend(d.retry_window.to_be_bytes());
            out.push(d.retry_count);
            out.push(u8::from(d.unanswered.is_some()));
            if let Some(h) = &d.unanswered {
                out.extend(h.encode());
            }
            out.push(u8::from(d.active.is_some()));
            if let Some(e) = &d.active {
                encode_entry(&mut out, e);
            }
            out.push(u8::try_from(d.archived.len()).expect("bounded"));
            for e in &d.archived {
                encode_entry(&mut out, e);
            }
        }
        out.push(u8::try_from(self.deleted.len()).expect("bounded"));
        for (id, m) in &self.deleted {
            out.extend(id.to_be_bytes());
            out.extend(m.identity);
            out.push(u8::from(m.pinned));
            out.extend(m.left.to_be_bytes());
        }
        out
    }

    /// §16.11 decoder.
    ///
    /// # Errors
    ///
    /// The first check of §16.11 the input fails.
    pub fn decode(b: &[u8]) -> Result<Self, Refusal> {
        Self::read(b).map(|(r, _)| r)
    }

    /// §16.11 decoder with the layout (devices under `devices[i].`, their
    /// sessions under `devices[i].active.` and `devices[i].archived[j].`,
    /// each session's own fields under `session.`).
    ///
    /// # Errors
    ///
    /// The first check of §16.11 the input fails.
    #[allow(clippy::too_many_lines, reason = "one layout, field by field")]
    pub fn read(b: &[u8]) -> Result<(Self, Layout), Refusal> {
        let bad = || refusal("InvalidEncoding");
        if b.len() > MAX_STATE {
            return Err(refusal("TooLarge"));
        }
        let mut r = Reader::header(b, 0x25)?;
        let generation = r.u64("generation")?;
        let local_identity = r.ik("local_identity")?;
        let user_len = usize::from(r.u8("user_len")?);
        if user_len == 0 || user_len > super::MAX_USER_ID_LEN {
            return Err(bad());
        }
        let user = r.take("user", user_len)?.to_vec();
        let local_device = if r.flag("has_local_device")? {
            Some(r.u32("local_device")?)
        } else {
            None
        };
        let count = usize::from(r.u8("device_count")?);
        if count > MAX_DEVICES_PER_USER {
            return Err(bad());
        }
        let mut devices = BTreeMap::new();
        let mut previous: Option<u32> = None;
        for i in 0..count {
            r.enter(format!("devices[{i}]"));
            let id = r.u32("device_id")?;
            if previous.is_some_and(|p| id <= p) || Some(id) == local_device {
                return Err(bad());
            }
            previous = Some(id);
            let identity = r.ik("identity")?;
            let pending = if r.flag("has_pending")? {
                let p = r.ik("pending")?;
                if p == identity {
                    return Err(bad());
                }
                Some(p)
            } else {
                None
            };
            let stale_since = if r.flag("has_stale")? {
                Some(r.u64("stale_since")?)
            } else {
                None
            };
            let flags = r.u8("flags")?;
            if flags > 2 {
                return Err(bad());
            }
            let last_recovery = if r.flag("has_recovery")? {
                Some(r.u64("last_recovery")?)
            } else {
                None
            };
            let retry_window = r.u64("retry_window")?;
            let retry_count = r.u8("retry_count")?;
            if retry_count > MAX_RETRY_REQUESTS_PER_INTERVAL {
                return Err(bad());
            }
            let unanswered = if r.flag("has_unanswered")? {
                r.enter("unanswered");
                let h = Hint::read(&mut r)?;
                r.leave();
                Some(h)
            } else {
                None
            };
            let active = if r.flag("has_active")? {
                r.enter("active");
                let e = read_entry(&mut r, true)?;
                r.leave();
                Some(e)
            } else {
                None
            };
            let archived_count = usize::from(r.u8("archived_count")?);
            if archived_count > MAX_ARCHIVED_SESSIONS {
                return Err(bad());
            }
            let mut archived = Vec::with_capacity(archived_count);
            for j in 0..archived_count {
                r.enter(format!("archived[{j}]"));
                archived.push(read_entry(&mut r, false)?);
                r.leave();
            }
            r.leave();
            devices.insert(
                id,
                PeerDevice {
                    identity,
                    pending,
                    stale_since,
                    pinned: flags & 1 == 1,
                    classical: flags & 2 == 2,
                    last_recovery,
                    retry_window,
                    retry_count,
                    unanswered,
                    active,
                    archived,
                },
            );
        }
        let deleted_count = usize::from(r.u8("deleted_count")?);
        if deleted_count > MAX_DELETED_DEVICES {
            return Err(bad());
        }
        let mut deleted = BTreeMap::new();
        let mut previous: Option<u32> = None;
        for i in 0..deleted_count {
            r.enter(format!("deleted[{i}]"));
            let id = r.u32("device_id")?;
            if previous.is_some_and(|p| id <= p)
                || Some(id) == local_device
                || devices.contains_key(&id)
            {
                return Err(bad());
            }
            previous = Some(id);
            let identity = r.ik("identity")?;
            let pinned = r.flag("pinned")?;
            let left = r.u64("left")?;
            r.leave();
            deleted.insert(
                id,
                Remembered {
                    identity,
                    pinned,
                    left,
                },
            );
        }
        r.end()?;
        for d in devices.values() {
            let mut bases: Vec<[u8; 32]> = Vec::new();
            for e in d.sessions() {
                if e.session.local != local_identity
                    || e.session.remote != d.identity
                    || bases.contains(&e.base())
                    || (e.session.pq && !d.pinned)
                    || e.lost_to.is_some_and(|l| l >= e.base())
                {
                    return Err(bad());
                }
                bases.push(e.base());
            }
        }
        let record = Self {
            generation,
            local_identity,
            user,
            local_device,
            devices,
            deleted,
        };
        Ok((record, r.into_layout()))
    }

    /// Every field of the saved form, for the vectors.
    pub fn decoded_json(&self) -> Value {
        json!({
            "generation": self.generation,
            "local_identity": hex(&identity_key_bytes(&self.local_identity)),
            "user": hex(&self.user),
            "local_device": self.local_device,
            "devices": self.devices.iter().map(|(id, d)| json!({
                "device_id": id,
                "identity": hex(&identity_key_bytes(&d.identity)),
                "pending": d.pending.map(|p| hex(&identity_key_bytes(&p))),
                "stale_since": d.stale_since,
                "pinned": d.pinned, "classical_allowed": d.classical,
                "last_recovery": d.last_recovery,
                "retry_window": d.retry_window, "retry_count": d.retry_count,
                "unanswered": d.unanswered.map(|h| h.json()),
                "active": d.active.as_ref().map(entry_json),
                "archived": d.archived.iter().map(entry_json).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "deleted": self.deleted.iter().map(|(id, m)| json!({
                "device_id": id,
                "identity": hex(&identity_key_bytes(&m.identity)),
                "pinned": m.pinned, "left": m.left,
            })).collect::<Vec<_>>(),
        })
    }
}

fn encode_entry(out: &mut Vec<u8>, e: &Entry) {
    out.extend(e.created.to_be_bytes());
    out.push(u8::from(e.last_decrypt.is_some()));
    if let Some(t) = e.last_decrypt {
        out.extend(t.to_be_bytes());
    }
    out.push(u8::from(e.lost_to.is_some()));
    if let Some(b) = e.lost_to {
        out.extend(b);
    }
    let s = e.session.encode();
    out.extend(u32::try_from(s.len()).expect("bounded").to_be_bytes());
    out.extend(s);
}

/// A session entry; an active one must have no lost-to mark (checked when
/// its flag is read).
fn read_entry(r: &mut Reader<'_>, active: bool) -> Result<Entry, Refusal> {
    let created = r.u64("created")?;
    let last_decrypt = if r.flag("has_last_decrypt")? {
        Some(r.u64("last_decrypt")?)
    } else {
        None
    };
    let has_lost_to = r.flag("has_lost_to")?;
    if has_lost_to && active {
        return Err(refusal("InvalidEncoding"));
    }
    let lost_to = if has_lost_to {
        Some(r.a32("lost_to")?)
    } else {
        None
    };
    let len = usize::try_from(r.u32("length")?).expect("u32 fits");
    let offset = r.pos();
    let bytes = r.take("session_bytes", len)?;
    let (session, inner) = Sess::read(bytes)?;
    r.enter("session");
    r.adopt(offset, &inner);
    r.leave();
    Ok(Entry {
        created,
        last_decrypt,
        lost_to,
        session,
    })
}

/// What `expire` deleted (§16.7).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expired {
    /// Stale devices deleted, in id order.
    pub devices: Vec<u32>,
    /// Archived sessions deleted, of the devices that stay.
    pub sessions: usize,
}

impl Record {
    /// §16.7 `expire`.
    pub fn expire(&mut self, now: u64) -> Expired {
        use super::{MAX_ARCHIVED_SESSION_AGE, MAX_STALE_DEVICE_AGE, elapsed};
        let mut out = Expired::default();
        self.devices.retain(|id, d| {
            let old = d
                .stale_since
                .is_some_and(|t| elapsed(now, t) >= MAX_STALE_DEVICE_AGE);
            if old {
                out.devices.push(*id);
            }
            !old
        });
        for d in self.devices.values_mut() {
            let before = d.archived.len();
            d.archived.retain(|e| {
                elapsed(now, e.last_decrypt.unwrap_or(e.created)) < MAX_ARCHIVED_SESSION_AGE
            });
            out.sessions += before - d.archived.len();
        }
        let remembered = self.deleted.len();
        self.deleted
            .retain(|_, m| elapsed(now, m.left) < MAX_STALE_DEVICE_AGE);
        if !out.devices.is_empty() || out.sessions > 0 || self.deleted.len() != remembered {
            self.bump();
        }
        out
    }

    /// §16.7 `after_restore`: how many sessions were deleted.
    pub fn after_restore(&mut self, last_generation: u64) -> usize {
        let mut deleted = 0;
        if self.generation < last_generation {
            for d in self.devices.values_mut() {
                deleted += d.session_count();
                d.active = None;
                d.archived.clear();
            }
        }
        self.generation = self.generation.max(last_generation).saturating_add(1);
        deleted
    }
}
