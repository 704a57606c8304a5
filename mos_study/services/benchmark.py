"""Benchmark runs recorded in the database: the Django side of ``benchmarks.runner``.

The runner generates, stores and measures outputs (through the Celery executor of ``mos_study.tasks``) and writes
the tables; this module then records the run, its outputs and their metrics in one transaction, and publishes each
output as ``MEDIA_ROOT/outputs/<sha256>.png`` (the same content-addressed name as in the runner's output folder), so
the study app can serve it. A run that fails keeps its ``BenchmarkRun`` row, marked failed with the error (cancelled
when interrupted), and writes no other row. While it runs, its heartbeat is stamped (``Heartbeat``); a running run
whose heartbeat stopped lost its command (killed) and is marked failed when runs are next listed
(``mark_abandoned_runs``), and workers skip the jobs of a run that has ended (``run_end_reason``).
"""

import logging
import shutil
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from sr_models.errors import SRMOSError
from sr_models.fileio import atomic_link, atomic_write

from ..models import HR_METHOD, BenchmarkRun, Method, Metric, MetricValue, Output, TestImage
from ..tasks import celery_executor, current_heartbeat

DEFAULT_CROP_BORDER = 4  # the scale, as the runner defaults to
PLUGIN_SEPARATOR = ":"  # "package.module:callable" names a plugin method (sr_models.methods.load)
HEARTBEAT_EVERY_S = 30  # a running command stamps its run's heartbeat at most this often
DEFAULT_STALE_AFTER_S = 300  # SRMOS_RUN_STALE_AFTER_S: a running run without a heartbeat this long lost its command

logger = logging.getLogger(__name__)


class RecordError(SRMOSError):
    """Results that cannot be recorded without contradicting what the database already holds."""


# ---------------------------------------------------------------- runs


def run_and_record(
    datasets,
    methods,
    *,
    data_dir=None,
    weights_dir=None,
    output_dir=None,
    y_convention="integer",
    progress=True,
    crop_border=None,
    timeout=None,
    queue=None,
    device=None,
    executor=None,
    metrics=None,
    metric_stand_in=False,
    metric_weights_dir=None,
):
    """Run the benchmark (every output a Celery task) and record the run, outputs and metrics; return the run.

    ``metrics`` names the ``sr_models.quality`` metrics beyond PSNR/SSIM (computed by the runner in this process,
    recorded as ``MetricValue`` rows); ``metric_stand_in`` and ``metric_weights_dir`` as ``run_benchmark``'s.

    ``datasets`` and ``methods`` are names (lists or comma-separated strings). Directories default to the
    ``SRMOS_*_DIR`` settings. ``timeout`` bounds the wait for each next result from workers (default
    ``mos_study.tasks.default_timeout()``); ``queue`` is the
    Celery queue the jobs go to; ``executor`` replaces the Celery one (``mos_study.tasks.celery_executor``), e.g.
    to run the jobs in a task's own process. The runner's ``BenchmarkResult`` is left on the run as ``run.result``.
    """
    from benchmarks.runner import run_benchmark

    datasets, methods = as_list(datasets), as_list(methods)
    output_dir = Path(output_dir or settings.SRMOS_OUTPUT_DIR)
    run = start_run(datasets, methods, output_dir, y_convention, crop_border)
    with failures_recorded(run), Heartbeat(run):
        result = run_benchmark(
            datasets,
            methods,
            output_dir,
            data_dir=data_dir or settings.SRMOS_DATA_DIR,
            weights_dir=weights_dir or settings.SRMOS_WEIGHTS_DIR,
            progress=progress,
            convention=y_convention,
            crop_border=crop_border,
            device=device,
            executor=executor or celery_executor(timeout=timeout, queue=queue, progress=progress, run_id=run.pk),
            metrics=metrics,
            metric_stand_in=metric_stand_in,
            metric_weights_dir=metric_weights_dir,
        )
        hr_paths = {(job.dataset, job.image): (job.hr_path, job.scale) for job in result.jobs}
        record_rows(
            run,
            result.per_image,
            output_dir,
            hr_paths,
            crop_border=result.crop_border,
            metric_values=result.metric_values,
        )
        record_provenance(result.provenance)
    run.result = result
    return run


