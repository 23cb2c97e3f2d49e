#!/usr/bin/env python3
"""Check every vector in test-vectors/*.json against sotto_spec.py.

Prints one `PASS area/name` or `FAIL area/name: reason` line per vector and
`N passed, M failed` last; exits 1 on any failure.
"""

from __future__ import annotations

import glob
import json
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sotto_spec as S  # noqa: E402
from sotto_spec import Draws, SottoError  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS = os.environ.get("SOTTO_VECTORS", os.path.join(HERE, "..", "..", "test-vectors"))


class Mismatch(Exception):
    pass


def h(x):
    return bytes.fromhex(x)


def hx(b):
    return None if b is None else b.hex()


def eq(what, got, want):
    if isinstance(got, (bytes, bytearray)):
        got = got.hex()
    if got != want:
        raise Mismatch("%s: got %r, want %r" % (what, _short(got), _short(want)))


def _short(x):
    s = repr(x) if not isinstance(x, str) else x
    return s if len(s) < 200 else s[:90] + "..." + s[-90:]


def expect_error(fn, err):
    """Run fn and require exactly the recorded error (name and fields)."""
    try:
        fn()
    except SottoError as e:
        eq("error", {"name": e.name, "fields": e.fields}, {"name": err["name"], "fields": err["fields"]})
        return
    raise Mismatch("no error, want %s %s" % (err["name"], err["fields"]))


# ---------------------------------------------------------------------------
# kdf.json
# ---------------------------------------------------------------------------

def check_kdf(v):
    k = v["kind"]
    if k == "root_step":
        eq("info", S.L_ROOT.decode(), v["info"])
        rk, ck = S.KDF_RK(h(v["root_key"]), h(v["dh_output"]))
        eq("new_root_key", rk, v["new_root_key"])
        eq("chain_key", ck, v["chain_key"])
    elif k == "chain_step":
        eq("info", S.L_CHAIN_MESSAGE.decode(), v["info"])
        eq("next_info", S.L_CHAIN_NEXT.decode(), v["next_info"])
        mk, nck = S.chain_step(h(v["chain_key"]))
        eq("message_key", mk, v["message_key"])
        eq("next_chain_key", nck, v["next_chain_key"])
    elif k in ("message_keys", "sealed_state_keys"):
        label = S.L_MESSAGE_KEYS if k == "message_keys" else S.L_SEALED
        eq("info", label.decode(), v["info"])
        key, nonce = S.KN(h(v["salt"]), h(v["ikm"]), label)
        eq("aes_key", key, v["aes_key"])
        eq("nonce", nonce, v["nonce"])
    else:
        raise Mismatch("unknown kind %r" % k)


# ---------------------------------------------------------------------------
# device objects (x3dh.json, conversation.json)
# ---------------------------------------------------------------------------

def build_device(obj, who):
    d = S.Device.generate(Draws(obj["rng_draws"]))
    eq(who + ".ed25519_seed", d.sig_seed, obj["ed25519_seed"])
    eq(who + ".ed25519_public", d.ik_sig_pub, obj["ed25519_public"])
    eq(who + ".x25519_private", d.dh_secret, obj["x25519_private"])
    eq(who + ".x25519_public", d.ik_dh_pub, obj["x25519_public"])
    eq(who + ".identity_key", S.identity_key_to_bytes(d.identity_key), obj["identity_key"])
    eq(who + ".identity_key decode", S.identity_key_from_bytes(h(obj["identity_key"])), d.identity_key.hex())
    eq(who + ".fingerprint_info", S.L_FINGERPRINT.decode(), obj["fingerprint_info"])
    eq(who + ".fingerprint", S.fingerprint(d.identity_key), obj["fingerprint"])
    spk = obj["signed_prekey"]
    spk_id, secret, sig = d.spks[-1]
    eq(who + ".spk.id", spk_id, spk["id"])
    eq(who + ".spk.private", secret, spk["private"])
    eq(who + ".spk.public", S.pub(secret), spk["public"])
    eq(who + ".spk.signature_info", S.L_SIGNED_PREKEY.decode(), spk["signature_info"])
    eq(who + ".spk.signed_data", S.signed_prekey_data(d.ik_dh_pub, spk_id, S.pub(secret)), spk["signed_data"])
    eq(who + ".spk.signature", sig, spk["signature"])
    eq(who + ".spk.encoded", d.signed_prekey_bytes(), spk["encoded"])
    eq(who + ".spk decode", S.signed_prekey_from_bytes(h(spk["encoded"])), (spk_id, S.pub(secret), sig))
    if not S.verify_strict(d.ik_sig_pub, h(spk["signed_data"]), sig):
        raise Mismatch(who + ": own signed prekey signature does not verify strictly")
    opks = obj.get("one_time_prekeys", [])
    if opks:
        d.generate_one_time_prekeys(Draws([o["private"] for o in opks]), len(opks))
        for o, (opk_id, opk_secret) in zip(opks, d.opks):
            eq(who + ".opk.id", opk_id, o["id"])
            eq(who + ".opk.public", S.pub(opk_secret), o["public"])
            eq(who + ".opk.encoded", S.one_time_prekey_to_bytes(opk_id, S.pub(opk_secret)), o["encoded"])
            eq(who + ".opk decode", S.one_time_prekey_from_bytes(h(o["encoded"])), (opk_id, S.pub(opk_secret)))
    return d


# ---------------------------------------------------------------------------
# x3dh.json
# ---------------------------------------------------------------------------

