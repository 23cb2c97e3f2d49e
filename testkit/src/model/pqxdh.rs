//! SPEC.md §7: the key agreement (PQXDH, or X3DH under the classical
//! opt-in), initiator and responder, with the §6 replay rule.

use serde_json::{Value, json};

use super::device::Dev;
use super::error::{Refusal, refusal, refusal_with};
use super::keys::{Bundle, KIND_ONE_TIME, encode_kem};
use super::primitives::{
    L_KEM_BINDING, L_PQXDH, L_X3DH, MAX_BASE_KEYS, a32, hkdf, id_u, kem_decaps, kem_encaps,
    labelled_sha256, try_dh, x_pub,
};
use super::rand::Source;
use super::receiving::Receiving;
use super::session::{Sending, Sess};
use super::wire::read_message;
use crate::hex::hex;

/// §7.1 key-agreement policy, given with each call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// The default: a KEM prekey (initiator) or ciphertext (responder) is
    /// required.
    PostQuantumRequired,
    /// The explicit opt-in that allows X3DH.
    ClassicalAllowed,
}

impl Policy {
    /// As the vectors spell it.
    pub fn name(self) -> &'static str {
        match self {
            Self::PostQuantumRequired => "PostQuantumRequired",
            Self::ClassicalAllowed => "ClassicalAllowed",
        }
    }

    /// From the vectors' spelling.
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "PostQuantumRequired" => Some(Self::PostQuantumRequired),
            "ClassicalAllowed" => Some(Self::ClassicalAllowed),
            _ => None,
        }
    }
}

/// §7.4: `KB` over a KEM encapsulation key, or the X3DH constant.
pub fn kem_binding(ek: Option<&[u8]>) -> [u8; 32] {
    match ek {
        Some(ek) => labelled_sha256(L_KEM_BINDING, &encode_kem(ek)),
        None => labelled_sha256(L_KEM_BINDING, &[0x00]),
    }
}

/// The shared secret and how it was made (§7.2 steps 3-6).
#[derive(Clone, Debug)]
pub struct Agreement {
    /// DH1..DH3, and DH4 with a one-time prekey.
    pub dh: Vec<[u8; 32]>,
    /// The KEM shared secret, for PQXDH.
    pub ss: Option<[u8; 32]>,
    /// The KDF input: 0xFF^32 || DH1 || DH2 || DH3 [|| DH4] [|| SS].
    pub ikm: Vec<u8>,
    /// The HKDF info label.
    pub info: &'static str,
    /// SK.
    pub sk: [u8; 32],
    /// KB.
    pub kb: [u8; 32],
}

impl Agreement {
    /// SK and KB from the DH outputs and the KEM secret and key.
    pub fn new(dh: Vec<[u8; 32]>, kem: Option<([u8; 32], &[u8])>) -> Self {
        let mut ikm = vec![0xff; 32];
        for d in &dh {
            ikm.extend(d);
        }
        if let Some((ss, _)) = kem {
            ikm.extend(ss);
        }
        let info = if kem.is_some() { L_PQXDH } else { L_X3DH };
        let sk = a32(&hkdf(&[0u8; 32], &ikm, info, 32));
        Self {
            dh,
            ss: kem.map(|k| k.0),
            ikm,
            info,
            sk,
            kb: kem_binding(kem.map(|k| k.1)),
        }
    }

    /// As the vectors spell it.
    pub fn json(&self) -> Value {
        json!({
            "dh1": hex(&self.dh[0]), "dh2": hex(&self.dh[1]), "dh3": hex(&self.dh[2]),
            "dh4": self.dh.get(3).map(|d| hex(d)),
            "kem_shared_secret": self.ss.map(|s| hex(&s)),
            "kdf_salt": hex(&[0u8; 32]), "info": self.info,
            "kdf_input": hex(&self.ikm), "sk": hex(&self.sk),
            "kem_binding_info": L_KEM_BINDING, "kem_binding": hex(&self.kb),
        })
    }
}

/// What initiate made besides the session: the draws' values.
#[derive(Clone, Debug)]
pub struct Initiated {
    /// EK.
    pub base_private: [u8; 32],
    /// `m`, with a KEM prekey.
    pub m: Option<[u8; 32]>,
    /// The KEM ciphertext, with a KEM prekey.
    pub ct: Option<Vec<u8>>,
    /// The key agreement.
    pub agreement: Agreement,
}

