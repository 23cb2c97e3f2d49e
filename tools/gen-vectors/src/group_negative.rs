//! group_negative.json: group inputs that must fail, as a table like
//! negative.json: every decoding rule of §15.5, §15.6 and §15.11 (the
//! store's embedded receivers and its caps included), the check orders of
//! §15.7 (installs), §15.8 (decrypt) and §15.12 (encrypt), and sealed
//! group states. Rows named `*_resigned` were altered and signed again with
//! the chain's key, so they pass the signature and fail later.

use serde_json::{Value, json};
use testkit::hex::hex;
use testkit::layout;
use testkit::model::group::message::{owner_proof, owner_signature};
use testkit::model::group::ratchet::closed_form;
use testkit::model::group::{Dist, Levels, Receiver, Sender, Store, read_distribution};
use testkit::model::primitives::{MAX_PLAINTEXT, MAX_STATE, ed25519_public};
use testkit::model::sealed::seal_with;
use testkit::model::{Dev, with};
use testkit::points::{ED25519_SMALL_ORDER, P, add_l_to_s};

use crate::common::{device, distribution, pair, send};
use crate::forgery::sign_small_order_r;
use crate::group::{GROUP, initial_levels};
use crate::rec::{Rec, e, ef, file};
use crate::table::Table;

const LABEL: &str = "sotto v2 vectors group negative";
const OTHER_GROUP: [u8; 32] = [0x68; 32];

/// Values the rows are made from.
struct Ctx {
    sender: Sender,
    initial: Levels,
    alice: Dev,
    mallory: Dev,
    d0: Vec<u8>,
    /// The receiver fixture's next index.
    next: u32,
}

impl Ctx {
    /// Alice's message at index `i` (the sender as it would be there).
    fn at(&self, i: u32, pt: &[u8]) -> Vec<u8> {
        let mut s = self.sender.clone();
        s.index = i;
        s.levels = closed_form(&self.initial, i);
        s.encrypt_with(&[i.to_be_bytes()[3]; 16], pt).0
    }

    /// Bytes signed again with the chain's key (after an edit).
    fn resign(&self, message: &[u8]) -> Vec<u8> {
        self.sender.sign(&message[..message.len() - 64])
    }

    /// A distribution of Alice's chain with some fields changed, the
    /// proof and signature made again over them by `owner`'s keys.
    fn dist(&self, group: [u8; 32], owner: &Dev) -> Vec<u8> {
        let (d, _) = read_distribution(&self.d0).unwrap();
        Dist {
            group,
            owner: owner.ik,
            proof: owner_proof(&self.sender.seed, &group, &d.chain, &owner.ik),
            signature: owner_signature(&owner.seed, &group, &d.chain),
            ..d
        }
        .encoded()
    }
}

fn decode(encoding: &str, input: &[u8]) -> Value {
    json!({ "op": "decode", "encoding": encoding, "input": hex(input) })
}

fn decode_state(encoding: &str, name: &str) -> Value {
    json!({ "op": "decode", "encoding": encoding, "state": name })
}

fn setup(t: &mut Table) -> Ctx {
    let mut r = Rec::new(&format!("{LABEL} setup"));
    for d in ["alice", "bob", "mallory"] {
        device(&mut r, d);
    }
    pair(&mut r, "alice", "bob");
    pair(&mut r, "mallory", "bob");
    r.ok(json!({ "op": "group_sender_new", "sender": "sender", "group_id": hex(&GROUP), "device": "alice" }));
    let initial = initial_levels(r.steps.last().unwrap());
    let d0 = distribution(&mut r, "sender");
    r.ok(json!({ "op": "receiver_import", "receiver": "receiver", "group_id": hex(&GROUP), "distribution": hex(&d0) }));
    r.ok(json!({ "op": "store_new", "store": "store", "group_id": hex(&GROUP) }));
    let sender = Sender::decode(&r.state("sender")).unwrap();
    let mut c = Ctx {
        sender,
        initial,
        alice: Dev::decode(&r.state("alice")).unwrap(),
        mallory: Dev::decode(&r.state("mallory")).unwrap(),
        d0: d0.clone(),
        next: 0,
    };
    // The receiver reads index 40 (keys 8..=39 cached, read = 41).
    r.ok(json!({ "op": "receiver_decrypt", "receiver": "receiver", "message": hex(&c.at(40, b"forty")) }));
    c.next = 41;
    t.fixture("receiver", &r.state("receiver"));
    // A receiver whose cache overflowed: eight more jumps of 40.
    for k in 2..=9u32 {
        r.ok(json!({ "op": "receiver_decrypt", "receiver": "receiver", "message": hex(&c.at(40 * k, b"jump")) }));
    }
    t.fixture("receiver_full_cache", &r.state("receiver"));
    // The store holds Alice's chain, installed over her session at index 0.
    let carried = send(&mut r, "alice_bob", &d0);
    r.ok(json!({ "op": "store_receive_distribution", "store": "store", "session": "bob_alice", "message": hex(&carried) }));
    t.fixture("store", &r.state("store"));
    t.fixture("bob_alice", &r.state("bob_alice"));
    t.fixture("alice_bob", &r.state("alice_bob"));
    r.ok(json!({ "op": "store_new", "store": "empty_store", "group_id": hex(&GROUP) }));
    t.fixture("empty_store", &r.state("empty_store"));
    t.fixture("sender", &r.state("sender"));
    t.fixture("mallory", &r.state("mallory"));
    let mut last = c.sender.clone();
    last.index = u32::MAX;
    last.levels = closed_form(&initial, u32::MAX);
    t.fixture("sender_at_last_index", &last.encode());
    let mut at_last = Receiver::from_distribution(&last.distribution(), false);
    at_last.generation = 0;
    t.fixture("receiver_at_last_index", &at_last.encode());
    c
}