def check_x3dh(v):
    alice = build_device(v["alice"], "alice")
    bob = build_device(v["bob"], "bob")
    opk_id = bob.opks[0][0] if bob.opks else None
    bundle = bob.bundle(opk_id)
    eq("bundle", bundle.to_bytes(), v["bundle"])
    parsed = S.PreKeyBundle.from_bytes(h(v["bundle"])).verify()
    eq("bundle roundtrip", parsed.to_bytes(), v["bundle"])
    parsed.verify_for(bob.identity_key)

    fm = v["first_message"]
    rng = Draws([v["base_key"]["private"]])
    session = alice.initiate(rng, parsed)
    eq("base_key.public", session.base_key, v["base_key"]["public"])
    dhs = alice.trace["dhs"]
    for i in range(4):
        want = v["dh%d" % (i + 1)]
        eq("dh%d" % (i + 1), dhs[i] if i < len(dhs) else None, want)
    eq("kdf_salt", bytes(32), v["kdf_salt"])
    eq("info", S.L_X3DH.decode(), v["info"])
    eq("kdf_input", b"\xff" * 32 + b"".join(dhs), v["kdf_input"])
    eq("sk", alice.trace["sk"], v["sk"])
    eq("associated_data", session.AD, v["associated_data"])

    msg = session.encrypt(Draws([fm["ratchet_private"], fm["salt"]]), h(fm["plaintext"]))
    t = session.trace
    eq("first_message.dh_output", t["dh_ratchet"]["dh_output"], fm["dh_output"])
    eq("first_message.root_info", S.L_ROOT.decode(), fm["root_info"])
    eq("first_message.root_key", t["dh_ratchet"]["root_key_out"], fm["root_key"])
    eq("first_message.chain_key", t["dh_ratchet"]["chain_key_out"], fm["chain_key"])
    eq("first_message.message_key", t["message_key"], fm["message_key"])
    eq("first_message.aes_key", t["aes_key"], fm["aes_key"])
    eq("first_message.nonce", t["nonce"], fm["nonce"])
    eq("first_message.message", msg, fm["message"])

    # The responder side: the same DH values and SK, and the plaintext.
    bob_session, pt = bob.accept(h(fm["message"]))
    for i, d in enumerate(bob.trace["dhs"]):
        eq("responder dh%d" % (i + 1), d, v["dh%d" % (i + 1)])
    eq("responder sk", bob.trace["sk"], v["sk"])
    eq("responder plaintext", pt, fm["plaintext"])
    eq("responder AD", bob_session.AD, v["associated_data"])
    if opk_id is not None and bob.opks and bob.opks[0][0] == opk_id:
        raise Mismatch("one-time prekey not deleted after accept")


# ---------------------------------------------------------------------------
# conversation.json
# ---------------------------------------------------------------------------

SNAPSHOTS = {}  # used by persistence.json to cross-check against the replay


def _dh_trace(t, send):
    if t is None:
        return None
    keys = ["chain_key_out", "dh_output", "ratchet_private", "remote_ratchet_public",
            "root_key_in", "root_key_out"]
    if send:
        keys.append("ratchet_public")
    return {k: t[k].hex() for k in keys}


def check_conversation(v):
    for k, label in (("chain_message", S.L_CHAIN_MESSAGE), ("chain_next", S.L_CHAIN_NEXT),
                     ("message_keys", S.L_MESSAGE_KEYS), ("root", S.L_ROOT)):
        eq("labels." + k, label.decode(), v["labels"][k])
    alice = build_device(v["alice"], "alice")
    bob = build_device(v["bob"], "bob")
    SNAPSHOTS["alice_device"] = alice.to_bytes()
    bundle = S.PreKeyBundle.from_bytes(bob.bundle(bob.opks[0][0]).to_bytes()).verify()
    sessions = {"alice": alice.initiate(Draws(v["initiate_rng_draws"]), bundle), "bob": None}
    messages = {}
    for n, e in enumerate(v["events"]):
        where = "event %d (%s %s)" % (n, e["type"], e["message_id"])
        if e["type"] == "send":
            s = sessions[e["from"]]
            rng = Draws(e["rng_draws"])
            msg = s.encrypt(rng, h(e["plaintext"]))
            if not rng.exhausted():
                raise Mismatch(where + ": not every recorded draw was used")
            eq(where + " plaintext_text", h(e["plaintext"]).decode(), e["plaintext_text"])
            t = s.trace
            eq(where + " dh_ratchet", _dh_trace(t["dh_ratchet"], True), e["dh_ratchet"])
            for k in ("kind", "previous_chain_length", "message_number", "chain_key", "message_key",
                      "next_chain_key", "salt", "aes_key", "nonce", "header", "aad", "ciphertext",
                      "message"):
                eq(where + " " + k, t[k], e[k])
            messages[e["message_id"]] = msg
            if e["from"] == "alice" and s.pending is not None:
                SNAPSHOTS["alice_session_awaiting_reply"] = s.to_bytes()
        elif e["type"] == "receive":
            msg = messages[e["message_id"]]
            if e["via"] == "accept":
                s, pt = bob.accept(msg)
                sessions[e["to"]] = s
                SNAPSHOTS["bob_device_after_accept"] = bob.to_bytes()
            else:
                s = sessions[e["to"]]
                pt = s.decrypt(msg)
            t = s.trace
            eq(where + " plaintext", pt, e["plaintext"])
            eq(where + " dh_ratchet", _dh_trace(t["dh_ratchet"], False), e["dh_ratchet"])
            eq(where + " skipped_stored",
               [{"message_key": k.hex(), "message_number": i, "ratchet_public": rk.hex()}
                for rk, i, k in t["skipped_stored"]], e["skipped_stored"])
            eq(where + " key_source", t["key_source"], e["key_source"])
            eq(where + " message_key", t["message_key"], e["message_key"])
            eq(where + " skipped_keys_after", t["skipped_keys_after"], e["skipped_keys_after"])
            # Saved state survives a round trip at every step.
            eq(where + " state roundtrip", S.Session.from_bytes(s.to_bytes()).to_bytes(), s.to_bytes().hex())
        elif e["type"] == "drop":
            if e["message_id"] not in messages:
                raise Mismatch(where + ": dropped message was never sent")
        else:
            raise Mismatch("unknown event type %r" % e["type"])
    for who in ("alice", "bob"):
        eq("final_states." + who, sessions[who].to_bytes(), v["final_states"][who])
        SNAPSHOTS[who + "_session_final"] = sessions[who].to_bytes()


# ---------------------------------------------------------------------------
# persistence.json
# ---------------------------------------------------------------------------

def decoded_session(s: S.Session):
    return {
        "associated_data": s.AD.hex(),
        "base_key": s.base_key.hex(),
        "local_identity": s.local_identity.hex(),
        "pending_prekey": None if s.pending is None else
        {"signed_prekey_id": s.pending[0], "one_time_prekey_id": s.pending[1]},
        "previous_sending_length": s.PN,
        "receiving_chains": [
            {"chain_key": hx(c.ck), "next": c.next, "ratchet_public": c.ratchet_key.hex(),
             "skipped": [{"message_key": c.skipped[i].hex(), "message_number": i} for i in sorted(c.skipped)]}
            for c in s.chains],
        "remote_identity": s.remote_identity.hex(),
        "remote_ratchet_public": s.DHr.hex(),
        "role": "initiator" if s.role == S.INITIATOR else "responder",
        "root_key": s.RK.hex(),
        "sending_chain": None if s.sending is None else
        {"chain_key": s.sending.ck.hex(), "next": s.sending.ns,
         "ratchet_private": s.sending.secret.hex(), "ratchet_public": s.sending.public.hex()},
    }


