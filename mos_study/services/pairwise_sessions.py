"""Pairwise sessions: which pairs of one test image's versions a rater compares, in which order and on which side.

A pairwise trial shows two stimuli of the same test image: ``Trial.stimulus`` (A) and ``Trial.stimulus_b`` (B),
A on the left where ``left_is_a`` (drawn at random per trial, so side says nothing of the method). Sessions are built
under the study's row lock by ``sessions.start_session``, as ACR sessions are:

- test pairs: the session's ``images_per_session`` pairs (0: one per test image) go to the images whose stimuli have
  the fewest comparisons given or under way (``sessions.assigned_counts`` counts both sides of a pair); within an
  image, ``analysis.pairwise.sampling.next_pairs`` chooses the pairs over that image's methods (HR included when
  the study includes it) from the choices stored so far and the pairs handed out to sessions under way but not yet
  answered (design ``active``), or at random, or all pairs (``full``);
- calibration: each calibration image's HR against its nearest-neighbour version, labelled with the better side;
- trap pairs (``gold_trials``): HR against nearest neighbour of an image not used for calibration, shown as any test
  pair; a rater who prefers nearest neighbour fails it (``pairwise_exports.trap_screening``);
- repeats (``repeated_trials``): test pairs shown again later with the sides swapped (test-retest).

Order: calibration first, then the rest in a random order in which no test image follows itself
(``sessions.order_apart``).
"""

from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Q
from django.utils import timezone

from ..models import Comparison, Stimulus, Trial, new_token
from .sessions import held, order_apart

HR_SCORE, NN_SCORE = 5, 1  # the calibration/gold scores of the anchors (study_setup.CALIBRATION_SCORES)


@dataclass(frozen=True)
class Side:
    """What planning a pair needs of a stimulus."""

    pk: int
    image_id: int
    calibration_score: int | None


def sides_of(stimuli):
    """The stimuli (model rows or ``sessions.Candidate``s: only their keys are used) as ``Side``s, in key order."""
    pks = [s.pk for s in stimuli]
    rows = Stimulus.objects.filter(pk__in=pks).order_by("pk")
    return [Side(*row) for row in rows.values_list("pk", "output__image_id", "calibration_score")]


def image_of(item):
    """The test image of a planned pair (stimulus A, stimulus B, kind, left_is_a)."""
    return item[0].image_id


def by_image(stimuli):
    """{image id: [stimulus, ...]} in primary-key order (fixed condition indices for the sampler)."""
    groups = defaultdict(list)
    for stimulus in sorted(stimuli, key=lambda s: s.pk):
        groups[stimulus.image_id].append(stimulus)
    return groups


def anchor_pairs(stimuli):
    """(HR, NN) stimulus pairs per image from calibration or gold stimuli (scores 5 and 1)."""
    pairs = []
    for group in by_image(stimuli).values():
        hr = [s for s in group if s.calibration_score == HR_SCORE]
        nn = [s for s in group if s.calibration_score == NN_SCORE]
        if hr and nn:
            pairs.append((hr[0], nn[0]))
    return pairs


def stored_wins(study, groups):
    """{image id: n x n wins} from the study's stored test choices (wins[i, j]: times i beat j, ties 0.5 each), the
    indices those of ``groups`` (the image's stimuli in primary-key order)."""
    rows = Comparison.objects.filter(trial__session__study=study, trial__kind=Trial.Kind.PAIR)
    points = {Comparison.Choice.A: 1.0, Comparison.Choice.B: 0.0}
    rows = rows.values_list("trial__stimulus_id", "trial__stimulus_b_id", "choice")
    return _pair_matrices(groups, ((a, b, points.get(choice, 0.5)) for a, b, choice in rows))


def pending_pairs(study, groups):
    """{image id: n x n counts} of the test pairs given to sessions under way and not answered yet (pending[i, j]:
    pairs with i as A). ``next_pairs`` counts them as expected answers (``active``) or as comparisons made
    (``full``), so that raters who start together do not all get the same pairs before anyone has answered."""
    rows = Trial.objects.filter(session__study=study, kind=Trial.Kind.PAIR, comparison__isnull=True)
    rows = rows.filter(held(timezone.now())).values_list("stimulus_id", "stimulus_b_id")
    return _pair_matrices(groups, ((a, b, None) for a, b in rows))


def _pair_matrices(groups, rows):
    """Per image an n x n matrix from rows (stimulus A, stimulus B, points of A): A's points at [i, j] and B's at
    [j, i]; points None: a count of 1 at [i, j]. Stimuli no longer shown are left out."""
    import numpy as np

    index = {s.pk: (image, i) for image, group in groups.items() for i, s in enumerate(group)}
    matrices = {image: np.zeros((len(group), len(group))) for image, group in groups.items()}
    for a, b, points in rows:
        if a not in index or b not in index:
            continue
        image, i = index[a]
        j = index[b][1]
        if points is None:
            matrices[image][i, j] += 1.0
        else:
            matrices[image][i, j] += points
            matrices[image][j, i] += 1.0 - points
    return matrices


def pairs_per_image(groups, counts, k, rng):
    """{image id: pairs this session takes}: ``k`` pairs, each to the image least filled so far (comparisons given
    or under way per stimulus, this session's included), ties at random."""
    images = list(groups)
    rng.shuffle(images)
    load = {image: sum(counts.get(s.pk, 0) for s in groups[image]) for image in images}
    taken = dict.fromkeys(images, 0)
    for _ in range(k):
        image = min(images, key=lambda i: (load[i] + 2 * taken[i]) / len(groups[i]))  # stable: random among ties
        taken[image] += 1
    return {image: n for image, n in taken.items() if n}


