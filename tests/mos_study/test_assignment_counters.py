"""The per-stimulus assignment counters (``Stimulus.assigned``) always equal the trial counts they stand for
(``sessions.trial_counts(study, held(now))``, the count over every trial that session starts used to run), through
session starts, ratings, expiries, comebacks, heartbeats, released sessions, pauses, closes and deleted raters; and
on a real database under concurrency (SQLite file, PostgreSQL), with every kind of change racing at once.

The concurrent cases run this file as a script in a subprocess whose settings come from DATABASE_URL, as a
deployment's would; the script prints the counters beside the trial counts.
"""

import json
import os
import random
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
THREADS, ROUNDS = 6, 6


def counters_and_counts(study, now):
    """(what the counters say, the reference count over trials, the stored counters after releasing run-out
    leases) at ``now``."""
    from django.db import transaction

    from mos_study.services import sessions

    said = sessions.assigned_counts(study, now=now)
    reference = sessions.trial_counts(study, sessions.held(now))
    with transaction.atomic():
        sessions.lock_study(study)
        sessions.release_expired(study, now)
        stored = dict(sessions.test_stimuli(study).values_list("pk", "assigned"))
    return said, reference, stored


def assert_exact(study, now=None):
    from django.utils import timezone

    said, reference, stored = counters_and_counts(study, now or timezone.now())
    assert said == reference
    assert stored == reference
    return reference


@pytest.mark.django_db
class TestCountersInProcess:
    @pytest.fixture
    def study(self, media_root):
        from mos_study.services.study_setup import create_study
        from tests.support.study_factory import store_outputs

        store_outputs(media_root)
        return create_study(
            "counted",
            ["Set5"],
            ["bicubic", "srgan-vgg54"],
            images_per_session=4,
            ratings_per_stimulus=3,
            repeated_trials=1,
            run_missing=False,
        )

    def test_starts_ratings_and_finishing_keep_the_counters_exact(self, study):
        from mos_study.services.rating import submit_rating
        from mos_study.services.sessions import start_session

        first = start_session(study, participant_id="a")
        second = start_session(study, participant_id="b")
        assert sum(assert_exact(study).values()) == 8  # repeats are not counted, only the 4 test trials each
        for trial in first.trials.all():
            submit_rating(first.rater, trial.token, 4)
        first.refresh_from_db()
        assert first.finished is not None
        assert sum(assert_exact(study).values()) == 8
        assert second.pk

    def test_a_lease_run_out_frees_the_trials_and_a_rater_who_comes_back_takes_them_again(self, study):
        from django.utils import timezone

        from mos_study.models import RatingSession
        from mos_study.services.rating import submit_rating
        from mos_study.services.sessions import heartbeat, start_session

        gone = start_session(study, participant_id="gone")
        back = start_session(study, participant_id="back")
        trial = back.trials.filter(kind="trial").first()
        submit_rating(back.rater, trial.token, 2)
        RatingSession.objects.filter(pk__in=[gone.pk, back.pk]).update(
            lease_until=timezone.now() - timedelta(seconds=5)
        )
        assert sum(assert_exact(study).values()) == 1  # the rated trial stays; the unrated ones are free
        assert not RatingSession.objects.get(pk=back.pk).holds_trials
        start_session(study, participant_id="third")
        assert sum(assert_exact(study).values()) == 5
        # A rating from the rater who came back extends the lease: the session holds its trials again.
        other = back.trials.filter(kind="trial").exclude(pk=trial.pk).first()
        submit_rating(back.rater, other.token, 5)
        assert RatingSession.objects.get(pk=back.pk).holds_trials
        assert sum(assert_exact(study).values()) == 8  # its 4 trials and the third rater's 4
        # So does a heartbeat of the open page.
        heartbeat(gone.rater.token)
        assert sum(assert_exact(study).values()) == 12

    def test_a_full_study_and_a_later_time_read_the_same_as_the_trial_count(self, study):
        from django.utils import timezone

        from mos_study.services.errors import StudyFull
        from mos_study.services.sessions import availability, start_session

        for i in range(3):  # 10 stimuli x 3 ratings, 4 per session
            start_session(study, participant_id=f"p{i}")
        with pytest.raises(StudyFull):
            for i in range(3, 10):
                start_session(study, participant_id=f"p{i}")
        assert min(assert_exact(study).values()) == 3
        assert "try again" in str(availability(study))
        later = timezone.now() + timedelta(hours=3)  # every lease has run out by then
        assert set(assert_exact(study, later).values()) == {0}
        assert availability(study, now=later) is None

    def test_released_sessions_pauses_and_closes_keep_the_counters_exact(self, study):
        from django.utils import timezone

        from mos_study.models import Study
        from mos_study.services.rating import submit_rating
        from mos_study.services.sessions import release_abandoned, start_session

        idle = start_session(study, participant_id="idle")
        busy = start_session(study, participant_id="busy")
        later = timezone.now() + timedelta(minutes=11)
        submit_rating(busy.rater, busy.trials.filter(kind="trial").first().token, 3)
        assert release_abandoned(study, now=later) == 1  # busy; idle's start lease (10 min) ran out by then
        assert sum(assert_exact(study, later).values()) == 1  # only the rated trial stays
        for n, status in enumerate((Study.Status.PAUSED, Study.Status.CLOSED, Study.Status.OPEN), start=1):
            Study.objects.filter(pk=study.pk).update(status=status)
            rated = idle.trials.filter(kind="trial", rating__isnull=True).first()
            submit_rating(idle.rater, rated.token, 1)  # raters in a session finish, whatever the state
            assert sum(assert_exact(study, later).values()) == 1 + 4  # the rater came back: idle holds again
            assert idle.trials.filter(rating__isnull=False).count() == n

    def test_deleting_test_raters_in_the_admin_counts_again(self, study, client, django_user_model):
        from django.urls import reverse

        from mos_study.models import Rater
        from mos_study.services.sessions import start_session

        kept, dropped = start_session(study, participant_id="kept"), start_session(study, participant_id="test")
        admin = django_user_model.objects.create_superuser("root", password="pw")
        client.force_login(admin)
        response = client.post(
            reverse("admin:mos_study_rater_changelist"),
            {"action": "delete_test_raters", "_selected_action": [dropped.rater.pk]},
        )
        assert response.status_code == 302
        assert not Rater.objects.filter(pk=dropped.rater.pk).exists()
        assert sum(assert_exact(study).values()) == 4
        assert kept.pk


