//! SPEC.md §8 (the Double Ratchet session: encrypt, decrypt, bounds) and
//! §10.2 (its saved state).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::codec::{Layout, Reader};
use super::error::{Refusal, refusal};
use super::primitives::{
    CT_LEN, L_MESSAGE_KEYS, MAX_CHAINS, MAX_PLAINTEXT, MAX_SKIPPED_PER_CHAIN, MAX_SKIPPED_TOTAL,
    MAX_STATE, VERSION, kdf_ck, kdf_rk, key_nonce, open, seal, try_dh, x_pub,
};
use super::rand::Source;
use super::receiving::{Chain, Plan, Receiving};
use super::wire::{PreKeyHeader, RatchetHeader, read_message};
use crate::hex::hex;

/// Length of the associated data: both identities and the KEM binding.
pub const AD_LEN: usize = 96;

/// The sending chain (§8.1): DHs, CKs, Ns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sending {
    /// DHs secret, as drawn.
    pub private: [u8; 32],
    /// pub(DHs).
    pub public: [u8; 32],
    /// CKs.
    pub ck: [u8; 32],
    /// Ns: the next message number.
    pub next: u32,
}

/// The initiator's pending prekey record (§7.2 step 7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    /// The signed prekey id.
    pub spk_id: u32,
    /// The one-time prekey id, if any.
    pub opk_id: Option<u32>,
    /// The KEM prekey id and ciphertext, if any.
    pub kem: Option<(u32, Vec<u8>)>,
}

/// One side of a session (§8.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sess {
    /// §10.1 generation.
    pub generation: u64,
    /// Initiator or responder.
    pub initiator: bool,
    /// PQXDH (true) or X3DH.
    pub pq: bool,
    /// Local identity key.
    pub local: [u8; 32],
    /// Remote identity key.
    pub remote: [u8; 32],
    /// KB (§7.4).
    pub kb: [u8; 32],
    /// The initiator's base key.
    pub base: [u8; 32],
    /// The pending prekey record.
    pub pending: Option<Pending>,
    /// RK.
    pub root: [u8; 32],
    /// DHr.
    pub remote_ratchet: [u8; 32],
    /// The sending chain, if any.
    pub sending: Option<Sending>,
    /// PN.
    pub pn: u32,
    /// The receiving chains.
    pub recv: Receiving<[u8; 32]>,
}

/// What a decrypt returns: the plaintext, a trace, and what §8.7 deleted.
pub type Decrypted = (Vec<u8>, Value, Value);

impl Sess {
    /// `AD = IK_initiator || IK_responder || KB` (§7.2 step 6).
    pub fn ad(&self) -> Vec<u8> {
        let (i, r) = if self.initiator {
            (self.local, self.remote)
        } else {
            (self.remote, self.local)
        };
        let mut ad = i.to_vec();
        ad.extend(r);
        ad.extend(self.kb);
        ad
    }

    /// §8.5 steps 1-2: the checks before anything is drawn.
    ///
    /// # Errors
    ///
    /// `PlaintextTooLarge`, `ChainExhausted`.
    pub fn encrypt_check(&self, len: usize) -> Result<(), Refusal> {
        if len > MAX_PLAINTEXT {
            return Err(refusal("PlaintextTooLarge"));
        }
        if self.sending.as_ref().is_some_and(|s| s.next == u32::MAX) {
            return Err(refusal("ChainExhausted"));
        }
        Ok(())
    }

