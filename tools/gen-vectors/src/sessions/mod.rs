//! sessions.json: the session layer of SPEC.md §16 as scripts. Records
//! (type 0x25) and groups (type 0x26) are states of the world like any
//! other; every step runs on the model, is replayed on sotto with the
//! recorded draws, and records the route, action or outcome and the
//! resulting record bytes. One module per part of §16.

mod groups;
mod lists;
mod receive;
mod recovery;
pub(crate) mod saved;
mod send;

use std::collections::BTreeMap;

use serde_json::{Value, json};
use testkit::hex::hex;
use testkit::model::Dev;
use testkit::model::primitives::ed25519_public;
use testkit::model::sessions::Hint;
use testkit::rng::named_seed;

use crate::agreement::NOW;
use crate::common::ik;
use crate::rec::{Rec, file, out};
use testkit::vectors::api::R;
use testkit::vectors::script::Output;

pub(crate) const LABEL: &str = "sotto v2 vectors sessions";
/// The group of the group scripts.
pub(crate) const GROUP: [u8; 32] = [0x5e; 32];
/// Seconds.
pub(crate) const HOUR: u64 = 3_600;
/// 30 days, the ages of §16.1.
pub(crate) const MONTH: u64 = 2_592_000;

/// A script of the session layer.
pub(crate) struct Net {
    pub(crate) r: Rec,
}

/// An encoded identity key that belongs to no device: Ed25519 public key of
/// `SHA256(label)` (the vectors write it out).
pub(crate) fn stranger(label: &str) -> Vec<u8> {
    testkit::model::keys::identity_key_bytes(&ed25519_public(&named_seed(label)))
}

impl Net {
    pub(crate) fn new(name: &str) -> Self {
        Self {
            r: Rec::new(&format!("{LABEL} {name}")),
        }
    }

    pub(crate) fn vector(self, name: &str, description: &str) -> Value {
        json!({ "name": name, "description": description, "steps": self.r.into_steps() })
    }

    /// New devices.
    pub(crate) fn devices(&mut self, names: &[&str]) {
        for n in names {
            self.r
                .ok(json!({ "op": "device_new", "device": n, "now": NOW }));
        }
    }

    /// The encoded identity key of a device.
    pub(crate) fn ik(&self, device: &str) -> Vec<u8> {
        ik(&self.r, device)
    }

    /// A record of `user` at `device` (the own record with `local_device`).
    pub(crate) fn record(
        &mut self,
        name: &str,
        user: &str,
        device: &str,
        local_device: Option<u32>,
    ) {
        self.r.ok(json!({
            "op": "record_new", "record": name, "user": hex(user.as_bytes()), "device": device,
            "local_device": local_device,
        }));
    }

    /// `update_devices` with devices named by state (their identities).
    pub(crate) fn list(&mut self, record: &str, devices: &[(u32, &str)], now: u64) -> R<Output> {
        let keys: Vec<(u32, Vec<u8>)> = devices.iter().map(|(id, d)| (*id, self.ik(d))).collect();
        self.list_keys(record, &keys, now)
    }

    /// `update_devices` with identities given.
    pub(crate) fn list_keys(
        &mut self,
        record: &str,
        devices: &[(u32, Vec<u8>)],
        now: u64,
    ) -> R<Output> {
        let list: Vec<Value> = devices
            .iter()
            .map(|(id, k)| json!({ "device_id": id, "identity": hex(k) }))
            .collect();
        self.r
            .step(json!({ "op": "update_devices", "record": record, "list": list, "now": now }))
    }

    /// A PQXDH bundle of a device: its current signed prekey and
    /// last-resort KEM prekey.
    pub(crate) fn bundle(&mut self, device: &str) -> Vec<u8> {
        let kem = Dev::decode(&self.r.state(device))
            .unwrap()
            .last_resort_kem()
            .id;
        self.bundle_with(device, None, Some(kem))
    }

    /// A bundle with the named one-time and KEM prekeys.
    pub(crate) fn bundle_with(
        &mut self,
        device: &str,
        opk: Option<u32>,
        kem: Option<u32>,
    ) -> Vec<u8> {
        out(
            &self.r.ok(json!({ "op": "bundle", "device": device, "one_time_prekey_id": opk, "kem_prekey_id": kem })),
            "bundle",
        )
    }

    /// `add_bundle`.
    pub(crate) fn add_bundle(
        &mut self,
        record: &str,
        device: &str,
        id: u32,
        bundle: &[u8],
        now: u64,
    ) -> R<Output> {
        self.r.step(json!({
            "op": "add_bundle", "record": record, "device": device, "device_id": id,
            "bundle": hex(bundle), "now": now,
        }))
    }

