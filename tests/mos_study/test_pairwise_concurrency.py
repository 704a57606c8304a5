"""Pairwise studies under concurrency on a real database (SQLite file, PostgreSQL), as
tests/mos_study/test_study_concurrency.py checks ACR studies: raters starting sessions from many threads at once get
balanced pairs; one session's choices made all at the same moment finish it; the same choice posted from several
tabs at once is stored once.

Each case runs this file as a script in a subprocess whose settings come from DATABASE_URL; the script prints what
it found as JSON.
"""

import json
import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
THREADS, SESSIONS_PER_THREAD, PAIRS_PER_SESSION = 8, 5, 3  # 120 pairs over 5 images x 3 pairs: 8 each
METHODS = ["nn", "bicubic", "srgan-vgg54"]


def run_script(tmp_path, database_url):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "SRMOS_"))}
    env.update(DATABASE_URL=database_url, SRMOS_MEDIA_ROOT=str(tmp_path / "media"), DJANGO_SECRET_KEY="x" * 50)
    result = subprocess.run([sys.executable, __file__], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def check(report):
    assert report["errors"] == []
    assert report["sessions"] == THREADS * SESSIONS_PER_THREAD
    pairs = report["per_pair"]
    assert len(pairs) == 5 * 3 and sum(pairs) == THREADS * SESSIONS_PER_THREAD * PAIRS_PER_SESSION
    assert max(pairs) - min(pairs) <= 1, pairs  # the full design: every pair equally often
    assert report["parallel_choices_finished_session"] and report["parallel_comparisons"] == PAIRS_PER_SESSION
    assert report["same_choice_stored"] == 1 and report["same_choice_created"] == 1


@pytest.mark.slow
def test_concurrent_pairwise_sessions_and_choices_on_sqlite(tmp_path):
    check(run_script(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}"))


@pytest.mark.slow
@pytest.mark.postgres
def test_concurrent_pairwise_sessions_and_choices_on_postgres(tmp_path, require_postgres):
    from tests.support.live import fresh_database

    with fresh_database(require_postgres) as database_url:
        check(run_script(tmp_path, database_url))


def in_threads(target, arguments):
    """Run ``target(*a)`` for each ``a`` in ``arguments`` in its own thread, all released at once; errors listed."""
    from django.db import connection

    barrier, errors, results = threading.Barrier(len(arguments)), [], []

    def run(*args):
        try:
            barrier.wait()
            results.append(target(*args))
        except Exception as error:  # noqa: BLE001 -- reported to the test
            errors.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=args) for args in arguments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


def main():
    """Script mode: migrate, store outputs, start sessions from THREADS threads, then choose in parallel."""
    sys.path.insert(0, str(REPO))
    from tests.support.script_mode import set_up_django

    set_up_django(methods=METHODS)
    from mos_study.models import Comparison, Trial
    from mos_study.services.comparing import choose_side
    from mos_study.services.sessions import start_session
    from mos_study.services.study_setup import create_study

    study = create_study(
        "race",
        ["Set5"],
        METHODS,
        protocol="pairwise",
        pair_design="full",
        images_per_session=PAIRS_PER_SESSION,
        ratings_per_stimulus=1000,
        min_view_ms=0,
        run_missing=False,
    )

    def sessions_of_one_rater():
        for _ in range(SESSIONS_PER_THREAD):
            start_session(study)

    _, errors = in_threads(sessions_of_one_rater, [()] * THREADS)
    pairs = Counter(
        frozenset(pair) for pair in Trial.objects.filter(kind=Trial.Kind.PAIR).values_list("stimulus", "stimulus_b")
    )

    # One session's pairs all chosen at the same moment (several tabs): the session must still end up finished.
    session = study.sessions.order_by("pk").first()
    tokens = list(session.trials.values_list("token", flat=True))
    _, more = in_threads(lambda token: choose_side(session.rater.token, token, "left"), [(t,) for t in tokens])
    session.refresh_from_db()
    # The same choice from four tabs at once: stored once, created once, the others answered with it.
    other = study.sessions.order_by("pk")[1]
    token = other.trials.order_by("position").values_list("token", flat=True).first()
    receipts, most = in_threads(lambda: choose_side(other.rater.token, token, "right"), [()] * 4)
    print(
        json.dumps(
            {
                "errors": errors + more + most,
                "sessions": study.sessions.count(),
                "per_pair": sorted(pairs.values()),
                "parallel_choices_finished_session": session.finished is not None,
                "parallel_comparisons": Comparison.objects.filter(trial__session=session).count(),
                "same_choice_stored": Comparison.objects.filter(trial__token=token).count(),
                "same_choice_created": sum(receipt.created for receipt in receipts),
            }
        )
    )


if __name__ == "__main__":
    main()
