//! Peer records (SPEC §16.11, type 0x25): whatever parses re-encodes to
//! exactly the input, and the calls that need no peer input run on it
//! without panicking; those that change it move its generation, and a
//! changed record parses again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto::sessions::PeerRecord;

fuzz_target!(|data: &[u8]| {
    let Ok(mut record) = PeerRecord::from_bytes(data) else {
        return;
    };
    assert_eq!(*record.to_bytes(), *data);
    let now = 1_700_000_000;
    let plan = record.plan_send(now);
    for d in record.devices() {
        let listed = d.stale_since.is_none();
        let planned = plan.ready.contains(&d.device)
            || plan.needs_bundle.contains(&d.device)
            || plan.blocked.contains(&d.device);
        assert_eq!(listed, planned, "the plan sorts exactly the listed devices");
    }
    let _ = record.fingerprint();
    let generation = record.generation();
    let expired = record.expire(now);
    if !expired.devices.is_empty() || expired.sessions > 0 {
        assert!(record.generation() > generation || generation == u64::MAX);
    }
    let generation = record.generation();
    record.after_restore(generation.saturating_add(1));
    if generation < u64::MAX {
        assert!(
            record
                .devices()
                .all(|d| d.active_base_key.is_none() && d.archived_sessions == 0)
        );
    }
    PeerRecord::from_bytes(&record.to_bytes()).unwrap();
});
