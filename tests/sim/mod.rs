//! A deterministic adversarial network of pairwise sessions and one group,
//! shared by `tests/simulation.rs` (driven by a seeded RNG) and the fuzz
//! target `conversation` (driven by the fuzzer's bytes).
//!
//! Every party holds a [`Device`], one [`Session`] per peer, a
//! [`GroupSender`] and a [`GroupReceivers`] store. Sender key distributions
//! travel as pairwise messages and are installed with
//! [`GroupReceiver::accept`]; group messages are broadcast to every other
//! party, members or not. The network reorders, drops, duplicates and
//! corrupts envelopes and sometimes loses a burst of group messages whole; an
//! attacker injects forged, replayed, cross-session, cross-chain and
//! cross-group messages, and a party that was not given a chain tries to read
//! it with the ratchets it holds; members are removed and re-added, senders
//! rotate; parties save and restore their state at random. Every outcome is
//! checked against two oracles:
//!
//! - a per-message ledger: each honest message decrypts at most once per
//!   receiver, to the plaintext and sender it was sent with; a group message
//!   only for a party that was sent its chain at or below its index; nothing
//!   forged is accepted;
//! - a reference model of every receiving side (pairwise chains and skipped
//!   keys; group chains per store, next index and cached indices), without
//!   cryptography, which says whether an honest message *must* decrypt; the
//!   state must agree with it, and its counters must match.
//!
//! A failed decrypt, accept or store insert must leave the state
//! byte-for-byte unchanged.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use sotto::group::{
    GROUP_SKIP_WINDOW, GroupId, GroupMessage, GroupReceiver, GroupReceivers, GroupSender,
    MAX_CHAINS_PER_SENDER, MAX_GROUP_JUMP, MAX_GROUP_RECEIVERS, MAX_GROUP_SKIPPED_KEYS, Sender,
};
use sotto::{
    Device, Error, IdentityKey, MAX_RECEIVING_CHAINS, MAX_SKIP, MAX_SKIPPED_KEYS,
    MAX_SKIPPED_KEYS_PER_CHAIN, Message, PreKeyBundle, Session, StorageKey,
};

/// The group every party starts in.
const GROUP: GroupId = GroupId::from_bytes([0x61; 32]);
/// A group the attacker runs on its own.
const OTHER_GROUP: GroupId = GroupId::from_bytes([0x62; 32]);
/// First plaintext byte of a pairwise message: text or a distribution.
const TEXT: u8 = b'T';
const DISTRIBUTION: u8 = b'D';

/// Where the simulation's decisions come from.
pub(crate) trait Choices {
    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize;

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// A byte other than zero, to flip bits with.
    fn nonzero_byte(&mut self) -> u8 {
        u8::try_from(1 + self.below(255)).unwrap()
    }
}

/// What an envelope carries.
#[derive(Clone)]
pub(crate) enum Payload {
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
pub(crate) enum Honest {
    Pairwise(PairwiseHonest),
    Group(GroupHonest),
}

#[derive(Clone)]
pub(crate) struct PairwiseHonest {
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

#[derive(Clone)]
pub(crate) struct GroupHonest {
    id: u64,
    plaintext: Vec<u8>,
    sender: usize,
    chain_id: u32,
    index: u32,
}

#[derive(Clone)]
pub(crate) struct Envelope {
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

/// The reference model of one side of a pairwise session.
struct Model {
    chains: VecDeque<ModelChain>,
    /// Our current sending ratchet key; `None` until the next encrypt.
    sending: Option<[u8; 32]>,
    /// The newest ratchet key received from the peer: our next chain uses it.
    remote: [u8; 32],
}

struct ModelChain {
    key: [u8; 32],
    current: bool,
    next: u32,
    skipped: BTreeSet<u32>,
}

impl Model {
    fn new(remote: [u8; 32]) -> Self {
        Self {
            chains: VecDeque::new(),
            sending: None,
            remote,
        }
    }

    fn skipped(&self) -> usize {
        self.chains.iter().map(|c| c.skipped.len()).sum()
    }

    /// The responder's first message: is it acceptable? Applies it if so.
    fn accept(&mut self, h: &PairwiseHonest) -> bool {
        if h.message_number > MAX_SKIP {
            return false;
        }
        self.chains.push_back(ModelChain {
            key: h.ratchet_key,
            current: true,
            next: h.message_number + 1,
            skipped: (0..h.message_number).collect(),
        });
        self.remote = h.ratchet_key;
        true
    }

    /// Must the session decrypt this honest message? Applies it if so.
    fn receive(&mut self, h: &PairwiseHonest) -> bool {
        let n = h.message_number;
        if let Some(c) = self.chains.iter_mut().find(|c| c.key == h.ratchet_key) {
            if c.skipped.remove(&n) {
                return true;
            }
            if !c.current || n < c.next || n - c.next > MAX_SKIP {
                return false;
            }
            c.skipped.extend(c.next..n);
            c.next = n + 1;
            self.enforce();
            return true;
        }
        if self.sending != Some(h.dh_with) {
            return false;
        }
        let pn = h.previous_chain_length;
        let from = match self.chains.back() {
            Some(c) if c.current => c.next,
            _ => pn,
        };
        if u64::from(pn.saturating_sub(from)) + u64::from(n) > u64::from(MAX_SKIP) {
            return false;
        }
        if let Some(c) = self.chains.back_mut() {
            if c.current {
                c.skipped.extend(from..pn);
            }
            c.current = false;
            c.next = c.next.max(pn);
        }
        self.chains.push_back(ModelChain {
            key: h.ratchet_key,
            current: true,
            next: n + 1,
            skipped: (0..n).collect(),
        });
        self.enforce();
        self.sending = None;
        self.remote = h.ratchet_key;
        true
    }

