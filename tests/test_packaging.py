"""Packaging and tooling: production images carry no test tools, and the import layers hold."""

import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEV_ONLY = {"pytest", "pytest-django", "pytest-timeout", "playwright", "ruff", "import-linter", "scikit-image"}


def requirement_names(name):
    lines = (REPO / name).read_text().splitlines()
    return {line.split("==")[0].split("[")[0].lower() for line in lines if line and not line.startswith("#")}


def test_runtime_requirements_carry_no_test_or_lint_tools():
    runtime, dev = requirement_names("requirements.txt"), requirement_names("requirements-dev.txt")
    assert not runtime & DEV_ONLY
    assert DEV_ONLY <= dev and not runtime & dev


def test_pyproject_declares_the_layers_contract():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    layers = [c for c in contracts if c["type"] == "layers"]
    assert layers and layers[0]["layers"] == ["mos_study", "benchmarks", "sr_models"]


def test_the_import_contracts_hold():
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
