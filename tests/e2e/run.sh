#!/usr/bin/env bash
# The differential corpus through the Lambda backend, against the stack of stack.sh (S3 server
# and Lambda emulator with real workers):
#   1. the whole corpus, plain;
#   2. the whole corpus with faults injected around the invoker (20% of invocations fail, 10% run
#      and lose their answer, 10% are delayed): retries must keep every answer exact;
#   3. part of the corpus through a front that answers 429 TooManyRequests to every third Invoke,
#      then through a storm: every Invoke answered 429 for 5 s at the start of each query;
#   4. part of the corpus on the worker that spills every partial over 1 KiB to S3, after which no
#      spilled object may be left;
#   5. the whole corpus, joins.sql, windows.sql and sorts.sql through a second stage: the map writes to the
#      S3 exchange in 1, 3 or 16 buckets by query (buckets_by_query.sh; joined tables
#      co-partitioned, never broadcast), with faults in both stages (lost answers included), after
#      which no exchange object may be left.
#   6. du through Lambda over the demo's inventory in S3, in Parquet and converted to ORC, equal to
#      du on the local copy.
#   tests/e2e/run.sh LAKE_DIR VENV_PYTHON QUERIES...     (the stack's exports in the environment)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
lake="$1"; python="$2"; shift 2
queries=(); for q in "$@"; do queries+=(--queries "$q"); done
: "${QUACK_STACK_S3_DIR:?run eval \"\$(tests/e2e/stack.sh up)\" first}"
quack="${CARGO_TARGET_DIR:-$ROOT/../.quack-target}/release/quack"
check="${QUACK_SHARED:-$ROOT/../shared}/lakecheck/check.py"
step() { printf '\n== e2e: %s (%s)\n' "$1" "$(date +%H:%M:%S)"; }

# Put the lake in the S3 server's bucket `lake` (s3s-fs keeps objects as files under DIR/<bucket>/).
name="$(basename "$lake")"
if [ ! -f "$QUACK_STACK_S3_DIR/lake/$name/.complete" ]; then
  rm -rf "${QUACK_STACK_S3_DIR:?}/lake/$name"
  cp -r "$lake" "$QUACK_STACK_S3_DIR/lake/$name"
fi
s3lake="s3://lake/$name"
# `wrapper=CMD run_check ...` runs each query as `CMD QUACK ARGS... SQL` instead.
run_check() { "$python" "$check" --lake "$s3lake" --truth-lake "$lake" "$@" -- ${wrapper:+"$wrapper"} "$quack" query --format csv --quiet; }

step "corpus through Lambda ($s3lake)"
QUACK_MAX_ATTEMPTS=4 run_check "${queries[@]}"

step "corpus with injected faults (fail 20%, answer lost 10%, delay 10%)"
QUACK_INJECT_FAULTS="fail=0.2,lose=0.1,delay=0.1,delay_ms=300" QUACK_MAX_ATTEMPTS=12 run_check "${queries[@]}"

# Starts throttle_proxy.py with the given mode in front of the emulator; sets $proxy and $portfile.
start_proxy() {
  portfile="$(mktemp)"
  "$python" "$ROOT/tests/e2e/throttle_proxy.py" --upstream "$AWS_ENDPOINT_URL_LAMBDA" "$@" --port-file "$portfile" &
  proxy=$!
  trap 'kill $proxy 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do [ -s "$portfile" ] && break; sleep 0.05; done
}

step "second stage through the S3 exchange: every block split, reduces that group or window shuffled and joined tables co-partitioned into 1, 3 or 16 buckets by query, faults in both stages"
QUACK_SPLIT=always QUACK_BROADCAST_BYTES=0 QUACK_INJECT_FAULTS="fail=0.2,lose=0.1,delay=0.1,delay_ms=300" \
  QUACK_MAX_ATTEMPTS=12 wrapper="$ROOT/tests/e2e/buckets_by_query.sh" run_check "${queries[@]}" \
  --queries "$ROOT/tests/queries/joins.sql" --queries "$ROOT/tests/queries/windows.sql" \
  --queries "$ROOT/tests/queries/sorts.sql"
median="SELECT payment_type, median(fare_amount) AS m FROM read_parquet('$s3lake/trips/*/*.parquet', hive_partitioning = true) GROUP BY 1"
"$quack" explain --split always --buckets 3 "$median" | grep -q "stage 2: one task per bucket" \
  || { echo "a grouped median through Lambda got no second stage" >&2; exit 1; }
# Without --buckets, through Lambda a map that ships rows from more listed bytes than the
# coordinator may gather gets a second stage by itself, and the answer stays within the limit.
QUACK_MAX_GATHER_BYTES=1048576 "$quack" explain "$median" | grep -q "stage 2: one task per bucket" \
  || { echo "a grouped median over more than --max-gather-bytes got no automatic second stage" >&2; exit 1; }
QUACK_MAX_GATHER_BYTES=1048576 run_check --queries "$ROOT/tests/queries/e2e-gather.sql"
left="$(find "$QUACK_STACK_S3_DIR/exchange" -type f | wc -l)"
echo "exchange objects left: $left"
[ "$left" -eq 0 ] || { echo "exchange objects left behind" >&2; exit 1; }

