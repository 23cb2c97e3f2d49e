//! sotto's integration tests that need no allocator of their own, in one
//! binary: `cargo test --test protocol [module::test]`. The allocation,
//! memory and zeroization tests install global allocators and have their
//! own binaries (`tests/alloc.rs`, `tests/memory.rs`, `tests/zeroize.rs`).
//! Shared set-ups, the reference model, the layouts, the vector verifier
//! and the simulation are in `testkit`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::needless_range_loop,
    clippy::cast_possible_truncation,
    missing_docs
)]

mod bounds;
mod compromise;
mod errors;
mod group;
mod model;
mod pqxdh;
mod regressions;
mod schedules;
mod secrets;
mod session;
mod simulation;
mod vectors;
