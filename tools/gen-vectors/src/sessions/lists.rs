//! §16.2 device lists and identity changes, the own record, and §16.9
//! safety numbers.

use serde_json::{Value, json};
use testkit::hex::hex;

use super::{MONTH, Net, stranger};
use crate::agreement::NOW;

fn strangers(prefix: &str, ids: impl IntoIterator<Item = u32>) -> Vec<(u32, Vec<u8>)> {
    ids.into_iter()
        .map(|i| (i, stranger(&format!("{prefix} {i}"))))
        .collect()
}

fn device_lists() -> Value {
    let mut n = Net::new("device lists");
    n.devices(&["a1", "b1", "b2", "b3"]);
    n.record("a1_bob", "bob", "a1", None);
    // Any order; added in device-id order.
    n.list("a1_bob", &[(3, "b3"), (1, "b1"), (2, "b2")], NOW)
        .unwrap();
    n.list("a1_bob", &[(1, "b1"), (2, "b2"), (3, "b3")], NOW + 1)
        .unwrap();
    // Device 3 leaves: stale from now; a later list keeps its time.
    n.list("a1_bob", &[(1, "b1"), (2, "b2")], NOW + 10).unwrap();
    n.list("a1_bob", &[(2, "b2"), (1, "b1")], NOW + 20).unwrap();
    // Device 3 back (relisted); device 2 with a new identity.
    let x = stranger("device lists new identity x");
    let y = stranger("device lists new identity y");
    let (b1, b2, b3) = (n.ik("b1"), n.ik("b2"), n.ik("b3"));
    n.list_keys(
        "a1_bob",
        &[(1, b1.clone()), (2, x.clone()), (3, b3.clone())],
        NOW + 30,
    )
    .unwrap();
    // The same pending identity again: nothing new.
    n.list_keys(
        "a1_bob",
        &[(1, b1.clone()), (2, x.clone()), (3, b3.clone())],
        NOW + 31,
    )
    .unwrap();
    // A third identity replaces the pending one and is reported.
    n.list_keys(
        "a1_bob",
        &[(1, b1.clone()), (2, y.clone()), (3, b3.clone())],
        NOW + 32,
    )
    .unwrap();
    // The trusted identity again: the change is withdrawn.
    n.list_keys(
        "a1_bob",
        &[(1, b1.clone()), (2, b2.clone()), (3, b3.clone())],
        NOW + 33,
    )
    .unwrap();
    n.list_keys(
        "a1_bob",
        &[(1, b1.clone()), (2, x.clone()), (3, b3.clone())],
        NOW + 34,
    )
    .unwrap();
    // Acknowledging: not the pending identity, an unknown device, then
    // the pending one.
    let ack = |id: u32, k: &[u8]| json!({ "op": "acknowledge_identity", "record": "a1_bob", "device_id": id, "identity": hex(k) });
    n.fails(ack(2, &y), "IdentityMismatch");
    n.fails(ack(2, &b2), "IdentityMismatch");
    n.fails(ack(9, &x), "UnknownDevice");
    n.fails(ack(1, &b1), "IdentityMismatch");
    n.ok(ack(2, &x));
    // A stale device listed with another identity: relisted, and the
    // change reported.
    n.list_keys("a1_bob", &[(1, b1.clone()), (2, x.clone())], NOW + 40)
        .unwrap();
    n.list_keys(
        "a1_bob",
        &[(1, b1.clone()), (2, x.clone()), (3, y.clone())],
        NOW + 41,
    )
    .unwrap();
    // Refused lists change nothing.
    let a1 = n.ik("a1");
    let invalid: [Vec<(u32, Vec<u8>)>; 4] = [
        strangers("device lists long", 1..=17),
        vec![(1, b1.clone()), (1, x.clone())],
        vec![(1, b1.clone()), (2, b1.clone())],
        vec![(1, b1.clone()), (4, a1.clone())],
    ];
    for list in invalid {
        n.r.fails(
            json!({
                "op": "update_devices", "record": "a1_bob", "now": NOW + 50,
                "list": list.iter().map(|(id, k)| json!({ "device_id": id, "identity": hex(k) })).collect::<Vec<_>>(),
            }),
            &crate::rec::e("InvalidDeviceList"),
        );
    }
    // Exactly MAX_DEVICES_PER_USER entries pass.
    n.list_keys("a1_bob", &strangers("device lists long", 1..=16), NOW + 60)
        .unwrap();
    n.vector(
        "device_lists",
        "§16.2: devices added (trust on first use), removed (stale from the list's time, kept by later lists), relisted; identity changes reported with both fingerprints, not reported again for the same pending key, replaced by a third key, withdrawn when the trusted key is listed again, refused acknowledgements then the acknowledgement (sessions deleted); a stale device listed with another key; lists refused whole (17 entries, a device twice, a key twice, the local identity on another device); 16 entries pass. The generation moves only when something changed.",
    )
}

