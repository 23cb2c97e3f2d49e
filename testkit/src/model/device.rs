//! SPEC.md §6 (the device and its operations) and §10.3 (its saved state).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::codec::{Layout, Reader};
use super::error::{Refusal, refusal, refusal_with};
use super::keys::{
    Bundle, KIND_LAST_RESORT, KIND_ONE_TIME, Kem, Spk, fingerprint, identity_key_bytes,
    one_time_prekey_bytes,
};
use super::primitives::{
    MAX_BASE_KEYS, MAX_KEM_OTKS, MAX_LAST_RESORT, MAX_OPKS, MAX_SPKS, MAX_STATE, VERSION,
    ed25519_public, id_x, x_pub,
};
use super::rand::Source;
use crate::hex::hex;

/// A device (§6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dev {
    /// §10.1 generation.
    pub generation: u64,
    /// The Ed25519 identity seed.
    pub seed: [u8; 32],
    /// IK, from the seed.
    pub ik: [u8; 32],
    /// Signed prekeys, oldest first; the last is current.
    pub spks: Vec<Spk>,
    /// The next signed prekey id.
    pub next_spk: u32,
    /// Unused one-time prekeys: id -> secret.
    pub opks: BTreeMap<u32, [u8; 32]>,
    /// The next one-time prekey id.
    pub next_opk: u32,
    /// Last-resort KEM prekeys, oldest first; the last is current.
    pub last_resort: Vec<Kem>,
    /// Unused one-time KEM prekeys by id.
    pub kem_otks: BTreeMap<u32, Kem>,
    /// The next KEM prekey id (both kinds).
    pub next_kem: u32,
}

/// `TooManyPreKeys`.
fn too_many() -> Refusal {
    refusal("TooManyPreKeys")
}

impl Dev {
    /// §6 new device: the identity seed (32), signed prekey 1 (32), then
    /// last-resort KEM prekey 1 (64).
    pub fn new(rng: &mut dyn Source, now: u64) -> Self {
        let seed = rng.draw::<32>();
        let spk = rng.draw::<32>();
        let kem = rng.draw::<64>();
        Self {
            generation: 0,
            seed,
            ik: ed25519_public(&seed),
            spks: vec![Spk::new(&seed, 1, now, spk)],
            next_spk: 2,
            opks: BTreeMap::new(),
            next_opk: 1,
            last_resort: vec![Kem::new(&seed, 1, KIND_LAST_RESORT, now, kem, None)],
            kem_otks: BTreeMap::new(),
            next_kem: 2,
        }
    }

    fn bump(&mut self) {
        self.generation = self.generation.saturating_add(1);
    }

    /// §6 rotate signed prekey: `TooManyPreKeys` (drawing nothing) if the
    /// next id is 2^32 - 1; keeps the newest `MAX_SIGNED_PREKEYS`.
    ///
    /// # Errors
    ///
    /// `TooManyPreKeys`.
    pub fn rotate_spk(&mut self, rng: &mut dyn Source, now: u64) -> Result<(), Refusal> {
        if self.next_spk == u32::MAX {
            return Err(too_many());
        }
        let private = rng.draw::<32>();
        self.spks
            .push(Spk::new(&self.seed, self.next_spk, now, private));
        self.next_spk += 1;
        while self.spks.len() > MAX_SPKS {
            self.spks.remove(0);
        }
        self.bump();
        Ok(())
    }

    /// §6 remove signed prekey: only an old one.
    ///
    /// # Errors
    ///
    /// `UnknownSignedPreKey { id }` for the current or an unknown one.
    pub fn remove_spk(&mut self, id: u32) -> Result<(), Refusal> {
        let old = self.spks.len() - 1;
        let i = self.spks[..old]
            .iter()
            .position(|s| s.id == id)
            .ok_or_else(|| refusal_with("UnknownSignedPreKey", json!({ "id": id })))?;
        self.spks.remove(i);
        self.bump();
        Ok(())
    }

