//! The one error type of the bindings: a typed exception per code, each
//! carrying the C ABI's number (`SottoException.AuthenticationFailed` in
//! Kotlin, `SottoError.AuthenticationFailed` in Python and Swift).

use std::sync::{Mutex, MutexGuard};

use sotto_bindings_common::{BindingError, ErrorCode};

/// Declares the error enum, one variant per [`ErrorCode`], and the
/// exhaustive conversion from a [`BindingError`].
macro_rules! errors {
    ($($(#[doc = $doc:literal])+ $name:ident,)+) => {
        /// Every error of sotto's bindings. `code` is the C ABI's number
        /// (`SOTTO_ERROR_*` in `sotto.h`) and never changes; `detail` is a
        /// message with public values only (ids, counts, lengths).
        #[derive(Debug, Clone, PartialEq, Eq, uniffi::Error)]
        pub enum SottoError {
            $(
                $(#[doc = $doc])+
                $name {
                    /// The C ABI's code.
                    code: i32,
                    /// What failed, without secrets.
                    detail: String,
                },
            )+
        }

        impl From<BindingError> for SottoError {
            fn from(error: BindingError) -> Self {
                let code = error.code().code();
                let detail = error.message().to_owned();
                match error.code() {
                    $(ErrorCode::$name => Self::$name { code, detail },)+
                }
            }
        }

        impl SottoError {
            /// The C ABI's code of this error.
            pub fn code(&self) -> i32 {
                match self {
                    $(Self::$name { code, .. })|+ => *code,
                }
            }

            /// What failed, without secrets.
            pub fn detail(&self) -> &str {
                match self {
                    $(Self::$name { detail, .. })|+ => detail,
                }
            }
        }
    };
}

errors! {
    /// An argument is unusable: a storage key, group id or chain id that is
    /// not 32 bytes.
    InvalidArgument,
    /// An earlier call on this object failed internally (a bug in sotto):
    /// restore it from its last saved state.
    HandlePoisoned,
    /// The operating system's random number generator failed. Nothing
    /// changed.
    Randomness,
    /// A protocol error this version has no code for yet.
    ProtocolOther,
    /// The input ended before the encoding was complete.
    Truncated,
    /// Bytes followed a complete encoding.
    TrailingBytes,
    /// The encoding's version byte is not one this library reads.
    UnsupportedVersion,
    /// The bytes encode another type than the one asked for.
    WrongType,
    /// A field holds a value the format does not allow.
    InvalidEncoding,
    /// The input is larger than the format allows (a message, a saved
    /// state, a seal context over 1024 bytes).
    TooLarge,
    /// The plaintext is longer than 262,144 bytes.
    PlaintextTooLarge,
    /// A public key is invalid or not canonical.
    InvalidPublicKey,
    /// A key exchange produced the all-zero output (low-order peer key).
    NonContributoryKey,
    /// A signature failed strict verification.
    InvalidSignature,
    /// The identity key is not the one that was expected.
    IdentityMismatch,
    /// The message names a signed prekey this device does not hold; or the
    /// signed prekey to remove is the current one or not held.
    UnknownSignedPrekey,
    /// The one-time prekey is not held by this device (never issued, or
    /// already used).
    UnknownOneTimePrekey,
    /// This device already accepted a prekey message with this base key
    /// under this signed prekey.
    DuplicatePrekeyMessage,
    /// A prekey store would pass its bound, or the prekey ids are used up.
    TooManyPrekeys,
    /// The message or sealed state was altered, forged, belongs to another
    /// session, or was sealed under another key or context.
    AuthenticationFailed,
    /// The message was already decrypted, or its key was deleted.
    DuplicateMessage,
    /// The message would skip more message keys than allowed (1000).
    TooFarAhead,
    /// The prekey message belongs to another session.
    SessionMismatch,
    /// The sending chain reached the largest message number (or index).
    ChainExhausted,
    /// The group message names a group or sender chain the store does not
    /// hold.
    UnknownGroupChain,
    /// The group message's index is too far ahead, or unusable.
    GroupIndexOutOfRange,
    /// The distribution or message belongs to another group.
    GroupMismatch,
    /// The chain is already held with another owner, or on another ratchet.
    GroupChainConflict,
    /// A bundle without a KEM prekey, or a prekey message without a KEM
    /// ciphertext, where post-quantum key agreement is required (the
    /// default; see the `_allow_classical` calls).
    PostQuantumRequired,
    /// The KEM prekey is not held by this device (never issued, used, or
    /// deleted); or the last-resort KEM prekey to remove is the current one
    /// or not held.
    UnknownKemPrekey,
    /// The signed prekey recorded its last base key: rotate it.
    SignedPrekeyExhausted,
    /// The session and its peer no longer share the ratchet (one side was
    /// rolled back): start a new session. Not authenticated: keep the
    /// session for the messages it can still decrypt.
    SessionDiverged,
    /// The distribution's owner is not the peer of the session that
    /// delivered it (for example a member forwarding another's key).
    GroupOwnerMismatch,
    /// An unauthenticated import while the store is full of authenticated
    /// chains.
    GroupStoreFull,
    /// A device list too long, with a device named twice, an identity
    /// given to two devices, or the local identity given to another device.
    InvalidDeviceList,
    /// The peer record does not hold the device, or it is no longer listed.
    UnknownDevice,
    /// The device's identity changed and is not acknowledged yet.
    IdentityChangePending,
    /// The device has no active session: fetch its bundle.
    NoSession,
    /// A recovery for this device was made too recently.
    RecoveryRateLimited,
    /// The user is not a member of the group, or the records given are not
    /// the members'.
    NotGroupMember,
    /// The group has as many members as it may.
    TooManyGroupMembers,
}

impl From<sotto::Error> for SottoError {
    fn from(error: sotto::Error) -> Self {
        BindingError::from(error).into()
    }
}

impl std::fmt::Display for SottoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = ErrorCode::ALL
            .iter()
            .find(|c| c.code() == self.code())
            .map_or("Unknown", |c| c.name());
        write!(f, "{name} ({}): {}", self.code(), self.detail())
    }
}

impl std::error::Error for SottoError {}

/// Shorthand for the results of binding calls.
pub type Result<T, E = SottoError> = std::result::Result<T, E>;

/// Locks an object's state. A mutex is poisoned only by a panic inside a
/// call (a bug), which may have left the state half-changed: the object is
/// then refused, as the C ABI refuses a poisoned handle.
pub(crate) fn lock<'a, T>(state: &'a Mutex<T>, what: &str) -> Result<MutexGuard<'a, T>> {
    state.lock().map_err(|_| {
        BindingError::new(
            ErrorCode::HandlePoisoned,
            format!("{what}: an earlier call failed internally; restore it from its saved state"),
        )
        .into()
    })
}
