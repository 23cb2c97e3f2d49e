//! The session layer (SPEC §16) for JavaScript: `PeerRecord` per user,
//! `GroupSession` over every device of every member. Results with several
//! parts are plain objects; a message the layer cannot decrypt throws a
//! `SottoError` that also carries `action`, the step to take.

use std::cell::{RefCell, RefMut};
use std::rc::Rc;

use js_sys::{Array, Object, Reflect, Uint8Array};
use sotto::Message;
use sotto::group::GroupMessage;
use sotto::sessions::{self as core, DeviceId, UserId};
use sotto_bindings_common::{BindingError, OsRng, group_id};
use wasm_bindgen::prelude::*;
use zeroize::Zeroizing;

use crate::{
    Device, GroupPlaintext, IntoJs, JsResult, PreKeyBundle, identity, js_error, key, outcome,
};

/// A plain object with these properties.
fn object(pairs: &[(&str, JsValue)]) -> JsValue {
    let object = Object::new();
    for (name, value) in pairs {
        // Setting a property on a fresh plain object cannot fail.
        let _ = Reflect::set(&object, &(*name).into(), value);
    }
    object.into()
}

fn bytes(bytes: &[u8]) -> JsValue {
    Uint8Array::from(bytes).into()
}

fn ids(devices: &[DeviceId]) -> JsValue {
    devices
        .iter()
        .map(|d| JsValue::from(d.0))
        .collect::<Array>()
        .into()
}

fn user_id(bytes: &[u8]) -> JsResult<UserId> {
    UserId::new(bytes).js()
}

fn sent(sent: core::Sent) -> JsValue {
    let messages: Array = sent
        .messages
        .into_iter()
        .map(|o| {
            object(&[
                ("device", o.device.0.into()),
                ("message", bytes(o.message.as_bytes())),
            ])
        })
        .collect();
    let unusable: Array = sent
        .unusable
        .into_iter()
        .map(|u| {
            let e = BindingError::from(u.error);
            object(&[
                ("device", u.device.0.into()),
                ("code", e.code().code().into()),
                ("kind", e.code().name().into()),
            ])
        })
        .collect();
    object(&[("messages", messages.into()), ("unusable", unusable.into())])
}

fn hint_object(hint: &core::RetryHint) -> JsValue {
    object(&[
        ("ratchetKey", bytes(&hint.ratchet_key)),
        ("messageNumber", hint.message_number.into()),
        (
            "baseKey",
            hint.base_key.map_or(JsValue::UNDEFINED, |k| bytes(&k)),
        ),
    ])
}

/// `{type, reason}` or `{type, hint}`: the action of SPEC §16.6.
fn action_object(action: &core::Action) -> JsValue {
    use core::{Action as A, Ignore as I, RetryLater as L};
    match action {
        A::Ignore(reason) => {
            let reason = match reason {
                I::Duplicate => "Duplicate",
                I::Malformed => "Malformed",
                I::Downgrade => "Downgrade",
                I::RecoveryPending => "RecoveryPending",
                I::WrongLocalDevice => "WrongLocalDevice",
                #[allow(unreachable_patterns)]
                _ => "Other",
            };
            object(&[("type", "Ignore".into()), ("reason", reason.into())])
        }
        A::RetryLater(reason) => {
            let reason = match reason {
                L::UnknownDevice => "UnknownDevice",
                L::IdentityChangePending => "IdentityChangePending",
                L::UnknownIdentity => "UnknownIdentity",
                L::MissingDistribution => "MissingDistribution",
                #[allow(unreachable_patterns)]
                _ => "Other",
            };
            object(&[("type", "RetryLater".into()), ("reason", reason.into())])
        }
        A::RequestRetry(hint) => {
            object(&[("type", "RequestRetry".into()), ("hint", hint_object(hint))])
        }
        A::StartNewSession(hint) => object(&[
            ("type", "StartNewSession".into()),
            ("hint", hint_object(hint)),
        ]),
    }
}

