//! SPEC.md §4 decoding, one field at a time, recording where each field
//! sits: every decoder of the model reads through a [`Reader`], and the
//! named byte ranges it records ([`Layout`]) are how tests, the simulation
//! and the generator find and tamper with fields. A layout is therefore
//! written once, as the decoder of its encoding.

use std::fmt;
use std::ops::Range;

use super::error::{Refusal, refusal, refusal_with};
use super::primitives::{EK_LEN, VERSION, a32, ed25519_public_ok, kem_ek_ok, x25519_public_ok};

/// Named byte ranges of one encoded value, in reading order. Names of
/// repeated or nested parts carry a prefix: `chains[1].next`,
/// `ratchet.salt`, `identity.dh`.
#[derive(Clone, Default)]
pub struct Layout {
    fields: Vec<(String, Range<usize>)>,
}

impl fmt::Debug for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.fields.iter().map(|(n, r)| (n, r)))
            .finish()
    }
}

impl Layout {
    /// The range of a field, if the value has it.
    pub fn get(&self, name: &str) -> Option<Range<usize>> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, r)| r.clone())
    }

    /// The range of a field; panics naming the fields there are.
    pub fn range(&self, name: &str) -> Range<usize> {
        self.get(name).unwrap_or_else(|| {
            let names: Vec<&str> = self.names().collect();
            panic!("no field {name:?}; the fields are {names:?}")
        })
    }

    /// Where a field starts.
    pub fn start(&self, name: &str) -> usize {
        self.range(name).start
    }

    /// Where a field ends.
    pub fn end_of(&self, name: &str) -> usize {
        self.range(name).end
    }

    /// The field names, in reading order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|(n, _)| n.as_str())
    }

    /// Every field, in reading order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Range<usize>)> {
        self.fields.iter().map(|(n, r)| (n.as_str(), r.clone()))
    }

    /// Where the last field ends: the encoded length.
    pub fn len(&self) -> usize {
        self.fields.iter().map(|(_, r)| r.end).max().unwrap_or(0)
    }

    /// Whether no field was read.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The fields under `prefix` (e.g. `"ratchet."`), with the prefix
    /// removed and their offsets unchanged.
    pub fn scoped(&self, prefix: &str) -> Layout {
        Layout {
            fields: self
                .fields
                .iter()
                .filter_map(|(n, r)| n.strip_prefix(prefix).map(|s| (s.to_owned(), r.clone())))
                .collect(),
        }
    }

    /// The bytes of a field.
    pub fn slice<'a>(&self, bytes: &'a [u8], name: &str) -> &'a [u8] {
        &bytes[self.range(name)]
    }

    /// A 32-byte field.
    pub fn a32(&self, bytes: &[u8], name: &str) -> [u8; 32] {
        a32(self.slice(bytes, name))
    }

    /// A u32 field.
    pub fn u32(&self, bytes: &[u8], name: &str) -> u32 {
        u32::from_be_bytes(self.slice(bytes, name).try_into().expect("a u32 field"))
    }

    /// Overwrites a field; `value` must have the field's length.
    pub fn put(&self, bytes: &mut [u8], name: &str, value: &[u8]) {
        let range = self.range(name);
        assert_eq!(range.len(), value.len(), "field {name:?} length");
        bytes[range].copy_from_slice(value);
    }

    /// Overwrites a u32 field.
    pub fn put_u32(&self, bytes: &mut [u8], name: &str, value: u32) {
        self.put(bytes, name, &value.to_be_bytes());
    }

    /// Overwrites a u16 field.
    pub fn put_u16(&self, bytes: &mut [u8], name: &str, value: u16) {
        self.put(bytes, name, &value.to_be_bytes());
    }

    /// Overwrites a one-byte field.
    pub fn put_u8(&self, bytes: &mut [u8], name: &str, value: u8) {
        self.put(bytes, name, &[value]);
    }

    /// XORs one byte of a field (at `offset` within it) with `mask`.
    pub fn flip(&self, bytes: &mut [u8], name: &str, offset: usize, mask: u8) {
        let range = self.range(name);
        assert!(offset < range.len(), "offset {offset} outside {name:?}");
        bytes[range.start + offset] ^= mask;
    }
}

