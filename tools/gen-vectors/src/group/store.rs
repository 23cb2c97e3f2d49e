//! The `store` vector of group.json: a `GroupReceivers` store (SPEC.md
//! §15.9) driven step by step, on the model and on sotto, with the store's
//! contents after every step.

use serde_json::{Value, json};
use sha2::Digest;
use sotto::IdentityKey;
use sotto::group::{GroupId, GroupMessage, GroupReceiver, GroupReceivers, Sender};
use testkit::hex::hex;
use testkit::model::group::{GReceiver, GStore, Inserted, store_decrypt};
use testkit::model::keys::identity_key_bytes;
use testkit::model::{Dev, Refusal};
use testkit::rng::{Draws, named_seed};

use super::{Snd, create, send_on};
use crate::lockstep::{same, same_result, streams};

/// What the store holds, oldest first.
fn held_json(held: &[GReceiver]) -> Value {
    held.iter()
        .map(|r| {
            json!({
                "chain_id": r.chain_id, "sender": r.identity.map(|i| hex(&i)),
                "next": r.next(), "cached": r.window.cache.len(),
                "state_sha256": hex(&sha2::Sha256::digest(r.encode())),
            })
        })
        .collect()
}

fn same_store(what: &str, s: &GroupReceivers, m: &GStore<GReceiver>) {
    let got: Vec<Vec<u8>> = s.iter().map(|r| r.to_bytes().to_vec()).collect();
    let want: Vec<Vec<u8>> = m.held.iter().map(GReceiver::encode).collect();
    assert!(got == want, "DISAGREEMENT in {what}: store contents");
}

