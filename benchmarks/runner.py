"""Benchmark runner: every (method, image) output stored once, content-addressed, measured and tabulated.

A run is three steps, so that a task queue can take the middle one:

1. ``plan_jobs`` checks everything a user can get wrong (datasets, methods, weights) before anything is written and
   returns one ``Job`` per (dataset, image, method); a Job crosses a task queue as JSON (``to_dict``/``from_dict``).
2. An executor turns the jobs still to do into results: ``execute_job(job)`` is the whole of one job (load LR/HR,
   upscale, store ``outputs/<sha256>.png``, measure PSNR/SSIM on Y). The default executor runs them in-process,
   loading each method once; Django passes one that sends them to Celery.
3. ``run_benchmark`` merges the results into the manifest ``outputs.csv`` and writes the tables at the end. The
   tables describe every output the folder's manifest holds (measured with this run's convention and border), not
   only this run's methods and datasets: a partial re-run never leaves a silent subset. Each learned method's
   provenance (``Upscaler.info["provenance"]``) goes into ``provenance.csv`` and the tables' footnotes, and a model
   trained with stand-in VGG features is marked and warned about (``StandInFeaturesWarning``).

A job's key is the SHA-256 of (dataset, image, method, scale, the LR file's SHA-256 or, where LR is made from HR, the
HR file's, the weights file's SHA-256): a re-run skips every job whose key, output file and output SHA-256 are
unchanged in the manifest. User errors raise ``benchmarks.errors.BenchmarkError`` (or the ``sr_models`` error of
the dataset, method, weights or metric at fault).
"""

import dataclasses
import fcntl
import hashlib
import json
import logging
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import tables
from benchmarks.errors import BenchmarkError
from sr_models.datasets import IMAGE_SUFFIXES, Dataset, DatasetError, TestImage, get_dataset
from sr_models.errors import SRMOSError, UnknownMethodError, WeightsError
from sr_models.fileio import atomic_write

log = logging.getLogger(__name__)
SCALE = 4
OUTPUTS = "outputs"
MANIFEST = "outputs.csv"
MANIFEST_COLUMNS = (
    "dataset",
    "image",
    "method",
    "sha256",
    "path",
    "job_key",
    "source",
    "lr_sha256",
    "hr_sha256",
    "weights_sha256",
    "convention",
    "crop_border",
    "psnr_y",
    "ssim_y",
)


@dataclass(frozen=True)
class Job:
    """One (dataset, image, method) output to make and measure, with everything a worker needs and nothing else.

    ``key`` (``job_key``) says whether a stored output still answers the job. Paths are strings and every field is
    JSON, so that a job crosses a task queue as ``to_dict()`` and comes back with ``Job.from_dict``. ``source`` is
    ``"generated"``, or ``"import:<SHA-256 of the external file>"`` for an imported method's output.
    """

    key: str
    dataset: str
    image: str
    method: str
    source: str = "generated"
    dataset_root: str | None = None
    scale: int = SCALE
    hr_path: str | None = None
    lr_path: str | None = None
    lr_sha256: str | None = None
    hr_sha256: str | None = None
    weights_path: str | None = None
    weights_sha256: str | None = None
    device: str | None = None
    output_dir: str | None = None
    convention: str = "integer"
    crop_border: int = SCALE

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data):
        """The Job of ``to_dict()``'s output (a Job is returned as it is)."""
        return data if isinstance(data, cls) else cls(**data)


class StandInFeaturesWarning(UserWarning):
    """A benchmarked model was trained with VGG features that are not torchvision's ImageNet weights."""


class StandInMetricWeightsWarning(UserWarning):
    """A learned quality metric (LPIPS, DISTS) was computed with stand-in backbone weights."""


