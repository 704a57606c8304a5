"""A pairwise study's results page is served from the results cache (``services.results_cache``) as an ACR
study's is: computed once, stored in its ResultsSnapshot, served with the freshness line; a new choice marks the
study dirty (with a broker: one debounced job) or, without one, the page recomputes in-process."""

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from mos_study import tasks
from mos_study.models import Comparison, ResultsSnapshot
from mos_study.services import pairwise_exports, results_cache
from mos_study.services.comparing import choose_side
from mos_study.services.sessions import start_session
from tests.support.study_factory import store_outputs

from .test_pairwise_study import pairwise_study, rate_panel, trials_of

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_cache")]
RATERS, IMAGES = 3, 4  # each rater: 4 test pairs, 1 trap pair


@pytest.fixture
def study(media_root):
    store_outputs(media_root)
    return pairwise_study(name="pw-cache", gold_trials=1, images_per_session=IMAGES)


@pytest.fixture
def client():
    client = Client()
    client.force_login(User.objects.create_superuser("boss", password="pw"))
    return client


@pytest.fixture
def builds(monkeypatch):
    """Counts the pairwise exports built (each is the bootstrap the page must not run per request); 50 bootstrap
    samples instead of 1000 to keep the test short."""
    calls = []
    build = pairwise_exports.build_pairwise_export

    def counted(*args, **kwargs):
        calls.append(1)
        return build(*args, **{"bootstrap": 50, **kwargs})

    monkeypatch.setattr(pairwise_exports, "build_pairwise_export", counted)
    return calls


@pytest.fixture
def broker(settings, monkeypatch):
    """A deployment with a broker: the jobs that would be sent (study id, countdown) are recorded, not run."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.SRMOS_RESULTS_DEBOUNCE_S = 7
    monkeypatch.setattr(results_cache, "_with_row", set())
    sent = []
    monkeypatch.setattr(tasks.compute_results, "apply_async", lambda args, countdown: sent.append((args[0], countdown)))
    return sent


def page(client, study, name="study_results", *args):
    return client.get(reverse(f"mos_study:{name}", args=[study.pk, *args]))


def one_more_choice(study):
    """A new rater's first choice, through the raters' real path."""
    session = start_session(study, participant_id="late", seed=999)
    trial = trials_of(session)[0]
    choose_side(session.rater.token, trial.token, "left", response_ms=900)


def test_without_a_broker_the_page_is_served_from_the_snapshot_until_a_choice_comes(
    study, client, builds, django_capture_on_commit_callbacks
):
    rate_panel(study, RATERS)
    first = page(client, study)
    html = first.content.decode()
    assert first.status_code == 200 and builds == [1]
    assert 'id="scale-table"' in html and 'id="results-freshness"' in html
    line = first.context["freshness_line"]
    assert f"from {RATERS * IMAGES} choices" in line and "up to date" in line
    snapshot = ResultsSnapshot.objects.get(study=study)
    assert snapshot.archive is not None and snapshot.version == pairwise_exports.comparisons_version(study)
    assert snapshot.last_rating_id == Comparison.objects.latest("pk").pk
    served = page(client, study)
    csv = page(client, study, "export_file", "comparisons.csv")
    assert builds == [1]  # the page and its downloads come from the snapshot, not a new bootstrap
    assert served.context["scale"] == first.context["scale"] and served.context["version"] == snapshot.version
    assert len(csv.content.decode().splitlines()) == 1 + Comparison.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        one_more_choice(study)
    again = page(client, study)
    assert builds == [1, 1] and again.context["version"] != snapshot.version  # recomputed in-process, once
    assert "up to date" in again.context["freshness_line"]
    csv = page(client, study, "export_file", "comparisons.csv")
    assert builds == [1, 1] and len(csv.content.decode().splitlines()) == 1 + Comparison.objects.count()


def test_with_a_broker_a_choice_marks_the_study_dirty_and_the_page_says_so(
    study, client, builds, broker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        rate_panel(study, RATERS)
    assert broker == [(study.pk, 7)] and builds == []  # one debounced job for the burst; no choice computes
    assert ResultsSnapshot.objects.get(study=study).dirty_since is not None
    assert tasks.compute_results.apply(args=(study.pk,), throw=True).get() == f"computed from {RATERS * IMAGES} ratings"
    assert builds == [1]
    served = page(client, study)
    assert builds == [1] and "up to date" in served.context["freshness_line"]
    with django_capture_on_commit_callbacks(execute=True):
        one_more_choice(study)
    assert broker == [(study.pk, 7), (study.pk, 7)]  # dirty again: the next job is queued
    stale = page(client, study)
    line = stale.context["freshness_line"]
    assert builds == [1] and "1 new choice since, recomputing." in line
    assert 'id="results-freshness"' in stale.content.decode() and 'id="scale-table"' in stale.content.decode()
