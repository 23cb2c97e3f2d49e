//! Part one, the session layer (SPEC.md §16): Alice and Bob have a laptop
//! and a phone each. Every device keeps one `PeerRecord` per user, its own
//! user's other devices included, fed with the device lists a server
//! returns. A message goes to every device of both users; a reply; Bob's
//! phone restores its record from a stale backup and recovers by itself,
//! through the actions its failures name; Carol (one device) joins a group
//! that is fanned out through the records, and is removed in one call.
//!
//! The "app" here is a loop over a network queue: every decrypt failure
//! maps to one `Action`, which the loop carries out. A real app also
//! persists every record, device and group after each call that changed it,
//! before it sends or shows anything (SPEC.md §16).

use std::collections::{BTreeMap, VecDeque};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sotto::group::GroupId;
use sotto::sessions::{Action, Content, DeviceId, GroupSession, PeerRecord, RetryHint, UserId};
use sotto::{Device, Message, PreKeyBundle, StorageKey};

const NOW: u64 = 1_700_000_000;
const USERS: [&str; 3] = ["alice", "bob", "carol"];

/// One device and what its app keeps.
struct Phone {
    name: String,
    user: usize,
    id: DeviceId,
    device: Device,
    /// One record per user, the own user included (its other devices).
    records: BTreeMap<usize, PeerRecord>,
    group: Option<GroupSession>,
    /// What it sent, by recipient, to answer retry requests.
    sent: Vec<(usize, Message, Vec<u8>)>,
}

struct World {
    rng: ChaCha20Rng,
    phones: Vec<Phone>,
    /// In flight: (from, to, message).
    network: VecDeque<(usize, usize, Message)>,
}

fn user_id(user: usize) -> UserId {
    UserId::new(USERS[user].as_bytes()).expect("a short name")
}

impl Phone {
    fn new(rng: &mut ChaCha20Rng, user: usize, id: u32, kind: &str) -> Result<Self, sotto::Error> {
        let mut phone = Self {
            name: format!("{}/{kind}", USERS[user]),
            user,
            id: DeviceId(id),
            device: Device::generate(rng, NOW)?,
            records: BTreeMap::new(),
            group: None,
            sent: Vec::new(),
        };
        // A record per user: the own user's is the record of its other
        // devices.
        for other in 0..USERS.len() {
            let local = *phone.device.identity_key();
            let record = if other == user {
                PeerRecord::new_own(user_id(other), phone.id, local)
            } else {
                PeerRecord::new(user_id(other), local)
            };
            phone.records.insert(other, record);
        }
        Ok(phone)
    }

    fn record(&mut self, user: usize) -> &mut PeerRecord {
        self.records.get_mut(&user).expect("a record per user")
    }
}

