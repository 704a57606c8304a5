"""The pairwise study's service, dashboard and browser tests again, on PostgreSQL (as the ACR study suite runs in
tests/mos_study/test_study_suite_on_postgres.py): a pytest subprocess whose settings point at a fresh PostgreSQL
database, so row locks (SELECT ... FOR UPDATE), the choosing path's idempotency and the session balance are checked
on the deployment's engine, not only on SQLite's database-wide write lock."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.mos_study.test_study_suite_on_postgres import drop_test_copy

REPO = Path(__file__).resolve().parents[2]
SUITE = ["tests/mos_study/test_pairwise_study.py", "tests/e2e/test_pairwise_browser.py"]


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.browser
def test_pairwise_suite_passes_on_postgres(tmp_path, postgres_database, chromium_path):
    report = tmp_path / "database.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")}
    env.update(DATABASE_URL=postgres_database, DATABASE_CONN_MAX_AGE="0", SRMOS_DATABASE_REPORT=str(report))
    command = [sys.executable, "-m", "pytest", *SUITE, "-q", "-p", "no:cacheprovider"]
    command += ["-p", "tests.support.database_report"]
    try:
        result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
    finally:
        drop_test_copy(postgres_database)
    tail = result.stdout[-4000:] + result.stderr[-2000:]
    assert result.returncode == 0, tail
    passed = re.search(r"(\d+) passed", result.stdout)
    assert passed and int(passed.group(1)) >= 15, tail
    assert "skipped" not in result.stdout.splitlines()[-1], tail
    used = json.loads(report.read_text())
    assert used["vendor"] == "postgresql" and used["name"] == "test_" + postgres_database.rsplit("/", 1)[-1]
