//! # sotto-bindings-common
//!
//! What sotto's generated bindings (`sotto-uniffi`: Kotlin, Swift, Python)
//! and its WebAssembly package (`sotto-wasm`) share, so that the two agree
//! by construction:
//!
//! - [`ErrorCode`]: every error a binding can raise, numbered exactly as the
//!   C ABI's `SottoError` (`ffi/src/error.rs`, `ffi/include/sotto.h`), which
//!   is the single source of the codes; the tests check each value against
//!   both.
//! - [`BindingError`]: a code with its message, what every binding call
//!   fails with before it becomes a typed exception.
//! - [`OsRng`]: the operating system's random number generator (on the web,
//!   `crypto.getRandomValues`) behind the fallible RNG trait the core takes.
//! - The parsers of the fixed-size arguments (storage keys, group and chain
//!   ids), which fail with [`ErrorCode::InvalidArgument`] as in the C ABI.

use core::fmt;

use rand_core::{TryCryptoRng, TryRng};
use sotto::StorageKey;
use sotto::group::{ChainId, GroupId};
use zeroize::Zeroizing;

/// Every error a binding raises, with the C ABI's code as its value.
///
/// Codes never change and are never reused (the C ABI retired 119 and
/// 126). The C ABI's other call-level codes (`NULL_POINTER`,
/// `WRONG_HANDLE`, `HANDLE_BUSY`, `PANIC`, `INVALID_BUFFER`) name mistakes
/// that generated bindings make impossible: their objects are typed and
/// locked, and their runtimes report an internal error themselves.
#[repr(i32)]
// Not non_exhaustive: the bindings match it exhaustively, so a new code
// fails their build until each binding names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// An argument is unusable: a storage key, group id or chain id that is
    /// not 32 bytes, a count that does not fit.
    InvalidArgument = 2,
    /// An earlier call on this object failed internally (a bug in sotto);
    /// restore it from its last saved state.
    HandlePoisoned = 5,
    /// The operating system's random number generator failed. Nothing
    /// changed.
    Randomness = 6,
    /// A protocol error this version has no code for yet.
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
    /// state, a seal context).
    TooLarge = 106,
    /// The plaintext is longer than the largest a message may carry.
    PlaintextTooLarge = 107,
    /// A public key is invalid or not canonical.
    InvalidPublicKey = 108,
    /// A key exchange produced the all-zero output (low-order peer key).
    NonContributoryKey = 109,
    /// A signature failed strict verification.
    InvalidSignature = 110,
    /// The identity key is not the one that was expected.
    IdentityMismatch = 111,
    /// The signed prekey is not held by this device.
    UnknownSignedPrekey = 112,
    /// The one-time prekey is not held by this device (never issued, or
    /// already used).
    UnknownOneTimePrekey = 113,
    /// This device already accepted a prekey message with this base key.
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
    /// The group message names a group or chain the store does not hold.
    UnknownGroupChain = 122,
    /// The group message's index is too far ahead, or unusable.
    GroupIndexOutOfRange = 123,
    /// The distribution or message belongs to another group.
    GroupMismatch = 124,
    /// The chain is already held with another owner, or on another ratchet.
    GroupChainConflict = 125,
    /// Post-quantum key agreement is required and was not offered.
    PostQuantumRequired = 127,
    /// The KEM prekey is not held by this device.
    UnknownKemPrekey = 128,
    /// The signed prekey recorded its last base key: rotate it.
    SignedPrekeyExhausted = 129,
    /// The session and its peer no longer share the ratchet (a side was
    /// rolled back): start a new session. Not authenticated.
    SessionDiverged = 130,
    /// The distribution's owner is not the peer of the session that
    /// delivered it.
    GroupOwnerMismatch = 131,
    /// An unauthenticated import while the store is full of authenticated
    /// chains.
    GroupStoreFull = 132,
    /// A device list too long, with a device named twice, an identity
    /// given to two devices, or the local identity given to another device.
    InvalidDeviceList = 133,
    /// The peer record does not hold the device, or it is no longer listed.
    UnknownDevice = 134,
    /// The device's identity changed and is not acknowledged yet.
    IdentityChangePending = 135,
    /// The device has no active session: fetch its bundle.
    NoSession = 136,
    /// A recovery for this device was made too recently.
    RecoveryRateLimited = 137,
    /// The user is not a member of the group, or the records given are not
    /// the members'.
    NotGroupMember = 138,
    /// The group has as many members as it may.
    TooManyGroupMembers = 139,
}

