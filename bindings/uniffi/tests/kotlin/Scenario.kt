// The bindings' scenario in Kotlin on the JVM, through the generated
// package `uniffi.sotto` (JNA). The same steps as
// tests/python/scenario.py and bindings/wasm/tests/scenario.mjs: two users
// with two devices each and a session between every pair; a group of the
// four with a removal; the session layer (records, fan-out, a group over
// every device); save and restore; tampered, replayed and forged
// messages and states; and every error a caller can reach, each checked to
// carry the C ABI's code (read from ffi/include/sotto.h, the first
// argument). Run by bindings/uniffi/test.sh.

import java.io.File
import uniffi.sotto.*

const val NOW: ULong = 1_700_000_000uL
val KEY = ByteArray(32) { it.toByte() }
val GROUP = ByteArray(32) { 7 }

// Byte layouts (SPEC.md), for the steps that forge wire and state bytes.
const val BUNDLE_OPK_FLAG = 2 + 32 + (102 - 2)
const val PREKEY_BASE_KEY_START = 34
const val PREKEY_BASE_KEY_END = 66
const val DISTRIBUTION_PROOF = 2 + 32 + 32 + 32
const val SENDER_INDEX = 2 + 8 + 32 + 32 + 32 + 64 + 64
const val MAX_PLAINTEXT_LEN = 262_144
const val MAX_MESSAGE_LEN = 263_866
const val MAX_BASE_KEYS = 1000
const val MAX_GROUP_RECEIVERS = 1024
const val GROUP_JUMP = 1 shl 24

// What Kotlin cannot provoke: an internal panic (poisoning), a failing
// operating-system RNG, and a core error without a code of its own.
val UNREACHABLE = setOf("HandlePoisoned", "Randomness", "ProtocolOther")

lateinit var codes: Map<String, Int>
val reached = mutableSetOf<String>()

fun check(condition: Boolean, what: String) {
    if (!condition) throw AssertionError("assertion failed: $what")
}

fun upperSnake(name: String) = name.replace(Regex("(?<!^)([A-Z])"), "_$1").uppercase()

/** `call` throws the `kind` variant of SottoException with the C ABI's code. */
fun expect(kind: String, call: () -> Any?) {
    try {
        call()
    } catch (e: SottoException) {
        val name = e.javaClass.simpleName
        check(name == kind, "expected $kind, got $name: ${e.message}")
        check(e.code() == codes[upperSnake(kind)], "$kind: code ${e.code()}")
        reached.add(kind)
        return
    }
    throw AssertionError("expected $kind, nothing thrown")
}

/** The code every variant carries. */
fun SottoException.code(): Int = this::class.java.getMethod("getCode").invoke(this) as Int

fun ByteArray.flip(offset: Int, mask: Int = 1): ByteArray =
    copyOf().also { it[offset] = (it[offset].toInt() xor mask).toByte() }

fun ByteArray.withIndex(index: Long): ByteArray = copyOf().also {
    for (i in 0 until 4) it[SENDER_INDEX + i] = (index shr (8 * (3 - i))).toByte()
}

fun String.bytes() = toByteArray()

class Member(val name: String) {
    val device = Device.generate(NOW)
    val sessions = mutableMapOf<String, Session>()
    lateinit var sender: GroupSender
    lateinit var store: GroupStore
    val identity: IdentityKey get() = device.identityKey()
}

fun bundleOf(device: Device, oneTime: Boolean = true, kem: String = "one-time"): PreKeyBundle {
    val otk = if (oneTime) device.generateOneTimePrekeys(1u)[0].bytes else null
    val kemPrekey = when (kem) {
        "one-time" -> device.generateOneTimeKemPrekeys(1u)[0].bytes
        "last-resort" -> device.lastResortKemPrekey().bytes
        else -> null
    }
    return PreKeyBundle(device.identityKey(), device.signedPrekey().bytes, otk, kemPrekey)
}

