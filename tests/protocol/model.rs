//! The reference model (testkit, written from SPEC.md) against sotto's
//! published constants and encodings: a model or a SPEC that drifted from
//! the crate shows here, before it shows as a confusing vector failure.

use sotto::group::{
    GROUP_SKIP_WINDOW, GroupReceiver, GroupSender, MAX_CHAINS_PER_SENDER, MAX_GROUP_JUMP,
    MAX_GROUP_MESSAGE_LEN, MAX_GROUP_RECEIVERS, MAX_GROUP_SKIPPED_KEYS, SenderKeyDistribution,
};
use sotto::{Device, Session};
use testkit::fixtures::{established, rng};
use testkit::layout::{self, Layout};
use testkit::model::group::{message, store, window};
use testkit::model::primitives as m;
use testkit::model::{Dev, Sess};

#[test]
fn model_limits_are_sottos() {
    assert_eq!(m::MAX_SKIP, sotto::MAX_SKIP);
    assert_eq!(m::MAX_SKIPPED_PER_CHAIN, sotto::MAX_SKIPPED_KEYS_PER_CHAIN);
    assert_eq!(m::MAX_SKIPPED_TOTAL, sotto::MAX_SKIPPED_KEYS);
    assert_eq!(m::MAX_CHAINS, sotto::MAX_RECEIVING_CHAINS);
    assert_eq!(m::MAX_SPKS, sotto::MAX_SIGNED_PREKEYS);
    assert_eq!(m::MAX_OPKS, sotto::MAX_ONE_TIME_PREKEYS);
    assert_eq!(m::MAX_RECENT, sotto::MAX_RECENT_BASE_KEYS);
    assert_eq!(m::MAX_PLAINTEXT, sotto::MAX_PLAINTEXT_LEN);
    assert_eq!(m::MAX_MESSAGE, sotto::MAX_MESSAGE_LEN);
    assert_eq!(m::MAX_STATE, sotto::MAX_STATE_LEN);
    assert_eq!(window::SKIP_WINDOW, GROUP_SKIP_WINDOW);
    assert_eq!(window::MAX_SKIPPED, MAX_GROUP_SKIPPED_KEYS);
    assert_eq!(window::MAX_JUMP, MAX_GROUP_JUMP);
    assert_eq!(store::MAX_CHAINS_PER_SENDER, MAX_CHAINS_PER_SENDER);
    assert_eq!(store::MAX_RECEIVERS, MAX_GROUP_RECEIVERS);
    assert_eq!(message::MAX_MESSAGE, MAX_GROUP_MESSAGE_LEN);
}

/// The layout's fields (nested names aside) tile the encoding: each starts
/// where the previous ended, the last ends at the end.
fn tiles(layout: &Layout, bytes: &[u8]) {
    let mut at = 0;
    let mut names: Vec<(&str, std::ops::Range<usize>)> = layout.iter().collect();
    // A field that contains others (an identity) is recorded after them.
    names.retain(|(_, r)| !names_contain_strictly(layout, r));
    for (name, range) in names {
        assert_eq!(range.start, at, "field {name} starts where the last ended");
        at = range.end;
    }
    assert_eq!(at, bytes.len(), "the fields cover the encoding");
}

fn names_contain_strictly(layout: &Layout, r: &std::ops::Range<usize>) -> bool {
    layout
        .iter()
        .any(|(_, o)| o != *r && o.start >= r.start && o.end <= r.end && !o.is_empty())
}

#[test]
fn layouts_tile_sottos_encodings_and_decode_to_the_same_bytes() {
    let mut rng = rng(90);
    let (mut a, mut b) = established(&mut rng);
    // A skipped key, and sending chains on both sides.
    let _skipped = a.encrypt(&mut rng, b"1").unwrap();
    let m2 = a.encrypt(&mut rng, b"2").unwrap();
    b.decrypt(&m2).unwrap();
    let r = b.encrypt(&mut rng, b"r").unwrap();
    a.decrypt(&r).unwrap();
    a.encrypt(&mut rng, b"3").unwrap();
    for state in [a.to_bytes(), b.to_bytes()] {
        tiles(&layout::session_state(&state), &state);
        assert_eq!(Sess::decode(&state).unwrap().encode(), *state);
        assert_eq!(*Session::from_bytes(&state).unwrap().to_bytes(), *state);
    }
    let mut device = Device::generate(&mut rng);
    device.generate_one_time_prekeys(&mut rng, 3).unwrap();
    device.rotate_signed_prekey(&mut rng).unwrap();
    let state = device.to_bytes();
    tiles(&layout::device_state(&state), &state);
    assert_eq!(Dev::decode(&state).unwrap().encode(), *state);

    let mut sender = GroupSender::new(&mut rng, sotto::group::GroupId::from_bytes([5; 32]));
    let distribution = sender.distribution().to_bytes();
    let mut receiver = GroupReceiver::accept(&distribution, &a).unwrap();
    sender.encrypt(&mut rng, b"skipped").unwrap();
    let message = sender.encrypt(&mut rng, b"read").unwrap();
    receiver.decrypt(&message).unwrap();
    tiles(
        &layout::group_message(message.as_bytes()),
        message.as_bytes(),
    );
    tiles(&layout::distribution(&distribution), &distribution);
    let d = SenderKeyDistribution::from_bytes(&distribution).unwrap();
    assert_eq!(
        layout::distribution(&distribution).u32(&distribution, "chain_id"),
        d.chain_id()
    );
    for state in [sender.to_bytes(), receiver.to_bytes()] {
        let l = layout::of(&state).unwrap();
        tiles(&l, &state);
    }
    let sealed = receiver
        .seal(&sotto::StorageKey::from_bytes([3; 32]), &mut rng)
        .unwrap();
    tiles(&layout::sealed(&sealed), &sealed);
}

#[test]
fn secrets_lists_every_key_of_a_saved_state() {
    let mut rng = rng(91);
    let (a, _) = established(&mut rng);
    let state = a.to_bytes();
    let secrets = layout::secrets(&state);
    let l = layout::session_state(&state);
    // The root key, the current receiving chain key: nothing else while
    // there is no sending chain and no skipped key.
    assert_eq!(
        secrets,
        vec![l.a32(&state, "root_key"), l.a32(&state, "chains[0].ck")]
    );
}
