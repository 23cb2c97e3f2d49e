//! Addresses (SPEC.md §16.1): a user is named by a `UserId` the application
//! chooses, a device of a user by a `u32` `DeviceId`.

use alloc::vec::Vec;
use core::fmt;

use super::MAX_USER_ID_LEN;
use crate::codec::{Codec, Reader, Sink};
use crate::error::{Error, Result};

/// A user's id: 1 to [`MAX_USER_ID_LEN`] bytes chosen by the application
/// (its account id). Ordered as byte strings.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserId(Vec<u8>);

impl UserId {
    /// Wraps `bytes`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidEncoding`] if `bytes` is empty or longer than
    /// [`MAX_USER_ID_LEN`].
    pub fn new(bytes: &[u8]) -> Result<Self> {
        if bytes.is_empty() || bytes.len() > MAX_USER_ID_LEN {
            return Err(Error::InvalidEncoding);
        }
        Ok(Self(bytes.to_vec()))
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The length byte that precedes the id in encodings (1 to 64).
    pub(crate) fn len_byte(&self) -> u8 {
        u8::try_from(self.0.len()).unwrap_or(u8::MAX)
    }
}

/// `u8(len) || bytes`, with `1 <= len <= MAX_USER_ID_LEN` checked as soon as
/// the length is read (SPEC §16.11).
impl Codec for UserId {
    fn encode<S: Sink>(&self, out: &mut S) {
        out.put(&[self.len_byte()]);
        out.put(&self.0);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let len = usize::from(r.u8()?);
        if len == 0 || len > MAX_USER_ID_LEN {
            return Err(Error::InvalidEncoding);
        }
        Ok(Self(r.take(len)?.to_vec()))
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UserId(")?;
        for b in &self.0 {
            if b.is_ascii_graphic() {
                write!(f, "{}", char::from(*b))?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        f.write_str(")")
    }
}

/// A device of a user: the number the application's server gave it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct DeviceId(pub u32);

impl Codec for DeviceId {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.0.encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        r.u32().map(Self)
    }
}
