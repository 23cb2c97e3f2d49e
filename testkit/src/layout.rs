//! The byte layouts of SPEC.md §5, §9, §10 and §15 (protocol version 2) as
//! named ranges: each function decodes a valid encoding with the reference
//! model and returns where every field sits ([`Layout`]), so tests tamper
//! with a field by its SPEC name instead of an offset:
//!
//! ```text
//! let l = layout::message(&bytes);
//! l.put(&mut bytes, "base_key", &other);      // a prekey message's EK.pub
//! l.flip(&mut bytes, "ratchet.salt", 0, 1);   // its ratchet message's salt
//! ```
//!
//! Names are the SPEC's field names; repeated parts are indexed
//! (`chains[1].next`, `cache[0].key`, `spks[0].base_keys[3]`), a prekey
//! message's embedded ratchet message is under `ratchet.`, and a store's
//! receivers under `entries[i].` (with `entries[i].length` and
//! `entries[i].state` for the whole embedded state). Each panics on input
//! its decoder refuses: these are for tampering with values that were
//! valid.
//!
//! | encoding | type | fields |
//! |---|---|---|
//! | ratchet message | 0x01 | version, type, ratchet_key, pn, n, salt, ciphertext |
//! | prekey message | 0x02 | version, type, identity, base_key, spk_id, has_opk, \[opk_id\], has_kem, \[kem_id, ct\], ratchet.* |
//! | group message | 0x03 | version, type, group_id, chain, index, salt, ciphertext, tag, signature |
//! | distribution | 0x04 | version, type, group_id, chain, owner, owner_proof, owner_signature, index, levels |
//! | identity key | 0x10 | version, type, identity |
//! | signed prekey | 0x11 | version, type, id, public, signature |
//! | one-time prekey | 0x12 | version, type, id, public |
//! | bundle | 0x13 | version, type, identity, spk_id, spk, spk_signature, has_opk, [opk_id, opk], has_kem, [kem_id, kind, alg, ek, kem_signature] |
//! | KEM prekey | 0x14 | version, type, id, kind, alg, ek, signature |
//! | session | 0x20 | see [`session_state`] |
//! | device | 0x21 | see [`device_state`] |
//! | group sender | 0x22 | version, type, generation, group_id, owner, chain_seed, owner_proof, owner_signature, index, levels |
//! | group receiver | 0x23 | version, type, generation, group_id, chain, owner, authenticated, next, read, levels, count, cache\[i\].{index, key} |
//! | group store | 0x24 | version, type, generation, group_id, count, entries\[i\].{length, state, (receiver fields)} |
//! | sealed | 0x30 | version, type, inner_type, salt, ciphertext |

pub use crate::model::codec::Layout;
use crate::model::group::ratchet::{message_key, split_levels};
use crate::model::{device, group, keys, sealed as sealed_state, session, wire};

fn valid<T>(what: &str, r: Result<(T, Layout), crate::model::Refusal>) -> Layout {
    match r {
        Ok((_, l)) => l,
        Err(e) => panic!("not a valid {what}: {e}"),
    }
}

/// A ratchet or prekey message (§9).
pub fn message(b: &[u8]) -> Layout {
    valid("message", wire::read_message(b))
}

/// The ratchet message of either kind of message, its fields named as in
/// a ratchet message (`ratchet_key`, `pn`, `n`, `salt`, `ciphertext`).
pub fn ratchet_part(b: &[u8]) -> Layout {
    wire::ratchet_part(&message(b))
}

/// An identity key (§5.1).
pub fn identity_key(b: &[u8]) -> Layout {
    valid("identity key", keys::read_identity_key(b))
}

/// A signed prekey (§5.3).
pub fn signed_prekey(b: &[u8]) -> Layout {
    valid("signed prekey", keys::read_signed_prekey(b))
}

/// A one-time prekey (§5.4).
pub fn one_time_prekey(b: &[u8]) -> Layout {
    valid("one-time prekey", keys::read_one_time_prekey(b))
}

/// A KEM prekey (§5.5).
pub fn kem_prekey(b: &[u8]) -> Layout {
    valid("KEM prekey", keys::read_kem_prekey(b))
}

/// A prekey bundle (§5.6).
pub fn bundle(b: &[u8]) -> Layout {
    valid("bundle", keys::read_bundle(b))
}

