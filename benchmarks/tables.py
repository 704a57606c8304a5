"""Benchmark tables: per-image and summary CSVs (full float precision), and Markdown/LaTeX summaries with the SRGAN
paper's published values beside ours (PSNR printed to 2 decimals, SSIM to 4).

Rows come in the paper's order (``benchmarks.published.paper_order``: datasets Set5, Set14, BSD100, then others;
methods NN, bicubic, SRResNet-MSE, SRResNet-VGG22, SRGAN-MSE, SRGAN-VGG22, SRGAN-VGG54, HR, then others). Learned
methods carry their provenance (``provenance.csv``, a footnote per method under the Markdown and LaTeX tables), and a
model trained with stand-in VGG features (not torchvision's ImageNet weights) is marked ``STAND_IN_MARK`` wherever
it is named.

Every file is written to a temporary name and renamed into place, and all four are complete on disk before the
first rename (``sr_models.fileio.atomic_write_many``), so a failed run leaves the previous tables as they were.
"""

import csv
import io
from pathlib import Path
from statistics import fmean

from sr_models.csvcells import safe_dict
from sr_models.fileio import atomic_write_many

PER_IMAGE_COLUMNS = ("dataset", "image", "method", "psnr_y", "ssim_y")
SUMMARY_COLUMNS = ("dataset", "method", "n_images", "psnr_y", "ssim_y")
TABLE_FILES = {
    "summary_csv": "metrics_summary.csv",
    "per_image_csv": "metrics_per_image.csv",
    "markdown": "metrics_summary.md",
    "latex": "metrics_summary.tex",
    "provenance_csv": "provenance.csv",
    "metric_provenance_csv": "metric_provenance.csv",
}
PROVENANCE_COLUMNS = (
    "method",
    "learned",
    "stand_in_features",
    "training_steps",
    "data",
    "content_loss",
    "vgg_weights",
    "val_psnr",
    "weights_sha256",
    "source",
    "line",
)
METRIC_PROVENANCE_COLUMNS = ("metric", "kind", "higher_is_better", "convention", "weights_note", "source", "paper")
VGG_IMAGENET = "torchvision IMAGENET1K_V1"
STAND_IN_MARK = "\u2020"  # a dagger: trained with stand-in VGG features
STAND_IN_NOTE = (
    "trained with stand-in VGG features (not torchvision's ImageNet VGG19 weights): its numbers do not describe "
    "the paper's model"
)


def row_order(row):
    """Sort key of a table row: dataset, then method in the paper's order, then image name."""
    from benchmarks.published import dataset_key, method_key

    return (dataset_key(row["dataset"]), method_key(row["method"]), str(row.get("image", "")))


def sort_rows(rows):
    return sorted(rows, key=row_order)


def summarise(per_image, metrics=()):
    """Mean PSNR/SSIM (and each of ``metrics``, over the images that have a value) per (dataset, method), datasets
    and methods in the paper's order."""
    groups = {}
    for row in sort_rows(per_image):
        groups.setdefault((row["dataset"], row["method"]), []).append(row)
    return [
        {
            "dataset": dataset,
            "method": method,
            "n_images": len(rows),
            "psnr_y": fmean(float(r["psnr_y"]) for r in rows),
            "ssim_y": fmean(float(r["ssim_y"]) for r in rows),
            **{name: mean_of(rows, name) for name in metrics},
        }
        for (dataset, method), rows in groups.items()
    ]


def mean_of(rows, name):
    """The mean of a metric over the rows that have a value (None, "" and NaN mean none)."""
    values = [float(r[name]) for r in rows if r.get(name) not in (None, "")]
    values = [value for value in values if value == value]
    return fmean(values) if values else None


def csv_text(columns, rows):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    # Floats as repr: full precision, so sums recomputed from the CSV agree; names never open as formulas.
    writer.writerows(safe_dict(row) for row in rows)
    return out.getvalue()


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def published_values(method, dataset):
    """The paper's (PSNR, SSIM) for a method/dataset, or None."""
    from benchmarks import published

    return published.lookup(method, dataset)


