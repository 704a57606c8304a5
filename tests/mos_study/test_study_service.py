"""Study creation, balanced assignment, session order and rating submission (services: study_setup, sessions,
rating, progress, rating_table)."""

import random
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from mos_study.models import HR_METHOD, Rating, RatingSession, Study, Trial
from mos_study.services.errors import InvalidRating, RatingConflict, StudyError, StudyNotOpen
from mos_study.services.progress import study_progress
from mos_study.services.rating import MAX_RESPONSE_MS, submit_rating
from mos_study.services.rating_table import RATING_COLUMNS, rating_rows
from mos_study.services.sessions import SESSION_TIMEOUT, arrangeable, assigned_counts, order_apart, start_session
from mos_study.services.study_setup import create_study

from tests.support.study_factory import IMAGES, store_outputs

pytestmark = pytest.mark.django_db


@pytest.fixture
def outputs(media_root):
    return store_outputs(media_root)


def make_study(name="s", methods=("bicubic", "srgan-vgg54"), **options):
    return create_study(name, ["Set5"], list(methods), run_missing=False, **options)


def rate_all(session, score=3):
    for trial in session.trials.all():
        submit_rating(session.rater, trial.token, score)


def image_sequence(session):
    return [t.stimulus.output.image_id for t in session.trials.select_related("stimulus__output")]


def test_create_study_makes_one_stimulus_per_output_and_nn_hr_calibration(outputs):
    study = make_study(include_hr=True, calibration_images=2, seed=1)
    shown = study.stimuli.filter(is_calibration=False).select_related("output__method")
    # 5 test images, 2 of them shown for calibration: those are never test trials, so 3 per method.
    assert Counter(s.output.method.name for s in shown) == {"bicubic": 3, "srgan-vgg54": 3, HR_METHOD: 3}
    calibration = study.stimuli.filter(is_calibration=True).select_related("output__method", "output__image")
    assert sorted((s.output.method.name, s.calibration_score) for s in calibration) == [
        ("hr", 5),
        ("hr", 5),
        ("nn", 1),
        ("nn", 1),
    ]
    assert len({s.output.image_id for s in calibration}) == 2  # each chosen image shown as NN and as HR
    assert not {s.output.image_id for s in calibration} & {s.output.image_id for s in shown}
    assert study.status == Study.Status.OPEN and study.config["methods"] == ["bicubic", "srgan-vgg54", "hr"]


