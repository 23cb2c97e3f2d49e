//! The Double Ratchet state of one session (SPEC.md §8.1): how it encrypts
//! (§8.5) and decrypts (§8.6), and its saved encoding (§10.2). The sending
//! and receiving sides are their own modules; this one ties them to the
//! root key and the session's identities.

use alloc::boxed::Box;
use alloc::vec::Vec;

use rand_core::TryCryptoRng;
use x25519_dalek::{PublicKey, StaticSecret};

use super::plaintext::Plaintext;
use super::receiving::{self, Plan, ReceivingChains};
use super::root::RootKey;
use super::sending::SendingChain;
use crate::codec::{self, Codec, Reader, Sink};
use crate::crypto::kem::{EncapsulationKey, SS_LEN};
use crate::crypto::{self, AEAD_TAG_LEN};
use crate::error::{Error, Result};
use crate::keys::{IdentityKey, OneTimePreKey, PreKeyBundle, RatchetPublicKey};
use crate::sealed;
use crate::wire::{
    KemCiphertext, MAX_PLAINTEXT_LEN, Message, PreKeyHeader, PreKeyMessage, RatchetHeader,
    RatchetMessage, SALT_LEN,
};
use crate::x3dh::{self, ASSOCIATED_DATA_LEN, KEM_BINDING_LEN, KeyMaterial};

/// Which side of X3DH this session was.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    /// Fetched the bundle and sent the first message.
    Initiator,
    /// Published the bundle and accepted the first message.
    Responder,
}

/// One byte: 0 initiator, 1 responder.
impl Codec for Role {
    fn encode<S: Sink>(&self, out: &mut S) {
        let byte: u8 = match self {
            Self::Initiator => 0,
            Self::Responder => 1,
        };
        byte.encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        match r.u8()? {
            0 => Ok(Self::Initiator),
            1 => Ok(Self::Responder),
            _ => Err(Error::InvalidEncoding),
        }
    }
}

/// Which key agreement started a session (SPEC §7.1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum KeyAgreement {
    /// Classical X3DH, only under
    /// [`KeyAgreementPolicy::ClassicalAllowed`].
    X3dh,
    /// X3DH with an ML-KEM-1024 encapsulation (PQXDH): the default.
    Pqxdh,
}

/// One byte: 0 X3DH, 1 PQXDH.
impl Codec for KeyAgreement {
    fn encode<S: Sink>(&self, out: &mut S) {
        let byte: u8 = match self {
            Self::X3dh => 0,
            Self::Pqxdh => 1,
        };
        byte.encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        match r.u8()? {
            0 => Ok(Self::X3dh),
            1 => Ok(Self::Pqxdh),
            _ => Err(Error::InvalidEncoding),
        }
    }
}

/// What one [`Session::initiate_with_policy`](crate::Session::initiate_with_policy)
/// or [`Session::accept_with_policy`](crate::Session::accept_with_policy)
/// call accepts (SPEC §7.1). It is not saved: it applies to that call only.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum KeyAgreementPolicy {
    /// PQXDH only: a bundle without a KEM prekey, or a prekey message
    /// without a KEM ciphertext, is refused with
    /// [`Error::PostQuantumRequired`]. What `initiate` and `accept` use.
    #[default]
    PostQuantumRequired,
    /// Classical X3DH too, for a peer that cannot do ML-KEM. Choose it for
    /// one call, and never again for a peer that once offered a KEM prekey
    /// or used PQXDH: otherwise a server that strips KEM prekeys gets X3DH.
    /// A bundle with a KEM prekey still gives PQXDH.
    ClassicalAllowed,
}

/// The prekeys an initiator's first messages name, repeated until a reply:
/// the signed prekey id, the one-time prekey id, and for PQXDH the KEM
/// prekey id with the ciphertext (SPEC §7.2 step 7).
#[derive(Clone, PartialEq, Eq)]
struct PendingPreKey {
    signed_prekey_id: u32,
    one_time_prekey_id: Option<u32>,
    kem: Option<KemCiphertext>,
}

