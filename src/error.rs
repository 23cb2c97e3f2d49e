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
    /// The caller's random number generator failed. Nothing changed.
    RandomnessUnavailable,
    /// A bundle without a KEM prekey, or a prekey message without a KEM
    /// ciphertext, under the default policy, which requires PQXDH (SPEC §7.1).
    PostQuantumRequired,
    /// The prekey message names a signed prekey this device does not hold;
    /// or the signed prekey to remove is the current one or not held.
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
    /// The prekey message names a KEM prekey this device does not hold
    /// (never issued, used, or deleted); or the last-resort KEM prekey to
    /// remove is the current one or not held.
    UnknownKemPreKey {
        /// The KEM prekey id.
        id: u32,
    },
    /// This device already accepted a prekey message with the same base key
    /// under the same signed prekey.
    DuplicatePreKeyMessage,
    /// The signed prekey has recorded as many base keys as it may
    /// ([`MAX_BASE_KEYS_PER_SIGNED_PREKEY`](crate::MAX_BASE_KEYS_PER_SIGNED_PREKEY)):
    /// rotate it.
    SignedPreKeyExhausted {
        /// The signed prekey id named by the message.
        id: u32,
    },
    /// A prekey store would exceed its bound, or a prekey id would pass the
    /// last one.
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
    /// The message is on a ratchet key this session does not know and does
    /// not decrypt as the peer's next chain, or on a closed chain at or past
    /// its end (SPEC §8.6). Its honest cause is a rollback of either side
    /// (§11), after which the session cannot recover and must be replaced by
    /// a new one; it is not authenticated, so it never justifies deleting
    /// the session.
    SessionDiverged,
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
    /// The sender key belongs to another group than the store it was added to.
    GroupMismatch,
    /// A distribution whose owner is not the identity of the session that
    /// delivered it (SPEC §15.7).
    GroupOwnerMismatch,
    /// The sender key's chain id or signing key is already held for a
    /// different chain or sender in this store.
    GroupChainConflict,
    /// An unauthenticated chain while the store is full of authenticated
    /// ones (SPEC §15.9).
    GroupStoreFull,
    /// A device list with too many entries, a device named twice, an
    /// identity given to two devices or the local identity to another
    /// device (SPEC §16.2).
    InvalidDeviceList,
    /// The record does not hold the device, or it is no longer listed
    /// (SPEC §16).
    UnknownDevice,
    /// The device has an identity change the application has not
    /// acknowledged yet (SPEC §16.2).
    IdentityChangePending,
    /// The device has no active session: fetch its bundle (SPEC §16.3).
    NoSession,
    /// A recovery for this device was made too recently (SPEC §16.6).
    RecoveryRateLimited,
    /// The user is not a member of the group, or the records given are not
    /// the members' (SPEC §16.8).
    NotGroupMember,
    /// The group has as many members as it may (SPEC §16.8).
    TooManyGroupMembers,
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
            Self::RandomnessUnavailable => f.write_str("the random number generator failed"),
            Self::PostQuantumRequired => {
                f.write_str("post-quantum key agreement required but not offered")
            }
            Self::UnknownSignedPreKey { id } => write!(f, "unknown signed prekey {id}"),
            Self::UnknownOneTimePreKey { id } => write!(f, "unknown or used one-time prekey {id}"),
            Self::UnknownKemPreKey { id } => write!(f, "unknown or used KEM prekey {id}"),
            Self::DuplicatePreKeyMessage => f.write_str("prekey message already accepted"),
            Self::SignedPreKeyExhausted { id } => {
                write!(
                    f,
                    "signed prekey {id} recorded its last base key; rotate it"
                )
            }
            Self::TooManyPreKeys => f.write_str("prekey store full or prekey ids used up"),
            Self::AuthenticationFailed => f.write_str("authentication failed"),
            Self::DuplicateMessage => {
                f.write_str("message already decrypted or its key was deleted")
            }
            Self::TooFarAhead { skipped } => {
                write!(f, "message would skip {skipped} keys, more than allowed")
            }
            Self::SessionDiverged => {
                f.write_str("session diverged (a side was rolled back); start a new session")
            }
            Self::SessionMismatch => f.write_str("message belongs to another session"),
            Self::ChainExhausted => f.write_str("sending chain exhausted"),
            Self::UnknownGroupChain => f.write_str("unknown group or sender chain"),
            Self::GroupIndexOutOfRange { index } => {
                write!(f, "group message index {index} is out of range")
            }
            Self::GroupMismatch => f.write_str("sender key belongs to another group"),
            Self::GroupOwnerMismatch => {
                f.write_str("distribution owner is not the session's remote identity")
            }
            Self::GroupChainConflict => {
                f.write_str("chain id or signing key already held for another chain")
            }
            Self::GroupStoreFull => f.write_str("group store full of authenticated chains"),
            Self::InvalidDeviceList => f.write_str("invalid device list"),
            Self::UnknownDevice => f.write_str("unknown or unlisted device"),
            Self::IdentityChangePending => {
                f.write_str("the device's identity change is not acknowledged")
            }
            Self::NoSession => f.write_str("no active session with the device"),
            Self::RecoveryRateLimited => f.write_str("recovery for this device rate limited"),
            Self::NotGroupMember => f.write_str("not a member of the group"),
            Self::TooManyGroupMembers => f.write_str("group has too many members"),
        }
    }
}

