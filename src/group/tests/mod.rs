//! Unit tests of group messaging (SPEC.md §15): the ratchet against a model
//! of §15.4 (`ratchet`), the one-way property attacked from state bytes
//! (`attack`), the encodings of §15.5, §15.6 and §15.11 (`formats`),
//! installing and receiving (§15.7, §15.8: `install`, `receive`), the store's
//! rules (§15.9: `store`) and failing randomness (§15.12: `rng`).

extern crate std;

use alloc::vec::Vec;
use core::fmt;

use rand_chacha::ChaCha20Rng;
use rand_core::{SeedableRng, TryCryptoRng, TryRng};
use zeroize::Zeroizing;

use super::GroupId;
use crate::ratchet::Plaintext;
use crate::{Device, IdentityKey, Message, PreKeyBundle, Session};

mod attack;
mod formats;
mod install;
mod ratchet;
mod receive;
mod rng;
mod store;

pub(super) fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

pub(super) const GROUP: GroupId = GroupId::from_bytes([0x47; 32]);
pub(super) const OTHER_GROUP: GroupId = GroupId::from_bytes([0x48; 32]);

/// A member's device.
pub(super) fn device(rng: &mut ChaCha20Rng) -> Device {
    Device::generate(rng, 0).unwrap()
}

/// An established pairwise session between `a` and `b`: `(a's, b's)`. A
/// hello and a reply have gone through, so later messages are plain ratchet
/// messages.
pub(super) fn connect(rng: &mut ChaCha20Rng, a: &Device, b: &mut Device) -> (Session, Session) {
    let bundle = PreKeyBundle::new(
        *b.identity_key(),
        b.signed_prekey(),
        None,
        Some(b.last_resort_kem_prekey()),
    );
    let mut at_a = Session::initiate(a, rng, &bundle.verify().unwrap()).unwrap();
    let hello = at_a.encrypt(rng, b"hello").unwrap();
    let Message::PreKey(first) = Message::from_bytes(hello.as_bytes()).unwrap() else {
        panic!("the first message is a prekey message")
    };
    let (mut at_b, _) = Session::accept(b, &first).unwrap();
    let reply = at_b.encrypt(rng, b"hi").unwrap();
    at_a.decrypt(&reply).unwrap();
    (at_a, at_b)
}

/// `bytes` encrypted by `from` and parsed as a received message.
pub(super) fn send(rng: &mut ChaCha20Rng, from: &mut Session, bytes: &[u8]) -> Message {
    let message = from.encrypt(rng, bytes).unwrap();
    Message::from_bytes(message.as_bytes()).unwrap()
}

/// What decrypting `message` with `to` hands the application.
pub(super) fn receive(to: &mut Session, message: &Message) -> Plaintext {
    to.decrypt_then(message, |_| Ok(())).unwrap().0
}

/// A plaintext as if a session with `peer` had decrypted `bytes`: for the
/// store's rules, which do not depend on the session beyond its peer.
pub(super) fn plaintext_from(peer: &IdentityKey, bytes: &[u8]) -> Plaintext {
    Plaintext::new(Zeroizing::new(bytes.to_vec()), *peer)
}

/// The failure of [`Budget`].
#[derive(Debug)]
pub(super) struct RngFailed;

impl fmt::Display for RngFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("test RNG failed")
    }
}

impl core::error::Error for RngFailed {}

/// An RNG that hands out `remaining` bytes, then fails: the draw that would
/// go past the budget fills what is left and fails, so every draw position
/// (before a draw, inside it, at its end) can be made to fail.
pub(super) struct Budget {
    inner: ChaCha20Rng,
    remaining: usize,
    /// Sizes of the draws asked for, failed or not.
    pub(super) draws: Vec<usize>,
}

impl Budget {
    pub(super) fn new(seed: u8, remaining: usize) -> Self {
        Self {
            inner: rng(seed),
            remaining,
            draws: Vec::new(),
        }
    }
}

impl TryRng for Budget {
    type Error = RngFailed;

