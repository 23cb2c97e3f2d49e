//! Group messaging with sender keys (SPEC.md §15).
//!
//! Each member of a group owns a [`GroupSender`]: a sender chain with a
//! one-way hierarchical hash ratchet (§15.4) and an Ed25519 chain key of its
//! own, whose public half names the chain ([`ChainId`]). When the chain is
//! created, the chain key signs an owner proof naming the member's identity,
//! and the member's identity key signs that it created the chain (§15.6).
//! The member sends the chain's [`SenderKeyDistribution`] to every other
//! member inside their pairwise [`Session`](crate::Session)s; each of them
//! installs it in its [`GroupReceivers`] store for the group (§15.7, §15.9).
//! A message is then encrypted once, for everyone (§15.5).
//!
//! - A distribution installed from a session is accepted only if its owner is
//!   that session's peer and both signatures bind the chain to that owner,
//!   so a member can neither forward another's chain as its own, nor squat
//!   it, nor create a chain in another member's name.
//! - Only the owner's own distribution changes a chain a store holds; an
//!   import (a key backup, a forwarded key) never does, and no chain moves
//!   back past an index it read.
//! - Every [`GroupMessage`] is signed over all its bytes; receivers verify
//!   the signature strictly before they derive any key (§15.8).
//! - A state at index `i` yields no key of any index below `i` (§15.4), and a
//!   receiver keeps only a bounded cache of skipped keys, so a message once
//!   read cannot be read again from its saved state.
//! - Sender keys give no post-compromise security until the sender rotates
//!   ([`GroupSender::rotate`]); rotate on every removal. §15.14 lists what
//!   else they do not give.
//!
//! ```
//! use rand_chacha::ChaCha20Rng;
//! use rand_core::SeedableRng;
//! use sotto::Device;
//! use sotto::group::{GroupId, GroupReceivers, GroupSender, InsertOutcome, Sender};
//!
//! # fn main() -> Result<(), sotto::Error> {
//! let mut rng = ChaCha20Rng::from_seed([1; 32]);
//! let alice = Device::generate(&mut rng, 1_700_000_000)?;
//! let group = GroupId::from_bytes([9; 32]);
//! // Alice's identity key signs the new chain.
//! let mut chain = GroupSender::new(&mut rng, group, &alice)?;
//!
//! // In an app the distribution travels inside a pairwise session and is
//! // installed with `GroupReceivers::receive_distribution(session, message)`,
//! // which marks the chain as Alice's. A key backup is imported unauthenticated.
//! let mut at_bob = GroupReceivers::new(group);
//! let distribution = chain.distribution().to_bytes();
//! assert_eq!(at_bob.import_unauthenticated(&distribution)?, InsertOutcome::Added);
//!
//! let message = chain.encrypt(&mut rng, b"hello group")?;
//! let read = at_bob.decrypt(&message)?;
//! assert_eq!(read.as_bytes(), b"hello group");
//! assert_eq!(read.sender(), &Sender::Unauthenticated { claimed: *alice.identity_key() });
//! assert_eq!(at_bob.decrypt(&message).err(), Some(sotto::Error::DuplicateMessage));
//!
//! // After a member leaves, Alice rotates (with her device again) and sends
//! // the new distribution to the members who remain.
//! let _next = chain.rotate(&mut rng, &alice)?;
//! # Ok(())
//! # }
//! ```

use alloc::vec::Vec;
use core::fmt;
use core::ops::Deref;

use ed25519_dalek::VerifyingKey;
use zeroize::Zeroizing;

use crate::codec::{Codec, Reader, Sink};
use crate::crypto;
use crate::error::{Error, Result};
use crate::keys::IdentityKey;

mod distribution;
mod message;
mod ratchet;
mod receiver;
mod sender;
mod store;

#[cfg(test)]
mod tests;

pub use distribution::SenderKeyDistribution;
pub use message::{GroupMessage, MAX_GROUP_MESSAGE_LEN};
pub use receiver::GroupReceiver;
pub use sender::GroupSender;
pub use store::GroupReceivers;