@dataclass
class BenchmarkResult:
    """``per_image``: this run's rows (one per job); ``summary``, ``table_per_image``, ``markdown``, ``provenance``:
    what the tables hold, i.e. every output in the folder's manifest measured with this run's convention."""

    output_dir: Path
    per_image: list
    summary: list
    files: dict
    n_generated: int
    n_skipped: int
    convention: str
    crop_border: int
    markdown: str = ""
    jobs: list = field(default_factory=list, repr=False)
    table_per_image: list = field(default_factory=list, repr=False)
    provenance: list = field(default_factory=list)
    metrics: list = field(default_factory=list)  # the extra metrics (beyond psnr_y/ssim_y) of the tables
    metric_values: list = field(default_factory=list, repr=False)  # their values for this run's outputs
    metric_provenance: list = field(default_factory=list)


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def job_key(dataset, image, method, scale, lr_sha256, hr_sha256, weights_sha256):
    lr_source = lr_sha256 or f"imresize:{hr_sha256}"
    text = json.dumps([dataset, image, method, scale, lr_source, weights_sha256])
    return hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------- planning: every check before any work


def resolve_datasets(datasets, data_dir=None, scale=SCALE):
    """Datasets by name, path or Dataset; every image is read now so a bad file stops the run before work."""
    if isinstance(datasets, (str, Dataset)):
        datasets = [datasets]
    resolved = [get_dataset(d, data_dir, scale) for d in datasets]
    names = [d.name for d in resolved]
    if len(set(names)) != len(names):
        raise DatasetError(f"datasets named twice: {', '.join(names)}")
    for dataset in resolved:
        dataset.verify()
    return resolved


def resolve_method(name, weights_dir=None, device=None):
    """``(upscaler, weights file or None)``; raises UnknownMethodError / WeightsError now rather than half-way.

    Learned methods take ``<weights_dir>/<name>.pt``; with no ``weights_dir``, ``sr_models.methods`` looks in
    ``$SRMOS_WEIGHTS_DIR`` (default ``var/weights``, ``sr_models.paths``) and then at the shipped checkpoints.
    """
    from sr_models import methods

    try:
        upscaler = methods.load(name, weights=weights_dir, device=device)
    except WeightsError as exc:
        raise type(exc)(f"{exc} (benchmarks take a folder: --weights-dir / weights_dir holding {name}.pt)") from exc
    weights = getattr(upscaler, "info", {}).get("weights")
    return upscaler, Path(weights) if weights else None


def plan_jobs(
    datasets,
    methods,
    output_dir,
    *,
    data_dir=None,
    weights_dir=None,
    convention="integer",
    crop_border=None,
    device=None,
    upscalers=None,
):
    """One Job per (dataset, image, method). ``upscalers`` (a dict) receives the methods loaded to check them."""
    from sr_models.metrics import check_convention

    check_convention(convention)
    methods = [methods] if isinstance(methods, str) else list(methods)
    if not methods or len(set(methods)) != len(methods):
        raise BenchmarkError(f"give each method once, at least one: got {methods}")
    datasets = resolve_datasets(datasets, data_dir)
    crop_border = SCALE if crop_border is None else int(crop_border)
    output_dir = Path(output_dir)
    manifest = read_manifest(output_dir)
    upscalers = {} if upscalers is None else upscalers
    weights = {}
    for method in methods:
        if imported_rows(manifest, method):
            continue  # an external method's outputs, brought in by import_outputs
        try:
            upscalers[method], weights_path = resolve_method(method, weights_dir, device)
        except UnknownMethodError as exc:
            raise UnknownMethodError(
                f"{exc} (outputs of an external model can be brought in with "
                f"`python -m benchmarks import {method} ...`)"
            ) from exc
        weights[method] = (str(weights_path), file_sha256(weights_path)) if weights_path else (None, None)

    jobs, plan = [], {"output_dir": output_dir, "convention": convention, "crop_border": crop_border}
    for dataset in datasets:
        hashes = {
            image.name: (file_sha256(image.lr_path) if image.lr_path else None, file_sha256(image.hr_path))
            for image in dataset.images
        }
        for method in methods:
            if method not in upscalers:
                jobs += imported_jobs(manifest, dataset, method, plan)
                continue
            weights_path, weights_sha256 = weights[method]
            for image in dataset.images:
                lr_sha256, hr_sha256 = hashes[image.name]
                jobs.append(
                    dataset_job(
                        dataset,
                        image,
                        method,
                        **plan,
                        key=job_key(
                            dataset.name, image.name, method, dataset.scale, lr_sha256, hr_sha256, weights_sha256
                        ),
                        lr_sha256=lr_sha256,
                        hr_sha256=hr_sha256,
                        weights_path=weights_path,
                        weights_sha256=weights_sha256,
                        device=device,
                    )
                )
    return jobs