impl PendingPreKey {
    fn encode<S: Sink>(&self, out: &mut S) {
        self.signed_prekey_id.encode(out);
        self.one_time_prekey_id.encode(out);
        self.kem.encode(out);
    }

    /// The KEM flag must match the session's key agreement, checked as soon
    /// as it is read (SPEC §10.2).
    fn decode(r: &mut Reader<'_>, key_agreement: KeyAgreement) -> Result<Self> {
        let signed_prekey_id = u32::decode(r)?;
        let one_time_prekey_id = Option::<u32>::decode(r)?;
        let has_kem = r.flag()?;
        if has_kem != (key_agreement == KeyAgreement::Pqxdh) {
            return Err(Error::InvalidEncoding);
        }
        let kem = if has_kem {
            Some(KemCiphertext::decode(r)?)
        } else {
            None
        };
        Ok(Self {
            signed_prekey_id,
            one_time_prekey_id,
            kem,
        })
    }
}

/// A session's fields (SPEC §8.1).
pub(crate) struct SessionState {
    generation: u64,
    role: Role,
    key_agreement: KeyAgreement,
    local_identity: IdentityKey,
    remote_identity: IdentityKey,
    kem_binding: [u8; KEM_BINDING_LEN],
    /// The initiator's X3DH ephemeral public key; names the session.
    base_key: [u8; 32],
    /// Initiator only: prekeys to name in every message until the first reply.
    pending_prekey: Option<PendingPreKey>,
    associated_data: [u8; ASSOCIATED_DATA_LEN],
    root_key: RootKey,
    remote_ratchet_key: RatchetPublicKey,
    /// `None` until the next encrypt: the new ratchet key pair is generated
    /// then, so that decrypt never needs randomness.
    sending: Option<SendingChain>,
    previous_sending_length: u32,
    receiving: ReceivingChains,
}

/// AD = IK_initiator || IK_responder || KB, whichever side we are.
fn associated_data(
    role: Role,
    local: &IdentityKey,
    remote: &IdentityKey,
    kem_binding: &[u8; KEM_BINDING_LEN],
) -> [u8; ASSOCIATED_DATA_LEN] {
    match role {
        Role::Initiator => x3dh::associated_data(local, remote, kem_binding),
        Role::Responder => x3dh::associated_data(remote, local, kem_binding),
    }
}

/// What key agreement produced, for a new session.
pub(crate) struct Agreed {
    key_agreement: KeyAgreement,
    kem_binding: [u8; KEM_BINDING_LEN],
    root_key: RootKey,
}

impl Agreed {
    /// `SK` from the exchanges and, for PQXDH, the KEM shared secret, with
    /// the KEM binding over the encapsulation key (SPEC §7.2 steps 5 and 6,
    /// §7.4).
    pub(crate) fn new(
        material: KeyMaterial,
        kem: Option<(&EncapsulationKey, &[u8; SS_LEN])>,
    ) -> Self {
        let key_agreement = match kem {
            Some(_) => KeyAgreement::Pqxdh,
            None => KeyAgreement::X3dh,
        };
        let kem_binding = x3dh::kem_binding(kem.map(|(key, _)| key));
        let shared = material.shared_secret(kem.map(|(_, shared)| shared));
        Self {
            key_agreement,
            kem_binding,
            root_key: RootKey::from_bytes(*shared),
        }
    }
}