def import_and_record(
    name,
    dataset,
    outputs_dir,
    *,
    data_dir=None,
    output_dir=None,
    y_convention="integer",
    progress=True,
    crop_border=None,
    description="",
    owner=None,
):
    """Bring in an external model's x4 outputs (``benchmarks.runner.import_outputs``) as method ``name``, record
    them like a built-in method's (``Method.kind`` external) and return the ``BenchmarkRun`` of the import.

    With ``owner`` (a researcher's upload) the method is theirs: a new one gets them as owner, and a method that
    exists and is not theirs is refused (``MethodNotYours``) before anything is written."""
    from benchmarks.runner import import_outputs
    from sr_models.datasets import get_dataset

    data_dir = data_dir or settings.SRMOS_DATA_DIR
    output_dir = Path(output_dir or settings.SRMOS_OUTPUT_DIR)
    existing = Method.objects.filter(name=name).exclude(kind=Method.Kind.EXTERNAL).first()
    if existing:
        raise RecordError(
            f"method {name!r} is already recorded as {existing.get_kind_display()}; "
            f"import the outputs under another name"
        )
    check_owner(name, owner)
    run = start_run([str(dataset)], [name], output_dir, y_convention, crop_border)
    with failures_recorded(run):
        rows = import_outputs(
            name,
            dataset,
            outputs_dir,
            output_dir,
            data_dir=data_dir,
            convention=y_convention,
            crop_border=crop_border,
            progress=progress,
        )
        found = get_dataset(dataset, data_dir)
        hr_paths = {(found.name, image.name): (image.hr_path, found.scale) for image in found.images}
        record_rows(
            run, rows, output_dir, hr_paths, crop_border=int(rows[0]["crop_border"]), descriptions={name: description}
        )
    if owner is not None:
        Method.objects.filter(name=name, owner__isnull=True).update(owner=owner)
    run.rows = rows
    return run


class MethodNotYours(RecordError):
    """A researcher uploading under the name of a method that belongs to someone else."""


def record_provenance(rows):
    """Keep each method's provenance.csv row on its Method, for the study exports' marks."""
    for row in rows:
        Method.objects.filter(name=row["method"]).update(provenance={k: str(v) for k, v in row.items()})


def check_owner(name, owner):
    """Raise ``MethodNotYours`` when ``owner`` (a researcher uploading) may not add outputs under ``name``."""
    if owner is None:
        return
    existing = Method.objects.filter(name=name).first()
    if existing is None or existing.owner_id == owner.pk or (existing.owner_id is None and owner.is_superuser):
        return
    raise MethodNotYours(
        f"method {name!r} belongs to another researcher (or was imported by the operator): "
        f"upload your outputs under another name"
    )


def start_run(datasets, methods, output_dir, y_convention, crop_border):
    """The run's row, written at once (outside any transaction) so that a failure can be recorded on it."""
    return BenchmarkRun.objects.create(
        datasets=datasets,
        methods=methods,
        output_dir=str(output_dir),
        y_convention=y_convention,
        crop_border=DEFAULT_CROP_BORDER if crop_border is None else crop_border,
        heartbeat=timezone.now(),
    )


class Heartbeat:
    """While the block runs, ``mos_study.tasks.beat()`` (called between jobs and while results are awaited, whichever
    executor runs them) stamps the run's heartbeat, at most every ``HEARTBEAT_EVERY_S``."""

    def __init__(self, run, every_s=HEARTBEAT_EVERY_S):
        self.run, self.every_s = run, every_s
        self.last = time.monotonic()
        self.token = None

    def __enter__(self):
        self.token = current_heartbeat.set(self)
        return self

    def __exit__(self, *exc):
        current_heartbeat.reset(self.token)
        return False

    def __call__(self):
        if time.monotonic() - self.last < self.every_s:
            return
        self.last = time.monotonic()
        try:
            BenchmarkRun.objects.filter(pk=self.run.pk).update(heartbeat=timezone.now())
        except DatabaseError as exc:  # the database is away: the run goes on, the next beat tries again
            logger.warning("could not stamp the heartbeat of benchmark run %s: %s", self.run.pk, exc)


