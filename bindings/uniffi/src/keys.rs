//! Identity keys, prekeys as published, bundles and their verification, and
//! what can be read off a message before decrypting it.

use std::sync::Arc;

use sotto::{KemPreKey, Message, OneTimePreKey, SignedPreKey};

use crate::error::Result;

/// A device's public identity key: who a session or a group chain belongs
/// to. Compare two with `==` (Kotlin `equals`, Python `==`).
#[derive(Debug, PartialEq, Eq, Hash, uniffi::Object)]
#[uniffi::export(Debug, Eq, Hash)]
pub struct IdentityKey(pub(crate) sotto::IdentityKey);

impl IdentityKey {
    pub(crate) fn arc(key: &sotto::IdentityKey) -> Arc<Self> {
        Arc::new(Self(*key))
    }
}

#[uniffi::export]
impl IdentityKey {
    /// Parses an encoded identity key (34 bytes, as [`IdentityKey::to_bytes`]
    /// gives it).
    ///
    /// # Errors
    ///
    /// `Truncated`, `TrailingBytes`, `UnsupportedVersion`, `WrongType`,
    /// `InvalidPublicKey`.
    #[uniffi::constructor]
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Arc<Self>> {
        Ok(Arc::new(Self(sotto::IdentityKey::from_bytes(&bytes)?)))
    }

    /// The encoded key (34 bytes): what to store and send.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.to_bytes().to_vec()
    }

    /// The fingerprint (32 bytes), for users to compare out of band.
    pub fn fingerprint(&self) -> Vec<u8> {
        self.0.fingerprint().as_bytes().to_vec()
    }

    /// The fingerprint as lowercase hex in eight groups of eight digits.
    pub fn fingerprint_text(&self) -> String {
        self.0.fingerprint().to_string()
    }
}

/// A published prekey with its id: what a device hands to the server.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PublishedPreKey {
    /// The prekey id (the server hands out each one-time prekey once).
    pub id: u32,
    /// The encoded prekey (signed: 102 bytes, one-time: 38, KEM: 1640).
    pub bytes: Vec<u8>,
}

impl PublishedPreKey {
    pub(crate) fn signed(prekey: &SignedPreKey) -> Self {
        Self {
            id: prekey.id(),
            bytes: prekey.to_bytes(),
        }
    }

    pub(crate) fn one_time(prekey: &OneTimePreKey) -> Self {
        Self {
            id: prekey.id(),
            bytes: prekey.to_bytes(),
        }
    }

    pub(crate) fn kem(prekey: &KemPreKey) -> Self {
        Self {
            id: prekey.id(),
            bytes: prekey.to_bytes(),
        }
    }
}

/// A prekey bundle as a server hands it out, not yet verified.
#[derive(Debug, uniffi::Object)]
pub struct PreKeyBundle(pub(crate) sotto::PreKeyBundle);

#[uniffi::export]
impl PreKeyBundle {
    /// Assembles a bundle from published parts (what a server does): the
    /// identity key, the signed prekey, and optionally a one-time prekey and
    /// a KEM prekey (one-time or last-resort). Signatures are checked by
    /// [`PreKeyBundle::verify`].
    ///
    /// # Errors
    ///
    /// The parse errors of each part (`Truncated`, `WrongType`,
    /// `InvalidPublicKey`, ...).
    #[uniffi::constructor]
    pub fn new(
        identity: Arc<IdentityKey>,
        signed_prekey: Vec<u8>,
        one_time_prekey: Option<Vec<u8>>,
        kem_prekey: Option<Vec<u8>>,
    ) -> Result<Arc<Self>> {
        let signed = SignedPreKey::from_bytes(&signed_prekey)?;
        let one_time = one_time_prekey
            .map(|b| OneTimePreKey::from_bytes(&b))
            .transpose()?;
        let kem = kem_prekey.map(|b| KemPreKey::from_bytes(&b)).transpose()?;
        Ok(Arc::new(Self(sotto::PreKeyBundle::new(
            identity.0, signed, one_time, kem,
        ))))
    }

    /// Parses an encoded bundle.
    ///
    /// # Errors
    ///
    /// The parse errors (`Truncated`, `TrailingBytes`, `WrongType`,
    /// `InvalidEncoding`, `InvalidPublicKey`, ...).
    #[uniffi::constructor]
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Arc<Self>> {
        Ok(Arc::new(Self(sotto::PreKeyBundle::from_bytes(&bytes)?)))
    }