def dataset_job(dataset, image, method, *, output_dir, convention, crop_border, **fields):
    """The Job of ``method`` on one image of ``dataset``; ``fields`` gives the key, hashes, weights and device."""
    return Job(
        dataset=dataset.name,
        dataset_root=str(dataset.root),
        scale=dataset.scale,
        image=image.name,
        hr_path=str(image.hr_path),
        lr_path=str(image.lr_path) if image.lr_path else None,
        method=method,
        output_dir=str(output_dir),
        convention=convention,
        crop_border=crop_border,
        **fields,
    )


def imported_rows(manifest, method):
    return [row for row in manifest.values() if row["method"] == method and row["source"].startswith("import")]


def imported_jobs(manifest, dataset, method, plan):
    """Jobs for an imported method: already done, as long as every image's output is still stored. ``plan``:
    the ``output_dir``, ``convention`` and ``crop_border`` of every job."""
    jobs, missing = [], []
    for image in dataset.images:
        row = manifest.get((dataset.name, image.name, method))
        if row is None or not stored_output_ok(plan["output_dir"], row):
            missing.append(image.name)
            continue
        jobs.append(
            dataset_job(
                dataset,
                image,
                method,
                **plan,
                key=row["job_key"],
                lr_sha256=row["lr_sha256"],
                hr_sha256=file_sha256(image.hr_path),
                source=row["source"],
            )
        )
    if missing:
        raise BenchmarkError(
            f"method {method!r} was imported, but its outputs for {dataset.name} are missing or "
            f"damaged for: "
            f"{', '.join(missing)}; import them again with `python -m benchmarks import {method} "
            f"--dataset {dataset.name} --outputs FOLDER`"
        )
    return jobs


# ---------------------------------------------------------------- one job


def job_dataset(job):
    """The job's dataset and image, rebuilt from the Job's fields without rescanning the folder."""
    lr_path = Path(job.lr_path) if job.lr_path else None
    image = TestImage(job.image, Path(job.hr_path), lr_path)
    return Dataset(name=job.dataset, root=Path(job.dataset_root), images=[image], scale=job.scale), image


def load_upscaler(job):
    from sr_models import methods

    return methods.load(job.method, weights=job.weights_path, device=job.device)


def execute_job(job, upscaler=None):
    """Generate, store and measure one (method, image) output; return a JSON-serialisable result dict.

    ``job`` is a Job, or its ``to_dict()`` as a task queue delivers it.
    """
    return execute_jobs([Job.from_dict(job)], upscaler)[0]


def execute_jobs(jobs, upscaler=None):
    """``execute_job`` for several jobs of one method, upscaled as one batch (``Upscaler.upscale_many``)."""
    from sr_models.metrics import evaluate_many

    started = time.perf_counter()
    upscaler = upscaler or load_upscaler(jobs[0])
    pairs = [dataset.load(image) for dataset, image in map(job_dataset, jobs)]
    outputs = upscaler.upscale_many([lr for lr, _ in pairs])
    measured = []
    for job, sr, (_, hr) in zip(jobs, outputs, pairs):
        if sr.shape[:2] != hr.shape[:2]:
            raise BenchmarkError(
                f"method {job.method} made a {sr.shape[1]}x{sr.shape[0]} image from "
                f"{job.image} where the HR image is {hr.shape[1]}x{hr.shape[0]}"
            )
        measured.append((same_channels(sr, hr), hr))
    first = jobs[0]
    metrics = evaluate_many(measured, crop_border=first.crop_border, convention=first.convention)
    seconds = (time.perf_counter() - started) / len(jobs)
    results = []
    for job, (sr, _), values in zip(jobs, measured, metrics):
        sha256, path = store_output(sr, job.output_dir)
        results.append(result_row(job, sha256, path, values["psnr_y"], values["ssim_y"], seconds=seconds))
    return results


def result_row(job, sha256, path, psnr, ssim, seconds=None):
    row = {column: getattr(job, column, None) for column in MANIFEST_COLUMNS}
    row.update(job_key=job.key, sha256=sha256, path=path, psnr_y=psnr, ssim_y=ssim, seconds=seconds)
    return row


