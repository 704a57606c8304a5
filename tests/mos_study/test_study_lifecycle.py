"""A study that can run on a crowdsourcing panel (issue 13): valid trials, blinding by bytes, leases and capacity,
pause and close, minimum viewing time, viewing conditions, preview, completion codes.

The lease scenario also runs on PostgreSQL: this file as a script in a subprocess whose settings come from
DATABASE_URL (as ``test_study_concurrency.py`` does).
"""

import io
import json
import os
import struct
import subprocess
import sys
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def png_chunks(data):
    chunks, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        chunks.append((data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]))
        offset += 12 + length
    return chunks


def abandoned_sessions_scenario():
    """A study of 10 stimuli x 2 ratings, 5 per session: 4 sessions fill it. Three raters abandon (one after a
    rating); the study says "try again in N minutes" while their leases are live, takes new raters once they run
    out, and ends up with every stimulus rated twice. Returns what the test checks."""
    from django.utils import timezone

    from mos_study.models import Rating, RatingSession, Trial
    from mos_study.services.errors import StudyFull
    from mos_study.services.rating import submit_rating
    from mos_study.services.sessions import availability, start_session
    from mos_study.services.study_setup import create_study

    study = create_study(
        "panel",
        ["Set5"],
        ["bicubic", "srgan-vgg54"],
        images_per_session=5,
        ratings_per_stimulus=2,
        lease_minutes=30,
        run_missing=False,
    )
    report = {}
    abandoned = [start_session(study, seed=s) for s in (1, 2, 3)]
    submit_rating(abandoned[0].rater, abandoned[0].trials.first().token, 4, response_ms=900)
    finished = start_session(study, seed=4)
    for trial in finished.trials.all():
        submit_rating(finished.rater, trial.token, 3, response_ms=900)
    # Full, but only because of live leases: said before the consent form, with when to come back.
    problem = availability(study)
    report["temporarily_full"] = isinstance(problem, StudyFull) and "try again in" in str(problem)
    report["retry_after"] = problem.retry_after if problem else None
    # The leases run out (nobody rated or sent a heartbeat): the study takes raters again.
    RatingSession.objects.filter(pk__in=[s.pk for s in abandoned]).update(
        lease_until=timezone.now() - timedelta(seconds=1)
    )
    report["open_again"] = availability(study) is None
    newcomers = 0
    while availability(study) is None and newcomers < 10:
        session = start_session(study, seed=10 + newcomers)
        for trial in session.trials.all():
            submit_rating(session.rater, trial.token, 2, response_ms=900)
        newcomers += 1
    report["newcomers"] = newcomers
    counts = defaultdict(int)
    for stimulus in Rating.objects.filter(trial__kind=Trial.Kind.TRIAL).values_list("trial__stimulus", flat=True):
        counts[stimulus] += 1
    report["ratings_per_stimulus"] = sorted(counts[pk] for pk in study.stimuli.values_list("pk", flat=True))
    full = availability(study)
    report["full_at_the_end"] = isinstance(full, StudyFull) and "all the ratings" in str(full)
    return report


def check_abandoned_report(report):
    assert report["temporarily_full"] and 60 <= report["retry_after"] <= 10 * 60  # the start lease: 10 minutes
    assert report["open_again"]
    assert report["newcomers"] >= 2  # the abandoned places were filled
    assert min(report["ratings_per_stimulus"]) >= 2  # every stimulus reached its target
    assert report["full_at_the_end"]


# --------------------------------------------------------------------------- in-process tests (SQLite)


@pytest.fixture
def outputs(media_root):
    from tests.support.study_factory import store_outputs

    return store_outputs(media_root)


def make_study(name="life", methods=("bicubic", "srgan-vgg54"), **options):
    from mos_study.services.study_setup import create_study

    return create_study(name, ["Set5"], list(methods), run_missing=False, **options)


def consent(client, study, query=""):
    from django.urls import reverse

    from mos_study.models import Rater

    response = client.post(reverse("mos_study:start", args=[study.token]) + query, {"consent": "on"})
    assert response.status_code == 302, response.content
    return Rater.objects.get(token=response["Location"].rstrip("/").rsplit("/", 1)[-1])


def post_rating(client, rater, token, score, **extra):
    from django.urls import reverse

    return client.post(
        reverse("mos_study:submit_rating", args=[rater.token]),
        json.dumps({"trial": token, "score": score, **extra}),
        content_type="application/json",
    )


@pytest.mark.django_db
def test_a_study_with_abandoned_sessions_keeps_taking_raters(outputs):
    check_abandoned_report(abandoned_sessions_scenario())


