//! persistence.json: the conversation's saved states, what they decode
//! to, and their sealed forms (SPEC.md §10).

use serde_json::{Value, json};
use sotto::rand_core::Rng;
use sotto::{Device, Session, StorageKey};
use testkit::hex::hex;
use testkit::model::primitives::L_SEALED;
use testkit::model::sealed::seal_state;

use crate::lockstep::{file, same, same_draws, streams};

pub(crate) fn generate() -> Value {
    let label = "sotto vectors persistence";
    let (mut m, mut r) = streams(label);
    let storage = m.draw::<32>();
    let mut skipped = [0u8; 32];
    r.fill_bytes(&mut skipped);
    same_draws("storage key", &mut r, &m.take());
    let key = StorageKey::from_bytes(storage);
    let mut vectors = Vec::new();
    for snap in crate::conversation::run().snapshots {
        let salt = m.draw::<32>();
        let draws = m.take();
        let (sealed_m, aes_key, nonce) = seal_state(&storage, &salt, &snap.state);
        let sealed_s = match snap.kind {
            "session" => Session::from_bytes(&snap.state)
                .expect("restore")
                .seal(&key, &mut r)
                .expect("seal"),
            _ => Device::from_bytes(&snap.state)
                .expect("restore")
                .seal(&key, &mut r)
                .expect("seal"),
        };
        same_draws(&format!("seal {}", snap.name), &mut r, &draws);
        same(&format!("sealed {}", snap.name), &sealed_s, &sealed_m);
        vectors.push(json!({
            "name": snap.name, "kind": snap.kind, "state": hex(&snap.state), "decoded": snap.decoded,
            "storage_key": hex(&storage), "seal_salt": hex(&salt), "seal_info": L_SEALED,
            "seal_aes_key": hex(&aes_key), "seal_nonce": hex(&nonce), "sealed": hex(&sealed_m),
        }));
    }
    file(
        "persistence",
        "Saved states (Session::to_bytes, Device::to_bytes) from the conversation, what they decode to, and their sealed forms.",
        label,
        vectors,
    )
}
