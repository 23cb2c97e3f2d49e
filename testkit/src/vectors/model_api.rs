//! [`Api`] on the reference model: every call decodes its states with the
//! model, runs the model's operation and encodes the result.

use super::api::{AcceptedInstall, Api, Bytes, DeviceCall, Mark, R};
use crate::model::group::{Outcome, Receiver, Sender, Store, read_distribution, read_message};
use crate::model::keys::{identity_key_bytes, read_bundle, read_identity_key};
use crate::model::rand::Source;
use crate::model::sessions::{Group, Record};
use crate::model::{Dev, Policy, Sess, keys, pqxdh, refusal, sealed, wire};

/// The reference model behind [`Api`].
pub struct ModelApi;

fn identity(encoded: &[u8]) -> R<[u8; 32]> {
    read_identity_key(encoded).map(|(ik, _)| ik)
}

fn mark(r: &Receiver) -> Mark {
    (identity_key_bytes(&r.owner), r.authenticated)
}

/// The model's decoder of an encoding named as [`Api::decode`] names it.
///
/// # Errors
///
/// The decoding error.
pub fn decode(encoding: &str, b: &[u8]) -> R<()> {
    match encoding {
        "Message" => wire::read_message(b).map(drop),
        "IdentityKey" => read_identity_key(b).map(drop),
        "SignedPreKey" => keys::read_signed_prekey(b).map(drop),
        "OneTimePreKey" => keys::read_one_time_prekey(b).map(drop),
        "KemPreKey" => keys::read_kem_prekey(b).map(drop),
        "PreKeyBundle" => read_bundle(b).map(drop),
        "Session" => Sess::read(b).map(drop),
        "Device" => Dev::read(b).map(drop),
        "GroupMessage" => read_message(b).map(drop),
        "SenderKeyDistribution" => read_distribution(b).map(drop),
        "GroupSender" => Sender::read(b).map(drop),
        "GroupReceiver" => Receiver::read(b).map(drop),
        "GroupReceivers" => Store::read(b).map(drop),
        "PeerRecord" => Record::read(b).map(drop),
        "GroupSession" => Group::read(b).map(drop),
        other => panic!("no encoding {other}"),
    }
}

/// The encoding name of a state type tag.
pub fn encoding_of(tag: u8) -> &'static str {
    match tag {
        0x20 => "Session",
        0x21 => "Device",
        0x22 => "GroupSender",
        0x23 => "GroupReceiver",
        0x24 => "GroupReceivers",
        0x25 => "PeerRecord",
        0x26 => "GroupSession",
        other => panic!("no saved state of type {other:#04x}"),
    }
}

/// The §15.7 authenticated install of a decrypted plaintext into a store.
fn install(store: &mut Store, plaintext: &[u8], peer: &[u8; 32]) -> R<Outcome> {
    let r = Receiver::install(plaintext, &store.group, Some(peer))?;
    store.insert(r).map(|(o, _)| o)
}

