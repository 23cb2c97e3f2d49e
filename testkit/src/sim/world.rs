//! The world: parties with their devices, sessions, sender chains and
//! stores; sending, delivery, membership changes, save and restore; and
//! the ledger and shapes every outcome is checked against.

use std::collections::{BTreeMap, BTreeSet};

use rand_chacha::ChaCha20Rng;
use sotto::group::{ChainId, GroupMessage, GroupReceivers, GroupSender, InsertOutcome, Sender};
use sotto::rand_core::{Rng, SeedableRng};
use sotto::{
    Device, Error, IdentityKey, KeyAgreement, KeyAgreementPolicy, Message, Plaintext, Session,
    StorageKey,
};

use super::checks::{
    Stats, check_bounds, check_group_refusal, check_receiver, check_refusal, check_store, snapshot,
    store_bytes,
};
use super::model::{SessionShape, StoreShape};
use super::{
    Choices, DISTRIBUTION, Envelope, GROUP, GroupHonest, Honest, PairwiseHonest, Payload, TEXT,
};
use crate::fixtures::{Kem, NOW, bundle_with, chain_seed};
use crate::model::group::{Outcome, Receiver};

pub(super) struct Peer {
    pub(super) session: Session,
    pub(super) shape: SessionShape,
}

pub(super) struct Party {
    pub(super) device: Device,
    pub(super) identity: IdentityKey,
    pub(super) rng: ChaCha20Rng,
    pub(super) storage_key: [u8; 32],
    pub(super) peers: BTreeMap<usize, Peer>,
    pub(super) group: GroupSender,
    pub(super) store: GroupReceivers,
    pub(super) store_shape: StoreShape,
    /// Members still to be sent this party's current chain.
    pub(super) pending: BTreeSet<usize>,
    /// Peers this party talks to over classical X3DH (its opt-in).
    pub(super) classical: BTreeSet<usize>,
}

/// What the world knows about a sender chain.
pub(super) struct Chain {
    pub(super) sender: usize,
    /// The chain's name, its Ed25519 public key.
    pub(super) id: ChainId,
    /// The chain seed, read from the sender's saved state (SPEC §15.11).
    pub(super) seed: [u8; 32],
    /// Per party, the lowest index of this chain it was ever sent a
    /// distribution at: it may read no message of the chain below that.
    pub(super) given_from: BTreeMap<usize, u32>,
}

/// Parties, the network, the attacker's archive and the ledger.
pub struct World {
    pub(super) parties: Vec<Party>,
    pub(super) in_flight: Vec<Envelope>,
    /// Every honest envelope ever sent, for the attacker to replay.
    pub(super) archive: Vec<Envelope>,
    /// Ids of honest messages that have decrypted.
    decrypted: BTreeSet<u64>,
    /// (receiver, id) of honest group messages that have decrypted.
    group_decrypted: BTreeSet<(usize, u64)>,
    members: BTreeSet<usize>,
    pub(super) chains: BTreeMap<u32, Chain>,
    /// The model's number of each chain.
    pub(super) numbers: BTreeMap<[u8; 32], u32>,
    pub(super) attacker_rng: ChaCha20Rng,
    next_id: u64,
    /// What happened so far.
    pub stats: Stats,
}

/// Largest number of envelopes the network holds before it must deliver
/// (a group message is one envelope per recipient).
const MAX_IN_FLIGHT: usize = 96;
/// How many archived envelopes the attacker remembers.
const ARCHIVE_LEN: usize = 256;

