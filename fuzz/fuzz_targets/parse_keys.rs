//! Key and bundle parsing. Whatever parses must re-encode to exactly the
//! input; verifying a parsed bundle must not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto::{IdentityKey, KemPreKey, OneTimePreKey, PreKeyBundle, SignedPreKey};

fuzz_target!(|data: &[u8]| {
    if let Ok(bundle) = PreKeyBundle::from_bytes(data) {
        assert_eq!(bundle.to_bytes(), data);
        let identity = *bundle.identity();
        let _ = bundle.clone().verify_for(&identity);
        let _ = bundle.verify();
    }
    if let Ok(identity) = IdentityKey::from_bytes(data) {
        assert_eq!(identity.to_bytes().as_slice(), data);
        let _ = identity.fingerprint().to_string();
    }
    if let Ok(spk) = SignedPreKey::from_bytes(data) {
        assert_eq!(spk.to_bytes(), data);
    }
    if let Ok(opk) = OneTimePreKey::from_bytes(data) {
        assert_eq!(opk.to_bytes(), data);
    }
    if let Ok(kem) = KemPreKey::from_bytes(data) {
        assert_eq!(kem.to_bytes(), data);
        let _ = (kem.id(), kem.kind());
    }
});
