//! Parse errors, bad keys and signatures, and the bounded prekey store.

use sotto::{
    Device, Error, IdentityKey, Message, OneTimePreKey, PreKeyBundle, RatchetMessage, Session,
    SignedPreKey,
};
use testkit::fixtures::{decrypt_checked, devices, established, prekey, rng};
use testkit::layout;
use testkit::model::keys::{identity_key_bytes, one_time_prekey_bytes};
use testkit::model::wire::{RATCHET_HEADER_LEN, TAG_LEN};
use testkit::points::{ED25519_SMALL_ORDER, P, X25519_HIGH_BIT, X25519_LOW_ORDER, add_l_to_s};

#[test]
fn bad_signed_prekey_signature() {
    let mut rng = rng(20);
    let (_, bob, bundle) = devices(&mut rng);
    let mut bytes = bundle.to_bytes();
    layout::bundle(&bytes.clone()).flip(&mut bytes, "signature", 10, 1);
    let tampered = PreKeyBundle::from_bytes(&bytes).unwrap();
    assert_eq!(tampered.verify().err(), Some(Error::InvalidSignature));
    // A signed prekey signed by someone else.
    let mallory = Device::generate(&mut rng);
    let swapped = PreKeyBundle::new(*bob.identity_key(), mallory.signed_prekey(), None);
    assert_eq!(swapped.verify().err(), Some(Error::InvalidSignature));
}

#[test]
fn signature_must_be_canonical() {
    let mut rng = rng(21);
    let (_, _, bundle) = devices(&mut rng);
    let mut bytes = bundle.to_bytes();
    // Adding the group order L to S gives a malleated signature that plain verify may accept.
    let signature = layout::bundle(&bytes).range("signature");
    add_l_to_s(&mut bytes[signature]);
    let malleated = PreKeyBundle::from_bytes(&bytes).unwrap();
    assert_eq!(malleated.verify().err(), Some(Error::InvalidSignature));
}

#[test]
fn wrong_identity_for_known_contact() {
    let mut rng = rng(22);
    let (_, _, bundle) = devices(&mut rng);
    let other = Device::generate(&mut rng);
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
        layout::message(first.as_bytes()).put(&mut bytes, "base_key", &point);
        let m = Message::from_bytes(&bytes).unwrap();
        let before = bob.to_bytes();
        assert_eq!(
            Session::accept(&mut bob, prekey(&m)).err(),
            Some(Error::NonContributoryKey)
        );
        assert_eq!(*before, *bob.to_bytes());

        // As a one-time prekey in a bundle.
        let opk = OneTimePreKey::from_bytes(&one_time_prekey_bytes(9, &point)).unwrap();
        let bad = PreKeyBundle::new(*bundle.identity(), *bundle.signed_prekey(), Some(opk));
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
        layout::message(m.as_bytes()).put(&mut bytes, "ratchet_key", &point);
        let forged = Message::from_bytes(&bytes).unwrap();
        assert_eq!(
            decrypt_checked(&mut b, &forged),
            Err(Error::NonContributoryKey)
        );
    }
    assert_eq!(b.decrypt(&m).unwrap(), b"y");
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
    // A small-order Ed25519 identity key (the identity point).
    let mut ik = [9u8; 64];
    ik[..32].copy_from_slice(&ED25519_SMALL_ORDER);
    let identity = identity_key_bytes(&ik);
    assert_eq!(
        IdentityKey::from_bytes(&identity).err(),
        Some(Error::InvalidPublicKey)
    );
}

#[test]
fn truncated_oversized_and_malformed_messages() {
    let mut rng = rng(24);
    let (mut a, mut b) = established(&mut rng);
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
    // Unknown version and type.
    let l = layout::message(bytes);
    let mut v = bytes.to_vec();
    l.put_u8(&mut v, "version", 2);
    assert_eq!(
        Message::from_bytes(&v).err(),
        Some(Error::UnsupportedVersion { found: 2 })
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
        Some(Error::UnsupportedVersion { found: 2 })
    );
}

#[test]
fn prekey_message_flag_and_trailing_bytes() {
    let mut rng = rng(25);
    let (alice, _, bundle) = devices(&mut rng);
    let mut a = Session::initiate(&alice, &mut rng, &bundle.verify().unwrap()).unwrap();
    let m = a.encrypt(&mut rng, b"x").unwrap();
    let mut bytes = m.as_bytes().to_vec();
    let l = layout::message(&bytes);
    assert_eq!(l.slice(&bytes, "has_opk"), [1]);
    l.put_u8(&mut bytes, "has_opk", 2);
    assert_eq!(
        Message::from_bytes(&bytes).err(),
        Some(Error::InvalidEncoding)
    );
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
    assert_eq!(
        PreKeyBundle::from_bytes(&bundle.to_bytes()).unwrap(),
        bundle
    );
    for encoded in [
        id.to_bytes().to_vec(),
        spk.to_bytes(),
        opk.to_bytes(),
        bundle.to_bytes(),
    ] {
        let mut longer = encoded.clone();
        longer.push(0);
        let errors = [
            IdentityKey::from_bytes(&longer).err(),
            SignedPreKey::from_bytes(&longer).err(),
            OneTimePreKey::from_bytes(&longer).err(),
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
            3
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
    assert!(matches!(
        Device::from_bytes(&bytes),
        Err(Error::WrongType { .. })
    ));
    let huge = vec![0u8; sotto::MAX_STATE_LEN + 1];
    assert_eq!(Session::from_bytes(&huge).err(), Some(Error::TooLarge));
}

#[test]
fn one_time_prekey_store_is_bounded() {
    let mut rng = rng(28);
    let mut device = Device::generate(&mut rng);
    device
        .generate_one_time_prekeys(&mut rng, sotto::MAX_ONE_TIME_PREKEYS)
        .unwrap();
    let before = device.to_bytes();
    assert_eq!(
        device.generate_one_time_prekeys(&mut rng, 1).err(),
        Some(Error::TooManyPreKeys)
    );
    assert_eq!(*before, *device.to_bytes());
    let restored = Device::from_bytes(&before).unwrap();
    assert_eq!(
        restored.one_time_prekey_count(),
        sotto::MAX_ONE_TIME_PREKEYS
    );
}
