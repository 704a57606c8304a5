"""``python -m mos_study.analysis PAIRS.csv --protocol pairwise``: files, options, errors (one line, exit 2)."""

import subprocess
import sys

import numpy as np
import pytest

from mos_study.analysis.__main__ import main
from mos_study.analysis.pairwise.simulation import simulate_study

METHODS = ["nn", "bicubic", "srresnet-mse", "hr"]


def write_study(path):
    simulate_study(np.array([0.0, 1.0, 2.0, 3.5]), 8, 12, images=("a", "b"), methods=METHODS, seed=4).to_csv(
        path, index=False
    )
    return path


def run(*args):
    return main([str(a) for a in args])


def test_pairwise_protocol_writes_its_files(tmp_path, capsys):
    pairs = write_study(tmp_path / "pairs.csv")
    out = tmp_path / "out"
    assert run(pairs, "--protocol", "pairwise", "--output-dir", out, "--bootstrap", "30", "--no-figures") == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "pairwise_raters.csv",
        "pairwise_scale.csv",
        "pairwise_scale_per_image.csv",
        "pairwise_significance.csv",
        "pairwise_summary.txt",
        "pairwise_wins.csv",
    ]
    assert "192 comparisons, 8 raters" in capsys.readouterr().out
    scale = (out / "pairwise_scale.csv").read_text().split("\n")
    assert scale[1].startswith("pairs,nn,0.000000,0.000000,0.000000,")  # dataset named after the file


def test_options_reach_the_analysis(tmp_path):
    pairs = write_study(tmp_path / "pairs.csv")
    mos = tmp_path / "mos.csv"
    mos.write_text("method,mos\nnn,1.1\nbicubic,2.0\nsrresnet-mse,3.0\nhr,4.5\n")
    out = tmp_path / "out"
    args = [pairs, "--protocol", "pairwise", "--output-dir", out, "--model", "bradley-terry", "--bootstrap", "10"]
    assert run(*args, "--seed", "3", "--mos", mos, "--bias-reduction") == 0
    assert "Bradley-Terry" in (out / "pairwise_summary.txt").read_text()
    assert "Firth's bias reduction" in (out / "pairwise_summary.txt").read_text()
    assert "10 resamples, seed 3" in (out / "pairwise_summary.txt").read_text()
    assert (out / "pairwise_mos.png").is_file() and (out / "pairwise_scale.png").is_file()


def test_bad_input_is_one_line_and_exit_2_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("rater,image,method_a,method_b,choice\nr1,i,nn,hr,a\nr1,i,nn,nn,b\n")
    out = tmp_path / "out"
    assert run(bad, "--protocol", "pairwise", "--output-dir", out) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "bad.csv:3" in error and "compared with itself" in error
    assert not out.exists()


def test_acr_stays_the_default(tmp_path, repo_root):
    out = tmp_path / "acr"
    assert run(repo_root / "tests/analysis/data/small_ratings.csv", "--output-dir", out, "--no-figures") == 0
    assert (out / "mos.csv").is_file() and not (out / "pairwise_scale.csv").exists()
    out = tmp_path / "acr2"
    args = [repo_root / "tests/analysis/data/small_ratings.csv", "--protocol", "acr", "--output-dir", out]
    assert run(*args, "--no-figures") == 0 and (out / "mos.csv").is_file()


def test_the_package_loads_matplotlib_only_for_figures(repo_root):
    code = (
        "import sys, mos_study.analysis.pairwise as p; from mos_study.analysis.pairwise import sampling; "
        "assert 'matplotlib' not in sys.modules; p.scale_figure; assert 'matplotlib' in sys.modules"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=repo_root).returncode == 0


def test_pairwise_help_lists_its_own_options(capsys):
    with pytest.raises(SystemExit) as stop:
        run("--protocol", "pairwise", "--help")
    assert stop.value.code == 0
    text = capsys.readouterr().out
    assert "--model" in text and "bradley-terry" in text and "--mos" in text
