"""The dashboard's results: every table and figure of export_results, the same bytes, live, cached, permitted."""

import io
import json
import os
import subprocess
import sys
import math
import statistics
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.http import StreamingHttpResponse
from django.test import Client
from django.urls import reverse
from scipy.stats import t as student_t

from mos_study import analysis
from mos_study.models import Metric, Rater, Rating, RatingSession, Stimulus, Study, Trial
from mos_study.services import exports
from mos_study.services.rating_table import rating_records, rating_rows, ratings_frame

from tests.support.study_factory import store_outputs

# The cache starts empty: exports are cached per (study, last rating id), and ids restart after each test's rollback.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_cache")]
SCREENSHOT = "/tmp/srmos_results_page.png"
QUALITY = {"nn": 1, "bicubic": 2, "srgan-vgg54": 4, "hr": 5}
# The analysis tables of an export; the results page shows each of them.
RESULT_TABLES = (
    "mos.csv",
    "mos_per_image.csv",
    "screening.csv",
    "significance.csv",
    "metric_correlation.csv",
    "metrics_summary.csv",
    "table2.csv",
    "subjective_model_stimuli.csv",
    "subjective_model_raters.csv",
)


def make_study(media_root):
    """20 stimuli (5 images x 4 methods), 2 calibration stimuli, PSNR/SSIM records, no ratings yet."""
    outputs = store_outputs(media_root)
    study = Study.objects.create(name="dash-mos")
    for o in outputs:
        Stimulus.objects.create(study=study, output=o)
        if o.image.name == "img_001" and o.method.name in ("nn", "hr"):
            Stimulus.objects.create(
                study=study, output=o, is_calibration=True, calibration_score=1 if o.method.name == "nn" else 5
            )
    for k, output in enumerate(outputs):
        Metric.objects.create(output=output, psnr_y=20 + QUALITY[output.method.name] + k % 3, ssim_y=0.5 + k / 100)
    return study


@pytest.fixture
def study(tmp_path):
    return make_study(tmp_path / "media")


def add_raters(study, n, first=0):
    """n raters, each rating the calibration stimuli, all 20 stimuli and one repeat (bulk inserts: fast)."""
    stimuli = list(study.stimuli.select_related("output__method").order_by("is_calibration", "pk"))
    calibration = [s for s in stimuli if s.is_calibration]
    plain = [s for s in stimuli if not s.is_calibration]
    raters = Rater.objects.bulk_create(Rater(study=study, participant_id=f"P{first + r}") for r in range(n))
    sessions = RatingSession.objects.bulk_create(RatingSession(rater=r, study=study, seed=0) for r in raters)
    trials, scores = [], []
    for r, session in enumerate(sessions, start=first):
        plan = [(s, "calibration") for s in calibration] + [(s, "trial") for s in plain] + [(plain[5], "repeat")]
        for position, (stimulus, kind) in enumerate(plan):
            trials.append(Trial(session=session, position=position, stimulus=stimulus, kind=kind))
            quality = QUALITY[stimulus.output.method.name]
            scores.append(stimulus.calibration_score or min(5, max(1, quality + (position + r) % 3 - 1)))
    trials = Trial.objects.bulk_create(trials)
    Rating.objects.bulk_create(
        Rating(trial=t, score=s, response_ms=1500 + 10 * t.position) for t, s in zip(trials, scores)
    )


@pytest.fixture
def owner(client, people):
    client.force_login(people["owner"])
    return client


def url(name, study, *args):
    return reverse(f"mos_study:{name}", args=[study.pk, *args])


