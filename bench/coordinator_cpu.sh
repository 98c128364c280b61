#!/usr/bin/env bash
# The coordinator's CPU per task through the local Lambda stack (issue 11: at most 0.1 ms).
# Writes a table of N one-row Parquet files (one hive partition each) into the stack's S3
# server, then runs `SELECT count(*)` over it through `quack query --backend lambda` twice:
#   * as N tasks (--target-task-bytes 1: one file per task), and
#   * as one task over the same N files (same listing, same planning),
# alternating, QUACK_CPU_RUNS (9) times each, and reports the quack process's own CPU (user +
# sys, from wait4) per run. The difference of the medians over N - 1 is the coordinator's CPU
# per extra task: building, signing and sending the invocation, and reading, checking and
# reducing the answer. The stack's emulator and workers share the machine's cores, so single
# runs move by ±20 %; the range and the fastest-against-fastest figure show how much.
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
"$cache/venv/bin/python" - "$CARGO_TARGET_DIR/release/quack" "s3://lake/cpu-$n/t/*/*.parquet" "$n" "${QUACK_CPU_RUNS:-9}" <<'PY'
import os, statistics, sys, time
quack, files, n, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sql = f"SELECT count(*) AS n FROM read_parquet('{files}', hive_partitioning = true)"
def run(task_bytes):
    started = time.time()
    pid = os.posix_spawn(quack, [quack, "query", "--quiet", "--format", "csv", "-j", "16",
                                  "--target-task-bytes", str(task_bytes), sql],
                         os.environ,
                         file_actions=[(os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
                                       (os.POSIX_SPAWN_OPEN, 2, "/tmp/quack-cpu-bench.err", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)])
    _, status, usage = os.wait4(pid, 0)
    if status != 0:
        sys.exit("quack failed: " + open("/tmp/quack-cpu-bench.err").read())
    return usage.ru_utime, usage.ru_stime, time.time() - started
# The two shapes alternate, so that a slow stretch of a shared machine (the stack's emulator
# and workers run on the same cores) falls on both.
many, one = [], []
for _ in range(runs):
    many.append(run(1))
    one.append(run(1 << 40))
def figures(runs):
    cpu = [u + s for u, s, _ in runs]
    return (statistics.median(cpu), min(cpu), max(cpu), statistics.median(u for u, _, _ in runs),
            statistics.median(s for _, s, _ in runs), statistics.median(w for _, _, w in runs))
m, o = figures(many), figures(one)
print(f"{n} files through the local Lambda stack ({runs} runs of each, alternating; medians, range in brackets)")
print(f"  {n} tasks: coordinator CPU {m[0]:.3f} s [{m[1]:.3f}-{m[2]:.3f}] (user {m[3]:.3f}, sys {m[4]:.3f}), wall {m[5]:.3f} s")
print(f"  1 task:   coordinator CPU {o[0]:.3f} s [{o[1]:.3f}-{o[2]:.3f}] (user {o[3]:.3f}, sys {o[4]:.3f}), wall {o[5]:.3f} s")
per = lambda a, b: (a - b) / (n - 1) * 1000
print(f"  coordinator CPU per extra task: {per(m[0], o[0]):.3f} ms (user {per(m[3], o[3]):.3f}, sys {per(m[4], o[4]):.3f}); "
      f"fastest against fastest {per(m[1], o[1]):.3f} ms")
PY
