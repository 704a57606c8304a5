"""The rater's pages and every bad input, through Django's test client."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from mos_study.models import Rater, Rating, RatingSession, Study
from mos_study.services.rating import submit_rating
from mos_study.services.rating_table import RATING_COLUMNS
from mos_study.services.study_setup import create_study

from tests.support.study_factory import store_outputs

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_cache")]  # fresh rate-limit counters


@pytest.fixture
def study(media_root, tmp_path):
    store_outputs(tmp_path)
    return create_study(
        "views", ["Set5"], ["bicubic", "srgan-vgg54"], images_per_session=3, calibration_images=1, run_missing=False
    )


def start(client, study, query=""):
    """Consent through the study link; returns the rater."""
    url = reverse("mos_study:start", args=[study.token]) + query
    response = client.post(url, {"consent": "on", "participant_id": ""})
    assert response.status_code == 302
    return Rater.objects.get(token=response["Location"].rstrip("/").rsplit("/", 1)[-1])


def post_rating(client, rater, trial, score, **extra):
    body = {"trial": trial if isinstance(trial, str) else trial.token, "score": score, **extra}
    return client.post(
        reverse("mos_study:submit_rating", args=[rater.token]), json.dumps(body), content_type="application/json"
    )


def state(client, rater):
    return client.get(reverse("mos_study:session_state", args=[rater.token])).json()


def test_consent_is_required_before_a_session_starts(client, study):
    url = reverse("mos_study:start", args=[study.token])
    page = client.get(url)
    assert page.status_code == 200 and b'name="consent"' in page.content
    assert all(label.encode() in page.content for label in ["bad", "poor", "fair", "good", "excellent"])
    refused = client.post(url, {})
    assert refused.status_code == 200 and b"Please tick the box" in refused.content
    assert not Rater.objects.exists()


def test_the_study_link_resumes_the_same_rater_from_the_cookie(client, study):
    rater = start(client, study)
    again = client.get(reverse("mos_study:start", args=[study.token]))
    assert again.status_code == 302 and again["Location"] == reverse("mos_study:rate", args=[rater.token])
    assert Rater.objects.count() == 1 and RatingSession.objects.count() == 1


@pytest.mark.parametrize("param", ["PROLIFIC_PID", "pid"])
def test_a_participant_id_resumes_the_same_session_only_with_the_panels_session_id(study, param):
    """Issue 14 #14: another browser resumes only with the panel's SESSION_ID the rater started with."""
    first = start(Client(), study, f"?{param}=abc123&SESSION_ID=s-1")
    assert first.participant_id == "abc123"
    url = reverse("mos_study:start", args=[study.token])
    assert Client().get(url + f"?{param}=abc123").status_code == 403  # the panel id alone opens nothing
    other_browser = Client().get(url + f"?{param}=abc123&SESSION_ID=s-1")
    assert other_browser["Location"] == reverse("mos_study:rate", args=[first.token])
    assert RatingSession.objects.count() == 1


def test_state_lists_unrated_trials_with_opaque_image_urls(client, study):
    rater = start(client, study)
    data = state(client, rater)
    assert data["total"] == 2 + 3 and data["done"] == 0 and not data["finished"]
    assert [t["calibration_score"] for t in data["trials"][:2]] in ([1, 5], [5, 1])
    assert all(t["image"] == f"/i/{t['token']}.png" for t in data["trials"])
    assert all(set(t) == {"token", "position", "width", "height", "calibration_score", "image"} for t in data["trials"])
    assert post_rating(client, rater, data["trials"][0]["token"], 3).status_code == 201
    assert state(client, rater)["done"] == 1 and len(state(client, rater)["trials"]) == 4


def test_image_view_serves_the_png_padded_and_names_nothing(client, study, tmp_path):
    import io

    import numpy as np
    from PIL import Image

    rater = start(client, study)
    trial = rater.sessions.get().trials.select_related("stimulus__output").first()
    response = client.get(reverse("mos_study:image", args=[trial.token]))
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    stored = (tmp_path / trial.stimulus.output.file).read_bytes()
    assert int(response["Content-Length"]) == len(response.content) > len(stored)  # padded, and says so honestly
    assert np.array_equal(
        np.asarray(Image.open(io.BytesIO(response.content))), np.asarray(Image.open(io.BytesIO(stored)))
    )
    assert client.get(reverse("mos_study:image", args=[trial.token])).content == response.content  # stable per trial
    assert "Content-Disposition" not in response
    assert "private" in response["Cache-Control"] and "max-age=86400" in response["Cache-Control"]
    assert client.get("/i/not-a-token.png").status_code == 404


