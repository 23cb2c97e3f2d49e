//! SPEC.md §2 primitives (with the §2.1 identity conversion and ML-KEM-1024),
//! §3 labels and the pairwise limits of §6, §8.7 and §10, over the primitive
//! crates only. The KEM is `libcrux-ml-kem`, a different implementation
//! from the one sotto uses, so that the model can disagree with it.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{AeadInOut, KeyInit};
use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_dalek::VerifyingKey;
use hkdf::Hkdf;
use hmac::{Mac, SimpleHmac};
use libcrux_ml_kem::mlkem1024;
use sha2::{Digest, Sha256, Sha512};

use super::error::{Refusal, refusal};

/// §3: classical X3DH shared secret.
pub const L_X3DH: &str = "sotto v2 x3dh";
/// §3: PQXDH shared secret.
pub const L_PQXDH: &str = "sotto v2 pqxdh";
/// §7.4 KEM binding.
pub const L_KEM_BINDING: &str = "sotto v2 kem binding";
/// Root step (§8.2).
pub const L_ROOT: &str = "sotto v2 root";
/// Chain step, message key (§8.3).
pub const L_CHAIN_MESSAGE: &str = "sotto v2 chain message";
/// Chain step, next chain key (§8.3).
pub const L_CHAIN_NEXT: &str = "sotto v2 chain next";
/// Message key and nonce expansion (§8.4).
pub const L_MESSAGE_KEYS: &str = "sotto v2 message keys";
/// Signed prekey signature (§5.3).
pub const L_SPK: &str = "sotto v2 signed prekey";
/// KEM prekey signature (§5.5).
pub const L_KEM_PREKEY: &str = "sotto v2 kem prekey";
/// Fingerprint (§5.2).
pub const L_FINGERPRINT: &str = "sotto v2 fingerprint";
/// Sealed state keys (§10.5).
pub const L_SEALED: &str = "sotto v2 sealed state";

/// The version byte of every v2 encoding (§4).
pub const VERSION: u8 = 0x02;

/// §8.7 `MAX_SKIP`.
pub const MAX_SKIP: u32 = 1000;
/// §8.7 `MAX_SKIPPED_KEYS_PER_CHAIN`.
pub const MAX_SKIPPED_PER_CHAIN: usize = 1000;
/// §8.7 `MAX_SKIPPED_KEYS`.
pub const MAX_SKIPPED_TOTAL: usize = 2000;
/// §8.7 `MAX_RECEIVING_CHAINS`.
pub const MAX_CHAINS: usize = 5;
/// §6 `MAX_SIGNED_PREKEYS`.
pub const MAX_SPKS: usize = 4;
/// §6 `MAX_BASE_KEYS_PER_SIGNED_PREKEY`.
pub const MAX_BASE_KEYS: usize = 1000;
/// §6 `MAX_ONE_TIME_PREKEYS`.
pub const MAX_OPKS: usize = 1000;
/// §6 `MAX_LAST_RESORT_KEM_PREKEYS`.
pub const MAX_LAST_RESORT: usize = 4;
/// §6 `MAX_ONE_TIME_KEM_PREKEYS`.
pub const MAX_KEM_OTKS: usize = 100;
/// §8.7 `MAX_PLAINTEXT_LEN`.
pub const MAX_PLAINTEXT: usize = 262_144;
/// §8.7 `MAX_MESSAGE_LEN`: the longest prekey header, a ratchet header, the
/// largest plaintext and a tag.
pub const MAX_MESSAGE: usize = 1648 + 58 + MAX_PLAINTEXT + 16;
/// §10.1 `MAX_STATE_LEN`.
pub const MAX_STATE: usize = 1 << 24;
/// §10.5 `MAX_SEAL_CONTEXT_LEN`.
pub const MAX_SEAL_CONTEXT: usize = 1024;

