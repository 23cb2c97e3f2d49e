//! SPEC.md §15.4: the hierarchical hash ratchet of a sender chain. The
//! closed form is the one Rust statement of the ratchet that tests and
//! tools use; increments and jumps are checked against it.

use serde_json::Value;

use crate::hex::hex;
use crate::model::primitives::labelled_sha256;

/// §15.2 ratchet step label.
pub const L_STEP: &str = "sotto v1 group step";
/// §15.2 reseed label.
pub const L_DERIVE: &str = "sotto v1 group derive";
/// §15.2 message key label.
pub const L_KEY: &str = "sotto v1 group key";

/// R_0 .. R_7.
pub type Levels = [[u8; 32]; 8];

/// `Step(R)`.
pub fn step(r: &[u8; 32]) -> [u8; 32] {
    labelled_sha256(L_STEP, r)
}

/// `Derive(R)`.
pub fn derive(r: &[u8; 32]) -> [u8; 32] {
    labelled_sha256(L_DERIVE, r)
}

/// `K_i = SHA-256("sotto v1 group key" || R_7(i))`.
pub fn message_key(r: &Levels) -> [u8; 32] {
    labelled_sha256(L_KEY, &r[7])
}

/// `d_k(i)`, k = 0 the most significant hex digit.
pub fn digit(i: u32, k: usize) -> u32 {
    (i >> shift(k)) & 0xF
}

fn shift(k: usize) -> u32 {
    4 * (7 - u32::try_from(k).expect("k < 8"))
}

/// Increment `i -> i + 1`; returns `i + 1`.
pub fn increment(i: u32, r: &mut Levels) -> u32 {
    assert!(i < u32::MAX, "model: increment at the last index");
    let k = (0..8)
        .rev()
        .find(|&k| digit(i, k) != 15)
        .expect("a digit below 15");
    r[k] = step(&r[k]);
    for m in k + 1..8 {
        r[m] = derive(&r[m - 1]);
    }
    i + 1
}

/// Jump `i -> j` (`j >= i`), level by level.
pub fn jump(mut i: u32, r: &mut Levels, j: u32) {
    assert!(j >= i, "model: jump backwards");
    for k in 0..8 {
        let s = shift(k);
        if i >> s == j >> s {
            continue;
        }
        let n = digit(j, k)
            .checked_sub(digit(i, k))
            .expect("digits only grow");
        assert!(n > 0);
        for _ in 0..n {
            r[k] = step(&r[k]);
        }
        for m in k + 1..8 {
            r[m] = derive(&r[m - 1]);
        }
        i = (j >> s) << s;
    }
    assert_eq!(i, j);
}

/// The closed form: `R_k(i) = Step^{d_k(i)}(B_k(i))`, where `B_k(i)` is
/// the initial `R_k` while the digits above `k` are all zero, else
/// `Derive(R_{k-1}(i))`.
pub fn closed_form(initial: &Levels, i: u32) -> Levels {
    let mut out = [[0u8; 32]; 8];
    for k in 0..8 {
        let above_zero = (0..k).all(|a| digit(i, a) == 0);
        let mut r = if above_zero {
            initial[k]
        } else {
            derive(&out[k - 1])
        };
        for _ in 0..digit(i, k) {
            r = step(&r);
        }
        out[k] = r;
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
