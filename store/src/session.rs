//! Pairwise sessions stored one per contact (SPEC.md §17.3 `session/`):
//! the core's [`Session`] directly, without the session layer's devices
//! and recovery. Each operation is one transaction; an accepted prekey
//! message writes the device and the new session together.

use sotto::{Device, IdentityKey, Message, PreKeyBundle, Session};

use crate::device::DEVICE;
use crate::error::{Error, Result};
use crate::mailbox::{Incoming, Outgoing, OutgoingKind};
use crate::store::{NewOutgoing, Store, hex};

/// Longest contact name, in bytes.
pub const MAX_CONTACT_LEN: usize = 64;

/// The record name of the session with `contact`.
pub(crate) fn session_name(contact: &[u8]) -> Result<String> {
    if contact.is_empty() || contact.len() > MAX_CONTACT_LEN {
        return Err(Error::InvalidInput);
    }
    Ok(format!("session/{}", hex(contact)))
}

/// What the store reports about a stored session.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct SessionStatus {
    /// The contact's identity in this session.
    pub remote_identity: IdentityKey,
    /// The session's generation.
    pub generation: u64,
    /// The session's base key, which names it.
    pub base_key: [u8; 32],
}

impl Store {
    /// Starts a session with `contact` from its `bundle` (verified here;
    /// under `expected` identity if given), replacing any session with it.
    /// The first message sent on it is a prekey message.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a contact name of 0 or more than
    /// [`MAX_CONTACT_LEN`] bytes; [`Error::NotFound`] without a device;
    /// the core's errors of `PreKeyBundle::verify_for` and
    /// `Session::initiate`; database errors.
    pub fn start_session(
        &mut self,
        contact: &[u8],
        bundle: &PreKeyBundle,
        expected: Option<&IdentityKey>,
    ) -> Result<SessionStatus> {
        let name = session_name(contact)?;
        let (status, _) = self.run("start-session", |op| {
            let device: Device = op.require(DEVICE)?;
            let verified = match expected {
                Some(identity) => bundle.clone().verify_for(identity)?,
                None => bundle.clone().verify()?,
            };
            let session = Session::initiate(&device, &mut crate::rng::OsRng, &verified)?;
            op.put(&name, &session)?;
            Ok(status(&session))
        })?;
        Ok(status)
    }

    /// The stored session with `contact`, if any.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`]; record and database errors.
    pub fn session_status(&self, contact: &[u8]) -> Result<Option<SessionStatus>> {
        let name = session_name(contact)?;
        self.read(|op| Ok(op.load::<Session>(&name)?.map(|s| status(&s))))
    }

    /// Encrypts `plaintext` to `contact` and puts the message in the
    /// outbox; returns the committed entry (SPEC §17.5). `app_ref` is kept
    /// with it for the application.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`]; [`Error::NotFound`] without a session; the
    /// core's errors of `Session::encrypt`; database errors.
    pub fn encrypt(
        &mut self,
        contact: &[u8],
        plaintext: &[u8],
        app_ref: Option<u64>,
    ) -> Result<Outgoing> {
        let name = session_name(contact)?;
        let ((), receipt) = self.run("encrypt", |op| {
            let mut session: Session = op.require(&name)?;
            let message = session.encrypt(&mut crate::rng::OsRng, plaintext)?;
            op.put(&name, &session)?;
            op.send(NewOutgoing {
                kind: OutgoingKind::Message,
                destination: contact.to_vec(),
                device: None,
                payload: message.into_bytes(),
                app_ref,
            });
            Ok(())
        })?;
        receipt.outbox.into_iter().next().ok_or(Error::NotFound {
            record: "outbox".to_owned(),
        })
    }

    /// Decrypts a wire message from `contact` and puts the plaintext in the
    /// inbox; returns the committed entry (SPEC §17.5). A prekey message
    /// with the stored session's base key goes to it; another one is
    /// accepted with the device (which changes, in the same transaction)
    /// and its session replaces the stored one, which must be under the
    /// same identity.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`]; [`Error::NotFound`] for a ratchet message
    /// without a session; the core's errors of `Message::from_bytes`,
    /// `Session::decrypt` and `Session::accept` (`DuplicateMessage`,
    /// `DuplicatePreKeyMessage`, ...), `IdentityMismatch` for a prekey
    /// message under another identity than the stored session's; database
    /// errors. On any error nothing changed.
    pub fn receive(&mut self, contact: &[u8], message: &[u8]) -> Result<Incoming> {
        let name = session_name(contact)?;
        let message = Message::from_bytes(message)?;
        let ((), receipt) = self.run("receive", |op| {
            let stored: Option<Session> = op.load(&name)?;
            let (session, plaintext) = match (&message, stored) {
                (Message::PreKey(m), Some(mut s)) if s.base_key_bytes() == m.base_key_bytes() => {
                    let p = s.decrypt(&message)?;
                    (s, p)
                }
                (Message::PreKey(m), stored) => {
                    if let Some(s) = &stored
                        && s.remote_identity() != m.identity()
                    {
                        return Err(sotto::Error::IdentityMismatch.into());
                    }
                    let mut device: Device = op.require(DEVICE)?;
                    let (s, p) = Session::accept(&mut device, m)?;
                    op.put(DEVICE, &device)?;
                    (s, p)
                }
                (Message::Ratchet(_), Some(mut s)) => {
                    let p = s.decrypt(&message)?;
                    (s, p)
                }
                (Message::Ratchet(_), None) => {
                    return Err(Error::NotFound {
                        record: name.clone(),
                    });
                }
            };
            op.put(&name, &session)?;
            op.deliver(contact, None, None, &plaintext);
            Ok(())
        })?;
        receipt.inbox.into_iter().next().ok_or(Error::NotFound {
            record: "inbox".to_owned(),
        })
    }
}

fn status(session: &Session) -> SessionStatus {
    SessionStatus {
        remote_identity: *session.remote_identity(),
        generation: session.generation(),
        base_key: session.base_key_bytes(),
    }
}
