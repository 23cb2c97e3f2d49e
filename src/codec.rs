//! The canonical binary encoding shared by every wire message and saved
//! state (SPEC.md §1 for integers, §4 for the rules every decoder follows).
//!
//! Every top-level encoding starts with a version byte and a type tag; all
//! integers are big-endian and fixed-width; there are no optional trailers.
//!
//! A type declares its encoding once, as a [`Codec`]: `encode` writes its
//! fields to a [`Sink`], `decode` reads them back strictly. Encoded lengths
//! are never written down: [`encoded_len`] runs `encode` against a counter,
//! so buffers holding secrets are allocated at their exact size and never
//! reallocate (a reallocation would free a copy of the secrets without
//! zeroizing it).

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The only version byte this library writes and reads.
pub(crate) const VERSION: u8 = 2;

/// Type tags (SPEC §4). One namespace for every encoding, so no two kinds of
/// bytes can be mistaken for each other.
pub(crate) mod tag {
    pub(crate) const RATCHET_MESSAGE: u8 = 0x01;
    pub(crate) const PREKEY_MESSAGE: u8 = 0x02;
    pub(crate) const GROUP_MESSAGE: u8 = 0x03;
    pub(crate) const SENDER_KEY_DISTRIBUTION: u8 = 0x04;
    pub(crate) const IDENTITY_KEY: u8 = 0x10;
    pub(crate) const SIGNED_PREKEY: u8 = 0x11;
    pub(crate) const ONE_TIME_PREKEY: u8 = 0x12;
    pub(crate) const PREKEY_BUNDLE: u8 = 0x13;
    pub(crate) const KEM_PREKEY: u8 = 0x14;
    pub(crate) const SESSION_STATE: u8 = 0x20;
    pub(crate) const DEVICE_STATE: u8 = 0x21;
    pub(crate) const GROUP_SENDER_STATE: u8 = 0x22;
    pub(crate) const GROUP_RECEIVER_STATE: u8 = 0x23;
    pub(crate) const GROUP_STORE_STATE: u8 = 0x24;
    pub(crate) const PEER_RECORD_STATE: u8 = 0x25;
    pub(crate) const GROUP_SESSION_STATE: u8 = 0x26;
    pub(crate) const SEALED_STATE: u8 = 0x30;
}

/// Where an encoding goes: a buffer, or a counter that measures it.
pub(crate) trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Counts the bytes an encoding would write.
struct Measure(usize);

impl Sink for Measure {
    fn put(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }
}

/// A value with one canonical encoding.
///
/// `decode` reads the fields in the order `encode` writes them and checks
/// each as soon as it is read (SPEC §4); the header (version, type tag), the
/// `TooLarge` check and the `TrailingBytes` check belong to the top-level
/// functions below, not to the value.
pub(crate) trait Codec: Sized {
    fn encode<S: Sink>(&self, out: &mut S);
    fn decode(r: &mut Reader<'_>) -> Result<Self>;
}

/// The exact length of `value`'s encoding.
pub(crate) fn encoded_len<T: Codec>(value: &T) -> usize {
    let mut measure = Measure(0);
    value.encode(&mut measure);
    measure.0
}

/// Version, `tag`, then `value`, in a buffer allocated at exactly that
/// length, so that writing it never reallocates.
pub(crate) fn to_vec<T: Codec>(tag: u8, value: &T) -> Vec<u8> {
    let len = 2 + encoded_len(value);
    let mut out = Vec::with_capacity(len);
    write_header(&mut out, tag);
    value.encode(&mut out);
    debug_assert_eq!(out.len(), len, "encoded length must be exact");
    out
}

/// As [`to_vec`], for encodings that contain secrets: the one heap block
/// that ever held them is zeroized on drop.
pub(crate) fn to_secret_vec<T: Codec>(tag: u8, value: &T) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(to_vec(tag, value))
}

