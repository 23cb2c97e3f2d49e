//! Deterministic fixtures shared by the fuzz targets, their seed-corpus
//! generator and the test that replays the seeds: two devices, a live
//! session with skipped keys on both sides, and messages each side has not
//! yet received; and group sender and receiver states with cached keys,
//! and group messages they have not read. Also the targets' oracles.

use std::sync::OnceLock;

use rand_chacha::ChaCha20Rng;
use sotto::group::{
    GroupId, GroupMessage, GroupPlaintext, GroupReceiver, GroupReceivers, GroupSender,
};
use sotto::{Device, IdentityKey, Message, PreKeyBundle, Session, StorageKey};

use crate::layout;
use crate::model::group::GSender;
use crate::model::wire::{ratchet_part as ratchet_layout, read_message};

/// The key every fixture state is sealed under.
pub const STORAGE_KEY: [u8; 32] = [0x5a; 32];

/// A message one side has not received yet, and its plaintext.
pub struct Pending {
    /// The message.
    pub bytes: Vec<u8>,
    /// Its plaintext.
    pub plaintext: Vec<u8>,
}

/// Saved states and in-flight messages of a two-party conversation.
pub struct Fixture {
    /// Alice's device.
    pub alice_device: Vec<u8>,
    /// Bob's device.
    pub bob_device: Vec<u8>,
    /// Alice initiated; she has received Bob's reply and started a new chain.
    pub alice: Vec<u8>,
    /// Bob accepted Alice's first message and replied.
    pub bob: Vec<u8>,
    /// Messages to Alice that she has not read.
    pub to_alice: Vec<Pending>,
    /// Includes a prekey message whose key Bob skipped, and Alice's new chain.
    pub to_bob: Vec<Pending>,
    /// Bob's bundle with one remaining one-time prekey.
    pub bundle: Vec<u8>,
    /// Bob's session, sealed under [`STORAGE_KEY`].
    pub sealed_session: Vec<u8>,
    /// Bob's device, sealed under [`STORAGE_KEY`].
    pub sealed_device: Vec<u8>,
}

pub use crate::rng::seeded as rng;

fn send(session: &mut Session, rng: &mut ChaCha20Rng, text: &str) -> Pending {
    let message = session.encrypt(rng, text.as_bytes()).unwrap();
    Pending {
        bytes: message.into_bytes(),
        plaintext: text.as_bytes().to_vec(),
    }
}

fn receive(session: &mut Session, pending: &Pending) {
    let plaintext = session
        .decrypt(&Message::from_bytes(&pending.bytes).unwrap())
        .unwrap();
    assert_eq!(plaintext, pending.plaintext);
}

fn build() -> Fixture {
    let mut rng = rng(42);
    let alice_device = Device::generate(&mut rng);
    let mut bob_device = Device::generate(&mut rng);
    let one_time = bob_device.generate_one_time_prekeys(&mut rng, 2).unwrap();
    let bundle = PreKeyBundle::new(
        *bob_device.identity_key(),
        bob_device.signed_prekey(),
        one_time.first().copied(),
    );
    let mut alice = Session::initiate(&alice_device, &mut rng, &bundle.verify().unwrap()).unwrap();
    let p0 = send(&mut alice, &mut rng, "p0");
    let p1 = send(&mut alice, &mut rng, "p1 skipped by Bob");
    let p2 = send(&mut alice, &mut rng, "p2");
    let Message::PreKey(first) = Message::from_bytes(&p0.bytes).unwrap() else {
        unreachable!("the first message is a prekey message")
    };
    let (mut bob, hello) = Session::accept(&mut bob_device, &first).unwrap();
    assert_eq!(hello, p0.plaintext);
    receive(&mut bob, &p2);
    let r0 = send(&mut bob, &mut rng, "r0 skipped by Alice");
    let r1 = send(&mut bob, &mut rng, "r1 in flight");
    let r2 = send(&mut bob, &mut rng, "r2");
    receive(&mut alice, &r2);
    let n0 = send(&mut alice, &mut rng, "n0 new chain");
    let n1 = send(&mut alice, &mut rng, "n1 new chain");
    let second = PreKeyBundle::new(
        *bob_device.identity_key(),
        bob_device.signed_prekey(),
        one_time.get(1).copied(),
    );
    let key = StorageKey::from_bytes(STORAGE_KEY);
    Fixture {
        alice_device: alice_device.to_bytes().to_vec(),
        bob_device: bob_device.to_bytes().to_vec(),
        alice: alice.to_bytes().to_vec(),
        bob: bob.to_bytes().to_vec(),
        to_alice: vec![r0, r1],
        to_bob: vec![p1, n0, n1],
        bundle: second.to_bytes(),
        sealed_session: bob.seal(&key, &mut rng).unwrap(),
        sealed_device: bob_device.seal(&key, &mut rng).unwrap(),
    }
}

