//! Opening sealed state: arbitrary bytes under the fixture's storage key
//! and context, as a session, a device, a group sender, receiver and store.
//! A sealed state that opens must restore to a state that re-encodes and
//! re-seals, and must not open under another context.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto::group::{GroupReceiver, GroupReceivers, GroupSender};
use sotto::{Device, Session, StorageKey};
use testkit::fuzz::{CONTEXT, STORAGE_KEY, rng};

fuzz_target!(|data: &[u8]| {
    let key = StorageKey::from_bytes(STORAGE_KEY);
    if let Ok(session) = Session::unseal(data, &key, CONTEXT) {
        let resealed = session.seal(&key, CONTEXT, &mut rng(1)).unwrap();
        let again = Session::unseal(&resealed, &key, CONTEXT).unwrap();
        assert_eq!(*again.to_bytes(), *session.to_bytes());
    }
    if let Ok(device) = Device::unseal(data, &key, CONTEXT) {
        let resealed = device.seal(&key, CONTEXT, &mut rng(1)).unwrap();
        let again = Device::unseal(&resealed, &key, CONTEXT).unwrap();
        assert_eq!(*again.to_bytes(), *device.to_bytes());
    }
    if let Ok(sender) = GroupSender::unseal(data, &key, CONTEXT) {
        let resealed = sender.seal(&key, CONTEXT, &mut rng(1)).unwrap();
        let again = GroupSender::unseal(&resealed, &key, CONTEXT).unwrap();
        assert_eq!(*again.to_bytes(), *sender.to_bytes());
    }
    if let Ok(receiver) = GroupReceiver::unseal(data, &key, CONTEXT) {
        let resealed = receiver.seal(&key, CONTEXT, &mut rng(1)).unwrap();
        let again = GroupReceiver::unseal(&resealed, &key, CONTEXT).unwrap();
        assert_eq!(*again.to_bytes(), *receiver.to_bytes());
    }
    if let Ok(store) = GroupReceivers::unseal(data, &key, CONTEXT) {
        let resealed = store.seal(&key, CONTEXT, &mut rng(1)).unwrap();
        let again = GroupReceivers::unseal(&resealed, &key, CONTEXT).unwrap();
        assert_eq!(*again.to_bytes(), *store.to_bytes());
    }
    // The wrong key, or another record's context, opens nothing that opens.
    let wrong = StorageKey::from_bytes([0xa5; 32]);
    let opens = Session::unseal(data, &key, CONTEXT).is_ok();
    assert!(!opens || Session::unseal(data, &wrong, CONTEXT).is_err());
    assert!(!opens || Session::unseal(data, &key, b"fuzz/other").is_err());
});
