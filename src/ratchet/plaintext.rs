//! A decrypted pairwise plaintext with the identity of the session it came
//! out of (SPEC.md §15.7). Stand-in on the group branch: the pairwise branch
//! owns this type.

use alloc::vec::Vec;
use core::fmt;

use zeroize::Zeroizing;

use crate::keys::IdentityKey;

/// The plaintext of a pairwise message and the remote identity of the
/// session that decrypted it. Only sotto makes one, so it proves which
/// session the bytes came out of. The bytes are zeroized on drop.
pub struct Plaintext {
    bytes: Zeroizing<Vec<u8>>,
    remote_identity: IdentityKey,
}

impl Plaintext {
    pub(crate) fn new(bytes: Vec<u8>, remote_identity: IdentityKey) -> Self {
        Self {
            bytes: Zeroizing::new(bytes),
            remote_identity,
        }
    }

    /// The decrypted bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The identity of the session's peer, who wrote these bytes.
    pub fn remote_identity(&self) -> &IdentityKey {
        &self.remote_identity
    }
}

impl fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plaintext")
            .field("len", &self.bytes.len())
            .field("remote_identity", &self.remote_identity)
            .finish()
    }
}
