//! The crate-private derivations and key agreement against the recorded
//! values of `test-vectors/kdf.json` and `agreement.json` (SPEC.md §13),
//! which come from the reference model (`testkit/src/model/`, written from
//! SPEC.md; its ML-KEM is `libcrux-ml-kem`, not the crate sotto uses): the
//! §2.1 conversion, ML-KEM-1024 and the KEM binding (§2, §7.4), the X3DH
//! and PQXDH secret from both sides (§7.2, §7.3), root, chain and message
//! keys (§8.2 to §8.4) and sealed-state keys (§10.5). No public API shows
//! these values; `tests/protocol/vectors.rs` checks every file through the
//! public API.
//!
//! The group ratchet's `Step`, `Derive_m` and `Key` rows of `kdf.json` are
//! not here: `group::ratchet` is private to `group`, whose own tests and
//! the public-API verifier of `group.json` cover them.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use rand_core::{TryCryptoRng, TryRng};
use serde_json::Value;
use sha2::{Digest, Sha512};
use x25519_dalek::{PublicKey, StaticSecret};

use crate::codec::Codec;
use crate::crypto::kem::{self, DecapsulationSeed, EncapsulationKey};
use crate::crypto::{self, label};
use crate::error::Error;
use crate::keys::{IdentityKey, IdentityKeyPair};
use crate::ratchet::{ChainKey, RootKey};
use crate::sealed::{SavedState, StorageKey};
use crate::testing::sessions;
use crate::{PreKeyBundle, Session, x3dh};

