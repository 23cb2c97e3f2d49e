#!/usr/bin/env bash
# Builds the WebAssembly packages (sotto_wasm.js, the JavaScript glue for
# browsers and Node.js, and sotto_wasm_bg.wasm): target/wasm-pkg/, the
# pairwise and group core, within the size budget of at most 150 KB gzipped
# for the .wasm and its glue together (read strictly as 150,000 bytes); and
# target/wasm-pkg-sessions/, the same with the session layer (feature
# `sessions`), within 175,000 bytes.
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
sessions_budget=175000

wasm_bindgen="${WASM_BINDGEN:-wasm-bindgen}"
if [[ "$("$wasm_bindgen" --version 2>/dev/null)" != "wasm-bindgen 0.2.130" ]]; then
    echo "wasm: wasm-bindgen 0.2.130 (the crate's exact version) is needed" >&2
    exit 1
fi
# package <dir> <budget> [cargo features...]: builds, binds, optimises and
# checks one package.
package() {
    local name="$1" pkg="$target_dir/$1" budget="$2"
    shift 2
    cargo build --quiet -p sotto-wasm --target wasm32-unknown-unknown --profile wasm-release \
        --config 'profile.wasm-release.inherits="release"' \
        --config 'profile.wasm-release.opt-level="z"' \
        --config 'profile.wasm-release.lto="fat"' \
        --config 'profile.wasm-release.codegen-units=1' \
        --config 'profile.wasm-release.panic="abort"' \
        --config 'profile.wasm-release.debug=false' "$@"
    local raw="$target_dir/wasm32-unknown-unknown/wasm-release/sotto_wasm.wasm"
    rm -rf "$pkg"
    "$wasm_bindgen" --target web --out-dir "$pkg" --no-typescript "$raw"
    local wasm="$pkg/sotto_wasm_bg.wasm"
    local before
    before=$(stat -c %s "$wasm")
    if [[ -n "$wasm_opt" ]]; then
        "$wasm_opt" -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
            --enable-sign-ext --enable-mutable-globals --strip-debug --strip-producers \
            "$wasm" -o "$wasm.opt"
        mv "$wasm.opt" "$wasm"
    else
        echo "wasm: warning: wasm-opt not found; the size is before wasm-opt" >&2
    fi
    local size gz_wasm gz_js total
    size=$(stat -c %s "$wasm")
    gz_wasm=$(gzip -9 -c "$wasm" | wc -c)
    gz_js=$(gzip -9 -c "$pkg/sotto_wasm.js" | wc -c)
    total=$((gz_wasm + gz_js))
    echo "wasm: $name: sotto_wasm_bg.wasm $size bytes ($before before wasm-opt), gzipped" \
        "$gz_wasm; glue sotto_wasm.js $(stat -c %s "$pkg/sotto_wasm.js") bytes, gzipped" \
        "$gz_js; package gzipped $total of its $budget budget"
    if ((total > budget)); then
        echo "wasm: $name is over its size budget ($total > $budget bytes gzipped)" >&2
        exit 1
    fi
}

wasm_opt="${WASM_OPT:-$(command -v wasm-opt || true)}"
# The pairwise and group core, under the issue's budget.
package wasm-pkg "$budget"
# With the session layer: a budget of its own, to notice growth.
package wasm-pkg-sessions "$sessions_budget" --features sessions
