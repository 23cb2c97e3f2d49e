//! Sending and receiving (SPEC §15.5, §15.8, §15.12): the check order, the
//! skip window and cache bound, strict verification before any key is
//! derived, all-or-nothing decrypts, and the cost bound of §15.10.

use alloc::vec;
use alloc::vec::Vec;

use super::{Budget, GROUP, OTHER_GROUP, device, message, resigned, rng, seed_of};
use crate::error::Error;
use crate::group::ratchet::count;
use crate::group::{
    GROUP_SKIP_WINDOW, GroupMessage, GroupReceiver, GroupSender, MAX_GROUP_JUMP,
    MAX_GROUP_SKIPPED_KEYS, Sender,
};
use crate::{Device, MAX_PLAINTEXT_LEN};

fn chain(seed: u8) -> (Device, GroupSender, GroupReceiver) {
    let mut r = rng(seed);
    let owner = device(&mut r);
    let sender = GroupSender::new(&mut r, GROUP, &owner).unwrap();
    let receiver =
        GroupReceiver::import_unauthenticated(&GROUP, &sender.distribution().to_bytes()).unwrap();
    (owner, sender, receiver)
}

/// Fails with `expected` and leaves every byte of the receiver as it was.
fn refused(receiver: &mut GroupReceiver, message: &GroupMessage, expected: Error) {
    let before = receiver.to_bytes();
    assert_eq!(receiver.decrypt(message).err(), Some(expected));
    assert_eq!(*receiver.to_bytes(), *before);
}

#[test]
fn in_order_messages_and_duplicates() {
    let (owner, mut s, mut r) = chain(1);
    let mut draw = rng(2);
    for n in 0..20u32 {
        let m = s.encrypt(&mut draw, &n.to_be_bytes()).unwrap();
        assert_eq!(s.generation(), u64::from(n) + 1);
        let read = r.decrypt(&m).unwrap();
        assert_eq!(read.as_bytes(), n.to_be_bytes());
        assert_eq!((read.index(), read.chain()), (n, s.chain()));
        assert_eq!(
            read.sender(),
            &Sender::Unauthenticated {
                claimed: *owner.identity_key()
            }
        );
        assert_eq!(r.generation(), u64::from(n) + 1);
        refused(&mut r, &m, Error::DuplicateMessage);
    }
    assert_eq!(r.skipped_key_count(), 0);
}

#[test]
fn decrypt_checks_in_order_and_changes_nothing_on_failure() {
    let (owner, mut s, mut r) = chain(3);
    let seed = seed_of(&s.to_bytes());
    let mut draw = rng(4);
    let first = s.encrypt(&mut draw, b"zero").unwrap();
    s.advance_for_test(5);
    let fifth = s.encrypt(&mut draw, b"five").unwrap();
    r.decrypt(&fifth).unwrap();
    assert_eq!((r.next_index(), r.skipped_key_count()), (6, 5));

    // 1. Another group or another chain.
    let other = GroupSender::new(&mut draw, GROUP, &owner).unwrap();
    let mut other = other;
    refused(
        &mut r,
        &other.encrypt(&mut draw, b"x").unwrap(),
        Error::UnknownGroupChain,
    );
    let moved = resigned(&first, &seed, |b| {
        b[message::GROUP..message::CHAIN].copy_from_slice(OTHER_GROUP.as_bytes())
    });
    refused(&mut r, &moved, Error::UnknownGroupChain);

    // 2. The signature, strictly, before any key is derived, even for a
    //    message far ahead (no step, derivation or key is computed).
    let far = {
        let mut b = first.as_bytes().to_vec();
        b[message::INDEX..message::SALT].copy_from_slice(&MAX_GROUP_JUMP.to_be_bytes());
        GroupMessage::from_bytes(&b).unwrap()
    };
    let _ = count::take();
    refused(&mut r, &far, Error::InvalidSignature);
    let mut bad = first.as_bytes().to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    refused(
        &mut r,
        &GroupMessage::from_bytes(&bad).unwrap(),
        Error::InvalidSignature,
    );
    // A malleated signature (S + L) is refused too.
    let mut malleated = first.as_bytes().to_vec();
    add_group_order(&mut malleated[last - 31..]);
    refused(
        &mut r,
        &GroupMessage::from_bytes(&malleated).unwrap(),
        Error::InvalidSignature,
    );
    assert_eq!(
        count::take(),
        count::Counts {
            steps: 0,
            derives: 0,
            keys: 0
        }
    );

    // 3. A cached index whose ciphertext was altered (and signed again by the
    //    chain's holder): the key stays cached.
    let altered = resigned(&first, &seed, |b| b[message::CIPHERTEXT + 4] ^= 1);
    refused(&mut r, &altered, Error::AuthenticationFailed);
    assert_eq!(r.decrypt(&first).unwrap().as_bytes(), b"zero");
    assert_eq!(r.skipped_key_count(), 4);

    // 4. Already read, or below next and not cached.
    refused(&mut r, &first, Error::DuplicateMessage);
    refused(&mut r, &fifth, Error::DuplicateMessage);

    // 5. Too far ahead, or the last index.
    for (index, ok) in [
        (6 + MAX_GROUP_JUMP + 1, false),
        (u32::MAX, false),
        (u32::MAX - 1, false),
        (6 + MAX_GROUP_JUMP, true),
    ] {
        let ahead = resigned(&first, &seed, |b| {
            b[message::INDEX..message::SALT].copy_from_slice(&index.to_be_bytes())
        });
        if ok {
            // In range: it gets as far as the AEAD (the key of `index` is not
            // the key of index 0).
            refused(&mut r, &ahead, Error::AuthenticationFailed);
        } else {
            refused(&mut r, &ahead, Error::GroupIndexOutOfRange { index });
        }
    }

    // 6. The tag, for a new index.
    s.advance_for_test(40);
    let later = s.encrypt(&mut draw, b"forty").unwrap();
    let tampered = resigned(&later, &seed, |b| b[message::CIPHERTEXT] ^= 1);
    refused(&mut r, &tampered, Error::AuthenticationFailed);
    let tampered_header = resigned(&later, &seed, |b| b[message::SALT + 5] ^= 1);
    refused(&mut r, &tampered_header, Error::AuthenticationFailed);
    assert_eq!(r.decrypt(&later).unwrap().as_bytes(), b"forty");

    // The furthest jump accepted decrypts.
    let next = r.next_index();
    s.advance_for_test(next + MAX_GROUP_JUMP);
    let furthest = s.encrypt(&mut draw, b"far").unwrap();
    assert_eq!(r.decrypt(&furthest).unwrap().as_bytes(), b"far");
}

