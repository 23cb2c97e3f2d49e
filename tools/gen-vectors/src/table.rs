//! Negative vectors as tables. A row names the vector, the operation the
//! verifier calls (with the fixture it runs on), the input (a base value
//! and a mutation of its fields, by their SPEC names), and the error
//! SPEC.md fixes. Before a row is written, the reference model must fail
//! the same operation on the same input with exactly that error; sotto is
//! then checked against the file by the verifier.

use serde_json::{Value, json};
use testkit::hex::hex;
use testkit::layout;
use testkit::model::group::{GReceiver, GSender};
use testkit::model::{self, Dev, Layout, Refusal, Sess, group, keys, sealed, wire};
use testkit::rng::Draws;

/// What the verifier calls on a row's input.
#[derive(Clone, Copy)]
pub(crate) enum Op {
    /// A decoder, named as the verifier names it (`Message::from_bytes`).
    Decode(&'static str),
    /// `PreKeyBundle::verify`.
    Verify,
    /// `PreKeyBundle::verify_for` the identity of that name.
    VerifyFor(&'static str),
    /// An `unseal` (`Session::unseal`) under the storage key of that name.
    Unseal(&'static str, &'static str),
    /// A call on the fixture state of that name (`Session::decrypt`).
    Call(&'static str, &'static str),
}

/// The named fixtures a table's rows refer to.
pub(crate) trait Fixtures {
    /// A saved state.
    fn state(&self, name: &str) -> Vec<u8>;
    /// A storage key.
    fn key(&self, name: &str) -> [u8; 32];
    /// An identity key (`IdentityKey::to_bytes`).
    fn identity(&self, name: &str) -> Vec<u8>;
}

/// Edits a row's base input; gets the base's layout (empty if the base
/// has none, e.g. an empty input).
pub(crate) type Mutation<C> = fn(&C, &Layout, &mut Vec<u8>);

/// One negative vector.
pub(crate) struct Row<C> {
    name: &'static str,
    op: Op,
    base: fn(&C) -> Vec<u8>,
    mutate: Mutation<C>,
    pad_to: Option<usize>,
    error: Refusal,
}

/// A row.
pub(crate) fn row<C>(
    name: &'static str,
    op: Op,
    base: fn(&C) -> Vec<u8>,
    mutate: Mutation<C>,
    error: Refusal,
) -> Row<C> {
    Row {
        name,
        op,
        base,
        mutate,
        pad_to: None,
        error,
    }
}

/// A row whose input is zero-padded to `len` (for lengths too large to
/// spell out; the vector says `pad_to`).
pub(crate) fn padded<C>(len: usize, mut row: Row<C>) -> Row<C> {
    row.pad_to = Some(len);
    row
}

/// Leaves the base as it is.
pub(crate) fn keep<C>(_: &C, _: &Layout, _: &mut Vec<u8>) {}

/// An error without fields.
pub(crate) fn e(name: &str) -> Refusal {
    model::refusal(name)
}

/// An error with fields.
pub(crate) fn ef(name: &str, fields: Value) -> Refusal {
    model::refusal_with(name, fields)
}

/// Runs the rows: each through the model, then as JSON, in order.
pub(crate) fn vectors<C: Fixtures>(c: &C, rows: Vec<Row<C>>, extra: &Value) -> Vec<Value> {
    rows.into_iter()
        .map(|r| {
            let mut input = (r.base)(c);
            let l = layout::of(&input).unwrap_or_default();
            (r.mutate)(c, &l, &mut input);
            let mut padded = input.clone();
            if let Some(len) = r.pad_to {
                padded.resize(len, 0);
            }
            let got = oracle(c, r.op, &padded)
                .err()
                .unwrap_or_else(|| panic!("model accepts negative vector {}", r.name));
            assert_eq!(
                got, r.error,
                "model: {} fails differently than intended",
                r.name
            );
            let mut v = json!({
                "name": r.name, "operation": operation(r.op), "input": hex(&input), "error": got,
            });
            for (k, val) in extra.as_object().expect("an object") {
                v[k] = val.clone();
            }
            if let Some(len) = r.pad_to {
                v["pad_to"] = len.into();
            }
            match r.op {
                Op::VerifyFor(name) => v["expected"] = hex(&c.identity(name)).into(),
                Op::Unseal(_, key) => v["storage_key"] = hex(&c.key(key)).into(),
                Op::Call(op, fixture) => v[fixture_key(op)] = fixture.into(),
                Op::Decode(_) | Op::Verify => {}
            }
            v
        })
        .collect()
}

fn operation(op: Op) -> &'static str {
    match op {
        Op::Decode(name) | Op::Unseal(name, _) | Op::Call(name, _) => name,
        Op::Verify => "PreKeyBundle::verify",
        Op::VerifyFor(_) => "PreKeyBundle::verify_for",
    }
}

/// The vector field that names a call's fixture.
fn fixture_key(op: &str) -> &'static str {
    match op {
        "Session::decrypt" | "Session::encrypt" => "session",
        "Session::accept" => "device",
        "GroupReceiver::decrypt" => "receiver",
        "GroupSender::encrypt" => "sender",
        other => panic!("no fixture for {other}"),
    }
}

