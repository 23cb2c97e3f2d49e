//! Fixtures for tests, tools, fuzz targets and benchmarks: devices, an
//! established pair of sessions, group members, and the checks every test
//! of a fallible call makes.

use rand_chacha::ChaCha20Rng;
use sotto::group::{GroupId, GroupReceiver, GroupReceivers, GroupSender};
use sotto::{
    Device, IdentityKey, KeyAgreementPolicy, Message, PreKeyBundle, PreKeyMessage, Session,
    VerifiedPreKeyBundle,
};

use crate::layout;
use crate::model::group::ratchet::{Levels, closed_form, flat, split_levels};
pub use crate::rng::seeded as rng;

/// The creation time the fixtures pass as `now`.
pub const NOW: u64 = 1_700_000_000;

/// A new device at [`NOW`].
pub fn device(rng: &mut ChaCha20Rng) -> Device {
    Device::generate(rng, NOW).expect("a seeded RNG never fails")
}

/// Which KEM prekey a bundle carries (SPEC §5.6).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kem {
    /// None: a classical bundle, usable only under
    /// [`KeyAgreementPolicy::ClassicalAllowed`].
    Classical,
    /// The device's current last-resort KEM prekey.
    LastResort,
    /// A new one-time KEM prekey of the device's.
    OneTime,
}

/// `device`'s bundle with its current signed prekey, a new one-time prekey
/// if `one_time`, and the KEM prekey `kem` (not yet verified).
pub fn bundle_with(
    rng: &mut ChaCha20Rng,
    device: &mut Device,
    one_time: bool,
    kem: Kem,
) -> PreKeyBundle {
    let opk = if one_time {
        device
            .generate_one_time_prekeys(rng, 1)
            .expect("one prekey")
            .first()
            .copied()
    } else {
        None
    };
    let kem = match kem {
        Kem::Classical => None,
        Kem::LastResort => Some(device.last_resort_kem_prekey()),
        Kem::OneTime => device
            .generate_one_time_kem_prekeys(rng, 1)
            .expect("one KEM prekey")
            .pop(),
    };
    PreKeyBundle::new(*device.identity_key(), device.signed_prekey(), opk, kem)
}

/// Alice's device, Bob's device, and a PQXDH bundle for Bob with one
/// one-time prekey and his last-resort KEM prekey.
pub fn devices(rng: &mut ChaCha20Rng) -> (Device, Device, PreKeyBundle) {
    let alice = device(rng);
    let mut bob = device(rng);
    let bundle = bundle_with(rng, &mut bob, true, Kem::LastResort);
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

/// Starts a session from `bundle` under
/// [`KeyAgreementPolicy::ClassicalAllowed`]: PQXDH if it has a KEM prekey,
/// X3DH otherwise.
pub fn initiate(rng: &mut ChaCha20Rng, device: &Device, bundle: &VerifiedPreKeyBundle) -> Session {
    Session::initiate_with_policy(device, rng, bundle, KeyAgreementPolicy::ClassicalAllowed)
        .expect("initiate")
}

/// An established pair: Alice initiated (PQXDH), Bob accepted and replied,
/// Alice read the reply.
pub fn established(rng: &mut ChaCha20Rng) -> (Session, Session) {
    let (alice, mut bob, bundle) = devices(rng);
    let mut a =
        Session::initiate(&alice, rng, &bundle.verify().expect("own bundle")).expect("initiate");
    let first = a.encrypt(rng, b"hello").expect("encrypt");
    let (mut b, plaintext) = Session::accept(&mut bob, prekey(&first)).expect("accept");
    assert_eq!(&*plaintext, b"hello");
    let reply = b.encrypt(rng, b"hi").expect("encrypt");
    assert_eq!(&*a.decrypt(&reply).expect("decrypt"), b"hi");
    (a, b)
}

/// A PQXDH session from `a` to `b` (with a one-time prekey of `b`'s and
/// its last-resort KEM prekey) and `b`'s side of it, each having read one
/// message of the other.
pub fn connect(rng: &mut ChaCha20Rng, a: &Device, b: &mut Device) -> (Session, Session) {
    let bundle = bundle_with(rng, b, true, Kem::LastResort);
    let mut a_to_b =
        Session::initiate(a, rng, &bundle.verify().expect("own bundle")).expect("initiate");
    let first = a_to_b.encrypt(rng, b"hi").expect("encrypt");
    let (mut b_to_a, hello) = Session::accept(b, prekey(&first)).expect("accept");
    assert_eq!(&*hello, b"hi");
    let reply = b_to_a.encrypt(rng, b"hello").expect("encrypt");
    assert_eq!(&*a_to_b.decrypt(&reply).expect("decrypt"), b"hello");
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
    result.map(|p| p.as_bytes().to_vec())
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
        let device = device(rng);
        let sender = GroupSender::new(rng, group, &device).expect("new chain");
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
/// authenticated as `to`'s peer (SPEC §15.7).
pub fn deliver_distribution(
    rng: &mut ChaCha20Rng,
    sender: &GroupSender,
    from: &mut Session,
    to: &mut Session,
) -> GroupReceiver {
    let carried = wire(from, rng, &sender.distribution().to_bytes());
    GroupReceiver::receive_distribution(sender.group_id(), to, &carried)
        .expect("install a distribution")
}

/// The chain seed of a saved sender (SPEC §15.11), read through its layout.
pub fn chain_seed(sender: &GroupSender) -> [u8; 32] {
    let state = sender.to_bytes();
    layout::sender_state(&state).a32(&state, "chain_seed")
}

/// The ratchet levels `R_0 .. R_7` of a saved sender (SPEC §15.11).
pub fn sender_levels(sender: &GroupSender) -> Levels {
    let state = sender.to_bytes();
    split_levels(layout::sender_state(&state).slice(&state, "levels"))
}

/// The chain of `fresh` (a sender at index 0) at index `n`, made on its
/// saved state's bytes with the reference model's closed form (SPEC §15.4),
/// not with sotto's increment or jump: a sender far ahead without the
/// messages in between.
pub fn sender_at(fresh: &GroupSender, n: u32) -> GroupSender {
    assert_eq!(fresh.index(), 0, "a sender at index 0");
    let mut state = fresh.to_bytes().to_vec();
    let l = layout::sender_state(&state);
    l.put_u32(&mut state, "index", n);
    l.put(
        &mut state,
        "levels",
        &flat(&closed_form(&sender_levels(fresh), n)),
    );
    let sender = GroupSender::from_bytes(&state).expect("a valid sender state");
    assert_eq!(sender.index(), n);
    sender
}
