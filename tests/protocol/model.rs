//! The reference model (testkit, written from SPEC.md) against sotto's
//! published constants and encodings: a model or a SPEC that drifted from
//! the crate shows here, before it shows as a confusing vector failure.

use std::ops::Range;

use sotto::group::{
    GROUP_SKIP_WINDOW, GroupId, GroupMessage, GroupReceiver, GroupReceivers, GroupSender,
    MAX_CHAINS_PER_SENDER, MAX_GROUP_JUMP, MAX_GROUP_MESSAGE_LEN, MAX_GROUP_RECEIVERS,
    MAX_GROUP_SKIPPED_KEYS, MAX_UNAUTHENTICATED_CHAINS_PER_OWNER, MAX_UNAUTHENTICATED_GROUP_CHAINS,
    SenderKeyDistribution,
};
use sotto::{IdentityKey, KemPreKey, OneTimePreKey, SignedPreKey, StorageKey};
use testkit::fixtures::{Kem, Member, bundle_with, connect, device, rng, wire};
use testkit::layout::{self, Layout};
use testkit::model::group::{self as model_group, message, receiver, sender, store, window};
use testkit::model::primitives as m;
use testkit::model::{Dev, Sess, keys as model_keys, sealed};

#[test]
fn model_limits_are_sottos() {
    assert_eq!(m::MAX_SKIP, sotto::MAX_SKIP);
    assert_eq!(m::MAX_SKIPPED_PER_CHAIN, sotto::MAX_SKIPPED_KEYS_PER_CHAIN);
    assert_eq!(m::MAX_SKIPPED_TOTAL, sotto::MAX_SKIPPED_KEYS);
    assert_eq!(m::MAX_CHAINS, sotto::MAX_RECEIVING_CHAINS);
    assert_eq!(m::MAX_SPKS, sotto::MAX_SIGNED_PREKEYS);
    assert_eq!(m::MAX_BASE_KEYS, sotto::MAX_BASE_KEYS_PER_SIGNED_PREKEY);
    assert_eq!(m::MAX_OPKS, sotto::MAX_ONE_TIME_PREKEYS);
    assert_eq!(m::MAX_LAST_RESORT, sotto::MAX_LAST_RESORT_KEM_PREKEYS);
    assert_eq!(m::MAX_KEM_OTKS, sotto::MAX_ONE_TIME_KEM_PREKEYS);
    assert_eq!(m::MAX_PLAINTEXT, sotto::MAX_PLAINTEXT_LEN);
    assert_eq!(m::MAX_MESSAGE, sotto::MAX_MESSAGE_LEN);
    assert_eq!(m::MAX_STATE, sotto::MAX_STATE_LEN);
    assert_eq!(m::MAX_SEAL_CONTEXT, sotto::MAX_SEAL_CONTEXT_LEN);
    assert_eq!(window::SKIP_WINDOW, GROUP_SKIP_WINDOW);
    assert_eq!(window::MAX_SKIPPED, MAX_GROUP_SKIPPED_KEYS);
    assert_eq!(window::MAX_JUMP, MAX_GROUP_JUMP);
    assert_eq!(store::MAX_CHAINS_PER_SENDER, MAX_CHAINS_PER_SENDER);
    assert_eq!(
        store::MAX_UNAUTH_PER_OWNER,
        MAX_UNAUTHENTICATED_CHAINS_PER_OWNER
    );
    assert_eq!(store::MAX_UNAUTH, MAX_UNAUTHENTICATED_GROUP_CHAINS);
    assert_eq!(store::MAX_RECEIVERS, MAX_GROUP_RECEIVERS);
    assert_eq!(message::MAX_MESSAGE, MAX_GROUP_MESSAGE_LEN);
}

#[test]
fn model_lengths_are_sottos() {
    assert_eq!(
        message::DISTRIBUTION_LEN,
        SenderKeyDistribution::ENCODED_LEN
    );
    assert_eq!(sender::STATE_LEN, GroupSender::ENCODED_LEN);
    // A receiver's cache entry: index (u32) and key.
    assert_eq!(
        receiver::FIXED_LEN + MAX_GROUP_SKIPPED_KEYS * (4 + 32),
        GroupReceiver::MAX_ENCODED_LEN
    );
    assert_eq!(model_keys::KEM_PREKEY_LEN, KemPreKey::ENCODED_LEN);
    assert_eq!(2 + 32, IdentityKey::ENCODED_LEN);
    assert_eq!(2 + 4 + 32 + 64, SignedPreKey::ENCODED_LEN);
    assert_eq!(2 + 4 + 32, OneTimePreKey::ENCODED_LEN);
}

/// The layout's innermost fields tile the encoding: each starts where the
/// previous ended, and the last ends at the end.
fn tiles(what: &str, layout: &Layout, bytes: &[u8]) {
    let all: Vec<(&str, Range<usize>)> = layout.iter().collect();
    // A field that contains others (a store's embedded state, a prekey
    // message's ratchet message) is left out for its parts.
    let leaves = all.iter().filter(|(_, r)| {
        !all.iter()
            .any(|(_, o)| o != r && o.start >= r.start && o.end <= r.end && !o.is_empty())
    });
    let mut at = 0;
    for (name, range) in leaves {
        assert_eq!(
            range.start, at,
            "{what}: {name} starts where the last ended"
        );
        at = range.end;
    }
    assert_eq!(at, bytes.len(), "{what}: the fields cover the encoding");
    assert!(layout.len() > 3, "{what}: a layout of named fields");
}

/// `layout::of` knows the encoding, and its fields tile it.
fn covered(what: &str, bytes: &[u8]) {
    let layout = layout::of(bytes).unwrap_or_else(|| panic!("{what}: no layout"));
    tiles(what, &layout, bytes);
}

