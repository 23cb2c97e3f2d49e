//! No secret reaches Debug, Display or error output. The secret bytes are
//! read from the plain state layouts and searched for in every rendering
//! (lowercase and uppercase hex, and Rust's decimal byte-list format).

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use sotto::{Device, Error, Message, PreKeyBundle, Session, StorageKey};
use testkit::layout;

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
    // Every key of the saved states (SPEC §10): Bob's root key, sending
    // secret and chain key, receiving chain key and his skipped key for m0;
    // his device's identity and prekey secrets; Alice's root and chain keys.
    let mut owned = layout::secrets(&bob_state);
    owned.extend(layout::secrets(&device_state));
    owned.extend(layout::secrets(&alice_state));
    let bob_layout = layout::session_state(&bob_state);
    let root = bob_layout.range("root_key");
    assert!(owned.contains(&bob_layout.a32(&bob_state, "chains[0].keys[0].message_key")));
    let mut secrets: Vec<&[u8]> = vec![&identity_secrets[..32], &identity_secrets[32..], &storage];
    secrets.extend(owned.iter().map(|s| &s[..]));

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
    let leak = format!("{:?}", &bob_state[root.clone()]);
    assert!(
        renderings(&bob_state[root])
            .iter()
            .any(|r| leak.contains(r))
    );

    // Errors carry ids and counts only; render every failure we can cause.
    let mut errors: Vec<Error> = vec![
        bob.decrypt(&m1).unwrap_err(),
        Session::from_bytes(&alice_state[..alice_state.len() / 2]).unwrap_err(),
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