fn message_rows(t: &mut Table, c: &Ctx) {
    let m = c.at(41, b"a group message");
    let l = layout::group_message(&m);
    let edit = |f: &dyn Fn(&mut Vec<u8>)| with(&m, |x| f(x));
    let dec = |b: &[u8]| decode("GroupMessage", b);
    t.fails(
        "group_message_empty",
        "the empty input",
        dec(&[]),
        e("Truncated"),
    );
    t.fails(
        "group_message_v1",
        "the one byte 01",
        dec(&[1]),
        ef("UnsupportedVersion", json!({ "found": 1 })),
    );
    t.fails(
        "group_message_unknown_version",
        "version = 03",
        dec(&edit(&|x| l.put_u8(x, "version", 3))),
        ef("UnsupportedVersion", json!({ "found": 3 })),
    );
    t.fails(
        "group_message_wrong_type",
        "type = 0x04",
        dec(&edit(&|x| l.put_u8(x, "type", 4))),
        ef("WrongType", json!({ "expected": 3, "found": 4 })),
    );
    t.fails(
        "group_message_truncated_in_chain",
        "cut after 65 bytes",
        dec(&m[..65]),
        e("Truncated"),
    );
    t.fails(
        "group_message_small_order_chain",
        "chain = the Ed25519 identity point",
        dec(&edit(&|x| l.put(x, "chain", &ED25519_SMALL_ORDER))),
        e("InvalidPublicKey"),
    );
    t.fails(
        "group_message_non_canonical_chain",
        "chain with y = p",
        dec(&edit(&|x| l.put(x, "chain", &P))),
        e("InvalidPublicKey"),
    );
    t.fails(
        "group_message_bad_chain_then_short",
        "a small-order chain and the input cut at 70 bytes: the chain is checked before the length",
        dec(&edit(&|x| {
            l.put(x, "chain", &ED25519_SMALL_ORDER);
            x.truncate(70);
        })),
        e("InvalidPublicKey"),
    );
    t.fails(
        "group_message_165_bytes",
        "cut to 165 bytes (one short of an empty plaintext's message)",
        dec(&m[..165]),
        e("Truncated"),
    );
    let empty = c.at(41, b"");
    t.row(
        "group_message_166_bytes",
        "a message with an empty plaintext (166 bytes)",
        dec(&empty),
        None,
    );
    t.fails("group_message_over_max_len", "02 03 zero-padded to MAX_GROUP_MESSAGE_LEN + 1", json!({ "op": "decode", "encoding": "GroupMessage", "input": "0203", "input_pad_to": 262_311 }), e("TooLarge"));
    t.row("group_message_at_max_len", "a valid header zero-padded to MAX_GROUP_MESSAGE_LEN", json!({ "op": "decode", "encoding": "GroupMessage", "input": hex(&m[..86]), "input_pad_to": 262_310 }), None);
}

