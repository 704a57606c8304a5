"""Pairwise studies (issue 18): creating one, building balanced sessions of pairs, the choosing service's
guarantees (idempotent, conflicts, moved-on pages, too-fast answers, finishing), blinding of the page's state and
images, trap pairs in screening, and the export (comparisons.csv and the pairwise statistics)."""

import io
import json
import re
from collections import Counter

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from mos_study.models import HR_METHOD, Comparison, RatingSession, Study, Trial
from mos_study.services import pairwise_exports
from mos_study.services.comparing import choose_side
from mos_study.services.errors import (
    InvalidRating,
    RatingConflict,
    SessionMovedOn,
    StudyError,
    StudyFull,
    TooFast,
    TrialNotFound,
)
from mos_study.services.rating import rate_trial
from mos_study.services.sessions import availability, pair_counts, start_session
from mos_study.services.study_setup import create_study

from tests.support.study_factory import METHODS, store_outputs

pytestmark = pytest.mark.django_db
QUALITY = {"nn": 0, "bicubic": 1, "srgan-vgg54": 2, HR_METHOD: 3}


@pytest.fixture
def outputs(media_root):
    return store_outputs(media_root)


def pairwise_study(name="pw", **options):
    options = {
        "protocol": "pairwise",
        "include_hr": True,
        "images_per_session": 6,
        "ratings_per_stimulus": 1000,
        "min_view_ms": 0,
        "seed": 3,
        **options,
    }
    return create_study(name, ["Set5"], METHODS[:-1], run_missing=False, **options)


def trials_of(session):
    return list(session.trials.select_related("stimulus__output__method", "stimulus_b__output__method"))


def methods_of(trial):
    return trial.stimulus.output.method.name, trial.stimulus_b.output.method.name


def better_side(trial):
    """The side a rater who sees quality as QUALITY says chooses (the higher-quality method's side)."""
    a, b = methods_of(trial)
    a_wins = QUALITY[a] >= QUALITY[b]
    return "left" if a_wins == trial.left_is_a else "right"


def test_create_study_pairwise_from_the_command(outputs):
    out = io.StringIO()
    call_command(
        "create_study",
        "--name",
        "pw-cmd",
        "--datasets",
        "Set5",
        "--methods",
        "nn,bicubic",
        "--include-hr",
        "--protocol",
        "pairwise",
        "--pair-design",
        "full",
        "--allow-tie",
        stdout=out,
    )
    study = Study.objects.get(name="pw-cmd")
    assert (study.protocol, study.pair_design, study.allow_tie) == ("pairwise", "full", True)
    assert "Rater link" in out.getvalue()
    acr = create_study("acr", ["Set5"], ["nn", "bicubic"], run_missing=False)
    assert (acr.protocol, acr.allow_tie) == ("acr", False)


def test_a_pairwise_study_needs_two_methods_and_a_known_design(outputs):
    with pytest.raises(StudyError, match="at least two methods"):
        create_study("one", ["Set5"], ["bicubic"], protocol="pairwise", run_missing=False)
    with pytest.raises(StudyError, match="pair design must be one of"):
        pairwise_study(pair_design="clever")
    with pytest.raises(StudyError, match=r"more than the 4 trap pairs"):
        pairwise_study(calibration_images=1, gold_trials=5)  # 5 images, 1 for calibration: 4 trap pairs
    assert not Study.objects.exists()


def test_a_session_holds_pairs_of_one_image_calibration_traps_and_repeats(outputs):
    study = pairwise_study(calibration_images=1, gold_trials=2, repeated_trials=1)
    session = start_session(study, seed=11)
    trials = trials_of(session)
    kinds = Counter(t.kind for t in trials)
    assert kinds == {Trial.Kind.CALIBRATION: 1, Trial.Kind.PAIR: 6, Trial.Kind.REPEAT: 1, Trial.Kind.GOLD: 2}
    assert trials[0].kind == Trial.Kind.CALIBRATION and methods_of(trials[0]) == (HR_METHOD, "nn")
    for trial in trials:
        assert trial.stimulus.output.image_id == trial.stimulus_b.output.image_id  # two versions of one image
        a, b = methods_of(trial)
        assert a != b
        if trial.kind == Trial.Kind.GOLD:
            assert (a, b) == (HR_METHOD, "nn") and trial.stimulus.is_gold and trial.stimulus_b.is_gold
        if trial.kind == Trial.Kind.PAIR:
            assert not (trial.stimulus.is_gold or trial.stimulus.is_calibration)
    calibration_image = trials[0].stimulus.output.image_id
    assert all(t.stimulus.output.image_id != calibration_image for t in trials[1:])  # anchors never tested
    images = [t.stimulus.output.image_id for t in trials]
    assert all(x != y for x, y in zip(images, images[1:]))  # no image twice in a row
    repeat = next(t for t in trials if t.kind == Trial.Kind.REPEAT)
    first = next(
        t
        for t in trials
        if t.kind == Trial.Kind.PAIR and t.stimulus_id == repeat.stimulus_id and t.stimulus_b_id == repeat.stimulus_b_id
    )
    assert first.left_is_a != repeat.left_is_a  # shown twice, sides swapped (in random order, as ACR repeats)
    tokens = [tok for t in trials for tok in (t.token, t.image_token_a, t.image_token_b)]
    assert len(set(tokens)) == len(tokens) and all(tokens)


