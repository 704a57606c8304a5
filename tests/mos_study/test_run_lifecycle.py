"""A benchmark run's life beyond its command (issue 14 #9 #10 #11): heartbeats, runs whose command died, jobs of an
ended run skipped by workers, a broker lost while waiting reported in one line, and the redelivery bound."""

import io
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from mos_study import tasks
from mos_study.models import BenchmarkRun
from mos_study.services import benchmark

pytestmark = pytest.mark.django_db


def make_run(status=BenchmarkRun.Status.RUNNING, heartbeat_age_s=0, **fields):
    run = benchmark.start_run(["Set5"], ["nn"], "/tmp/out", "integer", None)
    heartbeat = None if heartbeat_age_s is None else timezone.now() - timedelta(seconds=heartbeat_age_s)
    BenchmarkRun.objects.filter(pk=run.pk).update(status=status, heartbeat=heartbeat, **fields)
    return BenchmarkRun.objects.get(pk=run.pk)


@pytest.fixture
def one_job(bench_dirs):
    from benchmarks.runner import plan_jobs

    return plan_jobs(["Set5"], ["nn"], bench_dirs.output, data_dir=bench_dirs.data)[0]


# ---------------------------------------------------------------- #10: heartbeats and runs whose command died


def test_a_run_starts_with_a_heartbeat_and_the_command_stamps_it_while_it_works(bench_dirs, monkeypatch):
    monkeypatch.setattr(benchmark, "HEARTBEAT_EVERY_S", 0)
    stamps = []
    real_call = benchmark.Heartbeat.__call__

    def counting(self):
        stamps.append(1)
        real_call(self)

    monkeypatch.setattr(benchmark.Heartbeat, "__call__", counting)
    run = benchmark.run_and_record(["Set5"], ["nn"], progress=False)
    assert run.status == BenchmarkRun.Status.DONE and run.heartbeat is not None
    assert len(stamps) == 5  # one per job (Set5), in-process executor included


def test_heartbeat_updates_the_row_at_most_every_interval(db):
    run = make_run(heartbeat_age_s=1000)
    beat = benchmark.Heartbeat(run, every_s=3600)
    beat()  # too soon after the start: nothing written
    assert BenchmarkRun.objects.get(pk=run.pk).heartbeat < timezone.now() - timedelta(seconds=900)
    beat.every_s = 0
    beat()
    assert BenchmarkRun.objects.get(pk=run.pk).heartbeat > timezone.now() - timedelta(seconds=60)


def test_a_running_run_without_heartbeat_is_marked_failed_when_listed(db, settings):
    settings.SRMOS_RUN_STALE_AFTER_S = 300
    dead = make_run(heartbeat_age_s=301)
    legacy = make_run(heartbeat_age_s=None)
    BenchmarkRun.objects.filter(pk=legacy.pk).update(started=timezone.now() - timedelta(hours=2))
    alive = make_run(heartbeat_age_s=10)
    done = make_run(status=BenchmarkRun.Status.DONE, heartbeat_age_s=10_000)
    assert sorted(benchmark.mark_abandoned_runs()) == sorted([dead.pk, legacy.pk])
    rows = {r.pk: r for r in BenchmarkRun.objects.all()}
    assert rows[dead.pk].status == rows[legacy.pk].status == BenchmarkRun.Status.FAILED
    assert rows[dead.pk].error.startswith("abandoned: its command stopped") and rows[dead.pk].finished
    assert rows[alive.pk].status == BenchmarkRun.Status.RUNNING
    assert rows[done.pk].status == BenchmarkRun.Status.DONE
    assert benchmark.mark_abandoned_runs() == []


def test_run_benchmark_marks_a_killed_commands_run_failed(bench_dirs):
    dead = make_run(heartbeat_age_s=10_000)
    err = io.StringIO()
    call_command("run_benchmark", "--methods", "nn", quiet=True, stdout=io.StringIO(), stderr=err)
    assert f"benchmark run {dead.pk} lost its command" in err.getvalue()
    assert BenchmarkRun.objects.get(pk=dead.pk).status == BenchmarkRun.Status.FAILED


def test_the_admin_list_shows_a_killed_commands_run_as_failed(db, admin_client):
    dead = make_run(heartbeat_age_s=10_000)
    page = admin_client.get("/admin/mos_study/benchmarkrun/")
    assert page.status_code == 200
    assert BenchmarkRun.objects.get(pk=dead.pk).status == BenchmarkRun.Status.FAILED


def test_an_interrupted_run_is_marked_cancelled(bench_dirs, monkeypatch):
    def interrupt(jobs):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        benchmark.run_and_record(["Set5"], ["nn"], progress=False, executor=interrupt)
    run = BenchmarkRun.objects.get()
    assert run.status == BenchmarkRun.Status.CANCELLED and run.finished


# ---------------------------------------------------------------- #9: jobs of an ended run are skipped


@pytest.mark.parametrize(
    "fields",
    [
        {"status": BenchmarkRun.Status.FAILED, "error": "lost the Celery broker"},
        {"status": BenchmarkRun.Status.CANCELLED},
        {"status": BenchmarkRun.Status.DONE},
        {"heartbeat_age_s": 10_000},  # running, but its command died
    ],
)
def test_a_job_of_an_ended_run_is_skipped_by_the_worker(one_job, bench_dirs, fields):
    run = make_run(**fields)
    answer = tasks.generate_output.apply(args=(one_job.to_dict(),), kwargs={"run_id": run.pk}).get()
    assert f"benchmark run {run.pk}" in answer["skipped"]
    assert not (bench_dirs.output / "outputs").exists()  # nothing generated