/// The `SottoError` of a failure, with its `action`.
fn failure(failure: core::Failure) -> JsValue {
    let error = js_error(failure.error.into());
    let _ = Reflect::set(&error, &"action".into(), &action_object(&failure.action));
    error
}

/// A message that is no message: dropped as malformed.
fn malformed(error: sotto::Error) -> JsValue {
    failure_of(core::Action::Ignore(core::Ignore::Malformed), error)
}

fn failure_of(action: core::Action, error: sotto::Error) -> JsValue {
    let error_value = js_error(error.into());
    let _ = Reflect::set(&error_value, &"action".into(), &action_object(&action));
    error_value
}

fn hint(
    ratchet_key: &[u8],
    message_number: u32,
    base_key: Option<Vec<u8>>,
) -> JsResult<core::RetryHint> {
    let key32 = |b: &[u8], what: &str| -> JsResult<[u8; 32]> {
        b.try_into().map_err(|_| {
            js_error(BindingError::invalid(format!(
                "{what} must be 32 bytes, got {}",
                b.len()
            )))
        })
    };
    Ok(core::RetryHint {
        ratchet_key: key32(ratchet_key, "ratchet key")?,
        message_number,
        base_key: base_key
            .as_deref()
            .map(|k| key32(k, "base key"))
            .transpose()?,
    })
}

/// A message the session layer decrypted.
#[wasm_bindgen]
pub struct Received(core::Received);

#[wasm_bindgen]
impl Received {
    /// The device it came from.
    #[wasm_bindgen(getter)]
    pub fn device(&self) -> u32 {
        self.0.device().0
    }

    /// `"Payload"`, `"Distribution"`, `"RetryRequest"` or
    /// `"DistributionRequest"`.
    #[wasm_bindgen(getter)]
    pub fn kind(&self) -> String {
        match self.0.content() {
            core::Content::Payload(_) => "Payload",
            core::Content::Distribution(_) => "Distribution",
            core::Content::RetryRequest(_) => "RetryRequest",
            core::Content::DistributionRequest(_) => "DistributionRequest",
        }
        .into()
    }

    /// The payload of a payload message.
    #[wasm_bindgen(getter)]
    pub fn payload(&self) -> Option<Vec<u8>> {
        match self.0.content() {
            core::Content::Payload(p) => Some(p.as_bytes().to_vec()),
            _ => None,
        }
    }

    /// The identity key (34 bytes) of the device whose session decrypted
    /// it (payloads and distributions).
    #[wasm_bindgen(getter)]
    pub fn sender(&self) -> Option<Vec<u8>> {
        match self.0.content() {
            core::Content::Payload(p) => Some(p.sender().to_bytes().to_vec()),
            core::Content::Distribution(d) => Some(d.sender().to_bytes().to_vec()),
            _ => None,
        }
    }

    /// The group (32 bytes) of a distribution or distribution request.
    #[wasm_bindgen(getter, js_name = groupId)]
    pub fn group_id(&self) -> Option<Vec<u8>> {
        match self.0.content() {
            core::Content::Distribution(d) => Some(d.group_id().as_bytes().to_vec()),
            core::Content::DistributionRequest(g) => Some(g.as_bytes().to_vec()),
            _ => None,
        }
    }

    /// The hint of a retry request: `{ratchetKey, messageNumber, baseKey}`.
    #[wasm_bindgen(getter, js_name = retryHint)]
    pub fn retry_hint(&self) -> JsValue {
        match self.0.content() {
            core::Content::RetryRequest(h) => hint_object(h),
            _ => JsValue::UNDEFINED,
        }
    }
}

/// Everything about one user: its devices with their trusted identities
/// and sessions. Save it (sealed) after every call that changed it.
#[wasm_bindgen]
pub struct PeerRecord(Rc<RefCell<core::PeerRecord>>);

impl PeerRecord {
    fn wrap(record: core::PeerRecord) -> Self {
        Self(Rc::new(RefCell::new(record)))
    }

