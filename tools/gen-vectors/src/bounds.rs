//! bounds.json (SPEC.md §8.6, §8.7): receiving chain and skipped key
//! eviction at the real limits, `TooFarAhead` and `ChainExhausted` at their
//! edges, and what late messages get afterwards.

use serde_json::{Value, json};
use testkit::hex::hex;

use crate::common::{Conv, SESSIONS};
use crate::rec::file;

const LABEL: &str = "sotto v2 vectors bounds";
const A: usize = 0;
const B: usize = 1;

/// A script whose decrypts carry the keys' source and the evictions.
fn conv(name: &str) -> Conv {
    let mut c = Conv::new(&format!("{LABEL} {name}"));
    c.r.traced = true;
    c.r.trace_fields = Some(&["key_source", "evicted"]);
    c
}

fn vector(name: &str, description: &str, c: Conv) -> Value {
    json!({ "name": name, "description": description, "steps": c.r.into_steps() })
}

fn receiving_chain_eviction() -> Value {
    let mut c = conv("receiving_chain_eviction");
    c.send(A, "a0");
    c.receive(B, "a0").unwrap();
    for t in 1..=7 {
        c.send(B, &format!("b{t}"));
        c.receive(A, &format!("b{t}")).unwrap();
        c.send(A, &format!("x{t}"));
        c.send(A, &format!("y{t}"));
        c.receive(B, &format!("y{t}")).unwrap();
    }
    // Bob has no sending chain: a forgotten ratchet key is divergence.
    c.receive(B, "x2").unwrap_err();
    c.send(B, "b8");
    // With a sending chain, the trial root step fails the tag.
    c.receive(B, "x1").unwrap_err();
    c.receive(B, "x3").unwrap();
    c.receive(B, "x7").unwrap();
    vector(
        "receiving_chain_eviction",
        "Seven ratchet turns, each leaving Alice's first message of the turn (x1..x7) undelivered: Bob keeps MAX_RECEIVING_CHAINS = 5 chains, so x2 and x1 (their chains forgotten) are SessionDiverged, without and with a sending chain at Bob; x3 and x7 decrypt from skipped keys.",
        c,
    )
}

fn skipped_key_eviction() -> Value {
    let mut c = conv("skipped_key_eviction");
    c.send(A, "a0");
    c.receive(B, "a0").unwrap();
    c.send(A, "a1");
    c.advance(A, 99);
    for id in ["a101", "a102", "a103"] {
        c.send(A, id);
    }
    c.advance(A, 897);
    c.send(A, "a1001");
    c.receive(B, "a1001").unwrap();
    c.advance(A, 100);
    c.send(A, "a1102");
    c.receive(B, "a1102").unwrap();
    c.receive(B, "a1").unwrap_err();
    c.receive(B, "a101").unwrap();
    c.send(B, "b0");
    c.receive(A, "b0").unwrap();
    // A new chain whose first 999 messages are lost.
    c.send(A, "c0");
    c.advance(A, 999);
    c.send(A, "c1000");
    c.receive(B, "c1000").unwrap();
    c.send(B, "b1");
    c.receive(A, "b1").unwrap();
    c.send(A, "d0");
    c.advance(A, 1);
    c.send(A, "d2");
    c.receive(B, "d2").unwrap();
    c.receive(B, "a102").unwrap_err();
    c.receive(B, "a103").unwrap();
    vector(
        "skipped_key_eviction",
        "Gaps of MAX_SKIP keys: one chain past MAX_SKIPPED_KEYS_PER_CHAIN = 1000 (its lowest 100 keys go: a1 is DuplicateMessage, a101 decrypts), then the session past MAX_SKIPPED_KEYS = 2000 (the lowest key of the oldest chain goes: a102 is DuplicateMessage, a103 decrypts). The evictions are in the decrypt traces.",
        c,
    )
}