/// A saved session (§10.2): version, type, generation, role,
/// key_agreement, local_identity, remote_identity, kem_binding, base_key,
/// has_pending, \[spk_id, has_opk, \[opk_id\], has_kem, \[kem_id, ct\]\],
/// root_key, dhr, has_sending, [dhs_secret, cks, ns], pn, chain_count,
/// chains\[i\].{ratchet_key, has_ck, \[ck\], next, key_count,
/// keys\[j\].{index, message_key}}.
pub fn session_state(b: &[u8]) -> Layout {
    valid("session state", session::Sess::read(b))
}

/// A saved device (§10.3): version, type, generation, identity_seed,
/// next_spk_id, next_opk_id, next_kem_id, spk_count, spks\[i\].{id,
/// created, secret, signature, base_key_count, base_keys\[j\]}, opk_count,
/// opks\[i\].{id, secret}, last_resort_count, last_resort\[i\].{id, created,
/// seed, signature}, kem_otk_count, kem_otks\[i\].{id, seed, signature}.
pub fn device_state(b: &[u8]) -> Layout {
    valid("device state", device::Dev::read(b))
}

/// A group message (§15.5).
pub fn group_message(b: &[u8]) -> Layout {
    valid("group message", group::read_message(b))
}

/// A sender key distribution (§15.6).
pub fn distribution(b: &[u8]) -> Layout {
    valid("distribution", group::read_distribution(b))
}

/// A saved group sender (§15.11).
pub fn sender_state(b: &[u8]) -> Layout {
    valid("sender state", group::Sender::read(b))
}

/// A saved group receiver (§15.11).
pub fn receiver_state(b: &[u8]) -> Layout {
    valid("receiver state", group::Receiver::read(b))
}

/// A saved group store (§15.11).
pub fn store_state(b: &[u8]) -> Layout {
    valid("store state", group::Store::read(b))
}

/// A sealed state (§10.5): its header fields and the ciphertext.
pub fn sealed(b: &[u8]) -> Layout {
    match sealed_state::read_layout(b) {
        Ok(l) => l,
        Err(e) => panic!("not a valid sealed state: {e}"),
    }
}

/// Whether a field of a saved state or distribution holds a secret.
fn is_secret(name: &str) -> bool {
    let field = name.rsplit('.').next().unwrap_or(name);
    matches!(
        field,
        "root_key"
            | "dhs_secret"
            | "cks"
            | "ck"
            | "message_key"
            | "identity_seed"
            | "secret"
            | "seed"
            | "levels"
            | "chain_seed"
            | "key"
    )
}

/// Every 32-byte secret in a plain saved state (session, device, group
/// sender, receiver or store) or a distribution: the fields its layout
/// marks secret (a KEM seed `d || z` as its two halves), each ratchet's
/// eight levels, and the message key of the index a ratchet stands at.
pub fn secrets(b: &[u8]) -> Vec<[u8; 32]> {
    let layout = match b.get(1) {
        Some(0x20) => session_state(b),
        Some(0x21) => device_state(b),
        Some(0x22) => sender_state(b),
        Some(0x23) => receiver_state(b),
        Some(0x24) => store_state(b),
        Some(0x04) => distribution(b),
        other => panic!("not a saved state or distribution: type {other:?}"),
    };
    let mut out = Vec::new();
    for (name, range) in layout.iter().filter(|(n, _)| is_secret(n)) {
        let bytes = &b[range];
        if name.ends_with("levels") {
            let levels = split_levels(bytes);
            out.extend(levels);
            out.push(message_key(&levels));
        } else {
            out.extend(
                bytes
                    .chunks_exact(32)
                    .map(|c| <[u8; 32]>::try_from(c).expect("32")),
            );
        }
    }
    out
}

/// The layout of any valid encoding, found by its type tag; `None` for
/// input that is not one.
pub fn of(b: &[u8]) -> Option<Layout> {
    let l = match b.get(1)? {
        0x01 | 0x02 => wire::read_message(b).ok()?.1,
        0x03 => group::read_message(b).ok()?.1,
        0x04 => group::read_distribution(b).ok()?.1,
        0x10 => keys::read_identity_key(b).ok()?.1,
        0x11 => keys::read_signed_prekey(b).ok()?.1,
        0x12 => keys::read_one_time_prekey(b).ok()?.1,
        0x13 => keys::read_bundle(b).ok()?.1,
        0x14 => keys::read_kem_prekey(b).ok()?.1,
        0x20 => session::Sess::read(b).ok()?.1,
        0x21 => device::Dev::read(b).ok()?.1,
        0x22 => group::Sender::read(b).ok()?.1,
        0x23 => group::Receiver::read(b).ok()?.1,
        0x24 => group::Store::read(b).ok()?.1,
        0x30 => sealed_state::read_layout(b).ok()?,
        _ => return None,
    };
    Some(l)
}