def body(response):
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.mark.slow  # the analysis with its 4 figures in SVG and PNG, twice (command and dashboard)
def test_every_download_is_the_commands_file_byte_for_byte(study, owner, tmp_path):
    add_raters(study, 4)
    out = tmp_path / "export"
    call_command("export_results", "--study", study.name, "--output-dir", str(out))
    names = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert {
        "ratings.csv",
        *RESULT_TABLES,
        "table2.md",
        "table2.tex",
        "summary.md",
        "export.json",
        "figures/mos.svg",
        "figures/mos.png",
        "figures/mos_letters.svg",
        "figures/mos_letters.png",
        "figures/score_distribution.svg",
        "figures/score_distribution.png",
        "figures/mos_psnr.svg",
        "figures/mos_psnr.png",
    } <= set(names)
    page = owner.get(url("study_results", study))
    assert sorted(page.context["downloads"]) == names
    for name in names:
        response = owner.get(url("export_file", study, name))
        assert response.status_code == 200, name
        assert body(response) == (out / name).read_bytes(), name
    assert isinstance(owner.get(url("export_file", study, "ratings.csv")), StreamingHttpResponse)
    assert owner.get(url("export_file", study, "figures/mos.png"))["Content-Type"] == "image/png"
    assert owner.get(url("mos_svg", study)).content == (out / "figures/mos.svg").read_bytes()
    archive = owner.get(url("export_zip", study))
    assert archive["Content-Disposition"] == 'attachment; filename="dash-mos-results.zip"'
    data = body(archive)
    with zipfile.ZipFile(io.BytesIO(data)) as opened:
        assert opened.namelist() == names
        for name in names:
            assert opened.read(name) == (out / name).read_bytes(), name
    assert body(owner.get(url("export_zip", study))) == data  # fixed dates: the same export, the same zip


@pytest.mark.slow  # first import of scipy/matplotlib and one analysis with figures
def test_results_page_shows_every_table_and_figure_with_the_right_numbers(study, owner):
    add_raters(study, 4)
    page = owner.get(url("study_results", study))
    assert page.status_code == 200 and "error" not in page.context
    shown = {item["name"] for item in page.context["tables"]}
    assert set(RESULT_TABLES) <= shown
    assert [f["name"] for f in page.context["figures"]] == [
        "mos",
        "mos_letters",
        "score_distribution",
        "mos_psnr",
        "metric_agreement",
    ]
    html = page.content.decode()
    for name in ("mos.svg", "score_distribution.svg", "mos_psnr.png", "table2.tex", "summary.md", "ratings.csv"):
        assert name in html, name
    assert reverse("mos_study:export_zip", args=[study.pk]) in html and "results.js" in html
    # MOS and its Student-t CI, computed here from the stored ratings, plainly.
    for method in QUALITY:
        scores = list(
            Rating.objects.filter(trial__stimulus__output__method__name=method)
            .exclude(trial__kind="calibration")
            .values_list("score", flat=True)
        )
        row = next(r for r in page.context["mos"] if r["method"] == method)
        mean, sd = statistics.mean(scores), statistics.stdev(scores)
        half = student_t.ppf(0.975, len(scores) - 1) * sd / math.sqrt(len(scores))
        assert row["n_ratings"] == len(scores) == 4 * 5 + (4 if method == "bicubic" else 0)  # the repeat: bicubic
        assert row["mos"] == pytest.approx(mean) and row["ci95_high"] == pytest.approx(mean + half)
    mos_table = next(item["table"] for item in page.context["tables"] if item["name"] == "mos.csv")
    assert mos_table[0][:4] == ["dataset", "method", "n_ratings", "mos"]
    hr = next(row for row in mos_table[1] if row[1] == "hr")
    assert hr[3] == f"{page.context['mos'][[r['method'] for r in page.context['mos']].index('hr')]['mos']:.3f}"


@pytest.mark.slow
def test_live_poll_answers_204_until_ratings_arrive_and_the_analysis_runs_once_per_version(study, owner, monkeypatch):
    calls = []
    build = analysis.build_results
    monkeypatch.setattr(analysis, "build_results", lambda *a, **k: calls.append(1) or build(*a, **k))
    live = url("results_live", study)
    empty = owner.get(live)
    assert b"no ratings yet" in empty.content and calls == []
    add_raters(study, 3)
    page = owner.get(url("study_results", study))
    version = page.context["version"]
    assert owner.get(url("export_file", study, "mos.csv")).status_code == 200
    assert owner.get(url("export_file", study, "figures/mos_psnr.svg")).status_code == 200
    assert owner.get(live, {"version": version}).status_code == 204
    assert len(calls) == 1  # one analysis served the page, two files and the poll
    add_raters(study, 1, first=3)
    fresh = owner.get(live, {"version": version})
    assert fresh.status_code == 200 and len(calls) == 2
    html = fresh.content.decode()
    assert html.lstrip().startswith('<div id="results-body"') and f'data-version="{fresh.context["version"]}"' in html
    assert fresh.context["version"] != version and fresh.context["n_ratings"] == 4 * 23
    assert owner.get(live, {"version": fresh.context["version"]}).status_code == 204 and len(calls) == 2
    Rating.objects.filter(trial__kind="trial", score__lt=5).update(score=5)  # edited in place (the admin)
    edited = owner.get(live, {"version": fresh.context["version"]})
    assert edited.status_code == 200 and len(calls) == 3
    assert {row["method"]: row["mos"] for row in edited.context["mos"]}["nn"] > 4


