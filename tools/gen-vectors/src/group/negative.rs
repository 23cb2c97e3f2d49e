//! group.json's negative vectors (SPEC.md §15.5 to §15.13), as a table;
//! each error was the model's before it was written.

use serde_json::{Value, json};
use sotto::group::{GroupReceiver, MAX_GROUP_MESSAGE_LEN};
use sotto::{MAX_PLAINTEXT_LEN, MAX_STATE_LEN};
use testkit::model::Layout;
use testkit::model::group::message::{OVERHEAD, signed_data};
use testkit::model::group::ratchet::jump;
use testkit::model::group::{GReceiver, GSender};
use testkit::model::sealed::seal_state;
use testkit::points::{ED25519_SMALL_ORDER, P, add_l_to_s};

use super::session::Run;
use crate::forgery::sign_small_order_r;
use crate::lockstep::same;
use crate::table::{Fixtures, Op, Row, e, ef, keep, padded, row, vectors as table_vectors};

const MESSAGE: Op = Op::Decode("GroupMessage::from_bytes");
const DISTRIBUTION: Op = Op::Decode("SenderKeyDistribution::from_bytes");
const SENDER: Op = Op::Decode("GroupSender::from_bytes");
const RECEIVER: Op = Op::Decode("GroupReceiver::from_bytes");

/// Everything the rows refer to.
struct Ctx {
    msgs: std::collections::BTreeMap<String, Vec<u8>>,
    /// Alice's first chain, at its last index, and after the rotation.
    old: GSender,
    new: GSender,
    /// The index of m8, more than `MAX_GROUP_JUMP` past Carol's.
    m8_index: u32,
    distribution: Vec<u8>,
    fixtures: Vec<(&'static str, Vec<u8>)>,
    key: [u8; 32],
    other_key: [u8; 32],
    sealed_sender: Vec<u8>,
    sealed_receiver: Vec<u8>,
}

impl Ctx {
    fn msg(&self, id: &str) -> Vec<u8> {
        self.msgs[id].clone()
    }
}

impl Fixtures for Ctx {
    fn state(&self, name: &str) -> Vec<u8> {
        self.fixtures
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("no fixture {name}"))
            .1
            .clone()
    }

    fn key(&self, name: &str) -> [u8; 32] {
        match name {
            "storage" => self.key,
            "other" => self.other_key,
            other => panic!("no key {other}"),
        }
    }

    fn identity(&self, name: &str) -> Vec<u8> {
        panic!("no identity {name}")
    }
}

/// Signs a message again (after an edit) with the first chain's key, as a
/// sender gone bad would.
fn resign(c: &Ctx, l: &Layout, b: &mut Vec<u8>) {
    b.truncate(l.start("signature"));
    *b = c.old.sign(b);
}

#[allow(clippy::ptr_arg, reason = "a `Mutation`: the table passes a `Vec`")]
fn flip_signature(_: &Ctx, l: &Layout, b: &mut Vec<u8>) {
    l.flip(b, "signature", 0, 1);
}

fn at_last_index(c: &Ctx, l: &Layout, b: &mut Vec<u8>) {
    l.put_u32(b, "index", u32::MAX);
    resign(c, l, b);
}

