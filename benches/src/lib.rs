//! Fixtures shared by sotto's criterion benchmarks: sessions brought into a
//! known state before anything is measured, and the message sizes.
//!
//! Bench ids follow `operation/implementation/parameter`, with
//! implementation `sotto`, `vodozemac` or `floor`; `scripts/benchmarks.py`
//! relies on that to build BENCHMARKS.md.
#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use rand_chacha::ChaCha20Rng;
use sotto::{
    Device, KeyAgreementPolicy, Message, PreKeyBundle, PreKeyMessage, Session, StorageKey,
};
pub use testkit::fixtures::Kem;
use testkit::fixtures::{NOW, bundle_with};

/// The policy that lets a handshake with `kem` through: classical only by
/// the explicit opt-in.
pub fn policy(kem: Kem) -> KeyAgreementPolicy {
    if kem == Kem::Classical {
        KeyAgreementPolicy::ClassicalAllowed
    } else {
        KeyAgreementPolicy::PostQuantumRequired
    }
}

/// Plaintext sizes of the per-message benchmarks: a chat line, a paragraph,
/// and a large message well inside `MAX_PLAINTEXT_LEN`.
pub const SIZES: [usize; 3] = [100, 1024, 64 * 1024];

/// Plaintext length of the benchmarks that are not about size.
pub const SMALL: usize = 100;

/// Messages skipped before the skipped-key benchmark decrypts one of them.
/// Small enough for vodozemac's per-chain limit as well.
pub const SKIPPED: u32 = 10;

/// A deterministic RNG, so every run measures the same states.
pub use testkit::rng::seeded as rng;

/// A caller-supplied storage key for the seal/unseal benchmarks.
pub fn storage_key() -> StorageKey {
    StorageKey::from_bytes([0x5a; 32])
}

/// Parses a message as a receiver would, from its wire bytes.
pub fn parse(message: Message) -> Message {
    Message::from_vec(message.into_bytes()).expect("own message parses")
}

/// Two devices and the prekey message that starts a session between them.
pub struct Handshake {
    /// The initiator.
    pub alice: Device,
    /// The responder, before it accepts.
    pub bob: Device,
    /// Bob's bundle, as Alice fetches it (unverified).
    pub bundle: PreKeyBundle,
    /// Alice's first message, parsed.
    pub first: PreKeyMessage,
    /// Alice's side of the session after sending `first`.
    pub alice_session: Session,
}

/// Runs PQXDH once with a one-time prekey and a one-time KEM prekey, up
/// to Alice's first message.
pub fn handshake(rng: &mut ChaCha20Rng) -> Handshake {
    handshake_with(rng, Kem::OneTime)
}

/// Runs the key agreement once with a one-time prekey and the KEM prekey
/// `kem` (classical X3DH under the opt-in for [`Kem::Classical`]), up to
/// Alice's first message.
pub fn handshake_with(rng: &mut ChaCha20Rng, kem: Kem) -> Handshake {
    let alice = Device::generate(rng, NOW).expect("device");
    let mut bob = Device::generate(rng, NOW).expect("device");
    let bundle = bundle_with(rng, &mut bob, true, kem);
    let verified = bundle.clone().verify().expect("own bundle verifies");
    let mut alice_session =
        Session::initiate_with_policy(&alice, rng, &verified, policy(kem)).expect("initiate");
    let first = alice_session
        .encrypt(rng, &[0x41; SMALL])
        .expect("first message");
    let Message::PreKey(first) = parse(first) else {
        panic!("the first message is a prekey message");
    };
    Handshake {
        alice,
        bob,
        bundle,
        first: *first,
        alice_session,
    }
}

/// Two sessions past the handshake, each with a sending chain it has used
/// and a receiving chain for the other's current ratchet key.
pub struct Pair {
    /// Alice's side.
    pub alice: Session,
    /// Bob's side.
    pub bob: Session,
}

/// Sends `message` from `from` to `to` and checks it arrives.
pub fn deliver(rng: &mut ChaCha20Rng, from: &mut Session, to: &mut Session, len: usize) {
    let plaintext = vec![0x42; len];
    let message = parse(from.encrypt(rng, &plaintext).expect("encrypt"));
    assert_eq!(*to.decrypt(&message).expect("decrypt"), *plaintext);
}

