"""Celery tasks: benchmark jobs (one method on one image each), a few of one method per task.

``generate_outputs`` wraps ``benchmarks.runner.execute_jobs`` for a batch of ``benchmarks.runner.Job``s of one method
(``SRMOS_JOBS_PER_TASK``, default 1: on a GPU the network upscales same-sized images as one batch and the task's
round trip is paid once; on CPUs, one image per network call, batches only spread the work less evenly over the
workers), and ``generate_output`` for one; jobs cross the broker as JSON (``Job.to_dict()``/``Job.from_dict``): the
output is stored content-addressed and atomically
(``sr_models.imageio.write_png``: temp file + ``os.replace``), so a retried or duplicated task rewrites nothing and
leaves no half-written file. It writes no database row (the command records everything at the end of a run); it
reads one: a job of a run that has ended (failed, cancelled, or abandoned by a killed command) is skipped, so a run's
jobs left in the queue are not done by workers that come later. Acknowledged late (settings), so a job whose worker
dies is delivered again.

``celery_executor`` is the executor that ``benchmarks.runner.run_benchmark`` calls with the jobs still to do.

``prepare_study`` (``mos_study.prepare_study``) makes a *preparing* study's missing outputs, with its jobs run in the
task's own process, then builds its stimuli and opens it (``services.study_setup.prepare_study``), so that creating a
study never runs a benchmark inside a web request.
"""

import contextvars
import logging
import time
from collections import OrderedDict

from celery import group, shared_task
from celery.exceptions import Retry
from celery.exceptions import TimeoutError as CeleryTimeoutError
from django.conf import settings
from django.db import InterfaceError, OperationalError

from sr_models.errors import SRMOSError

logger = logging.getLogger(__name__)

MIN_TIMEOUT_S = 600  # the shortest default wait for the next result before we decide that no worker is listening
WAIT_SLICE_S = 10  # a result is waited for in slices this long, the run's heartbeat stamped between them
UPSCALER_CACHE_SIZE = 4  # loaded models kept per worker process, so a method's weights load once per process
# Jobs of one method sent as one task: batched inference and one round trip, but a batch must finish within the
# broker's visibility timeout (SRMOS_TASK_VISIBILITY_TIMEOUT, 90 s) or it is delivered again (harmless, wasted).
DEFAULT_JOBS_PER_TASK = 1


def transient_errors():
    """Errors worth a retry: I/O hiccups and lost broker or database connections."""
    errors = [OSError, OperationalError, InterfaceError]
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        errors += [RedisConnectionError, RedisTimeoutError]
    except ImportError:  # redis is only needed with a Redis broker
        pass
    return tuple(errors)


# An OSError that will not go away by waiting: retrying it only delays the clear error.
PERMANENT_OS_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)


def default_timeout():
    """Seconds to wait for each next result: longer than the broker's visibility timeout, after which a task whose
    worker died is delivered again, so that a run survives a lost worker."""
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None) or {}
    return max(MIN_TIMEOUT_S, options.get("visibility_timeout", 0) + 120)


class WorkerTimeoutError(SRMOSError):
    """No result came back from the Celery workers in time."""


class BrokerError(SRMOSError):
    """The Celery broker cannot be reached."""


class JobFailedError(SRMOSError):
    """A job failed on a worker; the message carries the worker's error."""


# The running benchmark's heartbeat (services.benchmark.Heartbeat): called between jobs and while waiting for results,
# whichever executor runs the jobs.
current_heartbeat = contextvars.ContextVar("srmos_benchmark_heartbeat", default=None)


def beat():
    heartbeat = current_heartbeat.get()
    if heartbeat is not None:
        heartbeat()


_upscalers = OrderedDict()