    fn enforce(&mut self) {
        while self.chains.len() > MAX_RECEIVING_CHAINS {
            self.chains.pop_front();
        }
        for c in &mut self.chains {
            while c.skipped.len() > MAX_SKIPPED_KEYS_PER_CHAIN {
                c.skipped.pop_first();
            }
        }
        let mut excess = self.skipped().saturating_sub(MAX_SKIPPED_KEYS);
        for c in &mut self.chains {
            while excess > 0 && c.skipped.pop_first().is_some() {
                excess -= 1;
            }
        }
    }
}

/// The reference model of one sender chain in a store.
struct ModelReceiver {
    sender: usize,
    chain_id: u32,
    next: u32,
    cached: BTreeSet<u32>,
}

/// The reference model of a [`GroupReceivers`] store, oldest first.
#[derive(Default)]
struct GroupModel(Vec<ModelReceiver>);

impl GroupModel {
    /// What inserting a distribution of `chain_id` at `next` must return:
    /// on success, whether it deleted the sender's oldest chain.
    fn insert(&mut self, sender: usize, chain_id: u32, next: u32) -> Result<bool, Error> {
        if let Some(m) = self.0.iter_mut().find(|m| m.chain_id == chain_id) {
            if m.sender != sender {
                return Err(Error::GroupChainConflict);
            }
            if next <= m.next {
                return Err(Error::GroupChainNotNewer);
            }
            m.next = next;
            return Ok(false);
        }
        let evict = self.0.iter().filter(|m| m.sender == sender).count() >= MAX_CHAINS_PER_SENDER;
        if evict {
            let oldest = self.0.iter().position(|m| m.sender == sender).unwrap();
            self.0.remove(oldest);
        }
        if self.0.len() >= MAX_GROUP_RECEIVERS {
            self.0.remove(0);
        }
        self.0.push(ModelReceiver {
            sender,
            chain_id,
            next,
            cached: BTreeSet::new(),
        });
        Ok(evict)
    }

    /// Must the store decrypt this honest group message? Applies it if so.
    fn receive(&mut self, h: &GroupHonest) -> bool {
        let Some(m) = self.0.iter_mut().find(|m| m.chain_id == h.chain_id) else {
            return false;
        };
        let j = h.index;
        if m.cached.remove(&j) {
            return true;
        }
        if j < m.next || j == u32::MAX || j - m.next > MAX_GROUP_JUMP {
            return false;
        }
        m.cached
            .extend(j.saturating_sub(GROUP_SKIP_WINDOW).max(m.next)..j);
        m.next = j + 1;
        while m.cached.len() > MAX_GROUP_SKIPPED_KEYS {
            m.cached.pop_first();
        }
        true
    }
}

struct Peer {
    session: Session,
    model: Model,
}

struct Party {
    device: Device,
    identity: IdentityKey,
    rng: ChaCha20Rng,
    storage_key: [u8; 32],
    peers: BTreeMap<usize, Peer>,
    group: GroupSender,
    store: GroupReceivers,
    group_model: GroupModel,
    /// Members still to be sent this party's current chain.
    pending: BTreeSet<usize>,
}

/// What the world knows about a sender chain.
struct Chain {
    sender: usize,
    signing_key: [u8; 32],
    /// Per party, the lowest index of this chain it was ever sent a
    /// distribution at: it may read no message of the chain below that.
    given_from: BTreeMap<usize, u32>,
}

/// Counters, reported by the drivers and checked for non-degenerate runs.
#[derive(Default, Debug, Clone)]
pub(crate) struct Stats {
    pub(crate) sent: u64,
    pub(crate) delivered_honest: u64,
    pub(crate) decrypted: u64,
    /// Honest messages the bounds (or an earlier copy) legitimately refused.
    pub(crate) refused_honest: u64,
    pub(crate) dropped: u64,
    pub(crate) duplicated: u64,
    pub(crate) corrupted: u64,
    pub(crate) forged: u64,
    pub(crate) replayed: u64,
    pub(crate) cross_session: u64,
    pub(crate) unparsable: u64,
    pub(crate) restored: u64,
    pub(crate) max_skipped: usize,
    pub(crate) max_chains: usize,
    /// Group messages encrypted (each counted once, not per recipient).
    pub(crate) group_sent: u64,
    /// Group messages the network lost before anyone saw them.
    pub(crate) group_lost: u64,
    pub(crate) group_delivered_honest: u64,
    pub(crate) group_decrypted: u64,
    pub(crate) group_refused_honest: u64,
    /// Honest group deliveries to a party never sent that chain at or below
    /// the message's index (removed members, joiners, lost distributions).
    pub(crate) group_not_given: u64,
    pub(crate) group_from_cache: u64,
    pub(crate) group_forged: u64,
    pub(crate) group_cross_chain: u64,
    pub(crate) group_cross_group: u64,
    /// Reads of a chain with a receiver forged from other chains' ratchets.
    pub(crate) group_ratchet_swaps: u64,
    pub(crate) distributions_sent: u64,
    pub(crate) distributions_installed: u64,
    pub(crate) distributions_refused: u64,
    pub(crate) removals: u64,
    pub(crate) readds: u64,
    pub(crate) rotations: u64,
    pub(crate) group_restored: u64,
    pub(crate) max_group_skipped: usize,
    pub(crate) max_store_len: usize,
    /// Store inserts that deleted the sender's oldest chain.
    pub(crate) chains_evicted: u64,
}

impl Stats {
    /// Every honest delivery either decrypted or was refused, and no
    /// session ever passed a bound.
    pub(crate) fn check(&self) {
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

/// Parties, the network, the attacker's archive and the ledger.
pub(crate) struct World {
    parties: Vec<Party>,
    in_flight: Vec<Envelope>,
    /// Every honest envelope ever sent, for the attacker to replay.
    archive: Vec<Envelope>,
    /// Ids of honest messages that have decrypted.
    decrypted: BTreeSet<u64>,
    /// (receiver, id) of honest group messages that have decrypted.
    group_decrypted: BTreeSet<(usize, u64)>,
    members: BTreeSet<usize>,
    chains: BTreeMap<u32, Chain>,
    attacker_rng: ChaCha20Rng,
    next_id: u64,
    pub(crate) stats: Stats,
}

/// Largest number of envelopes the network holds before it must deliver
/// (a group message is one envelope per recipient).
const MAX_IN_FLIGHT: usize = 96;
/// How many archived envelopes the attacker remembers.
const ARCHIVE_LEN: usize = 256;

impl World {
    /// `count` parties with devices drawn from `seed`. Sessions are created
    /// lazily: the lower-numbered party of each pair initiates.
    pub(crate) fn new(count: usize, seed: u64) -> Self {
        let parties: Vec<Party> = (0..count)
            .map(|i| {
                let mut rng = ChaCha20Rng::seed_from_u64(seed ^ (i as u64) << 32);
                let device = Device::generate(&mut rng);
                let mut storage_key = [0u8; 32];
                rng.fill_bytes(&mut storage_key);
                let group = GroupSender::new(&mut rng, GROUP);
                Party {
                    identity: *device.identity_key(),
                    device,
                    rng,
                    storage_key,
                    peers: BTreeMap::new(),
                    group,
                    store: GroupReceivers::new(GROUP),
                    group_model: GroupModel::default(),
                    pending: (0..count).filter(|&j| j != i).collect(),
                }
            })
            .collect();
        let chains = parties
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let chain = Chain {
                    sender: i,
                    signing_key: p.group.signing_key_bytes(),
                    given_from: BTreeMap::new(),
                };
                (p.group.chain_id(), chain)
            })
            .collect();
        Self {
            parties,
            in_flight: Vec::new(),
            archive: Vec::new(),
            decrypted: BTreeSet::new(),
            group_decrypted: BTreeSet::new(),
            members: (0..count).collect(),
            chains,
            attacker_rng: ChaCha20Rng::seed_from_u64(!seed),
            next_id: 0,
            stats: Stats::default(),
        }
    }

