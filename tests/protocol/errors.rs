//! Parse errors, bad keys and signatures (X25519, Ed25519 and ML-KEM), and
//! the bounded prekey stores, on the published byte layouts.

use sotto::{
    Device, Error, IdentityKey, KemPreKey, KemPreKeyKind, Message, OneTimePreKey, PreKeyBundle,
    RatchetMessage, Session, SignedPreKey,
};
use testkit::fixtures::{
    Kem, NOW, bundle_with, decrypt_checked, device, devices, established, prekey, rng,
};
use testkit::fuzz::prekey_header_len;
use testkit::layout;
use testkit::points::{ED25519_SMALL_ORDER, P, X25519_HIGH_BIT, X25519_LOW_ORDER, add_l_to_s};

/// SPEC §9.1: header and tag lengths of a ratchet message.
const RATCHET_HEADER_LEN: usize = 58;
const TAG_LEN: usize = 16;

fn one_time_prekey_bytes(id: u32, key: &[u8; 32]) -> Vec<u8> {
    let mut bytes = vec![0x02, 0x12];
    bytes.extend_from_slice(&id.to_be_bytes());
    bytes.extend_from_slice(key);
    bytes
}

#[test]
fn bad_signed_prekey_signature() {
    let mut rng = rng(20);
    let (_, bob, bundle) = devices(&mut rng);
    let mut bytes = bundle.to_bytes();
    layout::bundle(&bytes).flip(&mut bytes, "spk_signature", 10, 1);
    let tampered = PreKeyBundle::from_bytes(&bytes).unwrap();
    assert_eq!(tampered.verify().err(), Some(Error::InvalidSignature));
    // A signed prekey signed by someone else.
    let mallory = device(&mut rng);
    let swapped = PreKeyBundle::new(
        *bob.identity_key(),
        mallory.signed_prekey(),
        None,
        Some(bob.last_resort_kem_prekey()),
    );
    assert_eq!(swapped.verify().err(), Some(Error::InvalidSignature));
}

#[test]
fn bad_kem_prekey_signature_kind_or_key() {
    let mut rng = rng(29);
    let (_, mut bob, bundle) = devices(&mut rng);
    let bytes = bundle.to_bytes();
    assert_eq!(bytes.len(), 1810);
    let l = layout::bundle(&bytes);
    assert_eq!(l.slice(&bytes, "kind"), [0x01], "the last-resort kind");
    // A flipped signature bit, a flipped key or id byte: the signature fails.
    for (field, at) in [("kem_signature", 3), ("ek", 700), ("kem_id", 1)] {
        let mut t = bytes.clone();
        l.flip(&mut t, field, at, 0x01);
        let parsed = PreKeyBundle::from_bytes(&t).unwrap();
        assert_eq!(
            parsed.verify().err(),
            Some(Error::InvalidSignature),
            "{field}"
        );
    }
    // The kind is signed: a last-resort key presented as one-time fails.
    let mut t = bytes.clone();
    l.put_u8(&mut t, "kind", 0x00);
    let parsed = PreKeyBundle::from_bytes(&t).unwrap();
    assert_eq!(parsed.kem_prekey().unwrap().kind(), KemPreKeyKind::OneTime);
    assert_eq!(parsed.verify().err(), Some(Error::InvalidSignature));
    // Kind and algorithm outside their values, an unreduced coefficient.
    for (field, value, error) in [
        ("kind", 2, Error::InvalidEncoding),
        ("alg", 2, Error::InvalidEncoding),
        ("alg", 0, Error::InvalidEncoding),
        ("ek", 0xff, Error::InvalidPublicKey),
    ] {
        let mut t = bytes.clone();
        let at = l.start(field);
        t[at] = value;
        if field == "ek" {
            // The first coefficient becomes 0xFFF >= q = 3329.
            t[at + 1] |= 0x0f;
        }
        assert_eq!(PreKeyBundle::from_bytes(&t).err(), Some(error), "{field}");
    }
    // A KEM prekey of another identity's, or the same key re-labelled.
    let mallory = device(&mut rng);
    let swapped = PreKeyBundle::new(
        *bob.identity_key(),
        bob.signed_prekey(),
        None,
        Some(mallory.last_resort_kem_prekey()),
    );
    assert_eq!(swapped.verify().err(), Some(Error::InvalidSignature));
    let one_time = bob.generate_one_time_kem_prekeys(&mut rng, 1).unwrap()[0].clone();
    assert_eq!(one_time.kind(), KemPreKeyKind::OneTime);
    assert!(one_time.verify(bob.identity_key()).is_ok());
    assert_eq!(
        one_time.verify(mallory.identity_key()).err(),
        Some(Error::InvalidSignature)
    );
}

