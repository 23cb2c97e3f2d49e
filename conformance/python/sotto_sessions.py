"""sotto SPEC.md §16 (sessions with users and devices), written from SPEC.md alone.

The layer over `sotto_spec.py` (§5-§15): peer records (§16.1-§16.7, saved form
0x25), group sessions (§16.8, saved form 0x26), safety numbers (§16.9) and the
framing of every pairwise plaintext (§16.10). Where SPEC.md leaves a choice
open, the choice made here is marked `FINDING §16 Xn`, its entry in the §16
section of SPEC-FINDINGS.md.

Every public call is all or nothing: it runs on deep copies and commits only
on success, so an error (a raised `SottoError`) or a `Failure` (§16.6) leaves
every object passed to it unchanged.
"""

from __future__ import annotations

import copy
import hmac as _hmac

import sotto_spec as S
from sotto_spec import SottoError, fail, u8, u16, u32, u64, bump, Reader

# ---------------------------------------------------------------------------
# §16.1 constants, §4 tags
# ---------------------------------------------------------------------------

TAG_PEER_RECORD = 0x25
TAG_GROUP_SESSION = 0x26

MAX_USER_ID_LEN = 64
MAX_DEVICES_PER_USER = 16
MAX_ARCHIVED_SESSIONS = 4
MAX_STALE_DEVICE_AGE = 2_592_000
MAX_DELETED_DEVICES = 2 * MAX_DEVICES_PER_USER
MAX_ARCHIVED_SESSION_AGE = 2_592_000
MAX_UNANSWERED_SESSION_AGE = 2_592_000
MIN_RECOVERY_INTERVAL = 3_600
MAX_RETRY_REQUESTS_PER_INTERVAL = 8
MAX_GROUP_MEMBERS = 1_000
MAX_DROPPED_CHAINS = 1_024
MAX_PAYLOAD_LEN = S.MAX_PLAINTEXT_LEN - 1

L_SAFETY_NUMBER = b"sotto v2 safety number"
SAFETY_ITERATIONS = 5200

# §16.10 frame kinds
FRAME_PAYLOAD, FRAME_DISTRIBUTION, FRAME_RETRY, FRAME_DISTRIBUTION_REQUEST = 0x01, 0x02, 0x03, 0x04

# §16.2 outcome for the local device in the own record
LISTED, MISSING, OTHER_IDENTITY = "Listed", "Missing", "OtherIdentity"

# §16.5, §16.6 actions and reasons
IGNORE, RETRY_LATER, REQUEST_RETRY, START_NEW_SESSION = "Ignore", "RetryLater", "RequestRetry", "StartNewSession"
DUPLICATE, MALFORMED, DOWNGRADE, RECOVERY_PENDING = "Duplicate", "Malformed", "Downgrade", "RecoveryPending"
WRONG_LOCAL_DEVICE, UNKNOWN_DEVICE, IDENTITY_CHANGE_PENDING = "WrongLocalDevice", "UnknownDevice", "IdentityChangePending"
UNKNOWN_IDENTITY, MISSING_DISTRIBUTION = "UnknownIdentity", "MissingDistribution"


def elapsed(now, then):
    """§16.1 "Elapsed time": a bound d has passed when |now - t| >= d (the distance, either
    direction), so a stored time far in the future holds nothing for ever (F1)."""
    return abs(now - then)


def check_user_id(uid: bytes) -> bytes:
    """§16.1: 1 to MAX_USER_ID_LEN bytes, else InvalidEncoding."""
    uid = bytes(uid)
    if not 1 <= len(uid) <= MAX_USER_ID_LEN:
        fail("InvalidEncoding")
    return uid


def _eq(a, b):
    return a is not None and b is not None and _hmac.compare_digest(a, b)


# ---------------------------------------------------------------------------
# §16.10 Framing and retry hints
# ---------------------------------------------------------------------------

class RetryHint:
    """§16.10: names one message: its ratchet key, message number and (prekey) base key."""

    def __init__(self, ratchet_key: bytes, message_number: int, base_key: bytes | None = None):
        self.ratchet_key, self.message_number, self.base_key = ratchet_key, message_number, base_key

    @classmethod
    def of(cls, msg):
        """The hint of a parsed message (§16.6: `hint` names the failed message)."""
        if isinstance(msg, S.PreKeyMessage):
            return cls(msg.inner.K, msg.inner.N, msg.base_key)
        return cls(msg.K, msg.N, None)

    def to_bytes(self) -> bytes:
        b = self.ratchet_key + u32(self.message_number)
        return b + (b"\x00" if self.base_key is None else b"\x01" + self.base_key)

    @classmethod
    def read(cls, r: Reader):
        """As in the saved form (§16.11): InvalidPublicKey for a non-canonical key."""
        k = r.x25519_public()
        n = r.u32()
        base = r.x25519_public() if r.flag() else None
        return cls(k, n, base)

    def __eq__(self, other):
        return isinstance(other, RetryHint) and self.to_bytes() == other.to_bytes()

    def __repr__(self):
        return "RetryHint(%s)" % self.to_bytes().hex()


def frame(kind: int, body: bytes) -> bytes:
    return u8(kind) + bytes(body)


def parse_frame(pt: bytes):
    """§16.10 -> (kind, value): payload bytes, Distribution, RetryHint or group id.
    Anything else is malformed: InvalidEncoding (§16.5 step 4)."""
    pt = bytes(pt)
    if not pt:
        fail("InvalidEncoding")
    kind, body = pt[0], pt[1:]
    try:
        if kind == FRAME_PAYLOAD:
            return kind, body
        if kind == FRAME_DISTRIBUTION:
            # FINDING §16 B1: §16.10 says "exactly its 422-byte encoding"; §15.6 says 486.
            # The strict §15.6 parse decides the length here.
            return kind, S.Distribution.from_bytes(body)
        if kind == FRAME_RETRY:
            r = Reader(body)
            hint = RetryHint.read(r)
            r.finish()
            return kind, hint
        if kind == FRAME_DISTRIBUTION_REQUEST:
            if len(body) != 32:
                fail("InvalidEncoding")
            return kind, body
    except SottoError:
        fail("InvalidEncoding")
    fail("InvalidEncoding")


class Received:
    """§16.5 outcome of a successful decrypt: the device, the peer identity and the content."""

    def __init__(self, device, identity, kind, value):
        self.device, self.identity, self.kind, self.value = device, identity, kind, value

    @property
    def group_id(self):
        if self.kind == FRAME_DISTRIBUTION:
            return self.value.group_id
        if self.kind == FRAME_DISTRIBUTION_REQUEST:
            return self.value
        return None


