//! group_store.json: the per-group store (SPEC.md §15.9) with every
//! outcome (Added, Advanced, Upgraded, Unchanged) and every refusal
//! (GroupMismatch, GroupChainConflict for two owners and for two
//! authenticated ratchets that disagree, GroupStoreFull), the upgrade's
//! ratchet and cache rules, `remove_owner`, and the caps at their real
//! values: MAX_CHAINS_PER_SENDER, MAX_UNAUTHENTICATED_CHAINS_PER_OWNER,
//! MAX_UNAUTHENTICATED_GROUP_CHAINS and MAX_GROUP_RECEIVERS (full stores
//! are `store_fill` recipes).

use serde_json::{Value, json};
use testkit::hex::hex;
use testkit::layout;
use testkit::model::Dev;
use testkit::model::group::message::{owner_proof, owner_signature};
use testkit::model::group::{Dist, Sender, read_distribution};

use crate::common::{device, distribution, pair, send};
use crate::group::GROUP;
use crate::rec::{Rec, file, out};

const LABEL: &str = "sotto v2 vectors group store";
const OTHER_GROUP: [u8; 32] = [0x68; 32];

fn start(name: &str, devices: &[&str]) -> Rec {
    let mut r = Rec::new(&format!("{LABEL} {name}"));
    for d in devices {
        device(&mut r, d);
    }
    r
}

fn new_sender(r: &mut Rec) {
    r.ok(json!({ "op": "group_sender_new", "sender": "sender", "group_id": hex(&GROUP), "device": "alice" }));
}

fn store(r: &mut Rec) {
    r.ok(json!({ "op": "store_new", "store": "store", "group_id": hex(&GROUP) }));
}

fn import(r: &mut Rec, d: &[u8]) {
    let _ = r.step(json!({ "op": "store_import", "store": "store", "distribution": hex(d) }));
}

/// Alice's distribution `d` over her session with Bob, installed by the
/// one-call form.
fn install(r: &mut Rec, d: &[u8]) {
    let m = send(r, "alice_bob", d);
    let _ = r.step(json!({ "op": "store_receive_distribution", "store": "store", "session": "bob_alice", "message": hex(&m) }));
}

fn gsend(r: &mut Rec, pt: &str) -> Vec<u8> {
    out(
        &r.ok(
            json!({ "op": "group_encrypt", "sender": "sender", "plaintext": hex(pt.as_bytes()) }),
        ),
        "message",
    )
}

fn dec(r: &mut Rec, m: &[u8]) {
    let _ = r.step(json!({ "op": "store_decrypt", "store": "store", "message": hex(m) }));
}

fn explain(r: &mut Rec) {
    r.ok(json!({ "op": "explain", "state": "store" }));
}

fn vector(name: &str, description: &str, r: Rec) -> Value {
    json!({ "name": name, "description": description, "steps": r.into_steps() })
}

/// A distribution with one bit of R_7 changed (the signatures do not
/// cover the ratchet values).
fn altered(d: &[u8]) -> Vec<u8> {
    let l = layout::distribution(d);
    testkit::model::with(d, |x| l.flip(x, "levels", 7 * 32, 1))
}