fn room() -> Value {
    let mut n = Net::new("device list room");
    n.devices(&["a1"]);
    n.record("a1_bob", "bob", "a1", None);
    let all = strangers("room", 1..=41);
    let pick = |ids: &[u32]| -> Vec<(u32, Vec<u8>)> {
        all.iter()
            .filter(|(i, _)| ids.contains(i))
            .cloned()
            .collect()
    };
    let range = |a: u32, b: u32| (a..=b).collect::<Vec<u32>>();
    n.list_keys("a1_bob", &pick(&range(1, 16)), NOW).unwrap();
    n.list_keys("a1_bob", &pick(&range(1, 12)), NOW + 1)
        .unwrap();
    let mut l = range(1, 10);
    l.push(13);
    n.list_keys("a1_bob", &pick(&l), NOW + 2).unwrap();
    // 14, 15, 16 stale since NOW + 1; 11, 12 since NOW + 2. Five new
    // devices: the five stale ones go, oldest first.
    let mut l = range(1, 10);
    l.push(13);
    l.extend(range(20, 24));
    n.list_keys("a1_bob", &pick(&l), NOW + 3).unwrap();
    // No stale device left: listed devices the list leaves out go, by id;
    // the rest of them become stale.
    let mut l = range(1, 4);
    l.extend(range(30, 37));
    n.list_keys("a1_bob", &pick(&l), NOW + 4).unwrap();
    n.vector(
        "device_list_room",
        "§16.2 step 2: a record at MAX_DEVICES_PER_USER takes new devices by deleting stale devices not listed, by (stale_since, device id), then devices the list leaves out, by device id; the other left-out devices become stale.",
    )
}

/// `update_devices` that must fail with `InvalidDeviceList`.
fn refused(n: &mut Net, record: &str, list: &[(u32, Vec<u8>)], now: u64) {
    n.r.fails(
        json!({
            "op": "update_devices", "record": record, "now": now,
            "list": list.iter().map(|(id, k)| json!({ "device_id": id, "identity": hex(k) })).collect::<Vec<_>>(),
        }),
        &crate::rec::e("InvalidDeviceList"),
    );
}

