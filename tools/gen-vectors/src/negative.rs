//! negative.json: inputs that must fail, each with its exact error, as a
//! table (name, operation with its fixtures, mutation, expected error): a
//! row for each decoding rule of §4, §5, §9, §10.2, §10.3 and §10.5, and
//! rows with two faults for each check order (§4, §5.7, §7.2, §7.3, §8.5,
//! §8.6, §10.5): the first check decides. A few rows with `"error": null`
//! pin the boundary that must still pass.

use curve25519_dalek::edwards::CompressedEdwardsY;
use serde_json::{Value, json};
use testkit::hex::hex;
use testkit::layout;
use testkit::model::keys::{identity_key_bytes, kem_signed_data, spk_signed_data};
use testkit::model::primitives::{
    MAX_MESSAGE, MAX_PLAINTEXT, MAX_STATE, ed25519_public, sign, x_pub,
};
use testkit::model::sealed::seal_with;
use testkit::model::{Dev, Layout, Sess, with};
use testkit::points::{ED25519_SMALL_ORDER, P, X25519_HIGH_BIT, X25519_ORDER_8, add_l_to_s};

use crate::common::{device, ik, recv, send};
use crate::forgery::sign_small_order_r;
use crate::rec::{Rec, e, ef, file, out};
use crate::table::Table;

const LABEL: &str = "sotto v2 vectors negative";

/// Values the rows are made from.
struct Ctx {
    /// Alice's PQXDH prekey message with one-time prekey 1 and one-time
    /// KEM prekey 2.
    m1: Vec<u8>,
    /// A replayable PQXDH prekey message (no one-time prekey, last-resort
    /// KEM prekey 1).
    m_replay: Vec<u8>,
    /// A classical prekey message (one-time prekey 2, no KEM).
    m_classical: Vec<u8>,
    /// Alice's message on her second chain, read by Bob.
    m_read: Vec<u8>,
    /// Alice's message on her second chain that Bob skipped.
    m_skipped: Vec<u8>,
    /// Alice's first message on her second chain... the first one of it.
    a_ik: Vec<u8>,
    b_ik: Vec<u8>,
    bob_seed: [u8; 32],
    /// Bob's bundle with one-time prekey 2 and one-time KEM prekey 3.
    bundle: Vec<u8>,
    /// Bob's bundle without a KEM prekey.
    bundle_classical: Vec<u8>,
    /// A KEM prekey of Bob's, encoded.
    kem_prekey: Vec<u8>,
    storage: [u8; 32],
    sealed: Vec<u8>,
}

fn decode(encoding: &str, input: &[u8]) -> Value {
    json!({ "op": "decode", "encoding": encoding, "input": hex(input) })
}

fn decode_state(encoding: &str, name: &str) -> Value {
    json!({ "op": "decode", "encoding": encoding, "state": name })
}

fn decode_padded(encoding: &str, input: &[u8], len: usize) -> Value {
    json!({ "op": "decode", "encoding": encoding, "input": hex(input), "input_pad_to": len })
}

/// A 32-byte value that is not an Ed25519 point (no square root for x).
fn not_a_point() -> [u8; 32] {
    (2u8..)
        .map(|b| {
            let mut k = [0u8; 32];
            k[0] = b;
            k
        })
        .find(|k| CompressedEdwardsY(*k).decompress().is_none())
        .unwrap()
}

/// 2^255 - 1: top bit clear, value above p.
fn above_p() -> [u8; 32] {
    let mut k = [0xff; 32];
    k[31] = 0x7f;
    k
}

fn setup(t: &mut Table) -> Ctx {
    let mut r = Rec::new(&format!("{LABEL} setup"));
    device(&mut r, "alice");
    device(&mut r, "bob");
    r.ok(json!({ "op": "generate_one_time_prekeys", "device": "bob", "count": 2 }));
    r.ok(json!({ "op": "generate_kem_prekeys", "device": "bob", "count": 2 }));
    let bundle_of = |r: &mut Rec, opk: Value, kem: Value| {
        out(
            &r.ok(json!({ "op": "bundle", "device": "bob", "one_time_prekey_id": opk, "kem_prekey_id": kem })),
            "bundle",
        )
    };
    let b1 = bundle_of(&mut r, 1.into(), 2.into());
    let b_replay = bundle_of(&mut r, Value::Null, 1.into());
    let b_classical = bundle_of(&mut r, 2.into(), Value::Null);
    let bundle = bundle_of(&mut r, 2.into(), 3.into());
    let initiate = |r: &mut Rec, session: &str, bundle: &[u8], policy: &str| {
        r.ok(json!({
            "op": "initiate", "device": "alice", "session": session, "bundle": hex(bundle),
            "expected": null, "policy": policy,
        }));
    };
    initiate(&mut r, "alice_initiated", &b1, "PostQuantumRequired");
    t.fixture("alice_initiated", &r.state("alice_initiated"));
    initiate(&mut r, "alice_bob", &b1, "PostQuantumRequired");
    let m1 = send(&mut r, "alice_bob", b"first");
    initiate(&mut r, "alice_replay", &b_replay, "PostQuantumRequired");
    let m_replay = send(&mut r, "alice_replay", b"replayable");
    initiate(&mut r, "alice_classical", &b_classical, "ClassicalAllowed");
    let m_classical = send(&mut r, "alice_classical", b"classical");
    t.fixture("alice_device", &r.state("alice"));
    t.fixture("bob_device", &r.state("bob"));
    r.ok(json!({ "op": "accept", "device": "bob", "session": "bob_alice", "message": hex(&m1), "policy": "PostQuantumRequired" }));
    r.ok(json!({ "op": "accept", "device": "bob", "session": "bob_replay", "message": hex(&m_replay), "policy": "PostQuantumRequired" }));
    t.fixture("bob_device_after_accepts", &r.state("bob"));
    t.fixture_recipe(
        "bob_device_exhausted",
        json!({ "kind": "device_fill", "from": "bob_device", "base_keys": 1000 }),
    );
    let reply = send(&mut r, "bob_alice", b"reply");
    recv(&mut r, "alice_bob", &reply);
    let m_skipped = send(&mut r, "alice_bob", b"skipped");
    let m_read = send(&mut r, "alice_bob", b"read");
    recv(&mut r, "bob_alice", &m_read);
    // Bob: two receiving chains (the first closed), one skipped key, no
    // sending chain.
    t.fixture("bob_session", &r.state("bob_alice"));
    t.fixture("alice_session", &r.state("alice_bob"));
    send(&mut r, "bob_alice", b"reply 2");
    t.fixture("bob_session_sending", &r.state("bob_alice"));
    t.fixture_recipe(
        "bob_session_sending_exhausted",
        json!({ "kind": "session_edit", "from": "bob_session_sending", "ns": u32::MAX }),
    );
    t.fixture_recipe(
        "bob_session_receiving_near_max",
        json!({ "kind": "session_edit", "from": "bob_session", "receiving_next": u32::MAX - 1000 }),
    );
    let bob = Dev::decode(&r.state("bob")).unwrap();
    let kem_prekey = bob.last_resort_kem().public().encoded();
    let storage = r.rng.draw::<32>();
    let salt = r.rng.draw::<32>();
    let sealed = seal_with(&storage, b"session/alice", &r.state("bob_alice"), &salt).bytes;
    Ctx {
        m1,
        m_replay,
        m_classical,
        m_read,
        m_skipped,
        a_ik: ik(&r, "alice"),
        b_ik: ik(&r, "bob"),
        bob_seed: bob.seed,
        bundle,
        bundle_classical: b_classical,
        kem_prekey,
        storage,
        sealed,
    }
}

