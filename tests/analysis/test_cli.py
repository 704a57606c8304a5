"""``python -m mos_study.analysis``: the files, their exact columns, reproducibility, and nothing written on error."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from mos_study.analysis.__main__ import main

HEADERS = {
    "mos_per_image.csv": "dataset,image,method,n_ratings,mos,sd,ci95_low,ci95_high",
    "mos.csv": "dataset,method,n_ratings,mos,sd,ci95_low,ci95_high",
    "screening.csv": "rater,n_ratings,bt500_p,bt500_q,rejected,reasons",
    "subjective_model_stimuli.csv": "dataset,image,method,quality,ci95_low,ci95_high",
    "subjective_model_raters.csv": "rater,bias,inconsistency",
    "significance.csv": "dataset,method_a,method_b,test,statistic,p_value,p_holm,significant",
    "metric_correlation.csv": "dataset,level,metric,n,pearson,spearman,kendall",
    "table2.csv": "dataset,method,psnr_y,ssim_y,mos,ci95_low,ci95_high",
}


@pytest.fixture
def data(repo_root):
    return repo_root / "tests/analysis/data"


def run(args):
    return main([str(a) for a in args])


def test_writes_every_file_with_exact_columns(data, tmp_path):
    assert run([data / "small_ratings.csv", "--output-dir", tmp_path, "--metrics", data / "small_metrics.csv"]) == 0
    for name, header in HEADERS.items():
        assert (tmp_path / name).read_text().split("\n")[0].startswith(header), name
    for name in (
        "mos_all_raters.csv",
        "mos_per_image_all_raters.csv",
        "summary.md",
        "table2.md",
        "table2.tex",
        "export.json",
        "figures/mos.svg",
        "figures/mos.png",
        "figures/mos_letters.svg",
        "figures/score_distribution.svg",
        "figures/mos_psnr.svg",
        "figures/mos_psnr.png",
    ):
        assert (tmp_path / name).stat().st_size > 0, name
    assert (tmp_path / "figures/mos.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in (tmp_path / "figures/mos.svg").read_bytes()
    config = json.loads((tmp_path / "export.json").read_text())
    assert config["version"] and config["options"]["subjective_model"] == "p910"
    assert config["input"]["ratings"] == 10
    summary = (tmp_path / "summary.md").read_text()
    assert "BT.500-14" in summary and "P.910" in summary and "Holm" in summary
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".srmos")]  # no staging left behind


@pytest.mark.slow
def test_same_input_gives_identical_bytes_even_reordered(data, tmp_path):
    shuffled = tmp_path / "small_ratings.csv"
    frame = pd.read_csv(data / "small_ratings.csv")
    frame.iloc[::-1].to_csv(shuffled, index=False)
    outputs = []
    for k, source in enumerate([data / "small_ratings.csv", data / "small_ratings.csv", shuffled]):
        out = tmp_path / f"out{k}"
        assert run([source, "--output-dir", out, "--metrics", data / "small_metrics.csv", "--bootstrap", "50"]) == 0
        outputs.append({p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()})
    assert outputs[0] == outputs[1] == outputs[2]


def test_bad_row_stops_and_writes_nothing(data, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mos.csv").write_text("earlier results\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("rater,image,method,score\nr1,i1,A,3\nr1,i2,A,7\n")
    assert run([bad, "--output-dir", out]) == 2
    assert "bad.csv:3: column 'score' is outside the scale" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["mos.csv"] and (out / "mos.csv").read_text() == "earlier results\n"


def test_options(data, tmp_path):
    out = tmp_path / "out"
    assert (
        run(
            [
                data / "p910_full_ratings.csv",
                "--output-dir",
                out,
                "--screening",
                "none",
                "--subjective-model",
                "none",
                "--no-figures",
            ]
        )
        == 0
    )
    assert not (out / "subjective_model_stimuli.csv").exists() and not (out / "figures").exists()
    screening = pd.read_csv(out / "screening.csv")
    assert not screening.rejected.any()
    with pytest.raises(SystemExit):
        run([data / "small_ratings.csv", "--output-dir", out, "--subjective-model", "mle"])
    assert run([data / "small_ratings.csv", "--output-dir", out, "--screening", "bt500,vibes"]) == 2


@pytest.mark.slow
def test_module_entry_point_without_django(data, tmp_path, repo_root):
    # one interpreter for both checks: `python -m mos_study.analysis` runs, and never imports Django
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['x', {str(data / 'small_ratings.csv')!r}, '--output-dir', {str(tmp_path)!r}, '--no-figures']\n"
        "try:\n    runpy.run_module('mos_study.analysis', run_name='__main__')\nexcept SystemExit as exit:\n"
        "    print('exit', exit.code)\n"
        "print('django', any(m == 'django' or m.startswith('django.') for m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True)
    assert "10 ratings, 3 raters" in result.stdout, result.stderr
    assert "exit 0" in result.stdout and "django False" in result.stdout
    assert (tmp_path / "mos.csv").exists()