def test_a_large_studys_csv_streams_every_rating(study, owner, django_assert_max_num_queries):
    add_raters(study, 150)  # 150 x 23 = 3450 ratings
    assert Rating.objects.count() == 3450
    expected = ratings_frame(study)
    for name, args in (("ratings_csv", ()), ("export_file", ("ratings.csv",))):
        with django_assert_max_num_queries(5):  # session, user, study, permission; the ratings in one query
            response = owner.get(url(name, study, *args))
            assert isinstance(response, StreamingHttpResponse) and response["Content-Type"].startswith("text/csv")
            text = body(response).decode()  # rows are read while streaming
        frame = pd.read_csv(
            io.StringIO(text),
            dtype={"session": str, "expected_score": "Int64"},
            keep_default_na=False,
            na_values={"expected_score": [""]},
        )
        assert len(frame) == 3450
        for column in ("dataset", "rater", "image", "method", "kind", "session", "timestamp"):
            assert frame[column].astype(str).tolist() == expected[column].tolist(), column
        for column in ("score", "trial", "repetition", "response_ms"):
            assert frame[column].astype(float).tolist() == expected[column].tolist(), column
        assert frame["expected_score"].sum() == 150 * (1 + 5)
    header = owner.get(url("export_file", study, "ratings.csv")).streaming_content
    assert next(iter(header)).decode() == ",".join(exports.EXPORT_RATING_COLUMNS) + "\n"


def test_chunked_rows_are_the_services_rows(study):
    add_raters(study, 2)
    rows = [
        {k: v for k, v in row.items() if k not in ("rating_id", "completion_code")}
        for row in rating_records(study, chunk_size=7)
    ]
    assert rows == list(rating_rows(study)) and len(rows) == 2 * 23


def test_every_results_url_needs_login_and_permission(study, people):
    add_raters(study, 1)
    pages = [
        url("study_results", study),
        url("results_live", study),
        url("export_file", study, "mos.csv"),
        url("export_file", study, "ratings.csv"),
        url("export_file", study, "figures/mos.svg"),
        url("export_zip", study),
        url("mos_svg", study),
    ]
    anonymous, stranger = Client(), Client()
    stranger.force_login(people["stranger"])
    for page in pages:
        response = anonymous.get(page)
        assert response.status_code == 302 and reverse("mos_study:login") in response["Location"], page
        assert stranger.get(page).status_code == 403, page
        assert stranger.post(page).status_code in (403, 405), page
    missing = reverse("mos_study:export_file", args=[987654, "mos.csv"])
    stranger.force_login(people["boss"])
    assert stranger.get(missing).status_code == 404


@pytest.mark.slow
def test_owner_listed_and_superuser_may_download_but_not_unknown_files(study, people):
    add_raters(study, 2)
    for who in ("owner", "listed", "boss"):
        client = Client()
        client.force_login(people[who])
        assert client.get(url("export_file", study, "screening.csv")).status_code == 200, who
        assert client.get(url("export_zip", study)).status_code == 200, who
    for name in ("nope.csv", "../settings.py", "figures/../mos.csv", "figures/"):
        assert client.get(url("export_file", study, name)).status_code == 404, name


def test_without_ratings_the_page_says_so_and_files_are_404(study, owner):
    page = owner.get(url("study_results", study))
    assert page.status_code == 200 and b'id="results-error"' in page.content and b"no ratings yet" in page.content
    for name in ("mos.csv", "figures/mos.svg"):
        response = owner.get(url("export_file", study, name))
        assert response.status_code == 404 and b"no ratings yet" in response.content
    assert owner.get(url("export_zip", study)).status_code == 404
    csv_lines = body(owner.get(url("export_file", study, "ratings.csv"))).decode().splitlines()
    assert csv_lines == [",".join(exports.EXPORT_RATING_COLUMNS)]


