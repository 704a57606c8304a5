"""One module says where data, weights and results live when nobody says: the command lines and Django agree."""

from pathlib import Path

from sr_models import paths

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_defaults_are_the_repository_folders(monkeypatch):
    for env in (paths.DATA_DIR_ENV, paths.WEIGHTS_DIR_ENV, paths.OUTPUT_DIR_ENV):
        monkeypatch.delenv(env, raising=False)
    assert paths.data_dir() == REPO_ROOT / "data" / "datasets"
    assert paths.weights_dir() == REPO_ROOT / "var" / "weights"
    assert paths.output_dir() == REPO_ROOT / "var" / "benchmark"
    monkeypatch.setenv(paths.WEIGHTS_DIR_ENV, "")  # empty counts as unset
    assert paths.weights_dir() == REPO_ROOT / "var" / "weights"


def test_argument_beats_environment_beats_default(monkeypatch, tmp_path):
    monkeypatch.setenv("SRMOS_DATA_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("SRMOS_WEIGHTS_DIR", str(tmp_path / "weights"))
    assert paths.data_dir() == tmp_path / "env"
    assert paths.data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert paths.weights_dir() == tmp_path / "weights"
    assert paths.data_dir("~/sets") == Path.home() / "sets"


def test_django_settings_use_the_same_defaults():
    from django.conf import settings as live

    assert live.SRMOS_DATA_DIR == paths.data_dir() and live.SRMOS_WEIGHTS_DIR == paths.weights_dir()
