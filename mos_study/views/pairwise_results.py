"""The results page of a pairwise study (``views.results`` hands pairwise studies here): the JOD scale per method
with its 95 % CIs, the win matrix, rater screening (trap pairs, test-retest and the pwcmp outlier analysis),
significance, figures and every file of the export (``services.pairwise_exports``)."""

import csv
import io

from ..services import progress

FIGURES = {"pairwise_scale": "Scale per method (JOD) with 95% CI", "pairwise_wins": "Win matrix"}
TABLES = {
    "pairwise_significance.csv": "Significance (bootstrap over raters, likelihood ratio; Holm)",
    "pairwise_scale_per_image.csv": "Scale per image (JOD)",
    "pairwise_raters.csv": "Rater outlier analysis (pwcmp)",
}


def csv_rows(data):
    """CSV bytes -> list of dicts."""
    return list(csv.DictReader(io.StringIO(data.decode())))


def short(value):
    """Six-decimal floats of the export shown with three."""
    try:
        return f"{float(value):.3f}" if "." in value else value
    except ValueError:
        return value


def win_matrix(files, scale):
    """Per dataset, the square win matrix in the scale's method order: rows beat columns, "wins / comparisons"."""
    cells = {}
    for row in csv_rows(files["pairwise_wins.csv"]):
        wins, n = float(row["wins"]), float(row["n_comparisons"])
        cells[(row["dataset"], row["method"], row["opponent"])] = f"{wins:g} / {n:g}" if n else "–"
    matrices = []
    for dataset in dict.fromkeys(row["dataset"] for row in scale):
        methods = [row["method"] for row in scale if row["dataset"] == dataset]
        rows = [(a, [cells.get((dataset, a, b), "") if a != b else "" for b in methods]) for a in methods]
        matrices.append({"dataset": dataset, "methods": methods, "rows": rows})
    return matrices


def table(data):
    header, *rows = csv.reader(io.StringIO(data.decode()))
    return header, [[short(v) for v in row] for row in rows]


def without_nan(row):
    """A scale row with its missing numbers (NaN: e.g. no MOS for HR, which the ACR study did not rate) as None."""
    return {key: None if isinstance(value, float) and value != value else value for key, value in row.items()}


def pairwise_results_context(study, export, poll_seconds):
    files = export.files
    return {
        "study": study,
        "pairwise": True,
        "export": export,
        "scale": [without_nan(row) for row in export.scale],
        "wins": win_matrix(files, export.scale),
        "screening": export.screening,
        "rejected": export.rejected,
        "all_rejected": export.all_rejected,
        "n_ratings": export.n_ratings,
        "mos_source": getattr(export, "mos_source", ""),  # results stored before it was added have none
        # As of the stored result (counted by the job), as on an ACR study's page.
        "breakdown": getattr(export, "breakdown", None) or progress.rating_breakdown(study),
        "pairwise_tables": [
            {"name": name, "title": title, "table": table(files[name])}
            for name, title in TABLES.items()
            if name in files
        ],
        "pairwise_figures": [
            {"name": name, "title": title, "png": f"{name}.png"}
            for name, title in FIGURES.items()
            if f"{name}.png" in files
        ],
        "downloads": sorted(files),
        "summary": files["pairwise_summary.txt"].decode(),
        "poll_seconds": poll_seconds,
        "version": export.version,
    }
