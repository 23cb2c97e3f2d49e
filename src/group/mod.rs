//! Group messaging with sender keys (SPEC.md §15).
//!
//! Each member of a group owns a [`GroupSender`]: a sending chain with a
//! hierarchical hash ratchet and an Ed25519 signing key of its own. The
//! member hands the chain's [`SenderKeyDistribution`] to every other member
//! inside their pairwise [`Session`](crate::Session)s; each of them installs
//! it as a [`GroupReceiver`] (usually in a [`GroupReceivers`] store). A
//! message is then encrypted once, for everyone.
//!
//! - Every [`GroupMessage`] is signed over all its bytes; receivers verify
//!   the signature strictly before they derive any key.
//! - Receivers keep only the ratchet at the next index and a bounded cache
//!   of skipped keys, so a message once read cannot be read again from the
//!   saved state (forward secrecy), and each (chain, index) decrypts once.
//! - Sender keys give no post-compromise security until the sender rotates
//!   ([`GroupSender::rotate`]); rotate on every removal. SPEC.md lists what
//!   else they do not give.
//!
//! ```
//! use rand_chacha::ChaCha20Rng;
//! use rand_core::SeedableRng;
//! use sotto::group::{GroupId, GroupReceiver, GroupSender, Sender};
//!
//! # fn main() -> Result<(), sotto::Error> {
//! let mut rng = ChaCha20Rng::from_seed([1; 32]);
//! let group = GroupId::from_bytes([9; 32]);
//! let mut alice = GroupSender::new(&mut rng, group);
//!
//! // In an app the distribution travels inside a pairwise session and is
//! // installed with `GroupReceiver::accept(bytes, &session)`.
//! let distribution = alice.distribution().to_bytes();
//! let mut at_bob = GroupReceiver::import_unauthenticated(&distribution)?;
//!
//! let message = alice.encrypt(&mut rng, b"hello group")?;
//! let read = at_bob.decrypt(&message)?;
//! assert_eq!(read.plaintext, b"hello group");
//! assert_eq!(read.sender, Sender::Unauthenticated);
//! assert_eq!(at_bob.decrypt(&message), Err(sotto::Error::DuplicateMessage));
//! # Ok(())
//! # }
//! ```

use alloc::vec::Vec;
use core::fmt;

use crate::codec::{Codec, Reader, Sink};
use crate::error::Result;
use crate::keys::IdentityKey;

mod distribution;
mod message;
mod ratchet;
mod receiver;
mod sender;
mod store;

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
/// [`Error::GroupIndexOutOfRange`](crate::Error::GroupIndexOutOfRange).
pub const MAX_GROUP_JUMP: u32 = 1 << 24;
/// Most chains a [`GroupReceivers`] store keeps per sender; adding one more
/// deletes that sender's oldest chain.
pub const MAX_CHAINS_PER_SENDER: usize = 4;
/// Most chains a [`GroupReceivers`] store keeps; adding one more deletes the
/// oldest chain.
pub const MAX_GROUP_RECEIVERS: usize = 1024;

/// A group's 32-byte id, chosen by the application.
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
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

/// Who installed a sender chain, as far as sotto can tell.
// An identity is a few hundred bytes; boxing it would cost an allocation per
// decrypted message.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Sender {
    /// The distribution arrived over a pairwise session with this identity
    /// ([`GroupReceiver::accept`]).
    Authenticated(IdentityKey),
    /// The distribution was imported without a session
    /// ([`GroupReceiver::import_unauthenticated`]); anyone who saw it may
    /// have written the message.
    Unauthenticated,
}

impl Sender {
    /// The sender's identity, if authenticated.
    pub fn identity(&self) -> Option<&IdentityKey> {
        match self {
            Self::Authenticated(identity) => Some(identity),
            Self::Unauthenticated => None,
        }
    }
}

/// The authenticated flag, then the identity if set (SPEC §15.11).
impl Codec for Sender {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.identity().copied().encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(match Option::<IdentityKey>::decode(r)? {
            Some(identity) => Self::Authenticated(identity),
            None => Self::Unauthenticated,
        })
    }
}

/// A decrypted group message.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct GroupPlaintext {
    /// The message.
    pub plaintext: Vec<u8>,
    /// The sender chain it came from.
    pub chain_id: u32,
    /// Its index in that chain.
    pub index: u32,
    /// Who owns the chain.
    pub sender: Sender,
}
