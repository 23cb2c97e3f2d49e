//! Exhaustive model check of the session layer (issue 13, SPEC §16.12), on
//! the real implementation.
//!
//! Users with devices exchange messages over a network that may lose,
//! duplicate and reorder them, and inject forged messages made from the
//! headers of messages in flight; one device may be restored from a stale
//! backup. The explorer enumerates every interleaving of these events up
//! to a bound, deduplicating states by a hash of their saved bytes (every
//! device, record and in-flight message, plus the observer's ledger). At
//! every state whose network is empty, delivery "resumes": each device pair
//! exchanges one round trip over a reliable network, after which both must
//! have the same active session and a message each way must decrypt on it
//! (in a run with forged messages, MIN_RECOVERY_INTERVAL later: forged
//! messages may spend the rate limits). At every delivery, no message may
//! be decrypted twice, and no forged message may decrypt.
//!
//! Applications act as SPEC §16.6 says: they carry out every recovery action
//! (fetching bundles from a server that hands out each device's current
//! prekeys), resend what a retry request names, and after a restore call
//! `Device::reset_prekeys_after_restore` and `PeerRecord::after_restore`
//! with the generations they recorded outside the backup.

//!
//! Every random choice is seeded by what the acting device holds (its
//! saved state, its books and its input), never by the rest of the world,
//! so that events of different devices commute byte for byte and their
//! interleavings collapse into one state; the result of each device step
//! is cached by the same key.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::rc::Rc;
use std::time::Instant;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sha2::{Digest, Sha256};
use sotto::sessions::{
    Action, Content, DeviceId, Failure, Ignore, MIN_RECOVERY_INTERVAL, PeerRecord, RetryHint,
    UserId,
};
use sotto::{Device, Message, PreKeyBundle};

const NOW: u64 = 1_700_000_000;

/// The bound of one exploration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Users and how many devices each has.
    pub users: Vec<(&'static str, u32)>,
    /// Application messages each device sends (each to every other
    /// device), in device order (alice's devices first); missing entries
    /// repeat the last.
    pub sends: Vec<u8>,
    /// Messages the network may lose, in the whole run.
    pub drops: u8,
    /// Messages the network may duplicate, in the whole run.
    pub dups: u8,
    /// Forged messages the network may inject, in the whole run: from the
    /// header of a message in flight, delivered at once to its recipient
    /// as from its sender (SPEC §16.6: anyone can make them).
    pub forges: u8,
    /// Whether one device may be restored from a stale backup (taken at any
    /// point, restored at any later point).
    pub restore: bool,
    /// Mixed into every seed: another salt gives other keys, so other
    /// tie-break outcomes.
    pub salt: u8,
}

/// What an exploration saw.
#[derive(Debug, Default)]
pub struct Stats {
    /// Distinct states reached.
    pub states: usize,
    /// Of those, states with an empty network, where the round-trip check ran.
    pub quiescent: usize,
    /// Events applied (including those reaching a state seen before).
    pub transitions: usize,
    /// Device steps actually computed (the rest came from the cache).
    pub computed: usize,
    /// Application messages decrypted, in computed steps.
    pub decrypted: usize,
    /// New sessions started for recovery, in computed steps.
    pub new_sessions: usize,
    /// Retry requests sent, in computed steps.
    pub retry_requests: usize,
    /// Recoveries the rate limits held back, in computed steps.
    pub rate_limited: usize,
    /// Prekey messages that arrived while the receiver's own session awaited
    /// its reply (simultaneous initiation): how often the new session won
    /// the tie-break, and how often the receiver's own stayed, in computed
    /// steps.
    pub tie_breaks: [usize; 2],
    /// Resends of a message its recipient had already decrypted (a distinct
    /// wire message: an application-level duplicate, never a protocol one).
    pub resent_delivered: usize,
    /// Longest event path.
    pub max_depth: usize,
}

/// A message's identity in the observer's ledger: (sender index, counter).
type Id = (u8, u16);

/// Saved bytes, shared between states and hashed once.
#[derive(Clone)]
struct Blob {
    bytes: Rc<[u8]>,
    hash: [u8; 16],
}

impl Blob {
    fn new(bytes: &[u8]) -> Self {
        Self {
            bytes: Rc::from(bytes),
            hash: digest(&[bytes]),
        }
    }

    /// The generation of a saved state: the 8 bytes after its header.
    fn generation(&self) -> u64 {
        u64::from_be_bytes(self.bytes[2..10].try_into().unwrap())
    }
}

fn digest(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    h.finalize()[..16].try_into().unwrap()
}

#[derive(Clone)]
struct InFlight {
    to: u8,
    from: u8,
    message: Blob,
}

impl InFlight {
    fn key(&self) -> (u8, u8, [u8; 16]) {
        (self.to, self.from, self.message.hash)
    }
}

/// One device's saved state (its `Device` and one record per user) and its
/// application's own books, which a restore does not roll back: the
/// generations it recorded, what it sent, and the observer's ledger of what
/// it decrypted.
#[derive(Clone)]
struct DevState {
    device: Blob,
    records: Vec<Blob>,
    last_device_generation: u64,
    last_record_generations: Vec<u64>,
    counter: u16,
    /// Hint of each message sent, its recipient and its id.
    sent: Vec<([u8; 69], u8, Id)>,
    decrypted: Vec<Id>,
}