def test_sides_are_random_per_trial_and_full_design_is_balanced(outputs):
    study = pairwise_study(pair_design="full", images_per_session=5)
    sides, pairs, per_stimulus = Counter(), Counter(), Counter()
    for k in range(12):
        session = start_session(study, seed=k)
        for trial in trials_of(session):
            sides[trial.left_is_a] += 1
            pairs[(trial.stimulus.output.image_id, frozenset((trial.stimulus_id, trial.stimulus_b_id)))] += 1
            per_stimulus.update([trial.stimulus_id, trial.stimulus_b_id])
    assert sides[True] > 15 and sides[False] > 15  # 60 coins
    # 5 images x 6 pairs of 4 methods = 30 pairs, 60 pairs shown: each exactly twice; each stimulus 6 times.
    assert len(pairs) == 30 and set(pairs.values()) == {2}
    assert set(per_stimulus.values()) == {6}
    assert set(pair_counts(study, timezone.now()).values()) == {6}  # the balance counts both sides of a pair


def test_active_design_reads_the_stored_choices(outputs, monkeypatch):
    from mos_study.analysis.pairwise import sampling

    study = pairwise_study(images_per_session=5)
    session = start_session(study, seed=1)
    for trial in trials_of(session):
        choose_side(session.rater.token, trial.token, better_side(trial))
    seen = []
    real = sampling.next_pairs

    def spy(conditions, wins, n_pairs, **kwargs):
        seen.append((kwargs["design"], wins.sum()))
        return real(conditions, wins, n_pairs, **kwargs)

    monkeypatch.setattr(sampling, "next_pairs", spy)
    start_session(study, seed=2)
    assert {design for design, _ in seen} == {"active"}
    assert sum(total for _, total in seen) == 5  # every stored test choice is a point in its image's wins


def test_choices_are_stored_once_mapped_from_the_side_and_finish_the_session(outputs):
    study = pairwise_study(images_per_session=4)
    session = start_session(study, seed=5)
    token = session.rater.token
    trials = trials_of(session)
    first = trials[0]
    receipt = choose_side(token, first.token, "left", response_ms=812)
    assert receipt.created and (receipt.done, receipt.total) == (1, 4)
    again = choose_side(token, first.token, "left", response_ms=900)
    assert not again.created and Comparison.objects.count() == 1
    stored = Comparison.objects.get()
    assert stored.choice == ("a" if first.left_is_a else "b") and stored.response_ms == 812
    with pytest.raises(RatingConflict):
        choose_side(token, first.token, "right")
    with pytest.raises(InvalidRating, match="left or right"):
        choose_side(token, trials[1].token, "none")  # no "no preference" in this study
    with pytest.raises(InvalidRating):
        choose_side(token, trials[1].token, "a")  # sides only: the page never knows A from B
    with pytest.raises(TrialNotFound):
        rate_trial(token, trials[1].token, 3)  # an ACR score on a pairwise trial
    choose_side(token, trials[1].token, "right")
    with pytest.raises(SessionMovedOn):
        choose_side(token, first.token, "left")  # a stale page: a later trial is answered already
    for trial in trials[2:]:
        last = choose_side(token, trial.token, "left")
    assert last.finished and RatingSession.objects.get(pk=session.pk).finished is not None
    assert list(Comparison.objects.order_by("pk").values_list("trial__position", flat=True)) == [0, 1, 2, 3]


def test_ties_where_allowed_and_too_fast_answers(outputs):
    study = pairwise_study(name="ties", allow_tie=True, min_view_ms=400)
    session = start_session(study, seed=5)
    trial = trials_of(session)[0]
    with pytest.raises(TooFast):
        choose_side(session.rater.token, trial.token, "none", response_ms=120)
    assert RatingSession.objects.get(pk=session.pk).fast_answers == 1 and not Comparison.objects.exists()
    choose_side(session.rater.token, trial.token, "none", response_ms=450)
    assert Comparison.objects.get().choice == "tie"