@pytest.mark.parametrize(
    "options, message",
    [
        ({"methods": ("bicubic", "srresnet-mse")}, "no outputs of method 'srresnet-mse'"),
        ({"calibration_images": 6}, "more images than the 5 available"),
        ({"images_per_session": 11}, "exceeds the study's 10 stimuli"),
        ({"images_per_session": 4, "repeated_trials": 5}, "repeated trials (5)"),
        ({"ratings_per_stimulus": 0}, "at least 1"),
        ({"methods": ()}, "at least one dataset and one method"),
    ],
)
def test_create_study_refuses_bad_options_and_stores_nothing(outputs, options, message):
    with pytest.raises(StudyError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_study(**options)
    assert not Study.objects.exists()


def test_create_study_refuses_a_taken_name(outputs):
    make_study()
    with pytest.raises(StudyError, match="already exists"):
        make_study()


def test_assignment_is_balanced_after_every_complete_session(outputs):
    study = make_study(images_per_session=3, ratings_per_stimulus=100)
    for i in range(12):
        session = start_session(study, seed=i)
        assert session.trials.count() == 3
        rate_all(session)
        rated = Counter(Rating.objects.filter(trial__session__study=study).values_list("trial__stimulus", flat=True))
        counts = [rated.get(pk, 0) for pk in study.stimuli.values_list("pk", flat=True)]
        assert max(counts) - min(counts) <= 1, (i, counts)


def test_balance_counts_live_sessions_and_frees_abandoned_ones(outputs):
    study = make_study(images_per_session=5, ratings_per_stimulus=100)
    first = start_session(study, seed=1)  # not rated yet, but fresh: its stimuli count as assigned
    second = start_session(study, seed=2)
    stimuli_first = set(first.trials.values_list("stimulus", flat=True))
    stimuli_second = set(second.trials.values_list("stimulus", flat=True))
    assert stimuli_first.isdisjoint(stimuli_second)  # 10 stimuli, 5 each: the second gets the other five
    # Both sessions abandoned long ago, the first after rating two images: only those two still count.
    rated = list(first.trials.all()[:2])
    for trial in rated:
        submit_rating(first.rater, trial.token, 4)
    RatingSession.objects.update(lease_until=timezone.now() - timedelta(minutes=1))
    counts = assigned_counts(study)
    assert sorted(counts.values()) == [0] * 8 + [1, 1]
    # Sessions from before leases (no lease_until) hold their trials for SESSION_TIMEOUT after the start.
    RatingSession.objects.update(lease_until=None, started=timezone.now() - SESSION_TIMEOUT + timedelta(minutes=1))
    assert sorted(assigned_counts(study).values()) == [1] * 10
    RatingSession.objects.update(started=timezone.now() - SESSION_TIMEOUT - timedelta(minutes=1))
    counts = assigned_counts(study)
    assert sorted(counts.values()) == [0] * 8 + [1, 1]
    assert {pk for pk, n in counts.items() if n} == {t.stimulus_id for t in rated}


def test_each_session_has_its_own_order_fixed_by_its_seed(outputs):
    study = make_study(ratings_per_stimulus=100)  # every stimulus in every session
    orders = [list(start_session(study, seed=s).trials.values_list("stimulus", flat=True)) for s in (1, 2, 1)]
    assert sorted(orders[0]) == sorted(orders[1])
    assert orders[0] != orders[1]
    assert orders[0] == orders[2]
    assert RatingSession.objects.get(seed=2).trials.count() == 10


def test_the_same_image_never_appears_twice_in_a_row(outputs):
    study = make_study(
        methods=("nn", "bicubic", "srgan-vgg54", "hr"), calibration_images=2, repeated_trials=4, ratings_per_stimulus=99
    )
    for seed in range(30):
        sequence = image_sequence(start_session(study, seed=seed))
        assert len(sequence) == 4 + 12 + 4  # 2 of the 5 images are calibration: 3 images x 4 methods are trials
        assert all(a != b for a, b in zip(sequence, sequence[1:])), (seed, sequence)


def test_calibration_comes_first_and_repeats_repeat_trials(outputs):
    study = make_study(calibration_images=2, repeated_trials=3, images_per_session=6, seed=5)
    session = start_session(study, seed=3)
    kinds = list(session.trials.values_list("kind", flat=True))
    assert kinds[:4] == [Trial.Kind.CALIBRATION] * 4
    assert Counter(kinds) == {Trial.Kind.CALIBRATION: 4, Trial.Kind.TRIAL: 6, Trial.Kind.REPEAT: 3}
    trials = set(session.trials.filter(kind=Trial.Kind.TRIAL).values_list("stimulus", flat=True))
    repeats = set(session.trials.filter(kind=Trial.Kind.REPEAT).values_list("stimulus", flat=True))
    assert len(repeats) == 3 and repeats <= trials


def test_order_apart_separates_every_arrangeable_multiset():
    rng = random.Random(0)
    for _ in range(300):
        counts = {image: rng.randint(1, 4) for image in range(rng.randint(1, 6))}
        items = [(image, k) for image, n in counts.items() for k in range(n)]
        order = order_apart(items, lambda item: item[0], rng)
        assert sorted(order) == sorted(items)
        adjacent = sum(a[0] == b[0] for a, b in zip(order, order[1:]))
        if arrangeable(counts):
            assert adjacent == 0, order
        else:  # as few neighbours as the counts force: biggest group minus everything else minus one
            assert adjacent == max(counts.values()) - (len(items) - max(counts.values())) - 1, order


def test_a_participant_id_resumes_its_session(outputs):
    study = make_study()
    first = start_session(study, participant_id="PANEL-7")
    again = start_session(study, participant_id=" PANEL-7 ")
    assert again.pk == first.pk and RatingSession.objects.count() == 1


def test_a_full_or_closed_study_starts_no_session(outputs):
    study = make_study(ratings_per_stimulus=1)
    rate_all(start_session(study))
    with pytest.raises(StudyNotOpen, match="collected all the ratings"):
        start_session(study)
    study.status = Study.Status.CLOSED
    study.save()
    with pytest.raises(StudyNotOpen, match="closed"):
        start_session(study)


def test_submit_rating_is_idempotent_and_finishes_the_session(outputs):
    study = make_study(images_per_session=2)
    session = start_session(study)
    first, second = session.trials.all()
    rating, created = submit_rating(session.rater, first.token, 4, response_ms=812.6)
    assert created and rating.score == 4 and rating.response_ms == 813
    again, created = submit_rating(session.rater, first.token, 4)  # a JSON integer only (issue 14)
    assert not created and again.pk == rating.pk
    with pytest.raises(RatingConflict, match="already rated 4"):
        submit_rating(session.rater, first.token, 5)
    session.refresh_from_db()
    assert session.finished is None
    submit_rating(session.rater, second.token, 1, response_ms=10**9)
    session.refresh_from_db()
    assert session.finished is not None
    assert Rating.objects.get(trial=second).response_ms == MAX_RESPONSE_MS


@pytest.mark.parametrize("score", [0, 6, 2.5, "x", "", None, True, [3]])
def test_submit_rating_refuses_scores_outside_1_to_5(outputs, score):
    session = start_session(make_study())
    with pytest.raises(InvalidRating):
        submit_rating(session.rater, session.trials.first().token, score)
    assert not Rating.objects.exists()


@pytest.mark.parametrize("response_ms", [-1, "fast", float("nan"), float("inf"), False])
def test_submit_rating_refuses_bad_response_times(outputs, response_ms):
    session = start_session(make_study())
    with pytest.raises(InvalidRating, match="response_ms"):
        submit_rating(session.rater, session.trials.first().token, 3, response_ms)
    assert not Rating.objects.exists()


def test_progress_counts_ratings_against_the_target(outputs):
    study = make_study(images_per_session=4, ratings_per_stimulus=2)
    session = start_session(study)
    rate_all(session)
    start_session(study)  # started, nothing rated yet: an active rater
    progress = study_progress(study)
    assert progress["ratings"] == 4 and progress["ratings_needed"] == 20
    assert progress["raters"] == 2 and progress["sessions_finished"] == 1 and progress["active_raters"] == 1
    assert sorted(r["ratings"] for r in progress["rows"]) == [0] * 6 + [1] * 4
    assert {r["method"] for r in progress["rows"]} == {"bicubic", "srgan-vgg54"}
    assert {r["image"] for r in progress["rows"]} == {f"Set5/{name}" for name in IMAGES}


def test_rating_rows_follow_the_analysis_columns(outputs):
    from mos_study.analysis.ratings import prepare_ratings
    import pandas as pd

    study = make_study(images_per_session=3, repeated_trials=1, calibration_images=1)
    rate_all(start_session(study, participant_id="p1"), score=5)
    rows = list(rating_rows(study))
    assert len(rows) == 2 + 3 + 1 and set(rows[0]) == set(RATING_COLUMNS)
    assert Counter(r["kind"] for r in rows) == {"calibration": 2, "trial": 3, "repeat": 1}
    table = prepare_ratings(pd.DataFrame(rows).astype(str))
    assert len(table) == 6 and set(table["rater"]) == {"p1"}


def test_tokens_never_start_with_a_dash(monkeypatch):
    from mos_study import models

    tokens = iter(["-starts-with-a-dash", "fine-token"])
    monkeypatch.setattr(models.secrets, "token_urlsafe", lambda n: next(tokens))
    assert models.new_token() == "fine-token"
