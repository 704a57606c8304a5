"""Raters never learn which method made an image: nothing they can load names a method, dataset or image."""

import json
import re
import struct

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import reverse

from mos_study.models import Method, Rater, Stimulus, TestImage, Trial

from tests.support.study_factory import stored_study

pytestmark = pytest.mark.django_db
CRITICAL_CHUNKS = {b"IHDR", b"PLTE", b"IDAT", b"IEND"}
PAD_CHUNK = b"srMo"  # the private padding chunk (a nonce and zeros): see views.stimuli


def png_chunk_types(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    types, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        types.append(data[offset + 4 : offset + 8])
        offset += 12 + length
    return types


def forbidden_words():
    names = set(Method.objects.values_list("name", flat=True))
    names |= set(TestImage.objects.values_list("dataset", flat=True))
    names |= set(TestImage.objects.values_list("name", flat=True))
    return names


def mentions(text, words, tokens):
    """The forbidden words that appear in ``text`` as words, once the random tokens are blanked out."""
    for token in tokens:
        text = text.replace(token, "TOKEN")
    return {w for w in words if re.search(rf"(?<![A-Za-z0-9]){re.escape(w)}(?![A-Za-z0-9])", text, re.IGNORECASE)}


def test_nothing_a_rater_loads_names_a_method_dataset_or_image(settings, tmp_path):
    settings.SRMOS_RATE_LIMITS = {}
    settings.MEDIA_ROOT = tmp_path
    study = stored_study(tmp_path, "blind", calibration_images=2, repeated_trials=2)
    browser = Client()
    loaded = []  # (what, text) of everything the rater's browser gets
    pixels = []  # the PNG files

    def get(url, **extra):
        response = browser.get(url, **extra)
        assert response.status_code in (200, 302), url
        body = b"".join(response.streaming_content) if response.streaming else response.content
        loaded.append((url, url + "\n" + "\n".join(f"{k}: {v}" for k, v in response.items())))
        return response, body

    start_url = reverse("mos_study:start", args=[study.token])
    _, page = get(start_url)
    loaded.append(("start page", page.decode()))
    response = browser.post(start_url, {"consent": "on"})
    rater = Rater.objects.get()
    _, page = get(response["Location"])
    loaded.append(("rating page", page.decode()))
    for static in ["mos_study/rater_page.js", "mos_study/rate.js", "mos_study/srmos.css"]:
        loaded.append((static, open(finders.find(static)).read()))
    _, state = get(reverse("mos_study:session_state", args=[rater.token]))
    loaded.append(("state", state.decode()))
    trials = json.loads(state)["trials"]
    assert len(trials) == 4 + 12 + 2  # 2 of the 5 images are calibration, never test trials: 3 x 4 methods
    for trial in trials:
        image, data = get(trial["image"])
        assert image["Content-Type"] == "image/png"
        assert set(png_chunk_types(data)) <= CRITICAL_CHUNKS | {PAD_CHUNK}  # no tEXt/iTXt/zTXt/eXIf/tIME metadata
        pixels.append(data)
        answer = browser.post(
            reverse("mos_study:submit_rating", args=[rater.token]),
            json.dumps({"trial": trial["token"], "score": 3}),
            content_type="application/json",
        )
        loaded.append(("rating answer", answer.content.decode()))
    _, page = get(reverse("mos_study:rate", args=[rater.token]))
    assert b"completion code" in page
    loaded.append(("completion page", page.decode()))

    words = forbidden_words()
    assert {"nn", "bicubic", "srgan-vgg54", "hr", "Set5", "img_001"} <= words
    tokens = [
        *Trial.objects.values_list("token", flat=True),
        *Stimulus.objects.values_list("token", flat=True),
        rater.token,
        study.token,
        rater.sessions.get().completion_code,
    ]
    leaks = {what: found for what, text in loaded if (found := mentions(text, words, tokens))}
    assert leaks == {}
    # Compressed pixels hold short words like "nn" by chance; the longer names must not be there.
    for data in pixels:
        assert not [w for w in words if len(w) >= 4 and w.encode() in data]
    # The check itself can fail: a page that did name a method would be caught.
    assert mentions("made by srgan-vgg54 on Set5/img_003", words, tokens) == {"srgan-vgg54", "Set5", "img_003"}
