//! The world: users and their device slots, the directory server (device
//! lists and published prekeys), the group's membership, the clock, and
//! what happens to devices: installs, reinstalls with a new identity,
//! removals, crashes, lost writes and stale restores.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand_chacha::ChaCha20Rng;
use sotto::rand_core::{Rng, SeedableRng};
use sotto::sessions::{DeviceId, GroupSession, PeerRecord, UserId};
use sotto::{Device, IdentityKey, KemPreKey, OneTimePreKey, PreKeyBundle, SignedPreKey};

use super::app::{App, Image};
use super::ledger::{Ledger, Stats};
use super::network::{Network, below};
use super::{Config, Envelope, Inc, Slot};

/// Most devices a user has at once.
const MAX_DEVICES: usize = 3;
/// One-time prekeys a device keeps published, and how many it adds when the
/// server runs low.
const ONE_TIME_BATCH: usize = 8;
const ONE_TIME_KEM_BATCH: usize = 2;
/// How often a device rotates its signed prekey.
const SIGNED_PREKEY_AGE: u64 = 7 * 86_400;
/// Envelopes ready for delivery beyond which the world delivers.
const MAX_READY: usize = 48;

/// The rare events, each with its chance per step in millionths (at most
/// one happens in a step).
#[derive(Clone, Copy)]
enum Rare {
    Backup,
    StaleRestore,
    Crash,
    Reinstall,
    AddDevice,
    RemoveDevice,
    Membership,
    Rotate,
    Flood,
    Offline,
    ClockJump,
}

const RARE: [(Rare, u64); 11] = [
    (Rare::Backup, 2_000),
    (Rare::StaleRestore, 400),
    (Rare::Crash, 300),
    (Rare::Reinstall, 120),
    (Rare::AddDevice, 120),
    (Rare::RemoveDevice, 100),
    (Rare::Membership, 60),
    (Rare::Rotate, 80),
    (Rare::Flood, 300),
    (Rare::Offline, 300),
    (Rare::ClockJump, 300),
];
/// The chance, in millionths, that a device's call loses writes.
const LOST_WRITE: u64 = 1_500;
/// Most seconds a device's clock is off, either way.
const MAX_SKEW: u64 = 1800;

#[derive(Clone)]
pub(super) struct User {
    pub(super) id: UserId,
    /// Its current devices.
    pub(super) slots: Vec<Slot>,
    next_device: u32,
}

#[derive(Clone)]
pub(super) struct SlotState {
    pub(super) user: usize,
    pub(super) device: DeviceId,
    /// The identity of each incarnation, and when it was installed.
    pub(super) identities: Vec<IdentityKey>,
    pub(super) born: Vec<u64>,
    /// The running application; `None` once the device was removed.
    pub(super) app: Option<App>,
    restored: bool,
    /// Until when the device is offline: nothing reaches it, it does
    /// nothing.
    pub(super) offline_until: u64,
    /// How far the device's clock is from the world's, in seconds.
    skew: i64,
}

/// A fault a caller can make happen (to a fork, before it settles).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fault {
    /// A device restored from its backup.
    StaleRestore,
    /// A device wiped and installed again under a new identity.
    Reinstall,
    /// The attacker floods a device with corrupted copies and replays of a
    /// message it received (up to the rate limits of SPEC §16.6).
    Flood,
    /// A device loses the writes of one record since its backup: the
    /// record comes back as the backup has it, the rest as it is.
    LostRecord,
}

/// What the server publishes for a device.
#[derive(Clone)]
pub(super) struct Published {
    identity: IdentityKey,
    signed: SignedPreKey,
    kem: KemPreKey,
    one_time: VecDeque<OneTimePreKey>,
    one_time_kem: VecDeque<KemPreKey>,
}

