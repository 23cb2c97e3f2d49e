//! What the network and the attacker do to envelopes: delivery order,
//! drops, duplicates and corruption; replays, cross-session deliveries,
//! forgeries of every header field, cross-chain and cross-group messages,
//! and receivers forged from the ratchets a party holds.

use sotto::Error;
use sotto::group::{GroupMessage, GroupReceiver, GroupSender};
use sotto::rand_core::Rng;

use super::world::World;
use super::{Choices, Envelope, GROUP, GroupHonest, OTHER_GROUP, Payload};
use crate::layout;
use crate::model::group::ratchet::split_levels;
use crate::model::group::{GReceiver, GSender, Window};

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
                let Payload::Pairwise(mut bytes) = original.payload else {
                    let mut forged = original;
                    let bytes = forged.payload.bytes_mut();
                    // Any field: group id, chain id, index, salt, ciphertext
                    // and tag, or signature.
                    let l = layout::group_message(bytes);
                    let field = match c.below(6) {
                        0 => l.range("group_id"),
                        1 => l.range("chain_id"),
                        2 => l.range("index"),
                        3 => l.range("salt"),
                        4 => l.start("ciphertext")..l.end_of("tag"),
                        _ => l.range("signature"),
                    };
                    let at = field.start + c.below(field.len());
                    bytes[at] ^= c.nonzero_byte();
                    self.stats.group_forged += 1;
                    self.deliver(Envelope {
                        honest: None,
                        ..forged
                    });
                    return;
                };
                // Rewrite one field of the ratchet header or the body: a new
                // ratchet key, other counters, another salt or ciphertext.
                let l = layout::ratchet_part(&bytes);
                let key = l.range("ratchet_key");
                let field = match c.below(5) {
                    0 => key.clone(),
                    1 => l.range("pn"),
                    2 => l.range("n"),
                    3 => l.range("salt"),
                    _ => l.range("ciphertext"),
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
                let mut forged = original;
                let bytes = forged.payload.bytes_mut();
                layout::group_message(bytes).put_u32(bytes, "chain_id", other);
                self.deliver(Envelope {
                    to,
                    honest: None,
                    ..forged
                });
            }
            1 => {
                // The attacker's own chain, claiming a real chain's id, in
                // this group or another one.
                self.stats.group_cross_group += 1;
                let group = if c.chance(50) { GROUP } else { OTHER_GROUP };
                // R_0 .. R_7, then the signing seed.
                let mut secrets = [0u8; 8 * 32 + 32];
                self.attacker_rng.fill_bytes(&mut secrets);
                let (levels, seed) = secrets.split_at(256);
                let state = GSender {
                    group: *group.as_bytes(),
                    chain_id: h.chain_id,
                    index: h.index,
                    levels: split_levels(levels),
                    seed: seed.try_into().expect("32 bytes"),
                }
                .encode();
                let mut attacker = GroupSender::from_bytes(&state).unwrap();
                let message = attacker
                    .encrypt(&mut self.attacker_rng, &h.plaintext)
                    .unwrap();
                self.deliver(Envelope {
                    to,
                    payload: Payload::Group(message.into_bytes()),
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
        for forged in relabel(&state, h.chain_id, &chain.signing_key, h.index) {
            self.stats.group_ratchet_swaps += 1;
            let mut forged = GroupReceiver::from_bytes(&forged).unwrap();
            assert_eq!(
                forged.decrypt(&message),
                Err(Error::AuthenticationFailed),
                "another chain's ratchet opened a message"
            );
        }
    }
}
/// A receiver state relabelled as chain `chain_id` with `signing_key`:
/// once with its ratchet claiming index 0 and no cache, once with its first
/// cached key (if any) claimed as the key of `index`.
fn relabel(state: &[u8], chain_id: u32, signing_key: &[u8; 32], index: u32) -> Vec<Vec<u8>> {
    let held = GReceiver::parse(state).expect("a saved receiver");
    let relabelled = GReceiver {
        chain_id,
        signing: *signing_key,
        window: Window::at(0),
        ..held.clone()
    };
    let mut out = vec![relabelled.encode()];
    if let (Some(key), Some(next)) = (held.window.cache.values().next(), index.checked_add(1)) {
        let mut cached = relabelled;
        cached.window = Window::at(next);
        cached.window.cache.insert(index, *key);
        out.push(cached.encode());
    }
    out
}
