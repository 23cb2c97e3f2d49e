//! The byte layouts of SPEC.md §5, §9, §10 and §15 as named ranges: each
//! function decodes a valid encoding with the reference model and returns
//! where every field sits ([`Layout`]), so tests tamper with a field by its
//! SPEC name instead of an offset:
//!
//! ```text
//! let l = layout::message(&bytes);
//! l.put(&mut bytes, "base_key", &other);      // a prekey message's EK.pub
//! l.flip(&mut bytes, "ratchet.salt", 0, 1);   // its ratchet message's salt
//! ```
//!
//! Names are the SPEC's field names; repeated parts are indexed
//! (`chains[1].next`, `cache[0].key`), and a prekey message's embedded
//! ratchet message is under `ratchet.`. Each panics on input its decoder
//! refuses: these are for tampering with values that were valid.

pub use crate::model::codec::Layout;
use crate::model::group::ratchet::{message_key, split_levels};
use crate::model::{device, group, keys, session, wire};

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

/// A prekey bundle (§5.5).
pub fn bundle(b: &[u8]) -> Layout {
    valid("bundle", keys::read_bundle(b))
}

/// A saved session (§10.2).
pub fn session_state(b: &[u8]) -> Layout {
    valid("session state", session::Sess::read(b))
}

/// A saved device (§10.3).
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
    valid("sender state", group::GSender::read(b))
}

/// A saved group receiver (§15.11).
pub fn receiver_state(b: &[u8]) -> Layout {
    valid("receiver state", group::GReceiver::read(b))
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
            | "identity_sig_seed"
            | "identity_dh_secret"
            | "secret"
            | "levels"
            | "signing_seed"
            | "key"
    )
}

/// Every 32-byte secret in a plain saved state (session, device, group
/// sender or receiver) or a distribution: the keys its layout marks
/// secret, each ratchet's eight levels, and the message key of the index a
/// ratchet stands at.
pub fn secrets(b: &[u8]) -> Vec<[u8; 32]> {
    let layout = match b.get(1) {
        Some(0x20) => session_state(b),
        Some(0x21) => device_state(b),
        Some(0x22) => sender_state(b),
        Some(0x23) => receiver_state(b),
        Some(0x04) => distribution(b),
        other => panic!("not a saved state or distribution: type {other:?}"),
    };
    let mut out = Vec::new();
    for (name, range) in layout.iter().filter(|(n, _)| is_secret(n)) {
        let bytes = &b[range];
        if name == "levels" {
            let levels = split_levels(bytes);
            out.extend(levels);
            out.push(message_key(&levels));
        } else {
            out.push(bytes.try_into().expect("a 32-byte secret"));
        }
    }
    out
}

/// A sealed state (§10.4): its header fields and the ciphertext.
pub fn sealed(b: &[u8]) -> Layout {
    match crate::model::sealed::read_layout(b) {
        Ok(l) => l,
        Err(e) => panic!("not a valid sealed state: {e}"),
    }
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
        0x20 => session::Sess::read(b).ok()?.1,
        0x21 => device::Dev::read(b).ok()?.1,
        0x22 => group::GSender::read(b).ok()?.1,
        0x23 => group::GReceiver::read(b).ok()?.1,
        0x30 => crate::model::sealed::read_layout(b).ok()?,
        _ => return None,
    };
    Some(l)
}
