"""``manage.py run_benchmark`` end to end on the embedded Set5 with nn and bicubic (Celery eager, SQLite)."""

import csv
import hashlib
import io
import os

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from mos_study.models import HR_METHOD, BenchmarkRun, Method, Metric, Output, TestImage
from mos_study.services.benchmark import record_hr_outputs, run_and_record

from .conftest import files_under

pytestmark = pytest.mark.django_db

SET5 = ["img_001", "img_002", "img_003", "img_004", "img_005"]


def run_command(*args, **options):
    out = io.StringIO()
    call_command("run_benchmark", *args, quiet=True, stdout=out, **options)
    return out.getvalue()


def sha256_of(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def psnr_y_by_hand(sr, hr, border=4):
    """PSNR on rounded BT.601 Y, computed here independently of sr_models.metrics, in exact integers:
    Y = 16 + (65481 R + 128553 G + 24966 B) / 255000, rounded half up."""

    def y(rgb):
        rgb = rgb.astype(np.int64)
        numerator = 65481 * rgb[..., 0] + 128553 * rgb[..., 1] + 24966 * rgb[..., 2]
        return (16 + (numerator + 127500) // 255000).astype(np.float64)

    diff = (y(sr) - y(hr))[border:-border, border:-border]
    return 10 * np.log10(255**2 / np.mean(diff**2))


@pytest.mark.slow
def test_records_outputs_metrics_and_tables(bench_dirs):
    printed = run_command(datasets="Set5", methods="nn,bicubic")

    for name in ("metrics_per_image.csv", "metrics_summary.csv", "metrics_summary.md", "metrics_summary.tex"):
        assert (bench_dirs.output / name).is_file(), name
    assert "| bicubic" in printed or "bicubic |" in printed
    assert str(bench_dirs.output) in printed
    assert "10 outputs generated, 0 already stored" in printed

    run = BenchmarkRun.objects.get()
    assert run.status == BenchmarkRun.Status.DONE and run.finished is not None and run.error == ""
    assert (run.datasets, run.methods, run.y_convention, run.crop_border) == (["Set5"], ["nn", "bicubic"], "integer", 4)
    assert {(m.name, m.kind) for m in Method.objects.all()} == {("nn", "builtin"), ("bicubic", "builtin")}
    assert sorted(TestImage.objects.values_list("name", flat=True)) == SET5
    assert Output.objects.count() == 10 and Metric.objects.count() == 10 and run.outputs.count() == 10

    # Every output is published under MEDIA_ROOT by the SHA-256 of its bytes, the same file as the runner stored.
    for output in Output.objects.all():
        media_file = bench_dirs.media / output.file
        assert output.file == f"outputs/{output.sha256}.png"
        assert sha256_of(media_file) == output.sha256
        assert media_file.read_bytes() == (bench_dirs.output / output.file).read_bytes()
        with Image.open(media_file) as img:
            assert (img.width, img.height) == (output.width, output.height)
            assert (output.width, output.height) == (output.image.width, output.image.height)
            assert not img.info  # no metadata chunks: the file says nothing about the method

    # Metric rows are the CSV's numbers, and the CSV's numbers are right (PSNR recomputed here by hand).
    with open(bench_dirs.output / "metrics_per_image.csv", newline="") as f:
        csv_rows = {(r["method"], r["image"]): r for r in csv.DictReader(f)}
    for metric in Metric.objects.select_related("output__method", "output__image"):
        row = csv_rows[(metric.output.method.name, metric.output.image.name)]
        assert metric.psnr_y == pytest.approx(float(row["psnr_y"]), abs=1e-9)
        assert metric.ssim_y == pytest.approx(float(row["ssim_y"]), abs=1e-9)
    bicubic = Output.objects.get(method__name="bicubic", image__name="img_003")
    hr = np.asarray(Image.open(bench_dirs.data / "Set5" / "image_SRF_4" / "img_003_SRF_4_HR.png").convert("RGB"))
    sr = np.asarray(Image.open(bench_dirs.media / bicubic.file).convert("RGB"))
    # MATLAB's floating-point order rounds a few exact .5 ties the other way: 1e-4 dB covers that, not a wrong formula.
    assert bicubic.metrics.get().psnr_y == pytest.approx(psnr_y_by_hand(sr, hr), abs=1e-4)

    # Set5 means agree with the paper's Table 2 (nn 26.26, bicubic 28.43 dB; PSNR convention matches to ~0.02 dB).
    means = {
        name: np.mean(list(Metric.objects.filter(output__method__name=name).values_list("psnr_y", flat=True)))
        for name in ("nn", "bicubic")
    }
    assert means["bicubic"] == pytest.approx(28.43, abs=0.05)
    assert means["nn"] == pytest.approx(26.26, abs=0.1)


@pytest.mark.slow
def test_rerun_skips_stored_outputs_and_adds_no_duplicate_rows(bench_dirs):
    run_command(datasets="Set5", methods="nn,bicubic")
    stored = {p: p.stat().st_mtime_ns for p in files_under(bench_dirs.output / "outputs")}
    published = {p: p.stat().st_mtime_ns for p in files_under(bench_dirs.media)}
    ids = sorted(Output.objects.values_list("pk", flat=True))
    metrics = sorted(Metric.objects.values_list("pk", "psnr_y", "ssim_y"))

    printed = run_command(datasets="Set5", methods="bicubic,nn")

    assert "0 outputs generated, 10 already stored" in printed
    assert {p: p.stat().st_mtime_ns for p in files_under(bench_dirs.output / "outputs")} == stored
    assert {p: p.stat().st_mtime_ns for p in files_under(bench_dirs.media)} == published
    assert sorted(Output.objects.values_list("pk", flat=True)) == ids
    assert sorted(Metric.objects.values_list("pk", "psnr_y", "ssim_y")) == metrics
    assert (Method.objects.count(), TestImage.objects.count()) == (2, 5)
    first, second = BenchmarkRun.objects.order_by("pk")
    assert first.status == second.status == BenchmarkRun.Status.DONE
    assert sorted(second.outputs.values_list("pk", flat=True)) == ids


@pytest.mark.slow
def test_float_convention_adds_metrics_to_the_same_outputs(bench_dirs):
    run_command(datasets="Set5", methods="nn")
    run_command(datasets="Set5", methods="nn", y_convention="float")
    assert Output.objects.count() == 5
    by_convention = {c: Metric.objects.filter(y_convention=c).count() for c in ("integer", "float")}
    assert by_convention == {"integer": 5, "float": 5}


@pytest.mark.parametrize(
    "options, message",
    [
        ({"methods": "nn,no-such-method"}, "no-such-method"),
        ({"methods": "srgan-vgg54"}, "weights"),  # srresnet-mse and srgan-mse ship weights
        ({"methods": "nn", "data_dir": "/nonexistent/datasets"}, "/nonexistent/datasets"),
        ({"methods": "nn", "datasets": "Set5,NoSuchSet"}, "NoSuchSet"),
    ],
)
def test_user_errors_fail_clearly_and_write_nothing(bench_dirs, options, message):
    options = {"datasets": "Set5", **options}
    with pytest.raises(CommandError) as failure:
        run_command(**options)

    text = str(failure.value)
    assert message in text and "\n" not in text.strip()
    assert files_under(bench_dirs.output) == [] and files_under(bench_dirs.media) == []
    assert not (
        Output.objects.exists() or Metric.objects.exists() or Method.objects.exists() or TestImage.objects.exists()
    )
    run = BenchmarkRun.objects.get()  # the attempt is on record, marked failed with the error
    assert run.status == BenchmarkRun.Status.FAILED and message in run.error and run.finished is not None


def test_unreadable_image_fails_before_any_output(bench_dirs, tmp_path):
    data = tmp_path / "data"
    folder = data / "Set5" / "image_SRF_4"
    folder.mkdir(parents=True)
    for path in (bench_dirs.data / "Set5" / "image_SRF_4").iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "img_004_SRF_4_HR.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")

    with pytest.raises(CommandError, match="img_004"):
        run_command(datasets="Set5", methods="nn", data_dir=str(data))
    assert files_under(bench_dirs.output) == [] and not Output.objects.exists()


def test_record_hr_outputs_are_content_addressed_and_idempotent(bench_dirs):
    outputs = record_hr_outputs("Set5")

    assert [o.image.name for o in outputs] == SET5
    assert {o.method.name for o in outputs} == {HR_METHOD}
    assert Method.objects.get(name=HR_METHOD).kind == Method.Kind.REFERENCE
    for output in outputs:
        path = bench_dirs.media / output.file
        assert output.file == f"outputs/{output.sha256}.png" and sha256_of(path) == output.sha256
        hr_file = bench_dirs.data / "Set5" / "image_SRF_4" / f"{output.image.name}_SRF_4_HR.png"
        assert np.array_equal(np.asarray(Image.open(path)), np.asarray(Image.open(hr_file)))
        assert output.image.hr_sha256 == sha256_of(hr_file)

    again = record_hr_outputs("Set5")
    assert [o.pk for o in again] == [o.pk for o in outputs] and Output.objects.count() == 5

    # The benchmark then uses the same TestImage rows.
    run_and_record(["Set5"], ["nn"], progress=False)
    assert TestImage.objects.count() == 5 and Output.objects.count() == 10


def replicate_pixels(lr):
    """A plugin method for the test below: x4 by repeating each pixel (what MATLAB's nearest imresize does)."""
    return np.repeat(np.repeat(lr, 4, axis=0), 4, axis=1)


def test_plugin_method_is_recorded_with_its_path(bench_dirs):
    plugin = f"{__name__}:replicate_pixels"
    run_command(datasets="Set5", methods=f"nn,{plugin}")

    method = Method.objects.get(name=plugin)
    assert (method.kind, method.plugin_path) == (Method.Kind.PLUGIN, plugin)
    for name in SET5:  # the same pixels as the built-in nn, so the same content address
        ours = Output.objects.get(method__name="nn", image__name=name)
        assert Output.objects.get(method=method, image__name=name).sha256 == ours.sha256


def test_changed_output_shown_in_a_study_fails_the_run_and_rolls_back(bench_dirs):
    from mos_study.models import Stimulus, Study

    run_command(datasets="Set5", methods="nn")
    shown = Output.objects.get(image__name="img_002")
    Stimulus.objects.create(study=Study.objects.create(name="pilot"), output=shown)
    Output.objects.filter(pk=shown.pk).update(sha256="0" * 64)  # as if nn had given other pixels before

    with pytest.raises(CommandError, match="pilot"):
        run_command(datasets="Set5", methods="nn", y_convention="float")

    failed = BenchmarkRun.objects.order_by("pk").last()
    assert failed.status == BenchmarkRun.Status.FAILED and "pilot" in failed.error and failed.outputs.count() == 0
    assert not Metric.objects.filter(y_convention="float").exists()  # one transaction: nothing of the run kept
    assert Output.objects.get(pk=shown.pk).sha256 == "0" * 64


def test_changed_output_not_in_a_study_follows_the_new_file(bench_dirs):
    run_command(datasets="Set5", methods="nn")
    output = Output.objects.get(image__name="img_002")
    real = output.sha256
    Output.objects.filter(pk=output.pk).update(sha256="0" * 64, file="outputs/old.png")

    run_command(datasets="Set5", methods="nn")
    output.refresh_from_db()
    assert (output.sha256, output.file) == (real, f"outputs/{real}.png") and Output.objects.count() == 5


def test_publish_refuses_a_file_that_is_not_what_its_name_says(bench_dirs):
    from mos_study.services.benchmark import RecordError, publish_output

    stored = bench_dirs.output / "outputs" / f"{'a' * 64}.png"
    stored.parent.mkdir(parents=True)
    stored.write_bytes(b"not the promised bytes")
    with pytest.raises(RecordError, match="does not hold"):
        publish_output(bench_dirs.output, stored.relative_to(bench_dirs.output), "a" * 64)
    assert files_under(bench_dirs.media) == []


@pytest.mark.slow
def test_set14_with_its_grey_image(bench_dirs, shared_datasets):
    run_command(datasets="Set14", methods="nn", data_dir=str(shared_datasets))
    hr_outputs = record_hr_outputs("Set14", data_dir=shared_datasets)

    assert TestImage.objects.count() == 14 and Output.objects.count() == 28
    grey = TestImage.objects.get(channels=1)  # Set14 holds one greyscale image
    for output in grey.outputs.all():
        with Image.open(bench_dirs.media / output.file) as img:
            assert img.mode == "L" and (img.width, img.height) == (grey.width, grey.height)
    assert {o.image.channels for o in hr_outputs} == {1, 3}
    psnr = np.mean(list(Metric.objects.values_list("psnr_y", flat=True)))
    assert psnr == pytest.approx(24.64, abs=0.1)  # the paper's Table 2: nearest neighbour on Set14, 24.64 dB


def save_tiny_srresnet(path, seed):
    """A small, untrained SRResNet checkpoint: enough to run the learned-method path quickly."""
    import torch

    from sr_models.archs.srresnet import SRResNet
    from sr_models.checkpoint import save_checkpoint

    torch.manual_seed(seed)
    save_checkpoint(path, SRResNet(num_features=8, num_blocks=1), method="srresnet-mse")


@pytest.mark.slow
def test_learned_method_outputs_are_kept_per_weights_file(bench_dirs):
    checkpoint = bench_dirs.weights / "srresnet-mse.pt"
    save_tiny_srresnet(checkpoint, seed=0)
    run_command(datasets="Set5", methods="srresnet-mse", device="cpu")
    first = sha256_of(checkpoint)
    assert set(Output.objects.values_list("weights_sha256", flat=True)) == {first}

    save_tiny_srresnet(checkpoint, seed=1)  # retrained: new weights give new outputs, the old ones stay recorded
    printed = run_command(datasets="Set5", methods="srresnet-mse", device="cpu")
    assert "5 outputs generated" in printed
    second = sha256_of(checkpoint)
    assert set(Output.objects.values_list("weights_sha256", flat=True)) == {first, second}
    assert Output.objects.count() == 10 and Method.objects.get().kind == Method.Kind.BUILTIN
    latest = BenchmarkRun.objects.order_by("pk").last()
    assert set(latest.outputs.values_list("weights_sha256", flat=True)) == {second}


@pytest.mark.parametrize("links", [True, False], ids=["hard-link", "copy"])
def test_publish_puts_the_file_under_media_once(bench_dirs, monkeypatch, links):
    from mos_study.services import benchmark

    def cross_device(source, destination):
        raise OSError(18, "Invalid cross-device link")

    if not links:  # another file system: os.link fails with EXDEV, the file is copied
        monkeypatch.setattr(os, "link", cross_device)
    data = (bench_dirs.data / "Set5" / "image_SRF_4" / "img_001_SRF_4_LR.png").read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    stored = bench_dirs.output / "outputs" / f"{sha}.png"
    stored.parent.mkdir(parents=True)
    stored.write_bytes(data)

    assert benchmark.publish_output(bench_dirs.output, f"outputs/{sha}.png", sha) == f"outputs/{sha}.png"
    assert benchmark.publish_output(bench_dirs.output, f"outputs/{sha}.png", sha) == f"outputs/{sha}.png"
    assert [p.name for p in (bench_dirs.media / "outputs").iterdir()] == [f"{sha}.png"]  # no temp left
    assert (bench_dirs.media / "outputs" / f"{sha}.png").read_bytes() == data
    assert os.path.samefile(stored, bench_dirs.media / "outputs" / f"{sha}.png") == links
