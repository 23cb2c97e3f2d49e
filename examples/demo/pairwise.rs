//! Part one: Alice fetches Bob's prekey bundle (with an ML-KEM-1024 prekey),
//! runs PQXDH, and they hold a conversation over a network that reorders and
//! loses messages. A replayed first message, a downgraded bundle and a
//! rolled-back saved state are refused.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sotto::{Device, KeyAgreementPolicy, Message, PreKeyBundle, Session, StorageKey};

fn show(label: &str, bytes: &[u8]) -> String {
    let hex: String = bytes.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("{label} ({} bytes, {hex}...)", bytes.len())
}

pub(crate) fn run() -> Result<(), sotto::Error> {
    // A fixed seed makes the run replayable; a real app passes an OS RNG.
    let mut rng = ChaCha20Rng::from_seed(*b"sotto demo: replay me bit by bit");

    // The caller's clock, for prekey creation times (sotto reads none).
    let now = 1_700_000_000;

    println!("== Devices and prekeys");
    let alice = Device::generate(&mut rng, now)?;
    let mut bob = Device::generate(&mut rng, now)?;
    let published = bob.generate_one_time_prekeys(&mut rng, 3)?;
    let kem_published = bob.generate_one_time_kem_prekeys(&mut rng, 2)?;
    println!("Alice  fingerprint {}", alice.identity_key().fingerprint());
    println!("Bob    fingerprint {}", bob.identity_key().fingerprint());
    println!(
        "Bob publishes signed prekey {}, {} one-time prekeys, last-resort ML-KEM-1024 prekey {} \
         and {} one-time ML-KEM-1024 prekeys",
        bob.signed_prekey().id(),
        published.len(),
        bob.last_resort_kem_prekey().id(),
        kem_published.len()
    );

    println!("\n== The server hands Alice a bundle with a one-time KEM prekey");
    let bundle = PreKeyBundle::new(
        *bob.identity_key(),
        bob.signed_prekey(),
        published.first().copied(),
        kem_published.first().cloned(),
    );
    let wire_bundle = bundle.to_bytes();
    println!("{}", show("bundle", &wire_bundle));
    let verified = PreKeyBundle::from_bytes(&wire_bundle)?.verify()?;
    println!("Alice verifies the signed prekey and KEM prekey signatures: ok");

    println!("\n== A server that strips the KEM prekey gets nowhere");
    let stripped = PreKeyBundle::new(*bob.identity_key(), bob.signed_prekey(), None, None);
    let refused = Session::initiate(&alice, &mut rng, &stripped.verify()?);
    println!("initiate without a KEM prekey: {:?}", refused.err());

    println!("\n== PQXDH: Alice starts the session and writes twice before Bob is online");
    let mut to_bob = Session::initiate(&alice, &mut rng, &verified)?;
    println!("key agreement: {:?}", to_bob.key_agreement());
    let hello = to_bob.encrypt(&mut rng, b"Hi Bob, it's Alice.")?;
    let again = to_bob.encrypt(&mut rng, b"Are you there?")?;
    println!("{}", show("prekey message 1", hello.as_bytes()));
    println!("{}", show("prekey message 2", again.as_bytes()));

    println!("\n== The network reorders: message 2 arrives first and starts Bob's session");
    let Message::PreKey(second) = Message::from_bytes(again.as_bytes())? else {
        unreachable!("the initiator sends prekey messages until a reply")
    };
    let (mut to_alice, text) = Session::accept(&mut bob, &second)?;
    println!(
        "Bob reads: {:?} from {}  (one-time prekeys left: {}, one-time KEM prekeys left: {})",
        String::from_utf8_lossy(&text),
        text.sender().fingerprint(),
        bob.one_time_prekey_count(),
        bob.one_time_kem_prekey_count()
    );
    let replayed = Session::accept(&mut bob, &second);
    println!(
        "The same prekey message accepted again: {:?}",
        replayed.err()
    );
    let text = to_alice.decrypt(&Message::from_bytes(hello.as_bytes())?)?;
    println!(
        "Bob reads the late message 1: {:?}",
        String::from_utf8_lossy(&text)
    );
    println!(
        "Bob's session is with fingerprint {}",
        to_alice.remote_identity().fingerprint()
    );

    println!("\n== Bob replies; the ratchet turns");
    let reply = to_alice.encrypt(&mut rng, b"Hi Alice! Loud and clear.")?;
    let text = to_bob.decrypt(&Message::from_bytes(reply.as_bytes())?)?;
    println!("Alice reads: {:?}", String::from_utf8_lossy(&text));

    println!("\n== Alice sends four messages: #2 is lost, #4 and #3 overtake #1");
    let batch: Vec<Message> = ["one", "two", "three", "four"]
        .iter()
        .map(|t| to_bob.encrypt(&mut rng, t.as_bytes()))
        .collect::<Result<_, _>>()?;
    for i in [3usize, 2, 0] {
        let text = to_alice.decrypt(&Message::from_bytes(batch[i].as_bytes())?)?;
        println!(
            "Bob reads #{}: {:?}  (skipped keys held: {})",
            i + 1,
            String::from_utf8_lossy(&text),
            to_alice.skipped_key_count()
        );
    }
    let replay = to_alice.decrypt(&batch[0]);
    println!("A replay of #1 is refused: {:?}", replay.err());

    println!("\n== Bob seals his session under its record's key, restarts, and keeps going");
    let storage = StorageKey::from_bytes([0x5a; 32]); // from the platform keystore
    let record = b"sessions/alice/1";
    let saved = to_alice.seal(&storage, record, &mut rng)?;
    println!(
        "{} at generation {}",
        show("sealed session", &saved),
        to_alice.generation()
    );
    let elsewhere = Session::unseal(&saved, &storage, b"sessions/carol/1");
    println!("opened under another record's key: {:?}", elsewhere.err());
    let mut to_alice = Session::unseal(&saved, &storage, record)?;
    let later = to_alice.encrypt(&mut rng, b"Back after a restart.")?;
    let text = to_bob.decrypt(&later)?;
    println!("Alice reads: {:?}", String::from_utf8_lossy(&text));

    println!("\n== A tampered message is rejected and changes nothing");
    let mut bytes = to_alice.encrypt(&mut rng, b"tamper with me")?.into_bytes();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let before = to_bob.to_bytes();
    let result = to_bob.decrypt(&Message::from_bytes(&bytes)?);
    println!(
        "decrypt: {:?}; state unchanged: {}",
        result.err(),
        *before == *to_bob.to_bytes()
    );

    println!("\n== Classical X3DH only by an explicit opt-in, recorded in the session");
    let classical = PreKeyBundle::new(
        *bob.identity_key(),
        bob.signed_prekey(),
        published.get(1).copied(),
        None,
    )
    .verify()?;
    let legacy = Session::initiate_with_policy(
        &alice,
        &mut rng,
        &classical,
        KeyAgreementPolicy::ClassicalAllowed,
    )?;
    println!("key agreement: {:?}", legacy.key_agreement());
    Ok(())
}
