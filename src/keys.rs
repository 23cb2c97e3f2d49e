//! Identity keys, prekeys and the prekey bundle a server publishes.
//!
//! A device identity is a pair of independent keys: an Ed25519 key that
//! signs, and an X25519 key that takes part in X3DH. Both public halves travel
//! together as one [`IdentityKey`]; the fingerprint, the X3DH associated data
//! and every signed prekey signature cover both, so neither half can be
//! swapped without the change showing.
//!
//! SPEC.md §5 (identity, fingerprint, prekeys, bundle), with the encodings
//! of §4 and the validation rules of §4 and §2.

use alloc::vec::Vec;
use core::fmt;

use ed25519_dalek::{SigningKey, VerifyingKey};
use rand_core::TryCryptoRng;
use subtle::ConstantTimeEq;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::codec::{self, Codec, Reader, Sink, tag};
use crate::crypto::{self, label};
use crate::error::{Error, Result};

/// Length of an embedded identity key: Ed25519 public key then X25519 public key.
pub(crate) const IDENTITY_KEY_LEN: usize = 64;

/// The public identity of a device: its Ed25519 signing key and its X25519
/// key-agreement key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct IdentityKey {
    signing: VerifyingKey,
    dh: PublicKey,
}

impl IdentityKey {
    /// Length of [`IdentityKey::to_bytes`].
    pub const ENCODED_LEN: usize = 2 + IDENTITY_KEY_LEN;

    /// The Ed25519 public key, as 32 bytes.
    pub fn signing_key_bytes(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// The X25519 public key, as 32 bytes.
    pub fn dh_key_bytes(&self) -> [u8; 32] {
        self.dh.to_bytes()
    }

    /// The fingerprint users compare out of band.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint(crypto::sha256(&[
            label::FINGERPRINT,
            self.signing.as_bytes(),
            self.dh.as_bytes(),
        ]))
    }

    /// Encodes as version, type tag, Ed25519 key, X25519 key.
    pub fn to_bytes(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0u8; Self::ENCODED_LEN];
        let (header, key) = out.split_at_mut(2);
        header.copy_from_slice(&[codec::VERSION, tag::IDENTITY_KEY]);
        key.copy_from_slice(&self.embedded());
        out
    }

    /// Decodes [`IdentityKey::to_bytes`] strictly.
    ///
    /// # Errors
    ///
    /// The first failing check of SPEC §4: [`Error::Truncated`],
    /// [`Error::UnsupportedVersion`], [`Error::WrongType`],
    /// [`Error::InvalidPublicKey`] (either half, the Ed25519 key first),
    /// [`Error::TrailingBytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        codec::from_slice(tag::IDENTITY_KEY, bytes)
    }

    /// The 64 bytes embedded in other encodings and in the associated data.
    pub(crate) fn embedded(&self) -> [u8; IDENTITY_KEY_LEN] {
        let mut out = [0u8; IDENTITY_KEY_LEN];
        let (ed, x) = out.split_at_mut(32);
        ed.copy_from_slice(self.signing.as_bytes());
        x.copy_from_slice(self.dh.as_bytes());
        out
    }

    pub(crate) fn dh(&self) -> &PublicKey {
        &self.dh
    }

    pub(crate) fn verifying_key(&self) -> &VerifyingKey {
        &self.signing
    }
}

/// Embedded form: the Ed25519 key then the X25519 key, each validated.
impl Codec for IdentityKey {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.signing.encode(out);
        self.dh.encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let signing = VerifyingKey::decode(r)?;
        let dh = PublicKey::decode(r)?;
        Ok(Self { signing, dh })
    }
}

impl fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("IdentityKey")
            .field(&self.fingerprint())
            .finish()
    }
}

/// The private identity of a device. Zeroized on drop; never printed.
pub(crate) struct IdentityKeyPair {
    signing: SigningKey,
    dh: StaticSecret,
    public: IdentityKey,
}

