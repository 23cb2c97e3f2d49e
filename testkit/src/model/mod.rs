//! A second implementation of SPEC.md (protocol version 2), written from
//! the specification with the primitive crates only: no sotto code. It is
//! the one Rust reference for everything the tests, the simulation and the
//! vector generator recompute (the independent one is `conformance/python`).
//! Its ML-KEM is `libcrux-ml-kem`, not the crate sotto uses.
//!
//! Decoders read through [`codec::Reader`], so each layout is stated once
//! and its named byte ranges come with it ([`codec::Layout`]). Errors are
//! SPEC.md §12 names with their fields ([`error::Refusal`]). Every
//! operation is all or nothing, and draws from a [`rand::Source`].

pub mod codec;
pub mod device;
pub mod error;
pub mod group;
pub mod keys;
pub mod pqxdh;
pub mod primitives;
pub mod rand;
pub mod receiving;
pub mod sealed;
pub mod session;
pub mod sessions;
pub mod wire;

pub use codec::{Layout, Reader, with};
pub use device::Dev;
pub use error::{Refusal, refusal, refusal_with};
pub use pqxdh::{Agreement, Policy, accept, initiate};
pub use session::{Sending, Sess};
