//! The store's rules (SPEC §15.9), one by one with every outcome, the caps
//! per owner and kind, and its generations. Every refused insert leaves every
//! byte of the store as it was.

use alloc::vec::Vec;

use rand_chacha::ChaCha20Rng;

use super::{GROUP, OTHER_GROUP, device, dist, plaintext_from, rng, variant};
use crate::error::Error;
use crate::group::{
    GroupReceivers, GroupSender, InsertOutcome, MAX_CHAINS_PER_SENDER, MAX_GROUP_RECEIVERS,
    MAX_UNAUTHENTICATED_CHAINS_PER_OWNER, MAX_UNAUTHENTICATED_GROUP_CHAINS, Sender,
    SenderKeyDistribution,
};
use crate::{Device, IdentityKey, Result};

fn owners(r: &mut ChaCha20Rng, n: usize) -> Vec<Device> {
    (0..n).map(|_| device(r)).collect()
}

/// Installs `d` as if it came out of a session with `owner`.
fn install(
    store: &mut GroupReceivers,
    owner: &IdentityKey,
    d: &SenderKeyDistribution,
) -> Result<InsertOutcome> {
    store.install(&plaintext_from(owner, &d.to_bytes()))
}

fn import(store: &mut GroupReceivers, d: &SenderKeyDistribution) -> Result<InsertOutcome> {
    store.import_unauthenticated(&d.to_bytes())
}

/// Fails with `expected` and leaves every byte of the store as it was.
fn refused(
    store: &mut GroupReceivers,
    f: impl FnOnce(&mut GroupReceivers) -> Result<InsertOutcome>,
    expected: Error,
) {
    let before = store.to_bytes();
    assert_eq!(f(store), Err(expected));
    assert_eq!(*store.to_bytes(), *before);
}

/// Returns `Unchanged` and leaves every byte of the store as it was.
fn unchanged(
    store: &mut GroupReceivers,
    f: impl FnOnce(&mut GroupReceivers) -> Result<InsertOutcome>,
) {
    let before = store.to_bytes();
    assert_eq!(f(store), Ok(InsertOutcome::Unchanged));
    assert_eq!(*store.to_bytes(), *before);
}

struct Chain {
    owner: IdentityKey,
    device: Device,
    sender: GroupSender,
    rng: ChaCha20Rng,
}

fn chain(seed: u8) -> Chain {
    let mut r = rng(seed);
    let device = device(&mut r);
    let sender = GroupSender::new(&mut r, GROUP, &device).unwrap();
    Chain {
        owner: *device.identity_key(),
        device,
        sender,
        rng: r,
    }
}

impl Chain {
    fn at(&mut self, index: u32) -> SenderKeyDistribution {
        self.sender.advance_for_test(index);
        self.sender.distribution()
    }

    fn message(&mut self) -> crate::group::GroupMessage {
        self.sender.encrypt(&mut self.rng, b"m").unwrap()
    }
}

#[test]
fn rule_1_another_group() {
    let mut c = chain(1);
    let mut store = GroupReceivers::new(OTHER_GROUP);
    let d = c.at(0);
    refused(
        &mut store,
        |s| install(s, &c.owner, &d),
        Error::GroupMismatch,
    );
    refused(&mut store, |s| import(s, &d), Error::GroupMismatch);
    assert_eq!(store.generation(), 0);
}

/// Only the chain's creator, with another owner's help, can bind one chain
/// to two owners; the first owner stays.
#[test]
fn rule_2_1_a_held_chain_keeps_its_owner() {
    let mut c = chain(2);
    let bob_device = device(&mut c.rng);
    let bob = *bob_device.identity_key();
    let as_bob = variant(&c.sender, Some(&bob_device), None);
    assert_eq!(as_bob.chain(), c.sender.chain());
    let (d, d_bob) = (c.at(0), as_bob.distribution());
    for held_authenticated in [true, false] {
        let mut store = GroupReceivers::new(GROUP);
        if held_authenticated {
            install(&mut store, &c.owner, &d).unwrap();
        } else {
            import(&mut store, &d).unwrap();
        }
        refused(
            &mut store,
            |s| install(s, &bob, &d_bob),
            Error::GroupChainConflict,
        );
        refused(&mut store, |s| import(s, &d_bob), Error::GroupChainConflict);
    }
}

