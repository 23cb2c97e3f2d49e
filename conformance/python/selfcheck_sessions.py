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
        # Devices are cached per (user, device id): key generation is the slow part.
        self.device = device("%s/%d" % (user.decode(), dev_id), opks=opks, kem_otks=kem_otks)
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


# ---------------------------------------------------------------------------
# §16.5 Receiving
# ---------------------------------------------------------------------------

@check
def s16_decrypt_step_1_and_identities():
    """§16.5 steps 1-2: WrongLocalDevice, RetryLater(UnknownDevice), RetryLater(IdentityChangePending),
    a prekey message of another identity RetryLater(UnknownIdentity); nothing changes.
    A stale device's messages on the sessions it has still decrypt, but it cannot start one:
    RetryLater(UnknownDevice) until it is listed again (F3b)."""
    a, b = parties("step1")
    a.start(b)
    m = a.send(b, b"one")
    rec = b.rec(a)
    res = failure_unchanged([rec, a.device], lambda: rec.decrypt(a.device, a.dev_id, m, T0))
    assert (res.action, res.detail) == (L.IGNORE, L.WRONG_LOCAL_DEVICE)
    res = failure_unchanged([rec, b.device], lambda: rec.decrypt(b.device, 99, m, T0))
    assert (res.action, res.detail, res.error) == (L.RETRY_LATER, L.UNKNOWN_DEVICE, "UnknownDevice")
    unchanged_all([rec, b.device], lambda: rec.decrypt(b.device, a.dev_id, b"\x02\x01", T0), "Truncated")
    unchanged_all([rec, a.device], lambda: rec.decrypt(a.device, 99, b"", T0), "Truncated")   # parse first
    k = S.ed25519_public(b"\x88" * 32)
    r2 = copy.deepcopy(rec)
    r2.update_devices([(a.dev_id, k)], T0)
    res = failure_unchanged([r2, b.device], lambda: r2.decrypt(b.device, a.dev_id, m, T0))
    assert (res.action, res.detail) == (L.RETRY_LATER, L.IDENTITY_CHANGE_PENDING)
    r2.acknowledge_identity(a.dev_id, k)                   # the message's identity is now the old one
    res = failure_unchanged([r2, b.device], lambda: r2.decrypt(b.device, a.dev_id, m, T0))
    assert (res.action, res.detail, res.error) == (L.RETRY_LATER, L.UNKNOWN_IDENTITY, "IdentityMismatch")
    rec.update_devices([], T0)                             # Alice's device is stale
    res = failure_unchanged([rec, b.device], lambda: b.recv(a, m, now=T0 + 7))
    assert (res.action, res.detail, res.error) == (L.RETRY_LATER, L.UNKNOWN_DEVICE, "UnknownDevice")
    assert rec.devices[a.dev_id].active is None
    rec.update_devices([(a.dev_id, a.identity)], T0 + 8)   # listed again: the message is accepted
    received(b.recv(a, m, now=T0 + 9), b"one")
    rec.update_devices([], T0 + 10)                        # stale again, with a session now
    g = rec.generation
    m2 = a.send(b, b"two")                                 # a prekey message on the session held
    res = received(b.recv(a, m2, now=T0 + 11), b"two")
    assert res.device == a.dev_id and res.identity == a.identity and rec.generation == g + 1
    assert rec.devices[a.dev_id].active.last_decrypt == T0 + 11
    received(a.recv(b, b.rec(a).devices[a.dev_id].active.session.encrypt(b.rng, b"\x01back")), b"back")


@check
def s16_routing_to_owners():
    """§16.5 steps 2-3: repeated prekey messages go to the session with their base key (a duplicate is
    Ignore(Duplicate)); a ratchet message to the session knowing its key, archived ones included;
    an unknown key is tried on each session, active first, and the first that decrypts is used."""
    a, b = parties("route")
    a.start(b, opk=False, kem="last_resort")
    m1, m2 = a.send(b, b"m1"), a.send(b, b"m2")
    received(b.recv(a, m2), b"m2")
    dev_before = b.device.to_bytes()
    received(b.recv(a, m1), b"m1")
    assert b.device.to_bytes() == dev_before, "the second prekey message is not accepted again"
    res = failure_unchanged([b.rec(a), b.device], lambda: b.recv(a, m1))
    assert (res.action, res.detail, res.error) == (L.IGNORE, L.DUPLICATE, "DuplicateMessage")
    # Alice's reply comes back on a key her session does not know yet: the try path.
    received(a.recv(b, b.send(a, b"r1")), b"r1")
    # A second session (Bob starts one): Alice's messages on the old one still decrypt on it.
    old = a.send(b, b"old")
    b.start(a)
    received(a.recv(b, b.send(a, b"new")), b"new")
    ad = a.rec(b).devices[b.dev_id]
    assert ad.active.session.role == S.RESPONDER and len(ad.archived) == 1
    received(b.recv(a, old), b"old")                        # Bob: on his archived session -> promoted
    bd = b.rec(a).devices[a.dev_id]
    assert bd.active.session.role == S.RESPONDER and bd.archived[0].session.role == S.INITIATOR
    assert bd.archived[0].lost_to is None


@check
def s16_malformed_frames_undo_the_decrypt():
    """§16.5 step 4, §16.6: a plaintext that is not a frame fails with InvalidEncoding and leaves the
    session, the record and the local device as they were (accept included); Ignore(Malformed)."""
    a, b = parties("frame")
    a.start(b)
    s = a.rec(b).devices[b.dev_id].active.session
    raw = s.encrypt(a.rng, b"\x09not a frame")
    objs = [b.rec(a), b.device]
    res = failure_unchanged(objs, lambda: b.recv(a, raw))
    assert (res.action, res.detail, res.error) == (L.IGNORE, L.MALFORMED, "InvalidEncoding")
    received(b.recv(a, s.encrypt(a.rng, b"\x01ok")), b"ok")
    raw2 = s.encrypt(a.rng, b"")                               # on the owner
    res = failure_unchanged(objs, lambda: b.recv(a, raw2))
    assert (res.detail, res.error) == (L.MALFORMED, "InvalidEncoding")
    bs = b.rec(a).devices[a.dev_id].active.session
    received(a.recv(b, bs.encrypt(b.rng, b"\x01turn")), b"turn")
    raw3 = s.encrypt(a.rng, b"\x04" + bytes(31))               # a new chain: the try path
    res = failure_unchanged(objs, lambda: b.recv(a, raw3))
    assert (res.detail, res.error) == (L.MALFORMED, "InvalidEncoding")
    ok = s.encrypt(a.rng, b"\x04" + bytes(32))
    res = received(b.recv(a, ok), kind=L.FRAME_DISTRIBUTION_REQUEST)
    assert res.value == bytes(32) and res.group_id == bytes(32)


@check
def s16_simultaneous_initiation():
    """§16.5: both sides start a session at once; each accepts the other's; both keep the one with
    the smaller base key, the other archived as lost to it; late messages on the loser decrypt
    without promoting it."""
    a, b = parties("simul")
    a.start(b)
    b.start(a)
    ma, mb = a.send(b, b"from a"), b.send(a, b"from b")
    late = a.send(b, b"late from a")
    received(b.recv(a, ma), b"from a")
    received(a.recv(b, mb), b"from b")
    ka, kb = active_base(a, b), active_base(b, a)
    assert ka == kb, "both sides keep the same session"
    sa_base = S.parse_message(ma).base_key
    sb_base = S.parse_message(mb).base_key
    assert ka == min(sa_base, sb_base)
    loser = max(sa_base, sb_base)
    for p, q in ((a, b), (b, a)):
        arch = p.rec(q).devices[q.dev_id].archived
        assert [e.base_key for e in arch] == [loser] and arch[0].lost_to == ka
    received(b.recv(a, late), b"late from a")
    assert active_base(b, a) == ka, "a session that lost is not promoted while its winner is active"
    for _ in range(2):
        received(b.recv(a, a.send(b, b"x")), b"x")
        received(a.recv(b, b.send(a, b"y")), b"y")
    assert active_base(a, b) == active_base(b, a) == ka


@check
def s16_retry_request_beats_simultaneous_initiation():
    """§16.5 accept: a new session whose retry request names our unanswered active session A wins
    whatever the base keys: it becomes active, A archived; here N's base key is the larger, so A
    is archived without a mark (F8: a mark only points to a smaller base key)."""
    a, b = parties("beats")
    a.start(b)
    m = a.send(b, b"unreadable")
    b.device.reset_prekeys_after_restore(b.rng, T0, 0)          # Bob cannot accept it any more
    res = failure_unchanged([b.rec(a), b.device], lambda: b.recv(a, m))
    assert (res.action, res.error) == (L.START_NEW_SESSION, "UnknownSignedPreKey")
    base_a = S.parse_message(m).base_key
    assert res.detail.base_key == base_a
    ek = next(bytes([i]) * 32 for i in range(1, 255) if S.pub(bytes([i]) * 32) > base_a)
    rng = S.Draws([ek, b"\x02" * 32, b"\x03" * 32, b"\x04" * 16])
    first = b.rec(a).start_new_session(b.device, a.dev_id, a.bundle(), res.detail, T0, rng)
    assert S.parse_message(first).base_key == S.pub(ek) > base_a
    received(a.recv(b, first), kind=L.FRAME_RETRY)
    ad = a.rec(b).devices[b.dev_id]
    assert ad.active.base_key == S.pub(ek), "the retry request naming A decides, not the base keys"
    assert ad.archived[0].base_key == base_a and ad.archived[0].lost_to is None


@check
def s16_retry_request_names_the_active_session():
    """§16.5: a peer that lost our session asks in its new session, naming ours (by ratchet key):
    we switch to its session, ours archived as lost to it; a retry request naming another session
    moves nothing special. On an archived session, a retry naming the active one promotes it."""
    a, b = talking("names")
    a_old = active_base(a, b)
    m = a.send(b, b"lost")
    b.rec(a).after_restore(b.rec(a).generation + 5)            # Bob's sessions are gone
    res = failure_unchanged([b.rec(a), b.device], lambda: b.recv(a, m))
    assert (res.action, res.error) == (L.START_NEW_SESSION, "NoSession")
    hint = res.detail
    assert hint == L.RetryHint.of(S.parse_message(m)) and hint.base_key is None
    first = b.rec(a).start_new_session(b.device, a.dev_id, a.bundle(), hint, T0, b.rng)
    res = received(a.recv(b, first), kind=L.FRAME_RETRY)
    assert res.value == hint
    ad = a.rec(b).devices[b.dev_id]
    assert ad.active.base_key == S.parse_message(first).base_key
    assert ad.archived[0].base_key == a_old and ad.archived[0].lost_to == ad.active.base_key
    received(b.recv(a, a.send(b, b"resent")), b"resent")
    # A retry request that names an archived session: the new one is just active, no mark.
    c, d = talking("names2")
    hint2 = L.RetryHint(S.pub(b"\x42" * 32), 3)
    d.rec(c).after_restore(99)
    first2 = d.rec(c).start_new_session(d.device, c.dev_id, c.bundle(), hint2, T0, d.rng)
    received(c.recv(d, first2), kind=L.FRAME_RETRY)
    assert c.rec(d).devices[d.dev_id].archived[0].lost_to is None


@check
def s16_archived_sessions_and_lost_marks():
    """§16.5 placement on an archived session X: promoted (mark cleared, the active one archived
    without a mark) unless X lost to the active session; a retry request naming the active
    session promotes X and marks the active one as lost to X."""
    a, b = parties("lost")
    a.start(b)
    b.start(a)
    ma, mb = a.send(b, b"a1"), b.send(a, b"b1")
    received(b.recv(a, ma))
    received(a.recv(b, mb))
    win = active_base(a, b)
    winner_side, loser_side = (a, b) if win == S.parse_message(ma).base_key else (b, a)
    # The loser side's initiator session is archived (lost); it still decrypts without moving.
    w_sess = loser_side.rec(winner_side).devices[winner_side.dev_id].archived[0]
    assert w_sess.lost_to == win
    # A retry request on the lost session that names the active one: promoted, active marked.
    p, q = winner_side, loser_side                # q sends on its archived (lost) session to p?
    # q's archived session is q's own initiator session, known to p as archived responder session.
    qa = q.rec(p).devices[p.dev_id]
    lost_entry = qa.archived[0]
    p_active = p.rec(q).devices[q.dev_id].active
    sending = p_active.session.sending.public if p_active.session.sending else None
    hint = L.RetryHint(sending or S.pub(b"\x01" * 32), 0)
    msg = lost_entry.session.encrypt(q.rng, L.frame(L.FRAME_RETRY, hint.to_bytes()))
    x_base = lost_entry.base_key
    assert sending is not None
    received(p.recv(q, msg), kind=L.FRAME_RETRY)
    pa = p.rec(q).devices[q.dev_id]
    # F8: X lost the simultaneous initiation, so its base key is the larger one: the active
    # session is archived without a mark (a mark only points to a smaller base key).
    assert x_base > win
    assert pa.active.base_key == x_base and pa.active.lost_to is None
    assert pa.archived[0].base_key == win and pa.archived[0].lost_to is None
    # ... so the side left on the larger session follows as soon as the peer writes on the smaller.
    received(p.recv(q, q.send(p, b"on the smaller")), b"on the smaller")
    pa = p.rec(q).devices[q.dev_id]
    assert pa.active.base_key == win and pa.archived[0].base_key == x_base
    # Any other message on a session that did not lose promotes it without marks.
    e, f = talking("promote")
    first = active_base(e, f)
    e.start(f)
    received(f.recv(e, e.send(f, b"second session")))
    assert active_base(f, e) != first
    s_old = e.rec(f).devices[f.dev_id].archived[0].session
    received(f.recv(e, s_old.encrypt(e.rng, b"\x01on the old one")), b"on the old one")
    fd = f.rec(e).devices[e.dev_id]
    assert fd.active.base_key == first and fd.archived[0].lost_to is None and fd.active.lost_to is None


# ---------------------------------------------------------------------------
# §16.6 Failures and recovery
# ---------------------------------------------------------------------------

def tamper(msg):
    return msg[:-1] + bytes([msg[-1] ^ 1])


