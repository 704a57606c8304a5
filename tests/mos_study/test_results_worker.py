"""The dashboard's results job on a real Celery worker, Redis and PostgreSQL (issue 17): a burst of ratings through
the raters' path queues one debounced job; the worker stores the result; the page serves it and says how fresh it
is; the next burst is shown as new ratings while its job waits, then computed once."""

import time
import uuid

import pytest

from tests.support.live import app_env, celery_worker, count_rows, run_script, seed_study

DEBOUNCE_S = 12  # long enough that the page is asked while the second burst's job still waits, on a loaded machine


def wait_for_snapshot(database_url, study_id, n_ratings, timeout=180):
    """Until the stored result was computed from n_ratings and no job is queued; returns the row's (n, error)."""
    deadline = time.monotonic() + timeout
    sql = "SELECT count(*) FROM mos_study_resultssnapshot WHERE study_id = %s AND n_ratings = %s AND queued_at IS NULL"
    while time.monotonic() < deadline:
        if count_rows(database_url, sql, study_id, n_ratings):
            return
        time.sleep(0.5)
    raise AssertionError(f"no result from {n_ratings} ratings within {timeout} s")


def computed(log, study_id):
    return log.read_text().count(f"results of study {study_id}: computed from")


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.postgres
def test_a_real_worker_computes_each_burst_of_ratings_once(tmp_path, require_redis, postgres_database):
    queue = f"srmos-results-{uuid.uuid4().hex[:8]}"
    env = app_env(
        tmp_path,
        postgres_database,
        CELERY_BROKER_URL=require_redis,
        CELERY_RESULT_BACKEND=require_redis,
        SRMOS_RESULTS_DEBOUNCE_S=DEBOUNCE_S,
        SRMOS_TEST_QUEUE=queue,
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    study = seed_study(env, images=6, methods=("nn", "bicubic"), name="crowd")["id"]
    log = tmp_path / "worker.log"
    with celery_worker(env, queue, log):
        first = run_script(env, "results_job.py", "rate", study, 4, 6)
        assert first["ratings"] == 24
        wait_for_snapshot(postgres_database, study, 24)
        assert computed(log, study) == 1  # 24 ratings, one job
        shown = run_script(env, "results_job.py", "page", study)
        assert shown["status"] == 200 and "from 24 ratings" in shown["line"] and "up to date" in shown["line"]

        second = run_script(env, "results_job.py", "rate", study, 2, 5)
        waiting = run_script(env, "results_job.py", "page", study)
        assert second["seconds"] < DEBOUNCE_S, "the burst took longer than the debounce: the check below would race"
        assert "from 24 ratings" in waiting["line"] and "10 new ratings since, recomputing." in waiting["line"]
        wait_for_snapshot(postgres_database, study, 34)
        assert computed(log, study) == 2
        assert "from 34 ratings" in run_script(env, "results_job.py", "page", study)["line"]
    queued = "SELECT count(*) FROM mos_study_resultssnapshot WHERE study_id = %s AND error = ''"
    assert count_rows(postgres_database, queued, study) == 1