fun connect(x: Member, y: Member) {
    val bundle = bundleOf(y.device).verifyFor(y.identity)
    val toY = x.device.initiate(bundle)
    check(toY.keyAgreement() == KeyAgreement.PQXDH, "PQXDH")
    check(toY.role() == Role.INITIATOR && toY.isAwaitingReply(), "initiator awaiting reply")
    val first = toY.encrypt("hello ${y.name}".bytes())
    val info = messageInfo(first)
    check(info.kind == MessageKind.PRE_KEY && info.baseKey!!.contentEquals(toY.baseKey()), "info")
    check(info.senderIdentity == x.identity, "claimed sender")
    val accepted = y.device.accept(first)
    check(accepted.plaintext.bytes().contentEquals("hello ${y.name}".bytes()), "first plaintext")
    check(accepted.plaintext.sender() == x.identity, "first sender")
    val toX = accepted.session
    check(toX.role() == Role.RESPONDER && toX.remoteIdentity() == x.identity, "responder")
    val reply = toX.encrypt("hi ${x.name}".bytes())
    check(messageInfo(reply).kind == MessageKind.RATCHET, "ratchet message")
    check(toY.decrypt(reply).bytes().contentEquals("hi ${x.name}".bytes()), "reply")
    check(!toY.isAwaitingReply(), "reply received")
    x.sessions[y.name] = toY
    y.sessions[x.name] = toX
}

fun send(x: Member, y: Member, text: String): String =
    String(y.sessions[x.name]!!.decrypt(x.sessions[y.name]!!.encrypt(text.bytes())).bytes())

fun handOut(owner: Member, member: Member, distribution: ByteArray): InsertOutcome {
    val wire = owner.sessions[member.name]!!.encrypt(distribution)
    return member.store.receiveDistribution(member.sessions[owner.name]!!, wire)
}

fun pairwise(): List<Member> {
    val members = listOf("a1", "a2", "b1", "b2").map { Member(it) }
    for (i in members.indices) for (y in members.drop(i + 1)) connect(members[i], y)
    for (x in members) {
        check(x.sessions.size == 3, "three sessions")
        for (y in members) if (x !== y) check(send(x, y, "ping") == "ping", "ping")
    }
    println("pairwise: 4 devices of 2 users, 6 sessions, every direction")
    return members
}

fun conversation(a1: Member, b1: Member) {
    val toB = a1.sessions["b1"]!!
    val toA = b1.sessions["a1"]!!
    val wires = (0 until 3).map { toB.encrypt("m$it".bytes()) }
    check(listOf(2, 0, 1).map { String(toA.decrypt(wires[it]).bytes()) } == listOf("m2", "m0", "m1"),
        "out of order")
    val before = toA.generation()
    expect("DuplicateMessage") { toA.decrypt(wires[1]) }
    val wire = toB.encrypt("tamper".bytes())
    expect("AuthenticationFailed") { toA.decrypt(wire.flip(wire.size - 20)) }
    check(toA.generation() == before, "unchanged after refusals")
    check(String(toA.decrypt(wire).bytes()) == "tamper", "genuine after tampered")
    val other = a1.device.initiate(bundleOf(b1.device).verify())
    expect("SessionMismatch") { toA.decrypt(other.encrypt("x".bytes())) }
    val far = (0 until 1002).map { toB.encrypt("far".bytes()) }
    expect("TooFarAhead") { toA.decrypt(far[1001]) }
    check(String(toA.decrypt(far[999]).bytes()) == "far", "skipped 999")
    check(toA.skippedKeyCount() == 999uL, "999 skipped keys")
    expect("PlaintextTooLarge") { toB.encrypt(ByteArray(MAX_PLAINTEXT_LEN + 1)) }
    expect("TooLarge") { messageInfo(ByteArray(MAX_MESSAGE_LEN + 1) { 2 }) }
    expect("UnsupportedVersion") { toA.decrypt(wire.copyOf().also { it[0] = 1 }) }
    expect("Truncated") { toA.decrypt(wire.copyOf(3)) }
    println("conversation: out of order, replay, tamper, mismatch and bounds refused")
}

