#!/usr/bin/env bash
# Regenerates the test vectors into a temporary directory and fails if they
# differ from the checked-in ones; then verifies the checked-in directory
# through the public API (one line per vector).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cargo run --locked --quiet -p sotto-gen-vectors -- "$tmp"
status=0
for f in test-vectors/*.json "$tmp"/*.json; do
  name="$(basename "$f")"
  if ! cmp -s "test-vectors/$name" "$tmp/$name"; then
    echo "test-vectors/$name differs from a fresh generation" >&2
    status=1
  fi
done
[ "$status" -eq 0 ] || exit "$status"
echo "test-vectors/*.json regenerate byte for byte"
cargo run --locked --quiet --example verify_vectors -- test-vectors/
