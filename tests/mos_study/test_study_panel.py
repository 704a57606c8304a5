"""Panel rules of a study (issue 13, second part): hidden gold trials and their screening, stale pages of a session,
devices refused before consent, the public title, read-only admin fields, the scheduled close, deleting test raters,
the rating counts of the study and results pages, and the rater pages in German."""

import json

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
