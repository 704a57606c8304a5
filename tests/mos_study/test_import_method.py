"""``manage.py import_method``: an external model's outputs recorded, measured and tabulated like a built-in method."""

import io

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from mos_study.models import BenchmarkRun, Method, Metric, Output

from .conftest import files_under

pytestmark = pytest.mark.django_db

SET5 = ["img_001", "img_002", "img_003", "img_004", "img_005"]


def import_method(**options):
    out = io.StringIO()
    call_command("import_method", quiet=True, stdout=out, **options)
    return out.getvalue()


@pytest.fixture
def external_outputs(tmp_path, bench_dirs):
    """A folder of 'external' x4 outputs: the project's bicubic upscale of each Set5 LR file, as an outside
    program would leave them (its own file names, RGBA PNGs with a text chunk)."""
    from sr_models.resize import imresize

    folder = tmp_path / "external"
    folder.mkdir()
    for name in SET5:
        lr = np.asarray(Image.open(bench_dirs.data / "Set5" / "image_SRF_4" / f"{name}_SRF_4_LR.png").convert("RGB"))
        sr = imresize(lr, scale=4)
        Image.fromarray(sr).convert("RGBA").save(folder / f"{name}_x4_SR.png")
    return folder


@pytest.mark.slow
def test_import_records_an_external_method_measured_like_a_builtin(bench_dirs, external_outputs):
    printed = import_method(
        name="my-model", dataset="Set5", outputs=str(external_outputs), description="bicubic from elsewhere"
    )

    method = Method.objects.get(name="my-model")
    assert (method.kind, method.description) == (Method.Kind.EXTERNAL, "bicubic from elsewhere")
    outputs = Output.objects.filter(method=method)
    assert sorted(o.image.name for o in outputs) == SET5 and Metric.objects.count() == 5
    run = BenchmarkRun.objects.get()
    assert run.status == BenchmarkRun.Status.DONE and run.outputs.count() == 5
    assert "my-model" in printed
    for output in outputs:  # stored re-encoded, without the alpha channel and the text chunk
        with Image.open(bench_dirs.media / output.file) as img:
            assert img.mode == "RGB" and not img.info

    # The same pixels as the built-in bicubic: the same content address and the same metrics when run together.
    out = io.StringIO()
    call_command("run_benchmark", datasets="Set5", methods="bicubic,my-model", quiet=True, stdout=out)
    assert "my-model" in out.getvalue()
    assert (bench_dirs.output / "metrics_summary.md").read_text().count("my-model") >= 1
    for name in SET5:
        ours = Output.objects.get(method__name="bicubic", image__name=name)
        theirs = Output.objects.get(method=method, image__name=name)
        assert ours.sha256 == theirs.sha256
        assert ours.metrics.get().psnr_y == pytest.approx(theirs.metrics.get().psnr_y, abs=1e-9)
    assert Output.objects.filter(method=method).count() == 5  # the run reused the imported rows


def test_reimport_is_idempotent(bench_dirs, external_outputs):
    import_method(name="my-model", dataset="Set5", outputs=str(external_outputs))
    ids = sorted(Output.objects.values_list("pk", "sha256"))
    import_method(name="my-model", dataset="Set5", outputs=str(external_outputs))
    assert sorted(Output.objects.values_list("pk", "sha256")) == ids and Metric.objects.count() == 5


def assert_nothing_written(bench_dirs):
    assert files_under(bench_dirs.output) == [] and files_under(bench_dirs.media) == []
    assert not (Output.objects.exists() or Metric.objects.exists() or Method.objects.exists())


def test_missing_file_is_refused(bench_dirs, external_outputs):
    (external_outputs / "img_003_x4_SR.png").unlink()
    with pytest.raises(CommandError, match="img_003"):
        import_method(name="my-model", dataset="Set5", outputs=str(external_outputs))
    assert_nothing_written(bench_dirs)


def test_wrong_size_is_refused(bench_dirs, external_outputs):
    path = external_outputs / "img_002_x4_SR.png"
    with Image.open(path) as img:
        img.resize((img.width // 2, img.height // 2)).save(path)
    with pytest.raises(CommandError, match="img_002_x4_SR.png"):
        import_method(name="my-model", dataset="Set5", outputs=str(external_outputs))
    assert_nothing_written(bench_dirs)


def test_unknown_dataset_is_refused(bench_dirs, external_outputs):
    with pytest.raises(CommandError, match="NoSuchSet"):
        import_method(name="my-model", dataset="NoSuchSet", outputs=str(external_outputs))
    assert_nothing_written(bench_dirs)


def test_missing_outputs_folder_is_refused(bench_dirs, tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        import_method(name="my-model", dataset="Set5", outputs=str(tmp_path / "nowhere"))
    assert_nothing_written(bench_dirs)


def test_name_of_a_builtin_method_is_refused(bench_dirs, external_outputs):
    Method.objects.create(name="bicubic", kind=Method.Kind.BUILTIN)
    with pytest.raises(CommandError, match="bicubic"):
        import_method(name="bicubic", dataset="Set5", outputs=str(external_outputs))
    assert not Output.objects.filter(method__kind=Method.Kind.EXTERNAL).exists()
