"""Writing a Results to files: fixed float formatting, sorted rows, no dates, all-or-nothing.

Every file is first written (and fsynced) under a temporary name beside its target and renamed into place only when
all were written (``sr_models.fileio.atomic_write_many``), so a failure leaves what was there before untouched.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd

import sr_models
from sr_models.csvcells import safe_cell
from sr_models.fileio import atomic_write_many

from .metrics import table2_latex, table2_markdown

FORMAT_VERSION = 1
FLOAT_FORMAT = "%.6f"
P_VALUE_FORMAT = "%.6g"
P_COLUMNS = ("p_value", "p_holm")


def to_csv_text(table):
    """CSV text with booleans as true/false, p-values as %.6g, other floats as %.6f, NaN as empty; text cells that a
    spreadsheet would run as a formula get a leading quote (``sr_models.csvcells.safe_cell``)."""
    table = table.copy()
    for column in table.columns:
        values = table[column]
        if values.dtype == bool:
            table[column] = np.where(values, "true", "false")
        elif column in P_COLUMNS:
            table[column] = [("" if pd.isna(v) else P_VALUE_FORMAT % v) for v in values]
        elif values.dtype == object or pd.api.types.is_string_dtype(values):
            table[column] = values.map(safe_cell)
    return table.to_csv(index=False, float_format=FLOAT_FORMAT, na_rep="", lineterminator="\n")


def export_config(results):
    return {
        "software": "srmos",
        "version": sr_models.__version__,
        "format_version": FORMAT_VERSION,
        "options": results.options.as_dict(),
        "input": {"ratings": int(len(results.ratings)), "sha256": results.input_sha256},
        "subjective_model_iterations": int(results.subjective_iterations),
    }


def summary_markdown(results):
    """The tables a paper prints, and the procedures and options used."""
    options = results.options
    rules = ", ".join(options.screening.rules) or "none"
    rejected = results.rejected_raters
    lines = [
        "# MOS study analysis",
        "",
        f"srmos {sr_models.__version__}; {len(results.ratings)} ratings "
        f"({int((results.ratings['kind'] == 'calibration').sum())} calibration), "
        f"{results.ratings['rater'].nunique()} raters, scale {options.scale[0]:g}..{options.scale[1]:g}.",
        "",
        "## MOS per method",
        "",
        f"Screened raters {'kept' if options.keep_screened else 'excluded'}; 95 % CI from Student's t"
        + (
            f"; bootstrap CI over raters and images, {options.bootstrap} resamples, seed {options.seed}"
            if options.bootstrap
            else ""
        )
        + ("; P.913 §12.4 bias removal applied" if options.bias_removal else "")
        + ".",
        "",
    ]
    lines += _markdown(results.mos)
    lines += [
        "",
        "## Rater screening",
        "",
        f"Rules: {rules} (BT.500 = ITU-R BT.500-14 Annex 1 §A1-2.3.1). "
        f"Rejected: {len(rejected)} of {len(results.screening)}"
        + (
            ": "
            + ", ".join(
                f"{r} ({why})"
                for r, why in results.screening.loc[results.screening["rejected"], ["rater", "reasons"]].itertuples(
                    index=False
                )
            )
            if rejected
            else ""
        )
        + ".",
        "",
        _rule_coverage(results.screening),
        "",
    ]
    lines += [
        "## Significance",
        "",
        f"Wilcoxon signed-rank over images on per-image MOS and Mann-Whitney U over ratings, two-sided, "
        f"Holm-corrected per dataset and test; significant at p_holm < {options.alpha:g}.",
        "",
    ]
    lines += _markdown(
        results.significance[["dataset", "method_a", "method_b", "test", "p_value", "p_holm", "significant"]]
    )
    if results.subjective_raters is not None:
        lines += [
            "",
            "## Subjective model",
            "",
            f"ITU-T P.910 Annex E / P.913 §12.6 maximum likelihood (alternating projections, "
            f"{results.subjective_iterations} iterations), all raters. Quality per stimulus in "
            "subjective_model_stimuli.csv; rater bias and inconsistency:",
            "",
        ]
        lines += _markdown(results.subjective_raters[["rater", "bias", "inconsistency", "n_ratings"]])
    if results.table2 is not None:
        lines += [
            "",
            "## PSNR, SSIM and MOS (Table 2)",
            "",
            table2_markdown(results.table2).rstrip(),
            "",
            "## Metric correlation with MOS",
            "",
        ]
        lines += _markdown(results.metric_correlation)
    return "\n".join(lines) + "\n"


def _rule_coverage(screening):
    """Which raters each data-dependent rule could judge: rules without data in the table reject nobody."""
    judged = {
        "calibration (calibration rows of nn/hr anchors)": screening["calibration_agreement"].notna().sum(),
        "retest (repeated stimuli)": (screening["retest_pairs"].fillna(0) > 0).sum(),
        "speed (response_ms)": screening["median_response_ms"].notna().sum(),
    }
    return "Raters with data for " + "; ".join(f"{rule}: {int(n)}" for rule, n in judged.items()) + "."


def _markdown(table):
    if table.empty:
        return ["(none)"]
    text = to_csv_text(table).strip().split("\n")
    header = text[0].split(",")
    rows = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    rows += ["| " + " | ".join(line.split(",")) + " |" for line in text[1:]]
    return rows


def render_files(results, figures=True):
    """File name -> bytes for everything an analysis writes."""
    files = {name: to_csv_text(table).encode() for name, table in results.tables().items()}
    if results.table2 is not None:
        files["table2.md"] = table2_markdown(results.table2).encode()
        files["table2.tex"] = table2_latex(results.table2).encode()
    files["summary.md"] = summary_markdown(results).encode()
    files["export.json"] = (json.dumps(export_config(results), indent=2, sort_keys=True) + "\n").encode()
    if figures:
        from .figures import FIGURES  # matplotlib only when figures are wanted

        for name, make in FIGURES.items():
            for fmt in ("svg", "png"):
                data = make(results, fmt)
                if data is not None:
                    files[f"figures/{name}.{fmt}"] = data
    return files


def write_files(files, output_dir):
    """Write name -> bytes under output_dir all-or-nothing: every file complete on disk before the first rename
    (``sr_models.fileio.atomic_write_many``)."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_many({output_dir / name: data for name, data in files.items()})
    return sorted(files)


def write_results(results, output_dir, figures=True):
    """Write every table, summary.md, export.json and the figures; returns the relative names written."""
    return write_files(render_files(results, figures=figures), output_dir)
