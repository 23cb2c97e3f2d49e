//! kdf.json: recomputed with the model (the crate-private sotto functions
//! are checked against this file by sotto's own unit tests).

use serde_json::Value;

use super::Res;
use super::json::{b, eq, label, s};
use crate::model::primitives::{
    L_CHAIN_MESSAGE, L_CHAIN_NEXT, L_MESSAGE_KEYS, L_ROOT, L_SEALED, kdf_ck, kdf_rk, key_nonce,
};

pub(super) fn verify(_: &Value, v: &Value) -> Res {
    match s(v, "kind")? {
        "root_step" => {
            label(v, "info", L_ROOT)?;
            let (rk, ck) = kdf_rk(
                &super::json::b32(v, "root_key")?,
                &super::json::b32(v, "dh_output")?,
            );
            eq("new_root_key", &rk, &b(v, "new_root_key")?)?;
            eq("chain_key", &ck, &b(v, "chain_key")?)
        }
        "chain_step" => {
            label(v, "info", L_CHAIN_MESSAGE)?;
            label(v, "next_info", L_CHAIN_NEXT)?;
            let (mk, next) = kdf_ck(&super::json::b32(v, "chain_key")?);
            eq("message_key", &mk, &b(v, "message_key")?)?;
            eq("next_chain_key", &next, &b(v, "next_chain_key")?)
        }
        kind @ ("message_keys" | "sealed_state_keys") => {
            let info = if kind == "message_keys" {
                L_MESSAGE_KEYS
            } else {
                L_SEALED
            };
            label(v, "info", info)?;
            let (key, nonce) = key_nonce(&b(v, "salt")?, &b(v, "ikm")?, info);
            eq("aes_key", &key, &b(v, "aes_key")?)?;
            eq("nonce", &nonce, &b(v, "nonce")?)
        }
        other => Err(format!("unknown kind {other:?}")),
    }
}
