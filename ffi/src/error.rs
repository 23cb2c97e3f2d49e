//! Stable error codes, the thread-local last error, and the wrapper that
//! keeps panics from crossing the boundary. The lowest module of the crate:
//! the function that hands the last error to C is in `error_message.rs`.

use std::any::Any;
use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// What every function returns. `SOTTO_ERROR_OK` (0) is success.
///
/// The values are part of the ABI, and the single source of the codes for
/// every binding: a value never changes and is never reused, even after
/// the error it named is retired (119 and 126 are retired, see `README.md`).
/// New codes may be added. 1–99 are errors of the call itself (arguments,
/// handles, buffers, environment); 100–199 are protocol errors from the
/// core; 200 and up are errors of the SQLite store (`sotto-store`, SPEC
/// §17), numbered here so that the bindings that bind it (`bindings/`)
/// take their codes from one place. The C ABI does not bind the store
/// itself: no function here returns a store code.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SottoError {
    /// Success.
    Ok = 0,
    /// A required pointer was NULL.
    NullPointer = 1,
    /// An argument is unusable: a length over `SIZE_MAX / 2`, a storage key
    /// that is not 32 bytes, an output slot that is not empty, an output
    /// array too small.
    InvalidArgument = 2,
    /// The handle is not a live handle of the expected type (for example a
    /// session passed where a device is expected, or a handle already freed).
    WrongHandle = 3,
    /// Another call is using the handle right now (from another thread).
    HandleBusy = 4,
    /// An earlier call on this handle failed internally; restore it from the
    /// last saved state.
    HandlePoisoned = 5,
    /// The operating system's random number generator failed. Nothing
    /// changed.
    Randomness = 6,
    /// Internal error (a bug in sotto); a handle the call was changing is
    /// poisoned.
    Panic = 7,
    /// The `SottoBuffer` is not a live buffer this library returned: already
    /// freed (for example through a copy of the struct), never returned by
    /// sotto, or with its `ptr`, `len` or `id` changed. Nothing was freed.
    InvalidBuffer = 8,
    /// A protocol error that this version of the ABI has no code for yet.
    ProtocolOther = 100,
    /// The input ended before the encoding was complete.
    Truncated = 101,
    /// Bytes followed a complete encoding.
    TrailingBytes = 102,
    /// The encoding's version byte is not one this library reads.
    UnsupportedVersion = 103,
    /// The bytes encode another type than the one asked for.
    WrongType = 104,
    /// A field holds a value the format does not allow.
    InvalidEncoding = 105,
    /// The input is larger than the format allows (a message, a saved
    /// state, a seal context over `SOTTO_MAX_SEAL_CONTEXT_LEN`).
    TooLarge = 106,
    /// The plaintext is longer than `SOTTO_MAX_PLAINTEXT_LEN`.
    PlaintextTooLarge = 107,
    /// A public key is invalid or not canonical.
    InvalidPublicKey = 108,
    /// A key exchange produced the all-zero output (low-order peer key).
    NonContributoryKey = 109,
    /// A signature failed strict verification.
    InvalidSignature = 110,
    /// The identity key is not the one that was expected.
    IdentityMismatch = 111,
    /// The message names a signed prekey this device does not hold; or the
    /// signed prekey to remove is the current one or not held.
    UnknownSignedPrekey = 112,
    /// The one-time prekey is not held by this device (never issued, or
    /// already used).
    UnknownOneTimePrekey = 113,
    /// This device already accepted a prekey message with this base key
    /// under this signed prekey.
    DuplicatePrekeyMessage = 114,
    /// A prekey store would pass its bound, or the prekey ids are used up.
    TooManyPrekeys = 115,
    /// The message or sealed state was altered, forged, belongs to another
    /// session, or was sealed under another key or context.
    AuthenticationFailed = 116,
    /// The message was already decrypted, or its key was deleted.
    DuplicateMessage = 117,
    /// The message would skip more message keys than allowed.
    TooFarAhead = 118,
    /// The prekey message belongs to another session.
    SessionMismatch = 120,
    /// The sending chain reached the largest message number (or index).
    ChainExhausted = 121,
    /// The group message names a group or sender chain the store does not
    /// hold.
    UnknownGroupChain = 122,
    /// The group message's index is too far ahead, or unusable.
    GroupIndexOutOfRange = 123,
    /// The distribution or message belongs to another group.
    GroupMismatch = 124,
    /// The chain is already held with another owner, or on another ratchet.
    GroupChainConflict = 125,
    /// A bundle without a KEM prekey, or a prekey message without a KEM
    /// ciphertext, where post-quantum key agreement is required (the
    /// default; see the `_allow_classical` functions).
    PostQuantumRequired = 127,
    /// The KEM prekey is not held by this device (never issued, used, or
    /// deleted); or the last-resort KEM prekey to remove is the current one
    /// or not held.
    UnknownKemPrekey = 128,
    /// The signed prekey recorded its last base key: rotate it.
    SignedPrekeyExhausted = 129,
    /// The session and its peer no longer share the ratchet (one side was
    /// rolled back): this session cannot read the peer's new messages again
    /// and must be replaced by a new one. Not authenticated: keep the
    /// session for the messages it can still decrypt.
    SessionDiverged = 130,
    /// The distribution's owner is not the peer of the session that
    /// delivered it (for example a member forwarding another's key).
    GroupOwnerMismatch = 131,
    /// An unauthenticated import while the store is full of authenticated
    /// chains.
    GroupStoreFull = 132,
    /// A device list with more than `SOTTO_MAX_DEVICES_PER_USER` entries, a
    /// device named twice, one identity key given to two devices or the
    /// local identity to another device; or a safety number over no device.
    InvalidDeviceList = 133,
    /// The peer record does not hold the device, or it is no longer listed.
    UnknownDevice = 134,
    /// The device has an identity change the app has not acknowledged
    /// (`sotto_peer_record_acknowledge_identity`).
    IdentityChangePending = 135,
    /// The device has no active session: fetch its bundle
    /// (`sotto_peer_record_add_bundle`).
    NoSession = 136,
    /// A recovery for this device was made too recently
    /// (`SOTTO_MIN_RECOVERY_INTERVAL`, `SOTTO_MAX_RETRY_REQUESTS_PER_INTERVAL`).
    RecoveryRateLimited = 137,
    /// The user is not a member of the group, or the records given are not
    /// exactly the members' (each once).
    NotGroupMember = 138,
    /// The group has `SOTTO_MAX_GROUP_MEMBERS` members.
    TooManyGroupMembers = 139,
    /// Store: the storage key is not the one the database was created with.
    WrongKey = 200,
    /// Store: SQLite found the database file malformed, or not a database.
    DatabaseCorrupt = 201,
    /// Store: the disk, or the store's page limit, is full; nothing written.
    DiskFull = 202,
    /// Store: another connection held the database past the busy timeout.
    Busy = 203,
    /// Store: a record changed under the operation on every attempt.
    Conflict = 204,
    /// Store: a stored value is shorter than the one written.
    TruncatedValue = 205,
    /// Store: a stored value, or the columns bound to it, was altered.
    CorruptValue = 206,
    /// Store: a stored value is intact but sealed for another record or
    /// database.
    MisplacedValue = 207,
    /// Store: the record does not exist (no device yet, no such contact or
    /// group).
    NotFound = 208,
    /// Store: the record exists already.
    AlreadyExists = 209,
    /// Store: the database was written by a newer schema version.
    UnsupportedSchema = 210,
    /// Store: any other SQLite failure (its extended result code is in the
    /// message).
    Database = 211,
}