#[test]
fn signature_must_be_canonical() {
    let mut rng = rng(21);
    let (_, _, bundle) = devices(&mut rng);
    // Adding the group order L to S gives a malleated signature that plain
    // verify may accept: in the signed prekey's and in the KEM prekey's.
    for field in ["spk_signature", "kem_signature"] {
        let mut bytes = bundle.to_bytes();
        let signature = layout::bundle(&bytes).range(field);
        add_l_to_s(&mut bytes[signature]);
        let malleated = PreKeyBundle::from_bytes(&bytes).unwrap();
        assert_eq!(malleated.verify().err(), Some(Error::InvalidSignature));
    }
}

#[test]
fn wrong_identity_for_known_contact() {
    let mut rng = rng(22);
    let (_, _, bundle) = devices(&mut rng);
    let other = device(&mut rng);
    assert_eq!(
        bundle.clone().verify_for(other.identity_key()).err(),
        Some(Error::IdentityMismatch)
    );
    let expected = *bundle.identity();
    assert!(bundle.verify_for(&expected).is_ok());
}

#[test]
fn low_order_keys_are_rejected() {
    let mut rng = rng(23);
    let (alice, mut bob, bundle) = devices(&mut rng);
    let mut a = Session::initiate(&alice, &mut rng, &bundle.clone().verify().unwrap()).unwrap();
    let first = a.encrypt(&mut rng, b"x").unwrap();

    for point in X25519_LOW_ORDER {
        // As the base key of a prekey message.
        let mut bytes = first.as_bytes().to_vec();
        layout::message(&bytes).put(&mut bytes, "base_key", &point);
        let m = Message::from_bytes(&bytes).unwrap();
        let before = bob.to_bytes();
        assert_eq!(
            Session::accept(&mut bob, prekey(&m)).err(),
            Some(Error::NonContributoryKey)
        );
        assert_eq!(*before, *bob.to_bytes());

        // As a one-time prekey in a bundle.
        let opk = OneTimePreKey::from_bytes(&one_time_prekey_bytes(9, &point)).unwrap();
        let bad = PreKeyBundle::new(
            *bundle.identity(),
            *bundle.signed_prekey(),
            Some(opk),
            bundle.kem_prekey().cloned(),
        );
        let verified = bad.verify().unwrap();
        assert_eq!(
            Session::initiate(&alice, &mut rng, &verified).err(),
            Some(Error::NonContributoryKey)
        );
    }

    // As the ratchet key of a ratchet message: rejected before any state change.
    let (mut a, mut b) = established(&mut rng);
    let m = a.encrypt(&mut rng, b"y").unwrap();
    for point in X25519_LOW_ORDER {
        let mut bytes = m.as_bytes().to_vec();
        layout::message(&bytes).put(&mut bytes, "ratchet_key", &point);
        let forged = Message::from_bytes(&bytes).unwrap();
        assert_eq!(
            decrypt_checked(&mut b, &forged),
            Err(Error::NonContributoryKey)
        );
    }
    assert_eq!(b.decrypt(&m).unwrap().as_bytes(), b"y");
}

#[test]
fn non_canonical_public_keys_are_rejected() {
    // p = 2^255 - 19 and a value with the top bit set.
    for key in [P, X25519_HIGH_BIT] {
        let bytes = one_time_prekey_bytes(1, &key);
        assert_eq!(
            OneTimePreKey::from_bytes(&bytes).err(),
            Some(Error::InvalidPublicKey)
        );
    }
    // A small-order Ed25519 identity key (the identity point), and a
    // non-canonical y = p.
    for key in [ED25519_SMALL_ORDER, P] {
        let mut identity = vec![0x02, 0x10];
        identity.extend_from_slice(&key);
        assert_eq!(
            IdentityKey::from_bytes(&identity).err(),
            Some(Error::InvalidPublicKey)
        );
    }
}