impl Api for ModelApi {
    fn name(&self) -> &'static str {
        "model"
    }

    fn decode(&self, encoding: &str, input: &[u8]) -> R<()> {
        decode(encoding, input)
    }

    fn verify_bundle(&self, bundle: &[u8], expected: Option<&[u8]>) -> R<()> {
        let (b, _) = read_bundle(bundle)?;
        let expected = expected.map(identity).transpose()?;
        b.verify(expected.as_ref())
    }

    fn device_new(&self, now: u64, rng: &mut dyn Source) -> R<Bytes> {
        Ok(Dev::new(rng, now).encode())
    }

    fn device_call(
        &self,
        device: &[u8],
        call: DeviceCall,
        rng: &mut dyn Source,
    ) -> R<(Bytes, Vec<Bytes>)> {
        let mut d = Dev::decode(device)?;
        let made = match call {
            DeviceCall::RotateSignedPreKey(now) => {
                d.rotate_spk(rng, now)?;
                vec![d.spk().encoded()]
            }
            DeviceCall::RemoveSignedPreKey(id) => {
                d.remove_spk(id)?;
                vec![]
            }
            DeviceCall::GenerateOneTimePreKeys(count) => d
                .gen_opks(rng, count)?
                .into_iter()
                .map(|id| d.opk_encoded(id))
                .collect(),
            DeviceCall::RotateKemPreKey(now) => {
                d.rotate_kem(rng, now)?;
                vec![d.last_resort_kem().public().encoded()]
            }
            DeviceCall::RemoveKemPreKey(id) => {
                d.remove_kem(id)?;
                vec![]
            }
            DeviceCall::GenerateKemPreKeys(count) => d
                .gen_kems(rng, count)?
                .into_iter()
                .map(|id| d.kem_otks[&id].public().encoded())
                .collect(),
            DeviceCall::ResetPreKeys(now, last) => {
                d.reset(rng, now, last)?;
                vec![d.spk().encoded(), d.last_resort_kem().public().encoded()]
            }
        };
        Ok((d.encode(), made))
    }

    fn bundle(&self, device: &[u8], opk: Option<u32>, kem: Option<u32>) -> R<Bytes> {
        let d = Dev::decode(device)?;
        if opk.is_some_and(|id| !d.opks.contains_key(&id)) {
            return Err(refusal("UnknownOneTimePreKey"));
        }
        if kem.is_some_and(|id| d.kem(id).is_none()) {
            return Err(refusal("UnknownKemPreKey"));
        }
        Ok(d.bundle(opk, kem).encoded())
    }

    fn initiate(
        &self,
        device: &[u8],
        bundle: &[u8],
        expected: Option<&[u8]>,
        policy: Policy,
        rng: &mut dyn Source,
    ) -> R<Bytes> {
        let d = Dev::decode(device)?;
        let (b, _) = read_bundle(bundle)?;
        let expected = expected.map(identity).transpose()?;
        b.verify(expected.as_ref())?;
        let (s, _) = pqxdh::initiate(&d, &b, policy, rng)?;
        Ok(s.encode())
    }

    fn accept(&self, device: &[u8], message: &[u8], policy: Policy) -> R<(Bytes, Bytes, Bytes)> {
        let mut d = Dev::decode(device)?;
        let (s, pt, _, _) = pqxdh::accept(&mut d, message, policy)?;
        Ok((d.encode(), s.encode(), pt))
    }

    fn encrypt(&self, session: &[u8], plaintext: &[u8], rng: &mut dyn Source) -> R<(Bytes, Bytes)> {
        let mut s = Sess::decode(session)?;
        let (m, _) = s.encrypt(rng, plaintext)?;
        Ok((s.encode(), m))
    }

    fn decrypt(&self, session: &[u8], message: &[u8]) -> R<(Bytes, Bytes)> {
        let mut s = Sess::decode(session)?;
        wire::read_message(message)?;
        let (pt, _, _) = s.decrypt(message)?;
        Ok((s.encode(), pt))
    }

    fn seal(&self, state: &[u8], key: &[u8; 32], context: &[u8], rng: &mut dyn Source) -> R<Bytes> {
        Ok(sealed::seal_state(key, context, state, rng)?.bytes)
    }

    fn unseal(&self, sealed_bytes: &[u8], key: &[u8; 32], context: &[u8], inner: u8) -> R<Bytes> {
        let (plain, _) = sealed::open_state(sealed_bytes, key, context, inner)?;
        decode(encoding_of(inner), &plain)?;
        Ok(plain)
    }

    fn group_sender_new(&self, group: &[u8; 32], device: &[u8], rng: &mut dyn Source) -> R<Bytes> {
        let d = Dev::decode(device)?;
        Ok(Sender::new(rng, *group, &d.seed).encode())
    }

    fn group_sender_rotate(&self, sender: &[u8], device: &[u8], rng: &mut dyn Source) -> R<Bytes> {
        let mut s = Sender::decode(sender)?;
        let d = Dev::decode(device)?;
        s.rotate(rng, &d.seed)?;
        Ok(s.encode())
    }

    fn group_encrypt(
        &self,
        sender: &[u8],
        plaintext: &[u8],
        rng: &mut dyn Source,
    ) -> R<(Bytes, Bytes)> {
        let mut s = Sender::decode(sender)?;
        let (m, _) = s.encrypt(rng, plaintext)?;
        Ok((s.encode(), m))
    }

    fn group_distribution(&self, sender: &[u8]) -> R<Bytes> {
        Ok(Sender::decode(sender)?.distribution().encoded())
    }

    fn store_new(&self, group: &[u8; 32]) -> R<Bytes> {
        Ok(Store::new(*group).encode())
    }

    fn store_import(&self, store: &[u8], distribution: &[u8]) -> R<(Bytes, Outcome)> {
        let mut s = Store::decode(store)?;
        let r = Receiver::install(distribution, &s.group, None)?;
        let (o, _) = s.insert(r)?;
        Ok((s.encode(), o))
    }

    fn store_receive_distribution(
        &self,
        store: &[u8],
        session: &[u8],
        message: &[u8],
    ) -> R<(Bytes, Bytes, Outcome)> {
        let mut st = Store::decode(store)?;
        let mut se = Sess::decode(session)?;
        wire::read_message(message)?;
        let (pt, _, _) = se.decrypt(message)?;
        let o = install(&mut st, &pt, &se.remote)?;
        Ok((st.encode(), se.encode(), o))
    }

    fn store_install_accepted(
        &self,
        store: &[u8],
        device: &[u8],
        message: &[u8],
        policy: Policy,
    ) -> R<AcceptedInstall> {
        let mut st = Store::decode(store)?;
        let mut d = Dev::decode(device)?;
        let (se, pt, _, _) = pqxdh::accept(&mut d, message, policy)?;
        let installed = install(&mut st, &pt, &se.remote).map(|o| (st.encode(), o));
        Ok((d.encode(), se.encode(), installed))
    }

    fn store_decrypt(&self, store: &[u8], message: &[u8]) -> R<(Bytes, Bytes, Mark)> {
        let mut s = Store::decode(store)?;
        read_message(message)?;
        let (pt, _, _) = s.decrypt(message)?;
        let (h, _) = read_message(message)?;
        let m = mark(s.get(&h.chain).expect("the chain that decrypted"));
        Ok((s.encode(), pt, m))
    }

    fn store_remove_owner(&self, store: &[u8], owner: &[u8]) -> R<(Bytes, u64)> {
        let mut s = Store::decode(store)?;
        let n = s.remove_owner(&identity(owner)?);
        Ok((s.encode(), n as u64))
    }

    fn receiver_receive_distribution(
        &self,
        group: &[u8; 32],
        session: &[u8],
        message: &[u8],
    ) -> R<(Bytes, Bytes)> {
        let mut se = Sess::decode(session)?;
        wire::read_message(message)?;
        let (pt, _, _) = se.decrypt(message)?;
        let r = Receiver::install(&pt, group, Some(&se.remote))?;
        Ok((r.encode(), se.encode()))
    }

    fn receiver_import(&self, group: &[u8; 32], distribution: &[u8]) -> R<Bytes> {
        read_distribution(distribution)?;
        Ok(Receiver::install(distribution, group, None)?.encode())
    }

    fn receiver_decrypt(&self, receiver: &[u8], message: &[u8]) -> R<(Bytes, Bytes, Mark)> {
        let mut r = Receiver::decode(receiver)?;
        read_message(message)?;
        let (pt, _) = r.decrypt(message)?;
        Ok((r.encode(), pt, mark(&r)))
    }
}
