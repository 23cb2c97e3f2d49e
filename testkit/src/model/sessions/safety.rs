//! §16.9 safety numbers.

use sha2::{Digest, Sha512};

use super::record::Record;
use super::{MAX_DEVICES_PER_USER, check_user};
use crate::model::error::{Refusal, refusal};

/// The label of §16.9.
pub const L_SAFETY: &str = "sotto v2 safety number";
/// Iterations of §16.9.
pub const ITERATIONS: usize = 5200;

/// A user's fingerprint over the identity keys of its devices: 30 digits.
///
/// # Errors
///
/// `InvalidEncoding` for a user id of the wrong length; `InvalidDeviceList`
/// for no key, more than `MAX_DEVICES_PER_USER + 1`, or a key twice.
pub fn fingerprint(user: &[u8], keys: &[[u8; 32]]) -> Result<String, Refusal> {
    check_user(user)?;
    let mut sorted = keys.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    if keys.is_empty() || sorted.len() != keys.len() || keys.len() > MAX_DEVICES_PER_USER + 1 {
        return Err(refusal("InvalidDeviceList"));
    }
    let mut x = L_SAFETY.as_bytes().to_vec();
    x.push(u8::try_from(user.len()).expect("bounded"));
    x.extend(user);
    x.push(u8::try_from(sorted.len()).expect("bounded"));
    for k in &sorted {
        x.extend(k);
    }
    let mut h = x.clone();
    for _ in 0..ITERATIONS {
        let mut hasher = Sha512::new();
        hasher.update(&h);
        hasher.update(&x);
        h = hasher.finalize().to_vec();
    }
    Ok(h[..30]
        .chunks(5)
        .map(|c| {
            let v = c.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b));
            format!("{:05}", v % 100_000)
        })
        .collect())
}

/// The safety number of two fingerprints: the smaller first, 60 digits.
pub fn safety_number(a: &str, b: &str) -> String {
    if a <= b {
        format!("{a}{b}")
    } else {
        format!("{b}{a}")
    }
}

/// Twelve groups of five digits separated by single spaces.
pub fn display(digits: &str) -> String {
    digits
        .as_bytes()
        .chunks(5)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

impl Record {
    /// §16.9 the fingerprint of the record's user: the trusted identities
    /// of its listed devices, and for the own record `local_identity`.
    ///
    /// # Errors
    ///
    /// `InvalidDeviceList`.
    pub fn fingerprint(&self) -> Result<String, Refusal> {
        let mut keys: Vec<[u8; 32]> = self
            .devices
            .values()
            .filter(|d| d.listed())
            .map(|d| d.identity)
            .collect();
        if self.local_device.is_some() {
            keys.push(self.local_identity);
        }
        fingerprint(&self.user, &keys)
    }

    /// §16.9 the safety number of the local user (own record `own`) and
    /// this record's user.
    ///
    /// # Errors
    ///
    /// `IdentityMismatch` if `own` is not the own record of this record's
    /// local device; then `InvalidDeviceList`.
    pub fn safety_number(&self, own: &Self) -> Result<String, Refusal> {
        if own.local_device.is_none() || own.local_identity != self.local_identity {
            return Err(refusal("IdentityMismatch"));
        }
        Ok(safety_number(&own.fingerprint()?, &self.fingerprint()?))
    }
}