/// The fixture, built once per process.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(build)
}

/// A message's ratchet part (after a prekey header, if any); empty if the
/// model does not parse the message.
pub fn ratchet_part(bytes: &[u8]) -> &[u8] {
    match read_message(bytes) {
        Ok((_, l)) => &bytes[ratchet_layout(&l).start("version")..],
        Err(_) => &[],
    }
}

/// Decrypts `message` on a copy of `state`. On failure the state must be
/// unchanged; on success the message must be one of `pending` (its
/// authenticated ratchet part, at least) with the same plaintext, and a
/// second decrypt must fail. Returns the session after the attempt.
pub fn check_decrypt(state: &[u8], message: &Message, pending: &[Pending]) -> Session {
    let mut session = Session::from_bytes(state).unwrap();
    match session.decrypt(message) {
        Ok(plaintext) => {
            let part = ratchet_part(message.as_bytes());
            assert!(
                pending
                    .iter()
                    .any(|p| ratchet_part(&p.bytes) == part && p.plaintext == plaintext),
                "a message that was never sent decrypted"
            );
            let after = session.to_bytes();
            assert!(session.decrypt(message).is_err(), "decrypted twice");
            assert_eq!(*session.to_bytes(), *after);
        }
        Err(_) => assert_eq!(*session.to_bytes(), *state, "failed decrypt changed state"),
    }
    session
}

/// The group every group fixture belongs to.
pub const GROUP: GroupId = GroupId::from_bytes([0x47; 32]);

/// A group message a fixture receiver has not read yet, and who sent it.
pub struct GroupPending {
    /// The message.
    pub bytes: Vec<u8>,
    /// Its plaintext.
    pub plaintext: Vec<u8>,
    /// `None` for a chain imported without a session.
    pub sender: Option<IdentityKey>,
}

/// Saved group states and the messages they have not read yet.
pub struct GroupFixture {
    /// Alice's sender after a rotation (second chain, index 3).
    pub sender: Vec<u8>,
    /// Alice's first chain as Bob holds it, installed over the pairwise
    /// session: next index 41, keys cached for 1 and 8..=39.
    pub receiver: Vec<u8>,
    /// Bob's store, oldest first: Alice's first chain (as `receiver`), her
    /// second chain at index 1, and Carol's chain imported without a session.
    pub store: Vec<Vec<u8>>,
    /// Messages that decrypt on `receiver`.
    pub to_receiver: Vec<GroupPending>,
    /// Messages that decrypt on the store (a superset of `to_receiver`).
    pub to_store: Vec<GroupPending>,
    /// Messages the fixture states already read or can never read.
    pub stale: Vec<GroupPending>,
    /// Alice's second chain's distribution and Carol's.
    pub distributions: Vec<Vec<u8>>,
    /// Alice's sender, sealed under [`STORAGE_KEY`].
    pub sealed_sender: Vec<u8>,
    /// Alice's first chain as Bob holds it, sealed.
    pub sealed_receiver: Vec<u8>,
    /// Ed25519 seeds of Alice's first and second chains and Carol's, so a
    /// target can sign what it likes as a sender gone bad would.
    pub signing_seeds: [[u8; 32]; 3],
}

fn group_send(
    sender: &mut GroupSender,
    rng: &mut ChaCha20Rng,
    text: &str,
    from: Option<IdentityKey>,
) -> GroupPending {
    let message = sender.encrypt(rng, text.as_bytes()).unwrap();
    GroupPending {
        bytes: message.into_bytes(),
        plaintext: text.as_bytes().to_vec(),
        sender: from,
    }
}

/// The signing key seed of a saved sender (§15.11).
fn signing_seed(sender: &GroupSender) -> [u8; 32] {
    let state = sender.to_bytes();
    layout::sender_state(&state).a32(&state, "signing_seed")
}

/// Signs `body` (a group message without its signature) as the chain whose
/// seed is given, and appends the signature.
pub fn sign_group(seed: &[u8; 32], body: &[u8]) -> Vec<u8> {
    GSender {
        group: [0; 32],
        chain_id: 0,
        index: 0,
        levels: [[0; 32]; 8],
        seed: *seed,
    }
    .sign(body)
}

