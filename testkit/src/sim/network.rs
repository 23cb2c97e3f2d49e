//! What the network and the attacker do to envelopes: delivery order,
//! drops, duplicates and corruption; replays, cross-session deliveries,
//! forgeries of every header field, cross-chain and cross-group messages,
//! and receivers forged from the ratchets a party holds.

use std::ops::Range;

use sotto::Error;
use sotto::MAX_PLAINTEXT_LEN;
use sotto::group::{GroupMessage, GroupReceiver, GroupSender};
use sotto::rand_core::Rng;

use super::world::World;
use super::{Choices, Envelope, GROUP, GroupHonest, OTHER_GROUP, Payload};
use crate::fuzz::sign_group;
use crate::layout;

/// Fields of a group message (SPEC §15.5), from its layout: group id,
/// chain, index, salt, ciphertext and tag, signature.
fn group_fields(bytes: &[u8]) -> [Range<usize>; 6] {
    let l = layout::group_message(bytes);
    [
        l.range("group_id"),
        l.range("chain"),
        l.range("index"),
        l.range("salt"),
        l.start("ciphertext")..l.end_of("tag"),
        l.range("signature"),
    ]
}

impl World {
    pub(super) fn deliver_one(&mut self, c: &mut impl Choices) {
        if self.in_flight.is_empty() {
            return;
        }
        // Mostly oldest-first with random overtaking, so reordering is
        // frequent but no envelope waits forever.
        let index = if c.chance(70) {
            0
        } else {
            c.below(self.in_flight.len())
        };
        let envelope = self.in_flight.remove(index);
        match c.below(100) {
            0..=2 => self.stats.dropped += 1,
            3..=5 => {
                self.stats.duplicated += 1;
                let at = c.below(self.in_flight.len() + 1);
                self.in_flight.insert(at, envelope.clone());
                self.deliver(envelope);
            }
            6..=8 => {
                self.stats.corrupted += 1;
                let tampered = self.tamper(envelope, c);
                self.deliver(tampered);
            }
            _ => self.deliver(envelope),
        }
    }

    /// Changes one byte, or truncates, or appends. Every byte of a message is
    /// authenticated, so the result is never an honest message.
    fn tamper(&mut self, mut envelope: Envelope, c: &mut impl Choices) -> Envelope {
        let bytes = envelope.payload.bytes_mut();
        match c.below(8) {
            0 => {
                let len = c.below(bytes.len());
                bytes.truncate(len);
            }
            1 => bytes.push(c.nonzero_byte()),
            _ => {
                let at = c.below(bytes.len());
                bytes[at] ^= c.nonzero_byte();
            }
        }
        Envelope {
            honest: None,
            ..envelope
        }
    }

    pub(super) fn attack(&mut self, c: &mut impl Choices) {
        if self.archive.is_empty() {
            return;
        }
        let original = self.archive[c.below(self.archive.len())].clone();
        match c.below(3) {
            0 => {
                // Replay to the right receiver: the ledger and model decide.
                self.stats.replayed += 1;
                self.deliver(original);
            }
            1 if matches!(original.payload, Payload::Group(_)) => {
                // A group message is the same message for everyone: handing
                // it to another party is reordering, not forgery.
                self.stats.cross_session += 1;
                let to = c.below(self.parties.len());
                self.deliver(Envelope { to, ..original });
            }
            1 => {
                self.stats.cross_session += 1;
                let (from, to) = self.pair(c);
                if (from, to) == (original.from, original.to) {
                    return;
                }
                self.deliver(Envelope {
                    from,
                    to,
                    honest: None,
                    ..original
                });
            }
            _ => {
                self.stats.forged += 1;
                let original_group = original.group().cloned();
                let Payload::Pairwise(mut bytes) = original.payload else {
                    let mut forged = original;
                    let bytes = forged.payload.bytes_mut();
                    // Any field: group id, chain id, index, salt, ciphertext
                    // and tag, or signature.
                    let which = c.below(6);
                    let field = group_fields(bytes)[which].clone();
                    let at = field.start + c.below(field.len());
                    bytes[at] ^= c.nonzero_byte();
                    // A sender gone bad re-signs the altered message with
                    // the real chain seed: it must still fail past the
                    // signature (another group, another index's key, the tag).
                    if which != 5
                        && c.chance(50)
                        && let Some(h) = original_group.as_ref()
                    {
                        let seed = self.chains[&h.chain_id].seed;
                        let body = bytes.len() - 64;
                        *bytes = sign_group(&seed, &bytes[..body]);
                    }
                    self.stats.group_forged += 1;
                    self.deliver(Envelope {
                        honest: None,
                        ..forged
                    });
                    return;
                };
                // Rewrite one field of the ratchet header or the body: a new
                // ratchet key, other counters, another salt or ciphertext;
                // of a prekey message, now and then its KEM ciphertext.
                let r = layout::ratchet_part(&bytes);
                let key = r.range("ratchet_key");
                let field = match (c.below(6), layout::message(&bytes).get("ct")) {
                    (0, _) => key.clone(),
                    (1, _) => r.range("pn"),
                    (2, _) => r.range("n"),
                    (3, _) => r.range("salt"),
                    (4, Some(ct)) => ct,
                    _ => r.range("ciphertext"),
                };
                let at = field.start + c.below(field.len());
                bytes[at] ^= c.nonzero_byte();
                if key.contains(&at) {
                    // Keep the key canonical so that the forgery parses.
                    bytes[key.end - 1] &= 0x7f;
                }
                self.deliver(Envelope {
                    payload: Payload::Pairwise(bytes),
                    honest: None,
                    ..original
                });
            }
        }
    }