class Failure:
    """§16.6: one action (kind, reason or hint) and the error that decided it."""

    def __init__(self, action, detail, error: str, fields=None):
        self.action, self.detail, self.error, self.fields = action, detail, error, dict(fields or {})

    def __repr__(self):
        return "Failure(%s(%r), %s%s)" % (self.action, self.detail, self.error, self.fields or "")


# ---------------------------------------------------------------------------
# §16.9 Safety numbers
# ---------------------------------------------------------------------------

def user_fingerprint(uid: bytes, keys) -> str:
    """§16.9: 30 digits over a user's distinct identity keys (none or a key twice: InvalidDeviceList)."""
    uid = check_user_id(uid)
    keys = [bytes(k) for k in keys]
    if not keys or len(set(keys)) != len(keys) or len(keys) > MAX_DEVICES_PER_USER + 1:
        fail("InvalidDeviceList")
    keys.sort()
    x = L_SAFETY_NUMBER + u8(len(uid)) + uid + u8(len(keys)) + b"".join(keys)
    hcur = x
    for _ in range(SAFETY_ITERATIONS):
        hcur = S.SHA512(hcur + x)
    f = hcur[:30]
    return "".join("%05d" % (int.from_bytes(f[5 * i:5 * i + 5], "big") % 100000) for i in range(6))


def record_safety_number(record: "PeerRecord", own: "PeerRecord"):
    """§16.9 for a record and the local user's own record -> (60 digits, display).
    FINDING §16 P15: SPEC gives no such operation; the vectors refuse, with IdentityMismatch,
    an `own` that is not an own record or belongs to another local device."""
    if not own.is_own or not _eq(own.local_identity, record.local_identity):
        fail("IdentityMismatch")
    display = safety_number(record.fingerprint(), own.fingerprint())
    return display.replace(" ", ""), display


def safety_number(fp_a: str, fp_b: str) -> str:
    """§16.9: the two fingerprints, the smaller first; twelve groups of five digits."""
    a, b = sorted((fp_a, fp_b))
    digits = a + b
    return " ".join(digits[5 * i:5 * i + 5] for i in range(12))


# ---------------------------------------------------------------------------
# §16.1 Records
# ---------------------------------------------------------------------------

class SessionEntry:
    """§16.1: a session with its creation time, last decrypt time and (archived) lost-to mark."""

    def __init__(self, session: S.Session, created: int, last_decrypt=None, lost_to=None):
        self.session, self.created, self.last_decrypt, self.lost_to = session, created, last_decrypt, lost_to

    @property
    def base_key(self):
        return self.session.base_key

    def ours_unanswered(self):
        """A session we started on which no reply has decrypted (§16.3, §16.5, §16.6).
        FINDING §16 P2: read as role initiator and no decrypt recorded by the layer."""
        return self.session.role == S.INITIATOR and self.last_decrypt is None

    def to_bytes(self):
        b = u64(self.created)
        b += b"\x00" if self.last_decrypt is None else b"\x01" + u64(self.last_decrypt)
        b += b"\x00" if self.lost_to is None else b"\x01" + self.lost_to
        s = self.session.to_bytes()
        return b + u32(len(s)) + s

    @classmethod
    def read(cls, r: Reader, active: bool):
        created = r.u64()
        last = r.u64() if r.flag() else None
        has_lost = r.flag()
        if has_lost and active:
            fail("InvalidEncoding")                    # checked when read
        lost = r.take(32) if has_lost else None
        length = r.u32()
        s = S.Session.from_bytes(r.take(length))       # exactly `length` bytes
        return cls(s, created, last, lost)


class DeviceEntry:
    """§16.1: what a record holds for one device of its user."""

    def __init__(self, identity: bytes):
        self.identity = identity          # trusted identity
        self.pending = None               # pending identity
        self.stale_since = None
        self.pinned = False
        self.classical_allowed = False
        self.last_recovery = None
        self.retry_window = 0
        self.retry_count = 0
        self.unanswered = None            # RetryHint of an unanswered retry request
        self.active = None                # SessionEntry
        self.archived = []                # SessionEntry, newest first

    @property
    def listed(self):
        return self.stale_since is None

    def sessions(self):
        """Active first, then archived newest first (§16.5 steps 2 and 3)."""
        return ([self.active] if self.active is not None else []) + list(self.archived)

    def archive(self, entry: SessionEntry, lost_to=None):
        """As the newest archived session; past MAX_ARCHIVED_SESSIONS the oldest is deleted.
        F8 (§16.5 "Marks"): a mark only ever points to a smaller base key; one to a larger
        base key is dropped, and the session is archived without a mark."""
        if lost_to is not None and not lost_to < entry.base_key:
            lost_to = None
        entry.lost_to = lost_to
        self.archived.insert(0, entry)
        del self.archived[MAX_ARCHIVED_SESSIONS:]

    def install(self, entry: SessionEntry):
        """§16.3: the new session becomes active, the previous one the newest archived (no mark)."""
        if self.active is not None:
            self.archive(self.active, None)
        self.active = entry
        if entry.session.key_agreement == S.PQXDH:
            self.pin()

    def pin(self):
        """§16.4: pinning clears "classical allowed"; nothing unpins."""
        self.pinned = True
        self.classical_allowed = False

    def policy(self):
        """§16.4: classical only for a device that is not pinned and for which it is allowed."""
        if not self.pinned and self.classical_allowed:
            return S.CLASSICAL_ALLOWED
        return S.POST_QUANTUM_REQUIRED

    def window_allows(self, now):
        """§16.6: a retry if the window expired or fewer than the maximum were sent in it."""
        return (elapsed(now, self.retry_window) >= MIN_RECOVERY_INTERVAL
                or self.retry_count < MAX_RETRY_REQUESTS_PER_INTERVAL)

    def interval_allows(self, now):
        """§16.6: a new session if none was started for recovery, or the last one long enough ago."""
        return self.last_recovery is None or elapsed(now, self.last_recovery) >= MIN_RECOVERY_INTERVAL

    # ---- §16.11 -------------------------------------------------------------

    def to_bytes(self, device_id):
        b = u32(device_id) + self.identity
        b += b"\x00" if self.pending is None else b"\x01" + self.pending
        b += b"\x00" if self.stale_since is None else b"\x01" + u64(self.stale_since)
        b += u8((1 if self.pinned else 0) | (2 if self.classical_allowed else 0))
        b += b"\x00" if self.last_recovery is None else b"\x01" + u64(self.last_recovery)
        b += u64(self.retry_window) + u8(self.retry_count)
        b += b"\x00" if self.unanswered is None else b"\x01" + self.unanswered.to_bytes()
        b += b"\x00" if self.active is None else b"\x01" + self.active.to_bytes()
        b += u8(len(self.archived))
        for e in self.archived:
            b += e.to_bytes()
        return b