impl IdentityKeyPair {
    /// Draws a new identity: 32 bytes for the Ed25519 seed, then 32 bytes for
    /// the X25519 secret.
    pub(crate) fn generate<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<Self> {
        let mut seed = Zeroizing::new([0u8; 32]);
        crypto::draw(rng, seed.as_mut())?;
        let dh = crypto::draw_x25519(rng)?;
        Ok(Self::from_parts(SigningKey::from_bytes(&seed), dh))
    }

    #[cfg(test)]
    pub(crate) fn from_secret_bytes(signing_seed: &[u8; 32], dh: [u8; 32]) -> Self {
        Self::from_parts(SigningKey::from_bytes(signing_seed), StaticSecret::from(dh))
    }

    fn from_parts(signing: SigningKey, dh: StaticSecret) -> Self {
        let public = IdentityKey {
            signing: signing.verifying_key(),
            dh: PublicKey::from(&dh),
        };
        Self {
            signing,
            dh,
            public,
        }
    }

    /// The public half.
    pub(crate) fn public(&self) -> &IdentityKey {
        &self.public
    }

    fn signing(&self) -> &SigningKey {
        &self.signing
    }

    pub(crate) fn dh(&self) -> &StaticSecret {
        &self.dh
    }
}

/// The Ed25519 seed then the X25519 secret (SPEC §10.3); the public half
/// is recomputed.
impl Codec for IdentityKeyPair {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.signing.encode(out);
        self.dh.encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let signing = SigningKey::decode(r)?;
        let dh = StaticSecret::decode(r)?;
        Ok(Self::from_parts(signing, dh))
    }
}

impl fmt::Debug for IdentityKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityKeyPair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// SHA-256 over the label and both public identity keys. Compared in
/// constant time.
#[derive(Clone, Copy)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The 32 fingerprint bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for Fingerprint {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for Fingerprint {}

/// Lowercase hex in eight groups of eight digits, separated by spaces.
impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, chunk) in self.0.chunks(4).enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            for b in chunk {
                write!(f, "{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// A Double Ratchet public key (SPEC §8.1: DHs, DHr and the key of each
/// receiving chain): an X25519 public key, compared by its 32 bytes.
///
/// Equality is on the bytes, not on the point: x25519-dalek's own equality
/// reduces the encoding modulo p, and the keys of saved receiving chains
/// are not validated (SPEC §4), so two encodings of one point must stay two
/// different keys.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RatchetPublicKey(PublicKey);

impl RatchetPublicKey {
    pub(crate) fn new(key: PublicKey) -> Self {
        Self(key)
    }

    /// The public half of a ratchet secret.
    pub(crate) fn from_secret(secret: &StaticSecret) -> Self {
        Self(PublicKey::from(secret))
    }

    /// 32 bytes taken as they are: a saved receiving chain's key, which is
    /// compared but never used in an exchange (SPEC §4).
    pub(crate) fn from_unvalidated_bytes(bytes: [u8; 32]) -> Self {
        Self(PublicKey::from(bytes))
    }

    /// The key, for an exchange.
    pub(crate) fn key(&self) -> &PublicKey {
        &self.0
    }

    pub(crate) fn to_bytes(self) -> [u8; 32] {
        self.0.to_bytes()
    }
}

impl PartialEq for RatchetPublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes() == other.0.as_bytes()
    }
}

impl Eq for RatchetPublicKey {}

/// Canonical, as every X25519 public key on the wire (SPEC §4).
impl Codec for RatchetPublicKey {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.0.encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        PublicKey::decode(r).map(Self)
    }
}

/// A signed prekey as published: id, X25519 public key and the identity's
/// signature over both.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SignedPreKey {
    id: u32,
    key: PublicKey,
    signature: [u8; 64],
}

impl SignedPreKey {
    /// Length of [`SignedPreKey::to_bytes`].
    pub const ENCODED_LEN: usize = 2 + 4 + 32 + 64;

