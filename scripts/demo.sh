#!/usr/bin/env bash
# The README's first command on a fresh machine: fetches DuckDB's icu extension once (time
# zones, so TIMESTAMPTZ shows in your zone as in DuckDB), builds the workspace (one unit, as the
# tests build it) and runs `quack demo`, which writes ./demo-lake and runs the headline queries.
#   bash scripts/demo.sh [demo options]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
QUACK_ICU_EXTENSION="$("$ROOT/scripts/fetch-extension.sh" icu)"
export QUACK_ICU_EXTENSION
(cd "$ROOT" && cargo build --release --workspace --all-targets >&2)
TARGET="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
exec "$TARGET/release/quack" demo "$@"
