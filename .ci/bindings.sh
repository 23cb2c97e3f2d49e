#!/usr/bin/env bash
# The bindings (issue 15): the generated Kotlin, Swift and Python are
# current; the scenario runs in Python and in Kotlin on the JVM (uniffi),
# and under Node.js and in headless Chromium (WebAssembly); the WebAssembly
# package stays within its size budget.
#
# Installs what a fresh machine lacks (it has Rust, gcc, Python 3, Java 17
# and Node.js 20), skipping what is present:
#   - the wasm32-unknown-unknown target (rustup);
#   - wasm-bindgen-cli at the wasm-bindgen crate's exact version (cargo
#     install, dev profile: it compiles in a fraction of the release time and
#     runs in seconds here);
#   - kotlinc, playwright-core and binaryen's wasm-opt (npm ci, versions
#     pinned in bindings/tools/package-lock.json);
#   - JNA and Chromium (Debian's libjna-java and chromium).
# Tools go to SOTTO_TOOLS (default ~/.cache/sotto-bindings-tools), so a
# second run on the same machine reuses them.
#
# Builds: the uniffi library and its generator in the dev profile (one
# build; the tests load the dev library); the WebAssembly package in its
# size profile (bindings/wasm/build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
phase() { printf 'bindings: %s (at %ss)\n' "$*" "$((SECONDS - start))"; }
tools="${SOTTO_TOOLS:-$HOME/.cache/sotto-bindings-tools}"
mkdir -p "$tools"
tools="$(realpath "$tools")"
wasm_bindgen_version=0.2.130

phase "tools"
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    rustup target add wasm32-unknown-unknown
fi

export WASM_BINDGEN
if [[ "$(wasm-bindgen --version 2>/dev/null)" == "wasm-bindgen $wasm_bindgen_version" ]]; then
    WASM_BINDGEN="$(command -v wasm-bindgen)"
else
    WASM_BINDGEN="$tools/cargo/bin/wasm-bindgen"
    if [[ "$("$WASM_BINDGEN" --version 2>/dev/null)" != "wasm-bindgen $wasm_bindgen_version" ]]; then
        # Its own target dir, so that its build leaves the workspace's alone.
        # Not --locked: its lock names a webpki-roots release the registry
        # reachable here does not have.
        CARGO_TARGET_DIR="$tools/cargo-build" cargo install --quiet --debug \
            --root "$tools/cargo" --bin wasm-bindgen wasm-bindgen-cli --version "$wasm_bindgen_version"
        rm -rf "$tools/cargo-build"
    fi
fi

# npm ci only when the pinned lock changed (or nothing is installed yet).
npm_dir="$tools/npm"
mkdir -p "$npm_dir"
if ! cmp -s bindings/tools/package-lock.json "$npm_dir/installed.lock"; then
    cp bindings/tools/package.json bindings/tools/package-lock.json "$npm_dir/"
    (cd "$npm_dir" && npm ci --no-audit --no-fund --loglevel=error)
    cp bindings/tools/package-lock.json "$npm_dir/installed.lock"
fi
export NODE_MODULES="$npm_dir/node_modules"
export KOTLINC="$NODE_MODULES/kotlin-compiler/bin/kotlinc"
export WASM_OPT="$NODE_MODULES/.bin/wasm-opt"

missing=()
[[ -f /usr/share/java/jna.jar ]] || missing+=(libjna-java)
[[ -x "${CHROMIUM:-/usr/bin/chromium}" ]] || missing+=(chromium)
if ((${#missing[@]})); then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

phase "uniffi: generated Kotlin, Swift and Python are current"
bash bindings/uniffi/generate.sh --check

phase "uniffi: the scenario in Python and Kotlin (JVM)"
bash bindings/uniffi/test.sh

phase "wasm: the package and its size budget"
bash bindings/wasm/build.sh

phase "wasm: the scenario under Node.js and in headless Chromium"
bash bindings/wasm/test.sh

phase "done"
