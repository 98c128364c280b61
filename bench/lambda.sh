#!/usr/bin/env bash
# Cold and warm worker figures from the local Lambda emulator: restarts the stack (fresh worker
# processes, so the first task of each is a cold start), runs the same query 5 times through
# `quack query --backend lambda` on the scale-1 lake in the local S3 server, and reports
#   * init ms per worker (process start to ready: runtime, DuckDB, httpfs load, sandbox),
#   * per-task ms of cold (first) and warm tasks, as the workers measured them,
#   * wall time per query, against one DuckDB (Python, httpfs) reading the same S3 lake.
#   bash bench/lambda.sh            (needs the scale-1 lakecheck lake that scripts/test.sh caches)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$(cd .. && pwd)/.quack-target}"
cache="${QUACK_CACHE:-$HOME/.cache/quack}"
lake="$cache/lakecheck-scale1"
[ -f "$lake/.complete" ] || { echo "run scripts/test.sh first (it generates $lake)" >&2; exit 1; }
cargo build --release --workspace --all-targets >&2  # one unit: -p unifies features differently
bash tests/e2e/stack.sh down >/dev/null 2>&1 || true
eval "$(bash tests/e2e/stack.sh up)"
trap 'bash tests/e2e/stack.sh down >/dev/null 2>&1' EXIT
rm -rf "$QUACK_STACK_S3_DIR/lake/bench" && cp -r "$lake" "$QUACK_STACK_S3_DIR/lake/bench"
sql="SELECT date, count(*) AS trips, sum(fare_amount) AS fares FROM read_parquet('s3://lake/bench/trips/*/*.parquet', hive_partitioning = true) GROUP BY date ORDER BY date"
for i in 1 2 3 4 5; do
  start=$(date +%s.%N)
  "$CARGO_TARGET_DIR/release/quack" query --format csv --concurrency 4 "$sql" >/dev/null 2>"$cache/bench-lambda-$i.err"
  end=$(date +%s.%N)
  printf 'run %d: %.3f s  %s\n' "$i" "$(echo "$end - $start" | bc)" "$(grep '^quack:' "$cache/bench-lambda-$i.err" | cut -d';' -f1)"
done
"$cache/venv/bin/python" - "$QUACK_STACK_S3_DIR/.." "$sql" <<'PY'
import glob, re, statistics, sys, time, os
stack, sql = sys.argv[1], sys.argv[2]
init, cold, warm = [], [], []
for log in glob.glob(f"{stack}/quack-worker-[0-9]*.log"):
    for line in open(log):
        line = re.sub(r"\x1b\[[0-9;]*m", "", line)
        m = re.search(r"init_ms=(\d+)", line)
        if m: init.append(int(m.group(1)))
        m = re.search(r"task done.*?ms=(\d+) cold=(true|false)", line)
        if m: (cold if m.group(2) == "true" else warm).append(int(m.group(1)))
def show(name, xs):
    if xs: print(f"{name}: n={len(xs)} median={statistics.median(xs):.0f} ms min={min(xs)} max={max(xs)}")
show("worker init (process start to ready)", init)
show("cold task (first task of a worker)", cold)
show("warm task", warm)
import duckdb
con = duckdb.connect()
con.execute(f"LOAD '{os.environ['QUACK_HTTPFS_EXTENSION']}'")
ep = os.environ["AWS_ENDPOINT_URL_S3"].removeprefix("http://")
con.execute(f"CREATE SECRET (TYPE s3, KEY_ID '{os.environ['AWS_ACCESS_KEY_ID']}', SECRET '{os.environ['AWS_SECRET_ACCESS_KEY']}', REGION 'us-east-1', ENDPOINT '{ep}', URL_STYLE 'path', USE_SSL false)")
times = []
for _ in range(5):
    t = time.time(); con.execute(sql).fetchall(); times.append(time.time() - t)
print(f"one DuckDB over the same S3 lake: median {statistics.median(times):.3f} s")
PY
