//! Stable error codes, the thread-local last error, and the wrapper that
//! keeps panics from crossing the boundary. The lowest module of the crate
//! (it uses only `rng`): the function that hands the last error to C is in
//! `error_message.rs`.

use std::any::Any;
use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::rng::RngFailure;

/// What every function returns. `SOTTO_ERROR_OK` (0) is success.
///
/// The values are part of the ABI: they never change and are never reused.
/// New codes may be added. 1–99 are errors of the call itself (arguments,
/// handles, environment); 100 and up are protocol errors from the core.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SottoError {
    /// Success.
    Ok = 0,
    /// A required pointer was NULL.
    NullPointer = 1,
    /// An argument is unusable: a length over `SIZE_MAX / 2`, a storage key
    /// that is not 32 bytes, an output slot that is not empty, a buffer that
    /// is not one this library returned.
    InvalidArgument = 2,
    /// The handle is not a live handle of the expected type (for example a
    /// session passed where a device is expected).
    WrongHandle = 3,
    /// Another thread is using the handle right now.
    HandleBusy = 4,
    /// An earlier call on this handle failed internally; restore it from the
    /// last saved state.
    HandlePoisoned = 5,
    /// The operating system's random number generator failed.
    Randomness = 6,
    /// Internal error (a bug in sotto); nothing was changed, but a handle the
    /// call mutated is poisoned.
    Panic = 7,
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
    /// The input is larger than the format allows.
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
    /// The message names a signed prekey this device does not hold.
    UnknownSignedPrekey = 112,
    /// The message names a one-time prekey this device does not hold.
    UnknownOneTimePrekey = 113,
    /// This device already accepted a prekey message with this base key.
    DuplicatePrekeyMessage = 114,
    /// The device holds the most one-time prekeys it may hold.
    TooManyPrekeys = 115,
    /// The message was altered, forged, or belongs to another session.
    AuthenticationFailed = 116,
    /// The message was already decrypted, or its key was deleted.
    DuplicateMessage = 117,
    /// The message would skip more message keys than allowed.
    TooFarAhead = 118,
    /// The message starts a ratchet chain the peer cannot have started yet.
    UnexpectedRatchetKey = 119,
    /// The prekey message belongs to another session.
    SessionMismatch = 120,
    /// The sending chain reached the largest message number.
    ChainExhausted = 121,
    /// The group message names a group or sender chain this receiver does
    /// not hold.
    UnknownGroupChain = 122,
    /// The group message's index is too far ahead, or unusable.
    GroupIndexOutOfRange = 123,
    /// The sender key belongs to another group.
    GroupMismatch = 124,
    /// The sender key's chain id or signing key is already held for another
    /// chain.
    GroupChainConflict = 125,
    /// This sender chain is already held at the same or a later index.
    GroupChainNotNewer = 126,
}

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
            E::UnknownSignedPreKey { .. } => Self::UnknownSignedPrekey,
            E::UnknownOneTimePreKey { .. } => Self::UnknownOneTimePrekey,
            E::DuplicatePreKeyMessage => Self::DuplicatePrekeyMessage,
            E::TooManyPreKeys => Self::TooManyPrekeys,
            E::AuthenticationFailed => Self::AuthenticationFailed,
            E::DuplicateMessage => Self::DuplicateMessage,
            E::TooFarAhead { .. } => Self::TooFarAhead,
            E::UnexpectedRatchetKey => Self::UnexpectedRatchetKey,
            E::SessionMismatch => Self::SessionMismatch,
            E::ChainExhausted => Self::ChainExhausted,
            E::UnknownGroupChain => Self::UnknownGroupChain,
            E::GroupIndexOutOfRange { .. } => Self::GroupIndexOutOfRange,
            E::GroupMismatch => Self::GroupMismatch,
            E::GroupChainConflict => Self::GroupChainConflict,
            E::GroupChainNotNewer => Self::GroupChainNotNewer,
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
        Err(payload) if payload.is::<RngFailure>() => (
            SottoError::Randomness,
            Some("the operating system's random number generator failed".to_owned()),
        ),
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

    /// The numeric values are the ABI: this fails if one is renumbered.
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
            (SottoError::UnexpectedRatchetKey, 119),
            (SottoError::SessionMismatch, 120),
            (SottoError::ChainExhausted, 121),
            (SottoError::UnknownGroupChain, 122),
            (SottoError::GroupIndexOutOfRange, 123),
            (SottoError::GroupMismatch, 124),
            (SottoError::GroupChainConflict, 125),
            (SottoError::GroupChainNotNewer, 126),
        ];
        for (code, value) in table {
            assert_eq!(code as i32, value, "{code:?}");
        }
    }

    /// Every core error known today has its own code, distinct from the
    /// others and from the generic one.
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
            E::UnknownSignedPreKey { id: 1 },
            E::UnknownOneTimePreKey { id: 1 },
            E::DuplicatePreKeyMessage,
            E::TooManyPreKeys,
            E::AuthenticationFailed,
            E::DuplicateMessage,
            E::TooFarAhead { skipped: 1 },
            E::UnexpectedRatchetKey,
            E::SessionMismatch,
            E::ChainExhausted,
            E::UnknownGroupChain,
            E::GroupIndexOutOfRange { index: 1 },
            E::GroupMismatch,
            E::GroupChainConflict,
            E::GroupChainNotNewer,
        ];
        let mut codes: Vec<i32> = errors
            .iter()
            .map(|e| SottoError::from_core(e) as i32)
            .collect();
        assert!(codes.iter().all(|&c| c > 100));
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), errors.len());
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

    #[test]
    fn rng_failure_has_its_own_code() {
        let code = ffi_call(|| std::panic::resume_unwind(Box::new(RngFailure)));
        assert_eq!(code, SottoError::Randomness);
    }
}
