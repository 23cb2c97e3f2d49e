//! Canonical binary encoding shared by every wire message and saved state.
//!
//! Every top-level encoding starts with a version byte and a type tag; all
//! integers are big-endian and fixed-width; there are no optional trailers.

use alloc::vec::Vec;

use crate::error::{Error, Result};

/// The only version byte this library writes and reads.
pub(crate) const VERSION: u8 = 1;

/// Type tags. One namespace for every encoding, so no two kinds of bytes can
/// be mistaken for each other.
pub(crate) mod tag {
    pub(crate) const RATCHET_MESSAGE: u8 = 0x01;
    pub(crate) const PREKEY_MESSAGE: u8 = 0x02;
    pub(crate) const GROUP_MESSAGE: u8 = 0x03;
    pub(crate) const SENDER_KEY_DISTRIBUTION: u8 = 0x04;
    pub(crate) const IDENTITY_KEY: u8 = 0x10;
    pub(crate) const SIGNED_PREKEY: u8 = 0x11;
    pub(crate) const ONE_TIME_PREKEY: u8 = 0x12;
    pub(crate) const PREKEY_BUNDLE: u8 = 0x13;
    pub(crate) const SESSION_STATE: u8 = 0x20;
    pub(crate) const DEVICE_STATE: u8 = 0x21;
    pub(crate) const GROUP_SENDER_STATE: u8 = 0x22;
    pub(crate) const GROUP_RECEIVER_STATE: u8 = 0x23;
    pub(crate) const SEALED_STATE: u8 = 0x30;
}

/// A cursor over input bytes that fails with a typed error instead of
/// reading past the end.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    /// Reads the version byte and type tag and checks both.
    pub(crate) fn header(bytes: &'a [u8], expected: u8) -> Result<Self> {
        let mut r = Self::new(bytes);
        let version = r.u8()?;
        if version != VERSION {
            return Err(Error::UnsupportedVersion { found: version });
        }
        let found = r.u8()?;
        if found != expected {
            return Err(Error::WrongType { expected, found });
        }
        Ok(r)
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.rest.len() {
            return Err(Error::Truncated);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        let [b] = self.array::<1>()?;
        Ok(b)
    }

    pub(crate) fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// A presence flag: exactly 0 or 1.
    pub(crate) fn flag(&mut self) -> Result<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Error::InvalidEncoding),
        }
    }

    /// Everything not yet read.
    pub(crate) fn rest(self) -> &'a [u8] {
        self.rest
    }

    /// Fails unless every byte was read.
    pub(crate) fn finish(self) -> Result<()> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(Error::TrailingBytes)
        }
    }
}

/// Appends the version byte and a type tag.
pub(crate) fn write_header(out: &mut Vec<u8>, tag: u8) {
    out.push(VERSION);
    out.push(tag);
}

pub(crate) fn write_flag(out: &mut Vec<u8>, flag: bool) {
    out.push(u8::from(flag));
}

/// Appends a one-byte count. Counts are bounded far below 256 by the
/// callers' limits; an impossible larger one saturates, which decoding rejects.
pub(crate) fn write_count_u8(out: &mut Vec<u8>, count: usize) {
    out.push(u8::try_from(count).unwrap_or(u8::MAX));
}

/// Appends a two-byte count, as [`write_count_u8`].
pub(crate) fn write_count_u16(out: &mut Vec<u8>, count: usize) {
    out.extend_from_slice(&u16::try_from(count).unwrap_or(u16::MAX).to_be_bytes());
}