    fn get(&self) -> RefMut<'_, core::PeerRecord> {
        self.0.borrow_mut()
    }
}

#[wasm_bindgen]
impl PeerRecord {
    /// A record of the user `user` (1 to 64 bytes) seen by the local device
    /// with the encoded identity key `localIdentity`.
    ///
    /// # Errors
    ///
    /// `InvalidEncoding` (user id), the identity key's parse errors.
    #[wasm_bindgen(constructor)]
    pub fn new(user: &[u8], local_identity: &[u8]) -> JsResult<PeerRecord> {
        Ok(Self::wrap(core::PeerRecord::new(
            user_id(user)?,
            identity(local_identity)?,
        )))
    }

    /// The local user's own record, for the local device `localDevice`.
    ///
    /// # Errors
    ///
    /// As the constructor.
    #[wasm_bindgen(js_name = newOwn)]
    pub fn new_own(user: &[u8], local_device: u32, local_identity: &[u8]) -> JsResult<PeerRecord> {
        Ok(Self::wrap(core::PeerRecord::new_own(
            user_id(user)?,
            DeviceId(local_device),
            identity(local_identity)?,
        )))
    }

    /// Restores a record from `toBytes`.
    ///
    /// # Errors
    ///
    /// The parse errors.
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(bytes: &[u8]) -> JsResult<PeerRecord> {
        core::PeerRecord::from_bytes(bytes).map(Self::wrap).js()
    }

    /// Restores a record from `seal`.
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, `TooLarge`, `AuthenticationFailed`, the parse
    /// errors.
    pub fn unseal(sealed: &[u8], storage_key: &[u8], context: &[u8]) -> JsResult<PeerRecord> {
        core::PeerRecord::unseal(sealed, &key(storage_key)?, context)
            .map(Self::wrap)
            .js()
    }

    /// The plain saved state (secret: prefer `seal`).
    #[wasm_bindgen(js_name = toBytes)]
    pub fn to_bytes(&self) -> Vec<u8> {
        self.get().to_bytes().to_vec()
    }

    /// The saved state encrypted under a 32-byte key, bound to `context`.
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, `TooLarge`, `Randomness`.
    pub fn seal(&self, storage_key: &[u8], context: &[u8]) -> JsResult<Vec<u8>> {
        self.get()
            .seal(&key(storage_key)?, context, &mut OsRng)
            .js()
    }

    /// 0 when new, one more after every change.
    pub fn generation(&self) -> u64 {
        self.get().generation()
    }

    /// The ids of the devices the record holds.
    pub fn devices(&self) -> Vec<u32> {
        self.get().devices().map(|d| d.device.0).collect()
    }

    /// Takes the device list the server returned: `devices[i]` has the
    /// encoded identity key `identities[i]`. Returns `{added, relisted,
    /// removed, deleted, identityChanges: [{device, newIdentity}],
    /// withdrawn}`.
    ///
    /// # Errors
    ///
    /// `InvalidArgument` (lengths differ), the identity keys' parse errors,
    /// `InvalidDeviceList`.
    #[wasm_bindgen(js_name = updateDevices)]
    pub fn update_devices(
        &mut self,
        devices: Vec<u32>,
        identities: Vec<Uint8Array>,
        now: u64,
    ) -> JsResult<JsValue> {
        if devices.len() != identities.len() {
            return Err(js_error(BindingError::invalid(
                "devices and identities differ in length",
            )));
        }
        let mut list = Vec::with_capacity(devices.len());
        for (device, id) in devices.iter().zip(&identities) {
            list.push((DeviceId(*device), identity(&id.to_vec())?));
        }
        let changes = self.get().update_devices(&list, now).js()?;
        let identity_changes: Array = changes
            .identity_changes
            .iter()
            .map(|c| {
                object(&[
                    ("device", c.device.0.into()),
                    ("newIdentity", bytes(&c.new_identity.to_bytes())),
                ])
            })
            .collect();
        Ok(object(&[
            ("added", ids(&changes.added)),
            ("relisted", ids(&changes.relisted)),
            ("removed", ids(&changes.removed)),
            ("deleted", ids(&changes.deleted)),
            ("identityChanges", identity_changes.into()),
            ("withdrawn", ids(&changes.withdrawn)),
        ]))
    }

