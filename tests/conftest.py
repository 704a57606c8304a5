"""Shared fixtures.

Tests that need an outside thing (the shared datasets, Redis, PostgreSQL, chromium) run whenever it is there or
``CI=true``; under ``CI=true`` a missing thing is a failure, never a skip.
"""

import os
import shutil
import socket
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() == "true"


def missing(reason):
    """Skip locally, fail under CI: CI must never hide a missing service."""
    if IN_CI:
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


def port_answers(host, port, timeout=1.0):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def repo_root():
    return REPO_ROOT


@pytest.fixture(scope="session")
def embedded_datasets():
    """The Set5 copy shipped inside the project (the quick start's default data)."""
    return REPO_ROOT / "data" / "datasets"


@pytest.fixture(scope="session")
def shared_datasets():
    """``../shared/datasets`` beside the checkout (Set5, Set14, BSD100, train_demo)."""
    path = Path(os.environ.get("SRMOS_SHARED_DATASETS", REPO_ROOT.parent / "shared" / "datasets"))
    if not (path / "BSD100").is_dir():
        missing(f"the shared datasets are not at {path} (set SRMOS_SHARED_DATASETS)")
    return path


def local_service(name, port, variable, default_url):
    """The URL of a service the test needs (``variable``, else ``default_url``); ``missing`` when nothing answers
    on 127.0.0.1:``port``."""
    if not port_answers("127.0.0.1", port):
        missing(f"{name} does not answer on 127.0.0.1:{port}")
    return os.environ.get(variable, default_url)


@pytest.fixture(scope="session")
def require_redis():
    return local_service("Redis", 6379, "SRMOS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(scope="session")
def require_postgres():
    return local_service("PostgreSQL", 5432, "SRMOS_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")


@pytest.fixture
def postgres_database(require_postgres):
    """A fresh, empty PostgreSQL database for this test (its URL), dropped afterwards."""
    from tests.support.live import fresh_database

    with fresh_database(require_postgres) as url:
        yield url


@pytest.fixture
def fresh_cache():
    """An empty Django cache (rate-limit counters, cached exports) for this test."""
    from django.core.cache import cache

    from mos_study.security import forget_login_refusals

    cache.clear()
    forget_login_refusals()
    yield
    cache.clear()
    forget_login_refusals()


@pytest.fixture(scope="session")
def chromium_path():
    path = os.environ.get("SRMOS_CHROMIUM", "/usr/bin/chromium")
    if not (Path(path).exists() or shutil.which(path)):
        missing(f"chromium is not installed at {path} (apt-get install chromium)")
    return path


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
