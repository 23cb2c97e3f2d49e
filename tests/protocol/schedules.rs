//! Property: over random delivery schedules (reordering, loss, duplication,
//! save and restore), every delivered message decrypts exactly once to its
//! plaintext while its chain is remembered, and a failure never changes state.

use proptest::prelude::*;
use sotto::{MAX_RECEIVING_CHAINS, Message, Session};
use testkit::fixtures::{decrypt_checked, devices, prekey, rng};

#[derive(Clone, Debug)]
enum Step {
    Send {
        from_alice: bool,
    },
    Deliver {
        to_alice: bool,
        pick: usize,
        duplicate: bool,
    },
    Drop {
        to_alice: bool,
        pick: usize,
    },
    SaveRestore {
        alice: bool,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => any::<bool>().prop_map(|from_alice| Step::Send { from_alice }),
        4 => (any::<bool>(), any::<usize>(), prop::bool::weighted(0.15))
            .prop_map(|(to_alice, pick, duplicate)| Step::Deliver { to_alice, pick, duplicate }),
        1 => (any::<bool>(), any::<usize>()).prop_map(|(to_alice, pick)| Step::Drop { to_alice, pick }),
        1 => any::<bool>().prop_map(|alice| Step::SaveRestore { alice }),
    ]
}

struct Flight {
    message: Message,
    plaintext: Vec<u8>,
    chain: [u8; 32],
}

struct Side {
    session: Session,
    inbox: Vec<Flight>,
    delivered: Vec<Flight>,
    /// The peer's chains in the order this side first decrypted from them.
    chains_seen: Vec<[u8; 32]>,
}

fn chain_of(m: &Message) -> [u8; 32] {
    match m {
        Message::Ratchet(r) => r.ratchet_key_bytes(),
        Message::PreKey(_) => unreachable!("sessions are established"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn delivery_schedules(seed in any::<u8>(), steps in prop::collection::vec(step(), 1..160)) {
        let mut rng = rng(seed);
        let (alice, mut bob, bundle) = devices(&mut rng);
        let mut a = Session::initiate(&alice, &mut rng, &bundle.verify().unwrap()).unwrap();
        let first = a.encrypt(&mut rng, b"hello").unwrap();
        let first_chain = prekey(&first).ratchet_key_bytes();
        let (mut b, _) = Session::accept(&mut bob, prekey(&first)).unwrap();
        let reply = b.encrypt(&mut rng, b"hi").unwrap();
        a.decrypt(&reply).unwrap();
        // Each side has already decrypted from one of the peer's chains.
        let mut sides = [
            Side { session: a, inbox: Vec::new(), delivered: Vec::new(), chains_seen: vec![chain_of(&reply)] },
            Side { session: b, inbox: Vec::new(), delivered: Vec::new(), chains_seen: vec![first_chain] },
        ];
        let mut counter = 0u32;
        for s in steps {
            match s {
                Step::Send { from_alice } => {
                    let (from, to) = if from_alice { (0, 1) } else { (1, 0) };
                    counter += 1;
                    let plaintext = counter.to_be_bytes().to_vec();
                    let message = sides[from].session.encrypt(&mut rng, &plaintext).unwrap();
                    let chain = chain_of(&message);
                    sides[to].inbox.push(Flight { message, plaintext, chain });
                }
                Step::Deliver { to_alice, pick, duplicate } => {
                    let side = &mut sides[usize::from(!to_alice)];
                    if duplicate && !side.delivered.is_empty() {
                        let f = &side.delivered[pick % side.delivered.len()];
                        prop_assert!(decrypt_checked(&mut side.session, &f.message).is_err());
                    } else if !side.inbox.is_empty() {
                        let f = side.inbox.remove(pick % side.inbox.len());
                        let remembered = match side.chains_seen.iter().position(|c| *c == f.chain) {
                            Some(p) => side.chains_seen.len() - p <= MAX_RECEIVING_CHAINS,
                            None => true,
                        };
                        let result = decrypt_checked(&mut side.session, &f.message);
                        if remembered {
                            prop_assert_eq!(result.as_deref(), Ok(f.plaintext.as_slice()));
                            if !side.chains_seen.contains(&f.chain) {
                                side.chains_seen.push(f.chain);
                            }
                        } else {
                            prop_assert!(result.is_err());
                        }
                        side.delivered.push(f);
                    }
                }
                Step::Drop { to_alice, pick } => {
                    let side = &mut sides[usize::from(!to_alice)];
                    if !side.inbox.is_empty() {
                        side.inbox.remove(pick % side.inbox.len());
                    }
                }
                Step::SaveRestore { alice } => {
                    let side = &mut sides[usize::from(!alice)];
                    let saved = side.session.to_bytes();
                    side.session = Session::from_bytes(&saved).unwrap();
                    prop_assert_eq!(&*saved, &*side.session.to_bytes());
                }
            }
            for side in &sides {
                prop_assert!(side.session.skipped_key_count() <= sotto::MAX_SKIPPED_KEYS);
                prop_assert!(side.session.receiving_chain_count() <= MAX_RECEIVING_CHAINS);
            }
        }
    }
}
