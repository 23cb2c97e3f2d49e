//! A second implementation of group messaging, written from SPEC.md §15 with
//! the primitive crates only (no sotto code). Errors are the SPEC's error
//! names as the vectors spell them ({"name", "fields"}).

use std::collections::BTreeMap;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::model::{Draws, a32, key_nonce, open, seal};
use crate::vectors::hex;

pub(crate) const L_STEP: &str = "sotto v1 group step";
pub(crate) const L_DERIVE: &str = "sotto v1 group derive";
pub(crate) const L_KEY: &str = "sotto v1 group key";
pub(crate) const L_MESSAGE_KEYS: &str = "sotto v1 group message keys";
pub(crate) const L_SIGNATURE: &str = "sotto v1 group signature";

pub(crate) const SKIP_WINDOW: u32 = 32;
pub(crate) const MAX_SKIPPED: usize = 256;
pub(crate) const MAX_JUMP: u32 = 1 << 24;
pub(crate) const MAX_PLAINTEXT: usize = 262_144;
pub(crate) const MAX_MESSAGE: usize = 138 + MAX_PLAINTEXT;
pub(crate) const MAX_STATE: usize = 1 << 20;
pub(crate) const MAX_CHAINS_PER_SENDER: usize = 4;
pub(crate) const MAX_RECEIVERS: usize = 1024;
const HEADER: usize = 58;

/// R_0 .. R_7.
pub(crate) type Levels = [[u8; 32]; 8];
pub(crate) type Err = Value;

pub(crate) fn err(name: &str) -> Err {
    json!({ "name": name, "fields": {} })
}

fn sha(label: &str, r: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update(label)
        .chain_update(r)
        .finalize()
        .into()
}

pub(crate) fn step(r: &[u8; 32]) -> [u8; 32] {
    sha(L_STEP, r)
}

pub(crate) fn derive(r: &[u8; 32]) -> [u8; 32] {
    sha(L_DERIVE, r)
}

pub(crate) fn message_key(r: &Levels) -> [u8; 32] {
    sha(L_KEY, &r[7])
}

/// d_k(i), k = 0 the most significant hex digit.
pub(crate) fn digit(i: u32, k: usize) -> u32 {
    (i >> (4 * (7 - k))) & 0xF
}

fn shift(k: usize) -> u32 {
    4 * (7 - k as u32)
}

/// Increment i -> i + 1.
pub(crate) fn increment(i: u32, r: &mut Levels) -> u32 {
    assert!(i < u32::MAX, "model: increment at the last index");
    let k = (0..8).rev().find(|&k| digit(i, k) != 15).unwrap();
    r[k] = step(&r[k]);
    for m in k + 1..8 {
        r[m] = derive(&r[m - 1]);
    }
    i + 1
}

/// Jump i -> j (j >= i), level by level.
pub(crate) fn jump(mut i: u32, r: &mut Levels, j: u32) {
    assert!(j >= i, "model: jump backwards");
    for k in 0..8 {
        let s = shift(k);
        if i >> s == j >> s {
            continue;
        }
        let n = digit(j, k).checked_sub(digit(i, k)).unwrap();
        assert!(n > 0);
        for _ in 0..n {
            r[k] = step(&r[k]);
        }
        for m in k + 1..8 {
            r[m] = derive(&r[m - 1]);
        }
        i = (j >> s) << s;
    }
    assert_eq!(i, j);
}

/// R_k(i) = Step^{d_k(i)}(B_k(i)).
pub(crate) fn closed_form(initial: &Levels, i: u32) -> Levels {
    let mut out = [[0u8; 32]; 8];
    for k in 0..8 {
        let above_zero = (0..k).all(|a| digit(i, a) == 0);
        let mut r = if above_zero {
            initial[k]
        } else {
            derive(&out[k - 1])
        };
        for _ in 0..digit(i, k) {
            r = step(&r);
        }
        out[k] = r;
    }
    out
}

pub(crate) fn levels_json(r: &Levels) -> Value {
    r.iter().map(|l| Value::from(hex(l))).collect()
}

fn split_levels(bytes: &[u8]) -> Levels {
    let mut r = [[0u8; 32]; 8];
    for (k, l) in r.iter_mut().enumerate() {
        *l = a32(&bytes[32 * k..32 * k + 32]);
    }
    r
}

