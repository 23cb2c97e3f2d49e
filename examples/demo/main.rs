//! sotto's demo, printed step by step: first the session layer (two users
//! with two devices each: fan-out to every device, a reply, a record
//! restored from a stale backup that recovers by itself, a group with a
//! removal), then what it is built on: a pairwise conversation (PQXDH and
//! the Double Ratchet over a network that reorders and loses messages) and
//! a three-member group with sender keys, a removal and a rotation.
//!
//! Run with `cargo run --example demo`. Seeded, so every run prints the same.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod group;
mod pairwise;
mod sessions;

fn main() -> Result<(), sotto::Error> {
    println!("######## Part one: two users with two devices each, through the session layer\n");
    sessions::run()?;
    println!("\n######## Part two: one pairwise session, underneath\n");
    pairwise::run()?;
    println!("\n######## Part three: a group of three with sender keys, underneath\n");
    group::run()
}
