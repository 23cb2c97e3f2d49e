//! The named bounds are SPEC's values (§6, §8.7, §10.1, §10.5), and the
//! fixed sizes of keys, bundles and prekey headers are those of §5, §9 and
//! §14.1, measured on encodings sotto made.

use alloc::vec::Vec;

use crate::testing::{Kem, TestRng, bundle_with, devices, prekey};
use crate::wire::{PREKEY_HEADER_MAX_LEN, RATCHET_HEADER_LEN};
use crate::{
    IdentityKey, KemPreKey, KeyAgreementPolicy, OneTimePreKey, PreKeyBundle, Session, SignedPreKey,
};

/// Every `| \`NAME\` | value |` row of SPEC.md's tables, with `2^n` values.
fn spec_constants() -> Vec<(&'static str, usize)> {
    include_str!("../SPEC.md")
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| {
            let (name, rest) = l.split_once("` | ")?;
            let value = rest.split(' ').next()?;
            let value = match value.split_once('^') {
                Some((base, exp)) => base.parse::<usize>().ok()?.pow(exp.parse().ok()?),
                None => value.parse().ok()?,
            };
            Some((name, value))
        })
        .collect()
}

#[test]
fn bounds_are_the_specified_values() {
    let spec = spec_constants();
    let ours = [
        ("MAX_SIGNED_PREKEYS", crate::MAX_SIGNED_PREKEYS),
        (
            "MAX_BASE_KEYS_PER_SIGNED_PREKEY",
            crate::MAX_BASE_KEYS_PER_SIGNED_PREKEY,
        ),
        ("MAX_ONE_TIME_PREKEYS", crate::MAX_ONE_TIME_PREKEYS),
        (
            "MAX_LAST_RESORT_KEM_PREKEYS",
            crate::MAX_LAST_RESORT_KEM_PREKEYS,
        ),
        ("MAX_ONE_TIME_KEM_PREKEYS", crate::MAX_ONE_TIME_KEM_PREKEYS),
        ("MAX_SKIP", usize::try_from(crate::MAX_SKIP).unwrap()),
        (
            "MAX_SKIPPED_KEYS_PER_CHAIN",
            crate::MAX_SKIPPED_KEYS_PER_CHAIN,
        ),
        ("MAX_SKIPPED_KEYS", crate::MAX_SKIPPED_KEYS),
        ("MAX_RECEIVING_CHAINS", crate::MAX_RECEIVING_CHAINS),
        ("MAX_PLAINTEXT_LEN", crate::MAX_PLAINTEXT_LEN),
        ("MAX_MESSAGE_LEN", crate::MAX_MESSAGE_LEN),
    ];
    for (name, value) in ours {
        let specified: Vec<_> = spec.iter().filter(|(n, _)| *n == name).collect();
        assert_eq!(specified, [&(name, value)], "{name}");
    }
    let text = include_str!("../SPEC.md");
    assert!(text.contains("`MAX_STATE_LEN` = 16777216"));
    assert_eq!(crate::MAX_STATE_LEN, 16_777_216);
    assert!(text.contains("`MAX_SEAL_CONTEXT_LEN` = 1024"));
    assert_eq!(crate::MAX_SEAL_CONTEXT_LEN, 1024);
}

/// SPEC §14.1's sizes: keys 34, 102, 38, 1640; bundles 136, 172, 1774,
/// 1810; prekey headers 72, 76, 1644, 1648; a ratchet message is the
/// plaintext plus 74 bytes.
#[test]
fn sizes_are_the_specified_ones() {
    assert_eq!(
        [
            IdentityKey::ENCODED_LEN,
            SignedPreKey::ENCODED_LEN,
            OneTimePreKey::ENCODED_LEN,
            KemPreKey::ENCODED_LEN,
            PreKeyBundle::MAX_ENCODED_LEN,
        ],
        [34, 102, 38, 1640, 1810]
    );
    assert_eq!((PREKEY_HEADER_MAX_LEN, RATCHET_HEADER_LEN), (1648, 58));
    let mut rng = TestRng::new(50);
    let (alice, mut bob) = devices(&mut rng);
    for (one_time, kem, header) in [
        (false, Kem::Classical, 72),
        (true, Kem::Classical, 76),
        (false, Kem::LastResort, 1644),
        (true, Kem::OneTime, 1648),
    ] {
        let bundle = bundle_with(&mut bob, &mut rng, one_time, kem);
        let mut session = Session::initiate_with_policy(
            &alice,
            &mut rng,
            &bundle,
            KeyAgreementPolicy::ClassicalAllowed,
        )
        .unwrap();
        let first = prekey(session.encrypt(&mut rng, b"12345").unwrap());
        assert_eq!(first.as_bytes().len(), header + 58 + 5 + 16);
        let (mut reply, _) =
            Session::accept_with_policy(&mut bob, &first, KeyAgreementPolicy::ClassicalAllowed)
                .unwrap();
        assert_eq!(
            reply.encrypt(&mut rng, b"12345").unwrap().as_bytes().len(),
            5 + 74
        );
    }
}
