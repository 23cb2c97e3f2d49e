//! Identity keys, prekeys and the prekey bundle a server publishes.
//!
//! A device identity is one Ed25519 key pair. It signs the device's prekeys,
//! and takes part in X3DH as an X25519 key pair through the birational map
//! (SPEC §2.1): secret `SHA512(seed)[0..32]`, public the Montgomery form of
//! the Ed25519 key. There are no halves that could be paired with another
//! holder's.
//!
//! SPEC.md §5 (identity, fingerprint, prekeys, bundle), with the encodings
//! of §4 and the validation rules of §4 and §2.

use alloc::vec::Vec;
use core::fmt;
use core::hash::{Hash, Hasher};

use ed25519_dalek::{SigningKey, VerifyingKey};
use rand_core::TryCryptoRng;
use subtle::ConstantTimeEq;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::codec::{self, Codec, Reader, Sink, tag};
use crate::crypto::kem::{self, EncapsulationKey};
use crate::crypto::{self, label};
use crate::error::{Error, Result};

/// Length of an embedded identity key: the Ed25519 public key.
pub(crate) const IDENTITY_KEY_LEN: usize = 32;

/// The public identity of a device: its Ed25519 public key `IK`.
///
/// Applications identify a device by this key (or its fingerprint), never
/// by its X25519 form, which up to 16 Ed25519 encodings share (SPEC §5.1).
/// Equality and hashing are on the 32 bytes.
#[derive(Clone, Copy)]
pub struct IdentityKey {
    signing: VerifyingKey,
    /// `IdU(IK)`, computed once when the key is decoded (SPEC §2.1).
    dh: PublicKey,
}

impl IdentityKey {
    /// Length of [`IdentityKey::to_bytes`].
    pub const ENCODED_LEN: usize = 2 + IDENTITY_KEY_LEN;

    fn new(signing: VerifyingKey) -> Self {
        Self {
            dh: PublicKey::from(signing.to_montgomery().to_bytes()),
            signing,
        }
    }

    /// The 32-byte Ed25519 public key `IK`.
    pub fn as_bytes(&self) -> &[u8; IDENTITY_KEY_LEN] {
        self.signing.as_bytes()
    }

    /// The fingerprint users compare out of band (SPEC §5.2).
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint(crypto::sha256(&[label::FINGERPRINT, self.as_bytes()]))
    }

    /// Encodes as version, type tag, `IK` (SPEC §5.1).
    pub fn to_bytes(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0u8; Self::ENCODED_LEN];
        let (header, key) = out.split_at_mut(2);
        header.copy_from_slice(&[codec::VERSION, tag::IDENTITY_KEY]);
        key.copy_from_slice(self.as_bytes());
        out
    }

    /// Decodes [`IdentityKey::to_bytes`] strictly.
    ///
    /// # Errors
    ///
    /// The first failing check of SPEC §4: [`Error::Truncated`],
    /// [`Error::UnsupportedVersion`], [`Error::WrongType`],
    /// [`Error::InvalidPublicKey`] (not a valid, canonical Ed25519 key of
    /// large order, SPEC §2), [`Error::TrailingBytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        codec::from_slice(tag::IDENTITY_KEY, bytes)
    }

    /// `IdU(IK)`, the key's X25519 form, for X3DH.
    pub(crate) fn dh(&self) -> &PublicKey {
        &self.dh
    }

    pub(crate) fn verifying_key(&self) -> &VerifyingKey {
        &self.signing
    }
}

impl PartialEq for IdentityKey {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for IdentityKey {}

impl Hash for IdentityKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

/// Embedded form: the 32 bytes of `IK`, decoded with the Ed25519 rules.
impl Codec for IdentityKey {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.signing.encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        VerifyingKey::decode(r).map(Self::new)
    }
}

impl fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("IdentityKey")
            .field(&self.fingerprint())
            .finish()
    }
}

/// The private identity of a device: the Ed25519 signing key and its X25519
/// form. Zeroized on drop; never printed.
pub(crate) struct IdentityKeyPair {
    signing: SigningKey,
    /// `IdX(seed) = SHA512(seed)[0..32]`, unreduced (SPEC §2.1).
    dh: StaticSecret,
    public: IdentityKey,
}

impl IdentityKeyPair {
    /// Draws a new identity: the 32-byte Ed25519 seed (SPEC §5.1).
    pub(crate) fn generate<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<Self> {
        let mut seed = Zeroizing::new([0u8; 32]);
        crypto::draw(rng, seed.as_mut())?;
        Ok(Self::from_signing_key(SigningKey::from_bytes(&seed)))
    }

