//! Opening sealed state: arbitrary bytes under the fixture's storage key,
//! as a session, a device, a group sender and a group receiver. A sealed
//! state that opens must restore to a state that re-encodes and re-seals.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto::group::{GroupReceiver, GroupSender};
use sotto::{Device, Session, StorageKey};
use testkit::fuzz::{STORAGE_KEY, rng};

fuzz_target!(|data: &[u8]| {
    let key = StorageKey::from_bytes(STORAGE_KEY);
    if let Ok(session) = Session::unseal(data, &key) {
        let resealed = session.seal(&key, &mut rng(1)).unwrap();
        let again = Session::unseal(&resealed, &key).unwrap();
        assert_eq!(*again.to_bytes(), *session.to_bytes());
    }
    if let Ok(device) = Device::unseal(data, &key) {
        let resealed = device.seal(&key, &mut rng(1)).unwrap();
        let again = Device::unseal(&resealed, &key).unwrap();
        assert_eq!(*again.to_bytes(), *device.to_bytes());
    }
    if let Ok(sender) = GroupSender::unseal(data, &key) {
        let resealed = sender.seal(&key, &mut rng(1)).unwrap();
        let again = GroupSender::unseal(&resealed, &key).unwrap();
        assert_eq!(*again.to_bytes(), *sender.to_bytes());
    }
    if let Ok(receiver) = GroupReceiver::unseal(data, &key) {
        let resealed = receiver.seal(&key, &mut rng(1)).unwrap();
        let again = GroupReceiver::unseal(&resealed, &key).unwrap();
        assert_eq!(*again.to_bytes(), *receiver.to_bytes());
    }
    // The wrong key opens nothing.
    let wrong = StorageKey::from_bytes([0xa5; 32]);
    assert!(Session::unseal(data, &wrong).is_err() || Session::unseal(data, &key).is_err());
});
