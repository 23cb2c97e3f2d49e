//! PQXDH (SPEC §7) through the public API and on the wire bytes: every
//! combination of prekeys, the default policy refusing classical key
//! agreement in both directions, the KEM binding, tampered KEM ciphertexts,
//! and the per-signed-prekey replay rule (§6) where the v1 attack stood.

use sotto::{
    Device, Error, KeyAgreement, KeyAgreementPolicy, MAX_BASE_KEYS_PER_SIGNED_PREKEY, Message,
    PreKeyBundle, Session,
};
use testkit::fixtures::{Kem, NOW, bundle_with, device, initiate, prekey, rng, wire};
use testkit::fuzz::prekey_header_len;
use testkit::layout;

const CLASSICAL: KeyAgreementPolicy = KeyAgreementPolicy::ClassicalAllowed;

/// A prekey message's bytes with its KEM part removed and its flag cleared
/// (SPEC §9.2), as a downgrading network would.
fn strip_kem(bytes: &[u8]) -> Vec<u8> {
    let l = layout::message(bytes);
    assert_eq!(l.slice(bytes, "has_kem"), [1]);
    let mut out = bytes[..l.start("has_kem")].to_vec();
    out.push(0);
    out.extend_from_slice(&bytes[l.end_of("ct")..]);
    out
}

#[test]
fn every_prekey_combination_agrees() {
    let mut rng = rng(40);
    for one_time in [false, true] {
        for kem in [Kem::Classical, Kem::LastResort, Kem::OneTime] {
            let alice = device(&mut rng);
            let mut bob = device(&mut rng);
            let bundle = bundle_with(&mut rng, &mut bob, one_time, kem)
                .verify()
                .unwrap();
            let expected = if kem == Kem::Classical {
                // The default refuses a bundle without a KEM prekey.
                assert_eq!(
                    Session::initiate(&alice, &mut rng, &bundle).err(),
                    Some(Error::PostQuantumRequired)
                );
                KeyAgreement::X3dh
            } else {
                KeyAgreement::Pqxdh
            };
            let mut a = initiate(&mut rng, &alice, &bundle);
            assert_eq!(a.key_agreement(), expected);
            let first = wire(&mut a, &mut rng, b"hello");
            let p = prekey(&first);
            assert_eq!(p.one_time_prekey_id().is_some(), one_time);
            assert_eq!(p.kem_ciphertext().is_some(), kem != Kem::Classical);
            assert_eq!(
                first.as_bytes().len(),
                prekey_header_len(one_time, kem != Kem::Classical) + 58 + 5 + 16
            );
            let kem_count = bob.one_time_kem_prekey_count();
            let (mut b, hello) =
                Session::accept_with_policy(&mut bob, p, KeyAgreementPolicy::ClassicalAllowed)
                    .unwrap();
            assert_eq!(&*hello, b"hello");
            assert_eq!(hello.sender(), alice.identity_key());
            assert_eq!(b.key_agreement(), expected);
            // A one-time KEM prekey is gone once used; a last-resort one stays.
            let used = usize::from(kem == Kem::OneTime);
            assert_eq!(bob.one_time_kem_prekey_count(), kem_count - used);
            let reply = wire(&mut b, &mut rng, b"hi");
            assert_eq!(&*a.decrypt(&reply).unwrap(), b"hi");
        }
    }
}

#[test]
fn a_kem_bundle_is_always_pqxdh_and_a_classical_message_is_refused_by_default() {
    let mut rng = rng(41);
    let alice = device(&mut rng);
    let mut bob = device(&mut rng);
    // The opt-in cannot skip the KEM when the bundle has one.
    let bundle = bundle_with(&mut rng, &mut bob, false, Kem::LastResort);
    let a = Session::initiate_with_policy(&alice, &mut rng, &bundle.verify().unwrap(), CLASSICAL)
        .unwrap();
    assert_eq!(a.key_agreement(), KeyAgreement::Pqxdh);
    // A server that strips the KEM prekey from the bundle bytes.
    let bundle = bundle_with(&mut rng, &mut bob, false, Kem::LastResort);
    let stripped = PreKeyBundle::new(*bundle.identity(), *bundle.signed_prekey(), None, None);
    let stripped = PreKeyBundle::from_bytes(&stripped.to_bytes()).unwrap();
    assert_eq!(
        Session::initiate(&alice, &mut rng, &stripped.verify().unwrap()).err(),
        Some(Error::PostQuantumRequired)
    );
    // A classical prekey message: the responder's default refuses it, and
    // the device does not move.
    let classical = bundle_with(&mut rng, &mut bob, true, Kem::Classical);
    let mut a = initiate(&mut rng, &alice, &classical.verify().unwrap());
    let first = wire(&mut a, &mut rng, b"classical");
    let before = bob.to_bytes();
    assert_eq!(
        Session::accept(&mut bob, prekey(&first)).err(),
        Some(Error::PostQuantumRequired)
    );
    assert_eq!(*bob.to_bytes(), *before);
}

