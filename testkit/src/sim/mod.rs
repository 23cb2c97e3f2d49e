//! A deterministic adversarial network of pairwise sessions and one group,
//! driven by the simulation test (a seeded RNG) and the fuzz target
//! `conversation` (the fuzzer's bytes).
//!
//! Every party holds a [`Device`](sotto::Device), one session per peer, a
//! group sender and a store. Sender key distributions travel as pairwise
//! messages and are installed from the decrypted plaintext
//! (`GroupReceivers::install`) or in one call (`receive_distribution`); group messages
//! are broadcast to every other party, members or not. The network
//! reorders, drops, duplicates and corrupts envelopes and sometimes loses a
//! burst of group messages whole; an attacker injects forged, replayed,
//! cross-session, cross-chain and cross-group messages, and a party that
//! was not given a chain tries to read it with the ratchets it holds;
//! members are removed and re-added, senders rotate; parties save and
//! restore their state at random. Every outcome is checked against two
//! oracles:
//!
//! - a per-message ledger: each honest message decrypts at most once per
//!   receiver, to the plaintext and sender it was sent with; a group message
//!   only for a party that was sent its chain at or below its index; nothing
//!   forged is accepted;
//! - the reference model ([`model`]): for a pairwise session its
//!   receiving rules (chains and skipped keys, SPEC.md §8.6 and §8.7), run
//!   without cryptography, which say whether an honest message *must*
//!   decrypt, and whose counters the session's must match; for a group
//!   store the model's v2 store itself (§15.7 to §15.9), which decides
//!   every delivery and install, honest or forged: sotto must give its
//!   outcome (plaintext, `InsertOutcome`, or the same SPEC.md error), and
//!   its saved store must be the model's byte for byte (§15.11).
//!
//! Sessions are PQXDH (with a one-time or last-resort KEM prekey), and now
//! and then classical X3DH under a per-peer opt-in. A failed decrypt, accept
//! or store insert must leave the state byte-for-byte unchanged.
//!
//! Modules: [`model`] (the shapes the oracles track), [`world`] (parties,
//! sending, delivery, membership, save and restore), `network` (what the
//! network and the attacker do to envelopes), [`checks`] (invariants and
//! counters). Its sibling [`layer`] runs multi-device users through the
//! session layer (SPEC.md §16).

pub mod checks;
pub mod layer;
pub mod model;
mod network;
pub mod world;

pub use checks::Stats;
pub use world::World;

use sotto::group::GroupId;

/// The group every party starts in.
pub const GROUP: GroupId = GroupId::from_bytes([0x61; 32]);
/// A group the attacker runs on its own.
pub const OTHER_GROUP: GroupId = GroupId::from_bytes([0x62; 32]);
/// First plaintext byte of a pairwise text message. A distribution is sent
/// as its own bytes (the plaintext must be exactly the distribution, SPEC
/// §15.7), which start with the version byte 0x02.
const TEXT: u8 = b'T';
/// First byte of a distribution, the version.
const DISTRIBUTION: u8 = 0x02;

/// Where the simulation's decisions come from.
pub trait Choices {
    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize;

    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// A byte other than zero, to flip bits with.
    fn nonzero_byte(&mut self) -> u8 {
        u8::try_from(1 + self.below(255)).expect("at most 255")
    }
}

/// What an envelope carries.
#[derive(Clone)]
enum Payload {
    Pairwise(Vec<u8>),
    Group(Vec<u8>),
}

impl Payload {
    fn bytes_mut(&mut self) -> &mut Vec<u8> {
        match self {
            Self::Pairwise(bytes) | Self::Group(bytes) => bytes,
        }
    }
}

/// What the ledger knows about an honest message.
#[derive(Clone)]
enum Honest {
    Pairwise(PairwiseHonest),
    Group(GroupHonest),
}

/// An honest pairwise message.
#[derive(Clone)]
pub struct PairwiseHonest {
    id: u64,
    plaintext: Vec<u8>,
    ratchet_key: [u8; 32],
    previous_chain_length: u32,
    message_number: u32,
    /// The receiver's ratchet key the sender's chain was derived from.
    dh_with: [u8; 32],
    /// The chain id and index of the distribution it carries, if any.
    distribution: Option<(u32, u32)>,
}

/// An honest group message.
#[derive(Clone)]
pub struct GroupHonest {
    id: u64,
    plaintext: Vec<u8>,
    sender: usize,
    chain_id: u32,
    index: u32,
}

#[derive(Clone)]
struct Envelope {
    from: usize,
    to: usize,
    payload: Payload,
    /// `None` for attacker-made bytes, which must never decrypt.
    honest: Option<Honest>,
}

impl Envelope {
    fn pairwise(&self) -> Option<&PairwiseHonest> {
        match &self.honest {
            Some(Honest::Pairwise(h)) => Some(h),
            _ => None,
        }
    }

    fn group(&self) -> Option<&GroupHonest> {
        match &self.honest {
            Some(Honest::Group(h)) => Some(h),
            _ => None,
        }
    }
}
