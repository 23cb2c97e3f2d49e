//! The simulation's invariants and counters.

use sotto::group::{
    ChainId, GroupReceivers, MAX_CHAINS_PER_SENDER, MAX_GROUP_RECEIVERS, MAX_GROUP_SKIPPED_KEYS,
};
use sotto::{Error, MAX_RECEIVING_CHAINS, MAX_SKIPPED_KEYS, Session};

use super::model::{SessionShape, StoreShape};

/// Counters, reported by the drivers and checked for non-degenerate runs.
#[derive(Default, Debug, Clone)]
pub struct Stats {
    /// Pairwise messages encrypted.
    pub sent: u64,
    /// Honest pairwise deliveries.
    pub delivered_honest: u64,
    /// Honest pairwise messages decrypted.
    pub decrypted: u64,
    /// Honest messages the bounds (or an earlier copy) legitimately refused.
    pub refused_honest: u64,
    /// Envelopes the network dropped.
    pub dropped: u64,
    /// Envelopes the network duplicated.
    pub duplicated: u64,
    /// Envelopes the network corrupted.
    pub corrupted: u64,
    /// Forgeries the attacker injected.
    pub forged: u64,
    /// Replays the attacker injected.
    pub replayed: u64,
    /// Messages the attacker delivered to another session or party.
    pub cross_session: u64,
    /// Deliveries that did not parse.
    pub unparsable: u64,
    /// Pairwise saves and restores.
    pub restored: u64,
    /// Most skipped keys a session held.
    pub max_skipped: usize,
    /// Most receiving chains a session held.
    pub max_chains: usize,
    /// Group messages encrypted (each counted once, not per recipient).
    pub group_sent: u64,
    /// Group messages the network lost before anyone saw them.
    pub group_lost: u64,
    /// Honest group deliveries.
    pub group_delivered_honest: u64,
    /// Honest group deliveries decrypted.
    pub group_decrypted: u64,
    /// Honest group deliveries refused.
    pub group_refused_honest: u64,
    /// Honest group deliveries to a party never sent that chain at or below
    /// the message's index (removed members, joiners, lost distributions).
    pub group_not_given: u64,
    /// Group messages read with a cached key.
    pub group_from_cache: u64,
    /// Group forgeries.
    pub group_forged: u64,
    /// Group messages under another chain's id.
    pub group_cross_chain: u64,
    /// Group messages from another group or the attacker's chain.
    pub group_cross_group: u64,
    /// Reads of a chain with a receiver forged from other chains' ratchets.
    pub group_ratchet_swaps: u64,
    /// Distributions sent.
    pub distributions_sent: u64,
    /// Distributions installed.
    pub distributions_installed: u64,
    /// Distributions the store already held as far (outcome `Unchanged`).
    pub distributions_unchanged: u64,
    /// Sessions started with classical X3DH (the per-peer opt-in).
    pub classical_sessions: u64,
    /// Sessions started with PQXDH.
    pub pq_sessions: u64,
    /// Members removed.
    pub removals: u64,
    /// Members re-added.
    pub readds: u64,
    /// Sender chains rotated.
    pub rotations: u64,
    /// Group saves and restores.
    pub group_restored: u64,
    /// Most keys a group receiver cached.
    pub max_group_skipped: usize,
    /// Most chains a store held.
    pub max_store_len: usize,
    /// Store inserts that deleted the sender's oldest chain.
    pub chains_evicted: u64,
}

impl Stats {
    /// Every honest delivery either decrypted or was refused, and no
    /// session ever passed a bound.
    pub fn check(&self) {
        assert_eq!(self.decrypted + self.refused_honest, self.delivered_honest);
        assert!(self.decrypted <= self.sent);
        assert!(self.max_skipped <= MAX_SKIPPED_KEYS);
        assert!(self.max_chains <= MAX_RECEIVING_CHAINS);
        assert_eq!(
            self.group_decrypted + self.group_refused_honest,
            self.group_delivered_honest
        );
        assert!(self.group_not_given <= self.group_refused_honest);
        assert!(self.max_group_skipped <= MAX_GROUP_SKIPPED_KEYS);
        assert!(self.max_store_len <= MAX_GROUP_RECEIVERS);
        assert!(self.distributions_installed <= self.distributions_sent);
    }
}

