"""Self-checks of sotto_sessions.py (SPEC v2 §16) that need no test vectors.

Registered into selfcheck.CHECKS, so verify.py runs them with the others. Each check
states its rule (section in its docstring) and demands exact outcomes, errors and
unchanged objects on failure; several run two sides of a conversation against each
other, so a wrong rule on one side shows up as a disagreement.
"""

from __future__ import annotations

import copy
import hashlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sotto_spec as S  # noqa: E402
import sotto_sessions as L  # noqa: E402
from selfcheck import check, expect, device  # noqa: E402
from sotto_spec import SeededRng, FailingRng, SottoError  # noqa: E402

T0 = 1_000_000


def unchanged_all(objs, fn, name, **fields):
    """fn() fails with `name` and leaves every object's saved form as it was."""
    before = [o.to_bytes() for o in objs]
    e = expect(name, fn, **fields)
    assert [o.to_bytes() for o in objs] == before, "a failing call changed its objects"
    return e


def failure_unchanged(objs, fn):
    """fn() returns a Failure and changes nothing (§16.6)."""
    before = [o.to_bytes() for o in objs]
    res = fn()
    assert isinstance(res, L.Failure), "wanted a Failure, got %r" % (res,)
    assert [o.to_bytes() for o in objs] == before, "a Failure changed the record or the device"
    return res


class Party:
    """One device of one user, with its records of other users (an application of §16)."""

    def __init__(self, user, dev_id, label, opks=6, kem_otks=3):
        self.user, self.dev_id, self.label = user, dev_id, label
        self.device = device(label, opks=opks, kem_otks=kem_otks)
        self.records = {}
        self.rng = SeededRng("rng " + label)
        self.sent = {}                    # hint bytes -> (to user, to device, payload)

    @property
    def identity(self):
        return self.device.identity

    def rec(self, other):
        return self.records[other.user if isinstance(other, Party) else other]

    def know(self, *devices, now=T0):
        """Records of the users of `devices` (Party objects), with these devices listed."""
        by_user = {}
        for p in devices:
            by_user.setdefault(p.user, []).append(p)
        for user, ps in by_user.items():
            if user == self.user:
                r = self.records.setdefault(user, L.PeerRecord.new_own(self.device, user, self.dev_id))
            else:
                r = self.records.setdefault(user, L.PeerRecord.new(self.device, user))
            held = [(d, e.identity) for d, e in r.devices.items() if e.listed]
            r.update_devices(held + [(p.dev_id, p.identity) for p in ps], now)
        return self

    def bundle(self, opk=True, kem="one_time"):
        """What a server hands out for this device: its lowest one-time keys, if any."""
        opk_id = min(self.device.opks) if opk and self.device.opks else None
        if kem == "one_time" and self.device.kem_otks:
            kem_id = self.device.kem_otks[0].id
        elif kem is None:
            kem_id = None
        else:
            kem_id = "last_resort"
        return self.device.bundle(opk_id=opk_id, kem_id=kem_id)

    def log_sent(self, to, msg, payload):
        self.sent[L.RetryHint.of(S.parse_message(msg)).to_bytes()] = (to.user, to.dev_id, payload)

    def start(self, peer, now=T0, **kw):
        self.rec(peer).add_bundle(self.device, peer.dev_id, peer.bundle(**kw), now, self.rng)

    def send(self, peer, payload, now=T0):
        msg = self.rec(peer).encrypt_to(peer.dev_id, payload, self.rng)
        self.log_sent(peer, msg, payload)
        return msg

    def recv(self, sender, msg, now=T0):
        return self.rec(sender).decrypt(self.device, sender.dev_id, msg, now)


def received(res, payload=None, kind=L.FRAME_PAYLOAD):
    assert isinstance(res, L.Received), "wanted a decrypt, got %r" % (res,)
    assert res.kind == kind, "content kind %r" % res.kind
    if payload is not None:
        assert res.value == payload, "payload %r" % (res.value,)
    return res


