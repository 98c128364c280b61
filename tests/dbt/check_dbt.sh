#!/usr/bin/env bash
# The dashboard pipeline on a fresh demo lake: `dbt build` (models + data tests) with the local
# target, then the top pickup locations it materialized must equal the same query through
# `quack query`. With the local stack's exports in the environment (AWS_ENDPOINT_URL_S3 and
# QUACK_STACK_S3_DIR), the same build runs with the s3 target against the lake in the S3 server.
#   tests/dbt/check_dbt.sh QUACK_BIN WORK_DIR PYTHON
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
quack="$1"; work="$2"; python="$3"
rm -rf "$work" && mkdir -p "$work"
"$quack" demo --dir "$work/lake" --trips 200000 --objects 2000 --no-queries >/dev/null
bash "$ROOT/dbt/run.sh" --lake "$work/lake" --quiet

compare() { # lake-for-quack artifact-dir
  "$quack" query --backend local --format csv --quiet "SELECT pickup_location_id, count(*) AS trips
    FROM read_parquet('$1/trips/*/*.parquet', hive_partitioning = true)
    GROUP BY 1 ORDER BY trips DESC, pickup_location_id LIMIT 10" >"$work/quack.csv"
  "$python" - "$2" "$work/quack.csv" <<'PY'
import csv, sys, duckdb
artifact, quack_csv = sys.argv[1:]
got = duckdb.sql(f"SELECT pickup_location_id, trips FROM read_parquet('{artifact}/top_pickup_locations/data.parquet') "
                 "WHERE rank <= 10 ORDER BY rank").fetchall()
want = [(int(a), int(b)) for a, b in list(csv.reader(open(quack_csv)))[1:]]
assert got == want, f"dbt artifact {got} != quack query {want}"
days = duckdb.sql(f"SELECT count(DISTINCT date), sum(trips) FROM read_parquet('{artifact}/daily_trips/*/*.parquet', hive_partitioning = true)").fetchone()
print(f"dbt: top pickup locations equal quack query's; daily_trips has {days[0]} days, {days[1]} trips")
PY
}
compare "$work/lake" "$work/lake/dashboard"

if [ -n "${QUACK_STACK_S3_DIR:-}" ]; then
  rm -rf "$QUACK_STACK_S3_DIR/lake/dbt-demo"
  mkdir -p "$QUACK_STACK_S3_DIR/lake/dbt-demo"
  cp -r "$work/lake/trips" "$QUACK_STACK_S3_DIR/lake/dbt-demo/"
  bash "$ROOT/dbt/run.sh" --lake s3://lake/dbt-demo --quiet
  compare "$work/lake" "$QUACK_STACK_S3_DIR/lake/dbt-demo/dashboard"
  echo "dbt: the s3 target wrote the same tables into s3://lake/dbt-demo/dashboard"
fi