@pytest.mark.django_db
def test_no_calibration_content_among_a_sessions_trials(outputs):
    from mos_study.models import Trial
    from mos_study.services.sessions import start_session

    study = make_study(methods=("nn", "bicubic", "srgan-vgg54", "hr"), calibration_images=2, repeated_trials=2)
    for seed in range(10):
        session = start_session(study, seed=seed)
        trials = list(session.trials.select_related("stimulus__output"))
        calibration = [t.stimulus.output for t in trials if t.kind == Trial.Kind.CALIBRATION]
        tests = [t.stimulus.output for t in trials if t.kind != Trial.Kind.CALIBRATION]
        assert len(calibration) == 4 and tests
        assert not {o.file for o in calibration} & {o.file for o in tests}  # no calibration file is a trial's file
        assert not {o.sha256 for o in calibration} & {o.sha256 for o in tests}
        assert not {o.image_id for o in calibration} & {o.image_id for o in tests}  # nor any version of its image


@pytest.mark.django_db
def test_too_few_images_for_calibration_is_a_clear_error_at_creation(outputs):
    from mos_study.models import Study
    from mos_study.services.errors import StudyError

    with pytest.raises(StudyError, match="leave no test image.*at most 4 calibration images"):
        make_study(methods=("nn", "bicubic", "hr"), calibration_images=5)
    with pytest.raises(StudyError, match="calibration images are left out"):
        make_study(calibration_images=3, images_per_session=5)  # 2 test images x 2 methods = 4 stimuli
    assert not Study.objects.exists()


@pytest.mark.django_db
@pytest.mark.usefixtures("fresh_cache")
def test_bytes_blind_sizes_equal_per_image_repeats_differ_pixels_identical(outputs, media_root, client, settings):
    """A classifier of the method from the byte size is at chance: within each test image every stimulus is served
    at the same length. Each presentation is different bytes; the pixels are the stored ones."""
    import numpy as np
    from PIL import Image
    from django.urls import reverse

    from mos_study.models import Trial

    settings.SRMOS_RATE_LIMITS = {}
    # Stored files of different sizes per method (as nn < bicubic < HR in a real study).
    for output in outputs:
        if output.method.name == "nn":  # a smooth image compresses far better than the noisy others
            Image.fromarray(np.full((16, 24, 3), 77, np.uint8)).save(media_root / output.file, format="PNG")
    study = make_study(methods=("nn", "bicubic", "srgan-vgg54", "hr"), repeated_trials=5)
    sizes = {output.method.name: (media_root / output.file).stat().st_size for output in outputs[:4]}
    assert len(set(sizes.values())) > 1  # the files themselves do differ in size
    by_image = defaultdict(dict)  # image -> method -> set of served lengths
    served = defaultdict(list)  # stimulus -> served bytes, per presentation
    for _ in range(2):
        rater = consent(client, study)
        client.cookies.clear()
        for trial in rater.sessions.get().trials.select_related("stimulus__output__method"):
            response = client.get(reverse("mos_study:image", args=[trial.token]))
            data = response.content
            assert int(response["Content-Length"]) == len(data)
            output = trial.stimulus.output
            by_image[output.image_id].setdefault(output.method.name, set()).add(len(data))
            served[trial.stimulus_id].append((trial.kind, data))
            stored = Image.open(media_root / output.file)
            assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), np.asarray(stored))
            assert [t for t, _ in png_chunks(data)].count(b"srMo") == 1
    # The best size classifier: per image, guess the method from the length; with one length per image it can only
    # guess, i.e. is right for 1 of the 4 methods.
    for methods in by_image.values():
        lengths = set().union(*methods.values())
        assert len(lengths) == 1, methods
    # Every presentation is distinct bytes, repeats and the other rater's showing included.
    presentations = [data for shows in served.values() for _, data in shows]
    assert len(set(presentations)) == len(presentations)
    assert any(kind == Trial.Kind.REPEAT for shows in served.values() for kind, _ in shows)


@pytest.mark.django_db
@pytest.mark.usefixtures("fresh_cache")
def test_full_or_closed_or_paused_says_so_before_the_consent_form(outputs, client, settings):
    from django.test import Client
    from django.urls import reverse

    from mos_study.models import Study

    settings.SRMOS_RATE_LIMITS = {}
    study = make_study(ratings_per_stimulus=1)  # one session fills it
    rater = consent(client, study)
    url = reverse("mos_study:start", args=[study.token])
    page = Client().get(url)
    assert page.status_code == 409 and b"try again in 10 minutes" in page.content
    assert b'name="consent"' not in page.content and page["Retry-After"] == "600"
    for trial in rater.sessions.get().trials.all():
        post_rating(client, rater, trial.token, 3, response_ms=1000)
    page = Client().get(url)
    assert page.status_code == 409 and b"collected all the ratings" in page.content
    for status, word in [(Study.Status.PAUSED, b"paused"), (Study.Status.CLOSED, b"closed")]:
        Study.objects.filter(pk=study.pk).update(status=status, ratings_per_stimulus=5)
        page = Client().get(url)
        assert page.status_code == 409 and word in page.content and b'name="consent"' not in page.content


