//! SPEC.md §5: identity keys, fingerprints, signed, one-time and KEM
//! prekeys, bundles and bundle verification.

use super::codec::{Layout, Reader};
use super::error::{Refusal, refusal};
use super::primitives::{
    EK_LEN, KEM_ALG, L_FINGERPRINT, L_KEM_PREKEY, L_SPK, VERSION, kem_keygen, labelled_sha256,
    sign, verify, x_pub,
};

/// §5.5 kind byte of a one-time KEM prekey.
pub const KIND_ONE_TIME: u8 = 0x00;
/// §5.5 kind byte of a last-resort KEM prekey.
pub const KIND_LAST_RESORT: u8 = 0x01;

/// The standalone identity key encoding (§5.1): `02 10 || IK`.
pub fn identity_key_bytes(ik: &[u8; 32]) -> Vec<u8> {
    let mut out = vec![VERSION, 0x10];
    out.extend(ik);
    out
}

/// §5.2 fingerprint of an identity.
pub fn fingerprint(ik: &[u8; 32]) -> [u8; 32] {
    labelled_sha256(L_FINGERPRINT, ik)
}

/// §5.2 display form: lowercase hex, eight groups of eight digits.
pub fn fingerprint_display(fp: &[u8; 32]) -> String {
    fp.chunks(4)
        .map(crate::hex::hex)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Decodes a standalone identity key.
///
/// # Errors
///
/// The model's refusal: the SPEC.md error of the first check the input
/// fails, in the order SPEC.md fixes.
pub fn read_identity_key(b: &[u8]) -> Result<([u8; 32], Layout), Refusal> {
    let mut r = Reader::header(b, 0x10)?;
    let ik = r.ik("identity")?;
    r.end()?;
    Ok((ik, r.into_layout()))
}

/// The data a signed prekey signature covers (§5.3).
pub fn spk_signed_data(id: u32, public: &[u8; 32]) -> Vec<u8> {
    let mut d = L_SPK.as_bytes().to_vec();
    d.extend(id.to_be_bytes());
    d.extend(public);
    d
}

/// `SignedPreKey` encoding (§5.3).
pub fn signed_prekey_bytes(id: u32, public: &[u8; 32], signature: &[u8; 64]) -> Vec<u8> {
    let mut out = vec![VERSION, 0x11];
    out.extend(id.to_be_bytes());
    out.extend(public);
    out.extend(signature);
    out
}

/// A decoded signed prekey: id, public key, signature.
pub type SignedPreKeyFields = (u32, [u8; 32], [u8; 64]);

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
    let signature = r.take("signature", 64)?.try_into().expect("64");
    r.end()?;
    Ok(((id, public, signature), r.into_layout()))
}

/// `OneTimePreKey` encoding (§5.4).
pub fn one_time_prekey_bytes(id: u32, public: &[u8; 32]) -> Vec<u8> {
    let mut out = vec![VERSION, 0x12];
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

/// `EncodeKEM(ek) = alg || ek` (§5.5).
pub fn encode_kem(ek: &[u8]) -> Vec<u8> {
    let mut out = vec![KEM_ALG];
    out.extend(ek);
    out
}

/// The data a KEM prekey signature covers (§5.5).
pub fn kem_signed_data(id: u32, kind: u8, ek: &[u8]) -> Vec<u8> {
    let mut d = L_KEM_PREKEY.as_bytes().to_vec();
    d.extend(id.to_be_bytes());
    d.push(kind);
    d.extend(encode_kem(ek));
    d
}

/// The public part of a KEM prekey as it travels (§5.5, §5.6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KemPublic {
    /// Its id.
    pub id: u32,
    /// `KIND_ONE_TIME` or `KIND_LAST_RESORT`.
    pub kind: u8,
    /// The encapsulation key (1568 bytes).
    pub ek: Vec<u8>,
    /// The identity's signature.
    pub signature: [u8; 64],
}

impl KemPublic {
    /// `id || kind || alg || ek || sig`: the body shared by the standalone
    /// encoding and the bundle.
    pub fn body(&self) -> Vec<u8> {
        let mut out = self.id.to_be_bytes().to_vec();
        out.push(self.kind);
        out.extend(encode_kem(&self.ek));
        out.extend(self.signature);
        out
    }

