//! Saving and restoring state: versioned, strict encodings, and optional
//! sealing (encryption at rest) under a caller-supplied key.
//!
//! The plain encodings contain secret keys: [`Session::to_bytes`] and
//! [`Device::to_bytes`] return them in a buffer that is zeroized on drop.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::fmt;

use rand_core::CryptoRng;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::codec::{Reader, tag, write_count_u8, write_count_u16, write_flag, write_header};
use crate::crypto::{self, AEAD_TAG_LEN, label};
use crate::device::{
    Device, MAX_ONE_TIME_PREKEYS, MAX_RECENT_BASE_KEYS, MAX_SIGNED_PREKEYS, SignedPreKeyPair,
};
use crate::error::{Error, Result};
use crate::keys::{IdentityKey, IdentityKeyPair, SignedPreKey};
use crate::ratchet::chain::{ChainKey, MessageKey};
use crate::ratchet::root::RootKey;
use crate::ratchet::session::{PendingPreKey, Role, SendingChain, Session, SessionState};
use crate::ratchet::skipped::{
    MAX_RECEIVING_CHAINS, MAX_SKIPPED_KEYS, MAX_SKIPPED_KEYS_PER_CHAIN, ReceivingChain,
    ReceivingChains,
};
use crate::x3dh;

/// Largest saved state (plain or sealed) that will be parsed: 1 MiB. Every
/// state this library writes is far smaller; see SPEC.md for the exact bounds.
pub const MAX_STATE_LEN: usize = 1 << 20;

/// Length of the random salt in a sealed state.
const SEALED_SALT_LEN: usize = 32;

/// A 32-byte key for sealing saved state, supplied by the caller (for
/// example from the platform keystore). Zeroized on drop; never printed.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct StorageKey([u8; 32]);

impl StorageKey {
    /// Wraps 32 key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl fmt::Debug for StorageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StorageKey(..)")
    }
}