fn message_rows(t: &mut Table, c: &Ctx) {
    let m = &c.m_read;
    let l = layout::message(m);
    let p = &c.m1;
    let pl = layout::message(p);
    let edit = |b: &[u8], f: &dyn Fn(&mut Vec<u8>)| with(b, |x| f(x));
    t.fails(
        "message_empty",
        "the empty input",
        decode("Message", &[]),
        e("Truncated"),
    );
    t.fails(
        "message_version_only",
        "the one byte 02",
        decode("Message", &[2]),
        e("Truncated"),
    );
    t.fails(
        "message_one_byte_v1",
        "the one byte 01",
        decode("Message", &[1]),
        ef("UnsupportedVersion", json!({ "found": 1 })),
    );
    t.fails(
        "message_unknown_version",
        "a ratchet message with version 03",
        decode("Message", &edit(m, &|b| l.put_u8(b, "version", 3))),
        ef("UnsupportedVersion", json!({ "found": 3 })),
    );
    t.fails(
        "message_version_1",
        "a ratchet message with version 01 (protocol version 1)",
        decode("Message", &edit(m, &|b| l.put_u8(b, "version", 1))),
        ef("UnsupportedVersion", json!({ "found": 1 })),
    );
    t.fails(
        "message_wrong_type",
        "a ratchet message with type 0x20",
        decode("Message", &edit(m, &|b| l.put_u8(b, "type", 0x20))),
        ef("WrongType", json!({ "expected": 1, "found": 0x20 })),
    );
    t.fails(
        "message_group_type",
        "a ratchet message with type 0x03",
        decode("Message", &edit(m, &|b| l.put_u8(b, "type", 3))),
        ef("WrongType", json!({ "expected": 1, "found": 3 })),
    );
    t.fails(
        "message_truncated_in_salt",
        "cut 1 byte into the salt",
        decode("Message", &m[..l.start("salt") + 1]),
        e("Truncated"),
    );
    t.fails(
        "message_truncated_tag",
        "cut after 15 bytes of ciphertext",
        decode("Message", &m[..l.start("ciphertext") + 15]),
        e("Truncated"),
    );
    t.row(
        "message_empty_plaintext",
        "cut after 16 bytes of ciphertext (an empty plaintext's tag)",
        decode("Message", &m[..l.start("ciphertext") + 16]),
        None,
    );
    t.fails(
        "message_non_canonical_ratchet_key",
        "ratchet_key = 2^255 - 1",
        decode(
            "Message",
            &edit(m, &|b| l.put(b, "ratchet_key", &above_p())),
        ),
        e("InvalidPublicKey"),
    );
    let mut p_minus_1 = P;
    p_minus_1[0] -= 1;
    t.row(
        "message_ratchet_key_p_minus_1",
        "ratchet_key = p - 1 (canonical: the largest u below p)",
        decode(
            "Message",
            &edit(m, &|b| l.put(b, "ratchet_key", &p_minus_1)),
        ),
        None,
    );
    t.fails(
        "message_ratchet_key_p",
        "ratchet_key = p",
        decode("Message", &edit(m, &|b| l.put(b, "ratchet_key", &P))),
        e("InvalidPublicKey"),
    );
    t.fails(
        "message_ratchet_key_high_bit",
        "ratchet_key with bit 255 set",
        decode(
            "Message",
            &edit(m, &|b| l.put(b, "ratchet_key", &X25519_HIGH_BIT)),
        ),
        e("InvalidPublicKey"),
    );
    t.row(
        "message_low_order_ratchet_key_parses",
        "ratchet_key = an order-8 point (canonical)",
        decode(
            "Message",
            &edit(m, &|b| l.put(b, "ratchet_key", &X25519_ORDER_8)),
        ),
        None,
    );
    t.fails(
        "message_bad_key_then_truncated",
        "ratchet_key = 2^255 - 1, cut in the salt: the key is checked when read",
        decode(
            "Message",
            &edit(m, &|b| {
                l.put(b, "ratchet_key", &above_p());
                b.truncate(l.start("salt") + 1);
            }),
        ),
        e("InvalidPublicKey"),
    );
    t.fails(
        "message_over_max_len",
        "02 01 zero-padded to MAX_MESSAGE_LEN + 1",
        decode_padded("Message", &[2, 1], MAX_MESSAGE + 1),
        e("TooLarge"),
    );
    t.fails(
        "message_over_max_len_any_version",
        "01 07 zero-padded to MAX_MESSAGE_LEN + 1: length first, whatever the first bytes",
        decode_padded("Message", &[1, 7], MAX_MESSAGE + 1),
        e("TooLarge"),
    );
    t.fails(
        "ratchet_ciphertext_over_max_plaintext",
        "a ratchet header and MAX_PLAINTEXT_LEN + 17 zero bytes",
        decode_padded(
            "Message",
            &m[..l.start("ciphertext")],
            58 + MAX_PLAINTEXT + 17,
        ),
        e("TooLarge"),
    );
    t.row(
        "ratchet_ciphertext_at_max_plaintext",
        "a ratchet header and MAX_PLAINTEXT_LEN + 16 zero bytes",
        decode_padded(
            "Message",
            &m[..l.start("ciphertext")],
            58 + MAX_PLAINTEXT + 16,
        ),
        None,
    );
    t.row(
        "prekey_message_at_max_len",
        "a PQXDH prekey message with a one-time prekey, zero-padded to MAX_MESSAGE_LEN",
        decode_padded("Message", &p[..pl.start("ratchet.ciphertext")], MAX_MESSAGE),
        None,
    );
    t.fails(
        "prekey_message_bad_opk_flag",
        "has_opk = 2",
        decode("Message", &edit(p, &|b| pl.put_u8(b, "has_opk", 2))),
        e("InvalidEncoding"),
    );
    t.fails(
        "prekey_message_bad_kem_flag",
        "has_kem = 2",
        decode("Message", &edit(p, &|b| pl.put_u8(b, "has_kem", 2))),
        e("InvalidEncoding"),
    );
    t.fails(
        "prekey_message_small_order_identity",
        "identity = the Ed25519 identity point",
        decode(
            "Message",
            &edit(p, &|b| pl.put(b, "identity", &ED25519_SMALL_ORDER)),
        ),
        e("InvalidPublicKey"),
    );
    t.fails(
        "prekey_message_non_canonical_identity",
        "identity with y = p (the non-canonical encoding of y = 0)",
        decode("Message", &edit(p, &|b| pl.put(b, "identity", &P))),
        e("InvalidPublicKey"),
    );
    t.fails(
        "prekey_message_identity_not_a_point",
        "identity with no x for its y",
        decode(
            "Message",
            &edit(p, &|b| pl.put(b, "identity", &not_a_point())),
        ),
        e("InvalidPublicKey"),
    );
    t.fails(
        "prekey_message_non_canonical_base_key",
        "base_key = 2^255 - 1",
        decode("Message", &edit(p, &|b| pl.put(b, "base_key", &above_p()))),
        e("InvalidPublicKey"),
    );
    t.fails(
        "prekey_message_identity_before_flag",
        "identity small order and has_opk = 2: identity is read first",
        decode(
            "Message",
            &edit(p, &|b| {
                pl.put(b, "identity", &ED25519_SMALL_ORDER);
                pl.put_u8(b, "has_opk", 2);
            }),
        ),
        e("InvalidPublicKey"),
    );
    t.fails(
        "prekey_message_truncated_in_ct",
        "cut 100 bytes into the KEM ciphertext",
        decode("Message", &p[..pl.start("ct") + 100]),
        e("Truncated"),
    );
    t.fails(
        "prekey_message_no_ratchet_message",
        "cut after the KEM ciphertext",
        decode("Message", &p[..pl.end_of("ct")]),
        e("Truncated"),
    );
    t.fails(
        "prekey_message_embedded_version",
        "the embedded ratchet message's version = 01",
        decode("Message", &edit(p, &|b| pl.put_u8(b, "ratchet.version", 1))),
        ef("UnsupportedVersion", json!({ "found": 1 })),
    );
    t.fails(
        "prekey_message_embedded_type",
        "the embedded ratchet message's type = 02",
        decode("Message", &edit(p, &|b| pl.put_u8(b, "ratchet.type", 2))),
        ef("WrongType", json!({ "expected": 1, "found": 2 })),
    );
    t.fails(
        "prekey_message_embedded_bad_key",
        "the embedded ratchet key = 2^255 - 1",
        decode(
            "Message",
            &edit(p, &|b| pl.put(b, "ratchet.ratchet_key", &above_p())),
        ),
        e("InvalidPublicKey"),
    );
    let pc = &c.m_classical;
    let pcl = layout::message(pc);
    t.fails("classical_prekey_message_has_kem_truncated", "the classical prekey message with has_kem = 1: a KEM id and ciphertext are read from the ratchet message", decode("Message", &edit(pc, &|b| pcl.put_u8(b, "has_kem", 1))), e("Truncated"));
}

