// The bindings' scenario in JavaScript, through the WebAssembly package.
//
// The same steps as bindings/uniffi/tests/python/scenario.py and the
// Kotlin scenario: two users with two devices each and a session between
// every pair; a group of the four with a removal; save and restore;
// tampered, replayed and forged messages and states; and every error a
// caller can reach, each checked to carry the C ABI's code. Runs unchanged
// under Node.js (node.mjs) and in Chromium (browser.mjs): `run(sotto, codes,
// log)` takes the initialised module, the C ABI's codes by name (read from
// ffi/include/sotto.h by the runner) and a logging function.

const NOW = 1_700_000_000n;
const KEY = Uint8Array.from({ length: 32 }, (_, i) => i);
const GROUP = new Uint8Array(32).fill(7);
const enc = (s) => new TextEncoder().encode(s);
const dec = (b) => new TextDecoder().decode(b);

// Byte layouts (SPEC.md) for the steps that forge wire and state bytes.
const BUNDLE_OPK_FLAG = 2 + 32 + (102 - 2);
const PREKEY_BASE_KEY = [34, 66];
const DISTRIBUTION_PROOF = 2 + 32 + 32 + 32;
const SENDER_INDEX = 2 + 8 + 32 + 32 + 32 + 64 + 64;
const MAX_PLAINTEXT_LEN = 262_144;
const MAX_MESSAGE_LEN = 263_866;
const MAX_BASE_KEYS = 1000;
const MAX_GROUP_RECEIVERS = 1024;
const GROUP_JUMP = 1 << 24;

// What JavaScript cannot provoke: an internal panic (a trap here), a
// failing crypto.getRandomValues, and a core error without its own code.
const UNREACHABLE = ["HandlePoisoned", "Randomness", "ProtocolOther"];

function assert(condition, message) {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}

function equal(a, b) {
  if (a.length !== b.length) return false;
  return a.every((x, i) => x === b[i]);
}

function flip(bytes, offset, mask = 1) {
  const copy = Uint8Array.from(bytes);
  copy[offset] ^= mask;
  return copy;
}

function withIndex(state, index) {
  const copy = Uint8Array.from(state);
  new DataView(copy.buffer).setUint32(SENDER_INDEX, index >>> 0, false);
  return copy;
}

function upperSnake(name) {
  return name.replace(/(?<!^)([A-Z])/g, "_$1").toUpperCase();
}

