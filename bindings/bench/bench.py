"""Times a 100-byte encrypt and a near-empty call (`generation`) through
the Python bindings, with Python's own timers: the median over ROUNDS rounds
of CALLS calls each, in nanoseconds per call, of wall time
(time.perf_counter_ns) and of the thread's CPU time (time.thread_time_ns,
which a shared machine's load does not inflate). Prints one JSON line. Run
by bindings/bench/run.sh."""

import json
import statistics
import sys
import time

from sotto import Device, PreKeyBundle

ROUNDS, CALLS = 30, 2000
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
print(json.dumps({
    "language": f"Python {sys.version.split()[0]}",
    "encrypt100": per_call(session.encrypt, plaintext),
    "generation": per_call(session.generation),
}))
