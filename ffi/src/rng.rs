//! The operating system's random number generator, as the infallible
//! `CryptoRng` the core asks for.

use core::convert::Infallible;

use rand_core::{TryCryptoRng, TryRng};

/// Unwind payload raised when the OS generator fails; the call wrapper turns
/// it into `SOTTO_ERROR_RANDOMNESS`.
pub(crate) struct RngFailure;

/// `getrandom` behind `rand_core`'s traits. The core's RNG parameter is
/// infallible, so a failure unwinds (without running the panic hook) out of
/// the core call to the wrapper, which poisons a handle the call was mutating.
pub(crate) struct OsRng;

impl TryRng for OsRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut bytes = [0u8; 4];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut bytes = [0u8; 8];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        if getrandom::fill(dst).is_err() {
            std::panic::resume_unwind(Box::new(RngFailure));
        }
        Ok(())
    }
}

impl TryCryptoRng for OsRng {}

#[cfg(test)]
mod tests {
    use rand_core::Rng;

    use super::OsRng;

    #[test]
    fn draws_differ() {
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        OsRng.fill_bytes(&mut a);
        OsRng.fill_bytes(&mut b);
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 32]);
    }
}