class Remembered:
    """§16.1, §16.2 step 2: a device deleted to make room, kept until MAX_STALE_DEVICE_AGE has
    passed since it left the list: its trusted identity, its pin, when it left."""

    def __init__(self, identity: bytes, pinned: bool, left: int):
        self.identity, self.pinned, self.left = identity, pinned, left

    def to_bytes(self, device_id):
        return u32(device_id) + self.identity + u8(1 if self.pinned else 0) + u64(self.left)


class PeerRecord:
    """§16.1: everything one local device knows about one user (0x25)."""

    TAG = TAG_PEER_RECORD

    def __init__(self, local_identity: bytes, user: bytes, local_device=None):
        self.generation = 0
        self.local_identity = local_identity
        self.user = check_user_id(user)
        self.local_device = local_device          # the own record's local device id, or None
        self.devices = {}                          # DeviceId -> DeviceEntry
        self.remembered = {}                       # DeviceId -> Remembered (§16.2 step 2)
        self.trace = {}

    # FINDING §16 P13: SPEC names no constructor; a record starts empty, generation 0.
    @classmethod
    def new(cls, local: S.Device, user: bytes):
        return cls(local.identity, user)

    @classmethod
    def new_own(cls, local: S.Device, user: bytes, local_device: int):
        return cls(local.identity, user, local_device)

    @property
    def is_own(self):
        return self.local_device is not None

    def _run(self, fn, *args):
        work = copy.deepcopy(self)
        out = fn(work, *args)
        self.__dict__.update(work.__dict__)
        return out

    def _check_local(self, local: S.Device):
        if not _eq(local.identity, self.local_identity):
            fail("IdentityMismatch")

    def _listed_device(self, device_id):
        dev = self.devices.get(device_id)
        if dev is None or not dev.listed:
            fail("UnknownDevice")
        return dev

    # ---- §16.2 Device lists and identity changes ---------------------------

    def update_devices(self, device_list, now):
        """-> an outcome dict. `device_list`: (DeviceId, identity key) pairs in any order."""
        return self._run(PeerRecord._update_devices, [(int(d), bytes(k)) for d, k in device_list], now)

    def _update_devices(self, lst, now):
        if len(lst) > MAX_DEVICES_PER_USER:
            fail("InvalidDeviceList")
        ids = [d for d, _ in lst]
        keys = [k for _, k in lst]
        if len(set(ids)) != len(ids) or len(set(keys)) != len(keys):
            fail("InvalidDeviceList")
        for d, k in lst:
            if k == self.local_identity and d != self.local_device:
                fail("InvalidDeviceList")
        # F3a: a device given the trusted identity (held or remembered) of another listed device
        for d, k in lst:
            for d2 in ids:
                t = self._trusted(d2)
                if d2 != d and t is not None and t == k:
                    fail("InvalidDeviceList")
        out = {"local": None, "added": [], "relisted": [], "removed": [], "deleted": [],
               "identity_changes": [], "withdrawn": []}
        # 1. the own record: how the list showed the local device; its entry leaves the list
        if self.is_own:
            mine = [k for d, k in lst if d == self.local_device]
            if not mine:
                out["local"] = (MISSING, None)
            elif mine[0] == self.local_identity:
                out["local"] = (LISTED, None)
            else:
                out["local"] = (OTHER_IDENTITY, S.fingerprint(mine[0]))
            lst = [(d, k) for d, k in lst if d != self.local_device]
        listed = dict(lst)
        # 2. room
        new = [d for d in listed if d not in self.devices]
        if len(self.devices) + len(new) > MAX_DEVICES_PER_USER:
            stale = sorted((e.stale_since, d) for d, e in self.devices.items()
                           if not e.listed and d not in listed)
            left_out = sorted(d for d, e in self.devices.items() if e.listed and d not in listed)
            for d in [d for _, d in stale] + left_out:
                if len(self.devices) + len(new) <= MAX_DEVICES_PER_USER:
                    break
                e = self.devices.pop(d)
                out["deleted"].append(d)
                # F2: remembered with its trusted identity, pin, and when it left the list
                self.remembered[d] = Remembered(e.identity, e.pinned,
                                                e.stale_since if e.stale_since is not None else now)
        # a remembered device the list names is no longer remembered (step 4 holds it again)
        back = {d: self.remembered.pop(d) for d in list(self.remembered) if d in listed}
        if len(self.remembered) > MAX_DELETED_DEVICES:        # FINDING §16 S3: only past the bound
            for d in [d for d, m in self.remembered.items() if elapsed(now, m.left) >= MAX_STALE_DEVICE_AGE]:
                del self.remembered[d]
            if len(self.remembered) > MAX_DELETED_DEVICES:
                fail("InvalidDeviceList")
        # 3. held devices the list leaves out become stale at now.
        # FINDING §16 B3: a device already stale keeps its stale_since and is not reported again.
        for d in sorted(self.devices):
            e = self.devices[d]
            if d not in listed and e.listed:
                e.stale_since = now
                out["removed"].append(d)
        # 4. each listed device, in device-id order
        for d in sorted(listed):
            k = listed[d]
            e = self.devices.get(d)
            if e is None and d in back:
                # F2: held again without sessions, with the remembered identity and pin.
                # FINDING §16 S4: every other field as for an added device. FINDING §16 S2: with
                # another identity only the identity change is reported, not "relisted".
                m = back[d]
                e = self.devices[d] = DeviceEntry(m.identity)
                e.pinned = m.pinned
                if k == m.identity:
                    out["relisted"].append(d)
                else:
                    e.pending = k
                    out["identity_changes"].append({"device": d, "trusted_fingerprint": S.fingerprint(e.identity),
                                                    "new_fingerprint": S.fingerprint(k), "identity": k})
                continue
            if e is None:
                self.devices[d] = DeviceEntry(k)
                out["added"].append(d)
                continue
            if not e.listed:
                # FINDING §16 P3: "relisted" also when the listed identity is another one.
                e.stale_since = None
                out["relisted"].append(d)
            if k == e.identity:
                if e.pending is not None:
                    e.pending = None
                    out["withdrawn"].append(d)
            elif k != e.pending:
                e.pending = k
                out["identity_changes"].append({"device": d, "trusted_fingerprint": S.fingerprint(e.identity),
                                                "new_fingerprint": S.fingerprint(k), "identity": k})
        if any(out[x] for x in ("added", "relisted", "removed", "deleted", "identity_changes", "withdrawn")):
            self.generation = bump(self.generation)
        return out

    def _trusted(self, device_id):
        """The trusted identity of a held or remembered device, else None."""
        if device_id in self.devices:
            return self.devices[device_id].identity
        if device_id in self.remembered:
            return self.remembered[device_id].identity
        return None

    def acknowledge_identity(self, device_id, identity):
        return self._run(PeerRecord._acknowledge_identity, device_id, bytes(identity))

    def _acknowledge_identity(self, device_id, identity):
        e = self.devices.get(device_id)
        if e is None:
            fail("UnknownDevice")
        if not _eq(e.pending, identity):
            fail("IdentityMismatch")
        e.identity, e.pending = identity, None
        # FINDING §16 P11: only the sessions go; recovery state (hint, limits) and flags stay.
        e.active, e.archived = None, []
        self.generation = bump(self.generation)

    # ---- §16.3 Sending --------------------------------------------------------

    def plan_send(self, now):
        """-> {"blocked", "needs_bundle", "ready"}: listed devices in device-id order. Changes nothing."""
        out = {"blocked": [], "needs_bundle": [], "ready": []}
        for d in sorted(self.devices):
            e = self.devices[d]
            if not e.listed:
                continue
            if e.pending is not None:
                out["blocked"].append(d)
            elif e.active is None or (e.active.ours_unanswered()
                                      and elapsed(now, e.active.created) >= MAX_UNANSWERED_SESSION_AGE):
                out["needs_bundle"].append(d)
            else:
                out["ready"].append(d)
        return out

    def add_bundle(self, local, device_id, bundle, now, rng):
        """§16.3: a session from `device_id`'s bundle (decoded, or its bytes: decoded first)."""
        if isinstance(bundle, (bytes, bytearray)):
            bundle = S.PreKeyBundle.from_bytes(bytes(bundle))   # FINDING §16 P1: decoding first
        return self._run(PeerRecord._add_bundle, local, device_id, bundle, now, rng, None)

    def _new_session_checks(self, local, device_id):
        self._check_local(local)
        dev = self._listed_device(device_id)
        if dev.pending is not None:
            fail("IdentityChangePending")
        return dev

    def _add_bundle(self, local, device_id, bundle, now, rng, recovery_hint):
        dev = self._new_session_checks(local, device_id)
        if recovery_hint is not None and not dev.interval_allows(now):
            fail("RecoveryRateLimited")
        vb = bundle.verify(dev.identity)                         # IdentityMismatch, InvalidSignature
        if bundle.kem is None and dev.policy() != S.CLASSICAL_ALLOWED:
            fail("PostQuantumRequired")                          # §16.4
        session = local.initiate(rng, vb, dev.policy())          # §7.2: its draws and errors
        msg = None
        if recovery_hint is not None:                            # §16.6 start_new_session
            msg = session.encrypt(rng, frame(FRAME_RETRY, recovery_hint.to_bytes()))
        dev.install(SessionEntry(session, now))
        if recovery_hint is not None:
            dev.last_recovery = now
            dev.unanswered = None
        self.generation = bump(self.generation)
        return msg

    def _fanout_devices(self):
        """Listed devices with an active session and no pending identity, in device-id order."""
        return [d for d in sorted(self.devices)
                if self.devices[d].listed and self.devices[d].pending is None
                and self.devices[d].active is not None]

    def _fanout(self, plaintext, chunks):
        """§16.3: each such device's session encrypts with its 48 bytes. -> (messages, unusable)."""
        messages, unusable = [], []
        targets = self._fanout_devices()
        assert len(chunks) == len(targets)
        chunk_of = dict(zip(targets, chunks))
        for d in sorted(self.devices):
            e = self.devices[d]
            if not e.listed:
                continue
            if e.pending is not None:
                unusable.append((d, "IdentityChangePending"))
            elif e.active is None:
                unusable.append((d, "NoSession"))
            else:
                work = copy.deepcopy(e.active.session)
                try:
                    msg = work.encrypt(SliceRng(chunk_of[d]), plaintext)
                except SottoError as err:
                    unusable.append((d, err.name))
                else:
                    e.active.session = work
                    messages.append((d, msg))
        if messages:
            self.generation = bump(self.generation)
        return messages, unusable

    def encrypt(self, payload, rng):
        """§16.3 -> (messages [(device, bytes)], unusable [(device, error name)])."""
        payload = bytes(payload)
        if len(payload) > MAX_PAYLOAD_LEN:
            fail("PlaintextTooLarge")
        chunks = [rng.draw(48) for _ in self._fanout_devices()]
        return self._run(PeerRecord._fanout, frame(FRAME_PAYLOAD, payload), chunks)

    def encrypt_to(self, device_id, payload, rng):
        payload = bytes(payload)
        if len(payload) > MAX_PAYLOAD_LEN:
            fail("PlaintextTooLarge")
        return self._run(PeerRecord._encrypt_to, device_id, frame(FRAME_PAYLOAD, payload), rng)

    def _encrypt_to(self, device_id, plaintext, rng):
        dev = self._listed_device(device_id)
        if dev.pending is not None:
            fail("IdentityChangePending")
        if dev.active is None:
            fail("NoSession")
        msg = dev.active.session.encrypt(rng, plaintext)
        self.generation = bump(self.generation)
        return msg

    def request_distribution(self, device_id, group_id, rng):
        """§16.8: the frame 0x04 || group_id to one device, with encrypt_to's checks and draws."""
        group_id = bytes(group_id)
        if len(group_id) != 32:
            fail("InvalidEncoding")
        return self._run(PeerRecord._encrypt_to, device_id, frame(FRAME_DISTRIBUTION_REQUEST, group_id), rng)

    # ---- §16.4 ----------------------------------------------------------------------

    def allow_classical(self, device_id, allowed: bool):
        return self._run(PeerRecord._allow_classical, device_id, bool(allowed))

    def _allow_classical(self, device_id, allowed):
        e = self.devices.get(device_id)
        if e is None:
            fail("UnknownDevice")
        if allowed and e.pinned:
            fail("PostQuantumRequired")
        if e.classical_allowed != allowed:
            e.classical_allowed = allowed
            self.generation = bump(self.generation)

    # ---- §16.5 Receiving -------------------------------------------------------------

    def decrypt(self, local: S.Device, from_id, message, now):
        """-> Received, or a Failure (record and local unchanged)."""
        work, wlocal = copy.deepcopy(self), copy.deepcopy(local)
        res = work._decrypt(wlocal, from_id, message, now)
        if isinstance(res, Failure):
            return res
        self.__dict__.update(work.__dict__)
        local.__dict__.update(wlocal.__dict__)
        return res

    def _decrypt(self, local, from_id, message, now):
        if isinstance(message, (bytes, bytearray)):
            # FINDING §16 B5: the message is parsed first; its parse error is a plain error,
            # raised, with no action (as the vectors' README says).
            message = S.parse_message(bytes(message))
        if not _eq(local.identity, self.local_identity):                      # 1
            return Failure(IGNORE, WRONG_LOCAL_DEVICE, "IdentityMismatch")      # FINDING §16 B4
        dev = self.devices.get(from_id)
        if dev is None:
            return Failure(RETRY_LATER, UNKNOWN_DEVICE, "UnknownDevice")
        if dev.pending is not None:
            return Failure(RETRY_LATER, IDENTITY_CHANGE_PENDING, "IdentityChangePending")
        hint = RetryHint.of(message)
        if isinstance(message, S.PreKeyMessage):                               # 2
            if not _eq(message.ik, dev.identity):
                return Failure(RETRY_LATER, UNKNOWN_IDENTITY, "IdentityMismatch")
            owner = next((e for e in dev.sessions() if e.base_key == message.base_key), None)
            if owner is None:
                if not dev.listed:                                             # F3b
                    # FINDING §16 S1: its error is not named; UnknownDevice, as for step 1.
                    return Failure(RETRY_LATER, UNKNOWN_DEVICE, "UnknownDevice")
                return self._accept(local, dev, from_id, message, hint, now)
        else:                                                                  # 3
            owner = next((e for e in dev.sessions()
                          if any(c.ratchet_key == message.K for c in e.session.chains)), None)
        if owner is not None:
            try:
                session, content = _open_on(owner.session, message)
            except SottoError as e:
                return self._failure(dev, "owner", e, owner, hint, now)
            owner.session = session
            return self._placed(dev, from_id, owner, content, now)
        first_error = None
        special = None
        for e in dev.sessions():
            try:
                session, content = _open_on(e.session, message)
            except SottoError as err:
                if err.name == "InvalidEncoding":                  # decrypted, frame malformed
                    return self._failure(dev, "none", err, None, hint, now)
                if err.name in ("NonContributoryKey", "ChainExhausted") and special is None:
                    special = err
                if first_error is None:
                    first_error = err
                continue
            e.session = session
            return self._placed(dev, from_id, e, content, now)
        err = special or first_error or SottoError("NoSession")
        return self._failure(dev, "none", err, None, hint, now)

    def _accept(self, local, dev, from_id, pm, hint, now):
        try:
            session, pt, _ = local.accept(pm, dev.policy())
            content = parse_frame(pt)
        except SottoError as e:
            return self._failure(dev, "accept", e, None, hint, now)
        n = SessionEntry(session, now, now)
        a = dev.active
        names_a = a is not None and _names(content, a)
        if a is not None and a.ours_unanswered() and not names_a:             # simultaneous initiation
            if n.base_key < a.base_key:
                dev.active = n
                dev.archive(a, n.base_key)
            else:
                dev.archive(n, a.base_key)
        else:
            if a is not None:
                dev.archive(a, n.base_key if names_a else None)
            dev.active = n
        if session.key_agreement == S.PQXDH:
            dev.pin()
        return self._success(dev, from_id, content, now)

    def _placed(self, dev, from_id, x: SessionEntry, content, now):
        x.last_decrypt = now
        if x is not dev.active:                                                # on an archived session
            a = dev.active
            if a is not None and _names(content, a):
                dev.archived.remove(x)
                x.lost_to = None
                dev.active = x
                dev.archive(a, x.base_key)
            elif a is not None and x.lost_to is not None and x.lost_to == a.base_key:
                pass                                                           # lost to the active one
            else:
                dev.archived.remove(x)
                x.lost_to = None
                dev.active = x
                if a is not None:
                    dev.archive(a, None)
        return self._success(dev, from_id, content, now)

    def _success(self, dev, from_id, content, now):
        dev.unanswered = None
        self.generation = bump(self.generation)
        kind, value = content
        return Received(from_id, dev.identity, kind, value)

    # ---- §16.6 Failures and recovery ---------------------------------------------------

    def _failure(self, dev, source, err, owner, hint, now):
        sev = severity(source, err.name)
        if sev[0] == "ignore":
            return Failure(IGNORE, sev[1], err.name, err.fields)

        def retry(h):
            if dev.window_allows(now):
                return Failure(REQUEST_RETRY, h, err.name, err.fields)
            return Failure(IGNORE, RECOVERY_PENDING, err.name, err.fields)

        def new_session(h):
            if not dev.listed:                            # §16.6: no session with a stale device
                return Failure(RETRY_LATER, UNKNOWN_DEVICE, "UnknownDevice")
            if dev.interval_allows(now):
                return Failure(START_NEW_SESSION, h, err.name, err.fields)
            return Failure(IGNORE, RECOVERY_PENDING, err.name, err.fields)

        if sev[0] == "lost":
            return retry(hint) if dev.active is not None else new_session(hint)
        # broken, in this order
        if dev.active is None:
            return new_session(hint)
        if owner is dev.active:
            return new_session(hint)
        if dev.unanswered is not None:
            # §16.6: a stale device is RetryLater(UnknownDevice) whatever the interval (S10);
            # else, without the interval, a retry (F8: the request may have been lost).
            # Weighed before our own unanswered session (S9: stale bundles on both sides).
            if not dev.listed or dev.interval_allows(now):
                return new_session(dev.unanswered)
            return retry(hint)
        # our unanswered session is the fix (the request travels in it), or the peer
        # writes on a session we lack: either way a retry
        return retry(hint)

    def request_retry(self, device_id, hint: RetryHint, now, rng):
        return self._run(PeerRecord._request_retry, device_id, hint, now, rng)

    def _request_retry(self, device_id, hint, now, rng):
        dev = self.devices.get(device_id)
        if dev is None:
            fail("UnknownDevice")                         # a stale device may be asked
        if dev.pending is not None:
            fail("IdentityChangePending")
        if dev.active is None:
            fail("NoSession")
        if not dev.window_allows(now):
            fail("RecoveryRateLimited")
        msg = dev.active.session.encrypt(rng, frame(FRAME_RETRY, hint.to_bytes()))
        if elapsed(now, dev.retry_window) >= MIN_RECOVERY_INTERVAL:
            dev.retry_window, dev.retry_count = now, 0
        dev.retry_count += 1
        if dev.unanswered is None:
            dev.unanswered = hint
        self.generation = bump(self.generation)
        return msg

    def start_new_session(self, local, device_id, bundle, hint: RetryHint, now, rng):
        """§16.6 -> the new session's first message (a retry request)."""
        if isinstance(bundle, (bytes, bytearray)):
            bundle = S.PreKeyBundle.from_bytes(bytes(bundle))
        return self._run(PeerRecord._add_bundle, local, device_id, bundle, now, rng, hint)

    # ---- §16.7 Expiry and restores ---------------------------------------------------

    def expire(self, now):
        """-> (deleted devices, number of archived sessions deleted)."""
        return self._run(PeerRecord._expire, now)

    def _expire(self, now):
        # FINDING §16 S6: the forgotten devices are not reported; they move the generation.
        gone = [d for d in sorted(self.devices) if not self.devices[d].listed
                and elapsed(now, self.devices[d].stale_since) >= MAX_STALE_DEVICE_AGE]
        for d in gone:
            del self.devices[d]
        forgotten = [d for d in sorted(self.remembered)
                     if elapsed(now, self.remembered[d].left) >= MAX_STALE_DEVICE_AGE]
        for d in forgotten:
            del self.remembered[d]
        n = 0
        for e in self.devices.values():
            keep = [s for s in e.archived if elapsed(now, s.last_decrypt if s.last_decrypt is not None
                                                     else s.created) < MAX_ARCHIVED_SESSION_AGE]
            n += len(e.archived) - len(keep)
            e.archived = keep
        if gone or n or forgotten:
            self.generation = bump(self.generation)
        return gone, n

    def after_restore(self, last_generation):
        return self._run(PeerRecord._after_restore, last_generation)

    def _after_restore(self, last_generation):
        """-> the number of sessions deleted."""
        deleted = 0
        if self.generation < last_generation:
            for e in self.devices.values():
                deleted += len(e.sessions())
                e.active, e.archived = None, []
        self.generation = bump(max(self.generation, last_generation))
        return deleted

    # ---- §16.9 -------------------------------------------------------------------------

    def fingerprint(self):
        keys = [e.identity for e in self.devices.values() if e.listed]
        if self.is_own:
            keys.append(self.local_identity)
        return user_fingerprint(self.user, keys)

    # ---- §16.11 Saved form ----------------------------------------------------------------

    def to_bytes(self) -> bytes:
        b = bytearray([S.VERSION, TAG_PEER_RECORD]) + u64(self.generation) + self.local_identity
        b += u8(len(self.user)) + self.user
        b += b"\x00" if self.local_device is None else b"\x01" + u32(self.local_device)
        b += u8(len(self.devices))
        for d in sorted(self.devices):
            b += self.devices[d].to_bytes(d)
        b += u8(len(self.remembered))
        for d in sorted(self.remembered):
            b += self.remembered[d].to_bytes(d)
        return bytes(b)

    @classmethod
    def from_bytes(cls, data: bytes):
        r = Reader(data, S.MAX_STATE_LEN)
        r.header(TAG_PEER_RECORD)
        gen = r.u64()
        local_identity = r.ed25519_public()
        n = r.u8()
        if not 1 <= n <= MAX_USER_ID_LEN:
            fail("InvalidEncoding")
        user = r.take(n)
        local_device = r.u32() if r.flag() else None
        rec = cls(local_identity, user, local_device)
        rec.generation = gen
        count = r.u8()
        if count > MAX_DEVICES_PER_USER:
            fail("InvalidEncoding")
        prev = -1
        for _ in range(count):
            d = r.u32()
            if d <= prev or d == local_device:
                fail("InvalidEncoding")
            prev = d
            e = DeviceEntry(r.ed25519_public())
            if r.flag():
                e.pending = r.ed25519_public()
                if e.pending == e.identity:
                    fail("InvalidEncoding")
            if r.flag():
                e.stale_since = r.u64()
            flags = r.u8()
            if flags not in (0, 1, 2):
                fail("InvalidEncoding")
            e.pinned, e.classical_allowed = flags == 1, flags == 2
            if r.flag():
                e.last_recovery = r.u64()
            e.retry_window = r.u64()
            e.retry_count = r.u8()
            if e.retry_count > MAX_RETRY_REQUESTS_PER_INTERVAL:
                fail("InvalidEncoding")
            if r.flag():
                e.unanswered = RetryHint.read(r)
            if r.flag():
                e.active = SessionEntry.read(r, active=True)
            na = r.u8()
            if na > MAX_ARCHIVED_SESSIONS:
                fail("InvalidEncoding")
            e.archived = [SessionEntry.read(r, active=False) for _ in range(na)]
            rec.devices[d] = e
        count = r.u8()
        if count > MAX_DELETED_DEVICES:
            fail("InvalidEncoding")
        prev = -1
        for _ in range(count):
            d = r.u32()
            if d <= prev or d == local_device or d in rec.devices:
                fail("InvalidEncoding")
            prev = d
            rec.remembered[d] = Remembered(r.ed25519_public(), r.flag(), r.u64())
        r.finish()
        for e in rec.devices.values():                            # after TrailingBytes
            ss = e.sessions()
            for s in ss:
                if s.session.local_identity != local_identity or s.session.remote_identity != e.identity:
                    fail("InvalidEncoding")
            if len({s.base_key for s in ss}) != len(ss):
                fail("InvalidEncoding")
            if any(s.session.key_agreement == S.PQXDH for s in ss) and not e.pinned:
                fail("InvalidEncoding")
            if any(s.lost_to is not None and not s.lost_to < s.base_key for s in ss):
                fail("InvalidEncoding")                           # F8: marks point to smaller keys
        return rec


