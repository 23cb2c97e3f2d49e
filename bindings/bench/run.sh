#!/usr/bin/env bash
# The bindings' call overhead, in one run: a 100-byte encrypt and a
# near-empty call (`generation`) directly in Rust (criterion,
# benches/benches/bindings.rs), then through Python, Kotlin on the JVM and
# the WebAssembly package under Node.js, each with its own timer (bench.py,
# Bench.kt, bench.mjs). report.py writes the table to
# bindings/bench/overhead.md and into BENCHMARKS.md. Not run in CI (it
# times things); needs the tools .ci/bindings.sh installs (KOTLINC,
# JNA_JAR, WASM_BINDGEN, WASM_OPT as there).
#
# The uniffi library is built in release (as an app would ship it); the
# WebAssembly package is the size-optimised one build.sh makes and CI
# checks.
set -euo pipefail
cd "$(dirname "$0")/../.."
target_dir="${CARGO_TARGET_DIR:-target}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

cargo build --quiet --release -p sotto-uniffi --lib
bash bindings/wasm/build.sh
lib="$target_dir/release/libsotto_uniffi.so"

echo "bench: Rust (criterion)"
rm -rf "$target_dir/criterion/bindings" "$target_dir/criterion/bindings-cpu"
cargo bench --quiet -p sotto-bench --bench bindings -- --warm-up-time 1 --measurement-time 3 \
    | grep -E '^bindings|time:' || true

echo "bench: Python"
mkdir -p "$out/python"
cp bindings/uniffi/generated/python/sotto.py "$lib" "$out/python/"
PYTHONPATH="$out/python" python3 bindings/bench/bench.py | tee "$out/python.json"

echo "bench: Kotlin/JVM"
kotlinc="${KOTLINC:-$(command -v kotlinc)}"
jna="${JNA_JAR:-/usr/share/java/jna.jar}"
"$kotlinc" -nowarn -classpath "$jna" -d "$out/bench.jar" \
    bindings/uniffi/generated/kotlin/uniffi/sotto/sotto.kt bindings/bench/Bench.kt 2>&1 \
    | { grep -v '^warning:' || true; }
java -Djna.library.path="$(dirname "$lib")" \
    -cp "$out/bench.jar:$jna:$(dirname "$kotlinc")/../lib/kotlin-stdlib.jar" \
    BenchKt | tee "$out/kotlin.json"

echo "bench: WebAssembly (Node.js)"
node bindings/bench/bench.mjs "$target_dir/wasm-pkg" | tee "$out/wasm.json"

python3 bindings/bench/report.py "$target_dir/criterion" "$out/python.json" "$out/kotlin.json" \
    "$out/wasm.json"
