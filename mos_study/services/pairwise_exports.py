"""A pairwise study's export: comparisons.csv, trap-pair screening and the statistics of
``mos_study.analysis.pairwise`` (scale per method and per image with CIs, win matrix, rater screening, significance,
summary, figures), for ``manage.py export_results`` and the dashboard alike (``services.exports`` hands pairwise
studies to this module).

Screening: a trap pair shows an image's HR original against its nearest-neighbour upscale; choosing nearest
neighbour fails it (``no preference`` fails too: the difference is obvious). A rater who passes fewer than the
study's ``gold_pass_percent`` of their trap pairs is screened out of the statistics (their choices stay in
comparisons.csv). The statistics use test pairs only: calibration examples, trap pairs and repeats are left out
(repeats are reported as each rater's test-retest agreement).

MOS beside the scale: where the same owner's ACR study rated outputs this study compares and has finished results
(``ResultsSnapshot``), the newest such study's ``mos.csv`` goes beside the scale per method (``mos``, its CI); the
export says which study and when, and its version names that result, so a new ACR result recomputes this one.
"""

import csv
import io
import zipfile
from dataclasses import dataclass, field, replace

from django.core.cache import cache
from django.db.models import Count, Max, Sum

from sr_models.csvcells import safe_row

from ..models import HR_METHOD, Comparison, ResultsSnapshot, Stimulus, Study, Trial
from .errors import StudyError

CACHE_SECONDS = 3600
COMPARISON_COLUMNS = (
    "study",
    "rater",
    "session",
    "position",
    "kind",
    "dataset",
    "image",
    "method_a",
    "method_b",
    "choice",
    "left_is_a",  # the side A was shown on (researchers only: for side-bias checks)
    "response_ms",
    "timestamp",
    "completion_code",
)
SCREENING_COLUMNS = (
    "rater",
    "trap_pairs",
    "trap_failed",
    "trap_passed_percent",
    "repeats",
    "repeats_agreeing",
    "rejected",
    "reasons",
)
COMPARISON_FIELDS = (
    "pk",
    "trial__session__rater__participant_id",
    "trial__session__rater_id",
    "trial__session_id",
    "trial__position",
    "trial__kind",
    "trial__stimulus__output__image__dataset",
    "trial__stimulus__output__image__name",
    "trial__stimulus__output__method__name",
    "trial__stimulus_b__output__method__name",
    "choice",
    "trial__left_is_a",
    "response_ms",
    "created",
    "trial__session__completion_code",
)


def comparison_records(study):
    """One dict per stored choice of the study (every kind), in session and trial order, streamed."""
    rows = (
        Comparison.objects.filter(trial__session__study=study)
        .order_by("trial__session", "trial__position")
        .values_list(*COMPARISON_FIELDS)
    )
    for (
        pk,
        pid,
        rater_id,
        session,
        position,
        kind,
        dataset,
        image,
        a,
        b,
        choice,
        left,
        ms,
        created,
        code,
    ) in rows.iterator(chunk_size=2000):
        yield {
            "comparison_id": pk,
            "study": study.name,
            "rater": (pid or f"rater-{rater_id}").strip(),
            "session": session,
            "position": position,
            "kind": kind,
            "dataset": dataset,
            "image": image,
            "method_a": a,
            "method_b": b,
            "choice": choice,
            "left_is_a": "true" if left else "false",
            "response_ms": "" if ms is None else ms,
            "timestamp": created.isoformat(),
            "completion_code": code,
        }


def csv_text(rows, columns):
    """CSV text, every cell through ``sr_models.csvcells`` (``\\n`` line ends, as the other exports)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(safe_row(columns))
    for row in rows:
        writer.writerow(safe_row([row[c] for c in columns]))
    return buffer.getvalue()


def trap_passed(row):
    """Whether a trap pair's choice prefers HR (the trap pairs put HR on A; checked by name all the same)."""
    chosen = {"a": row["method_a"], "b": row["method_b"]}.get(row["choice"])
    return chosen == HR_METHOD


