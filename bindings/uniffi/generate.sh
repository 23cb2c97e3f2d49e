#!/usr/bin/env bash
# Generates the Kotlin, Swift and Python bindings from the built library
# (uniffi's library mode, with the generator built in this workspace), into
# bindings/uniffi/generated/. With --check, fails instead if the committed
# files differ from a fresh generation.
#
# Builds `sotto-uniffi` with the `cli` feature in the dev profile: the
# library (target/debug/libsotto_uniffi.so, which the tests load) and the
# generator (target/debug/uniffi-bindgen) in one build.
set -euo pipefail
cd "$(dirname "$0")/../.."
check=false
[[ "${1:-}" == "--check" ]] && check=true

# The generator's own crates (not shared with any other build) unoptimised
# and without debug info: the workspace builds dependencies at opt-level 2,
# which makes uniffi_bindgen's templates slow to compile, for nothing.
quick=()
for crate in uniffi_bindgen uniffi_udl weedle2 goblin askama askama_parser textwrap; do
    quick+=(--config "profile.dev.package.$crate.opt-level=0"
        --config "profile.dev.package.$crate.debug=0")
done
cargo build --quiet -p sotto-uniffi --features cli --lib --bin uniffi-bindgen "${quick[@]}"
target_dir="${CARGO_TARGET_DIR:-target}"
lib="$target_dir/debug/libsotto_uniffi.so"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
for language in kotlin swift python; do
    # --no-format: the output must not depend on which formatters
    # (ktlint, swiftformat) happen to be installed.
    "$target_dir/debug/uniffi-bindgen" generate --library "$lib" --language "$language" \
        --no-format --out-dir "$out/$language" >/dev/null
done
generated=bindings/uniffi/generated
if $check; then
    if ! diff -r "$generated" "$out" >/dev/null; then
        diff -r "$generated" "$out" | head -n 40 >&2 || true
        echo "bindings: $generated is stale; run bindings/uniffi/generate.sh and commit" >&2
        exit 1
    fi
    echo "bindings: generated Kotlin, Swift and Python are current"
else
    rm -rf "$generated"
    mkdir -p "$generated"
    cp -r "$out"/. "$generated"/
    echo "bindings: wrote $generated"
fi
