"""A pairwise study in headless chromium (issue 18): a rater finishes a session by keyboard, both sides at native
size, every choice stored once and in order, and neither the page nor the image bytes reveal method or side.

Screenshots of the pairwise page go to ``SRMOS_SCREENSHOT_DIR`` (docs/img when making the docs' pictures), else to a
temporary folder.
"""

import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from PIL import Image

from mos_study.models import HR_METHOD, Comparison, RatingSession, Trial
from tests.e2e import test_study_browser as acr_browser
from tests.e2e.test_study_browser import MIN_VIEW_MS, png_chunk_types, rater_of, wait_until

browser = acr_browser.browser  # the ACR browser tests' fixture: headless Debian chromium through Playwright

pytestmark = [pytest.mark.browser, pytest.mark.slow]
METHOD_WORDS = ["nn", "bicubic", HR_METHOD, "nearest", "Set5", "baby", "bird", "butterfly", "head", "woman"]
KEYS = ["ArrowLeft", "2", "0", "1", "ArrowRight", "ArrowDown"]  # left, right, no preference, ...
SIDE_OF_KEY = {"ArrowLeft": "left", "1": "left", "ArrowRight": "right", "2": "right", "0": "none", "ArrowDown": "none"}


@pytest.fixture
def pairwise_link(live_server, transactional_db, settings, tmp_path, embedded_datasets, monkeypatch):
    """create_study --protocol pairwise on the embedded Set5 (nn, bicubic and HR; the benchmark runs in-process)."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.SRMOS_OUTPUT_DIR = tmp_path / "benchmark"
    settings.SRMOS_DATA_DIR = embedded_datasets
    out = io.StringIO()
    call_command(
        "create_study",
        *("--name", "pairs", "--datasets", "Set5", "--methods", "nn,bicubic", "--include-hr"),
        *("--protocol", "pairwise", "--allow-tie", "--images-per-session", "4", "--calibration-images", "1"),
        *("--gold-trials", "1", "--repeated-trials", "1", "--base-url", live_server.url),
        stdout=out,
    )
    return re.search(r"Rater link: (\S+)", out.getvalue()).group(1)


def screenshot_dir(tmp_path):
    folder = Path(os.environ.get("SRMOS_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def consent(page, link):
    page.goto(link)
    page.get_by_role("checkbox").check()
    page.get_by_role("button", name="Start").click()
    page.wait_for_url(re.compile(r"/r/[^/]+/$"))


def sides_at_native_size(page):
    """Each shown side: natural size == CSS size x devicePixelRatio (one image pixel per device pixel)."""
    return page.evaluate(
        """() => ['left', 'right'].map((side) => {
            const img = document.getElementById('image-' + side); const box = img.getBoundingClientRect();
            return [side, img.hidden, img.naturalWidth, img.naturalHeight, box.width * devicePixelRatio,
                    box.height * devicePixelRatio, box.left, box.top];
        })"""
    )


def without_tokens(text):
    """The page without its random tokens (22 URL-safe characters or more), which could spell anything."""
    return re.sub(r"[A-Za-z0-9_-]{20,}", "", text)


def check_blind(page):
    """No method, dataset or image name, nor A/B, in the page: its text, every attribute, its config."""
    html = without_tokens(
        page.evaluate(
            """() => [document.body.innerText, document.getElementById('compare-config').textContent,
                ...[...document.querySelectorAll('*')].flatMap((e) => [...e.attributes].map((a) => a.value))
            ].join('\\n')"""
        )
    )
    for word in METHOD_WORDS:
        assert not re.search(rf"\b{word}\b", html, re.IGNORECASE), word
    assert not re.search(r"data-(method|stimulus|a|b)\b|left_is_a|image_token", html)


def pixels(data):
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_a_rater_finishes_a_pairwise_session_by_keyboard(pairwise_link, browser, live_server, settings, tmp_path):
    folder = screenshot_dir(tmp_path)
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    consent(page, pairwise_link)
    rater = rater_of(page)
    state = page.request.get(live_server.url + f"/r/{rater.token}/state/").json()
    trials = {t.token: t for t in Trial.objects.filter(session__rater=rater).select_related("stimulus__output")}
    assert [row["token"] for row in state["trials"]] == sorted(trials, key=lambda k: trials[k].position)
    assert not re.search(r"\b(a|b|nn|bicubic|hr)\b", without_tokens(json.dumps(state)))
    pressed = []
    for index, row in enumerate(state["trials"]):
        page.wait_for_selector("button.choice:enabled", timeout=30_000)
        shown = sides_at_native_size(page)
        for side, hidden, natural_w, natural_h, device_w, device_h, _x, _y in shown:
            assert not hidden and natural_w > 0 and (device_w, device_h) == (natural_w, natural_h), side
        assert shown[0][6] + shown[0][4] <= shown[1][6]  # side by side: left entirely left of right
        assert page.locator("#toggle-side").is_hidden() and page.locator("#size-warning").is_hidden()
        check_blind(page)
        trial = trials[row["token"]]
        for side in ("left", "right"):  # each side's bytes: the stored output's pixels, padded, under a token
            url = row[side]["image"]
            data = page.request.get(live_server.url + url).body()
            stimulus = trial.stimulus if (side == "left") == trial.left_is_a else None
            stored_file = (stimulus or trial.stimulus_b).output.file
            stored = (Path(settings.MEDIA_ROOT) / stored_file).read_bytes()
            assert np.array_equal(pixels(data), pixels(stored)) and data != stored
            assert png_chunk_types(data) <= {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"srMo"}
            assert trial.token not in url and Path(stored_file).stem not in url
        page.wait_for_timeout(MIN_VIEW_MS + 50)  # keys before the minimum viewing time are ignored
        label = page.locator("#calibration-label")
        if label.is_visible():  # an example: choose the side it names
            if index == 0:
                page.screenshot(path=folder / "pairwise-1-calibration-desktop.png", full_page=True)
            key = "ArrowLeft" if "left image" in label.text_content() else "ArrowRight"
        else:
            if "pairwise-2-pair-desktop.png" not in {p.name for p in folder.iterdir()}:
                page.screenshot(path=folder / "pairwise-2-pair-desktop.png", full_page=True)
            key = KEYS[len(pressed) % len(KEYS)]
        before = page.locator("#progress-text").text_content()
        page.keyboard.press(key)
        pressed.append((row["token"], SIDE_OF_KEY[key]))
        wait_until(lambda: page.locator("#completion-code").count() or moved(page, before))
        if index == 2:
            page.reload()  # resume: the page continues with the next pair, nothing lost or doubled
            page.wait_for_selector("button.choice:enabled", timeout=30_000)
            assert page.locator("#progress-text").text_content() == f"Pair 4 of {state['total']}"
    page.wait_for_selector("#completion-code", timeout=30_000)
    page.screenshot(path=folder / "pairwise-4-done-desktop.png", full_page=True)

    session = RatingSession.objects.get(rater=rater)
    stored = list(Comparison.objects.filter(trial__session=session).order_by("pk").select_related("trial"))
    assert len(stored) == len(pressed) == session.trials.count() == 1 + 4 + 1 + 1
    for comparison, (token, side) in zip(stored, pressed):  # once each, in the order pressed
        trial = comparison.trial
        expected = "tie" if side == "none" else ("a" if (side == "left") == trial.left_is_a else "b")
        assert (trial.token, comparison.choice) == (token, expected) and comparison.response_ms >= MIN_VIEW_MS
    assert session.finished is not None
    assert page.locator("#completion-code").text_content().strip() == session.completion_code
    calibration = stored[0].trial
    assert calibration.kind == Trial.Kind.CALIBRATION and stored[0].choice == "a"  # HR, the example's better side


def moved(page, before):
    from playwright.sync_api import Error

    try:
        return page.locator("#progress-text").text_content(timeout=1000) != before
    except Error:  # navigating to the completion code
        return False


def test_a_window_too_narrow_for_both_shows_one_side_at_a_time(pairwise_link, browser, tmp_path):
    """Two images do not fit side by side: they are shown in place, T (or space) switches, and the choice opens only
    once both sides have been on screen; still one image pixel per device pixel on a 2x screen."""
    folder = screenshot_dir(tmp_path)
    page = browser.new_context(viewport={"width": 300, "height": 700}, device_scale_factor=2).new_page()
    consent(page, pairwise_link)
    page.wait_for_selector("#showing:visible", timeout=30_000)
    assert page.locator("#toggle-side").is_visible() and page.locator("#size-warning").is_visible()
    left, right = sides_at_native_size(page)
    assert not left[1] and right[1]  # the left side shown, in place of both
    assert (left[4], left[5]) == (left[2], left[3])  # CSS size x 2 = natural size
    page.wait_for_timeout(MIN_VIEW_MS + 50)
    assert page.locator("button.choice:enabled").count() == 0  # the right side has not been seen yet
    page.keyboard.press("1")
    assert page.locator("#progress-text").text_content().startswith("Pair 1 of")
    page.screenshot(path=folder / "pairwise-3-in-place-desktop.png", full_page=True)
    page.keyboard.press("t")
    page.wait_for_selector("button.choice:enabled")
    left, right = sides_at_native_size(page)
    assert left[1] and not right[1] and (right[4], right[5]) == (right[2], right[3])
    assert "right" in page.locator("#showing").text_content()
    page.keyboard.press(" ")  # space switches back
    assert "left" in page.locator("#showing").text_content()