/// Adds the Ed25519 group order L to a little-endian 32-byte scalar.
fn add_group_order(s: &mut [u8]) {
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut carry = 0u16;
    for (b, l) in s.iter_mut().zip(L) {
        let sum = u16::from(*b) + u16::from(l) + carry;
        *b = u8::try_from(sum & 0xff).unwrap();
        carry = sum >> 8;
    }
}

#[test]
fn skipped_keys_are_the_window_below_the_message() {
    let (_, mut s, mut r) = chain(5);
    let mut draw = rng(6);
    let mut messages = Vec::new();
    for _ in 0..101 {
        messages.push(s.encrypt(&mut draw, b"m").unwrap());
    }
    // Index 10 from next 0: keys 0..=9 cached.
    r.decrypt(&messages[10]).unwrap();
    assert_eq!((r.next_index(), r.skipped_key_count()), (11, 10));
    // Index 100 from next 11: keys 68..=99, the 32 just below.
    r.decrypt(&messages[100]).unwrap();
    assert_eq!(r.skipped_key_count(), 10 + GROUP_SKIP_WINDOW as usize);
    for j in (68..100).rev().chain(0..10) {
        assert_eq!(
            r.decrypt(&messages[j]).unwrap().index(),
            u32::try_from(j).unwrap()
        );
    }
    for j in (10..68).chain([100]) {
        refused(&mut r, &messages[j], Error::DuplicateMessage);
    }
    assert_eq!(r.skipped_key_count(), 0);
}

#[test]
fn the_cache_keeps_the_highest_keys() {
    let (_, mut s, mut r) = chain(7);
    let mut draw = rng(8);
    let mut skipped = Vec::new();
    // Nine rounds of 33 messages delivering only the last: 288 keys offered.
    for _ in 0..9 {
        for _ in 0..GROUP_SKIP_WINDOW {
            skipped.push(s.encrypt(&mut draw, b"s").unwrap());
        }
        r.decrypt(&s.encrypt(&mut draw, b"last").unwrap()).unwrap();
    }
    assert_eq!(r.skipped_key_count(), MAX_GROUP_SKIPPED_KEYS);
    for m in &skipped[..32] {
        refused(&mut r, m, Error::DuplicateMessage);
    }
    for m in &skipped[32..] {
        r.decrypt(m).unwrap();
    }
    assert_eq!(
        r.to_bytes().len(),
        GroupReceiver::MAX_ENCODED_LEN - 256 * 36
    );
}

/// SPEC §15.10: a decrypt costs at most one jump (120 steps, 28
/// derivations) and 33 increments (33 steps, 9 derivations), 33 keys.
#[test]
fn decrypt_cost_is_bounded() {
    let targets = [
        1u32,
        40,
        0xFFFF,
        0x10_0000,
        MAX_GROUP_JUMP - 1,
        MAX_GROUP_JUMP,
        0x0FFF_FFF0,
        0x1000_0010,
    ];
    for (n, &j) in targets.iter().enumerate() {
        let (_, mut s, _) = chain(20 + u8::try_from(n).unwrap());
        let start = j.saturating_sub(MAX_GROUP_JUMP);
        s.advance_for_test(start);
        let mut r =
            GroupReceiver::import_unauthenticated(&GROUP, &s.distribution().to_bytes()).unwrap();
        s.advance_for_test(j);
        let m = s.encrypt(&mut rng(9), b"x").unwrap();
        let _ = count::take();
        r.decrypt(&m).unwrap();
        let c = count::take();
        assert!(
            c.steps <= 120 + 33 && c.derives <= 28 + 9 && c.keys <= 33,
            "{j:#x}: {c:?}"
        );
    }
}

