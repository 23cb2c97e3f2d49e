//! The hierarchical hash ratchet behind a sender chain.
//!
//! Eight 32-byte levels R_0..R_7 track the eight hex digits of the index,
//! R_0 the most significant. Moving to a later index steps the level of the
//! highest digit that changes and reseeds every level below it from the one
//! above, so reaching any later index costs at most 8 * 15 steps and
//! 28 reseeds, however far it is. SPEC.md §15.4.

use rand_core::CryptoRng;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::codec::{Codec, Reader, Sink};
use crate::crypto::{self, label};
use crate::error::Result;

/// Number of levels (hex digits of a `u32` index).
pub(crate) const LEVELS: usize = 8;
/// Bytes per level.
pub(crate) const LEVEL_LEN: usize = 32;
/// Encoded ratchet: index (u32) then the levels.
pub(crate) const RATCHET_LEN: usize = 4 + LEVELS * LEVEL_LEN;

/// How far index `i` is shifted right to leave digits `0..=k`, by level.
const SHIFT: [u32; LEVELS] = [28, 24, 20, 16, 12, 8, 4, 0];

/// The digit of `index` at the level whose shift is `s`.
fn digit(index: u32, s: u32) -> u32 {
    (index >> s) & 0xF
}

/// A sender chain's ratchet at one index. Zeroized on drop; never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct Ratchet {
    index: u32,
    levels: [[u8; LEVEL_LEN]; LEVELS],
}

impl Ratchet {
    /// A fresh ratchet at index 0: 256 random bytes, R_0 first.
    pub(crate) fn random<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut ratchet = Self {
            index: 0,
            levels: [[0u8; LEVEL_LEN]; LEVELS],
        };
        for level in &mut ratchet.levels {
            rng.fill_bytes(level);
        }
        ratchet
    }

    #[cfg(test)]
    fn from_parts(index: u32, levels: [[u8; LEVEL_LEN]; LEVELS]) -> Self {
        Self { index, levels }
    }

    pub(crate) fn index(&self) -> u32 {
        self.index
    }

    /// K_i = SHA-256("sotto v1 group key" || R_7) for the current index.
    pub(crate) fn message_key(&self) -> MessageKey {
        let [.., last] = &self.levels;
        MessageKey(crypto::sha256(&[label::GROUP_MESSAGE_KEY, last]))
    }

    /// Moves to `target`. Does nothing unless `target` is ahead: the ratchet
    /// only goes forward.
    pub(crate) fn advance_to(&mut self, target: u32) {
        if target <= self.index {
            return;
        }
        for (k, &s) in SHIFT.iter().enumerate() {
            if self.index >> s == target >> s {
                continue;
            }
            // Digits above k already match, and digits below k of the
            // current index are zero after an earlier level moved, so the
            // difference is positive.
            let steps = digit(target, s).saturating_sub(digit(self.index, s));
            if let Some(level) = self.levels.get_mut(k) {
                for _ in 0..steps {
                    *level = crypto::sha256(&[label::GROUP_STEP, &level[..]]);
                }
            }
            self.reseed_below(k);
            self.index = (target >> s) << s;
        }
    }

    /// R_m = Derive(R_{m-1}) for every level m below `k`.
    fn reseed_below(&mut self, k: usize) {
        for m in k + 1..LEVELS {
            if let Some([above, this]) = self.levels.get_mut(m - 1..=m) {
                *this = crypto::sha256(&[label::GROUP_DERIVE, &above[..]]);
            }
        }
    }
}

/// The index then R_0..R_7.
impl Codec for Ratchet {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.index.encode(out);
        for level in &self.levels {
            level.encode(out);
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let index = u32::decode(r)?;
        let mut levels = [[0u8; LEVEL_LEN]; LEVELS];
        for level in &mut levels {
            *level = r.array()?;
        }
        Ok(Self { index, levels })
    }
}

/// One index's message key K_i. Zeroized on drop; never printed.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct MessageKey([u8; 32]);