impl DevState {
    fn hash(&self) -> [u8; 16] {
        let mut parts: Vec<Vec<u8>> = vec![self.device.hash.to_vec()];
        parts.extend(self.records.iter().map(|r| r.hash.to_vec()));
        parts.push(self.last_device_generation.to_be_bytes().to_vec());
        parts.extend(
            self.last_record_generations
                .iter()
                .map(|g| g.to_be_bytes().to_vec()),
        );
        parts.push(self.counter.to_be_bytes().to_vec());
        for (hint, to, id) in &self.sent {
            parts.push([&hint[..], &[*to, id.0], &id.1.to_be_bytes()].concat());
        }
        for id in &self.decrypted {
            parts.push([&[id.0][..], &id.1.to_be_bytes()].concat());
        }
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        digest(&refs)
    }
}

#[derive(Clone)]
enum Restore {
    Unused,
    Backed {
        device: u8,
        device_bytes: Blob,
        records: Vec<Blob>,
    },
    Done,
}

#[derive(Clone)]
struct State {
    devices: Vec<DevState>,
    net: Vec<InFlight>,
    sends_left: Vec<u8>,
    drops_left: u8,
    dups_left: u8,
    forges_left: u8,
    restore: Restore,
}

impl State {
    fn hash(&self) -> [u8; 16] {
        let mut parts: Vec<Vec<u8>> = self.devices.iter().map(|d| d.hash().to_vec()).collect();
        for m in &self.net {
            parts.push([&[m.to, m.from][..], &m.message.hash].concat());
        }
        parts.push(self.sends_left.clone());
        parts.push(vec![self.drops_left, self.dups_left, self.forges_left]);
        match &self.restore {
            Restore::Unused => parts.push(vec![0]),
            Restore::Backed {
                device,
                device_bytes,
                records,
            } => {
                parts.push(vec![1, *device]);
                parts.push(device_bytes.hash.to_vec());
                parts.extend(records.iter().map(|r| r.hash.to_vec()));
            }
            Restore::Done => parts.push(vec![2]),
        }
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        digest(&refs)
    }

    fn push(&mut self, m: InFlight) {
        let at = self.net.partition_point(|x| x.key() < m.key());
        self.net.insert(at, m);
    }
}

#[derive(Clone, Copy, Debug)]
enum Event {
    Send(u8),
    Deliver(usize),
    Drop(usize),
    Dup(usize),
    /// A copy of message k with its last byte (the AEAD tag) flipped.
    ForgeCopy(usize),
    /// A ratchet message with message k's ratchet key, previous chain
    /// length and next message number, and a garbage body.
    ForgeRatchet(usize),
    Backup(u8),
    Restore,
}

/// Something the model must never see.
#[derive(Debug)]
struct Violation(String);

/// What one device step did: the device's new state, what it sent, and
/// what the observer counts.
#[derive(Clone)]
struct Step {
    device: DevState,
    out: Vec<InFlight>,
    /// A resend answering a retry request: the id it resent.
    resent: Option<Id>,
    decrypted: usize,
    new_sessions: usize,
    retry_requests: usize,
    rate_limited: usize,
    tie_breaks: [usize; 2],
}

/// A device deserialised to act; records are read when first needed and
/// written back only if their generation moved.
struct Live {
    dev: DevState,
    device: Device,
    records: Vec<Option<PeerRecord>>,
    step: Step,
}

impl Live {
    fn new(dev: &DevState) -> Self {
        Self {
            dev: dev.clone(),
            device: Device::from_bytes(&dev.device.bytes).unwrap(),
            records: dev.records.iter().map(|_| None).collect(),
            step: Step {
                device: dev.clone(),
                out: Vec::new(),
                resent: None,
                decrypted: 0,
                new_sessions: 0,
                retry_requests: 0,
                rate_limited: 0,
                tie_breaks: [0; 2],
            },
        }
    }

    fn record(&mut self, u: usize) -> &mut PeerRecord {
        rec(&mut self.records, &self.dev, u)
    }

    /// The device's new state: what changed is saved (generations move with
    /// every change), and the application records the new generations.
    fn finish(mut self) -> Step {
        let d = &mut self.dev;
        if self.device.generation() != d.device.generation() {
            d.device = Blob::new(&self.device.to_bytes());
        }
        d.last_device_generation = d.last_device_generation.max(self.device.generation());
        for (k, r) in self.records.iter().enumerate() {
            let Some(r) = r else { continue };
            if r.generation() != d.records[k].generation() {
                d.records[k] = Blob::new(&r.to_bytes());
            }
            d.last_record_generations[k] = d.last_record_generations[k].max(r.generation());
        }
        self.step.device = self.dev;
        self.step
    }
}

/// Record `u` of a live device, read when first needed (a free function so
/// that the device and the records can be borrowed together).
fn rec<'a>(records: &'a mut [Option<PeerRecord>], dev: &DevState, u: usize) -> &'a mut PeerRecord {
    records[u].get_or_insert_with(|| PeerRecord::from_bytes(&dev.records[u].bytes).unwrap())
}

