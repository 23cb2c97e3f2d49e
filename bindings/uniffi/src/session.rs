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

    /// As `encrypt`, with the plaintext borrowed for the call instead of
    /// copied into a buffer Rust allocates: uniffi's zero-copy bytes
    /// argument, which saves the foreign calls that allocate and grow that
    /// buffer (bindings/bench, BENCHMARKS.md). Python passes `bytes`;
    /// Kotlin a direct `java.nio.ByteBuffer` at position 0 (uniffi 0.32's
    /// Kotlin passes `remaining()` bytes from the buffer's start, whatever
    /// its position).
    ///
    /// # Errors
    ///
    /// `PlaintextTooLarge`, `ChainExhausted`, `Randomness`.
    pub fn encrypt_borrowed(&self, plaintext: &[u8]) -> Result<Vec<u8>> {
        Ok(lock(&self.0, "session")?
            .encrypt(&mut OsRng, plaintext)?
            .into_bytes())
    }

    /// Encrypts several messages to the peer in one call, in order: what
    /// `encrypt` does for each, with one crossing of the language boundary
    /// for all of them instead of one each (bindings/bench, BENCHMARKS.md).
    /// All or nothing: if one fails, none is sent and the session is as it
    /// was.
    ///
    /// # Errors
    ///
    /// `PlaintextTooLarge`, `ChainExhausted`, `Randomness`.
    pub fn encrypt_batch(&self, plaintexts: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>> {
        let plaintexts: Vec<_> = plaintexts
            .into_iter()
            .map(zeroize::Zeroizing::new)
            .collect();
        if plaintexts
            .iter()
            .any(|p| p.len() > sotto::MAX_PLAINTEXT_LEN)
        {
            return Err(sotto::Error::PlaintextTooLarge.into());
        }
        let mut session = lock(&self.0, "session")?;
        // A failure after the first message (a chain exhausted, the RNG)
        // puts the state back from this copy: the call changes all or
        // nothing.
        let saved = (plaintexts.len() > 1).then(|| session.to_bytes());
        let mut messages = Vec::with_capacity(plaintexts.len());
        for plaintext in &plaintexts {
            match session.encrypt(&mut OsRng, plaintext) {
                Ok(message) => messages.push(message.into_bytes()),
                Err(error) => {
                    if let Some(saved) = &saved {
                        *session = sotto::Session::from_bytes(saved)?;
                    }
                    return Err(error.into());
                }
            }
        }
        Ok(messages)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used)]

    use super::*;
    use crate::{Device, PreKeyBundle};

    const NOW: u64 = 1_700_000_000;

    fn pair() -> (Arc<Session>, Arc<Session>) {
        let alice = Device::generate(NOW).unwrap();
        let bob = Device::generate(NOW).unwrap();
        let bundle = PreKeyBundle::new(
            bob.identity_key().unwrap(),
            bob.signed_prekey().unwrap().bytes,
            None,
            Some(bob.last_resort_kem_prekey().unwrap().bytes),
        )
        .unwrap()
        .verify()
        .unwrap();
        let to_bob = alice.initiate(bundle).unwrap();
        let accepted = bob.accept(to_bob.encrypt(b"hi".to_vec()).unwrap()).unwrap();
        (to_bob, accepted.session)
    }

    /// A batch is the same messages as one encrypt each, in order.
    #[test]
    fn batch_messages_decrypt_in_order() {
        let (to_bob, to_alice) = pair();
        let plaintexts: Vec<Vec<u8>> = (0u8..5).map(|i| vec![i; 100]).collect();
        let messages = to_bob.encrypt_batch(plaintexts.clone()).unwrap();
        assert_eq!(messages.len(), 5);
        for (message, plaintext) in messages.into_iter().zip(&plaintexts) {
            assert_eq!(&to_alice.decrypt(message).unwrap().bytes(), plaintext);
        }
        assert!(to_bob.encrypt_batch(Vec::new()).unwrap().is_empty());
        let borrowed = to_bob.encrypt_borrowed(b"borrowed").unwrap();
        assert_eq!(to_alice.decrypt(borrowed).unwrap().bytes(), b"borrowed");
    }

    /// One plaintext too large: nothing encrypted, the session unchanged.
    #[test]
    fn batch_is_all_or_nothing() {
        let (to_bob, to_alice) = pair();
        let before = to_bob.to_bytes().unwrap();
        let error = to_bob
            .encrypt_batch(vec![vec![1; 10], vec![0; sotto::MAX_PLAINTEXT_LEN + 1]])
            .unwrap_err();
        assert_eq!(error.code(), 107);
        assert_eq!(to_bob.to_bytes().unwrap(), before);
        let next = to_bob.encrypt(b"next".to_vec()).unwrap();
        assert_eq!(to_alice.decrypt(next).unwrap().bytes(), b"next");
    }

    /// A chain that runs out in the middle of a batch (`Ns` edited to
    /// `2^32 - 3` in the saved state, SPEC §10.2): two messages are
    /// encrypted, the third is `ChainExhausted`, and the session is put
    /// back as it was, the two messages never returned.
    #[test]
    fn a_batch_that_fails_midway_puts_the_session_back() {
        let (to_bob, to_alice) = pair();
        let mut bytes = to_bob.to_bytes().unwrap();
        let (_, layout) = testkit::model::Sess::read(&bytes).unwrap();
        layout.put_u32(&mut bytes, "ns", u32::MAX - 2);
        let near_end = Session::from_bytes(bytes.clone()).unwrap();
        let error = near_end.encrypt_batch(vec![b"m".to_vec(); 3]).unwrap_err();
        assert_eq!(error.code(), 121);
        assert_eq!(near_end.to_bytes().unwrap(), bytes);
        // The two that fit are encrypted; then the chain is spent.
        let two = near_end.encrypt_batch(vec![b"m".to_vec(); 2]).unwrap();
        assert_eq!(two.len(), 2);
        assert_eq!(near_end.encrypt(b"m".to_vec()).unwrap_err().code(), 121);
        // The untouched session still talks.
        let next = to_bob.encrypt(b"next".to_vec()).unwrap();
        assert_eq!(to_alice.decrypt(next).unwrap().bytes(), b"next");
    }
}