impl MessageKey {
    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl Codec for MessageKey {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.0.encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        r.array().map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn step(r: [u8; 32]) -> [u8; 32] {
        crypto::sha256(&[label::GROUP_STEP, &r])
    }

    fn derive(r: [u8; 32]) -> [u8; 32] {
        crypto::sha256(&[label::GROUP_DERIVE, &r])
    }

    /// The closed form, straight from the definition: level k at index i is
    /// its base stepped d_k(i) times, where the base is the initial R_k while
    /// every digit above k is zero, and Derive(R_{k-1}(i)) otherwise.
    fn closed_form(initial: &[[u8; 32]; LEVELS], i: u32) -> [[u8; 32]; LEVELS] {
        let mut out = [[0u8; 32]; LEVELS];
        for k in 0..LEVELS {
            let above_zero = k == 0 || i >> SHIFT[k - 1] == 0;
            let mut r = if above_zero {
                initial[k]
            } else {
                derive(out[k - 1])
            };
            for _ in 0..digit(i, SHIFT[k]) {
                r = step(r);
            }
            out[k] = r;
        }
        out
    }

    fn initial(seed: u8) -> [[u8; 32]; LEVELS] {
        let mut levels = [[0u8; 32]; LEVELS];
        for (k, level) in levels.iter_mut().enumerate() {
            *level = [seed ^ u8::try_from(k).unwrap(); 32];
        }
        levels
    }

    #[test]
    fn increments_match_closed_form_across_rollovers() {
        let start = initial(3);
        let mut r = Ratchet::from_parts(0, start);
        for i in 0..=0x1_0010u32 {
            if i % 0x111 == 0 || i & 0xFFF == 0 || i & 0xFFF == 0xFFF {
                assert_eq!(r.levels, closed_form(&start, i), "index {i}");
            }
            r.advance_to(i + 1);
            assert_eq!(r.index, i + 1);
        }
    }

    #[test]
    fn jump_to_last_index() {
        let start = initial(9);
        let mut r = Ratchet::from_parts(0, start);
        r.advance_to(u32::MAX);
        assert_eq!(r.index, u32::MAX);
        assert_eq!(r.levels, closed_form(&start, u32::MAX));
    }

    #[test]
    fn never_moves_backwards() {
        let mut r = Ratchet::from_parts(0, initial(1));
        r.advance_to(1000);
        let before = r.levels;
        r.advance_to(999);
        r.advance_to(1000);
        assert_eq!(r.index, 1000);
        assert_eq!(r.levels, before);
    }

    #[test]
    fn message_key_is_labelled_hash_of_last_level() {
        let r = Ratchet::from_parts(5, initial(2));
        let expected = crypto::sha256(&[b"sotto v1 group key", &[2 ^ 7; 32]]);
        assert_eq!(r.message_key().as_bytes(), &expected);
    }

    /// Indices near a digit rollover at a random level.
    fn near_boundary() -> impl Strategy<Value = u32> {
        (0u32..8, any::<u32>(), 0u32..64).prop_map(|(level, high, below)| {
            let unit = 1u32 << (4 * level);
            (high & !(unit.wrapping_sub(1))).saturating_sub(below)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn jump_equals_repeated_increments(i in prop_oneof![any::<u32>(), near_boundary()], gap in 0u32..300) {
            let j = i.saturating_add(gap);
            let start = initial(7);
            let mut jumped = Ratchet::from_parts(0, start);
            jumped.advance_to(i);
            prop_assert_eq!(jumped.levels, closed_form(&start, i));
            let mut stepped = jumped.clone();
            jumped.advance_to(j);
            for n in i..j {
                stepped.advance_to(n + 1);
            }
            prop_assert_eq!(stepped.index, j);
            prop_assert_eq!(jumped.index, j);
            prop_assert_eq!(jumped.levels, stepped.levels);
        }

        #[test]
        fn any_jump_matches_closed_form(i in any::<u32>(), j in any::<u32>()) {
            let (i, j) = (i.min(j), i.max(j));
            let start = initial(11);
            let mut r = Ratchet::from_parts(0, start);
            r.advance_to(i);
            r.advance_to(j);
            prop_assert_eq!(r.index, j);
            prop_assert_eq!(r.levels, closed_form(&start, j));
        }
    }
}
