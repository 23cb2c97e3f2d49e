//! Message parsing: either kind through `Message`, and each kind directly.
//! Whatever parses must re-encode to exactly the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto::{Message, PreKeyMessage, RatchetMessage};

fuzz_target!(|data: &[u8]| {
    let message = Message::from_bytes(data);
    if let Ok(m) = &message {
        assert_eq!(m.as_bytes(), data);
        assert_eq!(Message::from_vec(data.to_vec()).ok().as_ref(), Some(m));
    }
    let ratchet = RatchetMessage::from_vec(data.to_vec());
    let prekey = PreKeyMessage::from_vec(data.to_vec());
    if let Ok(r) = &ratchet {
        assert_eq!(r.as_bytes(), data);
        let _ = (
            r.ratchet_key_bytes(),
            r.previous_chain_length(),
            r.message_number(),
        );
    }
    if let Ok(p) = &prekey {
        assert_eq!(p.as_bytes(), data);
        let _ = (p.identity().fingerprint(), p.base_key_bytes());
        let _ = (p.signed_prekey_id(), p.one_time_prekey_id());
        assert_eq!(p.kem_prekey_id().is_some(), p.kem_ciphertext().is_some());
    }
    // `Message` dispatches on the type tag to exactly one of the two.
    match message {
        Ok(Message::Ratchet(m)) => assert_eq!(ratchet.ok(), Some(m)),
        Ok(Message::PreKey(m)) => assert_eq!(prekey.ok(), Some(*m)),
        Err(_) => assert!(ratchet.is_err() && prekey.is_err()),
    }
});