/// ML-KEM-1024 encapsulation key length.
pub const EK_LEN: usize = 1568;
/// ML-KEM-1024 ciphertext length.
pub const CT_LEN: usize = 1568;
/// ML-KEM-1024 decapsulation key length.
pub const DK_LEN: usize = 3168;
/// §5.5: the algorithm byte of ML-KEM-1024.
pub const KEM_ALG: u8 = 0x01;

/// `pub(k)`: X25519 with the base point.
pub fn x_pub(private: &[u8; 32]) -> [u8; 32] {
    x25519_dalek::x25519(*private, x25519_dalek::X25519_BASEPOINT_BYTES)
}

/// `DH`, for inputs known to be contributory.
pub fn dh(private: &[u8; 32], public: &[u8; 32]) -> [u8; 32] {
    try_dh(private, public).expect("model: all-zero X25519 output")
}

/// `DH(k, P)`: an all-zero result is `NonContributoryKey`.
///
/// # Errors
///
/// `NonContributoryKey`.
pub fn try_dh(private: &[u8; 32], public: &[u8; 32]) -> Result<[u8; 32], Refusal> {
    let out = x25519_dalek::x25519(*private, *public);
    if out == [0u8; 32] {
        return Err(refusal("NonContributoryKey"));
    }
    Ok(out)
}

/// `HKDF(salt, ikm, info, L)`.
pub fn hkdf(salt: &[u8], ikm: &[u8], info: &str, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info.as_bytes(), &mut out)
        .expect("model: HKDF length");
    out
}

/// `HMAC(K, m)` with an ASCII label as the message.
pub fn hmac(key: &[u8], data: &str) -> [u8; 32] {
    let mut mac = <SimpleHmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().into()
}

/// `SHA256(label || data)`.
pub fn labelled_sha256(label: &str, data: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update(label)
        .chain_update(data)
        .finalize()
        .into()
}

/// `SHA256(m)`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// The first 32 bytes of a slice, as an array.
pub fn a32(s: &[u8]) -> [u8; 32] {
    s.get(..32)
        .and_then(|s| s.try_into().ok())
        .expect("model: 32 bytes")
}

/// §8.2 root step: the new root key and chain key.
pub fn kdf_rk(rk: &[u8; 32], dh_out: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
    let okm = hkdf(rk, dh_out, L_ROOT, 64);
    (a32(&okm[..32]), a32(&okm[32..]))
}

/// §8.3 chain step: the message key and the next chain key.
pub fn kdf_ck(ck: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
    (hmac(ck, L_CHAIN_MESSAGE), hmac(ck, L_CHAIN_NEXT))
}

/// §2 `KN(salt, ikm, info)`: the AES key and the nonce.
pub fn key_nonce(salt: &[u8], ikm: &[u8], info: &str) -> ([u8; 32], [u8; 12]) {
    let okm = hkdf(salt, ikm, info, 44);
    let nonce = okm[32..].try_into().expect("12 bytes");
    (a32(&okm[..32]), nonce)
}

/// §2 `Seal`: the ciphertext with its tag appended.
pub fn seal(key: &[u8; 32], nonce: &[u8; 12], aad: &[u8], pt: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new(&(*key).into());
    let mut buf = pt.to_vec();
    let tag = cipher
        .encrypt_inout_detached(&(*nonce).into(), aad, buf.as_mut_slice().into())
        .expect("model: AES-GCM length");
    buf.extend_from_slice(&tag);
    buf
}

/// §2 `Open`: `None` when the tag does not verify.
pub fn open(key: &[u8; 32], nonce: &[u8; 12], aad: &[u8], ct: &[u8]) -> Option<Vec<u8>> {
    let cipher = Aes256Gcm::new(&(*key).into());
    let (body, tag) = ct.split_at(ct.len().checked_sub(16)?);
    let mut buf = body.to_vec();
    let tag: [u8; 16] = tag.try_into().ok()?;
    cipher
        .decrypt_inout_detached(
            &(*nonce).into(),
            aad,
            buf.as_mut_slice().into(),
            &tag.into(),
        )
        .ok()?;
    Some(buf)
}

