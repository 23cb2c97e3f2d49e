"""The bindings' scenario in Python, through the generated module `sotto`.

The same steps as tests/kotlin/Scenario.kt and bindings/wasm/tests/scenario.mjs:
two users with two devices each and a pairwise session between every pair
of devices; a group of the four with a removal; save and restore, sealed
and plain; tampered, replayed and forged messages and states; and every
error a caller can reach, each checked to carry the C ABI's code (read from
ffi/include/sotto.h). Run by bindings/uniffi/test.sh with the generated
module and the library on PYTHONPATH.
"""

import os
import re
import sys

import sotto
from sotto import (Action, ContentKind, DecryptFailure, Device, DeviceEntry, GroupSender,
                   GroupSession, GroupStore, IdentityKey, IgnoreReason, InsertOutcome,
                   KeyAgreement, MessageKind, PeerRecord, PreKeyBundle, RetryHint, RetryLaterReason, Role,
                   Session, SottoError, group_message_info, message_info, prekey_id)

NOW = 1_700_000_000
KEY = bytes(range(32))
GROUP = bytes([7] * 32)
HEADER = os.path.join(os.path.dirname(__file__), "../../../../ffi/include/sotto.h")

# Byte layouts (SPEC.md), for the steps that forge wire and state bytes.
BUNDLE_OPK_FLAG = 2 + 32 + (102 - 2)  # after the identity and the signed prekey
PREKEY_BASE_KEY = slice(34, 66)  # prekey message: version, type, IK_A, EK_A
GROUP_INDEX = slice(66, 70)  # group message: version, type, group, chain, index
DISTRIBUTION_PROOF = 2 + 32 + 32 + 32  # distribution: group, chain, owner, proof
SENDER_INDEX = slice(2 + 8 + 32 + 32 + 32 + 64 + 64, 2 + 8 + 32 + 32 + 32 + 64 + 64 + 4)
MAX_PLAINTEXT_LEN = 262_144
MAX_MESSAGE_LEN = 263_866
MAX_BASE_KEYS = 1000
MAX_GROUP_RECEIVERS = 1024
GROUP_JUMP = 1 << 24

# What the language side cannot provoke: an internal panic (poisoning), a
# failing operating-system RNG, and a core error without a code of its own.
UNREACHABLE = {"HandlePoisoned", "Randomness", "ProtocolOther"}


def header_codes():
    codes = {}
    with open(HEADER, encoding="utf-8") as header:
        for match in re.finditer(r"SOTTO_ERROR_([A-Z_]+) = (\d+)", header.read()):
            codes[match.group(1)] = int(match.group(2))
    return codes


CODES = header_codes()
reached = set()


def upper_snake(name):
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).upper()


def expect(kind, call, *args):
    """`call(*args)` raises the `kind` variant of SottoError with the C
    ABI's code for it."""
    try:
        call(*args)
    except SottoError as error:
        name = type(error).__name__
        assert name == kind, f"expected {kind}, got {name}: {error}"
        assert error.code == CODES[upper_snake(kind)], (kind, error.code)
        assert isinstance(error.detail, str) and error.detail
        reached.add(kind)
        return error
    raise AssertionError(f"expected {kind}, nothing raised")


class Member:
    """One device of a user, with its sessions by peer name, its group
    sender and its group store."""

    def __init__(self, user, name):
        self.user, self.name = user, name
        self.device = Device.generate(NOW)
        self.sessions = {}
        self.sender = None
        self.store = None

    @property
    def identity(self):
        return self.device.identity_key()


def bundle_of(device, one_time=True, kem="one-time"):
    """What a server hands out: the signed prekey, a one-time prekey and a
    KEM prekey (one-time, last-resort, or none)."""
    otk = device.generate_one_time_prekeys(1)[0].bytes if one_time else None
    if kem == "one-time":
        kem_prekey = device.generate_one_time_kem_prekeys(1)[0].bytes
    elif kem == "last-resort":
        kem_prekey = device.last_resort_kem_prekey().bytes
    else:
        kem_prekey = None
    return PreKeyBundle(device.identity_key(), device.signed_prekey().bytes, otk, kem_prekey)


