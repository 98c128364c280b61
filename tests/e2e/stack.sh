#!/usr/bin/env bash
# The local stand-ins for the serverless path, on free loopback ports:
#   * s3s-fs 0.14.1: an S3-protocol server (SigV4 checked) keeping objects as files under
#     $STACK/s3/<bucket>/ (buckets: lake, spill);
#   * cargo-lambda's emulator (--only-lambda-apis) serving the Lambda Invoke API, with real
#     `bootstrap` worker processes polling it: function quack-worker ($QUACK_STACK_WORKERS
#     processes) and quack-worker-spill (spills every partial over 1 KiB).
#
#   eval "$(tests/e2e/stack.sh up)"   # start (installing what is missing), print the exports
#   tests/e2e/stack.sh env            # print the exports of the running stack
#   tests/e2e/stack.sh down           # stop exactly the processes `up` started
#
# Tools and state live under ${QUACK_CACHE:-~/.cache/quack}; the worker binary is the release
# `bootstrap` of this workspace (built when missing).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${QUACK_CACHE:-$HOME/.cache/quack}"
STACK="${QUACK_STACK_DIR:-$CACHE/stack}"
TOOLS="$CACHE/tools"
VENV="$CACHE/venv"
WORKERS="${QUACK_STACK_WORKERS:-4}"
KEY=quack-local
SECRET=quack-local-secret
log() { echo "stack: $*" >&2; }

target_dir() {
  (cd "$ROOT" && cargo metadata --format-version 1 --no-deps 2>/dev/null) |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])'
}

