"""A study's export: every file ``manage.py export_results`` writes, built by one function the command and the
dashboard share, so a file downloaded from the dashboard is the command's file byte for byte.

The ratings are read from the database in chunks (``QuerySet.iterator``) and CSV lines are produced as rows come,
so a large study's ratings.csv streams. The dashboard keeps one built export per (study, last rating, metrics) in
Django's cache: the results page, its live refresh and each file download reuse it instead of recomputing.
"""

import csv
import io
import itertools
import zipfile
from dataclasses import dataclass, field, replace

from django.core.cache import cache
from django.db.models import Count, Max, Sum

from sr_models.csvcells import safe_row
from sr_models.errors import SRMOSError

from ..models import Method, Metric, MetricValue, Rating, Stimulus, Study, Trial
from . import pairwise_exports
from .errors import StudyError
from .rating_table import RATING_COLUMNS, rating_records

CACHE_SECONDS = 3600
EXPORT_RATING_COLUMNS = (
    "study",
    "rater",
    "session",
    "trial",
    "dataset",
    "image",
    "method",
    "score",
    "response_ms",
    "timestamp",
    "kind",
    "repetition",
    "expected_score",
    "completion_code",  # the session's code, so that approving a panel's submissions is one lookup
)
METRIC_COLUMNS = ["dataset", "image", "method", "psnr_y", "ssim_y"]
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "tex": "text/x-tex; charset=utf-8",
    "json": "application/json",
    "svg": "image/svg+xml",
    "png": "image/png",
}
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed, so the same export gives the same zip


# --------------------------------------------------------------------------- ratings, streamed


