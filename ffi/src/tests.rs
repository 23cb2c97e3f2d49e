//! Tests of the exported functions from Rust, for what the C and Python
//! clients cannot reach: a failing operating-system RNG, and the bundle
//! checks on prekeys of another device.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use core::ptr::{null, null_mut};

use crate::rng::fail_draws;
use crate::*;

fn empty() -> SottoBuffer {
    SottoBuffer {
        ptr: null_mut(),
        len: 0,
        id: 0,
    }
}

fn take(mut buffer: SottoBuffer) -> Vec<u8> {
    let bytes = if buffer.len == 0 {
        Vec::new()
    } else {
        // SAFETY: (test) a live buffer the library returned.
        unsafe { core::slice::from_raw_parts(buffer.ptr, buffer.len) }.to_vec()
    };
    // SAFETY: (test) as above.
    assert_eq!(unsafe { sotto_buffer_free(&mut buffer) }, SottoError::Ok);
    bytes
}

fn ok(code: SottoError) {
    assert_eq!(code, SottoError::Ok, "{}", error::last_error_message());
}

fn device() -> *mut SottoDevice {
    let mut out = null_mut();
    // SAFETY: (test) a valid slot.
    ok(unsafe { sotto_device_generate(7, &mut out) });
    out
}

fn generation(device: *mut SottoDevice) -> u64 {
    let mut g = u64::MAX;
    // SAFETY: (test) a live handle and a valid output.
    ok(unsafe { sotto_device_generation(device, &mut g) });
    g
}

fn one_time_prekeys(device: *mut SottoDevice, count: usize) -> Vec<u8> {
    let mut out = empty();
    // SAFETY: (test) as above.
    ok(unsafe { sotto_device_generate_one_time_prekeys(device, count, &mut out) });
    take(out)
}

fn one_time_kem_prekeys(device: *mut SottoDevice, count: usize) -> Vec<u8> {
    let mut out = empty();
    // SAFETY: (test) as above.
    ok(unsafe { sotto_device_generate_one_time_kem_prekeys(device, count, &mut out) });
    take(out)
}

fn bundle(device: *mut SottoDevice, opk: Option<&[u8]>, kem: Option<&[u8]>) -> SottoError {
    let (opk_ptr, opk_len) = opk.map_or((null(), 0), |k| (k.as_ptr(), k.len()));
    let (kem_ptr, kem_len) = kem.map_or((null(), 0), |k| (k.as_ptr(), k.len()));
    let mut out = empty();
    // SAFETY: (test) valid inputs and output.
    let code = unsafe { sotto_device_bundle(device, opk_ptr, opk_len, kem_ptr, kem_len, &mut out) };
    if code == SottoError::Ok {
        assert!(!take(out).is_empty());
    } else {
        assert!(out.ptr.is_null() && out.len == 0 && out.id == 0);
    }
    code
}

fn free_device(device: *mut SottoDevice) {
    // SAFETY: (test) a live handle, not used afterwards.
    ok(unsafe { sotto_device_free(device) });
}