/// A session pair on established chains in both directions.
pub fn established(rng: &mut ChaCha20Rng) -> Pair {
    let Handshake {
        mut bob,
        first,
        alice_session: mut alice,
        ..
    } = handshake(rng);
    let (mut bob_session, _) = Session::accept(&mut bob, &first).expect("accept");
    // Two round trips: both sides ratchet, and each has sent on its chain.
    for _ in 0..2 {
        deliver(rng, &mut bob_session, &mut alice, SMALL);
        deliver(rng, &mut alice, &mut bob_session, SMALL);
    }
    deliver(rng, &mut alice, &mut bob_session, SMALL);
    Pair {
        alice,
        bob: bob_session,
    }
}

/// The same states in vodozemac's Olm.
#[cfg(feature = "vodozemac")]
pub mod olm {
    use vodozemac::olm::{Account, OlmMessage, Session, SessionConfig};

    /// An Olm account pair and Alice's first (pre-key) message.
    pub struct Handshake {
        /// The initiator.
        pub alice: Account,
        /// The responder, before it accepts.
        pub bob: Account,
        /// Alice's first message.
        pub first: OlmMessage,
        /// Alice's side of the session after sending `first`.
        pub alice_session: Session,
    }

    /// Publishes one fresh one-time key of `bob`'s and returns it.
    pub fn one_time_key(bob: &mut Account) -> vodozemac::Curve25519PublicKey {
        let _ = bob.generate_one_time_keys(1);
        let key = *bob
            .one_time_keys()
            .values()
            .next()
            .expect("one key was generated");
        bob.mark_keys_as_published();
        key
    }

    /// Olm's handshake up to Alice's first message.
    pub fn handshake() -> Handshake {
        let alice = Account::new();
        let mut bob = Account::new();
        let one_time = one_time_key(&mut bob);
        let mut alice_session = alice
            .create_outbound_session(SessionConfig::version_1(), bob.curve25519_key(), one_time)
            .expect("outbound session");
        let first = alice_session
            .encrypt([0x41; super::SMALL])
            .expect("first message");
        Handshake {
            alice,
            bob,
            first,
            alice_session,
        }
    }

    /// Sends a message from `from` to `to` and checks it arrives.
    pub fn deliver(from: &mut Session, to: &mut Session, len: usize) {
        let plaintext = vec![0x42; len];
        let message = from.encrypt(&plaintext).expect("encrypt");
        assert_eq!(*to.decrypt(&message).expect("decrypt"), *plaintext);
    }

    /// An Olm session pair on established chains in both directions (the
    /// same message pattern as [`super::established`]).
    pub fn established() -> (Session, Session) {
        let Handshake {
            alice,
            mut bob,
            first,
            mut alice_session,
        } = handshake();
        let OlmMessage::PreKey(prekey) = &first else {
            panic!("the first message is a pre-key message");
        };
        let inbound = bob
            .create_inbound_session(SessionConfig::version_1(), alice.curve25519_key(), prekey)
            .expect("inbound session");
        let mut bob_session = inbound.session;
        for _ in 0..2 {
            deliver(&mut bob_session, &mut alice_session, super::SMALL);
            deliver(&mut alice_session, &mut bob_session, super::SMALL);
        }
        deliver(&mut alice_session, &mut bob_session, super::SMALL);
        (alice_session, bob_session)
    }
}

/// The primitives under sotto, called as a caller of the crates would,
/// with sotto's lengths: the building blocks of every floor.
pub mod floor {
    use aes_gcm::aead::{AeadInOut, KeyInit};
    use aes_gcm::{Aes256Gcm, Nonce, Tag};
    use ed25519_dalek::{Signature, VerifyingKey};
    use hkdf::Hkdf;
    use hmac::{Hmac, Mac};
    use sha2::Sha256;
    use x25519_dalek::{PublicKey, StaticSecret};

    use ml_kem::kem::{Decapsulate, KeyExport, KeyInit as KemKeyInit};
    use ml_kem::{DecapsulationKey, EncapsulationKey, MlKem1024};

    // The labels of SPEC §3, as published.
    const L_CHAIN_MESSAGE: &str = "sotto v2 chain message";
    const L_CHAIN_NEXT: &str = "sotto v2 chain next";
    const L_MESSAGE_KEYS: &str = "sotto v2 message keys";
    const L_ROOT: &str = "sotto v2 root";
    const L_SPK: &str = "sotto v2 signed prekey";
    const L_X3DH: &str = "sotto v2 x3dh";
    const L_PQXDH: &str = "sotto v2 pqxdh";
    const L_KEM_BINDING: &str = "sotto v2 kem binding";
    /// ML-KEM-1024's algorithm byte in `EncodeKEM` (SPEC §5.5).
    const KEM_ALG: u8 = 0x01;
    /// The session AD: two identities and the KEM binding (SPEC §7.2).
    const AD_LEN: usize = 32 + 32 + 32;
    /// A ratchet message's header (SPEC §9.1).
    const RATCHET_HEADER_LEN: usize = 58;