fn remembered() -> Value {
    let mut n = Net::new("remembered devices");
    n.devices(&["a1", "b1"]);
    n.record("a1_bob", "bob", "a1", None);
    let all = strangers("remembered", 1..=75);
    let b1 = n.ik("b1");
    let key = |i: u32| -> Vec<u8> {
        if i == 1 {
            b1.clone()
        } else {
            all[usize::try_from(i - 1).unwrap()].1.clone()
        }
    };
    let list = |ids: &[u32]| -> Vec<(u32, Vec<u8>)> { ids.iter().map(|i| (*i, key(*i))).collect() };
    let range = |a: u32, b: u32| (a..=b).collect::<Vec<u32>>();
    // Sixteen devices; device 1 (b1) pinned by a PQXDH session.
    n.list_keys("a1_bob", &list(&range(1, 16)), NOW).unwrap();
    n.connect("a1_bob", "a1", 1, "b1", NOW);
    // A list of sixteen others: every held device is deleted and
    // remembered (identity, pin, left at NOW + 1).
    n.list_keys("a1_bob", &list(&range(20, 35)), NOW + 1)
        .unwrap();
    n.ok(json!({ "op": "explain", "state": "a1_bob" }));
    // Device 1 listed again with another key: held again with its
    // remembered identity and pin, the new key pending (an identity
    // change, not an added device); device 35 deleted for room.
    let x = stranger("remembered new identity x");
    let mut l = vec![(1, x.clone())];
    l.extend(list(&range(20, 34)));
    n.list_keys("a1_bob", &l, NOW + 2).unwrap();
    n.fails(
        json!({ "op": "encrypt_to", "record": "a1_bob", "device_id": 1, "payload": hex(b"x") }),
        "IdentityChangePending",
    );
    n.ok(json!({ "op": "acknowledge_identity", "record": "a1_bob", "device_id": 1, "identity": hex(&x) }));
    // Device 2 listed again with its remembered key: relisted; device 34
    // deleted for room.
    let mut l = vec![(1, x.clone()), (2, key(2))];
    l.extend(list(&range(20, 33)));
    n.list_keys("a1_bob", &l, NOW + 3).unwrap();
    n.ok(json!({ "op": "explain", "state": "a1_bob" }));
    // One trusted key per listed device: a device listed with another key
    // keeps its trusted (or remembered) key until the change is
    // acknowledged, so no other listed device may be given it.
    let y = stranger("remembered new identity y");
    let mut l = vec![(1, x.clone()), (2, key(2)), (20, y.clone()), (21, key(20))];
    l.extend(list(&range(22, 33)));
    refused(&mut n, "a1_bob", &l, NOW + 3);
    let mut l = vec![(1, x.clone()), (2, key(2)), (3, y.clone()), (4, key(3))];
    l.extend(list(&range(20, 31)));
    refused(&mut n, "a1_bob", &l, NOW + 3);
    // Sixteen more: 32 remembered devices (MAX_DELETED_DEVICES).
    n.list_keys("a1_bob", &list(&range(40, 55)), NOW + 4)
        .unwrap();
    // Sixteen more would remember 48: none has aged, refused.
    refused(&mut n, "a1_bob", &list(&range(60, 75)), NOW + 5);
    // A month after the first deletions, 14 of them are forgotten, still
    // 34: refused.
    refused(&mut n, "a1_bob", &list(&range(60, 75)), NOW + 1 + MONTH);
    // A month after NOW + 3: those that left at NOW + 1, 2 and 3 are
    // forgotten, 32 remain: the list passes.
    n.list_keys("a1_bob", &list(&range(60, 75)), NOW + 3 + MONTH)
        .unwrap();
    n.ok(json!({ "op": "explain", "state": "a1_bob" }));
    // The clock goes back to NOW: the devices that left at NOW + 3 + MONTH
    // are a month or more away (a distance, §16.1) and are forgotten; those
    // that left at NOW + 4 are not.
    n.ok(json!({ "op": "expire", "record": "a1_bob", "now": NOW }));
    n.ok(json!({ "op": "expire", "record": "a1_bob", "now": NOW + 4 + MONTH - 1 }));
    n.ok(json!({ "op": "expire", "record": "a1_bob", "now": NOW + 4 + MONTH }));
    n.ok(json!({ "op": "explain", "state": "a1_bob" }));
    n.vector(
        "remembered_devices",
        "§16.2, §16.7: devices deleted to make room are remembered (identity, pin, when they left); a remembered device listed again with another key is held again with its remembered identity and pin and the key pending (an identity change: nothing is sent until it is acknowledged), with its own key it is relisted; a list that gives a listed device the trusted or remembered key of another listed device that it lists with another key is InvalidDeviceList; at MAX_DELETED_DEVICES a list that would remember more is refused until MAX_STALE_DEVICE_AGE has passed for enough of them; expire forgets remembered devices by the distance |now - left|, a time far in the future included.",
    )
}

fn own_record() -> Value {
    let mut n = Net::new("own record");
    n.devices(&["a1", "a2"]);
    n.record("a1_own", "alice", "a1", Some(1));
    n.list("a1_own", &[(2, "a2"), (1, "a1")], NOW).unwrap();
    n.list("a1_own", &[(2, "a2")], NOW + 1).unwrap();
    let other = stranger("own record other identity");
    let a2 = n.ik("a2");
    n.list_keys("a1_own", &[(1, other), (2, a2.clone())], NOW + 2)
        .unwrap();
    let a1 = n.ik("a1");
    n.r.fails(
        json!({
            "op": "update_devices", "record": "a1_own", "now": NOW + 3,
            "list": [{ "device_id": 3, "identity": hex(&a1) }, { "device_id": 2, "identity": hex(&a2) }],
        }),
        &crate::rec::e("InvalidDeviceList"),
    );
    // A message "from" the local device: the record does not hold it.
    n.record("a2_own", "alice", "a2", Some(2));
    n.list("a2_own", &[(1, "a1"), (2, "a2")], NOW).unwrap();
    n.connect("a2_own", "a2", 1, "a1", NOW);
    let m = n.send("a2_own", "to my other device");
    n.recv_fails("a1_own", "a1", 1, &m[&1], NOW);
    n.recv_ok("a1_own", "a1", 2, &m[&1], NOW);
    n.vector(
        "own_record",
        "§16.1, §16.2 step 1: the own record reports how the list showed the local device (Listed, Missing, OtherIdentity with its fingerprint) and never holds it; the local identity on another device is refused; the local user's other device starts a session with it; a message claimed from the local device's own id is RetryLater(UnknownDevice).",
    )
}

