//! The operating system's random number generator behind the core's
//! `TryCryptoRng`: a failure comes back as `RandomnessUnavailable` before
//! anything changed. Never seeded, never rolled back with the database
//! (SPEC §11).

use rand_core::{TryCryptoRng, TryRng};

/// `getrandom` behind `rand_core`'s traits.
pub(crate) struct OsRng;

impl TryRng for OsRng {
    type Error = getrandom::Error;

    fn try_next_u32(&mut self) -> Result<u32, getrandom::Error> {
        let mut bytes = [0u8; 4];
        getrandom::fill(&mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, getrandom::Error> {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), getrandom::Error> {
        getrandom::fill(dst)
    }
}

impl TryCryptoRng for OsRng {}

/// Fills `dst` from the OS, as a store error.
pub(crate) fn fill(dst: &mut [u8]) -> crate::Result<()> {
    getrandom::fill(dst).map_err(|_| crate::Error::Protocol(sotto::Error::RandomnessUnavailable))
}
