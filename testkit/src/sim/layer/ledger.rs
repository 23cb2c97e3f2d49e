//! The oracle: what was sent, to whom, and what each decrypt and failure
//! must look like; and the run's counters.

use std::collections::{BTreeSet, HashSet};

use sotto::group::GroupPlaintext;
use sotto::sessions::{Action, Content, Failure, Ignore, Received, RetryHint, RetryLater};
use sotto::{Error, IdentityKey, Message};

use super::{Envelope, Expect, Inc};

/// A pairwise message as sent.
#[derive(Clone)]
struct Wire {
    from: Inc,
    to: Inc,
    sender: IdentityKey,
    expect: Expect,
}

/// A group message as sent.
#[derive(Clone)]
struct GroupWire {
    from: Inc,
    sender: IdentityKey,
    payload: Vec<u8>,
    /// The group's members when it was sent (user indices).
    members: BTreeSet<usize>,
    /// When it was sent, in the world's event order.
    seq: u64,
}

/// The device that read a group message: its installation, its user, and
/// when it was installed.
pub(super) struct Reader {
    pub(super) at: Inc,
    pub(super) user: usize,
    pub(super) born: u64,
}

/// Every message sent and every decrypt so far.
#[derive(Default, Clone)]
pub(super) struct Ledger {
    wires: Vec<Wire>,
    decrypted: Vec<bool>,
    groups: Vec<GroupWire>,
    group_decrypted: HashSet<(Inc, u64)>,
    /// (application message, receiving installation) pairs seen, to count
    /// resends of what had already arrived (an application duplicate, never
    /// a protocol one).
    seen: HashSet<(u64, Inc)>,
}

impl Ledger {
    pub(super) fn wire(&mut self, from: Inc, to: Inc, sender: IdentityKey, expect: Expect) -> u64 {
        self.wires.push(Wire {
            from,
            to,
            sender,
            expect,
        });
        self.decrypted.push(false);
        self.wires.len() as u64 - 1
    }

    pub(super) fn group_wire(
        &mut self,
        from: Inc,
        sender: IdentityKey,
        payload: Vec<u8>,
        members: BTreeSet<usize>,
        seq: u64,
    ) -> u64 {
        self.groups.push(GroupWire {
            from,
            sender,
            payload,
            members,
            seq,
        });
        self.groups.len() as u64 - 1
    }

    /// Whether the pairwise message `wire` has decrypted.
    pub(super) fn is_decrypted(&self, wire: u64) -> bool {
        self.decrypted[wire as usize]
    }

    /// Whether installation `at` has read the payload with application id
    /// `app` (the message itself or a resend of it).
    pub(super) fn was_read(&self, app: u64, at: Inc) -> bool {
        self.seen.contains(&(app, at))
    }

    /// Whether the group message `wire` has decrypted at `at`.
    pub(super) fn is_group_decrypted(&self, at: Inc, wire: u64) -> bool {
        self.group_decrypted.contains(&(at, wire))
    }

    /// A pairwise decrypt at installation `at`, of `envelope`, through the
    /// record of the sender's user: it must be the message sent to `at`,
    /// from the device it came from, the first time, with the content and
    /// sender it was sent with. Returns whether the application had seen
    /// the payload before (a resend).
    pub(super) fn check_decrypt(
        &mut self,
        at: Inc,
        envelope: &Envelope,
        from_device: sotto::sessions::DeviceId,
        received: &Received,
        app_id: Option<u64>,
    ) -> bool {
        let Some(w) = envelope.wire else {
            panic!("corrupted bytes decrypted at {at:?}: {envelope:?}")
        };
        let wire = &self.wires[w as usize];
        assert_eq!(
            wire.to, at,
            "message {w} for {:?} decrypted at {at:?}",
            wire.to
        );
        assert_eq!(wire.from, envelope.from, "message {w} from another device");
        assert_eq!(received.device(), from_device, "message {w}: wrong device");
        assert!(
            !std::mem::replace(&mut self.decrypted[w as usize], true),
            "message {w} decrypted twice at {at:?}"
        );
        match (&wire.expect, received.content()) {
            (Expect::Payload(bytes), Content::Payload(p)) => {
                assert_eq!(p.as_bytes(), &bytes[..], "message {w}: wrong payload");
                assert_eq!(p.sender(), &wire.sender, "message {w}: wrong sender");
            }
            (Expect::Retry(hint), Content::RetryRequest(got)) => {
                assert_eq!(hint, got, "message {w}: wrong retry hint");
            }
            (Expect::Distribution, Content::Distribution(d)) => {
                assert_eq!(d.group_id(), &super::GROUP);
                assert_eq!(d.sender(), &wire.sender, "message {w}: wrong sender");
            }
            (Expect::DistributionRequest, Content::DistributionRequest(g)) => {
                assert_eq!(g, &super::GROUP);
            }
            (expected, got) => panic!("message {w}: sent {expected:?}, decrypted {got:?}"),
        }
        app_id.is_some_and(|id| !self.seen.insert((id, at)))
    }

