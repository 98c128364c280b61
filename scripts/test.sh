#!/usr/bin/env bash
# Runs every test of quack on a fresh machine:
#   formatting, the release build, the local S3 server and Lambda emulator (tests/e2e/stack.sh,
#   installed when missing), unit + integration + property + end-to-end tests, clippy, the offline
#   `serverless package` check, and the lakecheck differential corpus (../shared/lakecheck)
#   through the release binary: in process, then through Lambda (plain, with injected faults,
#   throttled, spilling).
# DuckDB's bundled C++ takes 40-75 min to compile on 2 cores the first time; the build cache
# lives outside the clone (CARGO_TARGET_DIR, default ../.quack-target) so later runs reuse it.
# Everything is built once, in the release profile (tests and binaries share it).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$(cd .. && pwd)/.quack-target}"  # as in .cargo/config.toml
cache="${QUACK_CACHE:-$HOME/.cache/quack}"  # Python venv and generated lakes
mkdir -p "$cache"
step() { printf '\n== %s (%s)\n' "$1" "$(date +%H:%M:%S)"; }

# The differential corpus is part of the tests: without it this run would prove less, so it fails.
shared="${QUACK_SHARED:-../shared}"
if [ ! -f "$shared/lakecheck/check.py" ]; then
  echo "test.sh: $shared/lakecheck not found: clone the shared tools beside this repository or set QUACK_SHARED" >&2
  exit 1
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "DuckDB's icu extension (scripts/fetch-extension.sh icu)"
# Time zones: the tests run quack and DuckDB in zones other than UTC.
QUACK_ICU_EXTENSION="$(bash scripts/fetch-extension.sh icu)"
export QUACK_ICU_EXTENSION

step "release build (binaries and tests)"
cargo build --release --workspace --all-targets

step "local S3 server and Lambda emulator (tests/e2e/stack.sh up)"
stack_env="$(bash tests/e2e/stack.sh up)"
trap 'bash tests/e2e/stack.sh down' EXIT

step "cargo test --release"
cargo test --release --workspace

step "cargo clippy -D warnings"
cargo clippy --release --workspace --all-targets -- -D warnings

step "serverless package (offline, osls) and template assertions"
bash tests/deploy/check_package.sh

venv="$cache/venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q duckdb==1.5.5 duckdb-extension-tpch==1.5.5 pyarrow==26.0.1

step "lakecheck: visible corpus on a gen_lake.py --scale 1 lake"
lake="$cache/lakecheck-scale1"
if [ ! -f "$lake/.complete" ]; then
  rm -rf "$lake"
  "$venv/bin/python" "$shared/lakecheck/gen_lake.py" "$lake" --scale 1
  touch "$lake/.complete"
fi
# A second hive-partitioned table for tests/queries/joins.sql: TPC-H orders by order year.
if [ ! -f "$lake/orders_by_year/.complete" ]; then
  rm -rf "$lake/orders_by_year"
  "$venv/bin/python" -c 'import duckdb, sys; duckdb.sql(f"COPY (SELECT *, year(o_orderdate) AS oyear FROM read_parquet(\x27{sys.argv[1]}/tpch_orders.parquet\x27)) TO \x27{sys.argv[1]}/orders_by_year\x27 (FORMAT parquet, PARTITION_BY (oyear))")' "$lake"
  touch "$lake/orders_by_year/.complete"
fi
"$venv/bin/python" "$shared/lakecheck/check.py" --lake "$lake" \
  --queries "$shared/lakecheck/queries/visible.sql" \
  --queries tests/queries/extra.sql \
  --queries tests/queries/joins.sql \
  --queries tests/queries/windows.sql \
  --queries tests/queries/sorts.sql \
  -- "$CARGO_TARGET_DIR/release/quack" query --format csv
step "lakecheck again, every block split (--split always: the ship-rows path Lambda runs, in process)"
"$venv/bin/python" "$shared/lakecheck/check.py" --lake "$lake" \
  --queries "$shared/lakecheck/queries/visible.sql" \
  --queries tests/queries/extra.sql \
  --queries tests/queries/joins.sql \
  --queries tests/queries/windows.sql \
  --queries tests/queries/sorts.sql \
  -- "$CARGO_TARGET_DIR/release/quack" query --format csv --split always
step "lakecheck again through a second stage: grouped reduces and windows shuffled, sorts range-partitioned, joined tables co-partitioned, through the exchange (1, 3 and 16 buckets), with faults in both stages (attempts that fail, and attempts that write their bucket files and lose their answer)"
exchange="$(mktemp -d)"
for buckets in 1 3 16; do
  QUACK_EXCHANGE="$exchange" QUACK_INJECT_FAULTS="fail=0.1,lose=0.1,delay=0.05,delay_ms=20" QUACK_MAX_ATTEMPTS=12 \
  "$venv/bin/python" "$shared/lakecheck/check.py" --lake "$lake" \
    --queries "$shared/lakecheck/queries/visible.sql" \
    --queries tests/queries/extra.sql \
    --queries tests/queries/joins.sql \
  --queries tests/queries/windows.sql \
  --queries tests/queries/sorts.sql \
    -- "$CARGO_TARGET_DIR/release/quack" query --format csv --split always --buckets "$buckets" --broadcast-bytes 0
done
# Every query deletes its exchange, lost attempts' files included.
left="$(find "$exchange" -type f | wc -l)"
[ "$left" -eq 0 ] || { echo "exchange files left behind: $(find "$exchange" -type f | head -5)" >&2; exit 1; }
rm -rf "$exchange"
step "quack du against lakeview's SQL (hive, AWS Parquet and AWS CSV inventories, bad inputs)"
"$venv/bin/python" tests/du/check_du.py --quack "$CARGO_TARGET_DIR/release/quack" --lake "$lake" \
  --work "$cache/du-check"
(
  eval "$stack_env"
  bash tests/e2e/run.sh "$lake" "$venv/bin/python" \
    "$shared/lakecheck/queries/visible.sql" tests/queries/extra.sql
  # dbt and the browser use the demo lake quack generates, not the shared corpus.
  step "dbt build on a demo lake (local target, then the s3 target on the local S3 server)"
  bash tests/dbt/check_dbt.sh "$CARGO_TARGET_DIR/release/quack" "$cache/dbt-check" "$venv/bin/python"
)
step "dashboard in headless Chromium (playwright-core), on the dbt-built demo lake"
bash tests/dashboard/check_ui.sh "$CARGO_TARGET_DIR" "$cache/dbt-check/lake" "$cache/dashboard-ui"
step "all tests passed"
