//! A second implementation of the pairwise protocol, written from the
//! protocol description with the primitive crates only (no sotto code). The
//! generator takes every intermediate value from here and then checks that
//! sotto's public API produces the same bytes.

use std::collections::BTreeMap;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{AeadInOut, KeyInit};
use ed25519_dalek::{Signer, SigningKey};
use hkdf::Hkdf;
use hmac::{Mac, SimpleHmac};
use rand_chacha::ChaCha20Rng;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sotto::rand_core::{Rng, SeedableRng};

use crate::model_group::{Err, Rd, err};
use crate::vectors::hex;

pub(crate) const L_X3DH: &str = "sotto v1 x3dh";
pub(crate) const L_ROOT: &str = "sotto v1 root";
pub(crate) const L_CHAIN_MESSAGE: &str = "sotto v1 chain message";
pub(crate) const L_CHAIN_NEXT: &str = "sotto v1 chain next";
pub(crate) const L_MESSAGE_KEYS: &str = "sotto v1 message keys";
pub(crate) const L_SEALED: &str = "sotto v1 sealed state";
pub(crate) const L_FINGERPRINT: &str = "sotto v1 fingerprint";
pub(crate) const L_SPK: &str = "sotto v1 signed prekey";

pub(crate) const MAX_SKIP: u32 = 1000;
pub(crate) const MAX_SKIPPED_PER_CHAIN: usize = 1000;
pub(crate) const MAX_SKIPPED_TOTAL: usize = 2000;
pub(crate) const MAX_CHAINS: usize = 5;
pub(crate) const MAX_SPKS: usize = 4;
pub(crate) const MAX_OPKS: usize = 1000;
pub(crate) const MAX_RECENT: usize = 1000;
pub(crate) const MAX_PLAINTEXT: usize = 262_144;
pub(crate) const MAX_STATE: usize = 1 << 20;

fn errf(name: &str, fields: Value) -> Err {
    json!({ "name": name, "fields": fields })
}

/// The model's randomness: the documented draws, each logged.
pub(crate) struct Draws {
    rng: ChaCha20Rng,
    log: Vec<Vec<u8>>,
}

impl Draws {
    pub(crate) fn new(seed: [u8; 32]) -> Self {
        Self {
            rng: ChaCha20Rng::from_seed(seed),
            log: Vec::new(),
        }
    }

    pub(crate) fn draw<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        self.rng.fill_bytes(&mut out);
        self.log.push(out.to_vec());
        out
    }

    pub(crate) fn take(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.log)
    }
}

pub(crate) fn hx(draws: &[Vec<u8>]) -> Value {
    draws.iter().map(|d| Value::from(hex(d))).collect()
}

pub(crate) fn x_pub(private: &[u8; 32]) -> [u8; 32] {
    x25519_dalek::x25519(*private, x25519_dalek::X25519_BASEPOINT_BYTES)
}

pub(crate) fn dh(private: &[u8; 32], public: &[u8; 32]) -> [u8; 32] {
    try_dh(private, public).expect("model: all-zero X25519 output")
}

/// §2 `DH`: an all-zero result is `NonContributoryKey`.
pub(crate) fn try_dh(private: &[u8; 32], public: &[u8; 32]) -> Result<[u8; 32], Err> {
    let out = x25519_dalek::x25519(*private, *public);
    if out == [0u8; 32] {
        return Err(err("NonContributoryKey"));
    }
    Ok(out)
}

pub(crate) fn hkdf(salt: &[u8], ikm: &[u8], info: &str, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info.as_bytes(), &mut out)
        .unwrap();
    out
}

pub(crate) fn hmac(key: &[u8], data: &str) -> [u8; 32] {
    let mut mac = <SimpleHmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().into()
}

pub(crate) fn a32(s: &[u8]) -> [u8; 32] {
    s.try_into().unwrap()
}

pub(crate) fn kdf_rk(rk: &[u8; 32], dh_out: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
    let okm = hkdf(rk, dh_out, L_ROOT, 64);
    (a32(&okm[..32]), a32(&okm[32..]))
}

pub(crate) fn kdf_ck(ck: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
    (hmac(ck, L_CHAIN_MESSAGE), hmac(ck, L_CHAIN_NEXT))
}

pub(crate) fn key_nonce(salt: &[u8], ikm: &[u8], info: &str) -> ([u8; 32], [u8; 12]) {
    let okm = hkdf(salt, ikm, info, 44);
    (a32(&okm[..32]), okm[32..].try_into().unwrap())
}

