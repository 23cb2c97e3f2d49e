//! The crate-private KDF and X3DH functions (SPEC.md §7, §8.2 to §8.4,
//! §10.4) against `test-vectors/` (§13), whose values come from the
//! generator's independent implementation. The public
//! API is checked against the same files by `tests/vectors.rs`.

extern crate std;

use alloc::vec::Vec;

use serde_json::Value;
use x25519_dalek::{PublicKey, StaticSecret};

use crate::crypto::{self, label};
use crate::keys::{IdentityKey, IdentityKeyPair};
use crate::ratchet::{ChainKey, RootKey};
use crate::x3dh;

fn load(text: &str) -> Vec<Value> {
    let file: Value = serde_json::from_str(text).unwrap();
    file["vectors"].as_array().unwrap().clone()
}

fn b(v: &Value, key: &str) -> Vec<u8> {
    let s = v[key].as_str().unwrap();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn b32(v: &Value, key: &str) -> [u8; 32] {
    b(v, key).try_into().unwrap()
}

#[test]
#[ignore = "test-vectors/ are still version 1; re-enable when the generator writes v2"]
fn kdf_vectors_match_internal_functions() {
    let vectors = load(include_str!("../test-vectors/kdf.json"));
    let mut kinds = Vec::new();
    for v in &vectors {
        let kind = v["kind"].as_str().unwrap();
        match kind {
            "root_step" => {
                assert_eq!(v["info"].as_str().unwrap().as_bytes(), label::ROOT);
                let (rk, ck) = RootKey::from_bytes(b32(v, "root_key")).step(&b32(v, "dh_output"));
                assert_eq!(rk.as_bytes(), &b32(v, "new_root_key"));
                assert_eq!(ck.as_bytes(), &b32(v, "chain_key"));
            }
            "chain_step" => {
                assert_eq!(v["info"].as_str().unwrap().as_bytes(), label::CHAIN_MESSAGE);
                assert_eq!(
                    v["next_info"].as_str().unwrap().as_bytes(),
                    label::CHAIN_NEXT
                );
                let (mk, ck) = ChainKey::from_bytes(b32(v, "chain_key")).step();
                assert_eq!(mk.as_bytes(), &b32(v, "message_key"));
                assert_eq!(ck.as_bytes(), &b32(v, "next_chain_key"));
            }
            "message_keys" | "sealed_state_keys" => {
                let info = if kind == "message_keys" {
                    label::MESSAGE_KEYS
                } else {
                    label::SEALED_STATE
                };
                assert_eq!(v["info"].as_str().unwrap().as_bytes(), info);
                let (key, nonce) = crypto::aead_key_nonce(&b(v, "salt"), &b(v, "ikm"), info);
                assert_eq!(*key, b32(v, "aes_key"));
                assert_eq!(nonce.as_slice(), b(v, "nonce").as_slice());
            }
            other => panic!("unknown kind {other}"),
        }
        kinds.push(kind);
    }
    for kind in [
        "root_step",
        "chain_step",
        "message_keys",
        "sealed_state_keys",
    ] {
        assert!(kinds.contains(&kind), "no {kind} vector");
    }
}

#[test]
#[ignore = "test-vectors/ are still version 1; re-enable when the generator writes v2"]
fn x3dh_vectors_match_internal_functions() {
    let vectors = load(include_str!("../test-vectors/x3dh.json"));
    assert_eq!(vectors.len(), 2);
    for v in &vectors {
        let (alice, bob) = (&v["alice"], &v["bob"]);
        let alice_pair = IdentityKeyPair::from_seed(&b32(alice, "ed25519_seed"));
        let bob_pair = IdentityKeyPair::from_seed(&b32(bob, "ed25519_seed"));
        let bob_id = IdentityKey::from_bytes(&b(bob, "identity_key")).unwrap();
        let alice_id = IdentityKey::from_bytes(&b(alice, "identity_key")).unwrap();
        let spk = &bob["signed_prekey"];
        let spk_secret = StaticSecret::from(b32(spk, "private"));
        let base = StaticSecret::from(b32(&v["base_key"], "private"));
        let opk = bob["one_time_prekeys"].as_array().unwrap().first();
        let opk_secret = opk.map(|o| StaticSecret::from(b32(o, "private")));
        let opk_public = opk.map(|o| PublicKey::from(b32(o, "public")));
        let sk = x3dh::KeyMaterial::initiator(
            &alice_pair,
            &base,
            &bob_id,
            &PublicKey::from(b32(spk, "public")),
            opk_public.as_ref(),
        )
        .unwrap()
        .shared_secret(None);
        assert_eq!(*sk, b32(v, "sk"));
        let sk = x3dh::KeyMaterial::responder(
            &bob_pair,
            &spk_secret,
            opk_secret.as_ref(),
            &alice_id,
            &PublicKey::from(b32(&v["base_key"], "public")),
        )
        .unwrap()
        .shared_secret(None);
        assert_eq!(*sk, b32(v, "sk"));
        assert_eq!(
            x3dh::associated_data(&alice_id, &bob_id, &x3dh::kem_binding(None)).as_slice(),
            b(v, "associated_data").as_slice()
        );
        assert_eq!(v["info"].as_str().unwrap().as_bytes(), label::X3DH);
    }
}