def csv_lines(rows, columns):
    """The header, then one CSV line per row as it comes (``\\n`` line ends, as ``analysis.export.to_csv_text``);
    text cells that a spreadsheet would run as a formula get a leading quote (``sr_models.csvcells``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for values in itertools.chain([columns], ([row[c] for c in columns] for row in rows)):
        writer.writerow(safe_row(values))
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def export_rows(study, rows):
    """Rows in the columns of the export's ratings.csv: the study's name first, keys stripped as the analysis does."""
    for row in rows:
        keys = {key: str(row[key]).strip() for key in ("dataset", "rater", "image", "method")}
        yield {**row, "study": study.name, **keys}


def ratings_csv_lines(study, rows=None):
    """The export's ratings.csv, line by line (all of the study's ratings unless ``rows`` is given)."""
    rows = rating_records(study) if rows is None else rows
    return csv_lines(export_rows(study, rows), EXPORT_RATING_COLUMNS)


def analysis_csv_lines(study):
    """The ratings in the columns ``mos_study.analysis`` reads (``rating_table.RATING_COLUMNS``), line by line."""
    return csv_lines(rating_records(study), RATING_COLUMNS)


# --------------------------------------------------------------------------- the export


NUMBER_COLUMNS = ("score", "expected_score", "trial", "repetition", "response_ms")  # numbers or "" in the records


def ratings_table(rows):
    """The records (``rating_records``) as the DataFrame ``analysis.prepare_ratings`` reads, built column by column:
    text columns as text, number columns as floats with "" missing, the numbers ``prepare_ratings`` parses from
    the text of the same cells (a million ratings were turned into text and parsed back: seconds)."""
    import pandas as pd

    return pd.DataFrame(
        {
            name: _numbers(values) if name in NUMBER_COLUMNS else pd.Series(values, dtype=object).astype(str)
            for name, values in ((name, [row[name] for row in rows]) for name in RATING_COLUMNS)
        }
    )


def _numbers(values):
    """Floats, "" as NaN (the records hold ints or ""); where a value is no number, the text of every value, for
    ``prepare_ratings`` to report as it reports a bad cell of a file."""
    import numpy as np
    import pandas as pd

    try:
        return pd.Series(np.array([np.nan if value == "" else value for value in values], dtype=float))
    except (TypeError, ValueError):
        return pd.Series(values, dtype=object).astype(str)


def study_metrics(study, y_convention="integer", crop_border=4):
    """PSNR/SSIM per stimulus output of the study (dataset,image,method,psnr_y,ssim_y), or None without records."""
    import pandas as pd

    rows = (
        Metric.objects.filter(output__stimuli__study=study, y_convention=y_convention, crop_border=crop_border)
        .values_list("output__image__dataset", "output__image__name", "output__method__name", "psnr_y", "ssim_y")
        .distinct()
    )
    table = pd.DataFrame(list(rows), columns=METRIC_COLUMNS)
    if table.empty:
        return None
    table = table.merge(extra_metrics(study, crop_border), on=METRIC_COLUMNS[:3], how="left")
    return table.sort_values(METRIC_COLUMNS[:3]).reset_index(drop=True)


def extra_metrics(study, crop_border=4):
    """One column per extra quality metric (``MetricValue``: lpips_alex, niqe, ...) of the study's outputs, keyed by
    dataset, image, method; no column where none was recorded."""
    import pandas as pd

    rows = (
        MetricValue.objects.filter(output__stimuli__study=study, crop_border=crop_border)
        .values_list("output__image__dataset", "output__image__name", "output__method__name", "name", "value")
        .distinct()
    )
    long = pd.DataFrame(list(rows), columns=[*METRIC_COLUMNS[:3], "metric", "value"])
    if long.empty:
        return pd.DataFrame(columns=METRIC_COLUMNS[:3])
    wide = long.pivot_table(index=METRIC_COLUMNS[:3], columns="metric", values="value", aggfunc="first")
    wide = wide.reset_index()
    wide.columns.name = None
    return wide


def metric_provenance_csv(study, names, crop_border=4):
    """The export's ``metric_provenance.csv``: each extra metric's kind, direction, convention, source and weights,
    ``stand-in`` where any of the study's values was computed with stand-in backbone weights (the column's mark)."""
    from benchmarks.tables import METRIC_PROVENANCE_COLUMNS, STAND_IN_WEIGHTS, csv_text
    from sr_models import quality

    rows = []
    for name in names:
        notes = set(
            MetricValue.objects.filter(output__stimuli__study=study, crop_border=crop_border, name=name)
            .values_list("weights_note", flat=True)
            .distinct()
        )
        note = STAND_IN_WEIGHTS if STAND_IN_WEIGHTS in notes else "; ".join(sorted(notes))
        try:
            metric = quality.get(name)
        except SRMOSError:  # a metric recorded by another srmos version
            rows.append({"metric": name, "weights_note": note})
            continue
        described = {key: getattr(metric, key) for key in ("kind", "higher_is_better", "convention", "source", "paper")}
        rows.append({"metric": name, "weights_note": note, **described})
    return csv_text(METRIC_PROVENANCE_COLUMNS, rows).encode()


def stand_in_metric_names(study, crop_border=4):
    """The extra metrics any of whose values for the study were computed with stand-in backbone weights (marked in
    the metric agreement, as ``metric_provenance_csv`` marks them)."""
    from benchmarks.tables import STAND_IN_WEIGHTS

    found = MetricValue.objects.filter(
        output__stimuli__study=study, crop_border=crop_border, weights_note=STAND_IN_WEIGHTS
    ).values_list("name", flat=True)
    return set(found.distinct())


def no_ratings(study):
    return StudyError(f"study {study.name!r} has no ratings yet: results appear once raters have rated images")


@dataclass
class StudyExport:
    """The files of one export (name -> bytes, as export_results writes them) and what the results page shows."""

    files: dict
    results: object = None  # analysis.Results; dropped before caching (it holds every rating)
    n_ratings: int = 0
    mos: list = field(default_factory=list)
    rejected: list = field(default_factory=list)
    all_rejected: bool = False  # screening rejected everyone, so the export keeps them all (a pilot)
    version: str = ""
    agreement_summary: str = ""  # which metric agrees best with MOS (analysis.agreement), with metrics only


def study_provenance(study):
    """The provenance rows of the methods a study shows (None where no run recorded any: imports, old runs)."""
    shown = Stimulus.objects.filter(study=study).values("output__method")
    rows = [method.provenance for method in Method.objects.filter(pk__in=shown).order_by("name") if method.provenance]
    return rows or None


def study_rules(study, options, gold_given=False):
    """The analysis options with the study's own screening threshold for gold trials (recorded in export.json),
    unless the caller gave one (``gold_given``)."""
    if gold_given:
        return options
    return replace(options, screening=replace(options.screening, gold_min_agreement=study.gold_pass_percent / 100))


def build_export(
    study,
    options=None,
    *,
    rows=None,
    y_convention="integer",
    crop_border=4,
    figures=True,
    with_ratings_csv=True,
    keep_all_if_all_rejected=False,
    gold_given=False,
):
    """Analyse the study's ratings (``rows``, or all of them read now) and render every file of export_results:
    the analysis files (``analysis.render_files``), ratings.csv and metrics_summary.csv. A pairwise study's
    export is its comparisons and their statistics (``pairwise_exports``)."""
    if study.protocol == Study.Protocol.PAIRWISE:
        return pairwise_exports.build_pairwise_export(study, figures=figures, rows=rows)  # its choices' records

    from benchmarks.tables import SUMMARY_COLUMNS, csv_text, summarise

    from ..analysis import AnalysisOptions, RatingsError, build_results, prepare_ratings, render_files

    rows = list(rating_records(study) if rows is None else rows)
    if not any(row["kind"] != Trial.Kind.CALIBRATION for row in rows):
        raise no_ratings(study)
    ratings = prepare_ratings(ratings_table(rows), source=f"study {study.name}")
    metrics = study_metrics(study, y_convention, crop_border)
    options = study_rules(study, options or AnalysisOptions(), gold_given)
    provenance = study_provenance(study)
    given = {"metrics": metrics, "provenance": provenance}
    if metrics is not None:
        given["stand_in_metrics"] = stand_in_metric_names(study, crop_border)
    try:
        results = build_results(ratings, options, **given)
    except RatingsError:
        if options.keep_screened or not keep_all_if_all_rejected:
            raise
        results = build_results(ratings, replace(options, keep_screened=True), **given)
    files = render_files(results, figures=figures)
    if with_ratings_csv:
        files["ratings.csv"] = "".join(ratings_csv_lines(study, rows)).encode()
    if metrics is not None:
        extra = tuple(column for column in metrics.columns if column not in METRIC_COLUMNS)
        summary = summarise(metrics.to_dict("records"), extra)
        files["metrics_summary.csv"] = csv_text(SUMMARY_COLUMNS + extra, summary).encode()
        if extra:
            files["metric_provenance.csv"] = metric_provenance_csv(study, extra, crop_border)
    screening = results.screening
    return StudyExport(
        files=files,
        results=results,
        n_ratings=len(results.ratings),
        mos=results.mos.to_dict("records"),
        rejected=screening.loc[screening["rejected"], ["rater", "reasons"]].to_dict("records"),
        all_rejected=results.options.keep_screened and not options.keep_screened,
        agreement_summary=results.agreement.summary if results.agreement is not None else "",
    )


# --------------------------------------------------------------------------- the dashboard's cached export


def _metrics_version(study):
    found = Metric.objects.filter(output__stimuli__study=study).aggregate(last=Max("pk"), n=Count("pk"))
    extra = MetricValue.objects.filter(output__stimuli__study=study).aggregate(last=Max("pk"), n=Count("pk"))
    return f"{found['last'] or 0}-{found['n']}-{extra['last'] or 0}-{extra['n']}"


def export_version(study, rows=None):
    """Names the data an export is built from: the ratings' last id, count and sums of scores and response times (of
    ``rows``, or as stored now; the sums notice ratings edited in place, e.g. in the admin), and the metrics."""
    if study.protocol == Study.Protocol.PAIRWISE:
        return pairwise_exports.comparisons_version(study, rows)
    if rows is None:
        found = Rating.objects.filter(trial__session__study=study).aggregate(
            last=Max("pk"), n=Count("pk"), scores=Sum("score"), ms=Sum("response_ms")
        )
        ratings = (found["last"] or 0, found["n"], found["scores"] or 0, found["ms"] or 0)
    else:
        ratings = (
            max((row["rating_id"] for row in rows), default=0),
            len(rows),
            sum(row["score"] for row in rows),
            sum(row["response_ms"] or 0 for row in rows),
        )
    return "-".join(map(str, ratings)) + f"-{_metrics_version(study)}"


def _cache_key(study, version):
    return f"srmos:export:v1:{study.pk}:{version}"


def dashboard_export(study, rows=None):
    """The study's export with the dashboard's options (the defaults of export_results; everyone kept, and said so,
    where screening rejects every rater), from the cache when the ratings have not changed since it was built.

    Raises StudyError while the study has no ratings."""
    if study.protocol == Study.Protocol.PAIRWISE:
        return pairwise_exports.dashboard_pairwise_export(study)
    version = export_version(study, rows)
    export = cache.get(_cache_key(study, version))
    if export is not None:
        return export
    if rows is None:
        if version.startswith("0-0-0-0-"):
            raise no_ratings(study)
        rows = list(rating_records(study))
        version = export_version(study, rows)  # ratings may have come since: name what was read
    export = build_export(study, rows=rows, with_ratings_csv=False, keep_all_if_all_rejected=True)
    export.results, export.version = None, version
    cache.set(_cache_key(study, version), export, CACHE_SECONDS)
    return export


def export_zip(study, spool):
    """Write the whole export (ratings.csv included, from the same ratings as the statistics) as a zip to ``spool``;
    member names sorted, dates fixed. Returns the export."""
    if study.protocol == Study.Protocol.PAIRWISE:  # its comparisons.csv is one of the export's files
        export = pairwise_exports.dashboard_pairwise_export(study)
        files = export.files
    else:
        rows = list(rating_records(study))
        export = dashboard_export(study, rows)
        files = {**export.files, "ratings.csv": "".join(ratings_csv_lines(study, rows)).encode()}
    with zipfile.ZipFile(spool, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, files[name])
    return export


def content_type(name):
    return CONTENT_TYPES.get(name.rsplit(".", 1)[-1], "application/octet-stream")
