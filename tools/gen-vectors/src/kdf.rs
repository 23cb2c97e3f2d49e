//! kdf.json: every key derivation, hash and conversion of SPEC.md with its
//! label, from the model alone: the §2.1 identity conversion (with the
//! aliases of §5.1), fingerprints (§5.2), ML-KEM-1024 (§2) and the KEM
//! binding (§7.4), the root and chain steps and message keys (§8.2-§8.4),
//! sealed-state keys (§10.5), and the group ratchet's functions and
//! message keys (§15.4, §15.5).

use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::traits::IsIdentity;
use serde_json::{Value, json};
use testkit::hex::hex;
use testkit::model::group::message::L_MESSAGE_KEYS as L_GROUP_MESSAGE_KEYS;
use testkit::model::group::ratchet::{L_DERIVE, L_KEY, L_STEP, derive, key, step};
use testkit::model::keys::{encode_kem, fingerprint, fingerprint_display, identity_key_bytes};
use testkit::model::pqxdh::kem_binding;
use testkit::model::primitives::{
    L_CHAIN_MESSAGE, L_CHAIN_NEXT, L_FINGERPRINT, L_KEM_BINDING, L_MESSAGE_KEYS, L_ROOT, L_SEALED,
    dh, ed25519_public, id_u, id_x, kdf_ck, kdf_rk, kem_decaps, kem_ek_ok, kem_encaps, kem_keygen,
    key_nonce, sha256, x_pub,
};
use testkit::model::rand::Stream;
use testkit::model::sealed;
use testkit::rng::named_seed;

use crate::rec::file;

const LABEL: &str = "sotto v2 vectors kdf";

/// -A and A + T (T of order 8) for a valid key A.
fn aliases(ik: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
    let a = CompressedEdwardsY(*ik).decompress().unwrap();
    // An order-8 point: the torsion part of a point of the full group.
    let t = curve25519_dalek::constants::EIGHT_TORSION[1];
    assert!(!t.is_identity() && t.mul_by_cofactor().is_identity());
    ((-a).compress().to_bytes(), (a + t).compress().to_bytes())
}

fn identity_conversion(m: &mut Stream, i: usize) -> Value {
    let seed = m.draw::<32>();
    let peer = m.draw::<32>();
    let ik = ed25519_public(&seed);
    let (neg, torsion) = aliases(&ik);
    let x = id_x(&seed);
    assert_eq!(x_pub(&x), id_u(&ik));
    assert_eq!(id_u(&neg), id_u(&ik));
    assert_eq!(dh(&peer, &id_u(&torsion)), dh(&peer, &id_u(&ik)));
    json!({
        "name": format!("identity_conversion_{i}"), "kind": "identity_conversion",
        "seed": hex(&seed), "sha512_of_seed": hex(&sha2_512(&seed)),
        "identity_key": hex(&ik), "identity_key_encoded": hex(&identity_key_bytes(&ik)),
        "idx": hex(&x), "idu": hex(&id_u(&ik)),
        "negated_identity_key": hex(&neg), "negated_idu": hex(&id_u(&neg)),
        "torsion_identity_key": hex(&torsion), "torsion_idu": hex(&id_u(&torsion)),
        "peer_secret": hex(&peer), "dh_with_idu": hex(&dh(&peer, &id_u(&ik))),
        "dh_with_torsion_idu": hex(&dh(&peer, &id_u(&torsion))),
    })
}

fn sha2_512(b: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha512::digest(b).to_vec()
}