/// Codes that named errors of earlier versions. They are never assigned
/// again: a binding that still knows them must not misread a new error.
/// 119 was `UNEXPECTED_RATCHET_KEY` (version 1; now `SESSION_DIVERGED`,
/// 130), 126 `GROUP_CHAIN_NOT_NEWER` (version 1; a store now reports
/// `SOTTO_INSERT_OUTCOME_UNCHANGED`).
#[cfg(test)]
pub(crate) const RETIRED_CODES: [i32; 2] = [119, 126];

impl SottoError {
    /// The code for a core error. The core's error type is non-exhaustive:
    /// variants added later map to [`SottoError::ProtocolOther`] until they
    /// get a code of their own.
    pub(crate) fn from_core(error: &sotto::Error) -> Self {
        use sotto::Error as E;
        match error {
            E::Truncated => Self::Truncated,
            E::TrailingBytes => Self::TrailingBytes,
            E::UnsupportedVersion { .. } => Self::UnsupportedVersion,
            E::WrongType { .. } => Self::WrongType,
            E::InvalidEncoding => Self::InvalidEncoding,
            E::TooLarge => Self::TooLarge,
            E::PlaintextTooLarge => Self::PlaintextTooLarge,
            E::InvalidPublicKey => Self::InvalidPublicKey,
            E::NonContributoryKey => Self::NonContributoryKey,
            E::InvalidSignature => Self::InvalidSignature,
            E::IdentityMismatch => Self::IdentityMismatch,
            E::RandomnessUnavailable => Self::Randomness,
            E::PostQuantumRequired => Self::PostQuantumRequired,
            E::UnknownSignedPreKey { .. } => Self::UnknownSignedPrekey,
            E::UnknownOneTimePreKey { .. } => Self::UnknownOneTimePrekey,
            E::UnknownKemPreKey { .. } => Self::UnknownKemPrekey,
            E::DuplicatePreKeyMessage => Self::DuplicatePrekeyMessage,
            E::SignedPreKeyExhausted { .. } => Self::SignedPrekeyExhausted,
            E::TooManyPreKeys => Self::TooManyPrekeys,
            E::AuthenticationFailed => Self::AuthenticationFailed,
            E::DuplicateMessage => Self::DuplicateMessage,
            E::TooFarAhead { .. } => Self::TooFarAhead,
            E::SessionDiverged => Self::SessionDiverged,
            E::SessionMismatch => Self::SessionMismatch,
            E::ChainExhausted => Self::ChainExhausted,
            E::UnknownGroupChain => Self::UnknownGroupChain,
            E::GroupIndexOutOfRange { .. } => Self::GroupIndexOutOfRange,
            E::GroupMismatch => Self::GroupMismatch,
            E::GroupOwnerMismatch => Self::GroupOwnerMismatch,
            E::GroupChainConflict => Self::GroupChainConflict,
            E::GroupStoreFull => Self::GroupStoreFull,
            E::InvalidDeviceList => Self::InvalidDeviceList,
            E::UnknownDevice => Self::UnknownDevice,
            E::IdentityChangePending => Self::IdentityChangePending,
            E::NoSession => Self::NoSession,
            E::RecoveryRateLimited => Self::RecoveryRateLimited,
            E::NotGroupMember => Self::NotGroupMember,
            E::TooManyGroupMembers => Self::TooManyGroupMembers,
            _ => Self::ProtocolOther,
        }
    }
}

