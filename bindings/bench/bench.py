"""Times a 100-byte encrypt and a near-empty call (`generation`) through
the Python bindings, with Python's own timers: the median over ROUNDS rounds
of CALLS calls each, in nanoseconds per call, of wall time
(time.perf_counter_ns) and of the thread's CPU time (time.thread_time_ns,
which a shared machine's load does not inflate). Prints one JSON line. Run
by bindings/bench/run.sh.

Also the parts of a call, through the generated module's own helpers
(what its `encrypt` runs, piece by piece): a foreign call that does
nothing in Rust (cloning and freeing the object's handle: two calls), a
RustBuffer allocated and freed (two calls), 100 bytes lowered into a
RustBuffer (allocate, grow, copy) and freed; and the two calls that cut
the overhead: `encrypt_borrowed` (the plaintext passed without a
RustBuffer) and a batch of BATCH encrypts in one call (`encrypt_batch`),
per message."""

import json
import statistics
import sys
import time

import sotto
from sotto import Device, PreKeyBundle

ROUNDS, CALLS = 30, 2000
BATCH = 16
NOW = 1_700_000_000


def established():
    alice, bob = Device.generate(NOW), Device.generate(NOW)
    bundle = PreKeyBundle(bob.identity_key(), bob.signed_prekey().bytes, None,
                          bob.last_resort_kem_prekey().bytes).verify()
    to_bob = alice.initiate(bundle)
    accepted = bob.accept(to_bob.encrypt(b"hi"))
    to_bob.decrypt(accepted.session.encrypt(b"hello"))
    assert not to_bob.is_awaiting_reply()
    return to_bob


def per_call(call, *args):
    for _ in range(CALLS):  # warm-up
        call(*args)
    wall, cpu = [], []
    for _ in range(ROUNDS):
        start, start_cpu = time.perf_counter_ns(), time.thread_time_ns()
        for _ in range(CALLS):
            call(*args)
        cpu.append((time.thread_time_ns() - start_cpu) / CALLS)
        wall.append((time.perf_counter_ns() - start) / CALLS)
    return {"wall": statistics.median(wall), "cpu": statistics.median(cpu)}


session = established()
plaintext = bytes([0x42] * 100)
lib, rust_call = sotto._UniffiLib, sotto._uniffi_rust_call
buffer, converter = sotto._UniffiRustBuffer, sotto._UniffiFfiConverterBytes


def clone_and_free():
    rust_call(lib.uniffi_sotto_uniffi_fn_free_session, session._uniffi_clone_handle())


def alloc_and_free():
    buffer.alloc(16).free()


def lower_and_free():
    converter.lower(plaintext).free()


def per_message(call, batch):
    result = per_call(call, batch)
    return {k: v / len(batch) for k, v in result.items()}


batch = [plaintext] * BATCH
print(json.dumps({
    "language": f"Python {sys.version.split()[0]}",
    "encrypt100": per_call(session.encrypt, plaintext),
    "generation": per_call(session.generation),
    "parts": {
        "encrypt100_borrowed": per_call(session.encrypt_borrowed, plaintext),
        "crossing": {k: v / 2 for k, v in per_call(clone_and_free).items()},
        "buffer": per_call(alloc_and_free),
        "lower100": per_call(lower_and_free),
        "batch": BATCH,
        # The generated `encrypt`: clone the handle, allocate a RustBuffer
        # and grow it for the 100 bytes, the call, free the result.
        "calls_per_encrypt": 5,
        "encrypt100_batched": per_message(session.encrypt_batch, batch),
    },
}))
