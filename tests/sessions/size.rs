//! The largest peer record under an adversarial peer (SPEC §16.11): the
//! record's encoding is its fixed fields plus, per device, fixed fields plus
//! its sessions' entries, each a session state with its length. The test
//! builds the worst session an authentic peer can make (five chains, the
//! most skipped keys), checks the record formula against real records, and
//! prints the bound (`--nocapture`).

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sotto::sessions::{
    DeviceId, MAX_ARCHIVED_SESSIONS, MAX_DELETED_DEVICES, MAX_DEVICES_PER_USER, MAX_USER_ID_LEN,
    PeerRecord, UserId,
};
use sotto::{
    Device, MAX_RECEIVING_CHAINS, MAX_SKIP, MAX_SKIPPED_KEYS, MAX_STATE_LEN, PreKeyBundle,
};

const NOW: u64 = 1_700_000_000;

/// A session state (SPEC §10.2) without a pending prekey, with a sending
/// chain and `chains` receiving chains holding `keys` skipped keys.
fn session_len(chains: usize, keys: usize) -> usize {
    2 + 8
        + 1
        + 1
        + 4 * 32
        + 1
        + 32
        + 32
        + (1 + 32 + 32 + 4)
        + 4
        + 1
        + chains * (32 + 1 + 4 + 2)
        + 32
        + keys * 36
}

/// The largest session an authentic peer can make: five chains, 2000 keys.
const WORST_SESSION: usize = 72_506;

/// Per device at most: id, identity, pending identity, stale time, flags,
/// recovery time, retry window and count, an outstanding retry hint with a
/// base key, the active flag, the archived count.
const DEVICE_FIXED: usize = 4 + 32 + 33 + 9 + 1 + 9 + 8 + 1 + 70 + 1 + 1;
/// Per session entry: created, last decrypt, the session it lost to (never
/// on the active one), the length.
const ENTRY_FIXED: usize = 8 + 9 + 1 + 4;
/// Version, type, generation, local identity, user id (1 + 64), the
/// local-device flag and the local device (the own record has one), device
/// count, deleted-device count.
const RECORD_FIXED: usize = 2 + 8 + 32 + 1 + MAX_USER_ID_LEN + 1 + 4 + 1 + 1;
/// A deleted device the record remembers: id, identity, pinned, left.
const DELETED_ENTRY: usize = 4 + 32 + 1 + 8;

const fn worst_record(session: usize) -> usize {
    let sessions = 1 + MAX_ARCHIVED_SESSIONS;
    RECORD_FIXED
        + MAX_DELETED_DEVICES * DELETED_ENTRY
        + MAX_DEVICES_PER_USER
            * (DEVICE_FIXED + sessions * (ENTRY_FIXED + session) + MAX_ARCHIVED_SESSIONS * 32)
}

