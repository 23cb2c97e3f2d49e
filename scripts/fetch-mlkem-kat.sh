#!/bin/sh
# Fetches NIST's ACVP ML-KEM vectors (vsId 42, FIPS203 keyGen and encapDecap)
# as shipped in the PyPI sdist of kyber-py 1.2.0, pinned by hash, into
# target/kat/. Test-time input only: never committed.
set -eu
cd "$(dirname "$0")/.."
dest=target/kat
sdist=kyber_py-1.2.0.tar.gz
sha256=9062b7c307b4b84980ec6b775091558d60c488985c4e8081eeb66fd4bb29a354
mkdir -p "$dest"
if [ ! -f "$dest/$sdist" ]; then
    python3 -m pip download --quiet --no-deps --no-binary :all: -d "$dest" kyber-py==1.2.0
fi
echo "$sha256  $dest/$sdist" | sha256sum -c --quiet -
tar -xzf "$dest/$sdist" -C "$dest" kyber_py-1.2.0/assets
echo "ACVP vectors in $dest/kyber_py-1.2.0/assets"