def measure(sr, hr, convention, crop_border):
    from sr_models.metrics import evaluate_pair

    values = evaluate_pair(same_channels(sr, hr), hr, crop_border=crop_border, convention=convention)
    return values["psnr_y"], values["ssim_y"]


def same_channels(sr, hr):
    """A colour output of a greyscale image whose three channels agree is that grey image (its own Y)."""
    if hr.ndim == 2 and sr.ndim == 3:
        if not ((sr[..., 0] == sr[..., 1]).all() and (sr[..., 0] == sr[..., 2]).all()):
            raise BenchmarkError("the HR image is greyscale but the output is in colour; give a greyscale output")
        return sr[..., 0]
    if hr.ndim == 3 and sr.ndim == 2:
        raise BenchmarkError("the HR image is in colour but the output is greyscale")
    return sr


def store_output(image, output_dir):
    """Store ``outputs/<sha256 of the PNG bytes>.png`` once: an existing file of that name is left untouched."""
    from sr_models.imageio import png_bytes, sha256_hex

    data = png_bytes(image)
    sha256 = sha256_hex(data)
    path = Path(output_dir) / OUTPUTS / f"{sha256}.png"
    if not (path.is_file() and file_sha256(path) == sha256):
        atomic_write(path, data)
    return sha256, f"{OUTPUTS}/{sha256}.png"


def run_jobs_locally(jobs, *, upscalers=None, progress=True, batch_size=8):
    """The default executor: each method loaded once (or taken from ``upscalers``), its jobs run in batches."""
    from tqdm import tqdm

    upscalers = {} if upscalers is None else upscalers
    results = {}
    with tqdm(total=len(jobs), desc="benchmark", unit="image", disable=not progress) as bar:
        for group in group_jobs(jobs, batch_size):
            method = group[0].method
            if method not in upscalers:
                upscalers[method] = load_upscaler(group[0])
            for result in execute_jobs(group, upscalers[method]):
                results[result["job_key"]] = result
            bar.update(len(group))
    return [results[job.key] for job in jobs]


def group_jobs(jobs, batch_size):
    """Batches of at most ``batch_size`` jobs that share method, convention and border."""
    groups = {}
    for job in jobs:
        groups.setdefault((job.method, job.convention, job.crop_border), []).append(job)
    return [group[i : i + batch_size] for group in groups.values() for i in range(0, len(group), batch_size)]


# ---------------------------------------------------------------- manifest


def read_manifest(output_dir):
    """{(dataset, image, method): row} from ``outputs.csv`` (empty when there is none yet)."""
    path = Path(output_dir) / MANIFEST
    if not path.is_file():
        return {}
    rows = tables.read_csv(path)
    if rows and set(MANIFEST_COLUMNS) - set(rows[0]):
        raise BenchmarkError(
            f"{path} is not an srmos outputs manifest (columns {', '.join(rows[0])}); choose another --output-dir"
        )
    rows = [{column: value if value != "" else None for column, value in row.items()} for row in rows]
    return {(row["dataset"], row["image"], row["method"]): row for row in rows}


def update_manifest(output_dir, rows):
    """Merge result rows into ``outputs.csv`` under a lock, so that runs sharing a folder keep each other's rows."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    with open(output_dir / ".outputs.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        manifest = read_manifest(output_dir)
        for row in rows:
            manifest[(row["dataset"], row["image"], row["method"])] = {c: row.get(c) for c in MANIFEST_COLUMNS}
        text = tables.csv_text(MANIFEST_COLUMNS, list(manifest.values()))
        atomic_write(output_dir / MANIFEST, text)


def stored_output_ok(output_dir, row):
    path = Path(output_dir) / row["path"]
    return path.is_file() and file_sha256(path) == row["sha256"]


def is_done(job, manifest):
    row = manifest.get((job.dataset, job.image, job.method))
    return row is not None and row["job_key"] == job.key and stored_output_ok(job.output_dir, row)


def measured_row(job, row):
    """A skipped job's manifest row, measured again only if the convention, border or HR file changed."""
    same = (
        row["convention"] == job.convention
        and str(row["crop_border"]) == str(job.crop_border)
        and row["hr_sha256"] == job.hr_sha256
        and row["psnr_y"] is not None
    )
    if same:
        return dict(row, psnr_y=float(row["psnr_y"]), ssim_y=float(row["ssim_y"]), crop_border=job.crop_border)
    from sr_models.imageio import read_image

    dataset, image = job_dataset(job)
    sr = read_image(Path(job.output_dir) / row["path"])
    psnr, ssim = measure(sr, dataset.load_hr(image), job.convention, job.crop_border)
    return dict(result_row(job, row["sha256"], row["path"], psnr, ssim), source=row["source"])