def test_a_rater_who_comes_back_resumes_and_the_study_fills(outputs):
    study = pairwise_study(images_per_session=5, ratings_per_stimulus=1, pair_design="full")
    session = start_session(study, participant_id="P1", seed=1)
    choose_side(session.rater.token, trials_of(session)[0].token, "left")
    assert start_session(study, participant_id="P1").pk == session.pk
    assert availability(study) is None
    n = 1
    while availability(study) is None:  # 20 stimuli to compare once each: full after a few sessions of 5 pairs
        start_session(study, participant_id=f"more-{n}", seed=n)
        n += 1
    assert 2 <= n <= 5 and min(pair_counts(study, timezone.now()).values()) >= 1
    with pytest.raises(StudyFull):
        start_session(study, participant_id="late")
    assert start_session(study, participant_id="P1").pk == session.pk  # still resumes when full


def test_page_state_and_images_reveal_neither_method_nor_side(outputs, settings):
    study = pairwise_study(calibration_images=1)
    client = Client()
    start = client.post(reverse("mos_study:start", args=[study.token]), {"consent": "on"})
    page = client.get(start.url)
    html = page.content.decode()
    assert "compare.js" in html and "image-left" in html
    rater_token = re.search(r"/r/([^/]+)/", start.url).group(1)
    state = client.get(reverse("mos_study:session_state", args=[rater_token])).json()
    # Tokens (22 URL-safe characters and longer) are random: leave them out, then look for any hint by word.
    text = re.sub(r"[A-Za-z0-9_-]{20,}", "", json.dumps(state) + html)
    for word in [*METHODS, "left_is_a", "method", "stimulus_b", "image_token", "Set5", "img_00"]:
        assert not re.search(rf"\b{re.escape(word)}\b", text), word
    # No A/B anywhere in the state (tokens left out: a random one may hold "a-", where \b sees the word "a").
    assert not re.search(r"\b[ab]\b", re.sub(r"[A-Za-z0-9_-]{20,}", "", json.dumps(state)))
    session = RatingSession.objects.get(rater__token=rater_token)
    by_token = {t.token: t for t in trials_of(session)}
    for row in state["trials"]:
        trial = by_token[row["token"]]
        left, right = row["left"]["image"], row["right"]["image"]
        assert trial.token not in left + right  # the images' tokens are not the trial's
        a_url, b_url = (left, right) if trial.left_is_a else (right, left)
        assert trial.image_token_a in a_url and trial.image_token_b in b_url
        bytes_a, bytes_b = client.get(a_url).content, client.get(b_url).content
        assert len(bytes_a) == len(bytes_b)  # one byte length per test image
        stored = (settings.MEDIA_ROOT / trial.stimulus.output.file).read_bytes()
        assert bytes_a[:33] == stored[:33] and bytes_a != stored  # the stored PNG, padded with a nonce
        assert (row["better"] is not None) == (trial.kind == Trial.Kind.CALIBRATION)
        if trial.kind == Trial.Kind.CALIBRATION:
            assert row["better"] == ("left" if trial.left_is_a else "right")  # HR is A on calibration pairs
    assert client.get(reverse("mos_study:image", args=[session.trials.first().token])).status_code == 404
    answer = client.post(
        reverse("mos_study:submit_choice", args=[rater_token]),
        json.dumps({"trial": state["trials"][0]["token"], "choice": "right", "response_ms": 500}),
        content_type="application/json",
    )
    assert answer.status_code == 201 and set(answer.json()) == {
        "ok",
        "created",
        "trial",
        "choice",
        "done",
        "total",
        "finished",
    }
    bad = client.post(
        reverse("mos_study:submit_choice", args=[rater_token]),
        json.dumps({"trial": state["trials"][1]["token"], "choice": 7}),
        content_type="application/json",
    )
    assert bad.status_code == 400 and bad.json()["error"]


def rate_panel(study, n_raters, cheat=()):
    """Scripted raters who prefer the method of higher QUALITY; those in ``cheat`` prefer nearest neighbour on trap
    pairs."""
    for r in range(n_raters):
        session = start_session(study, participant_id=f"P{r}", seed=100 + r)
        for trial in trials_of(session):
            side = better_side(trial)
            if trial.kind == Trial.Kind.GOLD and f"P{r}" in cheat:
                side = "right" if side == "left" else "left"
            choose_side(session.rater.token, trial.token, side, response_ms=700 + trial.position)