@check
def s16_severities_and_actions():
    """§16.6: the severity table (owner, accept, no owner) and the actions of ignore, lost and broken."""
    a, b = talking("sev")
    rec, objs = b.rec(a), [b.rec(a), b.device]
    received(b.recv(a, a.send(b, b"opens a chain")))
    m = a.send(b, b"x")
    # owner AuthenticationFailed: lost -> a retry (there is an active session).
    res = failure_unchanged(objs, lambda: b.recv(a, tamper(m)))
    assert (res.action, res.error, res.detail) == (L.REQUEST_RETRY, "AuthenticationFailed",
                                                   L.RetryHint.of(S.parse_message(m)))
    received(b.recv(a, m))
    # owner DuplicateMessage: Ignore(Duplicate).
    res = failure_unchanged(objs, lambda: b.recv(a, m))
    assert (res.action, res.detail) == (L.IGNORE, L.DUPLICATE)
    # owner TooFarAhead on the active session: broken, the owner is active -> a new session.
    s = copy.deepcopy(a.rec(b).devices[b.dev_id].active.session)
    for _ in range(1002):
        far = s.encrypt(a.rng, b"\x01far")
    res = failure_unchanged(objs, lambda: b.recv(a, far))
    assert (res.action, res.error) == (L.START_NEW_SESSION, "TooFarAhead")
    # no owner, NonContributoryKey (a low-order ratchet key; Bob has a sending chain, so the
    # try reaches the DH of §8.6 step 2.3): Ignore(Malformed).
    b.send(a, b"opens bob's chain")
    objs = [b.rec(a), b.device]
    low = S.RatchetMessage(bytes(32), 0, 0, bytes(16), bytes(20)).to_bytes()
    res = failure_unchanged(objs, lambda: b.recv(a, low))
    assert (res.action, res.detail, res.error) == (L.IGNORE, L.MALFORMED, "NonContributoryKey")
    # no owner, a forgery on an unknown key: SessionDiverged, broken. The active session is not
    # ours-unanswered, no retry is unanswered: a retry.
    forged = S.RatchetMessage(S.pub(b"\x5a" * 32), 0, 0, bytes(16), bytes(20)).to_bytes()
    res = failure_unchanged(objs, lambda: b.recv(a, forged))
    assert (res.action, res.error) == (L.REQUEST_RETRY, "SessionDiverged")
    assert res.detail == L.RetryHint(S.pub(b"\x5a" * 32), 0)
    # After a retry request is sent (unanswered), a broken failure starts a new session with its hint.
    b.rec(a).request_retry(a.dev_id, res.detail, T0, b.rng)
    objs = [b.rec(a), b.device]
    forged2 = S.RatchetMessage(S.pub(b"\x5b" * 32), 0, 4, bytes(16), bytes(20)).to_bytes()
    res2 = failure_unchanged(objs, lambda: b.recv(a, forged2))
    assert (res2.action, res2.detail) == (L.START_NEW_SESSION, res.detail)
    # A decrypt from the device clears the unanswered hint.
    received(b.recv(a, a.send(b, b"clears")))
    assert b.rec(a).devices[a.dev_id].unanswered is None
    # accept: a replayed prekey message whose session is gone (DuplicatePreKeyMessage): broken.
    c, d = parties("sev2")
    c.start(d, opk=False, kem="last_resort")
    pk = c.send(d, b"first")
    received(d.recv(c, pk))
    d.rec(c).after_restore(50)
    res = failure_unchanged([d.rec(c), d.device], lambda: d.recv(c, pk))
    assert (res.action, res.error) == (L.START_NEW_SESSION, "DuplicatePreKeyMessage")
    assert res.detail.base_key == S.parse_message(pk).base_key
    # accept: anything else (a low-order base key: NonContributoryKey): Ignore(Malformed).
    bad = S.PreKeyMessage.parse(pk)
    bad.base_key = bytes(32)
    res = failure_unchanged([d.rec(c), d.device], lambda: d.recv(c, bad.to_bytes()))
    assert (res.action, res.detail, res.error) == (L.IGNORE, L.MALFORMED, "NonContributoryKey")
    # accept: unknown prekeys: broken.
    bad2 = S.PreKeyMessage.parse(pk)
    bad2.spk_id = 77
    res = failure_unchanged([d.rec(c), d.device], lambda: d.recv(c, bad2.to_bytes()))
    assert (res.action, res.error) == (L.START_NEW_SESSION, "UnknownSignedPreKey")
    # Severity table, entry by entry.
    assert L.severity("owner", "SessionMismatch") == ("ignore", L.MALFORMED)
    assert L.severity("owner", "DuplicatePreKeyMessage") == ("ignore", L.DUPLICATE)
    assert L.severity("owner", "SessionDiverged") == ("broken",)
    for e in ("UnknownOneTimePreKey", "UnknownKemPreKey", "SignedPreKeyExhausted", "AuthenticationFailed",
              "TooFarAhead"):
        assert L.severity("accept", e) == ("broken",)
    assert L.severity("accept", "InvalidEncoding") == ("ignore", L.MALFORMED)
    assert L.severity("none", "ChainExhausted") == ("ignore", L.MALFORMED)
    assert L.severity("none", "AuthenticationFailed") == ("broken",)


@check
def s16_broken_when_our_session_is_unanswered():
    """§16.6 broken: the active session is ours and unanswered -> a retry (in it), unless a
    retry request is unanswered, which is weighed first (S9)."""
    a, b = talking("unans")
    b.rec(a).after_restore(100)
    b.start(a)                                          # Bob's new session, no reply yet
    m = a.send(b, b"on the old session")
    res = failure_unchanged([b.rec(a), b.device], lambda: b.recv(a, m))
    assert (res.action, res.error) == (L.REQUEST_RETRY, "SessionDiverged")
    # The unanswered-request rule comes first: with a hint pending, a new session naming it
    # (stale bundles on both sides would otherwise keep both asking inside sessions neither
    # can accept).
    pending = L.RetryHint(S.pub(b"\x0e" * 32), 9)
    b.rec(a).devices[a.dev_id].unanswered = pending
    res = failure_unchanged([b.rec(a), b.device], lambda: b.recv(a, m))
    assert (res.action, res.detail) == (L.START_NEW_SESSION, pending)


@check
def s16_tries_in_order_and_their_errors():
    """§16.5 step 3, §16.6: with no session knowing the key, the sessions are tried active first,
    then archived newest first; the deciding error is NonContributoryKey if any try gave one,
    else the first try's."""
    a, b = talking("tries")
    b.start(a)                                          # Bob: active (no sending chain), archived (one)
    bd = b.rec(a).devices[a.dev_id]
    assert bd.active.session.sending is None and bd.archived[0].session.sending is not None
    far = S.RatchetMessage(S.pub(b"\x0d" * 32), 0, 1001, bytes(16), bytes(20)).to_bytes()
    res = failure_unchanged([b.rec(a), b.device], lambda: b.recv(a, far))
    assert res.error == "SessionDiverged", "the active session's try (no sending chain) comes first"
    low = S.RatchetMessage(bytes(32), 0, 0, bytes(16), bytes(20)).to_bytes()
    res = failure_unchanged([b.rec(a), b.device], lambda: b.recv(a, low))
    assert (res.action, res.detail, res.error) == (L.IGNORE, L.MALFORMED, "NonContributoryKey")
    bd.active.session.sending, bd.archived[0].session.sending = bd.archived[0].session.sending, None
    res = failure_unchanged([b.rec(a), b.device], lambda: b.recv(a, far))
    assert (res.action, res.error, res.fields) == (L.REQUEST_RETRY, "TooFarAhead", {"skipped": 1001})


@check
def s16_rate_limits():
    """§16.6: at most MAX_RETRY_REQUESTS_PER_INTERVAL retry requests per window (RecoveryPending,
    RecoveryRateLimited), the window restarting when it expired; one new session per
    MIN_RECOVERY_INTERVAL."""
    a, b = talking("rate")
    rec = b.rec(a)
    forged = S.RatchetMessage(S.pub(b"\x5c" * 32), 0, 0, bytes(16), bytes(20)).to_bytes()
    hint = L.RetryHint(S.pub(b"\x5c" * 32), 0)
    t = T0 + 10_000
    for i in range(8):
        rec.request_retry(a.dev_id, hint, t + i, b.rng)

    def dev():
        return rec.devices[a.dev_id]
    assert (dev().retry_window, dev().retry_count) == (t, 8) and dev().unanswered == hint
    unchanged_all([rec], lambda: rec.request_retry(a.dev_id, hint, t + 3599, b.rng), "RecoveryRateLimited")
    dev().unanswered = None
    res = failure_unchanged([rec, b.device], lambda: b.recv(a, forged, now=t + 3599))
    assert (res.action, res.detail) == (L.IGNORE, L.RECOVERY_PENDING)
    res = failure_unchanged([rec, b.device], lambda: b.recv(a, forged, now=t + 3600))
    assert res.action == L.REQUEST_RETRY
    hint2 = L.RetryHint(S.pub(b"\x5d" * 32), 1, S.pub(b"\x5e" * 32))
    rec.request_retry(a.dev_id, hint2, t + 3600, b.rng)
    assert (dev().retry_window, dev().retry_count, dev().unanswered) == (t + 3600, 1, hint2)
    rec.request_retry(a.dev_id, hint, t + 3601, b.rng)
    assert dev().unanswered == hint2 and dev().retry_count == 2, "the first unanswered hint stays"
    # request_retry: UnknownDevice, IdentityChangePending, NoSession; a stale device may be asked.
    unchanged_all([rec], lambda: rec.request_retry(42, hint, t, b.rng), "UnknownDevice")
    rec.update_devices([], t)
    rec.request_retry(a.dev_id, hint, t + 3602, b.rng)
    r2 = copy.deepcopy(rec)
    r2.update_devices([(a.dev_id, S.ed25519_public(b"\x99" * 32))], t)
    unchanged_all([r2], lambda: r2.request_retry(a.dev_id, hint, t, b.rng), "IdentityChangePending")
    r2.acknowledge_identity(a.dev_id, S.ed25519_public(b"\x99" * 32))
    unchanged_all([r2], lambda: r2.request_retry(a.dev_id, hint, t, b.rng), "NoSession")
    # New sessions: one per interval.
    c, d = talking("rate2")
    rc = d.rec(c)
    rc.after_restore(100)
    m = c.send(d, b"m")
    res = failure_unchanged([rc, d.device], lambda: d.recv(c, m, now=t))
    assert res.action == L.START_NEW_SESSION
    rc.start_new_session(d.device, c.dev_id, c.bundle(), res.detail, t, d.rng)
    assert rc.devices[c.dev_id].last_recovery == t
    bogus = S.RatchetMessage(S.pub(b"\x61" * 32), 0, 0, bytes(16), bytes(20)).to_bytes()
    rc.devices[c.dev_id].active.session.sending = None     # only so that the try path fails too
    res = failure_unchanged([rc, d.device], lambda: d.recv(c, bogus, now=t + 3599))
    assert res.action in (L.REQUEST_RETRY, L.IGNORE)
    unchanged_all([rc], lambda: rc.start_new_session(d.device, c.dev_id, c.bundle(), res.detail, t + 3599, d.rng),
                  "RecoveryRateLimited")


@check
def s16_start_new_session_checks_and_draws():
    """§16.6 start_new_session: add_bundle's checks up to IdentityChangePending, then
    RecoveryRateLimited, then the bundle's checks and the draws of initiate and of the first
    encrypt, whose plaintext is the retry request; last recovery = now; the hint cleared."""
    a, b = talking("sns")
    rec = b.rec(a)
    hint = L.RetryHint(S.pub(b"\x10" * 32), 2)
    bad = S.PreKeyBundle.from_bytes(a.bundle().to_bytes())
    bad.spk_sig = bytes(64)
    unchanged_all([rec], lambda: rec.start_new_session(a.device, a.dev_id, bad, hint, T0, FailingRng()),
                  "IdentityMismatch")
    unchanged_all([rec], lambda: rec.start_new_session(b.device, 99, bad, hint, T0, FailingRng()), "UnknownDevice")
    rec.devices[a.dev_id].last_recovery = T0
    unchanged_all([rec], lambda: rec.start_new_session(b.device, a.dev_id, bad, hint, T0 + 3599, FailingRng()),
                  "RecoveryRateLimited")
    unchanged_all([rec], lambda: rec.start_new_session(b.device, a.dev_id, bad, hint, T0 + 3600, FailingRng()),
                  "InvalidSignature")
    rec.devices[a.dev_id].unanswered = hint
    rng = S.Draws([b"\x31" * 32, b"\x32" * 32, b"\x33" * 32, b"\x34" * 16])
    first = rec.start_new_session(b.device, a.dev_id, a.bundle(), hint, T0 + 3600, rng)
    assert rng.exhausted()
    pm = S.parse_message(first)
    assert isinstance(pm, S.PreKeyMessage) and pm.base_key == S.pub(b"\x31" * 32)
    assert pm.inner.K == S.pub(b"\x33" * 32) and pm.inner.salt == b"\x34" * 16
    dev = rec.devices[a.dev_id]
    assert dev.last_recovery == T0 + 3600 and dev.unanswered is None and len(dev.archived) == 1
    res = received(a.recv(b, first), kind=L.FRAME_RETRY)
    assert res.value == hint


# ---------------------------------------------------------------------------
# §16.7 Expiry and restores
# ---------------------------------------------------------------------------

@check
def s16_expire():
    """§16.7 expire: stale devices at MAX_STALE_DEVICE_AGE, archived sessions idle for
    MAX_ARCHIVED_SESSION_AGE (from the last decrypt, else creation); never the active one."""
    a, b = talking("exp")
    rec = a.rec(b)
    age = L.MAX_ARCHIVED_SESSION_AGE
    received(a.recv(b, b.send(a, b"later"), now=T0 + 3))
    rec = a.rec(b)
    rec.add_bundle(a.device, b.dev_id, b.bundle(), T0 + 5, a.rng)     # the first is archived
    rec.add_bundle(a.device, b.dev_id, b.bundle(), T0 + 9, a.rng)     # and this one too, later
    first, second = rec.devices[b.dev_id].archived[1], rec.devices[b.dev_id].archived[0]
    assert first.created == T0 and first.last_decrypt == T0 + 3
    assert second.last_decrypt is None and second.created == T0 + 5
    g = rec.generation
    assert rec.expire(T0 + 3 + age - 1) == ([], 0) and rec.generation == g, "from the last decrypt"
    assert rec.expire(T0 + 3 + age) == ([], 1) and rec.generation == g + 1
    assert rec.expire(T0 + 4 + age) == ([], 0)
    assert rec.expire(T0 + 5 + age) == ([], 1)
    assert rec.devices[b.dev_id].archived == [] and rec.devices[b.dev_id].active is not None
    assert rec.expire(T0 + 100 * age) == ([], 0), "active sessions are never expired"
    other = S.ed25519_public(b"\x12" * 32)
    rec.update_devices([(b.dev_id, b.identity), (3, other)], T0)
    rec.update_devices([(b.dev_id, b.identity)], T0 + 50)
    assert rec.expire(T0 + 49 + L.MAX_STALE_DEVICE_AGE) == ([], 0)
    assert rec.expire(T0 + 50 + L.MAX_STALE_DEVICE_AGE) == ([3], 0) and 3 not in rec.devices


