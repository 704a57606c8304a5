"""Concurrency on a real database (SQLite file, PostgreSQL): many threads starting sessions at once stay balanced,
and a session whose trials are all rated at the same moment still ends up finished.

Each case runs this file as a script in a subprocess whose settings come from DATABASE_URL, as a deployment's would;
the script prints how many trials each stimulus got.
"""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
THREADS, SESSIONS_PER_THREAD, IMAGES_PER_SESSION = 8, 5, 3  # 120 assignments over 10 stimuli: 12 each


def run_script(tmp_path, database_url):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "SRMOS_"))}
    env.update(DATABASE_URL=database_url, SRMOS_MEDIA_ROOT=str(tmp_path / "media"), DJANGO_SECRET_KEY="x" * 50)
    result = subprocess.run([sys.executable, __file__], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def check_balanced(report):
    counts = report["trials_per_stimulus"]
    assert report["errors"] == []
    assert report["sessions"] == THREADS * SESSIONS_PER_THREAD
    assert sum(counts) == THREADS * SESSIONS_PER_THREAD * IMAGES_PER_SESSION
    assert max(counts) - min(counts) <= 1, counts
    assert report["parallel_ratings_finished_session"]


@pytest.mark.slow
def test_concurrent_sessions_stay_balanced_on_sqlite(tmp_path):
    check_balanced(run_script(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}"))


@pytest.mark.slow
@pytest.mark.postgres
def test_concurrent_sessions_stay_balanced_on_postgres(tmp_path, require_postgres):
    from tests.support.live import fresh_database

    with fresh_database(require_postgres) as database_url:
        check_balanced(run_script(tmp_path, database_url))


def main():
    """Script mode: migrate, store outputs, then start sessions from THREADS threads at the same moment."""
    sys.path.insert(0, str(REPO))
    from tests.support.script_mode import set_up_django

    set_up_django(methods=["bicubic", "srgan-vgg54"])
    from django.db import connection
    from django.db.models import Count

    from mos_study.models import Trial
    from mos_study.services.rating import submit_rating
    from mos_study.services.sessions import start_session
    from mos_study.services.study_setup import create_study

    study = create_study(
        "race",
        ["Set5"],
        ["bicubic", "srgan-vgg54"],
        images_per_session=IMAGES_PER_SESSION,
        ratings_per_stimulus=1000,
        run_missing=False,
    )
    barrier, errors = threading.Barrier(THREADS), []

    def rater():
        try:
            barrier.wait()
            for _ in range(SESSIONS_PER_THREAD):
                start_session(study)
        except Exception as error:  # noqa: BLE001 -- reported to the test
            errors.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=rater) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = dict(study.stimuli.values_list("pk").annotate(n=Count("trials")))

    # One session's trials all rated at the same moment (several tabs): the session must still end up finished.
    session = study.sessions.first()
    trials = list(session.trials.values_list("token", flat=True))
    rate_barrier = threading.Barrier(len(trials))

    def rate(token):
        try:
            rate_barrier.wait()
            submit_rating(session.rater, token, 3)
        except Exception as error:  # noqa: BLE001 -- reported to the test
            errors.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=rate, args=(token,)) for token in trials]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    session.refresh_from_db()
    print(
        json.dumps(
            {
                "errors": errors,
                "sessions": study.sessions.count(),
                "trials_per_stimulus": sorted(counts.values()),
                "trial_kinds": sorted(set(Trial.objects.values_list("kind", flat=True))),
                "parallel_ratings_finished_session": session.finished is not None,
            }
        )
    )


if __name__ == "__main__":
    main()
