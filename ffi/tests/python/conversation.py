"""A Python (ctypes) client of the sotto shared library.

Usage: python3 conversation.py path/to/libsotto_ffi.so

Runs a two-party conversation with persistence and the error paths a
binding with untyped handles can hit. Exits non-zero on the first failed
check. Run by ffi/tests/clients.rs.
"""

import ctypes
import sys
from ctypes import POINTER, byref, c_bool, c_int32, c_size_t, c_uint8, c_uint32, c_void_p

OK = 0
NULL_POINTER = 1
INVALID_ARGUMENT = 2
WRONG_HANDLE = 3
TRUNCATED = 101
WRONG_TYPE = 104
INVALID_SIGNATURE = 110
AUTHENTICATION_FAILED = 116
DUPLICATE_MESSAGE = 117

IDENTITY_KEY_LEN = 66
ONE_TIME_PREKEY_LEN = 38
MESSAGE_TYPE_PREKEY = 2
MESSAGE_TYPE_RATCHET = 1


class Buffer(ctypes.Structure):
    _fields_ = [("ptr", POINTER(c_uint8)), ("len", c_size_t)]


lib = ctypes.CDLL(sys.argv[1])
BUF = POINTER(Buffer)
HANDLE_OUT = POINTER(c_void_p)
BYTES = POINTER(c_uint8)
SIGNATURES = {
    "sotto_buffer_free": [BUF],
    "sotto_last_error_message": [BUF],
    "sotto_device_generate": [HANDLE_OUT],
    "sotto_device_free": [c_void_p],
    "sotto_device_identity_key": [c_void_p, BUF],
    "sotto_device_generate_one_time_prekeys": [c_void_p, c_size_t, BUF],
    "sotto_device_bundle": [c_void_p, BYTES, c_size_t, BUF],
    "sotto_device_seal": [c_void_p, BYTES, c_size_t, BUF],
    "sotto_device_unseal": [BYTES, c_size_t, BYTES, c_size_t, HANDLE_OUT],
    "sotto_bundle_verify": [BYTES, c_size_t, BUF],
    "sotto_identity_key_fingerprint_text": [BYTES, c_size_t, BUF],
    "sotto_message_type": [BYTES, c_size_t, POINTER(c_int32)],
    "sotto_session_initiate": [c_void_p, BYTES, c_size_t, BYTES, c_size_t, HANDLE_OUT],
    "sotto_session_accept": [c_void_p, BYTES, c_size_t, HANDLE_OUT, BUF],
    "sotto_session_encrypt": [c_void_p, BYTES, c_size_t, BUF],
    "sotto_session_decrypt": [c_void_p, BYTES, c_size_t, BUF],
    "sotto_session_is_awaiting_reply": [c_void_p, POINTER(c_bool)],
    "sotto_session_to_bytes": [c_void_p, BUF],
    "sotto_session_from_bytes": [BYTES, c_size_t, HANDLE_OUT],
    "sotto_session_seal": [c_void_p, BYTES, c_size_t, BUF],
    "sotto_session_unseal": [BYTES, c_size_t, BYTES, c_size_t, HANDLE_OUT],
    "sotto_session_free": [c_void_p],
}
for name, argtypes in SIGNATURES.items():
    fn = getattr(lib, name)
    fn.argtypes = argtypes
    fn.restype = c_int32
lib.sotto_device_remove_signed_prekey.argtypes = [c_void_p, c_uint32]
lib.sotto_device_remove_signed_prekey.restype = c_int32


class SottoError(Exception):
    def __init__(self, code, message):
        super().__init__(f"sotto error {code}: {message}")
        self.code = code
        self.message = message


def last_error():
    buf = Buffer()
    assert lib.sotto_last_error_message(byref(buf)) == OK
    text = ctypes.string_at(buf.ptr, buf.len).decode() if buf.len else ""
    lib.sotto_buffer_free(byref(buf))
    return text


def call(fn, *args):
    code = fn(*args)
    if code != OK:
        raise SottoError(code, last_error())


def expect_error(want, fn, *args):
    try:
        call(fn, *args)
    except SottoError as e:
        assert e.code == want, f"{fn.__name__}: got {e.code} ({e.message}), want {want}"
        assert e.message, f"{fn.__name__}: no error message"
        print(f"error ok: {want} ({e.message})")
        return
    raise AssertionError(f"{fn.__name__} succeeded, want error {want}")


def take(buf):
    """Copies an output buffer into Python bytes and frees it."""
    data = ctypes.string_at(buf.ptr, buf.len) if buf.len else b""
    call(lib.sotto_buffer_free, byref(buf))
    assert not buf.ptr and buf.len == 0
    return data


def out_bytes(fn, *args):
    buf = Buffer()
    call(fn, *args, byref(buf))
    return take(buf)


def arg(data):
    """A borrowed (pointer, length) pair for bytes."""
    if data is None:
        return (None, 0)
    return ((c_uint8 * len(data)).from_buffer_copy(data), len(data))