/// The simulation's world. See the module documentation of
/// [`layer`](super). A clone is a fork: the same devices, records and
/// messages in flight (copied through their saved forms), going on on its
/// own.
#[derive(Clone)]
pub struct World {
    pub(super) now: u64,
    step_secs: u64,
    pub(super) rng: ChaCha20Rng,
    pub(super) users: Vec<User>,
    pub(super) slots: Vec<SlotState>,
    pub(super) slot_of: BTreeMap<(usize, DeviceId), Slot>,
    pub(super) published: BTreeMap<Slot, Published>,
    pub(super) net: Network,
    pub(super) ledger: Ledger,
    /// The group's members (user indices): the application's authenticated
    /// source of membership.
    pub(super) members: BTreeSet<usize>,
    /// Pairs of users who write to each other (smaller index first).
    pub(super) talk: BTreeSet<(usize, usize)>,
    /// The world's event counter.
    pub(super) seq: u64,
    /// Whether the network and storage misbehave.
    pub(super) faults: bool,
    pub(super) next_app_id: u64,
    start: u64,
    messages: u64,
    /// What happened so far.
    pub stats: Stats,
}

impl World {
    /// Users with the devices `config` gives, every device installed and
    /// its application fed the device lists. Users who talk: every pair
    /// but two; the group: every user but the last.
    pub fn new(config: &Config) -> Self {
        let start = 1_700_000_000;
        let expected_steps = config.messages * 2;
        let mut world = Self {
            now: start,
            step_secs: (config.days * 86_400 / expected_steps.max(1)).max(1),
            rng: ChaCha20Rng::seed_from_u64(config.seed),
            users: Vec::new(),
            slots: Vec::new(),
            slot_of: BTreeMap::new(),
            published: BTreeMap::new(),
            net: Network::default(),
            ledger: Ledger::default(),
            members: BTreeSet::new(),
            talk: BTreeSet::new(),
            seq: 0,
            faults: true,
            next_app_id: 0,
            start,
            messages: config.messages,
            stats: Stats::default(),
        };
        let n = config.devices.len();
        assert!((2..=8).contains(&n), "2 to 8 users");
        for u in 0..n {
            let id = UserId::new(format!("user{u}").as_bytes()).unwrap();
            world.users.push(User {
                id,
                slots: Vec::new(),
                next_device: 1,
            });
        }
        for u in 0..n {
            for v in u + 1..n {
                if (u, v) != (0, n - 1) && (u, v) != (1, n - 2) {
                    world.talk.insert((u, v));
                }
            }
        }
        world.members = (0..n - 1).collect();
        // Every device exists at the server before any application starts.
        let mut new = Vec::new();
        for (u, count) in config.devices.iter().enumerate() {
            assert!((1..=MAX_DEVICES).contains(count), "1 to 3 devices");
            for _ in 0..*count {
                new.push(world.new_slot(u));
            }
        }
        for &slot in &new {
            world.create(slot);
        }
        for slot in new {
            world.start(slot);
        }
        world
    }

    /// Runs until the configured number of messages was sent.
    pub fn run(&mut self) {
        self.run_until(self.messages);
    }

    /// Runs until `messages` messages were sent (at most the configured
    /// number).
    pub fn run_until(&mut self, messages: u64) {
        while self.stats.messages < messages.min(self.messages) {
            self.step();
        }
        self.stats.days = (self.now - self.start) / 86_400;
    }

    pub(super) fn chance(&mut self, percent: u64) -> bool {
        below(&mut self.rng, 100) < percent
    }

    fn chance_ppm(&mut self, ppm: u64) -> bool {
        below(&mut self.rng, 1_000_000) < ppm
    }

    pub(super) fn below(&mut self, n: usize) -> usize {
        below(&mut self.rng, n as u64) as usize
    }

    /// The current devices.
    pub(super) fn alive(&self) -> Vec<Slot> {
        (0..self.slots.len())
            .filter(|s| self.slots[*s].app.is_some())
            .collect()
    }

    /// The time on `slot`'s clock: what its application passes to the
    /// layer. Devices' clocks differ by up to an hour and now and then
    /// jump, backwards too.
    pub(super) fn clock(&self, slot: Slot) -> u64 {
        self.now.saturating_add_signed(self.slots[slot].skew)
    }