#[test]
fn encrypt_checks_before_drawing() {
    let (owner, mut s, _) = chain(10);
    let before = s.to_bytes();
    let mut none = Budget::new(1, 0);
    assert_eq!(
        s.encrypt(&mut none, &vec![0; MAX_PLAINTEXT_LEN + 1]).err(),
        Some(Error::PlaintextTooLarge)
    );
    s.advance_for_test(u32::MAX);
    let at_end = s.to_bytes();
    assert_eq!(
        s.encrypt(&mut none, b"x").err(),
        Some(Error::ChainExhausted)
    );
    assert_eq!(*s.to_bytes(), *at_end);
    assert!(none.draws.is_empty());
    assert_eq!(
        s.encrypt(&mut none, &vec![0; MAX_PLAINTEXT_LEN + 1]).err(),
        Some(Error::PlaintextTooLarge)
    );
    // At the last usable index it still encrypts, once.
    let mut s = GroupSender::from_bytes(&before).unwrap();
    s.advance_for_test(u32::MAX - 1);
    let mut r =
        GroupReceiver::import_unauthenticated(&GROUP, &s.distribution().to_bytes()).unwrap();
    let m = s.encrypt(&mut rng(11), b"last").unwrap();
    assert_eq!(r.decrypt(&m).unwrap().index(), u32::MAX - 1);
    assert_eq!(
        s.encrypt(&mut rng(11), b"x").err(),
        Some(Error::ChainExhausted)
    );
    assert_eq!(s.owner(), owner.identity_key());
}

/// A rolled-back sender repeats an index with a new salt: a new key and
/// nonce, and receivers take only the first.
#[test]
fn a_repeated_index_gets_a_new_salt_and_is_read_once() {
    let (_, mut s, mut r) = chain(12);
    let saved = s.to_bytes();
    let first = s.encrypt(&mut rng(13), b"same").unwrap();
    let mut restored = GroupSender::from_bytes(&saved).unwrap();
    let second = restored.encrypt(&mut rng(14), b"same").unwrap();
    assert_eq!(first.index(), second.index());
    assert_ne!(first.salt(), second.salt());
    assert_ne!(
        first.as_bytes()[message::CIPHERTEXT..],
        second.as_bytes()[message::CIPHERTEXT..]
    );
    r.decrypt(&first).unwrap();
    refused(&mut r, &second, Error::DuplicateMessage);
}

#[test]
fn rotation_starts_a_new_chain() {
    let (owner, mut s, mut r) = chain(15);
    let mut draw = rng(16);
    let _ = s.encrypt(&mut draw, b"old").unwrap();
    let old_chain = *s.chain();
    let generation = s.generation();
    let d = s.rotate(&mut draw, &owner).unwrap();
    assert_ne!(s.chain(), &old_chain);
    assert_eq!(
        (s.index(), s.generation(), s.owner()),
        (0, generation + 1, owner.identity_key())
    );
    assert_eq!(
        (d.chain(), d.index(), d.owner()),
        (s.chain(), 0, owner.identity_key())
    );
    let m = s.encrypt(&mut draw, b"new").unwrap();
    refused(&mut r, &m, Error::UnknownGroupChain);
    let mut fresh = GroupReceiver::import_unauthenticated(&GROUP, &d.to_bytes()).unwrap();
    assert_eq!(fresh.decrypt(&m).unwrap().as_bytes(), b"new");
}

/// A decrypted group message never shows its bytes in `Debug` (the review's
/// `debug_leaks`), and gives them up only in memory zeroized on drop.
#[test]
fn a_group_plaintext_never_prints_its_bytes() {
    let (owner, mut s, mut r) = chain(17);
    let m = s.encrypt(&mut rng(18), b"group secret").unwrap();
    let read = r.decrypt(&m).unwrap();
    let shown = alloc::format!("{read:?}");
    assert!(!shown.contains("group secret"), "{shown}");
    assert!(!shown.contains("103, 114, 111, 117, 112"), "{shown}");
    assert!(shown.contains("len: 12"), "{shown}");
    assert!(shown.contains(&alloc::format!("{:?}", owner.identity_key())));
    assert_eq!((read.index(), read.chain()), (0, s.chain()));
    let bytes: zeroize::Zeroizing<Vec<u8>> = read.into_bytes();
    assert_eq!(&bytes[..], b"group secret");
}