def connect(x, y):
    """x starts a PQXDH session with y; y accepts and replies."""
    bundle = bundle_of(y.device).verify_for(y.identity)
    to_y = x.device.initiate(bundle)
    assert to_y.key_agreement() == KeyAgreement.PQXDH
    assert to_y.role() == Role.INITIATOR and to_y.is_awaiting_reply()
    first = to_y.encrypt(f"hello {y.name}".encode())
    info = message_info(first)
    assert info.kind == MessageKind.PRE_KEY and info.base_key == to_y.base_key()
    assert info.sender_identity == x.identity
    accepted = y.device.accept(first)
    to_x = accepted.session
    assert accepted.plaintext.bytes() == f"hello {y.name}".encode()
    assert accepted.plaintext.sender() == x.identity
    assert to_x.role() == Role.RESPONDER and to_x.remote_identity() == x.identity
    reply = to_x.encrypt(f"hi {x.name}".encode())
    assert message_info(reply).kind == MessageKind.RATCHET
    assert to_y.decrypt(reply).bytes() == f"hi {x.name}".encode()
    assert not to_y.is_awaiting_reply()
    x.sessions[y.name], y.sessions[x.name] = to_y, to_x


def send(x, y, text):
    return y.sessions[x.name].decrypt(x.sessions[y.name].encrypt(text)).bytes()


def pairwise():
    """Two users, two devices each, a session between every pair."""
    members = [Member("alice", "a1"), Member("alice", "a2"), Member("bob", "b1"),
               Member("bob", "b2")]
    for i, x in enumerate(members):
        for y in members[i + 1:]:
            connect(x, y)
    for x in members:
        assert len(x.sessions) == 3
        for y in members:
            if x is not y:
                assert send(x, y, b"ping") == b"ping"
    print("pairwise: 4 devices of 2 users, 6 sessions, every direction")
    return members


def conversation(a1, b1):
    """Out of order, replayed, tampered, another session's, too far ahead."""
    to_b, to_a = a1.sessions["b1"], b1.sessions["a1"]
    wires = [to_b.encrypt(f"m{i}".encode()) for i in range(3)]
    assert [to_a.decrypt(wires[i]).bytes() for i in (2, 0, 1)] == [b"m2", b"m0", b"m1"]
    before = to_a.generation()
    expect("DuplicateMessage", to_a.decrypt, wires[1])
    wire = to_b.encrypt(b"tamper")
    tampered = bytearray(wire)
    tampered[-20] ^= 1
    expect("AuthenticationFailed", to_a.decrypt, bytes(tampered))
    assert to_a.generation() == before
    assert to_a.decrypt(wire).bytes() == b"tamper"

    other = a1.device.initiate(bundle_of(b1.device).verify())
    expect("SessionMismatch", to_a.decrypt, other.encrypt(b"x"))
    far = [to_b.encrypt(b"far") for _ in range(1002)]
    expect("TooFarAhead", to_a.decrypt, far[-1])
    assert to_a.decrypt(far[999]).bytes() == b"far"
    assert to_a.skipped_key_count() == 999
    expect("PlaintextTooLarge", to_b.encrypt, bytes(MAX_PLAINTEXT_LEN + 1))
    expect("TooLarge", message_info, bytes([2]) * (MAX_MESSAGE_LEN + 1))
    expect("UnsupportedVersion", to_a.decrypt, bytes([1]) + wire[1:])
    expect("Truncated", to_a.decrypt, wire[:3])
    print("conversation: out of order, replay, tamper, mismatch and bounds refused")


def hand_out(owner, member, distribution):
    """The owner sends its distribution over its session with the member."""
    wire = owner.sessions[member.name].encrypt(distribution)
    return member.store.receive_distribution(member.sessions[owner.name], wire)


