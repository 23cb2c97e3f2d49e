//! The local device: its identity and the secrets of the prekeys it
//! published (SPEC.md §6), and its saved state (§10.3).

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::fmt;

use rand_core::{CryptoRng, TryCryptoRng};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::codec::{self, Codec, Count, Reader, Sink, tag};
use crate::error::{Error, Result};
use crate::keys::{IdentityKey, IdentityKeyPair, OneTimePreKey, SignedPreKey};
use crate::sealed::{self, SavedState, StorageKey};

/// Most signed prekeys a device keeps: the current one and the ones before it,
/// for prekey messages still in flight after a rotation.
pub const MAX_SIGNED_PREKEYS: usize = 4;
/// Most unused one-time prekeys a device holds.
pub const MAX_ONE_TIME_PREKEYS: usize = 1000;
/// How many base keys of accepted prekey messages a device remembers, to
/// reject a replayed prekey message (which matters most when it used no
/// one-time prekey).
pub const MAX_RECENT_BASE_KEYS: usize = 1000;

/// The saved signed prekeys: at least the current one (SPEC §10.3).
const SIGNED_PREKEYS: Count = Count::u8(MAX_SIGNED_PREKEYS).at_least(1);
/// The saved one-time prekey secrets.
const ONE_TIME_PREKEYS: Count = Count::u16(MAX_ONE_TIME_PREKEYS);
/// The saved base keys of accepted prekey messages.
const RECENT_BASE_KEYS: Count = Count::u16(MAX_RECENT_BASE_KEYS);

/// Secrets are boxed throughout the device so that moving the device, or a
/// container reallocating, moves pointers and leaves no copies behind.
struct SignedPreKeyPair {
    secret: Box<StaticSecret>,
    public: SignedPreKey,
}

impl SignedPreKeyPair {
    /// The rest of a saved entry after its id: the secret and the signature.
    /// The public key is recomputed; the signature is not re-verified.
    fn decode_after_id(r: &mut Reader<'_>, id: u32) -> Result<Self> {
        let secret = Box::<StaticSecret>::decode(r)?;
        let signature = r.array()?;
        let public = SignedPreKey::from_parts(id, PublicKey::from(&*secret), signature);
        Ok(Self { secret, public })
    }
}

/// A saved entry: id, secret, signature.
impl Codec for SignedPreKeyPair {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.public.id().encode(out);
        self.secret.encode(out);
        self.public.signature().encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let id = u32::decode(r)?;
        Self::decode_after_id(r, id)
    }
}

/// A device's long-term state: its identity key pair, its signed prekeys and
/// the secrets of its unused one-time prekeys.
///
/// The caller persists it ([`Device::to_bytes`]) after every call that takes
/// `&mut self`, including [`Session::accept`](crate::Session::accept).
pub struct Device {
    identity: Box<IdentityKeyPair>,
    signed_prekey: SignedPreKeyPair,
    /// Earlier signed prekeys, oldest first; at most
    /// [`MAX_SIGNED_PREKEYS`] - 1.
    old_signed_prekeys: VecDeque<SignedPreKeyPair>,
    one_time_prekeys: BTreeMap<u32, Box<StaticSecret>>,
    next_signed_prekey_id: u32,
    next_one_time_prekey_id: u32,
    /// Oldest first.
    recent_base_keys: VecDeque<[u8; 32]>,
}