impl SessionState {
    /// A new state in its box, with the fields that are not secret and a
    /// zero root key that the caller overwrites in the box: the state, root
    /// key included, is never assembled on the stack and then copied, which
    /// would leave a copy of the root key in stack memory that later
    /// moves can carry anywhere.
    #[allow(clippy::too_many_arguments)]
    fn boxed(
        generation: u64,
        role: Role,
        key_agreement: KeyAgreement,
        local_identity: IdentityKey,
        remote_identity: IdentityKey,
        kem_binding: [u8; KEM_BINDING_LEN],
        base_key: [u8; 32],
        pending_prekey: Option<PendingPreKey>,
        remote_ratchet_key: RatchetPublicKey,
    ) -> Box<Self> {
        Box::new(Self {
            generation,
            role,
            key_agreement,
            associated_data: associated_data(role, &local_identity, &remote_identity, &kem_binding),
            local_identity,
            remote_identity,
            kem_binding,
            base_key,
            pending_prekey,
            root_key: RootKey::zero(),
            remote_ratchet_key,
            sending: None,
            previous_sending_length: 0,
            receiving: ReceivingChains::default(),
        })
    }

    /// The initiator's state after key agreement with `bundle` (SPEC §7.2
    /// step 7): the root key is the shared secret, the responder's signed
    /// prekey is its first ratchet key, and every message names the
    /// bundle's prekeys (and the KEM ciphertext) until a reply.
    pub(crate) fn initiator(
        local_identity: IdentityKey,
        bundle: &PreKeyBundle,
        base_key: [u8; 32],
        agreed: Agreed,
        kem: Option<KemCiphertext>,
    ) -> Box<Self> {
        let signed_prekey = bundle.signed_prekey();
        let mut state = Self::boxed(
            0,
            Role::Initiator,
            agreed.key_agreement,
            local_identity,
            *bundle.identity(),
            agreed.kem_binding,
            base_key,
            Some(PendingPreKey {
                signed_prekey_id: signed_prekey.id(),
                one_time_prekey_id: bundle.one_time_prekey().map(OneTimePreKey::id),
                kem,
            }),
            RatchetPublicKey::new(*signed_prekey.key()),
        );
        state.root_key = agreed.root_key;
        state
    }

    /// The responder's state after key agreement (SPEC §7.3 steps 8 to
    /// 11), with the plaintext of the prekey message that started it. The
    /// initiator's first ratchet step used our signed prekey as our ratchet
    /// key; this takes the matching receive step from the shared secret.
    pub(crate) fn accept(
        local_identity: IdentityKey,
        message: &PreKeyMessage,
        agreed: Agreed,
        signed_prekey: &StaticSecret,
    ) -> Result<(Box<Self>, Plaintext)> {
        let prekey = message.prekey_header();
        let header = message.inner_header();
        let opened = receiving::open_chain(&agreed.root_key, signed_prekey, header, 0)?;
        let mut state = Self::boxed(
            0,
            Role::Responder,
            agreed.key_agreement,
            local_identity,
            prekey.identity,
            agreed.kem_binding,
            prekey.base_key.to_bytes(),
            None,
            header.ratchet_key,
        );
        state.root_key = opened.root_key;
        state.receiving = ReceivingChains::first(opened.chain);
        let (prefix, body) = message.parts();
        let plaintext =
            opened
                .message_key
                .open(&header.salt, &state.associated_data, prefix, body)?;
        Ok((state, Plaintext::new(plaintext, prekey.identity)))
    }

