"""The results page says which metric agrees with the raters: the pooled agreement table and the summary line of a
demo-like study (Set5, the quick start's four methods and HR, PSNR/SSIM records and an extra metric column)."""

import os
from pathlib import Path

import numpy as np
import pytest
from django.urls import reverse

from mos_study.analysis.agreement import metric_agreement
from mos_study.models import Metric, Rater, Rating, RatingSession, Stimulus, Study, Trial
from mos_study.services import exports

from tests.support.study_factory import store_outputs

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_cache")]
QUALITY = {"nn": 1.3, "bicubic": 2.1, "srresnet-mse": 3.0, "srgan-mse": 3.8, "hr": 4.7}  # the quick start's study
SCREENSHOT = "results-metric-agreement.png"


def demo_study(media_root, raters=12):
    """Set5's five images x the quick start's methods, PSNR/SSIM records (HR: infinite PSNR, as a benchmark
    records it), and ``raters`` raters who each score every stimulus once, scores following quality with noise."""
    rng = np.random.default_rng(4)
    study = Study.objects.create(name="demo-agreement")
    outputs = store_outputs(media_root, methods=list(QUALITY))
    stimuli, truth = [], {}
    for output in outputs:
        quality = QUALITY[output.method.name] + rng.normal(0, 0.5)
        hr = output.method.name == "hr"
        psnr = np.inf if hr else 23 + 1.2 * quality + rng.normal(0, 1.0)
        ssim = 1.0 if hr else 0.55 + 0.06 * quality + rng.normal(0, 0.03)
        Metric.objects.create(output=output, psnr_y=psnr, ssim_y=ssim)
        stimuli.append(Stimulus.objects.create(study=study, output=output))
        truth[output.pk] = quality
    people = Rater.objects.bulk_create(Rater(study=study, participant_id=f"P{r}") for r in range(raters))
    sessions = RatingSession.objects.bulk_create(
        RatingSession(rater=rater, study=study, seed=k) for k, rater in enumerate(people)
    )
    trials = Trial.objects.bulk_create(
        Trial(session=session, position=k, stimulus=stimulus, kind="trial")
        for session in sessions
        for k, stimulus in enumerate(stimuli)
    )
    Rating.objects.bulk_create(
        Rating(trial=t, score=int(np.clip(np.round(truth[t.stimulus.output_id] + rng.normal(0, 0.8)), 1, 5)))
        for t in trials
    )
    return study


@pytest.fixture
def extra_metric(monkeypatch):
    """The study's metrics frame with one more column, lpips_alex (lower is better), as the benchmark's perceptual
    metrics add them: a distance that falls as SSIM rises, with noise of its own (seeded), 0 for HR."""
    plain = exports.study_metrics

    def with_lpips(study, *args, **kwargs):
        table = plain(study, *args, **kwargs)
        noise = np.random.default_rng(8).normal(0, 0.02, len(table))
        lpips = np.clip(0.95 - 0.9 * table["ssim_y"].to_numpy(dtype=float) + noise, 0, 1)
        return table.assign(lpips_alex=np.where(np.isinf(table["psnr_y"]), 0.0, lpips))

    monkeypatch.setattr(exports, "study_metrics", with_lpips)


@pytest.fixture
def owner(client, people):
    client.force_login(people["owner"])
    return client


@pytest.fixture
def study(tmp_path):
    return demo_study(tmp_path / "media")


def page_for(client, study):
    return client.get(reverse("mos_study:study_results", args=[study.pk]))


@pytest.mark.slow  # one analysis with its figures
def test_the_results_page_shows_which_metric_agrees_with_the_raters(study, owner, extra_metric):
    page = page_for(owner, study)
    assert page.status_code == 200 and "error" not in page.context
    export = exports.dashboard_export(study)
    # The numbers come from the export's metric_agreement.csv: recompute them here from the analysis itself.
    results = exports.build_export(study, with_ratings_csv=False, figures=False).results
    agreement = metric_agreement(results.mos_per_image, results.mos, results.metrics, seed=0)
    expected = agreement.per_stimulus[agreement.per_stimulus["dataset"] == "all"].set_index("metric")
    rows = {row["metric"]: row for row in page.context["agreement"]}
    assert list(rows) == ["psnr_y", "ssim_y", "lpips_alex"]
    for metric, row in rows.items():
        assert row["n"] == "20"  # 5 images x 4 methods: HR (infinite PSNR) left out
        assert row["srocc"] == f"{expected.loc[metric, 'srocc']:.3f}"
        assert row["plcc_ci95_high"] == f"{expected.loc[metric, 'plcc_ci95_high']:.3f}"
    assert rows["lpips_alex"]["direction"] == "lower" and float(rows["lpips_alex"]["srocc"]) < 0
    html = page.content.decode()
    assert 'id="metric-agreement-table"' in html and html.count("<tr><td>lpips_alex</td>") == 1
    assert agreement.summary == export.agreement_summary and agreement.summary.startswith("Best agreement with MOS")
    assert f'<p id="metric-agreement-summary">{agreement.summary.replace(chr(39), "&#x27;")}</p>' in html
    assert "metric_agreement" in [f["name"] for f in page.context["figures"]]
    names = {item["name"] for item in page.context["tables"]}
    assert {"metric_agreement.csv", "metric_agreement_per_method.csv", "metric_agreement_tests.csv"} <= names


def test_without_metric_records_the_page_has_no_agreement_section(study, owner):
    Metric.objects.all().delete()
    page = page_for(owner, study)
    assert page.status_code == 200 and page.context["agreement"] == []
    assert 'id="metric-agreement-table"' not in page.content.decode()


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_screenshot_of_the_agreement_on_the_results_page(
    live_server, study, people, chromium_path, monkeypatch, extra_metric, tmp_path
):
    """The results page in Chromium, scrolled to the agreement; SRMOS_SCREENSHOT_DIR=docs/img keeps the picture."""
    from playwright.sync_api import sync_playwright

    from tests.conftest import CHROMIUM_ARGS

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop
    folder = Path(os.environ.get("SRMOS_SCREENSHOT_DIR") or tmp_path)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(live_server.url + reverse("mos_study:login"))
        page.fill("input[name=username]", "owner")
        page.fill("input[name=password]", "pw")
        page.get_by_role("button", name="Log in").click()
        page.goto(live_server.url + reverse("mos_study:study_results", args=[study.pk]))
        page.wait_for_selector("#metric-agreement-table tbody tr", timeout=90_000)
        assert page.locator("#metric-agreement-table tbody tr").count() == 3
        assert page.locator("#metric-agreement-summary").text_content().startswith("Best agreement with MOS")
        page.wait_for_function("() => document.querySelector('#figure-metric_agreement img').naturalWidth > 0")
        # From the section's heading to the end of the agreement figure (page coordinates: the page is not scrolled).
        top = page.locator("#metric-agreement").bounding_box()["y"] - 16
        figure = page.locator("#figure-metric_agreement").bounding_box()
        clip = {"x": 0, "y": top, "width": 1280, "height": figure["y"] + figure["height"] - top + 16}
        page.screenshot(path=folder / SCREENSHOT, full_page=True, clip=clip)
        browser.close()
    assert (folder / SCREENSHOT).read_bytes()[:4] == b"\x89PNG"
