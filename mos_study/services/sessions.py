"""A rater's session: balanced assignment of stimuli, the order of trials, starting and resuming a session.

``start_session`` locks the study row while it builds a session, so that concurrent raters stay balanced: each
session takes the stimuli with the fewest ratings assigned so far, in a random order (fixed by the session's seed)
in which no test image follows itself. ``session_state`` is what the rating page reads.
"""

import random
import secrets
from collections import Counter, defaultdict
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from ..models import Rater, RatingSession, Study, Trial
from .errors import StudyError, StudyNotOpen

SESSION_TIMEOUT = timedelta(hours=2)  # unfinished sessions older than this stop holding their unrated trials
PARTICIPANT_PARAMS = ("PROLIFIC_PID", "pid")  # URL parameters that carry a panel's participant id


def lock(model, pk, field):
    """Hold one row until the transaction ends, and return it fresh: SELECT ... FOR UPDATE, or on SQLite (no row
    locks) a no-op write, which takes the database's write lock first thing, before a read could deadlock."""
    if connection.vendor == "sqlite":
        model.objects.filter(pk=pk).update(**{field: F(field)})
        return model.objects.get(pk=pk)
    return model.objects.select_for_update().get(pk=pk)


def lock_study(study):
    """Serialise session building per study so that concurrent raters stay balanced."""
    return lock(Study, study.pk, "status")


def assigned_counts(study, now=None):
    """Ratings each (non-calibration) stimulus has or is still expected to get: {stimulus pk: count}.

    A trial counts when rated, or when its session is finished or still fresh; trials of abandoned sessions
    free their place so that later raters fill it.
    """
    cutoff = (now or timezone.now()) - SESSION_TIMEOUT
    counts = dict.fromkeys(study.stimuli.filter(is_calibration=False).values_list("pk", flat=True), 0)
    live = Trial.objects.filter(session__study=study, kind=Trial.Kind.TRIAL).filter(
        Q(rating__isnull=False) | Q(session__finished__isnull=False) | Q(session__started__gte=cutoff)
    )
    for row in live.values("stimulus").annotate(n=Count("pk")):
        counts[row["stimulus"]] = row["n"]
    return counts


def choose_stimuli(stimuli, counts, k, rng):
    """The ``k`` stimuli with the fewest assigned ratings; ties broken at random, spread over test images."""
    shuffled = list(stimuli)
    rng.shuffle(shuffled)
    shuffled.sort(key=lambda s: counts[s.pk])  # stable sort: random order within each count
    seen = Counter()
    keys = {}
    for index, stimulus in enumerate(shuffled):
        tier = (counts[stimulus.pk], stimulus.output.image_id)
        keys[stimulus.pk] = (counts[stimulus.pk], seen[tier], index)  # an image's 2nd stimulus after all 1st ones
        seen[tier] += 1
    return sorted(shuffled, key=lambda s: keys[s.pk])[:k]