    /// One step: send, deliver, attack or save/restore.
    pub(crate) fn step(&mut self, c: &mut impl Choices) {
        if self.in_flight.len() >= MAX_IN_FLIGHT {
            self.deliver_one(c);
            return;
        }
        match c.below(40) {
            0..=13 => self.send(c),
            14..=16 => self.group_send(c),
            17..=32 => self.deliver_one(c),
            33..=35 => self.attack(c),
            36 => self.save_restore(c),
            37 => self.group_save_restore(c),
            38 => self.group_attack(c),
            _ => {
                if c.chance(2) {
                    self.membership(c);
                }
            }
        }
    }

    /// Delivers or drops everything still in flight.
    pub(crate) fn drain(&mut self, c: &mut impl Choices) {
        while !self.in_flight.is_empty() {
            self.deliver_one(c);
        }
    }

    fn pair(&self, c: &mut impl Choices) -> (usize, usize) {
        let n = self.parties.len();
        let from = c.below(n);
        let to = (from + 1 + c.below(n - 1)) % n;
        (from, to)
    }

    /// A pairwise message: the sender's current chain if the receiver is
    /// waiting for it (or, now and then, again), otherwise text.
    fn send(&mut self, c: &mut impl Choices) {
        let (from, to) = self.pair(c);
        if !self.parties[from].peers.contains_key(&to) {
            if from > to {
                // The responder cannot write before the first message arrives.
                return;
            }
            self.initiate(from, to, c);
        }
        let both_members = self.members.contains(&from) && self.members.contains(&to);
        if both_members && (self.parties[from].pending.contains(&to) || c.chance(2)) {
            self.send_distribution(from, to, c);
            return;
        }
        let mut plaintext =
            format!("{}{from}->{to} #{} ", char::from(TEXT), self.next_id).into_bytes();
        plaintext.resize(plaintext.len() + c.below(48), b'.');
        self.send_pairwise(from, to, plaintext, None, c);
    }

    fn send_distribution(&mut self, from: usize, to: usize, c: &mut impl Choices) {
        let party = &mut self.parties[from];
        party.pending.remove(&to);
        let distribution = party.group.distribution();
        let (chain_id, index) = (distribution.chain_id(), distribution.index());
        let mut plaintext = vec![DISTRIBUTION];
        plaintext.extend_from_slice(&distribution.to_bytes());
        let given = self.chains.get_mut(&chain_id).unwrap().given_from.entry(to);
        let lowest = given.or_insert(index);
        *lowest = (*lowest).min(index);
        self.stats.distributions_sent += 1;
        self.send_pairwise(from, to, plaintext, Some((chain_id, index)), c);
    }

    fn send_pairwise(
        &mut self,
        from: usize,
        to: usize,
        plaintext: Vec<u8>,
        distribution: Option<(u32, u32)>,
        c: &mut impl Choices,
    ) {
        let id = self.next_id;
        self.next_id += 1;
        let party = &mut self.parties[from];
        let peer = party.peers.get_mut(&to).unwrap();
        let message = peer.session.encrypt(&mut party.rng, &plaintext).unwrap();
        let (ratchet_key, pn, n) = ratchet_header(&message);
        peer.model.sending = Some(ratchet_key);
        let envelope = Envelope {
            from,
            to,
            payload: Payload::Pairwise(message.into_bytes()),
            honest: Some(Honest::Pairwise(PairwiseHonest {
                id,
                plaintext,
                ratchet_key,
                previous_chain_length: pn,
                message_number: n,
                dh_with: peer.model.remote,
                distribution,
            })),
        };
        self.archive(envelope.clone(), c);
        self.in_flight.push(envelope);
        self.stats.sent += 1;
    }