    /// §8.5, all or nothing: draws a 32-byte ratchet key if there is no
    /// sending chain, then the 16-byte salt. Returns the message and its
    /// trace.
    ///
    /// # Errors
    ///
    /// `PlaintextTooLarge`, `ChainExhausted` (nothing drawn);
    /// `NonContributoryKey` (after the draws).
    pub fn encrypt(
        &mut self,
        rng: &mut dyn Source,
        pt: &[u8],
    ) -> Result<(Vec<u8>, Value), Refusal> {
        self.encrypt_check(pt.len())?;
        let new_key = self.sending.is_none().then(|| rng.draw::<32>());
        let salt = rng.draw::<16>();
        let mut next = self.clone();
        let mut ratchet = Value::Null;
        if let Some(private) = new_key {
            let d = try_dh(&private, &next.remote_ratchet)?;
            let (rk, ck) = kdf_rk(&next.root, &d);
            ratchet = json!({
                "ratchet_private": hex(&private), "ratchet_public": hex(&x_pub(&private)),
                "remote_ratchet_public": hex(&next.remote_ratchet), "dh_output": hex(&d),
                "root_key_in": hex(&next.root), "root_key_out": hex(&rk), "chain_key_out": hex(&ck),
            });
            next.root = rk;
            next.sending = Some(Sending {
                private,
                public: x_pub(&private),
                ck,
                next: 0,
            });
        }
        let ad = next.ad();
        let pn = next.pn;
        let prekey = next.pending.as_ref().map(|p| {
            PreKeyHeader {
                identity: next.local,
                base_key: next.base,
                spk_id: p.spk_id,
                opk_id: p.opk_id,
                kem: p.kem.clone(),
            }
            .encode()
        });
        let s = next.sending.as_mut().expect("a sending chain");
        let h = RatchetHeader {
            ratchet_key: s.public,
            pn,
            n: s.next,
            salt,
        }
        .encode();
        let mut msg = prekey.clone().unwrap_or_default();
        let (mk, next_ck) = kdf_ck(&s.ck);
        let (key, nonce) = key_nonce(&salt, &mk, L_MESSAGE_KEYS);
        // The AEAD covers every byte before the ciphertext.
        let mut aad = ad;
        aad.extend(&msg);
        aad.extend(&h);
        let ct = seal(&key, &nonce, &aad, pt);
        msg.extend(&h);
        msg.extend(&ct);
        let ev = json!({
            "kind": if prekey.is_some() { "prekey" } else { "ratchet" },
            "dh_ratchet": ratchet,
            "previous_chain_length": pn, "message_number": s.next,
            "chain_key": hex(&s.ck), "message_key": hex(&mk), "next_chain_key": hex(&next_ck),
            "salt": hex(&salt), "aes_key": hex(&key), "nonce": hex(&nonce),
            "header": hex(&h), "aad": hex(&aad), "ciphertext": hex(&ct), "message": hex(&msg),
        });
        s.ck = next_ck;
        s.next += 1;
        next.generation = next.generation.saturating_add(1);
        *self = next;
        Ok((msg, ev))
    }

    /// §8.6, all or nothing: the plaintext, a trace and what the bounds of
    /// §8.7 deleted.
    ///
    /// # Errors
    ///
    /// The model's refusal: the SPEC.md error of the first check the input
    /// fails, in the order SPEC.md fixes.
    pub fn decrypt(&mut self, msg: &[u8]) -> Result<Decrypted, Refusal> {
        let mut next = self.clone();
        let (pt, trace) = next.decrypt_inner(msg)?;
        let evicted = next.recv.enforce_bounds().json();
        next.generation = next.generation.saturating_add(1);
        *self = next;
        Ok((pt, trace, evicted))
    }

    fn decrypt_inner(&mut self, msg: &[u8]) -> Result<(Vec<u8>, Value), Refusal> {
        let (m, _) = read_message(msg)?;
        if let Some(p) = &m.prekey {
            if p.identity != self.remote {
                return Err(refusal("IdentityMismatch"));
            }
            if self.initiator || p.base_key != self.base {
                return Err(refusal("SessionMismatch"));
            }
        }
        self.receive(&m.header, &m.prefix, &m.ciphertext)
    }

    /// The receive rules of §8.6 (and §7.3 steps 9-10) for a parsed ratchet
    /// message whose associated-data prefix is `prefix`.
    pub(super) fn receive(
        &mut self,
        header: &RatchetHeader,
        prefix: &[u8],
        ciphertext: &[u8],
    ) -> Result<(Vec<u8>, Value), Refusal> {
        let RatchetHeader {
            ratchet_key,
            pn,
            n,
            salt,
        } = *header;
        let mut trace = json!({ "dh_ratchet": null, "skipped_stored": [] });
        let plan = self
            .recv
            .plan(&ratchet_key, pn, n, self.sending.is_some())?;
        let new_chain = matches!(plan, Plan::NewChain { .. });
        let new_chain_key = if new_chain {
            let sending = self.sending.take().expect("planned with a sending chain");
            let d = try_dh(&sending.private, &ratchet_key)?;
            let (rk, ck) = kdf_rk(&self.root, &d);
            trace["dh_ratchet"] = json!({
                "ratchet_private": hex(&sending.private), "remote_ratchet_public": hex(&ratchet_key),
                "dh_output": hex(&d), "root_key_in": hex(&self.root), "root_key_out": hex(&rk),
                "chain_key_out": hex(&ck),
            });
            self.root = rk;
            self.remote_ratchet = ratchet_key;
            self.pn = sending.next;
            Some(ck)
        } else {
            None
        };
        trace["key_source"] = match plan {
            Plan::Skipped { .. } => "skipped",
            _ => "chain",
        }
        .into();
        let (mk, stored) = self.recv.apply(&plan, &ratchet_key, new_chain_key);
        let (key, nonce) = key_nonce(&salt, &mk, L_MESSAGE_KEYS);
        let mut aad = self.ad();
        aad.extend(prefix);
        let pt = open(&key, &nonce, &aad, ciphertext).ok_or_else(|| {
            // Step 2.4: a new chain that does not decrypt is divergence.
            refusal(if new_chain {
                "SessionDiverged"
            } else {
                "AuthenticationFailed"
            })
        })?;
        self.pending = None;
        trace["skipped_stored"] = stored
            .iter()
            .map(|(p, i, k)| json!({ "ratchet_public": hex(p), "message_number": i, "message_key": hex(k) }))
            .collect();
        trace["message_key"] = hex(&mk).into();
        Ok((pt, trace))
    }

