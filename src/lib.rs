//! # sotto
//!
//! The protocol core of an end-to-end encrypted messenger: PQXDH key
//! agreement (X3DH with ML-KEM-1024), the Double Ratchet, and group sender
//! keys, as a pure state machine.
//!
//! - **No I/O, no clock, no global state.** You pass in randomness (any
//!   [`rand_core::TryCryptoRng`]; an RNG failure is an error, never a
//!   panic) and the time, and you store the state sotto hands back. With a
//!   seeded RNG every run replays byte for byte.
//! - **All or nothing.** A call that fails leaves its state exactly as it
//!   was; every call draws its randomness before it changes anything.
//! - **Post-quantum by default.** Sessions start with PQXDH; classical X3DH
//!   only by an explicit per-call opt-in ([`KeyAgreementPolicy`]).
//! - **Bounded.** Everything a peer or attacker can make grow has a named
//!   limit ([`MAX_SKIP`], [`MAX_SKIPPED_KEYS`], [`MAX_MESSAGE_LEN`], …).
//! - **Rollback-aware.** Every saved state carries a generation, and sealed
//!   state is bound to the record it is stored under.
//! - **Users and devices.** The [`sessions`] layer keeps one record per
//!   peer user (every device, one active session and a few archived ones),
//!   routes every message to its session, and maps every failure to one
//!   action, so that sessions converge instead of wedging (SPEC §16).
//! - **`no_std` + `alloc`**, `forbid(unsafe_code)`.
//!
//! The exact bytes are specified in `SPEC.md` (version 2), with test vectors
//! under `test-vectors/`. Every module names the SPEC sections it implements.
//!
//! # Example
//!
//! ```
//! use rand_chacha::ChaCha20Rng;
//! use rand_core::SeedableRng;
//! use sotto::{Device, Message, PreKeyBundle, Session};
//!
//! # fn main() -> Result<(), sotto::Error> {
//! let mut rng = ChaCha20Rng::from_seed([7; 32]); // use an OS RNG in an app
//! let now = 1_700_000_000; // the caller's clock, for prekey creation times
//!
//! // Bob publishes a bundle; a server hands it to Alice.
//! let alice = Device::generate(&mut rng, now)?;
//! let mut bob = Device::generate(&mut rng, now)?;
//! let one_time = bob.generate_one_time_prekeys(&mut rng, 1)?;
//! let bundle = PreKeyBundle::new(
//!     *bob.identity_key(),
//!     bob.signed_prekey(),
//!     one_time.first().copied(),
//!     Some(bob.last_resort_kem_prekey()),
//! );
//!
//! // Alice checks Bob's signatures, runs PQXDH and writes first.
//! let mut to_bob = Session::initiate(&alice, &mut rng, &bundle.verify()?)?;
//! let wire = to_bob.encrypt(&mut rng, b"hello Bob")?.into_bytes();
//!
//! // Bob accepts the prekey message and replies.
//! let Message::PreKey(first) = Message::from_bytes(&wire)? else { unreachable!() };
//! let (mut to_alice, hello) = Session::accept(&mut bob, &first)?;
//! assert_eq!(&*hello, b"hello Bob");
//! assert_eq!(hello.sender(), alice.identity_key());
//! let reply = to_alice.encrypt(&mut rng, b"hi Alice")?;
//! assert_eq!(&*to_bob.decrypt(&Message::from_bytes(reply.as_bytes())?)?, b"hi Alice");
//! # Ok(())
//! # }
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

extern crate alloc;

// Layering, lowest first; each module uses only those before it: error,
// codec, crypto, sealed, keys, x3dh, wire, device, ratchet, group, sessions.
mod codec;
mod crypto;
mod device;
mod error;
pub mod group;
mod keys;
mod ratchet;
mod sealed;
pub mod sessions;
mod wire;
mod x3dh;

#[cfg(test)]
mod constants_tests;
#[cfg(test)]
mod pqxdh_tests;
#[cfg(test)]
mod randomness_tests;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod vector_tests;

pub use device::{
    Device, KemPreKeyInfo, MAX_BASE_KEYS_PER_SIGNED_PREKEY, MAX_LAST_RESORT_KEM_PREKEYS,
    MAX_ONE_TIME_KEM_PREKEYS, MAX_ONE_TIME_PREKEYS, MAX_SIGNED_PREKEYS, SignedPreKeyInfo,
};
pub use error::{Error, Result};
pub use keys::{
    Fingerprint, IdentityKey, KemPreKey, KemPreKeyKind, OneTimePreKey, PreKeyBundle, SignedPreKey,
    VerifiedPreKeyBundle,
};
pub use rand_core;
pub use ratchet::{
    KeyAgreement, KeyAgreementPolicy, MAX_RECEIVING_CHAINS, MAX_SKIP, MAX_SKIPPED_KEYS,
    MAX_SKIPPED_KEYS_PER_CHAIN, Plaintext, Role, Session,
};
pub use sealed::{MAX_SEAL_CONTEXT_LEN, MAX_STATE_LEN, SavedState, StorageKey};
pub use wire::{MAX_MESSAGE_LEN, MAX_PLAINTEXT_LEN, Message, PreKeyMessage, RatchetMessage};

/// The README's example is compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
