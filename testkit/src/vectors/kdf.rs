//! kdf.json: every value recomputed with the model's primitives (no API
//! exposes them; sotto's unit tests may check its internals against this
//! file).

use serde_json::Value;

use super::Res;
use super::api::Api;
use super::json::{b, b32, eq, field, label, s, u};
use super::script::World;
use crate::model::group::message::L_MESSAGE_KEYS as L_GROUP_MESSAGE_KEYS;
use crate::model::group::ratchet::{L_DERIVE, L_KEY, L_STEP, derive, key, step};
use crate::model::keys::{encode_kem, fingerprint, fingerprint_display, identity_key_bytes};
use crate::model::pqxdh::kem_binding;
use crate::model::primitives::{
    L_CHAIN_MESSAGE, L_CHAIN_NEXT, L_FINGERPRINT, L_KEM_BINDING, L_MESSAGE_KEYS, L_ROOT, L_SEALED,
    dh, ed25519_public, ed25519_public_ok, id_u, id_x, kdf_ck, kdf_rk, kem_decaps, kem_ek_ok,
    kem_encaps, kem_keygen, key_nonce, sha256, x_pub,
};
use crate::model::sealed;

fn identity_conversion(v: &Value) -> Res {
    let seed = b32(v, "seed")?;
    {
        use sha2::Digest;
        field(v, "sha512_of_seed", &sha2::Sha512::digest(seed))?;
    }
    let ik = ed25519_public(&seed);
    field(v, "identity_key", &ik)?;
    field(v, "identity_key_encoded", &identity_key_bytes(&ik))?;
    let x = id_x(&seed);
    field(v, "idx", &x)?;
    eq("pub(IdX(seed)) = IdU(IK)", &x_pub(&x), &id_u(&ik))?;
    field(v, "idu", &id_u(&ik))?;
    let neg = b32(v, "negated_identity_key")?;
    let torsion = b32(v, "torsion_identity_key")?;
    for (name, k) in [("negated", &neg), ("torsion", &torsion)] {
        if !ed25519_public_ok(k) || *k == ik {
            return Err(format!("{name}_identity_key is not a distinct valid key"));
        }
    }
    field(v, "negated_idu", &id_u(&neg))?;
    eq("IdU(-A) = IdU(A)", &id_u(&neg), &id_u(&ik))?;
    field(v, "torsion_idu", &id_u(&torsion))?;
    let peer = b32(v, "peer_secret")?;
    field(v, "dh_with_idu", &dh(&peer, &id_u(&ik)))?;
    field(v, "dh_with_torsion_idu", &dh(&peer, &id_u(&torsion)))?;
    eq(
        "torsion alias, same X25519 result",
        &dh(&peer, &id_u(&torsion)),
        &dh(&peer, &id_u(&ik)),
    )
}

fn ml_kem(v: &Value) -> Res {
    let mut seed = [0u8; 64];
    seed[..32].copy_from_slice(&b32(v, "d")?);
    seed[32..].copy_from_slice(&b32(v, "z")?);
    let (ek, dk) = kem_keygen(&seed);
    field(v, "ek", &ek)?;
    field(v, "dk_sha256", &sha256(&dk))?;
    let (ct, ss) = kem_encaps(&ek, &b32(v, "m")?);
    field(v, "ct", &ct)?;
    field(v, "ss", &ss)?;
    eq("decapsulation", &kem_decaps(&dk, &ct), &ss)?;
    // The ciphertext with bit 0 flipped, and ek with its first 12-bit
    // coefficient set to 4095.
    let mut modified = ct.clone();
    modified[0] ^= 1;
    field(v, "modified_ct", &modified)?;
    field(v, "modified_ct_ss", &kem_decaps(&dk, &modified))?;
    if b(v, "modified_ct_ss")? == ss {
        return Err("the modified ciphertext is not an implicit rejection".into());
    }
    let mut bad = ek.clone();
    bad[0] = 0xff;
    bad[1] |= 0x0f;
    field(v, "ek_with_coefficient_4095", &bad)?;
    if !kem_ek_ok(&ek) || kem_ek_ok(&bad) {
        return Err("FIPS 203 §7.2 check".into());
    }
    Ok(())
}

pub(super) fn verify(_: &dyn Api, _: &World, v: &Value) -> Res {
    match s(v, "kind")? {
        "identity_conversion" => identity_conversion(v),
        "fingerprint" => {
            label(v, "info", L_FINGERPRINT)?;
            let fp = fingerprint(&b32(v, "identity_key")?);
            field(v, "fingerprint", &fp)?;
            if s(v, "display")? != fingerprint_display(&fp) {
                return Err("display".into());
            }
            Ok(())
        }
        "ml_kem_1024" => ml_kem(v),
        "kem_binding" => {
            label(v, "info", L_KEM_BINDING)?;
            let ek = if v["ek"].is_null() {
                None
            } else {
                Some(b(v, "ek")?)
            };
            field(v, "encoded", &ek.as_deref().map_or(vec![0], encode_kem))?;
            field(v, "kem_binding", &kem_binding(ek.as_deref()))
        }
        "root_step" => {
            label(v, "info", L_ROOT)?;
            let (rk, ck) = kdf_rk(&b32(v, "root_key")?, &b32(v, "dh_output")?);
            field(v, "new_root_key", &rk)?;
            field(v, "chain_key", &ck)
        }
        "chain_step" => {
            label(v, "info", L_CHAIN_MESSAGE)?;
            label(v, "next_info", L_CHAIN_NEXT)?;
            let (mk, next) = kdf_ck(&b32(v, "chain_key")?);
            field(v, "message_key", &mk)?;
            field(v, "next_chain_key", &next)
        }
        kind @ ("message_keys" | "sealed_state_keys") => {
            let info = s(v, "info")?;
            let allowed = if kind == "sealed_state_keys" {
                [L_SEALED, L_SEALED]
            } else {
                [L_MESSAGE_KEYS, L_GROUP_MESSAGE_KEYS]
            };
            if !allowed.contains(&info) {
                return Err(format!("label {info:?}"));
            }
            let (k, nonce) = key_nonce(&b(v, "salt")?, &b(v, "ikm")?, info);
            field(v, "aes_key", &k)?;
            field(v, "nonce", &nonce)?;
            if kind == "sealed_state_keys" {
                let header = b(v, "header")?;
                if header.len() != sealed::HEADER_LEN || header[3..] != b(v, "salt")?[..] {
                    return Err("header".into());
                }
                field(v, "aad", &sealed::aad(&header, &b(v, "context")?))?;
            }
            Ok(())
        }
        "group_step" => {
            label(v, "info", L_STEP)?;
            field(v, "output", &step(&b32(v, "input")?))
        }
        "group_derive" => {
            label(v, "info", L_DERIVE)?;
            let level = usize::try_from(u(v, "level")?).map_err(|e| e.to_string())?;
            if !(1..8).contains(&level) {
                return Err("level".into());
            }
            field(v, "output", &derive(level, &b32(v, "input")?))
        }
        "group_key" => {
            label(v, "info", L_KEY)?;
            field(v, "output", &key(&b32(v, "input")?))
        }
        other => Err(format!("unknown kind {other:?}")),
    }
}
