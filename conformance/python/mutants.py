#!/usr/bin/env python3
"""Checks that vectors.py can fail: alters one recorded value of a vector at a
time and reports the alterations the runner still passes ("survivors").

    python3 conformance/python/mutants.py [file.json ...] [--per-vector N] [--seed S]
    python3 conformance/python/mutants.py --actions [file.json ...]

Each mutant changes one leaf of one vector (a hex string gets its last digit
changed, an integer +1, a boolean negated, null becomes a value, any other
string an appended "x"). Notes (`description`, `mutation`, `message_id`,
`plaintext_text`, `then_dropped`) are not mutated. A survivor is not
necessarily a gap (an input byte a failing check never reaches changes
nothing); each one is printed for a human to judge. verify.py runs a small
fixed sample of these (see `sampled_mutants`).
"""

from __future__ import annotations

import copy
import glob
import json
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import vectors  # noqa: E402

NOTE_KEYS = {"description", "mutation", "message_id", "plaintext_text", "then_dropped", "name", "frame"}


def leaves(x, path=()):
    if isinstance(x, dict):
        for k, v in x.items():
            if k in NOTE_KEYS:
                continue
            yield from leaves(v, path + (k,))
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from leaves(v, path + (i,))
    else:
        yield path, x


def mutate_value(v):
    if isinstance(v, bool):
        return not v
    if isinstance(v, int):
        return v + 1
    if v is None:
        return "00"
    if isinstance(v, str):
        if v and all(c in "0123456789abcdef" for c in v) and len(v) % 2 == 0:
            return v[:-1] + ("1" if v[-1] != "1" else "2")
        return v + "x"
    return v


def set_path(x, path, value):
    for p in path[:-1]:
        x = x[p]
    x[path[-1]] = value


def run_one(doc, vector):
    """Runs one (altered) vector of a document; -> None if it passes, else the reason."""
    d = dict(doc)
    d["vectors"] = [vector]
    failures = []

    def report(name, error):
        if error is not None:
            failures.append((name, error))

    tmp = "/tmp/sotto-mutant-%d.json" % os.getpid()
    with open(tmp, "w") as f:
        json.dump(d, f)
    try:
        vectors.run_file(tmp, report)
    except Exception as e:  # noqa: BLE001 - a crash is the runner's bug, not a catch
        raise SystemExit("runner crashed on %s: %r" % (vector["name"], e))
    finally:
        os.unlink(tmp)
    return failures


def sampled_mutants(path, per_vector, seed, only_vector=None):
    """-> (tried, survivors) for one file."""
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    rnd = random.Random("%s %s" % (seed, os.path.basename(path)))
    tried, survivors = 0, []
    for idx, v in enumerate(doc["vectors"]):
        if only_vector is not None and v["name"] != only_vector:
            continue
        base = run_one(doc, v)
        if base:
            raise SystemExit("%s: the unaltered vector fails: %s" % (v["name"], base))
        ls = list(leaves(v))
        picks = ls if per_vector is None or per_vector >= len(ls) else rnd.sample(ls, per_vector)
        for p, old in picks:
            nv = copy.deepcopy(v)
            set_path(nv, p, mutate_value(old))
            tried += 1
            if not run_one(doc, nv):
                survivors.append((v["name"], p))
    return tried, survivors


OUTPUT_KEYS = {"error", "out", "states", "trace"}


def output_mutants(path, count, seed):
    """-> (tried, survivors): `count` alterations of recorded results (errors, outputs, states,
    traces; any value of kdf.json), each of which the runner must reject."""
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    rnd = random.Random("%s %s" % (seed, os.path.basename(path)))
    pool = []
    for idx, v in enumerate(doc["vectors"]):
        for p, old in leaves(v):
            if doc["area"] == "kdf" and p[0] not in ("kind", "info", "next_info", "level"):
                pool.append((idx, p, old))
            elif OUTPUT_KEYS & {x for x in p if isinstance(x, str)}:
                pool.append((idx, p, old))
    survivors = []
    picks = rnd.sample(pool, min(count, len(pool)))
    for idx, p, old in picks:
        nv = copy.deepcopy(doc["vectors"][idx])
        set_path(nv, p, mutate_value(old))
        if not run_one(doc, nv):
            survivors.append((doc["vectors"][idx]["name"], p))
    return len(picks), survivors


def action_mutants(path):
    """-> (tried, survivors): every recorded §16.6 action (`error.action`) of the file altered
    every way (another kind, another reason, each hint field), each of which must be rejected."""
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    kinds = ["Ignore", "RetryLater", "RequestRetry", "StartNewSession"]
    tried, survivors = 0, []
    for idx, v in enumerate(doc["vectors"]):
        steps = v["steps"] if "steps" in v else [v]
        for si, st in enumerate(steps):
            act = (st.get("error") or {}).get("action")
            if act is None:
                continue
            alts = []
            for k in kinds:
                if k != act["kind"]:
                    alt = {"kind": k}
                    if k in ("Ignore", "RetryLater"):
                        alt["reason"] = act.get("reason", "Malformed")
                    else:
                        alt["hint"] = act.get("hint", {"ratchet_key": "00" * 32, "message_number": 0,
                                                       "base_key": None})
                    alts.append(alt)
            if "reason" in act:
                alts.append(dict(act, reason=act["reason"] + "x"))
            for f in ("ratchet_key", "message_number", "base_key"):
                if "hint" in act:
                    alts.append(dict(act, hint=dict(act["hint"], **{f: mutate_value(act["hint"][f])})))
            for alt in alts:
                nv = copy.deepcopy(v)
                target = nv["steps"][si] if "steps" in nv else nv
                target["error"]["action"] = alt
                tried += 1
                if not run_one(doc, nv):
                    survivors.append((v["name"], (si, json.dumps(alt))))
    return tried, survivors


def main(argv):
    if argv and argv[0] == "--actions":
        files = argv[1:] or sorted(glob.glob(os.path.join(HERE, "..", "..", "test-vectors", "sessions*.json")))
        bad = 0
        for f in files:
            tried, surv = action_mutants(f)
            bad += len(surv)
            print("%s: %d altered actions, %d survived" % (os.path.basename(f), tried, len(surv)))
            for name, p in surv:
                print("  SURVIVED %s %s" % (name, p))
        return 1 if bad else 0
    per, seed, files = 8, "mutants", []
    it = iter(argv)
    for a in it:
        if a == "--per-vector":
            per = int(next(it))
            per = None if per <= 0 else per
        elif a == "--seed":
            seed = next(it)
        else:
            files.append(a)
    if not files:
        files = sorted(glob.glob(os.path.join(HERE, "..", "..", "test-vectors", "*.json")))
    total = 0
    for f in files:
        tried, surv = sampled_mutants(f, per, seed)
        total += len(surv)
        print("%s: %d mutants, %d survived" % (os.path.basename(f), tried, len(surv)))
        for name, p in surv:
            print("  SURVIVED %s %s" % (name, "/".join(map(str, p))))
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
