//! PQXDH (SPEC §2, §5.5 to §5.7, §6, §7, §9.2, §10.2, §10.3): a first
//! message recomputed by hand from the primitives and the published labels,
//! every handshake shape, the policy both ways, the KEM binding, bundles
//! and KEM prekeys on their bytes, and the device's KEM prekeys. Fields are
//! found by their SPEC names through the testkit's layouts (on bytes only).

use alloc::vec::Vec;

use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_dalek::SigningKey;
use hkdf::Hkdf;
use hmac::{KeyInit, Mac};
use ml_kem::kem::KeyExport;
use ml_kem::{DecapsulationKey, MlKem1024};
use sha2::{Digest, Sha256, Sha512};
use testkit::layout;

use crate::KeyAgreementPolicy::{ClassicalAllowed, PostQuantumRequired};
use crate::testing::{Kem, TestRng, bundle_with, devices, prekey};
use crate::{
    Device, Error, KemPreKey, KemPreKeyKind, KeyAgreement, Message, PreKeyBundle, PreKeyMessage,
    Session,
};

fn x25519(k: &[u8], u: &[u8]) -> [u8; 32] {
    x25519_dalek::x25519(k.try_into().unwrap(), u.try_into().unwrap())
}

fn x25519_pub(k: &[u8]) -> [u8; 32] {
    x25519(k, &x25519_dalek::X25519_BASEPOINT_BYTES)
}

fn hkdf<const N: usize>(salt: &[u8], ikm: &[u8], info: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, &mut out)
        .unwrap();
    out
}

fn ml_kem_ek(seed: &[u8]) -> Vec<u8> {
    let seed: &[u8; 64] = seed.try_into().unwrap();
    let dk = DecapsulationKey::<MlKem1024>::from_seed((*seed).into());
    dk.encapsulation_key().to_bytes().to_vec()
}