fn distribution_rows(t: &mut Table, c: &Ctx) {
    let d = &c.d0;
    let l = layout::distribution(d);
    let edit = |f: &dyn Fn(&mut Vec<u8>)| with(d, |x| f(x));
    let dec = |b: &[u8]| decode("SenderKeyDistribution", b);
    t.fails(
        "distribution_truncated",
        "485 bytes",
        dec(&d[..485]),
        e("Truncated"),
    );
    t.fails(
        "distribution_trailing_bytes",
        "487 bytes",
        dec(&edit(&|x| x.push(0))),
        e("TrailingBytes"),
    );
    t.fails(
        "distribution_wrong_type",
        "type = 0x03",
        dec(&edit(&|x| l.put_u8(x, "type", 3))),
        ef("WrongType", json!({ "expected": 4, "found": 3 })),
    );
    t.fails(
        "distribution_small_order_chain",
        "chain = the identity point",
        dec(&edit(&|x| l.put(x, "chain", &ED25519_SMALL_ORDER))),
        e("InvalidPublicKey"),
    );
    t.fails(
        "distribution_non_canonical_owner",
        "owner with y = p",
        dec(&edit(&|x| l.put(x, "owner", &P))),
        e("InvalidPublicKey"),
    );
    t.fails(
        "distribution_bad_chain_and_owner",
        "chain and owner both invalid, and one byte short",
        dec(&edit(&|x| {
            l.put(x, "chain", &ED25519_SMALL_ORDER);
            l.put(x, "owner", &P);
            x.pop();
        })),
        e("InvalidPublicKey"),
    );
}