fun group(members: List<Member>) {
    val (a1, a2, b1, b2) = members
    for (m in members) {
        m.sender = GroupSender(m.device, GROUP)
        m.store = GroupStore(GROUP)
        check(m.store.isEmpty(), "empty store")
    }
    for (owner in members) for (m in members) if (m !== owner) {
        check(handOut(owner, m, owner.sender.distribution()) == InsertOutcome.ADDED, "added")
    }
    for (owner in members) {
        val wire = owner.sender.encrypt("from ${owner.name}".bytes())
        val info = groupMessageInfo(wire)
        check(info.groupId.contentEquals(GROUP) && info.chainId.contentEquals(owner.sender.chainId()),
            "group message info")
        for (m in members) if (m !== owner) {
            val read = m.store.decrypt(wire)
            check(String(read.bytes) == "from ${owner.name}", "group plaintext")
            check(read.owner == owner.identity && read.authenticated, "owner")
        }
        if (owner !== b1) expect("DuplicateMessage") { b1.store.decrypt(wire) }
    }
    check(a1.store.len() == 3uL, "three chains")
    val receiver = a1.store.receiver(b2.sender.chainId())!!
    check(receiver.owner == b2.identity && receiver.authenticated && receiver.nextIndex == 1u,
        "receiver info")

    val wire = a2.sender.encrypt("secret".bytes())
    expect("InvalidSignature") { a1.store.decrypt(wire.flip(wire.size - 1)) }
    expect("UnknownGroupChain") { a1.store.decrypt(wire.flip(2, 0xff)) }
    val before = a1.store.toBytes()
    val forwarded = b1.sessions["a1"]!!.encrypt(a2.sender.distribution())
    expect("GroupOwnerMismatch") { a1.store.receiveDistribution(a1.sessions["b1"]!!, forwarded) }
    check(a1.store.toBytes().contentEquals(before), "store unchanged")
    check(a1.sessions["b1"]!!.decrypt(forwarded).bytes().contentEquals(a2.sender.distribution()),
        "session unchanged")
    val state = a2.sender.toBytes()
    val forked = GroupSender.fromBytes(state.flip(state.size - 1))
    val forkWire = a2.sessions["a1"]!!.encrypt(forked.distribution())
    expect("GroupChainConflict") { a1.store.receiveDistribution(a1.sessions["a2"]!!, forkWire) }
    expect("InvalidSignature") {
        a1.store.importUnauthenticated(a2.sender.distribution().flip(DISTRIBUTION_PROOF))
    }
    check(a1.store.importUnauthenticated(a2.sender.distribution()) == InsertOutcome.UNCHANGED,
        "unchanged")
    expect("GroupIndexOutOfRange") {
        a1.store.decrypt(GroupSender.fromBytes(state.withIndex(GROUP_JUMP + 100L))
            .encrypt("jump".bytes()))
    }
    expect("ChainExhausted") {
        GroupSender.fromBytes(state.withIndex(0xffffffffL)).encrypt("last".bytes())
    }
    val other = GroupSender(a2.device, ByteArray(32))
    expect("GroupMismatch") { a1.store.importUnauthenticated(other.distribution()) }
    expect("UnknownGroupChain") { a1.store.decrypt(other.encrypt("elsewhere".bytes())) }
    expect("GroupOwnerMismatch") { a2.sender.rotate(a1.device) }
    expect("InvalidArgument") { GroupStore(ByteArray(31)) }
    expect("InvalidArgument") { a1.store.receiver(ByteArray(5)) }
    check(a1.store.toBytes().contentEquals(before), "store unchanged by refusals")
    check(String(a1.store.decrypt(wire).bytes) == "secret", "genuine after refusals")

    val carol = Member("c1")
    carol.sender = GroupSender(carol.device, GROUP)
    carol.store = GroupStore(GROUP)
    connect(a1, carol)
    check(a1.store.importUnauthenticated(carol.sender.distribution()) == InsertOutcome.ADDED, "import")
    check(!a1.store.decrypt(carol.sender.encrypt("claimed".bytes())).authenticated, "claimed")
    check(handOut(carol, a1, carol.sender.distribution()) == InsertOutcome.UPGRADED, "upgraded")
    check(a1.store.decrypt(carol.sender.encrypt("proven".bytes())).authenticated, "proven")
    check(a1.store.removeOwner(carol.identity) == 1uL, "carol removed")

    val remaining = listOf(a1, a2, b1)
    for (m in remaining) {
        check(m.store.removeOwner(b2.identity) == 1uL, "b2 removed")
        check(m.store.receiver(b2.sender.chainId()) == null, "b2's chain gone")
    }
    for (owner in remaining) {
        val old = owner.sender.chainId()
        val distribution = owner.sender.rotate(owner.device)
        check(!owner.sender.chainId().contentEquals(old) && owner.sender.index() == 0u, "rotated")
        for (m in remaining) if (m !== owner) {
            check(handOut(owner, m, distribution) == InsertOutcome.ADDED, "redistributed")
        }
    }
    val after = a1.sender.encrypt("without b2".bytes())
    check(String(a2.store.decrypt(after).bytes) == "without b2", "a2 reads")
    check(String(b1.store.decrypt(after).bytes) == "without b2", "b1 reads")
    expect("UnknownGroupChain") { b2.store.decrypt(after) }
    expect("UnknownGroupChain") { a1.store.decrypt(b2.sender.encrypt("still here?".bytes())) }
    println("group: 4 members, forged and forwarded keys refused, b2 removed and locked out")
}