/// §7.2: the initiator's session from a verified bundle.
///
/// # Errors
///
/// `PostQuantumRequired` (nothing drawn); `NonContributoryKey` (after the
/// draws).
pub fn initiate(
    alice: &Dev,
    bundle: &Bundle,
    policy: Policy,
    rng: &mut dyn Source,
) -> Result<(Sess, Initiated), Refusal> {
    if bundle.kem.is_none() && policy == Policy::PostQuantumRequired {
        return Err(refusal("PostQuantumRequired"));
    }
    let base_private = rng.draw::<32>();
    let m = bundle.kem.as_ref().map(|_| rng.draw::<32>());
    let mut dh = vec![
        try_dh(&alice.id_x(), &bundle.spk)?,
        try_dh(&base_private, &id_u(&bundle.identity))?,
        try_dh(&base_private, &bundle.spk)?,
    ];
    if let Some((_, opk)) = bundle.opk {
        dh.push(try_dh(&base_private, &opk)?);
    }
    let encaps = bundle
        .kem
        .as_ref()
        .zip(m)
        .map(|(k, m)| kem_encaps(&k.ek, &m));
    let agreement = Agreement::new(
        dh,
        encaps
            .as_ref()
            .zip(bundle.kem.as_ref())
            .map(|((_, ss), k)| (*ss, k.ek.as_slice())),
    );
    let ct = encaps.map(|(ct, _)| ct);
    let sess = Sess {
        generation: 0,
        initiator: true,
        pq: bundle.kem.is_some(),
        local: alice.ik,
        remote: bundle.identity,
        kb: agreement.kb,
        base: x_pub(&base_private),
        pending: Some(super::session::Pending {
            spk_id: bundle.spk_id,
            opk_id: bundle.opk.map(|o| o.0),
            kem: bundle
                .kem
                .as_ref()
                .zip(ct.clone())
                .map(|(k, ct)| (k.id, ct)),
        }),
        root: agreement.sk,
        remote_ratchet: bundle.spk,
        sending: None,
        pn: 0,
        recv: Receiving::default(),
    };
    let made = Initiated {
        base_private,
        m,
        ct,
        agreement,
    };
    Ok((sess, made))
}

/// What a successful accept returns: the session, the plaintext, the key
/// agreement and the receive trace.
pub type Accepted = (Sess, Vec<u8>, Agreement, Value);

/// §7.3, all or nothing: on success the device has changed (one-time keys
/// deleted, base key recorded, generation + 1).
///
/// # Errors
///
/// The model's refusal: the SPEC.md error of the first check the input
/// fails, in the order SPEC.md fixes.
pub fn accept(bob: &mut Dev, msg: &[u8], policy: Policy) -> Result<Accepted, Refusal> {
    let (parsed, _) = read_message(msg)?;
    let Some(h) = parsed.prekey else {
        return Err(refusal_with(
            "WrongType",
            json!({ "expected": 2, "found": 1 }),
        ));
    };
    // Step 1.
    if h.kem.is_none() && policy == Policy::PostQuantumRequired {
        return Err(refusal("PostQuantumRequired"));
    }
    // Step 2.
    let spk_pos = bob
        .spks
        .iter()
        .position(|s| s.id == h.spk_id)
        .ok_or_else(|| refusal_with("UnknownSignedPreKey", json!({ "id": h.spk_id })))?;
    let spk = bob.spks[spk_pos].clone();
    // Step 3.
    if spk.base_keys.contains(&h.base_key) {
        return Err(refusal("DuplicatePreKeyMessage"));
    }
    // Step 4.
    let opk = match h.opk_id {
        Some(id) => Some(
            *bob.opks
                .get(&id)
                .ok_or_else(|| refusal_with("UnknownOneTimePreKey", json!({ "id": id })))?,
        ),
        None => None,
    };
    // Step 5.
    let kem = match &h.kem {
        Some((id, ct)) => Some((
            bob.kem(*id)
                .ok_or_else(|| refusal_with("UnknownKemPreKey", json!({ "id": id })))?
                .clone(),
            ct.clone(),
        )),
        None => None,
    };
    // Step 6.
    let one_time_kem = kem.as_ref().is_some_and(|(k, _)| k.kind == KIND_ONE_TIME);
    let replayable = opk.is_none() && !one_time_kem;
    if replayable && spk.base_keys.len() >= MAX_BASE_KEYS {
        return Err(refusal_with(
            "SignedPreKeyExhausted",
            json!({ "id": h.spk_id }),
        ));
    }
    // Step 7.
    let mut dh = vec![
        try_dh(&spk.private, &id_u(&h.identity))?,
        try_dh(&bob.id_x(), &h.base_key)?,
        try_dh(&spk.private, &h.base_key)?,
    ];
    if let Some(p) = opk {
        dh.push(try_dh(&p, &h.base_key)?);
    }
    let ss = kem.as_ref().map(|(k, ct)| kem_decaps(&k.dk, ct));
    let agreement = Agreement::new(
        dh,
        ss.zip(kem.as_ref())
            .map(|(ss, (k, _))| (ss, k.ek.as_slice())),
    );
    // Steps 8-10: the signed prekey is Bob's ratchet key for the receive
    // step; with no current chain nothing closes, so the header's PN is
    // only authenticated.
    let mut sess = Sess {
        generation: 0,
        initiator: false,
        pq: kem.is_some(),
        local: bob.ik,
        remote: h.identity,
        kb: agreement.kb,
        base: h.base_key,
        pending: None,
        root: agreement.sk,
        remote_ratchet: spk.public,
        sending: Some(Sending {
            private: spk.private,
            public: spk.public,
            ck: [0; 32],
            next: 0,
        }),
        pn: 0,
        recv: Receiving::default(),
    };
    let (pt, trace) = sess
        .receive(&parsed.header, &parsed.prefix, &parsed.ciphertext)
        .map_err(|e| {
            if e["name"] == "SessionDiverged" {
                refusal("AuthenticationFailed")
            } else {
                e
            }
        })?;
    sess.recv.enforce_bounds();
    debug_assert!(sess.sending.is_none() && sess.pn == 0);
    // Step 11.
    if let Some(id) = h.opk_id {
        bob.opks.remove(&id);
    }
    if one_time_kem && let Some((id, _)) = h.kem {
        bob.kem_otks.remove(&id);
    }
    if replayable {
        bob.spks[spk_pos].base_keys.push(h.base_key);
    }
    bob.generation = bob.generation.saturating_add(1);
    Ok((sess, pt, agreement, trace))
}
