//! # sotto-uniffi
//!
//! [uniffi](https://mozilla.github.io/uniffi-rs/) bindings of
//! [`sotto`]: Kotlin, Swift and Python generated from this crate (checked
//! in under `bindings/uniffi/generated/`), so that apps use sotto in their
//! own language without writing C.
//!
//! - Objects ([`Device`], [`Session`], [`GroupSender`], [`GroupStore`], ...)
//!   hold their state behind a mutex: one call at a time per object; a call
//!   that fails leaves the state as it was.
//! - Bytes in, bytes out: prekeys, bundles, messages, distributions and
//!   saved states are the encodings of SPEC.md.
//! - Errors are one exception type with a variant per code
//!   ([`SottoError`]), each carrying the C ABI's number.
//! - Randomness comes from the operating system; time from the caller.
//! - The session layer (SPEC §16): [`PeerRecord`] per user, [`GroupSession`]
//!   over every device of every member; a message it cannot decrypt fails
//!   with [`DecryptFailure`], which names the action to take.
//!
//! The core stays `no_std` and free of uniffi: this crate wraps it.

mod device;
mod error;
mod group;
mod keys;
mod session;
mod sessions;

pub use device::{Accepted, Device, KemPreKeyInfo, ResetPreKeys, SignedPreKeyInfo};
pub use error::{Result, SottoError};
pub use group::{
    GroupMessageInfo, GroupPlaintext, GroupReceiverInfo, GroupSender, GroupStore, InsertOutcome,
    group_message_info,
};
pub use keys::{
    IdentityKey, MessageInfo, MessageKind, PreKeyBundle, PublishedPreKey, VerifiedPreKeyBundle,
    message_info, prekey_id,
};
pub use session::{KeyAgreement, Plaintext, Role, Session};
pub use sessions::{
    Action, ContentKind, DecryptFailure, DeviceEntry, DeviceListChanges, GroupSession,
    IdentityChange, IgnoreReason, Outgoing, PeerDeviceInfo, PeerRecord, Received, RetryHint,
    RetryLaterReason, SendPlan, Sent, Unusable, UserSent,
};

uniffi::setup_scaffolding!("sotto");
