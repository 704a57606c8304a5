"""Figures as SVG or PNG bytes, deterministic (fixed SVG hash salt, no dates or software stamps in the files).

Built on ``matplotlib.figure.Figure`` with the Agg canvas, never pyplot, so nothing depends on a GUI backend or on
global figure state; a Django view can call these functions directly. Each ``*_figure(results, fmt)`` returns the
bytes of one format, or, given a tuple of formats, a dict format -> bytes of one figure saved in each.
"""

import io
import string

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .agreement import STAND_IN_METRIC_NOTE, direction_words, metric_label
from .metrics import STAND_IN_MARK, method_means
from .order import datasets_in_order, paper_sort
from .ratings import test_rows
from .significance import PRIMARY_TEST, ROLES

FORMATS = ("svg", "png")
RC = {"svg.hashsalt": "srmos", "svg.fonttype": "path", "font.size": 9}
METADATA = {"svg": {"Date": None, "Creator": None}, "png": {"Software": None}}


def _render(figure, fmt):
    """The figure's bytes in ``fmt``; given a tuple of formats, a dict format -> bytes of the one figure saved in
    each (drawing the figure is most of a figure's cost at 10,000 stimuli: build it once, save it twice)."""
    if isinstance(fmt, tuple):
        # The layout engine starts from the axes' current positions: each save starts from the positions before the
        # first, so each file is byte for byte the file of a figure drawn for that format alone.
        start = [(ax, ax.get_position(original=True), ax.get_position(), ax.get_in_layout()) for ax in figure.axes]
        rendered = {}
        for one in fmt:
            for ax, original, active, in_layout in start:
                ax.set_position(original, which="original")
                ax.set_position(active, which="active")
                ax.set_in_layout(in_layout)  # set_position takes an axes out of the layout
            rendered[one] = _render(figure, one)
        return rendered
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


def _labels(results, methods):
    """Method names for axes, a stand-in model marked."""
    stand_ins = results.stand_in_methods
    return [f"{m} {STAND_IN_MARK}" if str(m) in stand_ins else str(m) for m in methods]


def _ordered(table):
    """Datasets and methods as strings, in the paper's order."""
    return paper_sort(table.astype({"dataset": str, "method": str}), ["dataset", "method"])


def _stand_in_note(figure, results, stand_in_metrics=frozenset()):
    """The footnote of the dagger: methods trained with stand-in features, metrics computed with stand-in weights."""
    lines = (
        [f"{STAND_IN_MARK} trained with stand-in VGG features: not the paper's model"]
        if results.stand_in_methods
        else []
    )
    if stand_in_metrics:
        lines.append(f"{STAND_IN_METRIC_NOTE} ({', '.join(sorted(stand_in_metrics))})")
    if lines:
        figure.supxlabel("\n".join(lines), fontsize=7)


def mos_figure(results, fmt="svg"):
    """MOS per method with 95 % CI bars and the number of ratings on each bar, one panel per dataset."""
    mos = _ordered(results.mos)
    datasets = datasets_in_order(mos["dataset"].unique())
    with matplotlib.rc_context(RC):
        figure, axes = _panels(len(datasets))
        for ax, dataset in zip(axes, datasets):
            part = mos[mos["dataset"] == dataset]
            x = np.arange(len(part))
            error = np.vstack([part["mos"] - part["ci95_low"], part["ci95_high"] - part["mos"]])
            ax.bar(x, part["mos"], yerr=np.nan_to_num(error), capsize=3, color="#4c72b0")
            for xi, n in zip(x, part["n_ratings"]):
                ax.text(xi, results.options.scale[0], f"n={int(n)}", ha="center", va="bottom", fontsize=6, color="w")
            ax.set_xticks(x, _labels(results, part["method"]), rotation=45, ha="right")
            ax.set_ylim(*results.options.scale)
            ax.set_title(dataset)
            ax.set_ylabel("MOS (95% CI)")
        _stand_in_note(figure, results)
        return _render(figure, fmt)


