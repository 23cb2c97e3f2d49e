//! §16.8 groups through the layer and their saved form (§16.11, type
//! 0x26).

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::frame::{Content, KIND_DISTRIBUTION, KIND_DISTRIBUTION_REQUEST, frame};
use super::record::Record;
use super::recovery::{Action, Failure};
use super::send::Sent;
use super::{FANOUT_DRAW, MAX_DROPPED_CHAINS, MAX_GROUP_MEMBERS, MAX_USER_ID_LEN, check_user};
use crate::hex::hex;
use crate::model::codec::{Layout, Reader};
use crate::model::device::Dev;
use crate::model::error::{Refusal, refusal};
use crate::model::group::message::read_distribution;
use crate::model::group::sender::STATE_LEN;
use crate::model::group::{Outcome, Receiver, Sender, Store, read_message};
use crate::model::primitives::{MAX_STATE, VERSION};
use crate::model::rand::Source;

/// A group session (§16.8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// §10.1 generation.
    pub generation: u64,
    /// The local user.
    pub local_user: Vec<u8>,
    /// The members, the local user included, in byte order.
    pub members: BTreeSet<Vec<u8>>,
    /// The local device's sender.
    pub sender: Sender,
    /// The other chains.
    pub store: Store,
    /// The chains dropped from the store, oldest first.
    pub dropped: Vec<Dropped>,
}

/// A dropped chain (§16.8): its id and the owner the store held it under.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Dropped {
    /// The chain's id.
    pub chain: [u8; 32],
    /// Its owner, authenticated or claimed.
    pub owner: [u8; 32],
}

impl Dropped {
    /// The entry for a chain the store holds.
    fn of(r: &Receiver) -> Self {
        Self {
            chain: r.chain,
            owner: r.owner,
        }
    }
}

/// A fan-out over several records: per record, its user and what was sent.
pub type Fanout = Vec<(Vec<u8>, Sent)>;

/// As the vectors spell a fan-out.
pub fn fanout_json(f: &Fanout) -> Value {
    f.iter()
        .map(|(user, sent)| {
            let mut v = sent.json();
            v["user"] = hex(user).into();
            v
        })
        .collect()
}

impl Group {
    /// §16.8 `new`.
    pub fn new(rng: &mut dyn Source, group: [u8; 32], local_user: Vec<u8>, local: &Dev) -> Self {
        let sender = Sender::new(rng, group, &local.seed);
        Self {
            generation: 0,
            members: BTreeSet::from([local_user.clone()]),
            local_user,
            sender,
            store: Store::new(group),
            dropped: Vec::new(),
        }
    }

    /// Remembers a chain as dropped (§16.8). A full list first forgets,
    /// counting each owner's entries before the new one, the oldest entry
    /// whose owner has the largest count.
    fn drop_chain(&mut self, entry: Dropped) {
        if self.dropped.len() == MAX_DROPPED_CHAINS {
            let count = |o: &[u8; 32]| self.dropped.iter().filter(|d| d.owner == *o).count();
            let largest = self
                .dropped
                .iter()
                .map(|d| count(&d.owner))
                .max()
                .unwrap_or(0);
            let at = self
                .dropped
                .iter()
                .position(|d| count(&d.owner) == largest)
                .expect("a full list has an entry");
            self.dropped.remove(at);
        }
        self.dropped.push(entry);
    }

    /// Whether `chain` is dropped.
    fn is_dropped(&self, chain: &[u8; 32]) -> bool {
        self.dropped.iter().any(|d| d.chain == *chain)
    }

    /// `IdentityMismatch` unless `local` owns the local sender (§16.8).
    fn check_local(&self, local: &Dev) -> Result<(), Refusal> {
        if local.ik == self.sender.owner {
            Ok(())
        } else {
            Err(refusal("IdentityMismatch"))
        }
    }

    fn bump(&mut self) {
        self.generation = self.generation.saturating_add(1);
    }

    /// §16.8 `add_member`: whether the user is new.
    ///
    /// # Errors
    ///
    /// `TooManyGroupMembers`.
    pub fn add_member(&mut self, user: &[u8]) -> Result<bool, Refusal> {
        check_user(user)?;
        if self.members.contains(user) {
            return Ok(false);
        }
        if self.members.len() >= MAX_GROUP_MEMBERS {
            return Err(refusal("TooManyGroupMembers"));
        }
        self.members.insert(user.to_vec());
        self.bump();
        Ok(true)
    }

