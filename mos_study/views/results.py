"""A study's results on the dashboard: the tables and figures of ``export_results``, refreshed live, each file a
download, and the whole export as a zip. Every file comes from ``services.exports`` (the command's code path)."""

import csv
import io
import itertools
import re
import tempfile

from django.conf import settings
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import render
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_safe

from sr_models.errors import SRMOSError

from ..models import Study
from ..services import exports, progress, results_cache
from ..services.errors import StudyError
from .pairwise_results import pairwise_results_context
from .dashboard import csv_stream, private, researcher_required, study_for

POLL_SECONDS = 15  # the results page asks for new tables this often (setting SRMOS_RESULTS_POLL_SECONDS)
SIX_DECIMALS = re.compile(r"-?\d+\.\d{6}")  # how the export writes floats; shown with 3 decimals
TABLE_TITLES = {
    "mos.csv": "MOS per method",
    "mos_per_image.csv": "MOS per image",
    "screening.csv": "Rater screening",
    "significance.csv": "Significance (Wilcoxon, Mann-Whitney U, Holm)",
    "table2.csv": "PSNR, SSIM and MOS (Table 2)",
    "metric_correlation.csv": "Correlation of PSNR/SSIM with MOS",
    "metric_agreement.csv": "Metric agreement with MOS per stimulus (SROCC, KROCC, PLCC, RMSE, 95% CIs)",
    "metric_agreement_per_method.csv": "Metric agreement with MOS per method",
    "metric_agreement_tests.csv": "Metrics against PSNR (Williams' test, bootstrap of the SROCC difference)",
    "metrics_summary.csv": "PSNR/SSIM of the outputs",
    "subjective_model_stimuli.csv": "Subjective model (P.910): quality per stimulus",
    "subjective_model_raters.csv": "Subjective model (P.910): rater bias and inconsistency",
    "mos_all_raters.csv": "MOS per method, screened raters included",
    "mos_per_image_all_raters.csv": "MOS per image, screened raters included",
}
FIGURE_TITLES = {
    "mos": "MOS with 95% CI per method",
    "mos_letters": "MOS with significance letters (primary test)",
    "score_distribution": "Distribution of scores per method",
    "mos_psnr": "MOS against PSNR",
    "metric_agreement": "MOS against each metric, with the fitted logistic",
}


DISPLAY_ROWS = 200  # rows of a table the page shows (a crowd study has 10,000 stimuli); the file has them all


def display_table(data, limit=None):
    """CSV bytes -> (header, rows) for a HTML table, six-decimal floats shortened to three; the first ``limit`` rows
    only (parsed no further), when given."""
    reader = csv.reader(io.StringIO(data.decode()))
    header = next(reader)
    rows = reader if limit is None else itertools.islice(reader, limit)
    return header, [[f"{float(v):.3f}" if SIX_DECIMALS.fullmatch(v) else v for v in row] for row in rows]


def table_item(files, name):
    """One table of the page: its first DISPLAY_ROWS rows and how many the file holds."""
    data = files[name]
    total = data.count(b"\n") - 1  # one record per line: the export quotes no line breaks into cells
    return {"name": name, "title": TABLE_TITLES[name], "table": display_table(data, DISPLAY_ROWS), "total": total}


def agreement_rows(files):
    """The pooled per-stimulus rows of metric_agreement.csv (all datasets), as the results page's table shows them."""
    if "metric_agreement.csv" not in files:
        return []
    header, rows = display_table(files["metric_agreement.csv"])
    return [row for row in (dict(zip(header, values)) for values in rows) if row["dataset"] == "all"]