def decoded_device(d: S.Device):
    return {
        "ed25519_seed": d.sig_seed.hex(),
        "identity_key": S.identity_key_to_bytes(d.identity_key).hex(),
        "next_one_time_prekey_id": d.next_opk_id,
        "next_signed_prekey_id": d.next_spk_id,
        "one_time_prekeys": [{"id": i, "private": k.hex()} for i, k in d.opks],
        "recent_base_keys": [k.hex() for k in d.recent_base_keys],
        "signed_prekeys": [{"encoded": S.signed_prekey_to_bytes(i, S.pub(k), sig).hex(), "id": i,
                            "private": k.hex(), "signature": sig.hex()} for i, k, sig in d.spks],
        "x25519_private": d.dh_secret.hex(),
    }


def check_persistence(v):
    cls, dec = (S.Session, decoded_session) if v["kind"] == "session" else (S.Device, decoded_device)
    state = h(v["state"])
    obj = cls.from_bytes(state)
    eq("re-encode", obj.to_bytes(), v["state"])
    eq("decoded", dec(obj), v["decoded"])
    eq("seal_info", S.L_SEALED.decode(), v["seal_info"])
    key, nonce = S.KN(h(v["seal_salt"]), h(v["storage_key"]), S.L_SEALED)
    eq("seal_aes_key", key, v["seal_aes_key"])
    eq("seal_nonce", nonce, v["seal_nonce"])
    eq("sealed", obj.seal(Draws([v["seal_salt"]]), h(v["storage_key"])), v["sealed"])
    eq("unsealed", cls.unseal(h(v["sealed"]), h(v["storage_key"])).to_bytes(), v["state"])
    if v["name"] in SNAPSHOTS:  # the same state, reached by replaying conversation.json
        eq("state equals conversation replay", SNAPSHOTS[v["name"]], v["state"])


# ---------------------------------------------------------------------------
# negative.json
# ---------------------------------------------------------------------------

def check_negative(v, fixtures):
    data = h(v["input"])
    if "pad_to" in v:
        data = data + bytes(v["pad_to"] - len(data))
    op = v["operation"]
    err = v["error"]

    def with_session(fn):
        s = S.Session.from_bytes(h(fixtures[v["session"]]))
        before = s.to_bytes()
        expect_error(lambda: fn(s), err)
        eq("session unchanged", s.to_bytes(), before.hex())

    simple = {
        "Message::from_bytes": S.parse_message,
        "IdentityKey::from_bytes": S.identity_key_from_bytes,
        "SignedPreKey::from_bytes": S.signed_prekey_from_bytes,
        "OneTimePreKey::from_bytes": S.one_time_prekey_from_bytes,
        "PreKeyBundle::from_bytes": S.PreKeyBundle.from_bytes,
        "Session::from_bytes": S.Session.from_bytes,
        "Device::from_bytes": S.Device.from_bytes,
        "GroupMessage::from_bytes": S.GroupMessage.parse,
        "SenderKeyDistribution::from_bytes": S.parse_distribution,
        "GroupSender::from_bytes": S.GroupSender.from_bytes,
        "GroupReceiver::from_bytes": S.GroupReceiver.from_bytes,
    }
    if op in simple:
        expect_error(lambda: simple[op](data), err)
    elif op == "PreKeyBundle::verify":
        b = S.PreKeyBundle.from_bytes(data)
        expect_error(b.verify, err)
    elif op == "PreKeyBundle::verify_for":
        b = S.PreKeyBundle.from_bytes(data)
        expected = S.identity_key_from_bytes(h(v["expected"]))
        expect_error(lambda: b.verify_for(expected), err)
    elif op in ("Session::unseal", "Device::unseal"):
        cls = S.Session if op.startswith("Session") else S.Device
        expect_error(lambda: cls.unseal(data, h(v["storage_key"])), err)
    elif op == "Session::decrypt":
        msg = S.parse_message(data)
        with_session(lambda s: s.decrypt(msg))
    elif op == "Session::encrypt":
        with_session(lambda s: s.encrypt(Draws([]), data))
    elif op == "Session::accept":
        msg = S.parse_message(data)
        if not isinstance(msg, S.PreKeyMessage):
            raise Mismatch("input is not a prekey message")
        d = S.Device.from_bytes(h(fixtures[v["device"]]))
        before = d.to_bytes()
        expect_error(lambda: d.accept(msg), err)
        eq("device unchanged", d.to_bytes(), before.hex())
    else:
        raise Mismatch("unknown operation %r" % op)


# ---------------------------------------------------------------------------
# group.json (SPEC §15; schema in test-vectors/README.md)
# ---------------------------------------------------------------------------

GROUP_SNAPSHOTS = set()   # every sender/receiver encoding met while replaying the session


def levels(R):
    return [x.hex() for x in R]


def eq_levels(what, got, want):
    """Compare R_0 .. R_7 level by level, so a mismatch names the level."""
    eq(what + " count", len(got), len(want))
    for k, (g, w) in enumerate(zip(got, want)):
        eq("%s R_%d" % (what, k), g, w)


def check_group_labels(labels):
    for k, label in (("step", S.L_GROUP_STEP), ("derive", S.L_GROUP_DERIVE), ("key", S.L_GROUP_KEY),
                     ("message_keys", S.L_GROUP_MESSAGE_KEYS), ("signature", S.L_GROUP_SIGNATURE)):
        eq("labels." + k, label.decode(), labels[k])


