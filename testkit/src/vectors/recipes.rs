//! States too large to write out, built from a recipe (README: "Recipes").
//! Every value a recipe fills in is `SHA256("sotto v2 vectors fill" ||
//! u8(tag) || u32(k))` for a tag per kind of value and a counter `k`, so an
//! implementation rebuilds the same bytes; a `load` step gives the state's
//! SHA-256 and length besides.

use serde_json::Value;

use super::json::{b, s, u};
use super::script::World;
use crate::model::group::{Receiver, Store, Window};
use crate::model::keys::{KIND_ONE_TIME, Kem};
use crate::model::primitives::{ed25519_public, sha256};
use crate::model::{Dev, Sess};

/// The fill label.
pub const FILL: &str = "sotto v2 vectors fill";

/// Tag of a base key.
pub const TAG_BASE_KEY: u8 = 1;
/// Tag of a one-time prekey secret.
pub const TAG_OPK: u8 = 2;
/// Tag of a one-time KEM prekey seed (two values, `2k` and `2k + 1`).
pub const TAG_KEM_SEED: u8 = 3;
/// Tag of a store receiver's chain seed.
pub const TAG_CHAIN: u8 = 4;
/// Tag of an owner's identity seed.
pub const TAG_OWNER: u8 = 5;
/// Tag of a ratchet level (`8i + level`).
pub const TAG_LEVEL: u8 = 6;
/// Tag of a session's skipped message key (`2000 * chain + i`).
pub const TAG_SESSION_KEY: u8 = 7;

/// `SHA256(FILL || u8(tag) || u32(k))`.
pub fn fill(tag: u8, k: u32) -> [u8; 32] {
    let mut input = FILL.as_bytes().to_vec();
    input.push(tag);
    input.extend(k.to_be_bytes());
    sha256(&input)
}

/// The identity key of fill owner `k` (`Ed25519 public of fill(TAG_OWNER, k)`).
pub fn owner(k: u32) -> [u8; 32] {
    ed25519_public(&fill(TAG_OWNER, k))
}

/// Recipes: `device_fill`, `store_fill` (below), `session_fill` (each
/// receiving chain of `from`, in order, gets `keys[c]` skipped keys, at
/// indices `2000 - n .. 2000` with keys `fill(TAG_SESSION_KEY, 2000c + i)`,
/// and `next` = 2000), `patch` (the bytes of `from` with `bytes` written at
/// `offset`), `session_advance` (the
/// sending chain of `from` moves `count` chain steps, as if that many
/// messages were sent and lost) and `session_edit` (the sending chain's
/// `ns` and the current receiving chain's `next` of `from` set to the
/// values given, chain keys unchanged: a state no honest run reaches
/// there, for the checks that come before any key is used).
///
/// Builds the state a recipe describes (`from` names a state of the world).
///
/// # Errors
///
/// A message for a recipe this module does not know or cannot apply.
pub fn build(recipe: &Value, world: &World) -> Result<Vec<u8>, String> {
    match s(recipe, "kind")? {
        "device_fill" => device_fill(recipe, world.get(s(recipe, "from")?)?),
        "store_fill" => store_fill(recipe),
        "session_advance" => {
            let mut sess =
                Sess::decode(world.get(s(recipe, "from")?)?).map_err(|e| e.to_string())?;
            let count = u32::try_from(u(recipe, "count")?).map_err(|e| e.to_string())?;
            sess.advance(count);
            Ok(sess.encode())
        }
        "session_edit" => {
            let mut sess =
                Sess::decode(world.get(s(recipe, "from")?)?).map_err(|e| e.to_string())?;
            if recipe.get("ns").is_some() {
                let ns = u32::try_from(u(recipe, "ns")?).map_err(|e| e.to_string())?;
                sess.sending.as_mut().ok_or("no sending chain")?.next = ns;
            }
            if recipe.get("receiving_next").is_some() {
                let next =
                    u32::try_from(u(recipe, "receiving_next")?).map_err(|e| e.to_string())?;
                sess.recv
                    .chains
                    .last_mut()
                    .ok_or("no receiving chain")?
                    .next = next;
            }
            Ok(sess.encode())
        }
        "session_fill" => {
            let mut sess =
                Sess::decode(world.get(s(recipe, "from")?)?).map_err(|e| e.to_string())?;
            let counts = super::json::list(recipe, "keys")?;
            if counts.len() != sess.recv.chains.len() {
                return Err("one key count per receiving chain".into());
            }
            for (k, (c, n)) in sess.recv.chains.iter_mut().zip(counts).enumerate() {
                let n =
                    u32::try_from(n.as_u64().ok_or("a key count")?).map_err(|e| e.to_string())?;
                c.next = 2000;
                c.skipped = (0..n)
                    .map(|i| {
                        (
                            2000 - n + i,
                            fill(TAG_SESSION_KEY, 2000 * u32::try_from(k).expect("<= 5") + i),
                        )
                    })
                    .collect();
            }
            Ok(sess.encode())
        }
        "patch" => {
            let mut bytes = world.get(s(recipe, "from")?)?.to_vec();
            let at = usize::try_from(u(recipe, "offset")?).map_err(|e| e.to_string())?;
            let patch = b(recipe, "bytes")?;
            bytes
                .get_mut(at..at + patch.len())
                .ok_or("a patch past the end")?
                .copy_from_slice(&patch);
            Ok(bytes)
        }
        other => Err(format!("unknown recipe {other:?}")),
    }
}