    #[cfg(test)]
    pub(crate) fn from_seed(seed: &[u8; 32]) -> Self {
        Self::from_signing_key(SigningKey::from_bytes(seed))
    }

    fn from_signing_key(signing: SigningKey) -> Self {
        let dh = StaticSecret::from(*Zeroizing::new(signing.to_scalar_bytes()));
        let public = IdentityKey::new(signing.verifying_key());
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

    /// Signs `label || message` with the identity key: the signatures an
    /// identity makes outside this module (the group owner signature, SPEC
    /// §15.6).
    pub(crate) fn sign(&self, label: &[u8], message: &[&[u8]]) -> [u8; 64] {
        crypto::sign(&self.signing, label, message)
    }

    /// `IdX(seed)`, for X3DH.
    pub(crate) fn dh(&self) -> &StaticSecret {
        &self.dh
    }
}

/// The Ed25519 seed (SPEC §10.3); the rest is recomputed.
impl Codec for IdentityKeyPair {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.signing.encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        SigningKey::decode(r).map(Self::from_signing_key)
    }
}

impl fmt::Debug for IdentityKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityKeyPair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// SHA-256 over the label and the identity key (SPEC §5.2). Compared in
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
            &[&id.to_be_bytes(), key.as_bytes()],
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
            &[&self.id.to_be_bytes(), self.key.as_bytes()],
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

/// The algorithm byte of ML-KEM-1024, the only KEM of version 2 (SPEC §5.5).
const KEM_ALGORITHM: u8 = 0x01;

/// Whether a KEM prekey is used once or until it is replaced (SPEC §5.5).
/// The kind is signed with the key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum KemPreKeyKind {
    /// Deleted by the device when a prekey message uses it.
    OneTime,
    /// The device's fallback while the server has no one-time KEM prekey
    /// left; kept until rotated out.
    LastResort,
}

/// One byte: 0 one-time, 1 last-resort.
impl Codec for KemPreKeyKind {
    fn encode<S: Sink>(&self, out: &mut S) {
        let byte: u8 = match self {
            Self::OneTime => 0,
            Self::LastResort => 1,
        };
        byte.encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        match r.u8()? {
            0 => Ok(Self::OneTime),
            1 => Ok(Self::LastResort),
            _ => Err(Error::InvalidEncoding),
        }
    }
}

/// `EncodeKEM(ek) = alg || ek` (SPEC §5.5): the algorithm byte must be
/// ML-KEM-1024's (`InvalidEncoding`), and the key must pass the FIPS 203
/// check (`InvalidPublicKey`).
impl Codec for EncapsulationKey {
    fn encode<S: Sink>(&self, out: &mut S) {
        KEM_ALGORITHM.encode(out);
        out.put(self.as_bytes());
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        if r.u8()? != KEM_ALGORITHM {
            return Err(Error::InvalidEncoding);
        }
        Self::from_bytes(&r.array()?)
    }
}

/// A KEM prekey as published: id, kind, ML-KEM-1024 encapsulation key, and
/// the identity's signature over all three.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct KemPreKey {
    id: u32,
    kind: KemPreKeyKind,
    key: EncapsulationKey,
    signature: [u8; 64],
}

impl KemPreKey {
    /// Length of [`KemPreKey::to_bytes`].
    pub const ENCODED_LEN: usize = 2 + 4 + 1 + 1 + kem::EK_LEN + 64;

    pub(crate) fn sign(
        identity: &IdentityKeyPair,
        id: u32,
        kind: KemPreKeyKind,
        key: EncapsulationKey,
    ) -> Self {
        let signed = Self {
            id,
            kind,
            key,
            signature: [0; 64],
        };
        let signature = crypto::sign(
            identity.signing(),
            label::KEM_PREKEY,
            &[&signed.signed_part()],
        );
        Self {
            signature,
            ..signed
        }
    }

    pub(crate) fn from_parts(
        id: u32,
        kind: KemPreKeyKind,
        key: EncapsulationKey,
        signature: [u8; 64],
    ) -> Self {
        Self {
            id,
            kind,
            key,
            signature,
        }
    }

    /// `u32(id) || u8(kind) || EncodeKEM(ek)`, what the signature covers
    /// after its label (SPEC §5.5).
    fn signed_part(&self) -> Vec<u8> {
        let mut part = Vec::with_capacity(4 + 1 + 1 + kem::EK_LEN);
        self.id.encode(&mut part);
        self.kind.encode(&mut part);
        self.key.encode(&mut part);
        part
    }

