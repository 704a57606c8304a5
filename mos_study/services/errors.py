"""The errors of the study services: every refusal a rater or researcher can cause is a ``StudyError``.

``StudyError`` is an ``sr_models.errors.SRMOSError`` (a ``ValueError``) whose message says what was wrong and how to
fix it; ``status`` is the HTTP code a view answers with (``views.common.study_error_response``).
"""

from sr_models.errors import SRMOSError


class StudyError(SRMOSError):
    """A request the study cannot accept; ``status`` is the HTTP answer."""

    status = 400


class InvalidRating(StudyError):
    status = 400


class TrialNotFound(StudyError):
    status = 404


class RatingConflict(StudyError):
    status = 409


class SessionMovedOn(RatingConflict):
    """A trial rated again from a stale page: the session went on past it elsewhere (another tab or device); the
    page says so and reloads instead of dropping the rater's scores silently."""


class StudyNotOpen(StudyError):
    status = 409


class StudyFull(StudyNotOpen):
    """No place for a new rater: every stimulus has its ratings given or under way. ``retry_after`` (seconds) is set
    where live leases of other sessions make it full, so places may come free."""

    def __init__(self, message, retry_after=None):
        super().__init__(message)
        self.retry_after = retry_after


class TooFast(InvalidRating):
    """An answer sooner after the image than the study's minimum viewing time."""

    status = 400
