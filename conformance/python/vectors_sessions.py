"""The §16 operations of the vector scripts (sessions.json, sessions_negative.json) on
sotto_sessions.py. Schema: test-vectors/README.md, "The session layer". Imported at the end
of vectors.py, whose Script gains these `op_` methods.

Peer records (0x25) and group sessions (0x26) are states of the world like the others:
every step decodes them from their saved bytes, runs one call, and writes back what the
README says the operation writes; a failing call must leave every object it was given as
it was (vectors.Script.run checks it).
"""

from __future__ import annotations

import sotto_sessions as L
import sotto_spec as S
from sotto_spec import SottoError
from vectors import Mismatch, explain_sender, explain_session, explain_store, identity_arg, mark_json


def h(x):
    return bytes.fromhex(x)


def enc_ik(ik):
    return S.identity_key_to_bytes(ik)


class FailureError(SottoError):
    """A §16.6 Failure, raised so that Script.run compares it as an error with its action."""

    def __init__(self, f: L.Failure):
        super().__init__(f.error, **f.fields)
        self.action = action_json(f)


def hint_json(hint: L.RetryHint):
    return {"ratchet_key": hint.ratchet_key.hex(), "message_number": hint.message_number,
            "base_key": None if hint.base_key is None else hint.base_key.hex()}


def hint_arg(d):
    if set(d) != {"ratchet_key", "message_number", "base_key"}:
        raise Mismatch("a hint has the fields ratchet_key, message_number, base_key")
    return L.RetryHint(h(d["ratchet_key"]), d["message_number"],
                       None if d["base_key"] is None else h(d["base_key"]))


def action_json(f: L.Failure):
    if f.action in (L.IGNORE, L.RETRY_LATER):
        return {"kind": f.action, "reason": f.detail}
    return {"kind": f.action, "hint": hint_json(f.detail)}


def content_json(r: L.Received):
    if r.kind == L.FRAME_PAYLOAD:
        return {"kind": "payload", "payload": r.value.hex(), "sender": enc_ik(r.identity).hex()}
    if r.kind == L.FRAME_DISTRIBUTION:
        return {"kind": "distribution", "group_id": r.value.group_id.hex(), "sender": enc_ik(r.identity).hex()}
    if r.kind == L.FRAME_RETRY:
        return {"kind": "retry_request", "hint": hint_json(r.value)}
    return {"kind": "distribution_request", "group_id": r.value.hex()}


def sent_json(messages, unusable):
    return {"messages": [{"device_id": d, "message": m.hex()} for d, m in messages],
            "unusable": [{"device_id": d, "error": {"name": e, "fields": {}}} for d, e in unusable]}


def fanout_json(records, out):
    res = []
    for rec, (messages, unusable) in zip(records, out):
        j = sent_json(messages, unusable)
        j["user"] = rec.user.hex()
        res.append(j)
    return res


def explain_entry(e: L.SessionEntry):
    return {"created": e.created, "last_decrypt": e.last_decrypt, "lost_to": e.lost_to,
            "session_length": len(e.session.to_bytes()), "session": explain_session(e.session)}


def explain_record(r: L.PeerRecord):
    devices = []
    for d in sorted(r.devices):
        e = r.devices[d]
        devices.append({
            "device_id": d, "identity": enc_ik(e.identity),
            "pending": None if e.pending is None else enc_ik(e.pending),
            "stale_since": e.stale_since, "pinned": e.pinned, "classical_allowed": e.classical_allowed,
            "last_recovery": e.last_recovery, "retry_window": e.retry_window, "retry_count": e.retry_count,
            "unanswered": None if e.unanswered is None else hint_json(e.unanswered),
            "active": None if e.active is None else explain_entry(e.active),
            "archived": [explain_entry(x) for x in e.archived],
        })
    return {"generation": r.generation, "local_identity": enc_ik(r.local_identity), "user": r.user,
            "local_device": r.local_device, "devices": devices,
            "deleted": [{"device_id": d, "identity": enc_ik(m.identity), "pinned": m.pinned, "left": m.left}
                        for d, m in sorted(r.remembered.items())]}


def explain_group(g: L.GroupSession):
    return {"generation": g.generation, "local_user": g.local_user, "members": list(g.members),
            "sender": explain_sender(g.sender), "store_length": len(g.store.to_bytes()),
            "store": explain_store(g.store),
            # FINDING §16 S13, S21: the dropped chains, oldest first, each {"chain", "owner"}, both
            # the raw 32 bytes (README, as of 43b11e7).
            "dropped": [{"chain": c, "owner": o} for c, o in g.dropped]}


