//! The one error type of the crate (SPEC.md §12 for when each is returned,
//! §15.13 for groups).

use core::fmt;

/// Everything that can go wrong in sotto.
///
/// Variants name the failed check and carry only public values (ids, counts,
/// type tags), never key material or plaintext. Any operation that returns an
/// error leaves every state it was given exactly as it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The input ended before the encoding was complete.
    Truncated,
    /// Bytes followed a complete encoding.
    TrailingBytes,
    /// The encoding's version byte is not one this library reads.
    UnsupportedVersion {
        /// The version byte found.
        found: u8,
    },
    /// The encoding's type tag is not the type that was asked for.
    WrongType {
        /// The type tag the caller asked to decode.
        expected: u8,
        /// The type tag found.
        found: u8,
    },
    /// A field holds a value the format does not allow (a flag other than 0
    /// or 1, a count over its bound, indices out of order).
    InvalidEncoding,
    /// The input is longer than the largest message or state the format allows.
    TooLarge,
    /// The plaintext is longer than [`MAX_PLAINTEXT_LEN`](crate::MAX_PLAINTEXT_LEN).
    PlaintextTooLarge,
    /// A public key is not a valid, canonical encoding (or is a small-order
    /// Ed25519 point).
    InvalidPublicKey,
    /// An X25519 exchange produced the all-zero output: the peer's key is a
    /// low-order point.
    NonContributoryKey,
    /// An Ed25519 signature failed strict verification.
    InvalidSignature,
    /// The identity key is not the one that was expected.
    IdentityMismatch,
    /// The prekey message names a signed prekey this device does not hold.
    UnknownSignedPreKey {
        /// The signed prekey id named by the message.
        id: u32,
    },
    /// The prekey message names a one-time prekey this device does not hold
    /// (never issued, or already used).
    UnknownOneTimePreKey {
        /// The one-time prekey id named by the message.
        id: u32,
    },
    /// This device already accepted a prekey message with the same base key.
    DuplicatePreKeyMessage,
    /// The device already holds the most one-time prekeys it may hold.
    TooManyPreKeys,
    /// The AEAD tag did not verify: the message was altered, forged, or is
    /// for another session.
    AuthenticationFailed,
    /// The message was already decrypted, or its key was deleted (evicted
    /// from the skipped-key store, or the chain is closed).
    DuplicateMessage,
    /// Decrypting would skip more message keys than
    /// [`MAX_SKIP`](crate::MAX_SKIP) allows.
    TooFarAhead {
        /// How many message keys this message would have made us store.
        skipped: u64,
    },
    /// The message starts a new ratchet chain the peer cannot have started
    /// yet: an old message whose chain is gone, or a forgery.
    UnexpectedRatchetKey,
    /// The prekey message belongs to another session.
    SessionMismatch,
    /// The sending chain reached the largest message number.
    ChainExhausted,
    /// The group message names a group or sender chain this receiver (or
    /// store) does not hold.
    UnknownGroupChain,
    /// The group message's index is too far ahead of the receiver
    /// (more than [`MAX_GROUP_JUMP`](crate::group::MAX_GROUP_JUMP)) or is the
    /// unusable last index `u32::MAX`.
    GroupIndexOutOfRange {
        /// The index named by the message.
        index: u32,
    },
    /// The sender key, receiver or message belongs to another group.
    GroupMismatch,
    /// The store already holds this chain with another owner, or a copy of
    /// it whose ratchet is not on the same chain (SPEC §15.9).
    GroupChainConflict,
    /// A sender key distribution names an owner other than the identity of
    /// the session that delivered it (SPEC §15.7).
    GroupOwnerMismatch,
    /// An unauthenticated chain cannot be stored: the group store is full of
    /// authenticated chains (SPEC §15.9).
    GroupStoreFull,
    /// The caller's random number generator failed; nothing changed.
    RandomnessUnavailable,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("input ended before the encoding was complete"),
            Self::TrailingBytes => f.write_str("unexpected bytes after the encoding"),
            Self::UnsupportedVersion { found } => write!(f, "unsupported version {found}"),
            Self::WrongType { expected, found } => {
                write!(f, "expected type 0x{expected:02x}, found 0x{found:02x}")
            }
            Self::InvalidEncoding => f.write_str("a field holds a value the format does not allow"),
            Self::TooLarge => f.write_str("input is larger than the format allows"),
            Self::PlaintextTooLarge => f.write_str("plaintext is larger than the maximum"),
            Self::InvalidPublicKey => f.write_str("invalid public key"),
            Self::NonContributoryKey => {
                f.write_str("key exchange produced the all-zero output (low-order public key)")
            }
            Self::InvalidSignature => f.write_str("signature verification failed"),
            Self::IdentityMismatch => f.write_str("identity key does not match"),
            Self::UnknownSignedPreKey { id } => write!(f, "unknown signed prekey {id}"),
            Self::UnknownOneTimePreKey { id } => write!(f, "unknown or used one-time prekey {id}"),
            Self::DuplicatePreKeyMessage => f.write_str("prekey message already accepted"),
            Self::TooManyPreKeys => f.write_str("one-time prekey store is full"),
            Self::AuthenticationFailed => f.write_str("authentication failed"),
            Self::DuplicateMessage => {
                f.write_str("message already decrypted or its key was deleted")
            }
            Self::TooFarAhead { skipped } => {
                write!(f, "message would skip {skipped} keys, more than allowed")
            }
            Self::UnexpectedRatchetKey => f.write_str("unexpected ratchet key"),
            Self::SessionMismatch => f.write_str("message belongs to another session"),
            Self::ChainExhausted => f.write_str("sending chain exhausted"),
            Self::UnknownGroupChain => f.write_str("unknown group or sender chain"),
            Self::GroupIndexOutOfRange { index } => {
                write!(f, "group message index {index} is out of range")
            }
            Self::GroupMismatch => f.write_str("sender key belongs to another group"),
            Self::GroupChainConflict => {
                f.write_str("chain already held with another owner or another ratchet")
            }
            Self::GroupOwnerMismatch => {
                f.write_str("sender key distribution delivered by a session not its owner's")
            }
            Self::GroupStoreFull => f.write_str("group store is full of authenticated chains"),
            Self::RandomnessUnavailable => f.write_str("random number generator failed"),
        }
    }
}

impl core::error::Error for Error {}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;
