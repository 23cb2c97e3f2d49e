//! SPEC §15.4's claim, tested where an attacker stands: from the BYTES of a
//! sender state, a receiver state and a distribution at index `i`, with only
//! the published labels and layouts, every recomputation this test can think
//! of yields no message key `K_j` with `j < i` (other than those a receiver
//! caches, which are exactly the ones it holds). The same attack run against
//! a v1-style ratchet (lower levels derived from the new `R_k`, which is
//! kept) recovers earlier keys: the test can fail.

extern crate std;

use alloc::vec;
use alloc::vec::Vec;
use std::collections::{BTreeSet, HashMap};

use rand_core::Rng;

use super::ratchet::{Levels, Rule, closed_form, derive, increment, key, step};
use super::{GROUP, rng};
use crate::group::{GroupReceiver, GroupSender};

/// Offsets of the index (then R_0..R_7) in each encoding, from the layouts
/// of SPEC §15.6 and §15.11.
const DISTRIBUTION_INDEX: usize = super::dist::INDEX;
const SENDER_INDEX: usize = super::sender::INDEX;
const RECEIVER_INDEX: usize = super::receiver::NEXT;
/// Where the levels start: after the index, and in a receiver after `read`.
const fn levels_at(index_at: usize) -> usize {
    if index_at == RECEIVER_INDEX {
        super::receiver::LEVELS
    } else {
        index_at + 4
    }
}

/// What the attacker reads from a state's bytes: the index, the eight
/// levels, the cached keys (receiver), and every other 32-byte window.
struct Held {
    index: u32,
    levels: Levels,
    cached: Vec<[u8; 32]>,
    others: Vec<[u8; 32]>,
}

fn b32(bytes: &[u8], at: usize) -> [u8; 32] {
    bytes[at..at + 32].try_into().unwrap()
}

fn read(bytes: &[u8], index_at: usize, cache: bool) -> Held {
    let index = u32::from_be_bytes(bytes[index_at..index_at + 4].try_into().unwrap());
    let levels_at = levels_at(index_at);
    let mut levels = [[0u8; 32]; 8];
    for (k, level) in levels.iter_mut().enumerate() {
        *level = b32(bytes, levels_at + 32 * k);
    }
    let mut cached = Vec::new();
    let end = levels_at + 256;
    if cache {
        let count = usize::from(u16::from_be_bytes([bytes[end], bytes[end + 1]]));
        for n in 0..count {
            cached.push(b32(bytes, end + 2 + 36 * n + 4));
        }
    }
    // Every 32-byte window outside the levels: seeds, proofs, keys, ids.
    let others = (0..=bytes.len() - 32)
        .filter(|&at| at + 32 <= levels_at || at >= end)
        .map(|at| b32(bytes, at))
        .collect();
    Held {
        index,
        levels,
        cached,
        others,
    }
}

/// The earlier keys the attack looks for, by value: `K_j` for `j < i` at
/// every index below `i` when `i` is small, and otherwise at runs of 24
/// indices from anchors at every digit of every level of `i`'s blocks
/// (block starts and ends), just below `i`, and one block of each size back.
fn earlier_keys(initial: &Levels, i: u32, rule: Rule) -> HashMap<[u8; 32], u32> {
    let mut anchors = BTreeSet::new();
    if i <= 0x1100 {
        anchors.insert(0);
    } else {
        anchors.insert(i.saturating_sub(64));
        for k in 0..8 {
            let s = 4 * (7 - k);
            let mask = if s == 0 { 0 } else { (1u32 << s) - 1 };
            let above = if k == 0 { 0 } else { (i >> (s + 4)) << (s + 4) };
            for d in 0..16u32 {
                let start = above | (d << s);
                anchors.insert(start);
                anchors.insert((start | mask).saturating_sub(23));
            }
            anchors.insert(i.saturating_sub(1 << s).saturating_sub(8));
        }
    }
    let run = if i <= 0x1100 { i } else { 24 };
    let mut keys = HashMap::new();
    for anchor in anchors.into_iter().filter(|&a| a < i) {
        let mut levels = closed_form(initial, anchor, rule);
        for j in anchor..anchor.saturating_add(run).min(i) {
            keys.insert(key(&levels[7]), j);
            increment(&mut levels, j, rule);
        }
    }
    keys
}

/// Adds `K_i .. K_{i+4}` to `targets`: keys the state legitimately yields,
/// which the attack must find, so it is known to reach keys at all.
fn with_later_keys(
    mut targets: HashMap<[u8; 32], u32>,
    initial: &Levels,
    i: u32,
) -> HashMap<[u8; 32], u32> {
    let mut levels = closed_form(initial, i, Rule::V2);
    for j in i..i.saturating_add(5) {
        targets.insert(key(&levels[7]), j);
        increment(&mut levels, j, Rule::V2);
    }
    targets
}

