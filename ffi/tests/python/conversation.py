"""A Python (ctypes) client of the sotto shared library.

Usage: python3 conversation.py path/to/libsotto_ffi.so

Runs, over the C ABI only:

1. a two-party conversation with persistence and the error paths a binding
   with untyped handles can hit;
2. a group chat of three members: pairwise sessions, sender keys handed out
   over them, group messages out of order, a replay, save and restore,
   removing a member (rotation) and that member failing to read on;
3. the group API's error paths: tampered, forged and wrong-group messages,
   NULL pointers, wrong handle types, non-empty outputs, bad lengths.

Every failing call must return the exact expected code and leave a
non-empty last error message that shows no secret. Every buffer is freed
with sotto_buffer_free and every handle with its own _free (checked at the
end). Exits non-zero on the first failed check. Run by ffi/tests/clients.rs.
"""

import ctypes
import enum
import re
import sys
from ctypes import POINTER, byref, c_bool, c_int32, c_size_t, c_uint8, c_uint32, c_void_p
from pathlib import Path


# ---------------------------------------------------------------------------
# Constants from sotto.h (checked against the header by check_header()).
# ---------------------------------------------------------------------------


class Code(enum.IntEnum):
    """The SottoError codes this client expects."""

    OK = 0
    NULL_POINTER = 1
    INVALID_ARGUMENT = 2
    WRONG_HANDLE = 3
    TRUNCATED = 101
    WRONG_TYPE = 104
    TOO_LARGE = 106
    PLAINTEXT_TOO_LARGE = 107
    INVALID_SIGNATURE = 110
    AUTHENTICATION_FAILED = 116
    DUPLICATE_MESSAGE = 117
    UNKNOWN_GROUP_CHAIN = 122


SIZES = {
    "SOTTO_STORAGE_KEY_LEN": 32,
    "SOTTO_IDENTITY_KEY_LEN": 66,
    "SOTTO_ONE_TIME_PREKEY_LEN": 38,
    "SOTTO_MAX_PLAINTEXT_LEN": 262144,
    "SOTTO_GROUP_ID_LEN": 32,
    "SOTTO_MAX_GROUP_MESSAGE_LEN": 262282,
}
STORAGE_KEY_LEN = SIZES["SOTTO_STORAGE_KEY_LEN"]
IDENTITY_KEY_LEN = SIZES["SOTTO_IDENTITY_KEY_LEN"]
ONE_TIME_PREKEY_LEN = SIZES["SOTTO_ONE_TIME_PREKEY_LEN"]
MAX_PLAINTEXT_LEN = SIZES["SOTTO_MAX_PLAINTEXT_LEN"]
GROUP_ID_LEN = SIZES["SOTTO_GROUP_ID_LEN"]
MAX_GROUP_MESSAGE_LEN = SIZES["SOTTO_MAX_GROUP_MESSAGE_LEN"]
MESSAGE_TYPE_RATCHET = 1
MESSAGE_TYPE_PREKEY = 2

# Group message layout (SPEC): version(1) type(1) group_id(32) chain_id(4)
# index(4) salt(16) ciphertext tag(16) signature(64).
GROUP_ID_OFFSET = 2
CHAIN_ID_OFFSET = GROUP_ID_OFFSET + GROUP_ID_LEN
SIGNATURE_LEN = 64


def check_header():
    """The constants above have the header's values."""
    header = (Path(__file__).resolve().parents[2] / "include" / "sotto.h").read_text()
    for code in Code:
        assert re.search(rf"\bSOTTO_ERROR_{code.name} = {code.value},", header), code
    for name, value in SIZES.items():
        assert re.search(rf"#define {name} {value}\n", header), name


# ---------------------------------------------------------------------------
# Loading the library: every function returns a SottoError (int32_t).
# ---------------------------------------------------------------------------


class Buffer(ctypes.Structure):
    """SottoBuffer: bytes the library allocated; release with sotto_buffer_free."""

    _fields_ = [("ptr", POINTER(c_uint8)), ("len", c_size_t)]


