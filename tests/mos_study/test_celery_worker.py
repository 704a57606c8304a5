"""The Celery side: the task's retry rules; ``run_benchmark`` and a study created from the admin (its outputs made
by the task ``prepare_study``) against a real worker, Redis and PostgreSQL."""

import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from mos_study import tasks
from tests.support.live import REPO, celery_worker, count_rows, forget_queue, run_script

from .conftest import files_under


# ---------------------------------------------------------------- the task, in-process


@pytest.fixture
def one_job(bench_dirs):
    from benchmarks.runner import plan_jobs

    return plan_jobs(["Set5"], ["nn"], bench_dirs.output, data_dir=bench_dirs.data)[0]


def test_task_result_is_json_and_file_is_stored(one_job, bench_dirs):
    result = tasks.run_in_process(one_job)
    assert json.loads(json.dumps(result)) == result
    assert (bench_dirs.output / result["path"]).is_file()
    assert [p.name for p in files_under(bench_dirs.output)] == [f"{result['sha256']}.png"]  # no temp file left


def test_transient_error_is_retried(one_job, monkeypatch):
    from benchmarks import runner

    calls = []
    real = runner.execute_job

    def flaky(job, upscaler=None):
        calls.append(job["image"])
        if len(calls) == 1:
            raise OSError("connection reset by peer")
        return real(job, upscaler)

    monkeypatch.setattr(runner, "execute_job", flaky)
    monkeypatch.setattr(tasks.time, "sleep", lambda seconds: None)
    result = tasks.run_in_process(one_job)
    assert len(calls) == 2 and result["method"] == "nn"


def test_retries_end_with_the_jobs_own_error(one_job, monkeypatch):
    from benchmarks import runner

    calls = []

    def broken(job, upscaler=None):
        calls.append(1)
        raise OSError("disk unplugged")

    delays = []
    monkeypatch.setattr(runner, "execute_job", broken)
    monkeypatch.setattr(tasks.time, "sleep", delays.append)
    with pytest.raises(OSError, match="disk unplugged"):
        tasks.run_in_process(one_job)
    assert len(calls) == 1 + tasks.generate_output.max_retries
    assert len(delays) == tasks.generate_output.max_retries and all(d <= 60 for d in delays)


def test_permanent_error_is_not_retried(one_job, monkeypatch):
    from benchmarks import runner

    calls = []

    def missing(job, upscaler=None):
        calls.append(1)
        raise FileNotFoundError("gone")

    monkeypatch.setattr(runner, "execute_job", missing)
    with pytest.raises(FileNotFoundError):
        tasks.run_in_process(one_job)
    assert calls == [1]


def test_default_timeout_outlasts_redelivery_of_a_lost_task(settings):
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 900}
    assert tasks.default_timeout() == 900 + 120
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    assert tasks.default_timeout() == tasks.MIN_TIMEOUT_S


def test_task_options_make_it_safe_to_redeliver():
    task = tasks.generate_output
    assert task.acks_late and task.max_retries and task.retry_backoff
    assert OSError in task.autoretry_for


# ---------------------------------------------------------------- a real worker


def failing_upscale(lr):
    """A plugin method whose every job fails on the worker."""
    raise ValueError("this plugin always fails")


def manage(env, *args, timeout=300):
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


