//! Steps several files share: devices, a session between two of them, and
//! group members.

use serde_json::json;
use testkit::hex::hex;
use testkit::model::Dev;
use testkit::model::keys::identity_key_bytes;

use crate::agreement::NOW;
use crate::rec::{Rec, out};

/// The encoded identity key of the device named `name`.
pub(crate) fn ik(r: &Rec, name: &str) -> Vec<u8> {
    identity_key_bytes(&Dev::decode(&r.state(name)).unwrap().ik)
}

/// A new device.
pub(crate) fn device(r: &mut Rec, name: &str) {
    r.ok(json!({ "op": "device_new", "device": name, "now": NOW }));
}

/// `a` starts a PQXDH session with `b` (bundle: `b`'s current signed and
/// last-resort KEM prekeys), sends `hello` and `b` accepts it. Sessions
/// `a_b` (at `a`) and `b_a` (at `b`); `a_b` still sends prekey messages.
pub(crate) fn pair(r: &mut Rec, a: &str, b: &str) {
    let kem = testkit::model::Dev::decode(&r.state(b))
        .unwrap()
        .last_resort_kem()
        .id;
    let bundle = out(
        &r.ok(json!({ "op": "bundle", "device": b, "one_time_prekey_id": null, "kem_prekey_id": kem })),
        "bundle",
    );
    r.ok(json!({
        "op": "initiate", "device": a, "session": format!("{a}_{b}"), "bundle": hex(&bundle),
        "expected": hex(&ik(r, b)), "policy": "PostQuantumRequired",
    }));
    let hello = send(r, &format!("{a}_{b}"), b"hello");
    r.ok(json!({
        "op": "accept", "device": b, "session": format!("{b}_{a}"), "message": hex(&hello),
        "policy": "PostQuantumRequired",
    }));
}

/// An encrypt on a session; the message.
pub(crate) fn send(r: &mut Rec, session: &str, pt: &[u8]) -> Vec<u8> {
    out(
        &r.ok(json!({ "op": "encrypt", "session": session, "plaintext": hex(pt) })),
        "message",
    )
}

/// A decrypt on a session.
pub(crate) fn recv(r: &mut Rec, session: &str, message: &[u8]) {
    r.ok(json!({ "op": "decrypt", "session": session, "message": hex(message) }));
}

/// A group sender owned by the device `owner`.
pub(crate) fn sender(r: &mut Rec, name: &str, group: &[u8; 32], owner: &str) {
    r.ok(json!({
        "op": "group_sender_new", "sender": name, "group_id": hex(group), "owner": hex(&ik(r, owner)),
    }));
}

/// A group encrypt; the message.
pub(crate) fn gsend(r: &mut Rec, sender: &str, pt: &[u8]) -> Vec<u8> {
    out(
        &r.ok(json!({ "op": "group_encrypt", "sender": sender, "plaintext": hex(pt) })),
        "message",
    )
}

/// The sender's current distribution.
pub(crate) fn distribution(r: &mut Rec, sender: &str) -> Vec<u8> {
    out(
        &r.ok(json!({ "op": "group_distribution", "sender": sender })),
        "distribution",
    )
}
