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

from .agreement import STAND_IN_METRIC_NOTE, metric_label
from .metrics import table2_latex, table2_markdown
from .screening import RULES

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


def provenance_notes(results):
    """Lines under the tables: the stand-in mark, then one provenance line per learned method the study rated."""
    if results.provenance is None:
        return []
    from benchmarks.tables import STAND_IN_MARK, STAND_IN_NOTE

    lines = [f"{STAND_IN_MARK} {STAND_IN_NOTE}."] if results.stand_in_methods else []
    if "line" in results.provenance:
        lines += [str(line) for line in results.provenance["line"] if isinstance(line, str) and line]
    return lines


def _marked(table, stand_ins):
    """A copy of ``table`` with stand-in methods marked in its method columns (for printing)."""
    if not stand_ins:
        return table
    from benchmarks.tables import STAND_IN_MARK

    table = table.copy()
    for column in ("method", "method_a", "method_b"):
        if column in table:
            table[column] = [f"{m} {STAND_IN_MARK}" if str(m) in stand_ins else m for m in table[column].astype(str)]
    return table


def screening_paragraph(results):
    """Which rules ran, and a warning where neither calibration nor repeats could judge anyone."""
    rules = results.options.screening.rules
    screening = results.screening
    off = [rule for rule in RULES if rule not in rules]
    text = f"Rules run: {', '.join(rules) or 'none'}" + (f"; switched off: {', '.join(off)}" if off else "") + "."
    calibration = "calibration" in rules and screening["calibration_agreement"].notna().any()
    calibration = calibration or ("gold" in rules and screening["gold_agreement"].notna().any())
    repeats = "retest" in rules and (screening["retest_pairs"].fillna(0) > 0).any()
    if not (calibration or repeats):
        text += (
            "\n\n**Warning:** no rater could be judged by calibration trials or by repeated stimuli (the study has "
            "none, or those rules are off). BT.500 alone misses raters who score at random when their outlying "
            "scores fall mostly on one side (|P-Q|/(P+Q) >= 0.3); include calibration anchors and repeats."
        )
    return text


def summary_markdown(results):
    """The tables a paper prints, and the procedures and options used."""
    options = results.options
    rules = ", ".join(options.screening.rules) or "none"
    rejected = results.rejected_raters
    stand_ins = results.stand_in_methods
    notes = provenance_notes(results)
    lines = [
        "# MOS study analysis",
        "",
        f"srmos {sr_models.__version__}; {len(results.ratings)} ratings "
        f"({int((results.ratings['kind'] == 'calibration').sum())} calibration"
        + (
            f", {int((results.ratings['kind'] == 'gold').sum())} gold"
            if (results.ratings["kind"] == "gold").any()
            else ""
        )
        + "), "
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
    lines += _markdown(_marked(results.mos, stand_ins))
    if notes:
        lines += ["", *(f"- {line}" for line in notes)]
    lines += [
        "",
        "## Rater screening",
        "",
        screening_paragraph(results),
        "",
        f"Rules: {rules} (BT.500 = ITU-R BT.500-14 Annex 1 §A1-2.3.1"
        + (
            "; stimuli every rater scored alike are skipped"
            if options.screening.bt500_skip_unanimous
            else "; applied literally to stimuli every rater scored alike"
        )
        + "). "
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
    significance = _marked(results.significance, stand_ins)
    columns = ["dataset", "method_a", "method_b", "test", "p_value", "p_holm", "significant"]
    lines += [
        "## Significance",
        "",
        "Primary test: Wilcoxon signed-rank, paired over images on per-image MOS, two-sided, Holm-corrected per "
        f"dataset; significant at p_holm < {options.alpha:g}. The image is the unit sampled, and pairing removes "
        "each image's own difficulty.",
        "",
    ]
    lines += _markdown(significance.loc[significance["test"] == "wilcoxon", columns])
    lines += [
        "",
        "As in the paper: Mann-Whitney U over individual ratings, two-sided, Holm-corrected per dataset. It treats "
        "every rating as independent although ratings of one rater and of one image are correlated, so its p-values "
        "are too small; it is given for comparison with the paper only.",
        "",
    ]
    lines += _markdown(significance.loc[significance["test"] == "mannwhitney", columns])
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
            table2_markdown(results.table2, stand_ins, notes).rstrip(),
            "",
            "## Metric correlation with MOS",
            "",
        ]
        lines += _markdown(results.metric_correlation)
    if results.agreement is not None:
        lines += ["", *agreement_markdown(results.agreement)]
    return "\n".join(lines) + "\n"


AGREEMENT_SHOWN = ["dataset", "metric", "direction", "n", "fit", "srocc", "krocc", "plcc", "rmse"]


def agreement_markdown(agreement):
    """The summary line and the pooled per-stimulus and per-method tables (CIs in metric_agreement*.csv)."""
    lines = [
        "## Metric agreement with MOS",
        "",
        agreement.summary,
        "",
        "SROCC, KROCC (tau-b) with their sign (a lower-is-better metric that agrees has a negative one), PLCC and "
        "RMSE after the VQEG four-parameter logistic fit; 95 % bootstrap CIs and the fit's parameters in "
        "metric_agreement.csv (per stimulus) and metric_agreement_per_method.csv; Williams' test and the bootstrap "
        "of the |SROCC| difference against PSNR in metric_agreement_tests.csv.",
        "",
        "Per stimulus:",
        "",
    ]
    lines += _markdown(_metrics_marked(agreement.per_stimulus[AGREEMENT_SHOWN], agreement.stand_ins))
    lines += ["", "Per method:", ""]
    lines += _markdown(_metrics_marked(agreement.per_method[AGREEMENT_SHOWN], agreement.stand_ins))
    if agreement.stand_ins:
        lines += [
            "",
            f"{STAND_IN_METRIC_NOTE} ({', '.join(sorted(agreement.stand_ins))}: computed with stand-in "
            "backbone weights, --metric-stand-in-weights).",
        ]
    return lines


def _metrics_marked(table, stand_ins):
    """A copy of ``table`` with metrics computed with stand-in weights marked in its metric column."""
    if not stand_ins:
        return table
    return table.assign(metric=[metric_label(m, stand_ins) for m in table["metric"].astype(str)])


def _rule_coverage(screening):
    """Which raters each data-dependent rule could judge: rules without data in the table reject nobody."""
    judged = {
        "calibration (calibration rows of nn/hr anchors)": screening["calibration_agreement"].notna().sum(),
        "gold (hidden trials of known answer)": screening["gold_agreement"].notna().sum(),
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
        stand_ins, notes = results.stand_in_methods, provenance_notes(results)
        files["table2.md"] = table2_markdown(results.table2, stand_ins, notes).encode()
        files["table2.tex"] = table2_latex(results.table2, stand_ins, notes).encode()
    files["summary.md"] = summary_markdown(results).encode()
    files["export.json"] = (json.dumps(export_config(results), indent=2, sort_keys=True) + "\n").encode()
    if figures:
        from .figures import FIGURES, FORMATS  # matplotlib only when figures are wanted

        for name, make in FIGURES.items():
            rendered = make(results, FORMATS) or {}  # each figure built once, saved in every format
            files.update({f"figures/{name}.{fmt}": data for fmt, data in rendered.items()})
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