fn state_rows(t: &mut Table, c: &Ctx) {
    let s = t.state("sender");
    let sl = layout::sender_state(&s);
    t.fails(
        "sender_state_truncated",
        "the last byte cut",
        decode("GroupSender", &s[..s.len() - 1]),
        e("Truncated"),
    );
    t.fails(
        "sender_state_trailing_bytes",
        "one byte appended",
        decode("GroupSender", &with(&s, |x| x.push(0))),
        e("TrailingBytes"),
    );
    t.fails(
        "sender_state_small_order_owner",
        "owner = the identity point",
        decode(
            "GroupSender",
            &with(&s, |x| sl.put(x, "owner", &ED25519_SMALL_ORDER)),
        ),
        e("InvalidPublicKey"),
    );
    t.fails(
        "sender_state_wrong_type",
        "type = 0x23",
        decode("GroupSender", &with(&s, |x| sl.put_u8(x, "type", 0x23))),
        ef("WrongType", json!({ "expected": 0x22, "found": 0x23 })),
    );
    t.row(
        "sender_state_owner_proof_taken_as_is",
        "owner_proof and owner_signature flipped: stored as made, not verified on load",
        decode(
            "GroupSender",
            &with(&s, |x| {
                sl.flip(x, "owner_proof", 0, 1);
                sl.flip(x, "owner_signature", 0, 1);
            }),
        ),
        None,
    );
    t.fails("sender_state_over_max_state_len", "zero-padded to MAX_STATE_LEN + 1", json!({ "op": "decode", "encoding": "GroupSender", "input": hex(&s), "input_pad_to": MAX_STATE + 1 }), e("TooLarge"));
    let r = t.state("receiver");
    let rl = layout::receiver_state(&r);
    let edit = |f: &dyn Fn(&mut Vec<u8>)| with(&r, |x| f(x));
    let dec = |b: &[u8]| decode("GroupReceiver", b);
    t.fails(
        "receiver_state_bad_flag",
        "authenticated = 2",
        dec(&edit(&|x| rl.put_u8(x, "authenticated", 2))),
        e("InvalidEncoding"),
    );
    t.fails(
        "receiver_state_small_order_chain",
        "chain = the identity point",
        dec(&edit(&|x| rl.put(x, "chain", &ED25519_SMALL_ORDER))),
        e("InvalidPublicKey"),
    );
    t.fails(
        "receiver_state_non_canonical_owner",
        "owner with y = p",
        dec(&edit(&|x| rl.put(x, "owner", &P))),
        e("InvalidPublicKey"),
    );
    t.fails(
        "receiver_state_owner_before_flag",
        "owner invalid and authenticated = 2: owner is read first",
        dec(&edit(&|x| {
            rl.put(x, "owner", &P);
            rl.put_u8(x, "authenticated", 2);
        })),
        e("InvalidPublicKey"),
    );
    t.fails(
        "receiver_state_read_above_next",
        "read = next + 1",
        dec(&edit(&|x| {
            let n = rl.u32(x, "next");
            rl.put_u32(x, "read", n + 1);
        })),
        e("InvalidEncoding"),
    );
    t.fails(
        "receiver_state_read_above_next_truncated",
        "read = next + 1, cut right after it: checked when read",
        dec(&edit(&|x| {
            let n = rl.u32(x, "next");
            rl.put_u32(x, "read", n + 1);
            x.truncate(rl.end_of("read"));
        })),
        e("InvalidEncoding"),
    );
    t.row(
        "receiver_state_read_at_next",
        "read = next",
        dec(&edit(&|x| {
            let n = rl.u32(x, "next");
            rl.put_u32(x, "read", n);
        })),
        None,
    );
    t.fails(
        "receiver_state_count_over",
        "count = 257 (checked before the keys)",
        dec(&edit(&|x| rl.put_u16(x, "count", 257))),
        e("InvalidEncoding"),
    );
    t.fails(
        "receiver_state_cache_index_not_below_next",
        "cache[31].index = next",
        dec(&edit(&|x| {
            let n = rl.u32(x, "next");
            rl.put_u32(x, "cache[31].index", n);
        })),
        e("InvalidEncoding"),
    );
    t.fails(
        "receiver_state_cache_indices_repeated",
        "cache[1].index = cache[0].index",
        dec(&edit(&|x| {
            let i = rl.u32(x, "cache[0].index");
            rl.put_u32(x, "cache[1].index", i);
        })),
        e("InvalidEncoding"),
    );
    t.fails(
        "receiver_state_cache_indices_decreasing",
        "cache[1].index = cache[0].index - 1",
        dec(&edit(&|x| {
            let i = rl.u32(x, "cache[0].index");
            rl.put_u32(x, "cache[1].index", i - 1);
        })),
        e("InvalidEncoding"),
    );
    t.fails(
        "receiver_state_trailing_bytes",
        "one byte appended",
        dec(&edit(&|x| x.push(0))),
        e("TrailingBytes"),
    );
    t.fails(
        "receiver_state_truncated_in_cache",
        "cut in cache[5].key",
        dec(&r[..rl.start("cache[5].key") + 3]),
        e("Truncated"),
    );

    // The store: embedded receivers by their length.
    let st = t.state("store");
    let l = layout::store_state(&st);
    let sdec = |b: &[u8]| decode("GroupReceivers", b);
    let sedit = |f: &dyn Fn(&mut Vec<u8>)| with(&st, |x| f(x));
    t.fails(
        "store_state_count_over",
        "count = 1025",
        sdec(&sedit(&|x| l.put_u16(x, "count", 1025))),
        e("InvalidEncoding"),
    );
    t.fails(
        "store_state_entry_length_short",
        "entries[0].length one less: the receiver's own Truncated",
        sdec(&sedit(&|x| {
            let n = u16::from_be_bytes(l.slice(x, "entries[0].length").try_into().unwrap());
            l.put_u16(x, "entries[0].length", n - 1);
            x.pop();
        })),
        e("Truncated"),
    );
    t.fails(
        "store_state_entry_length_long",
        "entries[0].length one more and a byte appended: the receiver's own TrailingBytes",
        sdec(&sedit(&|x| {
            let n = u16::from_be_bytes(l.slice(x, "entries[0].length").try_into().unwrap());
            l.put_u16(x, "entries[0].length", n + 1);
            x.push(0);
        })),
        e("TrailingBytes"),
    );
    t.fails(
        "store_state_entry_length_past_end",
        "entries[0].length past the end of the input",
        sdec(&sedit(&|x| l.put_u16(x, "entries[0].length", 0xffff))),
        e("Truncated"),
    );
    t.fails(
        "store_state_entry_bad_chain",
        "entries[0].chain = the identity point",
        sdec(&sedit(&|x| {
            l.put(x, "entries[0].chain", &ED25519_SMALL_ORDER)
        })),
        e("InvalidPublicKey"),
    );
    t.fails(
        "store_state_entry_version",
        "entries[0].version = 01",
        sdec(&sedit(&|x| l.put_u8(x, "entries[0].version", 1))),
        ef("UnsupportedVersion", json!({ "found": 1 })),
    );
    t.fails(
        "store_state_entry_other_group",
        "entries[0].group_id of another group (checked after TrailingBytes)",
        sdec(&sedit(&|x| l.put(x, "entries[0].group_id", &OTHER_GROUP))),
        e("InvalidEncoding"),
    );
    t.fails(
        "store_state_entry_other_group_trailing",
        "the same and one byte appended: TrailingBytes first",
        sdec(&sedit(&|x| {
            l.put(x, "entries[0].group_id", &OTHER_GROUP);
            x.push(0);
        })),
        e("TrailingBytes"),
    );
    t.fails(
        "store_state_trailing_bytes",
        "one byte appended",
        sdec(&sedit(&|x| x.push(0))),
        e("TrailingBytes"),
    );
    // Stores built directly (no insert rules), to break one cap each.
    let base = Store::decode(&st).unwrap();
    let one = base.entries[0].clone();
    let with_entries = |entries: Vec<Receiver>| {
        Store {
            entries,
            ..base.clone()
        }
        .encode()
    };
    let chain = |k: u32, auth: bool, owner: [u8; 32]| Receiver {
        chain: ed25519_public(&[k as u8 + 1; 32]),
        authenticated: auth,
        owner,
        ..one.clone()
    };
    t.fails(
        "store_state_chain_twice",
        "the same chain in two entries",
        sdec(&with_entries(vec![one.clone(), one.clone()])),
        e("InvalidEncoding"),
    );
    t.fails(
        "store_state_five_authenticated_of_one_owner",
        "five authenticated chains of Alice (MAX_CHAINS_PER_SENDER = 4)",
        sdec(&with_entries(
            (0..5).map(|k| chain(k, true, c.alice.ik)).collect(),
        )),
        e("InvalidEncoding"),
    );
    t.row(
        "store_state_four_authenticated_and_four_claimed",
        "four authenticated chains of Alice and four claiming her: at both limits",
        sdec(&with_entries(
            (0..8).map(|k| chain(k, k < 4, c.alice.ik)).collect(),
        )),
        None,
    );
    t.fails(
        "store_state_five_claimed_of_one_owner",
        "five unauthenticated chains claiming Alice (MAX_UNAUTHENTICATED_CHAINS_PER_OWNER = 4)",
        sdec(&with_entries(
            (0..5).map(|k| chain(k, false, c.alice.ik)).collect(),
        )),
        e("InvalidEncoding"),
    );
    t.fixture_recipe("store_257_unauthenticated", json!({ "kind": "store_fill", "group_id": hex(&GROUP), "unauthenticated": 257, "authenticated": 0 }));
    t.fails(
        "store_state_257_unauthenticated",
        "257 unauthenticated chains (store_fill recipe; MAX_UNAUTHENTICATED_GROUP_CHAINS = 256)",
        decode_state("GroupReceivers", "store_257_unauthenticated"),
        e("InvalidEncoding"),
    );
    t.fixture_recipe("store_256_unauthenticated_768_authenticated", json!({ "kind": "store_fill", "group_id": hex(&GROUP), "unauthenticated": 256, "authenticated": 768 }));
    t.row(
        "store_state_full",
        "256 unauthenticated and 768 authenticated chains (store_fill): every cap at its limit",
        decode_state(
            "GroupReceivers",
            "store_256_unauthenticated_768_authenticated",
        ),
        None,
    );
}

