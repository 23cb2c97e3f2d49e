//! The encodings of SPEC §15.5 (group message), §15.6 (distribution) and
//! §15.11 (sender, receiver and store states): fields at their offsets,
//! sizes, and every decoding rule with its error, in order.

use alloc::vec;
use alloc::vec::Vec;

use ed25519_dalek::VerifyingKey;

use super::{
    GROUP, OTHER_GROUP, chain_of, device, dist, message, owner_field, receiver, rng, sender,
    store_state,
};
use crate::codec::VERSION;
use crate::error::Error;
use crate::group::{
    GroupMessage, GroupReceiver, GroupReceivers, GroupSender, MAX_GROUP_MESSAGE_LEN,
    MAX_GROUP_RECEIVERS, MAX_GROUP_SKIPPED_KEYS, OWNER_LEN, SenderKeyDistribution,
};
use crate::sealed::{MAX_STATE_LEN, SavedState, StorageKey};
use crate::{IdentityKey, MAX_PLAINTEXT_LEN};

/// An Ed25519 encoding of small order (the identity point) and one that is
/// not a point at all (y = 2 has no x).
const SMALL_ORDER: [u8; 32] = {
    let mut b = [0u8; 32];
    b[0] = 1;
    b
};
const NOT_A_POINT: [u8; 32] = {
    let mut b = [0u8; 32];
    b[0] = 2;
    b
};

fn setup(seed: u8) -> (IdentityKey, GroupSender) {
    let mut r = rng(seed);
    let owner = device(&mut r);
    let sender = GroupSender::new(&mut r, GROUP, &owner).unwrap();
    (*owner.identity_key(), sender)
}

/// The sizes SPEC §15 states, for a 32-byte owner (the one-key identity of
/// v2): 166 + n, 486, 494, 9,589.
#[test]
fn sizes_follow_the_layouts() {
    assert_eq!(OWNER_LEN, 32);
    assert_eq!(SenderKeyDistribution::ENCODED_LEN, 486);
    assert_eq!(GroupSender::ENCODED_LEN, 494);
    assert_eq!(GroupReceiver::MAX_ENCODED_LEN, 9_589);
    assert_eq!(receiver::COUNT + 2 + MAX_GROUP_SKIPPED_KEYS * 36, 9_589);
    assert_eq!(MAX_GROUP_MESSAGE_LEN, 262_310);
    assert_eq!(MAX_GROUP_MESSAGE_LEN, 166 + MAX_PLAINTEXT_LEN);
    assert_eq!(dist::LEVELS + 256, SenderKeyDistribution::ENCODED_LEN);
    assert_eq!(sender::LEVELS + 256, GroupSender::ENCODED_LEN);
    // The largest store fits in a saved state, sealed too.
    let worst_store = store_state::ENTRIES
        + MAX_GROUP_RECEIVERS * (store_state::LENGTH_LEN + GroupReceiver::MAX_ENCODED_LEN);
    assert!(worst_store <= MAX_STATE_LEN - 51);
}

#[test]
fn group_message_fields_sit_at_their_offsets() {
    let (_, mut s) = setup(1);
    let mut r = rng(2);
    let _ = s.encrypt(&mut r, b"zero").unwrap();
    let message = s.encrypt(&mut r, b"one").unwrap();
    let bytes = message.as_bytes();
    assert_eq!(bytes.len(), 166 + 3);
    assert_eq!(&bytes[..message::GROUP], &[VERSION, 0x03]);
    assert_eq!(&bytes[message::GROUP..message::CHAIN], GROUP.as_bytes());
    assert_eq!(&bytes[message::CHAIN..message::INDEX], s.chain().as_bytes());
    assert_eq!(&bytes[message::INDEX..message::SALT], &1u32.to_be_bytes());
    assert_eq!(message.salt(), bytes[message::SALT..message::CIPHERTEXT]);
    let parsed = GroupMessage::from_bytes(bytes).unwrap();
    assert_eq!(parsed, message);
    assert_eq!(parsed.chain(), s.chain());
    assert_eq!(parsed.index(), 1);
    // The signature covers the label and every byte before it.
    let chain = VerifyingKey::from_bytes(s.chain().as_bytes()).unwrap();
    let mut signed = b"sotto v2 group message".to_vec();
    signed.extend_from_slice(&bytes[..bytes.len() - 64]);
    let signature = ed25519_dalek::Signature::from_slice(&bytes[bytes.len() - 64..]).unwrap();
    chain.verify_strict(&signed, &signature).unwrap();
}

