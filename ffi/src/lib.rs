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
//!   [`SottoGroupStore`]), each released with its own `_free` function.
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
mod handle;
mod keys;
mod persist;
mod plaintext;
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
pub use handle::{SottoDevice, SottoGroupSender, SottoGroupStore, SottoPlaintext, SottoSession};
pub use keys::*;
pub use plaintext::*;
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
};
