//! The local device: its identity and the secrets of the prekeys it published.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::fmt;

use rand_core::CryptoRng;
use x25519_dalek::{PublicKey, StaticSecret};

use crate::error::{Error, Result};
use crate::keys::{IdentityKey, IdentityKeyPair, OneTimePreKey, SignedPreKey};

/// Most signed prekeys a device keeps: the current one and the ones before it,
/// for prekey messages still in flight after a rotation.
pub const MAX_SIGNED_PREKEYS: usize = 4;
/// Most unused one-time prekeys a device holds.
pub const MAX_ONE_TIME_PREKEYS: usize = 1000;
/// How many base keys of accepted prekey messages a device remembers, to
/// reject a replayed prekey message (which matters most when it used no
/// one-time prekey).
pub const MAX_RECENT_BASE_KEYS: usize = 1000;

/// Secrets are boxed so that moving a pair (rotation) or the maps and
/// queues that hold them only moves pointers; each secret is wiped in its
/// own block when dropped.
pub(crate) struct SignedPreKeyPair {
    pub(crate) secret: Box<StaticSecret>,
    pub(crate) public: SignedPreKey,
}

/// A device's long-term state: its identity key pair, its signed prekeys and
/// the secrets of its unused one-time prekeys.
///
/// The caller persists it ([`Device::to_bytes`]) after every call that takes
/// `&mut self`, including [`Session::accept`](crate::Session::accept).
pub struct Device {
    pub(crate) identity: IdentityKeyPair,
    pub(crate) signed_prekey: SignedPreKeyPair,
    /// Earlier signed prekeys, oldest first; at most
    /// [`MAX_SIGNED_PREKEYS`] - 1.
    pub(crate) old_signed_prekeys: VecDeque<SignedPreKeyPair>,
    pub(crate) one_time_prekeys: BTreeMap<u32, Box<StaticSecret>>,
    pub(crate) next_signed_prekey_id: u32,
    pub(crate) next_one_time_prekey_id: u32,
    /// Oldest first.
    pub(crate) recent_base_keys: VecDeque<[u8; 32]>,
}

impl Device {
    /// A new device: draws an identity (64 bytes), then the first signed
    /// prekey (32 bytes, id 1).
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let identity = IdentityKeyPair::generate(rng);
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
            let secret = StaticSecret::random_from_rng(rng);
            published.push(OneTimePreKey::new(id, PublicKey::from(&secret)));
            self.one_time_prekeys.insert(id, Box::new(secret));
        }
        self.next_one_time_prekey_id = next;
        Ok(published)
    }

    /// How many one-time prekeys are unused, so the app knows when to publish
    /// more.
    pub fn one_time_prekey_count(&self) -> usize {
        self.one_time_prekeys.len()
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
            .map(AsRef::as_ref)
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

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Device")
            .field("identity", self.identity.public())
            .field("signed_prekey", &self.signed_prekey.public.id())
            .field("one_time_prekeys", &self.one_time_prekeys.len())
            .finish_non_exhaustive()
    }
}