# ---------------------------------------------------------------- the whole run


def run_benchmark(
    datasets,
    methods,
    output_dir,
    *,
    data_dir=None,
    weights_dir=None,
    executor=None,
    progress=True,
    convention="integer",
    crop_border=None,
    device=None,
    metrics=None,
    metric_stand_in=False,
    metric_weights_dir=None,
):
    """Generate what is missing, measure everything asked for, write manifest and tables; return the result.

    ``metrics``: names of ``sr_models.quality`` metrics (default psnr_y and ssim_y, always measured); the others
    are computed once per output in this process (``benchmarks.quality_values``). ``metric_stand_in`` allows
    stand-in backbone weights for the learned ones (marked wherever their figures appear); ``metric_weights_dir``
    is the folder of their backbone files (default the torch hub cache)."""
    from benchmarks import quality_values
    from sr_models import quality

    extra = quality_values.extra_metrics(metrics)
    context = quality.context_for(device, metric_weights_dir, metric_stand_in, convention)
    quality_values.check_ready(extra, context)
    upscalers = {}
    jobs = plan_jobs(
        datasets,
        methods,
        output_dir,
        data_dir=data_dir,
        weights_dir=weights_dir,
        convention=convention,
        crop_border=crop_border,
        device=device,
        upscalers=upscalers,
    )
    quality_values.check_sizes(extra, jobs, jobs[0].crop_border if jobs else SCALE)
    output_dir = Path(output_dir)
    manifest = read_manifest(output_dir)
    pending = [job for job in jobs if not is_done(job, manifest)]
    if executor is None:

        def executor(pending_jobs):
            return run_jobs_locally(pending_jobs, upscalers=upscalers, progress=progress)

    results = list(executor(pending)) if pending else []
    by_key = {result["job_key"]: result for result in results}
    lost = [f"{job.dataset}/{job.image}/{job.method}" for job in pending if job.key not in by_key]
    if lost:
        raise BenchmarkError(f"the executor returned no result for {len(lost)} jobs: {', '.join(lost[:10])}")

    per_image = [by_key.get(job.key) or measured_row(job, manifest[job.dataset, job.image, job.method]) for job in jobs]
    update_manifest(output_dir, per_image)
    crop_border = jobs[0].crop_border
    provenance = run_provenance(jobs, upscalers, output_dir)
    table_per_image, notes = tabled_rows(output_dir, per_image, convention, crop_border)
    values, metric_provenance = [], None
    if extra:
        pair_of = output_pairs(jobs, output_dir)
        values = quality_values.measure(
            extra, per_image, pair_of, output_dir, crop_border=crop_border, context=context, progress=progress
        )
        table_per_image, missing = quality_values.attach(
            table_per_image, extra, values, output_dir, crop_border=crop_border, context=context
        )
        notes += missing
        metric_provenance = quality_values.provenance(extra, context)
        warn_stand_in_metrics(metric_provenance)
    summary = tables.summarise(table_per_image, extra)
    files = tables.write_tables(
        summary,
        output_dir,
        per_image=table_per_image,
        convention=convention,
        crop_border=crop_border,
        scale=SCALE,
        provenance=provenance,
        notes=notes,
        metric_provenance=metric_provenance,
    )
    files["manifest"] = output_dir / MANIFEST
    return BenchmarkResult(
        output_dir=output_dir,
        per_image=per_image,
        summary=summary,
        files=files,
        n_generated=len(pending),
        n_skipped=len(jobs) - len(pending),
        convention=convention,
        crop_border=crop_border,
        markdown=files["markdown"].read_text(),
        jobs=jobs,
        table_per_image=table_per_image,
        provenance=provenance,
        metrics=extra,
        metric_values=values,
        metric_provenance=metric_provenance or [],
    )