def test_a_rating_is_stored_once_and_replays_are_idempotent(client, study):
    rater = start(client, study)
    trial = rater.sessions.get().trials.first()
    created = post_rating(client, rater, trial, 4, response_ms=950.4)
    assert created.status_code == 201 and created.json()["done"] == 1
    replay = post_rating(client, rater, trial, 4, response_ms=2000)
    assert replay.status_code == 200 and replay.json()["score"] == 4 and not replay.json()["created"]
    conflict = post_rating(client, rater, trial, 2)
    assert conflict.status_code == 409 and conflict.json()["error"] == "rating_conflict"
    rating = Rating.objects.get()
    assert (rating.score, rating.response_ms) == (4, 950)


@pytest.mark.parametrize(
    "body",
    [
        {"score": 0},
        {"score": 6},
        {"score": 3.5},
        {"score": "three"},
        {"score": None},
        {"score": 3, "response_ms": -5},
        {"score": 3, "response_ms": "slow"},
    ],
)
def test_bad_scores_get_400_json_and_change_nothing(client, study, body):
    rater = start(client, study)
    trial = rater.sessions.get().trials.first()
    response = post_rating(client, rater, trial, **body)
    assert response.status_code == 400 and response.json()["error"] == "invalid_rating"
    assert response.json()["message"]
    assert not Rating.objects.exists()


def test_malformed_json_gets_400(client, study):
    rater = start(client, study)
    url = reverse("mos_study:submit_rating", args=[rater.token])
    for body in ["{not json", "[1, 2]", ""]:
        response = client.post(url, body, content_type="application/json")
        assert response.status_code == 400 and "JSON" in response.json()["message"]
    assert client.get(url).status_code == 405
    assert not Rating.objects.exists()


def test_a_trial_of_another_raters_session_is_404(study):
    alice_client, bob_client = Client(), Client()
    alice, bob = start(alice_client, study), start(bob_client, study)
    bobs_trial = bob.sessions.get().trials.first()
    response = post_rating(alice_client, alice, bobs_trial, 3)
    assert response.status_code == 404 and response.json()["error"] == "trial_not_found"
    assert post_rating(alice_client, alice, "made-up-token", 3).status_code == 404
    assert not Rating.objects.exists()


def test_a_study_closed_with_screen_out_refuses_ratings_and_new_raters(client, study):
    rater = start(client, study)
    trials = list(rater.sessions.get().trials.all())
    post_rating(client, rater, trials[0], 5)
    Study.objects.filter(pk=study.pk).update(status=Study.Status.CLOSED, on_close=Study.OnClose.SCREEN_OUT)
    response = post_rating(client, rater, trials[1], 3)
    assert response.status_code == 409 and response.json()["error"] == "study_not_open"
    assert post_rating(client, rater, trials[0], 5).status_code == 200  # a replay still gets its acknowledgement
    newcomer = Client().get(reverse("mos_study:start", args=[study.token]))
    assert newcomer.status_code == 409 and b"closed" in newcomer.content and b'name="consent"' not in newcomer.content
    assert Rating.objects.count() == 1
    page = client.get(reverse("mos_study:rate", args=[rater.token]))  # the rater gets a screen-out code, not stuck
    session = rater.sessions.get()
    assert session.screen_out_code.encode() in page.content and session.completion_code.encode() not in page.content


@pytest.mark.parametrize("status", [Study.Status.CLOSED, Study.Status.PAUSED])
def test_closing_or_pausing_lets_a_rater_in_a_session_finish(client, study, status):
    rater = start(client, study)
    trials = list(rater.sessions.get().trials.all())
    post_rating(client, rater, trials[0], 5)
    Study.objects.filter(pk=study.pk).update(status=status)  # closed: on_close is "finish" by default
    newcomer = Client().get(reverse("mos_study:start", args=[study.token]))
    word = b"closed" if status == Study.Status.CLOSED else b"paused"
    assert newcomer.status_code == 409 and word in newcomer.content and b'name="consent"' not in newcomer.content
    again = client.get(reverse("mos_study:start", args=[study.token]))  # the rater in a session resumes
    assert again.status_code == 302
    for trial in trials[1:]:
        assert post_rating(client, rater, trial, 3).status_code == 201
    session = rater.sessions.get()
    assert session.finished is not None
    page = client.get(reverse("mos_study:rate", args=[rater.token]))
    assert session.completion_code.encode() in page.content


