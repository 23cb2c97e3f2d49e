//! Part two, group messaging with sender keys: Alice, Bob and Carol set up
//! PQXDH sessions, hand each other their sender chains over them (each
//! chain carries a proof of its owner, checked against the session that
//! delivered it), and talk (some messages arrive out of order). Carol tries
//! to pass Alice's chain off as her own and is refused. Then Carol is
//! removed: Alice and Bob rotate their chains and re-distribute them only to
//! each other, and Carol can no longer read the group.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sotto::group::{GroupId, GroupMessage, GroupReceivers, GroupSender, Sender};
use sotto::{Device, Message, PreKeyBundle, Session};

const NAMES: [&str; 3] = ["Alice", "Bob", "Carol"];

struct Member {
    device: Device,
    sender: GroupSender,
    receivers: GroupReceivers,
    /// This member's pairwise session with each other member.
    sessions: [Option<Session>; 3],
}

pub(crate) fn run() -> Result<(), sotto::Error> {
    // Seeded for a reproducible run; an app uses the OS RNG.
    let mut rng = ChaCha20Rng::from_seed([42; 32]);
    let group = GroupId::from_bytes(*b"example group: the three friends");

    let mut members = Vec::new();
    for _ in 0..3 {
        let device = Device::generate(&mut rng, 1_700_000_000)?;
        let sender = GroupSender::new(&mut rng, group, &device)?;
        members.push(Member {
            device,
            sender,
            receivers: GroupReceivers::new(group),
            sessions: [None, None, None],
        });
    }

    println!("1. Pairwise sessions (PQXDH + Double Ratchet) between every two members");
    for (i, j) in [(0, 1), (0, 2), (1, 2)] {
        let one_time = members[j].device.generate_one_time_prekeys(&mut rng, 1)?;
        let bundle = PreKeyBundle::new(
            *members[j].device.identity_key(),
            members[j].device.signed_prekey(),
            one_time.first().copied(),
            Some(members[j].device.last_resort_kem_prekey()),
        );
        let mut outgoing = Session::initiate(&members[i].device, &mut rng, &bundle.verify()?)?;
        let Message::PreKey(first) = outgoing.encrypt(&mut rng, b"hello")? else {
            unreachable!("a new session starts with a prekey message")
        };
        let (incoming, _) = Session::accept(&mut members[j].device, &first)?;
        members[i].sessions[j] = Some(outgoing);
        members[j].sessions[i] = Some(incoming);
        println!("   {} <-> {}", NAMES[i], NAMES[j]);
    }

    println!("2. Everyone sends their sender key to the others, inside the pairwise sessions");
    for from in 0..3 {
        let others: Vec<usize> = (0..3).filter(|&to| to != from).collect();
        distribute(&mut rng, &mut members, from, &others)?;
    }

    println!("3. Group messages: each is encrypted once, for everyone");
    let a1 = send(&mut rng, &mut members, 0, "Lunch at noon?")?;
    let b1 = send(&mut rng, &mut members, 1, "Yes!")?;
    let a2 = send(&mut rng, &mut members, 0, "Great, the usual place.")?;
    let c1 = send(&mut rng, &mut members, 2, "Count me in.")?;
    // Bob gets Alice's second message before her first.
    for (reader, message) in [
        (1, &a2),
        (1, &a1),
        (1, &c1),
        (2, &a1),
        (2, &b1),
        (2, &a2),
        (0, &b1),
        (0, &c1),
    ] {
        read(&mut members, reader, message);
    }
    println!("   Bob receives Alice's first message again (a replay):");
    read(&mut members, 1, &a1);

    println!("   Carol forwards Alice's chain to Bob as if it were hers:");
    let forwarded = members[0].sender.distribution().to_bytes();
    let wire = members[2].sessions[1]
        .as_mut()
        .expect("session")
        .encrypt(&mut rng, &forwarded)?;
    let bob = &mut members[1];
    let inbox = bob.sessions[2].as_mut().expect("session");
    let refused = bob.receivers.receive_distribution(inbox, &wire);
    println!("   Bob's store: {:?}", refused.err());

    println!(
        "4. Carol is removed: Alice and Bob forget her chain, rotate, and re-distribute to each other only"
    );
    let carol = *members[2].device.identity_key();
    for m in &mut members[..2] {
        m.receivers.remove_owner(&carol);
    }
    for (who, other) in [(0, 1), (1, 0)] {
        let old = short(members[who].sender.chain().as_bytes());
        let Member { sender, device, .. } = &mut members[who];
        sender.rotate(&mut rng, device)?;
        println!(
            "   {} rotates: chain {old} -> {}",
            NAMES[who],
            short(members[who].sender.chain().as_bytes())
        );
        distribute(&mut rng, &mut members, who, &[other])?;
    }

    println!("5. After the removal");
    let a3 = send(&mut rng, &mut members, 0, "Just the two of us now.")?;
    let b2 = send(&mut rng, &mut members, 1, "Agreed.")?;
    for (reader, message) in [(1, &a3), (0, &b2), (2, &a3), (2, &b2)] {
        read(&mut members, reader, message);
    }
    Ok(())
}

/// The first bytes of a chain's name, in hex.
fn short(bytes: &[u8; 32]) -> String {
    bytes.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// Sends `from`'s current sender key distribution to each member in `to`
/// over their pairwise session; the receiver decrypts and installs it in
/// one call, tied to that session's identity.
fn distribute(
    rng: &mut ChaCha20Rng,
    members: &mut [Member],
    from: usize,
    to: &[usize],
) -> Result<(), sotto::Error> {
    let distribution = members[from].sender.distribution().to_bytes();
    for &to in to {
        let session = members[from].sessions[to].as_mut().expect("session");
        let wire = session.encrypt(rng, &distribution)?.into_bytes();

        let receiver = &mut members[to];
        let inbox = receiver.sessions[from].as_mut().expect("session");
        let outcome = receiver
            .receivers
            .receive_distribution(inbox, &Message::from_vec(wire)?)?;
        println!(
            "   {} -> {}: chain {} at index {} ({outcome:?})",
            NAMES[from],
            NAMES[to],
            short(members[from].sender.chain().as_bytes()),
            members[from].sender.index()
        );
    }
    Ok(())
}

fn send(
    rng: &mut ChaCha20Rng,
    members: &mut [Member],
    from: usize,
    text: &str,
) -> Result<GroupMessage, sotto::Error> {
    let message = members[from].sender.encrypt(rng, text.as_bytes())?;
    println!(
        "   {} sends #{} on chain {} ({} bytes): {text:?}",
        NAMES[from],
        message.index(),
        short(message.chain().as_bytes()),
        message.as_bytes().len()
    );
    Ok(message)
}

fn read(members: &mut [Member], reader: usize, message: &GroupMessage) {
    // The wire bytes, as a server would deliver them.
    let delivered = GroupMessage::from_bytes(message.as_bytes()).expect("well-formed");
    match members[reader].receivers.decrypt(&delivered) {
        Ok(read) => {
            let from = match read.sender() {
                Sender::Authenticated(identity) => members
                    .iter()
                    .position(|m| m.device.identity_key() == identity)
                    .map_or("someone", |i| NAMES[i]),
                Sender::Unauthenticated { .. } => "someone unauthenticated",
            };
            println!(
                "   {} reads #{} from {from}: {:?}",
                NAMES[reader],
                read.index(),
                String::from_utf8_lossy(read.as_bytes())
            );
        }
        Err(e) => println!(
            "   {} cannot read #{} on chain {}: {e}",
            NAMES[reader],
            message.index(),
            short(message.chain().as_bytes())
        ),
    }
}
