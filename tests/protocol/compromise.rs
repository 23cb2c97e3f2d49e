//! State compromise: what an attacker holding a copy of a party's saved
//! session (its `to_bytes`), or of a member's group sender and receivers,
//! can and cannot decrypt. The group tests work on the saved states' bytes
//! with the published layouts (SPEC §15.11) and labels (§15.4), as an
//! attacker would, not only through the API.

use std::collections::{HashMap, HashSet};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sotto::group::{
    ChainId, GroupId, GroupMessage, GroupReceiver, GroupReceivers, GroupSender,
    MAX_GROUP_SKIPPED_KEYS,
};
use sotto::{Device, Error, IdentityKey, Message, Session};
use testkit::fixtures::{Kem, NOW, bundle_with, sender_levels, wire};
use testkit::layout;
// The published functions of SPEC §15.4, as the reference model writes them.
use testkit::model::group::ratchet::{Levels, derive, key, split_levels, step};

struct Pair {
    rng: ChaCha20Rng,
    alice: Session,
    bob: Session,
}

/// Alice initiates, Bob accepts and replies, Alice answers on a new chain
/// and Bob receives it: both sides have turned the ratchet once.
fn established(seed: u64) -> Pair {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let alice_device = Device::generate(&mut rng, NOW).unwrap();
    let mut bob_device = Device::generate(&mut rng, NOW).unwrap();
    let bundle = bundle_with(&mut rng, &mut bob_device, false, Kem::LastResort);
    let mut alice = Session::initiate(&alice_device, &mut rng, &bundle.verify().unwrap()).unwrap();
    let Message::PreKey(first) = wire(&mut alice, &mut rng, b"hello") else {
        panic!("first message is a prekey message");
    };
    let (mut bob, _) = Session::accept(&mut bob_device, &first).unwrap();
    let reply = wire(&mut bob, &mut rng, b"reply");
    alice.decrypt(&reply).unwrap();
    let answer = wire(&mut alice, &mut rng, b"answer");
    bob.decrypt(&answer).unwrap();
    Pair { rng, alice, bob }
}

#[test]
fn stale_copy_follows_the_current_chain_only_until_a_ratchet_round_trip() {
    let Pair {
        mut rng,
        mut alice,
        mut bob,
    } = established(1);
    let stolen = bob.to_bytes();
    let mut copy = Session::from_bytes(&stolen).unwrap();

    // The limitation: the copy holds Bob's current receiving chain key.
    let m1 = wire(&mut alice, &mut rng, b"still on the compromised chain");
    assert_eq!(
        copy.decrypt(&m1).unwrap().as_bytes(),
        b"still on the compromised chain"
    );
    assert_eq!(
        bob.decrypt(&m1).unwrap().as_bytes(),
        b"still on the compromised chain"
    );

    // Bob replies with a fresh ratchet key; Alice answers on a new chain.
    let r = wire(&mut bob, &mut rng, b"new ratchet key");
    alice.decrypt(&r).unwrap();
    let m2 = wire(&mut alice, &mut rng, b"after the round trip");
    let m3 = wire(&mut alice, &mut rng, b"and after that");

    // The copy never learned Bob's new ratchet secret: without a sending
    // chain it cannot even try the new chain (SPEC §8.6 2.1).
    let before = copy.to_bytes();
    assert_eq!(copy.decrypt(&m2).err(), Some(Error::SessionDiverged));
    assert_eq!(*copy.to_bytes(), *before);
    // Nor does turning its own ratchet (with the attacker's randomness) help.
    let mut attacker_rng = ChaCha20Rng::seed_from_u64(666);
    let mut turned = Session::from_bytes(&stolen).unwrap();
    let forged = wire(&mut turned, &mut attacker_rng, b"forged by the attacker");
    for m in [&m2, &m3] {
        let before = turned.to_bytes();
        assert_eq!(turned.decrypt(m).err(), Some(Error::SessionDiverged));
        assert_eq!(*turned.to_bytes(), *before);
    }
    // Bob reads both, and Alice, healed, rejects what the copy makes.
    assert_eq!(bob.decrypt(&m3).unwrap().as_bytes(), b"and after that");
    assert_eq!(
        bob.decrypt(&m2).unwrap().as_bytes(),
        b"after the round trip"
    );
    let before = alice.to_bytes();
    assert_eq!(alice.decrypt(&forged).err(), Some(Error::SessionDiverged));
    assert_eq!(*alice.to_bytes(), *before);
}