/// §2: an Ed25519 public key decodes, is canonical and not of small order.
pub fn ed25519_public_ok(b: &[u8; 32]) -> bool {
    CompressedEdwardsY(*b)
        .decompress()
        .is_some_and(|p| !p.is_small_order() && p.compress().to_bytes() == *b)
}

/// §2: an X25519 public key has its top bit clear and is below 2^255 - 19.
pub fn x25519_public_ok(b: &[u8; 32]) -> bool {
    let at_least_p = b[31] == 0x7f && b[1..31].iter().all(|&x| x == 0xff) && b[0] >= 0xed;
    b[31] & 0x80 == 0 && !at_least_p
}

/// §2 `Verify`: strict Ed25519 (ed25519-dalek's `verify_strict`).
///
/// # Errors
///
/// `InvalidSignature`.
pub fn verify(public: &[u8; 32], message: &[u8], signature: &[u8]) -> Result<(), Refusal> {
    let bad = || refusal("InvalidSignature");
    let key = VerifyingKey::from_bytes(public).map_err(|_| bad())?;
    let sig = ed25519_dalek::Signature::from_slice(signature).map_err(|_| bad())?;
    key.verify_strict(message, &sig).map_err(|_| bad())
}

/// `Sign(seed, m)`.
pub fn sign(seed: &[u8; 32], message: &[u8]) -> [u8; 64] {
    use ed25519_dalek::Signer;
    ed25519_dalek::SigningKey::from_bytes(seed)
        .sign(message)
        .to_bytes()
}

/// The Ed25519 public key of a seed.
pub fn ed25519_public(seed: &[u8; 32]) -> [u8; 32] {
    ed25519_dalek::SigningKey::from_bytes(seed)
        .verifying_key()
        .to_bytes()
}

/// §2.1 `IdX(seed) = SHA512(seed)[0..32]`: the identity's X25519 secret,
/// unreduced.
pub fn id_x(seed: &[u8; 32]) -> [u8; 32] {
    a32(&Sha512::digest(seed))
}

/// §2.1 `IdU(A)`: the Montgomery u-coordinate of a valid Ed25519 key.
pub fn id_u(ik: &[u8; 32]) -> [u8; 32] {
    CompressedEdwardsY(*ik)
        .decompress()
        .expect("model: IdU of a key that passed §2")
        .to_montgomery()
        .to_bytes()
}

/// §2 `KemKeyGen(d, z)` from the 64 bytes `d || z`: (`ek`, `dk`).
pub fn kem_keygen(seed: &[u8; 64]) -> (Vec<u8>, Vec<u8>) {
    let pair = mlkem1024::generate_key_pair(*seed);
    (pair.pk().to_vec(), pair.sk().to_vec())
}

/// §2 `KemEncaps(ek, m)`: (`ct`, `ss`). `ek` must have passed
/// [`kem_ek_ok`].
pub fn kem_encaps(ek: &[u8], m: &[u8; 32]) -> (Vec<u8>, [u8; 32]) {
    let ek: [u8; EK_LEN] = ek.try_into().expect("model: ek length");
    let (ct, ss) = mlkem1024::encapsulate(&ek.into(), *m);
    (ct.as_slice().to_vec(), ss)
}

/// §2 `KemDecaps(dk, ct)`.
pub fn kem_decaps(dk: &[u8], ct: &[u8]) -> [u8; 32] {
    let dk: [u8; DK_LEN] = dk.try_into().expect("model: dk length");
    let ct: [u8; CT_LEN] = ct.try_into().expect("model: ct length");
    mlkem1024::decapsulate(&dk.into(), &ct.into())
}

/// §2: the FIPS 203 §7.2 input check of an encapsulation key (libcrux's
/// `encapsulate` does not make it).
pub fn kem_ek_ok(ek: &[u8]) -> bool {
    let Ok(ek) = <[u8; EK_LEN]>::try_from(ek) else {
        return false;
    };
    mlkem1024::validate_public_key(&ek.into())
}