fn key_rows(t: &mut Table, c: &Ctx) {
    let id = &c.a_ik;
    let il = layout::identity_key(id);
    let edit = |b: &[u8], f: &dyn Fn(&mut Vec<u8>)| with(b, |x| f(x));
    t.fails(
        "identity_key_trailing_bytes",
        "one byte appended",
        decode("IdentityKey", &edit(id, &|b| b.push(0))),
        e("TrailingBytes"),
    );
    t.fails(
        "identity_key_truncated",
        "the last byte cut",
        decode("IdentityKey", &id[..33]),
        e("Truncated"),
    );
    t.fails(
        "identity_key_short_v1",
        "01 10 (a version 1 header only)",
        decode("IdentityKey", &[1, 0x10]),
        ef("UnsupportedVersion", json!({ "found": 1 })),
    );
    t.fails(
        "identity_key_small_order",
        "identity = the Ed25519 identity point",
        decode(
            "IdentityKey",
            &edit(id, &|b| il.put(b, "identity", &ED25519_SMALL_ORDER)),
        ),
        e("InvalidPublicKey"),
    );
    t.fails(
        "identity_key_not_a_point",
        "identity with no x for its y",
        decode(
            "IdentityKey",
            &edit(id, &|b| il.put(b, "identity", &not_a_point())),
        ),
        e("InvalidPublicKey"),
    );
    t.fails(
        "identity_key_non_canonical",
        "identity with y = p",
        decode("IdentityKey", &edit(id, &|b| il.put(b, "identity", &P))),
        e("InvalidPublicKey"),
    );
    let b = layout::bundle(&c.bundle);
    let spk = [
        &[2u8, 0x11][..],
        &c.bundle[b.start("spk_id")..b.end_of("spk_signature")],
    ]
    .concat();
    let sl = layout::signed_prekey(&spk);
    t.fails(
        "identity_key_wrong_type",
        "a signed prekey",
        decode("IdentityKey", &spk),
        ef("WrongType", json!({ "expected": 0x10, "found": 0x11 })),
    );
    t.fails(
        "signed_prekey_wrong_type",
        "an identity key",
        decode("SignedPreKey", id),
        ef("WrongType", json!({ "expected": 0x11, "found": 0x10 })),
    );
    t.fails(
        "signed_prekey_non_canonical_public",
        "public = 2^255 - 1",
        decode(
            "SignedPreKey",
            &edit(&spk, &|x| sl.put(x, "public", &above_p())),
        ),
        e("InvalidPublicKey"),
    );
    t.fails(
        "signed_prekey_truncated",
        "the last byte of the signature cut",
        decode("SignedPreKey", &spk[..spk.len() - 1]),
        e("Truncated"),
    );
    t.fails(
        "signed_prekey_trailing_bytes",
        "one byte appended",
        decode("SignedPreKey", &edit(&spk, &|x| x.push(0))),
        e("TrailingBytes"),
    );
    let opk = [
        &[2u8, 0x12][..],
        &c.bundle[b.start("opk_id")..b.end_of("opk")],
    ]
    .concat();
    let ol = layout::one_time_prekey(&opk);
    t.fails(
        "one_time_prekey_trailing_bytes",
        "one byte appended",
        decode("OneTimePreKey", &edit(&opk, &|x| x.push(0))),
        e("TrailingBytes"),
    );
    t.fails(
        "one_time_prekey_high_bit",
        "public with bit 255 set",
        decode(
            "OneTimePreKey",
            &edit(&opk, &|x| ol.put(x, "public", &X25519_HIGH_BIT)),
        ),
        e("InvalidPublicKey"),
    );
    let k = &c.kem_prekey;
    let kl = layout::kem_prekey(k);
    t.fails(
        "kem_prekey_bad_kind",
        "kind = 2",
        decode("KemPreKey", &edit(k, &|x| kl.put_u8(x, "kind", 2))),
        e("InvalidEncoding"),
    );
    t.fails(
        "kem_prekey_bad_alg",
        "alg = 2",
        decode("KemPreKey", &edit(k, &|x| kl.put_u8(x, "alg", 2))),
        e("InvalidEncoding"),
    );
    t.fails(
        "kem_prekey_alg_0",
        "alg = 0",
        decode("KemPreKey", &edit(k, &|x| kl.put_u8(x, "alg", 0))),
        e("InvalidEncoding"),
    );
    t.fails(
        "kem_prekey_invalid_ek",
        "the first 12-bit coefficient of ek = 4095 (>= q)",
        decode(
            "KemPreKey",
            &edit(k, &|x| {
                let s = kl.start("ek");
                x[s] = 0xff;
                x[s + 1] |= 0x0f;
            }),
        ),
        e("InvalidPublicKey"),
    );
    t.fails(
        "kem_prekey_invalid_ek_last_coefficient",
        "the last 12-bit coefficient of ek = 3329 (= q)",
        decode(
            "KemPreKey",
            &edit(k, &|x| {
                let end = kl.start("ek") + 1536;
                x[end - 2] = (x[end - 2] & 0x0f) | 0x10;
                x[end - 1] = 0xd0;
            }),
        ),
        e("InvalidPublicKey"),
    );
    t.fails(
        "kem_prekey_bad_kind_and_bad_ek",
        "kind = 2 and an invalid ek: kind is read first",
        decode(
            "KemPreKey",
            &edit(k, &|x| {
                kl.put_u8(x, "kind", 2);
                let s = kl.start("ek");
                x[s] = 0xff;
                x[s + 1] |= 0x0f;
            }),
        ),
        e("InvalidEncoding"),
    );
    t.fails(
        "kem_prekey_truncated",
        "the last byte cut",
        decode("KemPreKey", &k[..k.len() - 1]),
        e("Truncated"),
    );
    t.fails(
        "kem_prekey_trailing_bytes",
        "one byte appended",
        decode("KemPreKey", &edit(k, &|x| x.push(0))),
        e("TrailingBytes"),
    );
    t.fails(
        "kem_prekey_wrong_type",
        "a bundle",
        decode("KemPreKey", &c.bundle),
        ef("WrongType", json!({ "expected": 0x14, "found": 0x13 })),
    );
}

/// Bob's bundle with its KEM signature made again over the edited fields,
/// or its signed prekey signature.
fn resign(c: &Ctx, bundle: &mut [u8], l: &Layout) {
    let id = l.u32(bundle, "spk_id");
    let spk = l.a32(bundle, "spk");
    l.put(
        bundle,
        "spk_signature",
        &sign(&c.bob_seed, &spk_signed_data(id, &spk)),
    );
    if l.get("kem_id").is_some() {
        let kid = l.u32(bundle, "kem_id");
        let kind = l.slice(bundle, "kind")[0];
        let ek = l.slice(bundle, "ek").to_vec();
        l.put(
            bundle,
            "kem_signature",
            &sign(&c.bob_seed, &kem_signed_data(kid, kind, &ek)),
        );
    }
}

fn bundle_rows(t: &mut Table, c: &Ctx) {
    let b = &c.bundle;
    let l = layout::bundle(b);
    let edit = |f: &dyn Fn(&mut Vec<u8>)| with(b, |x| f(x));
    let verify = |bundle: &[u8], expected: Option<&[u8]>| json!({ "op": "verify_bundle", "bundle": hex(bundle), "expected": expected.map(hex) });
    t.fails(
        "bundle_bad_opk_flag",
        "has_opk = 2",
        decode("PreKeyBundle", &edit(&|x| l.put_u8(x, "has_opk", 2))),
        e("InvalidEncoding"),
    );
    t.fails(
        "bundle_bad_kem_flag",
        "has_kem = 2",
        decode("PreKeyBundle", &edit(&|x| l.put_u8(x, "has_kem", 2))),
        e("InvalidEncoding"),
    );
    t.fails(
        "bundle_small_order_identity",
        "identity = the Ed25519 identity point",
        decode(
            "PreKeyBundle",
            &edit(&|x| l.put(x, "identity", &ED25519_SMALL_ORDER)),
        ),
        e("InvalidPublicKey"),
    );
    t.fails(
        "bundle_non_canonical_spk",
        "spk = 2^255 - 1",
        decode("PreKeyBundle", &edit(&|x| l.put(x, "spk", &above_p()))),
        e("InvalidPublicKey"),
    );
    t.fails(
        "bundle_non_canonical_opk",
        "opk = p",
        decode("PreKeyBundle", &edit(&|x| l.put(x, "opk", &P))),
        e("InvalidPublicKey"),
    );
    t.fails(
        "bundle_kem_bad_kind",
        "kind = 2",
        decode("PreKeyBundle", &edit(&|x| l.put_u8(x, "kind", 2))),
        e("InvalidEncoding"),
    );
    t.fails(
        "bundle_kem_bad_alg",
        "alg = 2",
        decode("PreKeyBundle", &edit(&|x| l.put_u8(x, "alg", 2))),
        e("InvalidEncoding"),
    );
    t.fails(
        "bundle_kem_invalid_ek",
        "the first coefficient of ek = 4095",
        decode(
            "PreKeyBundle",
            &edit(&|x| {
                let s = l.start("ek");
                x[s] = 0xff;
                x[s + 1] |= 0x0f;
            }),
        ),
        e("InvalidPublicKey"),
    );
    t.fails(
        "bundle_truncated_kem_signature",
        "the last byte cut",
        decode("PreKeyBundle", &b[..b.len() - 1]),
        e("Truncated"),
    );
    t.fails(
        "bundle_trailing_bytes",
        "one byte appended",
        decode("PreKeyBundle", &edit(&|x| x.push(0))),
        e("TrailingBytes"),
    );
    t.fails(
        "bundle_without_kem_trailing",
        "has_kem = 0 with the KEM prekey still there",
        decode("PreKeyBundle", &edit(&|x| l.put_u8(x, "has_kem", 0))),
        e("TrailingBytes"),
    );
    t.row(
        "bundle_verifies",
        "none: Bob's bundle, expected identity Bob",
        verify(b, Some(&c.b_ik)),
        None,
    );
    t.fails(
        "bundle_bad_spk_signature",
        "one bit of spk_signature's R flipped",
        verify(&edit(&|x| l.flip(x, "spk_signature", 0, 1)), None),
        e("InvalidSignature"),
    );
    t.fails(
        "bundle_bad_kem_signature",
        "one bit of kem_signature's R flipped",
        verify(&edit(&|x| l.flip(x, "kem_signature", 0, 1)), None),
        e("InvalidSignature"),
    );
    t.fails(
        "bundle_kem_kind_flipped",
        "kind 0 -> 1 (the kind is signed)",
        verify(&edit(&|x| l.put_u8(x, "kind", 1)), None),
        e("InvalidSignature"),
    );
    t.fails(
        "bundle_kem_id_changed",
        "kem_id + 1 (the id is signed)",
        verify(
            &edit(&|x| {
                let v = l.u32(x, "kem_id");
                l.put_u32(x, "kem_id", v + 1);
            }),
            None,
        ),
        e("InvalidSignature"),
    );
    t.fails(
        "bundle_spk_id_changed",
        "spk_id + 1 (the id is signed)",
        verify(
            &edit(&|x| {
                let v = l.u32(x, "spk_id");
                l.put_u32(x, "spk_id", v + 1);
            }),
            None,
        ),
        e("InvalidSignature"),
    );
    t.row(
        "bundle_opk_swapped_verifies",
        "opk replaced by another key: one-time prekeys are not signed",
        verify(&edit(&|x| l.put(x, "opk", &x_pub(&[7; 32]))), None),
        None,
    );
    t.fails(
        "bundle_spk_signature_s_plus_l",
        "spk_signature's S + L",
        verify(
            &edit(&|x| add_l_to_s(&mut x[l.range("spk_signature")])),
            None,
        ),
        e("InvalidSignature"),
    );
    t.fails(
        "bundle_kem_signature_s_plus_l",
        "kem_signature's S + L",
        verify(
            &edit(&|x| add_l_to_s(&mut x[l.range("kem_signature")])),
            None,
        ),
        e("InvalidSignature"),
    );
    let spk_data = spk_signed_data(l.u32(b, "spk_id"), &l.a32(b, "spk"));
    let forged = sign_small_order_r(&c.bob_seed, &spk_data);
    t.fails("bundle_signature_small_order_r", "spk_signature by Bob's key with R = the identity point and S = k * a mod L: the equation holds, step 3 of Verify rejects it", verify(&edit(&|x| l.put(x, "spk_signature", &forged)), None), e("InvalidSignature"));
    t.fails(
        "bundle_for_other_identity",
        "expected identity Alice",
        verify(b, Some(&c.a_ik)),
        e("IdentityMismatch"),
    );
    t.fails("bundle_for_other_identity_bad_signature", "expected identity Alice and one bit of spk_signature flipped: the identity is compared first", verify(&edit(&|x| l.flip(x, "spk_signature", 0, 1)), Some(&c.a_ik)), e("IdentityMismatch"));
    t.fails(
        "bundle_bad_spk_and_kem_signatures",
        "both signatures broken: spk_signature is checked first (the error is the same)",
        verify(
            &edit(&|x| {
                l.flip(x, "spk_signature", 0, 1);
                l.flip(x, "kem_signature", 0, 1);
            }),
            None,
        ),
        e("InvalidSignature"),
    );
    // A KEM prekey signed by Alice in Bob's bundle.
    let alice_seed_kem = {
        let mut x = b.clone();
        let kid = l.u32(&x, "kem_id");
        let ek = l.slice(&x, "ek").to_vec();
        // Any other signer: a key not Bob's.
        let other = [9u8; 32];
        assert_ne!(ed25519_public(&other), l.a32(&x, "identity"));
        l.put(
            &mut x,
            "kem_signature",
            &sign(&other, &kem_signed_data(kid, 0, &ek)),
        );
        x
    };
    t.fails(
        "bundle_kem_prekey_of_another_signer",
        "the KEM prekey signed by another key",
        verify(&alice_seed_kem, None),
        e("InvalidSignature"),
    );
}