/// The name of a SPEC §12 error, as the model spells it.
fn error_name(e: &Error) -> String {
    let debug = format!("{e:?}");
    debug
        .split([' ', '{', '('])
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// The ratchet key, previous chain length and message number of a
/// message (for a prekey message, of the ratchet message inside it).
fn ratchet_header(message: &Message) -> ([u8; 32], u32, u32) {
    match message {
        Message::Ratchet(r) => (
            r.ratchet_key_bytes(),
            r.previous_chain_length(),
            r.message_number(),
        ),
        Message::PreKey(p) => (
            p.ratchet_key_bytes(),
            p.previous_chain_length(),
            p.message_number(),
        ),
    }
}

impl World {
    /// `count` parties with devices drawn from `seed`. Sessions are created
    /// lazily: the lower-numbered party of each pair initiates.
    pub fn new(count: usize, seed: u64) -> Self {
        let parties: Vec<Party> = (0..count)
            .map(|i| {
                let mut rng = ChaCha20Rng::seed_from_u64(seed ^ (i as u64) << 32);
                let device = Device::generate(&mut rng, NOW).unwrap();
                let mut storage_key = [0u8; 32];
                rng.fill_bytes(&mut storage_key);
                let group = GroupSender::new(&mut rng, GROUP, &device).unwrap();
                Party {
                    identity: *device.identity_key(),
                    device,
                    rng,
                    storage_key,
                    peers: BTreeMap::new(),
                    group,
                    store: GroupReceivers::new(GROUP),
                    store_shape: StoreShape::new(*GROUP.as_bytes()),
                    pending: (0..count).filter(|&j| j != i).collect(),
                    classical: BTreeSet::new(),
                }
            })
            .collect();
        let mut numbers = BTreeMap::new();
        let chains = parties
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let chain = Chain {
                    sender: i,
                    id: *p.group.chain(),
                    seed: chain_seed(&p.group),
                    given_from: BTreeMap::new(),
                };
                let number = u32::try_from(i).unwrap();
                numbers.insert(*p.group.chain().as_bytes(), number);
                (number, chain)
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
            numbers,
            attacker_rng: ChaCha20Rng::seed_from_u64(!seed),
            next_id: 0,
            stats: Stats::default(),
        }
    }

    /// One step: send, deliver, attack or save/restore.
    pub fn step(&mut self, c: &mut impl Choices) {
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
    pub fn drain(&mut self, c: &mut impl Choices) {
        while !self.in_flight.is_empty() {
            self.deliver_one(c);
        }
    }

    pub(super) fn pair(&self, c: &mut impl Choices) -> (usize, usize) {
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
        let chain_id = self.numbers[distribution.chain().as_bytes()];
        let index = distribution.index();
        let plaintext = distribution.to_bytes().to_vec();
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
        peer.shape.sending = Some(ratchet_key);
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
                dh_with: peer.shape.remote,
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
                chain_id: self.numbers[message.chain().as_bytes()],
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

    /// A session from `from` to `to`: PQXDH with a one-time or the
    /// last-resort KEM prekey, or now and then classical X3DH, which both
    /// sides then allow for this pair only (the opt-in of SPEC §7.1).
    fn initiate(&mut self, from: usize, to: usize, c: &mut impl Choices) {
        let responder = &mut self.parties[to];
        let one_time = c.chance(60) && responder.device.one_time_prekey_count() < 100;
        let kem = match c.below(10) {
            0 => Kem::Classical,
            1..=4 if responder.device.one_time_kem_prekey_count() < 50 => Kem::OneTime,
            _ => Kem::LastResort,
        };
        let bundle = bundle_with(&mut responder.rng, &mut responder.device, one_time, kem);
        let bundle = sotto::PreKeyBundle::from_bytes(&bundle.to_bytes()).unwrap();
        let remote = bundle.signed_prekey().key_bytes();
        let verified = bundle.verify_for(&responder.identity).unwrap();
        let policy = if kem == Kem::Classical {
            responder.classical.insert(from);
            self.stats.classical_sessions += 1;
            KeyAgreementPolicy::ClassicalAllowed
        } else {
            self.stats.pq_sessions += 1;
            KeyAgreementPolicy::PostQuantumRequired
        };
        let initiator = &mut self.parties[from];
        // The default refuses a classical bundle.
        if kem == Kem::Classical {
            assert_eq!(
                Session::initiate(&initiator.device, &mut initiator.rng, &verified).err(),
                Some(Error::PostQuantumRequired)
            );
        }
        let session =
            Session::initiate_with_policy(&initiator.device, &mut initiator.rng, &verified, policy)
                .unwrap();
        let agreement = if kem == Kem::Classical {
            KeyAgreement::X3dh
        } else {
            KeyAgreement::Pqxdh
        };
        assert_eq!(session.key_agreement(), agreement);
        initiator.peers.insert(
            to,
            Peer {
                session,
                shape: SessionShape::new(remote),
            },
        );
    }

    pub(super) fn deliver(&mut self, envelope: Envelope) {
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
                let expected = honest.is_some_and(|h| peer.shape.receive(h));
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
                check_bounds(&peer.session, &peer.shape, &mut self.stats);
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
                let policy = if party.classical.contains(&envelope.from) {
                    KeyAgreementPolicy::ClassicalAllowed
                } else {
                    KeyAgreementPolicy::PostQuantumRequired
                };
                match Session::accept_with_policy(&mut party.device, first, policy) {
                    Ok((session, plaintext)) => {
                        let h = honest.expect("accept took a forged prekey message");
                        assert!(
                            !self.decrypted.contains(&h.id),
                            "prekey message accepted twice"
                        );
                        let shape = SessionShape::accepted(h)
                            .expect("model refuses an accepted first message");
                        let agreement = if policy == KeyAgreementPolicy::ClassicalAllowed
                            && first.kem_prekey_id().is_none()
                        {
                            KeyAgreement::X3dh
                        } else {
                            KeyAgreement::Pqxdh
                        };
                        assert_eq!(session.key_agreement(), agreement);
                        let peer = Peer { session, shape };
                        check_bounds(&peer.session, &peer.shape, &mut self.stats);
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
                assert_eq!(*plaintext, *h.plaintext, "wrong plaintext");
                assert_eq!(plaintext.sender(), &sender_identity, "wrong sender");
                assert!(self.decrypted.insert(h.id), "message decrypted twice");
                self.stats.decrypted += 1;
                if plaintext.first() == Some(&DISTRIBUTION) {
                    let h = h.clone();
                    self.install(envelope.from, envelope.to, &plaintext, &h);
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
                let bytes = party.device.seal(&key, b"device", &mut party.rng).unwrap();
                assert_eq!(
                    Device::unseal(&bytes, &key, b"device/other").err(),
                    Some(Error::AuthenticationFailed),
                    "a sealed device opened under another record's key"
                );
                Device::unseal(&bytes, &key, b"device").unwrap()
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
        let context = format!("session/{peer}").into_bytes();
        let peer = party.peers.get_mut(&peer).unwrap();
        let before = peer.session.to_bytes();
        peer.session = if sealed {
            let bytes = peer.session.seal(&key, &context, &mut party.rng).unwrap();
            Session::unseal(&bytes, &key, &context).unwrap()
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
    /// `from`: only members' chains are installed, from the plaintext the
    /// session returned, so authenticated as its peer (SPEC §15.7).
    fn install(&mut self, from: usize, to: usize, plaintext: &Plaintext, h: &PairwiseHonest) {
        if !self.members.contains(&from) {
            return;
        }
        let sender_identity = self.parties[from].identity;
        let distribution = sotto::group::SenderKeyDistribution::from_bytes(plaintext).unwrap();
        let chain_id = self.numbers[distribution.chain().as_bytes()];
        let index = distribution.index();
        assert_eq!(Some((chain_id, index)), h.distribution);
        let party = &mut self.parties[to];
        // The model installs from the plaintext the session returned, as
        // its peer's (§15.7), then applies §15.9's rules.
        let expected = Receiver::install(
            plaintext,
            GROUP.as_bytes(),
            Some(sender_identity.as_bytes()),
        )
        .and_then(|r| party.store_shape.insert(r));
        let before = store_bytes(&party.store);
        let result = party.store.install(plaintext);
        match (expected, result) {
            (Ok((Outcome::Added, gone)), Ok(InsertOutcome::Added)) => {
                self.stats.distributions_installed += 1;
                // The store is far below MAX_GROUP_RECEIVERS: a deleted
                // chain was the sender's oldest (rule 3).
                if !gone.is_empty() {
                    self.stats.chains_evicted += 1;
                }
            }
            (Ok((Outcome::Advanced, _)), Ok(InsertOutcome::Advanced)) => {
                self.stats.distributions_installed += 1;
            }
            (Ok((Outcome::Unchanged, _)), Ok(InsertOutcome::Unchanged)) => {
                self.stats.distributions_unchanged += 1;
                assert!(
                    store_bytes(&party.store) == before,
                    "an unchanged install changed the store"
                );
            }
            (Err(refusal), Err(e)) if refusal["name"] == error_name(&e).as_str() => {
                assert!(
                    store_bytes(&party.store) == before,
                    "failed install changed the store"
                );
            }
            (expected, got) => {
                panic!("store install disagrees with the model: {expected:?} / {got:?}")
            }
        }
        let held = party.store.get(distribution.chain()).unwrap();
        assert_eq!(held.sender(), &Sender::Authenticated(sender_identity));
        check_store(&party.store, &party.store_shape, &mut self.stats);
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
        let cached = party
            .store_shape
            .get(message.chain().as_bytes())
            .is_some_and(|r| r.window.cache.contains_key(&message.index()));
        // The model decides every delivery, honest or not: its outcome
        // (the plaintext, or the SPEC.md error) must be sotto's.
        let expected = party.store_shape.decrypt(bytes);
        let before = expected.is_err().then(|| snapshot(&party.store));
        let result = party.store.decrypt(&message);
        match (&expected, &result) {
            (Ok((plaintext, _, _)), Ok(read)) => {
                assert_eq!(
                    read.as_bytes(),
                    plaintext,
                    "group plaintext differs from the model"
                );
                // Only this chain's receiver and the store's generation
                // changed; the whole store is compared after installs.
                check_receiver(
                    &party.store,
                    &party.store_shape,
                    read.chain(),
                    &mut self.stats,
                );
            }
            (Err(refusal), Err(e)) if refusal["name"] == error_name(e).as_str() => {
                assert!(
                    before.is_some_and(|b| snapshot(&party.store) == b),
                    "failed group decrypt changed the store"
                );
                check_group_refusal(*e);
            }
            (expected, got) => panic!(
                "group decrypt disagrees with the model: {:?} / {:?}",
                expected.as_ref().map(|_| "decrypts"),
                got.as_ref().map(|_| "decrypts"),
            ),
        }
        match (result, honest) {
            (Ok(read), Some(h)) => {
                assert_eq!(read.as_bytes(), h.plaintext, "wrong group plaintext");
                let number = self.numbers[read.chain().as_bytes()];
                assert_eq!((number, read.index()), (h.chain_id, h.index));
                let sender = Sender::Authenticated(self.parties[h.sender].identity);
                assert_eq!(*read.sender(), sender, "wrong group sender");
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
        drop(party.group.rotate(&mut party.rng, &party.device).unwrap());
        let chain = Chain {
            sender: p,
            id: *party.group.chain(),
            seed: chain_seed(&party.group),
            given_from: BTreeMap::new(),
        };
        let number = u32::try_from(self.numbers.len()).unwrap();
        let previous = self.numbers.insert(*chain.id.as_bytes(), number);
        assert!(previous.is_none(), "chain drawn twice");
        self.chains.insert(number, chain);
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
                let gone = self.parties[removed].identity;
                for &m in &self.members {
                    let party = &mut self.parties[m];
                    party.pending.remove(&removed);
                    let deleted = party.store.remove_owner(&gone);
                    assert_eq!(deleted, party.store_shape.remove_owner(gone.as_bytes()));
                    check_store(&party.store, &party.store_shape, &mut self.stats);
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
                let bytes = party
                    .group
                    .seal(&key, b"group/sender", &mut party.rng)
                    .unwrap();
                GroupSender::unseal(&bytes, &key, b"group/sender").unwrap()
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
        let before = store_bytes(&party.store);
        party.store = if sealed {
            let bytes = party
                .store
                .seal(&key, b"group/store", &mut party.rng)
                .unwrap();
            GroupReceivers::unseal(&bytes, &key, b"group/store").unwrap()
        } else {
            GroupReceivers::from_bytes(&before).unwrap()
        };
        assert!(
            store_bytes(&party.store) == before,
            "store restore changed state"
        );
    }
}
