#!/usr/bin/env bash
# The whole test suite (slow, browser, Redis and PostgreSQL tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m pytest "$@"
