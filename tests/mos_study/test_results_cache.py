"""The dashboard's results computed by a job and served at once (issue 17): debounced jobs, one at a time per
study; the page says how fresh its result is; a failed job keeps the last good result and says so.

"Broker" tests switch ``CELERY_TASK_ALWAYS_EAGER`` off and record what would be sent to the broker; the job itself
is then run as a worker runs it (``tasks.compute_results``). The real worker is in test_results_worker.py.
"""

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from mos_study import analysis, tasks
from mos_study.models import ResultsSnapshot, Study
from mos_study.services import exports, results_cache
from mos_study.services.rating import rate_trial
from mos_study.services.sessions import start_session

from .test_dashboard_results import add_raters, make_study, url

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_cache")]
PER_RATER = 23  # add_raters: 2 calibration, 20 stimuli, 1 repeat
PARTICIPANTS = itertools.count()


@pytest.fixture
def study(tmp_path):
    return make_study(tmp_path / "media")


@pytest.fixture
def owner(client, people):
    client.force_login(people["owner"])
    return client


@pytest.fixture
def analyses(monkeypatch):
    """Counts the analyses run (each is one ``build_results``)."""
    calls = []
    build = analysis.build_results
    monkeypatch.setattr(analysis, "build_results", lambda *a, **k: calls.append(1) or build(*a, **k))
    return calls


@pytest.fixture
def broker(settings, monkeypatch):
    """A deployment with a broker: the jobs that would be sent (study id, countdown) are recorded, not run."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.SRMOS_RESULTS_DEBOUNCE_S = 7
    monkeypatch.setattr(results_cache, "_with_row", set())  # ids come again after each test's rollback (SQLite)
    sent = []
    monkeypatch.setattr(tasks.compute_results, "apply_async", lambda args, countdown: sent.append((args[0], countdown)))
    return sent


def run_job(study):
    """What a worker does with the queued job."""
    return tasks.compute_results.apply(args=(study.pk,), throw=True).get()


def rate_some(study, raters=2, trials=3):
    """Ratings through the raters' real path (``rate_trial``), committed one by one."""
    study.status = Study.Status.OPEN
    study.save(update_fields=["status"])
    for r in range(raters):
        session = start_session(study, participant_id=f"live{next(PARTICIPANTS)}")
        for trial in session.trials.order_by("position")[:trials]:
            rate_trial(session.rater.token, trial.token, 3, response_ms=2000)


def test_without_a_broker_the_page_computes_once_and_then_serves_the_stored_result(study, owner, analyses):
    add_raters(study, 3)
    page = owner.get(url("study_results", study))
    assert page.status_code == 200 and len(analyses) == 1
    line = page.context["freshness_line"]
    assert line.startswith("Computed 0") and f"from {3 * PER_RATER} ratings" in line and "up to date" in line
    assert 'id="results-freshness"' in page.content.decode()
    snapshot = ResultsSnapshot.objects.get(study=study)
    assert snapshot.n_ratings == 3 * PER_RATER and snapshot.archive and snapshot.error == ""
    again = owner.get(url("study_results", study))
    assert len(analyses) == 1 and again.context["version"] == page.context["version"]
    assert (
        owner.get(url("export_file", study, "mos.csv")).content
        == results_cache.unpack(bytes(snapshot.archive)).files["mos.csv"]
    )
    assert len(analyses) == 1