fn outcomes() -> Value {
    let mut r = start("outcomes", &["alice", "bob", "mallory"]);
    r.traced = true;
    r.trace_fields = Some(&["key_source", "next_before", "next_after"]);
    pair(&mut r, "alice", "bob");
    new_sender(&mut r);
    store(&mut r);
    let d0 = distribution(&mut r, "sender");
    import(&mut r, &d0); // Added (unauthenticated).
    import(&mut r, &d0); // Unchanged: rule 2.3.
    let mut m = Vec::new();
    for i in 0..3 {
        m.push(gsend(&mut r, &format!("m{i}")));
    }
    let d3 = distribution(&mut r, "sender");
    import(&mut r, &d3); // Unchanged: the first import stays.
    for i in 3..10 {
        m.push(gsend(&mut r, &format!("m{i}")));
    }
    dec(&mut r, &m[5]); // read = 6, next = 6, keys 0..=4 cached.
    explain(&mut r);
    install(&mut r, &d3); // Upgraded: p = max(3, 6) = 6.
    explain(&mut r);
    install(&mut r, &d3); // Unchanged: rule 2.4, not ahead.
    let d10 = distribution(&mut r, "sender");
    install(&mut r, &d10); // Advanced: keeps its cache and read.
    import(&mut r, &d10); // Unchanged: rule 2.2.
    explain(&mut r);
    dec(&mut r, &m[1]);
    dec(&mut r, &m[4]);
    dec(&mut r, &m[6]); // Passed by the advance: DuplicateMessage.
    // Alice's own copy with other ratchet values: rule 2.4.
    install(&mut r, &altered(&d10)); // GroupChainConflict.
    // The chain in another group (signed again for it): GroupMismatch.
    let s = Sender::decode(&r.state("sender")).unwrap();
    let alice = Dev::decode(&r.state("alice")).unwrap();
    let mallory = Dev::decode(&r.state("mallory")).unwrap();
    let (mut other, _) = read_distribution(&d10).unwrap();
    other.group = OTHER_GROUP;
    other.proof = owner_proof(&s.seed, &OTHER_GROUP, &other.chain, &other.owner);
    other.signature = owner_signature(&alice.seed, &OTHER_GROUP, &other.chain);
    import(&mut r, &other.encoded());
    // The same chain claiming Mallory, with an owner proof by the chain's
    // seed and Mallory's owner signature (creator and Mallory colluding):
    // rule 2.1.
    let claimed = Dist {
        owner: mallory.ik,
        proof: owner_proof(&s.seed, &GROUP, &other.chain, &mallory.ik),
        signature: owner_signature(&mallory.seed, &GROUP, &other.chain),
        group: GROUP,
        ..other
    };
    import(&mut r, &claimed.encoded()); // GroupChainConflict.
    // Decrypts of a chain not held, and of another group.
    let unknown = Sender::new(
        &mut testkit::model::rand::Stream::new([9; 32]),
        GROUP,
        &mallory.seed,
    );
    let (foreign, _) = unknown.clone().encrypt_with(&[0; 16], b"unknown chain");
    dec(&mut r, &foreign);
    let mut elsewhere = s.clone();
    elsewhere.group = OTHER_GROUP;
    let (elsewhere_msg, _) = elsewhere.encrypt_with(&[0; 16], b"other group");
    dec(&mut r, &elsewhere_msg);
    r.ok(json!({ "op": "store_remove_owner", "store": "store", "owner": hex(&testkit::model::keys::identity_key_bytes(&mallory.ik)) }));
    r.ok(json!({ "op": "store_remove_owner", "store": "store", "owner": hex(&testkit::model::keys::identity_key_bytes(&alice.ik)) }));
    dec(&mut r, &m[9]);
    explain(&mut r);
    vector(
        "outcomes",
        "One chain of Alice's in Bob's store. Imports: Added, then Unchanged twice (rule 2.3: the first import stays, whatever its index). Bob reads index 5 (read = 6). Alice's own distribution at index 3: Upgraded with p = max(3, 6) = 6 (keys 0..=2 kept, 3 and 4 recomputed); again: Unchanged (2.4, not ahead); at index 10: Advanced, keeping cache and read; an import then: Unchanged (2.2). Cached keys 1 and 4 decrypt; index 6 was passed (DuplicateMessage). Alice's copy with other ratchet values: GroupChainConflict (2.4). The chain signed for another group: GroupMismatch. The chain claiming Mallory (proof and signature made for her): GroupChainConflict (2.1). Messages of a chain not held and of another group: UnknownGroupChain. remove_owner: Mallory 0 (the generation does not move), Alice 1; her message is then UnknownGroupChain.",
        r,
    )
}

/// Alice's chain and Bob's empty store; her distribution at index 0 and
/// her messages 0..=5.
fn six_messages(name: &str) -> (Rec, Vec<u8>, Vec<Vec<u8>>) {
    let mut r = start(name, &["alice", "bob"]);
    pair(&mut r, "alice", "bob");
    new_sender(&mut r);
    store(&mut r);
    let d0 = distribution(&mut r, "sender");
    let m = (0..6).map(|i| gsend(&mut r, &format!("m{i}"))).collect();
    (r, d0, m)
}

fn upgrade_replaces_altered_ratchet() -> Value {
    let (mut r, d0, m) = six_messages("upgrade_replaces_altered_ratchet");
    import(&mut r, &altered(&d0)); // Added: the signatures hold.
    dec(&mut r, &m[5]); // AuthenticationFailed: not the chain's ratchet.
    install(&mut r, &d0); // Upgraded: p = max(0, 0) = 0.
    dec(&mut r, &m[5]);
    dec(&mut r, &m[0]);
    explain(&mut r);
    vector(
        "upgrade_replaces_altered_ratchet",
        "An import with altered ratchet values is Added (the owner proof and signature do not cover them); Alice's message does not decrypt (AuthenticationFailed). Alice's own distribution at index 0 upgrades the entry: its ratchet is hers, jumped to max(R.next, read) = 0, and the messages decrypt.",
        r,
    )
}

