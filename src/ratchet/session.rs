//! The pairwise session: X3DH to start, then the Double Ratchet.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use rand_core::CryptoRng;
use x25519_dalek::{PublicKey, StaticSecret};

use super::chain::{ChainKey, MessageKey};
use super::root::RootKey;
use super::skipped::{self, BoxedMessageKey, MAX_SKIP, ReceivingChain, ReceivingChains};
use crate::crypto::{self, AEAD_TAG_LEN};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::keys::{IdentityKey, VerifiedPreKeyBundle};
use crate::wire::{
    MAX_PLAINTEXT_LEN, Message, PREKEY_HEADER_MAX_LEN, PreKeyHeader, PreKeyMessage,
    RATCHET_HEADER_LEN, RatchetHeader, RatchetMessage, SALT_LEN,
};
use crate::x3dh::{self, ASSOCIATED_DATA_LEN};

/// Which side of X3DH this session was.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    /// Fetched the bundle and sent the first message.
    Initiator,
    /// Published the bundle and accepted the first message.
    Responder,
}

/// The prekeys an initiator's first messages name, repeated until a reply.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct PendingPreKey {
    pub(crate) signed_prekey_id: u32,
    pub(crate) one_time_prekey_id: Option<u32>,
}

/// Our current sending chain and the ratchet key pair it belongs to.
pub(crate) struct SendingChain {
    pub(crate) secret: StaticSecret,
    /// Computed once per chain and kept, so that encrypt never recomputes
    /// it per message; `None` after a restore until the next encrypt, which
    /// keeps restoring cheap when the session only decrypts.
    pub(crate) public: Option<PublicKey>,
    pub(crate) chain_key: ChainKey,
    pub(crate) next: u32,
}

/// A pairwise end-to-end encrypted session.
///
/// Every method that takes `&mut self` either succeeds and moves the state
/// forward, or fails and leaves it exactly as it was. After a success the
/// caller persists the state ([`Session::to_bytes`] or [`Session::seal`])
/// before it sends the message or shows the plaintext.
///
/// The state lives in one heap allocation that never moves, so moving a
/// `Session` leaves no copies of its secrets behind.
pub struct Session(pub(crate) Box<SessionState>);

/// The session's fields.
pub(crate) struct SessionState {
    pub(crate) role: Role,
    pub(crate) local_identity: IdentityKey,
    pub(crate) remote_identity: IdentityKey,
    /// The initiator's X3DH ephemeral public key; names the session.
    pub(crate) base_key: [u8; 32],
    /// Initiator only: prekeys to name in every message until the first reply.
    pub(crate) pending_prekey: Option<PendingPreKey>,
    pub(crate) associated_data: [u8; ASSOCIATED_DATA_LEN],
    pub(crate) root_key: RootKey,
    pub(crate) remote_ratchet_key: PublicKey,
    /// `None` until the next encrypt: the new ratchet key pair is generated
    /// then, so that decrypt never needs randomness.
    pub(crate) sending: Option<SendingChain>,
    pub(crate) previous_sending_length: u32,
    pub(crate) receiving: ReceivingChains,
}

/// What a successful decrypt will change, computed before anything changes.
enum Commit {
    /// Use and delete a stored skipped key.
    Skipped { chain: usize, index: u32 },
    /// Move a receiving chain forward.
    Advance {
        chain: usize,
        chain_key: ChainKey,
        next: u32,
        skipped: Vec<(u32, BoxedMessageKey)>,
    },
    /// A Diffie-Hellman ratchet step: close the current chain, start a new one.
    Ratchet {
        root_key: RootKey,
        closing_end: u32,
        closing: Vec<(u32, BoxedMessageKey)>,
        chain: ReceivingChain,
        ratchet_key: PublicKey,
    },
}

impl Session {
    /// Starts a session from a verified bundle (draws 32 bytes for the X3DH
    /// ephemeral key). The first message carries the X3DH header; so does
    /// every message until a reply decrypts.
    pub fn initiate<R: CryptoRng + ?Sized>(
        device: &Device,
        rng: &mut R,
        bundle: &VerifiedPreKeyBundle,
    ) -> Result<Self> {
        let bundle = bundle.bundle();
        let base = StaticSecret::random_from_rng(rng);
        let signed_prekey = bundle.signed_prekey();
        let one_time = bundle.one_time_prekey();
        let secret = x3dh::initiator_secret(
            &device.identity,
            &base,
            bundle.identity(),
            signed_prekey.key(),
            one_time.map(|opk| opk.key()),
        )?;
        let local_identity = *device.identity_key();
        let remote_identity = *bundle.identity();
        Ok(Self(Box::new(SessionState {
            role: Role::Initiator,
            local_identity,
            remote_identity,
            base_key: PublicKey::from(&base).to_bytes(),
            pending_prekey: Some(PendingPreKey {
                signed_prekey_id: signed_prekey.id(),
                one_time_prekey_id: one_time.map(|opk| opk.id()),
            }),
            associated_data: x3dh::associated_data(&local_identity, &remote_identity),
            root_key: RootKey::from_bytes(*secret),
            remote_ratchet_key: *signed_prekey.key(),
            sending: None,
            previous_sending_length: 0,
            receiving: ReceivingChains::default(),
        })))
    }