    /// `add_bundle` with the peer device's current PQXDH bundle.
    pub(crate) fn connect(&mut self, record: &str, device: &str, id: u32, peer: &str, now: u64) {
        let b = self.bundle(peer);
        self.add_bundle(record, device, id, &b, now).unwrap();
    }

    /// `record_encrypt`: the messages by device.
    pub(crate) fn send(&mut self, record: &str, payload: &str) -> BTreeMap<u32, Vec<u8>> {
        let o = self.r.ok(json!({
            "op": "record_encrypt", "record": record, "payload": hex(payload.as_bytes()),
        }));
        o.out["sent"]["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    u32::try_from(m["device_id"].as_u64().unwrap()).unwrap(),
                    testkit::hex::unhex(m["message"].as_str().unwrap()).unwrap(),
                )
            })
            .collect()
    }

    /// `encrypt_to`.
    pub(crate) fn send_to(&mut self, record: &str, id: u32, payload: &str) -> Vec<u8> {
        out(
            &self.r.ok(json!({
                "op": "encrypt_to", "record": record, "device_id": id,
                "payload": hex(payload.as_bytes()),
            })),
            "message",
        )
    }

    /// `record_decrypt`.
    pub(crate) fn recv(
        &mut self,
        record: &str,
        device: &str,
        from: u32,
        message: &[u8],
        now: u64,
    ) -> R<Output> {
        self.r.step(json!({
            "op": "record_decrypt", "record": record, "device": device, "from": from,
            "message": hex(message), "now": now,
        }))
    }

    /// A `record_decrypt` that must succeed.
    pub(crate) fn recv_ok(
        &mut self,
        record: &str,
        device: &str,
        from: u32,
        message: &[u8],
        now: u64,
    ) -> Output {
        self.recv(record, device, from, message, now)
            .unwrap_or_else(|e| panic!("model: decrypt failed: {e}"))
    }

    /// A `record_decrypt` that must fail; its failure (error with action).
    pub(crate) fn recv_fails(
        &mut self,
        record: &str,
        device: &str,
        from: u32,
        message: &[u8],
        now: u64,
    ) -> Value {
        match self.recv(record, device, from, message, now) {
            Err(e) => e,
            Ok(_) => panic!("model: the decrypt passed"),
        }
    }

    /// `request_retry`.
    pub(crate) fn request_retry(
        &mut self,
        record: &str,
        id: u32,
        hint: &Hint,
        now: u64,
    ) -> R<Output> {
        self.r.step(json!({
            "op": "request_retry", "record": record, "device_id": id, "hint": hint.json(), "now": now,
        }))
    }

    /// `start_new_session`.
    pub(crate) fn start_new_session(
        &mut self,
        record: &str,
        device: &str,
        id: u32,
        bundle: &[u8],
        hint: &Hint,
        now: u64,
    ) -> R<Output> {
        self.r.step(json!({
            "op": "start_new_session", "record": record, "device": device, "device_id": id,
            "bundle": hex(bundle), "hint": hint.json(), "now": now,
        }))
    }

    /// A saved copy of a state (for a later restore).
    pub(crate) fn save(&self, name: &str) -> Vec<u8> {
        self.r.state(name)
    }

    /// Loads saved bytes under a name (a restore).
    pub(crate) fn load(&mut self, name: &str, bytes: &[u8]) {
        self.r
            .ok(json!({ "op": "load", "name": name, "state": hex(bytes) }));
    }

    /// Any step that must succeed.
    pub(crate) fn ok(&mut self, step: Value) -> Output {
        self.r.ok(step)
    }

    /// Any step that must fail with `error`.
    pub(crate) fn fails(&mut self, step: Value, error: &str) {
        self.r.fails(step, &crate::rec::e(error));
    }
}

/// The hint in a failure's action.
pub(crate) fn action_hint(failure: &Value) -> Hint {
    Hint::from_json(&failure["action"]["hint"]).unwrap()
}

pub(crate) fn generate() -> Value {
    let mut vectors = Vec::new();
    vectors.extend(lists::vectors());
    vectors.extend(send::vectors());
    vectors.extend(receive::vectors());
    vectors.extend(recovery::vectors());
    vectors.extend(groups::vectors());
    vectors.extend(saved::vectors());
    file(
        "sessions",
        "The session layer (SPEC.md §16): device lists and identity changes, sending and the post-quantum pin, routing and placement of every received message, simultaneous initiation on both sides, every failure's action with the rate limits, retry requests and new sessions, expiry and restores, framing, groups through the layer, safety numbers, and the saved forms of records and groups explained, sealed and opened.",
        LABEL,
        vectors,
    )
}
