//! Groups: a member's own sender chain, the store of every other member's
//! chains, and what can be read off a group message before decrypting it.

use std::sync::{Arc, Mutex};

use sotto::Message;
use sotto::group::{GroupMessage, GroupReceivers};
use sotto_bindings_common::{OsRng, chain_id, group_id, storage_key};

use crate::device::Device;
use crate::error::{Result, lock};
use crate::keys::IdentityKey;
use crate::session::{Plaintext, Session};

/// What adding a chain to a [`GroupStore`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum InsertOutcome {
    /// A chain the store did not hold was added.
    Added,
    /// A held authenticated chain moved forward to the owner's later copy.
    Advanced,
    /// A held unauthenticated chain became authenticated.
    Upgraded,
    /// Nothing changed (the chain is held and the copy is not ahead, or is
    /// another import).
    Unchanged,
}

impl From<sotto::group::InsertOutcome> for InsertOutcome {
    fn from(outcome: sotto::group::InsertOutcome) -> Self {
        use sotto::group::InsertOutcome as O;
        match outcome {
            O::Added => Self::Added,
            O::Advanced => Self::Advanced,
            O::Upgraded => Self::Upgraded,
            O::Unchanged => Self::Unchanged,
        }
    }
}

/// A decrypted group message.
#[derive(Debug, Clone, uniffi::Record)]
pub struct GroupPlaintext {
    /// The plaintext bytes.
    pub bytes: Vec<u8>,
    /// The chain's owner (claimed only, unless `authenticated`).
    pub owner: Arc<IdentityKey>,
    /// Whether the chain came from its owner's own session (not an
    /// unauthenticated import).
    pub authenticated: bool,
    /// The sender chain (32 bytes).
    pub chain_id: Vec<u8>,
    /// The message's index in its chain.
    pub index: u32,
}

impl GroupPlaintext {
    pub(crate) fn from_core(plaintext: &sotto::group::GroupPlaintext) -> Self {
        Self {
            owner: IdentityKey::arc(plaintext.sender().owner()),
            authenticated: plaintext.sender().is_authenticated(),
            chain_id: plaintext.chain().as_bytes().to_vec(),
            index: plaintext.index(),
            bytes: plaintext.as_bytes().to_vec(),
        }
    }
}

/// What a store holds of one chain.
#[derive(Debug, Clone, uniffi::Record)]
pub struct GroupReceiverInfo {
    /// The chain's owner (claimed only, unless `authenticated`).
    pub owner: Arc<IdentityKey>,
    /// Whether the chain came from its owner's own session.
    pub authenticated: bool,
    /// The lowest index not yet reached.
    pub next_index: u32,
}

/// What a group message says about itself before it is decrypted (not
/// authenticated until it decrypts).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct GroupMessageInfo {
    /// The group (32 bytes): picks the store.
    pub group_id: Vec<u8>,
    /// The sender chain (32 bytes).
    pub chain_id: Vec<u8>,
    /// The index in the chain.
    pub index: u32,
}

/// Parses a group message strictly and tells its group, chain and index.
///
/// # Errors
///
/// The parse errors.
#[uniffi::export]
pub fn group_message_info(message: Vec<u8>) -> Result<GroupMessageInfo> {
    let message = GroupMessage::from_vec(message)?;
    Ok(GroupMessageInfo {
        group_id: message.group_id().as_bytes().to_vec(),
        chain_id: message.chain().as_bytes().to_vec(),
        index: message.index(),
    })
}

/// A member's own sending chain in one group. Send its distribution to
/// each member over your pairwise sessions.
#[derive(Debug, uniffi::Object)]
pub struct GroupSender(Mutex<sotto::group::GroupSender>);

impl GroupSender {
    fn wrap(sender: sotto::group::GroupSender) -> Arc<Self> {
        Arc::new(Self(Mutex::new(sender)))
    }
}

#[uniffi::export]
impl GroupSender {
    /// A new chain for `device` in the group `group_id` (32 bytes, chosen by
    /// the app).
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, `Randomness`.
    #[uniffi::constructor]
    pub fn new(device: Arc<Device>, group_id: Vec<u8>) -> Result<Arc<Self>> {
        let group = self::group_id(&group_id)?;
        let device = lock(&device.0, "device")?;
        Ok(Self::wrap(sotto::group::GroupSender::new(
            &mut OsRng, group, &device,
        )?))
    }

    /// Restores a sender from [`GroupSender::to_bytes`].
    ///
    /// # Errors
    ///
    /// The parse errors.
    #[uniffi::constructor]
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Arc<Self>> {
        Ok(Self::wrap(sotto::group::GroupSender::from_bytes(&bytes)?))
    }