fn initiate_rows(t: &mut Table, c: &Ctx) {
    let init = |bundle: &[u8], policy: &str| {
        json!({
            "op": "initiate", "device": "alice_device", "session": "alice_new", "bundle": hex(bundle),
            "expected": null, "policy": policy,
        })
    };
    let b = &c.bundle;
    let l = layout::bundle(b);
    let bc = &c.bundle_classical;
    let lc = layout::bundle(bc);
    t.fails(
        "initiate_without_kem_default_policy",
        "a bundle without a KEM prekey under PostQuantumRequired: nothing drawn",
        init(bc, "PostQuantumRequired"),
        e("PostQuantumRequired"),
    );
    t.fails(
        "initiate_bad_signature_before_policy",
        "no KEM prekey and one bit of spk_signature flipped: the bundle is verified first",
        init(
            &with(bc, |x| lc.flip(x, "spk_signature", 0, 1)),
            "PostQuantumRequired",
        ),
        e("InvalidSignature"),
    );
    let low_spk = |bundle: &[u8], bl: &Layout| {
        with(bundle, |x| {
            bl.put(x, "spk", &X25519_ORDER_8);
            resign(c, x, bl);
        })
    };
    t.fails(
        "initiate_low_order_spk",
        "spk = an order-8 point, signed again by Bob: DH1 is all zero after EK and m are drawn",
        init(&low_spk(b, &l), "PostQuantumRequired"),
        e("NonContributoryKey"),
    );
    t.fails("initiate_low_order_spk_without_kem", "no KEM prekey and a low-order spk (signed again) under PostQuantumRequired: the policy is checked before any DH", init(&low_spk(bc, &lc), "PostQuantumRequired"), e("PostQuantumRequired"));
    t.fails(
        "initiate_low_order_opk",
        "opk = an order-8 point (not signed): DH4 is all zero",
        init(
            &with(b, |x| l.put(x, "opk", &X25519_ORDER_8)),
            "PostQuantumRequired",
        ),
        e("NonContributoryKey"),
    );
    t.fails(
        "initiate_other_identity",
        "expected identity Alice for Bob's bundle",
        json!({
            "op": "initiate", "device": "alice_device", "session": "alice_new", "bundle": hex(b),
            "expected": hex(&c.a_ik), "policy": "PostQuantumRequired",
        }),
        e("IdentityMismatch"),
    );
}

/// A prekey message with its embedded ratchet header's N set to `n` (the
/// tag no longer verifies).
fn with_n(m: &[u8], n: u32) -> Vec<u8> {
    let l = layout::message(m);
    with(m, |x| l.put_u32(x, "ratchet.n", n))
}

