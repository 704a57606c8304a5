"""The create-study form's planning hint (issue 15): expected 95 % CI half-width of a method's MOS and the ratings
per stimulus for +-0.2, from an assumed rating SD and the form's datasets and ratings per stimulus."""

import math

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from scipy import stats

from mos_study.analysis.planning import half_width_for_ratings, ratings_for_half_width
from mos_study.services.study_planning import planning_hint, planning_hint_from

pytestmark = pytest.mark.django_db


def expected(sd, n):
    return stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)


def needed_per_stimulus(sd, images, target=0.2):
    n = 2
    while expected(sd, n) > target:
        n += 1
    return math.ceil(n / images)


@pytest.fixture
def admin_client(client):
    client.force_login(get_user_model().objects.create_superuser("boss", "boss@example.org", "pw"))
    return client


def test_half_width_is_the_mos_tables_ci_and_inverts_ratings_for_half_width():
    assert half_width_for_ratings(1.0, 130) == pytest.approx(expected(1.0, 130), rel=1e-12)
    assert half_width_for_ratings(1.0, 100, approximation="normal") == pytest.approx(1.959964 / 10, rel=1e-6)
    assert math.isnan(half_width_for_ratings(1.0, 1))
    n = ratings_for_half_width(0.8, 0.2)
    assert half_width_for_ratings(0.8, n) <= 0.2 < half_width_for_ratings(0.8, n - 1)


def test_the_hint_per_dataset_and_the_cli_pointer():
    hint = planning_hint(["Set5", "Set14", "Mine"], 26, sd=1.0, n_methods=5)
    assert [row["dataset"] for row in hint.rows] == ["Set5", "Set14"] and hint.unknown == ["Mine"]
    set5 = hint.rows[0]
    assert (set5["images"], set5["ratings"]) == (5, 130)
    assert set5["half_width"] == pytest.approx(expected(1.0, 130), rel=1e-12)
    assert set5["needed"] == needed_per_stimulus(1.0, 5) == 20
    assert hint.rows[1]["needed"] == needed_per_stimulus(1.0, 14)
    assert hint.command == "python -m mos_study.analysis plan --sd 1 --images 5 --methods 5 --half-width 0.2"


def test_unreadable_inputs_fall_back_to_the_defaults_with_a_note():
    hint = planning_hint_from({"planning_sd": "lots", "ratings_per_stimulus": "0", "datasets": " , "})
    assert hint.sd == 1.0 and hint.ratings_per_stimulus == 26 and hint.datasets == ["BSD100"]
    assert len(hint.notes) == 2


def test_the_create_page_shows_the_hint_for_the_default_inputs(admin_client):
    page = admin_client.get(reverse("admin:mos_study_study_create"))
    assert page.status_code == 200
    html = page.content.decode()
    # the form's suggestion BSD100 (100 images), 26 ratings per stimulus, SD 1.0
    assert f"BSD100 (100 images, 2600 ratings per method): &plusmn;{expected(1.0, 2600):.3f}" in html
    assert (
        f"&plusmn;0.2 needs {needed_per_stimulus(1.0, 100)} ratings per stimulus" in html
        and "python -m mos_study.analysis plan --sd 1" in html
    )


def test_the_create_page_shows_the_hint_for_given_inputs(admin_client):
    url = reverse("admin:mos_study_study_create")
    page = admin_client.get(url, {"planning_sd": "0.8", "ratings_per_stimulus": "10", "datasets": "Set5,Set14,Mine"})
    html = page.content.decode()
    assert "Assuming one rating's SD is 0.80 and 10 ratings per stimulus" in html
    assert f"Set5 (5 images, 50 ratings per method): &plusmn;{expected(0.8, 50):.3f}" in html
    assert f"Set14 (14 images, 140 ratings per method): &plusmn;{expected(0.8, 140):.3f}" in html
    assert f"needs {needed_per_stimulus(0.8, 5)}" in html and f"needs {needed_per_stimulus(0.8, 14)}" in html
    assert "Mine: number of images not known here" in html
    assert "--sd 0.8 --images 5" in html
    form = page.context["form"]  # the create form takes the planned values
    assert form["ratings_per_stimulus"].value() == "10" and form["datasets"].value() == "Set5,Set14,Mine"


def test_a_refused_post_keeps_the_hint_of_the_posted_values(admin_client):
    url = reverse("admin:mos_study_study_create")
    page = admin_client.post(url, {"name": "", "datasets": "Set14", "methods": "nn", "ratings_per_stimulus": "4"})
    assert page.status_code == 200 and page.context["form"].errors
    assert f"Set14 (14 images, 56 ratings per method): &plusmn;{expected(1.0, 56):.3f}" in page.content.decode()
