#!/usr/bin/env bash
# Checks test-vectors/*.json against the independent Python implementation
# in conformance/python/ (written from SPEC.md alone). One line per vector.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import cryptography' >/dev/null 2>&1; then
  "$PYTHON" -m pip install --quiet 'cryptography>=42'
fi
exec "$PYTHON" conformance/python/verify.py
