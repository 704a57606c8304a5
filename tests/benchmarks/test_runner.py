"""The runner end to end on the embedded Set5 with nn and bicubic, re-runs, failures and imported methods."""

import csv
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from benchmarks.errors import BenchmarkError
from benchmarks.runner import Job, import_outputs, plan_jobs, read_manifest, run_benchmark, run_jobs_locally
from sr_models import methods
from sr_models.datasets import get_dataset
from sr_models.errors import SRMOSError, UnknownMethodError
from sr_models.imageio import read_image, write_png
from sr_models.metrics import psnr_y, ssim_y

pytestmark = pytest.mark.slow  # the first run measures 10 Set5 outputs (several seconds on a busy CPU)

METHODS = ["nn", "bicubic"]


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def snapshot(folder):
    """{relative path: (bytes, mtime)} of every file below ``folder``."""
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(Path(folder).rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def set5_run(tmp_path_factory, embedded_datasets):
    output_dir = tmp_path_factory.mktemp("bench") / "out"
    result = run_benchmark(["Set5"], METHODS, output_dir, data_dir=embedded_datasets, progress=False)
    return result, output_dir


@pytest.fixture
def run_copy(set5_run, tmp_path):
    """A private copy of the first run's output folder, for tests that change it."""
    shutil.copytree(set5_run[1], tmp_path / "out")
    return tmp_path / "out"


def test_values_equal_metrics_computed_directly(set5_run, embedded_datasets):
    result, output_dir = set5_run
    dataset = get_dataset("Set5", embedded_datasets)
    per_image = {(r["image"], r["method"]): r for r in read_rows(output_dir / "metrics_per_image.csv")}
    manifest = read_manifest(output_dir)
    assert len(per_image) == 10 and result.n_generated == 10 and result.n_skipped == 0
    for method in METHODS:
        upscaler = methods.load(method)
        for image in dataset:
            lr, hr = dataset.load(image)
            sr = upscaler.upscale(lr)
            row = per_image[(image.name, method)]
            assert float(row["psnr_y"]) == psnr_y(sr, hr, crop_border=4, convention="integer")
            assert float(row["ssim_y"]) == ssim_y(sr, hr, crop_border=4, convention="integer")
            stored = manifest[("Set5", image.name, method)]
            path = output_dir / stored["path"]
            assert path.name == hashlib.sha256(path.read_bytes()).hexdigest() + ".png" == stored["sha256"] + ".png"
            assert np.array_equal(read_image(path), sr)


def test_summary_is_the_mean_and_bicubic_matches_the_literature(set5_run):
    _, output_dir = set5_run
    per_image = read_rows(output_dir / "metrics_per_image.csv")
    summary = {r["method"]: r for r in read_rows(output_dir / "metrics_summary.csv")}
    assert list(read_rows(output_dir / "metrics_summary.csv")[0]) == [
        "dataset",
        "method",
        "n_images",
        "psnr_y",
        "ssim_y",
    ]
    assert list(per_image[0]) == ["dataset", "image", "method", "psnr_y", "ssim_y"]
    for method in METHODS:
        mine = [r for r in per_image if r["method"] == method]
        assert summary[method]["n_images"] == "5"
        assert float(summary[method]["psnr_y"]) == pytest.approx(np.mean([float(r["psnr_y"]) for r in mine]), abs=1e-12)
        assert float(summary[method]["ssim_y"]) == pytest.approx(np.mean([float(r["ssim_y"]) for r in mine]), abs=1e-12)
    # Bicubic on Set5 x4 with Y rounded as MATLAB does: 28.42 dB in the SR literature (SRGAN paper: 28.43).
    assert float(summary["bicubic"]["psnr_y"]) == pytest.approx(28.42, abs=0.02)
    assert float(summary["nn"]["psnr_y"]) < float(summary["bicubic"]["psnr_y"])


def test_tables_print_ours_beside_the_paper(set5_run):
    result, output_dir = set5_run
    markdown = (output_dir / "metrics_summary.md").read_text()
    assert markdown == result.markdown
    bicubic = next(line for line in markdown.splitlines() if "| bicubic |" in line)
    ours = float(result.summary[1]["psnr_y"])
    assert f"| {ours:.2f} |" in bicubic and "| 28.43 | 0.8211 |" in bicubic
    assert "integer" in markdown and "4 pixels" in markdown
    latex = (output_dir / "metrics_summary.tex").read_text()
    assert r"\begin{tabular}" in latex and "28.43 & 0.8211" in latex


def test_rerun_skips_everything_and_rewrites_no_output(run_copy, embedded_datasets):
    before = {k: v for k, v in snapshot(run_copy).items() if k.startswith("outputs/")}
    calls = []

    def executor(jobs):
        calls.append(len(jobs))
        return run_jobs_locally(jobs, progress=False)

    result = run_benchmark(["Set5"], METHODS, run_copy, data_dir=embedded_datasets, executor=executor, progress=False)
    assert calls == [] and result.n_generated == 0 and result.n_skipped == 10
    after = {k: v for k, v in snapshot(run_copy).items() if k.startswith("outputs/")}
    assert after == before  # same files, same bytes, same mtimes

    # A lost or altered output is made again, and only that one.
    victim = run_copy / read_manifest(run_copy)[("Set5", "img_003", "bicubic")]["path"]
    victim.write_bytes(b"damaged")
    result = run_benchmark(["Set5"], METHODS, run_copy, data_dir=embedded_datasets, executor=executor, progress=False)
    assert calls == [1] and result.n_generated == 1
    assert read_image(victim).shape == (256, 256, 3)


def test_changed_lr_file_reruns_only_its_jobs(run_copy, embedded_datasets, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(embedded_datasets / "Set5", data_dir / "Set5")
    lr_path = data_dir / "Set5" / "image_SRF_4" / "img_002_SRF_4_LR.png"
    lr = read_image(lr_path).copy()
    lr[0, 0] = 255 - lr[0, 0]
    write_png(lr_path, lr)
    result = run_benchmark(["Set5"], METHODS, run_copy, data_dir=data_dir, progress=False)
    assert result.n_generated == 2  # img_002 for nn and bicubic
    assert {j.image for j in result.jobs} == {f"img_00{i}" for i in range(1, 6)}


def test_other_convention_measures_again_without_generating(run_copy, embedded_datasets):
    result = run_benchmark(
        ["Set5"], ["bicubic"], run_copy, data_dir=embedded_datasets, progress=False, convention="float"
    )
    assert result.n_generated == 0
    row = result.per_image[0]
    sr = read_image(run_copy / row["path"])
    _, hr = get_dataset("Set5", embedded_datasets).load("img_001")
    assert row["psnr_y"] == psnr_y(sr, hr, convention="float")
    assert "float" in result.markdown
    assert [r["method"] for r in read_rows(run_copy / "metrics_summary.csv")] == ["bicubic"]


def test_executor_gets_json_jobs_and_may_return_json(embedded_datasets, tmp_path):
    """What a Celery executor does: jobs and results cross a JSON boundary."""
    seen = []

    def json_executor(jobs):
        wire = json.loads(json.dumps([job.to_dict() for job in jobs]))
        seen.extend(wire)
        assert [Job.from_dict(data) for data in wire] == jobs
        return json.loads(json.dumps(run_jobs_locally([Job.from_dict(data) for data in wire], progress=False)))

    small = tmp_path / "small"
    small.mkdir()
    _, hr = get_dataset("Set5", embedded_datasets).load("img_002")
    write_png(small / "bird.png", hr[:96, :128])
    result = run_benchmark([str(small)], ["bicubic"], tmp_path / "out", executor=json_executor, progress=False)
    assert [job["image"] for job in seen] == ["bird"] and seen[0]["lr_path"] is None
    assert result.summary[0]["dataset"] == "small" and result.summary[0]["n_images"] == 1


def previous_tables(output_dir):
    return {
        name: (output_dir / name).read_bytes()
        for name in (
            "metrics_summary.csv",
            "metrics_per_image.csv",
            "metrics_summary.md",
            "metrics_summary.tex",
            "outputs.csv",
        )
    }


def test_user_errors_stop_the_run_before_any_work(run_copy, embedded_datasets, tmp_path):
    before = previous_tables(run_copy)
    fresh = tmp_path / "fresh"
    with pytest.raises(UnknownMethodError, match="no-such-method"):
        run_benchmark(["Set5"], ["bicubic", "no-such-method"], fresh, data_dir=embedded_datasets, progress=False)
    with pytest.raises(SRMOSError, match="Set9"):
        run_benchmark(["Set5", "Set9"], ["bicubic"], fresh, data_dir=embedded_datasets, progress=False)
    with pytest.raises(SRMOSError, match="convention"):
        run_benchmark(["Set5"], ["bicubic"], fresh, data_dir=embedded_datasets, progress=False, convention="y")
    with pytest.raises(UnknownMethodError):
        run_benchmark(["Set5"], ["bicubic", "no-such-method"], run_copy, data_dir=embedded_datasets, progress=False)
    assert not fresh.exists()
    assert previous_tables(run_copy) == before


def test_corrupt_dataset_image_is_found_before_work(embedded_datasets, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(embedded_datasets / "Set5", data_dir / "Set5")
    hr = data_dir / "Set5" / "image_SRF_4" / "img_005_SRF_4_HR.png"
    hr.write_bytes(hr.read_bytes()[:1000])
    with pytest.raises(SRMOSError, match="img_005"):
        run_benchmark(["Set5"], ["nn"], tmp_path / "out", data_dir=data_dir, progress=False)
    assert not (tmp_path / "out").exists()


def test_missing_weights_are_reported_before_work(embedded_datasets, tmp_path):
    # Learned methods whose weights srmos does not ship (the VGG variants): nothing to fall back on.
    shipped = {path.stem for path in methods.SHIPPED_WEIGHTS_DIR.glob("*.pt")}
    weighted = [name for name in methods.available() if name not in ("nn", "bicubic") and name not in shipped]
    assert weighted, "the registry offers trained methods without shipped weights"
    with pytest.raises(SRMOSError, match="weights|checkpoint"):
        run_benchmark(
            ["Set5"],
            ["bicubic", weighted[0]],
            tmp_path / "out",
            data_dir=embedded_datasets,
            weights_dir=tmp_path / "no-weights",
            progress=False,
        )
    assert not (tmp_path / "out").exists()


def test_failing_executor_leaves_previous_tables(run_copy, embedded_datasets, tmp_path):
    before = previous_tables(run_copy)

    def broken(jobs):
        raise RuntimeError("worker lost")

    data_dir = tmp_path / "data"
    shutil.copytree(embedded_datasets / "Set5", data_dir / "Set5")
    (data_dir / "Set5" / "image_SRF_4" / "img_001_SRF_4_LR.png").unlink()  # new key: img_001 must be generated
    with pytest.raises(RuntimeError):
        run_benchmark(["Set5"], METHODS, run_copy, data_dir=data_dir, executor=broken, progress=False)
    assert previous_tables(run_copy) == before

    def short(jobs):
        return run_jobs_locally(jobs[:1], progress=False)

    with pytest.raises(BenchmarkError, match="no result for 1 jobs"):
        run_benchmark(["Set5"], METHODS, run_copy, data_dir=data_dir, executor=short, progress=False)
    assert previous_tables(run_copy) == before


def test_jobs_are_planned_per_dataset_image_and_method(embedded_datasets, tmp_path):
    jobs = plan_jobs(["Set5"], METHODS, tmp_path / "out", data_dir=embedded_datasets)
    assert [(j.method, j.image) for j in jobs] == [(m, f"img_00{i}") for m in METHODS for i in range(1, 6)]
    assert len({j.key for j in jobs}) == 10
    assert [Job.from_dict(json.loads(json.dumps(j.to_dict()))) for j in jobs] == jobs
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- import_outputs


def export_outputs(run_dir, method, folder, name_of):
    """Copy a run's outputs of ``method`` into ``folder`` under the names ``name_of(image)`` gives."""
    folder.mkdir()
    for (dataset, image, m), row in read_manifest(run_dir).items():
        if m == method:
            shutil.copy(run_dir / row["path"], folder / name_of(image))
    return folder


def test_import_outputs_measures_like_a_builtin_method(run_copy, embedded_datasets, tmp_path):
    folder = export_outputs(run_copy, "bicubic", tmp_path / "ext", lambda image: f"{image}_SRF_4_HR.png")
    n_files = len(list((run_copy / "outputs").iterdir()))
    rows = import_outputs("external", "Set5", folder, run_copy, data_dir=embedded_datasets, progress=False)
    assert [r["image"] for r in rows] == [f"img_00{i}" for i in range(1, 6)]
    assert len(list((run_copy / "outputs").iterdir())) == n_files  # same pixels: the same stored files
    result = run_benchmark(["Set5"], ["bicubic", "external"], run_copy, data_dir=embedded_datasets, progress=False)
    assert result.n_generated == 0
    means = {r["method"]: r for r in result.summary}
    assert means["external"]["psnr_y"] == means["bicubic"]["psnr_y"]
    assert means["external"]["ssim_y"] == means["bicubic"]["ssim_y"]
    assert "| external |" in result.markdown


def test_import_accepts_plain_names_and_suffixes(run_copy, embedded_datasets, tmp_path):
    names = iter(["img_001.png", "img_002_x4_SR.png", "img_003_SRF_4_ours.png", "img_004.png", "img_005_b.png"])
    folder = export_outputs(run_copy, "nn", tmp_path / "ext", lambda image: next(names))
    rows = import_outputs("mine", "Set5", folder, run_copy, data_dir=embedded_datasets, progress=False)
    nn = {r["image"]: r for r in read_rows(run_copy / "metrics_per_image.csv") if r["method"] == "nn"}
    assert [r["psnr_y"] for r in rows] == [float(nn[f"img_00{i}"]["psnr_y"]) for i in range(1, 6)]


def test_import_errors_list_the_problems_and_store_nothing(run_copy, embedded_datasets, tmp_path):
    manifest_before = (run_copy / "outputs.csv").read_bytes()
    folder = export_outputs(run_copy, "bicubic", tmp_path / "ext", lambda image: f"{image}.png")
    (folder / "img_004.png").unlink()
    shutil.copy(folder / "img_001.png", folder / "img_001_copy.png")
    with pytest.raises(SRMOSError, match=r"no file for img_004.*several files for img_001"):
        import_outputs("ext", "Set5", folder, run_copy, data_dir=embedded_datasets, progress=False)

    (folder / "img_001_copy.png").unlink()
    write_png(folder / "img_004.png", np.zeros((100, 100, 3), np.uint8))
    with pytest.raises(SRMOSError, match=r"img_004.png is 100x100, HR is 280x280"):
        import_outputs("ext", "Set5", folder, run_copy, data_dir=embedded_datasets, progress=False)
    with pytest.raises(SRMOSError, match="built-in method"):
        import_outputs("bicubic", "Set5", folder, run_copy, data_dir=embedded_datasets, progress=False)
    with pytest.raises(SRMOSError, match="does not exist"):
        import_outputs("ext", "Set5", tmp_path / "nowhere", run_copy, data_dir=embedded_datasets, progress=False)
    assert (run_copy / "outputs.csv").read_bytes() == manifest_before

    # An imported method whose stored output is gone cannot be made again: the run says so before any work.
    write_png(
        folder / "img_004.png", read_image(run_copy / read_manifest(run_copy)[("Set5", "img_004", "bicubic")]["path"])
    )
    import_outputs("ext", "Set5", folder, run_copy, data_dir=embedded_datasets, progress=False)
    (run_copy / read_manifest(run_copy)[("Set5", "img_002", "ext")]["path"]).unlink()
    with pytest.raises(
        SRMOSError, match="'ext' was imported, but its outputs for Set5 are missing or damaged for: img_002"
    ):
        run_benchmark(["Set5"], ["ext"], run_copy, data_dir=embedded_datasets, progress=False)


# ---------------------------------------------------------------- learned and plugin methods


def save_tiny_generator(path, seed):
    import torch

    from sr_models.archs.srresnet import SRResNet
    from sr_models.checkpoint import save_checkpoint

    torch.manual_seed(seed)
    return save_checkpoint(path, SRResNet(num_features=8, num_blocks=1), method="srresnet-mse")


def test_weights_file_is_part_of_the_job_key(wing_set, tmp_path):
    weights_dir = tmp_path / "weights"
    weights = save_tiny_generator(weights_dir / "srresnet-mse.pt", seed=0)
    out = tmp_path / "out"
    first = run_benchmark([str(wing_set)], ["srresnet-mse"], out, weights_dir=weights_dir, device="cpu", progress=False)
    job = first.jobs[0]
    assert job.weights_path == str(weights)
    assert job.weights_sha256 == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert first.n_generated == 1
    assert (
        run_benchmark(
            [str(wing_set)], ["srresnet-mse"], out, weights_dir=weights_dir, device="cpu", progress=False
        ).n_generated
        == 0
    )
    save_tiny_generator(weights, seed=1)  # retrained: new weights, the output must be made again
    again = run_benchmark([str(wing_set)], ["srresnet-mse"], out, weights_dir=weights_dir, device="cpu", progress=False)
    assert again.n_generated == 1 and again.jobs[0].key != job.key
    assert again.per_image[0]["sha256"] != first.per_image[0]["sha256"]


def test_plugin_methods_run_through_the_registry(wing_set, tmp_path, monkeypatch):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "my_sr_plugin.py").write_text(
        "import numpy as np\ndef upscale(lr):\n    return np.repeat(np.repeat(lr, 4, axis=0), 4, axis=1)\n"
    )
    monkeypatch.syspath_prepend(str(plugins))
    result = run_benchmark([str(wing_set)], ["my_sr_plugin:upscale", "nn"], tmp_path / "out", progress=False)
    plugin, nn = result.per_image
    assert plugin["method"] == "my_sr_plugin:upscale"
    assert plugin["sha256"] == nn["sha256"]  # pixel replication is nearest-neighbour x4: one stored file
    assert len(list((tmp_path / "out" / "outputs").iterdir())) == 1