/// Lower-digit alignments of an index below level `k`: block start, the
/// index's own, just before each lower level rolls over, and a little
/// earlier than the index.
fn alignments(i: u32, k: usize) -> BTreeSet<u32> {
    let width = 4 * (7 - k);
    if width == 0 {
        return BTreeSet::from([0]);
    }
    let mask = if width == 32 {
        u32::MAX
    } else {
        (1u32 << width) - 1
    };
    let mut out = BTreeSet::from([0, i & mask, i.wrapping_sub(RUN) & mask]);
    for b in (4..=width).step_by(4) {
        let unit = if b == 32 { 0 } else { 1u32 << b };
        for x in [1, 16, RUN] {
            out.insert(unit.wrapping_sub(x) & mask);
        }
    }
    out
}

/// Increments per forward run.
const RUN: u32 = 40;

/// Everything the attacker computes from `held`; every value produced is
/// looked up among `targets`. Returns the indices found and how many values
/// were produced.
fn attack(held: &Held, targets: &HashMap<[u8; 32], u32>) -> (BTreeSet<u32>, u64) {
    let mut found = BTreeSet::new();
    let mut produced = 0u64;
    let mut see = |v: &[u8; 32]| {
        produced += 1;
        if let Some(&j) = targets.get(v) {
            found.insert(j);
        }
    };
    // 1. Step, Derive_1..7 and Key applied to every held value: to depth 3
    //    for the ratchet's levels and cached keys, depth 1 for the rest.
    let apply = |v: &[u8; 32]| {
        let mut out = vec![step(v), key(v)];
        out.extend((1..8).map(|m| derive(m, v)));
        out
    };
    let mut frontier: Vec<[u8; 32]> = held.levels.iter().chain(&held.cached).copied().collect();
    for v in &frontier {
        see(v);
    }
    for _ in 0..3 {
        let next: Vec<[u8; 32]> = frontier.iter().flat_map(&apply).collect();
        for v in &next {
            see(v);
        }
        frontier = next;
    }
    for v in &held.others {
        see(v);
        for w in apply(v) {
            see(&w);
        }
    }
    // 2. From each held R_k: the lower levels re-derived from it under every
    //    level's label (or kept as held), put at every alignment of the index
    //    below level k, and run forward under both rules.
    for k in 0..8 {
        let width = 4 * (7 - k);
        let high = if width == 32 {
            0
        } else {
            (held.index >> width) << width
        };
        for rederive in [true, false] {
            let mut start = held.levels;
            if rederive {
                for (m, level) in start.iter_mut().enumerate().skip(k + 1) {
                    *level = derive(m, &held.levels[k]);
                }
            }
            for a in alignments(held.index, k) {
                for rule in [Rule::V2, Rule::Broken] {
                    let mut levels = start;
                    for at in (high | a..=u32::MAX).take(RUN as usize + 1) {
                        for level in &levels {
                            see(level);
                        }
                        see(&key(&levels[7]));
                        if at == u32::MAX {
                            break;
                        }
                        increment(&mut levels, at, rule);
                    }
                }
            }
        }
    }
    (found, produced)
}

/// Indices attacked: every block boundary of every level, one below and one
/// above, and a few others.
fn indices() -> Vec<u32> {
    let mut out = vec![
        1,
        2,
        15,
        0x1f,
        400,
        8191,
        0x1_ffff,
        0x1234_5678,
        u32::MAX - 1,
    ];
    for e in 1..8 {
        let b = 1u32 << (4 * e);
        out.extend([b - 1, b, b + 1]);
    }
    out
}

/// The states of one chain at index `i`, as bytes: sender, distribution, a
/// receiver installed at `i`, and a receiver that reached `i` by decrypting
/// the message at `i - 1` after skipping (so it caches skipped keys).
struct States {
    sender: Vec<u8>,
    distribution: Vec<u8>,
    receiver: Vec<u8>,
    caching_receiver: Vec<u8>,
}