    /// §6 generate one-time prekeys: 32 bytes each, ids in sequence.
    ///
    /// # Errors
    ///
    /// `TooManyPreKeys`.
    pub fn gen_opks(&mut self, rng: &mut dyn Source, count: u32) -> Result<Vec<u32>, Refusal> {
        if self.opks.len() + count as usize > MAX_OPKS
            || u64::from(self.next_opk) + u64::from(count) > u64::from(u32::MAX)
        {
            return Err(too_many());
        }
        if count == 0 {
            return Ok(Vec::new());
        }
        let secrets: Vec<[u8; 32]> = (0..count).map(|_| rng.draw::<32>()).collect();
        let mut ids = Vec::new();
        for private in secrets {
            self.opks.insert(self.next_opk, private);
            ids.push(self.next_opk);
            self.next_opk += 1;
        }
        self.bump();
        Ok(ids)
    }

    /// §6 rotate last-resort KEM prekey.
    ///
    /// # Errors
    ///
    /// `TooManyPreKeys`.
    pub fn rotate_kem(&mut self, rng: &mut dyn Source, now: u64) -> Result<(), Refusal> {
        if self.next_kem == u32::MAX {
            return Err(too_many());
        }
        let seed = rng.draw::<64>();
        let kem = Kem::new(&self.seed, self.next_kem, KIND_LAST_RESORT, now, seed, None);
        self.last_resort.push(kem);
        self.next_kem += 1;
        while self.last_resort.len() > MAX_LAST_RESORT {
            self.last_resort.remove(0);
        }
        self.bump();
        Ok(())
    }

    /// §6 remove last-resort KEM prekey: only an old one.
    ///
    /// # Errors
    ///
    /// `UnknownKemPreKey { id }` for the current or an unknown one.
    pub fn remove_kem(&mut self, id: u32) -> Result<(), Refusal> {
        let old = self.last_resort.len() - 1;
        let i = self.last_resort[..old]
            .iter()
            .position(|k| k.id == id)
            .ok_or_else(|| refusal_with("UnknownKemPreKey", json!({ "id": id })))?;
        self.last_resort.remove(i);
        self.bump();
        Ok(())
    }

    /// §6 generate one-time KEM prekeys: 64 bytes each, KEM ids in sequence.
    ///
    /// # Errors
    ///
    /// `TooManyPreKeys`.
    pub fn gen_kems(&mut self, rng: &mut dyn Source, count: u32) -> Result<Vec<u32>, Refusal> {
        if self.kem_otks.len() + count as usize > MAX_KEM_OTKS
            || u64::from(self.next_kem) + u64::from(count) > u64::from(u32::MAX)
        {
            return Err(too_many());
        }
        if count == 0 {
            return Ok(Vec::new());
        }
        let seeds: Vec<[u8; 64]> = (0..count).map(|_| rng.draw::<64>()).collect();
        let mut ids = Vec::new();
        for seed in seeds {
            let id = self.next_kem;
            let kem = Kem::new(&self.seed, id, KIND_ONE_TIME, 0, seed, None);
            self.kem_otks.insert(id, kem);
            ids.push(id);
            self.next_kem += 1;
        }
        self.bump();
        Ok(ids)
    }

    /// §6 reset prekeys after a restore: a new signed prekey (32 bytes) and
    /// last-resort KEM prekey (64 bytes) replace every prekey; the
    /// generation becomes `max(generation, last_generation) + 1`.
    ///
    /// # Errors
    ///
    /// `TooManyPreKeys`.
    pub fn reset(
        &mut self,
        rng: &mut dyn Source,
        now: u64,
        last_generation: u64,
    ) -> Result<(), Refusal> {
        if self.next_spk == u32::MAX || self.next_kem == u32::MAX {
            return Err(too_many());
        }
        let spk = rng.draw::<32>();
        let kem = rng.draw::<64>();
        self.spks = vec![Spk::new(&self.seed, self.next_spk, now, spk)];
        self.next_spk += 1;
        self.last_resort = vec![Kem::new(
            &self.seed,
            self.next_kem,
            KIND_LAST_RESORT,
            now,
            kem,
            None,
        )];
        self.next_kem += 1;
        self.opks.clear();
        self.kem_otks.clear();
        self.generation = self.generation.max(last_generation).saturating_add(1);
        Ok(())
    }

    /// The current signed prekey.
    pub fn spk(&self) -> &Spk {
        self.spks.last().expect("a device has a signed prekey")
    }

    /// The current last-resort KEM prekey.
    pub fn last_resort_kem(&self) -> &Kem {
        self.last_resort.last().expect("a device has a KEM prekey")
    }