def active_base(p, q):
    e = p.rec(q).devices[q.dev_id].active
    return None if e is None else e.base_key


def parties(tag=""):
    a = Party(b"alice", 1, "alice" + tag)
    b = Party(b"bob", 7, "bob" + tag)
    a.know(b)
    b.know(a)
    return a, b


def talking(tag=""):
    """Alice started a session with Bob, Bob replied: both hold it as active."""
    a, b = parties(tag)
    a.start(b)
    received(b.recv(a, a.send(b, b"hello")), b"hello")
    received(a.recv(b, b.send(a, b"hi")), b"hi")
    return a, b


# ---------------------------------------------------------------------------
# §16.10 Framing, §16.9 Safety numbers
# ---------------------------------------------------------------------------

@check
def s16_framing():
    """§16.10: the four kinds, exact bodies; anything else is InvalidEncoding (malformed)."""
    k = S.pub(b"\x01" * 32)
    base = S.pub(b"\x02" * 32)
    h37 = L.RetryHint(k, 5).to_bytes()
    h69 = L.RetryHint(k, 2**32 - 1, base).to_bytes()
    assert len(h37) == 37 and len(h69) == 69 and h69[32:36] == b"\xff" * 4 and h69[36] == 1
    assert L.parse_frame(b"\x01") == (1, b"")
    assert L.parse_frame(b"\x01abc") == (1, b"abc")
    assert L.parse_frame(b"\x03" + h37) == (3, L.RetryHint(k, 5))
    assert L.parse_frame(b"\x03" + h69)[1].base_key == base
    assert L.parse_frame(b"\x04" + b"\x07" * 32) == (4, b"\x07" * 32)
    snd = S.GroupSender.new(SeededRng("frame chain"), b"\x07" * 32, device("alice"))
    dist = snd.distribution()
    assert len(dist) == 486
    kind, d = L.parse_frame(b"\x02" + dist)
    assert kind == 2 and d.to_bytes() == dist
    bad_key = b"\xff" * 32                                   # 2^256 - 1: not canonical
    for pt in (b"", b"\x00", b"\x05", b"\xff" + h37, b"\x02" + dist[:-1], b"\x02" + dist + b"\x00",
               b"\x02" + dist[:422], b"\x03" + h37[:-1], b"\x03" + h37 + b"\x00", b"\x03" + h69[:-1],
               b"\x03" + h37[:36] + b"\x02", b"\x03" + bad_key + h37[32:],
               b"\x03" + h69[:37] + bad_key, b"\x04" + bytes(31), b"\x04" + bytes(33),
               b"\x02" + dist[:34] + b"\x01" + bytes(31) + dist[66:]):   # chain: identity point
        expect("InvalidEncoding", lambda pt=pt: L.parse_frame(pt))
    # A retry hint in the saved form: a non-canonical key is InvalidPublicKey there.
    expect("InvalidPublicKey", lambda: L.RetryHint.read(S.Reader(bad_key + h37[32:])))
    expect("InvalidEncoding", lambda: L.RetryHint.read(S.Reader(h37[:36] + b"\x02")))


def independent_fingerprint(uid, keys):
    """§16.9 written out again with hashlib alone."""
    ks = sorted(set(keys))
    x = b"sotto v2 safety number" + bytes([len(uid)]) + uid + bytes([len(ks)]) + b"".join(ks)
    cur = x
    for _ in range(5200):
        cur = hashlib.sha512(cur + x).digest()
    return "".join(str(int(cur[i:i + 5].hex(), 16) % 100000).zfill(5) for i in range(0, 30, 5))


