//! The Double Ratchet (SPEC.md §8), split along its concepts: the root chain
//! (`root`), symmetric chains and message keys (`chain`), our sending side
//! (`sending`), the peer's chains and skipped keys as we receive them
//! (`receiving`), the session state that ties them together (`state`), and
//! the public [`Session`] with the X3DH glue (`session`).
//!
//! Layering, lowest first; each module uses only those before it: chain,
//! root, sending, receiving, state, session.

mod chain;
mod plaintext;
mod receiving;
mod root;
mod sending;
mod session;
mod state;

#[cfg(test)]
pub(crate) use chain::ChainKey;
pub use plaintext::Plaintext;
pub use receiving::{MAX_RECEIVING_CHAINS, MAX_SKIP, MAX_SKIPPED_KEYS, MAX_SKIPPED_KEYS_PER_CHAIN};
#[cfg(test)]
pub(crate) use root::RootKey;
pub use session::Session;
pub use state::{KeyAgreement, KeyAgreementPolicy, Role};

#[cfg(test)]
mod tests;