/// Decodes `bytes` as version, `tag`, then a `T`, with nothing left over.
pub(crate) fn from_slice<T: Codec>(tag: u8, bytes: &[u8]) -> Result<T> {
    let mut r = Reader::header(bytes, tag)?;
    let value = T::decode(&mut r)?;
    r.finish()?;
    Ok(value)
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

    /// A reader over `bytes` past their version byte and type tag, which
    /// must be [`VERSION`] and `expected`.
    pub(crate) fn header(bytes: &'a [u8], expected: u8) -> Result<Self> {
        let mut r = Self::new(bytes);
        r.expect_header(expected)?;
        Ok(r)
    }

    /// Reads the version byte and checks it.
    pub(crate) fn expect_version(&mut self) -> Result<()> {
        let version = self.u8()?;
        if version != VERSION {
            return Err(Error::UnsupportedVersion { found: version });
        }
        Ok(())
    }

    /// Reads the version byte and type tag and checks both, in that order.
    pub(crate) fn expect_header(&mut self, expected: u8) -> Result<()> {
        self.expect_version()?;
        let found = self.u8()?;
        if found != expected {
            return Err(Error::WrongType { expected, found });
        }
        Ok(())
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

    /// The next `N` bytes where they are, not copied.
    pub(crate) fn array_ref<const N: usize>(&mut self) -> Result<&'a [u8; N]> {
        self.take(N)?.try_into().map_err(|_| Error::Truncated)
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

    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
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
    pub(crate) fn rest(&self) -> &'a [u8] {
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
pub(crate) fn write_header<S: Sink>(out: &mut S, tag: u8) {
    out.put(&[VERSION, tag]);
}

impl Codec for u8 {
    fn encode<S: Sink>(&self, out: &mut S) {
        out.put(&[*self]);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        r.u8()
    }
}

impl Codec for u32 {
    fn encode<S: Sink>(&self, out: &mut S) {
        out.put(&self.to_be_bytes());
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        r.u32()
    }
}

impl Codec for u64 {
    fn encode<S: Sink>(&self, out: &mut S) {
        out.put(&self.to_be_bytes());
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        r.u64()
    }
}

/// Raw bytes, taken as they are (fields whose layout gives no rule, SPEC §4).
impl<const N: usize> Codec for [u8; N] {
    fn encode<S: Sink>(&self, out: &mut S) {
        out.put(self);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        r.array()
    }
}

/// A presence flag (0 or 1), then the value if present.
impl<T: Codec> Codec for Option<T> {
    fn encode<S: Sink>(&self, out: &mut S) {
        out.put(&[u8::from(self.is_some())]);
        if let Some(value) = self {
            value.encode(out);
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        if r.flag()? {
            T::decode(r).map(Some)
        } else {
            Ok(None)
        }
    }
}

/// A boxed secret is encoded as the secret; decoding puts it in its own
/// allocation, so that moving the container never copies it.
impl<T: Codec> Codec for Box<T> {
    fn encode<S: Sink>(&self, out: &mut S) {
        (**self).encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        T::decode(r).map(Box::new)
    }
}

/// The count in front of a list: its width on the wire and the counts the
/// format allows (SPEC §4: a count outside them is `InvalidEncoding`,
/// checked before any item is read).
#[derive(Clone, Copy)]
pub(crate) struct Count {
    wide: bool,
    min: usize,
    max: usize,
}

impl Count {
    /// A one-byte count of at most `max`.
    pub(crate) const fn u8(max: usize) -> Self {
        Self {
            wide: false,
            min: 0,
            max,
        }
    }

    /// A two-byte count of at most `max`.
    pub(crate) const fn u16(max: usize) -> Self {
        Self {
            wide: true,
            min: 0,
            max,
        }
    }

    /// The same count, which must also be at least `min`.
    pub(crate) const fn at_least(self, min: usize) -> Self {
        Self { min, ..self }
    }

    /// The same count, which must also be at most `max`.
    pub(crate) const fn at_most(self, max: usize) -> Self {
        Self {
            max: if max < self.max { max } else { self.max },
            ..self
        }
    }

    /// Writes `count`. Counts are bounded far below the width by the
    /// callers' limits; an impossible larger one saturates, which decoding
    /// rejects.
    pub(crate) fn write<S: Sink>(self, out: &mut S, count: usize) {
        if self.wide {
            out.put(&u16::try_from(count).unwrap_or(u16::MAX).to_be_bytes());
        } else {
            out.put(&[u8::try_from(count).unwrap_or(u8::MAX)]);
        }
    }

    /// Reads a count and checks it against the bounds.
    pub(crate) fn read(self, r: &mut Reader<'_>) -> Result<usize> {
        let count = if self.wide {
            usize::from(r.u16()?)
        } else {
            usize::from(r.u8()?)
        };
        if count < self.min || count > self.max {
            return Err(Error::InvalidEncoding);
        }
        Ok(count)
    }
}

/// Writes `count` then each item of a list.
pub(crate) fn write_list<'a, S: Sink, T: Codec + 'a>(
    out: &mut S,
    count: Count,
    items: impl ExactSizeIterator<Item = &'a T>,
) {
    count.write(out, items.len());
    for item in items {
        item.encode(out);
    }
}

/// Reads a list of items with no ordering rule between them.
pub(crate) fn read_list<T: Codec>(r: &mut Reader<'_>, count: Count) -> Result<VecDeque<T>> {
    let count = count.read(r)?;
    let mut items = VecDeque::with_capacity(count);
    for _ in 0..count {
        items.push_back(T::decode(r)?);
    }
    Ok(items)
}

/// Reads a list of entries that each start with a `u32` key (an id or an
/// index): the keys must be strictly increasing and below `end`, each
/// checked as soon as it is read. `entry` reads the rest of an entry.
pub(crate) fn read_sorted(
    r: &mut Reader<'_>,
    count: Count,
    end: u32,
    mut entry: impl FnMut(&mut Reader<'_>, u32) -> Result<()>,
) -> Result<()> {
    let mut previous: Option<u32> = None;
    for _ in 0..count.read(r)? {
        let key = r.u32()?;
        if previous.is_some_and(|p| key <= p) || key >= end {
            return Err(Error::InvalidEncoding);
        }
        previous = Some(key);
        entry(r, key)?;
    }
    Ok(())
}

/// Writes a map from `u32` keys as [`read_map`] reads it: a count, then
/// each key and value in increasing key order.
pub(crate) fn write_map<S: Sink, V: Codec>(out: &mut S, count: Count, map: &BTreeMap<u32, V>) {
    count.write(out, map.len());
    for (key, value) in map {
        key.encode(out);
        value.encode(out);
    }
}

/// Reads [`write_map`]'s output through [`read_sorted`].
pub(crate) fn read_map<V: Codec>(
    r: &mut Reader<'_>,
    count: Count,
    end: u32,
) -> Result<BTreeMap<u32, V>> {
    let mut map = BTreeMap::new();
    read_sorted(r, count, end, |r, key| {
        map.insert(key, V::decode(r)?);
        Ok(())
    })?;
    Ok(map)
}

#[cfg(test)]
mod tests {
    use alloc::vec;

    use super::*;

    /// A one-byte count, then each key with a one-byte value.
    fn entries(count: u8, keys: &[u32]) -> Vec<u8> {
        let mut bytes = vec![count];
        for key in keys {
            bytes.extend_from_slice(&key.to_be_bytes());
            bytes.push(0xaa);
        }
        bytes
    }

    fn read(bytes: &[u8], count: Count, end: u32) -> Result<BTreeMap<u32, [u8; 1]>> {
        let mut r = Reader::new(bytes);
        let map = read_map(&mut r, count, end)?;
        r.finish()?;
        Ok(map)
    }

    #[test]
    fn sorted_keys_strictly_increase_below_the_end() {
        let count = Count::u8(4);
        let map = read(&entries(3, &[0, 5, 9]), count, 10).unwrap();
        assert_eq!(map.keys().copied().collect::<Vec<_>>(), [0, 5, 9]);
        assert!(read(&entries(0, &[]), count, 0).unwrap().is_empty());
        for keys in [[1, 1, 2], [2, 1, 3], [0, 5, 10]] {
            assert_eq!(
                read(&entries(3, &keys), count, 10),
                Err(Error::InvalidEncoding),
                "{keys:?}"
            );
        }
    }

    #[test]
    fn counts_are_checked_before_any_entry_is_read() {
        // The entries are missing: a count out of bounds must fail first.
        for count in [Count::u8(4), Count::u8(9).at_most(4)] {
            assert_eq!(
                read(&entries(5, &[]), count, 10),
                Err(Error::InvalidEncoding)
            );
        }
        let at_least_one = Count::u8(4).at_least(1);
        assert_eq!(
            read(&entries(0, &[]), at_least_one, 10),
            Err(Error::InvalidEncoding)
        );
        assert_eq!(
            read(&entries(2, &[]), Count::u8(4), 10),
            Err(Error::Truncated)
        );
    }

    /// An option of a boxed integer, then raw bytes.
    struct Sample(Option<Box<u32>>, [u8; 3]);

    impl Codec for Sample {
        fn encode<S: Sink>(&self, out: &mut S) {
            self.0.encode(out);
            self.1.encode(out);
        }

        fn decode(r: &mut Reader<'_>) -> Result<Self> {
            Ok(Self(Option::decode(r)?, r.array()?))
        }
    }

    #[test]
    fn encodings_are_allocated_at_their_measured_length() {
        let sample = Sample(Some(Box::new(0x0102_0304)), [9; 3]);
        assert_eq!(encoded_len(&sample), 8);
        let out = to_vec(0x42, &sample);
        assert_eq!(out, [VERSION, 0x42, 1, 1, 2, 3, 4, 9, 9, 9]);
        assert_eq!(out.capacity(), out.len());
        let back: Sample = from_slice(0x42, &out).unwrap();
        assert_eq!((back.0.as_deref(), back.1), (Some(&0x0102_0304), [9; 3]));

        let map: BTreeMap<u32, [u8; 1]> = [(1, [7]), (3, [8])].into_iter().collect();
        let mut bytes = Vec::new();
        write_map(&mut bytes, Count::u16(4), &map);
        assert_eq!(bytes, [0, 2, 0, 0, 0, 1, 7, 0, 0, 0, 3, 8]);
    }
}