@check
def s16_safety_numbers():
    """§16.9: 5200 SHA-512 iterations over sorted keys; 30 digits; pairs smaller first;
    InvalidDeviceList for no key or a key twice; records count listed trusted identities."""
    k1, k2, k3 = (S.ed25519_public(bytes([i]) * 32) for i in (1, 2, 3))
    f = L.user_fingerprint(b"alice", [k2, k1])
    assert f == independent_fingerprint(b"alice", [k1, k2]) and len(f) == 30 and f.isdigit()
    assert f == L.user_fingerprint(b"alice", [k1, k2]), "key order does not matter"
    assert f != L.user_fingerprint(b"alicf", [k1, k2]) != L.user_fingerprint(b"alice", [k1, k3])
    assert L.user_fingerprint(b"a", [k1]) == independent_fingerprint(b"a", [k1])
    expect("InvalidDeviceList", lambda: L.user_fingerprint(b"alice", []))
    expect("InvalidDeviceList", lambda: L.user_fingerprint(b"alice", [k1, k1]))
    g = L.user_fingerprint(b"bob", [k3])
    sn = L.safety_number(f, g)
    assert sn == L.safety_number(g, f)
    assert len(sn) == 71 and sn.count(" ") == 11 and all(len(x) == 5 for x in sn.split(" "))
    assert sn.replace(" ", "") == min(f, g) + max(f, g)
    # Records: listed trusted identities (a pending identity counts with its trusted one),
    # the own record adds local_identity; stale devices do not count.
    me = device("alice")
    r = L.PeerRecord.new(me, b"bob")
    expect("InvalidDeviceList", r.fingerprint)
    r.update_devices([(1, k1), (2, k2)], T0)
    assert r.fingerprint() == independent_fingerprint(b"bob", [k1, k2])
    r.update_devices([(1, k3), (2, k2)], T0)                  # 1's change is pending
    assert r.fingerprint() == independent_fingerprint(b"bob", [k1, k2])
    r.acknowledge_identity(1, k3)
    assert r.fingerprint() == independent_fingerprint(b"bob", [k3, k2])
    r.update_devices([(2, k2)], T0)                           # 1 is stale now
    assert r.fingerprint() == independent_fingerprint(b"bob", [k2])
    own = L.PeerRecord.new_own(me, b"alice", 9)
    assert own.fingerprint() == independent_fingerprint(b"alice", [me.identity])
    own.update_devices([(9, me.identity), (3, k1)], T0)
    assert own.fingerprint() == independent_fingerprint(b"alice", [me.identity, k1])


# ---------------------------------------------------------------------------
# §16.1, §16.2 Records and device lists
# ---------------------------------------------------------------------------

@check
def s16_user_ids_and_new_records():
    """§16.1: user ids of 1 to 64 bytes (else InvalidEncoding); a new record is empty at generation 0."""
    me = device("alice")
    expect("InvalidEncoding", lambda: L.PeerRecord.new(me, b""))
    expect("InvalidEncoding", lambda: L.PeerRecord.new(me, b"x" * 65))
    r = L.PeerRecord.new(me, b"x" * 64)
    assert r.generation == 0 and r.devices == {} and not r.is_own
    assert L.PeerRecord.new_own(me, b"x", 0).is_own


@check
def s16_update_devices_validation():
    """§16.2: InvalidDeviceList for more than 16 entries, a device twice, an identity twice,
    local_identity on another device; nothing changes."""
    me = device("alice")
    keys = [S.ed25519_public(S.SHA256(b"dl %d" % i)) for i in range(18)]
    r = L.PeerRecord.new(me, b"bob")
    own = L.PeerRecord.new_own(me, b"alice", 5)
    for rec in (r, own):
        unchanged_all([rec], lambda: rec.update_devices([(i, keys[i]) for i in range(17)], T0), "InvalidDeviceList")
        unchanged_all([rec], lambda: rec.update_devices([(1, keys[1]), (1, keys[2])], T0), "InvalidDeviceList")
        unchanged_all([rec], lambda: rec.update_devices([(1, keys[1]), (2, keys[1])], T0), "InvalidDeviceList")
        unchanged_all([rec], lambda: rec.update_devices([(1, me.identity)], T0), "InvalidDeviceList")
    rec16 = [(i, keys[i]) for i in range(16)]
    r.update_devices(rec16, T0)
    assert len(r.devices) == 16
    # The own record: the local device may be listed with local_identity (16 entries in all),
    # and a key given both to the local device and another device is a key twice.
    out = own.update_devices([(5, me.identity)] + [(i + 6, keys[i]) for i in range(15)], T0)
    assert out["local"] == (L.LISTED, None) and len(own.devices) == 15
    unchanged_all([own], lambda: own.update_devices([(5, keys[0]), (6, keys[0])], T0), "InvalidDeviceList")
    out = own.update_devices([(5, keys[16])] + [(i + 6, keys[i]) for i in range(15)], T0)
    assert out["local"] == (L.OTHER_IDENTITY, S.fingerprint(keys[16]))
    out = own.update_devices([(i + 6, keys[i]) for i in range(15)], T0)
    assert out["local"] == (L.MISSING, None)
    assert 5 not in own.devices