impl ErrorCode {
    /// Every code, in numeric order.
    pub const ALL: [Self; 41] = [
        Self::InvalidArgument,
        Self::HandlePoisoned,
        Self::Randomness,
        Self::ProtocolOther,
        Self::Truncated,
        Self::TrailingBytes,
        Self::UnsupportedVersion,
        Self::WrongType,
        Self::InvalidEncoding,
        Self::TooLarge,
        Self::PlaintextTooLarge,
        Self::InvalidPublicKey,
        Self::NonContributoryKey,
        Self::InvalidSignature,
        Self::IdentityMismatch,
        Self::UnknownSignedPrekey,
        Self::UnknownOneTimePrekey,
        Self::DuplicatePrekeyMessage,
        Self::TooManyPrekeys,
        Self::AuthenticationFailed,
        Self::DuplicateMessage,
        Self::TooFarAhead,
        Self::SessionMismatch,
        Self::ChainExhausted,
        Self::UnknownGroupChain,
        Self::GroupIndexOutOfRange,
        Self::GroupMismatch,
        Self::GroupChainConflict,
        Self::PostQuantumRequired,
        Self::UnknownKemPrekey,
        Self::SignedPrekeyExhausted,
        Self::SessionDiverged,
        Self::GroupOwnerMismatch,
        Self::GroupStoreFull,
        Self::InvalidDeviceList,
        Self::UnknownDevice,
        Self::IdentityChangePending,
        Self::NoSession,
        Self::RecoveryRateLimited,
        Self::NotGroupMember,
        Self::TooManyGroupMembers,
    ];

    /// The numeric code, equal to the C ABI's.
    pub const fn code(self) -> i32 {
        self as i32
    }

    /// The name in upper camel case, as the bindings' exception classes
    /// spell it (the C ABI's `SOTTO_ERROR_` name in another case).
    pub const fn name(self) -> &'static str {
        match self {
            Self::InvalidArgument => "InvalidArgument",
            Self::HandlePoisoned => "HandlePoisoned",
            Self::Randomness => "Randomness",
            Self::ProtocolOther => "ProtocolOther",
            Self::Truncated => "Truncated",
            Self::TrailingBytes => "TrailingBytes",
            Self::UnsupportedVersion => "UnsupportedVersion",
            Self::WrongType => "WrongType",
            Self::InvalidEncoding => "InvalidEncoding",
            Self::TooLarge => "TooLarge",
            Self::PlaintextTooLarge => "PlaintextTooLarge",
            Self::InvalidPublicKey => "InvalidPublicKey",
            Self::NonContributoryKey => "NonContributoryKey",
            Self::InvalidSignature => "InvalidSignature",
            Self::IdentityMismatch => "IdentityMismatch",
            Self::UnknownSignedPrekey => "UnknownSignedPrekey",
            Self::UnknownOneTimePrekey => "UnknownOneTimePrekey",
            Self::DuplicatePrekeyMessage => "DuplicatePrekeyMessage",
            Self::TooManyPrekeys => "TooManyPrekeys",
            Self::AuthenticationFailed => "AuthenticationFailed",
            Self::DuplicateMessage => "DuplicateMessage",
            Self::TooFarAhead => "TooFarAhead",
            Self::SessionMismatch => "SessionMismatch",
            Self::ChainExhausted => "ChainExhausted",
            Self::UnknownGroupChain => "UnknownGroupChain",
            Self::GroupIndexOutOfRange => "GroupIndexOutOfRange",
            Self::GroupMismatch => "GroupMismatch",
            Self::GroupChainConflict => "GroupChainConflict",
            Self::PostQuantumRequired => "PostQuantumRequired",
            Self::UnknownKemPrekey => "UnknownKemPrekey",
            Self::SignedPrekeyExhausted => "SignedPrekeyExhausted",
            Self::SessionDiverged => "SessionDiverged",
            Self::GroupOwnerMismatch => "GroupOwnerMismatch",
            Self::GroupStoreFull => "GroupStoreFull",
            Self::InvalidDeviceList => "InvalidDeviceList",
            Self::UnknownDevice => "UnknownDevice",
            Self::IdentityChangePending => "IdentityChangePending",
            Self::NoSession => "NoSession",
            Self::RecoveryRateLimited => "RecoveryRateLimited",
            Self::NotGroupMember => "NotGroupMember",
            Self::TooManyGroupMembers => "TooManyGroupMembers",
        }
    }

    /// The code of a core error, as the C ABI maps it. The core's error is
    /// non-exhaustive: a variant added later is [`ErrorCode::ProtocolOther`]
    /// until it gets a code of its own (in the C ABI first).
    pub fn from_core(error: &sotto::Error) -> Self {
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

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A failed binding call: its code and a message with public values only
/// (ids, counts, lengths; never key material or plaintext).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindingError {
    code: ErrorCode,
    message: String,
}