/** One kind of saved state: its plain and sealed forms and how to restore them. */
class Kind(
    val name: String,
    val toBytes: () -> ByteArray,
    val generation: () -> ULong,
    val seal: (ByteArray, ByteArray) -> ByteArray,
    val fromBytes: (ByteArray) -> Pair<ByteArray, ULong>,
    val unseal: (ByteArray, ByteArray, ByteArray) -> Pair<ByteArray, ULong>,
)

fun persistence(members: List<Member>) {
    val (a1, a2, b1, _) = members
    val kinds = listOf(
        Kind("device", a1.device::toBytes, a1.device::generation, a1.device::seal,
            { b -> Device.fromBytes(b).let { it.toBytes() to it.generation() } },
            { s, k, c -> Device.unseal(s, k, c).let { it.toBytes() to it.generation() } }),
        a1.sessions["b1"]!!.let { s ->
            Kind("session", s::toBytes, s::generation, s::seal,
                { b -> Session.fromBytes(b).let { it.toBytes() to it.generation() } },
                { x, k, c -> Session.unseal(x, k, c).let { it.toBytes() to it.generation() } })
        },
        Kind("sender", a1.sender::toBytes, a1.sender::generation, a1.sender::seal,
            { b -> GroupSender.fromBytes(b).let { it.toBytes() to it.generation() } },
            { s, k, c -> GroupSender.unseal(s, k, c).let { it.toBytes() to it.generation() } }),
        Kind("store", a1.store::toBytes, a1.store::generation, a1.store::seal,
            { b -> GroupStore.fromBytes(b).let { it.toBytes() to it.generation() } },
            { s, k, c -> GroupStore.unseal(s, k, c).let { it.toBytes() to it.generation() } }),
    )
    for (kind in kinds) {
        val context = kind.name.bytes()
        val sealed = kind.seal(KEY, context)
        val (restored, generation) = kind.unseal(sealed, KEY, context)
        check(restored.contentEquals(kind.toBytes()), "${kind.name} restored")
        check(generation == kind.generation(), "${kind.name} generation")
        check(kind.fromBytes(kind.toBytes()).first.contentEquals(kind.toBytes()), "${kind.name} plain")
        expect("AuthenticationFailed") { kind.unseal(sealed, ByteArray(32), context) }
        expect("AuthenticationFailed") { kind.unseal(sealed, KEY, "another record".bytes()) }
        expect("AuthenticationFailed") { kind.unseal(sealed.flip(sealed.size / 2), KEY, context) }
        expect("InvalidArgument") { kind.seal(KEY.copyOf(31), context) }
        expect("InvalidArgument") { kind.unseal(sealed, KEY + byteArrayOf(0), context) }
        expect("TooLarge") { kind.seal(KEY, ByteArray(1025)) }
        val state = kind.toBytes()
        expect("Truncated") { kind.fromBytes(state.copyOf(state.size - 1)) }
        expect("TrailingBytes") { kind.fromBytes(state + byteArrayOf(0)) }
        expect("UnsupportedVersion") { kind.fromBytes(state.flip(0, 0x7f)) }
    }
    expect("WrongType") { Device.fromBytes(a1.sessions["b1"]!!.toBytes()) }
    expect("WrongType") { Session.unseal(a1.sender.seal(KEY, "x".bytes()), KEY, "x".bytes()) }

    val toB = Session.unseal(a1.sessions["b1"]!!.seal(KEY, "a1/b1".bytes()), KEY, "a1/b1".bytes())
    val toA = Session.fromBytes(b1.sessions["a1"]!!.toBytes())
    check(String(toA.decrypt(toB.encrypt("after restore".bytes())).bytes()) == "after restore",
        "conversation after restore")
    a1.store = GroupStore.unseal(a1.store.seal(KEY, "store".bytes()), KEY, "store".bytes())
    check(String(a1.store.decrypt(a2.sender.encrypt("restored store".bytes())).bytes) ==
        "restored store", "restored store reads")

    check(String(toB.decrypt(toA.encrypt("your turn".bytes())).bytes()) == "your turn", "turn")
    val old = toB.toBytes()
    check(String(toA.decrypt(toB.encrypt("new key".bytes())).bytes()) == "new key", "new key")
    val rolledBack = Session.fromBytes(old)
    check(rolledBack.generation() < toB.generation(), "older generation")
    expect("SessionDiverged") { toA.decrypt(rolledBack.encrypt("after a rollback".bytes())) }

    val backup = b1.device.toBytes()
    val replayable = a2.device.initiate(bundleOf(b1.device, oneTime = false, kem = "last-resort")
        .verify()).encrypt("once".bytes())
    b1.device.accept(replayable)
    val latest = b1.device.generation()
    val restored = Device.fromBytes(backup)
    check(restored.generation() < latest, "backup is older")
    val reset = restored.resetPrekeysAfterRestore(NOW + 3uL, latest)
    check(restored.generation() == latest + 1uL, "generation moved past")
    check(reset.signedPrekey.id == restored.signedPrekey().id, "new signed prekey")
    check(prekeyId(reset.kemPrekey.bytes) == reset.kemPrekey.id, "new KEM prekey")
    expect("UnknownSignedPrekey") { restored.accept(replayable) }
    println("persistence: 4 kinds sealed and restored, rollback diverges, restore resets")
}