#[test]
fn truncated_oversized_and_malformed_messages() {
    let mut rng = rng(24);
    let (mut a, mut b) = established(&mut rng);
    // A message on a chain Bob knows: a truncation that still parses fails
    // its tag (on an unknown chain it would be `SessionDiverged`).
    let opening = a.encrypt(&mut rng, b"opening").unwrap();
    b.decrypt(&opening).unwrap();
    let m = a.encrypt(&mut rng, b"payload").unwrap();
    let bytes = m.as_bytes();
    // Shorter than header and tag: a parse error; longer: the tag no longer verifies.
    let minimum = RATCHET_HEADER_LEN + TAG_LEN;
    for len in 0..bytes.len() {
        match Message::from_bytes(&bytes[..len]) {
            Err(e) => assert!(
                len < minimum && e == Error::Truncated,
                "length {len}: {e:?}"
            ),
            Ok(t) => {
                assert!(len >= minimum);
                assert_eq!(
                    decrypt_checked(&mut b, &t),
                    Err(Error::AuthenticationFailed)
                );
            }
        }
    }
    // Too large, before parsing.
    let huge = vec![1u8; sotto::MAX_MESSAGE_LEN + 1];
    assert_eq!(Message::from_bytes(&huge).err(), Some(Error::TooLarge));
    assert_eq!(Message::from_vec(huge).err(), Some(Error::TooLarge));
    // Version 1 and an unknown type.
    let l = layout::message(bytes);
    let mut v = bytes.to_vec();
    l.put_u8(&mut v, "version", 1);
    assert_eq!(
        Message::from_bytes(&v).err(),
        Some(Error::UnsupportedVersion { found: 1 })
    );
    let mut t = bytes.to_vec();
    l.put_u8(&mut t, "type", 0x7f);
    assert_eq!(
        Message::from_bytes(&t).err(),
        Some(Error::WrongType {
            expected: 0x01,
            found: 0x7f
        })
    );
    assert_eq!(
        RatchetMessage::from_vec(v).err(),
        Some(Error::UnsupportedVersion { found: 1 })
    );
}

#[test]
fn prekey_message_flags_and_lengths() {
    let mut rng = rng(25);
    let (alice, _, bundle) = devices(&mut rng);
    let mut a = Session::initiate(&alice, &mut rng, &bundle.verify().unwrap()).unwrap();
    let m = a.encrypt(&mut rng, b"x").unwrap();
    let p = prekey(&m);
    assert_eq!(p.one_time_prekey_id(), Some(1));
    assert!(p.kem_ciphertext().is_some());
    assert_eq!(
        m.as_bytes().len(),
        prekey_header_len(true, true) + RATCHET_HEADER_LEN + 1 + TAG_LEN
    );
    let l = layout::message(m.as_bytes());
    for flag in ["has_opk", "has_kem"] {
        let mut bytes = m.as_bytes().to_vec();
        assert_eq!(l.slice(&bytes, flag), [1]);
        l.put_u8(&mut bytes, flag, 2);
        assert_eq!(
            Message::from_bytes(&bytes).err(),
            Some(Error::InvalidEncoding)
        );
    }
}

#[test]
fn key_encodings_round_trip_and_reject_trailing_bytes() {
    let mut rng = rng(26);
    let (_, mut bob, bundle) = devices(&mut rng);
    let id = *bob.identity_key();
    assert_eq!(IdentityKey::from_bytes(&id.to_bytes()).unwrap(), id);
    let spk = bob.signed_prekey();
    assert_eq!(SignedPreKey::from_bytes(&spk.to_bytes()).unwrap(), spk);
    let opk = bob.generate_one_time_prekeys(&mut rng, 1).unwrap()[0];
    assert_eq!(OneTimePreKey::from_bytes(&opk.to_bytes()).unwrap(), opk);
    let kem = bob.generate_one_time_kem_prekeys(&mut rng, 1).unwrap()[0].clone();
    assert_eq!(KemPreKey::from_bytes(&kem.to_bytes()).unwrap(), kem);
    assert_eq!(kem.to_bytes().len(), KemPreKey::ENCODED_LEN);
    assert_eq!(
        PreKeyBundle::from_bytes(&bundle.to_bytes()).unwrap(),
        bundle
    );
    for encoded in [
        id.to_bytes().to_vec(),
        spk.to_bytes(),
        opk.to_bytes(),
        kem.to_bytes(),
        bundle.to_bytes(),
    ] {
        let mut longer = encoded.clone();
        longer.push(0);
        let errors = [
            IdentityKey::from_bytes(&longer).err(),
            SignedPreKey::from_bytes(&longer).err(),
            OneTimePreKey::from_bytes(&longer).err(),
            KemPreKey::from_bytes(&longer).err(),
            PreKeyBundle::from_bytes(&longer).err(),
        ];
        // Exactly one decoder accepts the type tag, and it reports the trailing byte.
        assert_eq!(
            errors
                .iter()
                .filter(|e| **e == Some(Error::TrailingBytes))
                .count(),
            1
        );
        assert_eq!(
            errors
                .iter()
                .filter(|e| matches!(e, Some(Error::WrongType { .. })))
                .count(),
            4
        );
    }
}