def score_distribution_figure(results, fmt="svg"):
    """Share of each score per method, colour-coded from worst (red) to best (green), as the SRGAN paper's Fig. 5."""
    ratings = test_rows(results.ratings)
    kept = ratings if results.options.keep_screened else ratings[~ratings["rater"].isin(results.rejected_raters)]
    levels, labels = _score_levels(kept["score"], results.options.scale)
    datasets = datasets_in_order(kept["dataset"].unique())
    colours = matplotlib.colormaps["RdYlGn"](np.linspace(0.05, 0.95, len(labels)))
    tables = score_counts(kept, levels[kept.index], len(labels))
    with matplotlib.rc_context(RC):
        figure, axes = _panels(len(datasets), height=0.4 * kept["method"].nunique() + 1.5)
        for ax, dataset in zip(axes, datasets):
            counts = tables[dataset]
            order = paper_sort(pd.DataFrame({"method": counts.index}), ["method"])["method"]
            counts = counts.loc[list(order)]
            shares = counts.to_numpy() / counts.to_numpy().sum(axis=1, keepdims=True)
            methods = _labels(results, counts.index)
            left = np.zeros(len(methods))
            for code, (label, colour) in enumerate(zip(labels, colours)):
                ax.barh(methods, shares[:, code], left=left, color=colour, label=label)
                left += shares[:, code]
            ax.set_xlim(0, 1)
            ax.invert_yaxis()
            ax.set_xlabel("share of ratings")
            ax.set_title(dataset)
        _stand_in_note(figure, results)
        axes[-1].legend(title="score", loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
        return _render(figure, fmt)


def score_counts(ratings, levels, n_levels):
    """dataset -> counts of each score level (columns 0..n_levels-1) per method rated in it (rows, sorted names):
    ``pd.crosstab`` of each dataset's rows, as one ``np.bincount`` over the key codes of all rows."""
    dataset, method = (as_categories(ratings[key]) for key in ("dataset", "method"))
    n_methods = len(method.cat.categories)
    flat = (dataset.cat.codes.to_numpy(np.int64) * n_methods + method.cat.codes.to_numpy()) * n_levels + levels
    shape = (len(dataset.cat.categories), n_methods, n_levels)
    counts = np.bincount(flat, minlength=int(np.prod(shape))).reshape(shape)
    tables = {}
    for d, name in enumerate(dataset.cat.categories):
        rated = counts[d].sum(axis=1) > 0
        methods = pd.Index(method.cat.categories[rated], name="method")
        tables[str(name)] = pd.DataFrame(counts[d][rated], index=methods, columns=range(n_levels))
    return tables


def as_categories(values):
    """The column as a categorical (kept if it is one: ``results.sort_ratings`` makes the keys so)."""
    return values if isinstance(values.dtype, pd.CategoricalDtype) else values.astype(str).astype("category")


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
    """MOS against PSNR (Y): one point per test image per method (per-image MOS), the method's mean (MOS of the
    method, mean PSNR over its images) marked larger and labelled; one panel per dataset. None without metrics."""
    if results.metrics is None:
        return None
    metrics = results.metrics.astype({"dataset": str, "image": str, "method": str})
    images = results.mos_per_image.astype({"dataset": str, "image": str, "method": str}).merge(
        metrics, on=["dataset", "image", "method"], how="inner"
    )
    images = images[np.isfinite(images["psnr_y"])]  # the HR reference has infinite PSNR
    means = _ordered(results.mos).merge(method_means(metrics), on=["dataset", "method"], how="inner")
    means = means[np.isfinite(means["psnr_y"])]
    datasets = datasets_in_order(means["dataset"].unique())
    if not datasets:
        return None
    colours = matplotlib.colormaps["tab10"]
    with matplotlib.rc_context(RC):
        figure, axes = _panels(len(datasets))
        for ax, dataset in zip(axes, datasets):
            part = means[means["dataset"] == dataset]
            for k, row in enumerate(part.itertuples(index=False)):
                colour = colours(k % 10)
                points = images[(images["dataset"] == dataset) & (images["method"] == row.method)]
                ax.scatter(points["psnr_y"], points["mos"], s=8, alpha=0.5, color=colour, linewidths=0)
                ax.errorbar(
                    [row.psnr_y],
                    [row.mos],
                    yerr=np.nan_to_num([[row.mos - row.ci95_low], [row.ci95_high - row.mos]]),
                    fmt="D",
                    markersize=6,
                    capsize=3,
                    color=colour,
                    markeredgecolor="k",
                )
                label = _labels(results, [row.method])[0]
                ax.annotate(label, (row.psnr_y, row.mos), textcoords="offset points", xytext=(5, 5), fontsize=7)
            ax.margins(x=0.15)
            ax.set_xlabel("PSNR Y (dB); dots: images, diamonds: method means")
            ax.set_ylabel("MOS")
            ax.set_ylim(*results.options.scale)
            ax.set_title(dataset)
        _stand_in_note(figure, results)
        return _render(figure, fmt)


def metric_agreement_figure(results, fmt="svg"):
    """MOS against each metric, small multiples: one dot per stimulus (per-image MOS; the reference stimuli left out,
    as in the statistics), coloured by method, and the fitted VQEG logistic (or the fallback line) with SROCC and
    PLCC in the title. None without metrics."""
    agreement = results.agreement
    if agreement is None or agreement.stimuli is None or agreement.stimuli.empty:
        return None
    stimuli, pooled = agreement.stimuli, agreement.per_stimulus.set_index("metric")
    pooled = pooled[pooled["dataset"] == "all"]
    names = [m for m in agreement.fits if np.isfinite(stimuli[m].to_numpy(dtype=float)).any()]
    if not names:
        return None
    columns = min(4, len(names))
    rows = -(-len(names) // columns)
    methods = paper_sort(pd.DataFrame({"method": stimuli["method"].unique()}), ["method"])["method"].tolist()
    colours = {m: matplotlib.colormaps["tab10"](k % 10) for k, m in enumerate(methods)}
    with matplotlib.rc_context(RC):
        figure = Figure(figsize=(3.2 * columns, 2.8 * rows), layout="constrained")
        axes = figure.subplots(rows, columns, squeeze=False).ravel()
        for ax, metric in zip(axes, names):
            fit, row = agreement.fits[metric], pooled.loc[metric]
            _agreement_panel(ax, stimuli, metric, fit, row, colours, agreement.stand_ins)
            ax.set_ylim(*results.options.scale)
        for ax in axes[len(names) :]:
            ax.set_axis_off()
        handles = [Line2D([], [], ls="", marker="o", color=colours[m]) for m in methods]
        figure.legend(handles, _labels(results, methods), loc="outside right center", frameon=False, fontsize=7)
        figure.suptitle("MOS per stimulus against each metric, with the fitted VQEG logistic", fontsize=8)
        _stand_in_note(figure, results, agreement.stand_ins)
        return _render(figure, fmt)


def agreement_panel_title(metric, row, fit, stand_ins=frozenset()):
    """A panel's title: the metric (with the dagger when computed with stand-in weights), its direction, SROCC and
    PLCC and the curve fitted."""
    curve = "logistic" if fit.kind == "logistic" else "line: no logistic fit"
    return (
        f"{metric_label(metric, stand_ins)} ({direction_words(row['direction'])})\n"
        f"SROCC {row['srocc']:.3f}, PLCC {row['plcc']:.3f} ({curve})"
    )


def _agreement_panel(ax, stimuli, metric, fit, row, colours, stand_ins=frozenset()):
    finite = np.isfinite(stimuli[metric].to_numpy(dtype=float))
    part = stimuli[finite]
    ax.scatter(part[metric], part["mos"], s=7, alpha=0.6, linewidths=0, c=[colours[m] for m in part["method"]])
    if len(part) >= 2:
        x = np.linspace(part[metric].min(), part[metric].max(), 200)
        ax.plot(x, fit.predict(x), color="k", lw=1.2)
    ax.set_title(agreement_panel_title(metric, row, fit, stand_ins), fontsize=7)
    ax.set_xlabel(metric)
    ax.set_ylabel("MOS")


LETTERS = string.ascii_lowercase + string.ascii_uppercase


def compact_letters(methods, significant_pairs):
    """Compact letter display (Piepho's insert-absorb): method -> letters, methods sharing a letter not
    significantly different, each pair in ``significant_pairs`` sharing none. ``methods`` in display order; a pair
    not listed (untested, or no evidence) counts as not different. Letters are given in order of each group's first
    method, so the first method gets "a"; a~b, b~c, a≠c gives "a", "ab", "b"."""
    methods = list(methods)
    position = {m: k for k, m in enumerate(methods)}
    groups = [frozenset(range(len(methods)))] if methods else []
    for a, b in significant_pairs:
        if a not in position or b not in position or a == b:
            continue
        i, j = position[a], position[b]
        split = []
        for group in groups:
            split += [group - {i}, group - {j}] if i in group and j in group else [group]
        unique = list(dict.fromkeys(g for g in split if g))
        groups = [g for g in unique if not any(g < other for other in unique)]  # absorb groups inside others
    groups.sort(key=lambda g: sorted(g))
    for group in list(reversed(groups)):  # sweep: drop a letter whose every pair (and member) another one covers
        others = [g for g in groups if g is not group]
        if all(any({i, j} <= g for g in others) for i in group for j in group):
            groups = others
    if len(groups) > len(LETTERS):
        raise ValueError(f"a compact letter display of {len(groups)} groups needs more than {len(LETTERS)} letters")
    return {m: "".join(LETTERS[n] for n, g in enumerate(groups) if k in g) for m, k in position.items()}


def primary_significant_pairs(significance, dataset):
    """The pairs of ``dataset`` the primary test (per-image Wilcoxon, Holm-adjusted) finds different."""
    if significance.empty:
        return []
    rows = significance[
        (significance["dataset"].astype(str) == str(dataset))
        & (significance["role"] == ROLES[PRIMARY_TEST])
        & significance["significant"].astype(bool)
    ]
    return list(zip(rows["method_a"].astype(str), rows["method_b"].astype(str)))


def mos_letters(results):
    """The rows of the letters figure: dataset, method, mos, ci95_low, ci95_high and ``letters`` (compact letters of
    the primary test within the dataset), datasets and methods in the paper's order."""
    mos = _ordered(results.mos)[["dataset", "method", "mos", "ci95_low", "ci95_high"]]
    letters = {}
    for dataset, part in mos.groupby("dataset", sort=False):
        pairs = primary_significant_pairs(results.significance, dataset)
        letters.update({(dataset, m): v for m, v in compact_letters(part["method"], pairs).items()})
    return mos.assign(letters=[letters[key] for key in zip(mos["dataset"], mos["method"])])


def mos_letters_figure(results, fmt="svg"):
    """The MOS table as papers print it: MOS per method with 95 % CI bars in the paper's order, each bar topped by
    its compact letters from the primary test (methods sharing a letter do not differ), one panel per dataset."""
    table = mos_letters(results)
    datasets = datasets_in_order(table["dataset"].unique())
    low, high = results.options.scale
    with matplotlib.rc_context(RC):
        figure, axes = _panels(len(datasets))
        for ax, dataset in zip(axes, datasets):
            part = table[table["dataset"] == dataset]
            x = np.arange(len(part))
            error = np.vstack([part["mos"] - part["ci95_low"], part["ci95_high"] - part["mos"]])
            ax.bar(x, part["mos"], yerr=np.nan_to_num(error), capsize=3, color="#8da0cb")
            tops = np.fmax(part["ci95_high"].to_numpy(dtype=float), part["mos"].to_numpy(dtype=float))
            for xi, top, text in zip(x, tops, part["letters"]):
                ax.text(xi, top + 0.03 * (high - low), text, ha="center", va="bottom", fontsize=8)
            ax.set_xticks(x, _labels(results, part["method"]), rotation=45, ha="right")
            ax.set_ylim(low, high + 0.15 * (high - low))
            ax.set_title(dataset)
            ax.set_ylabel("MOS (95% CI)")
        figure.suptitle(
            "Methods sharing a letter do not differ (per-image paired Wilcoxon, "
            f"Holm-adjusted, alpha {results.options.alpha:g})",
            fontsize=7,
        )
        _stand_in_note(figure, results)
        return _render(figure, fmt)


FIGURES = {
    "mos": mos_figure,
    "mos_letters": mos_letters_figure,
    "score_distribution": score_distribution_figure,
    "mos_psnr": mos_psnr_figure,
    "metric_agreement": metric_agreement_figure,
}