pub(crate) fn generate() -> Value {
    let mut m = Stream::new(named_seed(LABEL));
    let mut vectors = Vec::new();
    for i in 0..3 {
        vectors.push(identity_conversion(&mut m, i));
    }
    for i in 0..2 {
        let ik = ed25519_public(&m.draw::<32>());
        let fp = fingerprint(&ik);
        vectors.push(json!({
            "name": format!("fingerprint_{i}"), "kind": "fingerprint", "info": L_FINGERPRINT,
            "identity_key": hex(&ik), "fingerprint": hex(&fp), "display": fingerprint_display(&fp),
        }));
    }
    for i in 0..2 {
        let d = m.draw::<32>();
        let z = m.draw::<32>();
        let mm = m.draw::<32>();
        let mut seed = [0u8; 64];
        seed[..32].copy_from_slice(&d);
        seed[32..].copy_from_slice(&z);
        let (ek, dk) = kem_keygen(&seed);
        let (ct, ss) = kem_encaps(&ek, &mm);
        assert_eq!(kem_decaps(&dk, &ct), ss);
        let mut wrong = ct.clone();
        wrong[0] ^= 1;
        let rejected = kem_decaps(&dk, &wrong);
        assert_ne!(rejected, ss);
        let mut bad_ek = ek.clone();
        // The first 12-bit coefficient set to 4095 >= q = 3329.
        bad_ek[0] = 0xff;
        bad_ek[1] |= 0x0f;
        assert!(kem_ek_ok(&ek) && !kem_ek_ok(&bad_ek));
        vectors.push(json!({
            "name": format!("ml_kem_1024_{i}"), "kind": "ml_kem_1024",
            "d": hex(&d), "z": hex(&z), "ek": hex(&ek), "dk_sha256": hex(&sha256(&dk)),
            "m": hex(&mm), "ct": hex(&ct), "ss": hex(&ss),
            "modified_ct": hex(&wrong), "modified_ct_ss": hex(&rejected),
            "ek_with_coefficient_4095": hex(&bad_ek),
        }));
        let kb = kem_binding(Some(&ek));
        vectors.push(json!({
            "name": format!("kem_binding_{i}"), "kind": "kem_binding", "info": L_KEM_BINDING,
            "ek": hex(&ek), "encoded": hex(&encode_kem(&ek)), "kem_binding": hex(&kb),
        }));
    }
    vectors.push(json!({
        "name": "kem_binding_x3dh", "kind": "kem_binding", "info": L_KEM_BINDING,
        "ek": null, "encoded": "00", "kem_binding": hex(&kem_binding(None)),
    }));
    for i in 0..3 {
        let rk = m.draw::<32>();
        let dhv = m.draw::<32>();
        let (new_rk, ck) = kdf_rk(&rk, &dhv);
        vectors.push(json!({
            "name": format!("root_step_{i}"), "kind": "root_step", "info": L_ROOT,
            "root_key": hex(&rk), "dh_output": hex(&dhv),
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
        let (k, nonce) = key_nonce(&salt, &mk, L_MESSAGE_KEYS);
        vectors.push(json!({
            "name": format!("message_keys_{i}"), "kind": "message_keys", "info": L_MESSAGE_KEYS,
            "ikm": hex(&mk), "salt": hex(&salt), "aes_key": hex(&k), "nonce": hex(&nonce),
        }));
    }
    for (i, context) in [&b"session/alice/3"[..], b""].into_iter().enumerate() {
        let storage = m.draw::<32>();
        let salt = m.draw::<32>();
        let (k, nonce) = key_nonce(&salt, &storage, L_SEALED);
        let header = [&[0x02, 0x30, 0x20][..], &salt].concat();
        vectors.push(json!({
            "name": format!("sealed_state_keys_{i}"), "kind": "sealed_state_keys", "info": L_SEALED,
            "ikm": hex(&storage), "salt": hex(&salt), "aes_key": hex(&k), "nonce": hex(&nonce),
            "header": hex(&header), "context": hex(context),
            "aad": hex(&sealed::aad(&header, context)),
        }));
    }
    let r = m.draw::<32>();
    vectors.push(json!({
        "name": "group_step", "kind": "group_step", "info": L_STEP,
        "input": hex(&r), "output": hex(&step(&r)),
    }));
    for level in 1..8 {
        vectors.push(json!({
            "name": format!("group_derive_{level}"), "kind": "group_derive", "info": L_DERIVE,
            "level": level, "input": hex(&r), "output": hex(&derive(level, &r)),
        }));
    }
    vectors.push(json!({
        "name": "group_key", "kind": "group_key", "info": L_KEY,
        "input": hex(&r), "output": hex(&key(&r)),
    }));
    let salt = m.draw::<16>();
    let (k, nonce) = key_nonce(&salt, &key(&r), L_GROUP_MESSAGE_KEYS);
    vectors.push(json!({
        "name": "group_message_keys", "kind": "message_keys", "info": L_GROUP_MESSAGE_KEYS,
        "ikm": hex(&key(&r)), "salt": hex(&salt), "aes_key": hex(&k), "nonce": hex(&nonce),
    }));
    file(
        "kdf",
        "Every key derivation, hash and conversion of SPEC.md v2 with its label: the identity conversion, fingerprints, ML-KEM-1024 and the KEM binding, the ratchet KDFs, sealed-state keys and the group ratchet's functions.",
        LABEL,
        vectors,
    )
}