/// Alice's first message to Bob, recomputed from the drawn secrets with
/// the primitives and SPEC's labels only (§2.1, §7.2, §7.4, §8.2 to §8.4,
/// §9): with a one-time prekey and a one-time KEM prekey (PQXDH), and with
/// neither (classical X3DH under the opt-in).
#[test]
fn a_first_message_recomputed_by_hand() {
    for pq in [true, false] {
        let mut a_rng = TestRng::new(31);
        let alice = Device::generate(&mut a_rng, 0).unwrap();
        let mut b_rng = TestRng::new(32);
        let mut bob = Device::generate(&mut b_rng, 0).unwrap();
        let mut p_rng = TestRng::new(33);
        let (opk, kem) = if pq {
            let opk = bob.generate_one_time_prekeys(&mut p_rng, 1).unwrap().pop();
            let kem = bob
                .generate_one_time_kem_prekeys(&mut p_rng, 1)
                .unwrap()
                .pop();
            (opk, kem)
        } else {
            (None, None)
        };
        let bundle = PreKeyBundle::new(*bob.identity_key(), bob.signed_prekey(), opk, kem)
            .verify()
            .unwrap();
        let mut i_rng = TestRng::new(34);
        let mut session =
            Session::initiate_with_policy(&alice, &mut i_rng, &bundle, ClassicalAllowed).unwrap();
        let message = session.encrypt(&mut i_rng, b"by hand").unwrap();
        let bytes = message.as_bytes();

        let seed_a = &a_rng.drawn[0];
        let ik_a = SigningKey::from_bytes(seed_a.as_slice().try_into().unwrap())
            .verifying_key()
            .to_bytes();
        let ik_b = SigningKey::from_bytes(b_rng.drawn[0].as_slice().try_into().unwrap())
            .verifying_key()
            .to_bytes();
        let idx_a = &Sha512::digest(seed_a)[..32];
        let idu_b = CompressedEdwardsY(ik_b)
            .decompress()
            .unwrap()
            .to_montgomery()
            .to_bytes();
        let spk_b = x25519_pub(&b_rng.drawn[1]);
        let (ek, m, dhs, salt) = (
            &i_rng.drawn[0],
            &i_rng.drawn[1],
            &i_rng.drawn[i_rng.drawn.len() - 2],
            &i_rng.drawn[i_rng.drawn.len() - 1],
        );

        let mut ikm = [0xffu8; 32].to_vec();
        ikm.extend_from_slice(&x25519(idx_a, &spk_b));
        ikm.extend_from_slice(&x25519(ek, &idu_b));
        ikm.extend_from_slice(&x25519(ek, &spk_b));
        let mut expected = Vec::from([2u8, 2]);
        expected.extend_from_slice(&ik_a);
        expected.extend_from_slice(&x25519_pub(ek));
        expected.extend_from_slice(&1u32.to_be_bytes());
        let kb = if pq {
            let opk_b = x25519_pub(&p_rng.drawn[0]);
            ikm.extend_from_slice(&x25519(ek, &opk_b));
            let kem_ek = ml_kem_ek(&p_rng.drawn[1]);
            let key =
                ml_kem::EncapsulationKey::<MlKem1024>::new(kem_ek.as_slice().try_into().unwrap())
                    .unwrap();
            let m: &[u8; 32] = m.as_slice().try_into().unwrap();
            let (ct, ss) = key.encapsulate_deterministic(m.into());
            ikm.extend_from_slice(&ss);
            expected.extend_from_slice(&[1, 0, 0, 0, 1, 1, 0, 0, 0, 2]);
            expected.extend_from_slice(&ct);
            let mut encoded = Vec::from([1u8]);
            encoded.extend_from_slice(&kem_ek);
            Sha256::new()
                .chain_update(b"sotto v2 kem binding")
                .chain_update(&encoded)
                .finalize()
        } else {
            expected.extend_from_slice(&[0, 0]);
            Sha256::new()
                .chain_update(b"sotto v2 kem binding")
                .chain_update([0])
                .finalize()
        };
        let info: &[u8] = if pq {
            b"sotto v2 pqxdh"
        } else {
            b"sotto v2 x3dh"
        };
        let sk = hkdf::<32>(&[0; 32], &ikm, info);
        assert_eq!(
            session.key_agreement(),
            if pq {
                KeyAgreement::Pqxdh
            } else {
                KeyAgreement::X3dh
            }
        );

        // The embedded ratchet message on Alice's first chain (§8.5).
        expected.extend_from_slice(&[2, 1]);
        expected.extend_from_slice(&x25519_pub(dhs));
        expected.extend_from_slice(&[0; 8]);
        expected.extend_from_slice(salt);
        assert_eq!(bytes[..expected.len()], expected[..]);
        let root = hkdf::<64>(&sk, &x25519(dhs, &spk_b), b"sotto v2 root");
        let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(&root[32..]).unwrap();
        mac.update(b"sotto v2 chain message");
        let mk = mac.finalize().into_bytes();
        let okm = hkdf::<44>(salt, &mk, b"sotto v2 message keys");
        let mut aad = Vec::new();
        aad.extend_from_slice(&ik_a);
        aad.extend_from_slice(&ik_b);
        aad.extend_from_slice(&kb);
        aad.extend_from_slice(&expected);
        let (ciphertext, tag) = bytes[expected.len()..].split_at(bytes.len() - expected.len() - 16);
        let mut plain = ciphertext.to_vec();
        crate::crypto::aead_open(
            okm[..32].try_into().unwrap(),
            okm[32..].try_into().unwrap(),
            &aad,
            &mut plain,
            tag.try_into().unwrap(),
        )
        .unwrap();
        assert_eq!(plain, b"by hand");
        let Message::PreKey(first) = message else {
            panic!("expected a prekey message");
        };
        let policy = if pq {
            PostQuantumRequired
        } else {
            ClassicalAllowed
        };
        let (bob_session, read) = Session::accept_with_policy(&mut bob, &first, policy).unwrap();
        assert_eq!(read.as_bytes(), b"by hand");
        assert_eq!(bob_session.key_agreement(), session.key_agreement());
        // The saved session holds KB after the two identities (§10.2).
        let state = bob_session.to_bytes();
        assert_eq!(
            layout::session_state(&state).slice(&state, "kem_binding"),
            kb.as_slice()
        );
    }
}