    /// Trusts the new identity of `device` once the user accepted it.
    ///
    /// # Errors
    ///
    /// The identity key's parse errors, `UnknownDevice`, `IdentityMismatch`.
    #[wasm_bindgen(js_name = acknowledgeIdentity)]
    pub fn acknowledge_identity(&mut self, device: u32, identity_key: &[u8]) -> JsResult<()> {
        let id = identity(identity_key)?;
        self.get().acknowledge_identity(DeviceId(device), &id).js()
    }

    /// `{ready, needsBundle, blocked}`: which devices a message reaches now.
    #[wasm_bindgen(js_name = planSend)]
    pub fn plan_send(&self, now: u64) -> JsValue {
        let plan = self.get().plan_send(now);
        object(&[
            ("ready", ids(&plan.ready)),
            ("needsBundle", ids(&plan.needs_bundle)),
            ("blocked", ids(&plan.blocked)),
        ])
    }

    /// Starts a session with `device` from its bundle.
    ///
    /// # Errors
    ///
    /// `IdentityMismatch`, `UnknownDevice`, `IdentityChangePending`,
    /// `InvalidSignature`, `PostQuantumRequired`, `Randomness`.
    #[wasm_bindgen(js_name = addBundle)]
    pub fn add_bundle(
        &mut self,
        local: &Device,
        device: u32,
        bundle: &PreKeyBundle,
        now: u64,
    ) -> JsResult<()> {
        self.get()
            .add_bundle(
                &local.0,
                DeviceId(device),
                bundle.0.clone(),
                now,
                &mut OsRng,
            )
            .js()
    }

    /// Encrypts `payload` for every device with a usable session:
    /// `{messages: [{device, message}], unusable: [{device, code, kind}]}`.
    ///
    /// # Errors
    ///
    /// `PlaintextTooLarge`, `Randomness`.
    pub fn encrypt(&mut self, payload: &[u8]) -> JsResult<JsValue> {
        Ok(sent(self.get().encrypt(payload, &mut OsRng).js()?))
    }

    /// Encrypts `payload` for `device` alone.
    ///
    /// # Errors
    ///
    /// `UnknownDevice`, `IdentityChangePending`, `NoSession`,
    /// `PlaintextTooLarge`, `Randomness`.
    #[wasm_bindgen(js_name = encryptTo)]
    pub fn encrypt_to(&mut self, device: u32, payload: &[u8]) -> JsResult<Vec<u8>> {
        Ok(self
            .get()
            .encrypt_to(DeviceId(device), payload, &mut OsRng)
            .js()?
            .into_bytes())
    }

    /// Routes a message from `from` to its session and decrypts it.
    ///
    /// # Errors
    ///
    /// A `SottoError` with `action` (what to do); nothing changed.
    pub fn decrypt(
        &mut self,
        local: &mut Device,
        from: u32,
        message: &[u8],
        now: u64,
    ) -> JsResult<Received> {
        let message = Message::from_bytes(message).map_err(malformed)?;
        self.get()
            .decrypt(&mut local.0, DeviceId(from), &message, now)
            .map(Received)
            .map_err(failure)
    }

    /// Asks `device` to resend the message named by the hint (the answer
    /// to `RequestRetry`).
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, `UnknownDevice`, `IdentityChangePending`,
    /// `NoSession`, `RecoveryRateLimited`, `Randomness`.
    #[wasm_bindgen(js_name = requestRetry)]
    pub fn request_retry(
        &mut self,
        device: u32,
        ratchet_key: &[u8],
        message_number: u32,
        base_key: Option<Vec<u8>>,
        now: u64,
    ) -> JsResult<Vec<u8>> {
        let hint = hint(ratchet_key, message_number, base_key)?;
        Ok(self
            .get()
            .request_retry(DeviceId(device), &hint, now, &mut OsRng)
            .js()?
            .into_bytes())
    }

    /// The safety number (60 digits in groups) of the local user (own
    /// record `own`) and this record's user.
    ///
    /// # Errors
    ///
    /// `IdentityMismatch`, `InvalidDeviceList`; `InvalidArgument` for this
    /// record itself.
    #[wasm_bindgen(js_name = safetyNumber)]
    pub fn safety_number(&self, own: &PeerRecord) -> JsResult<String> {
        if Rc::ptr_eq(&self.0, &own.0) {
            return Err(js_error(BindingError::invalid("own is this record")));
        }
        Ok(self.get().safety_number(&own.get()).js()?.to_string())
    }
}

/// Records given together to a group call (each at most once).
#[wasm_bindgen]
#[derive(Default)]
pub struct PeerRecords(Vec<Rc<RefCell<core::PeerRecord>>>);

#[wasm_bindgen]
impl PeerRecords {
    /// An empty list.
    #[wasm_bindgen(constructor)]
    pub fn new() -> PeerRecords {
        Self::default()
    }

    /// Adds `record` (shared, not moved: it stays usable).
    pub fn add(&mut self, record: &PeerRecord) {
        self.0.push(Rc::clone(&record.0));
    }
}

impl PeerRecords {
    /// Runs `f` on every record borrowed mutably, refusing one given twice.
    fn with<T>(&self, f: impl FnOnce(&mut [&mut core::PeerRecord]) -> JsResult<T>) -> JsResult<T> {
        for (i, a) in self.0.iter().enumerate() {
            if self.0.iter().skip(i + 1).any(|b| Rc::ptr_eq(a, b)) {
                return Err(js_error(BindingError::invalid("a record is given twice")));
            }
        }
        let mut guards: Vec<RefMut<'_, core::PeerRecord>> =
            self.0.iter().map(|r| r.borrow_mut()).collect();
        let mut refs: Vec<&mut core::PeerRecord> = guards.iter_mut().map(|g| &mut **g).collect();
        f(&mut refs)
    }
}

/// `[{user, sent}]` of a fan-out.
fn fanout(fanout: core::Fanout) -> JsValue {
    fanout
        .users
        .into_iter()
        .map(|(user, s)| object(&[("user", bytes(user.as_bytes())), ("sent", sent(s))]))
        .collect::<Array>()
        .into()
}

/// A group over the session layer.
#[wasm_bindgen]
pub struct GroupSession(core::GroupSession);

#[wasm_bindgen]
impl GroupSession {
    /// A new group `groupId` (32 bytes) with the local user alone.
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, `InvalidEncoding`, `Randomness`.
    #[wasm_bindgen(constructor)]
    pub fn new(group: &[u8], local_user: &[u8], local: &Device) -> JsResult<GroupSession> {
        core::GroupSession::new(
            &mut OsRng,
            group_id(group).js()?,
            user_id(local_user)?,
            &local.0,
        )
        .map(Self)
        .js()
    }

    /// Restores a group from `toBytes`.
    ///
    /// # Errors
    ///
    /// The parse errors.
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(bytes: &[u8]) -> JsResult<GroupSession> {
        core::GroupSession::from_bytes(bytes).map(Self).js()
    }

    /// Restores a group from `seal`.
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, `TooLarge`, `AuthenticationFailed`, the parse
    /// errors.
    pub fn unseal(sealed: &[u8], storage_key: &[u8], context: &[u8]) -> JsResult<GroupSession> {
        core::GroupSession::unseal(sealed, &key(storage_key)?, context)
            .map(Self)
            .js()
    }

    /// The plain saved state (secret: prefer `seal`).
    #[wasm_bindgen(js_name = toBytes)]
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.to_bytes().to_vec()
    }

    /// The saved state encrypted under a 32-byte key.
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, `TooLarge`, `Randomness`.
    pub fn seal(&self, storage_key: &[u8], context: &[u8]) -> JsResult<Vec<u8>> {
        self.0.seal(&key(storage_key)?, context, &mut OsRng).js()
    }

    /// 0 when new, one more after every change.
    pub fn generation(&self) -> u64 {
        self.0.generation()
    }

    /// How many member user ids the group holds (the local user included).
    #[wasm_bindgen(js_name = memberCount)]
    pub fn member_count(&self) -> u32 {
        u32::try_from(self.0.members().count()).unwrap_or(u32::MAX)
    }

    /// How many other devices' chains the group holds.
    #[wasm_bindgen(js_name = receiverCount)]
    pub fn receiver_count(&self) -> u32 {
        u32::try_from(self.0.receivers().len()).unwrap_or(u32::MAX)
    }

    /// Adds `user`; returns whether it was new.
    ///
    /// # Errors
    ///
    /// `InvalidEncoding`, `TooManyGroupMembers`.
    #[wasm_bindgen(js_name = addMember)]
    pub fn add_member(&mut self, user: &[u8]) -> JsResult<bool> {
        self.0.add_member(user_id(user)?).js()
    }

    /// Encrypts the local chain's distribution for every device of the
    /// records: `[{user, sent}]`.
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, `NotGroupMember`, `IdentityMismatch`,
    /// `Randomness`.
    pub fn distribute(&self, records: &PeerRecords) -> JsResult<JsValue> {
        records.with(|refs| Ok(fanout(self.0.distribute(refs, &mut OsRng).js()?)))
    }

    /// Installs a distribution that `record` decrypted.
    ///
    /// # Errors
    ///
    /// `InvalidEncoding`, `NotGroupMember`, `IdentityMismatch`,
    /// `IdentityChangePending`, then the store's errors.
    pub fn install(&mut self, record: &PeerRecord, received: &Received) -> JsResult<String> {
        Ok(outcome(self.0.install(&record.get(), &received.0).js()?))
    }

    /// Encrypts `payload` to the group.
    ///
    /// # Errors
    ///
    /// `PlaintextTooLarge`, `ChainExhausted`, `Randomness`.
    pub fn encrypt(&mut self, payload: &[u8]) -> JsResult<Vec<u8>> {
        let payload = Zeroizing::new(payload.to_vec());
        Ok(self.0.encrypt(&payload, &mut OsRng).js()?.into_bytes())
    }

    /// Decrypts a group message.
    ///
    /// # Errors
    ///
    /// A `SottoError` with `action`.
    pub fn decrypt(&mut self, message: &[u8]) -> JsResult<GroupPlaintext> {
        let message = GroupMessage::from_bytes(message).map_err(malformed)?;
        self.0
            .decrypt(&message)
            .map(GroupPlaintext)
            .map_err(failure)
    }

    /// Removes `user`, replaces the local chain and hands it to every
    /// device of the records (exactly the remaining members').
    ///
    /// # Errors
    ///
    /// `InvalidArgument`, `InvalidEncoding`, `NotGroupMember`,
    /// `IdentityMismatch`, `Randomness`.
    #[wasm_bindgen(js_name = removeMember)]
    pub fn remove_member(
        &mut self,
        local: &Device,
        user: &[u8],
        records: &PeerRecords,
    ) -> JsResult<JsValue> {
        let user = user_id(user)?;
        let group = &mut self.0;
        records.with(|refs| {
            Ok(fanout(
                group
                    .remove_member(&local.0, &user, refs, &mut OsRng)
                    .js()?,
            ))
        })
    }

    /// After restoring an older copy: whether it was stale (then every
    /// chain was dropped and the local one replaced).
    ///
    /// # Errors
    ///
    /// `Randomness`.
    #[wasm_bindgen(js_name = afterRestore)]
    pub fn after_restore(&mut self, local: &Device, last_generation: u64) -> JsResult<bool> {
        self.0
            .after_restore(&local.0, last_generation, &mut OsRng)
            .js()
    }
}