def cached_upscaler(job):
    """The Job's method, loaded once per process for the same method, weights and device."""
    from benchmarks.runner import load_upscaler

    key = (job.method, job.weights_path, job.weights_sha256, job.device)
    if key not in _upscalers:
        _upscalers[key] = load_upscaler(job)
        while len(_upscalers) > UPSCALER_CACHE_SIZE:
            _upscalers.popitem(last=False)
    _upscalers.move_to_end(key)
    return _upscalers[key]


# Benchmark job tasks: acknowledged late (a job whose worker dies is delivered again), retried with backoff on
# transient errors, never on errors that waiting cannot mend.
JOB_TASK_OPTIONS = dict(
    autoretry_for=transient_errors(),
    dont_autoretry_for=PERMANENT_OS_ERRORS,
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=5,
    acks_late=True,
)


@shared_task(name="mos_study.generate_output", **JOB_TASK_OPTIONS)
def generate_output(job, run_id=None):
    """Generate, store and measure one (method, image) output; returns the runner's JSON-serialisable result row.

    ``job`` is a ``benchmarks.runner.Job`` as ``Job.to_dict()`` gives it: task arguments travel as JSON. With
    ``run_id`` (the ``BenchmarkRun`` it belongs to), a job whose run has ended is not done: it returns
    ``{"skipped": reason}``.
    """
    from benchmarks.runner import Job, execute_job

    spec = Job.from_dict(job)
    ended = run_has_ended(run_id)
    if ended:
        logger.info("skipped %s/%s with %s: %s", spec.dataset, spec.image, spec.method, ended)
        return {"skipped": ended}
    result = execute_job(job, cached_upscaler(spec))
    logger.info("generated %s/%s with %s -> %s", spec.dataset, spec.image, spec.method, result["path"])
    return result


@shared_task(name="mos_study.generate_outputs", **JOB_TASK_OPTIONS)
def generate_outputs(jobs, run_id=None):
    """``generate_output`` for a batch of jobs of one method (``benchmarks.runner.group_jobs``), upscaled together:
    the list of their result rows, in order, or ``{"skipped": reason}`` when their run has ended."""
    from benchmarks.runner import Job, execute_jobs

    specs = [Job.from_dict(job) for job in jobs]
    ended = run_has_ended(run_id)
    if ended:
        logger.info("skipped %d jobs with %s: %s", len(specs), specs[0].method, ended)
        return {"skipped": ended}
    results = execute_jobs(specs, cached_upscaler(specs[0]))
    logger.info("generated %d outputs with %s", len(results), specs[0].method)
    return results


def jobs_per_task():
    return max(1, int(getattr(settings, "SRMOS_JOBS_PER_TASK", DEFAULT_JOBS_PER_TASK)))


def run_has_ended(run_id):
    """Why the job's run is over (a line), or "" while it runs, or when it cannot be told (then the job is done:
    jobs are idempotent)."""
    if run_id is None:
        return ""
    from .services.benchmark import run_end_reason

    try:
        return run_end_reason(run_id)
    except (OperationalError, InterfaceError) as exc:
        logger.warning("cannot read benchmark run %s (%s): doing its job anyway", run_id, exc)
        return ""


def is_eager():
    return bool(getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False))


def celery_executor(timeout=None, queue=None, progress=True, run_id=None):
    """An executor for ``run_benchmark``: jobs run in-process when Celery is eager, else as a group on workers.

    With workers, it waits at most ``timeout`` seconds (default ``default_timeout()``) for each next result, so a
    queue that no worker listens to ends in a clear ``WorkerTimeoutError`` rather than a hang. ``run_id`` (the
    ``BenchmarkRun``) goes with each job, so that workers skip the jobs of a run that has ended.
    """
    timeout = default_timeout() if timeout is None else timeout

    def execute(jobs):
        if is_eager():
            return run_eagerly(jobs, progress)
        return run_on_workers(jobs, timeout, queue, progress, run_id=run_id)

    return execute


