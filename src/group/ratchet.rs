//! The one-way hierarchical hash ratchet behind a sender chain (SPEC.md
//! §15.4).
//!
//! Eight 32-byte levels R_0..R_7 track the eight hex digits of the index,
//! R_0 the most significant. When level k moves, every lower level is first
//! derived from the *current* R_k, with a label per target level, and only
//! then R_k steps: the state keeps no value the lower levels were derived
//! from, so it yields no key of an earlier index. Reaching any later index
//! costs at most 8 * 15 = 120 steps and 28 derivations, however far it is.

use alloc::boxed::Box;

use rand_core::TryCryptoRng;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::codec::{Codec, Reader, Sink};
use crate::crypto::{self, label};
use crate::error::Result;

/// Number of levels (hex digits of a `u32` index).
pub(crate) const LEVELS: usize = 8;
/// Bytes per level.
pub(crate) const LEVEL_LEN: usize = 32;
/// Encoded ratchet: the index (u32), then R_0..R_7.
pub(crate) const RATCHET_LEN: usize = 4 + LEVELS * LEVEL_LEN;

/// How far an index is shifted right to leave digits `0..=k`, by level k.
const SHIFT: [u32; LEVELS] = [28, 24, 20, 16, 12, 8, 4, 0];

/// Digit `d_k(i)` of `index`, for the level whose shift is `s`.
fn digit(index: u32, s: u32) -> u32 {
    (index >> s) & 0xF
}

/// Step(R) = SHA-256("sotto v2 group step" || R).
fn step(r: &mut [u8; LEVEL_LEN]) {
    count::step();
    *r = crypto::sha256(&[label::GROUP_STEP, r]);
}

/// Derive_m(R) = SHA-256("sotto v2 group derive" || u8(m) || R).
fn derive(m: u8, r: &[u8; LEVEL_LEN]) -> [u8; LEVEL_LEN] {
    count::derive();
    crypto::sha256(&[label::GROUP_DERIVE, &[m], r])
}

/// A sender chain's ratchet at one index. Zeroized on drop; never printed;
/// always boxed where it is kept, so moving its owner never copies it.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct Ratchet {
    index: u32,
    levels: [[u8; LEVEL_LEN]; LEVELS],
}

impl Ratchet {
    /// A fresh ratchet at index 0: 256 random bytes, R_0 first, drawn
    /// straight into their allocation.
    ///
    /// # Errors
    ///
    /// `RandomnessUnavailable` if the RNG fails.
    pub(crate) fn random<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<Box<Self>> {
        let mut ratchet = Box::new(Self {
            index: 0,
            levels: [[0u8; LEVEL_LEN]; LEVELS],
        });
        crypto::draw(rng, ratchet.levels.as_flattened_mut())?;
        Ok(ratchet)
    }

    #[cfg(test)]
    pub(crate) fn from_parts(index: u32, levels: [[u8; LEVEL_LEN]; LEVELS]) -> Self {
        Self { index, levels }
    }

    #[cfg(test)]
    pub(crate) fn levels(&self) -> &[[u8; LEVEL_LEN]; LEVELS] {
        &self.levels
    }

    /// A copy in its own allocation, written there directly.
    pub(crate) fn boxed(&self) -> Box<Self> {
        let mut copy = Box::new(Self {
            index: self.index,
            levels: [[0u8; LEVEL_LEN]; LEVELS],
        });
        copy.levels = self.levels;
        copy
    }

    /// Decodes the index and R_0..R_7 straight into their allocation.
    pub(crate) fn decode_boxed(r: &mut Reader<'_>) -> Result<Box<Self>> {
        let index = u32::decode(r)?;
        Self::decode_levels(index, r)
    }

    /// Decodes R_0..R_7 straight into their allocation, for a ratchet at
    /// `index` (read before, with fields of its own between: SPEC §15.11).
    pub(crate) fn decode_levels(index: u32, r: &mut Reader<'_>) -> Result<Box<Self>> {
        let mut ratchet = Box::new(Self {
            index,
            levels: [[0u8; LEVEL_LEN]; LEVELS],
        });
        ratchet
            .levels
            .as_flattened_mut()
            .copy_from_slice(r.take(LEVELS * LEVEL_LEN)?);
        Ok(ratchet)
    }