    /// Accepts a prekey message: runs the responder's side of X3DH, decrypts
    /// the message, and only then deletes the one-time prekey it used from
    /// `device`. On error neither `device` nor anything else changes.
    ///
    /// The caller persists both the new session and `device`.
    pub fn accept(device: &mut Device, message: &PreKeyMessage) -> Result<(Self, Vec<u8>)> {
        let prekey = message.prekey_header();
        if device.has_seen_base_key(&prekey.base_key) {
            return Err(Error::DuplicatePreKeyMessage);
        }
        let signed_prekey = device.signed_prekey_secret(prekey.signed_prekey_id)?;
        let one_time = prekey
            .one_time_prekey_id
            .map(|id| device.one_time_prekey_secret(id))
            .transpose()?;
        let secret = x3dh::responder_secret(
            &device.identity,
            signed_prekey,
            one_time,
            &prekey.identity,
            message.base_key(),
        )?;
        let local_identity = *device.identity_key();
        let associated_data = x3dh::associated_data(&prekey.identity, &local_identity);

        // The initiator's first ratchet step used our signed prekey as our
        // ratchet key; take the matching receive step here.
        let header = message.inner_header();
        let index = header.message_number;
        if index > MAX_SKIP {
            return Err(Error::TooFarAhead {
                skipped: u64::from(index),
            });
        }
        let next = index.checked_add(1).ok_or(Error::ChainExhausted)?;
        let dh = crypto::x25519(signed_prekey, &header.ratchet_key)?;
        let (root_key, chain_key) = RootKey::from_bytes(*secret).step(&dh);
        let (skipped, message_key, next_chain_key) = skipped::derive_until(&chain_key, 0, index);
        let (prefix, body) = message.parts();
        let plaintext = open(&associated_data, header, prefix, body, &message_key)?;

        let mut receiving = ReceivingChains::default();
        receiving.start_chain(
            0,
            Vec::new(),
            ReceivingChain {
                ratchet_key: header.ratchet_key.to_bytes(),
                chain_key: Some(Box::new(next_chain_key)),
                next,
                skipped: skipped.into_iter().collect(),
            },
        );
        let session = Self(Box::new(SessionState {
            role: Role::Responder,
            local_identity,
            remote_identity: prekey.identity,
            base_key: prekey.base_key,
            pending_prekey: None,
            associated_data,
            root_key,
            remote_ratchet_key: header.ratchet_key,
            sending: None,
            previous_sending_length: 0,
            receiving,
        }));
        device.consume(prekey.one_time_prekey_id, prekey.base_key);
        Ok((session, plaintext))
    }

    /// Encrypts `plaintext`. Draws 32 bytes for a new ratchet key when a
    /// reply has arrived since the last encrypt, then 16 bytes of salt.
    pub fn encrypt<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        plaintext: &[u8],
    ) -> Result<Message> {
        self.0.encrypt(rng, plaintext)
    }

    /// Decrypts a message of this session. All or nothing: on any error the
    /// session is exactly as it was.
    pub fn decrypt(&mut self, message: &Message) -> Result<Vec<u8>> {
        self.0.decrypt(message)
    }

    /// Which side of X3DH this session was.
    pub fn role(&self) -> Role {
        self.0.role
    }

    /// Our identity.
    pub fn local_identity(&self) -> &IdentityKey {
        &self.0.local_identity
    }

    /// The peer's identity. Compare its fingerprint out of band to rule out a
    /// man in the middle.
    pub fn remote_identity(&self) -> &IdentityKey {
        &self.0.remote_identity
    }

    /// The initiator's X3DH ephemeral key, which names this session: prekey
    /// messages with this base key belong here.
    pub fn base_key_bytes(&self) -> [u8; 32] {
        self.0.base_key
    }

    /// Whether our messages still carry the X3DH header (initiator before the
    /// first reply).
    pub fn is_awaiting_reply(&self) -> bool {
        self.0.pending_prekey.is_some()
    }

    /// How many skipped message keys are stored.
    pub fn skipped_key_count(&self) -> usize {
        self.0.receiving.total_skipped()
    }

    /// How many receiving chains are remembered.
    pub fn receiving_chain_count(&self) -> usize {
        self.0.receiving.chains.len()
    }
}

