//! Group messaging (SPEC.md §15): the ratchet, messages and distributions,
//! senders, receivers and the per-group store.

pub mod message;
pub mod ratchet;
pub mod receiver;
pub mod sender;
pub mod store;
pub mod window;

pub use message::{
    Dist, MsgHeader, parse_distribution, parse_message, read_distribution, read_message,
};
pub use ratchet::{Levels, closed_form, key_at, levels_json, message_key};
pub use receiver::GReceiver;
pub use sender::GSender;
pub use store::{GStore, Held, Inserted};
pub use window::Window;

use crate::model::error::{Refusal, refusal};

/// `GroupReceivers::decrypt` on the model's store.
///
/// # Errors
///
/// The model's refusal: the SPEC.md error of the first check the input
/// fails, in the order SPEC.md fixes.
pub fn store_decrypt(
    store: &mut GStore<GReceiver>,
    msg: &[u8],
) -> Result<(Vec<u8>, serde_json::Value), Refusal> {
    let h = parse_message(msg)?;
    if h.group != store.group {
        return Err(refusal("UnknownGroupChain"));
    }
    store
        .get_mut(h.chain_id)
        .ok_or_else(|| refusal("UnknownGroupChain"))?
        .decrypt(msg)
}
