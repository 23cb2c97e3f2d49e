//! The model's randomness: a source of the bytes SPEC.md says each
//! operation draws, in draw order. The generator draws from a seeded
//! ChaCha20 stream and logs every draw ([`Stream`]); the verifier replays
//! the draws a vector recorded ([`Replay`]).

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

/// Where an operation's random bytes come from.
pub trait Source {
    /// Fills `out` with the next random bytes.
    fn fill(&mut self, out: &mut [u8]);
}

impl dyn Source + '_ {
    /// Draws `N` bytes.
    pub fn draw<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        self.fill(&mut out);
        out
    }
}

/// A seeded ChaCha20 stream that logs each draw.
pub struct Stream {
    rng: ChaCha20Rng,
    log: Vec<Vec<u8>>,
}

impl Stream {
    /// Seeded with `seed`.
    pub fn new(seed: [u8; 32]) -> Self {
        Self {
            rng: ChaCha20Rng::from_seed(seed),
            log: Vec::new(),
        }
    }

    /// The draws since the last call, in order.
    pub fn take(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.log)
    }

    /// Draws `N` bytes (logged).
    pub fn draw<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        self.fill(&mut out);
        out
    }
}

impl Source for Stream {
    fn fill(&mut self, out: &mut [u8]) {
        self.rng.fill_bytes(out);
        self.log.push(out.to_vec());
    }
}

/// Recorded bytes, handed out in order.
pub struct Replay {
    bytes: Vec<u8>,
    pos: usize,
    overrun: bool,
}

impl Replay {
    /// Replays `draws`, concatenated.
    pub fn new<I: IntoIterator<Item = Vec<u8>>>(draws: I) -> Self {
        Self {
            bytes: draws.into_iter().flatten().collect(),
            pos: 0,
            overrun: false,
        }
    }

    /// Checks that exactly the recorded bytes were drawn.
    ///
    /// # Errors
    ///
    /// A message saying how many bytes were drawn and recorded.
    pub fn finish(&self) -> Result<(), String> {
        if self.overrun {
            return Err(format!(
                "more random bytes drawn than the {} recorded",
                self.bytes.len()
            ));
        }
        if self.pos != self.bytes.len() {
            return Err(format!(
                "{} random bytes drawn, {} recorded",
                self.pos,
                self.bytes.len()
            ));
        }
        Ok(())
    }
}

impl Source for Replay {
    fn fill(&mut self, out: &mut [u8]) {
        match self.bytes.get(self.pos..self.pos + out.len()) {
            Some(src) => {
                out.copy_from_slice(src);
                self.pos += out.len();
            }
            None => {
                // Zeros, never a panic: `finish` reports the overrun.
                out.fill(0);
                self.overrun = true;
            }
        }
    }
}