def convention_note(convention, crop_border, scale=4):
    from benchmarks import published
    from sr_models.metrics import check_convention

    paper_ssim = published.lookup("bicubic", "Set5")[1]
    common_ssim = published.COMMON_BICUBIC["Set5"][1]
    return (
        f"x{scale}; PSNR (dB) and SSIM on the Y channel of ITU-R BT.601 YCbCr, {convention!r} convention "
        f'({check_convention(convention)}); {crop_border} pixels removed at each border. "paper": the SRGAN '
        f"paper's Table 2 (Ledig et al., CVPR 2017) where it reports the pair; its SSIM follows another convention "
        f"(bicubic Set5: {paper_ssim:.4f} there, {common_ssim:.4f} in the common one), so compare PSNR."
    )


def fmt(value, decimals):
    return "-" if value is None else f"{value:.{decimals}f}"


# ---------------------------------------------------------------- provenance


def is_stand_in(provenance):
    """True for a model trained with VGG features that are not torchvision's ImageNet weights (the installer's
    ``stand_in_features``, else decided from ``content_loss`` and ``vgg_weights``)."""
    if not provenance:
        return False
    flag = provenance.get("stand_in_features")
    if flag is not None:
        return flag in (True, "true", "True", "1", 1)
    loss = str(provenance.get("content_loss") or "mse")
    return loss.startswith("vgg") and provenance.get("vgg_weights") != VGG_IMAGENET


def provenance_line(method, provenance):
    """One line a reader of a table needs, e.g. ``srresnet-mse: srmos-trained srresnet-mse, 2400 updates on
    train_demo, mse loss, Set5 PSNR 28.52 dB``."""
    if not provenance:
        return f"{method}: no provenance recorded in its weights file"
    label = provenance.get("label")  # set at install, e.g. "srmos CPU-trained, 1500 updates, train_demo"
    parts = (
        [label] if label else [f"{provenance.get('trainer', 'unknown trainer')} {provenance.get('preset') or method}"]
    )
    steps = provenance.get("training_steps")
    data = provenance.get("data")
    if label:
        pass
    elif steps is not None:
        parts.append(f"{steps} updates" + (f" on {_data_names(data)}" if data else ""))
    elif data:
        parts.append(f"data {_data_names(data)}")
    loss = provenance.get("content_loss")
    if loss:
        text = f"{loss} content loss"
        if str(loss).startswith("vgg"):
            text += f" (VGG weights: {provenance.get('vgg_weights') or 'unknown'})"
        if float(provenance.get("adversarial_weight") or 0) > 0:
            text += f" + {float(provenance['adversarial_weight']):g} adversarial"
        parts.append(text)
    psnr = (provenance.get("metrics") or {}).get("psnr")
    if psnr is not None:
        parts.append(f"validation PSNR {float(psnr):.2f} dB")
    for key in ("note",) if label else ("machine", "note"):
        if provenance.get(key):
            parts.append(str(provenance[key]))
    line = f"{method}: " + ", ".join(parts)
    return line + (f" {STAND_IN_MARK} {STAND_IN_NOTE}" if is_stand_in(provenance) else "")


def _data_names(data):
    items = data if isinstance(data, (list, tuple)) else [data]
    return "+".join(Path(str(item)).name or str(item) for item in items)


def provenance_row(method, info=None, *, source="generated", weights_sha256=None):
    """The ``provenance.csv`` row of a method; ``info`` is the upscaler's ``info`` (``NetworkUpscaler.info``)."""
    info = info or {}
    provenance = info.get("provenance")
    learned = "weights" in info
    if source and str(source).startswith("import"):
        line = f"{method}: outputs imported from an external model (no training record)"
    elif learned:
        line = provenance_line(method, provenance)
    else:
        line = ""
    provenance = provenance or {}
    psnr = (provenance.get("metrics") or {}).get("psnr")
    return {
        "method": method,
        "learned": learned,
        "stand_in_features": is_stand_in(provenance),
        "training_steps": provenance.get("training_steps", info.get("step") if learned else None),
        "data": _data_names(provenance["data"]) if provenance.get("data") else None,
        "content_loss": provenance.get("content_loss"),
        "vgg_weights": provenance.get("vgg_weights"),
        "val_psnr": psnr,
        "weights_sha256": weights_sha256,
        "source": "import" if source and str(source).startswith("import") else source,
        "line": line,
    }


