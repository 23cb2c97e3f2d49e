#!/usr/bin/env bash
# C ABI checks: the committed header matches the code, and the C client runs
# under valgrind without leaks or invalid accesses. (The C and Python clients
# also run in `cargo test --workspace`.)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cbindgen >/dev/null 2>&1 || [[ "$(cbindgen --version)" != "cbindgen 0.29.4" ]]; then
    cargo install --locked --version 0.29.4 cbindgen
fi
if ! command -v valgrind >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind
fi

echo "ffi: regenerating ffi/include/sotto.h"
cbindgen --quiet --config ffi/cbindgen.toml --crate sotto-ffi --output ffi/include/sotto.h ffi
if ! git diff --exit-code -- ffi/include/sotto.h; then
    echo "ffi: ffi/include/sotto.h is stale; commit the regenerated header" >&2
    exit 1
fi

echo "ffi: building the static library"
cargo build --quiet -p sotto-ffi
target_dir="${CARGO_TARGET_DIR:-target}"
lib="$target_dir/debug/libsotto_ffi.a"

echo "ffi: exported symbols match the header"
exported="$(nm -D --defined-only "$target_dir/debug/libsotto_ffi.so" | awk '{print $3}' | sort)"
declared="$(grep -oE '^SottoError sotto_[a-z0-9_]+\(' ffi/include/sotto.h | sed -E 's/^SottoError (.*)\($/\1/' | sort)"
if [[ "$exported" != "$declared" ]]; then
    diff <(echo "$exported") <(echo "$declared") >&2 || true
    echo "ffi: the shared library exports other functions than the header declares" >&2
    exit 1
fi
exe="$(mktemp -d)/conversation"
trap 'rm -rf "$(dirname "$exe")"' EXIT
cc -std=c11 -Wall -Wextra -Werror -pedantic -g -Iffi/include ffi/tests/c/conversation.c ffi/tests/c/sessions.c "$lib" \
    -lpthread -ldl -lm -o "$exe"

echo "ffi: C client under valgrind"
valgrind --quiet --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all \
    --error-exitcode=1 "$exe" >/dev/null
echo "ffi: ok (header current; C client clean under valgrind)"