@check
def s16_after_restore():
    """§16.7 after_restore: an older record loses every session (identities, pins and the rest
    stay); either way the generation becomes max(generation, last_generation) + 1."""
    a, b = talking("restore")
    rec = a.rec(b)
    rec.devices[b.dev_id].retry_count = 3
    g = rec.generation
    r1 = copy.deepcopy(rec)
    r1.after_restore(g)
    assert r1.generation == g + 1 and r1.devices[b.dev_id].active is not None
    r1 = copy.deepcopy(rec)
    r1.after_restore(0)
    assert r1.generation == g + 1 and r1.devices[b.dev_id].active is not None
    rec.after_restore(g + 10)
    d = rec.devices[b.dev_id]
    assert rec.generation == g + 11 and d.active is None and d.archived == []
    assert d.pinned and d.identity == b.identity and d.retry_count == 3
    r2 = L.PeerRecord.new(a.device, b"x")
    r2.generation = 2**64 - 1
    r2.after_restore(2**64 - 1)
    assert r2.generation == 2**64 - 1, "saturating"


# ---------------------------------------------------------------------------
# §16.6, §16.12 Recovery carried out by applications
# ---------------------------------------------------------------------------

class World:
    """Applications of §16 over a network: every Failure's action is carried out (bundles from a
    server that hands out each device's current prekeys) and every retry request is answered by
    resending what it names. A ledger checks that nothing is decrypted twice."""

    def __init__(self, *parties_):
        self.parties = {(p.user, p.dev_id): p for p in parties_}
        self.net = []                       # (src, dst, message)
        self.ledger = {}                    # (dst key) -> set of payloads decrypted
        self.reactions = 0
        self.now = T0
        self.unique_payloads = True         # off where resends may race their originals

    def send(self, src, dst, payload):
        r = src.rec(dst)
        plan = r.plan_send(self.now)
        if dst.dev_id in plan["needs_bundle"]:
            r.add_bundle(src.device, dst.dev_id, dst.bundle(), self.now, src.rng)
        self.net.append((src, dst, src.send(dst, payload, now=self.now)))

    def deliver(self, i=0):
        src, dst, msg = self.net.pop(i)
        res = dst.recv(src, msg, now=self.now)
        if isinstance(res, L.Received):
            if res.kind == L.FRAME_PAYLOAD:
                seen = self.ledger.setdefault((dst.user, dst.dev_id), set())
                assert not self.unique_payloads or res.value not in seen, "decrypted twice: %r" % res.value
                seen.add(res.value)
            elif res.kind == L.FRAME_RETRY:
                self.reactions += 1
                sent = dst.sent.get(res.value.to_bytes())
                if sent is not None:
                    r = dst.rec(src)
                    m = r.encrypt_to(src.dev_id, sent[2], dst.rng)
                    dst.log_sent(src, m, sent[2])
                    self.net.append((dst, src, m))
            return res
        r = dst.rec(src)
        if res.action == L.REQUEST_RETRY:
            self.reactions += 1
            self.net.append((dst, src, r.request_retry(src.dev_id, res.detail, self.now, dst.rng)))
        elif res.action == L.START_NEW_SESSION:
            self.reactions += 1
            self.net.append((dst, src, r.start_new_session(dst.device, src.dev_id, src.bundle(), res.detail,
                                                           self.now, dst.rng)))
        return res

    def drain(self, limit=50):
        n = 0
        while self.net:
            self.deliver()
            n += 1
            assert n < limit, "no quiescence"

    def converged(self, p, q, tag):
        """§16.12: one message each way with all reactions, then the same active session, and one
        more message each way decrypts on it with no reaction and no movement."""
        self.send(p, q, tag + b" p->q")
        self.drain()
        self.send(q, p, tag + b" q->p")
        self.drain()
        ap, aq = active_base(p, q), active_base(q, p)
        assert ap is not None and ap == aq, "the two sides do not share an active session"
        before = self.reactions
        self.send(p, q, tag + b" again p->q")
        res1 = self.deliver()
        self.send(q, p, tag + b" again q->p")
        res2 = self.deliver()
        assert isinstance(res1, L.Received) and isinstance(res2, L.Received), (res1, res2)
        assert not self.net and self.reactions == before
        assert active_base(p, q) == active_base(q, p) == ap, "an active session moved"


@check
def s16_converges_after_a_restore_with_after_restore():
    """§16.7, §16.12: Bob restores device and record from an older backup, resets his prekeys and
    calls after_restore with the generations he recorded; messages in flight from before are
    answered by recovery, and the pair converges within one round trip."""
    a, b = parties("conv1")
    w = World(a, b)
    w.send(a, b, b"1")
    w.drain()
    backup = (b.device.to_bytes(), b.rec(a).to_bytes())
    w.send(b, a, b"2")
    w.drain()
    w.send(a, b, b"3")
    w.send(a, b, b"4")
    w.drain()
    last = (b.device.generation, b.rec(a).generation)
    w.send(a, b, b"5 in flight")
    b.device = S.Device.from_bytes(backup[0])
    b.records[a.user] = L.PeerRecord.from_bytes(backup[1])
    b.device.reset_prekeys_after_restore(b.rng, w.now, last[0])
    b.rec(a).after_restore(last[1])
    assert b.rec(a).devices[a.dev_id].active is None
    w.drain()
    w.converged(a, b, b"c1")
    w.converged(b, a, b"c2")


@check
def s16_converges_after_a_rollback_without_generations():
    """§16.6 'Rollback': a restore the application cannot see (no generation recorded: 0). The
    sessions diverge; retry requests go unanswered both ways; a new session recovers, and the pair
    converges within one round trip (time passes, so the rate limits allow it)."""
    a, b = parties("conv2")
    w = World(a, b)
    w.send(a, b, b"1")
    w.drain()
    w.send(b, a, b"2")
    w.drain()
    w.send(a, b, b"3")
    w.drain()                                            # Bob: no sending chain now
    backup = (b.device.to_bytes(), b.rec(a).to_bytes())
    w.send(b, a, b"4")                                   # on a ratchet key the restore forgets
    w.drain()
    b.device = S.Device.from_bytes(backup[0])
    b.records[a.user] = L.PeerRecord.from_bytes(backup[1])
    b.device.reset_prekeys_after_restore(b.rng, w.now, 0)
    b.rec(a).after_restore(0)
    assert b.rec(a).devices[a.dev_id].active is not None, "the record could not tell"
    base = active_base(a, b)
    w.send(b, a, b"after")                               # a new ratchet key: the sessions diverged
    w.drain()
    assert w.reactions >= 4 and active_base(a, b) != base, "recovery made a new session"
    assert b"after" in w.ledger[(a.user, a.dev_id)], "the first lost message was resent"
    w.converged(a, b, b"c1")
    w.converged(b, a, b"c2")


@check
def s16_converges_after_simultaneous_initiation_and_loss():
    """§16.5, §16.12: both start at once, the first messages cross, one is lost; the pair converges."""
    a, b = parties("conv3")
    w = World(a, b)
    w.send(a, b, b"a1")
    w.send(b, a, b"b1")
    w.send(a, b, b"a2")
    w.net.pop(2)                                          # a2 lost
    w.deliver(1)
    w.drain()
    w.converged(a, b, b"c1")


def explore(seed, messages=2, loss=1, dup=1, restore=True, with_generations=True, check_every=False):
    """One random run of the 1 + 1 model of §16.12: each device sends `messages` payloads, the
    network loses `loss` and duplicates `dup` messages and reorders freely, Bob may be restored
    from a backup taken at a random point (device reset, after_restore with the generations the
    application recorded, or 0). All at one `now`. Then the pair must converge (World.converged).
    -> the list of events, for a report."""
    import random
    rnd = random.Random(seed)
    a, b = parties("explore %s" % seed)
    w = World(a, b)
    events = []
    todo = {a.user: messages, b.user: messages}
    backup = None
    state = "none" if restore else "done"
    recorded = {}

    def record_gens():
        recorded["device"] = b.device.generation
        recorded["record"] = b.rec(a).generation

    orig_deliver = w.deliver

    def deliver(i=0):
        src, dst, msg = w.net[i]
        res = orig_deliver(i)
        if isinstance(res, L.Received):
            key = (dst.user, msg)
            # Without the recorded generations a restored session re-accepts what it had
            # decrypted (§10.1): the ledger holds only when after_restore gets them.
            assert key not in w.seen_msgs or not with_generations, "a message decrypted twice"
            w.seen_msgs.add(key)
        record_gens()
        events.append("%s>%s:%s" % (src.user[:1].decode(), dst.user[:1].decode(),
                                    ("ok" if isinstance(res, L.Received) else "%s/%s" % (res.action, res.error))))
        return res
    w.deliver = deliver
    w.seen_msgs = set()
    w.unique_payloads = False           # a resend and its late original both decrypt: two messages
    while True:
        choices = []
        for p, q in ((a, b), (b, a)):
            if todo[p.user]:
                choices.append(("send", p, q))
        if w.net:
            choices += [("deliver",)] * 3
            if loss:
                choices.append(("lose",))
            if dup:
                choices.append(("dup",))
        if state == "none":
            choices.append(("backup",))
        elif state == "taken":
            choices.append(("restore",))
        if not choices:
            break
        c = rnd.choice(choices)
        if c[0] == "send":
            todo[c[1].user] -= 1
            w.send(c[1], c[2], b"%s %d" % (c[1].user, messages - todo[c[1].user]))
            record_gens()
            events.append("send " + c[1].user.decode())
        elif c[0] == "deliver":
            w.deliver(rnd.randrange(len(w.net)))
        elif c[0] == "lose":
            loss -= 1
            w.net.pop(rnd.randrange(len(w.net)))
            events.append("lose")
        elif c[0] == "dup":
            dup -= 1
            w.net.append(w.net[rnd.randrange(len(w.net))])
            events.append("dup")
        elif c[0] == "backup":
            backup = (b.device.to_bytes(), b.rec(a).to_bytes(), copy.deepcopy(b.sent))
            state = "taken"
            events.append("backup")
        elif c[0] == "restore":
            last_dev = recorded.get("device", 0) if with_generations else 0
            last_rec = recorded.get("record", 0) if with_generations else 0
            b.device = S.Device.from_bytes(backup[0])
            b.records[a.user] = L.PeerRecord.from_bytes(backup[1])
            b.sent = backup[2]
            b.device.reset_prekeys_after_restore(b.rng, w.now, last_dev)
            b.rec(a).after_restore(last_rec)
            state = "done"
            events.append("restore")
        if check_every and not w.net and state != "taken":
            a2, b2 = copy.deepcopy(a), copy.deepcopy(b)
            w2 = World(a2, b2)
            w2.unique_payloads = False
            w2.converged(a2, b2, b"mid")
    w.converged(a, b, b"end1")
    w.converged(b, a, b"end2")
    return events


# ---------------------------------------------------------------------------
# §16.8 Groups through the layer
# ---------------------------------------------------------------------------

GID16 = b"\x16" * 32


def group_world(tag=""):
    """Alice (device 1), Bob (devices 2, 3) and Carol (device 4), all with sessions to each other
    from Alice's side and each side's records; Alice's group has all three as members."""
    a = Party(b"alice", 1, "galice" + tag)
    b2 = Party(b"bob", 2, "gbob2" + tag)
    b3 = Party(b"bob", 3, "gbob3" + tag)
    c = Party(b"carol", 4, "gcarol" + tag)
    a2 = Party(b"alice", 5, "galice5" + tag)              # Alice's other device
    a.know(b2, b3, c, a2)
    for p in (b2, b3, c, a2):
        p.know(a)
        a.start(p)
        received(p.recv(a, a.send(p, b"hello")))
        received(a.recv(p, p.send(a, b"hi")))
    g = L.GroupSession.new(SeededRng("group " + tag), GID16, b"alice", a.device)
    g.add_member(b"bob")
    g.add_member(b"carol")
    return a, a2, b2, b3, c, g


def records_of(a, *users):
    return [a.records[u] for u in users]


@check
def s16_group_new_and_members():
    """§16.8 new (draws as GroupSender::new; members = {local user}; generation 0) and
    add_member (TooManyGroupMembers at MAX_GROUP_MEMBERS; the generation moves only for a new user)."""
    me = device("alice")
    rng = S.Draws([b"\x01" * 256, b"\x02" * 32])
    g = L.GroupSession.new(rng, GID16, b"me", me)
    assert rng.exhausted() and g.members == [b"me"] and g.generation == 0
    assert g.sender.seed == b"\x02" * 32 and g.sender.owner == me.identity and g.store.receivers == []
    expect("InvalidEncoding", lambda: L.GroupSession.new(SeededRng("x"), GID16, b"", me))
    unchanged_all([g], lambda: g.add_member(b"x" * 65), "InvalidEncoding")
    assert g.add_member(b"me") is False and g.generation == 0
    for i in range(L.MAX_GROUP_MEMBERS - 1):
        g.add_member(b"u%04d" % i)
    assert len(g.members) == 1000 and g.generation == 999
    unchanged_all([g], lambda: g.add_member(b"one more"), "TooManyGroupMembers")
    assert g.add_member(b"u0005") is False and g.generation == 999
    assert g.members == sorted(g.members)


