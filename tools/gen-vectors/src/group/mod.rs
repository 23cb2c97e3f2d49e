//! group.json: sender keys (SPEC.md §15). Every value comes from the
//! reference model; sotto's public API is driven in lockstep and must
//! agree byte for byte.

mod negative;
mod ratchet;
mod session;
mod store;

use serde_json::{Value, json};
use sotto::StorageKey;
use sotto::group::{GroupId, GroupReceiver, GroupSender};
use testkit::hex::{hex, hex_list};
use testkit::model::group::message::L_MESSAGE_KEYS;
use testkit::model::group::message::L_SIGNATURE;
use testkit::model::group::ratchet::{L_DERIVE, L_KEY, L_STEP};
use testkit::model::group::{GReceiver, GSender, levels_json};
use testkit::model::primitives::L_SEALED;
use testkit::model::sealed::seal_state;
use testkit::rng::{Draws, RecordingRng};

use crate::lockstep::{file, same, same_draws, same_stream, streams};

/// A sender on both sides.
pub(crate) struct Snd {
    pub(crate) m: GSender,
    pub(crate) s: GroupSender,
}

/// A new sender chain on both sides, and its `create` event.
pub(crate) fn create(
    what: &str,
    group: [u8; 32],
    m: &mut Draws,
    r: &mut RecordingRng,
) -> (Snd, Value) {
    let gm = GSender::new(m, group);
    let draws = m.take();
    let gs = GroupSender::new(r, GroupId::from_bytes(group));
    same_stream(what, r, &draws);
    same(
        &format!("{what}: sender state"),
        &gs.to_bytes(),
        &gm.encode(),
    );
    let ev = json!({
        "rng_draws": hex_list(&draws), "group_id": hex(&group), "chain_id": gm.chain_id,
        "levels": levels_json(&gm.levels), "signing_seed": hex(&gm.seed),
        "signing_public": hex(&gm.public()), "sender_state": hex(&gm.encode()),
    });
    (Snd { m: gm, s: gs }, ev)
}

/// One message on both sides, which must agree.
pub(crate) fn send_on(c: &mut Snd, m: &mut Draws, r: &mut RecordingRng) -> Vec<u8> {
    let pt = format!("message {} of chain {}", c.m.index, c.m.chain_id).into_bytes();
    let (msg, _) = c.m.encrypt(m, &pt).expect("model encrypt");
    let draws = m.take();
    let wire = c.s.encrypt(r, &pt).expect("encrypt");
    same_stream("store send", r, &draws);
    same("store send", wire.as_bytes(), &msg);
    msg
}

/// The labels of §15.2, as the vectors list them.
fn labels() -> Value {
    json!({
        "step": L_STEP, "derive": L_DERIVE, "key": L_KEY,
        "message_keys": L_MESSAGE_KEYS, "signature": L_SIGNATURE,
    })
}

/// A receiver state in full, or as its SHA-256 past this length.
const INLINE_STATE_MAX: usize = 1024;

fn sender_decoded(g: &GSender) -> Value {
    json!({
        "group_id": hex(&g.group), "chain_id": g.chain_id, "index": g.index,
        "levels": levels_json(&g.levels), "signing_seed": hex(&g.seed),
        "signing_public": hex(&g.public()),
    })
}

fn receiver_decoded(g: &GReceiver) -> Value {
    json!({
        "group_id": hex(&g.group), "chain_id": g.chain_id, "signing_public": hex(&g.signing),
        "sender_identity": g.identity.map(|i| hex(&i)), "next": g.next(),
        "levels": levels_json(&g.levels),
        "skipped": g.window.cache.iter().map(|(i, k)| json!({ "index": i, "message_key": hex(k) })).collect::<Vec<_>>(),
    })
}

pub(crate) fn generate() -> Value {
    let label = "sotto vectors group";
    let mut vectors = vec![ratchet::vector("sotto vectors group ratchet")];
    let mut run = session::run(label);
    vectors.push(run.vector.clone());

    // Saved states, plain and sealed.
    let storage = run.m.draw::<32>();
    let (mut seal_m, mut seal_rng) = streams("sotto vectors group seal");
    let key = StorageKey::from_bytes(storage);
    for (name, kind, state, decoded) in &run.snapshots {
        let salt = seal_m.draw::<32>();
        let draws = seal_m.take();
        let (sealed_m, aes_key, nonce) = seal_state(&storage, &salt, state);
        let sealed_s = match *kind {
            "group_sender" => GroupSender::from_bytes(state)
                .expect("restore")
                .seal(&key, &mut seal_rng)
                .expect("seal"),
            _ => GroupReceiver::from_bytes(state)
                .expect("restore")
                .seal(&key, &mut seal_rng)
                .expect("seal"),
        };
        same_draws(&format!("seal {name}"), &mut seal_rng, &draws);
        same(&format!("sealed {name}"), &sealed_s, &sealed_m);
        vectors.push(json!({
            "name": name, "kind": kind, "state": hex(state), "decoded": decoded,
            "storage_key": hex(&storage), "seal_salt": hex(&salt), "seal_info": L_SEALED,
            "seal_aes_key": hex(&aes_key), "seal_nonce": hex(&nonce), "sealed": hex(&sealed_m),
        }));
    }
    vectors.extend(negative::vectors(&mut run, &storage));
    vectors.push(store::vector("sotto vectors group store"));
    let mut f = file(
        "group",
        "Group messaging (sender keys, SPEC.md section 15): the ratchet at chosen indices, a scripted session with every intermediate value, saved states, and inputs that must be rejected with their exact errors.",
        label,
        vectors,
    );
    f["fixtures"] = run
        .fixtures
        .iter()
        .map(|(n, s)| (n.to_string(), Value::from(hex(s))))
        .collect::<serde_json::Map<_, _>>()
        .into();
    f
}