    /// Group-only attacks: messages under another chain's id, messages from
    /// another group, and a party reading a chain it was not given with a
    /// receiver built from the ratchets it does hold.
    pub(super) fn group_attack(&mut self, c: &mut impl Choices) {
        let groups: Vec<&Envelope> = self
            .archive
            .iter()
            .filter(|e| e.group().is_some())
            .collect();
        if groups.is_empty() {
            return;
        }
        let original = groups[c.below(groups.len())].clone();
        let h = original.group().unwrap().clone();
        let to = c.below(self.parties.len());
        match c.below(3) {
            0 => {
                // Another live chain's id on a real message: signed by the
                // wrong key for that chain.
                self.stats.group_cross_chain += 1;
                let ids: Vec<u32> = self.chains.keys().copied().collect();
                let other = ids[c.below(ids.len())];
                if other == h.chain_id {
                    return;
                }
                let other = *self.chains[&other].id.as_bytes();
                let mut forged = original;
                let bytes = forged.payload.bytes_mut();
                let chain = layout::group_message(bytes).range("chain");
                bytes[chain].copy_from_slice(&other);
                self.deliver(Envelope {
                    to,
                    honest: None,
                    ..forged
                });
            }
            1 => {
                // The attacker's own chain (its own seed, so its own chain
                // key) at the real message's index, in this group or another
                // one; sent as it is, or relabelled as the real chain and
                // signed with the attacker's key.
                self.stats.group_cross_group += 1;
                let group = if c.chance(50) { GROUP } else { OTHER_GROUP };
                let mut state = vec![0x02, 0x22];
                state.extend_from_slice(&[0; 8]);
                state.extend_from_slice(group.as_bytes());
                state.extend_from_slice(self.parties[h.sender].identity.as_bytes());
                // Seed, owner proof and owner signature (neither checked on
                // load), index, R_0..R_7 (SPEC §15.11), drawn in that order.
                let mut seed = [0u8; 32];
                let mut proof_and_signature = [0u8; 64 + 64];
                let mut levels = [0u8; 256];
                self.attacker_rng.fill_bytes(&mut seed);
                self.attacker_rng.fill_bytes(&mut proof_and_signature);
                self.attacker_rng.fill_bytes(&mut levels);
                state.extend_from_slice(&seed);
                state.extend_from_slice(&proof_and_signature);
                state.extend_from_slice(&h.index.to_be_bytes());
                state.extend_from_slice(&levels);
                let mut attacker = GroupSender::from_bytes(&state).unwrap();
                let message = attacker
                    .encrypt(&mut self.attacker_rng, &h.plaintext)
                    .unwrap();
                let mut bytes = message.into_bytes();
                if c.chance(50) {
                    let real = *self.chains[&h.chain_id].id.as_bytes();
                    let chain = layout::group_message(&bytes).range("chain");
                    bytes[chain].copy_from_slice(&real);
                    let body = bytes.len() - 64;
                    bytes = sign_group(&seed, &bytes[..body]);
                }
                assert!(bytes.len() <= 166 + MAX_PLAINTEXT_LEN);
                self.deliver(Envelope {
                    to,
                    payload: Payload::Group(bytes),
                    honest: None,
                    ..original
                });
            }
            _ => self.ratchet_swap(&h, &original, c),
        }
    }

    /// A party that was not given `h`'s chain at or below its index (a
    /// removed member, a late joiner) takes every ratchet and cached key it
    /// holds, relabels each as that chain (with its real signing key, which
    /// we hand it), and tries to read the message: it must fail the AEAD.
    fn ratchet_swap(&mut self, h: &GroupHonest, original: &Envelope, c: &mut impl Choices) {
        let chain = &self.chains[&h.chain_id];
        let outsiders: Vec<usize> = (0..self.parties.len())
            .filter(|p| *p != chain.sender && chain.given_from.get(p).is_none_or(|&f| f > h.index))
            .collect();
        if outsiders.is_empty() {
            return;
        }
        let thief = &self.parties[outsiders[c.below(outsiders.len())]];
        let Some(receiver) = thief.store.iter().nth(c.below(thief.store.len().max(1))) else {
            return;
        };
        let Payload::Group(bytes) = &original.payload else {
            unreachable!("a group envelope")
        };
        let message = GroupMessage::from_bytes(bytes).unwrap();
        let state = receiver.to_bytes();
        for forged in relabel(&state, chain.id.as_bytes(), h.index) {
            self.stats.group_ratchet_swaps += 1;
            let mut forged = GroupReceiver::from_bytes(&forged).unwrap();
            assert_eq!(
                forged.decrypt(&message).err(),
                Some(Error::AuthenticationFailed),
                "another chain's ratchet opened a message"
            );
        }
    }
}

/// A receiver state relabelled as `chain`, edited as bytes through its
/// layout (SPEC §15.11): once with its ratchet claiming index 0 and no
/// cache, once with its first cached key (if any) claimed as the key of
/// `index`.
fn relabel(state: &[u8], chain: &[u8; 32], index: u32) -> Vec<Vec<u8>> {
    let l = layout::receiver_state(state);
    let mut relabelled = state[..l.end_of("count")].to_vec();
    l.put(&mut relabelled, "chain", chain);
    l.put_u32(&mut relabelled, "next", 0);
    l.put_u32(&mut relabelled, "read", 0);
    l.put_u16(&mut relabelled, "count", 0);
    let mut out = vec![relabelled.clone()];
    if let (Some(key), Some(next)) = (l.get("cache[0].key"), index.checked_add(1)) {
        let mut cached = relabelled;
        l.put_u32(&mut cached, "next", next);
        l.put_u16(&mut cached, "count", 1);
        cached.extend_from_slice(&index.to_be_bytes());
        cached.extend_from_slice(&state[key]);
        out.push(cached);
    }
    out
}
