#!/usr/bin/env bash
# Proves the core builds without std: a #![no_std] staticlib with its own
# panic handler calls into sotto; any std in the graph is a duplicate lang item.
set -euo pipefail
cd "$(dirname "$0")/.."
manifest=.ci/nostd-check/Cargo.toml
cargo build --manifest-path "$manifest" --release --quiet
lib=.ci/nostd-check/target/release/libsotto_nostd_check.a
if ar t "$lib" | grep -q '^std-'; then
    echo "no_std check: std objects found in $lib" >&2
    exit 1
fi
echo "no_std check: ok (sotto links into a #![no_std] staticlib without std)"