    /// A held KEM prekey of either kind (§7.3 step 5).
    pub fn kem(&self, id: u32) -> Option<&Kem> {
        self.kem_otks
            .get(&id)
            .or_else(|| self.last_resort.iter().find(|k| k.id == id))
    }

    /// The X25519 identity secret `IdX(seed)` (§2.1).
    pub fn id_x(&self) -> [u8; 32] {
        id_x(&self.seed)
    }

    /// `IdentityKey` encoding.
    pub fn ik_encoded(&self) -> Vec<u8> {
        identity_key_bytes(&self.ik)
    }

    /// §5.2.
    pub fn fingerprint(&self) -> [u8; 32] {
        fingerprint(&self.ik)
    }

    /// The public one-time prekey `id`, encoded (§5.4).
    pub fn opk_encoded(&self, id: u32) -> Vec<u8> {
        one_time_prekey_bytes(id, &x_pub(&self.opks[&id]))
    }

    /// The bundle the vectors use (SPEC.md has no operation that builds
    /// one): IK, the current signed prekey, one-time prekey `opk` (held)
    /// and KEM prekey `kem` (a held one-time or last-resort one).
    pub fn bundle(&self, opk: Option<u32>, kem: Option<u32>) -> Bundle {
        let spk = self.spk();
        Bundle {
            identity: self.ik,
            spk_id: spk.id,
            spk: spk.public,
            spk_signature: spk.signature,
            opk: opk.map(|id| (id, x_pub(&self.opks[&id]))),
            kem: kem.map(|id| self.kem(id).expect("model: a held KEM prekey").public()),
        }
    }

