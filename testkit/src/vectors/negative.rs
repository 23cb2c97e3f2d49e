//! negative.json (and group.json's negative vectors): each input must fail
//! with exactly the named error, and a failing call on a state must leave
//! it unchanged.

use serde_json::Value;
use sotto::group::{GroupMessage, GroupReceiver, GroupSender, SenderKeyDistribution};
use sotto::{
    Device, Error, IdentityKey, Message, OneTimePreKey, PreKeyBundle, PreKeyMessage, Session,
    SignedPreKey, StorageKey,
};

use super::json::{api, b, b32, eq, input, s};
use super::{Res, error_json};
use crate::rng::ReplayRng;

fn fixture(fixtures: &Value, v: &Value, key: &str) -> Result<Vec<u8>, String> {
    b(fixtures, s(v, key)?)
}

fn unchanged(before: &[u8], after: &[u8]) -> Res {
    eq("state after the error", after, before)
}

fn key(v: &Value) -> Result<StorageKey, String> {
    Ok(StorageKey::from_bytes(b32(v, "storage_key")?))
}

pub(super) fn verify(fixtures: &Value, v: &Value) -> Res {
    let result: Result<(), Error> = match s(v, "operation")? {
        "Message::from_bytes" => Message::from_bytes(&input(v)?).map(drop),
        "IdentityKey::from_bytes" => IdentityKey::from_bytes(&input(v)?).map(drop),
        "SignedPreKey::from_bytes" => SignedPreKey::from_bytes(&input(v)?).map(drop),
        "OneTimePreKey::from_bytes" => OneTimePreKey::from_bytes(&input(v)?).map(drop),
        "PreKeyBundle::from_bytes" => PreKeyBundle::from_bytes(&input(v)?).map(drop),
        "PreKeyBundle::verify" => {
            let bundle = api("bundle decode", PreKeyBundle::from_bytes(&input(v)?))?;
            bundle.verify().map(drop)
        }
        "PreKeyBundle::verify_for" => {
            let bundle = api("bundle decode", PreKeyBundle::from_bytes(&input(v)?))?;
            let expected = api("identity", IdentityKey::from_bytes(&b(v, "expected")?))?;
            bundle.verify_for(&expected).map(drop)
        }
        "Session::from_bytes" => Session::from_bytes(&input(v)?).map(drop),
        "Device::from_bytes" => Device::from_bytes(&input(v)?).map(drop),
        "Session::unseal" => Session::unseal(&input(v)?, &key(v)?).map(drop),
        "Device::unseal" => Device::unseal(&input(v)?, &key(v)?).map(drop),
        "Session::decrypt" => {
            let state = fixture(fixtures, v, "session")?;
            let mut session = api("session", Session::from_bytes(&state))?;
            let message = api("parse", Message::from_bytes(&input(v)?))?;
            let r = session.decrypt(&message).map(drop);
            unchanged(&state, &session.to_bytes())?;
            r
        }
        "Session::encrypt" => {
            let state = fixture(fixtures, v, "session")?;
            let mut session = api("session", Session::from_bytes(&state))?;
            let mut rng = ReplayRng::new([]);
            let r = session.encrypt(&mut rng, &input(v)?).map(drop);
            unchanged(&state, &session.to_bytes())?;
            r
        }
        "Session::accept" => {
            let state = fixture(fixtures, v, "device")?;
            let mut device = api("device", Device::from_bytes(&state))?;
            let m = api("parse", PreKeyMessage::from_vec(input(v)?))?;
            let r = Session::accept(&mut device, &m).map(drop);
            unchanged(&state, &device.to_bytes())?;
            r
        }
        "GroupMessage::from_bytes" => GroupMessage::from_bytes(&input(v)?).map(drop),
        "SenderKeyDistribution::from_bytes" => {
            SenderKeyDistribution::from_bytes(&input(v)?).map(drop)
        }
        "GroupSender::from_bytes" => GroupSender::from_bytes(&input(v)?).map(drop),
        "GroupReceiver::from_bytes" => GroupReceiver::from_bytes(&input(v)?).map(drop),
        "GroupSender::unseal" => GroupSender::unseal(&input(v)?, &key(v)?).map(drop),
        "GroupReceiver::unseal" => GroupReceiver::unseal(&input(v)?, &key(v)?).map(drop),
        "GroupReceiver::decrypt" => {
            let state = fixture(fixtures, v, "receiver")?;
            let mut receiver = api("receiver", GroupReceiver::from_bytes(&state))?;
            let message = api("parse", GroupMessage::from_bytes(&input(v)?))?;
            let r = receiver.decrypt(&message).map(drop);
            unchanged(&state, &receiver.to_bytes())?;
            r
        }
        "GroupSender::encrypt" => {
            let state = fixture(fixtures, v, "sender")?;
            let mut sender = api("sender", GroupSender::from_bytes(&state))?;
            let mut rng = ReplayRng::new([]);
            let r = sender.encrypt(&mut rng, &input(v)?).map(drop);
            unchanged(&state, &sender.to_bytes())?;
            rng.finish()?;
            r
        }
        other => return Err(format!("unknown operation {other:?}")),
    };
    match result {
        Ok(()) => Err(format!("succeeded, want {}", v["error"])),
        Err(e) if error_json(&e) == v["error"] => Ok(()),
        Err(e) => Err(format!("got {}, want {}", error_json(&e), v["error"])),
    }
}
