#!/usr/bin/env bash
# Builds (does not run) the criterion benchmarks, with vodozemac as the peer,
# so that they keep compiling. Running them is a manual step (BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench -p sotto-bench --features vodozemac --no-run
