//! Deterministic fixtures shared by the fuzz targets, their seed-corpus
//! generator and the test that replays the seeds: two devices, a live
//! PQXDH session with skipped keys on both sides, and messages each side
//! has not yet received; and group sender, receiver and store states with
//! cached keys, and group messages they have not read. Also the targets'
//! oracles.

use std::sync::OnceLock;

use ed25519_dalek::{Signer, SigningKey};
use rand_chacha::ChaCha20Rng;
use sotto::group::{
    GroupId, GroupMessage, GroupPlaintext, GroupReceiver, GroupReceivers, GroupSender, Sender,
};
use sotto::{Device, Message, PreKeyBundle, Session, StorageKey};

use crate::fixtures::{Kem, NOW, bundle_with, chain_seed};

/// The key every fixture state is sealed under.
pub const STORAGE_KEY: [u8; 32] = [0x5a; 32];

/// The context every fixture state is sealed under (SPEC §10.5).
pub const CONTEXT: &[u8] = b"fuzz/record";

/// The signature label of group messages (SPEC §3, §15.5).
pub const GROUP_MESSAGE_LABEL: &[u8] = b"sotto v2 group message";

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
    /// Alice initiated (PQXDH); she has received Bob's reply and started a
    /// new chain.
    pub alice: Vec<u8>,
    /// Bob accepted Alice's first message and replied.
    pub bob: Vec<u8>,
    /// Messages to Alice that she has not read.
    pub to_alice: Vec<Pending>,
    /// Includes a prekey message (with its KEM ciphertext) whose key Bob
    /// skipped, and Alice's new chain.
    pub to_bob: Vec<Pending>,
    /// Bob's bundle with his remaining one-time prekey and a one-time KEM
    /// prekey.
    pub bundle: Vec<u8>,
    /// Bob's session, sealed under [`STORAGE_KEY`] and [`CONTEXT`].
    pub sealed_session: Vec<u8>,
    /// Bob's device, sealed under [`STORAGE_KEY`] and [`CONTEXT`].
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
    assert_eq!(*plaintext, *pending.plaintext);
}

fn build() -> Fixture {
    let mut rng = rng(42);
    let alice_device = Device::generate(&mut rng, NOW).unwrap();
    let mut bob_device = Device::generate(&mut rng, NOW).unwrap();
    let bundle = bundle_with(&mut rng, &mut bob_device, true, Kem::OneTime);
    let mut alice = Session::initiate(&alice_device, &mut rng, &bundle.verify().unwrap()).unwrap();
    let p0 = send(&mut alice, &mut rng, "p0");
    let p1 = send(&mut alice, &mut rng, "p1 skipped by Bob");
    let p2 = send(&mut alice, &mut rng, "p2");
    let Message::PreKey(first) = Message::from_bytes(&p0.bytes).unwrap() else {
        unreachable!("the first message is a prekey message")
    };
    let (mut bob, hello) = Session::accept(&mut bob_device, &first).unwrap();
    assert_eq!(*hello, *p0.plaintext);
    receive(&mut bob, &p2);
    let r0 = send(&mut bob, &mut rng, "r0 skipped by Alice");
    let r1 = send(&mut bob, &mut rng, "r1 in flight");
    let r2 = send(&mut bob, &mut rng, "r2");
    receive(&mut alice, &r2);
    let n0 = send(&mut alice, &mut rng, "n0 new chain");
    let n1 = send(&mut alice, &mut rng, "n1 new chain");
    let second = bundle_with(&mut rng, &mut bob_device, true, Kem::OneTime);
    let key = StorageKey::from_bytes(STORAGE_KEY);
    Fixture {
        alice_device: alice_device.to_bytes().to_vec(),
        bob_device: bob_device.to_bytes().to_vec(),
        alice: alice.to_bytes().to_vec(),
        bob: bob.to_bytes().to_vec(),
        to_alice: vec![r0, r1],
        to_bob: vec![p1, n0, n1],
        bundle: second.to_bytes(),
        sealed_session: bob.seal(&key, CONTEXT, &mut rng).unwrap(),
        sealed_device: bob_device.seal(&key, CONTEXT, &mut rng).unwrap(),
    }
}

