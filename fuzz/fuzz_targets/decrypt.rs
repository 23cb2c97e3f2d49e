//! Decrypting arbitrary bytes on both sides of a live session (built
//! deterministically once). A failed decrypt must leave the state
//! unchanged; a successful one must be a message that was really sent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto::Message;
use testkit::fuzz::{check_decrypt, fixture};

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let Ok(message) = Message::from_bytes(data) else {
        return;
    };
    check_decrypt(&f.alice, &message, &f.to_alice);
    check_decrypt(&f.bob, &message, &f.to_bob);
});
