"""The study's lifecycle, panel, blinding, view and browser tests again, on PostgreSQL.

They run on SQLite in the normal pass; here the same files run in a pytest subprocess whose Django settings point at
a fresh PostgreSQL database (pytest-django makes its ``test_`` copy there), so every finding of the crowdsourcing
issue (leases, pause and close, preview, calibration exclusion, gold trials, minimum viewing time, blinding by bytes,
viewing conditions, completion codes, the browser steps) is tested on both engines. Tests that start their own
PostgreSQL run (marked ``postgres``) are left out of the subprocess: they run in the normal pass.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SUITE = [
    "tests/mos_study/test_study_lifecycle.py",
    "tests/mos_study/test_study_panel.py",
    "tests/mos_study/test_study_blind.py",
    "tests/mos_study/test_study_views.py",
    "tests/mos_study/test_study_service.py",
    "tests/e2e/test_study_browser.py",
    "tests/e2e/test_study_panel_browser.py",
]


def drop_test_copy(database_url):
    """pytest-django cannot drop its test copy while a live-server thread still holds a connection: drop it here."""
    import psycopg

    admin_url, name = database_url.rsplit("/", 1)
    with psycopg.connect(admin_url + "/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "test_{name}" WITH (FORCE)')


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.browser
def test_study_suite_passes_on_postgres(tmp_path, postgres_database, chromium_path):
    report = tmp_path / "database.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")}
    # No persistent connections: the live server's threads must let pytest-django drop its test database.
    env.update(DATABASE_URL=postgres_database, DATABASE_CONN_MAX_AGE="0", SRMOS_DATABASE_REPORT=str(report))
    command = [sys.executable, "-m", "pytest", *SUITE, "-q", "-m", "not postgres", "-p", "no:cacheprovider"]
    command += ["-p", "tests.support.database_report"]
    try:
        result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
    finally:
        drop_test_copy(postgres_database)
    tail = result.stdout[-4000:] + result.stderr[-2000:]
    assert result.returncode == 0, tail
    passed = re.search(r"(\d+) passed", result.stdout)
    assert passed and int(passed.group(1)) >= 85, tail
    assert "failed" not in result.stdout.splitlines()[-1] and "skipped" not in result.stdout.splitlines()[-1], tail
    used = json.loads(report.read_text())
    assert used["vendor"] == "postgresql" and used["name"] == "test_" + postgres_database.rsplit("/", 1)[-1]