    /// AEAD associated data of a pairwise message: the session AD and the
    /// ratchet header.
    pub const MESSAGE_AAD_LEN: usize = AD_LEN + RATCHET_HEADER_LEN;
    /// Signed prekey signature input: label, id, key (SPEC §5.3).
    pub const SIGNED_PREKEY_LEN: usize = L_SPK.len() + 4 + 32;
    /// A KEM prekey's signature input: label, id, kind, algorithm and key
    /// (SPEC §5.5).
    pub const KEM_PREKEY_LEN: usize = b"sotto v2 kem prekey".len() + 4 + 1 + 1 + 1568;

    /// The PQXDH KDF input with a one-time prekey (SPEC §7.2):
    /// `0xFF^32 || DH1 || DH2 || DH3 || DH4 || SS`.
    pub const PQXDH_IKM_LEN: usize = 32 + 4 * 32 + 32;

    /// An ML-KEM-1024 encapsulation key from outside, with the FIPS 203
    /// check (sotto does it when it decodes a bundle).
    pub fn kem_ek(ek: &[u8; 1568]) -> EncapsulationKey<MlKem1024> {
        EncapsulationKey::<MlKem1024>::new(&(*ek).into()).expect("valid key")
    }

    /// `Encaps_internal(ek, m)` on a checked key: ciphertext and secret.
    pub fn kem_encaps(ek: &EncapsulationKey<MlKem1024>, m: &[u8; 32]) -> ([u8; 1568], [u8; 32]) {
        let (ct, ss) = ek.encapsulate_deterministic(&(*m).into());
        (ct.into(), ss.into())
    }

    /// `Decaps` with an expanded key.
    pub fn kem_decaps(dk: &DecapsulationKey<MlKem1024>, ct: &[u8; 1568]) -> [u8; 32] {
        dk.decapsulate(&(*ct).into()).into()
    }

    /// `KB = SHA-256("sotto v2 kem binding" || alg || ek)` (SPEC §7.4).
    pub fn kem_binding(ek: &[u8; 1568]) -> [u8; 32] {
        sha256(&[L_KEM_BINDING.as_bytes(), &[KEM_ALG], ek])
    }

    /// The PQXDH KDF (SPEC §7.2).
    pub fn pqxdh(ikm: &[u8; PQXDH_IKM_LEN]) -> [u8; 32] {
        hkdf::<32>(&[0u8; 32], ikm, L_PQXDH.as_bytes())
    }

    /// ML-KEM-1024 key generation from the 64-byte seed, as the responder
    /// does it for every accept (SPEC §7.3).
    pub fn kem_keygen(seed: &[u8; 64]) -> DecapsulationKey<MlKem1024> {
        <DecapsulationKey<MlKem1024> as KemKeyInit>::new(&(*seed).into())
    }

    /// The encoding of an expanded key's encapsulation key (for the KEM
    /// binding, which the responder computes from its seed).
    pub fn kem_ek_bytes(dk: &DecapsulationKey<MlKem1024>) -> [u8; 1568] {
        dk.encapsulation_key().to_bytes().into()
    }

    /// The encapsulation key of a seed, as bytes.
    pub fn kem_public(seed: &[u8; 64]) -> [u8; 1568] {
        kem_keygen(seed).encapsulation_key().to_bytes().into()
    }

