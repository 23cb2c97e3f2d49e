//! The adversarial simulation through the session layer (SPEC.md §16,
//! issue 13): users with several devices, each device running a simulated
//! application that keeps one [`PeerRecord`](sotto::sessions::PeerRecord)
//! per user (its own other devices included) and a
//! [`GroupSession`](sotto::sessions::GroupSession) for the one group.
//!
//! The applications do what SPEC §16 asks of them and nothing more: they
//! feed the device lists a directory server returns, acknowledge identity
//! changes, fetch bundles when a plan or an action asks, carry out every
//! action of §16.6 (keep and retry later, send a retry request, start a new
//! session, ignore), resend what a retry request names, install and
//! request distributions, rotate when a member's device leaves, and call
//! the `after_restore` paths with the generations they recorded outside
//! their storage.
//!
//! Around them the world changes: devices are added, removed and
//! reinstalled with a new identity; users leave and rejoin the group;
//! devices crash, lose writes (a state update not persisted, then a
//! restart from what was) and are restored from stale backups; the network
//! loses, duplicates, corrupts, reorders and delays messages, some by days,
//! while the clock runs for weeks, so rate limits, rotations and expiry
//! all take part.
//!
//! Every outcome is checked against a ledger of what was sent: a decrypt
//! yields exactly what was sent to that device (its content and its
//! sender) and at most once, a group message only to a device that was
//! entitled to it, nothing forged decrypts, every failure carries the
//! action the §16.6 table gives its error and changes nothing. At the end
//! faults stop, delivery resumes, and after a bounded number of rounds of
//! quiet traffic every pair of current devices of users who talk must
//! exchange a message both ways, and every member device must read every
//! other member device's group message: no pair may stay wedged.
//!
//! Modules: `world` (users, devices, the directory, lifecycle), `app`
//! (one device's application state and its books), `send` and `receive`
//! (what an application does), `network`, `ledger` (the oracle and the
//! counters), `settle` (the end: quiet traffic and the wedge check).

mod app;
mod ledger;
mod network;
mod receive;
mod send;
mod settle;
mod world;

pub use ledger::Stats;
pub use settle::Settled;
pub use world::{Fault, World};

use sotto::group::GroupId;
use sotto::sessions::RetryHint;

/// The group of the run.
pub const GROUP: GroupId = GroupId::from_bytes([0x67; 32]);

/// What a run is made of.
#[derive(Clone, Debug)]
pub struct Config {
    /// Seeds every choice and every key.
    pub seed: u64,
    /// How many devices each user starts with (1 to 3); one entry per user.
    pub devices: Vec<usize>,
    /// Messages to send before the faults stop: pairwise messages (one per
    /// device encrypted for) and group messages (one per encrypt).
    pub messages: u64,
    /// Simulated days the run spans: the clock the layer's bounds and rate
    /// limits count in.
    pub days: u64,
}

impl Config {
    /// The run the issue asks for: six users with 1 to 3 devices each,
    /// over about 60 days.
    pub fn standard(messages: u64) -> Self {
        Self {
            seed: 0x5e55_0001,
            devices: vec![2, 1, 3, 2, 1, 3],
            messages,
            days: 60,
        }
    }
}

/// A device slot: one device id of one user. A reinstall keeps the slot
/// (the server's device id) and starts a new incarnation.
type Slot = usize;

/// One installation of a device: its slot and its incarnation number.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
struct Inc {
    slot: Slot,
    n: usize,
}

/// What a pairwise message carries, as the ledger expects it back.
#[derive(Clone, Debug)]
enum Expect {
    Payload(Vec<u8>),
    Retry(RetryHint),
    Distribution,
    DistributionRequest,
}

/// A message on the network. `wire` names it in the ledger; `None` for
/// bytes the network corrupted, which must never decrypt.
#[derive(Clone, Debug)]
struct Envelope {
    from: Inc,
    to: Inc,
    bytes: Vec<u8>,
    group: bool,
    wire: Option<u64>,
    ready_at: u64,
}
