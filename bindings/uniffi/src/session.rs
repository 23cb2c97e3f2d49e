//! A pairwise session (the Double Ratchet after PQXDH) and the plaintexts
//! it gives.

use std::sync::{Arc, Mutex};

use sotto::Message;
use sotto_bindings_common::{OsRng, storage_key};

use crate::error::{Result, lock};
use crate::keys::IdentityKey;

/// Which key agreement started a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum KeyAgreement {
    /// Classical X3DH (only through the `_allow_classical` calls).
    X3dh,
    /// X3DH with an ML-KEM-1024 encapsulation: the default.
    Pqxdh,
}

/// Which side of the key agreement a session was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Role {
    /// Fetched the bundle and wrote first.
    Initiator,
    /// Published the bundle and accepted the first message.
    Responder,
}

/// A decrypted pairwise message with the identity of the session's peer.
/// Only `Device.accept` and `Session.decrypt` make one, so it proves which
/// session the bytes came out of: it is what `GroupStore.install` takes.
#[derive(Debug, uniffi::Object)]
pub struct Plaintext(pub(crate) sotto::Plaintext);

#[uniffi::export]
impl Plaintext {
    /// The plaintext bytes.
    pub fn bytes(&self) -> Vec<u8> {
        self.0.as_bytes().to_vec()
    }

    /// The identity key of the session's peer, who sent it.
    pub fn sender(&self) -> Arc<IdentityKey> {
        IdentityKey::arc(self.0.sender())
    }
}

/// A session with one peer device. Save it (sealed) after every call that
/// changed it, before acting on the result. Every call is all or nothing.
#[derive(Debug, uniffi::Object)]
pub struct Session(pub(crate) Mutex<sotto::Session>);

impl Session {
    pub(crate) fn new(session: sotto::Session) -> Arc<Self> {
        Arc::new(Self(Mutex::new(session)))
    }
}

#[uniffi::export]
impl Session {
    /// Restores a session from [`Session::to_bytes`].
    ///
    /// # Errors
    ///
    /// The parse errors.
    #[uniffi::constructor]
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Arc<Self>> {
        Ok(Self::new(sotto::Session::from_bytes(&bytes)?))
    }

    /// Restores a session from [`Session::seal`].
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, `TooLarge`, `AuthenticationFailed`, then the parse
    /// errors.
    #[uniffi::constructor]
    pub fn unseal(sealed: Vec<u8>, storage_key: Vec<u8>, context: Vec<u8>) -> Result<Arc<Self>> {
        let key = self::storage_key(&storage_key)?;
        Ok(Self::new(sotto::Session::unseal(&sealed, &key, &context)?))
    }

    /// The plain saved state (secret: prefer [`Session::seal`]).
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        Ok(lock(&self.0, "session")?.to_bytes().to_vec())
    }

    /// The saved state encrypted under a 32-byte storage key and bound to
    /// `context`.
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, `TooLarge`, `Randomness`.
    pub fn seal(&self, storage_key: Vec<u8>, context: Vec<u8>) -> Result<Vec<u8>> {
        let key = self::storage_key(&storage_key)?;
        Ok(lock(&self.0, "session")?.seal(&key, &context, &mut OsRng)?)
    }

    /// 0 when new, one more after every call that changed the session.
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn generation(&self) -> Result<u64> {
        Ok(lock(&self.0, "session")?.generation())
    }

    /// Encrypts one message to the peer.
    ///
    /// # Errors
    ///
    /// `PlaintextTooLarge`, `ChainExhausted`, `Randomness`.
    pub fn encrypt(&self, plaintext: Vec<u8>) -> Result<Vec<u8>> {
        let plaintext = zeroize::Zeroizing::new(plaintext);
        Ok(lock(&self.0, "session")?
            .encrypt(&mut OsRng, &plaintext)?
            .into_bytes())
    }

    /// Decrypts a message from the peer.
    ///
    /// # Errors
    ///
    /// The parse errors; `AuthenticationFailed`, `DuplicateMessage`,
    /// `TooFarAhead`, `SessionDiverged`, `SessionMismatch`.
    pub fn decrypt(&self, message: Vec<u8>) -> Result<Arc<Plaintext>> {
        let message = Message::from_vec(message)?;
        let plaintext = lock(&self.0, "session")?.decrypt(&message)?;
        Ok(Arc::new(Plaintext(plaintext)))
    }

    /// The peer's identity key.
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn remote_identity(&self) -> Result<Arc<IdentityKey>> {
        Ok(IdentityKey::arc(
            lock(&self.0, "session")?.remote_identity(),
        ))
    }

    /// This device's identity key.
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn local_identity(&self) -> Result<Arc<IdentityKey>> {
        Ok(IdentityKey::arc(lock(&self.0, "session")?.local_identity()))
    }

    /// The initiator's base key (32 bytes): names the session, as in the
    /// prekey messages that started it.
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn base_key(&self) -> Result<Vec<u8>> {
        Ok(lock(&self.0, "session")?.base_key_bytes().to_vec())
    }

    /// Whether this side started the session and has not yet received a
    /// reply (its messages are still prekey messages).
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn is_awaiting_reply(&self) -> Result<bool> {
        Ok(lock(&self.0, "session")?.is_awaiting_reply())
    }

    /// Which key agreement started the session.
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn key_agreement(&self) -> Result<KeyAgreement> {
        Ok(match lock(&self.0, "session")?.key_agreement() {
            sotto::KeyAgreement::X3dh => KeyAgreement::X3dh,
            sotto::KeyAgreement::Pqxdh => KeyAgreement::Pqxdh,
        })
    }

    /// Which side this session was.
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn role(&self) -> Result<Role> {
        Ok(match lock(&self.0, "session")?.role() {
            sotto::Role::Initiator => Role::Initiator,
            sotto::Role::Responder => Role::Responder,
        })
    }

    /// How many message keys of skipped messages the session holds.
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn skipped_key_count(&self) -> Result<u64> {
        Ok(lock(&self.0, "session")?.skipped_key_count() as u64)
    }
}
