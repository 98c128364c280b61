#!/usr/bin/env bash
# Packages serverless.yml offline with osls (pinned in deploy/package-lock.json) into a fresh
# folder, then asserts on the CloudFormation template it generated (check_template.py).
# The zip is this machine's x86_64 release bootstrap plus httpfs (scripts/package-worker.sh
# x86_64 --host-build), packaged with architecture=x86_64 so the package is coherent.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
[ -x deploy/node_modules/.bin/serverless ] || (cd deploy && npm ci --no-audit --no-fund --loglevel=error >&2)
ZIP="$(scripts/package-worker.sh x86_64 --host-build)"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT" .serverless' EXIT
# No AWS account: a throwaway HOME, and no credentials in the environment.
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_PROFILE HOME="$OUT/home" \
  deploy/node_modules/.bin/serverless package --package "$OUT/package" \
  --param="architecture=x86_64" --param="artifact=$ZIP" --param="dataBucket=test-lake" \
  --param="dataPrefix=trips/" --param="spillBucket=test-scratch" --param="spillPrefix=spill/" >&2
python3 tests/deploy/check_template.py "$OUT/package/cloudformation-template-update-stack.json" "$ZIP"
