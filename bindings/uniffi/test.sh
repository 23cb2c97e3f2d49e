#!/usr/bin/env bash
# Runs the scenario in Python and in Kotlin on the JVM against the
# committed generated bindings and the library built by generate.sh
# (target/debug/libsotto_uniffi.so).
#
# Kotlin needs KOTLINC (the npm package kotlin-compiler's kotlinc, or one on
# PATH) and JNA (Debian libjna-java: /usr/share/java/jna.jar); .ci/bindings.sh
# installs both.
set -euo pipefail
cd "$(dirname "$0")/../.."
target_dir="${CARGO_TARGET_DIR:-target}"
lib="$target_dir/debug/libsotto_uniffi.so"
generated=bindings/uniffi/generated
header=ffi/include/sotto.h
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "bindings: Python scenario"
mkdir -p "$work/python"
cp "$generated/python/sotto.py" "$lib" "$work/python/"
PYTHONPATH="$work/python" python3 bindings/uniffi/tests/python/scenario.py | sed 's/^/python: /'

echo "bindings: Kotlin scenario (JVM)"
kotlinc="${KOTLINC:-$(command -v kotlinc || true)}"
jna="${JNA_JAR:-/usr/share/java/jna.jar}"
if [[ -z "$kotlinc" || ! -f "$jna" ]]; then
    echo "bindings: kotlinc or $jna missing (run .ci/bindings.sh)" >&2
    exit 1
fi
"$kotlinc" -nowarn -classpath "$jna" -d "$work/scenario.jar" \
    "$generated/kotlin/uniffi/sotto/sotto.kt" bindings/uniffi/tests/kotlin/Scenario.kt 2>&1 \
    | { grep -v '^warning:' || true; }
java -Djna.library.path="$(dirname "$lib")" \
    -cp "$work/scenario.jar:$jna:$(dirname "$kotlinc")/../lib/kotlin-stdlib.jar" \
    ScenarioKt "$header" | sed 's/^/kotlin: /'