#[test]
fn layouts_tile_sottos_encodings_and_the_model_reencodes_them() {
    let mut rng = rng(90);
    let mut alice = device(&mut rng);
    let mut bob = device(&mut rng);
    // Every list of the device state non-empty: one-time prekeys of both
    // kinds, two signed and two last-resort KEM prekeys, a base key.
    bob.generate_one_time_prekeys(&mut rng, 3).unwrap();
    bob.generate_one_time_kem_prekeys(&mut rng, 2).unwrap();
    bob.rotate_signed_prekey(&mut rng, testkit::fixtures::NOW + 1)
        .unwrap();
    bob.rotate_last_resort_kem_prekey(&mut rng, testkit::fixtures::NOW + 1)
        .unwrap();

    // Public encodings.
    let bundle = bundle_with(&mut rng, &mut bob, true, Kem::OneTime);
    covered("bundle", &bundle.to_bytes());
    covered("identity key", &bob.identity_key().to_bytes());
    covered("signed prekey", &bob.signed_prekey().to_bytes());
    covered("KEM prekey", &bob.last_resort_kem_prekey().to_bytes());
    let opk = bob.generate_one_time_prekeys(&mut rng, 1).unwrap()[0];
    covered("one-time prekey", &opk.to_bytes());

    // Messages of both kinds, sessions with skipped keys and sending
    // chains on both sides.
    let (mut a, mut b) = connect(&mut rng, &alice, &mut bob);
    // Bob to Alice, still sending prekey messages (with a KEM ciphertext).
    let alice_bundle = bundle_with(&mut rng, &mut alice, true, Kem::LastResort);
    let mut c = sotto::Session::initiate(&bob, &mut rng, &alice_bundle.verify().unwrap()).unwrap();
    covered(
        "prekey message",
        c.encrypt(&mut rng, b"prekey").unwrap().as_bytes(),
    );
    c.encrypt(&mut rng, b"second").unwrap();
    let _skipped = wire(&mut a, &mut rng, b"1");
    let m2 = wire(&mut a, &mut rng, b"2");
    covered("ratchet message", m2.as_bytes());
    b.decrypt(&m2).unwrap();
    let r = wire(&mut b, &mut rng, b"r");
    a.decrypt(&r).unwrap();
    a.encrypt(&mut rng, b"3").unwrap();
    for state in [a.to_bytes(), b.to_bytes(), c.to_bytes()] {
        covered("session", &state);
        assert_eq!(Sess::decode(&state).unwrap().encode(), *state);
        assert_eq!(
            *sotto::Session::from_bytes(&state).unwrap().to_bytes(),
            *state
        );
    }
    for state in [alice.to_bytes(), bob.to_bytes()] {
        covered("device", &state);
        assert_eq!(Dev::decode(&state).unwrap().encode(), *state);
    }

    // Group encodings: a sender, a receiver with a cache, a store holding
    // an authenticated and an unauthenticated chain.
    let group = GroupId::from_bytes([5; 32]);
    let mut member = Member::new(&mut rng, group);
    let distribution = member.sender.distribution().to_bytes();
    covered("distribution", &distribution);
    // Over a session from the chain's owner (§15.7).
    let (mut to_bob, mut from_member) = connect(&mut rng, &member.device, &mut bob);
    let mut receiver = testkit::fixtures::deliver_distribution(
        &mut rng,
        &member.sender,
        &mut to_bob,
        &mut from_member,
    );
    member.sender.encrypt(&mut rng, b"skipped").unwrap();
    let message = member.sender.encrypt(&mut rng, b"read").unwrap();
    covered("group message", message.as_bytes());
    receiver
        .decrypt(&GroupMessage::from_bytes(message.as_bytes()).unwrap())
        .unwrap();
    assert_eq!(receiver.skipped_key_count(), 1);
    let mut store = GroupReceivers::new(group);
    store.import_unauthenticated(&distribution).unwrap();
    let other = Member::new(&mut rng, group);
    store
        .import_unauthenticated(&other.sender.distribution().to_bytes())
        .unwrap();
    store.decrypt(&message).unwrap();
    for (what, state) in [
        ("sender", member.sender.to_bytes()),
        ("receiver", receiver.to_bytes()),
        ("store", store.to_bytes()),
    ] {
        covered(what, &state);
    }
    assert_eq!(
        model_group::Sender::decode(&member.sender.to_bytes())
            .unwrap()
            .encode(),
        *member.sender.to_bytes()
    );
    assert_eq!(
        model_group::Receiver::decode(&receiver.to_bytes())
            .unwrap()
            .encode(),
        *receiver.to_bytes()
    );
    assert_eq!(
        model_group::Store::decode(&store.to_bytes())
            .unwrap()
            .encode(),
        *store.to_bytes()
    );

    let sealed_state = receiver
        .seal(&StorageKey::from_bytes([3; 32]), b"receiver/1", &mut rng)
        .unwrap();
    covered("sealed", &sealed_state);
    assert_eq!(
        layout::sealed(&sealed_state).range("salt").len() + 3,
        sealed::HEADER_LEN
    );
}

#[test]
fn secrets_lists_every_key_of_a_saved_state() {
    let mut rng = rng(91);
    let (a, _) = testkit::fixtures::established(&mut rng);
    let state = a.to_bytes();
    let secrets = layout::secrets(&state);
    let l = layout::session_state(&state);
    // The root key and the current receiving chain key: nothing else while
    // there is no sending chain and no skipped key.
    assert_eq!(
        secrets,
        vec![l.a32(&state, "root_key"), l.a32(&state, "chains[0].ck")]
    );
}