#[test]
fn advanced_moves_forward_and_keeps_the_held_cache() {
    let mut c = chain(3);
    let mut store = GroupReceivers::new(GROUP);
    assert_eq!(
        install(&mut store, &{ c.owner }, &c.at(0)),
        Ok(InsertOutcome::Added)
    );
    let mut early = Vec::new();
    for _ in 0..6 {
        early.push(c.message());
    }
    store.decrypt(&early[5]).unwrap();
    let held = store.get(c.sender.chain()).unwrap();
    assert_eq!(
        (
            held.next_index(),
            held.skipped_key_count(),
            held.generation()
        ),
        (6, 5, 1)
    );
    let generation = store.generation();
    c.sender.advance_for_test(10);
    let passed = c.message();

    let later = c.at(20);
    assert_eq!(
        install(&mut store, &c.owner, &later),
        Ok(InsertOutcome::Advanced)
    );
    let held = store.get(c.sender.chain()).unwrap();
    assert_eq!(
        (
            held.next_index(),
            held.skipped_key_count(),
            held.generation()
        ),
        (20, 5, 2)
    );
    assert_eq!(store.generation(), generation + 1);
    // The cached keys still read; what the jump passed does not.
    assert!(store.decrypt(&early[3]).is_ok());
    let before = store.to_bytes();
    assert_eq!(store.decrypt(&passed).err(), Some(Error::DuplicateMessage));
    assert_eq!(*store.to_bytes(), *before);
    assert_eq!(store.get(c.sender.chain()).unwrap().read_index(), 6);
}

/// SPEC §15.9 rule 2.2 (the review's `group_fast_forward`): a member who
/// holds the owner's distribution jumps its ratchet (published labels only)
/// to the last index and hands it over as a forwarded key. The owner's
/// authenticated chain does not move, and reads the owner's next message.
#[test]
fn an_import_never_moves_an_authenticated_chain() {
    let mut c = chain(33);
    let genuine = c.at(0).to_bytes();
    let mut store = GroupReceivers::new(GROUP);
    install(
        &mut store,
        &c.owner,
        &SenderKeyDistribution::from_bytes(&genuine).unwrap(),
    )
    .unwrap();
    let first = c.message();
    store.decrypt(&first).unwrap();
    let forged = {
        let mut b = genuine.to_vec();
        let levels: [u8; 256] = b[dist::LEVELS..].try_into().unwrap();
        let far = super::jumped_levels(&levels, 0, u32::MAX - 1);
        b[dist::INDEX..dist::LEVELS].copy_from_slice(&(u32::MAX - 1).to_be_bytes());
        b[dist::LEVELS..].copy_from_slice(&far);
        b
    };
    // The forged copy is a valid one: a fresh store takes it as an import.
    let mut elsewhere = GroupReceivers::new(GROUP);
    assert_eq!(
        elsewhere.import_unauthenticated(&forged),
        Ok(InsertOutcome::Added)
    );
    assert_eq!(elsewhere.iter().next().unwrap().next_index(), u32::MAX - 1);
    // At the owner's chain it changes nothing, ahead or behind.
    unchanged(&mut store, |s| s.import_unauthenticated(&forged));
    unchanged(&mut store, |s| s.import_unauthenticated(&genuine));
    let held = store.get(c.sender.chain()).unwrap();
    assert_eq!((held.next_index(), held.read_index()), (1, 1));
    let second = c.message();
    let read = store.decrypt(&second).unwrap();
    assert_eq!((read.index(), read.as_bytes()), (1, &b"m"[..]));
    assert_eq!(read.sender(), &Sender::Authenticated(c.owner));
}

#[test]
fn unchanged_when_nothing_is_newer() {
    let mut c = chain(4);
    let mut store = GroupReceivers::new(GROUP);
    let d0 = c.at(0);
    let d20 = c.at(20);
    install(&mut store, &c.owner, &d20).unwrap();
    unchanged(&mut store, |s| install(s, &c.owner, &d20));
    unchanged(&mut store, |s| install(s, &c.owner, &d0));
    unchanged(&mut store, |s| import(s, &d20));
    unchanged(&mut store, |s| import(s, &d0));
    assert_eq!(store.generation(), 1);
}