def new_chain(obj, where, old=None):
    """A chain creation object: GroupSender::new, or `old.rotate()`, on the recorded draws.
    Returns the sender and its levels at index 0."""
    rng = Draws(obj["rng_draws"])
    if old is None:
        snd = S.GroupSender.new(rng, h(obj["group_id"]))
    else:
        snd = old
        snd.rotate(rng)
    if not rng.exhausted():
        raise Mismatch(where + ": not every recorded draw was used")
    eq(where + " chain_id", snd.chain_id, obj["chain_id"])
    eq_levels(where + " levels", levels(snd.ratchet.R), obj["levels"])
    eq(where + " index", snd.index, 0)
    eq(where + " signing_seed", snd.seed, obj["signing_seed"])
    eq(where + " signing_public", snd.signing_public, obj["signing_public"])
    eq(where + " sender_state", snd.to_bytes(), obj["sender_state"])
    eq(where + " sender_state roundtrip", S.GroupSender.from_bytes(h(obj["sender_state"])).to_bytes(),
       obj["sender_state"])
    return snd, [h(x) for x in obj["levels"]]


def sender_at(snd, R0, index):
    """The sender restored at `index` from the closed form (the `advance` event)."""
    state = (bytes([1, S.TAG_GROUP_SENDER]) + snd.group_id + S.u32(snd.chain_id) + S.u32(index)
             + b"".join(S.group_closed_form(R0, index)) + snd.seed)
    return S.GroupSender.from_bytes(state)


def receiver_at(snd, R0, index):
    """A receiver holding `snd`'s chain from `index` (via its distribution there)."""
    return S.GroupReceiver.import_unauthenticated(sender_at(snd, R0, index).distribution())


def check_group_ratchet(v):
    check_group_labels(v["labels"])
    snd, R0 = new_chain(v["sender"], "sender")
    eq("distribution", snd.distribution(), v["distribution"])
    prev = None
    for st in v["states"]:
        i = st["index"]
        where = "index %#x" % i
        closed = S.group_closed_form(R0, i)
        eq_levels(where + " levels (closed form)", levels(closed), st["levels"])
        r = S.GroupRatchet(R0, 0)
        r.jump(i)
        eq_levels(where + " levels (jump from 0)", levels(r.R), st["levels"])
        eq(where + " message_key", r.key(), st["message_key"])
        if prev is not None:
            r = S.GroupRatchet(S.group_closed_form(R0, prev), prev)
            r.jump(i)
            eq_levels(where + " levels (jump from previous)", levels(r.R), st["levels"])
            start = prev if i - prev <= 70000 else i - 300
            r = S.GroupRatchet(S.group_closed_form(R0, start), start)
            while r.index < i:
                r.increment()
            eq_levels(where + " levels (increments from %#x)" % start, levels(r.R), st["levels"])
        s = sender_at(snd, R0, i)
        if st["message"] is None:
            eq(where + " salt", None, st["salt"])
            before = s.to_bytes()
            expect_error(lambda: s.encrypt(Draws([]), h(st["plaintext"])),
                         {"name": "ChainExhausted", "fields": {}})
            eq(where + " sender unchanged", s.to_bytes(), before.hex())
        else:
            msg = s.encrypt(Draws([st["salt"]]), h(st["plaintext"]))
            eq(where + " message", msg, st["message"])
            eq_levels(where + " sender after encrypt", levels(s.ratchet.R), levels(S.group_closed_form(R0, i + 1)))
            eq(where + " sender index after encrypt", s.index, i + 1)
            readers = []
            if i <= S.MAX_GROUP_JUMP:
                readers.append(("receiver at 0", S.GroupReceiver.import_unauthenticated(h(v["distribution"]))))
            if prev is not None and i - prev <= S.MAX_GROUP_JUMP:
                readers.append(("receiver at %#x" % prev, receiver_at(snd, R0, prev)))
            for who, rcv in readers:
                pt, mark = rcv.decrypt(msg)
                eq(where + " " + who + " plaintext", pt, st["plaintext"])
                eq(where + " " + who + " message_key", rcv.trace["message_key"], st["message_key"])
        prev = i


def state_or_hash(e, key, got: bytes, where, limit=1024):
    """Compare an encoded state with `key` or, for states longer than `limit` bytes,
    with `key_sha256` (README: 1024 for group.json, 2048 for device and bounds)."""
    if key in e:
        eq(where + " " + key, got, e[key])
        if len(got) > limit:
            raise Mismatch(where + ": %s given in full but longer than %d bytes" % (key, limit))
    elif key + "_sha256" in e:
        eq(where + " " + key + "_sha256", S.SHA256(got), e[key + "_sha256"])
        if len(got) <= limit:
            raise Mismatch(where + ": %s given as a hash but only %d bytes" % (key, len(got)))
    else:
        raise Mismatch(where + ": neither %s nor %s_sha256" % (key, key))


