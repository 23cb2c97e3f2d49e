//! State compromise: what an attacker holding a copy of a party's saved
//! session (its `to_bytes`), or of a member's group sender and receivers,
//! can and cannot decrypt.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sotto::group::{
    GroupId, GroupMessage, GroupReceiver, GroupReceivers, GroupSender, MAX_GROUP_SKIPPED_KEYS,
    Sender,
};
use sotto::{Device, Error, Message, PreKeyBundle, Session};
use testkit::fixtures::wire;
use testkit::model::group::{GReceiver, GSender, Levels, Window};

struct Pair {
    rng: ChaCha20Rng,
    alice: Session,
    bob: Session,
}

/// Alice initiates, Bob accepts and replies, Alice answers on a new chain
/// and Bob receives it: both sides have turned the ratchet once.
fn established(seed: u64) -> Pair {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let alice_device = Device::generate(&mut rng);
    let mut bob_device = Device::generate(&mut rng);
    let bundle = PreKeyBundle::new(*bob_device.identity_key(), bob_device.signed_prekey(), None);
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
        copy.decrypt(&m1).unwrap(),
        b"still on the compromised chain"
    );
    assert_eq!(bob.decrypt(&m1).unwrap(), b"still on the compromised chain");

    // Bob replies with a fresh ratchet key; Alice answers on a new chain.
    let r = wire(&mut bob, &mut rng, b"new ratchet key");
    alice.decrypt(&r).unwrap();
    let m2 = wire(&mut alice, &mut rng, b"after the round trip");
    let m3 = wire(&mut alice, &mut rng, b"and after that");

    // The copy never learned Bob's new ratchet secret.
    let before = copy.to_bytes();
    assert_eq!(copy.decrypt(&m2), Err(Error::UnexpectedRatchetKey));
    assert_eq!(*copy.to_bytes(), *before);
    // Nor does turning its own ratchet (with the attacker's randomness) help.
    let mut attacker_rng = ChaCha20Rng::seed_from_u64(666);
    let mut turned = Session::from_bytes(&stolen).unwrap();
    let forged = wire(&mut turned, &mut attacker_rng, b"forged by the attacker");
    for m in [&m2, &m3] {
        assert_eq!(turned.decrypt(m), Err(Error::AuthenticationFailed));
    }
    // Bob reads both, and Alice, healed, rejects what the copy makes.
    assert_eq!(bob.decrypt(&m3).unwrap(), b"and after that");
    assert_eq!(bob.decrypt(&m2).unwrap(), b"after the round trip");
    let before = alice.to_bytes();
    assert_eq!(alice.decrypt(&forged), Err(Error::AuthenticationFailed));
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
    assert_eq!(copy.decrypt(&m0), Err(Error::DuplicateMessage));
    assert_eq!(copy.decrypt(&m2), Err(Error::DuplicateMessage));
    // m1's key is still stored (not yet received): the copy can read it.
    // That is the documented cost of tolerating reordering.
    assert_eq!(copy.decrypt(&m1).unwrap(), b"m1");

    // After Bob turns the ratchet, a copy cannot read the old chain at all.
    bob.decrypt(&m1).unwrap();
    let r = wire(&mut bob, &mut rng, b"r");
    alice.decrypt(&r).unwrap();
    let n0 = wire(&mut alice, &mut rng, b"n0");
    bob.decrypt(&n0).unwrap();
    let mut later = Session::from_bytes(&bob.to_bytes()).unwrap();
    for m in [&m0, &m1, &m2, &n0] {
        let before = later.to_bytes();
        assert_eq!(later.decrypt(m), Err(Error::DuplicateMessage));
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
    assert_eq!(copy.decrypt(&old), Err(Error::UnexpectedRatchetKey));
    let _ = wire(&mut copy, &mut rng, b"turn");
    assert_eq!(copy.decrypt(&old), Err(Error::AuthenticationFailed));
}

// ---------------------------------------------------------------------------
// Groups: what a stolen copy of a member's group state can and cannot read.

const GROUP: GroupId = GroupId::from_bytes([0x67; 32]);

/// A saved receiver (SPEC §15.11), decoded by the model.
fn receiver(state: &[u8]) -> GReceiver {
    GReceiver::parse(state).unwrap()
}

