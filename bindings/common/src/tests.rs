//! The codes agree with the C ABI: by value with its `SottoError`, by name
//! and value with its header, and by behaviour on the same bad inputs.
// Calling the C ABI's functions takes unsafe blocks; each names its
// contract.
#![allow(unsafe_code, clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;

use sotto::group::{GroupReceivers, GroupSender};
use sotto::{Device, SavedState, Session};
use sotto_ffi::SottoError;

use super::*;

/// The C ABI's variant of the same name; exhaustive, so a new code must be
/// paired here.
fn ffi(code: ErrorCode) -> SottoError {
    match code {
        ErrorCode::InvalidArgument => SottoError::InvalidArgument,
        ErrorCode::HandlePoisoned => SottoError::HandlePoisoned,
        ErrorCode::Randomness => SottoError::Randomness,
        ErrorCode::ProtocolOther => SottoError::ProtocolOther,
        ErrorCode::Truncated => SottoError::Truncated,
        ErrorCode::TrailingBytes => SottoError::TrailingBytes,
        ErrorCode::UnsupportedVersion => SottoError::UnsupportedVersion,
        ErrorCode::WrongType => SottoError::WrongType,
        ErrorCode::InvalidEncoding => SottoError::InvalidEncoding,
        ErrorCode::TooLarge => SottoError::TooLarge,
        ErrorCode::PlaintextTooLarge => SottoError::PlaintextTooLarge,
        ErrorCode::InvalidPublicKey => SottoError::InvalidPublicKey,
        ErrorCode::NonContributoryKey => SottoError::NonContributoryKey,
        ErrorCode::InvalidSignature => SottoError::InvalidSignature,
        ErrorCode::IdentityMismatch => SottoError::IdentityMismatch,
        ErrorCode::UnknownSignedPrekey => SottoError::UnknownSignedPrekey,
        ErrorCode::UnknownOneTimePrekey => SottoError::UnknownOneTimePrekey,
        ErrorCode::DuplicatePrekeyMessage => SottoError::DuplicatePrekeyMessage,
        ErrorCode::TooManyPrekeys => SottoError::TooManyPrekeys,
        ErrorCode::AuthenticationFailed => SottoError::AuthenticationFailed,
        ErrorCode::DuplicateMessage => SottoError::DuplicateMessage,
        ErrorCode::TooFarAhead => SottoError::TooFarAhead,
        ErrorCode::SessionMismatch => SottoError::SessionMismatch,
        ErrorCode::ChainExhausted => SottoError::ChainExhausted,
        ErrorCode::UnknownGroupChain => SottoError::UnknownGroupChain,
        ErrorCode::GroupIndexOutOfRange => SottoError::GroupIndexOutOfRange,
        ErrorCode::GroupMismatch => SottoError::GroupMismatch,
        ErrorCode::GroupChainConflict => SottoError::GroupChainConflict,
        ErrorCode::PostQuantumRequired => SottoError::PostQuantumRequired,
        ErrorCode::UnknownKemPrekey => SottoError::UnknownKemPrekey,
        ErrorCode::SignedPrekeyExhausted => SottoError::SignedPrekeyExhausted,
        ErrorCode::SessionDiverged => SottoError::SessionDiverged,
        ErrorCode::GroupOwnerMismatch => SottoError::GroupOwnerMismatch,
        ErrorCode::GroupStoreFull => SottoError::GroupStoreFull,
        ErrorCode::InvalidDeviceList => SottoError::InvalidDeviceList,
        ErrorCode::UnknownDevice => SottoError::UnknownDevice,
        ErrorCode::IdentityChangePending => SottoError::IdentityChangePending,
        ErrorCode::NoSession => SottoError::NoSession,
        ErrorCode::RecoveryRateLimited => SottoError::RecoveryRateLimited,
        ErrorCode::NotGroupMember => SottoError::NotGroupMember,
        ErrorCode::TooManyGroupMembers => SottoError::TooManyGroupMembers,
    }
}

/// `SOTTO_ERROR_NAME = value` of the committed header.
fn header_codes() -> BTreeMap<String, i32> {
    include_str!("../../../ffi/include/sotto.h")
        .lines()
        .filter_map(|line| line.trim().strip_prefix("SOTTO_ERROR_"))
        .filter_map(|rest| {
            let (name, value) = rest.split_once(" = ")?;
            Some((name.to_owned(), value.trim_end_matches(',').parse().ok()?))
        })
        .collect()
}