fn hint_bytes(hint: &RetryHint) -> [u8; 69] {
    let mut out = [0u8; 69];
    out[..32].copy_from_slice(&hint.ratchet_key);
    out[32..36].copy_from_slice(&hint.message_number.to_be_bytes());
    if let Some(b) = hint.base_key {
        out[36] = 1;
        out[37..].copy_from_slice(&b);
    }
    out
}

/// A forged message made from the bytes of a message in flight (see
/// [`Event::ForgeCopy`], [`Event::ForgeRatchet`]).
fn forge(bytes: &[u8], e: Event) -> Vec<u8> {
    if let Event::ForgeCopy(_) = e {
        let mut v = bytes.to_vec();
        *v.last_mut().unwrap() ^= 1;
        return v;
    }
    let message = Message::from_bytes(bytes).unwrap();
    let (key, pn, n) = match &message {
        Message::PreKey(p) => (
            p.ratchet_key_bytes(),
            p.previous_chain_length(),
            p.message_number(),
        ),
        Message::Ratchet(r) => (
            r.ratchet_key_bytes(),
            r.previous_chain_length(),
            r.message_number(),
        ),
    };
    let mut v = vec![0x02, 0x01];
    v.extend_from_slice(&key);
    v.extend_from_slice(&pn.to_be_bytes());
    v.extend_from_slice(&(n + 1).to_be_bytes());
    v.extend_from_slice(&[0x55; 16]);
    v.extend_from_slice(&[0xaa; 4 + 16]);
    v
}

fn payload_of(id: Id) -> [u8; 3] {
    let [hi, lo] = id.1.to_be_bytes();
    [id.0, hi, lo]
}

struct Explorer {
    users: Vec<UserId>,
    /// Per device: its user's index and its device id.
    devices: Vec<(usize, DeviceId)>,
    stats: Stats,
    /// Bundles by the hash of the device state they come from.
    bundles: HashMap<[u8; 16], PreKeyBundle>,
    /// Device steps by the hash of everything they read.
    steps: HashMap<[u8; 16], Step>,
    /// Print every delivery and its outcome (replaying a path).
    verbose: bool,
    /// Whether the run may forge messages.
    forged: bool,
    /// The time every device step runs at: NOW while exploring; for the
    /// round-trip check of a run with forged messages, MIN_RECOVERY_INTERVAL
    /// later (forged messages may spend the rate limits, SPEC §16.6).
    now: u64,
}

impl Explorer {
    fn index_of(&self, user: usize, device: DeviceId) -> u8 {
        let i = self
            .devices
            .iter()
            .position(|(u, d)| *u == user && *d == device)
            .unwrap();
        u8::try_from(i).unwrap()
    }

    /// The bundle the server hands out for device `i`: its current signed
    /// prekey and last-resort KEM prekey.
    fn bundle(&mut self, s: &State, i: u8) -> PreKeyBundle {
        let blob = &s.devices[usize::from(i)].device;
        self.bundles
            .entry(blob.hash)
            .or_insert_with(|| {
                let device = Device::from_bytes(&blob.bytes).unwrap();
                PreKeyBundle::new(
                    *device.identity_key(),
                    device.signed_prekey(),
                    None,
                    Some(device.last_resort_kem_prekey()),
                )
            })
            .clone()
    }

    /// Runs a device step once per key: `key` covers everything `f` reads
    /// (the acting device's state, its input, the bundles it may fetch), and
    /// seeds its randomness.
    fn step(
        &mut self,
        s: &mut State,
        i: u8,
        key: [u8; 16],
        f: impl FnOnce(&mut Self, &State, &mut Live, &mut ChaCha20Rng) -> Result<(), Violation>,
    ) -> Result<Step, Violation> {
        let step = match self.steps.get(&key) {
            Some(step) => step.clone(),
            None => {
                let mut rng = ChaCha20Rng::from_seed(Sha256::digest(key).into());
                if self.steps.len() > 1 << 20 {
                    // Bounded memory: a cache miss only costs time.
                    self.steps.clear();
                }
                let mut live = Live::new(&s.devices[usize::from(i)]);
                f(self, s, &mut live, &mut rng)?;
                let step = live.finish();
                self.stats.computed += 1;
                self.stats.decrypted += step.decrypted;
                self.stats.new_sessions += step.new_sessions;
                self.stats.retry_requests += step.retry_requests;
                self.stats.rate_limited += step.rate_limited;
                self.stats.tie_breaks[0] += step.tie_breaks[0];
                self.stats.tie_breaks[1] += step.tie_breaks[1];
                self.steps.insert(key, step.clone());
                step
            }
        };
        s.devices[usize::from(i)] = step.device.clone();
        Ok(step)
    }

    /// The key of a device step: the digest of `parts`, and of the time
    /// when it is not NOW (so that the steps of the exploration, and their
    /// random draws, do not depend on whether a run may forge).
    fn key(&self, parts: &[&[u8]]) -> [u8; 16] {
        let now = self.now.to_be_bytes();
        let mut all = parts.to_vec();
        if self.now != NOW {
            all.push(&now);
        }
        digest(&all)
    }

    /// The hash of every device's current prekeys (what a bundle fetch reads).
    fn servers(&self, s: &State) -> Vec<u8> {
        s.devices.iter().flat_map(|d| d.device.hash).collect()
    }