    fn draw_skew(&mut self) -> i64 {
        i64::try_from(below(&mut self.rng, 2 * MAX_SKEW + 1)).unwrap() - MAX_SKEW as i64
    }

    /// A current device that is online, if any.
    pub(super) fn pick_online(&mut self) -> Option<Slot> {
        let online: Vec<Slot> = self
            .alive()
            .into_iter()
            .filter(|s| self.slots[*s].offline_until <= self.now)
            .collect();
        (!online.is_empty()).then(|| online[self.below(online.len())])
    }

    pub(super) fn current(&self, slot: Slot) -> Inc {
        Inc {
            slot,
            n: self.slots[slot].identities.len() - 1,
        }
    }

    /// The installation of `slot` whose identity is `identity`.
    pub(super) fn inc_of(&self, slot: Slot, identity: &IdentityKey) -> Inc {
        let n = self.slots[slot]
            .identities
            .iter()
            .position(|k| k == identity)
            .expect("an identity the slot had");
        Inc { slot, n }
    }

    pub(super) fn user_index(&self, id: &UserId) -> usize {
        self.users.iter().position(|u| u.id == *id).unwrap()
    }

    /// Whether users `u` and `v` exchange messages: they talk, are one
    /// user, or are both members of the group.
    pub(super) fn talks(&self, u: usize, v: usize) -> bool {
        u == v
            || self.talk.contains(&(u.min(v), u.max(v)))
            || (self.members.contains(&u) && self.members.contains(&v))
    }

    /// Runs `f` on the application of `slot` (taken out of the world while
    /// `f` runs); `None` if the device was removed.
    pub(super) fn with_app<T>(
        &mut self,
        slot: Slot,
        f: impl FnOnce(&mut Self, &mut App) -> T,
    ) -> Option<T> {
        let mut app = self.slots[slot].app.take()?;
        let out = f(self, &mut app);
        app.note_generations();
        self.slots[slot].app = Some(app);
        Some(out)
    }

    /// One step of the run: the clock moves, something happens (a
    /// delivery, a send, housekeeping, or nothing), and now and then
    /// something rare.
    fn step(&mut self) {
        self.now += 1 + below(&mut self.rng, 2 * self.step_secs);
        self.seq += 1;
        if self.net.ready(self.now) > MAX_READY {
            self.deliver_one();
        } else {
            match self.below(1000) {
                0..=599 => self.deliver_one(),
                600..=799 => self.send_text(),
                800..=829 => self.group_send(),
                830..=839 => {
                    if let Some(slot) = self.pick_online() {
                        self.with_app(slot, |w, app| w.housekeeping(slot, app, false));
                    }
                }
                _ => {}
            }
        }
        self.rare();
    }

    fn rare(&mut self) {
        let mut roll = below(&mut self.rng, 1_000_000);
        let Some(event) = RARE.iter().find_map(|(event, ppm)| {
            if roll < *ppm {
                Some(*event)
            } else {
                roll -= ppm;
                None
            }
        }) else {
            return;
        };
        let alive = self.alive();
        let slot = alive[self.below(alive.len())];
        match event {
            Rare::Backup => {
                self.with_app(slot, |w, app| {
                    app.take_backup();
                    w.stats.backups += 1;
                });
            }
            Rare::StaleRestore => {
                self.restore(slot);
            }
            Rare::Crash => {
                self.with_app(slot, |w, app| {
                    w.stats.crashes += 1;
                    let image = app.image();
                    w.reload(slot, app, image);
                });
            }
            Rare::Reinstall => self.reinstall(slot),
            Rare::AddDevice => {
                let u = self.below(self.users.len());
                if self.users[u].slots.len() < MAX_DEVICES {
                    let slot = self.new_slot(u);
                    self.install(slot);
                    self.stats.devices_added += 1;
                }
            }
            Rare::RemoveDevice => {
                let u = self.slots[slot].user;
                if self.users[u].slots.len() > 1 {
                    self.users[u].slots.retain(|s| *s != slot);
                    self.slots[slot].app = None;
                    self.published.remove(&slot);
                    self.stats.devices_removed += 1;
                }
            }
            Rare::Membership => self.membership(),
            Rare::Rotate => {
                if self.members.contains(&self.slots[slot].user) {
                    self.with_app(slot, |w, app| w.rotate_group(slot, app));
                }
            }
            Rare::Flood => {
                self.flood();
            }
            Rare::Offline => {
                // Offline for an hour to three days.
                let until = self.now + 3600 + below(&mut self.rng, 3 * 86_400);
                self.slots[slot].offline_until = until;
                self.net.hold(slot, until);
                self.stats.offline += 1;
            }
            Rare::ClockJump => {
                self.slots[slot].skew = self.draw_skew();
                self.stats.clock_jumps += 1;
            }
        }
    }

