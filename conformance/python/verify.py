#!/usr/bin/env python3
"""Check sotto_spec.py (SPEC v2) against its self-checks and every test vector.

Prints one `PASS name` or `FAIL name: reason` line per self-check and per
vector (test-vectors/*.json, format 2; `vectors.py` replays them; the two
tables also get a line for their fixtures), then `N passed, M failed`; exits 1
on any failure. A last self-check alters a fixed sample of recorded results
(`mutants.py`) and demands that the runner reject every one. Set SOTTO_VECTORS
to another directory of vectors, SOTTO_ONLY to a comma-separated list of files
to run (self-checks skipped). Disagreements with the vectors, decided from
SPEC.md, are in SPEC-FINDINGS.md.
"""

from __future__ import annotations

import glob
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import mutants  # noqa: E402
import selfcheck  # noqa: E402
import selfcheck_sessions  # noqa: E402,F401 - registers the §16 self-checks
import vectors  # noqa: E402

VECTORS = os.environ.get("SOTTO_VECTORS", os.path.join(HERE, "..", "..", "test-vectors"))


class Tally:
    def __init__(self):
        self.passed = self.failed = 0

    def report(self, name, error):
        if error is None:
            self.passed += 1
            print("PASS %s" % name)
        else:
            self.failed += 1
            print("FAIL %s: %s" % (name, error))
        sys.stdout.flush()


def run_selfchecks(t):
    for fn in selfcheck.CHECKS:
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - every failure is reported, none stops the run
            if os.environ.get("SOTTO_VERBOSE"):
                traceback.print_exc()
            t.report("selfcheck/%s" % fn.__name__, str(e) or type(e).__name__)
        else:
            t.report("selfcheck/%s" % fn.__name__, None)


def run_vectors(t):
    files = sorted(glob.glob(os.path.join(VECTORS, "*.json")))
    only = os.environ.get("SOTTO_ONLY")
    if only:
        files = [f for f in files if os.path.basename(f) in only.split(",")]
    if not files:
        t.report("vectors", "no test-vectors/*.json under %s" % VECTORS)
    for path in files:
        start = time.time()
        try:
            vectors.run_file(path, t.report)
        except Exception as e:  # noqa: BLE001 - a broken file is one failure, the others still run
            if os.environ.get("SOTTO_VERBOSE"):
                traceback.print_exc()
            t.report("vectors/%s" % os.path.basename(path), "%s: %s" % (type(e).__name__, e))
        print("# %s: %.1f s" % (os.path.basename(path), time.time() - start))


def run_runner_check(t):
    """The runner can fail: altered recorded results (a fixed sample per file) must be rejected."""
    files = sorted(glob.glob(os.path.join(VECTORS, "*.json")))
    tried, survivors = 0, []
    for path in files:
        n, surv = mutants.output_mutants(path, MUTANTS_PER_FILE, "verify.py")
        tried += n
        survivors += ["%s/%s %s" % (os.path.basename(path), name, "/".join(map(str, p))) for name, p in surv]
    if not tried:
        error = "no altered vector tried"
    elif survivors:
        error = "%d altered vectors accepted: %s" % (len(survivors), "; ".join(survivors[:5]))
    else:
        error = None
    t.report("selfcheck/vector_runner_rejects_%d_altered_results" % tried, error)


MUTANTS_PER_FILE = 3


def main():
    t0 = time.time()
    t = Tally()
    if not os.environ.get("SOTTO_ONLY"):
        run_selfchecks(t)
    run_vectors(t)
    if not os.environ.get("SOTTO_ONLY"):
        start = time.time()
        run_runner_check(t)
        print("# altered vectors: %.1f s" % (time.time() - start))
    print("%d passed, %d failed (%.1f s)" % (t.passed, t.failed, time.time() - t0))
    return 1 if t.failed else 0


if __name__ == "__main__":
    sys.exit(main())