    /// `from` sends a payload to `to` alone, starting a session if the plan
    /// asks.
    fn send_one(&mut self, s: &mut State, from: u8, to: u8) -> Result<InFlight, Violation> {
        let key = self.key(&[
            b"one",
            &[from, to],
            &s.devices[usize::from(from)].hash(),
            &s.devices[usize::from(to)].device.hash,
        ]);
        let step = self.step(s, from, key, |x, s, live, rng| {
            let m = x.unicast(s, live, from, to, rng)?;
            live.step.out.push(m);
            Ok(())
        })?;
        Ok(step.out[0].clone())
    }

    fn unicast(
        &mut self,
        s: &State,
        live: &mut Live,
        from: u8,
        to: u8,
        rng: &mut ChaCha20Rng,
    ) -> Result<InFlight, Violation> {
        let (user, device) = self.devices[usize::from(to)];
        if live
            .record(user)
            .plan_send(self.now)
            .needs_bundle
            .contains(&device)
        {
            let bundle = self.bundle(s, to);
            rec(&mut live.records, &live.dev, user)
                .add_bundle(&live.device, device, bundle, self.now, rng)
                .map_err(|e| Violation(format!("add_bundle: {e}")))?;
        }
        live.dev.counter += 1;
        let id = (from, live.dev.counter);
        let message = live
            .record(user)
            .encrypt_to(device, &payload_of(id), rng)
            .map_err(|e| Violation(format!("encrypt_to: {e}")))?;
        live.dev
            .sent
            .push((hint_bytes(&RetryHint::for_message(&message)), to, id));
        live.dev.sent.sort_unstable();
        Ok(InFlight {
            to,
            from,
            message: Blob::new(message.as_bytes()),
        })
    }

    /// Device `from` sends one application message to every other device
    /// (the fan-out of SPEC §16.3).
    fn send_all(&mut self, s: &mut State, from: u8) -> Result<(), Violation> {
        let key = self.key(&[
            b"all",
            &[from],
            &s.devices[usize::from(from)].hash(),
            &self.servers(s),
        ]);
        let step = self.step(s, from, key, |x, s, live, rng| {
            for u in 0..x.users.len() {
                let plan = live.record(u).plan_send(x.now);
                for device in plan.needs_bundle {
                    let to = x.index_of(u, device);
                    let bundle = x.bundle(s, to);
                    rec(&mut live.records, &live.dev, u)
                        .add_bundle(&live.device, device, bundle, x.now, rng)
                        .map_err(|e| Violation(format!("add_bundle: {e}")))?;
                }
                live.dev.counter += 1;
                let id = (from, live.dev.counter);
                let sent = live
                    .record(u)
                    .encrypt(&payload_of(id), rng)
                    .map_err(|e| Violation(format!("encrypt: {e}")))?;
                if !sent.unusable.is_empty() {
                    return Err(Violation(format!("unusable devices: {:?}", sent.unusable)));
                }
                for o in sent.messages {
                    let to = x.index_of(u, o.device);
                    live.dev
                        .sent
                        .push((hint_bytes(&RetryHint::for_message(&o.message)), to, id));
                    live.dev.sent.sort_unstable();
                    live.step.out.push(InFlight {
                        to,
                        from,
                        message: Blob::new(o.message.as_bytes()),
                    });
                }
            }
            Ok(())
        })?;
        for m in step.out {
            s.push(m);
        }
        Ok(())
    }

    /// Device `m.to` receives `m` and does what the application does with
    /// the outcome; returns the messages it sends in reaction.
    fn deliver(&mut self, s: &mut State, m: &InFlight) -> Result<Vec<InFlight>, Violation> {
        let key = self.key(&[
            b"deliver",
            &[m.to, m.from],
            &s.devices[usize::from(m.to)].hash(),
            &m.message.hash,
            &s.devices[usize::from(m.from)].device.hash,
        ]);
        let verbose = self.verbose;
        let step = self.step(s, m.to, key, |x, s, live, rng| {
            let (from_user, from_device) = x.devices[usize::from(m.from)];
            let message = Message::from_bytes(&m.message.bytes).unwrap();
            let before = rec(&mut live.records, &live.dev, from_user)
                .device(from_device)
                .unwrap();
            let base = RetryHint::for_message(&message).base_key;
            let simultaneous =
                base.is_some() && before.awaiting_reply && before.active_base_key != base;
            let outcome = rec(&mut live.records, &live.dev, from_user).decrypt(
                &mut live.device,
                from_device,
                &message,
                x.now,
            );
            if verbose {
                let kind = if matches!(message, Message::PreKey(_)) {
                    "prekey"
                } else {
                    "ratchet"
                };
                let base = RetryHint::for_message(&message).base_key.map(|b| b[0]);
                match &outcome {
                    Ok(r) => eprintln!(
                        "  {} <- {} {kind} base {base:?}: {:?}",
                        m.to,
                        m.from,
                        r.content()
                    ),
                    Err(f) => eprintln!(
                        "  {} <- {} {kind} base {base:?}: {:?} ({})",
                        m.to, m.from, f.action, f.error
                    ),
                }
            }
            if simultaneous && outcome.is_ok() {
                let after = rec(&mut live.records, &live.dev, from_user)
                    .device(from_device)
                    .unwrap();
                live.step.tie_breaks[usize::from(after.active_base_key != base)] += 1;
            }
            match outcome {
                Ok(received) => match received.content() {
                    Content::Payload(p) => {
                        let id: Id = (p[0], u16::from_be_bytes([p[1], p[2]]));
                        match live.dev.decrypted.binary_search(&id) {
                            Err(at) => live.dev.decrypted.insert(at, id),
                            Ok(_) => {
                                return Err(Violation(format!("message {id:?} decrypted twice")));
                            }
                        }
                        live.step.decrypted += 1;
                    }
                    Content::RetryRequest(hint) => {
                        let key = hint_bytes(hint);
                        let found = live
                            .dev
                            .sent
                            .iter()
                            .find(|(h, to, _)| *h == key && *to == m.from)
                            .map(|(_, _, id)| *id);
                        if let Some(original) = found {
                            live.step.resent = Some(original);
                            let r = x.unicast(s, live, m.to, m.from, rng)?;
                            live.step.out.push(r);
                        }
                    }
                    other => return Err(Violation(format!("unexpected content {other:?}"))),
                },
                Err(failure) => {
                    if let Some(r) = x.act(s, live, m, failure, rng)? {
                        live.step.out.push(r);
                    }
                }
            }
            Ok(())
        })?;
        if step
            .resent
            .is_some_and(|id| s.devices[usize::from(m.from)].decrypted.contains(&id))
        {
            self.stats.resent_delivered += 1;
        }
        Ok(step.out)
    }