    fn try_next_u32(&mut self) -> Result<u32, RngFailed> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, RngFailed> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), RngFailed> {
        self.draws.push(dst.len());
        let n = dst.len().min(self.remaining);
        self.inner.try_fill_bytes(&mut dst[..n]).unwrap();
        self.remaining -= n;
        if n < dst.len() {
            return Err(RngFailed);
        }
        Ok(())
    }
}

impl TryCryptoRng for Budget {}

/// Offsets in a group message (SPEC §15.5).
pub(super) mod message {
    pub(in super::super) const GROUP: usize = 2;
    pub(in super::super) const CHAIN: usize = GROUP + 32;
    pub(in super::super) const INDEX: usize = CHAIN + 32;
    pub(in super::super) const SALT: usize = INDEX + 4;
    pub(in super::super) const CIPHERTEXT: usize = SALT + 16;
}

/// Offsets in a distribution (SPEC §15.6), the owner being `OWNER_LEN` bytes.
pub(super) mod dist {
    use crate::group::OWNER_LEN;

    pub(in super::super) const GROUP: usize = 2;
    pub(in super::super) const CHAIN: usize = 34;
    pub(in super::super) const OWNER: usize = 66;
    pub(in super::super) const PROOF: usize = OWNER + OWNER_LEN;
    pub(in super::super) const SIGNATURE: usize = PROOF + 64;
    pub(in super::super) const INDEX: usize = SIGNATURE + 64;
    pub(in super::super) const LEVELS: usize = INDEX + 4;
}

/// Offsets in a sender state (SPEC §15.11).
pub(super) mod sender {
    use crate::group::OWNER_LEN;

    pub(in super::super) const GENERATION: usize = 2;
    pub(in super::super) const GROUP: usize = 10;
    pub(in super::super) const OWNER: usize = 42;
    pub(in super::super) const SEED: usize = OWNER + OWNER_LEN;
    pub(in super::super) const PROOF: usize = SEED + 32;
    pub(in super::super) const SIGNATURE: usize = PROOF + 64;
    pub(in super::super) const INDEX: usize = SIGNATURE + 64;
    pub(in super::super) const LEVELS: usize = INDEX + 4;
}

/// Offsets in a receiver state (SPEC §15.11).
pub(super) mod receiver {
    use crate::group::OWNER_LEN;

    pub(in super::super) const GENERATION: usize = 2;
    pub(in super::super) const GROUP: usize = 10;
    pub(in super::super) const CHAIN: usize = 42;
    pub(in super::super) const OWNER: usize = 74;
    pub(in super::super) const FLAG: usize = OWNER + OWNER_LEN;
    pub(in super::super) const NEXT: usize = FLAG + 1;
    pub(in super::super) const READ: usize = NEXT + 4;
    pub(in super::super) const LEVELS: usize = READ + 4;
    pub(in super::super) const COUNT: usize = LEVELS + 256;
}

/// Offsets in a store state (SPEC §15.11): the receivers follow the count,
/// each as a u16 length and the receiver state.
pub(super) mod store_state {
    pub(in super::super) const GENERATION: usize = 2;
    pub(in super::super) const GROUP: usize = GENERATION + 8;
    pub(in super::super) const COUNT: usize = GROUP + 32;
    pub(in super::super) const ENTRIES: usize = COUNT + 2;
    /// The length before each receiver state.
    pub(in super::super) const LENGTH_LEN: usize = 2;
    /// The first receiver state.
    pub(in super::super) const FIRST: usize = ENTRIES + LENGTH_LEN;
}

/// The identity seed in a device state (SPEC §10.3), read through its
/// layout.
pub(super) fn identity_seed(device: &Device) -> [u8; 32] {
    let state = device.to_bytes();
    testkit::layout::device_state(&state).a32(&state, "identity_seed")
}

/// An owner's bytes as they appear inside group encodings: the identity
/// key without its encoding's version and type (SPEC §5.1).
pub(super) fn owner_field(identity: &IdentityKey) -> Vec<u8> {
    identity.as_bytes().to_vec()
}