def stale_after_s():
    return int(getattr(settings, "SRMOS_RUN_STALE_AFTER_S", DEFAULT_STALE_AFTER_S))


def abandoned_error():
    return (
        f"abandoned: its command stopped (killed?) and sent no heartbeat for over {stale_after_s()} s; "
        f"run it again (outputs already stored are reused)"
    )


def stale_runs(now=None):
    """Running runs whose command sent no heartbeat for ``SRMOS_RUN_STALE_AFTER_S`` seconds."""
    cutoff = (now or timezone.now()) - timedelta(seconds=stale_after_s())
    running = BenchmarkRun.objects.filter(status=BenchmarkRun.Status.RUNNING)
    return running.filter(heartbeat__lt=cutoff) | running.filter(heartbeat__isnull=True, started__lt=cutoff)


def mark_abandoned_runs(now=None):
    """Mark failed the running runs whose command died (``stale_runs``); return their ids. Called where runs are
    listed (the admin, ``run_benchmark``), so that a killed command's run does not stay "running"."""
    now = now or timezone.now()
    ids = list(stale_runs(now).values_list("pk", flat=True))
    if ids:
        BenchmarkRun.objects.filter(pk__in=ids, status=BenchmarkRun.Status.RUNNING).update(
            status=BenchmarkRun.Status.FAILED, error=abandoned_error(), finished=now
        )
        logger.warning("benchmark runs %s lost their command (no heartbeat): marked failed", ids)
    return ids


def run_end_reason(run_id):
    """Why run ``run_id`` is over, for a worker about to do one of its jobs; "" while it runs."""
    row = BenchmarkRun.objects.filter(pk=run_id).values("status", "error").first()
    if row is None:
        return f"benchmark run {run_id} does not exist (its database was reset?)"
    if row["status"] == BenchmarkRun.Status.RUNNING:
        if stale_runs().filter(pk=run_id).exists():
            return f"benchmark run {run_id} lost its command (no heartbeat for over {stale_after_s()} s)"
        return ""
    if row["status"] == BenchmarkRun.Status.DONE:
        return f"benchmark run {run_id} has finished (a duplicate delivery: its result is already recorded)"
    return f"benchmark run {run_id} has ended ({row['status']}: {row['error'][:200]})"


class failures_recorded:
    """Mark the run failed with the error, outside any transaction, whatever went wrong, and re-raise."""

    def __init__(self, run):
        self.run = run

    def __enter__(self):
        return self.run

    def __exit__(self, exc_type, exc, traceback):
        if exc is not None:
            interrupted = isinstance(exc, (KeyboardInterrupt, SystemExit))
            self.run.status = BenchmarkRun.Status.CANCELLED if interrupted else BenchmarkRun.Status.FAILED
            self.run.error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, SRMOSError) else str(exc)
            self.run.finished = timezone.now()
            try:
                self.run.save(update_fields=["status", "error", "finished"])
            except DatabaseError:  # e.g. a caller's transaction that the error broke: the error itself matters more
                logger.exception("could not mark benchmark run %s failed", self.run.pk)
        return False


