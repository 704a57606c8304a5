#!/usr/bin/env bash
# Set up srmos in this checkout: .venv/ with every dependency, and a migrated database.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "srmos needs Python 3.11 ($PYTHON not found; set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
fi
# SRMOS_DEV=0 installs the runtime set only (what the images carry); the default adds tests and linters, and the
# optional perceptual metrics (requirements-metrics.txt, the 'metrics' extra) so that development and CI test them.
files="-r requirements.txt"
[ "${SRMOS_DEV:-1}" = 1 ] && files="$files -r requirements-dev.txt -r requirements-metrics.txt"
stamp=.venv/.requirements.sha256
want=$(echo "$files" | cat - requirements.txt requirements-dev.txt requirements-metrics.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> installing requirements (torch is large: a few minutes)"
  # (grep drops the harmless notes pip prints about this machine's unused local package folders)
  .venv/bin/python -m pip install --quiet --upgrade pip 2> >(grep -v "is ignored: it is neither" >&2)
  .venv/bin/python -m pip install --quiet $files 2> >(grep -v "is ignored: it is neither" >&2)
  echo "$want" > "$stamp"
fi
echo "==> migrating the database"
.venv/bin/python manage.py migrate --noinput >/dev/null
echo "==> set up"
