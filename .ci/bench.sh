#!/usr/bin/env bash
# Builds the criterion benchmarks, with vodozemac as the peer, and runs each
# once in criterion's test mode (no measurement), so that they keep compiling
# and their setup (states parsed by field, fixtures) keeps working. Measuring
# is a manual step (BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench -p sotto-bench --features vodozemac --no-run
cargo bench -p sotto-bench --features vodozemac -- --test 2>&1 | grep -c '^Success' \
    | sed 's/^/benchmarks run once in test mode: /'