def record_rows(run, rows, output_dir, hr_paths, *, crop_border, descriptions=None, metric_values=()):
    """Publish the outputs under MEDIA_ROOT, then write every row of the run in one transaction.

    ``hr_paths`` maps (dataset, image) to (HR file, scale): the TestImage's size is the HR size cropped to a
    multiple of the scale, as every output is measured against. ``metric_values`` are the runner's extra metric
    rows (``benchmarks.quality_values.VALUE_COLUMNS``), recorded as ``MetricValue`` of their output.
    """
    descriptions = descriptions or {}
    extra = {}
    for value in metric_values:
        extra.setdefault((value["dataset"], value["image"], value["method"]), []).append(value)
    published = {row["sha256"]: publish_output(output_dir, row["path"], row["sha256"]) for row in rows}
    sizes = {row["sha256"]: image_header(Path(settings.MEDIA_ROOT) / published[row["sha256"]]) for row in rows}
    hr_sizes = {key: image_header(path, scale) for key, (path, scale) in hr_paths.items()}
    with transaction.atomic():
        methods, images, outputs = {}, {}, []
        for row in rows:
            name = row["method"]
            if name not in methods:
                methods[name] = ensure_method(name, method_kind(row), description=descriptions.get(name, ""))
            key = (row["dataset"], row["image"])
            if key not in images:
                images[key] = ensure_test_image(*key, row["hr_sha256"], *hr_sizes[key])
            width, height, _ = sizes[row["sha256"]]
            output = upsert_output(
                methods[name],
                images[key],
                row["sha256"],
                published[row["sha256"]],
                row.get("weights_sha256") or "",
                width,
                height,
            )
            Metric.objects.update_or_create(
                output=output,
                y_convention=row["convention"],
                crop_border=crop_border,
                defaults={"psnr_y": float(row["psnr_y"]), "ssim_y": float(row["ssim_y"])},
            )
            record_metric_values(output, extra.get((row["dataset"], row["image"], name), ()))
            outputs.append(output)
        run.outputs.add(*outputs)
        run.status = BenchmarkRun.Status.DONE
        run.crop_border = crop_border
        run.finished = timezone.now()
        run.save(update_fields=["status", "crop_border", "finished"])


def record_metric_values(output, values):
    """One MetricValue per (metric, convention, border) of an output, the newest figure replacing an older one."""
    for value in values:
        MetricValue.objects.update_or_create(
            output=output,
            name=value["metric"],
            convention=value["convention"],
            crop_border=int(value["crop_border"]),
            defaults={
                "value": float(value["value"]),
                "weights_note": value.get("weights_note") or "",
                "source": (value.get("source") or "")[:300],
            },
        )


# ---------------------------------------------------------------- HR originals


def record_hr_outputs(dataset, *, data_dir=None):
    """Store a dataset's HR originals (cropped to a multiple of the scale, as every method is measured against)
    as Outputs of the reference method ``hr``, content-addressed under MEDIA_ROOT like every output."""
    from benchmarks.runner import file_sha256, store_output
    from sr_models.datasets import get_dataset

    dataset = get_dataset(dataset, data_dir or settings.SRMOS_DATA_DIR)
    staged = []
    for image in dataset.images:
        hr = dataset.load_hr(image)
        sha256, path = store_output(hr, settings.MEDIA_ROOT)  # MEDIA_ROOT/outputs/<sha256>.png
        staged.append((image.name, file_sha256(image.hr_path), sha256, path, hr.shape))
    with transaction.atomic():
        method = ensure_method(HR_METHOD, Method.Kind.REFERENCE, description="the original high-resolution image")
        outputs = []
        for name, hr_sha256, sha256, path, shape in staged:
            height, width = shape[:2]
            image = ensure_test_image(dataset.name, name, hr_sha256, width, height, channels_of(shape))
            outputs.append(upsert_output(method, image, sha256, path, "", width, height))
    return outputs


# ---------------------------------------------------------------- rows


def method_kind(row):
    if str(row.get("source") or "").startswith("import"):
        return Method.Kind.EXTERNAL
    if PLUGIN_SEPARATOR in row["method"]:
        return Method.Kind.PLUGIN
    return Method.Kind.BUILTIN