fn accept_rows(t: &mut Table, c: &Ctx) {
    let acc = |device: &str, m: &[u8], policy: &str| json!({ "op": "accept", "device": device, "session": "bob_new", "message": hex(m), "policy": policy });
    let d = "bob_device";
    let p = &c.m1;
    let l = layout::message(p);
    let r = &c.m_replay;
    let rl = layout::message(r);
    let pc = &c.m_classical;
    let pcl = layout::message(pc);
    t.row(
        "accept_succeeds",
        "none: Alice's first message, one-time prekey 1 and one-time KEM prekey 2",
        acc(d, p, "PostQuantumRequired"),
        None,
    );
    t.fails(
        "accept_classical_default_policy",
        "a classical prekey message under PostQuantumRequired",
        acc(d, pc, "PostQuantumRequired"),
        e("PostQuantumRequired"),
    );
    t.fails(
        "accept_policy_before_signed_prekey",
        "a classical prekey message naming signed prekey 9: the policy is checked first",
        acc(
            d,
            &with(pc, |x| pcl.put_u32(x, "spk_id", 9)),
            "PostQuantumRequired",
        ),
        e("PostQuantumRequired"),
    );
    t.fails(
        "accept_unknown_signed_prekey",
        "spk_id = 9",
        acc(
            d,
            &with(p, |x| l.put_u32(x, "spk_id", 9)),
            "PostQuantumRequired",
        ),
        ef("UnknownSignedPreKey", json!({ "id": 9 })),
    );
    t.fails(
        "accept_signed_prekey_before_one_time",
        "spk_id = 9 and opk_id = 9",
        acc(
            d,
            &with(p, |x| {
                l.put_u32(x, "spk_id", 9);
                l.put_u32(x, "opk_id", 9);
            }),
            "PostQuantumRequired",
        ),
        ef("UnknownSignedPreKey", json!({ "id": 9 })),
    );
    let da = "bob_device_after_accepts";
    t.fails(
        "accept_replayed",
        "the replayable message again, on the device that accepted it",
        acc(da, r, "PostQuantumRequired"),
        e("DuplicatePreKeyMessage"),
    );
    // The replayable message's base key, with a one-time prekey id added.
    let replay_with_opk = {
        let mut x = r[..rl.start("has_opk")].to_vec();
        x.push(1);
        x.extend(9u32.to_be_bytes());
        x.extend(&r[rl.start("has_kem")..]);
        x
    };
    t.fails("accept_duplicate_before_one_time", "the replayed base key with has_opk = 1, opk_id = 9 inserted: the recorded base key is checked first", acc(da, &replay_with_opk, "PostQuantumRequired"), e("DuplicatePreKeyMessage"));
    t.fails(
        "accept_one_time_prekey_used",
        "Alice's first message again: one-time prekey 1 was deleted",
        acc(da, p, "PostQuantumRequired"),
        ef("UnknownOneTimePreKey", json!({ "id": 1 })),
    );
    t.fails(
        "accept_unknown_one_time_prekey",
        "opk_id = 9",
        acc(
            d,
            &with(p, |x| l.put_u32(x, "opk_id", 9)),
            "PostQuantumRequired",
        ),
        ef("UnknownOneTimePreKey", json!({ "id": 9 })),
    );
    t.fails(
        "accept_one_time_before_kem",
        "opk_id = 9 and kem_id = 9",
        acc(
            d,
            &with(p, |x| {
                l.put_u32(x, "opk_id", 9);
                l.put_u32(x, "kem_id", 9);
            }),
            "PostQuantumRequired",
        ),
        ef("UnknownOneTimePreKey", json!({ "id": 9 })),
    );
    t.fails(
        "accept_unknown_kem_prekey",
        "kem_id = 9",
        acc(
            d,
            &with(p, |x| l.put_u32(x, "kem_id", 9)),
            "PostQuantumRequired",
        ),
        ef("UnknownKemPreKey", json!({ "id": 9 })),
    );
    let de = "bob_device_exhausted";
    t.fails(
        "accept_signed_prekey_exhausted",
        "a replayable message to a device whose signed prekey 1 has 1000 base keys (recipe)",
        acc(de, r, "PostQuantumRequired"),
        ef("SignedPreKeyExhausted", json!({ "id": 1 })),
    );
    t.fails(
        "accept_kem_before_exhausted",
        "kem_id = 9 in a replayable message to the exhausted device",
        acc(
            de,
            &with(r, |x| rl.put_u32(x, "kem_id", 9)),
            "PostQuantumRequired",
        ),
        ef("UnknownKemPreKey", json!({ "id": 9 })),
    );
    t.row(
        "accept_exhausted_with_one_time_prekey",
        "a message with one-time prekey 1 to the exhausted device: not replayable, accepted",
        acc(de, p, "PostQuantumRequired"),
        None,
    );
    t.fails(
        "accept_low_order_base_key",
        "base_key = an order-8 point: DH2 is all zero",
        acc(
            d,
            &with(p, |x| l.put(x, "base_key", &X25519_ORDER_8)),
            "PostQuantumRequired",
        ),
        e("NonContributoryKey"),
    );
    t.fails(
        "accept_low_order_identity_dh_before_too_far",
        "base_key of order 8 and N = 1001: step 7 before step 8",
        acc(
            d,
            &with(&with_n(p, 1001), |x| l.put(x, "base_key", &X25519_ORDER_8)),
            "PostQuantumRequired",
        ),
        e("NonContributoryKey"),
    );
    t.fails(
        "accept_too_far_ahead",
        "N = 1001 in the embedded header",
        acc(d, &with_n(p, 1001), "PostQuantumRequired"),
        ef("TooFarAhead", json!({ "skipped": 1001 })),
    );
    t.fails(
        "accept_too_far_before_ratchet_dh",
        "N = 1001 and the embedded ratchet key of order 8: step 8 before step 9",
        acc(
            d,
            &with(&with_n(p, 1001), |x| {
                l.put(x, "ratchet.ratchet_key", &X25519_ORDER_8)
            }),
            "PostQuantumRequired",
        ),
        ef("TooFarAhead", json!({ "skipped": 1001 })),
    );
    t.fails(
        "accept_low_order_ratchet_key",
        "the embedded ratchet key of order 8",
        acc(
            d,
            &with(p, |x| l.put(x, "ratchet.ratchet_key", &X25519_ORDER_8)),
            "PostQuantumRequired",
        ),
        e("NonContributoryKey"),
    );
    t.fails(
        "accept_at_max_skip_bad_tag",
        "N = 1000 in the embedded header: 1000 keys derived, then the tag",
        acc(d, &with_n(p, 1000), "PostQuantumRequired"),
        e("AuthenticationFailed"),
    );
    t.fails(
        "accept_wrong_kem_ciphertext",
        "one bit of the KEM ciphertext flipped: implicit rejection, then the tag",
        acc(
            d,
            &with(p, |x| l.flip(x, "ct", 0, 1)),
            "PostQuantumRequired",
        ),
        e("AuthenticationFailed"),
    );
    t.fails(
        "accept_other_one_time_prekey",
        "opk_id = 2 (held, not the one used)",
        acc(
            d,
            &with(p, |x| l.put_u32(x, "opk_id", 2)),
            "PostQuantumRequired",
        ),
        e("AuthenticationFailed"),
    );
    t.fails(
        "accept_other_kem_prekey",
        "kem_id = 3 (a held one-time KEM prekey, not the one used)",
        acc(
            d,
            &with(p, |x| l.put_u32(x, "kem_id", 3)),
            "PostQuantumRequired",
        ),
        e("AuthenticationFailed"),
    );
    t.fails(
        "accept_pn_changed",
        "PN = 1 in the embedded header (ignored, but authenticated)",
        acc(
            d,
            &with(p, |x| l.put_u32(x, "ratchet.pn", 1)),
            "PostQuantumRequired",
        ),
        e("AuthenticationFailed"),
    );
    t.fails(
        "accept_other_identity",
        "identity = Bob's own identity key",
        acc(
            d,
            &with(p, |x| l.put(x, "identity", &c.b_ik[2..])),
            "PostQuantumRequired",
        ),
        e("AuthenticationFailed"),
    );
    t.fails(
        "accept_tampered_ciphertext",
        "one bit of the ciphertext flipped",
        acc(
            d,
            &with(p, |x| l.flip(x, "ratchet.ciphertext", 0, 1)),
            "PostQuantumRequired",
        ),
        e("AuthenticationFailed"),
    );
    t.fails(
        "accept_unknown_one_time_prekey_classical",
        "a classical prekey message with opk_id = 9 under ClassicalAllowed",
        acc(
            d,
            &with(pc, |x| pcl.put_u32(x, "opk_id", 9)),
            "ClassicalAllowed",
        ),
        ef("UnknownOneTimePreKey", json!({ "id": 9 })),
    );
}

fn encrypt_rows(t: &mut Table) {
    let enc = |session: &str, pt: &[u8], pad: Option<usize>| {
        let mut step = json!({ "op": "encrypt", "session": session, "plaintext": hex(pt) });
        if let Some(len) = pad {
            step["plaintext_pad_to"] = len.into();
        }
        step
    };
    t.fails(
        "encrypt_plaintext_over_max",
        "a plaintext of MAX_PLAINTEXT_LEN + 1 zero bytes",
        enc("alice_session", &[], Some(MAX_PLAINTEXT + 1)),
        e("PlaintextTooLarge"),
    );
    t.fails(
        "encrypt_chain_exhausted",
        "Bob's sending chain at Ns = 2^32 - 1 (recipe)",
        enc("bob_session_sending_exhausted", b"x", None),
        e("ChainExhausted"),
    );
    t.fails("encrypt_exhausted_plaintext_over_max", "the exhausted chain and a plaintext of MAX_PLAINTEXT_LEN + 1 bytes: the length is checked first", enc("bob_session_sending_exhausted", &[], Some(MAX_PLAINTEXT + 1)), e("PlaintextTooLarge"));
    let s = t.state("alice_initiated");
    let l = layout::session_state(&s);
    t.fixture(
        "alice_initiated_low_order_dhr",
        &with(&s, |x| l.put(x, "dhr", &X25519_ORDER_8)),
    );
    t.fails("encrypt_low_order_dhr", "an initiator without a sending chain whose dhr is of order 8 (a fixture edit): the ratchet key and salt are drawn, then DH is all zero", enc("alice_initiated_low_order_dhr", b"x", None), e("NonContributoryKey"));
}

