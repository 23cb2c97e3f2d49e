//! Per-user safety numbers over all of a user's device identities (SPEC.md
//! §16.9).

use alloc::vec::Vec;
use core::fmt;

use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

use super::address::UserId;
use super::record::PeerRecord;
use crate::error::{Error, Result};
use crate::keys::IdentityKey;

/// Label of the safety number hash.
const LABEL: &[u8] = crate::crypto::label::SAFETY_NUMBER;
/// Hash iterations: makes a brute-force search for colliding identities
/// costly (the count Signal's safety numbers use).
pub(crate) const ITERATIONS: usize = 5200;
/// Digits of one user's fingerprint.
const DIGITS: usize = 30;

/// One user's fingerprint over all of its devices: 30 decimal digits
/// (SPEC §16.9). Compared in constant time.
#[derive(Clone, Copy)]
pub struct UserFingerprint([u8; DIGITS]);

impl UserFingerprint {
    /// The fingerprint of `user` whose devices have the identity keys
    /// `identities` (in any order; at most
    /// [`MAX_DEVICES_PER_USER`](super::MAX_DEVICES_PER_USER) + 1, the local
    /// device and its own record's devices).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidDeviceList`] if `identities` is empty, longer than
    /// that, or names one identity twice.
    pub fn new(user: &UserId, identities: &[IdentityKey]) -> Result<Self> {
        let mut keys: Vec<[u8; 32]> = identities.iter().map(|k| *k.as_bytes()).collect();
        keys.sort_unstable();
        keys.dedup();
        if keys.is_empty()
            || keys.len() != identities.len()
            || keys.len() > super::MAX_DEVICES_PER_USER + 1
        {
            return Err(Error::InvalidDeviceList);
        }
        let mut input = Vec::with_capacity(LABEL.len() + 2 + 64 + 32 * keys.len());
        input.extend_from_slice(LABEL);
        input.push(user.len_byte());
        input.extend_from_slice(user.as_bytes());
        input.push(u8::try_from(keys.len()).unwrap_or(u8::MAX));
        for key in &keys {
            input.extend_from_slice(key);
        }
        let mut h: Vec<u8> = input.clone();
        for _ in 0..ITERATIONS {
            let mut hasher = Sha512::new();
            hasher.update(&h);
            hasher.update(&input);
            h = hasher.finalize().to_vec();
        }
        let mut digits = [0u8; DIGITS];
        for (chunk, out) in h.chunks_exact(5).zip(digits.chunks_exact_mut(5)) {
            let mut value = 0u64;
            for b in chunk {
                value = (value << 8) | u64::from(*b);
            }
            let mut value = value % 100_000;
            for d in out.iter_mut().rev() {
                // value % 10 < 10, so the cast keeps it.
                *d = b'0' + u8::try_from(value % 10).unwrap_or(0);
                value /= 10;
            }
        }
        Ok(Self(digits))
    }

    /// The 30 ASCII digits.
    pub fn digits(&self) -> &[u8; DIGITS] {
        &self.0
    }
}

impl PartialEq for UserFingerprint {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for UserFingerprint {}

impl fmt::Debug for UserFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserFingerprint({self})")
    }
}

impl fmt::Display for UserFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        groups(f, &self.0)
    }
}

/// The safety number of two users: both fingerprints, the smaller first, 60
/// digits (SPEC §16.9). Both users compute the same number; they compare it
/// out of band. Compared in constant time.
#[derive(Clone, Copy)]
pub struct SafetyNumber([u8; 2 * DIGITS]);

impl SafetyNumber {
    /// The safety number of two users' fingerprints, in either order.
    pub fn new(a: &UserFingerprint, b: &UserFingerprint) -> Self {
        let (first, second) = if a.0 <= b.0 { (a, b) } else { (b, a) };
        let mut digits = [0u8; 2 * DIGITS];
        let (x, y) = digits.split_at_mut(DIGITS);
        x.copy_from_slice(&first.0);
        y.copy_from_slice(&second.0);
        Self(digits)
    }

    /// The 60 ASCII digits.
    pub fn digits(&self) -> &[u8; 2 * DIGITS] {
        &self.0
    }
}

impl PartialEq for SafetyNumber {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for SafetyNumber {}

impl fmt::Debug for SafetyNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SafetyNumber({self})")
    }
}

/// Twelve groups of five digits, separated by spaces.
impl fmt::Display for SafetyNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        groups(f, &self.0)
    }
}

fn groups(f: &mut fmt::Formatter<'_>, digits: &[u8]) -> fmt::Result {
    for (i, group) in digits.chunks(5).enumerate() {
        if i > 0 {
            f.write_str(" ")?;
        }
        f.write_str(core::str::from_utf8(group).map_err(|_| fmt::Error)?)?;
    }
    Ok(())
}

impl PeerRecord {
    /// The fingerprint of this record's user (SPEC §16.9): over the trusted
    /// identities of its listed devices, and for the own record the local
    /// device's identity too. Stale devices do not count; a device with a
    /// pending identity change counts with its trusted identity, so the
    /// number changes when the change is acknowledged.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidDeviceList`] if no device counts (a peer record with
    /// no listed device).
    pub fn fingerprint(&self) -> Result<UserFingerprint> {
        let mut identities: Vec<IdentityKey> = self
            .devices
            .values()
            .filter(|d| d.is_listed())
            .map(|d| d.identity)
            .collect();
        if self.local_device.is_some() {
            identities.push(self.local_identity);
        }
        UserFingerprint::new(&self.user, &identities)
    }

    /// The safety number of the local user, whose own record is `own`, and
    /// this record's user (SPEC §16.9).
    ///
    /// # Errors
    ///
    /// [`Error::IdentityMismatch`] if `own` is not the own record of this
    /// record's local device; then as [`PeerRecord::fingerprint`].
    pub fn safety_number(&self, own: &PeerRecord) -> Result<SafetyNumber> {
        if own.local_device.is_none() || own.local_identity != self.local_identity {
            return Err(Error::IdentityMismatch);
        }
        Ok(SafetyNumber::new(&own.fingerprint()?, &self.fingerprint()?))
    }
}