/// "UnknownOneTimePrekey" -> "UNKNOWN_ONE_TIME_PREKEY".
fn upper_snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[test]
fn every_code_is_the_c_abis() {
    let header = header_codes();
    assert!(header.len() >= 40, "header parsed: {header:?}");
    for code in ErrorCode::ALL {
        assert_eq!(code.code(), ffi(code) as i32, "{code}");
        assert_eq!(
            header.get(&upper_snake(code.name())),
            Some(&code.code()),
            "{code} in sotto.h"
        );
    }
}

#[test]
fn every_protocol_code_of_the_c_abi_is_a_binding_code() {
    let ours: Vec<i32> = ErrorCode::ALL.iter().map(|c| c.code()).collect();
    for (name, value) in header_codes() {
        if value >= 100 {
            assert!(
                ours.contains(&value),
                "SOTTO_ERROR_{name} = {value} has no binding code"
            );
        }
    }
    let mut sorted = ours.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted, ours, "ALL is in numeric order without repeats");
}

/// The core's errors map by name (the C ABI spells `PreKey` as `Prekey`,
/// and calls `RandomnessUnavailable` `Randomness`), each to its own code.
#[test]
fn core_errors_map_by_name() {
    use sotto::Error as E;
    let errors = [
        E::Truncated,
        E::TrailingBytes,
        E::UnsupportedVersion { found: 2 },
        E::WrongType {
            expected: 1,
            found: 2,
        },
        E::InvalidEncoding,
        E::TooLarge,
        E::PlaintextTooLarge,
        E::InvalidPublicKey,
        E::NonContributoryKey,
        E::InvalidSignature,
        E::IdentityMismatch,
        E::RandomnessUnavailable,
        E::PostQuantumRequired,
        E::UnknownSignedPreKey { id: 1 },
        E::UnknownOneTimePreKey { id: 1 },
        E::UnknownKemPreKey { id: 1 },
        E::DuplicatePreKeyMessage,
        E::SignedPreKeyExhausted { id: 1 },
        E::TooManyPreKeys,
        E::AuthenticationFailed,
        E::DuplicateMessage,
        E::TooFarAhead { skipped: 1 },
        E::SessionDiverged,
        E::SessionMismatch,
        E::ChainExhausted,
        E::UnknownGroupChain,
        E::GroupIndexOutOfRange { index: 1 },
        E::GroupMismatch,
        E::GroupOwnerMismatch,
        E::GroupChainConflict,
        E::GroupStoreFull,
        E::InvalidDeviceList,
        E::UnknownDevice,
        E::IdentityChangePending,
        E::NoSession,
        E::RecoveryRateLimited,
        E::NotGroupMember,
        E::TooManyGroupMembers,
    ];
    let mut codes = Vec::new();
    for error in errors {
        let debug = format!("{error:?}");
        let variant = debug.split([' ', '{']).next().unwrap();
        let code = ErrorCode::from_core(&error);
        let expected = match variant {
            "RandomnessUnavailable" => "Randomness",
            other => other,
        };
        assert_eq!(
            code.name().to_ascii_lowercase(),
            expected.to_ascii_lowercase(),
            "{error:?}"
        );
        codes.push(code.code());
        let binding = BindingError::from(error);
        assert_eq!(binding.code(), code);
        assert_eq!(binding.message(), error.to_string());
    }
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), errors.len());
}

/// Calls a C ABI `_from_bytes` function and frees what it made.
type FromBytes<T> = unsafe extern "C" fn(*const u8, usize, *mut *mut T) -> SottoError;

fn c_from_bytes<T>(
    from: FromBytes<T>,
    free: unsafe extern "C" fn(*mut T) -> SottoError,
    bytes: &[u8],
) -> i32 {
    let mut out: *mut T = std::ptr::null_mut();
    // SAFETY: `bytes` is a live slice of its length; `out` a NULL slot.
    let code = unsafe { from(bytes.as_ptr(), bytes.len(), &mut out) };
    // SAFETY: `out` is NULL or the handle just made, freed once.
    assert_eq!(unsafe { free(out) }, SottoError::Ok);
    code as i32
}

fn ours<T>(result: sotto::Result<T>) -> i32 {
    match result {
        Ok(_) => 0,
        Err(e) => ErrorCode::from_core(&e).code(),
    }
}