lib = ctypes.CDLL(sys.argv[1])
BUF = POINTER(Buffer)
HANDLE_OUT = POINTER(c_void_p)  # a SottoDevice ** (or session, sender, receiver)
BYTES = POINTER(c_uint8)
H = c_void_p  # every handle type looks the same to ctypes
SIGNATURES = {
    "sotto_buffer_free": [BUF],
    "sotto_last_error_message": [BUF],
    # Devices.
    "sotto_device_generate": [HANDLE_OUT],
    "sotto_device_free": [H],
    "sotto_device_identity_key": [H, BUF],
    "sotto_device_generate_one_time_prekeys": [H, c_size_t, BUF],
    "sotto_device_bundle": [H, BYTES, c_size_t, BUF],
    "sotto_device_seal": [H, BYTES, c_size_t, BUF],
    "sotto_device_unseal": [BYTES, c_size_t, BYTES, c_size_t, HANDLE_OUT],
    "sotto_device_remove_signed_prekey": [H, c_uint32],
    "sotto_bundle_verify": [BYTES, c_size_t, BUF],
    "sotto_identity_key_fingerprint_text": [BYTES, c_size_t, BUF],
    # Pairwise sessions.
    "sotto_message_type": [BYTES, c_size_t, POINTER(c_int32)],
    "sotto_session_initiate": [H, BYTES, c_size_t, BYTES, c_size_t, HANDLE_OUT],
    "sotto_session_accept": [H, BYTES, c_size_t, HANDLE_OUT, BUF],
    "sotto_session_encrypt": [H, BYTES, c_size_t, BUF],
    "sotto_session_decrypt": [H, BYTES, c_size_t, BUF],
    "sotto_session_is_awaiting_reply": [H, POINTER(c_bool)],
    "sotto_session_remote_identity_key": [H, BUF],
    "sotto_session_to_bytes": [H, BUF],
    "sotto_session_from_bytes": [BYTES, c_size_t, HANDLE_OUT],
    "sotto_session_seal": [H, BYTES, c_size_t, BUF],
    "sotto_session_unseal": [BYTES, c_size_t, BYTES, c_size_t, HANDLE_OUT],
    "sotto_session_free": [H],
    # Group senders (this member's own chain).
    "sotto_group_sender_new": [BYTES, c_size_t, HANDLE_OUT],
    "sotto_group_sender_distribution": [H, BUF],
    "sotto_group_sender_rotate": [H, BUF],
    "sotto_group_sender_encrypt": [H, BYTES, c_size_t, BUF],
    "sotto_group_sender_to_bytes": [H, BUF],
    "sotto_group_sender_from_bytes": [BYTES, c_size_t, HANDLE_OUT],
    "sotto_group_sender_seal": [H, BYTES, c_size_t, BUF],
    "sotto_group_sender_unseal": [BYTES, c_size_t, BYTES, c_size_t, HANDLE_OUT],
    "sotto_group_sender_free": [H],
    # Group receivers (one per other member's chain).
    "sotto_group_receiver_accept": [BYTES, c_size_t, H, HANDLE_OUT],
    "sotto_group_receiver_decrypt": [H, BYTES, c_size_t, BUF],
    "sotto_group_receiver_sender_identity_key": [H, BUF],
    "sotto_group_receiver_chain_id": [H, POINTER(c_uint32)],
    "sotto_group_message_chain_id": [BYTES, c_size_t, POINTER(c_uint32)],
    "sotto_group_receiver_to_bytes": [H, BUF],
    "sotto_group_receiver_from_bytes": [BYTES, c_size_t, HANDLE_OUT],
    "sotto_group_receiver_seal": [H, BYTES, c_size_t, BUF],
    "sotto_group_receiver_unseal": [BYTES, c_size_t, BYTES, c_size_t, HANDLE_OUT],
    "sotto_group_receiver_free": [H],
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
    assert not buf.ptr and buf.len == 0
    return data


def out_bytes(fn, *args):
    """Calls fn with a fresh output buffer appended; returns its bytes."""
    buf = Buffer()
    call(fn, *args, byref(buf))
    return take(buf)


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
    "sender": lib.sotto_group_sender_free,
    "receiver": lib.sotto_group_receiver_free,
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
# Key material as hex (a decimal number such as a length is fine) or as a
# Rust byte list.
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
    empty_outputs = [a for a in args if isinstance(a, Buffer) and not a.ptr and not a.len]
    empty_slots = [a for a in args if isinstance(a, c_void_p) and a.value is None]
    code = fn(*args)
    message = last_error()
    assert code == want, f"{fn.__name__}: got {code} ({message}), want {want.name} ({want})"
    assert message, f"{fn.__name__}: no error message"
    assert not HEX_DUMP.search(message) and not BYTE_LIST.search(message), message
    for secret in secrets:
        assert not shows(message, secret), f"{fn.__name__} leaked a secret: {message}"
    assert all(not b.ptr and not b.len for b in empty_outputs), f"{fn.__name__} wrote output"
    assert all(s.value is None for s in empty_slots), f"{fn.__name__} wrote a handle"
    errors_checked += 1
    print(f"error ok: {want.name} -> {int(want)} ({message})")


# ---------------------------------------------------------------------------
# Pairwise
# ---------------------------------------------------------------------------


def encrypt(session, text):
    return out_bytes(lib.sotto_session_encrypt, session, *arg(text))


def decrypt(session, wire):
    return out_bytes(lib.sotto_session_decrypt, session, *arg(wire))


def pairwise_conversation():
    alice = new_handle("device", lib.sotto_device_generate)
    bob = new_handle("device", lib.sotto_device_generate)
    opks = out_bytes(lib.sotto_device_generate_one_time_prekeys, bob, 1)
    assert len(opks) == ONE_TIME_PREKEY_LEN
    bundle = out_bytes(lib.sotto_device_bundle, bob, *arg(opks))
    bob_id = out_bytes(lib.sotto_device_identity_key, bob)
    assert out_bytes(lib.sotto_bundle_verify, *arg(bundle)) == bob_id
    fingerprint = out_bytes(lib.sotto_identity_key_fingerprint_text, *arg(bob_id)).decode()
    assert len(fingerprint) == 71, fingerprint
    print("bob fingerprint:", fingerprint)

    bad = bytearray(bundle)
    bad[2 + 64 + 4 + 32 + 5] ^= 0x40
    expect_error(Code.INVALID_SIGNATURE, lib.sotto_session_initiate, alice, *arg(bytes(bad)),
                 *arg(None), c_void_p())

    to_bob = new_handle("session", lib.sotto_session_initiate, alice, *arg(bundle), *arg(bob_id))
    first = encrypt(to_bob, b"hello Bob")
    kind = c_int32()
    call(lib.sotto_message_type, *arg(first), byref(kind))
    assert kind.value == MESSAGE_TYPE_PREKEY

    to_alice = c_void_p()
    plain = Buffer()
    call(lib.sotto_session_accept, bob, *arg(first), byref(to_alice), byref(plain))
    adopt("session", to_alice)
    assert take(plain) == b"hello Bob"
    print("alice -> bob: hello Bob")

    reply = encrypt(to_alice, b"hi Alice")
    call(lib.sotto_message_type, *arg(reply), byref(kind))
    assert kind.value == MESSAGE_TYPE_RATCHET
    assert decrypt(to_bob, reply) == b"hi Alice"
    awaiting = c_bool(True)
    call(lib.sotto_session_is_awaiting_reply, to_bob, byref(awaiting))
    assert not awaiting.value
    print("bob -> alice: hi Alice")

    # Out of order, duplicate, tampered.
    wires = [encrypt(to_bob, f"msg {i}".encode()) for i in range(4)]
    for i in (3, 1, 0, 2):
        assert decrypt(to_alice, wires[i]) == f"msg {i}".encode()
    expect_error(Code.DUPLICATE_MESSAGE, lib.sotto_session_decrypt, to_alice, *arg(wires[1]),
                 Buffer())
    wire = encrypt(to_bob, b"tamper")
    tampered = bytearray(wire)
    tampered[-20] ^= 1
    expect_error(Code.AUTHENTICATION_FAILED, lib.sotto_session_decrypt, to_alice,
                 *arg(bytes(tampered)), Buffer())
    assert decrypt(to_alice, wire) == b"tamper"
    print("alice -> bob: out of order, duplicate and tampered handled")

    # Persistence: plain and sealed.
    key = bytes(range(STORAGE_KEY_LEN))
    state = out_bytes(lib.sotto_session_to_bytes, to_alice)
    free(to_alice)
    to_alice = new_handle("session", lib.sotto_session_from_bytes, *arg(state))
    sealed = out_bytes(lib.sotto_session_seal, to_bob, *arg(key))
    free(to_bob)
    expect_error(Code.AUTHENTICATION_FAILED, lib.sotto_session_unseal, *arg(sealed),
                 *arg(bytes(STORAGE_KEY_LEN)), c_void_p(), secrets=[key])
    expect_error(Code.INVALID_ARGUMENT, lib.sotto_session_unseal, *arg(sealed), *arg(key[:16]),
                 c_void_p(), secrets=[key])
    to_bob = new_handle("session", lib.sotto_session_unseal, *arg(sealed), *arg(key))
    sealed_bob = out_bytes(lib.sotto_device_seal, bob, *arg(key))
    free(bob)
    bob = new_handle("device", lib.sotto_device_unseal, *arg(sealed_bob), *arg(key))
    expect_error(Code.WRONG_TYPE, lib.sotto_device_unseal, *arg(sealed), *arg(key),
                 c_void_p(), secrets=[key])
    assert decrypt(to_bob, encrypt(to_alice, b"after restore")) == b"after restore"
    assert decrypt(to_alice, encrypt(to_bob, b"")) == b""
    print("bob -> alice: after restore")

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
    expect_error(Code.INVALID_ARGUMENT, lib.sotto_buffer_free, byref(Buffer(None, 3)))
    occupied = c_void_p(to_bob.value)
    expect_error(Code.INVALID_ARGUMENT, lib.sotto_session_from_bytes, *arg(state),
                 byref(occupied), secrets=[state])
    assert occupied.value == to_bob.value
    expect_error(Code.TRUNCATED, lib.sotto_session_from_bytes, *arg(state[:-1]), c_void_p(),
                 secrets=[state])
    assert decrypt(to_alice, encrypt(to_bob, b"still fine")) == b"still fine"

    for handle in (to_alice, to_bob, alice, bob):
        free(handle)


# ---------------------------------------------------------------------------
# Group chat
# ---------------------------------------------------------------------------


class Member:
    """One group member: a device, a pairwise session per peer, a sender for
    its own chain and a receiver per chain of another member it may read."""

    def __init__(self, name):
        self.name = name
        self.device = new_handle("device", lib.sotto_device_generate)
        self.identity = out_bytes(lib.sotto_device_identity_key, self.device)
        self.sessions = {}  # peer name -> session handle
        self.sender = None
        self.receivers = {}  # chain id -> (member name, receiver handle)

    def receiver_of(self, name):
        """The receiver of `name`'s current chain."""
        return next(rx for who, rx in self.receivers.values() if who == name)

    def close(self):
        for _, receiver in self.receivers.values():
            free(receiver)
        for session in self.sessions.values():
            free(session)
        if self.sender is not None:
            free(self.sender)
        free(self.device)


def connect(a, b):
    """Starts a pairwise session from a to b (a writes first, b replies)."""
    opk = out_bytes(lib.sotto_device_generate_one_time_prekeys, b.device, 1)
    bundle = out_bytes(lib.sotto_device_bundle, b.device, *arg(opk))
    a_to_b = new_handle("session", lib.sotto_session_initiate, a.device, *arg(bundle),
                        *arg(b.identity))
    first = encrypt(a_to_b, f"hi {b.name}".encode())
    b_to_a, plain = c_void_p(), Buffer()
    call(lib.sotto_session_accept, b.device, *arg(first), byref(b_to_a), byref(plain))
    adopt("session", b_to_a)
    assert take(plain) == f"hi {b.name}".encode()
    assert decrypt(a_to_b, encrypt(b_to_a, f"hi {a.name}".encode())) == f"hi {a.name}".encode()
    a.sessions[b.name] = a_to_b
    b.sessions[a.name] = b_to_a


def message_chain_id(wire):
    chain = c_uint32()
    call(lib.sotto_group_message_chain_id, *arg(wire), byref(chain))
    return chain.value


def hand_out_sender_key(frm, to, distribution):
    """Sends frm's distribution to `to` inside their pairwise session; `to`
    installs it with the session that decrypted it, which attributes the
    chain to frm's identity."""
    wire = encrypt(frm.sessions[to.name], distribution)
    delivered_by = to.sessions[frm.name]
    got = decrypt(delivered_by, wire)
    receiver = new_handle("receiver", lib.sotto_group_receiver_accept, *arg(got), delivered_by)
    assert out_bytes(lib.sotto_group_receiver_sender_identity_key, receiver) == frm.identity
    chain = c_uint32()
    call(lib.sotto_group_receiver_chain_id, receiver, byref(chain))
    for old, (who, rx) in list(to.receivers.items()):
        if who == frm.name:  # frm rotated: its old chain is over
            free(rx)
            del to.receivers[old]
    to.receivers[chain.value] = (frm.name, receiver)
    return wire


def group_encrypt(sender, text):
    return out_bytes(lib.sotto_group_sender_encrypt, sender, *arg(text))


def group_read(member, wire):
    """Routes a group message to the receiver of its chain and decrypts it."""
    _, receiver = member.receivers[message_chain_id(wire)]
    return out_bytes(lib.sotto_group_receiver_decrypt, receiver, *arg(wire))


def broadcast(frm, members, text, label=None):
    wire = group_encrypt(frm.sender, text)
    for to in members:
        if to is not frm:
            assert group_read(to, wire) == text
    print(f"{label or frm.name + ' -> group'}: {text.decode()}")
    return wire


def save_and_restore(member, key):
    """Saves and restores the member's sender and receivers, sealed and plain
    alternately, the way an app persists them between runs."""
    state = out_bytes(lib.sotto_group_sender_to_bytes, member.sender)
    free(member.sender)
    member.sender = new_handle("sender", lib.sotto_group_sender_from_bytes, *arg(state))
    sealed = out_bytes(lib.sotto_group_sender_seal, member.sender, *arg(key))
    free(member.sender)
    member.sender = new_handle("sender", lib.sotto_group_sender_unseal, *arg(sealed), *arg(key))
    for i, (chain, (who, receiver)) in enumerate(list(member.receivers.items())):
        if i % 2 == 0:
            state = out_bytes(lib.sotto_group_receiver_seal, receiver, *arg(key))
            free(receiver)
            restored = new_handle("receiver", lib.sotto_group_receiver_unseal, *arg(state),
                                  *arg(key))
        else:
            state = out_bytes(lib.sotto_group_receiver_to_bytes, receiver)
            free(receiver)
            restored = new_handle("receiver", lib.sotto_group_receiver_from_bytes, *arg(state))
        member.receivers[chain] = (who, restored)


def group_chat(group_id):
    alice, bob, carol = members = [Member(name) for name in ("alice", "bob", "carol")]
    connect(alice, bob)
    connect(alice, carol)
    connect(bob, carol)

    # Each member creates its chain and hands its sender key to the others.
    for m in members:
        m.sender = new_handle("sender", lib.sotto_group_sender_new, *arg(group_id))
        distribution = out_bytes(lib.sotto_group_sender_distribution, m.sender)
        for other in members:
            if other is not m:
                hand_out_sender_key(m, other, distribution)
    assert all(len(m.receivers) == 2 for m in members)
    print("group: alice, bob and carol hold each other's sender keys")

    hello = broadcast(alice, members, b"hello group")
    broadcast(bob, members, b"hi everyone")
    broadcast(carol, members, b"hey both")

    # Delivery out of order, then replays.
    texts = [f"part {i}".encode() for i in range(4)]
    wires = [group_encrypt(alice.sender, t) for t in texts]
    for reader, order in ((bob, (3, 0, 2, 1)), (carol, (1, 3, 0, 2))):
        for i in order:
            assert group_read(reader, wires[i]) == texts[i]
            print(f"alice -> {reader.name} (out of order): {texts[i].decode()}")
    for replay in (wires[2], hello):
        expect_error(Code.DUPLICATE_MESSAGE, lib.sotto_group_receiver_decrypt,
                     bob.receiver_of("alice"), *arg(replay), Buffer())

    # Everyone saves and restores its group state; the chat goes on.
    key = bytes([0x5A]) * STORAGE_KEY_LEN
    for m in members:
        save_and_restore(m, key)
    broadcast(bob, members, b"me too", "bob -> group (restored)")
    broadcast(alice, members, b"saved and back", "alice -> group (restored)")

    # Carol leaves: alice and bob drop her chain, rotate theirs and hand the
    # new keys to each other only.
    for m in (alice, bob):
        for chain, (who, receiver) in list(m.receivers.items()):
            if who == "carol":
                free(receiver)
                del m.receivers[chain]
    rotated = {}
    for m, other in ((alice, bob), (bob, alice)):
        old_chains = set(other.receivers)
        distribution = out_bytes(lib.sotto_group_sender_rotate, m.sender)
        rotated[m.name] = hand_out_sender_key(m, other, distribution)
        assert len(other.receivers) == 1 and set(other.receivers) != old_chains
    remaining = [alice, bob]
    after_removal = [
        broadcast(alice, remaining, b"without carol", "alice -> group (rotated)"),
        broadcast(bob, remaining, b"agreed", "bob -> group (rotated)"),
    ]

    # Carol still holds receivers, but for the old chains: none reads the
    # new ones, and the new sender keys never reached her (they went over
    # the alice-bob session, which her own sessions cannot open).
    for wire in after_removal:
        assert message_chain_id(wire) not in carol.receivers
        for _, receiver in carol.receivers.values():
            expect_error(Code.UNKNOWN_GROUP_CHAIN, lib.sotto_group_receiver_decrypt, receiver,
                         *arg(wire), Buffer(), secrets=[b"without carol", b"agreed"])
    expect_error(Code.AUTHENTICATION_FAILED, lib.sotto_session_decrypt, carol.sessions["alice"],
                 *arg(rotated["alice"]), Buffer())
    print("carol (removed) cannot read: without carol")
    # And what carol still sends on her chain no longer reaches anyone.
    assert message_chain_id(group_encrypt(carol.sender, b"anyone?")) not in alice.receivers
    return alice, bob, carol


# ---------------------------------------------------------------------------
# Group error paths
# ---------------------------------------------------------------------------


def group_error_paths(group_id, alice, bob, carol):
    rx = bob.receiver_of("alice")
    text = b"do not show this"
    wire = group_encrypt(alice.sender, text)
    key = bytes([0x33]) * STORAGE_KEY_LEN

    # Tampering anywhere breaks the signature, which is checked first.
    for offset in (len(wire) - SIGNATURE_LEN - 20, len(wire) - 1):
        bad = bytearray(wire)
        bad[offset] ^= 0x01
        expect_error(Code.INVALID_SIGNATURE, lib.sotto_group_receiver_decrypt, rx,
                     *arg(bytes(bad)), Buffer(), secrets=[text])

    # Carol, removed, forges a message on alice's chain: she can sign only
    # with her own chain's key.
    forged = bytearray(group_encrypt(carol.sender, b"trust me"))
    forged[CHAIN_ID_OFFSET : CHAIN_ID_OFFSET + 4] = wire[CHAIN_ID_OFFSET : CHAIN_ID_OFFSET + 4]
    assert message_chain_id(bytes(forged)) == message_chain_id(wire)
    expect_error(Code.INVALID_SIGNATURE, lib.sotto_group_receiver_decrypt, rx,
                 *arg(bytes(forged)), Buffer())

    # A message of another group, and one relabelled with another group id.
    other = new_handle("sender", lib.sotto_group_sender_new, *arg(bytes(GROUP_ID_LEN)))
    expect_error(Code.UNKNOWN_GROUP_CHAIN, lib.sotto_group_receiver_decrypt, rx,
                 *arg(group_encrypt(other, text)), Buffer(), secrets=[text])
    relabelled = bytearray(wire)
    relabelled[GROUP_ID_OFFSET] ^= 0xFF
    expect_error(Code.UNKNOWN_GROUP_CHAIN, lib.sotto_group_receiver_decrypt, rx,
                 *arg(bytes(relabelled)), Buffer(), secrets=[text])

    # Not a distribution, or one cut short.
    distribution = out_bytes(lib.sotto_group_sender_distribution, other)
    session = bob.sessions["alice"]
    expect_error(Code.WRONG_TYPE, lib.sotto_group_receiver_accept, *arg(wire), session,
                 c_void_p())
    expect_error(Code.TRUNCATED, lib.sotto_group_receiver_accept, *arg(distribution[:-1]),
                 session, c_void_p(), secrets=[distribution])

    # NULL pointers.
    expect_error(Code.NULL_POINTER, lib.sotto_group_sender_new, None, GROUP_ID_LEN, c_void_p())
    expect_error(Code.NULL_POINTER, lib.sotto_group_sender_new, *arg(group_id), None)
    expect_error(Code.NULL_POINTER, lib.sotto_group_sender_encrypt, None, *arg(text), Buffer(),
                 secrets=[text])
    expect_error(Code.NULL_POINTER, lib.sotto_group_sender_encrypt, alice.sender, None, 5,
                 Buffer())
    expect_error(Code.NULL_POINTER, lib.sotto_group_receiver_decrypt, rx, *arg(wire), None)
    expect_error(Code.NULL_POINTER, lib.sotto_group_receiver_accept, *arg(distribution), None,
                 c_void_p(), secrets=[distribution])
    expect_error(Code.NULL_POINTER, lib.sotto_group_message_chain_id, *arg(wire), None)
    expect_error(Code.NULL_POINTER, lib.sotto_group_receiver_unseal, None, 10, *arg(key),
                 c_void_p(), secrets=[key])
    for fn in (lib.sotto_group_sender_free, lib.sotto_group_receiver_free):
        call(fn, None)  # freeing NULL is a no-op

    # Wrong handle types: every handle is a c_void_p to Python.
    expect_error(Code.WRONG_HANDLE, lib.sotto_group_receiver_decrypt, alice.sender, *arg(wire),
                 Buffer(), secrets=[text])
    expect_error(Code.WRONG_HANDLE, lib.sotto_group_sender_encrypt, rx, *arg(text), Buffer(),
                 secrets=[text])
    expect_error(Code.WRONG_HANDLE, lib.sotto_group_sender_encrypt, session, *arg(text),
                 Buffer(), secrets=[text])
    expect_error(Code.WRONG_HANDLE, lib.sotto_group_sender_distribution, bob.device, Buffer())
    expect_error(Code.WRONG_HANDLE, lib.sotto_group_receiver_accept, *arg(distribution), rx,
                 c_void_p(), secrets=[distribution])
    pairwise = encrypt(alice.sessions["bob"], text)
    expect_error(Code.WRONG_HANDLE, lib.sotto_session_decrypt, rx, *arg(pairwise), Buffer(),
                 secrets=[text])
    expect_error(Code.WRONG_HANDLE, lib.sotto_group_receiver_chain_id, other, byref(c_uint32()))
    expect_error(Code.WRONG_HANDLE, lib.sotto_group_sender_free, rx)
    expect_error(Code.WRONG_HANDLE, lib.sotto_group_receiver_free, alice.sender)
    expect_error(Code.WRONG_HANDLE, lib.sotto_session_free, other)

    # Outputs must be empty: a full buffer or handle slot is refused, not leaked.
    full = Buffer()
    call(lib.sotto_group_sender_distribution, other, byref(full))
    expect_error(Code.INVALID_ARGUMENT, lib.sotto_group_sender_encrypt, alice.sender, *arg(text),
                 byref(full), secrets=[text])
    expect_error(Code.INVALID_ARGUMENT, lib.sotto_group_receiver_decrypt, rx, *arg(wire),
                 byref(full), secrets=[text])
    assert take(full) == distribution
    state = out_bytes(lib.sotto_group_receiver_to_bytes, rx)
    occupied = c_void_p(rx.value)
    expect_error(Code.INVALID_ARGUMENT, lib.sotto_group_receiver_from_bytes, *arg(state),
                 byref(occupied), secrets=[state])
    assert occupied.value == rx.value

    # Bad lengths and sizes.
    for bad_len in (GROUP_ID_LEN - 1, GROUP_ID_LEN + 1):
        expect_error(Code.INVALID_ARGUMENT, lib.sotto_group_sender_new,
                     *arg(bytes(bad_len)), c_void_p())
    huge = (1 << (8 * ctypes.sizeof(c_size_t) - 1)) + 1  # over SIZE_MAX / 2, never read
    expect_error(Code.INVALID_ARGUMENT, lib.sotto_group_sender_encrypt, alice.sender,
                 arg(text)[0], huge, Buffer(), secrets=[text])
    expect_error(Code.PLAINTEXT_TOO_LARGE, lib.sotto_group_sender_encrypt, alice.sender,
                 *arg(bytes(MAX_PLAINTEXT_LEN + 1)), Buffer())
    expect_error(Code.TOO_LARGE, lib.sotto_group_receiver_decrypt, rx,
                 *arg(wire + bytes(MAX_GROUP_MESSAGE_LEN + 1 - len(wire))), Buffer())
    expect_error(Code.TRUNCATED, lib.sotto_group_receiver_decrypt, rx, *arg(wire[:60]),
                 Buffer())
    expect_error(Code.TRUNCATED, lib.sotto_group_message_chain_id, *arg(wire[:40]),
                 byref(c_uint32()))

    # Saved state: wrong key, wrong kind, truncated, short key.
    sealed = out_bytes(lib.sotto_group_receiver_seal, rx, *arg(key))
    expect_error(Code.AUTHENTICATION_FAILED, lib.sotto_group_receiver_unseal, *arg(sealed),
                 *arg(bytes(STORAGE_KEY_LEN)), c_void_p(), secrets=[key, state])
    expect_error(Code.INVALID_ARGUMENT, lib.sotto_group_receiver_seal, rx, *arg(key[:-1]),
                 Buffer(), secrets=[key, state])
    expect_error(Code.WRONG_TYPE, lib.sotto_group_sender_unseal, *arg(sealed), *arg(key),
                 c_void_p(), secrets=[key, state])
    expect_error(Code.WRONG_TYPE, lib.sotto_group_sender_from_bytes, *arg(state), c_void_p(),
                 secrets=[state])
    expect_error(Code.TRUNCATED, lib.sotto_group_receiver_from_bytes, *arg(state[:-1]),
                 c_void_p(), secrets=[state])

    # Nothing above changed a handle, and a success clears the last error.
    assert out_bytes(lib.sotto_group_receiver_decrypt, rx, *arg(wire)) == text
    assert last_error() == ""
    print("bob (after errors): do not show this")
    free(other)


def main():
    check_header()
    pairwise_conversation()
    group_id = b"sotto python group chat example!"
    assert len(group_id) == GROUP_ID_LEN
    alice, bob, carol = group_chat(group_id)
    group_error_paths(group_id, alice, bob, carol)
    for member in (alice, bob, carol):
        member.close()
    assert not live, f"handles not freed: {live}"
    print(f"errors checked: {errors_checked}")
    print("python conversation ok")


main()
