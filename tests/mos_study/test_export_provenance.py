"""A study's exports carry the provenance its methods' benchmark runs recorded: stand-in models are marked, learned
methods get their provenance line (issue 15), and a study without any recorded provenance exports as before."""

import pandas as pd
import pytest
from django.core.management import call_command

from benchmarks.tables import STAND_IN_MARK, provenance_row
from mos_study.models import Method
from mos_study.services import sessions
from mos_study.services.benchmark import record_provenance
from mos_study.services.rating import rate_trial
from tests.support.study_factory import stored_study

pytestmark = pytest.mark.django_db
QUALITY = {"nn": 1, "bicubic": 2, "srgan-vgg54": 4, "hr": 5}


def rated_study(tmp_path):
    study = stored_study(tmp_path / "media", "prov", ratings_per_stimulus=3, seed=3)
    for r in range(3):
        session = sessions.start_session(study, participant_id=f"R{r}", seed=r)
        for trial in session.trials.order_by("position").select_related("stimulus__output__method"):
            score = min(5, max(1, QUALITY[trial.stimulus.output.method.name] + (trial.position + r) % 3 - 1))
            rate_trial(session.rater.token, trial.token, score)
    return study


def export(tmp_path):
    out = tmp_path / "export"
    call_command("export_results", "--study", "prov", "--output-dir", str(out), "--no-figures")
    return out


def test_recorded_provenance_marks_stand_in_models_in_the_study_exports(tmp_path):
    study = rated_study(tmp_path)
    stand_in = {
        "weights": "x.pt",
        "provenance": {
            "content_loss": "vgg54",
            "vgg_weights": "random (stand-in)",
            "stand_in_features": True,
            "training_steps": 40,
            "trainer": "sr_models.train",
            "data": ["train_demo"],
        },
    }
    record_provenance([provenance_row("srgan-vgg54", stand_in), provenance_row("nn")])
    assert Method.objects.get(name="srgan-vgg54").provenance["stand_in_features"] == "True"
    out = export(tmp_path)
    mos = pd.read_csv(out / "mos.csv").set_index("method")
    assert bool(mos.loc["srgan-vgg54", "stand_in_features"]) and not bool(mos.loc["nn", "stand_in_features"])
    summary = (out / "summary.md").read_text()
    assert (
        f"srgan-vgg54 {STAND_IN_MARK}" in summary and "srgan-vgg54: sr_models.train srgan-vgg54, 40 updates" in summary
    )
    assert study.name == "prov"


def test_without_recorded_provenance_the_export_has_no_marks(tmp_path):
    rated_study(tmp_path)
    out = export(tmp_path)
    assert "stand_in_features" not in pd.read_csv(out / "mos.csv").columns
    assert STAND_IN_MARK not in (out / "summary.md").read_text()