/// A failing OS generator gives `SOTTO_ERROR_RANDOMNESS`, writes no output
/// and changes nothing (the generation stays, the handle is not poisoned).
#[test]
fn a_failing_rng_is_an_error_that_changes_nothing() {
    let alice = device();
    let bob = device();
    let before = generation(alice);

    fail_draws(true);
    let mut slot = null_mut();
    // SAFETY: (test) a valid slot.
    let generated = unsafe { sotto_device_generate(1, &mut slot) };
    assert_eq!(generated, SottoError::Randomness);
    assert!(slot.is_null());
    let mut out = empty();
    // SAFETY: (test) valid handle and output.
    let rotated = unsafe { sotto_device_rotate_signed_prekey(alice, 9, &mut out) };
    assert_eq!(rotated, SottoError::Randomness);
    // SAFETY: (test) as above.
    let kems = unsafe { sotto_device_generate_one_time_kem_prekeys(alice, 3, &mut out) };
    assert_eq!(kems, SottoError::Randomness);
    // SAFETY: (test) as above.
    let reset =
        unsafe { sotto_device_reset_prekeys_after_restore(alice, 9, 100, &mut out, &mut empty()) };
    assert_eq!(reset, SottoError::Randomness);
    let key = [1u8; 32];
    // SAFETY: (test) as above.
    let sealed = unsafe { sotto_device_seal(alice, key.as_ptr(), 32, null(), 0, &mut out) };
    assert_eq!(sealed, SottoError::Randomness);
    assert!(out.ptr.is_null() && out.len == 0 && out.id == 0);
    fail_draws(false);
    assert_eq!(generation(alice), before);
    let mut count = usize::MAX;
    // SAFETY: (test) as above.
    ok(unsafe { sotto_device_one_time_kem_prekey_count(alice, &mut count) });
    assert_eq!(count, 0);

    // A session and a group sender: encrypt with a failing RNG.
    let mut bundle_bytes = empty();
    // SAFETY: (test) as above.
    ok(unsafe { sotto_device_bundle(bob, null(), 0, null(), 0, &mut bundle_bytes) });
    let bundle_bytes = take(bundle_bytes);
    let mut session = null_mut();
    fail_draws(true);
    // SAFETY: (test) as above.
    let initiated = unsafe {
        sotto_session_initiate(
            alice,
            bundle_bytes.as_ptr(),
            bundle_bytes.len(),
            null(),
            0,
            &mut session,
        )
    };
    assert_eq!(initiated, SottoError::Randomness);
    assert!(session.is_null());
    fail_draws(false);
    // SAFETY: (test) as above.
    ok(unsafe {
        sotto_session_initiate(
            alice,
            bundle_bytes.as_ptr(),
            bundle_bytes.len(),
            null(),
            0,
            &mut session,
        )
    });
    let mut session_generation = u64::MAX;
    // SAFETY: (test) as above.
    ok(unsafe { sotto_session_encrypt(session, b"a".as_ptr(), 1, &mut out) });
    take(core::mem::replace(&mut out, empty()));
    // SAFETY: (test) as above.
    ok(unsafe { sotto_session_generation(session, &mut session_generation) });
    fail_draws(true);
    // A new ratchet key is not due, but the salt is drawn.
    // SAFETY: (test) as above.
    let encrypted = unsafe { sotto_session_encrypt(session, b"b".as_ptr(), 1, &mut out) };
    assert_eq!(encrypted, SottoError::Randomness);
    fail_draws(false);
    let mut after = u64::MAX;
    // SAFETY: (test) as above.
    ok(unsafe { sotto_session_generation(session, &mut after) });
    assert_eq!(after, session_generation);

    let group = [5u8; 32];
    let mut sender = null_mut();
    fail_draws(true);
    // SAFETY: (test) as above.
    let created = unsafe { sotto_group_sender_new(alice, group.as_ptr(), 32, &mut sender) };
    assert_eq!(created, SottoError::Randomness);
    fail_draws(false);
    // SAFETY: (test) as above.
    ok(unsafe { sotto_group_sender_new(alice, group.as_ptr(), 32, &mut sender) });
    fail_draws(true);
    // SAFETY: (test) as above.
    let rotated = unsafe { sotto_group_sender_rotate(sender, alice, &mut out) };
    assert_eq!(rotated, SottoError::Randomness);
    fail_draws(false);
    let mut sender_generation = u64::MAX;
    // SAFETY: (test) as above.
    ok(unsafe { sotto_group_sender_generation(sender, &mut sender_generation) });
    assert_eq!(sender_generation, 0);

    // SAFETY: (test) live handles, not used afterwards.
    ok(unsafe { sotto_group_sender_free(sender) });
    // SAFETY: (test) as above.
    ok(unsafe { sotto_session_free(session) });
    free_device(alice);
    free_device(bob);
}

