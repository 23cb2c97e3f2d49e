//! The local device: its identity, the secrets of the prekeys it published
//! (X25519 and ML-KEM), the base keys it accepted under each signed prekey,
//! and its generation (SPEC.md §6), and its saved state (§10.3).

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::fmt;

use rand_core::TryCryptoRng;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::codec::{self, Codec, Count, Reader, Sink, tag};
use crate::crypto;
use crate::crypto::kem::{DecapsulationSeed, SEED_LEN};
use crate::error::{Error, Result};
use crate::keys::{
    IdentityKey, IdentityKeyPair, KemPreKey, KemPreKeyKind, OneTimePreKey, SignedPreKey,
};
use crate::sealed::{self, SavedState, StorageKey};
use crate::wire::PreKeyHeader;

/// Most signed prekeys a device keeps: the current one and the ones before it,
/// for prekey messages still in flight after a rotation.
pub const MAX_SIGNED_PREKEYS: usize = 4;
/// Most base keys of replayable prekey messages one signed prekey records.
/// At the bound, further replayable prekey messages naming it are refused
/// with [`Error::SignedPreKeyExhausted`] until the application rotates.
pub const MAX_BASE_KEYS_PER_SIGNED_PREKEY: usize = 1000;
/// Most unused one-time prekeys a device holds.
pub const MAX_ONE_TIME_PREKEYS: usize = 1000;
/// Most last-resort KEM prekeys a device keeps: the current one and the ones
/// before it, for prekey messages still in flight after a rotation.
pub const MAX_LAST_RESORT_KEM_PREKEYS: usize = 4;
/// Most unused one-time KEM prekeys a device holds.
pub const MAX_ONE_TIME_KEM_PREKEYS: usize = 100;

/// The saved signed prekeys: at least the current one (SPEC §10.3).
const SIGNED_PREKEYS: Count = Count::u8(MAX_SIGNED_PREKEYS).at_least(1);
/// The saved base keys of one signed prekey.
const BASE_KEYS: Count = Count::u16(MAX_BASE_KEYS_PER_SIGNED_PREKEY);
/// The saved one-time prekey secrets.
const ONE_TIME_PREKEYS: Count = Count::u16(MAX_ONE_TIME_PREKEYS);
/// The saved last-resort KEM prekeys: at least the current one.
const LAST_RESORT_KEM_PREKEYS: Count = Count::u8(MAX_LAST_RESORT_KEM_PREKEYS).at_least(1);
/// The saved one-time KEM prekeys.
const ONE_TIME_KEM_PREKEYS: Count = Count::u16(MAX_ONE_TIME_KEM_PREKEYS);

/// What a device holds of one of its signed prekeys
/// ([`Device::signed_prekeys`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct SignedPreKeyInfo {
    /// The signed prekey as published.
    pub prekey: SignedPreKey,
    /// Its creation time: the `now` the caller passed when it was made.
    pub created: u64,
    /// How many base keys of replayable prekey messages it has recorded.
    /// At [`MAX_BASE_KEYS_PER_SIGNED_PREKEY`] it accepts no more replayable
    /// prekey messages: rotate before.
    pub base_key_count: usize,
}

/// What a device holds of one of its last-resort KEM prekeys
/// ([`Device::last_resort_kem_prekeys`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct KemPreKeyInfo {
    /// The KEM prekey id.
    pub id: u32,
    /// Its creation time: the `now` the caller passed when it was made.
    pub created: u64,
}

/// One signed prekey as the device keeps it. The secret is boxed so that
/// moving the device, or a container reallocating, moves a pointer and
/// leaves no copy behind; the base keys are public values.
struct SignedPreKeyPair {
    secret: Box<StaticSecret>,
    public: SignedPreKey,
    created: u64,
    /// Base keys of the replayable prekey messages accepted under this key,
    /// in the order they were recorded (SPEC §6).
    base_keys: Vec<[u8; 32]>,
}

impl SignedPreKeyPair {
    /// Draws a signed prekey (32 bytes) and signs it.
    fn generate<R: TryCryptoRng + ?Sized>(
        identity: &IdentityKeyPair,
        id: u32,
        now: u64,
        rng: &mut R,
    ) -> Result<Self> {
        let secret = Box::new(crypto::draw_x25519(rng)?);
        let public = SignedPreKey::sign(identity, id, PublicKey::from(&*secret));
        Ok(Self {
            secret,
            public,
            created: now,
            base_keys: Vec::new(),
        })
    }

    fn info(&self) -> SignedPreKeyInfo {
        SignedPreKeyInfo {
            prekey: self.public,
            created: self.created,
            base_key_count: self.base_keys.len(),
        }
    }

    /// The rest of a saved entry after its id. The public key is recomputed;
    /// the signature is not re-verified.
    fn decode_after_id(r: &mut Reader<'_>, id: u32) -> Result<Self> {
        let created = u64::decode(r)?;
        let secret = Box::<StaticSecret>::decode(r)?;
        let signature = r.array()?;
        let base_keys = codec::read_list(r, BASE_KEYS)?.into();
        let public = SignedPreKey::from_parts(id, PublicKey::from(&*secret), signature);
        Ok(Self {
            secret,
            public,
            created,
            base_keys,
        })
    }
}

/// A saved entry: id, creation time, secret, signature, base keys.
impl Codec for SignedPreKeyPair {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.public.id().encode(out);
        self.created.encode(out);
        self.secret.encode(out);
        self.public.signature().encode(out);
        codec::write_list(out, BASE_KEYS, self.base_keys.iter());
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let id = u32::decode(r)?;
        Self::decode_after_id(r, id)
    }
}

/// A KEM prekey as the device keeps it: the seed `d || z` of its
/// decapsulation key (in its own heap block), the signature, and for a
/// last-resort one its creation time. The encapsulation key is recomputed
/// from the seed when needed (SPEC §10.3).
struct KemPreKeyPair {
    id: u32,
    seed: DecapsulationSeed,
    signature: [u8; 64],
}

