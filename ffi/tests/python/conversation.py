"""A Python (ctypes) client of the sotto shared library, protocol v2.

Usage: python3 conversation.py path/to/libsotto_ffi.so

Runs, over the C ABI only:

1. a two-party conversation over PQXDH with persistence under contexts,
   generations, prekey management, classical X3DH by explicit opt-in, and
   the error paths a binding with untyped handles can hit;
2. a group chat of three members: sender keys handed out over the pairwise
   sessions and installed through each member's store, the v1 attack (a
   member forwarding another's key) refused, out-of-order delivery,
   replays, save and restore, a member removed through the store and
   rotation, and that member failing to read on;
3. the group API's error paths, including forged state and wire bytes;
4. bounds an attacker can drive: a signed prekey exhausted by replayable
   handshakes, a message too far ahead, a group store full of
   authenticated chains;
5. the session layer (SPEC §16): two users with two devices each, fan-out
   to every device, a retry request, a stale backup recovered by a new
   session, a group message kept until its distribution arrives, a removal,
   an identity change, expiry, sealed save and restore, and forged wire
   and state bytes that change no record;
6. memory safety: a copied buffer freed twice, handles used after free,
   and threads racing on one handle.

Every failing call must return the exact expected code, write no output
and leave a non-empty last error message that shows no secret. Every
buffer is freed with sotto_buffer_free and every handle with its own _free
(checked at the end). Exits non-zero on the first failed check. Run by
ffi/tests/clients.rs.
"""