fn upgrade_recomputes_cached_keys() -> Value {
    let (mut r, d0, m) = six_messages("upgrade_recomputes_cached_keys");
    import(&mut r, &d0);
    dec(&mut r, &m[5]);
    // The saved store with cached keys 1 and 4 replaced (a tampered
    // backup: stored keys are not validated).
    let st = r.state("store");
    let l = layout::store_state(&st);
    let tampered = testkit::model::with(&st, |x| {
        l.put(x, "entries[0].cache[1].key", &[0x11; 32]);
        l.put(x, "entries[0].cache[4].key", &[0x44; 32]);
    });
    r.ok(json!({ "op": "load", "name": "store", "state": hex(&tampered) }));
    let d3 = {
        let mut s = Sender::decode(&r.state("sender")).unwrap();
        s.index = 3;
        s.levels = testkit::model::group::closed_form(&read_distribution(&d0).unwrap().0.levels, 3);
        s.distribution().encoded()
    };
    install(&mut r, &d3); // Upgraded: key 4 recomputed, key 1 kept.
    explain(&mut r);
    dec(&mut r, &m[1]);
    dec(&mut r, &m[4]);
    vector(
        "upgrade_recomputes_cached_keys",
        "An imported entry at read = next = 6 with cached keys 0..=4, two of them (1 and 4) replaced in the saved store. Alice's own distribution at index 3 (taken from her state as it was then) upgrades it: the key of index 4 (>= R.next) is recomputed from her ratchet and decrypts; the key of index 1 (< R.next) is kept as it was and fails (AuthenticationFailed).",
        r,
    )
}

fn chains_per_owner() -> Value {
    let mut r = start("chains_per_owner", &["alice", "bob"]);
    pair(&mut r, "alice", "bob");
    new_sender(&mut r);
    store(&mut r);
    let mut first = Vec::new();
    for k in 0..5 {
        if k > 0 {
            r.ok(json!({ "op": "group_sender_rotate", "sender": "sender", "device": "alice" }));
        }
        let d = distribution(&mut r, "sender");
        install(&mut r, &d);
        first.push(gsend(&mut r, &format!("chain {k}")));
    }
    explain(&mut r);
    dec(&mut r, &first[0]);
    dec(&mut r, &first[1]);
    dec(&mut r, &first[4]);
    // Imports of Alice's chains do not count against her authenticated ones.
    vector(
        "chains_per_owner",
        "Alice installs five chains over her session: the fifth deletes her oldest (MAX_CHAINS_PER_SENDER = 4), whose message is then UnknownGroupChain; the others decrypt.",
        r,
    )
}

fn unauthenticated_per_owner() -> Value {
    let mut r = start("unauthenticated_per_owner", &["alice", "bob"]);
    pair(&mut r, "alice", "bob");
    new_sender(&mut r);
    store(&mut r);
    let d = distribution(&mut r, "sender");
    install(&mut r, &d);
    let mut first = Vec::new();
    for k in 0..5 {
        r.ok(json!({ "op": "group_sender_rotate", "sender": "sender", "device": "alice" }));
        let d = distribution(&mut r, "sender");
        import(&mut r, &d);
        first.push(gsend(&mut r, &format!("import {k}")));
    }
    explain(&mut r);
    dec(&mut r, &first[0]);
    dec(&mut r, &first[1]);
    vector(
        "unauthenticated_per_owner",
        "One authenticated chain of Alice's, then five imports claiming her: the fifth deletes the oldest import (MAX_UNAUTHENTICATED_CHAINS_PER_OWNER = 4), never the authenticated chain.",
        r,
    )
}

fn fill(r: &mut Rec, unauthenticated: u32, authenticated: u32) {
    r.ok(json!({
        "op": "load", "name": "store",
        "recipe": { "kind": "store_fill", "group_id": hex(&GROUP), "unauthenticated": unauthenticated, "authenticated": authenticated },
    }));
}