    /// Strictly verifies the signature against `identity`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSignature`] if the signature does not verify strictly
    /// over this id, kind and key under `identity`.
    pub fn verify(&self, identity: &IdentityKey) -> Result<()> {
        crypto::verify(
            identity.verifying_key(),
            label::KEM_PREKEY,
            &[&self.signed_part()],
            &self.signature,
        )
    }

    /// The prekey id (one counter for both kinds).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// One-time or last-resort.
    pub fn kind(&self) -> KemPreKeyKind {
        self.kind
    }

    /// The ML-KEM-1024 encapsulation key, as 1568 bytes.
    pub fn key_bytes(&self) -> &[u8; kem::EK_LEN] {
        self.key.as_bytes()
    }

    /// The identity's Ed25519 signature.
    pub fn signature(&self) -> &[u8; 64] {
        &self.signature
    }

    pub(crate) fn key(&self) -> &EncapsulationKey {
        &self.key
    }

    /// Encodes as version, type tag, id, kind, algorithm, key, signature
    /// (SPEC §5.5).
    pub fn to_bytes(&self) -> Vec<u8> {
        codec::to_vec(tag::KEM_PREKEY, self)
    }

    /// Decodes [`KemPreKey::to_bytes`] strictly. The signature is checked
    /// later, by [`PreKeyBundle::verify`].
    ///
    /// # Errors
    ///
    /// The first failing check of SPEC §4 and §5.5: [`Error::Truncated`],
    /// [`Error::UnsupportedVersion`], [`Error::WrongType`],
    /// [`Error::InvalidEncoding`] (the kind, then the algorithm byte),
    /// [`Error::InvalidPublicKey`] (the FIPS 203 check of the key),
    /// [`Error::TrailingBytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        codec::from_slice(tag::KEM_PREKEY, bytes)
    }
}

/// Id, kind, algorithm, key, signature (SPEC §5.5).
impl Codec for KemPreKey {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.id.encode(out);
        self.kind.encode(out);
        self.key.encode(out);
        self.signature.encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let id = u32::decode(r)?;
        let kind = KemPreKeyKind::decode(r)?;
        let key = EncapsulationKey::decode(r)?;
        let signature = r.array()?;
        Ok(Self {
            id,
            kind,
            key,
            signature,
        })
    }
}

/// What a server hands an initiator (SPEC §5.6): the responder's identity,
/// its current signed prekey, one of its one-time prekeys while any are
/// left, and a KEM prekey (a one-time one while any are left, else the
/// last-resort one).
///
/// A bundle cannot start a session until [`PreKeyBundle::verify`] has turned
/// it into a [`VerifiedPreKeyBundle`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PreKeyBundle {
    identity: IdentityKey,
    signed_prekey: SignedPreKey,
    one_time_prekey: Option<OneTimePreKey>,
    kem_prekey: Option<KemPreKey>,
}

impl PreKeyBundle {
    /// Largest length of [`PreKeyBundle::to_bytes`] (with both optional
    /// prekeys).
    pub const MAX_ENCODED_LEN: usize = 2
        + IDENTITY_KEY_LEN
        + (SignedPreKey::ENCODED_LEN - 2)
        + 1
        + (OneTimePreKey::ENCODED_LEN - 2)
        + 1
        + (KemPreKey::ENCODED_LEN - 2);

