//! One device's application: the protocol state it persists (its
//! `Device`, one record per user, its group session) and the books it
//! keeps beside them, which crashes and restores do not roll back: the
//! generations it recorded (as SPEC §10.1 and §16.7 ask: in a keystore,
//! outside the backup), what it sent (to resend), and the messages it
//! keeps for later.

use std::collections::{BTreeMap, VecDeque};

use rand_chacha::ChaCha20Rng;
use sotto::sessions::{GroupSession, PeerRecord, RetryHint};
use sotto::{Device, StorageKey};
use zeroize::Zeroizing;

use super::{Envelope, Inc};

/// How many sent messages per peer device an application remembers, to
/// resend what a retry request names.
const SENT_LOG: usize = 48;
/// How many messages an application keeps for a later retry.
pub(super) const MAX_KEPT: usize = 32;

/// What an application sent that it can send again.
#[derive(Clone)]
pub(super) enum Resendable {
    Payload(Vec<u8>),
    Distribution,
}

/// A message kept for later (SPEC §16.6 `RetryLater`).
#[derive(Clone)]
pub(super) struct Kept {
    pub(super) envelope: Envelope,
    pub(super) tries: u8,
}

/// The highest generation of each saved object, recorded outside storage.
#[derive(Default, Clone)]
pub(super) struct Keystore {
    pub(super) device: u64,
    pub(super) records: BTreeMap<usize, u64>,
    pub(super) group: u64,
}

/// The saved bytes of a device's protocol state.
pub(super) struct Image {
    pub(super) device: Zeroizing<Vec<u8>>,
    pub(super) records: BTreeMap<usize, Zeroizing<Vec<u8>>>,
    pub(super) group: Option<Zeroizing<Vec<u8>>>,
}

/// A backup: every object sealed under the device's storage key, each
/// bound to its own name.
#[derive(Clone)]
pub(super) struct Backup {
    device: Vec<u8>,
    records: BTreeMap<usize, Vec<u8>>,
    group: Option<Vec<u8>>,
}

pub(super) struct App {
    pub(super) device: Device,
    /// One record per user, the own record included.
    pub(super) records: BTreeMap<usize, PeerRecord>,
    pub(super) group: Option<GroupSession>,
    /// Whether `group` follows the membership: false after the user was
    /// removed (the application was not told), until it rejoins.
    pub(super) in_group: bool,
    pub(super) rng: ChaCha20Rng,
    storage_key: [u8; 32],
    pub(super) keystore: Keystore,
    pub(super) backup: Option<Backup>,
    /// Per peer installation, what was sent to it, newest last.
    pub(super) sent: BTreeMap<Inc, VecDeque<(RetryHint, Resendable)>>,
    pub(super) kept: VecDeque<Kept>,
    pub(super) kept_group: VecDeque<Kept>,
    /// When a distribution was last asked of each device slot.
    pub(super) asked: BTreeMap<usize, u64>,
}

/// A copy through the saved forms, which must give back the same bytes.
impl Clone for App {
    fn clone(&self) -> Self {
        let device = Device::from_bytes(&self.device.to_bytes()).unwrap();
        assert!(*device.to_bytes() == *self.device.to_bytes());
        let records = self
            .records
            .iter()
            .map(|(u, r)| {
                let bytes = r.to_bytes();
                let copy = PeerRecord::from_bytes(&bytes).unwrap();
                assert!(
                    *copy.to_bytes() == *bytes,
                    "a record saved and restored differs"
                );
                (*u, copy)
            })
            .collect();
        let group = self.group.as_ref().map(|g| {
            let bytes = g.to_bytes();
            let copy = GroupSession::from_bytes(&bytes).unwrap();
            assert!(
                *copy.to_bytes() == *bytes,
                "a group saved and restored differs"
            );
            copy
        });
        Self {
            device,
            records,
            group,
            in_group: self.in_group,
            rng: self.rng.clone(),
            storage_key: self.storage_key,
            keystore: self.keystore.clone(),
            backup: self.backup.clone(),
            sent: self.sent.clone(),
            kept: self.kept.clone(),
            kept_group: self.kept_group.clone(),
            asked: self.asked.clone(),
        }
    }
}

