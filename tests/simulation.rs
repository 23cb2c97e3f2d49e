//! Deterministic adversarial simulation: six parties with pairwise sessions
//! between all pairs, over a network that reorders, drops, duplicates and
//! corrupts, with an attacker injecting forged, replayed and cross-session
//! messages and random save/restore. Invariants are asserted inside
//! `sim::World` after every step; see tests/sim/mod.rs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod sim;

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use sim::{Choices, World};

/// Decisions from a seeded ChaCha20 stream, so every run is the same.
struct SeededChoices(ChaCha20Rng);

impl Choices for SeededChoices {
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.0.next_u64() % n as u64).unwrap()
    }
}

const PARTIES: usize = 6;
const MESSAGES: u64 = 100_000;

#[test]
fn adversarial_network_keeps_every_invariant() {
    let mut world = World::new(PARTIES, 0x5077_0001);
    let mut choices = SeededChoices(ChaCha20Rng::seed_from_u64(0x5077_0002));
    while world.stats.sent < MESSAGES {
        world.step(&mut choices);
    }
    world.drain(&mut choices);
    let s = world.stats.clone();
    println!("{s:#?}");
    // The run must actually exercise every path, and most honest
    // deliveries must succeed (refusals are only duplicates and the bounds).
    s.check();
    assert!(s.sent >= MESSAGES && s.unparsable > 0);
    assert!(s.decrypted > s.sent * 8 / 10, "too few messages decrypted");
    for count in [
        s.dropped,
        s.duplicated,
        s.corrupted,
        s.forged,
        s.replayed,
        s.cross_session,
        s.restored,
    ] {
        assert!(count > 1000, "a behaviour was barely exercised: {s:?}");
    }
    assert_eq!(s.max_chains, sotto::MAX_RECEIVING_CHAINS);
    assert!(s.max_skipped > 0);
}