    /// Restores a sender from [`GroupSender::seal`].
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, `TooLarge`, `AuthenticationFailed`, then the parse
    /// errors.
    #[uniffi::constructor]
    pub fn unseal(sealed: Vec<u8>, storage_key: Vec<u8>, context: Vec<u8>) -> Result<Arc<Self>> {
        let key = self::storage_key(&storage_key)?;
        Ok(Self::wrap(sotto::group::GroupSender::unseal(
            &sealed, &key, &context,
        )?))
    }

    /// The plain saved state (secret: prefer [`GroupSender::seal`]).
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        Ok(lock(&self.0, "group sender")?.to_bytes().to_vec())
    }

    /// The saved state encrypted under a 32-byte storage key and bound to
    /// `context`.
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, `TooLarge`, `Randomness`.
    pub fn seal(&self, storage_key: Vec<u8>, context: Vec<u8>) -> Result<Vec<u8>> {
        let key = self::storage_key(&storage_key)?;
        Ok(lock(&self.0, "group sender")?.seal(&key, &context, &mut OsRng)?)
    }

    /// 0 when new, one more after every call that changed the sender.
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn generation(&self) -> Result<u64> {
        Ok(lock(&self.0, "group sender")?.generation())
    }

    /// The distribution of the chain at its current index (486 bytes): send
    /// it to each member over the pairwise session with them. It holds the
    /// chain key from this index on: secret.
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn distribution(&self) -> Result<Vec<u8>> {
        Ok(lock(&self.0, "group sender")?
            .distribution()
            .to_bytes()
            .to_vec())
    }

    /// Encrypts one message to the group.
    ///
    /// # Errors
    ///
    /// `PlaintextTooLarge`, `ChainExhausted`, `Randomness`.
    pub fn encrypt(&self, plaintext: Vec<u8>) -> Result<Vec<u8>> {
        let plaintext = zeroize::Zeroizing::new(plaintext);
        Ok(lock(&self.0, "group sender")?
            .encrypt(&mut OsRng, &plaintext)?
            .into_bytes())
    }

    /// Replaces the chain with a new one (after a member left) and returns
    /// its distribution, for the remaining members only. `device` must be
    /// the chain's owner.
    ///
    /// # Errors
    ///
    /// `GroupOwnerMismatch`, `Randomness`.
    pub fn rotate(&self, device: Arc<Device>) -> Result<Vec<u8>> {
        let device = lock(&device.0, "device")?;
        let mut sender = lock(&self.0, "group sender")?;
        Ok(sender.rotate(&mut OsRng, &device)?.to_bytes().to_vec())
    }

    /// The chain's owner.
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn owner(&self) -> Result<Arc<IdentityKey>> {
        Ok(IdentityKey::arc(lock(&self.0, "group sender")?.owner()))
    }

    /// The group id (32 bytes).
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn group_id(&self) -> Result<Vec<u8>> {
        Ok(lock(&self.0, "group sender")?
            .group_id()
            .as_bytes()
            .to_vec())
    }

    /// The chain id (32 bytes).
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn chain_id(&self) -> Result<Vec<u8>> {
        Ok(lock(&self.0, "group sender")?.chain().as_bytes().to_vec())
    }

    /// The index of the next message.
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn index(&self) -> Result<u32> {
        Ok(lock(&self.0, "group sender")?.index())
    }
}

/// Every other member's chain that this member can read, in one group. A
/// chain enters only from its owner's session (`receive_distribution`,
/// `install`), or marked unauthenticated (`import_unauthenticated`).
#[derive(Debug, uniffi::Object)]
pub struct GroupStore(Mutex<GroupReceivers>);

impl GroupStore {
    fn wrap(store: GroupReceivers) -> Arc<Self> {
        Arc::new(Self(Mutex::new(store)))
    }
}

#[uniffi::export]
impl GroupStore {
    /// An empty store for the group `group_id` (32 bytes).
    ///
    /// # Errors
    ///
    /// `InvalidArgument`.
    #[uniffi::constructor]
    pub fn new(group_id: Vec<u8>) -> Result<Arc<Self>> {
        Ok(Self::wrap(GroupReceivers::new(self::group_id(&group_id)?)))
    }

    /// Restores a store from [`GroupStore::to_bytes`].
    ///
    /// # Errors
    ///
    /// The parse errors.
    #[uniffi::constructor]
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Arc<Self>> {
        Ok(Self::wrap(GroupReceivers::from_bytes(&bytes)?))
    }

    /// Restores a store from [`GroupStore::seal`].
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, `TooLarge`, `AuthenticationFailed`, then the parse
    /// errors.
    #[uniffi::constructor]
    pub fn unseal(sealed: Vec<u8>, storage_key: Vec<u8>, context: Vec<u8>) -> Result<Arc<Self>> {
        let key = self::storage_key(&storage_key)?;
        Ok(Self::wrap(GroupReceivers::unseal(&sealed, &key, &context)?))
    }