def warn_stand_in_metrics(metric_provenance):
    """Warn (``StandInMetricWeightsWarning``, and the log) for every metric computed with stand-in weights."""
    for row in metric_provenance:
        if row["weights_note"] == tables.STAND_IN_WEIGHTS:
            message = (
                f"{row['metric']} was computed with stand-in backbone weights, not torchvision's ImageNet weights: "
                "its column is marked and its figures are not the published metric's"
            )
            log.warning(message)
            warnings.warn(message, StandInMetricWeightsWarning, stacklevel=3)


def output_pairs(jobs, output_dir):
    """``pair_of(row)``: a per-image row's stored output and its HR image (uint8), for the extra metrics."""
    from sr_models.imageio import read_image

    by_key = {job.key: job for job in jobs}

    def pair_of(row):
        dataset, image = job_dataset(by_key[row["job_key"]])
        hr = dataset.load_hr(image)
        return same_channels(read_image(Path(output_dir) / row["path"]), hr), hr

    return pair_of


def tabled_rows(output_dir, per_image, convention, crop_border):
    """(rows for the tables, notes): this run's rows, plus every other manifest row measured with the same convention
    and border, so that the tables describe the whole folder; rows measured otherwise are counted in a note."""
    ours = {(row["dataset"], row["image"], row["method"]) for row in per_image}
    rows, other = list(per_image), 0
    for key, row in read_manifest(output_dir).items():
        if key in ours:
            continue
        same = row["convention"] == convention and str(row["crop_border"]) == str(crop_border)
        if same and row["psnr_y"] is not None and row["ssim_y"] is not None:
            rows.append(dict(row, psnr_y=float(row["psnr_y"]), ssim_y=float(row["ssim_y"])))
        else:
            other += 1
    notes = []
    if other:
        notes.append(
            f"{other} outputs in {MANIFEST} were measured with another Y convention or border and are not in these "
            f"tables: run the benchmark again with their datasets and methods to measure them with {convention!r}, "
            f"border {crop_border}."
        )
    return tables.sort_rows(rows), notes


def method_provenance(method, upscaler=None, *, source="generated", weights_sha256=None):
    """The ``provenance.csv`` row of one method, from ``upscaler.info`` (``sr_models.methods.NetworkUpscaler``)."""
    return tables.provenance_row(method, getattr(upscaler, "info", None), source=source, weights_sha256=weights_sha256)


def run_provenance(jobs, upscalers, output_dir):
    """Provenance rows of this run's methods, merged with those ``provenance.csv`` already holds for the folder's
    other methods; warns (``StandInFeaturesWarning``, and the log) for every model trained with stand-in features."""
    rows = {}
    path = Path(output_dir) / tables.TABLE_FILES["provenance_csv"]
    if path.is_file():
        for row in tables.read_csv(path):
            rows[row["method"]] = {key: (value if value != "" else None) for key, value in row.items()}
    for job in jobs:
        if job.method in rows and rows[job.method].get("_run"):
            continue
        row = method_provenance(
            job.method, upscalers.get(job.method), source=job.source, weights_sha256=job.weights_sha256
        )
        rows[job.method] = {**row, "_run": True}
        if row["stand_in_features"]:
            message = (
                f"{job.method} was trained with stand-in VGG features (vgg_weights: {row['vgg_weights']}), "
                "not torchvision's ImageNet weights: its tables are marked and it is not the paper's model"
            )
            log.warning(message)
            warnings.warn(message, StandInFeaturesWarning, stacklevel=3)
    return [{k: v for k, v in row.items() if k != "_run"} for row in rows.values()]


# ---------------------------------------------------------------- external methods


