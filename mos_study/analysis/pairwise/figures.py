"""Pairwise figures as PNG (or SVG) bytes, deterministic, on matplotlib's Agg canvas (never pyplot), like the ACR
figures (``mos_study.analysis.figures``, whose renderer they share). Methods in the paper's order."""

import matplotlib
import numpy as np

from ..figures import RC, _panels, _render
from ..order import datasets_in_order, methods_in_order


def _datasets(table):
    return datasets_in_order(table["dataset"].unique())


def scale_figure(results, fmt="png"):
    """JOD per method with bootstrap 95 % CIs, one panel per dataset, reference method at 0."""
    scale = results.scale_per_method
    datasets = _datasets(scale)
    with matplotlib.rc_context(RC):
        figure, axes = _panels(len(datasets))
        for ax, dataset in zip(axes, datasets):
            part = scale[scale["dataset"] == dataset]
            x = np.arange(len(part))
            error = np.vstack([part["scale"] - part["ci95_low"], part["ci95_high"] - part["scale"]])
            ax.errorbar(x, part["scale"], yerr=np.nan_to_num(error), fmt="o", capsize=3, color="#4c72b0")
            ax.axhline(0, color="0.7", linewidth=0.8)
            ax.set_xticks(x, list(part["method"]), rotation=45, ha="right")
            ax.set_title(dataset)
            ax.set_ylabel("quality (JOD, 95% CI)")
        return _render(figure, fmt)


def wins_figure(results, fmt="png"):
    """The win matrix: share of comparisons the row method won against the column method."""
    wins = results.win_matrix
    datasets = _datasets(wins)
    with matplotlib.rc_context(RC):
        figure, axes = _panels(len(datasets), width=4.6, height=4.0)
        for ax, dataset in zip(axes, datasets):
            part = wins[wins["dataset"] == dataset]
            methods = methods_in_order(set(part["method"]) | set(part["opponent"]))
            grid = part.pivot(index="method", columns="opponent", values="win_rate").reindex(methods, columns=methods)
            image = ax.imshow(grid.to_numpy(dtype=float), vmin=0, vmax=1, cmap="RdBu_r")
            for (row, column), value in np.ndenumerate(grid.to_numpy(dtype=float)):
                if value == value:
                    ax.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=6)
            ticks = np.arange(len(methods))
            ax.set_xticks(ticks, methods, rotation=45, ha="right")
            ax.set_yticks(ticks, methods)
            ax.set_title(dataset)
        figure.colorbar(image, ax=list(axes), shrink=0.8, label="share of comparisons the row method won")
        return _render(figure, fmt)


def mos_figure(results, fmt="png"):
    """Scale (JOD) beside MOS per method, one panel per dataset; None without MOS."""
    if not results.has_mos:
        return None
    scale = results.scale_per_method
    datasets = _datasets(scale)
    with matplotlib.rc_context(RC):
        figure, axes = _panels(len(datasets))
        for ax, dataset in zip(axes, datasets):
            part = scale[(scale["dataset"] == dataset) & scale["mos"].notna()]
            x_error = _error(part, "mos", "mos_ci95_low", "mos_ci95_high")
            y_error = _error(part, "scale", "ci95_low", "ci95_high")
            ax.errorbar(part["mos"], part["scale"], xerr=x_error, yerr=y_error, fmt="o", capsize=2, color="#4c72b0")
            for method, x, y in part[["method", "mos", "scale"]].itertuples(index=False):
                ax.annotate(method, (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
            ax.set_xlabel("MOS (95% CI)")
            ax.set_ylabel("pairwise quality (JOD, 95% CI)")
            ax.set_title(dataset)
        return _render(figure, fmt)


def _error(part, value, low, high):
    if low not in part or high not in part:
        return None
    return np.nan_to_num(np.vstack([part[value] - part[low], part[high] - part[value]]))


PAIRWISE_FIGURES = {"pairwise_scale": scale_figure, "pairwise_wins": wins_figure, "pairwise_mos": mos_figure}