fn decrypt_rows(t: &mut Table, c: &Ctx) {
    let dec =
        |session: &str, m: &[u8]| json!({ "op": "decrypt", "session": session, "message": hex(m) });
    let p = &c.m1;
    let pl = layout::message(p);
    let m = &c.m_read;
    let ml = layout::message(m);
    let s = "bob_session";
    let bob = Sess::decode(&t.state(s)).unwrap();
    let alice_chain1 = bob.recv.chains[0].ratchet_key;
    let alice_chain2 = bob.recv.chains[1].ratchet_key;
    let ratchet = |key: &[u8; 32], pn: u32, n: u32| {
        with(m, |x| {
            ml.put(x, "ratchet_key", key);
            ml.put_u32(x, "pn", pn);
            ml.put_u32(x, "n", n);
        })
    };
    let other = [&identity_key_bytes(&ed25519_public(&[3; 32]))[2..]].concat();
    t.fails(
        "decrypt_prekey_message_other_identity",
        "Alice's first message with identity = another valid key",
        dec(s, &with(p, |x| pl.put(x, "identity", &other))),
        e("IdentityMismatch"),
    );
    t.fails(
        "decrypt_prekey_message_other_base_key",
        "Alice's first message with another base key",
        dec(s, &with(p, |x| pl.put(x, "base_key", &x_pub(&[5; 32])))),
        e("SessionMismatch"),
    );
    t.fails(
        "decrypt_identity_before_base_key",
        "another identity and another base key",
        dec(
            s,
            &with(p, |x| {
                pl.put(x, "identity", &other);
                pl.put(x, "base_key", &x_pub(&[5; 32]));
            }),
        ),
        e("IdentityMismatch"),
    );
    t.fails(
        "decrypt_prekey_message_on_initiator",
        "a prekey message claiming Bob's identity, to Alice's session: she is not the responder",
        dec(
            "alice_session",
            &with(p, |x| pl.put(x, "identity", &c.b_ik[2..])),
        ),
        e("SessionMismatch"),
    );
    t.fails("decrypt_repeated_prekey_message", "Alice's first message again, to Bob's session: routed to it (same identity and base key), then index 0 of her first chain, already read", dec(s, p), e("DuplicateMessage"));
    t.fails(
        "decrypt_duplicate",
        "the message Bob read",
        dec(s, m),
        e("DuplicateMessage"),
    );
    t.row(
        "decrypt_skipped",
        "the message Bob skipped",
        dec(s, &c.m_skipped),
        None,
    );
    t.fails(
        "decrypt_skipped_bad_tag",
        "the skipped message with one bit of its ciphertext flipped",
        dec(
            s,
            &with(&c.m_skipped, |x| {
                layout::message(&c.m_skipped).flip(x, "ciphertext", 0, 1)
            }),
        ),
        e("AuthenticationFailed"),
    );
    let next = bob.recv.chains[1].next;
    t.fails(
        "decrypt_too_far_ahead",
        "on the current chain, N = next + 1001",
        dec(s, &ratchet(&alice_chain2, 0, next + 1001)),
        ef("TooFarAhead", json!({ "skipped": 1001 })),
    );
    t.fails(
        "decrypt_at_max_skip_bad_tag",
        "on the current chain, N = next + 1000: keys derived, then the tag",
        dec(s, &ratchet(&alice_chain2, 0, next + 1000)),
        e("AuthenticationFailed"),
    );
    let near = "bob_session_receiving_near_max";
    t.fails(
        "decrypt_chain_exhausted",
        "Bob's current chain at next = 2^32 - 1001 (recipe), N = 2^32 - 1 (1000 ahead)",
        dec(near, &ratchet(&alice_chain2, 0, u32::MAX)),
        e("ChainExhausted"),
    );
    t.fails("decrypt_too_far_before_exhausted", "N = 2^32 - 1 on the unedited current chain: TooFarAhead (step 1.2 checks the distance first)", dec(s, &ratchet(&alice_chain2, 0, u32::MAX)), ef("TooFarAhead", json!({ "skipped": u32::MAX - next })));
    t.fails(
        "decrypt_last_usable_number",
        "N = 2^32 - 2 on the edited chain: every check passes, the tag fails",
        dec(near, &ratchet(&alice_chain2, 0, u32::MAX - 1)),
        e("AuthenticationFailed"),
    );
    let closed_end = bob.recv.chains[0].next;
    t.fails(
        "decrypt_closed_chain_at_end",
        "Alice's first (closed) chain at its end",
        dec(s, &ratchet(&alice_chain1, 0, closed_end)),
        e("SessionDiverged"),
    );
    t.fails(
        "decrypt_closed_chain_far_past_end",
        "Alice's first chain 5000 past its end: no TooFarAhead on a closed chain",
        dec(s, &ratchet(&alice_chain1, 0, closed_end + 5000)),
        e("SessionDiverged"),
    );
    t.fails(
        "decrypt_closed_chain_below_end",
        "Alice's first chain below its end, no key held",
        dec(s, &ratchet(&alice_chain1, 0, 0)),
        e("DuplicateMessage"),
    );
    let fresh = x_pub(&[6; 32]);
    t.fails(
        "decrypt_unknown_key_without_sending_chain",
        "a new ratchet key; Bob has no sending chain",
        dec(s, &ratchet(&fresh, 0, 0)),
        e("SessionDiverged"),
    );
    t.fails(
        "decrypt_no_sending_chain_before_too_far",
        "a new ratchet key at N = 5000; no sending chain: step 2.1 before 2.2",
        dec(s, &ratchet(&fresh, 0, 5000)),
        e("SessionDiverged"),
    );
    let ss = "bob_session_sending";
    let cur = Sess::decode(&t.state(ss))
        .unwrap()
        .recv
        .chains
        .last()
        .unwrap()
        .next;
    t.fails(
        "decrypt_unknown_key_bad_tag",
        "a new ratchet key; Bob has a sending chain: the trial root step's tag fails",
        dec(ss, &ratchet(&fresh, cur, 0)),
        e("SessionDiverged"),
    );
    t.fails(
        "decrypt_new_chain_too_far",
        "a new ratchet key at N = 1000 with PN = next + 1: closing 1 + 1000",
        dec(ss, &ratchet(&fresh, cur + 1, 1000)),
        ef("TooFarAhead", json!({ "skipped": 1001 })),
    );
    t.fails("decrypt_new_chain_pn_max", "a new ratchet key with PN = 2^32 - 1 and N = 2^32 - 1: closing + N computed without overflow", dec(ss, &ratchet(&fresh, u32::MAX, u32::MAX)), ef("TooFarAhead", json!({ "skipped": (u64::from(u32::MAX) - u64::from(cur)) + u64::from(u32::MAX) })));
    t.fails(
        "decrypt_new_chain_low_order",
        "a new ratchet key of order 8",
        dec(ss, &ratchet(&X25519_ORDER_8, cur, 0)),
        e("NonContributoryKey"),
    );
    t.fails(
        "decrypt_too_far_before_low_order",
        "a new ratchet key of order 8 at N = 1001",
        dec(ss, &ratchet(&X25519_ORDER_8, cur, 1001)),
        ef("TooFarAhead", json!({ "skipped": 1001 })),
    );
    t.fails("decrypt_pn_below_current_next", "a new ratchet key with PN = 0 (below the current chain's next): closing is 0, then the trial tag fails", dec(ss, &ratchet(&fresh, 0, 0)), e("SessionDiverged"));
    t.fails(
        "decrypt_tampered_ciphertext",
        "a message on the current chain with one bit flipped",
        dec(
            s,
            &with(&ratchet(&alice_chain2, 0, next), |x| {
                ml.flip(x, "ciphertext", 0, 1)
            }),
        ),
        e("AuthenticationFailed"),
    );
}

