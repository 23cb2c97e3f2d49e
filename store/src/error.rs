//! The store's errors (SPEC.md §17.6): typed, carrying only record names,
//! entry ids and result codes, never a secret.

use core::fmt;

/// Everything a store call can fail with. On any error nothing was written:
/// the operation's transaction rolled back, and the store keeps working.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Error {
    /// The storage key is not the one the database was created with.
    WrongKey,
    /// SQLite found the database file malformed, or not a database at all.
    DatabaseCorrupt,
    /// The disk, or the page limit set with
    /// [`Store::set_page_limit`](crate::Store::set_page_limit), is full.
    DiskFull,
    /// Another connection held the database longer than the busy timeout.
    Busy,
    /// A record changed between this operation's load and its write
    /// (another process or connection wrote it), on every attempt allowed
    /// ([`Options`](crate::Options)).
    Conflict {
        /// The record's name.
        record: String,
    },
    /// A stored value is shorter than the one written.
    TruncatedValue {
        /// The record's name.
        record: String,
    },
    /// A stored value's bytes, or the columns bound to them, were altered.
    CorruptValue {
        /// The record's name.
        record: String,
    },
    /// A stored value is intact but was sealed for another record (or
    /// another database): it does not open under this record's name.
    MisplacedValue {
        /// The record's name.
        record: String,
    },
    /// The record does not exist (no local device yet, no session with
    /// that contact).
    NotFound {
        /// The record's name.
        record: String,
    },
    /// The record exists already.
    AlreadyExists {
        /// The record's name.
        record: String,
    },
    /// The protocol core refused the operation; nothing changed.
    Protocol(sotto::Error),
    /// The session layer could not decrypt a message: its
    /// [`Failure`](sotto::sessions::Failure) carries the action to take
    /// (ignore, retry later, request a retry, start a new session, SPEC
    /// §16.6). Nothing changed.
    Session(sotto::sessions::Failure),
    /// The database was written by a newer schema version.
    UnsupportedSchema {
        /// The version found.
        found: i64,
    },
    /// An argument the store refuses (a name too long or empty).
    InvalidInput,
    /// Any other SQLite failure, by its extended result code.
    Database {
        /// SQLite's extended result code.
        code: i32,
    },
}

/// The store's result type.
pub type Result<T> = core::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongKey => f.write_str("wrong storage key for this database"),
            Self::DatabaseCorrupt => f.write_str("database file is corrupt or not a database"),
            Self::DiskFull => f.write_str("disk or page limit full; nothing written"),
            Self::Busy => f.write_str("database locked by another connection"),
            Self::Conflict { record } => write!(f, "record {record} changed concurrently"),
            Self::TruncatedValue { record } => write!(f, "record {record} is truncated"),
            Self::CorruptValue { record } => write!(f, "record {record} was altered"),
            Self::MisplacedValue { record } => {
                write!(f, "record {record} holds a value sealed for another record")
            }
            Self::NotFound { record } => write!(f, "no record {record}"),
            Self::AlreadyExists { record } => write!(f, "record {record} exists already"),
            Self::Protocol(e) => write!(f, "protocol: {e}"),
            Self::Session(e) => write!(f, "session layer: {e}"),
            Self::UnsupportedSchema { found } => write!(f, "unsupported schema version {found}"),
            Self::InvalidInput => f.write_str("invalid argument"),
            Self::Database { code } => write!(f, "SQLite error {code}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<sotto::Error> for Error {
    fn from(e: sotto::Error) -> Self {
        Self::Protocol(e)
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match e.sqlite_error() {
            Some(s) => match s.code {
                // TooBig: a row over MAX_ROW_LEN, which the store never
                // writes.
                ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase | ErrorCode::TooBig => {
                    Self::DatabaseCorrupt
                }
                ErrorCode::DiskFull => Self::DiskFull,
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => Self::Busy,
                _ => Self::Database {
                    code: s.extended_code,
                },
            },
            // Not from SQLite itself: a column of an unexpected type or a
            // missing row, which only an altered database produces.
            None => Self::DatabaseCorrupt,
        }
    }
}