/// How many keys a receiver caches when a message skips indices: those of
/// the skipped indices nearest below the message's index.
pub const GROUP_SKIP_WINDOW: u32 = 32;
/// Most skipped keys one receiver caches; past it the lowest indices are
/// deleted first.
pub const MAX_GROUP_SKIPPED_KEYS: usize = 256;
/// Largest jump a receiver makes: a message more than this many indices
/// ahead of the receiver's next index is rejected with
/// [`Error::GroupIndexOutOfRange`].
pub const MAX_GROUP_JUMP: u32 = 1 << 24;
/// Most authenticated chains a [`GroupReceivers`] store keeps per owner;
/// adding one more deletes that owner's oldest authenticated chain.
pub const MAX_CHAINS_PER_SENDER: usize = 4;
/// Most unauthenticated chains a [`GroupReceivers`] store keeps per claimed
/// owner; importing one more deletes the oldest of them.
pub const MAX_UNAUTHENTICATED_CHAINS_PER_OWNER: usize = 4;
/// Most unauthenticated chains a [`GroupReceivers`] store keeps in all;
/// importing one more deletes the oldest unauthenticated chain.
pub const MAX_UNAUTHENTICATED_GROUP_CHAINS: usize = 256;
/// Most chains a [`GroupReceivers`] store keeps (SPEC §15.9 says which one
/// goes when it is full).
pub const MAX_GROUP_RECEIVERS: usize = 1024;

/// Length of an owner (an identity key) inside group encodings: the identity
/// key's encoding without its version and type bytes.
pub(crate) const OWNER_LEN: usize = IdentityKey::ENCODED_LEN - 2;

/// A group's 32-byte id, chosen by the application (SPEC §15.1).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupId([u8; 32]);

impl GroupId {
    /// Wraps 32 bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl Codec for GroupId {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.0.encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        r.array().map(Self)
    }
}

impl fmt::Debug for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GroupId(")?;
        hex(f, &self.0)?;
        f.write_str(")")
    }
}

/// The name of a sender chain: the chain's Ed25519 public key (SPEC §15.1).
/// Only the holder of the chain's seed can sign under it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChainId(VerifyingKey);

impl ChainId {
    /// Decodes 32 bytes under the Ed25519 rules of SPEC §2.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPublicKey`] for an invalid, non-canonical or
    /// small-order point.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self> {
        crypto::ed25519_public(bytes).map(Self)
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    pub(crate) fn from_key(key: VerifyingKey) -> Self {
        Self(key)
    }

    pub(crate) fn key(&self) -> &VerifyingKey {
        &self.0
    }
}

/// An Ed25519 public key (SPEC §2 rules: `InvalidPublicKey`).
impl Codec for ChainId {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.0.encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        VerifyingKey::decode(r).map(Self)
    }
}

impl fmt::Debug for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChainId(")?;
        hex(f, self.as_bytes())?;
        f.write_str(")")
    }
}

fn hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

/// Who owns a sender chain, as far as sotto can tell (SPEC §15.7).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Sender {
    /// The chain's distribution arrived over a pairwise session with its
    /// owner, and its owner proof and owner signature bind it to that
    /// identity.
    Authenticated(IdentityKey),
    /// The distribution was imported without a session (a key backup, a
    /// forwarded key). Its signatures prove that `claimed` created the
    /// chain, but not the path: whoever passed it on may have altered its
    /// ratchet or moved it to another index.
    Unauthenticated {
        /// The owner the chain's owner proof names and whose identity key
        /// made its owner signature.
        claimed: IdentityKey,
    },
}

impl Sender {
    /// The owner: authenticated or only claimed.
    pub fn owner(&self) -> &IdentityKey {
        match self {
            Self::Authenticated(owner) | Self::Unauthenticated { claimed: owner } => owner,
        }
    }

    /// The owner, if authenticated.
    pub fn authenticated(&self) -> Option<&IdentityKey> {
        match self {
            Self::Authenticated(owner) => Some(owner),
            Self::Unauthenticated { .. } => None,
        }
    }

    /// Whether the chain arrived over a session with its owner.
    pub fn is_authenticated(&self) -> bool {
        matches!(self, Self::Authenticated(_))
    }
}