    /// `KemPreKey` encoding (§5.5).
    pub fn encoded(&self) -> Vec<u8> {
        let mut out = vec![VERSION, 0x14];
        out.extend(self.body());
        out
    }

    /// Reads the body (§5.5's checks in field order); `names` are the
    /// layout names of the id and the signature.
    fn read(r: &mut Reader<'_>, names: (&str, &str)) -> Result<Self, Refusal> {
        let id = r.u32(names.0)?;
        let kind = r.u8("kind")?;
        if kind != KIND_ONE_TIME && kind != KIND_LAST_RESORT {
            return Err(refusal("InvalidEncoding"));
        }
        if r.u8("alg")? != KEM_ALG {
            return Err(refusal("InvalidEncoding"));
        }
        let ek = r.ek("ek")?;
        let signature = r.take(names.1, 64)?.try_into().expect("64");
        Ok(Self {
            id,
            kind,
            ek,
            signature,
        })
    }

    /// §5.7 step 3.
    ///
    /// # Errors
    ///
    /// `InvalidSignature`.
    pub fn verify(&self, ik: &[u8; 32]) -> Result<(), Refusal> {
        verify(
            ik,
            &kem_signed_data(self.id, self.kind, &self.ek),
            &self.signature,
        )
    }
}

/// Decodes a standalone KEM prekey.
///
/// # Errors
///
/// The model's refusal: the SPEC.md error of the first check the input
/// fails, in the order SPEC.md fixes.
pub fn read_kem_prekey(b: &[u8]) -> Result<(KemPublic, Layout), Refusal> {
    let mut r = Reader::header(b, 0x14)?;
    let k = KemPublic::read(&mut r, ("id", "signature"))?;
    r.end()?;
    Ok((k, r.into_layout()))
}

/// A signed prekey held by a device (§5.3, §6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spk {
    /// Its id.
    pub id: u32,
    /// Its creation time.
    pub created: u64,
    /// Its X25519 private key, as drawn.
    pub private: [u8; 32],
    /// Its public key.
    pub public: [u8; 32],
    /// The identity's signature.
    pub signature: [u8; 64],
    /// Base keys of accepted replayable prekey messages, in order.
    pub base_keys: Vec<[u8; 32]>,
}

impl Spk {
    /// A new signed prekey, signed with the identity seed.
    pub fn new(seed: &[u8; 32], id: u32, created: u64, private: [u8; 32]) -> Self {
        let public = x_pub(&private);
        let signature = sign(seed, &spk_signed_data(id, &public));
        Self {
            id,
            created,
            private,
            public,
            signature,
            base_keys: Vec::new(),
        }
    }

    /// `SignedPreKey` encoding.
    pub fn encoded(&self) -> Vec<u8> {
        signed_prekey_bytes(self.id, &self.public, &self.signature)
    }
}

/// A KEM prekey held by a device (§5.5, §6): its seed, key pair and
/// signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kem {
    /// Its id.
    pub id: u32,
    /// `KIND_ONE_TIME` or `KIND_LAST_RESORT`.
    pub kind: u8,
    /// Creation time (last-resort prekeys only; 0 for one-time ones).
    pub created: u64,
    /// The 64 bytes `d || z`.
    pub seed: [u8; 64],
    /// `ek`, recomputed from the seed.
    pub ek: Vec<u8>,
    /// `dk`, recomputed from the seed.
    pub dk: Vec<u8>,
    /// The identity's signature.
    pub signature: [u8; 64],
}

impl Kem {
    /// A KEM prekey from its seed; signs with the identity seed unless a
    /// stored signature is given.
    pub fn new(
        identity_seed: &[u8; 32],
        id: u32,
        kind: u8,
        created: u64,
        seed: [u8; 64],
        signature: Option<[u8; 64]>,
    ) -> Self {
        let (ek, dk) = kem_keygen(&seed);
        let signature =
            signature.unwrap_or_else(|| sign(identity_seed, &kem_signed_data(id, kind, &ek)));
        Self {
            id,
            kind,
            created,
            seed,
            ek,
            dk,
            signature,
        }
    }