/// Altered copies of a saved state: each of the framing errors.
fn mutants(state: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![Vec::new(), state[..state.len() - 1].to_vec()];
    let mut trailing = state.to_vec();
    trailing.push(0);
    out.push(trailing);
    for position in 0..4 {
        for value in [0x00, 0x01, 0x02, 0x7f, 0xff] {
            let mut altered = state.to_vec();
            altered[position] ^= value;
            out.push(altered);
        }
    }
    out
}

/// The same bad saved states give the same code through the C ABI and
/// through [`ErrorCode::from_core`].
#[test]
fn same_inputs_same_codes_as_the_c_abi() {
    let mut rng = OsRng;
    let mut alice = Device::generate(&mut rng, 1).unwrap();
    let mut bob = Device::generate(&mut rng, 1).unwrap();
    let bundle = sotto::PreKeyBundle::new(
        *bob.identity_key(),
        bob.signed_prekey(),
        None,
        Some(bob.last_resort_kem_prekey()),
    )
    .verify()
    .unwrap();
    let mut session = Session::initiate(&alice, &mut rng, &bundle).unwrap();
    let first = session.encrypt(&mut rng, b"hi").unwrap();
    let sotto::Message::PreKey(first) = first else {
        unreachable!()
    };
    Session::accept(&mut bob, &first).unwrap();
    alice.generate_one_time_prekeys(&mut rng, 2).unwrap();
    let group = group_id(&[9; 32]).unwrap();
    let sender = GroupSender::new(&mut rng, group, &alice).unwrap();
    let store = GroupReceivers::new(group);

    let mut seen = std::collections::BTreeSet::new();
    for bytes in mutants(&alice.to_bytes()) {
        let c = c_from_bytes(
            sotto_ffi::sotto_device_from_bytes,
            sotto_ffi::sotto_device_free,
            &bytes,
        );
        assert_eq!(
            c,
            ours(Device::from_bytes(&bytes)),
            "device {:x?}",
            &bytes[..4.min(bytes.len())]
        );
        seen.insert(c);
    }
    for bytes in mutants(&session.to_bytes()) {
        let c = c_from_bytes(
            sotto_ffi::sotto_session_from_bytes,
            sotto_ffi::sotto_session_free,
            &bytes,
        );
        assert_eq!(c, ours(Session::from_bytes(&bytes)), "session");
        seen.insert(c);
    }
    for bytes in mutants(&sender.to_bytes()) {
        let c = c_from_bytes(
            sotto_ffi::sotto_group_sender_from_bytes,
            sotto_ffi::sotto_group_sender_free,
            &bytes,
        );
        assert_eq!(c, ours(GroupSender::from_bytes(&bytes)), "sender");
        seen.insert(c);
    }
    for bytes in mutants(&SavedState::to_bytes(&store)) {
        let c = c_from_bytes(
            sotto_ffi::sotto_group_store_from_bytes,
            sotto_ffi::sotto_group_store_free,
            &bytes,
        );
        assert_eq!(c, ours(GroupReceivers::from_bytes(&bytes)), "store");
        seen.insert(c);
    }
    // The comparison covered several distinct errors, not only successes.
    for code in [
        ErrorCode::Truncated,
        ErrorCode::TrailingBytes,
        ErrorCode::UnsupportedVersion,
        ErrorCode::WrongType,
    ] {
        assert!(seen.contains(&code.code()), "{code} not provoked: {seen:?}");
    }
}

#[test]
fn fixed_size_arguments() {
    assert_eq!(
        storage_key(&[0; 31]).unwrap_err().code(),
        ErrorCode::InvalidArgument
    );
    assert!(storage_key(&[0; 32]).is_ok());
    assert_eq!(
        group_id(&[0; 33]).unwrap_err().code(),
        ErrorCode::InvalidArgument
    );
    assert_eq!(group_id(&[5; 32]).unwrap().as_bytes(), &[5; 32]);
    assert_eq!(
        chain_id(&[]).unwrap_err().code(),
        ErrorCode::InvalidArgument
    );
}

#[test]
fn draws_differ() {
    let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
    OsRng.try_fill_bytes(&mut a).unwrap();
    OsRng.try_fill_bytes(&mut b).unwrap();
    assert_ne!(a, b);
}
