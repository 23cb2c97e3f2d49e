#!/usr/bin/env bash
# Packages every publishable crate (sotto-protocol, sotto-ffi) and builds
# each package as crates.io would, without uploading. Needs the crates.io
# index. --allow-dirty: this checks the packages, not that the tree is
# committed.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo publish --workspace --dry-run --allow-dirty