/// The vectors of a file, after checking its area and format.
fn load(text: &str, area: &str) -> Vec<Value> {
    let file: Value = serde_json::from_str(text).unwrap();
    assert_eq!(file["area"], area);
    assert_eq!(file["format"], 2, "{area}.json is not format 2");
    file["vectors"].as_array().unwrap().clone()
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The hex field `key` of `v`.
fn b(v: &Value, key: &str) -> Vec<u8> {
    let s = v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no hex field {key:?}"));
    hex(s)
}

/// The hex field `key` of `v`, or `None` for `null`.
fn opt(v: &Value, key: &str) -> Option<Vec<u8>> {
    (!v[key].is_null()).then(|| b(v, key))
}

fn arr<const N: usize>(v: &Value, key: &str) -> [u8; N] {
    b(v, key)
        .try_into()
        .unwrap_or_else(|_| panic!("{key:?} is not {N} bytes"))
}

/// The ASCII label in field `key`, which must be `expected`.
fn label_is(v: &Value, key: &str, expected: &[u8]) {
    assert_eq!(v[key].as_str().unwrap().as_bytes(), expected, "label {key}");
}

/// An identity key's encoding (§5.1) from its 32 bytes.
fn encoded_identity(key: &[u8]) -> Vec<u8> {
    let mut out = vec![crate::codec::VERSION, crate::codec::tag::IDENTITY_KEY];
    out.extend_from_slice(key);
    out
}

fn identity_conversion(v: &Value) {
    let seed: [u8; 32] = arr(v, "seed");
    let pair = IdentityKeyPair::from_seed(&seed);
    assert_eq!(Sha512::digest(seed).as_slice(), b(v, "sha512_of_seed"));
    assert_eq!(pair.public().as_bytes().as_slice(), b(v, "identity_key"));
    assert_eq!(
        pair.public().to_bytes().as_slice(),
        b(v, "identity_key_encoded")
    );
    // IdX(seed): the first half of SHA-512(seed), unreduced and unclamped.
    assert_eq!(pair.dh().to_bytes().as_slice(), b(v, "idx"));
    assert_eq!(&b(v, "idx")[..], &b(v, "sha512_of_seed")[..32]);
    // IdU(IK), and pub(IdX(seed)) is the same point.
    assert_eq!(pair.public().dh().as_bytes().as_slice(), b(v, "idu"));
    assert_eq!(
        PublicKey::from(pair.dh()).as_bytes().as_slice(),
        b(v, "idu")
    );
    // The aliases of §5.1 decode and convert as recorded.
    let negated =
        IdentityKey::from_bytes(&encoded_identity(&b(v, "negated_identity_key"))).unwrap();
    assert_eq!(negated.dh().as_bytes().as_slice(), b(v, "negated_idu"));
    assert_eq!(b(v, "negated_idu"), b(v, "idu"));
    let torsion =
        IdentityKey::from_bytes(&encoded_identity(&b(v, "torsion_identity_key"))).unwrap();
    assert_eq!(torsion.dh().as_bytes().as_slice(), b(v, "torsion_idu"));
    assert_ne!(b(v, "torsion_idu"), b(v, "idu"));
    let peer = StaticSecret::from(arr::<32>(v, "peer_secret"));
    let with_idu = crypto::x25519(&peer, pair.public().dh()).unwrap();
    let with_torsion = crypto::x25519(&peer, torsion.dh()).unwrap();
    assert_eq!(with_idu.as_slice(), b(v, "dh_with_idu"));
    assert_eq!(with_torsion.as_slice(), b(v, "dh_with_torsion_idu"));
    assert_eq!(*with_idu, *with_torsion, "clamping clears the torsion part");
}

fn decapsulation_seed(seed: &[u8]) -> DecapsulationSeed {
    DecapsulationSeed::new(Box::new(seed.try_into().unwrap()))
}

fn ml_kem(v: &Value) {
    let mut seed = b(v, "d");
    seed.extend_from_slice(&b(v, "z"));
    let dk = decapsulation_seed(&seed);
    let ek = dk.encapsulation_key();
    assert_eq!(ek.as_bytes().as_slice(), b(v, "ek"));
    assert!(EncapsulationKey::from_bytes(&arr(v, "ek")).unwrap() == ek);
    let (ct, ss) = kem::encapsulate(&ek, &arr(v, "m"));
    assert_eq!(ct.as_slice(), b(v, "ct"));
    assert_eq!(ss.as_slice(), b(v, "ss"));
    let (opened, ek_again) = kem::decapsulate(&dk, &ct);
    assert_eq!(opened.as_slice(), b(v, "ss"));
    assert!(ek_again == ek);
    // Implicit rejection: a changed ciphertext gives the recorded other
    // secret, not an error.
    let (rejected, _) = kem::decapsulate(&dk, &arr(v, "modified_ct"));
    assert_eq!(rejected.as_slice(), b(v, "modified_ct_ss"));
    assert_ne!(b(v, "modified_ct_ss"), b(v, "ss"));
    // The FIPS 203 check on a key from outside.
    assert_eq!(
        EncapsulationKey::from_bytes(&arr(v, "ek_with_coefficient_4095")).err(),
        Some(Error::InvalidPublicKey)
    );
}

fn kem_binding(v: &Value) {
    label_is(v, "info", label::KEM_BINDING);
    let key = opt(v, "ek").map(|ek| EncapsulationKey::from_bytes(&ek.try_into().unwrap()).unwrap());
    let encoded = match &key {
        Some(key) => {
            let mut out = Vec::new();
            key.encode(&mut out);
            out
        }
        None => vec![0],
    };
    assert_eq!(encoded, b(v, "encoded"));
    assert_eq!(
        x3dh::kem_binding(key.as_ref()).as_slice(),
        b(v, "kem_binding")
    );
}

/// An RNG that hands out `bytes` once, for a seal whose salt is recorded.
struct Recorded(Option<Vec<u8>>);

impl TryRng for Recorded {
    type Error = core::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        unreachable!("sealing draws bytes")
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        unreachable!("sealing draws bytes")
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        let bytes = self.0.take().expect("one draw");
        dst.copy_from_slice(&bytes);
        Ok(())
    }
}

impl TryCryptoRng for Recorded {}