def test_export_has_comparisons_scale_and_trap_screening(outputs, tmp_path):
    study = pairwise_study(name="pw-export", gold_trials=2, repeated_trials=1, images_per_session=8)
    rate_panel(study, 5, cheat={"P3"})
    out = tmp_path / "export"
    stdout = io.StringIO()
    call_command("export_results", "--study", "pw-export", "--output-dir", str(out), "--no-figures", stdout=stdout)
    names = {p.name for p in out.iterdir()}
    assert {"comparisons.csv", "pairwise_screening.csv", "pairwise_scale.csv", "pairwise_wins.csv"} <= names
    assert "ratings.csv" not in names
    lines = (out / "comparisons.csv").read_text().splitlines()
    assert lines[0].split(",")[:10] == [
        "study",
        "rater",
        "session",
        "position",
        "kind",
        "dataset",
        "image",
        "method_a",
        "method_b",
        "choice",
    ]
    assert len(lines) == 1 + 5 * (8 + 1 + 2)
    screening = (out / "pairwise_screening.csv").read_text().splitlines()
    rejected = [line.split(",")[0] for line in screening[1:] if ",true," in line]
    assert rejected == ["P3"] and "screened out" in stdout.getvalue()
    scale = (out / "pairwise_scale.csv").read_text().splitlines()
    order = [line.split(",")[1] for line in scale[1:]]
    values = {line.split(",")[1]: float(line.split(",")[2]) for line in scale[1:]}
    assert set(order) == set(QUALITY) and values[HR_METHOD] > values["srgan-vgg54"] > values["bicubic"] > values["nn"]
    export = pairwise_exports.build_pairwise_export(study, figures=False, bootstrap=50)
    assert export.n_ratings == 4 * 8 and export.rejected[0]["rater"] == "P3"  # P3's choices left out


def test_a_formula_in_a_participant_id_is_quoted_in_comparisons_csv(outputs):
    study = pairwise_study(name="pw-csv", images_per_session=2)
    session = start_session(study, participant_id="=HYPERLINK(1)", seed=1)
    for trial in trials_of(session):
        choose_side(session.rater.token, trial.token, "left")
    text = pairwise_exports.build_pairwise_export(study, figures=False, bootstrap=0).files["comparisons.csv"]
    assert ",'=HYPERLINK(1)," in text.decode()


def test_dashboard_shows_scale_win_matrix_screening_and_files(outputs, fresh_cache, settings):
    import zipfile

    from django.contrib.auth.models import User

    study = pairwise_study(name="pw-dash", gold_trials=1, images_per_session=8)
    client = Client()
    client.force_login(User.objects.create_superuser("boss", password="pw"))
    empty = client.get(reverse("mos_study:study_results", args=[study.pk]))
    assert empty.status_code == 200 and "no choices yet" in empty.content.decode()
    rate_panel(study, 4, cheat={"P1"})
    page = client.get(reverse("mos_study:study_results", args=[study.pk])).content.decode()
    scale = re.search(r'<table class="data" id="scale-table">.*?</table>', page, re.S).group(0)
    assert scale.count("<tr>") == 1 + 4 and "hr" in scale and " – " in scale  # 4 methods with CIs
    matrix = re.search(r'id="win-matrix-1">.*?</table>', page, re.S).group(0)
    assert matrix.count("<tr>") == 1 + 4 and " / " in matrix
    assert re.search(r'id="screening">[^<]*P1 \(failed 1 of 1 trap pairs', page)
    assert 'id="count-test">32<' in page and 'id="count-gold">4<' in page  # choices stored, by kind
    assert 'id="count-test">32</strong> test choices' in page and "test ratings" not in page
    comparisons = client.get(reverse("mos_study:export_file", args=[study.pk, "comparisons.csv"]))
    assert comparisons.status_code == 200 and len(comparisons.content.decode().splitlines()) == 1 + 4 * 9
    archive = zipfile.ZipFile(io.BytesIO(b"".join(client.get(reverse("mos_study:export_zip", args=[study.pk])))))
    assert {"comparisons.csv", "pairwise_scale.csv", "pairwise_screening.csv"} <= set(archive.namelist())
    assert archive.read("comparisons.csv") == comparisons.content
    detail = client.get(reverse("mos_study:study_detail", args=[study.pk])).content.decode()
    # Pairwise progress counts a stimulus once per test choice it took part in (either side): 32 choices, 64.
    assert 'id="stat-ratings">64<' in detail


