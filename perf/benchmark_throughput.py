"""Benchmark throughput: outputs of the seven methods on Set5, Set14 and BSD100, in-process and with N Celery workers.

    .venv/bin/python -m perf.benchmark_throughput [--data-dir DIR] [--images 1] [--workers 1,2]
                                                  [--jobs-per-task 1,4] [--broker redis://127.0.0.1:6379/0]
                                                  [--database-url URL]
    .venv/bin/python -m perf.benchmark_throughput --images 0 --workers 1,2   # the full run: every image (238 x 7)

Every mode runs the whole benchmark a user runs (LR and HR read, upscaled, PNG stored content-addressed, PSNR/SSIM
measured, manifest and tables written) into a fresh output folder, and its images/s is printed beside the reference
measured in the same run: the fused network alone (``sr_models.inference.upscale_batch``, what ``perf.inference``
times) on the same LR images, once per learned method, in this process with all its threads; nn and bicubic are
counted as free there. It is timed before each mode and at the end, and the best is kept (the machine may be
shared: the ratio to it is then a lower bound). Modes:

- ``in-process``: ``benchmarks.runner.run_benchmark`` here (the default executor: each method loaded once, its jobs
  in batches of images of the same size, ``upscale_batch``; on CPU one image per network call, where batching gives
  nothing);
- ``N workers``: ``manage.py run_benchmark`` with ``CELERY_BROKER_URL`` on Redis and N real ``celery -A config
  worker --pool=solo`` processes on a queue of their own, each with cores / N torch threads (processes x threads =
  cores, as docs/deployment.md says); ``--jobs-per-task`` jobs of one method per task (``SRMOS_JOBS_PER_TASK``: one
  round trip, and one ``upscale_batch`` call, per batch; 1 is one job per task, as before), models cached per worker
  process.

Each mode is timed twice: the run (cold workers: each loads its models and creates its oneDNN primitives once), and a
second run into the same folder, in which every job is found done, so its time is the fixed cost of the command
(Django start, planning, hashing, tables); "net" images/s leaves that fixed cost out.

The three VGG methods have no weights here: their checkpoints are stand-ins made in a temporary folder from random
weights (marked so in their provenance: ``stand_in_features``), which is fair for speed (the network and its work do
not depend on the values) and meaningless for quality. srresnet-mse and srgan-mse use the shipped weights. The
default run takes the first ``--images 1`` image of each set (a copy in the temporary folder); ``--images 0`` is the
full run. Several machines cannot be measured from here: docs/deployment.md says how workers on other machines join
the same Redis (and why processes x threads = cores each).

This script imports neither Django nor Celery: both run in the subprocesses, as in a deployment.
"""

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from contextlib import ExitStack, contextmanager
from pathlib import Path

import torch

from benchmarks.runner import StandInFeaturesWarning, run_benchmark
from sr_models import methods as registry
from sr_models.archs import SRResNet
from sr_models.checkpoint import save_checkpoint
from sr_models.datasets import get_dataset
from sr_models.inference import upscale_batch
from sr_models.paths import data_dir as default_data_dir

REPO = Path(__file__).resolve().parents[1]
SETS = ("Set5", "Set14", "BSD100")
METHODS = ("nn", "bicubic", *registry.LEARNED_METHODS)
STAND_IN_NOTE = "stand-in random weights made by perf.benchmark_throughput: for speed only, outputs meaningless"


def subset_datasets(source, names, images, target):
    """(data folder, set names): the sets themselves for ``images`` 0, else a copy of the first ``images`` HR/LR
    pairs of each in ``target``, in the same layout, as ``<set>-first<images>`` (a set's own name would be refused
    as incomplete)."""
    if images == 0:
        return source, list(names)
    subsets = []
    for name in names:
        subsets.append(f"{name}-first{images}")
        folder = target / subsets[-1] / "image_SRF_4"
        folder.mkdir(parents=True)
        for image in get_dataset(name, data_dir=source).images[:images]:
            for path in (image.hr_path, image.lr_path):
                if path is not None:
                    shutil.copy2(path, folder / Path(path).name)
    return target, subsets