def _open_on(session: S.Session, message):
    """One session's decrypt with the frame checked before anything commits (§16.5 step 4).
    -> (the changed copy of the session, content)."""
    work = copy.deepcopy(session)
    pt, _ = work.decrypt(message)
    return work, parse_frame(pt)


def _names(content, a: SessionEntry) -> bool:
    """§16.5: a retry request names the active session `a`."""
    kind, hint = content
    if kind != FRAME_RETRY:
        return False
    if hint.base_key is not None:
        return hint.base_key == a.base_key
    s = a.session.sending
    return s is not None and hint.ratchet_key == s.public


OWNER_SEVERITY = {"DuplicateMessage": ("ignore", DUPLICATE), "DuplicatePreKeyMessage": ("ignore", DUPLICATE),
                  "AuthenticationFailed": ("lost",), "SessionDiverged": ("broken",), "TooFarAhead": ("broken",)}
ACCEPT_BROKEN = {"DuplicatePreKeyMessage", "UnknownSignedPreKey", "UnknownOneTimePreKey", "UnknownKemPreKey",
                 "SignedPreKeyExhausted", "AuthenticationFailed", "TooFarAhead"}


def severity(source, error):
    """§16.6 severity table: ("ignore", reason), ("lost",) or ("broken",)."""
    if source == "owner":
        return OWNER_SEVERITY.get(error, ("ignore", MALFORMED))
    if source == "accept":
        if error == "PostQuantumRequired":
            return ("ignore", DOWNGRADE)
        return ("broken",) if error in ACCEPT_BROKEN else ("ignore", MALFORMED)
    if error in ("InvalidEncoding", "NonContributoryKey", "ChainExhausted"):
        return ("ignore", MALFORMED)
    return ("broken",)