#[test]
fn group_message_decoding_checks_in_order() {
    let (_, mut s) = setup(3);
    let message = s.encrypt(&mut rng(4), b"").unwrap();
    let good = message.as_bytes().to_vec();
    assert_eq!(good.len(), 166);

    let too_long = vec![0u8; MAX_GROUP_MESSAGE_LEN + 1];
    assert_eq!(GroupMessage::from_bytes(&too_long), Err(Error::TooLarge));
    assert_eq!(GroupMessage::from_vec(too_long), Err(Error::TooLarge));
    assert_eq!(GroupMessage::from_bytes(&[]), Err(Error::Truncated));
    assert_eq!(
        GroupMessage::from_bytes(&[1]),
        Err(Error::UnsupportedVersion { found: 1 })
    );
    assert_eq!(GroupMessage::from_bytes(&[2]), Err(Error::Truncated));
    assert_eq!(
        GroupMessage::from_bytes(&[2, 0x04]),
        Err(Error::WrongType {
            expected: 0x03,
            found: 0x04
        })
    );
    // The chain: cut short, then invalid.
    for len in message::GROUP..message::INDEX {
        assert_eq!(
            GroupMessage::from_bytes(&good[..len]),
            Err(Error::Truncated)
        );
    }
    for bad in [SMALL_ORDER, NOT_A_POINT] {
        let mut b = good.clone();
        b[message::CHAIN..message::INDEX].copy_from_slice(&bad);
        assert_eq!(GroupMessage::from_bytes(&b), Err(Error::InvalidPublicKey));
        assert_eq!(
            GroupMessage::from_bytes(&b[..message::INDEX]),
            Err(Error::InvalidPublicKey)
        );
    }
    for len in message::INDEX..good.len() {
        assert_eq!(
            GroupMessage::from_bytes(&good[..len]),
            Err(Error::Truncated)
        );
    }
    assert!(GroupMessage::from_bytes(&good).is_ok());
    let longest = s
        .encrypt(&mut rng(5), &vec![7u8; MAX_PLAINTEXT_LEN])
        .unwrap();
    assert_eq!(longest.as_bytes().len(), MAX_GROUP_MESSAGE_LEN);
    assert!(GroupMessage::from_bytes(longest.as_bytes()).is_ok());
}