/// The replay the design review found: an unauthenticated copy was read
/// forward; the owner's own distribution, withheld and taken at an earlier
/// index, then arrives. The chain becomes authenticated and stays where it
/// was: the indices it passed do not become readable again.
#[test]
fn a_withheld_authenticated_copy_does_not_reopen_passed_indices() {
    let mut c = chain(5);
    let mut store = GroupReceivers::new(GROUP);
    let copy = c.at(0);
    let withheld = c.at(10);
    let mut messages = Vec::new();
    for _ in 10..50 {
        messages.push(c.message());
    }
    assert_eq!(import(&mut store, &copy), Ok(InsertOutcome::Added));
    for m in &messages {
        let read = store.decrypt(m).unwrap();
        assert_eq!(read.sender(), &Sender::Unauthenticated { claimed: c.owner });
    }
    assert_eq!(store.get(c.sender.chain()).unwrap().next_index(), 50);
    assert_eq!(
        install(&mut store, &c.owner, &withheld),
        Ok(InsertOutcome::Upgraded)
    );
    let held = store.get(c.sender.chain()).unwrap();
    assert_eq!((held.next_index(), held.read_index()), (50, 50));
    assert_eq!(held.sender(), &Sender::Authenticated(c.owner));
    for m in &messages {
        let before = store.to_bytes();
        assert_eq!(store.decrypt(m).err(), Some(Error::DuplicateMessage));
        assert_eq!(*store.to_bytes(), *before);
    }
    let next = c.message();
    assert_eq!(
        store.decrypt(&next).unwrap().sender(),
        &Sender::Authenticated(c.owner)
    );
    // The authenticated copy again, or the unauthenticated one: unchanged.
    unchanged(&mut store, |s| install(s, &c.owner, &withheld));
    unchanged(&mut store, |s| import(s, &copy));
}

#[test]
fn upgraded_and_advanced_at_once() {
    let mut c = chain(6);
    let mut store = GroupReceivers::new(GROUP);
    let d5 = c.at(5);
    let d20 = c.at(20);
    import(&mut store, &d5).unwrap();
    assert_eq!(
        install(&mut store, &c.owner, &d20),
        Ok(InsertOutcome::Upgraded)
    );
    let held = store.get(c.sender.chain()).unwrap();
    assert_eq!((held.next_index(), held.generation()), (20, 1));
    assert!(held.sender().is_authenticated());
    assert_eq!(store.generation(), 2);
}

/// SPEC §15.9 rule 2.5: an unauthenticated copy on another ratchet (its
/// levels replaced, the signatures still valid) is upgraded in place by the
/// owner's own distribution, whose ratchet it takes.
#[test]
fn an_upgrade_replaces_a_tampered_ratchet_in_place() {
    let mut c = chain(7);
    let other = chain(8);
    let mut store = GroupReceivers::new(GROUP);
    let bogus = variant(&c.sender, None, Some([0x5a; 256])).distribution();
    import(&mut store, &bogus).unwrap();
    import(&mut store, &other.sender.distribution()).unwrap();
    let real = c.at(3);
    assert_eq!(
        install(&mut store, &c.owner, &real),
        Ok(InsertOutcome::Upgraded)
    );
    let chains: Vec<_> = store.iter().map(|r| *r.chain()).collect();
    assert_eq!(chains, [*c.sender.chain(), *other.sender.chain()]);
    let held = store.get(c.sender.chain()).unwrap();
    assert_eq!((held.next_index(), held.generation()), (3, 1));
    assert_eq!(store.generation(), 3);
    let m = c.message();
    assert_eq!(
        store.decrypt(&m).unwrap().sender(),
        &Sender::Authenticated(c.owner)
    );
}

/// SPEC §15.9 rules 2.2 to 2.4 on a copy on another ratchet: only two
/// authenticated copies conflict; an import changes nothing.
#[test]
fn copies_on_another_ratchet() {
    let mut c = chain(9);
    let real = c.at(4);
    let bogus = variant(&c.sender, None, Some([0x33; 256])).distribution();
    let mut store = GroupReceivers::new(GROUP);
    install(&mut store, &c.owner, &real).unwrap();
    unchanged(&mut store, |s| import(s, &bogus));
    refused(
        &mut store,
        |s| install(s, &c.owner, &bogus),
        Error::GroupChainConflict,
    );
    // Unauthenticated held: another import, bogus or genuine, changes
    // nothing; the first import stays.
    let mut store = GroupReceivers::new(GROUP);
    import(&mut store, &bogus).unwrap();
    unchanged(&mut store, |s| import(s, &real));
    let mut store = GroupReceivers::new(GROUP);
    import(&mut store, &real).unwrap();
    unchanged(&mut store, |s| import(s, &bogus));
}