def run_script(tmp_path, database_url):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "SRMOS_"))}
    env.update(DATABASE_URL=database_url, SRMOS_MEDIA_ROOT=str(tmp_path / "media"), DJANGO_SECRET_KEY="x" * 50)
    result = subprocess.run([sys.executable, __file__], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def check_exact(report):
    assert report["errors"] == []
    assert report["sessions"] >= THREADS * ROUNDS
    assert report["released"] > 0 and report["taken_back"] > 0  # both directions happened under the race
    for said, reference, stored in report["checks"]:
        assert said == reference
        assert stored == reference
    assert sum(report["checks"][-1][1].values()) > 0


@pytest.mark.slow
def test_counters_stay_exact_under_concurrency_on_sqlite(tmp_path):
    check_exact(run_script(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}"))


@pytest.mark.slow
@pytest.mark.postgres
def test_counters_stay_exact_under_concurrency_on_postgres(tmp_path, require_postgres):
    from tests.support.live import fresh_database

    with fresh_database(require_postgres) as database_url:
        check_exact(run_script(tmp_path, database_url))


def race(study, errors, released, taken_back, seed):
    """One thread: start sessions, rate some trials, let some leases run out, come back to others (ratings and
    heartbeats), release idle sessions, pause and reopen the study."""
    from django.db import connection
    from django.utils import timezone

    from mos_study.models import RatingSession, Study
    from mos_study.services.errors import StudyNotOpen
    from mos_study.services.sessions import heartbeat, release_abandoned, start_session

    rng = random.Random(seed)
    try:
        for _ in range(ROUNDS):
            session = None
            for _attempt in range(50):  # other threads pause the study for a moment, maybe again and again
                try:
                    session = start_session(study)
                    break
                except StudyNotOpen:
                    Study.objects.filter(pk=study.pk).update(status=Study.Status.OPEN)
            if session is None:
                raise RuntimeError("the study stayed paused through 50 attempts to start a session")
            trials = list(session.trials.filter(kind="trial").values_list("token", flat=True))
            for token in trials[: rng.randint(0, len(trials))]:
                rate_racing(session.rater.token, token, rng.randint(1, 5))
            if rng.random() < 0.5:  # this rater leaves: time passes for its lease
                RatingSession.objects.filter(pk=session.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
            gone = RatingSession.objects.filter(study=study, holds_trials=False, finished__isnull=True).order_by("?")
            for back in gone[:2]:  # raters who left come back
                unrated = back.trials.filter(kind="trial", rating__isnull=True).values_list("token", flat=True)
                if unrated and rng.random() < 0.5:
                    rate_racing(back.rater.token, unrated[0], 3)
                else:
                    heartbeat(back.rater.token)
                taken_back.append(back.pk)
            if rng.random() < 0.3:
                released.append(release_abandoned(study, idle=timedelta(0), now=timezone.now() + timedelta(seconds=1)))
            if rng.random() < 0.2:
                Study.objects.filter(pk=study.pk).update(status=Study.Status.PAUSED)
                Study.objects.filter(pk=study.pk).update(status=Study.Status.OPEN)
            released.append(start_session_releases(study))
    except Exception as error:  # noqa: BLE001 -- reported to the test
        errors.append(repr(error))
    finally:
        connection.close()


def rate_racing(rater_token, trial_token, score):
    """A rating, where another thread may rate the same trial (a session released and taken back meanwhile): a
    refused second rating is the rating path's contract, not an error of the race."""
    from mos_study.services.errors import RatingConflict, SessionMovedOn
    from mos_study.services.rating import rate_trial

    try:
        rate_trial(rater_token, trial_token, score)
    except (RatingConflict, SessionMovedOn):
        pass


def start_session_releases(study):
    """How many sessions are released (not holding) right now: a start released them, or release_abandoned."""
    from mos_study.models import RatingSession

    return RatingSession.objects.filter(study=study, holds_trials=False).count()


def main():
    """Script mode: migrate, store outputs, then race THREADS threads over one study; print the counters beside the
    trial counts after each round of checks."""
    sys.path.insert(0, str(REPO))
    from tests.support.script_mode import set_up_django

    set_up_django(methods=["bicubic", "srgan-vgg54"])
    from django.utils import timezone

    from mos_study.services.study_setup import create_study

    study = create_study(
        "counted-race",
        ["Set5"],
        ["bicubic", "srgan-vgg54"],
        images_per_session=4,
        ratings_per_stimulus=10_000,
        repeated_trials=1,
        run_missing=False,
    )
    errors, released, taken_back = [], [], []
    threads = [
        threading.Thread(target=race, args=(study, errors, released, taken_back, seed)) for seed in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    checks = []
    for now in (timezone.now(), timezone.now() + timedelta(hours=3)):
        said, reference, stored = counters_and_counts(study, now)
        checks.append([{str(k): v for k, v in d.items()} for d in (said, reference, stored)])
    print(
        json.dumps(
            {
                "errors": errors,
                "sessions": study.sessions.count(),
                "released": max(released, default=0),
                "taken_back": len(taken_back),
                "checks": checks,
            }
        )
    )


if __name__ == "__main__":
    main()


def test_the_constant_time_arrangement_check_agrees_with_arrangeable():
    """order_apart checks each image in O(1) (sessions of 100 test images were quadratic): the same answers as
    ``arrangeable`` on the counts after taking one item, so a seed's order stays what it was."""
    from mos_study.services.sessions import arrangeable, arrangeable_after_taking

    rng = random.Random(0)
    for _ in range(5000):
        counts = {image: rng.randint(1, 6) for image in range(rng.randint(1, 7))}
        sizes = sorted(counts.values(), reverse=True)
        top, second = sizes[0], sizes[1] if len(sizes) > 1 else 0
        n = sum(sizes)
        for image, k in counts.items():
            after = {**counts, image: k - 1}
            fast = arrangeable_after_taking(k, n, top, sizes.count(top), second)
            assert fast == arrangeable(after, first_not=image), (counts, image)