/// Sealed-state keys (§10.5): the key and nonce from the storage key
/// (`ikm`) and salt, and the associated data from the header and context.
/// A state sealed with the recorded key, nonce and associated data opens
/// with sotto, and sotto's seal with the recorded salt writes those bytes.
fn sealed_state_keys(v: &Value) {
    label_is(v, "info", label::SEALED_STATE);
    let (key, nonce) = crypto::aead_key_nonce(&b(v, "salt"), &b(v, "ikm"), label::SEALED_STATE);
    assert_eq!(key.as_slice(), b(v, "aes_key"));
    assert_eq!(nonce.as_slice(), b(v, "nonce"));
    let (header, context) = (b(v, "header"), b(v, "context"));
    let mut aad = header.clone();
    aad.extend_from_slice(&u16::try_from(context.len()).unwrap().to_be_bytes());
    aad.extend_from_slice(&context);
    assert_eq!(aad, b(v, "aad"));

    let (session, _) = sessions(3);
    let plain = session.to_bytes();
    let mut blob = header.clone();
    let mut body = plain.to_vec();
    let tag = crypto::aead_seal(&arr(v, "aes_key"), &arr(v, "nonce"), &aad, &mut body).unwrap();
    blob.extend_from_slice(&body);
    blob.extend_from_slice(&tag);
    // The recorded header: version, type, inner type (a session) and salt.
    let l = testkit::layout::sealed(&blob);
    assert_eq!(header.len(), l.end_of("salt"));
    assert_eq!(l.slice(&blob, "salt"), b(v, "salt").as_slice());
    let inner = l.slice(&blob, "inner_type");
    assert_eq!(inner, [Session::TYPE_TAG], "the vectors seal sessions");
    let storage = StorageKey::from_bytes(arr(v, "ikm"));
    let opened = Session::unseal(&blob, &storage, &context).unwrap();
    assert_eq!(*opened.to_bytes(), *plain);
    let sealed = session
        .seal(&storage, &context, &mut Recorded(Some(b(v, "salt"))))
        .unwrap();
    assert_eq!(sealed, blob);
}

#[test]
fn kdf_vectors_match_internal_functions() {
    let vectors = load(include_str!("../test-vectors/kdf.json"), "kdf");
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for v in &vectors {
        let kind = v["kind"].as_str().unwrap();
        match kind {
            "identity_conversion" => identity_conversion(v),
            "fingerprint" => {
                label_is(v, "info", label::FINGERPRINT);
                let key =
                    IdentityKey::from_bytes(&encoded_identity(&b(v, "identity_key"))).unwrap();
                assert_eq!(key.fingerprint().as_bytes().as_slice(), b(v, "fingerprint"));
                assert_eq!(format!("{}", key.fingerprint()), v["display"]);
            }
            "ml_kem_1024" => ml_kem(v),
            "kem_binding" => kem_binding(v),
            "root_step" => {
                label_is(v, "info", label::ROOT);
                let (rk, ck) = RootKey::from_bytes(arr(v, "root_key")).step(&arr(v, "dh_output"));
                assert_eq!(rk.as_bytes().as_slice(), b(v, "new_root_key"));
                assert_eq!(ck.as_bytes().as_slice(), b(v, "chain_key"));
            }
            "chain_step" => {
                label_is(v, "info", label::CHAIN_MESSAGE);
                label_is(v, "next_info", label::CHAIN_NEXT);
                let (mk, ck) = ChainKey::from_bytes(arr(v, "chain_key")).step();
                assert_eq!(mk.as_bytes().as_slice(), b(v, "message_key"));
                assert_eq!(ck.as_bytes().as_slice(), b(v, "next_chain_key"));
            }
            "message_keys" => {
                // Pairwise (§8.4) and group (§15.5) message keys.
                let info = v["info"].as_str().unwrap().as_bytes();
                assert!(
                    info == label::MESSAGE_KEYS || info == label::GROUP_MESSAGE_KEYS,
                    "label {info:?}"
                );
                let (key, nonce) = crypto::aead_key_nonce(&b(v, "salt"), &b(v, "ikm"), info);
                assert_eq!(key.as_slice(), b(v, "aes_key"));
                assert_eq!(nonce.as_slice(), b(v, "nonce"));
            }
            "sealed_state_keys" => sealed_state_keys(v),
            // `group::ratchet` is private to `group` (module comment).
            "group_step" | "group_derive" | "group_key" => continue,
            other => panic!("unknown kind {other}"),
        }
        *kinds.entry(kind.to_string()).or_default() += 1;
    }
    for kind in [
        "identity_conversion",
        "fingerprint",
        "ml_kem_1024",
        "kem_binding",
        "root_step",
        "chain_step",
        "message_keys",
        "sealed_state_keys",
    ] {
        assert!(kinds.contains_key(kind), "no {kind} vector");
    }
}

/// What the key agreement of one session gives, computed here: compared
/// with the initiator's trace, then with the responder's.
#[derive(Clone)]
struct Agreement {
    dh: [Option<Vec<u8>>; 4],
    kem_shared_secret: Option<Vec<u8>>,
    sk: Vec<u8>,
    kem_binding: Vec<u8>,
    associated_data: Vec<u8>,
    info: &'static [u8],
}