fn put_levels(out: &mut Vec<u8>, r: &Levels) {
    for l in r {
        out.extend(l);
    }
}

/// SPEC §2: decodes, canonical, not small order.
pub(crate) fn ed25519_public_ok(b: &[u8; 32]) -> bool {
    VerifyingKey::from_bytes(b)
        .is_ok_and(|k| !k.is_weak() && k.to_edwards().compress().to_bytes() == *b)
}

/// SPEC §2: top bit clear and below 2^255 - 19.
pub(crate) fn x25519_public_ok(b: &[u8; 32]) -> bool {
    let at_least_p = b[31] == 0x7f && b[1..31].iter().all(|&x| x == 0xff) && b[0] >= 0xed;
    b[31] & 0x80 == 0 && !at_least_p
}

/// A reader applying SPEC §4's rules in field order.
pub(crate) struct Rd<'a>(&'a [u8]);

impl<'a> Rd<'a> {
    pub(crate) fn header(bytes: &'a [u8], ty: u8) -> Result<Self, Err> {
        let mut r = Self(bytes);
        let v = r.take(1)?[0];
        if v != 1 {
            return Err(json!({ "name": "UnsupportedVersion", "fields": { "found": v } }));
        }
        let t = r.take(1)?[0];
        if t != ty {
            return Err(json!({ "name": "WrongType", "fields": { "expected": ty, "found": t } }));
        }
        Ok(r)
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Err> {
        if self.0.len() < n {
            return Err(err("Truncated"));
        }
        let (h, t) = self.0.split_at(n);
        self.0 = t;
        Ok(h)
    }

    pub(crate) fn a32(&mut self) -> Result<[u8; 32], Err> {
        Ok(a32(self.take(32)?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Err> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }

    pub(crate) fn ed(&mut self) -> Result<[u8; 32], Err> {
        let k = self.a32()?;
        if ed25519_public_ok(&k) {
            Ok(k)
        } else {
            Err(err("InvalidPublicKey"))
        }
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Err> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, Err> {
        Ok(u16::from_be_bytes(self.take(2)?.try_into().unwrap()))
    }

    /// A presence flag: 0 or 1, else `InvalidEncoding`.
    pub(crate) fn flag(&mut self) -> Result<bool, Err> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(err("InvalidEncoding")),
        }
    }

    /// A canonical X25519 public key (§2).
    pub(crate) fn x(&mut self) -> Result<[u8; 32], Err> {
        let k = self.a32()?;
        if x25519_public_ok(&k) {
            Ok(k)
        } else {
            Err(err("InvalidPublicKey"))
        }
    }

    /// A 64-byte identity: the Ed25519 key, then the X25519 key (§4, §5.1).
    pub(crate) fn ik(&mut self) -> Result<[u8; 64], Err> {
        let ed = self.ed()?;
        let x = self.x()?;
        let mut id = [0u8; 64];
        id[..32].copy_from_slice(&ed);
        id[32..].copy_from_slice(&x);
        Ok(id)
    }

    pub(crate) fn end(&self) -> Result<(), Err> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(err("TrailingBytes"))
        }
    }
}

/// A parsed GroupMessage header (§15.5).
pub(crate) struct MsgHeader {
    pub(crate) group: [u8; 32],
    pub(crate) chain_id: u32,
    pub(crate) index: u32,
}

pub(crate) fn parse_message(b: &[u8]) -> Result<MsgHeader, Err> {
    if b.len() > MAX_MESSAGE {
        return Err(err("TooLarge"));
    }
    let mut r = Rd::header(b, 0x03)?;
    let group = r.a32()?;
    let chain_id = r.u32()?;
    let index = r.u32()?;
    r.take(16)?;
    r.take(16 + 64)?;
    Ok(MsgHeader {
        group,
        chain_id,
        index,
    })
}

/// A parsed SenderKeyDistribution (§15.6).
pub(crate) struct Dist {
    pub(crate) group: [u8; 32],
    pub(crate) chain_id: u32,
    pub(crate) index: u32,
    pub(crate) levels: Levels,
    pub(crate) signing: [u8; 32],
}

