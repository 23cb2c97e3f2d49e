//! The receivers of one group, found by chain id (SPEC.md §15.9).

use alloc::collections::VecDeque;

use super::message::GroupMessage;
use super::receiver::GroupReceiver;
use super::{GroupId, GroupPlaintext, MAX_CHAINS_PER_SENDER, MAX_GROUP_RECEIVERS, Sender};
use crate::error::{Error, Result};

/// Every sender chain this member can read in one group.
///
/// Chain ids and signing keys are unique in a store, so a message's chain id
/// names exactly one receiver, and a member cannot re-deliver another
/// member's chain under its own identity next to the real one. A sender keeps
/// at most [`MAX_CHAINS_PER_SENDER`] chains (after a rotation the older ones
/// still read late messages, then the oldest is deleted), and the store at
/// most [`MAX_GROUP_RECEIVERS`] (past it, the oldest chain is deleted).
///
/// To persist the store, persist each receiver ([`GroupReceivers::iter`] is
/// oldest first; re-insert in that order). After a successful
/// [`GroupReceivers::decrypt`], the receiver that changed is
/// [`GroupReceivers::get`]`(plaintext.chain_id)`.
#[derive(Debug)]
pub struct GroupReceivers {
    group_id: GroupId,
    /// Oldest first.
    receivers: VecDeque<GroupReceiver>,
}

impl GroupReceivers {
    /// An empty store for `group_id`.
    pub fn new(group_id: GroupId) -> Self {
        Self {
            group_id,
            receivers: VecDeque::new(),
        }
    }

    /// The group.
    pub fn group_id(&self) -> &GroupId {
        &self.group_id
    }

    /// Adds a receiver (from [`GroupReceiver::accept`],
    /// [`GroupReceiver::import_unauthenticated`] or a restored state).
    ///
    /// If the store already holds the same chain (same sender, chain id and
    /// signing key), its ratchet moves to the new receiver's index if that is
    /// later, keeping its cached keys; otherwise this fails with
    /// [`Error::GroupChainNotNewer`], so a chain never moves backwards. A
    /// chain id or signing key already held for any other chain fails with
    /// [`Error::GroupChainConflict`]; a receiver for another group with
    /// [`Error::GroupMismatch`].
    ///
    /// # Errors
    ///
    /// In this order (SPEC §15.9), each leaving the store unchanged:
    /// [`Error::GroupMismatch`], [`Error::GroupChainConflict`],
    /// [`Error::GroupChainNotNewer`], as above.
    pub fn insert(&mut self, receiver: GroupReceiver) -> Result<()> {
        if receiver.group_id() != &self.group_id {
            return Err(Error::GroupMismatch);
        }
        let clash = self.receivers.iter_mut().find(|r| {
            r.chain_id() == receiver.chain_id() || r.signing_key() == receiver.signing_key()
        });
        if let Some(existing) = clash {
            let same_chain = existing.chain_id() == receiver.chain_id()
                && existing.signing_key() == receiver.signing_key()
                && existing.sender() == receiver.sender();
            if !same_chain {
                return Err(Error::GroupChainConflict);
            }
            if receiver.next_index() <= existing.next_index() {
                return Err(Error::GroupChainNotNewer);
            }
            existing.catch_up(receiver);
            return Ok(());
        }
        let own = self
            .receivers
            .iter()
            .filter(|r| r.sender() == receiver.sender())
            .count();
        if own >= MAX_CHAINS_PER_SENDER
            && let Some(oldest) = self
                .receivers
                .iter()
                .position(|r| r.sender() == receiver.sender())
        {
            self.receivers.remove(oldest);
        }
        if self.receivers.len() >= MAX_GROUP_RECEIVERS {
            self.receivers.pop_front();
        }
        self.receivers.push_back(receiver);
        Ok(())
    }

    /// Decrypts with the receiver for the message's chain (see
    /// [`GroupReceiver::decrypt`]). All or nothing.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownGroupChain`] if the message is for another group or a
    /// chain the store does not hold, else as [`GroupReceiver::decrypt`].
    pub fn decrypt(&mut self, message: &GroupMessage) -> Result<GroupPlaintext> {
        if message.group_id() != &self.group_id {
            return Err(Error::UnknownGroupChain);
        }
        self.receivers
            .iter_mut()
            .find(|r| r.chain_id() == message.chain_id())
            .ok_or(Error::UnknownGroupChain)?
            .decrypt(message)
    }

    /// The receiver for `chain_id`.
    pub fn get(&self, chain_id: u32) -> Option<&GroupReceiver> {
        self.receivers.iter().find(|r| r.chain_id() == chain_id)
    }

    /// Deletes every chain of `sender` (a member who left); returns how many.
    pub fn remove_sender(&mut self, sender: &Sender) -> usize {
        let before = self.receivers.len();
        self.receivers.retain(|r| r.sender() != sender);
        before - self.receivers.len()
    }

    /// The receivers, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &GroupReceiver> {
        self.receivers.iter()
    }

    /// How many chains the store holds.
    pub fn len(&self) -> usize {
        self.receivers.len()
    }

    /// Whether the store holds no chain.
    pub fn is_empty(&self) -> bool {
        self.receivers.is_empty()
    }
}