def check_group_session(v):
    check_group_labels(v["labels"])
    gid = h(v["group_id"])
    sender = R0 = None                   # Alice's current chain; R0 = its levels at index 0
    initial = {}                         # chain id -> levels at index 0 (two chains: create, rotate)
    last_distribution = None
    receivers = {}                       # name -> GroupReceiver
    stores = {}                          # member ("bob" for bob and bob_2) -> GroupReceivers
    messages = {}
    for n, e in enumerate(v["events"]):
        t = e["type"]
        where = "event %d (%s %s)" % (n, t, e.get("message_id", e.get("to", e.get("from"))))
        if t in ("create", "rotate"):
            if e["from"] != "alice":
                raise Mismatch(where + ": only alice sends")
            sender, R0 = new_chain(e, where, None if t == "create" else sender)
            eq(where + " group_id", sender.group_id, v["group_id"])
            initial[sender.chain_id] = R0
            GROUP_SNAPSHOTS.add(sender.to_bytes())
            if t == "rotate":
                eq(where + " distribution", sender.distribution(), e["distribution"])
                last_distribution = e["distribution"]
        elif t == "distribution":
            eq(where + " index", sender.index, e["index"])
            eq(where + " distribution", sender.distribution(), e["distribution"])
            last_distribution = e["distribution"]
        elif t == "install":
            eq(where + " distribution is the last one sent", e["distribution"], last_distribution)
            if e["via"] == "accept":
                session = S.Session.from_bytes(h(e["delivered_by"]))
                rcv = S.GroupReceiver.accept(h(e["distribution"]), session.remote_identity)
            elif e["via"] == "import_unauthenticated":
                eq(where + " delivered_by", None, e["delivered_by"])
                rcv = S.GroupReceiver.import_unauthenticated(h(e["distribution"]))
            else:
                raise Mismatch(where + ": unknown via %r" % e["via"])
            eq(where + " state", rcv.to_bytes(), e["state"])
            eq(where + " state roundtrip", S.GroupReceiver.from_bytes(h(e["state"])).to_bytes(), e["state"])
            receivers[e["to"]] = rcv
            store = stores.setdefault(e["to"].split("_")[0], S.GroupReceivers(gid))
            store.add(rcv)
            GROUP_SNAPSHOTS.add(rcv.to_bytes())
        elif t == "send":
            rng = Draws(e["rng_draws"])
            msg = sender.encrypt(rng, h(e["plaintext"]))
            if not rng.exhausted():
                raise Mismatch(where + ": not every recorded draw was used")
            eq(where + " plaintext_text", h(e["plaintext"]).decode(), e["plaintext_text"])
            for k in ("index", "message_key", "salt", "aes_key", "nonce", "header", "ciphertext",
                      "signed_data", "signature", "message"):
                eq(where + " " + k, sender.trace[k], e[k])
            eq_levels(where + " sender after", levels(sender.ratchet.R), levels(S.group_closed_form(R0, e["index"] + 1)))
            eq(where + " sender index after", sender.index, e["index"] + 1)
            GROUP_SNAPSHOTS.add(sender.to_bytes())
            messages[e["message_id"]] = msg
        elif t == "advance":
            if e["to"] < sender.index:
                raise Mismatch(where + ": advance goes backwards")
            sender = sender_at(sender, R0, e["to"])
        elif t == "receive":
            rcv = receivers[e["to"]]
            msg = messages[e["message_id"]]
            state_or_hash(e, "state_before", rcv.to_bytes(), where)
            # Through the member's store (§15.9 dispatch on chain id), which holds `rcv`.
            pt, mark = stores[e["to"].split("_")[0]].decrypt(msg)
            tr = rcv.trace
            m = S.GroupMessage.parse(msg)
            eq(where + " chain_id", m.chain_id, e["chain_id"])
            eq(where + " index", m.index, e["index"])
            eq(where + " sender", hx(mark), e["sender"])
            eq(where + " plaintext", pt, e["plaintext"])
            eq(where + " key_source", tr["key_source"], e["key_source"])
            eq(where + " message_key", tr["message_key"], e["message_key"])
            eq(where + " next_before", tr["next_before"], e["next_before"])
            eq(where + " skip_from", tr["skip_from"], e["skip_from"])
            eq(where + " skipped_cached", [k.hex() for _, k in tr["skipped_cached"]], e["skipped_cached"])
            if tr["skip_from"] is not None:
                eq(where + " skipped indices", [i for i, _ in tr["skipped_cached"]],
                   list(range(tr["skip_from"], e["index"])))
                for i, k in tr["skipped_cached"]:      # each cached key is K_i of the closed form
                    eq(where + " K_%d" % i, S.SHA256(S.L_GROUP_KEY + S.group_closed_form(initial[rcv.chain_id], i)[7]),
                       k.hex())
            eq(where + " evicted", tr["evicted"], e["evicted"])
            eq(where + " next_after", rcv.next, e["next_after"])
            eq(where + " skipped_keys_after", len(rcv.cache), e["skipped_keys_after"])
            state_or_hash(e, "state_after", rcv.to_bytes(), where)
            eq(where + " state roundtrip", S.GroupReceiver.from_bytes(rcv.to_bytes()).to_bytes(), rcv.to_bytes().hex())
            GROUP_SNAPSHOTS.add(rcv.to_bytes())
        else:
            raise Mismatch(where + ": unknown event type %r" % t)
    finals = dict(receivers, alice=sender)
    want_names = {k[:-len("_sha256")] if k.endswith("_sha256") else k for k in v["final_states"]}
    eq("final_states names", sorted(want_names), sorted(finals))
    for name, obj in finals.items():
        state_or_hash(v["final_states"], name, obj.to_bytes(), "final_states")


def build_sender_state(d):
    """§15.11 GroupSender layout, written out independently of sotto_spec."""
    return (bytes([0x01, 0x22]) + h(d["group_id"]) + d["chain_id"].to_bytes(4, "big")
            + d["index"].to_bytes(4, "big") + b"".join(h(x) for x in d["levels"]) + h(d["signing_seed"]))


def build_receiver_state(d):
    """§15.11 GroupReceiver layout, written out independently of sotto_spec."""
    b = bytes([0x01, 0x23]) + h(d["group_id"]) + d["chain_id"].to_bytes(4, "big") + h(d["signing_public"])
    b += b"\x00" if d["sender_identity"] is None else b"\x01" + h(d["sender_identity"])
    b += d["next"].to_bytes(4, "big") + b"".join(h(x) for x in d["levels"])
    b += len(d["skipped"]).to_bytes(2, "big")
    for c in d["skipped"]:
        b += c["index"].to_bytes(4, "big") + h(c["message_key"])
    return b


def decoded_group_sender(s: S.GroupSender):
    return {"chain_id": s.chain_id, "group_id": s.group_id.hex(), "index": s.index,
            "levels": levels(s.ratchet.R), "signing_public": s.signing_public.hex(),
            "signing_seed": s.seed.hex()}


def decoded_group_receiver(r: S.GroupReceiver):
    return {"chain_id": r.chain_id, "group_id": r.group_id.hex(), "levels": levels(r.ratchet.R),
            "next": r.next, "sender_identity": hx(r.sender), "signing_public": r.signing_public.hex(),
            "skipped": [{"index": i, "message_key": r.cache[i].hex()} for i in sorted(r.cache)]}


def check_group_state(v):
    if v["kind"] == "group_sender":
        cls, dec, build, tag = S.GroupSender, decoded_group_sender, build_sender_state, S.TAG_GROUP_SENDER
    else:
        cls, dec, build, tag = S.GroupReceiver, decoded_group_receiver, build_receiver_state, S.TAG_GROUP_RECEIVER
    state = h(v["state"])
    obj = cls.from_bytes(state)
    eq("re-encode", obj.to_bytes(), v["state"])
    eq("decoded", dec(obj), v["decoded"])
    eq("state rebuilt from decoded", build(v["decoded"]), v["state"])
    eq("seal_info", S.L_SEALED.decode(), v["seal_info"])
    key, nonce = S.KN(h(v["seal_salt"]), h(v["storage_key"]), S.L_SEALED)
    eq("seal_aes_key", key, v["seal_aes_key"])
    eq("seal_nonce", nonce, v["seal_nonce"])
    sealed = obj.seal(Draws([v["seal_salt"]]), h(v["storage_key"]))
    eq("sealed", sealed, v["sealed"])
    eq("sealed inner type", sealed[2], tag)
    eq("unsealed", cls.unseal(h(v["sealed"]), h(v["storage_key"])).to_bytes(), v["state"])
    if state not in GROUP_SNAPSHOTS:
        raise Mismatch("state was not reached by replaying group_session")