    /// Writes R_0..R_7 without the index.
    pub(crate) fn encode_levels<S: Sink>(&self, out: &mut S) {
        out.put(self.levels.as_flattened());
    }

    /// The index this ratchet is at.
    pub(crate) fn index(&self) -> u32 {
        self.index
    }

    /// K_i = Key(R_7) = SHA-256("sotto v2 group key" || R_7) for the
    /// current index.
    pub(crate) fn message_key(&self) -> Box<MessageKey> {
        count::key();
        let [.., last] = &self.levels;
        Box::new(MessageKey(crypto::sha256(&[
            label::GROUP_MESSAGE_KEY,
            last,
        ])))
    }

    /// Moves to `target` by the jump of SPEC §15.4 (equal to
    /// `target - index` increments). Does nothing unless `target` is ahead:
    /// the ratchet only goes forward.
    pub(crate) fn advance_to(&mut self, target: u32) {
        if target <= self.index {
            return;
        }
        for (k, &s) in SHIFT.iter().enumerate() {
            if self.index >> s == target >> s {
                continue;
            }
            // Digits above k are equal and, after the first level that
            // moved, the lower digits of the index are 0: the difference is
            // at least 1.
            let moves = digit(target, s).saturating_sub(digit(self.index, s));
            let Some((this, lower)) = self.levels.get_mut(k..).and_then(<[_]>::split_first_mut)
            else {
                return;
            };
            for _ in 1..moves {
                step(this);
            }
            for (m, level) in (k + 1..).zip(lower.iter_mut()) {
                *level = derive(u8::try_from(m).unwrap_or(u8::MAX), this);
            }
            step(this);
            self.index = (target >> s) << s;
        }
    }

    /// Moves to the next index (an increment); at `u32::MAX` nothing moves.
    pub(crate) fn increment(&mut self) {
        if let Some(next) = self.index.checked_add(1) {
            self.advance_to(next);
        }
    }

    /// Whether both ratchets hold the same 256 bytes, compared in constant
    /// time (the index is public and not compared).
    pub(crate) fn same_levels(&self, other: &Self) -> bool {
        self.levels
            .as_flattened()
            .ct_eq(other.levels.as_flattened())
            .into()
    }
}

/// The index, then R_0..R_7.
impl Codec for Ratchet {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.index.encode(out);
        self.encode_levels(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Self::decode_boxed(r).map(|ratchet| Self {
            index: ratchet.index,
            levels: ratchet.levels,
        })
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

/// Counts of hash evaluations, in test builds only, per thread: what the
/// tests measure costs with (SPEC §15.4, §15.10) and how they see that no key
/// is derived before a signature verified (§15.8).
#[cfg(test)]
pub(crate) mod count {
    extern crate std;

    use core::cell::Cell;

    std::thread_local! {
        static COUNTS: Cell<Counts> = const { Cell::new(Counts { steps: 0, derives: 0, keys: 0 }) };
    }

    /// Steps, derivations and message keys computed since the last reset.
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    pub(crate) struct Counts {
        pub(crate) steps: u64,
        pub(crate) derives: u64,
        pub(crate) keys: u64,
    }

    fn add(f: impl FnOnce(&mut Counts)) {
        COUNTS.with(|c| {
            let mut counts = c.get();
            f(&mut counts);
            c.set(counts);
        });
    }

    pub(crate) fn step() {
        add(|c| c.steps += 1);
    }

    pub(crate) fn derive() {
        add(|c| c.derives += 1);
    }

    pub(crate) fn key() {
        add(|c| c.keys += 1);
    }

    /// The counts so far, set back to zero.
    pub(crate) fn take() -> Counts {
        COUNTS.with(|c| {
            c.replace(Counts {
                steps: 0,
                derives: 0,
                keys: 0,
            })
        })
    }
}

#[cfg(not(test))]
mod count {
    pub(super) fn step() {}
    pub(super) fn derive() {}
    pub(super) fn key() {}
}