def arrangeable(counts, first_not=None):
    """Whether items with these per-image counts can be lined up with no image twice in a row."""
    n = sum(counts.values())
    biggest = max(counts.values(), default=0)
    if biggest > (n + 1) // 2:
        return False
    # With n odd, an image holding (n + 1) / 2 items must take the first place.
    return not (n % 2 == 1 and first_not is not None and counts.get(first_not, 0) == (n + 1) // 2)


def order_apart(items, image_of, rng, last=None):
    """A random order of ``items`` in which no image follows itself (nor ``last``), wherever one exists."""
    groups = defaultdict(list)
    for item in items:
        groups[image_of(item)].append(item)
    for group in groups.values():
        rng.shuffle(group)
    order = []
    while groups:
        counts = {image: len(group) for image, group in groups.items()}
        candidates = []
        for image in groups:
            if image == last:
                continue
            after = {**counts, image: counts[image] - 1}
            if arrangeable(after, first_not=image):
                candidates.append(image)
        if not candidates:
            # No arrangement exists (too many items of one image): spend the biggest group first, so that as few
            # neighbours as possible share an image.
            others = [image for image in groups if image != last] or list(groups)
            biggest = max(counts[image] for image in others)
            candidates = [image for image in others if counts[image] == biggest]
        image = rng.choices(candidates, weights=[counts[c] for c in candidates])[0]
        order.append(groups[image].pop())
        if not groups[image]:
            del groups[image]
        last = image
    return order


def image_of(pair):
    """The test image of a (stimulus, kind) pair."""
    return pair[0].output.image_id


def plan_session(study, calibration, stimuli, counts, rng):
    """The session's trials as (stimulus, kind): calibration first, then trials and repeats in random order."""
    first = order_apart([(s, Trial.Kind.CALIBRATION) for s in calibration], image_of, rng)
    k = study.images_per_session or len(stimuli)
    chosen = choose_stimuli(stimuli, counts, k, rng)
    repeats = rng.sample(chosen, min(study.repeated_trials, len(chosen)))
    rest = [(s, Trial.Kind.TRIAL) for s in chosen] + [(s, Trial.Kind.REPEAT) for s in repeats]
    last = image_of(first[-1]) if first else None
    return first + order_apart(rest, image_of, rng, last=last)


def check_open(study):
    if study.status == Study.Status.PREPARING:
        raise StudyNotOpen("this study is being prepared (its images are being made): please come back later")
    if study.status != Study.Status.OPEN:
        raise StudyNotOpen("this study is not open for ratings at the moment")


def study_is_full(study, counts):
    return bool(counts) and min(counts.values()) >= study.ratings_per_stimulus


def clean_participant_id(value):
    value = (value or "").strip()
    if len(value) > 200:
        raise StudyError("the participant id is too long (200 characters at most)")
    if "\x00" in value:  # PostgreSQL refuses NUL in text
        raise StudyError("the participant id has a NUL byte")
    return value


def find_rater(study, participant_id):
    """The rater who already started ``study`` under this panel participant id, or None."""
    participant_id = clean_participant_id(participant_id)
    if not participant_id:
        return None
    return Rater.objects.filter(study=study, participant_id=participant_id).first()


def start_session(study, *, participant_id="", user_agent="", seed=None, now=None):
    """A new consenting rater with a balanced, randomly ordered session; a known participant id resumes its own."""
    participant_id = clean_participant_id(participant_id)
    with transaction.atomic():
        study = lock_study(study)
        check_open(study)
        rater = find_rater(study, participant_id)
        if rater is not None:
            return current_session(rater)
        stimuli = list(study.stimuli.select_related("output").order_by("pk"))
        trial_stimuli = [s for s in stimuli if not s.is_calibration]
        counts = assigned_counts(study, now=now)
        if study_is_full(study, counts):
            raise StudyNotOpen("this study has collected all the ratings it needs: thank you for your interest")
        rater = Rater.objects.create(
            study=study, participant_id=participant_id, consented_at=timezone.now(), user_agent=user_agent[:500]
        )
        seed = secrets.randbits(62) if seed is None else seed
        session = RatingSession.objects.create(rater=rater, study=study, seed=seed)
        calibration = [s for s in stimuli if s.is_calibration]
        plan = plan_session(study, calibration, trial_stimuli, counts, random.Random(seed))
        Trial.objects.bulk_create(
            [Trial(session=session, position=i, stimulus=s, kind=kind) for i, (s, kind) in enumerate(plan)]
        )
    return session


def current_session(rater):
    """The rater's latest session (one per rater in the browser flow)."""
    return rater.sessions.order_by("-started", "-pk").first()


def session_of(rater_token):
    """The latest session of the rater with this link token, or None; one query, for the page's state reads."""
    return RatingSession.objects.filter(rater__token=rater_token).order_by("-started", "-pk").first()


def session_state(session):
    """What the rating page needs, and nothing that names a method, dataset or image."""
    trials = session.trials.order_by("position").values_list(
        "token",
        "position",
        "kind",
        "stimulus__output__width",
        "stimulus__output__height",
        "stimulus__calibration_score",
        "rating__id",  # plain rows: no model objects for a page load
    )
    trials = list(trials)
    unrated = [t for t in trials if t[6] is None]
    return {
        "total": len(trials),
        "done": len(trials) - len(unrated),
        "finished": session.finished is not None,
        "trials": [
            {
                "token": token,
                "position": position,
                "width": width,
                "height": height,
                # Calibration trials say which score they show; "repeat" stays hidden from the rater.
                "calibration_score": calibration_score if kind == Trial.Kind.CALIBRATION else None,
            }
            for token, position, kind, width, height, calibration_score, _ in unrated
        ],
    }