pub(crate) fn seal(key: &[u8; 32], nonce: &[u8; 12], aad: &[u8], pt: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new(&(*key).into());
    let mut buf = pt.to_vec();
    let tag = cipher
        .encrypt_inout_detached(&(*nonce).into(), aad, buf.as_mut_slice().into())
        .unwrap();
    buf.extend_from_slice(&tag);
    buf
}

pub(crate) fn open(key: &[u8; 32], nonce: &[u8; 12], aad: &[u8], ct: &[u8]) -> Option<Vec<u8>> {
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

#[derive(Clone)]
pub(crate) struct Spk {
    pub(crate) id: u32,
    pub(crate) private: [u8; 32],
    pub(crate) public: [u8; 32],
    pub(crate) signature: [u8; 64],
    pub(crate) signed_data: Vec<u8>,
}

impl Spk {
    pub(crate) fn encoded(&self) -> Vec<u8> {
        let mut out = vec![1, 0x11];
        out.extend(self.id.to_be_bytes());
        out.extend(self.public);
        out.extend(self.signature);
        out
    }
}

/// A new one-time prekey: id, private key, public key.
pub(crate) type NewOpk = (u32, [u8; 32], [u8; 32]);

/// A device: identity, signed prekeys, one-time prekeys, recent base keys.
#[derive(Clone)]
pub(crate) struct Dev {
    pub(crate) ed_seed: [u8; 32],
    pub(crate) ed_pub: [u8; 32],
    pub(crate) x_priv: [u8; 32],
    pub(crate) x_pub: [u8; 32],
    pub(crate) spks: Vec<Spk>,
    pub(crate) next_spk: u32,
    pub(crate) opks: BTreeMap<u32, [u8; 32]>,
    pub(crate) next_opk: u32,
    pub(crate) recent: Vec<[u8; 32]>,
    /// Every draw this device made, for the vectors.
    pub(crate) draws: Vec<Vec<u8>>,
}

impl Dev {
    /// Device::generate: 32 bytes Ed25519 seed, 32 bytes X25519 identity,
    /// 32 bytes signed prekey (id 1).
    pub(crate) fn generate(rng: &mut Draws) -> Self {
        let ed_seed = rng.draw::<32>();
        let x_priv = rng.draw::<32>();
        let spk_priv = rng.draw::<32>();
        let draws = rng.take();
        let signing = SigningKey::from_bytes(&ed_seed);
        let x_pub = x_pub(&x_priv);
        let mut dev = Self {
            ed_seed,
            ed_pub: signing.verifying_key().to_bytes(),
            x_priv,
            x_pub,
            spks: Vec::new(),
            next_spk: 1,
            opks: BTreeMap::new(),
            next_opk: 1,
            recent: Vec::new(),
            draws,
        };
        dev.add_spk(spk_priv);
        dev
    }

    fn add_spk(&mut self, private: [u8; 32]) {
        let id = self.next_spk;
        self.spks.push(self.make_spk(id, private, None));
        self.next_spk += 1;
    }

    /// A signed prekey record; signs unless a stored signature is given.
    fn make_spk(&self, id: u32, private: [u8; 32], signature: Option<[u8; 64]>) -> Spk {
        let public = x_pub(&private);
        let mut signed_data = L_SPK.as_bytes().to_vec();
        signed_data.extend(self.x_pub);
        signed_data.extend(id.to_be_bytes());
        signed_data.extend(public);
        let signature = signature.unwrap_or_else(|| {
            SigningKey::from_bytes(&self.ed_seed)
                .sign(&signed_data)
                .to_bytes()
        });
        Spk {
            id,
            private,
            public,
            signature,
            signed_data,
        }
    }

    /// §6 rotate: fails (drawing nothing) if the next id is 2^32 - 1; keeps
    /// the newest `MAX_SPKS`.
    pub(crate) fn rotate(&mut self, rng: &mut Draws) -> Result<(), Err> {
        if self.next_spk == u32::MAX {
            return Err(err("TooManyPreKeys"));
        }
        let private = rng.draw::<32>();
        self.add_spk(private);
        while self.spks.len() > MAX_SPKS {
            self.spks.remove(0);
        }
        Ok(())
    }

    /// §6 generate one-time prekeys, with its limits.
    pub(crate) fn try_gen_opks(&mut self, rng: &mut Draws, count: u32) -> Result<Vec<NewOpk>, Err> {
        if self.opks.len() + count as usize > MAX_OPKS
            || u64::from(self.next_opk) + u64::from(count) > u64::from(u32::MAX)
        {
            return Err(err("TooManyPreKeys"));
        }
        Ok(self.gen_opks(rng, count))
    }

    /// §10.3 decoder.
    pub(crate) fn decode(b: &[u8]) -> Result<Self, Err> {
        if b.len() > MAX_STATE {
            return Err(err("TooLarge"));
        }
        let mut r = Rd::header(b, 0x21)?;
        let ed_seed = r.a32()?;
        let x_priv = r.a32()?;
        let next_spk = r.u32()?;
        let next_opk = r.u32()?;
        let spk_count = usize::from(r.u8()?);
        if spk_count == 0 || spk_count > MAX_SPKS {
            return Err(err("InvalidEncoding"));
        }
        let mut dev = Self {
            ed_seed,
            ed_pub: SigningKey::from_bytes(&ed_seed).verifying_key().to_bytes(),
            x_priv,
            x_pub: x_pub(&x_priv),
            spks: Vec::new(),
            next_spk,
            opks: BTreeMap::new(),
            next_opk,
            recent: Vec::new(),
            draws: Vec::new(),
        };
        for _ in 0..spk_count {
            let id = r.u32()?;
            if dev.spks.last().is_some_and(|p| id <= p.id) || id >= next_spk {
                return Err(err("InvalidEncoding"));
            }
            let private = r.a32()?;
            let signature: [u8; 64] = r.take(64)?.try_into().unwrap();
            let spk = dev.make_spk(id, private, Some(signature));
            dev.spks.push(spk);
        }
        let opk_count = usize::from(r.u16()?);
        if opk_count > MAX_OPKS {
            return Err(err("InvalidEncoding"));
        }
        for _ in 0..opk_count {
            let id = r.u32()?;
            if dev.opks.last_key_value().is_some_and(|(&p, _)| id <= p) || id >= next_opk {
                return Err(err("InvalidEncoding"));
            }
            dev.opks.insert(id, r.a32()?);
        }
        let base_count = usize::from(r.u16()?);
        if base_count > MAX_RECENT {
            return Err(err("InvalidEncoding"));
        }
        for _ in 0..base_count {
            dev.recent.push(r.a32()?);
        }
        r.end()?;
        Ok(dev)
    }

    pub(crate) fn spk(&self) -> &Spk {
        self.spks.last().unwrap()
    }

    /// The embedded identity: Ed25519 public || X25519 public.
    pub(crate) fn ik(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&self.ed_pub);
        out[32..].copy_from_slice(&self.x_pub);
        out
    }

    pub(crate) fn ik_encoded(&self) -> Vec<u8> {
        let mut out = vec![1, 0x10];
        out.extend(self.ik());
        out
    }

    pub(crate) fn fingerprint(&self) -> [u8; 32] {
        Sha256::new()
            .chain_update(L_FINGERPRINT)
            .chain_update(self.ed_pub)
            .chain_update(self.x_pub)
            .finalize()
            .into()
    }

    /// generate_one_time_prekeys: 32 bytes each, sequential ids.
    pub(crate) fn gen_opks(&mut self, rng: &mut Draws, count: u32) -> Vec<NewOpk> {
        (0..count)
            .map(|_| {
                let private = rng.draw::<32>();
                let id = self.next_opk;
                self.next_opk += 1;
                self.opks.insert(id, private);
                (id, private, x_pub(&private))
            })
            .collect()
    }

    pub(crate) fn bundle(&self, opk: Option<(u32, [u8; 32])>) -> Vec<u8> {
        let mut out = vec![1, 0x13];
        out.extend(self.ik());
        out.extend(&self.spk().encoded()[2..]);
        out.push(u8::from(opk.is_some()));
        if let Some((id, public)) = opk {
            out.extend(id.to_be_bytes());
            out.extend(public);
        }
        out
    }

    /// Device::to_bytes.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = vec![1, 0x21];
        out.extend(self.ed_seed);
        out.extend(self.x_priv);
        out.extend(self.next_spk.to_be_bytes());
        out.extend(self.next_opk.to_be_bytes());
        out.push(self.spks.len() as u8);
        for spk in &self.spks {
            out.extend(spk.id.to_be_bytes());
            out.extend(spk.private);
            out.extend(spk.signature);
        }
        out.extend((self.opks.len() as u16).to_be_bytes());
        for (id, private) in &self.opks {
            out.extend(id.to_be_bytes());
            out.extend(private);
        }
        out.extend((self.recent.len() as u16).to_be_bytes());
        for k in &self.recent {
            out.extend(k);
        }
        out
    }

    pub(crate) fn json(&self) -> Value {
        let spk = self.spk();
        json!({
            "rng_draws": hx(&self.draws),
            "ed25519_seed": hex(&self.ed_seed),
            "ed25519_public": hex(&self.ed_pub),
            "x25519_private": hex(&self.x_priv),
            "x25519_public": hex(&self.x_pub),
            "identity_key": hex(&self.ik_encoded()),
            "fingerprint_info": L_FINGERPRINT,
            "fingerprint": hex(&self.fingerprint()),
            "signed_prekey": {
                "id": spk.id,
                "private": hex(&spk.private),
                "public": hex(&spk.public),
                "signature_info": L_SPK,
                "signed_data": hex(&spk.signed_data),
                "signature": hex(&spk.signature),
                "encoded": hex(&spk.encoded()),
            },
        })
    }

    pub(crate) fn decoded_json(&self) -> Value {
        json!({
            "identity_key": hex(&self.ik_encoded()),
            "ed25519_seed": hex(&self.ed_seed),
            "x25519_private": hex(&self.x_priv),
            "next_signed_prekey_id": self.next_spk,
            "next_one_time_prekey_id": self.next_opk,
            "signed_prekeys": self.spks.iter().map(|s| json!({
                "id": s.id, "private": hex(&s.private), "signature": hex(&s.signature),
                "encoded": hex(&s.encoded()),
            })).collect::<Vec<_>>(),
            "one_time_prekeys": self.opks.iter().map(|(id, p)| json!({
                "id": id, "private": hex(p),
            })).collect::<Vec<_>>(),
            "recent_base_keys": self.recent.iter().map(|k| hex(k)).collect::<Vec<_>>(),
        })
    }
}