/// `sotto_device_bundle` takes only prekeys this device issued and still
/// holds: not another device's, not a used one, not an old last-resort one.
#[test]
fn bundles_refuse_prekeys_the_device_does_not_hold() {
    let alice = device();
    let bob = device();
    let opks = one_time_prekeys(alice, 2);
    let bob_opks = one_time_prekeys(bob, 2);
    let kems = one_time_kem_prekeys(alice, 1);
    let bob_kems = one_time_kem_prekeys(bob, 1);
    let (opk1, opk2) = opks.split_at(SOTTO_ONE_TIME_PREKEY_LEN);
    let before = generation(alice);

    assert_eq!(bundle(alice, Some(opk1), None), SottoError::Ok);
    assert_eq!(bundle(alice, Some(opk2), Some(&kems)), SottoError::Ok);
    // Bob's prekeys carry ids Alice also issued, with other keys.
    let bob_opk = &bob_opks[..SOTTO_ONE_TIME_PREKEY_LEN];
    assert_eq!(
        bundle(alice, Some(bob_opk), None),
        SottoError::UnknownOneTimePrekey
    );
    assert_eq!(
        bundle(alice, None, Some(&bob_kems)),
        SottoError::UnknownKemPrekey
    );
    // An id Alice never issued.
    let mut unissued = opk1.to_vec();
    unissued[2..6].copy_from_slice(&77u32.to_be_bytes());
    assert_eq!(
        bundle(alice, Some(&unissued), None),
        SottoError::UnknownOneTimePrekey
    );
    // Bob's last-resort KEM prekey, and Alice's own after a rotation.
    let mut last_resort = empty();
    // SAFETY: (test) valid handle and output.
    ok(unsafe { sotto_device_last_resort_kem_prekey(bob, &mut last_resort) });
    let bob_last_resort = take(last_resort);
    assert_eq!(
        bundle(alice, None, Some(&bob_last_resort)),
        SottoError::UnknownKemPrekey
    );
    let mut old = empty();
    // SAFETY: (test) as above.
    ok(unsafe { sotto_device_last_resort_kem_prekey(alice, &mut old) });
    let old = take(old);
    assert_eq!(bundle(alice, None, Some(&old)), SottoError::Ok);
    let mut new = empty();
    // SAFETY: (test) as above.
    ok(unsafe { sotto_device_rotate_last_resort_kem_prekey(alice, 8, &mut new) });
    let new = take(new);
    assert_eq!(
        bundle(alice, None, Some(&old)),
        SottoError::UnknownKemPrekey
    );
    assert_eq!(bundle(alice, None, Some(&new)), SottoError::Ok);
    // Checking did not change the device (the rotation did, once).
    assert_eq!(generation(alice), before + 1);

    // Used prekeys are refused: Bob starts a session with opk1 and the
    // one-time KEM prekey, Alice accepts it.
    let mut b = empty();
    // SAFETY: (test) as above.
    ok(unsafe {
        sotto_device_bundle(
            alice,
            opk1.as_ptr(),
            opk1.len(),
            kems.as_ptr(),
            kems.len(),
            &mut b,
        )
    });
    let b = take(b);
    let mut session = null_mut();
    // SAFETY: (test) as above.
    ok(unsafe { sotto_session_initiate(bob, b.as_ptr(), b.len(), null(), 0, &mut session) });
    let mut wire = empty();
    // SAFETY: (test) as above.
    ok(unsafe { sotto_session_encrypt(session, b"hi".as_ptr(), 2, &mut wire) });
    let wire = take(wire);
    let (mut accepted, mut plaintext) = (null_mut(), null_mut());
    // SAFETY: (test) as above.
    ok(unsafe {
        sotto_session_accept(
            alice,
            wire.as_ptr(),
            wire.len(),
            &mut accepted,
            &mut plaintext,
        )
    });
    assert_eq!(
        bundle(alice, Some(opk1), None),
        SottoError::UnknownOneTimePrekey
    );
    assert_eq!(
        bundle(alice, None, Some(&kems)),
        SottoError::UnknownKemPrekey
    );
    assert_eq!(bundle(alice, Some(opk2), None), SottoError::Ok);

    // SAFETY: (test) live handles, not used afterwards.
    ok(unsafe { sotto_plaintext_free(plaintext) });
    // SAFETY: (test) as above.
    ok(unsafe { sotto_session_free(accepted) });
    // SAFETY: (test) as above.
    ok(unsafe { sotto_session_free(session) });
    free_device(alice);
    free_device(bob);
}

fn record_generation(record: *mut SottoPeerRecord) -> u64 {
    let mut g = u64::MAX;
    // SAFETY: (test) a live handle and a valid output.
    ok(unsafe { sotto_peer_record_generation(record, &mut g) });
    g
}

fn group_generation(group: *mut SottoGroupSession) -> u64 {
    let mut g = u64::MAX;
    // SAFETY: (test) as above.
    ok(unsafe { sotto_group_session_generation(group, &mut g) });
    g
}