fun prekeys() {
    val alice = Device.generate(NOW)
    val bob = Device.generate(NOW)
    val aliceId = alice.identityKey()
    val bobId = bob.identityKey()
    check(IdentityKey.fromBytes(bobId.toBytes()) == bobId && bobId != aliceId, "identity equality")
    check(bobId.fingerprint().size == 32 && bobId.fingerprintText().length == 71, "fingerprint")
    expect("TrailingBytes") { IdentityKey.fromBytes(bobId.toBytes() + byteArrayOf(0)) }
    expect("InvalidPublicKey") {
        IdentityKey.fromBytes(bobId.toBytes().copyOf(2) + ByteArray(32) { -1 })
    }

    val spk = bob.rotateSignedPrekey(NOW + 1uL)
    check(bob.signedPrekeys().map { it.id } == listOf(1u, 2u) && spk.id == 2u, "rotated")
    check(prekeyId(spk.bytes) == 2u, "prekey id")
    expect("UnknownSignedPrekey") { bob.removeSignedPrekey(2u) }
    bob.removeSignedPrekey(1u)
    val kem = bob.rotateLastResortKemPrekey(NOW + 1uL)
    check(bob.lastResortKemPrekeys().last().id == kem.id, "KEM rotated")
    expect("UnknownKemPrekey") { bob.removeLastResortKemPrekey(kem.id) }
    bob.removeLastResortKemPrekey(1u)
    expect("TooManyPrekeys") { bob.generateOneTimePrekeys(1001u) }
    expect("TooManyPrekeys") { bob.generateOneTimeKemPrekeys(101u) }
    check(bob.oneTimePrekeyCount() == 0uL && bob.oneTimeKemPrekeyCount() == 0uL, "no prekeys")
    expect("WrongType") { prekeyId(bobId.toBytes()) }

    val bundle = bundleOf(bob)
    check(PreKeyBundle.fromBytes(bundle.toBytes()).toBytes().contentEquals(bundle.toBytes()), "bundle")
    check(bundle.identity() == bobId && bundle.hasKemPrekey(), "bundle parts")
    expect("InvalidSignature") {
        PreKeyBundle.fromBytes(bundle.toBytes().flip(2 + 32 + 4 + 32 + 5, 0x40)).verify()
    }
    expect("InvalidEncoding") {
        PreKeyBundle.fromBytes(bundle.toBytes().also { it[BUNDLE_OPK_FLAG] = 2 })
    }
    expect("IdentityMismatch") { bundle.verifyFor(aliceId) }

    val verified = bundle.verifyFor(bobId)
    val first = alice.initiate(verified).encrypt("hello".bytes())
    expect("NonContributoryKey") {
        bob.accept(first.copyOf().also { it.fill(0, PREKEY_BASE_KEY_START, PREKEY_BASE_KEY_END) })
    }
    expect("InvalidPublicKey") { bob.accept(first.flip(PREKEY_BASE_KEY_END - 1, 0x80)) }
    val accepted = bob.accept(first)
    check(String(accepted.plaintext.bytes()) == "hello", "hello")
    expect("UnknownOneTimePrekey") { bob.accept(alice.initiate(verified).encrypt("again".bytes())) }
    val noOtk = PreKeyBundle(bobId, bob.signedPrekey().bytes, null,
        bob.generateOneTimeKemPrekeys(1u)[0].bytes).verify()
    bob.accept(alice.initiate(noOtk).encrypt("kem once".bytes()))
    expect("UnknownKemPrekey") { bob.accept(alice.initiate(noOtk).encrypt("kem twice".bytes())) }

    val classical = PreKeyBundle(bobId, bob.signedPrekey().bytes, null, null).verify()
    check(!classical.hasKemPrekey(), "no KEM prekey")
    expect("PostQuantumRequired") { alice.initiate(classical) }
    val x3dh = alice.initiateAllowClassical(classical)
    check(x3dh.keyAgreement() == KeyAgreement.X3DH, "X3DH")
    val x3dhFirst = x3dh.encrypt("classical".bytes())
    expect("PostQuantumRequired") { bob.accept(x3dhFirst) }
    check(String(bob.acceptAllowClassical(x3dhFirst).plaintext.bytes()) == "classical", "classical")
    expect("DuplicatePrekeyMessage") { bob.acceptAllowClassical(x3dhFirst) }
    expect("WrongType") { bob.accept(accepted.session.encrypt("ratchet, not prekey".bytes())) }
    println("prekeys: rotation, removal, bounds, forged bundles and handshakes refused")
}