    fn archive(&mut self, envelope: Envelope, c: &mut impl Choices) {
        if self.archive.len() == ARCHIVE_LEN {
            let slot = c.below(ARCHIVE_LEN);
            self.archive[slot] = envelope;
        } else {
            self.archive.push(envelope);
        }
    }

    /// A member encrypts for the group; the message goes to every other
    /// party. Now and then the network first loses a burst of the sender's
    /// messages whole (the attacker keeps them), so receivers skip indices,
    /// some beyond the cache window.
    fn group_send(&mut self, c: &mut impl Choices) {
        let members: Vec<usize> = self.members.iter().copied().collect();
        let from = members[c.below(members.len())];
        let lost = if c.chance(3) { 1 + c.below(36) } else { 0 };
        for k in 0..=lost {
            let id = self.next_id;
            self.next_id += 1;
            let mut plaintext = format!("group {from} #{id} ").into_bytes();
            plaintext.resize(plaintext.len() + c.below(32), b'.');
            let party = &mut self.parties[from];
            let message = party.group.encrypt(&mut party.rng, &plaintext).unwrap();
            let honest = GroupHonest {
                id,
                plaintext,
                sender: from,
                chain_id: message.chain_id(),
                index: message.index(),
            };
            let envelope = Envelope {
                from,
                to: (from + 1 + c.below(self.parties.len() - 1)) % self.parties.len(),
                payload: Payload::Group(message.into_bytes()),
                honest: Some(Honest::Group(honest)),
            };
            self.stats.group_sent += 1;
            self.archive(envelope.clone(), c);
            if k < lost {
                self.stats.group_lost += 1;
                continue;
            }
            for to in (0..self.parties.len()).filter(|&to| to != from) {
                self.in_flight.push(Envelope {
                    to,
                    ..envelope.clone()
                });
            }
        }
    }

    fn initiate(&mut self, from: usize, to: usize, c: &mut impl Choices) {
        let responder = &mut self.parties[to];
        let one_time = if c.chance(60) && responder.device.one_time_prekey_count() < 100 {
            responder
                .device
                .generate_one_time_prekeys(&mut responder.rng, 1)
                .unwrap()
                .first()
                .copied()
        } else {
            None
        };
        let bundle = PreKeyBundle::new(
            responder.identity,
            responder.device.signed_prekey(),
            one_time,
        );
        let bundle = PreKeyBundle::from_bytes(&bundle.to_bytes()).unwrap();
        let remote = bundle.signed_prekey().key_bytes();
        let verified = bundle.verify_for(&responder.identity).unwrap();
        let initiator = &mut self.parties[from];
        let session = Session::initiate(&initiator.device, &mut initiator.rng, &verified).unwrap();
        initiator.peers.insert(
            to,
            Peer {
                session,
                model: Model::new(remote),
            },
        );
    }

    fn deliver_one(&mut self, c: &mut impl Choices) {
        if self.in_flight.is_empty() {
            return;
        }
        // Mostly oldest-first with random overtaking, so reordering is
        // frequent but no envelope waits forever.
        let index = if c.chance(70) {
            0
        } else {
            c.below(self.in_flight.len())
        };
        let envelope = self.in_flight.remove(index);
        match c.below(100) {
            0..=2 => self.stats.dropped += 1,
            3..=5 => {
                self.stats.duplicated += 1;
                let at = c.below(self.in_flight.len() + 1);
                self.in_flight.insert(at, envelope.clone());
                self.deliver(envelope);
            }
            6..=8 => {
                self.stats.corrupted += 1;
                let tampered = self.tamper(envelope, c);
                self.deliver(tampered);
            }
            _ => self.deliver(envelope),
        }
    }

    /// Changes one byte, or truncates, or appends. Every byte of a message is
    /// authenticated, so the result is never an honest message.
    fn tamper(&mut self, mut envelope: Envelope, c: &mut impl Choices) -> Envelope {
        let bytes = envelope.payload.bytes_mut();
        match c.below(8) {
            0 => {
                let len = c.below(bytes.len());
                bytes.truncate(len);
            }
            1 => bytes.push(c.nonzero_byte()),
            _ => {
                let at = c.below(bytes.len());
                bytes[at] ^= c.nonzero_byte();
            }
        }
        Envelope {
            honest: None,
            ..envelope
        }
    }

