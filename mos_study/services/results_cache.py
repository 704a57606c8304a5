"""The dashboard's results, computed by a job and served at once (issue 17).

A study's results are computed by the Celery task ``mos_study.compute_results`` and stored, finished, in its
``ResultsSnapshot`` row: a zip of every file of the export (``exports.build_export``, whatever it renders: tables,
figures, summary) and ``meta.json`` (the MOS rows, screening and the ratings it was computed from). A pairwise
study's export (``pairwise_exports.build_pairwise_export``: scale, screening) is stored and restored the same way,
its choices standing for ratings. The results page reads that row and answers at once, saying how fresh it is.

With a broker, each new rating marks its study dirty (``ratings_changed``, on commit) and queues one job, delayed by
``SRMOS_RESULTS_DEBOUNCE_S`` (10 s) so that a burst of ratings costs one computation; while a job is queued or running
no second one is (``queued_at``), and ratings that arrive during a job queue the next one when it ends. A queued job
older than ``SRMOS_RESULTS_JOB_LOST_S`` (15 min) counts as lost (its worker died) and is queued again. Without a
broker (the quick start) the job runs in-process, as the other tasks do, when the results page finds the ratings
changed (``export_version``, which also notices ratings edited in place); no rating request ever computes results.

A job that fails keeps the last good result and records its error, which the page shows beside it.
"""

import dataclasses
import io
import json
import time
import zipfile
from collections.abc import Mapping
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.timesince import timesince

from sr_models.errors import SRMOSError

from ..models import Comparison, Rating, ResultsSnapshot, Study
from . import exports, pairwise_exports, progress
from .errors import StudyError

DEBOUNCE_S = 10
JOB_LOST_S = 15 * 60
META = "meta.json"
NOT_META = ("files", "results")  # every other field of the export goes to meta.json (fields added later too)
EXPORT_TYPES = {"pairwise": pairwise_exports.PairwiseExport}  # by the export's ``protocol`` field; else StudyExport
BREAKDOWN = "breakdown"  # and the ratings by kind when it was computed (progress.rating_breakdown)


def debounce_seconds():
    return float(getattr(settings, "SRMOS_RESULTS_DEBOUNCE_S", DEBOUNCE_S))


def job_lost_seconds():
    return float(getattr(settings, "SRMOS_RESULTS_JOB_LOST_S", JOB_LOST_S))


def in_process():
    """No broker: tasks run in-process (``CELERY_TASK_ALWAYS_EAGER``)."""
    return bool(getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False))


def snapshot_of(study_id):
    return ResultsSnapshot.objects.get_or_create(study_id=study_id)[0]


# --------------------------------------------------------------------------- marking and queueing


def ratings_changed(study_id):
    """A rating (or a pairwise choice) was stored (called on commit): mark the study dirty and, if no job is queued,
    queue one. One UPDATE while the study is already dirty; nothing at all without a broker (the results page checks
    there)."""
    if in_process():
        return
    now = timezone.now()
    newly_dirty = ResultsSnapshot.objects.filter(study_id=study_id, dirty_since__isnull=True).update(dirty_since=now)
    if not newly_dirty:
        if study_id in _with_row:  # dirty already: its job is queued (or will be, when the running one ends)
            return
        created = ResultsSnapshot.objects.get_or_create(study_id=study_id, defaults={"dirty_since": now})[1]
        _with_row.add(study_id)
        if not created:
            return
    request_compute(study_id)


# Studies known (in this process) to have their ResultsSnapshot row: a rating of a dirty study then costs one UPDATE.
_with_row = set()


def request_compute(study_id, delay=None):
    """Queue one compute job unless one is queued and not lost; returns whether this call queued it."""
    ResultsSnapshot.objects.get_or_create(study_id=study_id)
    now = timezone.now()
    lost = now - timedelta(seconds=job_lost_seconds())
    claimed = ResultsSnapshot.objects.filter(Q(queued_at__isnull=True) | Q(queued_at__lt=lost), study_id=study_id)
    if not claimed.update(queued_at=now):
        return False
    from ..tasks import compute_results

    delay = debounce_seconds() if delay is None else delay
    transaction.on_commit(lambda: compute_results.apply_async(args=(study_id,), countdown=delay))
    return True


