"""The production configuration for real: collectstatic with whitenoise's manifest, gunicorn with
docker/gunicorn.conf.py in SRMOS_PRODUCTION mode, the security headers, and the container helper scripts."""

import re
import secrets
import socket
import subprocess
import sys

import pytest

from tests.support.live import REPO, Gunicorn, app_env, free_port, manage


@pytest.fixture(scope="module")
def production_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("production")
    env = app_env(
        tmp,
        f"sqlite:///{tmp / 'db.sqlite3'}",
        SRMOS_PRODUCTION=1,
        DJANGO_SECRET_KEY=secrets.token_urlsafe(64),
        DJANGO_ALLOWED_HOSTS="localhost",
        SRMOS_STATIC_ROOT=tmp / "static",
    )
    manage(env, "collectstatic", "--noinput")
    manage(env, "migrate", "--noinput")
    with Gunicorn(env, tmp / "gunicorn.log", workers=1, threads=2) as server:
        yield server


@pytest.mark.slow
def test_https_security_headers_and_secure_cookies(production_server):
    status, headers, html = production_server.get("/login/")
    assert status == 200
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    cookies = headers.get_all("Set-Cookie")
    assert cookies and all("; Secure" in cookie for cookie in cookies)


@pytest.mark.slow
def test_plain_http_is_redirected_and_unknown_hosts_refused(production_server):
    status, headers, _ = production_server.get("/login/", headers={"X-Forwarded-Proto": None})
    assert status == 301 and headers["Location"] == "https://localhost/login/"
    status, _, _ = production_server.get("/login/", headers={"Host": "evil.example"})
    assert status == 400


@pytest.mark.slow
def test_whitenoise_serves_hashed_static_files(production_server):
    _, _, html = production_server.get("/login/")
    (css,) = re.findall(rb'href="(/static/mos_study/srmos\.[0-9a-f]{12}\.css)"', html)
    status, headers, body = production_server.get(css.decode())
    assert status == 200 and headers["Content-Type"].startswith("text/css") and body
    assert "immutable" in headers["Cache-Control"]  # hashed names are cached for good by browsers


@pytest.mark.slow
def test_container_health_check_script(production_server):
    env = {
        "DJANGO_ALLOWED_HOSTS": "localhost",
        "GUNICORN_BIND": f"0.0.0.0:{production_server.port}",
        "PATH": "/usr/bin:/bin",
    }
    ok = subprocess.run([sys.executable, "docker/healthcheck.py"], cwd=REPO, env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    env["GUNICORN_BIND"] = f"0.0.0.0:{free_port()}"
    down = subprocess.run([sys.executable, "docker/healthcheck.py"], cwd=REPO, env=env, capture_output=True, text=True)
    assert down.returncode != 0 and "no answer" in down.stderr


def test_wait_for_script_waits_for_the_services_and_gives_up_clearly():
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        env = {
            "DATABASE_URL": f"postgres://u:p@127.0.0.1:{port}/db",
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{port}/0",
            "SRMOS_WAIT_SECONDS": "5",
            "PATH": "/usr/bin:/bin",
        }
        ok = subprocess.run([sys.executable, "docker/wait_for.py"], cwd=REPO, env=env, capture_output=True, text=True)
    assert ok.returncode == 0 and "DATABASE_URL" in ok.stdout and "CELERY_BROKER_URL" in ok.stdout
    env["DATABASE_URL"] = f"postgres://u:p@127.0.0.1:{free_port()}/db"
    env["SRMOS_WAIT_SECONDS"] = "1"
    down = subprocess.run([sys.executable, "docker/wait_for.py"], cwd=REPO, env=env, capture_output=True, text=True)
    assert down.returncode == 1 and "DATABASE_URL: nothing answers on 127.0.0.1" in down.stderr