def results_context(study, export):
    if study.protocol == Study.Protocol.PAIRWISE:  # a scale from comparisons, not MOS: its own page body
        return pairwise_results_context(study, export, poll_seconds())
    files = export.files
    tables = [table_item(files, name) for name in TABLE_TITLES if name in files]
    figures = [
        {"name": name, "title": title, "svg": f"figures/{name}.svg", "png": f"figures/{name}.png"}
        for name, title in FIGURE_TITLES.items()
        if f"figures/{name}.svg" in files
    ]
    return {
        "study": study,
        "export": export,
        "mos": export.mos,
        "rejected": export.rejected,
        "all_rejected": export.all_rejected,
        "n_ratings": export.n_ratings,
        # The study page's counts (one function for both pages), as of the stored result where there is one.
        "breakdown": getattr(export, "breakdown", None) or progress.rating_breakdown(study),
        "tables": tables,
        "figures": figures,
        "agreement": agreement_rows(files),
        "agreement_summary": getattr(export, "agreement_summary", ""),
        "downloads": sorted(files) + ["ratings.csv"],
        "summary": files["summary.md"].decode(),
        "poll_seconds": poll_seconds(),
        "version": export.version,
    }


def poll_seconds():
    return getattr(settings, "SRMOS_RESULTS_POLL_SECONDS", POLL_SECONDS)


def error_context(study, error):
    return {
        "study": study,
        "error": str(error),
        "breakdown": progress.rating_breakdown(study),
        "poll_seconds": poll_seconds(),
        "version": exports.export_version(study),
    }


FIRST_RESULTS = "the first results are being computed: they appear here when they are ready"


def latest_export(study):
    """(the export to show, its Freshness): the study's last finished result (``services.results_cache``: computed
    by a job, served at once), an ACR or a pairwise study's alike."""
    export, freshness = results_cache.latest(study)
    if export is None:
        raise StudyError(FIRST_RESULTS)
    return export, freshness


def page_context(study):
    """The results' context, or the error context (no ratings yet, nothing computed yet), with its freshness."""
    try:
        export, freshness = latest_export(study)
    except SRMOSError as error:  # no ratings yet, or none left to analyse
        return error_context(study, error)
    context = results_context(study, export)
    if freshness is not None:
        context["freshness"] = freshness
        context["freshness_line"] = freshness.line()
    return context


@researcher_required
@require_safe
def results(request, pk):
    """Every table and figure of the last finished result, with how fresh it is and a download link for each file."""
    study = study_for(request.user, pk)
    return render(request, "mos_study/dashboard/results.html", page_context(study))


@researcher_required
@require_safe
def results_live(request, pk):
    """The page's poll: 204 while ``?version=`` is still the result shown and ``?state=`` (when given) still the
    freshness line shown; else the new body and/or freshness line."""
    study = study_for(request.user, pk)
    context = page_context(study)
    same_body = request.GET.get("version") == context["version"]
    same_line = request.GET.get("state") in (None, context.get("freshness_line", ""))
    if same_body and same_line:
        return HttpResponse(status=204)
    context["with_body"] = not same_body
    return render(request, "mos_study/dashboard/_results_live.html", context)


@researcher_required
@require_safe
def export_file(request, pk, name):
    """One file of the export; ratings.csv streams (all ratings stored now), the others come from the cache."""
    study = study_for(request.user, pk)
    download_name = f"{study.name}-{name.replace('/', '-')}"
    if name == "ratings.csv":
        return csv_stream(exports.ratings_csv_lines(study), download_name)
    try:
        data = latest_export(study)[0].files[name]
    except SRMOSError as error:
        return HttpResponse(str(error), status=404, content_type="text/plain; charset=utf-8")
    except KeyError:
        raise Http404(f"the export has no file {name!r}") from None
    response = HttpResponse(data, content_type=exports.content_type(name))
    # Figures open inline (the page shows them); tables and text download.
    response["Content-Disposition"] = content_disposition_header(not name.startswith("figures/"), download_name)
    return private(response)


@researcher_required
@require_safe
def export_zip(request, pk):
    """The whole export (the files export_results writes) as one zip."""
    study = study_for(request.user, pk)
    spool = tempfile.SpooledTemporaryFile(max_size=32 * 2**20)
    try:
        exports.export_zip(study, spool)
    except SRMOSError as error:
        spool.close()
        return HttpResponse(str(error), status=404, content_type="text/plain; charset=utf-8")
    spool.seek(0)
    return private(
        FileResponse(spool, as_attachment=True, filename=f"{study.name}-results.zip", content_type="application/zip")
    )


@researcher_required
@require_safe
def mos_svg(request, pk):
    return export_file(request, pk, "figures/mos.svg")