#[test]
fn copy_taken_after_receipt_cannot_read_received_messages() {
    let Pair {
        mut rng,
        mut alice,
        mut bob,
    } = established(2);
    let m0 = wire(&mut alice, &mut rng, b"m0");
    let m1 = wire(&mut alice, &mut rng, b"m1");
    let m2 = wire(&mut alice, &mut rng, b"m2");
    // Out of order: m2 first (m0 and m1 keys skipped and stored), then m0.
    bob.decrypt(&m2).unwrap();
    bob.decrypt(&m0).unwrap();
    let copy_bytes = bob.to_bytes();
    let mut copy = Session::from_bytes(&copy_bytes).unwrap();
    assert_eq!(copy.decrypt(&m0).err(), Some(Error::DuplicateMessage));
    assert_eq!(copy.decrypt(&m2).err(), Some(Error::DuplicateMessage));
    // m1's key is still stored (not yet received): the copy can read it.
    // That is the documented cost of tolerating reordering.
    assert_eq!(copy.decrypt(&m1).unwrap().as_bytes(), b"m1");

    // After Bob turns the ratchet, a copy cannot read the old chain at all.
    bob.decrypt(&m1).unwrap();
    let r = wire(&mut bob, &mut rng, b"r");
    alice.decrypt(&r).unwrap();
    let n0 = wire(&mut alice, &mut rng, b"n0");
    bob.decrypt(&n0).unwrap();
    let mut later = Session::from_bytes(&bob.to_bytes()).unwrap();
    for m in [&m0, &m1, &m2, &n0] {
        let before = later.to_bytes();
        assert_eq!(later.decrypt(m).err(), Some(Error::DuplicateMessage));
        assert_eq!(*later.to_bytes(), *before);
    }
}

#[test]
fn copy_cannot_read_messages_of_evicted_chains() {
    let Pair {
        mut rng,
        mut alice,
        mut bob,
    } = established(3);
    let old = wire(&mut alice, &mut rng, b"old");
    bob.decrypt(&old).unwrap();
    // Enough round trips that the chain of `old` is forgotten entirely.
    for _ in 0..sotto::MAX_RECEIVING_CHAINS + 1 {
        let r = wire(&mut bob, &mut rng, b"r");
        alice.decrypt(&r).unwrap();
        let a = wire(&mut alice, &mut rng, b"a");
        bob.decrypt(&a).unwrap();
    }
    let mut copy = Session::from_bytes(&bob.to_bytes()).unwrap();
    assert_eq!(copy.decrypt(&old).err(), Some(Error::SessionDiverged));
    let _ = wire(&mut copy, &mut rng, b"turn");
    assert_eq!(copy.decrypt(&old).err(), Some(Error::SessionDiverged));
}

// ---------------------------------------------------------------------------
// Groups: what a stolen copy of a member's group state can and cannot read,
// on the saved states' bytes.

const GROUP: GroupId = GroupId::from_bytes([0x67; 32]);

/// A saved receiver's next index, R_0..R_7 and cache, read through its
/// layout (SPEC §15.11).
fn parse_receiver(state: &[u8]) -> (u32, Levels, Vec<(u32, [u8; 32])>) {
    let l = layout::receiver_state(state);
    let count = usize::from(u16::from_be_bytes(
        l.slice(state, "count").try_into().unwrap(),
    ));
    let cache = (0..count)
        .map(|k| {
            (
                l.u32(state, &format!("cache[{k}].index")),
                l.a32(state, &format!("cache[{k}].key")),
            )
        })
        .collect();
    let levels = split_levels(l.slice(state, "levels"));
    (l.u32(state, "next"), levels, cache)
}