def new_handle(fn, *args):
    handle = c_void_p()
    call(fn, *args, byref(handle))
    assert handle.value
    return handle


def encrypt(session, text):
    return out_bytes(lib.sotto_session_encrypt, session, *arg(text))


def decrypt(session, wire):
    return out_bytes(lib.sotto_session_decrypt, session, *arg(wire))


def main():
    alice = new_handle(lib.sotto_device_generate)
    bob = new_handle(lib.sotto_device_generate)
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
    expect_error(INVALID_SIGNATURE, lib.sotto_session_initiate, alice, *arg(bytes(bad)),
                 *arg(None), byref(c_void_p()))

    to_bob = new_handle(lib.sotto_session_initiate, alice, *arg(bundle), *arg(bob_id))
    first = encrypt(to_bob, b"hello Bob")
    kind = c_int32()
    call(lib.sotto_message_type, *arg(first), byref(kind))
    assert kind.value == MESSAGE_TYPE_PREKEY

    to_alice = c_void_p()
    plain = Buffer()
    call(lib.sotto_session_accept, bob, *arg(first), byref(to_alice), byref(plain))
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
    expect_error(DUPLICATE_MESSAGE, lib.sotto_session_decrypt, to_alice, *arg(wires[1]),
                 byref(Buffer()))
    wire = encrypt(to_bob, b"tamper")
    tampered = bytearray(wire)
    tampered[-20] ^= 1
    expect_error(AUTHENTICATION_FAILED, lib.sotto_session_decrypt, to_alice,
                 *arg(bytes(tampered)), byref(Buffer()))
    assert decrypt(to_alice, wire) == b"tamper"
    print("alice -> bob: out of order, duplicate and tampered handled")

    # Persistence: plain and sealed.
    key = bytes(range(32))
    state = out_bytes(lib.sotto_session_to_bytes, to_alice)
    call(lib.sotto_session_free, to_alice)
    to_alice = new_handle(lib.sotto_session_from_bytes, *arg(state))
    sealed = out_bytes(lib.sotto_session_seal, to_bob, *arg(key))
    call(lib.sotto_session_free, to_bob)
    expect_error(AUTHENTICATION_FAILED, lib.sotto_session_unseal, *arg(sealed),
                 *arg(bytes(32)), byref(c_void_p()))
    expect_error(INVALID_ARGUMENT, lib.sotto_session_unseal, *arg(sealed), *arg(key[:16]),
                 byref(c_void_p()))
    to_bob = new_handle(lib.sotto_session_unseal, *arg(sealed), *arg(key))
    sealed_bob = out_bytes(lib.sotto_device_seal, bob, *arg(key))
    call(lib.sotto_device_free, bob)
    bob = new_handle(lib.sotto_device_unseal, *arg(sealed_bob), *arg(key))
    expect_error(WRONG_TYPE, lib.sotto_device_unseal, *arg(sealed), *arg(key),
                 byref(c_void_p()))
    assert decrypt(to_bob, encrypt(to_alice, b"after restore")) == b"after restore"
    assert decrypt(to_alice, encrypt(to_bob, b"")) == b""
    print("bob -> alice: after restore")

    # Misuse a binding can commit: handles are all c_void_p here.
    expect_error(WRONG_HANDLE, lib.sotto_device_identity_key, to_bob, byref(Buffer()))
    expect_error(WRONG_HANDLE, lib.sotto_session_encrypt, alice, *arg(b"x"), byref(Buffer()))
    expect_error(WRONG_HANDLE, lib.sotto_device_free, to_alice)
    expect_error(NULL_POINTER, lib.sotto_session_encrypt, None, *arg(b"x"), byref(Buffer()))
    expect_error(NULL_POINTER, lib.sotto_session_decrypt, to_bob, None, 7, byref(Buffer()))
    expect_error(NULL_POINTER, lib.sotto_session_encrypt, to_bob, *arg(b"x"), None)
    full = Buffer()
    call(lib.sotto_device_identity_key, alice, byref(full))
    expect_error(INVALID_ARGUMENT, lib.sotto_device_identity_key, alice, byref(full))
    assert len(take(full)) == IDENTITY_KEY_LEN
    expect_error(INVALID_ARGUMENT, lib.sotto_buffer_free, byref(Buffer(None, 3)))
    occupied = c_void_p(to_bob.value)
    expect_error(INVALID_ARGUMENT, lib.sotto_session_from_bytes, *arg(state), byref(occupied))
    expect_error(TRUNCATED, lib.sotto_session_from_bytes, *arg(state[:-1]), byref(c_void_p()))
    assert decrypt(to_alice, encrypt(to_bob, b"still fine")) == b"still fine"

    for session in (to_alice, to_bob):
        call(lib.sotto_session_free, session)
    for device in (alice, bob):
        call(lib.sotto_device_free, device)
    print("python conversation ok")


main()