/// Every shape of handshake: with and without a one-time prekey, with a
/// one-time or a last-resort KEM prekey, and classical under the opt-in.
/// Both sides agree on the key agreement and talk both ways.
#[test]
fn every_handshake_shape_works() {
    for (i, one_time) in [false, true].into_iter().enumerate() {
        for (j, kem) in [Kem::OneTime, Kem::LastResort, Kem::Classical]
            .into_iter()
            .enumerate()
        {
            let mut rng = TestRng::new(u8::try_from(10 * i + j).unwrap());
            let (alice, mut bob) = devices(&mut rng);
            let bundle = bundle_with(&mut bob, &mut rng, one_time, kem);
            let mut to_bob =
                Session::initiate_with_policy(&alice, &mut rng, &bundle, ClassicalAllowed).unwrap();
            let first = prekey(to_bob.encrypt(&mut rng, b"hello").unwrap());
            assert_eq!(first.kem_prekey_id().is_some(), kem != Kem::Classical);
            assert_eq!(first.one_time_prekey_id().is_some(), one_time);
            let (mut to_alice, hello) =
                Session::accept_with_policy(&mut bob, &first, ClassicalAllowed).unwrap();
            assert_eq!(hello.as_bytes(), b"hello");
            let expected = if kem == Kem::Classical {
                KeyAgreement::X3dh
            } else {
                KeyAgreement::Pqxdh
            };
            assert_eq!(to_bob.key_agreement(), expected);
            assert_eq!(to_alice.key_agreement(), expected);
            let reply = to_alice.encrypt(&mut rng, b"reply").unwrap();
            assert_eq!(to_bob.decrypt(&reply).unwrap().as_bytes(), b"reply");
            let again = to_bob.encrypt(&mut rng, b"again").unwrap();
            assert!(matches!(again, Message::Ratchet(_)));
            assert_eq!(to_alice.decrypt(&again).unwrap().as_bytes(), b"again");
            // Saved and restored, both sessions keep their key agreement.
            let restored = Session::from_bytes(&to_bob.to_bytes()).unwrap();
            assert_eq!(restored.key_agreement(), expected);
        }
    }
}

/// No downgrade (SPEC §7.1): under the default policy the initiator refuses
/// a bundle without a KEM prekey (drawing nothing) and the responder a
/// message without a KEM ciphertext (unchanged); stripping the KEM part
/// from a PQXDH message does not get it accepted under the opt-in either;
/// a bundle with a KEM prekey gives PQXDH whatever the policy.
#[test]
fn downgrades_are_refused() {
    let mut rng = TestRng::new(40);
    let (alice, mut bob) = devices(&mut rng);
    let classical = bundle_with(&mut bob, &mut rng, false, Kem::Classical);
    let draws = rng.draws.len();
    assert_eq!(
        Session::initiate(&alice, &mut rng, &classical).err(),
        Some(Error::PostQuantumRequired)
    );
    assert_eq!(rng.draws.len(), draws);

    let mut x3dh =
        Session::initiate_with_policy(&alice, &mut rng, &classical, ClassicalAllowed).unwrap();
    let first = prekey(x3dh.encrypt(&mut rng, b"x3dh").unwrap());
    let before = bob.to_bytes();
    assert_eq!(
        Session::accept(&mut bob, &first).err(),
        Some(Error::PostQuantumRequired)
    );
    assert_eq!(*bob.to_bytes(), *before);

    let pq = bundle_with(&mut bob, &mut rng, false, Kem::OneTime);
    let mut session =
        Session::initiate_with_policy(&alice, &mut rng, &pq, ClassicalAllowed).unwrap();
    assert_eq!(session.key_agreement(), KeyAgreement::Pqxdh);
    let first = prekey(session.encrypt(&mut rng, b"pq").unwrap());
    // No one-time prekey: strip the KEM id and ciphertext, and clear the
    // KEM flag.
    let mut stripped = first.as_bytes().to_vec();
    let l = layout::message(&stripped);
    assert_eq!(l.slice(&stripped, "has_opk"), [0]);
    assert_eq!(l.slice(&stripped, "has_kem"), [1]);
    stripped.splice(l.start("has_kem")..l.end_of("ct"), [0]);
    let stripped = prekey(Message::from_bytes(&stripped).unwrap());
    assert_eq!(stripped.kem_prekey_id(), None);
    let before = bob.to_bytes();
    assert_eq!(
        Session::accept(&mut bob, &stripped).err(),
        Some(Error::PostQuantumRequired)
    );
    assert_eq!(
        Session::accept_with_policy(&mut bob, &stripped, ClassicalAllowed).err(),
        Some(Error::AuthenticationFailed)
    );
    assert_eq!(*bob.to_bytes(), *before);
    let (accepted, _) = Session::accept(&mut bob, &first).unwrap();
    assert_eq!(accepted.key_agreement(), KeyAgreement::Pqxdh);
}