/// A receiver state built byte by byte (SPEC §15.11): any chain and owner,
/// any ratchet claimed at any index, any cache.
fn forged_receiver(
    chain: &ChainId,
    owner: &IdentityKey,
    next: u32,
    levels: &Levels,
    cache: &[(u32, [u8; 32])],
) -> GroupReceiver {
    let mut state = vec![0x02, 0x23];
    state.extend_from_slice(&0u64.to_be_bytes());
    state.extend_from_slice(GROUP.as_bytes());
    state.extend_from_slice(chain.as_bytes());
    state.extend_from_slice(owner.as_bytes());
    state.push(1);
    state.extend_from_slice(&next.to_be_bytes());
    // Read mark (at most next).
    state.extend_from_slice(&0u32.to_be_bytes());
    for level in levels {
        state.extend_from_slice(level);
    }
    state.extend_from_slice(&u16::try_from(cache.len()).unwrap().to_be_bytes());
    for (index, key) in cache {
        state.extend_from_slice(&index.to_be_bytes());
        state.extend_from_slice(key);
    }
    GroupReceiver::from_bytes(&state).unwrap()
}

fn group_wire(sender: &mut GroupSender, rng: &mut ChaCha20Rng, text: &[u8]) -> GroupMessage {
    let bytes = sender.encrypt(rng, text).unwrap().into_bytes();
    GroupMessage::from_bytes(&bytes).unwrap()
}

/// Every value an attacker computes from a state's eight levels with up to
/// `depth` applications of `Step` and `Derive_1..7` (the values themselves
/// included), and each of those passed through `Key` as well.
fn reachable(levels: &Levels, depth: usize) -> HashSet<[u8; 32]> {
    let mut frontier: Vec<[u8; 32]> = levels.to_vec();
    let mut seen: HashSet<[u8; 32]> = frontier.iter().copied().collect();
    for _ in 0..depth {
        let mut next = Vec::new();
        for v in &frontier {
            let mut out = vec![step(v)];
            out.extend((1..=7).map(|m| derive(m, v)));
            for w in out {
                if seen.insert(w) {
                    next.push(w);
                }
            }
        }
        frontier = next;
    }
    let keys: Vec<[u8; 32]> = seen.iter().map(key).collect();
    seen.extend(keys);
    seen
}

/// Issue 10, point 1, where the attacker stands: from a saved state's bytes
/// at index i, every recomputation with the published labels (up to three
/// applications of Step and Derive_m, then Key, from every level) recovers
/// no key of an index below i, at every level's block boundaries; and the
/// same recomputation does find the state's own and later keys (so the
/// search is not blind). Version 1 failed this at every i past a block
/// boundary (its state at 400 gave the keys of 256..399).
#[test]
fn group_state_bytes_yield_no_earlier_key() {
    let mut rng = ChaCha20Rng::seed_from_u64(12);
    let owner_device = Device::generate(&mut rng, NOW).unwrap();
    let mut sender = GroupSender::new(&mut rng, GROUP, &owner_device).unwrap();
    // A receiver from the first distribution: its cached keys are sotto's
    // own K_j, to check the published-label computation against.
    let mut receiver =
        GroupReceiver::import_unauthenticated(&GROUP, &sender.distribution().to_bytes()).unwrap();
    let checkpoints: Vec<u32> = vec![
        1, 2, 15, 16, 17, 31, 32, 255, 256, 257, 400, 4095, 4096, 4097, 8191, 8192, 65535, 65536,
        65537,
    ];
    let last = *checkpoints.last().unwrap();
    let mut earlier: HashMap<[u8; 32], u32> = HashMap::new();
    let mut at: HashMap<u32, Levels> = HashMap::new();
    let mut sample = None;
    for i in 0..=last + 1 {
        let levels = sender_levels(&sender);
        if checkpoints.contains(&i) || checkpoints.contains(&(i.wrapping_sub(1))) {
            at.insert(i, levels);
        }
        earlier.insert(key(&levels[7]), i);
        let m = group_wire(&mut sender, &mut rng, b"");
        if i == 40 {
            sample = Some(m);
        }
    }
    // The published-label K_j is sotto's: a receiver that jumped to 40
    // caches K_8..K_39.
    receiver.decrypt(&sample.unwrap()).unwrap();
    let (_, _, cache) = parse_receiver(&receiver.to_bytes());
    assert_eq!(cache.len(), 32);
    for (index, k) in &cache {
        assert_eq!(
            earlier.get(k),
            Some(index),
            "K_{index} by the published labels"
        );
    }

    for &i in &checkpoints {
        let found = reachable(&at[&i], 3);
        assert!(
            found.contains(&key(&at[&i][7])),
            "K_{i} from the state at {i}"
        );
        let next_key = key(&at[&(i + 1)][7]);
        assert!(
            found.contains(&next_key),
            "K_{} from the state at {i}",
            i + 1
        );
        for (k, j) in &earlier {
            if *j < i {
                assert!(
                    !found.contains(k),
                    "the state at {i} yields the key of earlier index {j}"
                );
            }
        }
    }
}

