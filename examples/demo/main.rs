//! sotto's demo, printed step by step: a pairwise conversation (X3DH and the
//! Double Ratchet over a network that reorders and loses messages), then a
//! three-member group with sender keys, a removal and a rotation.
//!
//! Run with `cargo run --example demo`. Seeded, so every run prints the same.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod group;
mod pairwise;

fn main() -> Result<(), sotto::Error> {
    println!("######## Part one: a pairwise conversation\n");
    pairwise::run()?;
    println!("\n######## Part two: a group of three\n");
    group::run()
}