install_tools() {
  if [ ! -x "$TOOLS/s3s/bin/s3s-fs" ]; then
    log "installing s3s-fs 0.14.1 (cargo install, a few minutes, once)"
    CARGO_TARGET_DIR="$TOOLS/s3s-target" cargo install s3s-fs@0.14.1 --features binary --locked \
      --root "$TOOLS/s3s" >&2
  fi
  if [ ! -x "$VENV/bin/cargo-lambda" ]; then
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV" >&2
    log "installing cargo-lambda 1.9.2 (PyPI, prebuilt)"
    "$VENV/bin/pip" install --quiet cargo-lambda==1.9.2 >&2
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {
  for _ in $(seq 1 200); do
    if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),timeout=0.2)" 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  log "nothing listens on port $1; see $STACK/*.log"; return 1
}

print_env() {
  # shellcheck disable=SC1091
  . "$STACK/ports"
  cat <<ENV
export AWS_ACCESS_KEY_ID=$KEY
export AWS_SECRET_ACCESS_KEY=$SECRET
export AWS_REGION=us-east-1
export AWS_ENDPOINT_URL_S3=http://127.0.0.1:$S3_PORT
export AWS_ENDPOINT_URL_LAMBDA=http://127.0.0.1:$LAMBDA_PORT
export QUACK_BACKEND=lambda
export QUACK_FUNCTION=quack-worker
export QUACK_CONCURRENCY=$WORKERS
export QUACK_HTTPFS_EXTENSION=$HTTPFS
export QUACK_ICU_EXTENSION=$ICU
export QUACK_SPILL_PREFIX=s3://spill/partials/
export QUACK_EXCHANGE=s3://exchange/stages/
export QUACK_TASK_TIMEOUT=600
export QUACK_STACK_S3_DIR=$STACK/s3
export QUACK_STACK_LAMBDA_PORT=$LAMBDA_PORT
ENV
}

start_workers() { # function-name count extra-env...
  local function="$1" count="$2"; shift 2
  for i in $(seq 1 "$count"); do
    env -i PATH="$PATH" HOME="$STACK" \
      AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$LAMBDA_PORT/.rt/$function" \
      AWS_LAMBDA_FUNCTION_NAME="$function" AWS_LAMBDA_FUNCTION_VERSION='$LATEST' \
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE=2048 AWS_LAMBDA_LOG_GROUP_NAME="/aws/lambda/$function" \
      AWS_LAMBDA_LOG_STREAM_NAME="local-$i" AWS_REGION=us-east-1 \
      AWS_ACCESS_KEY_ID=$KEY AWS_SECRET_ACCESS_KEY=$SECRET \
      AWS_ENDPOINT_URL_S3="http://127.0.0.1:$S3_PORT" \
      QUACK_ALLOWED_PREFIXES=s3://lake/,s3://demo-inventory/ QUACK_SPILL_PREFIX=s3://spill/partials/ \
      QUACK_EXCHANGE_PREFIX=s3://exchange/stages/ \
      QUACK_HTTPFS_EXTENSION="$HTTPFS" QUACK_ICU_EXTENSION="$ICU" QUACK_WORKER_THREADS="${QUACK_STACK_WORKER_THREADS:-4}" RUST_LOG=info \
      "$@" "$BOOTSTRAP" >>"$STACK/$function-$i.log" 2>&1 &
    echo $! >>"$STACK/pids"
  done
}

up() {
  if [ -f "$STACK/pids" ] && kill -0 "$(head -1 "$STACK/pids")" 2>/dev/null; then
    print_env; return 0
  fi
  install_tools
  HTTPFS="$("$ROOT/scripts/fetch-extension.sh" httpfs)"
  ICU="$("$ROOT/scripts/fetch-extension.sh" icu)"
  BOOTSTRAP="$(target_dir)/release/bootstrap"
  if [ ! -x "$BOOTSTRAP" ]; then
    log "building the workspace (cargo build --release --workspace --all-targets)"
    (cd "$ROOT" && cargo build --release --workspace --all-targets >&2)
  fi
  mkdir -p "$STACK"
  rm -rf "$STACK/s3" "$STACK"/*.log "$STACK/pids" "$STACK/target"
  mkdir -p "$STACK/s3/lake" "$STACK/s3/spill" "$STACK/s3/demo-inventory" "$STACK/s3/exchange"
  S3_PORT="$(free_port)"; LAMBDA_PORT="$(free_port)"
  printf 'S3_PORT=%s\nLAMBDA_PORT=%s\nHTTPFS=%s\nICU=%s\nWORKERS=%s\n' "$S3_PORT" "$LAMBDA_PORT" "$HTTPFS" "$ICU" \
    "$WORKERS" >"$STACK/ports"
  "$TOOLS/s3s/bin/s3s-fs" --host 127.0.0.1 --port "$S3_PORT" --access-key $KEY --secret-key $SECRET \
    "$STACK/s3" >"$STACK/s3s.log" 2>&1 &
  echo $! >>"$STACK/pids"
  # The emulator serves one function per binary of the manifest in its working directory.
  cat >"$STACK/Cargo.toml" <<'TOML'
# Names the functions the Lambda emulator serves (one per binary); nothing here is built.
[package]
name = "quack-stack"
version = "0.0.0"
edition = "2021"
publish = false

[[bin]]
name = "quack-worker"
path = "worker.rs"

[[bin]]
name = "quack-worker-spill"
path = "worker.rs"

[workspace]
TOML
  echo 'fn main() {}' >"$STACK/worker.rs"
  (cd "$STACK" && exec "$VENV/bin/cargo-lambda" lambda watch --only-lambda-apis -A 127.0.0.1 -P "$LAMBDA_PORT" \
    --concurrency $((WORKERS + 2)) >"$STACK/emulator.log" 2>&1) &
  echo $! >>"$STACK/pids"
  wait_port "$S3_PORT"
  wait_port "$LAMBDA_PORT"
  start_workers quack-worker "$WORKERS"
  start_workers quack-worker-spill 2 QUACK_SPILL_THRESHOLD_BYTES=1024
  sleep 0.5
  while read -r pid; do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "a stack process exited at start; its logs:"; tail -n 5 "$STACK"/*.log >&2; down; exit 1
    fi
  done <"$STACK/pids"
  log "S3 on 127.0.0.1:$S3_PORT, Lambda on 127.0.0.1:$LAMBDA_PORT, $WORKERS workers; logs in $STACK"
  print_env
}

down() {
  [ -f "$STACK/pids" ] || { log "not running"; return 0; }
  while read -r pid; do
    pkill -TERM -P "$pid" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
  done <"$STACK/pids"
  rm -f "$STACK/pids"
  log "stopped"
}

case "${1:-}" in
  up) up ;;
  env) print_env ;;
  down) down ;;
  *) echo "usage: $0 up|env|down" >&2; exit 2 ;;
esac
