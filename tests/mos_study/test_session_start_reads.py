"""A session start reads only the stimuli it can take (``sessions.start_candidates``), and chooses as if it had read
the whole study: the fewest-assigned stimuli first, each tier's stimuli uniformly at random, spread over images.

Studies here are large enough (1,200 test stimuli, sessions of 20) for each way of reading the tier a session takes
from: whole (a small tier, in the lowest counters read), by random probes of its key range (a large tier) and by its
keys (a tier too sparse in its range to probe).
"""

import random
from collections import Counter

import pytest

from mos_study.models import Method, Output, Stimulus, Study, TestImage
from mos_study.services import sessions

IMAGES, METHODS, K = 300, 4, 20


def study_with_counts(counts, images_per_session=K):
    """A study of IMAGES x METHODS test stimuli (no files: a start reads only rows) whose counters are ``counts``
    (one per stimulus, in key order; neighbours in key order are one image's methods)."""
    study = Study.objects.create(name="reads", images_per_session=images_per_session, ratings_per_stimulus=1000)
    methods = [Method.objects.create(name=f"reads-m{i}") for i in range(METHODS)]
    images = TestImage.objects.bulk_create(
        TestImage(dataset="reads", name=f"i{i:04d}", hr_sha256="0" * 64, width=8, height=8) for i in range(IMAGES)
    )
    outputs = Output.objects.bulk_create(
        Output(method=m, image=image, sha256="0" * 64, file="x.png", width=8, height=8)
        for image in images
        for m in methods
    )
    Stimulus.objects.bulk_create(
        Stimulus(study=study, output=o, assigned=n) for o, n in zip(outputs, counts, strict=True)
    )
    return study


def tiers(*sizes_and_counts, seed=0):
    """Counters: ``(how many, count)`` pairs, placed at random over the study's stimuli."""
    counts = [n for size, n in sizes_and_counts for _ in range(size)]
    assert len(counts) == IMAGES * METHODS
    random.Random(seed).shuffle(counts)
    return counts


def chosen(study, seed):
    """The test stimuli a session of ``study`` started with ``seed`` would take, and its candidates."""
    rng = random.Random(seed)
    candidates = sessions.start_candidates(study, K, rng)
    _, test, _ = sessions.split_stimuli(candidates)
    counts = {s.pk: s.assigned for s in test}
    return sessions.choose_stimuli(test, counts, K, rng), test


@pytest.fixture
def probes(monkeypatch):
    """How many times a start probed a tier's key range."""
    calls = []
    real = sessions.probe_tier

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(sessions, "probe_tier", counted)
    return calls


CASES = {
    # 10 stimuli below the tier the session fills from; that tier most of the study (probed)
    "large tier": (((10, 0), (990, 1), (200, 2)), True),
    # a tier of 150 spread over the whole key range: its keys are read
    "sparse tier": (((5, 0), (150, 1), (1045, 2)), False),
    # a tier of 30 among the lowest counters read
    "small tier": (((30, 1), (1170, 2)), False),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES)
def test_a_start_takes_the_fewest_assigned_spread_over_images(case, probes):
    layout, probed = CASES[case]
    counts = tiers(*layout)
    study = study_with_counts(counts)
    lowest = sorted(counts)[:K]
    for seed in range(20):
        taken, candidates = chosen(study, seed)
        assert sorted(s.assigned for s in taken) == lowest  # the fewest-assigned, as over the whole study
        from_tier = [s.image_id for s in taken if s.assigned == lowest[-1]]
        assert len(set(from_tier)) == len(from_tier)  # a tier of enough images: none of them twice
        assert len(candidates) < 200  # a few rows read, not the study's 1,200
    assert bool(probes) == probed


@pytest.mark.django_db
@pytest.mark.parametrize("case", ["large tier", "sparse tier"])
def test_each_stimulus_of_the_tier_is_drawn_as_often(case):
    """Over many seeds, every stimulus of the tier a session fills from is taken about equally often (uniform
    sampling, whatever the way the tier was read); none of a higher count is ever taken."""
    layout, _ = CASES[case]
    counts = tiers(*layout)
    study = study_with_counts(counts)
    below, level = layout[0][0], layout[1][1]
    tier_size, need = layout[1][0], K - below
    taken = Counter()
    runs = 600
    for seed in range(runs):
        for s in chosen(study, seed)[0]:
            taken[s.pk] += s.assigned == level
            assert s.assigned <= level
    tier = [s.pk for s in Stimulus.objects.filter(study=study, assigned=level)]
    expected = runs * need / tier_size
    chi2 = sum((taken[pk] - expected) ** 2 / expected for pk in tier)
    # chi-square with tier_size - 1 degrees of freedom: mean tier_size, sd sqrt(2 tier_size); 6 sd is far out
    assert chi2 < tier_size + 6 * (2 * tier_size) ** 0.5, chi2
    assert sum(taken.values()) == runs * need


@pytest.mark.django_db
def test_sessions_of_a_large_study_stay_balanced():
    """60 sessions of 20 over 1,200 stimuli at 0 (most starts probe a large tier): each stimulus once."""
    study = study_with_counts([0] * (IMAGES * METHODS))
    for i in range(60):
        sessions.start_session(study, participant_id=f"p{i}", seed=i)
    counts = dict(sessions.test_stimuli(study).values_list("pk", "assigned"))
    assert set(counts.values()) == {1}
    assert counts == sessions.trial_counts(study, sessions.held(sessions.timezone.now()))


@pytest.mark.django_db
def test_few_images_in_the_tier_still_spread_as_far_as_they_go():
    """A tier whose stimuli show fewer images than the session takes from it: each of them once before any twice
    (the sample is then drawn larger, or the tier read whole)."""
    per_image = Counter()
    counts = [1] * (IMAGES * METHODS)
    for pk_index in range(8 * METHODS):  # the first 8 images' stimuli at 0: 32 stimuli, 8 images
        counts[pk_index] = 0
    study = study_with_counts(counts)
    taken, _ = chosen(study, 3)
    per_image.update(s.image_id for s in taken if s.assigned == 0)
    assert sum(per_image.values()) == 20 and len(per_image) == 8
    assert max(per_image.values()) - min(per_image.values()) <= 1