fn rows(c: &Ctx) -> Vec<Row<Ctx>> {
    let decrypt = |fixture| Op::Call("GroupReceiver::decrypt", fixture);
    let at_bob = decrypt("bob_receiver");
    let bob = |c: &Ctx| c.state("bob_receiver");
    let sender = |c: &Ctx| c.state("alice_sender");
    let m4 = |c: &Ctx| c.msg("m4");
    vec![
        row("message_empty", MESSAGE, |_| vec![], keep, e("Truncated")),
        row(
            "message_version_only",
            MESSAGE,
            |_| vec![1],
            keep,
            e("Truncated"),
        ),
        row(
            "message_unknown_version",
            MESSAGE,
            |c| c.msg("m0"),
            |_, l, b| l.put_u8(b, "version", 2),
            ef("UnsupportedVersion", json!({"found": 2})),
        ),
        // A short input: the version is checked before the length.
        row(
            "message_short_unknown_version",
            MESSAGE,
            |c| c.msg("m0"),
            |_, l, b| {
                b.truncate(20);
                l.put_u8(b, "version", 0);
            },
            ef("UnsupportedVersion", json!({"found": 0})),
        ),
        row(
            "message_wrong_type",
            MESSAGE,
            |c| c.msg("m0"),
            |_, l, b| l.put_u8(b, "type", 0x01),
            ef("WrongType", json!({"expected": 3, "found": 1})),
        ),
        row(
            "message_given_distribution",
            MESSAGE,
            |c| c.distribution.clone(),
            keep,
            ef("WrongType", json!({"expected": 3, "found": 4})),
        ),
        row(
            "message_one_byte_short",
            MESSAGE,
            |c| c.msg("m0"),
            |_, _, b| b.truncate(OVERHEAD - 1),
            e("Truncated"),
        ),
        row(
            "message_header_only",
            MESSAGE,
            |c| c.msg("m0"),
            |_, l, b| b.truncate(l.start("ciphertext")),
            e("Truncated"),
        ),
        padded(
            MAX_GROUP_MESSAGE_LEN + 1,
            row(
                "message_over_max_len",
                MESSAGE,
                |_| vec![1, 3],
                keep,
                e("TooLarge"),
            ),
        ),
        row(
            "distribution_truncated",
            DISTRIBUTION,
            |c| c.distribution.clone(),
            |_, _, b| {
                b.pop();
            },
            e("Truncated"),
        ),
        row(
            "distribution_trailing_byte",
            DISTRIBUTION,
            |c| c.distribution.clone(),
            |_, _, b| b.push(0),
            e("TrailingBytes"),
        ),
        row(
            "distribution_unknown_version",
            DISTRIBUTION,
            |c| c.distribution.clone(),
            |_, l, b| l.put_u8(b, "version", 0),
            ef("UnsupportedVersion", json!({"found": 0})),
        ),
        row(
            "distribution_given_sender_state",
            DISTRIBUTION,
            sender,
            keep,
            ef("WrongType", json!({"expected": 4, "found": 0x22})),
        ),
        row(
            "distribution_small_order_signing_key",
            DISTRIBUTION,
            |c| c.distribution.clone(),
            |_, l, b| l.put(b, "signing_key", &ED25519_SMALL_ORDER),
            e("InvalidPublicKey"),
        ),
        row(
            "distribution_non_canonical_signing_key",
            DISTRIBUTION,
            |c| c.distribution.clone(),
            |_, l, b| l.put(b, "signing_key", &P),
            e("InvalidPublicKey"),
        ),
        padded(
            MAX_STATE_LEN + 1,
            row(
                "distribution_far_oversized",
                DISTRIBUTION,
                |c| c.distribution.clone(),
                keep,
                e("TrailingBytes"),
            ),
        ),
        row(
            "sender_state_truncated",
            SENDER,
            sender,
            |_, _, b| {
                b.pop();
            },
            e("Truncated"),
        ),
        row(
            "sender_state_trailing_byte",
            SENDER,
            sender,
            |_, _, b| b.push(0),
            e("TrailingBytes"),
        ),
        row(
            "sender_state_unknown_version",
            SENDER,
            sender,
            |_, l, b| l.put_u8(b, "version", 2),
            ef("UnsupportedVersion", json!({"found": 2})),
        ),
        row(
            "sender_state_given_receiver_state",
            SENDER,
            bob,
            keep,
            ef("WrongType", json!({"expected": 0x22, "found": 0x23})),
        ),
        padded(
            MAX_STATE_LEN + 1,
            row(
                "sender_state_over_max_state_len",
                SENDER,
                sender,
                keep,
                e("TooLarge"),
            ),
        ),
        row(
            "receiver_state_truncated",
            RECEIVER,
            bob,
            |_, _, b| {
                b.pop();
            },
            e("Truncated"),
        ),
        row(
            "receiver_state_trailing_byte",
            RECEIVER,
            bob,
            |_, _, b| b.push(0),
            e("TrailingBytes"),
        ),
        row(
            "receiver_state_unknown_version",
            RECEIVER,
            bob,
            |_, l, b| l.put_u8(b, "version", 0),
            ef("UnsupportedVersion", json!({"found": 0})),
        ),
        row(
            "receiver_state_given_sender_state",
            RECEIVER,
            sender,
            keep,
            ef("WrongType", json!({"expected": 0x23, "found": 0x22})),
        ),
        row(
            "receiver_state_bad_flag",
            RECEIVER,
            bob,
            |_, l, b| l.put_u8(b, "authenticated", 2),
            e("InvalidEncoding"),
        ),
        row(
            "receiver_state_small_order_signing_key",
            RECEIVER,
            bob,
            |_, l, b| l.put(b, "signing_key", &ED25519_SMALL_ORDER),
            e("InvalidPublicKey"),
        ),
        row(
            "receiver_state_non_canonical_identity_dh_key",
            RECEIVER,
            bob,
            |_, l, b| l.put(b, "identity.dh", &P),
            e("InvalidPublicKey"),
        ),
        row(
            "receiver_state_too_many_cached_keys",
            RECEIVER,
            bob,
            |_, l, b| l.put_u16(b, "count", 257),
            e("InvalidEncoding"),
        ),
        // Bob's cache holds index 2 and next is 4: claim next = 2.
        row(
            "receiver_state_cached_index_not_below_next",
            RECEIVER,
            bob,
            |_, l, b| l.put_u32(b, "next", 2),
            e("InvalidEncoding"),
        ),
        // §4: the index is checked as soon as it is read, before its key.
        row(
            "receiver_state_cached_index_not_below_next_ends_after_index",
            RECEIVER,
            bob,
            |_, l, b| {
                l.put_u32(b, "next", 2);
                b.truncate(l.end_of("cache[0].index"));
            },
            e("InvalidEncoding"),
        ),
        // Two cached keys with the same index.
        row(
            "receiver_state_cached_indices_not_increasing",
            RECEIVER,
            bob,
            |_, l, b| {
                let entry = b[l.start("cache[0].index")..l.end_of("cache[0].key")].to_vec();
                l.put_u16(b, "count", 2);
                b.extend(entry);
            },
            e("InvalidEncoding"),
        ),
        padded(
            MAX_STATE_LEN + 1,
            row(
                "receiver_state_over_max_state_len",
                RECEIVER,
                bob,
                keep,
                e("TooLarge"),
            ),
        ),
        row(
            "sealed_receiver_opened_as_sender",
            Op::Unseal("GroupSender::unseal", "storage"),
            |c| c.sealed_receiver.clone(),
            keep,
            ef("WrongType", json!({"expected": 0x22, "found": 0x23})),
        ),
        row(
            "sealed_sender_opened_as_receiver",
            Op::Unseal("GroupReceiver::unseal", "storage"),
            |c| c.sealed_sender.clone(),
            keep,
            ef("WrongType", json!({"expected": 0x23, "found": 0x22})),
        ),
        row(
            "sealed_sender_tampered",
            Op::Unseal("GroupSender::unseal", "storage"),
            |c| c.sealed_sender.clone(),
            |_, _, b| *b.last_mut().expect("bytes") ^= 1,
            e("AuthenticationFailed"),
        ),
        row(
            "sealed_receiver_wrong_storage_key",
            Op::Unseal("GroupReceiver::unseal", "other"),
            |c| c.sealed_receiver.clone(),
            keep,
            e("AuthenticationFailed"),
        ),
        row(
            "replay_read_message",
            at_bob,
            |c| c.msg("m0"),
            keep,
            e("DuplicateMessage"),
        ),
        row(
            "replay_message_read_from_cache",
            at_bob,
            |c| c.msg("m1"),
            keep,
            e("DuplicateMessage"),
        ),
        row(
            "wrong_group",
            at_bob,
            m4,
            |_, l, b| l.flip(b, "group_id", 0, 1),
            e("UnknownGroupChain"),
        ),
        row(
            "unknown_chain",
            at_bob,
            |c| c.msg("r0"),
            keep,
            e("UnknownGroupChain"),
        ),
        // The rotated chain's key signs a message naming the old chain.
        row(
            "forged_signature_other_chain_key",
            at_bob,
            m4,
            |c, l, b| {
                b.truncate(l.start("signature"));
                *b = c.new.sign(b);
            },
            e("InvalidSignature"),
        ),
        row(
            "signature_bit_flipped",
            at_bob,
            m4,
            |_, _, b| *b.last_mut().expect("bytes") ^= 1,
            e("InvalidSignature"),
        ),
        row(
            "signature_s_plus_l",
            at_bob,
            m4,
            |_, l, b| add_l_to_s(&mut b[l.range("signature")]),
            e("InvalidSignature"),
        ),
        row(
            "tampered_ciphertext_unsigned",
            at_bob,
            m4,
            |_, l, b| l.flip(b, "ciphertext", 2, 1),
            e("InvalidSignature"),
        ),
        row(
            "tampered_ciphertext_resigned",
            at_bob,
            m4,
            |c, l, b| {
                l.flip(b, "ciphertext", 2, 1);
                resign(c, l, b);
            },
            e("AuthenticationFailed"),
        ),
        row(
            "tampered_salt_resigned",
            at_bob,
            m4,
            |c, l, b| {
                l.flip(b, "salt", 3, 1);
                resign(c, l, b);
            },
            e("AuthenticationFailed"),
        ),
        row(
            "tampered_cached_index_resigned",
            at_bob,
            |c| c.msg("m2"),
            |c, l, b| {
                l.flip(b, "ciphertext", 2, 1);
                resign(c, l, b);
            },
            e("AuthenticationFailed"),
        ),
        row(
            "index_changed_resigned",
            at_bob,
            m4,
            |c, l, b| {
                l.put_u32(b, "index", 9);
                resign(c, l, b);
            },
            e("AuthenticationFailed"),
        ),
        row(
            "trailing_byte_breaks_signature",
            at_bob,
            m4,
            |_, _, b| b.push(0),
            e("InvalidSignature"),
        ),
        row(
            "last_index",
            at_bob,
            m4,
            at_last_index,
            ef("GroupIndexOutOfRange", json!({"index": u32::MAX})),
        ),
        row(
            "jump_past_max",
            decrypt("carol_receiver"),
            |c| c.msg("m8"),
            keep,
            ef("GroupIndexOutOfRange", json!({"index": c.m8_index})),
        ),
        row(
            "evicted_key",
            decrypt("bob_receiver_evicted"),
            |c| c.msg("m2"),
            keep,
            e("DuplicateMessage"),
        ),
        row(
            "encrypt_at_last_index",
            Op::Call("GroupSender::encrypt", "exhausted_sender"),
            |_| b"late".to_vec(),
            keep,
            e("ChainExhausted"),
        ),
        padded(
            MAX_PLAINTEXT_LEN + 1,
            row(
                "encrypt_plaintext_over_max",
                Op::Call("GroupSender::encrypt", "alice_sender"),
                |_| vec![],
                keep,
                e("PlaintextTooLarge"),
            ),
        ),
        // §15.8: the signature is checked before the cache, duplicate and
        // range checks, so these fail with InvalidSignature, not with the
        // error their index would give.
        row(
            "last_index_bad_signature",
            at_bob,
            m4,
            |c, l, b| {
                at_last_index(c, l, b);
                flip_signature(c, l, b);
            },
            e("InvalidSignature"),
        ),
        row(
            "replay_read_message_bad_signature",
            at_bob,
            |c| c.msg("m0"),
            flip_signature,
            e("InvalidSignature"),
        ),
        row(
            "replay_message_read_from_cache_bad_signature",
            at_bob,
            |c| c.msg("m1"),
            flip_signature,
            e("InvalidSignature"),
        ),
        row(
            "jump_past_max_bad_signature",
            decrypt("carol_receiver"),
            |c| c.msg("m8"),
            flip_signature,
            e("InvalidSignature"),
        ),
        row(
            "evicted_key_bad_signature",
            decrypt("bob_receiver_evicted"),
            |c| c.msg("m2"),
            flip_signature,
            e("InvalidSignature"),
        ),
        // §2 Verify step 3: R is the identity point and [S]B - [k]A = R, so
        // only the small-order check on R rejects it.
        row(
            "signature_small_order_r",
            at_bob,
            m4,
            |c, l, b| {
                b.truncate(l.start("signature"));
                let sig = sign_small_order_r(&c.old.seed, &signed_data(b));
                b.extend(sig);
            },
            e("InvalidSignature"),
        ),
        // §15.12: PlaintextTooLarge is checked before ChainExhausted.
        padded(
            MAX_PLAINTEXT_LEN + 1,
            row(
                "encrypt_at_last_index_plaintext_over_max",
                Op::Call("GroupSender::encrypt", "exhausted_sender"),
                |_| vec![],
                keep,
                e("PlaintextTooLarge"),
            ),
        ),
        // §15.6 / §15.11: a distribution (so a receiver) may carry index
        // 2^32 - 1; such a receiver decrypts nothing.
        row(
            "receiver_at_last_index",
            decrypt("receiver_at_last_index"),
            m4,
            at_last_index,
            ef("GroupIndexOutOfRange", json!({"index": u32::MAX})),
        ),
        // §15.11 / §10.4: the size bound applies to the sealed input.
        padded(
            MAX_STATE_LEN + 1,
            row(
                "sealed_sender_over_max_state_len",
                Op::Unseal("GroupSender::unseal", "storage"),
                |c| c.sealed_sender.clone(),
                |_, l, b| b.truncate(l.end_of("salt")),
                e("TooLarge"),
            ),
        ),
        padded(
            MAX_STATE_LEN + 1,
            row(
                "sealed_receiver_over_max_state_len",
                Op::Unseal("GroupReceiver::unseal", "storage"),
                |c| c.sealed_receiver.clone(),
                |_, l, b| b.truncate(l.end_of("salt")),
                e("TooLarge"),
            ),
        ),
    ]
}