fn build_group() -> GroupFixture {
    let f = fixture();
    let mut rng = rng(43);
    let alice_identity = *Device::from_bytes(&f.alice_device).unwrap().identity_key();
    // Bob's session with Alice: the one a distribution from her arrives on.
    let bob_session = Session::from_bytes(&f.bob).unwrap();
    let mut alice = GroupSender::new(&mut rng, GROUP);
    let first_seed = signing_seed(&alice);
    let first = alice.distribution().to_bytes();
    let mut receiver = GroupReceiver::accept(&first, &bob_session).unwrap();
    let from = Some(alice_identity);
    let sent: Vec<GroupPending> = (0..50)
        .map(|i| group_send(&mut alice, &mut rng, &format!("first chain {i}"), from))
        .collect();
    for i in [0, 2, 40] {
        let m = GroupMessage::from_bytes(&sent[i].bytes).unwrap();
        assert_eq!(receiver.decrypt(&m).unwrap().plaintext, sent[i].plaintext);
    }
    assert_eq!(receiver.next_index(), 41);
    assert_eq!(receiver.skipped_key_count(), 33);

    let second = alice.rotate(&mut rng).to_bytes();
    let mut carol = GroupSender::new(&mut rng, GROUP);
    let carol_distribution = carol.distribution().to_bytes();
    let second_sent: Vec<GroupPending> = (0..3)
        .map(|i| group_send(&mut alice, &mut rng, &format!("second chain {i}"), from))
        .collect();
    let carol_sent: Vec<GroupPending> = (0..3)
        .map(|i| group_send(&mut carol, &mut rng, &format!("carol {i}"), None))
        .collect();
    let mut store = GroupReceivers::new(GROUP);
    store
        .insert(GroupReceiver::from_bytes(&receiver.to_bytes()).unwrap())
        .unwrap();
    let mut late = GroupReceiver::accept(&second, &bob_session).unwrap();
    let m = GroupMessage::from_bytes(&second_sent[0].bytes).unwrap();
    late.decrypt(&m).unwrap();
    store.insert(late).unwrap();
    store
        .insert(GroupReceiver::import_unauthenticated(&carol_distribution).unwrap())
        .unwrap();

    let copy = |p: &GroupPending| GroupPending {
        bytes: p.bytes.clone(),
        plaintext: p.plaintext.clone(),
        sender: p.sender,
    };
    let readable = |index: u32| index == 1 || (8..40).contains(&index) || index > 40;
    let (mut to_receiver, mut stale) = (Vec::new(), Vec::new());
    for p in &sent {
        let index = GroupMessage::from_bytes(&p.bytes).unwrap().index();
        if readable(index) {
            to_receiver.push(copy(p));
        } else {
            stale.push(copy(p));
        }
    }
    stale.push(copy(&second_sent[0]));
    let mut to_store: Vec<GroupPending> = to_receiver.iter().map(copy).collect();
    to_store.extend(second_sent.into_iter().skip(1));
    to_store.extend(carol_sent);
    let key = StorageKey::from_bytes(STORAGE_KEY);
    GroupFixture {
        sender: alice.to_bytes().to_vec(),
        receiver: receiver.to_bytes().to_vec(),
        store: store.iter().map(|r| r.to_bytes().to_vec()).collect(),
        to_receiver,
        to_store,
        stale,
        distributions: vec![second.to_vec(), carol_distribution.to_vec()],
        sealed_sender: alice.seal(&key, &mut rng).unwrap(),
        sealed_receiver: receiver.seal(&key, &mut rng).unwrap(),
        signing_seeds: [first_seed, signing_seed(&alice), signing_seed(&carol)],
    }
}

/// The group fixture, built once per process.
pub fn group_fixture() -> &'static GroupFixture {
    static FIXTURE: OnceLock<GroupFixture> = OnceLock::new();
    FIXTURE.get_or_init(build_group)
}

/// Restores a store from saved receivers, oldest first.
pub fn restore_store(states: &[Vec<u8>]) -> GroupReceivers {
    let mut store = GroupReceivers::new(GROUP);
    for state in states {
        store
            .insert(GroupReceiver::from_bytes(state).unwrap())
            .unwrap();
    }
    store
}

/// Every receiver of a store, saved, oldest first.
pub fn store_bytes(store: &GroupReceivers) -> Vec<Vec<u8>> {
    store.iter().map(|r| r.to_bytes().to_vec()).collect()
}

/// A successful group decrypt must be exactly one of `pending` (bytes,
/// plaintext and sender), and must not decrypt twice.
pub fn check_group_plaintext(
    read: &GroupPlaintext,
    message: &GroupMessage,
    pending: &[GroupPending],
) {
    let genuine = pending
        .iter()
        .find(|p| p.bytes == message.as_bytes())
        .expect("a group message that was never sent decrypted");
    assert_eq!(read.plaintext, genuine.plaintext);
    assert_eq!(read.sender.identity(), genuine.sender.as_ref());
    assert_eq!(read.index, message.index());
    assert_eq!(read.chain_id, message.chain_id());
}