#[test]
fn group_receiver_copy_cannot_read_consumed_or_uncached_indices() {
    let mut rng = ChaCha20Rng::seed_from_u64(10);
    let owner_device = Device::generate(&mut rng, NOW).unwrap();
    let owner = *owner_device.identity_key();
    let mut alice = GroupSender::new(&mut rng, GROUP, &owner_device).unwrap();
    let distribution = alice.distribution().to_bytes();
    let mut bob = GroupReceiver::import_unauthenticated(&GROUP, &distribution).unwrap();
    let m: Vec<GroupMessage> = (0..400u32)
        .map(|i| group_wire(&mut alice, &mut rng, &i.to_be_bytes()))
        .collect();
    // In order 0..=4, then 10 (5..=9 cached), then 7 from the cache, then a
    // jump to 100 (68..=99 cached, 11..=67 never), then 399 (367..=398
    // cached).
    for i in [0, 1, 2, 3, 4, 10, 7, 100, 399] {
        bob.decrypt(&m[i]).unwrap();
    }
    assert_eq!(bob.next_index(), 400);
    assert_eq!(bob.skipped_key_count(), 5 - 1 + 32 + 32);
    let stolen = bob.to_bytes();
    let mut copy = GroupReceiver::from_bytes(&stolen).unwrap();

    // Consumed in order, consumed from the cache, never cached: gone.
    for i in [3, 4, 7, 10, 11, 50, 67, 100, 366, 399] {
        assert_eq!(
            copy.decrypt(&m[i]).err(),
            Some(Error::DuplicateMessage),
            "index {i}"
        );
        assert_eq!(*copy.to_bytes(), *stolen);
    }
    // The documented cost of reordering: keys still cached are readable.
    assert_eq!(copy.decrypt(&m[8]).unwrap().as_bytes(), 8u32.to_be_bytes());

    // The state's bytes hold no key for a consumed index, and its ratchet
    // claimed at an earlier index derives no earlier key.
    let (next, levels, cache) = parse_receiver(&stolen);
    assert_eq!(next, 400);
    assert_eq!(cache.len(), bob.skipped_key_count());
    let chain = *bob.chain();
    for i in [4u32, 7, 11, 67, 99, 366, 399] {
        if i != 99 {
            assert!(
                cache.iter().all(|(j, _)| *j != i),
                "index {i} is not cached"
            );
        }
        let mut rewound = forged_receiver(&chain, &owner, i, &levels, &[]);
        assert_eq!(
            rewound.decrypt(&m[i as usize]).err(),
            Some(Error::AuthenticationFailed),
            "index {i} from the ratchet at {next}"
        );
        // Any cached key, claimed as the key of a consumed index.
        for (_, key) in cache.iter().step_by(9) {
            let mut relabelled = forged_receiver(&chain, &owner, i + 1, &levels, &[(i, *key)]);
            assert_eq!(
                relabelled.decrypt(&m[i as usize]).err(),
                Some(Error::AuthenticationFailed)
            );
        }
    }

    // Past the cache bound the lowest keys go: a receiver that skipped more
    // than MAX_GROUP_SKIPPED_KEYS indices in jumps of the window keeps only
    // the newest.
    let mut carol =
        GroupReceiver::import_unauthenticated(&GROUP, &alice.distribution().to_bytes()).unwrap();
    let start = alice.index();
    let later: Vec<GroupMessage> = (0..330u32)
        .map(|i| group_wire(&mut alice, &mut rng, &i.to_be_bytes()))
        .collect();
    for i in (32..330).step_by(33) {
        carol.decrypt(&later[i]).unwrap();
    }
    assert_eq!(carol.skipped_key_count(), MAX_GROUP_SKIPPED_KEYS);
    let mut copy = GroupReceiver::from_bytes(&carol.to_bytes()).unwrap();
    // 10 jumps of 32 cached keys: 320 keys, the lowest 64 (0..=31 and
    // 33..=64) evicted; 32 and 65 were read.
    for m in &later[..=65] {
        assert_eq!(copy.decrypt(m).err(), Some(Error::DuplicateMessage));
    }
    assert_eq!(copy.decrypt(&later[66]).unwrap().index(), start + 66);
}