/// `device_fill`: the device `from` with `base_keys` base keys recorded
/// under its current signed prekey (after those it has), `one_time_prekeys`
/// one-time prekeys and `kem_prekeys` one-time KEM prekeys added with ids
/// from its counters (which move past them), and then any of
/// `next_spk_id`, `next_opk_id`, `next_kem_id` set. The generation does not
/// change.
fn device_fill(recipe: &Value, from: &[u8]) -> Result<Vec<u8>, String> {
    let mut d = Dev::decode(from).map_err(|e| e.to_string())?;
    let n = |k: &str| -> Result<u32, String> {
        match recipe.get(k) {
            None => Ok(0),
            Some(_) => u32::try_from(u(recipe, k)?).map_err(|e| e.to_string()),
        }
    };
    let spk = d.spks.last_mut().ok_or("no signed prekey")?;
    for k in 0..n("base_keys")? {
        spk.base_keys.push(fill(TAG_BASE_KEY, k));
    }
    for k in 0..n("one_time_prekeys")? {
        d.opks.insert(d.next_opk, fill(TAG_OPK, k));
        d.next_opk += 1;
    }
    for k in 0..n("kem_prekeys")? {
        let mut seed = [0u8; 64];
        seed[..32].copy_from_slice(&fill(TAG_KEM_SEED, 2 * k));
        seed[32..].copy_from_slice(&fill(TAG_KEM_SEED, 2 * k + 1));
        let kem = Kem::new(&d.seed, d.next_kem, KIND_ONE_TIME, 0, seed, None);
        d.kem_otks.insert(d.next_kem, kem);
        d.next_kem += 1;
    }
    if recipe.get("next_spk_id").is_some() {
        d.next_spk = n("next_spk_id")?;
    }
    if recipe.get("next_opk_id").is_some() {
        d.next_opk = n("next_opk_id")?;
    }
    if recipe.get("next_kem_id").is_some() {
        d.next_kem = n("next_kem_id")?;
    }
    Ok(d.encode())
}

/// `store_fill`: a store for `group_id` at generation 0 holding, oldest
/// first, `unauthenticated` unauthenticated receivers and then
/// `authenticated` authenticated ones. Receiver `i` (counting both kinds,
/// from 0) has chain seed `fill(TAG_CHAIN, i)`, levels
/// `fill(TAG_LEVEL, 8i + level)`, next index 0, read 0, no cached keys
/// and generation 0; its owner is `owner(i / 4)` (so every owner has 4 chains
/// of one kind).
fn store_fill(recipe: &Value) -> Result<Vec<u8>, String> {
    let group: [u8; 32] = b(recipe, "group_id")?
        .try_into()
        .map_err(|_| "group_id is not 32 bytes")?;
    let unauth = u32::try_from(u(recipe, "unauthenticated")?).map_err(|e| e.to_string())?;
    let auth = u32::try_from(u(recipe, "authenticated")?).map_err(|e| e.to_string())?;
    let mut store = Store::new(group);
    for i in 0..unauth + auth {
        let mut levels = [[0u8; 32]; 8];
        for (l, level) in levels.iter_mut().enumerate() {
            *level = fill(TAG_LEVEL, 8 * i + u32::try_from(l).expect("8"));
        }
        store.entries.push(Receiver {
            generation: 0,
            group,
            chain: ed25519_public(&fill(TAG_CHAIN, i)),
            owner: owner(i / 4),
            authenticated: i >= unauth,
            read: 0,
            levels,
            window: Window::at(0),
        });
    }
    Ok(store.encode())
}
