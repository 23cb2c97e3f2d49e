"""Runs the v2 test vectors (test-vectors/*.json, format 2) on sotto_spec.py.

Every vector is replayed with this implementation: each step of a script is
run from the states this implementation wrote (which must equal the recorded
ones), with the recorded random draws, and its error, outputs, states and trace
are compared with what the vector recorded. Nothing recorded is taken on trust
except the random draws and the inputs the vector gives: a field this runner
does not read makes the vector fail, so no recorded value is silently skipped.

Schema: test-vectors/README.md. Only SPEC.md, that README and the JSON files
were read to write this.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os

import sotto_sessions as L
import sotto_spec as S
from sotto_spec import SottoError


class Mismatch(Exception):
    """The vector and this implementation disagree (or the vector is malformed)."""


def h(x):
    return bytes.fromhex(x)


def fill(tag, k):
    """README Recipes: fill(tag, k) = SHA256("sotto v2 vectors fill" || u8(tag) || u32(k))."""
    return S.SHA256(b"sotto v2 vectors fill" + S.u8(tag) + S.u32(k))


# Fields that are notes (README: "Other fields ... are notes") or identify a row.
NOTES = {"op", "error", "out", "states", "trace", "rng_draws", "name", "mutation",
         "description", "message_id", "plaintext_text", "then_dropped", "frame"}

LABEL_KEYS = {"info", "kem_binding_info", "next_info"}


def norm(x, key=None):
    """This implementation's values in the vectors' JSON form."""
    if isinstance(x, (bytes, bytearray)):
        return bytes(x).decode("ascii") if key in LABEL_KEYS else bytes(x).hex()
    if isinstance(x, dict):
        return {k: norm(v, k) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [norm(v) for v in x]
    return x


def compare(path, mine, theirs, subset=False):
    """Exact comparison of JSON values; `subset`: the vector may keep only some keys."""
    if isinstance(theirs, dict):
        if not isinstance(mine, dict):
            raise Mismatch("%s: expected an object, computed %r" % (path, short(mine)))
        if subset:
            extra = set(theirs) - set(mine)
            if extra:
                raise Mismatch("%s: recorded fields this implementation does not compute: %s"
                               % (path, sorted(extra)))
            keys = theirs.keys()
        else:
            if set(mine) != set(theirs):
                raise Mismatch("%s: fields differ: recorded %s, computed %s"
                               % (path, sorted(set(theirs) - set(mine)), sorted(set(mine) - set(theirs))))
            keys = theirs.keys()
        for k in keys:
            compare("%s.%s" % (path, k), mine[k], theirs[k])
        return
    if isinstance(theirs, list):
        if not isinstance(mine, list) or len(mine) != len(theirs):
            raise Mismatch("%s: recorded %d items, computed %s" % (
                path, len(theirs), len(mine) if isinstance(mine, list) else short(mine)))
        for i, (a, b) in enumerate(zip(mine, theirs)):
            compare("%s[%d]" % (path, i), a, b)
        return
    if type(mine) is bool or type(theirs) is bool:
        ok = type(mine) is type(theirs) and mine == theirs
    else:
        ok = mine == theirs
    if not ok:
        raise Mismatch("%s: recorded %s, computed %s" % (path, short(theirs), short(mine)))


def short(v):
    s = json.dumps(v) if not isinstance(v, str) else v
    return s if len(s) <= 80 else s[:72] + "...(%d)" % len(s)


def error_json(e: SottoError):
    j = {"name": e.name, "fields": dict(e.fields)}
    if getattr(e, "action", None) is not None:          # a §16.6 failure (vectors_sessions)
        j["action"] = e.action
    return j


def hexfield(step, key):
    """A hex input with its optional `<key>_pad_to` (README Common format)."""
    v = step[key]
    if v is None:
        return None
    b = h(v)
    pad = step.get(key + "_pad_to")
    if pad is not None:
        if pad < len(b):
            raise Mismatch("%s_pad_to below its length" % key)
        b = b + bytes(pad - len(b))
    return b


def state_record(b: bytes):
    """How the vectors write a state: hex, or {sha256, length} when longer than 4096 bytes."""
    if len(b) > 4096:
        return {"length": len(b), "sha256": hashlib.sha256(b).hexdigest()}
    return b.hex()


STATE_CLASSES = {
    S.TAG_SESSION: S.Session,
    S.TAG_DEVICE: S.Device,
    S.TAG_GROUP_SENDER: S.GroupSender,
    S.TAG_GROUP_RECEIVER: S.GroupReceiver,
    S.TAG_GROUP_STORE: S.GroupReceivers,
    L.TAG_PEER_RECORD: L.PeerRecord,
    L.TAG_GROUP_SESSION: L.GroupSession,
}

_decoded = {}


def decode_state(b: bytes, cls):
    """Decodes a saved state (cached: decoding is a pure function of the bytes)."""
    key = (cls, hashlib.sha256(b).digest(), len(b))
    obj = _decoded.get(key)
    if obj is None:
        obj = cls.from_bytes(b)
        if len(_decoded) > 512:
            _decoded.clear()
        _decoded[key] = obj
    return copy.deepcopy(obj)


def identity_arg(b):
    """An encoded identity key argument (0x02 0x10 || IK)."""
    return S.identity_key_from_bytes(b)


def mark_json(mark):
    kind, owner = mark
    return {"owner": S.identity_key_to_bytes(owner).hex(), "authenticated": kind == "Authenticated"}


# ---------------------------------------------------------------------------
# explain: every field of a state, bundle or distribution, as decoded here
# ---------------------------------------------------------------------------

def explain_device(d: S.Device):
    def ek_sha(seed):
        return S.SHA256(S.kem_from_seed(seed)[0])
    return {
        "generation": d.generation,
        "identity_seed": d.seed,
        "identity_key": d.identity,
        "identity_x25519_secret": S.IdX(d.seed),
        "next_signed_prekey_id": d.next_spk_id,
        "next_one_time_prekey_id": d.next_opk_id,
        "next_kem_prekey_id": d.next_kem_id,
        "signed_prekeys": [{"id": s.id, "created": s.created, "secret": s.secret, "public": s.public,
                            "signature": s.signature, "base_keys": list(s.base_keys)} for s in d.spks],
        "one_time_prekeys": [{"id": i, "secret": k, "public": S.pub(k)} for i, k in sorted(d.opks.items())],
        "last_resort_kem_prekeys": [{"id": k.id, "created": k.created, "seed": k.seed,
                                     "signature": k.signature, "ek_sha256": ek_sha(k.seed)}
                                    for k in d.last_resort],
        "one_time_kem_prekeys": [{"id": k.id, "seed": k.seed, "signature": k.signature,
                                  "ek_sha256": ek_sha(k.seed)} for k in d.kem_otks],
    }


def explain_session(s: S.Session):
    p = s.pending
    return {
        "generation": s.generation,
        "role": "initiator" if s.role == S.INITIATOR else "responder",
        "key_agreement": "PQXDH" if s.key_agreement == S.PQXDH else "X3DH",
        "local_identity": s.local_identity,
        "remote_identity": s.remote_identity,
        "kem_binding": s.kem_binding,
        "base_key": s.base_key,
        "associated_data": s.AD,
        "pending_prekey": None if p is None else {
            "signed_prekey_id": p.spk_id, "one_time_prekey_id": p.opk_id,
            "kem_prekey_id": None if p.kem is None else p.kem[0],
            "kem_ciphertext": None if p.kem is None else p.kem[1]},
        "root_key": s.RK,
        "remote_ratchet_public": s.DHr,
        "sending_chain": None if s.sending is None else {
            "ratchet_private": s.sending.secret, "ratchet_public": s.sending.public,
            "chain_key": s.sending.ck, "next": s.sending.ns},
        "previous_sending_length": s.PN,
        "receiving_chains": [{"ratchet_public": c.ratchet_key, "chain_key": c.ck, "next": c.next,
                              "skipped": [{"message_number": i, "message_key": c.skipped[i]}
                                          for i in sorted(c.skipped)]} for c in s.chains],
    }


def explain_bundle(b: S.PreKeyBundle):
    return {
        "identity_key": b.ik,
        "signed_prekey_id": b.spk_id,
        "signed_prekey": b.spk_pub,
        "signed_prekey_signature": b.spk_sig,
        "signed_prekey_signed_data": S.signed_prekey_data(b.spk_id, b.spk_pub),
        "one_time_prekey": None if b.opk is None else {"id": b.opk[0], "public": b.opk[1]},
        "kem_prekey": None if b.kem is None else {
            "id": b.kem.id, "kind": b.kem.kind, "ek": b.kem.ek, "signature": b.kem.sig,
            "signed_data": S.kem_prekey_data(b.kem.id, b.kem.kind, b.kem.ek)},
    }


def explain_sender(s: S.GroupSender):
    return {
        "generation": s.generation, "group_id": s.group_id, "owner": s.owner,
        "chain_seed": s.seed, "chain": s.chain, "owner_proof": s.owner_proof,
        "owner_signature": s.owner_signature, "index": s.index,
        "levels": list(s.ratchet.R), "message_key": s.ratchet.key(),
    }


def explain_receiver(r: S.GroupReceiver):
    return {
        "generation": r.generation, "group_id": r.group_id, "chain": r.chain, "owner": r.owner,
        "authenticated": r.authenticated, "next": r.next, "read": r.read,
        "levels": list(r.ratchet.R),
        "cache": [{"index": i, "key": r.cache[i]} for i in sorted(r.cache)],
    }


def explain_store(st: S.GroupReceivers):
    return {"generation": st.generation, "group_id": st.group_id,
            "receivers": [explain_receiver(r) for r in st.receivers]}


EXPLAIN_STATE = {
    S.Session: explain_session, S.Device: explain_device, S.GroupSender: explain_sender,
    S.GroupReceiver: explain_receiver, S.GroupReceivers: explain_store,
}

DECODERS = {
    "Message": S.parse_message,
    "IdentityKey": S.identity_key_from_bytes,
    "SignedPreKey": S.signed_prekey_from_bytes,
    "OneTimePreKey": S.one_time_prekey_from_bytes,
    "KemPreKey": S.KemPreKey.from_bytes,
    "PreKeyBundle": S.PreKeyBundle.from_bytes,
    "Session": S.Session.from_bytes,
    "Device": S.Device.from_bytes,
    "GroupMessage": S.GroupMessage.parse,
    "SenderKeyDistribution": S.Distribution.from_bytes,
    "GroupSender": S.GroupSender.from_bytes,
    "GroupReceiver": S.GroupReceiver.from_bytes,
    "GroupReceivers": S.GroupReceivers.from_bytes,
    "PeerRecord": L.PeerRecord.from_bytes,
    "GroupSession": L.GroupSession.from_bytes,
}


# ---------------------------------------------------------------------------
# A script: a world of named saved states and the steps run on it
# ---------------------------------------------------------------------------

class Script:
    def __init__(self, world=None):
        self.world = dict(world or {})
        self.loaded_senders = []          # (name, bytes) of sender states loaded by a step

    # ---- helpers ----------------------------------------------------------

    def get(self, name, cls):
        if name not in self.world:
            raise Mismatch("state %r is not in the world" % name)
        b = self.world[name]
        if len(b) < 2 or b[1] != cls.TAG:
            raise Mismatch("state %r is not a %s" % (name, cls.__name__))
        return decode_state(b, cls)

    def run(self, step, where):
        op = step["op"]
        fn = getattr(self, "op_" + op, None)
        if fn is None:
            raise Mismatch("%s: unknown op %r" % (where, op))
        self.used = set()
        draws = step.get("rng_draws")
        rng = S.Draws(draws if draws is not None else [])
        self.inputs = []                 # (name, object, bytes): objects a call must leave unchanged
        try:
            try:
                res = fn(step, rng)
                err = None
            except SottoError as e:
                res, err = None, e
        except AssertionError as e:      # Draws: a draw not recorded, or of another size
            raise Mismatch("%s (%s): %s" % (where, op, e))
        unread = set(step) - NOTES - self.used
        unread = {k for k in unread if not (k.endswith("_pad_to") and k[:-7] in self.used)}
        if unread:
            raise Mismatch("%s (%s): fields not read by this runner: %s" % (where, op, sorted(unread)))
        if not rng.exhausted():
            raise Mismatch("%s (%s): %d recorded draws left unused" % (where, op, len(rng.draws)))
        expected = step.get("error")
        if err is not None:
            if expected is None:
                raise Mismatch("%s (%s): recorded success, computed error %s%s"
                               % (where, op, err.name, err.fields or ""))
            compare("%s (%s).error" % (where, op), error_json(err), expected)
            for name, obj, before in self.inputs:
                if obj.to_bytes() != before:
                    raise Mismatch("%s (%s): failing call changed %s" % (where, op, name))
            if "states" in step or "out" in step:
                raise Mismatch("%s (%s): an error step records outputs" % (where, op))
            return
        if expected is not None:
            raise Mismatch("%s (%s): recorded error %s, computed success" % (where, op, expected["name"]))
        out, states, trace = res
        if "out" in step or out:
            compare("%s (%s).out" % (where, op), norm(out), step.get("out"))
        if states or "states" in step:
            rec = step.get("states") or {}
            if set(rec) != set(states):
                raise Mismatch("%s (%s): states written: recorded %s, computed %s"
                               % (where, op, sorted(rec), sorted(states)))
            for name, b in states.items():
                compare("%s (%s).states.%s" % (where, op, name), state_record(b), rec[name])
        if "trace" in step:
            if trace is None:
                raise Mismatch("%s (%s): a trace is recorded for an op without one" % (where, op))
            compare("%s (%s).trace" % (where, op), norm(trace), step["trace"], subset=True)
        self.world.update(states)

    def arg(self, step, key):
        self.used.add(key)
        if key not in step:
            raise Mismatch("argument %r missing" % key)
        return step[key]

    def policy(self, step):
        p = self.arg(step, "policy")
        if p not in (S.POST_QUANTUM_REQUIRED, S.CLASSICAL_ALLOWED):
            raise Mismatch("unknown policy %r" % p)
        return p

    def hexarg(self, step, key):
        self.used.add(key)
        return hexfield(step, key)

    def obj(self, step, key, cls):
        name = self.arg(step, key)
        o = self.get(name, cls)
        self.inputs.append((name, o, self.world[name]))
        return name, o

    # ---- load and its recipes -------------------------------------------

    def op_load(self, step, rng):
        name = self.arg(step, "name")
        if "state" in step:
            b = self.hexarg(step, "state")
        else:
            b = self.recipe(self.arg(step, "recipe"))
        if len(b) >= 2 and b[1] == S.TAG_GROUP_SENDER:
            self.loaded_senders.append((name, b))
        return {}, {name: b}, None

    def recipe(self, rc):
        kind = rc["kind"]
        keys = set(rc) - {"kind"}

        def take(k, default=None):
            keys.discard(k)
            return rc.get(k, default)

        if kind == "device_fill":
            d = self.get(take("from"), S.Device)
            for k in range(take("base_keys", 0)):
                d.spks[-1].base_keys.append(fill(1, k))
            for k in range(take("one_time_prekeys", 0)):
                d.opks[d.next_opk_id] = fill(2, k)
                d.next_opk_id += 1
            for k in range(take("kem_prekeys", 0)):
                seed = fill(3, 2 * k) + fill(3, 2 * k + 1)
                kid = d.next_kem_id
                d.kem_otks.append(S.KemOneTimeRec(kid, seed, d._kem_sig(kid, S.KEM_KIND_ONE_TIME, seed)))
                d.next_kem_id += 1
            for field, attr in (("next_spk_id", "next_spk_id"), ("next_opk_id", "next_opk_id"),
                                ("next_kem_id", "next_kem_id")):
                v = take(field)
                if v is not None:
                    setattr(d, attr, v)
            out = d.to_bytes()
        elif kind == "store_fill":
            st = S.GroupReceivers(h(take("group_id")))
            n_u, n_a = take("unauthenticated"), take("authenticated")
            for i in range(n_u + n_a):
                R = [fill(6, 8 * i + lvl) for lvl in range(8)]
                st.receivers.append(S.GroupReceiver(
                    st.group_id, S.ed25519_public(fill(4, i)), S.ed25519_public(fill(5, i // 4)),
                    i >= n_u, S.GroupRatchet(R, 0)))
            out = st.to_bytes()
        elif kind == "session_fill":
            s = self.get(take("from"), S.Session)
            counts = take("keys")
            if len(counts) > len(s.chains):
                raise Mismatch("session_fill: more counts than chains")
            for c, n in enumerate(counts):
                ch = s.chains[c]
                ch.skipped = {2000 - n + i: fill(7, 2000 * c + i) for i in range(n)}
                ch.next = 2000
            out = s.to_bytes()
        elif kind == "session_advance":
            s = self.get(take("from"), S.Session)
            n = take("count")
            for _ in range(n):
                s.sending.ck = S.chain_step(s.sending.ck)[1]
            s.sending.ns += n
            out = s.to_bytes()
        elif kind == "session_edit":
            s = self.get(take("from"), S.Session)
            ns, nxt = take("ns"), take("receiving_next")
            if ns is not None:
                s.sending.ns = ns
            if nxt is not None:
                s.chains[-1].next = nxt
            out = s.to_bytes()
        elif kind == "patch":
            src = take("from")
            if src not in self.world:
                raise Mismatch("patch: state %r is not in the world" % src)
            b = bytearray(self.world[src])
            off, pb = take("offset"), h(take("bytes"))
            if off + len(pb) > len(b):
                raise Mismatch("patch past the end")
            b[off:off + len(pb)] = pb
            out = bytes(b)
        else:
            raise Mismatch("unknown recipe %r" % kind)
        if keys:
            raise Mismatch("recipe %s: fields not read: %s" % (kind, sorted(keys)))
        return out

    # ---- decode and explain (no SPEC operation) -----------------------------

    def op_decode(self, step, rng):
        enc = self.arg(step, "encoding")
        if enc not in DECODERS:
            raise Mismatch("unknown encoding %r" % enc)
        if "input" in step:
            b = self.hexarg(step, "input")
        else:
            name = self.arg(step, "state")
            if name not in self.world:
                raise Mismatch("state %r is not in the world" % name)
            b = self.world[name]
        obj = DECODERS[enc](b)
        # A decoded state re-encodes to the same bytes (one encoding per value).
        if hasattr(obj, "to_bytes") and enc not in ("Message",) and obj.to_bytes() != b:
            raise Mismatch("decode %s: re-encoding differs" % enc)
        return {}, {}, None

    def op_explain(self, step, rng):
        if "state" in step:
            name = self.arg(step, "state")
            b = self.world.get(name)
            if b is None or len(b) < 2 or b[1] not in STATE_CLASSES:
                raise Mismatch("explain: %r is not a saved state in the world" % name)
            cls = STATE_CLASSES[b[1]]
            dec = EXPLAIN_STATE[cls](decode_state(b, cls))
        else:
            b = self.hexarg(step, "input")
            if len(b) >= 2 and b[1] == S.TAG_PREKEY_BUNDLE:
                dec = explain_bundle(S.PreKeyBundle.from_bytes(b))
            else:
                raise Mismatch("explain: input of type %r not known to this runner" % b[:2].hex())
        return {"decoded": dec}, {}, None

    # ---- §6 device ------------------------------------------------------------

    def _device_op(self, step, rng, call):
        name, d = self.obj(step, "device", S.Device)
        published = call(d)
        return {"published": published}, {name: d.to_bytes()}, None

    def op_device_new(self, step, rng):
        name = self.arg(step, "device")
        d = S.Device.new(rng, self.arg(step, "now"))
        return {}, {name: d.to_bytes()}, None

    def op_rotate_signed_prekey(self, step, rng):
        now = self.arg(step, "now")
        return self._device_op(step, rng, lambda d: [d.rotate_signed_prekey(rng, now)])

    def op_remove_signed_prekey(self, step, rng):
        i = self.arg(step, "id")
        return self._device_op(step, rng, lambda d: (d.remove_signed_prekey(i), [])[1])

    def op_generate_one_time_prekeys(self, step, rng):
        n = self.arg(step, "count")
        return self._device_op(step, rng, lambda d: d.generate_one_time_prekeys(rng, n))

    def op_rotate_kem_prekey(self, step, rng):
        now = self.arg(step, "now")
        return self._device_op(step, rng, lambda d: [d.rotate_last_resort_kem_prekey(rng, now).to_bytes()])

    def op_remove_kem_prekey(self, step, rng):
        i = self.arg(step, "id")
        return self._device_op(step, rng, lambda d: (d.remove_last_resort_kem_prekey(i), [])[1])

    def op_generate_kem_prekeys(self, step, rng):
        n = self.arg(step, "count")
        return self._device_op(step, rng,
                               lambda d: [k.to_bytes() for k in d.generate_one_time_kem_prekeys(rng, n)])

    def op_reset_prekeys(self, step, rng):
        now, last = self.arg(step, "now"), self.arg(step, "last_generation")

        def call(d):
            spk, kem = d.reset_prekeys_after_restore(rng, now, last)
            return [spk, kem.to_bytes()]
        return self._device_op(step, rng, call)

    def op_bundle(self, step, rng):
        _, d = self.obj(step, "device", S.Device)
        opk, kem = self.arg(step, "one_time_prekey_id"), self.arg(step, "kem_prekey_id")
        if opk is not None and opk not in d.opks:
            raise Mismatch("bundle: one-time prekey %d not held" % opk)
        return {"bundle": d.bundle(opk_id=opk, kem_id=kem).to_bytes()}, {}, None

    # ---- §5.7, §7 key agreement -------------------------------------------------

    def _verified_bundle(self, step):
        raw, exp = self.hexarg(step, "bundle"), self.hexarg(step, "expected")
        b = S.PreKeyBundle.from_bytes(raw)
        return b.verify(identity_arg(exp) if exp is not None else None)

    def op_verify_bundle(self, step, rng):
        self._verified_bundle(step)
        return {}, {}, None

    def op_initiate(self, step, rng):
        _, d = self.obj(step, "device", S.Device)
        sname, policy = self.arg(step, "session"), self.policy(step)
        vb = self._verified_bundle(step)
        s = d.initiate(rng, vb, policy)
        return {}, {sname: s.to_bytes()}, s.trace

    def op_accept(self, step, rng):
        dname, d = self.obj(step, "device", S.Device)
        sname, policy = self.arg(step, "session"), self.policy(step)
        s, pt, _ = d.accept(self.hexarg(step, "message"), policy)
        return {"plaintext": pt}, {dname: d.to_bytes(), sname: s.to_bytes()}, s.trace

    # ---- §8 ------------------------------------------------------------------------

    def op_encrypt(self, step, rng):
        name, s = self.obj(step, "session", S.Session)
        msg = s.encrypt(rng, self.hexarg(step, "plaintext"))
        return {"message": msg}, {name: s.to_bytes()}, s.trace

    def op_decrypt(self, step, rng):
        name, s = self.obj(step, "session", S.Session)
        pt, _ = s.decrypt(self.hexarg(step, "message"))
        return {"plaintext": pt}, {name: s.to_bytes()}, s.trace

    # ---- §10.5 -------------------------------------------------------------------------

    def op_seal(self, step, rng):
        if "state" in step:
            name = self.arg(step, "state")
            b = self.world.get(name)
            if b is None or len(b) < 2 or b[1] not in STATE_CLASSES:
                raise Mismatch("seal: %r is not a saved state in the world" % name)
            plain = decode_state(b, STATE_CLASSES[b[1]]).to_bytes()
        else:
            plain = self.hexarg(step, "input")
        trace = {}
        key, ctx = self.hexarg(step, "storage_key"), self.hexarg(step, "context")
        sealed = S.seal(rng, plain, key, ctx, trace)
        return {"sealed": sealed}, {}, trace

    def op_unseal(self, step, rng):
        name = self.arg(step, "state")
        inner = self.arg(step, "inner_type")
        if inner not in STATE_CLASSES:
            raise Mismatch("unseal: inner type %#x is not a state type" % inner)
        sealed, key, ctx = self.hexarg(step, "sealed"), self.hexarg(step, "storage_key"), self.hexarg(step, "context")
        plain = S.open_sealed(sealed, key, ctx, inner)
        obj = STATE_CLASSES[inner].from_bytes(plain)
        if obj.to_bytes() != plain:
            raise Mismatch("unseal: the opened state does not re-encode to itself")
        return {}, {name: plain}, None

    # ---- §15 groups ------------------------------------------------------------------------

    def op_group_sender_new(self, step, rng):
        _, d = self.obj(step, "device", S.Device)
        name = self.arg(step, "sender")
        snd = S.GroupSender.new(rng, self.hexarg(step, "group_id"), d)
        return {}, {name: snd.to_bytes()}, None

    def op_group_sender_rotate(self, step, rng):
        _, d = self.obj(step, "device", S.Device)
        name, snd = self.obj(step, "sender", S.GroupSender)
        snd.rotate(rng, d)
        return {}, {name: snd.to_bytes()}, None

    def op_group_encrypt(self, step, rng):
        name, snd = self.obj(step, "sender", S.GroupSender)
        msg = snd.encrypt(rng, self.hexarg(step, "plaintext"))
        return {"message": msg}, {name: snd.to_bytes()}, snd.trace

    def op_group_distribution(self, step, rng):
        _, snd = self.obj(step, "sender", S.GroupSender)
        return {"distribution": snd.distribution()}, {}, None

    def op_store_new(self, step, rng):
        name = self.arg(step, "store")
        return {}, {name: S.GroupReceivers(self.hexarg(step, "group_id")).to_bytes()}, None

    def op_store_import(self, step, rng):
        name, st = self.obj(step, "store", S.GroupReceivers)
        outcome = st.import_unauthenticated(self.hexarg(step, "distribution"))
        return {"outcome": outcome}, {name: st.to_bytes()}, None

    def op_store_receive_distribution(self, step, rng):
        name, st = self.obj(step, "store", S.GroupReceivers)
        sname, s = self.obj(step, "session", S.Session)
        outcome = st.receive_distribution(s, self.hexarg(step, "message"))
        return {"outcome": outcome}, {name: st.to_bytes(), sname: s.to_bytes()}, None

    def op_store_install_accepted(self, step, rng):
        name, st = self.obj(step, "store", S.GroupReceivers)
        dname, d = self.obj(step, "device", S.Device)
        sname, policy, msg = self.arg(step, "session"), self.policy(step), self.hexarg(step, "message")
        s, pt, peer = d.accept(msg, policy)
        states = {dname: d.to_bytes(), sname: s.to_bytes()}
        before = st.to_bytes()
        try:
            outcome, install_error = st.install(pt, peer), None
            states[name] = st.to_bytes()
        except SottoError as e:
            outcome, install_error = None, error_json(e)
            if st.to_bytes() != before:
                raise Mismatch("store_install_accepted: a failed install changed the store")
        return {"outcome": outcome, "install_error": install_error}, states, None

    def op_store_decrypt(self, step, rng):
        name, st = self.obj(step, "store", S.GroupReceivers)
        pt, mark = st.decrypt(self.hexarg(step, "message"))
        return {"plaintext": pt, "mark": mark_json(mark)}, {name: st.to_bytes()}, st.trace

    def op_store_remove_owner(self, step, rng):
        name, st = self.obj(step, "store", S.GroupReceivers)
        n = st.remove_owner(identity_arg(self.hexarg(step, "owner")))
        return {"removed": n}, {name: st.to_bytes()}, None

    def op_receiver_receive_distribution(self, step, rng):
        name = self.arg(step, "receiver")
        sname, s = self.obj(step, "session", S.Session)
        msg, gid = self.hexarg(step, "message"), self.hexarg(step, "group_id")
        r = S.GroupReceiver.receive_distribution(s, msg, gid)
        return {}, {name: r.to_bytes(), sname: s.to_bytes()}, None

    def op_receiver_import(self, step, rng):
        name = self.arg(step, "receiver")
        dist, gid = self.hexarg(step, "distribution"), self.hexarg(step, "group_id")
        r = S.GroupReceiver.import_unauthenticated(dist, gid)
        return {}, {name: r.to_bytes()}, None

    def op_receiver_decrypt(self, step, rng):
        name, r = self.obj(step, "receiver", S.GroupReceiver)
        pt, mark = r.decrypt(self.hexarg(step, "message"))
        return {"plaintext": pt, "mark": mark_json(mark)}, {name: r.to_bytes()}, r.trace


# ---------------------------------------------------------------------------
# Per-file checks beyond the scripts
# ---------------------------------------------------------------------------

def check_persistence_roundtrip(script, step):
    """persistence.json: an unseal that succeeds gives back the state that was sealed."""
    if step["op"] == "unseal" and step.get("error") is None:
        name = step["state"]
        if name.endswith("_opened") and name[:-7] in script.world:
            if script.world[name] != script.world[name[:-7]]:
                raise Mismatch("unseal: %s differs from %s" % (name, name[:-7]))


def check_ratchet_vector(v, script):
    """group.json `ratchet`: each listed state four ways, and every loaded sender."""
    init = [h(x) for x in v["initial_levels"]]
    first = next(s for s in v["steps"] if s["op"] == "group_sender_new")
    if b"".join(init) != h(first["rng_draws"][0]):
        raise Mismatch("initial_levels are not the first 256 bytes drawn by group_sender_new")
    prev = None
    for st in v["states"]:
        i = st["index"]
        extra = set(st) - {"index", "levels", "message_key", "jump_from_0"}
        if extra:
            raise Mismatch("ratchet state %d: fields not read: %s" % (i, sorted(extra)))
        levels = [h(x) for x in st["levels"]]
        closed = S.group_closed_form(init, i)
        if closed != levels:
            raise Mismatch("ratchet %d: levels differ from the closed form" % i)
        if S.g_key(closed[7]) != h(st["message_key"]):
            raise Mismatch("ratchet %d: message key" % i)
        r = S.GroupRatchet(init, 0)
        r.jump(i)
        if r.R != levels:
            raise Mismatch("ratchet %d: one jump from 0 differs" % i)
        cost = getattr(r, "last_jump", (0, 0)) if i > 0 else (0, 0)
        compare("ratchet %d.jump_from_0" % i, {"steps": cost[0], "derives": cost[1]}, st["jump_from_0"])
        if cost[0] > 120 or cost[1] > 28:
            raise Mismatch("ratchet %d: jump over its bound" % i)
        if prev is not None:
            pi, plevels = prev
            r = S.GroupRatchet(plevels, pi)
            r.jump(i)
            if r.R != levels:
                raise Mismatch("ratchet %d: jump from %d differs" % (i, pi))
            if i - pi <= 70000:
                r = S.GroupRatchet(plevels, pi)
                while r.index < i:
                    r.increment()
                if r.R != levels:
                    raise Mismatch("ratchet %d: increments from %d differ" % (i, pi))
        prev = (i, levels)
    for name, b in script.loaded_senders:
        snd = S.GroupSender.from_bytes(b)
        if snd.ratchet.R != S.group_closed_form(init, snd.index):
            raise Mismatch("loaded sender %s at %d is not the closed form" % (name, snd.index))


# ---------------------------------------------------------------------------
# kdf.json
# ---------------------------------------------------------------------------

def _label(v, expected):
    if v.encode("ascii") != expected:
        raise Mismatch("label %r, expected %r" % (v, expected.decode()))


def check_kdf(v):
    kind = v["kind"]
    got = {}
    read = {"kind", "name"}

    def inp(k):
        read.add(k)
        x = v[k]
        return None if x is None else h(x)

    def want(k, value):
        read.add(k)
        got[k] = value

    if kind == "identity_conversion":
        seed = inp("seed")
        ik = S.ed25519_public(seed)
        want("sha512_of_seed", S.SHA512(seed))
        want("identity_key", ik)
        want("identity_key_encoded", S.identity_key_to_bytes(ik))
        want("idx", S.IdX(seed))
        want("idu", S.IdU(ik))
        if S.pub(S.IdX(seed)) != S.IdU(ik):
            raise Mismatch("pub(IdX(seed)) != IdU(IK)")
        neg = inp("negated_identity_key")
        P = S._ed_decode(ik)
        if neg != S._ed_encode(S._ed_neg(P)):
            raise Mismatch("negated_identity_key is not -A")
        want("negated_idu", S.IdU(neg))
        tor = inp("torsion_identity_key")
        T = S._ed_add(S._ed_decode(tor), S._ed_neg(P))
        if not (S._ed_is_identity(S._ed_mul(8, T)) and not S._ed_is_identity(S._ed_mul(4, T))):
            raise Mismatch("torsion_identity_key - A is not of order 8")
        want("torsion_idu", S.IdU(tor))
        peer = inp("peer_secret")
        want("dh_with_idu", S.X25519(peer, S.IdU(ik)))
        want("dh_with_torsion_idu", S.X25519(peer, S.IdU(tor)))
        if got["dh_with_idu"] != got["dh_with_torsion_idu"] or got["idu"] != got["negated_idu"]:
            raise Mismatch("an alias does not give the same X25519 result")
    elif kind == "fingerprint":
        read.add("info")
        _label(v["info"], S.L_FINGERPRINT)
        fp = S.fingerprint(inp("identity_key"))
        want("fingerprint", fp)
        want("display", S.fingerprint_display(fp))
    elif kind == "ml_kem_1024":
        d, z, m = inp("d"), inp("z"), inp("m")
        ek, dk = S.KemKeyGen(d, z)
        want("ek", ek)
        want("dk_sha256", S.SHA256(dk))
        ct, ss = S.KemEncaps(ek, m)
        want("ct", ct)
        want("ss", ss)
        if S.KemDecaps(dk, ct) != ss:
            raise Mismatch("decapsulation does not give the shared secret")
        mct = inp("modified_ct")
        diff = sum(bin(a ^ b).count("1") for a, b in zip(mct, ct))
        if len(mct) != len(ct) or diff != 1:
            raise Mismatch("modified_ct is not ct with one bit flipped")
        want("modified_ct_ss", S.KemDecaps(dk, mct))
        bad = inp("ek_with_coefficient_4095")
        if (bad[0] | ((bad[1] & 0x0F) << 8)) != 4095 or bad[2:] != ek[2:] or (bad[1] >> 4) != (ek[1] >> 4):
            raise Mismatch("ek_with_coefficient_4095 is not ek with its first coefficient 4095")
        if not S.kem_ek_valid(ek) or S.kem_ek_valid(bad):
            raise Mismatch("FIPS 203 check")
    elif kind == "kem_binding":
        read.add("info")
        _label(v["info"], S.L_KEM_BINDING)
        ek = inp("ek")
        want("encoded", S.EncodeKEM(ek) if ek is not None else b"\x00")
        want("kem_binding", S.kem_binding(ek))
    elif kind == "root_step":
        read.add("info")
        _label(v["info"], S.L_ROOT)
        rk, ck = S.KDF_RK(inp("root_key"), inp("dh_output"))
        want("new_root_key", rk)
        want("chain_key", ck)
    elif kind == "chain_step":
        read.update(("info", "next_info"))
        _label(v["info"], S.L_CHAIN_MESSAGE)
        _label(v["next_info"], S.L_CHAIN_NEXT)
        mk, nck = S.chain_step(inp("chain_key"))
        want("message_key", mk)
        want("next_chain_key", nck)
    elif kind == "message_keys":
        read.add("info")
        label = v["info"].encode("ascii")
        if label not in (S.L_MESSAGE_KEYS, S.L_GROUP_MESSAGE_KEYS):
            raise Mismatch("unknown message key label %r" % v["info"])
        key, nonce = S.KN(inp("salt"), inp("ikm"), label)
        want("aes_key", key)
        want("nonce", nonce)
    elif kind == "sealed_state_keys":
        read.add("info")
        _label(v["info"], S.L_SEALED)
        salt, hdr, ctx = inp("salt"), inp("header"), inp("context")
        if len(hdr) != 35 or hdr[:2] != b"\x02\x30" or hdr[3:] != salt:
            raise Mismatch("header is not 02 30 inner_type salt")
        key, nonce = S.KN(salt, inp("ikm"), S.L_SEALED)
        want("aes_key", key)
        want("nonce", nonce)
        want("aad", hdr + S.u16(len(ctx)) + ctx)
    elif kind in ("group_step", "group_derive", "group_key"):
        read.add("info")
        x = inp("input")
        if kind == "group_step":
            _label(v["info"], S.L_GROUP_STEP)
            want("output", S.g_step(x))
        elif kind == "group_key":
            _label(v["info"], S.L_GROUP_KEY)
            want("output", S.g_key(x))
        else:
            _label(v["info"], S.L_GROUP_DERIVE)
            read.add("level")
            want("output", S.g_derive(v["level"], x))
    else:
        raise Mismatch("unknown kdf kind %r" % kind)
    unread = set(v) - read - {"description"}
    if unread:
        raise Mismatch("fields not read: %s" % sorted(unread))
    for k, val in got.items():
        compare(k, norm(val), v[k])


# ---------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------

def run_file(path, report):
    """Runs every vector of one file; report(name, error-or-None) per vector."""
    with open(path, encoding="utf-8") as f:
        d = json.load(f)
    base = os.path.basename(path)
    if d.get("format") != 2:
        report(base, "format %r, not 2" % d.get("format"))
        return
    expected_seed = hashlib.sha256(d["seed_label"].encode()).hexdigest()
    if d["seed"] != expected_seed:
        report(base + "/seed", "seed is not SHA-256(seed_label)")
    names = [v["name"] for v in d["vectors"]]
    if len(set(names)) != len(names):
        report(base + "/names", "vector names are not unique")
    fixtures = None
    if "fixtures" in d:
        fx = Script()
        try:
            for n, step in enumerate(d["fixtures"]):
                if step["op"] != "load":
                    raise Mismatch("fixture %d is not a load" % n)
                fx.run(step, "fixture %d" % n)
            report(base + "/fixtures", None)
        except Exception as e:  # noqa: BLE001 - the rows then fail on their own
            report(base + "/fixtures", "%s: %s" % (type(e).__name__, e))
        fixtures = fx.world
    for v in d["vectors"]:
        name = "%s/%s" % (base, v["name"])
        try:
            if d["area"] == "kdf":
                check_kdf(v)
            elif "steps" in v:
                sc = Script()
                for n, step in enumerate(v["steps"]):
                    sc.run(step, "step %d" % n)
                    if d["area"] == "persistence":
                        check_persistence_roundtrip(sc, step)
                if v.get("kind") == "ratchet":
                    check_ratchet_vector(v, sc)
                if "policy" in v:                   # agreement.json: the policy of both calls
                    for step in v["steps"]:
                        if step["op"] in ("initiate", "accept") and step["policy"] != v["policy"]:
                            raise Mismatch("a step's policy is not the vector's")
                extra = set(v) - {"name", "description", "steps", "kind", "policy", "initial_levels", "states"}
                if extra:
                    raise Mismatch("vector fields not read: %s" % sorted(extra))
            elif "op" in v:
                if fixtures is None:
                    raise Mismatch("a row in a file without fixtures")
                Script(fixtures).run(v, "row")      # a row never changes the fixtures
            else:
                raise Mismatch("neither steps nor a row")
        except Mismatch as e:
            report(name, str(e))
        except SottoError as e:
            report(name, "unexpected %s%s outside a step" % (e.name, e.fields or ""))
        except Exception as e:  # noqa: BLE001 - a malformed vector or a bug here: this vector fails
            report(name, "%s: %s" % (type(e).__name__, e))
        else:
            report(name, None)


# ---------------------------------------------------------------------------
# §16: the session layer's operations (vectors_sessions.py)
# ---------------------------------------------------------------------------

import vectors_sessions  # noqa: E402 - needs the names above

EXPLAIN_STATE[L.PeerRecord] = vectors_sessions.explain_record
EXPLAIN_STATE[L.GroupSession] = vectors_sessions.explain_group


class Script(Script, vectors_sessions.SessionOps):  # noqa: F811 - the script with §16's ops
    pass