def stand_in_weights(folder, names):
    """Random-weight checkpoints for the methods srmos has no weights for here, marked as stand-ins."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    for name in names:
        provenance = {"stand_in_features": True, "note": STAND_IN_NOTE}
        save_checkpoint(folder / f"{name}.pt", SRResNet().eval(), method=name, provenance=provenance)
    return folder


def lr_images(data, names):
    sets = [get_dataset(name, data_dir=data) for name in names]
    return [dataset.load(image)[0] for dataset in sets for image in dataset.images]


class NetworkReference:
    """The fused network alone on the run's LR images in this process: ``measure()`` between the modes, the best
    kept; ``rate(methods)``: outputs/s of ``methods`` if their learned ones cost only that network and the rest
    nothing."""

    def __init__(self, data, names, weights):
        self.model = registry.load("srresnet-mse", weights=weights, device="cpu").model
        self.images = lr_images(data, names)
        self.seconds = float("inf")

    def measure(self, rounds=2):
        for _ in range(rounds):
            self.seconds = min(self.seconds, timed(self.run_all))

    def run_all(self):
        for image in self.images:
            upscale_batch(self.model, [image], device="cpu")

    def rate(self, chosen):
        learned = sum(m in registry.LEARNED_METHODS for m in chosen)
        return len(self.images) * len(chosen) / (self.seconds * max(1, learned))


def timed(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def in_process(data, names, chosen, weights, tmp):
    """Seconds of the run and of the re-run (all jobs done) with the runner's default executor; the stand-ins'
    warnings (expected: they are marked as stand-ins) are kept quiet."""
    out = tmp / "out-in-process"

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", StandInFeaturesWarning)
            run_benchmark(names, chosen, out, data_dir=data, weights_dir=weights, progress=False, device="cpu")

    logging.getLogger("benchmarks.runner").setLevel(logging.ERROR)
    return timed(run), timed(run)


def app_env(tmp, database_url, broker, threads, jobs_per_task=1):
    """The environment of the command and the workers: settings from the environment, as in the deployment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SRMOS_", "DATABASE_", "CELERY_"))}
    env.update(
        DATABASE_URL=database_url,
        CELERY_BROKER_URL=broker,
        DJANGO_SECRET_KEY="perf-" + uuid.uuid4().hex * 2,
        SRMOS_MEDIA_ROOT=str(tmp / "media"),
        OMP_NUM_THREADS=str(threads),
        SRMOS_JOBS_PER_TASK=str(jobs_per_task),
        PYTHONUNBUFFERED="1",
    )
    return env


def manage(env, *args):
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"manage.py {' '.join(args[:1])} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return result.stdout


@contextmanager
def celery_workers(env, queue, count, logs):
    """``count`` real ``celery -A config worker`` processes (solo pool) on ``queue``, ready when this yields."""
    processes, log_paths = [], []
    for index in range(count):
        log_paths.append(logs / f"worker-{queue}-{index}.log")
        command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo", "-Q", queue]
        command += ["-n", f"w{index}-{queue}@%h", "--loglevel=INFO", f"--logfile={log_paths[-1]}"]
        command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        processes.append(
            subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        )
    try:
        wait_ready(processes, log_paths)
        yield processes
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_ready(processes, log_paths, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(process.poll() is not None for process in processes):
            raise SystemExit(f"a Celery worker exited at start; see {log_paths}")
        if all(path.is_file() and " ready." in path.read_text(errors="replace") for path in log_paths):
            return
        time.sleep(0.5)
    raise SystemExit(f"the Celery workers were not ready within {timeout} s; see {log_paths}")


def forget_queue(broker, queue):
    import redis

    client = redis.Redis.from_url(broker)
    for key in client.scan_iter(match=f"*{queue}*"):
        client.delete(key)


def run_on_workers(env, data, names, chosen, weights, out, count, logs):
    """Seconds of the run and of the re-run through ``manage.py run_benchmark`` with ``count`` workers."""
    queue = f"perf-throughput-{uuid.uuid4().hex[:8]}"
    args = ["run_benchmark", "--datasets", ",".join(names), "--methods", ",".join(chosen), "--quiet"]
    args += ["--data-dir", str(data), "--weights-dir", str(weights), "--output-dir", str(out), "--device", "cpu"]
    args += ["--queue", queue]
    try:
        with celery_workers(env, queue, count, logs):
            return timed(lambda: manage(env, *args)), timed(lambda: manage(env, *args))
    finally:
        forget_queue(env["CELERY_BROKER_URL"], queue)


def print_row(label, layout, outputs, seconds, fixed, reference):
    rate, net = outputs / seconds, outputs / max(seconds - fixed, 1e-9)
    print(
        f"{label:14s} {layout:24s} {outputs:5d} outputs {seconds:7.1f} s  {rate:6.2f} images/s  "
        f"(fixed {fixed:5.1f} s; net {net:6.2f} images/s = {net / reference:5.1%} of the network alone)"
    )


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="datasets folder (default SRMOS_DATA_DIR)")
    parser.add_argument("--datasets", default=",".join(SETS))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--images", type=int, default=1, help="first N images of each set (0: all, the full run)")
    parser.add_argument("--workers", default="1,2", help="Celery worker counts to time (empty: in-process only)")
    parser.add_argument("--jobs-per-task", default="1", help="jobs per Celery task to time, e.g. 1,4")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/0", help="Redis for the Celery modes")
    parser.add_argument("--database-url", default=None, help="for the Celery modes (default SQLite in the temp dir)")
    parser.add_argument("--keep", default=None, help="keep the outputs, logs and stand-in weights in this folder")
    return parser.parse_args(argv)


