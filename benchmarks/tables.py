"""Benchmark tables: per-image and summary CSVs (full float precision), and Markdown/LaTeX summaries with the SRGAN
paper's published values beside ours (PSNR printed to 2 decimals, SSIM to 4).

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
}


def summarise(per_image):
    """Mean PSNR/SSIM per (dataset, method), in the order the pairs first appear."""
    groups = {}
    for row in per_image:
        groups.setdefault((row["dataset"], row["method"]), []).append(row)
    return [
        {
            "dataset": dataset,
            "method": method,
            "n_images": len(rows),
            "psnr_y": fmean(float(r["psnr_y"]) for r in rows),
            "ssim_y": fmean(float(r["ssim_y"]) for r in rows),
        }
        for (dataset, method), rows in groups.items()
    ]


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


def table_rows(summary):
    """Rows of printed cells: dataset, method, n, PSNR, SSIM, paper PSNR, paper SSIM."""
    rows = []
    for row in summary:
        paper = published_values(row["method"], row["dataset"])
        rows.append(
            [
                row["dataset"],
                row["method"],
                str(row["n_images"]),
                fmt(float(row["psnr_y"]), 2),
                fmt(float(row["ssim_y"]), 4),
                fmt(paper and paper[0], 2),
                fmt(paper and paper[1], 4),
            ]
        )
    return rows


HEADERS = ["dataset", "method", "images", "PSNR (dB)", "SSIM", "paper PSNR", "paper SSIM"]


def markdown_table(summary, convention, crop_border, scale=4):
    lines = ["| " + " | ".join(HEADERS) + " |", "| --- | --- | " + " | ".join(["---:"] * 5) + " |"]
    lines += ["| " + " | ".join(cells) + " |" for cells in table_rows(summary)]
    return "\n".join(lines) + "\n\n" + convention_note(convention, crop_border, scale) + "\n"


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


def latex_table(summary, convention, crop_border, scale=4):
    body = [" & ".join(latex_escape(cell) for cell in cells) + r" \\" for cells in table_rows(summary)]
    return "\n".join(
        [
            "% needs \\usepackage{booktabs}",
            r"\begin{table}[t]",
            r"\centering",
            r"\begin{tabular}{llrrrrr}",
            r"\toprule",
            r"dataset & method & images & PSNR (dB) & SSIM & paper PSNR & paper SSIM \\",
            r"\midrule",
            *body,
            r"\bottomrule",
            r"\end{tabular}",
            r"\caption{" + latex_escape(convention_note(convention, crop_border, scale)) + "}",
            r"\end{table}",
            "",
        ]
    )


def write_tables(summary, output_dir, *, per_image, convention="integer", crop_border=4, scale=4):
    """Write the four table files into ``output_dir``; return {kind: path}."""
    output_dir = Path(output_dir)
    paths = {kind: output_dir / filename for kind, filename in TABLE_FILES.items()}
    atomic_write_many(
        {
            paths["summary_csv"]: csv_text(SUMMARY_COLUMNS, summary),
            paths["per_image_csv"]: csv_text(PER_IMAGE_COLUMNS, per_image),
            paths["markdown"]: markdown_table(summary, convention, crop_border, scale),
            paths["latex"]: latex_table(summary, convention, crop_border, scale),
        }
    )
    return paths