@check
def s16_update_devices_outcomes():
    """§16.2 steps 3-4 and the generation: added, removed (stale at now), relisted, identity
    change (pending, reported once), withdrawn; an unchanged list moves nothing."""
    me = device("alice")
    k = [S.ed25519_public(S.SHA256(b"oc %d" % i)) for i in range(6)]
    r = L.PeerRecord.new(me, b"bob")
    out = r.update_devices([(3, k[3]), (1, k[1])], T0)
    assert out["added"] == [1, 3] and r.generation == 1 and out["local"] is None
    out = r.update_devices([(1, k[1]), (3, k[3])], T0 + 5)
    assert not any(out[x] for x in out if x != "local") and r.generation == 1
    out = r.update_devices([(1, k[1])], T0 + 10)
    assert out["removed"] == [3] and r.devices[3].stale_since == T0 + 10 and r.generation == 2
    out = r.update_devices([(1, k[1])], T0 + 20)
    assert out["removed"] == [] and r.devices[3].stale_since == T0 + 10 and r.generation == 2
    out = r.update_devices([(1, k[2]), (3, k[3])], T0 + 30)
    assert out["relisted"] == [3] and r.devices[3].listed
    ch = out["identity_changes"]
    assert ch == [{"device": 1, "trusted_fingerprint": S.fingerprint(k[1]), "new_fingerprint": S.fingerprint(k[2]),
                   "identity": k[2]}] and r.devices[1].pending == k[2] and r.devices[1].identity == k[1]
    g = r.generation
    out = r.update_devices([(1, k[2]), (3, k[3])], T0 + 40)
    assert out["identity_changes"] == [] and r.generation == g, "a pending change is reported once"
    out = r.update_devices([(1, k[4]), (3, k[3])], T0 + 40)
    assert [c["identity"] for c in out["identity_changes"]] == [k[4]] and r.devices[1].pending == k[4]
    out = r.update_devices([(1, k[1]), (3, k[3])], T0 + 50)
    assert out["withdrawn"] == [1] and r.devices[1].pending is None and r.generation == g + 2
    # acknowledge_identity: UnknownDevice, IdentityMismatch (not the pending one, or none).
    unchanged_all([r], lambda: r.acknowledge_identity(9, k[2]), "UnknownDevice")
    unchanged_all([r], lambda: r.acknowledge_identity(1, k[1]), "IdentityMismatch")
    r.update_devices([(1, k[5]), (3, k[3])], T0 + 60)
    unchanged_all([r], lambda: r.acknowledge_identity(1, k[2]), "IdentityMismatch")
    g = r.generation
    r.acknowledge_identity(1, k[5])
    assert r.devices[1].identity == k[5] and r.devices[1].pending is None and r.generation == g + 1