/// A receiver state built by hand: any chain id and signing key, any
/// ratchet claimed at any index, any cache.
fn forged_receiver(
    chain_id: u32,
    signing_key: [u8; 32],
    next: u32,
    levels: &Levels,
    cache: &[(u32, [u8; 32])],
) -> GroupReceiver {
    let mut window = Window::at(next);
    window.cache.extend(cache.iter().copied());
    let state = GReceiver {
        group: *GROUP.as_bytes(),
        chain_id,
        signing: signing_key,
        identity: None,
        levels: *levels,
        window,
    };
    GroupReceiver::from_bytes(&state.encode()).unwrap()
}

fn group_wire(sender: &mut GroupSender, rng: &mut ChaCha20Rng, text: &[u8]) -> GroupMessage {
    let bytes = sender.encrypt(rng, text).unwrap().into_bytes();
    GroupMessage::from_bytes(&bytes).unwrap()
}

#[test]
fn group_receiver_copy_cannot_read_consumed_or_uncached_indices() {
    let mut rng = ChaCha20Rng::seed_from_u64(10);
    let mut alice = GroupSender::new(&mut rng, GROUP);
    let mut bob = GroupReceiver::import_unauthenticated(&alice.distribution().to_bytes()).unwrap();
    let m: Vec<GroupMessage> = (0..400u32)
        .map(|i| group_wire(&mut alice, &mut rng, &i.to_be_bytes()))
        .collect();
    // In order 0..=4, then 10 (5..=9 cached), then 7 from the cache, then a
    // jump to 100 (68..=99 cached, 11..=67 never), then 399 (367..=398
    // cached; past 256 keys the lowest indices are evicted).
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
            copy.decrypt(&m[i]),
            Err(Error::DuplicateMessage),
            "index {i}"
        );
        assert_eq!(*copy.to_bytes(), *stolen);
    }
    // The documented cost of reordering: keys still cached are readable.
    assert_eq!(copy.decrypt(&m[8]).unwrap().plaintext, 8u32.to_be_bytes());

    // The state holds no key for a consumed index, and its ratchet claimed
    // at an earlier index derives no earlier key.
    let held = receiver(&stolen);
    let (next, levels) = (held.next(), held.levels);
    let cache: Vec<(u32, [u8; 32])> = held.window.cache.into_iter().collect();
    assert_eq!(cache.len(), bob.skipped_key_count());
    let signing = bob.signing_key_bytes();
    let chain = bob.chain_id();
    for i in [4u32, 7, 11, 99, 366, 399] {
        let mut rewound = forged_receiver(chain, signing, i, &levels, &[]);
        assert_eq!(
            rewound.decrypt(&m[i as usize]),
            Err(Error::AuthenticationFailed),
            "index {i} from the ratchet at {next}"
        );
        // Any cached key, claimed as the key of a consumed index.
        for (_, key) in cache.iter().step_by(9) {
            let mut relabelled = forged_receiver(chain, signing, i + 1, &levels, &[(i, *key)]);
            assert_eq!(
                relabelled.decrypt(&m[i as usize]),
                Err(Error::AuthenticationFailed)
            );
        }
    }

    // Past the cache bound the lowest keys go: a receiver that skipped more
    // than MAX_GROUP_SKIPPED_KEYS indices in jumps of the window keeps only
    // the newest.
    let mut carol =
        GroupReceiver::import_unauthenticated(&alice.distribution().to_bytes()).unwrap();
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
        assert_eq!(copy.decrypt(m), Err(Error::DuplicateMessage));
    }
    assert_eq!(copy.decrypt(&later[66]).unwrap().index, start + 66);
}

/// A device and its identity's sessions: `link` makes an established pair.
fn link(rng: &mut ChaCha20Rng, a: &Device, b: &mut Device) -> (Session, Session) {
    let bundle = PreKeyBundle::new(*b.identity_key(), b.signed_prekey(), None);
    let mut at_a = Session::initiate(a, rng, &bundle.verify().unwrap()).unwrap();
    let Message::PreKey(first) = wire(&mut at_a, rng, b"hi") else {
        panic!("first message is a prekey message");
    };
    let (at_b, _) = Session::accept(b, &first).unwrap();
    (at_a, at_b)
}

/// Sends `sender`'s current chain over `session` and installs it at the
/// other end, as an application does.
fn distribute(
    rng: &mut ChaCha20Rng,
    sender: &GroupSender,
    from: &mut Session,
    to: &mut Session,
    store: &mut GroupReceivers,
) {
    let carried = wire(from, rng, &sender.distribution().to_bytes());
    let plaintext = to.decrypt(&carried).unwrap();
    store
        .insert(GroupReceiver::accept(&plaintext, to).unwrap())
        .unwrap();
}