    /// A group decrypt by `reader`, while the group's members are
    /// `members_now`.
    pub(super) fn check_group_decrypt(
        &mut self,
        reader: Reader,
        envelope: &Envelope,
        plaintext: &GroupPlaintext,
        members_now: &BTreeSet<usize>,
        sender_user: usize,
    ) {
        let Reader { at, user, born } = reader;
        let Some(w) = envelope.wire else {
            panic!("corrupted group bytes decrypted at {at:?}")
        };
        let wire = &self.groups[w as usize];
        assert_eq!(wire.from, envelope.from);
        assert_eq!(
            plaintext.as_bytes(),
            &wire.payload[..],
            "group {w}: payload"
        );
        assert_eq!(
            plaintext.sender().authenticated(),
            Some(&wire.sender),
            "group {w}: sender"
        );
        assert!(
            self.group_decrypted.insert((at, w)),
            "group message {w} decrypted twice at {at:?}"
        );
        assert!(
            born < wire.seq,
            "group message {w} read by {at:?}, installed after it was sent"
        );
        if wire.members.contains(&sender_user) {
            // A member's message: only for those who were members then.
            assert!(
                wire.members.contains(&user),
                "group message {w} read by {at:?}, not a member when it was sent"
            );
        } else {
            // A removed member's message: no member accepts it while its
            // sender is still out (after a rejoin its devices' chains are
            // a member's again).
            assert!(
                !members_now.contains(&user) || members_now.contains(&sender_user),
                "group message {w} of a removed member read by member {at:?}"
            );
        }
    }
}

/// Whether `failure` carries the action SPEC §16.6 gives its error, and a
/// retry request names the message that failed.
pub(super) fn check_failure(failure: &Failure, message: &Message) {
    let e = failure.error;
    let broken_or_lost = !matches!(
        e,
        Error::InvalidEncoding
            | Error::NonContributoryKey
            | Error::ChainExhausted
            | Error::PostQuantumRequired
            | Error::UnknownDevice
            | Error::IdentityChangePending
            | Error::IdentityMismatch
    );
    let fits = match failure.action {
        Action::Ignore(Ignore::Duplicate) => {
            matches!(e, Error::DuplicateMessage | Error::DuplicatePreKeyMessage)
        }
        Action::Ignore(Ignore::Downgrade) => e == Error::PostQuantumRequired,
        Action::Ignore(Ignore::Malformed) => !matches!(
            e,
            Error::AuthenticationFailed
                | Error::SessionDiverged
                | Error::TooFarAhead { .. }
                | Error::PostQuantumRequired
                | Error::UnknownSignedPreKey { .. }
                | Error::UnknownOneTimePreKey { .. }
                | Error::UnknownKemPreKey { .. }
                | Error::SignedPreKeyExhausted { .. }
                | Error::DuplicatePreKeyMessage
                | Error::NoSession
        ),
        Action::Ignore(Ignore::RecoveryPending)
        | Action::RequestRetry(_)
        | Action::StartNewSession(_) => broken_or_lost,
        Action::RetryLater(RetryLater::UnknownDevice) => e == Error::UnknownDevice,
        Action::RetryLater(RetryLater::IdentityChangePending) => e == Error::IdentityChangePending,
        Action::RetryLater(RetryLater::UnknownIdentity) => e == Error::IdentityMismatch,
        Action::Ignore(Ignore::WrongLocalDevice)
        | Action::RetryLater(RetryLater::MissingDistribution) => false,
    };
    assert!(fits, "failure {failure:?} does not follow SPEC §16.6");
    if let Action::RequestRetry(hint) = failure.action {
        assert_eq!(hint, RetryHint::for_message(message), "retry hint");
    }
}