def time_modes(args, tmp, data, names, chosen, weights, reference):
    """[(label, layout, seconds, fixed seconds)] for in-process and each worker count, the reference measured
    before each mode and at the end."""
    cores = os.cpu_count() or 1
    reference.measure()
    rows = [("in-process", f"1 x {torch.get_num_threads()} threads", *in_process(data, names, chosen, weights, tmp))]
    database_url = args.database_url or f"sqlite:///{tmp / 'perf.sqlite3'}"
    layouts = [(int(n), int(k)) for n in args.workers.split(",") if n for k in args.jobs_per_task.split(",") if k]
    for index, (count, per_task) in enumerate(layouts):
        reference.measure()
        threads = max(1, cores // count)
        env = app_env(tmp, database_url, args.broker, threads, per_task)
        if index == 0:
            manage(env, "migrate", "--noinput")
        out = tmp / f"out-{count}-workers-{per_task}"
        rows.append(
            (
                f"{count} workers",
                f"{count} x {threads} thr, {per_task}/task",
                *run_on_workers(env, data, names, chosen, weights, out, count, tmp),
            )
        )
    reference.measure()
    return rows


def main(argv=None):
    args = parse_args(argv)
    chosen = args.methods.split(",")
    stand_ins = [m for m in chosen if m in registry.VGG_METHODS]
    with ExitStack() as stack:
        tmp = Path(args.keep) if args.keep else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        source = Path(args.data_dir or default_data_dir())
        data, names = subset_datasets(source, args.datasets.split(","), args.images, tmp / "data")
        weights = stand_in_weights(tmp / "weights", stand_ins)
        reference = NetworkReference(data, names, weights)
        outputs = len(reference.images) * len(chosen)
        print(
            f"machine: {os.cpu_count()} cores, torch {torch.get_num_threads()} threads, load {os.getloadavg()[0]:.1f}"
        )
        print(f"work: {', '.join(chosen)} on {', '.join(names)}, {outputs} outputs")
        print(f"stand-in weights (random, marked as stand-ins in provenance.csv): {', '.join(stand_ins) or 'none'}")
        rows = time_modes(args, tmp, data, names, chosen, weights, reference)
        rate = reference.rate(chosen)
        print(
            f"reference, the fused network alone in one process: {reference.seconds / len(reference.images):.3f} s "
            f"per LR image of this subset, {rate:.2f} outputs/s (each learned method that network, nn, bicubic free)"
        )
        for label, layout, seconds, fixed in rows:
            print_row(label, layout, outputs, seconds, fixed, rate)
        print(f"load average at the end: {os.getloadavg()[0]:.1f}; several machines: not measured (docs/deployment.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