@check
def s16_group_distribute_and_install():
    """§16.8 distribute (checks, then the draws of all records in order, fan-out with frame 0x02)
    and install (InvalidEncoding, NotGroupMember, IdentityMismatch, IdentityChangePending, then the
    store's authenticated install); encrypt and decrypt with their failure actions."""
    a, a2, b2, b3, c, g = group_world("dist")
    recs = records_of(a, b"bob", b"carol", b"alice")
    stranger = L.PeerRecord.new(a.device, b"dave")
    unchanged_all([g] + recs, lambda: g.distribute(recs + [stranger], FailingRng()), "NotGroupMember")
    unchanged_all([g] + recs, lambda: g.distribute(recs + [recs[0]], FailingRng()), "NotGroupMember")
    foreign = L.PeerRecord.new(b2.device, b"carol")
    unchanged_all([g] + recs, lambda: g.distribute([foreign], FailingRng()), "IdentityMismatch")
    unchanged_all([g] + recs, lambda: g.distribute(recs, FailingRng()), "RandomnessUnavailable")
    draws = [bytes([i]) * 48 for i in range(4)]               # bob 2, bob 3, carol 4, alice 5
    rng = S.Draws(draws)
    gb = g.to_bytes()
    out = g.distribute(recs, rng)
    assert rng.exhausted() and g.to_bytes() == gb, "the group does not change"
    assert [[d for d, _ in msgs] for msgs, _ in out] == [[2, 3], [4], [5]]
    assert S.parse_message(out[0][0][1][1]).salt == bytes([1]) * 16
    # Bob's device 2 receives it; his group installs it from his record of Alice.
    bg = L.GroupSession.new(SeededRng("bob group"), GID16, b"bob", b2.device)
    bg.add_member(b"alice")
    res = received(b2.recv(a, out[0][0][0][1]), kind=L.FRAME_DISTRIBUTION)
    assert res.group_id == GID16 and res.identity == a.identity
    brec = b2.rec(a)
    payload = received(b2.recv(a, a.send(b2, b"not a distribution")))
    unchanged_all([bg], lambda: bg.install(brec, payload), "InvalidEncoding")
    outsider = L.GroupSession.new(SeededRng("bob group2"), GID16, b"bob", b2.device)
    unchanged_all([outsider], lambda: outsider.install(brec, res), "NotGroupMember")
    unchanged_all([bg], lambda: bg.install(a.rec(b"bob"), res), "IdentityMismatch")   # not Bob's device's
    wrong = copy.copy(res)
    wrong.device = 9
    unchanged_all([bg], lambda: bg.install(brec, wrong), "IdentityMismatch")
    wrong.device, wrong.identity = res.device, b2.identity
    unchanged_all([bg], lambda: bg.install(brec, wrong), "IdentityMismatch")
    pend = copy.deepcopy(brec)
    pend.update_devices([(a.dev_id, S.ed25519_public(b"\x91" * 32))], T0)
    unchanged_all([bg], lambda: bg.install(pend, res), "IdentityChangePending")
    assert bg.install(brec, res) == S.ADDED and bg.generation == 2
    assert bg.install(brec, res) == S.UNCHANGED and bg.generation == 2
    # Group messages.
    m = g.encrypt(b"to the group", SeededRng("genc"))
    assert g.generation == 3
    assert bg.decrypt(brec, m) == (b"to the group", ("Authenticated", a.identity)) and bg.generation == 3
    f = failure_unchanged([bg], lambda: bg.decrypt(brec, m))
    assert (f.action, f.detail, f.error) == (L.IGNORE, L.DUPLICATE, "DuplicateMessage")
    f = failure_unchanged([bg], lambda: bg.decrypt(brec, tamper(g.encrypt(b"t", SeededRng("g2")))))
    assert (f.action, f.detail, f.error) == (L.IGNORE, L.MALFORMED, "InvalidSignature")
    unchanged_all([bg], lambda: bg.decrypt(brec, b"\x02\x03"), "Truncated")          # a parse error: no action
    other = L.GroupSession.new(SeededRng("carol group"), GID16, b"carol", c.device)
    f = failure_unchanged([bg], lambda: bg.decrypt(brec, other.encrypt(b"?", SeededRng("g3"))))
    assert (f.action, f.detail, f.error) == (L.RETRY_LATER, L.MISSING_DISTRIBUTION, "UnknownGroupChain")
    # A distribution request (frame 0x04) and the answer, distribute_to.
    req = bg.request_distribution(brec, a.dev_id, SeededRng("req"))
    res = received(a.recv(b2, req), kind=L.FRAME_DISTRIBUTION_REQUEST)
    assert res.value == GID16
    again = g.distribute_to(a.rec(b"bob"), b2.dev_id, S.Draws([b"\x44" * 32, bytes(16)]))
    assert received(b2.recv(a, again), kind=L.FRAME_DISTRIBUTION).value.to_bytes() == g.sender.distribution()


@check
def s16_group_remove_member_and_rotate():
    """§16.8 remove_member: checks, then draws (the new sender, then 48 bytes per device, records in
    order), then in one step: chains of owners that are neither local nor a trusted identity of the
    records' devices removed, the user out, the new sender, generation + 1, the new distribution
    to every remaining member's listed devices. rotate: the same without removing a member."""
    a, a2, b2, b3, c, g = group_world("remove")
    # Alice's store holds chains of Bob (device 2) and Carol.
    for p in (b2, c):
        pg = L.GroupSession.new(SeededRng("chain of %s" % p.label), GID16, p.user, p.device)
        m = p.rec(a).encrypt_to(a.dev_id, b"", p.rng)                # (a plain payload first)
        received(a.recv(p, m))
        dm = p.rec(a).devices[a.dev_id].active.session.encrypt(p.rng, L.frame(L.FRAME_DISTRIBUTION,
                                                                              pg.sender.distribution()))
        assert g.install(a.rec(p), a.recv(p, dm)) == S.ADDED
    assert len(g.store.receivers) == 2
    all_recs = records_of(a, b"bob", b"alice")
    unchanged_all([g], lambda: g.remove_member(a.device, b"alice", records_of(a, b"bob", b"carol"), FailingRng()),
                  "NotGroupMember")
    unchanged_all([g], lambda: g.remove_member(a.device, b"dave", all_recs, FailingRng()), "NotGroupMember")
    unchanged_all([g], lambda: g.remove_member(a.device, b"carol", records_of(a, b"bob"), FailingRng()),
                  "NotGroupMember")
    not_own = L.PeerRecord.new(a.device, b"alice")
    unchanged_all([g], lambda: g.remove_member(a.device, b"carol", [a.rec(b"bob"), not_own], FailingRng()),
                  "NotGroupMember")
    unchanged_all([g], lambda: g.remove_member(b2.device, b"carol", all_recs, FailingRng()), "IdentityMismatch")
    unchanged_all([g] + all_recs, lambda: g.remove_member(a.device, b"carol", all_recs, FailingRng()),
                  "RandomnessUnavailable")
    old_chain = g.sender.chain
    rng = S.Draws([b"\x21" * 256, b"\x22" * 32] + [bytes([i]) * 48 for i in range(3)])
    gen = g.generation
    out = g.remove_member(a.device, b"carol", all_recs, rng)
    assert rng.exhausted() and g.members == [b"alice", b"bob"] and g.generation == gen + 1
    assert g.sender.chain != old_chain and g.sender.seed == b"\x22" * 32 and g.sender.generation == 0
    assert [h.owner for h in g.store.receivers] == [b2.identity]
    assert [[d for d, _ in msgs] for msgs, _ in out] == [[2, 3], [5]]
    res = received(b3.recv(a, out[0][0][1][1]), kind=L.FRAME_DISTRIBUTION)
    assert res.value.chain == g.sender.chain
    # Carol's chain is gone: her messages wait for a distribution that never comes.
    # rotate: every member's records, exactly; chains of devices no longer in a record go.
    a.rec(b"bob").update_devices([(3, b3.identity)], T0)        # device 2 leaves: stale, still counts
    g.rotate(a.device, records_of(a, b"bob", b"alice"), SeededRng("rot"))
    assert [h.owner for h in g.store.receivers] == [b2.identity]
    a.rec(b"bob").expire(T0 + L.MAX_STALE_DEVICE_AGE)
    b2_chain = g.store.receivers[0].chain
    g.rotate(a.device, records_of(a, b"bob", b"alice"), SeededRng("rot2"))
    assert g.store.receivers == [], "a chain of a device that left is removed"
    assert g.dropped[-1] == (b2_chain, b2.identity), "and dropped with its owner (§16.8)"
    unchanged_all([g], lambda: g.rotate(a.device, records_of(a, b"bob"), FailingRng()), "NotGroupMember")


@check
def s16_group_after_restore():
    """§16.8 after_restore: below last_generation, a new sender (drawn as GroupSender::new) and no
    receivers; either way generation = max(generation, last_generation) + 1."""
    a, a2, b2, b3, c, g = group_world("grest")
    g.store.receivers.append(S.GroupReceiver.from_distribution(
        S.Distribution.from_bytes(L.GroupSession.new(SeededRng("x"), GID16, b"bob", b2.device).sender.distribution()),
        True))
    g1 = copy.deepcopy(g)
    g1.after_restore(a.device, g.generation, FailingRng())
    assert g1.generation == g.generation + 1 and g1.sender.chain == g.sender.chain and g1.store.receivers
    rng = S.Draws([b"\x05" * 256, b"\x06" * 32])
    g.after_restore(a.device, g.generation + 3, rng)
    assert rng.exhausted() and g.sender.seed == b"\x06" * 32 and g.store.receivers == []
    assert g.store.generation == 0 and g.sender.generation == 0, "a new store and a new sender"
    assert g.generation == g1.generation + 3
    unchanged_all([g], lambda: g.after_restore(device("bob"), 0, FailingRng()), "IdentityMismatch")


# ---------------------------------------------------------------------------
# §16.11 Saved forms
# ---------------------------------------------------------------------------

def rich_record():
    """A record using every optional field."""
    a, b = talking("saved")
    b2 = Party(b"bob", 9, "saved b9")
    a.know(b2)
    a.start(b)
    rec = a.rec(b)
    rec.update_devices([(b.dev_id, b.identity), (b2.dev_id, b2.identity)], T0)
    rec.update_devices([(b.dev_id, S.ed25519_public(b"\x71" * 32))], T0 + 1)   # 9 stale, 7 pending
    d = rec.devices[b.dev_id]
    d.last_recovery, d.retry_window, d.retry_count = T0 - 5, T0 - 6, 8
    d.unanswered = L.RetryHint(S.pub(b"\x72" * 32), 3, S.pub(b"\x73" * 32))
    d.archived[0].lost_to = b"\x74" * 32
    rec.devices[b2.dev_id].classical_allowed = True
    rec.remembered[11] = L.Remembered(S.ed25519_public(b"\x75" * 32), True, T0 - 7)
    rec.remembered[12] = L.Remembered(S.ed25519_public(b"\x76" * 32), False, 2**64 - 1)
    return a, b, rec