pub(crate) struct X3dh {
    pub(crate) dh: Vec<[u8; 32]>,
    pub(crate) ikm: Vec<u8>,
    pub(crate) sk: [u8; 32],
}

impl X3dh {
    fn new(dh: Vec<[u8; 32]>) -> Self {
        let mut ikm = vec![0xff; 32];
        for d in &dh {
            ikm.extend(d);
        }
        let sk = a32(&hkdf(&[0u8; 32], &ikm, L_X3DH, 32));
        Self { dh, ikm, sk }
    }

    pub(crate) fn json(&self) -> Value {
        json!({
            "dh1": hex(&self.dh[0]), "dh2": hex(&self.dh[1]), "dh3": hex(&self.dh[2]),
            "dh4": self.dh.get(3).map(|d| hex(d)),
            "kdf_salt": hex(&[0u8; 32]), "info": L_X3DH,
            "kdf_input": hex(&self.ikm), "sk": hex(&self.sk),
        })
    }
}

#[derive(Clone)]
pub(crate) struct Sending {
    pub(crate) private: [u8; 32],
    pub(crate) public: [u8; 32],
    pub(crate) ck: [u8; 32],
    pub(crate) next: u32,
}

#[derive(Clone)]
pub(crate) struct Chain {
    pub(crate) public: [u8; 32],
    pub(crate) ck: Option<[u8; 32]>,
    pub(crate) next: u32,
    pub(crate) skipped: BTreeMap<u32, [u8; 32]>,
}