/// The fixture, built once per process.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(build)
}

/// Length of a prekey header (SPEC §9.2): 72, plus 4 with a one-time
/// prekey, plus 1572 with a KEM ciphertext.
pub fn prekey_header_len(one_time: bool, kem: bool) -> usize {
    72 + if one_time { 4 } else { 0 } + if kem { 4 + 1568 } else { 0 }
}

/// A message's ratchet part (after a prekey header, if any); empty if it
/// does not parse.
pub fn ratchet_part(bytes: &[u8]) -> &[u8] {
    match Message::from_bytes(bytes) {
        Ok(Message::Ratchet(_)) => bytes,
        Ok(Message::PreKey(p)) => {
            &bytes[prekey_header_len(
                p.one_time_prekey_id().is_some(),
                p.kem_prekey_id().is_some(),
            )..]
        }
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
                    .any(|p| ratchet_part(&p.bytes) == part && *p.plaintext == *plaintext),
                "a message that was never sent decrypted"
            );
            assert_eq!(plaintext.sender(), session.remote_identity());
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
    /// Its chain's owner as the fixture store holds it.
    pub sender: Sender,
}

/// Saved group states and the messages they have not read yet.
pub struct GroupFixture {
    /// Alice's sender after a rotation (second chain, index 3).
    pub sender: Vec<u8>,
    /// Alice's first chain as Bob holds it, installed over the pairwise
    /// session: next index 41, keys cached for 1 and 8..=39.
    pub receiver: Vec<u8>,
    /// Bob's store, oldest first: Alice's first chain (as `receiver`), her
    /// second chain at index 1, and Carol's chain imported without a
    /// session.
    pub store: Vec<u8>,
    /// Messages that decrypt on `receiver`.
    pub to_receiver: Vec<GroupPending>,
    /// Messages that decrypt on the store (a superset of `to_receiver`).
    pub to_store: Vec<GroupPending>,
    /// Messages the fixture states already read or can never read.
    pub stale: Vec<GroupPending>,
    /// Alice's first and second chains' distributions and Carol's.
    pub distributions: Vec<Vec<u8>>,
    /// Alice's sender, sealed under [`STORAGE_KEY`] and [`CONTEXT`].
    pub sealed_sender: Vec<u8>,
    /// Alice's first chain as Bob holds it, sealed.
    pub sealed_receiver: Vec<u8>,
    /// Bob's store, sealed.
    pub sealed_store: Vec<u8>,
    /// Ed25519 seeds of Alice's first and second chains and Carol's, so a
    /// target can sign what it likes as a sender gone bad would.
    pub signing_seeds: [[u8; 32]; 3],
}

fn group_send(
    sender: &mut GroupSender,
    rng: &mut ChaCha20Rng,
    text: &str,
    from: Sender,
) -> GroupPending {
    let message = sender.encrypt(rng, text.as_bytes()).unwrap();
    GroupPending {
        bytes: message.into_bytes(),
        plaintext: text.as_bytes().to_vec(),
        sender: from,
    }
}

/// Signs `body` (a group message without its signature) as the chain whose
/// seed is given, with the published label, and appends the signature.
pub fn sign_group(seed: &[u8; 32], body: &[u8]) -> Vec<u8> {
    let key = SigningKey::from_bytes(seed);
    let mut signed = GROUP_MESSAGE_LABEL.to_vec();
    signed.extend_from_slice(body);
    let mut out = body.to_vec();
    out.extend_from_slice(&key.sign(&signed).to_bytes());
    out
}

/// A group message without its 64-byte signature.
pub fn unsigned(message: &[u8]) -> &[u8] {
    &message[..message.len().saturating_sub(64)]
}