    fn attack(&mut self, c: &mut impl Choices) {
        if self.archive.is_empty() {
            return;
        }
        let original = self.archive[c.below(self.archive.len())].clone();
        match c.below(3) {
            0 => {
                // Replay to the right receiver: the ledger and model decide.
                self.stats.replayed += 1;
                self.deliver(original);
            }
            1 if matches!(original.payload, Payload::Group(_)) => {
                // A group message is the same message for everyone: handing
                // it to another party is reordering, not forgery.
                self.stats.cross_session += 1;
                let to = c.below(self.parties.len());
                self.deliver(Envelope { to, ..original });
            }
            1 => {
                self.stats.cross_session += 1;
                let (from, to) = self.pair(c);
                if (from, to) == (original.from, original.to) {
                    return;
                }
                self.deliver(Envelope {
                    from,
                    to,
                    honest: None,
                    ..original
                });
            }
            _ => {
                self.stats.forged += 1;
                let Payload::Pairwise(mut bytes) = original.payload else {
                    let mut forged = original;
                    let bytes = forged.payload.bytes_mut();
                    // Any field: group id, chain id, index, salt, ciphertext
                    // and tag, or signature.
                    let (from, len) = match c.below(6) {
                        0 => (2, 32),
                        1 => (34, 4),
                        2 => (38, 4),
                        3 => (42, 16),
                        4 => (58, bytes.len() - 58 - 64),
                        _ => (bytes.len() - 64, 64),
                    };
                    let at = from + c.below(len);
                    bytes[at] ^= c.nonzero_byte();
                    self.stats.group_forged += 1;
                    self.deliver(Envelope {
                        honest: None,
                        ..forged
                    });
                    return;
                };
                // Rewrite one field of the ratchet header or the body: a new
                // ratchet key, other counters, another salt or ciphertext.
                let start = ratchet_offset(&bytes);
                let (from, len) = match c.below(5) {
                    0 => (start + 2, 32),
                    1 => (start + 34, 4),
                    2 => (start + 38, 4),
                    3 => (start + 42, 16),
                    _ => (start + 58, bytes.len() - start - 58),
                };
                let at = from + c.below(len);
                bytes[at] ^= c.nonzero_byte();
                if at < start + 34 {
                    // Keep the key canonical so that the forgery parses.
                    bytes[start + 33] &= 0x7f;
                }
                self.deliver(Envelope {
                    payload: Payload::Pairwise(bytes),
                    honest: None,
                    ..original
                });
            }
        }
    }

    fn deliver(&mut self, envelope: Envelope) {
        let bytes = match &envelope.payload {
            Payload::Pairwise(bytes) => bytes,
            Payload::Group(_) => return self.deliver_group(envelope),
        };
        let Ok(message) = Message::from_bytes(bytes) else {
            self.stats.unparsable += 1;
            assert!(envelope.honest.is_none(), "an honest message did not parse");
            return;
        };
        let honest = envelope.pairwise();
        if honest.is_some() {
            self.stats.delivered_honest += 1;
        }
        let sender_identity = self.parties[envelope.from].identity;
        let party = &mut self.parties[envelope.to];
        let result = match party.peers.get_mut(&envelope.from) {
            Some(peer) => {
                let expected = honest.is_some_and(|h| peer.model.receive(h));
                let before = (!expected).then(|| peer.session.to_bytes());
                let result = peer.session.decrypt(&message);
                match (&result, before) {
                    (Ok(_), _) => assert!(expected, "decrypt accepted an unexpected message"),
                    (Err(e), Some(before)) => {
                        assert_eq!(
                            *peer.session.to_bytes(),
                            *before,
                            "failed decrypt changed state"
                        );
                        check_refusal(*e);
                    }
                    (Err(e), None) => panic!("an honest in-bounds message failed: {e:?}"),
                }
                check_bounds(&peer.session, &peer.model, &mut self.stats);
                result
            }
            None => {
                let Message::PreKey(first) = &message else {
                    assert!(honest.is_none(), "honest ratchet message before a session");
                    return;
                };
                // The app routes a first message by the identity it carries.
                if *first.identity() != sender_identity {
                    assert!(
                        honest.is_none(),
                        "honest prekey message with wrong identity"
                    );
                    return;
                }
                let before = party.device.to_bytes();
                match Session::accept(&mut party.device, first) {
                    Ok((session, plaintext)) => {
                        let h = honest.expect("accept took a forged prekey message");
                        assert!(
                            !self.decrypted.contains(&h.id),
                            "prekey message accepted twice"
                        );
                        let mut model = Model::new(h.ratchet_key);
                        assert!(model.accept(h), "model refuses an accepted first message");
                        let peer = Peer { session, model };
                        check_bounds(&peer.session, &peer.model, &mut self.stats);
                        party.peers.insert(envelope.from, peer);
                        Ok(plaintext)
                    }
                    Err(e) => {
                        assert!(honest.is_none(), "honest first message refused: {e:?}");
                        assert_eq!(
                            *party.device.to_bytes(),
                            *before,
                            "failed accept changed device"
                        );
                        Err(e)
                    }
                }
            }
        };
        match (result, honest) {
            (Ok(plaintext), Some(h)) => {
                assert_eq!(plaintext, h.plaintext, "wrong plaintext");
                assert!(self.decrypted.insert(h.id), "message decrypted twice");
                self.stats.decrypted += 1;
                if let Some((&DISTRIBUTION, distribution)) = plaintext.split_first() {
                    let h = h.clone();
                    self.install(envelope.from, envelope.to, distribution, &h);
                }
            }
            (Ok(_), None) => panic!("forged message accepted"),
            (Err(_), Some(_)) => self.stats.refused_honest += 1,
            (Err(_), None) => {}
        }
    }

    fn save_restore(&mut self, c: &mut impl Choices) {
        let index = c.below(self.parties.len());
        let party = &mut self.parties[index];
        let sealed = c.chance(50);
        let key = StorageKey::from_bytes(party.storage_key);
        self.stats.restored += 1;
        if c.chance(20) {
            let before = party.device.to_bytes();
            party.device = if sealed {
                let bytes = party.device.seal(&key, &mut party.rng).unwrap();
                Device::unseal(&bytes, &key).unwrap()
            } else {
                Device::from_bytes(&before).unwrap()
            };
            assert_eq!(
                *party.device.to_bytes(),
                *before,
                "device restore changed state"
            );
            return;
        }
        let Some(&peer) = party.peers.keys().nth(c.below(party.peers.len().max(1))) else {
            return;
        };
        let peer = party.peers.get_mut(&peer).unwrap();
        let before = peer.session.to_bytes();
        peer.session = if sealed {
            let bytes = peer.session.seal(&key, &mut party.rng).unwrap();
            Session::unseal(&bytes, &key).unwrap()
        } else {
            Session::from_bytes(&before).unwrap()
        };
        assert_eq!(
            *peer.session.to_bytes(),
            *before,
            "session restore changed state"
        );
    }