def match_outputs(dataset, outputs_dir):
    """{image name: file} for a folder of an external model's outputs.

    A file belongs to an image when its stem is the image's name (``img_001``) or starts with it and ``_``
    (``img_001_SRF_4_HR.png``, ``img_001_x4_SR.png``; in a plain folder, the HR file's stem and any suffix). Where
    several names fit, the longest wins. Every image needs exactly one file.
    """
    outputs_dir = Path(outputs_dir)
    if not outputs_dir.is_dir():
        raise BenchmarkError(f"outputs folder {outputs_dir} does not exist")
    names = sorted((image.name for image in dataset.images), key=len, reverse=True)
    found, unmatched = {}, []
    for path in sorted(outputs_dir.iterdir()):
        if not (path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES):
            continue
        owner = next((n for n in names if path.stem == n or path.stem.startswith(n + "_")), None)
        if owner is None:
            unmatched.append(path.name)
        else:
            found.setdefault(owner, []).append(path)
    problems = []
    missing = [image.name for image in dataset.images if image.name not in found]
    if missing:
        problems.append(f"no file for {', '.join(missing)}")
    doubles = {name: paths for name, paths in found.items() if len(paths) > 1}
    if doubles:
        problems.append(
            "several files for "
            + "; ".join(f"{name} ({', '.join(p.name for p in paths)})" for name, paths in doubles.items())
        )
    if problems:
        extra = f" (files matching no image: {', '.join(unmatched)})" if unmatched else ""
        raise BenchmarkError(
            f"outputs in {outputs_dir} do not match {dataset.name}'s images: {'; '.join(problems)}"
            f"{extra}. Name each file after its image, e.g. {dataset.images[0].name}.png or "
            f"{dataset.images[0].name}_<anything>.png"
        )
    return {name: paths[0] for name, paths in found.items()}


def import_outputs(
    name, dataset, outputs_dir, output_dir, *, data_dir=None, convention="integer", crop_border=None, progress=True
):
    """Store an external model's x4 outputs as method ``name`` and measure them like a built-in method.

    Every file is read and its size checked against the (cropped) HR image before anything is stored; the pixels
    are stored re-encoded as ``outputs/<sha256>.png`` (no metadata) and the manifest gains one row per image.
    Returns the per-image result rows.
    """
    from tqdm import tqdm

    from sr_models import methods
    from sr_models.imageio import read_image
    from sr_models.metrics import check_convention

    check_convention(convention)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", name or ""):
        raise BenchmarkError(f"method name {name!r}: use letters, digits and _ . + - only")
    dataset = get_dataset(dataset, data_dir)
    crop_border = SCALE if crop_border is None else int(crop_border)
    files = match_outputs(dataset, outputs_dir)
    output_dir = Path(output_dir)
    manifest = read_manifest(output_dir)
    clash = [row for key, row in manifest.items() if key[2] == name and not row["source"].startswith("import")]
    if clash or name in methods.available():
        raise BenchmarkError(f"{name!r} is the name of a built-in method; import the outputs under another name")

    staged, mismatched = [], []
    for image in dataset.images:
        path = files[image.name]
        sr, hr = read_image(path), dataset.load_hr(image)
        if sr.shape[:2] != hr.shape[:2]:
            mismatched.append(f"{path.name} is {sr.shape[1]}x{sr.shape[0]}, HR is {hr.shape[1]}x{hr.shape[0]}")
            continue
        try:
            staged.append((image, same_channels(sr, hr), hr))
        except SRMOSError as exc:
            mismatched.append(f"{path.name}: {exc}")
    if mismatched:
        raise BenchmarkError(
            f"outputs in {outputs_dir} do not fit {dataset.name}'s HR images (cropped to a multiple "
            f"of {dataset.scale}): {'; '.join(mismatched)}"
        )

    rows = []
    for image, sr, hr in tqdm(staged, desc=f"import {name}", unit="image", disable=not progress):
        source_sha256 = file_sha256(files[image.name])
        job = dataset_job(
            dataset,
            image,
            name,
            output_dir=output_dir,
            convention=convention,
            crop_border=crop_border,
            source=f"import:{source_sha256}",
            key=hashlib.sha256(
                json.dumps(["import", dataset.name, image.name, name, source_sha256]).encode()
            ).hexdigest(),
            hr_sha256=file_sha256(image.hr_path),
        )
        sha256, path = store_output(sr, output_dir)
        psnr, ssim = measure(sr, hr, convention, crop_border)
        rows.append(result_row(job, sha256, path, psnr, ssim))
    update_manifest(output_dir, rows)
    return rows
