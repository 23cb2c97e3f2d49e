//! No secret reaches Debug, Display or error output. The secret bytes are
//! read from the plain state layouts and searched for in every rendering
//! (lowercase and uppercase hex, and Rust's decimal byte-list format).
#![allow(clippy::unwrap_used, clippy::indexing_slicing, missing_docs)]

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use sotto::{Device, Error, Message, PreKeyBundle, Session, StorageKey};

fn renderings(secret: &[u8]) -> Vec<String> {
    let head = &secret[..6];
    let hex: String = head.iter().map(|b| format!("{b:02x}")).collect();
    let list = head
        .iter()
        .map(u8::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    vec![hex.to_uppercase(), hex, list]
}

fn assert_hidden(text: &str, secrets: &[&[u8]]) {
    for secret in secrets {
        for r in renderings(secret) {
            assert!(!text.contains(&r), "a secret appears in {text}");
        }
    }
}

#[test]
fn debug_output_holds_no_secret() {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    // Device::generate draws the Ed25519 seed, then the X25519 identity secret.
    let mut replay = rng.clone();
    let mut identity_secrets = [0u8; 64];
    replay.fill_bytes(&mut identity_secrets);
    let alice_device = Device::generate(&mut rng);
    let mut bob_device = Device::generate(&mut rng);
    let opk = bob_device.generate_one_time_prekeys(&mut rng, 1).unwrap();
    let bundle = PreKeyBundle::new(
        *bob_device.identity_key(),
        bob_device.signed_prekey(),
        opk.first().copied(),
    );
    let mut alice =
        Session::initiate(&alice_device, &mut rng, &bundle.clone().verify().unwrap()).unwrap();
    let m0 = alice.encrypt(&mut rng, b"m0").unwrap();
    let m1 = alice.encrypt(&mut rng, b"m1").unwrap();
    let Message::PreKey(first) = m1.clone() else {
        unreachable!()
    };
    let (mut bob, _) = Session::accept(&mut bob_device, &first).unwrap();
    let reply = bob.encrypt(&mut rng, b"r").unwrap();
    alice.decrypt(&reply).unwrap();

    let alice_state = alice.to_bytes();
    let bob_state = bob.to_bytes();
    let device_state = bob_device.to_bytes();
    let storage = [0x77u8; 32];
    // Session: root key at 3+64+64+32+1 (+ pending prekey fields); Bob's
    // has no pending prekey: root, remote ratchet key, flag, sending secret
    // and chain key. Bob's skipped key for m0 is the last 32 bytes.
    let root = 3 + 64 + 64 + 32 + 1;
    let mut secrets: Vec<&[u8]> = vec![
        &identity_secrets[..32],
        &identity_secrets[32..],
        &bob_state[root..root + 32],
        &bob_state[root + 65..root + 97],
        &bob_state[root + 97..root + 129],
        &bob_state[bob_state.len() - 32..],
        &device_state[2..34],
        &device_state[34..66],
        &device_state[2 + 64 + 8 + 1 + 4..2 + 64 + 8 + 1 + 36],
        &storage,
    ];
    // Alice received Bob's reply, so her pending prekey is gone too.
    secrets.push(&alice_state[root..root + 32]);

    let rendered = [
        format!("{alice_device:?} {bob_device:#?}"),
        format!("{alice:?} {bob:#?}"),
        format!("{:?}", StorageKey::from_bytes(storage)),
        format!("{m0:?} {reply:?} {bundle:?}"),
        format!("{:?}", bundle.verify().unwrap()),
    ];
    for text in &rendered {
        assert_hidden(text, &secrets);
    }
    // The control: the search finds a secret when it is there.
    let leak = format!("{:?}", &bob_state[root..root + 32]);
    assert!(
        renderings(&bob_state[root..root + 32])
            .iter()
            .any(|r| leak.contains(r))
    );

    // Errors carry ids and counts only; render every failure we can cause.
    let mut errors: Vec<Error> = vec![
        bob.decrypt(&m1).unwrap_err(),
        Session::from_bytes(&alice_state[..40]).unwrap_err(),
        Session::unseal(
            &bob.seal(&StorageKey::from_bytes(storage), &mut rng)
                .unwrap(),
            &StorageKey::from_bytes([0; 32]),
        )
        .unwrap_err(),
    ];
    errors.push(Session::accept(&mut bob_device, &first).unwrap_err());
    for e in errors {
        assert_hidden(&format!("{e:?} {e}"), &secrets);
    }
}