fn build_group() -> GroupFixture {
    let f = fixture();
    let mut rng = rng(43);
    let alice_device = Device::from_bytes(&f.alice_device).unwrap();
    let alice_identity = *alice_device.identity_key();
    // The pairwise sessions a distribution from Alice travels on.
    let mut alice_session = Session::from_bytes(&f.alice).unwrap();
    let mut bob_session = Session::from_bytes(&f.bob).unwrap();
    // The carrier has its own RNG, so the group draws do not depend on it.
    let mut carry_rng = crate::rng::seeded(44);
    let mut carry = |d: &[u8]| {
        let m = alice_session.encrypt(&mut carry_rng, d).unwrap();
        bob_session.decrypt(&m).unwrap()
    };
    let mut alice = GroupSender::new(&mut rng, GROUP, &alice_device).unwrap();
    let first_seed = chain_seed(&alice);
    let first = alice.distribution().to_bytes();
    let carried = carry(&first);
    let mut receiver = GroupReceiver::install(&GROUP, &carried).unwrap();
    let mut store = GroupReceivers::new(GROUP);
    store.install(&carried).unwrap();
    let from = Sender::Authenticated(alice_identity);
    let sent: Vec<GroupPending> = (0..50)
        .map(|i| group_send(&mut alice, &mut rng, &format!("first chain {i}"), from))
        .collect();
    for i in [0, 2, 40] {
        let m = GroupMessage::from_bytes(&sent[i].bytes).unwrap();
        assert_eq!(receiver.decrypt(&m).unwrap().as_bytes(), sent[i].plaintext);
        assert_eq!(store.decrypt(&m).unwrap().as_bytes(), sent[i].plaintext);
    }
    assert_eq!(receiver.next_index(), 41);
    assert_eq!(receiver.skipped_key_count(), 33);

    let second = alice.rotate(&mut rng, &alice_device).unwrap().to_bytes();
    store.install(&carry(&second)).unwrap();
    let carol_device = Device::generate(&mut rng, NOW).unwrap();
    let carol_identity = *carol_device.identity_key();
    let mut carol = GroupSender::new(&mut rng, GROUP, &carol_device).unwrap();
    let carol_distribution = carol.distribution().to_bytes();
    store.import_unauthenticated(&carol_distribution).unwrap();
    let second_sent: Vec<GroupPending> = (0..3)
        .map(|i| group_send(&mut alice, &mut rng, &format!("second chain {i}"), from))
        .collect();
    let claimed = Sender::Unauthenticated {
        claimed: carol_identity,
    };
    let carol_sent: Vec<GroupPending> = (0..3)
        .map(|i| group_send(&mut carol, &mut rng, &format!("carol {i}"), claimed))
        .collect();
    let m = GroupMessage::from_bytes(&second_sent[0].bytes).unwrap();
    store.decrypt(&m).unwrap();

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
        store: store.to_bytes().to_vec(),
        to_receiver,
        to_store,
        stale,
        distributions: vec![first.to_vec(), second.to_vec(), carol_distribution.to_vec()],
        sealed_sender: alice.seal(&key, CONTEXT, &mut rng).unwrap(),
        sealed_receiver: receiver.seal(&key, CONTEXT, &mut rng).unwrap(),
        sealed_store: store.seal(&key, CONTEXT, &mut rng).unwrap(),
        signing_seeds: [first_seed, chain_seed(&alice), chain_seed(&carol)],
    }
}

/// The group fixture, built once per process.
pub fn group_fixture() -> &'static GroupFixture {
    static FIXTURE: OnceLock<GroupFixture> = OnceLock::new();
    FIXTURE.get_or_init(build_group)
}

/// Restores a saved store.
pub fn restore_store(state: &[u8]) -> GroupReceivers {
    GroupReceivers::from_bytes(state).unwrap()
}

/// A store, saved.
pub fn store_bytes(store: &GroupReceivers) -> Vec<u8> {
    store.to_bytes().to_vec()
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
    assert_eq!(read.as_bytes(), genuine.plaintext);
    assert_eq!(*read.sender(), genuine.sender);
    assert_eq!(read.index(), message.index());
    assert_eq!(read.chain(), message.chain());
}

/// A fixture bundle, parsed.
pub fn bundle() -> PreKeyBundle {
    PreKeyBundle::from_bytes(&fixture().bundle).unwrap()
}