/// The session agrees with its shape, and every bound holds.
pub(super) fn check_bounds(session: &Session, shape: &SessionShape, stats: &mut Stats) {
    let skipped = session.skipped_key_count();
    let chains = session.receiving_chain_count();
    assert!(skipped <= MAX_SKIPPED_KEYS && chains <= MAX_RECEIVING_CHAINS);
    assert_eq!(
        skipped,
        shape.skipped(),
        "skipped keys differ from the model"
    );
    assert_eq!(chains, shape.chains(), "chains differ from the model");
    stats.max_skipped = stats.max_skipped.max(skipped);
    stats.max_chains = stats.max_chains.max(chains);
}

/// The store is the model's, byte for byte (§15.11: every chain, owner,
/// mark, ratchet, cached key and generation, oldest first), and every
/// bound holds.
pub(super) fn check_store(store: &GroupReceivers, shape: &StoreShape, stats: &mut Stats) {
    assert!(
        store_bytes(store) == shape.encode(),
        "store differs from the model"
    );
    assert!(store.len() <= MAX_GROUP_RECEIVERS);
    for r in store.iter() {
        assert!(r.skipped_key_count() <= MAX_GROUP_SKIPPED_KEYS);
        assert!(
            r.sender().is_authenticated(),
            "the simulation imports nothing"
        );
        let own = store.iter().filter(|o| o.sender() == r.sender()).count();
        assert!(own <= MAX_CHAINS_PER_SENDER);
        stats.max_group_skipped = stats.max_group_skipped.max(r.skipped_key_count());
    }
    stats.max_store_len = stats.max_store_len.max(store.len());
}

/// After a decrypt through the store: the store's generation and chains
/// are the model's, and the receiver of `chain` is the model's byte for
/// byte (§15.11).
pub(super) fn check_receiver(
    store: &GroupReceivers,
    shape: &StoreShape,
    chain: &ChainId,
    stats: &mut Stats,
) {
    assert_eq!(store.generation(), shape.generation, "store generation");
    assert!(
        store
            .iter()
            .map(|r| r.chain().as_bytes())
            .eq(shape.entries.iter().map(|r| &r.chain)),
        "store chains differ from the model"
    );
    let (Some(r), Some(m)) = (store.get(chain), shape.get(chain.as_bytes())) else {
        panic!("the chain that decrypted is not held");
    };
    assert!(
        *r.to_bytes() == m.encode(),
        "receiver differs from the model"
    );
    stats.max_group_skipped = stats.max_group_skipped.max(r.skipped_key_count());
}

/// A pairwise refusal must name a check, never something unexpected.
pub(super) fn check_refusal(e: Error) {
    assert!(
        matches!(
            e,
            Error::AuthenticationFailed
                | Error::DuplicateMessage
                | Error::SessionDiverged
                | Error::TooFarAhead { .. }
                | Error::IdentityMismatch
                | Error::SessionMismatch
                | Error::NonContributoryKey
        ),
        "unexpected refusal {e:?}"
    );
}

/// A group refusal must name a check.
pub(super) fn check_group_refusal(e: Error) {
    assert!(
        matches!(
            e,
            Error::UnknownGroupChain
                | Error::InvalidSignature
                | Error::GroupIndexOutOfRange { .. }
                | Error::DuplicateMessage
                | Error::AuthenticationFailed
        ),
        "unexpected group refusal {e:?}"
    );
}

/// The store's saved form.
pub(super) fn store_bytes(store: &GroupReceivers) -> Vec<u8> {
    store.to_bytes().to_vec()
}

/// The store's saved form (every receiver and the generations), for the
/// all-or-nothing checks.
pub(super) fn snapshot(store: &GroupReceivers) -> Vec<u8> {
    store_bytes(store)
}
