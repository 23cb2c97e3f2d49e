//! Fixtures for tests, tools, fuzz targets and benchmarks: devices, an
//! established pair of sessions, group members, and the checks every test
//! of a fallible call makes.

use rand_chacha::ChaCha20Rng;
use sotto::group::{GroupId, GroupReceiver, GroupReceivers, GroupSender};
use sotto::{Device, IdentityKey, Message, PreKeyBundle, PreKeyMessage, Session};

pub use crate::rng::seeded as rng;

/// Alice's device, Bob's device, and a bundle for Bob with one one-time
/// prekey.
pub fn devices(rng: &mut ChaCha20Rng) -> (Device, Device, PreKeyBundle) {
    let alice = Device::generate(rng);
    let mut bob = Device::generate(rng);
    let one_time = bob.generate_one_time_prekeys(rng, 1).expect("one prekey");
    let bundle = PreKeyBundle::new(
        *bob.identity_key(),
        bob.signed_prekey(),
        one_time.first().copied(),
    );
    (alice, bob, bundle)
}

/// The prekey message inside a message; panics on a ratchet message.
pub fn prekey(message: &Message) -> &PreKeyMessage {
    match message {
        Message::PreKey(m) => m,
        Message::Ratchet(_) => panic!("expected a prekey message"),
    }
}

/// Encrypts and parses the result back from its bytes, as a receiver gets it.
pub fn wire(session: &mut Session, rng: &mut ChaCha20Rng, text: &[u8]) -> Message {
    let bytes = session.encrypt(rng, text).expect("encrypt").into_bytes();
    Message::from_bytes(&bytes).expect("own message parses")
}

/// An established pair: Alice initiated, Bob accepted and replied, Alice
/// read the reply.
pub fn established(rng: &mut ChaCha20Rng) -> (Session, Session) {
    let (alice, mut bob, bundle) = devices(rng);
    let mut a =
        Session::initiate(&alice, rng, &bundle.verify().expect("own bundle")).expect("initiate");
    let first = a.encrypt(rng, b"hello").expect("encrypt");
    let (mut b, plaintext) = Session::accept(&mut bob, prekey(&first)).expect("accept");
    assert_eq!(plaintext, b"hello");
    let reply = b.encrypt(rng, b"hi").expect("encrypt");
    assert_eq!(a.decrypt(&reply).expect("decrypt"), b"hi");
    (a, b)
}

/// A session from `a` to `b` (with a one-time prekey of `b`'s) and `b`'s
/// side of it, each having read one message of the other.
pub fn connect(rng: &mut ChaCha20Rng, a: &Device, b: &mut Device) -> (Session, Session) {
    let one_time = b.generate_one_time_prekeys(rng, 1).expect("one prekey");
    let bundle = PreKeyBundle::new(
        *b.identity_key(),
        b.signed_prekey(),
        one_time.first().copied(),
    );
    let mut a_to_b =
        Session::initiate(a, rng, &bundle.verify().expect("own bundle")).expect("initiate");
    let first = a_to_b.encrypt(rng, b"hi").expect("encrypt");
    let (mut b_to_a, hello) = Session::accept(b, prekey(&first)).expect("accept");
    assert_eq!(hello, b"hi");
    let reply = b_to_a.encrypt(rng, b"hello").expect("encrypt");
    assert_eq!(a_to_b.decrypt(&reply).expect("decrypt"), b"hello");
    (a_to_b, b_to_a)
}

/// Decrypts and checks that a failure leaves the session byte-identical.
///
/// # Errors
///
/// The decrypt's error.
pub fn decrypt_checked(session: &mut Session, message: &Message) -> Result<Vec<u8>, sotto::Error> {
    let before = session.to_bytes();
    let result = session.decrypt(message);
    if result.is_err() {
        assert_eq!(
            *before,
            *session.to_bytes(),
            "failed decrypt changed the session"
        );
    }
    result
}

/// A group member: a device, its sender chain in one group, and its store.
pub struct Member {
    /// The member's device.
    pub device: Device,
    /// Its sender chain.
    pub sender: GroupSender,
    /// The chains it holds.
    pub store: GroupReceivers,
}

impl Member {
    /// A new member of `group`.
    pub fn new(rng: &mut ChaCha20Rng, group: GroupId) -> Self {
        let device = Device::generate(rng);
        let sender = GroupSender::new(rng, group);
        Self {
            device,
            sender,
            store: GroupReceivers::new(group),
        }
    }

    /// Its identity.
    pub fn identity(&self) -> IdentityKey {
        *self.device.identity_key()
    }
}

/// Sends `sender`'s distribution over `from` and installs it from `to`,
/// attributed to `to`'s peer.
pub fn deliver_distribution(
    rng: &mut ChaCha20Rng,
    sender: &GroupSender,
    from: &mut Session,
    to: &mut Session,
) -> GroupReceiver {
    let carried = wire(from, rng, &sender.distribution().to_bytes());
    let plaintext = zeroize::Zeroizing::new(to.decrypt(&carried).expect("decrypt"));
    GroupReceiver::accept(&plaintext, to).expect("accept a distribution")
}
