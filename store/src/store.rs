//! The store: opening a database (SPEC.md §17.1), its schema, and the one
//! transaction pattern every operation runs through (§17.5): load, run the
//! pure core, write with compare-and-swap, commit, and only then return.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use sotto::SavedState;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::key::{Keys, StoreKey};
use crate::mailbox::{Incoming, IncomingKind, Outgoing, OutgoingKind};
use crate::points::{self, Hook};
use crate::rng;

/// The schema version this crate writes and reads (SPEC §17.3).
pub const SCHEMA_VERSION: i64 = 1;

/// The longest row, string or blob the store's connection reads or writes
/// (SQLite's `SQLITE_LIMIT_LENGTH`, SPEC §17.7): the core's largest state
/// (`MAX_STATE_LEN`) and room for a row's other columns. A longer value,
/// which the store never writes, fails to load with
/// [`Error::DatabaseCorrupt`] before it is read into memory.
pub const MAX_ROW_LEN: usize = sotto::MAX_STATE_LEN + 4096;

/// Length of the random database id bound into every seal context.
const DB_ID_LEN: usize = 16;

/// Pause before retrying an attempt that met a busy database.
const BUSY_PAUSE: Duration = Duration::from_millis(2);

/// Prefix of every seal context (SPEC §17.3).
const CONTEXT_PREFIX: &str = "sotto-store/1/";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY NOT NULL,
    value ANY NOT NULL
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records (
    name TEXT PRIMARY KEY NOT NULL,
    kind INTEGER NOT NULL,
    generation INTEGER NOT NULL,
    version INTEGER NOT NULL,
    len INTEGER NOT NULL,
    value BLOB NOT NULL,
    mac BLOB NOT NULL
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY NOT NULL,
    kind INTEGER NOT NULL,
    destination BLOB NOT NULL,
    device INTEGER,
    grp BLOB,
    payload BLOB NOT NULL,
    app_ref INTEGER
) STRICT;
CREATE TABLE IF NOT EXISTS inbox (
    id INTEGER PRIMARY KEY NOT NULL,
    kind INTEGER NOT NULL,
    source BLOB NOT NULL,
    device INTEGER,
    grp BLOB,
    value BLOB NOT NULL
) STRICT;
";

/// How a [`Store`] behaves under contention.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Options {
    /// How long a write waits for another connection's write lock before
    /// [`Error::Busy`]. Default 5 s.
    pub busy_timeout: Duration,
    /// Attempts that load without the write lock and write with
    /// compare-and-swap before the last resort below. Default 3.
    pub optimistic_attempts: u32,
    /// After those, one attempt that loads and writes under the write lock,
    /// which no other writer can make stale. Default on; off, an operation
    /// fails with [`Error::Conflict`] after its optimistic attempts.
    pub locked_fallback: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            busy_timeout: Duration::from_secs(5),
            optimistic_attempts: 3,
            locked_fallback: true,
        }
    }
}

impl Options {
    /// Sets [`Options::busy_timeout`].
    #[must_use]
    pub fn with_busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Sets [`Options::optimistic_attempts`] and [`Options::locked_fallback`].
    #[must_use]
    pub fn with_attempts(mut self, optimistic: u32, locked_fallback: bool) -> Self {
        self.optimistic_attempts = optimistic;
        self.locked_fallback = locked_fallback;
        self
    }
}

/// What one store handle saw, for tests and benchmarks.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct Stats {
    /// Operations committed.
    pub committed: u64,
    /// Attempts that found a record changed under them and were retried.
    pub conflicts: u64,
    /// Operations that ended in the locked attempt.
    pub locked_attempts: u64,
    /// Attempts that met a busy database and were retried.
    pub busy_retries: u64,
}