    /// The application's handling of a distribution that arrived from
    /// `from`: only members' chains are installed, attributed to the session
    /// that carried them.
    fn install(&mut self, from: usize, to: usize, distribution: &[u8], h: &PairwiseHonest) {
        if !self.members.contains(&from) {
            return;
        }
        let sender_identity = self.parties[from].identity;
        let party = &mut self.parties[to];
        let session = &party.peers[&from].session;
        let receiver = GroupReceiver::accept(distribution, session).unwrap();
        assert_eq!(receiver.sender(), &Sender::Authenticated(sender_identity));
        let (chain_id, index) = (receiver.chain_id(), receiver.next_index());
        assert_eq!(Some((chain_id, index)), h.distribution);
        let expected = party.group_model.insert(from, chain_id, index);
        let before = (expected.is_err()).then(|| store_bytes(&party.store));
        let result = party.store.insert(receiver);
        assert_eq!(
            result,
            expected.map(|_| ()),
            "store insert disagrees with the model"
        );
        match (expected, before) {
            (Ok(evicted), _) => {
                self.stats.distributions_installed += 1;
                if evicted {
                    self.stats.chains_evicted += 1;
                }
            }
            (Err(_), Some(before)) => {
                self.stats.distributions_refused += 1;
                assert!(
                    store_bytes(&party.store) == before,
                    "failed insert changed the store"
                );
            }
            (Err(_), None) => unreachable!("the model expected an error"),
        }
        check_store(&party.store, &party.group_model, &mut self.stats);
    }

    fn deliver_group(&mut self, envelope: Envelope) {
        let Payload::Group(bytes) = &envelope.payload else {
            unreachable!("only group payloads come here")
        };
        let Ok(message) = GroupMessage::from_bytes(bytes) else {
            self.stats.unparsable += 1;
            assert!(
                envelope.honest.is_none(),
                "an honest group message did not parse"
            );
            return;
        };
        let honest = envelope.group();
        let to = envelope.to;
        let given = honest.is_some_and(|h| {
            self.chains[&h.chain_id]
                .given_from
                .get(&to)
                .is_some_and(|&from| from <= h.index)
        });
        let party = &mut self.parties[to];
        if honest.is_some() {
            self.stats.group_delivered_honest += 1;
        }
        let cached = honest.is_some_and(|h| {
            party
                .group_model
                .0
                .iter()
                .any(|m| m.chain_id == h.chain_id && m.cached.contains(&h.index))
        });
        let expected = honest.is_some_and(|h| party.group_model.receive(h));
        let before = (!expected).then(|| snapshot(&party.store, message.chain_id()));
        let result = party.store.decrypt(&message);
        match (&result, before) {
            (Ok(_), _) => assert!(expected, "group decrypt accepted an unexpected message"),
            (Err(e), Some(before)) => {
                assert!(
                    snapshot(&party.store, message.chain_id()) == before,
                    "failed group decrypt changed the store"
                );
                check_group_refusal(*e);
            }
            (Err(e), None) => panic!("an honest reachable group message failed: {e:?}"),
        }
        check_store(&party.store, &party.group_model, &mut self.stats);
        match (result, honest) {
            (Ok(read), Some(h)) => {
                assert_eq!(read.plaintext, h.plaintext, "wrong group plaintext");
                assert_eq!((read.chain_id, read.index), (h.chain_id, h.index));
                let sender = Sender::Authenticated(self.parties[h.sender].identity);
                assert_eq!(read.sender, sender, "wrong group sender");
                assert!(given, "read a message of a chain it was not given");
                assert!(
                    self.group_decrypted.insert((to, h.id)),
                    "group message decrypted twice"
                );
                self.stats.group_decrypted += 1;
                if cached {
                    self.stats.group_from_cache += 1;
                }
            }
            (Ok(_), None) => panic!("forged group message accepted"),
            (Err(_), Some(_)) => {
                self.stats.group_refused_honest += 1;
                if !given {
                    self.stats.group_not_given += 1;
                }
            }
            (Err(_), None) => {}
        }
    }

    /// A new chain for `p`, sent at once to every member it has a session
    /// with and later to the others.
    fn rotate(&mut self, p: usize, c: &mut impl Choices) {
        let party = &mut self.parties[p];
        drop(party.group.rotate(&mut party.rng));
        let chain = Chain {
            sender: p,
            signing_key: party.group.signing_key_bytes(),
            given_from: BTreeMap::new(),
        };
        let previous = self.chains.insert(party.group.chain_id(), chain);
        assert!(previous.is_none(), "chain id drawn twice");
        party.pending = self.members.iter().copied().filter(|&q| q != p).collect();
        self.stats.rotations += 1;
        let ready: Vec<usize> = party
            .pending
            .iter()
            .copied()
            .filter(|q| party.peers.contains_key(q))
            .collect();
        for q in ready {
            self.send_distribution(p, q, c);
        }
    }

