//! Pairwise sessions: X3DH, ratchet turns, out-of-order delivery,
//! prekey handling, tampering, save and restore.

use sotto::{Error, Message, Role, Session, StorageKey};
use testkit::fixtures::{
    Kem, NOW, bundle_with, decrypt_checked, devices, established, prekey, rng,
};
use testkit::fuzz::prekey_header_len;
use testkit::layout;

#[test]
fn long_conversation_with_many_ratchet_turns() {
    let mut rng = rng(1);
    let (mut a, mut b) = established(&mut rng);
    for turn in 0..200u32 {
        // Alternate bursts from each side so every burst forces a DH ratchet turn.
        let (sender, receiver) = if turn % 2 == 0 {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        let burst = 1 + turn % 4;
        for i in 0..burst {
            let text = format!("turn {turn} message {i}");
            let m = sender.encrypt(&mut rng, text.as_bytes()).unwrap();
            assert!(matches!(m, Message::Ratchet(_)));
            assert_eq!(receiver.decrypt(&m).unwrap().as_bytes(), text.as_bytes());
        }
    }
    assert_eq!(a.skipped_key_count(), 0);
    assert_eq!(b.skipped_key_count(), 0);
}

#[test]
fn ratchet_key_changes_once_per_turn() {
    let mut rng = rng(2);
    let (mut a, mut b) = established(&mut rng);
    let key = |m: &Message| match m {
        Message::Ratchet(r) => r.ratchet_key_bytes(),
        Message::PreKey(_) => panic!("unexpected prekey message"),
    };
    let a1 = a.encrypt(&mut rng, b"1").unwrap();
    let a2 = a.encrypt(&mut rng, b"2").unwrap();
    assert_eq!(key(&a1), key(&a2));
    b.decrypt(&a1).unwrap();
    b.decrypt(&a2).unwrap();
    let b1 = b.encrypt(&mut rng, b"3").unwrap();
    a.decrypt(&b1).unwrap();
    let a3 = a.encrypt(&mut rng, b"4").unwrap();
    assert_ne!(key(&a3), key(&a1), "a reply must turn the ratchet");
    match &a3 {
        Message::Ratchet(r) => assert_eq!(r.previous_chain_length(), 2),
        Message::PreKey(_) => panic!(),
    }
}

#[test]
fn initiator_repeats_prekey_header_until_reply() {
    let mut rng = rng(3);
    let (alice, mut bob, bundle) = devices(&mut rng);
    let mut a = Session::initiate(&alice, &mut rng, &bundle.verify().unwrap()).unwrap();
    let m1 = a.encrypt(&mut rng, b"one").unwrap();
    let m2 = a.encrypt(&mut rng, b"two").unwrap();
    assert!(a.is_awaiting_reply());
    assert_eq!(prekey(&m1).base_key_bytes(), prekey(&m2).base_key_bytes());
    // The second message arrives first and creates the session.
    let (mut b, text) = Session::accept(&mut bob, prekey(&m2)).unwrap();
    assert_eq!(&*text, b"two");
    assert_eq!(b.role(), Role::Responder);
    // The first prekey message belongs to the existing session.
    assert_eq!(b.decrypt(&m1).unwrap().as_bytes(), b"one");
    // Accepting it again is a replay: the one-time prekey it names is gone.
    let id = prekey(&m1).one_time_prekey_id().unwrap();
    assert_eq!(
        Session::accept(&mut bob, prekey(&m1)).err(),
        Some(Error::UnknownOneTimePreKey { id })
    );
    let reply = b.encrypt(&mut rng, b"three").unwrap();
    assert_eq!(a.decrypt(&reply).unwrap().as_bytes(), b"three");
    assert!(!a.is_awaiting_reply());
    assert!(matches!(
        a.encrypt(&mut rng, b"four").unwrap(),
        Message::Ratchet(_)
    ));
}

#[test]
fn repeated_prekey_header_is_authenticated() {
    let mut rng = rng(17);
    let (alice, mut bob, bundle) = devices(&mut rng);
    let mut a = Session::initiate(&alice, &mut rng, &bundle.verify().unwrap()).unwrap();
    let m1 = a.encrypt(&mut rng, b"one").unwrap();
    let m2 = a.encrypt(&mut rng, b"two").unwrap();
    let (mut b, _) = Session::accept(&mut bob, prekey(&m1)).unwrap();
    // The prekey ids and the KEM ciphertext select no key on an existing
    // session, but the AEAD covers them (SPEC §8.4): the first and last
    // byte of each, and one inside the ciphertext.
    assert_eq!(prekey_header_len(true, true), 1648);
    let l = layout::message(m2.as_bytes());
    let ct = l.range("ct");
    let positions = ["spk_id", "opk_id", "kem_id", "ct"]
        .into_iter()
        .flat_map(|field| [l.start(field), l.end_of(field) - 1])
        .chain([ct.start + ct.len() / 2]);
    for at in positions {
        let mut bytes = m2.as_bytes().to_vec();
        bytes[at] ^= 0x10;
        let altered = Message::from_bytes(&bytes).unwrap();
        assert_eq!(
            decrypt_checked(&mut b, &altered),
            Err(Error::AuthenticationFailed)
        );
    }
    assert_eq!(b.decrypt(&m2).unwrap().as_bytes(), b"two");
}

#[test]
fn session_without_one_time_prekey() {
    let mut rng = rng(4);
    let (alice, mut bob, _) = devices(&mut rng);
    let bundle = bundle_with(&mut rng, &mut bob, false, Kem::LastResort);
    let mut a = Session::initiate(&alice, &mut rng, &bundle.verify().unwrap()).unwrap();
    let m = a.encrypt(&mut rng, b"no opk").unwrap();
    assert_eq!(prekey(&m).one_time_prekey_id(), None);
    let (mut b, text) = Session::accept(&mut bob, prekey(&m)).unwrap();
    assert_eq!(&*text, b"no opk");
    // Without a one-time key of either kind, the replay is caught by the
    // base key its signed prekey recorded (SPEC §6).
    assert_eq!(
        Session::accept(&mut bob, prekey(&m)).err(),
        Some(Error::DuplicatePreKeyMessage)
    );
    let r = b.encrypt(&mut rng, b"ok").unwrap();
    assert_eq!(a.decrypt(&r).unwrap().as_bytes(), b"ok");
}

#[test]
fn one_time_prekey_deleted_only_after_first_message_decrypts() {
    let mut rng = rng(5);
    let (alice, mut bob, bundle) = devices(&mut rng);
    let mut a = Session::initiate(&alice, &mut rng, &bundle.verify().unwrap()).unwrap();
    let m = a.encrypt(&mut rng, b"secret").unwrap();
    let mut bytes = m.as_bytes().to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let tampered = Message::from_bytes(&bytes).unwrap();
    let device_before = bob.to_bytes();
    assert_eq!(
        Session::accept(&mut bob, prekey(&tampered)).err(),
        Some(Error::AuthenticationFailed)
    );
    assert_eq!(
        *device_before,
        *bob.to_bytes(),
        "failed accept changed the device"
    );
    assert_eq!(bob.one_time_prekey_count(), 1);
    let (_, text) = Session::accept(&mut bob, prekey(&m)).unwrap();
    assert_eq!(&*text, b"secret");
    assert_eq!(bob.one_time_prekey_count(), 0);
}

#[test]
fn reused_one_time_prekey_is_rejected() {
    let mut rng = rng(6);
    let (alice, mut bob, bundle) = devices(&mut rng);
    let carol = testkit::fixtures::device(&mut rng);
    let verified = bundle.verify().unwrap();
    let mut a = Session::initiate(&alice, &mut rng, &verified).unwrap();
    let mut c = Session::initiate(&carol, &mut rng, &verified).unwrap();
    let from_a = a.encrypt(&mut rng, b"a").unwrap();
    let from_c = c.encrypt(&mut rng, b"c").unwrap();
    let id = prekey(&from_a).one_time_prekey_id().unwrap();
    Session::accept(&mut bob, prekey(&from_a)).unwrap();
    assert_eq!(
        Session::accept(&mut bob, prekey(&from_c)).err(),
        Some(Error::UnknownOneTimePreKey { id })
    );
}

#[test]
fn unknown_signed_prekey_is_rejected() {
    let mut rng = rng(7);
    let (alice, mut bob, bundle) = devices(&mut rng);
    let mut a = Session::initiate(&alice, &mut rng, &bundle.verify().unwrap()).unwrap();
    let m = a.encrypt(&mut rng, b"x").unwrap();
    let old = bob.signed_prekey().id();
    for _ in 0..sotto::MAX_SIGNED_PREKEYS {
        bob.rotate_signed_prekey(&mut rng, NOW).unwrap();
    }
    assert_eq!(
        Session::accept(&mut bob, prekey(&m)).err(),
        Some(Error::UnknownSignedPreKey { id: old })
    );
}

#[test]
fn rotated_signed_prekey_still_accepts_in_flight_messages() {
    let mut rng = rng(8);
    let (alice, mut bob, bundle) = devices(&mut rng);
    let mut a = Session::initiate(&alice, &mut rng, &bundle.verify().unwrap()).unwrap();
    let m = a.encrypt(&mut rng, b"in flight").unwrap();
    bob.rotate_signed_prekey(&mut rng, NOW).unwrap();
    let (_, text) = Session::accept(&mut bob, prekey(&m)).unwrap();
    assert_eq!(&*text, b"in flight");
}

#[test]
fn prekey_message_from_other_identity_is_rejected_by_session() {
    let mut rng = rng(9);
    let (alice, mut bob, bundle) = devices(&mut rng);
    let verified = bundle.verify().unwrap();
    let mut a = Session::initiate(&alice, &mut rng, &verified).unwrap();
    let m = a.encrypt(&mut rng, b"a").unwrap();
    let (mut b, _) = Session::accept(&mut bob, prekey(&m)).unwrap();
    let mallory = testkit::fixtures::device(&mut rng);
    let mut mal = Session::initiate(&mallory, &mut rng, &verified).unwrap();
    let forged = mal.encrypt(&mut rng, b"m").unwrap();
    assert_eq!(
        decrypt_checked(&mut b, &forged),
        Err(Error::IdentityMismatch)
    );
    // Same identity, other base key: a second session Alice started belongs elsewhere.
    let mut a2 = Session::initiate(&alice, &mut rng, &verified).unwrap();
    let other = a2.encrypt(&mut rng, b"second session").unwrap();
    assert_eq!(decrypt_checked(&mut b, &other), Err(Error::SessionMismatch));
    // An initiator never receives prekey messages on its session.
    assert_eq!(
        decrypt_checked(&mut a, &other),
        Err(Error::IdentityMismatch)
    );
}

#[test]
fn out_of_order_dropped_and_duplicated_delivery() {
    let mut rng = rng(10);
    let (mut a, mut b) = established(&mut rng);
    let msgs: Vec<_> = (0..10)
        .map(|i| a.encrypt(&mut rng, &[i]).unwrap())
        .collect();
    // Deliver 9, 3, 0; drop 5; duplicate 3.
    assert_eq!(b.decrypt(&msgs[9]).unwrap().as_bytes(), [9]);
    assert_eq!(b.skipped_key_count(), 9);
    assert_eq!(b.decrypt(&msgs[3]).unwrap().as_bytes(), [3]);
    assert_eq!(b.decrypt(&msgs[0]).unwrap().as_bytes(), [0]);
    assert_eq!(
        decrypt_checked(&mut b, &msgs[3]),
        Err(Error::DuplicateMessage)
    );
    assert_eq!(
        decrypt_checked(&mut b, &msgs[9]),
        Err(Error::DuplicateMessage)
    );
    // A turn of the ratchet, then late messages from the old chain still decrypt.
    let r = b.encrypt(&mut rng, b"r").unwrap();
    a.decrypt(&r).unwrap();
    let n = a.encrypt(&mut rng, b"new chain").unwrap();
    assert_eq!(b.decrypt(&n).unwrap().as_bytes(), b"new chain");
    for i in [8u8, 1, 2, 4, 6, 7] {
        assert_eq!(b.decrypt(&msgs[usize::from(i)]).unwrap().as_bytes(), [i]);
    }
    assert_eq!(
        b.skipped_key_count(),
        1,
        "only the dropped message's key remains"
    );
}

#[test]
fn late_messages_from_the_previous_chain_after_ratchet() {
    let mut rng = rng(11);
    let (mut a, mut b) = established(&mut rng);
    let early = a.encrypt(&mut rng, b"early").unwrap();
    let seen = a.encrypt(&mut rng, b"seen").unwrap();
    b.decrypt(&seen).unwrap();
    let r = b.encrypt(&mut rng, b"r").unwrap();
    a.decrypt(&r).unwrap();
    // Alice's new chain says the previous one had 2 messages; Bob skipped index 0 of it already.
    let later: Vec<_> = (0..3).map(|i| a.encrypt(&mut rng, &[i]).unwrap()).collect();
    assert_eq!(b.decrypt(&later[2]).unwrap().as_bytes(), [2]);
    assert_eq!(b.decrypt(&early).unwrap().as_bytes(), b"early");
    assert_eq!(b.decrypt(&later[0]).unwrap().as_bytes(), [0]);
    assert_eq!(b.decrypt(&later[1]).unwrap().as_bytes(), [1]);
    assert_eq!(b.skipped_key_count(), 0);
}

#[test]
fn every_single_byte_flip_fails_without_state_change() {
    let mut rng = rng(12);
    let (alice, mut bob, bundle) = devices(&mut rng);
    let mut a = Session::initiate(&alice, &mut rng, &bundle.verify().unwrap()).unwrap();
    let first = a.encrypt(&mut rng, b"first message").unwrap();

    // Prekey message: flipping any byte must make accept fail and leave Bob's device unchanged.
    let device_before = bob.to_bytes();
    let bytes = first.as_bytes().to_vec();
    for i in 0..bytes.len() {
        let mut t = bytes.clone();
        t[i] ^= 0x01;
        if let Ok(Message::PreKey(p)) = Message::from_bytes(&t) {
            assert!(
                Session::accept(&mut bob, &p).is_err(),
                "flip at byte {i} accepted"
            );
        }
        assert_eq!(*device_before, *bob.to_bytes());
    }
    let (mut b, _) = Session::accept(&mut bob, prekey(&first)).unwrap();

    // Ratchet messages in both directions, including one that turns the ratchet.
    let reply = b.encrypt(&mut rng, b"reply turns the ratchet").unwrap();
    let bytes = reply.as_bytes().to_vec();
    for i in 0..bytes.len() {
        for bit in [0x01u8, 0x80] {
            let mut t = bytes.clone();
            t[i] ^= bit;
            if let Ok(m) = Message::from_bytes(&t) {
                assert!(
                    decrypt_checked(&mut a, &m).is_err(),
                    "flip at byte {i} accepted"
                );
            }
        }
    }
    assert_eq!(
        a.decrypt(&reply).unwrap().as_bytes(),
        b"reply turns the ratchet"
    );
    let in_chain = a.encrypt(&mut rng, b"x").unwrap();
    let bytes = in_chain.as_bytes().to_vec();
    for i in 0..bytes.len() {
        let mut t = bytes.clone();
        t[i] ^= 0x40;
        if let Ok(m) = Message::from_bytes(&t) {
            assert!(
                decrypt_checked(&mut b, &m).is_err(),
                "flip at byte {i} accepted"
            );
        }
    }
    assert_eq!(b.decrypt(&in_chain).unwrap().as_bytes(), b"x");
}

#[test]
fn save_and_restore_mid_conversation() {
    let mut rng = rng(13);
    let (mut a, mut b) = established(&mut rng);
    let key = StorageKey::from_bytes([9; 32]);
    let pending: Vec<_> = (0..4).map(|i| a.encrypt(&mut rng, &[i]).unwrap()).collect();
    b.decrypt(&pending[1]).unwrap();
    let sealed_b = b.seal(&key, b"session/alice", &mut rng).unwrap();
    let plain_a = a.to_bytes();
    drop((a, b));
    let mut a = Session::from_bytes(&plain_a).unwrap();
    // Bound to its record: another record's key does not open it.
    assert_eq!(
        Session::unseal(&sealed_b, &key, b"session/carol").err(),
        Some(Error::AuthenticationFailed)
    );
    let mut b = Session::unseal(&sealed_b, &key, b"session/alice").unwrap();
    assert_eq!(b.decrypt(&pending[3]).unwrap().as_bytes(), [3]);
    assert_eq!(b.decrypt(&pending[0]).unwrap().as_bytes(), [0]);
    let r = b.encrypt(&mut rng, b"after restore").unwrap();
    assert_eq!(a.decrypt(&r).unwrap().as_bytes(), b"after restore");
    assert_eq!(
        Session::unseal(
            &sealed_b,
            &StorageKey::from_bytes([8; 32]),
            b"session/alice"
        )
        .err(),
        Some(Error::AuthenticationFailed)
    );
    assert_eq!(
        sotto::Device::unseal(&sealed_b, &key, b"session/alice").err(),
        Some(Error::WrongType {
            expected: 0x21,
            found: 0x20
        })
    );
}

#[test]
fn restoring_an_old_state_never_reuses_key_and_nonce() {
    let mut rng = rng(14);
    let (mut a, mut b) = established(&mut rng);
    // Open Alice's sending chain, so that the restored state shares it.
    let warm = a.encrypt(&mut rng, b"warm").unwrap();
    b.decrypt(&warm).unwrap();
    let saved = a.to_bytes();
    let first = a.encrypt(&mut rng, b"attack at dawn").unwrap();
    // Crash before saving: the old state comes back and encrypts again at the same index.
    let mut restored = Session::from_bytes(&saved).unwrap();
    let second = restored.encrypt(&mut rng, b"attack at dawn").unwrap();
    let (Message::Ratchet(m1), Message::Ratchet(m2)) = (&first, &second) else {
        panic!()
    };
    assert_eq!(m1.message_number(), m2.message_number());
    assert_eq!(m1.ratchet_key_bytes(), m2.ratchet_key_bytes());
    // Same index and plaintext, yet different ciphertext: the fresh salt gave a fresh key and nonce.
    let l = layout::message(m1.as_bytes());
    for field in ["salt", "ciphertext"] {
        assert_ne!(l.slice(m1.as_bytes(), field), l.slice(m2.as_bytes(), field));
    }
    assert_eq!(b.decrypt(&second).unwrap().as_bytes(), b"attack at dawn");
    assert_eq!(
        decrypt_checked(&mut b, &first),
        Err(Error::DuplicateMessage)
    );
}

#[test]
fn decrypt_needs_no_randomness_and_is_deterministic() {
    let run = || {
        let mut rng = rng(15);
        let (mut a, mut b) = established(&mut rng);
        let mut wire = Vec::new();
        for i in 0..20u8 {
            let m = if i % 3 == 0 {
                b.encrypt(&mut rng, &[i]).unwrap()
            } else {
                a.encrypt(&mut rng, &[i]).unwrap()
            };
            if i % 3 == 0 {
                a.decrypt(&m).unwrap();
            } else {
                b.decrypt(&m).unwrap();
            }
            wire.extend_from_slice(m.as_bytes());
        }
        (wire, a.to_bytes().to_vec(), b.to_bytes().to_vec())
    };
    assert_eq!(run(), run());
}

#[test]
fn plaintext_size_limit() {
    let mut rng = rng(16);
    let (mut a, mut b) = established(&mut rng);
    let before = a.to_bytes();
    assert_eq!(
        a.encrypt(&mut rng, &vec![0; sotto::MAX_PLAINTEXT_LEN + 1])
            .err(),
        Some(Error::PlaintextTooLarge)
    );
    assert_eq!(*before, *a.to_bytes());
    let big = a
        .encrypt(&mut rng, &vec![7; sotto::MAX_PLAINTEXT_LEN])
        .unwrap();
    assert_eq!(b.decrypt(&big).unwrap().len(), sotto::MAX_PLAINTEXT_LEN);
    let empty = a.encrypt(&mut rng, b"").unwrap();
    assert_eq!(b.decrypt(&empty).unwrap().as_bytes(), b"");
}
