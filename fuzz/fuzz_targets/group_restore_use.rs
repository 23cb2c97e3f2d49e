//! Restoring arbitrary group state bytes, then using the result. A sender
//! restored from anything must encrypt messages its own distribution reads
//! (once) when its owner proof verifies; a receiver or store restored from
//! anything must read the fixture's messages only as sent and change
//! nothing when it fails; a store takes the fixture's distributions under
//! its rules, all or nothing. Distributions are imported into the fixture
//! store the same way. Whatever parses re-encodes to exactly the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto::group::{GroupMessage, GroupReceiver, GroupReceivers, GroupSender};
use testkit::fuzz::{group_fixture, restore_store, rng, store_bytes};

fn read_fixture_messages(receiver: &mut GroupReceiver) {
    let g = group_fixture();
    for sent in g.to_store.iter().chain(&g.stale) {
        let message = GroupMessage::from_bytes(&sent.bytes).unwrap();
        let before = receiver.to_bytes();
        match receiver.decrypt(&message) {
            Ok(read) => {
                // Real messages only, so whatever decrypts must be the
                // plaintext that was sent.
                assert_eq!(read.as_bytes(), sent.plaintext);
                assert!(receiver.decrypt(&message).is_err(), "decrypted twice");
            }
            Err(_) => assert_eq!(
                *receiver.to_bytes(),
                *before,
                "failed decrypt changed state"
            ),
        }
        assert!(receiver.skipped_key_count() <= sotto::group::MAX_GROUP_SKIPPED_KEYS);
    }
}

fn read_with_store(store: &mut GroupReceivers) {
    let g = group_fixture();
    for sent in g.to_store.iter().chain(&g.stale) {
        let message = GroupMessage::from_bytes(&sent.bytes).unwrap();
        let before = store_bytes(store);
        match store.decrypt(&message) {
            Ok(read) => {
                assert_eq!(read.as_bytes(), sent.plaintext);
                assert!(store.decrypt(&message).is_err(), "decrypted twice");
            }
            Err(_) => assert_eq!(store_bytes(store), before, "failed decrypt changed state"),
        }
    }
}

/// Imports `distribution` into `store`: all or nothing, and bounded.
fn import_into(store: &mut GroupReceivers, distribution: &[u8]) {
    let before = store_bytes(store);
    let len = store.len();
    if store.import_unauthenticated(distribution).is_err() {
        assert_eq!(store_bytes(store), before, "failed import changed the store");
    }
    assert!(store.len() <= len + 1);
    assert!(store.len() <= sotto::group::MAX_GROUP_RECEIVERS);
}

fuzz_target!(|data: &[u8]| {
    let mut rng = rng(11);
    if let Ok(mut sender) = GroupSender::from_bytes(data) {
        assert_eq!(*sender.to_bytes(), *data);
        // The owner proof is not re-verified on load: a receiver exists
        // only if it verifies.
        let mut own =
            GroupReceiver::import_unauthenticated(sender.group_id(), &sender.distribution().to_bytes())
                .ok();
        let before = sender.to_bytes();
        match sender.encrypt(&mut rng, b"after restore") {
            Ok(message) => {
                let again = GroupMessage::from_bytes(message.as_bytes()).unwrap();
                assert_eq!(again, message);
                if let Some(own) = own.as_mut() {
                    assert_eq!(own.decrypt(&message).unwrap().as_bytes(), b"after restore");
                    assert!(own.decrypt(&message).is_err(), "decrypted twice");
                }
            }
            Err(_) => assert_eq!(*sender.to_bytes(), *before, "failed encrypt changed state"),
        }
        // Only the owner's device rotates a chain; another is refused and
        // changes nothing.
        let stranger = sotto::Device::generate(&mut rng, 0).unwrap();
        let before = sender.to_bytes();
        if sender.owner() != stranger.identity_key() {
            assert!(sender.rotate(&mut rng, &stranger).is_err());
            assert_eq!(*sender.to_bytes(), *before);
        }
    }
    if let Ok(mut receiver) = GroupReceiver::from_bytes(data) {
        assert_eq!(*receiver.to_bytes(), *data);
        read_fixture_messages(&mut receiver);
    }
    if let Ok(mut store) = GroupReceivers::from_bytes(data) {
        assert_eq!(*store.to_bytes(), *data);
        read_with_store(&mut store);
        for d in &group_fixture().distributions {
            import_into(&mut store, d);
        }
    }
    let mut store = restore_store(&group_fixture().store);
    import_into(&mut store, data);
    read_with_store(&mut store);
});