impl Agreement {
    /// The fields both sides' traces have (§7.2, §7.3).
    fn check(&self, trace: &Value) {
        for (i, dh) in self.dh.iter().enumerate() {
            let key = format!("dh{}", i + 1);
            assert_eq!(opt(trace, &key), *dh, "{key}");
        }
        assert_eq!(opt(trace, "kem_shared_secret"), self.kem_shared_secret);
        label_is(trace, "info", self.info);
        assert_eq!(b(trace, "kdf_salt"), [0; 32]);
        let mut input = vec![0xff; 32];
        for part in self.dh.iter().flatten().chain(&self.kem_shared_secret) {
            input.extend_from_slice(part);
        }
        assert_eq!(b(trace, "kdf_input"), input);
        assert_eq!(b(trace, "sk"), self.sk, "sk");
        label_is(trace, "kem_binding_info", label::KEM_BINDING);
        assert_eq!(b(trace, "kem_binding"), self.kem_binding);
        assert_eq!(b(trace, "associated_data"), self.associated_data);
    }
}

/// The entry with id `id` of the device's list `list`.
fn by_id<'a>(device: &'a Value, list: &str, id: u32) -> &'a Value {
    device[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id)
        .unwrap_or_else(|| panic!("no {list} entry {id}"))
}

/// One successful `initiate`: the initiator's and the responder's
/// computations from the secrets in the devices' last `explain` steps, the
/// bundle and the recorded draws, checked against the step's trace.
fn initiate(step: &Value, devices: &BTreeMap<String, Value>) -> Agreement {
    let trace = &step["trace"];
    let alice = &devices[step["device"].as_str().unwrap()];
    let alice_pair = IdentityKeyPair::from_seed(&arr(alice, "identity_seed"));
    let bundle = PreKeyBundle::from_bytes(&b(step, "bundle")).unwrap();
    let bob_id = *bundle.identity();
    let bob = devices
        .values()
        .find(|d| b(d, "identity_key") == bob_id.as_bytes())
        .expect("the bundle's device was explained");
    let bob_pair = IdentityKeyPair::from_seed(&arr(bob, "identity_seed"));
    assert!(*bob_pair.public() == bob_id);

    let spk = by_id(bob, "signed_prekeys", bundle.signed_prekey().id());
    let spk_secret = StaticSecret::from(arr::<32>(spk, "secret"));
    let spk_public = PublicKey::from(&spk_secret);
    assert_eq!(*spk_public.as_bytes(), bundle.signed_prekey().key_bytes());
    let opk_secret = bundle.one_time_prekey().map(|opk| {
        let secret = StaticSecret::from(arr::<32>(
            by_id(bob, "one_time_prekeys", opk.id()),
            "secret",
        ));
        assert_eq!(PublicKey::from(&secret).to_bytes(), opk.key_bytes());
        secret
    });
    let opk_public = opk_secret.as_ref().map(PublicKey::from);
    let kem_seed = bundle.kem_prekey().map(|kem| {
        let entry = bob["one_time_kem_prekeys"]
            .as_array()
            .unwrap()
            .iter()
            .chain(bob["last_resort_kem_prekeys"].as_array().unwrap())
            .find(|e| e["id"] == kem.id())
            .expect("the bundle's KEM prekey");
        let seed = decapsulation_seed(&b(entry, "seed"));
        assert_eq!(seed.encapsulation_key().as_bytes(), kem.key_bytes());
        seed
    });

    // The initiator (§7.2): the base key and `m` are its draws.
    let base = StaticSecret::from(arr::<32>(trace, "base_key_private"));
    let base_public = PublicKey::from(&base);
    assert_eq!(
        base_public.as_bytes().as_slice(),
        b(trace, "base_key_public")
    );
    let dh = [
        Some(crypto::x25519(alice_pair.dh(), &spk_public).unwrap()),
        Some(crypto::x25519(&base, bob_id.dh()).unwrap()),
        Some(crypto::x25519(&base, &spk_public).unwrap()),
        opk_public.map(|opk| crypto::x25519(&base, &opk).unwrap()),
    ]
    .map(|d| d.map(|d| d.to_vec()));
    let ek = kem_seed.as_ref().map(DecapsulationSeed::encapsulation_key);
    let encapsulated = ek
        .as_ref()
        .map(|ek| kem::encapsulate(ek, &arr(trace, "kem_m")));
    assert_eq!(
        opt(trace, "kem_ciphertext"),
        encapsulated.as_ref().map(|(ct, _)| ct.to_vec())
    );
    let ss = encapsulated.as_ref().map(|(_, ss)| **ss);
    let sk = x3dh::KeyMaterial::initiator(
        &alice_pair,
        &base,
        &bob_id,
        &spk_public,
        opk_public.as_ref(),
    )
    .unwrap()
    .shared_secret(ss.as_ref());
    let kem_binding = x3dh::kem_binding(ek.as_ref());
    let agreement = Agreement {
        dh,
        kem_shared_secret: ss.map(|s| s.to_vec()),
        sk: sk.to_vec(),
        kem_binding: kem_binding.to_vec(),
        associated_data: x3dh::associated_data(alice_pair.public(), &bob_id, &kem_binding).to_vec(),
        info: if ss.is_some() {
            label::PQXDH
        } else {
            label::X3DH
        },
    };
    agreement.check(trace);

    // The responder (§7.3), from the same public values: the same secret.
    let decapsulated = kem_seed
        .as_ref()
        .zip(encapsulated.as_ref())
        .map(|(seed, (ct, _))| kem::decapsulate(seed, ct));
    let responder_ss = decapsulated.as_ref().map(|(ss, _)| **ss);
    assert_eq!(responder_ss, ss);
    let responder_sk = x3dh::KeyMaterial::responder(
        &bob_pair,
        &spk_secret,
        opk_secret.as_ref(),
        alice_pair.public(),
        &base_public,
    )
    .unwrap()
    .shared_secret(responder_ss.as_ref());
    assert_eq!(*responder_sk, *sk);
    let responder_kb = x3dh::kem_binding(decapsulated.as_ref().map(|(_, ek)| ek));
    assert_eq!(responder_kb, kem_binding);
    agreement
}

