//! A three-party conversation driven by the fuzzer's bytes: they choose who
//! sends, which envelope the network delivers, drops, duplicates or
//! corrupts, what the attacker injects, and when state is saved and
//! restored. The invariants are the simulation test's (`testkit::sim`,
//! the engine both share; this target reads fewer of its counters).
#![no_main]

use libfuzzer_sys::fuzz_target;
use testkit::sim::{Choices, World};

/// Decisions read from the input, one byte (two for large ranges) each;
/// zeros once it runs out.
struct ByteChoices<'a>(&'a [u8]);

impl ByteChoices<'_> {
    fn byte(&mut self) -> usize {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                usize::from(*b)
            }
            None => 0,
        }
    }
}

impl Choices for ByteChoices<'_> {
    fn below(&mut self, n: usize) -> usize {
        let raw = if n > 256 {
            self.byte() << 8 | self.byte()
        } else {
            self.byte()
        };
        raw % n
    }
}

/// Most steps one input may drive, so that each run stays short.
const MAX_STEPS: usize = 512;

fuzz_target!(|data: &[u8]| {
    let mut world = World::new(3, 0xf022);
    let mut choices = ByteChoices(data);
    let mut steps = 0;
    while !choices.0.is_empty() && steps < MAX_STEPS {
        world.step(&mut choices);
        steps += 1;
    }
    world.drain(&mut choices);
    world.stats.check();
});