/// A failed call: its code and the message the caller can read afterwards.
#[derive(Debug)]
pub(crate) struct FfiError {
    code: SottoError,
    message: String,
}

impl FfiError {
    pub(crate) fn new(code: SottoError, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn null(what: &str) -> Self {
        Self::new(SottoError::NullPointer, format!("{what} is NULL"))
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(SottoError::InvalidArgument, message)
    }

    pub(crate) fn code(&self) -> SottoError {
        self.code
    }
}

impl From<sotto::Error> for FfiError {
    fn from(error: sotto::Error) -> Self {
        Self::new(SottoError::from_core(&error), error.to_string())
    }
}

pub(crate) type FfiResult<T> = Result<T, FfiError>;

thread_local! {
    static LAST_ERROR: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn set_last_error(message: Option<String>) {
    // During thread teardown the slot may be gone; the message is then lost,
    // which is harmless.
    let _ = LAST_ERROR.try_with(|slot| {
        if let Ok(mut slot) = slot.try_borrow_mut() {
            *slot = message;
        }
    });
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    let detail = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message");
    format!("internal error (panic): {detail}")
}

/// Runs the body of an exported function: catches any panic, turns the
/// result into a code, and records the message of a failure for
/// `sotto_last_error_message`. A success clears the last error.
pub(crate) fn ffi_call(body: impl FnOnce() -> FfiResult<()>) -> SottoError {
    // Unwind safety: a panic can only leave a handle half-updated, and the
    // handle module poisons any handle whose mutable borrow was unwound.
    let (code, message) = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => (SottoError::Ok, None),
        Ok(Err(e)) => (e.code, Some(e.message)),
        Err(payload) => (SottoError::Panic, Some(panic_message(payload.as_ref()))),
    };
    set_last_error(message);
    code
}

/// The message of the calling thread's most recent failed call; empty if
/// it succeeded. Reading it does not change it.
pub(crate) fn last_error_message() -> String {
    LAST_ERROR
        .try_with(|slot| slot.try_borrow().ok().and_then(|m| m.clone()))
        .ok()
        .flatten()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    /// The numeric values are the ABI: this fails if one is renumbered, and
    /// if a retired number comes back.
    #[test]
    fn codes_are_stable() {
        let table = [
            (SottoError::Ok, 0),
            (SottoError::NullPointer, 1),
            (SottoError::InvalidArgument, 2),
            (SottoError::WrongHandle, 3),
            (SottoError::HandleBusy, 4),
            (SottoError::HandlePoisoned, 5),
            (SottoError::Randomness, 6),
            (SottoError::Panic, 7),
            (SottoError::InvalidBuffer, 8),
            (SottoError::ProtocolOther, 100),
            (SottoError::Truncated, 101),
            (SottoError::TrailingBytes, 102),
            (SottoError::UnsupportedVersion, 103),
            (SottoError::WrongType, 104),
            (SottoError::InvalidEncoding, 105),
            (SottoError::TooLarge, 106),
            (SottoError::PlaintextTooLarge, 107),
            (SottoError::InvalidPublicKey, 108),
            (SottoError::NonContributoryKey, 109),
            (SottoError::InvalidSignature, 110),
            (SottoError::IdentityMismatch, 111),
            (SottoError::UnknownSignedPrekey, 112),
            (SottoError::UnknownOneTimePrekey, 113),
            (SottoError::DuplicatePrekeyMessage, 114),
            (SottoError::TooManyPrekeys, 115),
            (SottoError::AuthenticationFailed, 116),
            (SottoError::DuplicateMessage, 117),
            (SottoError::TooFarAhead, 118),
            (SottoError::SessionMismatch, 120),
            (SottoError::ChainExhausted, 121),
            (SottoError::UnknownGroupChain, 122),
            (SottoError::GroupIndexOutOfRange, 123),
            (SottoError::GroupMismatch, 124),
            (SottoError::GroupChainConflict, 125),
            (SottoError::PostQuantumRequired, 127),
            (SottoError::UnknownKemPrekey, 128),
            (SottoError::SignedPrekeyExhausted, 129),
            (SottoError::SessionDiverged, 130),
            (SottoError::GroupOwnerMismatch, 131),
            (SottoError::GroupStoreFull, 132),
            (SottoError::InvalidDeviceList, 133),
            (SottoError::UnknownDevice, 134),
            (SottoError::IdentityChangePending, 135),
            (SottoError::NoSession, 136),
            (SottoError::RecoveryRateLimited, 137),
            (SottoError::NotGroupMember, 138),
            (SottoError::TooManyGroupMembers, 139),
            (SottoError::WrongKey, 200),
            (SottoError::DatabaseCorrupt, 201),
            (SottoError::DiskFull, 202),
            (SottoError::Busy, 203),
            (SottoError::Conflict, 204),
            (SottoError::TruncatedValue, 205),
            (SottoError::CorruptValue, 206),
            (SottoError::MisplacedValue, 207),
            (SottoError::NotFound, 208),
            (SottoError::AlreadyExists, 209),
            (SottoError::UnsupportedSchema, 210),
            (SottoError::Database, 211),
        ];
        for (code, value) in table {
            assert_eq!(code as i32, value, "{code:?}");
            assert!(!RETIRED_CODES.contains(&value), "{code:?} reuses {value}");
        }
    }

    /// Every core error known today has its own code, distinct from the
    /// others and from the generic one; an RNG failure is the call-level
    /// randomness code.
    #[test]
    fn core_errors_map_to_distinct_codes() {
        use sotto::Error as E;
        let errors = [
            E::Truncated,
            E::TrailingBytes,
            E::UnsupportedVersion { found: 2 },
            E::WrongType {
                expected: 1,
                found: 2,
            },
            E::InvalidEncoding,
            E::TooLarge,
            E::PlaintextTooLarge,
            E::InvalidPublicKey,
            E::NonContributoryKey,
            E::InvalidSignature,
            E::IdentityMismatch,
            E::PostQuantumRequired,
            E::UnknownSignedPreKey { id: 1 },
            E::UnknownOneTimePreKey { id: 1 },
            E::UnknownKemPreKey { id: 1 },
            E::DuplicatePreKeyMessage,
            E::SignedPreKeyExhausted { id: 1 },
            E::TooManyPreKeys,
            E::AuthenticationFailed,
            E::DuplicateMessage,
            E::TooFarAhead { skipped: 1 },
            E::SessionDiverged,
            E::SessionMismatch,
            E::ChainExhausted,
            E::UnknownGroupChain,
            E::GroupIndexOutOfRange { index: 1 },
            E::GroupMismatch,
            E::GroupOwnerMismatch,
            E::GroupChainConflict,
            E::GroupStoreFull,
            E::InvalidDeviceList,
            E::UnknownDevice,
            E::IdentityChangePending,
            E::NoSession,
            E::RecoveryRateLimited,
            E::NotGroupMember,
            E::TooManyGroupMembers,
        ];
        let mut codes: Vec<i32> = errors
            .iter()
            .map(|e| SottoError::from_core(e) as i32)
            .collect();
        assert!(codes.iter().all(|&c| c > 100), "{codes:?}");
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), errors.len());
        assert_eq!(
            SottoError::from_core(&E::RandomnessUnavailable),
            SottoError::Randomness
        );
    }

    #[test]
    fn panics_become_codes_and_messages() {
        let code = ffi_call(|| panic!("boom"));
        assert_eq!(code, SottoError::Panic);
        let message = LAST_ERROR.with(|m| m.borrow().clone()).unwrap();
        assert!(message.contains("boom"), "{message}");
        assert_eq!(ffi_call(|| Ok(())), SottoError::Ok);
        assert!(LAST_ERROR.with(|m| m.borrow().is_none()));
    }
}