@check
def s16_update_devices_room():
    """§16.2 step 2: to make room, the devices already stale and not listed go first, by
    (stale_since, id), then the held devices the list leaves out, by id; reported deleted."""
    me = device("alice")
    k = [S.ed25519_public(S.SHA256(b"room %d" % i)) for i in range(40)]
    r = L.PeerRecord.new(me, b"bob")
    r.update_devices([(i, k[i]) for i in range(16)], T0)
    r.update_devices([(i, k[i]) for i in range(8, 16)], T0 + 100)       # 0..7 stale at +100
    r.update_devices([(i, k[i]) for i in [0, 1] + list(range(10, 16))], T0 + 50)   # 8, 9 stale at +50
    assert r.devices[0].listed and r.devices[8].stale_since == T0 + 50 and r.devices[2].stale_since == T0 + 100
    # Held: 16 (stale: 2..9). New: 20..25 (6) -> 6 deletions: 8, 9 (stale at +50), then 2, 3, 4, 5.
    out = r.update_devices([(i, k[i]) for i in [0, 1] + list(range(10, 16)) + list(range(20, 26))], T0 + 200)
    assert out["deleted"] == [8, 9, 2, 3, 4, 5], out["deleted"]
    assert out["added"] == list(range(20, 26)) and len(r.devices) == 16
    # Then the listed-but-left-out ones, by id, after every stale one.
    lst = [(i, k[i]) for i in range(26, 40)] + [(21, k[21]), (20, k[20])]
    out = r.update_devices(lst, T0 + 300)
    # Held 16: stale 6, 7; listed 0, 1, 10..15, 20..25. New 14 -> delete 14: 6, 7, then 0, 1, 10..15, 22..25.
    assert out["deleted"] == [6, 7, 0, 1, 10, 11, 12, 13, 14, 15, 22, 23, 24, 25], out["deleted"]
    assert out["removed"] == [] and sorted(r.devices) == [20, 21] + list(range(26, 40))
    # Fewer deletions than candidates: only as many as needed, and the rest become stale.
    out = r.update_devices([(i, k[i]) for i in range(28, 40)] + [(1, k[1]), (2, k[2]), (3, k[3])], T0 + 400)
    assert out["deleted"] == [20, 21, 26], out["deleted"]
    assert out["removed"] == [27] and r.devices[27].stale_since == T0 + 400 and len(r.devices) == 16


# ---------------------------------------------------------------------------
# §16.3 Sending, §16.4 pinning
# ---------------------------------------------------------------------------

@check
def s16_add_bundle_checks():
    """§16.3 add_bundle, in order: local (IdentityMismatch), held and listed (UnknownDevice),
    IdentityChangePending, the bundle's identity (IdentityMismatch), its signatures
    (InvalidSignature), the policy (PostQuantumRequired), then initiate's draws."""
    a, b = parties("ab")
    rec = a.rec(b)
    other = device("carol")
    bundle = b.bundle()
    unchanged_all([rec], lambda: rec.add_bundle(other, b.dev_id, bundle, T0, FailingRng()), "IdentityMismatch")
    unchanged_all([rec], lambda: rec.add_bundle(a.device, 99, bundle, T0, FailingRng()), "UnknownDevice")
    wrong = device("carol").bundle()
    unchanged_all([rec], lambda: rec.add_bundle(a.device, b.dev_id, wrong, T0, FailingRng()), "IdentityMismatch")
    bad = S.PreKeyBundle.from_bytes(bundle.to_bytes())
    bad.spk_sig = bad.spk_sig[:-1] + bytes([bad.spk_sig[-1] ^ 1])
    unchanged_all([rec], lambda: rec.add_bundle(a.device, b.dev_id, bad, T0, FailingRng()), "InvalidSignature")
    classical = b.bundle(kem=None)
    unchanged_all([rec], lambda: rec.add_bundle(a.device, b.dev_id, classical, T0, FailingRng()), "PostQuantumRequired")
    unchanged_all([rec], lambda: rec.add_bundle(a.device, b.dev_id, bundle, T0, FailingRng()), "RandomnessUnavailable")
    rng = S.Draws([b"\x11" * 32, b"\x12" * 32])
    rec.add_bundle(a.device, b.dev_id, bundle, T0, rng)
    dev = rec.devices[b.dev_id]
    assert rng.exhausted() and dev.active.base_key == S.pub(b"\x11" * 32) and dev.pinned
    assert dev.active.created == T0 and dev.active.last_decrypt is None and rec.generation == 2
    # The pending identity is checked before the bundle (which is not even verified).
    k = S.ed25519_public(b"\x55" * 32)
    rec.update_devices([(b.dev_id, k)], T0)
    unchanged_all([rec], lambda: rec.add_bundle(a.device, b.dev_id, bad, T0, FailingRng()), "IdentityChangePending")
    # A stale device is held but not listed.
    rec2 = a.rec(b)
    rec2.update_devices([], T0)
    unchanged_all([rec2], lambda: rec2.add_bundle(a.device, b.dev_id, bundle, T0, FailingRng()), "UnknownDevice")