/// Flipping any byte of a PQXDH prekey message's header (the KEM ciphertext
/// sampled) gets it refused, and the device is unchanged (SPEC §7.3, §8.4).
#[test]
fn tampered_prekey_messages_are_refused() {
    let mut rng = TestRng::new(41);
    let (alice, mut bob) = devices(&mut rng);
    let bundle = bundle_with(&mut bob, &mut rng, true, Kem::OneTime);
    let mut session = Session::initiate(&alice, &mut rng, &bundle).unwrap();
    let first = prekey(session.encrypt(&mut rng, b"tamper").unwrap());
    let bytes = first.as_bytes();
    let before = bob.to_bytes();
    let ct = layout::message(bytes).range("ct");
    let ciphertext = ct.clone().step_by(97).chain([ct.start, ct.end - 1]);
    let positions = (0..ct.start).chain(ciphertext).chain(ct.end..bytes.len());
    let mut refused = 0;
    for position in positions {
        let mut tampered = bytes.to_vec();
        tampered[position] ^= 0x01;
        if let Ok(Message::PreKey(m)) = Message::from_bytes(&tampered) {
            assert!(Session::accept(&mut bob, &m).is_err(), "byte {position}");
        }
        assert_eq!(*bob.to_bytes(), *before, "byte {position}");
        refused += 1;
    }
    assert!(refused > 150);
    Session::accept(&mut bob, &first).unwrap();
}

/// A ciphertext made for another KEM key decapsulates to an unrelated
/// secret: the message fails its tag (SPEC §7.3 step 10).
#[test]
fn a_ciphertext_for_another_key_fails_the_tag() {
    let mut rng = TestRng::new(42);
    let (alice, mut bob) = devices(&mut rng);
    let one_time = bundle_with(&mut bob, &mut rng, false, Kem::OneTime);
    let last_resort = bundle_with(&mut bob, &mut rng, false, Kem::LastResort);
    let mut a = Session::initiate(&alice, &mut rng, &one_time).unwrap();
    let mut b = Session::initiate(&alice, &mut rng, &last_resort).unwrap();
    let a = prekey(a.encrypt(&mut rng, b"a").unwrap());
    let b = prekey(b.encrypt(&mut rng, b"b").unwrap());
    let mut swapped = a.as_bytes().to_vec();
    layout::message(&swapped).put(&mut swapped, "ct", b.kem_ciphertext().unwrap());
    let swapped = prekey(Message::from_bytes(&swapped).unwrap());
    let before = bob.to_bytes();
    assert_eq!(
        Session::accept(&mut bob, &swapped).err(),
        Some(Error::AuthenticationFailed)
    );
    assert_eq!(*bob.to_bytes(), *before);
}