fn decrypt_rows(t: &mut Table, c: &Ctx) {
    let dec =
        |m: &[u8]| json!({ "op": "receiver_decrypt", "receiver": "receiver", "message": hex(m) });
    let fresh = c.at(41, b"next");
    let l = layout::group_message(&fresh);
    let cached = c.at(20, b"cached");
    let read = c.at(40, b"forty");
    let flip_sig = |m: &[u8]| with(m, |x| layout::group_message(m).flip(x, "signature", 0, 1));
    t.row(
        "receiver_decrypts",
        "none: the next index",
        dec(&fresh),
        None,
    );
    t.fails(
        "decrypt_other_group",
        "group_id of another group",
        dec(&with(&fresh, |x| l.put(x, "group_id", &OTHER_GROUP))),
        e("UnknownGroupChain"),
    );
    let other_chain = {
        let mut s = c.sender.clone();
        s.seed = [0x77; 32];
        s.levels = closed_form(&c.initial, 41);
        s.index = 41;
        s.encrypt_with(&[1; 16], b"another chain").0
    };
    t.fails(
        "decrypt_other_chain",
        "a message of another chain",
        dec(&other_chain),
        e("UnknownGroupChain"),
    );
    t.fails(
        "decrypt_other_group_bad_signature",
        "another group_id, signature not made again: the group and chain come first",
        dec(&with(&fresh, |x| l.put(x, "group_id", &OTHER_GROUP))),
        e("UnknownGroupChain"),
    );
    t.fails(
        "decrypt_bad_signature",
        "one bit of the signature's R flipped",
        dec(&flip_sig(&fresh)),
        e("InvalidSignature"),
    );
    t.fails(
        "decrypt_signature_s_plus_l",
        "the signature's S + L",
        dec(&with(&fresh, |x| add_l_to_s(&mut x[l.range("signature")]))),
        e("InvalidSignature"),
    );
    let forged = {
        let unsigned = &fresh[..fresh.len() - 64];
        let mut data = testkit::model::group::message::L_SIGNATURE
            .as_bytes()
            .to_vec();
        data.extend(unsigned);
        [unsigned, &sign_small_order_r(&c.sender.seed, &data)[..]].concat()
    };
    t.fails(
        "decrypt_signature_small_order_r",
        "a signature by the chain's key with R = the identity point, S = k * a mod L",
        dec(&forged),
        e("InvalidSignature"),
    );
    t.fails(
        "decrypt_cached_bad_signature",
        "a cached index with its signature broken: the signature comes before the cache",
        dec(&flip_sig(&cached)),
        e("InvalidSignature"),
    );
    t.fails(
        "decrypt_read_bad_signature",
        "a read index with its signature broken: before DuplicateMessage",
        dec(&flip_sig(&read)),
        e("InvalidSignature"),
    );
    let last = c.at(u32::MAX, b"last");
    t.fails(
        "decrypt_last_index_bad_signature",
        "index 2^32 - 1 with its signature broken: before the range check",
        dec(&flip_sig(&last)),
        e("InvalidSignature"),
    );
    t.row("decrypt_cached", "a cached index", dec(&cached), None);
    t.fails("decrypt_cached_resigned", "a cached index, one bit of its ciphertext flipped, signed again: AuthenticationFailed, the key stays", dec(&c.resign(&with(&cached, |x| l.flip(x, "ciphertext", 0, 1)))), e("AuthenticationFailed"));
    t.fails(
        "decrypt_read",
        "the index the receiver read",
        dec(&read),
        e("DuplicateMessage"),
    );
    t.fails(
        "decrypt_never_cached",
        "index 7, below the window of the jump to 40",
        dec(&c.at(7, b"seven")),
        e("DuplicateMessage"),
    );
    t.fails("decrypt_evicted", "index 8 on the receiver whose cache overflowed (its key was evicted)", json!({ "op": "receiver_decrypt", "receiver": "receiver_full_cache", "message": hex(&c.at(8, b"eight")) }), e("DuplicateMessage"));
    t.fails(
        "decrypt_last_index",
        "index 2^32 - 1",
        dec(&last),
        ef("GroupIndexOutOfRange", json!({ "index": u32::MAX })),
    );
    t.fails(
        "decrypt_past_max_jump",
        "index next + 2^24 + 1",
        dec(&c.at(c.next + (1 << 24) + 1, b"far")),
        ef(
            "GroupIndexOutOfRange",
            json!({ "index": c.next + (1 << 24) + 1 }),
        ),
    );
    t.fails(
        "decrypt_at_max_jump_resigned",
        "index next + 2^24 with its ciphertext flipped and signed again: in range, then the tag",
        dec(&c.resign(&with(&c.at(c.next + (1 << 24), b"far"), |x| {
            l.flip(x, "ciphertext", 0, 1)
        }))),
        e("AuthenticationFailed"),
    );
    t.fails(
        "decrypt_index_changed_resigned",
        "index 41 claimed by the message of index 42, signed again",
        dec(&c.resign(&with(&c.at(42, b"x"), |x| l.put_u32(x, "index", 41)))),
        e("AuthenticationFailed"),
    );
    t.fails(
        "decrypt_salt_changed_resigned",
        "one bit of the salt flipped, signed again",
        dec(&c.resign(&with(&fresh, |x| l.flip(x, "salt", 0, 1)))),
        e("AuthenticationFailed"),
    );
    t.fails("decrypt_receiver_at_last_index", "a receiver imported at index 2^32 - 1 (a distribution may carry it) decrypts nothing", json!({ "op": "receiver_decrypt", "receiver": "receiver_at_last_index", "message": hex(&last) }), ef("GroupIndexOutOfRange", json!({ "index": u32::MAX })));
    let sdec = |m: &[u8]| json!({ "op": "store_decrypt", "store": "store", "message": hex(m) });
    t.fails(
        "store_decrypt_unknown_chain",
        "a message of a chain the store does not hold",
        sdec(&other_chain),
        e("UnknownGroupChain"),
    );
    t.fails(
        "store_decrypt_other_group",
        "group_id of another group",
        sdec(&with(&fresh, |x| l.put(x, "group_id", &OTHER_GROUP))),
        e("UnknownGroupChain"),
    );
    t.fails(
        "store_decrypt_bad_signature",
        "the signature broken",
        sdec(&flip_sig(&fresh)),
        e("InvalidSignature"),
    );
    let enc = |sender: &str, len: usize| json!({ "op": "group_encrypt", "sender": sender, "plaintext": "", "plaintext_pad_to": len });
    t.fails(
        "encrypt_plaintext_over_max",
        "a plaintext of MAX_PLAINTEXT_LEN + 1 bytes",
        enc("sender", MAX_PLAINTEXT + 1),
        e("PlaintextTooLarge"),
    );
    t.fails(
        "encrypt_at_last_index",
        "the sender at index 2^32 - 1",
        enc("sender_at_last_index", 1),
        e("ChainExhausted"),
    );
    t.fails(
        "rotate_by_another_device",
        "rotate with Mallory's device: refused before any draw",
        json!({ "op": "group_sender_rotate", "sender": "sender", "device": "mallory" }),
        e("GroupOwnerMismatch"),
    );
    t.fails(
        "encrypt_at_last_index_plaintext_over_max",
        "at index 2^32 - 1 with a plaintext of MAX_PLAINTEXT_LEN + 1 bytes: the length first",
        enc("sender_at_last_index", MAX_PLAINTEXT + 1),
        e("PlaintextTooLarge"),
    );
}