pub(crate) fn parse_distribution(b: &[u8]) -> Result<Dist, Err> {
    let mut r = Rd::header(b, 0x04)?;
    let group = r.a32()?;
    let chain_id = r.u32()?;
    let index = r.u32()?;
    let levels = split_levels(r.take(256)?);
    let signing = r.ed()?;
    r.end()?;
    Ok(Dist {
        group,
        chain_id,
        index,
        levels,
        signing,
    })
}

/// The sending side of a chain.
#[derive(Clone)]
pub(crate) struct GSender {
    pub(crate) group: [u8; 32],
    pub(crate) chain_id: u32,
    pub(crate) index: u32,
    pub(crate) levels: Levels,
    pub(crate) seed: [u8; 32],
}

impl GSender {
    /// Draws 4 (chain id, big-endian), 256 (R_0..R_7), 32 (Ed25519 seed).
    pub(crate) fn new(rng: &mut Draws, group: [u8; 32]) -> Self {
        let chain_id = u32::from_be_bytes(rng.draw::<4>());
        let levels = split_levels(&rng.draw::<256>());
        let seed = rng.draw::<32>();
        Self {
            group,
            chain_id,
            index: 0,
            levels,
            seed,
        }
    }

    pub(crate) fn public(&self) -> [u8; 32] {
        SigningKey::from_bytes(&self.seed)
            .verifying_key()
            .to_bytes()
    }

    /// GroupSender state (type 0x22).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = vec![1, 0x22];
        out.extend(self.group);
        out.extend(self.chain_id.to_be_bytes());
        out.extend(self.index.to_be_bytes());
        put_levels(&mut out, &self.levels);
        out.extend(self.seed);
        out
    }

    pub(crate) fn parse(b: &[u8]) -> Result<Self, Err> {
        if b.len() > MAX_STATE {
            return Err(err("TooLarge"));
        }
        let mut r = Rd::header(b, 0x22)?;
        let group = r.a32()?;
        let chain_id = r.u32()?;
        let index = r.u32()?;
        let levels = split_levels(r.take(256)?);
        let seed = r.a32()?;
        r.end()?;
        Ok(Self {
            group,
            chain_id,
            index,
            levels,
            seed,
        })
    }

    /// SenderKeyDistribution (type 0x04) at the current index.
    pub(crate) fn distribution(&self) -> Vec<u8> {
        let mut out = vec![1, 0x04];
        out.extend(self.group);
        out.extend(self.chain_id.to_be_bytes());
        out.extend(self.index.to_be_bytes());
        put_levels(&mut out, &self.levels);
        out.extend(self.public());
        out
    }

    /// Encrypts at the current index (draws a 16-byte salt) and increments.
    pub(crate) fn encrypt(&mut self, rng: &mut Draws, pt: &[u8]) -> Result<(Vec<u8>, Value), Err> {
        if pt.len() > MAX_PLAINTEXT {
            return Err(err("PlaintextTooLarge"));
        }
        if self.index == u32::MAX {
            return Err(err("ChainExhausted"));
        }
        let salt = rng.draw::<16>();
        let (msg, trace) = self.encrypt_with(&salt, pt);
        self.index = increment(self.index, &mut self.levels);
        Ok((msg, trace))
    }

    /// The message at the current index with a given salt (no state change).
    pub(crate) fn encrypt_with(&self, salt: &[u8; 16], pt: &[u8]) -> (Vec<u8>, Value) {
        let k = message_key(&self.levels);
        let (key, nonce) = key_nonce(salt, &k, L_MESSAGE_KEYS);
        let mut header = vec![1, 0x03];
        header.extend(self.group);
        header.extend(self.chain_id.to_be_bytes());
        header.extend(self.index.to_be_bytes());
        header.extend(salt);
        let ct = seal(&key, &nonce, &header, pt);
        let mut msg = header.clone();
        msg.extend(&ct);
        let signed = signed_data(&msg);
        let sig = SigningKey::from_bytes(&self.seed).sign(&signed).to_bytes();
        msg.extend(sig);
        let trace = json!({
            "index": self.index, "message_key": hex(&k), "salt": hex(salt), "aes_key": hex(&key), "nonce": hex(&nonce),
            "header": hex(&header), "ciphertext": hex(&ct), "signed_data": hex(&signed),
            "signature": hex(&sig), "message": hex(&msg),
        });
        (msg, trace)
    }

    /// Re-signs bytes (everything before a signature) with this chain's key.
    pub(crate) fn sign(&self, unsigned: &[u8]) -> Vec<u8> {
        let mut msg = unsigned.to_vec();
        msg.extend(
            SigningKey::from_bytes(&self.seed)
                .sign(&signed_data(unsigned))
                .to_bytes(),
        );
        msg
    }
}