/// The replay rule with KEM prekeys (SPEC §6): a message on the last-resort
/// KEM prekey without a one-time prekey is replayable, recorded, and
/// refused again; one on a one-time KEM prekey deletes it; an unknown KEM
/// prekey id is refused; the lookup order is signed prekey, base key,
/// one-time prekey, KEM prekey (§7.3).
#[test]
fn kem_prekeys_and_the_replay_rule() {
    let mut rng = TestRng::new(43);
    let (alice, mut bob) = devices(&mut rng);
    let first_message = |bob: &mut Device, rng: &mut TestRng, kem| -> PreKeyMessage {
        let bundle = bundle_with(bob, rng, false, kem);
        let mut session = Session::initiate(&alice, rng, &bundle).unwrap();
        prekey(session.encrypt(rng, b"hello").unwrap())
    };
    let last_resort = first_message(&mut bob, &mut rng, Kem::LastResort);
    Session::accept(&mut bob, &last_resort).unwrap();
    assert_eq!(bob.signed_prekeys().last().unwrap().base_key_count, 1);
    assert_eq!(
        Session::accept(&mut bob, &last_resort).err(),
        Some(Error::DuplicatePreKeyMessage)
    );

    let one_time = first_message(&mut bob, &mut rng, Kem::OneTime);
    assert_eq!(bob.one_time_kem_prekey_count(), 1);
    Session::accept(&mut bob, &one_time).unwrap();
    assert_eq!(bob.one_time_kem_prekey_count(), 0);
    assert_eq!(bob.signed_prekeys().last().unwrap().base_key_count, 1);
    let id = one_time.kem_prekey_id().unwrap();
    assert_eq!(
        Session::accept(&mut bob, &one_time).err(),
        Some(Error::UnknownKemPreKey { id })
    );

    // An unknown KEM id comes after the signed and one-time prekeys.
    let fresh = first_message(&mut bob, &mut rng, Kem::LastResort);
    let mut unknown = fresh.as_bytes().to_vec();
    let l = layout::message(&unknown);
    l.put_u32(&mut unknown, "kem_id", 99);
    let unknown = prekey(Message::from_bytes(&unknown).unwrap());
    assert_eq!(
        Session::accept(&mut bob, &unknown).err(),
        Some(Error::UnknownKemPreKey { id: 99 })
    );
    let mut also_spk = unknown.as_bytes().to_vec();
    l.put_u32(&mut also_spk, "spk_id", 77);
    let also_spk = prekey(Message::from_bytes(&also_spk).unwrap());
    assert_eq!(
        Session::accept(&mut bob, &also_spk).err(),
        Some(Error::UnknownSignedPreKey { id: 77 })
    );

    // Removing the last-resort KEM prekey a message names refuses it.
    bob.rotate_last_resort_kem_prekey(&mut rng, 1).unwrap();
    let old = fresh.kem_prekey_id().unwrap();
    bob.remove_last_resort_kem_prekey(old).unwrap();
    assert_eq!(
        Session::accept(&mut bob, &fresh).err(),
        Some(Error::UnknownKemPreKey { id: old })
    );
}

/// A KEM prekey's encoding (SPEC §5.5) and its checks in field order; its
/// signature covers id, kind, algorithm and key under the published label.
#[test]
fn kem_prekey_encoding_and_signature() {
    let mut rng = TestRng::new(44);
    let mut bob = Device::generate(&mut rng, 0).unwrap();
    let kem = bob
        .generate_one_time_kem_prekeys(&mut rng, 1)
        .unwrap()
        .pop()
        .unwrap();
    let bytes = kem.to_bytes();
    assert_eq!(bytes.len(), KemPreKey::ENCODED_LEN);
    assert_eq!(bytes.len(), 1640);
    let l = layout::kem_prekey(&bytes);
    let field = |name| l.slice(&bytes, name);
    assert_eq!((field("version"), field("type")), (&[2][..], &[0x14][..]));
    assert_eq!(field("id"), kem.id().to_be_bytes());
    assert_eq!((field("kind"), field("alg")), (&[0][..], &[1][..]));
    assert_eq!(field("ek"), kem.key_bytes());
    assert_eq!(KemPreKey::from_bytes(&bytes).unwrap(), kem);
    let mut message = b"sotto v2 kem prekey".to_vec();
    message.extend_from_slice(&bytes[l.start("id")..l.end_of("ek")]);
    let signature = ed25519_dalek::Signature::from_slice(field("signature")).unwrap();
    bob.identity_key()
        .verifying_key()
        .verify_strict(&message, &signature)
        .unwrap();

    let broken = |name: &str, value: u8| {
        let mut b = bytes.clone();
        l.put_u8(&mut b, name, value);
        KemPreKey::from_bytes(&b).err()
    };
    assert_eq!(broken("kind", 2), Some(Error::InvalidEncoding), "kind");
    assert_eq!(broken("alg", 0), Some(Error::InvalidEncoding), "algorithm");
    // A 12-bit coefficient of 0xFFF (>= q) in the key: its first one.
    let mut b = bytes.clone();
    let ek = l.start("ek");
    b[ek] = 0xff;
    b[ek + 1] |= 0x0f;
    assert_eq!(
        KemPreKey::from_bytes(&b).err(),
        Some(Error::InvalidPublicKey)
    );
    l.put_u8(&mut b, "kind", 2);
    assert_eq!(
        KemPreKey::from_bytes(&b).err(),
        Some(Error::InvalidEncoding)
    );
    assert_eq!(
        KemPreKey::from_bytes(&bytes[..bytes.len() - 1]).err(),
        Some(Error::Truncated)
    );
    let mut long = bytes.clone();
    long.push(0);
    assert_eq!(
        KemPreKey::from_bytes(&long).err(),
        Some(Error::TrailingBytes)
    );

    // The kind is signed: a one-time prekey presented as last-resort fails.
    let mut relabelled = bytes.clone();
    l.put_u8(&mut relabelled, "kind", 1);
    let relabelled = KemPreKey::from_bytes(&relabelled).unwrap();
    assert_eq!(relabelled.kind(), KemPreKeyKind::LastResort);
    assert_eq!(
        relabelled.verify(bob.identity_key()),
        Err(Error::InvalidSignature)
    );
}