#[test]
fn stolen_member_state_reads_nothing_after_the_rotation_that_excluded_it() {
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let alice_device = Device::generate(&mut rng);
    let mut bob_device = Device::generate(&mut rng);
    let mut mallory_device = Device::generate(&mut rng);
    let (mut ab, mut ba) = link(&mut rng, &alice_device, &mut bob_device);
    let (mut am, mut ma) = link(&mut rng, &alice_device, &mut mallory_device);
    let (mut bm, mut mb) = link(&mut rng, &bob_device, &mut mallory_device);

    let mut alice = GroupSender::new(&mut rng, GROUP);
    let mut bob = GroupSender::new(&mut rng, GROUP);
    let mut mallory = GroupSender::new(&mut rng, GROUP);
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
    // Everything Mallory holds, sender and receivers, is stolen.
    let stolen_sender = mallory.to_bytes();
    let stolen: Vec<_> = at_mallory.iter().map(GroupReceiver::to_bytes).collect();
    assert_eq!(stolen.len(), 2);
    assert!(at_mallory.iter().all(|r| r.skipped_key_count() > 0));
    // The state is live: it reads the old chains' messages still in flight.
    let in_flight = group_wire(&mut alice, &mut rng, b"sent before the removal");
    let mut check = GroupReceivers::new(GROUP);
    for state in &stolen {
        check
            .insert(GroupReceiver::from_bytes(state).unwrap())
            .unwrap();
    }
    assert_eq!(
        check.decrypt(&in_flight).unwrap().plaintext,
        b"sent before the removal"
    );

    // Mallory is removed: Alice and Bob drop her chains and rotate, and send
    // the new chains to each other only.
    let gone = Sender::Authenticated(*mallory_device.identity_key());
    assert_eq!(at_alice.remove_sender(&gone), 1);
    assert_eq!(at_bob.remove_sender(&gone), 1);
    let old_chains = [alice.chain_id(), bob.chain_id()];
    alice.rotate(&mut rng);
    bob.rotate(&mut rng);
    distribute(&mut rng, &alice, &mut ab, &mut ba, &mut at_bob);
    distribute(&mut rng, &bob, &mut ba, &mut ab, &mut at_alice);
    let mut after = Vec::new();
    for _ in 0..20 {
        let a = group_wire(&mut alice, &mut rng, b"after the removal");
        let b = group_wire(&mut bob, &mut rng, b"after the removal");
        assert_eq!(at_bob.decrypt(&a).unwrap().plaintext, b"after the removal");
        assert_eq!(
            at_alice.decrypt(&b).unwrap().plaintext,
            b"after the removal"
        );
        after.extend([a, b]);
    }
    assert!(after.iter().all(|m| !old_chains.contains(&m.chain_id())));

    // The attacker restores the stolen store: no chain to read them with.
    let mut restored = GroupReceivers::new(GROUP);
    for state in &stolen {
        restored
            .insert(GroupReceiver::from_bytes(state).unwrap())
            .unwrap();
    }
    for m in &after {
        assert_eq!(restored.decrypt(m), Err(Error::UnknownGroupChain));
    }
    // Handed the new chains' ids and signing keys, the attacker relabels
    // every ratchet it holds (each receiver's, and Mallory's own sender's)
    // as the new chain, claimed at index 0 (the jump then reaches any
    // index) and at the message's own index, and every cached key as the
    // message's key. None opens anything.
    let signing = |chain: u32| {
        if chain == alice.chain_id() {
            alice.signing_key_bytes()
        } else {
            bob.signing_key_bytes()
        }
    };
    let mut ratchets = vec![GSender::parse(&stolen_sender).unwrap().levels];
    let mut keys = Vec::new();
    for state in &stolen {
        let held = receiver(state);
        ratchets.push(held.levels);
        keys.extend(held.window.cache.into_values());
    }
    assert!(keys.len() > 40);
    let mut attempts = 0;
    for m in &after {
        let (chain, index) = (m.chain_id(), m.index());
        for levels in &ratchets {
            for claimed in [0, index] {
                let mut r = forged_receiver(chain, signing(chain), claimed, levels, &[]);
                assert_eq!(r.decrypt(m), Err(Error::AuthenticationFailed));
                attempts += 1;
            }
        }
        for key in &keys {
            let mut r = forged_receiver(
                chain,
                signing(chain),
                index + 1,
                &ratchets[0],
                &[(index, *key)],
            );
            assert_eq!(r.decrypt(m), Err(Error::AuthenticationFailed));
            attempts += 1;
        }
    }
    assert!(attempts > 40 * 40);
}
