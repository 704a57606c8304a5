"""A study whose extra metric was computed with stand-in backbone weights (``MetricValue.weights_note``) marks it in
the metric agreement of its export, as ``metric_provenance.csv`` does; the other metrics stay unmarked."""

import csv

import pytest
from django.core.management import call_command

from mos_study.models import Metric, MetricValue
from mos_study.services import exports
from tests.mos_study.test_export_results import study  # noqa: F401 (the rated study fixture)

pytestmark = pytest.mark.django_db


def test_the_export_marks_a_metric_computed_with_stand_in_weights(study, tmp_path):  # noqa: F811 (the fixture)
    for k, metric in enumerate(Metric.objects.select_related("output")):
        MetricValue.objects.create(
            output=metric.output, name="lpips_alex", convention="rgb01", value=k / 50, weights_note="stand-in"
        )
        MetricValue.objects.create(output=metric.output, name="niqe", convention="y-integer", value=4 + k / 10)
    assert exports.stand_in_metric_names(study) == {"lpips_alex"}
    out = tmp_path / "export"
    call_command("export_results", "--study", "srgan-mos", "--output-dir", str(out), "--no-figures")
    with open(out / "metric_agreement.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {row["metric"]: row["weights"] for row in rows if row["dataset"] == "all"} == {
        "psnr_y": "",
        "ssim_y": "",
        "lpips_alex": "stand-in",
        "niqe": "",
    }
    summary = (out / "summary.md").read_text()
    assert "lpips_alex\u2020" in summary and "\u2020 stand-in weights: not the published metric" in summary
