"""PSNR/SSIM beside MOS: correlations and the paper's Table 2 (CSV, Markdown, LaTeX)."""

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from .order import datasets_in_order, methods_in_order, paper_sort
from .ratings import RatingsError

METRIC_COLUMNS = ("dataset", "image", "method", "psnr_y", "ssim_y")
METRICS = ("psnr_y", "ssim_y")


def read_metrics(path):
    """Read a metrics_per_image.csv (dataset,image,method,psnr_y,ssim_y[,more metrics]) as written by
    benchmarks.tables."""
    try:
        table = pd.read_csv(path, dtype={"dataset": str, "image": str, "method": str})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise RatingsError(f"{path}: cannot read the metrics table ({exc})") from None
    return check_metrics(table, str(path))


def check_metrics(table, source="metrics"):
    """The keys, psnr_y, ssim_y and every other metric column (one with at least one number: lpips_alex, niqe...),
    as numbers. A column without any number is a note, not a metric, and is left out; a metric column with a cell
    that is not a number is an error naming its line."""
    missing = [c for c in METRIC_COLUMNS if c not in table.columns]
    if missing:
        raise RatingsError(f"{source}:1: missing column(s) {', '.join(missing)} (expected {','.join(METRIC_COLUMNS)})")
    extra = [c for c in table.columns if c not in METRIC_COLUMNS]
    table = table.copy()
    kept = list(METRIC_COLUMNS)
    for metric in [*METRICS, *extra]:
        values = pd.to_numeric(table[metric], errors="coerce")
        if metric in extra and not values.notna().any():
            continue
        bad = values.isna() & table[metric].notna()
        if bad.any():
            line = int(np.flatnonzero(bad)[0]) + 2
            raise RatingsError(f"{source}:{line}: column {metric!r} is not a number: {table[metric][bad].iloc[0]!r}")
        table[metric] = values
        kept += [metric] if metric in extra else []
    return table[kept]


def metric_names(table):
    """The metric columns of a metrics table: psnr_y and ssim_y first, then every other numeric column in the
    table's order (the keys and boolean flags are not metrics)."""
    keys = set(METRIC_COLUMNS[:3])
    others = [
        column
        for column in table.columns
        if column not in keys
        and column not in METRICS
        and pd.api.types.is_numeric_dtype(table[column])
        and not pd.api.types.is_bool_dtype(table[column])
    ]
    return [m for m in METRICS if m in table.columns] + others


def correlations(mos_per_image, mos, metrics):
    """Pearson, Spearman and Kendall of each metric with MOS, over stimuli (per dataset and all datasets) and over
    methods (per dataset: method MOS against the method's mean metric over images)."""
    stimuli = mos_per_image.merge(metrics, on=["dataset", "image", "method"], how="inner")
    methods = mos.merge(method_means(metrics), on=["dataset", "method"], how="inner")
    rows = []
    stimuli["dataset"], methods["dataset"] = stimuli["dataset"].astype(str), methods["dataset"].astype(str)
    groups = [("stimulus", name, stimuli[stimuli["dataset"] == name]) for name in datasets_in_order(stimuli["dataset"])]
    groups.append(("stimulus", "all", stimuli))
    groups += [("method", name, methods[methods["dataset"] == name]) for name in datasets_in_order(methods["dataset"])]
    for level, dataset, part in groups:
        for metric in METRICS:
            pair = part[["mos", metric]].replace([np.inf, -np.inf], np.nan).dropna()  # HR's PSNR is infinite
            rows.append(
                {"dataset": dataset, "level": level, "metric": metric, "n": len(pair), **_coefficients(pair, metric)}
            )
    return pd.DataFrame(rows, columns=["dataset", "level", "metric", "n", "pearson", "spearman", "kendall"])


def _coefficients(pair, metric):
    if len(pair) < 3 or pair[metric].nunique() < 2 or pair["mos"].nunique() < 2:
        return {"pearson": np.nan, "spearman": np.nan, "kendall": np.nan}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "pearson": stats.pearsonr(pair[metric], pair["mos"])[0],
            "spearman": stats.spearmanr(pair[metric], pair["mos"])[0],
            "kendall": stats.kendalltau(pair[metric], pair["mos"])[0],
        }


def method_means(metrics, columns=METRICS):
    """Each method's mean of ``columns`` over its images, per dataset (Table 2 and the figures: PSNR/SSIM only)."""
    return metrics.groupby(["dataset", "method"], as_index=False, sort=True)[list(columns)].mean()


def table2(mos, metrics):
    """Long table dataset,method,psnr_y,ssim_y,mos,ci95_low,ci95_high (methods with MOS or metrics)."""
    table = method_means(metrics).merge(
        mos[["dataset", "method", "mos", "ci95_low", "ci95_high"]], on=["dataset", "method"], how="outer"
    )
    return paper_sort(table, ["dataset", "method"])


STAND_IN_MARK = "\u2020"


def table2_markdown(table, stand_ins=(), notes=()):
    """The paper's layout: a row per dataset and measure (PSNR, SSIM, MOS), a column per method; a method trained
    with stand-in VGG features is marked, and ``notes`` (its provenance lines) follow the table."""
    methods, rows = _wide(table)
    names = [f"{m} {STAND_IN_MARK}" if m in stand_ins else m for m in methods]
    lines = ["| dataset | measure | " + " | ".join(names) + " |", "| --- | --- |" + " --- |" * len(methods)]
    lines += [f"| {dataset} | {label} | " + " | ".join(cells) + " |" for dataset, label, cells in rows]
    text = "\n".join(lines) + "\n"
    if notes:
        text += "\n" + "\n".join(f"- {line}" for line in notes) + "\n"
    return text


def table2_latex(table, stand_ins=(), notes=()):
    methods, rows = _wide(table)

    def escape(text):
        return (
            str(text).replace("_", r"\_").replace("&", r"\&").replace("%", r"\%").replace(STAND_IN_MARK, r"$^\dagger$")
        )

    names = [escape(m) + (r"$^\dagger$" if m in stand_ins else "") for m in methods]
    lines = [
        r"\begin{tabular}{ll" + "c" * len(methods) + "}",
        r"\hline",
        "Dataset & Measure & " + " & ".join(names) + r" \\",
        r"\hline",
    ]
    lines += [f"{escape(dataset)} & {label} & " + " & ".join(cells) + r" \\" for dataset, label, cells in rows]
    lines += [r"\hline"]
    width = 2 + len(methods)
    lines += [rf"\multicolumn{{{width}}}{{l}}{{\footnotesize {escape(line)}}} \\" for line in notes]
    lines += [r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def _wide(table):
    table = table.astype({"dataset": str, "method": str})
    methods = methods_in_order(table["method"].unique())
    rows = []
    for dataset in datasets_in_order(table["dataset"].unique()):
        part = table[table["dataset"] == dataset].set_index("method")
        for label, column, digits in (("PSNR", "psnr_y", 2), ("SSIM", "ssim_y", 4), ("MOS", "mos", 2)):
            cells = [_cell(part[column].get(m, np.nan), digits) for m in methods]
            rows.append((dataset, label, cells))
    return methods, rows


def _cell(value, digits):
    return "-" if pd.isna(value) else f"{value:.{digits}f}"
