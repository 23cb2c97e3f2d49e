//! §16.3 sending (the plan, bundles and their checks, the fan-out and its
//! draws, one device at a time) and §16.4 the post-quantum pin.

use serde_json::{Value, json};
use testkit::hex::hex;
use testkit::layout;
use testkit::model::sessions::MAX_PAYLOAD_LEN;

use super::{MONTH, Net, stranger};
use crate::agreement::NOW;

fn plan(n: &mut Net, record: &str, now: u64) {
    n.ok(json!({ "op": "plan_send", "record": record, "now": now }));
}

fn sending() -> Value {
    let mut n = Net::new("sending");
    n.devices(&["a1", "b1", "b2", "b3", "b4"]);
    n.record("a1_bob", "bob", "a1", None);
    n.list("a1_bob", &[(1, "b1"), (2, "b2"), (3, "b3"), (4, "b4")], NOW)
        .unwrap();
    plan(&mut n, "a1_bob", NOW);
    // add_bundle's checks, in order.
    let b1 = n.bundle("b1");
    let fails = |n: &mut Net, device: &str, id: u32, bundle: &[u8], error: &str| {
        n.fails(
            json!({
                "op": "add_bundle", "record": "a1_bob", "device": device, "device_id": id,
                "bundle": hex(bundle), "now": NOW,
            }),
            error,
        );
    };
    fails(&mut n, "b1", 1, &b1, "IdentityMismatch");
    fails(&mut n, "a1", 9, &b1, "UnknownDevice");
    let b2 = n.bundle("b2");
    fails(&mut n, "a1", 1, &b2, "IdentityMismatch");
    let mut forged = b1.clone();
    let l = layout::bundle(&forged);
    l.flip(&mut forged, "spk_signature", 0, 1);
    fails(&mut n, "a1", 1, &forged, "InvalidSignature");
    let classical = n.bundle_with("b1", None, None);
    fails(&mut n, "a1", 1, &classical, "PostQuantumRequired");
    n.add_bundle("a1_bob", "a1", 1, &b1, NOW).unwrap();
    n.add_bundle("a1_bob", "a1", 2, &b2, NOW + 5).unwrap();
    n.connect("a1_bob", "a1", 3, "b3", NOW + 5);
    // Device 3 announces a new key: blocked; device 4 has no session.
    let (k1, k2, k4) = (n.ik("b1"), n.ik("b2"), n.ik("b4"));
    let x = stranger("sending new identity");
    n.list_keys(
        "a1_bob",
        &[(1, k1.clone()), (2, k2.clone()), (3, x), (4, k4)],
        NOW + 6,
    )
    .unwrap();
    plan(&mut n, "a1_bob", NOW + 6);
    // The fan-out: 48 bytes per usable device, drawn first; no session has a
    // sending chain yet, so each takes a new ratchet secret (bytes 0..32)
    // and its salt (bytes 32..48).
    let first = n.send("a1_bob", "hello Bob");
    // Now each has a sending chain: the salt is bytes 32..48 and bytes 0..32
    // are discarded.
    n.send("a1_bob", "second");
    n.r.fails(
        json!({ "op": "record_encrypt", "record": "a1_bob", "payload": "00", "payload_pad_to": MAX_PAYLOAD_LEN + 1 }),
        &crate::rec::e("PlaintextTooLarge"),
    );
    // One device at a time: the checks in order, then a session encrypt.
    let to = |id: u32| json!({ "op": "encrypt_to", "record": "a1_bob", "device_id": id, "payload": hex(b"one") });
    n.r.fails(
        json!({ "op": "encrypt_to", "record": "a1_bob", "device_id": 9, "payload": "00", "payload_pad_to": MAX_PAYLOAD_LEN + 1 }),
        &crate::rec::e("PlaintextTooLarge"),
    );
    n.fails(to(9), "UnknownDevice");
    n.fails(to(3), "IdentityChangePending");
    n.fails(to(4), "NoSession");
    n.ok(to(2));
    // A stale device is never sent to.
    n.list_keys(
        "a1_bob",
        &[(1, k1.clone()), (3, n.ik("b3")), (4, n.ik("b4"))],
        NOW + 7,
    )
    .unwrap();
    n.fails(to(2), "UnknownDevice");
    n.send("a1_bob", "not to the stale device");
    // Unanswered sessions need a new bundle MAX_UNANSWERED_SESSION_AGE after
    // they were made (device 1's at NOW), and are still used until then.
    plan(&mut n, "a1_bob", NOW + MONTH - 1);
    plan(&mut n, "a1_bob", NOW + MONTH);
    // Bob answers on device 1: it is ready for good.
    n.record("b1_alice", "alice", "b1", None);
    n.list("b1_alice", &[(1, "a1")], NOW).unwrap();
    n.recv_ok("b1_alice", "b1", 1, &first[&1], NOW + 10);
    let reply = n.send_to("b1_alice", 1, "hello Alice");
    n.recv_ok("a1_bob", "a1", 1, &reply, NOW + 11);
    plan(&mut n, "a1_bob", NOW + MONTH);
    plan(&mut n, "a1_bob", NOW + 2 * MONTH);
    // A new bundle replaces the unanswered session (archived).
    n.connect("a1_bob", "a1", 3, "b3", NOW + MONTH);
    n.vector(
        "sending",
        "§16.3: plan_send (ready, needs bundle, blocked; unanswered sessions at MAX_UNANSWERED_SESSION_AGE - 1 and at it); add_bundle's checks in order (local device, unknown device, the bundle of another identity, a forged signature, no KEM prekey) then PQXDH; the fan-out (48 bytes per usable device drawn first, split 32 + 16, bytes a session does not draw discarded; unusable devices with their errors; PlaintextTooLarge at MAX_PAYLOAD_LEN + 1); encrypt_to's checks in order; a stale device is not sent to.",
    )
}