impl SessionState {
    fn encrypt<R: CryptoRng + ?Sized>(&mut self, rng: &mut R, plaintext: &[u8]) -> Result<Message> {
        if plaintext.len() > MAX_PLAINTEXT_LEN {
            return Err(Error::PlaintextTooLarge);
        }
        if self.sending.as_ref().is_some_and(|c| c.next == u32::MAX) {
            return Err(Error::ChainExhausted);
        }
        let chain = match &mut self.sending {
            Some(chain) => chain,
            slot @ None => {
                let secret = StaticSecret::random_from_rng(rng);
                let dh = crypto::x25519(&secret, &self.remote_ratchet_key)?;
                let (root_key, chain_key) = self.root_key.step(&dh);
                self.root_key = root_key;
                slot.insert(SendingChain {
                    public: Some(PublicKey::from(&secret)),
                    secret,
                    chain_key,
                    next: 0,
                })
            }
        };
        let mut salt = [0u8; SALT_LEN];
        rng.fill_bytes(&mut salt);

        let header = RatchetHeader {
            ratchet_key: *chain
                .public
                .get_or_insert_with(|| PublicKey::from(&chain.secret)),
            previous_chain_length: self.previous_sending_length,
            message_number: chain.next,
            salt,
        };
        let prekey = self.pending_prekey.map(|p| PreKeyHeader {
            identity: self.local_identity,
            base_key: self.base_key,
            signed_prekey_id: p.signed_prekey_id,
            one_time_prekey_id: p.one_time_prekey_id,
        });
        let prekey_len = prekey.as_ref().map_or(0, PreKeyHeader::encoded_len);
        let mut out =
            Vec::with_capacity(prekey_len + RATCHET_HEADER_LEN + plaintext.len() + AEAD_TAG_LEN);
        if let Some(prekey) = &prekey {
            prekey.write(&mut out);
        }
        header.write(&mut out);
        out.extend_from_slice(plaintext);

        let (message_key, next_chain_key) = chain.chain_key.step();
        let (key, nonce) = message_key.aead_key_nonce(&salt);
        let (prefix, body) = out.split_at_mut(prekey_len + RATCHET_HEADER_LEN);
        let aad = Aad::new(&self.associated_data, prefix);
        let tag = crypto::aead_seal(&key, &nonce, aad.as_bytes(), body)?;
        out.extend_from_slice(&tag);

        chain.chain_key = next_chain_key;
        chain.next += 1;
        Ok(match prekey {
            Some(prekey) => Message::PreKey(PreKeyMessage::from_encoded(out, prekey, header)),
            None => Message::Ratchet(RatchetMessage::from_encoded(out, header)),
        })
    }

    fn decrypt(&mut self, message: &Message) -> Result<Vec<u8>> {
        match message {
            Message::Ratchet(m) => {
                let (prefix, body) = m.parts();
                self.decrypt_ratchet(m.header(), prefix, body)
            }
            Message::PreKey(m) => {
                if m.identity() != &self.remote_identity {
                    return Err(Error::IdentityMismatch);
                }
                if self.role != Role::Responder || m.base_key_bytes() != self.base_key {
                    return Err(Error::SessionMismatch);
                }
                let (prefix, body) = m.parts();
                self.decrypt_ratchet(m.inner_header(), prefix, body)
            }
        }
    }

    fn decrypt_ratchet(
        &mut self,
        header: &RatchetHeader,
        prefix: &[u8],
        body: &[u8],
    ) -> Result<Vec<u8>> {
        let (commit, message_key) = self.plan(header)?;
        let key = match &commit {
            Commit::Skipped { chain, index } => self
                .receiving
                .get(*chain)
                .and_then(|c| c.skipped.get(index))
                .ok_or(Error::DuplicateMessage)?,
            _ => message_key.as_ref().ok_or(Error::DuplicateMessage)?,
        };
        let plaintext = open(&self.associated_data, header, prefix, body, key)?;
        self.apply(commit);
        Ok(plaintext)
    }

