//! sotto-chat
fn main() {}
