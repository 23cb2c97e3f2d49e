//! Group messaging (SPEC.md §15): the ratchet, messages and distributions,
//! senders, receivers and the per-group store.

pub mod message;
pub mod ratchet;
pub mod receiver;
pub mod sender;
pub mod store;
pub mod window;

pub use message::{Dist, MsgHeader, read_distribution, read_message};
pub use ratchet::{Levels, closed_form, key_at, levels_json, message_key};
pub use receiver::Receiver;
pub use sender::Sender;
pub use store::{Outcome, Store};
pub use window::Window;