/// Draws a KEM prekey's seed: 64 bytes, `d` then `z` (SPEC §5.5), straight
/// into its own heap block.
fn draw_kem_seed<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<DecapsulationSeed> {
    let mut seed = Box::new([0u8; SEED_LEN]);
    crypto::draw(rng, seed.as_mut())?;
    Ok(DecapsulationSeed::new(seed))
}

impl KemPreKeyPair {
    /// Signs the KEM prekey of a drawn seed (runs ML-KEM key generation).
    fn new(
        identity: &IdentityKeyPair,
        id: u32,
        kind: KemPreKeyKind,
        seed: DecapsulationSeed,
    ) -> (Self, KemPreKey) {
        let public = KemPreKey::sign(identity, id, kind, seed.encapsulation_key());
        let signature = *public.signature();
        let pair = Self {
            id,
            seed,
            signature,
        };
        (pair, public)
    }

    /// The published form; runs ML-KEM key generation from the seed.
    fn public(&self, kind: KemPreKeyKind) -> KemPreKey {
        KemPreKey::from_parts(self.id, kind, self.seed.encapsulation_key(), self.signature)
    }

    /// The seed then the signature, after the id (and, for a last-resort
    /// one, its creation time).
    fn encode_rest<S: Sink>(&self, out: &mut S) {
        out.put(self.seed.as_bytes());
        self.signature.encode(out);
    }

    fn decode_rest(r: &mut Reader<'_>, id: u32) -> Result<Self> {
        let seed = DecapsulationSeed::new(Box::<[u8; SEED_LEN]>::decode(r)?);
        let signature = r.array()?;
        Ok(Self {
            id,
            seed,
            signature,
        })
    }
}

/// A last-resort KEM prekey with its creation time.
struct LastResortKemPreKey {
    pair: KemPreKeyPair,
    created: u64,
}

impl LastResortKemPreKey {
    fn generate<R: TryCryptoRng + ?Sized>(
        identity: &IdentityKeyPair,
        id: u32,
        now: u64,
        rng: &mut R,
    ) -> Result<(Self, KemPreKey)> {
        let seed = draw_kem_seed(rng)?;
        let (pair, public) = KemPreKeyPair::new(identity, id, KemPreKeyKind::LastResort, seed);
        Ok((Self { pair, created: now }, public))
    }

    fn info(&self) -> KemPreKeyInfo {
        KemPreKeyInfo {
            id: self.pair.id,
            created: self.created,
        }
    }
}

/// A saved entry: id, creation time, seed, signature (SPEC §10.3).
impl Codec for LastResortKemPreKey {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.pair.id.encode(out);
        self.created.encode(out);
        self.pair.encode_rest(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let id = u32::decode(r)?;
        Self::decode_after_id(r, id)
    }
}

impl LastResortKemPreKey {
    fn decode_after_id(r: &mut Reader<'_>, id: u32) -> Result<Self> {
        let created = u64::decode(r)?;
        let pair = KemPreKeyPair::decode_rest(r, id)?;
        Ok(Self { pair, created })
    }
}

/// The prekeys a prekey message names, looked up in the order of SPEC §7.3
/// steps 2 to 6; [`Device::consume`] commits them.
pub(crate) struct PreKeys<'a> {
    pub(crate) signed_prekey: &'a StaticSecret,
    pub(crate) one_time_prekey: Option<&'a StaticSecret>,
    pub(crate) kem_prekey: Option<&'a DecapsulationSeed>,
    /// It names neither a one-time prekey nor a one-time KEM prekey
    /// (SPEC §6).
    pub(crate) replayable: bool,
}

/// A device's long-term state: its identity key pair, its signed prekeys
/// with the base keys accepted under them, the secrets of its unused
/// one-time prekeys, and its KEM prekeys (last-resort and one-time).
///
/// The caller persists it ([`Device::to_bytes`] or [`Device::seal`]) after
/// every call that takes `&mut self`, including
/// [`Session::accept`](crate::Session::accept). After restoring a device
/// from a backup, call [`Device::reset_prekeys_after_restore`] before
/// accepting any prekey message (SPEC §6).
pub struct Device {
    generation: u64,
    identity: Box<IdentityKeyPair>,
    next_signed_prekey_id: u32,
    next_one_time_prekey_id: u32,
    /// One counter for KEM prekeys of both kinds.
    next_kem_prekey_id: u32,
    signed_prekey: SignedPreKeyPair,
    /// Earlier signed prekeys, oldest first; at most
    /// [`MAX_SIGNED_PREKEYS`] - 1.
    old_signed_prekeys: VecDeque<SignedPreKeyPair>,
    one_time_prekeys: BTreeMap<u32, Box<StaticSecret>>,
    last_resort_kem_prekey: LastResortKemPreKey,
    /// Earlier last-resort KEM prekeys, oldest first; at most
    /// [`MAX_LAST_RESORT_KEM_PREKEYS`] - 1.
    old_last_resort_kem_prekeys: VecDeque<LastResortKemPreKey>,
    one_time_kem_prekeys: BTreeMap<u32, KemPreKeyPair>,
}

impl Device {
    /// A new device at generation 0: draws the identity seed (32 bytes),
    /// then signed prekey 1 (32 bytes), then last-resort KEM prekey 1 (64
    /// bytes), both created at `now` (SPEC §6).
    ///
    /// # Errors
    ///
    /// [`Error::RandomnessUnavailable`] if `rng` fails.
    pub fn generate<R: TryCryptoRng + ?Sized>(rng: &mut R, now: u64) -> Result<Self> {
        let identity = Box::new(IdentityKeyPair::generate(rng)?);
        let signed_prekey = SignedPreKeyPair::generate(&identity, 1, now, rng)?;
        let (last_resort_kem_prekey, _) = LastResortKemPreKey::generate(&identity, 1, now, rng)?;
        Ok(Self {
            generation: 0,
            identity,
            next_signed_prekey_id: 2,
            next_one_time_prekey_id: 1,
            next_kem_prekey_id: 2,
            signed_prekey,
            old_signed_prekeys: VecDeque::new(),
            one_time_prekeys: BTreeMap::new(),
            last_resort_kem_prekey,
            old_last_resort_kem_prekeys: VecDeque::new(),
            one_time_kem_prekeys: BTreeMap::new(),
        })
    }