#[test]
fn distribution_fields_owner_proof_and_owner_signature() {
    let (owner, mut s) = setup(6);
    let _ = s.encrypt(&mut rng(7), b"a").unwrap();
    let d = s.distribution();
    let bytes = d.to_bytes();
    assert_eq!(bytes.len(), SenderKeyDistribution::ENCODED_LEN);
    assert_eq!(&bytes[..dist::GROUP], &[VERSION, 0x04]);
    assert_eq!(&bytes[dist::GROUP..dist::CHAIN], GROUP.as_bytes());
    assert_eq!(&bytes[dist::CHAIN..dist::OWNER], s.chain().as_bytes());
    assert_eq!(bytes[dist::OWNER..dist::PROOF], owner_field(&owner)[..]);
    assert_eq!(&bytes[dist::INDEX..dist::LEVELS], &1u32.to_be_bytes());
    assert_eq!((d.index(), d.owner(), d.chain()), (1, &owner, s.chain()));
    // The owner proof, checked with the primitive and the published label.
    let chain = VerifyingKey::from_bytes(s.chain().as_bytes()).unwrap();
    let mut signed = b"sotto v2 group chain owner".to_vec();
    signed.extend_from_slice(&bytes[dist::GROUP..dist::PROOF]);
    let proof = ed25519_dalek::Signature::from_slice(&bytes[dist::PROOF..dist::SIGNATURE]).unwrap();
    chain.verify_strict(&signed, &proof).unwrap();
    // The owner signature, under the owner's identity key: over the group
    // and the chain.
    let identity = VerifyingKey::from_bytes(owner.as_bytes()).unwrap();
    let mut signed = b"sotto v2 group owner signature".to_vec();
    signed.extend_from_slice(&bytes[dist::GROUP..dist::OWNER]);
    let signature =
        ed25519_dalek::Signature::from_slice(&bytes[dist::SIGNATURE..dist::INDEX]).unwrap();
    identity.verify_strict(&signed, &signature).unwrap();
    // The levels are the sender's, at the same index.
    let state = s.to_bytes();
    assert_eq!(
        bytes[dist::INDEX..],
        state[sender::INDEX..sender::INDEX + 260]
    );
    let back = SenderKeyDistribution::from_bytes(&bytes).unwrap();
    assert_eq!(*back.to_bytes(), *bytes);
    let debug = alloc::format!("{back:?}");
    assert!(!debug.contains("levels"));
}

#[test]
fn distribution_decoding_checks_in_order() {
    let (_, s) = setup(8);
    let good = s.distribution().to_bytes().to_vec();
    let parse = SenderKeyDistribution::from_bytes;
    assert_eq!(parse(&[]).err(), Some(Error::Truncated));
    assert_eq!(
        parse(&[3, 4]).err(),
        Some(Error::UnsupportedVersion { found: 3 })
    );
    assert_eq!(
        parse(&[2, 0x03]).err(),
        Some(Error::WrongType {
            expected: 0x04,
            found: 0x03
        })
    );
    for len in 0..good.len() {
        let err = parse(&good[..len]).err();
        assert_eq!(err, Some(Error::Truncated), "cut at {len}");
    }
    let mut long = good.clone();
    long.push(0);
    assert_eq!(parse(&long).err(), Some(Error::TrailingBytes));
    for bad in [SMALL_ORDER, NOT_A_POINT] {
        let mut b = good.clone();
        b[dist::CHAIN..dist::OWNER].copy_from_slice(&bad);
        assert_eq!(parse(&b).err(), Some(Error::InvalidPublicKey));
        // The chain is read before the owner and before the length runs out.
        b[dist::OWNER..dist::OWNER + 32].copy_from_slice(&bad);
        assert_eq!(
            parse(&b[..dist::OWNER]).err(),
            Some(Error::InvalidPublicKey)
        );
        let mut b = good.clone();
        b[dist::OWNER..dist::OWNER + 32].copy_from_slice(&bad);
        assert_eq!(parse(&b).err(), Some(Error::InvalidPublicKey));
        long = b.clone();
        long.push(0);
        assert_eq!(parse(&long).err(), Some(Error::InvalidPublicKey));
    }
    // A bad owner proof or owner signature parses: they are checked at
    // install (§15.7).
    for at in [dist::PROOF, dist::SIGNATURE] {
        let mut b = good.clone();
        b[at] ^= 1;
        assert!(parse(&b).is_ok());
    }
    // A v2 distribution of before the owner signature (422 bytes) is cut
    // short.
    let without_signature = good.len() - (dist::INDEX - dist::SIGNATURE);
    assert_eq!(without_signature, 422);
    assert_eq!(
        parse(&good[..without_signature]).err(),
        Some(Error::Truncated)
    );
}

