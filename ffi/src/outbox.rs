//! The outbox: what a fan-out of the session layer made, one message per
//! device, and the devices that got none with the error why. Peer record
//! encrypts and group distributions both come back as one.

use sotto::Message;
use sotto::sessions::{Fanout, Sent};

use crate::buffer::{SottoBuffer, out_buffer, out_value};
use crate::error::{FfiError, SottoError, ffi_call};
use crate::handle::{SottoOutbox, free, with_ref};

/// Messages and unusable devices, each with the index of the record it is
/// for (in the order the records were given; 0 for a single record).
pub(crate) struct Outbox {
    messages: Vec<(usize, u32, Message)>,
    unusable: Vec<(usize, u32, sotto::Error)>,
}

impl Outbox {
    /// A single record's fan-out.
    pub(crate) fn from_sent(sent: Sent) -> Self {
        let mut outbox = Self {
            messages: Vec::new(),
            unusable: Vec::new(),
        };
        outbox.add(0, sent);
        outbox
    }

    /// A group fan-out, record by record.
    pub(crate) fn from_fanout(fanout: Fanout) -> Self {
        let mut outbox = Self {
            messages: Vec::new(),
            unusable: Vec::new(),
        };
        for (record, (_, sent)) in fanout.users.into_iter().enumerate() {
            outbox.add(record, sent);
        }
        outbox
    }

    fn add(&mut self, record: usize, sent: Sent) {
        self.messages.extend(
            sent.messages
                .into_iter()
                .map(|m| (record, m.device.0, m.message)),
        );
        self.unusable.extend(
            sent.unusable
                .into_iter()
                .map(|u| (record, u.device.0, u.error)),
        );
    }
}

fn out_of_range(index: usize, count: usize, what: &str) -> FfiError {
    FfiError::invalid(format!(
        "index {index} is out of range: the outbox holds {count} {what}"
    ))
}

/// How many messages the outbox holds.
///
/// # Safety
///
/// `out` must be NULL or point to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_outbox_message_count(
    outbox: *const SottoOutbox,
    out: *mut usize,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_value(out, "out") }?;
        *out = with_ref::<Outbox, _>(outbox, "outbox", |o| Ok(o.messages.len()))?;
        Ok(())
    })
}

/// Message `index` (below `sotto_outbox_message_count`): the index of the
/// record it is for (in the order the records were passed; 0 for
/// `sotto_peer_record_encrypt`), the device of that record's user to
/// deliver it to, and the message. Messages come record by record, each
/// record's in device order.
///
/// # Safety
///
/// `out_record` and `out_device` must be NULL or writable; `out_message`
/// NULL or an empty `SottoBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_outbox_message(
    outbox: *const SottoOutbox,
    index: usize,
    out_record: *mut usize,
    out_device: *mut u32,
    out_message: *mut SottoBuffer,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees each output is NULL or valid.
        let out_record = unsafe { out_value(out_record, "out_record") }?;
        // SAFETY: as above.
        let out_device = unsafe { out_value(out_device, "out_device") }?;
        // SAFETY: as above.
        let out_message = unsafe { out_buffer(out_message, "out_message") }?;
        with_ref::<Outbox, _>(outbox, "outbox", |o| {
            let (record, device, message) = o
                .messages
                .get(index)
                .ok_or_else(|| out_of_range(index, o.messages.len(), "messages"))?;
            *out_record = *record;
            *out_device = *device;
            out_message.set_from(message.as_bytes());
            Ok(())
        })
    })
}

/// How many listed devices got no message.
///
/// # Safety
///
/// `out` must be NULL or point to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_outbox_unusable_count(
    outbox: *const SottoOutbox,
    out: *mut usize,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees `out` is NULL or valid.
        let out = unsafe { out_value(out, "out") }?;
        *out = with_ref::<Outbox, _>(outbox, "outbox", |o| Ok(o.unusable.len()))?;
        Ok(())
    })
}

/// Unusable device `index` (below `sotto_outbox_unusable_count`): the record
/// index, the device, and why it got no message:
/// `SOTTO_ERROR_NO_SESSION` (fetch its bundle, `sotto_peer_record_add_bundle`),
/// `SOTTO_ERROR_IDENTITY_CHANGE_PENDING` (acknowledge the change first), or
/// the session's own encrypt error (`SOTTO_ERROR_CHAIN_EXHAUSTED`,
/// `SOTTO_ERROR_NON_CONTRIBUTORY_KEY`: fetch a bundle and start a new
/// session).
///
/// # Safety
///
/// Each output must be NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_outbox_unusable(
    outbox: *const SottoOutbox,
    index: usize,
    out_record: *mut usize,
    out_device: *mut u32,
    out_error: *mut SottoError,
) -> SottoError {
    ffi_call(|| {
        // SAFETY: the caller guarantees each output is NULL or valid.
        let out_record = unsafe { out_value(out_record, "out_record") }?;
        // SAFETY: as above.
        let out_device = unsafe { out_value(out_device, "out_device") }?;
        // SAFETY: as above.
        let out_error = unsafe { out_value(out_error, "out_error") }?;
        let (record, device, error) = with_ref::<Outbox, _>(outbox, "outbox", |o| {
            o.unusable
                .get(index)
                .copied()
                .ok_or_else(|| out_of_range(index, o.unusable.len(), "unusable devices"))
        })?;
        *out_record = record;
        *out_device = device;
        *out_error = SottoError::from_core(&error);
        Ok(())
    })
}

/// Releases an outbox. NULL is accepted; refused as the other `_free`
/// functions are.
///
/// # Safety
///
/// The pointer is checked against the live handles before any use. Do not
/// use it after this returns `SOTTO_ERROR_OK`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sotto_outbox_free(outbox: *mut SottoOutbox) -> SottoError {
    ffi_call(|| free::<Outbox>(outbox, "outbox"))
}
