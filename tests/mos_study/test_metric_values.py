"""Extra quality metrics in the database (issue 19): ``run_benchmark --metrics`` records one ``MetricValue`` per
output and metric, re-runs update rather than duplicate, and a study's metrics frame (what the agreement
statistics read) gains one column per metric."""

import csv
import io

import pytest
from django.core.management import CommandError, call_command

from mos_study.models import Metric, MetricValue, Output
from mos_study.services import exports
from tests.mos_study.test_export_results import study  # noqa: F401 (the rated study fixture)
from tests.support.study_factory import stored_study

pytestmark = pytest.mark.django_db


def run_command(**options):
    out = io.StringIO()
    call_command("run_benchmark", quiet=True, stdout=out, **options)
    return out.getvalue()


@pytest.mark.slow
def test_run_benchmark_records_each_metric_of_each_output(bench_dirs):
    printed = run_command(datasets="Set5", methods="nn,bicubic", metrics="psnr,ssim,gmsd,niqe")
    assert "gmsd \u2193" in printed and "niqe \u2193" in printed
    assert MetricValue.objects.count() == 20 and Metric.objects.count() == 10
    with open(bench_dirs.output / "metrics_per_image.csv", newline="") as f:
        rows = {(r["method"], r["image"]): r for r in csv.DictReader(f)}
    for value in MetricValue.objects.select_related("output__method", "output__image"):
        row = rows[(value.output.method.name, value.output.image.name)]
        assert value.value == pytest.approx(float(row[value.name]), rel=1e-12)
        assert value.crop_border == 4 and value.weights_note == ""
        assert value.convention == {"gmsd": "rgb01", "niqe": "y-integer"}[value.name]

    run_command(datasets="Set5", methods="bicubic", metrics="psnr,ssim,gmsd,niqe")  # reused, not duplicated
    assert MetricValue.objects.count() == 20


def test_an_unknown_metric_is_a_command_error_before_any_work(bench_dirs):
    with pytest.raises(CommandError, match="unknown metric 'lpip'; available: psnr_y"):
        run_command(datasets="Set5", methods="nn", metrics="psnr,lpip")
    with pytest.raises(CommandError, match="Ma score"):
        run_command(datasets="Set5", methods="nn", metrics="ma")
    assert Output.objects.count() == 0


def test_the_study_metrics_frame_has_one_column_per_recorded_metric(media_root):
    shown = stored_study(media_root, "metric-frame")
    outputs = list(Output.objects.filter(stimuli__study=shown).select_related("method", "image").distinct())
    for k, output in enumerate(outputs):
        Metric.objects.create(output=output, psnr_y=20 + k, ssim_y=0.5)
        MetricValue.objects.create(output=output, name="lpips_alex", convention="rgb01", value=k / 100)
        if output.method.name != "nn":
            MetricValue.objects.create(output=output, name="niqe", convention="y-integer", value=5 + k)
        MetricValue.objects.create(output=output, name="gmsd", convention="rgb01", crop_border=8, value=1.0)
    table = exports.study_metrics(shown)
    assert list(table.columns) == ["dataset", "image", "method", "psnr_y", "ssim_y", "lpips_alex", "niqe"]
    by_key = {(o.image.name, o.method.name): k for k, o in enumerate(outputs)}
    for row in table.to_dict("records"):
        k = by_key[(row["image"], row["method"])]
        assert row["lpips_alex"] == k / 100
        assert (row["niqe"] != row["niqe"]) if row["method"] == "nn" else row["niqe"] == 5 + k  # NaN for nn
    assert exports.study_metrics(shown, crop_border=8) is None  # PSNR/SSIM recorded with border 4 only


def test_without_metric_values_the_frame_is_psnr_and_ssim(media_root):
    shown = stored_study(media_root, "plain-frame")
    for output in Output.objects.filter(stimuli__study=shown).distinct():
        Metric.objects.create(output=output, psnr_y=25, ssim_y=0.7)
    assert list(exports.study_metrics(shown).columns) == exports.METRIC_COLUMNS


def test_the_export_carries_each_metric_and_marks_stand_in_weights(study, tmp_path):  # noqa: F811 (the fixture)
    for k, metric in enumerate(Metric.objects.select_related("output")):
        MetricValue.objects.create(
            output=metric.output, name="lpips_alex", convention="rgb01", value=k / 50, weights_note="stand-in"
        )
        MetricValue.objects.create(output=metric.output, name="niqe", convention="y-integer", value=4 + k / 10)
    out = tmp_path / "export"
    call_command("export_results", "--study", "srgan-mos", "--output-dir", str(out), "--no-figures")
    with open(out / "metrics_summary.csv", newline="") as f:
        summary = list(csv.DictReader(f))
    assert list(summary[0])[-2:] == ["lpips_alex", "niqe"] and all(float(row["niqe"]) > 4 for row in summary)
    with open(out / "metric_provenance.csv", newline="") as f:
        provenance = {row["metric"]: row for row in csv.DictReader(f)}
    assert provenance["lpips_alex"]["weights_note"] == "stand-in" and provenance["niqe"]["weights_note"] == ""
    assert provenance["niqe"]["kind"] == "no-reference" and provenance["lpips_alex"]["higher_is_better"] == "False"


def test_the_admin_shows_a_researcher_only_the_metric_values_of_methods_they_may_see(media_root):
    from django.contrib.auth.models import User

    from mos_study.admin_scope import visible_rows
    from mos_study.models import Method

    stored_study(media_root, "admin-scope")
    theirs = Method.objects.create(name="someone-elses", kind=Method.Kind.EXTERNAL, owner=User.objects.create_user("a"))
    shared = Output.objects.filter(method__name="bicubic").first()
    private = Output.objects.create(method=theirs, image=shared.image, sha256="f" * 64, file="x.png", width=1, height=1)
    for output in (shared, private):
        MetricValue.objects.create(output=output, name="niqe", convention="y-integer", value=5)
    researcher = User.objects.create_user("b")
    assert list(visible_rows(MetricValue, researcher)) == list(MetricValue.objects.filter(output=shared))