class SessionOps:
    """`op_` methods for Script (vectors.py): arguments, outputs and states as the README's table."""

    # ---- helpers ----------------------------------------------------------------

    def record(self, step, key="record"):
        return self.obj(step, key, L.PeerRecord)

    def group(self, step, key="group"):
        return self.obj(step, key, L.GroupSession)

    def device(self, step, key="device"):
        return self.obj(step, key, S.Device)

    def user(self, step, key="user"):
        return self.hexarg(step, key)

    def ik(self, step, key):
        return identity_arg(self.hexarg(step, key))

    def records(self, step):
        names = self.arg(step, "records")
        out = []
        for n in names:
            if n not in self.world:
                raise Mismatch("state %r is not in the world" % n)
            existing = next((o for name, o, _ in self.inputs if name == n), None)
            if existing is None:
                existing = self.get(n, L.PeerRecord)
                self.inputs.append((n, existing, self.world[n]))
            out.append(existing)
        return names, out

    @staticmethod
    def unique_states(names, objs):
        states = {}
        for n, o in zip(names, objs):
            states[n] = o.to_bytes()
        return states

    # ---- §16.1, §16.2 -------------------------------------------------------------

    def op_record_new(self, step, rng):
        name = self.arg(step, "record")
        _, d = self.device(step)
        user = self.user(step)
        local_device = self.arg(step, "local_device")
        if local_device is None:
            r = L.PeerRecord.new(d, user)
        else:
            r = L.PeerRecord.new_own(d, user, local_device)
        return {}, {name: r.to_bytes()}, None

    def op_update_devices(self, step, rng):
        name, r = self.record(step)
        lst = self.arg(step, "list")
        now = self.arg(step, "now")
        pairs = []
        for e in lst:
            if set(e) != {"device_id", "identity"}:
                raise Mismatch("a list entry has the fields device_id, identity")
            pairs.append((e["device_id"], identity_arg(h(e["identity"]))))   # decoding errors first
        out = r.update_devices(pairs, now)
        local = out["local"]
        if local is not None:
            kind, fp = local
            local = {"kind": kind} if fp is None else {"kind": kind, "fingerprint": fp.hex()}
        changes = {
            "added": out["added"], "relisted": out["relisted"], "removed": out["removed"],
            "withdrawn": out["withdrawn"], "deleted": out["deleted"], "local": local,
            "identity_changes": [{"device_id": c["device"], "old_fingerprint": c["trusted_fingerprint"].hex(),
                                  "new_fingerprint": c["new_fingerprint"].hex(),
                                  "new_identity": enc_ik(c["identity"]).hex()} for c in out["identity_changes"]],
        }
        return {"changes": changes}, {name: r.to_bytes()}, None

    def op_acknowledge_identity(self, step, rng):
        name, r = self.record(step)
        device_id = self.arg(step, "device_id")
        r.acknowledge_identity(device_id, self.ik(step, "identity"))
        return {}, {name: r.to_bytes()}, None

    def op_allow_classical(self, step, rng):
        allowed = self.arg(step, "allowed")
        if not isinstance(allowed, bool):
            raise Mismatch("allowed is not a bool")
        name, r = self.record(step)
        r.allow_classical(self.arg(step, "device_id"), allowed)
        return {}, {name: r.to_bytes()}, None

    # ---- §16.3 ---------------------------------------------------------------------

    def op_plan_send(self, step, rng):
        _, r = self.record(step)
        before = r.to_bytes()
        plan = r.plan_send(self.arg(step, "now"))
        if r.to_bytes() != before:
            raise Mismatch("plan_send changed the record")
        return {"plan": plan}, {}, None

    def op_add_bundle(self, step, rng):
        name, r = self.record(step)
        _, d = self.device(step)
        device_id, now = self.arg(step, "device_id"), self.arg(step, "now")
        bundle = S.PreKeyBundle.from_bytes(self.hexarg(step, "bundle"))      # decoded first
        r.add_bundle(d, device_id, bundle, now, rng)
        return {}, {name: r.to_bytes()}, None

    def op_record_encrypt(self, step, rng):
        name, r = self.record(step)
        messages, unusable = r.encrypt(self.hexarg(step, "payload"), rng)
        return {"sent": sent_json(messages, unusable)}, {name: r.to_bytes()}, None

    def op_encrypt_to(self, step, rng):
        name, r = self.record(step)
        msg = r.encrypt_to(self.arg(step, "device_id"), self.hexarg(step, "payload"), rng)
        return {"message": msg}, {name: r.to_bytes()}, None

    # ---- §16.5, §16.6 --------------------------------------------------------------------

    def _record_decrypt(self, step):
        name, r = self.record(step)
        dname, d = self.device(step)
        res = r.decrypt(d, self.arg(step, "from"), self.hexarg(step, "message"), self.arg(step, "now"))
        if isinstance(res, L.Failure):
            raise FailureError(res)
        return name, r, dname, d, res

    def op_record_decrypt(self, step, rng):
        name, r, dname, d, res = self._record_decrypt(step)
        return {"content": content_json(res)}, {name: r.to_bytes(), dname: d.to_bytes()}, None

    def op_request_retry(self, step, rng):
        name, r = self.record(step)
        hint = hint_arg(self.arg(step, "hint"))
        msg = r.request_retry(self.arg(step, "device_id"), hint, self.arg(step, "now"), rng)
        return {"message": msg}, {name: r.to_bytes()}, None

    def op_start_new_session(self, step, rng):
        name, r = self.record(step)
        _, d = self.device(step)
        device_id, now = self.arg(step, "device_id"), self.arg(step, "now")
        hint = hint_arg(self.arg(step, "hint"))
        bundle = S.PreKeyBundle.from_bytes(self.hexarg(step, "bundle"))      # decoded first
        msg = r.start_new_session(d, device_id, bundle, hint, now, rng)
        return {"message": msg}, {name: r.to_bytes()}, None

    def op_request_distribution(self, step, rng):
        name, r = self.record(step)
        gid = self.hexarg(step, "group_id")
        msg = r.request_distribution(self.arg(step, "device_id"), gid, rng)
        return {"message": msg}, {name: r.to_bytes()}, None

    # ---- §16.7 -----------------------------------------------------------------------------

    def op_expire(self, step, rng):
        name, r = self.record(step)
        devices, sessions = r.expire(self.arg(step, "now"))
        return {"expired": {"devices": devices, "sessions": sessions}}, {name: r.to_bytes()}, None

    def op_after_restore(self, step, rng):
        name, r = self.record(step)
        deleted = r.after_restore(self.arg(step, "last_generation"))
        return {"deleted": deleted}, {name: r.to_bytes()}, None

    # ---- §16.9 -------------------------------------------------------------------------------

    def op_fingerprint(self, step, rng):
        _, r = self.record(step)
        return {"fingerprint": r.fingerprint()}, {}, None

    def op_safety_number(self, step, rng):
        _, r = self.record(step)
        _, own = self.record(step, "own")
        digits, display = L.record_safety_number(r, own)
        return {"safety_number": digits, "display": display}, {}, None

    def op_user_fingerprint(self, step, rng):
        keys = [identity_arg(h(x)) for x in self.arg(step, "identities")]
        return {"fingerprint": L.user_fingerprint(self.user(step), keys)}, {}, None

    # ---- §16.8 ---------------------------------------------------------------------------------

    def op_group_new(self, step, rng):
        name = self.arg(step, "group")
        _, d = self.device(step)
        g = L.GroupSession.new(rng, self.hexarg(step, "group_id"), self.user(step), d)
        return {}, {name: g.to_bytes()}, None

    def op_group_add_member(self, step, rng):
        name, g = self.group(step)
        added = g.add_member(self.user(step))
        return {"added": added}, {name: g.to_bytes()}, None

    def op_group_distribute(self, step, rng):
        _, g = self.group(step)
        names, recs = self.records(step)
        before = g.to_bytes()
        out = g.distribute(recs, rng)
        if g.to_bytes() != before:
            raise Mismatch("distribute changed the group")
        return {"fanout": fanout_json(recs, out)}, self.unique_states(names, recs), None

    def op_group_distribute_to(self, step, rng):
        _, g = self.group(step)
        name, r = self.record(step)
        msg = g.distribute_to(r, self.arg(step, "device_id"), rng)
        return {"message": msg}, {name: r.to_bytes()}, None

    def op_group_install(self, step, rng):
        gname, g = self.group(step)
        install_name = step.get("install_record")
        if "install_record" in step:
            self.used.add("install_record")
        name, r, dname, d, res = self._record_decrypt(step)
        states = {name: r.to_bytes(), dname: d.to_bytes()}
        target = r
        if install_name is not None:
            target = self.get(install_name, L.PeerRecord)
        before = g.to_bytes()
        try:
            outcome, install_error = g.install(target, res), None
            states[gname] = g.to_bytes()
        except SottoError as e:
            outcome, install_error = None, {"name": e.name, "fields": dict(e.fields)}
            if g.to_bytes() != before:
                raise Mismatch("group_install: a failed install changed the group")
        out = {"content": content_json(res), "install_error": install_error}
        if outcome is not None:
            out["outcome"] = outcome
        return out, states, None

    def op_group_session_encrypt(self, step, rng):
        name, g = self.group(step)
        msg = g.encrypt(self.hexarg(step, "payload"), rng)
        return {"message": msg}, {name: g.to_bytes()}, None

    def op_group_session_decrypt(self, step, rng):
        name, g = self.group(step)
        _, r = self.record(step)
        res = g.decrypt(r, self.hexarg(step, "message"))
        if isinstance(res, L.Failure):
            raise FailureError(res)
        pt, mark = res
        return {"plaintext": pt, "mark": mark_json(mark)}, {name: g.to_bytes()}, None

    def op_group_remove_member(self, step, rng):
        gname, g = self.group(step)
        _, d = self.device(step)
        names, recs = self.records(step)
        out = g.remove_member(d, self.user(step), recs, rng)
        states = self.unique_states(names, recs)
        states[gname] = g.to_bytes()
        return {"fanout": fanout_json(recs, out)}, states, None

    def op_group_rotate(self, step, rng):
        gname, g = self.group(step)
        _, d = self.device(step)
        names, recs = self.records(step)
        out = g.rotate(d, recs, rng)
        states = self.unique_states(names, recs)
        states[gname] = g.to_bytes()
        return {"fanout": fanout_json(recs, out)}, states, None

    def op_group_after_restore(self, step, rng):
        name, g = self.group(step)
        _, d = self.device(step)
        stale = g.after_restore(d, self.arg(step, "last_generation"), rng)
        return {"stale": stale}, {name: g.to_bytes()}, None
