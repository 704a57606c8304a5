"""The benchmark's extra quality metrics (``sr_models.quality``: LPIPS, NIQE, ...), computed once per output and kept
in ``<output_dir>/metric_values.csv`` so that re-runs reuse them.

A stored value answers again when the output's SHA-256, the HR file's SHA-256, the metric, its convention, the border
and its weights note (``"stand-in"``, or what the learned metric's weights are) are unchanged: a value made with
stand-in weights is computed again once the real weights are at hand. Values are computed in the process that runs
the benchmark (batched on its GPU when it has one), after every output is stored; the values of the folder's other
outputs (earlier runs) come from the file where it holds them.
"""

import fcntl
from pathlib import Path

from benchmarks import tables
from sr_models import quality
from sr_models.errors import SRMOSError
from sr_models.fileio import atomic_write

VALUES_FILE = "metric_values.csv"
VALUE_COLUMNS = (
    "dataset",
    "image",
    "method",
    "sha256",
    "hr_sha256",
    "metric",
    "convention",
    "crop_border",
    "weights_note",
    "value",
    "source",
)


def extra_metrics(names):
    """The metrics beyond psnr_y/ssim_y among ``names`` (a list, or a comma-separated string; aliases resolved, each
    checked: an unknown one raises)."""
    if isinstance(names, str):
        names = [name for name in names.split(",") if name.strip()]
    return [name for name in quality.resolve(names or ()) if name not in quality.BASE_METRICS]


def check_ready(names, context):
    """Fail now, before any output is made, for a metric whose library or backbone weights are missing."""
    for name in names:
        metric = quality.get(name)
        if metric.requires:
            quality.registry.require(metric.requires, name)
        metric.weights_note(context)  # a learned metric loads its weights here: WeightsError at once


def value_key(sha256, hr_sha256, metric, convention, crop_border, weights_note):
    return (sha256, hr_sha256, metric, convention, str(crop_border), weights_note or "")


def read_values(output_dir):
    """{value_key: row} from ``metric_values.csv`` (empty when there is none)."""
    path = Path(output_dir) / VALUES_FILE
    if not path.is_file():
        return {}
    rows = tables.read_csv(path)
    return {
        value_key(r["sha256"], r["hr_sha256"], r["metric"], r["convention"], r["crop_border"], r["weights_note"]): r
        for r in rows
    }


def store_values(output_dir, rows):
    """Merge rows into ``metric_values.csv`` under a lock (runs sharing a folder keep each other's rows)."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    with open(output_dir / ".metric_values.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stored = read_values(output_dir)
        for row in rows:
            stored[key_of(row)] = row
        atomic_write(output_dir / VALUES_FILE, tables.csv_text(VALUE_COLUMNS, list(stored.values())))


def key_of(row):
    return value_key(
        row["sha256"], row["hr_sha256"], row["metric"], row["convention"], row["crop_border"], row["weights_note"]
    )


CHUNK = 32  # outputs decoded at a time: all of BSD100's outputs of 7 methods would take ~650 MB at once


def measure(names, rows, load_pair, output_dir, *, crop_border, context, progress=False):
    """Every extra metric of every row: stored values reused, the rest computed and stored.

    ``rows`` are this run's per-image rows (``sha256``, ``hr_sha256``, ``path``...); ``load_pair(row)`` gives the
    row's ``(sr, hr)`` uint8 images. Returns the value rows (``VALUE_COLUMNS``), one per (row, metric)."""
    from tqdm import tqdm

    stored = read_values(output_dir)
    found, pending = [], {}  # pending: row index -> the metrics it still needs
    for name in names:
        metric, note = quality.get(name), quality.weights_note(name, context)
        for index, row in enumerate(rows):
            key = value_key(row["sha256"], row["hr_sha256"], name, metric.space, crop_border, note)
            if key in stored:
                found.append(dict(stored[key], dataset=row["dataset"], image=row["image"], method=row["method"]))
            else:
                pending.setdefault(index, []).append(name)
    computed = []
    todo = sorted(pending)
    with tqdm(total=len(todo), desc="metrics", unit="image", disable=not progress) as bar:
        for start in range(0, len(todo), CHUNK):
            chunk = todo[start : start + CHUNK]
            pairs = {index: load_pair(rows[index]) for index in chunk}
            for name in names:
                needing = [index for index in chunk if name in pending[index]]
                if not needing:
                    continue
                values = quality.compute_many(
                    name, [pairs[i] for i in needing], crop_border=crop_border, context=context
                )
                computed += [value_row(rows[i], name, value, crop_border, context) for i, value in zip(needing, values)]
            bar.update(len(chunk))
    if computed:
        store_values(output_dir, computed)
    return found + computed


def check_sizes(names, jobs, crop_border):
    """Fail before any output is made where a dataset's image is too small for a metric (after the border)."""
    from PIL import Image

    sizes = {}
    for job in jobs:
        if job.hr_path not in sizes:
            with Image.open(job.hr_path) as image:
                width, height = image.size
            sizes[job.hr_path] = (job.dataset, job.image, min(width - width % job.scale, height - height % job.scale))
    for name in names:
        need = quality.get(name).min_side
        small = sorted({f"{d}/{i}" for d, i, side in sizes.values() if side - 2 * crop_border < need})
        if small:
            raise SRMOSError(
                f"metric {name} needs images of at least {need} pixels a side after the {crop_border}-pixel border; "
                f"too small: {', '.join(small[:5])}{' ...' if len(small) > 5 else ''}; leave {name} out for them"
            )


def value_row(row, name, value, crop_border, context):
    metric = quality.get(name)
    return {
        "dataset": row["dataset"],
        "image": row["image"],
        "method": row["method"],
        "sha256": row["sha256"],
        "hr_sha256": row["hr_sha256"],
        "metric": name,
        "convention": metric.space,
        "crop_border": crop_border,
        "weights_note": quality.weights_note(name, context),
        "value": value,
        "source": metric.source,
    }


def attach(table_rows, names, values, output_dir, *, crop_border, context):
    """Table rows with one column per extra metric: this run's values, else the folder's stored ones; None where
    there is none (counted in the returned notes)."""
    ours = {(v["sha256"], v["hr_sha256"], v["metric"]): v for v in values}
    stored = read_values(output_dir)
    notes_by_metric = {name: quality.weights_note(name, context) for name in names}
    missing = dict.fromkeys(names, 0)
    rows = []
    for row in table_rows:
        row = dict(row)
        for name in names:
            metric = quality.get(name)
            key = value_key(row["sha256"], row["hr_sha256"], name, metric.space, crop_border, notes_by_metric[name])
            value = ours.get((row["sha256"], row["hr_sha256"], name)) or stored.get(key)
            row[name] = float(value["value"]) if value else None
            missing[name] += value is None
        rows.append(row)
    notes = [
        f"{name}: no value for {count} outputs of the folder measured by earlier runs; run the benchmark again with "
        f"their datasets and methods and --metrics ...,{name}"
        for name, count in missing.items()
        if count
    ]
    return rows, notes


def provenance(names, context):
    """One ``metric_provenance.csv`` row per extra metric (``tables.METRIC_PROVENANCE_COLUMNS``): what it is, its
    convention, source and weights."""
    rows = []
    for name in names:
        metric = quality.get(name)
        rows.append(
            {
                "metric": name,
                "kind": metric.kind,
                "higher_is_better": metric.higher_is_better,
                "convention": metric.convention,
                "weights_note": metric.weights_note(context),
                "source": metric.source,
                "paper": metric.paper,
            }
        )
    return rows
