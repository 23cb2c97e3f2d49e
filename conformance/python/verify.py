#!/usr/bin/env python3
"""Check sotto_spec.py (SPEC v2) against its self-checks and the test vectors.

Prints one `PASS name` or `FAIL name: reason` line per self-check and per
vector, then `N passed, M failed`; exits 1 on any failure.

Phase 1 (now): the v2 vectors do not exist yet. While test-vectors/README.md
describes protocol version 1 (its labels say "sotto v1", none "sotto v2"), each
file is reported as one SKIP line and not checked. A v2 vector file is never
silently passed: until its checker is written, each such file is a FAIL.
"""

from __future__ import annotations

import glob
import json
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import selfcheck  # noqa: E402

VECTORS = os.environ.get("SOTTO_VECTORS", os.path.join(HERE, "..", "..", "test-vectors"))


def run_selfchecks():
    passed = failed = 0
    for fn in selfcheck.CHECKS:
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - every failure is reported, none stops the run
            failed += 1
            print("FAIL selfcheck/%s: %s" % (fn.__name__, e or type(e).__name__))
            if os.environ.get("SOTTO_VERBOSE"):
                traceback.print_exc()
        else:
            passed += 1
            print("PASS selfcheck/%s" % fn.__name__)
    return passed, failed


def vectors_are_v1():
    try:
        with open(os.path.join(VECTORS, "README.md"), encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return False
    return "sotto v1 " in text and "sotto v2 " not in text


def run_vectors():
    passed = failed = 0
    files = sorted(glob.glob(os.path.join(VECTORS, "*.json")))
    v1 = vectors_are_v1()
    for path in files:
        name = os.path.basename(path)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if v1:
            print("SKIP vectors/%s: protocol version 1, not read by this v2 implementation" % name)
            continue
        try:
            json.loads(text)
        except ValueError as e:
            failed += 1
            print("FAIL vectors/%s: not JSON: %s" % (name, e))
            continue
        failed += 1
        print("FAIL vectors/%s: v2 vector file without a checker in verify.py yet" % name)
    if not files:
        print("SKIP vectors: no test-vectors/*.json under %s" % VECTORS)
    return passed, failed


def main():
    t0 = time.time()
    p1, f1 = run_selfchecks()
    p2, f2 = run_vectors()
    passed, failed = p1 + p2, f1 + f2
    print("%d passed, %d failed (%.1f s)" % (passed, failed, time.time() - t0))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