def stand_in_methods(provenance):
    """Names of the methods whose ``provenance.csv`` rows say stand-in features."""
    return {row["method"] for row in provenance or () if row.get("stand_in_features") in (True, "True", "true")}


def marked(method, stand_ins, mark=STAND_IN_MARK):
    return f"{method} {mark}" if method in stand_ins else method


def provenance_notes(provenance, methods):
    """The footnote lines under a table: the stand-in mark, then one provenance line per learned method shown."""
    rows = {row["method"]: row for row in provenance or ()}
    lines = []
    if stand_in_methods(provenance) & set(methods):
        lines.append(f"{STAND_IN_MARK} {STAND_IN_NOTE}.")
    for method in methods:
        row = rows.get(method)
        if row and row.get("line"):
            lines.append(str(row["line"]))
    return lines


def table_rows(summary, stand_ins=(), metrics=()):
    """Rows of printed cells: dataset, method, n, PSNR, SSIM, paper PSNR, paper SSIM, then each of ``metrics``."""
    rows = []
    for row in summary:
        paper = published_values(row["method"], row["dataset"])
        rows.append(
            [
                row["dataset"],
                marked(row["method"], stand_ins),
                str(row["n_images"]),
                fmt(float(row["psnr_y"]), 2),
                fmt(float(row["ssim_y"]), 4),
                fmt(paper and paper[0], 2),
                fmt(paper and paper[1], 4),
                *(fmt(None if row.get(name) in (None, "") else float(row[name]), 4) for name in metrics),
            ]
        )
    return rows


HEADERS = ["dataset", "method", "images", "PSNR (dB)", "SSIM", "paper PSNR", "paper SSIM"]
LOWER_MARK, HIGHER_MARK = "\u2193", "\u2191"  # arrows after a metric's name: lower / higher is better
STAND_IN_WEIGHTS = "stand-in"  # the weights note of a metric computed with stand-in backbone weights


def stand_in_metrics(metric_provenance):
    return {row["metric"] for row in metric_provenance or () if row.get("weights_note") == STAND_IN_WEIGHTS}


def metric_header(row, stand_ins=()):
    """``lpips_alex \u2193``, with the dagger when its figures were made with stand-in weights."""
    higher = row.get("higher_is_better") in (True, "True", "true")
    label = f"{row['metric']} {HIGHER_MARK if higher else LOWER_MARK}"
    return f"{label} {STAND_IN_MARK}" if row["metric"] in stand_ins else label


def metric_notes(metric_provenance):
    """Footnotes: the stand-in mark of metrics computed with stand-in weights, then each metric's convention."""
    stand_ins = stand_in_metrics(metric_provenance)
    lines = []
    if stand_ins:
        lines.append(
            f"{STAND_IN_MARK} {', '.join(sorted(stand_ins))}: computed with stand-in backbone weights (not "
            "torchvision's ImageNet weights), so these are not the published metric's figures."
        )
    for row in metric_provenance or ():
        lines.append(f"{row['metric']}: {row['convention']} ({row['source']}).")
    return lines


def shown_methods(summary):
    from benchmarks.published import paper_order

    return paper_order(row["method"] for row in summary)


def markdown_table(summary, convention, crop_border, scale=4, provenance=None, notes=(), metric_provenance=None):
    """The summary as Markdown; ``provenance`` (rows of ``provenance.csv``) adds the marks and one line per learned
    method; ``metric_provenance`` (rows of ``metric_provenance.csv``) one column per extra metric, with its
    convention (and the stand-in mark) below; ``notes`` are further lines (e.g. rows left out)."""
    stand_ins = stand_in_methods(provenance)
    metrics = [row["metric"] for row in metric_provenance or ()]
    headers = HEADERS + [metric_header(row, stand_in_metrics(metric_provenance)) for row in metric_provenance or ()]
    lines = ["| " + " | ".join(headers) + " |", "| --- | --- | " + " | ".join(["---:"] * (5 + len(metrics))) + " |"]
    lines += ["| " + " | ".join(cells) + " |" for cells in table_rows(summary, stand_ins, metrics)]
    text = "\n".join(lines) + "\n\n" + convention_note(convention, crop_border, scale) + "\n"
    footnotes = provenance_notes(provenance, shown_methods(summary)) + metric_notes(metric_provenance) + list(notes)
    if footnotes:
        text += "\n" + "\n".join(f"- {line}" for line in footnotes) + "\n"
    return text


LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_escape(text):
    return "".join(LATEX_SPECIAL.get(char, char) for char in text)


def latex_cell(cell):
    if cell.endswith(" " + STAND_IN_MARK):
        return latex_escape(cell[: -len(STAND_IN_MARK) - 1]) + r"$^\dagger$"
    return latex_escape(cell)


def latex_line(line):
    text = latex_escape(line).replace(STAND_IN_MARK, r"$^\dagger$")
    return text.replace(LOWER_MARK, r"$\downarrow$").replace(HIGHER_MARK, r"$\uparrow$")


def latex_table(summary, convention, crop_border, scale=4, provenance=None, notes=(), metric_provenance=None):
    stand_ins = stand_in_methods(provenance)
    metrics = [row["metric"] for row in metric_provenance or ()]
    cells_of = table_rows(summary, stand_ins, metrics)
    body = [" & ".join(latex_cell(cell) for cell in cells) + r" \\" for cells in cells_of]
    extra_headers = [metric_header(row, stand_in_metrics(metric_provenance)) for row in metric_provenance or ()]
    header = r"dataset & method & images & PSNR (dB) & SSIM & paper PSNR & paper SSIM"
    header += "".join(" & " + latex_line(cell) for cell in extra_headers) + r" \\"
    footnotes = provenance_notes(provenance, shown_methods(summary)) + metric_notes(metric_provenance) + list(notes)
    caption = " ".join([latex_escape(convention_note(convention, crop_border, scale)), *map(latex_line, footnotes)])
    return "\n".join(
        [
            "% needs \\usepackage{booktabs}",
            r"\begin{table}[t]",
            r"\centering",
            r"\begin{tabular}{llrrrrr" + "r" * len(metrics) + "}",
            r"\toprule",
            header,
            r"\midrule",
            *body,
            r"\bottomrule",
            r"\end{tabular}",
            r"\caption{" + caption + "}",
            r"\end{table}",
            "",
        ]
    )


def write_tables(
    summary,
    output_dir,
    *,
    per_image,
    convention="integer",
    crop_border=4,
    scale=4,
    provenance=None,
    notes=(),
    metric_provenance=None,
):
    """Write the table files into ``output_dir`` (``provenance.csv`` too when ``provenance`` is given: one row per
    method, see ``provenance_row``; with ``metric_provenance``, one column per extra metric in every table and
    ``metric_provenance.csv``); return {kind: path}. Rows are written in the paper's order."""
    output_dir = Path(output_dir)
    paths = {kind: output_dir / filename for kind, filename in TABLE_FILES.items()}
    metrics = tuple(row["metric"] for row in metric_provenance or ())
    files = {
        paths["summary_csv"]: csv_text(SUMMARY_COLUMNS + metrics, summary),
        paths["per_image_csv"]: csv_text(PER_IMAGE_COLUMNS + metrics, sort_rows(per_image)),
        paths["markdown"]: markdown_table(
            summary, convention, crop_border, scale, provenance, notes, metric_provenance
        ),
        paths["latex"]: latex_table(summary, convention, crop_border, scale, provenance, notes, metric_provenance),
    }
    if metric_provenance:
        files[paths["metric_provenance_csv"]] = csv_text(METRIC_PROVENANCE_COLUMNS, metric_provenance)
    else:
        del paths["metric_provenance_csv"]
    if provenance is None:
        del paths["provenance_csv"]
    else:
        from benchmarks.published import method_key

        ordered = sorted(provenance, key=lambda row: method_key(row["method"]))
        files[paths["provenance_csv"]] = csv_text(PROVENANCE_COLUMNS, ordered)
    atomic_write_many(files)
    return paths
