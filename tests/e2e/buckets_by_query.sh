#!/usr/bin/env bash
# Runs `QUACK ARGS... SQL` with `--buckets` 1, 3 or 16, chosen by the SQL text (its checksum), so
# that one pass of check.py over a corpus goes through all three bucket counts, each query always
# at the same one. (In process, scripts/test.sh runs every query at each of the three.)
#   tests/e2e/buckets_by_query.sh QUACK ARGS... SQL
set -euo pipefail
quack="$1"; shift
sql="${*: -1}"
counts=(1 3 16)
sum="$(printf '%s' "$sql" | cksum | cut -d' ' -f1)"
exec "$quack" "${@:1:$#-1}" --buckets "${counts[$((sum % 3))]}" "$sql"