@check
def s16_archiving_on_new_sessions():
    """§16.3: each new session becomes active, the previous one the newest archived without a
    mark; past MAX_ARCHIVED_SESSIONS the oldest is deleted."""
    a, b = parties("arch")
    rec = a.rec(b)
    bases = []
    for i in range(6):
        rec.add_bundle(a.device, b.dev_id, b.bundle(opk=False, kem="last_resort"), T0 + i, a.rng)
        bases.append(rec.devices[b.dev_id].active.base_key)
    dev = rec.devices[b.dev_id]
    assert dev.active.base_key == bases[5]
    assert [e.base_key for e in dev.archived] == [bases[4], bases[3], bases[2], bases[1]]
    assert all(e.lost_to is None for e in dev.archived) and rec.generation == 7
    assert L.PeerRecord.from_bytes(rec.to_bytes()).to_bytes() == rec.to_bytes()


@check
def s16_pinning_and_classical():
    """§16.4: classical needs "allowed" on an unpinned device; a PQXDH session pins and clears
    the flag; allow_classical on a pinned device is PostQuantumRequired; acknowledging keeps the pin."""
    a, b = parties("pin")
    rec = a.rec(b)
    unchanged_all([rec], lambda: rec.allow_classical(42, True), "UnknownDevice")
    g = rec.generation
    rec.allow_classical(b.dev_id, False)
    assert rec.generation == g, "no change, no generation"
    rec.allow_classical(b.dev_id, True)
    assert rec.generation == g + 1 and rec.devices[b.dev_id].classical_allowed
    rec.add_bundle(a.device, b.dev_id, b.bundle(kem=None), T0, a.rng)      # X3DH
    dev = rec.devices[b.dev_id]
    assert dev.active.session.key_agreement == S.X3DH and not dev.pinned
    # The peer accepts it only if it too allows classical for Alice.
    msg = a.send(b, b"classical")
    res = failure_unchanged([b.rec(a), b.device], lambda: b.recv(a, msg))
    assert (res.action, res.detail, res.error) == (L.IGNORE, L.DOWNGRADE, "PostQuantumRequired")
    b.rec(a).allow_classical(a.dev_id, True)
    received(b.recv(a, msg), b"classical")
    assert not b.rec(a).devices[a.dev_id].pinned
    # A bundle with a KEM prekey always gives PQXDH, and pins.
    rec.add_bundle(a.device, b.dev_id, b.bundle(), T0, a.rng)
    d = rec.devices[b.dev_id]
    assert d.active.session.key_agreement == S.PQXDH and d.pinned and d.archived[0].session.key_agreement == S.X3DH
    assert not rec.devices[b.dev_id].classical_allowed
    unchanged_all([rec], lambda: rec.allow_classical(b.dev_id, True), "PostQuantumRequired")
    unchanged_all([rec], lambda: rec.add_bundle(a.device, b.dev_id, b.bundle(kem=None), T0, a.rng),
                  "PostQuantumRequired")
    g = rec.generation
    rec.allow_classical(b.dev_id, False)
    assert rec.generation == g
    # Bob accepts Alice's PQXDH prekey message: pinned, and a later classical one is a downgrade.
    received(b.recv(a, a.send(b, b"pq")), b"pq")
    assert b.rec(a).devices[a.dev_id].pinned and not b.rec(a).devices[a.dev_id].classical_allowed
    a2 = copy.deepcopy(a)
    a2.rec(b).devices[b.dev_id].pinned = False
    a2.rec(b).devices[b.dev_id].classical_allowed = True
    a2.rec(b).add_bundle(a2.device, b.dev_id, b.bundle(kem=None, opk=False), T0, SeededRng("x3"))
    res = failure_unchanged([b.rec(a), b.device], lambda: b.recv(a, a2.send(b, b"down")))
    assert (res.action, res.detail) == (L.IGNORE, L.DOWNGRADE)
    # Acknowledging a new identity keeps the pin and deletes the sessions.
    k = S.ed25519_public(b"\x66" * 32)
    rec.update_devices([(b.dev_id, k)], T0)
    rec.acknowledge_identity(b.dev_id, k)
    d = rec.devices[b.dev_id]
    assert d.pinned and d.active is None and d.archived == []


