//! Fixtures shared by the unit tests: a seeded RNG that records its draws
//! and can fail on a chosen one (SPEC §1), and a checker that every call
//! draws all its randomness before it changes anything.

use alloc::vec::Vec;
use core::fmt;

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng as _, SeedableRng, TryCryptoRng, TryRng};

use crate::error::{Error, Result};
use crate::{Device, Message, PreKeyBundle, PreKeyMessage, Session, VerifiedPreKeyBundle};

/// What the failing RNG reports.
#[derive(Debug)]
pub(crate) struct RngDown;

impl fmt::Display for RngDown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("rng down")
    }
}

impl core::error::Error for RngDown {}

/// A seeded ChaCha20 that records the length of each draw and fails the
/// draw numbered `fail_at` (counting from 0).
pub(crate) struct TestRng {
    inner: ChaCha20Rng,
    fail_at: Option<usize>,
    /// The length of each successful draw, in order.
    pub(crate) draws: Vec<usize>,
    /// The bytes of each successful draw, in order.
    pub(crate) drawn: Vec<Vec<u8>>,
}

impl TestRng {
    pub(crate) fn new(seed: u8) -> Self {
        Self {
            inner: ChaCha20Rng::from_seed([seed; 32]),
            fail_at: None,
            draws: Vec::new(),
            drawn: Vec::new(),
        }
    }

    pub(crate) fn failing_at(seed: u8, draw: usize) -> Self {
        Self {
            fail_at: Some(draw),
            ..Self::new(seed)
        }
    }
}

impl TryRng for TestRng {
    type Error = RngDown;

    fn try_next_u32(&mut self) -> Result<u32, RngDown> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, RngDown> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), RngDown> {
        if self.fail_at == Some(self.draws.len()) {
            return Err(RngDown);
        }
        self.draws.push(dst.len());
        self.inner.fill_bytes(dst);
        self.drawn.push(dst.to_vec());
        Ok(())
    }
}

impl TryCryptoRng for TestRng {}

/// Runs `call` on a fresh `setup()` with a working RNG to learn its draws,
/// then once per draw with an RNG that fails at that draw: each of those
/// runs must fail with `RandomnessUnavailable` and leave `snapshot` (the
/// state's bytes) exactly as it was. Returns the lengths of the draws.
pub(crate) fn fails_cleanly_at_every_draw<S, T>(
    setup: impl Fn() -> S,
    snapshot: impl Fn(&S) -> Vec<u8>,
    call: impl Fn(&mut S, &mut TestRng) -> Result<T>,
) -> Vec<usize> {
    let mut state = setup();
    let mut rng = TestRng::new(0x5a);
    assert!(call(&mut state, &mut rng).is_ok(), "the call succeeds");
    let draws = rng.draws;
    for k in 0..draws.len() {
        let mut state = setup();
        let before = snapshot(&state);
        let mut rng = TestRng::failing_at(0x5a, k);
        let outcome = call(&mut state, &mut rng);
        assert_eq!(
            outcome.err(),
            Some(Error::RandomnessUnavailable),
            "draw {k}"
        );
        assert_eq!(
            snapshot(&state),
            before,
            "state changed when draw {k} failed"
        );
    }
    draws
}

/// Two new devices, Alice's and Bob's, from a seeded RNG.
pub(crate) fn devices(rng: &mut TestRng) -> (Device, Device) {
    (
        Device::generate(rng, 0).unwrap(),
        Device::generate(rng, 0).unwrap(),
    )
}

/// Which KEM prekey a test bundle carries.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kem {
    /// None: a classical bundle.
    Classical,
    /// Bob's current last-resort KEM prekey.
    LastResort,
    /// A new one-time KEM prekey of Bob's.
    OneTime,
}

/// Bob's bundle with his current signed prekey, a new one-time prekey if
/// `one_time`, and the KEM prekey `kem`, verified.
pub(crate) fn bundle_with(
    bob: &mut Device,
    rng: &mut TestRng,
    one_time: bool,
    kem: Kem,
) -> VerifiedPreKeyBundle {
    let opk = if one_time {
        bob.generate_one_time_prekeys(rng, 1)
            .unwrap()
            .first()
            .copied()
    } else {
        None
    };
    let kem = match kem {
        Kem::Classical => None,
        Kem::LastResort => Some(bob.last_resort_kem_prekey()),
        Kem::OneTime => bob.generate_one_time_kem_prekeys(rng, 1).unwrap().pop(),
    };
    PreKeyBundle::new(*bob.identity_key(), bob.signed_prekey(), opk, kem)
        .verify()
        .unwrap()
}

/// Bob's PQXDH bundle with his last-resort KEM prekey and, if asked, a new
/// one-time prekey, verified.
pub(crate) fn bundle(bob: &mut Device, rng: &mut TestRng, one_time: bool) -> VerifiedPreKeyBundle {
    bundle_with(bob, rng, one_time, Kem::LastResort)
}

/// The prekey message in `message`.
pub(crate) fn prekey(message: Message) -> PreKeyMessage {
    match message {
        Message::PreKey(m) => *m,
        Message::Ratchet(_) => panic!("expected a prekey message"),
    }
}

/// A session pair after Alice's first message and Bob's accept: Alice
/// (initiator, awaiting a reply, with a sending chain) and Bob (responder,
/// without a sending chain).
pub(crate) fn sessions(seed: u8) -> (Session, Session) {
    let mut rng = TestRng::new(seed);
    let (alice, mut bob) = devices(&mut rng);
    let bundle = bundle(&mut bob, &mut rng, false);
    let mut to_bob = Session::initiate(&alice, &mut rng, &bundle).unwrap();
    let first = prekey(to_bob.encrypt(&mut rng, b"first").unwrap());
    let (to_alice, _) = Session::accept(&mut bob, &first).unwrap();
    (to_bob, to_alice)
}