    /// §10.2 decoder.
    ///
    /// # Errors
    ///
    /// The model's refusal: the SPEC.md error of the first check the input
    /// fails, in the order SPEC.md fixes.
    pub fn decode(b: &[u8]) -> Result<Self, Refusal> {
        Self::read(b).map(|(s, _)| s)
    }

    /// §10.2 decoder, with the state's layout.
    ///
    /// # Errors
    ///
    /// The model's refusal: the SPEC.md error of the first check the input
    /// fails, in the order SPEC.md fixes.
    pub fn read(b: &[u8]) -> Result<(Self, Layout), Refusal> {
        let bad = || refusal("InvalidEncoding");
        if b.len() > MAX_STATE {
            return Err(refusal("TooLarge"));
        }
        let mut r = Reader::header(b, 0x20)?;
        let generation = r.u64("generation")?;
        let initiator = match r.u8("role")? {
            0 => true,
            1 => false,
            _ => return Err(bad()),
        };
        let pq = match r.u8("key_agreement")? {
            0 => false,
            1 => true,
            _ => return Err(bad()),
        };
        let local = r.ik("local_identity")?;
        let remote = r.ik("remote_identity")?;
        let kb = r.a32("kem_binding")?;
        let base = r.a32("base_key")?;
        let pending = if r.flag("has_pending")? {
            if !initiator {
                return Err(bad());
            }
            let spk_id = r.u32("spk_id")?;
            let opk_id = if r.flag("has_opk")? {
                Some(r.u32("opk_id")?)
            } else {
                None
            };
            let has_kem = r.flag("has_kem")?;
            if has_kem != pq {
                return Err(bad());
            }
            let kem = if has_kem {
                Some((r.u32("kem_id")?, r.take("ct", CT_LEN)?.to_vec()))
            } else {
                None
            };
            Some(Pending {
                spk_id,
                opk_id,
                kem,
            })
        } else {
            None
        };
        let root = r.a32("root_key")?;
        let remote_ratchet = r.x("dhr")?;
        let sending = if r.flag("has_sending")? {
            let private = r.a32("dhs_secret")?;
            let ck = r.a32("cks")?;
            let next = r.u32("ns")?;
            Some(Sending {
                private,
                public: x_pub(&private),
                ck,
                next,
            })
        } else {
            None
        };
        let pn = r.u32("pn")?;
        let count = usize::from(r.u8("chain_count")?);
        if count > MAX_CHAINS {
            return Err(bad());
        }
        let mut recv = Receiving::default();
        let mut total = 0;
        for i in 0..count {
            r.enter(format!("chains[{i}]"));
            let ratchet_key = r.a32("ratchet_key")?;
            let has_ck = r.flag("has_ck")?;
            // The flag's value is checked as soon as it is read (§4).
            if has_ck != (i + 1 == count) {
                return Err(bad());
            }
            let chain_key = if has_ck { Some(r.a32("ck")?) } else { None };
            let next = r.u32("next")?;
            let keys = usize::from(r.u16("key_count")?);
            total += keys;
            if keys > MAX_SKIPPED_PER_CHAIN || total > MAX_SKIPPED_TOTAL {
                return Err(bad());
            }
            let mut skipped = BTreeMap::new();
            for j in 0..keys {
                r.enter(format!("keys[{j}]"));
                let index = r.u32("index")?;
                if skipped.last_key_value().is_some_and(|(&p, _)| index <= p) || index >= next {
                    return Err(bad());
                }
                skipped.insert(index, r.a32("message_key")?);
                r.leave();
            }
            r.leave();
            recv.chains.push(Chain {
                ratchet_key,
                chain_key,
                next,
                skipped,
            });
        }
        r.end()?;
        if recv
            .chains
            .last()
            .is_some_and(|c| c.ratchet_key != remote_ratchet)
        {
            return Err(bad());
        }
        let keys: Vec<&[u8; 32]> = recv.chains.iter().map(|c| &c.ratchet_key).collect();
        if keys.iter().enumerate().any(|(i, k)| keys[..i].contains(k)) {
            return Err(bad());
        }
        let sess = Self {
            generation,
            initiator,
            pq,
            local,
            remote,
            kb,
            base,
            pending,
            root,
            remote_ratchet,
            sending,
            pn,
            recv,
        };
        Ok((sess, r.into_layout()))
    }

