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
    let kem = Dev::decode(&r.state(b)).unwrap().last_resort_kem().id;
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
    r.ok(json!({ "op": "group_sender_new", "sender": name, "group_id": hex(group), "device": owner }));
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

/// A two-party session script: Alice (0) and Bob (1) with one session
/// each (`alice_bob`, `bob_alice`), messages kept by id.
pub(crate) struct Conv {
    pub(crate) r: Rec,
    sent: std::collections::BTreeMap<String, Vec<u8>>,
    accepted: bool,
}

/// The session names of Alice and Bob.
pub(crate) const SESSIONS: [&str; 2] = ["alice_bob", "bob_alice"];

impl Conv {
    /// Two devices and Alice's session with Bob (not yet accepted).
    pub(crate) fn new(label: &str) -> Self {
        let mut r = Rec::new(label);
        device(&mut r, "alice");
        device(&mut r, "bob");
        let kem = Dev::decode(&r.state("bob")).unwrap().last_resort_kem().id;
        let bundle = out(
            &r.ok(json!({ "op": "bundle", "device": "bob", "one_time_prekey_id": null, "kem_prekey_id": kem })),
            "bundle",
        );
        r.ok(json!({
            "op": "initiate", "device": "alice", "session": "alice_bob", "bundle": hex(&bundle),
            "expected": hex(&ik(&r, "bob")), "policy": "PostQuantumRequired",
        }));
        Self {
            r,
            sent: std::collections::BTreeMap::new(),
            accepted: false,
        }
    }

    /// Party `p` sends message `id`.
    pub(crate) fn send(&mut self, p: usize, id: &str) {
        let pt = format!("{id} from {}", ["alice", "bob"][p]);
        let o = self.r.ok(json!({
            "op": "encrypt", "session": SESSIONS[p], "plaintext": hex(pt.as_bytes()), "message_id": id,
        }));
        self.sent.insert(id.to_owned(), out(&o, "message"));
    }

    /// Keeps a message made outside the script under an id.
    pub(crate) fn keep(&mut self, id: &str, message: Vec<u8>) {
        self.sent.insert(id.to_owned(), message);
    }

    /// Party `p` receives message `id` (Bob's first receive is the
    /// accept); the result, success or error, is recorded.
    pub(crate) fn receive(&mut self, p: usize, id: &str) -> Result<(), testkit::model::Refusal> {
        let message = hex(&self.sent[id]);
        let accept = p == 1 && !self.accepted;
        let step = if accept {
            json!({
                "op": "accept", "device": "bob", "session": "bob_alice", "message": message,
                "policy": "PostQuantumRequired", "message_id": id,
            })
        } else {
            json!({ "op": "decrypt", "session": SESSIONS[p], "message": message, "message_id": id })
        };
        let r = self.r.step(step).map(drop);
        self.accepted |= accept && r.is_ok();
        r
    }

    /// The sending chain of party `p` moves `count` chain steps without
    /// sending, as if that many messages were sent and lost (a
    /// `session_advance` recipe).
    pub(crate) fn advance(&mut self, p: usize, count: u32) {
        self.r.ok(json!({
            "op": "load", "name": SESSIONS[p],
            "recipe": { "kind": "session_advance", "from": SESSIONS[p], "count": count },
        }));
    }

    /// A saved copy of party `p`'s session.
    pub(crate) fn save(&self, p: usize) -> Vec<u8> {
        self.r.state(SESSIONS[p])
    }

    /// Party `p` restores a saved session (a `load` step).
    pub(crate) fn restore(&mut self, p: usize, state: &[u8]) {
        self.r
            .ok(json!({ "op": "load", "name": SESSIONS[p], "state": hex(state) }));
    }
}