/// The model's decoder for an operation's input.
fn decode(op: &str, b: &[u8]) -> Result<(), Refusal> {
    match op {
        "Message::from_bytes" => wire::read_message(b).map(drop),
        "IdentityKey::from_bytes" => keys::read_identity_key(b).map(drop),
        "SignedPreKey::from_bytes" => keys::read_signed_prekey(b).map(drop),
        "OneTimePreKey::from_bytes" => keys::read_one_time_prekey(b).map(drop),
        "PreKeyBundle::from_bytes" => keys::read_bundle(b).map(drop),
        "Session::from_bytes" | "Session::unseal" => Sess::read(b).map(drop),
        "Device::from_bytes" | "Device::unseal" => Dev::read(b).map(drop),
        "GroupMessage::from_bytes" => group::read_message(b).map(drop),
        "SenderKeyDistribution::from_bytes" => group::read_distribution(b).map(drop),
        "GroupSender::from_bytes" | "GroupSender::unseal" => GSender::read(b).map(drop),
        "GroupReceiver::from_bytes" | "GroupReceiver::unseal" => GReceiver::read(b).map(drop),
        other => panic!("no model decoder for {other}"),
    }
}

/// The inner type tag an `unseal` expects.
fn sealed_type(op: &str) -> u8 {
    match op {
        "Session::unseal" => 0x20,
        "Device::unseal" => 0x21,
        "GroupSender::unseal" => 0x22,
        "GroupReceiver::unseal" => 0x23,
        other => panic!("not an unseal: {other}"),
    }
}

/// The model's outcome of a row's operation on its input; a failed call
/// must leave the model's state as it was.
fn oracle<C: Fixtures>(c: &C, op: Op, input: &[u8]) -> Result<(), Refusal> {
    match op {
        Op::Decode(name) => decode(name, input),
        Op::Verify => keys::read_bundle(input)?.0.verify(),
        Op::VerifyFor(name) => {
            let bundle = keys::read_bundle(input)?.0;
            let (expected, _) = keys::read_identity_key(&c.identity(name))?;
            bundle.verify_for(&expected)
        }
        Op::Unseal(name, key) => {
            let (plain, _) = sealed::open_state(input, &c.key(key), sealed_type(name))?;
            decode(name, &plain)
        }
        Op::Call(name, fixture) => {
            let state = c.state(fixture);
            match name {
                "Session::decrypt" => {
                    wire::read_message(input)?;
                    let mut s = Sess::decode(&state).expect("fixture");
                    let r = s.try_decrypt(input).map(drop);
                    assert!(
                        r.is_ok() || s.encode() == state,
                        "model changed state on error"
                    );
                    r
                }
                "Session::encrypt" => Sess::decode(&state)
                    .expect("fixture")
                    .encrypt_check(input.len()),
                "Session::accept" => {
                    wire::read_message(input)?;
                    let mut d = Dev::decode(&state).expect("fixture");
                    let r = model::try_accept(&mut d, input).map(drop);
                    assert!(
                        r.is_ok() || d.encode() == state,
                        "model changed state on error"
                    );
                    r
                }
                "GroupReceiver::decrypt" => {
                    group::read_message(input)?;
                    let mut g = GReceiver::parse(&state).expect("fixture");
                    let r = g.decrypt(input).map(drop);
                    assert!(
                        r.is_ok() || g.encode() == state,
                        "model changed state on error"
                    );
                    r
                }
                "GroupSender::encrypt" => GSender::parse(&state)
                    .expect("fixture")
                    .encrypt(&mut Draws::new([0; 32]), input)
                    .map(drop),
                other => panic!("no model call {other}"),
            }
        }
    }
}
