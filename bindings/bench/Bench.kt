// Times a 100-byte encrypt and a near-empty call (`generation`) through the
// Kotlin bindings on the JVM, with the JVM's own timers: the median over
// ROUNDS rounds of CALLS calls each, in nanoseconds per call, of wall time
// (System.nanoTime) and of the thread's CPU time (ThreadMXBean, which a
// shared machine's load does not inflate), after a warm-up long enough for
// the JIT. Prints one JSON line. Run by bindings/bench/run.sh.
import java.lang.management.ManagementFactory
import uniffi.sotto.Device
import uniffi.sotto.PreKeyBundle
import uniffi.sotto.Session

const val ROUNDS = 30
const val CALLS = 5000
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

fun perCall(call: () -> Unit): String {
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
    return """{"wall": ${median(wall)}, "cpu": ${median(cpu)}}"""
}

fun main() {
    val session = established()
    val plaintext = ByteArray(100) { 0x42 }
    var sink = 0L
    val encrypt = perCall { sink += session.encrypt(plaintext).size }
    val generation = perCall { sink += session.generation().toLong() }
    check(sink != 0L)
    val java = System.getProperty("java.version")
    println("""{"language": "Kotlin/JVM (Java $java)", "encrypt100": $encrypt, "generation": $generation}""")
}
