//! SPEC.md §5: identity keys, signed and one-time prekeys, and bundles.

use super::codec::{Layout, Reader};
use super::error::Refusal;
use super::primitives::{L_FINGERPRINT, L_SPK, labelled_sha256, sign, verify, x_pub};

/// The standalone identity key encoding (§5.1): `01 10 || IK`.
pub fn identity_key_bytes(ik: &[u8; 64]) -> Vec<u8> {
    let mut out = vec![1, 0x10];
    out.extend(ik);
    out
}

/// §5.2 fingerprint of an identity.
pub fn fingerprint(ik: &[u8; 64]) -> [u8; 32] {
    labelled_sha256(L_FINGERPRINT, ik)
}

/// Decodes a standalone identity key.
///
/// # Errors
///
/// The model's refusal: the SPEC.md error of the first check the input
/// fails, in the order SPEC.md fixes.
pub fn read_identity_key(b: &[u8]) -> Result<([u8; 64], Layout), Refusal> {
    let mut r = Reader::header(b, 0x10)?;
    let ik = r.ik("identity")?;
    r.end()?;
    Ok((ik, r.into_layout()))
}

/// The data a signed prekey signature covers (§5.3).
pub fn spk_signed_data(identity_dh: &[u8; 32], id: u32, public: &[u8; 32]) -> Vec<u8> {
    let mut d = L_SPK.as_bytes().to_vec();
    d.extend(identity_dh);
    d.extend(id.to_be_bytes());
    d.extend(public);
    d
}

/// A signed prekey with its private key (§5.3).
#[derive(Clone, Debug)]
pub struct Spk {
    /// Its id.
    pub id: u32,
    /// Its X25519 private key, as drawn.
    pub private: [u8; 32],
    /// Its public key.
    pub public: [u8; 32],
    /// The identity's signature.
    pub signature: [u8; 64],
    /// What the signature covers.
    pub signed_data: Vec<u8>,
}

impl Spk {
    /// A signed prekey of the identity with `identity_dh` as its X25519
    /// public key; signs with `seed` unless a stored signature is given.
    pub fn new(
        seed: &[u8; 32],
        identity_dh: &[u8; 32],
        id: u32,
        private: [u8; 32],
        signature: Option<[u8; 64]>,
    ) -> Self {
        let public = x_pub(&private);
        let signed_data = spk_signed_data(identity_dh, id, &public);
        let signature = signature.unwrap_or_else(|| sign(seed, &signed_data));
        Self {
            id,
            private,
            public,
            signature,
            signed_data,
        }
    }

    /// `SignedPreKey::to_bytes`.
    pub fn encoded(&self) -> Vec<u8> {
        let mut out = vec![1, 0x11];
        out.extend(self.id.to_be_bytes());
        out.extend(self.public);
        out.extend(self.signature);
        out
    }
}

/// A decoded signed prekey: id, public key, signature.
pub type SignedPreKeyFields = (u32, [u8; 32], Vec<u8>);

/// Decodes a standalone signed prekey.
///
/// # Errors
///
/// The model's refusal: the SPEC.md error of the first check the input
/// fails, in the order SPEC.md fixes.
pub fn read_signed_prekey(b: &[u8]) -> Result<(SignedPreKeyFields, Layout), Refusal> {
    let mut r = Reader::header(b, 0x11)?;
    let id = r.u32("id")?;
    let public = r.x("public")?;
    let signature = r.take("signature", 64)?.to_vec();
    r.end()?;
    Ok(((id, public, signature), r.into_layout()))
}

/// `OneTimePreKey::to_bytes` (§5.4).
pub fn one_time_prekey_bytes(id: u32, public: &[u8; 32]) -> Vec<u8> {
    let mut out = vec![1, 0x12];
    out.extend(id.to_be_bytes());
    out.extend(public);
    out
}

/// Decodes a standalone one-time prekey: (id, public key).
///
/// # Errors
///
/// The model's refusal: the SPEC.md error of the first check the input
/// fails, in the order SPEC.md fixes.
pub fn read_one_time_prekey(b: &[u8]) -> Result<((u32, [u8; 32]), Layout), Refusal> {
    let mut r = Reader::header(b, 0x12)?;
    let id = r.u32("id")?;
    let public = r.x("public")?;
    r.end()?;
    Ok(((id, public), r.into_layout()))
}

/// A decoded prekey bundle (§5.5).
#[derive(Clone, Debug)]
pub struct Bundle {
    /// IK of the responder.
    pub identity: [u8; 64],
    /// Signed prekey id.
    pub spk_id: u32,
    /// Signed prekey public key.
    pub spk: [u8; 32],
    /// Signed prekey signature.
    pub signature: Vec<u8>,
    /// One-time prekey, if any.
    pub opk: Option<(u32, [u8; 32])>,
}

impl Bundle {
    /// `PreKeyBundle::verify`: strict Ed25519 over §5.3's data.
    ///
    /// # Errors
    ///
    /// The model's refusal: the SPEC.md error of the first check the input
    /// fails, in the order SPEC.md fixes.
    pub fn verify(&self) -> Result<(), Refusal> {
        let (signing, dh) = self.identity.split_at(32);
        let signing: [u8; 32] = signing.try_into().expect("32");
        let dh: [u8; 32] = dh.try_into().expect("32");
        verify(
            &signing,
            &spk_signed_data(&dh, self.spk_id, &self.spk),
            &self.signature,
        )
    }

    /// `PreKeyBundle::verify_for`: the identity first, then the signature.
    ///
    /// # Errors
    ///
    /// The model's refusal: the SPEC.md error of the first check the input
    /// fails, in the order SPEC.md fixes.
    pub fn verify_for(&self, expected: &[u8; 64]) -> Result<(), Refusal> {
        if self.identity != *expected {
            return Err(super::error::refusal("IdentityMismatch"));
        }
        self.verify()
    }
}

/// Encodes a bundle.
pub fn bundle_bytes(identity: &[u8; 64], spk: &Spk, opk: Option<(u32, [u8; 32])>) -> Vec<u8> {
    let mut out = vec![1, 0x13];
    out.extend(identity);
    out.extend(&spk.encoded()[2..]);
    out.push(u8::from(opk.is_some()));
    if let Some((id, public)) = opk {
        out.extend(id.to_be_bytes());
        out.extend(public);
    }
    out
}

/// Decodes a bundle (§5.5).
///
/// # Errors
///
/// The model's refusal: the SPEC.md error of the first check the input
/// fails, in the order SPEC.md fixes.
pub fn read_bundle(b: &[u8]) -> Result<(Bundle, Layout), Refusal> {
    let mut r = Reader::header(b, 0x13)?;
    let identity = r.ik("identity")?;
    let spk_id = r.u32("spk_id")?;
    let spk = r.x("spk")?;
    let signature = r.take("signature", 64)?.to_vec();
    let opk = if r.flag("has_opk")? {
        Some((r.u32("opk_id")?, r.x("opk")?))
    } else {
        None
    };
    r.end()?;
    let bundle = Bundle {
        identity,
        spk_id,
        spk,
        signature,
        opk,
    };
    Ok((bundle, r.into_layout()))
}
