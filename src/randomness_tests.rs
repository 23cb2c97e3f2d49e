//! Every call that draws randomness draws all of it, in the order SPEC.md
//! gives, before it changes anything; an RNG failure at any draw is
//! `RandomnessUnavailable` with every state as it was (SPEC §1, §6, §7.2,
//! §8.5, §10.5).

use alloc::vec::Vec;

use crate::testing::{Kem, TestRng, bundle_with, devices, fails_cleanly_at_every_draw, sessions};
use crate::{Device, KeyAgreementPolicy, Session, StorageKey};

fn device() -> Device {
    Device::generate(&mut TestRng::new(1), 0).unwrap()
}

fn device_bytes(device: &Device) -> Vec<u8> {
    device.to_bytes().to_vec()
}

fn session_bytes(session: &Session) -> Vec<u8> {
    session.to_bytes().to_vec()
}

#[test]
fn device_operations_draw_first() {
    let draws =
        fails_cleanly_at_every_draw(|| (), |()| Vec::new(), |(), rng| Device::generate(rng, 0));
    // The identity seed, signed prekey 1, last-resort KEM prekey 1 (SPEC §6).
    assert_eq!(draws, [32, 32, 64]);

    let draws = fails_cleanly_at_every_draw(device, device_bytes, |d, rng| {
        d.rotate_signed_prekey(rng, 10)
    });
    assert_eq!(draws, [32]);

    let draws = fails_cleanly_at_every_draw(device, device_bytes, |d, rng| {
        d.generate_one_time_prekeys(rng, 5)
    });
    assert_eq!(draws, [32; 5]);

    let draws = fails_cleanly_at_every_draw(device, device_bytes, |d, rng| {
        d.rotate_last_resort_kem_prekey(rng, 10)
    });
    assert_eq!(draws, [64]);

    let draws = fails_cleanly_at_every_draw(device, device_bytes, |d, rng| {
        d.generate_one_time_kem_prekeys(rng, 3)
    });
    assert_eq!(draws, [64; 3]);
}

/// The base key, then `m` with a KEM prekey (SPEC §7.2 step 2).
#[test]
fn initiate_draws_first() {
    for (kem, expected) in [(Kem::OneTime, &[32, 32][..]), (Kem::Classical, &[32])] {
        let setup = || {
            let mut rng = TestRng::new(2);
            let (alice, mut bob) = devices(&mut rng);
            let bundle = bundle_with(&mut bob, &mut rng, true, kem);
            (alice, bundle)
        };
        let draws = fails_cleanly_at_every_draw(
            setup,
            |(alice, _)| device_bytes(alice),
            |(alice, bundle), rng| {
                Session::initiate_with_policy(
                    alice,
                    rng,
                    bundle,
                    KeyAgreementPolicy::ClassicalAllowed,
                )
            },
        );
        assert_eq!(draws, expected);
    }
}

/// The ratchet secret, then the salt (SPEC §8.5 steps 3 and 4), on a new
/// sending chain; the salt alone on an existing one.
#[test]
fn encrypt_draws_first() {
    // Bob has no sending chain: his first encrypt starts one.
    let draws = fails_cleanly_at_every_draw(
        || sessions(3).1,
        session_bytes,
        |bob, rng| bob.encrypt(rng, b"reply"),
    );
    assert_eq!(draws, [32, 16]);
    // Alice's first encrypt started her chain; this one continues it.
    let draws = fails_cleanly_at_every_draw(
        || sessions(3).0,
        session_bytes,
        |alice, rng| alice.encrypt(rng, b"again"),
    );
    assert_eq!(draws, [16]);
}

#[test]
fn sealing_draws_first() {
    let key = StorageKey::from_bytes([7; 32]);
    let draws = fails_cleanly_at_every_draw(
        || sessions(4).0,
        session_bytes,
        |s, rng| s.seal(&key, b"s", rng),
    );
    assert_eq!(draws, [32]);
    let draws = fails_cleanly_at_every_draw(device, device_bytes, |d, rng| d.seal(&key, b"d", rng));
    assert_eq!(draws, [32]);
}