    fn act(
        &mut self,
        s: &State,
        live: &mut Live,
        m: &InFlight,
        failure: Failure,
        rng: &mut ChaCha20Rng,
    ) -> Result<Option<InFlight>, Violation> {
        let (from_user, from_device) = self.devices[usize::from(m.from)];
        let message = match failure.action {
            Action::Ignore(Ignore::RecoveryPending) => {
                live.step.rate_limited += 1;
                None
            }
            Action::Ignore(_) => None,
            Action::RetryLater(_) => return Err(Violation(format!("retry later: {failure:?}"))),
            Action::RequestRetry(hint) => {
                live.step.retry_requests += 1;
                Some(
                    live.record(from_user)
                        .request_retry(from_device, &hint, self.now, rng),
                )
            }
            Action::StartNewSession(hint) => {
                live.step.new_sessions += 1;
                let bundle = self.bundle(s, m.from);
                Some(
                    rec(&mut live.records, &live.dev, from_user).start_new_session(
                        &live.device,
                        from_device,
                        bundle,
                        &hint,
                        self.now,
                        rng,
                    ),
                )
            }
        };
        match message {
            None => Ok(None),
            Some(Ok(message)) => Ok(Some(InFlight {
                to: m.from,
                from: m.to,
                message: Blob::new(message.as_bytes()),
            })),
            Some(Err(e)) => Err(Violation(format!("recovery call failed: {e}"))),
        }
    }

    /// Device `i` is restored from `backup`: the application resets the
    /// device's prekeys if the copy is older than it recorded (SPEC §6), and
    /// tells every record (SPEC §16.7).
    fn restore(&mut self, s: &mut State, i: u8, device_bytes: &Blob, records: &[Blob]) {
        let d = &mut s.devices[usize::from(i)];
        let key = digest(&[b"restore", &[i], &d.hash(), &device_bytes.hash]);
        let mut rng = ChaCha20Rng::from_seed(Sha256::digest(key).into());
        let mut restored = Device::from_bytes(&device_bytes.bytes).unwrap();
        if restored.generation() < d.last_device_generation {
            restored
                .reset_prekeys_after_restore(&mut rng, NOW, d.last_device_generation)
                .unwrap();
        }
        d.device = Blob::new(&restored.to_bytes());
        d.last_device_generation = restored.generation();
        for (k, bytes) in records.iter().enumerate() {
            let mut r = PeerRecord::from_bytes(&bytes.bytes).unwrap();
            r.after_restore(d.last_record_generations[k]);
            d.records[k] = Blob::new(&r.to_bytes());
            d.last_record_generations[k] = r.generation();
        }
    }

    fn events(&self, s: &State) -> Vec<Event> {
        let mut events = Vec::new();
        for (i, left) in s.sends_left.iter().enumerate() {
            if *left > 0 {
                events.push(Event::Send(u8::try_from(i).unwrap()));
            }
        }
        for k in 0..s.net.len() {
            if k > 0 && s.net[k].key() == s.net[k - 1].key() {
                continue; // identical copies: one choice
            }
            events.push(Event::Deliver(k));
            if s.drops_left > 0 {
                events.push(Event::Drop(k));
            }
            if s.dups_left > 0 {
                events.push(Event::Dup(k));
            }
            if s.forges_left > 0 {
                events.push(Event::ForgeCopy(k));
                events.push(Event::ForgeRatchet(k));
            }
        }
        match &s.restore {
            Restore::Unused => {
                for i in 0..s.devices.len() {
                    events.push(Event::Backup(u8::try_from(i).unwrap()));
                }
            }
            Restore::Backed { .. } => events.push(Event::Restore),
            Restore::Done => {}
        }
        events
    }

