//! The `ratchet_levels` vector: the sender-key ratchet at chosen indices,
//! computed three ways (closed form, jumps, increments), which must agree,
//! and sotto's sender and receiver at each.

use serde_json::{Value, json};
use sotto::group::{GroupMessage, GroupReceiver, GroupSender};
use testkit::hex::hex;
use testkit::model::group::ratchet::{closed_form, increment, jump, levels_json, message_key};
use testkit::model::group::window::MAX_JUMP;
use testkit::model::group::{GReceiver, GSender};
use testkit::rng::named_seed;

use super::{create, labels};
use crate::lockstep::{same, same_stream, streams};

/// Indices whose ratchet state is written out: every digit rollover and
/// the ends of the range.
const RATCHET_INDICES: &[u32] = &[
    0,
    1,
    15,
    16,
    255,
    256,
    1000,
    4095,
    4096,
    65535,
    65536,
    0x0012_3456,
    0x00ff_ffff,
    0x0100_0000,
    0x0fff_ffff,
    0x1000_0000,
    0x1234_5678,
    0x9abc_def0,
    0xdead_beef,
    0xffff_fffe,
    0xffff_ffff,
];

pub(crate) fn vector(label: &str) -> Value {
    let (mut m, mut r) = streams(label);
    let group = named_seed("sotto vectors group id ratchet");
    let (snd, created) = create("ratchet sender", group, &mut m, &mut r);
    let initial = snd.m.levels;
    let dist0 = snd.m.distribution();
    let at0_m = GReceiver::install(&dist0, None).expect("install");
    let at0_s = GroupReceiver::import_unauthenticated(&dist0).expect("import");
    same("ratchet receiver at 0", &at0_s.to_bytes(), &at0_m.encode());
    let mut states = Vec::new();
    let (mut prev_i, mut prev) = (0u32, initial);
    for &t in RATCHET_INDICES {
        let what = format!("ratchet index {t}");
        let closed = closed_form(&initial, t);
        let mut from0 = initial;
        jump(0, &mut from0, t);
        let mut from_prev = prev;
        jump(prev_i, &mut from_prev, t);
        // Increments over the last stretch, which crosses t's rollovers.
        let (mut i, mut inc) = if t - prev_i <= 70_000 {
            (prev_i, prev)
        } else {
            let start = t - 300;
            let mut l = initial;
            jump(0, &mut l, start);
            (start, l)
        };
        while i < t {
            i = increment(i, &mut inc);
        }
        assert!(
            closed == from0 && closed == from_prev && closed == inc,
            "model: ratchet procedures disagree at {t}"
        );
        let sender = GSender {
            index: t,
            levels: closed,
            ..snd.m.clone()
        };
        let mut s = GroupSender::from_bytes(&sender.encode()).expect("restore");
        same(&what, &s.to_bytes(), &sender.encode());
        let pt = format!("index {t}").into_bytes();
        let mut st = json!({
            "index": t, "levels": levels_json(&closed),
            "message_key": hex(&message_key(&closed)), "plaintext": hex(&pt),
        });
        if t == u32::MAX {
            let e = s.encrypt(&mut r, &pt).expect_err("the last index");
            assert_eq!(e, sotto::Error::ChainExhausted, "DISAGREEMENT in {what}");
            st["salt"] = Value::Null;
            st["message"] = Value::Null;
        } else {
            let mut ms = sender.clone();
            let (msg, _) = ms.encrypt(&mut m, &pt).expect("model encrypt");
            let salt = m.take();
            let wire = s.encrypt(&mut r, &pt).expect("encrypt");
            same_stream(&what, &mut r, &salt);
            same(&what, wire.as_bytes(), &msg);
            same(&format!("{what}: incremented"), &s.to_bytes(), &ms.encode());
            same(
                &format!("{what}: increment = closed form"),
                &ms.encode(),
                &GSender {
                    index: t + 1,
                    levels: closed_form(&initial, t + 1),
                    ..snd.m.clone()
                }
                .encode(),
            );
            if t <= MAX_JUMP {
                // sotto's receiver jumps from index 0 to t.
                let mut rm = at0_m.clone();
                let (pt_m, _) = rm.decrypt(&msg).expect("model decrypt");
                let mut rs = GroupReceiver::from_bytes(&at0_s.to_bytes()).expect("restore");
                let got = rs
                    .decrypt(&GroupMessage::from_bytes(&msg).expect("parses"))
                    .expect("decrypt");
                same(&format!("{what}: jump from 0"), &got.plaintext, &pt_m);
                same(&format!("{what}: receiver"), &rs.to_bytes(), &rm.encode());
            }
            st["salt"] = hex(&salt[0]).into();
            st["message"] = hex(&msg).into();
        }
        states.push(st);
        (prev_i, prev) = (t, closed);
    }
    json!({
        "name": "ratchet_levels", "kind": "ratchet",
        "labels": labels(),
        "sender": created,
        "distribution": hex(&dist0),
        "states": states,
    })
}