/// One side of a session.
#[derive(Clone)]
pub(crate) struct Sess {
    pub(crate) initiator: bool,
    pub(crate) local: [u8; 64],
    pub(crate) remote: [u8; 64],
    pub(crate) base: [u8; 32],
    pub(crate) pending: Option<(u32, Option<u32>)>,
    pub(crate) ad: Vec<u8>,
    pub(crate) root: [u8; 32],
    pub(crate) remote_ratchet: [u8; 32],
    pub(crate) sending: Option<Sending>,
    pub(crate) pn: u32,
    pub(crate) recv: Vec<Chain>,
}

/// Initiator: X3DH with an explicit base key.
pub(crate) fn initiate(
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
        recv: Vec::new(),
    };
    (sess, x)
}

fn header(ratchet: &[u8; 32], pn: u32, n: u32, salt: &[u8; 16]) -> Vec<u8> {
    let mut h = vec![1, 0x01];
    h.extend(ratchet);
    h.extend(pn.to_be_bytes());
    h.extend(n.to_be_bytes());
    h.extend(salt);
    h
}

impl Sess {
    /// Encrypt: [32-byte ratchet key if no sending chain] then 16-byte salt.
    pub(crate) fn encrypt(&mut self, rng: &mut Draws, pt: &[u8]) -> (Vec<u8>, Value) {
        self.encrypt_check(pt.len()).expect("model: encrypt fails");
        let mut ratchet = Value::Null;
        if self.sending.is_none() {
            let private = rng.draw::<32>();
            let d = dh(&private, &self.remote_ratchet);
            let (rk, ck) = kdf_rk(&self.root, &d);
            ratchet = json!({
                "ratchet_private": hex(&private), "ratchet_public": hex(&x_pub(&private)),
                "remote_ratchet_public": hex(&self.remote_ratchet), "dh_output": hex(&d),
                "root_key_in": hex(&self.root), "root_key_out": hex(&rk), "chain_key_out": hex(&ck),
            });
            self.root = rk;
            self.sending = Some(Sending {
                private,
                public: x_pub(&private),
                ck,
                next: 0,
            });
        }
        let salt = rng.draw::<16>();
        let s = self.sending.as_mut().unwrap();
        let h = header(&s.public, self.pn, s.next, &salt);
        let mut msg = Vec::new();
        if let Some((spk_id, opk_id)) = self.pending {
            msg.extend([1, 0x02]);
            msg.extend(self.local);
            msg.extend(self.base);
            msg.extend(spk_id.to_be_bytes());
            msg.push(u8::from(opk_id.is_some()));
            if let Some(id) = opk_id {
                msg.extend(id.to_be_bytes());
            }
        }
        let (mk, next_ck) = kdf_ck(&s.ck);
        let (key, nonce) = key_nonce(&salt, &mk, L_MESSAGE_KEYS);
        // The AEAD covers every byte before the ciphertext.
        let mut aad = self.ad.clone();
        aad.extend(&msg);
        aad.extend(&h);
        let ct = seal(&key, &nonce, &aad, pt);
        msg.extend(&h);
        msg.extend(&ct);
        let ev = json!({
            "kind": if self.pending.is_some() { "prekey" } else { "ratchet" },
            "dh_ratchet": ratchet,
            "previous_chain_length": self.pn, "message_number": s.next,
            "chain_key": hex(&s.ck), "message_key": hex(&mk), "next_chain_key": hex(&next_ck),
            "salt": hex(&salt), "aes_key": hex(&key), "nonce": hex(&nonce),
            "header": hex(&h), "aad": hex(&aad), "ciphertext": hex(&ct), "message": hex(&msg),
        });
        s.ck = next_ck;
        s.next += 1;
        (msg, ev)
    }