    fn apply(&mut self, s: &State, e: Event) -> Result<State, Violation> {
        let mut s = s.clone();
        match e {
            Event::Send(i) => {
                s.sends_left[usize::from(i)] -= 1;
                self.send_all(&mut s, i)?;
            }
            Event::Deliver(k) => {
                let m = s.net.remove(k);
                for r in self.deliver(&mut s, &m)? {
                    s.push(r);
                }
            }
            Event::Drop(k) => {
                s.net.remove(k);
                s.drops_left -= 1;
            }
            Event::Dup(k) => {
                let m = s.net[k].clone();
                s.push(m);
                s.dups_left -= 1;
            }
            Event::ForgeCopy(k) | Event::ForgeRatchet(k) => {
                let m = &s.net[k];
                let forged = InFlight {
                    to: m.to,
                    from: m.from,
                    message: Blob::new(&forge(&m.message.bytes, e)),
                };
                s.forges_left -= 1;
                let to = usize::from(forged.to);
                let decrypted = s.devices[to].decrypted.len();
                let reactions = self.deliver(&mut s, &forged)?;
                if s.devices[to].decrypted.len() != decrypted {
                    return Err(Violation("a forged message decrypted".into()));
                }
                for r in reactions {
                    s.push(r);
                }
            }
            Event::Backup(i) => {
                let d = &s.devices[usize::from(i)];
                s.restore = Restore::Backed {
                    device: i,
                    device_bytes: d.device.clone(),
                    records: d.records.clone(),
                };
            }
            Event::Restore => {
                let Restore::Backed {
                    device,
                    device_bytes,
                    records,
                } = std::mem::replace(&mut s.restore, Restore::Done)
                else {
                    unreachable!()
                };
                self.restore(&mut s, device, &device_bytes, &records);
            }
        }
        Ok(s)
    }

    /// Delivery resumes: every pair exchanges a round trip over a reliable
    /// network (each message, and every reaction to it, delivered in order),
    /// then both must use the same active session, and a message each way
    /// must decrypt on it without a reaction. In a run that may forge, the
    /// round trip runs MIN_RECOVERY_INTERVAL later.
    fn check(&mut self, s: &State) -> Result<(), Violation> {
        if self.forged && std::env::var("SAME_NOW").is_err() {
            self.now = NOW + MIN_RECOVERY_INTERVAL;
        }
        let checked = self.round_trips(s);
        self.now = NOW;
        checked
    }

    fn round_trips(&mut self, s: &State) -> Result<(), Violation> {
        let mut s = s.clone();
        let n = u8::try_from(s.devices.len()).unwrap();
        for x in 0..n {
            for y in x + 1..n {
                for (a, b) in [(x, y), (y, x)] {
                    let m = self.send_one(&mut s, a, b)?;
                    self.drain(&mut s, m)?;
                }
                let before = (self.active(&s, x, y), self.active(&s, y, x));
                if self.verbose {
                    eprintln!(
                        "  after the round trip {x}-{y}: {:?}",
                        (before.0.map(|b| b[0]), before.1.map(|b| b[0]))
                    );
                }
                if before.0.is_none() || before.0 != before.1 {
                    return Err(Violation(format!(
                        "devices {x} and {y} did not converge within one round trip"
                    )));
                }
                for (a, b) in [(x, y), (y, x)] {
                    let m = self.send_one(&mut s, a, b)?;
                    let decrypted = s.devices[usize::from(b)].decrypted.len();
                    let reactions = self.deliver(&mut s, &m)?;
                    if !reactions.is_empty()
                        || s.devices[usize::from(b)].decrypted.len() != decrypted + 1
                    {
                        return Err(Violation(format!("probe {a} -> {b} did not decrypt")));
                    }
                }
                if (self.active(&s, x, y), self.active(&s, y, x)) != before {
                    return Err(Violation(format!(
                        "probes between {x} and {y} moved a session"
                    )));
                }
            }
        }
        Ok(())
    }

    fn drain(&mut self, s: &mut State, first: InFlight) -> Result<(), Violation> {
        let mut queue = VecDeque::from([first]);
        let mut steps = 0;
        while let Some(m) = queue.pop_front() {
            steps += 1;
            if steps > 64 {
                return Err(Violation("reactions do not settle".into()));
            }
            queue.extend(self.deliver(s, &m)?);
        }
        Ok(())
    }

    fn active(&self, s: &State, of: u8, with: u8) -> Option<[u8; 32]> {
        let (user, device) = self.devices[usize::from(with)];
        let record =
            PeerRecord::from_bytes(&s.devices[usize::from(of)].records[user].bytes).unwrap();
        record.device(device).and_then(|d| d.active_base_key)
    }
}