class SliceRng:
    """§16.3: a session's 48 bytes; its 32-byte draw takes bytes 0..32, its 16-byte draw 32..48."""

    def __init__(self, chunk: bytes):
        assert len(chunk) == 48
        self.chunk = chunk

    def draw(self, n):
        if n == 32:
            return self.chunk[:32]
        if n == 16:
            return self.chunk[32:48]
        raise AssertionError("a session draws 32 or 16 bytes, not %d" % n)


# ---------------------------------------------------------------------------
# §16.8 Groups through the layer
# ---------------------------------------------------------------------------

class GroupSession:
    """§16.8 (0x26): generation, local user, members, the local sender and the store."""

    TAG = TAG_GROUP_SESSION

    def __init__(self):
        self.generation = 0
        self.local_user = None
        self.members = []                 # sorted user ids, the local user included
        self.sender = None                # GroupSender
        self.store = None                 # GroupReceivers
        self.dropped = []                 # (chain id, owner) of chains that left the store, oldest first
        self.trace = {}

    @property
    def group_id(self):
        return self.sender.group_id

    def _run(self, fn, *args):
        work = copy.deepcopy(self)
        out = fn(work, *args)
        self.__dict__.update(work.__dict__)
        return out

    def _drop(self, entries):
        """§16.8: (chain, owner) entries that left the store, added one at a time in the order
        given. Adding one to a full list first forgets the oldest entry of the owner with the
        most entries, counted before the new one is added (so one owner's rotations forget its
        own chains, not another owner's)."""
        for entry in entries:
            if len(self.dropped) >= MAX_DROPPED_CHAINS:
                counts = {}
                for _, owner in self.dropped:
                    counts[owner] = counts.get(owner, 0) + 1
                top = max(counts.values())
                del self.dropped[next(i for i, (_, o) in enumerate(self.dropped) if counts[o] == top)]
            self.dropped.append(entry)

    def is_dropped(self, chain):
        """§16.8: a dropped chain is one whose id is in the list, whatever owner it was held under."""
        return any(c == chain for c, _ in self.dropped)

    @classmethod
    def new(cls, rng, group_id, local_user, local: S.Device):
        g = cls()
        g.local_user = check_user_id(local_user)
        g.sender = S.GroupSender.new(rng, bytes(group_id), local)
        g.members = [g.local_user]
        g.store = S.GroupReceivers(bytes(group_id))
        return g

    def add_member(self, user):
        return self._run(GroupSession._add_member, check_user_id(user))

    def _add_member(self, user):
        if user in self.members:
            return False                                  # FINDING §16 P5: no error at the bound
        if len(self.members) >= MAX_GROUP_MEMBERS:
            fail("TooManyGroupMembers")
        self.members.append(user)
        self.members.sort()
        self.generation = bump(self.generation)
        return True

    def _check_records(self, records, exact=None):
        """distribute: members' records, each user once. remove_member and rotate (`exact`:
        the users whose records are required): exactly those, the own record for the local user."""
        seen = set()
        for rec in records:
            if rec.user not in self.members or rec.user in seen:
                fail("NotGroupMember")
            seen.add(rec.user)
        if exact is not None:
            if seen != set(exact):
                fail("NotGroupMember")
            if any(rec.user == self.local_user and not rec.is_own for rec in records):
                fail("NotGroupMember")
        for rec in records:                                # FINDING §16 P6: after every NotGroupMember
            if not _eq(rec.local_identity, self.sender.owner):
                fail("IdentityMismatch")

    def _fanout(self, records, plaintext, rng):
        """§16.8: the draws of all records first (records in the order given), then each fans out."""
        chunks = [[rng.draw(48) for _ in rec._fanout_devices()] for rec in records]
        works = [copy.deepcopy(rec) for rec in records]
        out = [w._fanout(plaintext, c) for w, c in zip(works, chunks)]
        return works, out

    def distribute(self, records, rng):
        """-> per record (messages, unusable). The group does not change; the records do."""
        self._check_records(records)
        works, out = self._fanout(records, frame(FRAME_DISTRIBUTION, self.sender.distribution()), rng)
        for rec, w in zip(records, works):
            rec.__dict__.update(w.__dict__)
        return out

    def distribute_to(self, record, device_id, rng):
        self._check_records([record])
        return record._run(PeerRecord._encrypt_to, device_id,
                           frame(FRAME_DISTRIBUTION, self.sender.distribution()), rng)

    def request_distribution(self, record, device_id, rng):
        """§16.8: a frame of kind 0x04 with this group's id to one device.
        FINDING §16 P9: the checks are not specified; the vectors make it a record
        operation with encrypt_to's checks (PeerRecord.request_distribution)."""
        return record.request_distribution(device_id, self.group_id, rng)

    def install(self, record, received: Received):
        return self._run(GroupSession._install, record, received)

    def _install(self, record, received):
        if received.kind != FRAME_DISTRIBUTION:
            fail("InvalidEncoding")
        if record.user not in self.members:
            fail("NotGroupMember")
        dev = record.devices.get(received.device)
        if not _eq(record.local_identity, self.sender.owner) or dev is None \
                or not _eq(dev.identity, received.identity):
            fail("IdentityMismatch")
        if dev.pending is not None:
            fail("IdentityChangePending")
        # §16.8: a stale device may not add or move a chain (as it may not start a session,
        # §16.5); its chains already held keep decrypting. Before the dropped-chain check.
        if not dev.listed:
            fail("UnknownDevice")
        # §16.8: a dropped chain is never installed again (a late copy would start it over).
        # FINDING §16 S11: checked before the store's install, so before its group id and
        # signatures.
        if self.is_dropped(received.value.chain):
            return S.UNCHANGED
        held_under = {h.chain: h.owner for h in self.store.receivers}   # authenticated or claimed
        outcome = self.store.install(received.value.to_bytes(), received.identity)
        if outcome == S.ADDED:
            # An authenticated install evicts at most one chain (§15.9 rule 3), so "in the
            # order the store held them" cannot differ from the eviction order here.
            self._drop([(c, held_under[c]) for c in self.store.trace.get("evicted", [])])
        if outcome != S.UNCHANGED:
            self.generation = bump(self.generation)
        return outcome

    def encrypt(self, payload, rng):
        """§16.8: the sender's encrypt (no frame: FINDING §16 P12)."""
        return self._run(GroupSession._encrypt, bytes(payload), rng)

    def _encrypt(self, payload, rng):
        msg = self.sender.encrypt(rng, payload)
        self.generation = bump(self.generation)
        return msg

    def decrypt(self, record, message):
        """§16.8: `record` is the record of the user the message came from. -> (plaintext, mark),
        or a Failure (group unchanged). A message that does not parse raises its parse error,
        with no action."""
        if isinstance(message, (bytes, bytearray)):
            message = S.GroupMessage.parse(bytes(message))
        if not _eq(record.local_identity, self.sender.owner):
            return Failure(IGNORE, WRONG_LOCAL_DEVICE, "IdentityMismatch")
        if record.user not in self.members:
            return Failure(IGNORE, MALFORMED, "NotGroupMember")
        held = self.store.find(message.chain) if message.group_id == self.store.group_id else None
        if held is not None:                             # F4: the chain's owner is a device of `record`
            # FINDING §16 S5: two devices may share a trusted key (one stale); the lowest id decides.
            dev = next((record.devices[d] for d in sorted(record.devices)
                        if _eq(record.devices[d].identity, held.owner)), None)
            if dev is None:
                return Failure(IGNORE, MALFORMED, "IdentityMismatch")
            if dev.pending is not None:
                return Failure(RETRY_LATER, IDENTITY_CHANGE_PENDING, "IdentityChangePending")
        work = copy.deepcopy(self)
        try:
            pt, mark = work.store.decrypt(message)
        except SottoError as e:
            if e.name == "UnknownGroupChain":
                return Failure(RETRY_LATER, MISSING_DISTRIBUTION, e.name, e.fields)
            if e.name == "DuplicateMessage":
                return Failure(IGNORE, DUPLICATE, e.name, e.fields)
            return Failure(IGNORE, MALFORMED, e.name, e.fields)
        work.generation = bump(work.generation)
        self.__dict__.update(work.__dict__)
        return pt, mark

    def _replace_sender(self, local, records, removed_user, rng):
        """remove_member and rotate (§16.8) after their checks: draws, then one step."""
        new_sender = S.GroupSender.new(rng, self.group_id, local)
        works, out = self._fanout(records, frame(FRAME_DISTRIBUTION, new_sender.distribution()), rng)
        allowed = {self.sender.owner}
        for rec in records:
            allowed.update(e.identity for e in rec.devices.values())
        st = self.store
        kept = [h for h in st.receivers if h.owner in allowed]
        if len(kept) != len(st.receivers):
            # FINDING §16 S12: removed chains are dropped in the store's order (oldest first).
            self._drop([(h.chain, h.owner) for h in st.receivers if h.owner not in allowed])
            st.receivers = kept
            st.generation = bump(st.generation)          # FINDING §16 P7
        if removed_user is not None:
            self.members.remove(removed_user)
        self.sender = new_sender
        self.generation = bump(self.generation)
        for rec, w in zip(records, works):
            rec.__dict__.update(w.__dict__)
        return out

    def _check_local(self, local):
        # FINDING §16 B2: SPEC's signatures omit `local`, which GroupSender::new needs.
        if not _eq(local.identity, self.sender.owner):
            fail("IdentityMismatch")

    def remove_member(self, local, user, records, rng):
        user = bytes(user)
        self._check_local(local)
        if user not in self.members or user == self.local_user:
            fail("NotGroupMember")
        self._check_records(records, exact=[m for m in self.members if m != user])
        return self._run(GroupSession._replace_sender, local, records, user, rng)

    def rotate(self, local, records, rng):
        self._check_local(local)
        self._check_records(records, exact=self.members)
        return self._run(GroupSession._replace_sender, local, records, None, rng)

    def after_restore(self, local, last_generation, rng):
        return self._run(GroupSession._after_restore, local, last_generation, rng)

    def _after_restore(self, local, last_generation, rng):
        """-> whether the sender was replaced (the group was stale)."""
        self._check_local(local)
        stale = self.generation < last_generation
        if stale:
            self.sender = S.GroupSender.new(rng, self.group_id, local)
            # FINDING §16 P7: every receiver is deleted by a new, empty store at generation
            # 0 (the vectors' reading; the chains a removal deletes move the store's generation).
            self.store = S.GroupReceivers(self.group_id)
        self.generation = bump(max(self.generation, last_generation))
        return stale

    # ---- §16.11 -------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        b = bytearray([S.VERSION, TAG_GROUP_SESSION]) + u64(self.generation)
        b += u8(len(self.local_user)) + self.local_user + u16(len(self.members))
        for m in self.members:
            b += u8(len(m)) + m
        b += self.sender.to_bytes()
        st = self.store.to_bytes()
        b += u32(len(st)) + st + u16(len(self.dropped))
        for chain, owner in self.dropped:
            b += chain + owner
        return bytes(b)

    @classmethod
    def from_bytes(cls, data: bytes):
        r = Reader(data, S.MAX_STATE_LEN)
        r.header(TAG_GROUP_SESSION)
        g = cls()
        g.generation = r.u64()
        g.local_user = _read_user(r)
        n = r.u16()
        if not 1 <= n <= MAX_GROUP_MEMBERS:
            fail("InvalidEncoding")
        for _ in range(n):
            m = _read_user(r)
            if g.members and not g.members[-1] < m:        # bytes order: a proper prefix first
                fail("InvalidEncoding")
            g.members.append(m)
        g.sender = S.GroupSender.from_bytes(r.take(494))
        length = r.u32()
        g.store = S.GroupReceivers.from_bytes(r.take(length))
        n = r.u16()
        if n > MAX_DROPPED_CHAINS:
            fail("InvalidEncoding")
        g.dropped = [(r.take(32), r.take(32)) for _ in range(n)]     # both taken as they are
        r.finish()
        if g.local_user not in g.members or g.store.group_id != g.sender.group_id:   # after TrailingBytes
            fail("InvalidEncoding")
        chains = [c for c, _ in g.dropped]                    # "dropped twice": by chain id
        if len(set(chains)) != n or any(g.store.find(c) is not None for c in chains):
            fail("InvalidEncoding")
        return g


def _read_user(r: Reader):
    n = r.u8()
    if not 1 <= n <= MAX_USER_ID_LEN:
        fail("InvalidEncoding")
    return r.take(n)