#[test]
fn sender_state_layout_and_decoding() {
    let (owner, mut s) = setup(9);
    for _ in 0..3 {
        let _ = s.encrypt(&mut rng(10), b"m").unwrap();
    }
    let bytes = s.to_bytes();
    assert_eq!(bytes.len(), GroupSender::ENCODED_LEN);
    assert_eq!(&bytes[..sender::GENERATION], &[VERSION, 0x22]);
    assert_eq!(
        &bytes[sender::GENERATION..sender::GROUP],
        &3u64.to_be_bytes()
    );
    assert_eq!(s.generation(), 3);
    assert_eq!(&bytes[sender::GROUP..sender::OWNER], GROUP.as_bytes());
    assert_eq!(bytes[sender::OWNER..sender::SEED], owner_field(&owner)[..]);
    let seed: [u8; 32] = bytes[sender::SEED..sender::PROOF].try_into().unwrap();
    assert_eq!(&chain_of(&seed), s.chain().as_bytes());
    assert_eq!(
        bytes[sender::PROOF..sender::INDEX],
        s.distribution().to_bytes()[dist::PROOF..dist::INDEX]
    );
    assert_eq!(sender::INDEX - sender::PROOF, 128);
    assert_eq!(&bytes[sender::INDEX..sender::LEVELS], &3u32.to_be_bytes());
    let back = GroupSender::from_bytes(&bytes).unwrap();
    assert_eq!(*back.to_bytes(), *bytes);
    assert_eq!(
        (back.chain(), back.owner(), back.index()),
        (s.chain(), &owner, 3)
    );

    assert_eq!(
        GroupSender::from_bytes(&vec![0; MAX_STATE_LEN + 1]).err(),
        Some(Error::TooLarge)
    );
    for len in 0..bytes.len() {
        assert_eq!(
            GroupSender::from_bytes(&bytes[..len]).err(),
            Some(Error::Truncated)
        );
    }
    let mut long = bytes.to_vec();
    long.push(0);
    assert_eq!(
        GroupSender::from_bytes(&long).err(),
        Some(Error::TrailingBytes)
    );
    let mut b = bytes.to_vec();
    b[sender::OWNER..sender::OWNER + 32].copy_from_slice(&SMALL_ORDER);
    assert_eq!(
        GroupSender::from_bytes(&b).err(),
        Some(Error::InvalidPublicKey)
    );
    // The generation, seed, proof, index and levels have no rule.
    let mut b = bytes.to_vec();
    b[sender::GENERATION..sender::GROUP].copy_from_slice(&[0xff; 8]);
    b[sender::INDEX..sender::LEVELS].copy_from_slice(&[0xff; 4]);
    b[sender::PROOF] ^= 1;
    let odd = GroupSender::from_bytes(&b).unwrap();
    assert_eq!((odd.generation(), odd.index()), (u64::MAX, u32::MAX));
}

/// A receiver with `n` cached keys.
fn receiver_with_cache(seed: u8, skips: u32) -> (GroupSender, GroupReceiver) {
    let (_, mut s) = setup(seed);
    let mut r =
        GroupReceiver::import_unauthenticated(&GROUP, &s.distribution().to_bytes()).unwrap();
    let mut draw = rng(seed);
    for _ in 0..skips {
        s.advance_for_test(s.index() + 32);
        r.decrypt(&s.encrypt(&mut draw, b"m").unwrap()).unwrap();
    }
    (s, r)
}

