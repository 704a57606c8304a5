"""Extra quality metrics in the benchmark: opt-in by name, one column each in every table, computed once per output
and reused, stand-in weights only when asked and marked wherever their figures appear."""

import csv
import shutil

import pytest

from benchmarks import quality_values
from benchmarks.__main__ import main
from benchmarks.runner import StandInMetricWeightsWarning, run_benchmark
from sr_models import quality
from sr_models.datasets import get_dataset
from sr_models.errors import SRMOSError, UnknownMetricError, WeightsError
from sr_models.imageio import read_image

METRICS = ["psnr", "ssim", "gmsd", "niqe"]


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def metric_run(embedded_datasets, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("metric_run")
    result = run_benchmark(
        ["Set5"], ["nn", "bicubic"], output_dir, data_dir=embedded_datasets, progress=False, metrics=METRICS
    )
    return result, output_dir


@pytest.fixture
def run_copy(metric_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(metric_run[1], copy)
    return copy


def test_each_metric_is_a_column_of_the_per_image_and_summary_tables(metric_run):
    result, output_dir = metric_run
    per_image = read(output_dir / "metrics_per_image.csv")
    assert list(per_image[0]) == ["dataset", "image", "method", "psnr_y", "ssim_y", "gmsd", "niqe"]
    assert len(per_image) == 10 and all(float(row["gmsd"]) > 0 and float(row["niqe"]) > 0 for row in per_image)
    summary = read(output_dir / "metrics_summary.csv")
    assert list(summary[0]) == ["dataset", "method", "n_images", "psnr_y", "ssim_y", "gmsd", "niqe"]
    for row in summary:
        mine = [float(r["niqe"]) for r in per_image if r["method"] == row["method"]]
        assert float(row["niqe"]) == pytest.approx(sum(mine) / len(mine), rel=1e-12)
    assert result.metrics == ["gmsd", "niqe"]


def test_values_are_the_registrys_on_the_stored_output_and_hr(metric_run, embedded_datasets):
    _, output_dir = metric_run
    dataset = get_dataset("Set5", embedded_datasets)
    manifest = {(r["image"], r["method"]): r for r in read(output_dir / "outputs.csv")}
    row = next(r for r in read(output_dir / "metrics_per_image.csv") if r["method"] == "bicubic")
    sr = read_image(output_dir / manifest[row["image"], "bicubic"]["path"])
    hr = dataset.load_hr(dataset.image(row["image"]))
    assert float(row["gmsd"]) == quality.compute("gmsd", sr, hr, crop_border=4, device="cpu")
    assert float(row["niqe"]) == quality.compute("niqe", sr, crop_border=4)


def test_markdown_and_latex_name_each_metric_its_direction_and_convention(metric_run):
    result, output_dir = metric_run
    header = result.markdown.splitlines()[0]
    assert header.endswith("| paper SSIM | gmsd \u2193 | niqe \u2193 |")
    assert "- niqe: Y of MATLAB rgb2ycbcr on uint8" in result.markdown
    latex = (output_dir / "metrics_summary.tex").read_text()
    assert r"\begin{tabular}{llrrrrrrr}" in latex and r"gmsd $\downarrow$ & niqe $\downarrow$ \\" in latex
    provenance = read(output_dir / "metric_provenance.csv")
    assert [row["metric"] for row in provenance] == ["gmsd", "niqe"]
    assert provenance[0]["source"] == "piq 0.8.0 gmsd" and provenance[1]["kind"] == "no-reference"


def test_rerun_reuses_every_stored_value(run_copy, embedded_datasets, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a stored metric value was computed again")

    monkeypatch.setattr(quality, "compute_many", refuse)
    before = (run_copy / "metrics_per_image.csv").read_text()
    result = run_benchmark(
        ["Set5"], ["nn", "bicubic"], run_copy, data_dir=embedded_datasets, progress=False, metrics=METRICS
    )
    assert result.n_skipped == 10 and len(result.metric_values) == 20
    assert (run_copy / "metrics_per_image.csv").read_text() == before


def test_a_new_metric_is_computed_only_for_itself(run_copy, embedded_datasets, monkeypatch):
    computed = []
    real = quality.compute_many

    def counting(name, pairs, **kwargs):
        computed.append((name, len(pairs)))
        return real(name, pairs, **kwargs)

    monkeypatch.setattr(quality, "compute_many", counting)
    run_benchmark(
        ["Set5"], ["bicubic"], run_copy, data_dir=embedded_datasets, progress=False, metrics=[*METRICS, "vif"]
    )
    assert computed == [("vif", 5)]
    stored = read(run_copy / quality_values.VALUES_FILE)
    assert sum(row["metric"] == "vif" for row in stored) == 5 and len(stored) == 25


def test_without_extra_metrics_the_tables_are_as_before(run_copy, embedded_datasets):
    result = run_benchmark(["Set5"], ["nn", "bicubic"], run_copy, data_dir=embedded_datasets, progress=False)
    assert list(read(run_copy / "metrics_per_image.csv")[0]) == ["dataset", "image", "method", "psnr_y", "ssim_y"]
    assert "metric_provenance_csv" not in result.files and "gmsd" not in result.markdown


def test_outputs_of_earlier_runs_without_the_metric_are_counted_in_a_note(run_copy, embedded_datasets):
    result = run_benchmark(
        ["Set5"], ["bicubic"], run_copy, data_dir=embedded_datasets, progress=False, metrics=["psnr", "fsim"]
    )
    rows = {row["method"]: row for row in read(run_copy / "metrics_summary.csv")}
    assert rows["nn"]["fsim"] == "" and float(rows["bicubic"]["fsim"]) > 0.5
    assert "fsim: no value for 5 outputs of the folder measured by earlier runs" in result.markdown


def test_stand_in_weights_only_when_asked_and_marked(embedded_datasets, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    output_dir = tmp_path / "out"
    with pytest.raises(WeightsError, match="alexnet-owt-7be5be79.pth"):
        run_benchmark(["Set5"], ["nn"], output_dir, data_dir=embedded_datasets, progress=False, metrics=["lpips_alex"])
    assert not output_dir.exists()  # refused before any output was made
    with pytest.warns(StandInMetricWeightsWarning, match="lpips_alex was computed with stand-in backbone weights"):
        result = run_benchmark(
            ["Set5"],
            ["nn"],
            output_dir,
            data_dir=embedded_datasets,
            progress=False,
            metrics=["lpips_alex"],
            metric_stand_in=True,
            device="cpu",
        )
    assert "| lpips_alex \u2193 \u2020 |" in result.markdown
    assert "\u2020 lpips_alex: computed with stand-in backbone weights" in result.markdown
    assert r"lpips\_alex $\downarrow$ $^\dagger$" in (output_dir / "metrics_summary.tex").read_text()
    assert {row["weights_note"] for row in read(output_dir / quality_values.VALUES_FILE)} == {quality.STAND_IN}
    assert read(output_dir / "metric_provenance.csv")[0]["weights_note"] == quality.STAND_IN


def test_unknown_and_impossible_metrics_stop_the_run_before_any_work(embedded_datasets, tmp_path):
    for names, message in ((["psnr", "lpips"], "unknown metric 'lpips'; available: psnr_y"), (["pi"], "Ma score")):
        with pytest.raises(UnknownMetricError, match=message):
            run_benchmark(["Set5"], ["nn"], tmp_path / "out", data_dir=embedded_datasets, metrics=names)
    assert not (tmp_path / "out").exists()


def test_cli_takes_metrics_and_reports_a_bad_name_in_one_line(embedded_datasets, tmp_path, capsys):
    argv = ["run", "--datasets", "Set5", "--methods", "nn", "--data-dir", str(embedded_datasets), "--quiet"]
    assert main([*argv, "--output-dir", str(tmp_path / "a"), "--metrics", "psnr,ssim,ma"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: metric 'ma': the Ma score") and error.count("\n") == 1
    assert main([*argv, "--output-dir", str(tmp_path / "b"), "--metrics", "psnr,ssim,gmsd"]) == 0
    assert "gmsd \u2193" in capsys.readouterr().out


def test_list_names_every_metric_and_why_ma_and_pi_are_missing(embedded_datasets, capsys):
    assert main(["list", "--data-dir", str(embedded_datasets)]) == 0
    printed = capsys.readouterr().out.split("metrics (--metrics; docs/metrics.md):\n")[1]
    assert [line.split()[0] for line in printed.splitlines()] == [*quality.available(), "ma", "pi"]
    assert "lpips_alex      full-reference, lower is better, needs the 'metrics' extra (lpips)" in printed


def test_images_too_small_for_a_metric_stop_the_run_before_any_work(wing_set, tmp_path):
    with pytest.raises(
        SRMOSError,
        match="metric ms_ssim needs images of at least 161 pixels a side after the 4-pixel "
        "border; too small: tiny/wing; leave ms_ssim out for them",
    ):
        run_benchmark([str(wing_set)], ["nn"], tmp_path / "out", progress=False, metrics=["psnr", "ms_ssim"])
    assert not (tmp_path / "out").exists()