fn caps() -> Vec<Value> {
    let mut out_vectors = Vec::new();

    let mut r = start("unauthenticated_total", &["alice", "bob"]);
    new_sender(&mut r);
    fill(&mut r, 256, 0);
    let d = distribution(&mut r, "sender");
    import(&mut r, &d);
    let m = gsend(&mut r, "m");
    dec(&mut r, &m);
    out_vectors.push(vector(
        "unauthenticated_total",
        "A store of 256 unauthenticated chains (store_fill: 64 claimed owners with 4 each): an import of Alice's chain deletes the oldest unauthenticated chain (MAX_UNAUTHENTICATED_GROUP_CHAINS = 256) and decrypts.",
        r,
    ));

    let mut r = start("receivers_full_with_unauthenticated", &["alice", "bob"]);
    pair(&mut r, "alice", "bob");
    new_sender(&mut r);
    fill(&mut r, 24, 1000);
    let d = distribution(&mut r, "sender");
    import(&mut r, &d);
    r.ok(json!({ "op": "group_sender_rotate", "sender": "sender", "device": "alice" }));
    let d = distribution(&mut r, "sender");
    install(&mut r, &d);
    out_vectors.push(vector(
        "receivers_full_with_unauthenticated",
        "A full store (MAX_GROUP_RECEIVERS = 1024: 24 unauthenticated chains, then 1000 authenticated ones of 250 owners): an import deletes the oldest unauthenticated chain; an authenticated install of another chain does too.",
        r,
    ));

    let mut r = start("receivers_full_authenticated", &["alice", "bob"]);
    pair(&mut r, "alice", "bob");
    new_sender(&mut r);
    fill(&mut r, 0, 1024);
    let d = distribution(&mut r, "sender");
    import(&mut r, &d); // GroupStoreFull.
    install(&mut r, &d); // Added: the oldest chain goes.
    import(&mut r, &d); // Unchanged.
    let m = gsend(&mut r, "m");
    dec(&mut r, &m);
    out_vectors.push(vector(
        "receivers_full_authenticated",
        "A store of 1024 authenticated chains: an import is GroupStoreFull and changes nothing (an unauthenticated chain never evicts an authenticated one); Alice's own install deletes the oldest chain and is Added; her import after it is Unchanged.",
        r,
    ));
    out_vectors.push(caps_in_order());
    out_vectors
}

/// A device whose identity seed is `seed` (its other draws from the
/// stream).
fn device_with_seed(r: &mut Rec, name: &str, seed: [u8; 32]) {
    let mut bytes = seed.to_vec();
    bytes.extend(r.rng.draw::<96>());
    r.rng.take();
    r.step_chosen(
        json!({ "op": "device_new", "device": name, "now": crate::agreement::NOW }),
        bytes,
    )
    .unwrap();
}

/// Rule 3's deletions, in order, in a full store whose fill owners 0 and
/// 64 are real devices here (their identity seeds are the recipe's).
fn caps_in_order() -> Value {
    use testkit::model::primitives::ed25519_public;
    use testkit::vectors::recipes::{TAG_CHAIN, TAG_OWNER, fill as fill_value};
    let mut r = Rec::new(&format!("{LABEL} caps_in_order"));
    device_with_seed(&mut r, "alice", fill_value(TAG_OWNER, 64));
    device_with_seed(&mut r, "carol", fill_value(TAG_OWNER, 0));
    device(&mut r, "bob");
    device(&mut r, "dave");
    pair(&mut r, "alice", "bob");
    fill(&mut r, 256, 768);
    // Which fill receivers the store still holds, and how many in all.
    let holds = |r: &Rec, i: u32| {
        let chain = ed25519_public(&fill_value(TAG_CHAIN, i));
        let st = testkit::model::group::Store::decode(&r.state("store")).unwrap();
        assert_eq!(st.entries.len(), 1024);
        st.get(&chain).is_some()
    };
    new_sender(&mut r);
    let d = distribution(&mut r, "sender");
    install(&mut r, &d);
    assert!(!holds(&r, 256) && holds(&r, 0) && holds(&r, 257));
    for (owner, name, gone) in [("carol", "carol_sender", 0), ("dave", "dave_sender", 1)] {
        r.ok(json!({ "op": "group_sender_new", "sender": name, "group_id": hex(&GROUP), "device": owner }));
        let d = distribution(&mut r, name);
        import(&mut r, &d);
        assert!(!holds(&r, gone) && holds(&r, gone + 1));
    }
    vector(
        "caps_in_order",
        "A full store (store_fill: 256 unauthenticated chains of claimed owners 0..=63, then 768 authenticated chains of owners 64..=255), where Alice is fill owner 64 and Carol fill owner 0 (their identity seeds are fill(5, 64) and fill(5, 0): the first 32 bytes of their device_new draws). Alice installs a fifth chain: only her oldest authenticated chain (receiver 256) goes, which leaves room. Carol's chain imported: only her oldest claimed chain (receiver 0) goes. Dave's chain imported: the store holds 256 unauthenticated chains, so the oldest of those (receiver 1) goes. Each is Added; the store stays at 1024.",
        r,
    )
}

pub(crate) fn generate() -> Value {
    let mut vectors = vec![
        outcomes(),
        upgrade_replaces_altered_ratchet(),
        upgrade_recomputes_cached_keys(),
        chains_per_owner(),
        unauthenticated_per_owner(),
    ];
    vectors.extend(caps());
    file(
        "group_store",
        "The per-group store (SPEC.md §15.9): every outcome and refusal, the upgrade's ratchet and cache rules, remove_owner, and the caps at their real values (full stores built by store_fill recipes).",
        LABEL,
        vectors,
    )
}
