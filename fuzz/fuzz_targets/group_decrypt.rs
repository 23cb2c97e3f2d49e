//! Arbitrary group messages on a live receiver (keys cached, some indices
//! read) and on a store of three chains (two authenticated, one imported). The first byte picks whether the
//! rest is a whole message (0) or a message body that the target signs with
//! one of the fixture chains' real signing keys (1..=3), as a sender gone
//! bad would: that reaches the index and AEAD checks past the signature.
//! A failed decrypt must change nothing; a successful one must be exactly a
//! message that was sent, and must not decrypt twice.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto::group::{GroupMessage, GroupReceiver};
use testkit::fuzz::{check_group_plaintext, group_fixture, restore_store, sign_group, store_bytes};

fuzz_target!(|data: &[u8]| {
    let g = group_fixture();
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    let bytes = match usize::from(*mode % 4) {
        0 => rest.to_vec(),
        k => sign_group(&g.signing_seeds[k - 1], rest),
    };
    let Ok(message) = GroupMessage::from_vec(bytes) else {
        return;
    };

    let mut receiver = GroupReceiver::from_bytes(&g.receiver).unwrap();
    match receiver.decrypt(&message) {
        Ok(read) => {
            check_group_plaintext(&read, &message, &g.to_receiver);
            let after = receiver.to_bytes();
            assert!(receiver.decrypt(&message).is_err(), "decrypted twice");
            assert_eq!(*receiver.to_bytes(), *after);
        }
        Err(_) => assert_eq!(
            *receiver.to_bytes(),
            *g.receiver,
            "failed decrypt changed state"
        ),
    }

    let mut store = restore_store(&g.store);
    match store.decrypt(&message) {
        Ok(read) => {
            check_group_plaintext(&read, &message, &g.to_store);
            let after = store_bytes(&store);
            assert!(store.decrypt(&message).is_err(), "decrypted twice");
            assert_eq!(store_bytes(&store), after);
        }
        Err(_) => assert_eq!(
            store_bytes(&store),
            g.store,
            "failed decrypt changed the store"
        ),
    }
});