    pub(crate) fn key_agreement(&self) -> KeyAgreement {
        self.key_agreement
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    pub(crate) fn role(&self) -> Role {
        self.role
    }

    pub(crate) fn local_identity(&self) -> &IdentityKey {
        &self.local_identity
    }

    pub(crate) fn remote_identity(&self) -> &IdentityKey {
        &self.remote_identity
    }

    pub(crate) fn base_key(&self) -> [u8; 32] {
        self.base_key
    }

    pub(crate) fn is_awaiting_reply(&self) -> bool {
        self.pending_prekey.is_some()
    }

    pub(crate) fn receiving(&self) -> &ReceivingChains {
        &self.receiving
    }

    /// The current sending chain's ratchet public key, if there is one.
    pub(crate) fn sending_ratchet_key(&self) -> Option<[u8; 32]> {
        self.sending.as_ref().map(SendingChain::public_key)
    }

    /// Whether a receiving chain has the ratchet key `key` (compared as
    /// bytes).
    pub(crate) fn knows_ratchet_key(&self, key: &[u8; 32]) -> bool {
        self.receiving.has_chain(key)
    }

    /// SPEC §8.5: checks, then every draw, then the computation, and only
    /// then the commit.
    /// The plaintext is the concatenation of `parts`, so that a caller
    /// that frames its payload (the session layer, SPEC §16.9) needs no
    /// buffer of its own.
    pub(crate) fn encrypt<R: TryCryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        parts: &[&[u8]],
    ) -> Result<Message> {
        let plaintext_len = parts.iter().fold(0usize, |n, p| n.saturating_add(p.len()));
        if plaintext_len > MAX_PLAINTEXT_LEN {
            return Err(Error::PlaintextTooLarge);
        }
        if self
            .sending
            .as_ref()
            .is_some_and(SendingChain::is_exhausted)
        {
            return Err(Error::ChainExhausted);
        }
        // A chain started here is committed with the message, not before.
        let mut started = None;
        let mut salt = [0u8; SALT_LEN];
        let chain = match &mut self.sending {
            Some(chain) => {
                crypto::draw(rng, &mut salt)?;
                chain
            }
            None => {
                let secret = crypto::draw_x25519(rng)?;
                crypto::draw(rng, &mut salt)?;
                let (root_key, chain) =
                    SendingChain::start(secret, &self.root_key, &self.remote_ratchet_key)?;
                &mut started.insert((root_key, chain)).1
            }
        };

        let header = chain.header(self.previous_sending_length, salt);
        let prekey = self.pending_prekey.as_ref().map(|p| PreKeyHeader {
            identity: self.local_identity,
            base_key: PublicKey::from(self.base_key),
            signed_prekey_id: p.signed_prekey_id,
            one_time_prekey_id: p.one_time_prekey_id,
            kem: p.kem.clone(),
        });
        let prefix_len =
            prekey.as_ref().map_or(0, codec::encoded_len) + codec::encoded_len(&header);
        let mut out = Vec::with_capacity(prefix_len + plaintext_len + AEAD_TAG_LEN);
        if let Some(prekey) = &prekey {
            prekey.encode(&mut out);
        }
        header.encode(&mut out);
        for part in parts {
            out.extend_from_slice(part);
        }

        let (message_key, next_chain_key) = chain.step();
        let (prefix, body) = out.split_at_mut(prefix_len);
        let tag = message_key.seal(&salt, &self.associated_data, prefix, body)?;
        out.extend_from_slice(&tag);

        // Commit: nothing below can fail.
        chain.advance(next_chain_key);
        if let Some((root_key, chain)) = started {
            self.root_key = root_key;
            self.sending = Some(chain);
        }
        sealed::advance(&mut self.generation);
        Ok(match prekey {
            Some(prekey) => {
                Message::PreKey(Box::new(PreKeyMessage::from_encoded(out, prekey, header)))
            }
            None => Message::Ratchet(RatchetMessage::from_encoded(out, header)),
        })
    }

    /// SPEC §8.6: all or nothing. `then` sees the plaintext before anything
    /// changes; the session commits only if it returns `Ok`.
    pub(crate) fn decrypt<T>(
        &mut self,
        message: &Message,
        then: impl FnOnce(&Plaintext) -> Result<T>,
    ) -> Result<(Plaintext, T)> {
        match message {
            Message::Ratchet(m) => {
                let (prefix, body) = m.parts();
                self.decrypt_ratchet(m.header(), prefix, body, then)
            }
            Message::PreKey(m) => {
                if m.identity() != &self.remote_identity {
                    return Err(Error::IdentityMismatch);
                }
                if self.role != Role::Responder || m.base_key_bytes() != self.base_key {
                    return Err(Error::SessionMismatch);
                }
                let (prefix, body) = m.parts();
                self.decrypt_ratchet(m.inner_header(), prefix, body, then)
            }
        }
    }