#[test]
fn receiver_state_layout_and_decoding() {
    let (s, r) = receiver_with_cache(11, 2);
    assert_eq!(r.skipped_key_count(), 64);
    let bytes = r.to_bytes();
    assert_eq!(bytes.len(), receiver::COUNT + 2 + 64 * 36);
    assert_eq!(&bytes[..receiver::GENERATION], &[VERSION, 0x23]);
    assert_eq!(
        &bytes[receiver::GENERATION..receiver::GROUP],
        &2u64.to_be_bytes()
    );
    assert_eq!(&bytes[receiver::GROUP..receiver::CHAIN], GROUP.as_bytes());
    assert_eq!(
        &bytes[receiver::CHAIN..receiver::OWNER],
        s.chain().as_bytes()
    );
    assert_eq!(
        bytes[receiver::OWNER..receiver::FLAG],
        owner_field(s.owner())[..]
    );
    assert_eq!(bytes[receiver::FLAG], 0);
    assert_eq!(&bytes[receiver::NEXT..receiver::READ], &66u32.to_be_bytes());
    // It decrypted 32 and 65: read is 66.
    assert_eq!(
        &bytes[receiver::READ..receiver::LEVELS],
        &66u32.to_be_bytes()
    );
    assert_eq!(r.read_index(), 66);
    assert_eq!(
        bytes[receiver::NEXT..receiver::READ],
        s.to_bytes()[sender::INDEX..sender::LEVELS]
    );
    assert_eq!(
        bytes[receiver::LEVELS..receiver::COUNT],
        s.to_bytes()[sender::LEVELS..sender::LEVELS + 256]
    );
    assert_eq!(
        &bytes[receiver::COUNT..receiver::COUNT + 2],
        &64u16.to_be_bytes()
    );
    // Cached indices 0..=31 and 33..=64, increasing.
    let first = receiver::COUNT + 2;
    assert_eq!(&bytes[first..first + 4], &0u32.to_be_bytes());
    assert_eq!(
        &bytes[first + 36 * 32..first + 36 * 32 + 4],
        &33u32.to_be_bytes()
    );
    let back = GroupReceiver::from_bytes(&bytes).unwrap();
    assert_eq!(*back.to_bytes(), *bytes);

    let parse = |b: &[u8]| GroupReceiver::from_bytes(b).err();
    assert_eq!(parse(&vec![0; MAX_STATE_LEN + 1]), Some(Error::TooLarge));
    for len in 0..bytes.len() {
        assert_eq!(parse(&bytes[..len]), Some(Error::Truncated), "cut at {len}");
    }
    let mut long = bytes.to_vec();
    long.push(0);
    assert_eq!(parse(&long), Some(Error::TrailingBytes));
    let edit = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = bytes.to_vec();
        f(&mut b);
        parse(&b)
    };
    assert_eq!(
        edit(&|b| b[receiver::CHAIN..receiver::CHAIN + 32].copy_from_slice(&NOT_A_POINT)),
        Some(Error::InvalidPublicKey)
    );
    assert_eq!(
        edit(&|b| b[receiver::OWNER..receiver::OWNER + 32].copy_from_slice(&SMALL_ORDER)),
        Some(Error::InvalidPublicKey)
    );
    assert_eq!(
        edit(&|b| b[receiver::FLAG] = 2),
        Some(Error::InvalidEncoding)
    );
    assert_eq!(edit(&|b| b[receiver::FLAG] = 1), None);
    // A count over the bound fails before any entry is read.
    let over = u16::try_from(MAX_GROUP_SKIPPED_KEYS + 1)
        .unwrap()
        .to_be_bytes();
    assert_eq!(
        edit(&|b| {
            b.truncate(receiver::COUNT);
            b.extend_from_slice(&over);
        }),
        Some(Error::InvalidEncoding)
    );
    // Indices out of order, repeated, or not below next.
    let at = |n: usize| first + 36 * n;
    assert_eq!(
        edit(&|b| b[at(1)..at(1) + 4].copy_from_slice(&0u32.to_be_bytes())),
        Some(Error::InvalidEncoding)
    );
    assert_eq!(
        edit(&|b| b[at(63)..at(63) + 4].copy_from_slice(&66u32.to_be_bytes())),
        Some(Error::InvalidEncoding)
    );
    assert_eq!(
        edit(&|b| b[at(63)..at(63) + 4].copy_from_slice(&65u32.to_be_bytes())),
        None
    );
    // A receiver at u32::MAX is a valid state (it can decrypt nothing).
    assert_eq!(
        edit(&|b| b[receiver::NEXT..receiver::READ].copy_from_slice(&[0xff; 4])),
        None
    );
    // Read is at most next, checked as soon as it is read: before the
    // levels, so a state cut right after it fails on it, not on its length.
    let with_read = |read: u32| {
        let mut b = bytes.to_vec();
        b[receiver::READ..receiver::LEVELS].copy_from_slice(&read.to_be_bytes());
        b
    };
    assert_eq!(parse(&with_read(0)), None);
    assert_eq!(parse(&with_read(66)), None);
    assert_eq!(parse(&with_read(67)), Some(Error::InvalidEncoding));
    assert_eq!(parse(&with_read(u32::MAX)), Some(Error::InvalidEncoding));
    assert_eq!(
        parse(&with_read(67)[..receiver::LEVELS]),
        Some(Error::InvalidEncoding)
    );
    assert_eq!(
        parse(&with_read(66)[..receiver::LEVELS]),
        Some(Error::Truncated)
    );
    assert_eq!(
        GroupReceiver::from_bytes(&with_read(5))
            .unwrap()
            .read_index(),
        5
    );
}