@check
def s16_peer_record_saved_form():
    """§16.11 peer record: round trip; every field rule with its error, checked when read;
    sessions from exactly their length; the checks after TrailingBytes."""
    a, b, rec = rich_record()
    enc = rec.to_bytes()
    dec = L.PeerRecord.from_bytes
    assert dec(enc).to_bytes() == enc
    own = L.PeerRecord.new_own(a.device, b"alice", 3)
    assert dec(own.to_bytes()).to_bytes() == own.to_bytes() and dec(own.to_bytes()).local_device == 3
    hdr = 2 + 8 + 32                                    # version, type, generation, local_identity
    ulen = enc[hdr]
    p_dev = hdr + 1 + ulen + 1                           # device_count
    expect("Truncated", lambda: dec(b""))
    expect("WrongType", lambda: dec(b"\x02\x20" + enc[2:]), expected=0x25, found=0x20)
    expect("InvalidPublicKey", lambda: dec(enc[:10] + b"\x01" + bytes(31) + enc[42:]))
    expect("InvalidEncoding", lambda: dec(enc[:hdr] + b"\x00" + enc[hdr + 1:]))
    expect("InvalidEncoding", lambda: dec(enc[:hdr] + b"\x41" + b"u" * 65 + b"\x00\x00"))
    assert dec(enc[:hdr] + b"\x40" + b"u" * 64 + b"\x00\x00\x00").user == b"u" * 64
    expect("InvalidEncoding", lambda: dec(enc[:p_dev - 1] + b"\x02"))
    expect("InvalidEncoding", lambda: dec(enc[:p_dev] + b"\x11"))
    expect("Truncated", lambda: dec(enc[:p_dev] + b"\x10"))
    expect("TrailingBytes", lambda: dec(enc + b"\x00"))
    expect("TooLarge", lambda: dec(enc + bytes(S.MAX_STATE_LEN + 1 - len(enc))))
    devs = {d: e.to_bytes(d) for d, e in rec.devices.items()}
    head = enc[:p_dev]

    def when_read(name, b):
        """A rule checked when read: its error, not TrailingBytes, even with a byte appended."""
        expect(name, lambda: dec(b))
        expect(name, lambda: dec(b + b"\x00"))

    def after_trailing(b):
        """A check after TrailingBytes: InvalidEncoding, but TrailingBytes with a byte appended."""
        expect("InvalidEncoding", lambda: dec(b))
        expect("TrailingBytes", lambda: dec(b + b"\x00"))

    rem = {d: m.to_bytes(d) for d, m in rec.remembered.items()}
    tail = b"\x02" + rem[11] + rem[12]
    assert enc.endswith(tail) and len(rem[11]) == 45

    def with_devices(order, local=None, head=head, tail=tail):
        h2 = head if local is None else head[:-1] + b"\x01" + S.u32(local)
        return h2 + bytes([len(order)]) + b"".join(order) + tail
    assert with_devices([devs[7], devs[9]]) == enc
    back = dec(enc)
    assert [(d, m.identity, m.pinned, m.left) for d, m in sorted(back.remembered.items())] == \
        [(11, rec.remembered[11].identity, True, T0 - 7), (12, rec.remembered[12].identity, False, 2**64 - 1)]
    # F2: the remembered devices' rules, checked when read.
    dv = [devs[7], devs[9]]
    when_read("InvalidEncoding", with_devices(dv, tail=b"\x02" + rem[12] + rem[11]))
    when_read("InvalidEncoding", with_devices(dv, tail=b"\x02" + rem[11] + rem[11]))
    when_read("InvalidEncoding", with_devices(dv, local=11))
    when_read("InvalidEncoding", with_devices(dv, tail=b"\x01" + S.u32(9) + rem[11][4:]))   # a held id
    when_read("InvalidEncoding", with_devices(dv, tail=b"\x21"))
    expect("Truncated", lambda: dec(with_devices(dv, tail=b"\x20")))
    expect("Truncated", lambda: dec(with_devices(dv, tail=b"")))
    when_read("InvalidPublicKey", with_devices(dv, tail=b"\x01" + rem[11][:4] + bytes(32) + rem[11][36:]))
    when_read("InvalidEncoding", with_devices(dv, tail=b"\x01" + rem[11][:36] + b"\x02" + rem[11][37:]))
    assert dec(with_devices(dv, tail=b"\x00")).remembered == {}
    when_read("InvalidEncoding", with_devices([devs[9], devs[7]]))
    when_read("InvalidEncoding", with_devices([devs[7], devs[7]]))
    when_read("InvalidEncoding", with_devices([devs[7]], local=7))
    assert dec(with_devices([devs[7], devs[9]], local=8)).local_device == 8

    def entry(fn, d=9):
        e = copy.deepcopy(rec.devices[d])
        fn(e)
        return e.to_bytes(d)
    when_read("InvalidEncoding", with_devices([devs[7], entry(lambda e: setattr(e, "pending", e.identity))]))
    when_read("InvalidPublicKey", with_devices([devs[7], entry(lambda e: setattr(e, "pending", bytes(32)))]))

    def both(e):
        e.pinned = e.classical_allowed = True
    when_read("InvalidEncoding", with_devices([devs[7], entry(both)]))
    bad_flags = bytearray(devs[9])
    assert bad_flags[36 + 1 + 9] == 2                    # id, identity, no pending, stale 9, flags
    for f in (4, 8, 0x80):
        bad_flags[46] = f
        when_read("InvalidEncoding", with_devices([devs[7], bytes(bad_flags)]))
    bad_flags[46] = 1
    assert dec(with_devices([devs[7], bytes(bad_flags)])).devices[9].pinned
    when_read("InvalidEncoding", with_devices([entry(lambda e: setattr(e, "retry_count", 9), 7), devs[9]]))
    expect("InvalidPublicKey", lambda: dec(with_devices([entry(lambda e: setattr(
        e, "unanswered", L.RetryHint(b"\xff" * 32, 0)), 7), devs[9]])))
    expect("InvalidPublicKey", lambda: dec(with_devices([entry(lambda e: setattr(
        e, "unanswered", L.RetryHint(S.pub(b"\x01" * 32), 0, b"\xff" * 32)), 7), devs[9]])))

    def lost_active(e):
        e.active.lost_to = b"\x01" * 32
    when_read("InvalidEncoding", with_devices([entry(lost_active, 7), devs[9]]))

    def five(e):
        e.archived.append(copy.deepcopy(e.archived[0]))
        for _ in range(3):
            e.archived.append(copy.deepcopy(e.archived[0]))
    expect("InvalidEncoding", lambda: dec(with_devices([entry(five, 7), devs[9]]) + b"\x00"))   # when read
    # A session of exactly its length; one byte short gives its Truncated, one long its TrailingBytes.
    e7 = rec.devices[7]
    act = e7.active.to_bytes()
    sess = e7.active.session.to_bytes()
    p_act = devs[7].index(act)
    n_len = p_act + len(act) - len(sess) - 4

    def relen(delta, extra=b""):
        d7 = devs[7][:n_len] + S.u32(len(sess) + delta) + devs[7][n_len + 4:]
        if extra:
            d7 = d7[:p_act + len(act)] + extra + d7[p_act + len(act):]
        return with_devices([d7, devs[9]])
    assert relen(0) == enc
    expect("Truncated", lambda: dec(relen(-1)))
    expect("TrailingBytes", lambda: dec(relen(1, b"\x00")))
    # After TrailingBytes: identities of the sessions, base keys, the pin.

    def wrong_remote(e):
        e.identity = S.ed25519_public(b"\x7e" * 32)
        e.pending = None
    after_trailing(with_devices([entry(wrong_remote, 7), devs[9]]))

    def same_base(e):
        e.archived.append(copy.deepcopy(e.active))
    after_trailing(with_devices([entry(same_base, 7), devs[9]]))

    def unpinned(e):
        e.pinned = False
    after_trailing(with_devices([entry(unpinned, 7), devs[9]]))
    other_local = enc[:10] + S.ed25519_public(b"\x7f" * 32) + enc[42:]
    after_trailing(other_local)


@check
def s16_group_session_saved_form():
    """§16.11 group session: round trip; user ids, member count and order (a proper prefix first),
    the 494-byte sender, the store from exactly its length, then local_user a member and one group id."""
    me = device("alice")
    g = L.GroupSession.new(SeededRng("gsf"), GID16, b"ab", me)
    g.add_member(b"a")
    g.add_member(b"abc")
    enc = g.to_bytes()
    dec = L.GroupSession.from_bytes
    assert dec(enc).to_bytes() == enc and g.members == [b"a", b"ab", b"abc"]
    p_users = 2 + 8 + 3
    assert enc[p_users:p_users + 2] == b"\x00\x03"
    members = enc[p_users + 2:p_users + 2 + 2 + 3 + 4]
    rest = enc[p_users + 2 + len(members):]

    def build(local=b"ab", ms=(b"a", b"ab", b"abc"), tail=rest, count=None):
        b = b"\x02\x26" + enc[2:10] + bytes([len(local)]) + local
        b += S.u16(len(ms) if count is None else count)
        return b + b"".join(bytes([len(m)]) + m for m in ms) + tail
    assert build() == enc
    expect("InvalidEncoding", lambda: dec(build(local=b"")))
    expect("InvalidEncoding", lambda: dec(build(local=b"x" * 65)))
    expect("InvalidEncoding", lambda: dec(build(count=0, ms=())))
    expect("InvalidEncoding", lambda: dec(build(count=1001, ms=())))
    expect("InvalidEncoding", lambda: dec(build(ms=(b"ab", b"a", b"abc"))))
    expect("InvalidEncoding", lambda: dec(build(ms=(b"a", b"ab", b"ab"))))
    expect("InvalidEncoding", lambda: dec(build(ms=(b"a", b"ab", b"ab")) + b"\x00"))   # when read
    expect("TrailingBytes", lambda: dec(build(ms=(b"a", b"abc", b"abd")) + b"\x00"))
    expect("InvalidEncoding", lambda: dec(build(ms=(b"a", b"", b"abc"))))
    expect("InvalidEncoding", lambda: dec(build(local=b"zz")))
    expect("TrailingBytes", lambda: dec(build(local=b"zz") + b"\x00"))
    expect("Truncated", lambda: dec(build(tail=rest[:493])))
    expect("WrongType", lambda: dec(build(tail=b"\x02\x23" + rest[2:])), expected=0x22, found=0x23)
    st = g.store.to_bytes()
    assert rest[494:] == S.u32(len(st)) + st + b"\x00\x00"            # then no dropped chain
    expect("Truncated", lambda: dec(build(tail=rest[:494] + S.u32(len(st) - 1) + st + b"\x00\x00")))
    expect("TrailingBytes", lambda: dec(build(tail=rest[:494] + S.u32(len(st) + 1) + st + b"\x00\x00\x00")))
    other_store = S.GroupReceivers(b"\x17" * 32).to_bytes()
    expect("InvalidEncoding", lambda: dec(build(tail=rest[:494] + S.u32(len(other_store)) + other_store
                                                + b"\x00\x00")))


@check
def s16_largest_saved_forms():
    """§16.11 largest sizes: the worst session (72,506), a peer record with every optional field
    and 16 devices of five such sessions and four lost-to marks, the own record's local device id
    and 32 remembered devices (5,808,546), a group session of 1,000 64-byte members and 1,024 full receivers."""
    a, b = talking("largest")
    s = copy.deepcopy(a.rec(b).devices[b.dev_id].active.session)
    s.pending = None
    s.sending = S.SendingChain(b"\x01" * 32, b"\x02" * 32, 5)
    s.chains = [S.ReceivingChain(S.pub(bytes([i + 1]) * 32), None if i < 4 else b"\x03" * 32, 2000,
                                 {j: b"\x04" * 32 for j in range(1000 if i > 2 else (0 if i < 2 else 0))})
                for i in range(5)]
    s.chains[2].skipped = {}
    s.DHr = s.chains[-1].ratchet_key
    assert sum(len(c.skipped) for c in s.chains) == 2000
    sess = s.to_bytes()
    assert len(sess) == 72_506 and S.Session.from_bytes(sess).to_bytes() == sess
    r = L.PeerRecord(a.device.identity, b"u" * 64)
    for d in range(16):
        e = L.DeviceEntry(s.remote_identity)
        e.pending, e.stale_since, e.last_recovery = S.ed25519_public(b"\x09" * 32), 1, 2
        e.unanswered = L.RetryHint(S.pub(b"\x05" * 32), 1, S.pub(b"\x06" * 32))
        e.active = L.SessionEntry(s, 1, 2)
        e.archived = [L.SessionEntry(s, 1, 2, b"\x07" * 32) for _ in range(4)]
        r.devices[d] = e
    assert len(r.to_bytes()) == 110 + 16 * (169 + 5 * (22 + 72_506) + 4 * 32) == 5_807_102
    r.local_device = 99
    assert len(r.to_bytes()) == 5_807_106, "the own record's local device id adds 4 bytes"
    for d in range(100, 100 + L.MAX_DELETED_DEVICES):      # F2: every remembered device, 45 bytes each
        r.remembered[d] = L.Remembered(S.ed25519_public(b"\x0a" * 32), True, 2**64 - 1)
    worst = r.to_bytes()
    assert len(worst) == 114 + 32 * 45 + 16 * (169 + 5 * (22 + 72_506) + 4 * 32) == 5_808_546
    assert len(worst) + 51 == 5_808_597 and len(worst) <= S.MAX_STATE_LEN
    assert worst[-45 * 32 - 1] == 32                       # deleted_count, then the entries
    g = L.GroupSession.new(SeededRng("largest g"), GID16, b"\xff" * 64, a.device)
    g.members = sorted([b"\xff" * 64] + [b"%063d" % i + b"m" for i in range(999)])
    rcv = S.GroupReceiver(GID16, S.ed25519_public(b"\x01" * 32), a.identity, True,
                          S.GroupRatchet([b"\x02" * 32] * 8, 300), {i: b"\x03" * 32 for i in range(256)})
    assert len(rcv.to_bytes()) == 9_589
    g.store.receivers = [rcv] * 1024
    assert len(g.to_bytes()) == 9_886_803 + 2
    g.dropped = [(bytes([i >> 8, i & 255]) * 16, b"\x0b" * 32) for i in range(L.MAX_DROPPED_CHAINS)]
    worst = g.to_bytes()
    # §16.11's sum, term by term: 64 bytes per dropped entry (chain id || owner).
    assert len(worst) == (2 + 8 + 65 + 2 + 1_000 * 65 + 494 + 4 + (44 + 1_024 * (2 + 9_589)) + 2
                          + L.MAX_DROPPED_CHAINS * 64) == 9_886_803 + 2 + 1024 * 64 == 9_952_341
    assert len(worst) + 51 == 9_952_392 and len(worst) <= S.MAX_STATE_LEN
    assert len(S.seal(SeededRng("largest seal"), worst, b"\x42" * 32, b"group/largest")) == 9_952_392


@check
def s16_sealed_records():
    """§16.11, §10.5: both forms seal with inner type 0x25 / 0x26 and open only as themselves."""
    a, b, rec = rich_record()
    g = L.GroupSession.new(SeededRng("sealed g"), GID16, b"alice", a.device)
    key, ctx = b"\x42" * 32, b"record/bob"
    for obj, cls, other in ((rec, L.PeerRecord, L.GroupSession), (g, L.GroupSession, L.PeerRecord)):
        sealed = S.seal(SeededRng("seal"), obj.to_bytes(), key, ctx)
        assert sealed[2] == cls.TAG and len(sealed) == len(obj.to_bytes()) + 51
        assert S.open_state(sealed, key, ctx, cls).to_bytes() == obj.to_bytes()
        expect("WrongType", lambda: S.open_state(sealed, key, ctx, other), expected=other.TAG, found=cls.TAG)
        expect("AuthenticationFailed", lambda: S.open_state(sealed, key, b"record/carol", cls))


@check
def s16_random_runs_converge():
    """§16.12 in miniature: random runs of the 1 + 1 model (loss, duplication, reordering, a stale
    restore with after_restore) never decrypt a message twice and converge within one round trip,
    checked at every point where the network is empty. (`python3 selfcheck_sessions.py N` runs N.)"""
    for seed in range(4):
        explore("ci %d" % seed, check_every=True)


# ---------------------------------------------------------------------------
# The §16 security fixes: F1 elapsed time, F2 remembered devices, F3 lists and stale
# devices, F4 group decrypt from a record, F5 the local Device first
# ---------------------------------------------------------------------------

FAR = 2**64 - 1
AGE = L.MAX_STALE_DEVICE_AGE


def key(i):
    return S.ed25519_public(bytes([i]) * 32)


