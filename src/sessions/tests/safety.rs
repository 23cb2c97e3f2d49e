//! SPEC §16.9: per-user safety numbers over all device identities,
//! recomputed here from the published formula with SHA-512 alone.

use sha2::{Digest, Sha512};

use super::*;
use crate::Error;
use crate::sessions::{SafetyNumber, UserFingerprint};

/// The fingerprint digits by the formula of §16.9.
fn by_hand(user: &[u8], keys: &[[u8; 32]]) -> Vec<u8> {
    let mut keys = keys.to_vec();
    keys.sort_unstable();
    let mut x = b"sotto v2 safety number".to_vec();
    x.push(u8::try_from(user.len()).unwrap());
    x.extend_from_slice(user);
    x.push(u8::try_from(keys.len()).unwrap());
    for k in &keys {
        x.extend_from_slice(k);
    }
    let mut h = x.clone();
    for _ in 0..5200 {
        h = Sha512::new()
            .chain_update(&h)
            .chain_update(&x)
            .finalize()
            .to_vec();
    }
    h[..30]
        .chunks(5)
        .flat_map(|c| {
            let v = c.iter().fold(0u64, |v, b| (v << 8) | u64::from(*b)) % 100_000;
            alloc::format!("{v:05}").into_bytes()
        })
        .collect()
}

#[test]
fn both_users_compute_the_same_number_over_all_their_devices() {
    let mut rng = TestRng::new(1);
    let w = world(&mut rng, &[("alice", 2), ("bob", 2)]);
    let numbers: Vec<SafetyNumber> = w
        .iter()
        .map(|p| {
            let own = &p.records[&p.user];
            let other = p.records.iter().find(|(u, _)| **u != p.user).unwrap().1;
            other.safety_number(own).unwrap()
        })
        .collect();
    assert!(numbers.windows(2).all(|n| n[0] == n[1]));
    let keys = |name: &str| -> Vec<[u8; 32]> {
        w.iter()
            .filter(|p| p.user == user(name))
            .map(|p| *p.device.identity_key().as_bytes())
            .collect()
    };
    let fa = by_hand(b"alice", &keys("alice"));
    let fb = by_hand(b"bob", &keys("bob"));
    let expected = if fa <= fb {
        [fa, fb].concat()
    } else {
        [fb, fa].concat()
    };
    assert_eq!(numbers[0].digits().as_slice(), expected.as_slice());
    let shown = alloc::format!("{}", numbers[0]);
    assert_eq!(shown.len(), 60 + 11);
    assert!(
        shown
            .split(' ')
            .all(|g| g.len() == 5 && g.bytes().all(|b| b.is_ascii_digit()))
    );
}

#[test]
fn any_device_identity_changes_the_number() {
    let mut rng = TestRng::new(2);
    let mut w = world(&mut rng, &[("alice", 1), ("bob", 2)]);
    let (a, b2) = (find(&w, "alice", 1), find(&w, "bob", 2));
    let number =
        |w: &[Party]| w[a].records[&user("bob")].safety_number(&w[a].records[&user("alice")]);
    let before = number(&w).unwrap();
    let new = *Device::generate(&mut rng, NOW).unwrap().identity_key();
    let b1_key = *w[find(&w, "bob", 1)].device.identity_key();
    let rec = record(&mut w, a, b2);
    rec.update_devices(&[(DeviceId(1), b1_key), (DeviceId(2), new)], NOW)
        .unwrap();
    assert_eq!(
        number(&w).unwrap(),
        before,
        "a pending change does not count yet"
    );
    record(&mut w, a, b2)
        .acknowledge_identity(DeviceId(2), &new)
        .unwrap();
    assert_ne!(number(&w).unwrap(), before);
    // A stale device does not count; no device at all is an error.
    record(&mut w, a, b2)
        .update_devices(&[(DeviceId(1), b1_key)], NOW)
        .unwrap();
    let one = number(&w).unwrap();
    let key_b1 = [*b1_key.as_bytes()];
    let expected_bob = by_hand(b"bob", &key_b1);
    assert!(
        one.digits()
            .windows(30)
            .any(|d| d == expected_bob.as_slice())
    );
    record(&mut w, a, b2).update_devices(&[], NOW).unwrap();
    assert_eq!(number(&w).err(), Some(Error::InvalidDeviceList));
    // The own record must be the local device's.
    let stranger = PeerRecord::new_own(user("alice"), DeviceId(9), new);
    assert_eq!(
        w[a].records[&user("bob")].safety_number(&stranger).err(),
        Some(Error::IdentityMismatch)
    );
    let u = UserFingerprint::new(&user("x"), &[new, new]);
    assert_eq!(u.err(), Some(Error::InvalidDeviceList));
}