/// The lineage check (rule 2.4) compares all 256 bytes: an authenticated
/// copy with any one level changed, ahead of or behind the held chain, far
/// or near, is refused.
#[test]
fn the_lineage_check_compares_every_level() {
    let mut c = chain(10);
    let near = c.at(3);
    let next = c.at(5);
    let far = c.at(0x1000_0005);
    let owner = c.owner;
    let patched = |d: &SenderKeyDistribution, k: usize| {
        let mut b = d.to_bytes().to_vec();
        b[dist::LEVELS + 32 * k + 31] ^= 1;
        b
    };
    let conflict = |held: &SenderKeyDistribution, b: &[u8]| {
        let mut store = GroupReceivers::new(GROUP);
        install(&mut store, &owner, held).unwrap();
        refused(
            &mut store,
            |s| s.install(&plaintext_from(&owner, b)),
            Error::GroupChainConflict,
        );
        unchanged(&mut store, |s| s.import_unauthenticated(b));
    };
    for k in 0..8 {
        // The later copy is compared whole, near or far.
        conflict(&near, &patched(&far, k));
        conflict(&near, &patched(&next, k));
        // An earlier copy whose levels the jump keeps: 3 -> 5 only steps
        // level 7, so every level of it is compared.
        conflict(&next, &patched(&near, k));
    }
    // 3 -> 0x1000_0005 first moves level 0 and derives every lower level
    // from it: level 0 of the earlier copy is checked, and its lower levels,
    // which the jump replaces, are neither checked nor kept.
    conflict(&far, &patched(&near, 0));
    for k in 1..8 {
        let mut store = GroupReceivers::new(GROUP);
        install(&mut store, &owner, &far).unwrap();
        let b = patched(&near, k);
        unchanged(&mut store, |s| s.install(&plaintext_from(&owner, &b)));
    }
    let mut store = GroupReceivers::new(GROUP);
    install(&mut store, &owner, &near).unwrap();
    unchanged(&mut store, |s| import(s, &far));
    assert_eq!(
        install(&mut store, &owner, &far),
        Ok(InsertOutcome::Advanced)
    );
    assert_eq!(
        store.get(c.sender.chain()).unwrap().next_index(),
        0x1000_0005
    );
}

/// SPEC §15.9 rule 2.5, cache by cache: a forwarded copy whose R_7 was
/// altered (the review's `group_no_recompute`) decrypts a later message,
/// whose jump re-derives R_7, and caches wrong keys for the indices it
/// skipped. The owner's distribution, taken inside that range, upgrades
/// the chain: keys from its index up are recomputed and read, keys below
/// it stay as they were (nothing can check them), and the ratchet stands
/// past everything read.
#[test]
fn an_upgrade_recomputes_the_cached_keys_the_owner_vouches_for() {
    let mut c = chain(34);
    let mut tampered = c.at(0x20).to_bytes().to_vec();
    tampered[dist::LEVELS + 7 * 32] ^= 1;
    // The owner's messages 0x20 ..= 0x27, below the index of its own
    // distribution, and 0x28 ..= 0x30.
    let mut early = Vec::new();
    for _ in 0x20..0x28 {
        early.push(c.message());
    }
    let genuine_0x28 = c.at(0x28);
    let mut skipped = Vec::new();
    for _ in 0x28..0x30 {
        skipped.push(c.message());
    }
    let last = c.message();
    let mut store = GroupReceivers::new(GROUP);
    store.import_unauthenticated(&tampered).unwrap();
    assert_eq!(store.decrypt(&last).unwrap().index(), 0x30);
    // Every cached key is wrong.
    for m in early.iter().chain(&skipped) {
        let before = store.to_bytes();
        assert_eq!(store.decrypt(m).err(), Some(Error::AuthenticationFailed));
        assert_eq!(*store.to_bytes(), *before);
    }
    assert_eq!(
        install(&mut store, &c.owner, &genuine_0x28),
        Ok(InsertOutcome::Upgraded)
    );
    let held = store.get(c.sender.chain()).unwrap();
    assert_eq!(
        (
            held.next_index(),
            held.read_index(),
            held.skipped_key_count()
        ),
        (0x31, 0x31, 16)
    );
    for m in &skipped {
        let read = store.decrypt(m).unwrap();
        assert_eq!(read.sender(), &Sender::Authenticated(c.owner));
    }
    for m in &early {
        assert_eq!(store.decrypt(m).err(), Some(Error::AuthenticationFailed));
    }
    assert_eq!(store.decrypt(&last).err(), Some(Error::DuplicateMessage));
    let next = c.message();
    assert_eq!(store.decrypt(&next).unwrap().index(), 0x31);
}

