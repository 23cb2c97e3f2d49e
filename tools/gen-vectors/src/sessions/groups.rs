//! §16.8 groups through the layer: fan-out of distributions to every
//! device of every member (the own devices included), installs with their
//! checks, group messages before their distribution, requests for a
//! distribution, removal in one call, rotation and restores.

use serde_json::{Value, json};
use testkit::hex::hex;
use testkit::model::sessions::{Dropped, Group, MAX_DROPPED_CHAINS};

use super::{GROUP, MONTH, Net, stranger};
use crate::agreement::NOW;
use crate::rec::out;

fn user(name: &str) -> String {
    hex(name.as_bytes())
}

/// The message a fan-out sent to a device of a record's user.
fn fanned(o: &testkit::vectors::script::Output, user_name: &str, device: u32) -> Vec<u8> {
    let u = user(user_name);
    o.out["fanout"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["user"] == u.as_str())
        .unwrap()["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["device_id"] == device)
        .map(|m| testkit::hex::unhex(m["message"].as_str().unwrap()).unwrap())
        .unwrap()
}

fn install(n: &mut Net, group: &str, record: &str, device: &str, from: u32, m: &[u8], now: u64) {
    n.ok(json!({
        "op": "group_install", "group": group, "record": record, "device": device, "from": from,
        "message": hex(m), "now": now,
    }));
}

fn gsend(n: &mut Net, group: &str, payload: &str) -> Vec<u8> {
    out(
        &n.ok(json!({ "op": "group_session_encrypt", "group": group, "payload": hex(payload.as_bytes()) })),
        "message",
    )
}

/// `group_session_decrypt` with `record`, the sender user's record at the
/// receiver.
fn gdecrypt(n: &mut Net, group: &str, record: &str, m: &[u8]) -> Result<(), Value> {
    n.r.step(json!({ "op": "group_session_decrypt", "group": group, "record": record, "message": hex(m) }))
        .map(drop)
}

fn setup(n: &mut Net) {
    n.devices(&["a1", "a2", "b1", "c1"]);
    n.record("a1_own", "alice", "a1", Some(1));
    n.list("a1_own", &[(1, "a1"), (2, "a2")], NOW).unwrap();
    n.record("a2_own", "alice", "a2", Some(2));
    n.list("a2_own", &[(1, "a1"), (2, "a2")], NOW).unwrap();
    for (rec, user_name, dev, peer) in [
        ("a1_bob", "bob", "a1", "b1"),
        ("a1_carol", "carol", "a1", "c1"),
        ("b1_alice", "alice", "b1", "a1"),
        ("c1_alice", "alice", "c1", "a1"),
    ] {
        n.record(rec, user_name, dev, None);
        n.list(rec, &[(1, peer)], NOW).unwrap();
    }
    // Alice's device 1 has sessions with every other device.
    n.connect("a1_own", "a1", 2, "a2", NOW);
    n.connect("a1_bob", "a1", 1, "b1", NOW);
    n.connect("a1_carol", "a1", 1, "c1", NOW);
    n.connect("c1_alice", "c1", 1, "a1", NOW);
    for (g, u, d) in [
        ("g_a1", "alice", "a1"),
        ("g_a2", "alice", "a2"),
        ("g_b1", "bob", "b1"),
        ("g_c1", "carol", "c1"),
    ] {
        n.ok(json!({ "op": "group_new", "group": g, "group_id": hex(&GROUP), "user": user(u), "device": d }));
    }
    let add = |n: &mut Net, g: &str, u: &str| {
        n.ok(json!({ "op": "group_add_member", "group": g, "user": user(u) }));
    };
    for u in ["bob", "carol", "alice"] {
        add(n, "g_a1", u);
        add(n, "g_a2", u);
    }
    add(n, "g_b1", "alice");
    add(n, "g_b1", "carol");
    add(n, "g_c1", "alice");
    add(n, "g_c1", "bob");
}

fn fan_out() -> Value {
    let mut n = Net::new("groups");
    setup(&mut n);
    // distribute's checks, then the fan-out to every device of every member.
    let dist =
        |records: &[&str]| json!({ "op": "group_distribute", "group": "g_a1", "records": records });
    n.fails(dist(&["a1_bob", "a1_bob"]), "NotGroupMember");
    n.fails(dist(&["a1_bob", "b1_alice"]), "IdentityMismatch");
    let f = n.ok(dist(&["a1_own", "a1_bob", "a1_carol"]));
    // A group message that arrives before its distribution: keep it.
    let hello = gsend(&mut n, "g_a1", "hello group");
    let early = gdecrypt(&mut n, "g_b1", "b1_alice", &hello);
    assert!(early.is_err());
    install(
        &mut n,
        "g_b1",
        "b1_alice",
        "b1",
        1,
        &fanned(&f, "bob", 1),
        NOW + 1,
    );
    install(
        &mut n,
        "g_a2",
        "a2_own",
        "a2",
        1,
        &fanned(&f, "alice", 2),
        NOW + 1,
    );
    install(
        &mut n,
        "g_c1",
        "c1_alice",
        "c1",
        1,
        &fanned(&f, "carol", 1),
        NOW + 1,
    );
    gdecrypt(&mut n, "g_b1", "b1_alice", &hello).unwrap();
    gdecrypt(&mut n, "g_a2", "a2_own", &hello).unwrap();
    gdecrypt(&mut n, "g_b1", "b1_alice", &hello).unwrap_err();
    let mut damaged = hello.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    gdecrypt(&mut n, "g_c1", "c1_alice", &damaged).unwrap_err();
    gdecrypt(&mut n, "g_c1", "c1_alice", &hello).unwrap();
    // Bob asks again for the distribution; Alice's record reads the request
    // and answers with distribute_to; the chain is held at that index:
    // Unchanged (the group's generation stays).
    let req = out(
        &n.ok(json!({ "op": "request_distribution", "record": "b1_alice", "device_id": 1, "group_id": hex(&GROUP) })),
        "message",
    );
    n.recv_ok("a1_bob", "a1", 1, &req, NOW + 2);
    let again = out(
        &n.ok(json!({ "op": "group_distribute_to", "group": "g_a1", "record": "a1_bob", "device_id": 1 })),
        "message",
    );
    install(&mut n, "g_b1", "b1_alice", "b1", 1, &again, NOW + 3);
    // Install's checks: not a distribution; a record of another local
    // device; a record whose device has a pending identity.
    let payload = n.send_to("a1_bob", 1, "not a distribution");
    install(&mut n, "g_b1", "b1_alice", "b1", 1, &payload, NOW + 4);
    let m = out(
        &n.ok(json!({ "op": "group_distribute_to", "group": "g_a1", "record": "a1_bob", "device_id": 1 })),
        "message",
    );
    n.ok(json!({
        "op": "group_install", "group": "g_b1", "record": "b1_alice", "device": "b1", "from": 1,
        "message": hex(&m), "now": NOW + 5, "install_record": "c1_alice",
    }));
    n.load("b1_alice_pending", &n.save("b1_alice"));
    n.list_keys(
        "b1_alice_pending",
        &[(1, stranger("groups pending"))],
        NOW + 5,
    )
    .unwrap();
    let m = out(
        &n.ok(json!({ "op": "group_distribute_to", "group": "g_a1", "record": "a1_bob", "device_id": 1 })),
        "message",
    );
    n.ok(json!({
        "op": "group_install", "group": "g_b1", "record": "b1_alice", "device": "b1", "from": 1,
        "message": hex(&m), "now": NOW + 6, "install_record": "b1_alice_pending",
    }));
    n.ok(json!({ "op": "explain", "state": "g_b1" }));
    n.vector(
        "group_fan_out",
        "§16.8: distribute's checks (a user twice, a record of another local device); the fan-out of the sender's distribution (frame 0x02) to every listed device of every member, the local user's other device through the own record; a group message decrypted before its distribution is RetryLater(MissingDistribution) (UnknownGroupChain), then installs (Added) and decrypts; again: Ignore(Duplicate); damaged: Ignore(Malformed); a distribution request (frame 0x04) answered with distribute_to (Unchanged: the generation stays); install's checks (not a distribution: InvalidEncoding; a record of another local device: IdentityMismatch; a device with a pending identity: IdentityChangePending), each after the decrypt that delivered it.",
    )
}

fn removal() -> Value {
    let mut n = Net::new("group removal");
    setup(&mut n);
    let f = n.ok(json!({ "op": "group_distribute", "group": "g_a1", "records": ["a1_own", "a1_bob", "a1_carol"] }));
    install(
        &mut n,
        "g_b1",
        "b1_alice",
        "b1",
        1,
        &fanned(&f, "bob", 1),
        NOW + 1,
    );
    // Bob's and Carol's chains reach Alice's device 1 over their sessions.
    let fb = n.ok(json!({ "op": "group_distribute", "group": "g_b1", "records": ["b1_alice"] }));
    install(
        &mut n,
        "g_a1",
        "a1_bob",
        "a1",
        1,
        &fanned(&fb, "alice", 1),
        NOW + 1,
    );
    let fc = n.ok(json!({ "op": "group_distribute", "group": "g_c1", "records": ["c1_alice"] }));
    install(
        &mut n,
        "g_a1",
        "a1_carol",
        "a1",
        1,
        &fanned(&fc, "alice", 1),
        NOW + 1,
    );
    let from_carol = gsend(&mut n, "g_c1", "carol speaks");
    gdecrypt(&mut n, "g_a1", "a1_carol", &from_carol).unwrap();
    n.ok(json!({ "op": "explain", "state": "g_a1" }));
    // remove_member's checks.
    let remove = |u: &str, records: &[&str]| json!({ "op": "group_remove_member", "group": "g_a1", "device": "a1", "user": user(u), "records": records });
    n.fails(
        json!({ "op": "group_remove_member", "group": "g_a1", "device": "a2", "user": user("alice"), "records": ["a1_own", "a1_bob", "a1_carol"] }),
        "IdentityMismatch",
    );
    n.fails(
        remove("alice", &["a1_own", "a1_bob", "a1_carol"]),
        "NotGroupMember",
    );
    n.fails(
        remove("dave", &["a1_own", "a1_bob", "a1_carol"]),
        "NotGroupMember",
    );
    n.fails(remove("carol", &["a1_bob"]), "NotGroupMember");
    n.fails(
        remove("carol", &["a1_own", "a1_bob", "a1_carol"]),
        "NotGroupMember",
    );
    n.fails(remove("carol", &["a1_own", "b1_alice"]), "NotGroupMember");
    n.record("c1_bob", "bob", "c1", None);
    n.fails(remove("carol", &["a1_own", "c1_bob"]), "IdentityMismatch");
    // Carol goes: her chains, a new sender, its distribution to the rest.
    let f2 = n.ok(remove("carol", &["a1_own", "a1_bob"]));
    n.ok(json!({ "op": "explain", "state": "g_a1" }));
    let later = gsend(&mut n, "g_c1", "carol again");
    gdecrypt(&mut n, "g_a1", "a1_carol", &later).unwrap_err();
    install(
        &mut n,
        "g_b1",
        "b1_alice",
        "b1",
        1,
        &fanned(&f2, "bob", 1),
        NOW + 2,
    );
    let after = gsend(&mut n, "g_a1", "without carol");
    gdecrypt(&mut n, "g_b1", "b1_alice", &after).unwrap();
    // rotate: the same without removing anyone.
    n.ok(json!({ "op": "group_rotate", "group": "g_a1", "device": "a1", "records": ["a1_bob", "a1_own"] }));
    // A restore: the group comes back from an older copy; after_restore
    // replaces the sender and deletes every receiver. At or above the
    // recorded generation nothing but the generation changes.
    let g = Group::decode(&n.save("g_a1")).unwrap().generation;
    n.ok(json!({ "op": "group_after_restore", "group": "g_a1", "device": "a1", "last_generation": g }));
    n.ok(json!({ "op": "group_after_restore", "group": "g_a1", "device": "a1", "last_generation": g + 5 }));
    n.ok(json!({ "op": "explain", "state": "g_a1" }));
    n.vector(
        "group_removal",
        "§16.8: remove_member's checks (a device that does not own the local sender first, the local user, a non-member, records that are not exactly the remaining members': one missing, the removed member's included, a user twice; then a record of another local device); the removal in one call (every chain whose owner is neither the local identity nor a trusted identity of a remaining record's device is deleted, the member leaves, a new sender replaces the old one, its distribution goes to every remaining device); the removed member's messages are then Ignore(Malformed) (NotGroupMember: its record is no member's); rotate; after_restore at and below the recorded generation.",
    )
}

/// The removal vector's start: Alice's chain at Bob's device, Bob's and
/// Carol's chains at Alice's device 1.
fn chains(n: &mut Net) {
    setup(n);
    let f = n.ok(json!({ "op": "group_distribute", "group": "g_a1", "records": ["a1_own", "a1_bob", "a1_carol"] }));
    install(
        n,
        "g_b1",
        "b1_alice",
        "b1",
        1,
        &fanned(&f, "bob", 1),
        NOW + 1,
    );
    let fb = n.ok(json!({ "op": "group_distribute", "group": "g_b1", "records": ["b1_alice"] }));
    install(
        n,
        "g_a1",
        "a1_bob",
        "a1",
        1,
        &fanned(&fb, "alice", 1),
        NOW + 1,
    );
    let fc = n.ok(json!({ "op": "group_distribute", "group": "g_c1", "records": ["c1_alice"] }));
    install(
        n,
        "g_a1",
        "a1_carol",
        "a1",
        1,
        &fanned(&fc, "alice", 1),
        NOW + 1,
    );
}

/// A group_session_decrypt that must fail; its failure.
fn gfails(n: &mut Net, group: &str, record: &str, m: &[u8]) -> Value {
    gdecrypt(n, group, record, m).unwrap_err()
}

/// `chains`, and the records Bob's device 1 rotates with.
fn bob_chains(n: &mut Net) {
    chains(n);
    n.record("b1_own", "bob", "b1", Some(1));
    n.record("b1_carol", "carol", "b1", None);
}

/// Bob's current chain's distribution to Alice's device 1.
fn bob_distributes_to_alice(n: &mut Net) -> Vec<u8> {
    out(
        &n.ok(json!({ "op": "group_distribute_to", "group": "g_b1", "record": "b1_alice", "device_id": 1 })),
        "message",
    )
}

/// Bob rotates `times` times; Alice installs each new chain's
/// distribution, the first at `now`, each next a second later.
fn bob_rotates_to_alice(n: &mut Net, times: u64, now: u64) {
    for i in 0..times {
        let f = n.ok(json!({ "op": "group_rotate", "group": "g_b1", "device": "b1", "records": ["b1_own", "b1_alice", "b1_carol"] }));
        install(
            n,
            "g_a1",
            "a1_bob",
            "a1",
            1,
            &fanned(&f, "alice", 1),
            now + i,
        );
    }
}

fn record_checks() -> Value {
    let mut n = Net::new("group record checks");
    chains(&mut n);
    n.record("a1_dave", "dave", "a1", None);
    let c1 = gsend(&mut n, "g_c1", "carol 1");
    // The sender's record: of another local device, of a non-member, of a
    // member none of whose devices owns the chain.
    gfails(&mut n, "g_a1", "b1_alice", &c1);
    gfails(&mut n, "g_a1", "a1_dave", &c1);
    gfails(&mut n, "g_a1", "a1_bob", &c1);
    gdecrypt(&mut n, "g_a1", "a1_carol", &c1).unwrap();
    // A chain the store does not hold: the record's devices are not
    // looked at (RetryLater(MissingDistribution)).
    let unknown = gsend(&mut n, "g_b1", "bob 1");
    gfails(&mut n, "g_c1", "c1_alice", &unknown);
    // Carol's device stale: still hers.
    n.load("a1_carol_stale", &n.save("a1_carol"));
    n.list("a1_carol_stale", &[], NOW + 2).unwrap();
    let c2 = gsend(&mut n, "g_c1", "carol 2");
    gdecrypt(&mut n, "g_a1", "a1_carol_stale", &c2).unwrap();
    // A new identity announced for her device: held back; acknowledged:
    // the old key's chain is refused from that moment.
    let c3 = gsend(&mut n, "g_c1", "carol 3");
    let new_key = stranger("group record checks new key");
    n.list_keys("a1_carol", &[(1, new_key.clone())], NOW + 3)
        .unwrap();
    gfails(&mut n, "g_a1", "a1_carol", &c3);
    n.ok(json!({ "op": "acknowledge_identity", "record": "a1_carol", "device_id": 1, "identity": hex(&new_key) }));
    gfails(&mut n, "g_a1", "a1_carol", &c3);
    // The local device is checked first by rotate, remove_member and
    // after_restore: Alice's other device a2 does not own g_a1's sender.
    n.fails(
        json!({ "op": "group_rotate", "group": "g_a1", "device": "a2", "records": ["a1_bob"] }),
        "IdentityMismatch",
    );
    n.fails(
        json!({ "op": "group_remove_member", "group": "g_a1", "device": "a2", "user": user("alice"), "records": [] }),
        "IdentityMismatch",
    );
    n.fails(
        json!({ "op": "group_after_restore", "group": "g_a1", "device": "b1", "last_generation": 0 }),
        "IdentityMismatch",
    );
    n.vector(
        "group_record_checks",
        "§16.8: decrypt takes the record of the user the message came from: a record of another local device is Ignore(WrongLocalDevice) (IdentityMismatch); of a non-member, Ignore(Malformed) (NotGroupMember); of a member none of whose devices (listed or stale) has the chain's owner as trusted identity, Ignore(Malformed) (IdentityMismatch); a chain the store does not hold is RetryLater(MissingDistribution) whatever the record; a stale device's chain decrypts; with a pending identity RetryLater(IdentityChangePending); once acknowledge_identity replaced the key, the old key's chain is refused. rotate, remove_member and after_restore check the local device first (IdentityMismatch, before every other check).",
    )
}

fn dropped_chains() -> Value {
    let mut n = Net::new("group dropped chains");
    bob_chains(&mut n);
    // A second copy of Bob's first distribution and a message on his first
    // chain, both held back.
    let late = bob_distributes_to_alice(&mut n);
    let old = gsend(&mut n, "g_b1", "on the first chain");
    // Bob rotates four times; Alice installs each new chain. The fifth
    // chain of one sender evicts the oldest (§15.9): a dropped chain.
    bob_rotates_to_alice(&mut n, 4, NOW + 2);
    n.ok(json!({ "op": "explain", "state": "g_a1" }));
    let before_removal = n.save("g_a1");
    // The late copy: Unchanged (a dropped chain is never installed again);
    // the message on it finds no chain.
    install(&mut n, "g_a1", "a1_bob", "a1", 1, &late, NOW + 6);
    gfails(&mut n, "g_a1", "a1_bob", &old);
    // Carol is removed: her chain is dropped too. Added again, a late copy
    // of her old chain's distribution is Unchanged.
    n.ok(json!({ "op": "group_remove_member", "group": "g_a1", "device": "a1", "user": user("carol"), "records": ["a1_own", "a1_bob"] }));
    n.ok(json!({ "op": "group_add_member", "group": "g_a1", "user": user("carol") }));
    let again = out(
        &n.ok(json!({ "op": "group_distribute_to", "group": "g_c1", "record": "c1_alice", "device_id": 1 })),
        "message",
    );
    install(&mut n, "g_a1", "a1_carol", "a1", 1, &again, NOW + 7);
    n.ok(json!({ "op": "explain", "state": "g_a1" }));
    // A restore from the copy before the removal: the store is emptied,
    // the copy's dropped chains stay.
    let g = Group::decode(&n.save("g_a1")).unwrap().generation;
    n.load("g_a1", &before_removal);
    n.ok(json!({ "op": "group_after_restore", "group": "g_a1", "device": "a1", "last_generation": g }));
    n.ok(json!({ "op": "explain", "state": "g_a1" }));
    n.vector(
        "group_dropped_chains",
        "§16.8: a chain evicted from the store (a fifth chain of one sender) or removed with a member becomes a dropped chain; a late copy of a dropped chain's distribution installs as Unchanged (nothing changes: it would start the chain over and decrypt its messages again) and its messages find no chain (RetryLater(MissingDistribution)); a member removed and added again cannot bring an old chain back; after_restore of an older copy empties the store and keeps the copy's dropped chains. The group is explained with its dropped chains.",
    )
}

/// A group whose dropped list is full (edited into a saved state) drops
/// more chains: each time the list forgets, counting each owner's entries
/// before the new one, the oldest entry whose owner has the most; chains
/// dropped in one step are added one at a time; a dropped chain is refused
/// by its id, whatever owner the list gives it (§16.8).
fn dropped_list_full() -> Value {
    let mut n = Net::new("group dropped list full");
    bob_chains(&mut n);
    let bob = Group::decode(&n.save("g_b1")).unwrap().sender.owner;
    // A second copy of Bob's first distribution and a message on his first
    // chain, both held back.
    let late = bob_distributes_to_alice(&mut n);
    let old = gsend(&mut n, "g_b1", "on the first chain");
    // Three new chains of Bob's: Alice holds four of his, the most per sender.
    bob_rotates_to_alice(&mut n, 3, NOW + 2);
    let saved = Group::decode(&n.save("g_a1")).unwrap();
    let entry = |i: usize, owner: [u8; 32]| {
        let mut chain = [0xd0; 32];
        chain[..2].copy_from_slice(&u16::try_from(i).unwrap().to_be_bytes());
        Dropped { chain, owner }
    };
    let full = |first: usize, a: [u8; 32], b: [u8; 32]| -> Vec<Dropped> {
        (0..MAX_DROPPED_CHAINS)
            .map(|i| entry(i, if i < first { a } else { b }))
            .collect()
    };
    // One entry of owner a0.., then 1,023 of 4d..; Bob's next chain evicts
    // his first, which joins the list: 4d's oldest goes, not the oldest.
    let mut g = saved.clone();
    g.dropped = full(1, [0xa0; 32], [0x4d; 32]);
    n.load("g_a1", &g.encode());
    bob_rotates_to_alice(&mut n, 1, NOW + 5);
    n.ok(json!({ "op": "explain", "state": "g_a1" }));
    // The list gives Bob's first chain another owner (4e..): its late copy
    // is still refused, by the chain's id, and its message finds no chain.
    let mut g = Group::decode(&n.save("g_a1")).unwrap();
    let last = g.dropped.len() - 1;
    g.dropped[last].owner = [0x4e; 32];
    n.load("g_a1", &g.encode());
    install(&mut n, "g_a1", "a1_bob", "a1", 1, &late, NOW + 6);
    gfails(&mut n, "g_a1", "a1_bob", &old);
    // 512 entries of f0.., then 512 of Bob's: counted before the new entry
    // (Bob's), the two tie, and the owner of the oldest entry loses one,
    // though its key sorts above Bob's.
    let mut g = saved.clone();
    g.dropped = full(MAX_DROPPED_CHAINS / 2, [0xf0; 32], bob);
    n.load("g_a1", &g.encode());
    bob_rotates_to_alice(&mut n, 1, NOW + 7);
    n.ok(json!({ "op": "explain", "state": "g_a1" }));
    // 512 of 4d.., then 512 of f0..; Bob is removed and his four chains
    // are dropped in one step, one at a time, each counted again: 4d, f0,
    // 4d, f0 lose one each.
    let mut g = saved;
    g.dropped = full(MAX_DROPPED_CHAINS / 2, [0x4d; 32], [0xf0; 32]);
    n.load("g_a1", &g.encode());
    n.ok(json!({ "op": "group_remove_member", "group": "g_a1", "device": "a1", "user": user("bob"), "records": ["a1_own", "a1_carol"] }));
    n.ok(json!({ "op": "explain", "state": "g_a1" }));
    n.vector(
        "group_dropped_list_full",
        "§16.8: a group whose list of dropped chains is full (MAX_DROPPED_CHAINS entries, edited into the saved state and loaded) drops more chains: before each entry is added the list forgets, counting each owner's entries (owners compared as their 32 bytes) before the new one is added, the oldest entry whose owner has the largest count. (1) One entry of owner a0..a0, then 1,023 of 4d..4d; Alice installs Bob's fifth chain, which evicts his first: the oldest 4d entry goes (the second entry), not the oldest. (2) That state with Bob's first chain's entry given owner 4e..4e: a late copy of its distribution is still Unchanged (a dropped chain is refused by its id) and a message on it is RetryLater(MissingDistribution). (3) 512 entries of f0..f0, then 512 of Bob's identity, and Bob's next chain: the two owners tie before the new entry (Bob's) is counted, and the oldest entry of the tied owners goes (f0's first), though f0.. sorts above Bob's key. (4) 512 of 4d..4d, then 512 of f0..f0; Bob is removed: his four chains are dropped in one step in the store's order, each added as above one at a time (4d, f0, 4d and f0 lose their oldest in turn). The group is explained after (1), (3) and (4).",
    )
}

/// A stale device (off the list) may not add or move a chain (§16.8): its
/// distributions are refused with `UnknownDevice` (after the pending check,
/// before the dropped-chain check), nothing changes, its chain in the store
/// still decrypts; listed again, its chain sent again installs.
fn stale_device_install() -> Value {
    let mut n = Net::new("group stale device install");
    bob_chains(&mut n);
    // A copy of Bob's first chain's distribution, held back; four new
    // chains, installed while b1 is listed: the first is dropped.
    let late_dropped = bob_distributes_to_alice(&mut n);
    bob_rotates_to_alice(&mut n, 4, NOW + 2);
    let in_flight = gsend(&mut n, "g_b1", "in flight");
    // His current chain (held by Alice) sent again, at a later index.
    let held_later = bob_distributes_to_alice(&mut n);
    // Bob's device 1 leaves Alice's list of Bob: it is stale.
    n.list("a1_bob", &[], NOW + 6).unwrap();
    // Each pairwise message decrypts (a stale device's session still
    // reads); each install is refused and the group does not change: the
    // dropped chain's late copy (UnknownDevice, not Unchanged), the held
    // chain at a later index, and a new chain.
    install(&mut n, "g_a1", "a1_bob", "a1", 1, &late_dropped, NOW + 7);
    install(&mut n, "g_a1", "a1_bob", "a1", 1, &held_later, NOW + 7);
    bob_rotates_to_alice(&mut n, 1, NOW + 7);
    let fresh = gsend(&mut n, "g_b1", "on the new chain");
    gfails(&mut n, "g_a1", "a1_bob", &fresh);
    gdecrypt(&mut n, "g_a1", "a1_bob", &in_flight).unwrap();
    // Stale and pending at once (a copy of the record where b1 showed
    // another key, then left the list): IdentityChangePending comes first.
    let pending_copy = bob_distributes_to_alice(&mut n);
    n.load("a1_bob_stale_pending", &n.save("a1_bob"));
    n.list("a1_bob_stale_pending", &[(1, "b1")], NOW + 8)
        .unwrap();
    n.list_keys(
        "a1_bob_stale_pending",
        &[(1, stranger("groups stale pending"))],
        NOW + 8,
    )
    .unwrap();
    n.list("a1_bob_stale_pending", &[], NOW + 8).unwrap();
    n.ok(json!({
        "op": "group_install", "group": "g_a1", "record": "a1_bob", "device": "a1", "from": 1,
        "message": hex(&pending_copy), "now": NOW + 8, "install_record": "a1_bob_stale_pending",
    }));
    // Listed again: asked (`request_distribution`), Bob sends his chain
    // again, and it installs; what it sends from then on decrypts.
    n.list("a1_bob", &[(1, "b1")], NOW + 9).unwrap();
    let again = bob_distributes_to_alice(&mut n);
    install(&mut n, "g_a1", "a1_bob", "a1", 1, &again, NOW + 10);
    let after = gsend(&mut n, "g_b1", "after the new distribution");
    gdecrypt(&mut n, "g_a1", "a1_bob", &after).unwrap();
    n.vector(
        "group_stale_device_install",
        "§16.8: install refuses every distribution from a stale device (one the last device list left out) with UnknownDevice, and the group does not change; the pairwise message that carried it decrypts (a stale device's session still reads). Refused: a late copy of a dropped chain of the device (UnknownDevice comes before the dropped-chain check, so not Unchanged), the chain the store holds sent again at a later index, and a new chain. A message on the new chain is RetryLater(MissingDistribution); the device's chain already in the store still decrypts what was in flight. A device both stale and pending (installed with a copy of the record where b1 showed another key and then left the list) is IdentityChangePending: that check comes first. Once the device is listed again, its chain sent again (at its current index) installs (Added) and what it sends from then on decrypts.",
    )
}

/// Bob forwards Carol's distribution over his own session (§16.8 install):
/// the distribution's sender is the session's peer, Bob, which Alice's
/// record trusts for the device it came from, so the store decides
/// (`GroupOwnerMismatch`, §15.7); checked against Carol's record, whose
/// device's trusted identity is the distribution's `owner` but not the
/// session's peer, it is `IdentityMismatch`.
fn forwarded_distribution() -> Value {
    let mut n = Net::new("group forwarded distribution");
    setup(&mut n);
    let carol = Group::decode(&n.save("g_c1"))
        .unwrap()
        .sender
        .distribution()
        .encoded();
    let bundle = n.bundle("a1");
    n.ok(json!({
        "op": "initiate", "device": "b1", "session": "b1_bare", "bundle": hex(&bundle),
        "expected": null, "policy": "PostQuantumRequired",
    }));
    let frame = [vec![2], carol].concat();
    let cases = [
        (None, "GroupOwnerMismatch"),
        (Some("a1_carol"), "IdentityMismatch"),
    ];
    for (i, (install_record, want)) in cases.into_iter().enumerate() {
        let m = out(
            &n.ok(json!({ "op": "encrypt", "session": "b1_bare", "plaintext": hex(&frame) })),
            "message",
        );
        let mut step = json!({
            "op": "group_install", "group": "g_a1", "record": "a1_bob", "device": "a1",
            "from": 1, "message": hex(&m), "now": NOW + 1 + i as u64,
        });
        if let Some(r) = install_record {
            step["install_record"] = r.into();
        }
        let o = n.ok(step);
        assert_eq!(o.out["install_error"]["name"], want);
    }
    n.ok(json!({ "op": "explain", "state": "g_a1" }));
    n.vector(
        "group_forwarded_distribution",
        "§16.8 install, §15.7: Bob's device writes Carol's distribution (valid signatures, the group's id) as a frame 0x02 in a session of its own; Alice's record of Bob decrypts it (the content's sender is Bob's identity, the session's peer), and the install's sender is that peer, not the distribution's owner field: Bob's device trusts it, so the store's authenticated install refuses the owner (GroupOwnerMismatch) and the group is unchanged; the same bytes checked against Alice's record of Carol (whose device 1 trusts Carol's key, the owner, but not the session's peer): IdentityMismatch.",
    )
}

/// `rotate` removes chains as `remove_member` does (§16.8): a stale
/// device's chain stays (it is still held), a deleted device's goes; a
/// pending identity keeps the trusted key's chain, which goes once the new
/// key is acknowledged.
fn rotate_removes() -> Value {
    let mut n = Net::new("group rotate removes");
    chains(&mut n);
    // Bob's second device hands Alice's device 1 its chain.
    n.devices(&["b2"]);
    n.list("a1_bob", &[(1, "b1"), (2, "b2")], NOW + 1).unwrap();
    n.record("b2_alice", "alice", "b2", None);
    n.list("b2_alice", &[(1, "a1")], NOW + 1).unwrap();
    n.connect("b2_alice", "b2", 1, "a1", NOW + 1);
    n.ok(json!({ "op": "group_new", "group": "g_b2", "group_id": hex(&GROUP), "user": user("bob"), "device": "b2" }));
    n.ok(json!({ "op": "group_add_member", "group": "g_b2", "user": user("alice") }));
    let f = n.ok(json!({ "op": "group_distribute", "group": "g_b2", "records": ["b2_alice"] }));
    install(
        &mut n,
        "g_a1",
        "a1_bob",
        "a1",
        2,
        &fanned(&f, "alice", 1),
        NOW + 1,
    );
    let held = |n: &Net| Group::decode(&n.save("g_a1")).unwrap().store.entries.len();
    assert_eq!(held(&n), 3);
    n.ok(json!({ "op": "explain", "state": "g_a1" }));
    let rotate = json!({ "op": "group_rotate", "group": "g_a1", "device": "a1", "records": ["a1_own", "a1_bob", "a1_carol"] });
    // b2 leaves Bob's list: stale, still held, its chain stays.
    n.list("a1_bob", &[(1, "b1")], NOW + 2).unwrap();
    n.ok(rotate.clone());
    assert_eq!(held(&n), 3);
    n.ok(json!({ "op": "explain", "state": "g_a1" }));
    // expire deletes it: the next rotation removes its chain.
    n.ok(json!({ "op": "expire", "record": "a1_bob", "now": NOW + 2 + MONTH }));
    n.ok(rotate.clone());
    assert_eq!(held(&n), 2);
    n.ok(json!({ "op": "explain", "state": "g_a1" }));
    // b1 announces a new key: pending, b1's chain stays; acknowledged, the
    // next rotation removes it.
    let key = stranger("group rotate removes new key");
    n.list_keys("a1_bob", &[(1, key.clone())], NOW + 3 + MONTH)
        .unwrap();
    n.ok(rotate.clone());
    assert_eq!(held(&n), 2);
    n.ok(json!({ "op": "explain", "state": "g_a1" }));
    n.ok(json!({ "op": "acknowledge_identity", "record": "a1_bob", "device_id": 1, "identity": hex(&key) }));
    n.ok(rotate);
    assert_eq!(held(&n), 1);
    n.ok(json!({ "op": "explain", "state": "g_a1" }));
    n.vector(
        "group_rotate_removes",
        "§16.8 rotate: the same step as remove_member without removing a member, chains removed included. Alice's device 1 holds the chains of Bob's b1 and b2 and of Carol's c1. b2 leaves Bob's list (stale, still held): a rotation keeps its chain. expire deletes b2: the next rotation removes its chain (a dropped chain with its owner; the store's generation moves). b1 is listed with a new key (pending): a rotation keeps b1's chain (its trusted identity is unchanged); once the key is acknowledged the next rotation removes it. Each rotation replaces the local sender and fans its distribution out to the listed devices with sessions.",
    )
}

pub(super) fn vectors() -> Vec<Value> {
    vec![
        fan_out(),
        removal(),
        record_checks(),
        dropped_chains(),
        dropped_list_full(),
        stale_device_install(),
        forwarded_distribution(),
        rotate_removes(),
    ]
}
