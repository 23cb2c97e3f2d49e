//! sessions_negative.json: the session layer's refusals as a table. A row
//! for each decoding rule of §16.11 (peer records, type 0x25, and group
//! sessions, type 0x26: lengths, bounds, flags, order, keys, the embedded
//! states decoded from exactly their bytes, trailing bytes, and the checks
//! after them), rows with two faults for the check orders of §16.2,
//! §16.3, §16.5 step 1, §16.6, §16.8 and §16.9, and rows with
//! `"error": null` at the boundaries that must pass.

use serde_json::{Value, json};
use testkit::hex::hex;
use testkit::layout;
use testkit::model::primitives::{MAX_PLAINTEXT, MAX_STATE, x_pub};
use testkit::model::sessions::{Dropped, Group, Record, Remembered};
use testkit::model::{Layout, with};
use testkit::points::{ED25519_SMALL_ORDER, P, X25519_HIGH_BIT};

use crate::agreement::NOW;
use crate::rec::{e, ef, file};
use crate::sessions::{Net, saved, stranger};
use crate::table::Table;

const LABEL: &str = "sotto v2 vectors sessions negative";

fn decode(encoding: &str, input: &[u8]) -> Value {
    json!({ "op": "decode", "encoding": encoding, "input": hex(input) })
}

/// A 32-byte value that is not an Ed25519 point.
fn not_a_point() -> [u8; 32] {
    (2u8..)
        .map(|b| {
            let mut k = [0u8; 32];
            k[0] = b;
            k
        })
        .find(|k| {
            curve25519_dalek::edwards::CompressedEdwardsY(*k)
                .decompress()
                .is_none()
        })
        .unwrap()
}

/// Values the rows are made from.
struct Ctx {
    /// The rich record (every optional field) and its layout.
    rec: Vec<u8>,
    rl: Layout,
    own: Vec<u8>,
    group: Vec<u8>,
    gl: Layout,
    /// Bundles of Bob's devices (b1: PQXDH; b1 without KEM; b2 classical).
    b1: Vec<u8>,
    b1_classical: Vec<u8>,
    b2: Vec<u8>,
    b2_classical: Vec<u8>,
    /// A ratchet message from b1 to a1 on the rich record's session.
    ratchet_from_b1: Vec<u8>,
    /// A prekey message under another identity than device 1's.
    prekey_other: Vec<u8>,
    /// A group message on Bob's chain that `g_a1` holds.
    group_from_b1: Vec<u8>,
}

