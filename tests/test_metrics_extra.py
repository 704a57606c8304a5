"""The perceptual metrics' libraries are an install extra: pinned in requirements-metrics.txt, declared as the
'metrics' optional dependency, installed for development and CI by scripts/setup.sh, absent from the runtime set."""

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
METRIC_PACKAGES = {"piq", "lpips", "dists_pytorch"}


def pinned(name):
    lines = [line for line in (REPO / name).read_text().splitlines() if line and not line.startswith("#")]
    return {line.split("==")[0].lower(): line.split("==")[1] for line in lines}


def test_the_metric_libraries_are_pinned_in_the_extra_and_not_in_the_runtime_set():
    extra = pinned("requirements-metrics.txt")
    assert METRIC_PACKAGES <= set(extra) and all(extra.values())
    assert extra["piq"] == "0.8.0" and extra["lpips"] == "0.1.4"
    assert not METRIC_PACKAGES & set(pinned("requirements.txt"))
    for dockerfile in (REPO / "docker").glob("Dockerfile*"):
        assert "requirements-metrics" not in dockerfile.read_text(), dockerfile.name


def test_pyproject_and_setup_wire_the_extra():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    dynamic = config["tool"]["setuptools"]["dynamic"]
    assert dynamic["optional-dependencies"]["metrics"] == {"file": ["requirements-metrics.txt"]}
    assert "quality/data/*" in config["tool"]["setuptools"]["package-data"]["sr_models"]
    setup = (REPO / "scripts" / "setup.sh").read_text()
    assert "-r requirements-dev.txt -r requirements-metrics.txt" in setup