    fn decrypt_ratchet<T>(
        &mut self,
        header: &RatchetHeader,
        prefix: &[u8],
        body: &[u8],
        then: impl FnOnce(&Plaintext) -> Result<T>,
    ) -> Result<(Plaintext, T)> {
        let our_secret = self.sending.as_ref().map(SendingChain::secret);
        let plan = self.receiving.plan(header, &self.root_key, our_secret)?;
        let opened = self.receiving.message_key(&plan)?.open(
            &header.salt,
            &self.associated_data,
            prefix,
            body,
        );
        let plaintext = match (opened, &plan) {
            // A new ratchet key that does not decrypt as the peer's next
            // chain: the two sides no longer share a root key (§8.6 2.4).
            (Err(Error::AuthenticationFailed), Plan::Ratchet { .. }) => {
                return Err(Error::SessionDiverged);
            }
            (opened, _) => Plaintext::new(opened?, self.remote_identity),
        };
        let outcome = then(&plaintext)?;
        if let Some(root_key) = self.receiving.commit(plan) {
            // A Diffie-Hellman ratchet step: the next encrypt starts a new
            // sending chain.
            self.root_key = root_key;
            self.remote_ratchet_key = header.ratchet_key;
            self.previous_sending_length = self.sending.as_ref().map_or(0, SendingChain::next);
            self.sending = None;
        }
        // A decrypted reply proves the responder has the session.
        self.pending_prekey = None;
        sealed::advance(&mut self.generation);
        Ok((plaintext, outcome))
    }

    /// The saved-state rules that relate several fields, checked after the
    /// whole state was read (SPEC §4 step 4, §10.2): the current receiving
    /// chain's ratchet key is DHr, and no two chains have the same ratchet
    /// key.
    pub(crate) fn check(&self) -> Result<()> {
        if self
            .receiving
            .current_ratchet_key()
            .is_some_and(|key| *key != self.remote_ratchet_key)
            || self.receiving.has_repeated_ratchet_key()
        {
            return Err(Error::InvalidEncoding);
        }
        Ok(())
    }
}

/// SPEC §10.2. The associated data is recomputed from the identities, the
/// role and the KEM binding; the sending public key from its secret. Not a
/// [`Codec`]: a state is decoded only into its box.
impl SessionState {
    pub(crate) fn encode<S: Sink>(&self, out: &mut S) {
        self.generation.encode(out);
        self.role.encode(out);
        self.key_agreement.encode(out);
        self.local_identity.encode(out);
        self.remote_identity.encode(out);
        self.kem_binding.encode(out);
        self.base_key.encode(out);
        out.put(&[u8::from(self.pending_prekey.is_some())]);
        if let Some(pending) = &self.pending_prekey {
            pending.encode(out);
        }
        self.root_key.encode(out);
        self.remote_ratchet_key.encode(out);
        self.sending.encode(out);
        self.previous_sending_length.encode(out);
        self.receiving.encode(out);
    }

