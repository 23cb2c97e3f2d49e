#!/usr/bin/env bash
# Builds the WebAssembly package into target/wasm-pkg/ (sotto_wasm.js, the
# JavaScript glue for browsers and Node.js, and sotto_wasm_bg.wasm) and
# checks the size budget: at most 150 KB gzipped for the .wasm and its glue
# together, read strictly as 150,000 bytes.
#
# Size over speed: sotto without its "fast" tables (Cargo.toml), opt-level
# "z", fat LTO, one codegen unit, panic=abort, then `wasm-opt -Oz` (npm
# `binaryen`; WASM_OPT names it, else it is looked up on PATH; skipped with
# a warning if absent), which also drops the debug names. Not stripped by
# rustc: wasm-bindgen reads the target_features section. The profile is
# given with --config so that it touches no other build.
set -euo pipefail
cd "$(dirname "$0")/../.."
target_dir="${CARGO_TARGET_DIR:-target}"
budget=150000

wasm_bindgen="${WASM_BINDGEN:-wasm-bindgen}"
if [[ "$("$wasm_bindgen" --version 2>/dev/null)" != "wasm-bindgen 0.2.130" ]]; then
    echo "wasm: wasm-bindgen 0.2.130 (the crate's exact version) is needed" >&2
    exit 1
fi
cargo build --quiet -p sotto-wasm --target wasm32-unknown-unknown --profile wasm-release \
    --config 'profile.wasm-release.inherits="release"' \
    --config 'profile.wasm-release.opt-level="z"' \
    --config 'profile.wasm-release.lto="fat"' \
    --config 'profile.wasm-release.codegen-units=1' \
    --config 'profile.wasm-release.panic="abort"' \
    --config 'profile.wasm-release.debug=false'
raw="$target_dir/wasm32-unknown-unknown/wasm-release/sotto_wasm.wasm"
pkg="$target_dir/wasm-pkg"
rm -rf "$pkg"
"$wasm_bindgen" --target web --out-dir "$pkg" --no-typescript "$raw"
wasm="$pkg/sotto_wasm_bg.wasm"
before=$(stat -c %s "$wasm")
wasm_opt="${WASM_OPT:-$(command -v wasm-opt || true)}"
if [[ -n "$wasm_opt" ]]; then
    "$wasm_opt" -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
        --enable-sign-ext --enable-mutable-globals --strip-debug --strip-producers \
        "$wasm" -o "$wasm.opt"
    mv "$wasm.opt" "$wasm"
else
    echo "wasm: warning: wasm-opt not found; the size is before wasm-opt" >&2
fi
size=$(stat -c %s "$wasm")
gz_wasm=$(gzip -9 -c "$wasm" | wc -c)
gz_js=$(gzip -9 -c "$pkg/sotto_wasm.js" | wc -c)
total=$((gz_wasm + gz_js))
echo "wasm: sotto_wasm_bg.wasm $size bytes ($before before wasm-opt), gzipped $gz_wasm;" \
    "glue sotto_wasm.js $(stat -c %s "$pkg/sotto_wasm.js") bytes, gzipped $gz_js;" \
    "package gzipped $total of the $budget budget"
if ((total > budget)); then
    echo "wasm: the package is over its size budget ($total > $budget bytes gzipped)" >&2
    exit 1
fi