import ctypes
import enum
import re
import sys
import threading
import time
from ctypes import (
    POINTER,
    byref,
    c_bool,
    c_int32,
    c_size_t,
    c_uint8,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path

# ---------------------------------------------------------------------------
# Constants from sotto.h (checked against the header by check_header()).
# ---------------------------------------------------------------------------


class Code(enum.IntEnum):
    """Every SottoError code: check_header() requires exactly the header's."""

    OK = 0
    NULL_POINTER = 1
    INVALID_ARGUMENT = 2
    WRONG_HANDLE = 3
    HANDLE_BUSY = 4
    HANDLE_POISONED = 5
    RANDOMNESS = 6
    PANIC = 7
    INVALID_BUFFER = 8
    PROTOCOL_OTHER = 100
    TRUNCATED = 101
    TRAILING_BYTES = 102
    UNSUPPORTED_VERSION = 103
    WRONG_TYPE = 104
    INVALID_ENCODING = 105
    TOO_LARGE = 106
    PLAINTEXT_TOO_LARGE = 107
    INVALID_PUBLIC_KEY = 108
    NON_CONTRIBUTORY_KEY = 109
    INVALID_SIGNATURE = 110
    IDENTITY_MISMATCH = 111
    UNKNOWN_SIGNED_PREKEY = 112
    UNKNOWN_ONE_TIME_PREKEY = 113
    DUPLICATE_PREKEY_MESSAGE = 114
    TOO_MANY_PREKEYS = 115
    AUTHENTICATION_FAILED = 116
    DUPLICATE_MESSAGE = 117
    TOO_FAR_AHEAD = 118
    SESSION_MISMATCH = 120
    CHAIN_EXHAUSTED = 121
    UNKNOWN_GROUP_CHAIN = 122
    GROUP_INDEX_OUT_OF_RANGE = 123
    GROUP_MISMATCH = 124
    GROUP_CHAIN_CONFLICT = 125
    POST_QUANTUM_REQUIRED = 127
    UNKNOWN_KEM_PREKEY = 128
    SIGNED_PREKEY_EXHAUSTED = 129
    SESSION_DIVERGED = 130
    GROUP_OWNER_MISMATCH = 131
    GROUP_STORE_FULL = 132
    INVALID_DEVICE_LIST = 133
    UNKNOWN_DEVICE = 134
    IDENTITY_CHANGE_PENDING = 135
    NO_SESSION = 136
    RECOVERY_RATE_LIMITED = 137
    NOT_GROUP_MEMBER = 138
    TOO_MANY_GROUP_MEMBERS = 139
    # The SQLite store's: numbered here for the bindings that bind it; no
    # C function returns them.
    WRONG_KEY = 200
    DATABASE_CORRUPT = 201
    DISK_FULL = 202
    BUSY = 203
    CONFLICT = 204
    TRUNCATED_VALUE = 205
    CORRUPT_VALUE = 206
    MISPLACED_VALUE = 207
    NOT_FOUND = 208
    ALREADY_EXISTS = 209
    UNSUPPORTED_SCHEMA = 210
    DATABASE = 211


RETIRED_CODES = (119, 126)  # never reused


SIZES = {
    "SOTTO_STORAGE_KEY_LEN": 32,
    "SOTTO_MAX_SEAL_CONTEXT_LEN": 1024,
    "SOTTO_IDENTITY_KEY_LEN": 34,
    "SOTTO_SIGNED_PREKEY_LEN": 102,
    "SOTTO_ONE_TIME_PREKEY_LEN": 38,
    "SOTTO_KEM_PREKEY_LEN": 1640,
    "SOTTO_MAX_PLAINTEXT_LEN": 262144,
    "SOTTO_MAX_MESSAGE_LEN": 263866,
    "SOTTO_GROUP_ID_LEN": 32,
    "SOTTO_CHAIN_ID_LEN": 32,
    "SOTTO_SENDER_KEY_DISTRIBUTION_LEN": 486,
    "SOTTO_MAX_GROUP_MESSAGE_LEN": 262310,
    "SOTTO_MAX_SIGNED_PREKEYS": 4,
    "SOTTO_MAX_BASE_KEYS_PER_SIGNED_PREKEY": 1000,
    "SOTTO_MAX_LAST_RESORT_KEM_PREKEYS": 4,
    "SOTTO_MAX_GROUP_RECEIVERS": 1024,
    "SOTTO_MAX_USER_ID_LEN": 64,
    "SOTTO_MAX_DEVICES_PER_USER": 16,
    "SOTTO_MAX_ARCHIVED_SESSIONS": 4,
    "SOTTO_MAX_STALE_DEVICE_AGE": 2592000,
    "SOTTO_MIN_RECOVERY_INTERVAL": 3600,
    "SOTTO_MAX_RETRY_REQUESTS_PER_INTERVAL": 8,
    "SOTTO_MAX_GROUP_MEMBERS": 1000,
    "SOTTO_MAX_PAYLOAD_LEN": 262143,
    "SOTTO_USER_FINGERPRINT_TEXT_LEN": 35,
    "SOTTO_SAFETY_NUMBER_TEXT_LEN": 71,
}
STORAGE_KEY_LEN = SIZES["SOTTO_STORAGE_KEY_LEN"]
MAX_SEAL_CONTEXT_LEN = SIZES["SOTTO_MAX_SEAL_CONTEXT_LEN"]
IDENTITY_KEY_LEN = SIZES["SOTTO_IDENTITY_KEY_LEN"]
SIGNED_PREKEY_LEN = SIZES["SOTTO_SIGNED_PREKEY_LEN"]
ONE_TIME_PREKEY_LEN = SIZES["SOTTO_ONE_TIME_PREKEY_LEN"]
KEM_PREKEY_LEN = SIZES["SOTTO_KEM_PREKEY_LEN"]
MAX_PLAINTEXT_LEN = SIZES["SOTTO_MAX_PLAINTEXT_LEN"]
GROUP_ID_LEN = SIZES["SOTTO_GROUP_ID_LEN"]
CHAIN_ID_LEN = SIZES["SOTTO_CHAIN_ID_LEN"]
DISTRIBUTION_LEN = SIZES["SOTTO_SENDER_KEY_DISTRIBUTION_LEN"]
MAX_GROUP_MESSAGE_LEN = SIZES["SOTTO_MAX_GROUP_MESSAGE_LEN"]
MAX_SIGNED_PREKEYS = SIZES["SOTTO_MAX_SIGNED_PREKEYS"]
MAX_BASE_KEYS = SIZES["SOTTO_MAX_BASE_KEYS_PER_SIGNED_PREKEY"]
MAX_GROUP_RECEIVERS = SIZES["SOTTO_MAX_GROUP_RECEIVERS"]
MAX_USER_ID_LEN = SIZES["SOTTO_MAX_USER_ID_LEN"]
MAX_DEVICES = SIZES["SOTTO_MAX_DEVICES_PER_USER"]
MAX_STALE_DEVICE_AGE = SIZES["SOTTO_MAX_STALE_DEVICE_AGE"]
MIN_RECOVERY_INTERVAL = SIZES["SOTTO_MIN_RECOVERY_INTERVAL"]
MAX_RETRY_REQUESTS = SIZES["SOTTO_MAX_RETRY_REQUESTS_PER_INTERVAL"]
MAX_GROUP_MEMBERS = SIZES["SOTTO_MAX_GROUP_MEMBERS"]
MAX_PAYLOAD_LEN = SIZES["SOTTO_MAX_PAYLOAD_LEN"]
SAFETY_NUMBER_TEXT_LEN = SIZES["SOTTO_SAFETY_NUMBER_TEXT_LEN"]
USER_FINGERPRINT_TEXT_LEN = SIZES["SOTTO_USER_FINGERPRINT_TEXT_LEN"]
MESSAGE_TYPE_RATCHET = 1
MESSAGE_TYPE_PREKEY = 2
KEY_AGREEMENT_X3DH = 1
KEY_AGREEMENT_PQXDH = 2


class Outcome(enum.IntEnum):
    """SottoInsertOutcome."""

    ADDED = 1
    ADVANCED = 2
    UPGRADED = 3
    UNCHANGED = 5


class Action(enum.IntEnum):
    """SottoAction: what a failed decrypt calls for."""

    NONE = 0
    IGNORE = 1
    RETRY_LATER = 2
    REQUEST_RETRY = 3
    START_NEW_SESSION = 4


class Reason(enum.IntEnum):
    """SottoActionReason."""

    NONE = 0
    DUPLICATE = 1
    MALFORMED = 2
    DOWNGRADE = 3
    RECOVERY_PENDING = 4
    WRONG_LOCAL_DEVICE = 5
    UNKNOWN_DEVICE = 6
    IDENTITY_CHANGE_PENDING = 7
    UNKNOWN_IDENTITY = 8
    MISSING_DISTRIBUTION = 9


class Kind(enum.IntEnum):
    """SottoContentKind."""

    PAYLOAD = 1
    DISTRIBUTION = 2
    RETRY_REQUEST = 3
    DISTRIBUTION_REQUEST = 4


class Listing(enum.IntEnum):
    """SottoLocalListing."""

    NOT_OWN_RECORD = 0
    LISTED = 1
    MISSING = 2
    OTHER_IDENTITY = 3


HEADER_ENUMS = {"SOTTO_ACTION_REASON_": Reason, "SOTTO_ACTION_": Action,
                "SOTTO_CONTENT_KIND_": Kind, "SOTTO_LOCAL_LISTING_": Listing}


# Byte layouts (SPEC.md), for the tests that forge wire and state bytes.
BUNDLE_OPK_FLAG = 2 + 32 + (SIGNED_PREKEY_LEN - 2)  # after identity and signed prekey
PREKEY_BASE_KEY = slice(34, 66)  # prekey message: version, type, IK_A, then EK.pub
GROUP_ID_OFFSET = 2  # group message: version, type, group_id, chain, index, salt, ...
SIGNATURE_LEN = 64
DISTRIBUTION_R7 = 2 + 32 + 32 + 32 + 64 + 64 + 4 + 7 * 32  # group, chain, owner, proof, signature, index, R_0..
SENDER_STATE_INDEX = slice(2 + 8 + 32 + 32 + 32 + 64 + 64, 2 + 8 + 32 + 32 + 32 + 64 + 64 + 4)
GROUP_JUMP = 1 << 24


def check_header():
    """The constants above have the header's values, and the error codes
    are exactly the header's: the C ABI is the single source of the codes."""
    header = (Path(__file__).resolve().parents[2] / "include" / "sotto.h").read_text()
    declared = {
        m.group(1): int(m.group(2))
        for m in re.finditer(r"\bSOTTO_ERROR_([A-Z_]+) = (\d+),", header)
    }
    assert declared == {c.name: c.value for c in Code}, declared
    assert not set(RETIRED_CODES) & set(declared.values())
    for outcome in Outcome:
        assert re.search(rf"\bSOTTO_INSERT_OUTCOME_{outcome.name} = {outcome.value},", header)
    for prefix, values in HEADER_ENUMS.items():
        others = [p for p in HEADER_ENUMS if p != prefix and p.startswith(prefix)]
        found = {m.group(1): int(m.group(2))
                 for m in re.finditer(rf"\b{prefix}([A-Z_]+) = (\d+),", header)
                 if not any(f"{prefix}{m.group(1)}".startswith(o) for o in others)}
        assert found == {v.name: v.value for v in values}, (prefix, found)
    for name, value in SIZES.items():
        assert re.search(rf"#define {name} {value}\n", header), name


# ---------------------------------------------------------------------------
# Loading the library: every function returns a SottoError (int32_t).
# ---------------------------------------------------------------------------


class Buffer(ctypes.Structure):
    """SottoBuffer: bytes the library allocated; release with sotto_buffer_free."""

    _fields_ = [("ptr", POINTER(c_uint8)), ("len", c_size_t), ("id", c_uint64)]

    def is_empty(self):
        return not self.ptr and self.len == 0 and self.id == 0


class SignedPrekeyInfo(ctypes.Structure):
    _fields_ = [("id", c_uint32), ("created", c_uint64), ("base_key_count", c_size_t)]


class KemPrekeyInfo(ctypes.Structure):
    _fields_ = [("id", c_uint32), ("created", c_uint64)]


DEVICE_IDS = c_uint32 * MAX_DEVICES
IDENTITY = c_uint8 * IDENTITY_KEY_LEN
KEY32 = c_uint8 * 32


class DeviceListEntry(ctypes.Structure):
    _fields_ = [("device", c_uint32), ("identity_key", IDENTITY)]


class IdentityChange(ctypes.Structure):
    _fields_ = [("device", c_uint32), ("old_fingerprint", KEY32), ("new_fingerprint", KEY32),
                ("new_identity_key", IDENTITY)]


def _id_lists(*names):
    fields = []
    for name in names:
        fields += [(f"{name}_count", c_size_t), (name, DEVICE_IDS)]
    return fields


class IdLists:
    def ids(self, name, count=None):
        return list(getattr(self, name)[: getattr(self, count or f"{name}_count")])


class DeviceListChanges(ctypes.Structure, IdLists):
    _fields_ = _id_lists("added", "relisted", "removed", "deleted", "withdrawn") + [
        ("identity_change_count", c_size_t), ("identity_changes", IdentityChange * MAX_DEVICES),
        ("local", c_int32), ("local_other_fingerprint", KEY32)]

    def changes(self):
        return list(self.identity_changes[: self.identity_change_count])


class SendPlan(ctypes.Structure, IdLists):
    _fields_ = _id_lists("ready", "needs_bundle", "blocked")


class Expired(ctypes.Structure, IdLists):
    _fields_ = [("device_count", c_size_t), ("devices", DEVICE_IDS), ("sessions", c_size_t)]


class DeviceInfo(ctypes.Structure):
    _fields_ = [("device", c_uint32), ("identity_key", IDENTITY), ("has_pending_identity", c_bool),
                ("pending_identity_key", IDENTITY), ("is_stale", c_bool),
                ("stale_since", c_uint64), ("post_quantum_pinned", c_bool),
                ("has_active_session", c_bool), ("active_base_key", KEY32),
                ("awaiting_reply", c_bool), ("archived_sessions", c_size_t)]


class RetryHint(ctypes.Structure):
    _fields_ = [("ratchet_key", KEY32), ("message_number", c_uint32), ("has_base_key", c_uint8),
                ("base_key", KEY32)]

    def key(self):
        return (bytes(self.ratchet_key), self.message_number, self.has_base_key,
                bytes(self.base_key))


class Failure(ctypes.Structure):
    _fields_ = [("action", c_int32), ("reason", c_int32), ("hint", RetryHint)]


lib = ctypes.CDLL(sys.argv[1])
BUF = POINTER(Buffer)
OUT = POINTER(c_void_p)  # a SottoDevice ** (or any other handle slot)
BYTES = POINTER(c_uint8)
H = c_void_p  # every handle type looks the same to ctypes
SIZE_OUT = POINTER(c_size_t)
SIGNATURES = {
    "sotto_buffer_free": [BUF],
    "sotto_last_error_message": [BUF],
    # Devices.
    "sotto_device_generate": [c_uint64, OUT],
    "sotto_device_free": [H],
    "sotto_device_generation": [H, POINTER(c_uint64)],
    "sotto_device_identity_key": [H, BUF],
    "sotto_device_signed_prekey": [H, BUF],
    "sotto_device_signed_prekeys": [H, POINTER(SignedPrekeyInfo), c_size_t, SIZE_OUT],
    "sotto_device_rotate_signed_prekey": [H, c_uint64, BUF],
    "sotto_device_remove_signed_prekey": [H, c_uint32],
    "sotto_device_generate_one_time_prekeys": [H, c_size_t, BUF],
    "sotto_device_one_time_prekey_count": [H, SIZE_OUT],
    "sotto_device_last_resort_kem_prekey": [H, BUF],
    "sotto_device_last_resort_kem_prekeys": [H, POINTER(KemPrekeyInfo), c_size_t, SIZE_OUT],
    "sotto_device_rotate_last_resort_kem_prekey": [H, c_uint64, BUF],
    "sotto_device_remove_last_resort_kem_prekey": [H, c_uint32],
    "sotto_device_generate_one_time_kem_prekeys": [H, c_size_t, BUF],
    "sotto_device_one_time_kem_prekey_count": [H, SIZE_OUT],
    "sotto_device_reset_prekeys_after_restore": [H, c_uint64, c_uint64, BUF, BUF],
    "sotto_device_bundle": [H, BYTES, c_size_t, BYTES, c_size_t, BUF],
    "sotto_device_to_bytes": [H, BUF],
    "sotto_device_from_bytes": [BYTES, c_size_t, OUT],
    "sotto_device_seal": [H, BYTES, c_size_t, BYTES, c_size_t, BUF],
    "sotto_device_unseal": [BYTES, c_size_t, BYTES, c_size_t, BYTES, c_size_t, OUT],
    # Keys, bundles, messages.
    "sotto_bundle_new": [BYTES, c_size_t] * 4 + [BUF],
    "sotto_bundle_verify": [BYTES, c_size_t, BUF, POINTER(c_bool)],
    "sotto_prekey_id": [BYTES, c_size_t, POINTER(c_uint32)],
    "sotto_identity_key_fingerprint": [BYTES, c_size_t, BUF],
    "sotto_identity_key_fingerprint_text": [BYTES, c_size_t, BUF],
    "sotto_message_type": [BYTES, c_size_t, POINTER(c_int32)],
    "sotto_prekey_message_base_key": [BYTES, c_size_t, BUF],
    # Pairwise sessions and plaintexts.
    "sotto_session_initiate": [H, BYTES, c_size_t, BYTES, c_size_t, OUT],
    "sotto_session_initiate_allow_classical": [H, BYTES, c_size_t, BYTES, c_size_t, OUT],
    "sotto_session_accept": [H, BYTES, c_size_t, OUT, OUT],
    "sotto_session_accept_allow_classical": [H, BYTES, c_size_t, OUT, OUT],
    "sotto_session_encrypt": [H, BYTES, c_size_t, BUF],
    "sotto_session_decrypt": [H, BYTES, c_size_t, BUF],
    "sotto_session_decrypt_plaintext": [H, BYTES, c_size_t, OUT],
    "sotto_session_key_agreement": [H, POINTER(c_int32)],
    "sotto_session_is_awaiting_reply": [H, POINTER(c_bool)],
    "sotto_session_remote_identity_key": [H, BUF],
    "sotto_session_base_key": [H, BUF],
    "sotto_session_generation": [H, POINTER(c_uint64)],
    "sotto_session_to_bytes": [H, BUF],
    "sotto_session_from_bytes": [BYTES, c_size_t, OUT],
    "sotto_session_seal": [H, BYTES, c_size_t, BYTES, c_size_t, BUF],
    "sotto_session_unseal": [BYTES, c_size_t, BYTES, c_size_t, BYTES, c_size_t, OUT],
    "sotto_session_free": [H],
    "sotto_plaintext_bytes": [H, BUF],
    "sotto_plaintext_sender_identity_key": [H, BUF],
    "sotto_plaintext_free": [H],
    # Group senders (this member's own chain).
    "sotto_group_sender_new": [H, BYTES, c_size_t, OUT],
    "sotto_group_sender_distribution": [H, BUF],
    "sotto_group_sender_rotate": [H, H, BUF],
    "sotto_group_sender_encrypt": [H, BYTES, c_size_t, BUF],
    "sotto_group_sender_owner_identity_key": [H, BUF],
    "sotto_group_sender_chain_id": [H, BUF],
    "sotto_group_sender_generation": [H, POINTER(c_uint64)],
    "sotto_group_sender_to_bytes": [H, BUF],
    "sotto_group_sender_from_bytes": [BYTES, c_size_t, OUT],
    "sotto_group_sender_seal": [H, BYTES, c_size_t, BYTES, c_size_t, BUF],
    "sotto_group_sender_unseal": [BYTES, c_size_t, BYTES, c_size_t, BYTES, c_size_t, OUT],
    "sotto_group_sender_free": [H],
    "sotto_group_message_chain_id": [BYTES, c_size_t, BUF],
    "sotto_group_message_group_id": [BYTES, c_size_t, BUF],
    # Group stores (every other member's chains).
    "sotto_group_store_new": [BYTES, c_size_t, OUT],
    "sotto_group_store_receive_distribution": [H, H, BYTES, c_size_t, POINTER(c_int32)],
    "sotto_group_store_install": [H, H, POINTER(c_int32)],
    "sotto_group_store_import_unauthenticated": [H, BYTES, c_size_t, POINTER(c_int32)],
    "sotto_group_store_decrypt": [H, BYTES, c_size_t, BUF, BUF, POINTER(c_bool)],
    "sotto_group_store_remove_owner": [H, BYTES, c_size_t, SIZE_OUT],
    "sotto_group_store_len": [H, SIZE_OUT],
    "sotto_group_store_receiver": [H, BYTES, c_size_t, BUF, POINTER(c_bool), POINTER(c_uint32)],
    "sotto_group_store_generation": [H, POINTER(c_uint64)],
    "sotto_group_store_to_bytes": [H, BUF],
    "sotto_group_store_from_bytes": [BYTES, c_size_t, OUT],
    "sotto_group_store_seal": [H, BYTES, c_size_t, BYTES, c_size_t, BUF],
    "sotto_group_store_unseal": [BYTES, c_size_t, BYTES, c_size_t, BYTES, c_size_t, OUT],
    "sotto_group_store_free": [H],
    # The session layer: peer records, what they decrypt, outboxes.
    "sotto_peer_record_new": [BYTES, c_size_t, H, OUT],
    "sotto_peer_record_new_own": [BYTES, c_size_t, c_uint32, H, OUT],
    "sotto_peer_record_user": [H, BUF],
    "sotto_peer_record_update_devices": [H, POINTER(DeviceListEntry), c_size_t, c_uint64,
                                         POINTER(DeviceListChanges)],
    "sotto_peer_record_acknowledge_identity": [H, c_uint32, BYTES, c_size_t],
    "sotto_peer_record_allow_classical": [H, c_uint32, c_bool],
    "sotto_peer_record_devices": [H, POINTER(DeviceInfo), c_size_t, SIZE_OUT],
    "sotto_peer_record_plan_send": [H, c_uint64, POINTER(SendPlan)],
    "sotto_peer_record_add_bundle": [H, H, c_uint32, BYTES, c_size_t, c_uint64],
    "sotto_peer_record_encrypt": [H, BYTES, c_size_t, OUT],
    "sotto_peer_record_encrypt_to": [H, c_uint32, BYTES, c_size_t, BUF],
    "sotto_peer_record_decrypt": [H, H, c_uint32, BYTES, c_size_t, c_uint64, OUT,
                                  POINTER(Failure)],
    "sotto_peer_record_request_retry": [H, c_uint32, POINTER(RetryHint), c_uint64, BUF],
    "sotto_peer_record_start_new_session": [H, H, c_uint32, BYTES, c_size_t, POINTER(RetryHint),
                                            c_uint64, BUF],
    "sotto_peer_record_request_distribution": [H, c_uint32, BYTES, c_size_t, BUF],
    "sotto_peer_record_expire": [H, c_uint64, POINTER(Expired)],
    "sotto_peer_record_after_restore": [H, c_uint64, SIZE_OUT],
    "sotto_peer_record_fingerprint": [H, BUF],
    "sotto_peer_record_safety_number": [H, H, BUF],
    "sotto_peer_record_generation": [H, POINTER(c_uint64)],
    "sotto_peer_record_to_bytes": [H, BUF],
    "sotto_peer_record_from_bytes": [BYTES, c_size_t, OUT],
    "sotto_peer_record_seal": [H, BYTES, c_size_t, BYTES, c_size_t, BUF],
    "sotto_peer_record_unseal": [BYTES, c_size_t, BYTES, c_size_t, BYTES, c_size_t, OUT],
    "sotto_peer_record_free": [H],
    "sotto_received_kind": [H, POINTER(c_int32)],
    "sotto_received_device": [H, POINTER(c_uint32)],
    "sotto_received_payload": [H, BUF],
    "sotto_received_sender_identity_key": [H, BUF],
    "sotto_received_retry_hint": [H, POINTER(RetryHint)],
    "sotto_received_group_id": [H, BUF],
    "sotto_received_free": [H],
    "sotto_retry_hint_matches": [POINTER(RetryHint), BYTES, c_size_t, POINTER(c_bool)],
    "sotto_outbox_message_count": [H, SIZE_OUT],
    "sotto_outbox_message": [H, c_size_t, SIZE_OUT, POINTER(c_uint32), BUF],
    "sotto_outbox_unusable_count": [H, SIZE_OUT],
    "sotto_outbox_unusable": [H, c_size_t, SIZE_OUT, POINTER(c_uint32), POINTER(c_int32)],
    "sotto_outbox_free": [H],
    # Groups through the session layer.
    "sotto_group_session_new": [H, BYTES, c_size_t, BYTES, c_size_t, OUT],
    "sotto_group_session_add_member": [H, BYTES, c_size_t, POINTER(c_bool)],
    "sotto_group_session_is_member": [H, BYTES, c_size_t, POINTER(c_bool)],
    "sotto_group_session_member_count": [H, SIZE_OUT],
    "sotto_group_session_group_id": [H, BUF],
    "sotto_group_session_distribute": [H, POINTER(c_void_p), c_size_t, OUT],
    "sotto_group_session_distribute_to": [H, H, c_uint32, BUF],
    "sotto_group_session_install": [H, H, H, POINTER(c_int32)],
    "sotto_group_session_encrypt": [H, BYTES, c_size_t, BUF],
    "sotto_group_session_decrypt": [H, H, BYTES, c_size_t, BUF, BUF, POINTER(c_bool),
                                    POINTER(Failure)],
    "sotto_group_session_remove_member": [H, H, BYTES, c_size_t, POINTER(c_void_p), c_size_t,
                                          OUT],
    "sotto_group_session_rotate": [H, H, POINTER(c_void_p), c_size_t, OUT],
    "sotto_group_session_after_restore": [H, H, c_uint64, POINTER(c_bool)],
    "sotto_group_session_generation": [H, POINTER(c_uint64)],
    "sotto_group_session_to_bytes": [H, BUF],
    "sotto_group_session_from_bytes": [BYTES, c_size_t, OUT],
    "sotto_group_session_seal": [H, BYTES, c_size_t, BYTES, c_size_t, BUF],
    "sotto_group_session_unseal": [BYTES, c_size_t, BYTES, c_size_t, BYTES, c_size_t, OUT],
    "sotto_group_session_free": [H],
}
for name, argtypes in SIGNATURES.items():
    fn = getattr(lib, name)
    fn.argtypes = argtypes
    fn.restype = c_int32


# ---------------------------------------------------------------------------
# Calling convention: codes, the last error, buffers and handles.
# ---------------------------------------------------------------------------


class SottoError(Exception):
    def __init__(self, code, message):
        super().__init__(f"sotto error {code}: {message}")
        self.code = code
        self.message = message


def last_error():
    """The calling thread's last error message ("" after a success)."""
    buf = Buffer()
    assert lib.sotto_last_error_message(byref(buf)) == Code.OK
    text = ctypes.string_at(buf.ptr, buf.len).decode() if buf.len else ""
    lib.sotto_buffer_free(byref(buf))
    return text


def call(fn, *args):
    code = fn(*args)
    if code != Code.OK:
        raise SottoError(code, last_error())


def take(buf):
    """Copies an output buffer into Python bytes and frees it."""
    data = ctypes.string_at(buf.ptr, buf.len) if buf.len else b""
    call(lib.sotto_buffer_free, byref(buf))
    assert buf.is_empty()
    return data


def out_bytes(fn, *args):
    """Calls fn with a fresh output buffer appended; returns its bytes."""
    buf = Buffer()
    call(fn, *args, byref(buf))
    return take(buf)


def out_value(fn, ctype, *args):
    value = ctype()
    call(fn, *args, byref(value))
    return value.value


def arg(data):
    """A borrowed (pointer, length) pair for bytes; None is (NULL, 0)."""
    if data is None:
        return (None, 0)
    return ((c_uint8 * len(data)).from_buffer_copy(data), len(data))


# Every live handle and the function that frees it: free() checks each is
# freed once, with its own _free, and main() that none is left at the end.
FREE = {
    "device": lib.sotto_device_free,
    "session": lib.sotto_session_free,
    "plaintext": lib.sotto_plaintext_free,
    "sender": lib.sotto_group_sender_free,
    "store": lib.sotto_group_store_free,
    "record": lib.sotto_peer_record_free,
    "received": lib.sotto_received_free,
    "outbox": lib.sotto_outbox_free,
    "group": lib.sotto_group_session_free,
}
live = {}


def adopt(kind, handle):
    """Records a handle a call just returned."""
    assert handle.value and handle.value not in live
    live[handle.value] = kind
    return handle


def new_handle(kind, fn, *args):
    """Calls fn with a fresh output handle slot appended; returns the handle."""
    handle = c_void_p()
    call(fn, *args, byref(handle))
    return adopt(kind, handle)


def free(handle):
    call(FREE[live.pop(handle.value)], handle)


# Error checks. A failed call must write no output: pass output buffers and
# handle slots to expect_error() as objects (ctypes passes them by
# reference) so it can check they are still empty.
errors_checked = 0
codes_seen = set()
# Codes no client can provoke through the ABI: the unit tests of
# ffi/src cover them (a panic, a failing OS RNG, poisoning; busy handles
# are raced below, where scheduling decides how often they collide).
UNREACHABLE = {Code.OK, Code.HANDLE_BUSY, Code.HANDLE_POISONED, Code.RANDOMNESS, Code.PANIC,
               Code.PROTOCOL_OTHER} | {c for c in Code if c.value >= 200}  # the store's
HEX_DUMP = re.compile(r"(?![0-9]{16})[0-9a-fA-F]{16}")
BYTE_LIST = re.compile(r"\d{1,3}, \d{1,3}, \d{1,3}, \d{1,3}")


def shows(message, secret):
    """Whether message shows 8 consecutive bytes of secret (raw, hex or as a list)."""
    for i in range(max(1, len(secret) - 7)):
        window = secret[i : i + 8]
        forms = [window.hex(), window.hex().upper(), ", ".join(map(str, window))]
        forms.append(window.decode("latin-1"))
        if any(form in message for form in forms):
            return True
    return False


def expect_error(want, fn, *args, secrets=()):
    """fn(*args) fails with exactly `want`, explains why, and reveals nothing."""
    global errors_checked
    empty_outputs = [a for a in args if isinstance(a, Buffer) and a.is_empty()]
    empty_slots = [a for a in args if isinstance(a, c_void_p) and a.value is None]
    code = fn(*args)
    message = last_error()
    assert code == want, f"{fn.__name__}: got {code} ({message}), want {want.name} ({want})"
    assert message, f"{fn.__name__}: no error message"
    assert not HEX_DUMP.search(message) and not BYTE_LIST.search(message), message
    for secret in secrets:
        assert not shows(message, secret), f"{fn.__name__} leaked a secret: {message}"
    assert all(b.is_empty() for b in empty_outputs), f"{fn.__name__} wrote output"
    assert all(s.value is None for s in empty_slots), f"{fn.__name__} wrote a handle"
    errors_checked += 1
    codes_seen.add(want)
    print(f"error ok: {want.name} -> {int(want)} ({message})")


# ---------------------------------------------------------------------------
# Pairwise
# ---------------------------------------------------------------------------

NOW = 1_700_000_000


def device():
    return new_handle("device", lib.sotto_device_generate, NOW)


def identity(dev):
    return out_bytes(lib.sotto_device_identity_key, dev)


def generation(fn, handle):
    return out_value(fn, c_uint64, handle)


def encrypt(session, text):
    return out_bytes(lib.sotto_session_encrypt, session, *arg(text))


def decrypt(session, wire):
    return out_bytes(lib.sotto_session_decrypt, session, *arg(wire))


def accept(dev, wire, fn=None):
    """Accepts a prekey message; returns (session, plaintext bytes, sender)."""
    session, plaintext = c_void_p(), c_void_p()
    call(fn or lib.sotto_session_accept, dev, *arg(wire), byref(session), byref(plaintext))
    adopt("session", session)
    adopt("plaintext", plaintext)
    text = out_bytes(lib.sotto_plaintext_bytes, plaintext)
    sender = out_bytes(lib.sotto_plaintext_sender_identity_key, plaintext)
    free(plaintext)
    return session, text, sender


def bundle_of(dev, opk=None, kem=None):
    return out_bytes(lib.sotto_device_bundle, dev, *arg(opk), *arg(kem))


def signed_prekeys(dev):
    infos = (SignedPrekeyInfo * MAX_SIGNED_PREKEYS)()
    count = c_size_t()
    call(lib.sotto_device_signed_prekeys, dev, infos, MAX_SIGNED_PREKEYS, byref(count))
    return [(i.id, i.created, i.base_key_count) for i in infos[: count.value]]


def connect(a, b, a_id, b_id):
    """A PQXDH session from a to b with one-time keys of both kinds."""
    opk = out_bytes(lib.sotto_device_generate_one_time_prekeys, b, 1)
    kem = out_bytes(lib.sotto_device_generate_one_time_kem_prekeys, b, 1)
    bundle = bundle_of(b, opk, kem)
    a_to_b = new_handle("session", lib.sotto_session_initiate, a, *arg(bundle), *arg(b_id))
    b_to_a, text, sender = accept(b, encrypt(a_to_b, b"hi"))
    assert text == b"hi" and sender == a_id
    assert decrypt(a_to_b, encrypt(b_to_a, b"hello")) == b"hello"
    return a_to_b, b_to_a


def pairwise_conversation():
    alice, bob = device(), device()
    alice_id, bob_id = identity(alice), identity(bob)
    opks = out_bytes(lib.sotto_device_generate_one_time_prekeys, bob, 1)
    kems = out_bytes(lib.sotto_device_generate_one_time_kem_prekeys, bob, 1)
    assert len(opks) == ONE_TIME_PREKEY_LEN and len(kems) == KEM_PREKEY_LEN
    bundle = bundle_of(bob, opks, kems)
    has_kem, verified = c_bool(), Buffer()
    call(lib.sotto_bundle_verify, *arg(bundle), byref(verified), byref(has_kem))
    assert take(verified) == bob_id and has_kem.value
    fingerprint = out_bytes(lib.sotto_identity_key_fingerprint_text, *arg(bob_id)).decode()
    assert len(fingerprint) == 71, fingerprint
    print("bob fingerprint:", fingerprint)

    bad = bytearray(bundle)
    bad[2 + 32 + 4 + 32 + 5] ^= 0x40
    expect_error(Code.INVALID_SIGNATURE, lib.sotto_session_initiate, alice, *arg(bytes(bad)),
                 *arg(None), c_void_p())
    bad = bytearray(bundle)
    bad[BUNDLE_OPK_FLAG] = 2
    expect_error(Code.INVALID_ENCODING, lib.sotto_bundle_verify, *arg(bytes(bad)), Buffer(),
                 byref(has_kem))
    expect_error(Code.IDENTITY_MISMATCH, lib.sotto_session_initiate, alice, *arg(bundle),
                 *arg(alice_id), c_void_p())
    expect_error(Code.INVALID_PUBLIC_KEY, lib.sotto_identity_key_fingerprint,
                 *arg(bob_id[:2] + b"\xff" * 32), Buffer())

    to_bob = new_handle("session", lib.sotto_session_initiate, alice, *arg(bundle), *arg(bob_id))
    assert out_value(lib.sotto_session_key_agreement, c_int32, to_bob) == KEY_AGREEMENT_PQXDH
    first = encrypt(to_bob, b"hello Bob")
    assert out_value(lib.sotto_message_type, c_int32, *arg(first)) == MESSAGE_TYPE_PREKEY

    # A base key forged to a low-order point is refused by the exchange.
    low_order = bytearray(first)
    low_order[PREKEY_BASE_KEY] = bytes(32)
    expect_error(Code.NON_CONTRIBUTORY_KEY, lib.sotto_session_accept, bob, *arg(bytes(low_order)),
                 c_void_p(), c_void_p())
    high_bit = bytearray(first)
    high_bit[PREKEY_BASE_KEY.stop - 1] |= 0x80
    expect_error(Code.INVALID_PUBLIC_KEY, lib.sotto_session_accept, bob, *arg(bytes(high_bit)),
                 c_void_p(), c_void_p())

    to_alice, text, sender = accept(bob, first)
    assert text == b"hello Bob" and sender == alice_id
    print("alice -> bob: hello Bob")
    expect_error(Code.UNKNOWN_ONE_TIME_PREKEY, lib.sotto_device_bundle, bob, *arg(opks),
                 *arg(None), Buffer())
    expect_error(Code.UNKNOWN_KEM_PREKEY, lib.sotto_device_bundle, bob, *arg(None), *arg(kems),
                 Buffer())

    reply = encrypt(to_alice, b"hi Alice")
    assert out_value(lib.sotto_message_type, c_int32, *arg(reply)) == MESSAGE_TYPE_RATCHET
    assert decrypt(to_bob, reply) == b"hi Alice"
    assert not out_value(lib.sotto_session_is_awaiting_reply, c_bool, to_bob)
    print("bob -> alice: hi Alice")

    # Out of order, duplicate, tampered; failures change nothing.
    wires = [encrypt(to_bob, f"msg {i}".encode()) for i in range(4)]
    for i in (3, 1, 0, 2):
        assert decrypt(to_alice, wires[i]) == f"msg {i}".encode()
    before = generation(lib.sotto_session_generation, to_alice)
    expect_error(Code.DUPLICATE_MESSAGE, lib.sotto_session_decrypt, to_alice, *arg(wires[1]),
                 Buffer())
    wire = encrypt(to_bob, b"tamper")
    tampered = bytearray(wire)
    tampered[-20] ^= 1
    expect_error(Code.AUTHENTICATION_FAILED, lib.sotto_session_decrypt, to_alice,
                 *arg(bytes(tampered)), Buffer(), secrets=[b"tamper"])
    assert generation(lib.sotto_session_generation, to_alice) == before
    assert decrypt(to_alice, wire) == b"tamper"
    print("alice -> bob: out of order, duplicate and tampered handled")

    # Another session's prekey message, from Alice and from Carol.
    carol = device()
    other_bundle = bundle_of(bob)
    for who in (alice, carol):
        other = new_handle("session", lib.sotto_session_initiate, who, *arg(other_bundle),
                           *arg(None))
        want = Code.SESSION_MISMATCH if who is alice else Code.IDENTITY_MISMATCH
        expect_error(want, lib.sotto_session_decrypt, to_alice, *arg(encrypt(other, b"x")),
                     Buffer())
        free(other)

    # Persistence under contexts: a blob opens only in its record.
    key = bytes(range(STORAGE_KEY_LEN))
    state = out_bytes(lib.sotto_session_to_bytes, to_alice)
    free(to_alice)
    to_alice = new_handle("session", lib.sotto_session_from_bytes, *arg(state))
    sealed = out_bytes(lib.sotto_session_seal, to_bob, *arg(key), *arg(b"session/bob"))
    recorded = generation(lib.sotto_session_generation, to_bob)
    free(to_bob)
    for bad_key, context, want in (
        (bytes(STORAGE_KEY_LEN), b"session/bob", Code.AUTHENTICATION_FAILED),
        (key, b"session/carol", Code.AUTHENTICATION_FAILED),
        (key, None, Code.AUTHENTICATION_FAILED),
        (key[:16], b"session/bob", Code.INVALID_ARGUMENT),
        (key, bytes(MAX_SEAL_CONTEXT_LEN + 1), Code.TOO_LARGE),
    ):
        expect_error(want, lib.sotto_session_unseal, *arg(sealed), *arg(bad_key), *arg(context),
                     c_void_p(), secrets=[key])
    to_bob = new_handle("session", lib.sotto_session_unseal, *arg(sealed), *arg(key),
                        *arg(b"session/bob"))
    assert generation(lib.sotto_session_generation, to_bob) == recorded
    sealed_bob = out_bytes(lib.sotto_device_seal, bob, *arg(key), *arg(b"device"))
    free(bob)
    bob = new_handle("device", lib.sotto_device_unseal, *arg(sealed_bob), *arg(key),
                     *arg(b"device"))
    expect_error(Code.WRONG_TYPE, lib.sotto_device_unseal, *arg(sealed), *arg(key),
                 *arg(b"session/bob"), c_void_p(), secrets=[key])
    assert decrypt(to_bob, encrypt(to_alice, b"after restore")) == b"after restore"
    assert decrypt(to_alice, encrypt(to_bob, b"")) == b""
    print("bob -> alice: after restore")

    # Prekey management: creation times, lists, rotation, removal.
    assert signed_prekeys(bob) == [(1, NOW, 0)]
    spk = out_bytes(lib.sotto_device_rotate_signed_prekey, bob, NOW + 1)
    assert out_value(lib.sotto_prekey_id, c_uint32, *arg(spk)) == 2
    assert signed_prekeys(bob) == [(1, NOW, 0), (2, NOW + 1, 0)]
    small = (SignedPrekeyInfo * 1)()
    expect_error(Code.INVALID_ARGUMENT, lib.sotto_device_signed_prekeys, bob, small, 1,
                 byref(c_size_t()))
    expect_error(Code.UNKNOWN_SIGNED_PREKEY, lib.sotto_device_remove_signed_prekey, bob, 2)
    call(lib.sotto_device_remove_signed_prekey, bob, 1)
    kems_info = (KemPrekeyInfo * 4)()
    count = c_size_t()
    call(lib.sotto_device_last_resort_kem_prekeys, bob, kems_info, 4, byref(count))
    assert count.value == 1 and kems_info[0].created == NOW
    last_resort = out_bytes(lib.sotto_device_rotate_last_resort_kem_prekey, bob, NOW + 2)
    new_id = out_value(lib.sotto_prekey_id, c_uint32, *arg(last_resort))
    expect_error(Code.UNKNOWN_KEM_PREKEY, lib.sotto_device_remove_last_resort_kem_prekey, bob,
                 new_id)
    call(lib.sotto_device_remove_last_resort_kem_prekey, bob, kems_info[0].id)
    assert out_bytes(lib.sotto_device_last_resort_kem_prekey, bob) == last_resort

    # Classical X3DH only by explicit opt-in.
    classical = out_bytes(lib.sotto_bundle_new, *arg(bob_id), *arg(spk), *arg(None), *arg(None))
    expect_error(Code.POST_QUANTUM_REQUIRED, lib.sotto_session_initiate, alice, *arg(classical),
                 *arg(None), c_void_p())
    x3dh = new_handle("session", lib.sotto_session_initiate_allow_classical, alice,
                      *arg(classical), *arg(bob_id))
    assert out_value(lib.sotto_session_key_agreement, c_int32, x3dh) == KEY_AGREEMENT_X3DH
    x3dh_first = encrypt(x3dh, b"classical")
    expect_error(Code.POST_QUANTUM_REQUIRED, lib.sotto_session_accept, bob, *arg(x3dh_first),
                 c_void_p(), c_void_p(), secrets=[b"classical"])
    x3dh_bob, text, _ = accept(bob, x3dh_first, lib.sotto_session_accept_allow_classical)
    assert text == b"classical"
    expect_error(Code.DUPLICATE_PREKEY_MESSAGE, lib.sotto_session_accept_allow_classical, bob,
                 *arg(x3dh_first), c_void_p(), c_void_p())
    assert signed_prekeys(bob) == [(2, NOW + 1, 1)]
    print("alice -> bob (classical, opted in): classical")

    # A rollback across a ratchet-key draw diverges the session.
    assert decrypt(to_bob, encrypt(to_alice, b"your turn")) == b"your turn"
    old = out_bytes(lib.sotto_session_to_bytes, to_bob)
    assert decrypt(to_alice, encrypt(to_bob, b"new key")) == b"new key"
    rolled_back = new_handle("session", lib.sotto_session_from_bytes, *arg(old))
    assert generation(lib.sotto_session_generation, rolled_back) < generation(
        lib.sotto_session_generation, to_bob)
    expect_error(Code.SESSION_DIVERGED, lib.sotto_session_decrypt, to_alice,
                 *arg(encrypt(rolled_back, b"sent after a rollback")), Buffer(),
                 secrets=[b"sent after a rollback"])
    free(rolled_back)

    # Restoring a device from a backup, then the reset.
    backup = out_bytes(lib.sotto_device_to_bytes, bob)
    initiator = new_handle("session", lib.sotto_session_initiate, alice, *arg(bundle_of(bob)),
                           *arg(None))
    replayable = encrypt(initiator, b"once")
    free(initiator)
    once, _, _ = accept(bob, replayable)
    latest = generation(lib.sotto_device_generation, bob)
    restored = new_handle("device", lib.sotto_device_from_bytes, *arg(backup))
    assert generation(lib.sotto_device_generation, restored) < latest
    spk_out, kem_out = Buffer(), Buffer()
    call(lib.sotto_device_reset_prekeys_after_restore, restored, NOW + 3, latest,
         byref(spk_out), byref(kem_out))
    assert len(take(spk_out)) == SIGNED_PREKEY_LEN and len(take(kem_out)) == KEM_PREKEY_LEN
    assert generation(lib.sotto_device_generation, restored) == latest + 1
    expect_error(Code.UNKNOWN_SIGNED_PREKEY, lib.sotto_session_accept, restored,
                 *arg(replayable), c_void_p(), c_void_p(), secrets=[b"once"])
    print("bob (restored, reset): replay refused")

    # Misuse a binding can commit: handles are all c_void_p here.
    expect_error(Code.WRONG_HANDLE, lib.sotto_device_identity_key, to_bob, Buffer())
    expect_error(Code.WRONG_HANDLE, lib.sotto_session_encrypt, alice, *arg(b"x"), Buffer())
    expect_error(Code.WRONG_HANDLE, lib.sotto_device_free, to_alice)
    expect_error(Code.NULL_POINTER, lib.sotto_session_encrypt, None, *arg(b"x"), Buffer())
    expect_error(Code.NULL_POINTER, lib.sotto_session_decrypt, to_bob, None, 7, Buffer())
    expect_error(Code.NULL_POINTER, lib.sotto_session_encrypt, to_bob, *arg(b"x"), None)
    full = Buffer()
    call(lib.sotto_device_identity_key, alice, byref(full))
    expect_error(Code.INVALID_ARGUMENT, lib.sotto_device_identity_key, alice, byref(full))
    assert len(take(full)) == IDENTITY_KEY_LEN
    occupied = c_void_p(to_bob.value)
    expect_error(Code.INVALID_ARGUMENT, lib.sotto_session_from_bytes, *arg(state),
                 byref(occupied), secrets=[state])
    assert occupied.value == to_bob.value
    expect_error(Code.TRUNCATED, lib.sotto_session_from_bytes, *arg(state[:-1]), c_void_p(),
                 secrets=[state])
    expect_error(Code.TRAILING_BYTES, lib.sotto_session_from_bytes, *arg(state + b"\0"),
                 c_void_p(), secrets=[state])
    expect_error(Code.TOO_MANY_PREKEYS, lib.sotto_device_generate_one_time_kem_prekeys, bob, 101,
                 Buffer())
    expect_error(Code.UNSUPPORTED_VERSION, lib.sotto_session_decrypt, to_bob,
                 *arg(bytes([1]) + first[1:]), Buffer())  # a version 1 message
    assert decrypt(to_alice, encrypt(to_bob, b"still fine")) == b"still fine"

    for handle in (to_alice, to_bob, x3dh, x3dh_bob, once, restored, alice, bob, carol):
        free(handle)


def bounds():
    """Bounds an attacker can drive: a signed prekey exhausted by replayable
    handshakes (then rotated), and a message too far ahead."""
    alice, dave = device(), device()
    dave_id = identity(dave)
    spk = out_bytes(lib.sotto_device_signed_prekey, dave)
    classical = out_bytes(lib.sotto_bundle_new, *arg(dave_id), *arg(spk), *arg(None), *arg(None))
    pending = []
    for _ in range(MAX_BASE_KEYS + 1):
        session = new_handle("session", lib.sotto_session_initiate_allow_classical, alice,
                             *arg(classical), *arg(None))
        pending.append(encrypt(session, b"throwaway"))
        free(session)
    for wire in pending[:MAX_BASE_KEYS]:
        session, _, _ = accept(dave, wire, lib.sotto_session_accept_allow_classical)
        free(session)
    assert signed_prekeys(dave) == [(1, NOW, MAX_BASE_KEYS)]
    expect_error(Code.SIGNED_PREKEY_EXHAUSTED, lib.sotto_session_accept_allow_classical, dave,
                 *arg(pending[-1]), c_void_p(), c_void_p())
    expect_error(Code.DUPLICATE_PREKEY_MESSAGE, lib.sotto_session_accept_allow_classical, dave,
                 *arg(pending[0]), c_void_p(), c_void_p())
    print(f"dave: signed prekey exhausted after {MAX_BASE_KEYS} replayable handshakes")

    a_to_d, d_to_a = connect(alice, dave, identity(alice), dave_id)
    far = [encrypt(a_to_d, b"far") for _ in range(1002)]
    expect_error(Code.TOO_FAR_AHEAD, lib.sotto_session_decrypt, d_to_a, *arg(far[-1]), Buffer())
    assert decrypt(d_to_a, far[0]) == b"far"
    for handle in (a_to_d, d_to_a, alice, dave):
        free(handle)


# ---------------------------------------------------------------------------
# Group chat
# ---------------------------------------------------------------------------


class Member:
    """One group member: a device, a pairwise session per peer, a sender for
    its own chain and a store for everyone else's."""

    def __init__(self, name, group_id):
        self.name = name
        self.device = device()
        self.identity = identity(self.device)
        self.sessions = {}  # peer name -> session handle
        self.sender = new_handle("sender", lib.sotto_group_sender_new, self.device,
                                 *arg(group_id))
        self.store = new_handle("store", lib.sotto_group_store_new, *arg(group_id))

    def close(self):
        for handle in (*self.sessions.values(), self.sender, self.store, self.device):
            free(handle)


def hand_out_sender_key(frm, to, distribution):
    """Sends frm's distribution to `to` inside their pairwise session; `to`
    installs it through its store in one call, as owned by frm."""
    wire = encrypt(frm.sessions[to.name], distribution)
    return out_value(lib.sotto_group_store_receive_distribution, c_int32, to.store,
                     to.sessions[frm.name], *arg(wire))


def group_encrypt(sender, text):
    return out_bytes(lib.sotto_group_sender_encrypt, sender, *arg(text))


def group_read(member, wire):
    """Decrypts through the member's store: (plaintext, owner, authenticated)."""
    plaintext, owner, authenticated = Buffer(), Buffer(), c_bool()
    call(lib.sotto_group_store_decrypt, member.store, *arg(wire), byref(plaintext), byref(owner),
         byref(authenticated))
    return take(plaintext), take(owner), authenticated.value


def broadcast(frm, members, text, label=None):
    wire = group_encrypt(frm.sender, text)
    for to in members:
        if to is not frm:
            assert group_read(to, wire) == (text, frm.identity, True)
    print(f"{label or frm.name + ' -> group'}: {text.decode()}")
    return wire


def save_and_restore(member, key):
    """Saves and restores the member's sender and store, sealed under their
    record keys, checking the generations survive."""
    for kind, prefix in (("sender", "sotto_group_sender"), ("store", "sotto_group_store")):
        handle = getattr(member, kind)
        context = f"group/{member.name}/{kind}".encode()
        recorded = generation(getattr(lib, prefix + "_generation"), handle)
        sealed = out_bytes(getattr(lib, prefix + "_seal"), handle, *arg(key), *arg(context))
        free(handle)
        restored = new_handle(kind, getattr(lib, prefix + "_unseal"), *arg(sealed), *arg(key),
                              *arg(context))
        assert generation(getattr(lib, prefix + "_generation"), restored) == recorded
        setattr(member, kind, restored)


def store_len(member):
    return out_value(lib.sotto_group_store_len, c_size_t, member.store)


def group_chat(group_id):
    alice, bob, carol = members = [Member(name, group_id) for name in ("alice", "bob", "carol")]
    for a, b in ((alice, bob), (alice, carol), (bob, carol)):
        a.sessions[b.name], b.sessions[a.name] = connect(a.device, b.device, a.identity,
                                                         b.identity)
    assert out_bytes(lib.sotto_group_sender_owner_identity_key, alice.sender) == alice.identity
    distributions = {m.name: out_bytes(lib.sotto_group_sender_distribution, m.sender)
                     for m in members}
    assert all(len(d) == DISTRIBUTION_LEN for d in distributions.values())

    # The v1 attack: Bob forwards Alice's key to Carol over his own session,
    # before Alice's copy arrives. v1 installed it as a receiver credited to
    # Bob; v2 refuses it (the owner it names is not the session's peer),
    # leaves the session as it was, and installs nothing.
    forwarded = encrypt(bob.sessions["carol"], distributions["alice"])
    expect_error(Code.GROUP_OWNER_MISMATCH, lib.sotto_group_store_receive_distribution,
                 carol.store, carol.sessions["bob"], *arg(forwarded), byref(c_int32()),
                 secrets=[distributions["alice"]])
    plaintext = new_handle("plaintext", lib.sotto_session_decrypt_plaintext,
                           carol.sessions["bob"], *arg(forwarded))
    assert out_bytes(lib.sotto_plaintext_sender_identity_key, plaintext) == bob.identity
    expect_error(Code.GROUP_OWNER_MISMATCH, lib.sotto_group_store_install, carol.store,
                 plaintext, byref(c_int32()))
    assert store_len(carol) == 0

    for m in members:
        for other in members:
            if other is not m:
                assert hand_out_sender_key(m, other, distributions[m.name]) == Outcome.ADDED
    # Alice's own copy did install; the forwarded one still does not.
    expect_error(Code.GROUP_OWNER_MISMATCH, lib.sotto_group_store_install, carol.store,
                 plaintext, byref(c_int32()))
    free(plaintext)
    assert all(store_len(m) == 2 for m in members)
    print("group: alice, bob and carol hold each other's sender keys")
    hello = broadcast(alice, members, b"hello group")
    # A message Bob writes is never shown as Alice's, in any order.
    assert group_read(carol, group_encrypt(bob.sender, b"from bob"))[1] == bob.identity
    print("carol reads alice's chain as alice's, never as bob's")
    broadcast(carol, members, b"hey both")

    # The receiver's view: owner, authenticated mark, next index.
    chain = out_bytes(lib.sotto_group_message_chain_id, *arg(hello))
    assert chain == out_bytes(lib.sotto_group_sender_chain_id, alice.sender)
    assert out_bytes(lib.sotto_group_message_group_id, *arg(hello)) == group_id
    owner, authenticated, next_index = Buffer(), c_bool(), c_uint32()
    call(lib.sotto_group_store_receiver, bob.store, *arg(chain), byref(owner),
         byref(authenticated), byref(next_index))
    assert (take(owner), authenticated.value, next_index.value) == (alice.identity, True, 1)

    # Delivery out of order, then replays.
    texts = [f"part {i}".encode() for i in range(4)]
    wires = [group_encrypt(alice.sender, t) for t in texts]
    for reader, order in ((bob, (3, 0, 2, 1)), (carol, (1, 3, 0, 2))):
        for i in order:
            assert group_read(reader, wires[i])[0] == texts[i]
            print(f"alice -> {reader.name} (out of order): {texts[i].decode()}")
    for replay in (wires[2], hello):
        expect_error(Code.DUPLICATE_MESSAGE, lib.sotto_group_store_decrypt, bob.store,
                     *arg(replay), Buffer(), Buffer(), byref(c_bool()))

    # Everyone saves and restores its group state; the chat goes on.
    key = bytes([0x5A]) * STORAGE_KEY_LEN
    for m in members:
        save_and_restore(m, key)
    broadcast(bob, members, b"me too", "bob -> group (restored)")

    # Carol leaves: Alice and Bob drop her chains through their stores,
    # rotate theirs and hand the new keys to each other only.
    for m in (alice, bob):
        assert out_value(lib.sotto_group_store_remove_owner, c_size_t, m.store,
                         *arg(carol.identity)) == 1
    rotated = {}
    for m, other in ((alice, bob), (bob, alice)):
        distribution = out_bytes(lib.sotto_group_sender_rotate, m.sender, m.device)
        rotated[m.name] = distribution
        assert hand_out_sender_key(m, other, distribution) == Outcome.ADDED
    remaining = [alice, bob]
    after_removal = [
        broadcast(alice, remaining, b"without carol", "alice -> group (rotated)"),
        broadcast(bob, remaining, b"agreed", "bob -> group (rotated)"),
    ]
    for wire in after_removal:
        expect_error(Code.UNKNOWN_GROUP_CHAIN, lib.sotto_group_store_decrypt, carol.store,
                     *arg(wire), Buffer(), Buffer(), byref(c_bool()),
                     secrets=[b"without carol", b"agreed"])
    print("carol (removed) cannot read: without carol")
    expect_error(Code.UNKNOWN_GROUP_CHAIN, lib.sotto_group_store_decrypt, alice.store,
                 *arg(group_encrypt(carol.sender, b"anyone?")), Buffer(), Buffer(),
                 byref(c_bool()))

    # A backup imported unauthenticated, then upgraded by the real delivery.
    dave = Member("dave", group_id)
    for m in (alice, bob):
        m.sessions["dave"], dave.sessions[m.name] = connect(m.device, dave.device, m.identity,
                                                            dave.identity)
    assert out_value(lib.sotto_group_store_import_unauthenticated, c_int32, dave.store,
                     *arg(rotated["alice"])) == Outcome.ADDED
    wire = group_encrypt(alice.sender, b"claimed")
    assert group_read(dave, wire) == (b"claimed", alice.identity, False)
    assert hand_out_sender_key(alice, dave, rotated["alice"]) == Outcome.UPGRADED
    assert hand_out_sender_key(alice, dave, rotated["alice"]) == Outcome.UNCHANGED
    assert group_read(bob, wire)[2] and store_len(dave) == 1
    print("dave: an imported key upgraded by alice's own delivery")
    return alice, bob, carol, dave


# ---------------------------------------------------------------------------
# Group error paths
# ---------------------------------------------------------------------------


def group_error_paths(group_id, alice, bob, carol, dave):
    text = b"do not show this"
    wire = group_encrypt(alice.sender, text)
    key = bytes([0x33]) * STORAGE_KEY_LEN
    no_outputs = (Buffer(), Buffer(), byref(c_bool()))

    # Tampering anywhere breaks the signature, which is checked first.
    for offset in (len(wire) - SIGNATURE_LEN - 20, len(wire) - 1):
        bad = bytearray(wire)
        bad[offset] ^= 0x01
        expect_error(Code.INVALID_SIGNATURE, lib.sotto_group_store_decrypt, bob.store,
                     *arg(bytes(bad)), *no_outputs, secrets=[text])
    relabelled = bytearray(wire)
    relabelled[GROUP_ID_OFFSET] ^= 0xFF
    expect_error(Code.UNKNOWN_GROUP_CHAIN, lib.sotto_group_store_decrypt, bob.store,
                 *arg(bytes(relabelled)), *no_outputs, secrets=[text])

    # A distribution whose ratchet was altered (the signatures do not cover
    # it), imported while the chain is held: an import never changes a held
    # chain, so the store is unchanged and Alice's chain still reads.
    distribution = out_bytes(lib.sotto_group_sender_distribution, alice.sender)
    altered = bytearray(distribution)
    altered[DISTRIBUTION_R7] ^= 0x01
    before = out_bytes(lib.sotto_group_store_to_bytes, bob.store)
    assert out_value(lib.sotto_group_store_import_unauthenticated, c_int32, bob.store,
                     *arg(bytes(altered))) == Outcome.UNCHANGED
    assert out_bytes(lib.sotto_group_store_to_bytes, bob.store) == before
    # The same altered ratchet delivered by Alice herself (a forked sender
    # state): two authenticated copies on different ratchets conflict, and
    # neither the store nor the session changes.
    state = out_bytes(lib.sotto_group_sender_to_bytes, alice.sender)
    forked_state = bytearray(state)
    forked_state[len(state) - 1] ^= 0x01  # R_7's last byte
    forked = new_handle("sender", lib.sotto_group_sender_from_bytes, *arg(bytes(forked_state)))
    forked_wire = encrypt(alice.sessions[bob.name],
                          out_bytes(lib.sotto_group_sender_distribution, forked))
    expect_error(Code.GROUP_CHAIN_CONFLICT, lib.sotto_group_store_receive_distribution,
                 bob.store, bob.sessions[alice.name], *arg(forked_wire), byref(c_int32()),
                 secrets=[distribution])
    assert out_bytes(lib.sotto_group_store_to_bytes, bob.store) == before
    free(forked)
    proof = bytearray(distribution)
    proof[2 + 32 + 32 + 32] ^= 0x01
    expect_error(Code.INVALID_SIGNATURE, lib.sotto_group_store_import_unauthenticated,
                 bob.store, *arg(bytes(proof)), byref(c_int32()), secrets=[distribution])
    expect_error(Code.TRUNCATED, lib.sotto_group_store_import_unauthenticated, bob.store,
                 *arg(distribution[:-1]), byref(c_int32()), secrets=[distribution])

    # A sender state edited to a far index (the attacker holds the chain
    # seed): the receiver refuses the jump; at the last index, no encrypt.
    state = out_bytes(lib.sotto_group_sender_to_bytes, alice.sender)
    far = bytearray(state)
    far[SENDER_STATE_INDEX] = (GROUP_JUMP + 100).to_bytes(4, "big")
    forked = new_handle("sender", lib.sotto_group_sender_from_bytes, *arg(bytes(far)))
    expect_error(Code.GROUP_INDEX_OUT_OF_RANGE, lib.sotto_group_store_decrypt, bob.store,
                 *arg(group_encrypt(forked, text)), *no_outputs, secrets=[text])
    free(forked)
    far[SENDER_STATE_INDEX] = (2**32 - 1).to_bytes(4, "big")
    forked = new_handle("sender", lib.sotto_group_sender_from_bytes, *arg(bytes(far)))
    expect_error(Code.CHAIN_EXHAUSTED, lib.sotto_group_sender_encrypt, forked, *arg(text),
                 Buffer(), secrets=[text])
    free(forked)

    # Another group's key and message.
    other = new_handle("sender", lib.sotto_group_sender_new, alice.device,
                       *arg(bytes(GROUP_ID_LEN)))
    other_distribution = out_bytes(lib.sotto_group_sender_distribution, other)
    expect_error(Code.GROUP_MISMATCH, lib.sotto_group_store_receive_distribution, bob.store,
                 bob.sessions["alice"], *arg(encrypt(alice.sessions["bob"], other_distribution)),
                 byref(c_int32()), secrets=[other_distribution])
    expect_error(Code.UNKNOWN_GROUP_CHAIN, lib.sotto_group_store_decrypt, bob.store,
                 *arg(group_encrypt(other, text)), *no_outputs, secrets=[text])

    # A pairwise message that is not a distribution.
    expect_error(Code.WRONG_TYPE, lib.sotto_group_store_receive_distribution, bob.store,
                 bob.sessions["alice"], *arg(encrypt(alice.sessions["bob"], wire)),
                 byref(c_int32()))

    # NULL pointers.
    expect_error(Code.NULL_POINTER, lib.sotto_group_sender_new, alice.device, None, GROUP_ID_LEN,
                 c_void_p())
    expect_error(Code.NULL_POINTER, lib.sotto_group_store_new, *arg(group_id), None)
    expect_error(Code.NULL_POINTER, lib.sotto_group_sender_encrypt, None, *arg(text), Buffer(),
                 secrets=[text])
    expect_error(Code.NULL_POINTER, lib.sotto_group_store_decrypt, bob.store, *arg(wire), None,
                 Buffer(), byref(c_bool()))
    expect_error(Code.NULL_POINTER, lib.sotto_group_store_decrypt, bob.store, *arg(wire),
                 Buffer(), Buffer(), None)
    expect_error(Code.NULL_POINTER, lib.sotto_group_store_install, bob.store, None,
                 byref(c_int32()))
    expect_error(Code.NULL_POINTER, lib.sotto_group_message_chain_id, *arg(wire), None)
    expect_error(Code.NULL_POINTER, lib.sotto_group_store_unseal, None, 10, *arg(key), *arg(None),
                 c_void_p(), secrets=[key])
    for fn in (lib.sotto_group_sender_free, lib.sotto_group_store_free, lib.sotto_plaintext_free):
        call(fn, None)  # freeing NULL is a no-op

    # Wrong handle types: every handle is a c_void_p to Python.
    expect_error(Code.WRONG_HANDLE, lib.sotto_group_store_decrypt, alice.sender, *arg(wire),
                 *no_outputs, secrets=[text])
    expect_error(Code.WRONG_HANDLE, lib.sotto_group_sender_encrypt, bob.store, *arg(text),
                 Buffer(), secrets=[text])
    expect_error(Code.WRONG_HANDLE, lib.sotto_group_sender_new, bob.store, *arg(group_id),
                 c_void_p())
    expect_error(Code.WRONG_HANDLE, lib.sotto_group_store_receive_distribution, bob.store,
                 bob.store, *arg(encrypt(alice.sessions["bob"], b"x")), byref(c_int32()))
    expect_error(Code.WRONG_HANDLE, lib.sotto_group_store_install, bob.store,
                 bob.sessions["alice"], byref(c_int32()))
    expect_error(Code.WRONG_HANDLE, lib.sotto_group_sender_free, bob.store)
    expect_error(Code.WRONG_HANDLE, lib.sotto_group_store_free, alice.sender)
    expect_error(Code.WRONG_HANDLE, lib.sotto_plaintext_free, alice.sender)

    # Outputs must be empty and distinct.
    full = Buffer()
    call(lib.sotto_group_sender_distribution, other, byref(full))
    expect_error(Code.INVALID_ARGUMENT, lib.sotto_group_sender_encrypt, alice.sender, *arg(text),
                 byref(full), secrets=[text])
    expect_error(Code.INVALID_ARGUMENT, lib.sotto_group_store_decrypt, bob.store, *arg(wire),
                 byref(full), Buffer(), byref(c_bool()), secrets=[text])
    assert len(take(full)) == DISTRIBUTION_LEN
    same = Buffer()
    expect_error(Code.INVALID_ARGUMENT, lib.sotto_group_store_decrypt, bob.store, *arg(wire),
                 byref(same), byref(same), byref(c_bool()), secrets=[text])
    occupied = c_void_p(bob.store.value)
    saved = out_bytes(lib.sotto_group_store_to_bytes, bob.store)
    expect_error(Code.INVALID_ARGUMENT, lib.sotto_group_store_from_bytes, *arg(saved),
                 byref(occupied), secrets=[saved])
    assert occupied.value == bob.store.value

    # Bad lengths and sizes.
    for bad_len in (GROUP_ID_LEN - 1, GROUP_ID_LEN + 1):
        expect_error(Code.INVALID_ARGUMENT, lib.sotto_group_store_new, *arg(bytes(bad_len)),
                     c_void_p())
    chain = out_bytes(lib.sotto_group_message_chain_id, *arg(wire))
    expect_error(Code.INVALID_ARGUMENT, lib.sotto_group_store_receiver, bob.store,
                 *arg(chain[:-1]), Buffer(), byref(c_bool()), byref(c_uint32()))
    expect_error(Code.INVALID_PUBLIC_KEY, lib.sotto_group_store_receiver, bob.store,
                 *arg(b"\xff" * CHAIN_ID_LEN), Buffer(), byref(c_bool()), byref(c_uint32()))
    expect_error(Code.UNKNOWN_GROUP_CHAIN, lib.sotto_group_store_receiver, bob.store,
                 *arg(out_bytes(lib.sotto_group_sender_chain_id, bob.sender)), Buffer(),
                 byref(c_bool()), byref(c_uint32()))
    huge = (1 << (8 * ctypes.sizeof(c_size_t) - 1)) + 1  # over SIZE_MAX / 2, never read
    expect_error(Code.INVALID_ARGUMENT, lib.sotto_group_sender_encrypt, alice.sender,
                 arg(text)[0], huge, Buffer(), secrets=[text])
    expect_error(Code.PLAINTEXT_TOO_LARGE, lib.sotto_group_sender_encrypt, alice.sender,
                 *arg(bytes(MAX_PLAINTEXT_LEN + 1)), Buffer())
    expect_error(Code.TOO_LARGE, lib.sotto_group_store_decrypt, bob.store,
                 *arg(wire + bytes(MAX_GROUP_MESSAGE_LEN + 1 - len(wire))), *no_outputs)
    expect_error(Code.TRUNCATED, lib.sotto_group_store_decrypt, bob.store, *arg(wire[:60]),
                 *no_outputs)
    expect_error(Code.TRUNCATED, lib.sotto_group_message_chain_id, *arg(wire[:40]), Buffer())
    expect_error(Code.TRUNCATED, lib.sotto_group_store_remove_owner, bob.store,
                 *arg(carol.identity[:-1]), byref(c_size_t()))

    # Saved state: wrong key, wrong context, wrong kind, truncated, short key.
    sealed = out_bytes(lib.sotto_group_store_seal, bob.store, *arg(key), *arg(b"store"))
    expect_error(Code.AUTHENTICATION_FAILED, lib.sotto_group_store_unseal, *arg(sealed),
                 *arg(bytes(STORAGE_KEY_LEN)), *arg(b"store"), c_void_p(), secrets=[key, saved])
    expect_error(Code.AUTHENTICATION_FAILED, lib.sotto_group_store_unseal, *arg(sealed),
                 *arg(key), *arg(b"sender"), c_void_p(), secrets=[key, saved])
    expect_error(Code.INVALID_ARGUMENT, lib.sotto_group_store_seal, bob.store, *arg(key[:-1]),
                 *arg(b"store"), Buffer(), secrets=[key, saved])
    expect_error(Code.WRONG_TYPE, lib.sotto_group_sender_unseal, *arg(sealed), *arg(key),
                 *arg(b"store"), c_void_p(), secrets=[key, saved])
    expect_error(Code.WRONG_TYPE, lib.sotto_group_sender_from_bytes, *arg(saved), c_void_p(),
                 secrets=[saved])
    expect_error(Code.TRUNCATED, lib.sotto_group_store_from_bytes, *arg(saved[:-1]),
                 c_void_p(), secrets=[saved])

    # Nothing above changed a handle, and a success clears the last error.
    assert group_read(bob, wire)[0] == text
    assert last_error() == ""
    print("bob (after errors): do not show this")
    free(other)


def store_full(group_id):
    """A store full of authenticated chains refuses an unauthenticated
    import rather than evicting one: 256 owners with 4 chains each."""
    erin = Member("erin", group_id)
    # One classical bundle serves all 256 owners: the sessions only carry
    # distributions here, and X3DH keeps the unoptimised test build quick.
    spk = out_bytes(lib.sotto_device_signed_prekey, erin.device)
    bundle = out_bytes(lib.sotto_bundle_new, *arg(erin.identity), *arg(spk), *arg(None),
                       *arg(None))
    per_owner = 4
    for i in range(MAX_GROUP_RECEIVERS // per_owner):
        owner = Member(f"owner{i}", group_id)
        to_erin = new_handle("session", lib.sotto_session_initiate_allow_classical, owner.device,
                             *arg(bundle), *arg(erin.identity))
        owner.sessions["erin"] = to_erin
        erin.sessions[owner.name], _, _ = accept(erin.device, encrypt(to_erin, b"hi"),
                                                 lib.sotto_session_accept_allow_classical)
        for j in range(per_owner):
            distribution = (out_bytes(lib.sotto_group_sender_rotate, owner.sender, owner.device) if j
                            else out_bytes(lib.sotto_group_sender_distribution, owner.sender))
            assert hand_out_sender_key(owner, erin, distribution) == Outcome.ADDED
        owner.close()
    assert store_len(erin) == MAX_GROUP_RECEIVERS
    stranger = Member("stranger", group_id)
    expect_error(Code.GROUP_STORE_FULL, lib.sotto_group_store_import_unauthenticated,
                 erin.store, *arg(out_bytes(lib.sotto_group_sender_distribution, stranger.sender)),
                 byref(c_int32()))
    print(f"erin: a store of {MAX_GROUP_RECEIVERS} authenticated chains refuses an import")
    erin.close()
    stranger.close()


# ---------------------------------------------------------------------------
# The session layer: two users with two devices each
# ---------------------------------------------------------------------------

USERS = ("alice", "bob")
SESSION_GROUP = b"sotto python: two users, 4 devs!"
STORAGE_KEY = bytes(range(32))


class Dev:
    """One device of a user, with its record of the other user, its own
    record (its user's other device) and its group."""

    def __init__(self, user, number):
        self.user, self.id = user, number
        self.name = f"{USERS[user]}/{number}"
        self.device = device()
        self.identity = identity(self.device)
        self.peer = new_handle("record", lib.sotto_peer_record_new,
                               *arg(USERS[1 - user].encode()), self.device)
        self.own = new_handle("record", lib.sotto_peer_record_new_own,
                              *arg(USERS[user].encode()), number, self.device)
        self.group = None

    def record_of(self, user):
        return self.own if user == self.user else self.peer

    def close(self):
        for handle in (self.group, self.peer, self.own, self.device):
            if handle is not None:
                free(handle)


class World:
    def __init__(self):
        self.devs = [Dev(user, number) for user in (0, 1) for number in (1, 2)]

    def find(self, user, number):
        return next(d for d in self.devs if d.user == user and d.id == number)

    def device_list(self, user, replace=None):
        """The list the server returns for `user` (replace: id -> identity)."""
        entries = [d for d in self.devs if d.user == user]
        out = (DeviceListEntry * len(entries))()
        for entry, d in zip(out, entries):
            entry.device = d.id
            key = (replace or {}).get(d.id, d.identity)
            entry.identity_key = IDENTITY.from_buffer_copy(key)
        return out


def update_devices(record, entries, count=None, now=NOW):
    changes = DeviceListChanges()
    call(lib.sotto_peer_record_update_devices, record, entries,
         len(entries) if count is None else count, now, byref(changes))
    return changes


def record_generation(record):
    return generation(lib.sotto_peer_record_generation, record)


def record_bytes(record):
    return out_bytes(lib.sotto_peer_record_to_bytes, record)


def plan(record, now=NOW):
    out = SendPlan()
    call(lib.sotto_peer_record_plan_send, record, now, byref(out))
    return out


def server_bundle(dev):
    return bundle_of(dev.device)


def prepare(world, frm, user):
    record = frm.record_of(user)
    for number in plan(record).ids("needs_bundle"):
        call(lib.sotto_peer_record_add_bundle, record, frm.device, number,
             *arg(server_bundle(world.find(user, number))), NOW)


def layer_decrypt(to, frm_user, frm_id, wire, now=NOW, local=None):
    """(code, received handle or None, failure) of a decrypt at `to`."""
    received, failure = c_void_p(), Failure()
    code = lib.sotto_peer_record_decrypt(to.record_of(frm_user), local or to.device, frm_id,
                                         *arg(wire), now, byref(received), byref(failure))
    if code == Code.OK:
        adopt("received", received)
        assert failure.action == Action.NONE
        return code, received, failure
    assert received.value is None
    return code, None, failure


def expect_failure(want, action, reason_or_none, to, frm, wire, now=NOW, local=None):
    """A decrypt that fails with `want` and the given action; the record does
    not change, byte for byte. Returns the failure."""
    before = record_bytes(to.record_of(frm.user))
    received, failure = c_void_p(), Failure()
    expect_error(want, lib.sotto_peer_record_decrypt, to.record_of(frm.user),
                 local or to.device, frm.id, *arg(wire), now, received, byref(failure))
    assert (failure.action, failure.reason) == (action, reason_or_none or Reason.NONE), (
        Action(failure.action), Reason(failure.reason))
    assert record_bytes(to.record_of(frm.user)) == before
    return failure


def content(received):
    """(kind, device, payload or None) of a received handle, then freed."""
    kind = out_value(lib.sotto_received_kind, c_int32, received)
    number = out_value(lib.sotto_received_device, c_uint32, received)
    payload = out_bytes(lib.sotto_received_payload, received) if kind == Kind.PAYLOAD else None
    return kind, number, payload


def receive(to, frm, wire, text=None):
    """Decrypts at `to`, installs a distribution or checks a payload."""
    code, received, _ = layer_decrypt(to, frm.user, frm.id, wire)
    assert code == Code.OK
    kind, number, payload = content(received)
    assert number == frm.id
    if kind == Kind.PAYLOAD:
        assert payload == text, payload
        assert out_bytes(lib.sotto_received_sender_identity_key, received) == frm.identity
        print(f"{frm.name} -> {to.name}: {payload.decode()}")
    elif kind == Kind.DISTRIBUTION:
        assert out_bytes(lib.sotto_received_group_id, received) == SESSION_GROUP
        outcome = out_value(lib.sotto_group_session_install, c_int32, to.group,
                            to.record_of(frm.user), received)
        assert outcome in (Outcome.ADDED, Outcome.UNCHANGED), outcome
    free(received)
    return kind


def outbox_entries(outbox):
    """[(record index, device, wire)] and [(record index, device, code)]."""
    count = out_value(lib.sotto_outbox_message_count, c_size_t, outbox)
    messages = []
    for i in range(count):
        record, number, wire = c_size_t(), c_uint32(), Buffer()
        call(lib.sotto_outbox_message, outbox, i, byref(record), byref(number), byref(wire))
        messages.append((record.value, number.value, take(wire)))
    unusable = []
    for i in range(out_value(lib.sotto_outbox_unusable_count, c_size_t, outbox)):
        record, number, code = c_size_t(), c_uint32(), c_int32()
        call(lib.sotto_outbox_unusable, outbox, i, byref(record), byref(number), byref(code))
        unusable.append((record.value, number.value, Code(code.value)))
    free(outbox)
    return messages, unusable


def deliver(world, frm, outbox, users, text=None):
    messages, unusable = outbox_entries(outbox)
    assert not unusable, unusable
    for record, number, wire in messages:
        receive(world.find(users[record], number), frm, wire, text)
    return len(messages)


def send_to_all(world, frm, text):
    other = 1 - frm.user
    prepare(world, frm, other)
    prepare(world, frm, frm.user)
    to_peer = new_handle("outbox", lib.sotto_peer_record_encrypt, frm.peer, *arg(text))
    to_own = new_handle("outbox", lib.sotto_peer_record_encrypt, frm.own, *arg(text))
    assert deliver(world, frm, to_peer, [other], text) == 2
    assert deliver(world, frm, to_own, [frm.user], text) == 1


def safety_number(dev):
    return out_bytes(lib.sotto_peer_record_safety_number, dev.peer, dev.own)


def records_array(*records):
    return (c_void_p * len(records))(*(r.value for r in records))


def session_layer():
    world = World()
    for d in world.devs:
        changes = update_devices(d.peer, world.device_list(1 - d.user))
        assert changes.ids("added") == [1, 2] and changes.local == Listing.NOT_OWN_RECORD
        changes = update_devices(d.own, world.device_list(d.user))
        assert changes.ids("added") == [3 - d.id] and changes.local == Listing.LISTED
        assert out_bytes(lib.sotto_peer_record_user, d.own) == USERS[d.user].encode()
    numbers = {safety_number(d) for d in world.devs}
    assert len(numbers) == 1 and len(next(iter(numbers))) == SAFETY_NUMBER_TEXT_LEN
    fingerprint = out_bytes(lib.sotto_peer_record_fingerprint, world.devs[0].peer)
    assert len(fingerprint) == USER_FINGERPRINT_TEXT_LEN
    print(f"sessions: safety number {next(iter(numbers)).decode()}")
    print("sessions: all four devices compute the same safety number")

    a1, a2, b1, b2 = world.devs
    send_to_all(world, a1, b"hello from alice/1")
    send_to_all(world, b1, b"hi from bob/1")
    send_to_all(world, a2, b"alice/2 here")
    send_to_all(world, b2, b"bob/2 here")
    infos = (DeviceInfo * MAX_DEVICES)()
    count = c_size_t()
    call(lib.sotto_peer_record_devices, a1.peer, infos, MAX_DEVICES, byref(count))
    assert count.value == 2
    for info, bob_dev in zip(infos, (b1, b2)):
        assert bytes(info.identity_key) == bob_dev.identity and info.has_active_session
        assert info.post_quantum_pinned and not info.awaiting_reply and not info.is_stale

    attacks(world)
    lost_message(world)
    stale_backup(world)
    session_group(world)
    identity_change_and_expiry(world)
    session_error_paths(world)
    for d in world.devs:
        d.close()
    print("sessions ok")


def attacks(world):
    """Where an attacker stands: forged wire bytes under a device's name,
    retry-request floods, altered saved records."""
    a1, _, b1, _ = world.devs
    mallory = device()
    # A prekey message under another identity, claimed to come from bob/1:
    # kept for later (refresh the device list), the record untouched.
    mallory_bundle_target = new_handle("session", lib.sotto_session_initiate, mallory,
                                       *arg(server_bundle(a1)), *arg(a1.identity))
    forged = encrypt(mallory_bundle_target, b"I am bob/1")
    expect_failure(Code.IDENTITY_MISMATCH, Action.RETRY_LATER, Reason.UNKNOWN_IDENTITY, a1, b1,
                   forged)
    # A ratchet message from bob/1 under a ratchet key no session knows: no
    # session reads it, nothing changes, and the action (a retry request,
    # rate limited) names it.
    genuine = out_bytes(lib.sotto_peer_record_encrypt_to, b1.peer, a1.id, *arg(b"genuine"))
    noise = bytearray(genuine)
    noise[2:34] = bytes(range(1, 33))  # another ratchet key
    failure = expect_failure(Code.SESSION_DIVERGED, Action.REQUEST_RETRY, None, a1, b1,
                             bytes(noise))
    assert bytes(failure.hint.ratchet_key) == bytes(range(1, 33))
    # Truncated, empty and over-long input: malformed, ignored.
    expect_failure(Code.TRUNCATED, Action.IGNORE, Reason.MALFORMED, a1, b1, genuine[:20])
    expect_failure(Code.TRUNCATED, Action.IGNORE, Reason.MALFORMED, a1, b1, b"")
    expect_failure(Code.TOO_LARGE, Action.IGNORE, Reason.MALFORMED, a1, b1,
                   bytes(SIZES["SOTTO_MAX_MESSAGE_LEN"] + 1))
    receive(a1, b1, genuine, b"genuine")
    expect_failure(Code.DUPLICATE_MESSAGE, Action.IGNORE, Reason.DUPLICATE, a1, b1, genuine)
    # A flood of retry requests from a peer: each is one decrypt, reported,
    # and the record does not grow.
    hint = RetryHint()
    hint.ratchet_key = KEY32.from_buffer_copy(bytes(range(1, 33)))
    sizes = []
    for i in range(MAX_RETRY_REQUESTS):
        request = out_bytes(lib.sotto_peer_record_request_retry, b1.peer, a1.id, byref(hint),
                            NOW)
        assert receive(a1, b1, request) == Kind.RETRY_REQUEST
        sizes.append(len(record_bytes(a1.peer)))
    assert len(set(sizes)) == 1, sizes
    expect_error(Code.RECOVERY_RATE_LIMITED, lib.sotto_peer_record_request_retry, b1.peer,
                 a1.id, byref(hint), NOW + MIN_RECOVERY_INTERVAL - 1, Buffer())
    print(f"sessions: {MAX_RETRY_REQUESTS} retry requests read, the record did not grow")
    # alice/1 writes again, which answers bob/1's outstanding requests.
    receive(b1, a1, out_bytes(lib.sotto_peer_record_encrypt_to, a1.peer, b1.id,
                              *arg(b"nothing to resend")), b"nothing to resend")
    # Altered saved records are refused.
    saved = record_bytes(a1.peer)
    for altered, want in ((saved[:-1], Code.TRUNCATED), (saved + b"\0", Code.TRAILING_BYTES),
                          (saved[:1] + b"\x26" + saved[2:], Code.WRONG_TYPE)):
        expect_error(want, lib.sotto_peer_record_from_bytes, *arg(altered), c_void_p(),
                     secrets=[saved[40:]])
    sealed = out_bytes(lib.sotto_peer_record_seal, a1.peer, *arg(STORAGE_KEY), *arg(b"record/bob"))
    tampered = bytearray(sealed)
    tampered[-1] ^= 1
    expect_error(Code.AUTHENTICATION_FAILED, lib.sotto_peer_record_unseal, *arg(bytes(tampered)),
                 *arg(STORAGE_KEY), *arg(b"record/bob"), c_void_p())
    expect_error(Code.AUTHENTICATION_FAILED, lib.sotto_peer_record_unseal, *arg(sealed),
                 *arg(STORAGE_KEY), *arg(b"record/carol"), c_void_p())
    free(mallory_bundle_target)
    free(mallory)
    print("sessions: forged and altered bytes changed no record")


def lost_message(world):
    """A message lost to corruption: the failure names it, the peer resends."""
    a1, _, b1, _ = world.devs
    sent = out_bytes(lib.sotto_peer_record_encrypt_to, a1.peer, b1.id, *arg(b"lost in transit"))
    altered = bytearray(sent)
    altered[-1] ^= 1
    # Within the hour of the flood above, bob/1 may send no more requests.
    expect_failure(Code.AUTHENTICATION_FAILED, Action.IGNORE, Reason.RECOVERY_PENDING, b1, a1,
                   bytes(altered))
    later = NOW + MIN_RECOVERY_INTERVAL
    failure = expect_failure(Code.AUTHENTICATION_FAILED, Action.REQUEST_RETRY, None, b1, a1,
                             bytes(altered), now=later)
    assert out_value(lib.sotto_retry_hint_matches, c_bool, byref(failure.hint), *arg(sent))
    request = out_bytes(lib.sotto_peer_record_request_retry, b1.peer, a1.id,
                        byref(failure.hint), later)
    code, received, _ = layer_decrypt(a1, b1.user, b1.id, request)
    hint = RetryHint()
    call(lib.sotto_received_retry_hint, received, byref(hint))
    assert hint.key() == failure.hint.key()
    free(received)
    assert out_value(lib.sotto_retry_hint_matches, c_bool, byref(hint), *arg(sent))
    resent = out_bytes(lib.sotto_peer_record_encrypt_to, a1.peer, b1.id, *arg(b"lost in transit"))
    receive(b1, a1, resent, b"lost in transit")
    print("sessions: bob/1 asked alice/1 to resend: lost in transit")


def stale_backup(world):
    """bob/2's record of alice comes back from a stale backup: a new session
    recovers, asking for the message it could not read."""
    a1, _, _, b2 = world.devs
    backup = out_bytes(lib.sotto_peer_record_seal, b2.peer, *arg(STORAGE_KEY),
                       *arg(b"record/alice"))
    send_to_all(world, b2, b"bob/2 before its restore")
    send_to_all(world, a1, b"alice/1 before bob/2's restore")
    last = record_generation(b2.peer)
    free(b2.peer)
    b2.peer = new_handle("record", lib.sotto_peer_record_unseal, *arg(backup), *arg(STORAGE_KEY),
                         *arg(b"record/alice"))
    assert record_generation(b2.peer) < last
    assert out_value(lib.sotto_peer_record_after_restore, c_size_t, b2.peer, last) == 2
    sent = out_bytes(lib.sotto_peer_record_encrypt_to, a1.peer, b2.id, *arg(b"after the restore"))
    failure = expect_failure(Code.NO_SESSION, Action.START_NEW_SESSION, None, b2, a1, sent)
    first = out_bytes(lib.sotto_peer_record_start_new_session, b2.peer, b2.device, a1.id,
                      *arg(server_bundle(a1)), byref(failure.hint), NOW)
    expect_error(Code.RECOVERY_RATE_LIMITED, lib.sotto_peer_record_start_new_session, b2.peer,
                 b2.device, a1.id, *arg(server_bundle(a1)), byref(failure.hint), NOW + 1,
                 Buffer())
    assert receive(a1, b2, first) == Kind.RETRY_REQUEST
    receive(b2, a1, out_bytes(lib.sotto_peer_record_encrypt_to, a1.peer, b2.id,
                              *arg(b"after the restore")), b"after the restore")
    send_to_all(world, b2, b"bob/2 is back")
    print("sessions: bob/2, restored from a stale backup, recovered with a new session")


def session_group(world):
    """A group of both users through the layer: a message before its
    distribution is kept and read later; alice removes bob."""
    a1, a2, b1, b2 = world.devs
    for d in world.devs:
        d.group = new_handle("group", lib.sotto_group_session_new, d.device, *arg(SESSION_GROUP),
                             *arg(USERS[d.user].encode()))
        assert out_value(lib.sotto_group_session_add_member, c_bool, d.group,
                         *arg(USERS[1 - d.user].encode()))
    outboxes = [new_handle("outbox", lib.sotto_group_session_distribute, d.group,
                           records_array(d.peer, d.own), 2) for d in world.devs]
    # bob/2's first group message overtakes its distribution.
    early = out_bytes(lib.sotto_group_session_encrypt, b2.group, *arg(b"too early"))
    plaintext, sender, authenticated, failure = Buffer(), Buffer(), c_bool(), Failure()
    expect_error(Code.UNKNOWN_GROUP_CHAIN, lib.sotto_group_session_decrypt, a1.group, a1.peer,
                 *arg(early),
                 plaintext, sender, byref(authenticated), byref(failure))
    assert (failure.action, failure.reason) == (Action.RETRY_LATER, Reason.MISSING_DISTRIBUTION)
    for d, outbox in zip(world.devs, outboxes):
        assert deliver(world, d, outbox, [1 - d.user, d.user]) == 3
    call(lib.sotto_group_session_decrypt, a1.group, a1.peer, *arg(early), byref(plaintext), byref(sender),
         byref(authenticated), byref(failure))
    assert take(plaintext) == b"too early" and take(sender) == b2.identity and authenticated.value
    print("sessions: a group message kept until its distribution came: too early")

    wire = out_bytes(lib.sotto_group_session_encrypt, a1.group, *arg(b"hello group"))
    for reader in (a2, b1, b2):
        record = reader.own if reader is a2 else reader.peer
        call(lib.sotto_group_session_decrypt, reader.group, record, *arg(wire), byref(plaintext),
             byref(sender), byref(authenticated), byref(failure))
        assert take(plaintext) == b"hello group" and take(sender) == a1.identity
    print("sessions: alice/1 -> group: hello group")
    # Alice's chain, said to come from bob: refused before the replay check.
    expect_error(Code.IDENTITY_MISMATCH, lib.sotto_group_session_decrypt, b1.group, b1.own,
                 *arg(wire), plaintext, sender, byref(authenticated), byref(failure))
    assert (failure.action, failure.reason) == (Action.IGNORE, Reason.MALFORMED)

    for d in (a1, a2):
        expect_error(Code.NOT_GROUP_MEMBER, lib.sotto_group_session_remove_member, d.group,
                     d.device, *arg(b"bob"), records_array(d.peer), 1, c_void_p())
        outbox = new_handle("outbox", lib.sotto_group_session_remove_member, d.group, d.device,
                            *arg(b"bob"), records_array(d.own), 1)
        assert deliver(world, d, outbox, [d.user]) == 1
        assert not out_value(lib.sotto_group_session_is_member, c_bool, d.group, *arg(b"bob"))
    wire = out_bytes(lib.sotto_group_session_encrypt, a1.group, *arg(b"without bob"))
    call(lib.sotto_group_session_decrypt, a2.group, a2.own, *arg(wire), byref(plaintext),
         byref(sender),
         byref(authenticated), byref(failure))
    assert take(plaintext) == b"without bob" and take(sender) == a1.identity
    expect_error(Code.UNKNOWN_GROUP_CHAIN, lib.sotto_group_session_decrypt, b1.group, b1.peer,
                 *arg(wire),
                 plaintext, sender, byref(authenticated), byref(failure), secrets=[b"without bob"])
    late = out_bytes(lib.sotto_group_session_encrypt, b1.group, *arg(b"still here?"))
    expect_error(Code.NOT_GROUP_MEMBER, lib.sotto_group_session_decrypt, a2.group, a2.peer,
                 *arg(late), plaintext, sender, byref(authenticated), byref(failure))
    assert (failure.action, failure.reason) == (Action.IGNORE, Reason.MALFORMED)
    print("sessions: alice/1 -> group (bob removed): without bob")
    print("sessions: bob (removed) can neither read nor write")

    # Sealed save and restore; a stale copy drops every chain and rotates.
    recorded = generation(lib.sotto_group_session_generation, a2.group)
    sealed = out_bytes(lib.sotto_group_session_seal, a2.group, *arg(STORAGE_KEY), *arg(b"group/g"))
    copy = new_handle("group", lib.sotto_group_session_unseal, *arg(sealed), *arg(STORAGE_KEY),
                      *arg(b"group/g"))
    assert generation(lib.sotto_group_session_generation, copy) == recorded
    assert out_value(lib.sotto_group_session_after_restore, c_bool, copy, a2.device, recorded + 1)
    expect_error(Code.UNKNOWN_GROUP_CHAIN, lib.sotto_group_session_decrypt, copy, a2.own,
                 *arg(out_bytes(lib.sotto_group_session_encrypt, a1.group, *arg(b"x"))),
                 plaintext, sender, byref(authenticated), byref(failure))
    free(copy)


def identity_change_and_expiry(world):
    a1, a2, b1, b2 = world.devs
    reinstalled = device()
    new_id = identity(reinstalled)
    before = safety_number(a2)
    changes = update_devices(a2.peer, world.device_list(1, {2: new_id}))
    (change,) = changes.changes()
    assert change.device == 2 and bytes(change.new_identity_key) == new_id
    assert bytes(change.old_fingerprint) == out_bytes(lib.sotto_identity_key_fingerprint,
                                                       *arg(b2.identity))
    assert bytes(change.new_fingerprint) == out_bytes(lib.sotto_identity_key_fingerprint,
                                                       *arg(new_id))
    assert plan(a2.peer).ids("blocked") == [2]
    outbox = new_handle("outbox", lib.sotto_peer_record_encrypt, a2.peer, *arg(b"to bob/1 only"))
    messages, unusable = outbox_entries(outbox)
    assert [m[:2] for m in messages] == [(0, 1)]
    assert unusable == [(0, 2, Code.IDENTITY_CHANGE_PENDING)]
    receive(b1, a2, messages[0][2], b"to bob/1 only")
    expect_error(Code.IDENTITY_CHANGE_PENDING, lib.sotto_peer_record_encrypt_to, a2.peer, 2,
                 *arg(b"x"), Buffer())
    expect_error(Code.IDENTITY_CHANGE_PENDING, lib.sotto_peer_record_request_retry, a2.peer, 2,
                 byref(RetryHint()), NOW, Buffer())
    old = out_bytes(lib.sotto_peer_record_encrypt_to, b2.peer, a2.id, *arg(b"from the old bob/2"))
    expect_failure(Code.IDENTITY_CHANGE_PENDING, Action.RETRY_LATER, Reason.IDENTITY_CHANGE_PENDING,
                   a2, b2, old)
    assert safety_number(a2) == before
    expect_error(Code.IDENTITY_MISMATCH, lib.sotto_peer_record_acknowledge_identity, a2.peer, 2,
                 *arg(b2.identity))
    call(lib.sotto_peer_record_acknowledge_identity, a2.peer, 2, *arg(new_id))
    assert safety_number(a2) != before and plan(a2.peer).ids("needs_bundle") == [2]
    print("sessions: bob/2's new identity: reported, blocked until accepted; the number changed")
    free(reinstalled)

    changes = update_devices(a1.peer, world.device_list(1), count=1)
    assert changes.ids("removed") == [2]
    expect_error(Code.UNKNOWN_DEVICE, lib.sotto_peer_record_encrypt_to, a1.peer, 2, *arg(b"x"),
                 Buffer())
    receive(a1, b2, out_bytes(lib.sotto_peer_record_encrypt_to, b2.peer, a1.id, *arg(b"bye")),
            b"bye")
    expired = Expired()
    call(lib.sotto_peer_record_expire, a1.peer, NOW + MAX_STALE_DEVICE_AGE - 1, byref(expired))
    assert expired.ids("devices", "device_count") == []
    call(lib.sotto_peer_record_expire, a1.peer, NOW + MAX_STALE_DEVICE_AGE, byref(expired))
    assert expired.ids("devices", "device_count") == [2]
    print("sessions: bob/2 left alice/1's list and expired after 30 days")


def session_error_paths(world):
    a1, a2, b1, b2 = world.devs
    expect_error(Code.INVALID_ENCODING, lib.sotto_peer_record_new,
                 *arg(b"u" * (MAX_USER_ID_LEN + 1)), a1.device, c_void_p())
    expect_error(Code.WRONG_HANDLE, lib.sotto_peer_record_new, *arg(b"bob"), a1.peer, c_void_p())
    entries = (DeviceListEntry * (MAX_DEVICES + 1))()
    expect_error(Code.INVALID_DEVICE_LIST, lib.sotto_peer_record_update_devices, a1.peer, entries,
                 MAX_DEVICES + 1, NOW, byref(DeviceListChanges()))
    twice = world.device_list(1)
    twice[1].device = twice[0].device
    expect_error(Code.INVALID_DEVICE_LIST, lib.sotto_peer_record_update_devices, a1.peer, twice, 2,
                 NOW, byref(DeviceListChanges()))
    mine = world.device_list(1, {2: a1.identity})
    expect_error(Code.INVALID_DEVICE_LIST, lib.sotto_peer_record_update_devices, a1.peer, mine, 2,
                 NOW, byref(DeviceListChanges()))
    fresh = new_handle("record", lib.sotto_peer_record_new, *arg(b"bob"), a1.device)
    update_devices(fresh, world.device_list(1))
    expect_error(Code.NO_SESSION, lib.sotto_peer_record_encrypt_to, fresh, 1, *arg(b"x"), Buffer())
    expect_error(Code.UNKNOWN_DEVICE, lib.sotto_peer_record_add_bundle, fresh, a1.device, 9,
                 *arg(server_bundle(b1)), NOW)
    expect_error(Code.PLAINTEXT_TOO_LARGE, lib.sotto_peer_record_encrypt, fresh,
                 *arg(bytes(MAX_PAYLOAD_LEN + 1)), c_void_p())
    expect_error(Code.INVALID_ARGUMENT, lib.sotto_peer_record_request_retry, fresh, 1,
                 byref(RetryHint(has_base_key=7)), NOW, Buffer())
    expect_error(Code.NULL_POINTER, lib.sotto_peer_record_request_retry, fresh, 1, None, NOW,
                 Buffer())
    received, failure = c_void_p(), Failure()
    expect_error(Code.IDENTITY_MISMATCH, lib.sotto_peer_record_decrypt, a1.peer, b1.device, 1,
                 *arg(out_bytes(lib.sotto_peer_record_encrypt_to, b1.peer, a1.id, *arg(b"x"))),
                 NOW, received, byref(failure))
    assert (failure.action, failure.reason) == (Action.IGNORE, Reason.WRONG_LOCAL_DEVICE)
    expect_error(Code.UNKNOWN_DEVICE, lib.sotto_peer_record_decrypt, a1.peer, a1.device, 7,
                 *arg(out_bytes(lib.sotto_peer_record_encrypt_to, b1.peer, a1.id, *arg(b"x"))),
                 NOW, received, byref(failure))
    assert (failure.action, failure.reason) == (Action.RETRY_LATER, Reason.UNKNOWN_DEVICE)
    expect_error(Code.INVALID_ARGUMENT, lib.sotto_peer_record_safety_number, a1.own, a1.own,
                 Buffer())
    expect_error(Code.IDENTITY_MISMATCH, lib.sotto_peer_record_safety_number, a1.peer, fresh,
                 Buffer())
    nobody = new_handle("record", lib.sotto_peer_record_new, *arg(b"carol"), a1.device)
    expect_error(Code.INVALID_DEVICE_LIST, lib.sotto_peer_record_fingerprint, nobody, Buffer())

    group = new_handle("group", lib.sotto_group_session_new, a1.device, *arg(SESSION_GROUP),
                       *arg(b"alice"))
    for i in range(MAX_GROUP_MEMBERS - 1):
        call(lib.sotto_group_session_add_member, group, *arg(f"member {i}".encode()),
             byref(c_bool()))
    assert out_value(lib.sotto_group_session_member_count, c_size_t, group) == MAX_GROUP_MEMBERS
    expect_error(Code.TOO_MANY_GROUP_MEMBERS, lib.sotto_group_session_add_member, group,
                 *arg(b"one too many"), byref(c_bool()))
    expect_error(Code.NOT_GROUP_MEMBER, lib.sotto_group_session_distribute, group,
                 records_array(nobody), 1, c_void_p())
    expect_error(Code.INVALID_ARGUMENT, lib.sotto_group_session_distribute, group,
                 records_array(a1.own, a1.own), 2, c_void_p())
    expect_error(Code.WRONG_HANDLE, lib.sotto_group_session_distribute, group,
                 records_array(group), 1, c_void_p())
    expect_error(Code.NOT_GROUP_MEMBER, lib.sotto_group_session_remove_member, group, a1.device,
                 *arg(b"alice"), records_array(a1.own), 1, c_void_p())
    code, received, _ = layer_decrypt(a1, 1, 1, out_bytes(lib.sotto_peer_record_encrypt_to,
                                                          b1.peer, a1.id, *arg(b"chat")))
    expect_error(Code.INVALID_ENCODING, lib.sotto_group_session_install, a1.group, a1.peer,
                 received, byref(c_int32()))
    expect_error(Code.INVALID_ARGUMENT, lib.sotto_received_retry_hint, received,
                 byref(RetryHint()))
    free(received)
    outbox = new_handle("outbox", lib.sotto_peer_record_encrypt, fresh, *arg(b"nobody"))
    expect_error(Code.INVALID_ARGUMENT, lib.sotto_outbox_message, outbox, 0, byref(c_size_t()),
                 byref(c_uint32()), Buffer())
    assert outbox_entries(outbox) == ([], [(0, 1, Code.NO_SESSION), (0, 2, Code.NO_SESSION)])
    for handle in (group, nobody, fresh):
        free(handle)


# ---------------------------------------------------------------------------
# Memory safety
# ---------------------------------------------------------------------------


def memory_safety():
    alice, bob = device(), device()
    a_to_b, b_to_a = connect(alice, bob, identity(alice), identity(bob))

    # A copied buffer freed twice: the second free is refused, even after
    # the allocator reused the block for the next output.
    first = Buffer()
    call(lib.sotto_session_encrypt, a_to_b, *arg(b"secret"), byref(first))
    copy = Buffer(first.ptr, first.len, first.id)
    call(lib.sotto_buffer_free, byref(first))
    following = Buffer()
    call(lib.sotto_session_encrypt, a_to_b, *arg(b"secret"), byref(following))
    expect_error(Code.INVALID_BUFFER, lib.sotto_buffer_free, byref(copy))
    assert decrypt(b_to_a, take(following)) == b"secret"
    expect_error(Code.INVALID_BUFFER, lib.sotto_buffer_free, byref(Buffer(None, 3, 0)))
    print("buffers: a copy freed twice is refused")

    # A freed handle is refused, not reused.
    gone = device()
    stale = c_void_p(gone.value)
    free(gone)
    expect_error(Code.WRONG_HANDLE, lib.sotto_device_identity_key, stale, Buffer())
    expect_error(Code.WRONG_HANDLE, lib.sotto_device_free, stale)

    # Threads racing on one session (ctypes drops the GIL during calls):
    # every call runs or is refused as busy; the session moved once per run.
    before = generation(lib.sotto_session_generation, a_to_b)
    results = []

    def hammer():
        codes = []
        for _ in range(300):
            out = Buffer()
            code = lib.sotto_session_encrypt(a_to_b, *arg(b"race"), byref(out))
            if code == Code.OK:
                lib.sotto_buffer_free(byref(out))
            codes.append(code)
        results.append(codes)

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = [c for r in results for c in r]
    assert set(codes) <= {Code.OK, Code.HANDLE_BUSY}, set(codes)
    ran = codes.count(Code.OK)
    assert generation(lib.sotto_session_generation, a_to_b) == before + ran
    print("threads: concurrent calls on one session ran or were refused")
    print(f"  ({ran} ran, {len(codes) - ran} refused as busy)", file=sys.stderr)

    # A free racing another thread's calls: refused while busy; afterwards
    # the other thread's calls find the handle gone.
    ended = []
    started = threading.Event()

    def use_until_gone():
        while True:
            out = Buffer()
            code = lib.sotto_session_encrypt(a_to_b, *arg(b"still there?"), byref(out))
            started.set()
            if code == Code.OK:
                lib.sotto_buffer_free(byref(out))
            elif code != Code.HANDLE_BUSY:
                ended.append(code)
                return

    user = threading.Thread(target=use_until_gone)
    user.start()
    started.wait()
    refused = 0
    while True:
        code = lib.sotto_session_free(a_to_b)
        if code == Code.OK:
            break
        assert code == Code.HANDLE_BUSY, code
        refused += 1
        time.sleep(0)
    live.pop(a_to_b.value)
    user.join()
    assert ended == [Code.WRONG_HANDLE], ended
    print("threads: a free racing a call is refused or ends the other thread's use")
    print(f"  ({refused} frees refused as busy)", file=sys.stderr)
    for handle in (b_to_a, alice, bob):
        free(handle)


def main():
    check_header()
    pairwise_conversation()
    bounds()
    group_id = b"sotto python group chat example!"
    assert len(group_id) == GROUP_ID_LEN
    alice, bob, carol, dave = group_chat(group_id)
    group_error_paths(group_id, alice, bob, carol, dave)
    for member in (alice, bob, carol, dave):
        member.close()
    store_full(group_id)
    session_layer()
    memory_safety()
    assert not live, f"handles not freed: {live}"
    missed = set(Code) - UNREACHABLE - codes_seen
    assert not missed, f"error codes never provoked: {sorted(c.name for c in missed)}"
    print(f"errors checked: {errors_checked}")
    print("python conversation ok")


main()
