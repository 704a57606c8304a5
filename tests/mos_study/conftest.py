"""Fixtures of the app's tests: benchmark runs write into their own temporary folders; study tests share media
folders and researchers."""

from types import SimpleNamespace

import pytest


@pytest.fixture
def bench_dirs(tmp_path, settings, embedded_datasets):
    """Temporary output, media and weights folders, the embedded Set5 as data, Celery eager (in-process)."""
    dirs = SimpleNamespace(
        output=tmp_path / "benchmark", media=tmp_path / "media", weights=tmp_path / "weights", data=embedded_datasets
    )
    dirs.weights.mkdir()
    settings.SRMOS_OUTPUT_DIR = dirs.output
    settings.MEDIA_ROOT = dirs.media
    settings.SRMOS_WEIGHTS_DIR = dirs.weights
    settings.SRMOS_DATA_DIR = dirs.data
    settings.CELERY_TASK_ALWAYS_EAGER = True
    return dirs


@pytest.fixture
def media_root(settings, tmp_path):
    """MEDIA_ROOT in this test's temporary folder."""
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def people(study, settings):
    """An owner, a listed researcher, a stranger and a superuser around the module's ``study`` fixture."""
    from tests.support.study_factory import study_people

    return study_people(study, settings)


def files_under(path):
    """Every file below ``path`` (none when it does not exist)."""
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []
