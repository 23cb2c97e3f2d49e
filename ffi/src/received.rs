//! What the session layer decrypted (`SottoReceived`), the typed recovery
//! action of a failed decrypt (`SottoFailure`), and retry hints.

use sotto::Message;
use sotto::sessions::{Action, Content, Failure, Ignore, Received, RetryHint, RetryLater};

use crate::buffer::{SottoBuffer, input, input_array, out_buffer, out_value};
use crate::error::{FfiError, FfiResult, SottoError, ffi_call};
use crate::handle::{SottoReceived, free, with_ref};

/// What a decrypted message carried (SPEC §16.10); the values are the frame
/// kinds.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SottoContentKind {
    /// An application payload: `sotto_received_payload`,
    /// `sotto_received_sender_identity_key`.
    Payload = 1,
    /// A sender key distribution for the group `sotto_received_group_id`:
    /// give it to that group's `sotto_group_session_install`.
    Distribution = 2,
    /// The peer could not decrypt the message `sotto_received_retry_hint`
    /// names: resend it (`sotto_retry_hint_matches` finds it among the
    /// messages you sent; `sotto_peer_record_encrypt_to` resends).
    RetryRequest = 3,
    /// The peer asks for this device's distribution of the group
    /// `sotto_received_group_id`: answer with
    /// `sotto_group_session_distribute_to` if the peer is a member.
    DistributionRequest = 4,
}

/// Names a message that could not be decrypted (SPEC §16.10): its ratchet
/// key and message number and, for a prekey message, its base key. Pass it
/// on exactly as sotto returned it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SottoRetryHint {
    /// The message's ratchet key.
    pub ratchet_key: [u8; 32],
    /// Its message number.
    pub message_number: u32,
    /// 1 for a prekey message (`base_key` is set), else 0. Any other value
    /// is refused with `SOTTO_ERROR_INVALID_ARGUMENT`.
    pub has_base_key: u8,
    /// The prekey message's base key; zeros when `has_base_key` is 0.
    pub base_key: [u8; 32],
}

impl SottoRetryHint {
    const ZERO: Self = Self {
        ratchet_key: [0; 32],
        message_number: 0,
        has_base_key: 0,
        base_key: [0; 32],
    };

    pub(crate) fn to_core(self) -> FfiResult<RetryHint> {
        let base_key = match self.has_base_key {
            0 => None,
            1 => Some(self.base_key),
            other => {
                return Err(FfiError::invalid(format!(
                    "hint.has_base_key must be 0 or 1, got {other}"
                )));
            }
        };
        Ok(RetryHint {
            ratchet_key: self.ratchet_key,
            message_number: self.message_number,
            base_key,
        })
    }
}

/// Reads the caller's hint.
///
/// # Safety
///
/// `hint` must be NULL or point to a readable `SottoRetryHint` (whose
/// fields are integers: every bit pattern is a value).
pub(crate) unsafe fn hint_input(hint: *const SottoRetryHint) -> FfiResult<RetryHint> {
    // SAFETY: forwarded from this function's contract (one element).
    let hint = unsafe { input_array(hint, 1, "hint") }?;
    hint.first()
        .ok_or_else(|| FfiError::null("hint"))?
        .to_core()
}

impl From<&RetryHint> for SottoRetryHint {
    fn from(hint: &RetryHint) -> Self {
        Self {
            ratchet_key: hint.ratchet_key,
            message_number: hint.message_number,
            has_base_key: u8::from(hint.base_key.is_some()),
            base_key: hint.base_key.unwrap_or_default(),
        }
    }
}

/// What to do about a message that did not decrypt (SPEC §16.6).
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SottoAction {
    /// The call succeeded, or failed as a call (codes below 100: arguments,
    /// handles, buffers).
    None = 0,
    /// Drop the message; `reason` says why.
    Ignore = 1,
    /// Keep the message and give it again after the step `reason` names.
    RetryLater = 2,
    /// The sessions work but this message is lost: call
    /// `sotto_peer_record_request_retry` with `hint` and send what it
    /// returns.
    RequestRetry = 3,
    /// The peer uses a session this device does not have or that cannot
    /// work: fetch the device's bundle, call
    /// `sotto_peer_record_start_new_session` with `hint` and send what it
    /// returns.
    StartNewSession = 4,
}

/// Why a message is ignored or kept for later.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SottoActionReason {
    /// No reason: the action is `NONE`, `REQUEST_RETRY` or
    /// `START_NEW_SESSION`.
    None = 0,
    /// Ignore: decrypted before (or its key is gone).
    Duplicate = 1,
    /// Ignore: nothing an honest peer sends (a malformed frame or message).
    Malformed = 2,
    /// Ignore: a classical prekey message from a device pinned to
    /// post-quantum key agreement.
    Downgrade = 3,
    /// Ignore: a recovery would help, but one was made for this device too
    /// recently.
    RecoveryPending = 4,
    /// Ignore: the local device given is not this record's.
    WrongLocalDevice = 5,
    /// Retry later: the record does not hold the sending device; refresh
    /// the device list (`sotto_peer_record_update_devices`).
    UnknownDevice = 6,
    /// Retry later: the device has a pending identity change; acknowledge
    /// it first.
    IdentityChangePending = 7,
    /// Retry later: a prekey message under an identity the record does not
    /// know for the device; refresh the device list, which reports the
    /// change.
    UnknownIdentity = 8,
    /// Retry later: a group message whose chain is not installed yet;
    /// install the sender's distribution first (or ask for it with
    /// `sotto_peer_record_request_distribution`).
    MissingDistribution = 9,
}

/// The action a failed decrypt calls for, written on every return of the
/// decrypt functions: `action` `SOTTO_ACTION_NONE` on success and for call
/// errors, else the action, with `reason` (ignore, retry later) or `hint`
/// (request a retry, start a new session).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SottoFailure {
    /// What to do.
    pub action: SottoAction,
    /// Why, for `IGNORE` and `RETRY_LATER`.
    pub reason: SottoActionReason,
    /// The failed message, for `REQUEST_RETRY` and `START_NEW_SESSION`.
    pub hint: SottoRetryHint,
}

impl SottoFailure {
    pub(crate) const NONE: Self = Self {
        action: SottoAction::None,
        reason: SottoActionReason::None,
        hint: SottoRetryHint::ZERO,
    };

    fn with_reason(action: SottoAction, reason: SottoActionReason) -> Self {
        Self {
            action,
            reason,
            ..Self::NONE
        }
    }

    /// Bytes that do not parse as a message: nothing an honest peer sends.
    pub(crate) const MALFORMED: Self = Self {
        action: SottoAction::Ignore,
        reason: SottoActionReason::Malformed,
        hint: SottoRetryHint::ZERO,
    };
}

impl From<&Failure> for SottoFailure {
    fn from(failure: &Failure) -> Self {
        use SottoActionReason as R;
        match &failure.action {
            Action::Ignore(reason) => Self::with_reason(
                SottoAction::Ignore,
                match reason {
                    Ignore::Duplicate => R::Duplicate,
                    Ignore::Malformed => R::Malformed,
                    Ignore::Downgrade => R::Downgrade,
                    Ignore::RecoveryPending => R::RecoveryPending,
                    Ignore::WrongLocalDevice => R::WrongLocalDevice,
                },
            ),
            Action::RetryLater(reason) => Self::with_reason(
                SottoAction::RetryLater,
                match reason {
                    RetryLater::UnknownDevice => R::UnknownDevice,
                    RetryLater::IdentityChangePending => R::IdentityChangePending,
                    RetryLater::UnknownIdentity => R::UnknownIdentity,
                    RetryLater::MissingDistribution => R::MissingDistribution,
                },
            ),
            Action::RequestRetry(hint) => Self {
                action: SottoAction::RequestRetry,
                reason: R::None,
                hint: hint.into(),
            },
            Action::StartNewSession(hint) => Self {
                action: SottoAction::StartNewSession,
                reason: R::None,
                hint: hint.into(),
            },
        }
    }
}

/// The error of a failed layer decrypt, with its action.
pub(crate) fn failed(failure: &Failure, out: &mut SottoFailure) -> FfiError {
    *out = failure.into();
    let action = match failure.action {
        Action::Ignore(reason) => format!("ignore ({reason:?})"),
        Action::RetryLater(reason) => format!("retry later ({reason:?})"),
        Action::RequestRetry(_) => "request a retry".to_owned(),
        Action::StartNewSession(_) => "start a new session".to_owned(),
    };
    FfiError::new(
        SottoError::from_core(&failure.error),
        format!("{}; action: {action}", failure.error),
    )
}

fn content_kind(content: &Content) -> SottoContentKind {
    match content {
        Content::Payload(_) => SottoContentKind::Payload,
        Content::Distribution(_) => SottoContentKind::Distribution,
        Content::RetryRequest(_) => SottoContentKind::RetryRequest,
        Content::DistributionRequest(_) => SottoContentKind::DistributionRequest,
    }
}

fn wrong_kind(content: &Content, wanted: &str) -> FfiError {
    FfiError::invalid(format!(
        "received holds a {:?}, not {wanted}",
        content_kind(content)
    ))
}

/// The kind of content received (`SOTTO_CONTENT_KIND_...`).
///
/// # Safety
///
/// `out` must be NULL or point to a writable `SottoContentKind`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_received_kind(
    received: *const SottoReceived,
    out: *mut SottoContentKind,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_value(out, "out") }?;
        *out = with_ref::<Received, _>(received, "received", |r| Ok(content_kind(r.content())))?;
        Ok(())
    })
}

/// The device of the record's user it came from.
///
/// # Safety
///
/// `out` must be NULL or point to a writable `uint32_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_received_device(
    received: *const SottoReceived,
    out: *mut u32,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_value(out, "out") }?;
        *out = with_ref::<Received, _>(received, "received", |r| Ok(r.device().0))?;
        Ok(())
    })
}

/// The payload bytes (`SOTTO_CONTENT_KIND_PAYLOAD` only, else
/// `SOTTO_ERROR_INVALID_ARGUMENT`).
///
/// # Safety
///
/// `out` must be NULL or point to an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_received_payload(
    received: *const SottoReceived,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        with_ref::<Received, _>(received, "received", |r| match r.content() {
            Content::Payload(payload) => {
                out.set_from(payload.as_bytes());
                Ok(())
            }
            other => Err(wrong_kind(other, "a payload")),
        })
    })
}

/// The identity key (`SOTTO_IDENTITY_KEY_LEN` bytes) of the device whose
/// session decrypted a payload or a distribution: the device's trusted
/// identity (else `SOTTO_ERROR_INVALID_ARGUMENT`).
///
/// # Safety
///
/// `out` must be NULL or point to an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_received_sender_identity_key(
    received: *const SottoReceived,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        let key = with_ref::<Received, _>(received, "received", |r| match r.content() {
            Content::Payload(payload) => Ok(payload.sender().to_bytes()),
            Content::Distribution(distribution) => Ok(distribution.sender().to_bytes()),
            other => Err(wrong_kind(other, "a payload or a distribution")),
        })?;
        out.set(key.to_vec());
        Ok(())
    })
}

/// The hint of a retry request (`SOTTO_CONTENT_KIND_RETRY_REQUEST` only,
/// else `SOTTO_ERROR_INVALID_ARGUMENT`): the message the peer could not
/// decrypt.
///
/// # Safety
///
/// `out` must be NULL or point to a writable `SottoRetryHint`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_received_retry_hint(
    received: *const SottoReceived,
    out: *mut SottoRetryHint,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_value(out, "out") }?;
        *out = with_ref::<Received, _>(received, "received", |r| match r.content() {
            Content::RetryRequest(hint) => Ok(hint.into()),
            other => Err(wrong_kind(other, "a retry request")),
        })?;
        Ok(())
    })
}

/// The group id (`SOTTO_GROUP_ID_LEN` bytes) of a distribution or a
/// distribution request (else `SOTTO_ERROR_INVALID_ARGUMENT`).
///
/// # Safety
///
/// `out` must be NULL or point to an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_received_group_id(
    received: *const SottoReceived,
    out: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_buffer(out, "out") }?;
        let id = with_ref::<Received, _>(received, "received", |r| match r.content() {
            Content::Distribution(distribution) => Ok(*distribution.group_id().as_bytes()),
            Content::DistributionRequest(group) => Ok(*group.as_bytes()),
            other => Err(wrong_kind(
                other,
                "a distribution or a distribution request",
            )),
        })?;
        out.set(id.to_vec());
        Ok(())
    })
}

/// Releases a received handle and zeroizes the plaintext inside. NULL is
/// accepted; refused as the other `_free` functions are.
///
/// # Safety
///
/// The pointer is checked against the live handles before any use. Do not
/// use it after this returns `SOTTO_ERROR_OK`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_received_free(received: *mut SottoReceived) -> SottoError {
    ffi_call(|| free::<Received>(received, "received"))
}

/// Whether `hint` (from a retry request or a failure) names `message` (a
/// message you sent): the one to resend. A message that does not parse is
/// its parse error.
///
/// # Safety
///
/// `hint` must be NULL or point to a readable `SottoRetryHint`; `message`
/// NULL or `message_len` readable bytes; `out` NULL or a writable `bool`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_retry_hint_matches(
    hint: *const SottoRetryHint,
    message: *const u8,
    message_len: usize,
    out: *mut bool,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `hint` is NULL or readable.
        let hint = unsafe { hint_input(hint) }?;
        // SAFETY: the caller guarantees the pointer/length pair.
        let message = unsafe { input(message, message_len, "message") }?;
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_value(out, "out") }?;
        *out = hint.matches(&Message::from_bytes(message)?);
        Ok(())
    })
}