/// The session layer's calls that draw randomness fail whole on a failing
/// OS generator: `SOTTO_ERROR_RANDOMNESS`, no output, generations unchanged.
#[test]
fn the_session_layer_fails_whole_on_a_failing_rng() {
    let alice = device();
    let bob = device();
    let mut bob_id = empty();
    // SAFETY: (test) valid handle and output.
    ok(unsafe { sotto_device_identity_key(bob, &mut bob_id) });
    let bob_id = take(bob_id);
    let mut entry = SottoDeviceListEntry {
        device: 1,
        identity_key: [0; SOTTO_IDENTITY_KEY_LEN],
    };
    entry.identity_key.copy_from_slice(&bob_id);
    let mut record = null_mut();
    // SAFETY: (test) valid inputs and slot.
    ok(unsafe { sotto_peer_record_new(b"bob".as_ptr(), 3, alice, &mut record) });
    // SAFETY: (test) a zeroed plain C struct is a valid value.
    let mut changes: SottoDeviceListChanges = unsafe { core::mem::zeroed() };
    // SAFETY: (test) one valid entry and a valid output.
    ok(unsafe { sotto_peer_record_update_devices(record, &entry, 1, 7, &mut changes) });
    assert_eq!(changes.added_count, 1);
    let mut bundle = empty();
    // SAFETY: (test) valid handle and output.
    ok(unsafe { sotto_device_bundle(bob, null(), 0, null(), 0, &mut bundle) });
    let bundle = take(bundle);
    let before = record_generation(record);

    fail_draws(true);
    // SAFETY: (test) valid handles and input.
    let added =
        unsafe { sotto_peer_record_add_bundle(record, alice, 1, bundle.as_ptr(), bundle.len(), 7) };
    assert_eq!(added, SottoError::Randomness);
    fail_draws(false);
    assert_eq!(record_generation(record), before);
    // SAFETY: (test) as above.
    ok(unsafe { sotto_peer_record_add_bundle(record, alice, 1, bundle.as_ptr(), bundle.len(), 7) });
    let before = record_generation(record);

    fail_draws(true);
    let mut outbox = null_mut();
    // SAFETY: (test) valid handle, input and slot.
    let encrypted = unsafe { sotto_peer_record_encrypt(record, b"x".as_ptr(), 1, &mut outbox) };
    assert_eq!(encrypted, SottoError::Randomness);
    assert!(outbox.is_null());
    let mut out = empty();
    // SAFETY: (test) as above.
    let one = unsafe { sotto_peer_record_encrypt_to(record, 1, b"x".as_ptr(), 1, &mut out) };
    assert_eq!(one, SottoError::Randomness);
    let key = [3u8; 32];
    // SAFETY: (test) as above.
    let sealed = unsafe { sotto_peer_record_seal(record, key.as_ptr(), 32, null(), 0, &mut out) };
    assert_eq!(sealed, SottoError::Randomness);
    assert!(out.ptr.is_null() && out.len == 0 && out.id == 0);
    let mut group = null_mut();
    let group_id = [9u8; 32];
    // SAFETY: (test) as above.
    let created = unsafe {
        sotto_group_session_new(
            alice,
            group_id.as_ptr(),
            32,
            b"alice".as_ptr(),
            5,
            &mut group,
        )
    };
    assert_eq!(created, SottoError::Randomness);
    assert!(group.is_null());
    fail_draws(false);
    assert_eq!(record_generation(record), before);

    // SAFETY: (test) as above.
    ok(unsafe {
        sotto_group_session_new(
            alice,
            group_id.as_ptr(),
            32,
            b"alice".as_ptr(),
            5,
            &mut group,
        )
    });
    let mut added_member = false;
    // SAFETY: (test) as above.
    ok(unsafe { sotto_group_session_add_member(group, b"bob".as_ptr(), 3, &mut added_member) });
    let group_before = group_generation(group);
    let records = [record];
    fail_draws(true);
    // SAFETY: (test) one live record handle, a valid slot.
    let distributed =
        unsafe { sotto_group_session_distribute(group, records.as_ptr(), 1, &mut outbox) };
    assert_eq!(distributed, SottoError::Randomness);
    let mut own = null_mut();
    // SAFETY: (test) as above.
    ok(unsafe { sotto_peer_record_new_own(b"alice".as_ptr(), 5, 2, alice, &mut own) });
    let remaining = [own];
    // SAFETY: (test) as above.
    let removed = unsafe {
        sotto_group_session_remove_member(
            group,
            alice,
            b"bob".as_ptr(),
            3,
            remaining.as_ptr(),
            1,
            &mut outbox,
        )
    };
    assert_eq!(removed, SottoError::Randomness);
    assert!(outbox.is_null());
    fail_draws(false);
    assert_eq!(record_generation(record), before);
    assert_eq!(group_generation(group), group_before);
    // And with randomness, the fan-out reaches bob/1.
    // SAFETY: (test) as above.
    ok(unsafe { sotto_group_session_distribute(group, records.as_ptr(), 1, &mut outbox) });
    let mut count = 0;
    // SAFETY: (test) a live outbox and a valid output.
    ok(unsafe { sotto_outbox_message_count(outbox, &mut count) });
    assert_eq!(count, 1);

    // SAFETY: (test) live handles, not used afterwards.
    ok(unsafe { sotto_outbox_free(outbox) });
    // SAFETY: (test) as above.
    ok(unsafe { sotto_group_session_free(group) });
    // SAFETY: (test) as above.
    ok(unsafe { sotto_peer_record_free(record) });
    // SAFETY: (test) as above.
    ok(unsafe { sotto_peer_record_free(own) });
    free_device(alice);
    free_device(bob);
}
