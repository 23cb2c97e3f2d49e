//! Negative vectors for rules that the first set of vectors left unpinned
//! (conformance/python/SPEC-FINDINGS.md, sections E and F): every expected
//! error is computed by the model (`model.rs`) and must equal the intended
//! one; sotto is checked against it by the verifier before the file is
//! written.

use serde_json::{Value, json};
use sotto::rand_core::Rng;
use sotto::{MAX_PLAINTEXT_LEN, MAX_STATE_LEN, Message, Session};

use crate::model::{self, Dev, Draws, Sess};
use crate::model_group::{Err, Rd, err};
use crate::vectors::hex;
use crate::{Party, RecordingRng, one_time_prekeys, ratchet_message, same, same_draws, send, with};

/// What `negative()` built, borrowed for the added vectors.
pub(crate) struct NegativeExtra<'a> {
    pub(crate) alice: &'a Party,
    pub(crate) bob: &'a mut Party,
    pub(crate) am: &'a mut Sess,
    pub(crate) asess: &'a mut Session,
    pub(crate) bm: &'a mut Sess,
    pub(crate) bsess: &'a mut Session,
    pub(crate) m: &'a mut Draws,
    pub(crate) r: &'a mut RecordingRng,
    pub(crate) alice_pending: &'a [u8],
    pub(crate) bob_state: &'a [u8],
    pub(crate) bob_device: &'a [u8],
    pub(crate) bundle: &'a [u8],
    pub(crate) sealed: &'a [u8],
    pub(crate) storage: &'a [u8; 32],
    pub(crate) fresh: &'a [u8; 32],
    pub(crate) a1_key: &'a [u8; 32],
    pub(crate) m1: &'a [u8],
    pub(crate) chain_count_at: usize,
}

/// An Ed25519 signature whose `R` is the identity point (small order) and
/// whose `S = k * a mod L`, so that `[S]B - [k]A = R` holds exactly: plain
/// RFC 8032 verification (cofactorless or cofactored) accepts it, strict
/// verification (§2 step 3) rejects it. Needs the signing key.
pub(crate) fn sign_small_order_r(seed: &[u8; 32], message: &[u8]) -> [u8; 64] {
    use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
    use curve25519_dalek::edwards::CompressedEdwardsY;
    use curve25519_dalek::scalar::Scalar;
    use ed25519_dalek::{Signature, SigningKey, Verifier};
    use sha2::{Digest, Sha512};

    let h = Sha512::digest(seed);
    let mut a_bytes: [u8; 32] = h[..32].try_into().unwrap();
    a_bytes[0] &= 248;
    a_bytes[31] &= 127;
    a_bytes[31] |= 64;
    let a = Scalar::from_bytes_mod_order(a_bytes);
    let public = SigningKey::from_bytes(seed).verifying_key();
    let mut r_bytes = [0u8; 32];
    r_bytes[0] = 1;
    let wide: [u8; 64] = Sha512::new()
        .chain_update(r_bytes)
        .chain_update(public.to_bytes())
        .chain_update(message)
        .finalize()
        .into();
    let k = Scalar::from_bytes_mod_order_wide(&wide);
    let s = k * a;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&r_bytes);
    sig[32..].copy_from_slice(&s.to_bytes());

    // Valid under RFC 8032 both ways, invalid under strict verification.
    let parsed = Signature::from_bytes(&sig);
    assert!(public.verify(message, &parsed).is_ok(), "cofactorless");
    let big_a = CompressedEdwardsY(public.to_bytes()).decompress().unwrap();
    let big_r = CompressedEdwardsY(r_bytes).decompress().unwrap();
    let diff = ED25519_BASEPOINT_POINT * s - big_a * k - big_r;
    assert!(
        diff.mul_by_cofactor().compress().to_bytes() == r_bytes,
        "cofactored"
    );
    assert!(big_r.is_small_order());
    assert!(public.verify_strict(message, &parsed).is_err(), "strict");
    sig
}

