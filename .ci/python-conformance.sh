#!/usr/bin/env bash
# Checks test-vectors/*.json against the independent Python implementation
# in conformance/python/ (written from SPEC.md alone). One line per vector.
# Its dependencies: `cryptography` (X25519, Ed25519, AES-GCM, HKDF) and
# `kyber-py` 1.2.0 (ML-KEM-1024, pure Python), installed if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
missing=()
"$PYTHON" -c 'import cryptography' >/dev/null 2>&1 || missing+=('cryptography>=42')
"$PYTHON" -c 'import importlib.metadata as m, sys; sys.exit(m.version("kyber-py") != "1.2.0")' \
  >/dev/null 2>&1 || missing+=('kyber-py==1.2.0')
if [ "${#missing[@]}" -gt 0 ]; then
  "$PYTHON" -m pip install --quiet "${missing[@]}"
fi
exec "$PYTHON" conformance/python/verify.py
