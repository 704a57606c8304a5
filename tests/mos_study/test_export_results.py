"""``manage.py export_results``: the study's ratings and statistics, through the same code path as the CLI."""

import pandas as pd
import pytest
from django.core.management import CommandError, call_command

from mos_study.analysis.__main__ import main as analysis_cli
from mos_study.models import Metric, Rater, Rating, RatingSession, Stimulus, Study, Trial

from tests.support.study_factory import store_outputs

pytestmark = pytest.mark.django_db
QUALITY = {"nn": 1, "bicubic": 2, "srgan-vgg54": 4, "hr": 5}


@pytest.fixture
def study(tmp_path):
    """4 raters x 5 images x 4 methods (20 stimuli), two calibration trials and one repeat per rater, metrics."""
    outputs = store_outputs(tmp_path / "media")
    study = Study.objects.create(name="srgan-mos")
    stimuli = {o.pk: Stimulus.objects.create(study=study, output=o) for o in outputs}
    calibration = [
        Stimulus.objects.create(
            study=study, output=o, is_calibration=True, calibration_score=1 if o.method.name == "nn" else 5
        )
        for o in outputs
        if o.image.name == "img_001" and o.method.name in ("nn", "hr")
    ]
    for k, output in enumerate(outputs):
        Metric.objects.create(output=output, psnr_y=20 + QUALITY[output.method.name] + k % 3, ssim_y=0.5 + k / 100)
    for r in range(4):
        rater = Rater.objects.create(study=study, participant_id=f"P{r}")
        session = RatingSession.objects.create(rater=rater, study=study, seed=r)
        position = 0
        plan = [(s, "calibration") for s in calibration] + [(stimuli[o.pk], "trial") for o in outputs]
        plan.append((stimuli[outputs[5].pk], "repeat"))
        for stimulus, kind in plan:
            trial = Trial.objects.create(session=session, position=position, stimulus=stimulus, kind=kind)
            method = stimulus.output.method.name
            score = stimulus.calibration_score or min(5, max(1, QUALITY[method] + (position + r) % 3 - 1))
            Rating.objects.create(trial=trial, score=score, response_ms=1500 + 10 * position)
            position += 1
    return study


def test_export_writes_ratings_and_every_analysis_file(study, tmp_path):
    out = tmp_path / "export"
    call_command("export_results", "--study", "srgan-mos", "--output-dir", str(out), "--no-figures")
    ratings = pd.read_csv(out / "ratings.csv")
    assert (
        ",".join(ratings.columns[:10]) == "study,rater,session,trial,dataset,image,method,score,response_ms,timestamp"
    )
    assert len(ratings) == 4 * (2 + 20 + 1) and set(ratings.study) == {"srgan-mos"}
    assert (ratings.kind == "calibration").sum() == 8
    for name in (
        "mos.csv",
        "mos_per_image.csv",
        "screening.csv",
        "significance.csv",
        "subjective_model_stimuli.csv",
        "subjective_model_raters.csv",
        "metric_correlation.csv",
        "table2.csv",
        "summary.md",
        "export.json",
        "metrics_summary.csv",
    ):
        assert (out / name).exists(), name
    mos = pd.read_csv(out / "mos.csv").set_index("method")
    assert mos.loc["hr", "mos"] > mos.loc["nn", "mos"] and mos.loc["hr", "n_ratings"] == 4 * 5
    summary = pd.read_csv(out / "metrics_summary.csv").set_index("method")
    assert summary.loc["nn", "n_images"] == 5


def test_cli_on_the_export_gives_the_same_files(study, tmp_path):
    exported = tmp_path / "export"
    call_command("export_results", "--study", "srgan-mos", "--output-dir", str(exported), "--no-figures")
    metrics = tmp_path / "metrics_per_image.csv"
    pd.DataFrame(
        list(
            Metric.objects.values_list(
                "output__image__dataset", "output__image__name", "output__method__name", "psnr_y", "ssim_y"
            )
        ),
        columns=["dataset", "image", "method", "psnr_y", "ssim_y"],
    ).to_csv(metrics, index=False)
    again = tmp_path / "cli"
    assert (
        analysis_cli(
            [str(exported / "ratings.csv"), "--output-dir", str(again), "--metrics", str(metrics), "--no-figures"]
        )
        == 0
    )
    for path in sorted(again.iterdir()):
        assert path.read_bytes() == (exported / path.name).read_bytes(), path.name


def test_unknown_study_and_empty_study(study, tmp_path):
    with pytest.raises(CommandError, match="no study named 'nope' \\(studies: srgan-mos\\)"):
        call_command("export_results", "--study", "nope", "--output-dir", str(tmp_path / "x"))
    Study.objects.create(name="empty")
    with pytest.raises(CommandError, match="no ratings"):
        call_command("export_results", "--study", "empty", "--output-dir", str(tmp_path / "y"))
    assert not (tmp_path / "y").exists()