def group(members):
    """A group of the four devices: everyone's chain to everyone, then b2
    is removed and the others rotate."""
    a1, a2, b1, b2 = members
    for m in members:
        m.sender = GroupSender(m.device, GROUP)
        m.store = GroupStore(GROUP)
        assert m.store.is_empty()
    for owner in members:
        for m in members:
            if m is not owner:
                assert hand_out(owner, m, owner.sender.distribution()) == InsertOutcome.ADDED
    for owner in members:
        wire = owner.sender.encrypt(f"from {owner.name}".encode())
        info = group_message_info(wire)
        assert info.group_id == GROUP and info.chain_id == owner.sender.chain_id()
        for m in members:
            if m is not owner:
                read = m.store.decrypt(wire)
                assert read.bytes == f"from {owner.name}".encode()
                assert read.owner == owner.identity and read.authenticated
        if owner is not b1:
            expect("DuplicateMessage", b1.store.decrypt, wire)
    assert a1.store.len() == 3
    assert sorted(a1.store.chain_ids()) == sorted(m.sender.chain_id() for m in (a2, b1, b2))
    receiver = a1.store.receiver(b2.sender.chain_id())
    assert receiver.owner == b2.identity and receiver.authenticated and receiver.next_index == 1

    # Refusals, none of which changes the store or the session.
    wire = a2.sender.encrypt(b"secret")
    tampered = bytearray(wire)
    tampered[-1] ^= 1
    expect("InvalidSignature", a1.store.decrypt, bytes(tampered))
    relabelled = bytearray(wire)
    relabelled[2] ^= 0xFF
    expect("UnknownGroupChain", a1.store.decrypt, bytes(relabelled))
    before = a1.store.to_bytes()
    forwarded = b1.sessions["a1"].encrypt(a2.sender.distribution())
    expect("GroupOwnerMismatch", a1.store.receive_distribution, a1.sessions["b1"], forwarded)
    assert a1.store.to_bytes() == before
    assert a1.sessions["b1"].decrypt(forwarded).bytes() == a2.sender.distribution()
    state = bytearray(a2.sender.to_bytes())
    state[-1] ^= 1  # the last byte of the ratchet: a forked sender state
    forked = GroupSender.from_bytes(bytes(state))
    fork_wire = a2.sessions["a1"].encrypt(forked.distribution())
    expect("GroupChainConflict", a1.store.receive_distribution, a1.sessions["a2"], fork_wire)
    proof = bytearray(a2.sender.distribution())
    proof[DISTRIBUTION_PROOF] ^= 1
    expect("InvalidSignature", a1.store.import_unauthenticated, bytes(proof))
    assert a1.store.import_unauthenticated(a2.sender.distribution()) == InsertOutcome.UNCHANGED
    far = bytearray(a2.sender.to_bytes())
    far[SENDER_INDEX] = (GROUP_JUMP + 100).to_bytes(4, "big")
    expect("GroupIndexOutOfRange", a1.store.decrypt,
           GroupSender.from_bytes(bytes(far)).encrypt(b"jump"))
    far[SENDER_INDEX] = (2**32 - 1).to_bytes(4, "big")
    expect("ChainExhausted", GroupSender.from_bytes(bytes(far)).encrypt, b"last")
    other = GroupSender(a2.device, bytes(32))
    expect("GroupMismatch", a1.store.import_unauthenticated, other.distribution())
    expect("UnknownGroupChain", a1.store.decrypt, other.encrypt(b"elsewhere"))
    expect("GroupOwnerMismatch", a2.sender.rotate, a1.device)
    expect("InvalidArgument", GroupStore, bytes(31))
    expect("InvalidArgument", a1.store.receiver, bytes(5))
    assert a1.store.to_bytes() == before
    assert a1.store.decrypt(wire).bytes == b"secret"

    # An unauthenticated import, upgraded by the owner's own delivery.
    newcomer = Member("carol", "c1")
    newcomer.sender, newcomer.store = GroupSender(newcomer.device, GROUP), GroupStore(GROUP)
    connect(a1, newcomer)
    assert a1.store.import_unauthenticated(newcomer.sender.distribution()) == InsertOutcome.ADDED
    read = a1.store.decrypt(newcomer.sender.encrypt(b"claimed"))
    assert read.owner == newcomer.identity and not read.authenticated
    assert hand_out(newcomer, a1, newcomer.sender.distribution()) == InsertOutcome.UPGRADED
    assert a1.store.decrypt(newcomer.sender.encrypt(b"proven")).authenticated
    assert a1.store.remove_owner(newcomer.identity) == 1

    # b2 leaves: the others drop its chain, rotate, and send the new
    # distributions to the remaining members only.
    remaining = [a1, a2, b1]
    for m in remaining:
        assert m.store.remove_owner(b2.identity) == 1
        assert m.store.receiver(b2.sender.chain_id()) is None
    for owner in remaining:
        old_chain = owner.sender.chain_id()
        distribution = owner.sender.rotate(owner.device)
        assert owner.sender.chain_id() != old_chain and owner.sender.index() == 0
        for m in remaining:
            if m is not owner:
                assert hand_out(owner, m, distribution) == InsertOutcome.ADDED
    wire = a1.sender.encrypt(b"without b2")
    assert a2.store.decrypt(wire).bytes == b"without b2"
    assert b1.store.decrypt(wire).bytes == b"without b2"
    expect("UnknownGroupChain", b2.store.decrypt, wire)
    expect("UnknownGroupChain", a1.store.decrypt, b2.sender.encrypt(b"still here?"))
    print("group: 4 members, forged and forwarded keys refused, b2 removed and locked out")


