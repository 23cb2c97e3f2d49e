//! The Double Ratchet: root chain, symmetric chains, skipped keys, sessions.

pub(crate) mod chain;
pub(crate) mod root;
pub(crate) mod session;
pub(crate) mod skipped;
