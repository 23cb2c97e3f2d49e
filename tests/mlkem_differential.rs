//! ML-KEM-1024 differential test: RustCrypto `ml-kem` (sotto's core KEM)
//! against `libcrux-ml-kem` (independent, formally verified), byte for byte,
//! on seeded random inputs: key generation from the 64-byte seed, the FIPS 203
//! encapsulation key check, encapsulation with a given m, decapsulation, and
//! implicit rejection of altered and random ciphertexts.
//!
//! 100,000 cases in an optimised build (`cargo test --release --test
//! mlkem_differential`, CI's own step, about 80 s); 1,000 in a debug build,
//! where `ml-kem`'s generic code is compiled inside this test crate at its
//! opt-level. `MLKEM_DIFF_ITERATIONS` overrides either.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, missing_docs)]

use libcrux_ml_kem::mlkem1024 as lc;
#[allow(deprecated)]
use ml_kem::ExpandedKeyEncoding;
use ml_kem::kem::{Decapsulate, KeyExport, KeyInit};
use ml_kem::{DecapsulationKey, EncapsulationKey, MlKem1024};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

const EK_LEN: usize = 1568;
const CT_LEN: usize = 1568;
const Q: u16 = 3329;

fn iterations() -> u64 {
    let default = if cfg!(debug_assertions) {
        1_000
    } else {
        100_000
    };
    std::env::var("MLKEM_DIFF_ITERATIONS").map_or(default, |v| v.parse().unwrap())
}

fn set_coefficient(ek: &mut [u8; EK_LEN], i: usize, value: u16) {
    let at = 3 * (i / 2);
    if i.is_multiple_of(2) {
        let [lo, hi] = value.to_le_bytes();
        ek[at] = lo;
        ek[at + 1] = (ek[at + 1] & 0xf0) | (hi & 0x0f);
    } else {
        let [lo, hi] = (value << 4).to_le_bytes();
        ek[at + 1] = (ek[at + 1] & 0x0f) | (lo & 0xf0);
        ek[at + 2] = hi;
    }
}

/// Both crates on one (seed, m) and derived forgeries; panics on any difference.
fn one_case(rng: &mut ChaCha20Rng, i: u64, stats: &mut [u64; 3]) {
    let mut seed = [0u8; 64];
    let mut m = [0u8; 32];
    let mut m2 = [0u8; 32];
    rng.fill_bytes(&mut seed);
    rng.fill_bytes(&mut m);
    rng.fill_bytes(&mut m2);

    // Key generation from d || z: same encapsulation key and expanded key.
    let dk = DecapsulationKey::<MlKem1024>::new(&seed.into());
    let ek: [u8; EK_LEN] = dk.encapsulation_key().to_bytes().into();
    let kp = lc::generate_key_pair(seed);
    assert_eq!(&ek, kp.pk(), "ek, iteration {i}");
    #[allow(deprecated)]
    let expanded = dk.to_expanded_bytes();
    assert_eq!(expanded.as_slice(), kp.sk().as_slice(), "dk, iteration {i}");

    // Encapsulation with m, after the key check, from the wire bytes.
    let rc_ek = EncapsulationKey::<MlKem1024>::new(&ek.into()).unwrap();
    assert!(lc::validate_public_key(kp.public_key()));
    let (ct, ss) = rc_ek.encapsulate_deterministic(&m.into());
    let (lct, lss) = lc::encapsulate(kp.public_key(), m);
    assert_eq!(ct.as_slice(), lct.as_slice(), "ct, iteration {i}");
    assert_eq!(ss.as_slice(), &lss, "ss, iteration {i}");

    // Decapsulation.
    let ct_arr: [u8; CT_LEN] = ct.into();
    assert_eq!(
        dk.decapsulate(&ct).as_slice(),
        &lss,
        "decaps, iteration {i}"
    );
    assert_eq!(lc::decapsulate(kp.private_key(), &lct), lss);

    // Implicit rejection: one flipped bit, and every 8th case a random ciphertext.
    let mut bad = ct_arr;
    if i % 8 == 7 {
        rng.fill_bytes(&mut bad);
    } else {
        let at = (rng.next_u32() as usize) % CT_LEN;
        bad[at] ^= 1 << (rng.next_u32() % 8);
    }
    let rej = dk.decapsulate(&bad.into());
    let lrej = lc::decapsulate(kp.private_key(), &lc::MlKem1024Ciphertext::from(bad));
    assert_eq!(rej.as_slice(), &lrej, "rejection, iteration {i}");
    assert_ne!(&lrej, &lss, "rejection equals secret, iteration {i}");

    // The key check: one coefficient set to a random 12-bit value; both
    // crates must agree on the verdict and, when accepted, on encapsulation.
    let mut tampered = ek;
    let coefficient = (rng.next_u32() % 1024) as usize;
    let value = (rng.next_u32() % 4096) as u16;
    set_coefficient(&mut tampered, coefficient, value);
    let ours = EncapsulationKey::<MlKem1024>::new(&tampered.into());
    let lpk = lc::MlKem1024PublicKey::from(tampered);
    let theirs = lc::validate_public_key(&lpk);
    assert_eq!(ours.is_ok(), theirs, "key check, iteration {i}");
    assert_eq!(theirs, value < Q, "key check verdict, iteration {i}");
    match ours {
        Ok(key) => {
            let (tct, tss) = key.encapsulate_deterministic(&m2.into());
            let (ltct, ltss) = lc::encapsulate(&lpk, m2);
            assert_eq!(
                tct.as_slice(),
                ltct.as_slice(),
                "tampered ct, iteration {i}"
            );
            assert_eq!(tss.as_slice(), &ltss, "tampered ss, iteration {i}");
            stats[0] += 1;
        }
        Err(_) => stats[1] += 1,
    }
    stats[2] += 1;
}

#[test]
fn mlkem1024_ml_kem_agrees_with_libcrux() {
    let n = iterations();
    let mut rng = ChaCha20Rng::from_seed(*b"sotto ml-kem differential v1 \0\0\0");
    let mut stats = [0u64; 3];
    for i in 0..n {
        one_case(&mut rng, i, &mut stats);
    }
    assert_eq!(stats[2], n);
    if n >= 1000 {
        // About 81% of tampered keys stay in range (3329 / 4096).
        assert!(stats[0] > n / 2 && stats[1] > n / 10, "{stats:?}");
    }
    std::println!(
        "{n} cases; tampered keys accepted {}, rejected {}",
        stats[0],
        stats[1]
    );
}
