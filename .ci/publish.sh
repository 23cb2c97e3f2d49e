#!/usr/bin/env bash
# Packages every publishable crate (sotto-protocol, sotto-ffi) and builds
# each package as crates.io would, without uploading. Needs the crates.io
# index. --allow-dirty: this checks the packages, not that the tree is
# committed.
set -euo pipefail
cd "$(dirname "$0")/.."

# cargo unpacks the workspace's own packages into a temporary local registry
# under $CARGO_HOME/registry/src/-<hash>/ and reuses a directory that is
# already there for the same name and version. A run on an earlier tree of
# the same version would then build sotto-ffi against the earlier
# sotto-protocol, so remove those unpacked copies first. Crates from
# crates.io live under index.crates.io-*/ and are not touched.
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
shopt -s nullglob
stale=("$cargo_home"/registry/src/-*/sotto-*)
if [ "${#stale[@]}" -gt 0 ]; then
    rm -rf -- "${stale[@]}"
fi

cargo publish --workspace --dry-run --allow-dirty