def run_eagerly(jobs, progress):
    from tqdm import tqdm

    results = []
    for job in tqdm(jobs, desc="benchmark", unit="image", disable=not progress):
        beat()
        results.append(run_in_process(job))
    return results


def run_in_process(job):
    """One job through Celery's eager path, retried like on a worker (after the same backoff delays); when the
    retries are used up, the job's own error is raised."""
    retries = 0
    while True:
        try:
            # Also run inside the task prepare_study: an eager result never waits on a worker, so it may be read there.
            result = generate_output.apply(args=(job.to_dict(),), retries=retries, throw=True)
            return result.get(disable_sync_subtasks=False)
        except Retry as retry:  # an eager retry comes back to us instead of going to the broker
            retries += 1
            time.sleep(retry.when if isinstance(retry.when, (int, float)) else 0)


def run_on_workers(jobs, timeout, queue, progress, run_id=None):
    from tqdm import tqdm

    from benchmarks.runner import group_jobs

    queue = queue or default_queue()
    check_broker()
    batches = group_jobs(jobs, jobs_per_task())
    tasks = (generate_outputs.s([job.to_dict() for job in batch], run_id=run_id) for batch in batches)
    with broker_loss_reported(f"sending the run's {len(jobs)} jobs to queue {queue!r}"):
        group_result = group(tasks).apply_async(queue=queue)
    results = {}
    try:
        with tqdm(
            total=len(jobs), desc=f"benchmark (workers, queue {queue})", unit="image", disable=not progress
        ) as bar:
            for batch, async_result in zip(batches, group_result.results):
                for result in wait_for(async_result, batch_name(batch), timeout, queue):
                    results[result["job_key"]] = result
                bar.update(len(batch))
    except BaseException:
        revoke_quietly(group_result)  # do not leave the rest of a failed run for workers to pick up later
        raise
    group_result.forget()  # the results are in hand: free them in the result backend
    return [results[job.key] for job in jobs]


def batch_name(batch):
    """How a batch of jobs is named in errors: its first job, and how many more."""
    first = batch[0]
    more = f" and {len(batch) - 1} more images" if len(batch) > 1 else ""
    return f"{first.method} on {first.dataset}/{first.image}{more}"


def broker_errors():
    """Errors of a lost broker or result backend connection, raised in this process (not a worker's)."""
    from kombu.exceptions import OperationalError as BrokerOperationalError

    errors = [OSError, BrokerOperationalError]
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        errors += [RedisConnectionError, RedisTimeoutError]
    except ImportError:  # redis is only needed with a Redis broker
        pass
    return tuple(errors)


class broker_loss_reported:
    """A broker or result backend lost during the block raises one ``BrokerError`` line; Celery's own reconnection
    messages (one per retry, CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS) are kept out of the log meanwhile."""

    QUIET = ("celery.backends.redis", "celery.backends.asynchronous", "celery.backends.base")

    def __init__(self, doing):
        self.doing = doing

    def __enter__(self):
        for name in self.QUIET:
            logging.getLogger(name).addFilter(self.drop)
        return self

    @staticmethod
    def drop(record):
        return False

    def __exit__(self, exc_type, exc, traceback):
        for name in self.QUIET:
            logging.getLogger(name).removeFilter(self.drop)
        lost = lost_connection(exc)
        if lost is not None:
            raise BrokerError(
                f"lost the Celery broker at {redacted(settings.CELERY_BROKER_URL)} while {self.doing} "
                f"({type(lost).__name__}: {lost}); the run is marked failed and workers skip its remaining jobs: "
                f"run the command again once the broker is back (outputs already stored are reused)"
            ) from None
        return False