export async function run(sotto, codes, log) {
  const reached = new Set();
  const expect = (kind, call) => {
    try {
      call();
    } catch (error) {
      assert(error.name === "SottoError", `${kind}: not a SottoError: ${error}`);
      assert(error.kind === kind, `expected ${kind}, got ${error.kind}: ${error.message}`);
      assert(error.code === codes[upperSnake(kind)], `${kind}: code ${error.code}`);
      reached.add(kind);
      return error;
    }
    throw new Error(`expected ${kind}, nothing thrown`);
  };
  const {
    Device, PreKeyBundle, Session, GroupSender, GroupStore,
    identityKeyFingerprint, prekeyId, isPreKeyMessage, groupMessageGroupId,
  } = sotto;

  class Member {
    constructor(name) {
      this.name = name;
      this.device = Device.generate(NOW);
      this.sessions = new Map();
    }
    get identity() {
      return this.device.identityKey();
    }
  }

  const bundleOf = (device, { oneTime = true, kem = "one-time" } = {}) => {
    const otk = oneTime ? device.generateOneTimePrekeys(1)[0] : undefined;
    const kemPrekey = kem === "one-time" ? device.generateOneTimeKemPrekeys(1)[0]
      : kem === "last-resort" ? device.lastResortKemPrekey() : undefined;
    return new PreKeyBundle(device.identityKey(), device.signedPrekey(), otk, kemPrekey);
  };

  const connect = (x, y) => {
    const bundle = bundleOf(y.device).verifyFor(y.identity);
    const toY = x.device.initiate(bundle);
    assert(toY.isPostQuantum() && toY.isAwaitingReply(), "new PQXDH session");
    const first = toY.encrypt(enc(`hello ${y.name}`));
    assert(isPreKeyMessage(first), "first message is a prekey message");
    const accepted = y.device.accept(first);
    const toX = accepted.takeSession();
    const plaintext = accepted.takePlaintext();
    assert(dec(plaintext.bytes()) === `hello ${y.name}`, "first plaintext");
    assert(equal(plaintext.sender(), x.identity), "first sender");
    assert(equal(toX.baseKey(), toY.baseKey()), "base keys");
    const reply = toX.encrypt(enc(`hi ${x.name}`));
    assert(!isPreKeyMessage(reply), "reply is a ratchet message");
    assert(dec(toY.decrypt(reply).bytes()) === `hi ${x.name}`, "reply");
    assert(!toY.isAwaitingReply(), "reply received");
    x.sessions.set(y.name, toY);
    y.sessions.set(x.name, toX);
  };

  const send = (x, y, text) =>
    dec(y.sessions.get(x.name).decrypt(x.sessions.get(y.name).encrypt(enc(text))).bytes());

  const handOut = (owner, member, distribution) => {
    const wire = owner.sessions.get(member.name).encrypt(distribution);
    return member.store.receiveDistribution(member.sessions.get(owner.name), wire);
  };

  // Pairwise: two users, two devices each, a session between every pair.
  const members = ["a1", "a2", "b1", "b2"].map((n) => new Member(n));
  const [a1, a2, b1, b2] = members;
  for (let i = 0; i < members.length; i++) {
    for (const y of members.slice(i + 1)) connect(members[i], y);
  }
  for (const x of members) {
    for (const y of members) if (x !== y) assert(send(x, y, "ping") === "ping", "ping");
  }
  log("pairwise: 4 devices of 2 users, 6 sessions, every direction");

  // Conversation: out of order, replayed, tampered, mismatched, bounds.
  {
    const toB = a1.sessions.get("b1");
    const toA = b1.sessions.get("a1");
    const wires = [0, 1, 2].map((i) => toB.encrypt(enc(`m${i}`)));
    assert([2, 0, 1].map((i) => dec(toA.decrypt(wires[i]).bytes())).join() === "m2,m0,m1",
      "out of order");
    const before = toA.generation();
    expect("DuplicateMessage", () => toA.decrypt(wires[1]));
    const wire = toB.encrypt(enc("tamper"));
    expect("AuthenticationFailed", () => toA.decrypt(flip(wire, wire.length - 20)));
    assert(toA.generation() === before, "unchanged after refusals");
    assert(dec(toA.decrypt(wire).bytes()) === "tamper", "genuine after tampered");
    const other = a1.device.initiate(bundleOf(b1.device).verify());
    expect("SessionMismatch", () => toA.decrypt(other.encrypt(enc("x"))));
    const far = Array.from({ length: 1002 }, () => toB.encrypt(enc("far")));
    expect("TooFarAhead", () => toA.decrypt(far[1001]));
    assert(dec(toA.decrypt(far[999]).bytes()) === "far", "skipped 999");
    expect("PlaintextTooLarge", () => toB.encrypt(new Uint8Array(MAX_PLAINTEXT_LEN + 1)));
    expect("TooLarge", () => isPreKeyMessage(new Uint8Array(MAX_MESSAGE_LEN + 1).fill(2)));
    const v1 = Uint8Array.from(wire);
    v1[0] = 1;
    expect("UnsupportedVersion", () => toA.decrypt(v1));
    expect("Truncated", () => toA.decrypt(wire.slice(0, 3)));
    log("conversation: out of order, replay, tamper, mismatch and bounds refused");
  }

  // Group: everyone's chain to everyone, refusals, then b2 removed.
  {
    for (const m of members) {
      m.sender = new GroupSender(m.device, GROUP);
      m.store = new GroupStore(GROUP);
    }
    for (const owner of members) {
      for (const m of members) {
        if (m !== owner) {
          assert(handOut(owner, m, owner.sender.distribution()) === "added", "added");
        }
      }
    }
    for (const owner of members) {
      const wire = owner.sender.encrypt(enc(`from ${owner.name}`));
      assert(equal(groupMessageGroupId(wire), GROUP), "group id");
      for (const m of members) {
        if (m === owner) continue;
        const read = m.store.decrypt(wire);
        assert(dec(read.bytes()) === `from ${owner.name}`, "group plaintext");
        assert(equal(read.owner(), owner.identity) && read.authenticated(), "owner");
      }
      if (owner !== b1) expect("DuplicateMessage", () => b1.store.decrypt(wire));
    }
    assert(a1.store.size === 3, "three chains");

    const wire = a2.sender.encrypt(enc("secret"));
    expect("InvalidSignature", () => a1.store.decrypt(flip(wire, wire.length - 1)));
    expect("UnknownGroupChain", () => a1.store.decrypt(flip(wire, 2, 0xff)));
    const before = a1.store.toBytes();
    const forwarded = b1.sessions.get("a1").encrypt(a2.sender.distribution());
    expect("GroupOwnerMismatch",
      () => a1.store.receiveDistribution(a1.sessions.get("b1"), forwarded));
    assert(equal(a1.store.toBytes(), before), "store unchanged");
    assert(equal(a1.sessions.get("b1").decrypt(forwarded).bytes(), a2.sender.distribution()),
      "session unchanged");
    const state = a2.sender.toBytes();
    const forked = GroupSender.fromBytes(flip(state, state.length - 1));
    const forkWire = a2.sessions.get("a1").encrypt(forked.distribution());
    expect("GroupChainConflict",
      () => a1.store.receiveDistribution(a1.sessions.get("a2"), forkWire));
    expect("InvalidSignature",
      () => a1.store.importUnauthenticated(flip(a2.sender.distribution(), DISTRIBUTION_PROOF)));
    assert(a1.store.importUnauthenticated(a2.sender.distribution()) === "unchanged", "unchanged");
    expect("GroupIndexOutOfRange", () => a1.store.decrypt(
      GroupSender.fromBytes(withIndex(state, GROUP_JUMP + 100)).encrypt(enc("jump"))));
    expect("ChainExhausted",
      () => GroupSender.fromBytes(withIndex(state, 0xffffffff)).encrypt(enc("last")));
    const other = new GroupSender(a2.device, new Uint8Array(32));
    expect("GroupMismatch", () => a1.store.importUnauthenticated(other.distribution()));
    expect("UnknownGroupChain", () => a1.store.decrypt(other.encrypt(enc("elsewhere"))));
    expect("GroupOwnerMismatch", () => a2.sender.rotate(a1.device));
    expect("InvalidArgument", () => new GroupStore(new Uint8Array(31)));
    assert(equal(a1.store.toBytes(), before), "store unchanged by refusals");
    assert(dec(a1.store.decrypt(wire).bytes()) === "secret", "genuine after refusals");

    const carol = new Member("c1");
    carol.sender = new GroupSender(carol.device, GROUP);
    connect(a1, carol);
    assert(a1.store.importUnauthenticated(carol.sender.distribution()) === "added", "import");
    assert(!a1.store.decrypt(carol.sender.encrypt(enc("claimed"))).authenticated(), "claimed");
    assert(handOut(carol, a1, carol.sender.distribution()) === "upgraded", "upgraded");
    assert(a1.store.decrypt(carol.sender.encrypt(enc("proven"))).authenticated(), "proven");
    assert(a1.store.removeOwner(carol.identity) === 1, "carol removed");

    const remaining = [a1, a2, b1];
    for (const m of remaining) assert(m.store.removeOwner(b2.identity) === 1, "b2 removed");
    for (const owner of remaining) {
      const old = owner.sender.chainId();
      const distribution = owner.sender.rotate(owner.device);
      assert(!equal(owner.sender.chainId(), old) && owner.sender.index() === 0, "rotated");
      for (const m of remaining) {
        if (m !== owner) assert(handOut(owner, m, distribution) === "added", "redistributed");
      }
    }
    const after = a1.sender.encrypt(enc("without b2"));
    assert(dec(a2.store.decrypt(after).bytes()) === "without b2", "a2 reads");
    assert(dec(b1.store.decrypt(after).bytes()) === "without b2", "b1 reads");
    expect("UnknownGroupChain", () => b2.store.decrypt(after));
    expect("UnknownGroupChain", () => a1.store.decrypt(b2.sender.encrypt(enc("still here?"))));
    log("group: 4 members, forged and forwarded keys refused, b2 removed and locked out");
  }

  // Persistence: sealed and plain states of every kind; rollback; restore.
  {
    const kinds = [
      [a1.device, Device, "device"],
      [a1.sessions.get("b1"), Session, "session"],
      [a1.sender, GroupSender, "sender"],
      [a1.store, GroupStore, "store"],
    ];
    for (const [obj, cls, name] of kinds) {
      const context = enc(name);
      const sealed = obj.seal(KEY, context);
      const restored = cls.unseal(sealed, KEY, context);
      assert(equal(restored.toBytes(), obj.toBytes()), `${name} restored`);
      assert(restored.generation() === obj.generation(), `${name} generation`);
      assert(equal(cls.fromBytes(obj.toBytes()).toBytes(), obj.toBytes()), `${name} plain`);
      expect("AuthenticationFailed", () => cls.unseal(sealed, new Uint8Array(32), context));
      expect("AuthenticationFailed", () => cls.unseal(sealed, KEY, enc("another record")));
      expect("AuthenticationFailed",
        () => cls.unseal(flip(sealed, sealed.length >> 1), KEY, context));
      expect("InvalidArgument", () => obj.seal(KEY.slice(0, 31), context));
      expect("TooLarge", () => obj.seal(KEY, new Uint8Array(1025)));
      const state = obj.toBytes();
      expect("Truncated", () => cls.fromBytes(state.slice(0, -1)));
      expect("TrailingBytes", () => cls.fromBytes(Uint8Array.of(...state, 0)));
      expect("UnsupportedVersion", () => cls.fromBytes(flip(state, 0, 0x7f)));
    }
    expect("WrongType", () => Device.fromBytes(a1.sessions.get("b1").toBytes()));

    const toB = Session.unseal(a1.sessions.get("b1").seal(KEY, enc("a1/b1")), KEY, enc("a1/b1"));
    const toA = Session.fromBytes(b1.sessions.get("a1").toBytes());
    assert(dec(toA.decrypt(toB.encrypt(enc("after restore"))).bytes()) === "after restore",
      "conversation after restore");
    assert(dec(toB.decrypt(toA.encrypt(enc("your turn"))).bytes()) === "your turn", "turn");
    const old = toB.toBytes();
    assert(dec(toA.decrypt(toB.encrypt(enc("new key"))).bytes()) === "new key", "new key");
    const rolledBack = Session.fromBytes(old);
    assert(rolledBack.generation() < toB.generation(), "older generation");
    expect("SessionDiverged", () => toA.decrypt(rolledBack.encrypt(enc("after a rollback"))));

    const backup = b1.device.toBytes();
    const replayable = a2.device.initiate(
      bundleOf(b1.device, { oneTime: false, kem: "last-resort" }).verify()).encrypt(enc("once"));
    b1.device.accept(replayable);
    const latest = b1.device.generation();
    const restored = Device.fromBytes(backup);
    assert(restored.generation() < latest, "backup is older");
    restored.resetPrekeysAfterRestore(NOW + 3n, latest);
    assert(restored.generation() === latest + 1n, "generation moved past");
    expect("UnknownSignedPrekey", () => restored.accept(replayable));
    log("persistence: 4 kinds sealed and restored, rollback diverges, restore resets");
  }

  // Prekeys, bundles, the classical opt-in and forged handshakes.
  {
    const alice = Device.generate(NOW);
    const bob = Device.generate(NOW);
    const bobId = bob.identityKey();
    assert(identityKeyFingerprint(bobId).length === 32, "fingerprint");
    expect("TrailingBytes", () => identityKeyFingerprint(Uint8Array.of(...bobId, 0)));
    const invalid = Uint8Array.from(bobId);
    invalid.fill(0xff, 2);
    expect("InvalidPublicKey", () => identityKeyFingerprint(invalid));
    const spk = bob.rotateSignedPrekey(NOW + 1n);
    assert(prekeyId(spk) === 2, "signed prekey 2");
    expect("UnknownSignedPrekey", () => bob.removeSignedPrekey(2));
    bob.removeSignedPrekey(1);
    const kem = bob.rotateLastResortKemPrekey(NOW + 1n);
    expect("UnknownKemPrekey", () => bob.removeLastResortKemPrekey(prekeyId(kem)));
    bob.removeLastResortKemPrekey(1);
    expect("TooManyPrekeys", () => bob.generateOneTimePrekeys(1001));
    expect("TooManyPrekeys", () => bob.generateOneTimeKemPrekeys(101));
    expect("WrongType", () => prekeyId(bobId));

    const bundle = bundleOf(bob);
    assert(equal(PreKeyBundle.fromBytes(bundle.toBytes()).toBytes(), bundle.toBytes()), "bundle");
    expect("InvalidSignature",
      () => PreKeyBundle.fromBytes(flip(bundle.toBytes(), 2 + 32 + 4 + 32 + 5, 0x40)).verify());
    const badFlag = bundle.toBytes();
    badFlag[BUNDLE_OPK_FLAG] = 2;
    expect("InvalidEncoding", () => PreKeyBundle.fromBytes(badFlag));
    expect("IdentityMismatch", () => bundle.verifyFor(alice.identityKey()));

    const verified = bundle.verifyFor(bobId);
    const first = alice.initiate(verified).encrypt(enc("hello"));
    const lowOrder = Uint8Array.from(first);
    lowOrder.fill(0, PREKEY_BASE_KEY[0], PREKEY_BASE_KEY[1]);
    expect("NonContributoryKey", () => bob.accept(lowOrder));
    expect("InvalidPublicKey", () => bob.accept(flip(first, PREKEY_BASE_KEY[1] - 1, 0x80)));
    const accepted = bob.accept(first);
    assert(dec(accepted.takePlaintext().bytes()) === "hello", "hello");
    expect("InvalidArgument", () => accepted.takePlaintext());
    const session = accepted.takeSession();
    expect("UnknownOneTimePrekey", () => bob.accept(alice.initiate(verified).encrypt(enc("again"))));
    const noOtk = new PreKeyBundle(bobId, bob.signedPrekey(), undefined,
      bob.generateOneTimeKemPrekeys(1)[0]).verify();
    bob.accept(alice.initiate(noOtk).encrypt(enc("kem once")));
    expect("UnknownKemPrekey", () => bob.accept(alice.initiate(noOtk).encrypt(enc("kem twice"))));

    const classical = new PreKeyBundle(bobId, bob.signedPrekey(), undefined, undefined).verify();
    assert(!classical.hasKemPrekey(), "no KEM prekey");
    expect("PostQuantumRequired", () => alice.initiate(classical));
    const x3dh = alice.initiateAllowClassical(classical);
    assert(!x3dh.isPostQuantum(), "X3DH");
    const x3dhFirst = x3dh.encrypt(enc("classical"));
    expect("PostQuantumRequired", () => bob.accept(x3dhFirst));
    assert(dec(bob.acceptAllowClassical(x3dhFirst).takePlaintext().bytes()) === "classical",
      "classical accepted");
    expect("DuplicatePrekeyMessage", () => bob.acceptAllowClassical(x3dhFirst));
    expect("WrongType", () => bob.accept(session.encrypt(enc("ratchet, not prekey"))));
    log("prekeys: rotation, removal, bounds, forged bundles and handshakes refused");
  }

  // Bounds an attacker can drive.
  {
    const alice = Device.generate(NOW);
    const dave = Device.generate(NOW);
    const classical = new PreKeyBundle(dave.identityKey(), dave.signedPrekey(), undefined,
      undefined).verify();
    const pending = Array.from({ length: MAX_BASE_KEYS + 1 },
      () => alice.initiateAllowClassical(classical).encrypt(enc("x")));
    for (const wire of pending.slice(0, MAX_BASE_KEYS)) {
      const accepted = dave.acceptAllowClassical(wire);
      accepted.takeSession().free();
      accepted.free();
    }
    expect("SignedPrekeyExhausted", () => dave.acceptAllowClassical(pending[MAX_BASE_KEYS]));

    const erin = new Member("e1");
    erin.store = new GroupStore(GROUP);
    const bundle = new PreKeyBundle(erin.identity, erin.device.signedPrekey(), undefined,
      undefined).verify();
    for (let i = 0; i < MAX_GROUP_RECEIVERS / 4; i++) {
      const owner = new Member(`o${i}`);
      owner.sender = new GroupSender(owner.device, GROUP);
      const toErin = owner.device.initiateAllowClassical(bundle);
      owner.sessions.set("e1", toErin);
      erin.sessions.set(owner.name,
        erin.device.acceptAllowClassical(toErin.encrypt(enc("hi"))).takeSession());
      for (let j = 0; j < 4; j++) {
        const distribution = j ? owner.sender.rotate(owner.device) : owner.sender.distribution();
        assert(handOut(owner, erin, distribution) === "added", "chain added");
      }
    }
    assert(erin.store.size === MAX_GROUP_RECEIVERS, "store full");
    const stranger = new GroupSender(Device.generate(NOW), GROUP);
    expect("GroupStoreFull", () => erin.store.importUnauthenticated(stranger.distribution()));
    log(`bounds: signed prekey exhausted after ${MAX_BASE_KEYS} handshakes, ` +
      `store of ${MAX_GROUP_RECEIVERS} chains full`);
  }

  // The session layer (only in the package built with it).
  const SESSION_ERRORS = ["InvalidDeviceList", "UnknownDevice", "IdentityChangePending",
    "NoSession", "RecoveryRateLimited", "NotGroupMember", "TooManyGroupMembers"];
  let steps = 6;
  const notHere = [...UNREACHABLE];
  if (sotto.PeerRecord === undefined) {
    notHere.push(...SESSION_ERRORS);
    log("sessions: not in this package (the core package; see wasm-pkg-sessions)");
  } else {
    sessionsLayer(sotto, expect, bundleOf, log);
    steps += 1;
  }

  const every = Object.keys(codes)
    .filter((name) => codes[name] >= 100 || ["INVALID_ARGUMENT"].includes(name));
  const reachedSnake = new Set([...reached].map(upperSnake));
  const unreachable = new Set(notHere.map(upperSnake));
  const missing = every.filter((n) => !reachedSnake.has(n) && !unreachable.has(n));
  assert(missing.length === 0, `errors never provoked: ${missing.join(", ")}`);
  log(`errors: ${reached.size} kinds provoked, each with the C ABI's code; ` +
    `not reachable from here: ${notHere.join(", ")}`);
  return steps;
}

