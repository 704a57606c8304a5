#!/bin/sh
# Screenshots of each rater step (consent, calibration, trial, completion code) on a desktop and a phone viewport,
# written to docs/img/ by the browser test that walks a study in headless chromium.
set -e
cd "$(dirname "$0")/.."
SRMOS_SCREENSHOT_DIR="$PWD/docs/img" .venv/bin/python -m pytest tests/e2e/test_study_browser.py -q -k screenshots "$@"
