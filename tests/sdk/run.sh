#!/usr/bin/env bash
# SDK conformance suite: runs the official Alibaba Cloud Node SDK against a
# local shareledger server (tests/sdk/*.test.js, node's built-in test runner).
# Env: SHARELEDGER_BIN (default ../../build/shareledger relative to this folder;
# a relative path is taken relative to the caller's working directory).
# Exits non-zero on any failure; the whole run is bounded by SDK_SUITE_TIMEOUT
# seconds (default 300).
set -euo pipefail

if [ -n "${SHARELEDGER_BIN:-}" ]; then
  case "$SHARELEDGER_BIN" in
    /*) ;;
    *) SHARELEDGER_BIN="$PWD/$SHARELEDGER_BIN" ;;
  esac
  export SHARELEDGER_BIN
fi

cd "$(dirname "$0")"

if ! command -v node >/dev/null 2>&1; then
  echo "run.sh: node is not installed" >&2
  exit 1
fi
if [ ! -d node_modules/@alicloud/ecs20140526 ] || [ ! -d node_modules/@alicloud/openapi-core ]; then
  npm ci --no-audit --no-fund
fi

exec timeout --kill-after=10 "${SDK_SUITE_TIMEOUT:-300}" \
  node --test --test-concurrency=1 --test-timeout=120000 ./*.test.js
