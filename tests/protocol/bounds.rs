//! The session bounds of SPEC.md §8.7 at their real values.
use rand_chacha::ChaCha20Rng;
use sotto::{
    Error, MAX_RECEIVING_CHAINS, MAX_SKIP, MAX_SKIPPED_KEYS, MAX_SKIPPED_KEYS_PER_CHAIN, Message,
    Session,
};
use testkit::fixtures::{decrypt_checked, established, rng};

fn burst(rng: &mut ChaCha20Rng, s: &mut Session, n: u32) -> Vec<Message> {
    (0..n)
        .map(|i| s.encrypt(rng, &i.to_be_bytes()).unwrap())
        .collect()
}

/// One ratchet round trip: Bob replies and Alice reads it, so Alice's next
/// message starts a new chain.
fn turn(rng: &mut ChaCha20Rng, a: &mut Session, b: &mut Session) {
    let r = b.encrypt(rng, b"turn").unwrap();
    a.decrypt(&r).unwrap();
}

#[test]
fn gap_in_chain_at_and_past_max_skip() {
    let mut rng = rng(30);
    let (mut a, mut b) = established(&mut rng);
    let msgs = burst(&mut rng, &mut a, MAX_SKIP + 2);
    // Index MAX_SKIP + 1 would skip MAX_SKIP + 1 keys: one past the bound.
    let past = &msgs[(MAX_SKIP + 1) as usize];
    assert_eq!(
        decrypt_checked(&mut b, past),
        Err(Error::TooFarAhead {
            skipped: u64::from(MAX_SKIP) + 1
        })
    );
    // Index MAX_SKIP skips exactly MAX_SKIP keys: at the bound.
    let at = &msgs[MAX_SKIP as usize];
    assert_eq!(b.decrypt(at).unwrap().as_bytes(), MAX_SKIP.to_be_bytes());
    assert_eq!(b.skipped_key_count(), MAX_SKIP as usize);
    // Now the first one is one step ahead.
    assert_eq!(
        b.decrypt(past).unwrap().as_bytes(),
        (MAX_SKIP + 1).to_be_bytes()
    );
    assert_eq!(b.decrypt(&msgs[0]).unwrap().as_bytes(), 0u32.to_be_bytes());
}

#[test]
fn skip_across_a_ratchet_step_counts_both_chains() {
    let mut rng = rng(31);
    let (mut a, mut b) = established(&mut rng);
    let old = burst(&mut rng, &mut a, 600);
    b.decrypt(&old[0]).unwrap();
    turn(&mut rng, &mut a, &mut b);
    let new = burst(&mut rng, &mut a, 500);
    // 599 left in the old chain + 401 in the new one = 1000: at the bound.
    let before = b.to_bytes();
    assert_eq!(
        b.decrypt(&new[401]).unwrap().as_bytes(),
        401u32.to_be_bytes()
    );
    assert_eq!(b.skipped_key_count(), 599 + 401);
    // Restore and try one past: 599 + 402.
    let mut b2 = Session::from_bytes(&before).unwrap();
    assert_eq!(
        decrypt_checked(&mut b2, &new[402]),
        Err(Error::TooFarAhead { skipped: 1001 })
    );
}

#[test]
fn per_chain_bound_evicts_the_chains_oldest_keys() {
    let mut rng = rng(32);
    let (mut a, mut b) = established(&mut rng);
    let n = u32::try_from(MAX_SKIPPED_KEYS_PER_CHAIN).unwrap();
    let msgs = burst(&mut rng, &mut a, n + 6);
    // Skip exactly the per-chain bound: indices 0..n stored.
    b.decrypt(&msgs[n as usize]).unwrap();
    assert_eq!(b.skipped_key_count(), MAX_SKIPPED_KEYS_PER_CHAIN);
    // Skip 4 more (n+1..n+4): past the bound by 4, so indices 0..4 are evicted.
    b.decrypt(&msgs[(n + 5) as usize]).unwrap();
    assert_eq!(b.skipped_key_count(), MAX_SKIPPED_KEYS_PER_CHAIN);
    for evicted in &msgs[..4] {
        assert_eq!(
            decrypt_checked(&mut b, evicted),
            Err(Error::DuplicateMessage)
        );
    }
    assert_eq!(b.decrypt(&msgs[4]).unwrap().as_bytes(), 4u32.to_be_bytes());
    assert_eq!(
        b.decrypt(&msgs[(n + 1) as usize]).unwrap().as_bytes(),
        (n + 1).to_be_bytes()
    );
}

#[test]
fn total_bound_evicts_the_oldest_keys_first() {
    let mut rng = rng(33);
    let (mut a, mut b) = established(&mut rng);
    let per_chain = u32::try_from(MAX_SKIPPED_KEYS / 2).unwrap();
    // Two chains, each leaving MAX_SKIPPED_KEYS / 2 skipped keys: at the total bound.
    let first = burst(&mut rng, &mut a, per_chain + 1);
    b.decrypt(&first[per_chain as usize]).unwrap();
    turn(&mut rng, &mut a, &mut b);
    let second = burst(&mut rng, &mut a, per_chain + 1);
    b.decrypt(&second[per_chain as usize]).unwrap();
    assert_eq!(b.skipped_key_count(), MAX_SKIPPED_KEYS);
    // One more skipped key, in a third chain: one past the bound.
    turn(&mut rng, &mut a, &mut b);
    let third = burst(&mut rng, &mut a, 2);
    b.decrypt(&third[1]).unwrap();
    assert_eq!(b.skipped_key_count(), MAX_SKIPPED_KEYS);
    // The oldest key (first chain, index 0) is gone; the next oldest is kept.
    assert_eq!(
        decrypt_checked(&mut b, &first[0]),
        Err(Error::DuplicateMessage)
    );
    assert_eq!(b.decrypt(&first[1]).unwrap().as_bytes(), 1u32.to_be_bytes());
    assert_eq!(b.decrypt(&third[0]).unwrap().as_bytes(), 0u32.to_be_bytes());
}

#[test]
fn receiving_chains_are_bounded() {
    let mut rng = rng(34);
    let (mut a, mut b) = established(&mut rng);
    let mut late = Vec::new();
    for _ in 0..MAX_RECEIVING_CHAINS + 1 {
        let msgs = burst(&mut rng, &mut a, 2);
        b.decrypt(&msgs[1]).unwrap();
        late.push(msgs[0].clone());
        turn(&mut rng, &mut a, &mut b);
    }
    assert_eq!(b.receiving_chain_count(), MAX_RECEIVING_CHAINS);
    // The oldest chain was forgotten with its skipped key; the others still work.
    assert_eq!(
        decrypt_checked(&mut b, &late[0]),
        Err(Error::SessionDiverged)
    );
    for m in &late[1..] {
        assert_eq!(b.decrypt(m).unwrap().as_bytes(), 0u32.to_be_bytes());
    }
}
