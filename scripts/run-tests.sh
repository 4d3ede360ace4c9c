#!/usr/bin/env bash
# Start the services the tests need (PostgreSQL, Redis, nginx, the third-party client venvs, Chromium), then run pytest.
# pytest's exit code 5 ("no tests collected") is a failure here, and so is any skipped test
# (tests/conftest.py turns skips into a failing exit status).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

pg_url="$(bash scripts/test-services.sh | tail -n 1)"
export VOXCALL_TEST_POSTGRES_URL="$pg_url"
redis_url="$(bash scripts/redis.sh | tail -n 1)"
export VOXCALL_TEST_REDIS_URL="$redis_url"
bash scripts/nginx.sh
bash scripts/conformance-venvs.sh
bash scripts/browser-deps.sh

set +e
.venv/bin/python -m pytest -ra "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$status"
