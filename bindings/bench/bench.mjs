// Times a 100-byte encrypt and a near-empty call (`generation`) through the
// WebAssembly package under Node.js, with its own timers: the median over
// ROUNDS rounds of CALLS calls each, in nanoseconds per call, of wall time
// (process.hrtime.bigint) and of the process's CPU time
// (process.cpuUsage, which a shared machine's load does not inflate).
// Prints one JSON line. Run by bindings/bench/run.sh: node bench.mjs <pkg
// dir>.
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const ROUNDS = 30;
const CALLS = 2000;
const NOW = 1_700_000_000n;
const pkg = resolve(process.argv[2]);
const sotto = await import(pathToFileURL(join(pkg, "sotto_wasm.js")).href);
sotto.initSync({ module: readFileSync(join(pkg, "sotto_wasm_bg.wasm")) });

function established() {
  const alice = sotto.Device.generate(NOW);
  const bob = sotto.Device.generate(NOW);
  const bundle = new sotto.PreKeyBundle(bob.identityKey(), bob.signedPrekey(), undefined,
    bob.lastResortKemPrekey()).verify();
  const toBob = alice.initiate(bundle);
  const toAlice = bob.accept(toBob.encrypt(new TextEncoder().encode("hi"))).takeSession();
  toBob.decrypt(toAlice.encrypt(new TextEncoder().encode("hello")));
  if (toBob.isAwaitingReply()) throw new Error("still awaiting a reply");
  return toBob;
}

function median(values) {
  values.sort((a, b) => a - b);
  return (values[ROUNDS / 2 - 1] + values[ROUNDS / 2]) / 2;
}

function perCall(call) {
  for (let i = 0; i < 5 * CALLS; i++) call();
  const wall = [];
  const cpu = [];
  for (let r = 0; r < ROUNDS; r++) {
    const start = process.hrtime.bigint();
    const startCpu = process.cpuUsage();
    for (let i = 0; i < CALLS; i++) call();
    const used = process.cpuUsage(startCpu);
    cpu.push(((used.user + used.system) * 1000) / CALLS);
    wall.push(Number(process.hrtime.bigint() - start) / CALLS);
  }
  return { wall: median(wall), cpu: median(cpu) };
}

const session = established();
const plaintext = new Uint8Array(100).fill(0x42);
let sink = 0;
const encrypt100 = perCall(() => { sink += session.encrypt(plaintext).length; });
const generation = perCall(() => { sink += Number(session.generation()); });
if (sink === 0) throw new Error("nothing measured");
console.log(JSON.stringify({ language: `WebAssembly (Node.js ${process.version})`, encrypt100, generation }));