@pytest.mark.django_db
def test_leases_start_short_and_are_extended_by_ratings_and_heartbeats(outputs):
    from django.utils import timezone

    from mos_study.services.progress import study_progress
    from mos_study.services.rating import rate_trial
    from mos_study.services.sessions import heartbeat, release_abandoned, start_session

    study = make_study(images_per_session=3, lease_minutes=40)
    session = start_session(study)
    now = timezone.now()
    assert timedelta(minutes=9) < session.lease_until - now <= timedelta(minutes=10)
    rate_trial(session.rater.token, session.trials.first().token, 3, response_ms=800)
    session.refresh_from_db()
    assert timedelta(minutes=39) < session.lease_until - now <= timedelta(minutes=40, seconds=5)
    viewing = {"screen_width": 1920, "device_pixel_ratio": 2, "zoom_estimate": 1.5, "user_agent": "X", "evil": "1"}
    heartbeat(session.rater.token, viewing)
    session.refresh_from_db()
    assert session.viewing == {
        "screen_width": 1920.0,
        "device_pixel_ratio": 2.0,
        "zoom_estimate": 1.5,
        "user_agent": "X",
    }
    assert study_progress(study)["active_raters"] == 1 and study_progress(study)["sessions_under_way"] == 1
    # Idle for 20 minutes: no longer "active now", still under way until released.
    later = now + timedelta(minutes=20)
    assert study_progress(study, now=later)["active_raters"] == 0
    assert study_progress(study, now=later)["sessions_under_way"] == 1
    assert release_abandoned(study, now=later) == 1
    assert study_progress(study, now=later)["sessions_under_way"] == 0


@pytest.mark.django_db
def test_admin_releases_abandoned_sessions(outputs, settings):
    from django.test import Client
    from django.urls import reverse
    from django.utils import timezone

    from mos_study.models import RatingSession
    from mos_study.services.sessions import start_session
    from tests.support.study_factory import study_people

    study = make_study(images_per_session=3)
    idle, busy = start_session(study), start_session(study)
    RatingSession.objects.filter(pk=idle.pk).update(last_seen=timezone.now() - timedelta(minutes=11))
    client = Client()
    client.force_login(study_people(study, settings)["boss"])
    response = client.post(
        reverse("admin:mos_study_study_changelist"), {"action": "release_abandoned", "_selected_action": [study.pk]}
    )
    assert response.status_code == 302
    idle.refresh_from_db()
    busy.refresh_from_db()
    assert idle.lease_until <= timezone.now() < busy.lease_until


@pytest.mark.django_db
@pytest.mark.usefixtures("fresh_cache")
def test_too_fast_answers_are_refused_and_counted(outputs, client, settings):
    from mos_study.models import Rating

    settings.SRMOS_RATE_LIMITS = {}
    study = make_study(images_per_session=2, min_view_ms=500)
    rater = consent(client, study)
    token = rater.sessions.get().trials.first().token
    refused = post_rating(client, rater, token, 5, response_ms=3)
    assert refused.status_code == 400 and refused.json()["error"] == "too_fast"
    assert post_rating(client, rater, token, 5, response_ms=499).status_code == 400
    assert not Rating.objects.exists() and rater.sessions.get().fast_answers == 2
    assert post_rating(client, rater, token, 5, response_ms=500).status_code == 201


@pytest.mark.django_db
@pytest.mark.usefixtures("fresh_cache")
def test_heartbeat_records_the_viewing_conditions(outputs, client, settings):
    from django.urls import reverse

    settings.SRMOS_RATE_LIMITS = {}
    study = make_study(images_per_session=2)
    rater = consent(client, study)
    url = reverse("mos_study:heartbeat", args=[rater.token])
    body = {"viewing": {"window_width": 800, "window_height": 600, "device_pixel_ratio": 1.5, "image_failures": 1}}
    response = client.post(url, json.dumps(body), content_type="application/json")
    assert response.status_code == 200 and response.json()["ok"]
    assert rater.sessions.get().viewing == {
        "window_width": 800.0,
        "window_height": 600.0,
        "device_pixel_ratio": 1.5,
        "image_failures": 1.0,
    }
    assert (
        client.post(reverse("mos_study:heartbeat", args=["nope"]), "{}", content_type="application/json").status_code
        == 404
    )