impl World {
    fn new(layout: &[(usize, u32, &str)]) -> Result<Self, sotto::Error> {
        // Seeded, so every run prints the same; an app uses the OS RNG.
        let mut rng = ChaCha20Rng::from_seed(*b"sotto demo: two users, 4 devices");
        let phones = layout
            .iter()
            .map(|&(user, id, kind)| Phone::new(&mut rng, user, id, kind))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            rng,
            phones,
            network: VecDeque::new(),
        })
    }

    /// The device list the server returns for `user`.
    fn device_list(&self, user: usize) -> Vec<(DeviceId, sotto::IdentityKey)> {
        self.phones
            .iter()
            .filter(|p| p.user == user)
            .map(|p| (p.id, *p.device.identity_key()))
            .collect()
    }

    /// The bundle the server hands out for a device (its last-resort KEM
    /// prekey; a real server also hands out one-time prekeys).
    fn bundle(&self, user: usize, id: DeviceId) -> PreKeyBundle {
        let d = &self.find(user, id).device;
        PreKeyBundle::new(
            *d.identity_key(),
            d.signed_prekey(),
            None,
            Some(d.last_resort_kem_prekey()),
        )
    }

    fn find(&self, user: usize, id: DeviceId) -> &Phone {
        &self.phones[self.index(user, id)]
    }

    fn index(&self, user: usize, id: DeviceId) -> usize {
        self.phones
            .iter()
            .position(|p| p.user == user && p.id == id)
            .expect("a device of the world")
    }

    /// Every device applies its server's lists for `users`.
    fn sync_lists(&mut self, users: &[usize]) -> Result<(), sotto::Error> {
        for i in 0..self.phones.len() {
            for &user in users {
                let list = self.device_list(user);
                let changes = self.phones[i].record(user).update_devices(&list, NOW)?;
                if !changes.added.is_empty() {
                    println!(
                        "  {:12} knows {}'s devices {:?}",
                        self.phones[i].name,
                        USERS[user],
                        changes.added.iter().map(|d| d.0).collect::<Vec<_>>()
                    );
                }
            }
        }
        Ok(())
    }

    /// `from` writes `text` to every device of `users` (itself excluded),
    /// fetching the bundles its records ask for; then the network delivers.
    fn send(&mut self, from: usize, users: &[usize], text: &str) -> Result<(), sotto::Error> {
        println!("\n{} writes {text:?}", self.phones[from].name);
        for &user in users {
            let needs = self.phones[from].records[&user].plan_send(NOW).needs_bundle;
            for id in needs {
                let bundle = self.bundle(user, id);
                let p = &mut self.phones[from];
                let record = p.records.get_mut(&user).expect("a record per user");
                record.add_bundle(&p.device, id, bundle, NOW, &mut self.rng)?;
                println!(
                    "  fetched the bundle of {}/{}: new session",
                    USERS[user], id.0
                );
            }
            let sent = self.phones[from]
                .record(user)
                .encrypt(text.as_bytes(), &mut self.rng)?;
            for unusable in &sent.unusable {
                println!(
                    "  no message for {}/{}: {}",
                    USERS[user], unusable.device.0, unusable.error
                );
            }
            for out in sent.messages {
                let to = self.index(user, out.device);
                self.phones[from]
                    .sent
                    .push((to, out.message.clone(), text.as_bytes().to_vec()));
                self.network.push_back((from, to, out.message));
            }
        }
        self.run()
    }

    /// Delivers everything in flight, and what the deliveries cause.
    fn run(&mut self) -> Result<(), sotto::Error> {
        while let Some((from, to, message)) = self.network.pop_front() {
            self.deliver(from, to, &message)?;
        }
        Ok(())
    }

    fn deliver(&mut self, from: usize, to: usize, message: &Message) -> Result<(), sotto::Error> {
        let (from_user, from_id) = (self.phones[from].user, self.phones[from].id);
        let (from_name, to_name) = (self.phones[from].name.clone(), self.phones[to].name.clone());
        let p = &mut self.phones[to];
        let record = p.records.get_mut(&from_user).expect("a record per user");
        let received = match record.decrypt(&mut p.device, from_id, message, NOW) {
            Ok(received) => received,
            Err(failure) => return self.recover(from, to, failure.action, failure.error),
        };
        match received.content() {
            Content::Payload(payload) => {
                println!(
                    "  {to_name:12} <- {from_name}: {:?}",
                    String::from_utf8_lossy(payload)
                );
            }
            Content::Distribution(_) => {
                let group = p.group.as_mut().expect("a member");
                let outcome = group.install(&p.records[&from_user], &received)?;
                println!("  {to_name:12} <- {from_name}: its group chain ({outcome:?})");
            }
            Content::RetryRequest(hint) => {
                let hint = *hint;
                println!("  {to_name:12} <- {from_name}: a retry request");
                self.resend(to, from, &hint)?;
            }
            Content::DistributionRequest(_) => {
                println!("  {to_name:12} <- {from_name}: asks for the group chain");
            }
        }
        Ok(())
    }

    /// What the app does with a failure's action.
    fn recover(
        &mut self,
        from: usize,
        to: usize,
        action: Action,
        error: sotto::Error,
    ) -> Result<(), sotto::Error> {
        let (from_user, from_id, from_name) = (
            self.phones[from].user,
            self.phones[from].id,
            self.phones[from].name.clone(),
        );
        let what = match action {
            Action::StartNewSession(hint) => {
                format!(
                    "start a new session, asking for message {}",
                    hint.message_number
                )
            }
            Action::RequestRetry(hint) => {
                format!("request a retry of message {}", hint.message_number)
            }
            other => format!("{other:?}"),
        };
        println!(
            "  {:12} <- {from_name}: cannot decrypt ({error}): {what}",
            self.phones[to].name
        );
        let request = match action {
            Action::StartNewSession(hint) => {
                let bundle = self.bundle(from_user, from_id);
                let p = &mut self.phones[to];
                let record = p.records.get_mut(&from_user).expect("a record per user");
                println!(
                    "  {:12} fetches {from_name}'s bundle; its new session's first message asks",
                    p.name
                );
                record.start_new_session(&p.device, from_id, bundle, &hint, NOW, &mut self.rng)?
            }
            Action::RequestRetry(hint) => self.phones[to].record(from_user).request_retry(
                from_id,
                &hint,
                NOW,
                &mut self.rng,
            )?,
            // Dropped, or kept for later: nothing to send.
            _ => return Ok(()),
        };
        self.network.push_back((to, from, request));
        Ok(())
    }

    /// Answers a retry request: finds the message the hint names and sends
    /// its payload again.
    fn resend(&mut self, at: usize, to: usize, hint: &RetryHint) -> Result<(), sotto::Error> {
        let Some((_, _, payload)) = self.phones[at]
            .sent
            .iter()
            .find(|(recipient, m, _)| *recipient == to && hint.matches(m))
            .cloned()
        else {
            println!("  {:12} no longer has that message", self.phones[at].name);
            return Ok(());
        };
        let (user, id) = (self.phones[to].user, self.phones[to].id);
        let p = &mut self.phones[at];
        let message = p.record(user).encrypt_to(id, &payload, &mut self.rng)?;
        println!(
            "  {:12} resends {:?}",
            p.name,
            String::from_utf8_lossy(&payload)
        );
        p.sent.push((to, message.clone(), payload));
        self.network.push_back((at, to, message));
        Ok(())
    }

    /// `from` hands its group chain to every device of `users`.
    fn distribute(&mut self, from: usize, users: &[usize]) -> Result<(), sotto::Error> {
        let p = &mut self.phones[from];
        let group = p.group.as_ref().expect("a member");
        let mut records: Vec<&mut PeerRecord> = p
            .records
            .iter_mut()
            .filter(|(user, _)| users.contains(user))
            .map(|(_, r)| r)
            .collect();
        let fanout = group.distribute(&mut records, &mut self.rng)?;
        self.queue_fanout(from, fanout.users);
        self.run()
    }

    fn queue_fanout(&mut self, from: usize, users: Vec<(UserId, sotto::sessions::Sent)>) {
        for (user, sent) in users {
            let user = USERS
                .iter()
                .position(|u| u.as_bytes() == user.as_bytes())
                .expect("a user of the world");
            for unusable in &sent.unusable {
                println!(
                    "  no chain for {}/{}: {}",
                    USERS[user], unusable.device.0, unusable.error
                );
            }
            for out in sent.messages {
                let to = self.index(user, out.device);
                self.network.push_back((from, to, out.message));
            }
        }
    }

    /// `from` writes to the group; every other device tries to read.
    fn group_send(&mut self, from: usize, text: &str) -> Result<(), sotto::Error> {
        println!("\n{} writes to the group {text:?}", self.phones[from].name);
        let message = self.phones[from]
            .group
            .as_mut()
            .expect("a member")
            .encrypt(text.as_bytes(), &mut self.rng)?;
        let sender = self.phones[from].user;
        for (i, p) in self.phones.iter_mut().enumerate() {
            if i == from {
                continue;
            }
            // The server says which user sent it; the record checks the chain.
            let record = &p.records[&sender];
            match p
                .group
                .as_mut()
                .expect("a member")
                .decrypt(record, &message)
            {
                Ok(read) => println!(
                    "  {:12} reads {:?}",
                    p.name,
                    String::from_utf8_lossy(read.as_bytes())
                ),
                Err(failure) => println!("  {:12} cannot read it: {:?}", p.name, failure.action),
            }
        }
        Ok(())
    }
}