/// Seals a plain state encoding: version, type 0x30, the inner type tag,
/// 32 random salt bytes, then the AES-256-GCM ciphertext and tag. Key and
/// nonce are HKDF-SHA256(salt, storage key, "sotto v1 sealed state", 44);
/// the associated data is the 35 bytes before the ciphertext.
pub(crate) fn seal<R: CryptoRng + ?Sized>(
    key: &StorageKey,
    rng: &mut R,
    plain: &[u8],
) -> Result<Vec<u8>> {
    let inner_tag = *plain.get(1).ok_or(Error::Truncated)?;
    let mut salt = [0u8; SEALED_SALT_LEN];
    rng.fill_bytes(&mut salt);
    let mut out = Vec::with_capacity(3 + SEALED_SALT_LEN + plain.len() + AEAD_TAG_LEN);
    write_header(&mut out, tag::SEALED_STATE);
    out.push(inner_tag);
    out.extend_from_slice(&salt);
    let aad_len = out.len();
    out.extend_from_slice(plain);
    let (aead_key, nonce) = crypto::aead_key_nonce(&salt, &key.0, label::SEALED_STATE);
    let (aad, body) = out.split_at_mut(aad_len);
    let tag = crypto::aead_seal(&aead_key, &nonce, aad, body)?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Opens [`seal`]'s output, checking that it holds a state of type `expected`.
pub(crate) fn unseal(key: &StorageKey, expected: u8, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if sealed.len() > MAX_STATE_LEN {
        return Err(Error::TooLarge);
    }
    let mut r = Reader::header(sealed, tag::SEALED_STATE)?;
    let inner_tag = r.u8()?;
    if inner_tag != expected {
        return Err(Error::WrongType {
            expected,
            found: inner_tag,
        });
    }
    let salt: [u8; SEALED_SALT_LEN] = r.array()?;
    let body = r.rest();
    let (ciphertext, tag) = body
        .split_last_chunk::<AEAD_TAG_LEN>()
        .ok_or(Error::Truncated)?;
    let aad = sealed.get(..3 + SEALED_SALT_LEN).ok_or(Error::Truncated)?;
    let (aead_key, nonce) = crypto::aead_key_nonce(&salt, &key.0, label::SEALED_STATE);
    let mut plain = Zeroizing::new(ciphertext.to_vec());
    crypto::aead_open(&aead_key, &nonce, aad, &mut plain, tag)?;
    Ok(plain)
}

fn check_len(bytes: &[u8]) -> Result<()> {
    if bytes.len() > MAX_STATE_LEN {
        Err(Error::TooLarge)
    } else {
        Ok(())
    }
}

fn role_byte(role: Role) -> u8 {
    match role {
        Role::Initiator => 0,
        Role::Responder => 1,
    }
}

/// The exact length of a session's plain encoding (§10.2 of SPEC.md).
fn session_state_len(s: &SessionState) -> usize {
    let pending = s
        .pending_prekey
        .map_or(0, |p| 4 + 1 + p.one_time_prekey_id.map_or(0, |_| 4));
    let sending = s.sending.as_ref().map_or(0, |_| 32 + 32 + 4);
    let chains: usize = s
        .receiving
        .chains
        .iter()
        .map(|c| 32 + 1 + c.chain_key.as_ref().map_or(0, |_| 32) + 4 + 2 + c.skipped.len() * 36)
        .sum();
    2 + 1 + 64 + 64 + 32 + 1 + pending + 32 + 32 + 1 + sending + 4 + 1 + chains
}

impl Session {
    /// The session's plain encoding (it contains secret keys). See SPEC.md
    /// for the layout.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let s = &*self.0;
        // Exact capacity: a reallocation would free a copy of the secrets
        // without zeroizing it.
        let len = session_state_len(s);
        let mut out = Zeroizing::new(Vec::with_capacity(len));
        write_header(&mut out, tag::SESSION_STATE);
        out.push(role_byte(s.role));
        s.local_identity.write(&mut out);
        s.remote_identity.write(&mut out);
        out.extend_from_slice(&s.base_key);
        write_flag(&mut out, s.pending_prekey.is_some());
        if let Some(p) = &s.pending_prekey {
            out.extend_from_slice(&p.signed_prekey_id.to_be_bytes());
            write_flag(&mut out, p.one_time_prekey_id.is_some());
            if let Some(id) = p.one_time_prekey_id {
                out.extend_from_slice(&id.to_be_bytes());
            }
        }
        out.extend_from_slice(s.root_key.as_bytes());
        out.extend_from_slice(s.remote_ratchet_key.as_bytes());
        write_flag(&mut out, s.sending.is_some());
        if let Some(s) = &s.sending {
            out.extend_from_slice(s.secret.as_bytes());
            out.extend_from_slice(s.chain_key.as_bytes());
            out.extend_from_slice(&s.next.to_be_bytes());
        }
        out.extend_from_slice(&s.previous_sending_length.to_be_bytes());
        write_count_u8(&mut out, s.receiving.chains.len());
        for c in &s.receiving.chains {
            out.extend_from_slice(&c.ratchet_key);
            write_flag(&mut out, c.chain_key.is_some());
            if let Some(ck) = &c.chain_key {
                out.extend_from_slice(ck.as_bytes());
            }
            out.extend_from_slice(&c.next.to_be_bytes());
            write_count_u16(&mut out, c.skipped.len());
            for (index, key) in &c.skipped {
                out.extend_from_slice(&index.to_be_bytes());
                out.extend_from_slice(key.as_bytes());
            }
        }
        debug_assert_eq!(out.len(), len);
        out
    }

    /// Restores [`Session::to_bytes`] strictly.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        check_len(bytes)?;
        let mut r = Reader::header(bytes, tag::SESSION_STATE)?;
        let role = match r.u8()? {
            0 => Role::Initiator,
            1 => Role::Responder,
            _ => return Err(Error::InvalidEncoding),
        };
        let local_identity = IdentityKey::read(&mut r)?;
        let remote_identity = IdentityKey::read(&mut r)?;
        let base_key = r.array()?;
        let pending_prekey = if r.flag()? {
            if role != Role::Initiator {
                return Err(Error::InvalidEncoding);
            }
            let signed_prekey_id = r.u32()?;
            let one_time_prekey_id = if r.flag()? { Some(r.u32()?) } else { None };
            Some(PendingPreKey {
                signed_prekey_id,
                one_time_prekey_id,
            })
        } else {
            None
        };
        let root_key = RootKey::from_bytes(r.array()?);
        let remote_ratchet_key = crypto::x25519_public(r.array()?)?;
        let sending = if r.flag()? {
            let secret = StaticSecret::from(r.array::<32>()?);
            let chain_key = ChainKey::from_bytes(r.array()?);
            let next = r.u32()?;
            Some(SendingChain {
                public: None,
                secret,
                chain_key,
                next,
            })
        } else {
            None
        };
        let previous_sending_length = r.u32()?;
        let chain_count = usize::from(r.u8()?);
        if chain_count > MAX_RECEIVING_CHAINS {
            return Err(Error::InvalidEncoding);
        }
        let mut chains = VecDeque::with_capacity(chain_count);
        let mut total = 0usize;
        for i in 0..chain_count {
            let ratchet_key = r.array()?;
            // Exactly the newest chain keeps its chain key; checked as soon
            // as the flag is read (SPEC §4).
            let has_chain_key = r.flag()?;
            if has_chain_key != (i + 1 == chain_count) {
                return Err(Error::InvalidEncoding);
            }
            let chain_key = if has_chain_key {
                Some(Box::new(ChainKey::from_bytes(r.array()?)))
            } else {
                None
            };
            let next = r.u32()?;
            let count = usize::from(r.u16()?);
            if count > MAX_SKIPPED_KEYS_PER_CHAIN {
                return Err(Error::InvalidEncoding);
            }
            total += count;
            if total > MAX_SKIPPED_KEYS {
                return Err(Error::InvalidEncoding);
            }
            let mut skipped = BTreeMap::new();
            let mut previous: Option<u32> = None;
            for _ in 0..count {
                let index = r.u32()?;
                if previous.is_some_and(|p| index <= p) || index >= next {
                    return Err(Error::InvalidEncoding);
                }
                let key = Box::new(MessageKey::from_bytes(r.array()?));
                previous = Some(index);
                skipped.insert(index, key);
            }
            chains.push_back(ReceivingChain {
                ratchet_key,
                chain_key,
                next,
                skipped,
            });
        }
        r.finish()?;
        if chains
            .back()
            .is_some_and(|c| c.ratchet_key != remote_ratchet_key.to_bytes())
        {
            return Err(Error::InvalidEncoding);
        }
        let associated_data = match role {
            Role::Initiator => x3dh::associated_data(&local_identity, &remote_identity),
            Role::Responder => x3dh::associated_data(&remote_identity, &local_identity),
        };
        Ok(Self(Box::new(SessionState {
            role,
            local_identity,
            remote_identity,
            base_key,
            pending_prekey,
            associated_data,
            root_key,
            remote_ratchet_key,
            sending,
            previous_sending_length,
            receiving: ReceivingChains { chains },
        })))
    }

    /// The session encrypted at rest under `key` (draws 32 bytes of salt).
    pub fn seal<R: CryptoRng + ?Sized>(&self, key: &StorageKey, rng: &mut R) -> Result<Vec<u8>> {
        seal(key, rng, &self.to_bytes())
    }

    /// Opens and restores [`Session::seal`]'s output.
    pub fn unseal(sealed: &[u8], key: &StorageKey) -> Result<Self> {
        Self::from_bytes(&unseal(key, tag::SESSION_STATE, sealed)?)
    }
}

