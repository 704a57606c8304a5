"""The rating path: one rater's score for one trial, stored in one transaction, answered with a frozen receipt.

``rate_trial`` runs a few SQL statements (the ORM's query building cost more CPU than the database's work); the
view ``views.rater.submit`` translates its ``RatingReceipt`` or its ``StudyError`` into JSON. The errors' messages are
lazy translations (``gettext_lazy``): they take the rater's language when the view writes them, not when raised.
"""

import math
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from ..models import Rater, Rating, RatingSession, Study, Trial
from . import results_cache, sessions
from .errors import InvalidRating, RatingConflict, SessionMovedOn, StudyNotOpen, TooFast, TrialNotFound

SCORE_LABELS = {1: "bad", 2: "poor", 3: "fair", 4: "good", 5: "excellent"}
MAX_RESPONSE_MS = 10 * 60 * 1000  # longer answers are clamped: the rater was away, not looking for 3 hours


def clean_score(score):
    """A score is a JSON integer from 1 to 5 and nothing else: not "4", " 5\\n", "\u0663", 4.0 or true."""
    if type(score) is not int or not 1 <= score <= 5:
        shown = repr(score) if isinstance(score, (str, float)) and len(repr(score)) <= 40 else type(score).__name__
        raise InvalidRating(
            format_lazy(_("score must be a JSON integer from 1 (bad) to 5 (excellent), not {shown}"), shown=shown)
        )
    return score


def clean_response_ms(value):
    """Milliseconds from image shown to answer as measured by the page: None, or clamped to [0, MAX]."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidRating(_("response_ms must be a non-negative number of milliseconds"))
    if isinstance(value, float) and not math.isfinite(value) or value < 0:
        raise InvalidRating(_("response_ms must be a non-negative number of milliseconds"))
    return min(value, MAX_RESPONSE_MS) if isinstance(value, int) else min(int(round(value)), MAX_RESPONSE_MS)


@dataclass(frozen=True)
class RatingReceipt:
    """What one rating POST tells the page: the stored rating and the session's progress after it."""

    rating_id: int
    trial: str  # the trial's token
    score: int
    created: bool  # False: the same score again, answered with the stored rating
    done: int
    total: int
    finished: bool


# The rating path in a few statements (BEGIN, these three, COMMIT; one more for a session's last rating; on PostgreSQL
# the last two are one, LEASE_RATE_PROGRESS), written in SQL because the ORM's query building cost more CPU than the
# database's work. Table names follow the models.
TRIAL_TO_RATE = f"""
    SELECT t.id, t.session_id, s.finished IS NOT NULL, st.status, r.id, r.score, st.on_close, st.min_view_ms,
           st.lease_minutes, s.holds_trials, st.id
    FROM {Trial._meta.db_table} t
    JOIN {RatingSession._meta.db_table} s ON s.id = t.session_id
    JOIN {Rater._meta.db_table} p ON p.id = s.rater_id
    JOIN {Study._meta.db_table} st ON st.id = s.study_id
    LEFT JOIN {Rating._meta.db_table} r ON r.trial_id = t.id
    WHERE t.token = %s AND p.token = %s AND t.stimulus_b_id IS NULL"""  # pairwise trials: services.comparing
# SQLite has no row locks: a no-op write on the session takes the database's write lock before anything is read.
SQLITE_LOCK_SESSION = f"""
    UPDATE {RatingSession._meta.db_table} SET seed = seed
    WHERE id = (SELECT session_id FROM {Trial._meta.db_table} WHERE token = %s)"""
INSERT_RATING = f"""
    INSERT INTO {Rating._meta.db_table} (trial_id, score, response_ms, created) VALUES (%s, %s, %s, %s)
    ON CONFLICT (trial_id) DO NOTHING RETURNING id"""
SESSION_PROGRESS = f"""
    SELECT count(*), count(r.id) FROM {Trial._meta.db_table} t
    LEFT JOIN {Rating._meta.db_table} r ON r.trial_id = t.id WHERE t.session_id = %s"""
# Each rating extends the session's lease (services.sessions) and says the rater was active.
EXTEND_LEASE = f"UPDATE {RatingSession._meta.db_table} SET lease_until = %s, last_seen = %s WHERE id = %s"
COUNT_FAST_ANSWER = (
    f"UPDATE {RatingSession._meta.db_table} SET fast_answers = fast_answers + 1, last_seen = %s WHERE id = %s"
)
# Whether the session has a rated trial after this one: a repeat of it comes from a page left behind (another tab).
RATED_LATER = f"""
    SELECT 1 FROM {Trial._meta.db_table} t JOIN {Rating._meta.db_table} r ON r.trial_id = t.id
    WHERE t.session_id = %s AND t.position > (SELECT position FROM {Trial._meta.db_table} WHERE id = %s) LIMIT 1"""
# PostgreSQL: the lease, the rating and the session's progress in one statement (one round trip, not three; each one
# costs a wait for a busy database's CPU). The count cannot see the row its own INSERT adds: the caller adds it.
LEASE_RATE_PROGRESS = f"""
    WITH lease AS ({EXTEND_LEASE}),
         inserted AS ({INSERT_RATING})
    SELECT (SELECT id FROM inserted), count(*), count(r.id) FROM {Trial._meta.db_table} t
    LEFT JOIN {Rating._meta.db_table} r ON r.trial_id = t.id WHERE t.session_id = %s"""
