#!/usr/bin/env bash
# Times quack (release binary, in-process workers) against the DuckDB CLI, each a whole process, on
# the same lake and queries in the same run, and prints the time and peak-memory ratios per query.
#   bash bench/run.sh [--scale 4] [--runs 5] [--concurrency N]
# The lake comes from ../shared/lakecheck/gen_lake.py and is cached next to the build cache.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$(cd .. && pwd)/.quack-target}"  # as in .cargo/config.toml
cache="${QUACK_CACHE:-$HOME/.cache/quack}"  # Python venv and generated lakes
venv="$cache/venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
# duckdb (the Python module) generates the lake; duckdb-cli is the whole-process DuckDB we time against.
"$venv/bin/pip" install -q duckdb==1.5.5 duckdb-extension-tpch==1.5.5 duckdb-cli==1.5.6
cargo build --release --workspace --all-targets  # one unit: -p unifies features differently
# The CLI binary itself: the venv's bin/duckdb is a Python launcher that runs it as a child
# process, and timing that would add Python's start (~25 ms) to DuckDB's side.
duckdb="$("$venv/bin/python" -c 'import duckdb_cli, os; print(os.path.join(os.path.dirname(duckdb_cli.__file__), "duckdb"))')"
exec "$venv/bin/python" bench/bench.py --quack "$CARGO_TARGET_DIR/release/quack" --duckdb "$duckdb" --cache "$cache" \
  --shared "${QUACK_SHARED:-../shared}" "$@"
