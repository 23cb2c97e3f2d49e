//! Group encodings: messages, distributions, sender and receiver states.
//! Whatever parses must re-encode to exactly the input, and a distribution
//! that parses must install as a receiver at its index.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto::group::{GroupMessage, GroupReceiver, GroupSender, SenderKeyDistribution};

fuzz_target!(|data: &[u8]| {
    let message = GroupMessage::from_bytes(data);
    assert_eq!(GroupMessage::from_vec(data.to_vec()), message);
    if let Ok(m) = &message {
        assert_eq!(m.as_bytes(), data);
        let _ = (m.group_id(), m.chain_id(), m.index());
    }
    if let Ok(d) = SenderKeyDistribution::from_bytes(data) {
        assert_eq!(*d.to_bytes(), *data);
        let r = GroupReceiver::import_unauthenticated(data).unwrap();
        assert_eq!(
            (
                r.group_id(),
                r.chain_id(),
                r.next_index(),
                r.skipped_key_count()
            ),
            (d.group_id(), d.chain_id(), d.index(), 0)
        );
        assert_eq!(r.signing_key_bytes(), d.signing_key_bytes());
    }
    if let Ok(s) = GroupSender::from_bytes(data) {
        assert_eq!(*s.to_bytes(), *data);
        let d = s.distribution();
        assert_eq!((d.chain_id(), d.index()), (s.chain_id(), s.index()));
    }
    if let Ok(r) = GroupReceiver::from_bytes(data) {
        assert_eq!(*r.to_bytes(), *data);
        assert!(r.skipped_key_count() <= sotto::group::MAX_GROUP_SKIPPED_KEYS);
    }
});