    /// Assembles a bundle from published parts (what a server does).
    pub fn new(
        identity: IdentityKey,
        signed_prekey: SignedPreKey,
        one_time_prekey: Option<OneTimePreKey>,
        kem_prekey: Option<KemPreKey>,
    ) -> Self {
        Self {
            identity,
            signed_prekey,
            one_time_prekey,
            kem_prekey,
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

    /// The KEM prekey, if the responder offers post-quantum key agreement.
    pub fn kem_prekey(&self) -> Option<&KemPreKey> {
        self.kem_prekey.as_ref()
    }

    /// Strictly verifies the bundle's signatures against its identity: the
    /// signed prekey's, then the KEM prekey's (SPEC §5.7). The
    /// key-agreement policy is applied when the session starts.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSignature`] if either signature does not verify
    /// strictly under the bundle's identity.
    pub fn verify(self) -> Result<VerifiedPreKeyBundle> {
        self.signed_prekey.verify(&self.identity)?;
        if let Some(kem_prekey) = &self.kem_prekey {
            kem_prekey.verify(&self.identity)?;
        }
        Ok(VerifiedPreKeyBundle(self))
    }

    /// Like [`PreKeyBundle::verify`], and first checks that the bundle
    /// belongs to the identity the caller already knows for this contact.
    ///
    /// # Errors
    ///
    /// [`Error::IdentityMismatch`] if the bundle's identity is not
    /// `expected` (checked first, SPEC §5.7), then as
    /// [`PreKeyBundle::verify`].
    pub fn verify_for(self, expected: &IdentityKey) -> Result<VerifiedPreKeyBundle> {
        if self.identity != *expected {
            return Err(Error::IdentityMismatch);
        }
        self.verify()
    }

    /// Encodes as SPEC §5.6: version, type tag, identity, signed prekey
    /// (id, key, signature), a flag and the one-time prekey (id, key), a
    /// flag and the KEM prekey (id, kind, algorithm, key, signature).
    pub fn to_bytes(&self) -> Vec<u8> {
        codec::to_vec(tag::PREKEY_BUNDLE, self)
    }

    /// Decodes [`PreKeyBundle::to_bytes`] strictly. Does not verify.
    ///
    /// # Errors
    ///
    /// The first failing check of SPEC §4 in field order:
    /// [`Error::Truncated`], [`Error::UnsupportedVersion`],
    /// [`Error::WrongType`], [`Error::InvalidPublicKey`],
    /// [`Error::InvalidEncoding`] (a presence flag, the KEM prekey's kind or
    /// algorithm), [`Error::TrailingBytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        codec::from_slice(tag::PREKEY_BUNDLE, bytes)
    }
}

/// Identity, signed prekey, then the optional one-time and KEM prekeys
/// (SPEC §5.6).
impl Codec for PreKeyBundle {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.identity.encode(out);
        self.signed_prekey.encode(out);
        self.one_time_prekey.encode(out);
        self.kem_prekey.encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let identity = IdentityKey::decode(r)?;
        let signed_prekey = SignedPreKey::decode(r)?;
        let one_time_prekey = Option::<OneTimePreKey>::decode(r)?;
        let kem_prekey = Option::<KemPreKey>::decode(r)?;
        Ok(Self {
            identity,
            signed_prekey,
            one_time_prekey,
            kem_prekey,
        })
    }
}

/// A prekey bundle whose signatures verified strictly. Only
/// [`PreKeyBundle::verify`] makes one.
#[derive(Clone, Debug)]
pub struct VerifiedPreKeyBundle(PreKeyBundle);