pub(crate) fn signed_data(unsigned: &[u8]) -> Vec<u8> {
    let mut d = L_SIGNATURE.as_bytes().to_vec();
    d.extend(unsigned);
    d
}

/// The receiving side of a chain (§15.8).
#[derive(Clone)]
pub(crate) struct GReceiver {
    pub(crate) group: [u8; 32],
    pub(crate) chain_id: u32,
    pub(crate) signing: [u8; 32],
    /// Ed25519 || X25519 of the sender, if authenticated.
    pub(crate) identity: Option<[u8; 64]>,
    pub(crate) next: u32,
    pub(crate) levels: Levels,
    pub(crate) cache: BTreeMap<u32, [u8; 32]>,
}

impl GReceiver {
    pub(crate) fn install(dist: &[u8], identity: Option<[u8; 64]>) -> Result<Self, Err> {
        let d = parse_distribution(dist)?;
        Ok(Self {
            group: d.group,
            chain_id: d.chain_id,
            signing: d.signing,
            identity,
            next: d.index,
            levels: d.levels,
            cache: BTreeMap::new(),
        })
    }

    /// GroupReceiver state (type 0x23).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = vec![1, 0x23];
        out.extend(self.group);
        out.extend(self.chain_id.to_be_bytes());
        out.extend(self.signing);
        out.push(u8::from(self.identity.is_some()));
        if let Some(id) = self.identity {
            out.extend(id);
        }
        out.extend(self.next.to_be_bytes());
        put_levels(&mut out, &self.levels);
        out.extend((self.cache.len() as u16).to_be_bytes());
        for (i, k) in &self.cache {
            out.extend(i.to_be_bytes());
            out.extend(k);
        }
        out
    }

    pub(crate) fn parse(b: &[u8]) -> Result<Self, Err> {
        if b.len() > MAX_STATE {
            return Err(err("TooLarge"));
        }
        let mut r = Rd::header(b, 0x23)?;
        let group = r.a32()?;
        let chain_id = r.u32()?;
        let signing = r.ed()?;
        let identity = match r.take(1)?[0] {
            0 => None,
            1 => {
                let ed = r.ed()?;
                let x = r.a32()?;
                if !x25519_public_ok(&x) {
                    return Err(err("InvalidPublicKey"));
                }
                let mut id = [0u8; 64];
                id[..32].copy_from_slice(&ed);
                id[32..].copy_from_slice(&x);
                Some(id)
            }
            _ => return Err(err("InvalidEncoding")),
        };
        let next = r.u32()?;
        let levels = split_levels(r.take(256)?);
        let count = usize::from(u16::from_be_bytes(r.take(2)?.try_into().unwrap()));
        if count > MAX_SKIPPED {
            return Err(err("InvalidEncoding"));
        }
        let mut cache = BTreeMap::new();
        for _ in 0..count {
            let i = r.u32()?;
            if cache.last_key_value().is_some_and(|(&p, _)| i <= p) || i >= next {
                return Err(err("InvalidEncoding"));
            }
            cache.insert(i, r.a32()?);
        }
        r.end()?;
        Ok(Self {
            group,
            chain_id,
            signing,
            identity,
            next,
            levels,
            cache,
        })
    }

    /// §15.8, all or nothing. Returns the plaintext and a trace.
    pub(crate) fn decrypt(&mut self, msg: &[u8]) -> Result<(Vec<u8>, Value), Err> {
        let h = parse_message(msg)?;
        if h.group != self.group || h.chain_id != self.chain_id {
            return Err(err("UnknownGroupChain"));
        }
        let (unsigned, sig) = msg.split_at(msg.len() - 64);
        let vk = VerifyingKey::from_bytes(&self.signing).unwrap();
        let sig = Signature::from_bytes(sig.try_into().unwrap());
        vk.verify_strict(&signed_data(unsigned), &sig)
            .map_err(|_| err("InvalidSignature"))?;
        let j = h.index;
        let salt = &unsigned[42..58];
        let open_with = |k: &[u8; 32]| {
            let (key, nonce) = key_nonce(salt, k, L_MESSAGE_KEYS);
            open(&key, &nonce, &unsigned[..HEADER], &unsigned[HEADER..])
                .ok_or_else(|| err("AuthenticationFailed"))
        };
        if let Some(k) = self.cache.get(&j).copied() {
            let pt = open_with(&k)?;
            self.cache.remove(&j);
            let trace = json!({
                "key_source": "cache", "message_key": hex(&k), "next_before": self.next,
                "skip_from": null, "skipped_cached": [], "evicted": [], "next_after": self.next,
            });
            return Ok((pt, trace));
        }
        if j < self.next {
            return Err(err("DuplicateMessage"));
        }
        if j == u32::MAX || j - self.next > MAX_JUMP {
            return Err(json!({ "name": "GroupIndexOutOfRange", "fields": { "index": j } }));
        }
        let s = self.next.max(j.saturating_sub(SKIP_WINDOW));
        let mut levels = self.levels;
        jump(self.next, &mut levels, s);
        let mut i = s;
        let mut skipped = Vec::new();
        while i < j {
            skipped.push((i, message_key(&levels)));
            i = increment(i, &mut levels);
        }
        let k = message_key(&levels);
        let pt = open_with(&k)?;
        let next_before = self.next;
        self.next = increment(j, &mut levels);
        self.levels = levels;
        self.cache.extend(skipped.iter().copied());
        let mut evicted = Vec::new();
        while self.cache.len() > MAX_SKIPPED {
            evicted.push(self.cache.pop_first().unwrap().0);
        }
        let trace = json!({
            "key_source": "ratchet", "message_key": hex(&k), "next_before": next_before,
            "skip_from": s,
            "skipped_cached": skipped.iter().map(|(_, k)| hex(k)).collect::<Vec<_>>(),
            "evicted": evicted, "next_after": self.next,
        });
        Ok((pt, trace))
    }
}