def persistence(members):
    """Sealed and plain saved states of every kind; rollback and restore."""
    a1, a2, b1, _ = members
    to_b, to_a = a1.sessions["b1"], b1.sessions["a1"]
    for obj, cls in ((a1.device, Device), (to_b, Session), (a1.sender, GroupSender),
                     (a1.store, GroupStore)):
        context = type(obj).__name__.encode()
        sealed = obj.seal(KEY, context)
        restored = cls.unseal(sealed, KEY, context)
        assert restored.to_bytes() == obj.to_bytes()
        assert restored.generation() == obj.generation()
        assert cls.from_bytes(obj.to_bytes()).to_bytes() == obj.to_bytes()
        expect("AuthenticationFailed", cls.unseal, sealed, bytes(32), context)
        expect("AuthenticationFailed", cls.unseal, sealed, KEY, b"another record")
        altered = bytearray(sealed)
        altered[len(sealed) // 2] ^= 1
        expect("AuthenticationFailed", cls.unseal, bytes(altered), KEY, context)
        expect("InvalidArgument", obj.seal, KEY[:31], context)
        expect("InvalidArgument", cls.unseal, sealed, KEY + b"\0", context)
        expect("TooLarge", obj.seal, KEY, bytes(1025))
        state = obj.to_bytes()
        expect("Truncated", cls.from_bytes, state[:-1])
        expect("TrailingBytes", cls.from_bytes, state + b"\0")
        expect("UnsupportedVersion", cls.from_bytes, bytes([state[0] ^ 0x7F]) + state[1:])
    expect("WrongType", Device.from_bytes, to_b.to_bytes())
    expect("WrongType", Session.unseal, a1.sender.seal(KEY, b"x"), KEY, b"x")

    # The conversation goes on from restored states.
    to_b = Session.unseal(to_b.seal(KEY, b"a1/b1"), KEY, b"a1/b1")
    to_a = Session.from_bytes(to_a.to_bytes())
    assert to_a.decrypt(to_b.encrypt(b"after restore")).bytes() == b"after restore"
    a1.sessions["b1"], b1.sessions["a1"] = to_b, to_a
    a1.store = GroupStore.unseal(a1.store.seal(KEY, b"store"), KEY, b"store")
    assert a1.store.decrypt(a2.sender.encrypt(b"restored store")).bytes == b"restored store"

    # A rollback across a ratchet-key draw diverges the session.
    assert to_b.decrypt(to_a.encrypt(b"your turn")).bytes() == b"your turn"
    old = to_b.to_bytes()
    assert to_a.decrypt(to_b.encrypt(b"new key")).bytes() == b"new key"
    rolled_back = Session.from_bytes(old)
    assert rolled_back.generation() < to_b.generation()
    expect("SessionDiverged", to_a.decrypt, rolled_back.encrypt(b"after a rollback"))

    # A device restored from a backup resets its prekeys; a replayed
    # handshake to the old ones is refused.
    backup = b1.device.to_bytes()
    replayable = a2.device.initiate(bundle_of(b1.device, one_time=False,
                                              kem="last-resort").verify()).encrypt(b"once")
    b1.device.accept(replayable)
    latest = b1.device.generation()
    restored = Device.from_bytes(backup)
    assert restored.generation() < latest
    reset = restored.reset_prekeys_after_restore(NOW + 3, latest)
    assert restored.generation() == latest + 1
    assert reset.signed_prekey.id == restored.signed_prekey().id
    assert prekey_id(reset.kem_prekey.bytes) == reset.kem_prekey.id
    expect("UnknownSignedPrekey", restored.accept, replayable)
    print("persistence: 4 kinds sealed and restored, rollback diverges, restore resets")


def prekeys():
    """Prekey management, bundles, classical opt-in, and forged handshakes."""
    alice, bob = Device.generate(NOW), Device.generate(NOW)
    alice_id, bob_id = alice.identity_key(), bob.identity_key()
    assert IdentityKey.from_bytes(bob_id.to_bytes()) == bob_id and bob_id != alice_id
    assert len(bob_id.fingerprint()) == 32 and len(bob_id.fingerprint_text()) == 71
    expect("TrailingBytes", IdentityKey.from_bytes, bob_id.to_bytes() + b"\0")
    expect("InvalidPublicKey", IdentityKey.from_bytes, bob_id.to_bytes()[:2] + b"\xff" * 32)

    spk = bob.rotate_signed_prekey(NOW + 1)
    assert [i.id for i in bob.signed_prekeys()] == [1, 2] and spk.id == 2
    assert prekey_id(spk.bytes) == 2
    expect("UnknownSignedPrekey", bob.remove_signed_prekey, 2)
    bob.remove_signed_prekey(1)
    kem = bob.rotate_last_resort_kem_prekey(NOW + 1)
    assert [i.id for i in bob.last_resort_kem_prekeys()][-1] == kem.id
    expect("UnknownKemPrekey", bob.remove_last_resort_kem_prekey, kem.id)
    bob.remove_last_resort_kem_prekey(1)
    expect("TooManyPrekeys", bob.generate_one_time_prekeys, 1001)
    expect("TooManyPrekeys", bob.generate_one_time_kem_prekeys, 101)
    assert bob.one_time_prekey_count() == 0 and bob.one_time_kem_prekey_count() == 0
    expect("WrongType", prekey_id, bob_id.to_bytes())

    bundle = bundle_of(bob)
    assert PreKeyBundle.from_bytes(bundle.to_bytes()).to_bytes() == bundle.to_bytes()
    assert bundle.identity() == bob_id and bundle.has_kem_prekey()
    bad = bytearray(bundle.to_bytes())
    bad[2 + 32 + 4 + 32 + 5] ^= 0x40
    expect("InvalidSignature", PreKeyBundle.from_bytes(bytes(bad)).verify)
    bad = bytearray(bundle.to_bytes())
    bad[BUNDLE_OPK_FLAG] = 2
    expect("InvalidEncoding", PreKeyBundle.from_bytes, bytes(bad))
    expect("IdentityMismatch", bundle.verify_for, alice_id)

    verified = bundle.verify_for(bob_id)
    first = alice.initiate(verified).encrypt(b"hello")
    low_order = bytearray(first)
    low_order[PREKEY_BASE_KEY] = bytes(32)
    expect("NonContributoryKey", bob.accept, bytes(low_order))
    high_bit = bytearray(first)
    high_bit[PREKEY_BASE_KEY.stop - 1] |= 0x80
    expect("InvalidPublicKey", bob.accept, bytes(high_bit))
    accepted = bob.accept(first)
    assert accepted.plaintext.bytes() == b"hello"
    # The same bundle again: its one-time prekeys are used up.
    expect("UnknownOneTimePrekey", bob.accept, alice.initiate(verified).encrypt(b"again"))
    no_otk = PreKeyBundle(bob_id, bob.signed_prekey().bytes, None,
                          bob.generate_one_time_kem_prekeys(1)[0].bytes).verify()
    bob.accept(alice.initiate(no_otk).encrypt(b"kem once"))
    expect("UnknownKemPrekey", bob.accept, alice.initiate(no_otk).encrypt(b"kem twice"))

    classical = PreKeyBundle(bob_id, bob.signed_prekey().bytes, None, None).verify()
    assert not classical.has_kem_prekey()
    expect("PostQuantumRequired", alice.initiate, classical)
    x3dh = alice.initiate_allow_classical(classical)
    assert x3dh.key_agreement() == KeyAgreement.X3DH
    x3dh_first = x3dh.encrypt(b"classical")
    expect("PostQuantumRequired", bob.accept, x3dh_first)
    assert bob.accept_allow_classical(x3dh_first).plaintext.bytes() == b"classical"
    expect("DuplicatePrekeyMessage", bob.accept_allow_classical, x3dh_first)
    expect("WrongType", bob.accept, accepted.session.encrypt(b"ratchet, not prekey"))
    print("prekeys: rotation, removal, bounds, forged bundles and handshakes refused")


def bounds():
    """Bounds an attacker can drive: a signed prekey exhausted by replayable
    handshakes, and a store full of authenticated chains."""
    alice, dave = Device.generate(NOW), Device.generate(NOW)
    classical = PreKeyBundle(dave.identity_key(), dave.signed_prekey().bytes, None,
                             None).verify()
    pending = [alice.initiate_allow_classical(classical).encrypt(b"x")
               for _ in range(MAX_BASE_KEYS + 1)]
    for wire in pending[:MAX_BASE_KEYS]:
        dave.accept_allow_classical(wire)
    assert dave.signed_prekeys()[0].base_key_count == MAX_BASE_KEYS
    expect("SignedPrekeyExhausted", dave.accept_allow_classical, pending[-1])

    erin = Member("erin", "e1")
    erin.store = GroupStore(GROUP)
    bundle = PreKeyBundle(erin.identity, erin.device.signed_prekey().bytes, None, None).verify()
    for i in range(MAX_GROUP_RECEIVERS // 4):
        owner = Member("owner", f"o{i}")
        owner.sender = GroupSender(owner.device, GROUP)
        owner.sessions["e1"] = owner.device.initiate_allow_classical(bundle)
        erin.sessions[owner.name] = erin.device.accept_allow_classical(
            owner.sessions["e1"].encrypt(b"hi")).session
        for j in range(4):
            distribution = owner.sender.rotate(owner.device) if j else owner.sender.distribution()
            assert hand_out(owner, erin, distribution) == InsertOutcome.ADDED
    assert erin.store.len() == MAX_GROUP_RECEIVERS
    stranger = GroupSender(Device.generate(NOW), GROUP)
    expect("GroupStoreFull", erin.store.import_unauthenticated, stranger.distribution())
    print(f"bounds: signed prekey exhausted after {MAX_BASE_KEYS} handshakes, "
          f"store of {MAX_GROUP_RECEIVERS} chains full")


def failed(kind, call, *args):
    """`call(*args)` raises DecryptFailure.Failed for `kind` with the C ABI's
    code; returns its action."""
    try:
        call(*args)
    except DecryptFailure.Failed as failure:
        assert failure.kind == kind, f"expected {kind}, got {failure.kind}: {failure}"
        assert failure.code == CODES[upper_snake(kind)], (kind, failure.code)
        reached.add(kind)
        return failure.action
    raise AssertionError(f"expected a DecryptFailure of {kind}, nothing raised")


class LayerDevice:
    """A device on the session layer: its own record (the user's other
    devices), a record of the other user, and its view of the group."""

    def __init__(self, user, device_id):
        self.user, self.id = user, device_id
        self.device = Device.generate(NOW)
        self.identity = self.device.identity_key()
        self.own = PeerRecord.new_own(user, device_id, self.identity)
        self.records = {user: self.own}

    def bundle(self):
        return bundle_of(self.device)


def sessions_layer():
    """Two users with two devices each on the session layer: device lists,
    fan-out to every device, routing, replay and tampering, a group over
    every device with a member removed, save and restore, safety numbers,
    and the layer's errors."""
    users = {b"alice": [LayerDevice(b"alice", 1), LayerDevice(b"alice", 2)],
             b"bob": [LayerDevice(b"bob", 1), LayerDevice(b"bob", 2)]}
    listing = {u: [DeviceEntry(device=d.id, identity=d.identity) for d in ds]
               for u, ds in users.items()}
    everyone = [d for ds in users.values() for d in ds]
    by_address = {(d.user, d.id): d for d in everyone}
    for d in everyone:
        other = b"bob" if d.user == b"alice" else b"alice"
        d.records[other] = PeerRecord(other, d.identity)
        for user, record in d.records.items():
            changes = record.update_devices(listing[user], NOW)
            expected = [e.device for e in listing[user] if (user, e.device) != (d.user, d.id)]
            assert sorted(changes.added) == expected, (changes.added, expected)

    def send(sender, user, payload):
        """Fetches the bundles the plan asks for, encrypts to every device
        of `user`, and delivers; returns the wire messages by device."""
        record = sender.records[user]
        for device in record.plan_send(NOW).needs_bundle:
            record.add_bundle(sender.device, device, by_address[(user, device)].bundle(), NOW)
        sent = record.encrypt(payload)
        assert not sent.unusable
        wires = {}
        for out in sent.messages:
            receiver = by_address[(user, out.device)]
            got = receiver.records[sender.user].decrypt(receiver.device, sender.id, out.message,
                                                        NOW)
            assert got.kind() == ContentKind.PAYLOAD and got.payload() == payload
            assert got.sender() == sender.identity and got.device() == sender.id
            wires[out.device] = out.message
        return wires

    a1, a2 = users[b"alice"]
    b1, b2 = users[b"bob"]
    for sender in everyone:
        for user in users:
            wires = send(sender, user, b"hi from " + sender.user)
            assert len(wires) == (1 if user == sender.user else 2)
    assert [i.device for i in a1.records[b"bob"].devices()] == [1, 2]

    # Replayed and tampered messages, an unknown device: an action each.
    wire = send(a1, b"bob", b"once")[1]
    action = failed("DuplicateMessage", b1.records[b"alice"].decrypt, b1.device, 1, wire, NOW)
    assert action == Action.IGNORE(IgnoreReason.DUPLICATE), action
    tampered = bytearray(a1.records[b"bob"].encrypt_to(1, b"tampered"))
    tampered[-20] ^= 1
    before = b1.records[b"alice"].generation()
    failed("AuthenticationFailed", b1.records[b"alice"].decrypt, b1.device, 1, bytes(tampered),
           NOW)
    assert b1.records[b"alice"].generation() == before
    action = failed("UnknownDevice", b1.records[b"alice"].decrypt, b1.device, 9, wire, NOW)
    assert action == Action.RETRY_LATER(RetryLaterReason.UNKNOWN_DEVICE)
    failed("Truncated", b1.records[b"alice"].decrypt, b1.device, 1, wire[:3], NOW)

    # A group of both users over every device; Bob is removed.
    group_id = bytes([9] * 32)
    for d in everyone:
        d.group = GroupSession(group_id, d.user, d.device)
        other = b"bob" if d.user == b"alice" else b"alice"
        assert d.group.add_member(other)

    def hand_out(sender, fanout):
        for user_sent in fanout:
            assert not user_sent.sent.unusable
            for out in user_sent.sent.messages:
                receiver = by_address[(user_sent.user, out.device)]
                record = receiver.records[sender.user]
                got = record.decrypt(receiver.device, sender.id, out.message, NOW)
                assert got.kind() == ContentKind.DISTRIBUTION and got.group_id() == group_id
                assert receiver.group.install(record, got) == InsertOutcome.ADDED

    for d in everyone:
        other = b"bob" if d.user == b"alice" else b"alice"
        hand_out(d, d.group.distribute([d.own, d.records[other]]))
    for d in everyone:
        assert d.group.receiver_count() == 3
    wire = a1.group.encrypt(b"to the group")
    for d in (a2, b1, b2):
        read = d.group.decrypt(wire)
        assert read.bytes == b"to the group" and read.owner == a1.identity and read.authenticated
    action = failed("DuplicateMessage", b1.group.decrypt, wire)
    assert action == Action.IGNORE(IgnoreReason.DUPLICATE)
    expect("NotGroupMember", a1.group.distribute, [a1.own, PeerRecord(b"carol", a1.identity)])
    expect("InvalidArgument", a1.group.distribute, [a1.own, a1.own])
    for d in users[b"alice"]:
        hand_out(d, d.group.remove_member(d.device, b"bob", [d.own]))
        assert d.group.members() == [b"alice"]
    wire = a1.group.encrypt(b"alice only")
    assert a2.group.decrypt(wire).bytes == b"alice only"
    action = failed("UnknownGroupChain", b1.group.decrypt, wire)
    assert action == Action.RETRY_LATER(RetryLaterReason.MISSING_DISTRIBUTION)

    # Save and restore records and groups; the conversation goes on.
    for d in everyone:
        for user, record in list(d.records.items()):
            context = d.user + b"/" + user
            restored = PeerRecord.unseal(record.seal(KEY, context), KEY, context)
            assert restored.to_bytes() == record.to_bytes()
            expect("AuthenticationFailed", PeerRecord.unseal, record.seal(KEY, context), KEY,
                   b"other")
            d.records[user] = restored
        d.own = d.records[d.user]
        d.group = GroupSession.unseal(d.group.seal(KEY, b"group"), KEY, b"group")
    send(b2, b"alice", b"after restore")
    assert a2.group.decrypt(a1.group.encrypt(b"restored group")).bytes == b"restored group"
    old = GroupSession.from_bytes(a2.group.to_bytes())
    a2.group.decrypt(a1.group.encrypt(b"moves on"))
    assert old.after_restore(a2.device, a2.group.generation())
    expect("WrongType", GroupSession.from_bytes, a1.own.to_bytes())

    # Safety numbers agree on both sides and change with the devices.
    number = a1.records[b"bob"].safety_number(a1.own)
    assert len(number.replace(" ", "")) == 60
    assert b1.records[b"alice"].safety_number(b1.own) == number
    assert a2.records[b"bob"].safety_number(a2.own) == number

    # The layer's own errors.
    record = a1.records[b"bob"]
    expect("InvalidDeviceList", record.update_devices, listing[b"bob"] * 2, NOW)
    expect("UnknownDevice", record.acknowledge_identity, 7, b1.identity)
    fresh = PeerRecord(b"bob", a1.identity)
    fresh.update_devices(listing[b"bob"], NOW)
    expect("NoSession", fresh.encrypt_to, 1, b"no session yet")
    b2_new = Device.generate(NOW)
    changes = record.update_devices(
        [listing[b"bob"][0], DeviceEntry(device=2, identity=b2_new.identity_key())], NOW)
    assert [c.device for c in changes.identity_changes] == [2]
    expect("IdentityChangePending", record.encrypt_to, 2, b"blocked")
    assert record.plan_send(NOW).blocked == [2]
    expect("IdentityMismatch", record.acknowledge_identity, 2, b1.identity)
    record.acknowledge_identity(2, b2_new.identity_key())
    rate = PeerRecord(b"bob", a1.identity)
    rate.update_devices(listing[b"bob"], NOW)
    rate.add_bundle(a1.device, 1, b1.bundle(), NOW)

    some_hint = RetryHint(ratchet_key=bytes([5] * 32), message_number=3, base_key=None)
    for _ in range(8):
        rate.request_retry(1, some_hint, NOW)
    expect("RecoveryRateLimited", rate.request_retry, 1, some_hint, NOW)
    expect("InvalidArgument", rate.request_retry, 1,
           RetryHint(ratchet_key=bytes(31), message_number=0, base_key=None), NOW)
    big = GroupSession(group_id, b"alice", a1.device)
    for i in range(999):
        big.add_member(b"member %d" % i)
    expect("TooManyGroupMembers", big.add_member, b"one too many")
    expect("InvalidEncoding", PeerRecord, b"", a1.identity)
    print("sessions: 2 users x 2 devices on the session layer: fan-out, routing, replay and "
          "tamper, a group over every device with a removal, save and restore, safety numbers")


def main():
    steps = 0
    members = pairwise()
    steps += 1
    conversation(members[0], members[2])
    steps += 1
    group(members)
    steps += 1
    persistence(members)
    steps += 1
    prekeys()
    steps += 1
    bounds()
    steps += 1
    sessions_layer()
    steps += 1
    every = {name for name in dir(SottoError)
             if isinstance(getattr(SottoError, name), type)
             and issubclass(getattr(SottoError, name), SottoError)}
    assert every, "no error variants found in the generated module"
    missing = every - reached - UNREACHABLE
    assert not missing, f"errors never provoked: {sorted(missing)}"
    assert UNREACHABLE <= every
    print(f"errors: {len(reached)} of {len(every)} provoked, each with the C ABI's code; "
          f"not reachable from here: {', '.join(sorted(UNREACHABLE))}")
    print(f"{steps} passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