// Two users with two devices each on the session layer: device lists,
// fan-out to every device, routing, replay and tampering, a group over
// every device with a member removed, save and restore, safety numbers, and
// the layer's errors (each with its action where the layer decrypts).
function sessionsLayer(sotto, expect, bundleOf, log) {
  const { Device, PeerRecord, PeerRecords, GroupSession } = sotto;
  const failed = (kind, call) => expect(kind, call).action;
  const records = (...list) => {
    const set = new PeerRecords();
    for (const r of list) set.add(r);
    return set;
  };
  class LayerDevice {
    constructor(user, id) {
      this.user = user;
      this.id = id;
      this.device = Device.generate(NOW);
      this.identity = this.device.identityKey();
      this.own = PeerRecord.newOwn(enc(user), id, this.identity);
      this.records = new Map([[user, this.own]]);
    }
    get other() {
      return this.user === "alice" ? "bob" : "alice";
    }
  }
  const users = {
    alice: [new LayerDevice("alice", 1), new LayerDevice("alice", 2)],
    bob: [new LayerDevice("bob", 1), new LayerDevice("bob", 2)],
  };
  const everyone = [...users.alice, ...users.bob];
  const at = (user, id) => users[user].find((d) => d.id === id);
  const list = (user) => [users[user].map((d) => d.id), users[user].map((d) => d.identity)];
  for (const d of everyone) {
    d.records.set(d.other, new PeerRecord(enc(d.other), d.identity));
    for (const [user, record] of d.records) {
      const changes = record.updateDevices(...list(user), NOW);
      const expected = users[user].map((x) => x.id).filter((id) => !(user === d.user && id === d.id));
      assert(JSON.stringify(changes.added) === JSON.stringify(expected), `added ${changes.added}`);
    }
  }
  const send = (sender, user, payload) => {
    const record = sender.records.get(user);
    for (const id of record.planSend(NOW).needsBundle) {
      record.addBundle(sender.device, id, bundleOf(at(user, id).device), NOW);
    }
    const sent = record.encrypt(enc(payload));
    assert(sent.unusable.length === 0, "every device reached");
    const wires = new Map();
    for (const out of sent.messages) {
      const receiver = at(user, out.device);
      const got = receiver.records.get(sender.user).decrypt(receiver.device, sender.id, out.message, NOW);
      assert(got.kind === "Payload" && dec(got.payload) === payload, "payload");
      assert(equal(got.sender, sender.identity) && got.device === sender.id, "provenance");
      wires.set(out.device, out.message);
    }
    return wires;
  };
  const [a1, a2] = users.alice;
  const [b1, b2] = users.bob;
  for (const sender of everyone) {
    for (const user of ["alice", "bob"]) {
      const wires = send(sender, user, `hi from ${sender.user}`);
      assert(wires.size === (user === sender.user ? 1 : 2), "fan-out size");
    }
  }
  assert(JSON.stringify(Array.from(a1.records.get("bob").devices())) === "[1,2]", "devices");

  // Replayed and tampered messages, an unknown device: an action each.
  const wire = send(a1, "bob", "once").get(1);
  const atB1 = b1.records.get("alice");
  let action = failed("DuplicateMessage", () => atB1.decrypt(b1.device, 1, wire, NOW));
  assert(action.type === "Ignore" && action.reason === "Duplicate", "duplicate ignored");
  const tampered = a1.records.get("bob").encryptTo(1, enc("tampered"));
  const before = atB1.generation();
  failed("AuthenticationFailed",
    () => atB1.decrypt(b1.device, 1, flip(tampered, tampered.length - 20), NOW));
  assert(atB1.generation() === before, "nothing changed");
  action = failed("UnknownDevice", () => atB1.decrypt(b1.device, 9, wire, NOW));
  assert(action.type === "RetryLater" && action.reason === "UnknownDevice", "retry later");
  failed("Truncated", () => atB1.decrypt(b1.device, 1, wire.slice(0, 3), NOW));

  // A group of both users over every device; Bob is removed.
  const groupId = new Uint8Array(32).fill(9);
  for (const d of everyone) {
    d.group = new GroupSession(groupId, enc(d.user), d.device);
    assert(d.group.addMember(enc(d.other)), "new member");
  }
  const handOutAll = (sender, fanout) => {
    for (const { user, sent } of fanout) {
      assert(sent.unusable.length === 0, "every device reached");
      for (const out of sent.messages) {
        const receiver = at(dec(user), out.device);
        const record = receiver.records.get(sender.user);
        const got = record.decrypt(receiver.device, sender.id, out.message, NOW);
        assert(got.kind === "Distribution" && equal(got.groupId, groupId), "distribution");
        assert(receiver.group.install(record, got) === "added", "installed");
      }
    }
  };
  for (const d of everyone) handOutAll(d, d.group.distribute(records(d.own, d.records.get(d.other))));
  for (const d of everyone) assert(d.group.receiverCount() === 3, "three chains");
  const groupWire = a1.group.encrypt(enc("to the group"));
  for (const d of [a2, b1, b2]) {
    const read = d.group.decrypt(groupWire);
    assert(dec(read.bytes()) === "to the group" && equal(read.owner(), a1.identity) &&
      read.authenticated(), "group read");
  }
  action = failed("DuplicateMessage", () => b1.group.decrypt(groupWire));
  assert(action.type === "Ignore" && action.reason === "Duplicate", "group duplicate");
  expect("NotGroupMember",
    () => a1.group.distribute(records(a1.own, new PeerRecord(enc("carol"), a1.identity))));
  expect("InvalidArgument", () => a1.group.distribute(records(a1.own, a1.own)));
  for (const d of users.alice) {
    handOutAll(d, d.group.removeMember(d.device, enc("bob"), records(d.own)));
    assert(d.group.memberCount() === 1, "bob removed");
  }
  const aliceOnly = a1.group.encrypt(enc("alice only"));
  assert(dec(a2.group.decrypt(aliceOnly).bytes()) === "alice only", "alice reads");
  action = failed("UnknownGroupChain", () => b1.group.decrypt(aliceOnly));
  assert(action.type === "RetryLater" && action.reason === "MissingDistribution", "locked out");

  // Save and restore records and groups; the conversation goes on.
  for (const d of everyone) {
    for (const [user, record] of [...d.records]) {
      const context = enc(`${d.user}/${user}`);
      const restored = PeerRecord.unseal(record.seal(KEY, context), KEY, context);
      assert(equal(restored.toBytes(), record.toBytes()), "record restored");
      expect("AuthenticationFailed", () => PeerRecord.unseal(record.seal(KEY, context), KEY, enc("other")));
      d.records.set(user, restored);
    }
    d.own = d.records.get(d.user);
    d.group = GroupSession.unseal(d.group.seal(KEY, enc("group")), KEY, enc("group"));
  }
  send(b2, "alice", "after restore");
  assert(dec(a2.group.decrypt(a1.group.encrypt(enc("restored"))).bytes()) === "restored", "group restored");
  const old = GroupSession.fromBytes(a2.group.toBytes());
  a2.group.decrypt(a1.group.encrypt(enc("moves on")));
  assert(old.afterRestore(a2.device, a2.group.generation()), "stale copy detected");
  expect("WrongType", () => GroupSession.fromBytes(a1.own.toBytes()));

  // Safety numbers agree on both sides.
  const number = a1.records.get("bob").safetyNumber(a1.own);
  assert(number.replace(/ /g, "").length === 60, "60 digits");
  assert(b1.records.get("alice").safetyNumber(b1.own) === number, "same on both sides");
  assert(a2.records.get("bob").safetyNumber(a2.own) === number, "same on every device");

  // The layer's own errors.
  const record = a1.records.get("bob");
  const [ids, identities] = list("bob");
  expect("InvalidDeviceList", () => record.updateDevices([...ids, ...ids], [...identities, ...identities], NOW));
  expect("UnknownDevice", () => record.acknowledgeIdentity(7, b1.identity));
  const fresh = new PeerRecord(enc("bob"), a1.identity);
  fresh.updateDevices(ids, identities, NOW);
  expect("NoSession", () => fresh.encryptTo(1, enc("no session yet")));
  const b2New = Device.generate(NOW);
  const changes = record.updateDevices(ids, [identities[0], b2New.identityKey()], NOW);
  assert(JSON.stringify(changes.identityChanges.map((c) => c.device)) === "[2]", "identity change");
  expect("IdentityChangePending", () => record.encryptTo(2, enc("blocked")));
  assert(JSON.stringify(record.planSend(NOW).blocked) === "[2]", "blocked");
  expect("IdentityMismatch", () => record.acknowledgeIdentity(2, b1.identity));
  record.acknowledgeIdentity(2, b2New.identityKey());
  const rate = new PeerRecord(enc("bob"), a1.identity);
  rate.updateDevices(ids, identities, NOW);
  rate.addBundle(a1.device, 1, bundleOf(b1.device), NOW);
  const ratchetKey = new Uint8Array(32).fill(5);
  for (let i = 0; i < 8; i++) rate.requestRetry(1, ratchetKey, 3, undefined, NOW);
  expect("RecoveryRateLimited", () => rate.requestRetry(1, ratchetKey, 3, undefined, NOW));
  expect("InvalidArgument", () => rate.requestRetry(1, new Uint8Array(31), 0, undefined, NOW));
  const big = new GroupSession(groupId, enc("alice"), a1.device);
  for (let i = 0; i < 999; i++) big.addMember(enc(`member ${i}`));
  expect("TooManyGroupMembers", () => big.addMember(enc("one too many")));
  expect("InvalidEncoding", () => new PeerRecord(new Uint8Array(0), a1.identity));
  log("sessions: 2 users x 2 devices on the session layer: fan-out, routing, replay and " +
    "tamper, a group over every device with a removal, save and restore, safety numbers");
}