/// The owner proof of SPEC §15.6 made from the published label with the
/// primitive directly: `Sign(seed, label || group_id || chain || owner)`.
pub(super) fn owner_proof(seed: &[u8; 32], group: &[u8], chain: &[u8], owner: &[u8]) -> [u8; 64] {
    use ed25519_dalek::Signer;
    let mut message = b"sotto v2 group chain owner".to_vec();
    message.extend_from_slice(group);
    message.extend_from_slice(chain);
    message.extend_from_slice(owner);
    ed25519_dalek::SigningKey::from_bytes(seed)
        .sign(&message)
        .to_bytes()
}

/// The owner signature of SPEC §15.6 made from the published label with the
/// primitive directly: `Sign(identity seed, label || group_id || chain)`.
pub(super) fn owner_signature(identity_seed: &[u8; 32], group: &[u8], chain: &[u8]) -> [u8; 64] {
    use ed25519_dalek::Signer;
    let mut message = b"sotto v2 group owner signature".to_vec();
    message.extend_from_slice(group);
    message.extend_from_slice(chain);
    ed25519_dalek::SigningKey::from_bytes(identity_seed)
        .sign(&message)
        .to_bytes()
}

/// 256 bytes of ratchet levels at `from`, jumped to `to` by the model of
/// SPEC §15.4 (published labels only).
pub(super) fn jumped_levels(levels: &[u8; 256], from: u32, to: u32) -> [u8; 256] {
    let mut model = [[0u8; 32]; 8];
    for (k, level) in model.iter_mut().enumerate() {
        level.copy_from_slice(&levels[32 * k..32 * k + 32]);
    }
    ratchet::jump(from, &mut model, to);
    model.as_flattened().try_into().unwrap()
}

/// The chain public key of a seed.
pub(super) fn chain_of(seed: &[u8; 32]) -> [u8; 32] {
    ed25519_dalek::SigningKey::from_bytes(seed)
        .verifying_key()
        .to_bytes()
}

/// A sender state's chain seed, read from its bytes.
pub(super) fn seed_of(state: &[u8]) -> [u8; 32] {
    state[sender::SEED..sender::SEED + 32].try_into().unwrap()
}

/// `sender` rebuilt from its bytes with another owner (and the proof the
/// chain's seed re-signs for it, and that owner's signature) and/or other
/// ratchet levels: the same chain as its creator could make it a second
/// time, with the other owner's help.
pub(super) fn variant(
    sender: &crate::group::GroupSender,
    owner: Option<&Device>,
    levels: Option<[u8; 256]>,
) -> crate::group::GroupSender {
    let mut bytes = sender.to_bytes().to_vec();
    let seed = seed_of(&bytes);
    if let Some(owner) = owner {
        let field = owner_field(owner.identity_key());
        bytes[sender::OWNER..sender::SEED].copy_from_slice(&field);
        let group = bytes[sender::GROUP..sender::GROUP + 32].to_vec();
        let proof = owner_proof(&seed, &group, &chain_of(&seed), &field);
        bytes[sender::PROOF..sender::SIGNATURE].copy_from_slice(&proof);
        let signature = owner_signature(&identity_seed(owner), &group, &chain_of(&seed));
        bytes[sender::SIGNATURE..sender::INDEX].copy_from_slice(&signature);
    }
    if let Some(levels) = levels {
        bytes[sender::LEVELS..sender::LEVELS + 256].copy_from_slice(&levels);
    }
    crate::group::GroupSender::from_bytes(&bytes).unwrap()
}

/// `message` with its bytes changed by `edit`, then signed again with the
/// chain's `seed`: what only the chain's owner could write.
pub(super) fn resigned(
    message: &crate::group::GroupMessage,
    seed: &[u8; 32],
    edit: impl FnOnce(&mut Vec<u8>),
) -> crate::group::GroupMessage {
    use ed25519_dalek::Signer;
    let mut bytes = message.as_bytes().to_vec();
    bytes.truncate(bytes.len() - 64);
    edit(&mut bytes);
    let mut signed = b"sotto v2 group message".to_vec();
    signed.extend_from_slice(&bytes);
    let signature = ed25519_dalek::SigningKey::from_bytes(seed).sign(&signed);
    bytes.extend_from_slice(&signature.to_bytes());
    crate::group::GroupMessage::from_bytes(&bytes).unwrap()
}
