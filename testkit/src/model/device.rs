//! SPEC.md §6 (the device) and §10.3 (its saved state).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::codec::{Layout, Reader};
use super::error::{Refusal, refusal};
use super::keys::{Spk, bundle_bytes, fingerprint, identity_key_bytes};
use super::primitives::{
    L_FINGERPRINT, L_SPK, MAX_OPKS, MAX_RECENT, MAX_SPKS, MAX_STATE, ed25519_public, x_pub,
};
use crate::hex::{hex, hex_list};
use crate::rng::Draws;

/// A new one-time prekey: id, private key, public key.
pub type NewOpk = (u32, [u8; 32], [u8; 32]);

/// A device: identity, signed prekeys, one-time prekeys, recent base keys.
#[derive(Clone, Debug)]
pub struct Dev {
    /// Ed25519 identity seed.
    pub ed_seed: [u8; 32],
    /// Ed25519 identity public key.
    pub ed_pub: [u8; 32],
    /// X25519 identity private key.
    pub x_priv: [u8; 32],
    /// X25519 identity public key.
    pub x_pub: [u8; 32],
    /// Signed prekeys, oldest first; the last is current.
    pub spks: Vec<Spk>,
    /// The next signed prekey id.
    pub next_spk: u32,
    /// Unused one-time prekeys by id.
    pub opks: BTreeMap<u32, [u8; 32]>,
    /// The next one-time prekey id.
    pub next_opk: u32,
    /// Base keys of accepted prekey messages, oldest first.
    pub recent: Vec<[u8; 32]>,
    /// The draws `generate` made, for the vectors.
    pub draws: Vec<Vec<u8>>,
}

