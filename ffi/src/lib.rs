//! # sotto-ffi
//!
//! The C ABI of [`sotto`], for apps on iOS, Android and anything else that
//! can call C. The header `include/sotto.h` is generated from this crate by
//! cbindgen.
//!
//! Conventions (details in `README.md`):
//!
//! - Every function returns a [`SottoError`]; `SOTTO_ERROR_OK` (0) is success.
//!   The message of the calling thread's last failure is read with
//!   [`sotto_last_error_message`].
//! - State lives behind opaque typed handles ([`SottoDevice`],
//!   [`SottoSession`], [`SottoGroupSender`], [`SottoGroupReceiver`]), each released with its own `_free` function. A handle
//!   of the wrong type is refused with `SOTTO_ERROR_WRONG_HANDLE`.
//! - Inputs are borrowed `(const uint8_t *ptr, size_t len)` pairs. Outputs are
//!   owned [`SottoBuffer`]s, released with [`sotto_buffer_free`]; an output
//!   slot must be empty (`{NULL, 0}`, or a `NULL` handle) when passed in.
//! - No panic crosses the boundary, and randomness comes from the operating
//!   system.
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
mod rng;
mod session;

pub use buffer::{SottoBuffer, sotto_buffer_free};
pub use device::*;
pub use error::SottoError;
pub use error_message::sotto_last_error_message;
pub use group::*;
pub use handle::{SottoDevice, SottoGroupReceiver, SottoGroupSender, SottoSession};
pub use keys::*;
pub use session::*;

/// Length of a storage key for the `_seal`/`_unseal` functions.
pub const SOTTO_STORAGE_KEY_LEN: usize = 32;
/// Length of an encoded identity key.
pub const SOTTO_IDENTITY_KEY_LEN: usize = 66;
/// Length of an encoded signed prekey.
pub const SOTTO_SIGNED_PREKEY_LEN: usize = 102;
/// Length of one encoded one-time prekey.
pub const SOTTO_ONE_TIME_PREKEY_LEN: usize = 38;
/// Largest encoded prekey bundle.
pub const SOTTO_MAX_BUNDLE_LEN: usize = 203;
/// Length of a fingerprint in bytes.
pub const SOTTO_FINGERPRINT_LEN: usize = 32;
/// Length of a session's base key.
pub const SOTTO_BASE_KEY_LEN: usize = 32;
/// Largest plaintext one message may carry.
pub const SOTTO_MAX_PLAINTEXT_LEN: usize = 262_144;
/// Largest encoded message.
pub const SOTTO_MAX_MESSAGE_LEN: usize = 262_325;
/// Length of a group id.
pub const SOTTO_GROUP_ID_LEN: usize = 32;
/// Largest encoded group message.
pub const SOTTO_MAX_GROUP_MESSAGE_LEN: usize = 262_282;
/// Most unused one-time prekeys a device holds.
pub const SOTTO_MAX_ONE_TIME_PREKEYS: usize = 1000;

// The header needs literals; these keep them equal to the core's values.
const _: () = {
    assert!(SOTTO_IDENTITY_KEY_LEN == sotto::IdentityKey::ENCODED_LEN);
    assert!(SOTTO_SIGNED_PREKEY_LEN == sotto::SignedPreKey::ENCODED_LEN);
    assert!(SOTTO_ONE_TIME_PREKEY_LEN == sotto::OneTimePreKey::ENCODED_LEN);
    assert!(SOTTO_MAX_BUNDLE_LEN == sotto::PreKeyBundle::MAX_ENCODED_LEN);
    assert!(SOTTO_MAX_PLAINTEXT_LEN == sotto::MAX_PLAINTEXT_LEN);
    assert!(SOTTO_MAX_MESSAGE_LEN == sotto::MAX_MESSAGE_LEN);
    assert!(SOTTO_MAX_ONE_TIME_PREKEYS == sotto::MAX_ONE_TIME_PREKEYS);
    assert!(SOTTO_MAX_GROUP_MESSAGE_LEN == sotto::group::MAX_GROUP_MESSAGE_LEN);
};
