"""Panel rules in headless chromium: a stale second tab reloads instead of dropping scores; a phone is refused
before the consent form."""

import re

import pytest

from mos_study.models import DeviceRefusal, Rater, Rating, Study
from tests.e2e.test_study_browser import MIN_VIEW_MS, browser, study_link, wait_until  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.slow]
IPHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.0 Mobile/15E148 Safari/604.1"
)


def calibration_key(page):
    page.wait_for_selector("button.score:enabled", timeout=30_000)
    page.wait_for_timeout(MIN_VIEW_MS + 50)
    return re.search(r"example of (\d)", page.locator("#calibration-label").text_content()).group(1)


def shows_image(page, n):
    from playwright.sync_api import Error

    try:
        return page.locator("#progress-text").text_content(timeout=1000).startswith(f"Image {n} ")
    except Error:  # reloading
        return False


def test_a_stale_tab_says_the_session_continued_elsewhere_and_reloads(study_link, browser):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    first = context.new_page()
    first.goto(study_link + "?pid=tabs")
    first.get_by_role("checkbox").check()
    first.get_by_role("button", name="Start").click()
    first.wait_for_url(re.compile(r"/r/[^/]+/$"))
    key = calibration_key(first)
    second = context.new_page()  # the same session in a second tab (BroadcastChannel)
    second.goto(first.url)
    second.keyboard.press(calibration_key(second))
    notice = first.locator("#moved-on")
    notice.wait_for(state="visible", timeout=10_000)
    assert "another tab" in notice.text_content()
    wait_until(lambda: shows_image(first, 2))
    # Another device (no BroadcastChannel): the server answers 409 and the page reloads likewise.
    other = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    other.goto(first.url)
    key = calibration_key(first)
    other.keyboard.press(calibration_key(other))
    wait_until(lambda: Rating.objects.count() == 2)
    first.keyboard.press(str(6 - int(key)))  # a different score for the image the other device rated
    notice.wait_for(state="visible", timeout=10_000)
    wait_until(lambda: shows_image(first, 3))
    assert Rating.objects.count() == 2


def test_a_phone_is_refused_before_the_consent_form(study_link, browser):  # noqa: F811
    Study.objects.update(exclude_phones=True)
    phone = browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=3,
        is_mobile=True,
        has_touch=True,
        user_agent=IPHONE_UA,
    ).new_page()
    phone.goto(study_link + "?pid=phone")
    refused = phone.locator("#device-refused")
    refused.wait_for(state="visible")
    wait_until(lambda: "phone" in refused.text_content())
    assert not phone.locator("#start").is_visible()
    wait_until(lambda: DeviceRefusal.objects.filter(reason="phone").exists())
    assert DeviceRefusal.objects.get().viewing["device_pixel_ratio"] == 3 and not Rater.objects.exists()