fn install_rows(t: &mut Table, c: &Ctx) {
    // Alice's session with Bob carries `plaintext` to the store (one call).
    let alice_bob = t.state("alice_bob");
    let carry = |plaintext: &[u8]| {
        let mut s = testkit::model::Sess::decode(&alice_bob).unwrap();
        let mut rng = testkit::model::rand::Stream::new([plaintext.len() as u8; 32]);
        s.encrypt(&mut rng, plaintext).unwrap().0
    };
    let rcv = |store: &str, m: &[u8]| json!({ "op": "store_receive_distribution", "store": store, "session": "bob_alice", "message": hex(m) });
    let d = &c.d0;
    let l = layout::distribution(d);
    let other_group = c.dist(OTHER_GROUP, &c.alice);
    let mallory_owned = c.dist(GROUP, &c.mallory);
    t.row(
        "install",
        "none: Alice's distribution over her session, into an empty store",
        rcv("empty_store", &carry(d)),
        None,
    );
    let m = carry(d);
    t.fails(
        "install_tampered_message",
        "the pairwise message's ciphertext flipped: the decrypt comes first",
        rcv(
            "empty_store",
            &with(&m, |x| {
                layout::message(&m).flip(x, "ratchet.ciphertext", 0, 1)
            }),
        ),
        e("AuthenticationFailed"),
    );
    t.fails(
        "install_not_a_distribution",
        "the plaintext 'hello': its parse error",
        rcv("empty_store", &carry(b"hello")),
        ef("UnsupportedVersion", json!({ "found": 0x68 })),
    );
    t.fails(
        "install_distribution_trailing_byte",
        "the distribution with one byte appended",
        rcv("empty_store", &carry(&with(d, |x| x.push(0)))),
        e("TrailingBytes"),
    );
    t.fails(
        "install_other_group",
        "a distribution for another group (signed for it)",
        rcv("empty_store", &carry(&other_group)),
        e("GroupMismatch"),
    );
    let other_group_mallory = c.dist(OTHER_GROUP, &c.mallory);
    t.fails(
        "install_group_before_owner",
        "another group and owner Mallory: the group first",
        rcv("empty_store", &carry(&other_group_mallory)),
        e("GroupMismatch"),
    );
    t.fails(
        "install_owner_mismatch",
        "owner Mallory (proof and signature made for her) over Alice's session",
        rcv("empty_store", &carry(&mallory_owned)),
        e("GroupOwnerMismatch"),
    );
    t.fails(
        "install_owner_before_proof",
        "owner Mallory with the owner proof broken",
        rcv(
            "empty_store",
            &carry(&with(&mallory_owned, |x| l.flip(x, "owner_proof", 0, 1))),
        ),
        e("GroupOwnerMismatch"),
    );
    t.fails(
        "install_bad_owner_proof",
        "one bit of owner_proof flipped",
        rcv(
            "empty_store",
            &carry(&with(d, |x| l.flip(x, "owner_proof", 0, 1))),
        ),
        e("InvalidSignature"),
    );
    t.fails(
        "install_bad_owner_signature",
        "one bit of owner_signature flipped",
        rcv(
            "empty_store",
            &carry(&with(d, |x| l.flip(x, "owner_signature", 0, 1))),
        ),
        e("InvalidSignature"),
    );
    let proof_by_owner = with(d, |x| {
        let (dd, _) = read_distribution(d).unwrap();
        l.put(
            x,
            "owner_proof",
            &owner_signature(&c.alice.seed, &dd.group, &dd.chain),
        );
    });
    t.fails("install_owner_proof_by_identity_key", "owner_proof replaced by the owner's signature (made by the identity key, under the other label)", rcv("empty_store", &carry(&proof_by_owner)), e("InvalidSignature"));
    let altered = with(d, |x| l.flip(x, "levels", 7 * 32, 1));
    t.fails("install_inconsistent_ratchet", "Alice's distribution with one bit of R_7 flipped, into the store that holds her chain: rule 2.4", rcv("store", &carry(&altered)), e("GroupChainConflict"));
    t.fails(
        "install_bad_signature_before_store_rules",
        "the same with owner_signature broken: the signature first",
        rcv(
            "store",
            &carry(&with(&altered, |x| l.flip(x, "owner_signature", 0, 1))),
        ),
        e("InvalidSignature"),
    );
    let imp = |store: &str, dist: &[u8]| json!({ "op": "store_import", "store": store, "distribution": hex(dist) });
    t.fails(
        "import_not_a_distribution",
        "a distribution cut by one byte",
        imp("empty_store", &d[..485]),
        e("Truncated"),
    );
    t.fails(
        "import_other_group",
        "a distribution for another group",
        imp("empty_store", &other_group),
        e("GroupMismatch"),
    );
    t.row("import_other_owner", "owner Mallory (proof and signature made for her): no session to compare with, added as claimed by Mallory", imp("empty_store", &mallory_owned), None);
    t.fails(
        "import_bad_owner_signature",
        "owner_signature broken",
        imp(
            "empty_store",
            &with(d, |x| l.flip(x, "owner_signature", 0, 1)),
        ),
        e("InvalidSignature"),
    );
    t.fails(
        "import_owner_conflict",
        "owner Mallory, into the store holding the chain as Alice's: rule 2.1",
        imp("store", &mallory_owned),
        e("GroupChainConflict"),
    );
    let solo = |m: &[u8], group: [u8; 32]| json!({ "op": "receiver_receive_distribution", "receiver": "new_receiver", "group_id": hex(&group), "session": "bob_alice", "message": hex(m) });
    t.row(
        "receiver_install",
        "none: a standalone receiver for the group",
        solo(&carry(d), GROUP),
        None,
    );
    t.fails(
        "receiver_install_other_group",
        "a standalone receiver expecting another group",
        solo(&carry(d), OTHER_GROUP),
        e("GroupMismatch"),
    );
    t.fails(
        "receiver_install_owner_mismatch",
        "owner Mallory over Alice's session",
        solo(&carry(&mallory_owned), GROUP),
        e("GroupOwnerMismatch"),
    );
    let rimp = |dist: &[u8], group: [u8; 32]| json!({ "op": "receiver_import", "receiver": "new_receiver", "group_id": hex(&group), "distribution": hex(dist) });
    t.fails(
        "receiver_import_other_group",
        "a standalone import expecting another group",
        rimp(d, OTHER_GROUP),
        e("GroupMismatch"),
    );
    t.fails(
        "receiver_import_bad_owner_proof",
        "owner_proof broken",
        rimp(&with(d, |x| l.flip(x, "owner_proof", 0, 1)), GROUP),
        e("InvalidSignature"),
    );
}

