#!/usr/bin/env bash
# Builds the worker's deployment package: bootstrap (cargo lambda build --release) plus DuckDB's
# httpfs and icu extensions of the same architecture, zipped as serverless.yml expects.
#   scripts/package-worker.sh [arm64|x86_64] [--host-build]
# --host-build zips this machine's release bootstrap instead of cross-compiling (x86_64 hosts, for
# offline packaging checks).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ARCH="${1:-arm64}"
HOST_BUILD="${2:-}"
case "$ARCH" in
  arm64) TRIPLE=aarch64-unknown-linux-gnu; EXT_ARCH=aarch64 ;;
  x86_64) TRIPLE=x86_64-unknown-linux-gnu; EXT_ARCH=x86_64 ;;
  *) echo "package-worker: architecture is arm64 or x86_64" >&2; exit 2 ;;
esac
TARGET="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
if [ "$HOST_BUILD" = "--host-build" ]; then
  # The workspace build (a no-op after scripts/test.sh's): building one package would unify
  # features differently and rebuild shared crates.
  (cd "$ROOT" && cargo build --release --workspace --all-targets >&2)
  BOOTSTRAP="$TARGET/release/bootstrap"
else
  (cd "$ROOT" && cargo lambda build --release -p quack-lambda --bin bootstrap --target "$TRIPLE" >&2)
  BOOTSTRAP="$TARGET/lambda/bootstrap/bootstrap"
fi
HTTPFS="$("$ROOT/scripts/fetch-extension.sh" httpfs "$EXT_ARCH")"
ICU="$("$ROOT/scripts/fetch-extension.sh" icu "$EXT_ARCH")"
mkdir -p "$ROOT/dist"
OUT="$ROOT/dist/quack-worker-$ARCH.zip"
python3 - "$OUT" "$BOOTSTRAP" "$HTTPFS" "$ICU" <<'PY'
import sys, zipfile
out, bootstrap, httpfs, icu = sys.argv[1:]
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    info = zipfile.ZipInfo("bootstrap"); info.external_attr = 0o755 << 16; info.compress_type = zipfile.ZIP_DEFLATED
    z.writestr(info, open(bootstrap, "rb").read())
    z.write(httpfs, "httpfs.duckdb_extension")
    z.write(icu, "icu.duckdb_extension")
PY
echo "$OUT"