    /// `NotGroupMember` (a user not a member, or twice; with `exact`, the
    /// records must be exactly those members), then `IdentityMismatch` (a
    /// record of another local device).
    fn check_records(
        &self,
        records: &[&Record],
        exact: Option<&BTreeSet<Vec<u8>>>,
    ) -> Result<(), Refusal> {
        let mut seen = BTreeSet::new();
        for r in records {
            if !self.members.contains(&r.user) || !seen.insert(r.user.clone()) {
                return Err(refusal("NotGroupMember"));
            }
        }
        if exact.is_some_and(|want| *want != seen) {
            return Err(refusal("NotGroupMember"));
        }
        // With `exact` (rotate, remove_member), the local user's record is
        // the own record.
        if exact.is_some()
            && records
                .iter()
                .any(|r| r.user == self.local_user && r.local_device.is_none())
        {
            return Err(refusal("NotGroupMember"));
        }
        if records
            .iter()
            .any(|r| r.local_identity != self.sender.owner)
        {
            return Err(refusal("IdentityMismatch"));
        }
        Ok(())
    }

    /// The fan-out of the current distribution with draws made earlier.
    fn fanout_with(&self, records: &mut [Record], draws: &[Vec<[u8; FANOUT_DRAW]>]) -> Fanout {
        let pt = frame(KIND_DISTRIBUTION, &self.sender.distribution().encoded());
        records
            .iter_mut()
            .zip(draws)
            .map(|(r, d)| (r.user.clone(), r.fanout(&pt, d)))
            .collect()
    }

    /// §16.8 `distribute`: the records change, the group does not.
    ///
    /// # Errors
    ///
    /// `NotGroupMember`, `IdentityMismatch`.
    pub fn distribute(
        &self,
        records: &mut [Record],
        rng: &mut dyn Source,
    ) -> Result<Fanout, Refusal> {
        self.check_records(&records.iter().collect::<Vec<_>>(), None)?;
        let draws: Vec<_> = records.iter().map(|r| r.draw_fanout(rng)).collect();
        Ok(self.fanout_with(records, &draws))
    }

    /// §16.8 `distribute_to`.
    ///
    /// # Errors
    ///
    /// `NotGroupMember`, `IdentityMismatch`, then as `encrypt_to`.
    pub fn distribute_to(
        &self,
        record: &mut Record,
        device: u32,
        rng: &mut dyn Source,
    ) -> Result<Vec<u8>, Refusal> {
        self.check_records(&[record], None)?;
        let pt = frame(KIND_DISTRIBUTION, &self.sender.distribution().encoded());
        record.encrypt_frame(device, &pt, rng)
    }

    /// §16.8 `install` of what `record` decrypted from device `from`.
    ///
    /// # Errors
    ///
    /// In §16.8's order.
    pub fn install(
        &mut self,
        record: &Record,
        from: u32,
        received: &Content,
    ) -> Result<Outcome, Refusal> {
        let Content::Distribution(bytes, _, sender) = received else {
            return Err(refusal("InvalidEncoding"));
        };
        if !self.members.contains(&record.user) {
            return Err(refusal("NotGroupMember"));
        }
        let d = record
            .devices
            .get(&from)
            .filter(|d| record.local_identity == self.sender.owner && d.identity == *sender)
            .ok_or_else(|| refusal("IdentityMismatch"))?;
        if d.pending.is_some() {
            return Err(refusal("IdentityChangePending"));
        }
        if d.stale_since.is_some() {
            return Err(refusal("UnknownDevice"));
        }
        // A dropped chain is Unchanged before the install's checks.
        let (dist, _) = read_distribution(bytes)?;
        if self.is_dropped(&dist.chain) {
            return Ok(Outcome::Unchanged);
        }
        let mut store = self.store.clone();
        let (outcome, evicted) =
            store.insert(Receiver::install(bytes, &store.group, Some(sender))?)?;
        if outcome != Outcome::Unchanged {
            // The evicted chains are dropped in the store's order.
            let held: Vec<Dropped> = self.store.entries.iter().map(Dropped::of).collect();
            self.store = store;
            if outcome == Outcome::Added {
                for d in held.into_iter().filter(|d| evicted.contains(&d.chain)) {
                    self.drop_chain(d);
                }
            }
            self.bump();
        }
        Ok(outcome)
    }

    /// §16.8 `encrypt`: the message.
    ///
    /// # Errors
    ///
    /// As the sender's encrypt.
    pub fn encrypt(&mut self, payload: &[u8], rng: &mut dyn Source) -> Result<Vec<u8>, Refusal> {
        let (m, _) = self.sender.encrypt(rng, payload)?;
        self.bump();
        Ok(m)
    }