# --------------------------------------------------------------------------- the job


def compute(study_id):
    """The job: read the ratings, build the export, store it; returns the outcome as a line.

    The dirty mark is cleared before the ratings are read, so a rating stored meanwhile queues the next job."""
    if not Study.objects.filter(pk=study_id).exists():
        return "no such study (deleted)"
    ResultsSnapshot.objects.get_or_create(study_id=study_id)
    ResultsSnapshot.objects.filter(study_id=study_id).update(started_at=timezone.now(), dirty_since=None)
    try:
        outcome = _compute_and_store(study_id)
    except Exception as error:  # noqa: BLE001 -- any failure is recorded; the last good result stays
        outcome = f"failed: {_describe(error)}"
        ResultsSnapshot.objects.filter(study_id=study_id).update(error=_describe(error), failed_at=timezone.now())
    finally:
        ResultsSnapshot.objects.filter(study_id=study_id).update(queued_at=None, started_at=None)
    if not in_process() and ResultsSnapshot.objects.filter(study_id=study_id, dirty_since__isnull=False).exists():
        request_compute(study_id)
    return outcome


def _compute_and_store(study_id):
    study = Study.objects.get(pk=study_id)
    rows, id_key = answer_records(study)
    version = exports.export_version(study, rows)
    last_id = max((row[id_key] for row in rows), default=0)
    ResultsSnapshot.objects.filter(study_id=study_id).update(tried_version=version, tried_last_rating_id=last_id)
    snapshot = ResultsSnapshot.objects.get(study_id=study_id)
    if snapshot.version == version and snapshot.archive is not None:
        ResultsSnapshot.objects.filter(study_id=study_id).update(error="", failed_at=None)
        return "unchanged"
    start = time.perf_counter()
    export = exports.build_export(study, rows=rows, with_ratings_csv=False, keep_all_if_all_rejected=True)
    export.version = version
    export.breakdown = progress.rating_breakdown(study)  # counted now, not by each page (seconds at 10^6 ratings)
    archive = pack(export)
    ResultsSnapshot.objects.filter(study_id=study_id).update(
        archive=archive,
        version=version,
        n_ratings=export.n_ratings,
        last_rating_id=last_id,
        computed_at=timezone.now(),
        compute_seconds=time.perf_counter() - start,
        error="",
        failed_at=None,
    )
    return f"computed from {export.n_ratings} ratings"


def answer_records(study):
    """The study's stored answers as the export reads them, and the key of their ids: ratings, or a pairwise
    study's choices (whose ids ``tried_last_rating_id`` and ``last_rating_id`` then hold)."""
    if study.protocol == Study.Protocol.PAIRWISE:
        return list(pairwise_exports.comparison_records(study)), "comparison_id"
    return list(exports.rating_records(study)), "rating_id"


def _describe(error):
    return str(error) if isinstance(error, SRMOSError) else f"{type(error).__name__}: {error}"


# --------------------------------------------------------------------------- storing and reading an export


def pack(export):
    """The export's files and meta.json as one zip (deflated: tables and SVG shrink several times)."""
    meta = {f.name: getattr(export, f.name) for f in dataclasses.fields(export) if f.name not in NOT_META}
    meta[BREAKDOWN] = getattr(export, BREAKDOWN, None)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr(META, json.dumps(meta, default=_json_value, allow_nan=True))
        for name, data in export.files.items():
            archive.writestr(f"files/{name}", data)
    return buffer.getvalue()


def _json_value(value):
    """numpy numbers and booleans in the MOS rows as their Python values."""
    return value.item() if hasattr(value, "item") else str(value)


class ArchiveFiles(Mapping):
    """name -> bytes of a stored export, each file read from the zip only when asked for."""

    def __init__(self, archive):
        self._zip = zipfile.ZipFile(io.BytesIO(archive))
        self._names = [n.removeprefix("files/") for n in self._zip.namelist() if n.startswith("files/")]
        self._known = set(self._names)

    def __getitem__(self, name):
        if name not in self._known:
            raise KeyError(name)
        return self._zip.read(f"files/{name}")

    def __iter__(self):
        return iter(self._names)

    def __len__(self):
        return len(self._names)

    def __contains__(self, name):
        return name in self._known