    /// §8.5 steps 1-2: the checks before anything is drawn.
    pub(crate) fn encrypt_check(&self, len: usize) -> Result<(), Err> {
        if len > MAX_PLAINTEXT {
            return Err(err("PlaintextTooLarge"));
        }
        if self.sending.as_ref().is_some_and(|s| s.next == u32::MAX) {
            return Err(err("ChainExhausted"));
        }
        Ok(())
    }

    /// Decrypt that must succeed. Returns the plaintext and a trace.
    pub(crate) fn decrypt(&mut self, msg: &[u8]) -> (Vec<u8>, Value) {
        let (pt, trace, _) = self
            .try_decrypt(msg)
            .unwrap_or_else(|e| panic!("model: decrypt failed with {e}"));
        (pt, trace)
    }

    /// §8.6, all or nothing: the plaintext, a trace and what the bounds of
    /// §8.7 evicted.
    pub(crate) fn try_decrypt(&mut self, msg: &[u8]) -> Result<(Vec<u8>, Value, Value), Err> {
        let mut next = self.clone();
        let (pt, trace) = next.decrypt_inner(msg)?;
        let evicted = next.enforce_bounds();
        *self = next;
        Ok((pt, trace, evicted))
    }

    fn decrypt_inner(&mut self, msg: &[u8]) -> Result<(Vec<u8>, Value), Err> {
        let inner = if msg[1] == 0x02 {
            if msg[2..66] != self.remote[..] {
                return Err(err("IdentityMismatch"));
            }
            if self.initiator || msg[66..98] != self.base {
                return Err(err("SessionMismatch"));
            }
            let off = if msg[102] == 1 { 107 } else { 103 };
            &msg[off..]
        } else {
            msg
        };
        let ratchet = a32(&inner[2..34]);
        let pn = u32::from_be_bytes(inner[34..38].try_into().unwrap());
        let n = u32::from_be_bytes(inner[38..42].try_into().unwrap());
        let salt = &inner[42..58];
        let mut trace = json!({ "dh_ratchet": null, "skipped_stored": [] });
        let mut stored = Vec::new();
        let mk;
        let last = self.recv.len().saturating_sub(1);
        if let Some((pos, c)) = self
            .recv
            .iter_mut()
            .enumerate()
            .find(|(_, c)| c.public == ratchet)
        {
            if let Some(k) = c.skipped.remove(&n) {
                trace["key_source"] = "skipped".into();
                mk = k;
            } else {
                let ck = match c.ck {
                    Some(ck) if pos == last && n >= c.next => ck,
                    _ => return Err(err("DuplicateMessage")),
                };
                if n - c.next > MAX_SKIP {
                    return Err(errf("TooFarAhead", json!({ "skipped": n - c.next })));
                }
                if n == u32::MAX {
                    return Err(err("ChainExhausted"));
                }
                let mut ck = ck;
                for i in c.next..n {
                    let (k, next) = kdf_ck(&ck);
                    c.skipped.insert(i, k);
                    stored.push((ratchet, i, k));
                    ck = next;
                }
                let (k, next) = kdf_ck(&ck);
                c.ck = Some(next);
                c.next = n + 1;
                trace["key_source"] = "chain".into();
                mk = k;
            }
        } else {
            let Some(sending) = self.sending.take() else {
                return Err(err("UnexpectedRatchetKey"));
            };
            let c = self
                .recv
                .last()
                .filter(|c| c.ck.is_some())
                .map_or(pn, |c| c.next);
            let closing = u64::from(pn.saturating_sub(c));
            if closing + u64::from(n) > u64::from(MAX_SKIP) {
                return Err(errf(
                    "TooFarAhead",
                    json!({ "skipped": closing + u64::from(n) }),
                ));
            }
            if n == u32::MAX {
                return Err(err("ChainExhausted"));
            }
            let d = try_dh(&sending.private, &ratchet)?;
            // Close the current receiving chain up to the peer's pn.
            if let Some(c) = self.recv.last_mut()
                && let Some(mut ck) = c.ck.take()
            {
                for i in c.next..pn {
                    let (k, next) = kdf_ck(&ck);
                    c.skipped.insert(i, k);
                    stored.push((c.public, i, k));
                    ck = next;
                }
                c.next = c.next.max(pn);
            }
            let (rk, mut ck) = kdf_rk(&self.root, &d);
            trace["dh_ratchet"] = json!({
                "ratchet_private": hex(&sending.private), "remote_ratchet_public": hex(&ratchet),
                "dh_output": hex(&d), "root_key_in": hex(&self.root), "root_key_out": hex(&rk),
                "chain_key_out": hex(&ck),
            });
            let mut skipped = BTreeMap::new();
            for i in 0..n {
                let (k, next) = kdf_ck(&ck);
                skipped.insert(i, k);
                stored.push((ratchet, i, k));
                ck = next;
            }
            let (k, next) = kdf_ck(&ck);
            mk = k;
            self.recv.push(Chain {
                public: ratchet,
                ck: Some(next),
                next: n + 1,
                skipped,
            });
            self.root = rk;
            self.remote_ratchet = ratchet;
            self.pn = sending.next;
            trace["key_source"] = "chain".into();
        }
        let (key, nonce) = key_nonce(salt, &mk, L_MESSAGE_KEYS);
        let mut aad = self.ad.clone();
        aad.extend(&msg[..msg.len() - inner.len() + 58]);
        let pt =
            open(&key, &nonce, &aad, &inner[58..]).ok_or_else(|| err("AuthenticationFailed"))?;
        self.pending = None;
        trace["skipped_stored"] = stored
            .iter()
            .map(|(p, i, k)| json!({ "ratchet_public": hex(p), "message_number": i, "message_key": hex(k) }))
            .collect();
        trace["message_key"] = hex(&mk).into();
        Ok((pt, trace))
    }

