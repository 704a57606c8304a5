"""A study's ratings as the long table ``mos_study.analysis`` reads: one row per rating, ``RATING_COLUMNS``
(``mos_study.rating_columns``).

``rating_records`` streams the rows from the database in chunks (plain tuples, bounded memory); ``services.exports``
builds every export file from them, ``ratings_frame`` gives them to the analysis as a DataFrame.
"""

from ..models import Rating, Trial
from ..rating_columns import RATING_COLUMNS

RATING_CHUNK_SIZE = 2000  # ratings per database round trip when streaming
RATING_ROW_FIELDS = (
    "pk",
    "trial__stimulus__output__image__dataset",
    "trial__session__rater__participant_id",
    "trial__session__rater_id",
    "trial__stimulus__output__image__name",
    "trial__stimulus__output__method__name",
    "score",
    "trial__kind",
    "trial__stimulus__calibration_score",
    "trial__session_id",
    "trial__position",
    "response_ms",
    "created",
    "trial__session__completion_code",
)


def rating_records(study, chunk_size=RATING_CHUNK_SIZE):
    """The rows of ``rating_rows`` plus each rating's ``rating_id``, read ``chunk_size`` ratings at a time as plain
    tuples (no model instances: 3-4x less CPU per row), so a large study streams in bounded memory."""
    ratings = (
        Rating.objects.filter(trial__session__study=study)
        .order_by("trial__session", "trial__position")
        .values_list(*RATING_ROW_FIELDS)
    )
    for (
        pk,
        dataset,
        participant_id,
        rater_id,
        image,
        method,
        score,
        kind,
        calibration_score,
        session,
        position,
        response_ms,
        created,
        completion_code,
    ) in ratings.iterator(chunk_size=chunk_size):
        yield {
            "rating_id": pk,
            "dataset": dataset,
            "rater": participant_id or f"rater-{rater_id}",
            "image": image,
            "method": method,
            "score": score,
            "kind": kind,
            "expected_score": calibration_score or "",
            "session": session,
            "trial": position,
            "repetition": 1 if kind == Trial.Kind.REPEAT else 0,
            "response_ms": "" if response_ms is None else response_ms,
            "timestamp": created.isoformat(),
            "completion_code": completion_code,  # the export's ratings.csv, to approve a panel's submissions
        }


def rating_rows(study):
    """One dict per stored rating, in the columns of ``mos_study.analysis.ratings`` (``RATING_COLUMNS``)."""
    for record in rating_records(study):
        del record["rating_id"], record["completion_code"]
        yield record


def ratings_frame(study):
    """The study's ratings as the canonical DataFrame of ``mos_study.analysis`` (calibration rows included)."""
    import pandas as pd

    from ..analysis import prepare_ratings

    frame = pd.DataFrame(list(rating_rows(study)), columns=RATING_COLUMNS).astype(str)
    return prepare_ratings(frame, source=f"study {study.name}")
