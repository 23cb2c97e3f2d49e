//! A second implementation of SPEC.md, written from the specification with
//! the primitive crates only: no sotto code. It is the one Rust reference
//! for everything the tests, the simulation and the vector generator
//! recompute (the independent one is `conformance/python`).
//!
//! Decoders read through [`codec::Reader`], so each layout is stated once
//! and its named byte ranges come with it ([`codec::Layout`]). Errors are
//! SPEC.md §12 names with their fields ([`error::Refusal`]).

pub mod codec;
pub mod device;
pub mod error;
pub mod group;
pub mod keys;
pub mod primitives;
pub mod receiving;
pub mod sealed;
pub mod session;
pub mod wire;
pub mod x3dh;

pub use codec::{Layout, Reader, with};
pub use device::Dev;
pub use error::{Refusal, refusal, refusal_with};
pub use session::{Sending, Sess};
pub use x3dh::{X3dh, accept, initiate, try_accept};