@check
def s16_elapsed_is_a_distance():
    """§16.1 Elapsed time (F1): a bound d has passed when |now - t| >= d. A clock back by less than
    d is no time elapsed; a stored time d or more ahead of now counts as passed: rate limits,
    plan_send's unanswered age, expiry of stale devices and archived sessions."""
    assert L.elapsed(10, 3) == 7 and L.elapsed(3, 10) == 7 and L.elapsed(0, FAR) == FAR
    e = L.DeviceEntry(key(0x31))
    e.retry_window, e.retry_count = T0, L.MAX_RETRY_REQUESTS_PER_INTERVAL
    assert not e.window_allows(T0 - 3599) and not e.window_allows(T0 + 3599)
    assert e.window_allows(T0 - 3600) and e.window_allows(T0 + 3600)
    e.last_recovery = T0
    assert not e.interval_allows(T0 - 3599) and e.interval_allows(T0 - 3600) and e.interval_allows(T0 + 3600)
    e.last_recovery = FAR
    assert e.interval_allows(T0), "a far-future recovery time holds nothing"
    # request_retry: eight requests at a far-future now fill a window that T0 is far from.
    a, b = talking("elapsed")
    r = a.rec(b)
    hint = L.RetryHint(S.pub(b"\x41" * 32), 0)
    for _ in range(L.MAX_RETRY_REQUESTS_PER_INTERVAL):
        r.request_retry(b.dev_id, hint, FAR, a.rng)
    unchanged_all([r], lambda: r.request_retry(b.dev_id, hint, FAR - 3599, FailingRng()), "RecoveryRateLimited")
    r.request_retry(b.dev_id, hint, T0, a.rng)
    d = r.devices[b.dev_id]
    assert (d.retry_window, d.retry_count) == (T0, 1), "the window restarts at now"
    # plan_send: a session we started, created ahead of now, with no reply.
    a, b = parties("elapsed2")
    a.start(b, now=T0 + 3 * AGE)
    plan = lambda now: a.rec(b).plan_send(now)["needs_bundle"]
    assert plan(T0 + 2 * AGE + 1) == [] and plan(T0 + 2 * AGE) == [b.dev_id] and plan(T0) == [b.dev_id]
    # expire: a stale_since and an archived creation far ahead of now.
    a.start(b, now=T0 + 3 * AGE)                         # the first one is archived, never decrypted
    r = a.rec(b)
    r.update_devices([], FAR)
    c = copy.deepcopy(r)
    c.update_devices([(b.dev_id, b.identity)], T0)        # listed again: only the archived one may go
    g = c.generation
    assert c.expire(T0 + 2 * AGE + 1) == ([], 0) and c.generation == g
    assert c.expire(T0 + 2 * AGE) == ([], 1) and c.devices[b.dev_id].archived == [] and c.generation == g + 1
    g = r.generation
    assert r.expire(FAR - AGE + 1) == ([], 1) and r.generation == g + 1, "stale for less than the age"
    assert r.expire(T0) == ([b.dev_id], 0) and r.devices == {} and r.generation == g + 2


def churned():
    """A record of Bob: devices 1-16 listed at T0; 5 leaves at T0 + 1 and is deleted for 17 at
    T0 + 2 (6 gets a pending identity then); at T0 + 3 the list is replaced by 20-35, which
    deletes 1-4 and 6-17 (3 pinned)."""
    me = device("alice")
    rec = L.PeerRecord.new(me, b"bob")
    rec.update_devices([(d, key(d)) for d in range(1, 17)], T0)
    rec.devices[3].pinned = True
    rec.update_devices([(d, key(d)) for d in range(1, 17) if d != 5], T0 + 1)
    out = rec.update_devices([(d, key(d)) for d in range(1, 18) if d not in (5, 6)] + [(6, key(60))], T0 + 2)
    assert out["deleted"] == [5] and out["added"] == [17] and [c["device"] for c in out["identity_changes"]] == [6]
    out = rec.update_devices([(d, key(d)) for d in range(20, 36)], T0 + 3)
    assert out["deleted"] == [1, 2, 3, 4] + list(range(6, 18)) and out["added"] == list(range(20, 36))
    return me, rec


@check
def s16_deleted_devices_are_remembered():
    """§16.2 step 2, §16.4, §16.7, §16.11 (F2): a device deleted to make room is remembered (trusted
    identity, pin, when it left); listed again it comes back with them, relisted or with an identity
    change; the record remembers at most MAX_DELETED_DEVICES, forgetting only those whose age
    passed, else the list is refused; expire forgets them at the age; the saved form keeps them."""
    me, rec = churned()
    assert sorted(rec.remembered) == [1, 2, 3, 4] + list(range(5, 18))
    m5, m6, m3 = rec.remembered[5], rec.remembered[6], rec.remembered[3]
    assert (m5.identity, m5.pinned, m5.left) == (key(5), False, T0 + 1), "stale_since kept"
    assert (m6.identity, m6.left) == (key(6), T0 + 3), "the trusted identity, not the pending one"
    assert m3.pinned and not rec.remembered[4].pinned
    assert L.PeerRecord.from_bytes(rec.to_bytes()).to_bytes() == rec.to_bytes()
    # Listed again: 3 with its key (relisted, pinned), 1 with another (identity change, pending).
    r = copy.deepcopy(rec)
    g = r.generation
    out = r.update_devices([(1, key(50)), (3, key(3))] + [(d, key(d)) for d in range(21, 35)], T0 + 4)
    assert out["deleted"] == [20, 35] and out["added"] == [] and out["relisted"] == [3]
    assert [(c["device"], c["trusted_fingerprint"], c["identity"]) for c in out["identity_changes"]] == \
        [(1, S.fingerprint(key(1)), key(50))]
    assert r.devices[3].identity == key(3) and r.devices[3].pinned and r.devices[3].listed
    assert r.devices[3].active is None and r.devices[1].identity == key(1) and r.devices[1].pending == key(50)
    assert 1 not in r.remembered and 3 not in r.remembered and r.remembered[20].left == T0 + 4
    assert r.generation == g + 1
    expect("PostQuantumRequired", lambda: r.allow_classical(3, True))
    r.acknowledge_identity(1, key(50))
    assert r.devices[1].identity == key(50)
    # Not remembered: added as before.
    r2 = copy.deepcopy(rec)
    assert r2.update_devices([(d, key(d)) for d in range(20, 35)] + [(40, key(40))], T0 + 4)["added"] == [40]
    # The bound: 17 remembered + 16 more is 33; only a device whose age passed is forgotten.
    new = [(d, key(d)) for d in range(40, 56)]
    r3 = copy.deepcopy(rec)
    unchanged_all([r3], lambda: r3.update_devices(new, T0 + AGE), "InvalidDeviceList")
    out = r3.update_devices(new, T0 + 1 + AGE)
    assert 5 not in r3.remembered and len(r3.remembered) == L.MAX_DELETED_DEVICES and len(out["deleted"]) == 16
    r4 = copy.deepcopy(rec)
    r4.remembered[5].left = FAR                            # written while the clock was far ahead
    r4.update_devices(new, T0)
    assert 5 not in r4.remembered and len(r4.remembered) == L.MAX_DELETED_DEVICES
    # expire forgets at the age; the generation moves for that alone.
    r5 = copy.deepcopy(rec)
    g = r5.generation
    assert r5.expire(T0 + AGE) == ([], 0) and r5.generation == g and 5 in r5.remembered
    assert r5.expire(T0 + 1 + AGE) == ([], 0) and r5.generation == g + 1 and 5 not in r5.remembered
    assert r5.expire(T0 + 3 + AGE) == ([], 0) and r5.remembered == {} and r5.generation == g + 2
    assert r5.update_devices([(1, key(51))], T0 + 4 + AGE)["added"] == [1]


@check
def s16_device_list_keeps_trusted_keys_distinct():
    """§16.2 (F3a): InvalidDeviceList, changing nothing, for a list that gives a device the trusted
    identity of another device it lists with another identity, held (listed, stale, pending) or
    remembered; a key of a device the list leaves out may be given."""
    me, rec = churned()
    r = copy.deepcopy(rec)
    r.update_devices([(d, key(d)) for d in range(20, 36) if d != 22], T0 + 4)     # 22 stale
    base = [(d, key(d)) for d in range(23, 35)]
    unchanged_all([r], lambda: r.update_devices(base + [(20, key(70)), (21, key(20))], T0 + 5),
                  "InvalidDeviceList")
    unchanged_all([r], lambda: r.update_devices(base + [(22, key(71)), (21, key(22))], T0 + 5),
                  "InvalidDeviceList")                                          # a stale device's key
    unchanged_all([r], lambda: r.update_devices(base[:10] + [(2, key(72)), (21, key(2))], T0 + 5),
                  "InvalidDeviceList")                                          # a remembered key
    p = copy.deepcopy(r)
    p.update_devices([(d, key(d)) for d in range(20, 36) if d != 22] [:-1] + [(35, key(73))], T0 + 5)
    assert p.devices[35].pending == key(73)
    unchanged_all([p], lambda: p.update_devices(base + [(35, key(74)), (21, key(35))], T0 + 6),
                  "InvalidDeviceList")                                          # trusted, not pending
    # The key of a device left out (20) may go to another (21): it is no longer listed.
    out = r.update_devices(base + [(21, key(20))], T0 + 5)
    assert [c["device"] for c in out["identity_changes"]] == [21] and 20 in out["removed"]


@check
def s16_group_decrypt_from_a_record():
    """§16.8 decrypt(record, message) (F4): Ignore(WrongLocalDevice) if the record is not the local
    device's, then Ignore(Malformed) NotGroupMember, then for a held chain Ignore(Malformed)
    IdentityMismatch if its owner is not the trusted identity of a device (listed or stale) of the
    record, RetryLater(IdentityChangePending) if that device has a pending one; then the store."""
    a, a2, b2, b3, c, g = group_world("f4")
    out = g.distribute(records_of(a, b"bob", b"carol", b"alice"), SeededRng("f4 d"))
    bg = L.GroupSession.new(SeededRng("f4 bob group"), GID16, b"bob", b2.device)
    bg.add_member(b"alice")
    brec = b2.rec(a)
    assert bg.install(brec, received(b2.recv(a, out[0][0][0][1]), kind=L.FRAME_DISTRIBUTION)) == S.ADDED
    m = g.encrypt(b"f4", SeededRng("f4 e"))

    def fails(rec, msg, want):
        f = failure_unchanged([bg, rec], lambda: bg.decrypt(rec, msg))
        assert (f.action, f.detail, f.error) == want, f
    not_local = L.PeerRecord.new(c.device, b"dave")                     # not local, not a member
    fails(not_local, m, (L.IGNORE, L.WRONG_LOCAL_DEVICE, "IdentityMismatch"))
    fails(L.PeerRecord.new(b2.device, b"carol"), m, (L.IGNORE, L.MALFORMED, "NotGroupMember"))
    own = L.PeerRecord.new_own(b2.device, b"bob", b2.dev_id)
    own.update_devices([(b3.dev_id, b3.identity)], T0)
    fails(own, m, (L.IGNORE, L.MALFORMED, "IdentityMismatch"))          # attributed to its user only
    pend = copy.deepcopy(brec)
    pend.update_devices([(a.dev_id, key(0x52))], T0)
    fails(pend, m, (L.RETRY_LATER, L.IDENTITY_CHANGE_PENDING, "IdentityChangePending"))
    pend.acknowledge_identity(a.dev_id, key(0x52))
    fails(pend, m, (L.IGNORE, L.MALFORMED, "IdentityMismatch"))         # a replaced key's chain
    gone = L.PeerRecord.new(b2.device, b"alice")
    fails(gone, m, (L.IGNORE, L.MALFORMED, "IdentityMismatch"))
    other = L.GroupSession.new(SeededRng("f4 carol"), GID16, b"carol", c.device)
    fails(gone, other.encrypt(b"?", SeededRng("f4 c")), (L.RETRY_LATER, L.MISSING_DISTRIBUTION, "UnknownGroupChain"))
    stale = copy.deepcopy(brec)
    stale.update_devices([], T0)
    gen = bg.generation
    assert bg.decrypt(stale, m) == (b"f4", ("Authenticated", a.identity)) and bg.generation == gen + 1
    f = failure_unchanged([bg], lambda: bg.decrypt(brec, m))
    assert (f.action, f.detail, f.error) == (L.IGNORE, L.DUPLICATE, "DuplicateMessage")


@check
def s16_group_local_device_first():
    """§16.8 (F5): remove_member, rotate and after_restore check `local` before anything else."""
    a, a2, b2, b3, c, g = group_world("f5")
    unchanged_all([g], lambda: g.remove_member(b2.device, b"dave", [], FailingRng()), "IdentityMismatch")
    unchanged_all([g], lambda: g.rotate(b2.device, [], FailingRng()), "IdentityMismatch")
    unchanged_all([g], lambda: g.after_restore(b2.device, 0, FailingRng()), "IdentityMismatch")
    unchanged_all([g], lambda: g.rotate(a.device, [], FailingRng()), "NotGroupMember")


# ---------------------------------------------------------------------------
# F8 and the rules that came with it (§16.5 marks, §16.6, §16.8 dropped chains, §16.11)
# ---------------------------------------------------------------------------

def _retry_on_archived(tag):
    """f holds K1 (archived) and K2 (active, started by e); e sends on K1 a retry request naming
    K2. -> (K1, K2, f's device entry of e)."""
    e, f = talking("f8 arch " + tag)
    k1 = active_base(e, f)
    e.start(f)
    received(f.recv(e, e.send(f, b"on K2")))
    k2 = active_base(f, e)
    assert k2 != k1
    old = e.rec(f).devices[f.dev_id].archived[0]
    assert old.base_key == k1
    msg = old.session.encrypt(e.rng, L.frame(L.FRAME_RETRY, L.RetryHint(S.pub(b"\x01" * 32), 0, k2).to_bytes()))
    received(f.recv(e, msg), kind=L.FRAME_RETRY)
    return k1, k2, f.rec(e).devices[e.dev_id]


def _retry_in_new_session(tag):
    """a and b share K (answered); b starts a new session N whose retry request names K.
    -> (N, K, a's device entry of b)."""
    a, b = talking("f8 acc " + tag)
    k = active_base(a, b)
    hint = L.RetryHint(S.pub(b"\x02" * 32), 3, k)
    msg = b.rec(a).start_new_session(b.device, a.dev_id, a.bundle(), hint, T0, b.rng)
    received(a.recv(b, msg), kind=L.FRAME_RETRY)
    return active_base(a, b), k, a.rec(b).devices[b.dev_id]


@check
def s16_marks_point_to_smaller_base_keys():
    """§16.5 Marks (F8): where a rule marks the session it archives as having lost to a session
    with a larger base key, it archives it without a mark; with a smaller one, the mark stays.
    Both placements that mark (a retry request on an archived session, an accept carrying one),
    each seen with both orders of the base keys."""
    seen = set()
    for i in range(12):
        x, a, dev = _retry_on_archived(str(i))
        assert dev.active.base_key == x and dev.active.lost_to is None
        assert dev.archived[0].base_key == a
        assert dev.archived[0].lost_to == (x if x < a else None), (x < a, dev.archived[0].lost_to)
        seen.add(("archived", x < a))
        n, k, dev = _retry_in_new_session(str(i))
        assert dev.active.base_key == n and dev.archived[0].base_key == k
        assert dev.archived[0].lost_to == (n if n < k else None), (n < k, dev.archived[0].lost_to)
        seen.add(("accept", n < k))
        if len(seen) == 4:
            break
    assert len(seen) == 4, "every case seen: %r" % sorted(seen)


