"""Run test files again in a pytest subprocess on a fresh PostgreSQL database (pytest-django makes its ``test_``
copy there), and check that they passed and really ran on it (``tests.support.database_report``)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def drop_test_copy(database_url):
    """pytest-django cannot drop its test copy while a live-server thread still holds a connection: drop it here."""
    import psycopg

    admin_url, name = database_url.rsplit("/", 1)
    with psycopg.connect(admin_url + "/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "test_{name}" WITH (FORCE)')


def assert_suite_passes_on_postgres(files, database_url, report, *, at_least, extra_args=()):
    """``files`` pass under pytest with Django on ``database_url`` (at least ``at_least`` tests, none failed or
    skipped); ``report`` is a scratch file path for the database the run used."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")}
    # No persistent connections: the live server's threads must let pytest-django drop its test database.
    env.update(DATABASE_URL=database_url, DATABASE_CONN_MAX_AGE="0", SRMOS_DATABASE_REPORT=str(report))
    command = [sys.executable, "-m", "pytest", *files, "-q", *extra_args, "-p", "no:cacheprovider"]
    command += ["-p", "tests.support.database_report"]
    try:
        result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
    finally:
        drop_test_copy(database_url)
    tail = result.stdout[-4000:] + result.stderr[-2000:]
    assert result.returncode == 0, tail
    passed = re.search(r"(\d+) passed", result.stdout)
    assert passed and int(passed.group(1)) >= at_least, tail
    last = result.stdout.splitlines()[-1]
    assert "failed" not in last and "skipped" not in last, tail
    used = json.loads(Path(report).read_text())
    assert used["vendor"] == "postgresql" and used["name"] == "test_" + database_url.rsplit("/", 1)[-1]