def lost_connection(exc):
    """The broker or backend connection error behind ``exc`` (Celery wraps one that outlasted its reconnection
    attempts in a RuntimeError), or None."""
    if isinstance(exc, CeleryTimeoutError):  # no result yet: not a lost connection
        return None
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, broker_errors()) and not isinstance(exc, SRMOSError):
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def revoke_quietly(group_result):
    """Revoke a failed run's jobs on the workers listening now, if the broker answers at once; never raises (the
    workers also skip a job whose run has ended, which covers workers that start later)."""
    try:
        with generate_output.app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0.2, timeout=2)
            group_result.revoke(connection=connection)
    except Exception as exc:  # noqa: BLE001 -- the run's own error matters, not this clean-up
        logger.debug("could not revoke the jobs of a failed run: %s", exc)


def check_broker():
    """Fail at once, in one line, when the broker does not answer (Celery itself would retry for long, loudly)."""
    from kombu.exceptions import OperationalError as BrokerOperationalError

    try:
        with generate_output.app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=2, interval_start=0.2, interval_step=0.5, timeout=5)
    except (BrokerOperationalError, OSError) as exc:
        raise BrokerError(
            f"cannot reach the Celery broker at {redacted(settings.CELERY_BROKER_URL)} ({exc}): start "
            f"it, correct CELERY_BROKER_URL, or unset it to run in-process"
        ) from None


def wait_for(async_result, what, timeout, queue):
    """The result of the task doing ``what`` (``batch_name``), waited for at most ``timeout`` seconds, in slices
    with the run's heartbeat between them.

    The result is read without ``propagate``, so that an error raised here is this process's own (the broker or
    result backend lost), and a worker's error comes back as the result."""
    deadline = time.monotonic() + timeout
    while True:
        beat()
        left = deadline - time.monotonic()
        try:
            with broker_loss_reported(f"waiting for {what}"):
                value = async_result.get(
                    timeout=max(0.01, min(WAIT_SLICE_S, left)), propagate=False, disable_sync_subtasks=False
                )
        except CeleryTimeoutError:
            if time.monotonic() < deadline:
                continue
            raise WorkerTimeoutError(
                f"no Celery worker answered within {timeout:g} s (waiting for {what} on queue {queue!r}, broker "
                f"{redacted(settings.CELERY_BROKER_URL)}): start one with `celery -A config worker -Q {queue}`, "
                f"give busy workers longer with --timeout, or unset CELERY_BROKER_URL to run in-process"
            ) from None
        if isinstance(value, BaseException):  # the worker's error, rebuilt by Celery from its JSON result
            raise JobFailedError(f"{what} failed on a worker: {type(value).__name__}: {value}") from value
        if isinstance(value, dict) and "skipped" in value:
            raise JobFailedError(f"{what} was skipped by a worker: {value['skipped']}")
        return value


def default_queue():
    return getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", None) or "celery"


def redacted(url):
    """A broker URL without its password, for messages."""
    from kombu.utils.url import maybe_sanitize_url

    return maybe_sanitize_url(url or "")


# ---------------------------------------------------------------- preparing a study


@shared_task(name="mos_study.prepare_study", acks_late=True)
def prepare_study(study_id, data_dir=None):
    """Make a preparing study's missing outputs, then its stimuli, and open it (or mark it failed with the error);
    see ``services.study_setup``. Returns the study's status."""
    from .services import study_setup

    return study_setup.prepare_study(study_id, data_dir=data_dir, executor=in_process_executor)


def in_process_executor(jobs):
    """Run a benchmark's jobs in this process, retried like tasks: a task must not wait for other tasks (with one
    worker process, the jobs would wait behind the task that waits for them)."""
    return run_eagerly(jobs, progress=False)


# ---------------------------------------------------------------- the dashboard's results


@shared_task(name="mos_study.compute_results", acks_late=True)
def compute_results(study_id):
    """Compute a study's results and store them for the dashboard (``services.results_cache.compute``): queued,
    debounced, when ratings arrive; at most one per study at a time. Returns the outcome as a line."""
    from .services import results_cache

    outcome = results_cache.compute(study_id)
    logger.info("results of study %s: %s", study_id, outcome)
    return outcome