    /// §8.7, in the table's order: chains, keys per chain, keys in total.
    /// Returns what was deleted.
    fn enforce_bounds(&mut self) -> Value {
        let mut chains = Vec::new();
        while self.recv.len() > MAX_CHAINS {
            chains.push(hex(&self.recv.remove(0).public));
        }
        let mut keys = Vec::new();
        let mut note = |rule: &str, c: &Chain, gone: &[u32]| {
            if let (Some(first), Some(last)) = (gone.first(), gone.last()) {
                keys.push(json!({
                    "rule": rule, "ratchet_public": hex(&c.public),
                    "count": gone.len(), "lowest": first, "highest": last,
                }));
            }
        };
        for c in &mut self.recv {
            let mut gone = Vec::new();
            while c.skipped.len() > MAX_SKIPPED_PER_CHAIN {
                gone.push(c.skipped.pop_first().unwrap().0);
            }
            note("per_chain", c, &gone);
        }
        let mut excess = self.skipped_count().saturating_sub(MAX_SKIPPED_TOTAL);
        for c in &mut self.recv {
            let mut gone = Vec::new();
            while excess > 0
                && let Some((i, _)) = c.skipped.pop_first()
            {
                gone.push(i);
                excess -= 1;
            }
            note("total", c, &gone);
        }
        json!({ "chains": chains, "keys": keys })
    }