    /// The public part.
    pub fn public(&self) -> KemPublic {
        KemPublic {
            id: self.id,
            kind: self.kind,
            ek: self.ek.clone(),
            signature: self.signature,
        }
    }
}

/// A decoded prekey bundle (§5.6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bundle {
    /// IK of the responder.
    pub identity: [u8; 32],
    /// Signed prekey id.
    pub spk_id: u32,
    /// Signed prekey public key.
    pub spk: [u8; 32],
    /// Signed prekey signature.
    pub spk_signature: [u8; 64],
    /// One-time prekey, if any.
    pub opk: Option<(u32, [u8; 32])>,
    /// KEM prekey, if any.
    pub kem: Option<KemPublic>,
}

impl Bundle {
    /// The bundle encoding (§5.6).
    pub fn encoded(&self) -> Vec<u8> {
        let mut out = vec![VERSION, 0x13];
        out.extend(self.identity);
        out.extend(self.spk_id.to_be_bytes());
        out.extend(self.spk);
        out.extend(self.spk_signature);
        out.push(u8::from(self.opk.is_some()));
        if let Some((id, public)) = self.opk {
            out.extend(id.to_be_bytes());
            out.extend(public);
        }
        out.push(u8::from(self.kem.is_some()));
        if let Some(k) = &self.kem {
            out.extend(k.body());
        }
        out
    }

    /// Every field, with what the signatures cover, for the vectors.
    pub fn json(&self) -> serde_json::Value {
        use crate::hex::hex;
        serde_json::json!({
            "identity_key": hex(&self.identity), "signed_prekey_id": self.spk_id,
            "signed_prekey": hex(&self.spk), "signed_prekey_signature": hex(&self.spk_signature),
            "signed_prekey_signed_data": hex(&spk_signed_data(self.spk_id, &self.spk)),
            "one_time_prekey": self.opk.map(|(id, k)| serde_json::json!({ "id": id, "public": hex(&k) })),
            "kem_prekey": self.kem.as_ref().map(|k| serde_json::json!({
                "id": k.id, "kind": k.kind, "ek": hex(&k.ek), "signature": hex(&k.signature),
                "signed_data": hex(&kem_signed_data(k.id, k.kind, &k.ek)),
            })),
        })
    }

    /// §5.7 verification, in its order: the expected identity
    /// (`IdentityMismatch`), the signed prekey's signature, then the KEM
    /// prekey's (`InvalidSignature`).
    ///
    /// # Errors
    ///
    /// The model's refusal: the SPEC.md error of the first check the input
    /// fails, in the order SPEC.md fixes.
    pub fn verify(&self, expected: Option<&[u8; 32]>) -> Result<(), Refusal> {
        if expected.is_some_and(|e| *e != self.identity) {
            return Err(refusal("IdentityMismatch"));
        }
        verify(
            &self.identity,
            &spk_signed_data(self.spk_id, &self.spk),
            &self.spk_signature,
        )?;
        if let Some(k) = &self.kem {
            k.verify(&self.identity)?;
        }
        Ok(())
    }
}

/// Decodes a bundle (§5.6, §5.7's decoding checks).
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
    let spk_signature = r.take("spk_signature", 64)?.try_into().expect("64");
    let opk = if r.flag("has_opk")? {
        Some((r.u32("opk_id")?, r.x("opk")?))
    } else {
        None
    };
    let kem = if r.flag("has_kem")? {
        Some(KemPublic::read(&mut r, ("kem_id", "kem_signature"))?)
    } else {
        None
    };
    r.end()?;
    let bundle = Bundle {
        identity,
        spk_id,
        spk,
        spk_signature,
        opk,
        kem,
    };
    Ok((bundle, r.into_layout()))
}

/// Length of a KEM prekey encoding (§5.5).
pub const KEM_PREKEY_LEN: usize = 2 + 4 + 1 + 1 + EK_LEN + 64;