/// A sotto store on one SQLite database file (SPEC §17).
///
/// Every operation is one transaction: it loads the records it needs, runs
/// the pure protocol core, writes the new states (compare-and-swap on each
/// record's version) together with the inbox and outbox entries it makes,
/// commits, and only then returns what it made. Several processes may open
/// the same file (an app and its notification extension).
pub struct Store {
    pub(crate) conn: Connection,
    pub(crate) keys: Keys,
    db_id: [u8; DB_ID_LEN],
    options: Options,
    stats: Stats,
    last_conflict: Option<String>,
    pub(crate) hook: Hook,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path` under `key`, with
    /// the default [`Options`].
    ///
    /// # Errors
    ///
    /// [`Error::WrongKey`] if the database was created under another key;
    /// [`Error::DatabaseCorrupt`] if the file is not a sotto store's
    /// database or is malformed; [`Error::UnsupportedSchema`];
    /// [`Error::Busy`]; [`Error::Database`] if it cannot be opened.
    pub fn open(path: impl AsRef<Path>, key: &StoreKey) -> Result<Self> {
        Self::open_with(path, key, Options::default())
    }

    /// Opens the database at `path` under `key` with `options`.
    ///
    /// # Errors
    ///
    /// As [`Store::open`].
    pub fn open_with(path: impl AsRef<Path>, key: &StoreKey, options: Options) -> Result<Self> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(options.busy_timeout)?;
        let max_row = i32::try_from(MAX_ROW_LEN).map_err(|_| Error::InvalidInput)?;
        conn.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_LENGTH, max_row)?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Database { code: 0 });
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        // Freed pages are zeroed: an old sealed state does not linger in
        // the file after it was replaced (SPEC §17.7).
        conn.pragma_update(None, "secure_delete", "ON")?;
        let keys = Keys::new(key);
        let db_id = init_schema(&conn, &keys)?;
        Ok(Self {
            conn,
            keys,
            db_id,
            options,
            stats: Stats::default(),
            last_conflict: None,
            hook: Default::default(),
        })
    }

    /// What this handle saw so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Caps the database at `pages` pages (SQLite's `max_page_count`); a
    /// write past it fails with [`Error::DiskFull`], as on a full disk.
    /// Returns the cap in force.
    ///
    /// # Errors
    ///
    /// [`Error::Busy`] or [`Error::Database`].
    pub fn set_page_limit(&mut self, pages: u64) -> Result<u64> {
        let pages = i64::try_from(pages).unwrap_or(i64::MAX);
        let set: i64 = self
            .conn
            .pragma_update_and_check(None, "max_page_count", pages, |row| row.get(0))?;
        Ok(u64::try_from(set).unwrap_or(0))
    }

    /// Sets the hook called at every kill point (SPEC §17.8 crash tests).
    #[cfg(feature = "test-hooks")]
    pub fn set_point_hook(&mut self, hook: Box<dyn FnMut(crate::Point) + Send>) {
        self.hook = Some(hook);
    }

    /// Opens every record and every inbox entry, and checks that every
    /// record's value opens under its own name: what a restart checks after
    /// a crash. Returns the number of records.
    ///
    /// # Errors
    ///
    /// The first record's error: [`Error::TruncatedValue`],
    /// [`Error::CorruptValue`], [`Error::MisplacedValue`], or a database
    /// error.
    pub fn verify(&self) -> Result<usize> {
        let check: String = self
            .conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))?;
        if check != "ok" {
            return Err(Error::DatabaseCorrupt);
        }
        let records = self.open_all()?;
        crate::mailbox::verify_inbox(self)?;
        Ok(records.len())
    }

    /// Every record's name and plain encoding, in one snapshot.
    fn open_all(&self) -> Result<Vec<(String, Zeroizing<Vec<u8>>)>> {
        self.read(|op| {
            let mut stmt = op
                .conn()
                .prepare("SELECT name FROM records ORDER BY name")?;
            let names = stmt
                .query_map([], |row| row.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            names
                .into_iter()
                .map(|name| {
                    let row = read_row(op.conn(), &name)?.ok_or_else(|| Error::NotFound {
                        record: name.clone(),
                    })?;
                    let plain = op.sealer.open_any(&name, &row)?;
                    Ok((name, plain))
                })
                .collect()
        })
    }

    /// Every record's name and plain encoding (the secret scan's input).
    ///
    /// # Errors
    ///
    /// As [`Store::verify`].
    #[cfg(feature = "test-hooks")]
    pub fn plain_records(&self) -> Result<Vec<(String, Zeroizing<Vec<u8>>)>> {
        self.open_all()
    }

    /// The sealer of this database.
    pub(crate) fn sealer(&self) -> Sealer<'_> {
        Sealer {
            keys: &self.keys,
            db_id: &self.db_id,
        }
    }

    /// Runs one operation (SPEC §17.5): `f` loads and computes through an
    /// [`Op`]; its writes are then committed with compare-and-swap, and its
    /// result comes back only after the commit, with the ids of the inbox
    /// and outbox entries it made.
    pub(crate) fn run<T>(
        &mut self,
        name: &'static str,
        mut f: impl FnMut(&mut Op<'_>) -> Result<T>,
    ) -> Result<(T, Receipt)> {
        let mut attempt = 0u32;
        let deadline = Instant::now() + self.options.busy_timeout;
        loop {
            let locked = attempt >= self.options.optimistic_attempts;
            if locked && !self.options.locked_fallback {
                return Err(Error::Conflict {
                    record: self.last_conflict.take().unwrap_or_default(),
                });
            }
            match self.attempt(name, locked, &mut f) {
                Err(Error::Conflict { record }) if !locked => {
                    attempt = attempt.saturating_add(1);
                    self.stats.conflicts = self.stats.conflicts.saturating_add(1);
                    self.last_conflict = Some(record);
                }
                // SQLite's busy handler covers waiting for the write lock;
                // a few paths in WAL mode (a reader meeting a checkpoint's
                // restart of the log) report busy at once. Until the busy
                // timeout, that is retried like a conflict.
                Err(Error::Busy) if Instant::now() < deadline => {
                    self.stats.busy_retries = self.stats.busy_retries.saturating_add(1);
                    std::thread::sleep(BUSY_PAUSE);
                }
                Ok(done) => {
                    self.stats.committed = self.stats.committed.saturating_add(1);
                    if locked {
                        self.stats.locked_attempts = self.stats.locked_attempts.saturating_add(1);
                    }
                    return Ok(done);
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Store {
    /// One attempt of an operation: optimistic (load in a read snapshot,
    /// write under the lock after checking every record read is unchanged)
    /// or `locked` (both under the write lock).
    fn attempt<T>(
        &mut self,
        name: &'static str,
        locked: bool,
        f: &mut impl FnMut(&mut Op<'_>) -> Result<T>,
    ) -> Result<(T, Receipt)> {
        let sealer = Sealer {
            keys: &self.keys,
            db_id: &self.db_id,
        };
        let conn = &self.conn;
        let hook = &mut self.hook;
        points::hit(hook, name, "begin");
        let mut op = Op {
            conn,
            sealer,
            reads: Vec::new(),
            writes: Vec::new(),
            outbox: Vec::new(),
            inbox: Vec::new(),
            acked_outbox: Vec::new(),
            acked_inbox: Vec::new(),
            account: None,
            scans: Vec::new(),
            seq_floor: 0,
        };
        let (output, write_tx) = if locked {
            let tx = Tx::begin(conn, "BEGIN IMMEDIATE")?;
            let output = f(&mut op)?;
            points::hit(hook, name, "computed");
            (output, tx)
        } else {
            let read_tx = Tx::begin(conn, "BEGIN DEFERRED")?;
            let result = f(&mut op);
            drop(read_tx);
            points::hit(hook, name, "computed");
            match result {
                Ok(output) => (output, Tx::begin(conn, "BEGIN IMMEDIATE")?),
                // An error computed on a stale snapshot is retried as a
                // conflict; on a current one it is the answer.
                Err(e) => {
                    op.validate()?;
                    return Err(e);
                }
            }
        };
        points::hit(hook, name, "locked");
        op.validate()?;
        let mut seq = read_seq(conn)?.max(op.seq_floor);
        let mut receipt = Receipt::default();
        for write in &op.writes {
            seq = seq.checked_add(1).ok_or(Error::Database { code: 0 })?;
            write.apply(conn, &op.sealer, seq)?;
            points::hit(hook, name, "record");
        }
        for out in &op.outbox {
            seq = seq.checked_add(1).ok_or(Error::Database { code: 0 })?;
            conn.execute(
                "INSERT INTO outbox (id, kind, destination, device, grp, payload, app_ref)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    to_sql(seq),
                    out.kind.code(),
                    out.destination,
                    out.device,
                    out.group.map(|g| g.to_vec()),
                    out.payload,
                    out.app_ref.map(to_sql)
                ],
            )?;
            receipt.outbox.push(Outgoing {
                id: seq,
                kind: out.kind,
                destination: out.destination.clone(),
                device: out.device,
                group: out.group,
                payload: out.payload.clone(),
                app_ref: out.app_ref,
            });
            points::hit(hook, name, "outbox");
        }
        for entry in &op.inbox {
            seq = seq.checked_add(1).ok_or(Error::Database { code: 0 })?;
            let aad =
                op.sealer
                    .entry_aad(seq, entry.kind, &entry.source, entry.device, entry.group);
            let value = op.sealer.keys.seal_entry(&aad, &entry.plaintext)?;
            conn.execute(
                "INSERT INTO inbox (id, kind, source, device, grp, value)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    to_sql(seq),
                    entry.kind.code(),
                    entry.source,
                    entry.device,
                    entry.group.map(|g| g.to_vec()),
                    value
                ],
            )?;
            receipt.inbox.push(Incoming {
                id: seq,
                kind: entry.kind,
                source: entry.source.clone(),
                device: entry.device,
                group: entry.group,
                plaintext: entry.plaintext.clone(),
            });
            points::hit(hook, name, "inbox");
        }
        for id in &op.acked_outbox {
            let n = conn.execute("DELETE FROM outbox WHERE id = ?1", [to_sql(*id)])?;
            receipt.acked += n;
            points::hit(hook, name, "ack");
        }
        for id in &op.acked_inbox {
            let n = conn.execute("DELETE FROM inbox WHERE id = ?1", [to_sql(*id)])?;
            receipt.acked += n;
            points::hit(hook, name, "ack");
        }
        if let Some((user, device)) = &op.account {
            let n = conn.execute(
                "INSERT INTO meta (name, value) VALUES ('account_user', ?1), ('account_device', ?2)
                 ON CONFLICT (name) DO NOTHING",
                params![user, device],
            )?;
            if n != 2 {
                return Err(Error::Conflict {
                    record: "account".to_owned(),
                });
            }
        }
        conn.execute(
            "UPDATE meta SET value = ?1 WHERE name = 'seq'",
            [to_sql(seq)],
        )?;
        points::hit(hook, name, "before-commit");
        write_tx.commit()?;
        points::hit(hook, name, "committed");
        Ok((output, receipt))
    }

    /// Runs a read-only query in one snapshot.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&mut Op<'_>) -> Result<T>) -> Result<T> {
        let tx = Tx::begin(&self.conn, "BEGIN DEFERRED")?;
        let mut op = Op {
            conn: &self.conn,
            sealer: self.sealer(),
            reads: Vec::new(),
            writes: Vec::new(),
            outbox: Vec::new(),
            inbox: Vec::new(),
            acked_outbox: Vec::new(),
            acked_inbox: Vec::new(),
            account: None,
            scans: Vec::new(),
            seq_floor: 0,
        };
        let out = f(&mut op);
        drop(tx);
        out
    }
}

/// Ids of what an operation's commit added or removed.
#[derive(Default, Debug)]
pub(crate) struct Receipt {
    /// Outbox entries added, in the order the operation made them.
    pub(crate) outbox: Vec<Outgoing>,
    /// Inbox entries added, in order.
    pub(crate) inbox: Vec<Incoming>,
    /// Entries acknowledged that were still there.
    pub(crate) acked: usize,
}

/// A transaction that rolls back unless committed.
struct Tx<'c> {
    conn: &'c Connection,
    open: bool,
}

impl<'c> Tx<'c> {
    fn begin(conn: &'c Connection, sql: &str) -> Result<Self> {
        conn.execute_batch(sql)?;
        Ok(Self { conn, open: true })
    }

    fn commit(mut self) -> Result<()> {
        self.conn.execute_batch("COMMIT")?;
        self.open = false;
        Ok(())
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.open {
            // Nothing to report: a failed rollback leaves the transaction
            // to SQLite, which rolls it back when the connection closes.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

/// Seals and opens this database's values.
#[derive(Clone, Copy)]
pub(crate) struct Sealer<'a> {
    pub(crate) keys: &'a Keys,
    db_id: &'a [u8; DB_ID_LEN],
}

impl Sealer<'_> {
    /// The seal context of record `name` (SPEC §17.3).
    pub(crate) fn context(&self, name: &str) -> Vec<u8> {
        context(self.db_id, name)
    }

    /// The associated data of inbox entry `id` of `kind` from
    /// `source`/`device` (SPEC §17.4).
    pub(crate) fn entry_aad(
        &self,
        id: u64,
        kind: IncomingKind,
        source: &[u8],
        device: Option<u32>,
        group: Option<[u8; 32]>,
    ) -> Vec<u8> {
        let mut aad = context(self.db_id, "inbox");
        aad.extend_from_slice(&id.to_be_bytes());
        aad.push(kind.code());
        match device {
            Some(d) => {
                aad.push(1);
                aad.extend_from_slice(&d.to_be_bytes());
            }
            None => aad.push(0),
        }
        match group {
            Some(g) => {
                aad.push(1);
                aad.extend_from_slice(&g);
            }
            None => aad.push(0),
        }
        aad.extend_from_slice(source);
        aad
    }

    /// Opens a row whatever its kind, by its kind column.
    fn open_any(&self, name: &str, row: &Row) -> Result<Zeroizing<Vec<u8>>> {
        match row.kind {
            k if k == sotto::Device::TYPE_TAG => self
                .open_row::<sotto::Device>(name, row)
                .map(|s| s.to_bytes()),
            k if k == sotto::Session::TYPE_TAG => self
                .open_row::<sotto::Session>(name, row)
                .map(|s| s.to_bytes()),
            k if k == sotto::sessions::PeerRecord::TYPE_TAG => self
                .open_row::<sotto::sessions::PeerRecord>(name, row)
                .map(|s| s.to_bytes()),
            k if k == sotto::sessions::GroupSession::TYPE_TAG => self
                .open_row::<sotto::sessions::GroupSession>(name, row)
                .map(|s| s.to_bytes()),
            _ => Err(Error::CorruptValue {
                record: name.to_owned(),
            }),
        }
    }

    /// Checks a row and opens its value as a `T` (SPEC §17.3 order).
    pub(crate) fn open_row<T: SavedState>(&self, name: &str, row: &Row) -> Result<T> {
        let record = || name.to_owned();
        let value_len = u64::try_from(row.value.len()).unwrap_or(u64::MAX);
        if value_len < row.len {
            return Err(Error::TruncatedValue { record: record() });
        }
        if value_len != row.len
            || !self.keys.value_mac_matches(
                row.kind,
                row.generation,
                row.version,
                &row.value,
                &row.mac,
            )
        {
            return Err(Error::CorruptValue { record: record() });
        }
        if row.kind != T::TYPE_TAG {
            return Err(Error::MisplacedValue { record: record() });
        }
        let state =
            T::unseal(&row.value, &self.keys.state, &self.context(name)).map_err(|e| match e {
                sotto::Error::AuthenticationFailed | sotto::Error::WrongType { .. } => {
                    Error::MisplacedValue { record: record() }
                }
                _ => Error::CorruptValue { record: record() },
            })?;
        if state.generation() != row.generation {
            return Err(Error::CorruptValue { record: record() });
        }
        Ok(state)
    }
}

/// One row of the records table.
pub(crate) struct Row {
    kind: u8,
    generation: u64,
    version: u64,
    len: u64,
    value: Vec<u8>,
    mac: Vec<u8>,
}

fn read_row(conn: &Connection, name: &str) -> Result<Option<Row>> {
    let row = conn
        .query_row(
            "SELECT kind, generation, version, len, value, mac FROM records WHERE name = ?1",
            [name],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Vec<u8>>(4)?,
                    r.get::<_, Vec<u8>>(5)?,
                ))
            },
        )
        .optional()?;
    let Some((kind, generation, version, len, value, mac)) = row else {
        return Ok(None);
    };
    let corrupt = || Error::CorruptValue {
        record: name.to_owned(),
    };
    Ok(Some(Row {
        kind: u8::try_from(kind).map_err(|_| corrupt())?,
        generation: from_sql(generation),
        version: from_sql(version),
        len: u64::try_from(len).map_err(|_| corrupt())?,
        value,
        mac,
    }))
}

fn read_version(conn: &Connection, name: &str) -> Result<Option<u64>> {
    Ok(conn
        .query_row("SELECT version FROM records WHERE name = ?1", [name], |r| {
            r.get::<_, i64>(0)
        })
        .optional()?
        .map(from_sql))
}

fn list_names(conn: &Connection, prefix: &str) -> Result<Vec<String>> {
    // Names are ASCII (SPEC §17.3); the range is [prefix, prefix + 0x7f).
    let mut end = prefix.to_owned();
    end.push('\u{7f}');
    let mut stmt = conn
        .prepare_cached("SELECT name FROM records WHERE name >= ?1 AND name < ?2 ORDER BY name")?;
    let names = stmt
        .query_map([prefix, end.as_str()], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(names)
}

fn read_seq(conn: &Connection) -> Result<u64> {
    let seq: i64 = conn.query_row("SELECT value FROM meta WHERE name = 'seq'", [], |r| {
        r.get(0)
    })?;
    u64::try_from(seq).map_err(|_| Error::DatabaseCorrupt)
}

/// A `u64` in an SQLite integer, bit for bit.
pub(crate) fn to_sql(v: u64) -> i64 {
    i64::from_be_bytes(v.to_be_bytes())
}

/// The inverse of [`to_sql`].
pub(crate) fn from_sql(v: i64) -> u64 {
    u64::from_be_bytes(v.to_be_bytes())
}

fn context(db_id: &[u8; DB_ID_LEN], name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(CONTEXT_PREFIX.len() + 2 * DB_ID_LEN + 1 + name.len());
    out.extend_from_slice(CONTEXT_PREFIX.as_bytes());
    out.extend_from_slice(hex(db_id).as_bytes());
    out.push(b'/');
    out.extend_from_slice(name.as_bytes());
    out
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(2 * bytes.len());
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Creates the schema on a new database, or checks an existing one's
/// version and key. Returns the database id.
fn init_schema(conn: &Connection, keys: &Keys) -> Result<[u8; DB_ID_LEN]> {
    let tx = Tx::begin(conn, "BEGIN IMMEDIATE")?;
    conn.execute_batch(SCHEMA)?;
    let version: Option<i64> = conn
        .query_row("SELECT value FROM meta WHERE name = 'schema'", [], |r| {
            r.get(0)
        })
        .optional()?;
    let db_id = match version {
        None => {
            let mut db_id = [0u8; DB_ID_LEN];
            rng::fill(&mut db_id)?;
            let check = keys.check_value(&db_id);
            conn.execute(
                "INSERT INTO meta (name, value) VALUES ('schema', ?1), ('db_id', ?2),
                 ('key_check', ?3), ('seq', 0)",
                params![SCHEMA_VERSION, db_id.as_slice(), check.as_slice()],
            )?;
            db_id
        }
        Some(SCHEMA_VERSION) => {
            let db_id: Vec<u8> =
                conn.query_row("SELECT value FROM meta WHERE name = 'db_id'", [], |r| {
                    r.get(0)
                })?;
            let check: Vec<u8> =
                conn.query_row("SELECT value FROM meta WHERE name = 'key_check'", [], |r| {
                    r.get(0)
                })?;
            let db_id: [u8; DB_ID_LEN] = db_id.try_into().map_err(|_| Error::DatabaseCorrupt)?;
            if !keys.check_matches(&db_id, &check) {
                return Err(Error::WrongKey);
            }
            db_id
        }
        Some(found) => return Err(Error::UnsupportedSchema { found }),
    };
    tx.commit()?;
    Ok(db_id)
}

/// What an operation loads and writes, collected while it computes.
pub(crate) struct Op<'a> {
    conn: &'a Connection,
    pub(crate) sealer: Sealer<'a>,
    /// Every record read, with the version it had (`None`: absent).
    reads: Vec<(String, Option<u64>)>,
    writes: Vec<Write>,
    outbox: Vec<NewOutgoing>,
    inbox: Vec<NewEntry>,
    acked_outbox: Vec<u64>,
    acked_inbox: Vec<u64>,
    account: Option<(Vec<u8>, u32)>,
    /// Record names listed by prefix, checked again at commit.
    scans: Vec<(String, Vec<String>)>,
    /// The counter `seq` is raised to at least this at commit.
    seq_floor: u64,
}

/// A record write: a sealed state, or a deletion.
struct Write {
    name: String,
    /// Kind, generation and sealed value; `None` deletes the record.
    value: Option<(u8, u64, Vec<u8>)>,
    /// The version read (`None`: the record was absent).
    expected: Option<u64>,
}

impl Write {
    fn apply(&self, conn: &Connection, sealer: &Sealer<'_>, version: u64) -> Result<()> {
        let conflict = || Error::Conflict {
            record: self.name.clone(),
        };
        let changed = match (&self.value, self.expected) {
            (Some((kind, generation, value)), expected) => {
                let mac = sealer.keys.value_mac(*kind, *generation, version, value);
                let len = i64::try_from(value.len()).map_err(|_| Error::InvalidInput)?;
                match expected {
                    Some(old) => conn.execute(
                        "UPDATE records SET kind = ?1, generation = ?2, version = ?3, len = ?4,
                         value = ?5, mac = ?6 WHERE name = ?7 AND version = ?8",
                        params![
                            kind,
                            to_sql(*generation),
                            to_sql(version),
                            len,
                            value,
                            mac.as_slice(),
                            self.name,
                            to_sql(old)
                        ],
                    )?,
                    None => conn.execute(
                        "INSERT INTO records (name, kind, generation, version, len, value, mac)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (name) DO NOTHING",
                        params![
                            self.name,
                            kind,
                            to_sql(*generation),
                            to_sql(version),
                            len,
                            value,
                            mac.as_slice()
                        ],
                    )?,
                }
            }
            (None, Some(old)) => conn.execute(
                "DELETE FROM records WHERE name = ?1 AND version = ?2",
                params![self.name, to_sql(old)],
            )?,
            (None, None) => 1,
        };
        if changed == 1 {
            Ok(())
        } else {
            Err(conflict())
        }
    }
}

/// An outbox entry an operation makes.
pub(crate) struct NewOutgoing {
    pub(crate) kind: OutgoingKind,
    pub(crate) destination: Vec<u8>,
    pub(crate) device: Option<u32>,
    pub(crate) payload: Vec<u8>,
    pub(crate) app_ref: Option<u64>,
    pub(crate) group: Option<[u8; 32]>,
}

/// An inbox entry an operation makes.
struct NewEntry {
    kind: IncomingKind,
    source: Vec<u8>,
    device: Option<u32>,
    group: Option<[u8; 32]>,
    plaintext: Zeroizing<Vec<u8>>,
}

impl Op<'_> {
    /// Loads record `name` as a `T`, remembering its version for the
    /// compare-and-swap. `None` if absent.
    pub(crate) fn load<T: SavedState>(&mut self, name: &str) -> Result<Option<T>> {
        let row = read_row(self.conn, name)?;
        self.note_read(name, row.as_ref().map(|r| r.version));
        row.map(|row| self.sealer.open_row(name, &row)).transpose()
    }

    /// Loads record `name`, which must exist.
    pub(crate) fn require<T: SavedState>(&mut self, name: &str) -> Result<T> {
        self.load(name)?.ok_or_else(|| Error::NotFound {
            record: name.to_owned(),
        })
    }

    /// Whether record `name` exists (a read, checked at commit).
    pub(crate) fn exists(&mut self, name: &str) -> Result<bool> {
        let version = read_version(self.conn, name)?;
        self.note_read(name, version);
        Ok(version.is_some())
    }

    fn note_read(&mut self, name: &str, version: Option<u64>) {
        if !self.reads.iter().any(|(n, _)| n == name) {
            self.reads.push((name.to_owned(), version));
        }
    }

    fn expected(&mut self, name: &str) -> Result<Option<u64>> {
        if let Some((_, v)) = self.reads.iter().find(|(n, _)| n == name) {
            return Ok(*v);
        }
        let version = read_version(self.conn, name)?;
        self.note_read(name, version);
        Ok(version)
    }

    /// Writes `state` as record `name` at commit, sealed now under its name.
    pub(crate) fn put<T: SavedState>(&mut self, name: &str, state: &T) -> Result<()> {
        let expected = self.expected(name)?;
        let value = state
            .seal(
                &self.sealer.keys.state,
                &self.sealer.context(name),
                &mut rng::OsRng,
            )
            .map_err(Error::Protocol)?;
        self.writes.retain(|w| w.name != name);
        self.writes.push(Write {
            name: name.to_owned(),
            value: Some((T::TYPE_TAG, state.generation(), value)),
            expected,
        });
        Ok(())
    }

    /// Adds an outbox entry at commit.
    pub(crate) fn send(&mut self, out: NewOutgoing) {
        self.outbox.push(out);
    }

    /// Adds an inbox entry at commit, sealed then.
    pub(crate) fn deliver(
        &mut self,
        kind: IncomingKind,
        source: &[u8],
        device: Option<u32>,
        group: Option<[u8; 32]>,
        plaintext: &[u8],
    ) {
        self.inbox.push(NewEntry {
            kind,
            source: source.to_vec(),
            device,
            group,
            plaintext: Zeroizing::new(plaintext.to_vec()),
        });
    }

    /// The account (local user and device id) set in this database.
    pub(crate) fn account_raw(&self) -> Result<Option<(Vec<u8>, u32)>> {
        let user: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE name = 'account_user'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        let device: Option<i64> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE name = 'account_device'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        match (user, device) {
            (Some(user), Some(device)) => Ok(Some((
                user,
                u32::try_from(device).map_err(|_| Error::DatabaseCorrupt)?,
            ))),
            (None, None) => Ok(None),
            _ => Err(Error::DatabaseCorrupt),
        }
    }

    /// Sets the account at commit; fails with a conflict if another
    /// writer set it first.
    pub(crate) fn set_account_raw(&mut self, user: &[u8], device: u32) {
        self.account = Some((user.to_vec(), device));
    }

    /// Removes outbox entry `id` at commit.
    pub(crate) fn ack_outbox(&mut self, id: u64) {
        self.acked_outbox.push(id);
    }

    /// Removes inbox entry `id` at commit.
    pub(crate) fn ack_inbox(&mut self, id: u64) {
        self.acked_inbox.push(id);
    }

    /// The connection, for read-only queries of the inbox and outbox.
    pub(crate) fn conn(&self) -> &Connection {
        self.conn
    }

    /// The names of every record starting with `prefix`, in order (a read
    /// of the whole range: a record added or removed there before the
    /// commit is a conflict).
    pub(crate) fn names(&mut self, prefix: &str) -> Result<Vec<String>> {
        let names = list_names(self.conn, prefix)?;
        if !self.scans.iter().any(|(p, _)| p == prefix) {
            self.scans.push((prefix.to_owned(), names.clone()));
        }
        Ok(names)
    }

    /// The database's counter `seq` (SPEC §17.3).
    pub(crate) fn seq(&self) -> Result<u64> {
        read_seq(self.conn)
    }

    /// Raises `seq` to at least `floor` at commit.
    pub(crate) fn raise_seq(&mut self, floor: u64) {
        self.seq_floor = self.seq_floor.max(floor);
    }

    /// Checks that every record read still has the version read, and every
    /// range listed still holds the same names.
    fn validate(&self) -> Result<()> {
        for (name, version) in &self.reads {
            if read_version(self.conn, name)? != *version {
                return Err(Error::Conflict {
                    record: name.clone(),
                });
            }
        }
        for (prefix, names) in &self.scans {
            if list_names(self.conn, prefix)? != *names {
                return Err(Error::Conflict {
                    record: format!("{prefix}*"),
                });
            }
        }
        Ok(())
    }
}