    /// Removes a member (everyone else deletes its chains and rotates),
    /// re-adds a removed one (it rotates; everyone sends it their current
    /// chain), or has one member rotate on schedule.
    fn membership(&mut self, c: &mut impl Choices) {
        let outside: Vec<usize> = (0..self.parties.len())
            .filter(|p| !self.members.contains(p))
            .collect();
        match c.below(3) {
            0 if self.members.len() > 2 => {
                let members: Vec<usize> = self.members.iter().copied().collect();
                let removed = members[c.below(members.len())];
                self.members.remove(&removed);
                self.parties[removed].pending.clear();
                let gone = Sender::Authenticated(self.parties[removed].identity);
                for &m in &self.members {
                    let party = &mut self.parties[m];
                    party.pending.remove(&removed);
                    let deleted = party.store.remove_sender(&gone);
                    let model = &mut party.group_model.0;
                    let before = model.len();
                    model.retain(|r| r.sender != removed);
                    assert_eq!(deleted, before - model.len());
                }
                self.stats.removals += 1;
                for m in self.members.clone() {
                    self.rotate(m, c);
                }
            }
            1 if !outside.is_empty() => {
                let joiner = outside[c.below(outside.len())];
                self.members.insert(joiner);
                self.stats.readds += 1;
                for m in self.members.clone() {
                    if m != joiner {
                        self.parties[m].pending.insert(joiner);
                    }
                }
                self.rotate(joiner, c);
            }
            _ => {
                let members: Vec<usize> = self.members.iter().copied().collect();
                self.rotate(members[c.below(members.len())], c);
            }
        }
    }

    fn group_save_restore(&mut self, c: &mut impl Choices) {
        let index = c.below(self.parties.len());
        let party = &mut self.parties[index];
        let sealed = c.chance(50);
        let key = StorageKey::from_bytes(party.storage_key);
        self.stats.group_restored += 1;
        if c.chance(30) {
            let before = party.group.to_bytes();
            party.group = if sealed {
                let bytes = party.group.seal(&key, &mut party.rng).unwrap();
                GroupSender::unseal(&bytes, &key).unwrap()
            } else {
                GroupSender::from_bytes(&before).unwrap()
            };
            assert_eq!(
                *party.group.to_bytes(),
                *before,
                "sender restore changed state"
            );
            return;
        }
        // The store persists as its receivers, oldest first.
        let before = store_bytes(&party.store);
        let mut store = GroupReceivers::new(GROUP);
        for receiver in party.store.iter() {
            let restored = if sealed {
                let bytes = receiver.seal(&key, &mut party.rng).unwrap();
                GroupReceiver::unseal(&bytes, &key).unwrap()
            } else {
                GroupReceiver::from_bytes(&receiver.to_bytes()).unwrap()
            };
            store.insert(restored).unwrap();
        }
        party.store = store;
        assert!(
            store_bytes(&party.store) == before,
            "store restore changed state"
        );
    }

    /// Group-only attacks: messages under another chain's id, messages from
    /// another group, and a party reading a chain it was not given with a
    /// receiver built from the ratchets it does hold.
    fn group_attack(&mut self, c: &mut impl Choices) {
        let groups: Vec<&Envelope> = self
            .archive
            .iter()
            .filter(|e| e.group().is_some())
            .collect();
        if groups.is_empty() {
            return;
        }
        let original = groups[c.below(groups.len())].clone();
        let h = original.group().unwrap().clone();
        let to = c.below(self.parties.len());
        match c.below(3) {
            0 => {
                // Another live chain's id on a real message: signed by the
                // wrong key for that chain.
                self.stats.group_cross_chain += 1;
                let ids: Vec<u32> = self.chains.keys().copied().collect();
                let other = ids[c.below(ids.len())];
                if other == h.chain_id {
                    return;
                }
                let mut forged = original;
                forged.payload.bytes_mut()[34..38].copy_from_slice(&other.to_be_bytes());
                self.deliver(Envelope {
                    to,
                    honest: None,
                    ..forged
                });
            }
            1 => {
                // The attacker's own chain, claiming a real chain's id, in
                // this group or another one.
                self.stats.group_cross_group += 1;
                let group = if c.chance(50) { GROUP } else { OTHER_GROUP };
                let mut state = vec![0x01, 0x22];
                state.extend_from_slice(group.as_bytes());
                state.extend_from_slice(&h.chain_id.to_be_bytes());
                state.extend_from_slice(&h.index.to_be_bytes());
                let mut secrets = [0u8; 256 + 32];
                self.attacker_rng.fill_bytes(&mut secrets);
                state.extend_from_slice(&secrets);
                let mut attacker = GroupSender::from_bytes(&state).unwrap();
                let message = attacker
                    .encrypt(&mut self.attacker_rng, &h.plaintext)
                    .unwrap();
                self.deliver(Envelope {
                    to,
                    payload: Payload::Group(message.into_bytes()),
                    honest: None,
                    ..original
                });
            }
            _ => self.ratchet_swap(&h, &original, c),
        }
    }