enum Op {
    Insert(&'static str),
    Decrypt(Vec<u8>),
    Remove(Option<[u8; 64]>),
}

pub(crate) fn vector(label: &str) -> Value {
    let (mut m, mut r) = streams(label);
    let group = named_seed("sotto vectors group store id");
    let other_group = named_seed("sotto vectors group store other id");
    // Two identities (only their public halves matter here).
    let mut ids = Draws::new(named_seed("sotto vectors group store identities"));
    let alice_id = Dev::generate(&mut ids).ik();
    let dave_id = Dev::generate(&mut ids).ik();

    let mut chains: Vec<Snd> = Vec::new();
    for i in 0..8 {
        let g = if i == 7 { other_group } else { group };
        chains.push(create(&format!("store chain {i}"), g, &mut m, &mut r).0);
    }
    // a1..a5 are Alice's, d1 Dave's, u1 and u2 imported unauthenticated,
    // x1 belongs to another group.
    let (a1, d1, u1, u2, x1) = (0, 5, 6, 4, 7);
    let mut receivers: Vec<(&str, GReceiver)> = Vec::new();
    let install = |c: &Snd, id: Option<[u8; 64]>| {
        GReceiver::install(&c.m.distribution(), id).expect("install")
    };
    receivers.push(("a1_at_0", install(&chains[a1], Some(alice_id))));
    let mut messages = Vec::new();
    for _ in 0..2 {
        messages.push(send_on(&mut chains[a1], &mut m, &mut r));
    }
    receivers.push(("a1_at_2", install(&chains[a1], Some(alice_id))));
    for _ in 2..4 {
        messages.push(send_on(&mut chains[a1], &mut m, &mut r));
    }
    receivers.push(("a1_at_4", install(&chains[a1], Some(alice_id))));
    for _ in 4..10 {
        messages.push(send_on(&mut chains[a1], &mut m, &mut r));
    }
    receivers.push(("a1_at_10", install(&chains[a1], Some(alice_id))));
    let a1_0 = receivers[0].1.clone();
    receivers.push((
        "a1_delivered_by_dave",
        GReceiver {
            identity: Some(dave_id),
            ..a1_0.clone()
        },
    ));
    let d1_0 = install(&chains[d1], Some(dave_id));
    let d1_message = send_on(&mut chains[d1], &mut m, &mut r);
    receivers.push(("d1_at_0", d1_0.clone()));
    receivers.push((
        "d1_key_with_a1_chain_id",
        GReceiver {
            chain_id: a1_0.chain_id,
            ..d1_0
        },
    ));
    let unused_id = (1..)
        .map(|k| a1_0.chain_id ^ k)
        .find(|id| chains.iter().all(|c| c.m.chain_id != *id))
        .expect("a free chain id");
    receivers.push((
        "a1_key_with_new_chain_id",
        GReceiver {
            chain_id: unused_id,
            ..a1_0.clone()
        },
    ));
    receivers.push((
        "other_group_with_a1_chain_id",
        GReceiver {
            chain_id: a1_0.chain_id,
            ..install(&chains[x1], Some(alice_id))
        },
    ));
    receivers.push(("u1_at_0", install(&chains[u1], None)));
    receivers.push(("u2_at_0", install(&chains[u2], None)));
    for (i, name) in [(1, "a2_at_0"), (2, "a3_at_0"), (3, "a4_at_0")] {
        receivers.push((name, install(&chains[i], Some(alice_id))));
    }
    // a5: a chain of Alice's made after the store already holds four.
    let a5 = create("store chain a5", group, &mut m, &mut r).0;
    receivers.push(("a5_at_0", install(&a5, Some(alice_id))));

    use Op::{Decrypt, Insert, Remove};
    let script = [
        Insert("a1_at_0"),
        Insert("other_group_with_a1_chain_id"),
        Insert("d1_at_0"),
        Insert("u1_at_0"),
        Decrypt(messages[3].clone()),
        Insert("a1_at_2"),
        Insert("a1_at_4"),
        Insert("d1_key_with_a1_chain_id"),
        Insert("a1_key_with_new_chain_id"),
        Insert("a1_delivered_by_dave"),
        Insert("a1_at_10"),
        Decrypt(messages[1].clone()),
        Decrypt(messages[9].clone()),
        Insert("a2_at_0"),
        Insert("a3_at_0"),
        Insert("a4_at_0"),
        Insert("a5_at_0"),
        Decrypt(messages[2].clone()),
        Insert("u2_at_0"),
        Remove(Some(alice_id)),
        Remove(None),
        Decrypt(d1_message),
    ];

    let state = |name: &str| {
        receivers
            .iter()
            .find(|(n, _)| *n == name)
            .expect("a receiver")
            .1
            .encode()
    };
    let mut model = GStore::new(group);
    let mut sotto = GroupReceivers::new(GroupId::from_bytes(group));
    let mut steps = Vec::new();
    for (i, op) in script.iter().enumerate() {
        let what = format!("store step {i}");
        let mut step = match op {
            Insert(name) => {
                let st = state(name);
                let rcv = GroupReceiver::from_bytes(&st).expect("restore");
                same(&what, &rcv.to_bytes(), &st);
                let s = sotto.insert(rcv);
                let mr: Result<Inserted, Refusal> =
                    model.insert(GReceiver::parse(&st).expect("model state"));
                let error = same_result(&what, &s, &mr);
                let mut step = json!({ "op": "insert", "receiver": name, "error": error });
                match mr {
                    Ok(Inserted::Added(evicted)) => {
                        step["outcome"] = "added".into();
                        step["evicted"] = evicted.into();
                    }
                    Ok(Inserted::Advanced) => {
                        step["outcome"] = "advanced".into();
                        step["evicted"] = json!([]);
                    }
                    Err(_) => {}
                }
                step
            }
            Decrypt(msg) => {
                let s = sotto.decrypt(&GroupMessage::from_bytes(msg).expect("parses"));
                let mr = store_decrypt(&mut model, msg);
                let error = same_result(&what, &s, &mr);
                let mut step = json!({ "op": "decrypt", "message": hex(msg), "error": error });
                if let (Ok(p), Ok((pt, trace))) = (&s, &mr) {
                    assert_eq!(&p.plaintext, pt, "DISAGREEMENT in {what}: plaintext");
                    step["plaintext"] = hex(pt).into();
                    step["chain_id"] = p.chain_id.into();
                    step["index"] = p.index.into();
                    step["key_source"] = trace["key_source"].clone();
                }
                step
            }
            Remove(id) => {
                let sender = match id {
                    Some(id) => Sender::Authenticated(
                        IdentityKey::from_bytes(&identity_key_bytes(id)).expect("an identity"),
                    ),
                    None => Sender::Unauthenticated,
                };
                let n = sotto.remove_sender(&sender);
                assert_eq!(n, model.remove_sender(*id), "DISAGREEMENT in {what}");
                json!({ "op": "remove_sender", "sender": id.map(|i| hex(&i)), "removed": n })
            }
        };
        same_store(&what, &sotto, &model);
        step["held_after"] = held_json(&model.held);
        steps.push(step);
    }
    json!({
        "name": "group_store", "kind": "store",
        "group_id": hex(&group),
        "identities": { "alice": hex(&alice_id), "dave": hex(&dave_id) },
        "receivers": receivers.iter().map(|(n, g)| (n.to_string(), Value::from(hex(&g.encode())))).collect::<serde_json::Map<_, _>>(),
        "steps": steps,
    })
}