/// Bundle verification (SPEC §5.7) in its order: identity, signed prekey
/// signature, KEM prekey signature; a KEM prekey of another identity or a
/// forged signature is refused. The encodings have SPEC §5.6's lengths.
#[test]
fn bundles_verify_the_kem_prekey() {
    let mut rng = TestRng::new(45);
    let (mallory, mut bob) = devices(&mut rng);
    let opk = bob.generate_one_time_prekeys(&mut rng, 1).unwrap().pop();
    let kem = bob.last_resort_kem_prekey();
    let id = *bob.identity_key();
    let spk = bob.signed_prekey();
    for (o, k, len) in [
        (None, None, 136),
        (opk, None, 172),
        (None, Some(kem.clone()), 1774),
        (opk, Some(kem.clone()), 1810),
    ] {
        let bundle = PreKeyBundle::new(id, spk, o, k);
        let bytes = bundle.to_bytes();
        assert_eq!(bytes.len(), len);
        assert_eq!(PreKeyBundle::from_bytes(&bytes).unwrap(), bundle);
        assert!(bundle.verify_for(&id).is_ok());
    }
    assert_eq!(PreKeyBundle::MAX_ENCODED_LEN, 1810);

    let foreign = mallory.last_resort_kem_prekey();
    let bundle = PreKeyBundle::new(id, spk, None, Some(foreign.clone()));
    assert_eq!(bundle.clone().verify().err(), Some(Error::InvalidSignature));
    assert_eq!(
        bundle.verify_for(mallory.identity_key()).err(),
        Some(Error::IdentityMismatch)
    );
    let mut forged = kem.to_bytes();
    layout::kem_prekey(&forged).flip(&mut forged, "signature", 0, 1);
    let forged = KemPreKey::from_bytes(&forged).unwrap();
    let bundle = PreKeyBundle::new(id, spk, None, Some(forged));
    assert_eq!(bundle.verify().err(), Some(Error::InvalidSignature));
    // The bundle's KEM flag and fields decode in order.
    let mut bytes = PreKeyBundle::new(id, spk, None, Some(kem)).to_bytes();
    layout::bundle(&bytes).put_u8(&mut bytes, "has_kem", 2);
    assert_eq!(
        PreKeyBundle::from_bytes(&bytes).err(),
        Some(Error::InvalidEncoding)
    );
}