    /// §10.2 decoder.
    pub(crate) fn decode(b: &[u8]) -> Result<Self, Err> {
        if b.len() > MAX_STATE {
            return Err(err("TooLarge"));
        }
        let mut r = Rd::header(b, 0x20)?;
        let initiator = match r.u8()? {
            0 => true,
            1 => false,
            _ => return Err(err("InvalidEncoding")),
        };
        let local = r.ik()?;
        let remote = r.ik()?;
        let base = r.a32()?;
        let pending = if r.flag()? {
            if !initiator {
                return Err(err("InvalidEncoding"));
            }
            let spk = r.u32()?;
            let opk = if r.flag()? { Some(r.u32()?) } else { None };
            Some((spk, opk))
        } else {
            None
        };
        let root = r.a32()?;
        let remote_ratchet = r.x()?;
        let sending = if r.flag()? {
            let private = r.a32()?;
            let ck = r.a32()?;
            let next = r.u32()?;
            Some(Sending {
                private,
                public: x_pub(&private),
                ck,
                next,
            })
        } else {
            None
        };
        let pn = r.u32()?;
        let count = usize::from(r.u8()?);
        if count > MAX_CHAINS {
            return Err(err("InvalidEncoding"));
        }
        let mut recv: Vec<Chain> = Vec::new();
        let mut total = 0;
        for i in 0..count {
            let public = r.a32()?;
            let has_ck = r.flag()?;
            // The flag's value is checked as soon as it is read (§4).
            if has_ck != (i + 1 == count) {
                return Err(err("InvalidEncoding"));
            }
            let ck = if has_ck { Some(r.a32()?) } else { None };
            let next = r.u32()?;
            let keys = usize::from(r.u16()?);
            total += keys;
            if keys > MAX_SKIPPED_PER_CHAIN || total > MAX_SKIPPED_TOTAL {
                return Err(err("InvalidEncoding"));
            }
            let mut skipped = BTreeMap::new();
            for _ in 0..keys {
                let index = r.u32()?;
                if skipped.last_key_value().is_some_and(|(&p, _)| index <= p) || index >= next {
                    return Err(err("InvalidEncoding"));
                }
                skipped.insert(index, r.a32()?);
            }
            recv.push(Chain {
                public,
                ck,
                next,
                skipped,
            });
        }
        r.end()?;
        if recv.last().is_some_and(|c| c.public != remote_ratchet) {
            return Err(err("InvalidEncoding"));
        }
        let mut ad = if initiator { local } else { remote }.to_vec();
        ad.extend(if initiator { remote } else { local });
        Ok(Self {
            initiator,
            local,
            remote,
            base,
            pending,
            ad,
            root,
            remote_ratchet,
            sending,
            pn,
            recv,
        })
    }

    /// The sending chain moves `count` steps without sending, as if that
    /// many messages were sent and lost.
    pub(crate) fn advance(&mut self, count: u32) {
        let s = self.sending.as_mut().expect("model: no sending chain");
        for _ in 0..count {
            s.ck = kdf_ck(&s.ck).1;
        }
        s.next += count;
    }

    /// Offset of the sending chain key in the encoding (§10.2); the
    /// sending message number follows it.
    pub(crate) fn sending_ck_at(&self) -> usize {
        let pending = self
            .pending
            .map_or(0, |(_, o)| 5 + if o.is_some() { 4 } else { 0 });
        2 + 1 + 64 + 64 + 32 + 1 + pending + 32 + 32 + 1 + 32
    }

    pub(crate) fn skipped_count(&self) -> usize {
        self.recv.iter().map(|c| c.skipped.len()).sum()
    }

