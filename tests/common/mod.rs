//! Shared set-up for the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sotto::{Device, Message, PreKeyBundle, PreKeyMessage, Session};

pub(crate) fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

/// Alice's device, Bob's device, and a bundle for Bob with one one-time prekey.
pub(crate) fn devices(rng: &mut ChaCha20Rng) -> (Device, Device, PreKeyBundle) {
    let alice = Device::generate(rng);
    let mut bob = Device::generate(rng);
    let one_time = bob.generate_one_time_prekeys(rng, 1).unwrap();
    let bundle = PreKeyBundle::new(
        *bob.identity_key(),
        bob.signed_prekey(),
        one_time.first().copied(),
    );
    (alice, bob, bundle)
}

pub(crate) fn prekey(message: &Message) -> &PreKeyMessage {
    match message {
        Message::PreKey(m) => m,
        Message::Ratchet(_) => panic!("expected a prekey message"),
    }
}

/// An established pair: Alice initiated, Bob accepted and replied, Alice read the reply.
pub(crate) fn established(rng: &mut ChaCha20Rng) -> (Session, Session) {
    let (alice, mut bob, bundle) = devices(rng);
    let mut a = Session::initiate(&alice, rng, &bundle.verify().unwrap()).unwrap();
    let first = a.encrypt(rng, b"hello").unwrap();
    let (mut b, plaintext) = Session::accept(&mut bob, prekey(&first)).unwrap();
    assert_eq!(plaintext, b"hello");
    let reply = b.encrypt(rng, b"hi").unwrap();
    assert_eq!(a.decrypt(&reply).unwrap(), b"hi");
    (a, b)
}

/// Decrypts and checks that a failure leaves the session byte-identical.
pub(crate) fn decrypt_checked(
    session: &mut Session,
    message: &Message,
) -> Result<Vec<u8>, sotto::Error> {
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
