//! # sotto-ffi
//!
//! The C ABI of [`sotto`], for apps on iOS, Android and anything else that
//! can call C. The header `include/sotto.h` is generated from this crate by
//! cbindgen.
//!
//! Conventions (details in `README.md`):
//!
//! - Every function returns a [`SottoError`]; `SOTTO_ERROR_OK` (0) is success.
//!   The codes are stable and the single source for every binding. The
//!   message of the calling thread's last failure is read with
//!   [`sotto_last_error_message`].
//! - State lives behind opaque typed handles ([`SottoDevice`],
//!   [`SottoSession`], [`SottoPlaintext`], [`SottoGroupSender`],
//!   [`SottoGroupStore`], and for the session layer of SPEC §16
//!   [`SottoPeerRecord`], [`SottoReceived`], [`SottoOutbox`],
//!   [`SottoGroupSession`]), each released with its own `_free` function.
//!   Every pointer is checked against the live handles before use: a
//!   handle of the wrong type, or one already freed, is refused with
//!   `SOTTO_ERROR_WRONG_HANDLE`, one in use by another thread with
//!   `SOTTO_ERROR_HANDLE_BUSY`.
//! - Inputs are borrowed `(const uint8_t *ptr, size_t len)` pairs. Outputs are
//!   owned, self-checking [`SottoBuffer`]s, released with
//!   [`sotto_buffer_free`], which refuses a buffer already freed (through any
//!   copy of the struct); an output slot must be empty (`{NULL, 0, 0}`, or a
//!   `NULL` handle) when passed in.
//! - No panic crosses the boundary, and randomness comes from the operating
//!   system; its failure is `SOTTO_ERROR_RANDOMNESS`, with nothing changed.
// The workspace denies unsafe code; this crate is the C boundary and the one
// place it is allowed. Every block carries a `// SAFETY:` comment and does
// one unsafe thing, which clippy checks.
#![allow(unsafe_code)]
#![deny(
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks,
    clippy::multiple_unsafe_ops_per_block
)]

mod buffer;
mod device;
mod error;
mod error_message;
mod group;
mod group_session;
mod handle;
mod keys;
mod outbox;
mod persist;
mod plaintext;
mod received;
mod record;
mod rng;
mod session;
mod store;

#[cfg(test)]
mod tests;

pub use buffer::{SottoBuffer, sotto_buffer_free};
pub use device::*;
pub use error::SottoError;
pub use error_message::sotto_last_error_message;
pub use group::*;
pub use group_session::*;
pub use handle::{
    SottoDevice, SottoGroupSender, SottoGroupSession, SottoGroupStore, SottoOutbox,
    SottoPeerRecord, SottoPlaintext, SottoReceived, SottoSession,
};
pub use keys::*;
pub use outbox::*;
pub use plaintext::*;
pub use received::*;
pub use record::*;
pub use session::*;
pub use store::*;

/// Length of a storage key for the `_seal`/`_unseal` functions.
pub const SOTTO_STORAGE_KEY_LEN: usize = 32;
/// Longest context a state can be sealed under.
pub const SOTTO_MAX_SEAL_CONTEXT_LEN: usize = 1024;
/// Length of an encoded identity key (what every `_identity_key` function
/// returns and `sotto_session_initiate` expects).
pub const SOTTO_IDENTITY_KEY_LEN: usize = 34;
/// Length of an encoded signed prekey.
pub const SOTTO_SIGNED_PREKEY_LEN: usize = 102;
/// Length of one encoded one-time prekey.
pub const SOTTO_ONE_TIME_PREKEY_LEN: usize = 38;
/// Length of one encoded KEM prekey (ML-KEM-1024, signed).
pub const SOTTO_KEM_PREKEY_LEN: usize = 1640;
/// Largest encoded prekey bundle.
pub const SOTTO_MAX_BUNDLE_LEN: usize = 1810;
/// Length of a fingerprint in bytes.
pub const SOTTO_FINGERPRINT_LEN: usize = 32;
/// Length of a session's base key.
pub const SOTTO_BASE_KEY_LEN: usize = 32;
/// Largest plaintext one message may carry.
pub const SOTTO_MAX_PLAINTEXT_LEN: usize = 262_144;
/// Largest encoded pairwise message.
pub const SOTTO_MAX_MESSAGE_LEN: usize = 263_866;
/// Length of a group id.
pub const SOTTO_GROUP_ID_LEN: usize = 32;
/// Length of a group sender chain id.
pub const SOTTO_CHAIN_ID_LEN: usize = 32;
/// Length of an encoded sender key distribution.
pub const SOTTO_SENDER_KEY_DISTRIBUTION_LEN: usize = 486;
/// Largest encoded group message.
pub const SOTTO_MAX_GROUP_MESSAGE_LEN: usize = 262_310;
/// Most signed prekeys a device keeps (the current one and older ones).
pub const SOTTO_MAX_SIGNED_PREKEYS: usize = 4;
/// Most base keys of replayable prekey messages one signed prekey records.
pub const SOTTO_MAX_BASE_KEYS_PER_SIGNED_PREKEY: usize = 1000;
/// Most unused one-time prekeys a device holds.
pub const SOTTO_MAX_ONE_TIME_PREKEYS: usize = 1000;
/// Most last-resort KEM prekeys a device keeps (the current one and older
/// ones).
pub const SOTTO_MAX_LAST_RESORT_KEM_PREKEYS: usize = 4;
/// Most unused one-time KEM prekeys a device holds.
pub const SOTTO_MAX_ONE_TIME_KEM_PREKEYS: usize = 100;
/// Most chains a group store keeps.
pub const SOTTO_MAX_GROUP_RECEIVERS: usize = 1024;