def check_group_negative(v, fixtures):
    data = h(v["input"])
    if "pad_to" in v:
        data = data + bytes(v["pad_to"] - len(data))
    op, err = v["operation"], v["error"]
    simple = {
        "GroupMessage::from_bytes": S.GroupMessage.parse,
        "SenderKeyDistribution::from_bytes": S.parse_distribution,
        "GroupSender::from_bytes": S.GroupSender.from_bytes,
        "GroupReceiver::from_bytes": S.GroupReceiver.from_bytes,
    }
    if op in simple:
        expect_error(lambda: simple[op](data), err)
    elif op in ("GroupSender::unseal", "GroupReceiver::unseal"):
        cls = S.GroupSender if op.startswith("GroupSender") else S.GroupReceiver
        expect_error(lambda: cls.unseal(data, h(v["storage_key"])), err)
    elif op == "GroupReceiver::decrypt":
        msg = S.GroupMessage.parse(data)
        rcv = S.GroupReceiver.from_bytes(h(fixtures[v["receiver"]]))
        before = rcv.to_bytes()
        eq("fixture re-encodes", before, fixtures[v["receiver"]])
        expect_error(lambda: rcv.decrypt(msg), err)
        eq("receiver unchanged", rcv.to_bytes(), before.hex())
    elif op == "GroupSender::encrypt":
        snd = S.GroupSender.from_bytes(h(fixtures[v["sender"]]))
        before = snd.to_bytes()
        eq("fixture re-encodes", before, fixtures[v["sender"]])
        expect_error(lambda: snd.encrypt(Draws([]), data), err)   # Draws([]) fails on any draw
        eq("sender unchanged", snd.to_bytes(), before.hex())
    else:
        raise Mismatch("unknown operation %r" % op)


def check_group(v, fixtures):
    kind = v.get("kind")
    if kind == "ratchet":
        return check_group_ratchet(v)
    if kind == "session":
        return check_group_session(v)
    if kind in ("group_sender", "group_receiver"):
        return check_group_state(v)
    if kind == "negative":
        return check_group_negative(v, fixtures)
    if kind == "store":
        return check_group_store(v)
    raise Mismatch("unknown group vector kind %r" % kind)


def held_summary(store: S.GroupReceivers):
    return [{"cached": len(r.cache), "chain_id": r.chain_id, "next": r.next, "sender": hx(r.sender),
             "state_sha256": S.SHA256(r.to_bytes()).hex()} for r in store.receivers]


def check_group_store(v):
    """§15.9 GroupReceivers, driven by `steps` (README `store`)."""
    gid = h(v["group_id"])
    identities = {h(x) for x in v["identities"].values()}
    for name, raw in v["receivers"].items():
        r = S.GroupReceiver.from_bytes(h(raw))
        eq("receiver %s roundtrip" % name, r.to_bytes(), raw)
        if r.sender is not None and r.sender not in identities:
            raise Mismatch("receiver %s: sender is not one of `identities`" % name)
    store = S.GroupReceivers(gid)
    for n, st in enumerate(v["steps"]):
        op = st["op"]
        where = "step %d (%s %s)" % (n, op, st.get("receiver", ""))
        before = [r.to_bytes() for r in store.receivers]
        err = st.get("error")
        if op == "insert":
            rcv = S.GroupReceiver.from_bytes(h(v["receivers"][st["receiver"]]))
            if err is not None:
                expect_error(lambda: store.add(rcv), err)
            else:
                outcome, evicted = store.add(rcv)
                eq(where + " outcome", outcome, st["outcome"])
                eq(where + " evicted", evicted, st["evicted"])
        elif op == "decrypt":
            msg = h(st["message"])
            if err is not None:
                expect_error(lambda: store.decrypt(msg), err)
            else:
                pt, mark = store.decrypt(msg)
                m = S.GroupMessage.parse(msg)
                eq(where + " plaintext", pt, st["plaintext"])
                eq(where + " chain_id", m.chain_id, st["chain_id"])
                eq(where + " index", m.index, st["index"])
                eq(where + " key_source", store.last_receiver.trace["key_source"], st["key_source"])
                eq(where + " handled by the chain named", store.last_receiver.chain_id, st["chain_id"])
        elif op == "remove_sender":
            if err is not None:
                raise Mismatch(where + ": remove_sender cannot fail")
            sender = None if st["sender"] is None else h(st["sender"])
            eq(where + " removed", store.remove_sender(sender), st["removed"])
        else:
            raise Mismatch(where + ": unknown op %r" % op)
        if err is not None:
            eq(where + " store unchanged", [r.to_bytes().hex() for r in store.receivers], [b.hex() for b in before])
        eq(where + " held_after", held_summary(store), st["held_after"])


# ---------------------------------------------------------------------------
# device.json (SPEC §6)
# ---------------------------------------------------------------------------