/// A §4 reader: each field is checked as soon as it is read, and recorded.
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    prefix: String,
    scopes: Vec<usize>,
    layout: Layout,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            pos: 0,
            prefix: String::new(),
            scopes: Vec::new(),
            layout: Layout::default(),
        }
    }

    /// A reader past the version and type tag, which must be `ty`.
    ///
    /// # Errors
    ///
    /// `Truncated` if the input ends first; the field's own error
    /// (`UnsupportedVersion`, `WrongType`, `InvalidEncoding`,
    /// `InvalidPublicKey`, `TrailingBytes`) if its value breaks SPEC.md §4.
    pub fn header(bytes: &'a [u8], ty: u8) -> Result<Self, Refusal> {
        let mut r = Self::new(bytes);
        r.version_and_type(ty)?;
        Ok(r)
    }

    /// The version (`UnsupportedVersion`) and the type tag (`WrongType`).
    ///
    /// # Errors
    ///
    /// `Truncated` if the input ends first; the field's own error
    /// (`UnsupportedVersion`, `WrongType`, `InvalidEncoding`,
    /// `InvalidPublicKey`, `TrailingBytes`) if its value breaks SPEC.md §4.
    pub fn version_and_type(&mut self, ty: u8) -> Result<(), Refusal> {
        let v = self.u8("version")?;
        if v != VERSION {
            return Err(refusal_with(
                "UnsupportedVersion",
                serde_json::json!({ "found": v }),
            ));
        }
        let t = self.u8("type")?;
        if t != ty {
            return Err(refusal_with(
                "WrongType",
                serde_json::json!({ "expected": ty, "found": t }),
            ));
        }
        Ok(())
    }

    /// Names of the fields read from now on start with `scope` and a dot,
    /// until [`Reader::leave`].
    pub fn enter(&mut self, scope: impl fmt::Display) {
        self.scopes.push(self.prefix.len());
        self.prefix.push_str(&format!("{scope}."));
    }

    /// Ends the innermost scope.
    pub fn leave(&mut self) {
        let len = self.scopes.pop().expect("a scope to leave");
        self.prefix.truncate(len);
    }

    fn record(&mut self, name: &str, range: Range<usize>) {
        self.layout
            .fields
            .push((format!("{}{name}", self.prefix), range));
    }

    /// `n` bytes (`Truncated` if fewer remain).
    ///
    /// # Errors
    ///
    /// `Truncated` if the input ends first; the field's own error
    /// (`UnsupportedVersion`, `WrongType`, `InvalidEncoding`,
    /// `InvalidPublicKey`, `TrailingBytes`) if its value breaks SPEC.md §4.
    pub fn take(&mut self, name: &str, n: usize) -> Result<&'a [u8], Refusal> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| refusal("Truncated"))?;
        let out = &self.bytes[self.pos..end];
        self.record(name, self.pos..end);
        self.pos = end;
        Ok(out)
    }

    /// Every byte left (possibly none).
    pub fn rest(&mut self, name: &str) -> &'a [u8] {
        let out = &self.bytes[self.pos..];
        self.record(name, self.pos..self.bytes.len());
        self.pos = self.bytes.len();
        out
    }

    /// How many bytes are left.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// A 32-byte value that is not validated.
    ///
    /// # Errors
    ///
    /// `Truncated` if the input ends first; the field's own error
    /// (`UnsupportedVersion`, `WrongType`, `InvalidEncoding`,
    /// `InvalidPublicKey`, `TrailingBytes`) if its value breaks SPEC.md §4.
    pub fn a32(&mut self, name: &str) -> Result<[u8; 32], Refusal> {
        Ok(a32(self.take(name, 32)?))
    }

    /// A u8.
    ///
    /// # Errors
    ///
    /// `Truncated` if the input ends first; the field's own error
    /// (`UnsupportedVersion`, `WrongType`, `InvalidEncoding`,
    /// `InvalidPublicKey`, `TrailingBytes`) if its value breaks SPEC.md §4.
    pub fn u8(&mut self, name: &str) -> Result<u8, Refusal> {
        Ok(self.take(name, 1)?[0])
    }

    /// A big-endian u16.
    ///
    /// # Errors
    ///
    /// `Truncated` if the input ends first; the field's own error
    /// (`UnsupportedVersion`, `WrongType`, `InvalidEncoding`,
    /// `InvalidPublicKey`, `TrailingBytes`) if its value breaks SPEC.md §4.
    pub fn u16(&mut self, name: &str) -> Result<u16, Refusal> {
        Ok(u16::from_be_bytes(
            self.take(name, 2)?.try_into().expect("2"),
        ))
    }

    /// A big-endian u32.
    ///
    /// # Errors
    ///
    /// `Truncated` if the input ends first; the field's own error
    /// (`UnsupportedVersion`, `WrongType`, `InvalidEncoding`,
    /// `InvalidPublicKey`, `TrailingBytes`) if its value breaks SPEC.md §4.
    pub fn u32(&mut self, name: &str) -> Result<u32, Refusal> {
        Ok(u32::from_be_bytes(
            self.take(name, 4)?.try_into().expect("4"),
        ))
    }

    /// A presence flag: 0 or 1, else `InvalidEncoding`.
    ///
    /// # Errors
    ///
    /// `Truncated` if the input ends first; the field's own error
    /// (`UnsupportedVersion`, `WrongType`, `InvalidEncoding`,
    /// `InvalidPublicKey`, `TrailingBytes`) if its value breaks SPEC.md §4.
    pub fn flag(&mut self, name: &str) -> Result<bool, Refusal> {
        match self.u8(name)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(refusal("InvalidEncoding")),
        }
    }

    /// A canonical X25519 public key (§2), else `InvalidPublicKey`.
    ///
    /// # Errors
    ///
    /// `Truncated` if the input ends first; the field's own error
    /// (`UnsupportedVersion`, `WrongType`, `InvalidEncoding`,
    /// `InvalidPublicKey`, `TrailingBytes`) if its value breaks SPEC.md §4.
    pub fn x(&mut self, name: &str) -> Result<[u8; 32], Refusal> {
        let k = self.a32(name)?;
        if x25519_public_ok(&k) {
            Ok(k)
        } else {
            Err(refusal("InvalidPublicKey"))
        }
    }

    /// A valid Ed25519 public key (§2), else `InvalidPublicKey`.
    ///
    /// # Errors
    ///
    /// `Truncated` if the input ends first; the field's own error
    /// (`UnsupportedVersion`, `WrongType`, `InvalidEncoding`,
    /// `InvalidPublicKey`, `TrailingBytes`) if its value breaks SPEC.md §4.
    pub fn ed(&mut self, name: &str) -> Result<[u8; 32], Refusal> {
        let k = self.a32(name)?;
        if ed25519_public_ok(&k) {
            Ok(k)
        } else {
            Err(refusal("InvalidPublicKey"))
        }
    }

    /// An identity key (§5.1): an Ed25519 key, checked when read.
    ///
    /// # Errors
    ///
    /// `Truncated`, `InvalidPublicKey`.
    pub fn ik(&mut self, name: &str) -> Result<[u8; 32], Refusal> {
        self.ed(name)
    }

    /// An ML-KEM-1024 encapsulation key that passes the FIPS 203 check (§2),
    /// else `InvalidPublicKey`.
    ///
    /// # Errors
    ///
    /// `Truncated`, `InvalidPublicKey`.
    pub fn ek(&mut self, name: &str) -> Result<Vec<u8>, Refusal> {
        let ek = self.take(name, EK_LEN)?;
        if kem_ek_ok(ek) {
            Ok(ek.to_vec())
        } else {
            Err(refusal("InvalidPublicKey"))
        }
    }

    /// A u64.
    ///
    /// # Errors
    ///
    /// `Truncated`.
    pub fn u64(&mut self, name: &str) -> Result<u64, Refusal> {
        Ok(u64::from_be_bytes(
            self.take(name, 8)?.try_into().expect("8"),
        ))
    }

    /// The position of the next field.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Records the fields of a value decoded separately from
    /// `bytes[offset..]` (an embedded encoding), under the current scope.
    pub fn adopt(&mut self, offset: usize, inner: &Layout) {
        for (n, r) in inner.iter() {
            self.record(n, r.start + offset..r.end + offset);
        }
    }

    /// After the last field: `TrailingBytes` if anything is left.
    ///
    /// # Errors
    ///
    /// `Truncated` if the input ends first; the field's own error
    /// (`UnsupportedVersion`, `WrongType`, `InvalidEncoding`,
    /// `InvalidPublicKey`, `TrailingBytes`) if its value breaks SPEC.md §4.
    pub fn end(&self) -> Result<(), Refusal> {
        if self.pos == self.bytes.len() {
            Ok(())
        } else {
            Err(refusal("TrailingBytes"))
        }
    }

    /// What was read.
    pub fn into_layout(self) -> Layout {
        self.layout
    }
}

/// Builds `bytes` with `edit` applied to a copy.
pub fn with(bytes: &[u8], edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut b = bytes.to_vec();
    edit(&mut b);
    b
}