/// Longest user id, in bytes (SPEC §16.1).
pub const SOTTO_MAX_USER_ID_LEN: usize = 64;
/// Most devices one peer record holds, listed or stale; the longest device
/// list, and the length of every device array of the session layer.
pub const SOTTO_MAX_DEVICES_PER_USER: usize = 16;
/// Most archived sessions per device.
pub const SOTTO_MAX_ARCHIVED_SESSIONS: usize = 4;
/// A stale device is deleted this long after it left the device list (30
/// days, in the unit of your `now`: seconds).
pub const SOTTO_MAX_STALE_DEVICE_AGE: u64 = 2_592_000;
/// An archived session on which nothing decrypted for this long is deleted.
pub const SOTTO_MAX_ARCHIVED_SESSION_AGE: u64 = 2_592_000;
/// An active session we started that got no reply for this long asks for a
/// new bundle.
pub const SOTTO_MAX_UNANSWERED_SESSION_AGE: u64 = 2_592_000;
/// At most one new session for recovery per device in this time; the
/// retry-request window.
pub const SOTTO_MIN_RECOVERY_INTERVAL: u64 = 3600;
/// Most retry requests per device in one `SOTTO_MIN_RECOVERY_INTERVAL`.
pub const SOTTO_MAX_RETRY_REQUESTS_PER_INTERVAL: u8 = 8;
/// Most members of a group session, the local user included.
pub const SOTTO_MAX_GROUP_MEMBERS: usize = 1000;
/// Largest payload through the session layer (one byte of every plaintext
/// is its frame).
pub const SOTTO_MAX_PAYLOAD_LEN: usize = 262_143;
/// Length of a user's fingerprint as text: 30 digits in six groups of five.
pub const SOTTO_USER_FINGERPRINT_TEXT_LEN: usize = 35;
/// Length of a safety number as text: 60 digits in twelve groups of five.
pub const SOTTO_SAFETY_NUMBER_TEXT_LEN: usize = 71;

// The header needs literals; these keep them equal to the core's values.
const _: () = {
    assert!(SOTTO_MAX_SEAL_CONTEXT_LEN == sotto::MAX_SEAL_CONTEXT_LEN);
    assert!(SOTTO_IDENTITY_KEY_LEN == sotto::IdentityKey::ENCODED_LEN);
    assert!(SOTTO_SIGNED_PREKEY_LEN == sotto::SignedPreKey::ENCODED_LEN);
    assert!(SOTTO_ONE_TIME_PREKEY_LEN == sotto::OneTimePreKey::ENCODED_LEN);
    assert!(SOTTO_KEM_PREKEY_LEN == sotto::KemPreKey::ENCODED_LEN);
    assert!(SOTTO_MAX_BUNDLE_LEN == sotto::PreKeyBundle::MAX_ENCODED_LEN);
    assert!(SOTTO_MAX_PLAINTEXT_LEN == sotto::MAX_PLAINTEXT_LEN);
    assert!(SOTTO_MAX_MESSAGE_LEN == sotto::MAX_MESSAGE_LEN);
    assert!(SOTTO_SENDER_KEY_DISTRIBUTION_LEN == sotto::group::SenderKeyDistribution::ENCODED_LEN);
    assert!(SOTTO_MAX_GROUP_MESSAGE_LEN == sotto::group::MAX_GROUP_MESSAGE_LEN);
    assert!(SOTTO_MAX_SIGNED_PREKEYS == sotto::MAX_SIGNED_PREKEYS);
    assert!(SOTTO_MAX_BASE_KEYS_PER_SIGNED_PREKEY == sotto::MAX_BASE_KEYS_PER_SIGNED_PREKEY);
    assert!(SOTTO_MAX_ONE_TIME_PREKEYS == sotto::MAX_ONE_TIME_PREKEYS);
    assert!(SOTTO_MAX_LAST_RESORT_KEM_PREKEYS == sotto::MAX_LAST_RESORT_KEM_PREKEYS);
    assert!(SOTTO_MAX_ONE_TIME_KEM_PREKEYS == sotto::MAX_ONE_TIME_KEM_PREKEYS);
    assert!(SOTTO_MAX_GROUP_RECEIVERS == sotto::group::MAX_GROUP_RECEIVERS);
    assert!(SOTTO_MAX_USER_ID_LEN == sotto::sessions::MAX_USER_ID_LEN);
    assert!(SOTTO_MAX_DEVICES_PER_USER == sotto::sessions::MAX_DEVICES_PER_USER);
    assert!(SOTTO_MAX_ARCHIVED_SESSIONS == sotto::sessions::MAX_ARCHIVED_SESSIONS);
    assert!(SOTTO_MAX_STALE_DEVICE_AGE == sotto::sessions::MAX_STALE_DEVICE_AGE);
    assert!(SOTTO_MAX_ARCHIVED_SESSION_AGE == sotto::sessions::MAX_ARCHIVED_SESSION_AGE);
    assert!(SOTTO_MAX_UNANSWERED_SESSION_AGE == sotto::sessions::MAX_UNANSWERED_SESSION_AGE);
    assert!(SOTTO_MIN_RECOVERY_INTERVAL == sotto::sessions::MIN_RECOVERY_INTERVAL);
    assert!(
        SOTTO_MAX_RETRY_REQUESTS_PER_INTERVAL == sotto::sessions::MAX_RETRY_REQUESTS_PER_INTERVAL
    );
    assert!(SOTTO_MAX_GROUP_MEMBERS == sotto::sessions::MAX_GROUP_MEMBERS);
    assert!(SOTTO_MAX_PAYLOAD_LEN == sotto::sessions::MAX_PAYLOAD_LEN);
};