def test_a_finished_session_shows_its_code_and_accepts_no_new_score(client, study):
    rater = start(client, study)
    session = rater.sessions.get()
    for trial in session.trials.all():
        assert post_rating(client, rater, trial, 3).status_code == 201
    session.refresh_from_db()
    page = client.get(reverse("mos_study:rate", args=[rater.token]))
    assert page.status_code == 200 and session.completion_code.encode() in page.content
    assert post_rating(client, rater, session.trials.first(), 5).status_code == 409
    assert state(client, rater)["finished"] and Rating.objects.count() == 5
    Study.objects.filter(pk=study.pk).update(config={"completion_url": "https://panel.example/done?cc=1"})
    assert (
        b'href="https://panel.example/done?cc=1"' in client.get(reverse("mos_study:rate", args=[rater.token])).content
    )


def test_csrf_is_enforced_on_ratings(study):
    browser = Client(enforce_csrf_checks=True)
    page = browser.get(reverse("mos_study:start", args=[study.token]))
    token = page.context["csrf_token"]
    response = browser.post(
        reverse("mos_study:start", args=[study.token]), {"consent": "on", "csrfmiddlewaretoken": str(token)}
    )
    rater = Rater.objects.get(token=response["Location"].rstrip("/").rsplit("/", 1)[-1])
    trial = rater.sessions.get().trials.first()
    url = reverse("mos_study:submit_rating", args=[rater.token])
    body = json.dumps({"trial": trial.token, "score": 3})
    missing = browser.post(url, body, content_type="application/json")
    forged = browser.post(url, body, content_type="application/json", HTTP_X_CSRFTOKEN="x" * 32)
    assert missing.status_code == 403 and forged.status_code == 403
    assert not Rating.objects.exists()
    browser.get(reverse("mos_study:rate", args=[rater.token]))
    good = browser.post(url, body, content_type="application/json", HTTP_X_CSRFTOKEN=browser.cookies["csrftoken"].value)
    assert good.status_code == 201 and Rating.objects.count() == 1


