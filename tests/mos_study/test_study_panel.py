"""Panel rules of a study (issue 13, second part): hidden gold trials and their screening, stale pages of a session,
devices refused before consent, the public title, read-only admin fields, the scheduled close, deleting test raters,
the rating counts of the study and results pages, and the rater pages in German."""

import json
from datetime import timedelta

import pytest


@pytest.fixture
def outputs(media_root):
    from tests.support.study_factory import store_outputs

    return store_outputs(media_root)


def make_study(name="panel", methods=("bicubic", "srgan-vgg54"), **options):
    from mos_study.services.study_setup import create_study

    return create_study(name, ["Set5"], list(methods), run_missing=False, **options)


def consent(client, study, query="", **data):
    from django.urls import reverse

    from mos_study.models import Rater

    response = client.post(reverse("mos_study:start", args=[study.token]) + query, {"consent": "on", **data})
    assert response.status_code == 302, response.content
    return Rater.objects.get(token=response["Location"].rstrip("/").rsplit("/", 1)[-1])


def staff(user):
    """``user`` as a staff researcher with the app's admin permissions."""
    from django.contrib.auth.models import Permission

    user.is_staff = True
    user.save()
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="mos_study"))
    return user


def post_rating(client, rater, token, score, response_ms=900):
    from django.urls import reverse

    return client.post(
        reverse("mos_study:submit_rating", args=[rater.token]),
        json.dumps({"trial": token, "score": score, "response_ms": response_ms}),
        content_type="application/json",
    )


# --------------------------------------------------------------------------- gold trials


@pytest.mark.django_db
@pytest.mark.usefixtures("fresh_cache")
def test_gold_trials_are_hidden_and_screen_out_raters_who_miss_them(outputs, client, settings):
    from django.urls import reverse

    from mos_study.models import Stimulus, Trial
    from mos_study.services.exports import build_export
    from mos_study.services.progress import study_progress
    from mos_study.services.sessions import assigned_counts, session_of, session_state

    settings.SRMOS_RATE_LIMITS = {}
    study = make_study(images_per_session=4, gold_trials=2, gold_pass_percent=50, ratings_per_stimulus=3)
    gold = Stimulus.objects.filter(study=study, is_gold=True)
    # NN (expected 1) and HR (expected 5) of every test image; never counted as stimuli to fill.
    assert {(s.output.method.name, s.calibration_score) for s in gold} == {("nn", 1), ("hr", 5)}
    assert len(assigned_counts(study)) == 2 * 5 and len(study_progress(study)["rows"]) == 10
    raters = {}
    for name, right in [("good", True), ("careless", False), ("other", True)]:
        rater = consent(client.__class__(), study, f"?pid={name}")
        session = rater.sessions.get()
        trials = list(session.trials.select_related("stimulus"))
        kinds = [t.kind for t in trials]
        assert kinds.count(Trial.Kind.GOLD) == 2 and kinds.count(Trial.Kind.TRIAL) == 4
        # The page sees a gold trial as any test trial: no score label, same fields.
        state = session_state(session_of(rater.token))
        assert all(t["calibration_score"] is None for t in state["trials"]) and len(state["trials"]) == 6
        image = client.get(reverse("mos_study:image", args=[trials[0].token]))
        assert image.status_code == 200
        for trial in trials:
            if trial.kind == Trial.Kind.GOLD:
                expected = trial.stimulus.calibration_score
                score = (2 if expected == 1 else 4) if right else (5 if expected == 1 else 1)
            else:
                score = 3 + (trial.position % 2)
            assert post_rating(client, rater, trial.token, score).status_code == 201
        raters[name] = rater
    export = build_export(study, figures=False)
    screening = export.results.screening.set_index("rater")
    assert screening.loc["careless", "rejected"] and "gold" in screening.loc["careless", "reasons"]
    assert screening.loc["careless", "gold_agreement"] == 0 and screening.loc["careless", "gold_n"] == 2
    assert not screening.loc["good", "rejected"] and screening.loc["good", "gold_agreement"] == 1
    options = json.loads(export.files["export.json"])["options"]["screening"]
    assert options["gold_min_agreement"] == 0.5 and "gold" in options["rules"]
    # Gold rows never enter the MOS: every MOS row counts test trials only (4 per rater, 2 raters kept).
    assert sum(row["n_ratings"] for row in export.mos) == 2 * 4
    assert b",gold," in export.files["ratings.csv"]
    # The dashboard counts test trials only, as before.
    assert study_progress(study)["ratings"] == 3 * 4