def check_device_ops(v):
    d = S.Device.from_bytes(h(v["initial_state"]))
    eq("initial_state roundtrip", d.to_bytes(), v["initial_state"])
    for n, st in enumerate(v["steps"]):
        op, err = st["op"], st["error"]
        where = "step %d (%s)" % (n, op)
        before = d.to_bytes()
        if op == "rotate_signed_prekey":
            rng = Draws(st["rng_draws"])
            if err is not None:
                expect_error(lambda: d.rotate_signed_prekey(rng), err)
            else:
                d.rotate_signed_prekey(rng)
                spk = st["signed_prekey"]
                eq(where + " signed_prekey", d.signed_prekey_bytes(-1), spk)
                spk_id, spk_pub, sig = S.signed_prekey_from_bytes(h(spk))
                if not S.verify_strict(d.ik_sig_pub, S.signed_prekey_data(d.ik_dh_pub, spk_id, spk_pub), sig):
                    raise Mismatch(where + ": new signed prekey signature does not verify")
            if not rng.exhausted():
                raise Mismatch(where + ": not every recorded draw was used")
        elif op == "generate_one_time_prekeys":
            rng = Draws(st["rng_draws"])
            count = st["count"]
            if err is not None:
                expect_error(lambda: d.generate_one_time_prekeys(rng, count), err)
            else:
                d.generate_one_time_prekeys(rng, count)
                eq(where + " one_time_prekeys",
                   [S.one_time_prekey_to_bytes(i, S.pub(k)).hex() for i, k in d.opks[-count:]],
                   st["one_time_prekeys"])
            if not rng.exhausted():
                raise Mismatch(where + ": not every recorded draw was used")
        elif op == "accept":
            msg = h(st["message"])
            if err is not None:
                expect_error(lambda: d.accept(msg), err)
            else:
                session, pt = d.accept(msg)
                eq(where + " plaintext", pt, st["plaintext"])
                eq(where + " session", session.to_bytes(), st["session"])
        else:
            raise Mismatch(where + ": unknown op %r" % op)
        if err is not None:
            eq(where + " device unchanged", d.to_bytes(), before.hex())
        state_or_hash(st, "state_after", d.to_bytes(), where, limit=2048)
        eq(where + " state roundtrip", S.Device.from_bytes(d.to_bytes()).to_bytes(), d.to_bytes().hex())


# ---------------------------------------------------------------------------
# bounds.json (SPEC §8.7)
# ---------------------------------------------------------------------------

def check_bounds(v):
    devices = {}
    for who in ("alice", "bob"):
        rng = Draws(v[who]["rng_draws"])
        devices[who] = S.Device.generate(rng)
        if not rng.exhausted():
            raise Mismatch(who + ": not every generate draw was used")
        eq(who + ".identity_key", S.identity_key_to_bytes(devices[who].identity_key), v[who]["identity_key"])
    alice, bob = devices["alice"], devices["bob"]
    bundle = S.PreKeyBundle.from_bytes(bob.bundle(None).to_bytes()).verify_for(bob.identity_key)
    rng = Draws(v["initiate_rng_draws"])
    sessions = {"alice": alice.initiate(rng, bundle), "bob": None}
    if not rng.exhausted():
        raise Mismatch("initiate: not every draw was used")
    messages = {}
    for n, e in enumerate(v["events"]):
        t = e["type"]
        where = "event %d (%s %s)" % (n, t, e.get("message_id", e.get("from")))
        if t == "send":
            s = sessions[e["from"]]
            rng = Draws(e["rng_draws"])
            msg = s.encrypt(rng, h(e["plaintext"]))
            if not rng.exhausted():
                raise Mismatch(where + ": not every recorded draw was used")
            eq(where + " message_number", s.trace["message_number"], e["message_number"])
            eq(where + " message", msg, e["message"])
            if e["message_id"] in messages:
                raise Mismatch(where + ": message id used twice")
            messages[e["message_id"]] = msg
        elif t == "advance":
            # README: in the saved state, cks moves `count` chain steps and ns grows by
            # `count`; the state is then restored with Session::from_bytes.
            s = S.Session.from_bytes(sessions[e["from"]].to_bytes())
            if s.sending is None:
                raise Mismatch(where + ": no sending chain to advance")
            for _ in range(e["count"]):
                s.sending.ck = S.HMAC(s.sending.ck, S.L_CHAIN_NEXT)
            s.sending.ns += e["count"]
            sessions[e["from"]] = S.Session.from_bytes(s.to_bytes())
            eq(where + " next_after", sessions[e["from"]].sending.ns, e["next_after"])
        elif t == "receive":
            msg = messages[e["message_id"]]
            err = e["error"]
            if e["via"] == "accept":
                before = bob.to_bytes() if e["to"] == "bob" else alice.to_bytes()
                dev = devices[e["to"]]
                if err is not None:
                    expect_error(lambda: dev.accept(msg), err)
                    eq(where + " device unchanged", dev.to_bytes(), before.hex())
                    s = sessions[e["to"]]
                else:
                    s, pt = dev.accept(msg)
                    sessions[e["to"]] = s
            elif e["via"] == "decrypt":
                s = sessions[e["to"]]
                before = s.to_bytes()
                if err is not None:
                    expect_error(lambda: s.decrypt(msg), err)
                    eq(where + " session unchanged", s.to_bytes(), before.hex())
                else:
                    pt = s.decrypt(msg)
            else:
                raise Mismatch(where + ": unknown via %r" % e["via"])
            if err is None:
                eq(where + " plaintext", pt, e["plaintext"])
                ev = s.trace["evicted"]
                eq(where + " evicted", {
                    "chains": [k.hex() for k in ev["chains"]],
                    "keys": [{"count": len(idx), "highest": max(idx), "lowest": min(idx),
                              "ratchet_public": rk.hex(), "rule": rule} for rule, rk, idx in ev["keys"]],
                }, e["evicted"])
                for rule, rk, idx in ev["keys"]:
                    if idx != list(range(min(idx), max(idx) + 1)):
                        raise Mismatch(where + ": evicted indices are not consecutive")
            eq(where + " skipped_keys_after", s.skipped_count(), e["skipped_keys_after"])
            eq(where + " receiving_chains_after", len(s.chains), e["receiving_chains_after"])
            state_or_hash(e, "state_after", s.to_bytes(), where, limit=2048)
            eq(where + " state roundtrip", S.Session.from_bytes(s.to_bytes()).to_bytes(), s.to_bytes().hex())
        else:
            raise Mismatch(where + ": unknown event type %r" % t)


# ---------------------------------------------------------------------------
# Self-checks of the group code path against §15's own equations
# ---------------------------------------------------------------------------