@check
def s16_plan_send():
    """§16.3 plan_send: listed devices only; blocked (pending), needs bundle (no session, or ours,
    unanswered and at least MAX_UNANSWERED_SESSION_AGE old), ready. Changes nothing."""
    a = Party(b"alice", 1, "alice")
    b1, b2, b3, b4 = (Party(b"bob", i, "bob%d" % i, opks=1, kem_otks=0) for i in (1, 2, 3, 4))
    a.know(b1, b2, b3, b4)
    rec = a.rec(b1)
    a.start(b2, now=T0)
    a.start(b3, now=T0)
    received(b3.know(a).recv(a, a.send(b3, b"x")), b"x")
    received(a.recv(b3, b3.send(a, b"y"), now=T0 + 1), b"y")
    rec.update_devices([(1, b1.identity), (2, b2.identity), (3, b3.identity),
                        (4, S.ed25519_public(b"\x44" * 32))], T0)
    before = rec.to_bytes()
    age = L.MAX_UNANSWERED_SESSION_AGE
    assert rec.plan_send(T0 + age - 1) == {"blocked": [4], "needs_bundle": [1], "ready": [2, 3]}
    assert rec.plan_send(T0 + age) == {"blocked": [4], "needs_bundle": [1, 2], "ready": [3]}
    assert rec.plan_send(T0 + 10 * age) == {"blocked": [4], "needs_bundle": [1, 2], "ready": [3]}
    assert rec.plan_send(0) == {"blocked": [4], "needs_bundle": [1], "ready": [2, 3]}, "clock back: no time"
    rec.update_devices([(1, b1.identity), (3, b3.identity), (4, S.ed25519_public(b"\x44" * 32))], T0)
    assert rec.plan_send(T0 + age)["needs_bundle"] == [1], "stale devices are never sent to"
    assert rec.to_bytes() != before
    rec2 = L.PeerRecord.from_bytes(rec.to_bytes())
    rec2.plan_send(T0)
    assert rec2.to_bytes() == rec.to_bytes()


