#!/usr/bin/env bash
# The dashboard in a real browser: starts quack-dashboard on a free loopback port over a lake
# that dbt/run.sh has built, and runs dashboard/e2e/ui.test.mjs (playwright-core, pinned in
# dashboard/e2e/package-lock.json, driving Debian's chromium, installed here when missing).
# Screenshots go to OUT_DIR.
#   tests/dashboard/check_ui.sh TARGET_DIR LAKE OUT_DIR
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
target="$1"; lake="$2"; out="$3"
if ! command -v chromium >/dev/null; then
  echo "installing Debian's chromium" >&2
  (apt-get install -y chromium >/dev/null 2>&1 || (apt-get update >/dev/null && apt-get install -y chromium >/dev/null))
fi
[ -d "$ROOT/dashboard/e2e/node_modules/playwright-core" ] ||
  (cd "$ROOT/dashboard/e2e" && npm ci --no-audit --no-fund --loglevel=error >&2)

# What the Trips page must show: the same query through quack query.
expected="$(mktemp)"
"$target/release/quack" query --backend local --quiet --format json "SELECT pickup_location_id, count(*) AS trips
  FROM read_parquet('$lake/trips/*/*.parquet', hive_partitioning = true) GROUP BY 1 ORDER BY trips DESC, 1 LIMIT 3" >"$expected.top"
"$target/release/quack" query --backend local --quiet --format csv "SELECT count(*) FROM read_parquet('$lake/trips/*/*.parquet', hive_partitioning = true)" | tail -1 >"$expected.total"
python3 - "$expected" <<'PY'
import json, sys
p = sys.argv[1]
top = [[r["pickup_location_id"], r["trips"]] for r in json.load(open(p + ".top"))]
json.dump({"top3": top, "total_trips": int(open(p + ".total").read())}, open(p, "w"))
PY

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$target/release/quack-dashboard" --lake "$lake" --port "$port" --backend local >"$out.server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/api/lake" >/dev/null && break; sleep 0.1; done
node "$ROOT/dashboard/e2e/ui.test.mjs" "http://127.0.0.1:$port" "$out" "$expected"