    /// The attacker takes a message it saw delivered and sends its
    /// recipient a burst of copies: exact replays and corrupted ones.
    fn flood(&mut self) -> bool {
        let Some(original) = self.net.archived(&mut self.rng) else {
            return false;
        };
        if self.slots[original.to.slot].app.is_none() {
            return false;
        }
        self.stats.floods += 1;
        for _ in 0..4 + self.below(16) {
            let mut copy = original.clone();
            if self.chance(50) {
                self.corrupt(&mut copy);
            }
            self.stats.flood_copies += 1;
            self.deliver(copy);
        }
        true
    }

    /// Changes one byte, or truncates: never an honest message again.
    fn corrupt(&mut self, envelope: &mut Envelope) {
        let len = envelope.bytes.len();
        if self.chance(20) {
            envelope.bytes.truncate(self.below(len));
        } else {
            let at = self.below(len);
            envelope.bytes[at] ^= 1 + self.below(255) as u8;
        }
        envelope.wire = None;
    }

    /// A lost write may strike the call `f` makes on `slot`'s application:
    /// some of the objects it changed are not persisted, and the device
    /// restarts from what was.
    pub(super) fn with_app_lossy(&mut self, slot: Slot, f: impl FnOnce(&mut Self, &mut App)) {
        let lose = self.faults && self.chance_ppm(LOST_WRITE);
        self.with_app(slot, |w, app| {
            let before = lose.then(|| (app.image(), app.generations()));
            f(w, app);
            if let Some((image, gens)) = before {
                w.lose_writes(slot, app, image, &gens);
            }
        });
    }

    fn lose_writes(
        &mut self,
        slot: Slot,
        app: &mut App,
        before: Image,
        gens: &(u64, BTreeMap<usize, u64>, Option<u64>),
    ) {
        let now = app.generations();
        let mut changed: Vec<Option<usize>> = Vec::new();
        if now.0 != gens.0 {
            changed.push(None);
        }
        for (u, g) in &now.1 {
            if gens.1.get(u) != Some(g) {
                changed.push(Some(*u));
            }
        }
        let group_changed = now.2 != gens.2 && gens.2.is_some() && now.2.is_some();
        if changed.is_empty() && !group_changed {
            return;
        }
        // Each changed object's write is lost with even odds, at least one.
        let total = changed.len() + usize::from(group_changed);
        let forced = self.below(total);
        let mut image = app.image();
        let mut lost = 0;
        for (i, what) in changed.iter().enumerate() {
            if i == forced || self.chance(50) {
                lost += 1;
                match what {
                    None => image.device = before.device.clone(),
                    Some(u) => {
                        if let Some(bytes) = before.records.get(u) {
                            image.records.insert(*u, bytes.clone());
                        }
                    }
                }
            }
        }
        if group_changed && (forced == changed.len() || self.chance(50)) {
            lost += 1;
            image.group = before.group;
        }
        self.stats.lost_writes += 1;
        self.stats.lost_objects += lost;
        self.reload(slot, app, image);
    }