    /// Works out which key decrypts `header`'s message and what to change if
    /// it does, without changing anything.
    fn plan(&self, header: &RatchetHeader) -> Result<(Commit, Option<MessageKey>)> {
        let index = header.message_number;
        let ratchet_key = header.ratchet_key.to_bytes();
        if let Some(position) = self.receiving.position(&ratchet_key) {
            let chain = self
                .receiving
                .get(position)
                .ok_or(Error::DuplicateMessage)?;
            if chain.skipped.contains_key(&index) {
                return Ok((
                    Commit::Skipped {
                        chain: position,
                        index,
                    },
                    None,
                ));
            }
            let chain_key = match &chain.chain_key {
                Some(chain_key) if index >= chain.next => chain_key,
                _ => return Err(Error::DuplicateMessage),
            };
            let gap = index - chain.next;
            if gap > MAX_SKIP {
                return Err(Error::TooFarAhead {
                    skipped: u64::from(gap),
                });
            }
            let next = index.checked_add(1).ok_or(Error::ChainExhausted)?;
            let (skipped, message_key, chain_key) =
                skipped::derive_until(chain_key, chain.next, index);
            return Ok((
                Commit::Advance {
                    chain: position,
                    chain_key,
                    next,
                    skipped,
                },
                Some(message_key),
            ));
        }

        // A new ratchet key: only possible after we sent on a new key of ours.
        let sending = self.sending.as_ref().ok_or(Error::UnexpectedRatchetKey)?;
        let closing_end = header.previous_chain_length;
        let (closing_from, closing_key) = match self.receiving.current() {
            Some(ReceivingChain {
                chain_key: Some(chain_key),
                next,
                ..
            }) => (*next, Some(chain_key)),
            _ => (closing_end, None),
        };
        let closing_count = closing_end.saturating_sub(closing_from);
        let total = u64::from(closing_count) + u64::from(index);
        if total > u64::from(MAX_SKIP) {
            return Err(Error::TooFarAhead { skipped: total });
        }
        let next = index.checked_add(1).ok_or(Error::ChainExhausted)?;
        let dh = crypto::x25519(&sending.secret, &header.ratchet_key)?;
        let (root_key, chain_key) = self.root_key.step(&dh);
        let (skipped, message_key, next_chain_key) = skipped::derive_until(&chain_key, 0, index);
        let closing = closing_key
            .map(|ck| skipped::derive_skipped(ck, closing_from, closing_end))
            .unwrap_or_default();
        Ok((
            Commit::Ratchet {
                root_key,
                closing_end,
                closing,
                chain: ReceivingChain {
                    ratchet_key,
                    chain_key: Some(Box::new(next_chain_key)),
                    next,
                    skipped: skipped.into_iter().collect(),
                },
                ratchet_key: header.ratchet_key,
            },
            Some(message_key),
        ))
    }

    fn apply(&mut self, commit: Commit) {
        match commit {
            Commit::Skipped { chain, index } => self.receiving.remove_skipped(chain, index),
            Commit::Advance {
                chain,
                chain_key,
                next,
                skipped,
            } => self.receiving.advance(chain, chain_key, next, skipped),
            Commit::Ratchet {
                root_key,
                closing_end,
                closing,
                chain,
                ratchet_key,
            } => {
                self.receiving.start_chain(closing_end, closing, chain);
                self.root_key = root_key;
                self.remote_ratchet_key = ratchet_key;
                self.previous_sending_length = self.sending.as_ref().map_or(0, |s| s.next);
                self.sending = None;
            }
        }
        // A decrypted reply proves the responder has the session.
        self.pending_prekey = None;
    }
}

/// AEAD associated data: the session's AD followed by every message byte
/// before the ciphertext (the prekey header, if any, and the ratchet header).
struct Aad {
    buffer: [u8; ASSOCIATED_DATA_LEN + PREKEY_HEADER_MAX_LEN + RATCHET_HEADER_LEN],
    len: usize,
}

impl Aad {
    fn new(associated_data: &[u8; ASSOCIATED_DATA_LEN], prefix: &[u8]) -> Self {
        let mut buffer = [0u8; ASSOCIATED_DATA_LEN + PREKEY_HEADER_MAX_LEN + RATCHET_HEADER_LEN];
        let (a, rest) = buffer.split_at_mut(ASSOCIATED_DATA_LEN);
        a.copy_from_slice(associated_data);
        let mut len = ASSOCIATED_DATA_LEN;
        for (dst, src) in rest.iter_mut().zip(prefix) {
            *dst = *src;
            len += 1;
        }
        Self { buffer, len }
    }

    fn as_bytes(&self) -> &[u8] {
        self.buffer.get(..self.len).unwrap_or_default()
    }
}

fn open(
    associated_data: &[u8; ASSOCIATED_DATA_LEN],
    header: &RatchetHeader,
    prefix: &[u8],
    body: &[u8],
    message_key: &MessageKey,
) -> Result<Vec<u8>> {
    let (ciphertext, tag) = body
        .split_last_chunk::<AEAD_TAG_LEN>()
        .ok_or(Error::Truncated)?;
    let (key, nonce) = message_key.aead_key_nonce(&header.salt);
    let aad = Aad::new(associated_data, prefix);
    let mut plaintext = ciphertext.to_vec();
    crypto::aead_open(&key, &nonce, aad.as_bytes(), &mut plaintext, tag)?;
    Ok(plaintext)
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("role", &self.0.role)
            .field("remote_identity", &self.0.remote_identity)
            .field("awaiting_reply", &self.0.pending_prekey.is_some())
            .field("skipped_keys", &self.0.receiving.total_skipped())
            .finish_non_exhaustive()
    }
}