/// Whether a group failure carries the action SPEC §16.8 gives its error.
pub(super) fn check_group_failure(failure: &Failure) {
    let fits = match failure.action {
        Action::RetryLater(RetryLater::MissingDistribution) => {
            failure.error == Error::UnknownGroupChain
        }
        Action::RetryLater(RetryLater::IdentityChangePending) => {
            failure.error == Error::IdentityChangePending
        }
        Action::Ignore(Ignore::WrongLocalDevice) => failure.error == Error::IdentityMismatch,
        Action::Ignore(Ignore::Duplicate) => failure.error == Error::DuplicateMessage,
        Action::Ignore(Ignore::Malformed) => !matches!(
            failure.error,
            Error::UnknownGroupChain | Error::DuplicateMessage
        ),
        _ => false,
    };
    assert!(fits, "group failure {failure:?} does not follow SPEC §16.8");
}

/// What a run did. Every counter is printed by the test; the test asserts
/// the ones that show a behaviour was exercised.
#[derive(Default, Debug, Clone)]
pub struct Stats {
    /// Messages sent: pairwise (one per device encrypted for) and group (one
    /// per encrypt).
    pub messages: u64,
    /// Pairwise messages, of every kind below.
    pub pairwise: u64,
    /// Group messages.
    pub group_messages: u64,
    /// Application payloads (resends included).
    pub payloads: u64,
    /// Retry requests sent (SPEC §16.6), in a session or opening a new one.
    pub retry_requests: u64,
    /// Messages sent again because a retry request named them.
    pub resends: u64,
    /// Retry requests naming nothing the application remembered sending.
    pub retries_unmatched: u64,
    /// Distributions sent (fan-outs, answers, resends).
    pub distributions: u64,
    /// Distribution requests sent (SPEC §16.8).
    pub distribution_requests: u64,
    /// Sends answered in the same instant by the other side.
    pub concurrent_sends: u64,
    /// Envelopes handed to a current device.
    pub deliveries: u64,
    /// Envelopes the network lost.
    pub dropped: u64,
    /// Envelopes the network delivered twice.
    pub duplicated: u64,
    /// Envelopes the network changed (never to decrypt).
    pub corrupted: u64,
    /// Envelopes held back over a minute (or while their device was offline).
    pub delayed: u64,
    /// Envelopes to a device that was removed.
    pub undeliverable: u64,
    /// Times a device went offline for hours or days.
    pub offline: u64,
    /// Times a device's clock jumped (backwards too).
    pub clock_jumps: u64,
    /// Floods of replays and corrupted copies at one device.
    pub floods: u64,
    /// Envelopes in those floods.
    pub flood_copies: u64,
    /// Deliveries that did not parse (corrupted ones only).
    pub unparsable: u64,
    /// Pairwise messages decrypted (each at most once, as the ledger checks).
    pub decrypted: u64,
    /// Of those and of the group's, decrypted after being kept for later.
    pub decrypted_kept: u64,
    /// Decrypted resends of payloads the device had already read (an
    /// application duplicate, never a protocol one).
    pub resent_seen: u64,
    /// Honest messages that failed at their device on delivery before ever
    /// decrypting (the action then recovered, or the message was lost).
    pub honest_failed: u64,
    /// Group messages decrypted (each at most once per installation).
    pub group_decrypted: u64,
    /// Group messages delivered to a device without a group.
    pub group_no_session: u64,
    /// `Ignore(Duplicate)` (SPEC §16.6).
    pub ignore_duplicate: u64,
    /// `Ignore(Malformed)`.
    pub ignore_malformed: u64,
    /// `Ignore(Downgrade)`.
    pub ignore_downgrade: u64,
    /// `Ignore(RecoveryPending)`: a rate limit held a recovery back.
    pub ignore_recovery_pending: u64,
    /// `RetryLater(UnknownDevice)`.
    pub later_unknown_device: u64,
    /// `RetryLater(IdentityChangePending)`.
    pub later_identity_pending: u64,
    /// `RetryLater(UnknownIdentity)`.
    pub later_unknown_identity: u64,
    /// `RetryLater(MissingDistribution)` (group, SPEC §16.8).
    pub later_missing_distribution: u64,
    /// `RequestRetry`.
    pub request_retry: u64,
    /// `StartNewSession`.
    pub start_new_session: u64,
    /// Group `Ignore(Duplicate)`.
    pub group_ignore_duplicate: u64,
    /// Group `Ignore(Malformed)`.
    pub group_ignore_malformed: u64,
    /// Messages kept for a later retry.
    pub kept: u64,
    /// Kept messages given up (tried too often, or the queue was full).
    pub kept_dropped: u64,
    /// Sessions started from bundles (`add_bundle`).
    pub bundles: u64,
    /// New sessions started for recovery (`start_new_session`).
    pub new_sessions: u64,
    /// New sessions refused: the bundle had the device's new identity.
    pub new_session_stale_identity: u64,
    /// New sessions without a bundle (the device was gone).
    pub new_session_no_bundle: u64,
    /// Prekey messages that met an unanswered session of ours with another
    /// base key (simultaneous initiation): [the new session won the
    /// tie-break, ours stayed].
    pub simultaneous: [u64; 2],
    /// Listed devices a fan-out skipped for want of a session.
    pub unusable_no_session: u64,
    /// Listed devices a fan-out skipped for a pending identity change.
    pub unusable_pending: u64,
    /// Bundles refused: under the device's new identity, not yet known.
    pub bundle_stale_identity: u64,
    /// Devices ever installed (reinstalls included).
    pub devices_ever: u64,
    /// Devices added to a user.
    pub devices_added: u64,
    /// Devices removed from a user.
    pub devices_removed: u64,
    /// Devices reinstalled under a new identity.
    pub reinstalls: u64,
    /// Identity changes reported by device lists.
    pub identity_events: u64,
    /// Identity changes acknowledged.
    pub identity_acks: u64,
    /// Device lists fed to records.
    pub list_refreshes: u64,
    /// Lists the server returned with a device missing.
    pub list_glitches: u64,
    /// Devices listed again after being stale.
    pub relisted: u64,
    /// Stale devices deleted by `expire`.
    pub expired_devices: u64,
    /// Archived sessions deleted by `expire`.
    pub expired_sessions: u64,
    /// One-time prekeys a device could not add (at its bound).
    pub prekeys_exhausted: u64,
    /// Signed prekeys rotated on schedule.
    pub signed_prekey_rotations: u64,
    /// Backups taken.
    pub backups: u64,
    /// Restores from a backup.
    pub restores: u64,
    /// Distinct device slots ever restored from a backup.
    pub restored_devices: u64,
    /// Restarts with everything persisted.
    pub crashes: u64,
    /// Restarts after lost writes.
    pub lost_writes: u64,
    /// Objects (device, records, group) whose write was lost.
    pub lost_objects: u64,
    /// Devices older than recorded, reset (SPEC §6).
    pub device_resets: u64,
    /// Records older than recorded (`after_restore` deleted their sessions).
    pub stale_records: u64,
    /// Sessions those `after_restore` calls deleted.
    pub sessions_deleted: u64,
    /// Groups older than recorded (a new chain, no receivers).
    pub stale_groups: u64,
    /// Group installs: a new chain.
    pub installs_added: u64,
    /// Group installs: a chain moved forward.
    pub installs_advanced: u64,
    /// Group installs that changed nothing (held as far, or a dropped chain).
    pub installs_unchanged: u64,
    /// Group installs refused (not a member, or no group).
    pub installs_refused: u64,
    /// Users removed from the group.
    pub removals: u64,
    /// Users who rejoined the group.
    pub rejoins: u64,
    /// Local chains rotated (removal, device left, schedule).
    pub rotations: u64,
    /// Group messages sent by removed members' devices (never accepted).
    pub outsider_sends: u64,
    /// Simulated days the run took.
    pub days: u64,
}