impl Device {
    /// A new device: draws an identity (64 bytes), then the first signed
    /// prekey (32 bytes, id 1).
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let identity = Box::new(IdentityKeyPair::generate(rng));
        let first = new_signed_prekey(&identity, 1, rng);
        Self {
            identity,
            signed_prekey: first,
            old_signed_prekeys: VecDeque::new(),
            one_time_prekeys: BTreeMap::new(),
            next_signed_prekey_id: 2,
            next_one_time_prekey_id: 1,
            recent_base_keys: VecDeque::new(),
        }
    }

    /// The device's public identity.
    pub fn identity_key(&self) -> &IdentityKey {
        self.identity.public()
    }

    /// The current signed prekey, to publish.
    pub fn signed_prekey(&self) -> SignedPreKey {
        self.signed_prekey.public
    }

    /// Makes a new current signed prekey (32 random bytes). Keeps at most
    /// [`MAX_SIGNED_PREKEYS`], deleting the oldest secret.
    ///
    /// # Errors
    ///
    /// [`Error::TooManyPreKeys`] once the signed prekey ids are used up
    /// (the id would pass `u32::MAX`); nothing is drawn or changed.
    pub fn rotate_signed_prekey<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
    ) -> Result<SignedPreKey> {
        let id = self.next_signed_prekey_id;
        let next = id.checked_add(1).ok_or(Error::TooManyPreKeys)?;
        let spk = new_signed_prekey(&self.identity, id, rng);
        let public = spk.public;
        let old = core::mem::replace(&mut self.signed_prekey, spk);
        self.old_signed_prekeys.push_back(old);
        while self.old_signed_prekeys.len() >= MAX_SIGNED_PREKEYS {
            self.old_signed_prekeys.pop_front();
        }
        self.next_signed_prekey_id = next;
        Ok(public)
    }

    /// Deletes an old signed prekey's secret before [`rotate_signed_prekey`]
    /// would. The current one cannot be removed (it is not found).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownSignedPreKey`] if no old signed prekey has this id.
    ///
    /// [`rotate_signed_prekey`]: Device::rotate_signed_prekey
    pub fn remove_signed_prekey(&mut self, id: u32) -> Result<()> {
        let before = self.old_signed_prekeys.len();
        self.old_signed_prekeys.retain(|spk| spk.public.id() != id);
        if self.old_signed_prekeys.len() == before {
            return Err(Error::UnknownSignedPreKey { id });
        }
        Ok(())
    }

    /// Makes `count` one-time prekeys (32 random bytes each) with fresh
    /// sequential ids and returns their public halves, to publish. Fails
    /// without change if the device would hold more than
    /// [`MAX_ONE_TIME_PREKEYS`].
    ///
    /// # Errors
    ///
    /// [`Error::TooManyPreKeys`] if the device would hold more than
    /// [`MAX_ONE_TIME_PREKEYS`] or the ids would pass `u32::MAX`; nothing is
    /// drawn or changed.
    pub fn generate_one_time_prekeys<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        count: usize,
    ) -> Result<Vec<OneTimePreKey>> {
        let total = self.one_time_prekeys.len().saturating_add(count);
        if total > MAX_ONE_TIME_PREKEYS {
            return Err(Error::TooManyPreKeys);
        }
        let count32 = u32::try_from(count).map_err(|_| Error::TooManyPreKeys)?;
        let first = self.next_one_time_prekey_id;
        let next = first.checked_add(count32).ok_or(Error::TooManyPreKeys)?;
        let mut published = Vec::with_capacity(count);
        for id in first..next {
            let secret = Box::new(StaticSecret::random_from_rng(rng));
            published.push(OneTimePreKey::new(id, PublicKey::from(&*secret)));
            self.one_time_prekeys.insert(id, secret);
        }
        self.next_one_time_prekey_id = next;
        Ok(published)
    }

    /// How many one-time prekeys are unused, so the app knows when to publish
    /// more.
    pub fn one_time_prekey_count(&self) -> usize {
        self.one_time_prekeys.len()
    }

    /// Restores [`Device::to_bytes`] strictly (the same as
    /// [`SavedState::from_bytes`]).
    ///
    /// # Errors
    ///
    /// As [`SavedState::from_bytes`]; [`Error::InvalidEncoding`] covers the
    /// rules of SPEC §10.3 (no signed prekey, a count over its bound, ids not
    /// strictly increasing or not below the next id).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        <Self as SavedState>::from_bytes(bytes)
    }

    /// The device's plain encoding (it contains secret keys). See SPEC.md
    /// §10.3 for the layout.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        <Self as SavedState>::to_bytes(self)
    }

    /// The device encrypted at rest under `key`, bound to `context`
    /// (draws 32 bytes of salt).
    ///
    /// # Errors
    ///
    /// As [`SavedState::seal`].
    pub fn seal<R: TryCryptoRng + ?Sized>(
        &self,
        key: &StorageKey,
        context: &[u8],
        rng: &mut R,
    ) -> Result<Vec<u8>> {
        <Self as SavedState>::seal(self, key, context, rng)
    }

    /// Opens and restores [`Device::seal`]'s output.
    ///
    /// # Errors
    ///
    /// As [`SavedState::unseal`], then as [`Device::from_bytes`].
    pub fn unseal(sealed: &[u8], key: &StorageKey, context: &[u8]) -> Result<Self> {
        <Self as SavedState>::unseal(sealed, key, context)
    }

    /// The identity key pair, for X3DH.
    pub(crate) fn identity_pair(&self) -> &IdentityKeyPair {
        &self.identity
    }

    pub(crate) fn signed_prekey_secret(&self, id: u32) -> Result<&StaticSecret> {
        core::iter::once(&self.signed_prekey)
            .chain(&self.old_signed_prekeys)
            .find(|spk| spk.public.id() == id)
            .map(|spk| &*spk.secret)
            .ok_or(Error::UnknownSignedPreKey { id })
    }

    pub(crate) fn one_time_prekey_secret(&self, id: u32) -> Result<&StaticSecret> {
        self.one_time_prekeys
            .get(&id)
            .map(|secret| &**secret)
            .ok_or(Error::UnknownOneTimePreKey { id })
    }

    pub(crate) fn has_seen_base_key(&self, base_key: &[u8; 32]) -> bool {
        self.recent_base_keys.contains(base_key)
    }

    /// Commits an accepted prekey message: deletes the one-time prekey and
    /// remembers the base key.
    pub(crate) fn consume(&mut self, one_time_prekey: Option<u32>, base_key: [u8; 32]) {
        if let Some(id) = one_time_prekey {
            self.one_time_prekeys.remove(&id);
        }
        self.recent_base_keys.push_back(base_key);
        while self.recent_base_keys.len() > MAX_RECENT_BASE_KEYS {
            self.recent_base_keys.pop_front();
        }
    }
}

