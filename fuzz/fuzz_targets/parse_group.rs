//! Group encodings: messages, distributions, sender, receiver and store
//! states. Whatever parses must re-encode to exactly the input, and a
//! distribution that parses and whose owner proof verifies must install as
//! a receiver at its index.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto::group::{
    GroupMessage, GroupReceiver, GroupReceivers, GroupSender, SenderKeyDistribution,
};

fuzz_target!(|data: &[u8]| {
    let message = GroupMessage::from_bytes(data);
    assert_eq!(GroupMessage::from_vec(data.to_vec()), message);
    if let Ok(m) = &message {
        assert_eq!(m.as_bytes(), data);
        let _ = (m.group_id(), m.chain(), m.index(), m.salt());
    }
    if let Ok(d) = SenderKeyDistribution::from_bytes(data) {
        assert_eq!(*d.to_bytes(), *data);
        if let Ok(r) = GroupReceiver::import_unauthenticated(d.group_id(), data) {
            assert_eq!(
                (r.group_id(), r.chain(), r.next_index(), r.skipped_key_count()),
                (d.group_id(), d.chain(), d.index(), 0)
            );
            assert_eq!(r.sender().owner(), d.owner());
            assert!(!r.sender().is_authenticated());
        }
    }
    if let Ok(s) = GroupSender::from_bytes(data) {
        assert_eq!(*s.to_bytes(), *data);
        let d = s.distribution();
        assert_eq!((d.chain(), d.index()), (s.chain(), s.index()));
        assert_eq!(d.owner(), s.owner());
    }
    if let Ok(r) = GroupReceiver::from_bytes(data) {
        assert_eq!(*r.to_bytes(), *data);
        assert!(r.skipped_key_count() <= sotto::group::MAX_GROUP_SKIPPED_KEYS);
    }
    if let Ok(s) = GroupReceivers::from_bytes(data) {
        assert_eq!(*s.to_bytes(), *data);
        assert!(s.len() <= sotto::group::MAX_GROUP_RECEIVERS);
        assert!(s.iter().all(|r| r.group_id() == s.group_id()));
    }
});
