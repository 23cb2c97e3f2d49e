//! SPEC.md §15.4: the one-way hierarchical hash ratchet of a sender chain.
//! The closed form is the one statement of the ratchet that tests and
//! tools use; increments and jumps are checked against it.

use serde_json::Value;

use crate::hex::hex;
use crate::model::primitives::{labelled_sha256, sha256};

/// §3 ratchet step label.
pub const L_STEP: &str = "sotto v2 group step";
/// §3 derivation label.
pub const L_DERIVE: &str = "sotto v2 group derive";
/// §3 message key label.
pub const L_KEY: &str = "sotto v2 group key";

/// R_0 .. R_7.
pub type Levels = [[u8; 32]; 8];

/// `Step(R)`.
pub fn step(r: &[u8; 32]) -> [u8; 32] {
    labelled_sha256(L_STEP, r)
}

/// `Derive_m(R) = SHA-256("sotto v2 group derive" || u8(m) || R)`.
pub fn derive(m: usize, r: &[u8; 32]) -> [u8; 32] {
    assert!((1..8).contains(&m), "model: Derive_m for m in 1..=7");
    let mut input = L_DERIVE.as_bytes().to_vec();
    input.push(u8::try_from(m).expect("m < 8"));
    input.extend(r);
    sha256(&input)
}

/// `Key(R)`.
pub fn key(r: &[u8; 32]) -> [u8; 32] {
    labelled_sha256(L_KEY, r)
}

/// `K_i = Key(R_7(i))`.
pub fn message_key(r: &Levels) -> [u8; 32] {
    key(&r[7])
}

/// `d_k(i)`, k = 0 the most significant hex digit.
pub fn digit(i: u32, k: usize) -> u32 {
    (i >> shift(k)) & 0xF
}

fn shift(k: usize) -> u32 {
    4 * (7 - u32::try_from(k).expect("k < 8"))
}

/// What a ratchet move computed: SHA-256 calls of each function.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cost {
    /// `Step` calls.
    pub steps: u32,
    /// `Derive_m` calls.
    pub derives: u32,
}

/// Increment `i -> i + 1` (§15.4); returns `i + 1`.
pub fn increment(i: u32, r: &mut Levels) -> u32 {
    increment_counted(i, r, &mut Cost::default())
}

/// Increment, counting its cost.
pub fn increment_counted(i: u32, r: &mut Levels, cost: &mut Cost) -> u32 {
    assert!(i < u32::MAX, "model: increment at the last index");
    let k = (0..8)
        .rev()
        .find(|&k| digit(i, k) != 15)
        .expect("a digit below 15");
    for m in k + 1..8 {
        r[m] = derive(m, &r[k]);
        cost.derives += 1;
    }
    r[k] = step(&r[k]);
    cost.steps += 1;
    i + 1
}

/// Jump `i -> j` (`j >= i`), level by level (§15.4).
pub fn jump(i: u32, r: &mut Levels, j: u32) -> Cost {
    assert!(j >= i, "model: jump backwards");
    let mut i = i;
    let mut cost = Cost::default();
    for k in 0..8 {
        let s = shift(k);
        if i >> s == j >> s {
            continue;
        }
        let n = digit(j, k)
            .checked_sub(digit(i, k) + 1)
            .expect("model: digits only grow");
        for _ in 0..n {
            r[k] = step(&r[k]);
            cost.steps += 1;
        }
        for m in k + 1..8 {
            r[m] = derive(m, &r[k]);
            cost.derives += 1;
        }
        r[k] = step(&r[k]);
        cost.steps += 1;
        i = (j >> s) << s;
    }
    assert_eq!(i, j);
    cost
}

/// The closed form: `R_k(i) = Step^{d_k(i)}(B_k(i))`, where `B_k(i)` is the
/// initial `R_k` while the digits above `k` are all zero, else
/// `Derive_k(Step^{d_h(i) - 1}(B_h(i)))` with `h` the nearest level above
/// `k` whose digit is not zero.
pub fn closed_form(initial: &Levels, i: u32) -> Levels {
    let steps = |mut r: [u8; 32], n: u32| {
        for _ in 0..n {
            r = step(&r);
        }
        r
    };
    let mut base = [[0u8; 32]; 8];
    let mut out = [[0u8; 32]; 8];
    for k in 0..8 {
        base[k] = match (0..k).rev().find(|&h| digit(i, h) != 0) {
            None => initial[k],
            Some(h) => derive(k, &steps(base[h], digit(i, h) - 1)),
        };
        out[k] = steps(base[k], digit(i, k));
    }
    out
}

/// The message key of index `i` of a chain that started at `initial`.
pub fn key_at(initial: &Levels, i: u32) -> [u8; 32] {
    message_key(&closed_form(initial, i))
}

/// The levels as JSON (eight hex strings).
pub fn levels_json(r: &Levels) -> Value {
    r.iter().map(|l| Value::from(hex(l))).collect()
}

/// 256 bytes as R_0 .. R_7.
pub fn split_levels(bytes: &[u8]) -> Levels {
    let mut r = [[0u8; 32]; 8];
    for (l, chunk) in r.iter_mut().zip(bytes.chunks_exact(32)) {
        l.copy_from_slice(chunk);
    }
    r
}

/// R_0 .. R_7 as 256 bytes.
pub fn flat(r: &Levels) -> Vec<u8> {
    r.concat()
}
