//! The chat's wire protocol between clients and the relay: length-prefixed
//! frames of one kind byte and a list of byte fields, parsed strictly and
//! bounded.

use std::io::{self, Read, Write};

/// Largest frame body accepted: far above any message (a prekey upload
/// with 100 KEM prekeys is about 170 KiB).
pub(crate) const MAX_FRAME: usize = 1 << 20;
/// Most fields in one frame.
const MAX_FIELDS: usize = 40;

/// Frame kinds.
pub(crate) mod kind {
    /// Client: who it is (user, device).
    pub(crate) const HELLO: u8 = 1;
    /// Client: a prekey upload.
    pub(crate) const UPLOAD: u8 = 2;
    /// Client: a bundle for each device of a user (user).
    pub(crate) const FETCH: u8 = 3;
    /// Client: a message (to user, to device or empty for all of the
    /// user's devices, payload, reference, the client's tag).
    pub(crate) const SEND: u8 = 4;
    /// Client: a delivered message is committed (sequence number).
    pub(crate) const ACK: u8 = 5;
    /// Relay: a request was carried out (the client's reference).
    pub(crate) const OK: u8 = 64;
    /// Relay: bundles (user, then device and bundle pairs).
    pub(crate) const BUNDLES: u8 = 65;
    /// Relay: a message (sequence, from user, from device, payload, tag).
    pub(crate) const DELIVER: u8 = 67;
    /// Relay: a request was refused (reason).
    pub(crate) const ERROR: u8 = 68;
}

/// One frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Frame {
    pub(crate) kind: u8,
    pub(crate) fields: Vec<Vec<u8>>,
}

impl Frame {
    pub(crate) fn new(kind: u8, fields: Vec<Vec<u8>>) -> Self {
        Self { kind, fields }
    }

    /// Field `i`, or an error naming the frame.
    pub(crate) fn field(&self, i: usize) -> io::Result<&[u8]> {
        self.fields
            .get(i)
            .map(Vec::as_slice)
            .ok_or_else(|| invalid("missing field"))
    }

    /// Field `i` as a big-endian `u64`.
    pub(crate) fn u64(&self, i: usize) -> io::Result<u64> {
        let bytes: [u8; 8] = self
            .field(i)?
            .try_into()
            .map_err(|_| invalid("bad integer"))?;
        Ok(u64::from_be_bytes(bytes))
    }

    /// Field `i` as a big-endian `u32`.
    pub(crate) fn u32(&self, i: usize) -> io::Result<u32> {
        let bytes: [u8; 4] = self
            .field(i)?
            .try_into()
            .map_err(|_| invalid("bad integer"))?;
        Ok(u32::from_be_bytes(bytes))
    }

    /// Field `i` as UTF-8.
    pub(crate) fn text(&self, i: usize) -> io::Result<String> {
        String::from_utf8(self.field(i)?.to_vec()).map_err(|_| invalid("bad text"))
    }

    /// Writes the frame: `u32 length || kind || u8 count || (u32 len ||
    /// bytes) per field`.
    pub(crate) fn write(&self, out: &mut impl Write) -> io::Result<()> {
        let mut body = vec![
            self.kind,
            u8::try_from(self.fields.len()).map_err(|_| invalid("fields"))?,
        ];
        for f in &self.fields {
            body.extend_from_slice(
                &u32::try_from(f.len())
                    .map_err(|_| invalid("field"))?
                    .to_be_bytes(),
            );
            body.extend_from_slice(f);
        }
        if body.len() > MAX_FRAME {
            return Err(invalid("frame too large"));
        }
        let len = u32::try_from(body.len()).map_err(|_| invalid("frame"))?;
        out.write_all(&len.to_be_bytes())?;
        out.write_all(&body)?;
        out.flush()
    }

    /// Reads one frame; `Ok(None)` at a clean end of stream.
    pub(crate) fn read(input: &mut impl Read) -> io::Result<Option<Self>> {
        let mut len = [0u8; 4];
        match input.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let len = usize::try_from(u32::from_be_bytes(len)).map_err(|_| invalid("length"))?;
        if !(2..=MAX_FRAME).contains(&len) {
            return Err(invalid("frame length"));
        }
        let mut body = vec![0u8; len];
        input.read_exact(&mut body)?;
        Self::parse(&body).map(Some)
    }

    fn parse(body: &[u8]) -> io::Result<Self> {
        let (&kind, rest) = body.split_first().ok_or_else(|| invalid("empty"))?;
        let (&count, mut rest) = rest.split_first().ok_or_else(|| invalid("empty"))?;
        if usize::from(count) > MAX_FIELDS {
            return Err(invalid("too many fields"));
        }
        let mut fields = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            if rest.len() < 4 {
                return Err(invalid("truncated"));
            }
            let (len, tail) = rest.split_at(4);
            let len: [u8; 4] = len.try_into().map_err(|_| invalid("truncated"))?;
            let len = usize::try_from(u32::from_be_bytes(len)).map_err(|_| invalid("length"))?;
            if tail.len() < len {
                return Err(invalid("truncated"));
            }
            let (field, tail) = tail.split_at(len);
            fields.push(field.to_vec());
            rest = tail;
        }
        if !rest.is_empty() {
            return Err(invalid("trailing bytes"));
        }
        Ok(Self { kind, fields })
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn frames_round_trip_and_bad_ones_are_refused() {
        let frame = Frame::new(kind::SEND, vec![b"bob".to_vec(), vec![], vec![7; 300]]);
        let mut bytes = Vec::new();
        frame.write(&mut bytes).unwrap();
        assert_eq!(Frame::read(&mut bytes.as_slice()).unwrap().unwrap(), frame);
        assert!(Frame::read(&mut &[][..]).unwrap().is_none());
        // A field running past the end, and a byte after the last field.
        let mut short = bytes.clone();
        short.truncate(bytes.len() - 1);
        let body_len = u32::try_from(short.len() - 4).unwrap().to_be_bytes();
        short[..4].copy_from_slice(&body_len);
        assert!(Frame::read(&mut short.as_slice()).is_err());
        let mut long = bytes.clone();
        long.push(0);
        let body_len = u32::try_from(long.len() - 4).unwrap().to_be_bytes();
        long[..4].copy_from_slice(&body_len);
        assert!(Frame::read(&mut long.as_slice()).is_err());
        // A length over the bound is refused before anything is read.
        let huge = (u32::try_from(MAX_FRAME).unwrap() + 1).to_be_bytes();
        assert!(Frame::read(&mut &huge[..]).is_err());
    }
}
