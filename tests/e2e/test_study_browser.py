"""A MOS study end to end in headless chromium: researcher creates it, two raters complete it, the dashboard counts."""

import io
import re
import struct

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from mos_study.models import Rater, Rating, RatingSession, Trial
from tests.conftest import CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SCREENSHOT = "/tmp/srmos_rating_page.png"
MIN_VIEW_MS = 300  # the default minimum viewing time


@pytest.fixture
def study_link(live_server, transactional_db, settings, tmp_path, embedded_datasets, monkeypatch):
    """create_study on the embedded Set5 with nn and bicubic (the benchmark runs in-process first)."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.SRMOS_OUTPUT_DIR = tmp_path / "benchmark"
    settings.SRMOS_DATA_DIR = embedded_datasets
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    User.objects.create_user("researcher", password="s3cret-pw")
    out = io.StringIO()
    call_command(
        "create_study",
        "--name",
        "e2e",
        "--datasets",
        "Set5",
        "--methods",
        "nn,bicubic",
        "--images-per-session",
        "4",
        "--calibration-images",
        "1",
        "--repeated-trials",
        "1",
        "--ratings-per-stimulus",
        "2",
        "--owner",
        "researcher",
        "--base-url",
        live_server.url,
        stdout=out,
    )
    return re.search(r"Rater link: (\S+)", out.getvalue()).group(1)


@pytest.fixture
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def rater_of(page):
    return Rater.objects.get(token=re.search(r"/r/([^/]+)/", page.url).group(1))


def rate_with_keyboard(page, scores, reload_after=None, screenshot=False):
    """Answer every trial with the keys; calibration trials get the score their label asks for."""
    page.wait_for_url(re.compile(r"/r/[^/]+/$"))
    rater = rater_of(page)
    pressed = []
    while True:
        page.wait_for_selector("#completion-code, button.score:enabled", timeout=30_000)
        if page.locator("#completion-code").count():
            return rater, pressed, page.locator("#completion-code").text_content().strip()
        check_native_size(page)
        page.wait_for_timeout(MIN_VIEW_MS + 50)  # keys before the minimum viewing time are ignored
        if screenshot and not pressed:
            page.screenshot(path=SCREENSHOT, full_page=True)
        label = page.locator("#calibration-label")
        score = int(re.search(r"example of (\d)", label.text_content()).group(1)) if label.is_visible() else None
        score = score or scores[len(pressed) % len(scores)]
        before = page.locator("#progress-text").text_content()
        page.keyboard.press(str(score))
        pressed.append(score)
        # The progress text moves on only with the server's acknowledgement (the page counts what it stored).
        wait_until(lambda: moved_on(page, before))
        if len(pressed) == reload_after:
            page.reload()


def moved_on(page, before):
    from playwright.sync_api import Error

    try:  # the test thread never queries the database meanwhile: in-memory SQLite is shared with the server
        if page.locator("#completion-code").count():
            return True
        return page.locator("#progress-text").text_content(timeout=1000) != before
    except Error:  # the page is navigating to its completion code
        return False


def wait_until(condition, timeout=30.0):
    import time

    deadline = time.monotonic() + timeout
    while not holds(condition):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def holds(condition):
    """The condition, counted as not yet true while the test database (SQLite in memory, shared with the live
    server's thread) has the table locked by the server's write: the test's own probe, not the server, was refused."""
    from django.db import OperationalError

    try:
        return condition()
    except OperationalError as error:
        if "locked" not in str(error):
            raise
        return False


def check_native_size(page):
    size = page.evaluate(
        """() => { const img = document.getElementById('stimulus'); const box = img.getBoundingClientRect();
        return [img.naturalWidth, img.naturalHeight, box.width, box.height, window.devicePixelRatio,
                document.getElementById('size-warning').hidden]; }"""
    )
    natural_w, natural_h, shown_w, shown_h, ratio, warning_hidden = size
    # One image pixel per device pixel: CSS size x devicePixelRatio = natural size.
    assert (shown_w * ratio, shown_h * ratio) == (natural_w, natural_h) and natural_w > 0 and warning_hidden


def png_chunk_types(data):
    types, offset = set(), 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        types.add(data[offset + 4 : offset + 8])
        offset += 12 + length
    return types


def test_two_raters_complete_a_study_in_chromium(study_link, browser, live_server):
    alice = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    alice.goto(study_link)
    assert "excellent" in alice.content()
    alice.get_by_role("checkbox").check()
    alice.get_by_role("button", name="Start").click()
    first_image = alice.wait_for_selector("#stimulus:visible")
    image_bytes = alice.request.get(live_server.url + first_image.get_attribute("src")).body()
    assert png_chunk_types(image_bytes) <= {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"srMo"}  # srMo: padding only
    # The next image is fetched while the first is on screen, so the next trial follows with no wait.
    alice.wait_for_function("performance.getEntriesByType('resource').filter(e => e.name.includes('/i/')).length >= 2")
    rater_a, pressed_a, code_a = rate_with_keyboard(alice, [2, 4, 3], reload_after=3, screenshot=True)

    bob = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    failures = {"left": 2}

    def flaky_network(route):
        """The first rating POST never arrives (connection lost), the second gets a 503: the page must retry."""
        if route.request.method == "POST" and failures["left"]:
            failures["left"] -= 1
            if failures["left"]:
                return route.abort("connectionreset")
            return route.fulfill(status=503, body="{}", content_type="application/json")
        return route.continue_()

    bob.route("**/rate/", flaky_network)
    bob.goto(study_link + "?PROLIFIC_PID=panel-42")
    bob.get_by_role("checkbox").check()
    bob.keyboard.press("Enter")
    rater_b, pressed_b, code_b = rate_with_keyboard(bob, [5, 1])
    assert rater_b.participant_id == "panel-42" and failures["left"] == 0

    # Every rating stored once, in the order the keys were pressed, with a measured response time.
    for rater, pressed, code in [(rater_a, pressed_a, code_a), (rater_b, pressed_b, code_b)]:
        session = RatingSession.objects.get(rater=rater)
        trials = list(session.trials.select_related("rating"))
        assert len(trials) == len(pressed) == 2 + 4 + 1
        assert [t.rating.score for t in trials] == pressed
        assert all(t.rating.response_ms is not None and t.rating.response_ms > 0 for t in trials)
        assert session.finished is not None and code == session.completion_code
        assert [t.kind for t in trials[:2]] == [Trial.Kind.CALIBRATION] * 2
    assert Rating.objects.count() == 14

    researcher = browser.new_context().new_page()
    researcher.goto(live_server.url + "/dashboard/")
    researcher.fill("input[name=username]", "researcher")
    researcher.fill("input[name=password]", "s3cret-pw")
    researcher.get_by_role("button", name="Log in").click()
    researcher.get_by_role("link", name="e2e").click()
    assert researcher.locator("#stat-ratings").text_content() == "8"  # 2 raters x 4 trials (not calibration/repeat)
    assert researcher.locator("#stat-raters").text_content() == "2"
    assert researcher.locator("#stat-finished").text_content() == "2"
    assert researcher.locator("#progress-table tbody tr").count() == 8  # 4 test images (1 is calibration) x 2
    researcher.get_by_role("link", name="MOS and confidence intervals").click()
    assert researcher.locator("#mos-table tbody tr").count() == 2  # nn and bicubic on Set5

    # A 2x screen shows the image at one image pixel per device pixel (CSS size = natural / 2); a window smaller
    # than the image gets a warning (and the image is still not scaled). The window is 150 CSS pixels high: less than
    # any image plus the 160 pixels of page around it, whichever image the random order shows first.
    carol = browser.new_context(viewport={"width": 300, "height": 150}, device_scale_factor=2).new_page()
    carol.goto(study_link + "?pid=carol")
    carol.get_by_role("checkbox").check()
    carol.get_by_role("button", name="Start").click()
    carol.wait_for_selector("button.score:enabled")
    warning = carol.locator("#size-warning")
    warning.wait_for(state="visible", timeout=15000)  # auto-waits: a loaded machine may be slow to lay out
    assert "larger" in warning.text_content()
    natural, shown, ratio = carol.evaluate(
        "() => { const i = document.getElementById('stimulus');"
        " return [i.naturalWidth, i.getBoundingClientRect().width, window.devicePixelRatio]; }"
    )
    assert ratio == 2 and shown * 2 == natural
    carol_session = RatingSession.objects.get(rater__participant_id="carol")
    wait_until(lambda: RatingSession.objects.get(pk=carol_session.pk).viewing.get("device_pixel_ratio") == 2)
    viewing = RatingSession.objects.get(pk=carol_session.pk).viewing
    assert viewing["window_width"] == 300 and viewing["screen_width"] > 0 and "Chrome" in viewing["user_agent"]


def test_fast_keys_are_ignored_visibly(study_link, browser):
    from mos_study.models import Study

    Study.objects.update(min_view_ms=2000)
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(study_link + "?pid=quick")
    page.get_by_role("checkbox").check()
    page.get_by_role("button", name="Start").click()
    page.wait_for_selector("button.score:enabled")
    before = page.locator("#progress-text").text_content()
    page.keyboard.press("1")
    page.keyboard.press("5")
    status = page.locator("#status")
    assert "Too fast" in status.text_content() and status.is_visible()
    page.wait_for_timeout(300)
    assert page.locator("#progress-text").text_content() == before and not Rating.objects.exists()
    page.wait_for_timeout(2000)
    label = page.locator("#calibration-label")
    page.keyboard.press(re.search(r"example of (\d)", label.text_content()).group(1))
    wait_until(lambda: moved_on(page, before))
    assert Rating.objects.count() == 1 and Rating.objects.get().response_ms >= 2000


def test_a_broken_image_cannot_be_rated(study_link, browser):
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    broken = {"requests": 0}

    def break_images(route):
        broken["requests"] += 1
        return route.fulfill(status=200, body=b"\x89PNG not really", content_type="image/png")

    page.route("**/i/*", break_images)
    page.goto(study_link + "?pid=broken")
    page.get_by_role("checkbox").check()
    page.get_by_role("button", name="Start").click()
    page.wait_for_selector("#retry-image", timeout=30_000)  # retried, then reported
    assert "could not be loaded" in page.locator("#loading").text_content()
    assert broken["requests"] >= 3
    assert page.locator("button.score:enabled").count() == 0
    for key in "12345":
        page.keyboard.press(key)
    page.wait_for_timeout(500)
    assert not Rating.objects.exists()
    session = RatingSession.objects.get(rater__participant_id="broken")
    wait_until(lambda: RatingSession.objects.get(pk=session.pk).viewing.get("image_failures", 0) >= 1)
    # The network comes back: "try again" shows the image and it can be rated.
    page.unroute("**/i/*")
    page.click("#retry-image")
    page.wait_for_selector("button.score:enabled")


SCREENSHOT_VIEWPORTS = {
    "desktop": {"viewport": {"width": 1280, "height": 900}},
    "phone": {
        "viewport": {"width": 390, "height": 844},
        "device_scale_factor": 3,
        "is_mobile": True,
        "has_touch": True,
    },
}


@pytest.mark.parametrize("device", sorted(SCREENSHOT_VIEWPORTS))
def test_rater_steps_screenshots(study_link, browser, device, tmp_path):
    """What raters see at each step, on a desktop and a phone; scripts/rater_screenshots.sh writes them to docs/img
    (SRMOS_SCREENSHOT_DIR), else they go to a temporary folder."""
    import os
    from pathlib import Path

    folder = Path(os.environ.get("SRMOS_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    page = browser.new_context(**SCREENSHOT_VIEWPORTS[device]).new_page()
    page.goto(study_link + f"?pid=shot-{device}")
    page.screenshot(path=folder / f"rater-1-consent-{device}.png", full_page=True)
    page.get_by_role("checkbox").check()
    page.get_by_role("button", name="Start").click()
    shots = {0: "2-calibration", 2: "3-trial"}
    for step in range(7):
        page.wait_for_selector("button.score:enabled", timeout=30_000)
        page.wait_for_timeout(MIN_VIEW_MS + 50)
        if step in shots:
            page.screenshot(path=folder / f"rater-{shots[step]}-{device}.png", full_page=True)
        label = page.locator("#calibration-label")
        score = re.search(r"example of (\d)", label.text_content()).group(1) if label.is_visible() else "3"
        before = page.locator("#progress-text").text_content()
        page.keyboard.press(score)
        wait_until(lambda: moved_on(page, before))
    page.wait_for_selector("#completion-code")
    page.screenshot(path=folder / f"rater-4-done-{device}.png", full_page=True)