impl BindingError {
    /// An error with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// An [`ErrorCode::InvalidArgument`] error.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }

    /// The error's code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The error's message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<sotto::Error> for BindingError {
    fn from(error: sotto::Error) -> Self {
        Self::new(ErrorCode::from_core(&error), error.to_string())
    }
}

impl fmt::Display for BindingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BindingError {}

/// Shorthand for results of binding calls.
pub type BindingResult<T> = Result<T, BindingError>;

/// Exactly 32 bytes, or [`ErrorCode::InvalidArgument`] naming `what`.
fn array32(bytes: &[u8], what: &str) -> BindingResult<[u8; 32]> {
    bytes
        .try_into()
        .map_err(|_| BindingError::invalid(format!("{what} must be 32 bytes, got {}", bytes.len())))
}

/// A storage key for sealing saved states: exactly 32 bytes.
///
/// # Errors
///
/// [`ErrorCode::InvalidArgument`] if `bytes` is not 32 bytes long.
pub fn storage_key(bytes: &[u8]) -> BindingResult<StorageKey> {
    let key = Zeroizing::new(array32(bytes, "storage key")?);
    Ok(StorageKey::from_bytes(*key))
}

/// A group id: exactly 32 bytes (the app picks them, for example at
/// random when it creates the group).
///
/// # Errors
///
/// [`ErrorCode::InvalidArgument`] if `bytes` is not 32 bytes long.
pub fn group_id(bytes: &[u8]) -> BindingResult<GroupId> {
    Ok(GroupId::from_bytes(array32(bytes, "group id")?))
}

/// A chain id: 32 bytes that are a valid chain signing key.
///
/// # Errors
///
/// [`ErrorCode::InvalidArgument`] if `bytes` is not 32 bytes long; the
/// core's [`ChainId::from_bytes`] errors otherwise.
pub fn chain_id(bytes: &[u8]) -> BindingResult<ChainId> {
    Ok(ChainId::from_bytes(&array32(bytes, "chain id")?)?)
}

/// A count of prekeys to generate, which must fit the platform's `usize`.
///
/// # Errors
///
/// [`ErrorCode::InvalidArgument`] if it does not.
pub fn count(count: u32) -> BindingResult<usize> {
    usize::try_from(count).map_err(|_| BindingError::invalid("count does not fit in usize"))
}

/// The operating system's random number generator (`getrandom`; in a
/// browser or Node.js `crypto.getRandomValues`), as the fallible
/// `TryCryptoRng` the core takes. A failure reaches the caller as
/// [`ErrorCode::Randomness`], drawn before anything changed.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsRng;

impl TryRng for OsRng {
    type Error = getrandom::Error;

    fn try_next_u32(&mut self) -> Result<u32, getrandom::Error> {
        let mut bytes = [0u8; 4];
        getrandom::fill(&mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, getrandom::Error> {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), getrandom::Error> {
        getrandom::fill(dst)
    }
}

impl TryCryptoRng for OsRng {}

#[cfg(test)]
mod tests;