    /// The plain saved state (secret: prefer [`GroupStore::seal`]).
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        Ok(lock(&self.0, "group store")?.to_bytes().to_vec())
    }

    /// The saved state encrypted under a 32-byte storage key and bound to
    /// `context`.
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, `TooLarge`, `Randomness`.
    pub fn seal(&self, storage_key: Vec<u8>, context: Vec<u8>) -> Result<Vec<u8>> {
        let key = self::storage_key(&storage_key)?;
        Ok(lock(&self.0, "group store")?.seal(&key, &context, &mut OsRng)?)
    }

    /// 0 when new, one more after every call that changed the store.
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn generation(&self) -> Result<u64> {
        Ok(lock(&self.0, "group store")?.generation())
    }

    /// The group id (32 bytes).
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn group_id(&self) -> Result<Vec<u8>> {
        Ok(lock(&self.0, "group store")?.group_id().as_bytes().to_vec())
    }

    /// Decrypts `message` with `session` and installs the distribution it
    /// carries, in one call: if anything fails, neither the session nor the
    /// store changed (so a message that is no distribution can then be
    /// decrypted as usual). Save the store, then the session.
    ///
    /// # Errors
    ///
    /// The errors of `Session.decrypt`, then the parse errors of the
    /// distribution, `GroupMismatch`, `GroupOwnerMismatch`,
    /// `InvalidSignature`, `GroupChainConflict`.
    pub fn receive_distribution(
        &self,
        session: Arc<Session>,
        message: Vec<u8>,
    ) -> Result<InsertOutcome> {
        let message = Message::from_vec(message)?;
        let mut store = lock(&self.0, "group store")?;
        let mut session = lock(&session.0, "session")?;
        Ok(store.receive_distribution(&mut session, &message)?.into())
    }

    /// Installs the distribution in a plaintext that came out of its owner's
    /// session.
    ///
    /// # Errors
    ///
    /// As [`GroupStore::receive_distribution`], after the decryption.
    pub fn install(&self, plaintext: Arc<Plaintext>) -> Result<InsertOutcome> {
        Ok(lock(&self.0, "group store")?.install(&plaintext.0)?.into())
    }

    /// Imports a distribution that did not come from its owner's session (a
    /// key backup), marked unauthenticated.
    ///
    /// # Errors
    ///
    /// The parse errors, `GroupMismatch`, `InvalidSignature`,
    /// `GroupChainConflict`, `GroupStoreFull`.
    pub fn import_unauthenticated(&self, distribution: Vec<u8>) -> Result<InsertOutcome> {
        let distribution = zeroize::Zeroizing::new(distribution);
        Ok(lock(&self.0, "group store")?
            .import_unauthenticated(&distribution)?
            .into())
    }

    /// Decrypts a group message.
    ///
    /// # Errors
    ///
    /// The parse errors; `UnknownGroupChain`, `GroupIndexOutOfRange`,
    /// `InvalidSignature`, `AuthenticationFailed`, `DuplicateMessage`.
    pub fn decrypt(&self, message: Vec<u8>) -> Result<GroupPlaintext> {
        let message = GroupMessage::from_vec(message)?;
        let plaintext = lock(&self.0, "group store")?.decrypt(&message)?;
        Ok(GroupPlaintext::from_core(&plaintext))
    }

    /// Deletes every chain of `owner` (a member who left); returns how many.
    /// Then rotate your own sender and send its new distribution to the
    /// remaining members only.
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn remove_owner(&self, owner: Arc<IdentityKey>) -> Result<u64> {
        Ok(lock(&self.0, "group store")?.remove_owner(&owner.0) as u64)
    }

    /// How many chains the store holds.
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn len(&self) -> Result<u64> {
        Ok(lock(&self.0, "group store")?.len() as u64)
    }

    /// Whether the store holds no chain.
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(lock(&self.0, "group store")?.is_empty())
    }

    /// The ids of the chains held (32 bytes each), oldest first.
    ///
    /// # Errors
    ///
    /// `HandlePoisoned`.
    pub fn chain_ids(&self) -> Result<Vec<Vec<u8>>> {
        Ok(lock(&self.0, "group store")?
            .iter()
            .map(|r| r.chain().as_bytes().to_vec())
            .collect())
    }

    /// What the store holds of one chain, if it holds it.
    ///
    /// # Errors
    ///
    /// `InvalidArgument` (not 32 bytes), `InvalidPublicKey`.
    pub fn receiver(&self, chain_id: Vec<u8>) -> Result<Option<GroupReceiverInfo>> {
        let chain = self::chain_id(&chain_id)?;
        Ok(lock(&self.0, "group store")?
            .get(&chain)
            .map(|r| GroupReceiverInfo {
                owner: IdentityKey::arc(r.sender().owner()),
                authenticated: r.sender().is_authenticated(),
                next_index: r.next_index(),
            }))
    }
}
