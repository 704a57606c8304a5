"""Statistics of MOS studies: plain numpy/pandas/scipy/matplotlib, no Django.

One code path serves the command line (``python -m mos_study.analysis``), ``manage.py export_results`` and the
dashboard: ``prepare_ratings``/``read_ratings`` -> ``build_results`` -> ``write_results`` (or the figure functions).
"""

from .export import render_files, write_files, write_results
from .metrics import check_metrics, read_metrics
from .ratings import RatingsError, parse_columns, parse_scale, prepare_ratings, read_ratings
from .results import AnalysisOptions, Results, build_results, read_metric_provenance, read_provenance
from .screening import RULES, ScreeningOptions


FIGURE_NAMES = (
    "FIGURES",
    "compact_letters",
    "metric_agreement_figure",
    "mos_figure",
    "mos_letters_figure",
    "mos_psnr_figure",
    "score_distribution_figure",
)


def __getattr__(name):
    """Figure functions load matplotlib only when first asked for (PEP 562)."""
    if name in FIGURE_NAMES:
        from . import figures

        return getattr(figures, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def run_analysis(
    ratings,
    output_dir,
    options=None,
    metrics=None,
    extra_files=None,
    figures=True,
    provenance=None,
    stand_in_metrics=(),
):
    """Analyse a canonical ratings DataFrame and write every output file (plus ``extra_files``: name -> bytes)
    to output_dir, all or nothing. Returns the Results."""
    results = build_results(ratings, options, metrics=metrics, provenance=provenance, stand_in_metrics=stand_in_metrics)
    files = render_files(results, figures=figures)
    files.update(extra_files or {})
    write_files(files, output_dir)
    return results


__all__ = [
    "AnalysisOptions",
    "FIGURES",
    "RULES",
    "RatingsError",
    "Results",
    "ScreeningOptions",
    "build_results",
    "check_metrics",
    "compact_letters",
    "metric_agreement_figure",
    "mos_figure",
    "mos_letters_figure",
    "mos_psnr_figure",
    "parse_columns",
    "parse_scale",
    "prepare_ratings",
    "read_metric_provenance",
    "read_metrics",
    "read_provenance",
    "read_ratings",
    "render_files",
    "run_analysis",
    "score_distribution_figure",
    "write_files",
    "write_results",
]