impl Dev {
    /// `Device::generate`: 32 bytes Ed25519 seed, 32 bytes X25519 identity,
    /// 32 bytes signed prekey (id 1).
    pub fn generate(rng: &mut Draws) -> Self {
        let ed_seed = rng.draw::<32>();
        let x_priv = rng.draw::<32>();
        let spk_priv = rng.draw::<32>();
        let draws = rng.take();
        let mut dev = Self {
            ed_seed,
            ed_pub: ed25519_public(&ed_seed),
            x_priv,
            x_pub: x_pub(&x_priv),
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
        let spk = Spk::new(&self.ed_seed, &self.x_pub, id, private, None);
        self.spks.push(spk);
        self.next_spk += 1;
    }

    /// §6 rotate: fails (drawing nothing) if the next id is 2^32 - 1; keeps
    /// the newest `MAX_SIGNED_PREKEYS`.
    ///
    /// # Errors
    ///
    /// The model's refusal: the SPEC.md error of the first check the input
    /// fails, in the order SPEC.md fixes.
    pub fn rotate(&mut self, rng: &mut Draws) -> Result<(), Refusal> {
        if self.next_spk == u32::MAX {
            return Err(refusal("TooManyPreKeys"));
        }
        let private = rng.draw::<32>();
        self.add_spk(private);
        while self.spks.len() > MAX_SPKS {
            self.spks.remove(0);
        }
        Ok(())
    }

    /// §6 generate one-time prekeys, with its limits.
    ///
    /// # Errors
    ///
    /// The model's refusal: the SPEC.md error of the first check the input
    /// fails, in the order SPEC.md fixes.
    pub fn try_gen_opks(&mut self, rng: &mut Draws, count: u32) -> Result<Vec<NewOpk>, Refusal> {
        if self.opks.len() + count as usize > MAX_OPKS
            || u64::from(self.next_opk) + u64::from(count) > u64::from(u32::MAX)
        {
            return Err(refusal("TooManyPreKeys"));
        }
        Ok(self.gen_opks(rng, count))
    }

    /// `generate_one_time_prekeys` within the limits: 32 bytes each,
    /// sequential ids.
    pub fn gen_opks(&mut self, rng: &mut Draws, count: u32) -> Vec<NewOpk> {
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

    /// §10.3 decoder.
    ///
    /// # Errors
    ///
    /// The model's refusal: the SPEC.md error of the first check the input
    /// fails, in the order SPEC.md fixes.
    pub fn decode(b: &[u8]) -> Result<Self, Refusal> {
        Self::read(b).map(|(d, _)| d)
    }

    /// §10.3 decoder, with the state's layout.
    ///
    /// # Errors
    ///
    /// The model's refusal: the SPEC.md error of the first check the input
    /// fails, in the order SPEC.md fixes.
    pub fn read(b: &[u8]) -> Result<(Self, Layout), Refusal> {
        if b.len() > MAX_STATE {
            return Err(refusal("TooLarge"));
        }
        let mut r = Reader::header(b, 0x21)?;
        let ed_seed = r.a32("identity_sig_seed")?;
        let x_priv = r.a32("identity_dh_secret")?;
        let next_spk = r.u32("next_spk_id")?;
        let next_opk = r.u32("next_opk_id")?;
        let spk_count = usize::from(r.u8("spk_count")?);
        if spk_count == 0 || spk_count > MAX_SPKS {
            return Err(refusal("InvalidEncoding"));
        }
        let mut dev = Self {
            ed_seed,
            ed_pub: ed25519_public(&ed_seed),
            x_priv,
            x_pub: x_pub(&x_priv),
            spks: Vec::new(),
            next_spk,
            opks: BTreeMap::new(),
            next_opk,
            recent: Vec::new(),
            draws: Vec::new(),
        };
        for i in 0..spk_count {
            r.enter(format!("spks[{i}]"));
            let id = r.u32("id")?;
            if dev.spks.last().is_some_and(|p| id <= p.id) || id >= next_spk {
                return Err(refusal("InvalidEncoding"));
            }
            let private = r.a32("secret")?;
            let signature: [u8; 64] = r.take("signature", 64)?.try_into().expect("64");
            r.leave();
            let spk = Spk::new(&dev.ed_seed, &dev.x_pub, id, private, Some(signature));
            dev.spks.push(spk);
        }
        let opk_count = usize::from(r.u16("opk_count")?);
        if opk_count > MAX_OPKS {
            return Err(refusal("InvalidEncoding"));
        }
        for i in 0..opk_count {
            r.enter(format!("opks[{i}]"));
            let id = r.u32("id")?;
            if dev.opks.last_key_value().is_some_and(|(&p, _)| id <= p) || id >= next_opk {
                return Err(refusal("InvalidEncoding"));
            }
            dev.opks.insert(id, r.a32("secret")?);
            r.leave();
        }
        let base_count = usize::from(r.u16("base_key_count")?);
        if base_count > MAX_RECENT {
            return Err(refusal("InvalidEncoding"));
        }
        for i in 0..base_count {
            dev.recent.push(r.a32(&format!("base_keys[{i}]"))?);
        }
        r.end()?;
        Ok((dev, r.into_layout()))
    }

    /// The current signed prekey.
    pub fn spk(&self) -> &Spk {
        self.spks.last().expect("a device has a signed prekey")
    }

    /// The embedded identity: Ed25519 public || X25519 public.
    pub fn ik(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&self.ed_pub);
        out[32..].copy_from_slice(&self.x_pub);
        out
    }

    /// `IdentityKey::to_bytes`.
    pub fn ik_encoded(&self) -> Vec<u8> {
        identity_key_bytes(&self.ik())
    }

    /// §5.2.
    pub fn fingerprint(&self) -> [u8; 32] {
        fingerprint(&self.ik())
    }

    /// The device's bundle with an optional one-time prekey.
    pub fn bundle(&self, opk: Option<(u32, [u8; 32])>) -> Vec<u8> {
        bundle_bytes(&self.ik(), self.spk(), opk)
    }

    /// `Device::to_bytes`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![1, 0x21];
        out.extend(self.ed_seed);
        out.extend(self.x_priv);
        out.extend(self.next_spk.to_be_bytes());
        out.extend(self.next_opk.to_be_bytes());
        out.push(u8::try_from(self.spks.len()).expect("bounded"));
        for spk in &self.spks {
            out.extend(spk.id.to_be_bytes());
            out.extend(spk.private);
            out.extend(spk.signature);
        }
        out.extend(
            u16::try_from(self.opks.len())
                .expect("bounded")
                .to_be_bytes(),
        );
        for (id, private) in &self.opks {
            out.extend(id.to_be_bytes());
            out.extend(private);
        }
        out.extend(
            u16::try_from(self.recent.len())
                .expect("bounded")
                .to_be_bytes(),
        );
        for k in &self.recent {
            out.extend(k);
        }
        out
    }

    /// A device object of the vectors.
    pub fn json(&self) -> Value {
        let spk = self.spk();
        json!({
            "rng_draws": hex_list(&self.draws),
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

    /// Every field of the saved state, for persistence.json.
    pub fn decoded_json(&self) -> Value {
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