    /// The device restarts from `image`. The application recorded every
    /// generation outside storage: a device older than recorded resets its
    /// prekeys (SPEC §6) and publishes new ones; every record and the
    /// group are told with `after_restore` (§16.7, §16.8).
    pub(super) fn reload(&mut self, slot: Slot, app: &mut App, image: Image) {
        app.note_generations();
        let mut device = Device::from_bytes(&image.device).unwrap();
        if device.generation() < app.keystore.device {
            let (signed, kem) = device
                .reset_prekeys_after_restore(&mut app.rng, self.clock(slot), app.keystore.device)
                .unwrap();
            self.stats.device_resets += 1;
            app.device = device;
            self.publish(slot, app, Some((signed, kem)));
        } else {
            app.device = device;
        }
        for (u, bytes) in &image.records {
            let mut record = PeerRecord::from_bytes(bytes).unwrap();
            let last = app.keystore.records.get(u).copied().unwrap_or(0);
            let deleted = record.after_restore(last);
            self.stats.stale_records += u64::from(deleted > 0);
            self.stats.sessions_deleted += deleted as u64;
            app.records.insert(*u, record);
        }
        let stale = match &image.group {
            Some(bytes) => {
                let mut group = GroupSession::from_bytes(bytes).unwrap();
                let stale = group
                    .after_restore(&app.device, app.keystore.group, &mut app.rng)
                    .unwrap();
                app.group = Some(group);
                stale
            }
            None => {
                app.group = None;
                false
            }
        };
        app.note_generations();
        // The lists in storage may be old: ask the server again.
        for u in 0..self.users.len() {
            self.refresh(slot, app, u, false);
        }
        if stale {
            self.stats.stale_groups += 1;
            self.group_restored(slot, app);
        } else {
            self.reconcile_group(slot, app);
        }
    }

    /// Makes `fault` happen now to a device chosen at random; returns
    /// whether it could (a stale restore needs a device with a backup).
    pub fn inject(&mut self, fault: Fault) -> bool {
        let alive = self.alive();
        match fault {
            Fault::StaleRestore => {
                let backed: Vec<Slot> = alive
                    .into_iter()
                    .filter(|s| self.slots[*s].app.as_ref().unwrap().backup.is_some())
                    .collect();
                if backed.is_empty() {
                    return false;
                }
                let slot = backed[self.below(backed.len())];
                self.restore(slot)
            }
            Fault::Reinstall => {
                let slot = alive[self.below(alive.len())];
                self.reinstall(slot);
                true
            }
            Fault::Flood => self.flood(),
            Fault::LostRecord => {
                let backed: Vec<Slot> = alive
                    .into_iter()
                    .filter(|s| self.slots[*s].app.as_ref().unwrap().backup.is_some())
                    .collect();
                if backed.is_empty() {
                    return false;
                }
                let slot = backed[self.below(backed.len())];
                let u = self.below(self.users.len());
                self.with_app(slot, |w, app| {
                    let mut image = app.image();
                    let old = app.open_backup().unwrap();
                    image.records.insert(u, old.records[&u].clone());
                    w.stats.lost_writes += 1;
                    w.reload(slot, app, image);
                });
                true
            }
        }
    }

    /// A stale restore from the device's backup, if it has one. Returns
    /// whether it had.
    fn restore(&mut self, slot: Slot) -> bool {
        self.with_app(slot, |w, app| {
            let Some(image) = app.open_backup() else {
                return false;
            };
            w.stats.restores += 1;
            if !std::mem::replace(&mut w.slots[slot].restored, true) {
                w.stats.restored_devices += 1;
            }
            w.reload(slot, app, image);
            true
        })
        .unwrap_or(false)
    }

    fn new_slot(&mut self, user: usize) -> Slot {
        let u = &mut self.users[user];
        let device = DeviceId(u.next_device);
        u.next_device += 1;
        let slot = self.slots.len();
        u.slots.push(slot);
        self.slots.push(SlotState {
            user,
            device,
            identities: Vec::new(),
            born: Vec::new(),
            app: None,
            restored: false,
            offline_until: 0,
            skew: 0,
        });
        self.slot_of.insert((user, device), slot);
        slot
    }

