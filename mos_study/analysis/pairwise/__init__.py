"""Pairwise-comparison (forced choice) studies: reading, Thurstone / Bradley-Terry scaling in JOD, active sampling,
rater screening, significance and exports. Plain numpy/scipy/pandas, no Django; matplotlib only for figures.

``read_comparisons`` -> ``build_pairwise_results`` -> ``write_pairwise_results`` (or ``render_pairwise_files``);
``sampling.next_pairs`` chooses the pairs a rater sees next. See docs/analysis.md, "Pairwise comparisons".
"""

from . import sampling, scaling
from .comparisons import read_comparisons
from .export import render_pairwise_files, write_pairwise_results
from .results import PairwiseResults, build_pairwise_results

FIGURE_NAMES = ("PAIRWISE_FIGURES", "scale_figure", "wins_figure", "mos_figure")


def __getattr__(name):
    """Figure functions load matplotlib only when first asked for (PEP 562)."""
    if name in FIGURE_NAMES:
        from . import figures

        return getattr(figures, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "PairwiseResults",
    "build_pairwise_results",
    "read_comparisons",
    "render_pairwise_files",
    "sampling",
    "scaling",
    "write_pairwise_results",
]