    /// HMAC-SHA256 of `data` under `key`.
    pub fn hmac(key: &[u8; 32], data: &[u8]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// HKDF-SHA256 with `N` bytes out.
    pub fn hkdf<const N: usize>(salt: &[u8], ikm: &[u8], info: &[u8]) -> [u8; N] {
        let mut out = [0u8; N];
        Hkdf::<Sha256>::new(Some(salt), ikm)
            .expand(info, &mut out)
            .expect("short output");
        out
    }

    /// A chain step as two independent HMACs: (message key, next chain key).
    pub fn chain_step(chain_key: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
        (
            hmac(chain_key, L_CHAIN_MESSAGE.as_bytes()),
            hmac(chain_key, L_CHAIN_NEXT.as_bytes()),
        )
    }

    /// A message key's expansion: AES key and nonce from a 16-byte salt.
    pub fn message_keys(salt: &[u8; 16], message_key: &[u8; 32]) -> ([u8; 32], [u8; 12]) {
        let okm = hkdf::<44>(salt, message_key, L_MESSAGE_KEYS.as_bytes());
        let (k, n) = okm.split_at(32);
        (
            k.try_into().expect("32 bytes"),
            n.try_into().expect("12 bytes"),
        )
    }

    /// A root step: HKDF-SHA256 with 64 bytes out.
    pub fn root(root_key: &[u8; 32], dh: &[u8; 32]) -> [u8; 64] {
        hkdf::<64>(root_key, dh, L_ROOT.as_bytes())
    }

    /// The X3DH KDF over the 0xFF prefix and four DH outputs.
    pub fn x3dh(ikm: &[u8; 160]) -> [u8; 32] {
        hkdf::<32>(&[0u8; 32], ikm, L_X3DH.as_bytes())
    }

    /// AES-256-GCM key setup and seal in place.
    pub fn seal(key: &[u8; 32], nonce: &[u8; 12], aad: &[u8], buffer: &mut [u8]) -> Tag {
        Aes256Gcm::new(&(*key).into())
            .encrypt_inout_detached(&Nonce::from(*nonce), aad, buffer.into())
            .expect("short message")
    }

    /// AES-256-GCM key setup and open in place.
    pub fn open(key: &[u8; 32], nonce: &[u8; 12], aad: &[u8], buffer: &mut [u8], tag: &Tag) {
        Aes256Gcm::new(&(*key).into())
            .decrypt_inout_detached(&Nonce::from(*nonce), aad, buffer.into(), tag)
            .expect("authentic");
    }

    /// X25519 key generation from 32 secret bytes.
    pub fn keygen(seed: [u8; 32]) -> (StaticSecret, PublicKey) {
        let secret = StaticSecret::from(seed);
        let public = PublicKey::from(&secret);
        (secret, public)
    }

    /// X25519 Diffie-Hellman.
    pub fn dh(secret: &StaticSecret, public: &PublicKey) -> [u8; 32] {
        secret.diffie_hellman(public).to_bytes()
    }

    /// Ed25519 strict verification.
    pub fn verify(key: &VerifyingKey, message: &[u8], signature: &Signature) {
        key.verify_strict(message, signature).expect("valid");
    }

    /// SHA-256 over the concatenation of `parts`.
    pub fn sha256(parts: &[&[u8]]) -> [u8; 32] {
        use sha2::Digest;
        let mut h = Sha256::new();
        for p in parts {
            h.update(p);
        }
        h.finalize().into()
    }

    /// One message's symmetric work on the sending side: chain step, key
    /// expansion, seal.
    pub fn send(chain_key: &[u8; 32], aad: &[u8], buffer: &mut [u8]) -> Tag {
        let (message_key, _next) = chain_step(chain_key);
        let (key, nonce) = message_keys(&[3; 16], &message_key);
        seal(&key, &nonce, aad, buffer)
    }

    /// The receiving side of [`send`] with the same inputs.
    pub fn receive(chain_key: &[u8; 32], aad: &[u8], buffer: &mut [u8], tag: &Tag) {
        let (message_key, _next) = chain_step(chain_key);
        let (key, nonce) = message_keys(&[3; 16], &message_key);
        open(&key, &nonce, aad, buffer, tag);
    }
}

/// Group fixtures: senders, receivers and far-ahead messages.
pub mod group {
    use rand_chacha::ChaCha20Rng;
    use sotto::group::{GroupId, GroupMessage, GroupReceiver, GroupSender};

    /// A sender and a receiver installed from its distribution at index 0.
    pub fn pair(rng: &mut ChaCha20Rng) -> (GroupSender, GroupReceiver) {
        let owner = sotto::Device::generate(rng, super::NOW).expect("device");
        let group = GroupId::from_bytes([9; 32]);
        let sender = GroupSender::new(rng, group, &owner).expect("sender");
        let receiver =
            GroupReceiver::import_unauthenticated(&group, &sender.distribution().to_bytes())
                .expect("own distribution");
        (sender, receiver)
    }

