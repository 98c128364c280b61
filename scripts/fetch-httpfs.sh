#!/usr/bin/env bash
# Prints the path of DuckDB's official httpfs extension for the bundled DuckDB release, fetching
# it once from PyPI (the wheel duckdb-extension-httpfs holds extensions/v<version>/httpfs.duckdb_extension).
#   scripts/fetch-httpfs.sh [x86_64|aarch64]     (default: this machine)
set -euo pipefail
VERSION=1.5.5
ARCH="${1:-$(uname -m)}"
case "$ARCH" in
  x86_64|amd64) ARCH=x86_64 ;;
  aarch64|arm64) ARCH=aarch64 ;;
  *) echo "fetch-httpfs: unknown architecture $ARCH (x86_64 or aarch64)" >&2; exit 2 ;;
esac
CACHE="${QUACK_CACHE:-$HOME/.cache/quack}/httpfs/v$VERSION/$ARCH"
FILE="$CACHE/httpfs.duckdb_extension"
if [ ! -s "$FILE" ]; then
  mkdir -p "$CACHE/wheel"
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --platform "manylinux2014_$ARCH" --python-version 3.11 \
    "duckdb-extension-httpfs==$VERSION" -d "$CACHE/wheel" >&2
  python3 - "$CACHE/wheel" "$FILE" "$VERSION" <<'PY'
import glob, sys, zipfile
wheel_dir, out, version = sys.argv[1:]
wheel = sorted(glob.glob(f"{wheel_dir}/*.whl"))[-1]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith(f"v{version}/httpfs.duckdb_extension"))
    data = z.read(name)
open(out + ".tmp", "wb").write(data)
PY
  mv "$FILE.tmp" "$FILE"
fi
echo "$FILE"
