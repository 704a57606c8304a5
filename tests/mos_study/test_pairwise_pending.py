"""Active pairwise sampling with sessions under way (issue 18): pairs handed out and not answered yet count as
expected answers, so raters who start at the same moment are not all given the same pairs."""

from collections import Counter, defaultdict

import pytest

from mos_study.services.comparing import choose_side
from mos_study.services.pairwise_sessions import by_image, pending_pairs, sides_of
from mos_study.services.sessions import start_session
from mos_study.models import Trial

from tests.mos_study.test_pairwise_study import better_side, outputs, pairwise_study, trials_of  # noqa: F401

pytestmark = pytest.mark.django_db


def test_sessions_started_together_spread_over_the_pairs(outputs):  # noqa: F811
    """5 images x 6 pairs (4 methods with HR); 6 sessions of one pair per image, none answered: every pair of every
    image once. Drawn independently from the same empty wins, all 30 would be distinct with probability 2e-9."""
    study = pairwise_study(images_per_session=5)
    per_image = defaultdict(Counter)
    for seed in range(6):
        for trial in trials_of(start_session(study, seed=seed)):
            if trial.kind == Trial.Kind.PAIR:
                pair = frozenset((trial.stimulus_id, trial.stimulus_b_id))
                per_image[trial.stimulus.output.image_id][pair] += 1
    assert len(per_image) == 5
    assert all(sorted(counts.values()) == [1] * 6 for counts in per_image.values()), per_image


def test_answered_pairs_leave_the_pending_counts(outputs):  # noqa: F811
    study = pairwise_study(images_per_session=5)
    session = start_session(study, seed=1)
    groups = by_image(sides_of(study.stimuli.all()))
    assert sum(m.sum() for m in pending_pairs(study, groups).values()) == 5
    first = trials_of(session)[0]
    choose_side(session.rater.token, first.token, better_side(first))
    assert sum(m.sum() for m in pending_pairs(study, groups).values()) == 4