/// SPEC §15.8: a receiver records, in its saved bytes, 1 + the highest
/// index it decrypted, through the ratchet and through the cache, never
/// lowering it.
#[test]
fn the_read_index_is_saved_after_every_decrypt() {
    let (_, mut s) = setup(18);
    let mut r =
        GroupReceiver::import_unauthenticated(&GROUP, &s.distribution().to_bytes()).unwrap();
    let mut draw = rng(19);
    let saved_read = |r: &GroupReceiver| {
        let b = r.to_bytes();
        u32::from_be_bytes(b[receiver::READ..receiver::LEVELS].try_into().unwrap())
    };
    assert_eq!(saved_read(&r), 0);
    let messages: Vec<_> = (0..12)
        .map(|_| s.encrypt(&mut draw, b"m").unwrap())
        .collect();
    for (j, expected) in [(4usize, 5u32), (2, 5), (10, 11), (7, 11), (11, 12), (0, 12)] {
        r.decrypt(&messages[j]).unwrap();
        assert_eq!(saved_read(&r), expected, "after {j}");
        assert_eq!(r.read_index(), expected);
    }
    assert_eq!(r.next_index(), 12);
}

/// A store of `n` receivers of distinct chains of one owner per four, built
/// from one receiver's bytes with the chain and owner fields replaced.
/// The length of a store's first receiver state.
fn entry_len(store_state: &[u8]) -> usize {
    let field = &store_state[store_state::ENTRIES..store_state::FIRST];
    usize::from(u16::from_be_bytes(field.try_into().unwrap()))
}

fn store_bytes(template: &GroupReceiver, n: usize, authenticated: bool) -> Vec<u8> {
    let owners: Vec<IdentityKey> = {
        let mut r = rng(40);
        (0..n.div_ceil(4))
            .map(|_| *device(&mut r).identity_key())
            .collect()
    };
    let one = template.to_bytes();
    let mut out = vec![VERSION, 0x24];
    out.extend_from_slice(&7u64.to_be_bytes());
    out.extend_from_slice(GROUP.as_bytes());
    out.extend_from_slice(&u16::try_from(n).unwrap().to_be_bytes());
    for i in 0..n {
        let mut r = one.to_vec();
        let seed = [
            u8::try_from(i % 251).unwrap(),
            u8::try_from(i / 251).unwrap(),
            9,
            9,
        ]
        .repeat(8)
        .try_into()
        .unwrap();
        r[receiver::CHAIN..receiver::OWNER].copy_from_slice(&chain_of(&seed));
        r[receiver::OWNER..receiver::FLAG].copy_from_slice(&owner_field(&owners[i / 4]));
        r[receiver::FLAG] = u8::from(authenticated);
        out.extend_from_slice(&u16::try_from(r.len()).unwrap().to_be_bytes());
        out.extend_from_slice(&r);
    }
    out
}