def test_the_index_links_the_upload_page_for_those_who_may_upload(client, people):
    client.force_login(people["boss"])
    assert reverse("mos_study:upload_outputs").encode() in client.get(reverse("mos_study:dashboard")).content
    client.force_login(people["stranger"])
    assert reverse("mos_study:upload_outputs").encode() not in client.get(reverse("mos_study:dashboard")).content


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_open_results_page_updates_itself_as_ratings_arrive(
    live_server, study, people, chromium_path, settings, monkeypatch
):
    from playwright.sync_api import sync_playwright

    from tests.conftest import CHROMIUM_ARGS

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop
    settings.SRMOS_RESULTS_POLL_SECONDS = 0.5
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(live_server.url + reverse("mos_study:login"))
        page.fill("input[name=username]", "owner")
        page.fill("input[name=password]", "pw")
        page.get_by_role("button", name="Log in").click()
        page.goto(live_server.url + url("study_results", study))
        assert "no ratings yet" in page.locator("#results-error").text_content()
        add_raters(study, 3)
        page.wait_for_selector("#mos-table tbody tr", timeout=90_000)  # no reload: the poll brought it
        assert page.locator("#mos-table tbody tr").count() == 4
        page.wait_for_function("() => document.querySelector('#figure-mos img').naturalWidth > 0", timeout=90_000)
        first = page.locator("#results-body").get_attribute("data-version")
        # A table the reader opened stays open across the refresh.
        page.click("#table-screeningcsv summary", position={"x": 4, "y": 8})
        add_raters(study, 1, first=3)
        page.wait_for_function(
            f"() => document.getElementById('results-body').dataset.version !== '{first}'", timeout=90_000
        )
        assert page.locator("#results-body p").first.text_content().startswith(f"{4 * 23} ratings")
        assert page.locator("#table-screeningcsv").get_attribute("open") is not None
        assert page.locator("#table-screeningcsv tbody tr").count() == 4
        page.wait_for_function("() => [...document.querySelectorAll('figure img')].every(i => i.naturalWidth > 0)")
        page.screenshot(path=SCREENSHOT, full_page=True)
        browser.close()


@pytest.mark.slow
@pytest.mark.postgres
def test_streaming_and_downloads_on_postgres(tmp_path, require_postgres):
    """PostgreSQL reads .iterator() through a server-side cursor, here after the view returned: run as a
    deployment would (this file as a script, settings from DATABASE_URL)."""
    from tests.support.live import fresh_database

    with fresh_database(require_postgres) as database_url:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "SRMOS_", "DJANGO_"))}
        env.update(
            DATABASE_URL=database_url,
            SRMOS_MEDIA_ROOT=str(tmp_path / "media"),
            DJANGO_SECRET_KEY="x" * 50,
            DJANGO_SETTINGS_MODULE="config.settings",
        )
        script = "import django; django.setup(); from tests.mos_study.test_dashboard_results import main; main()"
        result = subprocess.run(
            [sys.executable, "-c", script],
            cwd=Path(__file__).resolve().parents[2],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {
        "streaming": True,
        "lines": 1 + 3450,
        "same_as_export": True,
        "analysis_lines": 1 + 3450,
        "page": 200,
        "zip_has_ratings": True,
    }


def main():
    """Script mode (PostgreSQL test): migrate, a study of 3450 ratings, then the CSV, page and zip as the owner."""
    from django.conf import settings

    call_command("migrate", verbosity=0)
    study = make_study(settings.MEDIA_ROOT)
    add_raters(study, 150)
    client = Client()
    client.force_login(User.objects.create_superuser("boss", password="pw"))
    csv_response = client.get(reverse("mos_study:export_file", args=[study.pk, "ratings.csv"]))
    text = b"".join(csv_response.streaming_content).decode()
    analysis_text = b"".join(client.get(reverse("mos_study:ratings_csv", args=[study.pk])).streaming_content).decode()
    archive = zipfile.ZipFile(io.BytesIO(b"".join(client.get(reverse("mos_study:export_zip", args=[study.pk])))))
    print(
        json.dumps(
            {
                "streaming": csv_response.streaming,
                "lines": len(text.splitlines()),
                "same_as_export": text == "".join(exports.ratings_csv_lines(study)),
                "analysis_lines": len(analysis_text.splitlines()),
                "page": client.get(reverse("mos_study:study_results", args=[study.pk])).status_code,
                "zip_has_ratings": archive.read("ratings.csv").decode() == text,
            }
        )
    )
