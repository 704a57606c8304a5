"""``python -m benchmarks``: run, import, download and list, as a user runs them."""

import os
import shutil
import subprocess
import sys

import pytest

from benchmarks.__main__ import main
from sr_models.datasets import get_dataset
from sr_models.imageio import write_png
from tests.benchmarks.archives import make_zip

pytestmark = pytest.mark.slow  # each subprocess imports torch


def cli(*args, env=None, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd or os.getcwd(),
        timeout=300,
    )


@pytest.fixture
def tiny_set(embedded_datasets, tmp_path):
    folder = tmp_path / "tiny"
    folder.mkdir()
    _, hr = get_dataset("Set5", embedded_datasets).load("img_002")
    write_png(folder / "bird.png", hr[:96, :96])
    write_png(folder / "bird2.png", hr[96:192, 96:192])
    return folder


def test_run_prints_the_table_and_writes_files(tiny_set, tmp_path, repo_root):
    out = tmp_path / "out"
    run = ["run", "--datasets", str(tiny_set), "--methods", "nn,bicubic", "--output-dir", str(out), "--quiet"]
    done = cli(*run, cwd=repo_root)
    assert done.returncode == 0, done.stderr
    assert "4 outputs generated, 0 already stored" in done.stdout
    assert "| tiny | bicubic | 2 |" in done.stdout and "'integer' convention" in done.stdout
    assert {
        "metrics_summary.csv",
        "metrics_per_image.csv",
        "metrics_summary.md",
        "metrics_summary.tex",
        "outputs.csv",
        "outputs",
    } <= {p.name for p in out.iterdir()}

    # In-process from here on (same entry point, no interpreter start-up): a re-run and the float convention.
    assert main([*run, "--y-convention", "float"]) == 0
    assert "'float' convention" in (out / "metrics_summary.md").read_text()


def test_user_errors_exit_2_with_a_message_and_write_nothing(tmp_path, repo_root):
    out = tmp_path / "out"
    done = cli("run", "--datasets", "Set5", "--methods", "bicubic,nope", "--output-dir", str(out), cwd=repo_root)
    assert done.returncode == 2
    assert done.stderr.startswith("error: unknown method 'nope'") and "Traceback" not in done.stderr
    assert not out.exists()
    assert (
        main(
            ["run", "--datasets", "Set9", "--methods", "bicubic", "--output-dir", str(out), "--data-dir", str(tmp_path)]
        )
        == 2
    )
    assert not out.exists()


def test_data_dir_from_the_environment_and_list(embedded_datasets, tmp_path, repo_root):
    shutil.copytree(embedded_datasets / "Set5", tmp_path / "data" / "Set5")
    done = cli("list", env={"SRMOS_DATA_DIR": str(tmp_path / "data")}, cwd=repo_root)
    assert done.returncode == 0, done.stderr
    assert f"datasets in {tmp_path / 'data'}" in done.stdout
    assert "Set5         present" in done.stdout and "Set14        missing" in done.stdout
    assert "  bicubic" in done.stdout and "  srgan-vgg54" in done.stdout


def test_download_good_and_bad_checksum(server, embedded_datasets, tmp_path, repo_root):
    folder, base = server
    sha = make_zip(folder / "cli-set5.zip", embedded_datasets)
    data_dir = tmp_path / "data"
    bad = cli(
        "download",
        "Set5",
        "--url",
        f"{base}/cli-set5.zip",
        "--sha256",
        "f" * 64,
        "--data-dir",
        str(data_dir),
        "--quiet",
        cwd=repo_root,
    )
    assert bad.returncode == 2 and "checksum mismatch" in bad.stderr
    assert not data_dir.exists() or list(data_dir.iterdir()) == []
    good = main(
        ["download", "Set5", "--url", f"{base}/cli-set5.zip", "--sha256", sha, "--data-dir", str(data_dir), "--quiet"]
    )
    assert good == 0 and len(get_dataset("Set5", data_dir)) == 5


def test_import_then_run_includes_the_external_method(tiny_set, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", "--datasets", str(tiny_set), "--methods", "bicubic", "--output-dir", str(out), "--quiet"]) == 0
    external = tmp_path / "external"
    external.mkdir()
    from benchmarks.runner import read_manifest

    for (_, image, _), row in read_manifest(out).items():
        shutil.copy(out / row["path"], external / f"{image}_x4_theirs.png")
    assert (
        main(
            [
                "import",
                "theirs",
                "--dataset",
                str(tiny_set),
                "--outputs",
                str(external),
                "--output-dir",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    assert (
        main(["run", "--datasets", str(tiny_set), "--methods", "bicubic,theirs", "--output-dir", str(out), "--quiet"])
        == 0
    )
    printed = capsys.readouterr().out
    assert "0 outputs generated, 4 already stored" in printed and "| tiny | theirs | 2 |" in printed