step "throttling: every third Invoke answered 429"
start_proxy --every 3
AWS_ENDPOINT_URL_LAMBDA="http://127.0.0.1:$(cat "$portfile")" QUACK_MAX_ATTEMPTS=10 \
  run_check --queries "$ROOT/tests/queries/e2e-subset.sql"
throttled="$(cat "$portfile.count" 2>/dev/null || echo 0)"
echo "throttled invocations: $throttled"
[ "$throttled" -gt 0 ] || { echo "the proxy throttled nothing" >&2; exit 1; }
kill $proxy; trap - EXIT

step "throttling storm: every Invoke answered 429 for 5 s per query, then recovering"
start_proxy --storm 5
started=$(date +%s)
AWS_ENDPOINT_URL_LAMBDA="http://127.0.0.1:$(cat "$portfile")" run_check --queries "$ROOT/tests/queries/e2e-subset.sql"
throttled="$(cat "$portfile.count" 2>/dev/null || echo 0)"
echo "throttled invocations: $throttled in $(( $(date +%s) - started )) s"
[ "$throttled" -gt 0 ] || { echo "the storm throttled nothing" >&2; exit 1; }
kill $proxy; trap - EXIT

step "spill: every partial over 1 KiB goes through S3"
spills() { cat "$QUACK_STACK_S3_DIR"/../quack-worker-spill-*.log | grep -c 'spilled the partial' || true; }
before="$(spills)"
QUACK_FUNCTION=quack-worker-spill run_check --queries "$ROOT/tests/queries/e2e-subset.sql"
spilled=$(( $(spills) - before ))
left="$(find "$QUACK_STACK_S3_DIR/spill" -type f | wc -l)"
echo "spilled partials: $spilled, left in the spill bucket: $left"
[ "$spilled" -gt 0 ] || { echo "nothing spilled" >&2; exit 1; }
[ "$left" -eq 0 ] || { echo "spilled partials left behind" >&2; exit 1; }

step "du through Lambda: the demo's AWS-layout inventory in S3 equals du on the local copy"
demo="$(mktemp -d)"
"$quack" demo --dir "$demo" --trips 1000 --objects 20000 --no-queries >/dev/null
rm -rf "$QUACK_STACK_S3_DIR/demo-inventory/demo-bucket"
cp -r "$demo/inventory-aws/demo-bucket" "$QUACK_STACK_S3_DIR/demo-inventory/"
for args in "" "--compare 2024-03-01-00-00" "--prefix backups/ --depth 2" "--by storage-class" "--top 25" \
  "--duplicates" "--history --since 2024-03-02" "--group big=min-size=100MB --group old=min-age=1y&suffix=.gz"; do
  # shellcheck disable=SC2086
  "$quack" du --quiet --format csv --inventory s3://demo-inventory/demo-bucket/daily/ $args >"$demo/lambda.csv"
  # shellcheck disable=SC2086
  "$quack" du --quiet --format csv --backend local --inventory "$demo/inventory-aws/demo-bucket/daily" $args >"$demo/local.csv"
  if ! cmp -s "$demo/lambda.csv" "$demo/local.csv"; then
    echo "du $args: Lambda and local answers differ" >&2; diff "$demo/lambda.csv" "$demo/local.csv" | head >&2; exit 1
  fi
  echo "ok   du $args ($(($(wc -l <"$demo/local.csv") - 1)) rows)"
done

step "du through Lambda over ORC reports: the workers convert them into the S3 exchange first"
"$python" "$ROOT/tests/inventory/to_orc.py" "$demo/inventory-aws/demo-bucket/daily" \
  "$QUACK_STACK_S3_DIR/demo-inventory/demo-orc/daily"
for args in "" "--history" "--duplicates" "--by age"; do
  # shellcheck disable=SC2086
  "$quack" du --quiet --format csv --inventory s3://demo-inventory/demo-orc/daily/ $args >"$demo/lambda.csv"
  # shellcheck disable=SC2086
  "$quack" du --quiet --format csv --backend local --inventory "$demo/inventory-aws/demo-bucket/daily" $args >"$demo/local.csv"
  if ! cmp -s "$demo/lambda.csv" "$demo/local.csv"; then
    echo "du $args over ORC: Lambda and local Parquet answers differ" >&2; diff "$demo/lambda.csv" "$demo/local.csv" | head >&2; exit 1
  fi
  # In process, the coordinator's S3 client reads the ORC files; the exchange is a local directory.
  # shellcheck disable=SC2086
  QUACK_EXCHANGE="$demo/exchange/" "$quack" du --quiet --format csv --backend local \
    --inventory s3://demo-inventory/demo-orc/daily/ $args >"$demo/in-process.csv"
  if ! cmp -s "$demo/in-process.csv" "$demo/local.csv"; then
    echo "du $args over ORC in S3, in process: answers differ" >&2; diff "$demo/in-process.csv" "$demo/local.csv" | head >&2; exit 1
  fi
  echo "ok   du $args over ORC ($(($(wc -l <"$demo/local.csv") - 1)) rows)"
done
[ -z "$(ls -A "$demo/exchange" 2>/dev/null)" ] || { echo "converted ORC files left in the local exchange" >&2; exit 1; }
left="$(find "$QUACK_STACK_S3_DIR/exchange" -type f | wc -l)"
[ "$left" -eq 0 ] || { echo "converted ORC files left in the exchange" >&2; exit 1; }
rm -rf "$demo"
