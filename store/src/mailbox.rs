//! The inbox and the outbox (SPEC.md §17.4): what an operation received or
//! made, committed in its transaction, kept until the application
//! acknowledges it. A crash after a commit loses nothing: on restart the
//! application reads the inbox again and sends the outbox again.

use sotto::sessions::RetryHint;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::store::{Store, from_sql};

/// What an outbox entry carries.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum OutgoingKind {
    /// Public prekeys to upload to the server: a [`PreKeyUpload`](crate::PreKeyUpload).
    PreKeys,
    /// A pairwise wire message (`sotto::Message`) for a contact's device.
    Message,
    /// A group message (`sotto::group::GroupMessage`) for every member.
    GroupMessage,
}

impl OutgoingKind {
    pub(crate) fn code(self) -> u8 {
        match self {
            Self::PreKeys => 1,
            Self::Message => 2,
            Self::GroupMessage => 3,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::PreKeys),
            2 => Some(Self::Message),
            3 => Some(Self::GroupMessage),
            _ => None,
        }
    }
}

/// A committed outbox entry: send it, then [`Store::ack_sent`] it. Until
/// then it stays in [`Store::outbox`], across crashes; sending it twice is
/// harmless (the receiver refuses the copy as a duplicate).
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct Outgoing {
    /// The entry's id, never reused in this database.
    pub id: u64,
    /// What it carries.
    pub kind: OutgoingKind,
    /// The contact, user or group it goes to (empty for prekeys).
    pub destination: Vec<u8>,
    /// The destination's device, where it goes to one device.
    pub device: Option<u32>,
    /// The group it is about: for a group message, its group; for a
    /// pairwise message that hands out the local chain of a group (a
    /// distribution), that group. If the peer asks for such a message
    /// again (a retry request naming it), answer with
    /// [`Store::distribute_group`] to that peer rather than a resend.
    pub group: Option<[u8; 32]>,
    /// The bytes to send.
    pub payload: Vec<u8>,
    /// The application's reference given to the operation, if any.
    pub app_ref: Option<u64>,
}

/// What an inbox entry carries.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum IncomingKind {
    /// A decrypted payload, pairwise or from a group.
    Message,
    /// A peer's retry request (SPEC §16.6): resend the message its
    /// [`Incoming::retry_hint`] names, then acknowledge the entry. Kept
    /// like a message, so that a crash before the resend loses nothing.
    RetryRequest,
}

impl IncomingKind {
    pub(crate) fn code(self) -> u8 {
        match self {
            Self::Message => 1,
            Self::RetryRequest => 2,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Message),
            2 => Some(Self::RetryRequest),
            _ => None,
        }
    }
}

/// Length of a retry hint with a base key: `ratchet_key (32) ||
/// u32(message_number) || 0x01 || base_key (32)` (SPEC §16.6's encoding).
const HINT_MAX_LEN: usize = 32 + 4 + 1 + 32;

/// A retry hint's bytes, as an inbox entry keeps them.
pub(crate) fn hint_bytes(hint: &RetryHint) -> Vec<u8> {
    let mut out = Vec::with_capacity(HINT_MAX_LEN);
    out.extend_from_slice(&hint.ratchet_key);
    out.extend_from_slice(&hint.message_number.to_be_bytes());
    match hint.base_key {
        Some(base) => {
            out.push(1);
            out.extend_from_slice(&base);
        }
        None => out.push(0),
    }
    out
}

fn hint_from_bytes(bytes: &[u8]) -> Option<RetryHint> {
    let ratchet_key: [u8; 32] = bytes.get(..32)?.try_into().ok()?;
    let message_number = u32::from_be_bytes(bytes.get(32..36)?.try_into().ok()?);
    let base_key = match (bytes.get(36)?, bytes.len()) {
        (0, 37) => None,
        (1, HINT_MAX_LEN) => Some(bytes.get(37..)?.try_into().ok()?),
        _ => return None,
    };
    Some(RetryHint {
        ratchet_key,
        message_number,
        base_key,
    })
}

/// A committed inbox entry: show it, then [`Store::ack_read`] it. Until
/// then it stays in [`Store::inbox`], across crashes. Its plaintext is
/// sealed in the database and zeroized here on drop.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Incoming {
    /// The entry's id, never reused in this database.
    pub id: u64,
    /// What it carries.
    pub kind: IncomingKind,
    /// The contact, user or group it came from.
    pub source: Vec<u8>,
    /// The sending device, where known.
    pub device: Option<u32>,
    /// The group, for a group message.
    pub group: Option<[u8; 32]>,
    /// The decrypted bytes (for a retry request, its hint's encoding).
    pub plaintext: Zeroizing<Vec<u8>>,
}