def group_selftests():
    """(name, fn) pairs exercising §15 without vectors. They check internal
    consistency (closed form = increments = jumps; encode/decode; decrypt rules)."""
    import hashlib

    def seeded(label, n):
        out, c = b"", 0
        while len(out) < n:
            out += hashlib.sha256(label.encode() + c.to_bytes(4, "big")).digest()
            c += 1
        return out[:n]

    def ratchet_forms():
        R0 = [seeded("r%d" % k, 32) for k in range(8)]
        r = S.GroupRatchet(R0, 0)
        for i in range(300):
            if r.R != S.group_closed_form(R0, i):
                raise Mismatch("increment != closed form at %d" % i)
            r.increment()
        for i, j in [(0, 0x10), (0x0F, 0x10), (3, 0x123456), (0xFFF, 0x1000), (0x12345678, 0xFFFFFFFE)]:
            a = S.GroupRatchet(S.group_closed_form(R0, i), i)
            a.jump(j)
            if a.R != S.group_closed_form(R0, j):
                raise Mismatch("jump %x->%x != closed form" % (i, j))

    def roundtrip():
        gid = seeded("gid", 32)
        snd = S.GroupSender.new(Draws([seeded("cid", 4), seeded("R", 256), seeded("seed", 32)]), gid)
        eq("sender state", S.GroupSender.from_bytes(snd.to_bytes()).to_bytes(), snd.to_bytes().hex())
        ik = S.Device.generate(Draws([seeded("a", 32), seeded("b", 32), seeded("c", 32)])).identity_key
        rcv = S.GroupReceiver.accept(snd.distribution(), ik)
        msgs = [snd.encrypt(Draws([seeded("salt%d" % i, 16)]), b"m%d" % i) for i in range(40)]
        pt, _ = rcv.decrypt(msgs[39])
        eq("pt 39", pt, b"m39".hex())
        eq("cache size", len(rcv.cache), 32)          # indices 7..38
        expect_error(lambda: rcv.decrypt(msgs[3]), {"name": "DuplicateMessage", "fields": {}})
        eq("pt 7", rcv.decrypt(msgs[7])[0], b"m7".hex())
        expect_error(lambda: rcv.decrypt(msgs[7]), {"name": "DuplicateMessage", "fields": {}})
        expect_error(lambda: rcv.decrypt(msgs[39]), {"name": "DuplicateMessage", "fields": {}})
        bad = bytearray(msgs[10]); bad[-1] ^= 1
        expect_error(lambda: rcv.decrypt(bytes(bad)), {"name": "InvalidSignature", "fields": {}})
        enc = rcv.to_bytes()
        eq("receiver state", S.GroupReceiver.from_bytes(enc).to_bytes(), enc.hex())
        key = seeded("storage", 32)
        sealed = rcv.seal(Draws([seeded("ss", 32)]), key)
        eq("sealed receiver", S.GroupReceiver.unseal(sealed, key).to_bytes(), enc.hex())
        expect_error(lambda: S.GroupSender.unseal(sealed, key),
                     {"name": "WrongType", "fields": {"expected": 0x22, "found": 0x23}})

    def store():
        gid = seeded("gid", 32)
        snd = S.GroupSender.new(Draws([seeded("cid", 4), seeded("R", 256), seeded("seed", 32)]), gid)
        ik = S.Device.generate(Draws([seeded("a", 32), seeded("b", 32), seeded("c", 32)])).identity_key
        st = S.GroupReceivers(gid)
        st.add(S.GroupReceiver.accept(snd.distribution(), ik))
        expect_error(lambda: st.add(S.GroupReceiver.accept(snd.distribution(), ik)),
                     {"name": "GroupChainNotNewer", "fields": {}})
        expect_error(lambda: st.add(S.GroupReceiver.import_unauthenticated(snd.distribution())),
                     {"name": "GroupChainConflict", "fields": {}})
        other = S.GroupSender.new(Draws([seeded("cid2", 4), seeded("R2", 256), seeded("seed2", 32)]),
                                  seeded("gid2", 32))
        expect_error(lambda: st.add(S.GroupReceiver.accept(other.distribution(), ik)),
                     {"name": "GroupMismatch", "fields": {}})
        m0 = snd.encrypt(Draws([seeded("s0", 16)]), b"zero")
        snd.encrypt(Draws([seeded("s1", 16)]), b"one")
        st.add(S.GroupReceiver.accept(snd.distribution(), ik))          # moves forward to 2
        expect_error(lambda: st.decrypt(m0), {"name": "DuplicateMessage", "fields": {}})
        far = S.GroupSender.from_bytes(snd.to_bytes())
        far.ratchet.jump(2 + S.MAX_GROUP_JUMP + 1)
        mf = far.encrypt(Draws([seeded("sf", 16)]), b"far")
        expect_error(lambda: st.decrypt(mf),
                     {"name": "GroupIndexOutOfRange", "fields": {"index": 2 + S.MAX_GROUP_JUMP + 1}})

    return [("group_ratchet_forms", ratchet_forms), ("group_roundtrip", roundtrip), ("group_store", store)]


# ---------------------------------------------------------------------------

def main():
    t0 = time.time()
    passed = failed = 0
    files = sorted(glob.glob(os.path.join(VECTORS, "*.json")))
    # conversation.json first: persistence.json cross-checks against its replay.
    files.sort(key=lambda f: (os.path.basename(f) != "conversation.json", f))
    for path in files:
        doc = json.load(open(path))
        area = doc.get("area", os.path.basename(path)[:-5])
        fixtures = doc.get("fixtures", {})
        checker = {
            "kdf": lambda v: check_kdf(v),
            "x3dh": lambda v: check_x3dh(v),
            "conversation": lambda v: check_conversation(v),
            "persistence": lambda v: check_persistence(v),
            "negative": lambda v: check_negative(v, fixtures),
            "group": lambda v: check_group(v, fixtures),
            "device": lambda v: check_device_ops(v),
            "bounds": lambda v: check_bounds(v),
        }.get(area)
        if doc.get("format") != 1:
            print("FAIL %s: unknown format %r" % (area, doc.get("format")))
            failed += 1
            continue
        for v in doc["vectors"]:
            name = "%s/%s" % (area, v.get("name"))
            try:
                if checker is None:
                    raise Mismatch("no verifier for area %r" % area)
                checker(v)
                print("PASS " + name)
                passed += 1
            except Mismatch as e:
                print("FAIL %s: %s" % (name, e))
                failed += 1
            except Exception as e:  # an unexpected exception is a failure too
                print("FAIL %s: %s: %s" % (name, type(e).__name__, e))
                if os.environ.get("VERBOSE"):
                    traceback.print_exc()
                failed += 1
    for name, fn in group_selftests():
        try:
            fn()
            print("PASS selftest/" + name)
            passed += 1
        except Exception as e:
            print("FAIL selftest/%s: %s: %s" % (name, type(e).__name__, e))
            failed += 1
    print("# verify.py took %.1f s" % (time.time() - t0))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