@pytest.mark.django_db
@pytest.mark.usefixtures("fresh_cache")
def test_preview_leaves_no_trace_in_results(outputs, client, settings):
    from django.test import Client
    from django.urls import reverse

    from mos_study.models import Rater, Rating, RatingSession, Trial
    from mos_study.services.progress import study_progress
    from mos_study.services.rating_table import rating_rows
    from mos_study.services.sessions import assigned_counts
    from tests.support.study_factory import study_people

    settings.SRMOS_RATE_LIMITS = {}
    study = make_study(images_per_session=3, calibration_images=1, repeated_trials=1)
    people = study_people(study, settings)
    url = reverse("mos_study:preview", args=[study.pk])
    assert Client().get(url).status_code == 302  # login first
    stranger = Client()
    stranger.force_login(people["stranger"])
    assert stranger.get(url).status_code == 403
    client.force_login(people["owner"])
    page = client.get(url)
    assert page.status_code == 200 and b"Preview" in page.content
    state = client.get(reverse("mos_study:preview_state", args=[study.pk])).json()
    assert state["total"] == 2 + 3 + 1 and len(state["trials"]) == 6
    rate_url = reverse("mos_study:preview_rate", args=[study.pk])
    fast = client.post(
        rate_url,
        json.dumps({"trial": state["trials"][0]["token"], "score": 1, "response_ms": 5}),
        content_type="application/json",
    )
    assert fast.status_code == 400 and fast.json()["error"] == "too_fast"
    for trial in state["trials"]:
        image = client.get(trial["image"])
        assert image.status_code == 200 and image["Content-Type"] == "image/png"
        body = {"trial": trial["token"], "score": 3, "response_ms": 1000}
        assert client.post(rate_url, json.dumps(body), content_type="application/json").status_code == 201
    done = client.get(url)
    assert b"PREVIEW" in done.content and b"not a real one" in done.content
    assert not (Rater.objects.exists() or RatingSession.objects.exists() or Trial.objects.exists())
    assert not Rating.objects.exists() and list(rating_rows(study)) == []
    assert set(assigned_counts(study).values()) == {0}  # no capacity held
    progress = study_progress(study)
    assert progress["ratings"] == 0 and progress["raters"] == 0 and progress["active_raters"] == 0


@pytest.mark.django_db
@pytest.mark.usefixtures("fresh_cache")
def test_completion_codes_are_unambiguous_copyable_searchable_and_exported(outputs, client, settings):
    from django.test import Client
    from django.urls import reverse

    from mos_study.models import CODE_ALPHABET
    from mos_study.services.exports import ratings_csv_lines
    from tests.support.study_factory import study_people

    settings.SRMOS_RATE_LIMITS = {}
    assert not set("0O1lIL") & set(CODE_ALPHABET)
    study = make_study(images_per_session=2)
    rater = consent(client, study, "?PROLIFIC_PID=p-7&STUDY_ID=st-1&SESSION_ID=se-9")
    assert (rater.participant_id, rater.panel_study_id, rater.panel_session_id) == ("p-7", "st-1", "se-9")
    session = rater.sessions.get()
    assert len(session.completion_code) == 10 and set(session.completion_code) <= set(CODE_ALPHABET)
    for trial in session.trials.all():
        post_rating(client, rater, trial.token, 4, response_ms=700)
    page = client.get(reverse("mos_study:rate", args=[rater.token]))
    assert session.completion_code.encode() in page.content and b'id="copy-code"' in page.content
    lines = list(ratings_csv_lines(study))
    assert lines[0].rstrip().endswith("completion_code") and all(session.completion_code in line for line in lines[1:])
    admin = Client()
    admin.force_login(study_people(study, settings)["boss"])
    found = admin.get(reverse("admin:mos_study_ratingsession_changelist"), {"q": session.completion_code})
    assert list(found.context["cl"].result_list) == [session]
    found = admin.get(reverse("admin:mos_study_rater_changelist"), {"q": session.completion_code})
    assert list(found.context["cl"].result_list) == [rater]


# --------------------------------------------------------------------------- PostgreSQL


@pytest.mark.slow
@pytest.mark.postgres
def test_a_study_with_abandoned_sessions_keeps_taking_raters_on_postgres(tmp_path, postgres_database):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "SRMOS_"))}
    env.update(DATABASE_URL=postgres_database, SRMOS_MEDIA_ROOT=str(tmp_path / "media"), DJANGO_SECRET_KEY="x" * 50)
    result = subprocess.run([sys.executable, __file__], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    check_abandoned_report(json.loads(result.stdout.strip().splitlines()[-1]))


def main():
    """Script mode: migrate, store outputs, run the abandoned-sessions scenario, print its report as JSON."""
    sys.path.insert(0, str(REPO))
    from tests.support.script_mode import set_up_django

    set_up_django(methods=["bicubic", "srgan-vgg54"])
    print(json.dumps(abandoned_sessions_scenario()))


if __name__ == "__main__":
    main()