    /// §16.8 `decrypt` of a message (parsed by the caller) from `record`'s
    /// user: the plaintext and the receiver's mark (owner, authenticated).
    ///
    /// # Errors
    ///
    /// A failure: `Ignore(WrongLocalDevice)`, `Ignore(Malformed)` (not a
    /// member; a chain of no device of `record`),
    /// `RetryLater(IdentityChangePending)`, then the store's:
    /// `RetryLater(MissingDistribution)`, `Ignore(Duplicate)`,
    /// `Ignore(Malformed)`.
    pub fn decrypt(
        &mut self,
        record: &Record,
        msg: &[u8],
    ) -> Result<(Vec<u8>, [u8; 32], bool), Failure> {
        if record.local_identity != self.sender.owner {
            return Err(Failure::new(
                Action::Ignore("WrongLocalDevice"),
                "IdentityMismatch",
            ));
        }
        if !self.members.contains(&record.user) {
            return Err(Failure::new(Action::Ignore("Malformed"), "NotGroupMember"));
        }
        let (h, _) = read_message(msg).expect("the caller parsed the message");
        if let Some(r) = self.store.get(&h.chain) {
            let Some(d) = record.devices.values().find(|d| d.identity == r.owner) else {
                return Err(Failure::new(
                    Action::Ignore("Malformed"),
                    "IdentityMismatch",
                ));
            };
            if d.pending.is_some() {
                return Err(Failure::new(
                    Action::RetryLater("IdentityChangePending"),
                    "IdentityChangePending",
                ));
            }
        }
        let mut store = self.store.clone();
        match store.decrypt(msg) {
            Ok((pt, _, _)) => {
                let (h, _) = read_message(msg).expect("it decrypted");
                let r = store.get(&h.chain).expect("the chain that decrypted");
                let mark = (pt, r.owner, r.authenticated);
                self.store = store;
                self.bump();
                Ok(mark)
            }
            Err(e) => {
                let action = match e["name"].as_str() {
                    Some("UnknownGroupChain") => Action::RetryLater("MissingDistribution"),
                    Some("DuplicateMessage") => Action::Ignore("Duplicate"),
                    _ => Action::Ignore("Malformed"),
                };
                Err(Failure { action, error: e })
            }
        }
    }

    /// §16.8 `remove_member` (`Some(user)`) and `rotate` (`None`).
    ///
    /// # Errors
    ///
    /// `IdentityMismatch` (`local`), `NotGroupMember`, `IdentityMismatch`
    /// (a record).
    pub fn rotate_for(
        &mut self,
        local: &Dev,
        removed: Option<&[u8]>,
        records: &mut [Record],
        rng: &mut dyn Source,
    ) -> Result<Fanout, Refusal> {
        self.check_local(local)?;
        let mut remaining = self.members.clone();
        if let Some(user) = removed {
            if !self.members.contains(user) || user == self.local_user.as_slice() {
                return Err(refusal("NotGroupMember"));
            }
            remaining.remove(user);
        }
        self.check_records(&records.iter().collect::<Vec<_>>(), Some(&remaining))?;
        let sender = Sender::new(rng, self.sender.group, &local.seed);
        let draws: Vec<_> = records.iter().map(|r| r.draw_fanout(rng)).collect();
        let mut allowed: BTreeSet<[u8; 32]> = BTreeSet::from([self.sender.owner]);
        for r in records.iter() {
            allowed.extend(r.devices.values().map(|d| d.identity));
        }
        let (kept, gone): (Vec<_>, Vec<_>) = std::mem::take(&mut self.store.entries)
            .into_iter()
            .partition(|c| allowed.contains(&c.owner));
        self.store.entries = kept;
        if !gone.is_empty() {
            self.store.generation = self.store.generation.saturating_add(1);
        }
        for c in gone {
            self.drop_chain(Dropped::of(&c));
        }
        self.members = remaining;
        self.sender = sender;
        self.bump();
        Ok(self.fanout_with(records, &draws))
    }

    /// §16.8 `after_restore`: whether the copy was stale.
    ///
    /// # Errors
    ///
    /// `IdentityMismatch` (`local`).
    pub fn after_restore(
        &mut self,
        local: &Dev,
        last_generation: u64,
        rng: &mut dyn Source,
    ) -> Result<bool, Refusal> {
        self.check_local(local)?;
        let stale = self.generation < last_generation;
        if stale {
            self.sender = Sender::new(rng, self.sender.group, &local.seed);
            self.store = Store::new(self.sender.group);
        }
        self.generation = self.generation.max(last_generation).saturating_add(1);
        Ok(stale)
    }