impl VerifiedPreKeyBundle {
    /// The verified bundle.
    pub fn bundle(&self) -> &PreKeyBundle {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    //! SPEC §2.1 (the identity's X25519 form), §5.1 to §5.3 and §5.6, checked
    //! on bytes with the published labels.

    use ed25519_dalek::{Signature, Verifier};
    use sha2::{Digest, Sha512};

    use super::*;
    use crate::testing::TestRng;

    fn h32(s: &str) -> [u8; 32] {
        let v: Vec<u8> = (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect();
        v.try_into().unwrap()
    }

    /// `X25519(IdX(seed), 9) == IdU(IK)`, with `IdX` computed here from
    /// SHA-512 directly, for many seeds.
    #[test]
    fn identity_x25519_form_matches_its_ed25519_key() {
        let mut rng = TestRng::new(11);
        for _ in 0..500 {
            let mut seed = [0u8; 32];
            crypto::draw(&mut rng, &mut seed).unwrap();
            let pair = IdentityKeyPair::from_seed(&seed);
            let mut idx = [0u8; 32];
            idx.copy_from_slice(&Sha512::digest(seed)[..32]);
            assert_eq!(pair.dh().to_bytes(), idx);
            let public = PublicKey::from(&StaticSecret::from(idx));
            assert_eq!(public.as_bytes(), pair.public().dh().as_bytes());
            // Decoding the 32 bytes recomputes the same X25519 form.
            let decoded = IdentityKey::from_bytes(&pair.public().to_bytes()).unwrap();
            assert_eq!(decoded.dh().as_bytes(), public.as_bytes());
        }
    }

    /// Known answers for RFC 8032's first two seeds, computed outside sotto
    /// (`IdX` with SHA-512, `IdU` with `u = (1 + y) / (1 - y) mod p`).
    #[test]
    fn identity_x25519_form_known_answers() {
        for (seed, ik, idx, idu) in [
            (
                "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
                "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
                "357c83864f2833cb427a2ef1c00a013cfdff2768d980c0a3a520f006904de90f",
                "d85e07ec22b0ad881537c2f44d662d1a143cf830c57aca4305d85c7a90f6b62e",
            ),
            (
                "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
                "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
                "6ebd9ed75882d52815a97585caf4790a7f6c6b3b7f821c5e259a24b02e502e11",
                "25c704c594b88afc00a76b69d1ed2b984d7e22550f3ed0802d04fbcd07d38d47",
            ),
        ] {
            let pair = IdentityKeyPair::from_seed(&h32(seed));
            assert_eq!(pair.public().as_bytes(), &h32(ik));
            assert_eq!(pair.dh().to_bytes(), h32(idx));
            assert_eq!(pair.public().dh().to_bytes(), h32(idu));
        }
    }

    /// Two identities agree on `DH(IdX(a), IdU(B)) == DH(IdX(b), IdU(A))`.
    #[test]
    fn identities_agree_through_their_x25519_forms() {
        let a = IdentityKeyPair::from_seed(&[1; 32]);
        let b = IdentityKeyPair::from_seed(&[2; 32]);
        let ab = crypto::x25519(a.dh(), b.public().dh()).unwrap();
        let ba = crypto::x25519(b.dh(), a.public().dh()).unwrap();
        assert_eq!(*ab, *ba);
    }

    /// The 34-byte encoding (SPEC §5.1), the fingerprint over the published
    /// label (§5.2), and the Ed25519 decoding rules (§2).
    #[test]
    fn identity_encoding_and_fingerprint() {
        let pair = IdentityKeyPair::from_seed(&[3; 32]);
        let ik = *pair.public();
        let bytes = ik.to_bytes();
        assert_eq!(bytes.len(), 34);
        let l = testkit::layout::identity_key(&bytes);
        assert_eq!(l.slice(&bytes, "version"), [2]);
        assert_eq!(l.slice(&bytes, "type"), [0x10]);
        assert_eq!(l.slice(&bytes, "identity"), ik.as_bytes());
        assert_eq!(IdentityKey::from_bytes(&bytes).unwrap(), ik);

        let mut fp = sha2::Sha256::new();
        fp.update(b"sotto v2 fingerprint");
        fp.update(ik.as_bytes());
        assert_eq!(ik.fingerprint().as_bytes()[..], fp.finalize()[..]);

        let mut trailing = bytes.to_vec();
        trailing.push(0);
        assert_eq!(
            IdentityKey::from_bytes(&trailing),
            Err(Error::TrailingBytes)
        );
        let short = &bytes[..bytes.len() - 1];
        assert_eq!(IdentityKey::from_bytes(short), Err(Error::Truncated));
        // The identity point (small order), then a non-canonical y = p + 3.
        let mut small = bytes;
        let mut point = [0u8; 32];
        point[0] = 1;
        l.put(&mut small, "identity", &point);
        assert_eq!(
            IdentityKey::from_bytes(&small),
            Err(Error::InvalidPublicKey)
        );
        let mut non_canonical = bytes;
        let mut point = [0xffu8; 32];
        point[0] = 0xf0;
        point[31] = 0x7f;
        l.put(&mut non_canonical, "identity", &point);
        assert_eq!(
            IdentityKey::from_bytes(&non_canonical),
            Err(Error::InvalidPublicKey)
        );
    }

    /// The signed prekey signature is the identity's Ed25519 signature over
    /// `"sotto v2 signed prekey" || u32(id) || SPK.pub` (SPEC §5.3), checked
    /// here with ed25519-dalek on the encoded bytes; under another identity
    /// it does not verify.
    #[test]
    fn signed_prekey_signature_covers_label_id_and_key() {
        let pair = IdentityKeyPair::from_seed(&[4; 32]);
        let spk = PublicKey::from(&StaticSecret::from([5; 32]));
        let signed = SignedPreKey::sign(&pair, 0x0102_0304, spk);
        let bytes = signed.to_bytes();
        assert_eq!(bytes.len(), SignedPreKey::ENCODED_LEN);
        let l = testkit::layout::signed_prekey(&bytes);
        assert_eq!(l.slice(&bytes, "version"), [2]);
        assert_eq!(l.slice(&bytes, "type"), [0x11]);
        let mut message = b"sotto v2 signed prekey".to_vec();
        message.extend_from_slice(&bytes[l.start("id")..l.end_of("public")]);
        let signature = Signature::from_slice(l.slice(&bytes, "signature")).unwrap();
        pair.public()
            .verifying_key()
            .verify(&message, &signature)
            .unwrap();
        signed.verify(pair.public()).unwrap();
        let other = IdentityKeyPair::from_seed(&[6; 32]);
        assert_eq!(signed.verify(other.public()), Err(Error::InvalidSignature));
        let bundle = PreKeyBundle::new(*other.public(), signed, None, None);
        assert_eq!(bundle.verify().err(), Some(Error::InvalidSignature));
    }
}