    /// The encoded bundle.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.to_bytes()
    }

    /// The identity key the bundle claims.
    pub fn identity(&self) -> Arc<IdentityKey> {
        IdentityKey::arc(self.0.identity())
    }

    /// Whether the bundle carries a KEM prekey (so that PQXDH is possible).
    pub fn has_kem_prekey(&self) -> bool {
        self.0.kem_prekey().is_some()
    }

    /// Checks every signature strictly against the bundle's own identity
    /// key. Use [`PreKeyBundle::verify_for`] when you know whose bundle it
    /// should be.
    ///
    /// # Errors
    ///
    /// `InvalidSignature`.
    pub fn verify(&self) -> Result<Arc<VerifiedPreKeyBundle>> {
        Ok(Arc::new(VerifiedPreKeyBundle(self.0.clone().verify()?)))
    }

    /// As [`PreKeyBundle::verify`], and the identity must be `expected`.
    ///
    /// # Errors
    ///
    /// `IdentityMismatch`, then `InvalidSignature`.
    pub fn verify_for(&self, expected: Arc<IdentityKey>) -> Result<Arc<VerifiedPreKeyBundle>> {
        Ok(Arc::new(VerifiedPreKeyBundle(
            self.0.clone().verify_for(&expected.0)?,
        )))
    }
}

/// A bundle whose signatures verified: the only thing a session can be
/// started from.
#[derive(Debug, uniffi::Object)]
pub struct VerifiedPreKeyBundle(pub(crate) sotto::VerifiedPreKeyBundle);

#[uniffi::export]
impl VerifiedPreKeyBundle {
    /// The verified identity key.
    pub fn identity(&self) -> Arc<IdentityKey> {
        IdentityKey::arc(self.0.bundle().identity())
    }

    /// Whether the bundle carries a KEM prekey.
    pub fn has_kem_prekey(&self) -> bool {
        self.0.bundle().kem_prekey().is_some()
    }
}

/// The id of an encoded prekey of any kind (signed, one-time, KEM).
///
/// # Errors
///
/// The parse errors; `WrongType` if it is no prekey.
#[uniffi::export]
pub fn prekey_id(prekey: Vec<u8>) -> Result<u32> {
    let wrong = |e: &sotto::Error| matches!(e, sotto::Error::WrongType { .. });
    Ok(match SignedPreKey::from_bytes(&prekey) {
        Ok(spk) => spk.id(),
        Err(e) if wrong(&e) => match OneTimePreKey::from_bytes(&prekey) {
            Ok(opk) => opk.id(),
            Err(e) if wrong(&e) => KemPreKey::from_bytes(&prekey)?.id(),
            Err(e) => return Err(e.into()),
        },
        Err(e) => return Err(e.into()),
    })
}

/// The two kinds of pairwise message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum MessageKind {
    /// Starts a session (and repeats its prekey header until the first
    /// reply): give it to `Device.accept` if no session with its base key
    /// exists yet.
    PreKey,
    /// A message in an established session.
    Ratchet,
}

/// What a message says about itself before it is decrypted. None of it is
/// authenticated until the message decrypts.
#[derive(Debug, Clone, uniffi::Record)]
pub struct MessageInfo {
    /// Its kind.
    pub kind: MessageKind,
    /// For a prekey message: the identity key it claims to come from.
    pub sender_identity: Option<Arc<IdentityKey>>,
    /// For a prekey message: the base key (32 bytes), which names the
    /// session it starts (`Session.base_key`).
    pub base_key: Option<Vec<u8>>,
}

/// Parses a pairwise message strictly and tells its kind (and, for a
/// prekey message, its claimed sender and base key), to route it.
///
/// # Errors
///
/// The parse errors (`Truncated`, `TooLarge`, `WrongType`, ...).
#[uniffi::export]
pub fn message_info(message: Vec<u8>) -> Result<MessageInfo> {
    Ok(match Message::from_vec(message)? {
        Message::PreKey(m) => MessageInfo {
            kind: MessageKind::PreKey,
            sender_identity: Some(IdentityKey::arc(m.identity())),
            base_key: Some(m.base_key_bytes().to_vec()),
        },
        Message::Ratchet(_) => MessageInfo {
            kind: MessageKind::Ratchet,
            sender_identity: None,
            base_key: None,
        },
    })
}