def test_a_rating_marks_the_study_dirty_and_a_burst_queues_one_debounced_job(
    study, broker, analyses, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        rate_some(study, raters=2, trials=3)
    assert broker == [(study.pk, 7)]  # six ratings, one job, delayed by SRMOS_RESULTS_DEBOUNCE_S
    snapshot = ResultsSnapshot.objects.get(study=study)
    assert snapshot.dirty_since is not None and snapshot.queued_at is not None and analyses == []
    assert run_job(study) == "computed from 6 ratings"
    snapshot.refresh_from_db()
    assert (snapshot.dirty_since, snapshot.queued_at, snapshot.n_ratings) == (None, None, 6) and analyses
    done = len(analyses)
    with django_capture_on_commit_callbacks(execute=True):
        rate_some(study, raters=1, trials=2)
    assert broker == [(study.pk, 7), (study.pk, 7)] and len(analyses) == done


def test_ratings_stored_while_a_job_runs_queue_the_next_one_when_it_ends(
    study, broker, monkeypatch, django_capture_on_commit_callbacks
):
    add_raters(study, 2)
    build = exports.build_export

    def rating_arrives_meanwhile(*args, **kwargs):
        results_cache.ratings_changed(study.pk)  # committed while the job computes
        return build(*args, **kwargs)

    monkeypatch.setattr(exports, "build_export", rating_arrives_meanwhile)
    with django_capture_on_commit_callbacks(execute=True):
        results_cache.request_compute(study.pk)
    assert broker == [(study.pk, 7)]
    with django_capture_on_commit_callbacks(execute=True):
        results_cache.ratings_changed(study.pk)  # queued already: no second job
    assert broker == [(study.pk, 7)]
    with django_capture_on_commit_callbacks(execute=True):
        run_job(study)
    assert broker == [(study.pk, 7), (study.pk, 7)]  # the job queued its successor as it ended


def test_the_page_serves_the_last_result_at_once_and_says_how_fresh_it_is(
    study, owner, broker, analyses, django_capture_on_commit_callbacks
):
    def get(name, **params):
        with django_capture_on_commit_callbacks(execute=True):  # what the request queued goes out on commit
            return owner.get(url(name, study), params)

    add_raters(study, 2)
    first = get("study_results")
    assert "the first results are being computed" in first.content.decode()
    assert broker == [(study.pk, 0)]  # nothing to show yet: the first job is not delayed
    get("study_results")
    assert broker == [(study.pk, 0)]  # queued already
    run_job(study)
    assert analyses
    done = len(analyses)
    add_raters(study, 1, first=2)  # 23 ratings the job has not seen (bulk inserts: no rating hook)
    page = get("study_results")
    assert len(analyses) == done  # served, not computed
    line = page.context["freshness_line"]
    assert f"from {2 * PER_RATER} ratings" in line and f"{PER_RATER} new ratings since, recomputing." in line
    assert page.context["n_ratings"] == 2 * PER_RATER and broker[-1] == (study.pk, 7)
    assert get("results_live", version=page.context["version"], state=line).status_code == 204
    run_job(study)
    fresh = get("results_live", version=page.context["version"], state=line)
    html = fresh.content.decode()
    assert fresh.status_code == 200 and 'id="results-body"' in html and f"from {3 * PER_RATER} ratings" in html
    assert "up to date" in fresh.context["freshness_line"]
    # Only the line changed (minutes passed): the poll brings the line, not the body.
    ResultsSnapshot.objects.filter(study=study).update(computed_at=timezone.now() - timedelta(minutes=3))
    moved = get("results_live", version=fresh.context["version"], state=fresh.context["freshness_line"])
    assert moved.status_code == 200 and 'id="results-body"' not in moved.content.decode()
    assert "Computed 3\xa0minutes ago" in moved.content.decode()


def test_a_failed_job_keeps_the_last_good_result_and_says_so(study, owner, broker, monkeypatch):
    add_raters(study, 2)
    results_cache.request_compute(study.pk)
    run_job(study)
    good = owner.get(url("export_file", study, "mos.csv")).content
    add_raters(study, 1, first=2)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    working = exports.build_export
    monkeypatch.setattr(exports, "build_export", broken)
    assert run_job(study) == "failed: RuntimeError: disk full"
    snapshot = ResultsSnapshot.objects.get(study=study)
    assert snapshot.n_ratings == 2 * PER_RATER and snapshot.failed_at is not None and snapshot.queued_at is None
    page = owner.get(url("study_results", study))
    line = page.context["freshness_line"]
    assert "The last recomputation failed" in line and "(RuntimeError: disk full)" in line
    assert "the results shown are the last good ones" in line and page.context["n_ratings"] == 2 * PER_RATER
    assert 'class="notice">' in page.content.decode()
    assert owner.get(url("export_file", study, "mos.csv")).content == good
    monkeypatch.setattr(exports, "build_export", working)
    run_job(study)
    snapshot.refresh_from_db()
    assert snapshot.error == "" and snapshot.n_ratings == 3 * PER_RATER


def test_a_job_lost_with_its_worker_is_queued_again(study, broker, settings, django_capture_on_commit_callbacks):
    settings.SRMOS_RESULTS_JOB_LOST_S = 60
    with django_capture_on_commit_callbacks(execute=True):
        assert results_cache.request_compute(study.pk) and not results_cache.request_compute(study.pk)
        ResultsSnapshot.objects.filter(study=study).update(queued_at=timezone.now() - timedelta(seconds=61))
        assert results_cache.request_compute(study.pk)
    assert [job for job, _ in broker] == [study.pk, study.pk]


def test_a_rating_request_never_computes_results_without_a_broker(study, analyses, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        rate_some(study, raters=1, trials=2)
    assert analyses == [] and not ResultsSnapshot.objects.filter(study=study).exists()


def test_a_rating_of_a_dirty_study_costs_one_query(study, broker, django_assert_num_queries):
    results_cache.ratings_changed(study.pk)  # creates the row, marks it dirty, queues the job
    with django_assert_num_queries(1):  # one UPDATE that finds the study dirty already
        results_cache.ratings_changed(study.pk)
    snapshot = ResultsSnapshot.objects.get(study=study)
    assert snapshot.dirty_since is not None and snapshot.queued_at is not None