/// Records of the session layer (SPEC §16): Alice's device 1 and Bob's
/// device 1, each with a record of the other, after a simultaneous
/// initiation (so each holds an active and an archived session), with
/// messages each has not read (prekey messages of the losing session,
/// ratchet messages of the winner, a retry request), and a group session
/// of Alice's holding Bob's chain.
pub struct RecordFixture {
    /// Alice's device.
    pub alice_device: Vec<u8>,
    /// Bob's device.
    pub bob_device: Vec<u8>,
    /// Alice's record of Bob (his device 1).
    pub alice: Vec<u8>,
    /// Bob's record of Alice (her device 1).
    pub bob: Vec<u8>,
    /// Messages from Bob's device 1 that Alice has not read, with their
    /// payloads (a retry request's payload is empty).
    pub to_alice: Vec<Pending>,
    /// Messages from Alice's device 1 that Bob has not read.
    pub to_bob: Vec<Pending>,
    /// Alice's group session (members alice and bob) with Bob's chains and
    /// one dropped chain of his.
    pub group: Vec<u8>,
}

/// The device id every record fixture device has.
pub const RECORD_DEVICE: sotto::sessions::DeviceId = sotto::sessions::DeviceId(1);

fn payload(sent: &sotto::sessions::Sent, text: &str) -> Pending {
    Pending {
        bytes: sent.messages[0].message.as_bytes().to_vec(),
        plaintext: text.as_bytes().to_vec(),
    }
}

fn read(
    record: &mut sotto::sessions::PeerRecord,
    device: &mut Device,
    p: &Pending,
) -> sotto::sessions::Received {
    let m = Message::from_bytes(&p.bytes).unwrap();
    record.decrypt(device, RECORD_DEVICE, &m, NOW).unwrap()
}

fn build_records() -> RecordFixture {
    use sotto::sessions::{GroupSession, PeerRecord, UserId};
    let mut rng = rng(45);
    let mut alice_device = Device::generate(&mut rng, NOW).unwrap();
    let mut bob_device = Device::generate(&mut rng, NOW).unwrap();
    let (alice_id, bob_id) = (UserId::new(b"alice").unwrap(), UserId::new(b"bob").unwrap());
    let mut alice = PeerRecord::new(bob_id.clone(), *alice_device.identity_key());
    alice
        .update_devices(&[(RECORD_DEVICE, *bob_device.identity_key())], NOW)
        .unwrap();
    let mut bob = PeerRecord::new(alice_id.clone(), *bob_device.identity_key());
    bob.update_devices(&[(RECORD_DEVICE, *alice_device.identity_key())], NOW)
        .unwrap();
    let to_bob_bundle = bundle_with(&mut rng, &mut bob_device, false, Kem::LastResort);
    let to_alice_bundle = bundle_with(&mut rng, &mut alice_device, false, Kem::LastResort);
    alice
        .add_bundle(&alice_device, RECORD_DEVICE, to_bob_bundle, NOW, &mut rng)
        .unwrap();
    bob.add_bundle(&bob_device, RECORD_DEVICE, to_alice_bundle, NOW, &mut rng)
        .unwrap();
    let a0 = payload(&alice.encrypt(b"a0", &mut rng).unwrap(), "a0");
    let a1 = payload(
        &alice.encrypt(b"a1 prekey in flight", &mut rng).unwrap(),
        "a1 prekey in flight",
    );
    let b0 = payload(&bob.encrypt(b"b0", &mut rng).unwrap(), "b0");
    let b1 = payload(
        &bob.encrypt(b"b1 prekey in flight", &mut rng).unwrap(),
        "b1 prekey in flight",
    );
    read(&mut alice, &mut alice_device, &b0);
    read(&mut bob, &mut bob_device, &a0);
    // Both now write on the winner.
    let a2 = payload(&alice.encrypt(b"a2", &mut rng).unwrap(), "a2");
    read(&mut bob, &mut bob_device, &a2);
    let b2 = payload(&bob.encrypt(b"b2 skipped", &mut rng).unwrap(), "b2 skipped");
    let b3 = payload(&bob.encrypt(b"b3", &mut rng).unwrap(), "b3");
    read(&mut alice, &mut alice_device, &b3);
    let a3 = payload(
        &alice.encrypt(b"a3 in flight", &mut rng).unwrap(),
        "a3 in flight",
    );
    let hint = sotto::sessions::RetryHint::for_message(&Message::from_bytes(&a3.bytes).unwrap());
    let retry = Pending {
        bytes: bob
            .request_retry(RECORD_DEVICE, &hint, NOW, &mut rng)
            .unwrap()
            .as_bytes()
            .to_vec(),
        plaintext: Vec::new(),
    };
    // Alice's group with Bob's chain, over Bob's record.
    let mut group = GroupSession::new(&mut rng, GROUP, alice_id.clone(), &alice_device).unwrap();
    group.add_member(bob_id.clone()).unwrap();
    let mut bob_group = GroupSession::new(&mut rng, GROUP, bob_id, &bob_device).unwrap();
    let alice_id_again = alice_id.clone();
    bob_group.add_member(alice_id).unwrap();
    let m = bob_group
        .distribute_to(&mut bob, RECORD_DEVICE, &mut rng)
        .unwrap();
    let got = alice
        .decrypt(&mut alice_device, RECORD_DEVICE, &m, NOW)
        .unwrap();
    group.install(&alice, &got).unwrap();
    // Four newer chains of Bob's: the store keeps four per sender, so his
    // first becomes a dropped chain, and the saved form has an entry.
    for _ in 0..4 {
        let mut newer =
            GroupSession::new(&mut rng, GROUP, bob_group.local_user().clone(), &bob_device)
                .unwrap();
        newer.add_member(alice_id_again.clone()).unwrap();
        let m = newer
            .distribute_to(&mut bob, RECORD_DEVICE, &mut rng)
            .unwrap();
        let got = alice
            .decrypt(&mut alice_device, RECORD_DEVICE, &m, NOW)
            .unwrap();
        group.install(&alice, &got).unwrap();
    }
    RecordFixture {
        alice_device: alice_device.to_bytes().to_vec(),
        bob_device: bob_device.to_bytes().to_vec(),
        alice: alice.to_bytes().to_vec(),
        bob: bob.to_bytes().to_vec(),
        to_alice: vec![b1, b2, retry],
        to_bob: vec![a1, a3],
        group: group.to_bytes().to_vec(),
    }
}