def repeat_agreements(rows):
    """{rater: (repeats, agreeing)}: a repeat agrees when it prefers the same method as the first showing."""
    first = {}
    for row in rows:
        if row["kind"] == Trial.Kind.PAIR:
            first[(row["session"], row["image"], frozenset((row["method_a"], row["method_b"])))] = preferred(row)
    found = {}
    for row in rows:
        if row["kind"] == Trial.Kind.REPEAT:
            key = (row["session"], row["image"], frozenset((row["method_a"], row["method_b"])))
            n, agreeing = found.get(row["rater"], (0, 0))
            found[row["rater"]] = (n + 1, agreeing + (key in first and first[key] == preferred(row)))
    return found


def preferred(row):
    return {"a": row["method_a"], "b": row["method_b"]}.get(row["choice"], "tie")


def trap_screening(rows, pass_percent):
    """Per rater: trap pairs seen and failed, the percent passed, repeats agreeing, and whether screened out."""
    raters = sorted({row["rater"] for row in rows})
    repeats = repeat_agreements(rows)
    table = []
    for rater in raters:
        traps = [row for row in rows if row["rater"] == rater and row["kind"] == Trial.Kind.GOLD]
        failed = sum(not trap_passed(row) for row in traps)
        percent = 100.0 * (len(traps) - failed) / len(traps) if traps else 100.0
        rejected = bool(traps) and percent < pass_percent
        n_repeats, agreeing = repeats.get(rater, (0, 0))
        reasons = f"failed {failed} of {len(traps)} trap pairs (HR against nearest neighbour)" if rejected else ""
        table.append(
            {
                "rater": rater,
                "trap_pairs": len(traps),
                "trap_failed": failed,
                "trap_passed_percent": f"{percent:.1f}",
                "repeats": n_repeats,
                "repeats_agreeing": agreeing,
                "rejected": "true" if rejected else "false",
                "reasons": reasons,
            }
        )
    return table


@dataclass
class PairwiseExport:
    """The files of a pairwise export and what the results page shows (as ``exports.StudyExport`` for ACR); a
    dataclass so that ``results_cache`` stores and restores it as it does StudyExport (every field but files and
    results to meta.json)."""

    files: dict
    results: object = None  # analysis.pairwise.PairwiseResults; dropped before caching
    screening: list = field(default_factory=list)
    n_ratings: int = 0  # the choices analysed (test pairs of raters kept)
    scale: list = field(default_factory=list)
    rejected: list = field(default_factory=list)
    all_rejected: bool = False
    version: str = ""
    protocol: str = "pairwise"
    mos_source: str = ""  # the ACR study whose MOS is beside the scale ("" where none is)

    @classmethod
    def of_results(cls, files, results, screening, n_comparisons, all_rejected):
        rejected = [{"rater": r["rater"], "reasons": r["reasons"]} for r in screening if r["rejected"] == "true"]
        scale = results.scale_per_method.to_dict("records")
        return cls(files, results, screening, n_comparisons, scale, rejected, all_rejected)


def comparisons_frame(rows):
    """The test comparisons in the columns ``analysis.pairwise.read_comparisons`` reads."""
    import pandas as pd

    columns = ["dataset", "rater", "image", "method_a", "method_b", "choice"]
    return pd.DataFrame([[str(row[c]) for c in columns] for row in rows], columns=columns)


def mos_companion(study):
    """The newest ACR study of the same owner that rated outputs this study compares and has finished results (its
    ``ResultsSnapshot``), or None."""
    outputs = Stimulus.objects.filter(study=study).values("output_id")
    return (
        ResultsSnapshot.objects.filter(
            study__protocol=Study.Protocol.ACR,
            study__owner_id=study.owner_id,
            study__stimuli__output__in=outputs,
            archive__isnull=False,
        )
        .exclude(study=study)
        .select_related("study")
        .order_by("-study__created", "-study__pk")
        .defer("archive")
        .first()
    )


