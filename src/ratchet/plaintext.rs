//! A decrypted pairwise plaintext with its provenance (SPEC §15.7): the
//! bytes, and the identity of the session that decrypted them.

use alloc::vec::Vec;
use core::fmt;
use core::ops::Deref;

use zeroize::Zeroizing;

use crate::keys::IdentityKey;

/// What [`Session::decrypt`](crate::Session::decrypt) and
/// [`Session::accept`](crate::Session::accept) return: the plaintext, held
/// in memory that is zeroized on drop, and the remote identity of the
/// session it came out of.
///
/// Only sotto makes one, so holding a `Plaintext` proves which session's
/// peer sent these bytes (as far as that session is authenticated: compare
/// fingerprints). It dereferences to the bytes. It is not `Clone`, and its
/// `Debug` shows the sender and the length, never the bytes.
///
/// ```compile_fail
/// // Nothing outside sotto can make one.
/// fn forge(bytes: Vec<u8>, sender: sotto::IdentityKey) -> sotto::Plaintext {
///     sotto::Plaintext::new(zeroize::Zeroizing::new(bytes), sender)
/// }
/// ```
pub struct Plaintext {
    bytes: Zeroizing<Vec<u8>>,
    sender: IdentityKey,
}

impl Plaintext {
    pub(crate) fn new(bytes: Zeroizing<Vec<u8>>, sender: IdentityKey) -> Self {
        Self { bytes, sender }
    }

    /// The remote identity of the session that decrypted this plaintext.
    pub fn sender(&self) -> &IdentityKey {
        &self.sender
    }

    /// The plaintext bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The bytes alone, still zeroized on drop; the provenance is dropped.
    pub fn into_bytes(self) -> Zeroizing<Vec<u8>> {
        self.bytes
    }
}

impl Deref for Plaintext {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl AsRef<[u8]> for Plaintext {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plaintext")
            .field("sender", &self.sender)
            .field("len", &self.bytes.len())
            .finish()
    }
}