/// Rule 2.5 when the owner's copy is ahead of everything read: the ratchet
/// is the owner's, at the owner's index, even if the import had been moved
/// further (the review's `group_fast_forward`, with the import first).
#[test]
fn an_upgrade_takes_the_owner_index_when_nothing_later_was_read() {
    let mut c = chain(36);
    let genuine = c.at(7);
    let forged = {
        let mut b = genuine.to_bytes().to_vec();
        let levels: [u8; 256] = b[dist::LEVELS..].try_into().unwrap();
        let far = super::jumped_levels(&levels, 7, u32::MAX - 1);
        b[dist::INDEX..dist::LEVELS].copy_from_slice(&(u32::MAX - 1).to_be_bytes());
        b[dist::LEVELS..].copy_from_slice(&far);
        b
    };
    let mut store = GroupReceivers::new(GROUP);
    store.import_unauthenticated(&forged).unwrap();
    assert_eq!(
        install(&mut store, &c.owner, &genuine),
        Ok(InsertOutcome::Upgraded)
    );
    let held = store.get(c.sender.chain()).unwrap();
    assert_eq!((held.next_index(), held.read_index()), (7, 0));
    let m = c.message();
    assert_eq!(store.decrypt(&m).unwrap().index(), 7);
}

#[test]
fn authenticated_chains_per_owner() {
    let mut r = rng(11);
    let alice = device(&mut r);
    let mut store = GroupReceivers::new(GROUP);
    // Two unauthenticated chains claiming Alice do not count.
    let claims: Vec<_> = (0..2)
        .map(|_| GroupSender::new(&mut r, GROUP, &alice).unwrap())
        .collect();
    for s in &claims {
        import(&mut store, &s.distribution()).unwrap();
    }
    let chains: Vec<_> = (0..=MAX_CHAINS_PER_SENDER)
        .map(|_| GroupSender::new(&mut r, GROUP, &alice).unwrap())
        .collect();
    for s in &chains {
        assert_eq!(
            install(&mut store, alice.identity_key(), &s.distribution()),
            Ok(InsertOutcome::Added)
        );
    }
    assert_eq!(store.len(), 2 + MAX_CHAINS_PER_SENDER);
    assert!(store.get(chains[0].chain()).is_none());
    for s in chains.iter().skip(1).chain(&claims) {
        assert!(store.get(s.chain()).is_some());
    }
}

#[test]
fn unauthenticated_chains_per_claimed_owner_and_in_all() {
    let mut r = rng(12);
    let people = owners(&mut r, 66);
    let alice = &people[0];
    let mut store = GroupReceivers::new(GROUP);
    let own = GroupSender::new(&mut r, GROUP, alice).unwrap();
    install(&mut store, alice.identity_key(), &own.distribution()).unwrap();
    let claims: Vec<_> = (0..=MAX_UNAUTHENTICATED_CHAINS_PER_OWNER)
        .map(|_| GroupSender::new(&mut r, GROUP, alice).unwrap())
        .collect();
    for s in &claims {
        assert_eq!(
            import(&mut store, &s.distribution()),
            Ok(InsertOutcome::Added)
        );
    }
    assert_eq!(store.len(), 1 + MAX_UNAUTHENTICATED_CHAINS_PER_OWNER);
    assert!(store.get(claims[0].chain()).is_none());
    assert!(store.get(own.chain()).is_some());

    // Fill up to 256 unauthenticated chains, four per claimed owner; one more
    // deletes the oldest unauthenticated chain, never Alice's own.
    let mut added = Vec::new();
    'fill: for owner in &people[1..] {
        for _ in 0..MAX_UNAUTHENTICATED_CHAINS_PER_OWNER {
            if store.len() == 1 + MAX_UNAUTHENTICATED_GROUP_CHAINS {
                break 'fill;
            }
            let s = GroupSender::new(&mut r, GROUP, owner).unwrap();
            import(&mut store, &s.distribution()).unwrap();
            added.push(s);
        }
    }
    let oldest = *store.iter().nth(1).unwrap().chain();
    let one_more = GroupSender::new(&mut r, GROUP, &people[65]).unwrap();
    assert_eq!(
        import(&mut store, &one_more.distribution()),
        Ok(InsertOutcome::Added)
    );
    assert_eq!(store.len(), 1 + MAX_UNAUTHENTICATED_GROUP_CHAINS);
    assert!(store.get(&oldest).is_none());
    assert!(store.get(own.chain()).is_some());
    assert!(store.get(one_more.chain()).is_some());
}