pub(crate) fn run() -> Result<(), sotto::Error> {
    let (alice, bob, carol) = (0, 1, 2);
    let mut world = World::new(&[
        (alice, 1, "laptop"),
        (alice, 2, "phone"),
        (bob, 1, "laptop"),
        (bob, 2, "phone"),
    ])?;
    let (alice_laptop, bob_laptop, bob_phone) = (0, 2, 3);

    println!("== Device lists from the server: every device keeps a record per user");
    world.sync_lists(&[alice, bob])?;
    let numbers: Vec<String> = world
        .phones
        .iter()
        .map(|p| {
            let (other, own) = (&p.records[&(1 - p.user)], &p.records[&p.user]);
            other.safety_number(own).map(|n| n.to_string())
        })
        .collect::<Result<_, _>>()?;
    println!("  safety number of alice and bob, over all four devices:");
    println!("    {}", numbers[0]);
    let same = numbers.iter().all(|n| *n == numbers[0]);
    println!("  the same on all four devices: {same}");

    println!("\n== Fan-out: one message per device, the sender's own other device included");
    world.send(alice_laptop, &[bob, alice], "Hi Bob! (and hi, my phone)")?;
    println!("\n== A reply: Bob's phone starts sessions with the devices it has none with");
    world.send(bob_phone, &[alice, bob], "Hi Alice, from my phone.")?;

    println!("\n== Bob's phone seals a backup of its record of Alice; the talk goes on");
    let storage = StorageKey::from_bytes([0x5a; 32]); // from the platform keystore
    let context = b"record/alice"; // the record's key in the app's store
    let backup = world.phones[bob_phone].records[&alice].seal(&storage, context, &mut world.rng)?;
    world.send(alice_laptop, &[bob, alice], "Lunch tomorrow?")?;
    world.send(bob_laptop, &[alice, bob], "Sure, noon.")?;

    println!("\n== Bob's phone is restored from that backup, and recovers by itself");
    let p = &mut world.phones[bob_phone];
    let last = p.records[&alice].generation(); // the app recorded it outside the backup
    let mut restored = PeerRecord::unseal(&backup, &storage, context)?;
    let stale = restored.generation();
    let deleted = restored.after_restore(last);
    println!(
        "  restored generation {stale} < recorded {last}: {deleted} sessions deleted \
         (they would decrypt twice and reuse message numbers)"
    );
    p.records.insert(alice, restored);
    world.send(alice_laptop, &[bob, alice], "Did your phone get this?")?;
    world.send(bob_phone, &[alice, bob], "Yes, all back.")?;

    println!("\n== Carol (one device) joins; a group of the three users");
    let carol_laptop = world.phones.len();
    let carol_phone = Phone::new(&mut world.rng, carol, 1, "laptop")?;
    world.phones.push(carol_phone);
    // Every device learns Carol's list; Carol's learns Alice's and Bob's.
    world.sync_lists(&[alice, bob, carol])?;
    let group_id = GroupId::from_bytes(*b"sotto demo: lunch group, 3 users");
    for p in &mut world.phones {
        let mut group = GroupSession::new(&mut world.rng, group_id, user_id(p.user), &p.device)?;
        for user in [alice, bob, carol] {
            group.add_member(user_id(user))?;
        }
        p.group = Some(group);
    }
    world.send(carol_laptop, &[alice, bob], "Hello, I'm Carol.")?;
    println!("\n== Every device hands its group chain to every other device, through its records");
    for i in 0..world.phones.len() {
        world.distribute(i, &[alice, bob, carol])?;
    }
    world.group_send(alice_laptop, "Welcome to the lunch group!")?;

    println!(
        "\n== Carol is removed: on each device one call drops her chains, rotates, and re-distributes"
    );
    for i in 0..carol_laptop {
        let p = &mut world.phones[i];
        let group = p.group.as_mut().expect("a member");
        let mut records: Vec<&mut PeerRecord> = p
            .records
            .iter_mut()
            .filter(|(user, _)| **user != carol)
            .map(|(_, r)| r)
            .collect();
        let fanout =
            group.remove_member(&p.device, &user_id(carol), &mut records, &mut world.rng)?;
        let count: usize = fanout.users.iter().map(|(_, s)| s.messages.len()).sum();
        println!(
            "  {:12} rotated; its new chain goes to {count} devices",
            p.name
        );
        world.queue_fanout(i, fanout.users);
    }
    world.run()?;
    world.group_send(alice_laptop, "Carol has left.")?;
    println!("  (Carol holds none of the new chains)");
    world.group_send(carol_laptop, "Can anyone hear me?")?;
    println!("  (no member holds Carol's chain any more)");
    Ok(())
}