    /// §10.3 encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![VERSION, 0x21];
        out.extend(self.generation.to_be_bytes());
        out.extend(self.seed);
        out.extend(self.next_spk.to_be_bytes());
        out.extend(self.next_opk.to_be_bytes());
        out.extend(self.next_kem.to_be_bytes());
        out.push(u8::try_from(self.spks.len()).expect("bounded"));
        for s in &self.spks {
            out.extend(s.id.to_be_bytes());
            out.extend(s.created.to_be_bytes());
            out.extend(s.private);
            out.extend(s.signature);
            out.extend(
                u16::try_from(s.base_keys.len())
                    .expect("bounded")
                    .to_be_bytes(),
            );
            for k in &s.base_keys {
                out.extend(k);
            }
        }
        out.extend(
            u16::try_from(self.opks.len())
                .expect("bounded")
                .to_be_bytes(),
        );
        for (id, secret) in &self.opks {
            out.extend(id.to_be_bytes());
            out.extend(secret);
        }
        out.push(u8::try_from(self.last_resort.len()).expect("bounded"));
        for k in &self.last_resort {
            out.extend(k.id.to_be_bytes());
            out.extend(k.created.to_be_bytes());
            out.extend(k.seed);
            out.extend(k.signature);
        }
        out.extend(
            u16::try_from(self.kem_otks.len())
                .expect("bounded")
                .to_be_bytes(),
        );
        for k in self.kem_otks.values() {
            out.extend(k.id.to_be_bytes());
            out.extend(k.seed);
            out.extend(k.signature);
        }
        out
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
        let bad = || refusal("InvalidEncoding");
        if b.len() > MAX_STATE {
            return Err(refusal("TooLarge"));
        }
        let mut r = Reader::header(b, 0x21)?;
        let generation = r.u64("generation")?;
        let seed = r.a32("identity_seed")?;
        let next_spk = r.u32("next_spk_id")?;
        let next_opk = r.u32("next_opk_id")?;
        let next_kem = r.u32("next_kem_id")?;
        let spk_count = usize::from(r.u8("spk_count")?);
        if spk_count == 0 || spk_count > MAX_SPKS {
            return Err(bad());
        }
        let mut spks: Vec<Spk> = Vec::new();
        for i in 0..spk_count {
            r.enter(format!("spks[{i}]"));
            let id = r.u32("id")?;
            if spks.last().is_some_and(|p| id <= p.id) || id >= next_spk {
                return Err(bad());
            }
            let created = r.u64("created")?;
            let private = r.a32("secret")?;
            let signature = r.take("signature", 64)?.try_into().expect("64");
            let count = usize::from(r.u16("base_key_count")?);
            if count > MAX_BASE_KEYS {
                return Err(bad());
            }
            let mut base_keys = Vec::with_capacity(count);
            for j in 0..count {
                base_keys.push(r.a32(&format!("base_keys[{j}]"))?);
            }
            r.leave();
            spks.push(Spk {
                id,
                created,
                private,
                public: x_pub(&private),
                signature,
                base_keys,
            });
        }
        let opk_count = usize::from(r.u16("opk_count")?);
        if opk_count > MAX_OPKS {
            return Err(bad());
        }
        let mut opks = BTreeMap::new();
        for i in 0..opk_count {
            r.enter(format!("opks[{i}]"));
            let id = r.u32("id")?;
            if opks.last_key_value().is_some_and(|(&p, _)| id <= p) || id >= next_opk {
                return Err(bad());
            }
            opks.insert(id, r.a32("secret")?);
            r.leave();
        }
        let lr_count = usize::from(r.u8("last_resort_count")?);
        if lr_count == 0 || lr_count > MAX_LAST_RESORT {
            return Err(bad());
        }
        let mut last_resort: Vec<Kem> = Vec::new();
        for i in 0..lr_count {
            r.enter(format!("last_resort[{i}]"));
            let id = r.u32("id")?;
            if last_resort.last().is_some_and(|p| id <= p.id) || id >= next_kem {
                return Err(bad());
            }
            let created = r.u64("created")?;
            let kseed = r.take("seed", 64)?.try_into().expect("64");
            let signature = r.take("signature", 64)?.try_into().expect("64");
            r.leave();
            last_resort.push(Kem::new(
                &seed,
                id,
                KIND_LAST_RESORT,
                created,
                kseed,
                Some(signature),
            ));
        }
        let otk_count = usize::from(r.u16("kem_otk_count")?);
        if otk_count > MAX_KEM_OTKS {
            return Err(bad());
        }
        let mut kem_otks: BTreeMap<u32, Kem> = BTreeMap::new();
        for i in 0..otk_count {
            r.enter(format!("kem_otks[{i}]"));
            let id = r.u32("id")?;
            if kem_otks.last_key_value().is_some_and(|(&p, _)| id <= p) || id >= next_kem {
                return Err(bad());
            }
            let kseed = r.take("seed", 64)?.try_into().expect("64");
            let signature = r.take("signature", 64)?.try_into().expect("64");
            r.leave();
            kem_otks.insert(
                id,
                Kem::new(&seed, id, KIND_ONE_TIME, 0, kseed, Some(signature)),
            );
        }
        r.end()?;
        if last_resort.iter().any(|k| kem_otks.contains_key(&k.id)) {
            return Err(bad());
        }
        let dev = Self {
            generation,
            seed,
            ik: ed25519_public(&seed),
            spks,
            next_spk,
            opks,
            next_opk,
            last_resort,
            kem_otks,
            next_kem,
        };
        Ok((dev, r.into_layout()))
    }

    /// Every field of the saved state, for the vectors.
    pub fn decoded_json(&self) -> Value {
        json!({
            "generation": self.generation,
            "identity_seed": hex(&self.seed),
            "identity_key": hex(&self.ik),
            "identity_x25519_secret": hex(&self.id_x()),
            "next_signed_prekey_id": self.next_spk,
            "next_one_time_prekey_id": self.next_opk,
            "next_kem_prekey_id": self.next_kem,
            "signed_prekeys": self.spks.iter().map(|s| json!({
                "id": s.id, "created": s.created, "secret": hex(&s.private),
                "public": hex(&s.public), "signature": hex(&s.signature),
                "base_keys": s.base_keys.iter().map(|k| hex(k)).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "one_time_prekeys": self.opks.iter().map(|(id, p)| json!({
                "id": id, "secret": hex(p), "public": hex(&x_pub(p)),
            })).collect::<Vec<_>>(),
            "last_resort_kem_prekeys": self.last_resort.iter().map(|k| json!({
                "id": k.id, "created": k.created, "seed": hex(&k.seed),
                "ek_sha256": hex(&super::primitives::sha256(&k.ek)),
                "signature": hex(&k.signature),
            })).collect::<Vec<_>>(),
            "one_time_kem_prekeys": self.kem_otks.values().map(|k| json!({
                "id": k.id, "seed": hex(&k.seed),
                "ek_sha256": hex(&super::primitives::sha256(&k.ek)),
                "signature": hex(&k.signature),
            })).collect::<Vec<_>>(),
        })
    }
}
