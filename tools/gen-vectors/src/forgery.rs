//! Forged Ed25519 signatures that only strict verification rejects.

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
    let mut a_bytes: [u8; 32] = h[..32].try_into().expect("32 bytes");
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
    let big_a = CompressedEdwardsY(public.to_bytes())
        .decompress()
        .expect("a valid point");
    let big_r = CompressedEdwardsY(r_bytes)
        .decompress()
        .expect("a valid point");
    let diff = ED25519_BASEPOINT_POINT * s - big_a * k - big_r;
    assert!(
        diff.mul_by_cofactor().compress().to_bytes() == r_bytes,
        "cofactored"
    );
    assert!(big_r.is_small_order());
    assert!(public.verify_strict(message, &parsed).is_err(), "strict");
    sig
}
