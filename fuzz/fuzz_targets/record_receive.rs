//! A peer record's receive path (SPEC §16.5, §16.6) on arbitrary bytes:
//! every message that parses goes through both fixture records, from
//! their peer's device and from a device they do not hold, and with the
//! wrong local device. A failure changes neither the record nor the
//! device; a success is a message that was really sent, with its payload,
//! and never decrypts twice. Bytes that parse as a record are then fed the
//! fixture's messages the same way.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto::Message;
use sotto::sessions::{DeviceId, PeerRecord};
use testkit::fuzz::{RECORD_DEVICE, check_record_decrypt, record_fixture};

fuzz_target!(|data: &[u8]| {
    let f = record_fixture();
    if let Ok(message) = Message::from_bytes(data) {
        check_record_decrypt(
            &f.alice,
            &f.alice_device,
            RECORD_DEVICE,
            &message,
            &f.to_alice,
        );
        check_record_decrypt(&f.bob, &f.bob_device, RECORD_DEVICE, &message, &f.to_bob);
        // Not held, and the wrong local device: failures that change nothing.
        check_record_decrypt(&f.alice, &f.alice_device, DeviceId(2), &message, &[]);
        check_record_decrypt(&f.alice, &f.bob_device, RECORD_DEVICE, &message, &[]);
    }
    if PeerRecord::from_bytes(data).is_ok() {
        for p in f.to_alice.iter().chain(&f.to_bob) {
            let m = Message::from_bytes(&p.bytes).unwrap();
            for device in [&f.alice_device, &f.bob_device] {
                let mut record = PeerRecord::from_bytes(data).unwrap();
                let mut d = sotto::Device::from_bytes(device).unwrap();
                if record.decrypt(&mut d, RECORD_DEVICE, &m, 1).is_err() {
                    assert_eq!(*record.to_bytes(), *data);
                    assert_eq!(*d.to_bytes(), **device);
                }
            }
        }
    }
});
