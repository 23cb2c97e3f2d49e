//! The prekey upload (SPEC.md §17.4): the public prekeys a device operation
//! made, in one outbox entry, for the application to hand to its server.

use sotto::{IdentityKey, KemPreKey, KemPreKeyKind, OneTimePreKey, SignedPreKey};

use crate::error::{Error, Result};

/// Version byte of the store's own encodings.
const VERSION: u8 = 0x01;
/// Type byte of a prekey upload.
const TYPE_UPLOAD: u8 = 0x50;
/// The `replace` flag: the server drops every prekey it holds for the
/// device before adding these (a reset after a restore).
const FLAG_REPLACE: u8 = 0x01;

/// Public prekeys to publish: what [`Store::create_device`](crate::Store::create_device)
/// and the prekey operations put in the outbox.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct PreKeyUpload {
    /// The device's identity, under which every signature verifies.
    pub identity: IdentityKey,
    /// The server drops every prekey it holds for the device first.
    pub replace: bool,
    /// A new current signed prekey.
    pub signed_prekey: Option<SignedPreKey>,
    /// A new current last-resort KEM prekey.
    pub last_resort_kem_prekey: Option<KemPreKey>,
    /// New one-time prekeys, ids ascending.
    pub one_time_prekeys: Vec<OneTimePreKey>,
    /// New one-time KEM prekeys, ids ascending.
    pub one_time_kem_prekeys: Vec<KemPreKey>,
}

impl PreKeyUpload {
    pub(crate) fn new(identity: IdentityKey) -> Self {
        Self {
            identity,
            replace: false,
            signed_prekey: None,
            last_resort_kem_prekey: None,
            one_time_prekeys: Vec::new(),
            one_time_kem_prekeys: Vec::new(),
        }
    }

    /// `0x01 0x50 || identity (34) || flags || has_spk [|| spk] ||
    /// has_kem [|| kem] || u16 count || one-time prekeys || u16 count ||
    /// one-time KEM prekeys`, each key in the core's own encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![VERSION, TYPE_UPLOAD];
        out.extend_from_slice(&self.identity.to_bytes());
        out.push(if self.replace { FLAG_REPLACE } else { 0 });
        put_option(&mut out, self.signed_prekey.map(|k| k.to_bytes()));
        put_option(
            &mut out,
            self.last_resort_kem_prekey
                .as_ref()
                .map(KemPreKey::to_bytes),
        );
        put_count(&mut out, self.one_time_prekeys.len());
        for key in &self.one_time_prekeys {
            out.extend_from_slice(&key.to_bytes());
        }
        put_count(&mut out, self.one_time_kem_prekeys.len());
        for key in &self.one_time_kem_prekeys {
            out.extend_from_slice(&key.to_bytes());
        }
        out
    }

    /// Decodes [`PreKeyUpload::to_bytes`] strictly: every key in its
    /// canonical encoding, the KEM prekeys of the right kinds, counts within
    /// the core's bounds, ids strictly ascending, nothing after the end.
    /// Does not verify signatures: a server checks them against the
    /// identity (`SignedPreKey::verify`, `KemPreKey::verify`).
    ///
    /// # Errors
    ///
    /// [`Error::Protocol`] with the core's `Truncated`,
    /// `UnsupportedVersion`, `WrongType`, `InvalidEncoding`,
    /// `InvalidPublicKey` or `TrailingBytes`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader(bytes);
        let version = r.byte()?;
        if version != VERSION {
            return Err(sotto::Error::UnsupportedVersion { found: version }.into());
        }
        let found = r.byte()?;
        if found != TYPE_UPLOAD {
            return Err(sotto::Error::WrongType {
                expected: TYPE_UPLOAD,
                found,
            }
            .into());
        }
        let identity = IdentityKey::from_bytes(r.take(IdentityKey::ENCODED_LEN)?)?;
        let replace = match r.byte()? {
            0 => false,
            FLAG_REPLACE => true,
            _ => return Err(invalid()),
        };
        let signed_prekey = match r.flag()? {
            true => Some(SignedPreKey::from_bytes(
                r.take(SignedPreKey::ENCODED_LEN)?,
            )?),
            false => None,
        };
        let last_resort_kem_prekey = match r.flag()? {
            true => Some(kem(&mut r, KemPreKeyKind::LastResort)?),
            false => None,
        };
        let count = r.count(sotto::MAX_ONE_TIME_PREKEYS)?;
        let mut one_time_prekeys = Vec::with_capacity(count);
        for _ in 0..count {
            let key = OneTimePreKey::from_bytes(r.take(OneTimePreKey::ENCODED_LEN)?)?;
            if one_time_prekeys
                .last()
                .is_some_and(|prev: &OneTimePreKey| prev.id() >= key.id())
            {
                return Err(invalid());
            }
            one_time_prekeys.push(key);
        }
        let count = r.count(sotto::MAX_ONE_TIME_KEM_PREKEYS)?;
        let mut one_time_kem_prekeys = Vec::with_capacity(count);
        for _ in 0..count {
            let key = kem(&mut r, KemPreKeyKind::OneTime)?;
            if one_time_kem_prekeys
                .last()
                .is_some_and(|prev: &KemPreKey| prev.id() >= key.id())
            {
                return Err(invalid());
            }
            one_time_kem_prekeys.push(key);
        }
        if !r.0.is_empty() {
            return Err(sotto::Error::TrailingBytes.into());
        }
        Ok(Self {
            identity,
            replace,
            signed_prekey,
            last_resort_kem_prekey,
            one_time_prekeys,
            one_time_kem_prekeys,
        })
    }

    /// Whether it carries nothing to publish.
    pub fn is_empty(&self) -> bool {
        !self.replace
            && self.signed_prekey.is_none()
            && self.last_resort_kem_prekey.is_none()
            && self.one_time_prekeys.is_empty()
            && self.one_time_kem_prekeys.is_empty()
    }
}

fn invalid() -> Error {
    sotto::Error::InvalidEncoding.into()
}

fn kem(r: &mut Reader<'_>, kind: KemPreKeyKind) -> Result<KemPreKey> {
    let key = KemPreKey::from_bytes(r.take(KemPreKey::ENCODED_LEN)?)?;
    if key.kind() != kind {
        return Err(invalid());
    }
    Ok(key)
}

fn put_option(out: &mut Vec<u8>, bytes: Option<Vec<u8>>) {
    match bytes {
        Some(bytes) => {
            out.push(1);
            out.extend_from_slice(&bytes);
        }
        None => out.push(0),
    }
}

fn put_count(out: &mut Vec<u8>, n: usize) {
    // Counts are bounded by the core's prekey limits, far below u16::MAX.
    out.extend_from_slice(&u16::try_from(n).unwrap_or(u16::MAX).to_be_bytes());
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(sotto::Error::Truncated.into());
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8> {
        let b = self.take(1)?;
        b.first()
            .copied()
            .ok_or_else(|| sotto::Error::Truncated.into())
    }

    fn flag(&mut self) -> Result<bool> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(invalid()),
        }
    }

    fn count(&mut self, max: usize) -> Result<usize> {
        let b = self.take(2)?;
        let n = usize::from(u16::from_be_bytes([
            b.first().copied().unwrap_or(0),
            b.get(1).copied().unwrap_or(0),
        ]));
        if n > max {
            return Err(invalid());
        }
        Ok(n)
    }
}