#[test]
fn stripping_or_swapping_the_kem_ciphertext_fails_and_changes_nothing() {
    let mut rng = rng(42);
    let alice = device(&mut rng);
    let mut bob = device(&mut rng);
    let bundle = bundle_with(&mut rng, &mut bob, true, Kem::OneTime);
    let verified = bundle.verify().unwrap();
    let mut a = Session::initiate(&alice, &mut rng, &verified).unwrap();
    let first = wire(&mut a, &mut rng, b"post-quantum");
    let before = bob.to_bytes();

    // Downgraded on the wire: refused by the default, and under the opt-in
    // the KEM binding and the associated data no longer match.
    let stripped = Message::from_bytes(&strip_kem(first.as_bytes())).unwrap();
    assert_eq!(prekey(&stripped).kem_prekey_id(), None);
    assert_eq!(
        Session::accept(&mut bob, prekey(&stripped)).err(),
        Some(Error::PostQuantumRequired)
    );
    assert_eq!(
        Session::accept_with_policy(&mut bob, prekey(&stripped), CLASSICAL).err(),
        Some(Error::AuthenticationFailed)
    );
    // Another encapsulation to the same KEM prekey, spliced in: it
    // decapsulates to an unrelated secret.
    let mut other = Session::initiate(&alice, &mut rng, &verified).unwrap();
    let other_first = wire(&mut other, &mut rng, b"other");
    let l = layout::message(first.as_bytes());
    let ct = l.range("ct");
    let mut spliced = first.as_bytes().to_vec();
    spliced[ct.clone()].copy_from_slice(&other_first.as_bytes()[ct.clone()]);
    let spliced = Message::from_bytes(&spliced).unwrap();
    // Every byte of the KEM part flipped, a sample of the ciphertext.
    let mut flips = vec![spliced];
    for at in l
        .range("kem_id")
        .chain(ct.clone().step_by(97))
        .chain([ct.end - 1])
    {
        let mut t = first.as_bytes().to_vec();
        t[at] ^= 0x20;
        flips.push(Message::from_bytes(&t).unwrap());
    }
    for m in &flips {
        let err = Session::accept(&mut bob, prekey(m)).err();
        assert!(
            matches!(
                err,
                Some(Error::AuthenticationFailed | Error::UnknownKemPreKey { .. })
            ),
            "{err:?}"
        );
        assert_eq!(
            *bob.to_bytes(),
            *before,
            "a failed accept changed the device"
        );
    }
    // The genuine message still goes through, once.
    let (_, text) = Session::accept(&mut bob, prekey(&first)).unwrap();
    assert_eq!(&*text, b"post-quantum");
    let kem_id = prekey(&first).kem_prekey_id().unwrap();
    let opk_id = prekey(&first).one_time_prekey_id().unwrap();
    assert_eq!(
        Session::accept(&mut bob, prekey(&first)).err(),
        Some(Error::UnknownOneTimePreKey { id: opk_id })
    );
    // Without a one-time prekey, the used one-time KEM prekey refuses it.
    let bundle = bundle_with(&mut rng, &mut bob, false, Kem::OneTime);
    let mut c = Session::initiate(&alice, &mut rng, &bundle.verify().unwrap()).unwrap();
    let m = wire(&mut c, &mut rng, b"once");
    let id = prekey(&m).kem_prekey_id().unwrap();
    assert_ne!(id, kem_id);
    Session::accept(&mut bob, prekey(&m)).unwrap();
    assert_eq!(
        Session::accept(&mut bob, prekey(&m)).err(),
        Some(Error::UnknownKemPreKey { id })
    );
}