/// The owner, then the authenticated flag (1 authenticated, 0 claimed only;
/// anything else `InvalidEncoding`), as in SPEC §15.11.
impl Codec for Sender {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.owner().encode(out);
        u8::from(self.is_authenticated()).encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let owner = IdentityKey::decode(r)?;
        Ok(if r.flag()? {
            Self::Authenticated(owner)
        } else {
            Self::Unauthenticated { claimed: owner }
        })
    }
}

/// A decrypted group message: the plaintext, held in memory that is
/// zeroized on drop, the chain and index it came from, and who owns the
/// chain.
///
/// It dereferences to the bytes. It is neither `Clone` (a copy of the bytes
/// would outlive the zeroized one) nor `PartialEq` (compare the bytes
/// yourself, in constant time if they are secret), and its `Debug` shows the
/// chain, index, sender and length, never the bytes.
///
/// ```compile_fail
/// fn copy(read: &sotto::group::GroupPlaintext) -> sotto::group::GroupPlaintext {
///     read.clone()
/// }
/// ```
///
/// ```compile_fail
/// fn same(a: &sotto::group::GroupPlaintext, b: &sotto::group::GroupPlaintext) -> bool {
///     a == b
/// }
/// ```
pub struct GroupPlaintext {
    plaintext: Zeroizing<Vec<u8>>,
    chain: ChainId,
    index: u32,
    sender: Sender,
}

impl GroupPlaintext {
    pub(crate) fn new(
        plaintext: Zeroizing<Vec<u8>>,
        chain: ChainId,
        index: u32,
        sender: Sender,
    ) -> Self {
        Self {
            plaintext,
            chain,
            index,
            sender,
        }
    }

    /// The plaintext bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.plaintext
    }

    /// The bytes alone, still zeroized on drop.
    pub fn into_bytes(self) -> Zeroizing<Vec<u8>> {
        self.plaintext
    }

    /// The sender chain it came from.
    pub fn chain(&self) -> &ChainId {
        &self.chain
    }

    /// Its index in that chain.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Who owns the chain, and whether that is authenticated.
    pub fn sender(&self) -> &Sender {
        &self.sender
    }
}

impl Deref for GroupPlaintext {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.plaintext
    }
}

impl AsRef<[u8]> for GroupPlaintext {
    fn as_ref(&self) -> &[u8] {
        &self.plaintext
    }
}

impl fmt::Debug for GroupPlaintext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupPlaintext")
            .field("chain", &self.chain)
            .field("index", &self.index)
            .field("sender", &self.sender)
            .field("len", &self.plaintext.len())
            .finish()
    }
}

/// What inserting a chain into a [`GroupReceivers`] store did (SPEC §15.9).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum InsertOutcome {
    /// A chain the store did not hold was added.
    Added,
    /// A held authenticated chain moved forward to the owner's later copy.
    Advanced,
    /// A held unauthenticated chain became authenticated, its ratchet
    /// replaced by the owner's own copy (never moved back past an index it
    /// read).
    Upgraded,
    /// Nothing changed: the chain is held authenticated and the copy is an
    /// import or not ahead, or it is held unauthenticated and the copy is
    /// another import.
    Unchanged,
}

/// A saved state's generation (SPEC §10.1): 0 when new, 1 more after every
/// call that changes the state, saturating.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(crate) struct Generation(u64);

impl Generation {
    pub(crate) fn get(self) -> u64 {
        self.0
    }

    pub(crate) fn bump(&mut self) {
        self.0 = self.0.saturating_add(1);
    }
}

/// A `u64`, taken as it is (SPEC §4: generation counters have no rule).
impl Codec for Generation {
    fn encode<S: Sink>(&self, out: &mut S) {
        out.put(&self.0.to_be_bytes());
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        r.array().map(|b| Self(u64::from_be_bytes(b)))
    }
}

/// The owner's bytes as they appear in encodings and in the owner proof.
pub(crate) fn owner_bytes(owner: &IdentityKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(OWNER_LEN);
    owner.encode(&mut out);
    out
}

/// Fails with `GroupMismatch` unless `found` is `expected`.
pub(crate) fn check_group(expected: &GroupId, found: &GroupId) -> Result<()> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::GroupMismatch)
    }
}