impl Device {
    /// The device's plain encoding (it contains secret keys). See SPEC.md
    /// for the layout.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        // Exact capacity, as for sessions.
        let len = 2
            + 32
            + 32
            + 4
            + 4
            + 1
            + (self.old_signed_prekeys.len() + 1) * (4 + 32 + 64)
            + 2
            + self.one_time_prekeys.len() * (4 + 32)
            + 2
            + self.recent_base_keys.len() * 32;
        let mut out = Zeroizing::new(Vec::with_capacity(len));
        write_header(&mut out, tag::DEVICE_STATE);
        out.extend_from_slice(self.identity.signing().as_bytes());
        out.extend_from_slice(self.identity.dh().as_bytes());
        out.extend_from_slice(&self.next_signed_prekey_id.to_be_bytes());
        out.extend_from_slice(&self.next_one_time_prekey_id.to_be_bytes());
        write_count_u8(&mut out, self.old_signed_prekeys.len() + 1);
        for spk in self.old_signed_prekeys.iter().chain([&self.signed_prekey]) {
            out.extend_from_slice(&spk.public.id().to_be_bytes());
            out.extend_from_slice(spk.secret.as_bytes());
            out.extend_from_slice(spk.public.signature());
        }
        write_count_u16(&mut out, self.one_time_prekeys.len());
        for (id, secret) in &self.one_time_prekeys {
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(secret.as_bytes());
        }
        write_count_u16(&mut out, self.recent_base_keys.len());
        for key in &self.recent_base_keys {
            out.extend_from_slice(key);
        }
        debug_assert_eq!(out.len(), len);
        out
    }

    /// Restores [`Device::to_bytes`] strictly.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        check_len(bytes)?;
        let mut r = Reader::header(bytes, tag::DEVICE_STATE)?;
        let seed = Zeroizing::new(r.array::<32>()?);
        let identity = Box::new(IdentityKeyPair::from_secret_bytes(&seed, r.array()?));
        let next_signed_prekey_id = r.u32()?;
        let next_one_time_prekey_id = r.u32()?;
        let spk_count = usize::from(r.u8()?);
        if spk_count == 0 || spk_count > MAX_SIGNED_PREKEYS {
            return Err(Error::InvalidEncoding);
        }
        let mut signed = VecDeque::with_capacity(spk_count);
        let mut previous: Option<u32> = None;
        for _ in 0..spk_count {
            let id = r.u32()?;
            if previous.is_some_and(|p| id <= p) || id >= next_signed_prekey_id {
                return Err(Error::InvalidEncoding);
            }
            previous = Some(id);
            let secret = Box::new(StaticSecret::from(r.array::<32>()?));
            let signature = r.array()?;
            let public = SignedPreKey::from_parts(id, PublicKey::from(&*secret), signature);
            signed.push_back(SignedPreKeyPair { secret, public });
        }
        let opk_count = usize::from(r.u16()?);
        if opk_count > MAX_ONE_TIME_PREKEYS {
            return Err(Error::InvalidEncoding);
        }
        let mut one_time_prekeys = BTreeMap::new();
        let mut previous: Option<u32> = None;
        for _ in 0..opk_count {
            let id = r.u32()?;
            if previous.is_some_and(|p| id <= p) || id >= next_one_time_prekey_id {
                return Err(Error::InvalidEncoding);
            }
            previous = Some(id);
            one_time_prekeys.insert(id, Box::new(StaticSecret::from(r.array::<32>()?)));
        }
        let base_count = usize::from(r.u16()?);
        if base_count > MAX_RECENT_BASE_KEYS {
            return Err(Error::InvalidEncoding);
        }
        let mut recent_base_keys = VecDeque::with_capacity(base_count);
        for _ in 0..base_count {
            recent_base_keys.push_back(r.array()?);
        }
        r.finish()?;
        let signed_prekey = signed.pop_back().ok_or(Error::InvalidEncoding)?;
        Ok(Self {
            identity,
            signed_prekey,
            old_signed_prekeys: signed,
            one_time_prekeys,
            next_signed_prekey_id,
            next_one_time_prekey_id,
            recent_base_keys,
        })
    }

    /// The device encrypted at rest under `key` (draws 32 bytes of salt).
    pub fn seal<R: CryptoRng + ?Sized>(&self, key: &StorageKey, rng: &mut R) -> Result<Vec<u8>> {
        seal(key, rng, &self.to_bytes())
    }

    /// Opens and restores [`Device::seal`]'s output.
    pub fn unseal(sealed: &[u8], key: &StorageKey) -> Result<Self> {
        Self::from_bytes(&unseal(key, tag::DEVICE_STATE, sealed)?)
    }
}