/// The record fixture, built once per process.
pub fn record_fixture() -> &'static RecordFixture {
    static FIXTURE: OnceLock<RecordFixture> = OnceLock::new();
    FIXTURE.get_or_init(build_records)
}

/// Decrypts `message` from `from` on copies of a record and its local
/// device. On failure neither may change; on success the message must be
/// one of `pending` from the fixture's device (its ratchet part) and carry
/// its payload (or be a retry request, whose pending payload is empty), and
/// a second decrypt must fail without changing anything.
pub fn check_record_decrypt(
    record: &[u8],
    device: &[u8],
    from: sotto::sessions::DeviceId,
    message: &Message,
    pending: &[Pending],
) {
    use sotto::sessions::{Content, PeerRecord};
    let mut r = PeerRecord::from_bytes(record).unwrap();
    let mut d = Device::from_bytes(device).unwrap();
    match r.decrypt(&mut d, from, message, NOW + 1) {
        Ok(got) => {
            assert_eq!(got.device(), from);
            let part = ratchet_part(message.as_bytes());
            let sent = pending
                .iter()
                .find(|p| ratchet_part(&p.bytes) == part)
                .expect("a message that was never sent decrypted");
            match got.content() {
                Content::Payload(p) => assert_eq!(p.as_bytes(), sent.plaintext.as_slice()),
                Content::RetryRequest(_) => assert!(sent.plaintext.is_empty()),
                other => panic!("unexpected content {other:?}"),
            }
            let (after, device_after) = (r.to_bytes(), d.to_bytes());
            assert!(
                r.decrypt(&mut d, from, message, NOW + 2).is_err(),
                "decrypted twice"
            );
            assert_eq!(*r.to_bytes(), *after);
            assert_eq!(*d.to_bytes(), *device_after);
        }
        Err(_) => {
            assert_eq!(
                *r.to_bytes(),
                *record,
                "a failed decrypt changed the record"
            );
            assert_eq!(
                *d.to_bytes(),
                *device,
                "a failed decrypt changed the device"
            );
        }
    }
}