#[test]
fn the_largest_record_under_an_adversarial_peer() {
    assert_eq!(
        session_len(MAX_RECEIVING_CHAINS, MAX_SKIPPED_KEYS),
        WORST_SESSION
    );
    let mut rng = ChaCha20Rng::from_seed([9; 32]);
    let mut alice = Device::generate(&mut rng, NOW).unwrap();
    let bob = Device::generate(&mut rng, NOW).unwrap();
    let mut at_alice = PeerRecord::new(UserId::new(b"bob").unwrap(), *alice.identity_key());
    at_alice
        .update_devices(&[(DeviceId(1), *bob.identity_key())], NOW)
        .unwrap();
    let mut at_bob = PeerRecord::new(UserId::new(b"alice").unwrap(), *bob.identity_key());
    at_bob
        .update_devices(&[(DeviceId(1), *alice.identity_key())], NOW)
        .unwrap();

    // Bob, authentic but adversarial: on every chain he sends MAX_SKIP + 1
    // messages and delivers only the last; Alice answers each time so that
    // he can open the next chain.
    let bundle = PreKeyBundle::new(
        *alice.identity_key(),
        alice.signed_prekey(),
        None,
        Some(alice.last_resort_kem_prekey()),
    );
    at_bob
        .add_bundle(&bob, DeviceId(1), bundle, NOW, &mut rng)
        .unwrap();
    let mut bob_device = bob;
    for _ in 0..MAX_RECEIVING_CHAINS + 1 {
        let mut last = None;
        for _ in 0..=MAX_SKIP {
            last = Some(at_bob.encrypt_to(DeviceId(1), b"x", &mut rng).unwrap());
        }
        at_alice
            .decrypt(&mut alice, DeviceId(1), &last.unwrap(), NOW)
            .unwrap();
        let reply = at_alice.encrypt_to(DeviceId(1), b"r", &mut rng).unwrap();
        at_bob
            .decrypt(&mut bob_device, DeviceId(1), &reply, NOW)
            .unwrap();
    }
    // The fixed fields at their largest: the own record, with the longest
    // user id, measured (a peer record has no local device: 4 bytes less).
    let longest = UserId::new(&[b'u'; MAX_USER_ID_LEN]).unwrap();
    let own = PeerRecord::new_own(longest.clone(), DeviceId(2), *alice.identity_key());
    assert_eq!(own.to_bytes().len(), RECORD_FIXED);
    let mut peer = PeerRecord::new(longest, *alice.identity_key());
    assert_eq!(peer.to_bytes().len(), RECORD_FIXED - 4);
    // The most deleted devices it remembers: three whole lists, the first
    // two deleted to make room for the next.
    let per_list = u32::try_from(MAX_DEVICES_PER_USER).unwrap();
    for first in [1, 1 + per_list, 1 + 2 * per_list] {
        let list: Vec<_> = (first..first + per_list)
            .map(|i| {
                let key = *Device::generate(&mut rng, NOW).unwrap().identity_key();
                (DeviceId(i), key)
            })
            .collect();
        peer.update_devices(&list, NOW).unwrap();
    }
    let listed_device = 4 + 32 + 1 + 1 + 1 + 1 + 8 + 1 + 1 + 1 + 1;
    assert_eq!(
        peer.to_bytes().len(),
        RECORD_FIXED - 4
            + MAX_DELETED_DEVICES * DELETED_ENTRY
            + MAX_DEVICES_PER_USER * listed_device
    );

    let record = at_alice.to_bytes();
    // Header (a peer record with a 3-byte user id, no deleted devices: 49),
    // one device without the
    // optional fields (device fixed minus 33 + 9 + 9 + 70 - 4 absent parts),
    // one active entry with a last decrypt.
    let device = 4 + 32 + 1 + 1 + 1 + 1 + 8 + 1 + 1 + 1 + 1;
    let header = 2 + 8 + 32 + 1 + 3 + 1 + 1 + 1;
    let entry = ENTRY_FIXED;
    let session = record.len() - header - device - entry;
    assert_eq!(
        session, WORST_SESSION,
        "the adversarial session is the largest"
    );

    let bound = worst_record(WORST_SESSION);
    let sealed = bound + 35 + 16;
    eprintln!(
        "largest session state: {WORST_SESSION} bytes; largest peer record: {bound} bytes \
         ({MAX_DEVICES_PER_USER} devices x {} sessions), sealed {sealed} bytes; MAX_STATE_LEN {MAX_STATE_LEN}",
        1 + MAX_ARCHIVED_SESSIONS
    );
    assert_eq!(bound, 5_808_546);
    assert!(sealed <= MAX_STATE_LEN);
}

/// The largest group session (SPEC §16.11): generation, the local user and
/// every member at the longest user id, the sender, the largest store and
/// every dropped chain with its owner.
#[test]
fn the_largest_group_session() {
    use sotto::group::{GroupReceiver, GroupSender, MAX_GROUP_RECEIVERS};
    use sotto::sessions::{MAX_DROPPED_CHAINS, MAX_GROUP_MEMBERS};
    let user = 1 + MAX_USER_ID_LEN;
    let store = 2 + 8 + 32 + 2 + MAX_GROUP_RECEIVERS * (2 + GroupReceiver::MAX_ENCODED_LEN);
    // Each dropped chain: its id and its owner's identity key.
    let dropped = 2 + MAX_DROPPED_CHAINS * (32 + 32);
    let group = 2
        + 8
        + user
        + 2
        + MAX_GROUP_MEMBERS * user
        + GroupSender::ENCODED_LEN
        + 4
        + store
        + dropped;
    eprintln!(
        "largest group session: {group} bytes, sealed {}",
        group + 51
    );
    assert_eq!(group, 9_952_341);
    assert!(group + 51 <= MAX_STATE_LEN);
}
