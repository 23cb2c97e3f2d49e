//! x3dh.json: X3DH with and without a one-time prekey (SPEC.md §7), and the
//! first message.

use serde_json::{Value, json};
use testkit::hex::hex;
use testkit::model::primitives::L_ROOT;

use crate::lockstep::{Started, file, new_party, one_time_prekeys, same, send, start, streams};

fn case(name: &str, with_opk: bool) -> Value {
    let (mut m, mut r) = streams(&format!("sotto vectors x3dh {name}"));
    let alice = new_party("alice", &mut m, &mut r);
    let mut bob = new_party("bob", &mut m, &mut r);
    let (opks, opks_json) = if with_opk {
        one_time_prekeys("bob one-time prekeys", &mut bob, &mut m, &mut r, 1)
    } else {
        (Vec::new(), json!([]))
    };
    let Started {
        model: mut am,
        sotto: mut asotto,
        x3dh: x,
        bundle,
        draws: base_draws,
    } = start(&alice, &bob, opks.first().copied(), &mut m, &mut r);
    let pt = format!("first message, {name}").into_bytes();
    let (msg, ev) = send("first message", &mut am, &mut asotto, &mut m, &mut r, &pt);

    let mut bob_model = bob.model.clone();
    let (_, pt_m, x_b, _) = testkit::model::accept(&mut bob_model, &msg);
    same("responder SK", &x_b.sk, &x.sk);
    same("responder plaintext (model)", &pt_m, &pt);
    let (_, _, pt_s) = crate::lockstep::accept("responder", &mut bob, &msg);
    same("responder plaintext", &pt_s, &pt);
    same(
        "responder device after accept",
        &bob.sotto.to_bytes(),
        &bob_model.encode(),
    );

    let mut bob_json = bob_model.json();
    bob_json["one_time_prekeys"] = opks_json;
    let r_ev = &ev["dh_ratchet"];
    let mut v = json!({
        "name": name,
        "alice": alice.model.json(),
        "bob": bob_json,
        "bundle": hex(&bundle),
        "base_key": { "private": hex(&base_draws[0]), "public": hex(&am.base) },
        "associated_data": hex(&am.ad),
        "first_message": {
            "plaintext": hex(&pt),
            "ratchet_private": r_ev["ratchet_private"], "salt": ev["salt"],
            "dh_output": r_ev["dh_output"], "root_info": L_ROOT,
            "root_key": r_ev["root_key_out"], "chain_key": r_ev["chain_key_out"],
            "message_key": ev["message_key"], "aes_key": ev["aes_key"], "nonce": ev["nonce"],
            "message": hex(&msg),
        },
    });
    for (k, val) in x.json().as_object().expect("an object") {
        v[k] = val.clone();
    }
    v
}

pub(crate) fn generate() -> Value {
    file(
        "x3dh",
        "X3DH with and without a one-time prekey: every key, DH1..DH4, the KDF input, SK, AD and the first message.",
        "sotto vectors x3dh <name>",
        vec![
            case("with_one_time_prekey", true),
            case("without_one_time_prekey", false),
        ],
    )
}
