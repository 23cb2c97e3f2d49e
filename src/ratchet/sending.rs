//! The sending side of the Double Ratchet: our current ratchet key pair and
//! the chain it started (SPEC.md §8.5; saved as part of the session, §10.2).

use x25519_dalek::StaticSecret;

use super::chain::{ChainKey, MessageKey};
use super::root::RootKey;
use crate::codec::{Codec, Reader, Sink};
use crate::crypto;
use crate::error::Result;
use crate::keys::RatchetPublicKey;
use crate::wire::{RatchetHeader, SALT_LEN};

/// Our current sending chain and the ratchet key pair it belongs to.
pub(crate) struct SendingChain {
    secret: StaticSecret,
    /// Computed once per chain and kept, so that encrypt never recomputes
    /// it per message; `None` after a restore until the next encrypt, which
    /// keeps restoring cheap when the session only decrypts.
    public: Option<RatchetPublicKey>,
    chain_key: ChainKey,
    /// The next message number (Ns).
    next: u32,
}

impl SendingChain {
    /// Starts a chain (SPEC §8.5 step 5) with a freshly drawn ratchet
    /// secret: the root step over its exchange with the peer's ratchet key.
    /// Returns the new root key with the chain; changes nothing.
    pub(crate) fn start(
        secret: StaticSecret,
        root_key: &RootKey,
        remote_ratchet_key: &RatchetPublicKey,
    ) -> Result<(RootKey, Self)> {
        let dh = crypto::x25519(&secret, remote_ratchet_key.key())?;
        let (root_key, chain_key) = root_key.step(&dh);
        let chain = Self {
            public: Some(RatchetPublicKey::from_secret(&secret)),
            secret,
            chain_key,
            next: 0,
        };
        Ok((root_key, chain))
    }

    /// Our ratchet secret, for the receive step a new peer key takes.
    pub(crate) fn secret(&self) -> &StaticSecret {
        &self.secret
    }

    /// The chain's ratchet public key (computed from the secret if a restore
    /// dropped the cached one).
    pub(crate) fn public_key(&self) -> [u8; 32] {
        self.public
            .unwrap_or_else(|| RatchetPublicKey::from_secret(&self.secret))
            .to_bytes()
    }

    /// How many messages this chain has sent (Ns).
    pub(crate) fn next(&self) -> u32 {
        self.next
    }

    /// Whether the chain reached the largest message number.
    pub(crate) fn is_exhausted(&self) -> bool {
        self.next == u32::MAX
    }

    /// The header of the chain's next message.
    pub(crate) fn header(
        &mut self,
        previous_chain_length: u32,
        salt: [u8; SALT_LEN],
    ) -> RatchetHeader {
        let secret = &self.secret;
        RatchetHeader {
            ratchet_key: *self
                .public
                .get_or_insert_with(|| RatchetPublicKey::from_secret(secret)),
            previous_chain_length,
            message_number: self.next,
            salt,
        }
    }

    /// The next message's key and the chain key after it; the chain does
    /// not move until [`SendingChain::advance`].
    pub(crate) fn step(&self) -> (MessageKey, ChainKey) {
        self.chain_key.step()
    }

    /// Moves to the next message number once a message was sealed.
    pub(crate) fn advance(&mut self, chain_key: ChainKey) {
        self.chain_key = chain_key;
        self.next += 1;
    }
}

/// The secret, the chain key and Ns (SPEC §10.2); the public key is
/// recomputed from the secret when first needed.
impl Codec for SendingChain {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.secret.encode(out);
        self.chain_key.encode(out);
        self.next.encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let secret = StaticSecret::decode(r)?;
        let chain_key = ChainKey::decode(r)?;
        let next = u32::decode(r)?;
        Ok(Self {
            secret,
            public: None,
            chain_key,
            next,
        })
    }
}
