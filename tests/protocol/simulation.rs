//! Deterministic adversarial simulation: six parties with pairwise sessions
//! between all pairs and one group (sender keys distributed over those
//! sessions), over a network that reorders, drops, duplicates and corrupts,
//! with an attacker injecting forged, replayed, cross-session, cross-chain
//! and cross-group messages, members removed and re-added, senders rotating,
//! and random save/restore. Invariants are asserted inside `sim::World`
//! after every step; see `testkit::sim`.

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use testkit::sim::{Choices, World};

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
    while world.stats.sent + world.stats.group_sent < MESSAGES {
        world.step(&mut choices);
    }
    world.drain(&mut choices);
    let s = world.stats.clone();
    println!("{s:#?}");
    // The run must actually exercise every path, and most honest
    // deliveries must succeed (refusals are only duplicates and the bounds).
    s.check();
    assert!(s.sent + s.group_sent >= MESSAGES && s.unparsable > 0);
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
    // Most sessions are PQXDH; the classical opt-in is exercised too.
    assert!(s.pq_sessions > s.classical_sessions && s.classical_sessions > 0);
    assert!(s.max_skipped > 0);

    // The group half: a real share of the traffic, mostly read, and every
    // group behaviour exercised.
    assert!(s.group_sent > MESSAGES / 5, "too few group messages");
    // Deliveries to parties that were sent the chain (members) mostly
    // decrypt; the rest must all be refused, and are counted in
    // `group_not_given`.
    assert!(
        s.group_decrypted > (s.group_delivered_honest - s.group_not_given) * 8 / 10,
        "too few group messages decrypted: {s:?}"
    );
    for count in [
        s.group_lost,
        s.group_not_given,
        s.group_from_cache,
        s.group_forged,
        s.group_cross_chain,
        s.group_cross_group,
        s.group_ratchet_swaps,
        s.distributions_unchanged,
        s.group_restored,
    ] {
        assert!(count > 100, "a group behaviour was barely exercised: {s:?}");
    }
    for count in [s.removals, s.readds, s.chains_evicted] {
        assert!(count > 10, "membership barely changed: {s:?}");
    }
    assert_eq!(s.max_group_skipped, sotto::group::MAX_GROUP_SKIPPED_KEYS);
}
