"""The choosing path of pairwise studies: one rater's choice on one pairwise trial, stored in one transaction.

The page posts the side the rater chose (``left``, ``right``, or ``none`` for no preference where the study allows
it); the server alone knows which side shows stimulus A (``Trial.left_is_a``) and stores ``a``, ``b`` or ``tie``
(``Comparison``). The guarantees of ``rating.rate_trial`` hold: the same choice again returns the stored one, a
different one raises ``RatingConflict``, a trial answered again once a later trial has its answer raises
``SessionMovedOn``, an answer sooner than the study's minimum viewing time is counted and refused (``TooFast``), and
the session's last choice finishes it. A session's choices run one after another (its row is locked).
"""

from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from ..models import Comparison, RatingSession, Trial
from .errors import InvalidRating, RatingConflict, SessionMovedOn, StudyNotOpen, TooFast, TrialNotFound
from . import results_cache
from .rating import clean_response_ms, takes_ratings
from .sessions import lock

SIDES = ("left", "right", "none")


@dataclass(frozen=True)
class ChoiceReceipt:
    """What one choice POST tells the page: the session's progress after it (never which side was A)."""

    comparison_id: int
    trial: str  # the trial's token
    side: str  # as posted: left, right or none
    created: bool  # False: the same choice again, answered with the stored one
    done: int
    total: int
    finished: bool


def clean_side(side, allow_tie):
    """``left``, ``right``, or ``none`` where the study allows no preference; anything else is refused."""
    if side not in SIDES or (side == "none" and not allow_tie):
        allowed = "left, right or none (no preference)" if allow_tie else "left or right"
        shown = repr(side) if isinstance(side, str) and len(side) <= 20 else type(side).__name__
        raise InvalidRating(format_lazy(_("choice must be {allowed}, not {shown}"), allowed=allowed, shown=shown))
    return side


def stored_choice(side, left_is_a):
    """The stored choice (a, b or tie) of a side on a trial whose left shows A where ``left_is_a``."""
    if side == "none":
        return Comparison.Choice.TIE
    return Comparison.Choice.A if (side == "left") == left_is_a else Comparison.Choice.B


def trial_to_choose(rater_token, trial_token):
    """The rater's pairwise trial of this token (its session and study joined), or ``TrialNotFound``."""
    if "\x00" in trial_token or "\x00" in rater_token:  # never a token; PostgreSQL refuses NUL in text
        raise TrialNotFound(_("no such trial in your session"))
    trial = (
        Trial.objects.select_related("session__study")
        .filter(token=trial_token, session__rater__token=rater_token, stimulus_b__isnull=False)
        .first()
    )
    if trial is None:
        raise TrialNotFound(_("no such trial in your session"))
    return trial


def check_not_moved_on(trial):
    """A trial answered again from a page left behind: the session went on past it elsewhere."""
    later = Comparison.objects.filter(trial__session_id=trial.session_id, trial__position__gt=trial.position)
    if later.exists():
        raise SessionMovedOn(
            _(
                "this session continued in another tab or window: this image was rated there already; "
                "the page reloads to continue where the session is"
            )
        )


def choose_side(rater_token, trial_token, side, response_ms=None):
    """Store one choice on the rater's pairwise trial in one transaction; returns a ``ChoiceReceipt``."""
    response_ms = clean_response_ms(response_ms)
    trial = trial_to_choose(str(rater_token), str(trial_token))
    study = trial.session.study
    side = clean_side(side, study.allow_tie)
    choice = stored_choice(side, trial.left_is_a)
    too_fast = False
    with transaction.atomic():
        session = lock(RatingSession, trial.session_id, "seed")
        existing = Comparison.objects.filter(trial=trial).first()
        created = existing is None
        too_fast = created and response_ms is not None and response_ms < study.min_view_ms
        if too_fast:  # counted on the session (committed), then refused
            RatingSession.objects.filter(pk=session.pk).update(fast_answers=F("fast_answers") + 1)
        elif created:
            if not takes_ratings(study.status, study.on_close):
                raise StudyNotOpen(_("this study is not open for ratings at the moment"))
            now = timezone.now()
            lease = now + timedelta(minutes=study.lease_minutes)
            RatingSession.objects.filter(pk=session.pk).update(lease_until=lease, last_seen=now)
            existing = Comparison.objects.create(trial=trial, choice=choice, response_ms=response_ms)
            # The dashboard's results: mark the study dirty, queue one debounced job (services.results_cache).
            study_id = study.pk
            transaction.on_commit(lambda: results_cache.ratings_changed(study_id))
        else:
            check_not_moved_on(trial)
            if existing.choice != choice:
                raise RatingConflict(_("this pair was already answered; a choice cannot be changed"))
        total = session.trials.count()
        done = Comparison.objects.filter(trial__session=session).count()
        finished = session.finished is not None
        if not finished and done == total:
            RatingSession.objects.filter(pk=session.pk, finished__isnull=True).update(finished=timezone.now())
            finished = True
    if too_fast:
        raise TooFast(
            format_lazy(
                _(
                    "answered {response_ms} ms after the images appeared: please look at both for at least "
                    "{min_view_ms} ms before choosing"
                ),
                response_ms=response_ms,
                min_view_ms=study.min_view_ms,
            )
        )
    return ChoiceReceipt(existing.pk, trial.token, side, created, done, total, finished)