    /// The message a receiver at index 0 decrypts after a jump to `target`.
    pub fn message_at(
        rng: &mut ChaCha20Rng,
        sender: &GroupSender,
        target: u32,
        plaintext: &[u8],
    ) -> GroupMessage {
        // The sender moved on its saved state's bytes with the reference
        // model's closed form (SPEC §15.4), without sending the messages in
        // between; a wrong result fails the benchmark's setup, where the
        // receiver must decrypt the message.
        testkit::fixtures::sender_at(sender, target)
            .encrypt(rng, plaintext)
            .expect("encrypt")
    }
}

/// Fixtures of the session layer's benchmarks (SPEC §16): peer records in
/// known states, and the sessions inside them as bare `Session`s, byte for
/// byte, so that each layer call is measured against the same session
/// calls on the same states.
pub mod layer {
    use rand_chacha::ChaCha20Rng;
    use sotto::sessions::{Content, DeviceId, PeerRecord, UserId};
    use sotto::{Device, Message, PreKeyBundle, Session};
    use testkit::fixtures::NOW;

    use super::{SMALL, parse};

    /// The device id of Alice's and Bob's one device.
    pub const DEVICE: DeviceId = DeviceId(1);

    /// Alice's record of Bob and Bob's of Alice, one device each.
    pub struct Layer {
        /// Alice's device.
        pub alice: Device,
        /// Bob's device (it accepted Alice's first message).
        pub bob: Device,
        /// Alice's record of Bob.
        pub at_alice: PeerRecord,
        /// Bob's record of Alice.
        pub at_bob: PeerRecord,
    }

    /// The bundle Bob's server hands out: his last-resort KEM prekey.
    pub fn bundle(device: &Device) -> PreKeyBundle {
        PreKeyBundle::new(
            *device.identity_key(),
            device.signed_prekey(),
            None,
            Some(device.last_resort_kem_prekey()),
        )
    }

    fn record(user: &[u8], local: &Device, peer: &Device) -> PeerRecord {
        let user = UserId::new(user).expect("user id");
        let mut record = PeerRecord::new(user, *local.identity_key());
        record
            .update_devices(&[(DEVICE, *peer.identity_key())], NOW)
            .expect("device list");
        record
    }

    /// Sends a payload from `from`'s record to `to`'s and checks it arrives.
    pub fn deliver(
        rng: &mut ChaCha20Rng,
        from: &mut PeerRecord,
        to: &mut PeerRecord,
        to_device: &mut Device,
    ) {
        let message = parse(
            from.encrypt_to(DEVICE, &[0x42; SMALL], rng)
                .expect("encrypt"),
        );
        let received = to
            .decrypt(to_device, DEVICE, &message, NOW)
            .expect("decrypt");
        assert!(matches!(received.content(), Content::Payload(p) if p.len() == SMALL));
    }

    /// Records on established chains in both directions: the message
    /// pattern of [`super::established`], through the layer.
    pub fn established(rng: &mut ChaCha20Rng) -> Layer {
        let alice = Device::generate(rng, NOW).expect("device");
        let mut bob = Device::generate(rng, NOW).expect("device");
        let mut at_alice = record(b"bob", &alice, &bob);
        let mut at_bob = record(b"alice", &bob, &alice);
        at_alice
            .add_bundle(&alice, DEVICE, bundle(&bob), NOW, rng)
            .expect("bundle");
        deliver(rng, &mut at_alice, &mut at_bob, &mut bob);
        let mut alice_device = alice;
        for _ in 0..2 {
            deliver(rng, &mut at_bob, &mut at_alice, &mut alice_device);
            deliver(rng, &mut at_alice, &mut at_bob, &mut bob);
        }
        deliver(rng, &mut at_alice, &mut at_bob, &mut bob);
        Layer {
            alice: alice_device,
            bob,
            at_alice,
            at_bob,
        }
    }

    /// Bob's record with an active session that does not know Alice's next
    /// message, and the archived session it belongs to: Alice writes on
    /// session X (on a new ratchet key, after Bob's reply) while Bob has
    /// just started session A with her. Decrypting it tries A (which fails
    /// after the peer's-next-chain work: DH, root step, AEAD) and then X,
    /// which decrypts and is promoted (SPEC §16.5).
    pub struct Promotion {
        /// Bob's device.
        pub bob: Device,
        /// Bob's record, saved (active A, archived X).
        pub record: Vec<u8>,
        /// Alice's message on X.
        pub message: Message,
        /// A and X as bare session states, from the saved record.
        pub active: Vec<u8>,
        /// X.
        pub archived: Vec<u8>,
    }

