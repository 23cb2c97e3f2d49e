//! The operating system's random number generator, as the fallible
//! `TryCryptoRng` the core takes: a failure comes back from the core as
//! `RandomnessUnavailable` (drawn before anything changed), which the error
//! module maps to `SOTTO_ERROR_RANDOMNESS`.

use rand_core::{TryCryptoRng, TryRng};

/// `getrandom` behind `rand_core`'s traits.
pub(crate) struct OsRng;

#[cfg(test)]
thread_local! {
    /// Test hook: while set, every draw on this thread fails.
    static FAIL: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
}

/// Makes every draw on the calling thread fail while `fail` is set (tests
/// of the randomness error path).
#[cfg(test)]
pub(crate) fn fail_draws(fail: bool) {
    FAIL.with(|f| f.set(fail));
}

fn fill(dst: &mut [u8]) -> Result<(), getrandom::Error> {
    #[cfg(test)]
    if FAIL.with(core::cell::Cell::get) {
        return Err(getrandom::Error::UNSUPPORTED);
    }
    getrandom::fill(dst)
}

impl TryRng for OsRng {
    type Error = getrandom::Error;

    fn try_next_u32(&mut self) -> Result<u32, getrandom::Error> {
        let mut bytes = [0u8; 4];
        fill(&mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, getrandom::Error> {
        let mut bytes = [0u8; 8];
        fill(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), getrandom::Error> {
        fill(dst)
    }
}

impl TryCryptoRng for OsRng {}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use rand_core::TryRng;

    use super::{OsRng, fail_draws};

    #[test]
    fn draws_differ_and_the_hook_fails_them() {
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        OsRng.try_fill_bytes(&mut a).unwrap();
        OsRng.try_fill_bytes(&mut b).unwrap();
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 32]);
        fail_draws(true);
        assert!(OsRng.try_fill_bytes(&mut a).is_err());
        fail_draws(false);
        assert!(OsRng.try_next_u64().is_ok());
    }
}