fn new_signed_prekey<R: CryptoRng + ?Sized>(
    identity: &IdentityKeyPair,
    id: u32,
    rng: &mut R,
) -> SignedPreKeyPair {
    let secret = Box::new(StaticSecret::random_from_rng(rng));
    let public = SignedPreKey::sign(identity, id, PublicKey::from(&*secret));
    SignedPreKeyPair { secret, public }
}

impl sealed::Sealed for Device {}

impl SavedState for Device {
    const TYPE_TAG: u8 = tag::DEVICE_STATE;

    fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        sealed::to_plain(Self::TYPE_TAG, self)
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self> {
        sealed::from_plain(Self::TYPE_TAG, bytes)
    }
}

/// SPEC §10.3: identity secrets, the next ids, the signed prekeys oldest
/// first (the current one last), the one-time prekeys and the recent base
/// keys.
impl Codec for Device {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.identity.encode(out);
        self.next_signed_prekey_id.encode(out);
        self.next_one_time_prekey_id.encode(out);
        SIGNED_PREKEYS.write(out, self.old_signed_prekeys.len() + 1);
        for spk in self.old_signed_prekeys.iter().chain([&self.signed_prekey]) {
            spk.encode(out);
        }
        codec::write_map(out, ONE_TIME_PREKEYS, &self.one_time_prekeys);
        codec::write_list(out, RECENT_BASE_KEYS, self.recent_base_keys.iter());
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let identity = Box::<IdentityKeyPair>::decode(r)?;
        let next_signed_prekey_id = u32::decode(r)?;
        let next_one_time_prekey_id = u32::decode(r)?;
        let mut signed = VecDeque::with_capacity(MAX_SIGNED_PREKEYS);
        codec::read_sorted(r, SIGNED_PREKEYS, next_signed_prekey_id, |r, id| {
            signed.push_back(SignedPreKeyPair::decode_after_id(r, id)?);
            Ok(())
        })?;
        let one_time_prekeys = codec::read_map(r, ONE_TIME_PREKEYS, next_one_time_prekey_id)?;
        let recent_base_keys = codec::read_list(r, RECENT_BASE_KEYS)?;
        // The count is at least 1, so there is a current signed prekey.
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
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Device")
            .field("identity", self.identity.public())
            .field("signed_prekey", &self.signed_prekey.public.id())
            .field("one_time_prekeys", &self.one_time_prekeys.len())
            .finish_non_exhaustive()
    }
}