fun bounds() {
    val alice = Device.generate(NOW)
    val dave = Device.generate(NOW)
    val classical = PreKeyBundle(dave.identityKey(), dave.signedPrekey().bytes, null, null).verify()
    val pending = (0..MAX_BASE_KEYS).map {
        alice.initiateAllowClassical(classical).use { it.encrypt("x".bytes()) }
    }
    for (wire in pending.take(MAX_BASE_KEYS)) {
        dave.acceptAllowClassical(wire).let { it.session.destroy(); it.plaintext.destroy() }
    }
    check(dave.signedPrekeys()[0].baseKeyCount == MAX_BASE_KEYS.toULong(), "base keys recorded")
    expect("SignedPrekeyExhausted") { dave.acceptAllowClassical(pending[MAX_BASE_KEYS]) }

    val erin = Member("e1")
    erin.store = GroupStore(GROUP)
    val bundle = PreKeyBundle(erin.identity, erin.device.signedPrekey().bytes, null, null).verify()
    for (i in 0 until MAX_GROUP_RECEIVERS / 4) {
        val owner = Member("o$i")
        owner.sender = GroupSender(owner.device, GROUP)
        owner.sessions["e1"] = owner.device.initiateAllowClassical(bundle)
        erin.sessions[owner.name] =
            erin.device.acceptAllowClassical(owner.sessions["e1"]!!.encrypt("hi".bytes())).session
        for (j in 0 until 4) {
            val distribution =
                if (j > 0) owner.sender.rotate(owner.device) else owner.sender.distribution()
            check(handOut(owner, erin, distribution) == InsertOutcome.ADDED, "chain added")
        }
    }
    check(erin.store.len() == MAX_GROUP_RECEIVERS.toULong(), "store full")
    val stranger = GroupSender(Device.generate(NOW), GROUP)
    expect("GroupStoreFull") { erin.store.importUnauthenticated(stranger.distribution()) }
    println("bounds: signed prekey exhausted after $MAX_BASE_KEYS handshakes, " +
        "store of $MAX_GROUP_RECEIVERS chains full")
}

/** `call` throws DecryptFailure.Failed for `kind` with the C ABI's code; returns its action. */
fun failed(kind: String, call: () -> Any?): Action {
    try {
        call()
    } catch (e: DecryptFailure.Failed) {
        check(e.kind == kind, "expected $kind, got ${e.kind}: ${e.message}")
        check(e.code == codes[upperSnake(kind)], "$kind: code ${e.code}")
        reached.add(kind)
        return e.action
    }
    throw AssertionError("expected a DecryptFailure of $kind, nothing thrown")
}

/** A device on the session layer: its own record, a record of the other user, its group view. */
class LayerDevice(val user: String, val id: UInt) {
    val device = Device.generate(NOW)
    val identity: IdentityKey = device.identityKey()
    var own = PeerRecord.newOwn(user.bytes(), id, identity)
    val records = mutableMapOf(user to own)
    lateinit var group: GroupSession
    val other get() = if (user == "alice") "bob" else "alice"
}