fn setup(config: &Config, verbose: bool) -> (Explorer, State) {
    let mut rng = ChaCha20Rng::from_seed([config.salt; 32]);
    let users: Vec<UserId> = config
        .users
        .iter()
        .map(|(u, _)| UserId::new(u.as_bytes()).unwrap())
        .collect();
    let mut ids = Vec::new();
    let mut devices = Vec::new();
    for (u, (_, count)) in config.users.iter().enumerate() {
        for id in 1..=*count {
            ids.push((u, DeviceId(id)));
            devices.push(Device::generate(&mut rng, NOW).unwrap());
        }
    }
    let mut lists: BTreeMap<usize, Vec<(DeviceId, sotto::IdentityKey)>> = BTreeMap::new();
    for ((u, id), d) in ids.iter().zip(&devices) {
        lists.entry(*u).or_default().push((*id, *d.identity_key()));
    }
    let mut state = State {
        devices: Vec::new(),
        net: Vec::new(),
        sends_left: (0..devices.len())
            .map(|i| *config.sends.get(i).or(config.sends.last()).unwrap_or(&0))
            .collect(),
        drops_left: config.drops,
        dups_left: config.dups,
        forges_left: config.forges,
        restore: if config.restore {
            Restore::Unused
        } else {
            Restore::Done
        },
    };
    for ((u, id), device) in ids.iter().zip(&devices) {
        let records: Vec<PeerRecord> = users
            .iter()
            .enumerate()
            .map(|(k, user)| {
                let mut r = if k == *u {
                    PeerRecord::new_own(user.clone(), *id, *device.identity_key())
                } else {
                    PeerRecord::new(user.clone(), *device.identity_key())
                };
                r.update_devices(&lists[&k], NOW).unwrap();
                r
            })
            .collect();
        state.devices.push(DevState {
            device: Blob::new(&device.to_bytes()),
            last_device_generation: device.generation(),
            last_record_generations: records.iter().map(PeerRecord::generation).collect(),
            records: records.iter().map(|r| Blob::new(&r.to_bytes())).collect(),
            counter: 0,
            sent: Vec::new(),
            decrypted: Vec::new(),
        });
    }
    let explorer = Explorer {
        users,
        devices: ids,
        stats: Stats::default(),
        bundles: HashMap::new(),
        steps: HashMap::new(),
        verbose,
        forged: config.forges > 0,
        now: NOW,
    };
    (explorer, state)
}

/// Explores every interleaving within `config`'s bound; panics with the
/// path to the first violation.
pub fn explore(config: &Config) -> Stats {
    let started = Instant::now();
    let (mut explorer, state) = setup(config, false);
    let mut visited: HashSet<[u8; 16]> = HashSet::new();
    let mut stack: Vec<(State, Vec<Event>)> = vec![(state, Vec::new())];
    while let Some((s, path)) = stack.pop() {
        if !visited.insert(s.hash()) {
            continue;
        }
        explorer.stats.states += 1;
        explorer.stats.max_depth = explorer.stats.max_depth.max(path.len());
        if s.net.is_empty() {
            explorer.stats.quiescent += 1;
            if let Err(v) = explorer.check(&s) {
                panic!("{}\nafter {path:?}\nconfig {config:?}", v.0);
            }
        }
        for e in explorer.events(&s) {
            explorer.stats.transitions += 1;
            match explorer.apply(&s, e) {
                Ok(next) => {
                    let mut p = path.clone();
                    p.push(e);
                    stack.push((next, p));
                }
                Err(v) => panic!("{}\nafter {path:?} then {e:?}\nconfig {config:?}", v.0),
            }
        }
    }
    let st = &explorer.stats;
    eprintln!(
        "model check {config:?}: {} states ({} quiescent, each checked), {} transitions, depth {}; \
         {} device steps computed: {} decrypts, {} new sessions for recovery, {} retry requests, \
         {} rate-limited, simultaneous initiations {:?} (new won, own kept); \
         {} resends of delivered messages; {:.1?}",
        st.states,
        st.quiescent,
        st.transitions,
        st.max_depth,
        st.computed,
        st.decrypted,
        st.new_sessions,
        st.retry_requests,
        st.rate_limited,
        st.tie_breaks,
        st.resent_delivered,
        started.elapsed()
    );
    explorer.stats
}

/// Replays `path` (as the explorer prints it), showing every delivery.
fn replay(config: &Config, path: &[Event]) {
    let (mut explorer, mut state) = setup(config, true);
    for e in path {
        eprintln!("{e:?}");
        state = explorer.apply(&state, *e).unwrap();
        let n = u8::try_from(state.devices.len()).unwrap();
        for x in 0..n {
            for y in 0..n {
                if x != y {
                    eprint!(
                        "  active {x}->{y}: {:?}",
                        explorer.active(&state, x, y).map(|b| b[0])
                    );
                }
            }
        }
        eprintln!();
    }
    eprintln!("check");
    if let Err(v) = explorer.check(&state) {
        eprintln!("violation: {}", v.0);
    }
}

fn parse_config(spec: &str) -> Config {
    let mut parts = spec.split_whitespace();
    let names = ["alice", "bob", "carol"];
    let users = parts
        .next()
        .unwrap()
        .split(',')
        .zip(names)
        .map(|(n, name)| (name, n.parse().unwrap()))
        .collect();
    let mut config = Config {
        users,
        sends: vec![1],
        drops: 0,
        dups: 0,
        forges: 0,
        restore: false,
        salt: 0,
    };
    for kv in parts {
        let (k, v) = kv.split_once('=').unwrap();
        if k == "sends" {
            config.sends = v.split(',').map(|n| n.parse().unwrap()).collect();
            continue;
        }
        let v: u8 = v.parse().unwrap();
        match k {
            "salt" => config.salt = v,
            "drops" => config.drops = v,
            "dups" => config.dups = v,
            "forges" => config.forges = v,
            "restore" => config.restore = v == 1,
            _ => panic!("unknown key {k}"),
        }
    }
    config
}