fn sealed_rows(t: &mut Table) {
    let key = [0x5e; 32];
    let s = seal_with(&key, b"group/sender", &t.state("sender"), &[2; 32]).bytes;
    let r = seal_with(&key, b"group/store", &t.state("store"), &[3; 32]).bytes;
    let open = |sealed: &[u8], context: &[u8], inner: u8| json!({ "op": "unseal", "sealed": hex(sealed), "storage_key": hex(&key), "context": hex(context), "inner_type": inner, "state": "opened" });
    t.row(
        "sealed_sender_opens",
        "none: the sender sealed (salt 02..02) under group/sender",
        open(&s, b"group/sender", 0x22),
        None,
    );
    t.fails(
        "sealed_sender_as_receiver",
        "the sealed sender opened as a receiver",
        open(&s, b"group/sender", 0x23),
        ef("WrongType", json!({ "expected": 0x23, "found": 0x22 })),
    );
    t.fails(
        "sealed_store_other_context",
        "the sealed store opened under group/sender",
        open(&r, b"group/sender", 0x24),
        e("AuthenticationFailed"),
    );
    t.row(
        "sealed_store_opens",
        "none: the store sealed (salt 03..03) under group/store",
        open(&r, b"group/store", 0x24),
        None,
    );
    t.fails("sealed_receiver_over_max_state_len", "a sealed header zero-padded to MAX_STATE_LEN + 1", json!({ "op": "unseal", "sealed": hex(&r[..35]), "sealed_pad_to": MAX_STATE + 1, "storage_key": hex(&key), "context": "", "inner_type": 0x23, "state": "opened" }), e("TooLarge"));
}

pub(crate) fn generate() -> Value {
    let mut t = Table::new(LABEL);
    let c = setup(&mut t);
    message_rows(&mut t, &c);
    distribution_rows(&mut t, &c);
    state_rows(&mut t, &c);
    decrypt_rows(&mut t, &c);
    install_rows(&mut t, &c);
    sealed_rows(&mut t);
    let (fixtures, rows) = t.finish();
    let mut f = file(
        "group_negative",
        "Group inputs that must fail, with their exact errors: every decoding rule of SPEC.md §15.5, §15.6 and §15.11, and the check orders of §15.7, §15.8 and §15.12. A table: name, operation with its fixtures, mutation, expected error.",
        LABEL,
        rows,
    );
    f["fixtures"] = fixtures;
    f
}
