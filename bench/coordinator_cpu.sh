#!/usr/bin/env bash
# The coordinator's CPU per task through the local Lambda stack (issue 11: at most 0.1 ms).
# Writes a table of N one-row Parquet files (one hive partition each) into the stack's S3
# server, then runs `SELECT count(*)` over it through `quack query --backend lambda` twice:
#   * as N tasks (--target-task-bytes 1: one file per task), and
#   * as one task over the same N files (same listing, same planning),
# each 5 times, and reports the quack process's own CPU (user + sys, from wait4) per run. The
# difference over N - 1 is the coordinator's CPU per extra task: building, signing and sending
# the invocation, and reading, checking and reducing the answer.
#   bash bench/coordinator_cpu.sh [N=1000]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$(cd .. && pwd)/.quack-target}"
cache="${QUACK_CACHE:-$HOME/.cache/quack}"
n="${1:-1000}"
cargo build --release --workspace --all-targets >&2  # one unit: -p unifies features differently
eval "$(bash tests/e2e/stack.sh up)"
table="$QUACK_STACK_S3_DIR/lake/cpu-$n"
if [ ! -f "$table/.complete" ]; then
  rm -rf "$table"
  "$cache/venv/bin/python" - "$table" "$n" <<'PY'
import duckdb, os, sys
root, n = sys.argv[1], int(sys.argv[2])
con = duckdb.connect()
for i in range(n):
    os.makedirs(f"{root}/t/p={i:05d}", exist_ok=True)
    con.execute(f"COPY (SELECT {i}::BIGINT AS x) TO '{root}/t/p={i:05d}/part.parquet' (FORMAT parquet)")
open(f"{root}/.complete", "w").close()
PY
fi
"$cache/venv/bin/python" - "$CARGO_TARGET_DIR/release/quack" "s3://lake/cpu-$n/t/*/*.parquet" "$n" <<'PY'
import os, statistics, subprocess, sys, time
quack, files, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
sql = f"SELECT count(*) AS n FROM read_parquet('{files}', hive_partitioning = true)"
def measure(task_bytes):
    cpu, wall = [], []
    for _ in range(5):
        started = time.time()
        pid = os.posix_spawn(quack, [quack, "query", "--quiet", "--format", "csv", "-j", "16",
                                      "--target-task-bytes", str(task_bytes), sql],
                             os.environ,
                             file_actions=[(os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
                                           (os.POSIX_SPAWN_OPEN, 2, "/tmp/quack-cpu-bench.err", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)])
        _, status, usage = os.wait4(pid, 0)
        if status != 0:
            sys.exit("quack failed: " + open("/tmp/quack-cpu-bench.err").read())
        wall.append(time.time() - started)
        cpu.append(usage.ru_utime + usage.ru_stime)
    return statistics.median(cpu), statistics.median(wall)
many_cpu, many_wall = measure(1)
one_cpu, one_wall = measure(1 << 40)
print(f"{n} files through the local Lambda stack (median of 5 runs)")
print(f"  {n} tasks: coordinator CPU {many_cpu:.3f} s, wall {many_wall:.3f} s")
print(f"  1 task:   coordinator CPU {one_cpu:.3f} s, wall {one_wall:.3f} s")
print(f"  coordinator CPU per extra task: {(many_cpu - one_cpu) / (n - 1) * 1000:.3f} ms")
PY
