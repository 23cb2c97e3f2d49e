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
    use sha2::{Digest, Sha256};
    use sotto::group::{GroupId, GroupMessage, GroupReceiver, GroupSender};

    type Levels = [[u8; 32]; 8];

    /// SPEC §15.11: a saved sender's index and R_0..R_7.
    const SENDER_INDEX: usize = 234;
    const SENDER_LEVELS: usize = 238;

    fn hash(label: &[u8], extra: &[u8], r: &[u8; 32]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(label);
        h.update(extra);
        h.update(r);
        h.finalize().into()
    }

    fn steps(mut r: [u8; 32], n: u32) -> [u8; 32] {
        for _ in 0..n {
            r = hash(b"sotto v2 group step", &[], &r);
        }
        r
    }

    fn digit(i: u32, k: usize) -> u32 {
        (i >> (4 * (7 - k))) & 0xf
    }

    /// SPEC §15.4's closed form: `R_k(i) = Step^{d_k(i)}(B_k(i))`.
    fn closed_form(initial: &Levels, i: u32) -> Levels {
        let mut bases = [[0u8; 32]; 8];
        for k in 0..8 {
            bases[k] = match (0..k).rev().find(|&h| digit(i, h) != 0) {
                None => initial[k],
                Some(h) => {
                    let m = u8::try_from(k).expect("a level");
                    hash(
                        b"sotto v2 group derive",
                        &[m],
                        &steps(bases[h], digit(i, h) - 1),
                    )
                }
            };
        }
        let mut levels = [[0u8; 32]; 8];
        for k in 0..8 {
            levels[k] = steps(bases[k], digit(i, k));
        }
        levels
    }

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

    /// Moves a saved sender from index 0 to `target` without sending the
    /// messages in between, with the closed form of the ratchet (SPEC.md
    /// §15.4) written out here. Only for setting up jumps too long to send
    /// one by one; a wrong result fails the benchmark's setup, where the
    /// receiver must decrypt the message.
    pub fn jump_sender(sender: &GroupSender, target: u32) -> GroupSender {
        assert_eq!(sender.index(), 0, "the sender is at index 0");
        let mut state = sender.to_bytes().to_vec();
        let mut initial = [[0u8; 32]; 8];
        for (k, level) in initial.iter_mut().enumerate() {
            let at = SENDER_LEVELS + 32 * k;
            level.copy_from_slice(&state[at..at + 32]);
        }
        state[SENDER_INDEX..SENDER_INDEX + 4].copy_from_slice(&target.to_be_bytes());
        for (k, level) in closed_form(&initial, target).iter().enumerate() {
            let at = SENDER_LEVELS + 32 * k;
            state[at..at + 32].copy_from_slice(level);
        }
        GroupSender::from_bytes(&state).expect("valid sender state")
    }

    /// The message a receiver at index 0 decrypts after a jump to `target`.
    pub fn message_at(
        rng: &mut ChaCha20Rng,
        sender: &GroupSender,
        target: u32,
        plaintext: &[u8],
    ) -> GroupMessage {
        jump_sender(sender, target)
            .encrypt(rng, plaintext)
            .expect("encrypt")
    }
}
