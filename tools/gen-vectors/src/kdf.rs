//! kdf.json: root steps, chain steps, message keys and sealed-state keys,
//! from the model alone (SPEC.md §8.2 to §8.4, §10.4).

use serde_json::{Value, json};
use testkit::hex::hex;
use testkit::model::primitives::{
    L_CHAIN_MESSAGE, L_CHAIN_NEXT, L_MESSAGE_KEYS, L_ROOT, L_SEALED, kdf_ck, kdf_rk, key_nonce,
};
use testkit::rng::{Draws, named_seed};

use crate::lockstep::file;

pub(crate) fn generate() -> Value {
    let label = "sotto vectors kdf";
    let mut m = Draws::new(named_seed(label));
    let mut vectors = Vec::new();
    for i in 0..3 {
        let rk = m.draw::<32>();
        let dh = m.draw::<32>();
        let (new_rk, ck) = kdf_rk(&rk, &dh);
        vectors.push(json!({
            "name": format!("root_step_{i}"), "kind": "root_step", "info": L_ROOT,
            "root_key": hex(&rk), "dh_output": hex(&dh),
            "new_root_key": hex(&new_rk), "chain_key": hex(&ck),
        }));
    }
    let mut ck = m.draw::<32>();
    for i in 0..3 {
        let (mk, next) = kdf_ck(&ck);
        vectors.push(json!({
            "name": format!("chain_step_{i}"), "kind": "chain_step",
            "info": L_CHAIN_MESSAGE, "next_info": L_CHAIN_NEXT,
            "chain_key": hex(&ck), "message_key": hex(&mk), "next_chain_key": hex(&next),
        }));
        ck = next;
    }
    for i in 0..3 {
        let mk = m.draw::<32>();
        let salt = m.draw::<16>();
        let (key, nonce) = key_nonce(&salt, &mk, L_MESSAGE_KEYS);
        vectors.push(json!({
            "name": format!("message_keys_{i}"), "kind": "message_keys", "info": L_MESSAGE_KEYS,
            "ikm": hex(&mk), "salt": hex(&salt), "aes_key": hex(&key), "nonce": hex(&nonce),
        }));
    }
    for i in 0..2 {
        let storage = m.draw::<32>();
        let salt = m.draw::<32>();
        let (key, nonce) = key_nonce(&salt, &storage, L_SEALED);
        vectors.push(json!({
            "name": format!("sealed_state_keys_{i}"), "kind": "sealed_state_keys", "info": L_SEALED,
            "ikm": hex(&storage), "salt": hex(&salt), "aes_key": hex(&key), "nonce": hex(&nonce),
        }));
    }
    file(
        "kdf",
        "Key derivation steps exactly as sotto uses them, with their labels.",
        label,
        vectors,
    )
}
