#!/usr/bin/env bash
# The whole test suite, against real PostgreSQL and Redis and a real Chromium.
# Called by `make test` (which installs the Python requirements first) and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

# Browser tests need Debian's Chromium (Playwright's own download cannot work offline).
if ! command -v chromium >/dev/null; then
  echo "installing Debian's chromium for the browser tests"
  (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null
fi

# Production mode is what CI exercises: PostgreSQL through psycopg, Redis for Celery
# and Channels. tests/services.py starts them where it can, and fails under CI=true.
eval "$($PY -m tests.services)"
echo "database: ${DATABASE_URL:-sqlite (embedded)}  redis: ${REDIS_URL:-none (embedded)}"

exec $PY -m pytest "$@"