/// The per-group store (§15.9), oldest first.
pub(crate) struct GStore {
    pub(crate) group: [u8; 32],
    pub(crate) held: Vec<GReceiver>,
}

impl GStore {
    /// Returns `"added"` with the chain ids deleted to make room, or
    /// `"advanced"` when a held chain moved forward.
    pub(crate) fn insert(&mut self, r: GReceiver) -> Result<(&'static str, Vec<u32>), Err> {
        if r.group != self.group {
            return Err(err("GroupMismatch"));
        }
        let same = |h: &GReceiver| {
            h.chain_id == r.chain_id && h.signing == r.signing && h.identity == r.identity
        };
        if self
            .held
            .iter()
            .any(|h| (h.chain_id == r.chain_id || h.signing == r.signing) && !same(h))
        {
            return Err(err("GroupChainConflict"));
        }
        if let Some(h) = self.held.iter_mut().find(|h| same(h)) {
            if r.next <= h.next {
                return Err(err("GroupChainNotNewer"));
            }
            // The ratchet moves forward; cache and place stay.
            h.next = r.next;
            h.levels = r.levels;
            return Ok(("advanced", Vec::new()));
        }
        let mut evicted = Vec::new();
        let own = self
            .held
            .iter()
            .filter(|h| h.identity == r.identity)
            .count();
        if own >= MAX_CHAINS_PER_SENDER {
            let i = self
                .held
                .iter()
                .position(|h| h.identity == r.identity)
                .unwrap();
            evicted.push(self.held.remove(i).chain_id);
        }
        if self.held.len() >= MAX_RECEIVERS {
            evicted.push(self.held.remove(0).chain_id);
        }
        self.held.push(r);
        Ok(("added", evicted))
    }

    pub(crate) fn decrypt(&mut self, msg: &[u8]) -> Result<(Vec<u8>, Value), Err> {
        let h = parse_message(msg)?;
        if h.group != self.group {
            return Err(err("UnknownGroupChain"));
        }
        self.held
            .iter_mut()
            .find(|r| r.chain_id == h.chain_id)
            .ok_or_else(|| err("UnknownGroupChain"))?
            .decrypt(msg)
    }

    pub(crate) fn remove_sender(&mut self, identity: Option<[u8; 64]>) -> usize {
        let before = self.held.len();
        self.held.retain(|r| r.identity != identity);
        before - self.held.len()
    }
}
