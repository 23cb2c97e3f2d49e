#!/usr/bin/env bash
# Runs the scenario (tests/scenario.mjs) against both packages build.sh made
# (target/wasm-pkg, the core; target/wasm-pkg-sessions, with the session
# layer): under Node.js, then in headless Chromium driven by
# playwright-core. NODE_MODULES names the node_modules that holds
# playwright-core (.ci/bindings.sh installs it); CHROMIUM the browser
# (default /usr/bin/chromium, Debian's).
set -euo pipefail
cd "$(dirname "$0")/../.."
target_dir="${CARGO_TARGET_DIR:-target}"
header=ffi/include/sotto.h
modules="${NODE_MODULES:?NODE_MODULES must name a node_modules with playwright-core}"
packages=("$target_dir/wasm-pkg" "$target_dir/wasm-pkg-sessions")
for pkg in "${packages[@]}"; do
    [[ -f "$pkg/sotto_wasm_bg.wasm" ]] || { echo "wasm: run bindings/wasm/build.sh first" >&2; exit 1; }
done

# ES modules resolve packages next to the importing file, not through
# NODE_PATH: run the browser driver from a copy beside a node_modules link.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp bindings/wasm/tests/*.mjs "$work/"
ln -s "$(realpath "$modules")" "$work/node_modules"
browser="$("${CHROMIUM:-/usr/bin/chromium}" --version 2>/dev/null || echo '?')"
for pkg in "${packages[@]}"; do
    echo "wasm: $(basename "$pkg"): scenario under Node.js $(node --version)"
    node bindings/wasm/tests/node.mjs "$pkg" "$header"
    echo "wasm: $(basename "$pkg"): scenario in headless Chromium ($browser)"
    node "$work/browser.mjs" "$pkg" "$header"
done