/// A store of `MAX_GROUP_RECEIVERS` chains: `unauthenticated` of them
/// unauthenticated (the oldest), the rest authenticated, four per owner.
fn full_store(r: &mut ChaCha20Rng, unauthenticated: usize) -> (GroupReceivers, Vec<GroupSender>) {
    let people = owners(r, MAX_GROUP_RECEIVERS / 4 + 1);
    let mut store = GroupReceivers::new(GROUP);
    let mut senders = Vec::new();
    for n in 0..MAX_GROUP_RECEIVERS {
        let owner = &people[n / 4];
        let s = GroupSender::new(r, GROUP, owner).unwrap();
        let outcome = if n < unauthenticated {
            import(&mut store, &s.distribution())
        } else {
            install(&mut store, owner.identity_key(), &s.distribution())
        };
        assert_eq!(outcome, Ok(InsertOutcome::Added));
        senders.push(s);
    }
    assert_eq!(store.len(), MAX_GROUP_RECEIVERS);
    (store, senders)
}

#[test]
fn a_full_store() {
    let mut r = rng(13);
    let newcomer = device(&mut r);
    let (full, senders) = full_store(&mut r, 3);
    let saved = full.to_bytes();
    let restore = || GroupReceivers::from_bytes(&saved).unwrap();
    let fresh = |r: &mut ChaCha20Rng| GroupSender::new(r, GROUP, &newcomer).unwrap();

    // Authenticated: the oldest unauthenticated chain goes.
    let mut store = restore();
    let s = fresh(&mut r);
    assert_eq!(
        install(&mut store, newcomer.identity_key(), &s.distribution()),
        Ok(InsertOutcome::Added)
    );
    assert!(store.get(senders[0].chain()).is_none());
    assert!(store.get(senders[1].chain()).is_some());
    assert_eq!(store.len(), MAX_GROUP_RECEIVERS);

    // Unauthenticated, with unauthenticated chains held: the oldest of them
    // goes (the closest reading of §15.9 rule 3, see the report).
    let mut store = restore();
    let s = fresh(&mut r);
    assert_eq!(
        import(&mut store, &s.distribution()),
        Ok(InsertOutcome::Added)
    );
    assert!(store.get(senders[0].chain()).is_none());
    assert_eq!(
        store
            .iter()
            .filter(|x| !x.sender().is_authenticated())
            .count(),
        3
    );

    // All authenticated: an authenticated newcomer evicts the oldest chain;
    // an unauthenticated one is refused and evicts nothing.
    let (mut store, senders) = full_store(&mut r, 0);
    let s = fresh(&mut r);
    refused(
        &mut store,
        |x| import(x, &s.distribution()),
        Error::GroupStoreFull,
    );
    assert_eq!(
        install(&mut store, newcomer.identity_key(), &s.distribution()),
        Ok(InsertOutcome::Added)
    );
    assert!(store.get(senders[0].chain()).is_none());
    assert!(store.get(senders[1].chain()).is_some());
    let t = fresh(&mut r);
    refused(
        &mut store,
        |x| import(x, &t.distribution()),
        Error::GroupStoreFull,
    );
}

#[test]
fn remove_owner_deletes_both_kinds() {
    let mut r = rng(14);
    let people = owners(&mut r, 2);
    let mut store = GroupReceivers::new(GROUP);
    for owner in &people {
        let a = GroupSender::new(&mut r, GROUP, owner).unwrap();
        let b = GroupSender::new(&mut r, GROUP, owner).unwrap();
        install(&mut store, owner.identity_key(), &a.distribution()).unwrap();
        import(&mut store, &b.distribution()).unwrap();
    }
    let generation = store.generation();
    assert_eq!(store.remove_owner(people[0].identity_key()), 2);
    assert_eq!(store.generation(), generation + 1);
    assert_eq!(store.remove_owner(people[0].identity_key()), 0);
    assert_eq!(store.generation(), generation + 1);
    assert_eq!(store.len(), 2);
    assert!(
        store
            .iter()
            .all(|x| x.sender().owner() == people[1].identity_key())
    );
}