def ensure_method(name, kind, description=""):
    plugin_path = name if kind == Method.Kind.PLUGIN else ""
    method, created = Method.objects.get_or_create(
        name=name, defaults={"kind": kind, "plugin_path": plugin_path, "description": description}
    )
    if not created and method.kind != kind:
        raise RecordError(
            f"method {name!r} is recorded as {method.get_kind_display()} but these results come from "
            f"a {Method.Kind(kind).label} method; give one of them another name"
        )
    if not created and description and method.description != description:
        method.description = description
        method.save(update_fields=["description"])
    return method


def ensure_test_image(dataset, name, hr_sha256, width, height, channels):
    """The TestImage row, brought up to date if the dataset's HR file changed since it was recorded."""
    fields = {"hr_sha256": hr_sha256 or "", "width": width, "height": height, "channels": channels}
    image, created = TestImage.objects.get_or_create(dataset=dataset, name=name, defaults=fields)
    if not created and any(getattr(image, key) != value for key, value in fields.items()):
        for key, value in fields.items():
            setattr(image, key, value)
        image.save(update_fields=list(fields))
    return image


def upsert_output(method, image, sha256, path, weights_sha256, width, height):
    """One Output per (method, image, weights): created once, reused on re-runs.

    Where the same method and weights now give different pixels (other hardware, a code change), the row follows
    the new output, unless a study shows the old one: then a study's stimulus would change under its raters.
    """
    fields = {"sha256": sha256, "file": path, "width": width, "height": height}
    output, created = Output.objects.get_or_create(
        method=method, image=image, weights_sha256=weights_sha256, defaults=fields
    )
    if created or output.sha256 == sha256:
        return output
    if output.stimuli.exists():
        raise RecordError(
            f"{method} on {image} now gives {sha256[:12]}... where the recorded output {output.sha256[:12]}... is "
            f"shown in studies ({', '.join(sorted({s.study.name for s in output.stimuli.all()}))}); record the new "
            f"output under another method name (or other weights) so that those studies keep their images"
        )
    for key, value in fields.items():
        setattr(output, key, value)
    output.save(update_fields=list(fields))
    return output


# ---------------------------------------------------------------- files


def publish_output(output_dir, path, sha256):
    """Put ``output_dir/path`` at ``MEDIA_ROOT/outputs/<sha256>.png`` atomically (hard link or copy to a temp name,
    hash checked, rename) unless an intact file is already there; return the path relative to MEDIA_ROOT."""
    from benchmarks.runner import OUTPUTS, file_sha256

    relative = f"{OUTPUTS}/{sha256}.png"
    target = Path(settings.MEDIA_ROOT) / relative
    if target.is_file() and file_sha256(target) == sha256:
        return relative
    source = Path(output_dir) / path

    def intact(temporary):
        if file_sha256(temporary) != sha256:
            raise RecordError(
                f"{source} does not hold the output {sha256} (it changed while being copied?); run the benchmark again"
            )

    link_or_copy(source, target, check=intact)
    return relative


def link_or_copy(source, destination, check=None):
    """``destination`` from ``source``, atomically (``sr_models.fileio``): a hard link where both lie on one file
    system (stored outputs are never rewritten in place), else a copy; ``check`` sees it before the rename."""
    try:
        atomic_link(source, destination, check=check)
    except OSError:
        with open(source, "rb") as file:
            atomic_write(destination, lambda out: shutil.copyfileobj(file, out), check=check)


def image_header(path, scale=1):
    """``(width, height, channels)`` from an image file's header, without decoding its pixels: the size cropped
    to a multiple of ``scale``, channels as ``sr_models.imageio.read_image`` gives them (grey 1, else 3)."""
    from PIL import Image

    from sr_models.imageio import GREY_MODES

    with Image.open(path) as img:
        channels = 1 if img.mode in GREY_MODES else 3
        return img.width - img.width % scale, img.height - img.height % scale, channels


def channels_of(shape):
    return 1 if len(shape) == 2 else shape[2]


def as_list(value):
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return [str(item) for item in value]