fn session_state_rows(t: &mut Table) {
    let s = t.state("bob_session");
    let l = layout::session_state(&s);
    let a = t.state("alice_initiated");
    let al = layout::session_state(&a);
    let x3 = t.state("alice_classical_session");
    let xl = layout::session_state(&x3);
    let dec = |b: &[u8]| decode("Session", b);
    let edit = |f: &dyn Fn(&mut Vec<u8>)| with(&s, |x| f(x));
    t.fails("session_empty", "the empty input", dec(&[]), e("Truncated"));
    t.fails(
        "session_version_1",
        "version = 01",
        dec(&edit(&|x| l.put_u8(x, "version", 1))),
        ef("UnsupportedVersion", json!({ "found": 1 })),
    );
    t.fails(
        "session_wrong_type",
        "type = 0x21",
        dec(&edit(&|x| l.put_u8(x, "type", 0x21))),
        ef("WrongType", json!({ "expected": 0x20, "found": 0x21 })),
    );
    t.fails(
        "session_truncated_generation",
        "cut in the generation",
        dec(&s[..6]),
        e("Truncated"),
    );
    t.fails(
        "session_bad_role",
        "role = 2",
        dec(&edit(&|x| l.put_u8(x, "role", 2))),
        e("InvalidEncoding"),
    );
    t.fails(
        "session_bad_key_agreement",
        "key_agreement = 2",
        dec(&edit(&|x| l.put_u8(x, "key_agreement", 2))),
        e("InvalidEncoding"),
    );
    t.fails(
        "session_small_order_local_identity",
        "local_identity = the identity point",
        dec(&edit(&|x| l.put(x, "local_identity", &ED25519_SMALL_ORDER))),
        e("InvalidPublicKey"),
    );
    t.fails(
        "session_non_canonical_remote_identity",
        "remote_identity with y = p",
        dec(&edit(&|x| l.put(x, "remote_identity", &P))),
        e("InvalidPublicKey"),
    );
    t.fails(
        "session_bad_pending_flag",
        "has_pending = 2",
        dec(&edit(&|x| l.put_u8(x, "has_pending", 2))),
        e("InvalidEncoding"),
    );
    t.fails(
        "session_pending_on_responder",
        "has_pending = 1 on a responder's state",
        dec(&edit(&|x| l.put_u8(x, "has_pending", 1))),
        e("InvalidEncoding"),
    );
    t.fails(
        "session_pending_on_responder_truncated",
        "has_pending = 1 on a responder, cut right after it: checked when read",
        dec(&edit(&|x| {
            l.put_u8(x, "has_pending", 1);
            x.truncate(l.end_of("has_pending"));
        })),
        e("InvalidEncoding"),
    );
    t.fails(
        "session_pending_bad_opk_flag",
        "the initiator's has_opk = 2",
        decode("Session", &with(&a, |x| al.put_u8(x, "has_opk", 2))),
        e("InvalidEncoding"),
    );
    t.fails(
        "session_pqxdh_without_kem",
        "a PQXDH initiator's has_kem = 0",
        decode("Session", &with(&a, |x| al.put_u8(x, "has_kem", 0))),
        e("InvalidEncoding"),
    );
    t.fails(
        "session_pqxdh_without_kem_truncated",
        "has_kem = 0 on PQXDH, cut right after it: checked when read",
        decode(
            "Session",
            &with(&a, |x| {
                al.put_u8(x, "has_kem", 0);
                x.truncate(al.end_of("has_kem"));
            }),
        ),
        e("InvalidEncoding"),
    );
    t.fails(
        "session_x3dh_with_kem",
        "an X3DH initiator's has_kem = 1",
        decode("Session", &with(&x3, |x| xl.put_u8(x, "has_kem", 1))),
        e("InvalidEncoding"),
    );
    t.fails(
        "session_x3dh_marked_pqxdh",
        "an X3DH initiator's key_agreement = 1 (its has_kem is 0)",
        decode("Session", &with(&x3, |x| xl.put_u8(x, "key_agreement", 1))),
        e("InvalidEncoding"),
    );
    // Fields §4 takes as they are: no check may refuse them.
    t.row(
        "session_chain_ratchet_key_taken_as_is",
        "chains[0].ratchet_key (a closed chain) = 2^255 - 1: receiving chains' ratchet keys are not validated",
        dec(&edit(&|x| l.put(x, "chains[0].ratchet_key", &above_p()))),
        None,
    );
    t.row(
        "session_base_key_taken_as_is",
        "base_key = 2^255 - 1 and kem_binding = 00..00: taken as they are in saved state",
        dec(&edit(&|x| {
            l.put(x, "base_key", &above_p());
            l.put(x, "kem_binding", &[0; 32]);
        })),
        None,
    );
    t.fails(
        "session_non_canonical_dhr",
        "dhr = 2^255 - 1",
        dec(&edit(&|x| l.put(x, "dhr", &above_p()))),
        e("InvalidPublicKey"),
    );
    t.fails(
        "session_bad_sending_flag",
        "has_sending = 2",
        dec(&edit(&|x| l.put_u8(x, "has_sending", 2))),
        e("InvalidEncoding"),
    );
    t.fails(
        "session_too_many_chains",
        "chain_count = 6",
        dec(&edit(&|x| l.put_u8(x, "chain_count", 6))),
        e("InvalidEncoding"),
    );
    t.fails(
        "session_has_ck_on_older_chain",
        "chains[0].has_ck = 1",
        dec(&edit(&|x| l.put_u8(x, "chains[0].has_ck", 1))),
        e("InvalidEncoding"),
    );
    t.fails(
        "session_no_ck_on_current_chain",
        "chains[1].has_ck = 0",
        dec(&edit(&|x| l.put_u8(x, "chains[1].has_ck", 0))),
        e("InvalidEncoding"),
    );
    t.fails(
        "session_bad_has_ck",
        "chains[1].has_ck = 2",
        dec(&edit(&|x| l.put_u8(x, "chains[1].has_ck", 2))),
        e("InvalidEncoding"),
    );
    t.fails(
        "session_key_count_over_per_chain",
        "chains[1].key_count = 1001 (checked before the keys are read)",
        dec(&edit(&|x| l.put_u16(x, "chains[1].key_count", 1001))),
        e("InvalidEncoding"),
    );
    t.fixture_recipe(
        "bob_session_2000_keys",
        json!({ "kind": "session_fill", "from": "bob_session", "keys": [1000, 1000] }),
    );
    t.row(
        "session_at_total_keys",
        "two chains with 1000 keys each (session_fill recipe)",
        decode_state("Session", "bob_session_2000_keys"),
        None,
    );
    let full = t.state("bob_session_2000_keys");
    let fl = layout::session_state(&full);
    t.fixture_recipe("bob_session_2001_keys_declared", json!({ "kind": "patch", "from": "bob_session_2000_keys", "offset": fl.start("chains[1].key_count"), "bytes": hex(&1001u16.to_be_bytes()) }));
    t.fails("session_keys_over_total", "the second chain's key_count set to 1001 (patch recipe): the running total, 2001, is checked before its keys", decode_state("Session", "bob_session_2001_keys_declared"), e("InvalidEncoding"));
    let k = l.get("chains[1].keys[0].index").map(|_| ());
    assert!(k.is_some(), "bob_session's current chain holds a key");
    t.fails(
        "session_skipped_index_not_below_next",
        "chains[1].keys[0].index = chains[1].next",
        dec(&edit(&|x| {
            let n = l.u32(x, "chains[1].next");
            l.put_u32(x, "chains[1].keys[0].index", n);
        })),
        e("InvalidEncoding"),
    );
    t.fixture_recipe(
        "bob_session_3_keys",
        json!({ "kind": "session_fill", "from": "bob_session", "keys": [0, 3] }),
    );
    let three = t.state("bob_session_3_keys");
    let tl = layout::session_state(&three);
    let first = tl.u32(&three, "chains[1].keys[0].index");
    for (name, index, what) in [
        (
            "session_skipped_indices_repeated",
            first,
            "chains[1].keys[1].index = keys[0].index",
        ),
        (
            "session_skipped_indices_decreasing",
            first - 1,
            "chains[1].keys[1].index = keys[0].index - 1",
        ),
    ] {
        let fixture = format!("{name}_state");
        t.fixture_recipe(&fixture, json!({ "kind": "patch", "from": "bob_session_3_keys", "offset": tl.start("chains[1].keys[1].index"), "bytes": hex(&index.to_be_bytes()) }));
        t.fails(
            name,
            &format!("{what} (session_fill and patch recipes)"),
            decode_state("Session", &fixture),
            e("InvalidEncoding"),
        );
    }
    t.fails(
        "session_trailing_bytes",
        "one byte appended",
        dec(&edit(&|x| x.push(0))),
        e("TrailingBytes"),
    );
    t.fails(
        "session_current_chain_not_dhr",
        "the current chain's ratchet_key is not dhr (checked after TrailingBytes)",
        dec(&edit(&|x| l.put(x, "chains[1].ratchet_key", &[7; 32]))),
        e("InvalidEncoding"),
    );
    t.fails(
        "session_current_chain_not_dhr_trailing",
        "the same and one byte appended: TrailingBytes first",
        dec(&edit(&|x| {
            l.put(x, "chains[1].ratchet_key", &[7; 32]);
            x.push(0);
        })),
        e("TrailingBytes"),
    );
    t.fails(
        "session_repeated_ratchet_key",
        "chains[0].ratchet_key = chains[1].ratchet_key (= dhr)",
        dec(&edit(&|x| {
            let k = l.a32(x, "chains[1].ratchet_key");
            l.put(x, "chains[0].ratchet_key", &k);
        })),
        e("InvalidEncoding"),
    );
    t.fails(
        "session_truncated_in_chain",
        "cut in chains[1].next",
        dec(&s[..l.start("chains[1].next") + 2]),
        e("Truncated"),
    );
    t.fails(
        "session_over_max_state_len",
        "the state zero-padded to MAX_STATE_LEN + 1",
        decode_padded("Session", &s, MAX_STATE + 1),
        e("TooLarge"),
    );
    t.fails(
        "session_at_max_state_len",
        "the state zero-padded to MAX_STATE_LEN: parsed, then TrailingBytes",
        decode_padded("Session", &s, MAX_STATE),
        e("TrailingBytes"),
    );
}

fn device_state_rows(t: &mut Table) {
    let d = t.state("bob_device_after_accepts");
    let l = layout::device_state(&d);
    let dec = |b: &[u8]| decode("Device", b);
    let edit = |f: &dyn Fn(&mut Vec<u8>)| with(&d, |x| f(x));
    t.fails(
        "device_wrong_type",
        "type = 0x20",
        dec(&edit(&|x| l.put_u8(x, "type", 0x20))),
        ef("WrongType", json!({ "expected": 0x21, "found": 0x20 })),
    );
    t.fails(
        "device_no_signed_prekey",
        "spk_count = 0",
        dec(&edit(&|x| l.put_u8(x, "spk_count", 0))),
        e("InvalidEncoding"),
    );
    t.fails(
        "device_too_many_signed_prekeys",
        "spk_count = 5",
        dec(&edit(&|x| l.put_u8(x, "spk_count", 5))),
        e("InvalidEncoding"),
    );
    t.fails(
        "device_signed_prekey_id_not_below_next",
        "spks[0].id = next_spk_id",
        dec(&edit(&|x| {
            let n = l.u32(x, "next_spk_id");
            l.put_u32(x, "spks[0].id", n);
        })),
        e("InvalidEncoding"),
    );
    t.fails(
        "device_base_key_count_over",
        "spks[0].base_key_count = 1001",
        dec(&edit(&|x| l.put_u16(x, "spks[0].base_key_count", 1001))),
        e("InvalidEncoding"),
    );
    t.fails(
        "device_one_time_prekey_count_over",
        "opk_count = 1001",
        dec(&edit(&|x| l.put_u16(x, "opk_count", 1001))),
        e("InvalidEncoding"),
    );
    t.fails(
        "device_one_time_prekey_id_not_below_next",
        "opks[0].id = next_opk_id",
        dec(&edit(&|x| {
            let n = l.u32(x, "next_opk_id");
            l.put_u32(x, "opks[0].id", n);
        })),
        e("InvalidEncoding"),
    );
    t.fails(
        "device_no_last_resort",
        "last_resort_count = 0",
        dec(&edit(&|x| l.put_u8(x, "last_resort_count", 0))),
        e("InvalidEncoding"),
    );
    t.fails(
        "device_too_many_last_resort",
        "last_resort_count = 5",
        dec(&edit(&|x| l.put_u8(x, "last_resort_count", 5))),
        e("InvalidEncoding"),
    );
    t.fails(
        "device_last_resort_id_not_below_next",
        "last_resort[0].id = next_kem_id",
        dec(&edit(&|x| {
            let n = l.u32(x, "next_kem_id");
            l.put_u32(x, "last_resort[0].id", n);
        })),
        e("InvalidEncoding"),
    );
    t.fails(
        "device_kem_otk_count_over",
        "kem_otk_count = 101",
        dec(&edit(&|x| l.put_u16(x, "kem_otk_count", 101))),
        e("InvalidEncoding"),
    );
    t.fails(
        "device_kem_otk_id_not_below_next",
        "kem_otks[0].id = next_kem_id",
        dec(&edit(&|x| {
            let n = l.u32(x, "next_kem_id");
            l.put_u32(x, "kem_otks[0].id", n);
        })),
        e("InvalidEncoding"),
    );
    t.fails(
        "device_kem_id_in_both_lists",
        "kem_otks[0].id = last_resort[0].id (checked after TrailingBytes)",
        dec(&edit(&|x| {
            let i = l.u32(x, "last_resort[0].id");
            l.put_u32(x, "kem_otks[0].id", i);
        })),
        e("InvalidEncoding"),
    );
    t.fails(
        "device_kem_id_in_both_lists_trailing",
        "the same and one byte appended: TrailingBytes first",
        dec(&edit(&|x| {
            let i = l.u32(x, "last_resort[0].id");
            l.put_u32(x, "kem_otks[0].id", i);
            x.push(0);
        })),
        e("TrailingBytes"),
    );
    t.row(
        "device_base_key_taken_as_is",
        "spks[0].base_keys[0] = 2^255 - 1: recorded base keys are not validated",
        dec(&edit(&|x| l.put(x, "spks[0].base_keys[0]", &above_p()))),
        None,
    );
    t.fails(
        "device_trailing_bytes",
        "one byte appended",
        dec(&edit(&|x| x.push(0))),
        e("TrailingBytes"),
    );
    t.fails(
        "device_truncated_in_kem_seed",
        "cut in last_resort[0].seed",
        dec(&d[..l.start("last_resort[0].seed") + 10]),
        e("Truncated"),
    );
    // Repeated and decreasing ids need two entries: a device with three
    // signed prekeys and two one-time prekeys and two one-time KEM prekeys.
    let many = t.state("bob_device_many");
    let ml = layout::device_state(&many);
    let edit_many = |f: &dyn Fn(&mut Vec<u8>)| with(&many, |x| f(x));
    t.fails(
        "device_signed_prekey_ids_repeated",
        "spks[1].id = spks[0].id",
        dec(&edit_many(&|x| {
            let i = ml.u32(x, "spks[0].id");
            ml.put_u32(x, "spks[1].id", i);
        })),
        e("InvalidEncoding"),
    );
    t.fails(
        "device_signed_prekey_ids_decreasing",
        "spks[1].id = spks[0].id - 1",
        dec(&edit_many(&|x| {
            let i = ml.u32(x, "spks[2].id");
            ml.put_u32(x, "spks[1].id", i);
        })),
        e("InvalidEncoding"),
    );
    t.fails(
        "device_one_time_prekey_ids_repeated",
        "opks[1].id = opks[0].id",
        dec(&edit_many(&|x| {
            let i = ml.u32(x, "opks[0].id");
            ml.put_u32(x, "opks[1].id", i);
        })),
        e("InvalidEncoding"),
    );
    t.fails(
        "device_last_resort_ids_decreasing",
        "last_resort[1].id < last_resort[0].id",
        dec(&edit_many(&|x| {
            ml.put_u32(x, "last_resort[1].id", 0);
        })),
        e("InvalidEncoding"),
    );
    t.fails(
        "device_kem_otk_ids_repeated",
        "kem_otks[1].id = kem_otks[0].id",
        dec(&edit_many(&|x| {
            let i = ml.u32(x, "kem_otks[0].id");
            ml.put_u32(x, "kem_otks[1].id", i);
        })),
        e("InvalidEncoding"),
    );
    t.fails(
        "device_over_max_state_len",
        "the state zero-padded to MAX_STATE_LEN + 1",
        decode_padded("Device", &d, MAX_STATE + 1),
        e("TooLarge"),
    );
}