#[test]
fn decrypt_dispatches_by_group_and_chain() {
    let mut a = chain(15);
    let mut b = chain(16);
    let mut store = GroupReceivers::new(GROUP);
    install(&mut store, &{ a.owner }, &a.at(0)).unwrap();
    let generation = store.generation();
    let before = store.to_bytes();
    assert_eq!(
        store.decrypt(&b.message()).err(),
        Some(Error::UnknownGroupChain)
    );
    let elsewhere = {
        let mut r = rng(17);
        let mut s = GroupSender::new(&mut r, OTHER_GROUP, &a.device).unwrap();
        s.encrypt(&mut r, b"x").unwrap()
    };
    assert_eq!(
        store.decrypt(&elsewhere).err(),
        Some(Error::UnknownGroupChain)
    );
    assert_eq!(*store.to_bytes(), *before);
    install(&mut store, &{ b.owner }, &b.at(0)).unwrap();
    let m = a.message();
    assert_eq!(
        store.decrypt(&m).unwrap().sender(),
        &Sender::Authenticated(a.owner)
    );
    assert_eq!(store.generation(), generation + 2);
    assert_eq!(store.get(a.sender.chain()).unwrap().generation(), 1);
    assert_eq!(store.get(b.sender.chain()).unwrap().generation(), 0);

    // Saved and restored, in order, with marks, positions and caches.
    let _ = b.message();
    let skipped = b.message();
    let last = b.message();
    store.decrypt(&last).unwrap();
    let mut restored = GroupReceivers::from_bytes(&store.to_bytes()).unwrap();
    assert_eq!(*restored.to_bytes(), *store.to_bytes());
    assert_eq!(restored.generation(), store.generation());
    assert_eq!(restored.decrypt(&skipped).unwrap().index(), 2);
}

/// Rule 2.5 on a saved state whose `read` is below cached indices (a state
/// can say so, `read <= next` being its only rule): the ratchet stands at
/// `max(R.next, read)`, the keys below the owner's index stay, those from it
/// to there are recomputed, and those past it go (a receiver caches nothing
/// at or past its next index).
#[test]
fn an_upgrade_drops_cached_keys_past_its_new_index() {
    let mut c = chain(37);
    let genuine_10 = c.at(10);
    let mut store = GroupReceivers::new(GROUP);
    import(&mut store, &genuine_10).unwrap();
    let mut messages = Vec::new();
    for _ in 10..=40 {
        messages.push(c.message());
    }
    store.decrypt(messages.last().unwrap()).unwrap();
    let held = store.get(c.sender.chain()).unwrap();
    assert_eq!(
        (
            held.next_index(),
            held.read_index(),
            held.skipped_key_count()
        ),
        (41, 41, 30)
    );
    // In the saved bytes, read goes down to 20 (in the only receiver).
    let mut bytes = store.to_bytes().to_vec();
    let read_at = super::store_state::FIRST + super::receiver::READ;
    assert_eq!(bytes[read_at..read_at + 4], 41u32.to_be_bytes());
    bytes[read_at..read_at + 4].copy_from_slice(&20u32.to_be_bytes());
    let mut store = GroupReceivers::from_bytes(&bytes).unwrap();
    assert_eq!(
        install(&mut store, &c.owner, &genuine_10),
        Ok(InsertOutcome::Upgraded)
    );
    let held = store.get(c.sender.chain()).unwrap();
    // Cached 10 ..= 39; the owner is at 10, read 20: 10 ..= 19 recomputed,
    // 20 ..= 39 dropped, the ratchet at 20.
    assert_eq!(
        (
            held.next_index(),
            held.read_index(),
            held.skipped_key_count()
        ),
        (20, 20, 10)
    );
    // What the state says it has not read reads, from the cache (10 ..=
    // 19) or the ratchet (20 ..= 40).
    for m in &messages {
        assert_eq!(
            store.decrypt(m).unwrap().sender(),
            &Sender::Authenticated(c.owner)
        );
    }
    assert_eq!(store.get(c.sender.chain()).unwrap().skipped_key_count(), 0);
}
