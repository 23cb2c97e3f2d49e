#!/usr/bin/env bash
# Builds every cargo-fuzz target and runs each for a bounded time on stable
# (no sanitizer), starting from the committed seeds. Fails if any target
# finds a crash; prints executions per target. Twelve targets at
# FUZZ_SECONDS=15 (the default): about 3.5 minutes warm on 2 cores, plus
# about 3 minutes to install cargo-fuzz and build on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-15}"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi

targets=$(cargo fuzz list)
cargo fuzz build -s none

failed=()
report=()
for t in $targets; do
    mkdir -p "fuzz/corpus/$t"
    log="fuzz/artifacts/$t.log"
    mkdir -p fuzz/artifacts
    if cargo fuzz run -s none "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
        status=ok
    else
        status=FAILED
        failed+=("$t")
        tail -n 40 "$log"
    fi
    runs=$(grep -o 'Done [0-9]* runs' "$log" | grep -o '[0-9]*' || echo "?")
    report+=("$(printf '%-18s %10s executions in %ss  %s' "$t" "$runs" "$seconds" "$status")")
done

printf '%s\n' "${report[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz targets failed: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
    exit 1
fi