#[test]
fn saved_state_parsing_is_strict() {
    let mut rng = rng(27);
    let (a, _) = established(&mut rng);
    let bytes = a.to_bytes().to_vec();
    for len in 0..bytes.len() {
        assert!(Session::from_bytes(&bytes[..len]).is_err());
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        Session::from_bytes(&longer).err(),
        Some(Error::TrailingBytes)
    );
    let mut version = bytes.clone();
    layout::session_state(&bytes).put_u8(&mut version, "version", 9);
    assert_eq!(
        Session::from_bytes(&version).err(),
        Some(Error::UnsupportedVersion { found: 9 })
    );
    assert_eq!(
        Device::from_bytes(&bytes).err(),
        Some(Error::WrongType {
            expected: 0x21,
            found: 0x20
        })
    );
    // Role and key agreement bytes outside their values.
    let l = layout::session_state(&bytes);
    for field in ["role", "key_agreement"] {
        let mut t = bytes.clone();
        l.put_u8(&mut t, field, 2);
        assert_eq!(Session::from_bytes(&t).err(), Some(Error::InvalidEncoding));
    }
    let huge = vec![0u8; sotto::MAX_STATE_LEN + 1];
    assert_eq!(Session::from_bytes(&huge).err(), Some(Error::TooLarge));
}

#[test]
fn prekey_stores_are_bounded() {
    let mut rng = rng(28);
    let mut device = Device::generate(&mut rng, NOW).unwrap();
    device
        .generate_one_time_prekeys(&mut rng, sotto::MAX_ONE_TIME_PREKEYS)
        .unwrap();
    device
        .generate_one_time_kem_prekeys(&mut rng, sotto::MAX_ONE_TIME_KEM_PREKEYS)
        .unwrap();
    let before = device.to_bytes();
    assert_eq!(
        device.generate_one_time_prekeys(&mut rng, 1).err(),
        Some(Error::TooManyPreKeys)
    );
    assert_eq!(
        device.generate_one_time_kem_prekeys(&mut rng, 1).err(),
        Some(Error::TooManyPreKeys)
    );
    assert_eq!(*before, *device.to_bytes());
    let restored = Device::from_bytes(&before).unwrap();
    assert_eq!(
        restored.one_time_prekey_count(),
        sotto::MAX_ONE_TIME_PREKEYS
    );
    assert_eq!(
        restored.one_time_kem_prekey_count(),
        sotto::MAX_ONE_TIME_KEM_PREKEYS
    );
    // Rotation keeps MAX_SIGNED_PREKEYS and MAX_LAST_RESORT_KEM_PREKEYS.
    for _ in 0..10 {
        device.rotate_signed_prekey(&mut rng, NOW + 1).unwrap();
        device
            .rotate_last_resort_kem_prekey(&mut rng, NOW + 1)
            .unwrap();
    }
    assert_eq!(device.signed_prekeys().count(), sotto::MAX_SIGNED_PREKEYS);
    assert_eq!(
        device.last_resort_kem_prekeys().count(),
        sotto::MAX_LAST_RESORT_KEM_PREKEYS
    );
    // A classical bundle from a full device still builds.
    let _ = bundle_with(&mut rng, &mut device, false, Kem::Classical);
}
