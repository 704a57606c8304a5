"""The MOS beside a pairwise scale: the same owner's ACR study over the same outputs, from its finished results
(``pairwise_exports.mos_companion``), in the scale table, the summary, the results page; a new ACR result makes the
pairwise one stale; another owner's study is never used."""

import pandas as pd
import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from mos_study.models import Study
from mos_study.services import pairwise_exports, results_cache
from mos_study.services.rating import rate_trial
from mos_study.services.sessions import start_session
from mos_study.services.study_setup import create_study
from tests.support.study_factory import METHODS, store_outputs

from .test_pairwise_study import pairwise_study, rate_panel

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_cache")]
QUALITY = {"nn": 1, "bicubic": 2}  # the ACR raters' scores by method (others 4)


@pytest.fixture
def owner():
    return User.objects.create_superuser("boss", password="pw")


@pytest.fixture
def studies(media_root, owner):
    store_outputs(media_root)
    pairwise = pairwise_study(name="pw-beside", images_per_session=4)
    acr = create_study("acr-beside", ["Set5"], METHODS[:-1], run_missing=False, min_view_ms=0, seed=5)
    Study.objects.filter(pk__in=[pairwise.pk, acr.pk]).update(owner=owner)
    return Study.objects.get(pk=pairwise.pk), Study.objects.get(pk=acr.pk)


def rate_acr(study, raters):
    for r in range(raters):
        session = start_session(study, participant_id=f"A{r}", seed=200 + r)
        for trial in session.trials.select_related("stimulus__output__method"):
            score = trial.stimulus.calibration_score or QUALITY.get(trial.stimulus.output.method.name, 4)
            rate_trial(session.rater.token, trial.token, score, response_ms=800)


def test_the_acr_studys_mos_stands_beside_the_scale_and_names_its_source(studies, owner):
    pairwise, acr = studies
    rate_panel(pairwise, 3)
    before = pairwise_exports.comparisons_version(pairwise)
    assert pairwise_exports.build_pairwise_export(pairwise, bootstrap=20, figures=False).mos_source == ""

    rate_acr(acr, 4)
    results_cache.compute(acr.pk)  # the ACR study's results job
    assert pairwise_exports.comparisons_version(pairwise) != before  # its new result makes the pairwise one stale

    export = pairwise_exports.build_pairwise_export(pairwise, bootstrap=20, figures=False)
    assert export.mos_source.startswith("MOS from ACR study 'acr-beside'")
    scale = pd.DataFrame(export.scale).set_index("method")
    assert scale.loc["nn", "mos"] == pytest.approx(1.0) and scale.loc["bicubic", "mos"] == pytest.approx(2.0)
    assert "mos" in export.files["pairwise_scale.csv"].decode().splitlines()[0]
    assert export.mos_source in export.files["pairwise_summary.txt"].decode()

    results_cache.compute(pairwise.pk)
    client = Client()
    client.force_login(owner)
    html = client.get(reverse("mos_study:study_results", args=[pairwise.pk])).content.decode()
    assert 'id="mos-source"' in html and "acr-beside" in html and '<th class="num">MOS</th>' in html
    assert '<td class="num">1.00</td>' in html and "nan" not in html.lower()


def test_another_owners_acr_study_is_not_used(studies):
    pairwise, acr = studies
    Study.objects.filter(pk=acr.pk).update(owner=User.objects.create_user("other", password="pw"))
    rate_panel(pairwise, 2)
    rate_acr(acr, 2)
    results_cache.compute(acr.pk)
    assert pairwise_exports.mos_companion(pairwise) is None
    assert pairwise_exports.build_pairwise_export(pairwise, bootstrap=10, figures=False).mos_source == ""
