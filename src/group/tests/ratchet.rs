//! The ratchet of SPEC §15.4 against the reference model of the testkit
//! (`testkit/src/model/group/ratchet.rs`, written from SPEC): the literal
//! increment, the closed form, and the jump's exact cost. The model is used
//! on byte arrays only, so the second copy of this crate that the testkit
//! links never meets this one's types.

use alloc::vec::Vec;

use proptest::prelude::*;
use sha2::{Digest, Sha256};
use testkit::model::group::ratchet::{self as spec};
pub(super) use testkit::model::group::ratchet::{Levels, derive, digit, jump, key, step};

use crate::group::ratchet::{Ratchet, count};

/// Which rule moves the ratchet: SPEC v2's (the model's), or the v1-style
/// one the review broke (lower levels derived from the *new* R_k, which is
/// kept), which the attack test must be able to break.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Rule {
    V2,
    Broken,
}

/// One increment `i -> i + 1`: the model's, or the broken rule's.
pub(super) fn increment(levels: &mut Levels, i: u32, rule: Rule) {
    match rule {
        Rule::V2 => {
            spec::increment(i, levels);
        }
        Rule::Broken => {
            let k = (0..8).rev().find(|&k| digit(i, k) != 15).unwrap();
            levels[k] = step(&levels[k]);
            for m in k + 1..8 {
                levels[m] = derive(m, &levels[k]);
            }
        }
    }
}

fn step_n(mut r: [u8; 32], n: u32) -> [u8; 32] {
    for _ in 0..n {
        r = step(&r);
    }
    r
}

/// The levels at index `i` computed from the initial levels: the model's
/// closed form of SPEC §15.4, or its analogue for the broken rule (each
/// `B_k(i)` derived from level h's current value).
pub(super) fn closed_form(initial: &Levels, i: u32, rule: Rule) -> Levels {
    if rule == Rule::V2 {
        return spec::closed_form(initial, i);
    }
    let mut out = [[0u8; 32]; 8];
    for k in 0..8 {
        let base = match (0..k).rev().find(|&h| digit(i, h) != 0) {
            None => initial[k],
            Some(h) => derive(k, &out[h]),
        };
        out[k] = step_n(base, digit(i, k));
    }
    out
}

fn h(parts: &[&[u8]]) -> [u8; 32] {
    let mut hash = Sha256::new();
    for p in parts {
        hash.update(p);
    }
    hash.finalize().into()
}

pub(super) fn initial(seed: u8) -> Levels {
    let mut levels = [[0u8; 32]; 8];
    for (k, level) in levels.iter_mut().enumerate() {
        *level = h(&[b"test initial level", &[seed, u8::try_from(k).unwrap()]]);
    }
    levels
}

/// The production ratchet at `i`, reached by one jump from `initial`.
fn jumped(initial: &Levels, i: u32) -> Ratchet {
    let mut r = Ratchet::from_parts(0, *initial);
    r.advance_to(i);
    assert_eq!(r.index(), i);
    r
}

/// The closed form (both rules) is what literal increments compute, across
/// a rollover of every level up to level 4 and the first of level 3.
#[test]
fn the_model_closed_form_equals_its_increments() {
    for rule in [Rule::V2, Rule::Broken] {
        let start = initial(1);
        let mut levels = start;
        for i in 0..=0x1_0011u32 {
            if i & 0xFF == 0 || i & 0xFF == 0xFF || !(0x120..=0xFFE0).contains(&i) {
                assert_eq!(levels, closed_form(&start, i, rule), "{rule:?} at {i:#x}");
            }
            increment(&mut levels, i, rule);
        }
    }
}

/// Index 0 is the initial state, and the message key is Key(R_7).
/// The literal jump the store tests forge copies with lands where the
/// closed form says.
#[test]
fn the_model_jump_equals_the_closed_form() {
    let start = initial(9);
    for (i, j) in [
        (0, 1),
        (0, 0x28),
        (0x28, 0x31),
        (0xF, 0x10),
        (5, 0x1000_0005),
        (0x0FFF_FFFF, 0x1000_0000),
        (0, u32::MAX - 1),
        (7, u32::MAX),
    ] {
        let mut levels = closed_form(&start, i, Rule::V2);
        jump(i, &mut levels, j);
        assert_eq!(levels, closed_form(&start, j, Rule::V2), "{i:#x} -> {j:#x}");
    }
}

#[test]
fn message_key_is_key_of_the_last_level() {
    let start = initial(2);
    let r = Ratchet::from_parts(0, start);
    assert_eq!(r.message_key().as_bytes(), &key(&start[7]));
    let r = jumped(&start, 0x1234);
    assert_eq!(
        r.message_key().as_bytes(),
        &key(&closed_form(&start, 0x1234, Rule::V2)[7])
    );
}

