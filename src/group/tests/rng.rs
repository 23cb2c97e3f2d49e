//! Failing randomness (SPEC §1, §15.12): every group call that draws fails
//! with `RandomnessUnavailable` at every draw position (before a draw,
//! inside it, at its end) and changes nothing; all randomness is drawn
//! before any state changes.

use alloc::vec;
use alloc::vec::Vec;

use super::{Budget, GROUP, device, rng};
use crate::error::Error;
use crate::group::{GroupReceiver, GroupReceivers, GroupSender};
use crate::sealed::StorageKey;

/// Budgets that fail at every position of draws of these sizes, in order:
/// at the start of each, one byte in, one byte short of its end.
fn failing_budgets(draws: &[usize]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut before = 0;
    for &d in draws {
        out.extend([before, before + 1, before + d - 1]);
        before += d;
    }
    out
}

#[test]
fn new_draws_256_then_32_bytes() {
    let mut r = rng(1);
    let owner = device(&mut r);
    let mut ok = Budget::new(2, 288);
    let sender = GroupSender::new(&mut ok, GROUP, &owner).unwrap();
    assert_eq!(ok.draws, [256, 32]);
    // The same seed and draws give the same chain.
    let again = GroupSender::new(&mut rng(2), GROUP, &owner).unwrap();
    assert_eq!(*again.to_bytes(), *sender.to_bytes());
    for budget in failing_budgets(&[256, 32]) {
        let mut failing = Budget::new(2, budget);
        assert_eq!(
            GroupSender::new(&mut failing, GROUP, &owner).err(),
            Some(Error::RandomnessUnavailable),
            "budget {budget}"
        );
    }
}

#[test]
fn rotate_changes_nothing_when_a_draw_fails() {
    let mut r = rng(3);
    let owner = device(&mut r);
    let mut sender = GroupSender::new(&mut r, GROUP, &owner).unwrap();
    let _ = sender.encrypt(&mut r, b"m").unwrap();
    let before = sender.to_bytes();
    for budget in failing_budgets(&[256, 32]) {
        let mut failing = Budget::new(4, budget);
        assert_eq!(
            sender.rotate(&mut failing, &owner).err(),
            Some(Error::RandomnessUnavailable),
            "budget {budget}"
        );
        assert_eq!(*sender.to_bytes(), *before, "budget {budget}");
    }
    // Another device than the owner's: refused before anything is drawn.
    let stranger = device(&mut r);
    let mut none = Budget::new(4, 0);
    assert_eq!(
        sender.rotate(&mut none, &stranger).err(),
        Some(Error::GroupOwnerMismatch)
    );
    assert!(none.draws.is_empty());
    assert_eq!(*sender.to_bytes(), *before);
    let mut ok = Budget::new(4, 288);
    sender.rotate(&mut ok, &owner).unwrap();
    assert_eq!(ok.draws, [256, 32]);
    assert_eq!(sender.generation(), 2);
}

#[test]
fn encrypt_changes_nothing_when_the_salt_draw_fails() {
    let mut r = rng(5);
    let owner = device(&mut r);
    let mut sender = GroupSender::new(&mut r, GROUP, &owner).unwrap();
    let before = sender.to_bytes();
    for budget in failing_budgets(&[16]) {
        let mut failing = Budget::new(6, budget);
        assert_eq!(
            sender.encrypt(&mut failing, b"m").err(),
            Some(Error::RandomnessUnavailable)
        );
        assert_eq!(*sender.to_bytes(), *before);
    }
    let mut ok = Budget::new(6, 16);
    let m = sender.encrypt(&mut ok, b"m").unwrap();
    assert_eq!(ok.draws, [16]);
    let d = GroupSender::from_bytes(&before)
        .unwrap()
        .distribution()
        .to_bytes();
    let mut receiver = GroupReceiver::import_unauthenticated(&GROUP, &d).unwrap();
    assert_eq!(receiver.decrypt(&m).unwrap().as_bytes(), b"m");
}

#[test]
fn sealing_a_group_state_fails_cleanly() {
    let mut r = rng(7);
    let owner = device(&mut r);
    let sender = GroupSender::new(&mut r, GROUP, &owner).unwrap();
    let receiver =
        GroupReceiver::import_unauthenticated(&GROUP, &sender.distribution().to_bytes()).unwrap();
    let mut store = GroupReceivers::new(GROUP);
    store
        .import_unauthenticated(&sender.distribution().to_bytes())
        .unwrap();
    let key = StorageKey::from_bytes([1; 32]);
    for budget in failing_budgets(&[32]) {
        let fail = || Budget::new(8, budget);
        assert_eq!(
            sender.seal(&key, b"c", &mut fail()).err(),
            Some(Error::RandomnessUnavailable)
        );
        assert_eq!(
            receiver.seal(&key, b"c", &mut fail()).err(),
            Some(Error::RandomnessUnavailable)
        );
        assert_eq!(
            store.seal(&key, b"c", &mut fail()).err(),
            Some(Error::RandomnessUnavailable)
        );
    }
    // The context bound is checked before anything is drawn.
    let mut none = Budget::new(8, 0);
    let long = vec![0u8; crate::MAX_SEAL_CONTEXT_LEN + 1];
    assert_eq!(
        store.seal(&key, &long, &mut none).err(),
        Some(Error::TooLarge)
    );
    assert!(none.draws.is_empty());
}