def test_csrf_failure_view_answers_json_to_scripts(settings, study):
    settings.CSRF_FAILURE_VIEW = "mos_study.views.errors.csrf_failure"
    browser = Client(enforce_csrf_checks=True)
    rater = start(Client(), study)
    response = browser.post(
        reverse("mos_study:submit_rating", args=[rater.token]),
        "{}",
        content_type="application/json",
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 403 and response.json()["error"] == "csrf_failed"


def test_rating_and_session_creation_are_rate_limited(client, study, settings):
    settings.SRMOS_RATE_LIMITS = {"rating": {"token": "2/m"}, "session": {"ip": "3/m"}}
    rater = start(client, study)
    trials = list(rater.sessions.get().trials.all())
    assert [post_rating(client, rater, t, 3).status_code for t in trials[:3]] == [201, 201, 429]
    assert Rating.objects.count() == 2
    url = reverse("mos_study:start", args=[study.token])
    answers = [Client().post(url, {"consent": "on"}).status_code for _ in range(3)]
    assert answers == [302, 302, 429] and Rater.objects.count() == 3


# --------------------------------------------------------------------------- researchers


def test_dashboard_needs_login_and_permission(client, study, people):
    detail = reverse("mos_study:study_detail", args=[study.pk])
    assert client.get(detail).status_code == 302  # to the login page
    for name, allowed in [("owner", True), ("listed", True), ("boss", True), ("stranger", False)]:
        client.force_login(people[name])
        assert client.get(detail).status_code == (200 if allowed else 403), name
        assert client.get(reverse("mos_study:ratings_csv", args=[study.pk])).status_code == (200 if allowed else 403)
        listing = client.get(reverse("mos_study:dashboard")).content
        assert (b"views</a>" in listing) == allowed, name


def test_dashboard_shows_progress_and_the_csv_holds_every_rating(client, study, people):
    rater = start(Client(), study)
    for trial in rater.sessions.get().trials.all():
        submit_rating(rater, trial.token, 5)
    client.force_login(people["owner"])
    page = client.get(reverse("mos_study:study_detail", args=[study.pk]))
    progress = page.context["progress"]
    assert progress["ratings"] == 3 and progress["sessions_finished"] == 1
    assert b'id="stat-ratings">3<' in page.content and study.token.encode() in page.content
    lines = b"".join(client.get(reverse("mos_study:ratings_csv", args=[study.pk])).streaming_content).decode()
    rows = lines.strip().splitlines()
    assert rows[0] == ",".join(RATING_COLUMNS) and len(rows) == 1 + 5


def test_login_page_logs_a_researcher_in(client, people):
    response = client.post(reverse("mos_study:login"), {"username": "owner", "password": "pw"})
    assert response.status_code == 302 and response["Location"] == reverse("mos_study:dashboard")


def test_admin_creates_a_study_from_stored_outputs(client, study, people):
    client.force_login(people["boss"])
    assert client.get(reverse("admin:mos_study_study_add"))["Location"] == reverse("admin:mos_study_study_create")
    form = {
        "name": "from-admin",
        "datasets": "Set5",
        "methods": "nn, hr",
        "images_per_session": 0,
        "ratings_per_stimulus": 5,
        "calibration_images": 0,
        "repeated_trials": 0,
    }
    response = client.post(reverse("admin:mos_study_study_create"), form)
    assert response.status_code == 302
    created = Study.objects.get(name="from-admin")
    assert created.owner == people["boss"] and created.stimuli.count() == 10
    again = client.post(reverse("admin:mos_study_study_create"), form)
    assert again.status_code == 200 and b"already exists" in again.content
    bad = client.post(reverse("admin:mos_study_study_create"), {**form, "name": "x2", "calibration_images": 9})
    assert bad.status_code == 200 and b"more images than the 5 available" in bad.content
    assert Study.objects.count() == 2


@pytest.mark.slow  # the first import of the analysis (scipy, matplotlib) takes seconds
def test_results_page_shows_the_mos_of_each_method(client, study, people):
    client.force_login(people["owner"])
    url = reverse("mos_study:study_results", args=[study.pk])
    assert b"no ratings yet" in client.get(url).content
    scores = {"bicubic": [2, 3], "srgan-vgg54": [4, 5]}  # each rater alternates between the two
    expected = {"bicubic": [], "srgan-vgg54": []}
    for i in range(4):
        rater = start(Client(), study)
        for trial in rater.sessions.get().trials.select_related("stimulus__output__method"):
            method = trial.stimulus.output.method.name
            score = trial.stimulus.calibration_score if trial.kind == "calibration" else scores[method][i % 2]
            submit_rating(rater, trial.token, score)
            if trial.kind != "calibration":
                expected[method].append(score)
    page = client.get(url)
    assert page.status_code == 200 and "error" not in page.context, page.context.get("error")
    assert page.context["rejected"] == [] and not page.context["all_rejected"]
    mos = {row["method"]: row for row in page.context["mos"]}
    for method, values in expected.items():
        assert mos[method]["n_ratings"] == len(values)
        assert mos[method]["mos"] == pytest.approx(sum(values) / len(values))
    figure = client.get(reverse("mos_study:mos_svg", args=[study.pk]))
    assert figure.status_code == 200 and figure.content.lstrip().startswith(b"<?xml")
    # Raters who answer faster than people can (median under 500 ms) fail screening; with all of them rejected the
    # page still shows the MOS, of everyone, and says so.
    from mos_study.models import Rating

    Rating.objects.update(response_ms=100)
    page = client.get(url)
    assert page.context["all_rejected"] and len(page.context["rejected"]) == 4
    assert "speed" in page.context["rejected"][0]["reasons"] and b"Screening rejected every rater" in page.content
    assert {row["method"]: row["n_ratings"] for row in page.context["mos"]} == {m: len(v) for m, v in expected.items()}
    client.force_login(people["stranger"])
    assert client.get(url).status_code == 403


def test_admin_shows_a_staff_researcher_only_their_studies_and_closes_them(client, study, people):
    from django.contrib.auth.models import Permission

    other = create_study("other", ["Set5"], ["nn"], run_missing=False)
    listed = people["listed"]
    listed.is_staff = True
    listed.save()
    listed.user_permissions.add(*Permission.objects.filter(codename__in=["view_study", "change_study"]))
    client.force_login(listed)
    changelist = client.get(reverse("admin:mos_study_study_changelist"))
    assert list(changelist.context["cl"].result_list) == [study]
    client.post(
        reverse("admin:mos_study_study_changelist"),
        {"action": "close_studies", "_selected_action": [study.pk, other.pk]},
    )
    assert Study.objects.get(pk=study.pk).status == Study.Status.OPEN  # first a confirmation page
    client.post(
        reverse("admin:mos_study_study_changelist"),
        {"action": "close_studies", "_selected_action": [study.pk, other.pk], "confirm": "yes"},
    )
    assert Study.objects.get(pk=study.pk).status == Study.Status.CLOSED
    assert Study.objects.get(pk=other.pk).status == Study.Status.OPEN  # not theirs: untouched