fn parse_path(path: &str) -> Vec<Event> {
    path.trim_matches(|c| c == '[' || c == ']')
        .split(", ")
        .map(|e| {
            let (name, arg) = e.split_once('(').unwrap_or((e, ""));
            let arg = arg.trim_end_matches(')');
            match name {
                "Send" => Event::Send(arg.parse().unwrap()),
                "Deliver" => Event::Deliver(arg.parse().unwrap()),
                "Drop" => Event::Drop(arg.parse().unwrap()),
                "Dup" => Event::Dup(arg.parse().unwrap()),
                "ForgeCopy" => Event::ForgeCopy(arg.parse().unwrap()),
                "ForgeRatchet" => Event::ForgeRatchet(arg.parse().unwrap()),
                "Backup" => Event::Backup(arg.parse().unwrap()),
                "Restore" => Event::Restore,
                _ => panic!("unknown event {e}"),
            }
        })
        .collect()
}

/// Explores `spec` under each salt; every state's checks passed if it
/// returns. Returns the states explored in all.
fn check_bound(spec: &str, salts: std::ops::Range<u8>, at_least: usize) -> usize {
    let mut states = 0;
    let mut tie_breaks = [0; 2];
    for salt in salts {
        let mut config = parse_config(spec);
        config.salt = salt;
        let stats = explore(&config);
        assert!(stats.states >= at_least, "{spec} salt {salt}: {stats:?}");
        states += stats.states;
        tie_breaks[0] += stats.tie_breaks[0];
        tie_breaks[1] += stats.tie_breaks[1];
    }
    assert!(
        tie_breaks.iter().all(|n| *n > 0),
        "both tie-break outcomes: {tie_breaks:?}"
    );
    states
}

// The bounds CI runs (SPEC §16.12 gives them with their state counts).
// Two devices of two users: every interleaving of two messages each way
// (simultaneous initiation included), with a stale restore of either side.
#[test]
fn model_check_two_devices_with_a_stale_restore() {
    check_bound("1,1 sends=2 restore=1", 0..1, 15_000);
}

/// Two devices: loss, duplication and reordering of two messages each way.
#[test]
fn model_check_two_devices_with_loss_and_duplication() {
    check_bound("1,1 sends=2 drops=1 dups=1", 0..2, 2_000);
}

/// Two devices: one message each way, loss, duplication and a stale
/// restore together, under four salts (so both tie-break outcomes).
#[test]
fn model_check_two_devices_with_everything() {
    check_bound("1,1 sends=1 drops=1 dups=1 restore=1", 0..4, 1_000);
}

/// Two users with two devices each (own devices included): one device of
/// each user sends to all three others, with a stale restore of any
/// device.
#[test]
fn model_check_two_users_two_devices_with_a_stale_restore() {
    check_bound("2,2 sends=1,0,1,0 restore=1", 0..1, 10_000);
}

/// Two users with two devices each: loss, duplication and reordering.
#[test]
fn model_check_two_users_two_devices_with_loss_and_duplication() {
    check_bound("2,2 sends=1,0,1,0 drops=1 dups=1", 0..1, 10_000);
}

/// Two devices, one message each way (simultaneous initiation included),
/// and two forged messages made from the headers in flight, as anyone can
/// make them: each side may be made to ask the other to switch sessions,
/// crossing in flight, and the pair must still converge (SPEC §16.5: a
/// session is marked as lost only to a smaller base key).
#[test]
fn model_check_two_devices_with_forged_messages() {
    check_bound("1,1 sends=1 forges=2", 0..1, 10_000);
}

/// Two devices: a forged message and a stale restore.
#[test]
fn model_check_two_devices_with_a_forgery_and_a_stale_restore() {
    check_bound("1,1 sends=1 forges=1 restore=1", 0..1, 5_000);
}

/// The larger bounds (minutes each): every fault of the pair model at two
/// messages each way, three of four devices sending, and forged messages
/// with every other fault.
#[test]
#[ignore = "larger bounds: about 29, 1, 1, 1 and 2 minutes (measured on a shared 2-core machine)"]
fn model_check_larger_bounds() {
    check_bound("1,1 sends=2 drops=1 dups=1 restore=1", 0..1, 1_000_000);
    check_bound("2,2 sends=1,1,1,0", 0..1, 100_000);
    check_bound("1,1 sends=2 forges=1", 0..1, 20_000);
    check_bound("2,2 sends=1,0,1,0 forges=1", 0..1, 40_000);
    check_bound(
        "1,1 sends=1 forges=1 drops=1 dups=1 restore=1",
        0..1,
        300_000,
    );
}

/// `MODEL="2,2 sends=1 drops=1 dups=1 restore=1" cargo test --test sessions
/// model_check_env -- --ignored --nocapture` explores any bound;
/// `REPLAY="[...]"` replays a path the explorer printed.
#[test]
#[ignore = "exploration of a bound given in the environment"]
fn model_check_env() {
    let config = parse_config(&std::env::var("MODEL").unwrap_or_else(|_| "1,1 sends=1".into()));
    match std::env::var("REPLAY") {
        Ok(path) => replay(&config, &parse_path(&path)),
        Err(_) => {
            explore(&config);
        }
    }
}