#[test]
fn the_largest_store_saves_and_restores() {
    let (_, full) = receiver_with_cache(12, 8);
    assert_eq!(full.skipped_key_count(), MAX_GROUP_SKIPPED_KEYS);
    assert_eq!(full.to_bytes().len(), GroupReceiver::MAX_ENCODED_LEN);
    let bytes = store_bytes(&full, MAX_GROUP_RECEIVERS, true);
    assert_eq!(
        bytes.len(),
        store_state::ENTRIES
            + MAX_GROUP_RECEIVERS * (store_state::LENGTH_LEN + GroupReceiver::MAX_ENCODED_LEN)
    );
    let store = GroupReceivers::from_bytes(&bytes).unwrap();
    assert_eq!((store.len(), store.generation()), (MAX_GROUP_RECEIVERS, 7));
    assert_eq!(*store.to_bytes(), bytes[..]);
}

#[test]
fn store_decoding_checks_in_order() {
    let (_, r) = receiver_with_cache(13, 1);
    let bytes = store_bytes(&r, 8, false);
    let parse = |b: &[u8]| GroupReceivers::from_bytes(b).err();
    assert_eq!(parse(&bytes), None);
    assert_eq!(parse(&vec![0; MAX_STATE_LEN + 1]), Some(Error::TooLarge));
    assert_eq!(parse(&[VERSION]), Some(Error::Truncated));
    assert_eq!(
        parse(&[2, 0x23]),
        Some(Error::WrongType {
            expected: 0x24,
            found: 0x23
        })
    );
    for len in 0..bytes.len() {
        assert_eq!(parse(&bytes[..len]), Some(Error::Truncated), "cut at {len}");
    }
    let mut long = bytes.clone();
    long.push(0);
    assert_eq!(parse(&long), Some(Error::TrailingBytes));
    // The count is checked before any receiver is read.
    let mut b = bytes[..store_state::ENTRIES].to_vec();
    b[store_state::COUNT..store_state::ENTRIES].copy_from_slice(
        &u16::try_from(MAX_GROUP_RECEIVERS + 1)
            .unwrap()
            .to_be_bytes(),
    );
    assert_eq!(parse(&b), Some(Error::InvalidEncoding));
    // An embedded receiver: by its own rules within its length.
    let first_len = entry_len(&bytes);
    let embedded = store_state::FIRST;
    let mut b = bytes.clone();
    b[embedded + 1] = 0x22;
    assert_eq!(
        parse(&b),
        Some(Error::WrongType {
            expected: 0x23,
            found: 0x22
        })
    );
    let mut b = bytes.clone();
    b[embedded + receiver::FLAG] = 7;
    assert_eq!(parse(&b), Some(Error::InvalidEncoding));
    // A length one short: the receiver's own Truncated; one long: its own
    // TrailingBytes (SPEC §15.11).
    for (delta, expected) in [(-1i32, Error::Truncated), (1, Error::TrailingBytes)] {
        let mut b = bytes.clone();
        let len = u16::try_from(i32::try_from(first_len).unwrap() + delta).unwrap();
        b[store_state::ENTRIES..store_state::FIRST].copy_from_slice(&len.to_be_bytes());
        assert_eq!(parse(&b), Some(expected), "length {len}");
    }

    // Checks across receivers come after TrailingBytes.
    let other_group = {
        let mut b = bytes.clone();
        b[embedded + receiver::GROUP..embedded + receiver::CHAIN]
            .copy_from_slice(OTHER_GROUP.as_bytes());
        b
    };
    let twice = {
        let mut b = bytes.clone();
        let second = embedded + first_len + store_state::LENGTH_LEN;
        let chain = b[embedded + receiver::CHAIN..embedded + receiver::OWNER].to_vec();
        b[second + receiver::CHAIN..second + receiver::OWNER].copy_from_slice(&chain);
        b
    };
    for b in [&other_group, &twice] {
        assert_eq!(parse(b), Some(Error::InvalidEncoding));
        let mut long = b.clone();
        long.push(0);
        assert_eq!(parse(&long), Some(Error::TrailingBytes));
    }
}