def unpack(archive):
    """A ``StudyExport`` (a ``PairwiseExport`` for a pairwise study) of the stored files (read lazily) and meta."""
    files = ArchiveFiles(archive)
    meta = json.loads(files._zip.read(META))  # NaN (an interval of one rating) comes back as NaN
    breakdown = meta.pop(BREAKDOWN, None)
    export = EXPORT_TYPES.get(meta.get("protocol"), exports.StudyExport)(files=files, **meta)
    export.breakdown = breakdown
    return export


# --------------------------------------------------------------------------- what the results page shows


@dataclasses.dataclass(frozen=True)
class Freshness:
    """How the result the page shows relates to the ratings stored now."""

    computed_at: object  # datetime, or None before the first result
    n_ratings: int  # ratings the result was computed from
    new_ratings: int  # ratings stored since (by id; without a broker, any change of the ratings counts)
    recomputing: bool  # a job is queued or running
    error: str  # the last job's failure, "" when it succeeded
    failed_at: object
    compute_seconds: object
    noun: str = "rating"  # what the raters give: "choice" in a pairwise study

    def line(self, now=None):
        """ "Computed 3 minutes ago from 12,340 ratings (in 4.2 s); 56 new ratings since, recomputing." and, after a
        failure, what failed."""
        now = now or timezone.now()
        if self.computed_at is None:
            text = "No results computed yet" + (": computing the first results." if self.recomputing else ".")
        else:
            text = f"Computed {timesince(self.computed_at, now)} ago from {self.n_ratings:,} {self.noun}s"
            text += f" (in {self.compute_seconds:.1f} s)" if self.compute_seconds is not None else ""
            if self.new_ratings:
                text += f"; {self.new_ratings:,} new {self.noun}{'s' if self.new_ratings != 1 else ''} since"
            if self.recomputing:
                text += ", recomputing."
            else:
                text += "." if self.new_ratings or self.error else "; up to date."
        if self.error:
            when = f" {timesince(self.failed_at, now)} ago" if self.failed_at else ""
            shown = "the results shown are the last good ones" if self.computed_at else "there is nothing to show yet"
            text += f" The last recomputation failed{when} ({self.error}); {shown}."
        return text


def latest(study):
    """(StudyExport of the last finished result or None, Freshness); queues a job where the result is stale.

    Without a broker a stale result is recomputed here, in-process, before answering. Raises StudyError with the
    last job's error when there is no result to show (no ratings yet, or every attempt failed)."""
    snapshot = snapshot_of(study.pk)
    if in_process():
        if exports.export_version(study) != snapshot.tried_version or snapshot.tried_version == "":
            from ..tasks import compute_results

            compute_results.apply(args=(study.pk,), throw=True)  # eager: runs here, as the other tasks do
            snapshot.refresh_from_db()
        new = 0
    else:
        new = new_ratings(study, snapshot)
        stale = new or snapshot.dirty_since is not None or snapshot.tried_version == ""
        if stale and snapshot.queued_at is None:
            request_compute(study.pk, delay=0 if snapshot.archive is None else None)
            snapshot.refresh_from_db()
    freshness = Freshness(
        computed_at=snapshot.computed_at,
        n_ratings=snapshot.n_ratings,
        new_ratings=new,
        recomputing=snapshot.queued_at is not None,
        error=snapshot.error,
        failed_at=snapshot.failed_at,
        compute_seconds=snapshot.compute_seconds,
        noun="choice" if study.protocol == Study.Protocol.PAIRWISE else "rating",
    )
    if snapshot.archive is None:
        if snapshot.error:
            raise StudyError(snapshot.error)
        return None, freshness
    return unpack(bytes(snapshot.archive)), freshness


def new_ratings(study, snapshot):
    """Ratings (a pairwise study's choices) stored after those the last job read (an index range on their ids: cheap
    at any size)."""
    answers = Comparison if study.protocol == Study.Protocol.PAIRWISE else Rating
    return answers.objects.filter(trial__session__study=study, pk__gt=snapshot.tried_last_rating_id).count()