def companion_mos(snapshot):
    """(the companion's mos.csv as a table, a line naming it) or (None, "")."""
    import pandas as pd

    if snapshot is None:
        return None, ""
    archive = ResultsSnapshot.objects.values_list("archive", flat=True).get(pk=snapshot.pk)
    with zipfile.ZipFile(io.BytesIO(bytes(archive))) as stored:
        if "files/mos.csv" not in stored.namelist():
            return None, ""
        mos = pd.read_csv(io.BytesIO(stored.read("files/mos.csv")), dtype={"dataset": str, "method": str})
    when = snapshot.computed_at.strftime("%Y-%m-%d %H:%M UTC") if snapshot.computed_at else "unknown time"
    return mos, f"MOS from ACR study {snapshot.study.name!r} ({snapshot.n_ratings} ratings, results of {when})"


def companion_version(snapshot):
    return f"-mos{snapshot.pk}.{snapshot.computed_at.timestamp():.0f}" if snapshot and snapshot.computed_at else ""


def build_pairwise_export(study, *, figures=True, bootstrap=1000, seed=0, rows=None):
    """Every file of a pairwise study's export; raises ``StudyError`` while it has no test choices."""
    from ..analysis.pairwise import build_pairwise_results, render_pairwise_files

    rows = list(comparison_records(study)) if rows is None else rows
    tests = [row for row in rows if row["kind"] == Trial.Kind.PAIR]
    if not tests:
        raise StudyError(f"study {study.name!r} has no choices yet: results appear once raters have compared images")
    screening = trap_screening(rows, study.gold_pass_percent)
    rejected = {row["rater"] for row in screening if row["rejected"] == "true"}
    kept = [row for row in tests if row["rater"] not in rejected]
    all_rejected = not kept
    kept = kept or tests  # screening rejected everyone (a pilot): keep them all, and say so
    mos, mos_source = companion_mos(mos_companion(study))
    results = build_pairwise_results(comparisons_frame(kept), bootstrap=bootstrap, seed=seed, mos=mos)
    if mos_source:
        results = replace(results, summary=(*results.summary, "", mos_source))
    files = render_pairwise_files(results, figures=figures)
    files["comparisons.csv"] = csv_text(rows, COMPARISON_COLUMNS).encode()
    files["pairwise_screening.csv"] = csv_text(screening, SCREENING_COLUMNS).encode()
    export = PairwiseExport.of_results(files, results, screening, len(kept), all_rejected)
    export.mos_source = mos_source
    return export


def comparisons_version(study, rows=None):
    """Names the choices an export is built from: last id, count, and the sum of response times (edits in place), of
    ``rows`` (``comparison_records``) or as stored now."""
    mos = companion_version(mos_companion(study))  # a new result of the ACR study beside it makes this one stale
    if rows is not None:
        ms = sum(row["response_ms"] or 0 for row in rows)  # "" where none was recorded
        return f"pairwise-{max((row['comparison_id'] for row in rows), default=0)}-{len(rows)}-{ms}{mos}"
    found = Comparison.objects.filter(trial__session__study=study).aggregate(
        last=Max("pk"), n=Count("pk"), ms=Sum("response_ms")
    )
    return f"pairwise-{found['last'] or 0}-{found['n']}-{found['ms'] or 0}{mos}"


def dashboard_pairwise_export(study):
    """The pairwise export with the default options, from the cache while no choice has come since it was built."""
    version = comparisons_version(study)
    key = f"srmos:pairwise-export:v1:{study.pk}:{version}"
    export = cache.get(key)
    if export is None:
        export = build_pairwise_export(study)
        export.results, export.version = None, version
        cache.set(key, export, CACHE_SECONDS)
    return export


def describe(export):
    """The command's one line about what it exported."""
    raters = {row["rater"] for row in export.screening}
    return (
        f"{export.n_ratings} comparisons from {len(raters)} raters ({len(export.rejected)} screened out by trap pairs)"
    )