#[test]
fn stored_owners_within_their_limits() {
    let (_, r) = receiver_with_cache(14, 0);
    // Owners hold four chains each: within both per-owner limits.
    assert!(GroupReceivers::from_bytes(&store_bytes(&r, 8, true)).is_ok());
    assert!(GroupReceivers::from_bytes(&store_bytes(&r, 8, false)).is_ok());
    // Five chains of one owner, authenticated or not.
    for authenticated in [true, false] {
        let mut b = store_bytes(&r, 8, authenticated);
        let len = entry_len(&b);
        let owner =
            b[store_state::FIRST + receiver::OWNER..store_state::FIRST + receiver::FLAG].to_vec();
        let fifth = store_state::FIRST + 4 * (store_state::LENGTH_LEN + len);
        b[fifth + receiver::OWNER..fifth + receiver::FLAG].copy_from_slice(&owner);
        assert_eq!(
            GroupReceivers::from_bytes(&b).err(),
            Some(Error::InvalidEncoding),
            "authenticated: {authenticated}"
        );
        // The same five, one of another kind: within the limits.
        b[fifth + receiver::FLAG] = u8::from(!authenticated);
        assert!(GroupReceivers::from_bytes(&b).is_ok());
    }
    // More than 256 unauthenticated chains in all, each owner within its own.
    assert!(GroupReceivers::from_bytes(&store_bytes(&r, 256, false)).is_ok());
    assert_eq!(
        GroupReceivers::from_bytes(&store_bytes(&r, 257, false)).err(),
        Some(Error::InvalidEncoding)
    );
    assert!(GroupReceivers::from_bytes(&store_bytes(&r, 257, true)).is_ok());
}

#[test]
fn group_states_seal_under_their_context() {
    let (_, r) = receiver_with_cache(15, 1);
    let (_, s) = setup(16);
    let mut store = GroupReceivers::new(GROUP);
    store
        .import_unauthenticated(&s.distribution().to_bytes())
        .unwrap();
    let key = StorageKey::from_bytes([5; 32]);
    let mut draw = rng(17);
    let sealed_sender = s.seal(&key, b"group/7/sender", &mut draw).unwrap();
    let sealed_receiver = r.seal(&key, b"group/7/r", &mut draw).unwrap();
    let sealed_store = store.seal(&key, b"group/7", &mut draw).unwrap();
    // Version, type and inner type (SPEC §10.5).
    let head = |b: &[u8]| {
        let l = testkit::layout::sealed(b);
        [
            l.slice(b, "version"),
            l.slice(b, "type"),
            l.slice(b, "inner_type"),
        ]
        .concat()
    };
    assert_eq!(head(&sealed_sender), [VERSION, 0x30, 0x22]);
    assert_eq!(head(&sealed_receiver), [VERSION, 0x30, 0x23]);
    assert_eq!(head(&sealed_store), [VERSION, 0x30, 0x24]);
    assert_eq!(
        *GroupSender::unseal(&sealed_sender, &key, b"group/7/sender")
            .unwrap()
            .to_bytes(),
        *s.to_bytes()
    );
    assert_eq!(
        *GroupReceiver::unseal(&sealed_receiver, &key, b"group/7/r")
            .unwrap()
            .to_bytes(),
        *r.to_bytes()
    );
    assert_eq!(
        *GroupReceivers::unseal(&sealed_store, &key, b"group/7")
            .unwrap()
            .to_bytes(),
        *store.to_bytes()
    );
    assert_eq!(
        GroupReceivers::unseal(&sealed_store, &key, b"group/8").err(),
        Some(Error::AuthenticationFailed)
    );
    assert_eq!(
        GroupReceivers::unseal(&sealed_receiver, &key, b"group/7/r").err(),
        Some(Error::WrongType {
            expected: 0x24,
            found: 0x23
        })
    );
    assert_eq!(
        <GroupReceivers as SavedState>::TYPE_TAG,
        crate::codec::tag::GROUP_STORE_STATE
    );
}