fn sealed_rows(t: &mut Table, c: &Ctx) {
    let s = &c.sealed;
    let l = layout::sealed(s);
    let open = |sealed: &[u8], context: &[u8], inner: u8| {
        json!({
            "op": "unseal", "sealed": hex(sealed), "storage_key": hex(&c.storage),
            "context": hex(context), "inner_type": inner, "state": "opened",
        })
    };
    let ctx = b"session/alice";
    t.row(
        "sealed_opens",
        "none: Bob's session sealed under the context session/alice",
        open(s, ctx, 0x20),
        None,
    );
    t.fails(
        "sealed_other_context",
        "context session/alicf",
        open(s, b"session/alicf", 0x20),
        e("AuthenticationFailed"),
    );
    t.fails(
        "sealed_empty_context",
        "the empty context",
        open(s, b"", 0x20),
        e("AuthenticationFailed"),
    );
    t.fails(
        "sealed_context_too_long",
        "a context of 1025 bytes and an empty sealed input: the context is checked first",
        open(&[], &[b'c'; 1025], 0x20),
        e("TooLarge"),
    );
    t.fails(
        "sealed_empty",
        "the empty input",
        open(&[], ctx, 0x20),
        e("Truncated"),
    );
    t.fails(
        "sealed_version_1",
        "version = 01",
        open(&with(s, |x| l.put_u8(x, "version", 1)), ctx, 0x20),
        ef("UnsupportedVersion", json!({ "found": 1 })),
    );
    t.fails(
        "sealed_wrong_type",
        "type = 0x20 (a plain session)",
        open(&t.state("bob_session"), ctx, 0x20),
        ef("WrongType", json!({ "expected": 0x30, "found": 0x20 })),
    );
    t.fails(
        "sealed_inner_type_missing",
        "02 30 only",
        open(&s[..2], ctx, 0x20),
        e("Truncated"),
    );
    t.fails(
        "sealed_as_device",
        "opened as a device: the inner tags",
        open(s, ctx, 0x21),
        ef("WrongType", json!({ "expected": 0x21, "found": 0x20 })),
    );
    t.fails(
        "sealed_inner_type_before_context_check",
        "opened as a device under another context: the inner type is checked before the tag",
        open(s, b"other", 0x21),
        ef("WrongType", json!({ "expected": 0x21, "found": 0x20 })),
    );
    t.fails(
        "sealed_truncated_salt",
        "cut in the salt",
        open(&s[..20], ctx, 0x20),
        e("Truncated"),
    );
    t.fails(
        "sealed_short_ciphertext",
        "15 bytes after the salt",
        open(&s[..l.start("ciphertext") + 15], ctx, 0x20),
        e("Truncated"),
    );
    t.fails(
        "sealed_tampered",
        "one bit of the ciphertext flipped",
        open(&with(s, |x| l.flip(x, "ciphertext", 0, 1)), ctx, 0x20),
        e("AuthenticationFailed"),
    );
    t.fails(
        "sealed_salt_changed",
        "one bit of the salt flipped",
        open(&with(s, |x| l.flip(x, "salt", 0, 1)), ctx, 0x20),
        e("AuthenticationFailed"),
    );
    let bad_plain = seal_with(
        &c.storage,
        ctx,
        &with(&t.state("bob_session"), |x| x.push(0)),
        &[1; 32],
    )
    .bytes;
    t.fails(
        "sealed_plain_state_invalid",
        "a session state with one byte appended, sealed (with salt 01..01): opened, then decoded",
        open(&bad_plain, ctx, 0x20),
        e("TrailingBytes"),
    );
}

fn sealed_size_rows(t: &mut Table, c: &Ctx) {
    let padded = |len: usize| {
        json!({
            "op": "unseal", "sealed": hex(&c.sealed[..35]), "sealed_pad_to": len,
            "storage_key": hex(&c.storage), "context": "", "inner_type": 0x20, "state": "opened",
        })
    };
    t.fails(
        "sealed_over_max_state_len",
        "the sealed header zero-padded to MAX_STATE_LEN + 1",
        padded(MAX_STATE + 1),
        e("TooLarge"),
    );
    t.fails(
        "sealed_at_max_state_len",
        "the sealed header zero-padded to MAX_STATE_LEN: parsed, then the tag",
        padded(MAX_STATE),
        e("AuthenticationFailed"),
    );
}

pub(crate) fn generate() -> Value {
    let mut t = Table::new(LABEL);
    let c = setup(&mut t);
    // Two more fixtures: an X3DH initiator and a device with two entries
    // in each list.
    {
        let mut r = Rec::new(&format!("{LABEL} more fixtures"));
        device(&mut r, "alice");
        device(&mut r, "bob");
        let bundle = out(
            &r.ok(json!({ "op": "bundle", "device": "bob", "one_time_prekey_id": null, "kem_prekey_id": null })),
            "bundle",
        );
        r.ok(json!({ "op": "initiate", "device": "alice", "session": "x3dh", "bundle": hex(&bundle), "expected": null, "policy": "ClassicalAllowed" }));
        send(&mut r, "x3dh", b"classical");
        t.fixture("alice_classical_session", &r.state("x3dh"));
        for now in [1u64, 2] {
            r.ok(json!({ "op": "rotate_signed_prekey", "device": "bob", "now": now }));
            r.ok(json!({ "op": "rotate_kem_prekey", "device": "bob", "now": now }));
        }
        r.ok(json!({ "op": "generate_one_time_prekeys", "device": "bob", "count": 2 }));
        r.ok(json!({ "op": "generate_kem_prekeys", "device": "bob", "count": 2 }));
        t.fixture("bob_device_many", &r.state("bob"));
    }
    message_rows(&mut t, &c);
    key_rows(&mut t, &c);
    bundle_rows(&mut t, &c);
    initiate_rows(&mut t, &c);
    accept_rows(&mut t, &c);
    encrypt_rows(&mut t);
    decrypt_rows(&mut t, &c);
    session_state_rows(&mut t);
    device_state_rows(&mut t);
    sealed_rows(&mut t, &c);
    sealed_size_rows(&mut t, &c);
    let (fixtures, rows) = t.finish();
    let mut f = file(
        "negative",
        "Inputs that must fail, with their exact errors: every decoding rule of SPEC.md §4, §5, §9, §10.2, §10.3 and §10.5, and the check orders of §4, §5.7, §7.2, §7.3, §8.5, §8.6 and §10.5 (rows with two faults: the first check decides). A table: name, operation with its fixtures, mutation, expected error.",
        LABEL,
        rows,
    );
    f["fixtures"] = fixtures;
    f
}
