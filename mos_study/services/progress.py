"""The researcher's dashboard queries: which studies a researcher may see, and a study's progress."""

from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone

from ..models import Comparison, Rating, Study, Trial
from .sessions import assigned_counts, live_sessions, pair_counts

ACTIVE_WINDOW = timedelta(minutes=5)  # "active now": a rating or a heartbeat of the open page this recent


def visible_studies(user):
    """Studies a researcher may see: all for a superuser, else those they own or are listed on."""
    studies = Study.objects.all()
    if not user.is_superuser:
        studies = studies.filter(Q(owner=user) | Q(researchers=user)).distinct()
    return studies


def can_view(user, study):
    return user.is_authenticated and visible_studies(user).filter(pk=study.pk).exists()


def rating_breakdown(study):
    """The study's stored ratings by kind, as the study page and the results page both show them: ``test`` (regular
    test trials, what fills the per-stimulus target), ``calibration``, ``repeat`` and ``gold``, and ``total`` (every
    rating: what the analysis and the export read)."""
    answers = Comparison if study.protocol == Study.Protocol.PAIRWISE else Rating  # pairwise: choices, by kind
    kinds = answers.objects.filter(trial__session__study=study).order_by().values("trial__kind").annotate(n=Count("pk"))
    found = {row["trial__kind"]: row["n"] for row in kinds}
    counts = {
        "test": found.get(Trial.Kind.TRIAL, 0) + found.get(Trial.Kind.PAIR, 0),
        "calibration": found.get(Trial.Kind.CALIBRATION, 0),
        "repeat": found.get(Trial.Kind.REPEAT, 0),
        "gold": found.get(Trial.Kind.GOLD, 0),
    }
    return {**counts, "total": sum(found.values())}


def study_progress(study, now=None):
    """Dashboard figures: per-stimulus ratings against the target, sessions, active raters."""
    now = now or timezone.now()
    rated = Count("trials__rating", filter=Q(trials__kind=Trial.Kind.TRIAL))
    if study.protocol == Study.Protocol.PAIRWISE:  # choices on test pairs, the stimulus on either side
        pair = Trial.Kind.PAIR
        rated = Count("trials__comparison", filter=Q(trials__kind=pair), distinct=True) + Count(
            "trials_as_b__comparison", filter=Q(trials_as_b__kind=pair), distinct=True
        )
    stimuli = (
        study.stimuli.filter(is_calibration=False, is_gold=False)
        .select_related("output__method", "output__image")
        .annotate(ratings=rated)
        .order_by("output__image__dataset", "output__image__name", "output__method__name")
    )
    counts = pair_counts(study, now) if study.protocol == Study.Protocol.PAIRWISE else assigned_counts(study, now=now)
    rows = [
        {
            "stimulus": s,
            "method": s.output.method.name,
            "image": str(s.output.image),
            "ratings": s.ratings,
            "assigned": counts.get(s.pk, 0),
            "percent": min(100, round(100 * s.ratings / study.ratings_per_stimulus)),
        }
        for s in stimuli
    ]
    sessions = study.sessions.all()
    # Active: the rater acted recently (a rating, or the page's heartbeat after input), whatever leases are held.
    active = sessions.filter(finished__isnull=True, last_seen__gte=now - ACTIVE_WINDOW)
    breakdown = rating_breakdown(study)
    # A pairwise choice fills the target of the stimuli on both sides: count it for each, as the target does.
    pairwise = study.protocol == Study.Protocol.PAIRWISE
    filled = sum(r["ratings"] for r in rows) if pairwise else breakdown["test"]
    return {
        "rows": rows,
        "target": study.ratings_per_stimulus,
        "ratings": filled,  # test trials only: what fills the target (the rest in "breakdown")
        "breakdown": breakdown,
        "ratings_needed": study.ratings_per_stimulus * len(rows),
        "complete_stimuli": sum(r["ratings"] >= study.ratings_per_stimulus for r in rows),
        "raters": study.raters.count(),
        "sessions_finished": sessions.filter(finished__isnull=False).count(),
        "active_raters": active.values("rater").distinct().count(),
        "sessions_under_way": live_sessions(study, now).count(),  # unfinished sessions whose lease is live
    }
