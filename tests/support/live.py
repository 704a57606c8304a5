"""Helpers for tests that run the real app: a fresh PostgreSQL database, manage.py, gunicorn and Celery subprocesses.

Every subprocess gets its settings through the environment, as in the compose deployment.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")


@contextmanager
def fresh_database(admin_url):
    """A new, empty PostgreSQL database (its URL), dropped afterwards whatever happens."""
    import psycopg

    name = f"srmos_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin_url)
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def app_env(tmp_path, database_url, **extra):
    """The environment of a server or worker process on ``database_url`` with its files under ``tmp_path``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SRMOS_", "DATABASE_", "CELERY_"))}
    env.update(
        DATABASE_URL=database_url,
        DJANGO_SECRET_KEY="test-" + uuid.uuid4().hex * 2,
        SRMOS_MEDIA_ROOT=str(tmp_path / "media"),
        SRMOS_OUTPUT_DIR=str(tmp_path / "benchmark"),
        SRMOS_WEIGHTS_DIR=str(tmp_path / "weights"),
        PYTHONUNBUFFERED="1",
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


def manage(env, *args, timeout=300):
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def seed_study(env, *, images=6, methods=("nn", "bicubic"), name="load"):
    """Migrate and create a study of ``images`` x ``methods`` small synthetic outputs; returns its facts."""
    manage(env, "migrate", "--noinput")
    return run_script(env, "seed_study.py", name, images, ",".join(methods))


def run_script(env, script, *args, timeout=300):
    """Run ``tests/support/<script>`` with ``env``; returns the JSON object its last line prints."""
    out = subprocess.run(
        [sys.executable, str(Path(__file__).with_name(script)), *map(str, args)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@contextmanager
def celery_worker(env, queue, log_path):
    """A Celery worker (one process, solo pool) on ``queue``; stopped, and ``queue`` emptied, afterwards."""
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "-Q",
            queue,
            "-n",
            f"{queue}@%h",
            "--loglevel=INFO",
            f"--logfile={log_path}",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield worker
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        forget_queue(env["CELERY_BROKER_URL"], queue)


def forget_queue(redis_url, queue):
    import redis

    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"*{queue}*"):
        client.delete(key)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    """gunicorn with docker/gunicorn.conf.py on a free loopback port."""

    def __init__(self, env, log_path, workers=2, threads=4, port=None):
        self.port = port or free_port()
        self.env = dict(
            env,
            GUNICORN_BIND=f"127.0.0.1:{self.port}",
            GUNICORN_WORKERS=str(workers),
            GUNICORN_THREADS=str(threads),
            GUNICORN_ACCESSLOG="",
            GUNICORN_WORKER_TMP_DIR="/dev/shm",
        )
        self.log_path = log_path
        self.process = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout=60):
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [str(GUNICORN), "-c", "docker/gunicorn.conf.py", "config.wsgi"],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {Path(self.log_path).read_text()[-3000:]}")
            if self.answers():
                return self
            time.sleep(0.3)
        raise RuntimeError("gunicorn did not answer in time")

    def answers(self):
        """The login page answers 200 (as a proxy would ask: HTTPS said, an allowed host named)."""
        try:
            status, _, _ = self.get("/login/")
        except OSError:
            return False
        return status == 200

    def get(self, path, headers=None):
        headers = {"Host": "localhost", "X-Forwarded-Proto": "https", **(headers or {})}
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request("GET", path, headers={k: v for k, v in headers.items() if v is not None})
            response = connection.getresponse()
            return response.status, response.headers, response.read()
        finally:
            connection.close()

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Graceful stop (SIGTERM: requests in flight finish), then SIGKILL the process group if needed."""
        if self.process is None or self.process.poll() is not None:
            return
        if sig == signal.SIGKILL:
            os.killpg(self.process.pid, signal.SIGKILL)  # a crash takes the workers down with the master
        else:
            self.process.send_signal(sig)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        # Orphaned workers would keep the port and answer for a server that is gone.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            except OSError:
                return
            time.sleep(0.1)
        raise RuntimeError(f"port {self.port} still answers after gunicorn stopped")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def count_rows(database_url, sql, *params):
    import psycopg

    with psycopg.connect(database_url) as connection:
        return connection.execute(sql, params or None).fetchone()[0]  # no params: a literal % stays a %


def terminate_connections(admin_url, database_url):
    """Cut every server connection to ``database_url``'s database, as a database restart would; returns how many."""
    import psycopg

    name = urlsplit(database_url).path.lstrip("/")
    with psycopg.connect(admin_url, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchall()
    return sum(1 for (ok,) in rows if ok)