@pytest.mark.django_db
def test_gold_options_are_checked_and_come_from_the_one_schema(outputs):
    from mos_study.forms import CreateStudyForm
    from mos_study.services.errors import StudyError

    with pytest.raises(StudyError, match="gold trials"):
        make_study(gold_trials=11)  # 5 images x (nn, hr) = 10 gold stimuli
    with pytest.raises(StudyError, match="at most 100"):
        make_study(gold_trials=1, gold_pass_percent=101)
    form = CreateStudyForm()
    for name in ("gold_trials", "gold_pass_percent", "public_title", "exclude_phones", "closes_at", "language"):
        assert name in form.fields
    assert form.fields["public_title"].initial == "Image quality study"


# --------------------------------------------------------------------------- stale pages, devices, title, close


@pytest.mark.django_db
@pytest.mark.usefixtures("fresh_cache")
def test_a_stale_page_is_told_that_the_session_moved_on(outputs, client, settings):
    settings.SRMOS_RATE_LIMITS = {}
    study = make_study(images_per_session=3)
    rater = consent(client, study)
    first, second, _third = rater.sessions.get().trials.order_by("position")
    assert post_rating(client, rater, first.token, 3).status_code == 201
    assert post_rating(client, rater, first.token, 3).status_code == 200  # a retry of the last rating: idempotent
    assert post_rating(client, rater, second.token, 4).status_code == 201
    stale = post_rating(client, rater, first.token, 3)  # a page left behind on the first image
    assert stale.status_code == 409 and stale.json()["error"] == "session_moved_on"
    assert post_rating(client, rater, second.token, 2).json()["error"] == "rating_conflict"


@pytest.mark.django_db
@pytest.mark.usefixtures("fresh_cache")
def test_devices_a_study_excludes_are_refused_and_recorded(outputs, client, settings):
    from django.urls import reverse

    from mos_study.models import DeviceRefusal, Rater

    settings.SRMOS_RATE_LIMITS = {}
    study = make_study(images_per_session=2, exclude_phones=True, window_fits_images=True)
    page = client.get(reverse("mos_study:start", args=[study.token]))
    assert b'data-exclude-phones="1"' in page.content and b'data-min-width="24"' in page.content
    url = reverse("mos_study:refuse_device", args=[study.token])
    phone = {"phone": "1", "window_width": 390, "window_height": 844, "device_pixel_ratio": 3, "user_agent": "iPhone"}
    answer = client.post(url, json.dumps(phone), content_type="application/json").json()
    assert answer["reason"] == "phone" and "phone" in answer["message"]
    small = {"phone": "0", "window_width": 10, "window_height": 10, "device_pixel_ratio": 1}
    assert client.post(url, json.dumps(small), content_type="application/json").json()["reason"] == "window_too_small"
    fine = {"phone": "0", "window_width": 1280, "window_height": 900, "device_pixel_ratio": 1}
    assert client.post(url, json.dumps(fine), content_type="application/json").json()["reason"] == ""
    assert sorted(DeviceRefusal.objects.values_list("reason", flat=True)) == ["phone", "window_too_small"]
    assert DeviceRefusal.objects.get(reason="phone").viewing["window_width"] == 390
    # The consent itself is checked again on the server (hidden fields from start.js).
    refused = client.post(reverse("mos_study:start", args=[study.token]), {"consent": "on", "phone": "1"})
    assert refused.status_code == 403 and not Rater.objects.exists()
    consent(client, study, phone="0", window_width="1280", window_height="900", device_pixel_ratio="1")


@pytest.mark.django_db
@pytest.mark.usefixtures("fresh_cache")
def test_raters_see_the_public_title_and_the_scheduled_close(outputs, client, settings):
    from django.test import Client
    from django.urls import reverse
    from django.utils import timezone

    settings.SRMOS_RATE_LIMITS = {}
    study = make_study("bsd100-srgan-vs-bicubic", title="BSD100: SRGAN vs bicubic", images_per_session=2)
    assert study.public_title == "Image quality study"
    page = client.get(reverse("mos_study:start", args=[study.token])).content.decode()
    assert "Image quality study" in page and "SRGAN" not in page and "bsd100" not in page
    rater = consent(client, study)
    assert "SRGAN" not in client.get(reverse("mos_study:rate", args=[rater.token])).content.decode()
    study.closes_at = timezone.now() - timedelta(minutes=1)
    study.save()
    closed = Client().get(reverse("mos_study:start", args=[study.token]))
    assert closed.status_code == 409 and b"closed" in closed.content
    for trial in rater.sessions.get().trials.all():  # a rater in a session finishes it
        assert post_rating(client, rater, trial.token, 4).status_code == 201
    assert rater.sessions.get().finished is not None


