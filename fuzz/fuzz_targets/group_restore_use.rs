//! Restoring arbitrary group state bytes, then using the result. A sender
//! restored from anything must encrypt messages its own distribution reads
//! (once); a receiver restored from anything must read the fixture's
//! messages only as sent, change nothing when it fails, and go into a store
//! (or be refused without changing it). Distributions are imported and used
//! the same way. Whatever parses re-encodes to exactly the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto::group::{GroupMessage, GroupReceiver, GroupSender, SenderKeyDistribution};
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
                assert_eq!(read.plaintext, sent.plaintext);
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

fn into_store(receiver: GroupReceiver) {
    let g = group_fixture();
    let mut store = restore_store(&g.store);
    let before = store_bytes(&store);
    if store.insert(receiver).is_err() {
        assert_eq!(
            store_bytes(&store),
            before,
            "failed insert changed the store"
        );
    }
    assert!(store.len() <= before.len() + 1);
}

fuzz_target!(|data: &[u8]| {
    let mut rng = rng(11);
    if let Ok(mut sender) = GroupSender::from_bytes(data) {
        assert_eq!(*sender.to_bytes(), *data);
        let mut own =
            GroupReceiver::import_unauthenticated(&sender.distribution().to_bytes()).unwrap();
        let before = sender.to_bytes();
        match sender.encrypt(&mut rng, b"after restore") {
            Ok(message) => {
                let again = GroupMessage::from_bytes(message.as_bytes()).unwrap();
                assert_eq!(again, message);
                assert_eq!(own.decrypt(&message).unwrap().plaintext, b"after restore");
                assert!(own.decrypt(&message).is_err(), "decrypted twice");
            }
            Err(_) => assert_eq!(*sender.to_bytes(), *before, "failed encrypt changed state"),
        }
        let rotated = sender.rotate(&mut rng);
        assert_eq!((rotated.index(), sender.index()), (0, 0));
    }
    if let Ok(mut receiver) = GroupReceiver::from_bytes(data) {
        assert_eq!(*receiver.to_bytes(), *data);
        read_fixture_messages(&mut receiver);
        into_store(receiver);
    }
    if SenderKeyDistribution::from_bytes(data).is_ok() {
        let mut receiver = GroupReceiver::import_unauthenticated(data).unwrap();
        read_fixture_messages(&mut receiver);
        into_store(receiver);
    }
});