FINISH_SESSION = f"UPDATE {RatingSession._meta.db_table} SET finished = %s WHERE id = %s AND finished IS NULL"


def takes_ratings(status, on_close):
    """Whether a session of a study in this state may still be rated: open, paused (raters in a session finish),
    or closed where the researcher let them finish."""
    if status in (Study.Status.OPEN, Study.Status.PAUSED):
        return True
    return status == Study.Status.CLOSED and on_close == Study.OnClose.FINISH


def rate_trial(rater_token, trial_token, score, response_ms=None):
    """Store one rating of the rater's trial in one transaction; returns a ``RatingReceipt``.

    Idempotent: the same score again returns the stored rating; a different one raises ``RatingConflict``; a trial
    rated again once a later trial of the session has its rating (a stale page) raises ``SessionMovedOn``. A
    session's ratings run one after another (its row is locked), so the last one sees all others and finishes it.
    """
    score = clean_score(score)
    response_ms = clean_response_ms(response_ms)
    trial_token = str(trial_token)
    if "\x00" in trial_token or "\x00" in str(rater_token):  # never a token; PostgreSQL refuses NUL in text
        raise TrialNotFound(_("no such trial in your session"))
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(SQLITE_LOCK_SESSION, [trial_token])
            cursor.execute(TRIAL_TO_RATE, [trial_token, str(rater_token)])
        else:
            cursor.execute(TRIAL_TO_RATE + " FOR UPDATE OF s", [trial_token, str(rater_token)])
        row = cursor.fetchone()
        if row is None:
            raise TrialNotFound(_("no such trial in your session"))
        trial_id, session_id, finished, status, rating_id, stored_score, on_close, min_view_ms, lease_minutes = row[:9]
        holds_trials, study_id = row[9:]
        created = rating_id is None
        too_fast = created and response_ms is not None and response_ms < min_view_ms
        progress = None  # (trials, rated) where the rating's statement counted them
        if created and not too_fast:
            if not takes_ratings(status, on_close):
                raise StudyNotOpen(_("this study is not open for ratings at the moment"))
            now = timezone.now()
            stamp = connection.ops.adapt_datetimefield_value(now)
            lease = connection.ops.adapt_datetimefield_value(now + timedelta(minutes=lease_minutes))
            if not holds_trials and not finished:  # the rater came back after the lease ran out
                sessions.take_back(session_id, study_id)  # before the rating: its trial counts as held
            if connection.vendor == "postgresql":
                params = [lease, stamp, session_id, trial_id, score, response_ms, stamp, session_id]
                cursor.execute(LEASE_RATE_PROGRESS, params)
                inserted_id, total, done = cursor.fetchone()
                inserted, progress = (inserted_id,) if inserted_id else None, (total, done + bool(inserted_id))
            else:
                cursor.execute(EXTEND_LEASE, [lease, stamp, session_id])
                cursor.execute(INSERT_RATING, [trial_id, score, response_ms, stamp])
                inserted = cursor.fetchone()
            if inserted is None:  # rated by a request that held the lock while this one read (read committed)
                cursor.execute(f"SELECT id, score FROM {Rating._meta.db_table} WHERE trial_id = %s", [trial_id])
                (rating_id, stored_score), created = cursor.fetchone(), False
            else:
                rating_id, stored_score = inserted[0], score
                # The dashboard's results: mark the study dirty, queue one debounced job (services.results_cache).
                transaction.on_commit(lambda: results_cache.ratings_changed(study_id))
        if not created and not too_fast:
            cursor.execute(RATED_LATER, [session_id, trial_id])
            if cursor.fetchone() is not None:
                raise SessionMovedOn(
                    _(
                        "this session continued in another tab or window: this image was rated there already; "
                        "the page reloads to continue where the session is"
                    )
                )
        if too_fast:  # counted on the session (committed), then refused
            cursor.execute(COUNT_FAST_ANSWER, [connection.ops.adapt_datetimefield_value(timezone.now()), session_id])
        elif stored_score != score:
            raise RatingConflict(
                format_lazy(_("this image was already rated {score}; a rating cannot be changed"), score=stored_score)
            )
        if progress is None:
            cursor.execute(SESSION_PROGRESS, [session_id])
            progress = cursor.fetchone()
        total, done = progress
        if not finished and done == total:
            cursor.execute(FINISH_SESSION, [connection.ops.adapt_datetimefield_value(timezone.now()), session_id])
            finished = True
    if too_fast:
        raise TooFast(
            format_lazy(
                _(
                    "answered {response_ms} ms after the image appeared: please look at each image for at least "
                    "{min_view_ms} ms before rating it"
                ),
                response_ms=response_ms,
                min_view_ms=min_view_ms,
            )
        )
    return RatingReceipt(rating_id, trial_token, score, created, done, total, finished)


def submit_rating(rater, trial_token, score, response_ms=None):
    """Store one rating in one transaction; returns (rating, created). See ``rate_trial``."""
    receipt = rate_trial(rater.token, trial_token, score, response_ms)
    return Rating.objects.get(pk=receipt.rating_id), receipt.created


def mark_finished(session):
    """Stamp the session finished once every trial has its rating (pairwise trials: their comparison)."""
    unanswered = session.trials.filter(rating__isnull=True, comparison__isnull=True)
    if not session.finished and not unanswered.exists():
        session.finished = timezone.now()
        session.save(update_fields=["finished"])
