//! Group sessions (SPEC §16.11, type 0x26): whatever parses re-encodes to
//! exactly the input, holds its local user as a member and a store of its
//! sender's group; adding a member and a restore keep it parseable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto::Device;
use sotto::sessions::{GroupSession, MAX_GROUP_MEMBERS, UserId};
use testkit::fuzz::rng;

fuzz_target!(|data: &[u8]| {
    let Ok(mut group) = GroupSession::from_bytes(data) else {
        return;
    };
    assert_eq!(*group.to_bytes(), *data);
    assert!(group.is_member(group.local_user()));
    assert_eq!(group.receivers().group_id(), group.group_id());
    assert!(group.members().count() <= MAX_GROUP_MEMBERS);
    let generation = group.generation();
    if let Ok(true) = group.add_member(UserId::new(b"fuzz-new-member").unwrap()) {
        assert!(group.generation() > generation || generation == u64::MAX);
    }
    let mut rng = rng(8);
    let local = Device::generate(&mut rng, 0).unwrap();
    let last = group.generation().saturating_add(1);
    if group.after_restore(&local, last, &mut rng).unwrap() {
        assert_eq!(group.receivers().len(), 0);
    }
    GroupSession::from_bytes(&group.to_bytes()).unwrap();
});