fn record_context(user: usize) -> Vec<u8> {
    format!("record/{user}").into_bytes()
}

impl App {
    pub(super) fn new(
        device: Device,
        records: BTreeMap<usize, PeerRecord>,
        rng: ChaCha20Rng,
        storage_key: [u8; 32],
    ) -> Self {
        Self {
            device,
            records,
            group: None,
            in_group: false,
            rng,
            storage_key,
            keystore: Keystore::default(),
            backup: None,
            sent: BTreeMap::new(),
            kept: VecDeque::new(),
            kept_group: VecDeque::new(),
            asked: BTreeMap::new(),
        }
    }

    /// Records the current generations (the application does after every
    /// call; the keystore only ever goes up).
    pub(super) fn note_generations(&mut self) {
        let k = &mut self.keystore;
        k.device = k.device.max(self.device.generation());
        for (u, r) in &self.records {
            let g = k.records.entry(*u).or_default();
            *g = (*g).max(r.generation());
        }
        if let Some(g) = &self.group {
            k.group = k.group.max(g.generation());
        }
    }

    /// The generations of the live objects.
    pub(super) fn generations(&self) -> (u64, BTreeMap<usize, u64>, Option<u64>) {
        (
            self.device.generation(),
            self.records
                .iter()
                .map(|(u, r)| (*u, r.generation()))
                .collect(),
            self.group.as_ref().map(GroupSession::generation),
        )
    }

    pub(super) fn image(&self) -> Image {
        Image {
            device: self.device.to_bytes(),
            records: self
                .records
                .iter()
                .map(|(u, r)| (*u, r.to_bytes()))
                .collect(),
            group: self.group.as_ref().map(GroupSession::to_bytes),
        }
    }

    pub(super) fn take_backup(&mut self) {
        let key = StorageKey::from_bytes(self.storage_key);
        let rng = &mut self.rng;
        let device = self.device.seal(&key, b"device", rng).unwrap();
        let records = self
            .records
            .iter()
            .map(|(u, r)| (*u, r.seal(&key, &record_context(*u), rng).unwrap()))
            .collect();
        let group = self
            .group
            .as_ref()
            .map(|g| g.seal(&key, b"group", rng).unwrap());
        self.backup = Some(Backup {
            device,
            records,
            group,
        });
    }

    /// The backup's plain bytes. Each sealed object opens only under its
    /// own name.
    pub(super) fn open_backup(&self) -> Option<Image> {
        let b = self.backup.as_ref()?;
        let key = StorageKey::from_bytes(self.storage_key);
        assert!(
            Device::unseal(&b.device, &key, b"group").is_err(),
            "a sealed device opened under another name"
        );
        Some(Image {
            device: Device::unseal(&b.device, &key, b"device")
                .unwrap()
                .to_bytes(),
            records: b
                .records
                .iter()
                .map(|(u, s)| {
                    let r = PeerRecord::unseal(s, &key, &record_context(*u)).unwrap();
                    (*u, r.to_bytes())
                })
                .collect(),
            group: b
                .group
                .as_ref()
                .map(|s| GroupSession::unseal(s, &key, b"group").unwrap().to_bytes()),
        })
    }

    /// Remembers a message sent to `to` under `hint`.
    pub(super) fn log_sent(&mut self, to: Inc, hint: RetryHint, what: Resendable) {
        let log = self.sent.entry(to).or_default();
        if log.len() == SENT_LOG {
            log.pop_front();
        }
        log.push_back((hint, what));
    }

    /// What was sent to `to` under `hint`, if remembered.
    pub(super) fn find_sent(&self, to: Inc, hint: &RetryHint) -> Option<Resendable> {
        self.sent
            .get(&to)?
            .iter()
            .rev()
            .find(|(h, _)| h == hint)
            .map(|(_, what)| what.clone())
    }
}