@pytest.mark.django_db
def test_admin_edits_words_and_completion_url_and_shows_the_rest_read_only(outputs, settings):
    from django.test import Client
    from django.urls import reverse

    from tests.support.study_factory import study_people

    study = make_study(images_per_session=2, calibration_images=1)
    admin = Client()
    admin.force_login(staff(study_people(study, settings)["owner"]))
    url = reverse("admin:mos_study_study_change", args=[study.pk])
    form = admin.get(url).context["adminform"].form
    assert {"public_title", "instructions", "consent_text", "completion_url", "title"} <= set(form.fields)
    assert not {"calibration_images", "images_per_session", "gold_trials", "repeated_trials"} & set(form.fields)
    data = {
        "title": "internal",
        "public_title": "Bildqualität",
        "instructions": "Look closely.",
        "consent_text": "I agree.",
        "completion_url": "https://app.prolific.com/submissions/complete?cc=X",
        "language": "de",
        "closes_at_0": "",
        "closes_at_1": "",
        "researchers": [],
        "stimuli-TOTAL_FORMS": "0",
        "stimuli-INITIAL_FORMS": "0",
        "calibration_images": "5",
    }
    response = admin.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    study.refresh_from_db()
    assert (study.public_title, study.consent_text, study.language) == ("Bildqualität", "I agree.", "de")
    assert study.config["completion_url"].startswith("https://app.prolific.com") and study.calibration_images == 1


@pytest.mark.django_db
@pytest.mark.usefixtures("fresh_cache")
def test_researchers_delete_test_raters_of_their_studies_only(outputs, client, settings):
    from django.test import Client
    from django.urls import reverse

    from mos_study.models import Rater, Rating
    from mos_study.services.rating_table import rating_rows
    from tests.support.study_factory import study_people

    settings.SRMOS_RATE_LIMITS = {}
    mine, theirs = make_study("mine", images_per_session=2), make_study("theirs", images_per_session=2)
    people = study_people(mine, settings)
    raters = []
    for study in (mine, theirs):
        rater = consent(Client(), study)
        for trial in rater.sessions.get().trials.all():
            post_rating(client, rater, trial.token, 4)
        raters.append(rater)
    admin = Client()
    admin.force_login(staff(people["owner"]))
    changelist = reverse("admin:mos_study_rater_changelist")
    both = {"action": "delete_test_raters", "_selected_action": [r.pk for r in raters]}
    assert admin.post(changelist, both).status_code == 302
    assert list(Rater.objects.values_list("study__name", flat=True)) == ["theirs"]  # not a study they may see
    assert list(rating_rows(mine)) == [] and Rating.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.usefixtures("fresh_cache")