@check
def s16_crossed_retry_requests_cannot_split_a_pair():
    """§16.5 Marks, §16.6 (F8): two sides hold K1 and K2, each active on another one (a split a
    forged header can make); each asks the other, in its active session, to leave its own, and
    the requests cross. With marks only to smaller base keys the pair converges (§16.12)."""
    a, b = talking("crossed")
    k1 = active_base(a, b)
    a.start(b)
    received(b.recv(a, a.send(b, b"on K2")))
    k2 = active_base(b, a)
    old = b.rec(a).devices[a.dev_id].archived[0]
    assert old.base_key == k1
    received(a.recv(b, old.session.encrypt(b.rng, L.frame(L.FRAME_PAYLOAD, b"late on K1"))))
    assert (active_base(a, b), active_base(b, a)) == (k1, k2), "split: A on K1, B on K2"
    ra = a.rec(b).request_retry(b.dev_id, L.RetryHint(S.pub(b"\x0a" * 32), 0, k2), T0, a.rng)
    rb = b.rec(a).request_retry(a.dev_id, L.RetryHint(S.pub(b"\x0b" * 32), 0, k1), T0, b.rng)
    received(b.recv(a, ra), kind=L.FRAME_RETRY)
    received(a.recv(b, rb), kind=L.FRAME_RETRY)
    assert (active_base(a, b), active_base(b, a)) == (k2, k1), "the requests crossed"
    small, large = min(k1, k2), max(k1, k2)
    for p, q in ((a, b), (b, a)):
        marks = {e.base_key: e.lost_to for e in p.rec(q).devices[q.dev_id].archived}
        assert all(m is None or m < k for k, m in marks.items())
        assert marks.get(large) in (None, small) and marks.get(small) is None
    World(a, b).converged(a, b, b"crossed")
    assert active_base(a, b) == active_base(b, a) == small


@check
def s16_saved_marks_point_to_smaller_base_keys():
    """§16.11 (F8): the saved record refuses a lost_to not smaller than its session's own base
    key (equal included) with InvalidEncoding, checked after TrailingBytes."""
    for i in range(12):
        x, a, dev = _retry_on_archived("saved %d" % i)
        if x < a:
            break
    assert dev.archived[0].lost_to == x
    # The record holding `dev`: rebuild it around the entry with marks of every order.
    holder = L.PeerRecord(dev.active.session.local_identity, b"e")
    holder.devices[9] = dev
    good = holder.to_bytes()
    assert L.PeerRecord.from_bytes(good).to_bytes() == good
    entry = dev.archived[0]
    for bad in (entry.base_key, (int.from_bytes(entry.base_key, "big") + 1).to_bytes(32, "big"), b"\xff" * 32):
        if bad == b"\xff" * 32 and entry.base_key == bad:
            continue
        entry.lost_to = bad
        form = holder.to_bytes()
        expect("InvalidEncoding", lambda: L.PeerRecord.from_bytes(form))
        expect("TrailingBytes", lambda: L.PeerRecord.from_bytes(form + b"\x00"))
    entry.lost_to = (int.from_bytes(entry.base_key, "big") - 1).to_bytes(32, "big")
    form = holder.to_bytes()
    assert L.PeerRecord.from_bytes(form).to_bytes() == form, "a smaller mark is taken as it is"


@check
def s16_unanswered_request_without_interval_is_a_retry():
    """§16.6 broken, fourth rule (F8): a retry request is unanswered: a new session with that
    request's hint if the recovery interval allows it, else a retry (RequestRetry with the failed
    message's hint while the window allows, else Ignore(RecoveryPending))."""
    a, b = talking("unans8")
    old = copy.deepcopy(a.rec(b).devices[b.dev_id].active.session)
    received(b.recv(a, a.send(b, b"advance")))
    received(a.recv(b, b.send(a, b"advance back")))
    m = old.encrypt(SeededRng("diverged"), L.frame(L.FRAME_PAYLOAD, b"from the past"))
    dev = b.rec(a).devices[a.dev_id]
    first = L.RetryHint(S.pub(b"\x0e" * 32), 9)
    dev.unanswered = first
    res = failure_unchanged([b.rec(a), b.device], lambda: b.recv(a, m))
    assert res.action == L.START_NEW_SESSION and res.detail == first, res
    dev.last_recovery = T0 - 10                          # the interval does not allow a new session
    res = failure_unchanged([b.rec(a), b.device], lambda: b.recv(a, m))
    assert res.action == L.REQUEST_RETRY and res.detail == L.RetryHint.of(S.parse_message(m)), res
    assert res.error == "SessionDiverged"
    dev.retry_window, dev.retry_count = T0 - 5, L.MAX_RETRY_REQUESTS_PER_INTERVAL
    res = failure_unchanged([b.rec(a), b.device], lambda: b.recv(a, m))
    assert (res.action, res.detail, res.error) == (L.IGNORE, L.RECOVERY_PENDING, "SessionDiverged"), res
    dev.last_recovery = T0 - L.MIN_RECOVERY_INTERVAL     # the interval allows it again
    res = failure_unchanged([b.rec(a), b.device], lambda: b.recv(a, m))
    assert res.action == L.START_NEW_SESSION and res.detail == first, res


@check
def s16_new_session_for_a_stale_device_is_retry_later():
    """§16.6: a "new session" for a stale device is RetryLater(UnknownDevice) with the error
    UnknownDevice, whatever the interval, also for an unanswered retry request (whose fallback
    for a listed device is a retry); a retry for it is still a retry."""
    a, b = talking("stale8")
    old = copy.deepcopy(a.rec(b).devices[b.dev_id].active.session)
    received(b.recv(a, a.send(b, b"advance")))
    received(a.recv(b, b.send(a, b"reply")))
    b.rec(a).update_devices([], T0)                      # Alice's device leaves Bob's list: stale
    dev = b.rec(a).devices[a.dev_id]
    assert not dev.listed
    received(b.recv(a, a.send(b, b"still decrypts")))
    dev = b.rec(a).devices[a.dev_id]                     # (a success replaces the record's entries)
    m = old.encrypt(SeededRng("stale diverged"), L.frame(L.FRAME_PAYLOAD, b"x"))
    res = failure_unchanged([b.rec(a), b.device], lambda: b.recv(a, m))
    assert res.action == L.REQUEST_RETRY and res.error == "SessionDiverged", res
    e = dev.active
    # broken without an active session: a new session -> RetryLater(UnknownDevice), any interval.
    dev.active, dev.archived = None, [e]
    for last in (None, T0 - 1):
        dev.last_recovery = last
        res = failure_unchanged([b.rec(a), b.device], lambda: b.recv(a, m))
        assert (res.action, res.detail, res.error) == (L.RETRY_LATER, L.UNKNOWN_DEVICE, "UnknownDevice"), res
    dev.active, dev.archived = e, []
    # lost on the active session: still a retry for a stale device.
    dev.last_recovery = None
    res = failure_unchanged([b.rec(a), b.device], lambda: b.recv(a, tamper(a.send(b, b"lost"))))
    assert res.action == L.REQUEST_RETRY and res.error == "AuthenticationFailed", res
    # lost without an active session: a new session -> RetryLater(UnknownDevice).
    dev.active, dev.archived = None, [e]
    res = failure_unchanged([b.rec(a), b.device], lambda: b.recv(a, tamper(a.send(b, b"lost 2"))))
    assert (res.action, res.detail, res.error) == (L.RETRY_LATER, L.UNKNOWN_DEVICE, "UnknownDevice"), res
    # An unanswered request: RetryLater(UnknownDevice) whatever the interval (§16.6 as of s-fixes
    # 8653c3d, S10); a listed device with the interval used gets a retry instead.
    dev.active, dev.archived = e, []
    dev.unanswered = L.RetryHint(S.pub(b"\x0e" * 32), 9)
    for last in (T0 - 1, None):
        dev.last_recovery = last
        res = failure_unchanged([b.rec(a), b.device], lambda: b.recv(a, m))
        assert (res.action, res.detail, res.error) == (L.RETRY_LATER, L.UNKNOWN_DEVICE, "UnknownDevice"), res
    dev.stale_since, dev.last_recovery = None, T0 - 1
    res = failure_unchanged([b.rec(a), b.device], lambda: b.recv(a, m))
    assert res.action == L.REQUEST_RETRY, res


def _chain_of(p, a, tag):
    """A GroupSession of party p (its own sender) and the Received of its distribution at a."""
    pg = L.GroupSession.new(SeededRng("dropped %s %s" % (p.label, tag)), GID16, p.user, p.device)
    dm = p.rec(a).devices[a.dev_id].active.session.encrypt(p.rng, L.frame(L.FRAME_DISTRIBUTION,
                                                                          pg.sender.distribution()))
    return pg, received(a.recv(p, dm), kind=L.FRAME_DISTRIBUTION)


@check
def s16_group_dropped_chains():
    """§16.8 dropped chains: a removal drops the chains it removes (in the store's order) and an
    Added install drops the chains the store evicted, each with the owner the store held it
    under; the install of a dropped chain is Unchanged and changes nothing (the generation
    neither); after_restore drops nothing and keeps the list."""
    a, a2, b2, b3, c, g = group_world("dropped")
    for p in (b2, c):
        received(a.recv(p, p.rec(a).encrypt_to(a.dev_id, b"", p.rng)))
    cg, cd = _chain_of(c, a, "1")
    bg, bd = _chain_of(b2, a, "1")
    assert g.install(a.rec(c), cd) == S.ADDED and g.install(a.rec(b2), bd) == S.ADDED
    assert g.dropped == []
    g.remove_member(a.device, b"carol", records_of(a, b"bob", b"alice"), SeededRng("drop rm"))
    assert g.dropped == [(cg.sender.chain, c.identity)]
    g.add_member(b"carol")
    snap = g.to_bytes()
    assert g.install(a.rec(c), cd) == S.UNCHANGED and g.to_bytes() == snap, "a late copy is refused"
    m = cg.encrypt(b"late", SeededRng("late"))
    f = failure_unchanged([g], lambda: g.decrypt(a.rec(c), m))
    assert (f.action, f.detail) == (L.RETRY_LATER, L.MISSING_DISTRIBUTION), f
    # The checks before it still come first.
    unchanged_all([g], lambda: g.install(a.rec(b2), cd), "IdentityMismatch")
    # Eviction (MAX_CHAINS_PER_SENDER chains of one owner): the oldest is dropped.
    chains = [bg.sender.chain]
    for i in range(S.MAX_CHAINS_PER_SENDER):
        bgi, bdi = _chain_of(b2, a, "ev%d" % i)
        assert g.install(a.rec(b2), bdi) == S.ADDED
        chains.append(bgi.sender.chain)
    assert g.dropped == [(cg.sender.chain, c.identity), (chains[0], b2.identity)]
    assert g.install(a.rec(b2), bd) == S.UNCHANGED
    # after_restore: a new, empty store; its chains are not dropped, the list is the copy's.
    read = bgi.encrypt(b"read before the restore", SeededRng("drop read"))
    assert g.decrypt(a.rec(b2), read)[0] == b"read before the restore"
    before = list(g.dropped)
    g.after_restore(a.device, g.generation + 5, SeededRng("drop restore"))
    assert g.store.receivers == [] and g.dropped == before
    assert g.install(a.rec(b2), bd) == S.UNCHANGED
    # So a held-back distribution at an earlier index installs, and what was read decrypts again.
    assert g.install(a.rec(b2), bdi) == S.ADDED
    assert g.decrypt(a.rec(b2), read)[0] == b"read before the restore"
    # "A dropped chain": its id, whatever owner it was dropped with.
    g.dropped = [(bg.sender.chain, c.identity)]
    snap = g.to_bytes()
    assert g.install(a.rec(b2), bd) == S.UNCHANGED and g.to_bytes() == snap


@check
def s16_group_install_from_a_stale_device():
    """§16.8 install: UnknownDevice if the device the distribution came from is stale, nothing
    changing; after IdentityMismatch and IdentityChangePending, before the dropped-chain check (a
    dropped chain's copy from a stale device is UnknownDevice, not Unchanged). The chains the
    device has in the store still decrypt; listed again, its distribution installs."""
    a, a2, b2, b3, c, g = group_world("stale install")
    received(a.recv(b2, b2.rec(a).encrypt_to(a.dev_id, b"", b2.rng)))
    brec = a.rec(b2)
    # While listed: the first chain is evicted by MAX_CHAINS_PER_SENDER later ones (dropped).
    g0, d0 = _chain_of(b2, a, "st0")
    assert g.install(brec, d0) == S.ADDED
    for i in range(S.MAX_CHAINS_PER_SENDER):
        held, dh = _chain_of(b2, a, "st%d" % (i + 1))
        assert g.install(brec, dh) == S.ADDED
    assert g.dropped == [(g0.sender.chain, b2.identity)]
    in_flight = held.encrypt(b"in flight", SeededRng("st flight"))
    # The list leaves device 2 out; its pairwise message still decrypts (a stale device reads).
    brec.update_devices([(b3.dev_id, b3.identity)], T0 + 10)
    assert not brec.devices[b2.dev_id].listed and brec.devices[b2.dev_id].pending is None
    ng, nd = _chain_of(b2, a, "st new")
    unchanged_all([g, brec], lambda: g.install(brec, nd), "UnknownDevice")
    # Nor move one: a chain the store holds, its distribution again (at a later index too).
    unchanged_all([g, brec], lambda: g.install(brec, dh), "UnknownDevice")
    held.encrypt(b"moved on", SeededRng("st moved"))
    dm = b2.rec(a).devices[a.dev_id].active.session.encrypt(
        b2.rng, L.frame(L.FRAME_DISTRIBUTION, held.sender.distribution()))
    later = received(a.recv(b2, dm), kind=L.FRAME_DISTRIBUTION)
    assert later.value.chain == dh.value.chain and later.value.to_bytes() != dh.value.to_bytes()
    unchanged_all([g, brec], lambda: g.install(brec, later), "UnknownDevice")
    # Stale before dropped: the late copy of a dropped chain is refused too, as UnknownDevice.
    unchanged_all([g, brec], lambda: g.install(brec, d0), "UnknownDevice")
    # Checks before it: a stale device whose trusted key is not the sender's is IdentityMismatch.
    wrong = copy.copy(nd)
    wrong.identity = b3.identity
    unchanged_all([g, brec], lambda: g.install(brec, wrong), "IdentityMismatch")
    # Pending before stale: listed with another key (pending), then left out (stale, still pending).
    pend = copy.deepcopy(brec)
    pend.update_devices([(b2.dev_id, S.ed25519_public(b"\x92" * 32)), (b3.dev_id, b3.identity)], T0 + 20)
    pend.update_devices([(b3.dev_id, b3.identity)], T0 + 30)
    assert not pend.devices[b2.dev_id].listed and pend.devices[b2.dev_id].pending is not None
    unchanged_all([g, pend], lambda: g.install(pend, nd), "IdentityChangePending")
    unchanged_all([g, pend], lambda: g.install(pend, d0), "IdentityChangePending")
    # The chain it has in the store still decrypts; the refused one is missing.
    assert g.decrypt(brec, in_flight) == (b"in flight", ("Authenticated", b2.identity))
    new_msg = ng.encrypt(b"on the new chain", SeededRng("st new msg"))
    f = failure_unchanged([g], lambda: g.decrypt(brec, new_msg))
    assert (f.action, f.detail, f.error) == (L.RETRY_LATER, L.MISSING_DISTRIBUTION, "UnknownGroupChain"), f
    # Listed again: the new chain installs, the dropped one stays refused.
    brec.update_devices([(b2.dev_id, b2.identity), (b3.dev_id, b3.identity)], T0 + 40)
    assert brec.devices[b2.dev_id].listed
    gen = g.generation
    assert g.install(brec, nd) == S.ADDED and g.generation == gen + 1
    assert g.decrypt(brec, new_msg) == (b"on the new chain", ("Authenticated", b2.identity))
    snap = g.to_bytes()
    assert g.install(brec, d0) == S.UNCHANGED and g.to_bytes() == snap