fn setup(t: &mut Table) -> Ctx {
    let mut n = Net::new("negative fixtures");
    saved::scenario(&mut n);
    for name in [
        "a1", "a2", "b1", "b2", "a1_bob", "a1_own", "b1_alice", "g_a1",
    ] {
        t.fixture(name, &n.save(name));
    }
    // The own record's device 8 (a2) with no session; the rich record with
    // its retry window full.
    let mut full = Record::decode(&n.save("a1_bob")).unwrap();
    full.devices.get_mut(&1).unwrap().retry_count = 8;
    t.fixture("a1_bob_window_full", &full.encode());
    // A group of MAX_GROUP_MEMBERS members.
    let mut big = Group::decode(&n.save("g_a1")).unwrap();
    for i in 0..998u32 {
        big.members.insert(format!("m{i:03}").into_bytes());
    }
    assert_eq!(big.members.len(), 1000);
    t.fixture("g_full", &big.encode());
    let b1 = n.bundle("b1");
    let b1_classical = n.bundle_with("b1", None, None);
    let b2 = n.bundle("b2");
    let b2_classical = n.bundle_with("b2", None, None);
    let ratchet_from_b1 = n.send_to("b1_alice", 7, "to a1");
    // Carol-like: a device unknown to the record starts a session with a1.
    n.devices(&["c1"]);
    n.record("c1_alice", "alice", "c1", None);
    n.list("c1_alice", &[(7, "a1")], NOW).unwrap();
    n.connect("c1_alice", "c1", 7, "a1", NOW);
    let prekey_other = n.send("c1_alice", "not bob")[&7].clone();
    let group_from_b1 = testkit::hex::unhex(
        n.ok(json!({ "op": "group_session_encrypt", "group": "g_b1", "payload": hex(b"to the group") }))
            .out["message"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    // A record of a user who is no member of g_a1, at a1.
    n.record("a1_carol", "carol", "a1", None);
    t.fixture("a1_carol", &n.save("a1_carol"));
    // A record of the local user at a1 that is not the own record.
    n.record("a1_alice_peer", "alice", "a1", None);
    t.fixture("a1_alice_peer", &n.save("a1_alice_peer"));
    let rec = n.save("a1_bob");
    let group = n.save("g_a1");
    Ctx {
        rl: Record::read(&rec).unwrap().1,
        rec,
        own: n.save("a1_own"),
        gl: Group::read(&group).unwrap().1,
        group,
        b1,
        b1_classical,
        b2,
        b2_classical,
        ratchet_from_b1,
        prekey_other,
        group_from_b1,
    }
}

#[allow(clippy::too_many_lines, reason = "one row per rule")]
fn record_rows(t: &mut Table, c: &Ctx) {
    let (r, l) = (&c.rec, &c.rl);
    let ed = |f: &dyn Fn(&mut Vec<u8>)| with(r, |b| f(b));
    let row = |t: &mut Table, name: &str, mutation: &str, input: Vec<u8>, error: Option<Value>| {
        t.row(name, mutation, decode("PeerRecord", &input), error);
    };
    row(
        t,
        "record_valid",
        "the record as saved (every optional field present)",
        r.clone(),
        None,
    );
    row(
        t,
        "record_empty",
        "the empty input",
        vec![],
        Some(e("Truncated")),
    );
    row(
        t,
        "record_version",
        "version 03",
        ed(&|b| l.put_u8(b, "version", 3)),
        Some(ef("UnsupportedVersion", json!({ "found": 3 }))),
    );
    row(
        t,
        "record_type",
        "type 0x24",
        ed(&|b| l.put_u8(b, "type", 0x24)),
        Some(ef("WrongType", json!({ "expected": 0x25, "found": 0x24 }))),
    );
    row(
        t,
        "record_truncated_generation",
        "cut 3 bytes into generation",
        r[..5].to_vec(),
        Some(e("Truncated")),
    );
    row(
        t,
        "record_local_identity_not_a_point",
        "local_identity not an Ed25519 point",
        ed(&|b| l.put(b, "local_identity", &not_a_point())),
        Some(e("InvalidPublicKey")),
    );
    row(
        t,
        "record_local_identity_small_order",
        "local_identity of small order",
        ed(&|b| l.put(b, "local_identity", &ED25519_SMALL_ORDER)),
        Some(e("InvalidPublicKey")),
    );
    row(
        t,
        "record_user_len_0",
        "user_len = 0",
        ed(&|b| l.put_u8(b, "user_len", 0)),
        Some(e("InvalidEncoding")),
    );
    row(
        t,
        "record_user_len_65",
        "user_len = 65 (checked before the user's bytes)",
        ed(&|b| l.put_u8(b, "user_len", 65)),
        Some(e("InvalidEncoding")),
    );
    row(
        t,
        "record_has_local_device_2",
        "has_local_device = 2",
        ed(&|b| l.put_u8(b, "has_local_device", 2)),
        Some(e("InvalidEncoding")),
    );
    row(
        t,
        "record_device_count_17",
        "device_count = 17 (checked before the devices)",
        ed(&|b| l.put_u8(b, "device_count", 17)),
        Some(e("InvalidEncoding")),
    );
    row(
        t,
        "record_device_count_short",
        "device_count = 5 (one more than the devices there are)",
        ed(&|b| l.put_u8(b, "device_count", 5)),
        Some(e("Truncated")),
    );
    row(
        t,
        "record_device_count_long",
        "device_count = 3 (one fewer: the last device is left over)",
        ed(&|b| l.put_u8(b, "device_count", 3)),
        Some(e("TrailingBytes")),
    );
    let id0 = l.slice(r, "devices[0].device_id").to_vec();
    row(
        t,
        "record_device_ids_equal",
        "devices[1].device_id = devices[0].device_id",
        ed(&|b| l.put(b, "devices[1].device_id", &id0)),
        Some(e("InvalidEncoding")),
    );
    row(
        t,
        "record_device_ids_decreasing",
        "devices[1].device_id = 0 (below devices[0])",
        ed(&|b| l.put_u32(b, "devices[1].device_id", 0)),
        Some(e("InvalidEncoding")),
    );
    row(
        t,
        "record_identity_not_a_point",
        "devices[0].identity not an Ed25519 point",
        ed(&|b| l.put(b, "devices[0].identity", &not_a_point())),
        Some(e("InvalidPublicKey")),
    );
    row(
        t,
        "record_has_pending_2",
        "devices[0].has_pending = 2",
        ed(&|b| l.put_u8(b, "devices[0].has_pending", 2)),
        Some(e("InvalidEncoding")),
    );
    row(
        t,
        "record_pending_not_a_point",
        "devices[2].pending not an Ed25519 point",
        ed(&|b| l.put(b, "devices[2].pending", &not_a_point())),
        Some(e("InvalidPublicKey")),
    );
    let trusted = l.slice(r, "devices[2].identity").to_vec();
    row(
        t,
        "record_pending_is_trusted",
        "devices[2].pending = devices[2].identity",
        ed(&|b| l.put(b, "devices[2].pending", &trusted)),
        Some(e("InvalidEncoding")),
    );
    row(
        t,
        "record_has_stale_2",
        "devices[0].has_stale = 2",
        ed(&|b| l.put_u8(b, "devices[0].has_stale", 2)),
        Some(e("InvalidEncoding")),
    );
    for (v, what) in [(3u8, "both bits"), (4, "bit 2"), (0x80, "bit 7")] {
        row(
            t,
            &format!("record_flags_{v:02x}"),
            &format!("devices[0].flags = {v:#04x} ({what})"),
            ed(&|b| l.put_u8(b, "devices[0].flags", v)),
            Some(e("InvalidEncoding")),
        );
    }
    row(
        t,
        "record_flags_classical",
        "devices[1].flags = 0x02 (classical allowed alone, as saved)",
        r.clone(),
        None,
    );
    row(
        t,
        "record_has_recovery_2",
        "devices[0].has_recovery = 2",
        ed(&|b| l.put_u8(b, "devices[0].has_recovery", 2)),
        Some(e("InvalidEncoding")),
    );
    row(
        t,
        "record_retry_count_9",
        "devices[0].retry_count = 9 (MAX_RETRY_REQUESTS_PER_INTERVAL + 1)",
        ed(&|b| l.put_u8(b, "devices[0].retry_count", 9)),
        Some(e("InvalidEncoding")),
    );
    row(
        t,
        "record_retry_count_8",
        "devices[0].retry_count = 8 (MAX_RETRY_REQUESTS_PER_INTERVAL)",
        ed(&|b| l.put_u8(b, "devices[0].retry_count", 8)),
        None,
    );
    row(
        t,
        "record_has_unanswered_2",
        "devices[0].has_unanswered = 2",
        ed(&|b| l.put_u8(b, "devices[0].has_unanswered", 2)),
        Some(e("InvalidEncoding")),
    );
    row(
        t,
        "record_hint_ratchet_key_high_bit",
        "devices[0].unanswered.ratchet_key with bit 255 set",
        ed(&|b| l.put(b, "devices[0].unanswered.ratchet_key", &X25519_HIGH_BIT)),
        Some(e("InvalidPublicKey")),
    );
    row(
        t,
        "record_hint_ratchet_key_p",
        "devices[0].unanswered.ratchet_key = p",
        ed(&|b| l.put(b, "devices[0].unanswered.ratchet_key", &P)),
        Some(e("InvalidPublicKey")),
    );
    row(
        t,
        "record_hint_has_base_key_2",
        "devices[0].unanswered.has_base_key = 2",
        ed(&|b| l.put_u8(b, "devices[0].unanswered.has_base_key", 2)),
        Some(e("InvalidEncoding")),
    );
    row(
        t,
        "record_hint_base_key_p",
        "devices[0].unanswered.base_key = p",
        ed(&|b| l.put(b, "devices[0].unanswered.base_key", &P)),
        Some(e("InvalidPublicKey")),
    );
    row(
        t,
        "record_hint_any_number",
        "devices[0].unanswered.message_number = 2^32 - 1 (taken as it is)",
        ed(&|b| l.put_u32(b, "devices[0].unanswered.message_number", u32::MAX)),
        None,
    );
    row(
        t,
        "record_has_active_2",
        "devices[0].has_active = 2",
        ed(&|b| l.put_u8(b, "devices[0].has_active", 2)),
        Some(e("InvalidEncoding")),
    );
    row(
        t,
        "record_active_has_last_decrypt_2",
        "devices[0].active.has_last_decrypt = 2",
        ed(&|b| l.put_u8(b, "devices[0].active.has_last_decrypt", 2)),
        Some(e("InvalidEncoding")),
    );
    row(
        t,
        "record_active_lost_to",
        "devices[0].active.has_lost_to = 1 (an active session never lost; checked when the flag is read)",
        ed(&|b| l.put_u8(b, "devices[0].active.has_lost_to", 1)),
        Some(e("InvalidEncoding")),
    );
    row(
        t,
        "record_archived_has_lost_to_2",
        "devices[0].archived[0].has_lost_to = 2",
        ed(&|b| l.put_u8(b, "devices[0].archived[0].has_lost_to", 2)),
        Some(e("InvalidEncoding")),
    );
    row(
        t,
        "record_lost_to_larger",
        "devices[0].archived[1].lost_to = ff..ff (not smaller than the session's base key; checked after TrailingBytes)",
        ed(&|b| l.put(b, "devices[0].archived[1].lost_to", &[0xff; 32])),
        Some(e("InvalidEncoding")),
    );
    let own_base = l
        .slice(r, "devices[0].archived[1].session.base_key")
        .to_vec();
    row(
        t,
        "record_lost_to_own_base_key",
        "devices[0].archived[1].lost_to = its own session's base_key (not smaller)",
        ed(&|b| l.put(b, "devices[0].archived[1].lost_to", &own_base)),
        Some(e("InvalidEncoding")),
    );
    let mut lost_to_trailing = ed(&|b| l.put(b, "devices[0].archived[1].lost_to", &[0xff; 32]));
    lost_to_trailing.push(0);
    row(
        t,
        "record_lost_to_larger_trailing",
        "devices[0].archived[1].lost_to = ff..ff and one byte appended: TrailingBytes comes first",
        lost_to_trailing,
        Some(e("TrailingBytes")),
    );
    row(
        t,
        "record_lost_to_zero",
        "devices[0].archived[1].lost_to = 00..00 (smaller than any other base key; any such value is taken)",
        ed(&|b| l.put(b, "devices[0].archived[1].lost_to", &[0; 32])),
        None,
    );
    row(
        t,
        "record_archived_count_5",
        "devices[0].archived_count = 5 (MAX_ARCHIVED_SESSIONS + 1)",
        ed(&|b| l.put_u8(b, "devices[0].archived_count", 5)),
        Some(e("InvalidEncoding")),
    );
    let len = l.u32(r, "devices[0].active.length");
    row(
        t,
        "record_session_length_short",
        "devices[0].active.length one less: the session's own Truncated",
        ed(&|b| l.put_u32(b, "devices[0].active.length", len - 1)),
        Some(e("Truncated")),
    );
    row(
        t,
        "record_session_length_long",
        "devices[0].active.length one more: the session's own TrailingBytes",
        ed(&|b| l.put_u32(b, "devices[0].active.length", len + 1)),
        Some(e("TrailingBytes")),
    );
    row(
        t,
        "record_session_length_past_end",
        "devices[0].active.length = 2^32 - 1 (past the end of the input)",
        ed(&|b| l.put_u32(b, "devices[0].active.length", u32::MAX)),
        Some(e("Truncated")),
    );
    row(
        t,
        "record_session_version",
        "devices[0].active.session.version = 03",
        ed(&|b| l.put_u8(b, "devices[0].active.session.version", 3)),
        Some(ef("UnsupportedVersion", json!({ "found": 3 }))),
    );
    row(
        t,
        "record_session_type",
        "devices[0].active.session.type = 0x21",
        ed(&|b| l.put_u8(b, "devices[0].active.session.type", 0x21)),
        Some(ef("WrongType", json!({ "expected": 0x20, "found": 0x21 }))),
    );
    row(
        t,
        "record_session_role",
        "devices[0].archived[0].session.role = 2 (the session's own rule)",
        ed(&|b| l.put_u8(b, "devices[0].archived[0].session.role", 2)),
        Some(e("InvalidEncoding")),
    );
    let mut trailing = r.clone();
    trailing.push(0);
    row(
        t,
        "record_trailing_byte",
        "one byte appended",
        trailing.clone(),
        Some(e("TrailingBytes")),
    );
    let padded = |input: &[u8], len: usize| json!({ "op": "decode", "encoding": "PeerRecord", "input": hex(input), "input_pad_to": len });
    t.fails(
        "record_too_large",
        "zero-padded to MAX_STATE_LEN + 1 bytes",
        padded(r, MAX_STATE + 1),
        e("TooLarge"),
    );
    t.fails("record_max_state_trailing", "zero-padded to MAX_STATE_LEN bytes (TooLarge is not raised; the padding is trailing bytes)", padded(r, MAX_STATE), e("TrailingBytes"));
    // The checks after TrailingBytes, each on a record re-encoded with one
    // inconsistency (every field valid on its own).
    let model = Record::decode(r).unwrap();
    let re = |f: &dyn Fn(&mut Record)| {
        let mut m = model.clone();
        f(&mut m);
        m.encode()
    };
    let other = testkit::model::keys::read_identity_key(&stranger("negative other identity"))
        .unwrap()
        .0;
    row(
        t,
        "record_session_local_identity",
        "devices[0].active.session.local_identity = another identity key",
        re(&|m| {
            m.devices
                .get_mut(&1)
                .unwrap()
                .active
                .as_mut()
                .unwrap()
                .session
                .local = other
        }),
        Some(e("InvalidEncoding")),
    );
    row(
        t,
        "record_session_remote_identity",
        "devices[0].archived[1].session.remote_identity = another identity key",
        re(&|m| m.devices.get_mut(&1).unwrap().archived[1].session.remote = other),
        Some(e("InvalidEncoding")),
    );
    row(
        t,
        "record_session_remote_is_pending",
        "devices[2] (pending identity) given the active session of device 1 with its remote_identity set to the pending identity (not the trusted one)",
        re(&|m| {
            let mut e0 = m.devices[&1].active.clone().unwrap();
            let d = m.devices.get_mut(&3).unwrap();
            e0.session.remote = d.pending.unwrap();
            d.pinned = true;
            d.active = Some(e0);
        }),
        Some(e("InvalidEncoding")),
    );
    row(
        t,
        "record_two_sessions_one_base_key",
        "devices[0].archived[0].session.base_key = devices[0].active.session.base_key",
        re(&|m| {
            let d = m.devices.get_mut(&1).unwrap();
            d.archived[0].session.base = d.active.as_ref().unwrap().session.base;
        }),
        Some(e("InvalidEncoding")),
    );
    row(
        t,
        "record_pq_session_unpinned",
        "devices[0].flags = 0 while its sessions are PQXDH",
        ed(&|b| l.put_u8(b, "devices[0].flags", 0)),
        Some(e("InvalidEncoding")),
    );
    row(
        t,
        "record_classical_session_unpinned",
        "devices[1] (X3DH session, classical allowed, not pinned) as saved",
        r.clone(),
        None,
    );
    let mut both = re(&|m| m.devices.get_mut(&1).unwrap().pinned = false);
    both.push(0);
    row(
        t,
        "record_order_trailing_before_consistency",
        "devices[0] unpinned with PQXDH sessions, and one byte appended: TrailingBytes comes first",
        both,
        Some(e("TrailingBytes")),
    );
    // Bounds that pass.
    let mut m = model.clone();
    m.user = vec![b'u'; 64];
    row(
        t,
        "record_user_len_64",
        "user of 64 bytes (MAX_USER_ID_LEN)",
        m.encode(),
        None,
    );
    let mut m = Record::new(b"bob".to_vec(), model.local_identity, None);
    for i in 0..16u32 {
        let k = testkit::model::keys::read_identity_key(&stranger(&format!("negative device {i}")))
            .unwrap()
            .0;
        m.devices
            .insert(i * 3, testkit::model::sessions::PeerDevice::new(k));
    }
    row(
        t,
        "record_16_devices",
        "16 devices (MAX_DEVICES_PER_USER), ids 0, 3, ..., 45",
        m.encode(),
        None,
    );
    remembered_rows(t, c, &model);
    // The own record: the local device never appears in it.
    let ol = Record::read(&c.own).unwrap().1;
    let local = ol.u32(&c.own, "local_device");
    row(
        t,
        "record_own_device_is_local",
        "the own record with devices[0].device_id = local_device",
        with(&c.own, |b| ol.put_u32(b, "devices[0].device_id", local)),
        Some(e("InvalidEncoding")),
    );
    row(
        t,
        "record_own_valid",
        "the own record as saved",
        c.own.clone(),
        None,
    );
}

/// An identity key of no device, decoded.
fn other_key(label: &str) -> [u8; 32] {
    testkit::model::keys::read_identity_key(&stranger(label))
        .unwrap()
        .0
}

/// §16.11's remembered devices (deleted_count and its entries).
#[allow(clippy::too_many_lines, reason = "one row per rule")]
fn remembered_rows(t: &mut Table, c: &Ctx, model: &Record) {
    let row = |t: &mut Table, name: &str, mutation: &str, input: Vec<u8>, error: Option<Value>| {
        t.row(name, mutation, decode("PeerRecord", &input), error);
    };
    let mut m = model.clone();
    for (id, pinned, left) in [(10u32, true, NOW), (12, false, u64::MAX)] {
        m.deleted.insert(
            id,
            Remembered {
                identity: other_key(&format!("negative remembered {id}")),
                pinned,
                left,
            },
        );
    }
    let r = m.encode();
    let l = Record::read(&r).unwrap().1;
    let ed = |f: &dyn Fn(&mut Vec<u8>)| with(&r, |b| f(b));
    row(
        t,
        "record_remembered_valid",
        "the rich record with two remembered devices (10: pinned; 12: not, left = 2^64 - 1, taken as it is)",
        r.clone(),
        None,
    );
    row(
        t,
        "record_deleted_count_33",
        "deleted_count = 33 (MAX_DELETED_DEVICES + 1, checked before the entries)",
        ed(&|b| l.put_u8(b, "deleted_count", 33)),
        Some(e("InvalidEncoding")),
    );
    row(
        t,
        "record_deleted_count_short",
        "deleted_count = 3 (one more than there are)",
        ed(&|b| l.put_u8(b, "deleted_count", 3)),
        Some(e("Truncated")),
    );
    row(
        t,
        "record_deleted_count_long",
        "deleted_count = 1 (the second entry is left over)",
        ed(&|b| l.put_u8(b, "deleted_count", 1)),
        Some(e("TrailingBytes")),
    );
    row(
        t,
        "record_deleted_ids_equal",
        "deleted[1].device_id = deleted[0].device_id",
        ed(&|b| l.put_u32(b, "deleted[1].device_id", 10)),
        Some(e("InvalidEncoding")),
    );
    row(
        t,
        "record_deleted_ids_decreasing",
        "deleted[1].device_id = 9 (below deleted[0])",
        ed(&|b| l.put_u32(b, "deleted[1].device_id", 9)),
        Some(e("InvalidEncoding")),
    );
    row(
        t,
        "record_deleted_id_held",
        "deleted[0].device_id = 4 (a device the record holds)",
        ed(&|b| l.put_u32(b, "deleted[0].device_id", 4)),
        Some(e("InvalidEncoding")),
    );
    row(
        t,
        "record_deleted_identity_not_a_point",
        "deleted[0].identity not an Ed25519 point",
        ed(&|b| l.put(b, "deleted[0].identity", &not_a_point())),
        Some(e("InvalidPublicKey")),
    );
    row(
        t,
        "record_deleted_identity_small_order",
        "deleted[1].identity of small order",
        ed(&|b| l.put(b, "deleted[1].identity", &ED25519_SMALL_ORDER)),
        Some(e("InvalidPublicKey")),
    );
    row(
        t,
        "record_deleted_pinned_2",
        "deleted[0].pinned = 2",
        ed(&|b| l.put_u8(b, "deleted[0].pinned", 2)),
        Some(e("InvalidEncoding")),
    );
    row(
        t,
        "record_deleted_truncated",
        "cut 4 bytes into deleted[1].left",
        r[..r.len() - 4].to_vec(),
        Some(e("Truncated")),
    );
    let mut full = model.clone();
    for i in 0..32u32 {
        full.deleted.insert(
            100 + i,
            Remembered {
                identity: other_key(&format!("negative remembered many {i}")),
                pinned: i % 2 == 0,
                left: NOW + u64::from(i),
            },
        );
    }
    row(
        t,
        "record_deleted_32",
        "32 remembered devices (MAX_DELETED_DEVICES), ids 100 ..= 131",
        full.encode(),
        None,
    );
    // The own record: a remembered device is never the local device.
    let mut own = Record::decode(&c.own).unwrap();
    let local = own.local_device.unwrap();
    own.deleted.insert(
        local,
        Remembered {
            identity: other_key("negative remembered local"),
            pinned: false,
            left: NOW,
        },
    );
    row(
        t,
        "record_deleted_is_local_device",
        "the own record remembering its local_device",
        own.encode(),
        Some(e("InvalidEncoding")),
    );
}

/// A group session's bytes from its parts, members in the order given.
fn group_bytes(
    generation: u64,
    local: &[u8],
    members: &[&[u8]],
    sender: &[u8],
    store: &[u8],
) -> Vec<u8> {
    let mut out = vec![2, 0x26];
    out.extend(generation.to_be_bytes());
    out.push(u8::try_from(local.len()).unwrap());
    out.extend(local);
    out.extend(u16::try_from(members.len()).unwrap().to_be_bytes());
    for m in members {
        out.push(u8::try_from(m.len()).unwrap());
        out.extend(*m);
    }
    out.extend(sender);
    out.extend(u32::try_from(store.len()).unwrap().to_be_bytes());
    out.extend(store);
    out.extend(0u16.to_be_bytes());
    out
}

/// §16.11's dropped chains (dropped_count and the ids).
fn dropped_rows(t: &mut Table, model: &Group) {
    let row = |t: &mut Table, name: &str, mutation: &str, input: Vec<u8>, error: Option<Value>| {
        t.row(name, mutation, decode("GroupSession", &input), error);
    };
    let held = model.store.entries[0].chain;
    let mut m = model.clone();
    m.dropped = vec![
        Dropped {
            chain: [0x31; 32],
            owner: [0x41; 32],
        },
        Dropped {
            chain: [0x32; 32],
            owner: [0x42; 32],
        },
    ];
    let g = m.encode();
    let l = Group::read(&g).unwrap().1;
    let ed = |f: &dyn Fn(&mut Vec<u8>)| with(&g, |b| f(b));
    row(
        t,
        "group_dropped_valid",
        "two dropped chains, 31..31 (owner 41..41) then 32..32 (owner 42..42)",
        g.clone(),
        None,
    );
    row(
        t,
        "group_dropped_count_1025",
        "dropped_count = 1025 (MAX_DROPPED_CHAINS + 1, checked before the ids)",
        ed(&|b| l.put_u16(b, "dropped_count", 1025)),
        Some(e("InvalidEncoding")),
    );
    row(
        t,
        "group_dropped_count_short",
        "dropped_count = 3 (one more than there are)",
        ed(&|b| l.put_u16(b, "dropped_count", 3)),
        Some(e("Truncated")),
    );
    row(
        t,
        "group_dropped_count_long",
        "dropped_count = 1 (the second entry is left over)",
        ed(&|b| l.put_u16(b, "dropped_count", 1)),
        Some(e("TrailingBytes")),
    );
    row(
        t,
        "group_dropped_twice",
        "dropped[1].chain = dropped[0].chain, owners differ (checked after TrailingBytes)",
        ed(&|b| l.put(b, "dropped[1].chain", &[0x31; 32])),
        Some(e("InvalidEncoding")),
    );
    let mut twice_trailing = ed(&|b| l.put(b, "dropped[1].chain", &[0x31; 32]));
    twice_trailing.push(0);
    row(
        t,
        "group_dropped_twice_trailing",
        "dropped[1].chain = dropped[0].chain and one byte appended: TrailingBytes comes first",
        twice_trailing,
        Some(e("TrailingBytes")),
    );
    row(
        t,
        "group_dropped_held",
        "dropped[1].chain = the chain the store holds",
        ed(&|b| l.put(b, "dropped[1].chain", &held)),
        Some(e("InvalidEncoding")),
    );
    let mut full = model.clone();
    full.dropped = (0..1024u32)
        .map(|i| {
            let mut chain = [0x77; 32];
            chain[..4].copy_from_slice(&i.to_be_bytes());
            Dropped {
                chain,
                owner: [0x78; 32],
            }
        })
        .collect();
    row(
        t,
        "group_dropped_1024",
        "1024 dropped chains (MAX_DROPPED_CHAINS), all of one owner",
        full.encode(),
        None,
    );
    row(
        t,
        "group_dropped_missing",
        "the dropped_count cut off (the input ends after the store)",
        g[..g.len() - 2 - 128].to_vec(),
        Some(e("Truncated")),
    );
}

#[allow(clippy::too_many_lines, reason = "one row per rule")]
fn group_rows(t: &mut Table, c: &Ctx) {
    let (g, l) = (&c.group, &c.gl);
    let ed = |f: &dyn Fn(&mut Vec<u8>)| with(g, |b| f(b));
    let row = |t: &mut Table, name: &str, mutation: &str, input: Vec<u8>, error: Option<Value>| {
        t.row(name, mutation, decode("GroupSession", &input), error);
    };
    let model = Group::decode(g).unwrap();
    let sender = model.sender.encode();
    let store = model.store.encode();
    let parts = |local: &[u8], members: &[&[u8]]| {
        group_bytes(model.generation, local, members, &sender, &store)
    };
    row(
        t,
        "group_valid",
        "the group session as saved",
        g.clone(),
        None,
    );
    row(
        t,
        "group_empty",
        "the empty input",
        vec![],
        Some(e("Truncated")),
    );
    row(
        t,
        "group_version",
        "version 03",
        ed(&|b| l.put_u8(b, "version", 3)),
        Some(ef("UnsupportedVersion", json!({ "found": 3 }))),
    );
    row(
        t,
        "group_type",
        "type 0x25",
        ed(&|b| l.put_u8(b, "type", 0x25)),
        Some(ef("WrongType", json!({ "expected": 0x26, "found": 0x25 }))),
    );
    row(
        t,
        "group_local_user_len_0",
        "local_user_len = 0",
        ed(&|b| l.put_u8(b, "local_user_len", 0)),
        Some(e("InvalidEncoding")),
    );
    row(
        t,
        "group_local_user_len_65",
        "local_user_len = 65",
        ed(&|b| l.put_u8(b, "local_user_len", 65)),
        Some(e("InvalidEncoding")),
    );
    row(
        t,
        "group_member_count_0",
        "member_count = 0",
        ed(&|b| l.put_u16(b, "member_count", 0)),
        Some(e("InvalidEncoding")),
    );
    row(
        t,
        "group_member_count_1001",
        "member_count = 1001 (MAX_GROUP_MEMBERS + 1, checked before the members)",
        ed(&|b| l.put_u16(b, "member_count", 1001)),
        Some(e("InvalidEncoding")),
    );
    row(
        t,
        "group_member_len_0",
        "members[0] of length 0",
        ed(&|b| l.put_u8(b, "members[0]_len", 0)),
        Some(e("InvalidEncoding")),
    );
    row(
        t,
        "group_member_len_65",
        "members[1] of length 65",
        ed(&|b| l.put_u8(b, "members[1]_len", 65)),
        Some(e("InvalidEncoding")),
    );
    row(
        t,
        "group_members_decreasing",
        "members \"bob\", \"alice\"",
        parts(b"alice", &[b"bob", b"alice"]),
        Some(e("InvalidEncoding")),
    );
    row(
        t,
        "group_members_equal",
        "members \"alice\", \"alice\", \"bob\" (count 3)",
        parts(b"alice", &[b"alice", b"alice", b"bob"]),
        Some(e("InvalidEncoding")),
    );
    row(
        t,
        "group_members_prefix_after",
        "members \"alicex\", \"alice\", \"bob\" (a proper prefix must come first)",
        parts(b"alice", &[b"alicex", b"alice", b"bob"]),
        Some(e("InvalidEncoding")),
    );
    row(
        t,
        "group_members_prefix_first",
        "members \"alice\", \"alicex\", \"bob\"",
        parts(b"alice", &[b"alice", b"alicex", b"bob"]),
        None,
    );
    row(
        t,
        "group_member_len_64",
        "members \"alice\", \"bob\", and 64 bytes of 'z'",
        parts(b"alice", &[b"alice", b"bob", &[b'z'; 64]]),
        None,
    );
    let sender_at = l.start("sender.version");
    row(
        t,
        "group_sender_truncated",
        "cut 100 bytes into the sender",
        g[..sender_at + 100].to_vec(),
        Some(e("Truncated")),
    );
    row(
        t,
        "group_sender_version",
        "sender.version = 03",
        ed(&|b| l.put_u8(b, "sender.version", 3)),
        Some(ef("UnsupportedVersion", json!({ "found": 3 }))),
    );
    row(
        t,
        "group_sender_type",
        "sender.type = 0x23",
        ed(&|b| l.put_u8(b, "sender.type", 0x23)),
        Some(ef("WrongType", json!({ "expected": 0x22, "found": 0x23 }))),
    );
    row(
        t,
        "group_sender_owner",
        "sender.owner of small order",
        ed(&|b| l.put(b, "sender.owner", &ED25519_SMALL_ORDER)),
        Some(e("InvalidPublicKey")),
    );
    let len = l.u32(g, "store_length");
    row(
        t,
        "group_store_length_short",
        "store_length one less: the store's own Truncated",
        ed(&|b| l.put_u32(b, "store_length", len - 1)),
        Some(e("Truncated")),
    );
    row(
        t,
        "group_store_length_past_end",
        "store_length three more (past the end of the input: only dropped_count follows)",
        ed(&|b| l.put_u32(b, "store_length", len + 3)),
        Some(e("Truncated")),
    );
    row(
        t,
        "group_store_type",
        "store.type = 0x22",
        ed(&|b| l.put_u8(b, "store.type", 0x22)),
        Some(ef("WrongType", json!({ "expected": 0x24, "found": 0x22 }))),
    );
    let mut trailing = g.clone();
    trailing.push(0);
    row(
        t,
        "group_trailing_byte",
        "one byte appended (store_length unchanged)",
        trailing,
        Some(e("TrailingBytes")),
    );
    let store_len_long = ed(&|b| l.put_u32(b, "store_length", len + 1));
    row(
        t,
        "group_store_length_long",
        "store_length one more (the first byte of dropped_count taken into the store): the store's own TrailingBytes",
        store_len_long,
        Some(e("TrailingBytes")),
    );
    t.fails("group_too_large", "zero-padded to MAX_STATE_LEN + 1 bytes", json!({ "op": "decode", "encoding": "GroupSession", "input": hex(g), "input_pad_to": MAX_STATE + 1 }), e("TooLarge"));
    row(
        t,
        "group_local_user_not_member",
        "members \"bob\" only (local user \"alice\")",
        parts(b"alice", &[b"bob"]),
        Some(e("InvalidEncoding")),
    );
    let other_store = testkit::model::group::Store::new([0x11; 32]).encode();
    row(
        t,
        "group_store_of_another_group",
        "store of group 11..11 (the sender's is 5e..5e)",
        group_bytes(
            model.generation,
            b"alice",
            &[b"alice", b"bob"],
            &sender,
            &other_store,
        ),
        Some(e("InvalidEncoding")),
    );
    let mut both = parts(b"alice", &[b"bob"]);
    both.push(0);
    row(
        t,
        "group_order_trailing_before_consistency",
        "local user not a member, and one byte appended: TrailingBytes comes first",
        both,
        Some(e("TrailingBytes")),
    );
    dropped_rows(t, &model);
    // add_member at the bound.
    let add =
        |u: &str| json!({ "op": "group_add_member", "group": "g_full", "user": hex(u.as_bytes()) });
    t.fails(
        "group_add_member_full",
        "add \"zed\" to a group of MAX_GROUP_MEMBERS members",
        add("zed"),
        e("TooManyGroupMembers"),
    );
    t.row(
        "group_add_member_full_known",
        "add \"bob\" (already a member) to a group of MAX_GROUP_MEMBERS members: nothing to add",
        add("bob"),
        None,
    );
    t.fails(
        "group_add_member_empty_user",
        "add the empty user id",
        json!({ "op": "group_add_member", "group": "g_a1", "user": "" }),
        e("InvalidEncoding"),
    );
    t.fails(
        "group_add_member_long_user",
        "add a user id of 65 bytes",
        json!({ "op": "group_add_member", "group": "g_a1", "user": hex(&[b'u'; 65]) }),
        e("InvalidEncoding"),
    );
}

#[allow(clippy::too_many_lines, reason = "one row per check")]
fn op_rows(t: &mut Table, c: &Ctx) {
    let now = NOW + 20;
    // add_bundle (§16.3): local device, unknown or stale device, pending
    // identity, the bundle's identity, its signature, the policy.
    let ab = |device: &str, id: u32, bundle: &[u8]| json!({ "op": "add_bundle", "record": "a1_bob", "device": device, "device_id": id, "bundle": hex(bundle), "now": now });
    let mut forged = c.b1.clone();
    layout::bundle(&forged).flip(&mut forged, "spk_signature", 0, 1);
    let mut forged_classical = c.b1_classical.clone();
    layout::bundle(&forged_classical).flip(&mut forged_classical, "spk_signature", 0, 1);
    let mut forged_b2 = c.b2.clone();
    layout::bundle(&forged_b2).flip(&mut forged_b2, "spk_signature", 0, 1);
    t.fails(
        "add_bundle_truncated_first",
        "a bundle cut by one byte, from the wrong local device: the bundle's decoding comes first",
        ab("b1", 9, &c.b1[..c.b1.len() - 1]),
        e("Truncated"),
    );
    t.fails(
        "add_bundle_local_first",
        "local device b1 (not the record's) and unknown device 9",
        ab("b1", 9, &c.b1),
        e("IdentityMismatch"),
    );
    t.fails(
        "add_bundle_unknown",
        "device 9, not held",
        ab("a1", 9, &c.b1),
        e("UnknownDevice"),
    );
    t.fails(
        "add_bundle_stale",
        "device 4 (stale), with b2's bundle",
        ab("a1", 4, &c.b2),
        e("UnknownDevice"),
    );
    t.fails(
        "add_bundle_pending",
        "device 3 (pending identity), with b2's bundle",
        ab("a1", 3, &c.b2),
        e("IdentityChangePending"),
    );
    t.fails(
        "add_bundle_identity_before_signature",
        "device 1 with b2's bundle, signature forged",
        ab("a1", 1, &forged_b2),
        e("IdentityMismatch"),
    );
    t.fails(
        "add_bundle_signature",
        "device 1 with its bundle, signature forged",
        ab("a1", 1, &forged),
        e("InvalidSignature"),
    );
    t.fails(
        "add_bundle_signature_before_policy",
        "device 1 (pinned) with its bundle without KEM prekey, signature forged",
        ab("a1", 1, &forged_classical),
        e("InvalidSignature"),
    );
    t.fails(
        "add_bundle_pinned_classical",
        "device 1 (pinned) with its bundle without KEM prekey",
        ab("a1", 1, &c.b1_classical),
        e("PostQuantumRequired"),
    );
    t.row(
        "add_bundle_classical_allowed",
        "device 2 (classical allowed, not pinned) with its bundle without KEM prekey: X3DH",
        ab("a1", 2, &c.b2_classical),
        None,
    );
    t.row(
        "add_bundle_pq_pins",
        "device 2 with its bundle with a KEM prekey: PQXDH, the device pinned",
        ab("a1", 2, &c.b2),
        None,
    );
    // start_new_session (§16.6): add_bundle's checks up to the pending
    // identity, then the recovery interval (device 1 recovered at NOW + 2).
    let sn = |device: &str, id: u32, bundle: &[u8], at: u64| {
        json!({
            "op": "start_new_session", "record": "a1_bob", "device": device, "device_id": id,
            "bundle": hex(bundle), "now": at,
            "hint": { "ratchet_key": hex(&x_pub(&[7; 32])), "message_number": 0, "base_key": null },
        })
    };
    t.fails(
        "start_new_session_local_first",
        "local device b1 and stale device 4",
        sn("b1", 4, &c.b1, now),
        e("IdentityMismatch"),
    );
    t.fails(
        "start_new_session_stale",
        "device 4 (stale)",
        sn("a1", 4, &c.b2, now),
        e("UnknownDevice"),
    );
    t.fails(
        "start_new_session_pending",
        "device 3 (pending identity)",
        sn("a1", 3, &c.b2, now),
        e("IdentityChangePending"),
    );
    t.fails(
        "start_new_session_interval_before_bundle",
        "device 1 at NOW + 2 + MIN_RECOVERY_INTERVAL - 1, with b2's bundle",
        sn("a1", 1, &c.b2, NOW + 2 + 3599),
        e("RecoveryRateLimited"),
    );
    t.fails("start_new_session_interval_over_identity", "device 1 at NOW + 2 + MIN_RECOVERY_INTERVAL, with b2's bundle: the interval allows, the bundle is refused", sn("a1", 1, &c.b2, NOW + 2 + 3600), e("IdentityMismatch"));
    t.row(
        "start_new_session_interval_passed",
        "device 1 at NOW + 2 + MIN_RECOVERY_INTERVAL, with its bundle",
        sn("a1", 1, &c.b1, NOW + 2 + 3600),
        None,
    );
    t.fails(
        "start_new_session_pinned_classical",
        "device 1 (pinned), interval passed, its bundle without KEM prekey",
        sn("a1", 1, &c.b1_classical, NOW + 2 + 3600),
        e("PostQuantumRequired"),
    );
    // request_retry (§16.6): device, pending identity, session, window
    // (device 1's window starts at NOW + 11).
    let rq = |record: &str, id: u32, at: u64| {
        json!({
            "op": "request_retry", "record": record, "device_id": id, "now": at,
            "hint": { "ratchet_key": hex(&x_pub(&[7; 32])), "message_number": 1, "base_key": null },
        })
    };
    t.fails(
        "request_retry_unknown",
        "device 9",
        rq("a1_bob", 9, now),
        e("UnknownDevice"),
    );
    t.fails(
        "request_retry_pending_before_session",
        "device 3: pending identity and no session",
        rq("a1_bob", 3, now),
        e("IdentityChangePending"),
    );
    t.fails(
        "request_retry_stale_no_session",
        "device 4: stale (may be asked) and no session",
        rq("a1_bob", 4, now),
        e("NoSession"),
    );
    t.fails("request_retry_window_full", "device 1 with 8 requests in the window started at NOW + 11, at NOW + 11 + MIN_RECOVERY_INTERVAL - 1", rq("a1_bob_window_full", 1, NOW + 11 + 3599), e("RecoveryRateLimited"));
    t.row(
        "request_retry_window_over",
        "the same at NOW + 11 + MIN_RECOVERY_INTERVAL: the window restarts",
        rq("a1_bob_window_full", 1, NOW + 11 + 3600),
        None,
    );
    t.row(
        "request_retry_window_room",
        "device 1 with 1 request in the window",
        rq("a1_bob", 1, now),
        None,
    );
    // encrypt_to (§16.3).
    let et = |record: &str, id: u32| json!({ "op": "encrypt_to", "record": record, "device_id": id, "payload": hex(b"x") });
    t.fails("encrypt_to_too_large_first", "a payload of MAX_PAYLOAD_LEN + 1 bytes to device 9", json!({ "op": "encrypt_to", "record": "a1_bob", "device_id": 9, "payload": "00", "payload_pad_to": testkit::model::sessions::MAX_PAYLOAD_LEN + 1 }), e("PlaintextTooLarge"));
    t.fails(
        "encrypt_to_unknown",
        "device 9",
        et("a1_bob", 9),
        e("UnknownDevice"),
    );
    t.fails(
        "encrypt_to_stale",
        "device 4 (stale)",
        et("a1_bob", 4),
        e("UnknownDevice"),
    );
    t.fails(
        "encrypt_to_pending",
        "device 3 (pending identity, no session)",
        et("a1_bob", 3),
        e("IdentityChangePending"),
    );
    t.fails(
        "encrypt_to_no_session",
        "the own record's device 8 (no session)",
        et("a1_own", 8),
        e("NoSession"),
    );
    t.fails("request_distribution_stale", "device 4 (stale), as encrypt_to", json!({ "op": "request_distribution", "record": "a1_bob", "device_id": 4, "group_id": hex(&[0x5e; 32]) }), e("UnknownDevice"));
    // acknowledge_identity, allow_classical (§16.2, §16.4).
    let pending = Record::decode(&c.rec).unwrap().devices[&3].pending.unwrap();
    let trusted = Record::decode(&c.rec).unwrap().devices[&3].identity;
    let ik = testkit::model::keys::identity_key_bytes;
    let ack = |id: u32, k: &[u8; 32]| json!({ "op": "acknowledge_identity", "record": "a1_bob", "device_id": id, "identity": hex(&ik(k)) });
    t.fails(
        "acknowledge_unknown",
        "device 9 with device 3's pending identity",
        ack(9, &pending),
        e("UnknownDevice"),
    );
    t.fails(
        "acknowledge_trusted",
        "device 3 with its trusted identity",
        ack(3, &trusted),
        e("IdentityMismatch"),
    );
    t.fails(
        "acknowledge_no_pending",
        "device 1 (nothing pending) with device 3's pending identity",
        ack(1, &pending),
        e("IdentityMismatch"),
    );
    t.row(
        "acknowledge_pending",
        "device 3 with its pending identity",
        ack(3, &pending),
        None,
    );
    let allow = |id: u32, allowed: bool| json!({ "op": "allow_classical", "record": "a1_bob", "device_id": id, "allowed": allowed });
    t.fails(
        "allow_classical_unknown",
        "device 9",
        allow(9, true),
        e("UnknownDevice"),
    );
    t.fails(
        "allow_classical_pinned",
        "device 1 (pinned), allowed",
        allow(1, true),
        e("PostQuantumRequired"),
    );
    t.row(
        "allow_classical_pinned_disallow",
        "device 1 (pinned), not allowed (no change)",
        allow(1, false),
        None,
    );
    // update_devices (§16.2): the list is refused whole.
    let ul = |list: &[(u32, Vec<u8>)]| {
        json!({
            "op": "update_devices", "record": "a1_own", "now": now,
            "list": list.iter().map(|(id, k)| json!({ "device_id": id, "identity": hex(k) })).collect::<Vec<_>>(),
        })
    };
    let a1k =
        testkit::model::keys::identity_key_bytes(&Record::decode(&c.own).unwrap().local_identity);
    let s = |i: u32| stranger(&format!("negative list {i}"));
    t.fails(
        "update_devices_17",
        "17 entries",
        ul(&(0..17).map(|i| (i + 10, s(i))).collect::<Vec<_>>()),
        e("InvalidDeviceList"),
    );
    t.fails(
        "update_devices_device_twice",
        "device 8 twice",
        ul(&[(8, s(1)), (8, s(2))]),
        e("InvalidDeviceList"),
    );
    t.fails(
        "update_devices_identity_twice",
        "one identity on devices 8 and 9",
        ul(&[(8, s(1)), (9, s(1))]),
        e("InvalidDeviceList"),
    );
    t.fails(
        "update_devices_local_identity_elsewhere",
        "the own record's local identity on device 9",
        ul(&[(9, a1k.clone())]),
        e("InvalidDeviceList"),
    );
    t.fails(
        "update_devices_local_identity_twice",
        "the local identity on the local device 7 and on device 9",
        ul(&[(7, a1k.clone()), (9, a1k.clone())]),
        e("InvalidDeviceList"),
    );
    t.row(
        "update_devices_local_other_identity",
        "the local device 7 with another identity (reported, not refused)",
        ul(&[(7, s(3))]),
        None,
    );
    t.fails(
        "update_devices_bad_key",
        "an identity key with a wrong type tag (its decoding error)",
        ul(&[(8, [vec![2, 0x11], s(1)[2..].to_vec()].concat())]),
        ef("WrongType", json!({ "expected": 0x10, "found": 0x11 })),
    );
    let a2k = testkit::model::keys::identity_key_bytes(
        &Record::decode(&c.own).unwrap().devices[&8].identity,
    );
    t.fails(
        "update_devices_trusted_key_to_other",
        "device 8 listed with another key while device 9 is given device 8's trusted key (two listed devices would share it)",
        ul(&[(8, s(1)), (9, a2k.clone())]),
        e("InvalidDeviceList"),
    );
    t.row(
        "update_devices_trusted_key_of_unlisted",
        "device 9 given device 8's trusted key, device 8 not listed (it becomes stale: only listed devices count)",
        ul(&[(9, a2k.clone())]),
        None,
    );
    // decrypt, step 1 of §16.5 and the message's parse.
    let dec = |device: &str, from: u32, m: &[u8]| json!({ "op": "record_decrypt", "record": "a1_bob", "device": device, "from": from, "message": hex(m), "now": now });
    t.fails(
        "decrypt_parse_first",
        "a message cut to 10 bytes, to the wrong local device: the parse comes first (no action)",
        dec("b1", 9, &c.ratchet_from_b1[..10]),
        e("Truncated"),
    );
    let fail = |name: &str, action: Value| {
        let mut f = e(name);
        f["action"] = action;
        f
    };
    t.fails(
        "decrypt_wrong_local_first",
        "local device b1 and device 9",
        dec("b1", 9, &c.ratchet_from_b1),
        fail(
            "IdentityMismatch",
            json!({ "kind": "Ignore", "reason": "WrongLocalDevice" }),
        ),
    );
    t.fails(
        "decrypt_unknown_device",
        "from device 9",
        dec("a1", 9, &c.ratchet_from_b1),
        fail(
            "UnknownDevice",
            json!({ "kind": "RetryLater", "reason": "UnknownDevice" }),
        ),
    );
    t.fails(
        "decrypt_pending_before_identity",
        "from device 3 (pending identity) a prekey message of another identity",
        dec("a1", 3, &c.prekey_other),
        fail(
            "IdentityChangePending",
            json!({ "kind": "RetryLater", "reason": "IdentityChangePending" }),
        ),
    );
    t.fails(
        "decrypt_unknown_identity",
        "from device 1 a prekey message of another identity",
        dec("a1", 1, &c.prekey_other),
        fail(
            "IdentityMismatch",
            json!({ "kind": "RetryLater", "reason": "UnknownIdentity" }),
        ),
    );
    t.row(
        "decrypt_stale_device",
        "from device 4 (stale): held, so it is tried; no session, and the new session its recovery needs cannot be started with a stale device: RetryLater(UnknownDevice)",
        dec("a1", 4, &c.ratchet_from_b1),
        Some(fail(
            "UnknownDevice",
            json!({ "kind": "RetryLater", "reason": "UnknownDevice" }),
        )),
    );
    // safety numbers (§16.9).
    let sn =
        |record: &str, own: &str| json!({ "op": "safety_number", "record": record, "own": own });
    t.fails(
        "safety_number_not_own",
        "own = a peer record",
        sn("a1_bob", "a1_bob"),
        e("IdentityMismatch"),
    );
    t.fails("safety_number_own_of_other_device", "a1's record of Bob and b1's record of Alice as the own record (a peer record of another local device)", sn("a1_bob", "b1_alice"), e("IdentityMismatch"));
    t.row(
        "safety_number_valid",
        "the record and its own record",
        sn("a1_bob", "a1_own"),
        None,
    );
    // Groups (§16.8): membership before the local device.
    let dist =
        |records: &[&str]| json!({ "op": "group_distribute", "group": "g_a1", "records": records });
    t.fails(
        "distribute_twice",
        "Bob's record twice",
        dist(&["a1_bob", "a1_bob"]),
        e("NotGroupMember"),
    );
    t.fails("distribute_membership_first", "b1's record of Alice (another local device) then a1's own record: alice twice is found first", dist(&["b1_alice", "a1_own"]), e("NotGroupMember"));
    t.fails(
        "distribute_other_local_device",
        "b1's record of Alice (another local device)",
        dist(&["b1_alice"]),
        e("IdentityMismatch"),
    );
    // group decrypt (§16.8): the parse, the record's local device, its
    // user's membership, the chain's owner among its devices.
    let gd = |record: &str, m: &[u8]| json!({ "op": "group_session_decrypt", "group": "g_a1", "record": record, "message": hex(m) });
    t.fails(
        "group_decrypt_parse_first",
        "a group message cut to 10 bytes, with a record of another local device",
        gd("b1_alice", &c.group_from_b1[..10]),
        e("Truncated"),
    );
    t.fails(
        "group_decrypt_wrong_local_first",
        "b1's record of Alice (another local device, its user a member)",
        gd("b1_alice", &c.group_from_b1),
        fail(
            "IdentityMismatch",
            json!({ "kind": "Ignore", "reason": "WrongLocalDevice" }),
        ),
    );
    t.fails(
        "group_decrypt_non_member",
        "a1's record of carol (no member)",
        gd("a1_carol", &c.group_from_b1),
        fail(
            "NotGroupMember",
            json!({ "kind": "Ignore", "reason": "Malformed" }),
        ),
    );
    t.fails(
        "group_decrypt_owner_not_in_record",
        "Bob's chain with the own record (alice, a member, none of whose devices has b1's identity)",
        gd("a1_own", &c.group_from_b1),
        fail(
            "IdentityMismatch",
            json!({ "kind": "Ignore", "reason": "Malformed" }),
        ),
    );
    t.row(
        "group_decrypt_valid",
        "Bob's chain with a1's record of Bob",
        gd("a1_bob", &c.group_from_b1),
        None,
    );
    t.fails(
        "rotate_local_first",
        "rotate with device b1 (not the sender's owner) and the own record only",
        json!({ "op": "group_rotate", "group": "g_a1", "device": "b1", "records": ["a1_own"] }),
        e("IdentityMismatch"),
    );
    t.fails(
        "remove_local_first",
        "remove \"alice\" (the local user) with device a2 (not the sender's owner)",
        json!({ "op": "group_remove_member", "group": "g_a1", "device": "a2", "user": hex(b"alice"), "records": [] }),
        e("IdentityMismatch"),
    );
    t.fails(
        "group_after_restore_local",
        "after_restore with device b1",
        json!({ "op": "group_after_restore", "group": "g_a1", "device": "b1", "last_generation": 0 }),
        e("IdentityMismatch"),
    );
    let rm = |user: &str, records: &[&str]| json!({ "op": "group_remove_member", "group": "g_a1", "device": "a1", "user": hex(user.as_bytes()), "records": records });
    t.fails(
        "remove_local_user",
        "remove \"alice\" (the local user)",
        rm("alice", &["a1_bob"]),
        e("NotGroupMember"),
    );
    t.fails(
        "remove_non_member",
        "remove \"carol\" (not a member)",
        rm("carol", &["a1_own", "a1_bob"]),
        e("NotGroupMember"),
    );
    t.fails(
        "remove_records_not_exact",
        "remove \"bob\" with the records of alice and bob",
        rm("bob", &["a1_own", "a1_bob"]),
        e("NotGroupMember"),
    );
    t.fails(
        "remove_records_missing",
        "remove \"bob\" with no record (the own record is missing)",
        rm("bob", &[]),
        e("NotGroupMember"),
    );
    t.fails(
        "rotate_records_missing",
        "rotate with the own record only",
        json!({ "op": "group_rotate", "group": "g_a1", "device": "a1", "records": ["a1_own"] }),
        e("NotGroupMember"),
    );
    t.fails(
        "rotate_local_user_not_own_record",
        "rotate with a1's records of bob and of alice, the latter not the own record (no local device)",
        json!({ "op": "group_rotate", "group": "g_a1", "device": "a1", "records": ["a1_alice_peer", "a1_bob"] }),
        e("NotGroupMember"),
    );
    t.fails(
        "remove_local_user_not_own_record",
        "remove \"bob\" with a1's record of alice that is not the own record",
        rm("bob", &["a1_alice_peer"]),
        e("NotGroupMember"),
    );
    t.row(
        "remove_bob",
        "remove \"bob\" with the own record",
        rm("bob", &["a1_own"]),
        None,
    );
    // Group messages are not framed (§16.8 encrypt): the limit is
    // MAX_PLAINTEXT_LEN, not MAX_PAYLOAD_LEN.
    let genc = |len: usize| json!({ "op": "group_session_encrypt", "group": "g_a1", "payload": "00", "payload_pad_to": len });
    t.fails(
        "group_encrypt_too_large",
        "a group payload of MAX_PLAINTEXT_LEN + 1 bytes",
        genc(MAX_PLAINTEXT + 1),
        e("PlaintextTooLarge"),
    );
    t.row(
        "group_encrypt_max_plaintext",
        "a group payload of MAX_PLAINTEXT_LEN bytes (MAX_PAYLOAD_LEN + 1: no frame byte)",
        genc(MAX_PLAINTEXT),
        None,
    );
}

pub(crate) fn generate() -> Value {
    let mut t = Table::new(LABEL);
    let c = setup(&mut t);
    record_rows(&mut t, &c);
    group_rows(&mut t, &c);
    op_rows(&mut t, &c);
    let (fixtures, rows) = t.finish();
    let mut f = file(
        "sessions_negative",
        "The session layer's refusals (SPEC.md §16): every decoding rule of §16.11 for peer records and group sessions, the check orders of §16.2, §16.3, §16.5 step 1, §16.6, §16.8 and §16.9, and the boundaries that pass.",
        LABEL,
        rows,
    );
    f["fixtures"] = fixtures;
    f
}