def test_pairs(study, groups, counts, rng):
    """The session's test pairs [(stimulus A, stimulus B)], chosen per image by ``next_pairs``."""
    import numpy as np

    from ..analysis.pairwise.sampling import next_pairs

    groups = {image: group for image, group in groups.items() if len(group) >= 2}
    if not groups:
        return []
    k = study.images_per_session or len(groups)
    wins, pending = stored_wins(study, groups), pending_pairs(study, groups)
    sampler = np.random.default_rng(rng.getrandbits(63))
    pairs = []
    for image, n in pairs_per_image(groups, counts, k, rng).items():
        group = groups[image]
        conditions = [s.pk for s in group]  # labels only: the sampler needs no names
        chosen = next_pairs(conditions, wins[image], n, design=study.pair_design, rng=sampler, pending=pending[image])
        pairs += [(group[i], group[j]) for i, j in chosen[:n]]
    return pairs


def plan_pairs(study, calibration, stimuli, counts, rng, gold=()):
    """The session's trials as (stimulus A, stimulus B, kind, left_is_a): calibration first, then test pairs,
    repeats (sides swapped) and trap pairs in random order."""
    side = lambda: rng.random() < 0.5  # noqa: E731 - one coin per trial
    first = [(hr, nn, Trial.Kind.CALIBRATION, side()) for hr, nn in anchor_pairs(calibration)]
    first = order_apart(first, image_of, rng)
    tests = [(a, b, Trial.Kind.PAIR, side()) for a, b in test_pairs(study, by_image(stimuli), counts, rng)]
    repeats = [
        (a, b, Trial.Kind.REPEAT, not left)
        for a, b, _, left in rng.sample(tests, min(study.repeated_trials, len(tests)))
    ]
    traps = anchor_pairs(gold)
    traps = [(hr, nn, Trial.Kind.GOLD, side()) for hr, nn in rng.sample(traps, min(study.gold_trials, len(traps)))]
    last = image_of(first[-1]) if first else None
    return first + order_apart(tests + repeats + traps, image_of, rng, last=last)


def create_pair_trials(study, session, calibration, stimuli, counts, rng, gold=()):
    """Store the planned pairwise trials of a new session (in ``start_session``'s transaction)."""
    plan = plan_pairs(study, sides_of(calibration), sides_of(stimuli), counts, rng, sides_of(gold))
    Trial.objects.bulk_create(
        [
            Trial(
                session=session,
                position=position,
                stimulus_id=a.pk,
                stimulus_b_id=b.pk,
                kind=kind,
                left_is_a=left_is_a,
                image_token_a=new_token(),
                image_token_b=new_token(),
            )
            for position, (a, b, kind, left_is_a) in enumerate(plan)
        ]
    )


def pair_state(session):
    """What the pairwise page needs: per unanswered trial its token, the image token and size of each side and, for
    calibration, the side of the better example; nothing that names a method, an image or which side is A."""
    trials = list(
        session.trials.order_by("position").values_list(
            "token",
            "position",
            "kind",
            "left_is_a",
            "image_token_a",
            "image_token_b",
            "stimulus__output__width",
            "stimulus__output__height",
            "stimulus_b__output__width",
            "stimulus_b__output__height",
            "comparison__id",
        )
    )
    open_trials = [t for t in trials if t[10] is None]
    rows = []
    for token, position, kind, left_is_a, token_a, token_b, width_a, height_a, width_b, height_b, _ in open_trials:
        a = {"image_token": token_a, "width": width_a, "height": height_a}
        b = {"image_token": token_b, "width": width_b, "height": height_b}
        left, right = (a, b) if left_is_a else (b, a)
        # Calibration pairs are HR (A) against nearest neighbour (B): they say which side is the better example.
        better = ("left" if left_is_a else "right") if kind == Trial.Kind.CALIBRATION else None
        rows.append({"token": token, "position": position, "left": left, "right": right, "better": better})
    return {
        "total": len(trials),
        "done": len(trials) - len(open_trials),
        "finished": session.finished is not None,
        "allow_tie": session.study.allow_tie,
        "trials": rows,
    }


def trial_for_image_token(token):
    """(pairwise trial, its stimulus) behind a side's image token, or None."""
    trial = (
        Trial.objects.select_related("stimulus__output", "stimulus_b__output")
        .filter(Q(image_token_a=token) | Q(image_token_b=token))
        .first()
    )
    if trial is None:
        return None
    return trial, (trial.stimulus if trial.image_token_a == token else trial.stimulus_b)


def preview_pairs(study, seed=None):
    """A pairwise session's trials as ``start_session`` would plan them now, stored nowhere (a researcher's
    preview): per pair a position token, each side's stimulus token (its image URL) and size, and for calibration
    the better side."""
    import random
    import secrets

    from .sessions import pair_counts, split_stimuli

    calibration, stimuli, gold = split_stimuli(list(study.stimuli.order_by("pk")))
    rng = random.Random(secrets.randbits(62) if seed is None else seed)
    plan = plan_pairs(
        study, sides_of(calibration), sides_of(stimuli), pair_counts(study, timezone.now()), rng, sides_of(gold)
    )
    shown = Stimulus.objects.filter(pk__in={s.pk for a, b, _, _ in plan for s in (a, b)})
    looks = {pk: rest for pk, *rest in shown.values_list("pk", "token", "output__width", "output__height")}

    def side(stimulus):
        token, width, height = looks[stimulus.pk]
        return {"stimulus": token, "width": width, "height": height}

    trials = []
    for position, (a, b, kind, left_is_a) in enumerate(plan):
        left, right = (a, b) if left_is_a else (b, a)
        better = ("left" if left_is_a else "right") if kind == Trial.Kind.CALIBRATION else None
        trials.append(
            {"token": f"p{position}", "position": position, "left": side(left), "right": side(right), "better": better}
        )
    return trials