fn pinning() -> Value {
    let mut n = Net::new("post-quantum pin");
    n.devices(&["a1", "b1"]);
    n.record("a1_bob", "bob", "a1", None);
    n.list("a1_bob", &[(1, "b1")], NOW).unwrap();
    n.record("b1_alice", "alice", "b1", None);
    n.list("b1_alice", &[(1, "a1")], NOW).unwrap();
    let allow = |record: &str, id: u32, allowed: bool| json!({ "op": "allow_classical", "record": record, "device_id": id, "allowed": allowed });
    n.fails(allow("a1_bob", 9, true), "UnknownDevice");
    n.ok(allow("a1_bob", 1, true));
    n.ok(allow("a1_bob", 1, true));
    // Classical allowed: a bundle without a KEM prekey gives X3DH.
    let classical = n.bundle_with("b1", None, None);
    n.add_bundle("a1_bob", "a1", 1, &classical, NOW).unwrap();
    let m = n.send("a1_bob", "classical");
    // Bob has not allowed it: the prekey message is a downgrade.
    n.recv_fails("b1_alice", "b1", 1, &m[&1], NOW);
    n.ok(allow("b1_alice", 1, true));
    n.recv_ok("b1_alice", "b1", 1, &m[&1], NOW);
    // A PQXDH session pins the device and clears "classical allowed".
    n.connect("a1_bob", "a1", 1, "b1", NOW + 1);
    n.fails(allow("a1_bob", 1, true), "PostQuantumRequired");
    n.ok(allow("a1_bob", 1, false));
    let pq = n.send("a1_bob", "post-quantum");
    n.recv_ok("b1_alice", "b1", 1, &pq[&1], NOW + 2);
    n.fails(allow("b1_alice", 1, true), "PostQuantumRequired");
    // Pinned: a classical bundle and a classical prekey message are refused.
    n.r.fails(
        json!({
            "op": "add_bundle", "record": "a1_bob", "device": "a1", "device_id": 1,
            "bundle": hex(&classical), "now": NOW + 3,
        }),
        &crate::rec::e("PostQuantumRequired"),
    );
    n.ok(json!({
        "op": "initiate", "device": "a1", "session": "a1_bare", "bundle": hex(&classical),
        "expected": null, "policy": "ClassicalAllowed",
    }));
    let frame = [&[1u8][..], b"downgrade"].concat();
    let downgrade = crate::rec::out(
        &n.ok(json!({ "op": "encrypt", "session": "a1_bare", "plaintext": hex(&frame) })),
        "message",
    );
    n.recv_fails("b1_alice", "b1", 1, &downgrade, NOW + 4);
    // Acknowledging a new identity keeps the pin.
    let x = stranger("pin new identity");
    n.list_keys("a1_bob", &[(1, x.clone())], NOW + 5).unwrap();
    n.ok(json!({ "op": "acknowledge_identity", "record": "a1_bob", "device_id": 1, "identity": hex(&x) }));
    n.fails(allow("a1_bob", 1, true), "PostQuantumRequired");
    n.vector(
        "post_quantum_pin",
        "§16.4: allow_classical (the generation moves only when the flag changes); with it, a bundle without a KEM prekey gives X3DH and the peer accepts its prekey message only once it allowed classical too (before: Ignore(Downgrade)); a PQXDH session pins the device on both sides and clears the flag; a pinned device refuses classical bundles and prekey messages (Ignore(Downgrade)) and cannot be allowed again, even after a new identity is acknowledged.",
    )
}

pub(super) fn vectors() -> Vec<Value> {
    vec![sending(), pinning()]
}