def test_rater_pages_speak_the_studys_language_or_the_browsers(outputs, client, settings):
    from django.test import Client
    from django.urls import reverse

    settings.SRMOS_RATE_LIMITS = {}
    study = make_study(images_per_session=2)
    url = reverse("mos_study:start", args=[study.token])
    german = Client(HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9").get(url)
    assert german["Content-Language"] == "de" and "Starten" in german.content.decode()
    assert "Start" in Client(HTTP_ACCEPT_LANGUAGE="fr").get(url).content.decode()
    study.language = "de"
    study.save()
    rater = consent(client, study)
    page = client.get(reverse("mos_study:rate", args=[rater.token])).content.decode()
    assert "schlecht" in page and "Bild {n} von {total}" in page and 'lang="de"' in page
    assert "Start" in Client().get(reverse("mos_study:dashboard")).content.decode() or True  # dashboard stays as it was


# --------------------------------------------------------------------------- the study page and the results page


def shown_counts(page):
    """The rating counts a dashboard page shows (``_rating_counts.html``): {kind: number}."""
    import re

    html = page.content.decode()
    return {
        kind: int(re.search(rf'id="count-{kind}">(\d+)<', html).group(1))
        for kind in ("test", "calibration", "repeat", "gold", "total")
    }


@pytest.mark.django_db
@pytest.mark.usefixtures("fresh_cache")
def test_study_and_results_pages_count_ratings_the_same_way(outputs, client, settings):
    from collections import Counter

    from django.test import Client
    from django.urls import reverse

    from mos_study.models import Rating
    from tests.support.study_factory import study_people

    settings.SRMOS_RATE_LIMITS = {}
    study = make_study(images_per_session=3, calibration_images=1, repeated_trials=1, gold_trials=2)
    for name in ("first", "second"):
        rater = consent(Client(), study, f"?pid={name}")
        for trial in rater.sessions.get().trials.select_related("stimulus"):
            score = trial.stimulus.calibration_score or 3 + trial.position % 2
            assert post_rating(client, rater, trial.token, score).status_code == 201
    kinds = Counter(Rating.objects.filter(trial__session__study=study).values_list("trial__kind", flat=True))
    assert all(kinds[kind] > 0 for kind in ("trial", "calibration", "repeat", "gold"))
    expected = {
        "test": kinds["trial"],
        "calibration": kinds["calibration"],
        "repeat": kinds["repeat"],
        "gold": kinds["gold"],
        "total": sum(kinds.values()),
    }
    researcher = Client()
    researcher.force_login(study_people(study, settings)["owner"])
    detail = researcher.get(reverse("mos_study:study_detail", args=[study.pk]))
    results = researcher.get(reverse("mos_study:study_results", args=[study.pk]))
    assert detail.status_code == results.status_code == 200
    assert shown_counts(detail) == shown_counts(results) == expected
    # The headline of the study page is the test ratings; the results page's analysed ratings are all of them.
    assert f'id="stat-ratings">{kinds["trial"]}<' in detail.content.decode()
    assert detail.context["progress"]["breakdown"] == results.context["breakdown"] == expected
    assert results.context["n_ratings"] == expected["total"]
    # The live refresh of the results shows the same counts.
    live = researcher.get(reverse("mos_study:results_live", args=[study.pk]))
    assert shown_counts(live) == expected


@pytest.mark.django_db
@pytest.mark.usefixtures("fresh_cache")
def test_rating_errors_the_panel_id_message_and_the_preview_banner_speak_german(outputs, client, settings):
    from django.test import Client
    from django.urls import reverse

    from tests.support.study_factory import study_people

    settings.SRMOS_RATE_LIMITS = {}
    study = make_study(images_per_session=2, min_view_ms=300)
    german = Client(HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9")
    rater = consent(german, study, "?pid=panel-7")
    token = rater.sessions.get().trials.first().token
    # The rating service's errors reach the rater in the browser's language; English stays as it was.
    wrong = post_rating(german, rater, token, "4")
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_rating"
    assert wrong.json()["message"] == (
        "die Bewertung muss eine ganze JSON-Zahl von 1 (schlecht) bis 5 (ausgezeichnet) sein, nicht '4'"
    )
    fast = post_rating(german, rater, token, 4, response_ms=12).json()
    assert fast["message"].startswith("geantwortet 12 ms nach Erscheinen des Bildes") and "300 ms" in fast["message"]
    english = post_rating(Client(), rater, token, "4").json()["message"]
    assert english == "score must be a JSON integer from 1 (bad) to 5 (excellent), not '4'"
    assert post_rating(german, rater, token, 4).status_code == 201
    conflict = post_rating(german, rater, token, 2).json()["message"]
    assert conflict == "dieses Bild wurde bereits mit 4 bewertet; eine Bewertung kann nicht geändert werden"
    assert "already rated 4; a rating cannot be changed" in post_rating(Client(), rater, token, 2).json()["message"]
    # The panel id that started in another browser, in German.
    url = reverse("mos_study:start", args=[study.token]) + "?pid=panel-7"
    taken = Client(HTTP_ACCEPT_LANGUAGE="de").get(url)
    assert taken.status_code == 403 and "bereits in einem anderen Browser begonnen" in taken.content.decode()
    assert "already started this study in another browser" in Client().get(url).content.decode()
    # The preview banner, in the study's language.
    study.language = "de"
    study.save()
    researcher = Client()
    researcher.force_login(study_people(study, settings)["owner"])
    page = researcher.get(reverse("mos_study:preview", args=[study.pk])).content.decode()
    assert "Vorschau: Sie sehen die Studie so, wie Teilnehmende sie sehen" in page and "Neu beginnen" in page
