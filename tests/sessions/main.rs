//! The session layer (SPEC.md §16) as users and devices meet it, through
//! the public API only: the exhaustive model check of convergence (issue 13),
//! the per-message work of the layer, and the largest record.
#![allow(
    unsafe_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    unreachable_pub
)]

mod alloc_count;
mod model;
mod simulation;
mod size;