@check
def s16_encrypt_fanout():
    """§16.3 encrypt: PlaintextTooLarge first; 48 bytes per usable device in device-id order,
    all drawn first (bytes 0..32 a new ratchet secret, 32..48 the salt); unusable devices listed
    with their reason; a session's own encrypt error does not stop the others."""
    a = Party(b"alice", 1, "alice")
    bs = [Party(b"bob", i, "bob%d" % i, opks=1, kem_otks=0) for i in (2, 3, 5, 6)]
    a.know(*bs)
    rec = a.rec(b"bob")
    for p in bs[:3]:
        a.start(p)
    k = S.ed25519_public(b"\x77" * 32)
    rec.update_devices([(2, bs[0].identity), (3, bs[1].identity), (5, k), (6, bs[3].identity)], T0)
    unchanged_all([rec], lambda: rec.encrypt(b"x" * (L.MAX_PAYLOAD_LEN + 1), FailingRng()), "PlaintextTooLarge")
    unchanged_all([rec], lambda: rec.encrypt(b"x", FailingRng()), "RandomnessUnavailable")
    chunks = [bytes([i]) * 32 + bytes([0x80 + i]) * 16 for i in (1, 2)]
    rng = S.Draws(chunks)
    g = rec.generation
    msgs, unusable = rec.encrypt(b"p" * L.MAX_PAYLOAD_LEN, rng)
    assert rng.exhausted() and [d for d, _ in msgs] == [2, 3] and rec.generation == g + 1
    assert unusable == [(5, "IdentityChangePending"), (6, "NoSession")]
    for (d, m), c in zip(msgs, chunks):
        pm = S.parse_message(m)
        assert pm.inner.K == S.pub(c[:32]) and pm.inner.salt == c[32:]
        assert len(pm.inner.ciphertext) == S.MAX_PLAINTEXT_LEN + 16
    # Second message: no new chain, so only the salt (bytes 32..48) is used.
    rng = S.Draws([bytes([9]) * 32 + bytes([0x99]) * 16, bytes([8]) * 48])
    msgs, _ = rec.encrypt(b"second", rng)
    assert S.parse_message(msgs[0][1]).inner.salt == bytes([0x99]) * 16
    assert S.parse_message(msgs[0][1]).inner.K == S.pub(bytes([1]) * 32)
    # A session that cannot encrypt (sending chain at 2^32 - 1) is unusable; the others encrypt.
    rec.devices[3].active.session.sending.ns = 2**32 - 1
    before3 = rec.devices[3].active.session.to_bytes()
    msgs, unusable = rec.encrypt(b"third", SeededRng("third"))
    assert [d for d, _ in msgs] == [2] and (3, "ChainExhausted") in unusable
    assert rec.devices[3].active.session.to_bytes() == before3
    # Nothing usable: success, no message, generation unchanged.
    only = L.PeerRecord.new(a.device, b"carol")
    only.update_devices([(1, k)], T0)
    assert only.encrypt(b"x", FailingRng()) == ([], [(1, "NoSession")]) and only.generation == 1


@check
def s16_encrypt_to():
    """§16.3 encrypt_to: PlaintextTooLarge, UnknownDevice (not held or stale),
    IdentityChangePending, NoSession, then the session's own draws and errors."""
    a, b = parties("to")
    rec = a.rec(b)
    unchanged_all([rec], lambda: rec.encrypt_to(b.dev_id, b"x" * (L.MAX_PAYLOAD_LEN + 1), FailingRng()),
                  "PlaintextTooLarge")
    unchanged_all([rec], lambda: rec.encrypt_to(99, b"x", FailingRng()), "UnknownDevice")
    unchanged_all([rec], lambda: rec.encrypt_to(b.dev_id, b"x", FailingRng()), "NoSession")
    a.start(b)
    rng = S.Draws([b"\x21" * 32, b"\x22" * 16])
    m = rec.encrypt_to(b.dev_id, b"x", rng)
    assert rng.exhausted() and S.parse_message(m).inner.salt == b"\x22" * 16
    rng = S.Draws([b"\x23" * 16])
    rec.encrypt_to(b.dev_id, b"y", rng)
    assert rng.exhausted()
    rec.update_devices([(b.dev_id, S.ed25519_public(b"\x31" * 32))], T0)
    unchanged_all([rec], lambda: rec.encrypt_to(b.dev_id, b"x", FailingRng()), "IdentityChangePending")
    rec.update_devices([], T0)
    unchanged_all([rec], lambda: rec.encrypt_to(b.dev_id, b"x", FailingRng()), "UnknownDevice")