    pub(crate) fn sign(identity: &IdentityKeyPair, id: u32, key: PublicKey) -> Self {
        let signature = crypto::sign(
            identity.signing(),
            label::SIGNED_PREKEY,
            &[
                identity.public().dh.as_bytes(),
                &id.to_be_bytes(),
                key.as_bytes(),
            ],
        );
        Self { id, key, signature }
    }

    pub(crate) fn from_parts(id: u32, key: PublicKey, signature: [u8; 64]) -> Self {
        Self { id, key, signature }
    }

    /// The identity's Ed25519 signature.
    pub fn signature(&self) -> &[u8; 64] {
        &self.signature
    }

    /// Strictly verifies the signature against `identity`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSignature`] if the signature does not verify strictly
    /// over this id and key under `identity`'s Ed25519 key.
    pub fn verify(&self, identity: &IdentityKey) -> Result<()> {
        crypto::verify(
            identity.verifying_key(),
            label::SIGNED_PREKEY,
            &[
                identity.dh.as_bytes(),
                &self.id.to_be_bytes(),
                self.key.as_bytes(),
            ],
            &self.signature,
        )
    }

    /// The prekey id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The X25519 public key, as 32 bytes.
    pub fn key_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    pub(crate) fn key(&self) -> &PublicKey {
        &self.key
    }

    /// Encodes as version, type tag, id, key, signature.
    pub fn to_bytes(&self) -> Vec<u8> {
        codec::to_vec(tag::SIGNED_PREKEY, self)
    }

    /// Decodes [`SignedPreKey::to_bytes`] strictly. The signature is checked
    /// later, by [`PreKeyBundle::verify`].
    ///
    /// # Errors
    ///
    /// The first failing check of SPEC §4: [`Error::Truncated`],
    /// [`Error::UnsupportedVersion`], [`Error::WrongType`],
    /// [`Error::InvalidPublicKey`], [`Error::TrailingBytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        codec::from_slice(tag::SIGNED_PREKEY, bytes)
    }
}

/// Id, key, signature (SPEC §5.3).
impl Codec for SignedPreKey {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.id.encode(out);
        self.key.encode(out);
        self.signature.encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let id = u32::decode(r)?;
        let key = PublicKey::decode(r)?;
        let signature = r.array()?;
        Ok(Self { id, key, signature })
    }
}

/// A one-time prekey as published: id and X25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct OneTimePreKey {
    id: u32,
    key: PublicKey,
}

impl OneTimePreKey {
    /// Length of [`OneTimePreKey::to_bytes`].
    pub const ENCODED_LEN: usize = 2 + 4 + 32;

    pub(crate) fn new(id: u32, key: PublicKey) -> Self {
        Self { id, key }
    }

    /// The prekey id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The X25519 public key, as 32 bytes.
    pub fn key_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    pub(crate) fn key(&self) -> &PublicKey {
        &self.key
    }

    /// Encodes as version, type tag, id, key.
    pub fn to_bytes(&self) -> Vec<u8> {
        codec::to_vec(tag::ONE_TIME_PREKEY, self)
    }

    /// Decodes [`OneTimePreKey::to_bytes`] strictly.
    ///
    /// # Errors
    ///
    /// The first failing check of SPEC §4: [`Error::Truncated`],
    /// [`Error::UnsupportedVersion`], [`Error::WrongType`],
    /// [`Error::InvalidPublicKey`], [`Error::TrailingBytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        codec::from_slice(tag::ONE_TIME_PREKEY, bytes)
    }
}

/// Id, key (SPEC §5.4).
impl Codec for OneTimePreKey {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.id.encode(out);
        self.key.encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let id = u32::decode(r)?;
        let key = PublicKey::decode(r)?;
        Ok(Self { id, key })
    }
}