    /// The device's public identity.
    pub fn identity_key(&self) -> &IdentityKey {
        self.identity.public()
    }

    /// The generation (SPEC §10.1): 0 for a new device, plus 1 for every
    /// call that changed it.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The current signed prekey, to publish.
    pub fn signed_prekey(&self) -> SignedPreKey {
        self.signed_prekey.public
    }

    /// Every signed prekey held, oldest first; the last is the current one.
    pub fn signed_prekeys(&self) -> impl Iterator<Item = SignedPreKeyInfo> + '_ {
        self.signed_prekey_pairs().map(SignedPreKeyPair::info)
    }

    /// Makes a new current signed prekey created at `now` (draws 32 bytes).
    /// The previous one is kept for prekey messages in flight; past
    /// [`MAX_SIGNED_PREKEYS`] the oldest is deleted with its base keys.
    ///
    /// # Errors
    ///
    /// [`Error::TooManyPreKeys`] once the signed prekey ids are used up (the
    /// next id is `u32::MAX`), then [`Error::RandomnessUnavailable`] if
    /// `rng` fails; either way nothing changed.
    pub fn rotate_signed_prekey<R: TryCryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        now: u64,
    ) -> Result<SignedPreKey> {
        let id = self.next_signed_prekey_id;
        let next = id.checked_add(1).ok_or(Error::TooManyPreKeys)?;
        let new = SignedPreKeyPair::generate(&self.identity, id, now, rng)?;
        let public = new.public;
        let old = core::mem::replace(&mut self.signed_prekey, new);
        self.old_signed_prekeys.push_back(old);
        while self.old_signed_prekeys.len() >= MAX_SIGNED_PREKEYS {
            self.old_signed_prekeys.pop_front();
        }
        self.next_signed_prekey_id = next;
        sealed::advance(&mut self.generation);
        Ok(public)
    }

    /// Deletes an old signed prekey, with its base keys, before
    /// [`Device::rotate_signed_prekey`] would. Prekey messages naming it then
    /// fail with [`Error::UnknownSignedPreKey`].
    ///
    /// # Errors
    ///
    /// [`Error::UnknownSignedPreKey`] if `id` is the current signed prekey
    /// or not held; nothing changed.
    pub fn remove_signed_prekey(&mut self, id: u32) -> Result<()> {
        let position = self
            .old_signed_prekeys
            .iter()
            .position(|spk| spk.public.id() == id)
            .ok_or(Error::UnknownSignedPreKey { id })?;
        self.old_signed_prekeys.remove(position);
        sealed::advance(&mut self.generation);
        Ok(())
    }

    /// Makes `count` one-time prekeys (32 random bytes each, all drawn before
    /// any is stored) with the next sequential ids, and returns their public
    /// halves, to publish. `count = 0` changes nothing.
    ///
    /// # Errors
    ///
    /// [`Error::TooManyPreKeys`] if the device would hold more than
    /// [`MAX_ONE_TIME_PREKEYS`] or the ids would reach `u32::MAX`, then
    /// [`Error::RandomnessUnavailable`] if `rng` fails; either way nothing
    /// changed.
    pub fn generate_one_time_prekeys<R: TryCryptoRng + ?Sized>(
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
        if count == 0 {
            return Ok(Vec::new());
        }
        let mut secrets = Vec::with_capacity(count);
        for _ in 0..count {
            secrets.push(Box::new(crypto::draw_x25519(rng)?));
        }
        let mut published = Vec::with_capacity(count);
        for (id, secret) in (first..next).zip(secrets) {
            published.push(OneTimePreKey::new(id, PublicKey::from(&*secret)));
            self.one_time_prekeys.insert(id, secret);
        }
        self.next_one_time_prekey_id = next;
        sealed::advance(&mut self.generation);
        Ok(published)
    }

    /// How many one-time prekeys are unused, so the app knows when to publish
    /// more.
    pub fn one_time_prekey_count(&self) -> usize {
        self.one_time_prekeys.len()
    }

    /// Makes a restored device safe to accept prekey messages again (SPEC
    /// §6): draws a new signed prekey (32 bytes), then a new last-resort
    /// KEM prekey (64 bytes), both created at `now`; deletes every other
    /// signed prekey with its base keys, every other last-resort KEM
    /// prekey, and every one-time prekey of both kinds; and sets the
    /// generation to `max(generation, last_generation) + 1`, where
    /// `last_generation` is the highest generation the application recorded
    /// for this device (0 if none). Every prekey message made before the
    /// reset then fails and is never accepted again. Returns the two new
    /// prekeys, to publish (with new one-time prekeys).
    ///
    /// # Errors
    ///
    /// [`Error::TooManyPreKeys`] if the signed prekey or KEM prekey ids are
    /// used up, then [`Error::RandomnessUnavailable`] if `rng` fails;
    /// either way nothing changed.
    pub fn reset_prekeys_after_restore<R: TryCryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        now: u64,
        last_generation: u64,
    ) -> Result<(SignedPreKey, KemPreKey)> {
        let spk_id = self.next_signed_prekey_id;
        let next_spk = spk_id.checked_add(1).ok_or(Error::TooManyPreKeys)?;
        let kem_id = self.next_kem_prekey_id;
        let next_kem = kem_id.checked_add(1).ok_or(Error::TooManyPreKeys)?;
        let spk = SignedPreKeyPair::generate(&self.identity, spk_id, now, rng)?;
        let (kem, kem_public) = LastResortKemPreKey::generate(&self.identity, kem_id, now, rng)?;
        let spk_public = spk.public;
        self.signed_prekey = spk;
        self.old_signed_prekeys.clear();
        self.one_time_prekeys.clear();
        self.last_resort_kem_prekey = kem;
        self.old_last_resort_kem_prekeys.clear();
        self.one_time_kem_prekeys.clear();
        self.next_signed_prekey_id = next_spk;
        self.next_kem_prekey_id = next_kem;
        self.generation = self.generation.max(last_generation);
        sealed::advance(&mut self.generation);
        Ok((spk_public, kem_public))
    }

    /// The current last-resort KEM prekey, to publish (runs ML-KEM key
    /// generation from its stored seed).
    pub fn last_resort_kem_prekey(&self) -> KemPreKey {
        self.last_resort_kem_prekey
            .pair
            .public(KemPreKeyKind::LastResort)
    }

    /// Every last-resort KEM prekey held, oldest first; the last is the
    /// current one.
    pub fn last_resort_kem_prekeys(&self) -> impl Iterator<Item = KemPreKeyInfo> + '_ {
        self.last_resort_kem_prekey_pairs()
            .map(LastResortKemPreKey::info)
    }

    /// Makes a new current last-resort KEM prekey created at `now` (draws 64
    /// bytes). The previous one is kept for prekey messages in flight; past
    /// [`MAX_LAST_RESORT_KEM_PREKEYS`] the oldest is deleted.
    ///
    /// # Errors
    ///
    /// [`Error::TooManyPreKeys`] once the KEM prekey ids are used up, then
    /// [`Error::RandomnessUnavailable`] if `rng` fails; either way nothing
    /// changed.
    pub fn rotate_last_resort_kem_prekey<R: TryCryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        now: u64,
    ) -> Result<KemPreKey> {
        let id = self.next_kem_prekey_id;
        let next = id.checked_add(1).ok_or(Error::TooManyPreKeys)?;
        let (new, public) = LastResortKemPreKey::generate(&self.identity, id, now, rng)?;
        let old = core::mem::replace(&mut self.last_resort_kem_prekey, new);
        self.old_last_resort_kem_prekeys.push_back(old);
        while self.old_last_resort_kem_prekeys.len() >= MAX_LAST_RESORT_KEM_PREKEYS {
            self.old_last_resort_kem_prekeys.pop_front();
        }
        self.next_kem_prekey_id = next;
        sealed::advance(&mut self.generation);
        Ok(public)
    }

    /// Deletes an old last-resort KEM prekey before
    /// [`Device::rotate_last_resort_kem_prekey`] would.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownKemPreKey`] if `id` is the current last-resort KEM
    /// prekey or not an old one; nothing changed.
    pub fn remove_last_resort_kem_prekey(&mut self, id: u32) -> Result<()> {
        let position = self
            .old_last_resort_kem_prekeys
            .iter()
            .position(|kem| kem.pair.id == id)
            .ok_or(Error::UnknownKemPreKey { id })?;
        self.old_last_resort_kem_prekeys.remove(position);
        sealed::advance(&mut self.generation);
        Ok(())
    }

    /// Makes `count` one-time KEM prekeys (64 random bytes each, all drawn
    /// before any is stored) with the next KEM prekey ids, and returns them
    /// signed, to publish. `count = 0` changes nothing.
    ///
    /// # Errors
    ///
    /// [`Error::TooManyPreKeys`] if the device would hold more than
    /// [`MAX_ONE_TIME_KEM_PREKEYS`] or the ids would reach `u32::MAX`, then
    /// [`Error::RandomnessUnavailable`] if `rng` fails; either way nothing
    /// changed.
    pub fn generate_one_time_kem_prekeys<R: TryCryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        count: usize,
    ) -> Result<Vec<KemPreKey>> {
        let total = self.one_time_kem_prekeys.len().saturating_add(count);
        if total > MAX_ONE_TIME_KEM_PREKEYS {
            return Err(Error::TooManyPreKeys);
        }
        let count32 = u32::try_from(count).map_err(|_| Error::TooManyPreKeys)?;
        let first = self.next_kem_prekey_id;
        let next = first.checked_add(count32).ok_or(Error::TooManyPreKeys)?;
        if count == 0 {
            return Ok(Vec::new());
        }
        let mut seeds = Vec::with_capacity(count);
        for _ in 0..count {
            seeds.push(draw_kem_seed(rng)?);
        }
        let mut published = Vec::with_capacity(count);
        for (id, seed) in (first..next).zip(seeds) {
            let (pair, public) =
                KemPreKeyPair::new(&self.identity, id, KemPreKeyKind::OneTime, seed);
            published.push(public);
            self.one_time_kem_prekeys.insert(id, pair);
        }
        self.next_kem_prekey_id = next;
        sealed::advance(&mut self.generation);
        Ok(published)
    }

    /// How many one-time KEM prekeys are unused.
    pub fn one_time_kem_prekey_count(&self) -> usize {
        self.one_time_kem_prekeys.len()
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

    /// The device encrypted at rest under `key`, bound to `context` (the
    /// record's key in the application's store; draws 32 bytes of salt).
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

    /// Opens and restores [`Device::seal`]'s output, sealed under `context`.
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

    /// The signed prekeys, oldest first, the current one last.
    fn signed_prekey_pairs(&self) -> impl Iterator<Item = &SignedPreKeyPair> {
        self.old_signed_prekeys.iter().chain([&self.signed_prekey])
    }

    /// The last-resort KEM prekeys, oldest first, the current one last.
    fn last_resort_kem_prekey_pairs(&self) -> impl Iterator<Item = &LastResortKemPreKey> {
        let old = self.old_last_resort_kem_prekeys.iter();
        old.chain([&self.last_resort_kem_prekey])
    }

    fn signed_prekey_pair(&self, id: u32) -> Result<&SignedPreKeyPair> {
        self.signed_prekey_pairs()
            .find(|spk| spk.public.id() == id)
            .ok_or(Error::UnknownSignedPreKey { id })
    }

    /// Looks up the prekeys a prekey message names and applies the replay
    /// rule, in the order of SPEC §7.3 steps 2 to 6; changes nothing.
    pub(crate) fn prekeys_for(&self, header: &PreKeyHeader) -> Result<PreKeys<'_>> {
        let spk = self.signed_prekey_pair(header.signed_prekey_id)?;
        let base_key = header.base_key.as_bytes();
        if spk.base_keys.iter().any(|recorded| recorded == base_key) {
            return Err(Error::DuplicatePreKeyMessage);
        }
        let one_time_prekey = header
            .one_time_prekey_id
            .map(|id| {
                self.one_time_prekeys
                    .get(&id)
                    .map(|secret| &**secret)
                    .ok_or(Error::UnknownOneTimePreKey { id })
            })
            .transpose()?;
        let mut one_time_kem = false;
        let kem_prekey = match &header.kem {
            Some(kem) => {
                let id = kem.kem_prekey_id;
                let pair = match self.one_time_kem_prekeys.get(&id) {
                    Some(pair) => {
                        one_time_kem = true;
                        pair
                    }
                    None => self
                        .last_resort_kem_prekey_pairs()
                        .map(|kem| &kem.pair)
                        .find(|pair| pair.id == id)
                        .ok_or(Error::UnknownKemPreKey { id })?,
                };
                Some(&pair.seed)
            }
            None => None,
        };
        let replayable = one_time_prekey.is_none() && !one_time_kem;
        if replayable && spk.base_keys.len() >= MAX_BASE_KEYS_PER_SIGNED_PREKEY {
            return Err(Error::SignedPreKeyExhausted {
                id: header.signed_prekey_id,
            });
        }
        Ok(PreKeys {
            signed_prekey: &spk.secret,
            one_time_prekey,
            kem_prekey,
            replayable,
        })
    }

    /// Commits an accepted prekey message (SPEC §7.3 step 11): deletes the
    /// one-time prekey and the one-time KEM prekey it used, or, if it was
    /// `replayable` (as [`Device::prekeys_for`] found), records its base key
    /// under its signed prekey.
    pub(crate) fn consume(&mut self, header: &PreKeyHeader, replayable: bool) {
        if let Some(id) = header.one_time_prekey_id {
            self.one_time_prekeys.remove(&id);
        }
        if let Some(kem) = &header.kem {
            self.one_time_kem_prekeys.remove(&kem.kem_prekey_id);
        }
        if replayable {
            let id = header.signed_prekey_id;
            let spk = core::iter::once(&mut self.signed_prekey)
                .chain(&mut self.old_signed_prekeys)
                .find(|spk| spk.public.id() == id);
            if let Some(spk) = spk {
                spk.base_keys.push(header.base_key.to_bytes());
            }
        }
        sealed::advance(&mut self.generation);
    }

    /// The saved-state rule relating two lists, checked after the whole
    /// state was read (SPEC §4 step 4, §10.3): no KEM prekey id is both a
    /// last-resort and a one-time one.
    fn check(&self) -> Result<()> {
        let shared = self
            .last_resort_kem_prekey_pairs()
            .any(|kem| self.one_time_kem_prekeys.contains_key(&kem.pair.id));
        if shared {
            return Err(Error::InvalidEncoding);
        }
        Ok(())
    }
}

