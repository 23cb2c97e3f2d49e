//! No secret reaches Debug, Display or error output. The secret bytes are
//! read from the plain state layouts (SPEC §10.2, §10.3) and from the RNG's
//! draws, and searched for in every rendering (lowercase and uppercase hex,
//! and Rust's decimal byte-list format).

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use sotto::{Device, Error, Message, Session, StorageKey};
use testkit::fixtures::{Kem, NOW, bundle_with};

/// SPEC §10.2 offsets in a session state without a pending prekey: the
/// root key, then (with a sending chain) its secret and chain key.
const ROOT: std::ops::Range<usize> = 141..173;
const SENDING_SECRET: std::ops::Range<usize> = 206..238;
const SENDING_CHAIN: std::ops::Range<usize> = 238..270;
/// With a sending chain: the first receiving chain's chain key, key count
/// and first skipped message key.
const FIRST_CHAIN_KEY: std::ops::Range<usize> = 312..344;
const FIRST_KEY_COUNT: std::ops::Range<usize> = 348..350;
const FIRST_SKIPPED_KEY: std::ops::Range<usize> = 354..386;
/// SPEC §10.3: the identity seed and the first signed prekey's secret.
const IDENTITY_SEED: std::ops::Range<usize> = 10..42;
const SPK_SECRET: std::ops::Range<usize> = 67..99;

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
    // Device::generate draws the identity seed, the signed prekey's
    // secret, then the last-resort KEM prekey's seed d || z (SPEC §6).
    let mut replay = rng.clone();
    let mut alice_draws = [0u8; 32 + 32 + 64];
    replay.fill_bytes(&mut alice_draws);
    let alice_device = Device::generate(&mut rng, NOW).unwrap();
    let mut bob_device = Device::generate(&mut rng, NOW).unwrap();
    let mut kem_replay = rng.clone();
    let mut one_time_kem_seed = [0u8; 64];
    kem_replay.fill_bytes(&mut one_time_kem_seed);
    let bundle = bundle_with(&mut rng, &mut bob_device, false, Kem::OneTime);
    let opk = bob_device.generate_one_time_prekeys(&mut rng, 1).unwrap();
    let bundle = sotto::PreKeyBundle::new(
        *bundle.identity(),
        *bundle.signed_prekey(),
        opk.first().copied(),
        bundle.kem_prekey().cloned(),
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
    assert_eq!(bob_state[FIRST_KEY_COUNT.clone()], [0, 1]);
    let root = ROOT;
    let owned: Vec<&[u8]> = vec![
        &bob_state[ROOT],
        &bob_state[SENDING_SECRET],
        &bob_state[SENDING_CHAIN],
        &bob_state[FIRST_CHAIN_KEY],
        &bob_state[FIRST_SKIPPED_KEY],
        &device_state[IDENTITY_SEED],
        &device_state[SPK_SECRET],
        &alice_state[ROOT],
    ];
    let mut secrets: Vec<&[u8]> = vec![
        &alice_draws[..32],
        &alice_draws[32..64],
        &alice_draws[64..96],
        &alice_draws[96..],
        &one_time_kem_seed[..32],
        &one_time_kem_seed[32..],
        &storage,
    ];
    secrets.extend(owned);

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
            &bob.seal(&StorageKey::from_bytes(storage), b"bob", &mut rng)
                .unwrap(),
            &StorageKey::from_bytes([0; 32]),
            b"bob",
        )
        .unwrap_err(),
    ];
    errors.push(Session::accept(&mut bob_device, &first).unwrap_err());
    for e in errors {
        assert_hidden(&format!("{e:?} {e}"), &secrets);
    }
}