fn safety_numbers() -> Value {
    let mut n = Net::new("safety numbers");
    n.devices(&["a1", "a2", "b1", "b2"]);
    let (a1, a2, b1, b2) = (n.ik("a1"), n.ik("a2"), n.ik("b1"), n.ik("b2"));
    let fp = |user: &str, keys: &[&Vec<u8>]| {
        json!({
            "op": "user_fingerprint", "user": hex(user.as_bytes()),
            "identities": keys.iter().map(|k| hex(k)).collect::<Vec<_>>(),
        })
    };
    n.ok(fp("alice", &[&a1, &a2]));
    n.ok(fp("alice", &[&a2, &a1]));
    n.ok(fp("alicf", &[&a1, &a2]));
    n.ok(fp("alice", &[&a1]));
    n.fails(fp("alice", &[]), "InvalidDeviceList");
    n.fails(fp("alice", &[&a1, &a1]), "InvalidDeviceList");
    n.fails(fp("", &[&a1]), "InvalidEncoding");
    let many: Vec<Vec<u8>> = (0..18).map(|i| stranger(&format!("safety {i}"))).collect();
    n.ok(fp("alice", &many[..17].iter().collect::<Vec<_>>()));
    n.fails(
        fp("alice", &many.iter().collect::<Vec<_>>()),
        "InvalidDeviceList",
    );
    // Records on both sides.
    n.record("a1_own", "alice", "a1", Some(1));
    n.list("a1_own", &[(1, "a1"), (2, "a2")], NOW).unwrap();
    n.record("a1_bob", "bob", "a1", None);
    n.list("a1_bob", &[(1, "b1"), (2, "b2")], NOW).unwrap();
    n.record("b1_own", "bob", "b1", Some(1));
    n.list("b1_own", &[(1, "b1"), (2, "b2")], NOW).unwrap();
    n.record("b1_alice", "alice", "b1", None);
    n.list("b1_alice", &[(1, "a1"), (2, "a2")], NOW).unwrap();
    let sn =
        |record: &str, own: &str| json!({ "op": "safety_number", "record": record, "own": own });
    let fpr = |record: &str| json!({ "op": "fingerprint", "record": record });
    for r in ["a1_own", "a1_bob", "b1_own", "b1_alice"] {
        n.ok(fpr(r));
    }
    n.ok(sn("a1_bob", "a1_own"));
    n.ok(sn("b1_alice", "b1_own"));
    n.fails(sn("a1_bob", "a1_bob"), "IdentityMismatch");
    n.fails(sn("a1_bob", "b1_own"), "IdentityMismatch");
    // A stale device does not count; a pending identity counts with the
    // trusted one until acknowledged.
    n.list("a1_bob", &[(1, "b1")], NOW + 1).unwrap();
    n.ok(fpr("a1_bob"));
    let new = stranger("safety numbers new identity");
    n.list_keys("a1_bob", &[(1, b1.clone()), (2, new.clone())], NOW + 2)
        .unwrap();
    n.ok(fpr("a1_bob"));
    n.ok(json!({ "op": "acknowledge_identity", "record": "a1_bob", "device_id": 2, "identity": hex(&new) }));
    n.ok(fpr("a1_bob"));
    n.ok(sn("a1_bob", "a1_own"));
    // No listed device: no fingerprint.
    n.list_keys("a1_bob", &[], NOW + 3).unwrap();
    n.fails(fpr("a1_bob"), "InvalidDeviceList");
    n.fails(sn("a1_bob", "a1_own"), "InvalidDeviceList");
    let _ = b2;
    n.vector(
        "safety_numbers",
        "§16.9: fingerprints over a user's device identities (order-independent; the user id counts; 1 to MAX_DEVICES_PER_USER + 1 distinct keys), a record's fingerprint (listed devices' trusted identities, the local identity for the own record), the safety number both users compute (60 digits, smaller fingerprint first, displayed in groups of five), its refusals, and how stale devices and identity changes move it.",
    )
}

pub(super) fn vectors() -> Vec<Value> {
    vec![
        device_lists(),
        room(),
        remembered(),
        own_record(),
        safety_numbers(),
    ]
}
