// Times a 100-byte encrypt and a near-empty call (`generation`) through the
// Kotlin bindings on the JVM, with the JVM's own timers: the median over
// ROUNDS rounds of CALLS calls each, in nanoseconds per call, of wall time
// (System.nanoTime) and of the thread's CPU time (ThreadMXBean, which a
// shared machine's load does not inflate), after a warm-up long enough for
// the JIT. Prints one JSON line. Run by bindings/bench/run.sh.
//
// Also the parts of a call, through the generated file's own helpers (what
// its `encrypt` runs, piece by piece; compiled with it, so its internal
// declarations are visible): a foreign call that does nothing in Rust
// (cloning and freeing the object's handle: two calls), a RustBuffer
// allocated and freed (two calls), 100 bytes lowered into a RustBuffer and
// freed; and the two calls that cut the overhead: `encryptBorrowed` (the
// plaintext in a direct buffer, without a RustBuffer) and a batch of BATCH
// encrypts in one call (`encryptBatch`), per message.
import java.lang.management.ManagementFactory
import uniffi.sotto.Device
import uniffi.sotto.FfiConverterByteArray
import uniffi.sotto.PreKeyBundle
import uniffi.sotto.RustBuffer
import uniffi.sotto.Session
import uniffi.sotto.UniffiLib
import uniffi.sotto.UniffiRustCallStatus

const val ROUNDS = 30
const val CALLS = 5000
const val BATCH = 16
const val NOW = 1_700_000_000UL

fun established(): Session {
    val alice = Device.generate(NOW)
    val bob = Device.generate(NOW)
    val bundle = PreKeyBundle(bob.identityKey(), bob.signedPrekey().bytes, null,
        bob.lastResortKemPrekey().bytes).verify()
    val toBob = alice.initiate(bundle)
    val accepted = bob.accept(toBob.encrypt("hi".toByteArray()))
    toBob.decrypt(accepted.session.encrypt("hello".toByteArray()))
    check(!toBob.isAwaitingReply())
    return toBob
}

fun median(values: DoubleArray): Double {
    values.sort()
    return (values[ROUNDS / 2 - 1] + values[ROUNDS / 2]) / 2
}

fun perCall(divide: Int = 1, call: () -> Unit): String {
    val threads = ManagementFactory.getThreadMXBean()
    repeat(20 * CALLS) { call() } // warm-up: JIT
    val wall = DoubleArray(ROUNDS)
    val cpu = DoubleArray(ROUNDS)
    for (r in 0 until ROUNDS) {
        val start = System.nanoTime()
        val startCpu = threads.currentThreadCpuTime
        repeat(CALLS) { call() }
        cpu[r] = (threads.currentThreadCpuTime - startCpu).toDouble() / CALLS
        wall[r] = (System.nanoTime() - start).toDouble() / CALLS
    }
    return """{"wall": ${median(wall) / divide}, "cpu": ${median(cpu) / divide}}"""
}

fun main() {
    val session = established()
    val plaintext = ByteArray(100) { 0x42 }
    var sink = 0L
    val encrypt = perCall { sink += session.encrypt(plaintext).size }
    val generation = perCall { sink += session.generation().toLong() }
    val crossing = perCall(2) {
        UniffiLib.uniffi_sotto_uniffi_fn_free_session(session.uniffiCloneHandle(), UniffiRustCallStatus())
    }
    val buffer = perCall { RustBuffer.free(RustBuffer.alloc(16UL)) }
    val lower = perCall { RustBuffer.free(FfiConverterByteArray.lower(plaintext)) }
    val direct = java.nio.ByteBuffer.allocateDirect(plaintext.size).put(plaintext).flip() as java.nio.ByteBuffer
    val borrowed = perCall { sink += session.encryptBorrowed(direct).size }
    val batch = List(BATCH) { plaintext }
    val batched = perCall(BATCH) { sink += session.encryptBatch(batch).size }
    check(sink != 0L)
    val java = System.getProperty("java.version")
    val parts = """{"encrypt100_borrowed": $borrowed, "crossing": $crossing, "buffer": $buffer, "lower100": $lower, "batch": $BATCH, """ +
        // The generated `encrypt`: clone the handle, allocate a RustBuffer
        // (sized in advance), the call, free the result.
        """"calls_per_encrypt": 4, """ +
        """"encrypt100_batched": $batched}"""
    println("""{"language": "Kotlin/JVM (Java $java)", "encrypt100": $encrypt, "generation": $generation, """ +
        """"parts": $parts}""")
}
