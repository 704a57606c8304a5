"""Figures as SVG or PNG bytes, deterministic (fixed SVG hash salt, no dates or software stamps in the files).

Built on ``matplotlib.figure.Figure`` with the Agg canvas, never pyplot, so nothing depends on a GUI backend or on
global figure state; a Django view can call these functions directly.
"""

import io

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .metrics import method_means

FORMATS = ("svg", "png")
RC = {"svg.hashsalt": "srmos", "svg.fonttype": "path", "font.size": 9}
METADATA = {"svg": {"Date": None, "Creator": None}, "png": {"Software": None}}


def _render(figure, fmt):
    if fmt not in FORMATS:
        raise ValueError(f"figure format must be one of {FORMATS}, not {fmt!r}")
    buffer = io.BytesIO()
    with matplotlib.rc_context(RC):
        FigureCanvasAgg(figure)
        figure.savefig(buffer, format=fmt, metadata=METADATA[fmt], dpi=150 if fmt == "png" else None)
    return buffer.getvalue()


def _panels(n, width=4.0, height=3.2):
    with matplotlib.rc_context(RC):
        figure = Figure(figsize=(width * n, height), layout="constrained")
        axes = figure.subplots(1, n, squeeze=False)[0]
    return figure, axes


def mos_figure(results, fmt="svg"):
    """MOS per method with 95 % CI bars, one panel per dataset."""
    mos = results.mos
    datasets = sorted(mos["dataset"].unique())
    with matplotlib.rc_context(RC):
        figure, axes = _panels(len(datasets))
        for ax, dataset in zip(axes, datasets):
            part = mos[mos["dataset"] == dataset].sort_values("method")
            x = np.arange(len(part))
            error = np.vstack([part["mos"] - part["ci95_low"], part["ci95_high"] - part["mos"]])
            ax.bar(x, part["mos"], yerr=np.nan_to_num(error), capsize=3, color="#4c72b0")
            ax.set_xticks(x, part["method"], rotation=45, ha="right")
            ax.set_ylim(*results.options.scale)
            ax.set_title(dataset)
            ax.set_ylabel("MOS (95% CI)")
        return _render(figure, fmt)


def score_distribution_figure(results, fmt="svg"):
    """Share of each score per method, colour-coded from worst (red) to best (green), as the SRGAN paper's Fig. 5."""
    ratings = results.ratings[results.ratings["kind"] != "calibration"]
    kept = ratings if results.options.keep_screened else ratings[~ratings["rater"].isin(results.rejected_raters)]
    levels, labels = _score_levels(kept["score"], results.options.scale)
    datasets = sorted(kept["dataset"].unique())
    colours = matplotlib.colormaps["RdYlGn"](np.linspace(0.05, 0.95, len(labels)))
    with matplotlib.rc_context(RC):
        figure, axes = _panels(len(datasets), height=0.4 * kept["method"].nunique() + 1.5)
        for ax, dataset in zip(axes, datasets):
            part = kept[kept["dataset"] == dataset]
            counts = pd.crosstab(part["method"].astype(str), levels[part.index]).reindex(
                columns=range(len(labels)), fill_value=0
            )
            shares = counts.to_numpy() / counts.to_numpy().sum(axis=1, keepdims=True)
            methods = list(counts.index)
            left = np.zeros(len(methods))
            for code, (label, colour) in enumerate(zip(labels, colours)):
                ax.barh(methods, shares[:, code], left=left, color=colour, label=label)
                left += shares[:, code]
            ax.set_xlim(0, 1)
            ax.invert_yaxis()
            ax.set_xlabel("share of ratings")
            ax.set_title(dataset)
        axes[-1].legend(title="score", loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
        return _render(figure, fmt)


def _score_levels(scores, scale):
    """Integer scores on a short scale are their own levels; anything else falls into five equal bins."""
    low, high = scale
    values = scores.to_numpy(dtype=float)
    if np.all(values == np.round(values)) and high - low <= 10:
        labels = [f"{v:g}" for v in np.arange(low, high + 1)]
        codes = (values - low).astype(int)
    else:
        edges = np.linspace(low, high, 6)
        codes = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, 4)
        labels = [f"{edges[k]:g}-{edges[k + 1]:g}" for k in range(5)]
    return _indexed(scores.index, codes), labels


def _indexed(index, codes):
    lookup = np.full(index.max() + 1 if len(index) else 0, -1)
    lookup[index.to_numpy()] = codes
    return lookup


def mos_psnr_figure(results, fmt="svg"):
    """MOS against PSNR (Y) per method, one panel per dataset; None without a metrics table."""
    if results.metrics is None:
        return None
    table = results.mos.astype({"dataset": str, "method": str}).merge(
        method_means(results.metrics), on=["dataset", "method"], how="inner"
    )
    table = table[np.isfinite(table["psnr_y"])]  # the HR reference has infinite PSNR
    datasets = sorted(table["dataset"].unique())
    if not datasets:
        return None
    with matplotlib.rc_context(RC):
        figure, axes = _panels(len(datasets))
        for ax, dataset in zip(axes, datasets):
            part = table[table["dataset"] == dataset].sort_values("method")
            error = np.vstack([part["mos"] - part["ci95_low"], part["ci95_high"] - part["mos"]])
            ax.errorbar(part["psnr_y"], part["mos"], yerr=np.nan_to_num(error), fmt="o", capsize=3)
            for _, row in part.iterrows():
                ax.annotate(row["method"], (row["psnr_y"], row["mos"]), textcoords="offset points", xytext=(4, 4))
            ax.margins(x=0.15)
            ax.set_xlabel("PSNR Y (dB)")
            ax.set_ylabel("MOS")
            ax.set_ylim(*results.options.scale)
            ax.set_title(dataset)
        return _render(figure, fmt)


FIGURES = {"mos": mos_figure, "score_distribution": score_distribution_figure, "mos_psnr": mos_psnr_figure}
