#!/usr/bin/env python3
"""Shows that the §16 self-checks can fail: each entry changes one rule of sotto_sessions.py
(a copy, in a temporary directory) and runs the s16 self-checks on it; every change must fail
at least one of them. Not run by verify.py (about 4 s per change):

    python3 conformance/python/mutants_sessions.py [--vectors] [index ...]

With --vectors, each change runs against the §16 vector files alone (sessions.json and
sessions_negative.json through verify.py, no self-checks) instead, to show which rules
only the self-checks pin.

One change cannot be caught and is kept as documentation: 20 (trying the
sessions after a malformed frame: a message that decrypts on one session gives no
NonContributoryKey on another, so the deciding error stays InvalidEncoding).
"""

import os
import shutil
import subprocess
import sys
import tempfile

SRC = os.path.dirname(os.path.abspath(__file__))
EQUIVALENT = {20}
M = [  # (text in sotto_sessions.py, its replacement)
("return abs(now - then)", "return max(now - then, 0)"),
("if len(lst) > MAX_DEVICES_PER_USER:", "if len(lst) > MAX_DEVICES_PER_USER + 1:"),
("if k == self.local_identity and d != self.local_device:", "if k == self.local_identity and False:"),
("for d in [d for _, d in stale] + left_out:", "for d in left_out + [d for _, d in stale]:"),
("            if d not in listed and e.listed:", "            if d not in listed:"),
("            elif k != e.pending:", "            else:"),
("                if e.pending is not None:\n                    e.pending = None", "                if False:\n                    e.pending = None"),
("        e.active, e.archived = None, []\n        self.generation = bump(self.generation)\n\n    # ---- §16.3", "        self.generation = bump(self.generation)\n\n    # ---- §16.3"),
(">= MAX_UNANSWERED_SESSION_AGE", "> MAX_UNANSWERED_SESSION_AGE"),
("        if dev is None or not dev.listed:\n            fail(\"UnknownDevice\")\n        return dev", "        if dev is None:\n            fail(\"UnknownDevice\")\n        return dev"),
("        self.pinned = True\n        self.classical_allowed = False", "        self.pinned = True"),
("del self.archived[MAX_ARCHIVED_SESSIONS:]", "del self.archived[MAX_ARCHIVED_SESSIONS + 1:]"),
("self.archived.insert(0, entry)", "self.archived.append(entry)"),
("            return self.chunk[32:48]", "            return self.chunk[:16]"),
("        payload = bytes(payload)\n        if len(payload) > MAX_PAYLOAD_LEN:\n            fail(\"PlaintextTooLarge\")\n        chunks", "        payload = bytes(payload)\n        if len(payload) > MAX_PAYLOAD_LEN + 1:\n            fail(\"PlaintextTooLarge\")\n        chunks"),
("        if messages:\n            self.generation = bump(self.generation)\n        return messages, unusable", "        self.generation = bump(self.generation)\n        return messages, unusable"),
("        if not _eq(local.identity, self.local_identity):                      # 1", "        if False:"),
("            if not _eq(message.ik, dev.identity):", "            if False:"),
("if e.base_key == message.base_key), None)", "if False), None)"),
("        for e in dev.sessions():\n            try:", "        for e in reversed(dev.sessions()):\n            try:"),
("                if err.name == \"InvalidEncoding\":                  # decrypted, frame malformed", "                if False:"),
("err = special or first_error or", "err = first_error or special or"),
("if n.base_key < a.base_key:", "if n.base_key > a.base_key:"),
("if a is not None and a.ours_unanswered() and not names_a:", "if a is not None and a.ours_unanswered():"),
("dev.archive(a, n.base_key if names_a else None)", "dev.archive(a, None)"),
("elif a is not None and x.lost_to is not None and x.lost_to == a.base_key:", "elif False:"),
("                dev.archive(a, x.base_key)", "                dev.archive(a, None)"),
("        dev.unanswered = None\n        self.generation = bump(self.generation)\n        kind, value", "        self.generation = bump(self.generation)\n        kind, value"),
("        x.last_decrypt = now", "        pass"),
("    return s is not None and hint.ratchet_key == s.public", "    return False"),
("        if owner is dev.active:", "        if False:"),
("        if owner is dev.active:\n            return new_session(hint)\n        if dev.unanswered is not None:", "        if owner is dev.active:\n            return new_session(hint)\n        if dev.active.ours_unanswered():\n            return retry(hint)\n        if dev.unanswered is not None:"),
("return new_session(dev.unanswered)", "return new_session(hint)"),
("return retry(hint) if dev.active is not None else new_session(hint)", "return new_session(hint)"),
("or self.retry_count < MAX_RETRY_REQUESTS_PER_INTERVAL)", "or self.retry_count <= MAX_RETRY_REQUESTS_PER_INTERVAL)"),
("elapsed(now, self.last_recovery) >= MIN_RECOVERY_INTERVAL", "elapsed(now, self.last_recovery) > MIN_RECOVERY_INTERVAL"),
("        if dev.unanswered is None:\n            dev.unanswered = hint", "        dev.unanswered = hint"),
("            dev.retry_window, dev.retry_count = now, 0", "            dev.retry_count = 0"),
("if recovery_hint is not None and not dev.interval_allows(now):", "if False:"),
("            dev.last_recovery = now", "            pass"),
("stale_since) >= MAX_STALE_DEVICE_AGE]", "stale_since) > MAX_STALE_DEVICE_AGE]"),
("s.last_decrypt if s.last_decrypt is not None\n                                                     else s.created", "s.created"),
("        if self.generation < last_generation:\n            for e in", "        if self.generation <= last_generation:\n            for e in"),
("keys = [e.identity for e in self.devices.values() if e.listed]", "keys = [e.identity for e in self.devices.values()]"),
("\"DuplicatePreKeyMessage\": (\"ignore\", DUPLICATE),", ""),
("ACCEPT_BROKEN = {\"DuplicatePreKeyMessage\", \"UnknownSignedPreKey\",", "ACCEPT_BROKEN = {\"DuplicatePreKeyMessage\","),
("if flags not in (0, 1, 2):", "if flags not in (0, 1, 2, 3):"),
("if d <= prev or d == local_device:", "if d <= prev:"),
("                if e.pending == e.identity:\n                    fail(\"InvalidEncoding\")", "                pass"),
("            if any(s.session.key_agreement == S.PQXDH for s in ss) and not e.pinned:", "            if False:"),
("        if len(self.members) >= MAX_GROUP_MEMBERS:", "        if len(self.members) > MAX_GROUP_MEMBERS:"),
("allowed.update(e.identity for e in rec.devices.values())", "allowed.update(e.identity for e in rec.devices.values() if e.listed)"),
("                return Failure(RETRY_LATER, MISSING_DISTRIBUTION, e.name, e.fields)", "                return Failure(IGNORE, MALFORMED, e.name, e.fields)"),
("if g.members and not g.members[-1] < m:", "if g.members and g.members[-1] > m:"),
("            if len(body) != 32:", "            if len(body) < 32:"),
("for _ in range(SAFETY_ITERATIONS):", "for _ in range(SAFETY_ITERATIONS - 1):"),
("    a, b = sorted((fp_a, fp_b))", "    a, b = fp_a, fp_b"),
("if user not in self.members or user == self.local_user:", "if user not in self.members:"),
("        if dev.pending is not None:\n            fail(\"IdentityChangePending\")\n        # §16.8: a stale device", "        # §16.8: a stale device"),
("        new_sender = S.GroupSender.new(rng, self.group_id, local)\n        works, out = self._fanout(records, frame(FRAME_DISTRIBUTION, new_sender.distribution()), rng)",
 "        works, out = self._fanout(records, frame(FRAME_DISTRIBUTION, self.sender.distribution()), rng)\n        new_sender = S.GroupSender.new(rng, self.group_id, local)"),
("            if any(rec.user == self.local_user and not rec.is_own for rec in records):", "            if False:"),
("        if entry.session.key_agreement == S.PQXDH:\n            self.pin()", "        pass"),
("        if session.key_agreement == S.PQXDH:\n            dev.pin()", "        pass"),
("        if allowed and e.pinned:", "        if False:"),
("        if has_lost and active:", "        if False:"),
("        if na > MAX_ARCHIVED_SESSIONS:", "        if na > MAX_ARCHIVED_SESSIONS + 1:"),
("        if e.retry_count > MAX_RETRY_REQUESTS_PER_INTERVAL:", "        if e.retry_count > MAX_RETRY_REQUESTS_PER_INTERVAL + 1:"),
# The security fixes (F2 remembered devices, F3a, F3b, F4 group decrypt).
("self.remembered[d] = Remembered(e.identity, e.pinned,", "self.remembered[-d] = Remembered(e.identity, e.pinned,"),
("e.stale_since if e.stale_since is not None else now)", "now)"),
("                e.pinned = m.pinned\n", "\n"),
("                if k == m.identity:\n                    out[\"relisted\"].append(d)", "                if True:\n                    out[\"relisted\"].append(d)"),
("            if e is None and d in back:", "            if False:"),
("        if len(self.remembered) > MAX_DELETED_DEVICES:        # FINDING", "        if len(self.remembered) > MAX_DELETED_DEVICES + 1:        # FINDING"),
("if elapsed(now, m.left) >= MAX_STALE_DEVICE_AGE]:", "if elapsed(now, m.left) >= 0]:"),
("            if len(self.remembered) > MAX_DELETED_DEVICES:\n                fail", "            if False:\n                fail"),
("if elapsed(now, self.remembered[d].left) >= MAX_STALE_DEVICE_AGE]", "if elapsed(now, self.remembered[d].left) > MAX_STALE_DEVICE_AGE]"),
("        if gone or n or forgotten:", "        if gone or n:"),
("        b += u8(len(self.remembered))\n", ""),
("            if d <= prev or d == local_device or d in rec.devices:", "            if d <= prev or d == local_device:"),
("        if count > MAX_DELETED_DEVICES:", "        if count > MAX_DELETED_DEVICES + 1:"),
("                if d2 != d and t is not None and t == k:", "                if False:"),
("        if device_id in self.remembered:\n            return self.remembered[device_id].identity", "        if False:\n            return None"),
("                if not dev.listed:                                             # F3b", "                if False:"),
("            return Failure(IGNORE, WRONG_LOCAL_DEVICE, \"IdentityMismatch\")\n        if record.user", "            pass\n        if record.user"),
("            return Failure(IGNORE, MALFORMED, \"NotGroupMember\")", "            pass"),
("                return Failure(IGNORE, MALFORMED, \"IdentityMismatch\")\n            if dev.pending", "                pass\n            elif dev.pending"),
("                return Failure(RETRY_LATER, IDENTITY_CHANGE_PENDING, \"IdentityChangePending\")\n        work", "                pass\n        work"),
("if _eq(record.devices[d].identity, held.owner)), None)", "if _eq(record.devices[d].identity, held.owner) and record.devices[d].listed), None)"),
# F8 marks (§16.5) and the saved record's check (§16.11)
("        if lost_to is not None and not lost_to < entry.base_key:\n            lost_to = None", "        if False:\n            lost_to = None"),
("        if lost_to is not None and not lost_to < entry.base_key:", "        if lost_to is not None and not lost_to > entry.base_key:"),
("            if any(s.lost_to is not None and not s.lost_to < s.base_key for s in ss):", "            if False:"),
("            if any(s.lost_to is not None and not s.lost_to < s.base_key for s in ss):", "            if any(s.lost_to is not None and s.lost_to > s.base_key for s in ss):"),
# §16.6: a new session for a stale device; an unanswered request without the interval
("            if not dev.listed:                            # §16.6: no session with a stale device", "            if False:"),
("            if not dev.listed:                            # §16.6: no session with a stale device\n                return Failure(RETRY_LATER, UNKNOWN_DEVICE, \"UnknownDevice\")\n            if dev.interval_allows(now):\n                return Failure(START_NEW_SESSION, h, err.name, err.fields)\n",
 "            if dev.interval_allows(now):\n                if not dev.listed:\n                    return Failure(RETRY_LATER, UNKNOWN_DEVICE, \"UnknownDevice\")\n                return Failure(START_NEW_SESSION, h, err.name, err.fields)\n"),
("            if not dev.listed or dev.interval_allows(now):\n                return new_session(dev.unanswered)", "            if True:\n                return new_session(dev.unanswered)"),
("                return new_session(dev.unanswered)\n            return retry(hint)", "                return new_session(dev.unanswered)\n            return Failure(IGNORE, RECOVERY_PENDING, err.name, err.fields)"),
("                return new_session(dev.unanswered)\n            return retry(hint)", "                return new_session(dev.unanswered)\n            return retry(dev.unanswered)"),
# §16.8 dropped chains, §16.11 their saved form
("        if self.is_dropped(received.value.chain):\n            return S.UNCHANGED", "        if False:\n            return S.UNCHANGED"),
("        if self.is_dropped(received.value.chain):\n            return S.UNCHANGED", "        if self.is_dropped(received.value.chain):\n            self.generation = bump(self.generation)\n            return S.UNCHANGED"),
("            fail(\"InvalidEncoding\")\n        if record.user not in self.members:\n            fail(\"NotGroupMember\")", "            fail(\"InvalidEncoding\")\n        if self.is_dropped(received.value.chain):\n            return S.UNCHANGED\n        if record.user not in self.members:\n            fail(\"NotGroupMember\")"),
("            self._drop([(c, held_under[c]) for c in self.store.trace.get(\"evicted\", [])])", "            pass"),
("            self._drop([(h.chain, h.owner) for h in st.receivers if h.owner not in allowed])", "            pass"),
("            self.store = S.GroupReceivers(self.group_id)", "            self._drop([(h.chain, h.owner) for h in self.store.receivers])\n            self.store = S.GroupReceivers(self.group_id)"),
# §16.8 the owner recorded, the dropped test by chain id, the forgetting rule (per owner)
("        if self.is_dropped(received.value.chain):", "        if (received.value.chain, received.identity) in self.dropped:"),
("            self._drop([(c, held_under[c]) for c in", "            self._drop([(c, received.identity) for c in"),
("            self._drop([(h.chain, h.owner) for h in st.receivers if", "            self._drop([(h.chain, self.sender.owner) for h in st.receivers if"),
("                del self.dropped[next(i for i, (_, o) in enumerate(self.dropped) if counts[o] == top)]", "                del self.dropped[0]"),
("                counts = {}\n", "                counts = {entry[1]: 1}\n"),
("                del self.dropped[next(i for i, (_, o) in enumerate(self.dropped) if counts[o] == top)]", "                del self.dropped[max(i for i, (_, o) in enumerate(self.dropped) if counts[o] == top)]"),
("                del self.dropped[next(i for i, (_, o) in enumerate(self.dropped) if counts[o] == top)]", "                del self.dropped[min((o, i) for i, (_, o) in enumerate(self.dropped) if counts[o] == top)[1]]"),
("                top = max(counts.values())", "                top = min(counts.values())"),
("            if len(self.dropped) >= MAX_DROPPED_CHAINS:", "            if len(self.dropped) > MAX_DROPPED_CHAINS:"),
("        for entry in entries:\n            if len(self.dropped) >= MAX_DROPPED_CHAINS:\n                counts = {}\n                for _, owner in self.dropped:\n                    counts[owner] = counts.get(owner, 0) + 1\n", "        counts = {}\n        for _, owner in self.dropped:\n            counts[owner] = counts.get(owner, 0) + 1\n        for entry in entries:\n            if len(self.dropped) >= MAX_DROPPED_CHAINS:\n"),
# §16.11 the 64-byte entries and the checks after TrailingBytes
("        if n > MAX_DROPPED_CHAINS:", "        if n > MAX_DROPPED_CHAINS + 1:"),
("        if len(set(chains)) != n or any(", "        if any("),
("        if len(set(chains)) != n or any(g.store.find(c) is not None for c in chains):", "        if len(set(chains)) != n:"),
("        if len(set(chains)) != n or any(", "        if len(set(g.dropped)) != n or any("),
("any(g.store.find(c) is not None for c in chains)", "any(g.store.find(c) is not None and g.store.find(c).owner == o for c, o in g.dropped)"),
("        for chain, owner in self.dropped:\n            b += chain + owner", "        for chain, owner in reversed(self.dropped):\n            b += chain + owner"),
("            b += chain + owner", "            b += owner + chain"),
("        g.dropped = [(r.take(32), r.take(32)) for _ in range(n)]", "        g.dropped = [(r.take(32), r.take(32))[::-1] for _ in range(n)]"),
("        g.dropped = [(r.take(32), r.take(32)) for _ in range(n)]", "        g.dropped = [(r.take(32), bytes(32)) for _ in range(n)]"),
# §16.6 as of s-fixes 8653c3d: a stale device with an unanswered request, whatever the interval
("            if not dev.listed or dev.interval_allows(now):", "            if dev.interval_allows(now):"),
# §16.8 install: UnknownDevice for a stale device, after IdentityChangePending, before the dropped check
("        if not dev.listed:\n            fail(\"UnknownDevice\")\n        # §16.8: a dropped", "        if False:\n            fail(\"UnknownDevice\")\n        # §16.8: a dropped"),
("        if not dev.listed:\n            fail(\"UnknownDevice\")\n        # §16.8: a dropped", "        if not dev.listed:\n            return S.UNCHANGED\n        # §16.8: a dropped"),
("        if not dev.listed:\n            fail(\"UnknownDevice\")\n        # §16.8: a dropped", "        if self.is_dropped(received.value.chain):\n            return S.UNCHANGED\n        if not dev.listed:\n            fail(\"UnknownDevice\")\n        # §16.8: a dropped"),
("        if dev.pending is not None:\n            fail(\"IdentityChangePending\")\n        # §16.8: a stale device", "        if not dev.listed:\n            fail(\"UnknownDevice\")\n        if dev.pending is not None:\n            fail(\"IdentityChangePending\")\n        # §16.8: a stale device"),
("        dev = record.devices.get(received.device)\n", "        dev = record.devices.get(received.device)\n        if dev is not None and not dev.listed:\n            fail(\"UnknownDevice\")\n"),
("        if not dev.listed:\n            fail(\"UnknownDevice\")\n        # §16.8: a dropped", "        if not dev.listed and self.store.find(received.value.chain) is None:\n            fail(\"UnknownDevice\")\n        # §16.8: a dropped"),
]
args = sys.argv[1:]
use_vectors = "--vectors" in args
only = [int(x) for x in args if x != "--vectors"]
src = open(os.path.join(SRC, 'sotto_sessions.py')).read()
VECTORS = os.path.abspath(os.path.join(SRC, '..', '..', 'test-vectors'))
surv = []
for i, (old, new) in enumerate(M):
    if only and i not in only: continue
    if src.count(old) != 1:
        print("mutant %d: pattern found %d times: %r" % (i, src.count(old), old[:60]))
        surv.append(i)                  # a stale pattern tests nothing: it fails the run
        continue
    d = tempfile.mkdtemp()
    for f in os.listdir(SRC) if use_vectors else ('sotto_spec.py', 'selfcheck.py', 'selfcheck_sessions.py'):
        if f.endswith('.py'):
            shutil.copy(os.path.join(SRC, f), d)
    open(os.path.join(d, 'sotto_sessions.py'), 'w').write(src.replace(old, new))
    if use_vectors:
        env = dict(os.environ, SOTTO_ONLY='sessions.json,sessions_negative.json', SOTTO_VECTORS=VECTORS)
        r = subprocess.run([sys.executable, os.path.join(d, 'verify.py')], capture_output=True, text=True, env=env)
        bad = [ln.split(':')[0][5:] for ln in r.stdout.splitlines() if ln.startswith('FAIL ')]
        out = ','.join(bad) if bad else ('NONE' if r.returncode == 0 else 'CRASH ' + r.stderr[-200:])
    else:
        code = "import sys; sys.path.insert(0, %r)\nimport selfcheck, selfcheck_sessions\nbad=[]\nfor fn in selfcheck.CHECKS:\n    if fn.__name__.startswith('s16'):\n        try: fn()\n        except Exception as e: bad.append(fn.__name__)\nprint(','.join(bad) or 'NONE')\n" % d
        r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
        out = (r.stdout.strip().splitlines() or ['CRASH ' + r.stderr[-200:]])[-1]
    if out == 'NONE':
        surv.append(i)
    print("mutant %2d: %s  <- %r" % (i, "SURVIVED" if out == 'NONE' else "killed by " + out[:80], new[:50]))
    sys.stdout.flush()
    shutil.rmtree(d)
print("survivors:", surv, "(equivalent: %s)" % sorted(EQUIVALENT))
sys.exit(1 if set(surv) - EQUIVALENT else 0)