    /// A fresh installation on `slot`: a new device and identity, records
    /// for every user fed from the server's lists, the group if the user is
    /// a member.
    fn install(&mut self, slot: Slot) {
        self.create(slot);
        self.start(slot);
    }

    /// A new device on `slot`, its prekeys published, its application with
    /// empty records.
    fn create(&mut self, slot: Slot) {
        self.slots[slot].skew = self.draw_skew();
        let mut rng = ChaCha20Rng::seed_from_u64(self.rng.next_u64());
        let device = Device::generate(&mut rng, self.clock(slot)).unwrap();
        let identity = *device.identity_key();
        let mut storage_key = [0u8; 32];
        rng.fill_bytes(&mut storage_key);
        let user = self.slots[slot].user;
        let device_id = self.slots[slot].device;
        let records = self
            .users
            .iter()
            .enumerate()
            .map(|(u, info)| {
                let record = if u == user {
                    PeerRecord::new_own(info.id.clone(), device_id, identity)
                } else {
                    PeerRecord::new(info.id.clone(), identity)
                };
                (u, record)
            })
            .collect();
        self.slots[slot].identities.push(identity);
        self.slots[slot].born.push(self.seq);
        self.stats.devices_ever += 1;
        let mut app = App::new(device, records, rng, storage_key);
        self.publish(slot, &mut app, None);
        self.slots[slot].app = Some(app);
    }

    /// The application's first steps: the device lists, then the group if
    /// the user is a member.
    fn start(&mut self, slot: Slot) {
        let member = self.members.contains(&self.slots[slot].user);
        self.with_app(slot, |w, app| {
            for u in 0..w.users.len() {
                w.refresh(slot, app, u, true);
            }
            if member {
                w.join_group(slot, app);
            }
        });
    }

    /// The device is wiped and installed again: a new identity under the
    /// same device id, which every peer sees as an identity change.
    fn reinstall(&mut self, slot: Slot) {
        self.slots[slot].app = None;
        self.stats.reinstalls += 1;
        self.install(slot);
    }

    /// The server's device list of user `u`.
    pub(super) fn list(&self, u: usize) -> Vec<(DeviceId, IdentityKey)> {
        self.users[u]
            .slots
            .iter()
            .map(|s| {
                let slot = &self.slots[*s];
                (slot.device, *slot.identities.last().unwrap())
            })
            .collect()
    }

    /// Publishes `app`'s prekeys: the signed and last-resort KEM prekeys
    /// (the ones a reset returned, if given) and new one-time prekeys of
    /// both kinds, replacing what the server held.
    fn publish(&mut self, slot: Slot, app: &mut App, reset: Option<(SignedPreKey, KemPreKey)>) {
        let (signed, kem) = reset.unwrap_or_else(|| {
            (
                app.device.signed_prekey(),
                app.device.last_resort_kem_prekey(),
            )
        });
        let mut published = Published {
            identity: *app.device.identity_key(),
            signed,
            kem,
            one_time: VecDeque::new(),
            one_time_kem: VecDeque::new(),
        };
        self.replenish(app, &mut published);
        self.published.insert(slot, published);
    }

    fn replenish(&mut self, app: &mut App, p: &mut Published) {
        if p.one_time.len() < ONE_TIME_BATCH / 2 {
            match app
                .device
                .generate_one_time_prekeys(&mut app.rng, ONE_TIME_BATCH)
            {
                Ok(keys) => p.one_time.extend(keys),
                Err(_) => self.stats.prekeys_exhausted += 1,
            }
        }
        if p.one_time_kem.is_empty() {
            match app
                .device
                .generate_one_time_kem_prekeys(&mut app.rng, ONE_TIME_KEM_BATCH)
            {
                Ok(keys) => p.one_time_kem.extend(keys),
                Err(_) => self.stats.prekeys_exhausted += 1,
            }
        }
    }

