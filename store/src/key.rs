//! The application's storage key and what the store derives from it
//! (SPEC.md §17.2): the key that seals every state with sotto's own sealing,
//! the key of the value MACs, the key of the inbox's sealed plaintexts, and
//! the key-check value that tells a wrong key from a damaged database.

use core::fmt;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{Error, Result};
use crate::rng;

type HmacSha256 = Hmac<Sha256>;

/// Labels of the store's own KDF uses, one per use (SPEC §17.2).
mod label {
    pub(super) const STATE_KEY: &[u8] = b"sotto-store v1 state key";
    pub(super) const VALUE_MAC: &[u8] = b"sotto-store v1 value mac";
    pub(super) const INBOX_KEY: &[u8] = b"sotto-store v1 inbox key";
    pub(super) const KEY_CHECK: &[u8] = b"sotto-store v1 key check";
    pub(super) const INBOX_ENTRY: &[u8] = b"sotto-store v1 inbox entry";
}

/// Version byte of a sealed inbox entry.
const ENTRY_VERSION: u8 = 0x01;
const ENTRY_SALT_LEN: usize = 32;
const TAG_LEN: usize = 16;

/// The 32-byte key the application supplies (for example from the platform
/// keystore). Zeroized on drop; never printed.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct StoreKey([u8; 32]);

impl StoreKey {
    /// Wraps 32 key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A new random key from the operating system.
    ///
    /// # Errors
    ///
    /// [`Error::Protocol`] with `RandomnessUnavailable` if the OS RNG fails.
    pub fn generate() -> Result<Self> {
        let mut bytes = [0u8; 32];
        rng::fill(&mut bytes)?;
        let key = Self(bytes);
        bytes.zeroize();
        Ok(key)
    }
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreKey(..)")
    }
}

/// The keys derived from a [`StoreKey`].
pub(crate) struct Keys {
    pub(crate) state: sotto::StorageKey,
    mac: Zeroizing<[u8; 32]>,
    inbox: Zeroizing<[u8; 32]>,
    check: Zeroizing<[u8; 32]>,
}

fn derive(ikm: &[u8; 32], info: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's limit: expand cannot fail.
    let _ = Hkdf::<Sha256>::new(None, ikm).expand(info, out.as_mut());
    out
}

fn hmac(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length: new_from_slice cannot fail.
    let Ok(mut mac) = <HmacSha256 as KeyInit>::new_from_slice(key) else {
        return [0u8; 32];
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

impl Keys {
    pub(crate) fn new(key: &StoreKey) -> Self {
        let state = derive(&key.0, label::STATE_KEY);
        Self {
            state: sotto::StorageKey::from_bytes(*state),
            mac: derive(&key.0, label::VALUE_MAC),
            inbox: derive(&key.0, label::INBOX_KEY),
            check: derive(&key.0, label::KEY_CHECK),
        }
    }

    /// The key-check value stored in a database whose id is `db_id`.
    pub(crate) fn check_value(&self, db_id: &[u8]) -> [u8; 32] {
        hmac(&self.check, &[label::KEY_CHECK, db_id])
    }

    /// Whether `stored` is this key's check value, in constant time.
    pub(crate) fn check_matches(&self, db_id: &[u8], stored: &[u8]) -> bool {
        bool::from(self.check_value(db_id).as_slice().ct_eq(stored))
    }

    /// The MAC of a record's columns (SPEC §17.3): kind, generation,
    /// version, length and sealed value, not the name, so that an intact
    /// value under another name is told apart from altered bytes.
    pub(crate) fn value_mac(
        &self,
        kind: u8,
        generation: u64,
        version: u64,
        value: &[u8],
    ) -> [u8; 32] {
        let len = u64::try_from(value.len()).unwrap_or(u64::MAX);
        hmac(
            &self.mac,
            &[
                label::VALUE_MAC,
                &[kind],
                &generation.to_be_bytes(),
                &version.to_be_bytes(),
                &len.to_be_bytes(),
                value,
            ],
        )
    }

    /// Whether `mac` is the MAC of these columns, in constant time.
    pub(crate) fn value_mac_matches(
        &self,
        kind: u8,
        generation: u64,
        version: u64,
        value: &[u8],
        mac: &[u8],
    ) -> bool {
        bool::from(
            self.value_mac(kind, generation, version, value)
                .as_slice()
                .ct_eq(mac),
        )
    }

    /// Seals an inbox plaintext bound to `aad` (SPEC §17.4): `0x01 || salt
    /// (32) || AES-256-GCM(plaintext) || tag`, key and nonce from
    /// HKDF(salt, inbox key, label).
    pub(crate) fn seal_entry(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut salt = [0u8; ENTRY_SALT_LEN];
        rng::fill(&mut salt)?;
        let (key, nonce) = self.entry_key(&salt);
        let mut buffer = Zeroizing::new(plaintext.to_vec());
        let cipher = Aes256Gcm::new(&(*key).into());
        let tag = cipher
            .encrypt_inout_detached(&Nonce::from(nonce), aad, buffer.as_mut_slice().into())
            .map_err(|_| Error::InvalidInput)?;
        let mut out = Vec::with_capacity(1 + ENTRY_SALT_LEN + buffer.len() + TAG_LEN);
        out.push(ENTRY_VERSION);
        out.extend_from_slice(&salt);
        out.extend_from_slice(&buffer);
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Opens [`Keys::seal_entry`]'s output; `None` if it does not open.
    pub(crate) fn open_entry(&self, aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let (&version, rest) = sealed.split_first()?;
        if version != ENTRY_VERSION || rest.len() < ENTRY_SALT_LEN + TAG_LEN {
            return None;
        }
        let (salt, rest) = rest.split_at(ENTRY_SALT_LEN);
        let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
        let salt: [u8; ENTRY_SALT_LEN] = salt.try_into().ok()?;
        let tag: [u8; TAG_LEN] = tag.try_into().ok()?;
        let (key, nonce) = self.entry_key(&salt);
        let mut buffer = Zeroizing::new(body.to_vec());
        let cipher = Aes256Gcm::new(&(*key).into());
        cipher
            .decrypt_inout_detached(
                &Nonce::from(nonce),
                aad,
                buffer.as_mut_slice().into(),
                &Tag::from(tag),
            )
            .ok()?;
        Some(buffer)
    }

    fn entry_key(&self, salt: &[u8; ENTRY_SALT_LEN]) -> (Zeroizing<[u8; 32]>, [u8; 12]) {
        let mut okm = Zeroizing::new([0u8; 44]);
        // 44 bytes: expand cannot fail.
        let _ = Hkdf::<Sha256>::new(Some(salt), self.inbox.as_slice())
            .expand(label::INBOX_ENTRY, okm.as_mut());
        let mut key = Zeroizing::new([0u8; 32]);
        let mut nonce = [0u8; 12];
        let (k, n) = okm.split_at(32);
        key.copy_from_slice(k);
        nonce.copy_from_slice(n);
        (key, nonce)
    }
}