    /// The sending chain moves `count` steps without sending, as if that
    /// many messages were sent and lost (a test edit of the saved state;
    /// the generation does not move).
    pub fn advance(&mut self, count: u32) {
        let s = self.sending.as_mut().expect("model: no sending chain");
        for _ in 0..count {
            s.ck = kdf_ck(&s.ck).1;
        }
        s.next += count;
    }

    /// Skipped keys held.
    pub fn skipped_count(&self) -> usize {
        self.recv.skipped_count()
    }

    /// §10.2 encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![VERSION, 0x20];
        out.extend(self.generation.to_be_bytes());
        out.push(u8::from(!self.initiator));
        out.push(u8::from(self.pq));
        out.extend(self.local);
        out.extend(self.remote);
        out.extend(self.kb);
        out.extend(self.base);
        out.push(u8::from(self.pending.is_some()));
        if let Some(p) = &self.pending {
            out.extend(p.spk_id.to_be_bytes());
            out.push(u8::from(p.opk_id.is_some()));
            if let Some(id) = p.opk_id {
                out.extend(id.to_be_bytes());
            }
            out.push(u8::from(p.kem.is_some()));
            if let Some((id, ct)) = &p.kem {
                out.extend(id.to_be_bytes());
                out.extend(ct);
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
        out.push(u8::try_from(self.recv.chains.len()).expect("bounded"));
        for c in &self.recv.chains {
            out.extend(c.ratchet_key);
            out.push(u8::from(c.chain_key.is_some()));
            if let Some(ck) = c.chain_key {
                out.extend(ck);
            }
            out.extend(c.next.to_be_bytes());
            out.extend(
                u16::try_from(c.skipped.len())
                    .expect("bounded")
                    .to_be_bytes(),
            );
            for (i, k) in &c.skipped {
                out.extend(i.to_be_bytes());
                out.extend(k);
            }
        }
        out
    }

    /// Every field of the saved state, for the vectors.
    pub fn decoded_json(&self) -> Value {
        json!({
            "generation": self.generation,
            "role": if self.initiator { "initiator" } else { "responder" },
            "key_agreement": if self.pq { "PQXDH" } else { "X3DH" },
            "local_identity": hex(&self.local),
            "remote_identity": hex(&self.remote),
            "kem_binding": hex(&self.kb),
            "base_key": hex(&self.base),
            "pending_prekey": self.pending.as_ref().map(|p| json!({
                "signed_prekey_id": p.spk_id, "one_time_prekey_id": p.opk_id,
                "kem_prekey_id": p.kem.as_ref().map(|k| k.0),
                "kem_ciphertext": p.kem.as_ref().map(|k| hex(&k.1)),
            })),
            "associated_data": hex(&self.ad()),
            "root_key": hex(&self.root),
            "remote_ratchet_public": hex(&self.remote_ratchet),
            "sending_chain": self.sending.as_ref().map(|s| json!({
                "ratchet_private": hex(&s.private), "ratchet_public": hex(&s.public),
                "chain_key": hex(&s.ck), "next": s.next,
            })),
            "previous_sending_length": self.pn,
            "receiving_chains": self.recv.chains.iter().map(|c| json!({
                "ratchet_public": hex(&c.ratchet_key), "chain_key": c.chain_key.map(|k| hex(&k)), "next": c.next,
                "skipped": c.skipped.iter().map(|(i, k)| json!({ "message_number": i, "message_key": hex(k) })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })
    }
}