/// An established pair between two devices.
fn link(rng: &mut ChaCha20Rng, a: &Device, b: &mut Device) -> (Session, Session) {
    let bundle = bundle_with(rng, b, false, Kem::LastResort);
    let mut at_a = Session::initiate(a, rng, &bundle.verify().unwrap()).unwrap();
    let Message::PreKey(first) = wire(&mut at_a, rng, b"hi") else {
        panic!("first message is a prekey message");
    };
    let (at_b, _) = Session::accept(b, &first).unwrap();
    (at_a, at_b)
}

/// Sends `sender`'s current chain over `session` and installs it at the
/// other end in one call, as an application does.
fn distribute(
    rng: &mut ChaCha20Rng,
    sender: &GroupSender,
    from: &mut Session,
    to: &mut Session,
    store: &mut GroupReceivers,
) {
    let carried = wire(from, rng, &sender.distribution().to_bytes());
    store.receive_distribution(to, &carried).unwrap();
}

#[test]
fn stolen_member_state_reads_nothing_after_the_rotation_that_excluded_it() {
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let alice_device = Device::generate(&mut rng, NOW).unwrap();
    let mut bob_device = Device::generate(&mut rng, NOW).unwrap();
    let mut mallory_device = Device::generate(&mut rng, NOW).unwrap();
    let (mut ab, mut ba) = link(&mut rng, &alice_device, &mut bob_device);
    let (mut am, mut ma) = link(&mut rng, &alice_device, &mut mallory_device);
    let (mut bm, mut mb) = link(&mut rng, &bob_device, &mut mallory_device);

    let mut alice = GroupSender::new(&mut rng, GROUP, &alice_device).unwrap();
    let mut bob = GroupSender::new(&mut rng, GROUP, &bob_device).unwrap();
    let mut mallory = GroupSender::new(&mut rng, GROUP, &mallory_device).unwrap();
    let mut at_alice = GroupReceivers::new(GROUP);
    let mut at_bob = GroupReceivers::new(GROUP);
    let mut at_mallory = GroupReceivers::new(GROUP);
    distribute(&mut rng, &alice, &mut ab, &mut ba, &mut at_bob);
    distribute(&mut rng, &alice, &mut am, &mut ma, &mut at_mallory);
    distribute(&mut rng, &bob, &mut ba, &mut ab, &mut at_alice);
    distribute(&mut rng, &bob, &mut bm, &mut mb, &mut at_mallory);
    distribute(&mut rng, &mallory, &mut ma, &mut am, &mut at_alice);
    distribute(&mut rng, &mallory, &mut mb, &mut bm, &mut at_bob);

    // Traffic before the removal; Mallory reads it, with gaps so that her
    // receivers cache keys.
    for i in 0..40u32 {
        let a = group_wire(&mut alice, &mut rng, b"from alice");
        let b = group_wire(&mut bob, &mut rng, b"from bob");
        at_bob.decrypt(&a).unwrap();
        at_alice.decrypt(&b).unwrap();
        if i % 5 == 4 {
            at_mallory.decrypt(&a).unwrap();
            at_mallory.decrypt(&b).unwrap();
        }
        group_wire(&mut mallory, &mut rng, b"from mallory");
    }
    // Everything Mallory holds, sender and store, is stolen.
    let stolen_sender = mallory.to_bytes();
    let stolen_store = at_mallory.to_bytes();
    let stolen: Vec<_> = at_mallory.iter().map(GroupReceiver::to_bytes).collect();
    assert_eq!(stolen.len(), 2);
    assert!(at_mallory.iter().all(|r| r.skipped_key_count() > 0));
    // The state is live: it reads the old chains' messages still in flight.
    let in_flight = group_wire(&mut alice, &mut rng, b"sent before the removal");
    let mut check = GroupReceivers::from_bytes(&stolen_store).unwrap();
    assert_eq!(
        check.decrypt(&in_flight).unwrap().as_bytes(),
        b"sent before the removal"
    );

    // Mallory is removed: Alice and Bob drop her chains and rotate, and send
    // the new chains to each other only.
    let gone = *mallory_device.identity_key();
    assert_eq!(at_alice.remove_owner(&gone), 1);
    assert_eq!(at_bob.remove_owner(&gone), 1);
    let old_chains = [*alice.chain(), *bob.chain()];
    alice.rotate(&mut rng, &alice_device).unwrap();
    bob.rotate(&mut rng, &bob_device).unwrap();
    distribute(&mut rng, &alice, &mut ab, &mut ba, &mut at_bob);
    distribute(&mut rng, &bob, &mut ba, &mut ab, &mut at_alice);
    let mut after = Vec::new();
    for _ in 0..20 {
        let a = group_wire(&mut alice, &mut rng, b"after the removal");
        let b = group_wire(&mut bob, &mut rng, b"after the removal");
        assert_eq!(at_bob.decrypt(&a).unwrap().as_bytes(), b"after the removal");
        assert_eq!(
            at_alice.decrypt(&b).unwrap().as_bytes(),
            b"after the removal"
        );
        after.extend([a, b]);
    }
    assert!(after.iter().all(|m| !old_chains.contains(m.chain())));

    // The attacker restores the stolen store: no chain to read them with.
    let mut restored = GroupReceivers::from_bytes(&stolen_store).unwrap();
    for m in &after {
        assert_eq!(restored.decrypt(m).err(), Some(Error::UnknownGroupChain));
    }
    // The new chains are public (they name the messages): the attacker
    // builds receivers for them from every ratchet it holds (each
    // receiver's, and Mallory's own sender's), claimed at index 0 (the jump
    // then reaches any index) and at the message's own index, and claims
    // every cached key as the message's key. None opens anything.
    let mut ratchets = vec![split_levels(
        layout::sender_state(&stolen_sender).slice(&stolen_sender, "levels"),
    )];
    let mut keys = Vec::new();
    for state in &stolen {
        let (_, levels, cache) = parse_receiver(state);
        ratchets.push(levels);
        keys.extend(cache.into_iter().map(|(_, k)| k));
    }
    assert!(keys.len() > 40);
    let mut attempts = 0;
    for m in &after {
        let (chain, index) = (*m.chain(), m.index());
        let owner = if chain == *alice.chain() {
            *alice.owner()
        } else {
            *bob.owner()
        };
        for levels in &ratchets {
            for claimed in [0, index] {
                let mut r = forged_receiver(&chain, &owner, claimed, levels, &[]);
                assert_eq!(r.decrypt(m).err(), Some(Error::AuthenticationFailed));
                attempts += 1;
            }
        }
        for key in &keys {
            let mut r = forged_receiver(&chain, &owner, index + 1, &ratchets[0], &[(index, *key)]);
            assert_eq!(r.decrypt(m).err(), Some(Error::AuthenticationFailed));
            attempts += 1;
        }
    }
    assert!(attempts > 40 * 40);
}