fun sessionsLayer() {
    val users = mapOf("alice" to listOf(LayerDevice("alice", 1u), LayerDevice("alice", 2u)),
        "bob" to listOf(LayerDevice("bob", 1u), LayerDevice("bob", 2u)))
    val listing = users.mapValues { (_, ds) -> ds.map { DeviceEntry(it.id, it.identity) } }
    val everyone = users.values.flatten()
    fun at(user: String, device: UInt) = users[user]!!.first { it.id == device }
    for (d in everyone) {
        d.records[d.other] = PeerRecord(d.other.bytes(), d.identity)
        for ((user, record) in d.records) {
            val changes = record.updateDevices(listing[user]!!, NOW)
            val expected = listing[user]!!.map { it.device }.filter { !(user == d.user && it == d.id) }
            check(changes.added == expected, "added ${changes.added}")
        }
    }

    fun send(sender: LayerDevice, user: String, payload: String): Map<UInt, ByteArray> {
        val record = sender.records[user]!!
        for (device in record.planSend(NOW).needsBundle) {
            record.addBundle(sender.device, device, bundleOf(at(user, device).device), NOW)
        }
        val sent = record.encrypt(payload.bytes())
        check(sent.unusable.isEmpty(), "every device reached")
        return sent.messages.associate { out ->
            val receiver = at(user, out.device)
            val got = receiver.records[sender.user]!!.decrypt(receiver.device, sender.id, out.message, NOW)
            check(got.kind() == ContentKind.PAYLOAD && String(got.payload()!!) == payload, "payload")
            check(got.sender() == sender.identity && got.device() == sender.id, "provenance")
            out.device to out.message
        }
    }

    val (a1, a2) = users["alice"]!!
    val (b1, b2) = users["bob"]!!
    for (sender in everyone) for (user in users.keys) {
        val wires = send(sender, user, "hi from ${sender.user}")
        check(wires.size == if (user == sender.user) 1 else 2, "fan-out size")
    }
    check(a1.records["bob"]!!.devices().map { it.device } == listOf(1u, 2u), "devices")

    // Replayed and tampered messages, an unknown device: an action each.
    val wire = send(a1, "bob", "once")[1u]!!
    val atB1 = b1.records["alice"]!!
    check(failed("DuplicateMessage") { atB1.decrypt(b1.device, 1u, wire, NOW) } ==
        Action.Ignore(IgnoreReason.DUPLICATE), "duplicate ignored")
    val tampered = a1.records["bob"]!!.encryptTo(1u, "tampered".bytes())
    val before = atB1.generation()
    failed("AuthenticationFailed") { atB1.decrypt(b1.device, 1u, tampered.flip(tampered.size - 20), NOW) }
    check(atB1.generation() == before, "nothing changed")
    check(failed("UnknownDevice") { atB1.decrypt(b1.device, 9u, wire, NOW) } ==
        Action.RetryLater(RetryLaterReason.UNKNOWN_DEVICE), "retry later")
    failed("Truncated") { atB1.decrypt(b1.device, 1u, wire.copyOf(3), NOW) }

    // A group of both users over every device; Bob is removed.
    val groupId = ByteArray(32) { 9 }
    for (d in everyone) {
        d.group = GroupSession(groupId, d.user.bytes(), d.device)
        check(d.group.addMember(d.other.bytes()), "new member")
    }
    fun handOut(sender: LayerDevice, fanout: List<UserSent>) {
        for (userSent in fanout) {
            check(userSent.sent.unusable.isEmpty(), "every device reached")
            for (out in userSent.sent.messages) {
                val receiver = at(String(userSent.user), out.device)
                val record = receiver.records[sender.user]!!
                val got = record.decrypt(receiver.device, sender.id, out.message, NOW)
                check(got.kind() == ContentKind.DISTRIBUTION && got.groupId()!!.contentEquals(groupId), "distribution")
                check(receiver.group.install(record, got) == InsertOutcome.ADDED, "installed")
            }
        }
    }
    for (d in everyone) handOut(d, d.group.distribute(listOf(d.own, d.records[d.other]!!)))
    for (d in everyone) check(d.group.receiverCount() == 3uL, "three chains")
    val groupWire = a1.group.encrypt("to the group".bytes())
    for (d in listOf(a2, b1, b2)) {
        val read = d.group.decrypt(groupWire)
        check(String(read.bytes) == "to the group" && read.owner == a1.identity && read.authenticated, "group read")
    }
    check(failed("DuplicateMessage") { b1.group.decrypt(groupWire) } == Action.Ignore(IgnoreReason.DUPLICATE), "dup")
    expect("NotGroupMember") { a1.group.distribute(listOf(a1.own, PeerRecord("carol".bytes(), a1.identity))) }
    expect("InvalidArgument") { a1.group.distribute(listOf(a1.own, a1.own)) }
    for (d in users["alice"]!!) {
        handOut(d, d.group.removeMember(d.device, "bob".bytes(), listOf(d.own)))
        check(d.group.members().map { String(it) } == listOf("alice"), "bob removed")
    }
    val aliceOnly = a1.group.encrypt("alice only".bytes())
    check(String(a2.group.decrypt(aliceOnly).bytes) == "alice only", "alice reads")
    check(failed("UnknownGroupChain") { b1.group.decrypt(aliceOnly) } ==
        Action.RetryLater(RetryLaterReason.MISSING_DISTRIBUTION), "bob locked out")

    // Save and restore records and groups; the conversation goes on.
    for (d in everyone) {
        for ((user, record) in d.records.toMap()) {
            val context = "${d.user}/$user".bytes()
            val restored = PeerRecord.unseal(record.seal(KEY, context), KEY, context)
            check(restored.toBytes().contentEquals(record.toBytes()), "record restored")
            expect("AuthenticationFailed") { PeerRecord.unseal(record.seal(KEY, context), KEY, "other".bytes()) }
            d.records[user] = restored
        }
        d.own = d.records[d.user]!!
        d.group = GroupSession.unseal(d.group.seal(KEY, "group".bytes()), KEY, "group".bytes())
    }
    send(b2, "alice", "after restore")
    check(String(a2.group.decrypt(a1.group.encrypt("restored group".bytes())).bytes) == "restored group", "group restored")
    val old = GroupSession.fromBytes(a2.group.toBytes())
    a2.group.decrypt(a1.group.encrypt("moves on".bytes()))
    check(old.afterRestore(a2.device, a2.group.generation()), "stale copy detected")
    expect("WrongType") { GroupSession.fromBytes(a1.own.toBytes()) }

    // Safety numbers agree on both sides.
    val number = a1.records["bob"]!!.safetyNumber(a1.own)
    check(number.replace(" ", "").length == 60, "60 digits")
    check(b1.records["alice"]!!.safetyNumber(b1.own) == number, "same on both sides")
    check(a2.records["bob"]!!.safetyNumber(a2.own) == number, "same on every device")

    // The layer's own errors.
    val record = a1.records["bob"]!!
    expect("InvalidDeviceList") { record.updateDevices(listing["bob"]!! + listing["bob"]!!, NOW) }
    expect("UnknownDevice") { record.acknowledgeIdentity(7u, b1.identity) }
    val fresh = PeerRecord("bob".bytes(), a1.identity)
    fresh.updateDevices(listing["bob"]!!, NOW)
    expect("NoSession") { fresh.encryptTo(1u, "no session yet".bytes()) }
    val b2New = Device.generate(NOW)
    val changes = record.updateDevices(listOf(listing["bob"]!![0], DeviceEntry(2u, b2New.identityKey())), NOW)
    check(changes.identityChanges.map { it.device } == listOf(2u), "identity change reported")
    expect("IdentityChangePending") { record.encryptTo(2u, "blocked".bytes()) }
    check(record.planSend(NOW).blocked == listOf(2u), "blocked")
    expect("IdentityMismatch") { record.acknowledgeIdentity(2u, b1.identity) }
    record.acknowledgeIdentity(2u, b2New.identityKey())
    val rate = PeerRecord("bob".bytes(), a1.identity)
    rate.updateDevices(listing["bob"]!!, NOW)
    rate.addBundle(a1.device, 1u, bundleOf(b1.device), NOW)
    val hint = RetryHint(ByteArray(32) { 5 }, 3u, null)
    repeat(8) { rate.requestRetry(1u, hint, NOW) }
    expect("RecoveryRateLimited") { rate.requestRetry(1u, hint, NOW) }
    expect("InvalidArgument") { rate.requestRetry(1u, RetryHint(ByteArray(31), 0u, null), NOW) }
    val big = GroupSession(groupId, "alice".bytes(), a1.device)
    for (i in 0 until 999) big.addMember("member $i".bytes())
    expect("TooManyGroupMembers") { big.addMember("one too many".bytes()) }
    expect("InvalidEncoding") { PeerRecord(ByteArray(0), a1.identity) }
    println("sessions: 2 users x 2 devices on the session layer: fan-out, routing, replay and " +
        "tamper, a group over every device with a removal, save and restore, safety numbers")
}

fun main(args: Array<String>) {
    codes = Regex("SOTTO_ERROR_([A-Z_]+) = (\\d+)").findAll(File(args[0]).readText())
        .associate { it.groupValues[1] to it.groupValues[2].toInt() }
    val members = pairwise()
    conversation(members[0], members[2])
    group(members)
    persistence(members)
    prekeys()
    bounds()
    sessionsLayer()
    val every = SottoException::class.java.declaredClasses
        .filter { SottoException::class.java.isAssignableFrom(it) }
        .map { it.simpleName }.toSet()
    check(every.size >= 30, "error variants found: $every")
    val missing = every - reached - UNREACHABLE
    check(missing.isEmpty(), "errors never provoked: ${missing.sorted()}")
    println("errors: ${reached.size} of ${every.size} provoked, each with the C ABI's code; " +
        "not reachable from here: ${UNREACHABLE.sorted().joinToString()}")
    println("7 passed, 0 failed")
}