fn states(seed: u8, i: u32) -> (Levels, States) {
    let mut draw = rng(seed);
    let owner = super::device(&mut draw);
    // The model starts from the 256 bytes the sender draws first (§15.12).
    let mut replay = draw.clone();
    let mut initial = [[0u8; 32]; 8];
    for level in &mut initial {
        replay.fill_bytes(level);
    }
    let mut sender = GroupSender::new(&mut draw, GROUP, &owner).unwrap();
    sender.advance_for_test(i.saturating_sub(40));
    let early = sender.distribution().to_bytes();
    sender.advance_for_test(i - 1);
    let message = sender.encrypt(&mut draw, b"x").unwrap();
    assert_eq!(sender.index(), i);
    let mut caching = GroupReceiver::import_unauthenticated(&GROUP, &early).unwrap();
    caching.decrypt(&message).unwrap();
    assert_eq!(caching.next_index(), i);
    let distribution = sender.distribution().to_bytes();
    let receiver = GroupReceiver::import_unauthenticated(&GROUP, &distribution).unwrap();
    (
        initial,
        States {
            sender: sender.to_bytes().to_vec(),
            distribution: distribution.to_vec(),
            receiver: receiver.to_bytes().to_vec(),
            caching_receiver: caching.to_bytes().to_vec(),
        },
    )
}

/// Replaces the levels in `bytes` (after the index at `index_at`) with
/// `levels`.
fn patched(bytes: &[u8], index_at: usize, levels: &Levels) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let at = levels_at(index_at);
    out[at..at + 256].copy_from_slice(levels.as_flattened());
    out
}

#[test]
fn no_earlier_key_from_state_bytes_but_a_v1_style_ratchet_gives_them_up() {
    let mut tried = 0u64;
    let mut broken_recovered = 0usize;
    let mut checked = 0usize;
    for (n, i) in indices().into_iter().enumerate() {
        let (initial, s) = states(u8::try_from(n).unwrap(), i);
        let levels = closed_form(&initial, i, Rule::V2);
        let earlier = earlier_keys(&initial, i, Rule::V2);
        checked += earlier.len();
        let targets = with_later_keys(earlier, &initial, i);
        let later: BTreeSet<u32> = (i..i.saturating_add(5)).collect();

        // The attacker's reading of the layouts matches what sotto wrote.
        for (bytes, at) in [
            (&s.sender, SENDER_INDEX),
            (&s.distribution, DISTRIBUTION_INDEX),
            (&s.receiver, RECEIVER_INDEX),
            (&s.caching_receiver, RECEIVER_INDEX),
        ] {
            let held = read(bytes, at, at == RECEIVER_INDEX);
            assert_eq!((held.index, held.levels), (i, levels), "{i:#x}");
        }

        for (bytes, at) in [
            (&s.sender, SENDER_INDEX),
            (&s.distribution, DISTRIBUTION_INDEX),
            (&s.receiver, RECEIVER_INDEX),
        ] {
            let (found, produced) = attack(&read(bytes, at, at == RECEIVER_INDEX), &targets);
            tried += produced;
            assert_eq!(found, later, "keys found from the state at {i:#x}");
        }
        // A receiver that skipped gives up exactly the keys it caches.
        let held = read(&s.caching_receiver, RECEIVER_INDEX, true);
        let cached: BTreeSet<u32> = {
            let first = (i - 1).saturating_sub(32).max(i.saturating_sub(40));
            (first..i - 1).collect()
        };
        assert_eq!(held.cached.len(), cached.len());
        let (found, produced) = attack(&held, &targets);
        tried += produced;
        let expected: BTreeSet<u32> = cached
            .iter()
            .copied()
            .filter(|j| targets.values().any(|t| t == j))
            .chain(later.iter().copied())
            .collect();
        assert_eq!(found, expected, "receiver at {i:#x}");

        // The same attack on the same bytes with a v1-style ratchet inside.
        let broken = closed_form(&initial, i, Rule::Broken);
        let broken_targets = earlier_keys(&initial, i, Rule::Broken);
        let mut found_any = BTreeSet::new();
        for (bytes, at) in [
            (&s.sender, SENDER_INDEX),
            (&s.distribution, DISTRIBUTION_INDEX),
            (&s.receiver, RECEIVER_INDEX),
        ] {
            let (found, produced) = attack(
                &read(&patched(bytes, at, &broken), at, false),
                &broken_targets,
            );
            tried += produced;
            found_any.extend(found);
        }
        if i & 0xF != 0 && i > 0xF {
            // At least the first index of the lowest block is recovered (below
            // 16 the lower levels are still the initial random values).
            assert!(
                found_any.contains(&(i & !0xF)),
                "v1-style at {i:#x}: {found_any:x?}"
            );
        }
        broken_recovered += found_any.len();
    }
    std::println!(
        "attack: {tried} values tried against {checked} earlier keys; \
         the v1-style ratchet gave up {broken_recovered} earlier keys"
    );
    assert!(broken_recovered > 0);
}
