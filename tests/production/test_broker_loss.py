"""The broker lost in the middle of a benchmark (its own redis-server, killed while a real worker runs a job): the
command stops with one line that names the broker, the run is marked failed, and the run's jobs that a worker meets
afterwards are skipped, not done (issue 14 #9)."""

import subprocess
import sys
import time
import uuid

import pytest

from tests.support.live import REPO, app_env, count_rows, fresh_database, free_port, manage

from .test_worker_kill import SLOW, kill_group, start_worker, wait_for


def start_redis(port):
    process = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )

    def answers():
        import redis

        try:
            return redis.Redis(port=port, socket_connect_timeout=0.5).ping()
        except redis.RedisError:
            return False

    wait_for(answers, 20, f"redis-server on port {port}")
    return process


def run_benchmark(env, queue, timeout="120"):
    return subprocess.Popen(
        [sys.executable, "manage.py", "run_benchmark", "--methods", f"{SLOW},bicubic", "--queue", queue]
        + ["--timeout", timeout, "--quiet"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.parametrize("back_within_seconds", [False, True])
def test_losing_the_broker_mid_run_is_one_line_and_its_jobs_are_skipped(
    require_postgres, tmp_path, embedded_datasets, back_within_seconds
):
    port = free_port()
    broker = f"redis://127.0.0.1:{port}/0"
    queue = f"srmos-broker-loss-{uuid.uuid4().hex[:8]}"
    markers = tmp_path / "markers"
    markers.mkdir()
    redis_server = start_redis(port)
    workers = []
    with fresh_database(require_postgres) as database_url:
        env = app_env(
            tmp_path,
            database_url,
            CELERY_BROKER_URL=broker,
            SRMOS_DATA_DIR=embedded_datasets,
            SRMOS_TEST_MARKERS=markers,
            SRMOS_TEST_SLOW_SECONDS=3,
        )
        manage(env, "migrate", "--noinput")
        try:
            workers.append(start_worker(env, queue, "first", tmp_path / "worker1.log"))
            command = run_benchmark(env, queue)
            wait_for(lambda: any(markers.iterdir()), 120, "the worker to start a job")
            kill_group(redis_server)
            if back_within_seconds:
                time.sleep(1)
                redis_server = start_redis(port)
            started = time.monotonic()
            stdout, stderr = command.communicate(timeout=120)
            took = time.monotonic() - started
            lines = [line for line in stderr.splitlines() if line.strip()]
            assert command.returncode != 0, stdout + stderr
            assert len(lines) == 1 and "Traceback" not in stderr, stderr
            assert lines[0].startswith(f"CommandError: lost the Celery broker at {broker} while waiting for"), stderr
            assert "failed on a worker" not in stderr
            assert took < 60
            failed = count_rows(
                database_url,
                "SELECT count(*) FROM mos_study_benchmarkrun WHERE status = 'failed' AND error LIKE 'lost the Celery%'",
            )
            assert failed == 1
        finally:
            for worker in workers:
                kill_group(worker)
            kill_group(redis_server)

        # The failed run's jobs, still queued where the broker keeps its data: a worker that comes later skips them.
        redis_server = start_redis(port)
        try:
            run_id = count_rows(database_url, "SELECT max(id) FROM mos_study_benchmarkrun")
            send = (
                "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings'); django.setup();"
                "from benchmarks.runner import plan_jobs; from mos_study.tasks import generate_output;"
                f"jobs = plan_jobs(['Set5'], ['bicubic'], {str(tmp_path / 'late')!r},"
                f" data_dir={str(embedded_datasets)!r});"
                f"[generate_output.apply_async(args=(j.to_dict(),), kwargs={{'run_id': {run_id}}}, queue={queue!r})"
                " for j in jobs]"
            )
            subprocess.run([sys.executable, "-c", send], cwd=REPO, env=env, check=True, timeout=120)
            late = start_worker(env, queue, "late", tmp_path / "worker2.log")
            try:
                log = tmp_path / "worker2.log"
                wait_for(lambda: log.exists() and log.read_text().count("succeeded in") >= 5, 120, "the late worker")
            finally:
                kill_group(late)
            text = log.read_text()
            assert text.count(f"benchmark run {run_id} has ended (failed: lost the Celery broker") >= 5, text[-3000:]
            assert not (tmp_path / "late").exists()  # nothing generated for the ended run
        finally:
            kill_group(redis_server)