def test_the_admin_form_creates_a_pairwise_study(outputs, client):
    from django.contrib.auth.models import User

    client.force_login(User.objects.create_superuser("boss", password="pw"))
    form = {"name": "pw-admin", "datasets": "Set5", "methods": "nn, bicubic", "include_hr": "on"}
    response = client.post(reverse("admin:mos_study_study_create"), {**form, "protocol": "pairwise", "allow_tie": "on"})
    assert response.status_code == 302
    study = Study.objects.get(name="pw-admin")
    assert (study.protocol, study.pair_design, study.allow_tie) == ("pairwise", "active", True)
    bad = client.post(reverse("admin:mos_study_study_create"), {**form, "name": "x", "pair_design": "clever"})
    assert bad.status_code == 200 and b"clever" in bad.content and not Study.objects.filter(name="x").exists()


def test_a_researcher_previews_a_pairwise_study_and_nothing_is_stored(outputs, client):
    from django.contrib.auth.models import User

    from mos_study.models import Rater

    study = pairwise_study(name="pw-preview", calibration_images=1, images_per_session=3, allow_tie=True)
    client.force_login(User.objects.create_superuser("boss", password="pw"))
    page = client.get(reverse("mos_study:preview", args=[study.pk])).content.decode()
    assert "compare.js" in page and 'id="preview-banner"' in page
    state = client.get(reverse("mos_study:preview_state", args=[study.pk])).json()
    assert state["total"] == 1 + 3 and state["allow_tie"] and state["trials"][0]["better"] in ("left", "right")
    for row in state["trials"]:
        for side in ("left", "right"):
            assert client.get(row[side]["image"]).status_code == 200
    url = reverse("mos_study:preview_rate", args=[study.pk])
    bad = client.post(url, json.dumps({"trial": "p0", "choice": "up"}), content_type="application/json")
    assert bad.status_code == 400
    for row in state["trials"]:
        answer = client.post(
            url, json.dumps({"trial": row["token"], "choice": "none"}), content_type="application/json"
        )
        assert answer.status_code == 201
    assert (
        answer.json()["finished"]
        and "PREVIEW" in client.get(reverse("mos_study:preview", args=[study.pk])).content.decode()
    )
    assert not (Rater.objects.exists() or Trial.objects.exists() or Comparison.objects.exists())


def test_the_consent_page_explains_the_pairwise_task(outputs, client):
    study = pairwise_study(name="pw-consent", allow_tie=True)
    page = client.get(reverse("mos_study:start", args=[study.token])).content.decode()
    assert "pairs" in page and "no preference" in page and "scale from 1 to 5" not in page
    acr = create_study("acr-consent", ["Set5"], ["nn", "bicubic"], run_missing=False)
    assert "scale from 1 to 5" in client.get(reverse("mos_study:start", args=[acr.token])).content.decode()


@pytest.mark.parametrize(
    "body, status",
    [
        (b"[1, 2]", 400),
        (b"not json", 400),
        (b'{"trial": ["x"], "choice": "left"}', 404),
        (b'{"trial": "T", "choice": {"side": "left"}}', 400),
        (b'{"trial": "T", "choice": ["left"]}', 400),
        (b'{"trial": "T", "choice": "LEFT"}', 400),
        (b'{"trial": "T", "choice": "left", "response_ms": "fast"}', 400),
        (b'{"trial": "T", "choice": "left", "response_ms": -5}', 400),
        (b'{"trial": "T\\u0000", "choice": "left"}', 404),
        (b'{"trial": "T", "choice": "left", "response_ms": 1e400}', 400),
    ],
)
def test_bad_choice_requests_get_a_clear_4xx_and_change_nothing(outputs, client, body, status):
    study = pairwise_study(name="pw-bad", images_per_session=2)
    session = start_session(study, seed=1)
    trial = trials_of(session)[0]
    url = reverse("mos_study:submit_choice", args=[session.rater.token])
    answer = client.post(url, body.replace(b'"T', f'"{trial.token}'.encode()), content_type="application/json")
    assert answer.status_code == status and answer.json()["error"] and answer.json()["message"]
    assert not Comparison.objects.exists()
    unknown = client.post(reverse("mos_study:submit_choice", args=["nobody"]), b"{}", content_type="application/json")
    assert unknown.status_code == 404


def test_the_pairwise_page_speaks_german_where_the_study_does(outputs):
    study = pairwise_study(name="pw-de", language="de", allow_tie=True)
    client = Client()
    start = client.post(reverse("mos_study:start", args=[study.token]), {"consent": "on"})
    page = client.get(start.url).content.decode()
    assert "Links ist besser" in page and "Kein Unterschied" in page and "Paar {n} von {total}" in page
    consent = Client().get(reverse("mos_study:start", args=[study.token])).content.decode()  # a new rater's
    assert "Bildpaaren" in consent and "Kein Unterschied" in consent