/// Issue 10, point 3, where the attacker stands: a recorded replayable
/// prekey message (no one-time key of either kind) is refused after any
/// number of other accepted handshakes, for as long as its signed prekey is
/// held; at the bound the signed prekey refuses new replayable messages
/// rather than forgetting one; and after rotation out the replay fails with
/// `UnknownSignedPreKey`. Version 1 accepted the replay after 1,000
/// throwaway sessions.
#[test]
fn a_replayable_prekey_message_is_never_accepted_twice() {
    let mut rng = rng(43);
    let alice = device(&mut rng);
    let mut bob = device(&mut rng);
    let bundle = bundle_with(&mut rng, &mut bob, false, Kem::LastResort);
    let mut a = Session::initiate(&alice, &mut rng, &bundle.verify().unwrap()).unwrap();
    let recorded = wire(&mut a, &mut rng, b"say it once");
    let (_, text) = Session::accept(&mut bob, prekey(&recorded)).unwrap();
    assert_eq!(&*text, b"say it once");
    let spk = bob.signed_prekey().id();

    // Throwaway sessions fill the signed prekey's record (classical ones,
    // cheaper; the rule does not depend on the KEM).
    let mallory = device(&mut rng);
    let throwaway = bundle_with(&mut rng, &mut bob, false, Kem::Classical)
        .verify()
        .unwrap();
    for _ in 1..MAX_BASE_KEYS_PER_SIGNED_PREKEY {
        let mut m = initiate(&mut rng, &mallory, &throwaway);
        let first = wire(&mut m, &mut rng, b"x");
        Session::accept_with_policy(&mut bob, prekey(&first), CLASSICAL).unwrap();
    }
    let info = bob.signed_prekeys().last().unwrap();
    assert_eq!(info.base_key_count, MAX_BASE_KEYS_PER_SIGNED_PREKEY);
    let before = bob.to_bytes();
    assert_eq!(
        Session::accept(&mut bob, prekey(&recorded)).err(),
        Some(Error::DuplicatePreKeyMessage)
    );
    // At the bound a new replayable message is refused, not a replay let in.
    let mut m = initiate(&mut rng, &mallory, &throwaway);
    let one_more = wire(&mut m, &mut rng, b"one more");
    assert_eq!(
        Session::accept_with_policy(&mut bob, prekey(&one_more), CLASSICAL).err(),
        Some(Error::SignedPreKeyExhausted { id: spk })
    );
    assert_eq!(*bob.to_bytes(), *before);
    // Saved and restored, the record is kept.
    let mut restored = Device::from_bytes(&bob.to_bytes()).unwrap();
    assert_eq!(
        Session::accept(&mut restored, prekey(&recorded)).err(),
        Some(Error::DuplicatePreKeyMessage)
    );
    // A message naming a one-time prekey is not replayable and still goes
    // through; then rotation: still refused while held, then unknown.
    let fresh = bundle_with(&mut rng, &mut bob, true, Kem::LastResort);
    let mut f = Session::initiate(&alice, &mut rng, &fresh.verify().unwrap()).unwrap();
    Session::accept(&mut bob, prekey(&wire(&mut f, &mut rng, b"ok"))).unwrap();
    bob.rotate_signed_prekey(&mut rng, NOW + 1).unwrap();
    assert_eq!(
        Session::accept(&mut bob, prekey(&recorded)).err(),
        Some(Error::DuplicatePreKeyMessage)
    );
    for _ in 1..sotto::MAX_SIGNED_PREKEYS {
        bob.rotate_signed_prekey(&mut rng, NOW + 2).unwrap();
    }
    assert_eq!(
        Session::accept(&mut bob, prekey(&recorded)).err(),
        Some(Error::UnknownSignedPreKey { id: spk })
    );
}

#[test]
fn reset_after_restore_refuses_every_earlier_prekey_message() {
    let mut rng = rng(44);
    let alice = device(&mut rng);
    let mut bob = device(&mut rng);
    let backup = bob.to_bytes();
    let generation = bob.generation();
    let bundle = bundle_with(&mut rng, &mut bob, true, Kem::OneTime);
    let mut a = Session::initiate(&alice, &mut rng, &bundle.verify().unwrap()).unwrap();
    let first = wire(&mut a, &mut rng, b"before the crash");
    Session::accept(&mut bob, prekey(&first)).unwrap();
    let latest = bob.generation();
    assert!(latest > generation);

    // Bob's phone restores the older backup: it does not know the message
    // was accepted, and would accept it again.
    let mut restored = Device::from_bytes(&backup).unwrap();
    assert!(restored.generation() < latest, "the rollback is detectable");
    let (spk, kem) = restored
        .reset_prekeys_after_restore(&mut rng, NOW + 5, latest)
        .unwrap();
    assert!(restored.generation() > latest);
    assert_eq!(restored.signed_prekey(), spk);
    assert_eq!(restored.last_resort_kem_prekey(), kem);
    assert_eq!(restored.one_time_prekey_count(), 0);
    assert_eq!(restored.one_time_kem_prekey_count(), 0);
    let err = Session::accept(&mut restored, prekey(&first)).err();
    assert!(
        matches!(
            err,
            Some(Error::UnknownSignedPreKey { .. } | Error::UnknownOneTimePreKey { .. })
        ),
        "{err:?}"
    );
}