#[test]
fn agreement_vectors_match_internal_functions() {
    let vectors = load(include_str!("../test-vectors/agreement.json"), "agreement");
    let (mut pqxdh, mut x3dh, mut accepted) = (0, 0, 0);
    for v in &vectors {
        // The last explained form of each named state, the agreement of
        // each started session, and each session's prekey messages.
        let mut devices: BTreeMap<String, Value> = BTreeMap::new();
        let mut sessions: BTreeMap<String, Agreement> = BTreeMap::new();
        let mut first_messages: Vec<(String, Agreement)> = Vec::new();
        for step in v["steps"].as_array().unwrap() {
            let ok = step["error"].is_null();
            match step["op"].as_str().unwrap() {
                "explain" if step["state"].is_string() => {
                    let name = step["state"].as_str().unwrap().to_string();
                    devices.insert(name, step["out"]["decoded"].clone());
                }
                "initiate" if ok => {
                    let agreement = initiate(step, &devices);
                    if agreement.kem_shared_secret.is_some() {
                        pqxdh += 1;
                    } else {
                        x3dh += 1;
                    }
                    sessions.insert(step["session"].as_str().unwrap().to_string(), agreement);
                }
                "encrypt" if ok && step["trace"]["kind"] == "prekey" => {
                    let agreement = sessions[step["session"].as_str().unwrap()].clone();
                    let message = step["out"]["message"].as_str().unwrap().to_string();
                    first_messages.push((message, agreement));
                }
                "accept" if ok => {
                    let message = step["message"].as_str().unwrap();
                    let (_, agreement) = first_messages
                        .iter()
                        .find(|(m, _)| m == message)
                        .expect("an accepted message that an initiate step started");
                    agreement.check(&step["trace"]);
                    accepted += 1;
                }
                _ => {}
            }
        }
    }
    // §7: every kind of handshake the file has, each accepted.
    assert_eq!((pqxdh, x3dh, accepted), (6, 3, 8));
}

/// The recorded-value checks above fail on a changed value: a test that
/// can fail.
#[test]
#[should_panic(expected = "sk")]
fn a_changed_secret_fails_the_agreement_check() {
    let vectors = load(include_str!("../test-vectors/agreement.json"), "agreement");
    let steps = vectors[0]["steps"].as_array().unwrap();
    let mut devices = BTreeMap::new();
    for step in steps {
        if step["op"] == "explain" && step["state"].is_string() {
            devices.insert(
                step["state"].as_str().unwrap().to_string(),
                step["out"]["decoded"].clone(),
            );
        }
        if step["op"] == "initiate" {
            let mut agreement = initiate(step, &devices);
            agreement.sk[0] ^= 1;
            agreement.check(&step["trace"]);
        }
    }
}
