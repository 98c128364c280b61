#!/usr/bin/env bash
# Prints the path of one of DuckDB's official extensions (httpfs, icu) for the bundled DuckDB
# release, fetching it once from PyPI: the wheel duckdb-extension-<name> holds
# extensions/v<version>/<name>.duckdb_extension. Nothing is downloaded at run time: quack loads
# these files (--httpfs-extension, --icu-extension, or the cache path below by default).
#   scripts/fetch-extension.sh httpfs|icu [x86_64|aarch64]     (default: this machine)
set -euo pipefail
VERSION=1.5.5
NAME="${1:-}"
case "$NAME" in
  httpfs|icu) ;;
  *) echo "fetch-extension: which extension? httpfs or icu" >&2; exit 2 ;;
esac
ARCH="${2:-$(uname -m)}"
case "$ARCH" in
  x86_64|amd64) ARCH=x86_64 ;;
  aarch64|arm64) ARCH=aarch64 ;;
  *) echo "fetch-extension: unknown architecture $ARCH (x86_64 or aarch64)" >&2; exit 2 ;;
esac
CACHE="${QUACK_CACHE:-$HOME/.cache/quack}/$NAME/v$VERSION/$ARCH"
FILE="$CACHE/$NAME.duckdb_extension"
if [ ! -s "$FILE" ]; then
  mkdir -p "$CACHE/wheel"
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --platform "manylinux2014_$ARCH" --python-version 3.11 \
    "duckdb-extension-$NAME==$VERSION" -d "$CACHE/wheel" >&2
  python3 - "$CACHE/wheel" "$FILE" "$VERSION" "$NAME" <<'PY'
import glob, sys, zipfile
wheel_dir, out, version, name = sys.argv[1:]
wheel = sorted(glob.glob(f"{wheel_dir}/*.whl"))[-1]
with zipfile.ZipFile(wheel) as z:
    member = next(n for n in z.namelist() if n.endswith(f"v{version}/{name}.duckdb_extension"))
    data = z.read(member)
open(out + ".tmp", "wb").write(data)
PY
  mv "$FILE.tmp" "$FILE"
fi
echo "$FILE"