    /// Session::to_bytes; also returns the offset of the receiving chain count.
    pub(crate) fn encode(&self) -> (Vec<u8>, usize) {
        let mut out = vec![1, 0x20, u8::from(!self.initiator)];
        out.extend(self.local);
        out.extend(self.remote);
        out.extend(self.base);
        out.push(u8::from(self.pending.is_some()));
        if let Some((spk, opk)) = self.pending {
            out.extend(spk.to_be_bytes());
            out.push(u8::from(opk.is_some()));
            if let Some(id) = opk {
                out.extend(id.to_be_bytes());
            }
        }
        out.extend(self.root);
        out.extend(self.remote_ratchet);
        out.push(u8::from(self.sending.is_some()));
        if let Some(s) = &self.sending {
            out.extend(s.private);
            out.extend(s.ck);
            out.extend(s.next.to_be_bytes());
        }
        out.extend(self.pn.to_be_bytes());
        let count_at = out.len();
        out.push(self.recv.len() as u8);
        for c in &self.recv {
            out.extend(c.public);
            out.push(u8::from(c.ck.is_some()));
            if let Some(ck) = c.ck {
                out.extend(ck);
            }
            out.extend(c.next.to_be_bytes());
            out.extend((c.skipped.len() as u16).to_be_bytes());
            for (i, k) in &c.skipped {
                out.extend(i.to_be_bytes());
                out.extend(k);
            }
        }
        (out, count_at)
    }

    pub(crate) fn decoded_json(&self) -> Value {
        json!({
            "role": if self.initiator { "initiator" } else { "responder" },
            "local_identity": hex(&self.local),
            "remote_identity": hex(&self.remote),
            "base_key": hex(&self.base),
            "pending_prekey": self.pending.map(|(s, o)| json!({ "signed_prekey_id": s, "one_time_prekey_id": o })),
            "associated_data": hex(&self.ad),
            "root_key": hex(&self.root),
            "remote_ratchet_public": hex(&self.remote_ratchet),
            "sending_chain": self.sending.as_ref().map(|s| json!({
                "ratchet_private": hex(&s.private), "ratchet_public": hex(&s.public),
                "chain_key": hex(&s.ck), "next": s.next,
            })),
            "previous_sending_length": self.pn,
            "receiving_chains": self.recv.iter().map(|c| json!({
                "ratchet_public": hex(&c.public), "chain_key": c.ck.map(|k| hex(&k)), "next": c.next,
                "skipped": c.skipped.iter().map(|(i, k)| json!({ "message_number": i, "message_key": hex(k) })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })
    }
}

/// Responder: X3DH, the first receive step, and the device commit.
pub(crate) fn accept(bob: &mut Dev, msg: &[u8]) -> (Sess, Vec<u8>, X3dh, Value) {
    try_accept(bob, msg).unwrap_or_else(|e| panic!("model: accept failed with {e}"))
}

/// §7.2, all or nothing.
pub(crate) fn try_accept(bob: &mut Dev, msg: &[u8]) -> Result<(Sess, Vec<u8>, X3dh, Value), Err> {
    assert_eq!(&msg[..2], &[1, 2]);
    let alice_ik: [u8; 64] = msg[2..66].try_into().unwrap();
    let base = a32(&msg[66..98]);
    if bob.recent.contains(&base) {
        return Err(err("DuplicatePreKeyMessage"));
    }
    let spk_id = u32::from_be_bytes(msg[98..102].try_into().unwrap());
    let opk_id = (msg[102] == 1).then(|| u32::from_be_bytes(msg[103..107].try_into().unwrap()));
    let spk = bob
        .spks
        .iter()
        .find(|s| s.id == spk_id)
        .ok_or_else(|| errf("UnknownSignedPreKey", json!({ "id": spk_id })))?;
    let opk = match opk_id {
        Some(id) => Some(
            *bob.opks
                .get(&id)
                .ok_or_else(|| errf("UnknownOneTimePreKey", json!({ "id": id })))?,
        ),
        None => None,
    };
    let alice_x = a32(&alice_ik[32..]);
    let mut dhs = vec![
        try_dh(&spk.private, &alice_x)?,
        try_dh(&bob.x_priv, &base)?,
        try_dh(&spk.private, &base)?,
    ];
    if let Some(p) = opk {
        dhs.push(try_dh(&p, &base)?);
    }
    let x = X3dh::new(dhs);
    let mut ad = alice_ik.to_vec();
    ad.extend(bob.ik());
    let mut sess = Sess {
        initiator: false,
        local: bob.ik(),
        remote: alice_ik,
        base,
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
        recv: Vec::new(),
    };
    // The whole prekey message, decrypted by the common receive path.
    let (pt, trace, _) = sess.try_decrypt(msg)?;
    assert!(sess.sending.is_none() && sess.pn == 0);
    if let Some(id) = opk_id {
        bob.opks.remove(&id);
    }
    bob.recent.push(base);
    while bob.recent.len() > MAX_RECENT {
        bob.recent.remove(0);
    }
    Ok((sess, pt, x, trace))
}