impl core::error::Error for Error {}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use alloc::string::ToString;
    use alloc::vec::Vec;

    use super::Error;

    /// The variant's name; the match is exhaustive, so a new variant must
    /// be named here, and then in SPEC §12.
    fn name(error: Error) -> &'static str {
        match error {
            Error::Truncated => "Truncated",
            Error::TrailingBytes => "TrailingBytes",
            Error::UnsupportedVersion { .. } => "UnsupportedVersion",
            Error::WrongType { .. } => "WrongType",
            Error::InvalidEncoding => "InvalidEncoding",
            Error::TooLarge => "TooLarge",
            Error::PlaintextTooLarge => "PlaintextTooLarge",
            Error::InvalidPublicKey => "InvalidPublicKey",
            Error::NonContributoryKey => "NonContributoryKey",
            Error::InvalidSignature => "InvalidSignature",
            Error::IdentityMismatch => "IdentityMismatch",
            Error::RandomnessUnavailable => "RandomnessUnavailable",
            Error::PostQuantumRequired => "PostQuantumRequired",
            Error::UnknownSignedPreKey { .. } => "UnknownSignedPreKey",
            Error::UnknownOneTimePreKey { .. } => "UnknownOneTimePreKey",
            Error::UnknownKemPreKey { .. } => "UnknownKemPreKey",
            Error::DuplicatePreKeyMessage => "DuplicatePreKeyMessage",
            Error::SignedPreKeyExhausted { .. } => "SignedPreKeyExhausted",
            Error::TooManyPreKeys => "TooManyPreKeys",
            Error::AuthenticationFailed => "AuthenticationFailed",
            Error::DuplicateMessage => "DuplicateMessage",
            Error::TooFarAhead { .. } => "TooFarAhead",
            Error::SessionDiverged => "SessionDiverged",
            Error::SessionMismatch => "SessionMismatch",
            Error::ChainExhausted => "ChainExhausted",
            Error::UnknownGroupChain => "UnknownGroupChain",
            Error::GroupIndexOutOfRange { .. } => "GroupIndexOutOfRange",
            Error::GroupMismatch => "GroupMismatch",
            Error::GroupOwnerMismatch => "GroupOwnerMismatch",
            Error::GroupChainConflict => "GroupChainConflict",
            Error::GroupStoreFull => "GroupStoreFull",
            Error::InvalidDeviceList => "InvalidDeviceList",
            Error::UnknownDevice => "UnknownDevice",
            Error::IdentityChangePending => "IdentityChangePending",
            Error::NoSession => "NoSession",
            Error::RecoveryRateLimited => "RecoveryRateLimited",
            Error::NotGroupMember => "NotGroupMember",
            Error::TooManyGroupMembers => "TooManyGroupMembers",
        }
    }

    /// Every variant is one of SPEC §12's errors and every one of those is a
    /// variant (the version 1 group variant aside, until the group rewrite
    /// removes it); messages carry only the public fields.
    #[test]
    fn variants_are_the_specified_errors() {
        let all = [
            Error::Truncated,
            Error::TrailingBytes,
            Error::UnsupportedVersion { found: 7 },
            Error::WrongType {
                expected: 0x21,
                found: 0x20,
            },
            Error::InvalidEncoding,
            Error::TooLarge,
            Error::PlaintextTooLarge,
            Error::InvalidPublicKey,
            Error::NonContributoryKey,
            Error::InvalidSignature,
            Error::IdentityMismatch,
            Error::RandomnessUnavailable,
            Error::PostQuantumRequired,
            Error::UnknownSignedPreKey { id: 7 },
            Error::UnknownOneTimePreKey { id: 7 },
            Error::UnknownKemPreKey { id: 7 },
            Error::DuplicatePreKeyMessage,
            Error::SignedPreKeyExhausted { id: 7 },
            Error::TooManyPreKeys,
            Error::AuthenticationFailed,
            Error::DuplicateMessage,
            Error::TooFarAhead { skipped: 7 },
            Error::SessionDiverged,
            Error::SessionMismatch,
            Error::ChainExhausted,
            Error::UnknownGroupChain,
            Error::GroupIndexOutOfRange { index: 7 },
            Error::GroupMismatch,
            Error::GroupOwnerMismatch,
            Error::GroupChainConflict,
            Error::GroupStoreFull,
            Error::InvalidDeviceList,
            Error::UnknownDevice,
            Error::IdentityChangePending,
            Error::NoSession,
            Error::RecoveryRateLimited,
            Error::NotGroupMember,
            Error::TooManyGroupMembers,
        ];
        let spec: Vec<&str> = include_str!("../SPEC.md")
            .lines()
            .skip_while(|l| !l.starts_with("## 12. Errors"))
            .take_while(|l| !l.starts_with("## 13."))
            .filter_map(|l| l.strip_prefix("| `"))
            .map(|l| l.split([' ', '`']).next().unwrap_or_default())
            .collect();
        let mut ours: Vec<&str> = all.iter().map(|e| name(*e)).collect();
        let mut spec_sorted = spec.clone();
        ours.sort_unstable();
        spec_sorted.sort_unstable();
        assert_eq!(ours, spec_sorted);
        for error in all {
            let text = error.to_string();
            assert!(!text.is_empty());
            if matches!(
                error,
                Error::UnknownKemPreKey { .. } | Error::TooFarAhead { .. }
            ) {
                assert!(text.contains('7'), "{text}");
            }
        }
    }
}
