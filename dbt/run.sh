#!/usr/bin/env bash
# Runs the dashboard pipeline: creates a virtualenv with the pinned dbt-duckdb (once), then
# `dbt build` (models + tests) over a lake.
#   bash dbt/run.sh [--lake DIR_OR_S3_URL] [dbt build arguments...]
# Default lake: ./demo-lake (written by `quack demo`). An s3:// lake selects the s3 target, which
# loads httpfs from the pinned duckdb-extension-httpfs package and takes S3 credentials and the
# endpoint from the AWS variables.
set -euo pipefail
DBT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
lake="${QUACK_LAKE:-demo-lake}"
if [ "${1:-}" = "--lake" ]; then lake="$2"; shift 2; fi
case "$lake" in
  s3://*) ;;
  *) lake="$(cd "$lake" && pwd)"
     # DuckDB's COPY writes a single file only into an existing directory.
     mkdir -p "$lake/dashboard/trips_by_pickup_location" "$lake/dashboard/top_pickup_locations" ;;
esac
venv="${QUACK_CACHE:-$HOME/.cache/quack}/dbt-venv"
if [ ! -x "$venv/bin/dbt" ] || ! cmp -s "$DBT_DIR/requirements.txt" "$venv/requirements.txt"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet -r "$DBT_DIR/requirements.txt"
  cp "$DBT_DIR/requirements.txt" "$venv/requirements.txt"
fi
export QUACK_LAKE="$lake"
case "$lake" in s3://*) export QUACK_DBT_TARGET="${QUACK_DBT_TARGET:-s3}" ;; esac
QUACK_HTTPFS_EXTENSION="$("$venv/bin/python" -c 'import duckdb, duckdb_extension_httpfs as e, os
print(os.path.join(os.path.dirname(e.__file__), "extensions", duckdb.__version__ if duckdb.__version__.startswith("v") else "v" + duckdb.__version__, "httpfs.duckdb_extension"))')"
export QUACK_HTTPFS_EXTENSION
export QUACK_DBT_TARGET_PATH="${QUACK_DBT_TARGET_PATH:-${QUACK_CACHE:-$HOME/.cache/quack}/dbt-target}"
export DBT_SEND_ANONYMOUS_USAGE_STATS=false
cd "$DBT_DIR"
exec "$venv/bin/dbt" build --project-dir "$DBT_DIR" --profiles-dir "$DBT_DIR" --target-path "$QUACK_DBT_TARGET_PATH" \
  --log-path "$QUACK_DBT_TARGET_PATH/logs" "$@"
