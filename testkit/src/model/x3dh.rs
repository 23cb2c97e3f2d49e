//! SPEC.md §7: X3DH, initiator and responder.

use serde_json::{Value, json};

use super::device::Dev;
use super::error::{Refusal, refusal, refusal_with};
use super::primitives::{L_X3DH, MAX_RECENT, a32, dh, hkdf, try_dh, x_pub};
use super::receiving::Receiving;
use super::session::{Sending, Sess};
use super::wire::read_message;
use crate::hex::hex;

/// The shared secret and how it was made (§7.1 steps 2 and 3).
#[derive(Clone, Debug)]
pub struct X3dh {
    /// DH1..DH3, and DH4 with a one-time prekey.
    pub dh: Vec<[u8; 32]>,
    /// The KDF input: 0xFF^32 || DH1 || DH2 || DH3 [|| DH4].
    pub ikm: Vec<u8>,
    /// SK.
    pub sk: [u8; 32],
}

impl X3dh {
    /// SK from the DH outputs.
    pub fn new(dh: Vec<[u8; 32]>) -> Self {
        let mut ikm = vec![0xff; 32];
        for d in &dh {
            ikm.extend(d);
        }
        let sk = a32(&hkdf(&[0u8; 32], &ikm, L_X3DH, 32));
        Self { dh, ikm, sk }
    }

    /// As x3dh.json spells it.
    pub fn json(&self) -> Value {
        json!({
            "dh1": hex(&self.dh[0]), "dh2": hex(&self.dh[1]), "dh3": hex(&self.dh[2]),
            "dh4": self.dh.get(3).map(|d| hex(d)),
            "kdf_salt": hex(&[0u8; 32]), "info": L_X3DH,
            "kdf_input": hex(&self.ikm), "sk": hex(&self.sk),
        })
    }
}

/// §7.1: the initiator's session, with an explicit base key.
pub fn initiate(
    alice: &Dev,
    bob_ik: &[u8; 64],
    spk: (u32, [u8; 32]),
    opk: Option<(u32, [u8; 32])>,
    base_priv: &[u8; 32],
) -> (Sess, X3dh) {
    let bob_x = a32(&bob_ik[32..]);
    let mut dhs = vec![
        dh(&alice.x_priv, &spk.1),
        dh(base_priv, &bob_x),
        dh(base_priv, &spk.1),
    ];
    if let Some((_, p)) = opk {
        dhs.push(dh(base_priv, &p));
    }
    let x = X3dh::new(dhs);
    let mut ad = alice.ik().to_vec();
    ad.extend(bob_ik);
    let sess = Sess {
        initiator: true,
        local: alice.ik(),
        remote: *bob_ik,
        base: x_pub(base_priv),
        pending: Some((spk.0, opk.map(|o| o.0))),
        ad,
        root: x.sk,
        remote_ratchet: spk.1,
        sending: None,
        pn: 0,
        recv: Receiving::default(),
    };
    (sess, x)
}

/// What a successful accept returns: the session, the plaintext, the X3DH
/// values and the receive trace.
pub type Accepted = (Sess, Vec<u8>, X3dh, Value);

/// Responder: an accept that must succeed.
pub fn accept(bob: &mut Dev, msg: &[u8]) -> Accepted {
    try_accept(bob, msg).unwrap_or_else(|e| panic!("model: accept failed with {e}"))
}

/// §7.2, all or nothing.
///
/// # Errors
///
/// The model's refusal: the SPEC.md error of the first check the input
/// fails, in the order SPEC.md fixes.
pub fn try_accept(bob: &mut Dev, msg: &[u8]) -> Result<Accepted, Refusal> {
    let (parsed, _) = read_message(msg)?;
    let h = parsed.prekey.ok_or_else(|| refusal("WrongType"))?;
    if bob.recent.contains(&h.base_key) {
        return Err(refusal("DuplicatePreKeyMessage"));
    }
    let spk = bob
        .spks
        .iter()
        .find(|s| s.id == h.spk_id)
        .ok_or_else(|| refusal_with("UnknownSignedPreKey", json!({ "id": h.spk_id })))?;
    let opk = match h.opk_id {
        Some(id) => Some(
            *bob.opks
                .get(&id)
                .ok_or_else(|| refusal_with("UnknownOneTimePreKey", json!({ "id": id })))?,
        ),
        None => None,
    };
    let alice_x = a32(&h.identity[32..]);
    let mut dhs = vec![
        try_dh(&spk.private, &alice_x)?,
        try_dh(&bob.x_priv, &h.base_key)?,
        try_dh(&spk.private, &h.base_key)?,
    ];
    if let Some(p) = opk {
        dhs.push(try_dh(&p, &h.base_key)?);
    }
    let x = X3dh::new(dhs);
    let mut ad = h.identity.to_vec();
    ad.extend(bob.ik());
    let mut sess = Sess {
        initiator: false,
        local: bob.ik(),
        remote: h.identity,
        base: h.base_key,
        pending: None,
        ad,
        root: x.sk,
        remote_ratchet: spk.public,
        // The signed prekey acts as the responder's first ratchet key.
        sending: Some(Sending {
            private: spk.private,
            public: spk.public,
            ck: [0; 32],
            next: 0,
        }),
        pn: 0,
        recv: Receiving::default(),
    };
    // The whole prekey message, decrypted by the common receive path.
    let (pt, trace, _) = sess.try_decrypt(msg)?;
    assert!(sess.sending.is_none() && sess.pn == 0);
    if let Some(id) = h.opk_id {
        bob.opks.remove(&id);
    }
    bob.recent.push(h.base_key);
    while bob.recent.len() > MAX_RECENT {
        bob.recent.remove(0);
    }
    Ok((sess, pt, x, trace))
}