    /// Decodes the fields in order, straight into the state's box (see
    /// [`SessionState::boxed`]): the root key goes from the input to the
    /// box.
    pub(crate) fn decode_boxed(r: &mut Reader<'_>) -> Result<Box<Self>> {
        let generation = u64::decode(r)?;
        let role = Role::decode(r)?;
        let key_agreement = KeyAgreement::decode(r)?;
        let local_identity = IdentityKey::decode(r)?;
        let remote_identity = IdentityKey::decode(r)?;
        let kem_binding = r.array()?;
        let base_key = r.array()?;
        let pending_prekey = if r.flag()? {
            // Only an initiator waits for a reply; checked before the ids.
            if role != Role::Initiator {
                return Err(Error::InvalidEncoding);
            }
            Some(PendingPreKey::decode(r, key_agreement)?)
        } else {
            None
        };
        let root_key = r.array_ref::<32>()?;
        let remote_ratchet_key = RatchetPublicKey::decode(r)?;
        let mut state = Self::boxed(
            generation,
            role,
            key_agreement,
            local_identity,
            remote_identity,
            kem_binding,
            base_key,
            pending_prekey,
            remote_ratchet_key,
        );
        state.root_key.set(root_key);
        state.sending = Option::<SendingChain>::decode(r)?;
        state.previous_sending_length = u32::decode(r)?;
        state.receiving = ReceivingChains::decode(r)?;
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{TestRng, bundle, devices, prekey};
    use crate::{Error, Message, Session};

    /// The offset of the only occurrence of `needle` in `haystack`.
    fn only_offset(haystack: &[u8], needle: &[u8; 32]) -> usize {
        let found: alloc::vec::Vec<usize> = haystack
            .windows(32)
            .enumerate()
            .filter(|(_, w)| w == needle)
            .map(|(at, _)| at)
            .collect();
        assert_eq!(found.len(), 1);
        found[0]
    }

    /// SPEC §10.2: no two chains of a saved session may have the same
    /// ratchet key (the review's `state_rules`). Bob's state with two
    /// receiving chains, the older one's key overwritten in the bytes with
    /// the current one's: `InvalidEncoding`, and only after `TrailingBytes`.
    #[test]
    fn saved_chains_have_distinct_ratchet_keys() {
        let mut rng = TestRng::new(3);
        let (alice, mut bob) = devices(&mut rng);
        let bundle = bundle(&mut bob, &mut rng, false);
        let mut to_bob = Session::initiate(&alice, &mut rng, &bundle).unwrap();
        let first = prekey(to_bob.encrypt(&mut rng, b"hi").unwrap());
        let (mut to_alice, _) = Session::accept(&mut bob, &first).unwrap();
        let reply = to_alice.encrypt(&mut rng, b"reply").unwrap();
        to_bob.decrypt(&reply).unwrap();
        let Message::Ratchet(second) = to_bob.encrypt(&mut rng, b"new key").unwrap() else {
            panic!("a reply was decrypted: a ratchet message");
        };
        to_alice.decrypt(&Message::Ratchet(second.clone())).unwrap();
        assert_eq!(to_alice.receiving_chain_count(), 2);

        let state = to_alice.to_bytes();
        assert!(Session::from_bytes(&state).is_ok());
        let older = only_offset(&state, &first.ratchet_key_bytes());
        let mut repeated = state.to_vec();
        repeated[older..older + 32].copy_from_slice(&second.ratchet_key_bytes());
        assert_eq!(
            Session::from_bytes(&repeated).err(),
            Some(Error::InvalidEncoding)
        );
        repeated.push(0);
        assert_eq!(
            Session::from_bytes(&repeated).err(),
            Some(Error::TrailingBytes)
        );
    }

    /// Ratchet keys compare by their bytes: a saved state whose current
    /// chain holds DHr with its unused top bit set (the same X25519 point)
    /// breaks the rule of SPEC §10.2, as any other key would.
    #[test]
    fn saved_ratchet_keys_compare_by_bytes() {
        let mut rng = TestRng::new(2);
        let (alice, mut bob) = devices(&mut rng);
        let bundle = bundle(&mut bob, &mut rng, false);
        let mut to_bob = Session::initiate(&alice, &mut rng, &bundle).unwrap();
        let first = prekey(to_bob.encrypt(&mut rng, b"hi").unwrap());
        let (bob_session, _) = Session::accept(&mut bob, &first).unwrap();
        assert_eq!(bob_session.receiving_chain_count(), 1);

        // The one chain ends the state: key 32, flag 1, chain key 32,
        // next 4, count 2.
        let mut state = bob_session.to_bytes();
        assert!(Session::from_bytes(&state).is_ok());
        let top = state.len() - 71 + 31;
        assert_eq!(state[top] & 0x80, 0);
        state[top] |= 0x80;
        assert_eq!(
            Session::from_bytes(&state).err(),
            Some(Error::InvalidEncoding)
        );
    }
}
