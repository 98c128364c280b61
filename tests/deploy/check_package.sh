#!/usr/bin/env bash
# Packages serverless.yml offline with osls (pinned in deploy/package-lock.json) into a fresh
# folder, then asserts on the CloudFormation template it generated (check_template.py): once
# plainly, once with a KMS key and a bucket of one's own. Packaging without dataBucket or
# spillBucket must fail. The zip is this machine's x86_64 release bootstrap plus httpfs and icu
# (scripts/package-worker.sh x86_64 --host-build), packaged with architecture=x86_64 and no
# artifact parameter: the default artifact follows the architecture.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
[ -x deploy/node_modules/.bin/serverless ] || (cd deploy && npm ci --no-audit --no-fund --loglevel=error >&2)
ZIP="$(scripts/package-worker.sh x86_64 --host-build)"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT" .serverless' EXIT
[ "$ZIP" = "$ROOT/dist/quack-worker-x86_64.zip" ] || { echo "unexpected zip $ZIP" >&2; exit 1; }
# No AWS account: a throwaway HOME, and no credentials in the environment.
package() { # folder params...
  local folder="$1"; shift
  env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_PROFILE HOME="$OUT/home" \
    deploy/node_modules/.bin/serverless package --package "$OUT/$folder" --stage test --param="architecture=x86_64" "$@"
}
package plain --param="dataBucket=test-lake" --param="dataPrefix=trips/" --param="spillBucket=test-scratch" \
  --param="spillPrefix=spill/" >&2
python3 tests/deploy/check_template.py "$OUT/plain" "$ZIP" plain
package kms --param="dataBucket=test-lake" --param="dataPrefix=trips/" --param="spillBucket=test-scratch" \
  --param="spillPrefix=spill/" --param="kmsKeyArn=arn:aws:kms:us-east-1:111122223333:key/test" \
  --param="manageSpillBucket=false" >&2
python3 tests/deploy/check_template.py "$OUT/kms" "$ZIP" kms
for given in dataBucket=test-lake spillBucket=test-scratch; do
  if package "missing" --param="$given" >"$OUT/missing.log" 2>&1; then
    echo "serverless package with only $given succeeded" >&2; exit 1
  fi
  grep -q 'Value not found at "param" source' "$OUT/missing.log" || { cat "$OUT/missing.log" >&2; exit 1; }
done
echo "serverless package: no default buckets (dataBucket and spillBucket are required)"