fn accept_too_far_ahead() -> Value {
    let mut c = Conv::new(&format!("{LABEL} accept_too_far_ahead"));
    // Alice's first chain: the ratchet key is drawn at her first encrypt,
    // which is lost; 1001 more steps, then the message at N = 1002.
    c.send(A, "p0");
    c.advance(A, 1000);
    c.send(A, "p1001");
    c.receive(B, "p1001").unwrap_err();
    c.send(A, "p1002");
    c.receive(B, "p1002").unwrap_err();
    // N = 1000 on the first message: accepted, 1000 skipped keys.
    let mut d = Conv::new(&format!("{LABEL} accept_at_max_skip"));
    d.send(A, "q0");
    d.advance(A, 999);
    d.send(A, "q1000");
    d.receive(B, "q1000").unwrap();
    let mut steps = c.r.into_steps().as_array().unwrap().clone();
    steps.extend(
        d.r.into_steps()
            .as_array()
            .unwrap()
            .iter()
            .map(|s| rename(s, "2")),
    );
    json!({
        "name": "accept_too_far_ahead",
        "description": "§7.3 step 8: a first prekey message at N = 1001 is TooFarAhead {skipped: 1001} (so is N = 1002); a second script (states suffixed _2) accepts N = 1000 with 1000 skipped keys.",
        "steps": steps,
    })
}

/// A step with every state name suffixed, so that two scripts share one
/// world.
fn rename(step: &Value, suffix: &str) -> Value {
    let mut s = step.clone();
    for key in ["device", "session", "name"] {
        if let Some(n) = s.get(key).and_then(Value::as_str) {
            s[key] = format!("{n}_{suffix}").into();
        }
    }
    if let Some(r) = s.get_mut("recipe")
        && let Some(n) = r.get("from").and_then(Value::as_str)
    {
        r["from"] = format!("{n}_{suffix}").into();
    }
    if let Some(states) = s.get("states").and_then(Value::as_object) {
        s["states"] = states
            .iter()
            .map(|(k, v)| (format!("{k}_{suffix}"), v.clone()))
            .collect::<serde_json::Map<_, _>>()
            .into();
    }
    s
}

fn chain_exhausted() -> Value {
    let mut c = Conv::new(&format!("{LABEL} chain_exhausted"));
    c.send(A, "a0");
    c.receive(B, "a0").unwrap();
    // Ns = 2^32 - 2 (a recipe edit): the last message number there is.
    c.r.ok(json!({
        "op": "load", "name": SESSIONS[A],
        "recipe": { "kind": "session_edit", "from": SESSIONS[A], "ns": u32::MAX - 1 },
    }));
    c.send(A, "last");
    c.receive(B, "last").unwrap_err();
    c.r.fails(
        json!({ "op": "encrypt", "session": SESSIONS[A], "plaintext": hex(b"one too many") }),
        &crate::rec::e("ChainExhausted"),
    );
    vector(
        "chain_exhausted",
        "Alice's sending chain set to Ns = 2^32 - 2 (session_edit recipe, chain key unchanged): she sends her last message there (Bob refuses it as TooFarAhead {skipped: 4294967293}); at Ns = 2^32 - 1 encrypt is ChainExhausted and draws nothing.",
        c,
    )
}

pub(crate) fn generate() -> Value {
    file(
        "bounds",
        "Session bounds at their real values (SPEC.md §7.3, §8.6, §8.7): receiving chain and skipped key eviction, TooFarAhead and ChainExhausted at their edges, with the late messages after each.",
        LABEL,
        vec![
            receiving_chain_eviction(),
            skipped_key_eviction(),
            too_far_ahead_current(),
            accept_too_far_ahead(),
            chain_exhausted(),
        ],
    )
}

fn too_far_ahead_current() -> Value {
    let mut c = Conv::new(&format!("{LABEL} too_far_ahead"));
    c.send(A, "a0");
    c.receive(B, "a0").unwrap();
    c.advance(A, 1000);
    c.send(A, "a1001");
    c.advance(A, 0);
    c.receive(B, "a1001").unwrap();
    c.send(A, "a1002");
    c.advance(A, 1000);
    c.send(A, "a2003");
    c.receive(B, "a2003").unwrap_err();
    c.send(B, "b0");
    c.receive(A, "b0").unwrap();
    // Alice's new chain at N = 1000 closes a1002..a2003 of the old one.
    c.send(A, "n0");
    c.advance(A, 999);
    c.send(A, "n1000");
    c.receive(B, "n1000").unwrap_err();
    vector(
        "too_far_ahead",
        "On the current chain, a1001 needs exactly MAX_SKIP = 1000 skipped keys and decrypts; a2003 needs 1001 (TooFarAhead {skipped: 1001}). After a turn, Alice's new chain at N = 1000 would also close 1002 keys of the old chain: TooFarAhead {skipped: 2002}, checked before any key is derived.",
        c,
    )
}
