//! Test machinery shared by sotto's tests, tools, fuzz targets and
//! benchmarks (not published):
//!
//! - [`model`]: the Rust reference model of SPEC.md, written from the
//!   specification, with the layouts of every encoding ([`layout`]);
//! - [`fixtures`], [`rng`], [`hex`], [`points`]: set-ups and values;
//! - `vectors`: the verifier of `test-vectors/`, one module per file (being
//!   rewritten for v2 on branch `v2-model`, not compiled until then);
//! - [`sim`]: the adversarial simulation (model, world, network, checks);
//! - [`fuzz`]: the fuzz targets' fixtures and oracles.
//!
//! Test code may panic, unwrap and index: the workspace lints that forbid
//! it in the library are allowed here, once for the whole crate.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

pub mod fixtures;
pub mod fuzz;
pub mod hex;
pub mod layout;
pub mod model;
pub mod points;
pub mod rng;
pub mod sim;
pub mod vectors;