/// What a server hands an initiator: the responder's identity, its current
/// signed prekey and, while any are left, one of its one-time prekeys.
///
/// A bundle cannot start a session until [`PreKeyBundle::verify`] has turned
/// it into a [`VerifiedPreKeyBundle`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PreKeyBundle {
    identity: IdentityKey,
    signed_prekey: SignedPreKey,
    one_time_prekey: Option<OneTimePreKey>,
}

impl PreKeyBundle {
    /// Largest length of [`PreKeyBundle::to_bytes`].
    pub const MAX_ENCODED_LEN: usize = 2 + IDENTITY_KEY_LEN + 4 + 32 + 64 + 1 + 4 + 32;

    /// Assembles a bundle from published parts (what a server does).
    pub fn new(
        identity: IdentityKey,
        signed_prekey: SignedPreKey,
        one_time_prekey: Option<OneTimePreKey>,
    ) -> Self {
        Self {
            identity,
            signed_prekey,
            one_time_prekey,
        }
    }

    /// The responder's identity key.
    pub fn identity(&self) -> &IdentityKey {
        &self.identity
    }

    /// The signed prekey.
    pub fn signed_prekey(&self) -> &SignedPreKey {
        &self.signed_prekey
    }

    /// The one-time prekey, if the server had one left.
    pub fn one_time_prekey(&self) -> Option<&OneTimePreKey> {
        self.one_time_prekey.as_ref()
    }

    /// Strictly verifies the signed prekey signature against the bundle's
    /// identity.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSignature`] if the signed prekey's signature does not
    /// verify strictly under the bundle's identity.
    pub fn verify(self) -> Result<VerifiedPreKeyBundle> {
        self.signed_prekey.verify(&self.identity)?;
        Ok(VerifiedPreKeyBundle(self))
    }

    /// Like [`PreKeyBundle::verify`], and also checks that the bundle belongs
    /// to the identity the caller already knows for this contact.
    ///
    /// # Errors
    ///
    /// [`Error::IdentityMismatch`] if the bundle's identity is not
    /// `expected` (checked first, SPEC §5.5), then as
    /// [`PreKeyBundle::verify`].
    pub fn verify_for(self, expected: &IdentityKey) -> Result<VerifiedPreKeyBundle> {
        if self.identity != *expected {
            return Err(Error::IdentityMismatch);
        }
        self.verify()
    }

    /// Encodes as version, type tag, identity, signed prekey (id, key,
    /// signature), then a flag and the one-time prekey (id, key) if present.
    pub fn to_bytes(&self) -> Vec<u8> {
        codec::to_vec(tag::PREKEY_BUNDLE, self)
    }

    /// Decodes [`PreKeyBundle::to_bytes`] strictly. Does not verify.
    ///
    /// # Errors
    ///
    /// The first failing check of SPEC §4: [`Error::Truncated`],
    /// [`Error::UnsupportedVersion`], [`Error::WrongType`],
    /// [`Error::InvalidPublicKey`], [`Error::InvalidEncoding`] (the one-time
    /// prekey flag), [`Error::TrailingBytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        codec::from_slice(tag::PREKEY_BUNDLE, bytes)
    }
}

/// Identity, signed prekey, then the optional one-time prekey (SPEC §5.5).
impl Codec for PreKeyBundle {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.identity.encode(out);
        self.signed_prekey.encode(out);
        self.one_time_prekey.encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let identity = IdentityKey::decode(r)?;
        let signed_prekey = SignedPreKey::decode(r)?;
        let one_time_prekey = Option::<OneTimePreKey>::decode(r)?;
        Ok(Self {
            identity,
            signed_prekey,
            one_time_prekey,
        })
    }
}

/// A prekey bundle whose signed prekey signature verified strictly. Only
/// [`PreKeyBundle::verify`] makes one.
#[derive(Clone, Debug)]
pub struct VerifiedPreKeyBundle(PreKeyBundle);

impl VerifiedPreKeyBundle {
    /// The verified bundle.
    pub fn bundle(&self) -> &PreKeyBundle {
        &self.0
    }
}
