//! Randomness for tests: seeded generators, a generator that replays
//! recorded draws, one that records them, and the model's own draws.

use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};
use sotto::rand_core::{Infallible, Rng, SeedableRng, TryCryptoRng, TryRng};

/// A ChaCha20 generator seeded with 32 copies of `seed`.
pub fn seeded(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

/// A ChaCha20 generator seeded from a u64.
pub fn seeded_u64(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// A named seed: SHA-256 of the label (the vectors' `seed`).
pub fn named_seed(label: &str) -> [u8; 32] {
    Sha256::digest(label.as_bytes()).into()
}

/// An RNG that hands out recorded bytes in order, so that sotto's public API
/// can be driven with the explicit private keys and salts of a vector.
pub struct ReplayRng {
    bytes: Vec<u8>,
    pos: usize,
    overrun: bool,
}

impl ReplayRng {
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
    pub fn finish(self) -> Result<(), String> {
        if self.overrun {
            return Err("sotto drew more random bytes than recorded".into());
        }
        if self.pos != self.bytes.len() {
            return Err(format!(
                "sotto drew {} random bytes, {} were recorded",
                self.pos,
                self.bytes.len()
            ));
        }
        Ok(())
    }
}

impl TryRng for ReplayRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        match self.bytes.get(self.pos..self.pos + dst.len()) {
            Some(src) => {
                dst.copy_from_slice(src);
                self.pos += dst.len();
            }
            None => {
                // Zeros, never a panic: `finish` reports the overrun.
                dst.fill(0);
                self.overrun = true;
            }
        }
        Ok(())
    }
}

impl TryCryptoRng for ReplayRng {}

/// A ChaCha20 generator that logs every draw, so that sotto's draws can be
/// compared with the model's.
pub struct RecordingRng {
    inner: ChaCha20Rng,
    /// Every draw since the last `take`.
    pub log: Vec<Vec<u8>>,
}

impl RecordingRng {
    /// Seeded with `seed`.
    pub fn new(seed: [u8; 32]) -> Self {
        Self {
            inner: ChaCha20Rng::from_seed(seed),
            log: Vec::new(),
        }
    }

    /// The draws since the last call.
    pub fn take(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.log)
    }

    /// Draws and forgets `n` bytes (to skip what only the model drew).
    pub fn skip(&mut self, n: usize) {
        let mut skipped = vec![0u8; n];
        self.inner.fill_bytes(&mut skipped);
    }
}

impl TryRng for RecordingRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let v = self.inner.next_u32();
        self.log.push(v.to_le_bytes().to_vec());
        Ok(v)
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let v = self.inner.next_u64();
        self.log.push(v.to_le_bytes().to_vec());
        Ok(v)
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.inner.fill_bytes(dst);
        self.log.push(dst.to_vec());
        Ok(())
    }
}

impl TryCryptoRng for RecordingRng {}

/// The model's randomness: a ChaCha20 stream from which it draws exactly
/// what SPEC.md says each operation draws, each draw logged.
pub struct Draws {
    rng: ChaCha20Rng,
    log: Vec<Vec<u8>>,
}

impl Draws {
    /// Seeded with `seed`.
    pub fn new(seed: [u8; 32]) -> Self {
        Self {
            rng: ChaCha20Rng::from_seed(seed),
            log: Vec::new(),
        }
    }

    /// Draws `N` bytes.
    pub fn draw<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        self.rng.fill_bytes(&mut out);
        self.log.push(out.to_vec());
        out
    }

    /// The draws since the last call.
    pub fn take(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.log)
    }
}
