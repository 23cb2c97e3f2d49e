//! A deterministic adversarial network of pairwise sessions, shared by
//! `tests/simulation.rs` (driven by a seeded RNG) and the fuzz target
//! `conversation` (driven by the fuzzer's bytes).
//!
//! Every party holds a [`Device`] and one [`Session`] per peer. The network
//! reorders, drops, duplicates and corrupts envelopes; an attacker injects
//! forged, replayed and cross-session messages; parties save and restore
//! their state at random. Every outcome is checked against two oracles:
//!
//! - a per-message ledger: each honest message decrypts at most once, to the
//!   plaintext and sender it was sent with; nothing forged is accepted;
//! - a reference model of the receiver's chains and skipped keys (no
//!   cryptography), which says whether an honest message *must* decrypt;
//!   the session must agree with it, and its counters must match.
//!
//! A failed decrypt or accept must leave the session or device byte-for-byte
//! unchanged. To add group parties later, add an [`Payload`] variant and an
//! arm in [`World::deliver`]; the network, attacker and ledger do not care
//! what the bytes are.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use sotto::{
    Device, Error, IdentityKey, MAX_RECEIVING_CHAINS, MAX_SKIP, MAX_SKIPPED_KEYS,
    MAX_SKIPPED_KEYS_PER_CHAIN, Message, PreKeyBundle, Session, StorageKey,
};

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

/// What an envelope carries. Group messages will be a second variant.
#[derive(Clone)]
pub(crate) enum Payload {
    Pairwise(Vec<u8>),
}

/// What the ledger knows about an honest message.
#[derive(Clone)]
pub(crate) struct Honest {
    id: u64,
    plaintext: Vec<u8>,
    ratchet_key: [u8; 32],
    previous_chain_length: u32,
    message_number: u32,
    /// The receiver's ratchet key the sender's chain was derived from.
    dh_with: [u8; 32],
}

#[derive(Clone)]
pub(crate) struct Envelope {
    from: usize,
    to: usize,
    payload: Payload,
    /// `None` for attacker-made bytes, which must never decrypt.
    honest: Option<Honest>,
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
    fn accept(&mut self, h: &Honest) -> bool {
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
    fn receive(&mut self, h: &Honest) -> bool {
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
}

impl Stats {
    /// Every honest delivery either decrypted or was refused, and no
    /// session ever passed a bound.
    pub(crate) fn check(&self) {
        assert_eq!(self.decrypted + self.refused_honest, self.delivered_honest);
        assert!(self.decrypted <= self.sent);
        assert!(self.max_skipped <= MAX_SKIPPED_KEYS);
        assert!(self.max_chains <= MAX_RECEIVING_CHAINS);
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
    next_id: u64,
    pub(crate) stats: Stats,
}

/// Largest number of envelopes the network holds before it must deliver.
const MAX_IN_FLIGHT: usize = 48;
/// How many archived envelopes the attacker remembers.
const ARCHIVE_LEN: usize = 256;

impl World {
    /// `count` parties with devices drawn from `seed`. Sessions are created
    /// lazily: the lower-numbered party of each pair initiates.
    pub(crate) fn new(count: usize, seed: u64) -> Self {
        let parties = (0..count)
            .map(|i| {
                let mut rng = ChaCha20Rng::seed_from_u64(seed ^ (i as u64) << 32);
                let device = Device::generate(&mut rng);
                let mut storage_key = [0u8; 32];
                rng.fill_bytes(&mut storage_key);
                Party {
                    identity: *device.identity_key(),
                    device,
                    rng,
                    storage_key,
                    peers: BTreeMap::new(),
                }
            })
            .collect();
        Self {
            parties,
            in_flight: Vec::new(),
            archive: Vec::new(),
            decrypted: BTreeSet::new(),
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
        match c.below(20) {
            0..=8 => self.send(c),
            9..=16 => self.deliver_one(c),
            17 | 18 => self.attack(c),
            _ => self.save_restore(c),
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

    fn send(&mut self, c: &mut impl Choices) {
        let (from, to) = self.pair(c);
        if !self.parties[from].peers.contains_key(&to) {
            if from > to {
                // The responder cannot write before the first message arrives.
                return;
            }
            self.initiate(from, to, c);
        }
        let id = self.next_id;
        self.next_id += 1;
        let mut plaintext = format!("{from}->{to} #{id} ").into_bytes();
        plaintext.resize(plaintext.len() + c.below(48), b'.');
        let party = &mut self.parties[from];
        let peer = party.peers.get_mut(&to).unwrap();
        let message = peer.session.encrypt(&mut party.rng, &plaintext).unwrap();
        let (ratchet_key, pn, n) = ratchet_header(&message);
        peer.model.sending = Some(ratchet_key);
        let envelope = Envelope {
            from,
            to,
            payload: Payload::Pairwise(message.into_bytes()),
            honest: Some(Honest {
                id,
                plaintext,
                ratchet_key,
                previous_chain_length: pn,
                message_number: n,
                dh_with: peer.model.remote,
            }),
        };
        if self.archive.len() == ARCHIVE_LEN {
            let slot = c.below(ARCHIVE_LEN);
            self.archive[slot] = envelope.clone();
        } else {
            self.archive.push(envelope.clone());
        }
        self.in_flight.push(envelope);
        self.stats.sent += 1;
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
    fn tamper(&mut self, envelope: Envelope, c: &mut impl Choices) -> Envelope {
        let Payload::Pairwise(mut bytes) = envelope.payload;
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
            payload: Payload::Pairwise(bytes),
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
                let Payload::Pairwise(mut bytes) = original.payload;
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
        let Payload::Pairwise(bytes) = &envelope.payload;
        let Ok(message) = Message::from_bytes(bytes) else {
            self.stats.unparsable += 1;
            assert!(envelope.honest.is_none(), "an honest message did not parse");
            return;
        };
        let honest = envelope.honest.as_ref();
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