/// The device's KEM prekeys (SPEC §6): last-resort rotation and removal,
/// the one-time bound, one id counter for both kinds, and the saved layout
/// (§10.3) with its cross-list rule after the trailing-bytes check.
#[test]
fn device_kem_prekeys() {
    let mut rng = TestRng::new(46);
    let mut bob = Device::generate(&mut rng, 5).unwrap();
    assert_eq!(bob.last_resort_kem_prekey().id(), 1);
    let one_time = bob.generate_one_time_kem_prekeys(&mut rng, 2).unwrap();
    let ids: Vec<_> = one_time.iter().map(KemPreKey::id).collect();
    assert_eq!(ids, [2, 3]);
    assert!(one_time.iter().all(|k| k.kind() == KemPreKeyKind::OneTime));
    for now in [10, 20, 30, 40] {
        let kem = bob.rotate_last_resort_kem_prekey(&mut rng, now).unwrap();
        assert_eq!(kem.kind(), KemPreKeyKind::LastResort);
        assert_eq!(bob.last_resort_kem_prekey(), kem);
    }
    let held: Vec<_> = bob
        .last_resort_kem_prekeys()
        .map(|i| (i.id, i.created))
        .collect();
    assert_eq!(held, [(4, 10), (5, 20), (6, 30), (7, 40)]);
    assert_eq!(
        bob.remove_last_resort_kem_prekey(7),
        Err(Error::UnknownKemPreKey { id: 7 })
    );
    assert_eq!(
        bob.remove_last_resort_kem_prekey(2),
        Err(Error::UnknownKemPreKey { id: 2 })
    );
    bob.remove_last_resort_kem_prekey(5).unwrap();
    let before = bob.to_bytes();
    assert_eq!(
        bob.generate_one_time_kem_prekeys(&mut rng, 99).err(),
        Some(Error::TooManyPreKeys)
    );
    assert!(
        bob.generate_one_time_kem_prekeys(&mut rng, 0)
            .unwrap()
            .is_empty()
    );
    assert_eq!(*bob.to_bytes(), *before);

    let bytes = bob.to_bytes();
    let restored = Device::from_bytes(&bytes).unwrap();
    assert_eq!(*restored.to_bytes(), *bytes);
    assert_eq!(
        restored.last_resort_kem_prekey(),
        bob.last_resort_kem_prekey()
    );
    // The one-time KEM list ends the state: count 2, then id 2 (seed,
    // signature) and id 3. Making id 3 a last-resort id too:
    let l = layout::device_state(&bytes);
    assert_eq!(l.end_of("kem_otks[1].signature"), bytes.len());
    assert_eq!(l.u32(&bytes, "kem_otks[1].id"), 3);
    let mut shared = bytes.to_vec();
    l.put_u32(&mut shared, "kem_otks[1].id", 4);
    assert_eq!(
        Device::from_bytes(&shared).err(),
        Some(Error::InvalidEncoding)
    );
    shared.push(0);
    assert_eq!(
        Device::from_bytes(&shared).err(),
        Some(Error::TrailingBytes)
    );
    let mut order = bytes.to_vec();
    l.put_u32(&mut order, "kem_otks[1].id", 2);
    assert_eq!(
        Device::from_bytes(&order).err(),
        Some(Error::InvalidEncoding)
    );
}

/// The session's saved KEM fields (SPEC §10.2): the key agreement byte, and
/// the pending KEM flag, which must match it, checked when read.
#[test]
fn saved_sessions_keep_the_kem_fields() {
    let mut rng = TestRng::new(47);
    let (alice, mut bob) = devices(&mut rng);
    let bundle = bundle_with(&mut bob, &mut rng, false, Kem::LastResort);
    let mut session = Session::initiate(&alice, &mut rng, &bundle).unwrap();
    let first = prekey(session.encrypt(&mut rng, b"one").unwrap());
    let bytes = session.to_bytes();
    let l = layout::session_state(&bytes);
    assert_eq!(l.slice(&bytes, "key_agreement"), [1], "PQXDH");
    // has_pending, spk id, has_opk 0, has_kem 1, kem id, ciphertext.
    assert_eq!(l.slice(&bytes, "has_pending"), [1]);
    assert_eq!(l.slice(&bytes, "has_opk"), [0]);
    assert_eq!(l.slice(&bytes, "has_kem"), [1]);
    assert_eq!(l.slice(&bytes, "ct"), first.kem_ciphertext().unwrap());
    let restored = Session::from_bytes(&bytes).unwrap();
    assert_eq!(*restored.to_bytes(), *bytes);
    // Every prekey message repeats the same KEM ciphertext until a reply.
    let second = prekey(session.encrypt(&mut rng, b"two").unwrap());
    assert_eq!(second.kem_ciphertext(), first.kem_ciphertext());

    let mut x3dh = bytes.to_vec();
    l.put_u8(&mut x3dh, "key_agreement", 0);
    assert_eq!(
        Session::from_bytes(&x3dh).err(),
        Some(Error::InvalidEncoding)
    );
    let mut bad = bytes.to_vec();
    l.put_u8(&mut bad, "key_agreement", 2);
    assert_eq!(
        Session::from_bytes(&bad).err(),
        Some(Error::InvalidEncoding)
    );
    // An X3DH session with a KEM flag of 0 parses; the same flag under
    // PQXDH does not.
    let mut no_kem = bytes[..l.start("has_kem")].to_vec();
    no_kem.push(0);
    no_kem.extend_from_slice(&bytes[l.end_of("ct")..]);
    assert_eq!(
        Session::from_bytes(&no_kem).err(),
        Some(Error::InvalidEncoding)
    );
    l.put_u8(&mut no_kem, "key_agreement", 0);
    assert!(Session::from_bytes(&no_kem).is_ok());
}