/// Increments of the production ratchet, one at a time, follow the model's
/// literal increments over every rollover up to level 4.
#[test]
fn production_increments_equal_the_model() {
    let start = initial(3);
    let mut model = start;
    let mut r = Ratchet::from_parts(0, start);
    for i in 0..0x1_0011u32 {
        increment(&mut model, i, Rule::V2);
        r.increment();
        assert_eq!(r.index(), i + 1);
        assert_eq!(r.levels(), &model, "at {:#x}", i + 1);
    }
}

/// The worst jump, `0 -> 2^32 - 1`, costs exactly 120 steps and 28
/// derivations, and lands on the closed form.
#[test]
fn worst_jump_costs_exactly_120_steps_and_28_derivations() {
    let start = initial(4);
    let mut r = Ratchet::from_parts(0, start);
    let _ = count::take();
    r.advance_to(u32::MAX);
    let cost = count::take();
    assert_eq!((cost.steps, cost.derives, cost.keys), (120, 28, 0));
    assert_eq!(r.levels(), &closed_form(&start, u32::MAX, Rule::V2));
    // Moving to where it is, or back, costs nothing and changes nothing.
    r.advance_to(7);
    r.advance_to(u32::MAX);
    r.increment();
    assert_eq!(
        count::take(),
        count::Counts {
            steps: 0,
            derives: 0,
            keys: 0
        }
    );
    assert_eq!(r.index(), u32::MAX);
}

/// Indices near a rollover of any level.
fn near_boundary() -> impl Strategy<Value = u32> {
    (1u32..8, any::<u32>(), 0u32..40, any::<bool>()).prop_map(|(level, high, off, below)| {
        let unit = 1u32 << (4 * level);
        let boundary = high & !(unit - 1);
        if below {
            boundary.wrapping_sub(off)
        } else {
            boundary.wrapping_add(off)
        }
    })
}

fn index() -> impl Strategy<Value = u32> {
    prop_oneof![
        any::<u32>(),
        near_boundary(),
        Just(0u32),
        Just(u32::MAX - 1)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// A jump from `i` to `j` equals `j - i` increments of the model, for
    /// gaps that cross block boundaries.
    #[test]
    fn jump_equals_repeated_increments(i in index(), gap in 0u32..600) {
        let j = i.saturating_add(gap);
        let start = initial(5);
        let at_i = closed_form(&start, i, Rule::V2);
        let mut stepped = at_i;
        for n in i..j {
            increment(&mut stepped, n, Rule::V2);
        }
        let mut r = Ratchet::from_parts(i, at_i);
        let _ = count::take();
        r.advance_to(j);
        let cost = count::take();
        prop_assert_eq!(r.index(), j);
        prop_assert_eq!(r.levels(), &stepped);
        prop_assert!(cost.steps <= 120 && cost.derives <= 28);
    }

    /// Any jump `i -> j` lands where the closed form says, at a cost within
    /// the bound of SPEC §15.4, and composes: `i -> j` equals `0 -> j`.
    #[test]
    fn any_jump_matches_the_closed_form(i in index(), j in index()) {
        let (i, j) = (i.min(j), i.max(j));
        let start = initial(6);
        let mut r = Ratchet::from_parts(i, closed_form(&start, i, Rule::V2));
        let _ = count::take();
        r.advance_to(j);
        let cost = count::take();
        prop_assert!(cost.steps <= 120 && cost.derives <= 28, "{:?}", cost);
        prop_assert_eq!(r.levels(), &closed_form(&start, j, Rule::V2));
        let from_zero = jumped(&start, j);
        prop_assert_eq!(r.levels(), from_zero.levels());
    }
}

/// Every block boundary of every level, one below and one above, reached by
/// one jump from 0 and by one jump from the index before: both equal the
/// closed form, and the single increment across the boundary equals the
/// model's.
#[test]
fn jumps_across_every_block_boundary() {
    let start = initial(7);
    let mut indices = Vec::new();
    for e in 1..8 {
        let b = 1u32 << (4 * e);
        for m in 1..16u32 {
            if let Some(x) = b.checked_mul(m) {
                indices.extend([x - 1, x, x + 1]);
            }
        }
    }
    indices.push(u32::MAX);
    for &i in &indices {
        let expected = closed_form(&start, i, Rule::V2);
        assert_eq!(jumped(&start, i).levels(), &expected, "{i:#x}");
        let before = closed_form(&start, i - 1, Rule::V2);
        let mut model = before;
        increment(&mut model, i - 1, Rule::V2);
        assert_eq!(model, expected, "{i:#x}");
        let mut r = Ratchet::from_parts(i - 1, before);
        r.increment();
        assert_eq!(r.levels(), &expected, "{i:#x}");
    }
}