def manage_in_background(env, *args):
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process, timeout=300):
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def worker_env(tmp_path, redis_url, database_url, data_dir):
    """The environment of a worker and of the commands that send it tasks."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": redis_url,
        "CELERY_RESULT_BACKEND": redis_url,
        "SRMOS_MEDIA_ROOT": str(tmp_path / "media"),
        "SRMOS_OUTPUT_DIR": str(tmp_path / "benchmark"),
        "SRMOS_DATA_DIR": str(data_dir),
        "SRMOS_WEIGHTS_DIR": str(tmp_path / "weights"),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PYTHONUNBUFFERED": "1",
    }


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.postgres
def test_run_benchmark_on_a_real_worker(tmp_path, require_redis, postgres_database, embedded_datasets):
    queue, idle_queue = f"srmos-test-{uuid.uuid4().hex[:8]}", f"srmos-idle-{uuid.uuid4().hex[:8]}"
    env = worker_env(tmp_path, require_redis, postgres_database, embedded_datasets)
    migrated = manage(env, "migrate", "--noinput")
    assert migrated.returncode == 0, migrated.stderr

    log = tmp_path / "worker.log"
    with celery_worker(env, queue, log):
        # Four runs at once (their jobs wait in Redis while the worker starts): one that works, one whose every job
        # fails on the worker, one on a queue no worker listens to, one with a broker that does not answer.
        no_broker = {**env, "CELERY_BROKER_URL": "redis://127.0.0.1:1/15", "CELERY_RESULT_BACKEND": ""}
        runs = {
            "done": ("nn,bicubic", queue, "180", {**env, "SRMOS_JOBS_PER_TASK": "4"}),
            "broken": (f"{__name__}:failing_upscale", queue, "180", env),
            "idle": ("nn", idle_queue, "2", env),
            "no broker": ("nn", queue, "180", no_broker),
        }
        started = {
            name: manage_in_background(
                run_env,
                "run_benchmark",
                "--datasets",
                "Set5",
                "--methods",
                methods,
                "--queue",
                on_queue,
                "--timeout",
                timeout,
                "--quiet",
            )
            for name, (methods, on_queue, timeout, run_env) in runs.items()
        }
        finished = {name: finish(process) for name, process in started.items()}
        worker_log = log.read_text(errors="replace") if log.exists() else "(no worker log)"

        done = finished["done"]
        assert done.returncode == 0, done.stderr + worker_log
        assert "10 outputs generated" in done.stdout and "| bicubic" in done.stdout
        assert count_rows(postgres_database, "SELECT count(*) FROM mos_study_benchmarkrun WHERE status = 'done'") == 1
        assert count_rows(postgres_database, "SELECT count(*) FROM mos_study_output") == 10
        assert count_rows(postgres_database, "SELECT count(*) FROM mos_study_metric WHERE psnr_y > 20") == 10
        assert (
            count_rows(postgres_database, "SELECT count(DISTINCT output_id) FROM mos_study_benchmarkrun_outputs") == 10
        )
        assert len(files_under(tmp_path / "media" / "outputs")) == 10
        # The worker, not the command, ran the jobs: 2 methods x 5 images in tasks of at most 4 jobs (4 + 1 each;
        # SRMOS_JOBS_PER_TASK, the other runs one job per task).
        assert worker_log.count("Task mos_study.generate_outputs[") >= 4
        assert "generated 4 outputs with bicubic" in worker_log and "generated 1 outputs with bicubic" in worker_log
        # (exactly once each is the database's count above; the log may also hold a discarded revoked job)
        assert worker_log.count("succeeded in") >= 4

        # No worker on idle_queue: a clear timeout in one line, exit code != 0, the run marked failed, empty.
        idle = finished["idle"]
        assert idle.returncode != 0 and "Traceback" not in idle.stderr
        assert "CommandError: no Celery worker answered within 2 s" in idle.stderr, idle.stderr
        # A job failing on the worker: its error comes back in one line, and the run is marked failed.
        broken = finished["broken"]
        assert broken.returncode != 0 and "Traceback" not in broken.stderr
        assert "failed on a worker: ValueError: this plugin always fails" in broken.stderr, broken.stderr
        # A broker that does not answer: one line at once, not Celery's minutes of reconnecting.
        unreachable = finished["no broker"]
        assert unreachable.returncode != 0 and "Traceback" not in unreachable.stderr
        assert "CommandError: cannot reach the Celery broker at redis://127.0.0.1:1/15" in unreachable.stderr
        for error in ("no Celery worker answered within 2 s%", "%this plugin always fails%", "cannot reach%"):
            assert (
                count_rows(
                    postgres_database,
                    f"SELECT count(*) FROM mos_study_benchmarkrun WHERE status = 'failed' AND error LIKE '{error}'",
                )
                == 1
            )
        assert (
            count_rows(
                postgres_database,
                "SELECT count(*) FROM mos_study_benchmarkrun_outputs o JOIN "
                "mos_study_benchmarkrun r ON r.id = o.benchmarkrun_id "
                "WHERE r.status = 'failed'",
            )
            == 0
        )
    forget_queue(require_redis, idle_queue)


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.postgres
def test_a_study_created_in_the_admin_is_prepared_by_a_real_worker(
    tmp_path, require_redis, postgres_database, embedded_datasets
):
    """The admin's form returns at once with the study preparing (no benchmark in the request); the worker's task
    makes the outputs, the stimuli, and opens the study."""
    queue = f"srmos-prepare-{uuid.uuid4().hex[:8]}"
    env = {**worker_env(tmp_path, require_redis, postgres_database, embedded_datasets), "SRMOS_TEST_QUEUE": queue}
    migrated = manage(env, "migrate", "--noinput")
    assert migrated.returncode == 0, migrated.stderr
    log = tmp_path / "worker.log"
    with celery_worker(env, queue, log):
        answer = run_script(env, "create_study_in_admin.py", "from-admin", "Set5", "nn,bicubic")
        assert answer["status_code"] == 302 and "/change/" in answer["location"], answer
        assert answer["study_status"] == "preparing" and answer["stimuli"] == 0, answer
        assert not answer["loaded_torch"] and not answer["loaded_runner"], answer  # the request ran no benchmark
        deadline = time.monotonic() + 300
        status = "preparing"
        while status == "preparing" and time.monotonic() < deadline:
            time.sleep(1)
            status = count_rows(postgres_database, "SELECT status FROM mos_study_study WHERE name = %s", "from-admin")
        worker_log = log.read_text(errors="replace") if log.exists() else "(no worker log)"
    assert status == "open", worker_log
    assert "Task mos_study.prepare_study[" in worker_log and "succeeded in" in worker_log
    # 4 images x (nn, bicubic, hr) shown (the calibration image is never a test trial), one image as NN and HR for
    # calibration
    assert count_rows(postgres_database, "SELECT count(*) FROM mos_study_stimulus WHERE NOT is_calibration") == 12
    assert count_rows(postgres_database, "SELECT count(*) FROM mos_study_stimulus WHERE is_calibration") == 2
    assert count_rows(postgres_database, "SELECT count(*) FROM mos_study_benchmarkrun WHERE status = 'done'") == 1