def _ent(owner, i):
    """A dropped entry of owner byte `owner`: (chain id, owner identity key), ids distinct per (owner, i)."""
    return (bytes([owner, i >> 8, i & 255]) * 10 + b"cc", bytes([owner]) * 32)


def _owners(lst):
    return [o[0] for _, o in lst]


@check
def s16_group_dropped_chains_forget_per_owner():
    """§16.8: adding an entry to a full list (MAX_DROPPED_CHAINS) first forgets one: counting the
    entries of each owner in the list before the new one is added, the oldest entry whose owner
    has the largest count. Then the entry is appended. Several entries dropped in one step are
    added one at a time, in order."""
    M, B, C = 0x4D, 0x42, 0x43
    N = L.MAX_DROPPED_CHAINS
    assert N == 1_024
    g = L.GroupSession()

    def after(lst, *new):
        g.dropped = list(lst)
        g._drop(list(new))
        return g.dropped

    # Below the bound nothing is forgotten.
    lst = [_ent(M, i) for i in range(N - 1)]
    assert after(lst, _ent(B, 0)) == lst + [_ent(B, 0)]
    # 1023 of M and 1 of B, B's the oldest of all: adding M's forgets M's oldest, keeps B's.
    for at in (0, 500, N - 1):
        lst = [_ent(M, i) for i in range(N - 1)]
        lst.insert(at, _ent(B, 0))
        for new in (_ent(M, 5000), _ent(B, 1)):            # whoever's entry is added
            out = after(lst, new)
            assert len(out) == N and _ent(B, 0) in out and _ent(M, 0) not in out, (at, new)
            assert out == [e for e in lst if e != _ent(M, 0)] + [new]
    # Ties: the owner whose entry is oldest, whichever it is (B's bytes below M's, then above).
    alt_b = [e for i in range(N // 2) for e in (_ent(B, i), _ent(M, i))]
    alt_m = [e for i in range(N // 2) for e in (_ent(M, i), _ent(B, i))]
    for lst, oldest in ((alt_b, _ent(B, 0)), (alt_m, _ent(M, 0))):
        for new in (_ent(M, 5000), _ent(B, 5000)):
            # Counting before the new one is added: 512 each, a tie, even when the new one is M's.
            assert after(lst, new) == lst[1:] + [new], (oldest, new)
    # A third owner with the oldest entries but fewer of them keeps them.
    lst = [_ent(C, i) for i in range(224)] + [e for i in range(400) for e in (_ent(B, i), _ent(M, i))]
    out = after(lst, _ent(C, 900))
    assert out == lst[:224] + lst[225:] + [_ent(C, 900)]
    assert _owners(out).count(C) == 225
    # Several in one step: each added as its own addition, counted afresh.
    lst = [_ent(B, i) for i in range(511)] + [_ent(M, i) for i in range(513)]
    out = after(lst, _ent(B, 600), _ent(B, 601))
    # first: M has 513, the most: M's oldest goes; then 512 each: the oldest entry (B's) goes.
    assert out == lst[1:511] + lst[512:] + [_ent(B, 600), _ent(B, 601)]
    assert _owners(out).count(B) == _owners(out).count(M) == 512
    # A list decoded full stays full: the entries' owners are compared as bytes.
    lst = [_ent(M, i) for i in range(N)]
    assert after(lst, _ent(M, 9000)) == lst[1:] + [_ent(M, 9000)]


@check
def s16_group_dropped_chains_keep_per_owner():
    """§16.8: "with n owners in a full list, each keeps at least its latest
    MAX_DROPPED_CHAINS / n - 1 entries (integer division), or all it has if fewer", checked on
    random runs of additions: one owner flooding, a few, many."""
    import random
    N = L.MAX_DROPPED_CHAINS
    for seed, owners, weights, adds in ((1, 2, [50, 1], 1400), (2, 5, [8, 4, 2, 1, 1], 1500),
                                        (3, 40, None, 1600), (4, 1100, None, 2300)):
        rnd = random.Random(seed)
        g = L.GroupSession()
        added = {}
        for k in range(adds):
            o = rnd.choices(range(owners), weights)[0] if weights else rnd.randrange(owners)
            e = (k.to_bytes(32, "big"), o.to_bytes(32, "big"))
            added.setdefault(e[1], []).append(e)
            g._drop([e])
            assert len(g.dropped) == min(k + 1, N)
            if len(g.dropped) < N or k % 97:
                continue
            held = {}
            for x in g.dropped:
                held.setdefault(x[1], []).append(x)
            n = len(held)
            for o_, es in added.items():
                want = min(len(es), N // n - 1)
                assert want == 0 or held.get(o_, [])[-want:] == es[-want:], (seed, k, n)
                # And what an owner keeps is its latest: the list forgets its oldest first.
                kept = held.get(o_, [])
                assert kept == es[len(es) - len(kept):], (seed, k)


@check
def s16_group_dropped_chains_one_owner_cannot_flush():
    """§16.8 at the attacker's place: a member whose own rotations fill the full list (each
    authenticated install evicting one of its older chains) forgets its own dropped chains, not
    another member's; that member's late distribution stays refused, across a save."""
    a, a2, b2, b3, c, g = group_world("no flush")
    for p in (b2, c):
        received(a.recv(p, p.rec(a).encrypt_to(a.dev_id, b"", p.rng)))
    cg, cd = _chain_of(c, a, "nf")
    assert g.install(a.rec(c), cd) == S.ADDED
    g.remove_member(a.device, b"carol", records_of(a, b"bob", b"alice"), SeededRng("nf rm"))
    g.add_member(b"carol")
    assert g.dropped == [(cg.sender.chain, c.identity)]
    # Bob's earlier chains (as many as fill the list), all newer than Carol's.
    g.dropped += [(bytes([0xB0, i >> 8, i & 255]) + b"\x00" * 29, b2.identity)
                  for i in range(L.MAX_DROPPED_CHAINS - 1)]
    g = L.GroupSession.from_bytes(g.to_bytes())
    for i in range(S.MAX_CHAINS_PER_SENDER + 2):
        _, bdi = _chain_of(b2, a, "nf%d" % i)
        assert g.install(a.rec(b2), bdi) == S.ADDED
    assert len(g.dropped) == L.MAX_DROPPED_CHAINS
    assert g.dropped[0] == (cg.sender.chain, c.identity), "Carol's dropped chain is remembered"
    assert [o for _, o in g.dropped].count(b2.identity) == L.MAX_DROPPED_CHAINS - 1
    assert g.dropped[1][0] == bytes([0xB0, 0, 2]) + b"\x00" * 29, "Bob's two oldest went"
    g = L.GroupSession.from_bytes(g.to_bytes())
    snap = g.to_bytes()
    assert g.install(a.rec(c), cd) == S.UNCHANGED and g.to_bytes() == snap


@check
def s16_group_dropped_chains_keep_the_owner_held_under():
    """§16.8: a dropped entry's owner is the identity the store held the chain under, authenticated
    or claimed: an unauthenticated chain evicted for room by an authenticated install, or removed
    by a rotation, is dropped with its claimed owner."""
    a, a2, b2, b3, c, g = group_world("held under")
    received(a.recv(b2, b2.rec(a).encrypt_to(a.dev_id, b"", b2.rng)))
    Z = S.ed25519_public(b"\x5a" * 32)

    def rcv(chain, owner, authenticated):
        return S.GroupReceiver(GID16, chain, owner, authenticated, S.GroupRatchet([b"\x02" * 32] * 8, 0))
    base = g.to_bytes()
    # A full store (as a saved one can be): the oldest chain unauthenticated, claimed by Z.
    key = [S.ed25519_public(i.to_bytes(4, "big") * 8) for i in range(S.MAX_GROUP_RECEIVERS + 2)]
    g.store.receivers = [rcv(key[-1], Z, False)] + [
        rcv(key[i], key[i + 1], True) for i in range(S.MAX_GROUP_RECEIVERS - 1)]
    g = L.GroupSession.from_bytes(g.to_bytes())
    _, bd = _chain_of(b2, a, "hu")
    assert g.install(a.rec(b2), bd) == S.ADDED
    assert g.dropped == [(key[-1], Z)], "evicted with its claimed owner, not the installer"
    # A rotation removes an unauthenticated chain claimed by an identity of no record.
    g = L.GroupSession.from_bytes(base)
    g.store.receivers = [rcv(key[-1], Z, False), rcv(key[-2], b2.identity, False)]
    g.rotate(a.device, records_of(a, b"bob", b"carol", b"alice"), SeededRng("hu rot"))
    assert g.dropped == [(key[-1], Z)] and [h.chain for h in g.store.receivers] == [key[-2]]


@check
def s16_group_dropped_chains_saved_form():
    """§16.11 0x26: after the store, dropped_count u16 (<= MAX_DROPPED_CHAINS) and per entry the
    chain id then its owner's identity key, 64 bytes, oldest first, both taken as they are; after
    TrailingBytes, InvalidEncoding if a chain is dropped twice (by its id, whatever the owners) or
    the store holds a dropped chain."""
    a, a2, b2, b3, c, g = group_world("dropped form")
    received(a.recv(b2, b2.rec(a).encrypt_to(a.dev_id, b"", b2.rng)))
    bg, bd = _chain_of(b2, a, "form")
    g.install(a.rec(b2), bd)
    base = g.to_bytes()
    assert base.endswith(b"\x00\x00")
    X1, X2, O1, O2 = b"\x31" * 32, b"\x32" * 32, b"\x41" * 32, b"\xff" * 32   # O2: no valid key
    g.dropped = [(X1, O1), (X2, O2)]
    form = g.to_bytes()
    assert form == base[:-2] + b"\x00\x02" + X1 + O1 + X2 + O2
    assert L.GroupSession.from_bytes(form).dropped == g.dropped
    assert L.GroupSession.from_bytes(form).to_bytes() == form
    dec = L.GroupSession.from_bytes
    expect("Truncated", lambda: dec(form[:-1]))
    expect("Truncated", lambda: dec(form[:-32]))                       # the last owner missing
    expect("Truncated", lambda: dec(base[:-1]))
    expect("Truncated", lambda: dec(base[:-2] + b"\x00\x02" + X1 + X2))  # 32-byte entries
    expect("TrailingBytes", lambda: dec(form + b"\x00"))
    expect("TrailingBytes", lambda: dec(base[:-2] + b"\x00\x01" + X1 + O1 + X2))
    expect("InvalidEncoding", lambda: dec(base[:-2] + S.u16(L.MAX_DROPPED_CHAINS + 1)))
    # One owner for several chains is no repeat; one chain under two owners, or twice, is.
    assert dec(base[:-2] + b"\x00\x02" + X1 + O1 + X2 + O1).dropped == [(X1, O1), (X2, O1)]
    for twice in (base[:-2] + b"\x00\x02" + X1 + O1 + X1 + O2, base[:-2] + b"\x00\x02" + (X1 + O1) * 2,
                  base[:-2] + b"\x00\x03" + X1 + O1 + X2 + O2 + X1 + O1):
        expect("InvalidEncoding", lambda: dec(twice))
        expect("TrailingBytes", lambda: dec(twice + b"\x00"))
    # The store holds a dropped chain: its id decides, whatever owner is written with it.
    for owner in (b2.identity, O1):
        held = base[:-2] + b"\x00\x01" + bg.sender.chain + owner
        expect("InvalidEncoding", lambda: dec(held))
        expect("TrailingBytes", lambda: dec(held + b"\x00"))
    # The owner field is not a chain id: a dropped owner equal to a held chain is no repeat.
    assert dec(base[:-2] + b"\x00\x01" + X1 + bg.sender.chain).dropped == [(X1, bg.sender.chain)]
    full = L.GroupSession.from_bytes(base)
    full.dropped = [_ent(0x10 + i % 7, i) for i in range(L.MAX_DROPPED_CHAINS)]
    fb = full.to_bytes()
    assert len(fb) == len(base) + 64 * L.MAX_DROPPED_CHAINS
    assert dec(fb).dropped == full.dropped and dec(fb).to_bytes() == fb


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    for seed in range(n):
        explore(seed, messages=3, check_every=True)
        explore("nogen %d" % seed, with_generations=False, loss=2, dup=2)
    print("%d random runs converged" % (2 * n))