    /// Keeps the server stocked with `app`'s prekeys and rotates its signed
    /// prekey once a week.
    pub(super) fn maintain_prekeys(&mut self, slot: Slot, app: &mut App) {
        let Some(mut p) = self.published.remove(&slot) else {
            return;
        };
        let created = app.device.signed_prekeys().last().unwrap().created;
        if self.clock(slot).saturating_sub(created) >= SIGNED_PREKEY_AGE {
            p.signed = app
                .device
                .rotate_signed_prekey(&mut app.rng, self.clock(slot))
                .unwrap();
            self.stats.signed_prekey_rotations += 1;
        }
        self.replenish(app, &mut p);
        self.published.insert(slot, p);
    }

    /// A bundle for `slot` as the server hands it out: its current signed
    /// prekey, mostly a one-time prekey, and a one-time KEM prekey or the
    /// last-resort one.
    pub(super) fn bundle(&mut self, slot: Slot) -> Option<PreKeyBundle> {
        let (one_time, one_time_kem) = (self.chance(70), self.chance(40));
        let p = self.published.get_mut(&slot)?;
        let opk = if one_time {
            p.one_time.pop_front()
        } else {
            None
        };
        let kem = one_time_kem
            .then(|| p.one_time_kem.pop_front())
            .flatten()
            .unwrap_or_else(|| p.kem.clone());
        Some(PreKeyBundle::new(p.identity, p.signed, opk, Some(kem)))
    }

    /// A user leaves the group (there are always two members left), or a
    /// user outside rejoins; then every member device brings its group up
    /// to the membership.
    fn membership(&mut self) {
        let outside: Vec<usize> = (0..self.users.len())
            .filter(|u| !self.members.contains(u))
            .collect();
        if !outside.is_empty() && (self.members.len() <= 2 || self.chance(50)) {
            let u = outside[self.below(outside.len())];
            self.members.insert(u);
            self.stats.rejoins += 1;
        } else if self.members.len() > 2 {
            let members: Vec<usize> = self.members.iter().copied().collect();
            let u = members[self.below(members.len())];
            self.members.remove(&u);
            self.stats.removals += 1;
            for slot in self.users[u].slots.clone() {
                // Its devices are not told: they keep their group as it was.
                if let Some(app) = self.slots[slot].app.as_mut() {
                    app.in_group = false;
                }
            }
        }
        for u in self.members.clone() {
            for slot in self.users[u].slots.clone() {
                self.with_app(slot, |w, app| w.reconcile_group(slot, app));
            }
        }
    }

    /// Delivers one envelope whose time has come, with the network's
    /// faults.
    pub(super) fn deliver_one(&mut self) {
        let Some(mut envelope) = self.net.take(self.now, &mut self.rng) else {
            return;
        };
        if self.faults {
            match self.below(100) {
                0..=2 => {
                    self.stats.dropped += 1;
                    return;
                }
                3..=5 => {
                    self.stats.duplicated += 1;
                    self.post(envelope.clone());
                }
                6..=7 => {
                    self.stats.corrupted += 1;
                    self.corrupt(&mut envelope);
                }
                _ => {}
            }
        }
        self.deliver(envelope);
    }

    /// Hands `envelope` to its device, if the device still exists.
    pub(super) fn deliver(&mut self, envelope: Envelope) {
        let slot = envelope.to.slot;
        if self.slots[slot].app.is_none() {
            self.stats.undeliverable += 1;
            return;
        }
        self.stats.deliveries += 1;
        if envelope.wire.is_some() && !envelope.group {
            self.net.remember(&envelope, &mut self.rng);
        }
        self.with_app_lossy(slot, |w, app| {
            if envelope.group {
                w.receive_group(slot, app, &envelope, None);
            } else {
                w.receive(slot, app, &envelope, None);
            }
        });
    }

    /// Queues `envelope` with a delay (none once delivery resumed).
    pub(super) fn post(&mut self, mut envelope: Envelope) {
        if self.faults {
            let (delay, long) = Network::delay(&mut self.rng);
            let offline = self.slots[envelope.to.slot].offline_until;
            envelope.ready_at = (self.now + delay).max(offline);
            self.stats.delayed += u64::from(long || offline > self.now);
        } else {
            envelope.ready_at = self.now;
        }
        self.net.push(envelope);
    }
}