    /// Builds [`Promotion`].
    pub fn promotion(rng: &mut ChaCha20Rng) -> Promotion {
        let Layer {
            mut alice,
            mut bob,
            mut at_alice,
            mut at_bob,
        } = established(rng);
        // Bob writes last on X, so Alice's next message has a new key.
        deliver(rng, &mut at_bob, &mut at_alice, &mut alice);
        // Bob starts A (its first message is in flight, not delivered).
        at_bob
            .add_bundle(&bob, DEVICE, bundle(&alice), NOW, rng)
            .expect("bundle");
        let _in_flight = at_bob.encrypt_to(DEVICE, b"on A", rng).expect("encrypt");
        let message = parse(
            at_alice
                .encrypt_to(DEVICE, &[0x42; SMALL], rng)
                .expect("encrypt"),
        );
        let record = at_bob.to_bytes().to_vec();
        let (_, sessions) = sessions_of(&record).into_iter().next().expect("one device");
        let [active, archived] = <[Vec<u8>; 2]>::try_from(sessions).expect("two sessions");
        // The fixture is what it claims: A refuses the message, X reads it,
        // and the layer promotes X.
        let mut a = Session::from_bytes(&active).expect("A");
        let mut x = Session::from_bytes(&archived).expect("X");
        assert!(a.decrypt(&message).is_err());
        assert!(x.decrypt(&message).is_ok());
        let mut check = PeerRecord::from_bytes(&record).expect("record");
        let before = check.device(DEVICE).and_then(|d| d.active_base_key);
        check
            .decrypt(&mut bob, DEVICE, &message, NOW)
            .expect("promotes");
        let after = check.device(DEVICE).and_then(|d| d.active_base_key);
        assert_eq!(after, Some(x.base_key_bytes()));
        assert_ne!(before, after);
        Promotion {
            bob,
            record,
            message,
            active,
            archived,
        }
    }

    /// The active session of a record's one device, as a bare session.
    pub fn active_session(record: &PeerRecord) -> Session {
        let saved = record.to_bytes();
        let (_, sessions) = sessions_of(&saved).into_iter().next().expect("one device");
        Session::from_bytes(sessions.first().expect("an active session")).expect("restore")
    }

    /// The plaintext a bare session encrypts for a layer payload: the frame
    /// byte of an application payload, then the payload (SPEC §16.10).
    pub fn framed(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + payload.len());
        out.push(0x01);
        out.extend_from_slice(payload);
        out
    }

    /// The session states of a saved peer record (SPEC §16.11), per device:
    /// the active one first, then the archived ones newest first. Panics on
    /// anything but a well-formed record (a fixture's own).
    pub fn sessions_of(record: &[u8]) -> Vec<(u32, Vec<Vec<u8>>)> {
        let mut r = Cursor(record);
        assert_eq!(r.take(2), [0x02, 0x25], "a peer record");
        r.take(8 + 32); // generation, local identity
        let user_len = usize::from(r.u8());
        r.take(user_len);
        if r.u8() == 1 {
            r.take(4); // the local device
        }
        let devices = r.u8();
        let mut out = Vec::new();
        for _ in 0..devices {
            let id = r.u32();
            r.take(32); // identity
            r.optional(32); // pending identity
            r.optional(8); // stale since
            r.take(1); // flags
            r.optional(8); // last recovery
            r.take(8 + 1); // retry window, retry count
            if r.u8() == 1 {
                r.take(32 + 4);
                r.optional(32); // the unanswered hint
            }
            let mut sessions = Vec::new();
            if r.u8() == 1 {
                sessions.push(r.entry());
            }
            for _ in 0..r.u8() {
                sessions.push(r.entry());
            }
            out.push((id, sessions));
        }
        // The remembered (deleted) devices: id, identity, pinned, left.
        for _ in 0..r.u8() {
            r.take(4 + 32 + 1 + 8);
        }
        assert!(r.0.is_empty(), "trailing bytes");
        out
    }

    struct Cursor<'a>(&'a [u8]);

    impl<'a> Cursor<'a> {
        fn take(&mut self, n: usize) -> &'a [u8] {
            let (head, rest) = self.0.split_at(n);
            self.0 = rest;
            head
        }

        fn u8(&mut self) -> u8 {
            self.take(1)[0]
        }

        fn u32(&mut self) -> u32 {
            u32::from_be_bytes(self.take(4).try_into().expect("4 bytes"))
        }

        fn optional(&mut self, n: usize) {
            if self.u8() == 1 {
                self.take(n);
            }
        }

        /// A session entry: created, last decrypt, lost-to mark, the state.
        fn entry(&mut self) -> Vec<u8> {
            self.take(8);
            self.optional(8);
            self.optional(32);
            let len = usize::try_from(self.u32()).expect("length");
            self.take(len).to_vec()
        }
    }
}