pub(crate) fn negative_extra(x: NegativeExtra<'_>) -> (Vec<Value>, Vec<(&'static str, Vec<u8>)>) {
    let NegativeExtra {
        alice,
        bob,
        am,
        asess,
        bm,
        bsess,
        m,
        r,
        alice_pending,
        bob_state,
        bob_device,
        bundle,
        sealed,
        storage,
        fresh,
        a1_key,
        m1,
        chain_count_at,
    } = x;
    // `negative()` drew four values from the model's stream only; skip them
    // in sotto's so that both streams are in step again.
    let mut skip = [0u8; 128];
    r.fill_bytes(&mut skip);
    r.log.clear();
    m.take();

    // Bob on two receiving chains, the newer one with two skipped keys:
    // Alice sends m3 and m4 on her second chain (after m2), Bob reads m4.
    let (_, _) = send("m3", am, asess, m, r, b"m3");
    let (m4, _) = send("m4", am, asess, m, r, b"m4");
    bm.decrypt(&m4);
    bsess.decrypt(&Message::from_bytes(&m4).unwrap()).unwrap();
    let (two, count_at) = bm.encode();
    same("bob on two chains", &bsess.to_bytes(), &two);
    let older = count_at + 1;
    let newer = older + 32 + 1 + 4 + 2;
    assert_eq!((two[count_at], two[older + 32], two[newer + 32]), (2, 0, 1));
    let newer_next = newer + 33 + 32;
    let keys = newer_next + 4;
    assert_eq!(
        (&two[newer_next..keys], &two[keys..keys + 2]),
        (&3u32.to_be_bytes()[..], &2u16.to_be_bytes()[..])
    );
    let (first_key, second_key) = (keys + 2, keys + 2 + 36);
    assert_eq!(two.len(), second_key + 36);

    // Bob's device after one rotation and two more one-time prekeys:
    // signed prekeys 1, 2 (next 3), one-time prekeys 2, 3, 4 (next 5).
    bob.model.rotate(m).unwrap();
    let rotated_spk = bob.sotto.rotate_signed_prekey(r).unwrap();
    same_draws("bob rotates", r, &m.take());
    same(
        "rotated signed prekey",
        &rotated_spk.to_bytes(),
        &bob.model.spk().encoded(),
    );
    one_time_prekeys("bob more one-time prekeys", bob, m, r, 2);
    let rotated = bob.sotto.to_bytes().to_vec();
    same("bob device rotated", &rotated, &bob.model.encode());
    let spk_ids = [75, 175];
    let opk_count_at = 75 + 2 * 100;
    let opk_ids = [
        opk_count_at + 2,
        opk_count_at + 2 + 36,
        opk_count_at + 2 + 72,
    ];
    assert_eq!(rotated[74], 2);
    assert_eq!(&rotated[66..74], &[0, 0, 0, 3, 0, 0, 0, 5]);
    assert_eq!(&rotated[opk_ids[2]..opk_ids[2] + 4], &4u32.to_be_bytes());

    // Three more rotations: signed prekeys 2..=5 are kept, 1 is gone.
    for _ in 0..3 {
        bob.model.rotate(m).unwrap();
        bob.sotto.rotate_signed_prekey(r).unwrap();
        same_draws("bob rotates", r, &m.take());
    }
    let rotated_out = bob.sotto.to_bytes().to_vec();
    same("bob device rotated out", &rotated_out, &bob.model.encode());

    // Bob's session with its sending chain at N = 2^32 - 1, and with its
    // receiving chain 1000 below the last index.
    let ns_at = chain_count_at - 8;
    assert_eq!(&bob_state[ns_at..ns_at + 4], &1u32.to_be_bytes());
    let exhausted = with(bob_state, |b| {
        b[ns_at..ns_at + 4].copy_from_slice(&u32::MAX.to_be_bytes())
    });
    let recv_next_at = chain_count_at + 1 + 32 + 1 + 32;
    assert_eq!(
        &bob_state[recv_next_at..recv_next_at + 4],
        &1u32.to_be_bytes()
    );
    let near_max = with(bob_state, |b| {
        b[recv_next_at..recv_next_at + 4].copy_from_slice(&(u32::MAX - 1000).to_be_bytes())
    });
    // Signed by Bob's identity over his first signed prekey (the bundle's).
    let small_order_sig = sign_small_order_r(&bob.model.ed_seed, &spk_signed_data(bundle));

    let mut v = Vec::new();
    let mut add = |name: &str,
                   op: &str,
                   input: &[u8],
                   intended: Value,
                   extra: Value,
                   model_result: Result<(), Err>| {
        let got = model_result.expect_err(&format!("model accepts negative vector {name}"));
        assert_eq!(
            got, intended,
            "model: {name} fails differently than intended"
        );
        let mut x = json!({ "name": name, "operation": op, "input": hex(input), "error": got });
        for (k, val) in extra.as_object().unwrap() {
            x[k] = val.clone();
        }
        v.push(x);
    };
    let e = err;
    let ef = |n: &str, f: Value| json!({ "name": n, "fields": f });
    let none = json!({});
    let ds = |b: &[u8]| Sess::decode(b).map(drop);
    let dd = |b: &[u8]| Dev::decode(b).map(drop);
    assert!(ds(&two).is_ok() && ds(alice_pending).is_ok() && ds(&exhausted).is_ok());
    assert!(dd(&rotated).is_ok() && dd(&rotated_out).is_ok() && dd(bob_device).is_ok());

    // §4: a one-byte input is checked as a version before anything else.
    add(
        "message_one_byte_unknown_version",
        "Message::from_bytes",
        &[2],
        ef("UnsupportedVersion", json!({ "found": 2 })),
        none.clone(),
        Rd::header(&[2], 1).map(drop),
    );
    let short = with(&[2, 0x10], |b| b.extend([0u8; 10]));
    add(
        "identity_key_short_unknown_version",
        "IdentityKey::from_bytes",
        &short,
        ef("UnsupportedVersion", json!({ "found": 2 })),
        none.clone(),
        Rd::header(&short, 0x10).map(drop),
    );
    // §2: small-order Ed25519 keys fail at decoding.
    let small_order_ed = {
        let mut k = [0u8; 32];
        k[0] = 1;
        k
    };
    let b = with(&alice.model.ik_encoded(), |b| {
        b[2..34].copy_from_slice(&small_order_ed)
    });
    add(
        "identity_key_small_order_signing_key",
        "IdentityKey::from_bytes",
        &b,
        e("InvalidPublicKey"),
        none.clone(),
        Rd::header(&b, 0x10).and_then(|mut r| r.ik()).map(drop),
    );
    let b = with(bundle, |b| b[2..34].copy_from_slice(&small_order_ed));
    add(
        "bundle_small_order_signing_key",
        "PreKeyBundle::from_bytes",
        &b,
        e("InvalidPublicKey"),
        none.clone(),
        Rd::header(&b, 0x13).and_then(|mut r| r.ik()).map(drop),
    );
    // §4: flags, roles and ids are checked as soon as they are read, so an
    // input that ends right after a bad one is InvalidEncoding, not Truncated.
    let model_bundle = |b: &[u8]| -> Result<(), Err> {
        let mut r = Rd::header(b, 0x13)?;
        r.ik()?;
        r.u32()?;
        r.x()?;
        r.take(64)?;
        if r.flag()? {
            r.u32()?;
            r.x()?;
        }
        r.end()
    };
    let flag_at = 2 + 64 + 4 + 32 + 64;
    let b = with(bundle, |b| {
        b[flag_at] = 2;
        b.truncate(flag_at + 1);
    });
    add(
        "bundle_bad_one_time_flag_ends_after_flag",
        "PreKeyBundle::from_bytes",
        &b,
        e("InvalidEncoding"),
        none.clone(),
        model_bundle(&b),
    );
    let b = with(alice_pending, |b| b.truncate(3));
    let b = with(&b, |b| b[2] = 2);
    add(
        "session_bad_role_ends_after_role",
        "Session::from_bytes",
        &b,
        e("InvalidEncoding"),
        none.clone(),
        Sess::decode(&b).map(drop),
    );
    let pending_at = 2 + 1 + 128 + 32;
    let b = with(alice_pending, |b| {
        b[2] = 1;
        b.truncate(pending_at + 1);
    });
    add(
        "session_pending_on_responder_ends_after_flag",
        "Session::from_bytes",
        &b,
        e("InvalidEncoding"),
        none.clone(),
        Sess::decode(&b).map(drop),
    );
    let b = with(&rotated, |b| {
        b[spk_ids[1]..spk_ids[1] + 4].copy_from_slice(&1u32.to_be_bytes());
        b.truncate(spk_ids[1] + 4);
    });
    add(
        "device_signed_prekey_ids_repeated_ends_after_id",
        "Device::from_bytes",
        &b,
        e("InvalidEncoding"),
        none.clone(),
        Dev::decode(&b).map(drop),
    );
    // §2 Verify step 3: R is the identity point, and [S]B - [k]A = R.
    let sig_at = 2 + 64 + 4 + 32;
    let b = with(bundle, |b| {
        b[sig_at..sig_at + 64].copy_from_slice(&small_order_sig)
    });
    add(
        "bundle_signature_small_order_r",
        "PreKeyBundle::verify",
        &b,
        e("InvalidSignature"),
        none.clone(),
        model_verify_bundle(&b),
    );
    // §5.5: verify_for compares the identity before the signature.
    let a_ik = alice.model.ik_encoded();
    let b = with(bundle, |b| b[sig_at - 1] ^= 1);
    add(
        "bundle_for_other_identity_bad_signature",
        "PreKeyBundle::verify_for",
        &b,
        e("IdentityMismatch"),
        json!({ "expected": hex(&a_ik) }),
        if b[2..66] != a_ik[2..] {
            Err(e("IdentityMismatch"))
        } else {
            model_verify_bundle(&b)
        },
    );

    // §10.2 session decoder.
    let sf = "Session::from_bytes";
    let b = with(alice_pending, |b| b[2] = 1);
    assert_eq!(alice_pending[2 + 1 + 128 + 32], 1, "pending flag");
    add(
        "session_pending_on_responder",
        sf,
        &b,
        e("InvalidEncoding"),
        none.clone(),
        ds(&b),
    );
    let b = with(&two, |b| {
        b[older + 32] = 1;
        let ck: Vec<u8> = b[newer + 33..newer + 65].to_vec();
        b.splice(older + 33..older + 33, ck);
    });
    add(
        "session_chain_key_on_older_chain",
        sf,
        &b,
        e("InvalidEncoding"),
        none.clone(),
        ds(&b),
    );
    // §4: the flag is checked as soon as it is read, before its chain key.
    let b = with(&two, |b| {
        b[older + 32] = 1;
        b.truncate(older + 33);
    });
    add(
        "session_chain_key_on_older_chain_ends_after_flag",
        sf,
        &b,
        e("InvalidEncoding"),
        none.clone(),
        ds(&b),
    );
    let b = with(&two, |b| {
        b[newer + 32] = 0;
        b.drain(newer + 33..newer + 65);
    });
    add(
        "session_no_chain_key_on_current_chain",
        sf,
        &b,
        e("InvalidEncoding"),
        none.clone(),
        ds(&b),
    );
    let b = with(&two, |b| b[newer..newer + 32].copy_from_slice(fresh));
    add(
        "session_current_chain_not_dhr",
        sf,
        &b,
        e("InvalidEncoding"),
        none.clone(),
        ds(&b),
    );
    let b = with(&b, |b| b.push(0));
    add(
        "session_current_chain_not_dhr_trailing_bytes",
        sf,
        &b,
        e("TrailingBytes"),
        none.clone(),
        ds(&b),
    );
    let set_index =
        |b: &mut Vec<u8>, at: usize, i: u32| b[at..at + 4].copy_from_slice(&i.to_be_bytes());
    let b = with(&two, |b| {
        set_index(b, first_key, 1);
        set_index(b, second_key, 0);
    });
    add(
        "session_skipped_indices_decreasing",
        sf,
        &b,
        e("InvalidEncoding"),
        none.clone(),
        ds(&b),
    );
    let b = with(&two, |b| set_index(b, second_key, 0));
    add(
        "session_skipped_indices_repeated",
        sf,
        &b,
        e("InvalidEncoding"),
        none.clone(),
        ds(&b),
    );
    let b = with(&two, |b| set_index(b, second_key, 3));
    add(
        "session_skipped_index_not_below_next",
        sf,
        &b,
        e("InvalidEncoding"),
        none.clone(),
        ds(&b),
    );
    // §4: the index is checked as soon as it is read, before its key.
    let b = with(&two, |b| {
        set_index(b, second_key, 3);
        b.truncate(second_key + 4);
    });
    add(
        "session_skipped_index_not_below_next_ends_after_index",
        sf,
        &b,
        e("InvalidEncoding"),
        none.clone(),
        ds(&b),
    );

    // §10.3 device decoder.
    let df = "Device::from_bytes";
    let b = with(bob_device, |b| set_index(b, 75, 2));
    add(
        "device_signed_prekey_id_not_below_next",
        df,
        &b,
        e("InvalidEncoding"),
        none.clone(),
        dd(&b),
    );
    let b = with(&rotated, |b| set_index(b, spk_ids[1], 3));
    add(
        "device_signed_prekey_id_not_below_next_rotated",
        df,
        &b,
        e("InvalidEncoding"),
        none.clone(),
        dd(&b),
    );
    let b = with(&rotated, |b| set_index(b, spk_ids[1], 1));
    add(
        "device_signed_prekey_ids_repeated",
        df,
        &b,
        e("InvalidEncoding"),
        none.clone(),
        dd(&b),
    );
    let b = with(&rotated, |b| {
        set_index(b, spk_ids[0], 2);
        set_index(b, spk_ids[1], 1);
    });
    add(
        "device_signed_prekey_ids_decreasing",
        df,
        &b,
        e("InvalidEncoding"),
        none.clone(),
        dd(&b),
    );
    let b = with(&rotated, |b| set_index(b, opk_ids[1], 2));
    add(
        "device_one_time_prekey_ids_repeated",
        df,
        &b,
        e("InvalidEncoding"),
        none.clone(),
        dd(&b),
    );
    let b = with(&rotated, |b| set_index(b, opk_ids[0], 3));
    add(
        "device_one_time_prekey_ids_decreasing",
        df,
        &b,
        e("InvalidEncoding"),
        none.clone(),
        dd(&b),
    );
    let b = with(&rotated, |b| set_index(b, opk_ids[2], 5));
    add(
        "device_one_time_prekey_id_not_below_next",
        df,
        &b,
        e("InvalidEncoding"),
        none.clone(),
        dd(&b),
    );

    // §10.4: the size bound applies to the sealed input.
    let sk = json!({ "storage_key": hex(storage), "pad_to": MAX_STATE_LEN + 1 });
    let over = |t: u8| -> Result<(), Err> {
        let b = with(&sealed[..35], |b| {
            b[2] = t;
            b.resize(MAX_STATE_LEN + 1, 0)
        });
        if b.len() > model::MAX_STATE {
            Err(e("TooLarge"))
        } else {
            Ok(())
        }
    };
    add(
        "sealed_session_over_max_state_len",
        "Session::unseal",
        &sealed[..35],
        e("TooLarge"),
        sk.clone(),
        over(0x20),
    );
    let b = with(&sealed[..35], |b| b[2] = 0x21);
    add(
        "sealed_device_over_max_state_len",
        "Device::unseal",
        &b,
        e("TooLarge"),
        sk,
        over(0x21),
    );

    // §10.1: MAX_STATE_LEN = 2^20 itself is allowed (then the padding is
    // trailing bytes, or breaks the tag).
    let at_max = |b: &[u8]| with(b, |b| b.resize(MAX_STATE_LEN, 0));
    add(
        "session_at_max_state_len",
        sf,
        bob_state,
        e("TrailingBytes"),
        json!({ "pad_to": MAX_STATE_LEN }),
        ds(&at_max(bob_state)),
    );
    add(
        "sealed_session_at_max_state_len",
        "Session::unseal",
        sealed,
        e("AuthenticationFailed"),
        json!({ "storage_key": hex(storage), "pad_to": MAX_STATE_LEN }),
        {
            let b = at_max(sealed);
            assert!(b.len() <= model::MAX_STATE);
            let (key, nonce) = model::key_nonce(&b[3..35], storage, model::L_SEALED);
            model::open(&key, &nonce, &b[..35], &b[35..])
                .map(drop)
                .ok_or_else(|| e("AuthenticationFailed"))
        },
    );

    // §8.5 / §8.6: ChainExhausted.
    let enc = |state: &[u8], len: usize| Sess::decode(state).unwrap().encrypt_check(len);
    add(
        "encrypt_chain_exhausted",
        "Session::encrypt",
        b"late",
        e("ChainExhausted"),
        json!({ "session": "bob_session_sending_exhausted" }),
        enc(&exhausted, 4),
    );
    add(
        "encrypt_exhausted_plaintext_over_max",
        "Session::encrypt",
        &[],
        e("PlaintextTooLarge"),
        json!({ "session": "bob_session_sending_exhausted", "pad_to": MAX_PLAINTEXT_LEN + 1 }),
        enc(&exhausted, MAX_PLAINTEXT_LEN + 1),
    );
    let dec = |state: &[u8], msg: &[u8]| {
        let mut s = Sess::decode(state).unwrap();
        let res = s.try_decrypt(msg).map(drop);
        assert!(
            res.is_ok() || s.encode().0 == state,
            "model changed state on error"
        );
        res
    };
    let near = json!({ "session": "bob_session_receiving_near_max" });
    let b = ratchet_message(a1_key, 0, u32::MAX);
    add(
        "decrypt_chain_exhausted",
        "Session::decrypt",
        &b,
        e("ChainExhausted"),
        near.clone(),
        dec(&near_max, &b),
    );
    let b = ratchet_message(a1_key, 0, u32::MAX - 1);
    add(
        "decrypt_last_usable_number",
        "Session::decrypt",
        &b,
        e("AuthenticationFailed"),
        near,
        dec(&near_max, &b),
    );

    // §6: after four rotations signed prekey 1 is gone.
    let b = with(m1, |b| {
        b[66..98].copy_from_slice(fresh);
        b[103..107].copy_from_slice(&2u32.to_be_bytes());
    });
    add(
        "rotated_out_signed_prekey",
        "Session::accept",
        &b,
        ef("UnknownSignedPreKey", json!({ "id": 1 })),
        json!({ "device": "bob_device_rotated_out" }),
        {
            let mut d = Dev::decode(&rotated_out).unwrap();
            model::try_accept(&mut d, &b).map(drop)
        },
    );

    let fixtures = vec![
        ("bob_session_sending_exhausted", exhausted),
        ("bob_session_receiving_near_max", near_max),
        ("bob_device_rotated_out", rotated_out),
    ];
    (v, fixtures)
}

/// The data a bundle's signed prekey signature covers (§5.3), from the
/// bundle's own fields.
fn spk_signed_data(b: &[u8]) -> Vec<u8> {
    let mut d = model::L_SPK.as_bytes().to_vec();
    d.extend(&b[34..66]);
    d.extend(&b[66..102]);
    d
}

/// §5.5 verify, by the model: strict Ed25519 over the signed data.
fn model_verify_bundle(b: &[u8]) -> Result<(), Err> {
    use ed25519_dalek::{Signature, VerifyingKey};
    let vk = VerifyingKey::from_bytes(b[2..34].try_into().unwrap()).unwrap();
    let d = spk_signed_data(b);
    let sig = Signature::from_bytes(b[102..166].try_into().unwrap());
    vk.verify_strict(&d, &sig)
        .map_err(|_| err("InvalidSignature"))
}