def test_a_job_of_a_running_run_is_done(one_job, bench_dirs):
    run = make_run(heartbeat_age_s=5)
    answer = tasks.generate_output.apply(args=(one_job.to_dict(),), kwargs={"run_id": run.pk}).get()
    assert answer["method"] == "nn" and "skipped" not in answer


def test_a_job_is_done_when_its_run_cannot_be_read(one_job, bench_dirs, monkeypatch):
    from django.db import OperationalError

    def unreachable(run_id):
        raise OperationalError("connection refused")

    monkeypatch.setattr(benchmark, "run_end_reason", unreachable)
    answer = tasks.generate_output.apply(args=(one_job.to_dict(),), kwargs={"run_id": 1}).get()
    assert answer["method"] == "nn"


# ---------------------------------------------------------------- #9: the broker lost while waiting


class LostBackend:
    """An AsyncResult whose result backend connection is gone."""

    def __init__(self, error):
        self.error = error

    def get(self, **kwargs):
        raise self.error


JOB = SimpleNamespace(method="nn", dataset="Set5", image="baby")


def retry_limit_exceeded():
    """What Celery's Redis result consumer raises once its reconnection attempts are used up."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    try:
        raise RedisConnectionError("Connection closed by server.")
    except RedisConnectionError as exc:
        try:
            raise RuntimeError("Retry limit exceeded while trying to reconnect") from exc
        except RuntimeError as wrapped:
            return wrapped


@pytest.mark.parametrize("error", ["redis", "kombu", "oserror", "celery"])
def test_a_lost_broker_is_one_line_that_blames_no_worker(error, settings):
    from kombu.exceptions import OperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError

    settings.CELERY_BROKER_URL = "redis://:secret@127.0.0.1:6390/0"
    exc = {
        "redis": RedisConnectionError("Error 111 connecting to 127.0.0.1:6390. Connection refused."),
        "kombu": OperationalError("Error 111"),
        "oserror": ConnectionResetError(104, "Connection reset by peer"),
        "celery": retry_limit_exceeded(),
    }[error]
    with pytest.raises(tasks.BrokerError) as raised:
        tasks.wait_for(LostBackend(exc), tasks.batch_name([JOB]), 60, "celery")
    message = str(raised.value)
    assert message.startswith(
        "lost the Celery broker at redis://:**@127.0.0.1:6390/0 while waiting for nn on Set5/baby"
    )
    assert "failed on a worker" not in message and "\n" not in message and "secret" not in message


def test_a_workers_error_still_names_the_worker():
    class Failed:
        def get(self, **kwargs):
            assert kwargs["propagate"] is False
            return ConnectionError("the plugin's own network call failed")

    with pytest.raises(tasks.JobFailedError, match="nn on Set5/baby failed on a worker: ConnectionError"):
        tasks.wait_for(Failed(), tasks.batch_name([JOB]), 60, "celery")


def test_a_skipped_job_fails_the_wait_clearly():
    class Skipped:
        def get(self, **kwargs):
            return {"skipped": "benchmark run 3 has ended (failed: ...)"}

    with pytest.raises(tasks.JobFailedError, match="was skipped by a worker: benchmark run 3 has ended"):
        tasks.wait_for(Skipped(), tasks.batch_name([JOB]), 60, "celery")


def test_the_wait_stamps_the_heartbeat_between_slices(monkeypatch):
    from celery.exceptions import TimeoutError as CeleryTimeoutError

    class Slow:
        calls = 0

        def get(self, timeout, **kwargs):
            assert timeout <= tasks.WAIT_SLICE_S
            Slow.calls += 1
            if Slow.calls < 3:
                raise CeleryTimeoutError()
            return {"method": "nn"}

    beats = []
    token = tasks.current_heartbeat.set(lambda: beats.append(1))
    try:
        assert tasks.wait_for(Slow(), tasks.batch_name([JOB]), 600, "celery") == {"method": "nn"}
    finally:
        tasks.current_heartbeat.reset(token)
    assert len(beats) == 3


def test_revoke_never_hides_the_runs_error(monkeypatch):
    class Unrevokable:
        def revoke(self, **kwargs):
            raise OSError("broker gone")

    monkeypatch.setattr(django_settings, "CELERY_BROKER_URL", "redis://127.0.0.1:1/0", raising=False)
    tasks.revoke_quietly(Unrevokable())  # no exception


# ---------------------------------------------------------------- #11: a killed worker's jobs within two minutes


def test_default_broker_settings_redeliver_a_killed_workers_job_within_two_minutes():
    options = django_settings.CELERY_BROKER_TRANSPORT_OPTIONS
    sweep_s = options["unacked_restore_interval"] * options["unacked_restore_throttle"]
    assert options["visibility_timeout"] + sweep_s <= 110  # + the job itself: about two minutes
    assert options["unacked_mutex_expire"] <= 60
    assert django_settings.CELERY_TASK_ACKS_LATE and django_settings.CELERY_TASK_REJECT_ON_WORKER_LOST
    assert django_settings.CELERY_WORKER_PREFETCH_MULTIPLIER == 1
    # the command waits longer than the redelivery before it blames the workers
    assert tasks.default_timeout() >= options["visibility_timeout"] + sweep_s


def test_interrupted_command_says_so_in_one_line(bench_dirs, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("mos_study.management.commands.run_benchmark.run_and_record", interrupt)
    with pytest.raises(CommandError, match="interrupted: the run is marked cancelled"):
        call_command("run_benchmark", "--methods", "nn", quiet=True, stdout=io.StringIO())