    /// A party that was not given `h`'s chain at or below its index (a
    /// removed member, a late joiner) takes every ratchet and cached key it
    /// holds, relabels each as that chain (with its real signing key, which
    /// we hand it), and tries to read the message: it must fail the AEAD.
    fn ratchet_swap(&mut self, h: &GroupHonest, original: &Envelope, c: &mut impl Choices) {
        let chain = &self.chains[&h.chain_id];
        let outsiders: Vec<usize> = (0..self.parties.len())
            .filter(|p| *p != chain.sender && chain.given_from.get(p).is_none_or(|&f| f > h.index))
            .collect();
        if outsiders.is_empty() {
            return;
        }
        let thief = &self.parties[outsiders[c.below(outsiders.len())]];
        let Some(receiver) = thief.store.iter().nth(c.below(thief.store.len().max(1))) else {
            return;
        };
        let Payload::Group(bytes) = &original.payload else {
            unreachable!("a group envelope")
        };
        let message = GroupMessage::from_bytes(bytes).unwrap();
        let state = receiver.to_bytes();
        for forged in relabel(&state, h.chain_id, &chain.signing_key, h.index) {
            self.stats.group_ratchet_swaps += 1;
            let mut forged = GroupReceiver::from_bytes(&forged).unwrap();
            assert_eq!(
                forged.decrypt(&message),
                Err(Error::AuthenticationFailed),
                "another chain's ratchet opened a message"
            );
        }
    }
}

/// Every receiver of a store, saved, oldest first.
fn store_bytes(store: &GroupReceivers) -> Vec<Vec<u8>> {
    store.iter().map(|r| r.to_bytes().to_vec()).collect()
}

/// The store's shape, and the full state of the receiver a message names.
fn snapshot(store: &GroupReceivers, chain_id: u32) -> (Vec<(u32, u32, usize)>, Vec<u8>) {
    let shape = store
        .iter()
        .map(|r| (r.chain_id(), r.next_index(), r.skipped_key_count()))
        .collect();
    let named = store
        .get(chain_id)
        .map(|r| r.to_bytes().to_vec())
        .unwrap_or_default();
    (shape, named)
}

/// A receiver state relabelled as chain `chain_id` with `signing_key`:
/// once with its ratchet claiming index 0 and no cache, once with its first
/// cached key (if any) claimed as the key of `index`.
fn relabel(state: &[u8], chain_id: u32, signing_key: &[u8; 32], index: u32) -> Vec<Vec<u8>> {
    // Layout (SPEC §15.11): header 2, group 32, chain id 4, signing key 32,
    // flag 1 [+ identity 64], next 4, levels 256, count 2, (index, key) pairs.
    let fixed = 2 + 32 + 4 + 32 + 1 + if state[70] == 1 { 64 } else { 0 };
    let levels = &state[fixed + 4..fixed + 4 + 256];
    let mut head = state[..fixed].to_vec();
    head[34..38].copy_from_slice(&chain_id.to_be_bytes());
    head[38..70].copy_from_slice(signing_key);
    let mut from_zero = head.clone();
    from_zero.extend_from_slice(&0u32.to_be_bytes());
    from_zero.extend_from_slice(levels);
    from_zero.extend_from_slice(&0u16.to_be_bytes());
    let mut out = vec![from_zero];
    let cache = &state[fixed + 4 + 256 + 2..];
    if let (Some(key), Some(next)) = (cache.get(4..36), index.checked_add(1)) {
        let mut cached = head;
        cached.extend_from_slice(&next.to_be_bytes());
        cached.extend_from_slice(levels);
        cached.extend_from_slice(&1u16.to_be_bytes());
        cached.extend_from_slice(&index.to_be_bytes());
        cached.extend_from_slice(key);
        out.push(cached);
    }
    out
}

/// The store agrees with its model, and every bound holds.
fn check_store(store: &GroupReceivers, model: &GroupModel, stats: &mut Stats) {
    let shape: Vec<(u32, u32, usize)> = store
        .iter()
        .map(|r| (r.chain_id(), r.next_index(), r.skipped_key_count()))
        .collect();
    let expected: Vec<(u32, u32, usize)> = model
        .0
        .iter()
        .map(|m| (m.chain_id, m.next, m.cached.len()))
        .collect();
    assert_eq!(shape, expected, "store differs from the model");
    assert!(store.len() <= MAX_GROUP_RECEIVERS);
    for r in store.iter() {
        assert!(r.skipped_key_count() <= MAX_GROUP_SKIPPED_KEYS);
        let own = store.iter().filter(|o| o.sender() == r.sender()).count();
        assert!(own <= MAX_CHAINS_PER_SENDER);
        stats.max_group_skipped = stats.max_group_skipped.max(r.skipped_key_count());
    }
    stats.max_store_len = stats.max_store_len.max(store.len());
}

/// A group refusal must name a check.
fn check_group_refusal(e: Error) {
    assert!(
        matches!(
            e,
            Error::UnknownGroupChain
                | Error::InvalidSignature
                | Error::DuplicateMessage
                | Error::AuthenticationFailed
        ),
        "unexpected group refusal {e:?}"
    );
}

/// Where the ratchet message starts: after the prekey header, if any.
fn ratchet_offset(bytes: &[u8]) -> usize {
    const WITHOUT_ONE_TIME: usize = 2 + 64 + 32 + 4 + 1;
    match (bytes.get(1), bytes.get(WITHOUT_ONE_TIME - 1)) {
        (Some(&0x02), Some(&1)) => WITHOUT_ONE_TIME + 4,
        (Some(&0x02), _) => WITHOUT_ONE_TIME,
        _ => 0,
    }
}

/// The ratchet key, previous chain length and message number of a message.
fn ratchet_header(message: &Message) -> ([u8; 32], u32, u32) {
    let bytes = message.as_bytes();
    match Message::from_bytes(&bytes[ratchet_offset(bytes)..]).unwrap() {
        Message::Ratchet(r) => (
            r.ratchet_key_bytes(),
            r.previous_chain_length(),
            r.message_number(),
        ),
        Message::PreKey(_) => unreachable!("a prekey message inside a prekey message"),
    }
}

/// A refusal must name a check, never something unexpected.
fn check_refusal(e: Error) {
    assert!(
        matches!(
            e,
            Error::AuthenticationFailed
                | Error::DuplicateMessage
                | Error::UnexpectedRatchetKey
                | Error::TooFarAhead { .. }
                | Error::IdentityMismatch
                | Error::SessionMismatch
                | Error::NonContributoryKey
        ),
        "unexpected refusal {e:?}"
    );
}

fn check_bounds(session: &Session, model: &Model, stats: &mut Stats) {
    let skipped = session.skipped_key_count();
    let chains = session.receiving_chain_count();
    assert!(skipped <= MAX_SKIPPED_KEYS && chains <= MAX_RECEIVING_CHAINS);
    assert_eq!(
        skipped,
        model.skipped(),
        "skipped keys differ from the model"
    );
    assert_eq!(chains, model.chains.len(), "chains differ from the model");
    stats.max_skipped = stats.max_skipped.max(skipped);
    stats.max_chains = stats.max_chains.max(chains);
}
