//! Restoring arbitrary state bytes, then using the result: encrypt, decrypt
//! the fixture's messages, accept, rotate both kinds of prekey, reset after
//! a restore, initiate PQXDH. Nothing may panic; a
//! state that parses must re-encode to exactly the input; failures change
//! nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto::{Device, Message, Session};
use testkit::fuzz::{bundle, fixture, rng};

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let mut rng = rng(7);
    if let Ok(mut session) = Session::from_bytes(data) {
        assert_eq!(*session.to_bytes(), *data);
        for p in f.to_alice.iter().chain(&f.to_bob) {
            let message = Message::from_bytes(&p.bytes).unwrap();
            let before = session.to_bytes();
            if session.decrypt(&message).is_err() {
                assert_eq!(*session.to_bytes(), *before);
            }
        }
        let before = session.to_bytes();
        match session.encrypt(&mut rng, b"after restore") {
            Ok(message) => {
                let again = Message::from_bytes(message.as_bytes()).unwrap();
                assert_eq!(again, message);
                // A session never accepts its own message.
                assert!(session.decrypt(&message).is_err());
            }
            Err(_) => assert_eq!(*session.to_bytes(), *before),
        }
    }
    if let Ok(mut device) = Device::from_bytes(data) {
        assert_eq!(*device.to_bytes(), *data);
        if let Ok(Message::PreKey(first)) = Message::from_bytes(&f.to_bob[0].bytes) {
            let before = device.to_bytes();
            if Session::accept(&mut device, &first).is_err() {
                assert_eq!(*device.to_bytes(), *before);
            }
        }
        let bundle = bundle().verify().unwrap();
        if let Ok(mut session) = Session::initiate(&device, &mut rng, &bundle) {
            session.encrypt(&mut rng, b"hi").unwrap();
        }
        let generation = device.generation();
        let _ = device.generate_one_time_prekeys(&mut rng, 2);
        let _ = device.generate_one_time_kem_prekeys(&mut rng, 1);
        let _ = device.rotate_signed_prekey(&mut rng, 2);
        let _ = device.rotate_last_resort_kem_prekey(&mut rng, 2);
        assert!(device.generation() >= generation);
        if device
            .reset_prekeys_after_restore(&mut rng, 3, generation)
            .is_ok()
        {
            assert!(device.generation() > generation);
            assert_eq!(device.one_time_prekey_count(), 0);
        }
        let _ = Device::from_bytes(&device.to_bytes()).unwrap();
    }
});
