#!/usr/bin/env bash
# The tree's rules: ruff (lint and format) and the import layers (import-linter contracts in pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/lint-imports --no-cache