impl Incoming {
    /// For a retry request, the message it asks for.
    pub fn retry_hint(&self) -> Option<RetryHint> {
        match self.kind {
            IncomingKind::RetryRequest => hint_from_bytes(&self.plaintext),
            IncomingKind::Message => None,
        }
    }
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("source", &self.source)
            .field("device", &self.device)
            .field("group", &self.group)
            .field("len", &self.plaintext.len())
            .finish()
    }
}

impl Store {
    /// Every outbox entry not yet acknowledged, oldest first.
    ///
    /// # Errors
    ///
    /// [`Error::CorruptValue`] for an entry of an unknown kind; database
    /// errors.
    pub fn outbox(&self) -> Result<Vec<Outgoing>> {
        self.read(|op| {
            let mut stmt = op.conn().prepare(
                "SELECT id, kind, destination, device, grp, payload, app_ref FROM outbox
                 ORDER BY id",
            )?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, Vec<u8>>(2)?,
                        r.get::<_, Option<i64>>(3)?,
                        r.get::<_, Option<Vec<u8>>>(4)?,
                        r.get::<_, Vec<u8>>(5)?,
                        r.get::<_, Option<i64>>(6)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.into_iter()
                .map(|(id, kind, destination, device, group, payload, app_ref)| {
                    let id = from_sql(id);
                    let corrupt = || Error::CorruptValue {
                        record: format!("outbox/{id}"),
                    };
                    let kind = u8::try_from(kind)
                        .ok()
                        .and_then(OutgoingKind::from_code)
                        .ok_or_else(corrupt)?;
                    let device = device
                        .map(|d| u32::try_from(d).map_err(|_| corrupt()))
                        .transpose()?;
                    let group = group
                        .map(|g| <[u8; 32]>::try_from(g).map_err(|_| corrupt()))
                        .transpose()?;
                    Ok(Outgoing {
                        id,
                        kind,
                        destination,
                        device,
                        group,
                        payload,
                        app_ref: app_ref.map(from_sql),
                    })
                })
                .collect()
        })
    }

    /// Removes outbox entry `id` once it was sent. Returns whether it was
    /// still there (acknowledging twice is harmless).
    ///
    /// # Errors
    ///
    /// Database errors.
    pub fn ack_sent(&mut self, id: u64) -> Result<bool> {
        let ((), receipt) = self.run("ack-sent", |op| {
            op.ack_outbox(id);
            Ok(())
        })?;
        Ok(receipt.acked == 1)
    }

    /// Every inbox entry not yet acknowledged, oldest first.
    ///
    /// # Errors
    ///
    /// [`Error::CorruptValue`] for an entry that does not open (altered,
    /// or moved to another id or source); database errors.
    pub fn inbox(&self) -> Result<Vec<Incoming>> {
        self.read(|op| {
            let mut stmt = op
                .conn()
                .prepare("SELECT id, kind, source, device, grp, value FROM inbox ORDER BY id")?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, Vec<u8>>(2)?,
                        r.get::<_, Option<i64>>(3)?,
                        r.get::<_, Option<Vec<u8>>>(4)?,
                        r.get::<_, Vec<u8>>(5)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.into_iter()
                .map(|(id, kind, source, device, group, value)| {
                    let id = from_sql(id);
                    let corrupt = || Error::CorruptValue {
                        record: format!("inbox/{id}"),
                    };
                    let kind = u8::try_from(kind)
                        .ok()
                        .and_then(IncomingKind::from_code)
                        .ok_or_else(corrupt)?;
                    let device = device
                        .map(|d| u32::try_from(d).map_err(|_| corrupt()))
                        .transpose()?;
                    let group = group
                        .map(|g| <[u8; 32]>::try_from(g).map_err(|_| corrupt()))
                        .transpose()?;
                    let aad = op.sealer.entry_aad(id, kind, &source, device, group);
                    let plaintext = op
                        .sealer
                        .keys
                        .open_entry(&aad, &value)
                        .ok_or_else(corrupt)?;
                    Ok(Incoming {
                        id,
                        kind,
                        source,
                        device,
                        group,
                        plaintext,
                    })
                })
                .collect()
        })
    }

    /// Removes inbox entry `id` once it was shown. Returns whether it was
    /// still there.
    ///
    /// # Errors
    ///
    /// Database errors.
    pub fn ack_read(&mut self, id: u64) -> Result<bool> {
        let ((), receipt) = self.run("ack-read", |op| {
            op.ack_inbox(id);
            Ok(())
        })?;
        Ok(receipt.acked == 1)
    }
}

/// Opens every inbox entry (part of [`Store::verify`]).
pub(crate) fn verify_inbox(store: &Store) -> Result<()> {
    store.inbox().map(drop)
}