/// The negative vectors; adds the fixtures they need to the run's.
pub(crate) fn vectors(run: &mut Run, storage: &[u8; 32]) -> Vec<Value> {
    let old = run.alice_old.clone();
    // Exhausted: the old chain at index 2^32 - 1.
    let mut levels = old.levels;
    jump(old.index, &mut levels, u32::MAX);
    let exhausted = GSender {
        index: u32::MAX,
        levels,
        ..old.clone()
    };
    let other_key = run.m.draw::<32>();
    let seal_salt = run.m.draw::<32>();
    let state = |name: &str| {
        run.fixtures
            .iter()
            .find(|(n, _)| *n == name)
            .expect("a fixture")
            .1
            .clone()
    };
    let (sealed_sender, _, _) = seal_state(storage, &seal_salt, &state("alice_sender"));
    let (sealed_receiver, _, _) = seal_state(storage, &seal_salt, &state("bob_receiver"));
    // A receiver installed from the exhausted sender's distribution.
    let receiver_at_last = GReceiver::install(&exhausted.distribution(), None)
        .expect("install")
        .encode();
    same(
        "receiver at the last index",
        &GroupReceiver::import_unauthenticated(&exhausted.distribution())
            .expect("import")
            .to_bytes(),
        &receiver_at_last,
    );
    run.fixtures.push(("exhausted_sender", exhausted.encode()));
    run.fixtures
        .push(("receiver_at_last_index", receiver_at_last));
    let c = Ctx {
        msgs: run.sent.clone(),
        distribution: old.distribution(),
        old,
        new: run.alice_new.clone(),
        m8_index: {
            let m8 = &run.sent["m8"];
            testkit::layout::group_message(m8).u32(m8, "index")
        },
        fixtures: run.fixtures.clone(),
        key: *storage,
        other_key,
        sealed_sender,
        sealed_receiver,
    };
    table_vectors(&c, rows(&c), &json!({ "kind": "negative" }))
}