impl sealed::Sealed for Device {}

impl SavedState for Device {
    const TYPE_TAG: u8 = tag::DEVICE_STATE;

    fn generation(&self) -> u64 {
        self.generation
    }

    fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        sealed::to_plain(Self::TYPE_TAG, self)
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let device: Self = sealed::from_plain(Self::TYPE_TAG, bytes)?;
        device.check()?;
        Ok(device)
    }
}

/// SPEC §10.3: the generation, the identity seed, the next ids, the signed
/// prekeys oldest first (the current one last), the one-time prekeys, the
/// last-resort KEM prekeys oldest first (the current one last) and the
/// one-time KEM prekeys.
impl Codec for Device {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.generation.encode(out);
        self.identity.encode(out);
        self.next_signed_prekey_id.encode(out);
        self.next_one_time_prekey_id.encode(out);
        self.next_kem_prekey_id.encode(out);
        SIGNED_PREKEYS.write(out, self.old_signed_prekeys.len() + 1);
        for spk in self.signed_prekey_pairs() {
            spk.encode(out);
        }
        codec::write_map(out, ONE_TIME_PREKEYS, &self.one_time_prekeys);
        LAST_RESORT_KEM_PREKEYS.write(out, self.old_last_resort_kem_prekeys.len() + 1);
        for kem in self.last_resort_kem_prekey_pairs() {
            kem.encode(out);
        }
        ONE_TIME_KEM_PREKEYS.write(out, self.one_time_kem_prekeys.len());
        for (id, kem) in &self.one_time_kem_prekeys {
            id.encode(out);
            kem.encode_rest(out);
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let generation = u64::decode(r)?;
        let identity = Box::<IdentityKeyPair>::decode(r)?;
        let next_signed_prekey_id = u32::decode(r)?;
        let next_one_time_prekey_id = u32::decode(r)?;
        let next_kem_prekey_id = u32::decode(r)?;
        let mut signed = VecDeque::with_capacity(MAX_SIGNED_PREKEYS);
        codec::read_sorted(r, SIGNED_PREKEYS, next_signed_prekey_id, |r, id| {
            signed.push_back(SignedPreKeyPair::decode_after_id(r, id)?);
            Ok(())
        })?;
        let one_time_prekeys = codec::read_map(r, ONE_TIME_PREKEYS, next_one_time_prekey_id)?;
        let mut last_resort = VecDeque::with_capacity(MAX_LAST_RESORT_KEM_PREKEYS);
        codec::read_sorted(r, LAST_RESORT_KEM_PREKEYS, next_kem_prekey_id, |r, id| {
            last_resort.push_back(LastResortKemPreKey::decode_after_id(r, id)?);
            Ok(())
        })?;
        let mut one_time_kem_prekeys = BTreeMap::new();
        codec::read_sorted(r, ONE_TIME_KEM_PREKEYS, next_kem_prekey_id, |r, id| {
            one_time_kem_prekeys.insert(id, KemPreKeyPair::decode_rest(r, id)?);
            Ok(())
        })?;
        // Both counts are at least 1, so there are current ones.
        let signed_prekey = signed.pop_back().ok_or(Error::InvalidEncoding)?;
        let last_resort_kem_prekey = last_resort.pop_back().ok_or(Error::InvalidEncoding)?;
        Ok(Self {
            generation,
            identity,
            next_signed_prekey_id,
            next_one_time_prekey_id,
            next_kem_prekey_id,
            signed_prekey,
            old_signed_prekeys: signed,
            one_time_prekeys,
            last_resort_kem_prekey,
            old_last_resort_kem_prekeys: last_resort,
            one_time_kem_prekeys,
        })
    }
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Device")
            .field("generation", &self.generation)
            .field("identity", self.identity.public())
            .field("signed_prekey", &self.signed_prekey.public.id())
            .field("one_time_prekeys", &self.one_time_prekeys.len())
            .field(
                "last_resort_kem_prekey",
                &self.last_resort_kem_prekey.pair.id,
            )
            .field("one_time_kem_prekeys", &self.one_time_kem_prekeys.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    //! SPEC §6 (device operations, the replay rule and its bound, restoring
    //! an older state) and §10.3 (the saved layout), on the state's bytes.

    use super::*;
    use crate::KeyAgreementPolicy::ClassicalAllowed;
    use crate::testing::{
        Kem, TestRng, bundle, bundle_with, devices, fails_cleanly_at_every_draw, prekey,
    };
    use crate::{Message, PreKeyBundle, PreKeyMessage, Session};

    /// Offsets in the saved device (SPEC §10.3).
    const GENERATION: usize = 2;
    const SEED: usize = 10;
    const NEXT_SPK: usize = 42;
    const NEXT_OPK: usize = 46;
    const NEXT_KEM: usize = 50;
    const SPK_COUNT: usize = 54;

    fn at<const N: usize>(bytes: &[u8], offset: usize) -> [u8; N] {
        bytes[offset..offset + N].try_into().unwrap()
    }

    /// A fresh prekey message from a new initiator session to `bob`'s
    /// current signed prekey, with a one-time prekey if `one_time`.
    fn first_message(
        alice: &Device,
        bob: &mut Device,
        rng: &mut TestRng,
        one_time: bool,
    ) -> PreKeyMessage {
        let bundle = bundle(bob, rng, one_time);
        let mut session = Session::initiate(alice, rng, &bundle).unwrap();
        prekey(session.encrypt(rng, b"hello").unwrap())
    }

    #[test]
    fn a_new_device_saves_its_seed_and_counters() {
        let mut rng = TestRng::new(1);
        let device = Device::generate(&mut rng, 77).unwrap();
        assert_eq!(rng.draws, [32, 32, 64]);
        let bytes = device.to_bytes();
        assert_eq!(bytes[..GENERATION], [2, 0x21]);
        assert_eq!(u64::from_be_bytes(at(&bytes, GENERATION)), 0);
        // The identity is the Ed25519 key of the 32 seed bytes drawn first.
        let mut first = TestRng::new(1);
        let mut seed = [0u8; 32];
        crypto::draw(&mut first, &mut seed).unwrap();
        assert_eq!(at::<32>(&bytes, SEED), seed);
        assert_eq!(
            IdentityKeyPair::from_seed(&seed).public(),
            device.identity_key()
        );
        assert_eq!(u32::from_be_bytes(at(&bytes, NEXT_SPK)), 2);
        assert_eq!(u32::from_be_bytes(at(&bytes, NEXT_OPK)), 1);
        assert_eq!(u32::from_be_bytes(at(&bytes, NEXT_KEM)), 2);
        let spks: Vec<_> = device.signed_prekeys().collect();
        assert_eq!(spks.len(), 1);
        assert_eq!((spks[0].prekey.id(), spks[0].created), (1, 77));
        assert_eq!(spks[0].base_key_count, 0);
        // Count 1, id 1, created 77, then the secret.
        assert_eq!(bytes[SPK_COUNT], 1);
        assert_eq!(at::<4>(&bytes, SPK_COUNT + 1), [0, 0, 0, 1]);
        assert_eq!(u64::from_be_bytes(at(&bytes, SPK_COUNT + 5)), 77);
        let restored = Device::from_bytes(&bytes).unwrap();
        assert_eq!(*restored.to_bytes(), *bytes);
    }

    /// Every change adds 1 to the generation; a failed call and a call that
    /// changes nothing leave it (and every byte) as they were.
    #[test]
    fn generation_counts_changes() {
        let mut rng = TestRng::new(2);
        let (alice, mut bob) = devices(&mut rng);
        assert_eq!(bob.generation(), 0);
        bob.rotate_signed_prekey(&mut rng, 5).unwrap();
        assert_eq!(bob.generation(), 1);
        bob.remove_signed_prekey(1).unwrap();
        assert_eq!(bob.generation(), 2);
        let before = bob.to_bytes();
        let draws = rng.draws.len();
        assert!(
            bob.generate_one_time_prekeys(&mut rng, 0)
                .unwrap()
                .is_empty()
        );
        assert_eq!(rng.draws.len(), draws, "count 0 draws nothing");
        assert_eq!(*bob.to_bytes(), *before);
        assert_eq!(
            bob.remove_signed_prekey(1),
            Err(Error::UnknownSignedPreKey { id: 1 })
        );
        assert_eq!(*bob.to_bytes(), *before);
        bob.generate_one_time_prekeys(&mut rng, 3).unwrap();
        assert_eq!(bob.generation(), 3);
        let message = first_message(&alice, &mut bob, &mut rng, true);
        assert_eq!(bob.generation(), 4);
        Session::accept(&mut bob, &message).unwrap();
        assert_eq!(bob.generation(), 5);
        let before = bob.to_bytes();
        assert!(Session::accept(&mut bob, &message).is_err());
        assert_eq!(*bob.to_bytes(), *before);
    }

    #[test]
    fn rotation_keeps_four_signed_prekeys_with_their_times() {
        let mut rng = TestRng::new(3);
        let mut bob = Device::generate(&mut rng, 100).unwrap();
        for (i, now) in [200u64, 300, 400, 500, 600].into_iter().enumerate() {
            let spk = bob.rotate_signed_prekey(&mut rng, now).unwrap();
            assert_eq!(spk.id(), u32::try_from(i).unwrap() + 2);
            assert_eq!(bob.signed_prekey(), spk);
        }
        let held: Vec<_> = bob
            .signed_prekeys()
            .map(|i| (i.prekey.id(), i.created))
            .collect();
        assert_eq!(held, [(3, 300), (4, 400), (5, 500), (6, 600)]);
        assert_eq!(
            bob.remove_signed_prekey(6),
            Err(Error::UnknownSignedPreKey { id: 6 }),
            "the current one"
        );
        assert_eq!(
            bob.remove_signed_prekey(2),
            Err(Error::UnknownSignedPreKey { id: 2 })
        );
        bob.remove_signed_prekey(4).unwrap();
        let held: Vec<_> = bob.signed_prekeys().map(|i| i.prekey.id()).collect();
        assert_eq!(held, [3, 5, 6]);
    }

    /// The replay rule (SPEC §6): issue 10's attack, 1,000 throwaway
    /// handshakes, no longer makes a replayable prekey message acceptable
    /// again; at the bound the signed prekey refuses new replayable messages
    /// (nothing is forgotten) but still accepts messages with a one-time
    /// prekey; rotation restores service; once the signed prekey is gone a
    /// replay fails with `UnknownSignedPreKey`.
    #[test]
    fn replayable_prekey_messages_are_accepted_once() {
        let mut rng = TestRng::new(4);
        let (alice, mut bob) = devices(&mut rng);
        let recorded = first_message(&alice, &mut bob, &mut rng, false);
        Session::accept(&mut bob, &recorded).unwrap();
        assert_eq!(
            Session::accept(&mut bob, &recorded).err(),
            Some(Error::DuplicatePreKeyMessage)
        );
        // The throwaway handshakes are classical, which the replay rule
        // treats alike, to keep the test fast in unoptimised builds.
        for _ in 1..MAX_BASE_KEYS_PER_SIGNED_PREKEY {
            let bundle = bundle_with(&mut bob, &mut rng, false, Kem::Classical);
            let mut session =
                Session::initiate_with_policy(&alice, &mut rng, &bundle, ClassicalAllowed).unwrap();
            let throwaway = prekey(session.encrypt(&mut rng, b"throwaway").unwrap());
            Session::accept_with_policy(&mut bob, &throwaway, ClassicalAllowed).unwrap();
        }
        let counts: Vec<_> = bob.signed_prekeys().map(|i| i.base_key_count).collect();
        assert_eq!(counts, [MAX_BASE_KEYS_PER_SIGNED_PREKEY]);
        assert_eq!(
            Session::accept(&mut bob, &recorded).err(),
            Some(Error::DuplicatePreKeyMessage)
        );
        let one_more = first_message(&alice, &mut bob, &mut rng, false);
        let before = bob.to_bytes();
        assert_eq!(
            Session::accept(&mut bob, &one_more).err(),
            Some(Error::SignedPreKeyExhausted { id: 1 })
        );
        assert_eq!(*bob.to_bytes(), *before);
        // Not replayable: consumes its one-time prekey, records nothing.
        let with_opk = first_message(&alice, &mut bob, &mut rng, true);
        Session::accept(&mut bob, &with_opk).unwrap();
        assert_eq!(
            Session::accept(&mut bob, &with_opk).err(),
            Some(Error::UnknownOneTimePreKey {
                id: with_opk.one_time_prekey_id().unwrap()
            })
        );
        assert_eq!(
            bob.signed_prekeys().next().unwrap().base_key_count,
            MAX_BASE_KEYS_PER_SIGNED_PREKEY
        );
        // Rotation: the new signed prekey takes replayable messages again;
        // the old one keeps refusing its replays until it is removed.
        bob.rotate_signed_prekey(&mut rng, 1).unwrap();
        let fresh = first_message(&alice, &mut bob, &mut rng, false);
        Session::accept(&mut bob, &fresh).unwrap();
        assert_eq!(
            Session::accept(&mut bob, &recorded).err(),
            Some(Error::DuplicatePreKeyMessage)
        );
        bob.remove_signed_prekey(1).unwrap();
        assert_eq!(
            Session::accept(&mut bob, &recorded).err(),
            Some(Error::UnknownSignedPreKey { id: 1 })
        );
    }

    /// The duplicate check comes before the one-time prekey lookup, and a
    /// base key recorded under one signed prekey does not block it under
    /// another (SPEC §7.3 steps 2 to 4).
    #[test]
    fn base_keys_are_recorded_per_signed_prekey() {
        let mut rng = TestRng::new(5);
        let (alice, mut bob) = devices(&mut rng);
        let first = first_message(&alice, &mut bob, &mut rng, false);
        Session::accept(&mut bob, &first).unwrap();
        // The same base key naming an unknown one-time prekey: duplicate.
        let mut bytes = first.as_bytes().to_vec();
        let l = testkit::layout::message(&bytes);
        assert_eq!(l.slice(&bytes, "has_opk"), [0], "no one-time prekey");
        bytes.splice(l.range("has_opk"), [1, 0, 0, 0, 9]);
        let Message::PreKey(renamed) = Message::from_bytes(&bytes).unwrap() else {
            panic!("expected a prekey message");
        };
        assert_eq!(
            Session::accept(&mut bob, &renamed).err(),
            Some(Error::DuplicatePreKeyMessage)
        );
        // Naming a signed prekey that never recorded it: the lookup goes on.
        bob.rotate_signed_prekey(&mut rng, 1).unwrap();
        let spk = bob.signed_prekey().id();
        let mut bytes = first.as_bytes().to_vec();
        l.put_u32(&mut bytes, "spk_id", spk);
        let Message::PreKey(other) = Message::from_bytes(&bytes).unwrap() else {
            panic!("expected a prekey message");
        };
        assert_eq!(
            Session::accept(&mut bob, &other).err(),
            Some(Error::AuthenticationFailed)
        );
    }

    /// A device restored from an older state re-accepts a prekey message it
    /// had accepted (the hazard of SPEC §6); after the reset, that message
    /// and every other made before it are refused, and the generation is
    /// above everything recorded.
    #[test]
    fn reset_after_restore_refuses_earlier_prekey_messages() {
        let mut rng = TestRng::new(6);
        let (alice, mut bob) = devices(&mut rng);
        bob.rotate_signed_prekey(&mut rng, 1).unwrap();
        bob.generate_one_time_prekeys(&mut rng, 2).unwrap();
        let backup = bob.to_bytes();
        let replayable = first_message(&alice, &mut bob, &mut rng, false);
        let with_opk = first_message(&alice, &mut bob, &mut rng, true);
        let pending = first_message(&alice, &mut bob, &mut rng, false);
        // Before the accepts, with the one-time prekey the bundle drew.
        let backup_plus = bob.to_bytes();
        Session::accept(&mut bob, &replayable).unwrap();
        Session::accept(&mut bob, &with_opk).unwrap();
        let latest = bob.generation();

        let mut restored = Device::from_bytes(&backup_plus).unwrap();
        assert!(
            Session::accept(&mut restored, &replayable).is_ok(),
            "the hazard"
        );
        let mut restored = Device::from_bytes(&backup).unwrap();
        assert!(restored.generation() < latest);
        let (spk, kem) = restored
            .reset_prekeys_after_restore(&mut rng, 9, latest)
            .unwrap();
        assert_eq!(restored.generation(), latest + 1);
        assert_eq!(restored.signed_prekey(), spk);
        assert_eq!(restored.signed_prekeys().count(), 1);
        assert_eq!(restored.one_time_prekey_count(), 0);
        for message in [&replayable, &pending] {
            assert_eq!(
                Session::accept(&mut restored, message).err(),
                Some(Error::UnknownSignedPreKey {
                    id: message.signed_prekey_id()
                })
            );
        }
        // The generation never goes below the device's own.
        restored
            .reset_prekeys_after_restore(&mut rng, 9, 0)
            .unwrap();
        assert_eq!(restored.generation(), latest + 2);
        // A bundle of the reset device works.
        let bundle = PreKeyBundle::new(*restored.identity_key(), spk, None, Some(kem));
        assert!(bundle.verify().is_ok());
    }

    #[test]
    fn reset_draws_first() {
        let setup = || {
            let mut rng = TestRng::new(7);
            let mut d = Device::generate(&mut rng, 0).unwrap();
            d.generate_one_time_prekeys(&mut rng, 3).unwrap();
            d
        };
        let draws = fails_cleanly_at_every_draw(
            setup,
            |d| d.to_bytes().to_vec(),
            |d, rng| d.reset_prekeys_after_restore(rng, 1, 50),
        );
        assert_eq!(draws, [32, 64]);
    }

    /// Ids are assigned while the next one still fits: id `u32::MAX` never
    /// is (SPEC §6), set up through the saved counters.
    #[test]
    fn prekey_ids_stop_before_the_last_one() {
        let mut rng = TestRng::new(8);
        let device = Device::generate(&mut rng, 0).unwrap();
        let mut bytes = device.to_bytes();
        bytes[NEXT_SPK..NEXT_SPK + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        bytes[NEXT_OPK..NEXT_OPK + 4].copy_from_slice(&(u32::MAX - 2).to_be_bytes());
        let mut device = Device::from_bytes(&bytes).unwrap();
        let before = device.to_bytes();
        assert_eq!(
            device.rotate_signed_prekey(&mut rng, 0),
            Err(Error::TooManyPreKeys)
        );
        assert_eq!(
            device.reset_prekeys_after_restore(&mut rng, 0, 0),
            Err(Error::TooManyPreKeys)
        );
        assert_eq!(
            device.generate_one_time_prekeys(&mut rng, 3).err(),
            Some(Error::TooManyPreKeys)
        );
        assert_eq!(*device.to_bytes(), *before);
        let ids: Vec<_> = device
            .generate_one_time_prekeys(&mut rng, 2)
            .unwrap()
            .iter()
            .map(OneTimePreKey::id)
            .collect();
        assert_eq!(ids, [u32::MAX - 2, u32::MAX - 1]);
        assert_eq!(
            device.generate_one_time_prekeys(&mut rng, 1).err(),
            Some(Error::TooManyPreKeys)
        );
        assert_eq!(
            device
                .generate_one_time_prekeys(&mut rng, MAX_ONE_TIME_PREKEYS)
                .err(),
            Some(Error::TooManyPreKeys)
        );
    }

    /// SPEC §10.3's rules for the signed prekey list, on the bytes.
    #[test]
    fn saved_signed_prekeys_follow_the_layout() {
        let mut rng = TestRng::new(9);
        let (alice, mut bob) = devices(&mut rng);
        bob.rotate_signed_prekey(&mut rng, 3).unwrap();
        let message = first_message(&alice, &mut bob, &mut rng, false);
        Session::accept(&mut bob, &message).unwrap();
        let bytes = bob.to_bytes();
        let restored = Device::from_bytes(&bytes).unwrap();
        assert_eq!(*restored.to_bytes(), *bytes);
        let counts: Vec<_> = restored
            .signed_prekeys()
            .map(|i| i.base_key_count)
            .collect();
        assert_eq!(counts, [0, 1]);

        // Entries: id 4, created 8, secret 32, signature 64, count 2, keys.
        let count = SPK_COUNT;
        assert_eq!(bytes[count], 2);
        let first = count + 1;
        let second = first + 4 + 8 + 32 + 64 + 2;
        assert_eq!(at::<4>(&bytes, second), [0, 0, 0, 2]);
        let base_keys = second + 4 + 8 + 32 + 64;
        assert_eq!(at::<2>(&bytes, base_keys), [0, 1]);
        assert_eq!(at::<32>(&bytes, base_keys + 2), message.base_key_bytes());

        let broken = |edit: &dyn Fn(&mut Vec<u8>)| {
            let mut b = bytes.to_vec();
            edit(&mut b);
            Device::from_bytes(&b).err()
        };
        assert_eq!(broken(&|b| b[count] = 0), Some(Error::InvalidEncoding));
        assert_eq!(broken(&|b| b[count] = 5), Some(Error::InvalidEncoding));
        // Ids not strictly increasing, or not below the next id.
        assert_eq!(broken(&|b| b[second + 3] = 1), Some(Error::InvalidEncoding));
        assert_eq!(broken(&|b| b[second + 3] = 3), Some(Error::InvalidEncoding));
        // A base key count over the bound, checked before the keys.
        assert_eq!(
            broken(&|b| b[base_keys..base_keys + 2].copy_from_slice(&1001u16.to_be_bytes())),
            Some(Error::InvalidEncoding)
        );
        assert_eq!(
            broken(&|b| b[base_keys..base_keys + 2].copy_from_slice(&1000u16.to_be_bytes())),
            Some(Error::Truncated)
        );
    }
}
