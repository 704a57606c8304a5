"""``perf.load_rating --asyncio`` on gunicorn + PostgreSQL: coroutine raters lose and double nothing, and the run
reports where a rating's time goes (Server-Timing), PostgreSQL's CPU and the same run's limit."""

import json
import subprocess
import sys

import pytest

from tests.support.live import REPO, Gunicorn, app_env, fresh_database, seed_study

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
NO_LIMITS = json.dumps(
    {"rating": {"ip": "off", "token": "off"}, "session": {"ip": "off", "token": "off"}, "consent": {"ip": "off"}}
)
IMAGES = 5  # x 2 methods: 10 trials per session
RATERS = 40


def test_async_raters_report_the_breakdown_and_lose_nothing(require_postgres, tmp_path):
    with fresh_database(require_postgres) as database_url:
        env = app_env(tmp_path, database_url, SRMOS_RATE_LIMITS=NO_LIMITS, SRMOS_SERVER_TIMING="1")
        study = seed_study(env, images=IMAGES)
        with Gunicorn(env, tmp_path / "gunicorn.log", workers=2, threads=4) as server:
            command = [
                *(sys.executable, "-m", "perf.load_rating", "--asyncio", "--json", "--base-url", server.url),
                *(f"--study-token={study['token']}", "--raters", str(RATERS), "--interval-ms", "200"),
                *("--time-limit", "60", "--database-url", database_url, "--server-pid", str(server.process.pid)),
                *("--username", study["username"], "--password", study["password"], "--study-id", str(study["id"])),
            ]
            result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(result.stdout)
    expected = RATERS * 2 * IMAGES
    assert figures["ratings_acknowledged"] == expected
    assert figures["stored_by_export"] == expected and figures["lost"] == 0 and figures["duplicated"] == 0
    timing = figures["server_timing"]
    assert timing["ratings"] == expected
    assert timing["statements"] >= 2  # the locked read and the rating's statement, on PostgreSQL
    assert 0 < timing["db_mean_ms"] <= timing["app_mean_ms"] and timing["lock_mean_ms"] <= timing["db_mean_ms"]
    assert figures["cpu_ms_per_rating_postgres"] > 0 and figures["postgres_backends"] >= 1
    assert figures["trivial_endpoint"]["per_s"] > 0 and figures["trivial_endpoint"]["path"] == "/login/"