    /// §16.11 encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![VERSION, 0x26];
        out.extend(self.generation.to_be_bytes());
        out.push(u8::try_from(self.local_user.len()).expect("bounded"));
        out.extend(&self.local_user);
        out.extend(
            u16::try_from(self.members.len())
                .expect("bounded")
                .to_be_bytes(),
        );
        for m in &self.members {
            out.push(u8::try_from(m.len()).expect("bounded"));
            out.extend(m);
        }
        out.extend(self.sender.encode());
        let store = self.store.encode();
        out.extend(u32::try_from(store.len()).expect("bounded").to_be_bytes());
        out.extend(store);
        out.extend(
            u16::try_from(self.dropped.len())
                .expect("bounded")
                .to_be_bytes(),
        );
        for d in &self.dropped {
            out.extend(d.chain);
            out.extend(d.owner);
        }
        out
    }

    /// §16.11 decoder.
    ///
    /// # Errors
    ///
    /// The first check of §16.11 the input fails.
    pub fn decode(b: &[u8]) -> Result<Self, Refusal> {
        Self::read(b).map(|(g, _)| g)
    }

    /// §16.11 decoder with the layout (the sender's fields under `sender.`,
    /// the store's under `store.`).
    ///
    /// # Errors
    ///
    /// The first check of §16.11 the input fails.
    pub fn read(b: &[u8]) -> Result<(Self, Layout), Refusal> {
        let bad = || refusal("InvalidEncoding");
        if b.len() > MAX_STATE {
            return Err(refusal("TooLarge"));
        }
        let mut r = Reader::header(b, 0x26)?;
        let generation = r.u64("generation")?;
        let user = |r: &mut Reader<'_>, name: &str| -> Result<Vec<u8>, Refusal> {
            let len = usize::from(r.u8(&format!("{name}_len"))?);
            if len == 0 || len > MAX_USER_ID_LEN {
                return Err(refusal("InvalidEncoding"));
            }
            Ok(r.take(name, len)?.to_vec())
        };
        let local_user = user(&mut r, "local_user")?;
        let count = usize::from(r.u16("member_count")?);
        if count == 0 || count > MAX_GROUP_MEMBERS {
            return Err(bad());
        }
        let mut members = BTreeSet::new();
        for i in 0..count {
            let m = user(&mut r, &format!("members[{i}]"))?;
            if members.last().is_some_and(|p| *p >= m) {
                return Err(bad());
            }
            members.insert(m);
        }
        let offset = r.pos();
        let (sender, inner) = Sender::read(r.take("sender_bytes", STATE_LEN)?)?;
        r.enter("sender");
        r.adopt(offset, &inner);
        r.leave();
        let len = usize::try_from(r.u32("store_length")?).expect("u32 fits");
        let offset = r.pos();
        let (store, inner) = Store::read(r.take("store_bytes", len)?)?;
        r.enter("store");
        r.adopt(offset, &inner);
        r.leave();
        let dropped_count = usize::from(r.u16("dropped_count")?);
        if dropped_count > MAX_DROPPED_CHAINS {
            return Err(bad());
        }
        let mut dropped = Vec::with_capacity(dropped_count);
        for i in 0..dropped_count {
            dropped.push(Dropped {
                chain: r.a32(&format!("dropped[{i}].chain"))?,
                owner: r.a32(&format!("dropped[{i}].owner"))?,
            });
        }
        r.end()?;
        if !members.contains(&local_user) || store.group != sender.group {
            return Err(bad());
        }
        let distinct: BTreeSet<&[u8; 32]> = dropped.iter().map(|d| &d.chain).collect();
        if distinct.len() != dropped.len() || dropped.iter().any(|d| store.get(&d.chain).is_some())
        {
            return Err(bad());
        }
        let g = Self {
            generation,
            local_user,
            members,
            sender,
            store,
            dropped,
        };
        Ok((g, r.into_layout()))
    }

    /// Every field of the saved form, for the vectors.
    pub fn decoded_json(&self) -> Value {
        json!({
            "generation": self.generation, "local_user": hex(&self.local_user),
            "members": self.members.iter().map(|m| hex(m)).collect::<Vec<_>>(),
            "sender": self.sender.decoded_json(),
            "store_length": self.store.encode().len(),
            "store": self.store.decoded_json(),
            "dropped": self
                .dropped
                .iter()
                .map(|d| json!({ "chain": hex(&d.chain), "owner": hex(&d.owner) }))
                .collect::<Vec<_>>(),
        })
    }
}

impl Record {
    /// §16.8 `request_distribution` (as `encrypt_to` of frame 0x04).
    ///
    /// # Errors
    ///
    /// As `encrypt_to`.
    pub fn request_distribution(
        &mut self,
        device: u32,
        group: &[u8; 32],
        rng: &mut dyn Source,
    ) -> Result<Vec<u8>, Refusal> {
        self.encrypt_frame(device, &frame(KIND_DISTRIBUTION_REQUEST, group), rng)
    }
}
